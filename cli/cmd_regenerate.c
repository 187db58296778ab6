// cli/cmd_regenerate.c — `spearlabel regenerate`: re-label an existing dataset
// with a new speech->text model from its stored semantic ids. Same job as
// `run` (same coordinator, units, resume, signals, poison pills), but WORK
// carries each stored row instead of an audio path and workers run only the
// decoder: no audio decoding, no HuBERT, no k-means.
#define _XOPEN_SOURCE 700 // realpath
#include <getopt.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/decode_flags.h"
#include "cli/job.h"
#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/coord.h"
#include "pipeline/pipeline.h"
#include "pipeline/s2t.h"
#include "storage/row.h"
#include "storage/store.h"
#include "worker/exec.h"

static const char HELP[] =
    "usage: spearlabel regenerate --from OLD_DB --out NEW_DB --s2t NEW.safetensors\n"
    "         [decoding flags] [--unit N] [--threads N] [--grace S] [--seed-layout]\n\n"
    "Back-translates the stored semantic ids of every row of OLD_DB with a new\n"
    "speech->text model and writes NEW_DB: the same keys, semantic ids and durations,\n"
    "new text ids, scores and flags. Audio, HuBERT and k-means are not recomputed.\n"
    "Error records of OLD_DB are copied (stage \"inherited\"). OLD_DB is opened\n"
    "read-only and never modified (not even its lock file). Runs as one process or\n"
    "under mpirun, resumes like `run` (re-run the same command), exit 3 when stopped\n"
    "by SIGUSR1/SIGTERM/SIGINT. Refused: NEW_DB = OLD_DB, a model whose semantic\n"
    "vocabulary cannot hold the stored ids, a resume with another source or model.\n\n"
    "Options:\n"
    "  --from OLD_DB       the dataset whose semantic ids are re-labelled\n"
    "  --out NEW_DB        the new dataset (created if absent)\n"
    "  --s2t MODEL         the new SPEAR-TTS speech->text safetensors\n" DECODE_FLAGS_HELP
    "  --unit N            rows per work unit, decoded as one batch (default 4, max 64)\n"
    "  --threads N         OpenBLAS threads per rank (default SLURM_CPUS_PER_TASK, else 1)\n"
    "  --grace S           after a stop signal, collect in-flight work for S s (default 60)\n"
    "  --seed-layout       rows as the seed writes them (speech EOS and text EOS included)\n"
    "  --progress S        seconds between progress lines when stderr is not a terminal (30)\n"
    "  -h, --help          this text\n\n"
    "Exit status: 0 finished, 1 error, 2 usage error, 3 interrupted (run again to resume).\n";

enum { O_FROM = 256, O_OUT, O_S2T, O_UNIT, O_THREADS, O_GRACE, O_SEEDLAYOUT, O_PROGRESS };

typedef struct regen_args {
    const char *from, *out, *s2t;
    long unit, threads;
    int seed_layout;
    double grace, progress;
    decode_flags df;
} regen_args;

static int parse_args(int argc, char **argv, regen_args *a)
{
    static struct option opts[40];
    static const struct option own[] = {
        {"from", required_argument, 0, O_FROM},       {"out", required_argument, 0, O_OUT},
        {"s2t", required_argument, 0, O_S2T},         {"unit", required_argument, 0, O_UNIT},
        {"threads", required_argument, 0, O_THREADS}, {"grace", required_argument, 0, O_GRACE},
        {"seed-layout", no_argument, 0, O_SEEDLAYOUT},
        {"progress", required_argument, 0, O_PROGRESS}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    cli_join_options(opts, sizeof opts / sizeof opts[0], own, DECODE_FLAG_OPTIONS);
    memset(a, 0, sizeof *a);
    a->unit = 4;
    a->grace = 60;
    a->progress = 30;
    decode_flags_init(&a->df);
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= DF_FIRST && c < DF_LAST) {
            if (decode_flags_parse(&a->df, c, optarg, "regenerate"))
                return SL_EXIT_USAGE;
            continue;
        }
        switch (c) {
        case 'h': fputs(HELP, stdout); return -1;
        case O_FROM: a->from = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_S2T: a->s2t = optarg; break;
        case O_SEEDLAYOUT: a->seed_layout = 1; break;
        case O_UNIT:
            if (cli_parse_long(optarg, 1, 64, &a->unit))
                return cli_usage_error("regenerate", "--unit wants 1..64, got '%s'", optarg);
            break;
        case O_THREADS:
            if (cli_parse_long(optarg, 1, 1024, &a->threads))
                return cli_usage_error("regenerate", "--threads wants 1..1024, got '%s'", optarg);
            break;
        case O_GRACE:
            if (cli_parse_double(optarg, 0, 1e6, &a->grace))
                return cli_usage_error("regenerate", "--grace wants seconds >= 0, got '%s'",
                                       optarg);
            break;
        case O_PROGRESS:
            if (cli_parse_double(optarg, 0.1, 1e6, &a->progress))
                return cli_usage_error("regenerate", "--progress wants seconds > 0, got '%s'",
                                       optarg);
            break;
        default:
            return cli_usage_error("regenerate", "unknown option or missing value: '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("regenerate", "unexpected argument '%s'", argv[optind]);
    if (!a->from || !a->out || !a->s2t)
        return cli_usage_error("regenerate", "--from, --out and --s2t are required");
    return decode_flags_finish(&a->df, "regenerate");
}

// The absolute path of p, or of its parent joined with its last part when p does not exist.
static void abs_path(const char *p, char *out)
{
    if (realpath(p, out))
        return;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", p);
    char *slash = strrchr(tmp, '/');
    const char *base = slash ? slash + 1 : tmp;
    char parent[PATH_MAX];
    if (slash)
        *slash = '\0';
    if (!realpath(slash ? (tmp[0] ? tmp : "/") : ".", parent)) {
        snprintf(out, PATH_MAX, "%s", p);
        return;
    }
    snprintf(out, PATH_MAX, "%.2000s/%.2000s", parent, base);
}

typedef struct source {
    store *s;
    manifest m;
    int32_t max_id;      // largest stored semantic id (speech EOS of seed-layout rows excluded)
    uint32_t max_len;    // longest stored semantic id list
    char path[PATH_MAX];
    char fp_text[8192];  // "fp/name=value\n" of the source, for the "source" fingerprint
    char *meta[32];      // provenance pairs for NEW_DB's meta
    size_t n_meta;
} source;

static int add_item(manifest *m, size_t *cap, const void *key, size_t kn, int64_t n_samples,
                    char *bad, sl_err *err)
{
    if (m->n == *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        man_item *n = realloc(m->items, *cap * sizeof *n);
        if (!n)
            return sl_fail(err, SL_ENOMEM, "regenerate: out of memory");
        m->items = n;
    }
    man_item *it = &m->items[m->n];
    memset(it, 0, sizeof *it);
    it->id = strndup(key, kn);
    it->path = strdup("");
    it->n_samples = n_samples;
    it->bad = bad;
    it->bad_stage = bad ? SL_STAGE_INHERITED : SL_STAGE_INPUT;
    if (!it->id || !it->path)
        return sl_fail(err, SL_ENOMEM, "regenerate: out of memory");
    m->n++;
    return SL_OK;
}

static int cmp_items(const void *a, const void *b)
{
    return strcmp(((const man_item *)a)->id, ((const man_item *)b)->id);
}

// Reads OLD_DB into a manifest: rows are items (lengths from their semantic ids, so units
// are longest first as in `run`), error records become inherited errors.
static int load_source(source *src, const char *from, sl_err *err)
{
    store_params sp = store_default_params();
    sp.source = 1;
    int rc = store_open(&src->s, from, STORE_READ, sp, err);
    if (rc)
        return rc;
    abs_path(from, src->path);
    size_t cap = 0;
    store_iter *it;
    const void *k, *v;
    size_t kn, vn;
    if ((rc = store_iter_open(&it, src->s, STORE_ROWS, err)))
        return rc;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        rec_header h;
        if ((rc = rec_row_decode(v, vn, &h, err))) {
            sl_err_prefix(err, "regenerate: %s: row \"%.*s\"", from, (int)(kn > 200 ? 200 : kn),
                          (const char *)k);
            break;
        }
        uint32_t n = rec_row_n_source(&h);
        for (uint32_t i = 0; i < n; i++) {
            int32_t id = rec_row_id_at(v, i);
            if (id > src->max_id)
                src->max_id = id;
        }
        if (n > src->max_len)
            src->max_len = n;
        if ((rc = add_item(&src->m, &cap, k, kn, (int64_t)n * 320, NULL, err)))
            break;
    }
    store_iter_close(it);
    if (rc < 0)
        return rc;
    if ((rc = store_iter_open(&it, src->s, STORE_ERRORS, err)))
        return rc;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        rec_error e;
        char msg[1024];
        if (rec_error_decode(v, vn, &e, err) == SL_OK)
            snprintf(msg, sizeof msg, "inherited from %.300s: %s: %.*s", src->path,
                     sl_stage_name(e.stage), (int)(e.msg_len > 600 ? 600 : e.msg_len), e.msg);
        else
            snprintf(msg, sizeof msg, "inherited from %.300s: damaged error record", src->path);
        char *bad = strdup(msg);
        if (!bad || (rc = add_item(&src->m, &cap, k, kn, -1, bad, err))) {
            free(bad);
            rc = rc ? rc : sl_fail(err, SL_ENOMEM, "regenerate: out of memory");
            break;
        }
    }
    store_iter_close(it);
    if (rc < 0)
        return rc;
    qsort(src->m.items, src->m.n, sizeof(man_item), cmp_items);
    src->m.root = strdup("");
    // Provenance: the source path and its fingerprints.
    size_t off = (size_t)snprintf(src->fp_text, sizeof src->fp_text, "path=%s\n", src->path);
    src->meta[src->n_meta++] = strdup("source/path");
    src->meta[src->n_meta++] = strdup(src->path);
    if ((rc = store_iter_open(&it, src->s, STORE_META, err)))
        return rc;
    store_iter_seek(it, "fp/", 3, err);
    while (store_iter_next(it, &k, &kn, &v, &vn, err) == 1 && kn > 3 && !memcmp(k, "fp/", 3)) {
        if (off < sizeof src->fp_text)
            off += (size_t)snprintf(src->fp_text + off, sizeof src->fp_text - off, "%.*s=%.*s\n",
                                    (int)kn, (const char *)k, (int)vn, (const char *)v);
        if (src->n_meta + 2 <= sizeof src->meta / sizeof src->meta[0]) {
            char key[256];
            snprintf(key, sizeof key, "source/%.*s", (int)kn, (const char *)k);
            src->meta[src->n_meta++] = strdup(key);
            src->meta[src->n_meta++] = strndup(v, vn);
        }
    }
    store_iter_close(it);
    return SL_OK;
}

static void free_source(source *src)
{
    store_close(src->s);
    man_free(&src->m);
    for (size_t i = 0; i < src->n_meta; i++)
        free(src->meta[i]);
}

static int payload(void *ctx, size_t i, const void **bytes, size_t *n, sl_err *err)
{
    source *src = ctx;
    const char *id = src->m.items[i].id;
    return store_get(src->s, STORE_ROWS, id, strlen(id), bytes, n, err);
}

int cmd_regenerate(int argc, char **argv)
{
    regen_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc < 0)
        return SL_EXIT_OK;
    if (prc)
        return prc;
    int rank = 0, size = 1;
    cli_job_init((int)a.threads, &rank, &size);
    sl_err err;
    sl_err_clear(&err);
    source src;
    memset(&src, 0, sizeof src);
    // Rank 0 reads the source and checks it against the new model before anyone starts.
    long info[2] = {0, 0}; // ok, longest semantic id list
    if (rank == 0) {
        char from_abs[PATH_MAX], out_abs[PATH_MAX];
        abs_path(a.from, from_abs);
        abs_path(a.out, out_abs);
        int rc = strcmp(from_abs, out_abs) == 0
                     ? sl_fail(&err, SL_EINVAL, "regenerate: --out is the same dataset as --from "
                               "(%s): the source is never modified", from_abs)
                     : load_source(&src, a.from, &err);
        if (rc == SL_OK && src.m.n == 0)
            rc = sl_fail(&err, SL_EINVAL, "regenerate: %s holds no rows or errors", a.from);
        s2t_model *m = NULL;
        if (rc == SL_OK && (rc = s2t_open(&m, a.s2t, &err)) == SL_OK &&
            src.max_id >= s2t_model_config(m)->n_semantic)
            rc = sl_fail(&err, SL_EINVAL, "regenerate: %s holds semantic id %d but %s reads only "
                         "ids 0..%d: the tokens came from another k-means; a full `spearlabel run` "
                         "is needed", a.from, src.max_id, a.s2t, s2t_model_config(m)->n_semantic - 1);
        s2t_close(m);
        if (rc)
            fprintf(stderr, "spearlabel regenerate: %s\n", err.msg);
        info[0] = rc == SL_OK;
        info[1] = (long)src.max_len;
    }
    MPI_Bcast(info, 2, MPI_LONG, 0, MPI_COMM_WORLD);
    if (!info[0]) {
        free_source(&src);
        MPI_Finalize();
        return SL_EXIT_FAIL;
    }
    pl_params pp = pl_default_params();
    pp.s2t = a.s2t;
    pp.text_only = 1;
    pp.max_src_ids = (int)info[1] + 1;
    pp.beam = a.df.p;
    pp.max_batch = (int)a.unit;
    pp.seed_layout = a.seed_layout;
    job_exec *x = NULL;
    if (!cli_job_open_exec("regenerate", &pp, &x)) {
        free_source(&src);
        MPI_Finalize();
        return SL_EXIT_FAIL;
    }
    int code;
    if (rank == 0) {
        if (size > 1) {
            exec_close(x);
            x = NULL;
        }
        char dec[512], opt[1024];
        decode_flags_canonical(&a.df, dec, sizeof dec);
        snprintf(opt, sizeof opt, "format=1;regenerate=1;unit=%ld;seed_layout=%d;%s", a.unit,
                 a.seed_layout, dec);
        jm_fp fps[3] = {
            {.name = "options", .strict = 1, .what = "the row-changing options"},
            {.name = "source", .strict = 1, .what = "the source dataset (--from)"},
            {.name = "s2t", .strict = 1, .what = "the speech->text model"}};
        jm_fp_text(&fps[0], opt);
        jm_fp_text(&fps[1], src.fp_text);
        code = jm_fp_files(&fps[2], &a.s2t, 1, &err) ? SL_EXIT_FAIL : SL_EXIT_OK;
        if (code == SL_EXIT_OK) {
            coord_params cp = coord_default_params();
            cp.out = a.out;
            cp.m = &src.m;
            cp.n_ranks = size;
            cp.unit_items = (size_t)a.unit;
            cp.grace_s = a.grace;
            cp.progress_s = a.progress;
            cp.fps = fps;
            cp.n_fps = 3;
            cp.argc = argc;
            cp.argv = argv;
            cp.exec = exec_unit;
            cp.exec_ctx = x;
            cp.payload = payload;
            cp.payload_ctx = &src;
            cp.meta = (const char *const *)src.meta;
            cp.n_meta = src.n_meta / 2;
            code = cli_job_coordinate("regenerate", &cp);
        } else {
            fprintf(stderr, "spearlabel regenerate: %s\n", err.msg);
        }
        free_source(&src);
        if (code == SL_EXIT_FAIL && size > 1)
            MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL);
    } else {
        code = cli_job_worker("regenerate", rank, x);
    }
    exec_close(x);
    MPI_Finalize();
    return code;
}
