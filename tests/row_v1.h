// tests/row_v1.h — row bytes exactly as format version 1 wrote them (the
// storage/row.c of REC_VERSION 1, before segments), for tests that check old
// datasets still read: "SPLR", u16 1, u16 flags, u32 n_semantic, u32 n_text,
// f32 duration, f32 score, then i32 semantic ids, -1, text ids. No checks: a
// test writes what it means to. Returns the bytes written (cap must hold them).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline size_t sl_test_row_v1(uint16_t flags, const int32_t *sem, uint32_t n_sem,
                                    const int32_t *txt, uint32_t n_txt, float duration_s,
                                    float score, unsigned char *out)
{
    uint16_t version = 1;
    int32_t delim = -1;
    memcpy(out, "SPLR", 4);
    memcpy(out + 4, &version, 2);
    memcpy(out + 6, &flags, 2);
    memcpy(out + 8, &n_sem, 4);
    memcpy(out + 12, &n_txt, 4);
    memcpy(out + 16, &duration_s, 4);
    memcpy(out + 20, &score, 4);
    if (n_sem)
        memcpy(out + 24, sem, 4 * (size_t)n_sem);
    memcpy(out + 24 + 4 * (size_t)n_sem, &delim, 4);
    if (n_txt)
        memcpy(out + 28 + 4 * (size_t)n_sem, txt, 4 * (size_t)n_txt);
    return 28 + 4 * ((size_t)n_sem + n_txt);
}
