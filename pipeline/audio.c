// pipeline/audio.c — see audio.h. libsndfile decodes, we mix down, soxr resamples.
#include "pipeline/audio.h"

#include "pipeline/audio_sf.h"

#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define AUDIO_BLOCK_FRAMES 4096 // frames per sf_readf_float call when mixing down

struct audio_reader {
    audio_params p;
    float *mono;     // mixed-down samples at the file rate
    size_t mono_cap;
    float *out;      // resampled samples at target_hz
    size_t out_cap;
    float *block;    // interleaved multichannel block, AUDIO_BLOCK_FRAMES x channels
    size_t block_cap;
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
    free(r->mono);
    free(r->out);
    free(r->block);
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

// ---- libsndfile virtual I/O over a memory image --------------------------------------

typedef struct mem_file {
    const unsigned char *bytes;
    sf_count_t n, pos;
} mem_file;

static sf_count_t mem_len(void *ud) { return ((mem_file *)ud)->n; }

static sf_count_t mem_seek(sf_count_t off, int whence, void *ud)
{
    mem_file *m = ud;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->n;
    sf_count_t p = base + off;
    if (p < 0)
        return -1;
    m->pos = p; // past the end is allowed (like lseek); reads then return 0
    return p;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *ud)
{
    mem_file *m = ud;
    if (count <= 0 || m->pos >= m->n)
        return 0;
    sf_count_t k = m->n - m->pos < count ? m->n - m->pos : count;
    memcpy(ptr, m->bytes + m->pos, (size_t)k);
    m->pos += k;
    return k;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *ud) { return 0; }
static sf_count_t mem_tell(void *ud) { return ((mem_file *)ud)->pos; }

// ---- decoding ------------------------------------------------------------------------

// Reads all frames of sf, mixes them down into r->mono; *n = frames read.
static int read_mono(audio_reader *r, SNDFILE *sf, const SF_INFO *info, const char *name,
                     size_t *n, sl_err *err)
{
    size_t ch = (size_t)info->channels;
    // Header frame counts are checked against max_seconds before we get here, so
    // this allocation is bounded; a stream that delivers more than it announced is
    // still cut off at the limit below.
    size_t limit = (size_t)((double)r->p.max_seconds * info->samplerate) + 1;
    size_t want = info->frames > 0 ? (size_t)info->frames : AUDIO_BLOCK_FRAMES;
    if (grow(&r->mono, &r->mono_cap, want < limit ? want : limit))
        return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory for %zu samples", name, want);
    size_t got = 0;
    if (ch == 1) {
        for (;;) {
            if (got == r->mono_cap) {
                if (got >= limit)
                    return sl_fail(err, SL_EFORMAT, "audio: %s: too long (more than %g s)", name,
                                   (double)r->p.max_seconds);
                size_t c2 = r->mono_cap * 2 < limit ? r->mono_cap * 2 : limit;
                if (grow(&r->mono, &r->mono_cap, c2))
                    return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", name);
            }
            sf_count_t k = sf_read_float(sf, r->mono + got, (sf_count_t)(r->mono_cap - got));
            if (k <= 0)
                break;
            got += (size_t)k;
        }
    } else {
        if (grow(&r->block, &r->block_cap, AUDIO_BLOCK_FRAMES * ch))
            return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", name);
        const float inv = 1.0f / (float)ch;
        for (;;) {
            sf_count_t k = sf_readf_float(sf, r->block, AUDIO_BLOCK_FRAMES);
            if (k <= 0)
                break;
            if (got + (size_t)k > limit)
                return sl_fail(err, SL_EFORMAT, "audio: %s: too long (more than %g s)", name,
                               (double)r->p.max_seconds);
            if (got + (size_t)k > r->mono_cap) {
                size_t c2 = r->mono_cap * 2 > got + (size_t)k ? r->mono_cap * 2 : got + (size_t)k;
                if (c2 > limit)
                    c2 = limit;
                if (grow(&r->mono, &r->mono_cap, c2))
                    return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", name);
            }
            for (sf_count_t f = 0; f < k; f++) { // ref: fairseq mixes down by mean(-1)
                const float *fr = r->block + (size_t)f * ch;
                float s = 0.0f;
                for (size_t c = 0; c < ch; c++)
                    s += fr[c];
                r->mono[got + (size_t)f] = s * inv;
            }
            got += (size_t)k;
        }
    }
    if (sf_error(sf) != SF_ERR_NO_ERROR)
        return sl_fail(err, SL_ECORRUPT, "audio: %s: read failed after %zu frames: %s", name, got,
                       sf_strerror(sf));
    // MPEG frame counts are estimates; every other format's count is exact, and
    // fewer frames than announced means the file was cut short.
    if ((info->format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG && info->frames > 0 &&
        got < (size_t)info->frames)
        return sl_fail(err, SL_ECORRUPT, "audio: %s: truncated: header announces %lld frames, "
                       "only %zu could be read", name, (long long)info->frames, got);
    *n = got;
    return SL_OK;
}

static int decode(audio_reader *r, SNDFILE *sf, SF_INFO *info, const char *name,
                  audio_result *res, sl_err *err)
{
    memset(res, 0, sizeof *res);
    char log[2048];
    const char *cut = audio_sf_cut_chunk(sf, log, sizeof log);
    if (cut)
        return sl_fail(err, SL_ECORRUPT, "audio: %s: truncated: libsndfile: %s", name, cut);
    if (info->channels < 1 || info->samplerate < 1)
        return sl_fail(err, SL_EFORMAT, "audio: %s: %d channels at %d Hz", name, info->channels,
                       info->samplerate);
    // libsndfile reports SF_COUNT_MAX when it cannot find where a stream ends: an Ogg
    // file cut before its last page. Not "hours long": refuse it as truncated rather
    // than label the part before the cut (MPEG, whose counts are estimates anyway, is
    // the one format decoded as far as it goes).
    if (info->frames == SF_COUNT_MAX)
        return sl_fail(err, SL_ECORRUPT, "audio: %s: truncated or damaged: libsndfile finds no "
                       "end of stream (length unknown)", name);
    double header_s = info->frames > 0 ? (double)info->frames / info->samplerate : 0.0;
    if (header_s > (double)r->p.max_seconds)
        return sl_fail(err, SL_EFORMAT, "audio: %s: too long: %.2f s (limit %g s)", name, header_s,
                       (double)r->p.max_seconds);
    sf_command(sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
    size_t n = 0;
    int rc = read_mono(r, sf, info, name, &n, err);
    if (rc)
        return rc;
    // Float files are passed through as stored, so a damaged one can hold NaN or Inf
    // (and a mixdown of huge finite values can overflow): one such sample would turn
    // every HuBERT frame into NaN and the row into garbage ids. Refuse it here.
    for (size_t i = 0; i < n; i++)
        if (!isfinite(r->mono[i]))
            return sl_fail(err, SL_EFORMAT, "audio: %s: sample %zu (%.3f s) is %s: not finite "
                           "audio", name, i, (double)i / info->samplerate,
                           isnan(r->mono[i]) ? "NaN" : "infinite");
    res->duration_s = (float)((double)n / info->samplerate);
    res->file_hz = info->samplerate;
    res->file_channels = info->channels;
    res->file_format = info->format;
    if (info->samplerate == r->p.target_hz) {
        res->pcm = r->mono;
        res->n_samples = n;
    } else {
        double ratio = (double)r->p.target_hz / info->samplerate;
        size_t olen = (size_t)((double)n * ratio + 0.5);
        if (grow(&r->out, &r->out_cap, olen ? olen : 1))
            return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory for %zu samples", name, olen);
        size_t idone = 0, odone = 0;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_error_t e = soxr_oneshot(info->samplerate, r->p.target_hz, 1, r->mono, n, &idone,
                                      r->out, olen, &odone, &io, &q, NULL);
        if (e)
            return sl_fail(err, SL_EFORMAT, "audio: %s: resampling %d -> %d Hz: soxr: %s", name,
                           info->samplerate, r->p.target_hz, e);
        res->pcm = r->out;
        res->n_samples = odone;
    }
    if (res->n_samples < r->p.min_samples) {
        size_t have = res->n_samples;
        memset(res, 0, sizeof *res);
        return sl_fail(err, SL_EFORMAT, "audio: %s: too short: %zu samples at %d Hz (need at "
                       "least %zu)", name, have, r->p.target_hz, r->p.min_samples);
    }
    return SL_OK;
}

int audio_read_file(audio_reader *r, const char *path, audio_result *res, sl_err *err)
{
    memset(res, 0, sizeof *res);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (!sf)
        return audio_sf_open_fail(path, err);
    int rc = decode(r, sf, &info, path, res, err);
    sf_close(sf);
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
    SF_VIRTUAL_IO vio = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    mem_file mf = {bytes, (sf_count_t)n_bytes, 0};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    if (n_bytes == 0)
        return sl_fail(err, SL_EFORMAT, "audio: open %s: empty file (0 bytes)", name);
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &mf);
    if (!sf)
        return sl_fail(err, SL_EFORMAT, "audio: open %s: %s", name, sf_strerror(NULL));
    int rc = decode(r, sf, &info, name, res, err);
    sf_close(sf);
    if (rc)
        memset(res, 0, sizeof *res);
    return rc;
}
