// pipeline/tokens.c — see tokens.h.
#include "pipeline/tokens.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "pipeline/hubert.h"
#include "pipeline/kmeans.h"
#include "pipeline/mfcc.h"

struct tok_pipeline {
    tok_features features;
    hubert_model *hubert; // TOK_FEAT_HUBERT
    km_model *km;         // NULL: features only
    int layer, final_norm, dedup;
    size_t dim;
    audio_params ap;
};

struct tok_state {
    audio_reader *audio;
    hubert_state *hs;     // TOK_FEAT_HUBERT
    mfcc_state *ms;       // TOK_FEAT_MFCC
    km_state *ks;
    int32_t *ids;
    size_t ids_cap;
    sl_stage failed;
    double t_audio, t_features, t_tokens; // seconds of the last run, per stage
    size_t n_samples;                     // samples the last run decoded
};

const char *tok_features_name(tok_features f)
{
    return f == TOK_FEAT_MFCC ? "mfcc" : "hubert";
}

tok_params tok_default_params(void)
{
    tok_params p;
    memset(&p, 0, sizeof p);
    p.features = TOK_FEAT_HUBERT;
    p.layer = 9;
    p.audio = audio_default_params();
    return p;
}

void tok_pipeline_close(tok_pipeline *p)
{
    if (!p)
        return;
    hubert_close(p->hubert);
    km_close(p->km);
    free(p);
}

int tok_pipeline_open_params(tok_pipeline **out, const tok_params *tp, sl_err *err)
{
    *out = NULL;
    if (tp->features != TOK_FEAT_HUBERT && tp->features != TOK_FEAT_MFCC)
        return sl_fail(err, SL_EINVAL, "tokens: unknown feature kind %d", (int)tp->features);
    if (tp->features == TOK_FEAT_HUBERT && !tp->hubert_dir)
        return sl_fail(err, SL_EINVAL, "tokens: HuBERT features need a model directory");
    tok_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return sl_fail(err, SL_ENOMEM, "tokens: out of memory");
    int rc;
    audio_params ap = tp->audio;
    p->features = tp->features;
    if (tp->features == TOK_FEAT_HUBERT) {
        if ((rc = hubert_open(&p->hubert, tp->hubert_dir, err)))
            goto fail;
        const hubert_config *c = hubert_get_config(p->hubert);
        if (tp->layer < 0 || tp->layer > c->n_layers) {
            rc = sl_fail(err, SL_EINVAL, "tokens: layer %d out of range 0..%d for %s", tp->layer,
                         c->n_layers, tp->hubert_dir);
            goto fail;
        }
        p->dim = (size_t)c->hidden;
        if (ap.min_samples < hubert_min_samples(p->hubert))
            ap.min_samples = hubert_min_samples(p->hubert);
    } else {
        p->dim = MFCC_DIM;
        if (ap.target_hz != MFCC_SAMPLE_HZ) {
            rc = sl_fail(err, SL_EINVAL, "tokens: MFCC features are defined at %d Hz, not %d",
                         MFCC_SAMPLE_HZ, ap.target_hz);
            goto fail;
        }
        if (ap.min_samples < MFCC_MIN_SAMPLES)
            ap.min_samples = MFCC_MIN_SAMPLES;
    }
    if (tp->kmeans) {
        if ((rc = km_open(&p->km, tp->kmeans, NULL, err)))
            goto fail;
        if (km_dim(p->km) != p->dim) {
            rc = sl_fail(err, SL_EFORMAT, "tokens: centroids in %s have dimension %zu, the %s "
                         "features %zu", tp->kmeans, km_dim(p->km),
                         tp->features == TOK_FEAT_MFCC ? "MFCC" : "HuBERT", p->dim);
            goto fail;
        }
    }
    p->layer = tp->layer;
    p->final_norm = tp->final_norm;
    p->dedup = tp->dedup;
    p->ap = ap;
    *out = p;
    return SL_OK;
fail:
    tok_pipeline_close(p);
    return rc;
}

int tok_pipeline_open(tok_pipeline **out, const char *hubert_dir, int layer, int final_norm,
                      const char *kmeans_path, audio_params ap, sl_err *err)
{
    tok_params tp = tok_default_params();
    tp.hubert_dir = hubert_dir;
    tp.layer = layer;
    tp.final_norm = final_norm;
    tp.kmeans = kmeans_path;
    tp.audio = ap;
    if (!kmeans_path)
        return sl_fail(err, SL_EINVAL, "tokens: no k-means centroids given");
    return tok_pipeline_open_params(out, &tp, err);
}

size_t tok_pipeline_k(const tok_pipeline *p) { return p->km ? km_k(p->km) : 0; }
size_t tok_pipeline_dim(const tok_pipeline *p) { return p->dim; }
int tok_pipeline_frame_hz(const tok_pipeline *p)
{
    return p->features == TOK_FEAT_MFCC ? MFCC_SAMPLE_HZ / MFCC_FRAME_SHIFT : 50;
}

void tok_state_free(tok_state *s)
{
    if (!s)
        return;
    audio_reader_free(s->audio);
    hubert_state_free(s->hs);
    mfcc_state_free(s->ms);
    km_state_free(s->ks);
    free(s->ids);
    free(s);
}

int tok_state_new(tok_state **out, const tok_pipeline *p, sl_err *err)
{
    *out = NULL;
    tok_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_fail(err, SL_ENOMEM, "tokens: out of memory");
    s->failed = SL_STAGE_NONE;
    size_t max_samples = (size_t)((double)p->ap.max_seconds * p->ap.target_hz) + 1;
    int rc;
    if ((rc = audio_reader_new(&s->audio, p->ap, err)) ||
        (p->hubert && ((rc = hubert_state_new(&s->hs, p->hubert, err)) ||
                       (rc = hubert_state_reserve(s->hs, max_samples, err)))) ||
        (p->features == TOK_FEAT_MFCC && (rc = mfcc_state_new(&s->ms, err))) ||
        (p->km && (rc = km_state_new(&s->ks, p->km, err)))) {
        tok_state_free(s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

sl_stage tok_failed_stage(const tok_state *s) { return s->failed; }

size_t tok_last_samples(const tok_state *s) { return s->n_samples; }

void tok_last_timings(const tok_state *s, double *audio_s, double *features_s, double *tokens_s)
{
    if (audio_s)
        *audio_s = s->t_audio;
    if (features_s)
        *features_s = s->t_features;
    if (tokens_s)
        *tokens_s = s->t_tokens;
}

size_t tok_dedup(int32_t *ids, size_t n)
{
    size_t m = 0;
    for (size_t t = 0; t < n; t++)
        if (m == 0 || ids[t] != ids[m - 1])
            ids[m++] = ids[t];
    return m;
}

static int features(const tok_pipeline *p, tok_state *s, const audio_result *a,
                    const float **feat, size_t *T, size_t *D, sl_err *err)
{
    double t0 = sl_now();
    int rc;
    if (p->features == TOK_FEAT_MFCC) {
        rc = mfcc_compute(s->ms, a->pcm, a->n_samples, feat, T, err);
        *D = MFCC_DIM;
    } else {
        rc = hubert_forward(s->hs, a->pcm, a->n_samples, p->layer, p->final_norm, feat, T, D,
                            err);
    }
    s->t_features = sl_now() - t0;
    if (rc)
        s->failed = SL_STAGE_FEATURES;
    return rc;
}

static int tokenise(const tok_pipeline *p, tok_state *s, const audio_result *a,
                    const int32_t **ids, size_t *n, float *duration_s, sl_err *err)
{
    const float *feat;
    size_t T, D;
    int rc = features(p, s, a, &feat, &T, &D, err);
    if (rc)
        return rc;
    if (!p->km) {
        s->failed = SL_STAGE_TOKENS;
        return sl_fail(err, SL_EINVAL, "tokens: the pipeline was opened without centroids");
    }
    double t1 = sl_now();
    if (T > s->ids_cap) {
        int32_t *b = realloc(s->ids, T * sizeof(int32_t));
        if (!b) {
            s->failed = SL_STAGE_TOKENS;
            return sl_fail(err, SL_ENOMEM, "tokens: out of memory for %zu ids", T);
        }
        s->ids = b;
        s->ids_cap = T;
    }
    rc = km_assign(s->ks, feat, T, D, s->ids, err);
    if (rc == SL_OK && p->dedup)
        T = tok_dedup(s->ids, T);
    s->t_tokens = sl_now() - t1;
    if (rc) {
        s->failed = SL_STAGE_TOKENS;
        return rc;
    }
    *ids = s->ids;
    *n = T;
    if (duration_s)
        *duration_s = a->duration_s;
    return SL_OK;
}

// The audio stage every entry point starts with: resets the stage timers and the
// failed stage, decodes `path` (or, when path is NULL, the in-memory `bytes`), times
// it, and marks the audio stage as failed on error.
// A piece [start, end) of the file (end > 0) is read with audio_read_range.
static int read_audio(tok_state *s, const char *path, const void *bytes, size_t n_bytes,
                      const char *name, int64_t start, int64_t end, audio_result *a,
                      sl_err *err)
{
    s->failed = SL_STAGE_NONE;
    s->t_audio = s->t_features = s->t_tokens = 0.0;
    s->n_samples = 0;
    double t0 = sl_now();
    int rc = path && end > 0 ? audio_read_range(s->audio, path, start, end, a, err)
             : path          ? audio_read_file(s->audio, path, a, err)
                             : audio_read_memory(s->audio, bytes, n_bytes, name, a, err);
    s->t_audio = sl_now() - t0;
    if (rc)
        s->failed = SL_STAGE_AUDIO;
    else
        s->n_samples = a->n_samples;
    return rc;
}

int tok_features_run(const tok_pipeline *p, tok_state *s, const char *path, const float **feat,
                     size_t *n_frames, size_t *dim, float *duration_s, sl_err *err)
{
    return tok_features_run_range(p, s, path, 0, 0, feat, n_frames, dim, duration_s, err);
}

int tok_features_run_range(const tok_pipeline *p, tok_state *s, const char *path, int64_t start,
                           int64_t end, const float **feat, size_t *n_frames, size_t *dim,
                           float *duration_s, sl_err *err)
{
    *feat = NULL;
    *n_frames = *dim = 0;
    audio_result a;
    int rc = read_audio(s, path, NULL, 0, NULL, start, end, &a, err);
    if (rc)
        return rc;
    if ((rc = features(p, s, &a, feat, n_frames, dim, err))) {
        sl_err_prefix(err, "%s", path);
        return rc;
    }
    if (duration_s)
        *duration_s = a.duration_s;
    return SL_OK;
}

int tok_run(const tok_pipeline *p, tok_state *s, const char *path, const int32_t **ids,
            size_t *n, float *duration_s, sl_err *err)
{
    return tok_run_range(p, s, path, 0, 0, ids, n, duration_s, err);
}

int tok_run_range(const tok_pipeline *p, tok_state *s, const char *path, int64_t start,
                  int64_t end, const int32_t **ids, size_t *n, float *duration_s, sl_err *err)
{
    *ids = NULL;
    *n = 0;
    audio_result a;
    int rc = read_audio(s, path, NULL, 0, NULL, start, end, &a, err);
    if (rc)
        return rc;
    rc = tokenise(p, s, &a, ids, n, duration_s, err);
    if (rc)
        sl_err_prefix(err, "%s", path);
    return rc;
}

int tok_run_pcm(const tok_pipeline *p, tok_state *s, const float *pcm, size_t n,
                const char *name, const int32_t **ids, size_t *n_ids, float *duration_s,
                sl_err *err)
{
    *ids = NULL;
    *n_ids = 0;
    s->failed = SL_STAGE_NONE;
    s->t_audio = s->t_features = s->t_tokens = 0.0;
    s->n_samples = 0;
    audio_params ap = p->ap;
    if (n < ap.min_samples) { // audio.c's too_short, word for word
        s->failed = SL_STAGE_AUDIO;
        return sl_fail(err, SL_EFORMAT, "audio: %s: too short: %zu samples at %d Hz (need at "
                       "least %zu)", name, n, ap.target_hz, ap.min_samples);
    }
    audio_result a = {.pcm = pcm, .n_samples = n,
                      .duration_s = (float)((double)n / (double)ap.target_hz)};
    s->n_samples = n;
    int rc = tokenise(p, s, &a, ids, n_ids, duration_s, err);
    if (rc)
        sl_err_prefix(err, "%s", name);
    return rc;
}

int tok_run_memory(const tok_pipeline *p, tok_state *s, const void *bytes, size_t n_bytes,
                   const char *name, const int32_t **ids, size_t *n, float *duration_s,
                   sl_err *err)
{
    *ids = NULL;
    *n = 0;
    audio_result a;
    int rc = read_audio(s, NULL, bytes, n_bytes, name, 0, 0, &a, err);
    if (rc)
        return rc;
    rc = tokenise(p, s, &a, ids, n, duration_s, err);
    if (rc)
        sl_err_prefix(err, "%s", name ? name : "(memory)");
    return rc;
}
