// cli/job_flags.c — see job_flags.h.
#include "cli/job_flags.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

const struct option JOB_FLAG_OPTIONS[] = {
    {"out", required_argument, 0, JF_OUT},          {"unit", required_argument, 0, JF_UNIT},
    {"threads", required_argument, 0, JF_THREADS},  {"grace", required_argument, 0, JF_GRACE},
    {"progress", required_argument, 0, JF_PROGRESS}, {"seed-layout", no_argument, 0, JF_SEEDLAYOUT},
    {"retry-errors", no_argument, 0, JF_RETRY},
    {"map-size-kib", required_argument, 0, JF_MAPSIZE}, // tests: initial LMDB map
    {"pool", required_argument, 0, JF_POOL},
    {"min-segment", required_argument, 0, JF_MINSEG},
    {"min-pause", required_argument, 0, JF_MINPAUSE},
    {"pause-db", required_argument, 0, JF_PAUSEDB},
    {"silence-dbfs", required_argument, 0, JF_SILENCEDB},
    {"keep-silence", no_argument, 0, JF_KEEPSILENCE},
    {"vad-json", no_argument, 0, JF_VADJSON},
    {0, 0, 0, 0}};

void job_flags_options(struct option *out, size_t cap, const struct option *own)
{
    struct option tmp[64];
    cli_join_options(tmp, sizeof tmp / sizeof tmp[0], own, JOB_FLAG_OPTIONS);
    cli_join_options(out, cap, tmp, DECODE_FLAG_OPTIONS);
}

void job_flags_init(job_flags *f, int regenerate)
{
    memset(f, 0, sizeof *f);
    f->cmd = regenerate ? "regenerate" : "run";
    f->cp = coord_default_params();
    f->pp = pl_default_params();
    f->pp.text_only = regenerate;
    decode_flags_init(&f->df);
    f->pp.beam = f->df.p;
    f->pp.cross_kv = f->df.cross_kv;
    f->pp.max_batch = (int)f->cp.unit_items;
    if (!regenerate) // --max-seconds: the longest segment, and the longest item left whole
        f->pp.audio.max_seconds = f->pp.seg.max_seconds;
}

int job_flags_getopt(job_flags *f, int argc, char **argv, const struct option *own,
                     job_own_flag_fn own_flag, void *ctx)
{
    struct option opts[64];
    job_flags_options(opts, sizeof opts / sizeof opts[0], own);
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == '?' || c == ':')
            return cli_usage_error(f->cmd, "unknown option or missing value: '%s'",
                                   argv[optind - 1]);
        rc = job_flags_takes(c) ? job_flags_parse(f, c, optarg) : own_flag(ctx, c, optarg);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(f->cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

int job_flags_takes(int opt)
{
    return (opt >= JF_FIRST && opt < JF_LAST) || (opt >= DF_FIRST && opt < DF_LAST);
}

// A whole number in [lo, hi]; "4" and also "4.0" (what `run` always took).
static int parse_whole(const char *s, long lo, long hi, long *out)
{
    double d;
    if (cli_parse_double(s, (double)lo, (double)hi, &d) || d != (double)(long)d)
        return -1;
    *out = (long)d;
    return 0;
}

int job_flags_parse(job_flags *f, int opt, const char *arg)
{
    const char *cmd = f->cmd;
    long v;
    double d;
    if (opt >= DF_FIRST && opt < DF_LAST)
        return decode_flags_parse(&f->df, opt, arg, cmd);
    if (opt >= JF_MINSEG && opt <= JF_VADJSON && f->pp.text_only)
        return cli_usage_error(cmd, "the cutting flags (--min-segment, --min-pause, --pause-db, "
                               "--silence-dbfs, --keep-silence, --vad-json) apply to run only");
    switch (opt) {
    case JF_MINSEG:
        if (cli_parse_double(arg, 0.01, 1800, &d))
            return cli_usage_error(cmd, "--min-segment wants seconds in [0.01, 1800], got '%s'",
                                   arg);
        f->pp.seg.min_seconds = (float)d;
        return 0;
    case JF_MINPAUSE:
        if (cli_parse_double(arg, 0.02, 3600, &d))
            return cli_usage_error(cmd, "--min-pause wants seconds in [0.02, 3600], got '%s'",
                                   arg);
        f->pp.seg.min_pause_seconds = (float)d;
        return 0;
    case JF_PAUSEDB:
        if (cli_parse_double(arg, 0, 200, &d))
            return cli_usage_error(cmd, "--pause-db wants dB in [0, 200], got '%s'", arg);
        f->pp.seg.pause_db = (float)d;
        return 0;
    case JF_SILENCEDB:
        if (cli_parse_double(arg, -200, 0, &d))
            return cli_usage_error(cmd, "--silence-dbfs wants dBFS in [-200, 0], got '%s'", arg);
        f->pp.seg.silence_dbfs = (float)d;
        return 0;
    case JF_KEEPSILENCE: f->pp.seg.drop_silent = 0; return 0;
    case JF_VADJSON: f->pp.vad_json = 1; return 0;
    case JF_OUT: f->cp.out = arg; return 0;
    case JF_SEEDLAYOUT: f->pp.seed_layout = 1; return 0;
    case JF_RETRY:
        if (f->pp.text_only)
            return cli_usage_error(cmd, "--retry-errors applies to run only");
        f->cp.retry_errors = 1;
        return 0;
    case JF_UNIT:
        if (parse_whole(arg, 1, JOB_MAX_UNIT, &v))
            return cli_usage_error(cmd, "--unit wants 1..%d, got '%s'", JOB_MAX_UNIT, arg);
        f->cp.unit_items = (size_t)v;
        return 0;
    case JF_POOL:
        if (parse_whole(arg, 1, JOB_MAX_POOL, &v))
            return cli_usage_error(cmd, "--pool wants 1..%d, got '%s'", JOB_MAX_POOL, arg);
        f->pp.pool = (int)v;
        return 0;
    case JF_THREADS:
        if (parse_whole(arg, 1, 1024, &v))
            return cli_usage_error(cmd, "--threads wants 1..1024, got '%s'", arg);
        f->threads = (int)v;
        return 0;
    case JF_GRACE:
        if (cli_parse_double(arg, 0, 1e6, &f->cp.grace_s))
            return cli_usage_error(cmd, "--grace wants seconds >= 0, got '%s'", arg);
        return 0;
    case JF_PROGRESS:
        if (cli_parse_double(arg, 0.1, 1e6, &f->cp.progress_s))
            return cli_usage_error(cmd, "--progress wants seconds > 0, got '%s'", arg);
        return 0;
    case JF_MAPSIZE:
        if (cli_parse_double(arg, 64, 1e9, &d))
            return cli_usage_error(cmd, "--map-size-kib wants >= 64, got '%s'", arg);
        f->cp.initial_map_bytes = (size_t)d << 10;
        return 0;
    }
    return cli_usage_error(cmd, "internal: option %d is not a job flag", opt);
}

int job_flags_finish(job_flags *f)
{
    int rc = decode_flags_finish(&f->df, f->cmd);
    if (rc)
        return rc;
    f->pp.beam = f->df.p;
    f->pp.cross_kv = f->df.cross_kv;
    f->pp.max_batch = (int)f->cp.unit_items;
    return 0;
}

void job_flags_help(FILE *out, int regenerate)
{
    coord_params d = coord_default_params();
    fprintf(out, "  --unit N            %s per work unit, decoded as one batch "
            "(default %zu, max %d)\n", regenerate ? "rows" : "utterances", d.unit_items,
            JOB_MAX_UNIT);
    fputs("  --threads N         threads per rank (OpenBLAS and the decoder; default SLURM_CPUS_PER_TASK,\n"
          "                      else 1)\n",
          out);
    fputs("  --pool N            utterances a worker decodes together across its units\n"
          "                      (default 2 x --unit: what it holds); never changes a row\n",
          out);
    if (!regenerate)
        fputs("  --retry-errors      recompute ids stored as errors\n", out);
    fprintf(out, "  --grace S           after a stop signal, collect in-flight work for S s "
            "(default %g)\n", d.grace_s);
    fputs("  --seed-layout       rows as the seed writes them (speech EOS and text EOS included)\n",
          out);
    fprintf(out, "  --progress S        seconds between progress lines when stderr is not a "
            "terminal (%g)\n", d.progress_s);
}

void job_flags_help_segment(FILE *out)
{
    seg_params d = pl_default_params().seg;
    fprintf(out, "  --max-seconds S     the longest segment: a file or piece longer than S is cut\n"
            "                      into segments at pauses, each a row keyed\n"
            "                      <id>@SSSSS.sss-EEEEE.eee (default %g; >= 2 x --min-segment)\n",
            (double)d.max_seconds);
    fprintf(out, "  --min-segment S     the shortest piece a cut may leave (default %g)\n",
            (double)d.min_seconds);
    fprintf(out, "  --min-pause S       the shortest quiet run taken as a pause (default %g)\n",
            (double)d.min_pause_seconds);
    fprintf(out, "  --pause-db D        a window has pauses when its levels spread at least D dB "
            "(default %g)\n", (double)d.pause_db);
    fprintf(out, "  --silence-dbfs D    quieter frames are silence in any window; segments all "
            "below it\n                      are dropped (default %g)\n",
            (double)d.silence_dbfs);
    fputs("  --keep-silence      keep segments that are all silence (rows of them)\n"
          "  --vad-json          cut at the voice_activity [start, end] list of the .json beside\n"
          "                      each long file (LibriLight: a.flac -> a.json) instead of pauses\n",
          out);
}

int job_flags_check_segment(const job_flags *f)
{
    seg_cutter *c = NULL;
    sl_err e;
    if (seg_open(&c, f->pp.seg, 0, &e)) // the cutter's own rules, its own words
        return cli_usage_error(f->cmd, "cutting flags: %s (--max-seconds %g, --min-segment %g, "
                               "--min-pause %g)", e.msg, (double)f->pp.seg.max_seconds,
                               (double)f->pp.seg.min_seconds, (double)f->pp.seg.min_pause_seconds);
    seg_close(c);
    return 0;
}

// The options fingerprint. Its text must not change for a setting that existing datasets
// were written with, or they stop resuming. What it was before this function existed:
//   run:        format=1;layer=L;final_norm=F;unit=N;unit_seconds=120;min_seconds=S;
//               max_seconds=S;seed_layout=0|1;null=0|1;<decoding>[;features=mfcc-kaldi-39-v1]
//               [;dedup=1]
//   regenerate: format=1;regenerate=1;unit=N;seed_layout=0|1;<decoding>
// with <decoding> = decode_flags_canonical (then of the decoding flags) and the seconds
// printed "%.9g" from the doubles the user typed. The values now come from the structs
// the job runs with, so three of them are printed back from another form:
//   * max_seconds is a float (audio_params): printed as the shortest decimal that reads back
//     as that float, so every value of up to 6 significant digits (60, 30, 12.5, 12.3, 0.1)
//     prints as before; longer ones may print differently (12.3456789 -> 12.345679).
//   * min_seconds is min_samples at target_hz: 400 samples (audio_default_params() when the
//     string was fixed, i.e. no --min-seconds) prints 0, anything else min_samples/target_hz.
//     Same as before for every multiple of 1/16000 s (0.5, 0.25, 0.1, 0.01, 1); others print
//     the truncated sample count (0.12345 -> 0.1234375), and --min-seconds in
//     [0.025, 0.0250625) prints 0: it gives the same 400 samples as the default.
//   * unit_seconds was a literal 120; it is now cp->unit_seconds (120 prints 120).
// Fields the old text did not have are appended only when they differ from the value every
// existing dataset was written with (constants here, not the current defaults, so that a
// changed default changes the text): run: target_hz (16000); regenerate: unit_seconds
// (120), null (0); both: keep_eos (0, inside <decoding>), cross_kv (f32: ";cross_kv=f16"
// after them; float16 cross K/V move scores, so rows of the two must not mix).
// One change of the code itself is in the text: `run` ends in JOB_OPTIONS_RESAMPLE
// (";resample=2") since audio is read through pipeline/audio_stream.h, which keeps the
// tail that soxr_oneshot cut off non-16 kHz files (pipeline/audio.h). A dataset written
// before has the text without it, so its resume is refused (cmd_run.c names why, via
// job_options_before_resample); rows of such files would otherwise mix two lengths.
// Then, right before it, JOB_OPTIONS_SEGMENT with the cutting params (pp->seg, vad_json),
// since files and pieces longer than --max-seconds are cut into segment rows instead of
// being "too long" (and --max-seconds' default went from 60 to 30): an older dataset has
// no such tag and its resume is refused as options changed.
enum { FP_TARGET_HZ_0 = 16000, FP_MIN_SAMPLES_0 = 400, FP_UNIT_SECONDS_0 = 120 };

// %.9g of the shortest decimal that reads back as f: what the user typed, not the float's
// own binary digits (12.3f is 12.3000002).
static void float_as_typed(float f, char *buf, size_t cap)
{
    char s[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)f);
        if (strtof(s, NULL) == f)
            break;
    }
    snprintf(buf, cap, "%.9g", strtod(s, NULL));
}

// -Wswitch: a new feature kind does not compile until it has its tag here.
static const char *features_tag(tok_features k)
{
    switch (k) {
    case TOK_FEAT_HUBERT: return "";
    case TOK_FEAT_MFCC: return ";features=mfcc-kaldi-39-v1";
    }
    return ";features=unknown";
}

void job_options_canonical(const coord_params *cp, const pl_params *pp, char *buf, size_t cap)
{
    char dec[512], extra[128] = "";
    decode_flags_canonical(&pp->beam, dec, sizeof dec);
    int n;
    if (pp->text_only) {
        size_t k = 0;
        if (cp->unit_seconds != FP_UNIT_SECONDS_0)
            k += (size_t)snprintf(extra + k, sizeof extra - k, ";unit_seconds=%.9g",
                                  cp->unit_seconds);
        if (pp->null_pipeline)
            k += (size_t)snprintf(extra + k, sizeof extra - k, ";null=1");
        if (pp->cross_kv != S2T_KV_F32)
            snprintf(extra + k, sizeof extra - k, ";cross_kv=%s", s2t_kv_type_name(pp->cross_kv));
        n = snprintf(buf, cap, "format=1;regenerate=1;unit=%zu;seed_layout=%d;%s%s",
                     cp->unit_items, pp->seed_layout, dec, extra);
    } else {
        char max_s[32];
        float_as_typed(pp->audio.max_seconds, max_s, sizeof max_s);
        double min_s = pp->audio.min_samples == FP_MIN_SAMPLES_0
                           ? 0.0
                           : (double)pp->audio.min_samples / pp->audio.target_hz;
        size_t k = 0;
        if (pp->audio.target_hz != FP_TARGET_HZ_0)
            k += (size_t)snprintf(extra, sizeof extra, ";target_hz=%d", pp->audio.target_hz);
        if (pp->cross_kv != S2T_KV_F32)
            snprintf(extra + k, sizeof extra - k, ";cross_kv=%s", s2t_kv_type_name(pp->cross_kv));
        n = snprintf(buf, cap, "format=1;layer=%d;final_norm=%d;unit=%zu;unit_seconds=%.9g;"
                     "min_seconds=%.9g;max_seconds=%s;seed_layout=%d;null=%d;%s%s%s%s",
                     pp->layer, pp->final_norm, cp->unit_items, cp->unit_seconds, min_s, max_s,
                     pp->seed_layout, pp->null_pipeline, dec, features_tag(pp->features),
                     pp->dedup ? ";dedup=1" : "", extra);
        char sg[6][32];
        float_as_typed(pp->seg.max_seconds, sg[0], sizeof sg[0]);
        float_as_typed(pp->seg.min_seconds, sg[1], sizeof sg[1]);
        float_as_typed(pp->seg.min_pause_seconds, sg[2], sizeof sg[2]);
        float_as_typed(pp->seg.pause_db, sg[3], sizeof sg[3]);
        float_as_typed(pp->seg.silence_dbfs, sg[4], sizeof sg[4]);
        if (n >= 0 && (size_t)n < cap)
            n += snprintf(buf + n, cap - (size_t)n, "%smax:%s,min:%s,pause:%s,db:%s,dbfs:%s,"
                          "drop:%d%s%s", JOB_OPTIONS_SEGMENT, sg[0], sg[1], sg[2], sg[3], sg[4],
                          pp->seg.drop_silent, pp->vad_json ? ",vad:json" : "",
                          JOB_OPTIONS_RESAMPLE);
    }
    assert(n >= 0 && (size_t)n < cap); // JOB_OPTIONS_CAP holds every combination
    (void)n;
}

int job_options_before_resample(const char *canonical, char *buf, size_t cap)
{
    size_t n = strlen(canonical), t = strlen(JOB_OPTIONS_RESAMPLE);
    if (n < t || strcmp(canonical + n - t, JOB_OPTIONS_RESAMPLE) != 0)
        return 0;
    const char *seg = strstr(canonical, JOB_OPTIONS_SEGMENT); // the last tag before it
    size_t keep = seg ? (size_t)(seg - canonical) : n - t;
    if (keep >= cap)
        return 0;
    memcpy(buf, canonical, keep);
    buf[keep] = '\0';
    return 1;
}

static int positive_int(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (*end || errno || v <= 0 || v > INT_MAX / 4096) ? 0 : (int)v;
}

int job_alloc_cores(const char *slurm_ntasks, const char *slurm_cpus_per_task)
{
    int n = positive_int(slurm_ntasks);
    int c = slurm_cpus_per_task && *slurm_cpus_per_task ? positive_int(slurm_cpus_per_task) : 1;
    return n > 0 && c > 0 ? n * c : 0;
}
