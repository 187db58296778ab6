// pipeline/hubert.c — see hubert.h. HuBERT forward pass over CBLAS.
//
// Activations are time-major, [T, C] row-major. A strided conv needs no im2col:
// output frame t reads rows x[t*stride .. t*stride+K), and with the weight re-laid
// out at open from PyTorch's [C_out, C_in, K] to [C_out, K, C_in], taps j0..j1 of
// all frames are one GEMM with A = x + j0*C_in, lda = stride*C_in. CBLAS needs
// lda >= the inner dimension, so the taps go in runs of at most `stride`
// (K 3 / stride 2: two GEMMs; K 2 / stride 2: one), accumulating into the output.
// Conv 0 (C_in = 1, K 10) and the grouped positional conv (stride 1, K 128) copy
// their patches (im2col) in row blocks instead. Attention runs per head with the
// head's columns addressed through leading dimensions (no copies).
// The element-wise work between the GEMMs is pipeline/kernels.h.
#include "pipeline/hubert.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/json.h"
#include "pipeline/kernels.h"
#include "pipeline/ops.h"
#include "pipeline/weights.h"

#ifndef CONV0_BLOCK
#define CONV0_BLOCK 256
#endif
// Rows of every later conv block's products: a multiple of OpenBLAS's sgemm row unroll (a
// power of two up to 32 on x86 cores), see conv_window. Larger blocks pack the weights less
// often and hold more; 256, 512 and 1024 timed the same on HuBERT-base at 30 s.
#ifndef CONV_BLOCK
#define CONV_BLOCK 256
#endif
// Rows per product of conv block i (conv 1: the fused conv 0 -> conv 1 chunk).
static size_t conv_blk(int i) { return i == 1 ? (size_t)CONV0_BLOCK : (size_t)CONV_BLOCK; }
#ifndef POS_BLOCK
#define POS_BLOCK 256   // frames per im2col block of the positional conv
#endif
// The first conv block's limits, refused at open (config.json): conv_stack keeps its
// GroupNorm statistics (one per channel) and conv0_stats its patch covariance
// (kernel x kernel) on the stack.
#define CONV0_MAX_DIM 4096
#define CONV0_MAX_KERNEL 64
#define RF_MAX_SAMPLES (3600 * 16000) // one frame's receptive field (HuBERT: 400)

typedef struct conv_block {
    int c_in, c_out, k, stride;
    float *w;            // owned, (c_out, k, c_in)
    const float *b;      // (c_out) or NULL
    const float *ln_g;   // (c_out): LayerNorm ("layer") or GroupNorm (block 0 of "group"); else NULL
    const float *ln_b;
} conv_block;

typedef struct enc_layer {
    const float *q_w, *k_w, *v_w;       // (H, H) each, mapped (not copied: see attention())
    const float *q_b, *k_b, *v_b;       // (H) each
    const float *o_w, *o_b;             // (H, H), (H)
    const float *ln1_g, *ln1_b;         // layer_norm (H)
    const float *ln2_g, *ln2_b;         // final_layer_norm (H)
    const float *ff1_w, *ff1_b;         // (F, H), (F)
    const float *ff2_w, *ff2_b;         // (H, F), (H)
} enc_layer;

struct hubert_model {
    hubert_config cfg;
    wts_file *w;
    conv_block conv[HUBERT_MAX_CONV];
    const float *fp_ln_g, *fp_ln_b;     // (C) or NULL
    const float *fp_w, *fp_b;           // (H, C), (H)
    float *pos_w;                       // owned, (G, H/G out, K, H/G in): effective weight-normed
    const float *pos_b;                 // (H)
    const float *enc_ln_g, *enc_ln_b;   // (H)
    enc_layer *layers;                  // n_layers
};

// Rows [w0, w1) of one conv block's output, (w1 - w0, C) from buf; rows: the block's
// whole output length for the input being run.
typedef struct conv_win {
    float *buf;
    size_t w0, w1, rows;
} conv_win;

struct hubert_state {
    const hubert_model *m;
    size_t cap_samples;   // the buffers below hold inputs up to this many samples
    float *pcm;           // normalised copy of the input (do_normalize only)
    float *chunk;         // conv-0 output rows of one chunk, (rows, C0)
    float *col0;          // conv-0 patches of one chunk, (rows, K0)
    float *colp;          // pos-conv patches of one block, (POS_BLOCK, K * H/G)
    conv_win win[HUBERT_MAX_CONV]; // conv block i's rows the next block still reads, 1 <= i < last
    float *feat;          // the conv stack's output, (T, C_last)
    float *x;             // residual stream (T, H)
    float *h;             // normed input of a sub-block / scratch (T, max(H, C))
    float *qkv;           // (T, 3H)
    float *sc;            // attention scores of one head (T, T)
    float *rinv;          // 1 / softmax denominator per row of sc (T)
    float *ctx;           // attention context (T, H)
    float *ff;            // (T, F)
    float *xg;            // group-major padded pos-conv input (G, T + K, H/G)
    float *out;           // final-normed output (T, H)
};

// y (n, c) = b (c) in every row: the bias a GEMM then accumulates onto.
static void fill_rows(float *y, size_t n, size_t c, const float *b)
{
    for (size_t t = 0; t < n; t++)
        memcpy(y + t * c, b, c * sizeof(float));
}

// ---- config --------------------------------------------------------------------------

#define CFG_MAX (1 << 20) // the largest size or count config.json may give

// Samples one output frame reads: the conv stack's receptive field (400 for HuBERT), in
// double so that any config's kernels and strides fit (65536^16 does); exact below 2^53.
static double receptive_field(const hubert_config *c)
{
    double n = 1.0; // work back from one output frame
    for (int i = c->n_conv - 1; i >= 0; i--)
        n = (n - 1.0) * c->conv_stride[i] + c->conv_kernel[i];
    return n;
}

static int parse_config(const char *dir, hubert_config *c, sl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return sl_fail(err, SL_EIO, "hubert: %s: %s (line %d)", path, je.text, je.line);
    int rc = SL_OK, n = 0, dummy;
    memset(c, 0, sizeof *c);
    const sl_json_src src = {"hubert", path, ""};
    if (!json_is_object(root)) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: not a JSON object", path);
        goto done;
    }
    if ((rc = sl_json_choice(&src, root, "model_type", (const char *[]){"hubert", NULL}, 0,
                             &dummy, err)))
        goto done;
    if ((rc = sl_json_int_array(&src, root, "conv_dim", 1, 65536, HUBERT_MAX_CONV, c->conv_dim,
                                &c->n_conv, err)) ||
        (rc = sl_json_int_array(&src, root, "conv_kernel", 1, 65536, HUBERT_MAX_CONV,
                                c->conv_kernel, &n, err)))
        goto done;
    if (n != c->n_conv) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: conv_kernel has %d entries, conv_dim %d", path,
                     n, c->n_conv);
        goto done;
    }
    if ((rc = sl_json_int_array(&src, root, "conv_stride", 1, 65536, HUBERT_MAX_CONV,
                                c->conv_stride, &n, err)))
        goto done;
    if (n != c->n_conv) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: conv_stride has %d entries, conv_dim %d", path,
                     n, c->n_conv);
        goto done;
    }
    if (c->n_conv < 2) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: %d conv blocks (need at least 2)", path,
                     c->n_conv);
        goto done;
    }
    if (c->conv_dim[0] > CONV0_MAX_DIM) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: conv_dim[0] = %d: the first conv block has at "
                     "most %d channels", path, c->conv_dim[0], CONV0_MAX_DIM);
        goto done;
    }
    if (c->conv_kernel[0] > CONV0_MAX_KERNEL) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: conv_kernel[0] = %d: the first conv block has "
                     "at most %d taps", path, c->conv_kernel[0], CONV0_MAX_KERNEL);
        goto done;
    }
    // Refused past an hour of 16 kHz samples: it bounds every size computed from the
    // kernels and strides (hubert_min_samples, the conv windows), which an untrusted
    // config could otherwise overflow.
    double rf = receptive_field(c);
    if (rf > RF_MAX_SAMPLES) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: conv_kernel and conv_stride make one frame "
                     "read %.3g samples (at most %d: an hour at 16 kHz)", path, rf, RF_MAX_SAMPLES);
        goto done;
    }
    int nfe = c->n_conv;
    if ((rc = sl_json_int(&src, root, "num_feat_extract_layers", 0, CFG_MAX, c->n_conv, &nfe, err)))
        goto done;
    if (nfe != c->n_conv) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: num_feat_extract_layers %d but conv_dim has "
                     "%d entries", path, nfe, c->n_conv);
        goto done;
    }
    if ((rc = sl_json_bool(&src, root, "conv_bias", 0, &c->conv_bias, err)) ||
        (rc = sl_json_bool(&src, root, "do_stable_layer_norm", 0, &c->stable_layer_norm, err)) ||
        (rc = sl_json_bool(&src, root, "feat_proj_layer_norm", 1, &c->feat_proj_layer_norm,
                           err)) ||
        (rc = sl_json_int(&src, root, "hidden_size", 0, CFG_MAX, 768, &c->hidden, err)) ||
        (rc = sl_json_int(&src, root, "num_hidden_layers", 0, CFG_MAX, 12, &c->n_layers, err)) ||
        (rc = sl_json_int(&src, root, "num_attention_heads", 0, CFG_MAX, 12, &c->n_heads, err)) ||
        (rc = sl_json_int(&src, root, "intermediate_size", 0, CFG_MAX, 3072, &c->ffn, err)) ||
        (rc = sl_json_int(&src, root, "num_conv_pos_embeddings", 0, CFG_MAX, 128, &c->pos_kernel,
                          err)) ||
        (rc = sl_json_int(&src, root, "num_conv_pos_embedding_groups", 0, CFG_MAX, 16,
                          &c->pos_groups, err)) ||
        (rc = sl_json_choice(&src, root, "hidden_act", (const char *[]){"gelu", NULL}, 0, &dummy,
                             err)) ||
        (rc = sl_json_choice(&src, root, "feat_extract_activation", (const char *[]){"gelu", NULL},
                             0, &dummy, err)) ||
        (rc = sl_json_choice(&src, root, "feat_extract_norm", (const char *[]){"group", "layer", NULL},
                             0, &c->feat_norm_layer, err)))
        goto done;
    double eps;
    if ((rc = sl_json_number(&src, root, "layer_norm_eps", 1e-5, &eps, err)))
        goto done;
    if (!(eps > 0.0)) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: layer_norm_eps must be > 0", path);
        goto done;
    }
    c->ln_eps = (float)eps;
    int flag = 0;
    if ((rc = sl_json_bool(&src, root, "conv_pos_batch_norm", 0, &flag, err)))
        goto done;
    if (flag) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: conv_pos_batch_norm true (BatchNorm positional "
                     "conv) is not supported", path);
        goto done;
    }
    if ((rc = sl_json_bool(&src, root, "add_adapter", 0, &flag, err)))
        goto done;
    if (flag) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: add_adapter true is not supported", path);
        goto done;
    }
    if (c->hidden < 1 || c->n_heads < 1 || c->hidden % c->n_heads || c->pos_groups < 1 ||
        c->hidden % c->pos_groups || c->pos_kernel < 1 || c->ffn < 1) {
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: inconsistent sizes (hidden %d, heads %d, pos "
                     "groups %d, pos kernel %d, intermediate %d)", path, c->hidden, c->n_heads,
                     c->pos_groups, c->pos_kernel, c->ffn);
        goto done;
    }
done:
    json_decref(root);
    if (rc)
        return rc;

    // Optional preprocessor_config.json: waveform normalisation and rate.
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return SL_OK;
    root = json_load_file(path, 0, &je);
    if (!root)
        return sl_fail(err, SL_EFORMAT, "hubert: %s: %s (line %d)", path, je.text, je.line);
    int rate = 16000; // src.file is path, which now names preprocessor_config.json
    if ((rc = sl_json_bool(&src, root, "do_normalize", 0, &c->do_normalize, err)) == SL_OK &&
        (rc = sl_json_int(&src, root, "sampling_rate", 0, CFG_MAX, 16000, &rate, err)) == SL_OK &&
        rate != 16000)
        rc = sl_fail(err, SL_EFORMAT, "hubert: %s: sampling_rate %d (only 16000)", path, rate);
    json_decref(root);
    return rc;
}

// ---- loading -------------------------------------------------------------------------

typedef struct loader {
    const wts_file *w;
    const char *prefix; // "" or "hubert."
    char name[512];
} loader;

static const char *nm(loader *L, const char *fmt, int i)
{
    char tail[400];
    snprintf(tail, sizeof tail, fmt, i);
    snprintf(L->name, sizeof L->name, "%s%s", L->prefix, tail);
    return L->name;
}

static int get1(loader *L, const char *fmt, int i, size_t d0, const float **out, sl_err *err)
{
    return wts_get1(L->w, nm(L, fmt, i), d0, out, err);
}

static int get2(loader *L, const char *fmt, int i, size_t d0, size_t d1, const float **out,
                sl_err *err)
{
    return wts_get2(L->w, nm(L, fmt, i), d0, d1, out, err);
}

static int get3(loader *L, const char *fmt, int i, size_t d0, size_t d1, size_t d2,
                const float **out, sl_err *err)
{
    return wts_get3(L->w, nm(L, fmt, i), d0, d1, d2, out, err);
}

static int load_conv(hubert_model *m, loader *L, sl_err *err)
{
    const hubert_config *c = &m->cfg;
    for (int i = 0; i < c->n_conv; i++) {
        conv_block *b = &m->conv[i];
        b->c_in = i ? c->conv_dim[i - 1] : 1;
        b->c_out = c->conv_dim[i];
        b->k = c->conv_kernel[i];
        b->stride = c->conv_stride[i];
        const float *w;
        int rc = get3(L, "feature_extractor.conv_layers.%d.conv.weight", i, (size_t)b->c_out,
                      (size_t)b->c_in, (size_t)b->k, &w, err);
        if (rc)
            return rc;
        size_t ck = (size_t)b->c_in * (size_t)b->k;
        b->w = malloc((size_t)b->c_out * ck * sizeof(float));
        if (!b->w)
            return sl_fail(err, SL_ENOMEM, "hubert: out of memory");
        for (int o = 0; o < b->c_out; o++) // [C_out, C_in, K] -> [C_out, K, C_in]
            for (int ci = 0; ci < b->c_in; ci++)
                for (int k = 0; k < b->k; k++)
                    b->w[(size_t)o * ck + (size_t)k * b->c_in + ci] =
                        w[(size_t)o * ck + (size_t)ci * b->k + k];
        if (c->conv_bias &&
            (rc = get1(L, "feature_extractor.conv_layers.%d.conv.bias", i, (size_t)b->c_out,
                       &b->b, err)))
            return rc;
        if (c->feat_norm_layer || i == 0) {
            if ((rc = get1(L, "feature_extractor.conv_layers.%d.layer_norm.weight", i,
                           (size_t)b->c_out, &b->ln_g, err)) ||
                (rc = get1(L, "feature_extractor.conv_layers.%d.layer_norm.bias", i,
                           (size_t)b->c_out, &b->ln_b, err)))
                return rc;
        }
    }
    return SL_OK;
}

static int load_pos_conv(hubert_model *m, loader *L, sl_err *err)
{
    const hubert_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, G = (size_t)c->pos_groups, Cg = H / G, K = (size_t)c->pos_kernel;
    const float *g = NULL, *v = NULL;
    const char *gname = "encoder.pos_conv_embed.conv.weight_g";
    const char *vname = "encoder.pos_conv_embed.conv.weight_v";
    if (!wts_find(L->w, nm(L, gname, 0))) {
        gname = "encoder.pos_conv_embed.conv.parametrizations.weight.original0";
        vname = "encoder.pos_conv_embed.conv.parametrizations.weight.original1";
    }
    int rc;
    if ((rc = get3(L, gname, 0, 1, 1, K, &g, err)) || (rc = get3(L, vname, 0, H, Cg, K, &v, err)) ||
        (rc = get1(L, "encoder.pos_conv_embed.conv.bias", 0, H, &m->pos_b, err)))
        return rc;
    m->pos_w = malloc(H * Cg * K * sizeof(float));
    double *norm = calloc(K, sizeof(double));
    if (!m->pos_w || !norm) {
        free(norm);
        return sl_fail(err, SL_ENOMEM, "hubert: out of memory");
    }
    // ref: weight_norm(dim=2): one norm per kernel tap over output AND input channels.
    for (size_t o = 0; o < H; o++)
        for (size_t i = 0; i < Cg; i++)
            for (size_t k = 0; k < K; k++) {
                double x = (double)v[(o * Cg + i) * K + k];
                norm[k] += x * x;
            }
    for (size_t k = 0; k < K; k++)
        norm[k] = sqrt(norm[k]);
    // v [H, Cg, K] -> effective (G, Cg out, K, Cg in): output channel o = grp * Cg + ol.
    for (size_t o = 0; o < H; o++)
        for (size_t i = 0; i < Cg; i++)
            for (size_t k = 0; k < K; k++) {
                size_t grp = o / Cg, ol = o % Cg;
                double x = (double)g[k] * (double)v[(o * Cg + i) * K + k] / norm[k];
                m->pos_w[((grp * Cg + ol) * K + k) * Cg + i] = (float)x;
            }
    free(norm);
    return SL_OK;
}

static int load_layers(hubert_model *m, loader *L, sl_err *err)
{
    const hubert_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, F = (size_t)c->ffn;
    m->layers = calloc((size_t)c->n_layers ? (size_t)c->n_layers : 1, sizeof(enc_layer));
    if (!m->layers)
        return sl_fail(err, SL_ENOMEM, "hubert: out of memory");
    for (int i = 0; i < c->n_layers; i++) {
        enc_layer *l = &m->layers[i];
        int rc;
        if ((rc = get2(L, "encoder.layers.%d.attention.q_proj.weight", i, H, H, &l->q_w, err)) ||
            (rc = get2(L, "encoder.layers.%d.attention.k_proj.weight", i, H, H, &l->k_w, err)) ||
            (rc = get2(L, "encoder.layers.%d.attention.v_proj.weight", i, H, H, &l->v_w, err)) ||
            (rc = get1(L, "encoder.layers.%d.attention.q_proj.bias", i, H, &l->q_b, err)) ||
            (rc = get1(L, "encoder.layers.%d.attention.k_proj.bias", i, H, &l->k_b, err)) ||
            (rc = get1(L, "encoder.layers.%d.attention.v_proj.bias", i, H, &l->v_b, err)) ||
            (rc = get2(L, "encoder.layers.%d.attention.out_proj.weight", i, H, H, &l->o_w, err)) ||
            (rc = get1(L, "encoder.layers.%d.attention.out_proj.bias", i, H, &l->o_b, err)) ||
            (rc = get1(L, "encoder.layers.%d.layer_norm.weight", i, H, &l->ln1_g, err)) ||
            (rc = get1(L, "encoder.layers.%d.layer_norm.bias", i, H, &l->ln1_b, err)) ||
            (rc = get1(L, "encoder.layers.%d.final_layer_norm.weight", i, H, &l->ln2_g, err)) ||
            (rc = get1(L, "encoder.layers.%d.final_layer_norm.bias", i, H, &l->ln2_b, err)) ||
            (rc = get2(L, "encoder.layers.%d.feed_forward.intermediate_dense.weight", i, F, H,
                       &l->ff1_w, err)) ||
            (rc = get1(L, "encoder.layers.%d.feed_forward.intermediate_dense.bias", i, F,
                       &l->ff1_b, err)) ||
            (rc = get2(L, "encoder.layers.%d.feed_forward.output_dense.weight", i, H, F,
                       &l->ff2_w, err)) ||
            (rc = get1(L, "encoder.layers.%d.feed_forward.output_dense.bias", i, H, &l->ff2_b,
                       err)))
            return rc;
    }
    return SL_OK;
}

void hubert_close(hubert_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < HUBERT_MAX_CONV; i++)
        free(m->conv[i].w);
    free(m->layers);
    free(m->pos_w);
    wts_close(m->w);
    free(m);
}

int hubert_open(hubert_model **out, const char *dir, sl_err *err)
{
    *out = NULL;
    hubert_model *m = calloc(1, sizeof *m);
    if (!m)
        return sl_fail(err, SL_ENOMEM, "hubert: out of memory");
    int rc = parse_config(dir, &m->cfg, err);
    if (rc)
        goto fail;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = wts_open(&m->w, path, err)))
        goto fail;
    loader L = {m->w, "", {0}};
    if (!wts_find(m->w, "feature_extractor.conv_layers.0.conv.weight") &&
        wts_find(m->w, "hubert.feature_extractor.conv_layers.0.conv.weight"))
        L.prefix = "hubert.";
    const hubert_config *c = &m->cfg;
    size_t C = (size_t)c->conv_dim[c->n_conv - 1], H = (size_t)c->hidden;
    if ((rc = load_conv(m, &L, err)))
        goto fail;
    if (c->feat_proj_layer_norm &&
        ((rc = get1(&L, "feature_projection.layer_norm.weight", 0, C, &m->fp_ln_g, err)) ||
         (rc = get1(&L, "feature_projection.layer_norm.bias", 0, C, &m->fp_ln_b, err))))
        goto fail;
    if ((rc = get2(&L, "feature_projection.projection.weight", 0, H, C, &m->fp_w, err)) ||
        (rc = get1(&L, "feature_projection.projection.bias", 0, H, &m->fp_b, err)) ||
        (rc = get1(&L, "encoder.layer_norm.weight", 0, H, &m->enc_ln_g, err)) ||
        (rc = get1(&L, "encoder.layer_norm.bias", 0, H, &m->enc_ln_b, err)) ||
        (rc = load_pos_conv(m, &L, err)) || (rc = load_layers(m, &L, err)))
        goto fail;
    *out = m;
    return SL_OK;
fail: // every message above already names the file (config.json or model.safetensors)
    hubert_close(m);
    return rc;
}

const hubert_config *hubert_get_config(const hubert_model *m) { return &m->cfg; }

// Output length of each conv block; returns T after block `upto` (inclusive), 0 if none.
static size_t conv_len(const hubert_config *c, size_t n, int upto)
{
    for (int i = 0; i <= upto; i++) {
        if (n < (size_t)c->conv_kernel[i])
            return 0;
        n = (n - (size_t)c->conv_kernel[i]) / (size_t)c->conv_stride[i] + 1;
    }
    return n;
}

size_t hubert_n_frames(const hubert_model *m, size_t n_samples)
{
    return conv_len(&m->cfg, n_samples, m->cfg.n_conv - 1);
}

size_t hubert_min_samples(const hubert_model *m)
{
    return (size_t)receptive_field(&m->cfg); // at most RF_MAX_SAMPLES (refused at open)
}

double hubert_flops(const hubert_model *m, size_t n, int layer)
{
    const hubert_config *c = &m->cfg;
    double f = 0.0;
    for (int i = 0; i < c->n_conv; i++) {
        size_t t = conv_len(c, n, i);
        double cin = i ? c->conv_dim[i - 1] : 1;
        f += 2.0 * (double)t * c->conv_dim[i] * cin * c->conv_kernel[i];
    }
    double T = (double)hubert_n_frames(m, n), H = c->hidden, F = c->ffn;
    f += 2.0 * T * H * c->conv_dim[c->n_conv - 1];                        // projection
    f += 2.0 * T * H * (H / c->pos_groups) * c->pos_kernel;               // positional conv
    f += (double)layer * (2.0 * T * (4.0 * H * H + 2.0 * H * F) + 4.0 * T * T * H); // layers
    return f;
}

// ---- state ---------------------------------------------------------------------------

int hubert_state_new(hubert_state **out, const hubert_model *m, sl_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return sl_fail(err, SL_ENOMEM, "hubert: out of memory");
    (*out)->m = m;
    return SL_OK;
}

void hubert_state_free(hubert_state *s)
{
    if (!s)
        return;
    free(s->pcm);
    free(s->chunk);
    free(s->col0);
    free(s->colp);
    for (int i = 0; i < HUBERT_MAX_CONV; i++)
        free(s->win[i].buf);
    free(s->feat);
    free(s->x);
    free(s->h);
    free(s->qkv);
    free(s->sc);
    free(s->rinv);
    free(s->ctx);
    free(s->ff);
    free(s->xg);
    free(s->out);
    free(s);
}

static int regrow(float **p, size_t n)
{
    free(*p);
    *p = malloc((n ? n : 1) * sizeof(float));
    return *p ? 0 : -1;
}

int hubert_state_reserve(hubert_state *s, size_t n, sl_err *err)
{
    if (n <= s->cap_samples)
        return SL_OK;
    const hubert_model *m = s->m;
    const hubert_config *c = &m->cfg;
    size_t T = hubert_n_frames(m, n), H = (size_t)c->hidden, F = (size_t)c->ffn;
    int L = c->n_conv - 1;
    size_t Cl = (size_t)c->conv_dim[L];
    const conv_block *b1 = &m->conv[1];
    size_t rows0 = (size_t)(CONV0_BLOCK - 1) * (size_t)b1->stride + (size_t)b1->k;
    size_t K = (size_t)c->pos_kernel;
    size_t th = T * (H > Cl ? H : Cl);
    int bad = (c->do_normalize && regrow(&s->pcm, n)) ||
              regrow(&s->chunk, rows0 * (size_t)m->conv[0].c_out) ||
              regrow(&s->col0, rows0 * (size_t)m->conv[0].k) ||
              regrow(&s->colp, (size_t)POS_BLOCK * K * (H / (size_t)c->pos_groups)) ||
              regrow(&s->feat, T * Cl) || regrow(&s->x, T * H) ||
              regrow(&s->h, th) || regrow(&s->qkv, 3 * T * H) || regrow(&s->sc, T * T) || regrow(&s->rinv, T) ||
              regrow(&s->ctx, T * H) || regrow(&s->ff, T * F) || regrow(&s->xg, (T + K) * H) ||
              regrow(&s->out, T * H);
    // block i's window: the rows one block of block i + 1 reads, plus one block of
    // its own produced past them, plus the start of its block before them
    for (int i = 1; i < L && !bad; i++) {
        size_t r = (conv_blk(i + 1) - 1) * (size_t)c->conv_stride[i + 1] +
                   (size_t)c->conv_kernel[i + 1] + 2 * conv_blk(i), t = conv_len(c, n, i);
        bad = regrow(&s->win[i].buf, (r < t ? r : t) * (size_t)c->conv_dim[i]);
    }
    if (bad) {
        s->cap_samples = 0;
        return sl_fail(err, SL_ENOMEM, "hubert: out of memory for %zu samples (%zu frames)", n,
                       T);
    }
    s->cap_samples = n;
    return SL_OK;
}

// ---- forward -------------------------------------------------------------------------

// y (T_out, C_out) (+)= conv of x (rows t*stride.., C_in) with b's taps, bias first if any.
static void conv_gemm(const conv_block *b, const float *x, size_t T_out, float *y)
{
    size_t Ci = (size_t)b->c_in, Co = (size_t)b->c_out, K = (size_t)b->k, S = (size_t)b->stride;
    if (b->b)
        fill_rows(y, T_out, Co, b->b);
    float beta = b->b ? 1.0f : 0.0f;
    for (size_t j0 = 0; j0 < K; j0 += S) { // taps j0 .. j0+run in one GEMM
        size_t run = K - j0 < S ? K - j0 : S;
        ops_matmul(OPS_N, OPS_T, T_out, Co, run * Ci, 1.0f, x + j0 * Ci, S * Ci, b->w + j0 * Ci,
                   K * Ci, beta, y, Co);
        beta = 1.0f;
    }
}

// Conv 0 (C_in = 1) rows [r0, r0 + rows) into s->chunk, then its norm and GELU.
// mean/rstd: per-channel GroupNorm statistics ("group" mode) or NULL.
static void conv0_rows(const hubert_model *m, const float *pcm, size_t r0, size_t rows,
                       const float *mean, const float *rstd, float *col, float *y)
{
    const conv_block *b = &m->conv[0];
    size_t C = (size_t)b->c_out, K = (size_t)b->k, S = (size_t)b->stride;
    for (size_t t = 0; t < rows; t++) // im2col: K samples per frame, (rows, K)
        memcpy(col + t * K, pcm + (r0 + t) * S, K * sizeof(float));
    if (b->b)
        fill_rows(y, rows, C, b->b);
    ops_matmul(OPS_N, OPS_T, rows, C, K, 1.0f, col, K, b->w, K, b->b ? 1.0f : 0.0f, y, C);
    if (mean)
        kern_norm_gelu_rows(y, rows, C, mean, rstd, b->ln_g, b->ln_b);
    else if (b->ln_g)
        kern_layer_norm(y, NULL, rows, C, b->ln_g, b->ln_b, m->cfg.ln_eps, 1, y);
    else
        kern_gelu(y, y, rows * C);
}

// GroupNorm(C groups) statistics of conv 0's output over all T0 frames, in double.
// Conv 0 is linear in its input patch p_t = pcm[t*s .. t*s+K): y_c = w_c.p_t + b_c, so
// mean_c = w_c.E[p] + b_c and var_c = w_c^T Cov(p) w_c from one K x K covariance.
static void conv0_stats(const hubert_model *m, const float *pcm, size_t T0, float *mean,
                        float *rstd)
{
    const conv_block *b = &m->conv[0];
    size_t K = (size_t)b->k, S = (size_t)b->stride, C = (size_t)b->c_out;
    double mu[CONV0_MAX_KERNEL] = {0}, cov[CONV0_MAX_KERNEL * CONV0_MAX_KERNEL];
    memset(cov, 0, sizeof cov);
    for (size_t t = 0; t < T0; t++) {
        const float *p = pcm + t * S;
        for (size_t i = 0; i < K; i++) {
            double pi = (double)p[i];
            mu[i] += pi;
            for (size_t j = i; j < K; j++)
                cov[i * K + j] += pi * (double)p[j];
        }
    }
    for (size_t i = 0; i < K; i++)
        mu[i] /= (double)T0;
    for (size_t i = 0; i < K; i++)
        for (size_t j = i; j < K; j++) {
            cov[i * K + j] = cov[i * K + j] / (double)T0 - mu[i] * mu[j];
            cov[j * K + i] = cov[i * K + j];
        }
    for (size_t c = 0; c < C; c++) {
        const float *w = b->w + c * K;
        double mc = b->b ? (double)b->b[c] : 0.0, vc = 0.0;
        for (size_t i = 0; i < K; i++) {
            mc += (double)w[i] * mu[i];
            for (size_t j = 0; j < K; j++)
                vc += (double)w[i] * cov[i * K + j] * (double)w[j];
        }
        if (vc < 0.0)
            vc = 0.0;
        mean[c] = (float)mc;
        rstd[c] = (float)(1.0 / sqrt(vc + (double)m->cfg.ln_eps));
    }
}

// Block i's norm (LayerNorm per row, "layer" mode) or GELU on its rows y (rows, C_i).
static void conv_act(const hubert_model *m, int i, float *y, size_t rows)
{
    const conv_block *b = &m->conv[i];
    if (b->ln_g)
        kern_layer_norm(y, NULL, rows, (size_t)b->c_out, b->ln_g, b->ln_b, m->cfg.ln_eps, 1, y);
    else
        kern_gelu(y, y, rows * (size_t)b->c_out);
}

static void conv_block_rows(hubert_state *s, const float *pcm, int i, size_t b0, size_t nb,
                            const float *mean, const float *rstd, float *y);

// Makes s->win[i] hold conv block i's output rows [x0, x1), dropping the rows before
// x0. Rows are produced in blocks of conv_blk(i) rows on a grid from row 0, one product
// per block (the last shorter). Every block but the last is a multiple of OpenBLAS's row
// unroll, so each row is rounded as in one product over the whole output.
static void conv_window(hubert_state *s, const float *pcm, int i, size_t x0, size_t x1,
                        const float *mean, const float *rstd)
{
    conv_win *w = &s->win[i];
    size_t C = (size_t)s->m->conv[i].c_out, T = w->rows, B = conv_blk(i);
    if (x0 >= w->w1) { // nothing held is wanted: start again at x0's block
        w->w0 = w->w1 = x0 / B * B;
    } else if (x0 > w->w0) {
        memmove(w->buf, w->buf + (x0 - w->w0) * C, (w->w1 - x0) * C * sizeof(float));
        w->w0 = x0;
    }
    while (w->w1 < x1) {
        size_t nb = T - w->w1 < B ? T - w->w1 : B;
        conv_block_rows(s, pcm, i, w->w1, nb, mean, rstd, w->buf + (w->w1 - w->w0) * C);
        w->w1 += nb;
    }
}

// Conv block i's output rows [b0, b0 + nb) into y (nb, C_i), activated. Block 1 runs
// conv 0 for its rows into s->chunk first (each conv-0 chunk consumed while in cache);
// a later block reads block i - 1's rows from its window.
static void conv_block_rows(hubert_state *s, const float *pcm, int i, size_t b0, size_t nb,
                            const float *mean, const float *rstd, float *y)
{
    const hubert_model *m = s->m;
    const conv_block *b = &m->conv[i];
    size_t K = (size_t)b->k, S = (size_t)b->stride;
    if (i == 1) {
        conv0_rows(m, pcm, b0 * S, (nb - 1) * S + K, mean, rstd, s->col0, s->chunk);
        conv_gemm(b, s->chunk, nb, y);
    } else {
        conv_win *w = &s->win[i - 1];
        conv_window(s, pcm, i - 1, b0 * S, b0 * S + (nb - 1) * S + K, mean, rstd);
        conv_gemm(b, w->buf + (b0 * S - w->w0) * (size_t)b->c_in, nb, y);
    }
    conv_act(m, i, y, nb);
}

// Conv stack: pcm -> s->feat (T, C_last), streamed: each block keeps a window of the
// rows the next one still reads, so no block's whole output is held (conv 1's alone was
// 98 MB at 30 s).
static float *conv_stack(hubert_state *s, const float *pcm, size_t n)
{
    const hubert_model *m = s->m;
    const hubert_config *c = &m->cfg;
    int L = c->n_conv - 1;
    size_t T = conv_len(c, n, L), T0 = conv_len(c, n, 0), C = (size_t)c->conv_dim[L];
    float mean[CONV0_MAX_DIM], rstd[CONV0_MAX_DIM];
    int group = !c->feat_norm_layer;
    if (group)
        conv0_stats(m, pcm, T0, mean, rstd);
    for (int i = 1; i < L; i++)
        s->win[i] = (conv_win){.buf = s->win[i].buf, .rows = conv_len(c, n, i)};
    size_t B = conv_blk(L);
    for (size_t f0 = 0; f0 < T; f0 += B) {
        size_t nf = T - f0 < B ? T - f0 : B;
        conv_block_rows(s, pcm, L, f0, nf, group ? mean : NULL, group ? rstd : NULL,
                        s->feat + f0 * C);
    }
    return s->feat;
}

// x (T, H) += GELU(pos_conv(x)), grouped conv with padding K/2 (last frame dropped when K
// is even: ref SamePad).
static void pos_conv(hubert_state *s, size_t T)
{
    const hubert_model *m = s->m;
    const hubert_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, G = (size_t)c->pos_groups, Cg = H / G, K = (size_t)c->pos_kernel;
    size_t pad = K / 2, Tp = T + 2 * pad;
    float *xg = s->xg; // (G, Tp, Cg): zero rows at both ends
    for (size_t g = 0; g < G; g++) {
        float *dst = xg + g * Tp * Cg;
        memset(dst, 0, pad * Cg * sizeof(float));
        for (size_t t = 0; t < T; t++)
            memcpy(dst + (pad + t) * Cg, s->x + t * H + g * Cg, Cg * sizeof(float));
        memset(dst + (pad + T) * Cg, 0, pad * Cg * sizeof(float));
    }
    float *y = s->h; // (T, H)
    fill_rows(y, T, H, m->pos_b);
    for (size_t g = 0; g < G; g++)
        for (size_t t0 = 0; t0 < T; t0 += POS_BLOCK) {
            size_t nt = T - t0 < POS_BLOCK ? T - t0 : POS_BLOCK;
            const float *src = xg + (g * Tp + t0) * Cg;
            for (size_t t = 0; t < nt; t++) // im2col: frame t reads K rows of Cg from t
                memcpy(s->colp + t * K * Cg, src + t * Cg, K * Cg * sizeof(float));
            ops_matmul(OPS_N, OPS_T, nt, Cg, K * Cg, 1.0f, s->colp, K * Cg,
                       m->pos_w + g * Cg * K * Cg, K * Cg, 1.0f, y + t0 * H + g * Cg, H);
        }
    kern_add_gelu(s->x, y, T * H);
}

// Self-attention of h (T, H) into s->ctx (T, H), output projection included (+ bias).
static void attention(hubert_state *s, const enc_layer *l, const float *h, size_t T, float *out)
{
    const hubert_config *c = &s->m->cfg;
    size_t H = (size_t)c->hidden, nh = (size_t)c->n_heads, dh = H / nh;
    float scale = 1.0f / sqrtf((float)dh);
    // (T, 3H): q | k | v, as three products on the mapped weights into one buffer (ldc 3H):
    // a fused (3H, H) copy would cost 3 H^2 floats per layer per rank (85 MB for HuBERT-base)
    // and gives the same bits (each element is the same K-ordered dot plus its bias).
    const float *w3[3] = {l->q_w, l->k_w, l->v_w}, *b3[3] = {l->q_b, l->k_b, l->v_b};
    for (size_t t = 0; t < T; t++)
        for (int j = 0; j < 3; j++)
            memcpy(s->qkv + t * 3 * H + (size_t)j * H, b3[j], H * sizeof(float));
    for (int j = 0; j < 3; j++)
        ops_matmul(OPS_N, OPS_T, T, H, H, 1.0f, h, H, w3[j], H, 1.0f, s->qkv + (size_t)j * H,
                   3 * H);
    for (size_t hd = 0; hd < nh; hd++) {
        const float *q = s->qkv + hd * dh, *k = s->qkv + H + hd * dh, *v = s->qkv + 2 * H + hd * dh;
        ops_matmul(OPS_N, OPS_T, T, T, dh, scale, q, 3 * H, k, 3 * H, 0.0f, s->sc, T);
        kern_softmax_rows_unnorm(s->sc, T, T, s->rinv);
        ops_matmul(OPS_N, OPS_N, T, dh, T, 1.0f, s->sc, T, v, 3 * H, 0.0f, s->ctx + hd * dh, H);
        kern_scale_rows(s->ctx + hd * dh, T, dh, H, s->rinv);
    }
    ops_linear(s->ctx, T, H, l->o_w, l->o_b, H, out);
}

static void feed_forward(hubert_state *s, const enc_layer *l, const float *h, size_t T, float *out)
{
    const hubert_config *c = &s->m->cfg;
    size_t H = (size_t)c->hidden, F = (size_t)c->ffn;
    ops_linear(h, T, H, l->ff1_w, l->ff1_b, F, s->ff);
    kern_gelu(s->ff, s->ff, T * F);
    ops_linear(s->ff, T, F, l->ff2_w, l->ff2_b, H, out);
}

int hubert_run(hubert_state *s, const float *pcm, size_t n, hubert_tap tap, int layer,
               int final_norm, const float **out, size_t *n_frames, size_t *dim, sl_err *err)
{
    *out = NULL;
    *n_frames = 0;
    *dim = 0;
    const hubert_model *m = s->m;
    const hubert_config *c = &m->cfg;
    if (tap == HUBERT_TAP_LAYER && (layer < 0 || layer > c->n_layers))
        return sl_fail(err, SL_EINVAL, "hubert: layer %d out of range 0..%d", layer, c->n_layers);
    size_t T = hubert_n_frames(m, n);
    if (T == 0)
        return sl_fail(err, SL_EFORMAT, "hubert: %zu samples are too short for one frame (need "
                       "%zu)", n, hubert_min_samples(m));
    int rc = hubert_state_reserve(s, n, err);
    if (rc)
        return rc;
    if (c->do_normalize) { // ref: Wav2Vec2FeatureExtractor zero_mean_unit_var_norm, eps 1e-7
        double sum = 0.0, sq = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += (double)pcm[i];
        double mu = sum / (double)n;
        for (size_t i = 0; i < n; i++)
            sq += ((double)pcm[i] - mu) * ((double)pcm[i] - mu);
        double inv = 1.0 / sqrt(sq / (double)n + 1e-7);
        for (size_t i = 0; i < n; i++)
            s->pcm[i] = (float)(((double)pcm[i] - mu) * inv);
        pcm = s->pcm;
    }
    size_t H = (size_t)c->hidden, C = (size_t)c->conv_dim[c->n_conv - 1];
    float *feat = conv_stack(s, pcm, n); // (T, C)
    if (tap == HUBERT_TAP_CONV) {
        *out = feat;
        *n_frames = T;
        *dim = C;
        return SL_OK;
    }
    const float *pin = feat;
    if (m->fp_ln_g) {
        kern_layer_norm(feat, NULL, T, C, m->fp_ln_g, m->fp_ln_b, c->ln_eps, 0, s->h);
        pin = s->h;
    }
    ops_linear(pin, T, C, m->fp_w, m->fp_b, H, s->x);
    *n_frames = T;
    *dim = H;
    if (tap == HUBERT_TAP_PROJECTED) {
        *out = s->x;
        return SL_OK;
    }
    pos_conv(s, T);
    if (!c->stable_layer_norm)
        kern_layer_norm(s->x, NULL, T, H, m->enc_ln_g, m->enc_ln_b, c->ln_eps, 0, s->x);
    for (int i = 0; i < layer; i++) {
        const enc_layer *l = &m->layers[i];
        if (!c->stable_layer_norm) { // post-LN: x = LN1(x + Attn(x)); x = LN2(x + FFN(x))
            attention(s, l, s->x, T, s->h);
            kern_layer_norm(s->x, s->h, T, H, l->ln1_g, l->ln1_b, c->ln_eps, 0, s->x);
            feed_forward(s, l, s->x, T, s->h);
            kern_layer_norm(s->x, s->h, T, H, l->ln2_g, l->ln2_b, c->ln_eps, 0, s->x);
        } else { // pre-LN: x = x + Attn(LN1(x)); x = x + FFN(LN2(x))
            kern_layer_norm(s->x, NULL, T, H, l->ln1_g, l->ln1_b, c->ln_eps, 0, s->h);
            attention(s, l, s->h, T, s->out);
            kern_add(s->x, s->out, T * H);
            kern_layer_norm(s->x, NULL, T, H, l->ln2_g, l->ln2_b, c->ln_eps, 0, s->h);
            feed_forward(s, l, s->h, T, s->out);
            kern_add(s->x, s->out, T * H);
        }
    }
    if (final_norm && c->stable_layer_norm) {
        kern_layer_norm(s->x, NULL, T, H, m->enc_ln_g, m->enc_ln_b, c->ln_eps, 0, s->out);
        *out = s->out;
    } else {
        *out = s->x;
    }
    return SL_OK;
}

int hubert_forward(hubert_state *s, const float *pcm, size_t n, int layer, int final_norm,
                   const float **out, size_t *n_frames, size_t *dim, sl_err *err)
{
    return hubert_run(s, pcm, n, HUBERT_TAP_LAYER, layer, final_norm, out, n_frames, dim, err);
}
