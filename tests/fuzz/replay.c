// tests/fuzz/replay.c — main() for a fuzz target built without libFuzzer (gcc,
// the normal and sanitizer builds): feeds every file named on the command line,
// or found in a directory named there, to LLVMFuzzerTestOneInput once. ctest
// runs it over the seed corpus and the regression inputs (tests/fuzz/regress/),
// so every crash the fuzzer ever found stays fixed in every build.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, size_t *n_run)
{
    void *buf;
    size_t n;
    sl_err err;
    if (sl_read_file(path, (size_t)64 << 20, &buf, &n, &err) != SL_OK) {
        fprintf(stderr, "replay: %s\n", err.msg);
        return 1;
    }
    // An exact-size copy, so ASan sees a read one byte past the input.
    void *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    (*n_run)++;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n_run = 0;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: missing\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i], &n_run);
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d)
            return 1;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            bad |= run_file(p, &n_run);
        }
        closedir(d);
    }
    printf("replay: %zu inputs, no crash\n", n_run);
    return bad;
}
