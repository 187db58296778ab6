// pipeline/kmfit.c — see kmfit.h. k-means|| seeding + Lloyd over rows held by
// several ranks; the only communication is comm->sum and comm->gather.
#include "pipeline/kmfit.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "pipeline/ops.h"

static int local_sum(void *ctx, double *buf, size_t n, sl_err *err)
{
    (void)ctx;
    (void)buf;
    (void)n;
    (void)err;
    return SL_OK;
}

static int local_gather(void *ctx, const void *mine, size_t bytes, void **all, size_t *all_bytes,
                        sl_err *err)
{
    (void)ctx;
    *all = malloc(bytes ? bytes : 1);
    if (!*all)
        return sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
    if (bytes)
        memcpy(*all, mine, bytes);
    *all_bytes = bytes;
    return SL_OK;
}

kmf_comm kmf_comm_local(void) { return (kmf_comm){NULL, local_sum, local_gather}; }

kmf_params kmf_default_params(void)
{
    return (kmf_params){.k = 0, .max_iter = 100, .tol = 1e-4, .seed = 0, .rounds = 5,
                        .oversample = 2.0, .init_trials = 4, .n_init = 1, .block_rows = 0,
                        .verbose = 0};
}

// splitmix64 finaliser: every random draw is a pure function of its inputs.
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) from (seed, stream, index).
static double unif(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint64_t h = mix(seed ^ mix(stream * 0x2545f4914f6cdd1dull ^ mix(i)));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

static double sqdist(const float *a, const float *b, size_t dim)
{
    double s = 0.0;
    for (size_t j = 0; j < dim; j++) {
        double d = (double)a[j] - (double)b[j];
        s += d * d;
    }
    return s;
}

static void norms(const float *x, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < dim; j++)
            s += (double)x[i * dim + j] * (double)x[i * dim + j];
        out[i] = (float)s;
    }
}

// For rows x[0..n): best[i] = argmin_k (cn[k] - 2 x_i.c_k) (ties: lower k) and
// val[i] = that value. scratch holds n x k floats. One GEMM.
static void nearest(const float *x, size_t n, size_t dim, const float *c, const float *cn,
                    size_t k, float *scratch, int32_t *best, float *val)
{
    for (size_t i = 0; i < n; i++)
        memcpy(scratch + i * k, cn, k * sizeof(float));
    ops_matmul(OPS_N, OPS_T, n, k, dim, -2.0f, x, dim, c, dim, 1.0f, scratch, k);
    for (size_t i = 0; i < n; i++) {
        const float *r = scratch + i * k;
        size_t b = 0;
        for (size_t j = 1; j < k; j++)
            if (r[j] < r[b])
                b = j;
        best[i] = (int32_t)b;
        val[i] = r[b];
    }
}

typedef struct fit {
    const kmf_comm *comm;
    const kmf_data *d;
    const kmf_params *p;
    size_t block;     // rows per GEMM
    float *xn;        // (n) ||x||^2
    float *dist;      // (n) distance to the nearest centre / candidate
    int32_t *lab;     // (n)
    float *val;       // (block)
    float *scratch;   // (block, max(k, candidates of one round))
    size_t scratch_cols;
} fit;

static int ensure_scratch(fit *f, size_t cols, sl_err *err)
{
    if (cols <= f->scratch_cols)
        return SL_OK;
    float *s = realloc(f->scratch, f->block * cols * sizeof(float));
    if (!s)
        return sl_fail(err, SL_ENOMEM, "kmfit: out of memory for %zu x %zu distances", f->block,
                       cols);
    f->scratch = s;
    f->scratch_cols = cols;
    return SL_OK;
}

// dist[i] = min(dist[i], ||x_i - c||^2 over the m centres c); lab[i] = offset + index
// when it improves. Returns through *phi this rank's sum of dist.
static int update_nearest(fit *f, const float *c, size_t m, size_t offset, double *phi,
                          sl_err *err)
{
    const kmf_data *d = f->d;
    int rc = ensure_scratch(f, m, err);
    if (rc)
        return rc;
    float *cn = malloc(m * sizeof(float));
    int32_t *b = malloc(f->block * sizeof(int32_t));
    if (!cn || !b) {
        free(cn);
        free(b);
        return sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
    }
    norms(c, m, d->dim, cn);
    double s = 0.0;
    for (size_t i0 = 0; i0 < d->n; i0 += f->block) {
        size_t rows = d->n - i0 < f->block ? d->n - i0 : f->block;
        nearest(d->x + i0 * d->dim, rows, d->dim, c, cn, m, f->scratch, b, f->val);
        for (size_t i = 0; i < rows; i++) {
            float v = f->xn[i0 + i] + f->val[i];
            if (v < 0.0f)
                v = 0.0f;
            if (v < f->dist[i0 + i]) {
                f->dist[i0 + i] = v;
                f->lab[i0 + i] = (int32_t)(offset + (size_t)b[i]);
            }
            s += (double)f->dist[i0 + i];
        }
    }
    free(cn);
    free(b);
    *phi = s;
    return SL_OK;
}

// A gathered row: id, key, then dim floats.
typedef struct rec_head {
    uint64_t id;
    double key;
} rec_head;

static size_t rec_bytes(size_t dim) { return sizeof(rec_head) + dim * sizeof(float); }

// Records are packed (16 + 4 dim bytes), so a head may be misaligned: copy it out.
static int cmp_rec_id(const void *a, const void *b)
{
    rec_head x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return (x.id > y.id) - (x.id < y.id);
}

// Gathers the local rows idx[0..m) (key[i] each) from every rank; *out holds
// *n_out records, sorted by id.
static int gather_rows(fit *f, const size_t *idx, const double *key, size_t m, unsigned char **out,
                       size_t *n_out, sl_err *err)
{
    size_t dim = f->d->dim, rb = rec_bytes(dim);
    unsigned char *mine = malloc(m ? m * rb : 1);
    if (!mine)
        return sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
    for (size_t i = 0; i < m; i++) {
        rec_head h = {f->d->id[idx[i]], key ? key[i] : 0.0};
        memcpy(mine + i * rb, &h, sizeof h);
        memcpy(mine + i * rb + sizeof h, f->d->x + idx[i] * dim, dim * sizeof(float));
    }
    void *all = NULL;
    size_t all_bytes = 0;
    int rc = f->comm->gather(f->comm->ctx, mine, m * rb, &all, &all_bytes, err);
    free(mine);
    if (rc)
        return rc;
    if (all_bytes % rb) {
        free(all);
        return sl_fail(err, SL_ECORRUPT, "kmfit: gathered %zu bytes, not whole rows", all_bytes);
    }
    *n_out = all_bytes / rb;
    qsort(all, *n_out, rb, cmp_rec_id);
    *out = all;
    return SL_OK;
}

// ---- k-means|| ------------------------------------------------------------

typedef struct cands {
    float *c;     // (m, dim)
    uint64_t *id; // (m)
    size_t m, cap;
} cands;

static int cands_add(cands *cs, const unsigned char *recs, size_t n, size_t dim, sl_err *err)
{
    if (cs->m + n > cs->cap) {
        size_t cap = (cs->m + n) * 2;
        float *c = realloc(cs->c, cap * dim * sizeof(float));
        if (c)
            cs->c = c;
        uint64_t *id = realloc(cs->id, cap * sizeof(uint64_t));
        if (id)
            cs->id = id;
        if (!c || !id)
            return sl_fail(err, SL_ENOMEM, "kmfit: out of memory for %zu candidates", cap);
        cs->cap = cap;
    }
    size_t rb = rec_bytes(dim);
    for (size_t i = 0; i < n; i++) {
        rec_head h;
        memcpy(&h, recs + i * rb, sizeof h);
        cs->id[cs->m] = h.id;
        memcpy(cs->c + cs->m * dim, recs + i * rb + sizeof h, dim * sizeof(float));
        cs->m++;
    }
    return SL_OK;
}

// Index of the draw r * total in the cumulative weights (the last positive one at the end).
static size_t pick(const double *w, size_t m, double r, double total)
{
    double target = r * total, acc = 0.0;
    size_t last = 0;
    for (size_t j = 0; j < m; j++) {
        if (w[j] <= 0.0)
            continue;
        acc += w[j];
        last = j;
        if (acc > target)
            return j;
    }
    return last;
}

// Weighted greedy k-means++ over the candidates, then weighted Lloyd; centres
// into out (k, dim); returns the weighted inertia.
static double local_kmeans(const float *cand, const float *cn, const double *w, size_t m,
                           size_t dim, size_t k, uint64_t seed, uint64_t stream, float *out,
                           float *scratch, double *closest, double *trial_d, int32_t *lab)
{
    size_t n_trials = 2 + (size_t)log((double)k);
    double wsum = 0.0;
    for (size_t j = 0; j < m; j++)
        wsum += w[j];
    uint64_t draw = 0;
    size_t first = pick(w, m, unif(seed, stream, draw++), wsum);
    memcpy(out, cand + first * dim, dim * sizeof(float));
    double pot = 0.0;
    for (size_t j = 0; j < m; j++) {
        closest[j] = sqdist(cand + j * dim, out, dim);
        pot += w[j] * closest[j];
    }
    double *wc = malloc(m * sizeof(double));
    size_t *tid = malloc(n_trials * sizeof(size_t));
    float *tc = malloc(n_trials * dim * sizeof(float));
    float *tn = malloc(n_trials * sizeof(float));
    if (!wc || !tid || !tc || !tn) {
        free(wc);
        free(tid);
        free(tc);
        free(tn);
        return -1.0;
    }
    for (size_t c = 1; c < k; c++) {
        for (size_t j = 0; j < m; j++)
            wc[j] = w[j] * closest[j];
        for (size_t t = 0; t < n_trials; t++) {
            tid[t] = pot > 0.0 ? pick(wc, m, unif(seed, stream, draw++), pot)
                               : (size_t)(unif(seed, stream, draw++) * (double)m);
            memcpy(tc + t * dim, cand + tid[t] * dim, dim * sizeof(float));
            tn[t] = cn[tid[t]];
        }
        // trial_d[t][j] = ||cand_j||^2 + ||trial_t||^2 - 2 trial_t . cand_j: one GEMM.
        for (size_t t = 0; t < n_trials; t++)
            memcpy(scratch + t * m, cn, m * sizeof(float));
        ops_matmul(OPS_N, OPS_T, n_trials, m, dim, -2.0f, tc, dim, cand, dim, 1.0f, scratch, m);
        size_t best = 0;
        double best_pot = DBL_MAX;
        for (size_t t = 0; t < n_trials; t++) {
            double p = 0.0;
            for (size_t j = 0; j < m; j++) {
                double dj = (double)scratch[t * m + j] + (double)tn[t];
                if (dj < 0.0)
                    dj = 0.0;
                trial_d[t * m + j] = dj < closest[j] ? dj : closest[j];
                p += w[j] * trial_d[t * m + j];
            }
            if (p < best_pot) {
                best_pot = p;
                best = t;
            }
        }
        memcpy(out + c * dim, tc + best * dim, dim * sizeof(float));
        memcpy(closest, trial_d + best * m, m * sizeof(double));
        pot = best_pot;
    }
    free(wc);
    free(tid);
    free(tc);
    free(tn);
    // Weighted Lloyd on the candidates.
    double *sums = calloc(k * dim + k, sizeof(double));
    float *on = malloc(k * sizeof(float));
    float *val = malloc(m * sizeof(float));
    if (!sums || !on || !val) {
        free(sums);
        free(on);
        free(val);
        return -1.0;
    }
    double inertia = DBL_MAX;
    for (int it = 0; it < 100; it++) {
        norms(out, k, dim, on);
        nearest(cand, m, dim, out, on, k, scratch, lab, val);
        memset(sums, 0, (k * dim + k) * sizeof(double));
        double cur = 0.0;
        for (size_t j = 0; j < m; j++) {
            size_t a = (size_t)lab[j];
            for (size_t q = 0; q < dim; q++)
                sums[a * dim + q] += w[j] * (double)cand[j * dim + q];
            sums[k * dim + a] += w[j];
            cur += w[j] * sqdist(cand + j * dim, out + a * dim, dim);
        }
        for (size_t a = 0; a < k; a++)
            if (sums[k * dim + a] > 0.0)
                for (size_t q = 0; q < dim; q++)
                    out[a * dim + q] = (float)(sums[a * dim + q] / sums[k * dim + a]);
        int done = !(inertia - cur > 1e-6 * cur);
        inertia = cur;
        if (done)
            break;
    }
    free(sums);
    free(on);
    free(val);
    return inertia;
}

static int seed_centres(fit *f, float *c, kmf_stats *st, sl_err *err)
{
    const kmf_data *d = f->d;
    const kmf_params *p = f->p;
    size_t dim = d->dim, k = p->k;
    cands cs = {0};
    unsigned char *recs = NULL;
    size_t n_recs, *idx = NULL;
    double *w = NULL;
    int rc;
    for (size_t i = 0; i < d->n; i++) {
        f->dist[i] = FLT_MAX;
        f->lab[i] = -1;
    }
    // First centre: the row with the smallest draw over all ranks (uniform, split-free).
    {
        size_t best = 0;
        double key = 2.0;
        for (size_t i = 0; i < d->n; i++) {
            double u = unif(p->seed, 0, d->id[i]);
            if (u < key || (u == key && d->id[i] < d->id[best])) {
                key = u;
                best = i;
            }
        }
        if ((rc = gather_rows(f, &best, &key, d->n ? 1 : 0, &recs, &n_recs, err)))
            goto done;
        size_t rb = rec_bytes(dim), b = 0;
        for (size_t i = 1; i < n_recs; i++) {
            rec_head x, y;
            memcpy(&x, recs + i * rb, sizeof x);
            memcpy(&y, recs + b * rb, sizeof y);
            if (x.key < y.key)
                b = i;
        }
        if ((rc = cands_add(&cs, recs + b * rb, 1, dim, err)))
            goto done;
        free(recs);
        recs = NULL;
    }
    double phi;
    if ((rc = update_nearest(f, cs.c, 1, 0, &phi, err)) ||
        (rc = f->comm->sum(f->comm->ctx, &phi, 1, err)))
        goto done;
    double l = p->oversample * (double)k;
    idx = malloc((d->n ? d->n : 1) * sizeof(size_t));
    if (!idx) {
        rc = sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
        goto done;
    }
    // Rounds: at least p->rounds, more while there are fewer candidates than k.
    for (int r = 1; phi > 0.0 && (r <= p->rounds || cs.m < k) && r <= 64; r++) {
        size_t m = 0;
        for (size_t i = 0; i < d->n; i++)
            if (unif(p->seed, (uint64_t)r, d->id[i]) * phi < l * (double)f->dist[i])
                idx[m++] = i;
        if ((rc = gather_rows(f, idx, NULL, m, &recs, &n_recs, err)))
            goto done;
        size_t before = cs.m;
        if ((rc = cands_add(&cs, recs, n_recs, dim, err)))
            goto done;
        free(recs);
        recs = NULL;
        if ((rc = update_nearest(f, cs.c + before * dim, cs.m - before, before, &phi, err)) ||
            (rc = f->comm->sum(f->comm->ctx, &phi, 1, err)))
            goto done;
    }
    st->n_candidates = cs.m;
    // Weights: rows nearest to each candidate (lab from update_nearest).
    w = calloc(cs.m, sizeof(double));
    if (!w) {
        rc = sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
        goto done;
    }
    for (size_t i = 0; i < d->n; i++)
        w[f->lab[i]] += 1.0;
    if ((rc = f->comm->sum(f->comm->ctx, w, cs.m, err)))
        goto done;
    if (cs.m <= k) { // every distinct row is a candidate: take them, repeat to fill
        for (size_t a = 0; a < k; a++)
            memcpy(c + a * dim, cs.c + (a % cs.m) * dim, dim * sizeof(float));
        goto done;
    }
    {
        size_t m = cs.m, nt = 2 + (size_t)log((double)k);
        size_t scr_n = nt * m > m * k ? nt * m : m * k; // trials x candidates, candidates x k
        float *cn = malloc(m * sizeof(float));
        float *scr = malloc(scr_n * sizeof(float));
        double *closest = malloc(m * sizeof(double));
        double *trial = malloc(nt * m * sizeof(double));
        int32_t *lab = malloc(m * sizeof(int32_t));
        float *try_c = malloc(k * dim * sizeof(float));
        if (!cn || !scr || !closest || !trial || !lab || !try_c)
            rc = sl_fail(err, SL_ENOMEM, "kmfit: out of memory for %zu candidates", m);
        else
            norms(cs.c, m, dim, cn);
        double best = DBL_MAX;
        for (int t = 0; rc == SL_OK && t < (p->init_trials > 0 ? p->init_trials : 1); t++) {
            double in = local_kmeans(cs.c, cn, w, m, dim, k, p->seed, 1000u + (uint64_t)t, try_c,
                                     scr, closest, trial, lab);
            if (in < 0.0)
                rc = sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
            else if (in < best) {
                best = in;
                memcpy(c, try_c, k * dim * sizeof(float));
            }
        }
        free(cn);
        free(scr);
        free(closest);
        free(trial);
        free(lab);
        free(try_c);
    }
done:
    free(recs);
    free(idx);
    free(w);
    free(cs.c);
    free(cs.id);
    return rc;
}

// ---- Lloyd -----------------------------------------------------------------

static int cmp_far(const void *a, const void *b)
{
    rec_head x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    if (x.key != y.key)
        return x.key < y.key ? 1 : -1; // farthest first
    return (x.id > y.id) - (x.id < y.id);
}

// Re-seeds the n_empty clusters (count 0 in counts) with the rows farthest from
// their centres over all ranks. Returns how many were re-seeded.
static int reseed(fit *f, float *c, const double *counts, size_t n_empty, size_t *n_done,
                  sl_err *err)
{
    const kmf_data *d = f->d;
    size_t dim = d->dim, m = n_empty < d->n ? n_empty : d->n;
    size_t *idx = malloc((m ? m : 1) * sizeof(size_t));
    double *key = malloc((m ? m : 1) * sizeof(double));
    if (!idx || !key) {
        free(idx);
        free(key);
        return sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
    }
    // Local top m by (distance desc, id asc): a partial selection, m is small.
    size_t have = 0;
    for (size_t i = 0; i < d->n && m; i++) {
        double v = (double)f->dist[i];
        size_t pos = have;
        while (pos > 0 && (key[pos - 1] < v || (key[pos - 1] == v && d->id[idx[pos - 1]] > d->id[i])))
            pos--;
        if (pos >= m)
            continue;
        size_t last = have < m ? have : m - 1;
        for (size_t q = last; q > pos; q--) {
            idx[q] = idx[q - 1];
            key[q] = key[q - 1];
        }
        idx[pos] = i;
        key[pos] = v;
        if (have < m)
            have++;
    }
    unsigned char *recs = NULL;
    size_t n_recs;
    int rc = gather_rows(f, idx, key, have, &recs, &n_recs, err);
    free(idx);
    free(key);
    if (rc)
        return rc;
    size_t rb = rec_bytes(dim);
    qsort(recs, n_recs, rb, cmp_far);
    size_t r = 0;
    *n_done = 0;
    for (size_t a = 0; a < f->p->k && r < n_recs; a++) {
        if (counts[a] > 0.0)
            continue;
        rec_head h;
        memcpy(&h, recs + r * rb, sizeof h);
        if (!(h.key > 0.0))
            break; // every row sits on a centre: nothing better to move there
        memcpy(c + a * dim, recs + r * rb + sizeof h, dim * sizeof(float));
        r++;
        (*n_done)++;
    }
    free(recs);
    return SL_OK;
}

double kmf_inertia(const float *x, size_t n, size_t dim, const float *c, size_t k)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double best = DBL_MAX;
        for (size_t a = 0; a < k; a++) {
            double v = sqdist(x + i * dim, c + a * dim, dim);
            if (v < best)
                best = v;
        }
        s += best;
    }
    return s;
}

static int fit_once(const kmf_comm *comm, const kmf_data *d, const kmf_params *p, float *c,
                    kmf_stats *st, sl_err *err)
{
    memset(st, 0, sizeof *st);
    if (p->k == 0 || p->k > INT32_MAX || d->dim == 0 || p->max_iter < 1 || !(p->tol >= 0.0))
        return sl_fail(err, SL_EINVAL, "kmfit: bad parameters (k %zu, dim %zu, max_iter %d)",
                       p->k, d->dim, p->max_iter);
    size_t k = p->k, dim = d->dim;
    double total = (double)d->n;
    int rc = comm->sum(comm->ctx, &total, 1, err);
    if (rc)
        return rc;
    st->n_total = (size_t)total;
    if (total < (double)k)
        return sl_fail(err, SL_EINVAL, "kmfit: %zu feature frames in the sample, fewer than "
                       "k = %zu clusters: sample more (--percent) or lower -k", st->n_total, k);
    fit f = {.comm = comm, .d = d, .p = p};
    f.block = p->block_rows;
    if (f.block == 0) // distances of one block: 64 MiB
        f.block = (16u << 20) / k;
    if (f.block < 256)
        f.block = 256;
    if (f.block > d->n)
        f.block = d->n ? d->n : 1;
    size_t nn = d->n ? d->n : 1;
    f.xn = malloc(nn * sizeof(float));
    f.dist = malloc(nn * sizeof(float));
    f.lab = malloc(nn * sizeof(int32_t));
    f.val = malloc(f.block * sizeof(float));
    double *buf = calloc(k * dim + k + 1, sizeof(double));
    float *cn = malloc(k * sizeof(float));
    if (!f.xn || !f.dist || !f.lab || !f.val || !buf || !cn) {
        rc = sl_fail(err, SL_ENOMEM, "kmfit: out of memory for %zu rows", d->n);
        goto done;
    }
    norms(d->x, d->n, dim, f.xn);
    double t0 = sl_now();
    if ((rc = seed_centres(&f, c, st, err)))
        goto done;
    st->seconds_init = sl_now() - t0;
    if ((rc = ensure_scratch(&f, k, err)))
        goto done;
    double prev = 0.0;
    t0 = sl_now();
    for (int it = 0; it < p->max_iter; it++) {
        norms(c, k, dim, cn);
        memset(buf, 0, (k * dim + k + 1) * sizeof(double));
        double *sums = buf, *counts = buf + k * dim;
        double inertia = 0.0;
        for (size_t i0 = 0; i0 < d->n; i0 += f.block) {
            size_t rows = d->n - i0 < f.block ? d->n - i0 : f.block;
            nearest(d->x + i0 * dim, rows, dim, c, cn, k, f.scratch, f.lab + i0, f.val);
            for (size_t i = i0; i < i0 + rows; i++) {
                size_t a = (size_t)f.lab[i];
                const float *x = d->x + i * dim;
                double dd = sqdist(x, c + a * dim, dim);
                f.dist[i] = (float)dd;
                inertia += dd;
                counts[a] += 1.0;
                for (size_t q = 0; q < dim; q++)
                    sums[a * dim + q] += (double)x[q];
            }
        }
        buf[k * dim + k] = inertia;
        if ((rc = comm->sum(comm->ctx, buf, k * dim + k + 1, err)))
            goto done;
        inertia = buf[k * dim + k];
        if (it == 0)
            st->seed_inertia = inertia;
        size_t n_empty = 0;
        for (size_t a = 0; a < k; a++) {
            if (counts[a] > 0.0)
                for (size_t q = 0; q < dim; q++)
                    c[a * dim + q] = (float)(sums[a * dim + q] / counts[a]);
            else
                n_empty++;
        }
        size_t n_re = 0;
        if (n_empty && (rc = reseed(&f, c, counts, n_empty, &n_re, err)))
            goto done;
        st->n_reseeded += n_re;
        st->iterations = it + 1;
        st->inertia = inertia;
        double rel = it > 0 && inertia > 0.0 ? (prev - inertia) / inertia : 1.0;
        if (p->verbose)
            SL_LOG(INFO, "kmfit", "iteration %d: inertia %.9g (relative change %.3g), %zu empty "
                   "cluster%s re-seeded, %.2f s", it + 1, inertia, it > 0 ? rel : 0.0, n_re,
                   n_re == 1 ? "" : "s", sl_now() - t0);
        if (inertia == 0.0 || (it > 0 && n_re == 0 && rel < p->tol))
            break;
        prev = inertia;
    }
    st->seconds_lloyd = sl_now() - t0;
done:
    free(f.xn);
    free(f.dist);
    free(f.lab);
    free(f.val);
    free(f.scratch);
    free(buf);
    free(cn);
    return rc;
}

int kmf_fit(const kmf_comm *comm, const kmf_data *d, const kmf_params *p, float *c,
            kmf_stats *st, sl_err *err)
{
    int n_init = p->n_init > 0 ? p->n_init : 1;
    if (n_init == 1)
        return fit_once(comm, d, p, c, st, err);
    float *tc = malloc((p->k ? p->k : 1) * (d->dim ? d->dim : 1) * sizeof(float));
    if (!tc)
        return sl_fail(err, SL_ENOMEM, "kmfit: out of memory");
    kmf_params q = *p;
    kmf_stats ts;
    int rc = SL_OK;
    double secs_init = 0.0, secs_lloyd = 0.0;
    for (int r = 0; r < n_init; r++) {
        q.seed = r == 0 ? p->seed : mix(p->seed ^ mix((uint64_t)r));
        if ((rc = fit_once(comm, d, &q, tc, &ts, err)))
            break;
        secs_init += ts.seconds_init;
        secs_lloyd += ts.seconds_lloyd;
        if (p->verbose)
            SL_LOG(INFO, "kmfit", "run %d/%d: inertia %.9g after %d iterations", r + 1, n_init,
                   ts.inertia, ts.iterations);
        if (r == 0 || ts.inertia < st->inertia) { // ties keep the earlier run
            *st = ts;
            memcpy(c, tc, p->k * d->dim * sizeof(float));
        }
    }
    st->seconds_init = secs_init;
    st->seconds_lloyd = secs_lloyd;
    free(tc);
    return rc;
}
