// tests/unit/test_provenance.c — the converters' source records read back from
// safetensors __metadata__ (wts_metadata, cli/provenance.c compiled in), and
// `spearlabel stat` (SL_BIN) showing them beside the fingerprints of a dataset whose meta
// this test writes with the pairs cli_prov_collect() returns.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/provenance.h"
#include "pipeline/weights.h"
#include "storage/store.h"
#include "tests/testutil.h"

#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

// A one-tensor safetensors file with the given __metadata__ members (JSON text, may be "").
static void write_st(const char *path, const char *meta_members)
{
    char h[2048];
    int n = snprintf(h, sizeof h, "{%s%s%s\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[0,8]}}", meta_members[0] ? "\"__metadata__\":{" : "",
                     meta_members, meta_members[0] ? "}," : "");
    while (n % 8)
        h[n++] = ' ';
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint64_t len = (uint64_t)n;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    float w[2] = {1.0f, 2.0f};
    fwrite(le, 1, 8, f);
    fwrite(h, 1, (size_t)n, f);
    fwrite(w, sizeof w[0], 2, f);
    fclose(f);
}

static const char *join(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static void test_metadata_accessor(void)
{
    const char *dir = sl_test_tmpdir("prov_meta");
    char p[4096];
    write_st(join(p, sizeof p, dir, "a.safetensors"),
             "\"format\":\"pt\",\"source_name\":\"speech2text.pt\",\"source_sha256\":\"" HEX_A "\"");
    wts_file *w;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(wts_open(&w, p, &e), SL_OK);
    CU_ASSERT_STRING_EQUAL(wts_metadata(w, "source_name"), "speech2text.pt");
    CU_ASSERT_STRING_EQUAL(wts_metadata(w, "source_sha256"), HEX_A);
    CU_ASSERT_STRING_EQUAL(wts_metadata(w, "format"), "pt");
    CU_ASSERT_PTR_NULL(wts_metadata(w, "converter"));
    wts_close(w);
    sl_test_rmtree(dir);
}

static void test_of_file(void)
{
    const char *dir = sl_test_tmpdir("prov_file");
    char p[4096], val[640];
    int found = -1;
    sl_err e;
    write_st(join(p, sizeof p, dir, "ok.safetensors"),
             "\"source_name\":\"km.bin\",\"source_sha256\":\"" HEX_A "\","
             "\"converter\":\"spearlabel tools/convert_kmeans.py\"");
    CU_ASSERT_EQUAL(cli_prov_of_file(p, val, sizeof val, &found, &e), SL_OK);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_STRING_EQUAL(val, "km.bin sha256:" HEX_A " (spearlabel tools/convert_kmeans.py)");
    // No source recorded: nothing found, no error.
    write_st(join(p, sizeof p, dir, "plain.safetensors"), "\"format\":\"pt\"");
    CU_ASSERT_EQUAL(cli_prov_of_file(p, val, sizeof val, &found, &e), SL_OK);
    CU_ASSERT_EQUAL(found, 0);
    write_st(join(p, sizeof p, dir, "none.safetensors"), "");
    CU_ASSERT_EQUAL(cli_prov_of_file(p, val, sizeof val, &found, &e), SL_OK);
    CU_ASSERT_EQUAL(found, 0);
    // A name with a newline stays one line; a converter that did not say is said so.
    write_st(join(p, sizeof p, dir, "nl.safetensors"),
             "\"source_name\":\"a\\nb.pt\",\"source_sha256\":\"" HEX_A "\"");
    CU_ASSERT_EQUAL(cli_prov_of_file(p, val, sizeof val, &found, &e), SL_OK);
    CU_ASSERT_STRING_EQUAL(val, "a?b.pt sha256:" HEX_A " (converter unknown)");
    // A digest that is not one: refused, naming the file.
    write_st(join(p, sizeof p, dir, "bad.safetensors"),
             "\"source_name\":\"x.pt\",\"source_sha256\":\"12ab\"");
    CU_ASSERT_EQUAL(cli_prov_of_file(p, val, sizeof val, &found, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "bad.safetensors"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "source_sha256"));
    CU_ASSERT_EQUAL(found, 0);
    // Not a safetensors file: wts_open's error.
    CU_ASSERT_NOT_EQUAL(cli_prov_of_file(join(p, sizeof p, dir, "absent.safetensors"), val,
                                         sizeof val, &found, &e), SL_OK);
    sl_test_rmtree(dir);
}

// hubert DIR/model.safetensors and s2t with sources, k-means as .npy (no pair) or
// .safetensors with a source.
static void make_models(const char *dir, char *hub, char *km_npy, char *km_st, char *s2t)
{
    sprintf(hub, "%s/hubert", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(hub, 0755), 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", hub);
    write_st(p, "\"source_name\":\"hubert_base_ls960.pt\",\"source_sha256\":\"" HEX_A "\","
                "\"converter\":\"spearlabel tools/convert_hubert.py\"");
    sprintf(km_npy, "%s/km.npy", dir);
    FILE *f = fopen(km_npy, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f); // never opened: a .npy has no metadata
    sprintf(km_st, "%s/km.safetensors", dir);
    write_st(km_st, "\"source_name\":\"km500.bin\",\"source_sha256\":\"" HEX_B "\","
                    "\"converter\":\"spearlabel tools/convert_kmeans.py\"");
    sprintf(s2t, "%s/s2t.safetensors", dir);
    write_st(s2t, "\"source_name\":\"speech2text.pt\",\"source_sha256\":\"" HEX_B "\","
                  "\"converter\":\"spearlabel tools/convert_spear.py\"");
}

static void test_collect(void)
{
    const char *dir = sl_test_tmpdir("prov_collect");
    char hub[4096], km_npy[4096], km_st[4096], s2t[4096];
    make_models(dir, hub, km_npy, km_st, s2t);
    cli_prov p;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(cli_prov_collect(&p, hub, km_npy, s2t, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(p.n_pairs, 2);
    CU_ASSERT_STRING_EQUAL(p.kv[0], "origin/hubert");
    CU_ASSERT_STRING_EQUAL(p.kv[1], "hubert_base_ls960.pt sha256:" HEX_A
                                    " (spearlabel tools/convert_hubert.py)");
    CU_ASSERT_STRING_EQUAL(p.kv[2], "origin/s2t");
    CU_ASSERT_STRING_EQUAL(p.kv[3], "speech2text.pt sha256:" HEX_B
                                    " (spearlabel tools/convert_spear.py)");
    CU_ASSERT_EQUAL_FATAL(cli_prov_collect(&p, hub, km_st, s2t, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(p.n_pairs, 3);
    CU_ASSERT_STRING_EQUAL(p.kv[2], "origin/kmeans");
    CU_ASSERT_STRING_EQUAL(p.kv[3], "km500.bin sha256:" HEX_B
                                    " (spearlabel tools/convert_kmeans.py)");
    // Models a run does not use (MFCC features, the null pipeline): NULL.
    CU_ASSERT_EQUAL_FATAL(cli_prov_collect(&p, NULL, NULL, s2t, &e), SL_OK);
    CU_ASSERT_EQUAL(p.n_pairs, 1);
    CU_ASSERT_EQUAL_FATAL(cli_prov_collect(&p, NULL, NULL, NULL, &e), SL_OK);
    CU_ASSERT_EQUAL(p.n_pairs, 0);
    // A model file that cannot be read: its error, no pairs.
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    CU_ASSERT_NOT_EQUAL(cli_prov_collect(&p, missing, km_npy, s2t, &e), SL_OK);
    CU_ASSERT_EQUAL(p.n_pairs, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "nope/model.safetensors"));
    sl_test_rmtree(dir);
}

// The meta a run records (fingerprints + the pairs), then `spearlabel stat` on it.
static void test_stat_shows_origin(void)
{
    const char *bin = getenv("SL_BIN");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bin);
    const char *dir = sl_test_tmpdir("prov_stat");
    char hub[4096], km_npy[4096], km_st[4096], s2t[4096], db[4200];
    make_models(dir, hub, km_npy, km_st, s2t);
    cli_prov p;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(cli_prov_collect(&p, hub, km_npy, s2t, &e), SL_OK);
    snprintf(db, sizeof db, "%s/db", dir);
    store_params sp = store_default_params();
    sp.no_sync = 1;
    store *s;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, db, STORE_WRITE, sp, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_meta(s, "fp/hubert", HEX_B, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_meta(s, "fp/kmeans", HEX_B, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_meta(s, "fp/s2t", HEX_A, &e), SL_OK);
    for (size_t i = 0; i < p.n_pairs; i++)
        CU_ASSERT_EQUAL(store_put_meta(s, p.kv[2 * i], p.kv[2 * i + 1], &e), SL_OK);
    // An origin without its fingerprint is printed as it is.
    CU_ASSERT_EQUAL(store_put_meta(s, "origin/extra", "x.pt sha256:" HEX_A " (c)", &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(store_commit(s, &e), SL_OK);
    store_close(s);
    char cmd[8600], out[16384];
    snprintf(cmd, sizeof cmd, "'%s' stat '%s'", bin, db);
    FILE *f = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    CU_ASSERT_EQUAL(pclose(f), 0);
    char want[1200];
    snprintf(want, sizeof want, "  %-24s %s\n  %-24s from hubert_base_ls960.pt sha256:" HEX_A
             " (spearlabel tools/convert_hubert.py)\n  %-24s %s\n  %-24s %s\n  %-24s from "
             "speech2text.pt sha256:" HEX_B " (spearlabel tools/convert_spear.py)\n",
             "fp/hubert", HEX_B, "", "fp/kmeans", HEX_B, "fp/s2t", HEX_A, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
    if (!strstr(out, want))
        fprintf(stderr, "stat printed:\n%s\nwanted:\n%s", out, want);
    CU_ASSERT_PTR_NULL(strstr(out, "origin/s2t"));   // shown beside fp/s2t only
    CU_ASSERT_PTR_NULL(strstr(out, "origin/hubert"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "origin/extra"));
    sl_test_rmtree(dir);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"wts_metadata reads __metadata__ strings", test_metadata_accessor},
        {"cli_prov_of_file: found, absent, one printable line, bad digest", test_of_file},
        {"cli_prov_collect: origin/<model> pairs, .npy and unused models skipped", test_collect},
        {"spearlabel stat shows the origin beside each fingerprint", test_stat_shows_origin},
        {NULL, NULL},
    };
    return sl_test_main("provenance", cases);
}
