// pipeline/weights.c — see weights.h. Layout of a safetensors file:
//   u64 little-endian N | N bytes of JSON | data area
// JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//        "__metadata__": {"key": "value", ...}}; offsets are relative to the data area.
#include "pipeline/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WTS_MAX_HEADER (100u << 20) // the format's own limit is 100 MB

typedef struct tensor {
    wts_info info;
    uint64_t begin, end;  // byte range in the data area
    const float *f32;     // usable float data (in the map or in owned), NULL if not float
    float *owned;         // converted copy, or NULL
} tensor;

struct wts_file {
    char *path;
    const unsigned char *map;
    size_t map_bytes;
    int mapped;            // 1 when map came from mmap
    tensor *t;             // sorted by begin
    size_t n;
    char **meta_keys;
    char **meta_vals;
    size_t n_meta;
};

const char *wts_dtype_name(wts_dtype d)
{
    static const char *names[] = {"F32", "F16", "BF16", "F64", "I64", "I32",
                                  "I16", "I8",  "U8",   "BOOL", "other"};
    return (unsigned)d <= WTS_OTHER ? names[d] : "other";
}

static wts_dtype parse_dtype(const char *s, size_t *elem)
{
    static const struct { const char *n; wts_dtype d; size_t sz; } tab[] = {
        {"F32", WTS_F32, 4}, {"F16", WTS_F16, 2}, {"BF16", WTS_BF16, 2}, {"F64", WTS_F64, 8},
        {"I64", WTS_I64, 8}, {"I32", WTS_I32, 4}, {"I16", WTS_I16, 2},   {"I8", WTS_I8, 1},
        {"U8", WTS_U8, 1},   {"BOOL", WTS_BOOL, 1}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(s, tab[i].n) == 0) {
            *elem = tab[i].sz;
            return tab[i].d;
        }
    *elem = 0;
    return WTS_OTHER;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int cmp_begin(const void *a, const void *b)
{
    const tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

void wts_close(wts_file *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free((char *)w->t[i].info.name);
        free(w->t[i].owned);
    }
    free(w->t);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_vals[i]);
    }
    free(w->meta_keys);
    free(w->meta_vals);
    if (w->mapped && w->map)
        munmap((void *)w->map, w->map_bytes);
    free(w->path);
    free(w);
}

static int parse_meta(wts_file *w, json_t *meta, sl_err *err)
{
    if (!json_is_object(meta))
        return sl_fail(err, SL_EFORMAT, "weights: %s: __metadata__ is not an object", w->path);
    size_t n = json_object_size(meta);
    w->meta_keys = calloc(n ? n : 1, sizeof(char *));
    w->meta_vals = calloc(n ? n : 1, sizeof(char *));
    if (!w->meta_keys || !w->meta_vals)
        return sl_fail(err, SL_ENOMEM, "weights: %s: out of memory", w->path);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return sl_fail(err, SL_EFORMAT, "weights: %s: __metadata__[\"%s\"] is not a string",
                           w->path, k);
        w->meta_keys[w->n_meta] = strdup(k);
        w->meta_vals[w->n_meta] = strdup(json_string_value(v));
        w->n_meta++; // counted before the check so wts_close frees a half-made pair
        if (!w->meta_keys[w->n_meta - 1] || !w->meta_vals[w->n_meta - 1])
            return sl_fail(err, SL_ENOMEM, "weights: %s: out of memory", w->path);
    }
    return SL_OK;
}

static int parse_tensor(wts_file *w, const char *name, json_t *o, uint64_t data_bytes,
                        tensor *t, sl_err *err)
{
    const char *p = w->path;
    if (!json_is_object(o))
        return sl_fail(err, SL_EFORMAT, "weights: %s: entry \"%s\" is not an object", p, name);
    json_t *jd = json_object_get(o, "dtype");
    json_t *js = json_object_get(o, "shape");
    json_t *jo = json_object_get(o, "data_offsets");
    if (!json_is_string(jd))
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": missing or bad \"dtype\"", p,
                       name);
    if (!json_is_array(js))
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": missing or bad \"shape\"", p,
                       name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return sl_fail(err, SL_EFORMAT,
                       "weights: %s: tensor \"%s\": missing or bad \"data_offsets\"", p, name);
    size_t elem;
    t->info.dtype = parse_dtype(json_string_value(jd), &elem);
    if (t->info.dtype == WTS_OTHER)
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": unknown dtype \"%s\"", p,
                       name, json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > WTS_MAX_DIMS)
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": %zu dimensions (max %d)", p,
                       name, nd, WTS_MAX_DIMS);
    t->info.ndim = (int)nd;
    uint64_t count = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": shape[%zu] is not a "
                           "non-negative integer", p, name, i);
        uint64_t v = (uint64_t)json_integer_value(d);
        if (v && count > UINT64_MAX / 8 / v)
            return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": shape product overflows",
                           p, name);
        count *= v;
        t->info.shape[i] = (size_t)v;
    }
    t->info.count = (size_t)count;
    json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b))
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\": bad data_offsets", p, name);
    t->begin = (uint64_t)json_integer_value(b);
    t->end = (uint64_t)json_integer_value(e);
    if (t->end > data_bytes)
        return sl_fail(err, SL_ECORRUPT,
                       "weights: %s: tensor \"%s\": data_offsets end %llu is past the data area "
                       "(%llu bytes; file truncated?)", p, name, (unsigned long long)t->end,
                       (unsigned long long)data_bytes);
    if (t->end - t->begin != count * elem)
        return sl_fail(err, SL_ECORRUPT,
                       "weights: %s: tensor \"%s\": %llu bytes for a %s tensor of %llu elements",
                       p, name, (unsigned long long)(t->end - t->begin), wts_dtype_name(t->info.dtype),
                       (unsigned long long)count);
    t->info.name = strdup(name);
    if (!t->info.name)
        return sl_fail(err, SL_ENOMEM, "weights: %s: out of memory", p);
    return SL_OK;
}

static int prepare_floats(wts_file *w, const unsigned char *data, sl_err *err)
{
    for (size_t i = 0; i < w->n; i++) {
        tensor *t = &w->t[i];
        const unsigned char *src = data + t->begin;
        size_t n = t->info.count;
        if (t->info.dtype == WTS_F32 && ((uintptr_t)src % 4) == 0) {
            t->f32 = (const float *)(const void *)src;
            continue;
        }
        if (t->info.dtype != WTS_F32 && t->info.dtype != WTS_F16 && t->info.dtype != WTS_BF16)
            continue;
        t->owned = malloc(n ? n * sizeof(float) : 1);
        if (!t->owned)
            return sl_fail(err, SL_ENOMEM, "weights: %s: out of memory converting \"%s\"", w->path,
                           t->info.name);
        for (size_t k = 0; k < n; k++) {
            if (t->info.dtype == WTS_F32) {
                memcpy(&t->owned[k], src + 4 * k, 4);
            } else {
                uint16_t h;
                memcpy(&h, src + 2 * k, 2);
                if (t->info.dtype == WTS_F16) {
                    t->owned[k] = half_to_float(h);
                } else {
                    uint32_t bits = (uint32_t)h << 16;
                    memcpy(&t->owned[k], &bits, 4);
                }
            }
        }
        t->f32 = t->owned;
    }
    return SL_OK;
}

static int parse_image(wts_file *w, sl_err *err)
{
    const unsigned char *m = w->map;
    size_t n = w->map_bytes;
    if (n < 8)
        return sl_fail(err, SL_ECORRUPT, "weights: %s: %zu bytes is too short for a safetensors "
                       "header", w->path, n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | m[i];
    if (hlen > n - 8)
        return sl_fail(err, SL_ECORRUPT, "weights: %s: header length %llu runs past the end of "
                       "the file (%zu bytes)", w->path, (unsigned long long)hlen, n);
    if (hlen > WTS_MAX_HEADER)
        return sl_fail(err, SL_EFORMAT, "weights: %s: header length %llu exceeds %u bytes",
                       w->path, (unsigned long long)hlen, WTS_MAX_HEADER);
    json_error_t je;
    json_t *root = json_loadb((const char *)m + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return sl_fail(err, SL_EFORMAT, "weights: %s: header is not valid JSON: %s (at byte %d)",
                       w->path, je.text, je.position);
    int rc = SL_OK;
    if (!json_is_object(root)) {
        rc = sl_fail(err, SL_EFORMAT, "weights: %s: header is not a JSON object", w->path);
        goto done;
    }
    size_t cap = json_object_size(root);
    w->t = calloc(cap ? cap : 1, sizeof(tensor));
    if (!w->t) {
        rc = sl_fail(err, SL_ENOMEM, "weights: %s: out of memory", w->path);
        goto done;
    }
    uint64_t data_bytes = n - 8 - hlen;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            rc = parse_meta(w, v, err);
        } else {
            rc = parse_tensor(w, k, v, data_bytes, &w->t[w->n], err);
            if (rc == SL_OK)
                w->n++;
        }
        if (rc)
            goto done;
    }
    qsort(w->t, w->n, sizeof(tensor), cmp_begin);
    for (size_t i = 1; i < w->n; i++)
        if (w->t[i].begin < w->t[i - 1].end) {
            rc = sl_fail(err, SL_ECORRUPT, "weights: %s: tensors \"%s\" and \"%s\" overlap",
                         w->path, w->t[i - 1].info.name, w->t[i].info.name);
            goto done;
        }
    rc = prepare_floats(w, m + 8 + hlen, err);
done:
    json_decref(root);
    return rc;
}

int wts_open_memory(wts_file **out, const void *bytes, size_t n_bytes, const char *name,
                    sl_err *err)
{
    *out = NULL;
    wts_file *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(name ? name : "(memory)"))) {
        free(w);
        return sl_fail(err, SL_ENOMEM, "weights: out of memory");
    }
    w->map = bytes;
    w->map_bytes = n_bytes;
    int rc = parse_image(w, err);
    if (rc) {
        wts_close(w);
        return rc;
    }
    *out = w;
    return SL_OK;
}

int wts_open(wts_file **out, const char *path, sl_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sl_fail(err, SL_EIO, "weights: %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sl_fail(err, SL_EIO, "weights: %s: not a regular file", path);
    }
    wts_file *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        close(fd);
        return sl_fail(err, SL_ENOMEM, "weights: out of memory");
    }
    w->map_bytes = (size_t)st.st_size;
    if (w->map_bytes > 0) {
        void *m = mmap(NULL, w->map_bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            wts_close(w);
            return sl_fail(err, SL_EIO, "weights: %s: mmap: %s", path, strerror(e));
        }
        w->map = m;
        w->mapped = 1;
    }
    close(fd);
    int rc = parse_image(w, err);
    if (rc) {
        wts_close(w);
        return rc;
    }
    *out = w;
    return SL_OK;
}

const char *wts_path(const wts_file *w) { return w->path; }
size_t wts_count(const wts_file *w) { return w->n; }
const wts_info *wts_at(const wts_file *w, size_t i) { return i < w->n ? &w->t[i].info : NULL; }

static const tensor *find(const wts_file *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].info.name, name) == 0)
            return &w->t[i];
    return NULL;
}

const wts_info *wts_find(const wts_file *w, const char *name)
{
    const tensor *t = find(w, name);
    return t ? &t->info : NULL;
}

const char *wts_metadata(const wts_file *w, const char *key)
{
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0)
            return w->meta_vals[i];
    return NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const size_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %zu" : "%zu", shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

int wts_get(const wts_file *w, const char *name, int ndim, const size_t *shape,
            const float **out, sl_err *err)
{
    *out = NULL;
    const tensor *t = find(w, name);
    if (!t)
        return sl_fail(err, SL_ENOTFOUND, "weights: %s: tensor \"%s\" is missing", w->path, name);
    int same = t->info.ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->info.shape[i] == shape[i];
    if (!same) {
        char want[128], got[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->info.ndim, t->info.shape);
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\" has shape %s, expected %s",
                       w->path, name, got, want);
    }
    if (!t->f32)
        return sl_fail(err, SL_EFORMAT, "weights: %s: tensor \"%s\" has dtype %s (need F32, F16 "
                       "or BF16)", w->path, name, wts_dtype_name(t->info.dtype));
    *out = t->f32;
    return SL_OK;
}

int wts_get1(const wts_file *w, const char *name, size_t d0, const float **out, sl_err *err)
{
    size_t s[1] = {d0};
    return wts_get(w, name, 1, s, out, err);
}

int wts_get2(const wts_file *w, const char *name, size_t d0, size_t d1, const float **out,
             sl_err *err)
{
    size_t s[2] = {d0, d1};
    return wts_get(w, name, 2, s, out, err);
}

int wts_get3(const wts_file *w, const char *name, size_t d0, size_t d1, size_t d2,
             const float **out, sl_err *err)
{
    size_t s[3] = {d0, d1, d2};
    return wts_get(w, name, 3, s, out, err);
}
