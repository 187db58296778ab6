// common/hist.c — see hist.h.
#include "common/hist.h"

#include <math.h>
#include <string.h>

#define HIST_LO 1e-6
#define HIST_RATIO 1.01

void sl_hist_init(sl_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = HUGE_VAL;
    h->max = -HUGE_VAL;
}

// Bin k of a sign holds magnitudes in [HIST_LO * 1.01^k, HIST_LO * 1.01^(k+1)).
static int magnitude_bin(double m)
{
    double k = floor(log(m / HIST_LO) / log(HIST_RATIO));
    if (k < 0)
        return 0;
    if (k > SL_HIST_PER_SIGN - 1)
        return SL_HIST_PER_SIGN - 1;
    return (int)k;
}

void sl_hist_add(sl_hist *h, double x)
{
    if (!isfinite(x)) {
        h->n_nonfinite++;
        return;
    }
    h->n++;
    if (x < h->min)
        h->min = x;
    if (x > h->max)
        h->max = x;
    double m = fabs(x);
    if (m < HIST_LO)
        h->bin[SL_HIST_PER_SIGN]++;
    else if (x > 0)
        h->bin[SL_HIST_PER_SIGN + 1 + magnitude_bin(m)]++;
    else
        h->bin[SL_HIST_PER_SIGN - 1 - magnitude_bin(m)]++;
}

double sl_hist_percentile(const sl_hist *h, double p)
{
    if (h->n == 0 || !(p > 0.0) || p > 100.0)
        return (double)NAN;
    // ceil(p * n / 100) is exact for integer p: p * n is an exact integer here and a
    // quotient that is not an integer stays at least 0.01 away from one.
    double r = ceil(p * (double)h->n / 100.0);
    uint64_t rank = r < 1.0 ? 1u : (uint64_t)r, seen = 0;
    if (rank == 1)
        return h->min; // the extremes are known exactly
    if (rank >= h->n)
        return h->max;
    int i = 0;
    for (; i < SL_HIST_BINS - 1; i++) {
        seen += h->bin[i];
        if (seen >= rank)
            break;
    }
    double v = 0.0; // the zero bin
    if (i != SL_HIST_PER_SIGN) {
        int pos = i > SL_HIST_PER_SIGN;
        int k = pos ? i - SL_HIST_PER_SIGN - 1 : SL_HIST_PER_SIGN - 1 - i;
        if (k == SL_HIST_PER_SIGN - 1) // the last bin also holds every larger magnitude
            v = pos ? h->max : h->min;
        else
            v = (pos ? 1.0 : -1.0) * HIST_LO * pow(HIST_RATIO, (double)k + 0.5);
    }
    return v < h->min ? h->min : v > h->max ? h->max : v;
}
