// pipeline/audio_stream.c — see audio_stream.h. libsndfile decodes a block at a time,
// we mix down, a fresh soxr per output block resamples, the caller drains.
#include "pipeline/audio_stream.h"

#include <assert.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/audio_sf.h"

#define STREAM_FRAMES 4096 // file frames per libsndfile call, mono samples per soxr call

struct audio_stream {
    audio_stream_params p;
    char *name;    // the path, for messages
    SNDFILE *sf;
    SF_INFO info;
    audio_sf_mem mem; // audio_stream_open_memory: the image libsndfile reads
    int mpeg;      // frame counts are estimates: total known only at the end
    int resample;  // file rate != target_hz
    int failed;    // a read failed: repeat `fail`
    sl_err fail;
    int done;      // every sample delivered

    int64_t fpos;  // file frames decoded so far (the next frame to decode)
    int at_eof;    // no frame after fpos
    float *inter;  // STREAM_FRAMES x channels interleaved frames
    float *mono;   // mixed-down samples [mono_pos, mono_pos + mono_n) at the file rate
    size_t mono_cap, mono_n;
    int64_t mono_pos;

    int64_t start; // the sample the stream was opened at
    int64_t next;  // index of the next output sample to deliver
    int64_t total; // output samples of the whole stream; INT64_MAX while unknown (MPEG)

    // Resampling grid (see the header): block k covers output [k c_out, (k+1) c_out)
    // and is fed input [k c_in - w_in, (k+1) c_in + w_in) (clamped to the file).
    int64_t c_in, c_out, w_in, w_out;
    int64_t p_in, p_out; // the rates' phase period: p_in file frames = p_out outputs
    soxr_t sx;
    int64_t blk;      // current block
    int64_t feed;     // next input sample to give soxr
    int64_t feed_end; // end of this block's input (before clamping to the file)
    int64_t sx_out;   // output index of soxr's next output sample
    int flushed;
    float *obuf;      // kept outputs waiting for the caller: [o_head, o_head + o_n)
    size_t obuf_cap, o_head, o_n;
};

audio_stream_params audio_stream_default_params(void)
{
    audio_stream_params p = {16000, 60};
    return p;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

// round(frames * to / from), halves up, without overflow for any realistic length.
// Returns -1 when the result does not fit.
static int64_t scale_round(int64_t frames, int64_t to, int64_t from)
{
    int64_t q = frames / from, r = frames % from;
    if (q > (INT64_MAX - to) / to)
        return -1;
    return q * to + (r * to + from / 2) / from;
}

static int fail_with(audio_stream *s, int rc, const sl_err *e, sl_err *err)
{
    if (!s->failed) {
        s->failed = 1;
        s->fail = *e;
    }
    if (err)
        *err = s->fail;
    return rc;
}

static int grow(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < n)
        c *= 2;
    float *b = realloc(*buf, c * sizeof(float));
    if (!b)
        return -1;
    *buf = b;
    *cap = c;
    return 0;
}

// Drops mono samples before `keep` (never past what is held).
static void compact(audio_stream *s, int64_t keep)
{
    if (keep <= s->mono_pos)
        return;
    size_t d = (size_t)(keep - s->mono_pos);
    if (d > s->mono_n)
        d = s->mono_n;
    memmove(s->mono, s->mono + d, (s->mono_n - d) * sizeof(float));
    s->mono_n -= d;
    s->mono_pos += (int64_t)d;
}

// The output length of n file frames.
static int set_total(audio_stream *s, int64_t frames, sl_err *err)
{
    s->total = s->resample ? scale_round(frames, s->p.target_hz, s->info.samplerate) : frames;
    if (s->total < 0)
        return sl_fail(err, SL_EFORMAT, "audio: %s: %lld frames is more than a stream can "
                       "count", s->name, (long long)frames);
    return SL_OK;
}

// Decodes up to STREAM_FRAMES frames and appends them, mixed down, to the mono window
// (which must end at fpos). Sets at_eof at the end of the file; finds truncation.
static int decode_more(audio_stream *s, sl_err *err)
{
    assert(s->mono_pos + (int64_t)s->mono_n == s->fpos);
    if (s->at_eof)
        return SL_OK;
    sf_count_t want = STREAM_FRAMES;
    if (!s->mpeg && s->info.frames - s->fpos < want) // never past the header's count
        want = s->info.frames - s->fpos;
    if (grow(&s->mono, &s->mono_cap, s->mono_n + STREAM_FRAMES))
        return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", s->name);
    float *dst = s->mono + s->mono_n;
    size_t ch = (size_t)s->info.channels;
    sf_count_t k = 0;
    if (want > 0) {
        if (ch == 1) {
            k = sf_read_float(s->sf, dst, want);
        } else {
            k = sf_readf_float(s->sf, s->inter, want);
            const float inv = 1.0f / (float)ch;
            for (sf_count_t f = 0; f < k; f++) { // ref: fairseq mixes down by mean(-1), as audio.c
                const float *fr = s->inter + (size_t)f * ch;
                float sum = 0.0f;
                for (size_t c = 0; c < ch; c++)
                    sum += fr[c];
                dst[f] = sum * inv;
            }
        }
    }
    if (k < 0)
        k = 0;
    for (sf_count_t i = 0; i < k; i++)
        if (!isfinite(dst[i])) {
            int64_t at = s->fpos + i;
            return sl_fail(err, SL_EFORMAT, "audio: %s: sample %lld (%.3f s) is %s: not finite "
                           "audio", s->name, (long long)at, (double)at / s->info.samplerate,
                           isnan(dst[i]) ? "NaN" : "infinite");
        }
    s->mono_n += (size_t)k;
    s->fpos += k;
    if (k > 0 && (s->mpeg || s->fpos < s->info.frames))
        return SL_OK;
    // The end: no more frames, or the header's count reached. Fewer frames than the
    // header announces is a truncated file (libsndfile's words added when it has some,
    // e.g. a FLAC decoder that lost sync at the cut).
    int sferr = k == 0 && sf_error(s->sf) != SF_ERR_NO_ERROR;
    if (!s->mpeg && s->fpos < s->info.frames)
        return sl_fail(err, SL_ECORRUPT, "audio: %s: truncated: header announces %lld frames, "
                       "only %lld could be read%s%s", s->name, (long long)s->info.frames,
                       (long long)s->fpos, sferr ? ": " : "", sferr ? sf_strerror(s->sf) : "");
    if (sferr)
        return sl_fail(err, SL_ECORRUPT, "audio: %s: read failed after %lld frames: %s", s->name,
                       (long long)s->fpos, sf_strerror(s->sf));
    s->at_eof = 1;
    if (s->mpeg) // MPEG counts are estimates: the length is what decoded
        return set_total(s, s->fpos, err);
    return SL_OK;
}

// Positions the file at frame `pos` with an empty mono window there.
static int seek_to(audio_stream *s, int64_t pos, sl_err *err)
{
    s->mono_n = 0;
    if (!s->mpeg) {
        if (pos > 0 && sf_seek(s->sf, pos, SEEK_SET) != pos)
            return sl_fail(err, SL_EIO, "audio: %s: seek to frame %lld: %s", s->name,
                           (long long)pos, sf_strerror(s->sf));
        s->fpos = pos;
        s->mono_pos = pos;
        s->at_eof = pos >= s->info.frames;
        return SL_OK;
    }
    // MPEG: decode from the start and discard (libsndfile's MPEG seek is not trusted
    // to be sample-exact).
    s->mono_pos = 0;
    while (s->fpos < pos && !s->at_eof) {
        int rc = decode_more(s, err);
        if (rc)
            return rc;
        compact(s, pos < s->fpos ? pos : s->fpos);
    }
    return SL_OK;
}

static int new_soxr(audio_stream *s, sl_err *err)
{
    if (s->sx)
        soxr_delete(s->sx);
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    s->sx = soxr_create(s->info.samplerate, s->p.target_hz, 1, &e, &io, &q, NULL);
    if (!s->sx || e)
        return sl_fail(err, SL_EFORMAT, "audio: %s: resampling %d -> %d Hz: soxr: %s", s->name,
                       s->info.samplerate, s->p.target_hz, e ? e : "cannot create");
    return SL_OK;
}

// Starts block k: a fresh soxr fed from the block's warm-up on.
static int begin_block(audio_stream *s, int64_t k, sl_err *err)
{
    s->blk = k;
    s->feed = k ? k * s->c_in - s->w_in : 0;
    s->feed_end = (k + 1) * s->c_in + s->w_in;
    s->sx_out = s->feed / s->p_in * s->p_out; // exact: feed is a multiple of p_in
    s->flushed = 0;
    return new_soxr(s, err);
}

// Keeps the soxr outputs [sx_out, sx_out + n) that belong to the current block, are
// not before `next` and not past the end; moves them to the caller's queue.
static void keep_outputs(audio_stream *s, const float *o, size_t n)
{
    int64_t lo = s->blk * s->c_out, hi = lo + s->c_out;
    if (lo < s->next)
        lo = s->next;
    if (hi > s->total)
        hi = s->total;
    int64_t a = s->sx_out > lo ? s->sx_out : lo;
    int64_t b = s->sx_out + (int64_t)n < hi ? s->sx_out + (int64_t)n : hi;
    if (b > a) {
        // o points into obuf at o_head + o_n (see soxr_call), so moving down is in place.
        memmove(s->obuf + s->o_head + s->o_n, o + (a - s->sx_out), (size_t)(b - a) * sizeof(float));
        s->o_n += (size_t)(b - a);
    }
    s->sx_out += (int64_t)n;
}

// One soxr_process call pattern: all of in[0..n) (or the flush when in == NULL), output
// appended behind the queue. The pattern depends only on the block's input.
static int soxr_call(audio_stream *s, const float *in, size_t n, sl_err *err)
{
    size_t used = 0;
    for (;;) {
        size_t free_n = s->obuf_cap - s->o_head - s->o_n;
        if (free_n < 1024) {
            if (grow(&s->obuf, &s->obuf_cap, s->obuf_cap * 2))
                return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", s->name);
            free_n = s->obuf_cap - s->o_head - s->o_n;
        }
        float *o = s->obuf + s->o_head + s->o_n;
        size_t id = 0, od = 0;
        soxr_error_t e = soxr_process(s->sx, in ? in + used : NULL, in ? n - used : 0, &id, o,
                                      free_n, &od);
        if (e)
            return sl_fail(err, SL_EFORMAT, "audio: %s: resampling %d -> %d Hz: soxr: %s",
                           s->name, s->info.samplerate, s->p.target_hz, e);
        keep_outputs(s, o, od);
        if (!in) {
            if (od == 0) // the flush is over when soxr returns nothing
                return SL_OK;
            continue;
        }
        used += id;
        if (used == n && od < free_n)
            return SL_OK;
        if (id == 0 && od == 0)
            return sl_fail(err, SL_EFORMAT, "audio: %s: resampling %d -> %d Hz: soxr made no "
                           "progress", s->name, s->info.samplerate, s->p.target_hz);
    }
}

// Resampling: advances the current block by one soxr call, or flushes it, or starts
// the next block, or ends the stream. Outputs land in the queue.
static int step_resample(audio_stream *s, sl_err *err)
{
    int rc;
    if (!s->flushed) {
        int64_t want = s->feed + STREAM_FRAMES < s->feed_end ? s->feed + STREAM_FRAMES
                                                               : s->feed_end;
        while (s->fpos < want && !s->at_eof)
            if ((rc = decode_more(s, err)))
                return rc;
        int64_t have = s->fpos < want ? s->fpos : want;
        if (have > s->feed) {
            assert(s->feed >= s->mono_pos);
            rc = soxr_call(s, s->mono + (s->feed - s->mono_pos), (size_t)(have - s->feed), err);
            if (rc)
                return rc;
            s->feed = have;
            // Keep what the next block's warm-up needs; drop the rest.
            int64_t next_lo = (s->blk + 1) * s->c_in - s->w_in;
            compact(s, s->feed < next_lo ? s->feed : next_lo);
            return SL_OK;
        }
        // This block's input is complete (its end, or the file's).
        if ((rc = soxr_call(s, NULL, 0, err)))
            return rc;
        s->flushed = 1;
        return SL_OK;
    }
    if (s->total <= (s->blk + 1) * s->c_out) {
        s->done = 1;
        return SL_OK;
    }
    int64_t lo = (s->blk + 1) * s->c_in - s->w_in;
    assert(lo >= s->mono_pos);
    compact(s, lo);
    return begin_block(s, s->blk + 1, err);
}

// No resampling: output sample i is mono sample i.
static int step_plain(audio_stream *s, sl_err *err)
{
    compact(s, s->next);
    if (s->mono_n) { // hand the window over as the queue
        if (grow(&s->obuf, &s->obuf_cap, s->mono_n))
            return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", s->name);
        memcpy(s->obuf, s->mono, s->mono_n * sizeof(float));
        s->o_head = 0;
        s->o_n = s->mono_n;
        compact(s, s->mono_pos + (int64_t)s->mono_n);
        return SL_OK;
    }
    if (s->at_eof) {
        s->done = 1;
        return SL_OK;
    }
    return decode_more(s, err);
}

// Opens path, or (bytes != NULL) the image bytes[0..n_bytes) named path in messages.
static int stream_open(audio_stream **out, const char *path, const void *bytes, size_t n_bytes,
                       audio_stream_params p, int64_t start, sl_err *err)
{
    *out = NULL;
    if (p.target_hz <= 0 || p.block_seconds < 1 || start < 0)
        return sl_fail(err, SL_EINVAL, "audio: %s: bad stream parameters (target_hz %d, "
                       "block_seconds %d, start %lld)", path, p.target_hz, p.block_seconds,
                       (long long)start);
    audio_stream *s = calloc(1, sizeof *s);
    if (!s)
        return sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", path);
    s->p = p;
    s->name = malloc(strlen(path) + 1);
    int rc = SL_ENOMEM;
    if (!s->name) {
        sl_fail(err, rc, "audio: %s: out of memory", path);
        goto fail;
    }
    strcpy(s->name, path);
    if (bytes || n_bytes) {
        if (!bytes || n_bytes == 0) {
            rc = sl_fail(err, SL_EFORMAT, "audio: open %s: %s", path,
                         n_bytes ? "NULL buffer" : "empty file (0 bytes)");
            goto fail;
        }
        s->sf = audio_sf_open_memory(&s->mem, bytes, n_bytes, &s->info);
        if (!s->sf) {
            rc = sl_fail(err, SL_EFORMAT, "audio: open %s: %s", path, sf_strerror(NULL));
            goto fail;
        }
    } else {
        s->sf = sf_open(path, SFM_READ, &s->info);
        if (!s->sf) {
            rc = audio_sf_open_fail(path, err);
            goto fail;
        }
    }
    char log[2048];
    const char *cut = audio_sf_cut_chunk(s->sf, log, sizeof log);
    if (cut) {
        rc = sl_fail(err, SL_ECORRUPT, "audio: %s: truncated: libsndfile: %s", path, cut);
        goto fail;
    }
    if (s->info.channels < 1 || s->info.samplerate < 1) {
        rc = sl_fail(err, SL_EFORMAT, "audio: %s: %d channels at %d Hz", path, s->info.channels,
                     s->info.samplerate);
        goto fail;
    }
    // As audio.c: SF_COUNT_MAX means libsndfile found no end (an Ogg file cut short).
    if (s->info.frames == SF_COUNT_MAX) {
        rc = sl_fail(err, SL_ECORRUPT, "audio: %s: truncated or damaged: libsndfile finds no "
                     "end of stream (length unknown)", path);
        goto fail;
    }
    sf_command(s->sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
    s->mpeg = (s->info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
    s->resample = s->info.samplerate != p.target_hz;
    if (s->info.frames < 0)
        s->info.frames = 0;
    s->inter = malloc((size_t)STREAM_FRAMES * (size_t)s->info.channels * sizeof(float));
    // Room for one soxr call's output (STREAM_FRAMES in, plus what soxr holds back), so
    // one call per input block is the rule and the queue grows only in odd cases; soxr's
    // samples do not depend on how its output is split over calls (the seek and read
    // size tests at 8 kHz, where a call yields the most, would show it).
    size_t room = (size_t)(2.0 * STREAM_FRAMES * p.target_hz / s->info.samplerate) + 8192;
    if (!s->inter || grow(&s->obuf, &s->obuf_cap, room)) {
        rc = sl_fail(err, SL_ENOMEM, "audio: %s: out of memory", path);
        goto fail;
    }
    if ((rc = set_total(s, s->info.frames, err)))
        goto fail;
    if (s->mpeg)
        s->total = INT64_MAX;
    else if (start > s->total) {
        rc = sl_fail(err, SL_EINVAL, "audio: %s: start %lld is past the end (%lld samples)", path,
                     (long long)start, (long long)s->total);
        goto fail;
    }
    s->start = start;
    s->next = start;
    if (!s->resample) {
        if ((rc = seek_to(s, start, err)))
            goto fail;
    } else {
        int64_t fr = s->info.samplerate, to = p.target_hz, g = gcd64(fr, to);
        s->p_in = fr / g;
        s->p_out = to / g;
        // 0.1 s of warm-up (soxr HQ's filters are a few ms long; 0.05 s already gives
        // rounding-level seams), rounded up to whole phase periods.
        int64_t per = (to / 10 + s->p_out - 1) / s->p_out;
        s->w_out = per * s->p_out;
        s->w_in = per * s->p_in;
        s->c_out = (int64_t)p.block_seconds * to;
        s->c_in = (int64_t)p.block_seconds * fr;
        if ((rc = begin_block(s, start / s->c_out, err)) || (rc = seek_to(s, s->feed, err)))
            goto fail;
    }
    *out = s;
    return SL_OK;
fail:
    audio_stream_close(s);
    return rc;
}

int audio_stream_open(audio_stream **out, const char *path, audio_stream_params p,
                      int64_t start, sl_err *err)
{
    return stream_open(out, path, NULL, 0, p, start, err);
}

int audio_stream_open_memory(audio_stream **out, const void *bytes, size_t n_bytes,
                             const char *name, audio_stream_params p, int64_t start, sl_err *err)
{
    *out = NULL;
    if (!bytes && !n_bytes)
        return sl_fail(err, SL_EFORMAT, "audio: open %s: empty file (0 bytes)",
                       name ? name : "(memory)");
    return stream_open(out, name ? name : "(memory)", bytes, n_bytes, p, start, err);
}

int audio_stream_read(audio_stream *s, float *out, size_t cap, size_t *n, sl_err *err)
{
    *n = 0;
    if (s->failed)
        return fail_with(s, s->fail.code, &s->fail, err);
    size_t got = 0;
    while (got < cap) {
        if (s->o_n) {
            size_t k = s->o_n < cap - got ? s->o_n : cap - got;
            memcpy(out + got, s->obuf + s->o_head, k * sizeof(float));
            got += k;
            s->o_head += k;
            s->o_n -= k;
            s->next += (int64_t)k;
            if (!s->o_n)
                s->o_head = 0;
            continue;
        }
        if (s->done)
            break;
        sl_err e;
        int rc = s->resample ? step_resample(s, &e) : step_plain(s, &e);
        if (rc) {
            *n = got; // what came before the error is delivered
            return fail_with(s, rc, &e, err);
        }
        if (s->mpeg && s->at_eof && s->next > s->total) {
            sl_fail(&e, SL_EINVAL, "audio: %s: start %lld is past the end (%lld samples)",
                    s->name, (long long)s->next, (long long)s->total);
            return fail_with(s, SL_EINVAL, &e, err);
        }
    }
    *n = got;
    return SL_OK;
}

int64_t audio_stream_tell(const audio_stream *s) { return s->next; }

void audio_stream_get_info(const audio_stream *s, audio_stream_info *info)
{
    memset(info, 0, sizeof *info);
    info->file_hz = s->info.samplerate;
    info->file_channels = s->info.channels;
    info->file_format = s->info.format;
    // MPEG: the header's count is an estimate; once the end is reached, what decoded.
    info->file_frames = s->mpeg && s->at_eof ? s->fpos : s->info.frames;
    if (s->mpeg && s->at_eof)
        info->n_samples = s->total;
    else if (s->resample)
        info->n_samples = scale_round(s->info.frames, s->p.target_hz, s->info.samplerate);
    else
        info->n_samples = s->info.frames;
    info->duration_s = (double)info->file_frames / s->info.samplerate;
    info->start = s->start;
}

void audio_stream_close(audio_stream *s)
{
    if (!s)
        return;
    if (s->sx)
        soxr_delete(s->sx);
    if (s->sf)
        sf_close(s->sf);
    free(s->inter);
    free(s->mono);
    free(s->obuf);
    free(s->name);
    free(s);
}
