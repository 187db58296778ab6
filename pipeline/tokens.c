// pipeline/tokens.c — see tokens.h.
#include "pipeline/tokens.h"

#include <stdlib.h>
#include <time.h>

#include "pipeline/hubert.h"
#include "pipeline/kmeans.h"

struct tok_pipeline {
    hubert_model *hubert;
    km_model *km;
    int layer, final_norm;
    audio_params ap;
};

struct tok_state {
    audio_reader *audio;
    hubert_state *hs;
    km_state *ks;
    int32_t *ids;
    size_t ids_cap;
    tok_stage failed;
    double t_audio, t_features, t_tokens; // seconds of the last run, per stage
};

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const char *tok_stage_name(tok_stage s)
{
    switch (s) {
    case TOK_STAGE_NONE: return "none";
    case TOK_STAGE_AUDIO: return "audio";
    case TOK_STAGE_FEATURES: return "features";
    case TOK_STAGE_TOKENS: return "tokens";
    }
    return "?";
}

void tok_pipeline_close(tok_pipeline *p)
{
    if (!p)
        return;
    hubert_close(p->hubert);
    km_close(p->km);
    free(p);
}

int tok_pipeline_open(tok_pipeline **out, const char *hubert_dir, int layer, int final_norm,
                      const char *kmeans_path, audio_params ap, sl_err *err)
{
    *out = NULL;
    tok_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return sl_fail(err, SL_ENOMEM, "tokens: out of memory");
    int rc = hubert_open(&p->hubert, hubert_dir, err);
    if (rc)
        goto fail;
    const hubert_config *c = hubert_get_config(p->hubert);
    if (layer < 0 || layer > c->n_layers) {
        rc = sl_fail(err, SL_EINVAL, "tokens: layer %d out of range 0..%d for %s", layer,
                     c->n_layers, hubert_dir);
        goto fail;
    }
    if ((rc = km_open(&p->km, kmeans_path, NULL, err)))
        goto fail;
    if (km_dim(p->km) != (size_t)c->hidden) {
        rc = sl_fail(err, SL_EFORMAT, "tokens: centroids in %s have dimension %zu, the HuBERT "
                     "features %d", kmeans_path, km_dim(p->km), c->hidden);
        goto fail;
    }
    if (ap.min_samples < hubert_min_samples(p->hubert))
        ap.min_samples = hubert_min_samples(p->hubert);
    p->layer = layer;
    p->final_norm = final_norm;
    p->ap = ap;
    *out = p;
    return SL_OK;
fail:
    tok_pipeline_close(p);
    return rc;
}

size_t tok_pipeline_k(const tok_pipeline *p) { return km_k(p->km); }

void tok_state_free(tok_state *s)
{
    if (!s)
        return;
    audio_reader_free(s->audio);
    hubert_state_free(s->hs);
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
    size_t max_samples = (size_t)((double)p->ap.max_seconds * p->ap.target_hz) + 1;
    int rc;
    if ((rc = audio_reader_new(&s->audio, p->ap, err)) ||
        (rc = hubert_state_new(&s->hs, p->hubert, err)) ||
        (rc = hubert_state_reserve(s->hs, max_samples, err)) ||
        (rc = km_state_new(&s->ks, p->km, err))) {
        tok_state_free(s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

tok_stage tok_failed_stage(const tok_state *s) { return s->failed; }

void tok_last_timings(const tok_state *s, double *audio_s, double *features_s, double *tokens_s)
{
    if (audio_s)
        *audio_s = s->t_audio;
    if (features_s)
        *features_s = s->t_features;
    if (tokens_s)
        *tokens_s = s->t_tokens;
}

static int tokenise(const tok_pipeline *p, tok_state *s, const audio_result *a,
                    const int32_t **ids, size_t *n, float *duration_s, sl_err *err)
{
    const float *feat;
    size_t T, D;
    double t0 = mono_now();
    int rc = hubert_forward(s->hs, a->pcm, a->n_samples, p->layer, p->final_norm, &feat, &T, &D,
                            err);
    double t1 = mono_now();
    s->t_features = t1 - t0;
    if (rc) {
        s->failed = TOK_STAGE_FEATURES;
        return rc;
    }
    if (T > s->ids_cap) {
        int32_t *b = realloc(s->ids, T * sizeof(int32_t));
        if (!b) {
            s->failed = TOK_STAGE_TOKENS;
            return sl_fail(err, SL_ENOMEM, "tokens: out of memory for %zu ids", T);
        }
        s->ids = b;
        s->ids_cap = T;
    }
    rc = km_assign(s->ks, feat, T, D, s->ids, err);
    s->t_tokens = mono_now() - t1;
    if (rc) {
        s->failed = TOK_STAGE_TOKENS;
        return rc;
    }
    *ids = s->ids;
    *n = T;
    if (duration_s)
        *duration_s = a->duration_s;
    return SL_OK;
}

int tok_run(const tok_pipeline *p, tok_state *s, const char *path, const int32_t **ids,
            size_t *n, float *duration_s, sl_err *err)
{
    *ids = NULL;
    *n = 0;
    s->failed = TOK_STAGE_NONE;
    s->t_audio = s->t_features = s->t_tokens = 0.0;
    audio_result a;
    double t0 = mono_now();
    int rc = audio_read_file(s->audio, path, &a, err);
    s->t_audio = mono_now() - t0;
    if (rc) {
        s->failed = TOK_STAGE_AUDIO;
        return rc;
    }
    rc = tokenise(p, s, &a, ids, n, duration_s, err);
    if (rc)
        sl_err_prefix(err, "%s", path);
    return rc;
}

int tok_run_memory(const tok_pipeline *p, tok_state *s, const void *bytes, size_t n_bytes,
                   const char *name, const int32_t **ids, size_t *n, float *duration_s,
                   sl_err *err)
{
    *ids = NULL;
    *n = 0;
    s->failed = TOK_STAGE_NONE;
    s->t_audio = s->t_features = s->t_tokens = 0.0;
    audio_result a;
    double t0 = mono_now();
    int rc = audio_read_memory(s->audio, bytes, n_bytes, name, &a, err);
    s->t_audio = mono_now() - t0;
    if (rc) {
        s->failed = TOK_STAGE_AUDIO;
        return rc;
    }
    rc = tokenise(p, s, &a, ids, n, duration_s, err);
    if (rc)
        sl_err_prefix(err, "%s", name ? name : "(memory)");
    return rc;
}
