// pipeline/ops.c — see ops.h.
#include "pipeline/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Row counts up to which ops_matmul runs one sgemv per row (see below).
#ifndef OPS_GEMV_MAX_ROWS
#define OPS_GEMV_MAX_ROWS 4
#endif
// Products of at most this many multiply-adds (attention over a KV cache in a
// decoder step: a few query rows x a few hundred keys x one head) run in the
// loops below, single-threaded: a BLAS call (and, with threads, waking them)
// costs more than such a product, and a decoder step makes thousands.
// Up to this many rows times a large transposed matrix may also run in the loops
// below (off by default; decoders call ops_matmul_rows, which always does).
#ifndef OPS_ONEPASS_MAX_ROWS
#define OPS_ONEPASS_MAX_ROWS 0
#endif
#ifndef OPS_SMALL_MACS
#define OPS_SMALL_MACS (1u << 18)
#endif

// Built for AVX2+FMA and for baseline x86-64, picked at load time (ifunc),
// and vectorised at O3: these loops carry the decoder's attention.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPS_SMALL_KERNEL \
    __attribute__((optimize("O3", "fp-contract=fast"), target_clones("arch=x86-64-v3", "default")))
#else
#define OPS_SMALL_KERNEL
#endif

static inline float hsum16(const float *v)
{
    float s = 0.0f;
    for (int l = 0; l < 8; l++) // pairwise halves: a fixed order, vectorisable
        s += v[l] + v[l + 8];
    return s;
}

// a . b over n with 16 partial sums (two vector accumulators: independent chains).
static inline float dot(const float *a, const float *b, size_t n)
{
    float acc[16] = {0};
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += a[k + l] * b[k + l];
    float s = hsum16(acc);
    for (; k < n; k++)
        s += a[k] * b[k];
    return s;
}

// Four rows against one b: b is loaded once per chunk, 8 independent chains.
static inline void dot4(const float *a0, const float *a1, const float *a2, const float *a3,
                        const float *b, size_t n, float *out)
{
    float s0[16] = {0}, s1[16] = {0}, s2[16] = {0}, s3[16] = {0};
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++) {
            float x = b[k + l];
            s0[l] += a0[k + l] * x;
            s1[l] += a1[k + l] * x;
            s2[l] += a2[k + l] * x;
            s3[l] += a3[k + l] * x;
        }
    out[0] = hsum16(s0);
    out[1] = hsum16(s1);
    out[2] = hsum16(s2);
    out[3] = hsum16(s3);
    for (; k < n; k++) {
        out[0] += a0[k] * b[k];
        out[1] += a1[k] * b[k];
        out[2] += a2[k] * b[k];
        out[3] += a3[k] * b[k];
    }
}

// C *= beta, row by row (M x N, leading dimension ldc); beta = 0 must not read C
// (it may hold NaN), beta = 1 leaves it alone.
static void scale_rows(size_t M, size_t N, float beta, float *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f)
            memset(c, 0, N * sizeof(float));
        else if (beta != 1.0f)
            for (size_t j = 0; j < N; j++)
                c[j] *= beta;
    }
}

// C = alpha * A . op(B) + beta * C for small products (A not transposed).
OPS_SMALL_KERNEL static void small_matmul(ops_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                         size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    scale_rows(M, N, beta, C, ldc);
    if (tb == OPS_T) { // C[i, j] += alpha * A[i, :] . B[j, :]; each B row read once
        for (size_t j = 0; j < N; j++) {
            const float *b = B + j * ldb;
            size_t i = 0;
            for (; i + 4 <= M; i += 4) {
                float d[4];
                dot4(A + i * lda, A + (i + 1) * lda, A + (i + 2) * lda, A + (i + 3) * lda, b, K,
                     d);
                for (int r = 0; r < 4; r++)
                    C[(i + (size_t)r) * ldc + j] += alpha * d[r];
            }
            for (; i < M; i++)
                C[i * ldc + j] += alpha * dot(A + i * lda, b, K);
        }
    } else { // C[i, :] += alpha * sum_k A[i, k] B[k, :], in 4 x 16 register blocks
        size_t i = 0;
        for (; i + 4 <= M; i += 4) {
            const float *a0 = A + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            size_t j = 0;
            for (; j + 16 <= N; j += 16) {
                float c0[16] = {0}, c1[16] = {0}, c2[16] = {0}, c3[16] = {0};
                for (size_t k = 0; k < K; k++) {
                    const float *b = B + k * ldb + j;
                    float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
                    for (int l = 0; l < 16; l++) {
                        c0[l] += x0 * b[l];
                        c1[l] += x1 * b[l];
                        c2[l] += x2 * b[l];
                        c3[l] += x3 * b[l];
                    }
                }
                for (int l = 0; l < 16; l++) {
                    C[i * ldc + j + (size_t)l] += alpha * c0[l];
                    C[(i + 1) * ldc + j + (size_t)l] += alpha * c1[l];
                    C[(i + 2) * ldc + j + (size_t)l] += alpha * c2[l];
                    C[(i + 3) * ldc + j + (size_t)l] += alpha * c3[l];
                }
            }
            for (size_t r = i; r < i + 4; r++)
                for (size_t k = 0; k < K; k++) {
                    float a = alpha * A[r * lda + k];
                    for (size_t jj = j; jj < N; jj++)
                        C[r * ldc + jj] += a * B[k * ldb + jj];
                }
        }
        for (; i < M; i++) {
            float *c = C + i * ldc;
            size_t j = 0;
            for (; j + 16 <= N; j += 16) {
                float c0[16] = {0};
                for (size_t k = 0; k < K; k++) {
                    const float *b = B + k * ldb + j;
                    float x0 = A[i * lda + k];
                    for (int l = 0; l < 16; l++)
                        c0[l] += x0 * b[l];
                }
                for (int l = 0; l < 16; l++)
                    c[j + (size_t)l] += alpha * c0[l];
            }
            for (size_t k = 0; k < K; k++) {
                float a = alpha * A[i * lda + k];
                for (size_t jj = j; jj < N; jj++)
                    c[jj] += a * B[k * ldb + jj];
            }
        }
    }
}

void ops_matmul(ops_trans ta, ops_trans tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    if (ta == OPS_N && ((double)M * (double)N * (double)K <= (double)OPS_SMALL_MACS ||
                        (tb == OPS_T && M <= OPS_ONEPASS_MAX_ROWS))) {
        small_matmul(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // A few rows times a large matrix (decoder steps): OpenBLAS sgemm packs the
    // whole B panel for every call, which costs several times the product
    // itself; one sgemv per row streams B once per row and is 2-6x faster.
    if (M <= OPS_GEMV_MAX_ROWS && ta == OPS_N && K > 0) {
        for (size_t i = 0; i < M; i++) {
            if (tb == OPS_T) // C[i, :] = alpha * B[N, K] . A[i, :] + beta * C[i, :]
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)N, (blasint)K, alpha, B,
                            (blasint)ldb, A + i * lda, 1, beta, C + i * ldc, 1);
            else // C[i, :] = alpha * B[K, N]^T . A[i, :] + beta * C[i, :]
                cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)K, (blasint)N, alpha, B,
                            (blasint)ldb, A + i * lda, 1, beta, C + i * ldc, 1);
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, ta == OPS_T ? CblasTrans : CblasNoTrans,
                tb == OPS_T ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha,
                A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

// ops_matmul_rows: every output element C[i, j] is the same sequence of
// operations whatever M, i and the block it falls in:
//   acc[l] = fma(A[i, 8c + l], B[j, 8c + l], acc[l])  for c = 0 .. K/8 - 1, l = 0..7
//   s = ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7))
//   s = fma(A[i, k], B[j, k], s)                        for the K % 8 tail, in order
//   C[i, j] = C[i, j] + alpha * s                       (after C *= beta)
// Fused multiply-adds are exact-then-rounded, so the AVX2 kernel (intrinsics,
// register blocks of 4 rows x 3 weight rows) and the portable one (fmaf, same
// lanes, same tree) give the same bits, on any x86-64 (AVX-512 machines run the
// AVX2 kernel: 8 lanes everywhere). No compiler contraction: ISO C mode and
// explicit intrinsics only.
#define ROWS_MR 4 // rows of A per register block
#define ROWS_NR 3 // rows of B (output columns) per register block

static inline float rows_tree8(const float *a)
{
    float s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
    return (s0 + s2) + (s1 + s3);
}

static void rows_portable(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                          const float *B, size_t ldb, float *C, size_t ldc)
{
    size_t K8 = K & ~(size_t)7;
    for (size_t j = 0; j < N; j++) {
        const float *b = B + j * ldb;
        for (size_t i = 0; i < M; i++) {
            const float *a = A + i * lda;
            float acc[8] = {0};
            for (size_t k = 0; k < K8; k += 8)
                for (int l = 0; l < 8; l++)
                    acc[l] = fmaf(a[k + (size_t)l], b[k + (size_t)l], acc[l]);
            float s = rows_tree8(acc);
            for (size_t k = K8; k < K; k++)
                s = fmaf(a[k], b[k], s);
            C[i * ldc + j] = C[i * ldc + j] + alpha * s;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OPS_HAVE_AVX2_ROWS 1

__attribute__((target("avx2,fma"))) static inline float rows_hsum(__m256 v)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    return rows_tree8(t);
}

// C[i0 .. i0+mr, j0 .. j0+nr) += alpha * A . B^T for mr <= 4, nr <= 3 (constants
// after inlining, so the accumulators stay in registers).
__attribute__((target("avx2,fma"), always_inline)) static inline void
rows_block(int mr, int nr, size_t K, float alpha, const float *A, size_t lda, const float *B,
           size_t ldb, float *C, size_t ldc)
{
    __m256 acc[ROWS_MR][ROWS_NR];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++)
            acc[r][c] = _mm256_setzero_ps();
    size_t K8 = K & ~(size_t)7;
    for (size_t k = 0; k < K8; k += 8) {
        __m256 b[ROWS_NR];
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++)
            b[c] = _mm256_loadu_ps(B + (size_t)c * ldb + k);
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_loadu_ps(A + (size_t)r * lda + k);
#pragma GCC unroll 4
            for (int c = 0; c < nr; c++)
                acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++) {
            const float *a = A + (size_t)r * lda, *b = B + (size_t)c * ldb;
            float s = rows_hsum(acc[r][c]);
            for (size_t k = K8; k < K; k++)
                s = fmaf(a[k], b[k], s);
            float *y = C + (size_t)r * ldc + c;
            *y = *y + alpha * s;
        }
}

#define ROWS_CASE(mr, nr)                                                                         \
    case (mr) * 4 + (nr):                                                                         \
        rows_block(mr, nr, K, alpha, a, lda, b, ldb, c, ldc);                                     \
        break;

__attribute__((target("avx2,fma"))) static void
rows_avx2(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda, const float *B,
          size_t ldb, float *C, size_t ldc)
{
    // Weight rows outer (each block of ROWS_NR read from memory once, then from
    // L1 for every row group), rows of A inner.
    for (size_t j = 0; j < N; j += ROWS_NR) {
        int nr = N - j < ROWS_NR ? (int)(N - j) : ROWS_NR;
        const float *b = B + j * ldb;
        for (size_t i = 0; i < M; i += ROWS_MR) {
            int mr = M - i < ROWS_MR ? (int)(M - i) : ROWS_MR;
            const float *a = A + i * lda;
            float *c = C + i * ldc + j;
            switch (mr * 4 + nr) {
                ROWS_CASE(1, 1) ROWS_CASE(1, 2) ROWS_CASE(1, 3)
                ROWS_CASE(2, 1) ROWS_CASE(2, 2) ROWS_CASE(2, 3)
                ROWS_CASE(3, 1) ROWS_CASE(3, 2) ROWS_CASE(3, 3)
                ROWS_CASE(4, 1) ROWS_CASE(4, 2) ROWS_CASE(4, 3)
            default:
                break;
            }
        }
    }
}
#endif

// Set once (first call; benign race: every thread computes the same value).
static int rows_use_avx2 = -1;

int ops_rows_kernel_avx2(void)
{
#ifdef OPS_HAVE_AVX2_ROWS
    if (rows_use_avx2 < 0) {
        __builtin_cpu_init();
        rows_use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return rows_use_avx2;
#else
    return 0;
#endif
}

void ops_rows_set_portable(int on)
{
    rows_use_avx2 = -1;
    if (on)
        rows_use_avx2 = 0;
    else
        (void)ops_rows_kernel_avx2();
}

void ops_matmul_rows(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    scale_rows(M, N, beta, C, ldc);
#ifdef OPS_HAVE_AVX2_ROWS
    if (ops_rows_kernel_avx2()) {
        rows_avx2(M, N, K, alpha, A, lda, B, ldb, C, ldc);
        return;
    }
#endif
    rows_portable(M, N, K, alpha, A, lda, B, ldb, C, ldc);
}

void ops_linear(const float *x, size_t M, size_t K, const float *W, const float *b, size_t N,
                float *y)
{
    if (b) {
        for (size_t i = 0; i < M; i++)
            memcpy(y + i * N, b, N * sizeof(float));
    }
    ops_matmul(OPS_N, OPS_T, M, N, K, 1.0f, x, K, W, K, b ? 1.0f : 0.0f, y, N);
}

void ops_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }
int ops_get_threads(void) { return openblas_get_num_threads(); }

int ops_threads_default(int flag_value)
{
    if (flag_value > 0)
        return flag_value;
    const char *s = getenv("SLURM_CPUS_PER_TASK");
    if (s && *s) {
        int v = atoi(s);
        if (v > 0)
            return v;
    }
    return 1;
}

const char *ops_blas_config(void) { return openblas_get_config(); }
const char *ops_blas_corename(void) { return openblas_get_corename(); }
