// common/json.h — typed reads of config values from a jansson object, each error
// naming the module, the file and the key.
//
//   sl_json_src src = {"hubert", path, ""};          // names keys as  "hidden_size"
//   sl_json_src src = {"s2t", path, "config key "};  // names keys as  config key "dim"
//   rc = sl_json_int(&src, root, "hidden_size", 0, 1 << 20, 768, &c->hidden, err);
//
// Every message is "<module>: <file>: <key_lead>"<key>" <complaint>", e.g.
//   hubert: m/config.json: "hidden_size" is not an integer in [0, 1048576]
//   s2t: m.safetensors: config key "num_text_token_ids" is missing
// A key that is absent or JSON null is "not given": the getter stores its default
// (the _required getters fail with "is missing"). On failure *out is untouched.
// Strings are lent from the object (valid while it lives). Nothing is allocated;
// no state, so distinct objects may be read from different threads.
// Errors: SL_EFORMAT.
#pragma once
#include <jansson.h>

#include "common/err.h"

typedef struct sl_json_src {
    const char *module;   // message prefix: "hubert"
    const char *file;     // the file the object came from
    const char *key_lead; // words before the quoted key: "" or "config key "
} sl_json_src;

// An integer in [lo, hi]; dflt when not given.
int sl_json_int(const sl_json_src *src, const json_t *obj, const char *key, int lo, int hi,
                int dflt, int *out, sl_err *err);
// The same, but the key must be given.
int sl_json_int_required(const sl_json_src *src, const json_t *obj, const char *key, int lo,
                         int hi, int *out, sl_err *err);
// true / false as 1 / 0; dflt when not given.
int sl_json_bool(const sl_json_src *src, const json_t *obj, const char *key, int dflt, int *out,
                 sl_err *err);
// Any JSON number (integer or real) as a double; dflt when not given.
int sl_json_number(const sl_json_src *src, const json_t *obj, const char *key, double dflt,
                   double *out, sl_err *err);
// A required array of 1..cap integers, each in [lo, hi], into dst[0 .. *n).
int sl_json_int_array(const sl_json_src *src, const json_t *obj, const char *key, int lo, int hi,
                      int cap, int *dst, int *n, sl_err *err);
// A string that must be one of names[] (NULL-terminated); *out = its index, or
// dflt when not given. For one supported value: names = (const char *[]){"gelu", NULL}.
int sl_json_choice(const sl_json_src *src, const json_t *obj, const char *key,
                   const char *const *names, int dflt, int *out, sl_err *err);
