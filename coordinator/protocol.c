// coordinator/protocol.c — see protocol.h.
#include "coordinator/protocol.h"

#include <stdlib.h>
#include <string.h>

int proto_buf_reserve(proto_buf *b, size_t extra, sl_err *err)
{
    if (b->len + extra <= b->cap)
        return SL_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        return sl_fail(err, SL_ENOMEM, "protocol: out of memory for %zu bytes", cap);
    b->p = p;
    b->cap = cap;
    return SL_OK;
}

void proto_buf_free(proto_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put32(proto_buf *b, uint32_t v)
{
    memcpy(b->p + b->len, &v, 4);
    b->len += 4;
}

static void putn(proto_buf *b, const void *d, size_t n)
{
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

int proto_work_begin(proto_buf *b, uint32_t wid, uint32_t flags, sl_err *err)
{
    b->len = 0;
    int rc = proto_buf_reserve(b, 12, err);
    if (rc)
        return rc;
    put32(b, wid);
    put32(b, flags);
    put32(b, 0);
    return SL_OK;
}

int proto_work_add(proto_buf *b, const char *id, const char *path, sl_err *err)
{
    return proto_work_add_bytes(b, id, path, strlen(path), err);
}

int proto_work_add_bytes(proto_buf *b, const char *id, const void *path, size_t pl, sl_err *err)
{
    size_t il = strlen(id);
    int rc = proto_buf_reserve(b, 8 + il + pl + 2, err);
    if (rc)
        return rc;
    put32(b, (uint32_t)il);
    put32(b, (uint32_t)pl);
    putn(b, id, il + 1);
    putn(b, path, pl);
    b->p[b->len++] = 0;
    uint32_t n = get32(b->p + 8) + 1;
    memcpy(b->p + 8, &n, 4);
    return SL_OK;
}

uint32_t proto_work_count(const void *buf, size_t n)
{
    return n >= 12 ? get32((const unsigned char *)buf + 8) : 0;
}

int proto_work_parse(const void *buf, size_t n, uint32_t *wid, uint32_t *flags,
                     proto_item *items, size_t cap, size_t *n_items, sl_err *err)
{
    const unsigned char *p = buf, *end = p + n;
    if (n < 12)
        return sl_fail(err, SL_EFORMAT, "protocol: WORK message of %zu bytes", n);
    *wid = get32(p);
    *flags = get32(p + 4);
    uint32_t cnt = get32(p + 8);
    if (cnt > cap)
        return sl_fail(err, SL_EFORMAT, "protocol: WORK of %u items (capacity %zu)", cnt, cap);
    p += 12;
    for (uint32_t i = 0; i < cnt; i++) {
        if (end - p < 8)
            return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u truncated", i);
        uint32_t il = get32(p), pl = get32(p + 4);
        p += 8;
        if ((size_t)(end - p) < (size_t)il + pl + 2 || p[il] != 0 || p[il + 1 + pl] != 0)
            return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u malformed", i);
        items[i].id = (const char *)p;
        items[i].id_len = il;
        items[i].path = (const char *)p + il + 1;
        items[i].path_len = pl;
        p += (size_t)il + pl + 2;
    }
    *n_items = cnt;
    return SL_OK;
}

int proto_result_begin(proto_buf *b, uint32_t wid, sl_err *err)
{
    b->len = 0;
    int rc = proto_buf_reserve(b, 8, err);
    if (rc)
        return rc;
    put32(b, wid);
    put32(b, 0);
    return SL_OK;
}

int proto_result_add(proto_buf *b, int kind, const void *key, size_t key_len, const void *val,
                     size_t val_len, sl_err *err)
{
    int rc = proto_buf_reserve(b, 9 + key_len + val_len, err);
    if (rc)
        return rc;
    b->p[b->len++] = (unsigned char)kind;
    put32(b, (uint32_t)key_len);
    put32(b, (uint32_t)val_len);
    putn(b, key, key_len);
    putn(b, val, val_len);
    uint32_t n = get32(b->p + 4) + 1;
    memcpy(b->p + 4, &n, 4);
    return SL_OK;
}

int proto_result_open(proto_result_reader *r, const void *buf, size_t n, sl_err *err)
{
    if (n < 8)
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT message of %zu bytes", n);
    r->p = (const unsigned char *)buf + 8;
    r->end = (const unsigned char *)buf + n;
    r->wid = get32(buf);
    r->n = get32((const unsigned char *)buf + 4);
    r->i = 0;
    return SL_OK;
}

int proto_result_next(proto_result_reader *r, proto_record *rec, sl_err *err)
{
    if (r->i == r->n)
        return r->p == r->end ? 0 : sl_fail(err, SL_EFORMAT, "protocol: RESULT has trailing bytes");
    if (r->end - r->p < 9)
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT record %u truncated", r->i);
    rec->kind = r->p[0];
    rec->key_len = get32(r->p + 1);
    rec->val_len = get32(r->p + 5);
    r->p += 9;
    if ((size_t)(r->end - r->p) < (size_t)rec->key_len + rec->val_len ||
        (rec->kind != PROTO_REC_ROW && rec->kind != PROTO_REC_ERROR))
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT record %u malformed", r->i);
    rec->key = r->p;
    rec->val = r->p + rec->key_len;
    r->p += (size_t)rec->key_len + rec->val_len;
    r->i++;
    return 1;
}
