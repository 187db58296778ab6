// common/stop.h — graceful stop requests from signals.
//
// sl_stop_install() routes SIGTERM, SIGINT, SIGUSR1 (what Slurm sends before a
// time limit or at preemption; mpirun forwards it to every rank) and SIGUSR2
// to a flag; the program polls sl_stop_requested() at safe points and winds
// down: nothing is interrupted mid-write. Async-signal-safe; no other state.
#pragma once

void sl_stop_install(void);
// The first stop signal received (SIGTERM, ...), or 0.
int sl_stop_requested(void);
// For tests and for "stop now" paths inside the program.
void sl_stop_request(int sig);
// Tests only: forget a stop request (the next run of a test process starts clean).
void sl_stop_reset(void);
