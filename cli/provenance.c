// cli/provenance.c — see provenance.h. Reads the converters' source records back from the
// model files' safetensors __metadata__ for the dataset meta (origin/<model>).
#include "cli/provenance.h"

#include <stdio.h>
#include <string.h>

#include "pipeline/weights.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

// One printable line of at most cap-1 bytes (and at most 255 of the input).
static void printable(char *out, size_t cap, const char *in)
{
    size_t k = 0;
    for (size_t i = 0; in[i] && i < 255 && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        out[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[k] = '\0';
}

int cli_prov_of_file(const char *path, char *val, size_t val_cap, int *found, sl_err *err)
{
    *found = 0;
    wts_file *w;
    int rc = wts_open(&w, path, err);
    if (rc)
        return rc;
    const char *name = wts_metadata(w, "source_name");
    const char *hex = wts_metadata(w, "source_sha256");
    const char *conv = wts_metadata(w, "converter");
    if (name && hex) {
        size_t n = strlen(hex);
        int ok = n == 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f');
        if (!ok) {
            rc = sl_fail(err, SL_EFORMAT, "provenance: %s: __metadata__ source_sha256 is not "
                         "64 lowercase hex digits", path);
        } else {
            char pn[256], pc[256];
            printable(pn, sizeof pn, name);
            printable(pc, sizeof pc, conv ? conv : "converter unknown");
            snprintf(val, val_cap, "%s sha256:%s (%s)", pn, hex, pc);
            *found = 1;
        }
    }
    wts_close(w);
    return rc;
}

int cli_prov_collect(cli_prov *p, const char *hubert_dir, const char *kmeans, const char *s2t,
                     sl_err *err)
{
    memset(p, 0, sizeof *p);
    char hub[4200];
    if (hubert_dir)
        snprintf(hub, sizeof hub, "%s/model.safetensors", hubert_dir);
    const struct {
        const char *key, *path;
    } models[CLI_PROV_MAX] = {
        {"origin/hubert", hubert_dir ? hub : NULL},
        {"origin/kmeans", kmeans && ends_with(kmeans, ".safetensors") ? kmeans : NULL},
        {"origin/s2t", s2t},
    };
    for (size_t i = 0; i < CLI_PROV_MAX; i++) {
        if (!models[i].path)
            continue;
        size_t k = 2 * p->n_pairs;
        int found;
        int rc = cli_prov_of_file(models[i].path, p->buf[k + 1], sizeof p->buf[k + 1], &found, err);
        if (rc) {
            p->n_pairs = 0;
            return rc;
        }
        if (!found)
            continue;
        snprintf(p->buf[k], sizeof p->buf[k], "%s", models[i].key);
        p->kv[k] = p->buf[k];
        p->kv[k + 1] = p->buf[k + 1];
        p->n_pairs++;
    }
    return SL_OK;
}
