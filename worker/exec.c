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

// A unit the scheduler holds: its WORK bytes (items point into them), how far its
// utterances got, and the outcomes known so far (ids copied into mem).
typedef struct held_unit {
    int used;
    uint64_t seq;      // push order: older units are tokenised first
    proto_buf work;
    uint32_t wid, flags;
    size_t n, next, n_done; // utterances; the next to tokenise; outcomes known
    proto_item *items; // [max_batch]
    pl_result *res;    // [max_batch]
    sl_arena *mem;
} held_unit;

struct job_exec {
    pl *pipe;
    int max_batch;
    int per_unit;         // test-only: the old path, one pl_run per unit
    held_unit held[EXEC_HELD];
    uint64_t seq;
    int pool_cap;
    int *slot_unit, *slot_utt; // [pool_cap] which unit / utterance a pool slot decodes
    proto_item *items;
    const char **paths, **names;
    pl_range *ranges;     // [max_batch] WORK item ranges (PROTO_WORK_RANGES)
    pl_result *res;
    unsigned char *rec;   // record encoding buffer
    size_t rec_cap;
    char *crash_id;       // test-only
    long delay_ms;        // test-only
    sl_arena *scratch;    // per-unit copies of stored semantic ids (regenerate)
    proto_partial_fn partial; // exec_unit's sink for PARTIAL messages (one-rank runs)
    void *sink;
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
    x->max_batch = p->max_batch > 0 ? p->max_batch : 1;
    pl_params pp = *p;
    if (pp.pool <= 0) // what the worker holds: PROTO_PREFETCH units
        pp.pool = EXEC_HELD * x->max_batch;
    int rc = pl_open(&x->pipe, &pp, err);
    if (rc) {
        free(x);
        return rc;
    }
    if ((rc = pl_pool_begin(x->pipe, err))) {
        pl_close(x->pipe);
        free(x);
        return rc;
    }
    x->pool_cap = pl_pool_cap(x->pipe);
    size_t nb = (size_t)x->max_batch;
    int bad = 0;
    for (int k = 0; k < EXEC_HELD; k++) {
        held_unit *h = &x->held[k];
        h->items = calloc(nb, sizeof *h->items);
        h->res = calloc(nb, sizeof *h->res);
        h->mem = sl_arena_new(1u << 16);
        bad |= !h->items || !h->res || !h->mem;
    }
    x->slot_unit = calloc((size_t)x->pool_cap, sizeof(int));
    x->slot_utt = calloc((size_t)x->pool_cap, sizeof(int));
    bad |= !x->slot_unit || !x->slot_utt;
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
    const char *pu = getenv("SL_TEST_PER_UNIT");
    x->per_unit = pu && *pu == '1';
    if (bad || !x->items || !x->paths || !x->names || !x->ranges || !x->res || !x->scratch ||
        !x->sem || !x->n_sem || !x->dur) {
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
    for (int k = 0; k < EXEC_HELD; k++) {
        proto_buf_free(&x->held[k].work);
        free(x->held[k].items);
        free(x->held[k].res);
        sl_arena_free(x->held[k].mem);
    }
    free(x->slot_unit);
    free(x->slot_utt);
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

// The records of one unit: x->items[0..n) and their outcomes x->res[0..n), as one RESULT.
static int encode_records(job_exec *x, uint32_t wid, uint32_t flags, size_t n, proto_buf *result,
                          sl_err *err)
{
    int rc;
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
    return SL_OK;
}

static void add_timers(double *stats, const pl_timers *t)
{
    stats[PROTO_T_AUDIO] += t->audio;
    stats[PROTO_T_FEATURES] += t->features;
    stats[PROTO_T_TOKENS] += t->tokens;
    stats[PROTO_T_TEXT] += t->text;
    stats[PROTO_N_UTTS] += (double)t->utts;
    stats[PROTO_N_ROWS] += (double)t->ok;
    stats[PROTO_N_ERRORS] += (double)(t->utts - t->ok);
    stats[PROTO_AUDIO_SECONDS] += t->audio_s;
    stats[PROTO_N_DEC_STEPS] += t->dec_steps;
    stats[PROTO_N_DEC_ROWS] += t->dec_rows;
}

// Test-only fault injection, when an utterance is started.
static void test_faults(const job_exec *x, const char *id)
{
    if (x->crash_id && strcmp(x->crash_id, id) == 0) {
        fprintf(stderr, "worker: SL_TEST_CRASH_ID=%s: aborting on purpose\n", x->crash_id);
        abort();
    }
    if (x->delay_ms > 0) {
        struct timespec ts = {x->delay_ms / 1000, (x->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

// The old path (SL_TEST_PER_UNIT=1): the unit's front halves, then one batched decode.
static int run_per_unit(job_exec *x, const void *work, size_t work_len, proto_buf *result,
                        double *stats, sl_err *err)
{
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
        test_faults(x, x->items[i].id);
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
    if ((rc = encode_records(x, wid, flags, n, result, err)))
        return rc;
    add_timers(stats, &t);
    stats[PROTO_T_BUSY] += sl_now() - t0;
    return SL_OK;
}

// ---- the scheduler: one decoding pool across the held units ---------------------------

int exec_held(const job_exec *x)
{
    int n = 0;
    for (int k = 0; k < EXEC_HELD; k++)
        n += x->held[k].used;
    return n;
}

int exec_push(job_exec *x, const void *work, size_t work_len, sl_err *err)
{
    held_unit *h = NULL;
    for (int k = 0; k < EXEC_HELD && !h; k++)
        if (!x->held[k].used)
            h = &x->held[k];
    if (!h)
        return sl_fail(err, SL_EINVAL, "worker: WORK beyond the %d units a worker holds",
                       EXEC_HELD);
    h->work.len = 0;
    int rc = proto_buf_reserve(&h->work, work_len + 1, err);
    if (rc)
        return rc;
    memcpy(h->work.p, work, work_len);
    h->work.len = work_len;
    if ((rc = proto_work_parse(h->work.p, work_len, &h->wid, &h->flags, h->items,
                               (size_t)x->max_batch, &h->n, err)))
        return rc;
    h->used = 1;
    h->seq = x->seq++;
    h->next = h->n_done = 0;
    sl_arena_reset(h->mem);
    return SL_OK;
}

// Keeps utterance i's outcome, copying its ids (they are lent by the pipeline).
static int keep_outcome(held_unit *h, size_t i, const pl_result *r, sl_err *err)
{
    pl_result *d = &h->res[i];
    *d = *r;
    if (r->ok) {
        int32_t *s = sl_arena_calloc(h->mem, r->n_semantic + 1, sizeof(int32_t));
        int32_t *t = sl_arena_calloc(h->mem, r->n_text + 1, sizeof(int32_t));
        if (!s || !t)
            return sl_fail(err, SL_ENOMEM, "worker: out of memory");
        memcpy(s, r->semantic, r->n_semantic * sizeof(int32_t));
        memcpy(t, r->text, r->n_text * sizeof(int32_t));
        d->semantic = s;
        d->text = t;
    }
    h->n_done++;
    return SL_OK;
}

// The oldest held unit matching: complete (all outcomes known) or with an
// utterance still to start.
static held_unit *oldest(job_exec *x, int complete)
{
    held_unit *best = NULL;
    for (int k = 0; k < EXEC_HELD; k++) {
        held_unit *h = &x->held[k];
        if (!h->used || (complete ? h->n_done < h->n : h->next >= h->n))
            continue;
        if (!best || h->seq < best->seq)
            best = h;
    }
    return best;
}

// Front half of the next utterance of h; it joins the pool or its outcome is final.
static int start_next(job_exec *x, held_unit *h, pl_timers *t, sl_err *err)
{
    size_t i = h->next++;
    const proto_item *it = &h->items[i];
    test_faults(x, it->id);
    pl_result r;
    int slot, rc;
    if (h->flags & PROTO_WORK_PAYLOAD) { // regenerate: the payload is the stored row
        rec_header rh;
        if ((rc = rec_row_decode(it->path, it->path_len, &rh, err)))
            return sl_err_prefix(err, "worker: stored row \"%s\"", it->id);
        sl_arena_reset(x->scratch);
        int32_t *ids = sl_arena_calloc(x->scratch, (size_t)rh.n_semantic + 1, sizeof(int32_t));
        if (!ids)
            return sl_fail(err, SL_ENOMEM, "worker: out of memory");
        rec_row_ids(it->path, &rh, ids, NULL);
        rc = pl_pool_add_ids(x->pipe, ids, rec_row_n_source(&rh), rh.duration_s, it->id, &r,
                             &slot, t, err);
    } else {
        pl_range range = {it->start, it->end}; // 0, 0 (whole) without PROTO_WORK_RANGES
        rc = pl_pool_add_file(x->pipe, it->path, (h->flags & PROTO_WORK_RANGES) ? &range : NULL,
                              it->id, &r, &slot, t, err);
    }
    if (rc)
        return rc;
    if (slot < 0)
        return keep_outcome(h, i, &r, err);
    x->slot_unit[slot] = (int)(h - x->held);
    x->slot_utt[slot] = (int)i;
    return SL_OK;
}

uint32_t exec_next_wid(job_exec *x)
{
    held_unit *h = oldest(x, 1);
    if (!h && pl_pool_free(x->pipe) > 0)
        h = oldest(x, 0);
    for (int k = 0; k < EXEC_HELD && !h; k++) // a decoder step: the oldest unit in the pool
        if (x->held[k].used && (!h || x->held[k].seq < h->seq))
            h = &x->held[k];
    return h ? h->wid : 0;
}

int exec_advance(job_exec *x, proto_buf *result, int *ready, double *stats, sl_err *err)
{
    *ready = 0;
    if (x->per_unit) { // the old path: the oldest held unit, whole
        held_unit *u = NULL;
        for (int k = 0; k < EXEC_HELD; k++)
            if (x->held[k].used && (!u || x->held[k].seq < u->seq))
                u = &x->held[k];
        if (!u)
            return SL_OK;
        u->used = 0;
        *ready = PROTO_RESULT;
        return run_per_unit(x, u->work.p, u->work.len, result, stats, err);
    }
    double t0 = sl_now();
    pl_timers t = {0};
    int rc = SL_OK;
    held_unit *h = oldest(x, 1);
    if (h) { // a unit whose outcomes are all known: its RESULT, in item order
        memcpy(x->items, h->items, h->n * sizeof *h->items);
        memcpy(x->res, h->res, h->n * sizeof *h->res);
        if ((rc = encode_records(x, h->wid, h->flags, h->n, result, err)))
            return rc;
        h->used = 0;
        *ready = PROTO_RESULT;
    } else if (pl_pool_free(x->pipe) > 0 && (h = oldest(x, 0))) {
        rc = start_next(x, h, &t, err);
    } else if (pl_pool_live(x->pipe) > 0) {
        if (!(rc = pl_pool_step(x->pipe, &t, err))) {
            int slot;
            pl_result r;
            while (!rc && pl_pool_take(x->pipe, &slot, &r, &t))
                rc = keep_outcome(&x->held[x->slot_unit[slot]], (size_t)x->slot_utt[slot], &r,
                                  err);
        }
    }
    add_timers(stats, &t);
    stats[PROTO_T_BUSY] += sl_now() - t0;
    return rc;
}

void exec_set_partial(void *ctx, proto_partial_fn fn, void *sink)
{
    job_exec *x = ctx;
    x->partial = fn;
    x->sink = sink;
}

int exec_unit(void *ctx, const void *work, size_t work_len, proto_buf *result, double *stats,
              sl_err *err)
{
    job_exec *x = ctx;
    if (x->per_unit)
        return run_per_unit(x, work, work_len, result, stats, err);
    if (exec_held(x) > 0)
        return sl_fail(err, SL_EINVAL, "worker: exec_unit while the scheduler holds units");
    int rc = exec_push(x, work, work_len, err), ready = 0;
    while (!rc && ready != PROTO_RESULT) {
        rc = exec_advance(x, result, &ready, stats, err);
        if (!rc && ready == PROTO_PARTIAL)
            rc = x->partial ? x->partial(x->sink, result->p, result->len, err)
                            : sl_fail(err, SL_EINVAL, "worker: a partial result with no sink");
    }
    return rc;
}
