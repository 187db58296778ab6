// pipeline/ops.c — see ops.h.
#include "pipeline/ops.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

void ops_matmul(ops_trans ta, ops_trans tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    cblas_sgemm(CblasRowMajor, ta == OPS_T ? CblasTrans : CblasNoTrans,
                tb == OPS_T ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N, (blasint)K, alpha,
                A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
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
