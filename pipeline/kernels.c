// pipeline/kernels.c — see kernels.h. The element-wise work between the matrix
// products of hubert.c and s2t.c / beam.c; the code of each kernel is what those
// files had, moved here unchanged (bits included).
#include "pipeline/kernels.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// Clones picked at load time (ifunc), vectorised at O3, no FMA contraction (ISO C
// mode). KERN_WIDE (HuBERT's kernels) and KERN_STEP (s2t's step kernels): AVX-512,
// AVX2, baseline x86-64 (the step kernels' AVX-512 clone: 2-3x faster step attention
// on Zen 4; tests/unit/test_kernel_clones.c checks that every build gives the same bits).
#if defined(KERN_ONE_TARGET) // tests/unit/test_kernel_clones.c: one build per target, renamed
#define KERN_WIDE __attribute__((optimize("O3"), target(KERN_ONE_TARGET)))
#define KERN_STEP KERN_WIDE
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KERN_WIDE \
    __attribute__((optimize("O3"), target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define KERN_STEP KERN_WIDE
#else
#define KERN_WIDE
#define KERN_STEP
#endif
#define LANES 16 // partial sums of the HuBERT reductions

// ---- exps ----------------------------------------------------------------------------

// clamp87 (HuBERT's softmax): e^x for x <= 0 after subtracting the row max. Cephes
// expf's range reduction and polynomial, 2^n from the exponent bits; below -87.3 the
// result is exp(-87.3) ~ 1.2e-38 instead of a denormal or 0, which no softmax sum can see.
static inline float exp_neg_clamp87(float x)
{
    float xc = x > -87.3f ? x : -87.3f; // also maps NaN to -87.3 (no UB in the cast)
    float t = xc * 1.44269504088896341f + 12582912.0f; // round(x / ln 2) in the low bits
    float n = t - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    float y = p * s;
    return x == x ? y : x; // NaN propagates
}

// flush87 (s2t's softmax): e^x for x <= 0 after subtracting the max, vectorisable:
// x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor polynomial for e^r (relative error
// < 3e-7, about expf's), 2^n from the exponent bits; below -87 it returns 0 (expf: < 1.2e-38).
// Written without a branch, floorf or a float-to-int conversion, so that the softmax
// loops vectorise: GCC 12 (ISO C, trapping math) keeps a loop scalar for an early
// return, for floorf, and for a conversion of a value that passed through a select.
// floor(u) is rint(u) by the 1.5 * 2^23 trick, less 1 where that rounded up; 2^n takes n
// from the low mantissa bits of n + 1.5 * 2^23 (exact for |u| < 2^22). The value is
// that of the form with floorf and an early return, bit for bit, for every float in
// [-100, 88] (the check in tests/unit/test_hubert_kernels.c; below -87 both are 0).
static inline float exp_neg_flush87(float x)
{
    float xc = x >= -87.0f ? x : -87.0f; // also maps NaN to -87
    float u = xc * 1.44269504088896341f + 0.5f;
    float k = (u + 12582912.0f) - 12582912.0f; // rint(u)
    float n = k - (k > u ? 1.0f : 0.0f);       // floor(u)
    float r = xc - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f +
                                                  r * (0.008333334f + r * 0.0013888889f)))));
    float m = n + 12582912.0f; // n in the low mantissa bits
    uint32_t mb;
    memcpy(&mb, &m, sizeof mb);
    uint32_t bits = (mb - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    float y = p * s;
    return x < -87.0f ? 0.0f : (x == x ? y : x); // NaN propagates
}

float kern_exp_neg_clamp87(float x) { return exp_neg_clamp87(x); }
float kern_exp_neg_flush87(float x) { return exp_neg_flush87(x); }

// ---- HuBERT --------------------------------------------------------------------------

// erf(x) as x P(x^2) / Q(x^2) on [-4, 4] (Eigen's generic_fast_erf_float; outside,
// erf is +-1 to float precision). Measured over every float in [-30, 30] against
// double erf: max |error| 4.4e-7 for erf, and for gelu_fast below 1.5e-6 absolute
// (about 3 ulp of the result, at x = 5.6) against 4.5e-7 for 0.5 x (1 + erff(x/sqrt 2));
// tests/unit/test_hubert_kernels.c keeps both bounds. NaN in, NaN out.
static inline float erf_fast(float x)
{
    x = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x);
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

static inline float gelu_fast(float x) { return 0.5f * x * (1.0f + erf_fast(x * 0.70710678118654752f)); }

static inline float sum_lanes(const float *acc)
{
    float s[8];
    for (int l = 0; l < 8; l++)
        s[l] = acc[l] + acc[l + 8];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

// One pointer, so the loop vectorises without a run-time overlap check (HuBERT
// always calls it in place).
KERN_WIDE static void gelu_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = gelu_fast(x[i]);
}

void kern_gelu(const float *x, float *y, size_t n)
{
    if (y != x)
        memmove(y, x, n * sizeof(float));
    gelu_inplace(y, n);
}

KERN_WIDE void kern_add_gelu(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += gelu_fast(y[i]);
}

KERN_WIDE void kern_add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

KERN_WIDE void kern_norm_gelu_rows(float *y, size_t n, size_t c, const float *mean,
                                   const float *rstd, const float *g, const float *b)
{
    for (size_t t = 0; t < n; t++) {
        float *r = y + t * c;
        for (size_t i = 0; i < c; i++)
            r[i] = gelu_fast((r[i] - mean[i]) * rstd[i] * g[i] + b[i]);
    }
}

KERN_WIDE void kern_layer_norm(float *x, const float *add, size_t n, size_t c, const float *g,
                               const float *b, float eps, int gelu, float *y)
{
    for (size_t t = 0; t < n; t++) {
        float *r = x + t * c;
        float *o = y + t * c;
        float acc[LANES] = {0};
        size_t i = 0;
        if (add) {
            const float *a = add + t * c;
            for (; i + LANES <= c; i += LANES)
                for (int l = 0; l < LANES; l++) {
                    r[i + l] += a[i + l];
                    acc[l] += r[i + l];
                }
            for (size_t j = i; j < c; j++)
                r[j] += a[j];
        } else {
            for (; i + LANES <= c; i += LANES)
                for (int l = 0; l < LANES; l++)
                    acc[l] += r[i + l];
        }
        float sum = sum_lanes(acc);
        for (; i < c; i++)
            sum += r[i];
        float mean = sum / (float)c;
        float vacc[LANES] = {0};
        for (i = 0; i + LANES <= c; i += LANES)
            for (int l = 0; l < LANES; l++) {
                float d = r[i + l] - mean;
                vacc[l] += d * d;
            }
        float var = sum_lanes(vacc);
        for (; i < c; i++) {
            float d = r[i] - mean;
            var += d * d;
        }
        var /= (float)c;
        float inv = 1.0f / sqrtf(var + eps);
        if (gelu)
            for (i = 0; i < c; i++)
                o[i] = gelu_fast((r[i] - mean) * inv * g[i] + b[i]);
        else
            for (i = 0; i < c; i++)
                o[i] = (r[i] - mean) * inv * g[i] + b[i];
    }
}

KERN_WIDE void kern_softmax_rows_unnorm(float *sc, size_t n, size_t c, float *rinv)
{
    for (size_t t = 0; t < n; t++) {
        float *r = sc + t * c;
        float mx[LANES];
        for (int l = 0; l < LANES; l++)
            mx[l] = r[0];
        size_t i = 0;
        for (; i + LANES <= c; i += LANES)
            for (int l = 0; l < LANES; l++)
                mx[l] = r[i + l] > mx[l] ? r[i + l] : mx[l];
        float m = mx[0];
        for (int l = 1; l < LANES; l++)
            m = mx[l] > m ? mx[l] : m;
        for (; i < c; i++)
            m = r[i] > m ? r[i] : m;
        float acc[LANES] = {0};
        for (i = 0; i + LANES <= c; i += LANES)
            for (int l = 0; l < LANES; l++) {
                float e = exp_neg_clamp87(r[i + l] - m);
                r[i + l] = e;
                acc[l] += e;
            }
        float sum = sum_lanes(acc);
        for (; i < c; i++) {
            r[i] = exp_neg_clamp87(r[i] - m);
            sum += r[i];
        }
        rinv[t] = 1.0f / sum;
    }
}

KERN_WIDE void kern_scale_rows(float *x, size_t n, size_t c, size_t ldx, const float *s)
{
    for (size_t t = 0; t < n; t++)
        for (size_t i = 0; i < c; i++)
            x[t * ldx + i] *= s[t];
}

// ---- speech->text --------------------------------------------------------------------

// ref: F.normalize(x) * sqrt(dim) * gamma, F.normalize dividing by max(||x||, 1e-12).
void kern_rmsnorm_rows(const float *x, size_t n, size_t d, const float *gamma, float *y)
{
    float scale = sqrtf((float)d);
    for (size_t r = 0; r < n; r++) {
        const float *a = x + r * d;
        float *b = y + r * d;
        double ss = 0.0;
        for (size_t i = 0; i < d; i++)
            ss += (double)a[i] * (double)a[i];
        float nrm = (float)sqrt(ss);
        float inv = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
        for (size_t i = 0; i < d; i++)
            b[i] = a[i] * inv * scale * gamma[i];
    }
}

void kern_geglu_rows(float *f, size_t n, size_t inner)
{
    for (size_t r = 0; r < n; r++) {
        float *a = f + r * 2 * inner;
        for (size_t i = 0; i < inner; i++) {
            float g = a[inner + i];
            // exact erf GELU (F.gelu default); x = GELU(gate) * a
            a[i] *= 0.5f * g * (1.0f + erff(g * 0.70710678118654752f));
        }
    }
}

KERN_STEP void kern_softmax_rows_masked(float *s, size_t rows, size_t ld, size_t n_valid_base,
                                        int causal, size_t n)
{
    enum { R = 8 }; // rows whose sums run side by side
    for (size_t r0 = 0; r0 < rows; r0 += R) {
        size_t nr = rows - r0 < R ? rows - r0 : R, nv[R], nmin = n;
        for (size_t q = 0; q < nr; q++) {
            float *x = s + (r0 + q) * ld;
            nv[q] = causal ? n_valid_base + r0 + q : n_valid_base;
            if (nv[q] > n)
                nv[q] = n;
            nmin = nv[q] < nmin ? nv[q] : nmin;
            // The max in LANES lanes: a max does not depend on the order it is taken in
            // (a NaN is skipped either way; which of +0/-0 wins changes no exp below).
            float mx[LANES];
            for (int l = 0; l < LANES; l++)
                mx[l] = -FLT_MAX;
            size_t j = 0;
            for (; j + LANES <= nv[q]; j += LANES)
                for (int l = 0; l < LANES; l++)
                    mx[l] = x[j + l] > mx[l] ? x[j + l] : mx[l];
            float m = -FLT_MAX;
            for (int l = 0; l < LANES; l++)
                m = mx[l] > m ? mx[l] : m;
            for (; j < nv[q]; j++)
                m = x[j] > m ? x[j] : m;
            for (j = 0; j < nv[q]; j++)
                x[j] = exp_neg_flush87(x[j] - m);
        }
        // Each row's sum in key order, one chain per row; the rows' chains interleave
        // (a float add's latency, not its throughput, bounded the one-row loop).
        float sum[R] = {0};
        for (size_t j = 0; j < nmin; j++)
            for (size_t q = 0; q < nr; q++)
                sum[q] += s[(r0 + q) * ld + j];
        for (size_t q = 0; q < nr; q++) {
            float *x = s + (r0 + q) * ld;
            for (size_t j = nmin; j < nv[q]; j++)
                sum[q] += x[j];
            float inv = 1.0f / sum[q];
            for (size_t j = 0; j < nv[q]; j++)
                x[j] *= inv;
            for (size_t j = nv[q]; j < n; j++)
                x[j] = 0.0f;
        }
    }
}

void kern_log_softmax_row(const float *logits, int V, int suppress, float *lp)
{
    float mx = -FLT_MAX;
    for (int i = 0; i < V; i++)
        if (i != suppress && logits[i] > mx)
            mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < V; i++)
        if (i != suppress)
            sum += exp((double)(logits[i] - mx));
    float lse = mx + (float)log(sum);
    for (int i = 0; i < V; i++)
        lp[i] = i == suppress ? -INFINITY : logits[i] - lse;
}

// Step attention: every score / output element is a chain of fused multiply-adds in
// key (or dim) order, computed the same way in a block of 4 rows and alone, so the
// bits do not depend on how many rows share the keys. fmaf: one rounding, the same
// result in the AVX2 clone and the default one.
//
// S[r, j] = scale * sum_e Q[r, e] K[e, j] for j < nk, key layout as in kernels.h.
KERN_STEP static void step_scores(const float *Q, size_t ldq, size_t M, const float *K,
                                  size_t ts, size_t es, size_t nk, size_t dh, float scale,
                                  float *S, size_t lds)
{
    size_t nt = nk / 8;
    for (size_t t = 0; t < nt; t++) {
        const float *T = K + t * ts;
        size_t r = 0;
        for (; r + 4 <= M; r += 4) {
            const float *q0 = Q + r * ldq, *q1 = q0 + ldq, *q2 = q1 + ldq, *q3 = q2 + ldq;
            float a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};
            for (size_t e = 0; e < dh; e++) {
                const float *b = T + e * es;
                // the tile two ahead (cross-attention: 4 KiB on): 5-8 % off a step's
                // attention over streamed keys; no effect on bits
                __builtin_prefetch(b + 2 * ts);
                for (int l = 0; l < 8; l++) {
                    a0[l] = fmaf(q0[e], b[l], a0[l]);
                    a1[l] = fmaf(q1[e], b[l], a1[l]);
                    a2[l] = fmaf(q2[e], b[l], a2[l]);
                    a3[l] = fmaf(q3[e], b[l], a3[l]);
                }
            }
            for (int l = 0; l < 8; l++) {
                S[r * lds + t * 8 + (size_t)l] = scale * a0[l];
                S[(r + 1) * lds + t * 8 + (size_t)l] = scale * a1[l];
                S[(r + 2) * lds + t * 8 + (size_t)l] = scale * a2[l];
                S[(r + 3) * lds + t * 8 + (size_t)l] = scale * a3[l];
            }
        }
        for (; r < M; r++) {
            const float *q0 = Q + r * ldq;
            float a0[8] = {0};
            for (size_t e = 0; e < dh; e++) {
                const float *b = T + e * es;
                for (int l = 0; l < 8; l++)
                    a0[l] = fmaf(q0[e], b[l], a0[l]);
            }
            for (int l = 0; l < 8; l++)
                S[r * lds + t * 8 + (size_t)l] = scale * a0[l];
        }
    }
    for (size_t j = nt * 8; j < nk; j++) { // the same chain per element, one at a time
        const float *b = K + nt * ts + (j - nt * 8);
        for (size_t r = 0; r < M; r++) {
            const float *q0 = Q + r * ldq;
            float a = 0.0f;
            for (size_t e = 0; e < dh; e++)
                a = fmaf(q0[e], b[e * es], a);
            S[r * lds + j] = scale * a;
        }
    }
}

// out[r, 0..dh) = sum_j P[r, j] V[j, 0..dh) over j < nk, in key order; acc: each chain
// starts from out's value instead of 0 (the next range of keys of the same sums).
KERN_STEP static void step_values(const float *P, size_t lds, size_t M, const float *V,
                                  size_t ldv, size_t nk, size_t dh, float *out, size_t ldo,
                                  int acc)
{
    size_t d0 = 0;
    // 32 dims of 4 rows at a time (8 AVX-512 registers): half as many passes over the
    // values as 16 at a time; each element's chain is the same either way.
    for (; d0 + 32 <= dh; d0 += 32) {
        size_t r = 0;
        for (; r + 4 <= M; r += 4) {
            const float *p0 = P + r * lds, *p1 = p0 + lds, *p2 = p1 + lds, *p3 = p2 + lds;
            float a0[32], a1[32], a2[32], a3[32];
            for (int l = 0; l < 32; l++) {
                a0[l] = acc ? out[r * ldo + d0 + (size_t)l] : 0.0f;
                a1[l] = acc ? out[(r + 1) * ldo + d0 + (size_t)l] : 0.0f;
                a2[l] = acc ? out[(r + 2) * ldo + d0 + (size_t)l] : 0.0f;
                a3[l] = acc ? out[(r + 3) * ldo + d0 + (size_t)l] : 0.0f;
            }
            for (size_t j = 0; j < nk; j++) {
                const float *v = V + j * ldv + d0;
                __builtin_prefetch(v + 16 * ldv);
                for (int l = 0; l < 32; l++) {
                    a0[l] = fmaf(p0[j], v[l], a0[l]);
                    a1[l] = fmaf(p1[j], v[l], a1[l]);
                    a2[l] = fmaf(p2[j], v[l], a2[l]);
                    a3[l] = fmaf(p3[j], v[l], a3[l]);
                }
            }
            for (int l = 0; l < 32; l++) {
                out[r * ldo + d0 + (size_t)l] = a0[l];
                out[(r + 1) * ldo + d0 + (size_t)l] = a1[l];
                out[(r + 2) * ldo + d0 + (size_t)l] = a2[l];
                out[(r + 3) * ldo + d0 + (size_t)l] = a3[l];
            }
        }
        for (; r < M; r++) {
            const float *p0 = P + r * lds;
            float a0[32];
            for (int l = 0; l < 32; l++)
                a0[l] = acc ? out[r * ldo + d0 + (size_t)l] : 0.0f;
            for (size_t j = 0; j < nk; j++) {
                const float *v = V + j * ldv + d0;
                for (int l = 0; l < 32; l++)
                    a0[l] = fmaf(p0[j], v[l], a0[l]);
            }
            for (int l = 0; l < 32; l++)
                out[r * ldo + d0 + (size_t)l] = a0[l];
        }
    }
    for (; d0 + 16 <= dh; d0 += 16) {
        size_t r = 0;
        for (; r + 4 <= M; r += 4) {
            const float *p0 = P + r * lds, *p1 = p0 + lds, *p2 = p1 + lds, *p3 = p2 + lds;
            float a0[16], a1[16], a2[16], a3[16];
            for (int l = 0; l < 16; l++) {
                a0[l] = acc ? out[r * ldo + d0 + (size_t)l] : 0.0f;
                a1[l] = acc ? out[(r + 1) * ldo + d0 + (size_t)l] : 0.0f;
                a2[l] = acc ? out[(r + 2) * ldo + d0 + (size_t)l] : 0.0f;
                a3[l] = acc ? out[(r + 3) * ldo + d0 + (size_t)l] : 0.0f;
            }
            for (size_t j = 0; j < nk; j++) {
                const float *v = V + j * ldv + d0;
                // V's rows may be ldv apart (the self-attention cache: the kv heads of
                // a key share a row): a line of each row 16 keys ahead, or the step
                // waits on memory (no effect on bits; a prefetch past the end does not
                // fault)
                __builtin_prefetch(v + 16 * ldv);
                for (int l = 0; l < 16; l++) {
                    a0[l] = fmaf(p0[j], v[l], a0[l]);
                    a1[l] = fmaf(p1[j], v[l], a1[l]);
                    a2[l] = fmaf(p2[j], v[l], a2[l]);
                    a3[l] = fmaf(p3[j], v[l], a3[l]);
                }
            }
            for (int l = 0; l < 16; l++) {
                out[r * ldo + d0 + (size_t)l] = a0[l];
                out[(r + 1) * ldo + d0 + (size_t)l] = a1[l];
                out[(r + 2) * ldo + d0 + (size_t)l] = a2[l];
                out[(r + 3) * ldo + d0 + (size_t)l] = a3[l];
            }
        }
        for (; r < M; r++) {
            const float *p0 = P + r * lds;
            float a0[16];
            for (int l = 0; l < 16; l++)
                a0[l] = acc ? out[r * ldo + d0 + (size_t)l] : 0.0f;
            for (size_t j = 0; j < nk; j++) {
                const float *v = V + j * ldv + d0;
                __builtin_prefetch(v + 16 * ldv);
                for (int l = 0; l < 16; l++)
                    a0[l] = fmaf(p0[j], v[l], a0[l]);
            }
            for (int l = 0; l < 16; l++)
                out[r * ldo + d0 + (size_t)l] = a0[l];
        }
    }
    for (size_t e = d0; e < dh; e++) // dh % 16 tail: the same chain per element
        for (size_t r = 0; r < M; r++) {
            float a = acc ? out[r * ldo + e] : 0.0f;
            for (size_t j = 0; j < nk; j++)
                a = fmaf(P[r * lds + j], V[j * ldv + e], a);
            out[r * ldo + e] = a;
        }
}

void kern_step_attend(const float *Q, size_t ldq, size_t M, const float *K, size_t ts, size_t es,
                      const float *V, size_t ldv, size_t nk, size_t dh, float scale, float *out,
                      size_t ldo, float *score)
{
    size_t lds = (nk + 7) / 8 * 8;
    step_scores(Q, ldq, M, K, ts, es, nk, dh, scale, score, lds);
    kern_softmax_rows_masked(score, M, lds, nk, 0, nk);
    step_values(score, lds, M, V, ldv, nk, dh, out, ldo, 0);
}

void kern_step_scores(const float *Q, size_t ldq, size_t M, const float *K, size_t ts, size_t es,
                      size_t nk, size_t dh, float scale, float *S, size_t lds)
{
    step_scores(Q, ldq, M, K, ts, es, nk, dh, scale, S, lds);
}

void kern_step_values(const float *P, size_t lds, size_t M, const float *V, size_t ldv,
                      size_t nk, size_t dh, float *out, size_t ldo, int acc)
{
    step_values(P, lds, M, V, ldv, nk, dh, out, ldo, acc);
}
