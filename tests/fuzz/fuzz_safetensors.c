// tests/fuzz/fuzz_safetensors.c — libFuzzer target: the safetensors header
// parser (pipeline/weights.c, wts_open_memory) on arbitrary bytes. Every tensor
// the parser accepts is read end to end, so an offset it failed to check shows
// up as an ASan out-of-bounds read.
#include <stdint.h>
#include <string.h>

#include "pipeline/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wts_file *w = NULL;
    sl_err err;
    if (wts_open_memory(&w, data, size, "fuzz.safetensors", &err) != SL_OK)
        return 0;
    volatile float sink = 0.0f;
    for (size_t i = 0; i < wts_count(w); i++) {
        const wts_info *t = wts_at(w, i);
        const float *f = NULL;
        if (wts_get(w, t->name, t->ndim, t->shape, &f, &err) == SL_OK)
            for (size_t k = 0; k < t->count; k++)
                sink += f[k];
        (void)wts_find(w, t->name);
    }
    (void)wts_metadata(w, "format");
    (void)sink;
    wts_close(w);
    return 0;
}
