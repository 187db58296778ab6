// coordinator/manifest.h — the list of utterances a job covers.
//
// Three sources, one result: a sorted, de-duplicated array of items, each
// with its utterance id (the key of its dataset row), the path to open, and
// the sample count when the source gives one.
//   * fairseq tsv: first line = root directory, then `relative/path<TAB>n_samples`
//     (the count may be missing). id = the relative path.
//   * plain list: one path per line. Relative paths are resolved against the
//     manifest's directory; id = the path as written.
//   * --audio-dir DIR: every entry below DIR whose name has an extension in the
//     list (case-insensitive). id = path relative to DIR. Regular files and
//     symbolic links to regular files are decoded; any other entry so named is
//     an error item naming the problem: "dangling link", "link loop", "not a
//     regular file (a directory | a link to a directory | a fifo | a character
//     device | ...)". Directories are walked whatever their name; links are
//     never walked (no loops). DIR itself is never an item.
// A line or entry that cannot be used (bad sample count, the entries above)
// still becomes an item with `bad` set to a message naming it (bad_stage
// SL_STAGE_INPUT; regenerate's inherited errors use SL_STAGE_INHERITED): the
// job stores it as an error record, so rows + errors always balance with the
// distinct ids, and for --audio-dir with a listing of the directory.
// Duplicate ids are reported once (stderr, with both line numbers) and kept once.
// MPI-free; single-threaded.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/stage.h"

typedef struct man_item {
    char *id;          // NUL-terminated; may contain any byte but NUL
    char *path;        // what to open
    int64_t n_samples; // at 16 kHz (fairseq convention); -1 when unknown
    char *bad;         // NULL, or why this line cannot be processed
    sl_stage bad_stage; // the stage of that error (SL_STAGE_INPUT = 0 here)
    size_t line;       // 1-based manifest line (0 for --audio-dir)
} man_item;

typedef struct manifest {
    man_item *items;   // sorted by id (bytewise), ids unique
    size_t n;
    size_t n_duplicates;
    size_t n_bad_lines;
    char *root;        // directory the ids are relative to (may be "")
} manifest;

// Reads a manifest file (format detected: first line an existing directory = tsv).
int man_load(const char *path, manifest *out, sl_err *err);
// Parses a manifest image text[0..n) (need not be NUL-terminated; not kept) as
// man_load does. path names it in messages and, for a list, is the file whose
// directory relative paths are resolved against. Detecting tsv stats the first line.
int man_parse(const char *text, size_t n, const char *path, manifest *out, sl_err *err);
// Walks dir; exts = comma-separated extensions without dots ("wav,flac"), NULL = the default list.
int man_walk(const char *dir, const char *exts, manifest *out, sl_err *err);
void man_free(manifest *m);
// Default extensions for --audio-dir.
#define MAN_DEFAULT_EXTS "wav,flac,ogg,opus,mp3,aiff,aif,au,w64,caf"
