// common/err.h — error values shared by every layer.
//
// A function that can fail returns a negative sl_code and fills a caller-owned
// sl_err with a message naming the module, the input and the library's own
// words ("storage: open /data/db: No such file or directory"). Callers add
// context in front; they never replace the text. sl_fail() fills and returns
// the code, so `return sl_fail(err, SL_EIO, "...", ...)` is the usual shape.
// Thread-safety: an sl_err belongs to one thread; the functions here keep no state.
#pragma once
#include <stdarg.h>

typedef enum sl_code {
    SL_OK = 0,
    SL_EINVAL = -1,   // a caller passed something invalid (flag, argument)
    SL_ENOMEM = -2,   // allocation failed
    SL_EIO = -3,      // a file or device could not be read or written
    SL_EFORMAT = -4,  // input is well-formed bytes but not something we accept
    SL_ECORRUPT = -5, // input claims to be ours but is damaged
    SL_ESTORE = -6,   // the LMDB store reported a failure
    SL_EEXIST = -7,   // a key that must be new is already present
    SL_ENOTFOUND = -8 // a looked-up key or tensor is absent
} sl_code;

#define SL_ERR_MSG_CAP 512

typedef struct sl_err {
    sl_code code;
    char msg[SL_ERR_MSG_CAP];
} sl_err;

// Fills *e (if not NULL) with code c and the formatted message; returns c.
int sl_fail(sl_err *e, sl_code c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Puts "prefix: " in front of e->msg (truncating at the end if needed);
// returns e->code. For callers that add context: "item 42: " + msg.
int sl_err_prefix(sl_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Resets *e to SL_OK with an empty message.
void sl_err_clear(sl_err *e);

// A short stable name for a code ("EIO"), for logs and error records.
const char *sl_code_name(sl_code c);
