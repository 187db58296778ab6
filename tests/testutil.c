// tests/testutil.c — see testutil.h.
#include "testutil.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sl_test_main(const char *suite, const sl_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    for (const sl_test_case *c = cases; c->name; c++)
        CU_add_test(s, c->name, c->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed || ran == 0) ? 1 : 0;
}

const char *sl_test_data(const char *name)
{
    static char buf[4096];
    const char *root = getenv("SL_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "tests/data", name);
    return buf;
}

const char *sl_test_tmpdir(const char *tag)
{
    static char bufs[4][4096];
    static int slot;
    char *b = bufs[slot++ % 4];
    const char *t = getenv("TMPDIR");
    snprintf(b, 4096, "%s/sl_%s_XXXXXX", t && *t ? t : "/tmp", tag);
    if (!mkdtemp(b)) {
        perror("mkdtemp");
        abort();
    }
    return b;
}

void sl_test_rmtree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

float sl_test_max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) // NaN counts as infinitely far
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

const char *sl_test_join(const char *dir, const char *name)
{
    static char buf[8][4200];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 4200, "%s/%s", dir, name);
    return b;
}

int sl_test_sh(const char *fmt, const char *a, const char *b)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}
