// tests/unit/test_segment.c — pipeline/segment: cuts on a long recording of espeak-ng
// sentences joined by pauses of known positions (made at test time), the restart
// property (a cutter opened at any cut repeats the rest exactly, also through
// audio_stream), hard cuts on a tone, silence, VAD-chunk joining.
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/audio.h"
#include "pipeline/audio_stream.h"
#include "pipeline/segment.h"
#include "tests/testutil.h"

#define TWO_PI 6.283185307179586
#define N_SENT 30

static const char *tmp;

// The recording: sentence i spans samples [act0[i], act1[i]] (first and last sample
// louder than 0.02 before noise); the pause after it is (act1[i], act0[i+1]).
static float *rec;
static int64_t rec_n, act0[N_SENT], act1[N_SENT];

static const char *words[] = {"morning", "river", "people", "quietly", "garden", "walked",
                              "towards", "the", "old", "bridge", "under", "grey", "clouds",
                              "while", "children", "played", "near", "a", "small", "house",
                              "every", "evening", "after", "long", "winter", "days"};

static uint64_t lcg_state = 88172645463325252ULL;
static uint32_t lcg(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg_state >> 33);
}

// Appends to a growing buffer.
static void put(float **x, int64_t *n, int64_t *cap, const float *src, int64_t k, float v)
{
    if (*n + k > *cap) {
        while (*n + k > *cap)
            *cap = *cap ? *cap * 2 : 1 << 16;
        *x = realloc(*x, (size_t)*cap * sizeof(float));
    }
    for (int64_t i = 0; i < k; i++)
        (*x)[*n + i] = src ? src[i] : v;
    *n += k;
}

// N_SENT espeak-ng sentences (6-12 words, no punctuation, so no pause inside), each
// followed by a pause of 0.3-1.5 s, after 0.5 s of lead-in; noise at about -55 dBFS
// over everything, so the pauses are found by the local level, not as digital silence.
static int make_recording(void)
{
    audio_reader *r;
    sl_err e;
    audio_params ap = audio_default_params();
    if (audio_reader_new(&r, ap, &e))
        return -1;
    int64_t cap = 0;
    rec_n = 0;
    put(&rec, &rec_n, &cap, NULL, 8000, 0.0f);
    for (int i = 0; i < N_SENT; i++) {
        char text[512] = "", path[4200], cmd[9000];
        int nw = 6 + (int)(lcg() % 7);
        for (int w = 0; w < nw; w++) {
            strcat(text, words[lcg() % (sizeof words / sizeof words[0])]);
            strcat(text, w + 1 < nw ? " " : "");
        }
        snprintf(path, sizeof path, "%s/s%02d.wav", tmp, i);
        snprintf(cmd, sizeof cmd, "espeak-ng -v en-us -w '%s' '%s'", path, text);
        if (system(cmd) != 0)
            return -1;
        audio_result a;
        if (audio_read_file(r, path, &a, &e))
            return -1;
        int64_t first = -1, last = -1;
        for (size_t j = 0; j < a.n_samples; j++)
            if (fabsf(a.pcm[j]) > 0.02f) {
                first = first < 0 ? (int64_t)j : first;
                last = (int64_t)j;
            }
        if (first < 0)
            return -1;
        act0[i] = rec_n + first;
        act1[i] = rec_n + last;
        put(&rec, &rec_n, &cap, a.pcm, (int64_t)a.n_samples, 0.0f);
        int64_t pause = 4800 + (int64_t)(lcg() % 19200); // 0.3 - 1.5 s
        put(&rec, &rec_n, &cap, NULL, pause, 0.0f);
    }
    for (int64_t j = 0; j < rec_n; j++)
        rec[j] += 0.006f * ((float)(lcg() % 20001) / 10000.0f - 1.0f);
    audio_reader_free(r);
    return 0;
}

// Cuts x[0..n) (samples from `start` on) pushing `block` samples at a time and calling
// seg_next after every push (or only after seg_finish when pull_late). Returns the
// number of spans written to out.
static size_t cut_all(seg_params p, const float *x, int64_t n, int64_t start, size_t block,
                      int pull_late, seg_span *out, size_t cap)
{
    seg_cutter *c;
    sl_err e;
    CU_ASSERT_FATAL(seg_open(&c, p, start, &e) == SL_OK);
    size_t k = 0;
    seg_span s;
    for (int64_t i = 0; i < n; i += (int64_t)block) {
        size_t m = n - i < (int64_t)block ? (size_t)(n - i) : block;
        CU_ASSERT_FATAL(seg_push(c, x + i, m, &e) == SL_OK);
        while (!pull_late && seg_next(c, &s))
            if (k < cap)
                out[k++] = s;
    }
    seg_finish(c);
    while (seg_next(c, &s))
        if (k < cap)
            out[k++] = s;
    CU_ASSERT(seg_done(c));
    CU_ASSERT_EQUAL(seg_pos(c), start + n);
    seg_close(c);
    return k;
}

static int same_spans(const seg_span *a, const seg_span *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].start != b[i].start || a[i].end != b[i].end || a[i].how != b[i].how ||
            a[i].silent != b[i].silent)
            return 0;
    return 1;
}

static const char *how_name(int how)
{
    static const char *names[] = {"?", "end", "pause", "gap", "hard", "vad", "vad-long"};
    return how >= 1 && how <= 6 ? names[how] : "?";
}

// Every cut inside a known pause, chosen as late as the limit allows; segments tile
// the recording, none longer than max; every sentence's middle inside a segment.
static void test_pauses(void)
{
    CU_ASSERT_FATAL(rec != NULL);
    float limits[] = {6.0f, 10.0f, 30.0f};
    for (int l = 0; l < 3; l++) {
        seg_params p = seg_default_params();
        p.max_seconds = limits[l];
        seg_span s[256];
        size_t n = cut_all(p, rec, rec_n, 0, 4096, 0, s, 256);
        CU_ASSERT_FATAL(n > 1);
        int in_pause = 0, late = 1;
        int64_t longest = 0;
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT(s[i].end - s[i].start <= (int64_t)(limits[l] * 16000));
            CU_ASSERT(s[i].end - s[i].start >= 16000 || n == 1);
            CU_ASSERT_EQUAL(s[i].start, i ? s[i - 1].end : 0);
            longest = s[i].end - s[i].start > longest ? s[i].end - s[i].start : longest;
            if (i + 1 == n) {
                CU_ASSERT_EQUAL(s[i].end, rec_n);
                CU_ASSERT_EQUAL(s[i].how, SEG_END);
                continue;
            }
            CU_ASSERT_EQUAL(s[i].how, SEG_CUT_PAUSE);
            int found = 0;
            for (int k = 0; k + 1 < N_SENT; k++)
                found |= s[i].end > act1[k] && s[i].end < act0[k + 1];
            found |= s[i].end < act0[0];
            CU_ASSERT(found);
            in_pause += found;
            // As long as possible: no whole known pause after the cut still fits.
            for (int k = 0; k + 1 < N_SENT; k++)
                if (act1[k] > s[i].end && act0[k + 1] <= s[i].start + (int64_t)(limits[l] * 16000))
                    late = 0;
        }
        CU_ASSERT(late);
        for (int k = 0; k < N_SENT; k++) {
            int64_t mid = (act0[k] + act1[k]) / 2;
            int covered = 0;
            for (size_t i = 0; i < n; i++)
                covered |= mid >= s[i].start && mid < s[i].end;
            CU_ASSERT(covered);
        }
        printf("\n  max %2.0f s: %.1f s of speech -> %zu segments (longest %.2f s), %d/%zu cuts "
               "inside known pauses, each as late as the limit allows: %s", (double)limits[l],
               (double)rec_n / 16000, n, (double)longest / 16000, in_pause, n - 1,
               late ? "yes" : "NO");
    }
}

// The restart property: for every cut of an uninterrupted run, a cutter opened there
// and fed the samples from there on (in another block size, pulled at another time)
// yields exactly the segments that follow the cut. Push and pull patterns change nothing.
static void test_restart(void)
{
    CU_ASSERT_FATAL(rec != NULL);
    float limits[] = {6.0f, 30.0f};
    for (int l = 0; l < 2; l++) {
        seg_params p = seg_default_params();
        p.max_seconds = limits[l];
        seg_span ref[256], s[256];
        size_t n = cut_all(p, rec, rec_n, 0, 4096, 0, ref, 256);
        size_t blocks[] = {1, 160, 777, (size_t)rec_n};
        for (int b = 0; b < 4; b++) {
            size_t m = cut_all(p, rec, rec_n, 0, blocks[b], b % 2, s, 256);
            CU_ASSERT(m == n && same_spans(s, ref, n));
        }
        int ok = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int64_t c = ref[i].end;
            size_t m = cut_all(p, rec + c, rec_n - c, c, 777 + 13 * i, i % 2, s, 256);
            int same = m == n - i - 1 && same_spans(s, ref + i + 1, m);
            CU_ASSERT(same);
            ok += same;
        }
        printf("\n  max %2.0f s: restarted at each of %zu cuts: %d reproduce the rest exactly",
               (double)limits[l], n - 1, ok);
    }
}

// Writes the recording as a 44.1 kHz stereo FLAC (sox), then cuts it through
// audio_stream from 0 and, for every cut, from a stream and a cutter opened at that
// cut: the same segments follow (the stream's seeks are bit-exact).
static size_t cut_stream(const char *path, seg_params p, int64_t start, seg_span *out, size_t cap)
{
    audio_stream *st;
    seg_cutter *c;
    sl_err e;
    audio_stream_params sp = audio_stream_default_params();
    sp.block_seconds = 7; // block edges fall inside segments
    CU_ASSERT_FATAL(audio_stream_open(&st, path, sp, start, &e) == SL_OK);
    CU_ASSERT_FATAL(seg_open(&c, p, start, &e) == SL_OK);
    static float buf[5000];
    size_t k = 0, got;
    seg_span s;
    do {
        CU_ASSERT_FATAL(audio_stream_read(st, buf, 5000, &got, &e) == SL_OK);
        CU_ASSERT_FATAL(seg_push(c, buf, got, &e) == SL_OK);
        while (seg_next(c, &s))
            if (k < cap)
                out[k++] = s;
    } while (got == 5000);
    seg_finish(c);
    while (seg_next(c, &s))
        if (k < cap)
            out[k++] = s;
    seg_close(c);
    audio_stream_close(st);
    return k;
}

static void test_restart_stream(void)
{
    CU_ASSERT_FATAL(rec != NULL);
    char wav[4200], flac[4200], cmd[9000];
    snprintf(wav, sizeof wav, "%s/rec16.wav", tmp);
    snprintf(flac, sizeof flac, "%s/rec44.flac", tmp);
    SF_INFO info = {0};
    info.samplerate = 16000;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE *sf = sf_open(wav, SFM_WRITE, &info);
    CU_ASSERT_FATAL(sf != NULL);
    CU_ASSERT_FATAL(sf_write_float(sf, rec, rec_n) == rec_n);
    sf_close(sf);
    snprintf(cmd, sizeof cmd, "sox -V1 -D '%s' -b 16 -r 44100 -c 2 '%s'", wav, flac);
    CU_ASSERT_FATAL(system(cmd) == 0);
    seg_params p = seg_default_params();
    p.max_seconds = 10.0f;
    seg_span ref[256], s[256], mem[256];
    size_t n = cut_stream(flac, p, 0, ref, 256);
    size_t nm = cut_all(p, rec, rec_n, 0, 4096, 0, mem, 256);
    int ok = 0, close = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        size_t m = cut_stream(flac, p, ref[i].end, s, 256);
        int same = m == n - i - 1 && same_spans(s, ref + i + 1, m);
        CU_ASSERT(same);
        ok += same;
    }
    for (size_t i = 0; i < n && i < nm; i++) // resampled audio: cuts within 50 ms of the 16 kHz ones
        close += llabs(ref[i].end - mem[i].end) <= 800;
    printf("\n  44.1 kHz stereo FLAC through audio_stream: %zu segments (%zu at 16 kHz, %d with "
           "the same cut +- 50 ms); restarted at each of %zu cuts: %d reproduce the rest exactly",
           n, nm, close, n - 1, ok);
    CU_ASSERT(n == nm && close == (int)n);
}

// A continuous tone has no pause: cuts at exact multiples of max; the last piece is
// moved earlier to be at least min_seconds.
static void test_hard_cuts(void)
{
    const int64_t secs10[] = {4000, 300, 305, 610, 200}; // tenths of seconds
    for (int t = 0; t < 5; t++) {
        int64_t n = secs10[t] * 1600;
        float *x = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            x[i] = 0.3f * (float)sin(TWO_PI * 440.0 * (double)i / 16000.0);
        seg_params p = seg_default_params();
        if (t == 4)
            p.max_seconds = 2.0f; // 20 s tone in 2 s pieces, with noise on the tone
        if (t == 4)
            for (int64_t i = 0; i < n; i++)
                x[i] += 0.01f * ((float)(lcg() % 2001) / 1000.0f - 1.0f);
        seg_span s[256];
        size_t k = cut_all(p, x, n, 0, 1000, 0, s, 256);
        int64_t S = (int64_t)(p.max_seconds * 16000);
        printf("\n  tone %.1f s (max %g s): %zu segments:", (double)n / 16000, (double)p.max_seconds, k);
        for (size_t i = 0; i < k && i < 4; i++)
            printf(" [%.2f, %.2f) %s", (double)s[i].start / 16000, (double)s[i].end / 16000,
                   how_name(s[i].how));
        if (k > 4)
            printf(" ... [%.2f, %.2f) %s", (double)s[k - 1].start / 16000,
                   (double)s[k - 1].end / 16000, how_name(s[k - 1].how));
        for (size_t i = 0; i + 1 < k; i++) {
            CU_ASSERT_EQUAL(s[i].how, SEG_CUT_HARD);
            // Multiples of max, except the last cut when the rest would be under min_seconds.
            int64_t want = (int64_t)(i + 1) * S;
            if (n - want < 16000)
                want = n - 16000;
            CU_ASSERT_EQUAL(s[i].end, want);
        }
        CU_ASSERT_EQUAL(s[k - 1].how, SEG_END);
        CU_ASSERT_EQUAL(s[k - 1].end, n);
        if (t == 0)
            CU_ASSERT_EQUAL(k, 14); // 13 x 30 s + 10 s
        if (t == 1)
            CU_ASSERT_EQUAL(k, 1);
        if (t == 2)
            CU_ASSERT(k == 2 && s[0].end == 295 * 1600);
        free(x);
    }
}

// Digital silence (a 5 s lead-in, 70 s in the middle, 3 s at the end) around the
// recording: silent segments are dropped, only silence is dropped, speech is kept; with
// drop_silent 0 they come back flagged and the segments tile the audio.
static void test_silence(void)
{
    CU_ASSERT_FATAL(rec != NULL);
    int64_t half = act1[N_SENT / 2] + 2400; // inside the pause after sentence 15
    int64_t lead = 5 * 16000, mid = 70 * 16000, tail = 3 * 16000;
    int64_t n = lead + rec_n + mid + tail;
    float *x = calloc((size_t)n, sizeof(float));
    memcpy(x + lead, rec, (size_t)half * sizeof(float));
    memcpy(x + lead + half + mid, rec + half, (size_t)(rec_n - half) * sizeof(float));
    seg_params p = seg_default_params();
    seg_span s[256];
    size_t k = cut_all(p, x, n, 0, 4096, 0, s, 256);
    int64_t kept = 0;
    int ok = 1;
    for (size_t i = 0; i < k; i++) {
        kept += s[i].end - s[i].start;
        CU_ASSERT(!s[i].silent);
        CU_ASSERT(s[i].end - s[i].start <= 30 * 16000);
    }
    // Every sample outside the returned segments is digital silence.
    int64_t at = 0;
    for (size_t i = 0; i <= k; i++) {
        int64_t to = i < k ? s[i].start : n;
        for (int64_t j = at; j < to; j++)
            ok &= x[j] == 0.0f;
        at = i < k ? s[i].end : n;
    }
    CU_ASSERT(ok);
    seg_params keep = p;
    keep.drop_silent = 0;
    seg_span all[256];
    size_t ka = cut_all(keep, x, n, 0, 4096, 0, all, 256);
    int n_silent = 0;
    for (size_t i = 0; i < ka; i++) {
        CU_ASSERT_EQUAL(all[i].start, i ? all[i - 1].end : 0);
        n_silent += all[i].silent;
    }
    CU_ASSERT_EQUAL(all[ka - 1].end, n);
    CU_ASSERT_EQUAL((int)(ka - k), n_silent);
    CU_ASSERT(n_silent >= 2);
    printf("\n  %.1f s with 78 s of digital silence: %zu segments kept (%.1f s), %d silent "
           "ones dropped; every dropped sample is 0", (double)n / 16000, k, (double)kept / 16000,
           n_silent);
    free(x);
}

static size_t join(const seg_chunk *c, size_t n, int64_t len, seg_params p, seg_span *out, int rc_want)
{
    size_t k = 99;
    sl_err e;
    int rc = seg_join_chunks(c, n, len, p, out, &k, &e);
    CU_ASSERT_EQUAL(rc, rc_want);
    if (rc)
        printf("\n  refused: %s", e.msg);
    return k;
}

// VAD chunks: segment bounds are chunk bounds, greedy up to max, long chunks alone.
static void test_vad_join(void)
{
    seg_params p = seg_default_params();
    seg_chunk c[] = {{0.5, 3.2}, {3.9, 8.0}, {9.1, 20.0}, {21.0, 29.0}, {29.5, 31.0},
                     {40.0, 45.0}, {50.0, 95.0}, {95.5, 96.25}, {96.25, 96.25}};
    seg_span s[16];
    size_t k = join(c, 9, 0, p, s, SL_OK);
    CU_ASSERT_FATAL(k == 4);
    CU_ASSERT(s[0].start == 8000 && s[0].end == 29 * 16000 && s[0].how == SEG_VAD);
    CU_ASSERT(s[1].start == 29.5 * 16000 && s[1].end == 45 * 16000 && s[1].how == SEG_VAD);
    CU_ASSERT(s[2].start == 50 * 16000 && s[2].end == 95 * 16000 && s[2].how == SEG_VAD_LONG);
    CU_ASSERT(s[3].start == 95.5 * 16000 && s[3].end == 96.25 * 16000 && s[3].how == SEG_VAD);
    // Clipped to the file's length: chunks past it dropped, the last one shortened.
    k = join(c, 9, 42 * 16000, p, s, SL_OK);
    CU_ASSERT(k == 2 && s[1].start == 29.5 * 16000 && s[1].end == 42 * 16000);
    // Random lists: bounds are chunk bounds, every chunk in exactly one span, greedy.
    int ok = 1;
    for (int t = 0; t < 200; t++) {
        seg_chunk r[64];
        double at = (lcg() % 1000) / 100.0;
        size_t n = 1 + lcg() % 64;
        for (size_t i = 0; i < n; i++) {
            r[i].start = at + (lcg() % 300) / 100.0;
            r[i].end = r[i].start + (lcg() % 100 ? (lcg() % 1500) / 100.0 : 40.0);
            at = r[i].end;
        }
        seg_span o[64];
        k = join(r, n, 0, p, o, SL_OK);
        size_t ci = 0;
        for (size_t j = 0; j < k; j++) {
            while (ci < n && llround(r[ci].end * 16000) <= llround(r[ci].start * 16000))
                ci++;
            ok &= o[j].start == llround(r[ci].start * 16000);
            size_t first = ci;
            while (ci < n && llround(r[ci].end * 16000) <= o[j].end)
                ci++;
            ok &= ci > first && o[j].end == llround(r[ci - 1].end * 16000);
            ok &= o[j].how == SEG_VAD_LONG ? ci == first + 1 && o[j].end - o[j].start > 480000
                                           : o[j].end - o[j].start <= 480000;
            // Greedy: the next (non-empty) chunk would not have fitted.
            size_t nx = ci;
            while (nx < n && llround(r[nx].end * 16000) <= llround(r[nx].start * 16000))
                nx++;
            if (o[j].how == SEG_VAD && j + 1 < k)
                ok &= o[j + 1].how == SEG_VAD_LONG || llround(r[nx].end * 16000) - o[j].start > 480000;
        }
        while (ci < n && llround(r[ci].end * 16000) <= llround(r[ci].start * 16000))
            ci++;
        if (ci != n || !ok) {
            printf("\n  random list %d: spans do not match the chunks", t);
            ok = 0;
            break;
        }
    }
    CU_ASSERT(ok);
    // Refusals name the chunk.
    seg_chunk bad1[] = {{0, 2}, {1.5, 3}}, bad2[] = {{0, 2}, {5, 4}}, bad3[] = {{NAN, 1}},
              bad4[] = {{-1, 1}};
    join(bad1, 2, 0, p, s, SL_EINVAL);
    join(bad2, 2, 0, p, s, SL_EINVAL);
    join(bad3, 1, 0, p, s, SL_EINVAL);
    join(bad4, 1, 0, p, s, SL_EINVAL);
    sl_err e;
    CU_ASSERT(seg_join_chunks(bad1, 2, 0, p, s, &k, &e) == SL_EINVAL &&
              strstr(e.msg, "chunk 1") != NULL);
}

// A VAD chunk longer than max, cut by a cutter over exactly its samples: pieces <= max
// from the chunk's start to its end, each cut in a known pause.
static void test_vad_long_chunk(void)
{
    CU_ASSERT_FATAL(rec != NULL);
    seg_params p = seg_default_params();
    seg_chunk c = {(double)act0[0] / 16000 - 0.05, (double)act1[N_SENT - 1] / 16000 + 0.05};
    seg_span v;
    size_t k;
    sl_err e;
    CU_ASSERT_FATAL(seg_join_chunks(&c, 1, rec_n, p, &v, &k, &e) == SL_OK && k == 1);
    CU_ASSERT_FATAL(v.how == SEG_VAD_LONG);
    seg_span s[64];
    size_t n = cut_all(p, rec + v.start, v.end - v.start, v.start, 4096, 0, s, 64);
    CU_ASSERT(n >= 4 && s[0].start == v.start && s[n - 1].end == v.end);
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(s[i].end - s[i].start <= 480000);
        for (int j = 0; i + 1 < n && j + 1 < N_SENT; j++)
            in += s[i].end > act1[j] && s[i].end < act0[j + 1];
    }
    CU_ASSERT_EQUAL(in, (int)n - 1);
    printf("\n  one %.1f s VAD chunk -> %zu pieces, %d cuts in pauses", (double)(v.end - v.start) / 16000, n, in);
}

// A real recording when the machine has it (asterisk-core-sounds-en-wav, the prompt the
// issue names; not installed by tools/install-deps.sh, so skipped without it): 73 s at
// 8 kHz through audio_stream; segments of at most 30 s tile it, cut at pauses where the
// 50 ms around each cut are at least 20 dB below the loud (95th percentile) frames.
static void test_real_prompt(void)
{
    const char *path = "/usr/share/asterisk/sounds/en_US_f_Allison/demo-instruct.wav";
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("\n  skipped: %s not installed (apt-get install asterisk-core-sounds-en-wav)", path);
        return;
    }
    fclose(f);
    audio_stream *st;
    sl_err e;
    CU_ASSERT_FATAL(audio_stream_open(&st, path, audio_stream_default_params(), 0, &e) == SL_OK);
    size_t cap = 16000 * 80, n = 0, k;
    float *x = malloc(cap * sizeof(float));
    do {
        CU_ASSERT_FATAL(audio_stream_read(st, x + n, cap - n < 4096 ? cap - n : 4096, &k, &e) == SL_OK);
        n += k;
    } while (k == 4096);
    audio_stream_close(st);
    seg_span s[64];
    size_t m = cut_all(seg_default_params(), x, (int64_t)n, 0, 4096, 0, s, 64);
    // Loud level of the whole prompt: 95th percentile of its 10 ms frames.
    size_t nf = n / 160;
    double *lv = malloc(nf * sizeof(double));
    for (size_t i = 0; i < nf; i++) {
        double sq = 0;
        for (size_t j = 0; j < 160; j++)
            sq += (double)x[i * 160 + j] * (double)x[i * 160 + j];
        lv[i] = 10.0 * log10(sq / 160 + 1e-10);
    }
    double *srt = malloc(nf * sizeof(double));
    memcpy(srt, lv, nf * sizeof(double));
    for (size_t i = 1; i < nf; i++) // insertion sort: a few thousand values
        for (size_t j = i; j > 0 && srt[j - 1] > srt[j]; j--) {
            double t = srt[j];
            srt[j] = srt[j - 1];
            srt[j - 1] = t;
        }
    double loud = srt[(size_t)(0.95 * (double)(nf - 1))];
    printf("\n  %s: %.2f s -> %zu segments:", strrchr(path, '/') + 1, (double)n / 16000, m);
    for (size_t i = 0; i < m; i++) {
        CU_ASSERT(s[i].end - s[i].start <= 30 * 16000);
        CU_ASSERT_EQUAL(s[i].start, i ? s[i - 1].end : 0);
        double quietest = -1e9;
        if (i + 1 < m) {
            CU_ASSERT_EQUAL(s[i].how, SEG_CUT_PAUSE);
            size_t c = (size_t)s[i].end / 160;
            for (size_t j = c - 2; j < c + 3 && j < nf; j++)
                quietest = lv[j] > quietest ? lv[j] : quietest;
            CU_ASSERT(quietest < loud - 20.0);
        }
        printf(" [%.2f, %.2f) %s", (double)s[i].start / 16000, (double)s[i].end / 16000,
               how_name(s[i].how));
        if (i + 1 < m)
            printf(" (cut %.0f dB below loud)", loud - quietest);
    }
    CU_ASSERT_EQUAL(s[m - 1].end, (int64_t)n);
    free(lv);
    free(srt);
    free(x);
}

static void test_params(void)
{
    seg_cutter *c;
    sl_err e;
    seg_params p = seg_default_params();
    p.min_seconds = 20.0f; // more than half of max
    CU_ASSERT(seg_open(&c, p, 0, &e) == SL_EINVAL && !c && strstr(e.msg, "min_seconds"));
    p = seg_default_params();
    p.max_seconds = NAN;
    CU_ASSERT(seg_open(&c, p, 0, &e) == SL_EINVAL && strstr(e.msg, "max_seconds"));
    p = seg_default_params();
    p.min_pause_seconds = 0.0f;
    CU_ASSERT(seg_open(&c, p, 0, &e) == SL_EINVAL && strstr(e.msg, "min_pause_seconds"));
    CU_ASSERT(seg_open(&c, seg_default_params(), -5, &e) == SL_EINVAL);
    CU_ASSERT_FATAL(seg_open(&c, seg_default_params(), 100, &e) == SL_OK);
    float x[3] = {0.1f, NAN, 0.2f};
    CU_ASSERT(seg_push(c, x, 3, &e) == SL_EINVAL && strstr(e.msg, "sample 101"));
    seg_close(c);
    // Audio shorter than min_seconds is one segment; no audio, none.
    CU_ASSERT_FATAL(seg_open(&c, seg_default_params(), 0, &e) == SL_OK);
    seg_span s;
    seg_finish(c);
    CU_ASSERT(seg_next(c, &s) == 0 && seg_done(c));
    seg_close(c);
    float y[800];
    for (int i = 0; i < 800; i++)
        y[i] = 0.1f;
    CU_ASSERT_EQUAL(cut_all(seg_default_params(), y, 800, 0, 800, 0, &s, 1), 1);
    CU_ASSERT(s.start == 0 && s.end == 800 && s.how == SEG_END);
}

int main(void)
{
    tmp = sl_test_tmpdir("segment");
    if (make_recording()) {
        fprintf(stderr, "test_segment: espeak-ng (tools/install-deps.sh) is needed to make "
                        "the recording; the tests that use it fail\n");
        free(rec);
        rec = NULL;
    }
    static const sl_test_case cases[] = {
        {"cuts fall in known pauses, as late as allowed", test_pauses},
        {"restart at every cut repeats the rest exactly", test_restart},
        {"restart through audio_stream (44.1 kHz FLAC)", test_restart_stream},
        {"a tone is hard-cut at multiples of max", test_hard_cuts},
        {"digital silence dropped, speech kept", test_silence},
        {"VAD chunks joined up to max", test_vad_join},
        {"a long VAD chunk cut by the detector", test_vad_long_chunk},
        {"a real 73 s prompt (when installed)", test_real_prompt},
        {"params and edge cases", test_params},
        {NULL, NULL}};
    int rc = sl_test_main("segment", cases);
    free(rec);
    sl_test_rmtree(tmp);
    return rc;
}
