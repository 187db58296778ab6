// tests/fuzz/fuzz_manifest.c — libFuzzer target: the manifest parser
// (coordinator/manifest.c, man_parse) on arbitrary text. Checks the promises of
// manifest.h: ids sorted bytewise and unique, every item has an id and a path, a
// piece has a range and a segment key (storage/segkey.h).
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/manifest.h"
#include "storage/segkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) { // warnings for every bad line would drown the fuzzer's own output
        sl_log_set_level(SL_LOG_ERROR);
        quiet = 1;
    }
    manifest m;
    sl_err err;
    if (man_parse((const char *)data, size, "fuzz/manifest.tsv", &m, &err) != SL_OK)
        return 0;
    for (size_t i = 0; i < m.n; i++) {
        if (!m.items[i].id || !m.items[i].path || !m.items[i].id[0])
            __builtin_trap();
        if (i && strcmp(m.items[i - 1].id, m.items[i].id) >= 0)
            __builtin_trap(); // not sorted or not unique
        const man_item *it = &m.items[i];
        size_t src_len;
        if (man_item_is_piece(it) &&
            (it->bad || it->start < 0 || it->end <= it->start ||
             it->n_samples != it->end - it->start ||
             !seg_key_split(it->id, strlen(it->id), &src_len)))
            __builtin_trap(); // a piece: a good item with a range and a segment key
        if (!man_item_is_piece(it) && it->start != 0)
            __builtin_trap();
    }
    if (!m.root)
        __builtin_trap();
    man_free(&m);
    return 0;
}
