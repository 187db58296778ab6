// cli/cmd_run.c — `spearlabel run`: the job. Rank 0 -> cli_job_coordinate()
// (coord_run), ranks 1..N-1 -> cli_job_worker() (worker_run), both in cli/job.c.
// With one rank (no mpirun) the process is coordinator and worker.
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/job.h"
#include "cli/job_flags.h"
#include "cli/provenance.h"
#include "common/log.h"
#include "coordinator/coord.h"
#include "coordinator/manifest.h"
#include "pipeline/pipeline.h"
#include "worker/exec.h"

// The help text around the job flags' lines (job_flags_help, job_flags_help_segment).
#define HELP                                                                                 \
    "usage: spearlabel run (--manifest M | --audio-dir DIR [--ext wav,flac,...]) --out DB\n"  \
    "         (--hubert DIR --layer L [--final-norm] | --features mfcc) --kmeans KM.npy\n"     \
    "         --s2t MODEL.safetensors [--dedup] [decoding flags] [--unit N] [--threads N]\n"   \
    "         [--min-seconds S] [--max-seconds S] [cutting flags] [--retry-errors] [--grace S]\n" \
    "         [--seed-layout]\n\n"                                                          \
    "Labels every utterance of the manifest: audio -> HuBERT layer L -> k-means ids ->\n"     \
    "text ids (SPEAR-TTS speech->text), and stores `semantic ids, -1, text ids` rows\n"       \
    "in the dataset DB (created if absent). Bad files become error records; the job\n"        \
    "goes on. Run it as one process, or as an MPI job with the same flags:\n"                 \
    "  mpirun -n N spearlabel run ...   (rank 0 coordinates and writes, 1..N-1 work)\n"       \
    "Re-running the same command on the same DB resumes: stored ids are skipped and\n"        \
    "the result equals an uninterrupted run. Changed models or row-changing flags\n"          \
    "are refused. SIGUSR1 / SIGTERM / SIGINT stop it gracefully (exit 3).\n\n"                \
    "Input:\n"                                                                                \
    "  --manifest M        fairseq tsv (root line, then path<TAB>samples[<TAB>start<TAB>end]),\n" \
    "                      NeMo JSON lines, or a list of paths; a piece (start/end seconds,\n"   \
    "                      NeMo offset/duration) is one row, key path@SSSSS.sss-EEEEE.eee\n"   \
    "  --audio-dir DIR     every audio file below DIR (ids relative to DIR)\n"                \
    "  --ext LIST          extensions for --audio-dir (default " MAN_DEFAULT_EXTS ")\n"        \
    "  --min-seconds S     shorter audio is an error (default: one HuBERT frame)\n"           \
    "Models:\n"                                                                               \
    "  --hubert DIR        Hugging Face style HuBERT directory (config.json, model.safetensors)\n" \
    "  --layer L           HuBERT layer whose output is clustered (0 = encoder input)\n"      \
    "  --final-norm        apply the final encoder norm to an intermediate pre-LN layer\n"    \
    "  --features KIND     hubert (default) or mfcc: 39 Kaldi MFCC + deltas, 100 frames/s\n"  \
    "                      (HuBERT's first-iteration targets; no --hubert, --layer)\n"        \
    "  --kmeans KM         k-means centroids [K, D] (.npy or .safetensors)\n"                 \
    "  --dedup             collapse consecutive repeated semantic ids in the rows\n"          \
    "  --s2t MODEL         SPEAR-TTS TextToSemantic safetensors\n"                            \
    "Decoding:\n" DECODE_FLAGS_HELP                                                           \
    "Job:\n"                                                                                  \
    "  --out DB            the dataset directory\n"

enum { O_MANIFEST = 256, O_AUDIODIR, O_EXT, O_HUBERT, O_LAYER, O_FINALNORM, O_KMEANS, O_S2T,
       O_MINSEC, O_MAXSEC, O_NULL, O_FEATURES, O_DEDUP };

// The front-half flags (model paths, layer, features, dedup, audio limits) go straight
// into jf.pp; min/max seconds are kept as typed for the range check, then set there.
typedef struct run_args {
    const char *manifest, *audio_dir, *ext;
    double min_sec, max_sec;
    job_flags jf;
} run_args;

static void print_help(void)
{
    fputs(HELP, stdout);
    job_flags_help(stdout, 0);
    fputs("Long files (cut inside the job; a file of at most --max-seconds is one row):\n",
          stdout);
    job_flags_help_segment(stdout);
    fputs(JOB_FLAGS_HELP_END, stdout);
}

// The flags of run that regenerate does not take; they go into a and a->jf.pp.
static int run_flag(void *ctx, int c, const char *arg)
{
    run_args *a = ctx;
    pl_params *p = &a->jf.pp;
    double d;
    switch (c) {
    case 'h': print_help(); return -1;
    case O_MANIFEST: a->manifest = arg; return 0;
    case O_AUDIODIR: a->audio_dir = arg; return 0;
    case O_EXT: a->ext = arg; return 0;
    case O_HUBERT: p->hubert_dir = arg; return 0;
    case O_KMEANS: p->kmeans = arg; return 0;
    case O_S2T: p->s2t = arg; return 0;
    case O_FINALNORM: p->final_norm = 1; return 0;
    case O_NULL: p->null_pipeline = 1; return 0;
    case O_DEDUP: p->dedup = 1; return 0;
    case O_FEATURES:
        if (strcmp(arg, "mfcc") && strcmp(arg, "hubert"))
            return cli_usage_error("run", "--features wants hubert or mfcc, got '%s'", arg);
        p->features = strcmp(arg, "mfcc") ? TOK_FEAT_HUBERT : TOK_FEAT_MFCC;
        return 0;
    case O_LAYER:
        if (cli_parse_double(arg, 0, 1000, &d) || d != (long)d)
            return cli_usage_error("run", "--layer wants an integer >= 0, got '%s'", arg);
        p->layer = (int)d;
        return 0;
    case O_MINSEC:
        if (cli_parse_double(arg, 0, 1e6, &a->min_sec))
            return cli_usage_error("run", "--min-seconds wants a number >= 0, got '%s'", arg);
        return 0;
    case O_MAXSEC:
        if (cli_parse_double(arg, 0.02, 3600, &a->max_sec))
            return cli_usage_error("run", "--max-seconds wants 0.02..3600, got '%s'", arg);
        return 0;
    }
    return cli_usage_error("run", "internal: option %d", c);
}

static int parse_args(int argc, char **argv, run_args *a)
{
    static const struct option own[] = {
        {"manifest", required_argument, 0, O_MANIFEST},
        {"audio-dir", required_argument, 0, O_AUDIODIR}, {"ext", required_argument, 0, O_EXT},
        {"hubert", required_argument, 0, O_HUBERT},     {"layer", required_argument, 0, O_LAYER},
        {"final-norm", no_argument, 0, O_FINALNORM},    {"kmeans", required_argument, 0, O_KMEANS},
        {"s2t", required_argument, 0, O_S2T},
        {"min-seconds", required_argument, 0, O_MINSEC},
        {"max-seconds", required_argument, 0, O_MAXSEC},
        {"features", required_argument, 0, O_FEATURES}, {"dedup", no_argument, 0, O_DEDUP},
        {"null-pipeline", no_argument, 0, O_NULL},      // bench/tests: synthetic rows, no models
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    job_flags_init(&a->jf, 0);
    pl_params *p = &a->jf.pp;
    p->layer = -1; // not given: MFCC and the null pipeline take none
    a->max_sec = (double)p->seg.max_seconds;
    int rc = job_flags_getopt(&a->jf, argc, argv, own, run_flag, a);
    if (rc)
        return rc;
    if (!a->manifest == !a->audio_dir)
        return cli_usage_error("run", "give exactly one of --manifest and --audio-dir");
    if (!a->jf.cp.out)
        return cli_usage_error("run", "--out DB is required");
    int mfcc = p->features == TOK_FEAT_MFCC;
    if (mfcc && (p->hubert_dir || p->layer >= 0 || p->final_norm))
        return cli_usage_error("run", "--features mfcc takes no --hubert, --layer or --final-norm");
    if (!p->null_pipeline && mfcc && (!p->kmeans || !p->s2t))
        return cli_usage_error("run", "--kmeans and --s2t are required");
    if (!p->null_pipeline && !mfcc && (!p->hubert_dir || !p->kmeans || !p->s2t || p->layer < 0))
        return cli_usage_error("run", "--hubert, --layer, --kmeans and --s2t are required");
    if (a->min_sec > a->max_sec)
        return cli_usage_error("run", "--min-seconds is above --max-seconds");
    // --max-seconds: the longest segment, and so the longest item the pipeline takes whole.
    p->audio.max_seconds = (float)a->max_sec;
    p->seg.max_seconds = (float)a->max_sec;
    if (a->min_sec > 0)
        p->audio.min_samples = (size_t)(a->min_sec * p->audio.target_hz);
    if ((rc = job_flags_check_segment(&a->jf)))
        return rc;
    return job_flags_finish(&a->jf);
}

// The fingerprints a resume must match: the options of cp and pp, the model files, the
// manifest (a warning only).
static int fingerprints(const run_args *a, const coord_params *cp, const pl_params *pp,
                        jm_fp *fps, size_t *n, sl_err *err)
{
    size_t k = 0;
    int rc;
    char opt[JOB_OPTIONS_CAP];
    job_options_canonical(cp, pp, opt, sizeof opt);
    fps[k] = (jm_fp){.name = "options", .strict = 1, .what = "the row-changing options"};
    jm_fp_text(&fps[k], opt);
    char before[JOB_OPTIONS_CAP];
    if (job_options_before_resample(opt, before, sizeof before)) {
        jm_fp old;
        jm_fp_text(&old, before);
        memcpy(fps[k].old_hex, old.hex, sizeof old.hex);
        fps[k].old_why = "audio was read through the stream reader (resample=2): that "
                         "older spearlabel cut the last samples off many non-16 kHz files "
                         "(soxr_oneshot), this one keeps them, so those rows would change";
    }
    k++;
    if (!pp->null_pipeline && pp->features == TOK_FEAT_HUBERT) {
        char cfg[4200], mdl[4200];
        snprintf(cfg, sizeof cfg, "%s/config.json", pp->hubert_dir);
        snprintf(mdl, sizeof mdl, "%s/model.safetensors", pp->hubert_dir);
        const char *hub[] = {cfg, mdl};
        fps[k] = (jm_fp){.name = "hubert", .strict = 1, .what = "the HuBERT model"};
        if ((rc = jm_fp_files(&fps[k++], hub, 2, err)))
            return rc;
    }
    if (!pp->null_pipeline) {
        fps[k] = (jm_fp){.name = "kmeans", .strict = 1, .what = "the k-means centroids"};
        if ((rc = jm_fp_files(&fps[k++], &pp->kmeans, 1, err)))
            return rc;
        fps[k] = (jm_fp){.name = "s2t", .strict = 1, .what = "the speech->text model"};
        if ((rc = jm_fp_files(&fps[k++], &pp->s2t, 1, err)))
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

int cmd_run(int argc, char **argv)
{
    run_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc < 0)
        return SL_EXIT_OK; // --help
    if (prc)
        return prc;
    int rank = 0, size = 1;
    cli_job_init(a.jf.threads, &rank, &size);
    // Every rank opens the models, so a bad file is refused before any work is dispatched.
    sl_err err;
    sl_err_clear(&err);
    job_exec *x = NULL;
    const pl_params *pp = &a.jf.pp;
    if (!cli_job_open_exec("run", pp, &x)) {
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
        coord_params cp = a.jf.cp; // out, unit, retry, grace, progress, map size
        cp.m = &m;
        cp.n_ranks = size;
        cp.argc = argc;
        cp.argv = argv;
        cp.exec = exec_unit;
        cp.exec_partial = exec_set_partial;
        cp.exec_ctx = x;
        cp.sched = &cli_job_sched; // a worker's pool of held units, as on a worker rank
        if (rc == SL_OK)
            rc = fingerprints(&a, &cp, pp, fps, &n_fps, &err);
        cli_prov prov = {0}; // where each model came from, recorded beside its fingerprint
        if (rc == SL_OK && !pp->null_pipeline)
            rc = cli_prov_collect(&prov, pp->features == TOK_FEAT_MFCC ? NULL : pp->hubert_dir,
                                  pp->kmeans, pp->s2t, &err);
        if (rc) {
            fprintf(stderr, "spearlabel run: %s\n", err.msg);
            code = SL_EXIT_FAIL;
        } else {
            cp.fps = fps;
            cp.n_fps = n_fps;
            cp.meta = prov.kv;
            cp.n_meta = prov.n_pairs;
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
