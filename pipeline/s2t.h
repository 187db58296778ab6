// pipeline/s2t.h — the SPEAR-TTS speech->text encoder-decoder (spear-tts-pytorch
// 0.4.8 `TextToSemantic` used speech -> text), the last model stage of the
// worker: semantic ids -> text logits. Decoding strategies (greedy, sampling,
// beam search) live in pipeline/beam.h and drive this module.
//
// Model file: a safetensors file holding the TextToSemantic state dict, with
// the constructor arguments as a JSON object in __metadata__["config"]
// (dim, heads, dim_head, target_kv_heads, source_depth, target_depth,
// num_semantic_token_ids, num_text_token_ids, ...). Every shape that follows
// from the config is checked; a missing tensor, a wrong shape or a missing /
// ill-typed config key is an error naming it. Weights are mmapped read-only
// (pipeline/weights.h); the model copies nothing and is immutable, so any
// number of threads may share one s2t_model.
//
// Architecture (see ../shared/golden/MANIFEST.md, "SPEAR-TTS speech->text
// conventions"): RMSNorm x/max(||x||,1e-12)*sqrt(dim)*gamma before every block,
// GEGLU feed-forward with exact erf GELU, interleaved rotary positions on q and
// k of every self-attention, grouped-query attention in the decoder
// self-attention with the einops tiling (query head i uses kv head
// i % kv_heads), cross-attention with a learned null key/value and no rotary,
// final RMSNorm, text logits tied to the text embedding.
//
// Per-thread state: s2t_state holds every activation buffer, the decoder
// self-attention KV cache and the cross-attention K/V of the current sources,
// all allocated once by s2t_state_new() for the limits given there. Nothing
// is allocated per source or per token afterwards.
//
// Slots and rows (continuous batching): the state holds up to max_batch
// sources, one per slot, each in its own fixed region. s2t_encode() fills
// slots 0..n-1 and empties the rest; s2t_encode_slot() replaces one slot and
// touches nothing else, so a source can join while others decode. Every
// decoder row has its own position (rotary angle, cached keys, causal range):
// a row that starts at step 0 can sit in the same step as rows at step t, and
// computes exactly what it computes alone (row-wise products, per-row
// attention; see kernels.h, ops.h).
//
// Source layout: sources are given WITHOUT the speech EOS; s2t_encode()
// appends it (when the model has one). Sources of different lengths are not
// padded: each is encoded on its own key range, which gives exactly what the
// reference's padded batch with key mask `ids != pad` gives at the valid
// positions (a masked key has softmax weight exactly 0), without computing
// the padding.
//
// Errors: SL_EIO (cannot read the file), SL_EFORMAT/SL_ECORRUPT (header,
// config or shapes), SL_ENOTFOUND (tensor absent), SL_EINVAL (arguments
// beyond the state's limits, ids out of range), SL_ENOMEM.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct s2t_model s2t_model;
typedef struct s2t_state s2t_state;

typedef struct s2t_config {
    int dim;            // model width
    int heads;          // query heads (encoder, decoder self and cross attention)
    int dim_head;       // width of one head
    int kv_heads;       // decoder self-attention kv heads (target_kv_heads, GQA)
    int source_depth;   // encoder layers
    int target_depth;   // decoder layers
    int ff_inner;       // GEGLU inner width (int(dim * ff_mult * 2 / 3))
    int n_semantic;     // num_semantic_token_ids (source ids are 0..n_semantic-1)
    int n_text;         // num_text_token_ids
    int speech_eos;     // = n_semantic, or -1 when autoset_semantic_eos_id is false
    int text_eos;       // = n_text, or -1 when autoset_text_eos_id is false (never ends)
    int n_speech_vocab; // rows of the speech embedding (n_semantic + 1 with EOS)
    int n_text_vocab;   // text logits classes (n_text + 1 with EOS)
    int text_pad;       // text_pad_id (0); an ordinary output class for the decoder
} s2t_config;

// Opens MODEL (safetensors + __metadata__["config"]). On failure returns a
// negative sl_code, fills *err and leaves *out NULL.
int s2t_open(s2t_model **out, const char *path, sl_err *err);
void s2t_close(s2t_model *m); // NULL is fine; every state of m must be freed first
// Lent; lives until s2t_close().
const s2t_config *s2t_model_config(const s2t_model *m);

// How a state stores the cross-attention keys/values of its sources: the largest
// term of a decoding state (decoder layers x source ids x 2 x heads x dim_head
// per source held) and the one memory stream a decoder step cannot share between
// sources.
//  * S2T_KV_F32 (the default): float32, what the reference computes.
//  * S2T_KV_F16: IEEE float16 (pipeline/half.h), rounded to nearest once per
//    source and widened exactly for each step's attention: half the memory and
//    half the step's cross-attention traffic, but every score and logit moves by
//    the rounding (about 2^-11 relative per key/value), so rows may differ from
//    float32's: an explicit, row-changing choice (the CLI's --cross-kv, in the
//    options fingerprint). Still batch-invariant and the same bits on every CPU
//    path. s2t_state_new() refuses it (SL_EINVAL) for a model whose keys/values
//    could overflow float16: it bounds them from the weights (|k| <= ||W row|| *
//    sqrt(dim) * max |final-norm gamma|, the encoder output being RMS-normed), so
//    an accepted model can never produce an infinity.
typedef enum s2t_kv_type { S2T_KV_F32 = 0, S2T_KV_F16 = 1 } s2t_kv_type;

// Sizes of a per-thread state. Every call on the state must stay within them.
typedef struct s2t_limits {
    int max_batch;   // sources per call
    int max_beam;    // hypotheses per source (1 for greedy / sampling)
    int max_src_len; // source ids per source, WITHOUT the speech EOS
    int max_len;     // text tokens per hypothesis (EOS included)
    s2t_kv_type cross_kv; // storage of the cross-attention K/V (0: S2T_KV_F32)
} s2t_limits;

// "f32" / "f16" (option values and the options fingerprint); NULL for no such type.
const char *s2t_kv_type_name(s2t_kv_type t);
// S2T_KV_* for a name s2t_kv_type_name() gives; -1 for any other string.
int s2t_kv_type_parse(const char *name);

// Allocates everything the limits need (KV cache, cross K/V, activations).
int s2t_state_new(s2t_state **out, const s2t_model *m, s2t_limits lim, sl_err *err);
void s2t_state_free(s2t_state *s); // NULL is fine
s2t_limits s2t_state_limits(const s2t_state *s);
const s2t_model *s2t_state_model(const s2t_state *s);
// Bytes allocated by s2t_state_new() for these limits (for sizing a job).
size_t s2t_state_bytes(const s2t_model *m, s2t_limits lim);

// --- Encoder -----------------------------------------------------------------
// Encodes n_src sources (src[i][0..src_len[i]), semantic ids in
// [0, n_semantic), no EOS: appended here) into slots 0..n_src-1 and computes,
// once per source, the cross-attention keys/values of every decoder layer.
// Empties every other slot and resets the decoder (no rows).
int s2t_encode(s2t_state *s, const int32_t *const *src, const int *src_len, int n_src,
               sl_err *err);
// Encodes one source into slot (0..max_batch-1), replacing what it held; other
// slots and the decoder rows are untouched. Rows still decoding that slot
// would read the new source: the caller reorders them away first (beam.h's
// pool does). On error (ids, length) the slot is unchanged; the message is
// s2t_encode's for this source alone ("source 0"), whatever the slot.
int s2t_encode_slot(s2t_state *s, int slot, const int32_t *src, int src_len, sl_err *err);
// Empties a slot: rows can no longer be started on it (s2t_dec_begin/reorder refuse).
void s2t_release_slot(s2t_state *s, int slot);
// Encoder output of slot i: (n_pos, dim) row-major, n_pos = src_len + 1 with
// the EOS; NULL for an empty slot. Lent until the slot is encoded again.
const float *s2t_encoder_output(const s2t_state *s, int i, int *n_pos);

// --- Decoder (incremental, KV cache) -------------------------------------------
// Starts decoding n_rows hypotheses, all at position 0; row r decodes slot
// row_src[r] (which must hold a source). Rows of one source must be contiguous
// (row_src non-decreasing): the hypotheses of a source share its
// cross-attention K/V in one matrix product.
int s2t_dec_begin(s2t_state *s, int n_rows, const int *row_src, sl_err *err);
// Advances every row by one position: a row at position 0 is fed the text
// start token (tokens[r] ignored; tokens may be NULL when every row is at 0),
// any other row tokens[r] (its last text id). Returns the logits of the next
// token, (n_rows, n_text_vocab), lent until the next decoder call; NULL on
// error (a row's position past max_len, a text id out of range).
const float *s2t_dec_step(s2t_state *s, const int32_t *tokens, sl_err *err);
// Reorders / selects rows: new row r continues old row parent[r] (its KV
// cache and position are copied), or starts at position 0 when parent[r] is
// -1 (a source joining), and decodes slot row_src[r] (contiguous per source as
// in s2t_dec_begin). n_rows may shrink (finished sources leave) or grow (beams
// fan out from one start row, sources join) up to max_batch * max_beam.
int s2t_dec_reorder(s2t_state *s, int n_rows, const int *parent, const int *row_src,
                    sl_err *err);
// Positions already in the cache of row 0 (0 after s2t_dec_begin or without rows).
int s2t_dec_length(const s2t_state *s);
// Positions already in the cache of row r; -1 when there is no row r.
int s2t_dec_row_length(const s2t_state *s, int r);

// Teacher forcing: logits after [start, target[0..n)) for the source in slot i,
// all n+1 positions at once through the causal path (no target key mask, as
// generate()); out = (n + 1, n_text_vocab), caller-owned.
// Uses the decoder: call s2t_dec_begin again before incremental decoding.
int s2t_dec_forced(s2t_state *s, int i, const int32_t *target, int n, float *out, sl_err *err);
