// tests/unit/test_quality.c — the quality signals of a row header (storage/quality.h),
// the filter on them, and the percentile sketch `stat` prints them with (common/hist.h).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"
#include "storage/quality.h"
#include "tests/testutil.h"

static rec_quality of(rec_header h)
{
    rec_quality q;
    rec_quality_of(&h, rec_quality_default_params(), &q);
    return q;
}

// A default row: the EOS was scored but not stored, so the score sums n_text + 1 tokens.
static void test_signals_default_row(void)
{
    rec_quality q = of((rec_header){.n_semantic = 50, .n_text = 19, .duration_s = 2.5f,
                                    .score = -3.0f});
    CU_ASSERT_EQUAL(q.n_text_tokens, 19);
    CU_ASSERT_EQUAL(q.n_source, 50);
    CU_ASSERT_EQUAL(q.n_scored, 20);
    CU_ASSERT_EQUAL(q.score_per_token, -3.0 / 20.0); // exactly: double of the f32 fields
    CU_ASSERT_EQUAL(q.text_per_second, 19.0 / 2.5);
    CU_ASSERT_EQUAL(q.semantic_per_text, 50.0 / 19.0);
    CU_ASSERT_EQUAL(q.flags, 0);
    // The f32 fields are widened, never rounded to float: -0.1f is not -0.1.
    q = of((rec_header){.n_semantic = 3, .n_text = 2, .duration_s = 0.3f, .score = -0.1f});
    CU_ASSERT_EQUAL(q.score_per_token, (double)-0.1f / 3.0);
    CU_ASSERT_EQUAL(q.text_per_second, 2.0 / (double)0.3f);
}

// Max length: no EOS, nothing extra scored; the stored flag carries over.
static void test_signals_maxlen_loop(void)
{
    rec_quality q = of((rec_header){.flags = REC_FLAG_MAXLEN | REC_FLAG_LOOP, .n_semantic = 10,
                                    .n_text = 16, .duration_s = 1.0f, .score = -8.0f});
    CU_ASSERT_EQUAL(q.n_scored, 16);
    CU_ASSERT_EQUAL(q.score_per_token, -0.5);
    CU_ASSERT_EQUAL(q.flags, REC_Q_MAXLEN | REC_Q_LOOP);
}

// Seed layout: the speech EOS ends the semantic ids and, when reached, the text EOS
// ends the text ids; neither counts as a token, the text EOS is still scored.
static void test_signals_seed_layout(void)
{
    rec_quality q = of((rec_header){.flags = REC_FLAG_SEED_EOS, .n_semantic = 51, .n_text = 20,
                                    .duration_s = 2.5f, .score = -3.0f});
    CU_ASSERT_EQUAL(q.n_text_tokens, 19);
    CU_ASSERT_EQUAL(q.n_source, 50);
    CU_ASSERT_EQUAL(q.n_scored, 20);
    CU_ASSERT_EQUAL(q.score_per_token, -3.0 / 20.0); // = the default row above
    CU_ASSERT_EQUAL(q.text_per_second, 19.0 / 2.5);
    CU_ASSERT_EQUAL(q.semantic_per_text, 50.0 / 19.0);
    CU_ASSERT_EQUAL(q.flags, 0); // the layout bit is not a quality flag
    // Seed layout at max length: no EOS stored at the end of the text.
    q = of((rec_header){.flags = REC_FLAG_SEED_EOS | REC_FLAG_MAXLEN, .n_semantic = 51,
                        .n_text = 20, .duration_s = 2.5f, .score = -3.0f});
    CU_ASSERT_EQUAL(q.n_text_tokens, 20);
    CU_ASSERT_EQUAL(q.n_scored, 20);
    CU_ASSERT_EQUAL(q.flags, REC_Q_MAXLEN);
}

// Empty text, no duration, empty seed rows: finite values, flagged too slow.
static void test_signals_edges(void)
{
    rec_quality q = of((rec_header){.n_semantic = 40, .n_text = 0, .duration_s = 2.0f,
                                    .score = -0.25f});
    CU_ASSERT_EQUAL(q.n_scored, 1); // the EOS alone
    CU_ASSERT_EQUAL(q.score_per_token, -0.25);
    CU_ASSERT_EQUAL(q.text_per_second, 0.0);
    CU_ASSERT_EQUAL(q.semantic_per_text, 40.0);
    CU_ASSERT_EQUAL(q.flags, REC_Q_RATE_LOW);
    q = of((rec_header){.n_semantic = 4, .n_text = 5, .duration_s = 0.0f, .score = -1.0f});
    CU_ASSERT_EQUAL(q.text_per_second, 0.0);
    CU_ASSERT_EQUAL(q.flags, REC_Q_RATE_LOW);
    q = of((rec_header){.n_semantic = 4, .n_text = 5, .duration_s = NAN, .score = -1.0f});
    CU_ASSERT_EQUAL(q.text_per_second, 0.0);
    q = of((rec_header){.flags = REC_FLAG_MAXLEN, .n_text = 0, .duration_s = 1.0f});
    CU_ASSERT_EQUAL(q.n_scored, 0);
    CU_ASSERT_EQUAL(q.score_per_token, 0.0); // 0 / max(0, 1)
    q = of((rec_header){.flags = REC_FLAG_SEED_EOS, .n_semantic = 0, .n_text = 0,
                        .duration_s = 1.0f});
    CU_ASSERT_EQUAL(q.n_text_tokens, 0); // a damaged seed row does not wrap around
    CU_ASSERT_EQUAL(q.n_source, 0);
}

// Rate flags: strictly outside [min_rate, max_rate]; the bounds are parameters.
static void test_rate_flags(void)
{
    rec_quality_params p = rec_quality_default_params();
    CU_ASSERT_EQUAL(p.min_rate, 4.0);
    CU_ASSERT_EQUAL(p.max_rate, 30.0);
    rec_quality q;
    rec_header at_max = {.n_semantic = 1, .n_text = 30, .duration_s = 1.0f};
    rec_quality_of(&at_max, p, &q);
    CU_ASSERT_EQUAL(q.flags, 0);
    rec_header over = {.n_semantic = 1, .n_text = 31, .duration_s = 1.0f};
    rec_quality_of(&over, p, &q);
    CU_ASSERT_EQUAL(q.flags, REC_Q_RATE_HIGH);
    rec_header at_min = {.n_semantic = 1, .n_text = 8, .duration_s = 2.0f};
    rec_quality_of(&at_min, p, &q);
    CU_ASSERT_EQUAL(q.flags, 0);
    rec_header under = {.n_semantic = 1, .n_text = 7, .duration_s = 2.0f};
    rec_quality_of(&under, p, &q);
    CU_ASSERT_EQUAL(q.flags, REC_Q_RATE_LOW);
    rec_quality_params bpe = {.min_rate = 1.0, .max_rate = 8.0};
    rec_quality_of(&at_min, bpe, &q); // 4 tokens/s: plausible for BPE
    CU_ASSERT_EQUAL(q.flags, 0);
    rec_quality_of(&over, bpe, &q);
    CU_ASSERT_EQUAL(q.flags, REC_Q_RATE_HIGH);
    rec_quality_params off = {.min_rate = 0.0, .max_rate = HUGE_VAL};
    rec_header empty = {.n_semantic = 1, .n_text = 0, .duration_s = 2.0f};
    rec_quality_of(&empty, off, &q);
    CU_ASSERT_EQUAL(q.flags, 0);
}

static void test_filters(void)
{
    rec_filter none = rec_filter_none(), def = rec_filter_default();
    CU_ASSERT_EQUAL(def.min_score_per_token, -0.2);
    CU_ASSERT_EQUAL(def.drop_flags, REC_Q_ALL);
    CU_ASSERT_EQUAL(def.q.min_rate, 4.0);
    CU_ASSERT_EQUAL(def.q.max_rate, 30.0);
    rec_header good = {.n_semantic = 50, .n_text = 19, .duration_s = 1.5f, .score = -3.9f};
    rec_header low = good, loop = good, fast = good, slow = good;
    low.score = -4.1f; // -0.205 per token
    loop.flags = REC_FLAG_LOOP;
    fast.duration_s = 0.5f; // 38 tokens/s
    slow.duration_s = 10.0f;
    slow.score = -9.0f;
    rec_quality q;
    rec_quality_of(&good, def.q, &q);
    CU_ASSERT_EQUAL(rec_filter_check(&def, &q), 0);
    CU_ASSERT_EQUAL(rec_filter_check(&none, &q), 0);
    rec_quality_of(&low, def.q, &q);
    CU_ASSERT_EQUAL(rec_filter_check(&def, &q), REC_DROP_SCORE);
    CU_ASSERT_EQUAL(rec_filter_check(&none, &q), 0);
    rec_quality_of(&loop, def.q, &q);
    CU_ASSERT_EQUAL(rec_filter_check(&def, &q), REC_Q_LOOP);
    rec_quality_of(&fast, def.q, &q);
    CU_ASSERT_EQUAL(rec_filter_check(&def, &q), REC_Q_RATE_HIGH);
    rec_quality_of(&slow, def.q, &q); // two reasons at once
    CU_ASSERT_EQUAL(rec_filter_check(&def, &q), REC_Q_RATE_LOW | REC_DROP_SCORE);
    // Only the chosen flags drop: a rate filter alone keeps a looping row.
    rec_filter rate = rec_filter_none();
    rate.drop_flags = REC_Q_RATE_HIGH | REC_Q_RATE_LOW;
    rec_quality_of(&loop, rate.q, &q);
    CU_ASSERT_EQUAL(rec_filter_check(&rate, &q), 0);
    // The threshold is inclusive; a row without a number is dropped once it is on.
    rec_filter thr = rec_filter_none();
    thr.min_score_per_token = -0.5;
    q.score_per_token = -0.5;
    CU_ASSERT_EQUAL(rec_filter_check(&thr, &q), 0);
    q.score_per_token = NAN;
    CU_ASSERT_EQUAL(rec_filter_check(&thr, &q), REC_DROP_SCORE);
    CU_ASSERT_EQUAL(rec_filter_check(&none, &q), 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Nearest rank of a sorted array, the definition the sketch approximates.
static double exact_percentile(const double *sorted, size_t n, int p)
{
    size_t r = ((size_t)p * n + 99) / 100;
    return sorted[(r ? r : 1) - 1];
}

static void check_percentiles(sl_hist *h, double *v, size_t n)
{
    static const int ps[] = {1, 5, 25, 50, 75, 95, 99, 100};
    qsort(v, n, sizeof *v, cmp_double);
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
        double want = exact_percentile(v, n, ps[i]), got = sl_hist_percentile(h, ps[i]);
        double tol = fabs(want) < 1e-6 ? 1e-6 : 0.005 * fabs(want);
        if (!(fabs(got - want) <= tol))
            CU_FAIL("percentile outside 0.5 %");
    }
    CU_ASSERT_EQUAL(sl_hist_percentile(h, 100), v[n - 1]); // clamped to the exact max
}

static void test_hist(void)
{
    static sl_hist h;
    sl_hist_init(&h);
    CU_ASSERT(isnan(sl_hist_percentile(&h, 50)));
    // Mixed signs, a zero, tiny and huge magnitudes, and non-finite values apart.
    enum { N = 20011 };
    static double v[N];
    uint64_t s = 42;
    for (size_t i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0; // [0, 1)
        v[i] = i % 7 == 0 ? -u * 0.3 : i % 7 == 1 ? u * 40.0 : (u - 0.5) * exp(20.0 * u - 8.0);
        if (i == 5)
            v[i] = 0.0;
        sl_hist_add(&h, v[i]);
    }
    sl_hist_add(&h, NAN);
    sl_hist_add(&h, HUGE_VAL);
    CU_ASSERT_EQUAL(h.n, N);
    CU_ASSERT_EQUAL(h.n_nonfinite, 2);
    check_percentiles(&h, v, N);
    CU_ASSERT_EQUAL(sl_hist_percentile(&h, 0.0001), v[0]); // rank 1: the exact min
    // One value: every percentile is that value, exactly.
    sl_hist_init(&h);
    sl_hist_add(&h, -0.0625);
    CU_ASSERT_EQUAL(sl_hist_percentile(&h, 1), -0.0625);
    CU_ASSERT_EQUAL(sl_hist_percentile(&h, 99), -0.0625);
    // Few values: nearest rank, as numbers a reader can check by hand.
    sl_hist_init(&h);
    double w[4] = {1.0, 2.0, 3.0, 4.0};
    for (int i = 0; i < 4; i++)
        sl_hist_add(&h, w[i]);
    CU_ASSERT_DOUBLE_EQUAL(sl_hist_percentile(&h, 25), 1.0, 0.005);
    CU_ASSERT_DOUBLE_EQUAL(sl_hist_percentile(&h, 50), 2.0, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(sl_hist_percentile(&h, 51), 3.0, 0.015);
    CU_ASSERT_EQUAL(sl_hist_percentile(&h, 100), 4.0);
    // Beyond 1e9: the last bin reports the exact extreme.
    sl_hist_init(&h);
    sl_hist_add(&h, 5e12);
    sl_hist_add(&h, -7e11);
    CU_ASSERT_EQUAL(sl_hist_percentile(&h, 100), 5e12);
    CU_ASSERT_EQUAL(sl_hist_percentile(&h, 50), -7e11);
}

int main(void)
{
    static const sl_test_case cases[] = {{"signals_default_row", test_signals_default_row},
                                         {"signals_maxlen_loop", test_signals_maxlen_loop},
                                         {"signals_seed_layout", test_signals_seed_layout},
                                         {"signals_edges", test_signals_edges},
                                         {"rate_flags", test_rate_flags},
                                         {"filters", test_filters},
                                         {"hist", test_hist},
                                         {NULL, NULL}};
    return sl_test_main("quality", cases);
}
