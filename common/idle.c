// common/idle.c — see idle.h.
#include "common/idle.h"

#include <sched.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

void sl_idle_init(void)
{
#ifdef __linux__
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
#endif
}

void sl_idle_wait(int *n_empty, long max_ns)
{
    int n = (*n_empty)++;
    if (n < 16) {
        sched_yield();
        return;
    }
    n -= 16;
    long ns = 20000L << (n < 6 ? n : 6);
    if (ns > max_ns)
        ns = max_ns;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}
