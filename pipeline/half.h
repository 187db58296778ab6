// pipeline/half.h — IEEE 754 binary16 ("float16") storage for float32 values:
// the narrower cross-attention keys/values that `--cross-kv f16` keeps
// (pipeline/s2t.h, S2T_KV_F16).
//
// Bits. Widening (half -> float) is exact: every half is a float. Narrowing
// (float -> half) rounds to nearest, ties to even, as IEEE 754 says: magnitudes
// from 65520 up become infinity, below 2^-14 a subnormal half, at most 2^-25
// zero (the sign kept); NaN stays NaN (quiet, its payload's top 9 bits kept).
// Both are built twice, plain C and, where the CPU has F16C (AVX2 machines),
// its conversion instructions, picked at run time; the two give the same bits
// for every input (tests/unit/test_half.c: all 65,536 halves and a sweep of the
// floats), so a row does not depend on which node converted it.
//
// No state beyond the one-time CPU check; thread-safe.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define HALF_MAX 65504.0f // the largest finite half

// One value, plain C (the reference for the dispatched forms below).
float half_to_float(uint16_t h);
uint16_t half_from_float(float f);

// f[0..n) = h[0..n) widened; h[0..n) = f[0..n) narrowed. Not in place.
void half_widen(const uint16_t *h, float *f, size_t n);
void half_narrow(const float *f, uint16_t *h, size_t n);

// Tests: 1 = always the plain C forms, 0 = pick by the CPU again.
void half_force_portable(int on);
// 1 when the dispatched forms use F16C on this CPU (and not forced off).
int half_uses_f16c(void);
