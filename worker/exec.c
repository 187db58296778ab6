// worker/exec.c — see exec.h.
#include "worker/exec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sndfile.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/stop.h"
#include "pipeline/audio_stream.h"
#include "pipeline/segment.h"
#include "pipeline/vad_json.h"
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

// LMDB's default largest key (storage/store.h store_max_key; the worker links no LMDB):
// an item id that leaves no room for the 20-byte segment suffix cannot be segmented.
#define EXEC_MAX_KEY 511

// One segment of a long item, from its cut until its record goes out in a PARTIAL.
typedef struct seg_rec {
    int64_t start, end; // [start, end) in 16 kHz samples of the file
    int done;           // outcome known (else decoding in the pool)
    pl_result res;      // its ids malloc'd (owned here) once done
} seg_rec;

enum { LI_UNSEEN = 0, LI_PLAIN, LI_LONG };

// How one item of a held unit is processed. A long item (longer than --max-seconds, or
// resumed with PROTO_ITEM_CONTINUE) is cut into segments while it is tokenised: a stream
// from its start, a cutter (or the .json's spans), one segment pulled each time the
// scheduler wants the unit's next utterance. Its records go out in PARTIALs, in cut order,
// as the finished prefix grows; the unit's RESULT holds only its plain items.
typedef struct long_item {
    int kind;            // LI_*
    int cont;            // resumed at a committed cut (PROTO_ITEM_CONTINUE)
    int cutting;         // more segments may come
    int finished;        // everything sent (done mark or an error under the item id)
    int64_t start, end;  // the item: [start, end) in 16 kHz samples (end: the file's)
    audio_stream *as;    // open while cutting by samples
    seg_cutter *cut;
    int64_t pos;         // the next sample as gives
    float *hold;         // samples [hold0, hold0 + hold_n) read by the cutting pass: from
    size_t hold_n, hold_cap; // the current cut on (at most one cutting window and a block),
    int64_t hold0;       //   handed to the token stage, so a segment is not read twice
    int64_t cut_end;     // cut is fed up to here
    seg_span *spans;     // --vad-json: the joined chunks left to hand out
    size_t n_spans, next_span;
    seg_rec *q;          // q[0..q_len): segments q_base.. not yet sent, in cut order
    size_t q_len, q_cap;
    uint64_t q_base;
    size_t n_live;       // of them in the decoding pool
    size_t n_segments;   // segments produced in this run (dropped silent ones not counted)
    int64_t last_end;    // the end of the last segment produced (start before any)
    int stopped;         // a stop signal ended the cutting at a cut: no done mark
    int failed;          // the file failed: one error record under the item id follows
    sl_stage fail_stage; //   the segments produced before it
    char fail_msg[512];
} long_item;

// A unit the scheduler holds: its WORK bytes (items point into them), how far its
// utterances got, and the outcomes known so far (ids copied into mem).
typedef struct held_unit {
    int used;
    uint64_t seq;      // push order: older units are tokenised first
    proto_buf work;
    uint32_t wid, flags;
    size_t n, next, n_done; // items; the next to tokenise; items whose records are known
                            //   (a long item: once all its records went out)
    proto_item *items; // [max_batch]
    pl_result *res;    // [max_batch]
    long_item *li;     // [max_batch]
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
    int64_t *slot_seg;    // [pool_cap] which segment of that long item (-1: a plain item)
    seg_params seg;       // the cutting (p.seg); cutting needs audio at SEG_RATE
    int can_cut;          // audio.target_hz == SEG_RATE and not regenerate
    int vad_json;
    audio_stream_params sp;
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
    x->seg = p->seg;
    x->vad_json = p->vad_json;
    x->can_cut = !p->text_only && p->audio.target_hz == SEG_RATE;
    x->sp = audio_stream_default_params(); // as pipeline/audio.c reads: the same samples
    x->sp.target_hz = p->audio.target_hz;
    // Segments are whole 10 ms frames (segment.h): when --max-seconds is not a multiple
    // of 10 ms the longest one exceeds it by up to 5 ms, which the audio stage must take.
    // Whole items are still judged against --max-seconds itself (needs_cut).
    double seg_max = (double)lround((double)p->seg.max_seconds * 100.0) / 100.0;
    if (x->can_cut && seg_max > (double)pp.audio.max_seconds)
        pp.audio.max_seconds = nextafterf((float)seg_max, INFINITY);
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
        h->li = calloc(nb, sizeof *h->li);
        h->mem = sl_arena_new(1u << 16);
        bad |= !h->items || !h->res || !h->li || !h->mem;
    }
    x->slot_unit = calloc((size_t)x->pool_cap, sizeof(int));
    x->slot_utt = calloc((size_t)x->pool_cap, sizeof(int));
    x->slot_seg = calloc((size_t)x->pool_cap, sizeof(int64_t));
    bad |= !x->slot_unit || !x->slot_utt || !x->slot_seg;
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

static void li_release(long_item *li);

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
        held_unit *h = &x->held[k];
        proto_buf_free(&h->work);
        if (h->li)
            for (int i = 0; i < x->max_batch; i++)
                li_release(&h->li[i]);
        free(h->items);
        free(h->res);
        free(h->li);
        sl_arena_free(h->mem);
    }
    free(x->slot_unit);
    free(x->slot_utt);
    free(x->slot_seg);
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

// One outcome as a record under key: a row (its source: the stored row's with a payload,
// src/src_len when given, else derived from a segment key, else none) or an error.
static int add_outcome(job_exec *x, proto_buf *result, uint32_t flags, const char *key,
                       size_t key_len, const void *payload, size_t payload_len, const char *src,
                       size_t src_len, const pl_result *r, sl_err *err)
{
    int rc;
    long len;
    if (r->ok) {
        rec_header h = {.flags = (uint16_t)r->flags, .n_semantic = (uint32_t)r->n_semantic,
                        .n_text = (uint32_t)r->n_text, .duration_s = r->duration_s,
                        .score = r->score, .start = r->start, .end = r->end};
        size_t split;
        if (flags & PROTO_WORK_PAYLOAD) { // regenerate: the stored row's source and bounds
            rec_header old;               // (a version-1 row: its derived bounds)
            if ((rc = rec_row_decode(payload, payload_len, &old, err)))
                return sl_err_prefix(err, "worker: stored row \"%s\"", key);
            h.start = old.start;
            h.end = old.end;
            h.source = old.source;
            h.source_len = old.source_len;
        } else if (src) { // a segment of a long item: the item's id
            h.source = src;
            h.source_len = (uint32_t)src_len;
        } else if (seg_key_split(key, key_len, &split)) {
            h.source = key; // a manifest piece: the file's id before the suffix
            h.source_len = (uint32_t)split;
        } // else a whole file: source_len 0, the source is the key
        size_t need = rec_row_bytes(r->n_semantic, r->n_text, h.source_len);
        if ((rc = rec_reserve(x, need, err)))
            return rc;
        len = rec_row_encode(&h, r->semantic, r->text, x->rec, x->rec_cap, err);
        if (len < 0)
            return (int)len;
        return proto_result_add(result, PROTO_REC_ROW, key, key_len, x->rec, (size_t)len, err);
    }
    size_t need = rec_error_bytes(strlen(r->err.msg));
    if ((rc = rec_reserve(x, need, err)))
        return rc;
    len = rec_error_encode(r->stage, r->err.code, (flags & PROTO_WORK_ALONE) ? 2 : 1, r->err.msg,
                           x->rec, x->rec_cap, err);
    if (len < 0)
        return (int)len;
    return proto_result_add(result, PROTO_REC_ERROR, key, key_len, x->rec, (size_t)len, err);
}

// The records of one unit: x->items[0..n) and their outcomes x->res[0..n), as one RESULT.
static int encode_records(job_exec *x, uint32_t wid, uint32_t flags, size_t n, proto_buf *result,
                          sl_err *err)
{
    int rc;
    if ((rc = proto_result_begin(result, wid, err)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        const proto_item *it = &x->items[i];
        if ((rc = add_outcome(x, result, flags, it->id, it->id_len, it->path, it->path_len, NULL,
                              0, &x->res[i], err)))
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

// Test-only fault injection: a crash when an item (or a segment, by its key) is started.
static void test_crash(const job_exec *x, const char *id)
{
    if (x->crash_id && strcmp(x->crash_id, id) == 0) {
        fprintf(stderr, "worker: SL_TEST_CRASH_ID=%s: aborting on purpose\n", x->crash_id);
        abort();
    }
}

// Test-only fault injection, when an utterance (a plain item or one segment) is started.
static void test_faults(const job_exec *x, const char *id)
{
    test_crash(x, id);
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

// ---- long items: cutting while tokenising -----------------------------------------

static void li_close_source(long_item *li)
{
    audio_stream_close(li->as);
    seg_close(li->cut);
    li->as = NULL;
    li->cut = NULL;
    li->hold_n = 0;
}

static void li_release(long_item *li)
{
    li_close_source(li);
    free(li->spans);
    free(li->hold);
    for (size_t k = 0; k < li->q_len; k++) {
        free((void *)li->q[k].res.semantic);
        free((void *)li->q[k].res.text);
    }
    free(li->q);
    memset(li, 0, sizeof *li);
}

// The item's file fails (cannot be opened, read, decoded; bad .json; no key): cutting
// stops; after the segments produced before, one error record under the item id.
static void li_fail(long_item *li, sl_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void li_fail(long_item *li, sl_stage stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(li->fail_msg, sizeof li->fail_msg, fmt, ap);
    va_end(ap);
    li->failed = 1;
    li->fail_stage = stage;
    li->cutting = 0;
    li_close_source(li);
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
    for (int i = 0; i < x->max_batch; i++)
        li_release(&h->li[i]);
    h->used = 1;
    h->seq = x->seq++;
    h->next = h->n_done = 0;
    sl_arena_reset(h->mem);
    return SL_OK;
}

// 1 when a whole file is longer than the pipeline takes whole: the audio stage's own test
// (pipeline/audio.c: the header's seconds against max_seconds), or more samples than
// max_seconds holds.
static int too_long_whole(const job_exec *x, const audio_stream_info *in)
{
    double header_s = in->file_frames > 0 ? in->duration_s : 0.0;
    return header_s > (double)x->seg.max_seconds ||
           (double)in->n_samples > (double)x->seg.max_seconds * SEG_RATE;
}

// --vad-json: the spans of the item from the .json beside its file (see exec.h).
static void vad_spans(job_exec *x, const proto_item *it, long_item *li)
{
    char jp[4200];
    if (!seg_vad_json_path(it->path, jp, sizeof jp)) {
        li_fail(li, SL_STAGE_INPUT, "vad: %s: path too long for its .json", it->path);
        return;
    }
    seg_chunk *ch = NULL;
    size_t n = 0;
    sl_err e;
    if (seg_vad_json_read(jp, &ch, &n, &e)) {
        li_fail(li, SL_STAGE_INPUT, "%s (--vad-json, for %s)", e.msg, it->path);
        return;
    }
    // Chunks before the item's start are not its own. One reaching over the start: a
    // fresh piece clips it (and joins it as any chunk); a resumed item's cut lies inside
    // it only when the uninterrupted run cut it with a cutter (a joined span never holds
    // a cut), so it is cut again from the cut on. The rest is joined greedily as an
    // uninterrupted run joins it from there (segment.h seg_join_chunks).
    size_t k0 = 0;
    while (k0 < n && llround(ch[k0].end * SEG_RATE) <= li->start)
        k0++;
    seg_span forced = {0, 0, 0, 0};
    int have_forced = 0;
    if (k0 < n && llround(ch[k0].start * SEG_RATE) < li->start) {
        if (li->cont) {
            int64_t e0 = llround(ch[k0].end * SEG_RATE);
            forced = (seg_span){li->start, e0 < li->end ? e0 : li->end, SEG_VAD_LONG, 0};
            have_forced = 1;
            k0++;
        } else {
            ch[k0].start = (double)li->start / SEG_RATE;
        }
    }
    li->spans = malloc((n - k0 + 1) * sizeof *li->spans);
    if (!li->spans) {
        free(ch);
        li_fail(li, SL_STAGE_AUDIO, "worker: out of memory for %zu VAD chunks", n);
        return;
    }
    size_t m = 0;
    if (have_forced)
        li->spans[m++] = forced;
    size_t got = 0;
    int rc = seg_join_chunks(ch + k0, n - k0, li->end, x->seg, li->spans + m, &got, &e);
    free(ch);
    if (rc) {
        li_fail(li, SL_STAGE_INPUT, "vad: %s: %s", jp, e.msg);
        return;
    }
    li->n_spans = m + got;
    li->next_span = 0;
}

// Looks at item i first: plain (one utterance, as pl_run takes it) or long (cut). A long
// item gets its stream and cutter (or spans) here; a file that cannot be opened is left
// plain, so its error record is the audio stage's as for any file.
static int classify(job_exec *x, held_unit *h, size_t i, sl_err *err)
{
    const proto_item *it = &h->items[i];
    long_item *li = &h->li[i];
    li->kind = LI_PLAIN;
    if (!x->can_cut || (h->flags & PROTO_WORK_PAYLOAD))
        return SL_OK;
    int ranged = (h->flags & PROTO_WORK_RANGES) != 0;
    li->cont = ranged && (it->item_flags & PROTO_ITEM_CONTINUE);
    int piece = ranged && it->end > 0;
    li->start = ranged ? it->start : 0;
    li->end = piece ? it->end : 0;
    if (!li->cont && piece &&
        !((double)(it->end - it->start) / SEG_RATE > (double)x->seg.max_seconds))
        return SL_OK; // audio_read_range's test: at most max_seconds is one row
    audio_stream *as = NULL;
    sl_err e;
    if (audio_stream_open(&as, it->path, x->sp, 0, &e)) {
        if (!li->cont)
            return SL_OK; // plain: the audio stage reports it
        li->kind = LI_LONG;
        li_fail(li, SL_STAGE_AUDIO, "segmenting %s: resuming at %.3f s (sample %lld): %s",
                it->path, (double)li->start / SEG_RATE, (long long)li->start, e.msg);
        return SL_OK;
    }
    audio_stream_info in;
    audio_stream_get_info(as, &in);
    if (!li->cont && !piece && !too_long_whole(x, &in)) {
        audio_stream_close(as);
        return SL_OK;
    }
    li->kind = LI_LONG;
    li->cutting = 1;
    li->last_end = li->start;
    int mpeg = (in.file_format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
    int64_t file_end = in.n_samples;
    if (li->end == 0)
        li->end = file_end;
    audio_stream_close(as);
    if (!mpeg && li->end > file_end + AUDIO_PIECE_SLACK) {
        li_fail(li, SL_STAGE_AUDIO, "audio: %s: piece %.3f-%.3f s (samples %lld-%lld at %d Hz) "
                "ends past the end of the file (%lld samples, %.3f s)", it->path,
                (double)li->start / SEG_RATE, (double)li->end / SEG_RATE, (long long)li->start,
                (long long)li->end, SEG_RATE, (long long)file_end, (double)file_end / SEG_RATE);
        return SL_OK;
    }
    if (li->end >= (int64_t)SEG_KEY_LIMIT_SAMPLES) {
        li_fail(li, SL_STAGE_AUDIO, "segmenting %s: %.3f s is too long for segment keys "
                "(<id>@SSSSS.sss-EEEEE.eee: at most 99999.999 s)", it->path,
                (double)li->end / SEG_RATE);
        return SL_OK;
    }
    if (it->id_len + SEG_KEY_SUFFIX_BYTES > EXEC_MAX_KEY) {
        li_fail(li, SL_STAGE_INPUT, "segmenting %s: the id (%u bytes) leaves no room for the "
                "%d-byte segment suffix in a %d-byte key", it->path, it->id_len,
                SEG_KEY_SUFFIX_BYTES, EXEC_MAX_KEY);
        return SL_OK;
    }
    if (li->start >= li->end) { // a resumed item whose cut is its end: nothing is left
        li->cutting = 0;
        return SL_OK;
    }
    if (x->vad_json) {
        vad_spans(x, it, li);
        return SL_OK;
    }
    int rc = audio_stream_open(&li->as, it->path, x->sp, li->start, &e);
    if (rc == SL_OK)
        rc = seg_open(&li->cut, x->seg, li->start, &e);
    if (rc == SL_ENOMEM) {
        *err = e;
        return rc;
    }
    if (rc) {
        li_fail(li, SL_STAGE_AUDIO, "segmenting %s: at %.3f s (sample %lld): %s", it->path,
                (double)li->start / SEG_RATE, (long long)li->start, e.msg);
        return SL_OK;
    }
    li->pos = li->hold0 = li->start;
    li->hold_n = 0;
    li->cut_end = li->end;
    return SL_OK;
}

// Drops the held samples before the cutter's current cut.
static void hold_trim(long_item *li)
{
    int64_t pos = seg_pos(li->cut);
    size_t drop = pos > li->hold0 ? (size_t)(pos - li->hold0) : 0;
    if (drop > li->hold_n)
        drop = li->hold_n;
    if (drop == 0)
        return;
    memmove(li->hold, li->hold + drop, (li->hold_n - drop) * sizeof(float));
    li->hold_n -= drop;
    li->hold0 += (int64_t)drop;
}

// The next segment of a long item into *sp: 1; 0 when no more come (cutting over, or the
// file failed: li->failed). Samples are read in 1 s blocks on the file's grid (block
// edges at whole seconds), pushed into the cutter until it decides a segment; a VAD span
// needs no samples, a chunk longer than max_seconds gets a cutter fed exactly its own.
static int next_segment(job_exec *x, held_unit *h, size_t i, seg_span *sp, sl_err *err)
{
    const proto_item *it = &h->items[i];
    long_item *li = &h->li[i];
    sl_err e;
    for (;;) {
        if (!li->cutting)
            return 0;
        if (li->cut) {
            if (seg_next(li->cut, sp))
                return 1;
            if (seg_done(li->cut)) {
                li_close_source(li);
                if (!li->spans)
                    li->cutting = 0;
                continue;
            }
            size_t want = SEG_RATE - (size_t)(li->pos % SEG_RATE), k = 0;
            if (li->cut_end - li->pos < (int64_t)want)
                want = (size_t)(li->cut_end - li->pos);
            hold_trim(li); // samples before the cut: every segment there is consumed or dropped
            int rc = SL_OK;
            if (li->hold_n + want > li->hold_cap) {
                size_t cap = (li->hold_n + want) * 2;
                float *h2 = realloc(li->hold, cap * sizeof(float));
                if (!h2)
                    return sl_fail(err, SL_ENOMEM, "worker: out of memory for %zu samples", cap);
                li->hold = h2;
                li->hold_cap = cap;
            }
            float *blk = li->hold + li->hold_n;
            if (want)
                rc = audio_stream_read(li->as, blk, want, &k, &e);
            if (rc == SL_OK && k > 0)
                rc = seg_push(li->cut, blk, k, &e);
            if (rc == SL_OK)
                li->hold_n += k;
            if (rc == SL_ENOMEM) {
                *err = e;
                return rc;
            }
            if (rc) {
                li_fail(li, SL_STAGE_AUDIO, "segmenting %s: reading on from %.3f s (sample %lld): %s",
                        it->path, (double)li->pos / SEG_RATE, (long long)li->pos, e.msg);
                return 0;
            }
            li->pos += (int64_t)k;
            if (k < want || li->pos >= li->cut_end)
                seg_finish(li->cut);
            continue;
        }
        if (!li->spans || li->next_span >= li->n_spans) {
            li->cutting = 0;
            return 0;
        }
        seg_span v = li->spans[li->next_span++];
        if (v.how != SEG_VAD_LONG) {
            *sp = v;
            return 1;
        }
        int rc = audio_stream_open(&li->as, it->path, x->sp, v.start, &e);
        if (rc == SL_OK)
            rc = seg_open(&li->cut, x->seg, v.start, &e);
        if (rc == SL_ENOMEM) {
            *err = e;
            return rc;
        }
        if (rc) {
            li_fail(li, SL_STAGE_AUDIO, "segmenting %s: VAD chunk at %.3f s (sample %lld): %s",
                    it->path, (double)v.start / SEG_RATE, (long long)v.start, e.msg);
            return 0;
        }
        li->pos = li->hold0 = v.start;
        li->hold_n = 0;
        li->cut_end = v.end;
    }
}

// Keeps a finished segment's outcome (ids copied: they are lent by the pipeline) with
// the segment's own bounds.
static int keep_segment(long_item *li, int64_t abs, const pl_result *r, sl_err *err)
{
    seg_rec *q = &li->q[abs - (int64_t)li->q_base];
    int64_t a = q->start, z = q->end;
    q->res = *r;
    q->res.semantic = q->res.text = NULL;
    if (r->ok) {
        int32_t *s = malloc((r->n_semantic + 1) * sizeof(int32_t));
        int32_t *t = malloc((r->n_text + 1) * sizeof(int32_t));
        if (!s || !t) {
            free(s);
            free(t);
            return sl_fail(err, SL_ENOMEM, "worker: out of memory");
        }
        memcpy(s, r->semantic, r->n_semantic * sizeof(int32_t));
        memcpy(t, r->text, r->n_text * sizeof(int32_t));
        q->res.semantic = s;
        q->res.text = t;
    }
    q->res.start = (uint64_t)a;
    q->res.end = (uint64_t)z;
    q->res.duration_s = (float)((double)(z - a) / SEG_RATE);
    q->done = 1;
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

// The next segment of long item i joins the pool (or its outcome is final at once); when
// none comes, the item's cutting is over and the unit moves to its next item.
static int start_segment(job_exec *x, held_unit *h, size_t i, pl_timers *t, sl_err *err)
{
    const proto_item *it = &h->items[i];
    long_item *li = &h->li[i];
    // A stop signal (SIGUSR1 at a Slurm preemption reaches every rank): the file stops at
    // its last cut, its unit's RESULT goes back without a done mark and the next run
    // continues there, instead of rank 0's grace running out on hours of audio. Only once
    // a cut is committed-to-be: a fresh item gives one segment first (its mark is what
    // the next run resumes from).
    if (li->cutting && sl_stop_requested() && (li->cont || li->n_segments > 0)) {
        li->cutting = 0;
        li->stopped = 1;
        li_close_source(li);
    }
    seg_span sp;
    double t0 = sl_now();
    int got = next_segment(x, h, i, &sp, err);
    t->audio += sl_now() - t0; // reading and cutting: the audio stage's share
    if (got < 0)
        return got;
    if (!got) {
        h->next++;
        return SL_OK;
    }
    if (li->q_len == li->q_cap) {
        size_t cap = li->q_cap ? 2 * li->q_cap : 8;
        seg_rec *q = realloc(li->q, cap * sizeof *q);
        if (!q)
            return sl_fail(err, SL_ENOMEM, "worker: out of memory");
        li->q = q;
        li->q_cap = cap;
    }
    int64_t abs = (int64_t)(li->q_base + li->q_len);
    seg_rec *q = &li->q[li->q_len++];
    memset(q, 0, sizeof *q);
    q->start = sp.start;
    q->end = sp.end;
    li->n_segments++;
    li->last_end = sp.end;
    char key[EXEC_MAX_KEY + 1];
    if (!seg_key_format(it->id, it->id_len, (uint64_t)sp.start, (uint64_t)sp.end, key,
                        sizeof key))
        return sl_fail(err, SL_EINVAL, "worker: no segment key for %s [%lld, %lld)", it->id,
                       (long long)sp.start, (long long)sp.end);
    test_faults(x, key);
    pl_range range = {sp.start, sp.end};
    pl_result r;
    int slot, rc;
    if (li->cut && sp.start >= li->hold0 && sp.end <= li->hold0 + (int64_t)li->hold_n) {
        // cut from samples read: hand them over (the stream's samples of any range are
        // those a range read gives, bit for bit), then keep only those from the next cut
        rc = pl_pool_add_pcm(x->pipe, li->hold + (sp.start - li->hold0), &range, it->path, key,
                             &r, &slot, t, err);
        hold_trim(li);
    } else { // a VAD span (no samples read for it): read by its range
        rc = pl_pool_add_file(x->pipe, it->path, &range, key, &r, &slot, t, err);
    }
    if (rc)
        return rc;
    if (slot < 0)
        return keep_segment(li, abs, &r, err);
    x->slot_unit[slot] = (int)(h - x->held);
    x->slot_utt[slot] = (int)i;
    x->slot_seg[slot] = abs;
    li->n_live++;
    return SL_OK;
}

// Front half of the next utterance of h; it joins the pool or its outcome is final.
static int start_next(job_exec *x, held_unit *h, pl_timers *t, sl_err *err)
{
    size_t i = h->next;
    const proto_item *it = &h->items[i];
    long_item *li = &h->li[i];
    int rc;
    if (li->kind == LI_UNSEEN) {
        test_crash(x, it->id);
        if ((rc = classify(x, h, i, err)))
            return rc;
    }
    if (li->kind == LI_LONG)
        return start_segment(x, h, i, t, err);
    h->next++;
    test_faults(x, it->id);
    pl_result r;
    int slot;
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
    x->slot_seg[slot] = -1;
    return SL_OK;
}

// A long item with records to send: its oldest segment is done, or it is over (cutting
// ended, nothing decoding). Oldest unit first, then item order.
static int find_partial(job_exec *x, held_unit **hu, size_t *iu)
{
    held_unit *best = NULL;
    size_t bi = 0;
    for (int k = 0; k < EXEC_HELD; k++) {
        held_unit *h = &x->held[k];
        if (!h->used || (best && h->seq > best->seq))
            continue;
        for (size_t i = 0; i < h->n; i++) {
            long_item *li = &h->li[i];
            if (li->kind != LI_LONG || li->finished)
                continue;
            if ((li->q_len > 0 && li->q[0].done) || (!li->cutting && li->n_live == 0)) {
                best = h;
                bi = i;
                break;
            }
        }
    }
    *hu = best;
    *iu = bi;
    return best != NULL;
}

// A PARTIAL for long item i of h: its finished prefix of segments (rows, or error records
// under their segment keys) and its mark: where it resumes (the end of the last of them),
// done once every segment went out. An item that is over without a done mark ends with
// one error record under its id: the file failed (after the segments before it), or a
// fresh item gave no segment at all ("no speech"). The records' memory goes here.
static int send_partial(job_exec *x, held_unit *h, size_t i, proto_buf *result, double *stats,
                        int *empty, sl_err *err)
{
    *empty = 0;
    const proto_item *it = &h->items[i];
    long_item *li = &h->li[i];
    int rc = proto_result_begin(result, h->wid, err);
    if (rc)
        return rc;
    size_t k = 0;
    char key[EXEC_MAX_KEY + 1];
    for (; k < li->q_len && li->q[k].done; k++) {
        seg_rec *q = &li->q[k];
        size_t kl = seg_key_format(it->id, it->id_len, (uint64_t)q->start, (uint64_t)q->end, key,
                                   sizeof key);
        if (!kl)
            return sl_fail(err, SL_EINVAL, "worker: no segment key for %s", it->id);
        if ((rc = add_outcome(x, result, h->flags, key, kl, NULL, 0, it->id, it->id_len, &q->res,
                              err)))
            return rc;
    }
    int over = !li->cutting && li->n_live == 0;
    int64_t next = k > 0 ? li->q[k - 1].end : li->last_end;
    if (over && li->stopped) { // the rest is the next run's: where it resumes, not done
        if (k > 0)
            rc = proto_result_add_mark(result, it->id, it->id_len, next, 0, err);
    } else if (over && !li->failed && (li->n_segments > 0 || li->cont)) {
        rc = proto_result_add_mark(result, it->id, it->id_len, li->last_end, 1, err);
    } else {
        if (k > 0)
            rc = proto_result_add_mark(result, it->id, it->id_len, next, 0, err);
        if (!rc && over) {
            pl_result r = {.ok = 0, .stage = li->failed ? li->fail_stage : SL_STAGE_AUDIO};
            if (li->failed)
                sl_fail(&r.err, SL_EFORMAT, "%s", li->fail_msg);
            else if (x->vad_json)
                sl_fail(&r.err, SL_EFORMAT, "no speech: the .json beside %s lists no voice "
                        "activity in %.3f-%.3f s", it->path, (double)li->start / SEG_RATE,
                        (double)li->end / SEG_RATE);
            else
                sl_fail(&r.err, SL_EFORMAT, "no speech: every segment of %s below %g dBFS",
                        it->path, (double)x->seg.silence_dbfs);
            rc = add_outcome(x, result, h->flags, it->id, it->id_len, NULL, 0, NULL, 0, &r, err);
            stats[PROTO_N_ERRORS] += 1;
        }
    }
    if (rc)
        return rc;
    proto_result_reader rd;
    *empty = proto_result_open(&rd, result->p, result->len, err) == SL_OK && rd.n == 0;
    for (size_t j = 0; j < k; j++) {
        free((void *)li->q[j].res.semantic);
        free((void *)li->q[j].res.text);
    }
    if (k > 0) // (q is NULL before the first segment)
        memmove(li->q, li->q + k, (li->q_len - k) * sizeof *li->q);
    li->q_len -= k;
    li->q_base += k;
    if (over) {
        li_release(li);
        li->kind = LI_LONG;
        li->finished = 1;
        h->n_done++;
    }
    return SL_OK;
}

uint32_t exec_next_wid(job_exec *x)
{
    held_unit *h = NULL;
    size_t i;
    if (!find_partial(x, &h, &i))
        h = oldest(x, 1);
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
    held_unit *h;
    size_t li_i;
    if (find_partial(x, &h, &li_i)) { // segments of a long item, in order, with its mark
        int empty = 0;
        if ((rc = send_partial(x, h, li_i, result, stats, &empty, err)))
            return rc;
        *ready = empty ? 0 : PROTO_PARTIAL; // a stopped item with nothing left to say
    } else if ((h = oldest(x, 1))) { // a unit whose outcomes are all known: its RESULT
        size_t n = 0;                // (its plain items, in item order)
        for (size_t i = 0; i < h->n; i++)
            if (h->li[i].kind != LI_LONG) {
                x->items[n] = h->items[i];
                x->res[n++] = h->res[i];
            }
        if ((rc = encode_records(x, h->wid, h->flags, n, result, err)))
            return rc;
        for (size_t i = 0; i < h->n; i++)
            li_release(&h->li[i]);
        h->used = 0;
        *ready = PROTO_RESULT;
    } else if (pl_pool_free(x->pipe) > 0 && (h = oldest(x, 0))) {
        rc = start_next(x, h, &t, err);
    } else if (pl_pool_live(x->pipe) > 0) {
        if (!(rc = pl_pool_step(x->pipe, &t, err))) {
            int slot;
            pl_result r;
            while (!rc && pl_pool_take(x->pipe, &slot, &r, &t)) {
                held_unit *u = &x->held[x->slot_unit[slot]];
                size_t i = (size_t)x->slot_utt[slot];
                if (x->slot_seg[slot] < 0) {
                    rc = keep_outcome(u, i, &r, err);
                } else {
                    u->li[i].n_live--;
                    rc = keep_segment(&u->li[i], x->slot_seg[slot], &r, err);
                }
            }
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
