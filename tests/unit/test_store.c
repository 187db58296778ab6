// tests/unit/test_store.c — the LMDB dataset: batched writer, map growth from
// a tiny map, duplicate keys, aborts, SIGKILL in the middle of a batch,
// refusing foreign and newer directories, the single-writer lock.
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sha256.h"
#include "storage/row.h"
#include "storage/store.h"
#include "tests/testutil.h"

// Row i: ~(i % 50 + 50) semantic ids and (i % 20 + 10) text ids derived from i.
static size_t make_row(size_t i, unsigned char *buf, size_t cap)
{
    int32_t sem[128], txt[64];
    rec_header h = {.n_semantic = (uint32_t)(i % 50 + 50), .n_text = (uint32_t)(i % 20 + 10),
                    .duration_s = (float)(i % 7) + 0.5f, .score = -(float)(i % 11)};
    for (uint32_t k = 0; k < h.n_semantic; k++)
        sem[k] = (int32_t)((i * 31 + k) % 500);
    for (uint32_t k = 0; k < h.n_text; k++)
        txt[k] = (int32_t)((i + k * 7) % 256);
    sl_err e;
    long n = rec_row_encode(&h, sem, txt, buf, cap, &e);
    return n > 0 ? (size_t)n : 0;
}

static int make_key(size_t i, char *k) { return sprintf(k, "spk%03zu/utt%08zu.flac", i % 977, i); }

static int check_row(store *s, size_t i)
{
    char k[64];
    int kn = make_key(i, k);
    unsigned char want[1024];
    size_t wn = make_row(i, want, sizeof want);
    const void *v;
    size_t vn;
    sl_err e;
    if (store_get(s, STORE_ROWS, k, (size_t)kn, &v, &vn, &e))
        return 0;
    return vn == wn && memcmp(v, want, wn) == 0;
}

static void test_many_rows_tiny_map(void)
{
    const char *dir = sl_test_tmpdir("store");
    store_params p = store_default_params();
    p.initial_map_bytes = 64u << 10; // forces many growths, from puts and commits
    p.batch_rows = 5000;
    p.no_sync = 1;
    store *s;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_WRITE, p, &e), SL_OK);
    unsigned char buf[1024];
    char k[64];
    int failures = 0;
    for (size_t i = 0; i < 100000; i++) {
        size_t n = make_row(i, buf, sizeof buf);
        int kn = make_key(i, k);
        failures += store_put_row(s, k, (size_t)kn, buf, n, &e) != SL_OK;
    }
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    CU_ASSERT(store_map_growths(s) >= 5);
    CU_ASSERT(store_map_bytes(s) > (64u << 10));
    store_close(s);

    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &e), SL_OK);
    size_t count;
    CU_ASSERT_EQUAL(store_count(s, STORE_ROWS, &count, &e), SL_OK);
    CU_ASSERT_EQUAL(count, 100000);
    int bad = 0;
    for (size_t i = 0; i < 100000; i += 7)
        bad += !check_row(s, i);
    CU_ASSERT_EQUAL(bad, 0);
    // Cursor iteration: every row decodes, keys come in strictly increasing order.
    store_iter *it;
    CU_ASSERT_EQUAL_FATAL(store_iter_open(&it, s, STORE_ROWS, &e), SL_OK);
    const void *kp, *vp;
    size_t kn, vn, seen = 0, undecodable = 0, unordered = 0;
    char prev[64] = "";
    while (store_iter_next(it, &kp, &kn, &vp, &vn, &e) == 1) {
        rec_header h;
        undecodable += rec_row_decode(vp, vn, &h, &e) != SL_OK;
        char cur[64];
        memcpy(cur, kp, kn);
        cur[kn] = '\0';
        unordered += seen && strcmp(prev, cur) >= 0;
        memcpy(prev, cur, kn + 1);
        seen++;
    }
    CU_ASSERT_EQUAL(seen, 100000);
    CU_ASSERT_EQUAL(undecodable, 0);
    CU_ASSERT_EQUAL(unordered, 0);
    // Seek lands on the first key >= the probe.
    CU_ASSERT_EQUAL(store_iter_seek(it, "spk001/", 7, &e), SL_OK);
    CU_ASSERT_EQUAL(store_iter_next(it, &kp, &kn, &vp, &vn, &e), 1);
    CU_ASSERT(kn >= 7 && memcmp(kp, "spk001/", 7) == 0);
    store_iter_close(it);
    store_close(s);
    sl_test_rmtree(dir);
}

static void test_duplicates_and_abort(void)
{
    const char *dir = sl_test_tmpdir("dup");
    store_params p = store_default_params();
    p.batch_rows = 0;
    store *s;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_WRITE, p, &e), SL_OK);
    unsigned char buf[1024];
    size_t n = make_row(1, buf, sizeof buf);
    CU_ASSERT_EQUAL(store_put_row(s, "a", 1, buf, n, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_row(s, "a", 1, buf, n, &e), SL_EEXIST); // same batch
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "\"a\""));
    CU_ASSERT_EQUAL(store_put_row(s, "b", 1, buf, n, &e), SL_OK);    // batch still usable
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_row(s, "b", 1, buf, n, &e), SL_EEXIST); // committed earlier
    // An uncommitted batch that is aborted leaves nothing behind.
    CU_ASSERT_EQUAL(store_put_row(s, "c", 1, buf, n, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_meta(s, "note", "x", &e), SL_OK);
    CU_ASSERT_EQUAL(store_pending(s), 2);
    store_abort(s);
    const void *v;
    size_t vn;
    CU_ASSERT_EQUAL(store_get(s, STORE_ROWS, "c", 1, &v, &vn, &e), SL_ENOTFOUND);
    char *note = (char *)"unset";
    CU_ASSERT_EQUAL(store_get_meta(s, "note", &note, &e), SL_ENOTFOUND);
    CU_ASSERT_PTR_NULL(note);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "\"note\""));
    // Injected MAP_FULL on puts and on the commit: rows still land exactly once.
    store_test_inject_map_full(s, 2, 1);
    CU_ASSERT_EQUAL(store_put_row(s, "d", 1, buf, n, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_row(s, "e", 1, buf, n, &e), SL_OK);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    CU_ASSERT(store_map_growths(s) >= 3);
    size_t count;
    store_count(s, STORE_ROWS, &count, &e);
    CU_ASSERT_EQUAL(count, 4); // a, b, d, e
    // Errors table: put, refuse duplicate, delete.
    unsigned char eb[128];
    long en = rec_error_encode(SL_STAGE_AUDIO, SL_EIO, 1, "bad", eb, sizeof eb, &e);
    CU_ASSERT_EQUAL(store_put_error(s, "x", 1, eb, (size_t)en, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_error(s, "x", 1, eb, (size_t)en, &e), SL_EEXIST);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    CU_ASSERT_EQUAL(store_del_error(s, "x", 1, &e), SL_OK);
    CU_ASSERT_EQUAL(store_del_error(s, "nope", 4, &e), SL_OK);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    store_count(s, STORE_ERRORS, &count, &e);
    CU_ASSERT_EQUAL(count, 0);
    // Keys LMDB cannot hold are refused with a message, not truncated.
    char longkey[600];
    memset(longkey, 'k', sizeof longkey);
    CU_ASSERT_EQUAL(store_put_row(s, longkey, sizeof longkey, buf, n, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(store_put_row(s, "", 0, buf, n, &e), SL_EINVAL);
    store_close(s);
    sl_test_rmtree(dir);
}

// A meta read has three outcomes, and a failed read must not look like an absent key.
static void test_meta_absent_vs_failed(void)
{
    const char *dir = sl_test_tmpdir("store_meta");
    store_params p = store_default_params();
    p.no_sync = 1;
    store *s;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_WRITE, p, &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_meta(s, "fp/s2t", "abc", &e), SL_OK);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    char *v = NULL;
    CU_ASSERT_EQUAL(store_get_meta(s, "fp/s2t", &v, &e), SL_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "abc");
    free(v);
    CU_ASSERT_EQUAL(store_get_meta(s, "fp/absent", &v, &e), SL_ENOTFOUND);
    CU_ASSERT_PTR_NULL(v);
    store_test_inject_get_error(s, 1);
    CU_ASSERT_EQUAL(store_get_meta(s, "fp/s2t", &v, &e), SL_ESTORE);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "\"fp/s2t\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "Input/output error"));
    CU_ASSERT_EQUAL(store_get_meta(s, "fp/s2t", &v, &e), SL_OK); // one injected failure only
    free(v);
    store_close(s);
    sl_test_rmtree(dir);
}

static void test_refuse_foreign_and_newer(void)
{
    sl_err e;
    store *s;
    // A directory with other files and no data.mdb.
    const char *dir = sl_test_tmpdir("foreign");
    char path[4200];
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    CU_ASSERT_EQUAL(store_open(&s, dir, STORE_WRITE, store_default_params(), &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not a spearlabel dataset"));
    // A data.mdb that is not LMDB: refused, and its bytes are unchanged.
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 10000; i++)
        fputc(i * 7, f);
    fclose(f);
    char before[SL_SHA256_HEX], after[SL_SHA256_HEX];
    sl_sha256_file(path, before, &e);
    CU_ASSERT_NOT_EQUAL(store_open(&s, dir, STORE_WRITE, store_default_params(), &e), SL_OK);
    CU_ASSERT_NOT_EQUAL(store_open(&s, dir, STORE_READ, store_default_params(), &e), SL_OK);
    sl_sha256_file(path, after, &e);
    CU_ASSERT_STRING_EQUAL(before, after);
    sl_test_rmtree(dir);
    // A regular file given as the dataset.
    CU_ASSERT_EQUAL(store_open(&s, sl_test_data("ids_L2.npy"), STORE_READ, store_default_params(),
                               &e), SL_EFORMAT);
    // A dataset whose format version is newer than this build.
    dir = sl_test_tmpdir("newer");
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_WRITE, store_default_params(), &e), SL_OK);
    store_put_meta(s, "format_version", "99", &e);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    store_close(s);
    CU_ASSERT_EQUAL(store_open(&s, dir, STORE_WRITE, store_default_params(), &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "newer"));
    CU_ASSERT_EQUAL(store_open(&s, dir, STORE_READ, store_default_params(), &e), SL_EFORMAT);
    sl_test_rmtree(dir);
    // Reading a missing dataset does not create it.
    CU_ASSERT_EQUAL(store_open(&s, "/nonexistent/ds", STORE_READ, store_default_params(), &e),
                    SL_EIO);
}

static void test_single_writer_lock(void)
{
    const char *dir = sl_test_tmpdir("lock");
    store *a, *b;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(store_open(&a, dir, STORE_WRITE, store_default_params(), &e), SL_OK);
    CU_ASSERT_EQUAL(store_open(&b, dir, STORE_WRITE, store_default_params(), &e), SL_EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "another spearlabel process"));
    // A reader is fine while the writer holds the lock.
    CU_ASSERT_EQUAL(store_open(&b, dir, STORE_READ, store_default_params(), &e), SL_OK);
    CU_ASSERT_EQUAL(store_put_row(b, "k", 1, "x", 1, &e), SL_EINVAL); // read-only handle
    store_close(b);
    store_close(a);
    CU_ASSERT_EQUAL(store_open(&b, dir, STORE_WRITE, store_default_params(), &e), SL_OK);
    store_close(b);
    sl_test_rmtree(dir);
}

// A child writes batches of 1000 rows, reports each commit on a pipe, and is
// killed with SIGKILL partway through a later batch. The dataset must hold
// exactly the committed rows, every one intact.
static void test_sigkill_mid_batch(void)
{
    for (int round = 0; round < 3; round++) {
        const char *dir = sl_test_tmpdir("kill");
        int fds[2];
        CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
        size_t kill_after = 2000 + (size_t)round * 1700 + 350; // mid-batch
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            store_params p = store_default_params();
            p.initial_map_bytes = 256u << 10;
            p.batch_rows = 0;
            store *s;
            sl_err e;
            if (store_open(&s, dir, STORE_WRITE, p, &e))
                _exit(3);
            unsigned char buf[1024];
            char k[64];
            for (size_t i = 0;; i++) {
                size_t n = make_row(i, buf, sizeof buf);
                int kn = make_key(i, k);
                if (store_put_row(s, k, (size_t)kn, buf, n, &e))
                    _exit(4);
                if ((i + 1) % 1000 == 0) {
                    if (store_commit(s, &e))
                        _exit(5);
                    uint64_t c = i + 1;
                    if (write(fds[1], &c, sizeof c) != sizeof c)
                        _exit(6);
                }
                if (i + 1 == kill_after) { // tell the parent we are mid-batch, then wait
                    uint64_t c = UINT64_MAX;
                    if (write(fds[1], &c, sizeof c) != sizeof c)
                        _exit(6);
                    pause();
                }
            }
        }
        close(fds[1]);
        uint64_t c, committed = 0;
        while (read(fds[0], &c, sizeof c) == sizeof c && c != UINT64_MAX)
            committed = c;
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        close(fds[0]);
        CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CU_ASSERT_EQUAL(committed, (kill_after / 1000) * 1000);

        store *s;
        sl_err e;
        CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &e), SL_OK);
        size_t count;
        store_count(s, STORE_ROWS, &count, &e);
        CU_ASSERT_EQUAL(count, committed);
        int bad = 0;
        for (size_t i = 0; i < committed; i++)
            bad += !check_row(s, i);
        CU_ASSERT_EQUAL(bad, 0);
        const void *v;
        size_t vn;
        char k[64];
        int kn = make_key(committed, k); // first uncommitted row is absent
        CU_ASSERT_EQUAL(store_get(s, STORE_ROWS, k, (size_t)kn, &v, &vn, &e), SL_ENOTFOUND);
        store_close(s);
        // And the writer lock died with the process: a new writer can continue.
        CU_ASSERT_EQUAL(store_open(&s, dir, STORE_WRITE, store_default_params(), &e), SL_OK);
        store_close(s);
        sl_test_rmtree(dir);
    }
}

int main(void)
{
    static const sl_test_case cases[] = {{"many_rows_tiny_map", test_many_rows_tiny_map},
                                         {"duplicates_and_abort", test_duplicates_and_abort},
                                         {"meta_absent_vs_failed", test_meta_absent_vs_failed},
                                         {"refuse_foreign_and_newer", test_refuse_foreign_and_newer},
                                         {"single_writer_lock", test_single_writer_lock},
                                         {"sigkill_mid_batch", test_sigkill_mid_batch},
                                         {NULL, NULL}};
    return sl_test_main("store", cases);
}
