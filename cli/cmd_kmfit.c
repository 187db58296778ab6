// cli/cmd_kmfit.c — `spearlabel km-fit`: k-means centroids from a sample of a
// corpus, as one process or as an MPI job. The MPI layer is thin: every rank
// reads the manifest, draws the same sample, extracts the features of its
// share (sample position j goes to rank j % size) and keeps them; the math is
// pipeline/kmfit.c, which gets MPI_Allreduce / MPI_Allgatherv as callbacks.
// Rank 0 writes the [K, D] float32 .npy.
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/npy.h"
#include "coordinator/manifest.h"
#include "pipeline/kmfit.h"
#include "pipeline/ops.h"
#include "pipeline/tokens.h"

static const char HELP[] =
    "usage: spearlabel km-fit (--manifest M | --audio-dir DIR [--ext LIST])\n"
    "         (--hubert DIR --layer L [--final-norm] | --features mfcc) -k K\n"
    "         [--percent P] [--max-iter N] [--tol T] [--seed S] [--n-init N] [--threads N]\n"
    "         --out KM.npy\n\n"
    "Fits k-means centroids on the features of a sample of the corpus, like fairseq's\n"
    "examples/hubert/simple_kmeans (dump_*_feature.py + learn_kmeans.py), and writes\n"
    "them as float32 [K, D] .npy for `tokens` and `run` (--kmeans). Whole utterances\n"
    "are sampled (--percent, drawn from --seed); their features are computed on the\n"
    "ranks and stay there. Seeding is k-means|| (distributed k-means++), then Lloyd\n"
    "iterations until the relative inertia change is below --tol or --max-iter.\n"
    "Each iteration is one assignment GEMM per rank (per block of rows) and one\n"
    "MPI_Allreduce of per-cluster sums and counts. Empty clusters are re-seeded with\n"
    "the farthest frames. Same seed, ranks and threads: same centroids.\n"
    "  mpirun -n N spearlabel km-fit ...   (every rank extracts and fits)\n\n"
    "Options:\n"
    "  --manifest M        fairseq tsv (root line, then path<TAB>samples[<TAB>start<TAB>end]),\n"
    "                      NeMo JSON lines, or a list of paths (a piece is one utterance)\n"
    "  --audio-dir DIR     every audio file below DIR\n"
    "  --ext LIST          extensions for --audio-dir (default " MAN_DEFAULT_EXTS ")\n"
    "  --hubert DIR        Hugging Face style HuBERT directory\n"
    "  --layer L           HuBERT layer (0 = encoder input)\n"
    "  --final-norm        apply the final encoder norm to an intermediate pre-LN layer\n"
    "  --features KIND     hubert (default) or mfcc (39 Kaldi MFCC + deltas, 100 frames/s)\n"
    "  -k, --clusters K    number of clusters (the corpus sample needs >= K frames)\n"
    "  --percent P         percent of the utterances to sample, 0 < P <= 100 (default 100;\n"
    "                      fairseq's --percent 0.1 is 10 here)\n"
    "  --max-iter N        Lloyd iterations at most (default 100)\n"
    "  --tol T             stop when (previous - inertia) / inertia < T (default 1e-4)\n"
    "  --seed S            sample and seeding seed (default 0)\n"
    "  --n-init N          whole fits from derived seeds, lowest inertia kept (default 10,\n"
    "                      like sklearn KMeans; 1 is N times cheaper, inertia ~2 % worse)\n"
    "  --init-rounds R     k-means|| rounds (default 5)\n"
    "  --init-trials N     local k-means++ runs on the k-means|| candidates (default 4)\n"
    "  --max-seconds S     skip longer audio (default 60)\n"
    "  --threads N         OpenBLAS threads per rank (default SLURM_CPUS_PER_TASK, else 1)\n"
    "  --progress S        seconds between extraction progress lines (default 10)\n"
    "  --out KM.npy        output centroids (written atomically by rank 0)\n"
    "  -h, --help          this text\n\n"
    "Exit status: 0 done, 1 error (e.g. fewer frames than K), 2 usage error.\n";

enum { O_MANIFEST = 256, O_AUDIODIR, O_EXT, O_HUBERT, O_LAYER, O_FINALNORM, O_FEATURES,
       O_PERCENT, O_MAXITER, O_TOL, O_SEED, O_ROUNDS, O_MAXSEC, O_THREADS, O_PROGRESS, O_OUT, O_TRIALS, O_NINIT };

typedef struct kf_args {
    const char *manifest, *audio_dir, *ext, *hubert, *out;
    long layer, k, max_iter, rounds, threads, trials, n_init;
    int final_norm, mfcc;
    double percent, tol, max_sec, progress;
    unsigned long long seed;
} kf_args;

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, double lo, double hi, long *out)
{
    double d;
    if (parse_num(s, lo, hi, &d) || d != (double)(long)d)
        return -1;
    *out = (long)d;
    return 0;
}

static int parse_args(int argc, char **argv, kf_args *a)
{
    static const struct option opts[] = {
        {"manifest", required_argument, 0, O_MANIFEST}, {"audio-dir", required_argument, 0, O_AUDIODIR},
        {"ext", required_argument, 0, O_EXT},           {"hubert", required_argument, 0, O_HUBERT},
        {"layer", required_argument, 0, O_LAYER},       {"final-norm", no_argument, 0, O_FINALNORM},
        {"features", required_argument, 0, O_FEATURES}, {"clusters", required_argument, 0, 'k'},
        {"percent", required_argument, 0, O_PERCENT},   {"max-iter", required_argument, 0, O_MAXITER},
        {"tol", required_argument, 0, O_TOL},           {"seed", required_argument, 0, O_SEED},
        {"init-rounds", required_argument, 0, O_ROUNDS}, {"max-seconds", required_argument, 0, O_MAXSEC},
        {"threads", required_argument, 0, O_THREADS},   {"progress", required_argument, 0, O_PROGRESS},
        {"out", required_argument, 0, O_OUT},           {"help", no_argument, 0, 'h'},
        {"init-trials", required_argument, 0, O_TRIALS}, {"n-init", required_argument, 0, O_NINIT},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->layer = -1;
    a->max_iter = 100;
    a->rounds = 5;
    a->trials = kmf_default_params().init_trials;
    a->n_init = 10;
    a->percent = 100;
    a->tol = 1e-4;
    a->max_sec = 60;
    a->progress = 10;
    int c;
    double d;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hk:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(HELP, stdout); return -1;
        case O_MANIFEST: a->manifest = optarg; break;
        case O_AUDIODIR: a->audio_dir = optarg; break;
        case O_EXT: a->ext = optarg; break;
        case O_HUBERT: a->hubert = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_FINALNORM: a->final_norm = 1; break;
        case O_FEATURES:
            if (strcmp(optarg, "mfcc") && strcmp(optarg, "hubert"))
                return cli_usage_error("km-fit", "--features wants hubert or mfcc, got '%s'", optarg);
            a->mfcc = !strcmp(optarg, "mfcc");
            break;
        case O_LAYER:
            if (parse_int(optarg, 0, 1000, &a->layer))
                return cli_usage_error("km-fit", "--layer wants an integer >= 0, got '%s'", optarg);
            break;
        case 'k':
            if (parse_int(optarg, 1, 1 << 20, &a->k))
                return cli_usage_error("km-fit", "-k wants an integer 1..1048576, got '%s'", optarg);
            break;
        case O_PERCENT:
            if (parse_num(optarg, 0, 100, &a->percent) || !(a->percent > 0))
                return cli_usage_error("km-fit", "--percent wants 0 < P <= 100, got '%s'", optarg);
            break;
        case O_MAXITER:
            if (parse_int(optarg, 1, 1e6, &a->max_iter))
                return cli_usage_error("km-fit", "--max-iter wants an integer >= 1, got '%s'", optarg);
            break;
        case O_TOL:
            if (parse_num(optarg, 0, 1, &a->tol))
                return cli_usage_error("km-fit", "--tol wants 0..1, got '%s'", optarg);
            break;
        case O_SEED:
            if (parse_num(optarg, 0, 9e15, &d) || d != floor(d))
                return cli_usage_error("km-fit", "--seed wants an integer >= 0, got '%s'", optarg);
            a->seed = (unsigned long long)d;
            break;
        case O_ROUNDS:
            if (parse_int(optarg, 1, 64, &a->rounds))
                return cli_usage_error("km-fit", "--init-rounds wants 1..64, got '%s'", optarg);
            break;
        case O_TRIALS:
            if (parse_int(optarg, 1, 1000, &a->trials))
                return cli_usage_error("km-fit", "--init-trials wants 1..1000, got '%s'", optarg);
            break;
        case O_NINIT:
            if (parse_int(optarg, 1, 1000, &a->n_init))
                return cli_usage_error("km-fit", "--n-init wants 1..1000, got '%s'", optarg);
            break;
        case O_MAXSEC:
            if (parse_num(optarg, 0.05, 36000, &a->max_sec))
                return cli_usage_error("km-fit", "--max-seconds wants 0.05..36000, got '%s'", optarg);
            break;
        case O_THREADS:
            if (parse_int(optarg, 1, 1024, &a->threads))
                return cli_usage_error("km-fit", "--threads wants 1..1024, got '%s'", optarg);
            break;
        case O_PROGRESS:
            if (parse_num(optarg, 0.1, 1e6, &a->progress))
                return cli_usage_error("km-fit", "--progress wants seconds > 0, got '%s'", optarg);
            break;
        default:
            return cli_usage_error("km-fit", "unknown option or missing value: '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("km-fit", "unexpected argument '%s'", argv[optind]);
    if (!a->manifest == !a->audio_dir)
        return cli_usage_error("km-fit", "give exactly one of --manifest and --audio-dir");
    if (a->mfcc && (a->hubert || a->layer >= 0 || a->final_norm))
        return cli_usage_error("km-fit", "--features mfcc takes no --hubert, --layer or --final-norm");
    if (!a->mfcc && (!a->hubert || a->layer < 0))
        return cli_usage_error("km-fit", "give --hubert DIR --layer L, or --features mfcc");
    if (a->k < 1)
        return cli_usage_error("km-fit", "-k K is required");
    if (!a->out)
        return cli_usage_error("km-fit", "--out KM.npy is required");
    return 0;
}

// ---- the two collectives kmfit needs ----

static int mpi_sum(void *ctx, double *buf, size_t n, sl_err *err)
{
    (void)ctx;
    for (size_t off = 0; off < n; off += INT_MAX / 2) {
        size_t len = n - off < (size_t)INT_MAX / 2 ? n - off : (size_t)INT_MAX / 2;
        if (MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)len, MPI_DOUBLE, MPI_SUM,
                          MPI_COMM_WORLD) != MPI_SUCCESS)
            return sl_fail(err, SL_EIO, "km-fit: MPI_Allreduce failed");
    }
    return SL_OK;
}

static int mpi_gather(void *ctx, const void *mine, size_t bytes, void **all, size_t *all_bytes,
                      sl_err *err)
{
    (void)ctx;
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    unsigned long long b = bytes, *each = malloc((size_t)size * sizeof *each);
    int *counts = malloc((size_t)size * sizeof(int)), *displs = malloc((size_t)size * sizeof(int));
    int rc = SL_OK;
    *all = NULL;
    if (!each || !counts || !displs) {
        rc = sl_fail(err, SL_ENOMEM, "km-fit: out of memory");
        goto done; // every rank runs out alike or MPI aborts the job below
    }
    MPI_Allgather(&b, 1, MPI_UNSIGNED_LONG_LONG, each, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    unsigned long long total = 0;
    for (int r = 0; r < size; r++) {
        displs[r] = (int)total;
        counts[r] = (int)each[r];
        total += each[r];
    }
    if (total > INT_MAX) {
        rc = sl_fail(err, SL_EINVAL, "km-fit: %llu bytes of k-means|| candidates exceed one "
                     "MPI_Allgatherv; lower --init-rounds", total);
        goto done;
    }
    *all = malloc(total ? total : 1);
    if (!*all) {
        rc = sl_fail(err, SL_ENOMEM, "km-fit: out of memory");
        goto done;
    }
    MPI_Allgatherv(mine, (int)bytes, MPI_BYTE, *all, counts, displs, MPI_BYTE, MPI_COMM_WORLD);
    *all_bytes = total;
done:
    free(each);
    free(counts);
    free(displs);
    return rc;
}

// ---- sample ----

// Sample positions: the first ceil(n * percent / 100) of a seeded shuffle of the
// usable items, in manifest order. Independent of the rank count.
static size_t draw_sample(const manifest *m, double percent, unsigned long long seed,
                          size_t **out)
{
    size_t n = 0;
    size_t *idx = malloc((m->n ? m->n : 1) * sizeof(size_t));
    if (!idx)
        return (size_t)-1;
    for (size_t i = 0; i < m->n; i++)
        if (!m->items[i].bad)
            idx[n++] = i;
    size_t take = (size_t)ceil((double)n * percent / 100.0 - 1e-9);
    if (take > n)
        take = n;
    uint64_t s = seed ^ 0x5eed5eedull;
    for (size_t i = n; i > 1; i--) { // Fisher-Yates, splitmix64
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        size_t j = (size_t)(z % i), t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    // in manifest order
    for (size_t i = 1; i < take; i++)
        for (size_t q = i; q > 0 && idx[q - 1] > idx[q]; q--) {
            size_t t = idx[q];
            idx[q] = idx[q - 1];
            idx[q - 1] = t;
        }
    *out = idx;
    return take;
}

typedef struct share {
    float *x;     // (n, dim)
    uint64_t *id; // (n): sample position << 32 | frame
    size_t n, cap, dim;
    size_t utts_ok, utts_failed;
    double audio_s;
} share;

static int share_add(share *s, const float *f, size_t T, size_t dim, uint64_t pos, sl_err *err)
{
    if (s->n + T > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + T)
            cap += cap / 2;
        float *x = realloc(s->x, cap * dim * sizeof(float));
        if (x)
            s->x = x;
        uint64_t *id = realloc(s->id, cap * sizeof(uint64_t));
        if (id)
            s->id = id;
        if (!x || !id)
            return sl_fail(err, SL_ENOMEM, "km-fit: out of memory for %zu frames", cap);
        s->cap = cap;
    }
    memcpy(s->x + s->n * dim, f, T * dim * sizeof(float));
    for (size_t t = 0; t < T; t++)
        s->id[s->n + t] = pos << 32 | (uint64_t)t;
    s->n += T;
    s->dim = dim;
    return SL_OK;
}

// Extracts the features of sample positions rank, rank + size, ...
static int extract(const kf_args *a, const manifest *m, const size_t *sample, size_t n_sample,
                   int rank, int size, share *sh, sl_err *err)
{
    tok_params tp = tok_default_params();
    tp.features = a->mfcc ? TOK_FEAT_MFCC : TOK_FEAT_HUBERT;
    tp.hubert_dir = a->hubert;
    tp.layer = (int)a->layer;
    tp.final_norm = a->final_norm;
    tp.audio.max_seconds = (float)a->max_sec;
    tok_pipeline *p = NULL;
    tok_state *s = NULL;
    int rc;
    if ((rc = tok_pipeline_open_params(&p, &tp, err)) || (rc = tok_state_new(&s, p, err))) {
        tok_pipeline_close(p);
        return rc;
    }
    size_t mine = n_sample > (size_t)rank ? (n_sample - (size_t)rank + (size_t)size - 1) / (size_t)size : 0;
    double t0 = sl_now(), last = t0;
    size_t done = 0;
    for (size_t j = (size_t)rank; j < n_sample; j += (size_t)size) {
        const man_item *it = &m->items[sample[j]];
        const float *f;
        size_t T, D;
        float dur = 0;
        sl_err e;
        if (tok_features_run_range(p, s, it->path, it->start, it->end, &f, &T, &D, &dur, &e)) {
            SL_LOG(WARN, "km-fit", "skip %s (%s): %s", it->id,
                   sl_stage_name(tok_failed_stage(s)), e.msg);
            sh->utts_failed++;
        } else if ((rc = share_add(sh, f, T, D, (uint64_t)j, err))) {
            break;
        } else {
            sh->utts_ok++;
            sh->audio_s += (double)dur;
        }
        done++;
        double t = sl_now();
        if (rank == 0 && t - last >= a->progress) {
            last = t;
            SL_LOG(INFO, "km-fit", "features: %zu/%zu utterances of rank 0's share, %zu frames, "
                   "%.1f s audio, %.1f s", done, mine, sh->n, sh->audio_s, t - t0);
        }
    }
    tok_state_free(s);
    tok_pipeline_close(p);
    return rc;
}

int cmd_kmfit(int argc, char **argv)
{
    kf_args a;
    int prc = parse_args(argc, argv, &a);
    if (prc < 0)
        return SL_EXIT_OK;
    if (prc)
        return prc;
    int provided, rank = 0, size = 1;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    sl_log_set_rank(rank);
    ops_set_threads(ops_threads_default((int)a.threads));
    double t_start = sl_now();

    sl_err err;
    sl_err_clear(&err);
    manifest m;
    memset(&m, 0, sizeof m);
    size_t *sample = NULL, n_sample = 0;
    share sh;
    memset(&sh, 0, sizeof sh);
    float *c = NULL;
    int code = SL_EXIT_FAIL;
    int rc = a.manifest ? man_load(a.manifest, &m, &err) : man_walk(a.audio_dir, a.ext, &m, &err);
    if (rc == SL_OK) {
        n_sample = draw_sample(&m, a.percent, a.seed, &sample);
        if (n_sample == (size_t)-1)
            rc = sl_fail(&err, SL_ENOMEM, "km-fit: out of memory");
        else if (n_sample == 0)
            rc = sl_fail(&err, SL_EINVAL, "km-fit: %s holds no usable utterances",
                         a.manifest ? a.manifest : a.audio_dir);
    }
    if (rc == SL_OK) {
        if (rank == 0)
            SL_LOG(INFO, "km-fit", "sample: %zu of %zu utterances (%.4g %%, seed %llu) over %d "
                   "rank%s; OpenBLAS %s, %d thread%s per rank", n_sample, m.n, a.percent, a.seed,
                   size, size == 1 ? "" : "s", ops_blas_corename(), ops_get_threads(),
                   ops_get_threads() == 1 ? "" : "s");
        rc = extract(&a, &m, sample, n_sample, rank, size, &sh, &err);
    }
    // Every rank learns whether all ranks are ready before any collective of the fit.
    int ok = rc == SL_OK, all_ok = ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ok) {
        if (!ok)
            fprintf(stderr, "spearlabel km-fit%s: %s\n", size > 1 ? " (a rank)" : "", err.msg);
        goto out;
    }
    double tot[5] = {(double)sh.utts_ok, (double)sh.utts_failed, (double)sh.n, sh.audio_s,
                     sl_now() - t_start};
    double t_feat = tot[4];
    MPI_Allreduce(MPI_IN_PLACE, tot, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&t_feat, &tot[4], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    // The feature dimension: ranks without rows learn it from the others.
    unsigned long long dim = sh.dim, dim_max = 0;
    MPI_Allreduce(&dim, &dim_max, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        SL_LOG(INFO, "km-fit", "features: %.0f utterances (%.0f failed), %.0f frames of dimension "
               "%llu, %.1f s audio in %.1f s", tot[0], tot[1], tot[2], dim_max, tot[3], tot[4]);
    if (dim_max == 0) {
        if (rank == 0)
            fprintf(stderr, "spearlabel km-fit: no utterance of the sample gave features\n");
        goto out;
    }
    c = malloc((size_t)a.k * dim_max * sizeof(float));
    if (!c) {
        fprintf(stderr, "spearlabel km-fit: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL);
    }
    kmf_comm comm = {NULL, mpi_sum, mpi_gather};
    kmf_data d = {sh.x, sh.id, sh.n, (size_t)dim_max};
    kmf_params kp = kmf_default_params();
    kp.k = (size_t)a.k;
    kp.max_iter = (int)a.max_iter;
    kp.tol = a.tol;
    kp.seed = a.seed;
    kp.rounds = (int)a.rounds;
    kp.init_trials = (int)a.trials;
    kp.n_init = (int)a.n_init;
    kp.verbose = rank == 0;
    kmf_stats st;
    rc = kmf_fit(&comm, &d, &kp, c, &st, &err);
    if (rc == SL_EINVAL) { // decided from the global row count: every rank agrees
        if (rank == 0)
            fprintf(stderr, "spearlabel km-fit: %s\n", err.msg);
        goto out;
    }
    if (rc) { // a local failure (memory): the other ranks may wait in a collective
        fprintf(stderr, "spearlabel km-fit (rank %d): %s\n", rank, err.msg);
        MPI_Abort(MPI_COMM_WORLD, SL_EXIT_FAIL);
    }
    // Memory per rank: the feature share and the peak RSS.
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mem[2] = {(double)sh.n * (double)dim_max * 4.0 / 1048576.0, (double)ru.ru_maxrss / 1024.0};
    double *all = rank == 0 ? malloc(sizeof(double) * 2 * (size_t)size) : NULL;
    MPI_Gather(mem, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    code = SL_EXIT_OK;
    if (rank == 0) {
        size_t shape[2] = {(size_t)a.k, (size_t)dim_max};
        if (sl_npy_write(a.out, SL_NPY_F32, 2, shape, c, &err)) {
            fprintf(stderr, "spearlabel km-fit: %s\n", err.msg);
            code = SL_EXIT_FAIL;
        }
        SL_LOG(INFO, "km-fit", "fit: k %ld, %zu frames, %zu k-means|| candidates, seeding inertia "
               "%.9g, %d iterations, inertia %.9g, %zu empty clusters re-seeded; seeding %.2f s, "
               "Lloyd %.2f s (%.3g frames x iterations / s)", a.k, st.n_total, st.n_candidates,
               st.seed_inertia, st.iterations, st.inertia, st.n_reseeded, st.seconds_init,
               st.seconds_lloyd,
               st.seconds_lloyd > 0 ? (double)st.n_total * st.iterations / st.seconds_lloyd : 0.0);
        for (int r = 0; all && r < size; r++)
            SL_LOG(INFO, "km-fit", "memory rank %d: features %.1f MiB, peak RSS %.1f MiB", r,
                   all[2 * r], all[2 * r + 1]);
        if (code == SL_EXIT_OK)
            printf("km-fit: wrote %s [%ld, %llu]; inertia %.9g after %d iterations; %.1f s\n",
                   a.out, a.k, dim_max, st.inertia, st.iterations, sl_now() - t_start);
    }
    free(all);
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
out:
    free(c);
    free(sh.x);
    free(sh.id);
    free(sample);
    man_free(&m);
    MPI_Finalize();
    return code;
}
