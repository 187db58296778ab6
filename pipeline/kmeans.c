// pipeline/kmeans.c — see kmeans.h.
#include "pipeline/kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/npy.h"
#include "pipeline/ops.h"
#include "pipeline/weights.h"

struct km_model {
    size_t k, dim;
    float *c;     // (k, dim)
    float *norm2; // (k): ||c_k||^2, accumulated in double
};

struct km_state {
    const km_model *m;
    float *d;     // (cap_frames, k): ||c||^2 - 2 x.c
    size_t cap_frames;
};

static int finish(km_model **out, km_model *m, sl_err *err)
{
    // A NaN centroid is never (or always) the nearest: every id would be silently wrong.
    for (size_t i = 0; i < m->k * m->dim; i++)
        if (!isfinite(m->c[i])) {
            size_t k = i / m->dim, d = i % m->dim;
            km_close(m);
            return sl_fail(err, SL_EFORMAT, "kmeans: centroid %zu, dimension %zu is not finite "
                           "(NaN or Inf)", k, d);
        }
    m->norm2 = malloc(m->k * sizeof(float));
    if (!m->norm2) {
        km_close(m);
        return sl_fail(err, SL_ENOMEM, "kmeans: out of memory");
    }
    for (size_t i = 0; i < m->k; i++) {
        double s = 0.0;
        for (size_t j = 0; j < m->dim; j++)
            s += (double)m->c[i * m->dim + j] * (double)m->c[i * m->dim + j];
        m->norm2[i] = (float)s;
    }
    *out = m;
    return SL_OK;
}

int km_open_memory(km_model **out, const float *c, size_t k, size_t dim, sl_err *err)
{
    *out = NULL;
    if (k == 0 || dim == 0 || k > INT32_MAX)
        return sl_fail(err, SL_EFORMAT, "kmeans: %zu centroids of dimension %zu", k, dim);
    km_model *m = calloc(1, sizeof *m);
    if (!m || !(m->c = malloc(k * dim * sizeof(float)))) {
        free(m);
        return sl_fail(err, SL_ENOMEM, "kmeans: out of memory");
    }
    memcpy(m->c, c, k * dim * sizeof(float));
    m->k = k;
    m->dim = dim;
    return finish(out, m, err);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int km_open(km_model **out, const char *path, const char *tensor, sl_err *err)
{
    *out = NULL;
    if (ends_with(path, ".safetensors")) {
        wts_file *w;
        int rc = wts_open(&w, path, err);
        if (rc)
            return rc;
        const wts_info *info = NULL;
        if (tensor) {
            info = wts_find(w, tensor);
        } else {
            for (size_t i = 0; i < wts_count(w); i++)
                if (wts_at(w, i)->ndim == 2) {
                    if (info) {
                        wts_close(w);
                        return sl_fail(err, SL_EFORMAT, "kmeans: %s holds several 2-D tensors "
                                       "(\"%s\", \"%s\", ...): name one", path, info->name,
                                       wts_at(w, i)->name);
                    }
                    info = wts_at(w, i);
                }
        }
        if (!info || info->ndim != 2) {
            rc = info ? sl_fail(err, SL_EFORMAT, "kmeans: %s: tensor \"%s\" is %d-D, need [K, D]",
                                path, info->name, info->ndim)
                      : sl_fail(err, SL_ENOTFOUND, "kmeans: %s: no tensor \"%s\"", path,
                                tensor ? tensor : "(any 2-D)");
            wts_close(w);
            return rc;
        }
        const float *c;
        if ((rc = wts_get2(w, info->name, info->shape[0], info->shape[1], &c, err)) == SL_OK)
            rc = km_open_memory(out, c, info->shape[0], info->shape[1], err);
        wts_close(w);
        if (rc)
            sl_err_prefix(err, "kmeans: %s", path);
        return rc;
    }
    if (tensor)
        return sl_fail(err, SL_EINVAL, "kmeans: %s: a tensor name needs a .safetensors file",
                       path);
    sl_npy a;
    int rc = sl_npy_read(path, &a, err);
    if (rc)
        return rc;
    if (a.dtype != SL_NPY_F32 || a.ndim != 2) {
        sl_npy_free(&a);
        return sl_fail(err, SL_EFORMAT, "kmeans: %s: centroids must be a 2-D float32 array [K, D]",
                       path);
    }
    rc = km_open_memory(out, a.data, a.shape[0], a.shape[1], err);
    sl_npy_free(&a);
    if (rc)
        sl_err_prefix(err, "kmeans: %s", path);
    return rc;
}

void km_close(km_model *m)
{
    if (!m)
        return;
    free(m->c);
    free(m->norm2);
    free(m);
}

size_t km_k(const km_model *m) { return m->k; }
size_t km_dim(const km_model *m) { return m->dim; }

int km_state_new(km_state **out, const km_model *m, sl_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return sl_fail(err, SL_ENOMEM, "kmeans: out of memory");
    (*out)->m = m;
    return SL_OK;
}

void km_state_free(km_state *s)
{
    if (!s)
        return;
    free(s->d);
    free(s);
}

int km_assign(km_state *s, const float *x, size_t n, size_t dim, int32_t *ids, sl_err *err)
{
    const km_model *m = s->m;
    if (dim != m->dim)
        return sl_fail(err, SL_EFORMAT, "kmeans: features have dimension %zu, centroids %zu", dim,
                       m->dim);
    if (n > s->cap_frames) {
        float *d = realloc(s->d, n * m->k * sizeof(float));
        if (!d)
            return sl_fail(err, SL_ENOMEM, "kmeans: out of memory for %zu frames", n);
        s->d = d;
        s->cap_frames = n;
    }
    size_t K = m->k;
    for (size_t t = 0; t < n; t++)
        memcpy(s->d + t * K, m->norm2, K * sizeof(float));
    ops_matmul(OPS_N, OPS_T, n, K, dim, -2.0f, x, dim, m->c, dim, 1.0f, s->d, K);
    for (size_t t = 0; t < n; t++) {
        const float *r = s->d + t * K;
        size_t best = 0;
        for (size_t k = 1; k < K; k++)
            if (r[k] < r[best]) // strict: ties keep the lower index
                best = k;
        ids[t] = (int32_t)best;
    }
    return SL_OK;
}
