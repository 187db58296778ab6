// storage/row.c — see row.h. Little-endian is asserted at compile time: the
// layout is defined as little-endian and every machine we target is.
#include "storage/row.h"

#include <math.h>
#include <string.h>

#include "storage/segkey.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "storage/row.c assumes a little-endian host"
#endif

_Static_assert(REC_HZ == SEG_KEY_HZ, "row bounds and segment keys count the same samples");

static const char ROW_MAGIC[4] = {'S', 'P', 'L', 'R'};
static const char ERR_MAGIC[4] = {'S', 'P', 'L', 'E'};

static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

// Bytes of a row of either version; 0 on overflow (n_semantic, n_text are u32 on disk).
static size_t row_bytes(size_t header, size_t n_semantic, size_t n_text, size_t source_len)
{
    if (n_semantic > UINT32_MAX || n_text > UINT32_MAX || source_len > UINT32_MAX)
        return 0;
    size_t ids = (n_semantic + 1 + n_text); // < 2^33: no overflow on 64-bit size_t
    if (ids > (SIZE_MAX - header - source_len) / 4)
        return 0;
    return header + 4 * ids + source_len;
}

size_t rec_row_bytes(size_t n_semantic, size_t n_text, size_t source_len)
{
    return row_bytes(REC_HEADER_BYTES_V2, n_semantic, n_text, source_len);
}

long rec_row_encode(const rec_header *h, const int32_t *semantic, const int32_t *text, void *out,
                    size_t cap, sl_err *err)
{
    size_t need = rec_row_bytes(h->n_semantic, h->n_text, h->source_len);
    if (need == 0 || need > cap)
        return sl_fail(err, SL_EINVAL, "row: %zu bytes needed, %zu available", need, cap);
    if (h->flags & ~REC_FLAG_KNOWN)
        return sl_fail(err, SL_EINVAL, "row: unknown flags 0x%x", h->flags);
    if (h->end < h->start)
        return sl_fail(err, SL_EINVAL, "row: end %llu is before start %llu",
                       (unsigned long long)h->end, (unsigned long long)h->start);
    if (h->source_len && (!h->source || memchr(h->source, 0, h->source_len)))
        return sl_fail(err, SL_EINVAL, "row: the source id is missing or holds a NUL byte");
    for (uint32_t i = 0; i < h->n_semantic; i++)
        if (semantic[i] < 0)
            return sl_fail(err, SL_EINVAL, "row: semantic id %u is negative (%d)", i, semantic[i]);
    for (uint32_t i = 0; i < h->n_text; i++)
        if (text[i] < 0)
            return sl_fail(err, SL_EINVAL, "row: text id %u is negative (%d)", i, text[i]);
    unsigned char *p = out;
    memcpy(p, ROW_MAGIC, 4);
    put16(p + 4, REC_VERSION);
    put16(p + 6, h->flags);
    put32(p + 8, h->n_semantic);
    put32(p + 12, h->n_text);
    memcpy(p + 16, &h->duration_s, 4);
    memcpy(p + 20, &h->score, 4);
    put64(p + 24, h->start);
    put64(p + 32, h->end);
    put32(p + 40, h->source_len);
    unsigned char *ids = p + REC_HEADER_BYTES_V2;
    if (h->n_semantic)
        memcpy(ids, semantic, 4 * (size_t)h->n_semantic);
    int32_t delim = REC_DELIM;
    memcpy(ids + 4 * (size_t)h->n_semantic, &delim, 4);
    if (h->n_text)
        memcpy(ids + 4 * ((size_t)h->n_semantic + 1), text, 4 * (size_t)h->n_text);
    if (h->source_len)
        memcpy(ids + 4 * ((size_t)h->n_semantic + 1 + h->n_text), h->source, h->source_len);
    return (long)need;
}

// A version-1 row's end: its f32 duration in 16 kHz samples, rounded; 0 when the
// duration is not a finite number in [0, 2^53 / 16000] (a value no audio has).
static uint64_t v1_end(float duration_s)
{
    double s = (double)duration_s * REC_HZ;
    if (!(s >= 0.0) || s > 9007199254740992.0)
        return 0;
    return (uint64_t)llround(s);
}

int rec_row_decode(const void *v, size_t n, rec_header *h, sl_err *err)
{
    const unsigned char *p = v;
    if (n < REC_HEADER_BYTES_V1)
        return sl_fail(err, SL_ECORRUPT, "row: %zu bytes is shorter than the %d-byte header", n,
                       REC_HEADER_BYTES_V1);
    if (memcmp(p, ROW_MAGIC, 4) != 0)
        return sl_fail(err, SL_ECORRUPT, "row: bad magic (not SPLR)");
    h->version = get16(p + 4);
    h->flags = get16(p + 6);
    h->n_semantic = get32(p + 8);
    h->n_text = get32(p + 12);
    memcpy(&h->duration_s, p + 16, 4);
    memcpy(&h->score, p + 20, 4);
    h->source = NULL;
    h->source_len = 0;
    if (h->version == 0 || h->version > REC_VERSION)
        return sl_fail(err, SL_ECORRUPT, "row: version %u is not supported (this build reads up "
                       "to %d)", h->version, REC_VERSION);
    if (h->flags & ~REC_FLAG_KNOWN)
        return sl_fail(err, SL_ECORRUPT, "row: unknown flags 0x%x", h->flags);
    size_t header = REC_HEADER_BYTES_V1;
    if (h->version == 1) {
        h->start = 0;
        h->end = v1_end(h->duration_s);
    } else {
        header = REC_HEADER_BYTES_V2;
        if (n < header)
            return sl_fail(err, SL_ECORRUPT, "row: %zu bytes is shorter than the %d-byte "
                           "version-2 header", n, REC_HEADER_BYTES_V2);
        h->start = get64(p + 24);
        h->end = get64(p + 32);
        h->source_len = get32(p + 40);
        if (h->end < h->start)
            return sl_fail(err, SL_ECORRUPT, "row: end %llu is before start %llu",
                           (unsigned long long)h->end, (unsigned long long)h->start);
    }
    size_t need = row_bytes(header, h->n_semantic, h->n_text, h->source_len);
    if (need != n)
        return sl_fail(err, SL_ECORRUPT, "row: header says %u semantic + %u text ids and a "
                       "%u-byte source (%zu bytes) but the value has %zu bytes", h->n_semantic,
                       h->n_text, h->source_len, need, n);
    const unsigned char *ids = p + header;
    size_t total = (size_t)h->n_semantic + 1 + h->n_text;
    for (size_t i = 0; i < total; i++) {
        int32_t x;
        memcpy(&x, ids + 4 * i, 4);
        if (i == h->n_semantic) {
            if (x != REC_DELIM)
                return sl_fail(err, SL_ECORRUPT, "row: no -1 delimiter after %u semantic ids",
                               h->n_semantic);
        } else if (x < 0) {
            return sl_fail(err, SL_ECORRUPT, "row: negative id %d at position %zu", x, i);
        }
    }
    if (h->source_len) {
        h->source = (const char *)ids + 4 * total;
        if (memchr(h->source, 0, h->source_len))
            return sl_fail(err, SL_ECORRUPT, "row: the %u-byte source id holds a NUL byte",
                           h->source_len);
    }
    return SL_OK;
}

size_t rec_row_ids_offset(const rec_header *h)
{
    return h->version == 1 ? REC_HEADER_BYTES_V1 : REC_HEADER_BYTES_V2;
}

void rec_row_ids(const void *v, const rec_header *h, int32_t *semantic, int32_t *text)
{
    const unsigned char *ids = (const unsigned char *)v + rec_row_ids_offset(h);
    if (semantic && h->n_semantic)
        memcpy(semantic, ids, 4 * (size_t)h->n_semantic);
    if (text && h->n_text)
        memcpy(text, ids + 4 * ((size_t)h->n_semantic + 1), 4 * (size_t)h->n_text);
}

int32_t rec_row_id_at(const void *v, size_t i)
{
    const unsigned char *p = v;
    size_t off = get16(p + 4) == 1 ? REC_HEADER_BYTES_V1 : REC_HEADER_BYTES_V2;
    int32_t x;
    memcpy(&x, p + off + 4 * i, 4);
    return x;
}

uint32_t rec_row_n_source(const rec_header *h)
{
    return h->n_semantic - ((h->flags & REC_FLAG_SEED_EOS) && h->n_semantic ? 1u : 0u);
}

void rec_row_source(const rec_header *h, const char *key, size_t key_len, const char **src,
                    size_t *src_len)
{
    if (h->source_len) {
        *src = h->source;
        *src_len = h->source_len;
    } else {
        *src = key;
        *src_len = key_len;
    }
}

int rec_row_check_key(const rec_header *h, const char *key, size_t key_len, sl_err *err)
{
    size_t prefix;
    uint64_t s_ms, e_ms;
    if (!seg_key_parse(key, key_len, &prefix, &s_ms, &e_ms)) {
        if (h->source_len)
            return sl_fail(err, SL_ECORRUPT, "row: a whole-file key with a source id of its "
                           "own (%u bytes)", h->source_len);
        if (h->start != 0)
            return sl_fail(err, SL_ECORRUPT, "row: a whole-file key starting at sample %llu",
                           (unsigned long long)h->start);
        return SL_OK;
    }
    if (h->version == 1)
        return sl_fail(err, SL_ECORRUPT, "row: a segment key on a version-1 row (no bounds)");
    if (h->source_len != prefix || memcmp(h->source, key, prefix) != 0)
        return sl_fail(err, SL_ECORRUPT, "row: the source id is not the segment key's prefix "
                       "(%zu bytes)", prefix);
    if (h->end <= h->start)
        return sl_fail(err, SL_ECORRUPT, "row: an empty segment (start = end = %llu)",
                       (unsigned long long)h->start);
    uint64_t per_ms = REC_HZ / 1000;
    if (h->start / per_ms != s_ms || h->end / per_ms != e_ms)
        return sl_fail(err, SL_ECORRUPT, "row: samples [%llu, %llu) disagree with the key's "
                       "milliseconds [%llu, %llu]", (unsigned long long)h->start,
                       (unsigned long long)h->end, (unsigned long long)s_ms,
                       (unsigned long long)e_ms);
    return SL_OK;
}

size_t rec_error_bytes(size_t msg_len) { return REC_ERR_HEADER_BYTES + msg_len; }
long rec_error_encode(sl_stage stage, int32_t code, uint32_t attempts, const char *msg,
                      void *out, size_t cap, sl_err *err)
{
    size_t len = msg ? strlen(msg) : 0;
    size_t need = rec_error_bytes(len);
    if (need > cap)
        return sl_fail(err, SL_EINVAL, "error record: %zu bytes needed, %zu available", need, cap);
    if (stage < 0 || stage >= SL_STAGE_COUNT)
        return sl_fail(err, SL_EINVAL, "error record: unknown stage %d", (int)stage);
    unsigned char *p = out;
    memcpy(p, ERR_MAGIC, 4);
    put16(p + 4, REC_ERR_VERSION);
    put16(p + 6, (uint16_t)stage);
    put32(p + 8, (uint32_t)code);
    put32(p + 12, attempts);
    put32(p + 16, (uint32_t)len);
    if (len)
        memcpy(p + REC_ERR_HEADER_BYTES, msg, len);
    return (long)need;
}

int rec_error_decode(const void *v, size_t n, rec_error *e, sl_err *err)
{
    const unsigned char *p = v;
    if (n < REC_ERR_HEADER_BYTES)
        return sl_fail(err, SL_ECORRUPT, "error record: %zu bytes is shorter than the header", n);
    if (memcmp(p, ERR_MAGIC, 4) != 0)
        return sl_fail(err, SL_ECORRUPT, "error record: bad magic (not SPLE)");
    e->version = get16(p + 4);
    e->stage = get16(p + 6);
    e->code = (int32_t)get32(p + 8);
    e->attempts = get32(p + 12);
    e->msg_len = get32(p + 16);
    e->msg = (const char *)p + REC_ERR_HEADER_BYTES;
    if (e->version == 0 || e->version > REC_ERR_VERSION)
        return sl_fail(err, SL_ECORRUPT, "error record: version %u is not supported", e->version);
    if (e->stage >= SL_STAGE_COUNT)
        return sl_fail(err, SL_ECORRUPT, "error record: unknown stage %u", e->stage);
    if ((size_t)e->msg_len != n - REC_ERR_HEADER_BYTES)
        return sl_fail(err, SL_ECORRUPT, "error record: message length %u but %zu bytes follow",
                       e->msg_len, n - REC_ERR_HEADER_BYTES);
    return SL_OK;
}
