// tests/fuzz/fuzz_row.c — libFuzzer target: the row / error record codec
// (storage/row.c) on arbitrary bytes. What decodes must re-encode to exactly
// the same bytes (a row carries version REC_VERSION), and every id is readable.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/row.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_err err;
    rec_header h;
    if (rec_row_decode(data, size, &h, &err) == SL_OK) {
        int32_t *sem = malloc(4 * (size_t)h.n_semantic + 4);
        int32_t *txt = malloc(4 * (size_t)h.n_text + 4);
        unsigned char *out = malloc(size);
        if (!sem || !txt || !out)
            abort();
        rec_row_ids(data, &h, sem, txt);
        (void)rec_row_id_at(data, (size_t)h.n_semantic);
        long k = rec_row_encode(&h, sem, txt, out, size, &err);
        if (k != (long)size || memcmp(out, data, size) != 0)
            __builtin_trap(); // decode accepted what encode cannot reproduce
        free(sem);
        free(txt);
        free(out);
    }
    rec_error e;
    if (rec_error_decode(data, size, &e, &err) == SL_OK) {
        volatile char sink = 0;
        for (uint32_t i = 0; i < e.msg_len; i++)
            sink ^= e.msg[i];
        (void)sink;
        (void)sl_stage_name(e.stage);
    }
    return 0;
}
