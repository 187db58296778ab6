// tests/unit/test_ops.c — pipeline/ops.h: every ops_matmul_rows kernel this CPU can
// run gives the portable kernel's bits over many shapes (M 1..70, N around the
// register blocks, every K % 8, alpha / beta cases, leading dimensions wider than the
// rows), the results are right (double reference), and the kernel selection API.
// A kernel the CPU lacks is reported as skipped, never passed silently. Also
// ops_matmul's own small-product loops: the same bits in both builds.
#define _POSIX_C_SOURCE 200809L // setenv
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ops.h"
#include "tests/testutil.h"

enum { MMAX = 70, NMAX = 13, KMAX = 47, PAD = 3 };

static unsigned g_x = 12345u;
static float rnd(void)
{
    g_x = g_x * 1103515245u + 12345u;
    return (float)((int)(g_x >> 8) % 2001 - 1000) / 313.0f;
}

// n floats from rnd(), malloc'd.
static float *rnd_alloc(size_t n)
{
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = rnd();
    return x;
}

// Runs kernel k on C (pre-filled from C0) and returns 0, or -1 when k is not available.
static int run_kernel(ops_rows_kernel k, size_t M, size_t N, size_t K, float alpha,
                      const float *A, size_t lda, const float *B, size_t ldb, float beta,
                      const float *C0, float *C, size_t ldc)
{
    if (ops_rows_set_kernel(k) != 0)
        return -1;
    CU_ASSERT_EQUAL(ops_rows_kernel_current(), k);
    memcpy(C, C0, sizeof(float) * MMAX * (NMAX + PAD));
    ops_matmul_rows(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
}

static void test_kernels_same_bits(void)
{
    static const ops_rows_kernel fast[] = {OPS_ROWS_AVX2, OPS_ROWS_AVX512};
    static const struct { float alpha, beta; int nan_c; } ab[] = {
        {1.0f, 0.0f, 1}, {0.5f, 1.0f, 0}, {-2.0f, 0.75f, 0}};
    static const size_t Ns[] = {1, 2, 3, 5, 6, 7, 12, 13};
    size_t lda = KMAX + PAD, ldb = KMAX + 5, ldc = NMAX + PAD;
    float *A = malloc(sizeof(float) * MMAX * lda), *B = malloc(sizeof(float) * NMAX * ldb);
    float *C0 = malloc(sizeof(float) * MMAX * ldc), *P = malloc(sizeof(float) * MMAX * ldc);
    float *C = malloc(sizeof(float) * MMAX * ldc);
    for (size_t i = 0; i < (size_t)MMAX * lda; i++)
        A[i] = rnd();
    for (size_t i = 0; i < (size_t)NMAX * ldb; i++)
        B[i] = rnd();
    int ran[2] = {0, 0}, bad_bits = 0, bad_value = 0, bad_pad = 0;
    for (size_t ai = 0; ai < sizeof ab / sizeof *ab; ai++)
        for (size_t K = 0; K <= KMAX; K += (K < 17 ? 1 : 5)) // 0..17, then 22 .. 47: every K % 8
            for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
                for (size_t M = 1; M <= MMAX; M++) {
                    size_t N = Ns[ni];
                    for (size_t i = 0; i < (size_t)MMAX * ldc; i++) // NaN: beta = 0 must not read C
                        C0[i] = ab[ai].nan_c && i % ldc < N ? NAN : 0.125f * (float)(i % 29);
                    run_kernel(OPS_ROWS_PORTABLE, M, N, K, ab[ai].alpha, A, lda, B, ldb,
                               ab[ai].beta, C0, P, ldc);
                    for (size_t i = 0; i < M; i++) // the values are right, not only alike
                        for (size_t j = 0; j < ldc; j++) {
                            if (j >= N) {
                                bad_pad += memcmp(&P[i * ldc + j], &C0[i * ldc + j], 4) != 0;
                                continue;
                            }
                            double s = 0.0, m = 0.0;
                            for (size_t k = 0; k < K; k++) {
                                s += (double)A[i * lda + k] * (double)B[j * ldb + k];
                                m += fabs((double)A[i * lda + k] * (double)B[j * ldb + k]);
                            }
                            double c = ab[ai].nan_c ? 0.0 : (double)ab[ai].beta * (double)C0[i * ldc + j];
                            double want = c + (double)ab[ai].alpha * s;
                            double tol = 1e-6 * (fabs((double)ab[ai].alpha) * m + fabs(c)) + 1e-30;
                            bad_value += !(fabs((double)P[i * ldc + j] - want) <= tol);
                        }
                    for (int f = 0; f < 2; f++) {
                        if (run_kernel(fast[f], M, N, K, ab[ai].alpha, A, lda, B, ldb, ab[ai].beta,
                                       C0, C, ldc))
                            continue;
                        ran[f]++;
                        bad_bits += memcmp(C, P, sizeof(float) * MMAX * ldc) != 0;
                    }
                }
    CU_ASSERT_EQUAL(bad_value, 0);
    CU_ASSERT_EQUAL(bad_pad, 0);
    CU_ASSERT_EQUAL(bad_bits, 0);
    for (int f = 0; f < 2; f++) {
        if (ran[f])
            printf("\n  %s == portable: %d products compared", ops_rows_kernel_name(fast[f]), ran[f]);
        else
            printf("\n  SKIPPED %s: this CPU (or build) cannot run it", ops_rows_kernel_name(fast[f]));
        CU_ASSERT_EQUAL(ran[f] > 0, ops_rows_kernel_available(fast[f]));
    }
    ops_rows_set_kernel(OPS_ROWS_AUTO);
    free(A), free(B), free(C0), free(P), free(C);
}

// A row's bits do not depend on M or its place in a block: decoder rows of realistic
// width (K = 512, 1365) alone and in a batch, each kernel.
static void test_rows_alone_in_batch(void)
{
    enum { M = 37, N = 14, K = 1365 };
    float *A = rnd_alloc((size_t)M * K), *B = rnd_alloc((size_t)N * K);
    float *C = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * N);
    for (int k = OPS_ROWS_PORTABLE; k <= OPS_ROWS_AVX512; k++) {
        if (ops_rows_set_kernel((ops_rows_kernel)k))
            continue;
        for (size_t Kc = 512; Kc <= K; Kc += K - 512) {
            ops_matmul_rows(M, N, Kc, 1.0f, A, K, B, K, 0.0f, C, N);
            for (size_t i = 0; i < M; i++) {
                ops_matmul_rows(1, N, Kc, 1.0f, A + i * K, K, B, K, 0.0f, C1, N);
                CU_ASSERT(memcmp(C1, C + i * N, sizeof(float) * N) == 0);
            }
        }
    }
    ops_rows_set_kernel(OPS_ROWS_AUTO);
    free(A), free(B), free(C), free(C1);
}

// Many rows (an encoder's source) are taken in panels that stay in L2 (ops.c's
// rows_one: 512, 64 and 24 rows at these K): a row's bits are those it has alone, for
// each kernel, with 1 and 2 threads, and the values are right.
static void test_rows_panels(void)
{
    enum { M = 600, N = 19, K = 1365 };
    float *A = rnd_alloc((size_t)M * K), *B = rnd_alloc((size_t)N * K);
    float *C = malloc(sizeof(float) * M * N), *C1 = malloc(sizeof(float) * N);
    static const size_t Ks[] = {64, 512, 1365};
    for (int k = OPS_ROWS_PORTABLE; k <= OPS_ROWS_AVX512; k++) {
        if (ops_rows_set_kernel((ops_rows_kernel)k))
            continue;
        for (int threads = 1; threads <= 2; threads++) {
            ops_set_threads(threads);
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                size_t Kc = Ks[ki];
                ops_matmul_rows(M, N, Kc, 1.0f, A, K, B, K, 0.0f, C, N);
                ops_set_threads(1);
                int same = 1;
                double worst = 0.0;
                for (size_t i = 0; i < M; i++) {
                    ops_matmul_rows(1, N, Kc, 1.0f, A + i * K, K, B, K, 0.0f, C1, N);
                    same &= memcmp(C1, C + i * N, sizeof(float) * N) == 0;
                    for (size_t j = 0; j < N; j += 7) {
                        double want = 0.0, mag = 0.0; // relative to sum |a b|
                        for (size_t t = 0; t < Kc; t++) {
                            double ab = (double)A[i * K + t] * (double)B[j * K + t];
                            want += ab;
                            mag += fabs(ab);
                        }
                        double err = fabs(want - (double)C[i * N + j]) / mag;
                        worst = err > worst ? err : worst;
                    }
                }
                ops_set_threads(threads);
                CU_ASSERT(same);
                CU_ASSERT(worst < 1e-6); // float32 sums of <= 1365 terms: 4e-8 seen
                if (threads == 2 && ki == 2)
                    printf("\n    %s: K %zu, largest error %.2g of sum |a b|",
                           ops_rows_kernel_name((ops_rows_kernel)k), Kc, worst);
            }
        }
    }
    ops_set_threads(1);
    ops_rows_set_kernel(OPS_ROWS_AUTO);
    free(A), free(B), free(C), free(C1);
}

static void test_kernel_selection(void)
{
    sl_err e;
    ops_rows_kernel k = OPS_ROWS_AUTO;
    CU_ASSERT_EQUAL(ops_rows_kernel_parse("portable", &k, &e), SL_OK);
    CU_ASSERT_EQUAL(k, OPS_ROWS_PORTABLE);
    CU_ASSERT_EQUAL(ops_rows_kernel_parse("avx3", &k, &e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "avx3"));
    CU_ASSERT_STRING_EQUAL(ops_rows_kernel_name(OPS_ROWS_AVX512), "avx512");
    CU_ASSERT_EQUAL(ops_rows_set_kernel(OPS_ROWS_AUTO), SL_OK);
    CU_ASSERT_NOT_EQUAL(ops_rows_kernel_current(), OPS_ROWS_AUTO);
    CU_ASSERT(ops_rows_kernel_available(ops_rows_kernel_current()));
    // AUTO never picks a slower-than-AVX2 kernel where AVX2 runs.
    if (ops_rows_kernel_available(OPS_ROWS_AVX2))
        CU_ASSERT_NOT_EQUAL(ops_rows_kernel_current(), OPS_ROWS_PORTABLE);
    for (int i = OPS_ROWS_AVX2; i <= OPS_ROWS_AVX512; i++)
        if (!ops_rows_kernel_available((ops_rows_kernel)i)) {
            ops_rows_kernel before = ops_rows_kernel_current();
            CU_ASSERT_EQUAL(ops_rows_set_kernel((ops_rows_kernel)i), SL_EINVAL);
            CU_ASSERT_EQUAL(ops_rows_kernel_current(), before);
            CU_ASSERT_EQUAL(ops_rows_kernel_parse(ops_rows_kernel_name((ops_rows_kernel)i), &k, &e),
                            SL_EINVAL);
        }
    // SL_ROWS_KERNEL
    setenv("SL_ROWS_KERNEL", "portable", 1);
    CU_ASSERT_EQUAL(ops_rows_kernel_from_env(&e), SL_OK);
    CU_ASSERT_EQUAL(ops_rows_kernel_current(), OPS_ROWS_PORTABLE);
    setenv("SL_ROWS_KERNEL", "fastest", 1);
    CU_ASSERT_EQUAL(ops_rows_kernel_from_env(&e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "SL_ROWS_KERNEL"));
    CU_ASSERT_EQUAL(ops_rows_kernel_current(), OPS_ROWS_PORTABLE); // unchanged
    unsetenv("SL_ROWS_KERNEL");
    CU_ASSERT_EQUAL(ops_rows_kernel_from_env(&e), SL_OK);
    CU_ASSERT_NOT_EQUAL(ops_rows_kernel_current(), OPS_ROWS_AUTO);
}

// FNV-1a of the bits of C[0..M, 0..N) of ops_matmul's small products (<= 2^18 MACs,
// its own loops) over shapes with every K % 16 tail, both op(B).
static uint64_t small_products_hash(void)
{
    enum { MM = 40, KB = 72, LD = 72 }; // B: up to K = 71 rows (op(B) = B) or 40 (B^T)
    static float A[MM * LD], B[KB * LD], C[MM * LD];
    unsigned x = 4242u;
    for (size_t i = 0; i < (MM + KB) * LD; i++) {
        x = x * 1103515245u + 12345u;
        float v = (float)((int)(x >> 8) % 2001 - 1000) / 313.0f;
        if (i < MM * LD)
            A[i] = v;
        else
            B[i - MM * LD] = v;
    }
    uint64_t h = 1469598103934665603ull;
    static const size_t Ms[] = {1, 3, 4, 5, 9, 40}, Ns[] = {1, 7, 16, 17, 40},
                        Ks[] = {1, 3, 7, 8, 12, 15, 16, 23, 31, 39, 64, 71};
    for (int tb = 0; tb < 2; tb++)
        for (size_t mi = 0; mi < 6; mi++)
            for (size_t ni = 0; ni < 5; ni++)
                for (size_t ki = 0; ki < 12; ki++) {
                    size_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                    for (size_t i = 0; i < MM * LD; i++)
                        C[i] = (float)(i % 7) * 0.3f;
                    ops_matmul(OPS_N, tb ? OPS_T : OPS_N, M, N, K, -0.5f, A, LD, B, LD, 0.5f, C, LD);
                    for (size_t i = 0; i < M; i++)
                        for (size_t j = 0; j < N; j++) {
                            uint32_t u;
                            memcpy(&u, &C[i * LD + j], 4);
                            for (int b = 0; b < 4; b++) {
                                h ^= (u >> (8 * b)) & 0xffu;
                                h *= 1099511628211ull;
                            }
                        }
                }
    return h;
}

// ops_matmul's small-product loops: the baseline x86-64 build gives the AVX2+FMA
// build's bits, and both give the bits the AVX2 build gave before the multiply-adds
// were spelt out (the pinned hash: GCC 12 with fp-contract=fast, which fused all but
// the chunks of 8 and 4 of a dot product's tail). Encoder attention over short
// sources, small k-means codebooks and tiny models go through these loops.
static void test_small_products_bits(void)
{
    const uint64_t pinned = 0x7533c93fe37f61e9ull;
    ops_small_force_baseline(1);
    uint64_t base = small_products_hash();
    ops_small_force_baseline(0);
    uint64_t cpu = small_products_hash();
    CU_ASSERT_EQUAL(base, pinned);
    CU_ASSERT_EQUAL(cpu, pinned);
    if (!ops_rows_kernel_available(OPS_ROWS_AVX2))
        printf("\n  SKIPPED the AVX2+FMA build: this CPU lacks it (baseline checked)");
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"ops_matmul_rows: every kernel == portable, bit for bit, and right", test_kernels_same_bits},
        {"ops_matmul_rows: a row alone == in a batch, each kernel", test_rows_alone_in_batch},
        {"ops_matmul_rows: 600 rows in panels == each row alone, each kernel, 1-2 threads",
         test_rows_panels},
        {"rows kernel selection and SL_ROWS_KERNEL", test_kernel_selection},
        {"small products: baseline build == AVX2 build == the pinned bits", test_small_products_bits},
        {NULL, NULL},
    };
    return sl_test_main("ops", cases);
}
