// common/json.c — see json.h.
#include "common/json.h"

#include <stdio.h>
#include <string.h>

// The value of key, or NULL when absent or null ("not given").
static const json_t *given(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int fail(const sl_json_src *s, const char *key, const char *complaint, sl_err *err)
{
    return sl_fail(err, SL_EFORMAT, "%s: %s: %s\"%s\" %s", s->module, s->file, s->key_lead, key,
                   complaint);
}

static int int_value(const sl_json_src *s, const json_t *v, const char *key, int lo, int hi,
                     int *out, sl_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char c[96];
        snprintf(c, sizeof c, "is not an integer in [%d, %d]", lo, hi);
        return fail(s, key, c, err);
    }
    *out = (int)json_integer_value(v);
    return SL_OK;
}

int sl_json_int(const sl_json_src *src, const json_t *obj, const char *key, int lo, int hi,
                int dflt, int *out, sl_err *err)
{
    const json_t *v = given(obj, key);
    if (!v) {
        *out = dflt;
        return SL_OK;
    }
    return int_value(src, v, key, lo, hi, out, err);
}

int sl_json_int_required(const sl_json_src *src, const json_t *obj, const char *key, int lo,
                         int hi, int *out, sl_err *err)
{
    const json_t *v = given(obj, key);
    if (!v)
        return fail(src, key, "is missing", err);
    return int_value(src, v, key, lo, hi, out, err);
}

int sl_json_bool(const sl_json_src *src, const json_t *obj, const char *key, int dflt, int *out,
                 sl_err *err)
{
    const json_t *v = given(obj, key);
    if (!v) {
        *out = dflt;
        return SL_OK;
    }
    if (!json_is_boolean(v))
        return fail(src, key, "is not true or false", err);
    *out = json_is_true(v);
    return SL_OK;
}

int sl_json_number(const sl_json_src *src, const json_t *obj, const char *key, double dflt,
                   double *out, sl_err *err)
{
    const json_t *v = given(obj, key);
    if (!v) {
        *out = dflt;
        return SL_OK;
    }
    if (!json_is_number(v))
        return fail(src, key, "is not a number", err);
    *out = json_number_value(v);
    return SL_OK;
}

int sl_json_int_array(const sl_json_src *src, const json_t *obj, const char *key, int lo, int hi,
                      int cap, int *dst, int *n, sl_err *err)
{
    const json_t *a = given(obj, key);
    if (!a)
        return fail(src, key, "is missing", err);
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > (size_t)cap) {
        char c[96];
        snprintf(c, sizeof c, "is not an array of 1..%d integers", cap);
        return fail(src, key, c, err);
    }
    int count = (int)json_array_size(a);
    for (int i = 0; i < count; i++) {
        const json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
            return sl_fail(err, SL_EFORMAT, "%s: %s: %s\"%s\"[%d] is not an integer in [%d, %d]",
                           src->module, src->file, src->key_lead, key, i, lo, hi);
        dst[i] = (int)json_integer_value(v);
    }
    *n = count;
    return SL_OK;
}

int sl_json_choice(const sl_json_src *src, const json_t *obj, const char *key,
                   const char *const *names, int dflt, int *out, sl_err *err)
{
    const json_t *v = given(obj, key);
    if (!v) {
        *out = dflt;
        return SL_OK;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return SL_OK;
        }
    char c[256];
    size_t k = 0;
    if (s)
        k = (size_t)snprintf(c, sizeof c, "is \"%.64s\"; supported:", s);
    else
        k = (size_t)snprintf(c, sizeof c, "is not a string; supported:");
    for (int i = 0; names[i] && k < sizeof c; i++)
        k += (size_t)snprintf(c + k, sizeof c - k, "%s \"%s\"", i ? "," : "", names[i]);
    return fail(src, key, c, err);
}
