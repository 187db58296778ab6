// coordinator/protocol.c — see protocol.h. Byte order is spelled out (shifts), so
// the wire is little-endian on every host.
#include "coordinator/protocol.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int proto_buf_reserve(proto_buf *b, size_t extra, sl_err *err)
{
    if (extra > SIZE_MAX / 4 - b->len)
        return sl_fail(err, SL_ENOMEM, "protocol: a message of more than %zu bytes", SIZE_MAX / 4);
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

static void set32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(proto_buf *b, uint32_t v)
{
    set32(b->p + b->len, v);
    b->len += 4;
}

static void put64(proto_buf *b, uint64_t v)
{
    set32(b->p + b->len, (uint32_t)v);
    set32(b->p + b->len + 4, (uint32_t)(v >> 32));
    b->len += 8;
}

static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void putn(proto_buf *b, const void *d, size_t n)
{
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

int proto_hello_parse(const void *buf, size_t n, sl_err *err)
{
    (void)buf;
    return n == 0 ? SL_OK : sl_fail(err, SL_EFORMAT, "protocol: HELLO of %zu bytes (want 0)", n);
}

// --- WORK ---

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

// One item; with PROTO_WORK_RANGES in the header, followed by its range (and, with
// PROTO_WORK_ITEM_FLAGS, its item flags).
static int work_item(proto_buf *b, const char *id, const void *bytes, size_t n, int64_t start,
                     int64_t end, uint32_t item_flags, sl_err *err)
{
    size_t il = strlen(id);
    if (il > UINT32_MAX || n > UINT32_MAX)
        return sl_fail(err, SL_EINVAL, "protocol: WORK item \"%.64s\" too large", id);
    uint32_t mflags = b->len >= 12 ? get32(b->p + 4) : 0;
    int ranges = (mflags & PROTO_WORK_RANGES) != 0;
    int iflags = ranges && (mflags & PROTO_WORK_ITEM_FLAGS);
    int rc = proto_buf_reserve(b, 8 + il + n + 2 + (ranges ? 16 : 0) + (iflags ? 4 : 0), err);
    if (rc)
        return rc;
    put32(b, (uint32_t)il);
    put32(b, (uint32_t)n);
    putn(b, id, il + 1);
    putn(b, bytes, n);
    b->p[b->len++] = 0;
    if (ranges) {
        put64(b, (uint64_t)start);
        put64(b, (uint64_t)end);
    }
    if (iflags)
        put32(b, item_flags);
    set32(b->p + 8, get32(b->p + 8) + 1);
    return SL_OK;
}

int proto_work_add(proto_buf *b, const char *id, const char *path, sl_err *err)
{
    return work_item(b, id, path, strlen(path), 0, 0, 0, err);
}

int proto_work_add_bytes(proto_buf *b, const char *id, const void *bytes, size_t n, sl_err *err)
{
    return work_item(b, id, bytes, n, 0, 0, 0, err);
}

// The range rule of protocol.h, for an item with item_flags.
static int range_ok(uint64_t a, uint64_t z, uint32_t item_flags)
{
    if (z > (uint64_t)INT64_MAX || a > (uint64_t)INT64_MAX)
        return 0;
    if (item_flags & PROTO_ITEM_CONTINUE)
        return a > 0 && (z == 0 || z > a);
    return (a == 0 && z == 0) || z > a;
}

int proto_work_add_item(proto_buf *b, const char *id, const char *path, int64_t start,
                        int64_t end, uint32_t item_flags, sl_err *err)
{
    uint32_t mflags = b->len >= 12 ? get32(b->p + 4) : 0;
    if (!(mflags & PROTO_WORK_RANGES))
        return sl_fail(err, SL_EINVAL, "protocol: WORK item \"%.64s\" with a range in a "
                       "message without PROTO_WORK_RANGES", id);
    if (item_flags & ~PROTO_ITEM_CONTINUE)
        return sl_fail(err, SL_EINVAL, "protocol: WORK item \"%.64s\": unknown item flags 0x%x",
                       id, item_flags);
    if (item_flags && !(mflags & PROTO_WORK_ITEM_FLAGS))
        return sl_fail(err, SL_EINVAL, "protocol: WORK item \"%.64s\" with item flags in a "
                       "message without PROTO_WORK_ITEM_FLAGS", id);
    if (start < 0 || end < 0 || !range_ok((uint64_t)start, (uint64_t)end, item_flags))
        return sl_fail(err, SL_EINVAL, "protocol: WORK item \"%.64s\": bad range [%lld, %lld)%s",
                       id, (long long)start, (long long)end,
                       (item_flags & PROTO_ITEM_CONTINUE) ? " to continue" : "");
    return work_item(b, id, path, strlen(path), start, end, item_flags, err);
}

int proto_work_add_range(proto_buf *b, const char *id, const char *path, int64_t start,
                         int64_t end, sl_err *err)
{
    return proto_work_add_item(b, id, path, start, end, 0, err);
}

int proto_work_header(const void *buf, size_t n, uint32_t *wid, uint32_t *flags,
                      uint32_t *n_items, sl_err *err)
{
    const unsigned char *p = buf;
    if (n < 12)
        return sl_fail(err, SL_EFORMAT, "protocol: WORK message of %zu bytes (header is 12)", n);
    *wid = get32(p);
    *flags = get32(p + 4);
    *n_items = get32(p + 8);
    if (*flags & ~PROTO_WORK_FLAGS)
        return sl_fail(err, SL_EFORMAT, "protocol: WORK with unknown flags 0x%x", *flags);
    if ((*flags & PROTO_WORK_PAYLOAD) && (*flags & PROTO_WORK_RANGES))
        return sl_fail(err, SL_EFORMAT, "protocol: WORK with both payloads and ranges");
    if ((*flags & PROTO_WORK_ITEM_FLAGS) && !(*flags & PROTO_WORK_RANGES))
        return sl_fail(err, SL_EFORMAT, "protocol: WORK with item flags but no ranges");
    if (*n_items > (n - 12) / 10) // an item takes at least 10 bytes
        return sl_fail(err, SL_EFORMAT, "protocol: WORK of %u items in %zu bytes", *n_items, n);
    return SL_OK;
}

int proto_work_parse(const void *buf, size_t n, uint32_t *wid, uint32_t *flags,
                     proto_item *items, size_t cap, size_t *n_items, sl_err *err)
{
    uint32_t cnt;
    int rc = proto_work_header(buf, n, wid, flags, &cnt, err);
    if (rc)
        return rc;
    if (cnt > cap)
        return sl_fail(err, SL_EFORMAT, "protocol: WORK of %u items (capacity %zu)", cnt, cap);
    const unsigned char *p = (const unsigned char *)buf + 12, *end = (const unsigned char *)buf + n;
    for (uint32_t i = 0; i < cnt; i++) {
        if (end - p < 8)
            return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u truncated", i);
        uint32_t il = get32(p), pl = get32(p + 4);
        p += 8;
        // Without PROTO_WORK_PAYLOAD the worker opens path as a C string: no NUL inside.
        if ((size_t)(end - p) < (size_t)il + pl + 2 || p[il] != 0 || p[il + 1 + pl] != 0 ||
            memchr(p, 0, il) != NULL ||
            (!(*flags & PROTO_WORK_PAYLOAD) && memchr(p + il + 1, 0, pl) != NULL))
            return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u malformed", i);
        items[i].id = (const char *)p;
        items[i].id_len = il;
        items[i].path = (const char *)p + il + 1;
        items[i].path_len = pl;
        items[i].start = items[i].end = 0;
        items[i].item_flags = 0;
        p += (size_t)il + pl + 2;
        if (*flags & PROTO_WORK_RANGES) {
            int with_flags = (*flags & PROTO_WORK_ITEM_FLAGS) != 0;
            if (end - p < 16 + 4 * with_flags)
                return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u: range truncated", i);
            uint64_t a = get64(p), z = get64(p + 8);
            uint32_t f = with_flags ? get32(p + 16) : 0;
            if (f & ~PROTO_ITEM_CONTINUE)
                return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u: unknown item flags "
                               "0x%x", i, f);
            if (!range_ok(a, z, f))
                return sl_fail(err, SL_EFORMAT, "protocol: WORK item %u: bad range [%llu, %llu)%s",
                               i, (unsigned long long)a, (unsigned long long)z,
                               (f & PROTO_ITEM_CONTINUE) ? " to continue" : "");
            items[i].start = (int64_t)a;
            items[i].end = (int64_t)z;
            items[i].item_flags = f;
            p += 16 + 4 * (size_t)with_flags;
        }
    }
    if (p != end)
        return sl_fail(err, SL_EFORMAT, "protocol: WORK has %zu bytes after its last item",
                       (size_t)(end - p));
    *n_items = cnt;
    return SL_OK;
}

// --- RESULT ---

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
    if (kind != PROTO_REC_ROW && kind != PROTO_REC_ERROR)
        return sl_fail(err, SL_EINVAL, "protocol: RESULT record of kind %d", kind);
    if (key_len > UINT32_MAX || val_len > UINT32_MAX)
        return sl_fail(err, SL_EINVAL, "protocol: RESULT record too large");
    int rc = proto_buf_reserve(b, 9 + key_len + val_len, err);
    if (rc)
        return rc;
    b->p[b->len++] = (unsigned char)kind;
    put32(b, (uint32_t)key_len);
    put32(b, (uint32_t)val_len);
    putn(b, key, key_len);
    putn(b, val, val_len);
    set32(b->p + 4, get32(b->p + 4) + 1);
    return SL_OK;
}

int proto_result_add_mark(proto_buf *b, const void *id, size_t id_len, int64_t next, int done,
                          sl_err *err)
{
    if (next < 0 || (done != 0 && done != 1))
        return sl_fail(err, SL_EINVAL, "protocol: mark with next %lld, done %d", (long long)next,
                       done);
    if (id_len > UINT32_MAX)
        return sl_fail(err, SL_EINVAL, "protocol: RESULT record too large");
    int rc = proto_buf_reserve(b, 9 + id_len + PROTO_MARK_BYTES, err);
    if (rc)
        return rc;
    b->p[b->len++] = PROTO_REC_MARK;
    put32(b, (uint32_t)id_len);
    put32(b, PROTO_MARK_BYTES);
    putn(b, id, id_len);
    put64(b, (uint64_t)next);
    b->p[b->len++] = (unsigned char)done;
    set32(b->p + 4, get32(b->p + 4) + 1);
    return SL_OK;
}

int proto_mark_parse(const void *val, size_t n, int64_t *next, int *done, sl_err *err)
{
    const unsigned char *p = val;
    if (n != PROTO_MARK_BYTES || p[8] > 1 || get64(p) > (uint64_t)INT64_MAX)
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT mark malformed");
    *next = (int64_t)get64(p);
    *done = p[8];
    return SL_OK;
}

int proto_result_open(proto_result_reader *r, const void *buf, size_t n, sl_err *err)
{
    if (n < 8)
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT message of %zu bytes (header is 8)", n);
    const unsigned char *p = buf;
    r->p = p + 8;
    r->end = p + n;
    r->wid = get32(p);
    r->n = get32(p + 4);
    r->i = 0;
    if (r->n > (n - 8) / 9) // a record takes at least 9 bytes
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT of %u records in %zu bytes", r->n, n);
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
        (rec->kind != PROTO_REC_ROW && rec->kind != PROTO_REC_ERROR &&
         rec->kind != PROTO_REC_MARK))
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT record %u malformed", r->i);
    rec->key = r->p;
    rec->val = r->p + rec->key_len;
    int64_t next;
    int done;
    if (rec->kind == PROTO_REC_MARK && proto_mark_parse(rec->val, rec->val_len, &next, &done, err))
        return sl_fail(err, SL_EFORMAT, "protocol: RESULT record %u: a malformed mark", r->i);
    r->p += (size_t)rec->key_len + rec->val_len;
    r->i++;
    return 1;
}

// --- STOP, STATS, CRASH ---

void proto_stop_encode(unsigned char out[PROTO_STOP_BYTES], uint32_t status)
{
    set32(out, status);
}

int proto_stop_parse(const void *buf, size_t n, uint32_t *status, sl_err *err)
{
    if (n != PROTO_STOP_BYTES)
        return sl_fail(err, SL_EFORMAT, "protocol: STOP of %zu bytes (want %d)", n,
                       PROTO_STOP_BYTES);
    *status = get32(buf);
    if (*status != 0 && *status != 3)
        return sl_fail(err, SL_EFORMAT, "protocol: STOP with status %u (want 0 or 3)", *status);
    return SL_OK;
}

void proto_stats_encode(unsigned char out[PROTO_STATS_BYTES], const double stats[PROTO_N_STATS])
{
    for (int k = 0; k < PROTO_N_STATS; k++) {
        uint64_t u;
        memcpy(&u, &stats[k], 8);
        set32(out + 8 * k, (uint32_t)u);
        set32(out + 8 * k + 4, (uint32_t)(u >> 32));
    }
}

int proto_stats_parse(const void *buf, size_t n, double stats[PROTO_N_STATS], sl_err *err)
{
    if (n != PROTO_STATS_BYTES)
        return sl_fail(err, SL_EFORMAT, "protocol: STATS of %zu bytes (want %d)", n,
                       PROTO_STATS_BYTES);
    const unsigned char *p = buf;
    for (int k = 0; k < PROTO_N_STATS; k++) {
        uint64_t u = (uint64_t)get32(p + 8 * k) | (uint64_t)get32(p + 8 * k + 4) << 32;
        double v;
        memcpy(&v, &u, 8);
        if (!isfinite(v) || v < 0)
            return sl_fail(err, SL_EFORMAT, "protocol: STATS value %d is %g", k, v);
        stats[k] = v;
    }
    return SL_OK;
}

void proto_crash_encode(unsigned char out[PROTO_CRASH_BYTES], uint32_t wid)
{
    set32(out, wid);
}

int proto_crash_parse(const void *buf, size_t n, uint32_t *wid, sl_err *err)
{
    if (n != PROTO_CRASH_BYTES)
        return sl_fail(err, SL_EFORMAT, "protocol: CRASH of %zu bytes (want %d)", n,
                       PROTO_CRASH_BYTES);
    *wid = get32(buf);
    return SL_OK;
}
