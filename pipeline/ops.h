// pipeline/ops.h — the matrix products the models go through.
//
// The models' weight products, convolutions, encoder attention and k-means
// distances are ops_matmul() calls (row-major, so transposes and leading
// dimensions are right in one place): OpenBLAS sgemm, one sgemv per row for a
// few rows, or loops of its own for products too small to pay for a BLAS call.
// Decoders use ops_matmul_rows() (batch-invariant bits, below). Two kinds of
// product do not come here: a decoder step's attention (a few query rows over
// one source's keys per head: kern_step_attend in pipeline/kernels.h, fmaf
// chains whose bits do not depend on the batch either) and MFCC's per-frame
// mel and DCT sums (mfcc.c, 23 x 13 per frame).
// Threads: OpenBLAS owns them (ops_set_threads once per process, before work
// starts); the rest of the code is single-threaded.
#pragma once
#include <stddef.h>

typedef enum ops_trans { OPS_N = 0, OPS_T = 1 } ops_trans;

// C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C, all row-major.
// op(A) = A (lda >= K) or A^T (A stored [K,M], lda >= M); likewise op(B).
void ops_matmul(ops_trans ta, ops_trans tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc);

// C[M,N] = alpha * A[M,K] . B[N,K]^T + beta * C like ops_matmul(OPS_N, OPS_T, ...),
// but row i of C depends only on row i of A (and C), bit for bit, whatever M and
// the thread count: single-threaded, one pass over B for all rows, a fixed
// summation order per element. For decoders, where a hypothesis must come out the
// same whatever batch it is decoded in (labels and scores independent of scheduling).
// Each element is 8-lane fused multiply-adds over K in order, a fixed add tree,
// fused tail (see ops.c): the AVX2 kernel and the portable one give the same bits.
void ops_matmul_rows(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc);

// 1 when ops_matmul_rows runs the AVX2+FMA kernel (the CPU has both), else 0.
int ops_rows_kernel_avx2(void);
// Tests: on = 1 forces the portable kernel, 0 goes back to the CPU's choice.
// Not thread-safe; call while no ops_matmul_rows runs.
void ops_rows_set_portable(int on);

// y[M,N] = x[M,K] . W^T + b for a PyTorch Linear weight W[N,K] (b may be NULL).
void ops_linear(const float *x, size_t M, size_t K, const float *W, const float *b, size_t N,
                float *y);

// OpenBLAS thread count for this process (n >= 1).
void ops_set_threads(int n);
int ops_get_threads(void);
// The number of threads the user asked for: --threads if > 0, else
// SLURM_CPUS_PER_TASK, else 1.
int ops_threads_default(int flag_value);
// OpenBLAS's own description of the kernel it runs ("Haswell", ...), for bench output.
const char *ops_blas_config(void);
// The core OpenBLAS picked at run time ("Haswell", "SkylakeX", ...).
const char *ops_blas_corename(void);
