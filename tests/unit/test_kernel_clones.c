// tests/unit/test_kernel_clones.c — pipeline/kernels.c's builds side by side: the
// AVX-512 (x86-64-v4), AVX2 (v3) and baseline x86-64 builds of every kernel, the
// ones the load-time clones run (kern_one_*.c), give the same bits on inputs with
// vector tails; and the library's dispatched kernels give them too. A build this CPU
// cannot run is reported as skipped.
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/kernels.h"
#include "tests/testutil.h"

#define DECL(s)                                                                                   \
    void kern_gelu_##s(const float *x, float *y, size_t n);                                      \
    void kern_add_gelu_##s(float *x, const float *y, size_t n);                                  \
    void kern_add_##s(float *x, const float *y, size_t n);                                       \
    void kern_norm_gelu_rows_##s(float *y, size_t n, size_t c, const float *mean,                \
                                 const float *rstd, const float *g, const float *b);              \
    void kern_layer_norm_##s(float *x, const float *add, size_t n, size_t c, const float *g,     \
                             const float *b, float eps, int gelu, float *y);                     \
    void kern_softmax_rows_unnorm_##s(float *sc, size_t n, size_t c, float *rinv);               \
    void kern_scale_rows_##s(float *x, size_t n, size_t c, size_t ldx, const float *s);         \
    void kern_softmax_rows_masked_##s(float *s, size_t rows, size_t ld, size_t nvb, int causal,  \
                                      size_t n);                                                  \
    void kern_step_attend_##s(const float *Q, size_t ldq, size_t M, const float *K, size_t ts,   \
                              size_t es, const float *V, size_t ldv, size_t nk, size_t dh,       \
                              float scale, float *out, size_t ldo, float *score);
DECL(v4)
DECL(v3)
DECL(base)

typedef struct build {
    const char *name;
    int ok;
    void (*gelu)(const float *, float *, size_t);
    void (*add_gelu)(float *, const float *, size_t);
    void (*add)(float *, const float *, size_t);
    void (*norm_gelu)(float *, size_t, size_t, const float *, const float *, const float *,
                      const float *);
    void (*layer_norm)(float *, const float *, size_t, size_t, const float *, const float *,
                       float, int, float *);
    void (*sm_unnorm)(float *, size_t, size_t, float *);
    void (*scale_rows)(float *, size_t, size_t, size_t, const float *);
    void (*sm_masked)(float *, size_t, size_t, size_t, int, size_t);
    void (*attend)(const float *, size_t, size_t, const float *, size_t, size_t, const float *,
                   size_t, size_t, size_t, float, float *, size_t, float *);
} build;

#define BUILD(s, cond)                                                                            \
    {#s, cond, kern_gelu_##s, kern_add_gelu_##s, kern_add_##s, kern_norm_gelu_rows_##s,          \
     kern_layer_norm_##s, kern_softmax_rows_unnorm_##s, kern_scale_rows_##s,                     \
     kern_softmax_rows_masked_##s, kern_step_attend_##s}

enum { NMAX = 8192 };
static float g_in[8][NMAX];

static void fill(void)
{
    unsigned x = 77u;
    for (int a = 0; a < 8; a++)
        for (size_t i = 0; i < NMAX; i++) {
            x = x * 1103515245u + 12345u;
            g_in[a][i] = (float)((int)(x >> 8) % 20001 - 10000) / 1500.0f; // [-6.7, 6.7]
        }
    for (size_t i = 0; i < NMAX; i++)
        g_in[3][i] = 0.5f + fabsf(g_in[3][i]); // rstd > 0
}

// Runs every kernel of build b on fixed inputs of odd sizes; the outputs go to out
// (n_out floats). Sizes: 1..37 and 301 elements, rows of 5..67 columns, step
// attention over 1..70 keys for 1..9 query rows, dim_head 16..64, both key layouts.
static size_t run_build(const build *b, float *out)
{
    size_t o = 0;
    float t[NMAX], u[NMAX], sc[2048];
    static const size_t ns[] = {1, 2, 7, 8, 15, 16, 17, 31, 33, 37, 301};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        size_t n = ns[i];
        b->gelu(g_in[0], out + o, n), o += n;
        memcpy(out + o, g_in[0], n * 4), b->add_gelu(out + o, g_in[1], n), o += n;
        memcpy(out + o, g_in[0], n * 4), b->add(out + o, g_in[1], n), o += n;
    }
    static const size_t cs[] = {5, 16, 33, 67};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        size_t c = cs[i], n = 7;
        memcpy(out + o, g_in[0], n * c * 4);
        b->norm_gelu(out + o, n, c, g_in[2], g_in[3], g_in[4], g_in[5]), o += n * c;
        for (int gelu = 0; gelu < 2; gelu++) {
            memcpy(t, g_in[0], n * c * 4);
            b->layer_norm(t, g_in[1], n, c, g_in[4], g_in[5], 1e-5f, gelu, out + o), o += n * c;
            memcpy(out + o, t, n * c * 4), o += n * c; // the residual written back
        }
        memcpy(out + o, g_in[0], n * c * 4), b->sm_unnorm(out + o, n, c, out + o + n * c);
        o += n * c + n;
        memcpy(out + o, g_in[0], n * c * 4), b->scale_rows(out + o, n, c, c, g_in[3]), o += n * c;
        for (int causal = 0; causal < 2; causal++) {
            memcpy(out + o, g_in[0], n * c * 4);
            b->sm_masked(out + o, n, c, causal ? 1 : c - 2, causal, c), o += n * c;
        }
    }
    static const size_t nks[] = {1, 7, 8, 9, 31, 70}, Ms[] = {1, 3, 4, 5, 9},
                        dhs[] = {16, 24, 40, 64}; // 16- and 32-dim blocks, tails
    for (size_t a = 0; a < sizeof nks / sizeof *nks; a++)
        for (size_t m = 0; m < sizeof Ms / sizeof *Ms; m++)
            for (size_t d = 0; d < sizeof dhs / sizeof *dhs; d++) {
                size_t nk = nks[a], M = Ms[m], dh = dhs[d], P = 72;
                memset(u, 0, sizeof u);
                b->attend(g_in[0], dh, M, g_in[1], dh * 8, 8, g_in[2], dh, nk, dh, 0.25f, out + o,
                          dh, sc); // cross-attention tiles
                o += M * dh;
                b->attend(g_in[0], dh, M, g_in[1], 8, P, g_in[2], dh, nk, dh, 0.25f, out + o, dh,
                          sc); // transposed cache
                o += M * dh;
            }
    return o;
}

static void test_builds_same_bits(void)
{
    __builtin_cpu_init();
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    build builds[] = {BUILD(base, 1), BUILD(v3, v3), BUILD(v4, v4)};
    // the library's own (load-time dispatched) kernels
    build lib = {"dispatched", 1, kern_gelu, kern_add_gelu, kern_add, kern_norm_gelu_rows,
                 kern_layer_norm, kern_softmax_rows_unnorm, kern_scale_rows,
                 kern_softmax_rows_masked, kern_step_attend};
    fill();
    size_t cap = 1u << 20;
    float *ref = malloc(cap * 4), *got = malloc(cap * 4);
    size_t n = run_build(&builds[0], ref);
    CU_ASSERT_FATAL(n < cap);
    int finite = 1;
    for (size_t i = 0; i < n; i++)
        finite &= isfinite(ref[i]) != 0;
    CU_ASSERT(finite);
    for (int i = 1; i < 3; i++) {
        if (!builds[i].ok) {
            printf("\n  SKIPPED %s build: this CPU cannot run it", builds[i].name);
            continue;
        }
        CU_ASSERT_EQUAL(run_build(&builds[i], got), n);
        CU_ASSERT(memcmp(got, ref, n * 4) == 0);
        printf("\n  %s build == baseline: %zu floats", builds[i].name, n);
    }
    CU_ASSERT_EQUAL(run_build(&lib, got), n);
    CU_ASSERT(memcmp(got, ref, n * 4) == 0);
    free(ref);
    free(got);
}

// The step attention's contract (kernels.h): every score is scale * one fmaf chain
// in dim order, the softmax is kern_softmax_rows_masked's, and every output element
// one fmaf chain in key order, whatever the blocking (4 rows, 16 or 32 dims, tails).
static void test_step_attend_plain_chains(void)
{
    fill();
    static const size_t nks[] = {1, 9, 70}, Ms[] = {1, 4, 5, 9}, dhs[] = {16, 40, 64};
    static float got[9 * 64], want[9 * 64], sc[9 * 72], p[9 * 72];
    int same = 1, cases = 0;
    for (size_t a = 0; a < 3; a++)
        for (size_t m = 0; m < 4; m++)
            for (size_t d = 0; d < 3; d++) {
                size_t nk = nks[a], M = Ms[m], dh = dhs[d], lds = (nk + 7) / 8 * 8;
                const float *Q = g_in[0], *K = g_in[1], *V = g_in[2];
                size_t ldv = dh + 3; // rows apart, as in the self-attention cache
                kern_step_attend(Q, dh, M, K, dh * 8, 8, V, ldv, nk, dh, 0.25f, got, dh, sc);
                for (size_t r = 0; r < M; r++)
                    for (size_t j = 0; j < nk; j++) {
                        float acc = 0.0f;
                        for (size_t e = 0; e < dh; e++)
                            acc = fmaf(Q[r * dh + e], K[(j / 8) * dh * 8 + e * 8 + j % 8], acc);
                        p[r * lds + j] = 0.25f * acc;
                    }
                kern_softmax_rows_masked(p, M, lds, nk, 0, nk);
                for (size_t r = 0; r < M; r++)
                    for (size_t e = 0; e < dh; e++) {
                        float acc = 0.0f;
                        for (size_t j = 0; j < nk; j++)
                            acc = fmaf(p[r * lds + j], V[j * ldv + e], acc);
                        want[r * dh + e] = acc;
                    }
                same &= memcmp(got, want, M * dh * sizeof(float)) == 0;
                // the same in ranges of 16 keys (kern_step_scores / kern_step_values, as
                // s2t.c's float16 cross K/V): the bits of one call
                static float part[9 * 64];
                for (size_t j0 = 0; j0 < nk; j0 += 16)
                    kern_step_scores(Q, dh, M, K + (j0 / 8) * dh * 8, dh * 8, 8,
                                     nk - j0 < 16 ? nk - j0 : 16, dh, 0.25f, sc + j0, lds);
                kern_softmax_rows_masked(sc, M, lds, nk, 0, nk);
                for (size_t j0 = 0; j0 < nk; j0 += 16)
                    kern_step_values(sc + j0, lds, M, V + j0 * ldv, ldv,
                                     nk - j0 < 16 ? nk - j0 : 16, dh, part, dh, j0 > 0);
                same &= memcmp(part, want, M * dh * sizeof(float)) == 0;
                cases++;
            }
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(cases, 36);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"kernels: AVX-512, AVX2, baseline builds and the dispatched ones give the same bits",
         test_builds_same_bits},
        {"kernels: the step attention is one fmaf chain per score and per output element",
         test_step_attend_plain_chains},
        {NULL, NULL},
    };
    return sl_test_main("kernel_clones", cases);
}
