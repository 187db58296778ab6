// storage/segkey.c — see segkey.h.
#include "storage/segkey.h"

#include <stdio.h>
#include <string.h>

#define SEG_RATE 16000u
#define SEG_MAX_MS 99999999u // 99999.999 s

// 1 when samples / 16000 s is above 99999.999 s.
static int too_far(uint64_t samples) { return samples > (uint64_t)SEG_MAX_MS * SEG_RATE / 1000u; }

size_t seg_key_format(const char *source, size_t source_len, uint64_t start, uint64_t end,
                      char *out, size_t cap)
{
    if (end <= start || too_far(start) || too_far(end))
        return 0;
    size_t len = source_len + SEG_KEY_SUFFIX_LEN;
    if (cap < len + 1)
        return 0;
    uint64_t s_ms = start * 1000u / SEG_RATE, e_ms = end * 1000u / SEG_RATE;
    memcpy(out, source, source_len);
    snprintf(out + source_len, cap - source_len, "@%05u.%03u-%05u.%03u", (unsigned)(s_ms / 1000),
             (unsigned)(s_ms % 1000), (unsigned)(e_ms / 1000), (unsigned)(e_ms % 1000));
    return len;
}

int seg_key_split(const char *key, size_t key_len, size_t *source_len)
{
    static const char pat[] = "@99999.999-99999.999"; // 9 = a digit, others literal
    if (key_len < SEG_KEY_SUFFIX_LEN)
        return 0;
    const char *suf = key + key_len - SEG_KEY_SUFFIX_LEN;
    for (size_t i = 0; i < SEG_KEY_SUFFIX_LEN; i++) {
        if (pat[i] == '9' ? (suf[i] < '0' || suf[i] > '9') : suf[i] != pat[i])
            return 0;
    }
    *source_len = key_len - SEG_KEY_SUFFIX_LEN;
    return 1;
}
