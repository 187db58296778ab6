// tests/integration/sl_mkdata.c — test tool: writes a deterministic dataset
// through storage/ so that third-party readers (Python lmdb + numpy) and the
// CLI can be checked against the same formula, reimplemented in the tests.
//   sl_mkdata DIR N_ROWS N_ERRORS
// Row i: key "utt/%06d.wav", n_semantic = 20 + i % 30, semantic[k] = (i*7 + k) % 500,
// n_text = 5 + i % 11, text[k] = (i + 3*k) % 256, duration = 0.25 * (1 + i % 40),
// score = -0.5 * (i % 9), flags = i % 3 == 0 ? REC_FLAG_MAXLEN : 0.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/row.h"
#include "storage/store.h"

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
    if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "quality"))) {
        fprintf(stderr, "usage: sl_mkdata DIR N_ROWS N_ERRORS [quality]\n");
        return 2;
    }
    int n_rows = atoi(argv[2]), n_err = atoi(argv[3]), varied = argc == 5;
    store_params p = store_default_params();
    p.initial_map_bytes = 64u << 10;
    store *s;
    sl_err e;
    if (store_open(&s, argv[1], STORE_WRITE, p, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    unsigned char buf[4096];
    char key[64];
    for (int i = 0; i < n_rows; i++) {
        int32_t sem[64], txt[64];
        rec_header h = {.n_semantic = (uint32_t)(20 + i % 30), .n_text = (uint32_t)(5 + i % 11),
                        .duration_s = 0.25f * (float)(1 + i % 40), .score = -0.5f * (float)(i % 9),
                        .flags = i % 3 == 0 ? REC_FLAG_MAXLEN : 0};
        if (varied) {
            h.flags = (uint16_t)((i % 7 == 0 ? REC_FLAG_MAXLEN : 0) |
                                 (i % 11 == 3 ? REC_FLAG_LOOP : 0) |
                                 (i % 5 == 4 ? REC_FLAG_SEED_EOS : 0));
            int seed = (h.flags & REC_FLAG_SEED_EOS) != 0, eos = !(h.flags & REC_FLAG_MAXLEN);
            h.n_text = (uint32_t)((i % 13 == 0 ? 0 : 3 + (i * 7) % 60) + (seed && eos));
            h.n_semantic = (uint32_t)(20 + i % 30 + seed);
            h.duration_s = i % 17 == 0 ? 0.0f : 0.1f * (float)(1 + (i * 13) % 61);
            h.score = -0.01f * (float)((i * 31) % 97) * (float)(1 + i % 9);
        }
        for (uint32_t k = 0; k < h.n_semantic; k++)
            sem[k] = (int32_t)((i * 7 + (int)k) % 500);
        for (uint32_t k = 0; k < h.n_text; k++)
            txt[k] = (int32_t)((i + 3 * (int)k) % 256);
        long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
        int kn = snprintf(key, sizeof key, "utt/%06d.wav", i);
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
