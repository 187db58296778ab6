// pipeline/beam.c — greedy, sampling and batched beam search over the s2t
// decoder. All live hypotheses of all sources advance through the decoder as
// one matrix per step (s2t_dec_step); selection reorders the KV cache by
// parent index (s2t_dec_reorder); finished sources leave the matrix and new
// ones join it (parent -1: a row at position 0). See beam.h.
//
// The pool: beam_pool_add encodes a source into a free slot (s2t_encode_slot)
// and inserts its start row among the pending rows (sorted by slot, so a
// source's rows stay contiguous); beam_pool_step applies the pending reorder,
// runs one decoder step and calls, per source, the method's step function
// (step_greedy, step_sample, step_seed, step_default) with that source's own
// step count; it writes the source's next hypotheses or emits its result.
// beam_decode is the pool filled once and stepped until empty.
#include "pipeline/beam.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/kernels.h"

typedef struct cand {
    float score; // parent score + log-prob
    float lp;    // log-prob of the token
    int tok;
    int parent;  // decoder row
} cand;

struct beam_state {
    s2t_state *s;
    s2t_limits lim;
    int V, T;            // text classes; tokens per hypothesis (max_len)
    int32_t *tok, *tok2; // (rows_cap, T) hypothesis tokens, double-buffered
    float *sc, *sc2;     // (rows_cap) score (sum of log-probs)
    float *st, *st2;     // (rows_cap) score up to and including the first EOS
    int *eos, *eos2;     // (rows_cap) index of the first EOS or -1
    int *parent, *row_src, *new_src; // (rows_cap)
    int32_t *last;       // (rows_cap) last token of each row (decoder input)
    float *lp;           // (V) log-probs of one row
    cand *cands;         // (max_beam * 2 * max_beam)
    cand *topk;          // (2 * max_beam) or (V) for sampling
    int *max_len;        // (max_batch) per-source max length
    uint64_t *rng;       // (max_batch)
    int32_t *out;        // (max_batch, T) result ids
    int32_t *fin_tok;    // (max_batch, T) best finished hypothesis (default beam mode)
    int *fin_n;          // (max_batch) its length, 0 = none
    float *fin_norm, *fin_sum; // (max_batch)
    // the pool
    beam_params p;       // of the last beam_pool_begin
    int begun;
    int n_rows;          // pending rows (in tok, sc, ...; parent indexes the decoder's rows)
    int pending;         // the decoder's rows must be reordered to the pending ones
    int *slot_state;     // (max_batch) SLOT_FREE, SLOT_LIVE, SLOT_DONE
    int *slot_step;      // (max_batch) tokens each hypothesis of the slot holds
    beam_result *slot_res; // (max_batch)
    int *done_q, n_done; // (max_batch) finished slots in finishing order
    int n_live;
    uint64_t n_steps, n_step_rows;
};

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_DONE = 2 };

beam_params beam_default_params(void)
{
    beam_params p;
    memset(&p, 0, sizeof p);
    p.method = BEAM_SEARCH;
    p.beam = 4;
    p.mode = BEAM_MODE_DEFAULT;
    p.temperature = 1.0f;
    return p;
}

const char *beam_mode_name(beam_mode m) { return m == BEAM_MODE_SEED ? "seed" : "default"; }

void beam_state_free(beam_state *b)
{
    if (!b)
        return;
    s2t_state_free(b->s);
    free(b->tok);
    free(b->tok2);
    free(b->sc);
    free(b->sc2);
    free(b->st);
    free(b->st2);
    free(b->eos);
    free(b->eos2);
    free(b->parent);
    free(b->row_src);
    free(b->new_src);
    free(b->last);
    free(b->lp);
    free(b->cands);
    free(b->topk);
    free(b->max_len);
    free(b->rng);
    free(b->out);
    free(b->fin_tok);
    free(b->fin_n);
    free(b->fin_norm);
    free(b->fin_sum);
    free(b->slot_state);
    free(b->slot_step);
    free(b->slot_res);
    free(b->done_q);
    free(b);
}

int beam_state_new(beam_state **out, const s2t_model *m, s2t_limits lim, sl_err *err)
{
    *out = NULL;
    if (lim.max_beam > BEAM_MAX_WIDTH)
        return sl_fail(err, SL_EINVAL, "beam: max_beam %d exceeds %d", lim.max_beam,
                       BEAM_MAX_WIDTH);
    beam_state *b = calloc(1, sizeof *b);
    if (!b)
        return sl_fail(err, SL_ENOMEM, "beam: out of memory");
    int rc = s2t_state_new(&b->s, m, lim, err);
    if (rc) {
        free(b);
        return rc;
    }
    b->lim = lim;
    b->V = s2t_model_config(m)->n_text_vocab;
    b->T = lim.max_len;
    size_t R = (size_t)lim.max_batch * (size_t)lim.max_beam, T = (size_t)b->T;
    size_t B = (size_t)lim.max_batch, K = 2 * (size_t)lim.max_beam;
    size_t topk = K > (size_t)b->V ? K : (size_t)b->V;
    b->tok = malloc(R * T * sizeof(int32_t));
    b->tok2 = malloc(R * T * sizeof(int32_t));
    b->sc = malloc(R * sizeof(float));
    b->sc2 = malloc(R * sizeof(float));
    b->st = malloc(R * sizeof(float));
    b->st2 = malloc(R * sizeof(float));
    b->eos = malloc(R * sizeof(int));
    b->eos2 = malloc(R * sizeof(int));
    b->parent = malloc(R * sizeof(int));
    b->row_src = malloc(R * sizeof(int));
    b->new_src = malloc(R * sizeof(int));
    b->last = malloc(R * sizeof(int32_t));
    b->lp = malloc((size_t)b->V * sizeof(float));
    b->cands = malloc((size_t)lim.max_beam * K * sizeof(cand));
    b->topk = malloc(topk * sizeof(cand));
    b->max_len = malloc(B * sizeof(int));
    b->rng = malloc(B * sizeof(uint64_t));
    b->out = malloc(B * T * sizeof(int32_t));
    b->fin_tok = malloc(B * T * sizeof(int32_t));
    b->fin_n = malloc(B * sizeof(int));
    b->fin_norm = malloc(B * sizeof(float));
    b->fin_sum = malloc(B * sizeof(float));
    b->slot_state = calloc(B, sizeof(int));
    b->slot_step = calloc(B, sizeof(int));
    b->slot_res = calloc(B, sizeof(beam_result));
    b->done_q = calloc(B, sizeof(int));
    if (!b->slot_state || !b->slot_step || !b->slot_res || !b->done_q ||
        !b->tok || !b->tok2 || !b->sc || !b->sc2 || !b->st || !b->st2 || !b->eos || !b->eos2 ||
        !b->parent || !b->row_src || !b->new_src || !b->last || !b->lp || !b->cands || !b->topk ||
        !b->max_len || !b->rng || !b->out || !b->fin_tok || !b->fin_n || !b->fin_norm ||
        !b->fin_sum) {
        beam_state_free(b);
        return sl_fail(err, SL_ENOMEM, "beam: out of memory");
    }
    *out = b;
    return SL_OK;
}

s2t_state *beam_state_s2t(beam_state *b) { return b->s; }

// a ranks before b: higher score, then lower token id, then lower parent.
static int before(const cand *a, const cand *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    if (a->tok != b->tok)
        return a->tok < b->tok;
    return a->parent < b->parent;
}

// The k best tokens of lp (ties: lower id) into top[0..), sorted; returns how many.
static int top_tokens(const float *lp, int V, int k, int parent, float base, cand *top)
{
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (lp[i] == -INFINITY)
            continue;
        cand c = {base + lp[i], lp[i], i, parent};
        if (n == k && !(lp[i] > top[n - 1].lp))
            continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && lp[i] > top[j - 1].lp) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = c;
    }
    return n;
}

static void sort_cands(cand *c, int n)
{
    for (int i = 1; i < n; i++) {
        cand x = c[i];
        int j = i;
        while (j > 0 && before(&x, &c[j - 1])) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Top-k / temperature sampling from one logits row (EOS suppressed if asked).
// Uses b->lp and b->topk as scratch.
static int sample_token(beam_state *b, const float *logits, int suppress, int top_k, float temp,
                        uint64_t *rng)
{
    int V = b->V, k = top_k > 0 && top_k < V ? top_k : V;
    float *scaled = b->lp;
    for (int i = 0; i < V; i++)
        scaled[i] = i == suppress ? -INFINITY : logits[i] / temp;
    int n = top_tokens(scaled, V, k, 0, 0.0f, b->topk);
    double sum = 0.0, mx = (double)b->topk[0].lp;
    for (int i = 0; i < n; i++)
        sum += exp((double)b->topk[i].lp - mx);
    double u = (double)(splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
    for (int i = 0; i < n; i++) {
        u -= exp((double)b->topk[i].lp - mx);
        if (u < 0.0)
            return b->topk[i].tok;
    }
    return b->topk[n - 1].tok;
}

// What every per-source step function reads: the step's logits and the call's
// parameters. Decoder row r's logits are logits[r * V .. (r + 1) * V).
typedef struct step_ctx {
    const beam_params *p;
    const float *logits; // (n_rows, V) of this step
    int step;            // tokens each hypothesis of the source holds before this step
    int suppress;        // EOS while step < min_len, else -1: never chosen
    int eos_id;
    beam_result *res;    // per slot
} step_ctx;

// Source s's result: toks[0..n) cut after the first EOS (kept with keep_eos).
static void emit(beam_state *b, const step_ctx *x, int s, const int32_t *toks, int n, float score,
                 float score_text, unsigned flags)
{
    int32_t *o = b->out + (size_t)s * (size_t)b->T;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (toks[i] == x->eos_id) {
            if (x->p->keep_eos)
                o[k++] = toks[i];
            break;
        }
        o[k++] = toks[i];
    }
    x->res[s].ids = o;
    x->res[s].n_ids = k;
    x->res[s].score = score;
    x->res[s].score_text = score_text;
    x->res[s].flags = flags;
}

static void swap_buffers(beam_state *b)
{
    int32_t *t = b->tok;
    b->tok = b->tok2;
    b->tok2 = t;
    float *f = b->sc;
    b->sc = b->sc2;
    b->sc2 = f;
    f = b->st;
    b->st = b->st2;
    b->st2 = f;
    int *e = b->eos;
    b->eos = b->eos2;
    b->eos2 = e;
}

// Appends child row n (parent row p, token tok with log-prob lp) to the *2 buffers.
static void add_child(beam_state *b, int n, int p, int tok, float lp, int step, int eos_id,
                      int src)
{
    size_t T = (size_t)b->T;
    memcpy(b->tok2 + (size_t)n * T, b->tok + (size_t)p * T, (size_t)step * sizeof(int32_t));
    b->tok2[(size_t)n * T + (size_t)step] = tok;
    b->sc2[n] = b->sc[p] + lp;
    if (b->eos[p] >= 0) {
        b->eos2[n] = b->eos[p];
        b->st2[n] = b->st[p];
    } else {
        b->eos2[n] = tok == eos_id ? step : -1;
        b->st2[n] = b->sc2[n];
    }
    b->parent[n] = p;
    b->new_src[n] = src;
    b->last[n] = tok;
}

// A source's random stream: FNV-1a of (seed, its ids), one splitmix64 step.
static uint64_t source_seed(uint64_t seed, const int32_t *ids, int n)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (int i = 0; i < n; i++) {
        h ^= (uint32_t)ids[i];
        h *= 1099511628211ull;
    }
    uint64_t s = h;
    splitmix64(&s);
    return s;
}

// ---- parameters and set-up ----------------------------------------------------------

static int check_params(const beam_state *b, const beam_params *p, sl_err *err)
{
    int W = p->method == BEAM_SEARCH ? p->beam : 1;
    if (p->method != BEAM_GREEDY && p->method != BEAM_SAMPLE && p->method != BEAM_SEARCH)
        return sl_fail(err, SL_EINVAL, "beam: unknown method %d", (int)p->method);
    if (W < 1 || W > b->lim.max_beam)
        return sl_fail(err, SL_EINVAL, "beam: beam width %d (state holds 1..%d)", W,
                       b->lim.max_beam);
    if (p->method == BEAM_SEARCH && p->mode != BEAM_MODE_SEED && p->mode != BEAM_MODE_DEFAULT)
        return sl_fail(err, SL_EINVAL, "beam: unknown beam mode %d", (int)p->mode);
    if (!(p->lenpen >= 0.0f))
        return sl_fail(err, SL_EINVAL, "beam: length penalty %g must be >= 0", (double)p->lenpen);
    if (p->method == BEAM_SAMPLE && !(p->temperature > 0.0f))
        return sl_fail(err, SL_EINVAL, "beam: temperature %g must be > 0",
                       (double)p->temperature);
    if (p->max_len < 0 || p->max_len > b->lim.max_len || p->min_len < 0)
        return sl_fail(err, SL_EINVAL, "beam: max_len %d / min_len %d (state holds max_len up "
                       "to %d)", p->max_len, p->min_len, b->lim.max_len);
    if (!(p->len_a >= 0.0f))
        return sl_fail(err, SL_EINVAL, "beam: len_a %g must be >= 0", (double)p->len_a);
    return SL_OK;
}

// min(max_len, floor(len_a * n + len_b)) tokens for a source of n ids (beam.h), at least 1.
static int source_max_len(const beam_state *b, const beam_params *p, int n)
{
    int ml = p->max_len ? p->max_len : b->lim.max_len;
    if (p->len_a > 0.0f) {
        double prop = floor((double)p->len_a * n + (double)p->len_b);
        if (prop < ml)
            ml = prop < 1.0 ? 1 : (int)prop;
    }
    return ml;
}

// ---- one step of one source, per method ------------------------------------------------
//
// Source s holds decoder rows r0 .. r1 this step. A step function writes the
// source's hypotheses for the next step to the *2 buffers from row n_new on and
// returns how many it wrote; 0 means the source is done and its result emitted.

// Greedy and sampling (one row per source): row r0 continues with tok.
static int extend_one(beam_state *b, const step_ctx *x, int s, int r0, int tok, int n_new)
{
    kern_log_softmax_row(x->logits + (size_t)r0 * (size_t)b->V, b->V, x->suppress, b->lp);
    add_child(b, n_new, r0, tok, b->lp[tok], x->step, x->eos_id, s);
    int len = x->step + 1;
    if (tok != x->eos_id && len < b->max_len[s])
        return 1;
    emit(b, x, s, b->tok2 + (size_t)n_new * (size_t)b->T, len, b->sc2[n_new], b->st2[n_new],
         tok == x->eos_id ? 0u : BEAM_FLAG_MAXLEN);
    return 0;
}

static int step_greedy(beam_state *b, const step_ctx *x, int s, int r0, int r1, int n_new)
{
    assert(r1 == r0 + 1);
    const float *lg = x->logits + (size_t)r0 * (size_t)b->V;
    int tok = -1;
    for (int i = 0; i < b->V; i++)
        if (i != x->suppress && (tok < 0 || lg[i] > lg[tok]))
            tok = i;
    return extend_one(b, x, s, r0, tok, n_new);
}

static int step_sample(beam_state *b, const step_ctx *x, int s, int r0, int r1, int n_new)
{
    assert(r1 == r0 + 1);
    int tok = sample_token(b, x->logits + (size_t)r0 * (size_t)b->V, x->suppress, x->p->top_k,
                           x->p->temperature, &b->rng[s]);
    return extend_one(b, x, s, r0, tok, n_new);
}

// Beam search: the `per` best tokens of every row r0 .. r1 into b->cands, scored
// parent sum + log-prob and sorted (before()); returns how many.
static int rank_candidates(beam_state *b, const step_ctx *x, int r0, int r1, int per)
{
    int V = b->V, nc = 0;
    for (int r = r0; r < r1; r++) {
        kern_log_softmax_row(x->logits + (size_t)r * (size_t)V, V, x->suppress, b->lp);
        nc += top_tokens(b->lp, V, per, r, b->sc[r], b->cands + nc);
    }
    for (int i = 0; i < nc; i++) // ref: candidate = parent score + log-prob (float32)
        b->cands[i].score = b->sc[b->cands[i].parent] + b->cands[i].lp;
    sort_cands(b->cands, nc);
    return nc;
}

// BEAM_MODE_SEED: every kept hypothesis, finished or not, offers its top `beam`
// tokens (ref); the best `beam` stay. Done when all of them hold an EOS.
static int step_seed(beam_state *b, const step_ctx *x, int s, int r0, int r1, int n_new)
{
    int W = x->p->beam, len = x->step + 1;
    int nc = rank_candidates(b, x, r0, r1, W);
    int keep = nc < W ? nc : W, all_eos = 1;
    for (int i = 0; i < keep; i++) {
        const cand *k = &b->cands[i];
        add_child(b, n_new + i, k->parent, k->tok, k->lp, x->step, x->eos_id, s);
        all_eos &= b->eos2[n_new + i] >= 0;
    }
    if (!all_eos && len < b->max_len[s])
        return keep;
    emit(b, x, s, b->tok2 + (size_t)n_new * (size_t)b->T, len, b->sc2[n_new], b->st2[n_new],
         b->eos2[n_new] >= 0 ? 0u : BEAM_FLAG_MAXLEN);
    return 0;
}

// Default mode: parent + EOS (candidate k) finished with normalised score norm;
// it becomes the source's best finished hypothesis when it beats that one.
static void offer_finished(beam_state *b, const step_ctx *x, int s, const cand *k, float norm)
{
    if (b->fin_n[s] && !(norm > b->fin_norm[s]))
        return;
    size_t T = (size_t)b->T;
    int32_t *ft = b->fin_tok + (size_t)s * T;
    memcpy(ft, b->tok + (size_t)k->parent * T, (size_t)x->step * sizeof(int32_t));
    ft[x->step] = k->tok;
    b->fin_n[s] = x->step + 1;
    b->fin_norm[s] = norm;
    b->fin_sum[s] = k->score;
}

// BEAM_MODE_DEFAULT: EOS candidates ranked within the beam leave it for the
// finished list; the best non-EOS candidates keep `beam` hypotheses live. Done at
// the max length, with nothing live, or when no live one can beat the best finished.
static int step_default(beam_state *b, const step_ctx *x, int s, int r0, int r1, int n_new)
{
    const beam_params *p = x->p;
    int W = p->beam, len = x->step + 1;
    int nc = rank_candidates(b, x, r0, r1, 2 * W < b->V ? 2 * W : b->V);
    // Normalise by n_tokens^lenpen (EOS counted) when lenpen > 0.
    float norm_len = p->lenpen > 0.0f ? powf((float)len, p->lenpen) : 1.0f;
    int live = 0;
    for (int i = 0; i < nc && live < W; i++) {
        const cand *k = &b->cands[i];
        if (k->tok != x->eos_id) {
            add_child(b, n_new + live, k->parent, k->tok, k->lp, x->step, x->eos_id, s);
            live++;
        } else if (i < W) { // only EOS candidates ranked within the beam finish
            offer_finished(b, x, s, k, k->score / norm_len);
        }
    }
    int done = len >= b->max_len[s] || live == 0;
    if (!done && b->fin_n[s]) {
        // Live sums only decrease; the best a live hypothesis can reach is its
        // sum divided by the largest length factor it can still get.
        float bound = b->sc2[n_new];
        if (p->lenpen > 0.0f)
            bound /= powf((float)b->max_len[s], p->lenpen);
        done = b->fin_norm[s] >= bound;
    }
    if (!done)
        return live;
    if (b->fin_n[s])
        emit(b, x, s, b->fin_tok + (size_t)s * (size_t)b->T, b->fin_n[s], b->fin_sum[s],
             b->fin_sum[s], 0u);
    else
        emit(b, x, s, b->tok2 + (size_t)n_new * (size_t)b->T, len, b->sc2[n_new], b->st2[n_new],
             BEAM_FLAG_MAXLEN);
    return 0;
}

typedef int (*step_fn)(beam_state *b, const step_ctx *x, int s, int r0, int r1, int n_new);

static step_fn method_step(const beam_params *p)
{
    if (p->method == BEAM_GREEDY)
        return step_greedy;
    if (p->method == BEAM_SAMPLE)
        return step_sample;
    return p->mode == BEAM_MODE_SEED ? step_seed : step_default;
}

// ---- the pool -----------------------------------------------------------------------

int beam_pool_begin(beam_state *b, const beam_params *p, sl_err *err)
{
    int rc = check_params(b, p, err);
    if (rc)
        return rc;
    b->p = *p;
    b->begun = 1;
    b->n_rows = 0;
    b->pending = 0;
    b->n_done = 0;
    b->n_live = 0;
    for (int i = 0; i < b->lim.max_batch; i++) {
        b->slot_state[i] = SLOT_FREE;
        s2t_release_slot(b->s, i);
    }
    return SL_OK;
}

int beam_pool_cap(const beam_state *b) { return b->lim.max_batch; }

int beam_pool_free(const beam_state *b)
{
    int n = 0;
    for (int i = 0; i < b->lim.max_batch; i++)
        n += b->slot_state[i] == SLOT_FREE;
    return n;
}

int beam_pool_live(const beam_state *b) { return b->n_live; }

int beam_pool_add(beam_state *b, const int32_t *src, int src_len, int *slot, sl_err *err)
{
    if (!b->begun)
        return sl_fail(err, SL_EINVAL, "beam: beam_pool_add before beam_pool_begin");
    int s = 0;
    while (s < b->lim.max_batch && b->slot_state[s] != SLOT_FREE)
        s++;
    if (s == b->lim.max_batch)
        return sl_fail(err, SL_EINVAL, "beam: the pool's %d slots are taken", b->lim.max_batch);
    int rc = s2t_encode_slot(b->s, s, src, src_len, err);
    if (rc)
        return rc;
    // Its start row goes after the rows of lower slots (a source's rows stay contiguous).
    int pos = 0;
    while (pos < b->n_rows && b->row_src[pos] < s)
        pos++;
    size_t T = (size_t)b->T, tail = (size_t)(b->n_rows - pos);
    memmove(b->tok + (size_t)(pos + 1) * T, b->tok + (size_t)pos * T, tail * T * sizeof(int32_t));
    memmove(b->sc + pos + 1, b->sc + pos, tail * sizeof(float));
    memmove(b->st + pos + 1, b->st + pos, tail * sizeof(float));
    memmove(b->eos + pos + 1, b->eos + pos, tail * sizeof(int));
    memmove(b->parent + pos + 1, b->parent + pos, tail * sizeof(int));
    memmove(b->row_src + pos + 1, b->row_src + pos, tail * sizeof(int));
    memmove(b->last + pos + 1, b->last + pos, tail * sizeof(int32_t));
    b->sc[pos] = 0.0f;
    b->st[pos] = 0.0f;
    b->eos[pos] = -1;
    b->parent[pos] = -1; // a new decoder row at position 0
    b->row_src[pos] = s;
    b->last[pos] = 0;    // ignored at position 0 (start token)
    b->n_rows++;
    b->pending = 1;
    b->max_len[s] = source_max_len(b, &b->p, src_len);
    b->fin_n[s] = 0;
    b->rng[s] = source_seed(b->p.seed, src, src_len);
    b->slot_step[s] = 0;
    b->slot_state[s] = SLOT_LIVE;
    b->n_live++;
    *slot = s;
    return SL_OK;
}

int beam_pool_step(beam_state *b, sl_err *err)
{
    if (!b->begun)
        return sl_fail(err, SL_EINVAL, "beam: beam_pool_step before beam_pool_begin");
    if (b->n_rows == 0)
        return SL_OK;
    int rc;
    if (b->pending && (rc = s2t_dec_reorder(b->s, b->n_rows, b->parent, b->row_src, err)))
        return rc;
    b->pending = 0;
    const beam_params *p = &b->p;
    step_ctx x = {p, NULL, 0, -1, s2t_model_config(s2t_state_model(b->s))->text_eos,
                  b->slot_res};
    if (!(x.logits = s2t_dec_step(b->s, b->last, err)))
        return err ? err->code : SL_EINVAL;
    b->n_steps++;
    b->n_step_rows += (uint64_t)b->n_rows;
    step_fn step_source = method_step(p);
    int n_new = 0;
    for (int r0 = 0; r0 < b->n_rows;) { // the rows of one source are contiguous
        int s = b->row_src[r0], r1 = r0 + 1;
        while (r1 < b->n_rows && b->row_src[r1] == s)
            r1++;
        x.step = b->slot_step[s];
        x.suppress = x.step < p->min_len ? x.eos_id : -1;
        int k = step_source(b, &x, s, r0, r1, n_new);
        if (k == 0) {
            b->slot_state[s] = SLOT_DONE;
            b->done_q[b->n_done++] = s;
            b->n_live--;
        } else {
            b->slot_step[s]++;
        }
        n_new += k;
        r0 = r1;
    }
    swap_buffers(b);
    memcpy(b->row_src, b->new_src, (size_t)n_new * sizeof(int));
    b->n_rows = n_new;
    b->pending = 1;
    return SL_OK;
}

int beam_pool_take(beam_state *b, int *slot, beam_result *res)
{
    if (b->n_done == 0)
        return 0;
    int s = b->done_q[0];
    b->n_done--;
    memmove(b->done_q, b->done_q + 1, (size_t)b->n_done * sizeof(int));
    *slot = s;
    *res = b->slot_res[s];
    b->slot_state[s] = SLOT_FREE;
    s2t_release_slot(b->s, s);
    return 1;
}

void beam_pool_stats(const beam_state *b, uint64_t *steps, uint64_t *rows)
{
    *steps = b->n_steps;
    *rows = b->n_step_rows;
}

// ---- the batch -------------------------------------------------------------------------

int beam_decode(beam_state *b, const int32_t *const *src, const int *src_len, int n_src,
                const beam_params *p, beam_result *res, sl_err *err)
{
    if (n_src < 1 || n_src > b->lim.max_batch)
        return sl_fail(err, SL_EINVAL, "s2t: %d sources (state holds 1..%d)", n_src,
                       b->lim.max_batch);
    int rc = beam_pool_begin(b, p, err), slot;
    for (int i = 0; !rc && i < n_src; i++)
        rc = beam_pool_add(b, src[i], src_len[i], &slot, err); // slot i: the pool was empty
    while (!rc && b->n_live > 0)
        rc = beam_pool_step(b, err);
    if (rc) {
        b->begun = 0;
        return rc;
    }
    beam_result r;
    while (beam_pool_take(b, &slot, &r))
        res[slot] = r;
    return SL_OK;
}
