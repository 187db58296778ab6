// pipeline/segment.c — see segment.h. Frame levels since the current cut, one decision
// per window, percentiles by sorting a copy (a few thousand doubles per segment).
#include "pipeline/segment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct seg_cutter {
    seg_params p;
    int64_t w, minf, look, pausef; // frames: max, min, window beyond max, min pause
    int64_t pos;     // current cut (sample)
    int64_t end;     // samples pushed so far end here (start + pushed)
    double *lv;      // levels of the frames since pos (dB); lv_n full frames
    size_t lv_n, lv_cap;
    double acc;      // the frame being filled: sum of squares of acc_n samples
    int acc_n;
    int finished, done;
    double *sorted;  // scratch, window size
    unsigned char *quiet;
};

seg_params seg_default_params(void)
{
    seg_params p = {30.0f, 1.0f, 0.2f, 12.0f, -60.0f, 1};
    return p;
}

static int64_t frames_of(float seconds) { return (int64_t)lround((double)seconds * 100.0); }

static int check_params(seg_params p, sl_err *err)
{
    if (!(p.max_seconds > 0.0f && p.max_seconds <= 3600.0f))
        return sl_fail(err, SL_EINVAL, "segment: max_seconds %g must be in (0, 3600]",
                       (double)p.max_seconds);
    if (!(p.min_seconds >= 0.01f) || frames_of(p.max_seconds) < 2 * frames_of(p.min_seconds))
        return sl_fail(err, SL_EINVAL, "segment: min_seconds %g must be >= 0.01 and at most "
                       "half of max_seconds %g", (double)p.min_seconds, (double)p.max_seconds);
    if (!(p.min_pause_seconds >= 0.02f && p.min_pause_seconds <= p.max_seconds))
        return sl_fail(err, SL_EINVAL, "segment: min_pause_seconds %g must be in [0.02, "
                       "max_seconds]", (double)p.min_pause_seconds);
    if (!(p.pause_db >= 0.0f && p.pause_db < 200.0f))
        return sl_fail(err, SL_EINVAL, "segment: pause_db %g must be in [0, 200)",
                       (double)p.pause_db);
    if (!isfinite(p.silence_dbfs))
        return sl_fail(err, SL_EINVAL, "segment: silence_dbfs must be finite");
    return SL_OK;
}

int seg_open(seg_cutter **out, seg_params p, int64_t start, sl_err *err)
{
    *out = NULL;
    int rc = check_params(p, err);
    if (rc)
        return rc;
    if (start < 0)
        return sl_fail(err, SL_EINVAL, "segment: start %lld is negative", (long long)start);
    seg_cutter *c = calloc(1, sizeof *c);
    if (!c)
        return sl_fail(err, SL_ENOMEM, "segment: out of memory");
    c->p = p;
    c->w = frames_of(p.max_seconds);
    c->minf = frames_of(p.min_seconds);
    c->look = c->minf + 100;
    c->pausef = frames_of(p.min_pause_seconds);
    c->pos = c->end = start;
    size_t win = (size_t)(c->w + c->look) + 1;
    c->lv_cap = win * 2;
    c->lv = malloc(c->lv_cap * sizeof(double));
    c->sorted = malloc(win * sizeof(double));
    c->quiet = malloc(win);
    if (!c->lv || !c->sorted || !c->quiet) {
        seg_close(c);
        return sl_fail(err, SL_ENOMEM, "segment: out of memory");
    }
    *out = c;
    return SL_OK;
}

void seg_close(seg_cutter *c)
{
    if (!c)
        return;
    free(c->lv);
    free(c->sorted);
    free(c->quiet);
    free(c);
}

static double level_db(double sum_sq, int n) { return 10.0 * log10(sum_sq / n + 1e-10); }

// Appends a level, keeping room for one more (seg_finish's partial frame never grows).
static int add_level(seg_cutter *c, double v)
{
    if (c->lv_n + 2 > c->lv_cap) {
        double *b = realloc(c->lv, c->lv_cap * 2 * sizeof(double));
        if (!b)
            return -1;
        c->lv = b;
        c->lv_cap *= 2;
    }
    c->lv[c->lv_n++] = v;
    return 0;
}

int seg_push(seg_cutter *c, const float *x, size_t n, sl_err *err)
{
    if (c->finished)
        return sl_fail(err, SL_EINVAL, "segment: samples pushed after seg_finish");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return sl_fail(err, SL_EINVAL, "segment: sample %lld is not finite",
                           (long long)(c->end + (int64_t)i));
        c->acc += (double)x[i] * (double)x[i];
        if (++c->acc_n == SEG_FRAME) {
            if (add_level(c, level_db(c->acc, c->acc_n)))
                return sl_fail(err, SL_ENOMEM, "segment: out of memory");
            c->acc = 0.0;
            c->acc_n = 0;
        }
    }
    c->end += (int64_t)n;
    return SL_OK;
}

void seg_finish(seg_cutter *c)
{
    if (c->finished)
        return;
    c->finished = 1;
    // The last, partial frame counts with the samples it has (add_level always leaves
    // room for it).
    if (c->acc_n) {
        c->lv[c->lv_n++] = level_db(c->acc, c->acc_n);
        c->acc_n = 0;
    }
}

int seg_done(const seg_cutter *c) { return c->done; }

int64_t seg_pos(const seg_cutter *c) { return c->pos; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// The cut (in frames after pos) for a window of mw frames; cuts allowed in
// [lo_cut, hi_cut]. Sets *how.
static int64_t place_cut(seg_cutter *c, int64_t mw, int64_t lo_cut, int64_t hi_cut, int *how)
{
    memcpy(c->sorted, c->lv, (size_t)mw * sizeof(double));
    qsort(c->sorted, (size_t)mw, sizeof(double), cmp_double);
    double hi = c->sorted[(size_t)floor(0.95 * (double)(mw - 1))];
    double lo = c->sorted[(size_t)floor(0.10 * (double)(mw - 1))];
    double thr = hi - lo >= (double)c->p.pause_db ? lo + (hi - lo) / 4.0 : -HUGE_VAL;
    for (int64_t i = 0; i < mw; i++)
        c->quiet[i] = c->lv[i] < thr || c->lv[i] < (double)c->p.silence_dbfs;
    int64_t best = -1, gap = -1, gap_len = 0, lo2 = lo_cut > hi_cut / 2 ? lo_cut : hi_cut / 2;
    for (int64_t i = 0; i < mw;) {
        if (!c->quiet[i]) {
            i++;
            continue;
        }
        int64_t r0 = i;
        while (i < mw && c->quiet[i])
            i++;
        int64_t r1 = i, mid = (r0 + r1) / 2;
        // A pause: the cut strictly inside the run, within the allowed range.
        int64_t a = r0 + 1 > lo_cut ? r0 + 1 : lo_cut, b = r1 - 1 < hi_cut ? r1 - 1 : hi_cut;
        if (r1 - r0 >= c->pausef && a <= b) {
            int64_t cut = clamp64(mid, a, b);
            best = cut > best ? cut : best;
        }
        // A shorter gap: its edges count, in the second half of the range.
        a = r0 > lo2 ? r0 : lo2;
        b = r1 < hi_cut ? r1 : hi_cut;
        if (a <= b && r1 - r0 >= gap_len) { // >=: ties go to the later run
            gap = clamp64(mid, a, b);
            gap_len = r1 - r0;
        }
    }
    if (best >= 0) {
        *how = SEG_CUT_PAUSE;
        return best;
    }
    if (gap >= 0) {
        *how = SEG_CUT_GAP;
        return gap;
    }
    *how = SEG_CUT_HARD;
    return hi_cut;
}

// Takes the first n frames (the segment just decided) off the level array; 1 when
// every one of them is below silence_dbfs.
static int take_frames(seg_cutter *c, size_t n)
{
    int silent = 1;
    for (size_t i = 0; i < n && i < c->lv_n; i++)
        silent &= c->lv[i] < (double)c->p.silence_dbfs;
    size_t k = n < c->lv_n ? n : c->lv_n;
    memmove(c->lv, c->lv + k, (c->lv_n - k) * sizeof(double));
    c->lv_n -= k;
    return silent;
}

int seg_next(seg_cutter *c, seg_span *out)
{
    while (!c->done) {
        int64_t win = c->w + c->look;
        if (!c->finished && (int64_t)c->lv_n < win)
            return 0;
        int64_t rem = c->end - c->pos; // meaningful once finished
        seg_span s = {c->pos, 0, 0, 0};
        if (c->finished && rem <= c->w * SEG_FRAME) {
            c->done = 1;
            if (rem == 0)
                return 0;
            s.end = c->end;
            s.how = SEG_END;
            s.silent = take_frames(c, c->lv_n);
            c->pos = c->end;
        } else {
            int64_t mw = (int64_t)c->lv_n < win ? (int64_t)c->lv_n : win;
            int64_t hi_cut = c->w;
            if (c->finished && (rem - c->minf * SEG_FRAME) / SEG_FRAME < hi_cut)
                hi_cut = (rem - c->minf * SEG_FRAME) / SEG_FRAME;
            int64_t cut = place_cut(c, mw, c->minf, hi_cut, &s.how);
            s.end = c->pos + cut * SEG_FRAME;
            s.silent = take_frames(c, (size_t)cut);
            c->pos = s.end;
        }
        if (s.silent && c->p.drop_silent)
            continue;
        *out = s;
        return 1;
    }
    return 0;
}

int seg_join_chunks(const seg_chunk *chunks, size_t n, int64_t n_samples, seg_params p,
                    seg_span *out, size_t *n_out, sl_err *err)
{
    *n_out = 0;
    int rc = check_params(p, err);
    if (rc)
        return rc;
    int64_t max = frames_of(p.max_seconds) * SEG_FRAME;
    double prev_end = 0.0;
    size_t k = 0;
    seg_span cur = {0, 0, 0, 0};
    int have = 0;
    for (size_t i = 0; i < n; i++) {
        double a = chunks[i].start, b = chunks[i].end;
        if (!isfinite(a) || !isfinite(b) || a < 0.0 || b < a || a > 1e9)
            return sl_fail(err, SL_EINVAL, "segment: VAD chunk %zu [%g, %g]: not a finite "
                           "[start, end] with 0 <= start <= end", i, a, b);
        if (a < prev_end)
            return sl_fail(err, SL_EINVAL, "segment: VAD chunk %zu [%g, %g] starts before the "
                           "previous chunk's end %g (chunks must be sorted and disjoint)", i, a, b,
                           prev_end);
        prev_end = b;
        int64_t s = llround(a * SEG_RATE), e = llround(b * SEG_RATE);
        if (n_samples > 0) {
            if (s >= n_samples)
                continue;
            e = e < n_samples ? e : n_samples;
        }
        if (e <= s)
            continue;
        if (e - s > max) {
            if (have)
                out[k++] = cur;
            seg_span l = {s, e, SEG_VAD_LONG, 0};
            out[k++] = l;
            have = 0;
        } else if (have && e - cur.start <= max) {
            cur.end = e;
        } else {
            if (have)
                out[k++] = cur;
            seg_span v = {s, e, SEG_VAD, 0};
            cur = v;
            have = 1;
        }
    }
    if (have)
        out[k++] = cur;
    *n_out = k;
    return SL_OK;
}
