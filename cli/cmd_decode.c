// cli/cmd_decode.c — `spearlabel decode`: semantic ids -> text ids with the
// SPEAR-TTS speech->text model (pipeline/beam.h), for checking a model or a
// decoding setting on a few sources outside a job.
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/decode_flags.h"
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
    DECODE_FLAGS_HELP
    "  --batch B           sources decoded together (default 8)\n"
    "  --out TEXT.npy      write the text ids\n"
    "  --print             print the rows instead\n"
    "  --threads N         threads (OpenBLAS and the decoder; default SLURM_CPUS_PER_TASK,\n"
    "                      else 1)\n"
    "  -h, --help          this text\n";

int cmd_decode(int argc, char **argv)
{
    enum { O_S2T = 256, O_IDS, O_BATCH, O_OUT, O_PRINT, O_THREADS };
    static struct option opts[32];
    static const struct option own[] = {
        {"s2t", required_argument, 0, O_S2T},     {"ids", required_argument, 0, O_IDS},
        {"batch", required_argument, 0, O_BATCH}, {"out", required_argument, 0, O_OUT},
        {"print", no_argument, 0, O_PRINT},       {"threads", required_argument, 0, O_THREADS},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    cli_join_options(opts, sizeof opts / sizeof opts[0], own, DECODE_FLAG_OPTIONS);
    const char *model_path = NULL, *ids_path = NULL, *out_path = NULL;
    int print = 0;
    long batch = 8, threads = 0;
    decode_flags df;
    decode_flags_init(&df);
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= DF_FIRST && c < DF_LAST) {
            if (decode_flags_parse(&df, c, optarg, "decode"))
                return SL_EXIT_USAGE;
            continue;
        }
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case O_S2T: model_path = optarg; break;
        case O_IDS: ids_path = optarg; break;
        case O_OUT: out_path = optarg; break;
        case O_PRINT: print = 1; break;
        case O_BATCH:
            if (cli_parse_long(optarg, 1, 4096, &batch))
                return cli_usage_error("decode", "--batch wants 1..4096, got '%s'", optarg);
            break;
        case O_THREADS:
            if (cli_parse_long(optarg, 1, 1024, &threads))
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
    if (decode_flags_finish(&df, "decode"))
        return SL_EXIT_USAGE;
    beam_params p = df.p;
    long max_len = p.max_len;
    p.keep_eos = 1;
    ops_set_threads(ops_threads_default((int)threads));

    sl_err err;
    sl_npy ids;
    s2t_model *m = NULL;
    beam_state *bs = NULL;
    int32_t *src = NULL, *outb = NULL;
    int *len = NULL, *n_out = NULL;
    int64_t *o = NULL;
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
    n_out = calloc(B, sizeof(int));
    if (!src || !len || !srcp || !res || !outb || !n_out) {
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
                sl_fail(&err, SL_EFORMAT, "decode: %s: row %zu: id %lld after the padding at "
                        "column %zu", ids_path, r, (long long)iv[r * T + t], n);
                goto fail;
            }
        for (size_t t = 0; t < n; t++) {
            int64_t x = iv[r * T + t];
            if (x < 0 || x > INT32_MAX) {
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
                      p.method == BEAM_SEARCH ? p.beam : 1, max_src, (int)max_len, df.cross_kv};
    if (beam_state_new(&bs, m, lim, &err))
        goto fail;
    int S = 1;
    for (size_t r0 = 0; r0 < B; r0 += (size_t)lim.max_batch) {
        int n = (int)(B - r0 < (size_t)lim.max_batch ? B - r0 : (size_t)lim.max_batch);
        if (beam_decode(bs, srcp + r0, len + r0, n, &p, res + r0, &err)) {
            sl_err_prefix(&err, "rows %zu..%zu", r0, r0 + (size_t)n - 1);
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
        o = calloc(B * (size_t)S, sizeof(int64_t)); // text pad id 0
        if (!o) {
            sl_fail(&err, SL_ENOMEM, "decode: out of memory");
            goto fail;
        }
        int pad = s2t_model_config(m)->text_pad;
        for (size_t r = 0; r < B; r++)
            for (int i = 0; i < S; i++)
                o[r * (size_t)S + (size_t)i] =
                    i < n_out[r] ? outb[r * (size_t)max_len + (size_t)i] : pad;
        size_t shape[2] = {B, (size_t)S};
        if (sl_npy_write(out_path, SL_NPY_I64, 2, shape, o, &err))
            goto fail;
    }
    rc = SL_EXIT_OK;
fail:
    if (rc != SL_EXIT_OK)
        fprintf(stderr, "spearlabel decode: %s\n", err.msg);
    beam_state_free(bs);
    s2t_close(m);
    sl_npy_free(&ids);
    free(src);
    free(len);
    free(srcp);
    free(res);
    free(outb);
    free(n_out);
    free(o);
    return rc;
}
