// bench/s2t_bench.c — times pipeline/beam.h decoding of a speech->text model
// on fixed sources with a forced output length. Driven by bench/s2t_bench.py,
// which builds the model, runs the seed's generate() on the same weights and
// prints the comparison; this program prints one JSON line per setting.
//
//   s2t_bench --s2t MODEL --ids IDS.npy [--beam N (0 = greedy)] [--batch B]
//             [--len L] [--threads T] [--reps R] [--out IDS_OUT.npy] [--cross-kv f32|f16]
// --out writes the text ids of every source (int64 [B, L]) for the driver's
// comparison with the seed's output on the same weights.
// IDS.npy: int64 [B, T] semantic ids (no padding, no EOS). Every source is
// decoded to exactly L tokens (min_len = max_len = L).
#define _POSIX_C_SOURCE 200809L // clock_gettime
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/npy.h"
#include "pipeline/beam.h"
#include "pipeline/ops.h"
#include "pipeline/s2t.h"

// This process's CPU seconds: on a shared machine the wall time also counts other
// processes' slices; the CPU time much less so.
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// 2 * M * N * K / s of a 2048^3 sgemm through ops_matmul (best of reps after one warm-up):
// the machine's peak for this run, measured in the same process as the decode.
// *cpu_gflops: the same from the CPU time (1 thread: comparable with cpu_min_s).
static double sgemm_peak(int reps, double *cpu_gflops)
{
    size_t n = 2048;
    float *a = malloc(n * n * sizeof(float)), *b = malloc(n * n * sizeof(float)),
          *c = malloc(n * n * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        *cpu_gflops = 0.0;
        return 0.0;
    }
    for (size_t i = 0; i < n * n; i++) {
        a[i] = (float)(i % 13) * 0.01f;
        b[i] = (float)(i % 7) * 0.02f;
    }
    double best = 1e30, cbest = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = sl_now(), c0 = cpu_now();
        ops_matmul(OPS_N, OPS_N, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = sl_now() - t0, dc = cpu_now() - c0;
        if (r && dt < best)
            best = dt;
        if (r && dc < cbest)
            cbest = dc;
    }
    *cpu_gflops = 2.0 * (double)n * (double)n * (double)n / cbest * 1e-9;
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
}

// Analytic FLOPs of one beam_decode of n_src sources of S source positions (ids + EOS) to
// L tokens with `beam` hypotheses each (bench/e2e_bench.py s2t_flops, from the config):
// encoder, cross K/V once per source, per step and hypothesis the decoder layers (self
// attention over the steps so far, cross attention over S) and the logits.
static double s2t_flops(const s2t_config *c, double S, int L, int beam, int n_src)
{
    double d = c->dim, hd = (double)c->heads * c->dim_head, kvd = (double)c->kv_heads * c->dim_head;
    double ff = c->ff_inner, V = c->n_text_vocab;
    double enc = 2.0 * S * (d * hd + 2 * hd * d + hd * d + d * 2 * ff + ff * d) + 4.0 * S * S * hd;
    double f = c->source_depth * enc + c->target_depth * 2.0 * S * d * 2 * hd;
    for (int t = 1; t <= L; t++) {
        double per = 2.0 * (d * hd + 2 * kvd * d + hd * d) + 4.0 * t * hd +
                     2.0 * (d * hd + hd * d) + 4.0 * S * hd + 2.0 * (d * 2 * ff + ff * d);
        f += beam * (c->target_depth * per + 2.0 * d * V);
    }
    return f * n_src;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *ids_path = NULL, *out_path = NULL;
    int beam = 4, batch = 1, len = 128, threads = 1, reps = 3;
    s2t_kv_type cross_kv = S2T_KV_F32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--s2t"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--ids"))
            ids_path = argv[i + 1];
        else if (!strcmp(argv[i], "--beam"))
            beam = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--len"))
            len = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--out"))
            out_path = argv[i + 1];
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cross-kv") && s2t_kv_type_parse(argv[i + 1]) >= 0)
            cross_kv = (s2t_kv_type)s2t_kv_type_parse(argv[i + 1]);
        else {
            fprintf(stderr, "s2t_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!model || !ids_path || beam < 0 || batch < 1 || len < 1 || threads < 1 || reps < 1 ||
        reps > 100) {
        fprintf(stderr, "usage: s2t_bench --s2t MODEL --ids IDS.npy [--beam N] [--batch B] "
                        "[--len L] [--threads T] [--reps R] [--cross-kv f32|f16]\n");
        return 2;
    }
    ops_set_threads(threads);
    double peak_cpu, peak = sgemm_peak(3, &peak_cpu);
    sl_err err;
    sl_npy ids;
    s2t_model *m;
    if (sl_npy_read(ids_path, &ids, &err) || s2t_open(&m, model, &err)) {
        fprintf(stderr, "s2t_bench: %s\n", err.msg);
        return 1;
    }
    if (ids.dtype != SL_NPY_I64 || ids.ndim != 2 || ids.shape[0] < (size_t)batch) {
        fprintf(stderr, "s2t_bench: %s: want int64 [>= %d, T]\n", ids_path, batch);
        return 1;
    }
    size_t T = ids.shape[1];
    int32_t *src = malloc((size_t)batch * T * sizeof(int32_t));
    const int32_t **sp = malloc((size_t)batch * sizeof(*sp));
    int *sl = malloc((size_t)batch * sizeof(int));
    beam_result *res = malloc((size_t)batch * sizeof(beam_result));
    for (int b = 0; b < batch; b++) {
        for (size_t t = 0; t < T; t++)
            src[(size_t)b * T + t] = (int32_t)((const int64_t *)ids.data)[(size_t)b * T + t];
        sp[b] = src + (size_t)b * T;
        sl[b] = (int)T;
    }
    s2t_limits lim = {batch, beam > 0 ? beam : 1, (int)T, len, cross_kv};
    beam_state *bs;
    if (beam_state_new(&bs, m, lim, &err)) {
        fprintf(stderr, "s2t_bench: %s\n", err.msg);
        return 1;
    }
    beam_params p = beam_default_params();
    p.method = beam > 0 ? BEAM_SEARCH : BEAM_GREEDY;
    p.beam = beam > 0 ? beam : 1;
    p.max_len = len;
    p.min_len = len;
    double t_run[100], c_run[100];
    int n_tok = 0;
    for (int r = -1; r < reps; r++) { // r = -1: warm-up
        double t0 = sl_now(), c0 = cpu_now();
        if (beam_decode(bs, sp, sl, batch, &p, res, &err)) {
            fprintf(stderr, "s2t_bench: %s\n", err.msg);
            return 1;
        }
        double dt = sl_now() - t0;
        if (r >= 0) {
            t_run[r] = dt;
            c_run[r] = cpu_now() - c0;
        }
        n_tok = 0;
        for (int b = 0; b < batch; b++)
            n_tok += res[b].n_ids;
    }
    // Batch invariance on this model: the last source alone must give the batch's ids and
    // score bits (the job's resume / regenerate compare rows byte for byte).
    int batch_eq_alone = -1;
    if (batch > 1) {
        int last = batch - 1, n0 = res[last].n_ids;
        float sc0 = res[last].score;
        int32_t *ids0 = malloc((size_t)(n0 > 0 ? n0 : 1) * sizeof(int32_t));
        memcpy(ids0, res[last].ids, (size_t)n0 * sizeof(int32_t));
        beam_result one;
        if (beam_decode(bs, sp + last, sl + last, 1, &p, &one, &err)) {
            fprintf(stderr, "s2t_bench: %s\n", err.msg);
            return 1;
        }
        batch_eq_alone = one.n_ids == n0 && !memcmp(one.ids, ids0, (size_t)n0 * sizeof(int32_t)) &&
                         !memcmp(&one.score, &sc0, sizeof(float));
        free(ids0);
        if (beam_decode(bs, sp, sl, batch, &p, res, &err)) { // res again for --out
            fprintf(stderr, "s2t_bench: %s\n", err.msg);
            return 1;
        }
    }
    if (out_path) {
        int64_t *o = calloc((size_t)batch * (size_t)len, sizeof(int64_t));
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < res[b].n_ids && i < len; i++)
                o[(size_t)b * (size_t)len + (size_t)i] = res[b].ids[i];
        size_t shape[2] = {(size_t)batch, (size_t)len};
        if (sl_npy_write(out_path, SL_NPY_I64, 2, shape, o, &err)) {
            fprintf(stderr, "s2t_bench: %s\n", err.msg);
            return 1;
        }
        free(o);
    }
    qsort(t_run, (size_t)reps, sizeof(double), cmp_double);
    qsort(c_run, (size_t)reps, sizeof(double), cmp_double);
    double best = t_run[0], med = t_run[reps / 2], cbest = c_run[0], cmed = c_run[reps / 2];
    const s2t_config *cfg = s2t_model_config(m);
    double S = (double)T + (cfg->speech_eos >= 0 ? 1 : 0);
    double flops = s2t_flops(cfg, S, len, beam > 0 ? beam : 1, batch);
    printf("{\"impl\": \"c\", \"cross_kv\": \"%s\", \"method\": \"%s\", \"beam\": %d, \"batch\": %d, \"threads\": %d, "
           "\"src_len\": %zu, \"tokens\": %d, \"min_s\": %.6f, \"median_s\": %.6f, "
           "\"tok_per_s\": %.3f, \"score0\": %.9g, \"batch_eq_alone\": %s, \"rows_kernel\": \"%s\", "
           "\"corename\": \"%s\", \"state_mib\": %.1f, \"gflop\": %.3f, \"gflops\": %.2f, "
           "\"sgemm_gflops\": %.2f, \"pct_peak\": %.1f, \"pct_peak_median\": %.1f, \"cpu_min_s\": %.6f, "
           "\"cpu_median_s\": %.6f, \"tok_per_cpu_s\": %.3f, \"sgemm_gflops_cpu\": %.2f, \"pct_peak_cpu\": %.1f}\n",
           s2t_kv_type_name(cross_kv), beam > 0 ? "beam" : "greedy", beam, batch, threads, T,
           n_tok, best, med,
           (double)n_tok / best, (double)res[0].score,
           batch_eq_alone < 0 ? "null" : batch_eq_alone ? "true" : "false",
           ops_rows_kernel_name(ops_rows_kernel_current()), ops_blas_corename(),
           (double)s2t_state_bytes(m, lim) / 1048576.0, flops * 1e-9, flops / best * 1e-9, peak,
           peak > 0 ? 100.0 * flops / best * 1e-9 / peak : 0.0,
           peak > 0 ? 100.0 * flops / med * 1e-9 / peak : 0.0, cbest, cmed, (double)n_tok / cbest,
           peak_cpu, peak_cpu > 0 ? 100.0 * flops / cbest * 1e-9 / peak_cpu : 0.0);
    beam_state_free(bs);
    s2t_close(m);
    sl_npy_free(&ids);
    free(src);
    free(sp);
    free(sl);
    free(res);
    return 0;
}
