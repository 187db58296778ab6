// tests/unit/test_tokens.c — tokens pipeline (audio -> HuBERT -> k-means), loader
// variants and refusals, k-means ties and safetensors centroids.
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/fileio.h"
#include "common/npy.h"
#include "pipeline/audio.h"
#include "pipeline/hubert.h"
#include "pipeline/kmeans.h"
#include "pipeline/tokens.h"
#include "tests/golden/tolerances.h"
#include "tests/testutil.h"

static char tmp[4000];

static int64_t *golden_ids(const char *name, size_t *n)
{
    sl_npy g;
    sl_err e;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data(name), &g, &e) == SL_OK);
    *n = g.shape[0];
    return g.data;
}

// The 22,050 Hz recording, resampled by us (soxr HQ), against the 16 kHz golden
// (resampled by sox): same tokens; prints how close the features are.
static void test_22050(void)
{
    sl_err e;
    char dir[4200], km[4200];
    snprintf(dir, sizeof dir, "%s", sl_test_data("hubert_tiny_post"));
    snprintf(km, sizeof km, "%s", sl_test_data("kmeans_16.npy"));
    tok_pipeline *p;
    CU_ASSERT_FATAL(tok_pipeline_open(&p, dir, 2, 0, km, audio_default_params(), &e) == SL_OK);
    tok_state *s;
    CU_ASSERT_FATAL(tok_state_new(&s, p, &e) == SL_OK);
    const int32_t *ids;
    size_t n, ng;
    float dur;
    int rc = tok_run(p, s, sl_test_data("speech_22050.wav"), &ids, &n, &dur, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_FATAL(rc == SL_OK);
    int64_t *g = golden_ids("ids_L2.npy", &ng);
    CU_ASSERT_EQUAL_FATAL(n, ng);
    size_t diff = 0;
    for (size_t t = 0; t < n; t++)
        diff += ids[t] != g[t];
    CU_ASSERT_EQUAL(diff, 0);
    CU_ASSERT(dur > 2.90f && dur < 2.92f);
    // The samples the run read at 16 kHz (what a row's end is): soxr's length, not the
    // duration's round(2.909 * 16000) = 46544; 0 after a file that cannot be read.
    CU_ASSERT_EQUAL(tok_last_samples(s), 46536);
    CU_ASSERT_NOT_EQUAL(tok_run(p, s, "/nonexistent/x.wav", &ids, &n, &dur, &e), SL_OK);
    CU_ASSERT_EQUAL(tok_last_samples(s), 0);
    free(g);

    // Features: ours from 22050 Hz vs golden features_L2 (from sox's 16 kHz file).
    hubert_model *m;
    hubert_state *hs;
    audio_reader *r;
    CU_ASSERT_FATAL(hubert_open(&m, dir, &e) == SL_OK);
    CU_ASSERT_FATAL(hubert_state_new(&hs, m, &e) == SL_OK);
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_result a;
    CU_ASSERT_FATAL(audio_read_file(r, sl_test_data("speech_22050.wav"), &a, &e) == SL_OK);
    CU_ASSERT_EQUAL(a.n_samples, 46536);
    const float *x;
    size_t T, D;
    CU_ASSERT_FATAL(hubert_forward(hs, a.pcm, a.n_samples, 2, 0, &x, &T, &D, &e) == SL_OK);
    sl_npy f;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data("hubert_tiny_post/features_L2.npy"), &f, &e) == 0);
    CU_ASSERT_FATAL(f.shape[0] == T && f.shape[1] == D);
    double num = 0, den = 0;
    for (size_t i = 0; i < T * D; i++) {
        double d = (double)x[i] - (double)((float *)f.data)[i];
        num += d * d;
        den += (double)((float *)f.data)[i] * (double)((float *)f.data)[i];
    }
    float mx = sl_test_max_abs_diff(x, f.data, T * D);
    printf("\n  22050 Hz via soxr vs 16 kHz golden, features_L2: max abs %.4g, rel RMS %.3g "
           "(max|x| 3.88)", (double)mx, sqrt(num / den));
    CU_ASSERT(sqrt(num / den) < 0.05); // same speech, slightly different resampler
    // Waveforms: soxr HQ vs sox's default `rate`.
    float *pcm = malloc(a.n_samples * sizeof(float));
    memcpy(pcm, a.pcm, a.n_samples * sizeof(float));
    CU_ASSERT_FATAL(audio_read_file(r, sl_test_data("speech_16k.wav"), &a, &e) == SL_OK);
    printf("\n  waveform max abs difference: %.3g", (double)sl_test_max_abs_diff(pcm, a.pcm, a.n_samples));
    free(pcm);
    sl_npy_free(&f);
    audio_reader_free(r);
    hubert_state_free(hs);
    hubert_close(m);
    tok_state_free(s);
    tok_pipeline_close(p);
}

// A piece (tok_run_range, tok_features_run_range) gives exactly what the same samples cut
// out as their own file (sox trim by samples) give, and its duration is the piece's.
static void test_range_is_its_own_file(void)
{
    sl_err e;
    char dir[4200], km[4200], src[4200], cut[4300];
    snprintf(dir, sizeof dir, "%s", sl_test_data("hubert_tiny_post"));
    snprintf(km, sizeof km, "%s", sl_test_data("kmeans_16.npy"));
    snprintf(src, sizeof src, "%s", sl_test_data("speech_16k.wav"));
    snprintf(cut, sizeof cut, "%s/cut.wav", tmp);
    CU_ASSERT_FATAL(sl_test_sh("sox '%s' '%s' trim 8000s 24321s", src, cut) == 0);
    tok_pipeline *p;
    CU_ASSERT_FATAL(tok_pipeline_open(&p, dir, 2, 0, km, audio_default_params(), &e) == SL_OK);
    tok_state *s;
    CU_ASSERT_FATAL(tok_state_new(&s, p, &e) == SL_OK);
    const int32_t *ids;
    size_t n_cut, n_piece;
    float d_cut, d_piece;
    CU_ASSERT_FATAL(tok_run(p, s, cut, &ids, &n_cut, &d_cut, &e) == SL_OK);
    int32_t *want = malloc(n_cut * sizeof(int32_t));
    memcpy(want, ids, n_cut * sizeof(int32_t));
    CU_ASSERT_FATAL(tok_run_range(p, s, src, 8000, 32321, &ids, &n_piece, &d_piece, &e) == SL_OK);
    CU_ASSERT_EQUAL_FATAL(n_piece, n_cut);
    CU_ASSERT(memcmp(want, ids, n_cut * sizeof(int32_t)) == 0);
    CU_ASSERT(d_piece == d_cut && d_cut == (float)(24321.0 / 16000.0));
    const float *f;
    size_t T, D, T2, D2;
    CU_ASSERT_FATAL(tok_features_run(p, s, cut, &f, &T, &D, NULL, &e) == SL_OK);
    float *fw = malloc(T * D * sizeof(float));
    memcpy(fw, f, T * D * sizeof(float));
    CU_ASSERT_FATAL(tok_features_run_range(p, s, src, 8000, 32321, &f, &T2, &D2, NULL, &e) ==
                    SL_OK);
    CU_ASSERT(T2 == T && D2 == D && memcmp(fw, f, T * D * sizeof(float)) == 0);
    // A piece past the end fails in the audio stage, naming the file.
    CU_ASSERT(tok_run_range(p, s, src, 40000, 50000, &ids, &n_piece, &d_piece, &e) == SL_EFORMAT);
    CU_ASSERT_EQUAL(tok_failed_stage(s), SL_STAGE_AUDIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "ends past the end of the file"));
    free(want);
    free(fw);
    tok_state_free(s);
    tok_pipeline_close(p);
}

// Same file twice in one process (with another in between): identical bytes.
static void test_twice(void)
{
    sl_err e;
    char dir[4200], km[4200], a[4200], b[4200];
    snprintf(dir, sizeof dir, "%s", sl_test_data("hubert_tiny_pre"));
    snprintf(km, sizeof km, "%s", sl_test_data("kmeans_16.npy"));
    snprintf(a, sizeof a, "%s", sl_test_data("speech_16k.wav"));
    snprintf(b, sizeof b, "%s", sl_test_data("speech2_16k.wav"));
    tok_pipeline *p;
    CU_ASSERT_FATAL(tok_pipeline_open(&p, dir, 3, 1, km, audio_default_params(), &e) == SL_OK);
    tok_state *s;
    CU_ASSERT_FATAL(tok_state_new(&s, p, &e) == SL_OK);
    const int32_t *ids;
    size_t n1, n2, n3;
    float d;
    CU_ASSERT_FATAL(tok_run(p, s, a, &ids, &n1, &d, &e) == SL_OK);
    int32_t *first = malloc(n1 * sizeof(int32_t));
    memcpy(first, ids, n1 * sizeof(int32_t));
    CU_ASSERT_FATAL(tok_run(p, s, b, &ids, &n2, &d, &e) == SL_OK);
    CU_ASSERT_FATAL(tok_run(p, s, a, &ids, &n3, &d, &e) == SL_OK);
    CU_ASSERT_EQUAL_FATAL(n1, n3);
    CU_ASSERT(memcmp(first, ids, n1 * sizeof(int32_t)) == 0);
    free(first);
    // Features, byte for byte.
    hubert_model *m;
    hubert_state *hs;
    audio_reader *r;
    CU_ASSERT_FATAL(hubert_open(&m, dir, &e) == SL_OK);
    CU_ASSERT_FATAL(hubert_state_new(&hs, m, &e) == SL_OK);
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_result au;
    CU_ASSERT_FATAL(audio_read_file(r, a, &au, &e) == SL_OK);
    const float *x;
    size_t T, D;
    CU_ASSERT_FATAL(hubert_forward(hs, au.pcm, au.n_samples, 2, 0, &x, &T, &D, &e) == SL_OK);
    float *f1 = malloc(T * D * sizeof(float));
    memcpy(f1, x, T * D * sizeof(float));
    CU_ASSERT_FATAL(hubert_forward(hs, au.pcm, 30000, 3, 1, &x, &T, &D, &e) == SL_OK);
    CU_ASSERT_FATAL(hubert_forward(hs, au.pcm, au.n_samples, 2, 0, &x, &T, &D, &e) == SL_OK);
    CU_ASSERT(memcmp(f1, x, T * D * sizeof(float)) == 0);
    free(f1);
    // Errors carry their stage.
    CU_ASSERT(tok_run(p, s, "/nonexistent/x.wav", &ids, &n1, &d, &e) == SL_EIO);
    CU_ASSERT_EQUAL(tok_failed_stage(s), SL_STAGE_AUDIO);
    CU_ASSERT_PTR_NULL(ids);
    CU_ASSERT(hubert_forward(hs, au.pcm, 399, 1, 0, &x, &T, &D, &e) == SL_EFORMAT);
    CU_ASSERT(hubert_forward(hs, au.pcm, 400, 4, 0, &x, &T, &D, &e) == SL_EINVAL);
    CU_ASSERT(hubert_forward(hs, au.pcm, 400, 3, 0, &x, &T, &D, &e) == SL_OK && T == 1);
    audio_reader_free(r);
    hubert_state_free(hs);
    hubert_close(m);
    tok_state_free(s);
    tok_pipeline_close(p);
}

// tok_last_timings: per-stage seconds of the last run, 0 for stages not reached.
static void test_timings(void)
{
    sl_err e;
    char dir[4200], km[4200], a[4200];
    snprintf(dir, sizeof dir, "%s", sl_test_data("hubert_tiny_post"));
    snprintf(km, sizeof km, "%s", sl_test_data("kmeans_16.npy"));
    snprintf(a, sizeof a, "%s", sl_test_data("speech_16k.wav"));
    tok_pipeline *p;
    CU_ASSERT_FATAL(tok_pipeline_open(&p, dir, 2, 0, km, audio_default_params(), &e) == SL_OK);
    tok_state *s;
    CU_ASSERT_FATAL(tok_state_new(&s, p, &e) == SL_OK);
    double ta = -1, tf = -1, tt = -1;
    tok_last_timings(s, &ta, &tf, &tt);
    CU_ASSERT(ta == 0.0 && tf == 0.0 && tt == 0.0);
    const int32_t *ids;
    size_t n;
    float d;
    double t0 = sl_now();
    CU_ASSERT_FATAL(tok_run(p, s, a, &ids, &n, &d, &e) == SL_OK);
    double wall = sl_now() - t0;
    tok_last_timings(s, &ta, &tf, &tt);
    printf("\n  %.2f s of audio: audio %.6f s, features %.6f s, tokens %.6f s (call %.6f s)\n",
           (double)d, ta, tf, tt, wall);
    CU_ASSERT(ta > 0.0 && tf > 0.0 && tt > 0.0);
    CU_ASSERT(ta + tf + tt <= wall);
    tok_last_timings(s, NULL, NULL, NULL); // NULLs are fine
    // In memory: same stages.
    void *raw;
    size_t nb;
    CU_ASSERT_FATAL(sl_read_file(a, 1 << 26, &raw, &nb, &e) == SL_OK);
    CU_ASSERT_FATAL(tok_run_memory(p, s, raw, nb, "mem.wav", &ids, &n, &d, &e) == SL_OK);
    tok_last_timings(s, &ta, &tf, &tt);
    CU_ASSERT(ta > 0.0 && tf > 0.0 && tt > 0.0);
    // A failure in the audio stage: the later stages were not reached.
    CU_ASSERT(tok_run_memory(p, s, raw, 20, "cut.wav", &ids, &n, &d, &e) < 0);
    CU_ASSERT_EQUAL(tok_failed_stage(s), SL_STAGE_AUDIO);
    tok_last_timings(s, &ta, &tf, &tt);
    CU_ASSERT(ta >= 0.0 && tf == 0.0 && tt == 0.0);
    CU_ASSERT(tok_run(p, s, "/nonexistent/x.wav", &ids, &n, &d, &e) == SL_EIO);
    tok_last_timings(s, &ta, &tf, &tt);
    CU_ASSERT(ta >= 0.0 && tf == 0.0 && tt == 0.0);
    free(raw);
    tok_state_free(s);
    tok_pipeline_close(p);
}

// Copies golden model dir `src` to tmp/name with tensor names mapped by `rename`
// (NULL: unchanged) and config edited by `edit` (NULL: unchanged).
static const char *make_model(const char *src, const char *name,
                              void (*rename)(const char *in, char *out, size_t cap),
                              void (*edit)(json_t *cfg))
{
    static char out[4200];
    snprintf(out, sizeof out, "%s/%s", tmp, name);
    char cmd[9000], path[4300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", out);
    CU_ASSERT_FATAL(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", sl_test_data(src));
    void *raw;
    size_t nb;
    sl_err e;
    CU_ASSERT_FATAL(sl_read_file(path, 1 << 26, &raw, &nb, &e) == SL_OK);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | ((unsigned char *)raw)[i];
    json_t *h = json_loadb((char *)raw + 8, hl, 0, NULL), *h2 = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        char nk[512];
        if (rename && strcmp(k, "__metadata__"))
            rename(k, nk, sizeof nk);
        else
            snprintf(nk, sizeof nk, "%s", k);
        json_object_set(h2, nk, v);
    }
    char *js = json_dumps(h2, JSON_COMPACT);
    size_t jl = strlen(js), total = 8 + jl + (nb - 8 - hl);
    unsigned char *buf = malloc(total);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(buf + 8, js, jl);
    memcpy(buf + 8 + jl, (char *)raw + 8 + hl, nb - 8 - hl);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CU_ASSERT_FATAL(sl_write_file_atomic(path, buf, total, &e) == SL_OK);
    free(buf);
    free(js);
    json_decref(h);
    json_decref(h2);
    free(raw);
    snprintf(path, sizeof path, "%s/config.json", sl_test_data(src));
    json_t *cfg = json_load_file(path, 0, NULL);
    CU_ASSERT_FATAL(cfg != NULL);
    if (edit)
        edit(cfg);
    snprintf(path, sizeof path, "%s/config.json", out);
    CU_ASSERT_FATAL(json_dump_file(cfg, path, 0) == 0);
    json_decref(cfg);
    return out;
}

static void prefix_hubert(const char *in, char *out, size_t cap) { snprintf(out, cap, "hubert.%s", in); }

static void parametrizations(const char *in, char *out, size_t cap)
{
    const char *p = "encoder.pos_conv_embed.conv.weight_";
    if (!strncmp(in, p, strlen(p)))
        snprintf(out, cap, "encoder.pos_conv_embed.conv.parametrizations.weight.original%c",
                 in[strlen(p)] == 'g' ? '0' : '1');
    else
        snprintf(out, cap, "%s", in);
}

static void drop_k_proj(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", in, strstr(in, "layers.1.attention.k_proj.weight") ? ".x" : "");
}

// Features of layer 2 of a model dir; compares with the golden file within atol.
static void same_features(const char *dir, const char *golden, float tol)
{
    sl_err e;
    hubert_model *m;
    int rc = hubert_open(&m, dir, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_FATAL(rc == SL_OK);
    hubert_state *hs;
    audio_reader *r;
    CU_ASSERT_FATAL(hubert_state_new(&hs, m, &e) == SL_OK);
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_result a;
    CU_ASSERT_FATAL(audio_read_file(r, sl_test_data("speech_16k.wav"), &a, &e) == SL_OK);
    const float *x;
    size_t T, D;
    CU_ASSERT_FATAL(hubert_forward(hs, a.pcm, a.n_samples, 2, 0, &x, &T, &D, &e) == SL_OK);
    sl_npy f;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data(golden), &f, &e) == SL_OK);
    CU_ASSERT(f.shape[0] == T && f.shape[1] == D && sl_test_max_abs_diff(x, f.data, T * D) <= tol);
    sl_npy_free(&f);
    audio_reader_free(r);
    hubert_state_free(hs);
    hubert_close(m);
}

static void cfg_batchnorm(json_t *c) { json_object_set_new(c, "conv_pos_batch_norm", json_true()); }
static void cfg_relu(json_t *c) { json_object_set_new(c, "hidden_act", json_string("relu")); }
static void cfg_norm(json_t *c) { json_object_set_new(c, "feat_extract_norm", json_string("batch")); }
static void cfg_type(json_t *c) { json_object_set_new(c, "model_type", json_string("wav2vec2")); }
// The first conv block's limits are model properties: refused at open, not per utterance.
static void cfg_conv0_wide(json_t *c) { json_array_set_new(json_object_get(c, "conv_dim"), 0, json_integer(4097)); }
static void cfg_conv0_long(json_t *c) { json_array_set_new(json_object_get(c, "conv_kernel"), 0, json_integer(65)); }

static void expect_refused(const char *dir, const char *words)
{
    sl_err e;
    hubert_model *m = (hubert_model *)1;
    int rc = hubert_open(&m, dir, &e);
    printf("\n  refused: %s", e.msg);
    CU_ASSERT(rc != SL_OK);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, words));
}

static void test_loader(void)
{
    same_features(make_model("hubert_tiny_post", "prefixed", prefix_hubert, NULL),
                  "hubert_tiny_post/features_L2.npy", TOL_POST_FEATURES_L2);
    same_features(make_model("hubert_tiny_pre", "param", parametrizations, NULL),
                  "hubert_tiny_pre/features_L2.npy", TOL_PRE_FEATURES_L2);
    expect_refused(make_model("hubert_tiny_post", "bn", NULL, cfg_batchnorm), "conv_pos_batch_norm");
    expect_refused(make_model("hubert_tiny_post", "relu", NULL, cfg_relu), "relu");
    expect_refused(make_model("hubert_tiny_post", "norm", NULL, cfg_norm), "feat_extract_norm");
    expect_refused(make_model("hubert_tiny_post", "type", NULL, cfg_type), "model_type");
    expect_refused(make_model("hubert_tiny_post", "wide", NULL, cfg_conv0_wide),
                   "wide/config.json: conv_dim[0] = 4097");
    expect_refused(make_model("hubert_tiny_post", "long", NULL, cfg_conv0_long),
                   "long/config.json: conv_kernel[0] = 65");
    expect_refused(make_model("hubert_tiny_post", "nok", drop_k_proj, NULL),
                   "encoder.layers.1.attention.k_proj.weight");
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/none", tmp);
    expect_refused(missing, "config.json");
}

static void test_kmeans_ties_and_safetensors(void)
{
    sl_err e;
    const float c[3 * 2] = {1, 0, -1, 0, 1, 0}; // centroid 2 duplicates centroid 0
    km_model *m;
    CU_ASSERT_FATAL(km_open_memory(&m, c, 3, 2, &e) == SL_OK);
    km_state *s;
    CU_ASSERT_FATAL(km_state_new(&s, m, &e) == SL_OK);
    const float x[4 * 2] = {0, 5, 0.9f, 0.1f, -3, 0, 0, 0}; // rows 0 and 3: all tie
    int32_t ids[4];
    CU_ASSERT_FATAL(km_assign(s, x, 4, 2, ids, &e) == SL_OK);
    CU_ASSERT(ids[0] == 0 && ids[1] == 0 && ids[2] == 1 && ids[3] == 0);
    CU_ASSERT(km_assign(s, x, 4, 3, ids, &e) == SL_EFORMAT);
    km_state_free(s);
    km_close(m);
    // The same centroids from a safetensors tensor give the golden ids.
    sl_npy k;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data("kmeans_16.npy"), &k, &e) == SL_OK);
    char hdr[256], path[4300];
    int hl = snprintf(hdr, sizeof hdr, "{\"centroids\":{\"dtype\":\"F32\",\"shape\":[16,48],"
                      "\"data_offsets\":[0,%zu]}}", k.count * 4);
    size_t total = 8 + (size_t)hl + k.count * 4;
    unsigned char *buf = calloc(1, total);
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, hdr, (size_t)hl);
    memcpy(buf + 8 + hl, k.data, k.count * 4);
    snprintf(path, sizeof path, "%s/km.safetensors", tmp);
    CU_ASSERT_FATAL(sl_write_file_atomic(path, buf, total, &e) == SL_OK);
    free(buf);
    CU_ASSERT_FATAL(km_open(&m, path, "centroids", &e) == SL_OK);
    CU_ASSERT_FATAL(km_state_new(&s, m, &e) == SL_OK);
    sl_npy f;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data("hubert_tiny_post/features_L2.npy"), &f, &e) == 0);
    size_t n;
    int64_t *g = golden_ids("ids_L2.npy", &n);
    int32_t *got = malloc(n * sizeof(int32_t));
    CU_ASSERT_FATAL(km_assign(s, f.data, f.shape[0], f.shape[1], got, &e) == SL_OK);
    size_t diff = 0;
    for (size_t t = 0; t < n; t++)
        diff += got[t] != g[t];
    CU_ASSERT_EQUAL(diff, 0);
    km_model *none;
    CU_ASSERT(km_open(&none, path, "absent", &e) == SL_ENOTFOUND && none == NULL);
    free(got);
    free(g);
    sl_npy_free(&f);
    sl_npy_free(&k);
    km_state_free(s);
    km_close(m);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s", sl_test_tmpdir("tokens"));
    static const sl_test_case cases[] = {
        {"22050 Hz resampled: same tokens as the 16 kHz golden", test_22050},
        {"same file twice: identical bytes; stages", test_twice},
        {"a piece == the same samples as their own file", test_range_is_its_own_file},
        {"stage timers (tok_last_timings)", test_timings},
        {"loader: hubert. prefix, parametrizations names, refusals", test_loader},
        {"kmeans ties, dimension check, safetensors centroids", test_kmeans_ties_and_safetensors},
        {NULL, NULL}};
    int rc = sl_test_main("tokens", cases);
    sl_test_rmtree(tmp);
    return rc;
}
