// coordinator/progress.h — what rank 0 tells the user while a job runs:
// done / failed / total, utterances/s, audio hours/s and an ETA. On a
// terminal a live line redrawn twice a second; otherwise (Slurm logs) one
// log line every `every_s` seconds. MPI-free.
#pragma once
#include <stddef.h>

typedef struct progress {
    size_t total;         // utterances the job covers
    size_t done0;         // already stored when the run started
    size_t rows, errors;  // stored by this run
    double audio_s;       // audio seconds stored by this run
    double t_start, t_last;
    double every_s;
    int tty;
} progress;

void progress_init(progress *p, size_t total, size_t already_done, double every_s);
// Adds to the counts and prints if it is time.
void progress_add(progress *p, size_t rows, size_t errors, double audio_s);
// Prints the final line unconditionally.
void progress_final(progress *p, const char *status);
