// tests/unit/test_kmfit.c — k-means training math in one process (kmf_comm_local),
// MFCC framing and token dedup. Cross-rank behaviour: tests/kmfit/test_kmfit.py.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/kmfit.h"
#include "pipeline/mfcc.h"
#include "pipeline/tokens.h"
#include "tests/testutil.h"

// 4 well-separated blobs in 3-D: k-means must find their centres.
static void test_blobs(void)
{
    enum { N = 4000, D = 3, K = 4 };
    static float x[N * D];
    static uint64_t id[N];
    const float centre[K][D] = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}};
    uint32_t s = 1;
    for (size_t i = 0; i < N; i++) {
        id[i] = i;
        for (size_t j = 0; j < D; j++) {
            s = s * 1664525u + 1013904223u;
            x[i * D + j] = centre[i % K][j] + ((float)(s >> 8) / 16777216.0f - 0.5f);
        }
    }
    kmf_comm comm = kmf_comm_local();
    kmf_data d = {x, id, N, D};
    kmf_params p = kmf_default_params();
    p.k = K;
    float c[K * D], c2[K * D];
    kmf_stats st;
    sl_err e;
    CU_ASSERT_FATAL(kmf_fit(&comm, &d, &p, c, &st, &e) == SL_OK);
    CU_ASSERT_EQUAL(st.n_total, N);
    for (size_t a = 0; a < K; a++) { // every true centre has a centroid within 0.05
        double best = 1e30;
        for (size_t b = 0; b < K; b++) {
            double dd = 0;
            for (size_t j = 0; j < D; j++)
                dd += pow((double)c[b * D + j] - (double)centre[a][j], 2);
            best = fmin(best, dd);
        }
        CU_ASSERT(best < 0.05 * 0.05);
    }
    // uniform noise of width 1: variance 1/12 per dimension
    CU_ASSERT(fabs(st.inertia / (N * D / 12.0) - 1.0) < 0.05);
    CU_ASSERT(fabs(kmf_inertia(x, N, D, c, K) - st.inertia) < 1e-3 * st.inertia);
    CU_ASSERT_FATAL(kmf_fit(&comm, &d, &p, c2, &st, &e) == SL_OK);
    CU_ASSERT(memcmp(c, c2, sizeof c) == 0); // deterministic
}

static void test_fewer_rows_than_k(void)
{
    float x[6] = {0, 1, 2, 3, 4, 5};
    uint64_t id[3] = {0, 1, 2};
    kmf_comm comm = kmf_comm_local();
    kmf_data d = {x, id, 3, 2};
    kmf_params p = kmf_default_params();
    p.k = 4;
    float c[8];
    kmf_stats st;
    sl_err e;
    CU_ASSERT_EQUAL(kmf_fit(&comm, &d, &p, c, &st, &e), SL_EINVAL);
    CU_ASSERT(strstr(e.msg, "fewer than k = 4") != NULL);
}

// Many duplicates, k above the number of distinct rows: no NaN, every centroid a row.
static void test_duplicates_no_nan(void)
{
    enum { N = 300, D = 2, K = 8 };
    float x[N * D];
    uint64_t id[N];
    for (size_t i = 0; i < N; i++) {
        id[i] = i;
        x[i * D] = (float)(i % 3);
        x[i * D + 1] = 0.0f;
    }
    kmf_comm comm = kmf_comm_local();
    kmf_data d = {x, id, N, D};
    kmf_params p = kmf_default_params();
    p.k = K;
    p.n_init = 2;
    float c[K * D];
    kmf_stats st;
    sl_err e;
    CU_ASSERT_FATAL(kmf_fit(&comm, &d, &p, c, &st, &e) == SL_OK);
    for (size_t i = 0; i < K * D; i++)
        CU_ASSERT(isfinite(c[i]));
    CU_ASSERT(st.inertia == 0.0);
}

// Two far groups and a k-means|| seeding forced onto one side by a tiny
// oversampling: Lloyd must still end with no empty cluster and no NaN.
static void test_reseed(void)
{
    enum { N = 1000, D = 1, K = 6 };
    float x[N];
    uint64_t id[N];
    for (size_t i = 0; i < N; i++) {
        id[i] = i;
        x[i] = i < 990 ? (float)(i % 10) * 0.001f : 1000.0f + (float)(i - 990);
    }
    kmf_comm comm = kmf_comm_local();
    kmf_data d = {x, id, N, D};
    kmf_params p = kmf_default_params();
    p.k = K;
    p.rounds = 1;
    p.oversample = 0.01;
    float c[K];
    kmf_stats st;
    sl_err e;
    CU_ASSERT_FATAL(kmf_fit(&comm, &d, &p, c, &st, &e) == SL_OK);
    for (size_t i = 0; i < K; i++)
        CU_ASSERT(isfinite(c[i]));
    int far = 0;
    for (size_t i = 0; i < K; i++)
        far += c[i] > 500.0f;
    CU_ASSERT(far >= 1);
}

static void test_mfcc_frames(void)
{
    CU_ASSERT_EQUAL(mfcc_n_frames(399), 0);
    CU_ASSERT_EQUAL(mfcc_n_frames(400), 1);
    CU_ASSERT_EQUAL(mfcc_n_frames(559), 1);
    CU_ASSERT_EQUAL(mfcc_n_frames(560), 2);
    CU_ASSERT_EQUAL(mfcc_n_frames(16000), 98);
    mfcc_state *s;
    sl_err e;
    CU_ASSERT_FATAL(mfcc_state_new(&s, &e) == SL_OK);
    float pcm[1000];
    for (size_t i = 0; i < 1000; i++)
        pcm[i] = 0.1f * sinf(0.05f * (float)i);
    const float *f;
    size_t T;
    CU_ASSERT_EQUAL(mfcc_compute(s, pcm, 399, &f, &T, &e), SL_EFORMAT);
    CU_ASSERT_FATAL(mfcc_compute(s, pcm, 1000, &f, &T, &e) == SL_OK);
    CU_ASSERT_EQUAL(T, 4);
    for (size_t i = 0; i < T * MFCC_DIM; i++)
        CU_ASSERT(isfinite(f[i]));
    // silence: every mel energy at the floor, log(FLT_EPSILON) in all 23 bins
    memset(pcm, 0, sizeof pcm);
    CU_ASSERT_FATAL(mfcc_compute(s, pcm, 1000, &f, &T, &e) == SL_OK);
    CU_ASSERT(fabsf(f[0] - sqrtf(23.0f) * logf(1.1920929e-07f)) < 1e-3f);
    CU_ASSERT(fabsf(f[13]) < 1e-5f); // float rounding of -2a - a + a + 2a
    mfcc_state_free(s);
}

static void test_dedup(void)
{
    int32_t a[] = {3, 3, 1, 1, 1, 2, 3, 3};
    CU_ASSERT_EQUAL(tok_dedup(a, 8), 4);
    CU_ASSERT(a[0] == 3 && a[1] == 1 && a[2] == 2 && a[3] == 3);
    CU_ASSERT_EQUAL(tok_dedup(a, 0), 0);
}

int main(void)
{
    static const sl_test_case cases[] = {{"blobs", test_blobs},
                                         {"fewer rows than k", test_fewer_rows_than_k},
                                         {"duplicates, no NaN", test_duplicates_no_nan},
                                         {"empty clusters re-seeded", test_reseed},
                                         {"mfcc frames", test_mfcc_frames},
                                         {"dedup", test_dedup},
                                         {NULL, NULL}};
    return sl_test_main("kmfit", cases);
}
