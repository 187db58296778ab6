// pipeline/ops.h — the matrix products the models go through.
//
// HuBERT's weight products, convolutions and attention and the k-means distances
// are ops_matmul() calls (row-major, so transposes and leading dimensions are right
// in one place): OpenBLAS sgemm, one sgemv per row for a few rows, or loops of its
// own for products too small to pay for a BLAS call (explicit fmaf: the same bits on
// every x86-64, see ops_small_force_baseline). sgemm's bits depend on OpenBLAS's
// thread count and kernel (CPU). Every product of the speech->text model (encoder,
// cross K/V, decoder) is ops_matmul_rows() (bits that depend on neither, below). Two kinds of
// product do not come here: a decoder step's attention (a few query rows over
// one source's keys per head: kern_step_attend in pipeline/kernels.h, fmaf
// chains whose bits do not depend on the batch either) and MFCC's per-frame
// mel and DCT sums (mfcc.c, 23 x 13 per frame).
// Threads: ops_set_threads (once per process, before work starts) sets OpenBLAS's
// threads (ops_matmul) and pipeline/par.h's (ops_matmul_rows over output columns,
// the decoder's step attention over heads and sources); the rest is single-threaded.
#pragma once
#include <stddef.h>

#include "common/err.h"

typedef enum ops_trans { OPS_N = 0, OPS_T = 1 } ops_trans;

// C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C, all row-major.
// op(A) = A (lda >= K) or A^T (A stored [K,M], lda >= M); likewise op(B).
void ops_matmul(ops_trans ta, ops_trans tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc);

// C[M,N] = alpha * A[M,K] . B[N,K]^T + beta * C like ops_matmul(OPS_N, OPS_T, ...),
// but row i of C depends only on row i of A (and C), bit for bit, whatever M and
// the thread count: threads take ranges of output columns (par.h), each element
// computed by the same code as single-threaded, a fixed summation order per element
// (one pass over B for up to 191 rows; more rows in L2-sized panels, each one pass).
// For the speech->text model, where a hypothesis must come out the same whatever batch,
// thread count or node it is decoded on (labels and scores independent of scheduling).
// Each element is 8-lane fused multiply-adds over K in order, a fixed add tree,
// fused tail (see ops.c): every kernel below gives the same bits.
void ops_matmul_rows(size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc);

// The kernels ops_matmul_rows can run, all with the same bits: PORTABLE (fmaf loops),
// AVX2 (AVX2+FMA intrinsics, blocks of 4 rows x 3 weight rows), AVX512 (AVX-512F: two
// output elements' 8 lanes per zmm, blocks of 4 rows x 6 weight rows). AUTO is the
// fastest the CPU has (and the OS enables). By default the first call resolves AUTO,
// or the environment variable SL_ROWS_KERNEL=auto|portable|avx2|avx512 when set
// (read once; an unknown or unavailable name is logged and ignored).
typedef enum ops_rows_kernel {
    OPS_ROWS_AUTO = 0,
    OPS_ROWS_PORTABLE = 1,
    OPS_ROWS_AVX2 = 2,
    OPS_ROWS_AVX512 = 3,
} ops_rows_kernel;
// 1 when this CPU and build can run kernel k (AUTO and PORTABLE: always).
int ops_rows_kernel_available(ops_rows_kernel k);
// Forces kernel k (AUTO: the CPU's fastest). SL_EINVAL, nothing changed, when k is not
// available. Not thread-safe: call while no ops_matmul_rows runs.
int ops_rows_set_kernel(ops_rows_kernel k);
// The kernel the next ops_matmul_rows runs (never AUTO; resolves it on first use).
ops_rows_kernel ops_rows_kernel_current(void);
// "auto", "portable", "avx2", "avx512".
const char *ops_rows_kernel_name(ops_rows_kernel k);
// Name -> kernel; SL_EINVAL for an unknown name or one this CPU cannot run.
int ops_rows_kernel_parse(const char *name, ops_rows_kernel *out, sl_err *err);
// Applies SL_ROWS_KERNEL (unset or empty: AUTO) now; SL_EINVAL with the reason when it
// names an unknown or unavailable kernel (then nothing changes). For main(), so a
// forced run fails at once instead of running another kernel.
int ops_rows_kernel_from_env(sl_err *err);

// ops_matmul's own loops for small products are built for x86-64-v3 (AVX2+FMA) and for
// baseline x86-64 and give the same bits (explicit fmaf). Tests: on = 1 runs the
// baseline build on any CPU, 0 the CPU's choice again. Not thread-safe.
void ops_small_force_baseline(int on);

// y[M,N] = x[M,K] . W^T + b for a PyTorch Linear weight W[N,K] (b may be NULL).
void ops_linear(const float *x, size_t M, size_t K, const float *W, const float *b, size_t N,
                float *y);

// OpenBLAS's and par.h's thread count for this process (n >= 1).
void ops_set_threads(int n);
int ops_get_threads(void);
// The number of threads the user asked for: --threads if > 0, else
// SLURM_CPUS_PER_TASK, else 1.
int ops_threads_default(int flag_value);
// OpenBLAS's own description of the kernel it runs ("Haswell", ...), for bench output.
const char *ops_blas_config(void);
// The core OpenBLAS picked at run time ("Haswell", "SkylakeX", ...).
const char *ops_blas_corename(void);
