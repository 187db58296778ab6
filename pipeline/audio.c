// pipeline/audio.c — see audio.h. One audio_stream (audio_stream.h) decodes, mixes down
// and resamples; this file checks the limits and gathers the samples.
#include "pipeline/audio.h"

#include "pipeline/audio_stream.h"

#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define AUDIO_BLOCK_SAMPLES 65536 // output samples per audio_stream_read call

struct audio_reader {
    audio_params p;
    float *out;      // samples at target_hz
    size_t out_cap;
};

audio_params audio_default_params(void)
{
    audio_params p = {16000, 60.0f, 400};
    return p;
}

int audio_reader_new(audio_reader **out, audio_params p, sl_err *err)
{
    *out = NULL;
    if (p.target_hz <= 0 || !(p.max_seconds > 0.0f) || p.min_samples < 1)
        return sl_fail(err, SL_EINVAL, "audio: bad parameters (target_hz %d, max_seconds %g, "
                       "min_samples %zu)", p.target_hz, (double)p.max_seconds, p.min_samples);
    audio_reader *r = calloc(1, sizeof *r);
    if (!r)
        return sl_fail(err, SL_ENOMEM, "audio: out of memory");
    r->p = p;
    *out = r;
    return SL_OK;
}

void audio_reader_free(audio_reader *r)
{
    if (!r)
        return;
    free(r->out);
    free(r);
}

// Grows *buf to hold n floats (never shrinks). Returns 0 on success.
static int grow(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    if (n > SIZE_MAX / sizeof(float))
        return -1;
    float *b = realloc(*buf, n * sizeof(float));
    if (!b)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

// ---- decoding: everything goes through one audio_stream ------------------------------

// Output samples max_seconds of input can give at target_hz, plus the rounding of one
// input frame: only a stream whose header understates its length (MPEG) gets near it.
static size_t limit_of(const audio_reader *r, int file_hz)
{
    double lim = (double)r->p.max_seconds * r->p.target_hz;
    return (size_t)lim + (size_t)(r->p.target_hz / file_hz) + 2;
}

// Reads want samples of s (or, want < 0, all of them up to the limit) into r->out.
static int drain(audio_reader *r, audio_stream *s, const char *name, int64_t want, size_t limit,
                 size_t *n, sl_err *err)
{
    size_t got = 0;
    for (;;) {
        size_t room = want >= 0 ? (size_t)want - got : AUDIO_BLOCK_SAMPLES;
        if (room == 0)
            break;
        if (room > AUDIO_BLOCK_SAMPLES)
            room = AUDIO_BLOCK_SAMPLES;
        if (want < 0 && got + room > limit + 1)
            room = limit + 1 - got;
        if (grow(&r->out, &r->out_cap, got + room > r->out_cap && r->out_cap * 2 > got + room
                                          ? r->out_cap * 2 : got + room))
            return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory for %zu samples", name,
                           got + room);
        size_t k = 0;
        int rc = audio_stream_read(s, r->out + got, room, &k, err);
        if (rc)
            return rc;
        got += k;
        if (want < 0 && got > limit)
            return sl_fail(err, SL_EFORMAT, "audio: %s: too long (more than %g s)", name,
                           (double)r->p.max_seconds);
        if (k < room)
            break;
    }
    *n = got;
    return SL_OK;
}

static void fill_info(audio_result *res, const audio_stream_info *in)
{
    res->file_hz = in->file_hz;
    res->file_channels = in->file_channels;
    res->file_format = in->file_format;
}

static int too_short(audio_reader *r, const char *name, audio_result *res, sl_err *err)
{
    size_t have = res->n_samples;
    memset(res, 0, sizeof *res);
    return sl_fail(err, SL_EFORMAT, "audio: %s: too short: %zu samples at %d Hz (need at "
                   "least %zu)", name, have, r->p.target_hz, r->p.min_samples);
}

// A whole stream: the limit from the header first, then every sample.
static int decode(audio_reader *r, audio_stream *s, const char *name, audio_result *res,
                  sl_err *err)
{
    audio_stream_info in;
    audio_stream_get_info(s, &in);
    double header_s = in.file_frames > 0 ? in.duration_s : 0.0;
    if (header_s > (double)r->p.max_seconds)
        return sl_fail(err, SL_EFORMAT, "audio: %s: too long: %.2f s (limit %g s)", name, header_s,
                       (double)r->p.max_seconds);
    size_t n = 0;
    int rc = drain(r, s, name, -1, limit_of(r, in.file_hz), &n, err);
    if (rc)
        return rc;
    audio_stream_get_info(s, &in); // MPEG: the frame count is known now
    fill_info(res, &in);
    res->duration_s = (float)in.duration_s;
    res->pcm = r->out;
    res->n_samples = n;
    if (n < r->p.min_samples)
        return too_short(r, name, res, err);
    return SL_OK;
}

static audio_stream_params stream_params(const audio_reader *r)
{
    audio_stream_params sp = audio_stream_default_params();
    sp.target_hz = r->p.target_hz;
    return sp;
}

int audio_read_file(audio_reader *r, const char *path, audio_result *res, sl_err *err)
{
    memset(res, 0, sizeof *res);
    audio_stream *s;
    int rc = audio_stream_open(&s, path, stream_params(r), 0, err);
    if (rc)
        return rc;
    rc = decode(r, s, path, res, err);
    audio_stream_close(s);
    if (rc)
        memset(res, 0, sizeof *res);
    return rc;
}

int audio_read_memory(audio_reader *r, const void *bytes, size_t n_bytes, const char *name,
                      audio_result *res, sl_err *err)
{
    memset(res, 0, sizeof *res);
    if (!name)
        name = "(memory)";
    if (!bytes && n_bytes)
        return sl_fail(err, SL_EINVAL, "audio: %s: NULL buffer", name);
    audio_stream *s;
    int rc = audio_stream_open_memory(&s, bytes, n_bytes, name, stream_params(r), 0, err);
    if (rc)
        return rc;
    rc = decode(r, s, name, res, err);
    audio_stream_close(s);
    if (rc)
        memset(res, 0, sizeof *res);
    return rc;
}

int audio_read_range(audio_reader *r, const char *path, int64_t start, int64_t end,
                     audio_result *res, sl_err *err)
{
    memset(res, 0, sizeof *res);
    if (start < 0 || end <= start)
        return sl_fail(err, SL_EINVAL, "audio: %s: bad piece [%lld, %lld)", path,
                       (long long)start, (long long)end);
    double hz = r->p.target_hz, piece_s = (double)(end - start) / hz;
    if (piece_s > (double)r->p.max_seconds)
        return sl_fail(err, SL_EFORMAT, "audio: %s: piece %.3f-%.3f s too long: %.2f s (limit "
                       "%g s)", path, (double)start / hz, (double)end / hz, piece_s,
                       (double)r->p.max_seconds);
    // The file's length first (a header read), so a piece past the end is named as such.
    audio_stream *s;
    int rc = audio_stream_open(&s, path, stream_params(r), 0, err);
    if (rc)
        return rc;
    audio_stream_info in;
    audio_stream_get_info(s, &in);
    int mpeg = (in.file_format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
    audio_stream_close(s);
    if (!mpeg && end > in.n_samples + AUDIO_PIECE_SLACK)
        goto past_end;
    // MPEG: libsndfile's count is an estimate; the stream decodes up to start and a
    // start past the real end is found by the first read (SL_EINVAL).
    if ((rc = audio_stream_open(&s, path, stream_params(r), start, err)))
        return rc;
    size_t n = 0;
    rc = drain(r, s, path, end - start, 0, &n, err);
    audio_stream_get_info(s, &in);
    audio_stream_close(s);
    if (rc == SL_EINVAL && mpeg)
        goto past_end;
    if (rc)
        return rc;
    if ((int64_t)n + AUDIO_PIECE_SLACK < end - start) {
        in.n_samples = start + (int64_t)n;
        goto past_end;
    }
    fill_info(res, &in);
    res->pcm = r->out;
    res->n_samples = n;
    res->duration_s = (float)((double)n / hz);
    if (n < r->p.min_samples)
        return too_short(r, path, res, err);
    return SL_OK;
past_end:
    memset(res, 0, sizeof *res);
    return sl_fail(err, SL_EFORMAT, "audio: %s: piece %.3f-%.3f s (samples %lld-%lld at %d Hz) "
                   "ends past the end of the file (%lld samples, %.3f s)", path,
                   (double)start / hz, (double)end / hz, (long long)start, (long long)end,
                   r->p.target_hz, (long long)in.n_samples, (double)in.n_samples / hz);
}
