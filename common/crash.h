// common/crash.h — leave a note when the process dies of a fatal signal.
//
// An utterance that crashes the code that processes it (a "poison pill")
// takes down the whole MPI job. To keep it from crashing every resume, the
// code arms a note before each work unit; if SIGSEGV, SIGBUS, SIGFPE, SIGILL
// or SIGABRT arrives while armed, the handler writes the note to a file
// descriptor and/or calls a hook (a worker sends an MPI message to rank 0),
// then re-raises the signal with the default action. External kills
// (SIGKILL, SIGTERM) leave no note: they are not the utterance's fault.
// The note buffer is copied at arm time; the handler only calls write(2),
// the hook, signal(2) and raise(3).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef void (*sl_crash_hook)(uint32_t wid, void *ctx);

void sl_crash_install(void);
// fd < 0 disables the file note. The fd is written at the current offset.
void sl_crash_set_fd(int fd);
void sl_crash_set_hook(sl_crash_hook hook, void *ctx);
// Arms a note of up to SL_CRASH_NOTE_CAP bytes (longer notes are cut).
void sl_crash_arm(uint32_t wid, const void *note, size_t len);
void sl_crash_disarm(void);

#define SL_CRASH_NOTE_CAP 65536
