// common/sha256.c — see sha256.h.
#include "common/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *md, char hex[SL_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

void sl_sha256_hex(const void *data, size_t n, char hex[SL_SHA256_HEX])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    to_hex(md, hex);
}

int sl_sha256_file(const char *path, char hex[SL_SHA256_HEX], sl_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_fail(err, SL_EIO, "%s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1u << 20);
    int rc = SL_OK;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        rc = sl_fail(err, SL_ENOMEM, "%s: cannot start sha256", path);
        goto done;
    }
    size_t r;
    while ((r = fread(buf, 1, 1u << 20, f)) > 0)
        EVP_DigestUpdate(ctx, buf, r);
    if (ferror(f)) {
        rc = sl_fail(err, SL_EIO, "%s: read error", path);
        goto done;
    }
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    to_hex(md, hex);
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}
