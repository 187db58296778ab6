// coordinator/units.c — see units.h.
#include "coordinator/units.h"

#include <stdlib.h>
#include <string.h>

static const manifest *g_sort_m; // qsort has no context argument; set only inside units_plan

static int cmp_dispatch(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int64_t ni = g_sort_m->items[i].n_samples, nj = g_sort_m->items[j].n_samples;
    if ((ni >= 0) != (nj >= 0))
        return ni >= 0 ? -1 : 1; // known counts first
    if (ni != nj)
        return ni > nj ? -1 : 1; // longest first
    return i < j ? -1 : i > j;   // items are sorted by id: index order is id order
}

int units_plan(const manifest *m, size_t max_items, double max_seconds, unit_plan *out,
               sl_err *err)
{
    memset(out, 0, sizeof *out);
    if (max_items == 0)
        max_items = 1;
    out->items = malloc((m->n ? m->n : 1) * sizeof(size_t));
    out->start = malloc((m->n + 1) * sizeof(size_t));
    if (!out->items || !out->start) {
        units_free(out);
        return sl_fail(err, SL_ENOMEM, "units: out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!m->items[i].bad)
            out->items[n++] = i;
    g_sort_m = m;
    qsort(out->items, n, sizeof(size_t), cmp_dispatch);
    g_sort_m = NULL;
    out->n_items = n;
    size_t u = 0, in_unit = 0;
    double secs = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t ns = m->items[out->items[k]].n_samples;
        double s = ns >= 0 ? (double)ns / 16000.0 : 0.0;
        if (in_unit && (in_unit == max_items || (max_seconds > 0 && secs + s > max_seconds))) {
            in_unit = 0;
            secs = 0;
        }
        if (in_unit == 0)
            out->start[u++] = k;
        in_unit++;
        secs += s;
    }
    out->start[u] = n;
    out->n_units = u;
    return SL_OK;
}

void units_free(unit_plan *p)
{
    if (!p)
        return;
    free(p->items);
    free(p->start);
    memset(p, 0, sizeof *p);
}
