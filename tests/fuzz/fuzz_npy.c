// tests/fuzz/fuzz_npy.c — libFuzzer target: the .npy reader (common/npy.c,
// sl_npy_parse) on arbitrary bytes; accepted arrays are read in full.
#include <stdint.h>
#include <string.h>

#include "common/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_npy a;
    sl_err err;
    if (sl_npy_parse(data, size, "fuzz.npy", &a, &err) != SL_OK)
        return 0;
    size_t count = 1;
    for (int i = 0; i < a.ndim; i++)
        count *= a.shape[i];
    if (count != a.count)
        __builtin_trap(); // the parser's count disagrees with its own shape
    volatile unsigned char sink = 0;
    const unsigned char *p = a.data;
    size_t bytes = a.count * (a.dtype == SL_NPY_F32 ? 4 : 8);
    for (size_t k = 0; k < bytes; k++)
        sink ^= p[k];
    (void)sink;
    sl_npy_free(&a);
    return 0;
}
