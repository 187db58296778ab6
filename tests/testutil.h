// tests/testutil.h — shared helpers for the CUnit test programs.
#pragma once
#include <CUnit/CUnit.h>
#include <stddef.h>

typedef struct sl_test_case {
    const char *name;
    void (*fn)(void);
} sl_test_case;

// Runs the cases as one CUnit suite with the basic runner; returns the exit
// code (0 only when every assertion passed and at least one test ran).
int sl_test_main(const char *suite, const sl_test_case *cases);

// Path of a file under tests/data (SL_TEST_DATA); static buffer, valid until the next call.
const char *sl_test_data(const char *name);
// A fresh empty directory under $TMPDIR (or /tmp); static buffer per call slot (4 slots).
const char *sl_test_tmpdir(const char *tag);
// dir/name in a static buffer (8 slots, reused in turn).
const char *sl_test_join(const char *dir, const char *name);
// system() of fmt with two string arguments (paths are quoted by fmt itself).
int sl_test_sh(const char *fmt, const char *a, const char *b);
// rm -rf of a directory made by sl_test_tmpdir.
void sl_test_rmtree(const char *dir);
// max |a-b| over n floats.
float sl_test_max_abs_diff(const float *a, const float *b, size_t n);
