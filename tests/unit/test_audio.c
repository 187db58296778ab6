// tests/unit/test_audio.c — pipeline/audio: exact 16-bit path, formats made at test time
// with sox / espeak-ng, limits, and error values for bad input.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "pipeline/audio.h"
#include "tests/testutil.h"

static const char *tmp;

static const char *tpath(const char *name) { return sl_test_join(tmp, name); }

static audio_reader *reader(float max_s)
{
    audio_params p = audio_default_params();
    p.max_seconds = max_s;
    audio_reader *r;
    sl_err e;
    CU_ASSERT_FATAL(audio_reader_new(&r, p, &e) == SL_OK);
    return r;
}

// 16-bit 16 kHz mono reaches the caller as int16 / 32768, bit for bit.
static void test_pcm16_exact(void)
{
    void *raw;
    size_t nb;
    sl_err e;
    CU_ASSERT_FATAL(sl_read_file(sl_test_data("speech_16k.wav"), 1 << 24, &raw, &nb, &e) == 0);
    const unsigned char *b = raw;
    size_t off = 12, data = 0, dlen = 0; // walk RIFF chunks to "data"
    while (off + 8 <= nb) {
        uint32_t len = (uint32_t)b[off + 4] | (uint32_t)b[off + 5] << 8 |
                       (uint32_t)b[off + 6] << 16 | (uint32_t)b[off + 7] << 24;
        if (!memcmp(b + off, "data", 4)) {
            data = off + 8;
            dlen = len;
            break;
        }
        off += 8 + len + (len & 1);
    }
    CU_ASSERT_FATAL(data && dlen == 46536 * 2);
    audio_reader *r = reader(60.0f);
    audio_result a;
    CU_ASSERT_FATAL(audio_read_file(r, sl_test_data("speech_16k.wav"), &a, &e) == SL_OK);
    CU_ASSERT_EQUAL_FATAL(a.n_samples, 46536);
    CU_ASSERT_EQUAL(a.file_hz, 16000);
    size_t bad = 0;
    for (size_t i = 0; i < a.n_samples; i++) {
        int16_t v = (int16_t)(b[data + 2 * i] | b[data + 2 * i + 1] << 8);
        float want = (float)v / 32768.0f;
        bad += memcmp(&want, &a.pcm[i], sizeof(float)) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    // The memory entry point (virtual I/O) decodes the same bytes identically.
    float *copy = malloc(a.n_samples * sizeof(float));
    memcpy(copy, a.pcm, a.n_samples * sizeof(float));
    audio_result m;
    CU_ASSERT_FATAL(audio_read_memory(r, raw, nb, "speech_16k.wav", &m, &e) == SL_OK);
    CU_ASSERT_EQUAL_FATAL(m.n_samples, a.n_samples);
    CU_ASSERT(memcmp(copy, m.pcm, a.n_samples * sizeof(float)) == 0);
    free(copy);
    free(raw);
    audio_reader_free(r);
}

// Other encodings of the same 16 kHz sentence: exact ones decode to the same samples.
static void test_formats(void)
{
    const char *src = sl_test_data("speech_16k.wav");
    char srcc[4200];
    snprintf(srcc, sizeof srcc, "%s", src);
    struct { const char *name, *sox_args; int exact; } f[] = {
        {"stereo.wav", "-c 2", 1},                  // both channels equal: mean is exact
        {"u8.wav", "-b 8 -e unsigned-integer", 0},
        {"s24.wav", "-b 24", 1},
        {"f32.wav", "-b 32 -e floating-point", 1},
        {"flac.flac", "", 1},
        {"vorbis.ogg", "-C 6", 0},
        {"s16_44k.wav", "-r 44100", 0},
        {"stereo_8k.flac", "-c 2 -r 8000", 0},
    };
    audio_reader *r = reader(60.0f);
    sl_err e;
    audio_result ref;
    CU_ASSERT_FATAL(audio_read_file(r, srcc, &ref, &e) == SL_OK);
    float *x = malloc(ref.n_samples * sizeof(float));
    memcpy(x, ref.pcm, ref.n_samples * sizeof(float));
    size_t n = ref.n_samples;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "sox -D '%s' %s '%s'", srcc, f[i].sox_args, tpath(f[i].name));
        CU_ASSERT_FATAL(system(cmd) == 0);
        audio_result a;
        int rc = audio_read_file(r, tpath(f[i].name), &a, &e);
        if (rc)
            fprintf(stderr, "%s: %s\n", f[i].name, e.msg);
        CU_ASSERT_FATAL(rc == SL_OK);
        CU_ASSERT_EQUAL(a.file_channels, strstr(f[i].name, "stereo") ? 2 : 1);
        long dn = (long)a.n_samples - (long)n;
        CU_ASSERT(dn >= -2 && dn <= 2); // resampled lengths round
        float d = sl_test_max_abs_diff(x, a.pcm, a.n_samples < n ? a.n_samples : n);
        printf("\n  %-16s %zu samples, max|x - 16-bit original| = %.3g", f[i].name, a.n_samples,
               (double)d);
        if (f[i].exact) {
            CU_ASSERT_EQUAL(a.n_samples, n);
            CU_ASSERT(d == 0.0f);
        } else {
            CU_ASSERT(d < 0.5f); // same sentence, not noise
        }
    }
    // A fresh espeak-ng utterance at its native 22050 Hz.
    CU_ASSERT_FATAL(sl_test_sh("espeak-ng -v en-us -w '%s' 'Good morning, everyone.'%s",
                       tpath("espeak.wav"), "") == 0);
    audio_result a;
    CU_ASSERT_FATAL(audio_read_file(r, tpath("espeak.wav"), &a, &e) == SL_OK);
    CU_ASSERT_EQUAL(a.file_hz, 22050);
    CU_ASSERT(a.n_samples > 16000);
    free(x);
    audio_reader_free(r);
}

static void expect_error(audio_reader *r, const char *path, int code, const char *words)
{
    sl_err e;
    audio_result a;
    int rc = audio_read_file(r, path, &a, &e);
    printf("\n  %s -> %s", path + strlen(tmp) + 1, rc ? e.msg : "OK");
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_PTR_NULL(a.pcm);
    CU_ASSERT_EQUAL(a.n_samples, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, path)); // names the file
    if (words)
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, words));
}

static void test_errors(void)
{
    const char *src = sl_test_data("speech_16k.wav");
    char srcc[4200];
    snprintf(srcc, sizeof srcc, "%s", src);
    CU_ASSERT_FATAL(sl_test_sh("head -c 1000 '%s' > '%s'", srcc, tpath("cut_data.wav")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("head -c 30 '%s' > '%s'", srcc, tpath("cut_header.wav")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' '%s'", srcc, tpath("whole.flac")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("head -c 20000 '%s' > '%s'", tpath("whole.flac"), tpath("cut.flac")) == 0);
    CU_ASSERT_FATAL(sl_test_sh(": > '%s'%s", tpath("empty.wav"), "") == 0);
    CU_ASSERT_FATAL(sl_test_sh("echo 'this is not audio at all, just text' > '%s'%s", tpath("text.wav"),
                       "") == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' '%s' trim 0 300s", srcc, tpath("short.wav")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox -n -r 16000 -c 1 -b 16 '%s' trim 0 0%s", tpath("zero.wav"), "") == 0);
    audio_reader *r = reader(60.0f);
    expect_error(r, tpath("cut_data.wav"), SL_ECORRUPT, "truncated");
    expect_error(r, tpath("cut_header.wav"), SL_EIO, NULL);
    expect_error(r, tpath("cut.flac"), SL_ECORRUPT, "truncated");
    expect_error(r, tpath("empty.wav"), SL_EIO, NULL);
    expect_error(r, tpath("text.wav"), SL_EIO, NULL);
    expect_error(r, tpath("missing.wav"), SL_EIO, "No such file");
    expect_error(r, tpath("short.wav"), SL_EFORMAT, "too short");
    expect_error(r, tpath("zero.wav"), SL_EFORMAT, "too short");
    audio_reader_free(r);
    r = reader(1.0f); // 2.9 s of audio with a 1 s limit, refused from the header
    CU_ASSERT_FATAL(sl_test_sh("cp '%s' '%s'", srcc, tpath("long.wav")) == 0);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' -r 8000 '%s'", srcc, tpath("long.ogg")) == 0);
    expect_error(r, tpath("long.wav"), SL_EFORMAT, "too long");
    expect_error(r, tpath("long.ogg"), SL_EFORMAT, "too long");
    // Memory entry point: garbage and empty buffers are errors, not crashes.
    sl_err e;
    audio_result a;
    CU_ASSERT(audio_read_memory(r, "garbage!", 8, "mem", &a, &e) == SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "mem"));
    CU_ASSERT(audio_read_memory(r, NULL, 0, "nothing", &a, &e) == SL_EFORMAT);
    audio_reader_free(r);
    audio_params bad = {0, 60.0f, 400};
    CU_ASSERT(audio_reader_new(&r, bad, &e) == SL_EINVAL && r == NULL);
}

// audio_read_range: a piece is exactly those samples of the whole file (16 kHz and
// 44.1 kHz stereo), its limits are its own, and a piece past the end names the file,
// its length and the piece; up to AUDIO_PIECE_SLACK samples past the end are the tail.
static void test_ranges(void)
{
    char srcc[4200];
    snprintf(srcc, sizeof srcc, "%s", sl_test_data("speech_16k.wav"));
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' -r 44100 -c 2 '%s'", srcc, tpath("r44.wav")) == 0);
    const char *files[] = {srcc, tpath("r44.wav")};
    audio_reader *r = reader(60.0f), *w = reader(60.0f);
    sl_err e;
    for (int f = 0; f < 2; f++) {
        audio_result whole, a;
        CU_ASSERT_FATAL(audio_read_file(w, files[f], &whole, &e) == SL_OK);
        int64_t n = (int64_t)whole.n_samples;
        int64_t cuts[][2] = {{0, 8000}, {1234, 20000}, {16000, n}, {n - 4000, n + 1}, {0, n},
                             {30001, 30401}};
        for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
            int64_t s0 = cuts[k][0], s1 = cuts[k][1], want = (s1 > n ? n : s1) - s0;
            int rc = audio_read_range(r, files[f], s0, s1, &a, &e);
            if (rc)
                fprintf(stderr, "\n%s\n", e.msg);
            CU_ASSERT_FATAL(rc == SL_OK);
            CU_ASSERT_EQUAL((int64_t)a.n_samples, want);
            CU_ASSERT(memcmp(a.pcm, whole.pcm + s0, (size_t)want * sizeof(float)) == 0);
            CU_ASSERT(a.duration_s == (float)((double)want / 16000.0));
            CU_ASSERT_EQUAL(a.file_hz, f ? 44100 : 16000);
        }
        printf("\n  %s: %lld samples, 6 pieces == the whole file's samples bit for bit",
               f ? "44.1 kHz stereo" : "16 kHz", (long long)n);
        CU_ASSERT_EQUAL(audio_read_range(r, files[f], n - 4000, n + 2, &a, &e), SL_EFORMAT);
        printf("\n  %s", e.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, files[f]));
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "ends past the end of the file"));
        char len[64];
        snprintf(len, sizeof len, "(%lld samples", (long long)n);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, len));
        CU_ASSERT(a.pcm == NULL && a.n_samples == 0);
        CU_ASSERT_EQUAL(audio_read_range(r, files[f], n + 5, n + 900, &a, &e), SL_EFORMAT);
        CU_ASSERT_EQUAL(audio_read_range(r, files[f], 100, 399, &a, &e), SL_EFORMAT);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "too short"));
        CU_ASSERT_EQUAL(audio_read_range(r, files[f], 100, 100, &a, &e), SL_EINVAL);
        CU_ASSERT_EQUAL(audio_read_range(r, files[f], -1, 100, &a, &e), SL_EINVAL);
    }
    audio_reader_free(r);
    r = reader(1.0f); // the limit is the piece's: 1 s of a 2.9 s file is fine, 1.5 s is not
    audio_result a;
    CU_ASSERT_EQUAL(audio_read_range(r, srcc, 8000, 24000, &a, &e), SL_OK);
    CU_ASSERT_EQUAL(a.n_samples, 16000);
    CU_ASSERT_EQUAL(audio_read_range(r, srcc, 8000, 32000, &a, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "too long"));
    audio_reader_free(r);
    audio_reader_free(w);
}

int main(void)
{
    tmp = sl_test_tmpdir("audio");
    static const sl_test_case cases[] = {{"16-bit 16 kHz mono is samples/32768", test_pcm16_exact},
                                         {"formats made with sox / espeak-ng", test_formats},
                                         {"bad files are error values", test_errors},
                                         {"pieces of a file (audio_read_range)", test_ranges},
                                         {NULL, NULL}};
    int rc = sl_test_main("audio", cases);
    sl_test_rmtree(tmp);
    return rc;
}
