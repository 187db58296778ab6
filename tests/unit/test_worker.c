// tests/unit/test_worker.c — the worker's MPI-free half (worker/exec.h): WORK bytes in,
// RESULT bytes out, in a plain process.
//   * the null pipeline: one record per item, keys = the WORK's ids, rows decodable,
//     stage timers and counts added;
//   * a WORK with more items than the batch, or malformed bytes: an error, no RESULT;
//   * regenerate's payload WORK on the tiny speech->text model (tests/data): a stored
//     seed-layout row (speech EOS after its ids) decodes exactly as the same ids
//     without it; an empty row becomes a text-stage error record; a crash retry
//     (PROTO_WORK_ALONE) records its error with attempts 2;
//   * where each row says its audio came from: a whole file's row stores no source and the
//     pipeline's [start, end); a segment id's row stores the id's prefix; a regenerated
//     row keeps the stored row's source and bounds (a version-1 row: its derived ones);
//   * long items (longer than seg.max_seconds), on a recording of the test sentences joined
//     by pauses: PARTIALs of segment rows in cut order, each followed by the item's mark,
//     the last one done; segments tile the file, none longer than max; each segment row
//     equals pl_run of its range (tiny models), whatever the pool; a CONTINUE item gives
//     exactly the rows after its cut; a short file stays one row in the RESULT; NaN mid-file,
//     all silence, pieces, --vad-json (joined chunks, a long chunk cut, resumed inside it,
//     a malformed or missing .json).
#include <math.h>
#include <signal.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stop.h"
#include "coordinator/protocol.h"
#include "pipeline/audio.h"
#include "storage/row.h"
#include "storage/segkey.h"
#include "tests/row_v1.h"
#include "tests/testutil.h"
#include "worker/exec.h"

typedef struct got {
    size_t n;
    int kind[8];
    char key[8][64];
    unsigned char val[8][4096];
    uint32_t val_len[8];
} got;

static void read_result(const proto_buf *b, uint32_t want_wid, got *g)
{
    proto_result_reader r;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, b->p, b->len, &err), SL_OK);
    CU_ASSERT_EQUAL(r.wid, want_wid);
    proto_record rec;
    memset(g, 0, sizeof *g);
    int rc;
    while ((rc = proto_result_next(&r, &rec, &err)) == 1 && g->n < 8) {
        CU_ASSERT_FATAL(rec.key_len < 64 && rec.val_len <= 4096);
        g->kind[g->n] = rec.kind;
        memcpy(g->key[g->n], rec.key, rec.key_len);
        memcpy(g->val[g->n], rec.val, rec.val_len);
        g->val_len[g->n++] = rec.val_len;
    }
    CU_ASSERT_EQUAL(rc, 0);
}

static void test_null_pipeline_unit(void)
{
    pl_params p = pl_default_params();
    p.null_pipeline = 1;
    p.max_batch = 3;
    job_exec *x;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(exec_open(&x, &p, &err), SL_OK);
    proto_buf work = {0}, result = {0};
    const char *ids[] = {"a/one.wav", "b/two.flac", "c/three.ogg"};
    proto_work_begin(&work, 17, 0, &err);
    for (int i = 0; i < 3; i++)
        proto_work_add(&work, ids[i], "/nonexistent/never-opened", &err);
    double stats[PROTO_N_STATS] = {0};
    CU_ASSERT_EQUAL_FATAL(exec_unit(x, work.p, work.len, &result, stats, &err), SL_OK);
    got g;
    read_result(&result, 17, &g);
    CU_ASSERT_EQUAL(g.n, 3);
    for (size_t i = 0; i < g.n; i++) {
        CU_ASSERT_EQUAL(g.kind[i], PROTO_REC_ROW);
        CU_ASSERT_STRING_EQUAL(g.key[i], ids[i]);
        rec_header h;
        CU_ASSERT_EQUAL(rec_row_decode(g.val[i], g.val_len[i], &h, &err), SL_OK);
        CU_ASSERT(h.n_semantic > 0);
    }
    CU_ASSERT_EQUAL(stats[PROTO_N_UTTS], 3.0);
    CU_ASSERT_EQUAL(stats[PROTO_N_ROWS], 3.0);
    CU_ASSERT(stats[PROTO_T_BUSY] >= 0);
    // Same WORK again: the same bytes (the null pipeline is a function of the names).
    proto_buf again = {0};
    CU_ASSERT_EQUAL_FATAL(exec_unit(x, work.p, work.len, &again, stats, &err), SL_OK);
    CU_ASSERT(again.len == result.len && memcmp(again.p, result.p, result.len) == 0);
    // Four items for a batch of three, and truncated bytes: refused, nothing appended.
    proto_work_add(&work, "d/four.wav", "x", &err);
    result.len = 0;
    CU_ASSERT_EQUAL(exec_unit(x, work.p, work.len, &result, stats, &err), SL_EFORMAT);
    CU_ASSERT_EQUAL(exec_unit(x, work.p, work.len - 3, &result, stats, &err), SL_EFORMAT);
    CU_ASSERT_EQUAL(result.len, 0);
    proto_buf_free(&work);
    proto_buf_free(&result);
    proto_buf_free(&again);
    exec_close(x);
}

// A stored row of ids (optionally in the seed layout: the speech EOS after them).
static size_t stored_row(const int32_t *ids, size_t n, int seed_eos, int32_t eos,
                         unsigned char *out, size_t cap)
{
    int32_t sem[64], txt[1] = {3};
    memcpy(sem, ids, n * sizeof *ids);
    if (seed_eos)
        sem[n++] = eos;
    rec_header h = {.n_semantic = (uint32_t)n, .n_text = 1, .duration_s = 2.0f, .score = -1.0f,
                    .flags = seed_eos ? REC_FLAG_SEED_EOS : 0};
    sl_err err;
    long len = rec_row_encode(&h, sem, txt, out, cap, &err);
    CU_ASSERT_FATAL(len > 0);
    return (size_t)len;
}

static void test_payload_unit(void)
{
    pl_params p = pl_default_params();
    p.s2t = sl_test_data("s2t_tiny.safetensors");
    p.text_only = 1;
    p.max_src_ids = 64;
    p.max_batch = 3;
    job_exec *x;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(exec_open(&x, &p, &err), SL_OK);
    const int32_t ids[] = {1, 5, 2, 7, 7, 3, 0, 4};
    unsigned char plain[512], seed[512], empty[512];
    size_t n_plain = stored_row(ids, 8, 0, 0, plain, sizeof plain);
    // the EOS value is irrelevant to the decoder: it is dropped before decoding
    size_t n_seed = stored_row(ids, 8, 1, 9999, seed, sizeof seed);
    size_t n_empty = stored_row(ids, 0, 0, 0, empty, sizeof empty);
    proto_buf work = {0}, result = {0};
    static const uint32_t kinds[] = {PROTO_WORK_PAYLOAD, PROTO_WORK_PAYLOAD | PROTO_WORK_ALONE};
    for (int t = 0; t < 2; t++) {
        uint32_t flags = kinds[t];
        proto_work_begin(&work, 3, flags, &err);
        proto_work_add_bytes(&work, "plain", plain, n_plain, &err);
        proto_work_add_bytes(&work, "seed", seed, n_seed, &err);
        proto_work_add_bytes(&work, "zempty", empty, n_empty, &err);
        double stats[PROTO_N_STATS] = {0};
        CU_ASSERT_EQUAL_FATAL(exec_unit(x, work.p, work.len, &result, stats, &err), SL_OK);
        got g;
        read_result(&result, 3, &g);
        CU_ASSERT_EQUAL_FATAL(g.n, 3);
        CU_ASSERT_EQUAL(g.kind[0], PROTO_REC_ROW);
        CU_ASSERT_EQUAL(g.kind[1], PROTO_REC_ROW);
        rec_header a, b;
        CU_ASSERT_EQUAL_FATAL(rec_row_decode(g.val[0], g.val_len[0], &a, &err), SL_OK);
        CU_ASSERT_EQUAL_FATAL(rec_row_decode(g.val[1], g.val_len[1], &b, &err), SL_OK);
        CU_ASSERT_EQUAL(a.n_semantic, 8);
        CU_ASSERT(a.n_text > 0);
        CU_ASSERT_EQUAL(a.n_text, b.n_text); // same source ids: the same text and score
        CU_ASSERT_EQUAL(a.score, b.score);
        int32_t ta[512], tb[512], sa[64], sb[64];
        CU_ASSERT_FATAL(a.n_text <= 512 && b.n_text <= 512);
        rec_row_ids(g.val[0], &a, sa, ta);
        rec_row_ids(g.val[1], &b, sb, tb);
        CU_ASSERT(memcmp(ta, tb, a.n_text * sizeof(int32_t)) == 0);
        CU_ASSERT(memcmp(sa, ids, sizeof ids) == 0);
        CU_ASSERT_EQUAL(g.kind[2], PROTO_REC_ERROR);
        rec_error e;
        CU_ASSERT_EQUAL_FATAL(rec_error_decode(g.val[2], g.val_len[2], &e, &err), SL_OK);
        CU_ASSERT_EQUAL(e.stage, SL_STAGE_TEXT);
        CU_ASSERT_EQUAL(e.attempts, (flags & PROTO_WORK_ALONE) ? 2u : 1u);
    }
    proto_buf_free(&work);
    proto_buf_free(&result);
    exec_close(x);
}

// The scheduler: 5 payload units of 3 rows (ids of different lengths, one empty row)
// decoded through one pool across the 2 held units, pushed as units finish, give every
// unit's RESULT byte for byte as the old per-unit path (SL_TEST_PER_UNIT=1) and as
// exec_unit; pools of 1 and 4 too. The pool's batch really is taller than a unit's.
enum { SCH_UNITS = 5 };

static void sched_work(proto_buf *w, uint32_t wid)
{
    sl_err err;
    proto_work_begin(w, wid, PROTO_WORK_PAYLOAD, &err);
    for (int i = 0; i < 3; i++) {
        int32_t ids[40];
        size_t n = (wid * 3 + (uint32_t)i) % 7 == 3 ? 0 : 5 + (wid * 11 + (uint32_t)i * 13) % 30;
        for (size_t k = 0; k < n; k++)
            ids[k] = (int32_t)((wid * 7 + (uint32_t)i * 5 + k * 3) % 16);
        unsigned char row[512];
        size_t len = stored_row(ids, n, 0, 0, row, sizeof row);
        char id[16];
        snprintf(id, sizeof id, "u%u/%d", wid, i);
        proto_work_add_bytes(w, id, row, len, &err);
    }
}

static job_exec *sched_open(int per_unit, int pool)
{
    pl_params p = pl_default_params();
    p.s2t = sl_test_data("s2t_tiny.safetensors");
    p.text_only = 1;
    p.max_src_ids = 64;
    p.max_batch = 3;
    p.pool = pool;
    p.beam.max_len = 24;
    if (per_unit)
        setenv("SL_TEST_PER_UNIT", "1", 1);
    job_exec *x;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(exec_open(&x, &p, &err), SL_OK);
    unsetenv("SL_TEST_PER_UNIT");
    return x;
}

static void test_scheduler_equals_per_unit(void)
{
    proto_buf work[SCH_UNITS] = {{0}}, ref[SCH_UNITS] = {{0}}, result = {0};
    sl_err err;
    double stats[PROTO_N_STATS] = {0};
    job_exec *old = sched_open(1, 0);
    for (uint32_t u = 0; u < SCH_UNITS; u++) {
        sched_work(&work[u], u);
        CU_ASSERT_EQUAL_FATAL(exec_unit(old, work[u].p, work[u].len, &ref[u], stats, &err),
                              SL_OK);
    }
    exec_close(old);
    static const int pools[] = {0, 1, 4};
    for (int k = 0; k < 3; k++) {
        job_exec *x = sched_open(0, pools[k]);
        // exec_unit drains: the same bytes
        for (uint32_t u = 0; u < SCH_UNITS; u++) {
            CU_ASSERT_EQUAL_FATAL(exec_unit(x, work[u].p, work[u].len, &result, stats, &err),
                                  SL_OK);
            CU_ASSERT(result.len == ref[u].len && !memcmp(result.p, ref[u].p, result.len));
        }
        // the worker's way: keep 2 units held, push the next when one is returned
        double st[PROTO_N_STATS] = {0};
        uint32_t next = 0;
        int done = 0, advances = 0, seen[SCH_UNITS] = {0}, refused = 0;
        while (done < SCH_UNITS) {
            while (next < SCH_UNITS && exec_held(x) < EXEC_HELD) {
                CU_ASSERT_EQUAL_FATAL(exec_push(x, work[next].p, work[next].len, &err), SL_OK);
                next++;
            }
            if (!refused && next < SCH_UNITS) { // holding 2: a third is refused
                CU_ASSERT_EQUAL(exec_push(x, work[next].p, work[next].len, &err), SL_EINVAL);
                CU_ASSERT_EQUAL(exec_unit(x, work[next].p, work[next].len, &result, st, &err),
                                SL_EINVAL);
                refused = 1;
            }
            int ready = 0;
            CU_ASSERT_EQUAL_FATAL(exec_advance(x, &result, &ready, st, &err), SL_OK);
            CU_ASSERT_FATAL(++advances < 100000);
            if (!ready)
                continue;
            proto_result_reader r;
            CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, result.p, result.len, &err), SL_OK);
            CU_ASSERT_FATAL(r.wid < SCH_UNITS && !seen[r.wid]);
            seen[r.wid] = 1;
            CU_ASSERT(result.len == ref[r.wid].len &&
                      !memcmp(result.p, ref[r.wid].p, result.len));
            done++;
        }
        CU_ASSERT_EQUAL(exec_held(x), 0);
        int ready = 1;
        CU_ASSERT_EQUAL(exec_advance(x, &result, &ready, st, &err), SL_OK); // nothing to do
        CU_ASSERT_EQUAL(ready, 0);
        CU_ASSERT_EQUAL(st[PROTO_N_UTTS], 3.0 * SCH_UNITS);
        CU_ASSERT(st[PROTO_N_DEC_STEPS] > 0);
        double height = st[PROTO_N_DEC_ROWS] / st[PROTO_N_DEC_STEPS];
        printf("\n    pool %d: %.2f rows per decoder step ", pools[k], height);
        if (pools[k] == 0) // 6 slots over 2 units of 3 (beam 4): taller than one unit's 12 rows
            CU_ASSERT(height > 3.0 * 4 * 0.75);
        if (pools[k] == 1)
            CU_ASSERT(height <= 4.0);
        exec_close(x);
    }
    for (int u = 0; u < SCH_UNITS; u++) {
        proto_buf_free(&work[u]);
        proto_buf_free(&ref[u]);
    }
    proto_buf_free(&result);
}

// The null pipeline's results are whole 1 s files: [0, 16000) at 16 kHz.
static void test_row_source_and_bounds(void)
{
    pl_params p = pl_default_params();
    p.null_pipeline = 1;
    p.max_batch = 3;
    job_exec *x;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(exec_open(&x, &p, &err), SL_OK);
    const char *ids[] = {"me@host/a.wav", "rec.flac@00000.000-00001.000",
                         "x@00001.000-00002.000@00000.000-00001.000"};
    proto_buf work = {0}, result = {0};
    proto_work_begin(&work, 5, 0, &err);
    for (int i = 0; i < 3; i++)
        proto_work_add(&work, ids[i], "/nonexistent/never-opened", &err);
    double stats[PROTO_N_STATS] = {0};
    CU_ASSERT_EQUAL_FATAL(exec_unit(x, work.p, work.len, &result, stats, &err), SL_OK);
    got g;
    read_result(&result, 5, &g);
    CU_ASSERT_EQUAL_FATAL(g.n, 3);
    rec_header h[3];
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(rec_row_decode(g.val[i], g.val_len[i], &h[i], &err), SL_OK);
        CU_ASSERT_EQUAL(h[i].version, REC_VERSION);
        CU_ASSERT_EQUAL(h[i].start, 0);
        CU_ASSERT_EQUAL(h[i].end, 16000);
        CU_ASSERT_EQUAL(rec_row_check_key(&h[i], ids[i], strlen(ids[i]), &err), SL_OK);
    }
    CU_ASSERT_EQUAL(h[0].source_len, 0); // an '@' without the suffix: a whole file
    CU_ASSERT_EQUAL_FATAL(h[1].source_len, 8);
    CU_ASSERT_EQUAL(memcmp(h[1].source, "rec.flac", 8), 0);
    CU_ASSERT_EQUAL_FATAL(h[2].source_len, 21); // only the last suffix is the segment
    CU_ASSERT_EQUAL(memcmp(h[2].source, "x@00001.000-00002.000", 21), 0);
    proto_buf_free(&work);
    proto_buf_free(&result);
    exec_close(x);

    // Regenerate: the new row keeps the stored row's source and bounds.
    p = pl_default_params();
    p.s2t = sl_test_data("s2t_tiny.safetensors");
    p.text_only = 1;
    p.max_src_ids = 64;
    p.max_batch = 3;
    CU_ASSERT_EQUAL_FATAL(exec_open(&x, &p, &err), SL_OK);
    const int32_t sem[] = {1, 5, 2, 7, 7, 3, 0, 4}, txt[] = {3};
    unsigned char seg[512], v1[512], whole[512];
    rec_header hs = {.n_semantic = 8, .n_text = 1, .duration_s = 1.0f, .score = -1.0f,
                     .start = 1599983990, .end = 1599999999, .source = "long.flac",
                     .source_len = 9};
    long n_seg = rec_row_encode(&hs, sem, txt, seg, sizeof seg, &err);
    CU_ASSERT_FATAL(n_seg > 0);
    rec_header hw = {.n_semantic = 8, .n_text = 1, .duration_s = 3.0f, .score = -1.0f,
                     .start = 0, .end = 48001};
    long n_whole = rec_row_encode(&hw, sem, txt, whole, sizeof whole, &err);
    CU_ASSERT_FATAL(n_whole > 0);
    size_t n_v1 = sl_test_row_v1(0, sem, 8, txt, 1, 2.5f, -1.0f, v1);
    proto_work_begin(&work, 6, PROTO_WORK_PAYLOAD, &err);
    proto_work_add_bytes(&work, "long.flac@99998.999-99999.999", seg, (size_t)n_seg, &err);
    proto_work_add_bytes(&work, "old.wav", v1, n_v1, &err);
    proto_work_add_bytes(&work, "w.wav", whole, (size_t)n_whole, &err);
    CU_ASSERT_EQUAL_FATAL(exec_unit(x, work.p, work.len, &result, stats, &err), SL_OK);
    read_result(&result, 6, &g);
    CU_ASSERT_EQUAL_FATAL(g.n, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(g.kind[i], PROTO_REC_ROW);
        CU_ASSERT_EQUAL_FATAL(rec_row_decode(g.val[i], g.val_len[i], &h[i], &err), SL_OK);
        CU_ASSERT_EQUAL(h[i].version, REC_VERSION);
        CU_ASSERT_EQUAL(rec_row_check_key(&h[i], g.key[i], strlen(g.key[i]), &err), SL_OK);
    }
    CU_ASSERT_EQUAL(h[0].start, 1599983990);
    CU_ASSERT_EQUAL(h[0].end, 1599999999);
    CU_ASSERT_EQUAL_FATAL(h[0].source_len, 9);
    CU_ASSERT_EQUAL(memcmp(h[0].source, "long.flac", 9), 0);
    CU_ASSERT_EQUAL(h[1].start, 0); // version 1: derived, round(2.5 * 16000)
    CU_ASSERT_EQUAL(h[1].end, 40000);
    CU_ASSERT_EQUAL(h[1].source_len, 0);
    CU_ASSERT_EQUAL(h[1].duration_s, 2.5f);
    CU_ASSERT_EQUAL(h[2].end, 48001); // the stored bounds, not the duration's 48000
    CU_ASSERT_EQUAL(h[2].source_len, 0);
    proto_buf_free(&work);
    proto_buf_free(&result);
    exec_close(x);
}


// ---- long items -------------------------------------------------------------------

static const char *tmp;
static char long_wav[4200];
static int64_t long_n;

static void write_wav(const char *path, const float *x, int64_t n)
{
    SF_INFO info = {0};
    info.samplerate = 16000;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    CU_ASSERT_FATAL(sf != NULL);
    CU_ASSERT_FATAL(sf_write_float(sf, x, n) == n);
    sf_close(sf);
}

// The two test sentences in turn, 14 times, each after a pause of 0.4-1.1 s; quiet noise
// (about -55 dBFS, above the silence floor) everywhere: about 45 s.
static float *make_long(int64_t *n_out)
{
    audio_reader *r;
    sl_err e;
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_result a[2];
    static float *sp[2];
    size_t sn[2];
    const char *names[2] = {"speech_16k.wav", "speech2_16k.wav"};
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_FATAL(audio_read_file(r, sl_test_data(names[k]), &a[k], &e) == SL_OK);
        sn[k] = a[k].n_samples;
        sp[k] = malloc(sn[k] * sizeof(float));
        memcpy(sp[k], a[k].pcm, sn[k] * sizeof(float));
    }
    audio_reader_free(r);
    int64_t cap = 16000 * 60, n = 0;
    float *x = calloc((size_t)cap, sizeof(float));
    uint32_t st = 12345;
    for (int i = 0; i < 14; i++) {
        int64_t pause = 6400 + (int64_t)(i * 3 % 8) * 1600;
        for (int64_t j = 0; j < pause; j++)
            x[n++] = 0.0f;
        memcpy(x + n, sp[i % 2], sn[i % 2] * sizeof(float));
        n += (int64_t)sn[i % 2];
    }
    for (int64_t j = 0; j < 8000; j++)
        x[n++] = 0.0f;
    for (int64_t j = 0; j < n; j++) { // noise at ~ -55 dBFS
        st = st * 1664525u + 1013904223u;
        x[j] += ((float)(st >> 8) / 16777216.0f - 0.5f) * 0.006f;
    }
    free(sp[0]);
    free(sp[1]);
    *n_out = n;
    return x;
}

// Every message a unit produced (PARTIALs, then its RESULT), as records.
typedef struct rec_list {
    size_t n;
    struct one {
        int kind, partial;     // PROTO_REC_*, 1 = from a PARTIAL
        char key[600];
        unsigned char *val;
        uint32_t val_len;
        rec_header h;          // rows
        int64_t next;          // marks
        int done;
        char msg[600];         // errors
    } r[512];
} rec_list;

static void list_add(rec_list *l, const void *msg, size_t n, int partial)
{
    proto_result_reader rd;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&rd, msg, n, &err), SL_OK);
    proto_record rec;
    int rc;
    while ((rc = proto_result_next(&rd, &rec, &err)) == 1) {
        CU_ASSERT_FATAL(l->n < 512 && rec.key_len < 600);
        struct one *o = &l->r[l->n++];
        memset(o, 0, sizeof *o);
        o->kind = rec.kind;
        o->partial = partial;
        memcpy(o->key, rec.key, rec.key_len);
        o->val = malloc(rec.val_len + 1);
        memcpy(o->val, rec.val, rec.val_len);
        o->val_len = rec.val_len;
        if (rec.kind == PROTO_REC_ROW) {
            CU_ASSERT_EQUAL(rec_row_decode(o->val, o->val_len, &o->h, &err), SL_OK);
        } else if (rec.kind == PROTO_REC_MARK) {
            CU_ASSERT_EQUAL(proto_mark_parse(rec.val, rec.val_len, &o->next, &o->done, &err),
                            SL_OK);
        } else {
            rec_error e;
            CU_ASSERT_EQUAL_FATAL(rec_error_decode(o->val, o->val_len, &e, &err), SL_OK);
            snprintf(o->msg, sizeof o->msg, "%.*s", (int)e.msg_len, e.msg);
        }
    }
    CU_ASSERT_EQUAL(rc, 0);
}

static void list_free(rec_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->r[i].val);
    l->n = 0;
}

static int stop_after = -1; // > 0: a stop signal after that many PARTIALs

static int sink_fn(void *sink, const void *msg, size_t n, sl_err *err)
{
    (void)err;
    list_add(sink, msg, n, 1);
    if (stop_after > 0 && --stop_after == 0)
        sl_stop_request(SIGUSR1);
    return SL_OK;
}

static pl_params long_params(int null, int pool)
{
    pl_params p = pl_default_params();
    if (null) {
        p.null_pipeline = 1;
    } else {
        static char hub[4200], km[4200], s2t[4200]; // sl_test_data's buffer is reused
        snprintf(hub, sizeof hub, "%s", sl_test_data("hubert_tiny_post"));
        snprintf(km, sizeof km, "%s", sl_test_data("kmeans_16.npy"));
        snprintf(s2t, sizeof s2t, "%s", sl_test_data("s2t_tiny.safetensors"));
        p.hubert_dir = hub;
        p.layer = 2;
        p.kmeans = km;
        p.s2t = s2t;
        p.beam.max_len = 24;
    }
    p.max_batch = 3;
    p.pool = pool;
    p.seg.max_seconds = 8.0f;
    p.audio.max_seconds = 8.0f;
    return p;
}

// Runs one WORK through exec_unit, collecting its PARTIALs and RESULT into l.
static void run_work(const pl_params *p, const proto_buf *work, rec_list *l, double *stats)
{
    job_exec *x;
    sl_err err;
    int orc = exec_open(&x, p, &err);
    if (orc)
        fprintf(stderr, "\nexec_open: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(orc, SL_OK);
    exec_set_partial(x, sink_fn, l);
    proto_buf result = {0};
    double st[PROTO_N_STATS] = {0};
    int rc = exec_unit(x, work->p, work->len, &result, stats ? stats : st, &err);
    if (rc)
        fprintf(stderr, "\nexec_unit: %s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, SL_OK);
    list_add(l, result.p, result.len, 0);
    proto_buf_free(&result);
    exec_close(x);
}

// Checks the records of long item `id` (from PARTIALs): rows tile [a, z) in order (with
// gaps when max < 0: VAD spans; then |max| bounds them), each at most max samples, each run
// followed by a mark at its end; the last mark done (want_done). Returns the row count.
static size_t check_long(const rec_list *l, const char *id, int64_t a, int64_t z, int want_done,
                         int64_t max)
{
    int gaps = max < 0;
    if (gaps)
        max = -max;
    size_t n_rows = 0, id_len = strlen(id);
    int64_t at = a, last_mark = -1;
    int done = 0, pending = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct one *o = &l->r[i];
        size_t src;
        int mine = !strcmp(o->key, id) ||
                   (seg_key_split(o->key, strlen(o->key), &src) && src == id_len &&
                    !memcmp(o->key, id, id_len));
        if (!mine)
            continue;
        CU_ASSERT(o->partial);
        CU_ASSERT(!done); // nothing after the done mark
        if (o->kind == PROTO_REC_ROW) {
            if (gaps ? (int64_t)o->h.start < at : (int64_t)o->h.start != at)
                fprintf(stderr, "\n%s: row %s starts at %lld, not %lld\n", id, o->key,
                        (long long)o->h.start, (long long)at);
            CU_ASSERT(gaps ? (int64_t)o->h.start >= at : (int64_t)o->h.start == at);
            CU_ASSERT((int64_t)o->h.end > (int64_t)o->h.start);
            CU_ASSERT((int64_t)(o->h.end - o->h.start) <= max);
            CU_ASSERT_EQUAL(o->h.source_len, id_len);
            CU_ASSERT(o->h.source_len == id_len && !memcmp(o->h.source, id, id_len));
            char k[600];
            seg_key_format(id, id_len, o->h.start, o->h.end, k, sizeof k);
            CU_ASSERT_STRING_EQUAL(o->key, k);
            sl_err e;
            CU_ASSERT_EQUAL(rec_row_check_key(&o->h, o->key, strlen(o->key), &e), SL_OK);
            CU_ASSERT_EQUAL(o->h.duration_s, (float)((double)(o->h.end - o->h.start) / 16000));
            at = (int64_t)o->h.end;
            n_rows++;
            pending = 1;
        } else if (o->kind == PROTO_REC_MARK) {
            CU_ASSERT_STRING_EQUAL(o->key, id);
            CU_ASSERT(pending || o->done);
            CU_ASSERT_EQUAL(o->next, at);
            CU_ASSERT(o->next >= last_mark);
            last_mark = o->next;
            done = o->done;
            pending = 0;
        }
    }
    CU_ASSERT_EQUAL(done, want_done);
    if (want_done) {
        CU_ASSERT_EQUAL(at, z);
    }
    CU_ASSERT(!pending);
    return n_rows;
}

// The row or error record under key (not a mark).
static const struct one *find_key(const rec_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->r[i].kind != PROTO_REC_MARK && !strcmp(l->r[i].key, key))
            return &l->r[i];
    return NULL;
}

// The recording, written once (asserts need a running suite).
static void ensure_long(void)
{
    if (long_n > 0)
        return;
    float *x = make_long(&long_n);
    snprintf(long_wav, sizeof long_wav, "%s/long.wav", tmp);
    write_wav(long_wav, x, long_n);
    free(x);
}

static void test_long_item_tiny_models(void)
{
    ensure_long();
    const char *shortp = sl_test_data("speech_16k.wav");
    proto_buf work = {0};
    sl_err err;
    proto_work_begin(&work, 7, 0, &err);
    proto_work_add(&work, "long.wav", long_wav, &err);
    proto_work_add(&work, "short.wav", shortp, &err);
    static rec_list l, l1, lc;
    double stats[PROTO_N_STATS] = {0};
    pl_params p = long_params(0, 0);
    run_work(&p, &work, &l, stats);
    size_t n_rows = check_long(&l, "long.wav", 0, long_n, 1, 8 * 16000);
    printf("\n    %.1f s: %zu segments of at most 8 s ", (double)long_n / 16000, n_rows);
    CU_ASSERT(n_rows >= 6);
    // The short file: one row in the RESULT, as ever.
    const struct one *sh = find_key(&l, "short.wav");
    CU_ASSERT_FATAL(sh != NULL);
    CU_ASSERT_EQUAL(sh->kind, PROTO_REC_ROW);
    CU_ASSERT_EQUAL(sh->partial, 0);
    CU_ASSERT_EQUAL(sh->h.source_len, 0);
    CU_ASSERT_EQUAL(stats[PROTO_N_UTTS], (double)n_rows + 1);
    CU_ASSERT_EQUAL(stats[PROTO_N_ROWS], (double)n_rows + 1);
    // Each segment row is pl_run of its range: the same ids, text and score.
    pl *ref;
    pl_params rp = p;
    rp.max_batch = 1;
    CU_ASSERT_EQUAL_FATAL(pl_open(&ref, &rp, &err), SL_OK);
    int64_t cuts[64];
    size_t n_cuts = 0;
    for (size_t i = 0; i < l.n; i++) {
        const struct one *o = &l.r[i];
        if (o->kind != PROTO_REC_ROW || !o->h.source_len)
            continue;
        pl_range range = {(int64_t)o->h.start, (int64_t)o->h.end};
        const char *path = long_wav, *name = o->key;
        pl_result r;
        pl_timers t = {0};
        CU_ASSERT_EQUAL_FATAL(pl_run(ref, &path, &range, &name, 1, &r, &t, &err), SL_OK);
        CU_ASSERT_FATAL(r.ok);
        int32_t sem[4096], txt[512];
        CU_ASSERT_FATAL(o->h.n_semantic < 4096 && o->h.n_text < 512);
        rec_row_ids(o->val, &o->h, sem, txt);
        CU_ASSERT_EQUAL(o->h.n_semantic, r.n_semantic);
        CU_ASSERT_EQUAL(o->h.n_text, r.n_text);
        CU_ASSERT(!memcmp(sem, r.semantic, r.n_semantic * sizeof(int32_t)));
        CU_ASSERT(!memcmp(txt, r.text, r.n_text * sizeof(int32_t)));
        CU_ASSERT_EQUAL(o->h.score, r.score);
        if (n_cuts < 64)
            cuts[n_cuts++] = (int64_t)o->h.end;
    }
    pl_close(ref);
    // A pool of one decodes the same rows, byte for byte.
    p = long_params(0, 1);
    run_work(&p, &work, &l1, NULL);
    size_t k1 = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.r[i].kind != PROTO_REC_ROW)
            continue;
        const struct one *o = find_key(&l1, l.r[i].key);
        CU_ASSERT_FATAL(o != NULL);
        CU_ASSERT(o->val_len == l.r[i].val_len && !memcmp(o->val, l.r[i].val, o->val_len));
        k1++;
    }
    CU_ASSERT_EQUAL(k1, n_rows + 1);
    // Resumed at the end of segment 2 (PROTO_ITEM_CONTINUE): exactly the rows after it.
    CU_ASSERT_FATAL(n_cuts > 3);
    proto_work_begin(&work, 8, PROTO_WORK_RANGES | PROTO_WORK_ITEM_FLAGS, &err);
    CU_ASSERT_EQUAL(proto_work_add_item(&work, "long.wav", long_wav, cuts[1], 0,
                                        PROTO_ITEM_CONTINUE, &err), SL_OK);
    p = long_params(0, 0);
    run_work(&p, &work, &lc, NULL);
    size_t nc = check_long(&lc, "long.wav", cuts[1], long_n, 1, 8 * 16000);
    CU_ASSERT_EQUAL(nc, n_rows - 2);
    for (size_t i = 0; i < lc.n; i++) {
        if (lc.r[i].kind != PROTO_REC_ROW)
            continue;
        const struct one *o = find_key(&l, lc.r[i].key);
        CU_ASSERT_FATAL(o != NULL);
        CU_ASSERT(o->val_len == lc.r[i].val_len && !memcmp(o->val, lc.r[i].val, o->val_len));
    }
    list_free(&l);
    list_free(&l1);
    list_free(&lc);
    proto_buf_free(&work);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

// Structure with the null pipeline (synthetic ids; the cutting is real).
static void test_long_item_structure(void)
{
    ensure_long();
    static rec_list l;
    sl_err err;
    proto_buf work = {0};
    pl_params p = long_params(1, 0);
    // All silence, 20 s: no speech, one error record, no mark.
    float *z = calloc(16000 * 20, sizeof(float));
    char silent[4200], nan_wav[4200];
    snprintf(silent, sizeof silent, "%s/silent.wav", tmp);
    write_wav(silent, z, 16000 * 20);
    free(z);
    // NaN at 20 s of the long recording.
    int64_t n;
    float *x = make_long(&n);
    x[20 * 16000 + 5] = NAN;
    snprintf(nan_wav, sizeof nan_wav, "%s/nan.wav", tmp);
    write_wav(nan_wav, x, n);
    free(x);
    proto_work_begin(&work, 3, 0, &err);
    proto_work_add(&work, "nan.wav", nan_wav, &err);
    proto_work_add(&work, "silent.wav", silent, &err);
    proto_work_add(&work, "short.wav", sl_test_data("speech_16k.wav"), &err);
    run_work(&p, &work, &l, NULL);
    size_t nn = check_long(&l, "nan.wav", 0, 0, 0, 8 * 16000);
    CU_ASSERT(nn >= 1);
    const struct one *e = find_key(&l, "nan.wav");
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->kind, PROTO_REC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->msg, "NaN"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e->msg, "nan.wav"));
    printf("\n    NaN at 20 s: %zu segments kept, then \"%s\" ", nn, e->msg);
    e = find_key(&l, "silent.wav");
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->kind, PROTO_REC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->msg, "no speech"));
    CU_ASSERT_EQUAL(check_long(&l, "silent.wav", 0, 0, 0, 8 * 16000), 0);
    e = find_key(&l, "short.wav");
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->kind, PROTO_REC_ROW);
    list_free(&l);

    // A piece longer than max: cut within it, keys under the piece's id.
    proto_work_begin(&work, 4, PROTO_WORK_RANGES, &err);
    proto_work_add_range(&work, "long.wav@00002.000-00030.000", long_wav, 32000, 480000, &err);
    proto_work_add_range(&work, "long.wav@00002.000-00005.000", long_wav, 32000, 80000, &err);
    run_work(&p, &work, &l, NULL);
    CU_ASSERT(check_long(&l, "long.wav@00002.000-00030.000", 32000, 480000, 1, 8 * 16000) >= 4);
    e = find_key(&l, "long.wav@00002.000-00005.000"); // at most max: one row, as ever
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->kind, PROTO_REC_ROW);
    CU_ASSERT_EQUAL(e->partial, 0);
    list_free(&l);

    // --vad-json: [1, 6] joins two chunks, [7, 9.5] alone (joined it would pass 8 s),
    // [10, 25] is cut by a cutter, [26, 27] alone.
    char vdir[4000], vflac[4200], vjson[4200], bad[4200], badj[4200], none[4200];
    snprintf(vdir, sizeof vdir, "%s/small/spk/book", tmp);
    CU_ASSERT_FATAL(sl_test_sh("mkdir -p '%s'%s", vdir, "") == 0);
    snprintf(vflac, sizeof vflac, "%s/ch1.wav", vdir);
    snprintf(vjson, sizeof vjson, "%s/ch1.json", vdir);
    snprintf(bad, sizeof bad, "%s/ch2.wav", vdir);
    snprintf(badj, sizeof badj, "%s/ch2.json", vdir);
    snprintf(none, sizeof none, "%s/ch3.wav", vdir);
    CU_ASSERT_FATAL(sl_test_sh("cp '%s' '%s'", long_wav, vflac) == 0);
    CU_ASSERT_FATAL(sl_test_sh("cp '%s' '%s'", long_wav, bad) == 0);
    CU_ASSERT_FATAL(sl_test_sh("cp '%s' '%s'", long_wav, none) == 0);
    write_text(vjson, "{\"speaker\": \"spk\", \"voice_activity\": [[1.0, 3.0], [3.5, 6.0], "
                      "[7, 9.5], [10, 25], [26, 27]], \"snr\": 12}");
    write_text(badj, "{\"voice_activity\": [[1.0, 3.0], [2.5]]}");
    p.vad_json = 1;
    proto_work_begin(&work, 5, 0, &err);
    proto_work_add(&work, "ch1.wav", vflac, &err);
    proto_work_add(&work, "ch2.wav", bad, &err);
    proto_work_add(&work, "ch3.wav", none, &err);
    run_work(&p, &work, &l, NULL);
    int64_t want[][2] = {{16000, 96000}, {112000, 152000}, {416000, 432000}};
    size_t k = 0, in_long = 0;
    int64_t at = 160000;
    for (size_t i = 0; i < l.n; i++) {
        const struct one *o = &l.r[i];
        if (o->kind != PROTO_REC_ROW || strncmp(o->key, "ch1.wav@", 8))
            continue;
        if ((int64_t)o->h.start >= 160000 && (int64_t)o->h.end <= 400000) {
            CU_ASSERT_EQUAL((int64_t)o->h.start, at); // the long chunk: tiled by its cutter
            CU_ASSERT((int64_t)(o->h.end - o->h.start) <= 8 * 16000);
            at = (int64_t)o->h.end;
            in_long++;
            continue;
        }
        CU_ASSERT_FATAL(k < 3);
        CU_ASSERT_EQUAL((int64_t)o->h.start, want[k][0]);
        CU_ASSERT_EQUAL((int64_t)o->h.end, want[k][1]);
        k++;
    }
    CU_ASSERT_EQUAL(k, 3);
    CU_ASSERT_EQUAL(at, 400000);
    CU_ASSERT(in_long >= 2);
    const struct one *mk = NULL;
    for (size_t i = 0; i < l.n; i++)
        if (l.r[i].kind == PROTO_REC_MARK && !strcmp(l.r[i].key, "ch1.wav"))
            mk = &l.r[i];
    CU_ASSERT_FATAL(mk != NULL);
    CU_ASSERT(mk->done && mk->next == 432000);
    e = find_key(&l, "ch2.wav");
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->kind, PROTO_REC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->msg, "ch2.json"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e->msg, "voice_activity[1] is not a [start, end] pair"));
    e = find_key(&l, "ch3.wav");
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->kind, PROTO_REC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(e->msg, "ch3.json"));
    printf("\n    --vad-json: 3 joined spans + %zu cuts of the long chunk; \"%s\" ", in_long,
           e->msg);
    // Resumed at a cut inside the long chunk: the same tail.
    int64_t c = 0;
    size_t seen = 0;
    for (size_t i = 0; i < l.n && !c; i++)
        if (l.r[i].kind == PROTO_REC_ROW && !strncmp(l.r[i].key, "ch1.wav@", 8) &&
            (int64_t)l.r[i].h.start >= 160000 && ++seen == 1)
            c = (int64_t)l.r[i].h.end;
    CU_ASSERT_FATAL(c > 160000 && c < 400000);
    static rec_list lc;
    proto_work_begin(&work, 6, PROTO_WORK_RANGES | PROTO_WORK_ITEM_FLAGS, &err);
    proto_work_add_item(&work, "ch1.wav", vflac, c, 0, PROTO_ITEM_CONTINUE, &err);
    run_work(&p, &work, &lc, NULL);
    size_t tail = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.r[i].kind == PROTO_REC_ROW && !strncmp(l.r[i].key, "ch1.wav@", 8) &&
            (int64_t)l.r[i].h.start >= c) {
            const struct one *o = find_key(&lc, l.r[i].key);
            CU_ASSERT(o != NULL && o->val_len == l.r[i].val_len &&
                      !memcmp(o->val, l.r[i].val, o->val_len));
            tail++;
        }
    CU_ASSERT_EQUAL(check_long(&lc, "ch1.wav", c, 432000, 1, -8 * 16000), tail);
    list_free(&l);
    list_free(&lc);
    proto_buf_free(&work);
}

// A stop signal mid-file (null pipeline): the item ends at a cut with a mark that is not
// done and no error; the unit's RESULT still comes; CONTINUE from that mark gives the rest.
static void test_long_item_stop(void)
{
    ensure_long();
    static rec_list full, part, rest;
    sl_err err;
    proto_buf work = {0};
    pl_params p = long_params(1, 0);
    proto_work_begin(&work, 9, 0, &err);
    proto_work_add(&work, "long.wav", long_wav, &err);
    proto_work_add(&work, "short.wav", sl_test_data("speech_16k.wav"), &err);
    run_work(&p, &work, &full, NULL);
    size_t n_full = check_long(&full, "long.wav", 0, long_n, 1, 8 * 16000);
    stop_after = 2;
    run_work(&p, &work, &part, NULL);
    stop_after = -1;
    sl_stop_reset();
    size_t n_part = check_long(&part, "long.wav", 0, 0, 0, 8 * 16000);
    CU_ASSERT(n_part >= 2 && n_part < n_full);
    CU_ASSERT_PTR_NULL(find_key(&part, "long.wav")); // no error record
    CU_ASSERT_PTR_NOT_NULL(find_key(&part, "short.wav"));
    int64_t c = -1;
    for (size_t i = 0; i < part.n; i++)
        if (part.r[i].kind == PROTO_REC_MARK) {
            CU_ASSERT_EQUAL(part.r[i].done, 0);
            c = part.r[i].next;
        }
    CU_ASSERT_FATAL(c > 0);
    proto_work_begin(&work, 9, PROTO_WORK_RANGES | PROTO_WORK_ITEM_FLAGS, &err);
    proto_work_add_item(&work, "long.wav", long_wav, c, 0, PROTO_ITEM_CONTINUE, &err);
    run_work(&p, &work, &rest, NULL);
    size_t n_rest = check_long(&rest, "long.wav", c, long_n, 1, 8 * 16000);
    CU_ASSERT_EQUAL(n_part + n_rest, n_full);
    for (size_t i = 0; i < full.n; i++) {
        if (full.r[i].kind != PROTO_REC_ROW || !full.r[i].h.source_len)
            continue;
        const struct one *o = find_key((int64_t)full.r[i].h.start < c ? &part : &rest,
                                       full.r[i].key);
        CU_ASSERT(o != NULL && o->val_len == full.r[i].val_len &&
                  !memcmp(o->val, full.r[i].val, o->val_len));
    }
    printf("\n    stopped after %zu of %zu segments at %.3f s; resumed: %zu more ", n_part, n_full,
           (double)c / 16000, n_rest);
    list_free(&full);
    list_free(&part);
    list_free(&rest);
    proto_buf_free(&work);
}

int main(void)
{
    tmp = sl_test_tmpdir("worker");
    static const sl_test_case cases[] = {
        {"exec: null pipeline unit, refusals", test_null_pipeline_unit},
        {"exec: payload unit (regenerate), seed EOS, errors, alone retries", test_payload_unit},
        {"exec: the scheduler's pool across units == the per-unit path",
         test_scheduler_equals_per_unit},
        {"exec: row source and bounds, segments, regenerate keeps them", test_row_source_and_bounds},
        {"exec: a long item (tiny models): PARTIALs, marks, rows == pl_run, pools, CONTINUE",
         test_long_item_tiny_models},
        {"exec: long items: NaN, silence, pieces, --vad-json", test_long_item_structure},
        {"exec: a stop signal ends a long item at a cut; CONTINUE there = the rest",
         test_long_item_stop},
        {NULL, NULL}};
    int rc = sl_test_main("worker", cases);
    sl_test_rmtree(tmp);
    return rc;
}
