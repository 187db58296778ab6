// common/idle.h — the wait of a polling loop (rank 0 and workers poll MPI
// with MPI_Iprobe instead of a blocking receive, which in Open MPI spins a
// core at 100 %).
//
// sl_idle_wait(&n, max_ns) is called once per empty poll, with n counting the
// empty polls in a row (reset it to 0 when a message arrives): the first 16
// calls only yield the CPU (a reply is usually microseconds away), then it
// sleeps 20 us doubling up to max_ns. Rank 0 uses 1 ms: idle, it costs well
// under 1 % of a core. A worker waiting for the unit it asked for uses 50 us:
// if both sides backed off to a millisecond, each would wait for the other's
// sleep and tiny units would crawl (measured: 4,500 instead of 90,000 rows/s).
#pragma once

// Makes short sleeps short (Linux timer slack 1 us instead of 50 us). Call once.
void sl_idle_init(void);
void sl_idle_wait(int *n_empty, long max_ns);
