// coordinator/jobmeta.h — what a dataset records about the jobs that wrote it:
// fingerprints of everything that changes rows, and the run history.
//
// Fingerprints are meta keys "fp/<name>" (sha256 hex). A new dataset records
// them; a resumed one must match every one, or the run is refused with a
// message naming what changed ("fp/s2t: the model file changed"). Names that
// only inform (the manifest) are checked with a warning instead.
// Runs are meta keys "run/NNNNNN" holding one JSON object each: status
// (running | finished | interrupted | failed), start/end (UTC), host, ranks,
// rows/errors added, spearlabel version, command line.
// MPI-free. All writes go into the store's open batch; callers commit.
#pragma once
#include <stddef.h>

#include "common/err.h"
#include "storage/store.h"

typedef struct jm_fp {
    const char *name;   // "hubert", "kmeans", "s2t", "options", "manifest"
    char hex[65];
    int strict;         // 1: a mismatch refuses the run; 0: warn only
    const char *what;   // for messages: "the HuBERT model", "the decoding options", ...
    char old_hex[65];   // "" or what the same setup stored before a change of the code;
    const char *old_why;//   a stored old_hex is refused with old_why (strict or not)
} jm_fp;

// Fingerprint of a file, or of several files in order (their digests hashed together).
int jm_fp_files(jm_fp *fp, const char *const *paths, size_t n, sl_err *err);
// Fingerprint of a string (canonical options text).
void jm_fp_text(jm_fp *fp, const char *text);

// Checks fps against the dataset (refusing strict mismatches; a stored value equal
// to a non-empty old_hex is refused with old_why: "<dir>: <key> is the fingerprint
// <what> had before <old_why>: ..."), then records
// any that are absent. *was_new = 1 when the dataset had no fingerprints yet.
// A fingerprint that cannot be read (an LMDB error, not an absent key) refuses
// the run with the store's error, prefixed with the key: were it taken for
// absent, fresh fingerprints would be recorded and the resume check skipped.
int jm_check_and_record(store *s, const jm_fp *fps, size_t n, int *was_new, sl_err *err);

typedef struct jm_run {
    int index;          // NNNNNN of run/NNNNNN
    double start;       // epoch seconds
} jm_run;

// What a run did, for its record and its last log lines (see coord_session_close).
typedef struct jm_run_figures {
    double audio_s;        // audio seconds of the rows this run stored
    double wall_s;         // seconds from the first dispatch to the end
    int cores;             // cores the job held: coord_params.alloc_cores, else ranks x threads
    double stage_s[4];     // worker seconds in audio, features, tokens, text
    size_t rows_kept;      // rows this run stored that the default quality filter keeps
    double batch_height;   // decoder rows per decoder step, averaged over steps (0: none)
} jm_run_figures;

// Adds a run record with status "running" (the caller commits it at once).
int jm_run_begin(store *s, int ranks, int argc, char **argv, jm_run *run, sl_err *err);
// fig (may be NULL) adds "audio_seconds", "cores", "audio_hours_per_core_hour",
// "stage_share" {audio, features, tokens, text}, "rows_kept_default_filter" and, when
// the workers decoded, "decode_batch_height" (rows per decoder step, averaged over steps).
int jm_run_end(store *s, const jm_run *run, const char *status, size_t rows_added,
               size_t errors_added, int ranks, int argc, char **argv,
               const jm_run_figures *fig, sl_err *err);
