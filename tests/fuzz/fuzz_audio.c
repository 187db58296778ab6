// tests/fuzz/fuzz_audio.c — libFuzzer target: the audio front end
// (pipeline/audio.c, audio_read_memory: libsndfile virtual I/O, mixdown, soxr)
// on arbitrary bytes. max_seconds is kept small so a header that promises hours
// is refused before allocation, as in a job (2 s keeps soxr cheap); output is read in full.
#include <stdint.h>
#include <stdlib.h>

#include "pipeline/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static audio_reader *r;
    sl_err err;
    if (!r) { // one reader for the process, as a worker thread keeps one
        audio_params p = audio_default_params();
        p.max_seconds = 2.0f;
        p.min_samples = 1;
        if (audio_reader_new(&r, p, &err) != SL_OK)
            abort();
    }
    audio_result res;
    if (audio_read_memory(r, data, size, "fuzz.audio", &res, &err) != SL_OK)
        return 0;
    if (res.n_samples > (size_t)(2.0 * 16000) + 16)
        __builtin_trap(); // more output than the duration limit allows
    volatile float sink = 0.0f;
    for (size_t k = 0; k < res.n_samples; k++)
        sink += res.pcm[k];
    (void)sink;
    return 0;
}
