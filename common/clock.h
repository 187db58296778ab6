// common/clock.h — the one clock the project times stages with.
//
// sl_now() returns CLOCK_MONOTONIC seconds as a double: only differences mean
// anything (the origin is unspecified, typically boot), and it never jumps with
// NTP or the wall clock. Used for stage timers, progress rates and benchmarks.
// Thread-safe; no state.
#pragma once

double sl_now(void);
