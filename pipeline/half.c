// pipeline/half.c — see half.h.
#include "pipeline/half.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) // GCC and clang
#include <cpuid.h>
#include <immintrin.h>
#define HALF_HAVE_F16C 1
#endif

float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0x1f) // infinity, NaN (quieted, as F16C does)
        x = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u);
    else if (e)
        x = sign | ((e + 112u) << 23) | (m << 13);
    else if (!m)
        x = sign;
    else { // subnormal: m * 2^-24, normalised
        uint32_t s = 0;
        while (!(m & 0x400u)) {
            m <<= 1;
            s++;
        }
        x = sign | ((113u - s) << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

// q + 1 when the dropped bits rem (of a unit of `half`) round q up: nearest, ties to even.
static uint32_t round_even(uint32_t q, uint32_t rem, uint32_t half)
{
    return rem > half || (rem == half && (q & 1u)) ? q + 1u : q;
}

uint16_t half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) // NaN: quiet, top payload bits
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) // >= 65520 (and infinity): rounds to infinity
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { // >= 2^-14: a normal half (a carry may reach the next exponent)
        uint32_t q = (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu);
        return (uint16_t)(sign | round_even(q, ax & 0x1fffu, 0x1000u));
    }
    if (ax <= 0x33000000u) // <= 2^-25 (the tie goes to the even 0)
        return (uint16_t)sign;
    // subnormal half: round(|f| / 2^-24); |f| = m * 2^(e - 150), shift = 126 - e in 14..24
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, sh = 126u - e;
    return (uint16_t)(sign | round_even(m >> sh, m & ((1u << sh) - 1u), 1u << (sh - 1u)));
}

static void widen_c(const uint16_t *h, float *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f[i] = half_to_float(h[i]);
}

static void narrow_c(const float *f, uint16_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h[i] = half_from_float(f[i]);
}

#ifdef HALF_HAVE_F16C
__attribute__((target("avx,f16c"))) static void widen_f16c(const uint16_t *h, float *f, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    widen_c(h + i, f + i, n - i);
}

__attribute__((target("avx,f16c"))) static void narrow_f16c(const float *f, uint16_t *h, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) // the rounding from the immediate (nearest even), not MXCSR
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(f + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    narrow_c(f + i, h + i, n - i);
}
#endif

static int use_f16c = -1; // -1: not checked yet

#ifdef HALF_HAVE_F16C
// F16C and AVX, and the OS saving the YMM registers (XCR0 bits 1 and 2).
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX) ||
        !(c & bit_F16C))
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6u) == 6u;
}
#endif

int half_uses_f16c(void)
{
#ifdef HALF_HAVE_F16C
    if (use_f16c < 0) // CPUID itself: clang 14's __builtin_cpu_supports has no "f16c"
        use_f16c = cpu_has_f16c();
    return use_f16c;
#else
    return 0;
#endif
}

void half_force_portable(int on)
{
    use_f16c = on ? 0 : -1;
}

void half_widen(const uint16_t *h, float *f, size_t n)
{
#ifdef HALF_HAVE_F16C
    if (half_uses_f16c()) {
        widen_f16c(h, f, n);
        return;
    }
#endif
    widen_c(h, f, n);
}

void half_narrow(const float *f, uint16_t *h, size_t n)
{
#ifdef HALF_HAVE_F16C
    if (half_uses_f16c()) {
        narrow_f16c(f, h, n);
        return;
    }
#endif
    narrow_c(f, h, n);
}
