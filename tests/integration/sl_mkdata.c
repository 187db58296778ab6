// tests/integration/sl_mkdata.c — test tool: writes a deterministic dataset
// through storage/ so that third-party readers (Python lmdb + numpy) and the
// CLI can be checked against the same formula, reimplemented in the tests.
//   sl_mkdata DIR N_ROWS N_ERRORS
// Row i: key "utt/%06d.wav", n_semantic = 20 + i % 30, semantic[k] = (i*7 + k) % 500,
// n_text = 5 + i % 11, text[k] = (i + 3*k) % 256, duration = 0.25 * (1 + i % 40),
// score = -0.5 * (i % 9), flags = i % 3 == 0 ? REC_FLAG_MAXLEN : 0; a whole file: no
// source, start 0, end = 4000 * (1 + i % 40) (the duration in 16 kHz samples).
//   sl_mkdata DIR N_ROWS N_ERRORS v1
// the same rows in the bytes of row format version 1 (tests/row_v1.h), as datasets
// written before segments hold them.
//   sl_mkdata DIR N_ROWS N_ERRORS segments
// the same rows as segments of three long files: key = seg_key_format of source
// "long/rec%d.flac" (i % 3), start = 16 * ((i * 1000003) % 99900000) + i % 16,
// end = start + 1 + (i * 7919) % 480000, duration = (end - start) / 16000 as f32.
// Error j: key "bad/%04d.wav", stage = 1 + j % 4, code SL_EFORMAT, attempts 1,
// message "synthetic failure %d".
//   sl_mkdata DIR N_ROWS N_ERRORS quality
// writes rows that reach every case of the quality signals (storage/quality.h) instead:
// flags = (i % 7 == 0 ? MAXLEN : 0) | (i % 11 == 3 ? LOOP : 0) | (i % 5 == 4 ? SEED_EOS : 0),
// n_text = i % 13 == 0 ? 0 : 3 + (i * 7) % 60, plus 1 (the text EOS) for a seed-layout row
// without MAXLEN; n_semantic = 20 + i % 30, plus 1 (the speech EOS) for a seed-layout row;
// duration = i % 17 == 0 ? 0 : 0.1f * (1 + (i * 13) % 61);
// score = -0.01f * ((i * 31) % 97) * (1 + i % 9); ids as above.
//   sl_mkdata DIR meta KEY VALUE
// writes one meta key into an existing dataset (a resume test sets an older fingerprint).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/row.h"
#include "storage/segkey.h"
#include "storage/store.h"
#include "tests/row_v1.h"

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[2], "meta")) {
        store *s;
        sl_err e;
        if (store_open(&s, argv[1], STORE_WRITE, store_default_params(), &e) ||
            store_put_meta(s, argv[3], argv[4], &e) || store_commit(s, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        store_close(s);
        return 0;
    }
    const char *mode = argc == 5 ? argv[4] : "";
    if (argc != 4 && !(argc == 5 && (!strcmp(mode, "quality") || !strcmp(mode, "v1") ||
                                     !strcmp(mode, "segments")))) {
        fprintf(stderr, "usage: sl_mkdata DIR N_ROWS N_ERRORS [quality|v1|segments]\n"
                        "       sl_mkdata DIR meta KEY VALUE\n");
        return 2;
    }
    int n_rows = atoi(argv[2]), n_err = atoi(argv[3]), varied = !strcmp(mode, "quality");
    int v1 = !strcmp(mode, "v1"), segments = !strcmp(mode, "segments");
    store_params p = store_default_params();
    p.initial_map_bytes = 64u << 10;
    store *s;
    sl_err e;
    if (store_open(&s, argv[1], STORE_WRITE, p, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    unsigned char buf[4096];
    char key[128];
    for (int i = 0; i < n_rows; i++) {
        int32_t sem[64], txt[64];
        rec_header h = {.n_semantic = (uint32_t)(20 + i % 30), .n_text = (uint32_t)(5 + i % 11),
                        .duration_s = 0.25f * (float)(1 + i % 40), .score = -0.5f * (float)(i % 9),
                        .flags = i % 3 == 0 ? REC_FLAG_MAXLEN : 0,
                        .end = 4000u * (uint64_t)(1 + i % 40)};
        if (varied) {
            h.flags = (uint16_t)((i % 7 == 0 ? REC_FLAG_MAXLEN : 0) |
                                 (i % 11 == 3 ? REC_FLAG_LOOP : 0) |
                                 (i % 5 == 4 ? REC_FLAG_SEED_EOS : 0));
            int seed = (h.flags & REC_FLAG_SEED_EOS) != 0, eos = !(h.flags & REC_FLAG_MAXLEN);
            h.n_text = (uint32_t)((i % 13 == 0 ? 0 : 3 + (i * 7) % 60) + (seed && eos));
            h.n_semantic = (uint32_t)(20 + i % 30 + seed);
            h.duration_s = i % 17 == 0 ? 0.0f : 0.1f * (float)(1 + (i * 13) % 61);
            h.score = -0.01f * (float)((i * 31) % 97) * (float)(1 + i % 9);
            h.end = (uint64_t)llround((double)h.duration_s * 16000);
        }
        char src[32];
        int src_n = snprintf(src, sizeof src, "long/rec%d.flac", i % 3);
        if (segments) {
            h.start = 16 * (((uint64_t)i * 1000003u) % 99900000u) + (uint64_t)(i % 16);
            h.end = h.start + 1 + ((uint64_t)i * 7919u) % 480000u;
            h.duration_s = (float)((double)(h.end - h.start) / 16000.0);
            h.source = src;
            h.source_len = (uint32_t)src_n;
        }
        for (uint32_t k = 0; k < h.n_semantic; k++)
            sem[k] = (int32_t)((i * 7 + (int)k) % 500);
        for (uint32_t k = 0; k < h.n_text; k++)
            txt[k] = (int32_t)((i + 3 * (int)k) % 256);
        long n = v1 ? (long)sl_test_row_v1(h.flags, sem, h.n_semantic, txt, h.n_text,
                                            h.duration_s, h.score, buf)
                    : rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
        int kn = segments ? (int)seg_key_format(src, (size_t)src_n, h.start, h.end, key,
                                                sizeof key)
                          : snprintf(key, sizeof key, "utt/%06d.wav", i);
        if (n < 0 || store_put_row(s, key, (size_t)kn, buf, (size_t)n, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
    }
    for (int j = 0; j < n_err; j++) {
        char msg[64];
        snprintf(msg, sizeof msg, "synthetic failure %d", j);
        long n = rec_error_encode((sl_stage)(1 + j % 4), SL_EFORMAT, 1, msg, buf, sizeof buf, &e);
        int kn = snprintf(key, sizeof key, "bad/%04d.wav", j);
        if (n < 0 || store_put_error(s, key, (size_t)kn, buf, (size_t)n, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
    }
    if (store_put_meta(s, "run/000001", "{\"note\": \"sl_mkdata\"}", &e) || store_commit(s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    store_close(s);
    return 0;
}
