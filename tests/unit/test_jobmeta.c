// tests/unit/test_jobmeta.c — fingerprints on a real store: an absent fingerprint
// means a new dataset (recorded), a stored one must match, and a fingerprint that
// cannot be read refuses the run instead of passing for a new dataset.
// coordinator/jobmeta.c is compiled in (sl_coordinator would bring MPI).
#include <stdlib.h>
#include <string.h>

#include "coordinator/jobmeta.h"
#include "storage/store.h"
#include "tests/testutil.h"

static store *open_tmp(const char *tag, const char **dir)
{
    *dir = sl_test_tmpdir(tag);
    store_params p = store_default_params();
    p.no_sync = 1;
    store *s = NULL;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, *dir, STORE_WRITE, p, &e), SL_OK);
    return s;
}

static void two_fps(jm_fp *fps)
{
    memset(fps, 0, 2 * sizeof *fps);
    fps[0] = (jm_fp){.name = "hubert", .strict = 1, .what = "the HuBERT model"};
    fps[1] = (jm_fp){.name = "manifest", .strict = 0, .what = "the manifest"};
    jm_fp_text(&fps[0], "hubert weights");
    jm_fp_text(&fps[1], "manifest text");
}

static int meta_is(store *s, const char *key, const char *want)
{
    char *v;
    sl_err e;
    if (store_get_meta(s, key, &v, &e))
        return 0;
    int same = strcmp(v, want) == 0;
    free(v);
    return same;
}

static void test_absent_means_new_dataset(void)
{
    const char *dir;
    store *s = open_tmp("jm_new", &dir);
    jm_fp fps[2];
    two_fps(fps);
    int was_new = -1;
    sl_err e;
    CU_ASSERT_EQUAL(jm_check_and_record(s, fps, 2, &was_new, &e), SL_OK);
    CU_ASSERT_EQUAL(was_new, 1);
    CU_ASSERT(meta_is(s, "fp/hubert", fps[0].hex));
    CU_ASSERT(meta_is(s, "fp/manifest", fps[1].hex));
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    // Resume with the same setup: not new, nothing to write.
    CU_ASSERT_EQUAL(jm_check_and_record(s, fps, 2, &was_new, &e), SL_OK);
    CU_ASSERT_EQUAL(was_new, 0);
    CU_ASSERT_EQUAL(store_pending(s), 0);
    // A changed strict fingerprint refuses, naming the key; an informative one warns.
    jm_fp changed[2];
    two_fps(changed);
    jm_fp_text(&changed[1], "another manifest");
    CU_ASSERT_EQUAL(jm_check_and_record(s, changed, 2, &was_new, &e), SL_OK);
    CU_ASSERT(meta_is(s, "fp/manifest", changed[1].hex));
    jm_fp_text(&changed[0], "other weights");
    CU_ASSERT_EQUAL(jm_check_and_record(s, changed, 2, &was_new, &e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "fp/hubert"));
    store_close(s);
    sl_test_rmtree(dir);
}

// A stored fingerprint equal to old_hex (what the same setup stored before a change of
// the code, e.g. the options before resample=2) is refused with old_why, not recorded.
static void test_old_fingerprint_names_the_change(void)
{
    const char *dir;
    store *s = open_tmp("jm_old", &dir);
    jm_fp fps[2];
    two_fps(fps);
    jm_fp_text(&fps[0], "options before");
    int was_new = -1;
    sl_err e;
    CU_ASSERT_EQUAL(jm_check_and_record(s, fps, 2, &was_new, &e), SL_OK);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    char before[65];
    memcpy(before, fps[0].hex, sizeof before);
    jm_fp now[2];
    two_fps(now);
    jm_fp_text(&now[0], "options after");
    memcpy(now[0].old_hex, before, sizeof before);
    now[0].old_why = "the change under test";
    CU_ASSERT_EQUAL(jm_check_and_record(s, now, 2, &was_new, &e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "had before the change under test"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "fp/hubert"));
    CU_ASSERT(meta_is(s, "fp/hubert", before)); // nothing recorded over it
    // Not strict: still refused (the old value names a known change, not a new input).
    now[0].strict = 0;
    CU_ASSERT_EQUAL(jm_check_and_record(s, now, 2, &was_new, &e), SL_EINVAL);
    // Another stored value is an ordinary mismatch.
    now[0].strict = 1;
    jm_fp_text(&now[0], "options after");
    jm_fp_text(&fps[0], "something else");
    memcpy(now[0].old_hex, fps[0].hex, sizeof fps[0].hex);
    CU_ASSERT_EQUAL(jm_check_and_record(s, now, 2, &was_new, &e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "changed since this dataset was written"));
    store_close(s);
    sl_test_rmtree(dir);
}

static void test_failed_read_refuses(void)
{
    const char *dir;
    store *s = open_tmp("jm_fail", &dir);
    jm_fp fps[2];
    two_fps(fps);
    int was_new = -1;
    sl_err e;
    // A new dataset whose first read fails: refused, and no fresh fingerprint is
    // recorded (that would let a later run with other models pass the check).
    store_test_inject_get_error(s, 1);
    CU_ASSERT_EQUAL(jm_check_and_record(s, fps, 2, &was_new, &e), SL_ESTORE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "cannot read fp/hubert"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "refusing the run"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "Input/output error")); // the store's own words
    CU_ASSERT_EQUAL(store_pending(s), 0);
    // A resumed dataset whose fingerprint cannot be read: refused as well, even though
    // the stored value would have matched.
    CU_ASSERT_EQUAL(jm_check_and_record(s, fps, 2, &was_new, &e), SL_OK);
    CU_ASSERT_EQUAL(store_commit(s, &e), SL_OK);
    store_test_inject_get_error(s, 1);
    CU_ASSERT_EQUAL(jm_check_and_record(s, fps, 2, &was_new, &e), SL_ESTORE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "fp/hubert"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "the HuBERT model"));
    CU_ASSERT_EQUAL(store_pending(s), 0);
    store_close(s);
    sl_test_rmtree(dir);
}

int main(void)
{
    static const sl_test_case cases[] = {{"absent_means_new_dataset", test_absent_means_new_dataset},
                                         {"failed_read_refuses", test_failed_read_refuses},
                                         {"old_fingerprint_names_the_change",
                                          test_old_fingerprint_names_the_change},
                                         {NULL, NULL}};
    return sl_test_main("jobmeta", cases);
}
