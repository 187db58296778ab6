// common/exitcode.h — exit codes of every spearlabel command, for scripts
// (jobs/spearlabel.sbatch requeues on SL_EXIT_INTERRUPTED).
#pragma once

enum {
    SL_EXIT_OK = 0,          // done
    SL_EXIT_FAIL = 1,        // runtime error (message on stderr)
    SL_EXIT_USAGE = 2,       // bad flags or arguments
    SL_EXIT_INTERRUPTED = 3, // stopped by a signal; state is consistent, re-run to resume
};
