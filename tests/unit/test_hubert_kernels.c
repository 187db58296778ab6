// tests/unit/test_hubert_kernels.c — the element-wise kernels of pipeline/kernels.h
// (HuBERT's GELU, the two softmax exps) and the HuBERT forward's determinism.
//
// GELU uses a rational erf approximation instead of erff (vectorisable); this keeps
// its error bounds over the range that matters: every 7th float in [-30, 30] (beyond,
// GELU is x or 0 to float precision), against GELU in double. The forward pass is
// deterministic at a given OpenBLAS thread count; across thread counts OpenBLAS 0.3.21
// itself rounds some sgemm differently (ulp-level; measured here and printed).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/audio.h"
#include "pipeline/hubert.h"
#include "pipeline/kernels.h"
#include "pipeline/ops.h"
#include "tests/testutil.h"

#define CHUNK 4096

static double gelu_ref(float x) { return 0.5 * (double)x * (1.0 + erf((double)x / sqrt(2.0))); }

static void test_gelu_error(void)
{
    static float x[CHUNK], y[CHUNK];
    double max_fast = 0.0, max_erff = 0.0, max_rel = 0.0;
    size_t n = 0, count = 0;
    // Positive floats up to 30, then the same magnitudes negative.
    for (int sign = 0; sign < 2; sign++)
        for (uint32_t u = 0; u <= 0x41f00000u; u += 7) { // 0x41f00000 = 30.0f
            uint32_t b = u | (sign ? 0x80000000u : 0u);
            memcpy(&x[n++], &b, sizeof(float));
            if (n < CHUNK && u + 7 <= 0x41f00000u)
                continue;
            kern_gelu(x, y, n);
            for (size_t i = 0; i < n; i++) {
                double r = gelu_ref(x[i]);
                double e = fabs((double)y[i] - r);
                float z = x[i] * 0.70710678118654752f;
                double ee = fabs((double)(0.5f * x[i] * (1.0f + erff(z))) - r);
                max_fast = e > max_fast ? e : max_fast;
                max_erff = ee > max_erff ? ee : max_erff;
                if (x[i] > 1e-3f) { // negative side: 1 + erf cancels, only abs error counts
                    double rel = e / fabs(r);
                    max_rel = rel > max_rel ? rel : max_rel;
                }
            }
            count += n;
            n = 0;
        }
    printf("\n  gelu over %zu floats in [-30, 30]: max abs error %.3g (erff-based %.3g), max rel "
           "error %.3g for x > 1e-3\n", count, max_fast, max_erff, max_rel);
    CU_ASSERT(count > 100000000u / 7u);
    CU_ASSERT(max_fast < 2e-6);  // measured 1.5e-6 (exhaustively, every float in [-30, 30])
    CU_ASSERT(max_erff < 1e-6);  // sanity of the reference
    CU_ASSERT(max_rel < 1e-6);   // a few ulp of the result where GELU does not cancel
}

static void test_gelu_special(void)
{
    float x[6] = {0.0f, -0.0f, 100.0f, -100.0f, NAN, 1e-30f}, y[6];
    kern_gelu(x, y, 6);
    CU_ASSERT(y[0] == 0.0f);
    CU_ASSERT(y[1] == 0.0f);
    CU_ASSERT(y[2] == 100.0f);
    CU_ASSERT(y[3] == 0.0f);
    CU_ASSERT(isnan(y[4]));
    CU_ASSERT(fabsf(y[5] - 0.5e-30f) <= 1e-36f);
    float z[6];
    memcpy(z, x, sizeof z);
    kern_gelu(z, z, 6); // in place gives the same bits
    CU_ASSERT(memcmp(z, y, 4 * sizeof(float)) == 0 && z[5] == y[5]);
}

// The two softmax exps of kernels.h: both accurate, their tails as documented, and
// different bits for ordinary inputs (why both are kept: one of them would change
// HuBERT features or s2t scores).
static void test_exp_variants(void)
{
    size_t n = 0, differ = 0;
    double max_c = 0.0, max_f = 0.0;
    for (uint32_t u = 0x80000000u; u <= 0xC1A00000u; u += 97) { // -0 .. -20
        float x;
        memcpy(&x, &u, sizeof x);
        float c = kern_exp_neg_clamp87(x), f = kern_exp_neg_flush87(x);
        double r = exp((double)x);
        max_c = fmax(max_c, fabs((double)c - r) / r);
        max_f = fmax(max_f, fabs((double)f - r) / r);
        differ += memcmp(&c, &f, sizeof c) != 0;
        n++;
    }
    printf("\n  exp over %zu floats in [-20, 0]: max rel error clamp87 %.3g, flush87 %.3g; "
           "%.2f %% differ\n", n, max_c, max_f, 100.0 * (double)differ / (double)n);
    CU_ASSERT(max_c < 1e-7);
    CU_ASSERT(max_f < 3e-7);
    CU_ASSERT(differ > n / 200); // measured 1.1 % (every float)
    CU_ASSERT(kern_exp_neg_clamp87(0.0f) == 1.0f && kern_exp_neg_flush87(0.0f) == 1.0f);
    CU_ASSERT(kern_exp_neg_clamp87(-200.0f) == kern_exp_neg_clamp87(-87.3f));
    CU_ASSERT(kern_exp_neg_clamp87(-200.0f) > 1e-38f);
    CU_ASSERT(kern_exp_neg_flush87(-87.01f) == 0.0f && kern_exp_neg_flush87(-86.99f) > 0.0f);
    CU_ASSERT(isnan(kern_exp_neg_clamp87(NAN)));
}

// Both tiny models, every layer: a rerun at the same thread count gives identical bytes;
// 1 vs 2 OpenBLAS threads differ only by sgemm rounding (OpenBLAS picks other kernels
// when threaded; our element-wise code runs on the calling thread either way).
static void test_threads_bit_identical(void)
{
    sl_err e;
    audio_reader *r;
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_result a;
    CU_ASSERT_FATAL(audio_read_file(r, sl_test_data("speech_16k.wav"), &a, &e) == SL_OK);
    const char *models[2] = {"hubert_tiny_post", "hubert_tiny_pre"};
    for (int mi = 0; mi < 2; mi++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s", sl_test_data(models[mi]));
        hubert_model *m;
        hubert_state *s;
        CU_ASSERT_FATAL(hubert_open(&m, dir, &e) == SL_OK);
        CU_ASSERT_FATAL(hubert_state_new(&s, m, &e) == SL_OK);
        int n_layers = hubert_get_config(m)->n_layers;
        for (int layer = 0; layer <= n_layers; layer++) {
            const float *x;
            size_t T, D;
            ops_set_threads(1);
            CU_ASSERT_FATAL(hubert_forward(s, a.pcm, a.n_samples, layer, 1, &x, &T, &D, &e) ==
                            SL_OK);
            float *one = malloc(T * D * sizeof(float));
            memcpy(one, x, T * D * sizeof(float));
            CU_ASSERT_FATAL(hubert_forward(s, a.pcm, a.n_samples, layer, 1, &x, &T, &D, &e) ==
                            SL_OK);
            CU_ASSERT(memcmp(one, x, T * D * sizeof(float)) == 0);
            ops_set_threads(2);
            for (int rep = 0; rep < 2; rep++) {
                CU_ASSERT_FATAL(hubert_forward(s, a.pcm, a.n_samples, layer, 1, &x, &T, &D,
                                               &e) == SL_OK);
                float d = sl_test_max_abs_diff(one, x, T * D);
                if (rep == 0)
                    printf("\n  %s layer %d: max |1 thread - 2 threads| = %.3g", models[mi],
                           layer, (double)d);
                CU_ASSERT(d <= 1e-5f); // well inside the golden tolerances (>= 2.9e-5)
            }
            float *two = malloc(T * D * sizeof(float));
            memcpy(two, x, T * D * sizeof(float));
            CU_ASSERT_FATAL(hubert_forward(s, a.pcm, a.n_samples, layer, 1, &x, &T, &D, &e) ==
                            SL_OK);
            CU_ASSERT(memcmp(two, x, T * D * sizeof(float)) == 0);
            free(two);
            ops_set_threads(1);
            free(one);
        }
        ops_set_threads(1);
        hubert_state_free(s);
        hubert_close(m);
    }
    audio_reader_free(r);
}

int main(void)
{
    static const sl_test_case cases[] = {{"gelu error bounds", test_gelu_error},
                                         {"gelu special values", test_gelu_special},
                                         {"softmax exps: clamp87 and flush87", test_exp_variants},
                                         {"forward: deterministic at 1 and at 2 threads",
                                          test_threads_bit_identical},
                                         {NULL, NULL}};
    return sl_test_main("hubert_kernels", cases);
}
