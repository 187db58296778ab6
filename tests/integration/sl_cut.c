// tests/integration/sl_cut.c — test tool: the reference for a manifest piece.
//   sl_cut IN START END OUT.wav
// Reads IN from its first sample at 16 kHz through pipeline/audio_stream.h (the job's
// reader) and writes output samples [START, END) as a 32-bit float mono 16 kHz WAV, so
// `spearlabel tokens OUT.wav` sees exactly those samples: the piece cut out of the
// whole resampled recording (the job itself seeks to START instead).
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>

#include "pipeline/audio_stream.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: sl_cut IN START END OUT.wav\n");
        return 2;
    }
    long long start = atoll(argv[2]), end = atoll(argv[3]);
    if (start < 0 || end <= start) {
        fprintf(stderr, "sl_cut: bad range %lld-%lld\n", start, end);
        return 2;
    }
    audio_stream *s;
    sl_err e;
    if (audio_stream_open(&s, argv[1], audio_stream_default_params(), 0, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *out = sf_open(argv[4], SFM_WRITE, &info);
    if (!out) {
        fprintf(stderr, "sl_cut: %s: %s\n", argv[4], sf_strerror(NULL));
        return 1;
    }
    static float buf[4096];
    long long at = 0;
    for (;;) {
        size_t n;
        if (audio_stream_read(s, buf, sizeof buf / sizeof buf[0], &n, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        if (n == 0)
            break;
        long long a = at > start ? at : start, z = at + (long long)n < end ? at + (long long)n : end;
        if (z > a && sf_write_float(out, buf + (a - at), z - a) != z - a) {
            fprintf(stderr, "sl_cut: write %s: %s\n", argv[4], sf_strerror(out));
            return 1;
        }
        at += (long long)n;
        if (at >= end)
            break;
    }
    sf_close(out);
    audio_stream_close(s);
    if (at < end) {
        fprintf(stderr, "sl_cut: %s has %lld samples, the piece ends at %lld\n", argv[1], at, end);
        return 1;
    }
    return 0;
}
