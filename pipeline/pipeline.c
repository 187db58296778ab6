// pipeline/pipeline.c — see pipeline.h.
#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "pipeline/s2t.h"
#include "pipeline/tokens.h"

struct pl {
    pl_params p;
    tok_pipeline *tok;
    tok_state *ts;
    s2t_model *s2t;
    beam_state *bs;
    int speech_eos, text_eos;
    int max_src;           // semantic ids per utterance the decoder state holds
    int32_t *sem;          // [max_batch][max_src + 1] semantic ids of the unit
    int *sem_len;          // [max_batch]
    int32_t *txt;          // [max_batch][max_len + 1]
    beam_result *br;       // [max_batch]
    const int32_t **src;   // [max_batch] sources of the batched decode
    int *src_len;          // [max_batch]
    int *which;            // [max_batch] the unit index of each source
    int pool_cap;          // sources of the pl_pool_* calls (the decoder may hold more:
                           //   max_batch for pl_run; the lowest free slot is always < pool_cap)
    int pool_used;         // slots joined and not yet taken
    int32_t *psem;         // [pool_cap][max_src + 1] semantic ids of each pool slot
    int *psem_len;         // [pool_cap]
    float *pdur;           // [pool_cap]
    uint64_t *pstart, *pend; // [pool_cap] the samples each slot's utterance covers (16 kHz)
};

pl_params pl_default_params(void)
{
    pl_params p;
    memset(&p, 0, sizeof p);
    p.layer = 9;
    p.audio = audio_default_params();
    p.beam = beam_default_params();
    p.max_batch = 4;
    p.seg = seg_default_params();
    return p;
}

static int max_len_of(const pl_params *p) { return p->beam.max_len > 0 ? p->beam.max_len : 256; }

int pl_open(pl **out, const pl_params *p, sl_err *err)
{
    *out = NULL;
    pl *x = calloc(1, sizeof *x);
    if (!x)
        return sl_fail(err, SL_ENOMEM, "pipeline: out of memory");
    x->p = *p;
    if (x->p.max_batch < 1)
        x->p.max_batch = 1;
    x->pool_cap = x->p.pool > 0 ? x->p.pool : x->p.max_batch;
    if (x->p.seed_layout)
        x->p.beam.keep_eos = 1;
    int rc = SL_OK;
    int max_len = max_len_of(p);
    // HuBERT: 320 samples per frame at 16 kHz, 50 ids per second of audio; MFCC: 100.
    float ids_per_s = p->features == TOK_FEAT_MFCC ? 100.0f : 50.0f;
    x->max_src = p->max_src_ids > 0 ? p->max_src_ids
                                    : (int)(p->audio.max_seconds * ids_per_s) + 2;
    if (!p->null_pipeline) {
        tok_params tp = tok_default_params();
        tp.features = p->features;
        tp.hubert_dir = p->hubert_dir;
        tp.layer = p->layer;
        tp.final_norm = p->final_norm;
        tp.kmeans = p->kmeans;
        tp.dedup = p->dedup;
        tp.audio = p->audio;
        if (!p->text_only && ((rc = tok_pipeline_open_params(&x->tok, &tp, err)) ||
                              (rc = tok_state_new(&x->ts, x->tok, err))))
            goto fail;
        if ((rc = s2t_open(&x->s2t, p->s2t, err)))
            goto fail;
        const s2t_config *cfg = s2t_model_config(x->s2t);
        if (x->tok && tok_pipeline_k(x->tok) > (size_t)cfg->n_semantic) {
            rc = sl_fail(err, SL_EINVAL, "pipeline: k-means %s has %zu clusters but %s reads "
                         "only %d semantic ids", p->kmeans, tok_pipeline_k(x->tok), p->s2t,
                         cfg->n_semantic);
            goto fail;
        }
        x->speech_eos = cfg->speech_eos;
        x->text_eos = cfg->text_eos;
        s2t_limits lim = {.max_batch = x->p.max_batch > x->pool_cap ? x->p.max_batch : x->pool_cap,
                          .max_beam = p->beam.method == BEAM_SEARCH ? p->beam.beam : 1,
                          .max_src_len = x->max_src, .max_len = max_len,
                          .cross_kv = p->cross_kv};
        if ((rc = beam_state_new(&x->bs, x->s2t, lim, err)))
            goto fail;
    }
    x->sem = malloc(sizeof(int32_t) * (size_t)x->p.max_batch * (size_t)(x->max_src + 1));
    x->sem_len = calloc((size_t)x->p.max_batch, sizeof(int));
    x->txt = malloc(sizeof(int32_t) * (size_t)x->p.max_batch * (size_t)(max_len + 1));
    x->br = calloc((size_t)x->p.max_batch, sizeof(beam_result));
    x->src = calloc((size_t)x->p.max_batch, sizeof(int32_t *));
    x->src_len = calloc((size_t)x->p.max_batch, sizeof(int));
    x->which = calloc((size_t)x->p.max_batch, sizeof(int));
    x->psem = malloc(sizeof(int32_t) * (size_t)x->pool_cap * (size_t)(x->max_src + 1));
    x->psem_len = calloc((size_t)x->pool_cap, sizeof(int));
    x->pdur = calloc((size_t)x->pool_cap, sizeof(float));
    x->pstart = calloc((size_t)x->pool_cap, sizeof(uint64_t));
    x->pend = calloc((size_t)x->pool_cap, sizeof(uint64_t));
    if (!x->sem || !x->sem_len || !x->txt || !x->br || !x->src || !x->src_len || !x->which ||
        !x->psem || !x->psem_len || !x->pdur || !x->pstart || !x->pend) {
        rc = sl_fail(err, SL_ENOMEM, "pipeline: out of memory");
        goto fail;
    }
    *out = x;
    return SL_OK;
fail:
    pl_close(x);
    return rc;
}

void pl_close(pl *x)
{
    if (!x)
        return;
    beam_state_free(x->bs);
    s2t_close(x->s2t);
    tok_state_free(x->ts);
    tok_pipeline_close(x->tok);
    free(x->sem);
    free(x->sem_len);
    free(x->txt);
    free(x->br);
    free(x->src);
    free(x->src_len);
    free(x->which);
    free(x->psem);
    free(x->psem_len);
    free(x->pdur);
    free(x->pstart);
    free(x->pend);
    free(x);
}

int pl_text_loops(const int32_t *ids, size_t n)
{
    const size_t span = 12; // the last 12 ids: >= 3 repeats of any n-gram with n <= 4
    if (n < span)
        return 0;
    for (size_t g = 1; g <= 4; g++) {
        const int32_t *tail = ids + n - span;
        int loop = 1;
        for (size_t k = g; k < span && loop; k++)
            loop = tail[k] == tail[k - g];
        if (loop)
            return 1;
    }
    return 0;
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// Synthetic rows for the coordinator bench: cost nothing, depend only on the name.
static void run_null(pl *x, const char *const *names, size_t n, pl_result *res)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t h = fnv(names[i]);
        int32_t *s = x->sem + i * (size_t)(x->max_src + 1);
        int32_t *t = x->txt + i * (size_t)(max_len_of(&x->p) + 1);
        size_t ns = 50 + h % 50, nt = 20 + (h >> 8) % 20;
        for (size_t k = 0; k < ns; k++)
            s[k] = (int32_t)((h >> (k % 48)) % 500);
        for (size_t k = 0; k < nt; k++)
            t[k] = (int32_t)((h >> (k % 40)) % 256);
        res[i] = (pl_result){.ok = 1, .semantic = s, .n_semantic = ns, .text = t, .n_text = nt,
                             .duration_s = 1.0f, .score = -1.0f, .end = 16000};
    }
}

// The samples the last token run covered in its file, at target_hz, counted at 16 kHz:
// a piece from its start, a whole file from 0.
static void set_bounds(const pl *x, const pl_range *range, pl_result *res)
{
    uint64_t s0 = range && range->end > 0 ? (uint64_t)range->start : 0;
    uint64_t hz = (uint64_t)x->p.audio.target_hz;
    res->start = s0 * 16000u / hz;
    res->end = (s0 + (uint64_t)tok_last_samples(x->ts)) * 16000u / hz;
}

// Back half: one batched decode of the n_src utterances in x->src / x->which.
static int decode_batch(pl *x, const char *const *names, int n_src, pl_result *res, pl_timers *t)
{
    (void)names;
    int max_len = max_len_of(&x->p);
    size_t stride = (size_t)(x->max_src + 1);
    const int32_t **src = x->src;
    int *src_len = x->src_len, *which = x->which;
    double t1 = sl_now();
    uint64_t st0 = 0, rows0 = 0, st1 = 0, rows1 = 0;
    if (x->bs)
        beam_pool_stats(x->bs, &st0, &rows0);
    // Back half: one batched decode of every utterance that has ids.
    if (n_src > 0) {
        sl_err e;
        int rc = beam_decode(x->bs, src, src_len, n_src, &x->p.beam, x->br, &e);
        if (rc) { // one source the batch cannot take: decode alone to find it
            for (int k = 0; k < n_src; k++) {
                int i = which[k];
                if (beam_decode(x->bs, &src[k], &src_len[k], 1, &x->p.beam, &x->br[k],
                                &res[i].err)) {
                    res[i].stage = SL_STAGE_TEXT;
                    which[k] = -1;
                } else { // keep its ids before the next decode overwrites them
                    int32_t *d = x->txt + (size_t)i * (size_t)(max_len + 1);
                    memcpy(d, x->br[k].ids, sizeof(int32_t) * (size_t)x->br[k].n_ids);
                    x->br[k].ids = d;
                }
            }
        }
        for (int k = 0; k < n_src; k++) {
            int i = which[k];
            if (i < 0)
                continue;
            pl_result *r = &res[i];
            r->ok = 1;
            r->semantic = x->sem + (size_t)i * stride;
            r->n_semantic = (size_t)x->sem_len[i];
            r->text = x->br[k].ids;
            r->n_text = (size_t)x->br[k].n_ids;
            r->score = x->br[k].score;
            r->flags = (x->br[k].flags & BEAM_FLAG_MAXLEN) ? PL_FLAG_MAXLEN : 0;
            if (pl_text_loops(r->text, r->n_text))
                r->flags |= PL_FLAG_LOOP;
            if (x->p.seed_layout) { // the seed's row: speech EOS after the semantic ids
                int32_t *s = x->sem + (size_t)i * stride;
                s[r->n_semantic++] = x->speech_eos;
                r->flags |= PL_FLAG_SEED_LAYOUT;
            }
            t->ok++;
        }
    }
    if (x->bs)
        beam_pool_stats(x->bs, &st1, &rows1);
    t->dec_steps += (double)(st1 - st0);
    t->dec_rows += (double)(rows1 - rows0);
    t->text += sl_now() - t1;
    return SL_OK;
}

int pl_run(pl *x, const char *const *paths, const pl_range *ranges, const char *const *names,
           size_t n, pl_result *res, pl_timers *t, sl_err *err)
{
    if (n > (size_t)x->p.max_batch)
        return sl_fail(err, SL_EINVAL, "pipeline: %zu utterances in a unit (max %d)", n,
                       x->p.max_batch);
    memset(res, 0, n * sizeof *res);
    if (x->p.null_pipeline) {
        run_null(x, names, n, res);
        t->utts += n;
        t->ok += n;
        t->audio_s += (double)n;
        return SL_OK;
    }
    size_t stride = (size_t)(x->max_src + 1);
    // Front half, one utterance at a time.
    const int32_t **src = x->src;
    int *src_len = x->src_len, *which = x->which, n_src = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t *ids;
        size_t n_ids;
        float dur = 0;
        int rc = tok_run_range(x->tok, x->ts, paths[i], ranges ? ranges[i].start : 0,
                               ranges ? ranges[i].end : 0, &ids, &n_ids, &dur, &res[i].err);
        double ta, tf, tt;
        tok_last_timings(x->ts, &ta, &tf, &tt);
        t->audio += ta;
        t->features += tf;
        t->tokens += tt;
        res[i].duration_s = dur;
        set_bounds(x, ranges ? &ranges[i] : NULL, &res[i]);
        t->utts++;
        if (rc) {
            res[i].stage = tok_failed_stage(x->ts);
            continue;
        }
        if (n_ids > (size_t)x->max_src) {
            sl_fail(&res[i].err, SL_EFORMAT, "text: %s: %zu semantic ids exceed the decoder's "
                    "limit of %d", names[i], n_ids, x->max_src);
            res[i].stage = SL_STAGE_TEXT;
            continue;
        }
        int32_t *dst = x->sem + i * stride;
        memcpy(dst, ids, n_ids * sizeof(int32_t));
        x->sem_len[i] = (int)n_ids;
        t->audio_s += (double)dur;
        src[n_src] = dst;
        src_len[n_src] = (int)n_ids;
        which[n_src++] = (int)i;
    }
    return decode_batch(x, names, n_src, res, t);
}

int pl_run_ids(pl *x, const int32_t *const *sem, const size_t *n_sem, const float *dur,
               const char *const *names, size_t n, pl_result *res, pl_timers *t, sl_err *err)
{
    if (n > (size_t)x->p.max_batch)
        return sl_fail(err, SL_EINVAL, "pipeline: %zu utterances in a unit (max %d)", n,
                       x->p.max_batch);
    if (!x->s2t)
        return sl_fail(err, SL_EINVAL, "pipeline: no speech->text model open");
    memset(res, 0, n * sizeof *res);
    size_t stride = (size_t)(x->max_src + 1);
    int n_src = 0;
    for (size_t i = 0; i < n; i++) {
        res[i].duration_s = dur[i];
        t->utts++;
        if (n_sem[i] == 0 || n_sem[i] > (size_t)x->max_src) {
            sl_fail(&res[i].err, SL_EFORMAT, "text: %s: %zu semantic ids (the decoder takes "
                    "1..%d)", names[i], n_sem[i], x->max_src);
            res[i].stage = SL_STAGE_TEXT;
            continue;
        }
        int32_t *dst = x->sem + i * stride;
        memcpy(dst, sem[i], n_sem[i] * sizeof(int32_t));
        x->sem_len[i] = (int)n_sem[i];
        t->audio_s += (double)dur[i];
        x->src[n_src] = dst;
        x->src_len[n_src] = (int)n_sem[i];
        x->which[n_src++] = (int)i;
    }
    return decode_batch(x, names, n_src, res, t);
}

// ---- continuous decoding --------------------------------------------------------------

int pl_pool_begin(pl *x, sl_err *err)
{
    x->pool_used = 0;
    return x->bs ? beam_pool_begin(x->bs, &x->p.beam, err) : SL_OK;
}

int pl_pool_cap(const pl *x) { return x->pool_cap; }
int pl_pool_free(const pl *x) { return x->pool_cap - x->pool_used; }
int pl_pool_live(const pl *x) { return x->bs ? beam_pool_live(x->bs) : 0; }

// ids[0..n) (checked against max_src by the caller) join the pool; a source the
// decoder refuses is a text failure with the decoder's words, as pl_run gives it.
static int pool_join(pl *x, const int32_t *ids, size_t n, float dur, pl_result *res, int *slot,
                     pl_timers *t)
{
    t->audio_s += (double)dur; // as pl_run: counted once the front half gave ids
    double t1 = sl_now();
    int s;
    sl_err e;
    int rc = beam_pool_add(x->bs, ids, (int)n, &s, &e);
    t->text += sl_now() - t1;
    if (rc) {
        res->err = e;
        res->stage = SL_STAGE_TEXT;
        return SL_OK;
    }
    memcpy(x->psem + (size_t)s * (size_t)(x->max_src + 1), ids, n * sizeof(int32_t));
    x->psem_len[s] = (int)n;
    x->pdur[s] = dur;
    x->pstart[s] = res->start;
    x->pend[s] = res->end;
    x->pool_used++;
    *slot = s;
    return SL_OK;
}

static int pool_room(const pl *x, sl_err *err)
{
    if (x->pool_used >= x->pool_cap)
        return sl_fail(err, SL_EINVAL, "pipeline: the decoding pool's %d slots are taken",
                       x->pool_cap);
    return SL_OK;
}

// The front half of one utterance, then it joins the pool: pcm NULL reads path (its
// range, or the whole file), else pcm holds the range's samples already read.
static int pool_add_audio(pl *x, const char *path, const float *pcm, const pl_range *range,
                          const char *name, pl_result *res, int *slot, pl_timers *t, sl_err *err)
{
    *slot = -1;
    memset(res, 0, sizeof *res);
    if (x->p.null_pipeline) {
        run_null(x, &name, 1, res);
        t->utts++;
        t->ok++;
        t->audio_s += 1.0;
        return SL_OK;
    }
    int rc = pool_room(x, err);
    if (rc)
        return rc;
    const int32_t *ids;
    size_t n_ids;
    float dur = 0;
    rc = pcm ? tok_run_pcm(x->tok, x->ts, pcm, (size_t)(range->end - range->start), path, &ids,
                           &n_ids, &dur, &res->err)
             : tok_run_range(x->tok, x->ts, path, range ? range->start : 0,
                             range ? range->end : 0, &ids, &n_ids, &dur, &res->err);
    double ta, tf, tt;
    tok_last_timings(x->ts, &ta, &tf, &tt);
    t->audio += ta;
    t->features += tf;
    t->tokens += tt;
    res->duration_s = dur;
    set_bounds(x, range, res);
    t->utts++;
    if (rc) {
        res->stage = tok_failed_stage(x->ts);
        return SL_OK;
    }
    if (n_ids > (size_t)x->max_src) {
        sl_fail(&res->err, SL_EFORMAT, "text: %s: %zu semantic ids exceed the decoder's "
                "limit of %d", name, n_ids, x->max_src);
        res->stage = SL_STAGE_TEXT;
        return SL_OK;
    }
    return pool_join(x, ids, n_ids, dur, res, slot, t);
}

int pl_pool_add_file(pl *x, const char *path, const pl_range *range, const char *name,
                     pl_result *res, int *slot, pl_timers *t, sl_err *err)
{
    return pool_add_audio(x, path, NULL, range, name, res, slot, t, err);
}

int pl_pool_add_pcm(pl *x, const float *pcm, const pl_range *range, const char *path,
                    const char *name, pl_result *res, int *slot, pl_timers *t, sl_err *err)
{
    if (!pcm || !range || range->end <= range->start || range->start < 0) {
        *slot = -1;
        memset(res, 0, sizeof *res);
        return sl_fail(err, SL_EINVAL, "pipeline: %s: pl_pool_add_pcm needs samples and a range",
                       name);
    }
    return pool_add_audio(x, path, pcm, range, name, res, slot, t, err);
}

int pl_pool_add_ids(pl *x, const int32_t *sem, size_t n_sem, float dur, const char *name,
                    pl_result *res, int *slot, pl_timers *t, sl_err *err)
{
    *slot = -1;
    memset(res, 0, sizeof *res);
    if (!x->s2t)
        return sl_fail(err, SL_EINVAL, "pipeline: no speech->text model open");
    int rc = pool_room(x, err);
    if (rc)
        return rc;
    res->duration_s = dur;
    t->utts++;
    if (n_sem == 0 || n_sem > (size_t)x->max_src) {
        sl_fail(&res->err, SL_EFORMAT, "text: %s: %zu semantic ids (the decoder takes "
                "1..%d)", name, n_sem, x->max_src);
        res->stage = SL_STAGE_TEXT;
        return SL_OK;
    }
    return pool_join(x, sem, n_sem, dur, res, slot, t);
}

int pl_pool_step(pl *x, pl_timers *t, sl_err *err)
{
    if (!x->bs || beam_pool_live(x->bs) == 0)
        return SL_OK;
    double t1 = sl_now();
    uint64_t st0, rows0, st1, rows1;
    beam_pool_stats(x->bs, &st0, &rows0);
    int rc = beam_pool_step(x->bs, err);
    beam_pool_stats(x->bs, &st1, &rows1);
    t->dec_steps += (double)(st1 - st0);
    t->dec_rows += (double)(rows1 - rows0);
    t->text += sl_now() - t1;
    return rc;
}

int pl_pool_take(pl *x, int *slot, pl_result *res, pl_timers *t)
{
    beam_result br;
    if (!x->bs || !beam_pool_take(x->bs, slot, &br))
        return 0;
    int s = *slot;
    x->pool_used--;
    int32_t *sem = x->psem + (size_t)s * (size_t)(x->max_src + 1);
    memset(res, 0, sizeof *res);
    res->ok = 1;
    res->duration_s = x->pdur[s];
    res->start = x->pstart[s];
    res->end = x->pend[s];
    res->semantic = sem;
    res->n_semantic = (size_t)x->psem_len[s];
    res->text = br.ids;
    res->n_text = (size_t)br.n_ids;
    res->score = br.score;
    res->flags = (br.flags & BEAM_FLAG_MAXLEN) ? PL_FLAG_MAXLEN : 0;
    if (pl_text_loops(res->text, res->n_text))
        res->flags |= PL_FLAG_LOOP;
    if (x->p.seed_layout) { // the seed's row: speech EOS after the semantic ids
        sem[res->n_semantic++] = x->speech_eos;
        res->flags |= PL_FLAG_SEED_LAYOUT;
    }
    t->ok++;
    return 1;
}
