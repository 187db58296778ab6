// coordinator/units.h — how a manifest is cut into work units.
//
// A unit is a handful of utterances a worker processes together (decoding
// batches them: one beam search over all sources of the unit). Which
// utterances share a unit depends only on the manifest and the flags, never on
// the number of ranks, on timing or on what a previous run already stored,
// so a row never depends on how the job was scheduled or resumed.
//
// Order: utterances with a known sample count first, longest first (ties by
// id), then those without a count, by id; so the longest work starts first
// and the tail of a job is short. Units are consecutive runs of that order
// holding at most max_items utterances and, where counts are known, at most
// max_seconds of audio (a single longer utterance forms a unit of its own).
// Items marked bad in the manifest are in no unit (the job stores them as errors).
// MPI-free.
#pragma once
#include <stddef.h>

#include "common/err.h"
#include "coordinator/manifest.h"

typedef struct unit_plan {
    size_t *items;   // manifest item indices in dispatch order
    size_t *start;   // unit u = items[start[u] .. start[u+1])
    size_t n_units;
    size_t n_items;  // items placed in units
} unit_plan;

int units_plan(const manifest *m, size_t max_items, double max_seconds, unit_plan *out,
               sl_err *err);
void units_free(unit_plan *p);
static inline size_t units_size(const unit_plan *p, size_t u)
{
    return p->start[u + 1] - p->start[u];
}
