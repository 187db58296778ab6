// pipeline/ops.c — see ops.h.
#include "pipeline/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "pipeline/par.h"

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
// Whether AUTO picks the AVX-512 rows kernel on a CPU that has it (else AVX2).
#ifndef OPS_ROWS_AVX512_DEFAULT
#define OPS_ROWS_AVX512_DEFAULT 1
#endif
#ifndef OPS_SMALL_MACS
#define OPS_SMALL_MACS (1u << 18)
#endif

// The small-product loops below are built twice, for x86-64-v3 (AVX2+FMA) and for
// baseline x86-64, vectorised at O3, and picked at run time (small_matmul). Every
// multiply-add is an explicit fmaf and nothing else is contracted (ISO C mode), so
// both builds give the same bits: those the v3 build gave when it was built with
// fp-contract=fast (GCC fused exactly these multiply-adds; the baseline build could
// not, and rounded differently). On a CPU without FMA fmaf is libm's (slow, exact).
// They carry encoder attention over short sources (n^2 dh <= OPS_SMALL_MACS: up to 64
// positions at dh = 64), k-means distances to small codebooks and tiny models.
#if defined(__GNUC__) && !defined(__clang__) // clang has no optimize pragma (fuzz builds)
#pragma GCC push_options
#pragma GCC optimize("O3")
#endif

static inline float hsum16(const float *v)
{
    float s = 0.0f;
    for (int l = 0; l < 8; l++) // pairwise halves: a fixed order, vectorisable
        s += v[l] + v[l + 8];
    return s;
}

// s + a[k0 .. n) . b[k0 .. n) in order, the n - k0 < 16 elements past the 16-lane
// loops, exactly as GCC 12 built this tail in the v3 code with fp-contract=fast: it
// vectorised the in-order sum, so products of whole chunks of 8, then of 4, were
// rounded before their add, and only the last 0..3 were fused. Spelt out, so every
// build (and compiler) gives those bits.
static inline float tail_dot(float s, const float *a, const float *b, size_t k, size_t n)
{
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) {
            float p = a[k + (size_t)l] * b[k + (size_t)l];
            s = s + p;
        }
    if (k + 4 <= n) {
        for (int l = 0; l < 4; l++) {
            float p = a[k + (size_t)l] * b[k + (size_t)l];
            s = s + p;
        }
        k += 4;
    }
    for (; k < n; k++)
        s = fmaf(a[k], b[k], s);
    return s;
}

// a . b over n with 16 partial sums (two vector accumulators: independent chains).
static inline float dot(const float *a, const float *b, size_t n)
{
    float acc[16] = {0};
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int l = 0; l < 16; l++)
            acc[l] = fmaf(a[k + l], b[k + l], acc[l]);
    return tail_dot(hsum16(acc), a, b, k, n);
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
            s0[l] = fmaf(a0[k + l], x, s0[l]);
            s1[l] = fmaf(a1[k + l], x, s1[l]);
            s2[l] = fmaf(a2[k + l], x, s2[l]);
            s3[l] = fmaf(a3[k + l], x, s3[l]);
        }
    out[0] = hsum16(s0);
    out[1] = hsum16(s1);
    out[2] = hsum16(s2);
    out[3] = hsum16(s3);
    out[0] = tail_dot(out[0], a0, b, k, n);
    out[1] = tail_dot(out[1], a1, b, k, n);
    out[2] = tail_dot(out[2], a2, b, k, n);
    out[3] = tail_dot(out[3], a3, b, k, n);
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
__attribute__((always_inline)) static inline void
small_body(ops_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
           const float *B, size_t ldb, float beta, float *C, size_t ldc)
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
                    C[(i + (size_t)r) * ldc + j] = fmaf(alpha, d[r], C[(i + (size_t)r) * ldc + j]);
            }
            for (; i < M; i++)
                C[i * ldc + j] = fmaf(alpha, dot(A + i * lda, b, K), C[i * ldc + j]);
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
                        c0[l] = fmaf(x0, b[l], c0[l]);
                        c1[l] = fmaf(x1, b[l], c1[l]);
                        c2[l] = fmaf(x2, b[l], c2[l]);
                        c3[l] = fmaf(x3, b[l], c3[l]);
                    }
                }
                for (int l = 0; l < 16; l++) {
                    float *y0 = C + i * ldc + j + (size_t)l, *y1 = y0 + ldc, *y2 = y1 + ldc,
                          *y3 = y2 + ldc;
                    *y0 = fmaf(alpha, c0[l], *y0);
                    *y1 = fmaf(alpha, c1[l], *y1);
                    *y2 = fmaf(alpha, c2[l], *y2);
                    *y3 = fmaf(alpha, c3[l], *y3);
                }
            }
            for (size_t r = i; r < i + 4; r++)
                for (size_t k = 0; k < K; k++) {
                    float a = alpha * A[r * lda + k];
                    for (size_t jj = j; jj < N; jj++)
                        C[r * ldc + jj] = fmaf(a, B[k * ldb + jj], C[r * ldc + jj]);
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
                        c0[l] = fmaf(x0, b[l], c0[l]);
                }
                for (int l = 0; l < 16; l++)
                    c[j + (size_t)l] = fmaf(alpha, c0[l], c[j + (size_t)l]);
            }
            for (size_t k = 0; k < K; k++) {
                float a = alpha * A[i * lda + k];
                for (size_t jj = j; jj < N; jj++)
                    c[jj] = fmaf(a, B[k * ldb + jj], c[jj]);
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPS_HAVE_SMALL_V3 1
__attribute__((target("arch=x86-64-v3"))) static void
small_v3(ops_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
         const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    small_body(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#endif

static void small_base(ops_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                       size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    small_body(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

// 1: the v3 build (the CPU has AVX2+FMA and not forced off), 0: baseline; -1 unknown.
static int small_use_v3 = -1;

void ops_small_force_baseline(int on)
{
    small_use_v3 = on ? 0 : -1;
}

static void small_matmul(ops_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                         size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
#ifdef OPS_HAVE_SMALL_V3
    if (small_use_v3 < 0) {
        __builtin_cpu_init();
        small_use_v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                       __builtin_cpu_supports("bmi2"); // (the v3 build may use BMI1/2, F16C, ...)
    }
    if (small_use_v3) {
        small_v3(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    small_base(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
// lanes, same tree) give the same bits, on any x86-64, and so does the AVX-512
// kernel (below: still 8 lanes per element, two elements per zmm). No compiler
// contraction: ISO C mode and explicit intrinsics only.
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

// rows_tree8 of 8 accumulators v[0..7] at once, in the same pairs and order (IEEE
// addition is commutative): 1. s_l = a_l + a_(l+4) (the two 128-bit halves);
// 2. s0 + s2, s1 + s3; 3. (s0 + s2) + (s1 + s3). t[4 k + g] is the tree of v[2 g + k].
__attribute__((target("avx2"), always_inline)) static inline void rows_trees8(const __m256 *v,
                                                                             float *t)
{
    __m256 x[4], y[2];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) // [v(2g).lo, v(2g+1).lo] + [v(2g).hi, v(2g+1).hi]
        x[g] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * g], v[2 * g + 1], 0x20),
                             _mm256_permute2f128_ps(v[2 * g], v[2 * g + 1], 0x31));
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++) // [s0, s1] + [s2, s3] of x[2g] and of x[2g + 1]
        y[g] = _mm256_add_ps(_mm256_shuffle_ps(x[2 * g], x[2 * g + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(x[2 * g], x[2 * g + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm256_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1))));
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
    // The trees 8 accumulators at a time (rows_trees8; missing ones are 0).
    enum { NQ = (ROWS_MR * ROWS_NR + 7) / 8 * 8 };
    __m256 v[NQ];
    float t[NQ];
    int n = mr * nr;
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++)
            v[r * nr + c] = acc[r][c];
#pragma GCC unroll 16
    for (int q = n; q < (n + 7) / 8 * 8; q++)
        v[q] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int q = 0; q < n; q += 8)
        rows_trees8(v + q, t + q);
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++) {
            const float *a = A + (size_t)r * lda, *b = B + (size_t)c * ldb;
            int q = r * nr + c, u = q % 8;
            float s = t[q - u + 4 * (u & 1) + u / 2];
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


#if defined(__x86_64__) && defined(__GNUC__)
#define OPS_HAVE_AVX512_ROWS 1
#define R5_MP 2 // pairs of A rows per register block (4 rows)
#define R5_NR 6 // rows of B (output columns) per register block
_Static_assert(R5_MP == 2 && R5_NR > 4 && R5_NR <= 8,
               "rows512_block's epilogue: 2 pairs, 5..8 columns");
#ifndef R5_PF
#define R5_PF 3 // prefetch the weight rows this many blocks ahead
#endif

// A's rows in pairs, chunk by chunk: Ap[(p * nch + ch) * 16 + h * 8 + l] =
// A[2p + h, 8 ch + l] for ch < nch = K / 8; a missing odd last row is 0.
static void rows_pack_pairs(size_t M, size_t nch, const float *A, size_t lda, float *Ap)
{
    for (size_t p = 0; p < (M + 1) / 2; p++)
        for (size_t h = 0; h < 2; h++) {
            size_t i = 2 * p + h;
            for (size_t ch = 0; ch < nch; ch++) {
                float *d = Ap + (p * nch + ch) * 16 + h * 8;
                if (i < M)
                    memcpy(d, A + i * lda + ch * 8, 8 * sizeof(float));
                else
                    memset(d, 0, 8 * sizeof(float));
            }
        }
}

// rows_tree8 of both 8-lane halves of 8 accumulators v[0..7] at once, in the same
// pairs and the same order (IEEE addition is commutative, so a + b == b + a):
//   1. s_l = a_l + a_(l+4): 128-bit quarters 0 + 1 and 2 + 3 of each zmm;
//   2. s0 + s2, s1 + s3;  3. (s0 + s2) + (s1 + s3).
// t[4 k + g] is the tree of half k & 1 of v[2 g + (k >> 1)], k, g = 0..3.
__attribute__((target("avx512f"), always_inline)) static inline void
rows512_trees(const __m512 *v, float *t)
{
    __m512 x[4], y[2];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) // quarters: [v0.q0, v0.q2, v1.q0, v1.q2] + [.q1, .q3, ...]
        x[g] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * g], v[2 * g + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(v[2 * g], v[2 * g + 1], _MM_SHUFFLE(3, 1, 3, 1)));
#pragma GCC unroll 2
    for (int g = 0; g < 2; g++) // [s0, s1] + [s2, s3] of x[2g] and of x[2g + 1]
        y[g] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * g], x[2 * g + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(x[2 * g], x[2 * g + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    _mm512_storeu_ps(t, _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1))));
}

// The AVX2 block's operations, two output elements per zmm: the low half holds the
// 8 lanes of row 2p against weight row c, the high half those of row 2p + 1 (the
// weight chunk broadcast to both halves). Each lane is the same fma chain as in
// rows_block, the tree is rows_tree8's (rows512_trees), and the tail and update are the
// same scalar code: same bits.
// mp <= R5_MP pairs from pair p0 (rows i0 = 2 p0 .. i0 + m), nr <= R5_NR weight rows.
__attribute__((target("avx512f,fma"), always_inline)) static inline void
rows512_block(int mp, int nr, size_t m, size_t K, float alpha, const float *Ap, size_t nch,
              const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
              const float *pf, size_t npf, size_t pfs)
{
    __m512 acc[R5_MP][R5_NR];
#pragma GCC unroll 4
    for (int p = 0; p < mp; p++)
#pragma GCC unroll 8
        for (int c = 0; c < nr; c++)
            acc[p][c] = _mm512_setzero_ps();
    for (size_t ch = 0; ch < nch; ch++) {
        __m512 b[R5_NR];
#pragma GCC unroll 8
        for (int c = 0; c < nr; c++)
            b[c] = _mm512_castpd_ps(_mm512_broadcast_f64x4(
                _mm256_castps_pd(_mm256_loadu_ps(B + (size_t)c * ldb + ch * 8))));
        if (pf && (ch & 1) == 0)
            for (size_t c = 0; c < npf; c++)
                _mm_prefetch((const char *)(pf + c * pfs + ch * 8), _MM_HINT_T0);
#pragma GCC unroll 4
        for (int p = 0; p < mp; p++) {
            __m512 a = _mm512_loadu_ps(Ap + ((size_t)p * nch + ch) * 16);
#pragma GCC unroll 8
            for (int c = 0; c < nr; c++)
                acc[p][c] = _mm512_fmadd_ps(a, b[c], acc[p][c]);
        }
    }
    // The trees, 8 accumulators at a time, ordered so that the results come out row
    // by row: group 0 holds weight rows 0..3, group 1 rows 4..5 (v[2 c + p] is pair p
    // against weight row c; missing ones are 0), so t[16 g + 4 r + c'] is row r
    // against weight row 4 g + c'.
    __m512 v[16];
    float t[32];
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
#pragma GCC unroll 2
        for (int p = 0; p < 2; p++)
            v[2 * c + p] = p < mp && c < nr ? acc[p][c] : _mm512_setzero_ps();
    rows512_trees(v, t);
    if (nr > 4)
        rows512_trees(v + 8, t + 16);
    size_t K8 = nch * 8;
    if (K8 == K && nr == R5_NR) { // the usual case: 4 + 2 columns of each row at once
        __m128 al = _mm_set1_ps(alpha);
        for (size_t r = 0; r < m; r++) {
            float *y = C + r * ldc;
            _mm_storeu_ps(y, _mm_add_ps(_mm_loadu_ps(y), _mm_mul_ps(al, _mm_loadu_ps(t + 4 * r))));
            __m128 y2 = _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(y + 4)); // may_alias
            __m128 s2 = _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(t + 16 + 4 * r));
            _mm_storel_pi((__m64 *)(y + 4), _mm_add_ps(y2, _mm_mul_ps(al, s2)));
        }
        return;
    }
    for (size_t r = 0; r < m; r++)
#pragma GCC unroll 8
        for (int c = 0; c < nr; c++) {
            const float *a = A + r * lda, *b = B + (size_t)c * ldb;
            float s = t[16 * (c / 4) + 4 * r + c % 4];
            for (size_t k = K8; k < K; k++)
                s = fmaf(a[k], b[k], s);
            float *y = C + r * ldc + c;
            *y = *y + alpha * s;
        }
}

#define R5_CASE(mp, nr)                                                                           \
    case (mp) * 8 + (nr):                                                                         \
        rows512_block(mp, nr, m, K, alpha, ap, nch, a, lda, b, ldb, c, ldc, pf, npf, pfs);        \
        break;

// Returns 0 when it cannot get its packing buffer (the caller runs the AVX2 kernel:
// the same bits).
__attribute__((target("avx512f,fma"))) static int
rows_avx512(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda, const float *B,
            size_t ldb, float *C, size_t ldc)
{
    size_t nch = K / 8, np = (M + 1) / 2;
    float *Ap = NULL;
    if (nch > 0) {
        Ap = malloc(np * nch * 16 * sizeof(float));
        if (!Ap)
            return 0;
        rows_pack_pairs(M, nch, A, lda, Ap);
    }
    size_t ng = (np + R5_MP - 1) / R5_MP; // row groups
    for (size_t j = 0; j < N; j += R5_NR) {
        int nr = N - j < R5_NR ? (int)(N - j) : R5_NR;
        const float *b = B + j * ldb;
        for (size_t p = 0; p < np; p += R5_MP) {
            int mp = np - p < R5_MP ? (int)(np - p) : R5_MP;
            size_t i = 2 * p, m = M - i < 2 * (size_t)mp ? M - i : 2 * (size_t)mp;
            const float *a = A + i * lda, *ap = Ap ? Ap + p * nch * 16 : NULL;
            float *c = C + i * ldc + j;
            // The next weight rows, while these come from L1 (they would come from
            // memory: a decoder's weights do not fit in the caches). Row group g of
            // ng fetches the rows g, g + ng, ... of that block, so that the requests
            // spread over the whole pass instead of bursting in the first group.
            size_t jn = j + R5_PF * R5_NR, g = p / R5_MP;
            size_t nb = jn < N ? (N - jn < R5_NR ? N - jn : R5_NR) : 0;
            const float *pf = g < nb ? B + (jn + g) * ldb : NULL;
            size_t npf = pf ? (nb - g + ng - 1) / ng : 0, pfs = ng * ldb;
            switch (mp * 8 + nr) {
                R5_CASE(1, 1) R5_CASE(1, 2) R5_CASE(1, 3) R5_CASE(1, 4) R5_CASE(1, 5) R5_CASE(1, 6)
                R5_CASE(2, 1) R5_CASE(2, 2) R5_CASE(2, 3) R5_CASE(2, 4) R5_CASE(2, 5) R5_CASE(2, 6)
            default:
                break;
            }
        }
    }
    free(Ap);
    return 1;
}
#endif

static const char *const ROWS_NAMES[] = {"auto", "portable", "avx2", "avx512"};

const char *ops_rows_kernel_name(ops_rows_kernel k)
{
    return (unsigned)k < sizeof ROWS_NAMES / sizeof *ROWS_NAMES ? ROWS_NAMES[k] : "?";
}

int ops_rows_kernel_available(ops_rows_kernel k)
{
    switch (k) {
    case OPS_ROWS_AUTO:
    case OPS_ROWS_PORTABLE:
        return 1;
    case OPS_ROWS_AVX2:
#ifdef OPS_HAVE_AVX2_ROWS
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
        return 0;
#endif
    case OPS_ROWS_AVX512:
#ifdef OPS_HAVE_AVX512_ROWS
        __builtin_cpu_init(); // libgcc also checks that the OS saves the zmm state (XCR0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
        return 0;
#endif
    }
    return 0;
}

// The kernel AUTO stands for on this CPU.
static ops_rows_kernel rows_best(void)
{
    if (ops_rows_kernel_available(OPS_ROWS_AVX512) && OPS_ROWS_AVX512_DEFAULT)
        return OPS_ROWS_AVX512;
    if (ops_rows_kernel_available(OPS_ROWS_AVX2))
        return OPS_ROWS_AVX2;
    return OPS_ROWS_PORTABLE;
}

int ops_rows_kernel_parse(const char *name, ops_rows_kernel *out, sl_err *err)
{
    for (int k = 0; k < (int)(sizeof ROWS_NAMES / sizeof *ROWS_NAMES); k++)
        if (!strcmp(name, ROWS_NAMES[k])) {
            if (!ops_rows_kernel_available((ops_rows_kernel)k))
                return sl_fail(err, SL_EINVAL, "ops: rows kernel %s: this CPU (or build) lacks it",
                               name);
            *out = (ops_rows_kernel)k;
            return SL_OK;
        }
    return sl_fail(err, SL_EINVAL, "ops: rows kernel '%s' is not auto|portable|avx2|avx512", name);
}

int ops_rows_kernel_from_env(sl_err *err)
{
    const char *v = getenv("SL_ROWS_KERNEL");
    ops_rows_kernel k = OPS_ROWS_AUTO;
    if (v && *v) {
        int rc = ops_rows_kernel_parse(v, &k, err);
        if (rc) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n, " (SL_ROWS_KERNEL)");
            return rc;
        }
    }
    return ops_rows_set_kernel(k);
}

// The kernel ops_matmul_rows runs; -1 until the first call (or ops_rows_set_kernel)
// resolves it, then fixed (benign race: every thread computes the same value).
static int rows_kind = -1;

static ops_rows_kernel rows_current(void)
{
    if (rows_kind < 0) {
        sl_err e;
        if (ops_rows_kernel_from_env(&e)) {
            sl_log(SL_LOG_WARN, "ops", "%s: using %s", e.msg, ops_rows_kernel_name(rows_best()));
            rows_kind = (int)rows_best();
        }
    }
    return (ops_rows_kernel)rows_kind;
}

int ops_rows_set_kernel(ops_rows_kernel k)
{
    if (!ops_rows_kernel_available(k))
        return SL_EINVAL;
    rows_kind = (int)(k == OPS_ROWS_AUTO ? rows_best() : k);
    return SL_OK;
}

ops_rows_kernel ops_rows_kernel_current(void) { return rows_current(); }

// One panel of rows: every kernel reads each block of weight rows once for all of them.
static void rows_panel(ops_rows_kernel k, size_t M, size_t N, size_t K, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float *C,
                       size_t ldc)
{
#ifdef OPS_HAVE_AVX512_ROWS
    if (k == OPS_ROWS_AVX512 && rows_avx512(M, N, K, alpha, A, lda, B, ldb, C, ldc))
        return;
    // (no packing buffer: the AVX2 kernel gives the same bits)
#endif
#ifdef OPS_HAVE_AVX2_ROWS
    if (k == OPS_ROWS_AVX2 || k == OPS_ROWS_AVX512) {
        rows_avx2(M, N, K, alpha, A, lda, B, ldb, C, ldc);
        return;
    }
#endif
    rows_portable(M, N, K, alpha, A, lda, B, ldb, C, ldc);
}

// One thread's ops_matmul_rows (the whole product, or a range of its output columns).
// The kernels stream A once per block of weight rows: many rows of A (an encoder's
// source) are taken in panels of ROWS_PANEL_BYTES that stay in L2 while every weight row
// passes (~0.67x -> ~0.85x of sgemm's speed at 500 x 512 x 512, AVX2). A row's result does
// not depend on the panel it falls in (the kernels' rows are independent), so panels
// change no bit. Fewer rows than ROWS_PANEL_MIN_ROWS (a decoder's batch) keep one pass
// over the weights, which come from memory.
#ifndef ROWS_PANEL_BYTES
#define ROWS_PANEL_BYTES 131072
#endif
#define ROWS_PANEL_MIN_ROWS 192
static void rows_one(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    scale_rows(M, N, beta, C, ldc);
    ops_rows_kernel k = rows_current();
    size_t pm = ROWS_PANEL_BYTES / ((K ? K : 1) * sizeof(float));
    pm = M < ROWS_PANEL_MIN_ROWS ? M : pm < 16 ? 16 : pm / 4 * 4;
    for (size_t i = 0; i < M; i += pm)
        rows_panel(k, M - i < pm ? M - i : pm, N, K, alpha, A + i * lda, lda, B, ldb,
                   C + i * ldc, ldc);
}

// With threads, a product is split over its output columns: each element is computed
// by the same kernel code as single-threaded (the kernels' blocks are of 3 and 6
// weight rows, so ranges start at multiples of 6: even the blocking is unchanged).
#define ROWS_PAR_MIN_MACS 65536.0 // smaller products are not worth waking a thread
typedef struct rows_job {
    size_t M, N, K, ldb, lda, ldc, chunk;
    float alpha, beta;
    const float *A, *B;
    float *C;
} rows_job;

static void rows_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    const rows_job *j = ctx;
    size_t n0 = t * j->chunk, n = j->N - n0 < j->chunk ? j->N - n0 : j->chunk;
    rows_one(j->M, n, j->K, j->alpha, j->A, j->lda, j->B + n0 * j->ldb, j->ldb, j->beta,
             j->C + n0, j->ldc);
}

void ops_matmul_rows(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    size_t T = (size_t)par_threads();
    if (T > 1 && (double)M * (double)N * (double)K >= ROWS_PAR_MIN_MACS && N >= 12) {
        size_t chunk = (N + T - 1) / T;
        chunk = (chunk + 5) / 6 * 6;
        rows_job j = {M, N, K, ldb, lda, ldc, chunk, alpha, beta, A, B, C};
        par_run((N + chunk - 1) / chunk, rows_task, &j);
        return;
    }
    rows_one(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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

void ops_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
    par_set_threads(n);
}
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
