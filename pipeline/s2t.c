// pipeline/s2t.c — SPEAR-TTS speech->text model: loader, encoder, decoder with
// KV cache and per-source cross-attention K/V. See s2t.h. Decoding strategies
// are in beam.c; RMSNorm, GEGLU, softmax and the step attention in kernels.c.
#include "pipeline/s2t.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "pipeline/half.h"
#include "pipeline/kernels.h"
#include "pipeline/ops.h"
#include "pipeline/par.h"
#include "pipeline/weights.h"

typedef struct s2t_layer {
    const float *attn_gamma; // (dim)
    const float *wq;         // (heads*dim_head, dim)
    const float *wkv;        // (2*kv_heads*dim_head, dim): K rows, then V rows, head-major
    const float *wo;         // (dim, heads*dim_head)
    const float *x_gamma;    // cross-attention (decoder only), (dim)
    const float *x_wq;       // (heads*dim_head, dim)
    const float *x_wkv;      // (2*heads*dim_head, dim)
    const float *x_wo;       // (dim, heads*dim_head)
    const float *null_kv;    // (2, heads, 1, dim_head): [0] keys, [1] values
    const float *ff_gamma;   // (dim)
    const float *w1, *b1;    // (2*ff_inner, dim), (2*ff_inner)
    const float *w2, *b2;    // (dim, ff_inner), (dim)
} s2t_layer;

struct s2t_model {
    wts_file *w;
    s2t_config c;
    const float *speech_emb; // (n_speech_vocab, dim)
    const float *text_emb;   // (n_text_vocab, dim), also the logits matrix (tied)
    const float *start_text; // (dim)
    const float *enc_final;  // (dim)
    const float *dec_final;  // (dim)
    float *inv_freq;         // (dim_head/2) rotary frequencies, owned
    s2t_layer *enc;          // source_depth
    s2t_layer *dec;          // target_depth
};

struct s2t_state {
    const s2t_model *m;
    s2t_limits lim;
    int max_pos;      // rotary table rows
    int cache_pos;    // decoder positions per row (max_len + 1)
    int rows_cap;     // max_batch * max_beam
    int dec_cap;      // decoder activation rows: max(rows_cap, max_len + 1)
    float *cos_t, *sin_t; // (max_pos, dim_head/2)
    // encoder scratch for one source (n <= max_src_len + 1)
    float *ex, *eh;   // (n, dim)
    float *eqkv;      // (n, 3*heads*dim_head): q | k rows, then v transposed (encode_one)
    float *eatt;      // (n, heads*dim_head)
    float *eff;       // (n, 2*ff_inner)
    float *score;     // attention scores, score_cap floats (the encoder; worker 0's step scratch),
                      // then wide_cap floats (S2T_KV_F16: one head's keys and values widened)
    size_t score_cap, wide_cap;
    // decoder step attention with threads (par.h): worker w > 0 scores into wscore[w]
    // (step_cap + wide_cap floats, allocated on first use; widened K/V at step_cap);
    // wscore[0] = score
    float **wscore;
    int n_wscore;
    size_t step_cap;
    size_t *grp;      // (rows_cap + 1) first row of each cross-attention row group
    // encoded sources, one fixed region per slot (s2t_encode_slot touches only its own)
    int *src_pos;     // (max_batch) positions per slot incl. EOS; 0 = no source
    size_t *enc_off;  // (max_batch) first row of the slot in enc_out
    float *enc_out;   // (max_batch * (max_src_len + 1), dim)
    size_t *x_off;    // (max_batch) first row of the slot in x_v (the null value)
    size_t *xk_off;   // (max_batch) first float of the slot in x_k
    // per decoder layer, per source: keys per head in tiles of 8 keys (heads,
    // ntile = ceil((src_pos + 1) / 8), dim_head, 8), the padding zero, so a
    // step's scores stream through memory once; values per head (heads, src_pos + 1,
    // dim_head), row 0 the null value, so each head's values are one stream too.
    // S2T_KV_F32: x_k, x_v; S2T_KV_F16: h_k, h_v, the same layout in float16 (the
    // other pair NULL)
    float **x_k, **x_v;
    uint16_t **h_k, **h_v;
    // decoder: each row has its own position (rows of different sources may be at
    // different steps: continuous batching)
    int n_rows;
    int *row_src;     // (rows_cap)
    int *row_len, *row_len2; // (rows_cap) positions cached per row; reorder target
    float **kc;       // per layer: (rows_cap, kv_heads, dim_head, cache_pos) rotated keys, transposed
    float **vc;       // per layer: (rows_cap, cache_pos, kv_heads*dim_head)
    float **kc2, **vc2; // reorder targets, swapped with kc/vc
    float *dx, *dh;   // (dec_cap, dim)
    float *dq;        // (dec_cap, heads*dim_head)
    float *dkv;       // (dec_cap, 2*kv_heads*dim_head)
    float *datt;      // (dec_cap, heads*dim_head)
    float *dff;       // (dec_cap, 2*ff_inner)
    float *logits;    // (dec_cap, n_text_vocab)
    size_t bytes;
};

// ---------------------------------------------------------------- loading ---

static int parse_config(s2t_model *m, const char *path, sl_err *err)
{
    const char *js = wts_metadata(m->w, "config");
    if (!js)
        return sl_fail(err, SL_EFORMAT, "s2t: %s: no __metadata__[\"config\"] (the TextToSemantic "
                       "constructor arguments as JSON)", path);
    json_error_t je;
    json_t *cfg = json_loads(js, 0, &je);
    if (!cfg)
        return sl_fail(err, SL_EFORMAT, "s2t: %s: __metadata__[\"config\"] is not JSON: %s", path,
                       je.text);
    int rc = SL_OK;
    s2t_config *c = &m->c;
    int eos_sem, eos_text, semantic_pad, ff_inner_cfg;
    if (!json_is_object(cfg)) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: config is not a JSON object", path);
        goto done;
    }
    // Integers within +-1e9 here; the ranges that matter are checked below.
    const sl_json_src src = {"s2t", path, "config key "};
    const int lo = -1000000000, hi = 1000000000;
    if ((rc = sl_json_int_required(&src, cfg, "dim", lo, hi, &c->dim, err)) ||
        (rc = sl_json_int_required(&src, cfg, "source_depth", lo, hi, &c->source_depth, err)) ||
        (rc = sl_json_int_required(&src, cfg, "target_depth", lo, hi, &c->target_depth, err)) ||
        (rc = sl_json_int_required(&src, cfg, "num_semantic_token_ids", lo, hi, &c->n_semantic,
                                   err)) ||
        (rc = sl_json_int_required(&src, cfg, "num_text_token_ids", lo, hi, &c->n_text, err)) ||
        (rc = sl_json_int(&src, cfg, "heads", lo, hi, 8, &c->heads, err)) ||
        (rc = sl_json_int(&src, cfg, "dim_head", lo, hi, 64, &c->dim_head, err)) ||
        (rc = sl_json_int(&src, cfg, "target_kv_heads", lo, hi, c->heads, &c->kv_heads, err)) ||
        (rc = sl_json_int(&src, cfg, "semantic_pad_id", lo, hi, -1, &semantic_pad, err)) ||
        (rc = sl_json_int(&src, cfg, "text_pad_id", lo, hi, 0, &c->text_pad, err)) ||
        (rc = sl_json_int(&src, cfg, "ff_inner_dim", lo, hi, -1, &ff_inner_cfg, err)) ||
        (rc = sl_json_bool(&src, cfg, "autoset_semantic_eos_id", 1, &eos_sem, err)) ||
        (rc = sl_json_bool(&src, cfg, "autoset_text_eos_id", 1, &eos_text, err)))
        goto done;
    double ff_mult;
    if ((rc = sl_json_number(&src, cfg, "ff_mult", 4.0, &ff_mult, err)))
        goto done;
    if (c->dim <= 0 || c->heads <= 0 || c->dim_head <= 0 || c->dim_head % 2 || c->kv_heads <= 0 ||
        c->heads % c->kv_heads || c->source_depth <= 0 || c->target_depth <= 0 ||
        c->n_semantic <= 0 || c->n_text <= 0 || ff_mult <= 0) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: config values out of range (dim %d, heads %d, "
                     "dim_head %d (must be even), target_kv_heads %d (must divide heads), depths "
                     "%d/%d, vocab %d/%d)", path, c->dim, c->heads, c->dim_head, c->kv_heads,
                     c->source_depth, c->target_depth, c->n_semantic, c->n_text);
        goto done;
    }
    // ref: FeedForward's dim_inner = int(dim * mult * 2 / 3), in Python floats.
    c->ff_inner = (int)((double)c->dim * ff_mult * 2.0 / 3.0);
    if (ff_inner_cfg >= 0 && ff_inner_cfg != c->ff_inner) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: config ff_inner_dim %d disagrees with "
                     "int(dim * ff_mult * 2 / 3) = %d", path, ff_inner_cfg, c->ff_inner);
        goto done;
    }
    c->speech_eos = eos_sem ? c->n_semantic : -1;
    c->text_eos = eos_text ? c->n_text : -1;
    c->n_speech_vocab = c->n_semantic + (eos_sem ? 1 : 0);
    c->n_text_vocab = c->n_text + (eos_text ? 1 : 0);
    // Derived constants the generator wrote: check them when present.
    int v;
    if ((rc = sl_json_int(&src, cfg, "speech_eos_id", lo, hi, c->speech_eos, &v, err)))
        goto done;
    if (v != c->speech_eos) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: config speech_eos_id %d, expected %d", path, v,
                     c->speech_eos);
        goto done;
    }
    if ((rc = sl_json_int(&src, cfg, "text_eos_id", lo, hi, c->text_eos, &v, err)))
        goto done;
    if (v != c->text_eos) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: config text_eos_id %d, expected %d", path, v,
                     c->text_eos);
        goto done;
    }
    if (semantic_pad >= 0 && semantic_pad < c->n_speech_vocab) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: semantic_pad_id %d collides with a semantic id "
                     "(only a negative pad id is supported)", path, semantic_pad);
        goto done;
    }
    int interleaved;
    if ((rc = sl_json_bool(&src, cfg, "rotary_interleaved", 1, &interleaved, err)))
        goto done;
    if (!interleaved) {
        rc = sl_fail(err, SL_EFORMAT, "s2t: %s: rotary_interleaved false is not supported", path);
        goto done;
    }
done:
    json_decref(cfg);
    return rc;
}

static int get_attn(const s2t_model *m, const char *pfx, int kvh, const float **gamma,
                    const float **wq, const float **wkv, const float **wo, sl_err *err)
{
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, hd = (size_t)c->heads * (size_t)c->dim_head;
    size_t kvd = (size_t)kvh * (size_t)c->dim_head;
    char n[256];
    int rc;
    snprintf(n, sizeof n, "%s.norm.gamma", pfx);
    if ((rc = wts_get1(m->w, n, d, gamma, err)))
        return rc;
    snprintf(n, sizeof n, "%s.to_q.0.weight", pfx);
    if ((rc = wts_get2(m->w, n, hd, d, wq, err)))
        return rc;
    snprintf(n, sizeof n, "%s.to_kv.0.weight", pfx);
    if ((rc = wts_get2(m->w, n, 2 * kvd, d, wkv, err)))
        return rc;
    snprintf(n, sizeof n, "%s.to_out.weight", pfx);
    return wts_get2(m->w, n, d, hd, wo, err);
}

static int get_freqs(s2t_model *m, const char *pfx, sl_err *err)
{
    char n[256];
    snprintf(n, sizeof n, "%s.rotary_emb.freqs", pfx);
    size_t half = (size_t)m->c.dim_head / 2;
    if (!wts_find(m->w, n))
        return SL_OK; // not stored: computed from theta 10000 below
    const float *f;
    int rc = wts_get1(m->w, n, half, &f, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < half; i++)
        if (f[i] != m->inv_freq[i])
            return sl_fail(err, SL_EFORMAT, "s2t: %s: tensor \"%s\"[%zu] = %g differs from "
                           "1/10000^(2i/dim_head) = %g (only the default rotary is supported)",
                           wts_path(m->w), n, i, (double)f[i], (double)m->inv_freq[i]);
    return SL_OK;
}

static int get_layer(s2t_model *m, const char *tr, int i, int decoder, s2t_layer *L, sl_err *err)
{
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, in = (size_t)c->ff_inner;
    char p[200], n[256];
    int rc;
    snprintf(p, sizeof p, "%s.layers.%d.0", tr, i);
    if ((rc = get_attn(m, p, decoder ? c->kv_heads : c->heads, &L->attn_gamma, &L->wq, &L->wkv,
                       &L->wo, err)) ||
        (rc = get_freqs(m, p, err)))
        return rc;
    if (decoder) {
        snprintf(p, sizeof p, "%s.layers.%d.1", tr, i);
        if ((rc = get_attn(m, p, c->heads, &L->x_gamma, &L->x_wq, &L->x_wkv, &L->x_wo, err)))
            return rc;
        snprintf(n, sizeof n, "%s.null_kv", p);
        size_t s[4] = {2, (size_t)c->heads, 1, (size_t)c->dim_head};
        if ((rc = wts_get(m->w, n, 4, s, &L->null_kv, err)))
            return rc;
    }
    snprintf(n, sizeof n, "%s.layers.%d.2.0.gamma", tr, i);
    if ((rc = wts_get1(m->w, n, d, &L->ff_gamma, err)))
        return rc;
    snprintf(n, sizeof n, "%s.layers.%d.2.1.weight", tr, i);
    if ((rc = wts_get2(m->w, n, 2 * in, d, &L->w1, err)))
        return rc;
    snprintf(n, sizeof n, "%s.layers.%d.2.1.bias", tr, i);
    if ((rc = wts_get1(m->w, n, 2 * in, &L->b1, err)))
        return rc;
    snprintf(n, sizeof n, "%s.layers.%d.2.4.weight", tr, i);
    if ((rc = wts_get2(m->w, n, d, in, &L->w2, err)))
        return rc;
    snprintf(n, sizeof n, "%s.layers.%d.2.4.bias", tr, i);
    return wts_get1(m->w, n, d, &L->b2, err);
}

// A layer index beyond the configured depth means config and file disagree.
static int check_no_extra_layer(const s2t_model *m, const char *tr, int depth, sl_err *err)
{
    char n[256];
    snprintf(n, sizeof n, "%s.layers.%d.0.norm.gamma", tr, depth);
    if (wts_find(m->w, n))
        return sl_fail(err, SL_EFORMAT, "s2t: %s: tensor \"%s\" exists but the config says "
                       "depth %d", wts_path(m->w), n, depth);
    return SL_OK;
}

int s2t_open(s2t_model **out, const char *path, sl_err *err)
{
    *out = NULL;
    s2t_model *m = calloc(1, sizeof *m);
    if (!m)
        return sl_fail(err, SL_ENOMEM, "s2t: out of memory");
    int rc = wts_open(&m->w, path, err);
    if (rc)
        goto fail;
    if ((rc = parse_config(m, path, err)))
        goto fail;
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, half = (size_t)c->dim_head / 2;
    m->inv_freq = malloc(half * sizeof(float));
    m->enc = calloc((size_t)c->source_depth, sizeof(s2t_layer));
    m->dec = calloc((size_t)c->target_depth, sizeof(s2t_layer));
    if (!m->inv_freq || !m->enc || !m->dec) {
        rc = sl_fail(err, SL_ENOMEM, "s2t: out of memory");
        goto fail;
    }
    // ref: rotary-embedding-torch: 1 / theta^(arange(0, dim, 2)[:dim/2] / dim) in float32.
    for (size_t i = 0; i < half; i++)
        m->inv_freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)c->dim_head);
    if ((rc = wts_get2(m->w, "token_emb.speech.weight", (size_t)c->n_speech_vocab, d,
                       &m->speech_emb, err)) ||
        (rc = wts_get2(m->w, "token_emb.text.weight", (size_t)c->n_text_vocab, d, &m->text_emb,
                       err)) ||
        (rc = wts_get1(m->w, "start_token.text", d, &m->start_text, err)) ||
        (rc = wts_get1(m->w, "source_transformer.final_norm.gamma", d, &m->enc_final, err)) ||
        (rc = wts_get1(m->w, "target_transformer.final_norm.gamma", d, &m->dec_final, err)))
        goto fail;
    // The logits are tied to the text embedding; a stored copy must agree in shape.
    const float *tied;
    if (wts_find(m->w, "to_logits.text.weight") &&
        (rc = wts_get2(m->w, "to_logits.text.weight", (size_t)c->n_text_vocab, d, &tied, err)))
        goto fail;
    for (int i = 0; i < c->source_depth; i++)
        if ((rc = get_layer(m, "source_transformer", i, 0, &m->enc[i], err)))
            goto fail;
    for (int i = 0; i < c->target_depth; i++)
        if ((rc = get_layer(m, "target_transformer", i, 1, &m->dec[i], err)))
            goto fail;
    if ((rc = check_no_extra_layer(m, "source_transformer", c->source_depth, err)) ||
        (rc = check_no_extra_layer(m, "target_transformer", c->target_depth, err)))
        goto fail;
    *out = m;
    return SL_OK;
fail:
    s2t_close(m);
    return rc;
}

void s2t_close(s2t_model *m)
{
    if (!m)
        return;
    wts_close(m->w);
    free(m->inv_freq);
    free(m->enc);
    free(m->dec);
    free(m);
}

const s2t_config *s2t_model_config(const s2t_model *m) { return &m->c; }

// ------------------------------------------------------------------ state ---

// S2T_KV_F16: keys (and values) a step's attention widens at a time: 64 keys x dim_head 64
// are 16 KiB of floats, in L1 beside the scores (a whole head widened at once went through
// L2 and was no faster than float32)
#define S2T_KV_CHUNK ((size_t)64)

typedef struct plan {
    size_t n_src_pos; // encoder rows for one source
    size_t tot_pos;   // encoder rows of all sources
    size_t rows_cap, dec_cap, cache_pos, max_pos, score_cap, step_cap;
    size_t wide_cap; // S2T_KV_F16: one head's keys (whole tiles) or values as floats
} plan;

static int make_plan(const s2t_model *m, s2t_limits lim, plan *p)
{
    if (lim.max_batch < 1 || lim.max_beam < 1 || lim.max_src_len < 1 || lim.max_len < 1 ||
        lim.max_batch > (1 << 16) || lim.max_beam > 256 || lim.max_src_len > (1 << 24) ||
        lim.max_len > (1 << 20) || !s2t_kv_type_name(lim.cross_kv))
        return -1;
    p->n_src_pos = (size_t)lim.max_src_len + 1;
    p->tot_pos = p->n_src_pos * (size_t)lim.max_batch;
    p->rows_cap = (size_t)lim.max_batch * (size_t)lim.max_beam;
    p->cache_pos = (size_t)lim.max_len + 1;
    p->dec_cap = p->rows_cap > p->cache_pos ? p->rows_cap : p->cache_pos;
    p->max_pos = p->n_src_pos > p->cache_pos ? p->n_src_pos : p->cache_pos;
    size_t hq = (size_t)m->c.heads; // queries of one kv group at one step <= heads
    size_t q_rows = p->cache_pos > (size_t)lim.max_beam * hq ? p->cache_pos
                                                              : (size_t)lim.max_beam * hq;
    // + 7: cross-attention keys are stored in tiles of 8 (scores of the padding included)
    size_t keys = p->n_src_pos + 1 > p->cache_pos ? p->n_src_pos + 1 : p->cache_pos;
    keys += 7;
    size_t enc = p->n_src_pos * p->n_src_pos;
    p->score_cap = q_rows * keys > enc ? q_rows * keys : enc;
    // one step-attention call: the heads of a kv group over the self cache, or a
    // group of at most max_beam rows over a source's cross keys (dec_forward)
    size_t self = (hq / (size_t)m->c.kv_heads) * (p->cache_pos + 7);
    size_t cross = (size_t)lim.max_beam * (p->n_src_pos + 8);
    p->step_cap = self > cross ? self : cross;
    if (p->step_cap > p->score_cap)
        p->score_cap = p->step_cap;
    // S2T_KV_F16: encode_into builds one head's tiles (or values) in floats before narrowing
    // them; a step's attention widens S2T_KV_CHUNK keys (or values) at a time
    size_t head = (p->n_src_pos + 8) / 8 * 8;
    p->wide_cap = lim.cross_kv == S2T_KV_F16
                      ? (head > S2T_KV_CHUNK ? head : S2T_KV_CHUNK) * (size_t)m->c.dim_head
                      : 0;
    return 0;
}

const char *s2t_kv_type_name(s2t_kv_type t)
{
    switch (t) {
    case S2T_KV_F32: return "f32";
    case S2T_KV_F16: return "f16";
    }
    return NULL;
}

int s2t_kv_type_parse(const char *name)
{
    for (int t = S2T_KV_F32; t <= S2T_KV_F16; t++)
        if (name && strcmp(name, s2t_kv_type_name((s2t_kv_type)t)) == 0)
            return t;
    return -1;
}

size_t s2t_state_bytes(const s2t_model *m, s2t_limits lim)
{
    plan p;
    if (make_plan(m, lim, &p))
        return 0;
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, hd = (size_t)c->heads * (size_t)c->dim_head;
    size_t kvd = (size_t)c->kv_heads * (size_t)c->dim_head, ff = 2 * (size_t)c->ff_inner;
    size_t L = (size_t)c->target_depth, half = (size_t)c->dim_head / 2;
    size_t kv = L * (2 * p.tot_pos + 9 * (size_t)lim.max_batch) * hd; // cross K/V elements
    size_t f = 2 * p.max_pos * half + p.n_src_pos * (2 * d + 3 * hd + hd + ff) + p.score_cap +
               p.wide_cap + p.tot_pos * d + L * 4 * p.rows_cap * p.cache_pos * kvd +
               p.dec_cap * (2 * d + hd + 2 * kvd + hd + ff + (size_t)c->n_text_vocab);
    size_t kv_bytes = kv * (lim.cross_kv == S2T_KV_F16 ? sizeof(uint16_t) : sizeof(float));
    return f * sizeof(float) + kv_bytes + (size_t)lim.max_batch * (sizeof(int) + 3 * sizeof(size_t)) +
           3 * p.rows_cap * sizeof(int) + (p.rows_cap + 1) * sizeof(size_t);
}

void s2t_state_free(s2t_state *s)
{
    if (!s)
        return;
    int L = s->m->c.target_depth;
    free(s->cos_t);
    free(s->sin_t);
    free(s->ex);
    free(s->eh);
    free(s->eqkv);
    free(s->eatt);
    free(s->eff);
    for (int w = 1; w < s->n_wscore; w++)
        free(s->wscore[w]);
    free(s->wscore);
    free(s->grp);
    free(s->score);
    free(s->src_pos);
    free(s->enc_off);
    free(s->enc_out);
    free(s->x_off);
    free(s->xk_off);
    for (int i = 0; i < L; i++) {
        if (s->x_k)
            free(s->x_k[i]);
        if (s->x_v)
            free(s->x_v[i]);
        if (s->h_k)
            free(s->h_k[i]);
        if (s->h_v)
            free(s->h_v[i]);
        if (s->kc)
            free(s->kc[i]);
        if (s->vc)
            free(s->vc[i]);
        if (s->kc2)
            free(s->kc2[i]);
        if (s->vc2)
            free(s->vc2[i]);
    }
    free(s->x_k);
    free(s->x_v);
    free(s->h_k);
    free(s->h_v);
    free(s->kc);
    free(s->vc);
    free(s->kc2);
    free(s->vc2);
    free(s->row_src);
    free(s->row_len);
    free(s->row_len2);
    free(s->dx);
    free(s->dh);
    free(s->dq);
    free(s->dkv);
    free(s->datt);
    free(s->dff);
    free(s->logits);
    free(s);
}

static float *falloc(s2t_state *s, size_t n, int *bad)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p)
        *bad = 1;
    s->bytes += n * sizeof(float);
    return p;
}

static uint16_t *halloc(s2t_state *s, size_t n, int *bad)
{
    uint16_t *p = malloc((n ? n : 1) * sizeof(uint16_t));
    if (!p)
        *bad = 1;
    s->bytes += n * sizeof(uint16_t);
    return p;
}

// S2T_KV_F16 only for a model whose cross keys/values cannot overflow float16 (s2t.h).
// The encoder output y is RMS-normed: ||y|| <= sqrt(dim) * max |gamma|, so a key or value
// is at most ||its row of W|| * that (Cauchy-Schwarz); the null key/value as stored. The
// margin (1e-3) covers float32's rounding of the product.
// The larger of worst and v; NaN once either is NaN (a NaN weight is refused too).
static double max_nan(double worst, double v)
{
    return v > worst || isnan(v) || isnan(worst) ? (isnan(worst) ? worst : v) : worst;
}

static int check_f16_range(const s2t_model *m, sl_err *err)
{
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, hd = (size_t)c->heads * (size_t)c->dim_head;
    double g = 0.0;
    for (size_t j = 0; j < d; j++)
        g = max_nan(g, fabs((double)m->enc_final[j]));
    double ny = sqrt((double)d) * g;
    for (int l = 0; l < c->target_depth; l++) {
        const s2t_layer *L = &m->dec[l];
        double worst = 0.0;
        for (size_t r = 0; r < 2 * hd; r++) {
            double ss = 0.0;
            for (size_t j = 0; j < d; j++)
                ss += (double)L->x_wkv[r * d + j] * (double)L->x_wkv[r * d + j];
            worst = max_nan(worst, sqrt(ss) * ny);
        }
        for (size_t e = 0; e < 2 * hd; e++)
            worst = max_nan(worst, fabs((double)L->null_kv[e]));
        if (isnan(worst))
            return sl_fail(err, SL_EINVAL, "s2t: float16 cross-attention keys/values "
                           "(--cross-kv f16): decoder layer %d's cross-attention weights or the "
                           "encoder's final norm hold a NaN; this model needs the default f32", l);
        if (!(worst * 1.001 < (double)HALF_MAX))
            return sl_fail(err, SL_EINVAL, "s2t: float16 cross-attention keys/values "
                           "(--cross-kv f16): decoder layer %d's could reach %.6g, beyond "
                           "float16's largest finite %.0f; this model needs the default f32",
                           l, worst, (double)HALF_MAX);
    }
    return SL_OK;
}

int s2t_state_new(s2t_state **out, const s2t_model *m, s2t_limits lim, sl_err *err)
{
    *out = NULL;
    plan p;
    if (make_plan(m, lim, &p))
        return sl_fail(err, SL_EINVAL, "s2t: state limits out of range (batch %d, beam %d, "
                       "source %d, length %d)", lim.max_batch, lim.max_beam, lim.max_src_len,
                       lim.max_len);
    if (lim.cross_kv == S2T_KV_F16) {
        int rc = check_f16_range(m, err);
        if (rc)
            return rc;
    }
    s2t_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_fail(err, SL_ENOMEM, "s2t: out of memory");
    s->m = m;
    s->lim = lim;
    s->wide_cap = p.wide_cap;
    s->max_pos = (int)p.max_pos;
    s->cache_pos = (int)p.cache_pos;
    s->rows_cap = (int)p.rows_cap;
    s->dec_cap = (int)p.dec_cap;
    s->score_cap = p.score_cap;
    s->step_cap = p.step_cap;
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, hd = (size_t)c->heads * (size_t)c->dim_head;
    size_t kvd = (size_t)c->kv_heads * (size_t)c->dim_head, ff = 2 * (size_t)c->ff_inner;
    size_t half = (size_t)c->dim_head / 2, L = (size_t)c->target_depth;
    int bad = 0;
    s->cos_t = falloc(s, p.max_pos * half, &bad);
    s->sin_t = falloc(s, p.max_pos * half, &bad);
    s->ex = falloc(s, p.n_src_pos * d, &bad);
    s->eh = falloc(s, p.n_src_pos * d, &bad);
    s->eqkv = falloc(s, p.n_src_pos * 3 * hd, &bad);
    s->eatt = falloc(s, p.n_src_pos * hd, &bad);
    s->eff = falloc(s, p.n_src_pos * ff, &bad);
    s->score = falloc(s, p.score_cap + p.wide_cap, &bad);
    s->enc_out = falloc(s, p.tot_pos * d, &bad);
    s->src_pos = calloc((size_t)lim.max_batch, sizeof(int));
    s->enc_off = calloc((size_t)lim.max_batch, sizeof(size_t));
    s->x_off = calloc((size_t)lim.max_batch, sizeof(size_t));
    s->xk_off = calloc((size_t)lim.max_batch, sizeof(size_t));
    s->row_src = calloc(p.rows_cap, sizeof(int));
    s->row_len = calloc(p.rows_cap, sizeof(int));
    s->row_len2 = calloc(p.rows_cap, sizeof(int));
    s->grp = calloc(p.rows_cap + 1, sizeof(size_t));
    int f16 = lim.cross_kv == S2T_KV_F16;
    if (f16) {
        s->h_k = calloc(L, sizeof(uint16_t *));
        s->h_v = calloc(L, sizeof(uint16_t *));
    } else {
        s->x_k = calloc(L, sizeof(float *));
        s->x_v = calloc(L, sizeof(float *));
    }
    s->kc = calloc(L, sizeof(float *));
    s->vc = calloc(L, sizeof(float *));
    s->kc2 = calloc(L, sizeof(float *));
    s->vc2 = calloc(L, sizeof(float *));
    if (!s->src_pos || !s->enc_off || !s->x_off || !s->xk_off || !s->row_src || !s->row_len ||
        !s->row_len2 || !s->grp || !(f16 ? s->h_k && s->h_v : s->x_k && s->x_v) || !s->kc ||
        !s->vc || !s->kc2 || !s->vc2)
        bad = 1;
    for (size_t i = 0; !bad && i < L; i++) {
        size_t xrows = p.tot_pos + (size_t)lim.max_batch, cache = p.rows_cap * p.cache_pos * kvd;
        size_t nkey = (xrows + 7 * (size_t)lim.max_batch) * hd, nval = xrows * hd;
        if (f16) {
            s->h_k[i] = halloc(s, nkey, &bad);
            s->h_v[i] = halloc(s, nval, &bad);
        } else {
            s->x_k[i] = falloc(s, nkey, &bad);
            s->x_v[i] = falloc(s, nval, &bad);
        }
        s->kc[i] = falloc(s, cache, &bad);
        s->vc[i] = falloc(s, cache, &bad);
        s->kc2[i] = falloc(s, cache, &bad);
        s->vc2[i] = falloc(s, cache, &bad);
    }
    s->dx = falloc(s, p.dec_cap * d, &bad);
    s->dh = falloc(s, p.dec_cap * d, &bad);
    s->dq = falloc(s, p.dec_cap * hd, &bad);
    s->dkv = falloc(s, p.dec_cap * 2 * kvd, &bad);
    s->datt = falloc(s, p.dec_cap * hd, &bad);
    s->dff = falloc(s, p.dec_cap * ff, &bad);
    s->logits = falloc(s, p.dec_cap * (size_t)c->n_text_vocab, &bad);
    if (bad) {
        s2t_state_free(s);
        return sl_fail(err, SL_ENOMEM, "s2t: out of memory for a decoding state of %zu MiB "
                       "(batch %d, beam %d, source %d, length %d)",
                       s2t_state_bytes(m, lim) >> 20, lim.max_batch, lim.max_beam,
                       lim.max_src_len, lim.max_len);
    }
    // Slot i's regions: encoder rows, cross values (null + keys, head by head), tiled
    // cross keys.
    for (int i = 0; i < lim.max_batch; i++) {
        s->enc_off[i] = (size_t)i * p.n_src_pos;
        s->x_off[i] = (size_t)i * (p.n_src_pos + 1);
        s->xk_off[i] = (size_t)i * (p.n_src_pos + 8) * hd;
    }
    // ref: angle = float32(position) * inv_freq in float32, then cos/sin.
    for (size_t pos = 0; pos < p.max_pos; pos++)
        for (size_t i = 0; i < half; i++) {
            float a = (float)pos * m->inv_freq[i];
            s->cos_t[pos * half + i] = cosf(a);
            s->sin_t[pos * half + i] = sinf(a);
        }
    *out = s;
    return SL_OK;
}

s2t_limits s2t_state_limits(const s2t_state *s) { return s->lim; }
const s2t_model *s2t_state_model(const s2t_state *s) { return s->m; }

// ---------------------------------------------------- rotary, attention, FF ---

// Interleaved rotary on one head vector at position pos.
static void rotate(float *x, size_t half, const float *cs, const float *sn)
{
    for (size_t i = 0; i < half; i++) {
        float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * cs[i] - b * sn[i];
        x[2 * i + 1] = b * cs[i] + a * sn[i];
    }
}

// out[M, dh] (ldo) = softmax(Q[M, dh] (ldq) . K * scale) . V[N, dh] (ldv), K already
// transposed [dh, N] (ldk) as the decoder's self cache keeps it; query row r sees keys
// 0 .. causal + r. Only s2t_dec_forced (many new positions at once) uses it: a checking
// path, not a row of a dataset, so OpenBLAS may do its products.
static void attend_cached(const float *Q, size_t ldq, size_t M, const float *K, size_t ldk,
                          const float *V, size_t ldv, size_t N, size_t dh, float scale,
                          size_t causal, float *out, size_t ldo, float *score)
{
    ops_matmul(OPS_N, OPS_N, M, N, dh, scale, Q, ldq, K, ldk, 0.0f, score, N);
    kern_softmax_rows_masked(score, M, N, causal + 1, 1, N);
    ops_matmul(OPS_N, OPS_N, M, dh, N, 1.0f, score, N, V, ldv, 0.0f, out, ldo);
}

// y[n, N] = x[n, K] . W[N, K]^T (+ beta y). Every product of a row (encoder and decoder)
// is ops_matmul_rows: each element's bits depend only on its row and column, never on
// the batch, the thread count or the CPU (OpenBLAS's sgemm rounds differently with its
// thread count and kernel: on an AVX2 Zen, 2 threads changed score bits).
static void lin(const float *x, size_t n, size_t K, size_t ldx, const float *W, size_t N,
                float beta, float *y, size_t ldy)
{
    ops_matmul_rows(n, N, K, 1.0f, x, ldx, W, K, beta, y, ldy);
}

// GEGLU of rows [t * per, ...) (element-wise: the same bits however rows are split).
typedef struct geglu_job {
    float *f;
    size_t n, inner, per;
} geglu_job;

static void geglu_task(void *ctx, size_t t, int worker)
{
    (void)worker;
    const geglu_job *j = ctx;
    size_t r0 = t * j->per, n = j->n - r0 < j->per ? j->n - r0 : j->per;
    kern_geglu_rows(j->f + r0 * 2 * j->inner, n, j->inner);
}

static void geglu(float *f, size_t n, size_t inner)
{
    if (n == 0)
        return;
    size_t T = (size_t)par_threads(), per = (n + T - 1) / T;
    geglu_job j = {f, n, inner, per};
    par_run((n + per - 1) / per, geglu_task, &j);
}

// x[n, d] += FF(x): RMSNorm -> Linear(d, 2*inner) -> GEGLU -> Linear(inner, d).
static void feed_forward(const s2t_layer *L, size_t n, size_t d, size_t inner, float *x,
                         float *h, float *f)
{
    kern_rmsnorm_rows(x, n, d, L->ff_gamma, h);
    for (size_t r = 0; r < n; r++)
        memcpy(f + r * 2 * inner, L->b1, 2 * inner * sizeof(float));
    lin(h, n, d, d, L->w1, 2 * inner, 1.0f, f, 2 * inner);
    geglu(f, n, inner);
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < d; i++)
            x[r * d + i] += L->b2[i];
    lin(f, n, inner, 2 * inner, L->w2, d, 1.0f, x, d);
}

// ---------------------------------------------------------------- encoder ---

static void encode_one(s2t_state *s, const int32_t *ids, int n_ids, float *out)
{
    const s2t_model *m = s->m;
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, H = (size_t)c->heads, dh = (size_t)c->dim_head, hd = H * dh;
    size_t half = dh / 2, inner = (size_t)c->ff_inner;
    size_t n = (size_t)n_ids + (c->speech_eos >= 0 ? 1 : 0);
    float scale = 1.0f / sqrtf((float)dh);
    for (size_t t = 0; t < n; t++) {
        int id = t < (size_t)n_ids ? ids[t] : c->speech_eos;
        memcpy(s->ex + t * d, m->speech_emb + (size_t)id * d, d * sizeof(float));
    }
    // eqkv: q | k rows (n, 2 hd), then the values transposed, vt (hd, n): head h's
    // values are rows h dh .. of vt, so both attention products take rows of weights.
    size_t ld = 2 * hd;
    float *vt = s->eqkv + n * ld;
    for (int l = 0; l < c->source_depth; l++) {
        const s2t_layer *L = &m->enc[l];
        kern_rmsnorm_rows(s->ex, n, d, L->attn_gamma, s->eh);
        lin(s->eh, n, d, d, L->wq, hd, 0.0f, s->eqkv, ld);
        lin(s->eh, n, d, d, L->wkv, hd, 0.0f, s->eqkv + hd, ld);
        // vt[e, t] = Wv[e, :] . h[t, :]: the same fused chain as row t's value e
        ops_matmul_rows(hd, n, d, 1.0f, L->wkv + hd * d, d, s->eh, d, 0.0f, vt, n);
        for (size_t t = 0; t < n; t++)
            for (size_t h = 0; h < 2 * H; h++) // q heads then k heads
                rotate(s->eqkv + t * ld + h * dh, half, s->cos_t + t * half, s->sin_t + t * half);
        for (size_t h = 0; h < H; h++) {
            ops_matmul_rows(n, n, dh, scale, s->eqkv + h * dh, ld, s->eqkv + hd + h * dh, ld,
                            0.0f, s->score, n);
            kern_softmax_rows_masked(s->score, n, n, n, 0, n);
            ops_matmul_rows(n, dh, n, 1.0f, s->score, n, vt + h * dh * n, n, 0.0f,
                            s->eatt + h * dh, hd);
        }
        lin(s->eatt, n, hd, hd, L->wo, d, 1.0f, s->ex, d);
        feed_forward(L, n, d, inner, s->ex, s->eh, s->eff);
    }
    kern_rmsnorm_rows(s->ex, n, d, m->enc_final, out);
}

static int check_source(const s2t_state *s, int i, const int32_t *ids, int n_ids, sl_err *err)
{
    const s2t_config *c = &s->m->c;
    if (n_ids < 0 || n_ids > s->lim.max_src_len)
        return sl_fail(err, SL_EINVAL, "s2t: source %d has %d ids (state holds up to %d)", i,
                       n_ids, s->lim.max_src_len);
    if (n_ids == 0 && c->speech_eos < 0)
        return sl_fail(err, SL_EINVAL, "s2t: source %d is empty", i);
    for (int t = 0; t < n_ids; t++)
        if (ids[t] < 0 || ids[t] >= c->n_semantic)
            return sl_fail(err, SL_EINVAL, "s2t: source %d: id %d at position %d is outside "
                           "[0, %d)", i, (int)ids[t], t, c->n_semantic);
    return SL_OK;
}

// Encodes one (checked) source into slot i: encoder output and, once per source,
// the cross-attention keys/values of every decoder layer.
static void encode_into(s2t_state *s, int i, const int32_t *ids, int n_ids)
{
    const s2t_model *m = s->m;
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, hd = (size_t)c->heads * (size_t)c->dim_head;
    int n = n_ids + (c->speech_eos >= 0 ? 1 : 0);
    s->src_pos[i] = n;
    float *eo = s->enc_out + s->enc_off[i] * d;
    encode_one(s, ids, n_ids, eo);
    // Row 0 of the cross K/V is the learned null key/value, rows 1..n the projected
    // encoder output.
    int f16 = s->lim.cross_kv == S2T_KV_F16;
    float *wide = s->score + s->score_cap; // (the encoder's attention is done)
    for (int l = 0; l < c->target_depth; l++) {
        const s2t_layer *L = &m->dec[l];
        size_t nk = (size_t)n + 1, dh = (size_t)c->dim_head, nt = (nk + 7) / 8;
        size_t ko = s->xk_off[i], vo = s->x_off[i] * hd; // the slot's first key / value
        float *k = s->eqkv; // (n, hd) scratch, then tiled per head
        lin(eo, (size_t)n, d, d, L->x_wkv, hd, 0.0f, k, hd);
        for (size_t h = 0; h < (size_t)c->heads; h++) {
            // S2T_KV_F16: each head built in floats in the widening scratch, then narrowed
            float *kt = f16 ? wide : s->x_k[l] + ko + h * nt * dh * 8;
            for (size_t t = 0; t < nt; t++)
                for (size_t e = 0; e < dh; e++)
                    for (size_t j = 0; j < 8; j++) {
                        size_t key = t * 8 + j; // key 0 is the null key
                        kt[(t * dh + e) * 8 + j] = key == 0   ? L->null_kv[h * dh + e]
                                                   : key < nk ? k[(key - 1) * hd + h * dh + e]
                                                              : 0.0f;
                    }
            if (f16)
                half_narrow(kt, s->h_k[l] + ko + h * nt * dh * 8, nt * 8 * dh);
        }
        // Values head by head: head h's nk rows of dh are contiguous, so a step reads
        // each head's values as one stream (the bits do not depend on the layout).
        float *v = s->eqkv;
        lin(eo, (size_t)n, d, d, L->x_wkv + hd * d, hd, 0.0f, v, hd);
        for (size_t h = 0; h < (size_t)c->heads; h++) {
            float *vh = f16 ? wide : s->x_v[l] + vo + h * nk * dh;
            memcpy(vh, L->null_kv + hd + h * dh, dh * sizeof(float));
            for (size_t key = 1; key < nk; key++)
                memcpy(vh + key * dh, v + (key - 1) * hd + h * dh, dh * sizeof(float));
            if (f16)
                half_narrow(vh, s->h_v[l] + vo + h * nk * dh, nk * dh);
        }
    }
}

int s2t_encode(s2t_state *s, const int32_t *const *src, const int *src_len, int n_src,
               sl_err *err)
{
    if (n_src < 1 || n_src > s->lim.max_batch)
        return sl_fail(err, SL_EINVAL, "s2t: %d sources (state holds 1..%d)", n_src,
                       s->lim.max_batch);
    for (int i = 0; i < n_src; i++) {
        int rc = check_source(s, i, src[i], src_len[i], err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < s->lim.max_batch; i++)
        s->src_pos[i] = 0;
    for (int i = 0; i < n_src; i++)
        encode_into(s, i, src[i], src_len[i]);
    s->n_rows = 0;
    return SL_OK;
}

int s2t_encode_slot(s2t_state *s, int slot, const int32_t *src, int src_len, sl_err *err)
{
    if (slot < 0 || slot >= s->lim.max_batch)
        return sl_fail(err, SL_EINVAL, "s2t: slot %d (state holds 0..%d)", slot,
                       s->lim.max_batch - 1);
    int rc = check_source(s, 0, src, src_len, err); // messages as s2t_encode of it alone
    if (rc)
        return rc;
    encode_into(s, slot, src, src_len);
    return SL_OK;
}

void s2t_release_slot(s2t_state *s, int slot)
{
    if (slot >= 0 && slot < s->lim.max_batch)
        s->src_pos[slot] = 0;
}

const float *s2t_encoder_output(const s2t_state *s, int i, int *n_pos)
{
    if (i < 0 || i >= s->lim.max_batch || s->src_pos[i] == 0)
        return NULL;
    if (n_pos)
        *n_pos = s->src_pos[i];
    return s->enc_out + s->enc_off[i] * (size_t)s->m->c.dim;
}

// ---------------------------------------------------------------- decoder ---

static int check_rows(const s2t_state *s, int n_rows, const int *row_src, sl_err *err)
{
    if (n_rows < 1 || n_rows > s->rows_cap)
        return sl_fail(err, SL_EINVAL, "s2t: %d decoder rows (state holds 1..%d)", n_rows,
                       s->rows_cap);
    for (int r = 0; r < n_rows; r++) {
        if (row_src[r] < 0 || row_src[r] >= s->lim.max_batch || s->src_pos[row_src[r]] == 0)
            return sl_fail(err, SL_EINVAL, "s2t: row %d decodes slot %d, which holds no source",
                           r, row_src[r]);
        if (r && row_src[r] < row_src[r - 1])
            return sl_fail(err, SL_EINVAL, "s2t: rows of one source must be contiguous "
                           "(row_src not sorted at row %d)", r);
    }
    return SL_OK;
}

int s2t_dec_begin(s2t_state *s, int n_rows, const int *row_src, sl_err *err)
{
    int rc = check_rows(s, n_rows, row_src, err);
    if (rc)
        return rc;
    memcpy(s->row_src, row_src, (size_t)n_rows * sizeof(int));
    memset(s->row_len, 0, (size_t)n_rows * sizeof(int));
    s->n_rows = n_rows;
    return SL_OK;
}

int s2t_dec_length(const s2t_state *s) { return s->n_rows > 0 ? s->row_len[0] : 0; }

int s2t_dec_row_length(const s2t_state *s, int r)
{
    return r >= 0 && r < s->n_rows ? s->row_len[r] : -1;
}

// Step attention (n_new == 1) as tasks for par_run: the self-attention of row r,
// kv group g (task r * G + g) and the cross-attention of row group q, head h (task
// q * H + h). Each output element is computed by one task, by the code that computes
// it single-threaded: the bits do not depend on the thread count.
typedef struct step_job {
    s2t_state *s;
    int l;
    float scale;
} step_job;

static void self_task(void *ctx, size_t t, int worker)
{
    const step_job *j = ctx;
    s2t_state *s = j->s;
    const s2t_config *c = &s->m->c;
    size_t H = (size_t)c->heads, dh = (size_t)c->dim_head, hd = H * dh, G = (size_t)c->kv_heads;
    size_t kvd = G * dh, P = (size_t)s->cache_pos, r = t / G, g = t % G;
    const float *K = s->kc[j->l] + r * kvd * P, *V = s->vc[j->l] + r * P * kvd;
    // ref: einops repeat 'b h ... -> b (g h) ...': query head i uses kv head i % kv_heads,
    // so the heads of kv head g sit kvd apart in the q row and go through one call.
    kern_step_attend(s->dq + r * hd + g * dh, kvd, H / G, K + g * dh * P, 8, P, V + g * dh, kvd,
                     (size_t)s->row_len[r] + 1, dh, j->scale, s->datt + r * hd + g * dh, kvd,
                     s->wscore[worker]);
}

// One head's cross-attention for M query rows of slot src, layer l (kern_step_attend;
// score: the step scratch). S2T_KV_F16: the keys, then the values, are widened exactly a
// range of S2T_KV_CHUNK keys at a time into wide (S2T_KV_CHUNK * dim_head floats, stays in
// L1) and go through kern_step_scores / kern_step_values, which give kern_step_attend's
// bits over the widened values whatever CPU path widened them.
static void cross_attend(const s2t_state *s, size_t l, int src, size_t h, const float *q,
                         size_t ldq, size_t M, float scale, float *out, size_t ldo, float *score,
                         float *wide)
{
    const s2t_config *c = &s->m->c;
    size_t dh = (size_t)c->dim_head, hd = (size_t)c->heads * dh;
    size_t nkx = (size_t)s->src_pos[src] + 1, nt = (nkx + 7) / 8;
    size_t ko = s->xk_off[src] + h * nt * dh * 8, vo = s->x_off[src] * hd + h * nkx * dh;
    if (s->lim.cross_kv == S2T_KV_F32) {
        kern_step_attend(q, ldq, M, s->x_k[l] + ko, dh * 8, 8, s->x_v[l] + vo, dh, nkx, dh, scale,
                         out, ldo, score);
        return;
    }
    size_t lds = nt * 8;
    for (size_t j0 = 0; j0 < nkx; j0 += S2T_KV_CHUNK) {
        size_t n = nkx - j0 < S2T_KV_CHUNK ? nkx - j0 : S2T_KV_CHUNK;
        half_widen(s->h_k[l] + ko + j0 * dh, wide, (n + 7) / 8 * 8 * dh); // whole tiles
        kern_step_scores(q, ldq, M, wide, dh * 8, 8, n, dh, scale, score + j0, lds);
    }
    kern_softmax_rows_masked(score, M, lds, nkx, 0, nkx);
    for (size_t j0 = 0; j0 < nkx; j0 += S2T_KV_CHUNK) {
        size_t n = nkx - j0 < S2T_KV_CHUNK ? nkx - j0 : S2T_KV_CHUNK;
        half_widen(s->h_v[l] + vo + j0 * dh, wide, n * dh);
        kern_step_values(score + j0, lds, M, wide, dh, n, dh, out, ldo, j0 > 0);
    }
}

static void cross_task(void *ctx, size_t t, int worker)
{
    const step_job *j = ctx;
    s2t_state *s = j->s;
    const s2t_config *c = &s->m->c;
    size_t H = (size_t)c->heads, dh = (size_t)c->dim_head, hd = H * dh, q = t / H, h = t % H;
    size_t r0 = s->grp[q], r1 = s->grp[q + 1];
    cross_attend(s, j->l, s->row_src[r0], h, s->dq + r0 * hd + h * dh, hd, r1 - r0, j->scale,
                 s->datt + r0 * hd + h * dh, hd, s->wscore[worker],
                 s->wscore[worker] + s->step_cap);
}

// Runs the tasks on par_threads() workers if each has its scratch (allocated here on
// first use), else on this thread alone.
static void run_step(s2t_state *s, size_t n_tasks, par_fn fn, step_job *j)
{
    int T = par_threads();
    if (T > s->n_wscore) {
        float **w = realloc(s->wscore, (size_t)T * sizeof *w);
        if (w) {
            s->wscore = w;
            if (s->n_wscore == 0)
                w[s->n_wscore++] = s->score;
            while (s->n_wscore < T &&
                   (w[s->n_wscore] = malloc((s->step_cap + s->wide_cap) * sizeof(float))))
                s->n_wscore++;
        }
    }
    if (T <= s->n_wscore) {
        par_run(n_tasks, fn, j);
        return;
    }
    for (size_t t = 0; t < n_tasks; t++) // out of memory for scratch: serial, same bits
        fn(j, t, 0);
}

// The cross-attention row groups: runs of rows of one source (the rows share one pass
// over its keys and values), at most max_beam rows each (the scratch's bound).
static size_t make_groups(s2t_state *s, size_t n_rows)
{
    size_t n = 0, cap = (size_t)s->lim.max_beam;
    for (size_t r = 0; r < n_rows; r++)
        if (r == 0 || s->row_src[r] != s->row_src[r - 1] || r - s->grp[n - 1] == cap)
            s->grp[n++] = r;
    s->grp[n] = n_rows;
    return n;
}

// Runs n_rows x n_new positions (row-major in s->dx) through the decoder,
// with s->row_len[r] positions already cached in row r; leaves the final-normed
// states in s->dh and the logits in s->logits.
static void dec_forward(s2t_state *s, size_t n_rows, size_t n_new)
{
    const s2t_model *m = s->m;
    const s2t_config *c = &m->c;
    size_t d = (size_t)c->dim, H = (size_t)c->heads, dh = (size_t)c->dim_head, hd = H * dh;
    size_t G = (size_t)c->kv_heads, kvd = G * dh, half = dh / 2, inner = (size_t)c->ff_inner;
    size_t P = (size_t)s->cache_pos, N = n_rows * n_new;
    float scale = 1.0f / sqrtf((float)dh);
    size_t n_grp = make_groups(s, n_rows);
    for (int l = 0; l < c->target_depth; l++) {
        const s2t_layer *L = &m->dec[l];
        step_job job = {s, l, scale};
        // causal self-attention, GQA, rotary, KV cache
        kern_rmsnorm_rows(s->dx, N, d, L->attn_gamma, s->dh);
        lin(s->dh, N, d, d, L->wq, hd, 0.0f, s->dq, hd);
        lin(s->dh, N, d, d, L->wkv, 2 * kvd, 0.0f, s->dkv, 2 * kvd);
        for (size_t r = 0; r < n_rows; r++)
            for (size_t j = 0; j < n_new; j++) {
                size_t pos = (size_t)s->row_len[r] + j, i = r * n_new + j;
                const float *cs = s->cos_t + pos * half, *sn = s->sin_t + pos * half;
                for (size_t h = 0; h < H; h++)
                    rotate(s->dq + i * hd + h * dh, half, cs, sn);
                float *k = s->dkv + i * 2 * kvd, *v = k + kvd;
                for (size_t g = 0; g < G; g++)
                    rotate(k + g * dh, half, cs, sn);
                float *kt = s->kc[l] + r * kvd * P + pos;
                for (size_t e = 0; e < kvd; e++)
                    kt[e * P] = k[e];
                memcpy(s->vc[l] + (r * P + pos) * kvd, v, kvd * sizeof(float));
            }
        if (n_new == 1) {
            run_step(s, n_rows * G, self_task, &job);
        } else {
            for (size_t r = 0; r < n_rows; r++) {
                const float *K = s->kc[l] + r * kvd * P, *V = s->vc[l] + r * P * kvd;
                size_t L0 = (size_t)s->row_len[r], nk = L0 + n_new; // keys after this call
                for (size_t h = 0; h < H; h++) {
                    size_t g = h % G;
                    attend_cached(s->dq + r * n_new * hd + h * dh, hd, n_new, K + g * dh * P, P,
                                  V + g * dh, kvd, nk, dh, scale, L0,
                                  s->datt + r * n_new * hd + h * dh, hd, s->score);
                }
            }
        }
        lin(s->datt, N, hd, hd, L->wo, d, 1.0f, s->dx, d);
        // cross-attention: the rows of one source share its K/V in one pass
        kern_rmsnorm_rows(s->dx, N, d, L->x_gamma, s->dh);
        lin(s->dh, N, d, d, L->x_wq, hd, 0.0f, s->dq, hd);
        if (n_new == 1) {
            run_step(s, n_grp * H, cross_task, &job);
        } else {
            for (size_t r = 0; r < n_rows; r++) {
                for (size_t h = 0; h < H; h++)
                    cross_attend(s, l, s->row_src[r], h, s->dq + r * n_new * hd + h * dh, hd,
                                 n_new, scale, s->datt + r * n_new * hd + h * dh, hd, s->score,
                                 s->score + s->score_cap);
            }
        }
        lin(s->datt, N, hd, hd, L->x_wo, d, 1.0f, s->dx, d);
        feed_forward(L, N, d, inner, s->dx, s->dh, s->dff);
    }
    kern_rmsnorm_rows(s->dx, N, d, m->dec_final, s->dh);
    lin(s->dh, N, d, d, m->text_emb, (size_t)c->n_text_vocab, 0.0f, s->logits,
        (size_t)c->n_text_vocab);
    for (size_t r = 0; r < n_rows; r++)
        s->row_len[r] += (int)n_new;
}

const float *s2t_dec_step(s2t_state *s, const int32_t *tokens, sl_err *err)
{
    const s2t_model *m = s->m;
    size_t d = (size_t)m->c.dim;
    if (s->n_rows < 1) {
        sl_fail(err, SL_EINVAL, "s2t: decoder step before s2t_dec_begin");
        return NULL;
    }
    for (int r = 0; r < s->n_rows; r++) {
        if (s->row_len[r] + 1 > s->cache_pos) {
            sl_fail(err, SL_EINVAL, "s2t: row %d: decoder position %d past the state's max_len "
                    "%d", r, s->row_len[r], s->lim.max_len);
            return NULL;
        }
        const float *e = m->start_text;
        if (s->row_len[r] > 0) {
            int t = tokens[r];
            if (t < 0 || t >= m->c.n_text_vocab) {
                sl_fail(err, SL_EINVAL, "s2t: row %d: text id %d outside [0, %d)", r, t,
                        m->c.n_text_vocab);
                return NULL;
            }
            e = m->text_emb + (size_t)t * d;
        }
        memcpy(s->dx + (size_t)r * d, e, d * sizeof(float));
    }
    dec_forward(s, (size_t)s->n_rows, 1);
    return s->logits;
}

int s2t_dec_reorder(s2t_state *s, int n_rows, const int *parent, const int *row_src, sl_err *err)
{
    int rc = check_rows(s, n_rows, row_src, err);
    if (rc)
        return rc;
    int identity = n_rows <= s->n_rows;
    for (int r = 0; r < n_rows; r++) {
        if (parent[r] < -1 || parent[r] >= s->n_rows)
            return sl_fail(err, SL_EINVAL, "s2t: reorder: row %d continues row %d of %d", r,
                           parent[r], s->n_rows);
        identity &= parent[r] == r;
    }
    const s2t_config *c = &s->m->c;
    size_t P = (size_t)s->cache_pos, kvd = (size_t)c->kv_heads * (size_t)c->dim_head;
    if (!identity) {
        for (int r = 0; r < n_rows; r++)
            s->row_len2[r] = parent[r] < 0 ? 0 : s->row_len[parent[r]];
        for (int l = 0; l < c->target_depth; l++) {
            for (int r = 0; r < n_rows; r++) {
                size_t L = (size_t)s->row_len2[r];
                if (L == 0) // a new row (parent -1) or a parent at position 0: nothing cached
                    continue;
                const float *src = s->kc[l] + (size_t)parent[r] * P * kvd;
                float *dst = s->kc2[l] + (size_t)r * P * kvd;
                for (size_t e = 0; e < kvd; e++) // the first L columns of each key row
                    memcpy(dst + e * P, src + e * P, L * sizeof(float));
                memcpy(s->vc2[l] + (size_t)r * P * kvd, s->vc[l] + (size_t)parent[r] * P * kvd,
                       L * kvd * sizeof(float));
            }
            float *t = s->kc[l];
            s->kc[l] = s->kc2[l];
            s->kc2[l] = t;
            t = s->vc[l];
            s->vc[l] = s->vc2[l];
            s->vc2[l] = t;
        }
        int *t = s->row_len;
        s->row_len = s->row_len2;
        s->row_len2 = t;
    }
    memcpy(s->row_src, row_src, (size_t)n_rows * sizeof(int));
    s->n_rows = n_rows;
    return SL_OK;
}

int s2t_dec_forced(s2t_state *s, int i, const int32_t *target, int n, float *out, sl_err *err)
{
    const s2t_model *m = s->m;
    size_t d = (size_t)m->c.dim, V = (size_t)m->c.n_text_vocab;
    if (i < 0 || i >= s->lim.max_batch || s->src_pos[i] == 0)
        return sl_fail(err, SL_EINVAL, "s2t: forced decode of slot %d, which holds no source", i);
    if (n < 0 || n + 1 > s->cache_pos)
        return sl_fail(err, SL_EINVAL, "s2t: forced decode of %d tokens (state holds %d)", n,
                       s->lim.max_len);
    memcpy(s->dx, m->start_text, d * sizeof(float));
    for (int t = 0; t < n; t++) {
        if (target[t] < 0 || (size_t)target[t] >= V)
            return sl_fail(err, SL_EINVAL, "s2t: target id %d outside [0, %zu)", (int)target[t], V);
        memcpy(s->dx + (size_t)(t + 1) * d, m->text_emb + (size_t)target[t] * d,
               d * sizeof(float));
    }
    s->row_src[0] = i;
    s->row_len[0] = 0;
    s->n_rows = 1;
    dec_forward(s, 1, (size_t)n + 1);
    memcpy(out, s->logits, (size_t)(n + 1) * V * sizeof(float));
    s->n_rows = 0; // the cache now holds a forced sequence: s2t_dec_begin before stepping
    return SL_OK;
}
