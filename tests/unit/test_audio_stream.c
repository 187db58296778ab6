// tests/unit/test_audio_stream.c — pipeline/audio_stream: equality with audio_read_file,
// resampled lengths over many rates and lengths (and audio.c's former oneshot shortfall, the
// bug the stream fixes), exact seeks, errors, and bounded memory on a 1-hour file made
// at test time. Files come from sox (tests/data speech) or are written with libsndfile.
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/audio.h"
#include "pipeline/audio_stream.h"
#include "tests/testutil.h"

#define TWO_PI 6.283185307179586

static const char *tmp;

static const char *tpath(const char *name) { return sl_test_join(tmp, name); }

static int64_t round_len(int64_t n, int rate) // round(n * 16000 / rate), halves up
{
    return (n * 16000 + rate / 2) / rate;
}

// The whole stream from `start`, read cap samples at a time; malloc'd, *n samples.
static float *stream_all(const char *path, audio_stream_params p, int64_t start, size_t cap,
                         size_t *n)
{
    audio_stream *s;
    sl_err e;
    int rc = audio_stream_open(&s, path, p, start, &e);
    if (rc)
        fprintf(stderr, "\n  open %s: %s", path, e.msg);
    CU_ASSERT_FATAL(rc == SL_OK);
    size_t have = 0, room = 1 << 16;
    float *x = malloc(room * sizeof(float));
    for (;;) {
        if (have + cap > room) {
            while (have + cap > room)
                room *= 2;
            x = realloc(x, room * sizeof(float));
        }
        size_t k;
        rc = audio_stream_read(s, x + have, cap, &k, &e);
        if (rc)
            fprintf(stderr, "\n  read %s: %s", path, e.msg);
        CU_ASSERT_FATAL(rc == SL_OK);
        have += k;
        if (k < cap)
            break;
    }
    CU_ASSERT_EQUAL(audio_stream_tell(s), start + (int64_t)have);
    audio_stream_close(s);
    *n = have;
    return x;
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

// The file's own frame count, from libsndfile.
static int64_t file_frames(const char *path)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    CU_ASSERT_FATAL(sf != NULL);
    sf_close(sf);
    return info.frames;
}

// 16 kHz files (mono, stereo, 24-bit, FLAC): the stream is audio_read_file bit for
// bit, whatever the read size, and a stream opened at S is the whole stream from S.
static void test_16k_exact(void)
{
    char src[4200];
    snprintf(src, sizeof src, "%s", sl_test_data("speech_16k.wav"));
    const char *files[] = {src, tpath("st.wav"), tpath("s24.wav"), tpath("f.flac")};
    CU_ASSERT_FATAL(sl_test_sh("sox -D '%s' -c 2 '%s'", src, files[1]) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox -D '%s' -b 24 '%s'", src, files[2]) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox -D '%s' '%s'", src, files[3]) == 0);
    audio_reader *r;
    sl_err e;
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_stream_params p = audio_stream_default_params();
    for (int f = 0; f < 4; f++) {
        audio_result a;
        CU_ASSERT_FATAL(audio_read_file(r, files[f], &a, &e) == SL_OK);
        size_t caps[] = {1, 7, 4096, 100000}, n;
        float *whole = NULL;
        for (int c = 0; c < 4; c++) {
            float *x = stream_all(files[f], p, 0, caps[c], &n);
            CU_ASSERT_EQUAL(n, a.n_samples);
            CU_ASSERT(n == a.n_samples && same_bits(x, a.pcm, n));
            if (c == 0)
                whole = x;
            else
                free(x);
        }
        int64_t starts[] = {1, 399, 4095, 4096, 4097, 20000, (int64_t)n - 1, (int64_t)n};
        for (int i = 0; i < 8; i++) {
            size_t m;
            float *x = stream_all(files[f], p, starts[i], 1000, &m);
            CU_ASSERT_EQUAL(m, n - (size_t)starts[i]);
            CU_ASSERT(same_bits(x, whole + starts[i], m));
            free(x);
        }
        audio_stream *s;
        CU_ASSERT(audio_stream_open(&s, files[f], p, (int64_t)n + 1, &e) == SL_EINVAL && !s);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "past the end"));
        printf("\n  %-8s %zu samples: stream == audio_read_file, 8 seeks exact", files[f] + strlen(files[f]) - 8, n);
        free(whole);
    }
    audio_reader_free(r);
}

// Other rates (sox from the 16 kHz sentence): the stream yields round(N * 16000 / rate)
// samples, and audio_read_file (which reads through the stream since options
// "resample=2") yields exactly those, bit for bit.
static void test_rates_vs_file(void)
{
    char src[4200];
    snprintf(src, sizeof src, "%s", sl_test_data("speech_16k.wav"));
    int rates[] = {8000, 11025, 22050, 32000, 44100, 48000};
    audio_reader *r;
    sl_err e;
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    for (int i = 0; i < 6; i++) {
        char name[64], args[64];
        snprintf(name, sizeof name, "r%d.wav", rates[i]);
        snprintf(args, sizeof args, "-r %d %s", rates[i], i % 2 ? "-c 2" : "");
        const char *path = tpath(name);
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "sox -D '%s' %s '%s'", src, args, path);
        CU_ASSERT_FATAL(system(cmd) == 0);
        int64_t frames = file_frames(path);
        size_t n;
        float *x = stream_all(path, audio_stream_default_params(), 0, 4096, &n);
        CU_ASSERT_EQUAL((int64_t)n, round_len(frames, rates[i]));
        audio_result a;
        CU_ASSERT_FATAL(audio_read_file(r, path, &a, &e) == SL_OK);
        CU_ASSERT_EQUAL(a.n_samples, n);
        CU_ASSERT(same_bits(x, a.pcm, a.n_samples < n ? a.n_samples : n));
        printf("\n  %5d Hz %s: %lld frames -> stream %zu, audio_read_file %zu (bit-identical)", rates[i], i % 2 ? "stereo" : "mono  ", (long long)frames, n,
               a.n_samples);
        free(x);
    }
    audio_reader_free(r);
}

// Writes n frames of a 440 Hz sine (amplitude 0.5) at rate, 16-bit mono, to path.
static void write_sine(const char *path, int rate, int64_t n, int format)
{
    SF_INFO info = {0};
    info.samplerate = rate;
    info.channels = 1;
    info.format = format;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    CU_ASSERT_FATAL(sf != NULL);
    float buf[4096];
    for (int64_t i = 0; i < n;) {
        int64_t k = n - i < 4096 ? n - i : 4096;
        for (int64_t j = 0; j < k; j++)
            buf[j] = 0.5f * (float)sin(TWO_PI * 440.0 * (double)(i + j) / rate);
        CU_ASSERT_FATAL(sf_writef_float(sf, buf, k) == k);
        i += k;
    }
    sf_close(sf);
}

// Every resampled length, over six rates and lengths from 1 frame to 6 s (the issue's
// two included), is round(n * 16000 / rate), so within half a sample of n * 16000 /
// rate; the tail carries the signal. audio_read_file gives the same samples (its old
// soxr_oneshot path was short for many 44.1 and 48 kHz lengths: 39,636 and 52,848 for
// the two; the job's options fingerprint "resample=2" marks the change).
static void test_lengths(void)
{
    int rates[] = {8000, 11025, 22050, 32000, 44100, 48000};
    int64_t fixed[] = {1, 2, 3, 5, 10, 50, 100, 399, 400, 401, 1000, 4095, 4096, 4097, 12345,
                       22057, 120361, 160072};
    size_t nf = sizeof fixed / sizeof fixed[0];
    audio_params ap = audio_default_params();
    ap.min_samples = 1;
    audio_reader *r;
    sl_err e;
    CU_ASSERT_FATAL(audio_reader_new(&r, ap, &e) == SL_OK);
    uint64_t lcg = 12345;
    for (int i = 0; i < 6; i++) {
        int rate = rates[i], n_short = 0, n_tested = 0, worst = 0;
        double tail_err = 0;
        for (size_t t = 0; t < nf + 20; t++) {
            int64_t n = fixed[t < nf ? t : 0];
            if (t >= nf) {
                lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
                n = 1 + (int64_t)((lcg >> 33) % (uint64_t)(6 * rate));
            }
            const char *path = tpath("len.wav");
            write_sine(path, rate, n, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
            size_t m;
            float *y = stream_all(path, audio_stream_default_params(), 0, 4096, &m);
            n_tested++;
            CU_ASSERT_EQUAL((int64_t)m, round_len(n, rate));
            CU_ASSERT(fabs((double)m - (double)n * 16000.0 / rate) <= 0.5 + 1e-9);
            // Tail content: the last 20 ms but the filter's 2 ms edge follow the sine.
            if (m >= 640) {
                double se = 0;
                for (size_t j = m - 320; j < m - 32; j++) {
                    double want = 0.5 * sin(TWO_PI * 440.0 * (double)j / 16000.0);
                    se += ((double)y[j] - want) * ((double)y[j] - want);
                }
                double rms = sqrt(se / 288.0);
                tail_err = rms > tail_err ? rms : tail_err;
                CU_ASSERT(rms < 0.01);
            }
            audio_result a;
            int rc = audio_read_file(r, path, &a, &e);
            size_t got = rc == SL_OK ? a.n_samples : 0; // "too short" when it rounds to 0
            CU_ASSERT_EQUAL(rc, m >= 1 ? SL_OK : SL_EFORMAT);
            CU_ASSERT_EQUAL(got, m);
            if (got < m) {
                n_short++;
                worst = (int)(m - got) > worst ? (int)(m - got) : worst;
            }
            if (rc == SL_OK)
                CU_ASSERT(same_bits(y, a.pcm, got < m ? got : m));
            if (rate == 48000 && n == 120361)
                CU_ASSERT(got == 40120 && m == 40120);
            if (rate == 48000 && n == 160072)
                CU_ASSERT(got == 53357 && m == 53357);
            free(y);
        }
        printf("\n  %5d Hz: %d lengths, stream == round(n*16000/rate) for all, tail RMS error "
               "<= %.2g; audio_read_file short for %d (worst by %d samples)", rate, n_tested,
               tail_err, n_short, worst);
    }
    audio_reader_free(r);
}

// Frames libsndfile actually decodes (MPEG headers only estimate them).
static int64_t decoded_frames(const char *path)
{
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    CU_ASSERT_FATAL(sf != NULL);
    static float buf[4096 * 8];
    int64_t n = 0;
    sf_count_t k;
    while ((k = sf_readf_float(sf, buf, 4096)) > 0)
        n += k;
    sf_close(sf);
    return n;
}

// Re-encodes the first channel of src as MP3 (libsndfile's LAME) at rate (src must be
// at that rate or is taken as if it were: only the decoding path matters here).
static void write_mp3(const char *src, const char *dst, int rate)
{
    SF_INFO in = {0}, out = {0};
    SNDFILE *a = sf_open(src, SFM_READ, &in);
    CU_ASSERT_FATAL(a != NULL);
    out.samplerate = rate;
    out.channels = 1;
    out.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    SNDFILE *b = sf_open(dst, SFM_WRITE, &out);
    CU_ASSERT_FATAL(b != NULL);
    static float buf[4096 * 8], mono[4096];
    sf_count_t k;
    while ((k = sf_readf_float(a, buf, 4096)) > 0) {
        for (sf_count_t i = 0; i < k; i++)
            mono[i] = buf[i * in.channels];
        CU_ASSERT_FATAL(sf_writef_float(b, mono, k) == k);
    }
    sf_close(a);
    sf_close(b);
}

// Resampled files: a stream opened at any S is the whole stream from S, bit for bit
// (blocks of 2 s here, so many block edges fall in a 12 s file), whatever the read
// size; and the block grid differs from one continuous soxr only at rounding level.
// WAV, FLAC and Ogg seek with sf_seek; MP3 (resampled and 16 kHz) by decoding from the
// start, and its length is what decodes.
static void test_seek_resampled(void)
{
    char src[4200];
    snprintf(src, sizeof src, "%s", sl_test_data("speech_22050.wav"));
    const char *f22 = tpath("s22.wav"), *f44 = tpath("s44.flac"), *fogg = tpath("s22.ogg"),
               *f8 = tpath("s8.wav");
    char cmd[20000];
    snprintf(cmd, sizeof cmd, "sox '%s' '%s' '%s' '%s' '%s'", src, src, src, src, f22);
    CU_ASSERT_FATAL(system(cmd) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox -D '%s' -r 44100 -c 2 '%s'", f22, f44) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' -C 6 '%s'", f22, fogg) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox -D '%s' -r 8000 '%s'", f22, f8) == 0);
    const char *f_mp3 = tpath("s22.mp3"), *f_mp3_16 = tpath("s16.mp3");
    write_mp3(f22, f_mp3, 22050);
    write_mp3(f22, f_mp3_16, 16000);
    const char *files[] = {f22, f44, fogg, f8, f_mp3, f_mp3_16};
    audio_stream_params p = audio_stream_default_params();
    p.block_seconds = 2;
    for (int f = 0; f < 6; f++) {
        size_t n;
        float *whole = stream_all(files[f], p, 0, 4096, &n);
        int64_t frames = f >= 4 ? decoded_frames(files[f]) : file_frames(files[f]);
        SF_INFO info = {0};
        SNDFILE *sf = sf_open(files[f], SFM_READ, &info);
        sf_close(sf);
        CU_ASSERT_EQUAL((int64_t)n, round_len(frames, info.samplerate));
        size_t m;
        float *x = stream_all(files[f], p, 0, 333, &m); // another read size: same bits
        CU_ASSERT(m == n && same_bits(x, whole, n));
        free(x);
        int64_t starts[] = {1, 1599, 1600, 1601, 31999, 32000, 32001, 64000 - 1600, 64000 + 1,
                            100003, (int64_t)n - 5000, (int64_t)n - 1, (int64_t)n};
        int exact = 0;
        for (int i = 0; i < 13; i++) {
            x = stream_all(files[f], p, starts[i], 1000, &m);
            CU_ASSERT_EQUAL(m, n - (size_t)starts[i]);
            int ok = m == n - (size_t)starts[i] && same_bits(x, whole + starts[i], m);
            CU_ASSERT(ok);
            exact += ok;
            free(x);
        }
        // One block covering the file = one continuous soxr run.
        audio_stream_params one = p;
        one.block_seconds = 3600;
        x = stream_all(files[f], one, 0, 4096, &m);
        CU_ASSERT_EQUAL(m, n);
        float d = sl_test_max_abs_diff(x, whole, m < n ? m : n);
        CU_ASSERT(d < 2e-6f);
        printf("\n  %-8s %d Hz: %zu samples, %d/13 seeks bit-identical; 2 s blocks vs one "
               "continuous soxr: max |diff| %.2g", files[f] + strlen(files[f]) - 8,
               info.samplerate, n, exact, (double)d);
        free(x);
        free(whole);
    }
}

// soxr over x[from..n) with its outputs from output index `skip` on; returns the count.
static size_t soxr_run(const float *x, size_t from, size_t n, int rate, size_t skip, float *y)
{
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_t sx = soxr_create(rate, 16000, 1, NULL, &io, &q, NULL);
    CU_ASSERT_FATAL(sx != NULL);
    static float out[1 << 20];
    size_t total = 0, got = 0, pos = from;
    for (;;) {
        size_t id = 0, od = 0, k = n - pos < 4096 ? n - pos : 4096;
        soxr_process(sx, pos < n ? x + pos : NULL, k, &id, out, 1 << 20, &od);
        pos += id;
        for (size_t i = 0; i < od; i++, total++)
            if (total >= skip)
                y[got++] = out[i];
        if (k == 0 && od == 0)
            break;
    }
    soxr_delete(sx);
    return got;
}

// Why the stream restarts soxr on a fixed grid: a fresh soxr started at an arbitrary
// (phase-aligned) sample is not the continuous run from there, neither without a
// warm-up (wrong near the start) nor with 0.1 s of it (rounding differences on).
static void test_restart_not_exact(void)
{
    char src[4200];
    snprintf(src, sizeof src, "%s", sl_test_data("speech_22050.wav"));
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(src, SFM_READ, &info);
    CU_ASSERT_FATAL(sf != NULL && info.channels == 1 && info.samplerate == 22050);
    size_t n = (size_t)info.frames;
    float *x = malloc(n * sizeof(float)), *whole = malloc(n * sizeof(float)),
          *y = malloc(n * sizeof(float));
    sf_command(sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
    CU_ASSERT_FATAL(sf_read_float(sf, x, (sf_count_t)n) == (sf_count_t)n);
    sf_close(sf);
    size_t m = soxr_run(x, 0, n, 22050, 0, whole);
    // Restart inside speech, at the loudest output sample rounded to the rates' phase
    // period (320 outputs = 441 inputs); the warm-up is 5 periods (0.1 s).
    size_t loud = 0;
    for (size_t i = 0; i < m; i++)
        loud = fabsf(whole[i]) > fabsf(whole[loud]) ? i : loud;
    size_t k = loud / 320, o = 320 * k;
    CU_ASSERT_FATAL(k > 5);
    size_t a = soxr_run(x, 441 * k, n, 22050, 0, y);
    float cold = sl_test_max_abs_diff(y, whole + o, a < m - o ? a : m - o);
    size_t b = soxr_run(x, 441 * (k - 5), n, 22050, 1600, y);
    float warm = sl_test_max_abs_diff(y, whole + o, b < m - o ? b : m - o);
    printf("\n  restart at %.3f s of a 22,050 Hz file vs the continuous run: no warm-up max "
           "|diff| %.3g, 0.1 s warm-up %.3g (the stream's grid: 0)", (double)o / 16000,
           (double)cold, (double)warm);
    CU_ASSERT(cold > 1e-3f);
    CU_ASSERT(warm > 0.0f && warm < 2e-6f);
    free(x);
    free(whole);
    free(y);
}

static void expect_open_error(const char *path, int code, const char *words)
{
    audio_stream *s;
    sl_err e;
    int rc = audio_stream_open(&s, path, audio_stream_default_params(), 0, &e);
    printf("\n  %s -> %s", path + strlen(tmp) + 1, rc ? e.msg : "OK");
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path));
    if (words)
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, words));
}

// Opens fine, fails while reading: the error names the file and the problem, and
// repeats on the next read.
static void expect_read_error(const char *path, int code, const char *words)
{
    audio_stream *s;
    sl_err e;
    CU_ASSERT_FATAL(audio_stream_open(&s, path, audio_stream_default_params(), 0, &e) == SL_OK);
    float buf[4096];
    size_t k;
    int rc;
    while ((rc = audio_stream_read(s, buf, 4096, &k, &e)) == SL_OK && k == 4096)
        ;
    printf("\n  %s -> %s", path + strlen(tmp) + 1, rc ? e.msg : "OK");
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path));
    if (words)
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, words));
    sl_err e2;
    CU_ASSERT(audio_stream_read(s, buf, 4096, &k, &e2) == code && k == 0);
    CU_ASSERT_STRING_EQUAL(e2.msg, e.msg);
    audio_stream_close(s);
}

// Writes a float WAV (channels ch, rate) whose frame `at` holds v in channel 0.
static void write_bad_float(const char *path, int rate, int ch, int64_t n, int64_t at, float v)
{
    SF_INFO info = {0};
    info.samplerate = rate;
    info.channels = ch;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    CU_ASSERT_FATAL(sf != NULL);
    float *x = calloc((size_t)(n * ch), sizeof(float));
    x[at * ch] = v;
    CU_ASSERT_FATAL(sf_writef_float(sf, x, n) == n);
    sf_close(sf);
    free(x);
}

static void test_errors(void)
{
    char src[4200];
    snprintf(src, sizeof src, "%s", sl_test_data("speech_16k.wav"));
    CU_ASSERT_FATAL(sl_test_sh("head -c 1000 '%s' > '%s'", src, tpath("cut_data.wav")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' '%s'", src, tpath("whole.flac")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("head -c 20000 '%s' > '%s'", tpath("whole.flac"), tpath("cut.flac")) == 0);
    CU_ASSERT_FATAL(sl_test_sh(": > '%s'%s", tpath("empty.wav"), "") == 0);
    CU_ASSERT_FATAL(sl_test_sh("echo 'this is not audio at all, just text' > '%s'%s", tpath("text.wav"),
                       "") == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' -r 22050 '%s'", tpath("whole.flac"), tpath("w22.flac")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("head -c 30000 '%s' > '%s'", tpath("w22.flac"), tpath("cut22.flac")) == 0);
    expect_open_error(tpath("missing.wav"), SL_EIO, "No such file");
    expect_open_error(tmp, SL_EIO, "is a directory");
    expect_open_error(tpath("empty.wav"), SL_EIO, "empty file");
    expect_open_error(tpath("text.wav"), SL_EIO, NULL);
    expect_open_error(tpath("cut_data.wav"), SL_ECORRUPT, "truncated");
    expect_read_error(tpath("cut.flac"), SL_ECORRUPT, "truncated");
    expect_read_error(tpath("cut22.flac"), SL_ECORRUPT, "truncated");
    write_bad_float(tpath("nan.wav"), 16000, 1, 20000, 12345, NAN);
    expect_read_error(tpath("nan.wav"), SL_EFORMAT, "sample 12345 (0.772 s) is NaN");
    write_bad_float(tpath("inf44.wav"), 44100, 2, 50000, 40000, INFINITY);
    expect_read_error(tpath("inf44.wav"), SL_EFORMAT, "sample 40000 (0.907 s) is infinite");
    audio_stream *s;
    sl_err e;
    audio_stream_params bad = audio_stream_default_params();
    bad.block_seconds = 0;
    CU_ASSERT(audio_stream_open(&s, src, bad, 0, &e) == SL_EINVAL && !s);
    CU_ASSERT(audio_stream_open(&s, src, audio_stream_default_params(), -1, &e) == SL_EINVAL);
    CU_ASSERT(audio_stream_open(&s, tpath("w22.flac"), audio_stream_default_params(), 10000000,
                                &e) == SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "past the end"));
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

// A 1-hour 22,050 Hz file (written here, deleted after): streamed in 1 s reads, resident
// memory stays flat (< 50 MB growth; it is a few MB); the length is exact and a seek
// to the last seconds gives the same samples as the whole stream's end.
static void test_long_memory(void)
{
    const char *path = tpath("hour.wav");
    const int rate = 22050;
    const int64_t frames = 3600LL * rate;
    SF_INFO info = {0};
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    CU_ASSERT_FATAL(sf != NULL);
    static float buf[22050];
    for (int64_t i = 0; i < frames; i += rate) { // 1 s tone, then every 7th second silent
        for (int j = 0; j < rate; j++)
            buf[j] = (i / rate) % 7 == 6 ? 0.0f
                                         : 0.3f * (float)sin(TWO_PI * 300.0 * (double)j / rate);
        CU_ASSERT_FATAL(sf_writef_float(sf, buf, rate) == rate);
    }
    sf_close(sf);
    long rss0 = rss_kib(), rss_max = rss0;
    audio_stream *s;
    sl_err e;
    CU_ASSERT_FATAL(audio_stream_open(&s, path, audio_stream_default_params(), 0, &e) == SL_OK);
    static float out[16000], last[16000 * 3];
    int64_t total = 0;
    size_t k;
    for (;;) {
        CU_ASSERT_FATAL(audio_stream_read(s, out, 16000, &k, &e) == SL_OK);
        if (total >= 16000LL * 3597 && k) // the last 3 s
            memcpy(last + (total - 16000LL * 3597), out, k * sizeof(float));
        total += (int64_t)k;
        if (total % (16000 * 60) == 0) {
            long r = rss_kib();
            rss_max = r > rss_max ? r : rss_max;
        }
        if (k < 16000)
            break;
    }
    audio_stream_close(s);
    printf("\n  1 h at %d Hz: %lld samples; VmRSS %ld KiB before, max %ld KiB while streaming "
           "(growth %ld KiB)", rate, (long long)total, rss0, rss_max, rss_max - rss0);
    CU_ASSERT_EQUAL(total, 3600LL * 16000);
    CU_ASSERT(rss_max - rss0 < 50 * 1024);
    size_t m;
    float *x = stream_all(path, audio_stream_default_params(), 16000LL * 3597, 4096, &m);
    CU_ASSERT(m == 16000 * 3 && same_bits(x, last, m));
    free(x);
    remove(path);
}

int main(void)
{
    tmp = sl_test_tmpdir("astream");
    static const sl_test_case cases[] = {
        {"16 kHz: stream == audio_read_file, seeks exact", test_16k_exact},
        {"other rates: full length, == audio_read_file", test_rates_vs_file},
        {"resampled lengths over rates and lengths, audio_read_file too", test_lengths},
        {"resampled seeks are exact (block grid)", test_seek_resampled},
        {"a restarted soxr is not the continuous run", test_restart_not_exact},
        {"bad files are error values", test_errors},
        {"1-hour file: flat memory", test_long_memory},
        {NULL, NULL}};
    int rc = sl_test_main("audio_stream", cases);
    sl_test_rmtree(tmp);
    return rc;
}
