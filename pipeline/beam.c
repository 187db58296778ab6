// pipeline/beam.c — greedy, sampling and batched beam search over the s2t
// decoder. All live hypotheses of all sources advance through the decoder as
// one matrix per step (s2t_dec_step); selection reorders the KV cache by
// parent index (s2t_dec_reorder); finished sources leave the matrix. See beam.h.
#include "pipeline/beam.h"

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
};

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
    if (!b->tok || !b->tok2 || !b->sc || !b->sc2 || !b->st || !b->st2 || !b->eos || !b->eos2 ||
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

static void emit(beam_state *b, int src, const int32_t *toks, int n, float score, float score_text,
                 unsigned flags, int eos_id, int keep_eos, beam_result *res)
{
    int32_t *o = b->out + (size_t)src * (size_t)b->T;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (toks[i] == eos_id) {
            if (keep_eos)
                o[k++] = toks[i];
            break;
        }
        o[k++] = toks[i];
    }
    res[src].ids = o;
    res[src].n_ids = k;
    res[src].score = score;
    res[src].score_text = score_text;
    res[src].flags = flags;
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

int beam_decode(beam_state *b, const int32_t *const *src, const int *src_len, int n_src,
                const beam_params *p, beam_result *res, sl_err *err)
{
    const s2t_config *c = s2t_model_config(s2t_state_model(b->s));
    int eos_id = c->text_eos, V = b->V;
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
    int rc = s2t_encode(b->s, src, src_len, n_src, err);
    if (rc)
        return rc;
    for (int i = 0; i < n_src; i++) {
        int ml = p->max_len ? p->max_len : b->lim.max_len;
        if (p->len_a > 0.0f) {
            double prop = floor((double)p->len_a * src_len[i] + (double)p->len_b);
            if (prop < ml)
                ml = prop < 1.0 ? 1 : (int)prop;
        }
        b->max_len[i] = ml;
        b->fin_n[i] = 0;
        b->rng[i] = source_seed(p->seed, src[i], src_len[i]);
        b->row_src[i] = i;
        b->sc[i] = 0.0f;
        b->st[i] = 0.0f;
        b->eos[i] = -1;
    }
    int n_rows = n_src;
    if ((rc = s2t_dec_begin(b->s, n_rows, b->row_src, err)))
        return rc;
    size_t T = (size_t)b->T;
    for (int step = 0; n_rows > 0; step++) {
        const float *logits = s2t_dec_step(b->s, b->last, err);
        if (!logits)
            return err ? err->code : SL_EINVAL;
        int suppress = step < p->min_len ? eos_id : -1;
        int n_new = 0;
        for (int r0 = 0; r0 < n_rows;) {
            int s = b->row_src[r0], r1 = r0 + 1;
            while (r1 < n_rows && b->row_src[r1] == s)
                r1++;
            int len = step + 1, at_max = len >= b->max_len[s];
            if (p->method != BEAM_SEARCH) {
                const float *lg = logits + (size_t)r0 * (size_t)V;
                kern_log_softmax_row(lg, V, suppress, b->lp);
                int tok;
                if (p->method == BEAM_GREEDY) {
                    tok = -1;
                    for (int i = 0; i < V; i++)
                        if (i != suppress && (tok < 0 || lg[i] > lg[tok]))
                            tok = i;
                } else {
                    tok = sample_token(b, lg, suppress, p->top_k, p->temperature, &b->rng[s]);
                    kern_log_softmax_row(lg, V, suppress, b->lp);
                }
                add_child(b, n_new, r0, tok, b->lp[tok], step, eos_id, s);
                if (tok == eos_id || at_max)
                    emit(b, s, b->tok2 + (size_t)n_new * T, len, b->sc2[n_new], b->st2[n_new],
                         tok == eos_id ? 0u : BEAM_FLAG_MAXLEN, eos_id, p->keep_eos, res);
                else
                    n_new++;
            } else if (p->mode == BEAM_MODE_SEED) {
                // ref: every kept hypothesis (finished or not) offers its top-W tokens.
                int nc = 0;
                for (int r = r0; r < r1; r++) {
                    kern_log_softmax_row(logits + (size_t)r * (size_t)V, V, suppress, b->lp);
                    nc += top_tokens(b->lp, V, W, r, b->sc[r], b->cands + nc);
                }
                for (int i = 0; i < nc; i++) // ref: candidate = parent score + log-prob (float32)
                    b->cands[i].score = b->sc[b->cands[i].parent] + b->cands[i].lp;
                sort_cands(b->cands, nc);
                int keep = nc < W ? nc : W, all_eos = 1, first = n_new;
                for (int i = 0; i < keep; i++) {
                    add_child(b, n_new + i, b->cands[i].parent, b->cands[i].tok, b->cands[i].lp,
                              step, eos_id, s);
                    all_eos &= b->eos2[n_new + i] >= 0;
                }
                if (all_eos || at_max)
                    emit(b, s, b->tok2 + (size_t)first * T, len, b->sc2[first], b->st2[first],
                         b->eos2[first] >= 0 ? 0u : BEAM_FLAG_MAXLEN, eos_id, p->keep_eos, res);
                else
                    n_new += keep;
            } else {
                int per = 2 * W < V ? 2 * W : V, nc = 0;
                for (int r = r0; r < r1; r++) {
                    kern_log_softmax_row(logits + (size_t)r * (size_t)V, V, suppress, b->lp);
                    nc += top_tokens(b->lp, V, per, r, b->sc[r], b->cands + nc);
                }
                for (int i = 0; i < nc; i++)
                    b->cands[i].score = b->sc[b->cands[i].parent] + b->cands[i].lp;
                sort_cands(b->cands, nc);
                int live = 0, first = n_new;
                // Normalise by n_tokens^lenpen (EOS counted) when lenpen > 0.
                float norm_len = p->lenpen > 0.0f ? powf((float)len, p->lenpen) : 1.0f;
                for (int i = 0; i < nc && live < W; i++) {
                    const cand *k = &b->cands[i];
                    if (k->tok == eos_id) {
                        if (i >= W)
                            continue; // only EOS candidates ranked within the beam finish
                        float norm = k->score / norm_len;
                        if (!b->fin_n[s] || norm > b->fin_norm[s]) {
                            int32_t *ft = b->fin_tok + (size_t)s * T;
                            memcpy(ft, b->tok + (size_t)k->parent * T,
                                   (size_t)step * sizeof(int32_t));
                            ft[step] = k->tok;
                            b->fin_n[s] = len;
                            b->fin_norm[s] = norm;
                            b->fin_sum[s] = k->score;
                        }
                        continue;
                    }
                    add_child(b, n_new + live, k->parent, k->tok, k->lp, step, eos_id, s);
                    live++;
                }
                int done = at_max || live == 0;
                if (!done && b->fin_n[s]) {
                    // Live sums only decrease; the best a live hypothesis can reach is its
                    // sum divided by the largest length factor it can still get.
                    float bound = b->sc2[first];
                    if (p->lenpen > 0.0f)
                        bound /= powf((float)b->max_len[s], p->lenpen);
                    done = b->fin_norm[s] >= bound;
                }
                if (done) {
                    if (b->fin_n[s]) {
                        emit(b, s, b->fin_tok + (size_t)s * T, b->fin_n[s], b->fin_sum[s],
                             b->fin_sum[s], 0u, eos_id, p->keep_eos, res);
                    } else {
                        emit(b, s, b->tok2 + (size_t)first * T, len, b->sc2[first],
                             b->st2[first], BEAM_FLAG_MAXLEN, eos_id, p->keep_eos, res);
                    }
                } else {
                    n_new += live;
                }
            }
            r0 = r1;
        }
        swap_buffers(b);
        if (n_new == 0)
            break;
        if ((rc = s2t_dec_reorder(b->s, n_new, b->parent, b->new_src, err)))
            return rc;
        memcpy(b->row_src, b->new_src, (size_t)n_new * sizeof(int));
        n_rows = n_new;
    }
    return SL_OK;
}
