// pipeline/kmfit.h — k-means training over features spread across processes.
//
// What `spearlabel km-fit` runs on every rank. Each rank holds its own rows
// (the features of its share of the sampled utterances); the math here never
// sees MPI: the two collective operations it needs come in as callbacks
// (kmf_comm), which the CLI implements with MPI_Allreduce / MPI_Allgatherv and
// kmf_comm_local() implements for one process. Every rank calls kmf_fit with
// the same params; every rank returns the same centroids.
//
// Seeding: k-means|| (Bahmani et al. 2012): one uniform first centre, then
// `rounds` rounds that keep each row with probability min(1, l d^2 / phi)
// (l = oversample * K), the candidates weighted by how many rows are nearest to
// them, and K centres chosen from the weighted candidates by greedy k-means++
// (2 + ln K trials per centre) refined by weighted Lloyd, best of `init_trials`
// such local runs (local, so free of communication). Every random draw is a hash
// of (seed, round, the row's stable id) and candidates are ordered by id, so the
// seeding does not depend on how rows are spread over ranks.
//
// Lloyd: per iteration, per rank, the distances ||c||^2 - 2 x.c of its rows to
// all K centres as one ops_matmul GEMM per block of at most `block_rows` rows
// (all of a rank's rows at once when they fit), argmin (ties: lower id), then
// ONE sum-reduction of [K x D sums, K counts, inertia] in double. Inertia is the
// exact sum of ||x - c_a||^2 (double). Stops when (prev - cur) / cur < tol or
// after max_iter iterations; the returned centroids are the update of the last
// assignment, and *inertia the inertia of that last assignment.
// Empty clusters are re-seeded with the rows farthest from their centres
// (largest distance first, ties by row id; one gather that iteration), never NaN.
// Deterministic for a seed, a rank count and a thread count; 1 vs N ranks
// differ only by the summation order of double reductions.
// Errors: SL_EINVAL (fewer rows than K overall, bad params), SL_ENOMEM, and
// whatever a callback returns.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct kmf_comm {
    void *ctx;
    // In-place element-wise sum of buf[0..n) over all ranks.
    int (*sum)(void *ctx, double *buf, size_t n, sl_err *err);
    // Concatenation, in rank order, of every rank's `bytes` bytes: *all is malloc'd
    // (the caller frees it), *all_bytes its size.
    int (*gather)(void *ctx, const void *mine, size_t bytes, void **all, size_t *all_bytes,
                  sl_err *err);
} kmf_comm;

// One process: sum is a no-op, gather a copy.
kmf_comm kmf_comm_local(void);

typedef struct kmf_params {
    size_t k;
    int max_iter;       // Lloyd iterations (>= 1)
    double tol;         // relative inertia change that ends the fit
    uint64_t seed;
    int rounds;         // k-means|| rounds
    double oversample;  // l = oversample * k candidates expected per round
    int init_trials;    // local k-means++ runs on the candidates, best kept
    int n_init;         // whole fits (seeding + Lloyd) from derived seeds, lowest inertia kept
    size_t block_rows;  // rows per assignment GEMM (memory: block_rows x k floats)
    int verbose;        // log inertia per iteration (SL_LOG INFO, module "kmfit")
} kmf_params;

// {k 0, max_iter 100, tol 1e-4, seed 0, rounds 5, oversample 2, init_trials 4,
//  n_init 1, block_rows 0 (= 64 MiB of distances), verbose 0}
kmf_params kmf_default_params(void);

// This rank's rows.
typedef struct kmf_data {
    const float *x;     // (n, dim) row-major
    const uint64_t *id; // (n) stable ids, unique over all ranks, independent of the split
    size_t n, dim;
} kmf_data;

typedef struct kmf_stats {
    int iterations;
    double inertia;      // of the last assignment (sum over all ranks)
    double seed_inertia; // of the seeding's centres
    size_t n_total;      // rows over all ranks
    size_t n_candidates; // k-means|| candidates
    size_t n_reseeded;   // empty clusters re-seeded over the whole fit
    double seconds_init, seconds_lloyd;
} kmf_stats;

// Fits centroids c (k x dim, caller-owned) from the rows of every rank.
int kmf_fit(const kmf_comm *comm, const kmf_data *data, const kmf_params *p, float *c,
            kmf_stats *st, sl_err *err);

// Inertia of rows x (n, dim) against centroids c (k, dim), this rank only (double).
double kmf_inertia(const float *x, size_t n, size_t dim, const float *c, size_t k);
