// coordinator/progress.c — see progress.h.
#include "coordinator/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

void progress_init(progress *p, size_t total, size_t already_done, double every_s)
{
    p->total = total;
    p->done0 = already_done;
    p->rows = p->errors = 0;
    p->audio_s = 0;
    p->t_start = p->t_last = sl_now();
    p->every_s = every_s > 0 ? every_s : 30;
    p->tty = isatty(2);
}

static void fmt_eta(double s, char *buf, size_t cap)
{
    if (s < 0 || s > 1e9)
        snprintf(buf, cap, "?");
    else if (s >= 3600)
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void print(progress *p, int final, const char *status)
{
    double now = sl_now(), el = now - p->t_start;
    size_t done = p->done0 + p->rows + p->errors;
    double rate = el > 0 ? (double)(p->rows + p->errors) / el : 0;
    char eta[32];
    fmt_eta(rate > 0 ? (double)(p->total - (done < p->total ? done : p->total)) / rate : -1, eta,
            sizeof eta);
    char line[256];
    snprintf(line, sizeof line, "%zu/%zu done (%zu rows, %zu failed this run), %.2f utt/s, "
             "%.4f audio h/s, ETA %s%s%s", done, p->total, p->rows, p->errors, rate,
             el > 0 ? p->audio_s / 3600.0 / el : 0.0, final ? "-" : eta, status ? ": " : "",
             status ? status : "");
    if (p->tty && !final) {
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
    } else {
        if (p->tty)
            fputs("\r\033[K", stderr);
        SL_LOG(INFO, "progress", "%s", line);
    }
}

void progress_add(progress *p, size_t rows, size_t errors, double audio_s)
{
    p->rows += rows;
    p->errors += errors;
    p->audio_s += audio_s;
    double now = sl_now();
    double every = p->tty ? 0.5 : p->every_s;
    if (now - p->t_last >= every) {
        p->t_last = now;
        print(p, 0, NULL);
    }
}

void progress_final(progress *p, const char *status) { print(p, 1, status); }
