// common/hist.h — a streaming percentile sketch of fixed size: a histogram of
// log-spaced bins, so `spearlabel stat` summarises any number of rows in the
// same ~56 KiB per signal without keeping the values.
//
// Bins: magnitudes in [1e-6, 1e9) in bins whose bounds grow by 1 % (lo, 1.01 lo),
// one set per sign, plus one bin for |x| < 1e-6 (counted as 0). A percentile is
// the nearest-rank one (the ceil(p/100 * n)-th smallest value) read as the
// geometric middle of its bin, clamped to the exact min and max seen (ranks 1
// and n give those exactly): within
// 0.5 % (relative) of the exact value for magnitudes in [1e-6, 1e9); 0 for
// smaller ones; the exact extreme beyond 1e9. Non-finite values are counted
// apart (n_nonfinite) and enter no percentile.
//
// No allocation: sl_hist is a plain struct (embed it or allocate it). Not
// thread-safe; one writer.
#pragma once
#include <stdint.h>

#define SL_HIST_PER_SIGN 3472 // ceil(ln(1e15) / ln(1.01))
#define SL_HIST_BINS (2 * SL_HIST_PER_SIGN + 1)

typedef struct sl_hist {
    uint64_t n;           // finite values added
    uint64_t n_nonfinite; // NaN and infinities, not in the bins
    double min, max;      // exact, of the finite values
    uint64_t bin[SL_HIST_BINS]; // negative bins (most negative first), the zero bin, positive
} sl_hist;

void sl_hist_init(sl_hist *h);
void sl_hist_add(sl_hist *h, double x);
// The p-th percentile (0 < p <= 100) of the finite values; NaN when there are none.
double sl_hist_percentile(const sl_hist *h, double p);
