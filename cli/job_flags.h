// cli/job_flags.h — the flags the job commands `run` and `regenerate` share, parsed
// straight into the coord_params and pl_params the command hands to coord_run() and
// to the executor, and the one function that turns those two structs into the
// "options" fingerprint a resume must match.
//   --out DB  --unit N  --seed-layout  [decoding flags: decode_flags.h]
//   --threads N  --grace S  --progress S  --map-size-kib K (tests)  --retry-errors (run)
//   run only, the cutting of long items (pp.seg, pp.vad_json; --max-seconds itself is
//   cmd_run.c's): --min-segment S  --min-pause S  --pause-db D  --silence-dbfs D
//   --keep-silence  --vad-json
// Defaults are written once, in coord_default_params() and pl_default_params():
// job_flags_init copies them and job_flags_help prints them from there.
#pragma once
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "cli/decode_flags.h"
#include "coordinator/coord.h"
#include "pipeline/pipeline.h"

#define JOB_MAX_UNIT 64     // largest --unit
#define JOB_MAX_POOL 256    // largest --pool
#define JOB_OPTIONS_CAP 1024 // buffer for job_options_canonical

enum { JF_FIRST = 3000, JF_OUT = JF_FIRST, JF_UNIT, JF_THREADS, JF_GRACE, JF_PROGRESS,
       JF_SEEDLAYOUT, JF_RETRY, JF_MAPSIZE, JF_POOL, JF_MINSEG, JF_MINPAUSE, JF_PAUSEDB,
       JF_SILENCEDB, JF_KEEPSILENCE, JF_VADJSON, JF_LAST };

typedef struct job_flags {
    const char *cmd; // "run" or "regenerate", for messages
    coord_params cp; // out, unit_items, retry_errors, grace_s, progress_s, initial_map_bytes
    pl_params pp;    // beam (the decoding flags), max_batch (= unit_items), seed_layout,
                     // text_only (regenerate); `run` fills the front-half fields itself
    decode_flags df;
    int threads;     // 0 = default (SLURM_CPUS_PER_TASK, else 1)
} job_flags;

// getopt_long entries (zero-terminated) of the job flags.
extern const struct option JOB_FLAG_OPTIONS[];

// out[cap] = own + JOB_FLAG_OPTIONS + DECODE_FLAG_OPTIONS, zero-terminated (as
// cli_join_options; aborts when cap is too small).
void job_flags_options(struct option *out, size_t cap, const struct option *own);

// Defaults from coord_default_params() and pl_default_params(); pp.text_only = regenerate.
void job_flags_init(job_flags *f, int regenerate);

// A command's own flag: 0, SL_EXIT_USAGE after printing the problem, or -1 after printing
// --help.
typedef int (*job_own_flag_fn)(void *ctx, int opt, const char *arg);
// The getopt_long loop of a job command over own (zero-terminated) + the job and decoding
// flags: those go into f (initialised by job_flags_init), any other option of own to
// own_flag. Refuses unknown options, missing values and positional arguments. Returns 0,
// SL_EXIT_USAGE, or -1 (--help printed). Each command then checks its required flags
// and calls job_flags_finish.
int job_flags_getopt(job_flags *f, int argc, char **argv, const struct option *own,
                     job_own_flag_fn own_flag, void *ctx);
// 1 when job_flags_parse takes opt: a job flag or a decoding flag.
int job_flags_takes(int opt);
// Parses arg into f; 0, or SL_EXIT_USAGE after printing the problem.
int job_flags_parse(job_flags *f, int opt, const char *arg);
// Cross-flag checks of the decoding flags; copies them into pp.beam and the unit into
// pp.max_batch. 0 or SL_EXIT_USAGE. Each command checks its own required flags.
int job_flags_finish(job_flags *f);

// The help lines of --unit, --threads, (run) --retry-errors, --grace, --seed-layout and
// --progress, with the defaults of coord_default_params(). --out and the decoding flags
// are described by the command (DECODE_FLAGS_HELP).
void job_flags_help(FILE *out, int regenerate);
// run: the help lines of the cutting flags, defaults from pl_default_params().seg.
void job_flags_help_segment(FILE *out);
// run: checks pp.seg as the cutter will (seg_open's rules: max >= 2 x --min-segment, ...);
// 0 or SL_EXIT_USAGE after printing the problem.
int job_flags_check_segment(const job_flags *f);
#define JOB_FLAGS_HELP_END                                                                   \
    "  -h, --help          this text\n\n"                                                     \
    "Exit status: 0 finished, 1 error, 2 usage error, 3 interrupted (run again to resume).\n"

// The cores a Slurm allocation holds from the launcher's SLURM_NTASKS and
// SLURM_CPUS_PER_TASK (unset or empty: 1 CPU per task), for the audio hours per
// core-hour figure: jobs/spearlabel.sbatch runs rank 0 as one rank more than the task
// slots, so ranks x threads would count a core the job does not hold. 0 when
// SLURM_NTASKS is unset or either value is not a positive integer.
int job_alloc_cores(const char *slurm_ntasks, const char *slurm_cpus_per_task);

// The "options" fingerprint text: every field of cp and pp that changes what a row holds
// or which rows share a unit, and none that does not (grace, progress, commit cadence,
// map size, threads, paths: the models and inputs have fingerprints of their own). Of
// `regenerate` (pp->text_only) when set, else of `run`. buf holds JOB_OPTIONS_CAP bytes.
// Format and compatibility: see job_flags.c.
void job_options_canonical(const coord_params *cp, const pl_params *pp, char *buf, size_t cap);

// The tail of every `run` text since the job reads audio through audio_stream.h (full
// resampled length, see pipeline/audio.h); regenerate (no audio) has none.
#define JOB_OPTIONS_RESAMPLE ";resample=2"
// Right before it since long items are cut into segments (worker/exec.h): the cutting
// params, ";segment=max:30,min:1,pause:0.2,db:12,dbfs:-60,drop:1[,vad:json]".
#define JOB_OPTIONS_SEGMENT ";segment="
// The text a dataset written before resample=2 recorded for the same flags: canonical
// without JOB_OPTIONS_SEGMENT... and JOB_OPTIONS_RESAMPLE (both came later), into
// buf[cap]. 1 when canonical ends in them, else 0.
int job_options_before_resample(const char *canonical, char *buf, size_t cap);
