// bench/hubert_bench.c — times hubert_forward and a square sgemm in one process.
//
//   hubert_bench --hubert DIR --audio X.npy --seconds S --layer L --threads N [--reps R]
//                [--out F.npy]
// X.npy: float32 [n] 16 kHz samples (the first S seconds are used). Prints one line
// of key=value pairs: the OpenBLAS core, the best-of-R sgemm GFLOP/s (M=N=K=2048 via
// ops_matmul), the best-of-R and median forward time, and GFLOP/s of the best. bench/hubert_bench.py
// drives it next to torchaudio.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/npy.h"
#include "pipeline/hubert.h"
#include "pipeline/ops.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double sgemm_peak(int reps)
{
    size_t n = 2048;
    float *a = malloc(n * n * sizeof(float)), *b = malloc(n * n * sizeof(float)),
          *c = malloc(n * n * sizeof(float));
    for (size_t i = 0; i < n * n; i++) {
        a[i] = (float)(i % 13) * 0.01f;
        b[i] = (float)(i % 7) * 0.02f;
    }
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { // first run warms up
        double t0 = sl_now();
        ops_matmul(OPS_N, OPS_N, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = sl_now() - t0;
        if (r && dt < best)
            best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"hubert", required_argument, 0, 'm'},
                                         {"audio", required_argument, 0, 'a'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"layer", required_argument, 0, 'l'},
                                         {"threads", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *audio = NULL, *out = NULL;
    double seconds = 10;
    int layer = 9, threads = 1, reps = 3, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'a': audio = optarg; break;
        case 's': seconds = atof(optarg); break;
        case 'l': layer = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'o': out = optarg; break;
        default: fprintf(stderr, "see the comment at the top of bench/hubert_bench.c\n"); return 2;
        }
    }
    if (!dir || !audio || reps < 1) {
        fprintf(stderr, "usage: hubert_bench --hubert DIR --audio X.npy [--seconds S] [--layer L] "
                        "[--threads N] [--reps R] [--out F.npy]\n");
        return 2;
    }
    ops_set_threads(threads);
    sl_err e;
    sl_npy x;
    hubert_model *m;
    hubert_state *s;
    if (sl_npy_read(audio, &x, &e) || hubert_open(&m, dir, &e) || hubert_state_new(&s, m, &e)) {
        fprintf(stderr, "hubert_bench: %s\n", e.msg);
        return 1;
    }
    size_t n = (size_t)(seconds * 16000.0);
    if (n > x.count || x.dtype != SL_NPY_F32) {
        fprintf(stderr, "hubert_bench: %s holds %zu samples, need %zu float32\n", audio, x.count, n);
        return 1;
    }
    double peak = sgemm_peak(reps);
    const float *f;
    size_t T, D;
    double best = 1e30, *times = malloc((size_t)reps * sizeof(double));
    for (int r = 0; r < reps + 1; r++) { // first run sizes the state and warms up
        double t0 = sl_now();
        if (hubert_forward(s, x.data, n, layer, 0, &f, &T, &D, &e)) {
            fprintf(stderr, "hubert_bench: %s\n", e.msg);
            return 1;
        }
        double dt = sl_now() - t0;
        if (r) {
            times[r - 1] = dt;
            best = dt < best ? dt : best;
        }
    }
    qsort(times, (size_t)reps, sizeof(double), cmp_double);
    double median = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    free(times);
    double flops = hubert_flops(m, n, layer);
    printf("core=%s threads=%d seconds=%g frames=%zu sgemm_gflops=%.2f time=%.4f "
           "time_median=%.4f gflop=%.3f gflops=%.2f\n", ops_blas_corename(), ops_get_threads(),
           seconds, T, peak, best, median, flops * 1e-9, flops / best * 1e-9);
    if (out) {
        size_t shape[2] = {T, D};
        if (sl_npy_write(out, SL_NPY_F32, 2, shape, f, &e))
            fprintf(stderr, "hubert_bench: %s\n", e.msg);
    }
    hubert_state_free(s);
    hubert_close(m);
    sl_npy_free(&x);
    return 0;
}
