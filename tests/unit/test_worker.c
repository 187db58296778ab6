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
//     row keeps the stored row's source and bounds (a version-1 row: its derived ones).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/protocol.h"
#include "storage/row.h"
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

int main(void)
{
    static const sl_test_case cases[] = {
        {"exec: null pipeline unit, refusals", test_null_pipeline_unit},
        {"exec: payload unit (regenerate), seed EOS, errors, alone retries", test_payload_unit},
        {"exec: the scheduler's pool across units == the per-unit path",
         test_scheduler_equals_per_unit},
        {"exec: row source and bounds, segments, regenerate keeps them", test_row_source_and_bounds},
        {NULL, NULL}};
    return sl_test_main("worker", cases);
}
