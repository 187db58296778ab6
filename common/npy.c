// common/npy.c — see npy.h. The header is a Python dict literal; we parse only
// the three keys NumPy writes ('descr', 'fortran_order', 'shape') and refuse
// everything we do not understand.
#include "common/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"

static const unsigned char NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static size_t dtype_size(sl_npy_dtype d) { return d == SL_NPY_F32 ? 4 : 8; }

// Finds the value text after 'key': in a dict literal; NULL if absent.
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static int parse_header(const char *hdr, const char *name, sl_npy *out, sl_err *err)
{
    const char *d = dict_value(hdr, "descr");
    if (!d)
        return sl_fail(err, SL_EFORMAT, "npy: %s: header has no 'descr'", name);
    if (strncmp(d, "'<f4'", 5) == 0)
        out->dtype = SL_NPY_F32;
    else if (strncmp(d, "'<i8'", 5) == 0)
        out->dtype = SL_NPY_I64;
    else {
        char got[16] = {0};
        for (int i = 0; i < 15 && d[i] && d[i] != ','; i++)
            got[i] = d[i];
        return sl_fail(err, SL_EFORMAT, "npy: %s: dtype %s is not supported (need '<f4' or '<i8')",
                       name, got);
    }
    const char *f = dict_value(hdr, "fortran_order");
    if (!f)
        return sl_fail(err, SL_EFORMAT, "npy: %s: header has no 'fortran_order'", name);
    if (strncmp(f, "False", 5) != 0)
        return sl_fail(err, SL_EFORMAT, "npy: %s: fortran_order arrays are not supported", name);
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(')
        return sl_fail(err, SL_EFORMAT, "npy: %s: header has no 'shape' tuple", name);
    s++;
    out->ndim = 0;
    out->count = 1;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (*s < '0' || *s > '9')
            return sl_fail(err, SL_EFORMAT, "npy: %s: malformed 'shape'", name);
        if (out->ndim == SL_NPY_MAX_DIMS)
            return sl_fail(err, SL_EFORMAT, "npy: %s: more than %d dimensions", name,
                           SL_NPY_MAX_DIMS);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || v > (1ull << 40))
            return sl_fail(err, SL_EFORMAT, "npy: %s: dimension out of range", name);
        if (v && out->count > (1ull << 40) / v)
            return sl_fail(err, SL_EFORMAT, "npy: %s: shape product out of range", name);
        out->shape[out->ndim++] = (size_t)v;
        out->count *= (size_t)v;
        s = end;
    }
    return SL_OK;
}

int sl_npy_parse(const void *bytes, size_t n, const char *name, sl_npy *out, sl_err *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = bytes;
    if (n < 10 || memcmp(b, NPY_MAGIC, 6) != 0)
        return sl_fail(err, SL_EFORMAT, "npy: %s: not a .npy file (bad magic)", name);
    int major = b[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | ((size_t)b[9] << 8);
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12)
            return sl_fail(err, SL_EFORMAT, "npy: %s: truncated header", name);
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        hoff = 12;
    } else {
        return sl_fail(err, SL_EFORMAT, "npy: %s: format version %d is not supported", name,
                       major);
    }
    if (hlen > n - hoff || hlen > (1u << 20))
        return sl_fail(err, SL_EFORMAT, "npy: %s: header length %zu runs past the file (%zu bytes)",
                       name, hlen, n);
    char *hdr = malloc(hlen + 1);
    if (!hdr)
        return sl_fail(err, SL_ENOMEM, "npy: %s: out of memory", name);
    memcpy(hdr, b + hoff, hlen);
    hdr[hlen] = '\0';
    int rc = parse_header(hdr, name, out, err);
    free(hdr);
    if (rc)
        return rc;
    size_t data_off = hoff + hlen;
    size_t need = out->count * dtype_size(out->dtype);
    if (n - data_off != need) {
        int rc2 = sl_fail(err, SL_EFORMAT,
                          "npy: %s: shape needs %zu data bytes but the file holds %zu", name, need,
                          n - data_off);
        memset(out, 0, sizeof *out);
        return rc2;
    }
    out->data = malloc(need ? need : 1);
    if (!out->data) {
        memset(out, 0, sizeof *out);
        return sl_fail(err, SL_ENOMEM, "npy: %s: out of memory for %zu bytes", name, need);
    }
    memcpy(out->data, b + data_off, need);
    return SL_OK;
}

int sl_npy_read(const char *path, sl_npy *out, sl_err *err)
{
    memset(out, 0, sizeof *out);
    void *buf;
    size_t n;
    int rc = sl_read_file(path, 1u << 31, &buf, &n, err);
    if (rc)
        return rc;
    rc = sl_npy_parse(buf, n, path, out, err);
    free(buf);
    return rc;
}

void sl_npy_free(sl_npy *a)
{
    if (a) {
        free(a->data);
        memset(a, 0, sizeof *a);
    }
}

int sl_npy_write(const char *path, sl_npy_dtype dtype, int ndim, const size_t *shape,
                 const void *data, sl_err *err)
{
    if (ndim < 0 || ndim > SL_NPY_MAX_DIMS)
        return sl_fail(err, SL_EINVAL, "npy: %s: %d dimensions", path, ndim);
    char dict[256];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtype == SL_NPY_F32 ? "<f4" : "<i8");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%zu%s", shape[i],
                      (ndim == 1 || i < ndim - 1) ? "," : "");
        if (i < ndim - 1)
            k += snprintf(dict + k, sizeof dict - (size_t)k, " ");
        count *= shape[i];
    }
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    // Pad with spaces so that magic + len + header is a multiple of 64, ending in '\n'.
    size_t total = 10 + (size_t)k + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)k + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    size_t data_bytes = count * dtype_size(dtype);
    size_t n = 10 + hlen + data_bytes;
    unsigned char *img = malloc(n);
    if (!img)
        return sl_fail(err, SL_ENOMEM, "npy: %s: out of memory", path);
    memcpy(img, pre, 10);
    memcpy(img + 10, dict, (size_t)k);
    memset(img + 10 + k, ' ', pad);
    img[10 + hlen - 1] = '\n';
    if (data_bytes)
        memcpy(img + 10 + hlen, data, data_bytes);
    int rc = sl_write_file_atomic(path, img, n, err);
    free(img);
    return rc;
}
