// pipeline/beam.h — decoding semantic ids into text ids with the speech->text
// model (pipeline/s2t.h): greedy, top-k / temperature sampling, batched beam
// search. This is the call the worker makes per batch of utterances.
//
//   s2t_model *m;   s2t_open(&m, "s2t.safetensors", &err);          // once per process
//   beam_state *bs; beam_state_new(&bs, m, lim, &err);              // once per thread
//   beam_params p = beam_default_params(); p.beam = 4;
//   beam_result res[B];
//   beam_decode(bs, src, src_len, B, &p, res, &err);               // per batch
//   ... res[i].ids[0 .. res[i].n_ids) ...  (lent until the next beam_decode)
//   beam_state_free(bs); s2t_close(m);
//
// Sources are int32 semantic ids WITHOUT the speech EOS (appended here), of
// any lengths up to lim.max_src_len; nothing is padded. Every source's result
// is independent of the others in the batch and of the batch order: a batch
// decodes each source exactly as that source alone (same floats: the rows of
// a source never mix with other rows except inside row-wise matrix products).
//
// Methods (beam_params.method):
//  * BEAM_GREEDY: argmax of the logits at each step (ties: lower token id);
//    the seed's generate(temperature -> 0). A source stops at its first EOS.
//  * BEAM_SAMPLE: keep the top_k logits (0 = all), divide by temperature,
//    sample from the softmax. The random stream of a source is seeded from
//    (seed, the source's ids), so results are reproducible and do not depend
//    on batching. (Not the seed's torch RNG: samples differ from the seed.)
//  * BEAM_SEARCH with beam width `beam`, in one of two modes:
//    - BEAM_MODE_SEED reproduces spear-tts-pytorch 0.4.8 generate(
//      beam_search_decode=True): each kept hypothesis is extended by its top
//      `beam` tokens of log_softmax(logits); candidates of all kept
//      hypotheses of a source are ranked by the plain sum of log-probs (no
//      length normalisation) and the best `beam` kept. Hypotheses that
//      already contain EOS are NOT frozen: they keep being extended and
//      scored (tokens after EOS count in their score). A source stops when
//      every kept hypothesis contains EOS, or at its max length; the result
//      is the top hypothesis cut after its first EOS; `score` includes the
//      log-probs of the tokens generated after that EOS (beam_score.npy).
//      The seed runs a padded batch until EVERY row is done, so a finished
//      row can keep being re-ranked while others run; here each source stops
//      on its own, i.e. every row gets what the seed gives that row alone
//      (identical on the goldens).
//    - BEAM_MODE_DEFAULT is a proper beam search: an EOS candidate ranked in
//      the first `beam` candidates of its source leaves the beam into a
//      finished list (its score normalised by n_tokens^lenpen, EOS counted);
//      the beam is refilled with the best non-EOS candidates so `beam`
//      hypotheses stay live; a source stops when no live hypothesis can beat
//      the best finished one (for lenpen >= 0: best finished >= live
//      sum / max_len^lenpen), or at its max length, where the best finished
//      hypothesis wins and a live one is returned only when none finished
//      (flag BEAM_FLAG_MAXLEN). With beam 1 and lenpen 0 it equals greedy. `score`
//      is the plain log-prob sum of the returned tokens (EOS included).
//    Ranking ties break by lower token id, then lower parent hypothesis.
//
// Lengths: a source's max length is min(max_len, floor(len_a * src_len +
// len_b)) when len_a > 0, else max_len; it must not exceed lim.max_len.
// min_len suppresses EOS (its logit set to -inf) before min_len tokens.
//
// Determinism: byte-identical results on every run and for any number of
// BLAS threads as far as OpenBLAS sgemm is deterministic for a given thread
// count and shape (it is on x86-64 in practice; tie-breaking above is exact).
//
// Thread-safety: one beam_state per thread; the model may be shared.
// Errors: SL_EINVAL (params or sizes beyond the state's limits, bad ids),
// SL_ENOMEM (at beam_state_new only).
#pragma once
#include <stdint.h>

#include "common/err.h"
#include "pipeline/s2t.h"

#define BEAM_MAX_WIDTH 64

typedef enum beam_method { BEAM_GREEDY = 0, BEAM_SAMPLE = 1, BEAM_SEARCH = 2 } beam_method;
typedef enum beam_mode { BEAM_MODE_DEFAULT = 0, BEAM_MODE_SEED = 1 } beam_mode;

typedef struct beam_params {
    beam_method method; // BEAM_SEARCH
    int beam;           // 4 (BEAM_SEARCH width, 1..min(lim.max_beam, BEAM_MAX_WIDTH))
    beam_mode mode;     // BEAM_MODE_DEFAULT
    float lenpen;       // 0 (>= 0; BEAM_MODE_DEFAULT only)
    int top_k;          // 0 = no filter (BEAM_SAMPLE)
    float temperature;  // 1 (BEAM_SAMPLE, > 0)
    uint64_t seed;      // 0 (BEAM_SAMPLE)
    int max_len;        // text tokens incl. EOS; 0 = lim.max_len
    float len_a;        // 0 = off; else max length also <= floor(len_a * src_len + len_b)
    float len_b;        // 0
    int min_len;        // 0
    int keep_eos;       // 0: ids end before EOS; 1: the EOS is the last id when reached
} beam_params;

beam_params beam_default_params(void);

#define BEAM_FLAG_MAXLEN 1u // reached the max length without EOS

typedef struct beam_result {
    const int32_t *ids; // n_ids text ids, lent until the next beam_decode / beam_state_free
                        // (pool: see beam_pool_take)
    int n_ids;
    float score;        // sum of log_softmax of the chosen tokens (see modes above)
    float score_text;   // the same sum up to and including the first EOS (all modes)
    unsigned flags;     // BEAM_FLAG_*
} beam_result;

typedef struct beam_state beam_state;

// A decoding state for batches of up to lim.max_batch sources, beams up to
// lim.max_beam, sources up to lim.max_src_len ids, outputs up to lim.max_len
// tokens. Everything is allocated here; beam_decode allocates nothing.
int beam_state_new(beam_state **out, const s2t_model *m, s2t_limits lim, sl_err *err);
void beam_state_free(beam_state *b); // NULL is fine
// The model state inside (encoder output, decoder), e.g. for tests.
s2t_state *beam_state_s2t(beam_state *b);

// Decodes n_src sources; res[i] is source i's result. The pool below, filled
// with the n_src sources at once and stepped until it is empty.
int beam_decode(beam_state *b, const int32_t *const *src, const int *src_len, int n_src,
                const beam_params *p, beam_result *res, sl_err *err);

// --- The pool: continuous batching -------------------------------------------
// Up to lim.max_batch sources decode together and each one joins and leaves on
// its own: a source added while others are at step t starts at step 0 in the
// same decoder steps (per-row positions, s2t.h), and its result (ids, score
// and flag bits) is exactly beam_decode of that source alone, whatever joined
// or left around it and whenever it joined, for every method and mode.
//
//   beam_pool_begin(b, &p, &err);
//   while (more sources or beam_pool_live(b) > 0) {
//       while (beam_pool_free(b) > 0 && more sources) beam_pool_add(b, ids, n, &slot, &err);
//       beam_pool_step(b, &err);
//       while (beam_pool_take(b, &slot, &res)) ... the source in slot is done ...
//   }
//
// Empties the pool and fixes the parameters of every source until the next
// begin (checked as beam_decode checks them).
int beam_pool_begin(beam_state *b, const beam_params *p, sl_err *err);
int beam_pool_cap(const beam_state *b);  // lim.max_batch
int beam_pool_free(const beam_state *b); // slots a source can join now
int beam_pool_live(const beam_state *b); // sources still decoding
// A source joins: it is encoded now into the lowest free slot (*slot), and its
// first step is the next beam_pool_step. SL_EINVAL (the pool unbegun or full,
// bad ids or length, as s2t_encode) leaves the pool as it was.
int beam_pool_add(beam_state *b, const int32_t *src, int src_len, int *slot, sl_err *err);
// One decoder step of every live source (nothing without one). A source that
// finishes waits, its slot held, for beam_pool_take. After an error the pool
// must be begun again.
int beam_pool_step(beam_state *b, sl_err *err);
// Takes the earliest finished source: returns 1 with *slot (as beam_pool_add
// gave it) and *res, and frees the slot; 0 when none is waiting. res->ids is
// lent until the next beam_pool_add, beam_pool_begin or beam_decode.
int beam_pool_take(beam_state *b, int *slot, beam_result *res);
// Decoder steps run and the rows they decoded (summed), since beam_state_new;
// rows / steps is the average batch height.
void beam_pool_stats(const beam_state *b, uint64_t *steps, uint64_t *rows);

const char *beam_mode_name(beam_mode m); // "default", "seed"
