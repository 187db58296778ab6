// pipeline/kernels.h — the element-wise work between the matrix products of
// HuBERT (hubert.c) and the speech->text model (s2t.c, beam.c): GELU, LayerNorm,
// RMSNorm, softmax, log-softmax, and the decoder step's attention.
//
// Matrices are float, row-major; "(n, c)" is n rows of c floats, contiguous unless
// a leading dimension (ld*) is given. In place means the output pointer may equal
// the input pointer; otherwise the two must not overlap.
//
// Bits. No kernel contracts a * b + c into an FMA unless it says fmaf (ISO C mode:
// GCC's -ffp-contract=off), and every sum has a fixed order, so a result does not
// depend on the CPU. The HuBERT kernels (kern_gelu .. kern_add) and the s2t step
// kernels (kern_softmax_rows_masked, kern_step_attend) are built as AVX-512 / AVX2 /
// baseline x86-64 clones, picked at load time (ifunc) and vectorised at O3. A clone differs from another only in
// vector width, never in the operations or their order, so all give the same bits.
//
// Two exps, on purpose. Each softmax has its own e^x for x <= 0, and they differ
// in the last bit for about 1.1 % of the floats in [-20, 0]: replacing either
// would change HuBERT features or s2t scores (and with them labels) from what
// the goldens, the demo model and existing datasets hold.
//  * clamp87 (HuBERT, kern_softmax_rows_unnorm): Cephes expf's range reduction
//    and polynomial, max relative error 8.1e-8; inputs below -87.3 give
//    exp(-87.3) ~ 1.2e-38 instead of a denormal or 0 (no softmax sum can see it);
//    NaN stays NaN.
//  * flush87 (s2t, kern_softmax_rows_masked): degree-6 Taylor polynomial after
//    x = n ln2 + r, max relative error 2.5e-7 (about expf's); inputs below -87
//    give exactly 0.
// kern_exp_neg_clamp87 / kern_exp_neg_flush87 expose them one value at a time
// (the softmax loops use inlined copies of the same code).
//
// Two GELUs, on purpose. HuBERT's (kern_gelu and the fused forms) uses a rational
// erf (max abs error 1.5e-6 against exact GELU, vectorisable; ~11 % of a forward
// was erff before); s2t's GEGLU (kern_geglu_rows) uses erff, the exact erf GELU of
// the reference F.gelu that the s2t goldens and the demo model were checked with.
//
// No state, no allocation; every function is thread-safe on distinct outputs.
#pragma once
#include <stddef.h>

// ---- scalar exps (tests; see "Two exps" above) ----
float kern_exp_neg_clamp87(float x);
float kern_exp_neg_flush87(float x);

// ---- HuBERT ----

// y[0..n) = GELU(x[0..n)) with the rational erf; in place allowed. NaN in, NaN out.
void kern_gelu(const float *x, float *y, size_t n);
// x[0..n) += GELU(y[0..n)) (the positional conv's residual).
void kern_add_gelu(float *x, const float *y, size_t n);
// x[0..n) += y[0..n).
void kern_add(float *x, const float *y, size_t n);
// y (n, c): y = GELU((y - mean) * rstd * g + b) per channel; mean, rstd, g, b: (c).
// (The first conv block's GroupNorm, statistics computed elsewhere.)
void kern_norm_gelu_rows(float *y, size_t n, size_t c, const float *mean, const float *rstd,
                         const float *g, const float *b);
// LayerNorm of each row of x (n, c) into y (n, c), biased variance, eps inside the
// square root, g and b (c); y == x allowed. 16 partial sums per row, fixed tree.
// add (n, c) or NULL: the row is x + add first, and that sum is written back to x
// (post-LN residual x = LN(x + add) without another pass).
// gelu != 0: GELU follows (conv blocks in "layer" mode).
void kern_layer_norm(float *x, const float *add, size_t n, size_t c, const float *g,
                     const float *b, float eps, int gelu, float *y);
// Rows of scores sc (n, c): each row r becomes exp(r - max r) in place (clamp87),
// rinv[t] = 1 / sum of row t, rinv (n). NOT normalised: the caller scales the
// (n, d_head) context by rinv (kern_scale_rows) instead of the (n, n) scores.
void kern_softmax_rows_unnorm(float *sc, size_t n, size_t c, float *rinv);
// Row t of x (n, c), leading dimension ldx >= c, times s[t]; s (n).
void kern_scale_rows(float *x, size_t n, size_t c, size_t ldx, const float *s);

// ---- speech->text ----

// y (n, d) = x / max(||x||, 1e-12) * sqrt(d) * gamma per row (the reference's
// F.normalize RMSNorm; the square sum in double); x (n, d), gamma (d); y == x allowed.
void kern_rmsnorm_rows(const float *x, size_t n, size_t d, const float *gamma, float *y);
// GEGLU of f (n, 2 * inner): f[r, i] *= GELU(f[r, inner + i]) for i < inner, with
// erff (exact GELU); the second half is left as it was.
void kern_geglu_rows(float *f, size_t n, size_t inner);
// Softmax of s (rows, ld) over the first nv entries of each row, nv = n_valid_base
// (+ r for row r when causal), at most n; entries nv .. n get exactly 0 (what a
// -FLT_MAX mask gives). Normalised; exp flush87; sums in key order.
void kern_softmax_rows_masked(float *s, size_t rows, size_t ld, size_t n_valid_base, int causal,
                              size_t n);
// lp[0..V) = log_softmax(logits[0..V)) with entry `suppress` (-1: none) excluded
// from the sum and set to -inf. The max in float, the sum of exps in double, in index order.
void kern_log_softmax_row(const float *logits, int V, int suppress, float *lp);
// One decoder step's attention, for M query rows over nk keys of one head:
//   out[r, 0..dh) = sum_j softmax_j(scale * Q[r] . K_j) V[j, 0..dh)
// Q (M, dh) with row stride ldq; V (nk, dh) with row stride ldv; out (M, dh) with
// row stride ldo; score: scratch of M * round_up(nk, 8) floats. Key j's element e
// is K[(j / 8) * ts + e * es + j % 8]: tiles of 8 keys (cross-attention: ts = dh * 8,
// es = 8) or a transposed cache (self-attention: ts = 8, es = the cache's row
// length); the last partial tile is read only below nk. Every score and output
// element is one chain of fmaf in key (or dim) order, computed the same way in a
// block of 4 rows and alone: a row's bits do not depend on M, so a hypothesis
// decodes the same whatever batch it is in. Not through ops_matmul (see ops.h).
void kern_step_attend(const float *Q, size_t ldq, size_t M, const float *K, size_t ts, size_t es,
                      const float *V, size_t ldv, size_t nk, size_t dh, float scale, float *out,
                      size_t ldo, float *score);
// kern_step_attend's two products, for a caller that brings the keys and values a range
// at a time (s2t.c's float16 cross K/V, widened a few tiles at a time into L1):
//   kern_step_scores: S[r, j] = scale * Q[r] . K_j for j < nk (S's rows lds apart; K's
//   layout as above, from the range's first tile, so a range starts at a multiple of 8);
//   kern_step_values: out[r, e] = sum_j P[r, j] V[j, e] over j < nk in key order, each
//   chain from 0 (acc = 0) or from out's value (acc != 0: the next keys of the same sums).
// Scores over consecutive ranges, kern_softmax_rows_masked over all nk keys, then values
// over the same ranges (acc from the second on) give kern_step_attend's bits exactly.
void kern_step_scores(const float *Q, size_t ldq, size_t M, const float *K, size_t ts, size_t es,
                      size_t nk, size_t dh, float scale, float *S, size_t lds);
void kern_step_values(const float *P, size_t lds, size_t M, const float *V, size_t ldv,
                      size_t nk, size_t dh, float *out, size_t ldo, int acc);
