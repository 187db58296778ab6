// tests/unit/test_job_flags.c — the job flags of `run` / `regenerate` (cli/job_flags.h) and
// the options fingerprint built from the coord_params and pl_params a job runs with:
// (a) the text of the settings existing datasets were written with is unchanged but for
// what changed on purpose (run: the ";segment=...;resample=2" tail and --max-seconds'
// default 60 -> 30, which refuse them; the text before resample=2 is recoverable),
// (b) every row-changing field changes it, (c) no other field does.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/job_flags.h"
#include "common/exitcode.h"
#include "common/sha256.h"
#include "tests/testutil.h"

static const struct option OWN[] = {{"from", required_argument, 0, 1}, {0, 0, 0, 0}};

static int own_flag(void *ctx, int opt, const char *arg)
{
    *(const char **)ctx = arg;
    return opt == 1 ? 0 : SL_EXIT_USAGE;
}

// Parses av (NULL-terminated: "--unit", "3", "--greedy", ...) through the commands'
// getopt loop; returns job_flags_getopt's code and, when 0, job_flags_finish's.
static int getopt_av(job_flags *f, const char *const *av, const char **from)
{
    char *argv[32] = {"test"};
    int argc = 1;
    for (; av && av[argc - 1]; argc++)
        argv[argc] = (char *)av[argc - 1]; // getopt permutes argv, never the strings
    int rc = job_flags_getopt(f, argc, argv, OWN, own_flag, from);
    return rc ? rc : job_flags_finish(f);
}

static void parse(job_flags *f, const char *const *av)
{
    const char *from = NULL;
    CU_ASSERT_EQUAL_FATAL(getopt_av(f, av, &from), 0);
}

// The front half as cmd_run.c parse_args sets it: no --layer (-1) for the null pipeline.
static void front_null(pl_params *p) { p->layer = -1; p->null_pipeline = 1; }
static void front_seconds(pl_params *p, double min_s, double max_s)
{
    front_null(p);
    p->audio.max_seconds = (float)max_s; // as cmd_run.c: --max-seconds is both
    p->seg.max_seconds = (float)max_s;
    if (min_s > 0)
        p->audio.min_samples = (size_t)(min_s * p->audio.target_hz);
}
static void front_secs(pl_params *p) { front_seconds(p, 0.5, 30); }
static void front_secs2(pl_params *p) { front_seconds(p, 0.25, 12.5); }
static void front_secs3(pl_params *p) { front_seconds(p, 0.1, 12.3); }
static void front_layer(pl_params *p) { front_null(p); p->layer = 3; p->final_norm = 1; }
static void front_mfcc(pl_params *p) { front_null(p); p->features = TOK_FEAT_MFCC; p->dedup = 1; }
static void front_real(pl_params *p)
{
    p->layer = 2;
    p->hubert_dir = "h";
    p->kmeans = "k";
    p->s2t = "s";
}

#define DEC_DEFAULT "method=beam;beam=4;mode=default;lenpen=0;top_k=0;temperature=1;seed=0;" \
                    "max_len=256;len_a=0;len_b=0;min_len=0"
#define RUN_NULL(unit, min, max, sl) "format=1;layer=-1;final_norm=0;unit=" unit          \
    ";unit_seconds=120;min_seconds=" min ";max_seconds=" max ";seed_layout=" sl ";null=1;"

// (a) Written before job_options_canonical existed (cmd_run.c canonical_options and
// cmd_regenerate.c at commit 2aaf659): each text, and the sha256 that code stored as
// fp/options in a dataset made with these flags (so the text is also what it hashed).
static const struct compat_case {
    const char *name;
    int regenerate;
    void (*front)(pl_params *p);
    const char *flags[16];
    const char *text, *sha256;
} COMPAT[] = {
    {"run null default", 0, front_null, {NULL},
     RUN_NULL("4", "0", "60", "0") DEC_DEFAULT,
     "d085757c6ac3ed102331088ef23e4525587b458f90b301f2db38f8b6253f41d8"},
    {"run hubert --max-len 24", 0, front_real, {"--max-len", "24", NULL},
     "format=1;layer=2;final_norm=0;unit=4;unit_seconds=120;min_seconds=0;max_seconds=60;"
     "seed_layout=0;null=0;method=beam;beam=4;mode=default;lenpen=0;top_k=0;temperature=1;"
     "seed=0;max_len=24;len_a=0;len_b=0;min_len=0",
     "ed98ca3b0cc234fb9ac04a7a0bb6c5c40213753b76c27ebd7f138785a89c8e57"},
    {"regenerate default", 1, NULL, {NULL},
     "format=1;regenerate=1;unit=4;seed_layout=0;" DEC_DEFAULT,
     "d8f2adf85e0ab2a00bd6e2533192d3caeda329b9262f6fd7305bede0746cf582"},
    {"regenerate flags", 1, NULL,
     {"--unit", "2", "--seed-layout", "--greedy", "--max-len", "24", "--grace", "3", "--progress",
      "5", NULL},
     "format=1;regenerate=1;unit=2;seed_layout=1;method=greedy;beam=1;mode=default;lenpen=0;"
     "top_k=0;temperature=1;seed=0;max_len=24;len_a=0;len_b=0;min_len=0",
     "bf40c401886c5d0a0833f1292670a2ce694e54625dd6b619ff493e88e48dabda"},
    {"run --unit 3", 0, front_null, {"--unit", "3", NULL},
     RUN_NULL("3", "0", "60", "0") DEC_DEFAULT,
     "8bda6f2298de11999cf675774cefef68fd17f20260436a1388a0399c5dbd7bb5"},
    {"run seconds 0.5 30", 0, front_secs, {NULL}, RUN_NULL("4", "0.5", "30", "0") DEC_DEFAULT,
     "9285e83bd028ce1f0816fcca6682e980ba12e080637cd73efa04aa175b1af6fd"},
    {"run seconds 0.25 12.5", 0, front_secs2, {NULL},
     RUN_NULL("4", "0.25", "12.5", "0") DEC_DEFAULT,
     "84cd50636c868a5aecf0036365dad99ef8eab3a7ac81a19c67ad94d244171748"},
    {"run seconds 0.1 12.3 (not exact floats)", 0, front_secs3, {NULL},
     RUN_NULL("4", "0.1", "12.3", "0") DEC_DEFAULT,
     "fcfd56033db8924130c8d8a7f795eea8f434f6b72e0f3c937f839258bc966952"},
    {"run seed layout, seed beam", 0, front_null,
     {"--seed-layout", "--beam", "2", "--lenpen", "0.25", "--beam-mode", "seed", NULL},
     RUN_NULL("4", "0", "60", "1") "method=beam;beam=2;mode=seed;lenpen=0.25;top_k=0;"
     "temperature=1;seed=0;max_len=256;len_a=0;len_b=0;min_len=0",
     "32dabf1dd305b6bd7b555a7fbaa94b0f0b32f949e07e8fd3d6c656ee5185e7b2"},
    {"run greedy", 0, front_null, {"--greedy", "--max-len", "100", "--min-len", "2", NULL},
     RUN_NULL("4", "0", "60", "0") "method=greedy;beam=1;mode=default;lenpen=0;top_k=0;"
     "temperature=1;seed=0;max_len=100;len_a=0;len_b=0;min_len=2",
     "d39f33e85c09df4c9ec4c5b4cfa58a855abad6d4f4244a939f00c02aac0026a2"},
    {"run sample", 0, front_null,
     {"--sample", "--temperature", "0.7", "--top-k", "5", "--seed", "9", "--max-len-a", "0.5",
      "--max-len-b", "3", NULL},
     RUN_NULL("4", "0", "60", "0") "method=sample;beam=1;mode=default;lenpen=0;top_k=5;"
     "temperature=0.699999988;seed=9;max_len=256;len_a=0.5;len_b=3;min_len=0",
     "e58049924193a6d9b0335f0c0b35aac0463f0c3d7180da36f73ab4c238d90be4"},
    {"run layer 3 final norm", 0, front_layer, {NULL},
     "format=1;layer=3;final_norm=1;unit=4;unit_seconds=120;min_seconds=0;max_seconds=60;"
     "seed_layout=0;null=1;" DEC_DEFAULT,
     "c6e987deb3367344e9eb3d5e7ac4f50682512a03ac4926c5b77e63f70bdf8ca7"},
    {"run mfcc dedup", 0, front_mfcc, {NULL},
     RUN_NULL("4", "0", "60", "0") DEC_DEFAULT ";features=mfcc-kaldi-39-v1;dedup=1",
     "bcf3340ea50aa78b0e57813d3c73a6731eb8029d9ac8f3085ae589efe80f679f"},
    {"run job flags that change no row", 0, front_null,
     {"--grace", "5", "--progress", "2", "--threads", "1", "--map-size-kib", "128",
      "--retry-errors", "--out", "elsewhere", "--pool", "3", NULL},
     RUN_NULL("4", "0", "60", "0") DEC_DEFAULT,
     "d085757c6ac3ed102331088ef23e4525587b458f90b301f2db38f8b6253f41d8"},
};

static void canonical_of(const job_flags *f, char *buf)
{
    job_options_canonical(&f->cp, &f->pp, buf, JOB_OPTIONS_CAP);
}

// The tail every run text has now at the default cutting params, with max M.
#define SEG_TAIL(m) ";segment=max:" m ",min:1,pause:0.2,db:12,dbfs:-60,drop:1"

static void test_existing_datasets_keep_their_text(void)
{
    for (size_t i = 0; i < sizeof COMPAT / sizeof COMPAT[0]; i++) {
        const struct compat_case *c = &COMPAT[i];
        job_flags f;
        job_flags_init(&f, c->regenerate);
        if (c->front)
            c->front(&f.pp);
        parse(&f, c->flags);
        char text[JOB_OPTIONS_CAP], hex[SL_SHA256_HEX];
        canonical_of(&f, text);
        // run: the old text with the new --max-seconds default (30, where the case did not
        // set it), then the cutting params and the resampler's tag; the text before them
        // recoverable (cmd_run.c names the change when a dataset holds it); regenerate:
        // unchanged.
        char want[2 * JOB_OPTIONS_CAP], old[JOB_OPTIONS_CAP], base[JOB_OPTIONS_CAP];
        snprintf(base, sizeof base, "%s", c->text);
        char *m60 = strstr(base, "max_seconds=60;");
        if (!c->regenerate && m60) {
            memcpy(m60, "max_seconds=30;", 15);
        }
        if (c->regenerate) {
            snprintf(want, sizeof want, "%s", base);
        } else {
            CU_ASSERT_EQUAL(f.pp.seg.max_seconds, f.pp.audio.max_seconds);
            snprintf(want, sizeof want, "%s;segment=max:%g,min:1,pause:0.2,db:12,dbfs:-60,drop:1%s",
                     base, (double)f.pp.seg.max_seconds, JOB_OPTIONS_RESAMPLE);
        }
        if (strcmp(text, want))
            fprintf(stderr, "\n%s:\n  got  %s\n  want %s\n", c->name, text, want);
        CU_ASSERT_STRING_EQUAL(text, want);
        CU_ASSERT_EQUAL(job_options_before_resample(text, old, sizeof old), !c->regenerate);
        if (c->regenerate)
            snprintf(old, sizeof old, "%s", text);
        CU_ASSERT_STRING_EQUAL(old, base);
        // the text those datasets hold hashes as they stored it
        sl_sha256_hex(c->text, strlen(c->text), hex);
        CU_ASSERT_STRING_EQUAL(hex, c->sha256);
        if (!c->regenerate) // the current one is another: their resume is refused
            CU_ASSERT(strcmp(text, c->text) != 0);
    }
}

// The cutting flags: where they go, the tag they print, what is refused.
static void test_segment_flags(void)
{
    job_flags f;
    job_flags_init(&f, 0);
    front_null(&f.pp);
    parse(&f, NULL);
    seg_params d = seg_default_params();
    CU_ASSERT_EQUAL(f.pp.seg.max_seconds, d.max_seconds);
    CU_ASSERT_EQUAL(f.pp.audio.max_seconds, d.max_seconds); // --max-seconds: both
    CU_ASSERT_EQUAL(f.pp.vad_json, 0);
    char text[JOB_OPTIONS_CAP];
    canonical_of(&f, text);
    const char *tail = SEG_TAIL("30") JOB_OPTIONS_RESAMPLE;
    CU_ASSERT(strlen(text) > strlen(tail) && !strcmp(text + strlen(text) - strlen(tail), tail));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, ";max_seconds=30;"));
    CU_ASSERT_EQUAL(job_flags_check_segment(&f), 0);
    static const char *const flags[] = {"--min-segment", "2.5", "--min-pause", "0.3", "--pause-db",
                                        "9", "--silence-dbfs", "-55.5", "--keep-silence",
                                        "--vad-json", NULL};
    job_flags_init(&f, 0);
    front_null(&f.pp);
    parse(&f, flags);
    CU_ASSERT_EQUAL(f.pp.seg.min_seconds, 2.5f);
    CU_ASSERT_EQUAL(f.pp.seg.min_pause_seconds, 0.3f);
    CU_ASSERT_EQUAL(f.pp.seg.pause_db, 9.0f);
    CU_ASSERT_EQUAL(f.pp.seg.silence_dbfs, -55.5f);
    CU_ASSERT_EQUAL(f.pp.seg.drop_silent, 0);
    CU_ASSERT_EQUAL(f.pp.vad_json, 1);
    canonical_of(&f, text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, ";segment=max:30,min:2.5,pause:0.3,db:9,dbfs:-55.5,drop:0,"
                                        "vad:json;resample=2"));
    CU_ASSERT_EQUAL(job_flags_check_segment(&f), 0);
    // --max-seconds below 2 x --min-segment: the cutter's rule, refused
    f.pp.seg.max_seconds = 4.0f;
    CU_ASSERT_EQUAL(job_flags_check_segment(&f), SL_EXIT_USAGE);
    f.pp.seg.max_seconds = 5.0f;
    CU_ASSERT_EQUAL(job_flags_check_segment(&f), 0);
    // bad values, and regenerate (no audio) takes none of them
    CU_ASSERT_EQUAL(job_flags_parse(&f, JF_MINSEG, "0"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&f, JF_MINPAUSE, "x"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&f, JF_PAUSEDB, "-1"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&f, JF_SILENCEDB, "3"), SL_EXIT_USAGE);
    job_flags g;
    job_flags_init(&g, 1);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_VADJSON, NULL), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_MINSEG, "2"), SL_EXIT_USAGE);
    canonical_of(&g, text);
    CU_ASSERT_PTR_NULL(strstr(text, "segment"));
    // --help: the defaults from seg_default_params()
    char *h = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&h, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    job_flags_help_segment(m);
    fclose(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(default 30; >= 2 x --min-segment)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "cut may leave (default 1)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "as a pause (default 0.2)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(default 12)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "(default -60)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "--keep-silence"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "--vad-json"));
    free(h);
}

// Values that now come from a float (max_seconds) or a sample count (min_seconds).
static void test_seconds_print_as_typed(void)
{
    static const struct { double min_s, max_s; const char *want; } cases[] = {
        {0.2, 0.7, "min_seconds=0.2;max_seconds=0.7;"},
        {0.3, 33.3, "min_seconds=0.3;max_seconds=33.3;"},
        {1.1, 123.456, "min_seconds=1.1;max_seconds=123.456;"},
        {0.001, 36000, "min_seconds=0.001;max_seconds=36000;"},
        {0.025, 60, "min_seconds=0;max_seconds=60;"},          // 400 samples = no --min-seconds
        {0.12345, 12.3456789, "min_seconds=0.1234375;max_seconds=12.345679;"}, // printed anew
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job_flags f;
        job_flags_init(&f, 0);
        front_seconds(&f.pp, cases[i].min_s, cases[i].max_s);
        parse(&f, NULL);
        char text[JOB_OPTIONS_CAP];
        canonical_of(&f, text);
        if (!strstr(text, cases[i].want))
            fprintf(stderr, "\nwant %s in %s\n", cases[i].want, text);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, cases[i].want));
    }
}

// (b) and (c): every field of coord_params and pl_params, one mutation each.
//
// YOU ADDED A FIELD TO coord_params (coordinator/coord.h), pl_params (pipeline/pipeline.h)
// or one of its parts (audio_params, beam_params)? Add a row to FIELDS: RUN/REGEN where it
// changes what a row holds or which utterances share a unit under that command (then
// job_options_canonical must print it: append it only when it differs from the value
// every existing dataset had, so their text stays the same), 0 where it cannot (paths of
// files that have their own fingerprint, scheduling, logging). Then update STRUCT_SIZES.
enum { RUN = 1, REGEN = 2, BOTH = RUN | REGEN };

#define SET(id, stmt) static void set_##id(coord_params *cp, pl_params *pp) \
    { (void)cp; (void)pp; stmt; }
static int dummy;
// coord_params
SET(unit_items, cp->unit_items = 3)
SET(unit_seconds, cp->unit_seconds = 60)
SET(out, cp->out = "elsewhere")
SET(m, cp->m = (const manifest *)&dummy)
SET(n_ranks, cp->n_ranks = 9)
SET(threads, cp->threads = 5)
SET(alloc_cores, cp->alloc_cores = 7)
SET(retry_errors, cp->retry_errors = 1)
SET(grace_s, cp->grace_s = 5)
SET(progress_s, cp->progress_s = 2)
SET(commit_rows, cp->commit_rows = 16)
SET(commit_s, cp->commit_s = 0.25)
SET(initial_map_bytes, cp->initial_map_bytes = 1 << 20)
SET(fps, cp->fps = (const jm_fp *)&dummy)
SET(n_fps, cp->n_fps = 3)
SET(argc, cp->argc = 5)
SET(argv, cp->argv = (char **)&dummy)
SET(exec, cp->exec = (coord_exec_fn)(void (*)(void))set_out)
SET(exec_ctx, cp->exec_ctx = &dummy)
SET(exec_partial, cp->exec_partial = (coord_exec_partial_fn)(void (*)(void))set_out)
SET(sched, cp->sched = (const coord_sched *)&dummy)
SET(payload, cp->payload = (coord_payload_fn)(void (*)(void))set_out)
SET(payload_ctx, cp->payload_ctx = &dummy)
SET(meta, cp->meta = (const char *const *)&dummy)
SET(n_meta, cp->n_meta = 2)
// pl_params
SET(features, pp->features = TOK_FEAT_MFCC)
SET(dedup, pp->dedup = 1)
SET(hubert_dir, pp->hubert_dir = "other-hubert")
SET(layer, pp->layer = 3)
SET(final_norm, pp->final_norm = 1)
SET(kmeans, pp->kmeans = "other.npy")
SET(s2t, pp->s2t = "other.safetensors")
SET(target_hz, pp->audio.target_hz = 8000)
SET(max_seconds, pp->audio.max_seconds = 45.0f)
SET(min_samples, pp->audio.min_samples = 8000)
SET(method_greedy, pp->beam.method = BEAM_GREEDY)
SET(method_sample, pp->beam.method = BEAM_SAMPLE)
SET(beam, pp->beam.beam = 2)
SET(mode, pp->beam.mode = BEAM_MODE_SEED)
SET(lenpen, pp->beam.lenpen = 0.5f)
SET(top_k, pp->beam.top_k = 5)
SET(temperature, pp->beam.temperature = 0.5f)
SET(seed, pp->beam.seed = 7)
SET(max_len, pp->beam.max_len = 100)
SET(len_a, pp->beam.len_a = 0.5f)
SET(len_b, pp->beam.len_b = 3.0f)
SET(min_len, pp->beam.min_len = 2)
SET(keep_eos, pp->beam.keep_eos = 1)
SET(cross_kv, pp->cross_kv = S2T_KV_F16)
SET(max_batch, pp->max_batch = 1)
SET(seed_layout, pp->seed_layout = 1)
SET(null_pipeline, pp->null_pipeline = 1)
SET(text_only, pp->text_only = !pp->text_only)
SET(max_src_ids, pp->max_src_ids = 77)
SET(pool, pp->pool = 3)
SET(seg_max, pp->seg.max_seconds = 20.0f)
SET(seg_min, pp->seg.min_seconds = 2.0f)
SET(seg_pause, pp->seg.min_pause_seconds = 0.5f)
SET(seg_db, pp->seg.pause_db = 6.0f)
SET(seg_dbfs, pp->seg.silence_dbfs = -50.0f)
SET(seg_drop, pp->seg.drop_silent = 0)
SET(vad_json, pp->vad_json = 1)

static const struct field_case {
    const char *name;
    void (*set)(coord_params *cp, pl_params *pp);
    int changes; // RUN, REGEN, BOTH or 0
} FIELDS[] = {
    // coord_params
    {"unit_items", set_unit_items, BOTH},    // unit composition
    {"unit_seconds", set_unit_seconds, BOTH}, // unit composition (regenerate: ids' lengths)
    {"out", set_out, 0},
    {"m", set_m, 0},                          // the manifest: fp/manifest, fp/source
    {"n_ranks", set_n_ranks, 0},              // units never depend on the rank count
    {"threads", set_threads, 0},              // products are thread-count invariant
    {"alloc_cores", set_alloc_cores, 0},      // a figure of the run record only
    {"retry_errors", set_retry_errors, 0},    // which ids are recomputed, not how
    {"grace_s", set_grace_s, 0},
    {"progress_s", set_progress_s, 0},
    {"commit_rows", set_commit_rows, 0},
    {"commit_s", set_commit_s, 0},
    {"initial_map_bytes", set_initial_map_bytes, 0},
    {"fps", set_fps, 0},
    {"n_fps", set_n_fps, 0},
    {"argc", set_argc, 0},
    {"argv", set_argv, 0},
    {"exec", set_exec, 0},
    {"exec_ctx", set_exec_ctx, 0},
    {"exec_partial", set_exec_partial, 0},
    {"sched", set_sched, 0},
    {"payload", set_payload, 0},
    {"payload_ctx", set_payload_ctx, 0},
    {"meta", set_meta, 0},
    {"n_meta", set_n_meta, 0},
    // pl_params: the front half counts in `run` only (regenerate decodes stored ids)
    {"features", set_features, RUN},
    {"dedup", set_dedup, RUN},
    {"hubert_dir", set_hubert_dir, 0},        // fp/hubert hashes the files
    {"layer", set_layer, RUN},
    {"final_norm", set_final_norm, RUN},
    {"kmeans", set_kmeans, 0},                // fp/kmeans
    {"s2t", set_s2t, 0},                      // fp/s2t
    {"audio.target_hz", set_target_hz, RUN},
    {"audio.max_seconds", set_max_seconds, RUN},
    {"audio.min_samples", set_min_samples, RUN},
    {"beam.method greedy", set_method_greedy, BOTH},
    {"beam.method sample", set_method_sample, BOTH},
    {"beam.beam", set_beam, BOTH},
    {"beam.mode", set_mode, BOTH},
    {"beam.lenpen", set_lenpen, BOTH},
    {"beam.top_k", set_top_k, BOTH},
    {"beam.temperature", set_temperature, BOTH},
    {"beam.seed", set_seed, BOTH},
    {"beam.max_len", set_max_len, BOTH},
    {"beam.len_a", set_len_a, BOTH},
    {"beam.len_b", set_len_b, BOTH},
    {"beam.min_len", set_min_len, BOTH},
    {"beam.keep_eos", set_keep_eos, BOTH},
    {"cross_kv", set_cross_kv, BOTH},          // float16 cross K/V move scores
    {"max_batch", set_max_batch, 0},          // a batch decodes each row as alone
    {"seed_layout", set_seed_layout, BOTH},
    {"null_pipeline", set_null_pipeline, BOTH},
    {"text_only", set_text_only, BOTH},       // run <-> regenerate
    {"max_src_ids", set_max_src_ids, 0},      // capacity, sized from the data
    {"pool", set_pool, 0},                    // decoding is batch-invariant (tests/mpi)
    {"seg.max_seconds", set_seg_max, RUN},    // where long items are cut
    {"seg.min_seconds", set_seg_min, RUN},
    {"seg.min_pause_seconds", set_seg_pause, RUN},
    {"seg.pause_db", set_seg_db, RUN},
    {"seg.silence_dbfs", set_seg_dbfs, RUN},
    {"seg.drop_silent", set_seg_drop, RUN},   // which segments become rows
    {"vad_json", set_vad_json, RUN},          // the .json's chunks instead of pauses
};

// sizeof on LP64 when FIELDS was last completed: a field added to the structs (or their
// parts) changes a size and fails here until FIELDS has its row.
static const struct { const char *name; size_t now, recorded; } STRUCT_SIZES[] = {
    {"coord_params", sizeof(coord_params), 192}, // n_ranks, threads, alloc_cores + 4 padding
    {"pl_params", sizeof(pl_params), 168},
    {"seg_params", sizeof(seg_params), 24},
    {"audio_params", sizeof(audio_params), 16},
    {"beam_params", sizeof(beam_params), 56},
};

static void test_struct_sizes_match_the_field_table(void)
{
    for (size_t i = 0; i < sizeof STRUCT_SIZES / sizeof STRUCT_SIZES[0]; i++) {
        if (STRUCT_SIZES[i].now != STRUCT_SIZES[i].recorded)
            fprintf(stderr, "\n%s is %zu bytes, FIELDS was written for %zu: give the new field "
                    "a row in FIELDS (tests/unit/test_job_flags.c), then update STRUCT_SIZES\n",
                    STRUCT_SIZES[i].name, STRUCT_SIZES[i].now, STRUCT_SIZES[i].recorded);
        CU_ASSERT_EQUAL(STRUCT_SIZES[i].now, STRUCT_SIZES[i].recorded);
    }
}

static void test_each_field_changes_the_text_or_not(void)
{
    for (int regen = 0; regen <= 1; regen++) {
        job_flags f;
        job_flags_init(&f, regen);
        parse(&f, NULL);
        char base[JOB_OPTIONS_CAP], text[JOB_OPTIONS_CAP];
        canonical_of(&f, base);
        for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
            coord_params cp = f.cp;
            pl_params pp = f.pp;
            FIELDS[i].set(&cp, &pp);
            job_options_canonical(&cp, &pp, text, sizeof text);
            int want = (FIELDS[i].changes & (regen ? REGEN : RUN)) != 0;
            int got = strcmp(base, text) != 0;
            if (got != want)
                fprintf(stderr, "\n%s %s: the options text %s\n", regen ? "regenerate" : "run",
                        FIELDS[i].name, got ? "changed" : "did not change");
            CU_ASSERT_EQUAL(got, want);
        }
    }
}

// (c) through the flags: --threads lives in job_flags, outside both structs.
static void test_flags_that_change_no_row(void)
{
    static const char *const flags[] = {"--grace", "1", "--progress", "0.5", "--threads", "3",
                                        "--map-size-kib", "256", "--out", "x", NULL};
    for (int regen = 0; regen <= 1; regen++) {
        job_flags a, b;
        job_flags_init(&a, regen);
        job_flags_init(&b, regen);
        parse(&a, NULL);
        parse(&b, flags);
        CU_ASSERT_EQUAL(b.threads, 3);
        CU_ASSERT_EQUAL(b.cp.initial_map_bytes, (size_t)256 << 10);
        char ta[JOB_OPTIONS_CAP], tb[JOB_OPTIONS_CAP];
        canonical_of(&a, ta);
        canonical_of(&b, tb);
        CU_ASSERT_STRING_EQUAL(ta, tb);
    }
}

static void job_init_and(job_flags *f, const char *const *av, const char **from, int want)
{
    job_flags_init(f, 1);
    CU_ASSERT_EQUAL(getopt_av(f, av, from), want);
}

static void test_parse_and_defaults(void)
{
    coord_params dc = coord_default_params();
    pl_params dp = pl_default_params();
    job_flags f;
    job_flags_init(&f, 0);
    CU_ASSERT_EQUAL(f.cp.unit_items, dc.unit_items);
    CU_ASSERT_EQUAL(f.cp.grace_s, dc.grace_s);
    CU_ASSERT_EQUAL(f.cp.progress_s, dc.progress_s);
    CU_ASSERT_EQUAL(f.pp.audio.max_seconds, dp.seg.max_seconds); // run: the longest segment
    CU_ASSERT_EQUAL(f.pp.text_only, 0);
    static const char *const flags[] = {"--unit", "3.0", "--beam", "2", "--retry-errors", NULL};
    parse(&f, flags);
    CU_ASSERT_EQUAL(f.cp.unit_items, 3);
    CU_ASSERT_EQUAL(f.pp.max_batch, 3);
    CU_ASSERT_EQUAL(f.pp.beam.beam, 2);
    CU_ASSERT_EQUAL(f.cp.retry_errors, 1);
    // Refusals (each prints its usage line on stderr).
    job_flags g;
    job_flags_init(&g, 1);
    CU_ASSERT_EQUAL(g.pp.text_only, 1);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_RETRY, NULL), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_UNIT, "65"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_UNIT, "2.5"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_PROGRESS, "0"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&g, JF_MAPSIZE, "10"), SL_EXIT_USAGE);
    CU_ASSERT_EQUAL(job_flags_parse(&g, DF_GREEDY, NULL), 0);
    CU_ASSERT_EQUAL(job_flags_parse(&g, DF_SAMPLE, NULL), 0);
    CU_ASSERT_EQUAL(job_flags_finish(&g), SL_EXIT_USAGE); // two methods
    // --cross-kv: f32 (the default, no tag: every existing text unchanged) or f16, whose
    // tag is in the text of both commands
    for (int regen = 0; regen <= 1; regen++) {
        job_flags h;
        char text[JOB_OPTIONS_CAP];
        job_flags_init(&h, regen);
        CU_ASSERT_EQUAL(h.pp.cross_kv, S2T_KV_F32);
        CU_ASSERT_EQUAL(job_flags_parse(&h, DF_CROSSKV, "f8"), SL_EXIT_USAGE);
        CU_ASSERT_EQUAL(job_flags_parse(&h, DF_CROSSKV, "f32"), 0);
        CU_ASSERT_EQUAL(job_flags_finish(&h), 0);
        canonical_of(&h, text);
        CU_ASSERT_PTR_NULL(strstr(text, "cross_kv"));
        CU_ASSERT_EQUAL(job_flags_parse(&h, DF_CROSSKV, "f16"), 0);
        CU_ASSERT_EQUAL(job_flags_finish(&h), 0);
        CU_ASSERT_EQUAL(h.pp.cross_kv, S2T_KV_F16);
        canonical_of(&h, text);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, ";cross_kv=f16"));
    }
    CU_ASSERT(job_flags_takes(JF_OUT) && job_flags_takes(DF_BEAM) && !job_flags_takes('h'));
    // The loop: own flags to the command, refusals of unknown options and arguments.
    static const char *const with_own[] = {"--from", "OLD", "--unit", "2", NULL};
    static const char *const unknown[] = {"--frobnicate", NULL};
    static const char *const no_value[] = {"--unit", NULL};
    static const char *const positional[] = {"--unit", "2", "extra", NULL};
    const char *from = NULL;
    job_init_and(&g, with_own, &from, 0);
    CU_ASSERT_STRING_EQUAL(from, "OLD");
    CU_ASSERT_EQUAL(g.cp.unit_items, 2);
    job_init_and(&g, unknown, &from, SL_EXIT_USAGE);
    job_init_and(&g, no_value, &from, SL_EXIT_USAGE);
    job_init_and(&g, positional, &from, SL_EXIT_USAGE);
    // The joined getopt table holds a command's own flags, the job and the decoding flags.
    static const struct option own[] = {{"from", required_argument, 0, 1}, {0, 0, 0, 0}};
    struct option opts[64];
    job_flags_options(opts, 64, own);
    size_t n = 0;
    while (opts[n].name)
        n++;
    size_t n_job = 0;
    while (JOB_FLAG_OPTIONS[n_job].name)
        n_job++;
    CU_ASSERT_EQUAL(n_job, 15);
    CU_ASSERT_EQUAL(n, 1 + n_job + DECODE_FLAG_N_OPTIONS);
}

// --help prints the defaults the job runs with.
static void test_alloc_cores(void)
{
    CU_ASSERT_EQUAL(job_alloc_cores("8", "4"), 32);
    CU_ASSERT_EQUAL(job_alloc_cores("2", NULL), 2); // no --cpus-per-task: 1 CPU per task
    CU_ASSERT_EQUAL(job_alloc_cores("2", ""), 2);
    CU_ASSERT_EQUAL(job_alloc_cores(NULL, "4"), 0); // not under Slurm: ranks x threads
    CU_ASSERT_EQUAL(job_alloc_cores("", "4"), 0);
    CU_ASSERT_EQUAL(job_alloc_cores("0", "4"), 0);
    CU_ASSERT_EQUAL(job_alloc_cores("-2", "4"), 0);
    CU_ASSERT_EQUAL(job_alloc_cores("2x", "4"), 0);
    CU_ASSERT_EQUAL(job_alloc_cores("2", "four"), 0);
    CU_ASSERT_EQUAL(job_alloc_cores("99999999999", "1"), 0);
}

static void test_help_prints_the_defaults(void)
{
    coord_params d = coord_default_params();
    for (int regen = 0; regen <= 1; regen++) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        job_flags_help(m, regen);
        fclose(m);
        char want[3][128];
        snprintf(want[0], sizeof want[0], "(default %zu, max %d)", d.unit_items, JOB_MAX_UNIT);
        snprintf(want[1], sizeof want[1], "for S s (default %g)", d.grace_s);
        snprintf(want[2], sizeof want[2], "not a terminal (%g)", d.progress_s);
        for (int i = 0; i < 3; i++)
            CU_ASSERT_PTR_NOT_NULL(strstr(text, want[i]));
        CU_ASSERT_EQUAL(strstr(text, "--retry-errors") != NULL, !regen);
        free(text);
    }
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"existing datasets keep their options text", test_existing_datasets_keep_their_text},
        {"seconds print as typed", test_seconds_print_as_typed},
        {"the cutting flags and their tag", test_segment_flags},
        {"struct sizes match the field table", test_struct_sizes_match_the_field_table},
        {"each field changes the text or not", test_each_field_changes_the_text_or_not},
        {"flags that change no row", test_flags_that_change_no_row},
        {"parse and defaults", test_parse_and_defaults},
        {"help prints the defaults", test_help_prints_the_defaults},
        {"the cores a Slurm allocation holds", test_alloc_cores},
        {NULL, NULL}};
    return sl_test_main("job_flags", cases);
}
