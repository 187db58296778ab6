// tests/unit/test_half.c — pipeline/half.h: float16 conversion against its definition
// (exact widening; nearest-even narrowing checked by distance in double, independently
// of the code), and the plain C and F16C forms giving the same bits for all 65,536
// halves and a sweep of the floats. Without F16C the second half is reported skipped.
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/half.h"
#include "tests/testutil.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// Widening is exact: the value of every finite half, computed from its fields in double.
static void test_widen_definition(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int e = (int)((h >> 10) & 31), m = (int)(h & 1023);
        double sgn = (h & 0x8000) ? -1.0 : 1.0, want;
        float got = half_to_float((uint16_t)h);
        if (e == 31) {
            bad += m ? !isnan(got) : !(isinf(got) && (got < 0) == (sgn < 0));
            continue;
        }
        want = e ? sgn * ldexp(1.0 + m / 1024.0, e - 15) : sgn * ldexp(m, -24);
        bad += (double)got != want || !signbit(got) != !signbit(want);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(bits(half_to_float(0x3c00)), bits(1.0f));
    CU_ASSERT_EQUAL(half_to_float(0x7bff), HALF_MAX);
    CU_ASSERT_EQUAL(half_to_float(0x0001), ldexpf(1.0f, -24));
}

// Narrowing rounds to the nearest half, ties to the even one: checked for x against
// its result's neighbours by distance in double (not by re-deriving the bit code).
static int narrow_ok(float x)
{
    uint16_t h = half_from_float(x);
    if (isnan(x))
        return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    double ax = fabs((double)x);
    if ((h & 0x8000) != (signbit(x) ? 0x8000 : 0))
        return 0;
    uint16_t mag = h & 0x7fff;
    if (ax >= 65520.0)
        return mag == 0x7c00;
    if (mag >= 0x7c00)
        return 0;
    double d = fabs((double)half_to_float(mag) - ax);
    if (mag < 0x7bff) { // the next half up
        double up = fabs((double)half_to_float((uint16_t)(mag + 1)) - ax);
        if (up < d || (up == d && (mag & 1)))
            return 0;
    } else if (fabs(65536.0 - ax) < d) // 65504's neighbour above is infinity at 65536
        return 0;
    if (mag > 0) {
        double dn = fabs((double)half_to_float((uint16_t)(mag - 1)) - ax);
        if (dn < d || (dn == d && (mag & 1)))
            return 0;
    }
    return 1;
}

static void test_narrow_definition(void)
{
    int bad = 0;
    // a sweep of every 97th float bit pattern (44 million), then every float next to a
    // half or halfway between two (the rounding boundaries), both signs
    for (uint64_t u = 0; u < (1ull << 32); u += 97)
        bad += !narrow_ok(from_bits((uint32_t)u));
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double v = half_to_float((uint16_t)h);
        double mid = (v + (double)half_to_float((uint16_t)(h + 1))) / 2; // 0x7bff: 65520
        float pts[] = {(float)v, (float)mid};
        for (int k = 0; k < 2; k++)
            for (int s = -1; s <= 1; s++) {
                float x = pts[k];
                if (s < 0)
                    x = nextafterf(x, 0.0f);
                else if (s > 0)
                    x = nextafterf(x, INFINITY);
                bad += !narrow_ok(x) + !narrow_ok(-x);
            }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(half_from_float(65519.0f), 0x7bff);
    CU_ASSERT_EQUAL(half_from_float(65520.0f), 0x7c00);
    CU_ASSERT_EQUAL(half_from_float(ldexpf(1.0f, -25)), 0x0000);
    CU_ASSERT_EQUAL(half_from_float(ldexpf(1.5f, -25)), 0x0001);
    CU_ASSERT_EQUAL(half_from_float(-0.0f), 0x8000);
    CU_ASSERT_EQUAL(half_from_float(INFINITY), 0x7c00);
}

// The array forms (F16C where the CPU has it) against the plain C ones, bit for bit,
// on lengths with tails past the 8-wide loop.
static void test_paths_same_bits(void)
{
    half_force_portable(0);
    if (!half_uses_f16c()) {
        fprintf(stderr, "    no F16C on this CPU: the F16C forms skipped\n");
        return;
    }
    static uint16_t h[65536 + 5], h2[65536 + 5];
    static float f[65536 + 5], f2[65536 + 5];
    for (uint32_t i = 0; i < 65536 + 5; i++)
        h[i] = (uint16_t)(i * 40503u);
    half_widen(h, f, 65536 + 5);
    half_force_portable(1);
    half_widen(h, f2, 65536 + 5);
    CU_ASSERT(memcmp(f, f2, sizeof f) == 0);
    int bad = 0;
    enum { CH = 1 << 16 };
    static float x[CH + 3];
    for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)CH * 61) {
        for (uint32_t i = 0; i < CH + 3; i++)
            x[i] = from_bits((uint32_t)(base + (uint64_t)i * 61));
        half_force_portable(0);
        half_narrow(x, h, CH + 3);
        half_force_portable(1);
        half_narrow(x, h2, CH + 3);
        bad += memcmp(h, h2, (CH + 3) * sizeof h[0]) != 0;
    }
    half_force_portable(0);
    CU_ASSERT_EQUAL(bad, 0);
    for (size_t n = 0; n < 20; n++) { // every tail length, nothing written past n
        float in[20], out[21];
        uint16_t hh[21];
        for (size_t i = 0; i < 20; i++)
            in[i] = (float)i * 0.37f - 3.0f;
        memset(hh, 0xab, sizeof hh);
        memset(out, 0xab, sizeof out);
        half_narrow(in, hh, n);
        half_widen(hh, out, n);
        CU_ASSERT_EQUAL(hh[n], 0xabab);
        CU_ASSERT_EQUAL(bits(out[n]), 0xababababu);
        for (size_t i = 0; i < n; i++)
            CU_ASSERT_EQUAL(hh[i], half_from_float(in[i]));
    }
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"half: widening is exact for all 65,536 halves", test_widen_definition},
        {"half: narrowing rounds to nearest, ties to even (sweep and boundaries)",
         test_narrow_definition},
        {"half: the F16C and plain C forms give the same bits", test_paths_same_bits},
        {NULL, NULL},
    };
    return sl_test_main("half", cases);
}
