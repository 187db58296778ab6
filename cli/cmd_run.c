// cli/cmd_run.c — `spearlabel run`: the job. Rank 0 -> cli_job_coordinate()
// (coord_run), ranks 1..N-1 -> cli_job_worker() (worker_run), both in cli/job.c.
// With one rank (no mpirun) the process is coordinator and worker.
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/decode_flags.h"
#include "cli/job.h"
#include "common/log.h"
#include "coordinator/coord.h"
#include "coordinator/manifest.h"
#include "pipeline/pipeline.h"
#include "worker/exec.h"

static const char HELP[] =
    "usage: spearlabel run (--manifest M | --audio-dir DIR [--ext wav,flac,...]) --out DB\n"
    "         (--hubert DIR --layer L [--final-norm] | --features mfcc) --kmeans KM.npy\n"
    "         --s2t MODEL.safetensors [--dedup] [decoding flags] [--unit N] [--threads N]\n"
    "         [--min-seconds S] [--max-seconds S] [--retry-errors] [--grace S] [--seed-layout]\n\n"
    "Labels every utterance of the manifest: audio -> HuBERT layer L -> k-means ids ->\n"
    "text ids (SPEAR-TTS speech->text), and stores `semantic ids, -1, text ids` rows\n"
    "in the dataset DB (created if absent). Bad files become error records; the job\n"
    "goes on. Run it as one process, or as an MPI job with the same flags:\n"
    "  mpirun -n N spearlabel run ...   (rank 0 coordinates and writes, 1..N-1 work)\n"
    "Re-running the same command on the same DB resumes: stored ids are skipped and\n"
    "the result equals an uninterrupted run. Changed models or row-changing flags\n"
    "are refused. SIGUSR1 / SIGTERM / SIGINT stop it gracefully (exit 3).\n\n"
    "Input:\n"
    "  --manifest M        fairseq tsv (root line, then path<TAB>samples) or a list of paths\n"
    "  --audio-dir DIR     every audio file below DIR (ids relative to DIR)\n"
    "  --ext LIST          extensions for --audio-dir (default " MAN_DEFAULT_EXTS ")\n"
    "  --min-seconds S     shorter audio is an error (default: one HuBERT frame)\n"
    "  --max-seconds S     longer audio is an error, checked before decoding (default 60)\n"
    "Models:\n"
    "  --hubert DIR        Hugging Face style HuBERT directory (config.json, model.safetensors)\n"
    "  --layer L           HuBERT layer whose output is clustered (0 = encoder input)\n"
    "  --final-norm        apply the final encoder norm to an intermediate pre-LN layer\n"
    "  --features KIND     hubert (default) or mfcc: 39 Kaldi MFCC + deltas, 100 frames/s\n"
    "                      (HuBERT's first-iteration targets; no --hubert, --layer)\n"
    "  --kmeans KM         k-means centroids [K, D] (.npy or .safetensors)\n"
    "  --dedup             collapse consecutive repeated semantic ids in the rows\n"
    "  --s2t MODEL         SPEAR-TTS TextToSemantic safetensors\n"
    "Decoding:\n" DECODE_FLAGS_HELP
    "Job:\n"
    "  --out DB            the dataset directory\n"
    "  --unit N            utterances per work unit, decoded as one batch (default 4, max 64)\n"
    "  --threads N         OpenBLAS threads per rank (default SLURM_CPUS_PER_TASK, else 1)\n"
    "  --retry-errors      recompute ids stored as errors\n"
    "  --grace S           after a stop signal, collect in-flight work for S s (default 60)\n"
    "  --seed-layout       rows as the seed writes them (speech EOS and text EOS included)\n"
    "  --progress S        seconds between progress lines when stderr is not a terminal (30)\n"
    "  -h, --help          this text\n\n"
    "Exit status: 0 finished, 1 error, 2 usage error, 3 interrupted (run again to resume).\n";

enum { O_MANIFEST = 256, O_AUDIODIR, O_EXT, O_OUT, O_HUBERT, O_LAYER, O_FINALNORM, O_KMEANS,
       O_S2T, O_UNIT, O_THREADS, O_MINSEC, O_MAXSEC, O_RETRY, O_GRACE, O_SEEDLAYOUT, O_PROGRESS,
       O_NULL, O_MAPSIZE, O_FEATURES, O_DEDUP };

typedef struct run_args {
    const char *manifest, *audio_dir, *ext, *out, *hubert, *kmeans, *s2t;
    long layer, unit, threads, map_kib;
    int final_norm, retry, seed_layout, null_pipeline, mfcc, dedup;
    double min_sec, max_sec, grace, progress;
    decode_flags df;
} run_args;

static int parse_args(int argc, char **argv, run_args *a)
{
    static struct option opts[64];
    static const struct option own[] = {
        {"manifest", required_argument, 0, O_MANIFEST}, {"audio-dir", required_argument, 0, O_AUDIODIR},
        {"ext", required_argument, 0, O_EXT},           {"out", required_argument, 0, O_OUT},
        {"hubert", required_argument, 0, O_HUBERT},     {"layer", required_argument, 0, O_LAYER},
        {"final-norm", no_argument, 0, O_FINALNORM},    {"kmeans", required_argument, 0, O_KMEANS},
        {"s2t", required_argument, 0, O_S2T},           {"unit", required_argument, 0, O_UNIT},
        {"threads", required_argument, 0, O_THREADS},   {"min-seconds", required_argument, 0, O_MINSEC},
        {"max-seconds", required_argument, 0, O_MAXSEC}, {"retry-errors", no_argument, 0, O_RETRY},
        {"grace", required_argument, 0, O_GRACE},       {"seed-layout", no_argument, 0, O_SEEDLAYOUT},
        {"progress", required_argument, 0, O_PROGRESS},
        {"features", required_argument, 0, O_FEATURES}, {"dedup", no_argument, 0, O_DEDUP},
        {"null-pipeline", no_argument, 0, O_NULL},      // bench/tests: synthetic rows, no models
        {"map-size-kib", required_argument, 0, O_MAPSIZE}, // tests: initial LMDB map
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    cli_join_options(opts, sizeof opts / sizeof opts[0], own, DECODE_FLAG_OPTIONS);

    memset(a, 0, sizeof *a);
    a->layer = -1;
    a->unit = 4;
    a->max_sec = 60;
    a->grace = 60;
    a->progress = 30;
    decode_flags_init(&a->df);
    int c;
    double d;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= DF_FIRST && c < DF_LAST) {
            if (decode_flags_parse(&a->df, c, optarg, "run"))
                return SL_EXIT_USAGE;
            continue;
        }
        switch (c) {
        case 'h': fputs(HELP, stdout); return -1;
        case O_MANIFEST: a->manifest = optarg; break;
        case O_AUDIODIR: a->audio_dir = optarg; break;
        case O_EXT: a->ext = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_HUBERT: a->hubert = optarg; break;
        case O_KMEANS: a->kmeans = optarg; break;
        case O_S2T: a->s2t = optarg; break;
        case O_FINALNORM: a->final_norm = 1; break;
        case O_RETRY: a->retry = 1; break;
        case O_SEEDLAYOUT: a->seed_layout = 1; break;
        case O_NULL: a->null_pipeline = 1; break;
        case O_DEDUP: a->dedup = 1; break;
        case O_FEATURES:
            if (strcmp(optarg, "mfcc") && strcmp(optarg, "hubert"))
                return cli_usage_error("run", "--features wants hubert or mfcc, got '%s'", optarg);
            a->mfcc = !strcmp(optarg, "mfcc");
            break;
        case O_LAYER:
            if (cli_parse_double(optarg, 0, 1000, &d) || d != (long)d)
                return cli_usage_error("run", "--layer wants an integer >= 0, got '%s'", optarg);
            a->layer = (long)d;
            break;
        case O_UNIT:
            if (cli_parse_double(optarg, 1, 64, &d) || d != (long)d)
                return cli_usage_error("run", "--unit wants 1..64, got '%s'", optarg);
            a->unit = (long)d;
            break;
        case O_THREADS:
            if (cli_parse_double(optarg, 1, 1024, &d) || d != (long)d)
                return cli_usage_error("run", "--threads wants 1..1024, got '%s'", optarg);
            a->threads = (long)d;
            break;
        case O_MAPSIZE:
            if (cli_parse_double(optarg, 64, 1e9, &d))
                return cli_usage_error("run", "--map-size-kib wants >= 64, got '%s'", optarg);
            a->map_kib = (long)d;
            break;
        case O_MINSEC:
            if (cli_parse_double(optarg, 0, 1e6, &a->min_sec))
                return cli_usage_error("run", "--min-seconds wants a number >= 0, got '%s'", optarg);
            break;
        case O_MAXSEC:
            if (cli_parse_double(optarg, 0.01, 36000, &a->max_sec))
                return cli_usage_error("run", "--max-seconds wants 0.01..36000, got '%s'", optarg);
            break;
        case O_GRACE:
            if (cli_parse_double(optarg, 0, 1e6, &a->grace))
                return cli_usage_error("run", "--grace wants seconds >= 0, got '%s'", optarg);
            break;
        case O_PROGRESS:
            if (cli_parse_double(optarg, 0.1, 1e6, &a->progress))
                return cli_usage_error("run", "--progress wants seconds > 0, got '%s'", optarg);
            break;
        default:
            return cli_usage_error("run", "unknown option or missing value: '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
    if (!a->manifest == !a->audio_dir)
        return cli_usage_error("run", "give exactly one of --manifest and --audio-dir");
    if (!a->out)
        return cli_usage_error("run", "--out DB is required");
    if (a->mfcc && (a->hubert || a->layer >= 0 || a->final_norm))
        return cli_usage_error("run", "--features mfcc takes no --hubert, --layer or --final-norm");
    if (!a->null_pipeline && a->mfcc && (!a->kmeans || !a->s2t))
        return cli_usage_error("run", "--kmeans and --s2t are required");
    if (!a->null_pipeline && !a->mfcc && (!a->hubert || !a->kmeans || !a->s2t || a->layer < 0))
        return cli_usage_error("run", "--hubert, --layer, --kmeans and --s2t are required");
    if (a->min_sec > a->max_sec)
        return cli_usage_error("run", "--min-seconds is above --max-seconds");
    return decode_flags_finish(&a->df, "run");
}

// Every option that changes rows, in one canonical string (the "options" fingerprint).
// The feature kind and dedup are appended only when not the default, so datasets
// written before they existed keep their fingerprint. MFCC has no model file to
// hash: its name and version stand in the string instead.
static void canonical_options(const run_args *a, char *buf, size_t cap)
{
    char dec[512];
    decode_flags_canonical(&a->df, dec, sizeof dec);
    snprintf(buf, cap, "format=1;layer=%ld;final_norm=%d;unit=%ld;unit_seconds=120;"
             "min_seconds=%.9g;max_seconds=%.9g;seed_layout=%d;null=%d;%s%s%s", a->layer,
             a->final_norm, a->unit, a->min_sec, a->max_sec, a->seed_layout, a->null_pipeline, dec,
             a->mfcc ? ";features=mfcc-kaldi-39-v1" : "", a->dedup ? ";dedup=1" : "");
}

static int fingerprints(const run_args *a, jm_fp *fps, size_t *n, sl_err *err)
{
    size_t k = 0;
    int rc;
    char opt[1024];
    canonical_options(a, opt, sizeof opt);
    fps[k] = (jm_fp){.name = "options", .strict = 1, .what = "the row-changing options"};
    jm_fp_text(&fps[k++], opt);
    if (!a->null_pipeline && !a->mfcc) {
        char cfg[4200], mdl[4200];
        snprintf(cfg, sizeof cfg, "%s/config.json", a->hubert);
        snprintf(mdl, sizeof mdl, "%s/model.safetensors", a->hubert);
        const char *hub[] = {cfg, mdl};
        fps[k] = (jm_fp){.name = "hubert", .strict = 1, .what = "the HuBERT model"};
        if ((rc = jm_fp_files(&fps[k++], hub, 2, err)))
            return rc;
    }
    if (!a->null_pipeline) {
        fps[k] = (jm_fp){.name = "kmeans", .strict = 1, .what = "the k-means centroids"};
        if ((rc = jm_fp_files(&fps[k++], &a->kmeans, 1, err)))
            return rc;
        fps[k] = (jm_fp){.name = "s2t", .strict = 1, .what = "the speech->text model"};
        if ((rc = jm_fp_files(&fps[k++], &a->s2t, 1, err)))
            return rc;
    }
    if (a->manifest) {
        fps[k] = (jm_fp){.name = "manifest", .strict = 0, .what = "the manifest"};
        if ((rc = jm_fp_files(&fps[k++], &a->manifest, 1, err)))
            return rc;
    }
    *n = k;
    return SL_OK;
}

static pl_params pipeline_params(const run_args *a)
{
    pl_params p = pl_default_params();
    p.features = a->mfcc ? TOK_FEAT_MFCC : TOK_FEAT_HUBERT;
    p.dedup = a->dedup;
    p.hubert_dir = a->hubert;
    p.layer = (int)a->layer;
    p.final_norm = a->final_norm;
    p.kmeans = a->kmeans;
    p.s2t = a->s2t;
    p.audio.max_seconds = (float)a->max_sec;
    if (a->min_sec > 0)
        p.audio.min_samples = (size_t)(a->min_sec * p.audio.target_hz);
    p.beam = a->df.p;
    p.max_batch = (int)a->unit;
    p.seed_layout = a->seed_layout;
    p.null_pipeline = a->null_pipeline;
    return p;
}

int cmd_run(int argc, char **argv)
{
    run_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc < 0)
        return SL_EXIT_OK; // --help
    if (prc)
        return prc;
    int rank = 0, size = 1;
    cli_job_init((int)a.threads, &rank, &size);
    // Every rank opens the models, so a bad file is refused before any work is dispatched.
    sl_err err;
    sl_err_clear(&err);
    job_exec *x = NULL;
    pl_params pp = pipeline_params(&a);
    if (!cli_job_open_exec("run", &pp, &x)) {
        MPI_Finalize();
        return SL_EXIT_FAIL;
    }
    int code;
    if (rank == 0) {
        if (size > 1) { // rank 0 only coordinates: give the memory back
            exec_close(x);
            x = NULL;
        }
        manifest m;
        jm_fp fps[8];
        size_t n_fps = 0;
        int rc = a.manifest ? man_load(a.manifest, &m, &err) : man_walk(a.audio_dir, a.ext, &m, &err);
        if (rc == SL_OK && m.n == 0)
            rc = sl_fail(&err, SL_EINVAL, "run: %s holds no utterances",
                         a.manifest ? a.manifest : a.audio_dir);
        if (rc == SL_OK)
            rc = fingerprints(&a, fps, &n_fps, &err);
        if (rc) {
            fprintf(stderr, "spearlabel run: %s\n", err.msg);
            code = SL_EXIT_FAIL;
        } else {
            coord_params cp = coord_default_params();
            cp.out = a.out;
            cp.m = &m;
            cp.n_ranks = size;
            cp.unit_items = (size_t)a.unit;
            cp.retry_errors = a.retry;
            cp.grace_s = a.grace;
            cp.progress_s = a.progress;
            cp.initial_map_bytes = (size_t)a.map_kib << 10;
            cp.fps = fps;
            cp.n_fps = n_fps;
            cp.argc = argc;
            cp.argv = argv;
            cp.exec = exec_unit;
            cp.exec_ctx = x;
            code = cli_job_coordinate("run", &cp);
        }
        man_free(&m);
        if (code == SL_EXIT_FAIL && size > 1)
            MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL); // workers wait for units that never come
    } else {
        code = cli_job_worker("run", rank, x);
    }
    exec_close(x);
    MPI_Finalize();
    return code;
}
