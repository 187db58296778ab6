// worker/exec.c — see exec.h.
#include "worker/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/clock.h"
#include "storage/row.h"
#include "storage/segkey.h"

// A result's quality flags are stored as they come: the pipeline's flag values are
// the row's (pipeline/ and storage/ cannot see each other; this file sees both).
#define SAME_FLAG(pl_flag, rec_flag) \
    _Static_assert((unsigned)(pl_flag) == (unsigned)(rec_flag), #pl_flag " is " #rec_flag)
SAME_FLAG(PL_FLAG_MAXLEN, REC_FLAG_MAXLEN);
SAME_FLAG(PL_FLAG_LOOP, REC_FLAG_LOOP);
SAME_FLAG(PL_FLAG_SEED_LAYOUT, REC_FLAG_SEED_EOS);
_Static_assert(((PL_FLAG_MAXLEN | PL_FLAG_LOOP | PL_FLAG_SEED_LAYOUT) & ~REC_FLAG_KNOWN) == 0,
               "every pipeline flag is a known row flag");

struct job_exec {
    pl *pipe;
    int max_batch;
    proto_item *items;
    const char **paths, **names;
    pl_range *ranges;     // [max_batch] WORK item ranges (PROTO_WORK_RANGES)
    pl_result *res;
    unsigned char *rec;   // record encoding buffer
    size_t rec_cap;
    char *crash_id;       // test-only
    long delay_ms;        // test-only
    sl_arena *scratch;    // per-unit copies of stored semantic ids (regenerate)
    const int32_t **sem;  // [max_batch]
    size_t *n_sem;        // [max_batch]
    float *dur;           // [max_batch]
};

int exec_open(job_exec **out, const pl_params *p, sl_err *err)
{
    *out = NULL;
    job_exec *x = calloc(1, sizeof *x);
    if (!x)
        return sl_fail(err, SL_ENOMEM, "worker: out of memory");
    int rc = pl_open(&x->pipe, p, err);
    if (rc) {
        free(x);
        return rc;
    }
    x->max_batch = p->max_batch > 0 ? p->max_batch : 1;
    size_t nb = (size_t)x->max_batch;
    x->items = calloc(nb, sizeof *x->items);
    x->paths = calloc(nb, sizeof(char *));
    x->names = calloc(nb, sizeof(char *));
    x->ranges = calloc(nb, sizeof *x->ranges);
    x->res = calloc(nb, sizeof *x->res);
    x->scratch = sl_arena_new(1u << 20);
    x->sem = calloc(nb, sizeof *x->sem);
    x->n_sem = calloc(nb, sizeof *x->n_sem);
    x->dur = calloc(nb, sizeof *x->dur);
    const char *cid = getenv("SL_TEST_CRASH_ID");
    x->crash_id = cid && *cid ? strdup(cid) : NULL;
    const char *d = getenv("SL_TEST_DELAY_MS");
    x->delay_ms = d ? atol(d) : 0;
    if (!x->items || !x->paths || !x->names || !x->ranges || !x->res || !x->scratch || !x->sem || !x->n_sem ||
        !x->dur) {
        exec_close(x);
        return sl_fail(err, SL_ENOMEM, "worker: out of memory");
    }
    *out = x;
    return SL_OK;
}

void exec_close(job_exec *x)
{
    if (!x)
        return;
    pl_close(x->pipe);
    free(x->items);
    free(x->paths);
    free(x->names);
    free(x->ranges);
    free(x->res);
    free(x->rec);
    free(x->crash_id);
    sl_arena_free(x->scratch);
    free(x->sem);
    free(x->n_sem);
    free(x->dur);
    free(x);
}

static int rec_reserve(job_exec *x, size_t n, sl_err *err)
{
    if (n <= x->rec_cap)
        return SL_OK;
    unsigned char *p = realloc(x->rec, n);
    if (!p)
        return sl_fail(err, SL_ENOMEM, "worker: out of memory");
    x->rec = p;
    x->rec_cap = n;
    return SL_OK;
}

int exec_unit(void *ctx, const void *work, size_t work_len, proto_buf *result, double *stats,
              sl_err *err)
{
    job_exec *x = ctx;
    double t0 = sl_now();
    uint32_t wid, flags;
    size_t n;
    int rc = proto_work_parse(work, work_len, &wid, &flags, x->items, (size_t)x->max_batch, &n,
                              err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        x->paths[i] = x->items[i].path;
        x->names[i] = x->items[i].id;
        if (x->crash_id && strcmp(x->crash_id, x->items[i].id) == 0) {
            fprintf(stderr, "worker: SL_TEST_CRASH_ID=%s: aborting on purpose\n", x->crash_id);
            abort();
        }
        if (x->delay_ms > 0) {
            struct timespec ts = {x->delay_ms / 1000, (x->delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    pl_timers t = {0};
    if (flags & PROTO_WORK_PAYLOAD) { // regenerate: the payload is the stored row
        sl_arena_reset(x->scratch);
        for (size_t i = 0; i < n; i++) {
            rec_header h;
            if ((rc = rec_row_decode(x->items[i].path, x->items[i].path_len, &h, err)))
                return sl_err_prefix(err, "worker: stored row \"%s\"", x->items[i].id);
            int32_t *ids = sl_arena_calloc(x->scratch, (size_t)h.n_semantic + 1, sizeof(int32_t));
            if (!ids)
                return sl_fail(err, SL_ENOMEM, "worker: out of memory");
            rec_row_ids(x->items[i].path, &h, ids, NULL);
            x->sem[i] = ids;
            x->n_sem[i] = rec_row_n_source(&h);
            x->dur[i] = h.duration_s;
        }
        rc = pl_run_ids(x->pipe, x->sem, x->n_sem, x->dur, x->names, n, x->res, &t, err);
    } else {
        // Manifest pieces: each item's range of its file (0, 0 = the whole file).
        for (size_t i = 0; i < n; i++)
            x->ranges[i] = (pl_range){x->items[i].start, x->items[i].end};
        rc = pl_run(x->pipe, x->paths, (flags & PROTO_WORK_RANGES) ? x->ranges : NULL, x->names,
                    n, x->res, &t, err);
    }
    if (rc)
        return rc;
    if ((rc = proto_result_begin(result, wid, err)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        const pl_result *r = &x->res[i];
        long len;
        if (r->ok) {
            rec_header h = {.flags = (uint16_t)r->flags, .n_semantic = (uint32_t)r->n_semantic,
                            .n_text = (uint32_t)r->n_text, .duration_s = r->duration_s,
                            .score = r->score, .start = r->start, .end = r->end};
            size_t src_len;
            if (flags & PROTO_WORK_PAYLOAD) { // regenerate: the stored row's source and bounds
                rec_header old;               // (a version-1 row: its derived bounds)
                if ((rc = rec_row_decode(x->items[i].path, x->items[i].path_len, &old, err)))
                    return sl_err_prefix(err, "worker: stored row \"%s\"", x->items[i].id);
                h.start = old.start;
                h.end = old.end;
                h.source = old.source;
                h.source_len = old.source_len;
            } else if (seg_key_split(x->items[i].id, x->items[i].id_len, &src_len)) {
                h.source = x->items[i].id; // a segment: the file's id before the suffix
                h.source_len = (uint32_t)src_len;
            } // else a whole file: source_len 0, the source is the key
            size_t need = rec_row_bytes(r->n_semantic, r->n_text, h.source_len);
            if ((rc = rec_reserve(x, need, err)))
                return rc;
            len = rec_row_encode(&h, r->semantic, r->text, x->rec, x->rec_cap, err);
            if (len < 0)
                return (int)len;
            rc = proto_result_add(result, PROTO_REC_ROW, x->items[i].id, x->items[i].id_len,
                                  x->rec, (size_t)len, err);
        } else {
            size_t need = rec_error_bytes(strlen(r->err.msg));
            if ((rc = rec_reserve(x, need, err)))
                return rc;
            len = rec_error_encode(r->stage, r->err.code,
                                   (flags & PROTO_WORK_ALONE) ? 2 : 1, r->err.msg, x->rec,
                                   x->rec_cap, err);
            if (len < 0)
                return (int)len;
            rc = proto_result_add(result, PROTO_REC_ERROR, x->items[i].id, x->items[i].id_len,
                                  x->rec, (size_t)len, err);
        }
        if (rc)
            return rc;
    }
    stats[PROTO_T_AUDIO] += t.audio;
    stats[PROTO_T_FEATURES] += t.features;
    stats[PROTO_T_TOKENS] += t.tokens;
    stats[PROTO_T_TEXT] += t.text;
    stats[PROTO_N_UTTS] += (double)t.utts;
    stats[PROTO_N_ROWS] += (double)t.ok;
    stats[PROTO_N_ERRORS] += (double)(t.utts - t.ok);
    stats[PROTO_AUDIO_SECONDS] += t.audio_s;
    stats[PROTO_T_BUSY] += sl_now() - t0;
    return SL_OK;
}
