// coordinator/jobmeta.c — see jobmeta.h.
#include "coordinator/jobmeta.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"

int jm_fp_files(jm_fp *fp, const char *const *paths, size_t n, sl_err *err)
{
    char *cat = malloc(n * 64 + 1);
    if (!cat)
        return sl_fail(err, SL_ENOMEM, "jobmeta: out of memory");
    for (size_t i = 0; i < n; i++) {
        char hex[SL_SHA256_HEX];
        int rc = sl_sha256_file(paths[i], hex, err);
        if (rc) {
            free(cat);
            return sl_err_prefix(err, "fingerprint of %s", fp->what);
        }
        memcpy(cat + 64 * i, hex, 64);
    }
    if (n == 1)
        memcpy(fp->hex, cat, 64), fp->hex[64] = '\0';
    else
        sl_sha256_hex(cat, 64 * n, fp->hex);
    free(cat);
    return SL_OK;
}

void jm_fp_text(jm_fp *fp, const char *text) { sl_sha256_hex(text, strlen(text), fp->hex); }

int jm_check_and_record(store *s, const jm_fp *fps, size_t n, int *was_new, sl_err *err)
{
    *was_new = 1;
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "fp/%s", fps[i].name);
        char *old;
        int rc = store_get_meta(s, key, &old, err);
        if (rc == SL_ENOTFOUND) { // not recorded yet: record it
            if ((rc = store_put_meta(s, key, fps[i].hex, err)))
                return rc;
            continue;
        }
        if (rc) // unreadable is not absent: recording fresh fingerprints would skip the check
            return sl_err_prefix(err, "cannot read %s, so cannot tell whether %s changed: "
                                 "refusing the run", key, fps[i].what);
        *was_new = 0;
        if (strcmp(old, fps[i].hex) != 0) {
            if (fps[i].old_hex[0] && strcmp(old, fps[i].old_hex) == 0) {
                sl_fail(err, SL_EINVAL, "%s: %s is the fingerprint %s had before %s: refusing "
                        "to mix rows of the two; use a new --out (%s: stored %.12s..., now "
                        "%.12s...)", store_dir(s), key, fps[i].what, fps[i].old_why, key, old,
                        fps[i].hex);
                free(old);
                return SL_EINVAL;
            }
            if (fps[i].strict) {
                sl_fail(err, SL_EINVAL, "%s: %s changed since this dataset was written "
                        "(%s: stored %.12s..., now %.12s...): refusing to mix rows of two "
                        "setups; use a new --out, or the original files and flags",
                        store_dir(s), fps[i].what, key, old, fps[i].hex);
                free(old);
                return SL_EINVAL;
            }
            SL_LOG(WARN, "run", "%s changed since the last run (%s); continuing", fps[i].what,
                   key);
            rc = store_put_meta(s, key, fps[i].hex, err);
        }
        free(old);
        if (rc)
            return rc;
    }
    return SL_OK;
}

static void iso_time(double t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void put_figures(json_t *o, const jm_run_figures *f)
{
    json_object_set_new(o, "audio_seconds", json_real(f->audio_s));
    json_object_set_new(o, "cores", json_integer(f->cores));
    double core_h = f->wall_s * f->cores / 3600.0;
    if (core_h > 0)
        json_object_set_new(o, "audio_hours_per_core_hour", json_real(f->audio_s / 3600.0 / core_h));
    double busy = f->stage_s[0] + f->stage_s[1] + f->stage_s[2] + f->stage_s[3];
    if (busy > 0) {
        static const char *const names[4] = {"audio", "features", "tokens", "text"};
        json_t *share = json_object();
        for (int k = 0; k < 4; k++)
            json_object_set_new(share, names[k], json_real(f->stage_s[k] / busy));
        json_object_set_new(o, "stage_share", share);
    }
    json_object_set_new(o, "rows_kept_default_filter", json_integer((json_int_t)f->rows_kept));
    if (f->batch_height > 0)
        json_object_set_new(o, "decode_batch_height", json_real(f->batch_height));
}

static int put_run(store *s, const jm_run *run, const char *status, double end, size_t rows,
                   size_t errors, int ranks, int argc, char **argv, const jm_run_figures *fig,
                   sl_err *err)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    char t0[32], t1[32];
    iso_time(run->start, t0, sizeof t0);
    json_t *o = json_object();
    json_t *cmd = json_array();
    for (int i = 0; i < argc; i++) {
        json_t *a = json_string(argv[i]); // NULL when the argument is not UTF-8
        json_array_append_new(cmd, a ? a : json_string("<not UTF-8>"));
    }
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "start", json_string(t0));
    if (end > 0) {
        iso_time(end, t1, sizeof t1);
        json_object_set_new(o, "end", json_string(t1));
        json_object_set_new(o, "seconds", json_real(end - run->start));
    }
    json_object_set_new(o, "host", json_string(host));
    json_object_set_new(o, "ranks", json_integer(ranks));
    json_object_set_new(o, "rows_added", json_integer((json_int_t)rows));
    json_object_set_new(o, "errors_added", json_integer((json_int_t)errors));
    if (fig)
        put_figures(o, fig);
    json_object_set_new(o, "version", json_string(SL_VERSION));
    json_object_set_new(o, "command", cmd);
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        return sl_fail(err, SL_ENOMEM, "jobmeta: cannot format the run record");
    char key[32];
    snprintf(key, sizeof key, "run/%06d", run->index);
    int rc = store_put_meta(s, key, text, err);
    free(text);
    return rc;
}

int jm_run_begin(store *s, int ranks, int argc, char **argv, jm_run *run, sl_err *err)
{
    // Next index = 1 + the last run/ key.
    store_iter *it;
    int rc = store_iter_open(&it, s, STORE_META, err);
    if (rc)
        return rc;
    const void *k, *v;
    size_t kn, vn;
    int last = 0;
    store_iter_seek(it, "run/", 4, err);
    while (store_iter_next(it, &k, &kn, &v, &vn, err) == 1) {
        if (kn < 4 || memcmp(k, "run/", 4) != 0)
            break;
        char num[16] = {0};
        memcpy(num, (const char *)k + 4, kn - 4 < 15 ? kn - 4 : 15);
        int x = atoi(num);
        if (x > last)
            last = x;
    }
    store_iter_close(it);
    run->index = last + 1;
    run->start = now_epoch();
    return put_run(s, run, "running", 0, 0, 0, ranks, argc, argv, NULL, err);
}

int jm_run_end(store *s, const jm_run *run, const char *status, size_t rows_added,
               size_t errors_added, int ranks, int argc, char **argv,
               const jm_run_figures *fig, sl_err *err)
{
    return put_run(s, run, status, now_epoch(), rows_added, errors_added, ranks, argc, argv, fig,
                   err);
}
