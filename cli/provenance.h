// cli/provenance.h — where the models of a run came from, as their converters recorded it.
//
// tools/convert_hubert.py, convert_kmeans.py and convert_spear.py write the name and sha256
// of the file they converted into the safetensors __metadata__ of what they produce
// ("source_name", "source_sha256", "converter"). cli_prov_collect() reads them back from a
// run's model files and returns dataset meta pairs
//   "origin/hubert" | "origin/kmeans" | "origin/s2t" =
//   "<source_name> sha256:<64 hex> (<converter>)"
// which `spearlabel stat` shows beside fp/<name>. ("origin/", not "source/": regenerate's
// source/fp/* already holds the fingerprints of the dataset it read.) A model without that
// metadata (a .npy, a directory downloaded with its model.safetensors, km-fit's output)
// contributes no pair.
//
// Pass a NULL path for a model the run does not use. Pointers in p->kv point into p and live
// as long as it; nothing to free. Errors: SL_EIO / SL_EFORMAT from opening a model file
// (wts_open's message), SL_EFORMAT when source_sha256 is not 64 hex digits; on error
// p->n_pairs is 0.
#pragma once
#include <stddef.h>

#include "common/err.h"

#define CLI_PROV_MAX 3

typedef struct cli_prov {
    const char *kv[2 * CLI_PROV_MAX]; // key, value, key, value, ... (n_pairs pairs)
    size_t n_pairs;
    char buf[2 * CLI_PROV_MAX][640];
} cli_prov;

int cli_prov_collect(cli_prov *p, const char *hubert_dir, const char *kmeans, const char *s2t,
                     sl_err *err);

// The pair for one safetensors file: *found = 0 when it records no source. val gets
// "<source_name> sha256:<hex> (<converter>)"; names are cut at 255 bytes and control
// characters become '?', so the value is one printable line.
int cli_prov_of_file(const char *path, char *val, size_t val_cap, int *found, sl_err *err);
