// bench/store_bench.c — how fast the dataset writer commits rows.
//   store_bench [N_ROWS=1000000] [BATCH=4096] [DIR]
// Environment: SL_BENCH_ORDER=shuffled (default) | sorted: the order keys
// arrive in. LMDB is a copy-on-write B-tree: keys in random order dirty one
// leaf page per row (write amplification ~6x at this row size), keys in order
// fill pages sequentially. bench/run_store_bench.sh runs both.
// Writes N rows of ~100 semantic + ~40 text ids (random lengths 80..120 and
// 30..50) with the default store parameters (64 MiB initial map, fsync on
// every commit), then reads them all back with a cursor. Prints rows/s
// committed (wall clock, including every commit and map growth), bytes per
// row on disk, and the cursor scan rate. Target: >= 200,000 rows/s on one core.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "storage/row.h"
#include "storage/store.h"

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t n_rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 4096;
    char dir[4096];
    if (argc > 3)
        snprintf(dir, sizeof dir, "%s", argv[3]);
    else {
        snprintf(dir, sizeof dir, "%s/sl_store_bench_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    const char *order = getenv("SL_BENCH_ORDER"); // "sorted" or "shuffled" (default)
    int sorted = order && !strcmp(order, "sorted");
    store_params p = store_default_params();
    p.batch_rows = batch;
    p.no_sync = getenv("SL_BENCH_NOSYNC") != NULL;
    store *s;
    sl_err e;
    if (store_open(&s, dir, STORE_WRITE, p, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int32_t sem[128], txt[64];
    unsigned char buf[1024];
    char key[64];
    size_t payload = 0;
    double t0 = sl_now(), c0 = cpu();
    for (size_t i = 0; i < n_rows; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        rec_header h = {.n_semantic = 80 + (uint32_t)((rng >> 33) % 41),
                        .n_text = 30 + (uint32_t)((rng >> 45) % 21), .duration_s = 10.0f,
                        .score = -12.5f};
        for (uint32_t k = 0; k < h.n_semantic; k++)
            sem[k] = (int32_t)((i + k * 13) % 500);
        for (uint32_t k = 0; k < h.n_text; k++)
            txt[k] = (int32_t)((i + k * 5) % 256);
        long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
        // Keys shaped like LibriLight paths, inserted in shuffled order as workers return them.
        int kn = sorted ? snprintf(key, sizeof key, "%04zu/%06zu/utt_%08zu.flac", i / 100000,
                                   (i / 100) % 1000000, i)
                        : snprintf(key, sizeof key, "%04u/%06u/utt_%08zu.flac",
                                   (unsigned)(rng >> 52), (unsigned)((rng >> 20) % 1000000), i);
        if (n < 0 || store_put_row(s, key, (size_t)kn, buf, (size_t)n, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        payload += (size_t)n + (size_t)kn;
    }
    if (store_commit(s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    double t1 = sl_now(), c1 = cpu();
    unsigned growths = store_map_growths(s);
    store_close(s);

    if (store_open(&s, dir, STORE_READ, store_default_params(), &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    store_iter *it;
    store_iter_open(&it, s, STORE_ROWS, &e);
    const void *k, *v;
    size_t kn, vn, seen = 0;
    unsigned long long ids = 0;
    double t2 = sl_now();
    while (store_iter_next(it, &k, &kn, &v, &vn, &e) == 1) {
        rec_header h;
        if (rec_row_decode(v, vn, &h, &e) == SL_OK)
            ids += h.n_semantic + h.n_text;
        seen++;
    }
    double t3 = sl_now();
    store_iter_close(it);
    store_close(s);
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    stat(path, &st);
    printf("store_bench: %zu rows, batch %zu, fsync per commit, map grown %u times\n", n_rows, batch,
           growths);
    printf("  write+commit: %.2f s wall, %.2f s cpu -> %.0f rows/s committed\n", t1 - t0, c1 - c0,
           (double)n_rows / (t1 - t0));
    printf("  payload %.1f bytes/row (value+key); on disk %.1f bytes/row (data.mdb %.1f MiB)\n",
           (double)payload / (double)n_rows, (double)st.st_blocks * 512.0 / (double)n_rows,
           (double)st.st_blocks * 512.0 / 1048576.0);
    printf("  cursor scan + decode: %zu rows, %llu ids in %.2f s -> %.0f rows/s\n", seen, ids,
           t3 - t2, (double)seen / (t3 - t2));
    if (argc <= 3) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return seen == n_rows ? 0 : 1;
}
