// coordinator/manifest.h — the list of utterances a job covers.
//
// Three sources, one result: a sorted, de-duplicated array of items, each
// with its utterance id (the key of its dataset row), the path to open, and
// the sample count when the source gives one.
//   * fairseq tsv: first line = root directory, then `relative/path<TAB>n_samples`
//     (the count may be missing). id = the relative path. A line may name a piece of
//     the file with two more columns: `relative/path<TAB>n_samples<TAB>start<TAB>end`,
//     start and end in seconds (n_samples, the file's count, may be empty).
//   * NeMo JSON lines (the first non-blank line starts with '{'): one object per line,
//     {"audio_filepath": path, "offset": s, "duration": s, ...}. audio_filepath is
//     required (relative: against the manifest's directory; id = as written). A line
//     with an "offset" (0 is fine) names a piece [offset, offset + duration), and then
//     "duration" is required; a line without one (or with "offset": null) is the whole
//     file, as in NeMo's manifests of whole utterances, and its "duration", if any, is
//     only the sample count that sizes units (unlike NeMo, which would read just that
//     much). Other fields (text, lang, ...) are ignored.
//   * plain list: one path per line. Relative paths are resolved against the
//     manifest's directory; id = the path as written.
// A piece is one item (one row): start = round(offset * 16000), end = round((offset +
// duration) * 16000) in 16 kHz samples (MAN_PIECE_HZ), id = seg_key_format(the whole
// file's id, start, end) (storage/segkey.h: "a.wav@00001.500-00003.000"), n_samples =
// end - start. The worker reads only that range (pipeline/audio.h audio_read_range); a
// piece longer than --max-seconds is cut into segments as a long file is (worker/exec.h),
// keyed `<piece id>@S-E`. Two identical pieces are duplicate ids.
// A bad piece (negative offset, duration <= 0, a bound that is not a number, a piece
// past 99999.999 s, a missing or non-string audio_filepath, a line that is not a JSON
// object, tsv piece columns that are not two numbers with end > start) is an error item
// whose message names the manifest and the line; its id is "<path>@line N" when the
// line names a path, else "<manifest file name>:N".
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
    int64_t start, end; // a piece: samples [start, end) at MAN_PIECE_HZ; end == 0 (and
                        //   start 0): the whole file (see man_item_is_piece)
} man_item;

#define MAN_PIECE_HZ 16000 // the rate piece bounds are counted at (the encoder's)
static inline int man_item_is_piece(const man_item *it) { return it->end > 0; }

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
