// common/log.h — levelled logging to stderr: one line per event with UTC time,
// MPI rank (or "-" before main sets it), level and module.
//
//   SL_LOG(WARN, "store", "map full at %zu MiB: growing", mib);
//   -> 2026-11-25T15:31:02Z r0 WARN  store: map full at 64 MiB: growing
//
// The level and rank are the only process globals: main sets them once,
// before any thread starts (sl_log_set_level, sl_log_set_rank).
// Level from the environment: SL_LOG_LEVEL=debug|info|warn|error.
#pragma once

typedef enum sl_log_level {
    SL_LOG_DEBUG = 0,
    SL_LOG_INFO = 1,
    SL_LOG_WARN = 2,
    SL_LOG_ERROR = 3,
    SL_LOG_QUIET = 4
} sl_log_level;

void sl_log_set_level(sl_log_level l);
sl_log_level sl_log_get_level(void);
void sl_log_set_rank(int rank);
// Reads SL_LOG_LEVEL; unknown values are ignored with a warning. Returns the level in force.
sl_log_level sl_log_level_from_env(void);

void sl_log(sl_log_level l, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SL_LOG(LEVEL, MODULE, ...) sl_log(SL_LOG_##LEVEL, (MODULE), __VA_ARGS__)
