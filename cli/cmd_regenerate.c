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
#include "cli/job.h"
#include "cli/job_flags.h"
#include "cli/provenance.h"
#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/coord.h"
#include "pipeline/pipeline.h"
#include "pipeline/s2t.h"
#include "storage/row.h"
#include "storage/store.h"
#include "worker/exec.h"

#define HELP                                                                                 \
    "usage: spearlabel regenerate --from OLD_DB --out NEW_DB --s2t NEW.safetensors\n"          \
    "         [decoding flags] [--unit N] [--threads N] [--grace S] [--seed-layout]\n\n"       \
    "Back-translates the stored semantic ids of every row of OLD_DB with a new\n"              \
    "speech->text model and writes NEW_DB: the same keys, semantic ids, durations,\n"          \
    "sources and bounds (a row of format 1 becomes format 2 with its derived bounds),\n"       \
    "new text ids, scores and flags. Audio, HuBERT and k-means are not recomputed.\n"          \
    "Error records of OLD_DB are copied (stage \"inherited\"). OLD_DB is opened\n"             \
    "read-only and never modified (not even its lock file). Runs as one process or\n"          \
    "under mpirun, resumes like `run` (re-run the same command), exit 3 when stopped\n"        \
    "by SIGUSR1/SIGTERM/SIGINT. Refused: NEW_DB = OLD_DB, a model whose semantic\n"            \
    "vocabulary cannot hold the stored ids, a resume with another source or model.\n\n"        \
    "Options:\n"                                                                               \
    "  --from OLD_DB       the dataset whose semantic ids are re-labelled\n"                   \
    "  --out NEW_DB        the new dataset (created if absent)\n"                              \
    "  --s2t MODEL         the new SPEAR-TTS speech->text safetensors\n" DECODE_FLAGS_HELP

enum { O_FROM = 256, O_S2T };

// --s2t goes to jf.pp.s2t, the job and decoding flags to jf.
typedef struct regen_args {
    const char *from;
    job_flags jf;
} regen_args;

static int regen_flag(void *ctx, int c, const char *arg)
{
    regen_args *a = ctx;
    switch (c) {
    case 'h':
        fputs(HELP, stdout);
        job_flags_help(stdout, 1);
        fputs(JOB_FLAGS_HELP_END, stdout);
        return -1;
    case O_FROM: a->from = arg; return 0;
    case O_S2T: a->jf.pp.s2t = arg; return 0;
    }
    return cli_usage_error("regenerate", "internal: option %d", c);
}

static int parse_args(int argc, char **argv, regen_args *a)
{
    static const struct option own[] = {
        {"from", required_argument, 0, O_FROM}, {"s2t", required_argument, 0, O_S2T},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    job_flags_init(&a->jf, 1);
    int rc = job_flags_getopt(&a->jf, argc, argv, own, regen_flag, a);
    if (rc)
        return rc;
    if (!a->from || !a->jf.cp.out || !a->jf.pp.s2t)
        return cli_usage_error("regenerate", "--from, --out and --s2t are required");
    return job_flags_finish(&a->jf);
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
    // A read error is not the end of the list: a partial fp/source would refuse every resume.
    int more = store_iter_seek(it, "fp/", 3, err);
    while (more >= 0 && (more = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1 && kn > 3 &&
           !memcmp(k, "fp/", 3)) {
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
    return more < 0 ? sl_err_prefix(err, "regenerate: %s: reading its fingerprints", src->path)
                    : SL_OK;
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
    cli_job_init(a.jf.threads, &rank, &size);
    sl_err err;
    sl_err_clear(&err);
    source src;
    memset(&src, 0, sizeof src);
    // Rank 0 reads the source and checks it against the new model before anyone starts.
    long info[2] = {0, 0}; // ok, longest semantic id list
    if (rank == 0) {
        char from_abs[PATH_MAX], out_abs[PATH_MAX];
        abs_path(a.from, from_abs);
        abs_path(a.jf.cp.out, out_abs);
        int rc = strcmp(from_abs, out_abs) == 0
                     ? sl_fail(&err, SL_EINVAL, "regenerate: --out is the same dataset as --from "
                               "(%s): the source is never modified", from_abs)
                     : load_source(&src, a.from, &err);
        if (rc == SL_OK && src.m.n == 0)
            rc = sl_fail(&err, SL_EINVAL, "regenerate: %s holds no rows or errors", a.from);
        s2t_model *m = NULL;
        if (rc == SL_OK && (rc = s2t_open(&m, a.jf.pp.s2t, &err)) == SL_OK &&
            src.max_id >= s2t_model_config(m)->n_semantic)
            rc = sl_fail(&err, SL_EINVAL, "regenerate: %s holds semantic id %d but %s reads only "
                         "ids 0..%d: the tokens came from another k-means; a full `spearlabel run` "
                         "is needed", a.from, src.max_id, a.jf.pp.s2t,
                         s2t_model_config(m)->n_semantic - 1);
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
    pl_params pp = a.jf.pp; // s2t, text_only, beam, max_batch, seed_layout
    pp.max_src_ids = (int)info[1] + 1;
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
        coord_params cp = a.jf.cp; // out, unit, grace, progress, map size
        cp.m = &src.m;
        cp.n_ranks = size;
        cp.argc = argc;
        cp.argv = argv;
        cp.exec = exec_unit;
        cp.exec_ctx = x;
        cp.sched = &cli_job_sched; // a worker's pool of held units, as on a worker rank
        cp.payload = payload;
        cp.payload_ctx = &src;
        // Where the new model came from (origin/s2t), beside the source's provenance.
        cli_prov prov = {0};
        int orc = cli_prov_collect(&prov, NULL, NULL, pp.s2t, &err);
        for (size_t k = 0; orc == SL_OK && k < prov.n_pairs; k++)
            if (src.n_meta + 2 <= sizeof src.meta / sizeof src.meta[0]) {
                src.meta[src.n_meta++] = strdup(prov.kv[2 * k]);
                src.meta[src.n_meta++] = strdup(prov.kv[2 * k + 1]);
            }
        cp.meta = (const char *const *)src.meta;
        cp.n_meta = src.n_meta / 2;
        char opt[JOB_OPTIONS_CAP];
        job_options_canonical(&cp, &pp, opt, sizeof opt);
        jm_fp fps[3] = {
            {.name = "options", .strict = 1, .what = "the row-changing options"},
            {.name = "source", .strict = 1, .what = "the source dataset (--from)"},
            {.name = "s2t", .strict = 1, .what = "the speech->text model"}};
        jm_fp_text(&fps[0], opt);
        jm_fp_text(&fps[1], src.fp_text);
        code = orc || jm_fp_files(&fps[2], &pp.s2t, 1, &err) ? SL_EXIT_FAIL : SL_EXIT_OK;
        if (code == SL_EXIT_OK) {
            cp.fps = fps;
            cp.n_fps = 3;
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
