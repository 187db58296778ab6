// storage/row.c — see row.h. Little-endian is asserted at compile time: the
// layout is defined as little-endian and every machine we target is.
#include "storage/row.h"

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "storage/row.c assumes a little-endian host"
#endif

static const char ROW_MAGIC[4] = {'S', 'P', 'L', 'R'};
static const char ERR_MAGIC[4] = {'S', 'P', 'L', 'E'};

static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint16_t get16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

size_t rec_row_bytes(size_t n_semantic, size_t n_text)
{
    if (n_semantic > UINT32_MAX || n_text > UINT32_MAX)
        return 0;
    return REC_HEADER_BYTES + 4 * (n_semantic + 1 + n_text);
}

long rec_row_encode(const rec_header *h, const int32_t *semantic, const int32_t *text, void *out,
                    size_t cap, sl_err *err)
{
    size_t need = rec_row_bytes(h->n_semantic, h->n_text);
    if (need == 0 || need > cap)
        return sl_fail(err, SL_EINVAL, "row: %zu bytes needed, %zu available", need, cap);
    if (h->flags & ~REC_FLAG_KNOWN)
        return sl_fail(err, SL_EINVAL, "row: unknown flags 0x%x", h->flags);
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
    unsigned char *ids = p + REC_HEADER_BYTES;
    if (h->n_semantic)
        memcpy(ids, semantic, 4 * (size_t)h->n_semantic);
    int32_t delim = REC_DELIM;
    memcpy(ids + 4 * (size_t)h->n_semantic, &delim, 4);
    if (h->n_text)
        memcpy(ids + 4 * ((size_t)h->n_semantic + 1), text, 4 * (size_t)h->n_text);
    return (long)need;
}

int rec_row_decode(const void *v, size_t n, rec_header *h, sl_err *err)
{
    const unsigned char *p = v;
    if (n < REC_HEADER_BYTES)
        return sl_fail(err, SL_ECORRUPT, "row: %zu bytes is shorter than the %d-byte header", n,
                       REC_HEADER_BYTES);
    if (memcmp(p, ROW_MAGIC, 4) != 0)
        return sl_fail(err, SL_ECORRUPT, "row: bad magic (not SPLR)");
    h->version = get16(p + 4);
    h->flags = get16(p + 6);
    h->n_semantic = get32(p + 8);
    h->n_text = get32(p + 12);
    memcpy(&h->duration_s, p + 16, 4);
    memcpy(&h->score, p + 20, 4);
    if (h->version == 0 || h->version > REC_VERSION)
        return sl_fail(err, SL_ECORRUPT, "row: version %u is not supported (this build reads up "
                       "to %d)", h->version, REC_VERSION);
    if (h->flags & ~REC_FLAG_KNOWN)
        return sl_fail(err, SL_ECORRUPT, "row: unknown flags 0x%x", h->flags);
    size_t need = rec_row_bytes(h->n_semantic, h->n_text);
    if (need != n)
        return sl_fail(err, SL_ECORRUPT, "row: header says %u semantic + %u text ids (%zu bytes) "
                       "but the value has %zu bytes", h->n_semantic, h->n_text, need, n);
    const unsigned char *ids = p + REC_HEADER_BYTES;
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
    return SL_OK;
}

void rec_row_ids(const void *v, const rec_header *h, int32_t *semantic, int32_t *text)
{
    const unsigned char *ids = (const unsigned char *)v + REC_HEADER_BYTES;
    if (semantic && h->n_semantic)
        memcpy(semantic, ids, 4 * (size_t)h->n_semantic);
    if (text && h->n_text)
        memcpy(text, ids + 4 * ((size_t)h->n_semantic + 1), 4 * (size_t)h->n_text);
}

int32_t rec_row_id_at(const void *v, size_t i)
{
    int32_t x;
    memcpy(&x, (const unsigned char *)v + REC_HEADER_BYTES + 4 * i, 4);
    return x;
}

uint32_t rec_row_n_source(const rec_header *h)
{
    return h->n_semantic - ((h->flags & REC_FLAG_SEED_EOS) && h->n_semantic ? 1u : 0u);
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
    put16(p + 4, REC_VERSION);
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
    if (e->version == 0 || e->version > REC_VERSION)
        return sl_fail(err, SL_ECORRUPT, "error record: version %u is not supported", e->version);
    if (e->stage >= SL_STAGE_COUNT)
        return sl_fail(err, SL_ECORRUPT, "error record: unknown stage %u", e->stage);
    if ((size_t)e->msg_len != n - REC_ERR_HEADER_BYTES)
        return sl_fail(err, SL_ECORRUPT, "error record: message length %u but %zu bytes follow",
                       e->msg_len, n - REC_ERR_HEADER_BYTES);
    return SL_OK;
}
