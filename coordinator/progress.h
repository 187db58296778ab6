// coordinator/progress.h — what rank 0 tells the user while a job runs:
// files done / total, rows and errors stored, rows/s, audio hours/s and an ETA. On a
// terminal a live line redrawn twice a second; otherwise (Slurm logs) one
// log line every `every_s` seconds. MPI-free.
// The ETA counts audio seconds when the manifest gives every item's length
// (progress_set_audio), so a long file being cut into segments shows movement;
// otherwise it counts files.
#pragma once
#include <stddef.h>

typedef struct progress {
    size_t total;         // files (manifest items) the job covers
    size_t done0;         // already finished when the run started
    size_t items;         // finished by this run
    size_t rows, errors;  // records stored by this run (a long file: one row per segment)
    double audio_todo;    // audio seconds the run had to do (0: unknown)
    double audio_s;       // audio seconds stored by this run
    double t_start, t_last;
    double every_s;
    int tty;
} progress;

void progress_init(progress *p, size_t total, size_t already_done, double every_s);
// The audio seconds still to do when the run starts (0 = unknown: the ETA counts files).
void progress_set_audio(progress *p, double audio_todo);
// Adds to the counts (items: files finished) and prints if it is time.
void progress_add(progress *p, size_t items, size_t rows, size_t errors, double audio_s);
// Prints the final line unconditionally.
void progress_final(progress *p, const char *status);
