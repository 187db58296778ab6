// tests/unit/test_s2t.c — loading the speech->text model: malformed files give
// clear errors naming the tensor or config key; bad arguments are refused.
// Variants of tests/data/s2t_tiny.safetensors are written with an edited header.
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "pipeline/beam.h"
#include "pipeline/half.h"
#include "pipeline/ops.h"
#include "pipeline/s2t.h"
#include "tests/testutil.h"

static s2t_kv_type g_kv; // the cross K/V type of the invariance tests (run for both)
static unsigned char *g_file;
static size_t g_size, g_hlen;
static const char *g_dir;

static void load_tiny(void)
{
    FILE *f = fopen(sl_test_data("s2t_tiny.safetensors"), "rb");
    if (!f) {
        perror("s2t_tiny.safetensors");
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    g_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g_file = malloc(g_size);
    if (fread(g_file, 1, g_size, f) != g_size)
        exit(1);
    fclose(f);
    g_hlen = 0;
    for (int i = 7; i >= 0; i--)
        g_hlen = (g_hlen << 8) | g_file[i];
}

// The tiny model's header passed through edit() (its config re-serialised); the
// caller owns it.
static json_t *edited_header(void (*edit)(json_t *hdr, json_t *cfg))
{
    json_t *hdr = json_loadb((const char *)g_file + 8, g_hlen, 0, NULL);
    json_t *meta = json_object_get(hdr, "__metadata__");
    json_t *cfg = json_loads(json_string_value(json_object_get(meta, "config")), 0, NULL);
    edit(hdr, cfg);
    if (cfg && json_object_get(meta, "config")) {
        char *cs = json_dumps(cfg, JSON_COMPACT);
        json_object_set_new(meta, "config", json_string(cs));
        free(cs);
    }
    json_decref(cfg);
    return hdr;
}

// Creates g_dir/NAME.safetensors holding hdr (length, JSON padded to 8 bytes) and
// returns it open at the data area; path gets the file's name.
static FILE *create_with_header(const char *name, const json_t *hdr, char *path, size_t cap)
{
    char *hs = json_dumps(hdr, JSON_COMPACT);
    size_t n = strlen(hs), padded = (n + 7) / 8 * 8;
    snprintf(path, cap, "%s/%s.safetensors", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (int i = 0; i < 8; i++)
        fputc((int)(((uint64_t)padded >> (8 * i)) & 0xff), f);
    fwrite(hs, 1, n, f);
    for (size_t i = n; i < padded; i++)
        fputc(' ', f);
    free(hs);
    return f;
}

// Writes the tiny model with its header passed through edit(); returns the path.
static const char *variant(const char *name, void (*edit)(json_t *hdr, json_t *cfg))
{
    static char path[4300];
    json_t *hdr = edited_header(edit);
    FILE *f = create_with_header(name, hdr, path, sizeof path);
    fwrite(g_file + 8 + g_hlen, 1, g_size - 8 - g_hlen, f);
    fclose(f);
    json_decref(hdr);
    return path;
}

// Every run of a source set after the first gives the first run's ids and score bits:
// run 0 records them in ids (rows of stride ints), n and sc.
static void same_as_first(int run, const beam_result *r, int n_src, int32_t *ids, size_t stride,
                          int *n, float *sc)
{
    for (int i = 0; i < n_src; i++) {
        int32_t *want = ids + (size_t)i * stride;
        if (run == 0) {
            sc[i] = r[i].score;
            n[i] = r[i].n_ids;
            memcpy(want, r[i].ids, (size_t)n[i] * sizeof(int32_t));
            continue;
        }
        CU_ASSERT(r[i].n_ids == n[i] && !memcmp(r[i].ids, want, (size_t)n[i] * 4));
        CU_ASSERT(memcmp(&r[i].score, &sc[i], sizeof(float)) == 0);
    }
}

static void expect_fail(const char *path, int code, const char *needle1, const char *needle2)
{
    s2t_model *m = (s2t_model *)1;
    sl_err e;
    int rc = s2t_open(&m, path, &e);
    printf("\n    -> %s", e.msg);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle1));
    if (needle2)
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle2));
}

static void no_edit(json_t *h, json_t *c) { (void)h, (void)c; }

static void test_roundtrip_ok(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, variant("same", no_edit), &e), SL_OK);
    const s2t_config *c = s2t_model_config(m);
    CU_ASSERT_EQUAL(c->dim, 64);
    CU_ASSERT_EQUAL(c->heads, 4);
    CU_ASSERT_EQUAL(c->kv_heads, 2);
    CU_ASSERT_EQUAL(c->ff_inner, 170);
    CU_ASSERT_EQUAL(c->speech_eos, 16);
    CU_ASSERT_EQUAL(c->text_eos, 40);
    CU_ASSERT_EQUAL(c->n_text_vocab, 41);
    s2t_close(m);
}

static void test_truncated(void)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/trunc.safetensors", g_dir);
    FILE *f = fopen(path, "wb");
    fwrite(g_file, 1, g_size * 6 / 10, f);
    fclose(f);
    expect_fail(path, SL_ECORRUPT, "trunc.safetensors", "truncated");
    f = fopen(path, "wb"); // cut inside the header
    fwrite(g_file, 1, 100, f);
    fclose(f);
    expect_fail(path, SL_ECORRUPT, "header length", NULL);
}

static void edit_shape(json_t *h, json_t *c)
{
    json_t *t = json_object_get(h, "target_transformer.layers.1.0.to_out.weight");
    json_object_set_new(t, "shape", json_pack("[ii]", 32, 128));
}

static void edit_missing_key(json_t *h, json_t *c) { json_object_del(c, "num_text_token_ids"); }

static void edit_missing_tensor(json_t *h, json_t *c)
{
    json_t *t = json_object_get(h, "target_transformer.layers.1.1.null_kv");
    json_object_set(h, "target_transformer.layers.1.1.null_kv_renamed", t);
    json_object_del(h, "target_transformer.layers.1.1.null_kv");
}

static void edit_heads(json_t *h, json_t *c) { json_object_set_new(c, "heads", json_integer(8)); }
static void edit_depth(json_t *h, json_t *c)
{
    json_object_set_new(c, "target_depth", json_integer(1));
}
static void edit_no_config(json_t *h, json_t *c)
{
    json_object_del(json_object_get(h, "__metadata__"), "config");
}
static void edit_bad_type(json_t *h, json_t *c) { json_object_set_new(c, "dim", json_string("64")); }
static void edit_kv_heads(json_t *h, json_t *c)
{
    json_object_set_new(c, "target_kv_heads", json_integer(3));
}

static void test_malformed(void)
{
    expect_fail(variant("shape", edit_shape), SL_EFORMAT,
                "\"target_transformer.layers.1.0.to_out.weight\" has shape [32, 128], expected "
                "[64, 64]", NULL);
    expect_fail(variant("key", edit_missing_key), SL_EFORMAT, "\"num_text_token_ids\"",
                "missing");
    expect_fail(variant("tensor", edit_missing_tensor), SL_ENOTFOUND,
                "\"target_transformer.layers.1.1.null_kv\"", "missing");
    expect_fail(variant("heads", edit_heads), SL_EFORMAT, "source_transformer.layers.0.0.to_q",
                "expected [128, 64]");
    expect_fail(variant("depth", edit_depth), SL_EFORMAT, "target_transformer.layers.1",
                "depth 1");
    expect_fail(variant("noconfig", edit_no_config), SL_EFORMAT, "__metadata__[\"config\"]",
                NULL);
    expect_fail(variant("type", edit_bad_type), SL_EFORMAT, "\"dim\"", "not an integer");
    expect_fail(variant("kvheads", edit_kv_heads), SL_EFORMAT, "target_kv_heads 3", NULL);
    printf("\n");
}

static void test_bad_arguments(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    beam_state *b;
    s2t_limits lim = {2, 2, 10, 8, S2T_KV_F32};
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&b, m, lim, &e), SL_OK);
    int32_t ok[3] = {1, 2, 3}, bad[3] = {1, 16, 3}, big[11] = {0};
    const int32_t *s1[1] = {bad};
    int n3 = 3, n11 = 11;
    beam_params p = beam_default_params();
    p.beam = 2;
    beam_result r[3];
    CU_ASSERT_EQUAL(beam_decode(b, s1, &n3, 1, &p, r, &e), SL_EINVAL); // 16 = EOS, not an id
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "id 16"));
    s1[0] = big;
    CU_ASSERT_EQUAL(beam_decode(b, s1, &n11, 1, &p, r, &e), SL_EINVAL);
    const int32_t *s3[3] = {ok, ok, ok};
    int l3[3] = {3, 3, 3};
    CU_ASSERT_EQUAL(beam_decode(b, s3, l3, 3, &p, r, &e), SL_EINVAL); // batch 3 > 2
    p.beam = 3;
    CU_ASSERT_EQUAL(beam_decode(b, s3, l3, 2, &p, r, &e), SL_EINVAL);
    p.beam = 2;
    CU_ASSERT_EQUAL(beam_decode(b, s3, l3, 2, &p, r, &e), SL_OK);
    CU_ASSERT(r[0].n_ids >= 0 && r[0].n_ids <= 8);
    // an empty source is just the speech EOS
    int l0 = 0;
    CU_ASSERT_EQUAL(beam_decode(b, s3, &l0, 1, &p, r, &e), SL_OK);
    beam_state_free(b);
    s2t_close(m);
}

// 12 sources of different lengths: every method gives each source the same ids and
// the same score bits in a batch of 12 as alone (row blocks of 4 vs 1 in the kernels).
static void test_batch_invariance(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    static int32_t src[12][100];
    const int32_t *sp[12];
    int len[12];
    unsigned x = 1;
    for (int i = 0; i < 12; i++) {
        len[i] = 20 + 7 * i;
        for (int t = 0; t < len[i]; t++) {
            x = x * 1103515245u + 12345u;
            src[i][t] = (int32_t)((x >> 16) % 16);
        }
        sp[i] = src[i];
    }
    s2t_limits lim = {12, 4, 100, 24, g_kv};
    beam_state *b;
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&b, m, lim, &e), SL_OK);
    for (int k = 0; k < 4; k++) {
        beam_params p = beam_default_params();
        p.max_len = 24;
        if (k == 1)
            p.mode = BEAM_MODE_SEED;
        if (k == 2)
            p.method = BEAM_GREEDY;
        if (k == 3) {
            p.beam = 3;
            p.lenpen = 1.0f;
        }
        beam_result r[12], one;
        float sc[12];
        int32_t ids[12][24];
        int n[12];
        CU_ASSERT_EQUAL_FATAL(beam_decode(b, sp, len, 12, &p, r, &e), SL_OK);
        for (int i = 0; i < 12; i++) {
            sc[i] = r[i].score;
            n[i] = r[i].n_ids;
            memcpy(ids[i], r[i].ids, (size_t)n[i] * sizeof(int32_t));
        }
        for (int i = 0; i < 12; i++) {
            CU_ASSERT_EQUAL_FATAL(beam_decode(b, &sp[i], &len[i], 1, &p, &one, &e), SL_OK);
            CU_ASSERT(one.n_ids == n[i] && !memcmp(one.ids, ids[i], (size_t)n[i] * 4));
            CU_ASSERT(memcmp(&one.score, &sc[i], sizeof(float)) == 0);
        }
    }
    beam_state_free(b);
    s2t_close(m);
}

// The pool (continuous batching): 16 sources stream through a pool of 5 slots
// on a random schedule (joins at arbitrary steps, sometimes none while slots are
// free); each source's ids, score bits and flags equal beam_decode of it alone
// in a state of batch 1. Every method and beam mode, a short max length (some
// sources end there) and a min length, four schedules each.
enum { POOL_N = 16, POOL_T = 24 };

typedef struct pool_ref {
    int32_t ids[POOL_N][POOL_T];
    int n[POOL_N];
    float score[POOL_N], score_text[POOL_N];
    unsigned flags[POOL_N];
} pool_ref;

static void pool_params(int k, beam_params *p)
{
    *p = beam_default_params();
    p->max_len = POOL_T;
    switch (k) {
    case 0: break;                                     // beam default, width 4
    case 1: p->mode = BEAM_MODE_SEED; break;           // the seed's beam
    case 2: p->method = BEAM_GREEDY; break;
    case 3: p->method = BEAM_SAMPLE; p->top_k = 5; p->temperature = 0.7f; p->seed = 9; break;
    case 4: p->beam = 3; p->lenpen = 1.0f; p->min_len = 5; break;
    case 5: p->method = BEAM_GREEDY; p->max_len = 6; p->min_len = 3; break;
    case 6: p->mode = BEAM_MODE_SEED; p->max_len = 7; break;
    default: p->len_a = 0.1f; p->len_b = 2.0f; p->beam = 2; break; // max length from the source
    }
}

static void test_pool_schedules(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    static int32_t src[POOL_N][100];
    const int32_t *sp[POOL_N];
    int len[POOL_N];
    unsigned x = 3;
    for (int i = 0; i < POOL_N; i++) {
        len[i] = 5 + (11 * i) % 90;
        for (int t = 0; t < len[i]; t++) {
            x = x * 1103515245u + 12345u;
            src[i][t] = (int32_t)((x >> 16) % 16);
        }
        sp[i] = src[i];
    }
    s2t_limits lim1 = {1, 4, 100, POOL_T, g_kv}, lim = {5, 4, 100, POOL_T, g_kv};
    beam_state *one, *b;
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&one, m, lim1, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&b, m, lim, &e), SL_OK);
    int32_t bad[3] = {1, 16, 3};
    int slot, maxlen_seen = 0, eos_seen = 0, late_joins = 0;
    beam_result r;
    CU_ASSERT_EQUAL(beam_pool_add(b, sp[0], len[0], &slot, &e), SL_EINVAL); // not begun
    for (int k = 0; k < 8; k++) {
        beam_params p;
        pool_params(k, &p);
        static pool_ref ref;
        for (int i = 0; i < POOL_N; i++) {
            CU_ASSERT_EQUAL_FATAL(beam_decode(one, &sp[i], &len[i], 1, &p, &r, &e), SL_OK);
            ref.n[i] = r.n_ids;
            memcpy(ref.ids[i], r.ids, (size_t)r.n_ids * sizeof(int32_t));
            ref.score[i] = r.score;
            ref.score_text[i] = r.score_text;
            ref.flags[i] = r.flags;
            maxlen_seen += (r.flags & BEAM_FLAG_MAXLEN) != 0;
            eos_seen += !(r.flags & BEAM_FLAG_MAXLEN);
        }
        for (unsigned seed = 1; seed <= 4; seed++) {
            unsigned rs = seed * 2654435761u + (unsigned)k;
            int next = 0, taken = 0, who[5], steps = 0;
            CU_ASSERT_EQUAL_FATAL(beam_pool_begin(b, &p, &e), SL_OK);
            while (taken < POOL_N) {
                rs = rs * 1103515245u + 12345u;
                int want = (int)((rs >> 16) % 4); // 0..3 sources may join before this step
                for (int j = 0; j < want && next < POOL_N && beam_pool_free(b) > 0; j++) {
                    late_joins += beam_pool_live(b) > 0;
                    CU_ASSERT_EQUAL_FATAL(beam_pool_add(b, sp[next], len[next], &slot, &e),
                                          SL_OK);
                    who[slot] = next++;
                }
                if (next < POOL_N && beam_pool_free(b) > 0 && (rs >> 20) % 5 == 0) {
                    // a refused source leaves the pool as it was
                    CU_ASSERT_EQUAL(beam_pool_add(b, bad, 3, &slot, &e), SL_EINVAL);
                }
                if (beam_pool_live(b) == 0 && next < POOL_N)
                    continue;
                CU_ASSERT_EQUAL_FATAL(beam_pool_step(b, &e), SL_OK);
                steps++;
                while (beam_pool_take(b, &slot, &r)) {
                    int i = who[slot];
                    taken++;
                    CU_ASSERT(r.n_ids == ref.n[i] &&
                              !memcmp(r.ids, ref.ids[i], (size_t)r.n_ids * sizeof(int32_t)));
                    CU_ASSERT(memcmp(&r.score, &ref.score[i], sizeof(float)) == 0);
                    CU_ASSERT(memcmp(&r.score_text, &ref.score_text[i], sizeof(float)) == 0);
                    CU_ASSERT_EQUAL(r.flags, ref.flags[i]);
                }
                CU_ASSERT_FATAL(steps < 10000);
            }
            CU_ASSERT_EQUAL(beam_pool_live(b), 0);
            CU_ASSERT_EQUAL(beam_pool_free(b), 5);
        }
    }
    // the schedules did what they claim: joins mid-decode, both endings
    CU_ASSERT(late_joins > 100);
    CU_ASSERT(maxlen_seen > 0 && eos_seen > 0);
    // a full pool refuses another source
    beam_params p = beam_default_params();
    CU_ASSERT_EQUAL_FATAL(beam_pool_begin(b, &p, &e), SL_OK);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(beam_pool_add(b, sp[i], len[i], &slot, &e), SL_OK);
    CU_ASSERT_EQUAL(beam_pool_add(b, sp[5], len[5], &slot, &e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "slots are taken"));
    uint64_t st, rows;
    beam_pool_stats(b, &st, &rows);
    CU_ASSERT(st > 0 && rows >= st);
    printf("\n    late joins %d, max-length results %d, EOS results %d ", late_joins,
           maxlen_seen, eos_seen);
    beam_state_free(one);
    beam_state_free(b);
    s2t_close(m);
}

// ops_matmul_rows: a row's bits do not depend on M, on its place in a register
// block, nor on the kernel (the CPU's or portable); K tails (K % 8 != 0) included.
// (tests/unit/test_ops.c compares every kernel over many more shapes.)
static void test_rows_kernel(void)
{
    enum { MM = 13, NN = 37, KK = 1365 };
    float *A = malloc(sizeof(float) * MM * KK), *B = malloc(sizeof(float) * NN * KK);
    float *C = malloc(sizeof(float) * MM * NN), *C1 = malloc(sizeof(float) * NN);
    float *P = malloc(sizeof(float) * MM * NN);
    unsigned x = 7;
    for (size_t i = 0; i < (size_t)MM * KK; i++) {
        x = x * 1103515245u + 12345u;
        A[i] = (float)((int)(x >> 8) % 2001 - 1000) / 317.0f;
    }
    for (size_t i = 0; i < (size_t)NN * KK; i++) {
        x = x * 1103515245u + 12345u;
        B[i] = (float)((int)(x >> 8) % 2001 - 1000) / 911.0f;
    }
    static const size_t Ks[] = {1, 5, 8, 13, 64, 512, 1365};
    static const size_t Ns[] = {1, 2, 3, 4, 7, 37};
    for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
            for (size_t M = 1; M <= MM; M += 3) {
                size_t K = Ks[ki], N = Ns[ni];
                for (size_t i = 0; i < (size_t)MM * NN; i++)
                    C[i] = P[i] = 0.25f * (float)((i / NN) * N + i % NN);
                ops_matmul_rows(M, N, K, 0.5f, A, KK, B, KK, 1.0f, C, NN);
                ops_rows_set_kernel(OPS_ROWS_PORTABLE);
                ops_matmul_rows(M, N, K, 0.5f, A, KK, B, KK, 1.0f, P, NN);
                ops_rows_set_kernel(OPS_ROWS_AUTO);
                CU_ASSERT(memcmp(C, P, sizeof(float) * ((M - 1) * NN + N)) == 0);
                for (size_t i = 0; i < M; i++) {
                    for (size_t j = 0; j < N; j++)
                        C1[j] = 0.25f * (float)(i * N + j);
                    ops_matmul_rows(1, N, K, 0.5f, A + i * KK, KK, B, KK, 1.0f, C1, NN);
                    CU_ASSERT(memcmp(C1, C + i * NN, sizeof(float) * N) == 0);
                }
            }
    free(A), free(B), free(C), free(C1), free(P);
}

// Threads (par.h) split the decoder's products over columns and its step attention
// over (row, kv group) and (source, head): every method decodes the 12 sources to the
// same ids and score bits at 2, 3 and 5 threads as at 1.
static void test_thread_invariance(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    static int32_t src[12][100];
    const int32_t *sp[12];
    int len[12];
    unsigned x = 11;
    for (int i = 0; i < 12; i++) {
        len[i] = 9 + 8 * i;
        for (int t = 0; t < len[i]; t++) {
            x = x * 1103515245u + 12345u;
            src[i][t] = (int32_t)((x >> 16) % 16);
        }
        sp[i] = src[i];
    }
    s2t_limits lim = {12, 4, 100, 24, g_kv};
    beam_state *b;
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&b, m, lim, &e), SL_OK);
    static const int threads[] = {1, 2, 3, 5};
    for (int k = 0; k < 3; k++) {
        beam_params p = beam_default_params();
        p.max_len = 24;
        if (k == 1)
            p.mode = BEAM_MODE_SEED;
        if (k == 2)
            p.method = BEAM_GREEDY;
        static int32_t ids[12][24];
        int n[12];
        float sc[12];
        for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++) {
            ops_set_threads(threads[ti]);
            beam_result r[12];
            CU_ASSERT_EQUAL_FATAL(beam_decode(b, sp, len, 12, &p, r, &e), SL_OK);
            same_as_first((int)ti, r, 12, ids[0], 24, n, sc);
        }
    }
    ops_set_threads(1);
    beam_state_free(b);
    s2t_close(m);
}

// More rows on one source than max_beam (the state's limits allow up to max_batch *
// max_beam rows): the cross-attention takes them in groups of max_beam (its scratch's
// bound; one group of all 16 rows overran it, which ASan reports), and each row's
// logits equal those of the same row decoded alone.
static void test_many_rows_one_source(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    const s2t_config *c = s2t_model_config(m);
    size_t V = (size_t)c->n_text_vocab;
    int32_t src[10] = {1, 5, 2, 7, 3, 9, 4, 11, 6, 13};
    int32_t tok[16];
    int rows[16] = {0};
    for (int t = 0; t < 16; t++)
        tok[t] = t % c->n_text_vocab;
    for (int threads = 1; threads <= 2; threads++) {
        ops_set_threads(threads);
        s2t_state *s, *one;
        s2t_limits lim = {16, 1, 10, 3, g_kv}, lim1 = {1, 1, 10, 3, g_kv};
        CU_ASSERT_EQUAL_FATAL(s2t_state_new(&s, m, lim, &e), SL_OK);
        CU_ASSERT_EQUAL_FATAL(s2t_state_new(&one, m, lim1, &e), SL_OK);
        CU_ASSERT_EQUAL_FATAL(s2t_encode_slot(s, 0, src, 10, &e), SL_OK);
        CU_ASSERT_EQUAL_FATAL(s2t_encode_slot(one, 0, src, 10, &e), SL_OK);
        CU_ASSERT_EQUAL_FATAL(s2t_dec_begin(s, 16, rows, &e), SL_OK);
        const float *lg = s2t_dec_step(s, tok, &e); // first step: the start embedding
        CU_ASSERT_PTR_NOT_NULL_FATAL(lg);
        lg = s2t_dec_step(s, tok, &e);               // second: row r feeds text id r
        CU_ASSERT_PTR_NOT_NULL_FATAL(lg);
        int diffs = 0;
        for (int r = 0; r < 16; r++) {
            CU_ASSERT_EQUAL_FATAL(s2t_dec_begin(one, 1, rows, &e), SL_OK);
            CU_ASSERT_PTR_NOT_NULL_FATAL(s2t_dec_step(one, &tok[r], &e));
            const float *l1 = s2t_dec_step(one, &tok[r], &e);
            CU_ASSERT_PTR_NOT_NULL_FATAL(l1);
            diffs += memcmp(l1, lg + (size_t)r * V, V * sizeof(float)) != 0;
        }
        CU_ASSERT_EQUAL(diffs, 0);
        s2t_state_free(s);
        s2t_state_free(one);
    }
    ops_set_threads(1);
    s2t_close(m);
}

// Runs test fn with float16 cross K/V (s2t.h S2T_KV_F16): the batch, pool and thread
// guarantees hold for it as for float32.
static void with_f16(void (*fn)(void))
{
    g_kv = S2T_KV_F16;
    fn();
    g_kv = S2T_KV_F32;
}
static void test_batch_invariance_f16(void) { with_f16(test_batch_invariance); }
static void test_pool_schedules_f16(void) { with_f16(test_pool_schedules); }
static void test_thread_invariance_f16(void) { with_f16(test_thread_invariance); }
static void test_many_rows_one_source_f16(void) { with_f16(test_many_rows_one_source); }

// Decodes 6 sources with the given cross K/V type; ids and score bits into the arrays.
static void decode6(const s2t_model *m, s2t_kv_type kv, int32_t ids[6][24], int n[6],
                    float sc[6])
{
    static int32_t src[6][100];
    const int32_t *sp[6];
    int len[6];
    unsigned x = 5;
    for (int i = 0; i < 6; i++) {
        len[i] = 30 + 11 * i;
        for (int t = 0; t < len[i]; t++) {
            x = x * 1103515245u + 12345u;
            src[i][t] = (int32_t)((x >> 16) % 16);
        }
        sp[i] = src[i];
    }
    s2t_limits lim = {6, 4, 100, 24, kv};
    beam_state *b;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&b, m, lim, &e), SL_OK);
    beam_params p = beam_default_params();
    p.max_len = 24;
    beam_result r[6];
    CU_ASSERT_EQUAL_FATAL(beam_decode(b, sp, len, 6, &p, r, &e), SL_OK);
    for (int i = 0; i < 6; i++) {
        n[i] = r[i].n_ids;
        sc[i] = r[i].score;
        memcpy(ids[i], r[i].ids, (size_t)n[i] * sizeof(int32_t));
    }
    beam_state_free(b);
}

// Float16 cross K/V: the same ids and score bits whether the CPU's F16C or the plain C
// conversion ran (a row must not depend on the node), and scores that differ from
// float32's (the option is not a no-op) by little on these sources.
static void test_f16_paths_and_effect(void)
{
    s2t_model *m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    static int32_t a[6][24], b[6][24], c[6][24];
    int na[6], nb[6], nc[6];
    float sa[6], sb[6], scf[6];
    half_force_portable(0);
    printf("\n    F16C: %s", half_uses_f16c() ? "yes" : "no (both runs plain C)");
    decode6(m, S2T_KV_F16, a, na, sa);
    half_force_portable(1);
    decode6(m, S2T_KV_F16, b, nb, sb);
    half_force_portable(0);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT(na[i] == nb[i] && !memcmp(a[i], b[i], (size_t)na[i] * 4));
        CU_ASSERT(memcmp(&sa[i], &sb[i], sizeof(float)) == 0);
    }
    decode6(m, S2T_KV_F32, c, nc, scf);
    int moved = 0;
    float worst = 0.0f;
    for (int i = 0; i < 6; i++) {
        moved += memcmp(&sa[i], &scf[i], sizeof(float)) != 0;
        if (na[i] == nc[i] && !memcmp(a[i], c[i], (size_t)na[i] * 4))
            worst = fabsf(sa[i] - scf[i]) > worst ? fabsf(sa[i] - scf[i]) : worst;
    }
    printf("\n    f16 vs f32: %d of 6 scores moved, largest |diff| %.3g on equal ids", moved,
           (double)worst);
    CU_ASSERT(moved > 0);
    CU_ASSERT(worst < 1e-2f);
    s2t_close(m);
}

// Writes the tiny model with every float of tensor `name` set to v; returns the path.
static const char *variant_fill(const char *file, const char *name, float v)
{
    static char path[4300];
    json_t *hdr = json_loadb((const char *)g_file + 8, g_hlen, 0, NULL);
    json_t *off = json_object_get(json_object_get(hdr, name), "data_offsets");
    size_t lo = (size_t)json_integer_value(json_array_get(off, 0));
    size_t hi = (size_t)json_integer_value(json_array_get(off, 1));
    json_decref(hdr);
    CU_ASSERT_FATAL(hi > lo && 8 + g_hlen + hi <= g_size);
    unsigned char *copy = malloc(g_size);
    memcpy(copy, g_file, g_size);
    for (size_t i = lo; i < hi; i += 4)
        memcpy(copy + 8 + g_hlen + i, &v, 4);
    snprintf(path, sizeof path, "%s/%s.safetensors", g_dir, file);
    FILE *f = fopen(path, "wb");
    fwrite(copy, 1, g_size, f);
    fclose(f);
    free(copy);
    return path;
}

// Float16 is refused for a model whose cross keys/values could overflow it (a large
// final-norm gamma of the encoder, a large or NaN null key), and float32 still works.
static void test_f16_range_refused(void)
{
    static const struct {
        const char *file, *tensor;
        float v;
    } cases[] = {
        {"big_gamma", "source_transformer.final_norm.gamma", 1e5f},
        {"big_null", "target_transformer.layers.1.1.null_kv", 7e4f},
        {"nan_null", "target_transformer.layers.0.1.null_kv", NAN},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        s2t_model *m;
        sl_err e;
        CU_ASSERT_EQUAL_FATAL(s2t_open(&m, variant_fill(cases[k].file, cases[k].tensor,
                                                        cases[k].v), &e), SL_OK);
        s2t_state *s = (s2t_state *)1;
        s2t_limits lim = {2, 2, 10, 8, S2T_KV_F16};
        int rc = s2t_state_new(&s, m, lim, &e);
        printf("\n    %s -> %s", cases[k].file, e.msg);
        CU_ASSERT_EQUAL(rc, SL_EINVAL);
        CU_ASSERT_PTR_NULL(s);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "float16"));
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "f32"));
        lim.cross_kv = S2T_KV_F32;
        CU_ASSERT_EQUAL(s2t_state_new(&s, m, lim, &e), SL_OK);
        s2t_state_free(s);
        s2t_close(m);
    }
    s2t_model *m; // the model as it is: accepted
    sl_err e;
    s2t_state *s;
    CU_ASSERT_EQUAL_FATAL(s2t_open(&m, sl_test_data("s2t_tiny.safetensors"), &e), SL_OK);
    s2t_limits lim = {2, 2, 10, 8, S2T_KV_F16};
    CU_ASSERT_EQUAL(s2t_state_new(&s, m, lim, &e), SL_OK);
    // sized for 8 sources of 30 s: the float16 state is the smaller by ~half its cross K/V
    s2t_limits big = {8, 4, 1500, 64, S2T_KV_F16}, big32 = big;
    big32.cross_kv = S2T_KV_F32;
    size_t b16 = s2t_state_bytes(m, big), b32 = s2t_state_bytes(m, big32);
    printf("\n    state for 8 x 1500 ids: f32 %zu MiB, f16 %zu MiB", b32 >> 20, b16 >> 20);
    CU_ASSERT(b16 < b32);
    s2t_state_free(s);
    s2t_close(m);
}

// ------------------------------------------------ a model of realistic width ---

// The tiny model's tensors at dim 256, dim_head 64, ff inner 682 (each of the tiny
// shape's sizes mapped: 64 -> 256, 128 -> 512, 16 -> 64, 8 -> 32, 340 -> 1364,
// 170 -> 682), random weights: products large enough that OpenBLAS's sgemm would
// thread them. Returns the path.
static size_t wide_dim(size_t v)
{
    switch (v) {
    case 64: return 256;
    case 128: return 512;
    case 16: return 64;
    case 8: return 32;
    case 340: return 1364;
    case 170: return 682;
    default: return v;
    }
}

static void wide_config(json_t *hdr, json_t *cfg)
{
    (void)hdr;
    json_object_set_new(cfg, "dim", json_integer(256));
    json_object_set_new(cfg, "dim_head", json_integer(64));
    json_object_set_new(cfg, "rotary_dim", json_integer(64));
    json_object_set_new(cfg, "ff_inner_dim", json_integer(682));
}

static const char *write_wide(void)
{
    static char path[4300];
    json_t *hdr = edited_header(wide_config);
    // new shapes and offsets, in the header's key order
    size_t off = 0;
    const char *key;
    json_t *t;
    json_object_foreach(hdr, key, t) {
        if (!strcmp(key, "__metadata__"))
            continue;
        json_t *shape = json_object_get(t, "shape"), *ns = json_array();
        size_t n = 1, i;
        json_t *d;
        json_array_foreach(shape, i, d) {
            size_t v = wide_dim((size_t)json_integer_value(d));
            json_array_append_new(ns, json_integer((json_int_t)v));
            n *= v;
        }
        json_object_set_new(t, "shape", ns);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + 4 * n)));
        json_object_set_new(t, "data_offsets", offs);
        off += 4 * n;
    }
    FILE *f = create_with_header("wide", hdr, path, sizeof path);
    unsigned x = 2024;
    json_object_foreach(hdr, key, t) { // (the same order as the offsets)
        if (!strcmp(key, "__metadata__"))
            continue;
        json_t *shape = json_object_get(t, "shape");
        size_t rank = json_array_size(shape), n = 1;
        for (size_t i = 0; i < rank; i++)
            n *= (size_t)json_integer_value(json_array_get(shape, i));
        size_t fan = (size_t)json_integer_value(json_array_get(shape, rank - 1));
        float a = strstr(key, ".weight") && !strstr(key, "emb") ? sqrtf(3.0f / (float)fan) : 1.0f;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            float u = (float)((x >> 8) & 0xffff) / 32768.0f - 1.0f; // [-1, 1)
            float v = strstr(key, "gamma")   ? 1.0f + 0.1f * u
                      : strstr(key, "bias")  ? 0.02f * u
                      : strstr(key, "freqs") ? 1.0f / powf(10000.0f, (float)(2 * i) / 64.0f)
                                             : a * u;
            fwrite(&v, sizeof v, 1, f);
        }
    }
    fclose(f);
    json_decref(hdr);
    return path;
}

// At realistic width every product of the encoder, the cross K/V and the decoder is
// ops_matmul_rows: 3 sources of 240 ids decode to the same ids and score bits at 1, 2
// and 3 threads and with every rows kernel the CPU has (the portable one included).
// (When the encoder used OpenBLAS's sgemm, an AVX2 Zen gave other score bits at 2 threads.)
static void test_wide_model_threads_and_kernels(void)
{
    s2t_model *m;
    sl_err e;
    int orc = s2t_open(&m, write_wide(), &e);
    if (orc)
        printf("\n    %s", e.msg);
    CU_ASSERT_EQUAL_FATAL(orc, SL_OK);
    CU_ASSERT_EQUAL(s2t_model_config(m)->dim, 256);
    enum { NS = 3, LEN = 240, ML = 10 };
    static int32_t src[NS][LEN];
    const int32_t *sp[NS];
    int len[NS];
    unsigned x = 5;
    for (int i = 0; i < NS; i++) {
        len[i] = LEN - 37 * i;
        for (int t = 0; t < len[i]; t++) {
            x = x * 1103515245u + 12345u;
            src[i][t] = (int32_t)((x >> 16) % 16);
        }
        sp[i] = src[i];
    }
    s2t_limits lim = {NS, 4, LEN, ML, g_kv};
    beam_state *b;
    CU_ASSERT_EQUAL_FATAL(beam_state_new(&b, m, lim, &e), SL_OK);
    beam_params p = beam_default_params();
    p.max_len = ML;
    static int32_t ids[NS][ML];
    int n[NS];
    float sc[NS];
    // the threads on the CPU's kernel; each kernel forced at one thread
    static const struct {
        ops_rows_kernel k;
        int threads;
    } setting[] = {{OPS_ROWS_AUTO, 1},     {OPS_ROWS_AUTO, 2}, {OPS_ROWS_AUTO, 3},
                   {OPS_ROWS_PORTABLE, 1}, {OPS_ROWS_AVX2, 1}, {OPS_ROWS_AVX512, 1}};
    int runs = 0;
    for (size_t si = 0; si < sizeof setting / sizeof *setting; si++) {
        if (ops_rows_set_kernel(setting[si].k))
            continue; // (not on this CPU)
        ops_set_threads(setting[si].threads);
        beam_result r[NS];
        CU_ASSERT_EQUAL_FATAL(beam_decode(b, sp, len, NS, &p, r, &e), SL_OK);
        same_as_first(runs++, r, NS, ids[0], ML, n, sc);
    }
    printf("\n    %d runs (kernels x threads), scores %.6f %.6f %.6f", runs, (double)sc[0],
           (double)sc[1], (double)sc[2]);
    CU_ASSERT(runs >= 4);
    ops_set_threads(1);
    ops_rows_set_kernel(OPS_ROWS_AUTO);
    beam_state_free(b);
    s2t_close(m);
}

int main(void)
{
    load_tiny();
    g_dir = sl_test_tmpdir("s2t");
    static const sl_test_case cases[] = {
        {"rewritten model still loads", test_roundtrip_ok},
        {"truncated file", test_truncated},
        {"wrong shape, missing key/tensor, config vs shapes", test_malformed},
        {"bad arguments are refused", test_bad_arguments},
        {"12 sources: batch == alone, bit for bit", test_batch_invariance},
        {"pool: random joins == alone, every method", test_pool_schedules},
        {"ops_matmul_rows: rows independent of M, AVX2 == portable", test_rows_kernel},
        {"threads 1/2/3/5: same ids and score bits", test_thread_invariance},
        {"16 rows on one source (> max_beam): groups, == alone", test_many_rows_one_source},
        {"dim 256, 240 ids: threads 1/2/3 and every rows kernel, same bits",
         test_wide_model_threads_and_kernels},
        {"f16 cross K/V: 12 sources batch == alone", test_batch_invariance_f16},
        {"f16 cross K/V: pool random joins == alone", test_pool_schedules_f16},
        {"f16 cross K/V: threads 1/2/3/5 same bits", test_thread_invariance_f16},
        {"f16 cross K/V: 16 rows on one source == alone", test_many_rows_one_source_f16},
        {"f16 cross K/V: F16C == plain C bits; scores move a little", test_f16_paths_and_effect},
        {"f16 cross K/V: refused for a model that could overflow it", test_f16_range_refused},
        {NULL, NULL},
    };
    int rc = sl_test_main("s2t", cases);
    sl_test_rmtree(g_dir);
    free(g_file);
    return rc;
}
