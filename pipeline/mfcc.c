// pipeline/mfcc.c — see mfcc.h. Follows torchaudio 0.13 compliance/kaldi.py
// (_get_window, fbank, mfcc) and functional.compute_deltas step by step.
#include "pipeline/mfcc.h"

#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    N_FFT = 512, // next power of two above the 400-sample frame
    N_BINS = N_FFT / 2 + 1,
    N_MEL = 23
};

struct mfcc_state {
    float window[MFCC_FRAME_LEN]; // povey: hann(400, periodic=False) ^ 0.85
    float mel[N_MEL][N_BINS];     // triangular weights over the power spectrum (last bin 0)
    int mel_lo[N_MEL], mel_hi[N_MEL]; // non-zero range [lo, hi) of each filter
    float dct[N_MEL][MFCC_N_CEPS]; // Kaldi DCT times the lifter
    float *in;                    // (N_FFT) fftwf_malloc'd frame
    fftwf_complex *spec;          // (N_BINS)
    fftwf_plan plan;
    float *feat;                  // (cap, MFCC_DIM)
    size_t cap;
};

static double mel_scale(double f) { return 1127.0 * log(1.0 + f / 700.0); }

void mfcc_state_free(mfcc_state *s)
{
    if (!s)
        return;
    if (s->plan)
        fftwf_destroy_plan(s->plan);
    fftwf_free(s->in);
    fftwf_free(s->spec);
    free(s->feat);
    free(s);
}

int mfcc_state_new(mfcc_state **out, sl_err *err)
{
    *out = NULL;
    mfcc_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_fail(err, SL_ENOMEM, "mfcc: out of memory");
    s->in = fftwf_malloc(sizeof(float) * N_FFT);
    s->spec = fftwf_malloc(sizeof(fftwf_complex) * N_BINS);
    if (!s->in || !s->spec) {
        mfcc_state_free(s);
        return sl_fail(err, SL_ENOMEM, "mfcc: out of memory");
    }
    // FFTW_ESTIMATE: no timing runs, so the plan (and the rounding) is the same on every run.
    s->plan = fftwf_plan_dft_r2c_1d(N_FFT, s->in, s->spec, FFTW_ESTIMATE);
    if (!s->plan) {
        mfcc_state_free(s);
        return sl_fail(err, SL_ENOMEM, "mfcc: FFTW could not plan a %d-point real FFT", N_FFT);
    }
    const double pi = 3.14159265358979323846;
    for (int j = 0; j < MFCC_FRAME_LEN; j++)
        s->window[j] = (float)pow(0.5 - 0.5 * cos(2.0 * pi * j / (MFCC_FRAME_LEN - 1)), 0.85);
    // ref: get_mel_banks with low_freq 20, high_freq 0 -> nyquist, no VTLN warp.
    double lo = mel_scale(20.0), hi = mel_scale(0.5 * MFCC_SAMPLE_HZ);
    double delta = (hi - lo) / (N_MEL + 1);
    double bin_hz = (double)MFCC_SAMPLE_HZ / N_FFT;
    for (int m = 0; m < N_MEL; m++) {
        double left = lo + m * delta, center = lo + (m + 1) * delta, right = lo + (m + 2) * delta;
        s->mel_lo[m] = N_BINS;
        s->mel_hi[m] = 0;
        for (int k = 0; k < N_FFT / 2; k++) { // ref: the Nyquist bin gets weight 0
            double mk = mel_scale(bin_hz * k);
            double up = (mk - left) / (center - left), down = (right - mk) / (right - center);
            double w = fmax(0.0, fmin(up, down));
            s->mel[m][k] = (float)w;
            if (w > 0.0) {
                if (k < s->mel_lo[m])
                    s->mel_lo[m] = k;
                s->mel_hi[m] = k + 1;
            }
        }
        if (s->mel_hi[m] == 0)
            s->mel_lo[m] = 0;
    }
    // ref: _get_dct_matrix (create_dct "ortho", column 0 = sqrt(1/23)) and
    // _get_lifter_coeffs, folded into one [23, 13] matrix.
    for (int n = 0; n < N_MEL; n++)
        for (int k = 0; k < MFCC_N_CEPS; k++) {
            double d = k == 0 ? sqrt(1.0 / N_MEL)
                              : cos(pi / N_MEL * (n + 0.5) * k) * sqrt(2.0 / N_MEL);
            double lifter = 1.0 + 0.5 * 22.0 * sin(pi * k / 22.0);
            s->dct[n][k] = (float)(d * lifter);
        }
    *out = s;
    return SL_OK;
}

size_t mfcc_n_frames(size_t n)
{
    return n < MFCC_FRAME_LEN ? 0 : 1 + (n - MFCC_FRAME_LEN) / MFCC_FRAME_SHIFT;
}

// 13 liftered cepstra of the frame starting at x.
static void frame_ceps(mfcc_state *s, const float *x, float *ceps)
{
    float *f = s->in;
    double sum = 0.0;
    for (int j = 0; j < MFCC_FRAME_LEN; j++)
        sum += (double)x[j];
    float mean = (float)(sum / MFCC_FRAME_LEN);
    for (int j = 0; j < MFCC_FRAME_LEN; j++)
        f[j] = x[j] - mean;
    // ref: pre-emphasis against the replicate-padded previous sample: f[0] -= 0.97 f[0].
    for (int j = MFCC_FRAME_LEN - 1; j > 0; j--)
        f[j] = f[j] - 0.97f * f[j - 1];
    f[0] = f[0] - 0.97f * f[0];
    for (int j = 0; j < MFCC_FRAME_LEN; j++)
        f[j] *= s->window[j];
    memset(f + MFCC_FRAME_LEN, 0, sizeof(float) * (N_FFT - MFCC_FRAME_LEN));
    fftwf_execute(s->plan);
    float power[N_BINS];
    for (int k = 0; k < N_BINS; k++)
        power[k] = s->spec[k][0] * s->spec[k][0] + s->spec[k][1] * s->spec[k][1];
    float logmel[N_MEL];
    for (int m = 0; m < N_MEL; m++) {
        float e = 0.0f;
        for (int k = s->mel_lo[m]; k < s->mel_hi[m]; k++)
            e += s->mel[m][k] * power[k];
        logmel[m] = logf(e > FLT_EPSILON ? e : FLT_EPSILON); // ref: max(e, eps).log()
    }
    for (int k = 0; k < MFCC_N_CEPS; k++) {
        float c = 0.0f;
        for (int m = 0; m < N_MEL; m++)
            c += logmel[m] * s->dct[m][k];
        ceps[k] = c;
    }
}

// out[t*MFCC_DIM + k] = compute_deltas of column in[t*MFCC_DIM + k] over t, window 5:
// (-2 c[t-2] - c[t-1] + c[t+1] + 2 c[t+2]) / 10 with the ends replicated.
static void deltas(float *feat, size_t T, int from, int to)
{
    for (size_t t = 0; t < T; t++) {
        size_t m2 = t >= 2 ? t - 2 : 0, m1 = t >= 1 ? t - 1 : 0;
        size_t p1 = t + 1 < T ? t + 1 : T - 1, p2 = t + 2 < T ? t + 2 : T - 1;
        for (int k = 0; k < MFCC_N_CEPS; k++) {
            float s = -2.0f * feat[m2 * MFCC_DIM + from + k] - feat[m1 * MFCC_DIM + from + k] +
                      feat[p1 * MFCC_DIM + from + k] + 2.0f * feat[p2 * MFCC_DIM + from + k];
            feat[t * MFCC_DIM + to + k] = s / 10.0f;
        }
    }
}

int mfcc_compute(mfcc_state *s, const float *pcm, size_t n, const float **feat,
                 size_t *n_frames, sl_err *err)
{
    *feat = NULL;
    *n_frames = 0;
    size_t T = mfcc_n_frames(n);
    if (T == 0)
        return sl_fail(err, SL_EFORMAT, "mfcc: %zu samples, need at least %d (one 25 ms frame)",
                       n, MFCC_MIN_SAMPLES);
    if (T > s->cap) {
        float *b = realloc(s->feat, T * MFCC_DIM * sizeof(float));
        if (!b)
            return sl_fail(err, SL_ENOMEM, "mfcc: out of memory for %zu frames", T);
        s->feat = b;
        s->cap = T;
    }
    for (size_t t = 0; t < T; t++)
        frame_ceps(s, pcm + t * MFCC_FRAME_SHIFT, s->feat + t * MFCC_DIM);
    deltas(s->feat, T, 0, MFCC_N_CEPS);
    deltas(s->feat, T, MFCC_N_CEPS, 2 * MFCC_N_CEPS);
    *feat = s->feat;
    *n_frames = T;
    return SL_OK;
}
