// common/sha256.h — SHA-256 fingerprints (libcrypto's EVP interface), used
// for model files, options and manifests recorded in a dataset's meta.
#pragma once
#include <stddef.h>

#include "common/err.h"

#define SL_SHA256_HEX 65 // 64 hex digits + NUL

// hex receives 64 lowercase hex digits and a NUL.
void sl_sha256_hex(const void *data, size_t n, char hex[SL_SHA256_HEX]);
// Streams the file in 1 MiB blocks: constant memory for multi-GB checkpoints.
int sl_sha256_file(const char *path, char hex[SL_SHA256_HEX], sl_err *err);
