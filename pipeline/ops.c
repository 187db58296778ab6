// pipeline/ops.c — see ops.h.
#include "pipeline/ops.h"

#include <cblas.h>
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

// C = alpha * A . op(B) + beta * C for small products (A not transposed).
OPS_SMALL_KERNEL static void small_matmul(ops_trans tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                         size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++) { // beta = 0 must not read C (it may hold NaN)
        float *c = C + i * ldc;
        if (beta == 0.0f)
            memset(c, 0, N * sizeof(float));
        else if (beta != 1.0f)
            for (size_t j = 0; j < N; j++)
                c[j] *= beta;
    }
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

// No FMA contraction here: with it the compiler may fuse some multiply-adds and
// not others depending on the block shape, and a row's bits would depend on M.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O3", "fp-contract=off"), target_clones("arch=x86-64-v3", "default")))
#endif
void ops_matmul_rows(size_t M, size_t N, size_t K, float alpha, const float *A,
                                      size_t lda, const float *B, size_t ldb, float beta,
                                      float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    for (size_t i = 0; i < M; i++) { // beta = 0 must not read C (it may hold NaN)
        float *c = C + i * ldc;
        if (beta == 0.0f)
            memset(c, 0, N * sizeof(float));
        else if (beta != 1.0f)
            for (size_t j = 0; j < N; j++)
                c[j] *= beta;
    }
    // Each weight row is read once for all rows (from L1 for groups after the first);
    // dot4 and dot give a row the same 16 partial sums and the same final order.
    for (size_t j = 0; j < N; j++) {
        const float *b = B + j * ldb;
        size_t i = 0;
        for (; i + 4 <= M; i += 4) {
            float d[4];
            dot4(A + i * lda, A + (i + 1) * lda, A + (i + 2) * lda, A + (i + 3) * lda, b, K, d);
            for (size_t r = 0; r < 4; r++)
                C[(i + r) * ldc + j] += alpha * d[r];
        }
        for (; i < M; i++)
            C[i * ldc + j] += alpha * dot(A + i * lda, b, K);
    }
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
