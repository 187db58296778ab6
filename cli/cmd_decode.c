// cli/cmd_decode.c — `spearlabel decode`: semantic ids -> text ids with the
// SPEAR-TTS speech->text model (pipeline/beam.h), for checking a model or a
// decoding setting on a few sources outside a job.
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/npy.h"
#include "pipeline/beam.h"
#include "pipeline/ops.h"
#include "pipeline/s2t.h"

static const char HELP[] =
    "usage: spearlabel decode --s2t MODEL.safetensors --ids IDS.npy\n"
    "         [--greedy | --beam N [--beam-mode seed|default] [--lenpen A]\n"
    "          | --sample --top-k K --temperature T --seed S]\n"
    "         [--max-len N] [--max-len-a A --max-len-b B] [--min-len N] [--batch B]\n"
    "         (--out TEXT.npy | --print)\n\n"
    "Back-translates semantic ids into text ids. IDS.npy is int64 [T] or [B, T],\n"
    "right-padded with -1, WITHOUT the speech EOS (appended here). TEXT.npy is\n"
    "int64 [B, S]: each row's text ids up to and including its first EOS (if\n"
    "reached), right-padded with the text pad id 0. --print writes one line of\n"
    "space-separated ids per row instead. Output is deterministic.\n\n"
    "Options:\n"
    "  --s2t MODEL         TextToSemantic safetensors, config in __metadata__[\"config\"]\n"
    "  --ids IDS.npy       int64 semantic ids, [T] or [B, T] padded with -1\n"
    "  --greedy            argmax decoding (the seed's generate at temperature -> 0)\n"
    "  --beam N            beam search of width N (default: beam 4, default mode)\n"
    "  --beam-mode M       default: finished hypotheses leave the beam, early stop;\n"
    "                      seed: spear-tts-pytorch 0.4.8's beam search exactly\n"
    "  --lenpen A          default mode: rank finished hypotheses by sum / n^A (default 0)\n"
    "  --sample            top-k / temperature sampling\n"
    "  --top-k K           keep the K best logits (0 = all; default 0)\n"
    "  --temperature T     sampling temperature (default 1)\n"
    "  --seed S            sampling seed (default 0); per row from (S, the row's ids)\n"
    "  --max-len N         at most N text tokens, EOS included (default 256)\n"
    "  --max-len-a A       also at most floor(A * source length + B) tokens (A > 0)\n"
    "  --max-len-b B\n"
    "  --min-len N         no EOS before N tokens\n"
    "  --batch B           sources decoded together (default 8)\n"
    "  --out TEXT.npy      write the text ids\n"
    "  --print             print the rows instead\n"
    "  --threads N         OpenBLAS threads (default SLURM_CPUS_PER_TASK, else 1)\n"
    "  -h, --help          this text\n";

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

int cmd_decode(int argc, char **argv)
{
    enum { O_S2T = 256, O_IDS, O_GREEDY, O_BEAM, O_MODE, O_LENPEN, O_SAMPLE, O_TOPK, O_TEMP,
           O_SEED, O_MAXLEN, O_LENA, O_LENB, O_MINLEN, O_BATCH, O_OUT, O_PRINT, O_THREADS };
    static const struct option opts[] = {
        {"s2t", required_argument, 0, O_S2T},       {"ids", required_argument, 0, O_IDS},
        {"greedy", no_argument, 0, O_GREEDY},        {"beam", required_argument, 0, O_BEAM},
        {"beam-mode", required_argument, 0, O_MODE}, {"lenpen", required_argument, 0, O_LENPEN},
        {"sample", no_argument, 0, O_SAMPLE},        {"top-k", required_argument, 0, O_TOPK},
        {"temperature", required_argument, 0, O_TEMP},
        {"seed", required_argument, 0, O_SEED},      {"max-len", required_argument, 0, O_MAXLEN},
        {"max-len-a", required_argument, 0, O_LENA}, {"max-len-b", required_argument, 0, O_LENB},
        {"min-len", required_argument, 0, O_MINLEN}, {"batch", required_argument, 0, O_BATCH},
        {"out", required_argument, 0, O_OUT},        {"print", no_argument, 0, O_PRINT},
        {"threads", required_argument, 0, O_THREADS}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *ids_path = NULL, *out_path = NULL;
    int print = 0, n_methods = 0, beam_opts = 0, sample_opts = 0;
    long v, batch = 8, threads = 0, max_len = 256;
    beam_params p = beam_default_params();
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case O_S2T: model_path = optarg; break;
        case O_IDS: ids_path = optarg; break;
        case O_OUT: out_path = optarg; break;
        case O_PRINT: print = 1; break;
        case O_GREEDY: p.method = BEAM_GREEDY; n_methods++; break;
        case O_SAMPLE: p.method = BEAM_SAMPLE; n_methods++; break;
        case O_BEAM:
            if (parse_int(optarg, 1, BEAM_MAX_WIDTH, &v))
                return cli_usage_error("decode", "--beam wants 1..%d, got '%s'", BEAM_MAX_WIDTH,
                                       optarg);
            p.method = BEAM_SEARCH;
            p.beam = (int)v;
            n_methods++;
            break;
        case O_MODE:
            if (!strcmp(optarg, "seed"))
                p.mode = BEAM_MODE_SEED;
            else if (!strcmp(optarg, "default"))
                p.mode = BEAM_MODE_DEFAULT;
            else
                return cli_usage_error("decode", "--beam-mode wants seed or default, got '%s'",
                                       optarg);
            beam_opts = 1;
            break;
        case O_LENPEN:
            if (parse_float(optarg, &p.lenpen) || !(p.lenpen >= 0.0f))
                return cli_usage_error("decode", "--lenpen wants a number >= 0, got '%s'",
                                       optarg);
            beam_opts = 1;
            break;
        case O_TOPK:
            if (parse_int(optarg, 0, 1L << 30, &v))
                return cli_usage_error("decode", "--top-k wants an integer >= 0, got '%s'",
                                       optarg);
            p.top_k = (int)v;
            sample_opts = 1;
            break;
        case O_TEMP:
            if (parse_float(optarg, &p.temperature) || !(p.temperature > 0.0f))
                return cli_usage_error("decode", "--temperature wants a number > 0, got '%s'",
                                       optarg);
            sample_opts = 1;
            break;
        case O_SEED: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-')
                return cli_usage_error("decode", "--seed wants an integer >= 0, got '%s'",
                                       optarg);
            p.seed = (uint64_t)s;
            sample_opts = 1;
            break;
        }
        case O_MAXLEN:
            if (parse_int(optarg, 1, 1 << 20, &max_len))
                return cli_usage_error("decode", "--max-len wants 1..%d, got '%s'", 1 << 20,
                                       optarg);
            break;
        case O_LENA:
            if (parse_float(optarg, &p.len_a) || !(p.len_a >= 0.0f))
                return cli_usage_error("decode", "--max-len-a wants a number >= 0, got '%s'",
                                       optarg);
            break;
        case O_LENB:
            if (parse_float(optarg, &p.len_b))
                return cli_usage_error("decode", "--max-len-b wants a number, got '%s'", optarg);
            break;
        case O_MINLEN:
            if (parse_int(optarg, 0, 1 << 20, &v))
                return cli_usage_error("decode", "--min-len wants an integer >= 0, got '%s'",
                                       optarg);
            p.min_len = (int)v;
            break;
        case O_BATCH:
            if (parse_int(optarg, 1, 4096, &batch))
                return cli_usage_error("decode", "--batch wants 1..4096, got '%s'", optarg);
            break;
        case O_THREADS:
            if (parse_int(optarg, 1, 1024, &threads))
                return cli_usage_error("decode", "--threads wants 1..1024, got '%s'", optarg);
            break;
        default:
            return cli_usage_error("decode", "unknown option or missing value: '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("decode", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !ids_path)
        return cli_usage_error("decode", "--s2t and --ids are required");
    if (!out_path == !print)
        return cli_usage_error("decode", "give exactly one of --out and --print");
    if (n_methods > 1)
        return cli_usage_error("decode", "choose one of --greedy, --beam, --sample");
    if (beam_opts && p.method != BEAM_SEARCH)
        return cli_usage_error("decode", "--beam-mode / --lenpen need --beam");
    if (sample_opts && p.method != BEAM_SAMPLE)
        return cli_usage_error("decode", "--top-k / --temperature / --seed need --sample");
    p.max_len = (int)max_len;
    p.keep_eos = 1;
    ops_set_threads(ops_threads_default((int)threads));

    sl_err err;
    sl_npy ids;
    s2t_model *m = NULL;
    beam_state *bs = NULL;
    int32_t *src = NULL, *outb = NULL;
    int *len = NULL;
    const int32_t **srcp = NULL;
    beam_result *res = NULL;
    int rc = SL_EXIT_FAIL;
    memset(&ids, 0, sizeof ids);
    if (sl_npy_read(ids_path, &ids, &err))
        goto fail;
    if (ids.dtype != SL_NPY_I64 || ids.ndim < 1 || ids.ndim > 2) {
        sl_fail(&err, SL_EFORMAT, "decode: %s: want int64 [T] or [B, T]", ids_path);
        goto fail;
    }
    size_t B = ids.ndim == 2 ? ids.shape[0] : 1, T = ids.shape[ids.ndim - 1];
    if (B == 0 || T == 0) {
        sl_fail(&err, SL_EFORMAT, "decode: %s: no ids", ids_path);
        goto fail;
    }
    if (s2t_open(&m, model_path, &err))
        goto fail;
    src = malloc(B * T * sizeof(int32_t));
    len = malloc(B * sizeof(int));
    srcp = malloc(B * sizeof(*srcp));
    res = malloc(B * sizeof(beam_result));
    outb = calloc(B * (size_t)max_len, sizeof(int32_t));
    int *n_out = calloc(B, sizeof(int));
    if (!src || !len || !srcp || !res || !outb || !n_out) {
        free(n_out);
        sl_fail(&err, SL_ENOMEM, "decode: out of memory");
        goto fail;
    }
    const int64_t *iv = ids.data;
    int max_src = 1;
    for (size_t r = 0; r < B; r++) {
        size_t n = 0;
        while (n < T && iv[r * T + n] != -1)
            n++;
        for (size_t t = n; t < T; t++)
            if (iv[r * T + t] != -1) {
                free(n_out);
                sl_fail(&err, SL_EFORMAT, "decode: %s: row %zu: id %lld after the padding at "
                        "column %zu", ids_path, r, (long long)iv[r * T + t], n);
                goto fail;
            }
        for (size_t t = 0; t < n; t++) {
            int64_t x = iv[r * T + t];
            if (x < 0 || x > INT32_MAX) {
                free(n_out);
                sl_fail(&err, SL_EFORMAT, "decode: %s: row %zu: bad id %lld", ids_path, r,
                        (long long)x);
                goto fail;
            }
            src[r * T + t] = (int32_t)x;
        }
        len[r] = (int)n;
        srcp[r] = src + r * T;
        max_src = (int)n > max_src ? (int)n : max_src;
    }
    s2t_limits lim = {(int)(batch < (long)B ? batch : (long)B),
                      p.method == BEAM_SEARCH ? p.beam : 1, max_src, (int)max_len};
    if (beam_state_new(&bs, m, lim, &err)) {
        free(n_out);
        goto fail;
    }
    int S = 1;
    for (size_t r0 = 0; r0 < B; r0 += (size_t)lim.max_batch) {
        int n = (int)(B - r0 < (size_t)lim.max_batch ? B - r0 : (size_t)lim.max_batch);
        if (beam_decode(bs, srcp + r0, len + r0, n, &p, res + r0, &err)) {
            sl_err_prefix(&err, "rows %zu..%zu", r0, r0 + (size_t)n - 1);
            free(n_out);
            goto fail;
        }
        for (int i = 0; i < n; i++) { // results are lent until the next call: copy now
            size_t r = r0 + (size_t)i;
            n_out[r] = res[r].n_ids;
            memcpy(outb + r * (size_t)max_len, res[r].ids, (size_t)res[r].n_ids * 4);
            S = res[r].n_ids > S ? res[r].n_ids : S;
        }
    }
    if (print) {
        for (size_t r = 0; r < B; r++) {
            for (int i = 0; i < n_out[r]; i++)
                printf(i ? " %d" : "%d", (int)outb[r * (size_t)max_len + (size_t)i]);
            printf("\n");
        }
    } else {
        int64_t *o = calloc(B * (size_t)S, sizeof(int64_t)); // text pad id 0
        if (!o) {
            free(n_out);
            sl_fail(&err, SL_ENOMEM, "decode: out of memory");
            goto fail;
        }
        int pad = s2t_model_config(m)->text_pad;
        for (size_t r = 0; r < B; r++)
            for (int i = 0; i < S; i++)
                o[r * (size_t)S + (size_t)i] =
                    i < n_out[r] ? outb[r * (size_t)max_len + (size_t)i] : pad;
        size_t shape[2] = {B, (size_t)S};
        int wrc = sl_npy_write(out_path, SL_NPY_I64, 2, shape, o, &err);
        free(o);
        if (wrc) {
            free(n_out);
            goto fail;
        }
    }
    free(n_out);
    rc = SL_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "spearlabel decode: %s\n", err.msg);
done:
    beam_state_free(bs);
    s2t_close(m);
    sl_npy_free(&ids);
    free(src);
    free(len);
    free(srcp);
    free(res);
    free(outb);
    return rc;
}
