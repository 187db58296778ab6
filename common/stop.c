// common/stop.c — see stop.h.
#include "common/stop.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    if (!g_stop)
        g_stop = sig;
}

void sl_stop_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
}

int sl_stop_requested(void) { return g_stop; }
void sl_stop_request(int sig) { on_signal(sig); }
void sl_stop_reset(void) { g_stop = 0; }
