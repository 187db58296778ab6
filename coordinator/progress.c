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
    p->items = p->rows = p->errors = 0;
    p->audio_s = p->audio_todo = 0;
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

void progress_set_audio(progress *p, double audio_todo)
{
    p->audio_todo = audio_todo > 0 ? audio_todo : 0;
}

static void print(progress *p, int final, const char *status)
{
    double now = sl_now(), el = now - p->t_start;
    size_t done = p->done0 + p->items;
    double rate = el > 0 ? (double)(p->rows + p->errors) / el : 0;
    double left = -1; // seconds
    if (p->audio_todo > 0 && p->audio_s > 0) {
        double a_left = p->audio_todo - p->audio_s;
        left = (a_left > 0 ? a_left : 0) / (p->audio_s / el);
    } else if (p->items > 0) {
        left = (double)(p->total - (done < p->total ? done : p->total)) / ((double)p->items / el);
    }
    char eta[32];
    fmt_eta(left, eta, sizeof eta);
    char line[256];
    snprintf(line, sizeof line, "%zu/%zu done (%zu rows, %zu failed this run), %.2f rows/s, "
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

void progress_add(progress *p, size_t items, size_t rows, size_t errors, double audio_s)
{
    p->items += items;
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
