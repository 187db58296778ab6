// bench/pool_bench.c — continuous batching (pipeline/beam.h's pool) against
// units decoded batch by batch, on a stream of sources whose output lengths
// differ, as a worker sees them.
//
//   pool_bench --s2t MODEL --ids IDS.npy [--stream N] [--pool P] [--unit U]
//              [--beam B (0 = greedy)] [--len L] [--threads T] [--reps R]
// Source i is row i % rows of IDS.npy (int64 [rows, T]) cut to
// T/4 + (37 i) % (3T/4 + 1) ids; its output length is min(L, floor(len_a n))
// with len_a = L / T (a model without text EOS, as bench/s2t_bench.py writes,
// runs every source to that length). "unit": beam_decode of U consecutive
// sources at a time; "pool": a pool of P slots refilled as sources finish.
// Both decode the same sources; the program checks every result's ids and
// score bits are equal and prints one JSON line per mode: tokens, fastest and
// median seconds, tokens/s, average rows per decoder step.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/npy.h"
#include "pipeline/beam.h"
#include "pipeline/ops.h"
#include "pipeline/s2t.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct out {
    int32_t *ids; // [N][L]
    int *n;
    float *score;
} out;

static void keep(out *o, int i, int L, const beam_result *r)
{
    o->n[i] = r->n_ids;
    memcpy(o->ids + (size_t)i * (size_t)L, r->ids, (size_t)r->n_ids * sizeof(int32_t));
    o->score[i] = r->score;
}

static int run_units(beam_state *bs, const int32_t *const *sp, const int *sl, int N, int U, int L,
                     const beam_params *p, out *o, sl_err *err)
{
    beam_result res[256];
    for (int i0 = 0; i0 < N; i0 += U) {
        int n = N - i0 < U ? N - i0 : U;
        if (beam_decode(bs, sp + i0, sl + i0, n, p, res, err))
            return -1;
        for (int k = 0; k < n; k++)
            keep(o, i0 + k, L, &res[k]);
    }
    return 0;
}

static int run_pool(beam_state *bs, const int32_t *const *sp, const int *sl, int N, int L,
                    const beam_params *p, out *o, sl_err *err)
{
    int who[256], next = 0, slot;
    beam_result r;
    if (beam_pool_begin(bs, p, err))
        return -1;
    while (next < N || beam_pool_live(bs) > 0) {
        while (next < N && beam_pool_free(bs) > 0) {
            if (beam_pool_add(bs, sp[next], sl[next], &slot, err))
                return -1;
            who[slot] = next++;
        }
        if (beam_pool_step(bs, err))
            return -1;
        while (beam_pool_take(bs, &slot, &r))
            keep(o, who[slot], L, &r);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *ids_path = NULL;
    int N = 32, P = 8, U = 4, beam = 4, L = 128, threads = 1, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--s2t"))
            model = v;
        else if (!strcmp(a, "--ids"))
            ids_path = v;
        else if (!strcmp(a, "--stream"))
            N = atoi(v);
        else if (!strcmp(a, "--pool"))
            P = atoi(v);
        else if (!strcmp(a, "--unit"))
            U = atoi(v);
        else if (!strcmp(a, "--beam"))
            beam = atoi(v);
        else if (!strcmp(a, "--len"))
            L = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else {
            fprintf(stderr, "pool_bench: unknown option %s\n", a);
            return 2;
        }
    }
    if (!model || !ids_path || N < 1 || N > 4096 || P < 1 || P > 256 || U < 1 || U > 256 ||
        beam < 0 || L < 1 || threads < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: pool_bench --s2t MODEL --ids IDS.npy [--stream N] [--pool P] "
                        "[--unit U] [--beam B] [--len L] [--threads T] [--reps R]\n");
        return 2;
    }
    ops_set_threads(threads);
    sl_err err;
    sl_npy ids;
    s2t_model *m;
    if (sl_npy_read(ids_path, &ids, &err) || s2t_open(&m, model, &err)) {
        fprintf(stderr, "pool_bench: %s\n", err.msg);
        return 1;
    }
    if (ids.dtype != SL_NPY_I64 || ids.ndim != 2 || ids.shape[1] < 4) {
        fprintf(stderr, "pool_bench: %s: want int64 [rows, T >= 4]\n", ids_path);
        return 1;
    }
    size_t rows = ids.shape[0], T = ids.shape[1];
    int32_t *src = malloc(rows * T * sizeof(int32_t));
    const int32_t **sp = malloc((size_t)N * sizeof(*sp));
    int *sl = malloc((size_t)N * sizeof(int));
    for (size_t i = 0; i < rows * T; i++)
        src[i] = (int32_t)((const int64_t *)ids.data)[i];
    for (int i = 0; i < N; i++) {
        sp[i] = src + ((size_t)i % rows) * T;
        sl[i] = (int)(T / 4 + ((size_t)i * 37) % (3 * T / 4 + 1));
    }
    int B = P > U ? P : U;
    s2t_limits lim = {B, beam > 0 ? beam : 1, (int)T, L, S2T_KV_F32};
    beam_state *bs;
    if (beam_state_new(&bs, m, lim, &err)) {
        fprintf(stderr, "pool_bench: %s\n", err.msg);
        return 1;
    }
    beam_params p = beam_default_params();
    p.method = beam > 0 ? BEAM_SEARCH : BEAM_GREEDY;
    p.beam = beam > 0 ? beam : 1;
    p.max_len = L;
    p.len_a = (float)L / (float)T;
    out o[2];
    for (int k = 0; k < 2; k++) {
        o[k].ids = malloc((size_t)N * (size_t)L * sizeof(int32_t));
        o[k].n = malloc((size_t)N * sizeof(int));
        o[k].score = malloc((size_t)N * sizeof(float));
    }
    double t[2][100];
    uint64_t steps[2] = {0, 0}, hrows[2] = {0, 0};
    for (int r = -1; r < reps; r++) // r = -1: warm-up; the two modes alternate
        for (int k = 0; k < 2; k++) {
            uint64_t s0, h0, s1, h1;
            beam_pool_stats(bs, &s0, &h0);
            double t0 = sl_now();
            int rc = k == 0 ? run_units(bs, sp, sl, N, U, L, &p, &o[k], &err)
                            : run_pool(bs, sp, sl, N, L, &p, &o[k], &err);
            if (rc) {
                fprintf(stderr, "pool_bench: %s\n", err.msg);
                return 1;
            }
            double dt = sl_now() - t0;
            beam_pool_stats(bs, &s1, &h1);
            if (r >= 0) {
                t[k][r] = dt;
                steps[k] += s1 - s0;
                hrows[k] += h1 - h0;
            }
        }
    int same = 1, tokens = 0;
    for (int i = 0; i < N; i++) {
        tokens += o[0].n[i];
        same &= o[0].n[i] == o[1].n[i] &&
                !memcmp(o[0].ids + (size_t)i * (size_t)L, o[1].ids + (size_t)i * (size_t)L,
                        (size_t)o[0].n[i] * sizeof(int32_t)) &&
                !memcmp(&o[0].score[i], &o[1].score[i], sizeof(float));
    }
    for (int k = 0; k < 2; k++) {
        qsort(t[k], (size_t)reps, sizeof(double), cmp_double);
        printf("{\"mode\": \"%s\", \"slots\": %d, \"stream\": %d, \"beam\": %d, \"len\": %d, "
               "\"threads\": %d, \"tokens\": %d, \"min_s\": %.6f, \"median_s\": %.6f, "
               "\"tok_per_s\": %.3f, \"tok_per_s_med\": %.3f, \"avg_rows_per_step\": %.3f, "
               "\"pool_eq_units\": %s, \"corename\": \"%s\"}\n",
               k == 0 ? "unit" : "pool", k == 0 ? U : P, N, beam, L, threads, tokens, t[k][0],
               t[k][reps / 2], (double)tokens / t[k][0], (double)tokens / t[k][reps / 2],
               steps[k] ? (double)hrows[k] / (double)steps[k] : 0.0, same ? "true" : "false",
               ops_blas_corename());
    }
    beam_state_free(bs);
    s2t_close(m);
    sl_npy_free(&ids);
    for (int k = 0; k < 2; k++) {
        free(o[k].ids);
        free(o[k].n);
        free(o[k].score);
    }
    free(src);
    free(sp);
    free(sl);
    return same ? 0 : 1;
}
