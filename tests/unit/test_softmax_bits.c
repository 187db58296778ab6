// tests/unit/test_softmax_bits.c — the s2t softmax, rewritten for speed, keeps its bits.
//
// kern_exp_neg_flush87 lost its early return, floorf and float-to-int conversion (so
// GCC vectorises the loops that call it), and kern_softmax_rows_masked takes the max
// in lanes and runs eight rows' sums side by side. Rows decoded before must decode the
// same, so both are compared here, bit for bit, with the plain forms they replaced
// (written out below as they were): the exp over every 31st float in [-100, 88], the
// softmax over random scores in every shape the decoder uses (causal or not, rows 1..19,
// lengths across the vector widths, rows of different valid lengths).
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/kernels.h"
#include "tests/testutil.h"

// The exp as it was (ISO C: no FMA contraction, as in kernels.c).
static float old_exp(float x)
{
    if (x < -87.0f)
        return 0.0f;
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
                                                  r * (0.008333334f + r * 0.0013888889f)))));
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

// The softmax as it was: one row at a time, max, exps, sum and scaling in key order.
static void old_softmax(float *s, size_t rows, size_t ld, size_t nvb, int causal, size_t n)
{
    for (size_t r = 0; r < rows; r++) {
        float *x = s + r * ld;
        size_t nv = causal ? nvb + r : nvb;
        if (nv > n)
            nv = n;
        float mx = -FLT_MAX;
        for (size_t j = 0; j < nv; j++)
            mx = x[j] > mx ? x[j] : mx;
        float sum = 0.0f;
        for (size_t j = 0; j < nv; j++)
            x[j] = old_exp(x[j] - mx);
        for (size_t j = 0; j < nv; j++)
            sum += x[j];
        float inv = 1.0f / sum;
        for (size_t j = 0; j < nv; j++)
            x[j] *= inv;
        for (size_t j = nv; j < n; j++)
            x[j] = 0.0f;
    }
}

static void test_exp_bits(void)
{
    size_t n = 0, differ = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 31) {
        uint32_t b = (uint32_t)u;
        float x;
        memcpy(&x, &b, sizeof x);
        if (!(x >= -100.0f && x <= 88.0f))
            continue;
        float a = old_exp(x), c = kern_exp_neg_flush87(x);
        differ += memcmp(&a, &c, sizeof a) != 0;
        n++;
    }
    printf("\n  flush87 over %zu floats in [-100, 88]: %zu differ from the plain form", n, differ);
    CU_ASSERT(n > 70000000u);
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT(isnan(kern_exp_neg_flush87(NAN)));
    CU_ASSERT(kern_exp_neg_flush87(-1e30f) == 0.0f && kern_exp_neg_flush87(-INFINITY) == 0.0f);
}

static unsigned lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void test_softmax_bits(void)
{
    static const size_t lens[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 128, 500, 501};
    unsigned seed = 42;
    size_t cases = 0, differ = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t rows = 1; rows < 20; rows += 3)
            for (int causal = 0; causal <= 1; causal++) {
                size_t n = lens[li], ld = n + (lcg(&seed) % 9);
                size_t nvb = causal ? 1 + lcg(&seed) % n : n - lcg(&seed) % (n < 4 ? 1 : n / 4);
                float *a = malloc(rows * ld * sizeof(float)), *b = malloc(rows * ld * sizeof(float));
                for (size_t i = 0; i < rows * ld; i++) // scores as the decoder sees them,
                    a[i] = ((float)(lcg(&seed) % 200001) - 100000.0f) * 3e-4f; // some far below
                if (n > 3)
                    a[ld + 2 < rows * ld ? ld + 2 : 0] = -FLT_MAX; // a masked entry
                memcpy(b, a, rows * ld * sizeof(float));
                old_softmax(a, rows, ld, nvb, causal, n);
                kern_softmax_rows_masked(b, rows, ld, nvb, causal, n);
                for (size_t r = 0; r < rows; r++) // entries past n are not the kernel's
                    differ += memcmp(a + r * ld, b + r * ld, n * sizeof(float)) != 0;
                cases++;
                free(a);
                free(b);
            }
    printf("\n  masked softmax: %zu shapes, %zu rows differ from the plain form", cases, differ);
    CU_ASSERT_EQUAL(differ, 0);
}

int main(void)
{
    static const sl_test_case cases[] = {{"flush87 exp == its plain form", test_exp_bits},
                                         {"masked softmax == its plain form", test_softmax_bits},
                                         {NULL, NULL}};
    return sl_test_main("softmax_bits", cases);
}
