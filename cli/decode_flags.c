// cli/decode_flags.c — see decode_flags.h.
#include "cli/decode_flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

const struct option DECODE_FLAG_OPTIONS[] = {
    {"greedy", no_argument, 0, DF_GREEDY},       {"beam", required_argument, 0, DF_BEAM},
    {"beam-mode", required_argument, 0, DF_MODE}, {"lenpen", required_argument, 0, DF_LENPEN},
    {"sample", no_argument, 0, DF_SAMPLE},        {"top-k", required_argument, 0, DF_TOPK},
    {"temperature", required_argument, 0, DF_TEMP}, {"seed", required_argument, 0, DF_SEED},
    {"max-len", required_argument, 0, DF_MAXLEN}, {"max-len-a", required_argument, 0, DF_LENA},
    {"max-len-b", required_argument, 0, DF_LENB}, {"min-len", required_argument, 0, DF_MINLEN},
    {"cross-kv", required_argument, 0, DF_CROSSKV}, {0, 0, 0, 0}};

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (!*s || *end)
        return -1;
    *out = v;
    return 0;
}

void decode_flags_init(decode_flags *f)
{
    memset(f, 0, sizeof *f);
    f->p = beam_default_params();
    f->p.max_len = 256;
}

int decode_flags_parse(decode_flags *f, int opt, const char *arg, const char *cmd)
{
    beam_params *p = &f->p;
    long v;
    switch (opt) {
    case DF_GREEDY: p->method = BEAM_GREEDY; f->n_methods++; return 0;
    case DF_SAMPLE: p->method = BEAM_SAMPLE; f->n_methods++; return 0;
    case DF_BEAM:
        if (parse_int(arg, 1, BEAM_MAX_WIDTH, &v))
            return cli_usage_error(cmd, "--beam wants 1..%d, got '%s'", BEAM_MAX_WIDTH, arg);
        p->method = BEAM_SEARCH;
        p->beam = (int)v;
        f->n_methods++;
        return 0;
    case DF_MODE:
        if (!strcmp(arg, "seed"))
            p->mode = BEAM_MODE_SEED;
        else if (!strcmp(arg, "default"))
            p->mode = BEAM_MODE_DEFAULT;
        else
            return cli_usage_error(cmd, "--beam-mode wants seed or default, got '%s'", arg);
        f->beam_opts = 1;
        return 0;
    case DF_LENPEN:
        if (parse_float(arg, &p->lenpen) || !(p->lenpen >= 0.0f))
            return cli_usage_error(cmd, "--lenpen wants a number >= 0, got '%s'", arg);
        f->beam_opts = 1;
        return 0;
    case DF_TOPK:
        if (parse_int(arg, 0, 1L << 30, &v))
            return cli_usage_error(cmd, "--top-k wants an integer >= 0, got '%s'", arg);
        p->top_k = (int)v;
        f->sample_opts = 1;
        return 0;
    case DF_TEMP:
        if (parse_float(arg, &p->temperature) || !(p->temperature > 0.0f))
            return cli_usage_error(cmd, "--temperature wants a number > 0, got '%s'", arg);
        f->sample_opts = 1;
        return 0;
    case DF_SEED: {
        char *end;
        unsigned long long s = strtoull(arg, &end, 10);
        if (!*arg || *end || arg[0] == '-')
            return cli_usage_error(cmd, "--seed wants an integer >= 0, got '%s'", arg);
        p->seed = (uint64_t)s;
        f->sample_opts = 1;
        return 0;
    }
    case DF_MAXLEN:
        if (parse_int(arg, 1, 1 << 20, &v))
            return cli_usage_error(cmd, "--max-len wants 1..%d, got '%s'", 1 << 20, arg);
        p->max_len = (int)v;
        return 0;
    case DF_LENA:
        if (parse_float(arg, &p->len_a) || !(p->len_a >= 0.0f))
            return cli_usage_error(cmd, "--max-len-a wants a number >= 0, got '%s'", arg);
        return 0;
    case DF_LENB:
        if (parse_float(arg, &p->len_b))
            return cli_usage_error(cmd, "--max-len-b wants a number, got '%s'", arg);
        return 0;
    case DF_MINLEN:
        if (parse_int(arg, 0, 1 << 20, &v))
            return cli_usage_error(cmd, "--min-len wants an integer >= 0, got '%s'", arg);
        p->min_len = (int)v;
        return 0;
    case DF_CROSSKV: {
        int t = s2t_kv_type_parse(arg);
        if (t < 0)
            return cli_usage_error(cmd, "--cross-kv wants f32 or f16, got '%s'", arg);
        f->cross_kv = (s2t_kv_type)t;
        return 0;
    }
    }
    return cli_usage_error(cmd, "internal: option %d is not a decoding flag", opt);
}

int decode_flags_finish(decode_flags *f, const char *cmd)
{
    if (f->n_methods > 1)
        return cli_usage_error(cmd, "choose one of --greedy, --beam, --sample");
    if (f->beam_opts && f->p.method != BEAM_SEARCH)
        return cli_usage_error(cmd, "--beam-mode / --lenpen need --beam");
    if (f->sample_opts && f->p.method != BEAM_SAMPLE)
        return cli_usage_error(cmd, "--top-k / --temperature / --seed need --sample");
    return 0;
}

void decode_flags_canonical(const beam_params *p, char *buf, size_t cap)
{
    static const char *methods[] = {"greedy", "sample", "beam"};
    // keep_eos is appended only when set (the CLI leaves it to pl_open, which sets it from
    // seed_layout), so the string of every existing dataset stays what it was.
    snprintf(buf, cap, "method=%s;beam=%d;mode=%s;lenpen=%.9g;top_k=%d;temperature=%.9g;"
             "seed=%llu;max_len=%d;len_a=%.9g;len_b=%.9g;min_len=%d%s", methods[p->method],
             p->method == BEAM_SEARCH ? p->beam : 1, beam_mode_name(p->mode), (double)p->lenpen,
             p->top_k, (double)p->temperature, (unsigned long long)p->seed, p->max_len,
             (double)p->len_a, (double)p->len_b, p->min_len, p->keep_eos ? ";keep_eos=1" : "");
}
