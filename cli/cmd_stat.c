// cli/cmd_stat.c — `spearlabel stat DB`: what a dataset holds. One cursor pass;
// the quality percentiles come from fixed-size sketches (common/hist.h), so memory
// does not grow with the dataset.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/hist.h"
#include "storage/quality.h"
#include "storage/row.h"
#include "storage/segkey.h"
#include "storage/store.h"

static const char HELP[] =
    "usage: spearlabel stat DB [--min-rate R] [--max-rate R]\n\n"
    "Prints what the dataset DB holds: rows, errors by stage, how many rows are\n"
    "whole files and how many segments (of how many files), total semantic and\n"
    "text ids, audio hours, quality flags, model fingerprints (with the file each\n"
    "model was converted from, when the run recorded it), and the history of runs\n"
    "that wrote it. Reads committed data only; safe while a job writes.\n\n"
    "Quality (docs/QUALITY.md): the percentiles p1 p5 p25 p50 p75 p95 p99 of the\n"
    "duration, the score per text token, text tokens per second and semantic ids\n"
    "per text token (from a fixed-size histogram: each within 0.5 %% of the exact\n"
    "nearest-rank value), the count of each quality flag, and how many rows the\n"
    "default filter (spearlabel export --default-filter) keeps, to choose thresholds.\n\n"
    "Options:\n"
    "  --min-rate R, --max-rate R  bounds of the text-rate flags (text tokens per\n"
    "               second; defaults 4 and 30, for characters)\n"
    "  -h, --help   this text\n";

enum { Q_DURATION, Q_SCORE, Q_RATE, Q_SEM, Q_COUNT };

typedef struct totals {
    size_t rows, errors, bad, bad_rows; // bad: damaged records of both tables
    size_t segments, seg_sources, v1;   // segment rows, files they come from, format-1 rows
    char *prev_src;                     // the last segment's source (keys are sorted)
    size_t prev_src_n, prev_src_cap;
    unsigned long long n_sem, n_text;
    double seconds;
    size_t flag_maxlen, flag_loop, flag_rate_high, flag_rate_low, flagged;
    size_t by_stage[SL_STAGE_COUNT];
    rec_filter filter;         // the default filter, with the rate bounds given
    size_t kept, drop_score;   // rows it keeps; rows below its score threshold
    sl_hist *hist;             // (Q_COUNT)
} totals;

static int scan(store *s, totals *t, sl_err *err)
{
    store_iter *it;
    int rc = store_iter_open(&it, s, STORE_ROWS, err);
    if (rc)
        return rc;
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        rec_header h;
        sl_err e;
        t->rows++;
        if (rec_row_decode(v, vn, &h, &e)) {
            t->bad++;
            t->bad_rows++;
            continue;
        }
        t->v1 += h.version == 1;
        size_t src_n;
        if (seg_key_split(k, kn, &src_n)) { // a file's segments are consecutive keys
            t->segments++;
            if (src_n != t->prev_src_n || memcmp(k, t->prev_src, src_n) != 0) {
                t->seg_sources++;
                if (src_n > t->prev_src_cap) {
                    char *p = realloc(t->prev_src, src_n);
                    if (!p) {
                        store_iter_close(it);
                        return sl_fail(err, SL_ENOMEM, "stat: out of memory");
                    }
                    t->prev_src = p;
                    t->prev_src_cap = src_n;
                }
                memcpy(t->prev_src, k, src_n);
                t->prev_src_n = src_n;
            }
        }
        t->n_sem += h.n_semantic;
        t->n_text += h.n_text;
        t->seconds += (double)h.duration_s;
        rec_quality q;
        rec_quality_of(&h, t->filter.q, &q);
        t->flag_maxlen += (q.flags & REC_Q_MAXLEN) != 0;
        t->flag_loop += (q.flags & REC_Q_LOOP) != 0;
        t->flag_rate_high += (q.flags & REC_Q_RATE_HIGH) != 0;
        t->flag_rate_low += (q.flags & REC_Q_RATE_LOW) != 0;
        t->flagged += q.flags != 0;
        unsigned why = rec_filter_check(&t->filter, &q);
        t->kept += why == 0;
        t->drop_score += (why & REC_DROP_SCORE) != 0;
        sl_hist_add(&t->hist[Q_DURATION], (double)h.duration_s);
        sl_hist_add(&t->hist[Q_SCORE], q.score_per_token);
        sl_hist_add(&t->hist[Q_RATE], q.text_per_second);
        sl_hist_add(&t->hist[Q_SEM], q.semantic_per_text);
    }
    store_iter_close(it);
    if (rc < 0)
        return rc;
    if ((rc = store_iter_open(&it, s, STORE_ERRORS, err)))
        return rc;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        rec_error e;
        sl_err e2;
        t->errors++;
        if (rec_error_decode(v, vn, &e, &e2))
            t->bad++;
        else
            t->by_stage[e.stage]++;
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

typedef struct meta_kv {
    char *key, *val;
} meta_kv;

static const char *meta_find(const meta_kv *m, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].key, key) == 0)
            return m[i].val;
    return NULL;
}

// Keys in the store's (sorted) order. A fingerprint fp/<name> is followed by where the model
// came from when the run recorded it (origin/<name>, cli/provenance.h), which is therefore
// not printed again on its own.
static int print_meta(store *s, sl_err *err)
{
    store_iter *it;
    int rc = store_iter_open(&it, s, STORE_META, err);
    if (rc)
        return rc;
    meta_kv *m = NULL;
    size_t n = 0, cap = 0;
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        if (n == cap) {
            size_t c2 = cap ? 2 * cap : 64;
            meta_kv *m2 = realloc(m, c2 * sizeof *m2);
            if (!m2) {
                rc = sl_fail(err, SL_ENOMEM, "stat: out of memory reading meta");
                break;
            }
            m = m2;
            cap = c2;
        }
        m[n].key = strndup(k, kn);
        m[n].val = strndup(v, vn);
        if (!m[n].key || !m[n].val) {
            free(m[n].key);
            free(m[n].val);
            rc = sl_fail(err, SL_ENOMEM, "stat: out of memory reading meta");
            break;
        }
        n++;
    }
    store_iter_close(it);
    int printed_runs = 0, printed_meta = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *key = m[i].key;
        if (!strcmp(key, "format") || !strcmp(key, "format_version"))
            continue;
        char buf[300];
        if (!strncmp(key, "origin/", 7)) {
            snprintf(buf, sizeof buf, "fp/%s", key + 7);
            if (meta_find(m, n, buf))
                continue; // shown beside its fingerprint
        }
        int is_run = !strncmp(key, "run/", 4);
        if (is_run && !printed_runs) {
            printf("runs:\n");
            printed_runs = 1;
        } else if (!is_run && !printed_meta) {
            printf("meta:\n");
            printed_meta = 1;
        }
        printf("  %-24s %s\n", key, m[i].val);
        if (!strncmp(key, "fp/", 3)) {
            snprintf(buf, sizeof buf, "origin/%s", key + 3);
            const char *origin = meta_find(m, n, buf);
            if (origin)
                printf("  %-24s from %s\n", "", origin);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        free(m[i].val);
    }
    free(m);
    return rc < 0 ? rc : SL_OK;
}

static void print_quality(const totals *t)
{
    static const int ps[] = {1, 5, 25, 50, 75, 95, 99};
    static const char *const names[Q_COUNT] = {"duration (s)", "score per token",
                                               "text tokens/s", "semantic/text"};
    printf("quality:       %-17s", "percentile");
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        char label[8];
        snprintf(label, sizeof label, "p%d", ps[i]);
        printf(" %10s", label);
    }
    printf("\n");
    for (int k = 0; k < Q_COUNT; k++) {
        printf("               %-17s", names[k]);
        for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
            printf(" %10.4g", sl_hist_percentile(&t->hist[k], ps[i]));
        if (t->hist[k].n_nonfinite)
            printf("  (%llu not a number)", (unsigned long long)t->hist[k].n_nonfinite);
        printf("\n");
    }
}

int cmd_stat(int argc, char **argv)
{
    static const struct option opts[] = {{"min-rate", required_argument, 0, 'r'},
                                         {"max-rate", required_argument, 0, 'R'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    totals t = {.filter = rec_filter_default()};
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case 'r':
        case 'R':
            if (cli_parse_double(optarg, 0.0, 1e9, c == 'r' ? &t.filter.q.min_rate
                                                             : &t.filter.q.max_rate))
                return cli_usage_error("stat", "--%s must be a number >= 0 (text tokens per "
                                       "second), not '%s'", c == 'r' ? "min-rate" : "max-rate",
                                       optarg);
            break;
        default: return cli_usage_error("stat", "unknown option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("stat", "expected one dataset directory");
    if (t.filter.q.min_rate > t.filter.q.max_rate)
        return cli_usage_error("stat", "--min-rate %g is above --max-rate %g (4 and 30 unless "
                               "given)", t.filter.q.min_rate, t.filter.q.max_rate);
    const char *dir = argv[optind];
    store *s;
    sl_err err;
    if (store_open(&s, dir, STORE_READ, store_default_params(), &err)) {
        fprintf(stderr, "spearlabel stat: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    if (!(t.hist = malloc(Q_COUNT * sizeof *t.hist))) {
        fprintf(stderr, "spearlabel stat: out of memory\n");
        store_close(s);
        return SL_EXIT_FAIL;
    }
    for (int k = 0; k < Q_COUNT; k++)
        sl_hist_init(&t.hist[k]);
    int rc = scan(s, &t, &err);
    if (rc == SL_OK) {
        printf("dataset:       %s\n", dir);
        printf("format:        %s v%d\n", STORE_FORMAT_NAME, STORE_FORMAT_VERSION);
        printf("rows:          %zu\n", t.rows);
        printf("errors:        %zu", t.errors);
        const char *sep = " (";
        for (int i = 0; i < SL_STAGE_COUNT; i++)
            if (t.by_stage[i]) {
                printf("%s%s: %zu", sep, sl_stage_name(i), t.by_stage[i]);
                sep = ", ";
            }
        printf("%s\n", sep[0] == ',' ? ")" : "");
        printf("sources:       %zu whole files, %zu segments of %zu files", t.rows - t.bad_rows -
               t.segments, t.segments, t.seg_sources);
        if (t.v1)
            printf(" (%zu rows of row format 1: bounds derived from the duration)", t.v1);
        printf("\n");
        printf("semantic ids:  %llu\n", t.n_sem);
        printf("text ids:      %llu\n", t.n_text);
        printf("audio hours:   %.4f\n", t.seconds / 3600.0);
        printf("flags:         max-length %zu, loop %zu, rate-high %zu (> %g/s), rate-low %zu "
               "(< %g/s); %zu rows flagged\n", t.flag_maxlen, t.flag_loop, t.flag_rate_high,
               t.filter.q.max_rate, t.flag_rate_low, t.filter.q.min_rate, t.flagged);
        if (t.rows > t.bad_rows) {
            print_quality(&t);
            printf("default filter: keeps %zu of %zu rows (score per token < %g: %zu, flagged: "
                   "%zu)\n", t.kept, t.rows - t.bad_rows, t.filter.min_score_per_token, t.drop_score,
                   t.flagged);
        }
        if (t.bad)
            printf("damaged:       %zu records (run 'spearlabel verify')\n", t.bad);
        rc = print_meta(s, &err);
    }
    store_close(s);
    free(t.hist);
    free(t.prev_src);
    if (rc) {
        fprintf(stderr, "spearlabel stat: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    return SL_EXIT_OK;
}
