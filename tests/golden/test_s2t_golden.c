// tests/golden/test_s2t_golden.c — the speech->text model and its decoders
// against the spear-tts-pytorch goldens (tests/data, from ../shared/golden):
// encoder output, teacher-forced and KV-cache step logits, greedy and seed-mode
// beam search (single and batch), the beam score; then properties the goldens
// imply: batch == alone, default beam never worse than seed beam, beam 1 ==
// greedy, top-1 sampling == greedy.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/npy.h"
#include "pipeline/beam.h"
#include "pipeline/s2t.h"
#include "tests/golden/tolerances.h"
#include "tests/testutil.h"

#define MAXLEN 24 // the goldens' max_length

static s2t_model *g_model;
static sl_npy g_batch;              // source_ids_batch.npy [3, 145], -1 padded
static int32_t g_src[3][160];
static const int32_t *g_srcp[3];
static int g_len[3];

static int load_npy(const char *name, sl_npy *a)
{
    sl_err e;
    if (sl_npy_read(sl_test_data(name), a, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

static void setup(void)
{
    sl_err e;
    if (s2t_open(&g_model, sl_test_data("s2t_tiny.safetensors"), &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    if (load_npy("source_ids_batch.npy", &g_batch))
        exit(1);
    const int64_t *ids = g_batch.data;
    size_t T = g_batch.shape[1];
    for (int r = 0; r < 3; r++) {
        g_len[r] = 0;
        for (size_t t = 0; t < T && ids[r * T + t] != -1; t++)
            g_src[r][g_len[r]++] = (int32_t)ids[r * T + t];
        g_srcp[r] = g_src[r];
    }
}

// The cross K/V type of the states new_state() makes; the greedy and seed-beam goldens
// run for both (ids must match the golden with either; the score within its tolerance).
static s2t_kv_type g_kv;

static beam_state *new_state(int batch, int beam, sl_err *e)
{
    s2t_limits lim = {batch, beam, 160, 64, g_kv};
    beam_state *b = NULL;
    if (beam_state_new(&b, g_model, lim, e))
        fprintf(stderr, "%s\n", e->msg);
    return b;
}

// ids of golden row r up to and including its first EOS (or all of it).
static int golden_row(const sl_npy *a, int r, int32_t *out)
{
    const int64_t *d = a->data;
    size_t W = a->shape[a->ndim - 1];
    int n = 0;
    for (size_t t = 0; t < W; t++) {
        out[n++] = (int32_t)d[r * W + t];
        if (d[r * W + t] == s2t_model_config(g_model)->text_eos)
            break;
    }
    return n;
}

static int same_ids(const beam_result *r, const int32_t *g, int n)
{
    if (r->n_ids != n)
        return 0;
    return memcmp(r->ids, g, (size_t)n * sizeof(int32_t)) == 0;
}

static void print_ids(const char *what, const beam_result *r)
{
    printf("    %s:", what);
    for (int i = 0; i < r->n_ids; i++)
        printf(" %d", (int)r->ids[i]);
    printf("  (score %.6f, text %.6f, flags %u)\n", (double)r->score, (double)r->score_text,
           r->flags);
}

static void test_encoder_single(void)
{
    sl_npy src, want;
    sl_err e;
    CU_ASSERT_FATAL(load_npy("source_ids.npy", &src) == 0);
    CU_ASSERT_FATAL(load_npy("encoder_out.npy", &want) == 0);
    const int64_t *ids = src.data;
    int n = (int)src.shape[1] - 1; // the golden source ends with the speech EOS
    CU_ASSERT_EQUAL(ids[n], s2t_model_config(g_model)->speech_eos);
    int32_t s32[200];
    for (int i = 0; i < n; i++)
        s32[i] = (int32_t)ids[i];
    const int32_t *sp = s32;
    s2t_state *s;
    s2t_limits lim = {1, 1, n, 8, S2T_KV_F32};
    CU_ASSERT_FATAL(s2t_state_new(&s, g_model, lim, &e) == SL_OK);
    CU_ASSERT_FATAL(s2t_encode(s, &sp, &n, 1, &e) == SL_OK);
    int np;
    const float *out = s2t_encoder_output(s, 0, &np);
    CU_ASSERT_EQUAL_FATAL((size_t)np * 64, want.count);
    float d = sl_test_max_abs_diff(out, want.data, want.count);
    printf("\n    encoder_out.npy max-abs %.3g (tol %.3g)\n", (double)d, (double)TOL_S2T_ENCODER_OUT);
    CU_ASSERT(d <= TOL_S2T_ENCODER_OUT);
    s2t_state_free(s);
    sl_npy_free(&src);
    sl_npy_free(&want);
}

static void test_encoder_batch(void)
{
    sl_npy want, eos;
    sl_err e;
    CU_ASSERT_FATAL(load_npy("encoder_out_batch.npy", &want) == 0);
    CU_ASSERT_FATAL(load_npy("source_ids_batch_eos.npy", &eos) == 0);
    s2t_state *s;
    s2t_limits lim = {3, 1, 160, 8, S2T_KV_F32};
    CU_ASSERT_FATAL(s2t_state_new(&s, g_model, lim, &e) == SL_OK);
    CU_ASSERT_FATAL(s2t_encode(s, g_srcp, g_len, 3, &e) == SL_OK);
    size_t T = want.shape[1], D = want.shape[2];
    const int64_t *ev = eos.data;
    const float *wv = want.data;
    float worst = 0.0f;
    for (int r = 0; r < 3; r++) {
        int np;
        const float *out = s2t_encoder_output(s, r, &np);
        int valid = 0;
        for (size_t t = 0; t < T; t++)
            valid += ev[r * T + t] != -1;
        CU_ASSERT_EQUAL(np, valid);
        CU_ASSERT_EQUAL(np, g_len[r] + 1);
        float d = sl_test_max_abs_diff(out, wv + r * T * D, (size_t)np * D);
        worst = d > worst ? d : worst;
    }
    printf("\n    encoder_out_batch.npy (valid positions) max-abs %.3g (tol %.3g)\n", (double)worst,
           (double)TOL_S2T_ENCODER_OUT_BATCH);
    CU_ASSERT(worst <= TOL_S2T_ENCODER_OUT_BATCH);
    s2t_state_free(s);
    sl_npy_free(&want);
    sl_npy_free(&eos);
}

static void test_forced_logits(void)
{
    sl_npy tgt, want;
    sl_err e;
    CU_ASSERT_FATAL(load_npy("target_ids.npy", &tgt) == 0);
    CU_ASSERT_FATAL(load_npy("logits.npy", &want) == 0);
    int n = (int)tgt.shape[1];
    int32_t t32[64];
    for (int i = 0; i < n; i++)
        t32[i] = (int32_t)((const int64_t *)tgt.data)[i];
    s2t_state *s;
    s2t_limits lim = {1, 1, 160, 32, S2T_KV_F32};
    CU_ASSERT_FATAL(s2t_state_new(&s, g_model, lim, &e) == SL_OK);
    CU_ASSERT_FATAL(s2t_encode(s, g_srcp, g_len, 1, &e) == SL_OK);
    CU_ASSERT_EQUAL_FATAL((size_t)(n + 1) * 41, want.count);
    float *out = malloc(want.count * sizeof(float));
    CU_ASSERT_FATAL(s2t_dec_forced(s, 0, t32, n, out, &e) == SL_OK);
    float d = sl_test_max_abs_diff(out, want.data, want.count);
    printf("\n    logits.npy max-abs %.3g (tol %.3g)\n", (double)d, (double)TOL_S2T_LOGITS);
    CU_ASSERT(d <= TOL_S2T_LOGITS);
    free(out);
    s2t_state_free(s);
    sl_npy_free(&tgt);
    sl_npy_free(&want);
}

// The KV-cache path step by step, fed the golden greedy tokens; steps also run
// in a 3-row matrix next to other sources to check rows do not mix.
static void test_step_logits(void)
{
    sl_npy g, want;
    sl_err e;
    CU_ASSERT_FATAL(load_npy("greedy.npy", &g) == 0);
    CU_ASSERT_FATAL(load_npy("greedy_step_logits.npy", &want) == 0);
    int S = (int)g.shape[1];
    const int64_t *gt = g.data;
    s2t_state *s;
    s2t_limits lim = {3, 1, 160, 32, S2T_KV_F32};
    CU_ASSERT_FATAL(s2t_state_new(&s, g_model, lim, &e) == SL_OK);
    CU_ASSERT_FATAL(s2t_encode(s, g_srcp, g_len, 3, &e) == SL_OK);
    int rows[3] = {0, 1, 2};
    CU_ASSERT_FATAL(s2t_dec_begin(s, 3, rows, &e) == SL_OK);
    float worst = 0.0f;
    int32_t tok[3] = {0, 0, 0};
    for (int t = 0; t < S; t++) {
        const float *lg = s2t_dec_step(s, tok, &e);
        CU_ASSERT_FATAL(lg != NULL);
        float d = sl_test_max_abs_diff(lg, (const float *)want.data + (size_t)t * 41, 41);
        worst = d > worst ? d : worst;
        tok[0] = tok[1] = tok[2] = (int32_t)gt[t];
    }
    printf("\n    greedy_step_logits.npy max-abs %.3g (tol %.3g)\n", (double)worst,
           (double)TOL_S2T_STEP_LOGITS);
    CU_ASSERT(worst <= TOL_S2T_STEP_LOGITS);
    CU_ASSERT_EQUAL(s2t_dec_length(s), S);
    s2t_state_free(s);
    sl_npy_free(&g);
    sl_npy_free(&want);
}

static void test_greedy(void)
{
    sl_npy g, gb;
    sl_err e;
    CU_ASSERT_FATAL(load_npy("greedy.npy", &g) == 0);
    CU_ASSERT_FATAL(load_npy("greedy_batch.npy", &gb) == 0);
    beam_state *b = new_state(3, 1, &e);
    CU_ASSERT_FATAL(b != NULL);
    beam_params p = beam_default_params();
    p.method = BEAM_GREEDY;
    p.max_len = MAXLEN;
    p.keep_eos = 1;
    beam_result r[3];
    int32_t want[64];
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 1, &p, r, &e) == SL_OK);
    int n = golden_row(&g, 0, want);
    CU_ASSERT(same_ids(&r[0], want, n));
    CU_ASSERT_EQUAL(r[0].flags, 0);
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, r, &e) == SL_OK);
    for (int i = 0; i < 3; i++) {
        n = golden_row(&gb, i, want);
        print_ids("greedy batch row", &r[i]);
        CU_ASSERT(same_ids(&r[i], want, n));
        CU_ASSERT_EQUAL(r[i].flags, want[n - 1] == 40 ? 0u : BEAM_FLAG_MAXLEN);
    }
    CU_ASSERT_EQUAL(r[1].flags, BEAM_FLAG_MAXLEN); // row 1 never reaches EOS
    p.keep_eos = 0;                                // default: no EOS in the ids
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 1, &p, r, &e) == SL_OK);
    n = golden_row(&g, 0, want);
    CU_ASSERT_EQUAL(r[0].n_ids, n - 1);
    beam_state_free(b);
    sl_npy_free(&g);
    sl_npy_free(&gb);
}

static void test_beam_seed(void)
{
    sl_npy bm, bb, sc;
    sl_err e;
    CU_ASSERT_FATAL(load_npy("beam.npy", &bm) == 0);
    CU_ASSERT_FATAL(load_npy("beam_batch.npy", &bb) == 0);
    CU_ASSERT_FATAL(load_npy("beam_score.npy", &sc) == 0);
    beam_state *b = new_state(3, 4, &e);
    CU_ASSERT_FATAL(b != NULL);
    beam_params p = beam_default_params();
    p.beam = 4;
    p.mode = BEAM_MODE_SEED;
    p.max_len = MAXLEN;
    p.keep_eos = 1;
    beam_result r[3];
    int32_t want[64];
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 1, &p, r, &e) == SL_OK);
    int n = golden_row(&bm, 0, want);
    print_ids("\n    seed beam single", &r[0]);
    CU_ASSERT(same_ids(&r[0], want, n));
    float gs = ((const float *)sc.data)[0];
    float tol = g_kv == S2T_KV_F16 ? TOL_S2T_BEAM_SCORE_F16 : TOL_S2T_BEAM_SCORE;
    printf("    beam score %.6f vs golden %.6f: |diff| %.3g (tol %.3g, cross K/V %s)\n",
           (double)r[0].score, (double)gs, fabs((double)r[0].score - (double)gs), (double)tol,
           s2t_kv_type_name(g_kv));
    CU_ASSERT(fabsf(r[0].score - gs) <= tol);
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, r, &e) == SL_OK);
    for (int i = 0; i < 3; i++) {
        n = golden_row(&bb, i, want);
        print_ids("seed beam batch row", &r[i]);
        CU_ASSERT(same_ids(&r[i], want, n));
        CU_ASSERT_EQUAL(r[i].flags, 0u);
    }
    CU_ASSERT(fabsf(r[0].score - gs) <= tol);
    beam_state_free(b);
    sl_npy_free(&bm);
    sl_npy_free(&bb);
    sl_npy_free(&sc);
}

static void test_greedy_f16(void)
{
    g_kv = S2T_KV_F16;
    test_greedy();
    g_kv = S2T_KV_F32;
}

static void test_beam_seed_f16(void)
{
    g_kv = S2T_KV_F16;
    test_beam_seed();
    g_kv = S2T_KV_F32;
}

// Float16 against float32 cross K/V, default beam of widths 2, 4, 8 on the golden
// sources: the same ids, the score difference printed and within TOL_S2T_BEAM_SCORE_F16.
static void test_f16_agrees(void)
{
    sl_err e;
    float worst = 0.0f;
    int same = 1;
    for (int w = 2; w <= 8; w *= 2) {
        beam_result r32[3], r16[3];
        static int32_t ids[3][64];
        float sc[3];
        int n[3];
        beam_params p = beam_default_params();
        p.beam = w;
        p.max_len = MAXLEN;
        beam_state *b = new_state(3, w, &e);
        CU_ASSERT_FATAL(b != NULL);
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, r32, &e) == SL_OK);
        for (int i = 0; i < 3; i++) {
            n[i] = r32[i].n_ids;
            sc[i] = r32[i].score;
            memcpy(ids[i], r32[i].ids, (size_t)n[i] * sizeof(int32_t));
        }
        beam_state_free(b);
        g_kv = S2T_KV_F16;
        b = new_state(3, w, &e);
        g_kv = S2T_KV_F32;
        CU_ASSERT_FATAL(b != NULL);
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, r16, &e) == SL_OK);
        for (int i = 0; i < 3; i++) {
            same &= same_ids(&r16[i], ids[i], n[i]);
            worst = fabsf(r16[i].score - sc[i]) > worst ? fabsf(r16[i].score - sc[i]) : worst;
        }
        beam_state_free(b);
    }
    printf("\n    beam 2/4/8, 3 sources: ids %s, largest score |f16 - f32| %.3g (tol %.3g)",
           same ? "identical" : "DIFFER", (double)worst, (double)TOL_S2T_BEAM_SCORE_F16);
    CU_ASSERT(same);
    CU_ASSERT(worst <= TOL_S2T_BEAM_SCORE_F16);
    CU_ASSERT(worst > 0.0f); // float16 does move scores: the option is not a no-op
}

// Every method: each source of a batch gets exactly (bit for bit) what it gets alone.
static void test_batch_equals_alone(void)
{
    sl_err e;
    beam_state *b = new_state(3, 4, &e);
    CU_ASSERT_FATAL(b != NULL);
    beam_params ps[4];
    for (int k = 0; k < 4; k++) {
        ps[k] = beam_default_params();
        ps[k].max_len = MAXLEN;
    }
    ps[0].method = BEAM_GREEDY;
    ps[1].mode = BEAM_MODE_SEED;
    ps[2].mode = BEAM_MODE_DEFAULT;
    ps[3].method = BEAM_SAMPLE;
    ps[3].top_k = 5;
    ps[3].seed = 7;
    float worst = 0.0f;
    for (int k = 0; k < 4; k++) {
        beam_result all[3], one[1];
        int32_t ids[3][64];
        float score[3];
        int n[3];
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &ps[k], all, &e) == SL_OK);
        for (int i = 0; i < 3; i++) {
            n[i] = all[i].n_ids;
            score[i] = all[i].score;
            memcpy(ids[i], all[i].ids, (size_t)n[i] * sizeof(int32_t));
        }
        for (int i = 0; i < 3; i++) {
            CU_ASSERT_FATAL(beam_decode(b, &g_srcp[i], &g_len[i], 1, &ps[k], one, &e) == SL_OK);
            CU_ASSERT_EQUAL(one[0].n_ids, n[i]);
            CU_ASSERT(one[0].n_ids == n[i] &&
                      !memcmp(one[0].ids, ids[i], (size_t)n[i] * sizeof(int32_t)));
            // The decoder's products are row-wise (ops_matmul_rows): the score is
            // bit-identical too, not just the ids.
            float d = fabsf(one[0].score - score[i]);
            worst = d > worst ? d : worst;
            CU_ASSERT(memcmp(&one[0].score, &score[i], sizeof(float)) == 0);
        }
        // reversed order: the same per-source results
        const int32_t *rs[3] = {g_srcp[2], g_srcp[1], g_srcp[0]};
        int rl[3] = {g_len[2], g_len[1], g_len[0]};
        CU_ASSERT_FATAL(beam_decode(b, rs, rl, 3, &ps[k], all, &e) == SL_OK);
        for (int i = 0; i < 3; i++)
            CU_ASSERT(all[2 - i].n_ids == n[i] &&
                      !memcmp(all[2 - i].ids, ids[i], (size_t)n[i] * sizeof(int32_t)));
    }
    printf("\n    ids identical; largest score difference batch vs alone %.3g (must be 0)\n", (double)worst);
    beam_state_free(b);
}

static void test_default_vs_seed(void)
{
    sl_err e;
    beam_state *b = new_state(3, 8, &e);
    CU_ASSERT_FATAL(b != NULL);
    printf("\n    sum of log-probs up to and including EOS, default vs seed beam mode:\n");
    for (int w = 2; w <= 8; w *= 2) {
        beam_params p = beam_default_params();
        p.beam = w;
        p.max_len = MAXLEN;
        beam_result d[3], s[3];
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, d, &e) == SL_OK);
        float ds[3];
        unsigned df[3];
        for (int i = 0; i < 3; i++) {
            ds[i] = d[i].score_text;
            df[i] = d[i].flags;
            CU_ASSERT_EQUAL(d[i].score, d[i].score_text);
        }
        p.mode = BEAM_MODE_SEED;
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, s, &e) == SL_OK);
        for (int i = 0; i < 3; i++) {
            printf("    beam %d row %d: default %.6f (%d ids%s)  seed %.6f (%d ids%s)\n", w, i,
                   (double)ds[i], d[i].n_ids, df[i] ? ", max len" : "", (double)s[i].score_text,
                   s[i].n_ids, s[i].flags ? ", max len" : "");
            // Only compare finished results: a hypothesis cut at max length has a
            // higher (less negative) partial sum without being better.
            if (!df[i] && !s[i].flags)
                CU_ASSERT(ds[i] >= s[i].score_text - 1e-6f);
        }
    }
    beam_state_free(b);
}

static void test_beam1_is_greedy(void)
{
    sl_err e;
    beam_state *b = new_state(3, 1, &e);
    CU_ASSERT_FATAL(b != NULL);
    for (int ml = 6; ml <= MAXLEN; ml += 18) {
        beam_params g = beam_default_params(), p = beam_default_params();
        g.method = BEAM_GREEDY;
        g.max_len = p.max_len = ml;
        g.keep_eos = p.keep_eos = 1;
        p.beam = 1;
        beam_result rg[3], rb[3];
        int32_t ids[3][64];
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &g, rg, &e) == SL_OK);
        for (int i = 0; i < 3; i++)
            memcpy(ids[i], rg[i].ids, (size_t)rg[i].n_ids * sizeof(int32_t));
        int ng[3] = {rg[0].n_ids, rg[1].n_ids, rg[2].n_ids};
        unsigned fg[3] = {rg[0].flags, rg[1].flags, rg[2].flags};
        float sg[3] = {rg[0].score, rg[1].score, rg[2].score};
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, rb, &e) == SL_OK);
        for (int i = 0; i < 3; i++) {
            CU_ASSERT(rb[i].n_ids == ng[i] &&
                      !memcmp(rb[i].ids, ids[i], (size_t)ng[i] * sizeof(int32_t)));
            CU_ASSERT_EQUAL(rb[i].flags, fg[i]);
            CU_ASSERT(fabsf(rb[i].score - sg[i]) <= 1e-5f);
        }
    }
    beam_state_free(b);
}

static void test_sampling(void)
{
    sl_err e;
    beam_state *b = new_state(3, 1, &e);
    CU_ASSERT_FATAL(b != NULL);
    beam_params g = beam_default_params(), p = beam_default_params();
    g.method = BEAM_GREEDY;
    p.method = BEAM_SAMPLE;
    g.max_len = p.max_len = MAXLEN;
    p.top_k = 1; // top-1 sampling is greedy whatever the temperature
    p.temperature = 3.0f;
    beam_result rg[3], rs[3];
    int32_t ids[3][64];
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &g, rg, &e) == SL_OK);
    for (int i = 0; i < 3; i++)
        memcpy(ids[i], rg[i].ids, (size_t)rg[i].n_ids * sizeof(int32_t));
    int ng[3] = {rg[0].n_ids, rg[1].n_ids, rg[2].n_ids};
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, rs, &e) == SL_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT(rs[i].n_ids == ng[i] && !memcmp(rs[i].ids, ids[i], (size_t)ng[i] * 4));
    // full-vocabulary sampling: same seed -> same ids; another seed -> (here) different
    p.top_k = 0;
    p.temperature = 1.5f;
    int32_t a[64], c[64];
    int na;
    p.seed = 1;
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 1, &p, rs, &e) == SL_OK);
    na = rs[0].n_ids;
    memcpy(a, rs[0].ids, (size_t)na * 4);
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 1, &p, rs, &e) == SL_OK);
    CU_ASSERT(rs[0].n_ids == na && !memcmp(rs[0].ids, a, (size_t)na * 4));
    p.seed = 2;
    CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 1, &p, rs, &e) == SL_OK);
    memcpy(c, rs[0].ids, (size_t)rs[0].n_ids * 4);
    CU_ASSERT(rs[0].n_ids != na || memcmp(c, a, (size_t)na * 4) != 0);
    beam_state_free(b);
}

static void test_lengths(void)
{
    sl_err e;
    beam_state *b = new_state(3, 4, &e);
    CU_ASSERT_FATAL(b != NULL);
    for (int m = 0; m < 3; m++) {
        beam_params p = beam_default_params();
        if (m == 0)
            p.method = BEAM_GREEDY;
        if (m == 2)
            p.mode = BEAM_MODE_SEED;
        p.max_len = 40;
        p.min_len = 30; // EOS suppressed before 30 tokens
        p.keep_eos = 1;
        beam_result r[3];
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, r, &e) == SL_OK);
        for (int i = 0; i < 3; i++) {
            CU_ASSERT(r[i].n_ids >= 30 && r[i].n_ids <= 40);
            for (int k = 0; k < r[i].n_ids && k < 29; k++)
                CU_ASSERT(r[i].ids[k] != 40);
            CU_ASSERT_EQUAL(r[i].flags, r[i].ids[r[i].n_ids - 1] == 40 ? 0u : BEAM_FLAG_MAXLEN);
        }
        // proportional max length: floor(0.1 * src_len + 2) < 40 for the short row
        p.min_len = 0;
        p.len_a = 0.1f;
        p.len_b = 2.0f;
        CU_ASSERT_FATAL(beam_decode(b, g_srcp, g_len, 3, &p, r, &e) == SL_OK);
        for (int i = 0; i < 3; i++)
            CU_ASSERT(r[i].n_ids <= (int)floor(0.1 * g_len[i] + 2.0));
        CU_ASSERT(r[2].n_ids == (int)floor(0.1 * g_len[2] + 2.0) || r[2].flags == 0);
    }
    // limits are enforced
    beam_params p = beam_default_params();
    p.max_len = 65;
    beam_result r[3];
    CU_ASSERT_EQUAL(beam_decode(b, g_srcp, g_len, 3, &p, r, &e), SL_EINVAL);
    p.max_len = 0;
    p.beam = 5;
    CU_ASSERT_EQUAL(beam_decode(b, g_srcp, g_len, 3, &p, r, &e), SL_EINVAL);
    beam_state_free(b);
}

int main(void)
{
    setup();
    static const sl_test_case cases[] = {
        {"encoder output, single source", test_encoder_single},
        {"encoder output, padded batch (valid positions)", test_encoder_batch},
        {"teacher-forced logits", test_forced_logits},
        {"step logits through the KV cache", test_step_logits},
        {"greedy single and batch", test_greedy},
        {"beam seed mode single and batch, score", test_beam_seed},
        {"f16 cross K/V: greedy single and batch, golden ids", test_greedy_f16},
        {"f16 cross K/V: seed beam single and batch, golden ids, score", test_beam_seed_f16},
        {"f16 cross K/V: default beam 2/4/8 ids == f32's, score diff", test_f16_agrees},
        {"batch row == row alone, every method", test_batch_equals_alone},
        {"default beam never worse than seed beam", test_default_vs_seed},
        {"beam 1 == greedy", test_beam1_is_greedy},
        {"sampling: top-1 == greedy, seeded", test_sampling},
        {"min/max/proportional lengths", test_lengths},
        {NULL, NULL},
    };
    int rc = sl_test_main("s2t_golden", cases);
    s2t_close(g_model);
    sl_npy_free(&g_batch);
    return rc;
}
