// pipeline/vad_json.c — see vad_json.h.
#include "pipeline/vad_json.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t seg_vad_json_path(const char *audio_path, char *out, size_t cap)
{
    const char *base = strrchr(audio_path, '/');
    base = base ? base + 1 : audio_path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - audio_path) : strlen(audio_path);
    if (cap == 0)
        return 0;
    if (stem + 6 > cap) {
        out[0] = '\0';
        return 0;
    }
    memcpy(out, audio_path, stem);
    memcpy(out + stem, ".json", 6);
    return stem + 5;
}

int seg_vad_json_read(const char *json_path, seg_chunk **out, size_t *n, sl_err *err)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(json_path, "rb");
    if (!f)
        return sl_fail(err, SL_EIO, "vad: %s: %s", json_path, strerror(errno));
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root)
        return sl_fail(err, SL_EFORMAT, "vad: %s: not JSON: line %d: %s", json_path, je.line,
                       je.text);
    int rc = SL_OK;
    seg_chunk *c = NULL;
    json_t *va = json_is_object(root) ? json_object_get(root, "voice_activity") : NULL;
    if (!json_is_object(root)) {
        rc = sl_fail(err, SL_EFORMAT, "vad: %s: not a JSON object", json_path);
        goto done;
    }
    if (!va) {
        rc = sl_fail(err, SL_EFORMAT, "vad: %s: no \"voice_activity\"", json_path);
        goto done;
    }
    if (!json_is_array(va)) {
        rc = sl_fail(err, SL_EFORMAT, "vad: %s: \"voice_activity\" is not a list", json_path);
        goto done;
    }
    size_t k = json_array_size(va);
    if (k > 0 && !(c = malloc(k * sizeof *c))) {
        rc = sl_fail(err, SL_ENOMEM, "vad: %s: out of memory for %zu chunks", json_path, k);
        goto done;
    }
    double prev = 0.0;
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_array_get(va, i);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_number(json_array_get(e, 0)) ||
            !json_is_number(json_array_get(e, 1))) {
            rc = sl_fail(err, SL_EFORMAT, "vad: %s: voice_activity[%zu] is not a [start, end] "
                         "pair of numbers", json_path, i);
            goto done;
        }
        double a = json_number_value(json_array_get(e, 0));
        double b = json_number_value(json_array_get(e, 1));
        if (!isfinite(a) || !isfinite(b) || a < 0.0 || b < a || a > 1e9) {
            rc = sl_fail(err, SL_EFORMAT, "vad: %s: voice_activity[%zu] = [%g, %g] is not a "
                         "finite [start, end] with 0 <= start <= end", json_path, i, a, b);
            goto done;
        }
        if (a < prev) {
            rc = sl_fail(err, SL_EFORMAT, "vad: %s: voice_activity[%zu] = [%g, %g] starts before "
                         "the previous end %g (chunks must be sorted and disjoint)", json_path, i,
                         a, b, prev);
            goto done;
        }
        prev = b;
        c[i] = (seg_chunk){a, b};
    }
    *out = c;
    *n = k;
    c = NULL;
done:
    free(c);
    json_decref(root);
    return rc;
}
