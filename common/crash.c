// common/crash.c — see crash.h.
#include "common/crash.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_armed;
static uint32_t g_wid;
static unsigned char g_note[SL_CRASH_NOTE_CAP];
static size_t g_len;
static int g_fd = -1;
static sl_crash_hook g_hook;
static void *g_ctx;

static void on_fatal(int sig)
{
    if (g_armed) {
        g_armed = 0;
        if (g_fd >= 0) {
            size_t off = 0;
            while (off < g_len) {
                ssize_t w = write(g_fd, g_note + off, g_len - off);
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            fsync(g_fd);
        }
        if (g_hook)
            g_hook(g_wid, g_ctx);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void sl_crash_install(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

void sl_crash_set_fd(int fd) { g_fd = fd; }

void sl_crash_set_hook(sl_crash_hook hook, void *ctx)
{
    g_hook = hook;
    g_ctx = ctx;
}

void sl_crash_arm(uint32_t wid, const void *note, size_t len)
{
    g_armed = 0;
    if (len > SL_CRASH_NOTE_CAP)
        len = SL_CRASH_NOTE_CAP;
    if (len)
        memcpy(g_note, note, len);
    g_len = len;
    g_wid = wid;
    g_armed = 1;
}

void sl_crash_disarm(void) { g_armed = 0; }
