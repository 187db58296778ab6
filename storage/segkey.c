// storage/segkey.c — see segkey.h.
#include "storage/segkey.h"

#include <string.h>

#define SAMPLES_PER_MS (SEG_KEY_HZ / 1000)

// Writes ms as "DDDDD.DDD" (9 bytes) at p.
static void put_ms(char *p, uint64_t ms)
{
    for (int i = 8; i >= 0; i--) {
        if (i == 5) {
            p[i] = '.';
            continue;
        }
        p[i] = (char)('0' + ms % 10);
        ms /= 10;
    }
}

// Reads "DDDDD.DDD" at p; 0 when a byte is not where the pattern wants it.
static int get_ms(const char *p, uint64_t *ms)
{
    uint64_t v = 0;
    for (int i = 0; i < 9; i++) {
        if (i == 5) {
            if (p[i] != '.')
                return 0;
            continue;
        }
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *ms = v;
    return 1;
}

size_t seg_key_format(const char *source, size_t source_len, uint64_t start, uint64_t end,
                      char *out, size_t cap)
{
    if (source_len == 0 || end <= start || end >= SEG_KEY_LIMIT_SAMPLES)
        return 0;
    if (source_len > SIZE_MAX - SEG_KEY_SUFFIX_BYTES - 1)
        return 0;
    size_t len = source_len + SEG_KEY_SUFFIX_BYTES;
    if (cap < len + 1)
        return 0;
    memmove(out, source, source_len); // out may be source's own buffer
    char *p = out + source_len;
    p[0] = '@';
    put_ms(p + 1, start / SAMPLES_PER_MS);
    p[10] = '-';
    put_ms(p + 11, end / SAMPLES_PER_MS);
    p[20] = '\0';
    return len;
}

int seg_key_parse(const char *key, size_t key_len, size_t *source_len, uint64_t *start_ms,
                  uint64_t *end_ms)
{
    if (key_len <= SEG_KEY_SUFFIX_BYTES)
        return 0;
    const char *p = key + key_len - SEG_KEY_SUFFIX_BYTES;
    uint64_t s, e;
    if (p[0] != '@' || p[10] != '-' || !get_ms(p + 1, &s) || !get_ms(p + 11, &e) || e < s)
        return 0;
    if (source_len)
        *source_len = key_len - SEG_KEY_SUFFIX_BYTES;
    if (start_ms)
        *start_ms = s;
    if (end_ms)
        *end_ms = e;
    return 1;
}

int seg_key_split(const char *key, size_t key_len, size_t *source_len)
{
    return seg_key_parse(key, key_len, source_len, NULL, NULL);
}
