// tests/golden/test_hubert_golden.c — HuBERT and k-means against the reference goldens.
//
// Both tiny models on speech_16k.wav: conv features, projection, encoder input,
// every layer, last_hidden_state (pre-LN, --final-norm), within tolerances.h;
// k-means ids exact from the golden features and from our own features, for both
// utterances. Prints the max-abs error of every file.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/npy.h"
#include "pipeline/audio.h"
#include "pipeline/hubert.h"
#include "pipeline/kmeans.h"
#include "tests/golden/tolerances.h"
#include "tests/testutil.h"

// Decodes tests/data/<wav> (16 kHz) into a malloc'd buffer.
static float *load_wav(const char *wav, size_t *n)
{
    audio_reader *r;
    sl_err e;
    CU_ASSERT_FATAL(audio_reader_new(&r, audio_default_params(), &e) == SL_OK);
    audio_result a;
    int rc = audio_read_file(r, sl_test_data(wav), &a, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_FATAL(rc == SL_OK);
    float *pcm = malloc(a.n_samples * sizeof(float));
    memcpy(pcm, a.pcm, a.n_samples * sizeof(float));
    *n = a.n_samples;
    audio_reader_free(r);
    return pcm;
}

// Runs one tap and compares with the golden file; returns the max-abs error.
static float check(hubert_state *s, const float *pcm, size_t n, hubert_tap tap, int layer,
                   int final_norm, const char *golden, float tol)
{
    const float *out;
    size_t T, D;
    sl_err e;
    int rc = hubert_run(s, pcm, n, tap, layer, final_norm, &out, &T, &D, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_FATAL(rc == SL_OK);
    sl_npy g;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data(golden), &g, &e) == SL_OK);
    CU_ASSERT_FATAL(g.ndim == 2 && g.dtype == SL_NPY_F32);
    CU_ASSERT_EQUAL_FATAL(g.shape[0], T);
    CU_ASSERT_EQUAL_FATAL(g.shape[1], D);
    float d = sl_test_max_abs_diff(out, g.data, T * D);
    printf("\n  %-42s max|c - golden| = %.3g (atol %.2g)", golden, (double)d, (double)tol);
    CU_ASSERT(d <= tol);
    sl_npy_free(&g);
    return d;
}

static void run_model(const char *dir, int pre)
{
    char buf[256];
    sl_err e;
    hubert_model *m;
    int rc = hubert_open(&m, sl_test_data(dir), &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    CU_ASSERT_FATAL(rc == SL_OK);
    hubert_state *s;
    CU_ASSERT_FATAL(hubert_state_new(&s, m, &e) == SL_OK);
    size_t n;
    float *pcm = load_wav("speech_16k.wav", &n);
    CU_ASSERT_EQUAL(n, 46536);
    CU_ASSERT_EQUAL(hubert_n_frames(m, n), 145);
    const float tol[2][6] = {
        {TOL_POST_CONV_FEATURES, TOL_POST_PROJECTED, TOL_POST_ENCODER_INPUT, TOL_POST_FEATURES_L1,
         TOL_POST_FEATURES_L2, TOL_POST_FEATURES_L3},
        {TOL_PRE_CONV_FEATURES, TOL_PRE_PROJECTED, TOL_PRE_ENCODER_INPUT, TOL_PRE_FEATURES_L1,
         TOL_PRE_FEATURES_L2, TOL_PRE_FEATURES_L3}};
    snprintf(buf, sizeof buf, "%s/conv_features.npy", dir);
    check(s, pcm, n, HUBERT_TAP_CONV, 0, 0, buf, tol[pre][0]);
    snprintf(buf, sizeof buf, "%s/projected.npy", dir);
    check(s, pcm, n, HUBERT_TAP_PROJECTED, 0, 0, buf, tol[pre][1]);
    snprintf(buf, sizeof buf, "%s/encoder_input.npy", dir);
    check(s, pcm, n, HUBERT_TAP_LAYER, 0, 0, buf, tol[pre][2]);
    for (int L = 1; L <= 3; L++) {
        snprintf(buf, sizeof buf, "%s/features_L%d.npy", dir, L);
        check(s, pcm, n, HUBERT_TAP_LAYER, L, 0, buf, tol[pre][2 + L]);
    }
    if (pre) {
        snprintf(buf, sizeof buf, "%s/last_hidden_state.npy", dir);
        check(s, pcm, n, HUBERT_TAP_LAYER, 3, 1, buf, TOL_PRE_LAST_HIDDEN_STATE);
    } else { // post-LN has no final norm: the flag must not change layer 3
        snprintf(buf, sizeof buf, "%s/features_L3.npy", dir);
        check(s, pcm, n, HUBERT_TAP_LAYER, 3, 1, buf, TOL_POST_FEATURES_L3);
    }
    free(pcm);
    hubert_state_free(s);
    hubert_close(m);
}

static void test_post(void) { run_model("hubert_tiny_post", 0); }
static void test_pre(void) { run_model("hubert_tiny_pre", 1); }

static void check_ids(km_state *ks, const float *x, size_t T, size_t D, const char *golden_ids)
{
    sl_err e;
    sl_npy g;
    CU_ASSERT_FATAL(sl_npy_read(sl_test_data(golden_ids), &g, &e) == SL_OK);
    CU_ASSERT_FATAL(g.dtype == SL_NPY_I64 && g.ndim == 1 && g.shape[0] == T);
    int32_t *ids = malloc(T * sizeof(int32_t));
    CU_ASSERT_FATAL(km_assign(ks, x, T, D, ids, &e) == SL_OK);
    size_t diff = 0;
    for (size_t t = 0; t < T; t++)
        diff += ids[t] != ((int64_t *)g.data)[t];
    CU_ASSERT_EQUAL(diff, 0);
    free(ids);
    sl_npy_free(&g);
}

// ids from the golden features, and from our own features of both utterances.
static void test_kmeans(void)
{
    sl_err e;
    km_model *km;
    CU_ASSERT_FATAL(km_open(&km, sl_test_data("kmeans_16.npy"), NULL, &e) == SL_OK);
    CU_ASSERT_EQUAL(km_k(km), 16);
    CU_ASSERT_EQUAL(km_dim(km), 48);
    km_state *ks;
    CU_ASSERT_FATAL(km_state_new(&ks, km, &e) == SL_OK);
    const char *feats[2] = {"hubert_tiny_post/features_L2.npy",
                            "hubert_tiny_post/speech2_features_L2.npy"};
    const char *ids[2] = {"ids_L2.npy", "speech2_ids_L2.npy"};
    const char *wavs[2] = {"speech_16k.wav", "speech2_16k.wav"};
    for (int i = 0; i < 2; i++) {
        sl_npy f;
        CU_ASSERT_FATAL(sl_npy_read(sl_test_data(feats[i]), &f, &e) == SL_OK);
        check_ids(ks, f.data, f.shape[0], f.shape[1], ids[i]);
        sl_npy_free(&f);
    }
    hubert_model *m;
    CU_ASSERT_FATAL(hubert_open(&m, sl_test_data("hubert_tiny_post"), &e) == SL_OK);
    hubert_state *s;
    CU_ASSERT_FATAL(hubert_state_new(&s, m, &e) == SL_OK);
    for (int i = 0; i < 2; i++) {
        size_t n, T, D;
        float *pcm = load_wav(wavs[i], &n);
        const float *x;
        CU_ASSERT_FATAL(hubert_forward(s, pcm, n, 2, 0, &x, &T, &D, &e) == SL_OK);
        if (i == 1) {
            sl_npy g;
            CU_ASSERT_FATAL(sl_npy_read(sl_test_data(feats[1]), &g, &e) == SL_OK);
            CU_ASSERT_FATAL(g.shape[0] == T && g.shape[1] == D);
            float d = sl_test_max_abs_diff(x, g.data, T * D);
            printf("\n  %-42s max|c - golden| = %.3g (atol %.2g)", feats[1], (double)d,
                   (double)TOL_POST_SPEECH2_FEATURES_L2);
            CU_ASSERT(d <= TOL_POST_SPEECH2_FEATURES_L2);
            sl_npy_free(&g);
        }
        check_ids(ks, x, T, D, ids[i]);
        free(pcm);
    }
    hubert_state_free(s);
    hubert_close(m);
    km_state_free(ks);
    km_close(km);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"hubert_tiny_post every tap", test_post},
        {"hubert_tiny_pre every tap", test_pre},
        {"kmeans ids exact (golden and own features)", test_kmeans},
        {NULL, NULL}};
    return sl_test_main("hubert_golden", cases);
}
