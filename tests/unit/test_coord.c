// tests/unit/test_coord.c — the coordinator in a plain process, where exact resume lives.
//
// No MPI and no models: the executor is a stub whose rows record the composition
// of the unit that produced them (its size, the row's place in it and a hash of
// all its ids), so a row changes whenever the unit plan would. Checked:
//   * units_plan over random manifests: every usable item in exactly one unit, in
//     dispatch order (known lengths longest first, then by id), within the limits;
//   * a session driven by 1..6 simulated workers answering in random order, killed
//     (uncommitted batch lost) or stopped at random moments and resumed, ends with
//     exactly the rows and errors of an uninterrupted one-rank coord_run;
//   * coord_run (n_ranks = 1) stopped half-way by a signal, then run again, equals
//     an uninterrupted run; its outcomes and exit codes;
//   * long items ("L" in the id) come back as segments, one PARTIAL per segment with
//     its mark, through every kind of interruption: the resumed run continues from the
//     committed cut (CONTINUE), never recomputes a finished long file, and the dataset
//     equals the uninterrupted one; meta seg/<id> says "done" at the end;
//   * RESULT and CRASH messages naming a work id outside the plan, an id outside its
//     unit or an unknown id are ignored; malformed RESULT bytes are an error.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/exitcode.h"
#include "common/stop.h"
#include "coordinator/coord.h"
#include "coordinator/manifest.h"
#include "coordinator/session.h"
#include "coordinator/units.h"
#include "storage/quality.h"
#include "storage/row.h"
#include "storage/segkey.h"
#include "storage/store.h"
#include "tests/testutil.h"

// The wid field of a RESULT (its first u32, little-endian).
static void set_wid(proto_buf *b, uint32_t wid)
{
    for (int k = 0; k < 4; k++)
        b->p[k] = (unsigned char)(wid >> (8 * k));
}

static unsigned rng_next(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

// A tsv manifest of n items under root: random lengths, some unknown, some bad lines.
static void random_manifest(unsigned *seed, size_t n, const char *root, manifest *m)
{
    size_t cap = 64 + n * 48;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "%s\n", root);
    for (size_t i = 0; i < n; i++) {
        unsigned r = rng_next(seed);
        // ids: some errors ("e" in the id: the stub stores an error record)
        char id[32];
        snprintf(id, sizeof id, "%c%03u/%s%zu.wav", 'a' + (int)(r % 5), r % 97,
                 r % 11 == 0 ? "e" : r % 5 == 1 ? "L" : "u", i);
        if (r % 13 == 0)
            len += (size_t)snprintf(text + len, cap - len, "%s\tnot-a-count\n", id);
        else if (r % 7 == 0)
            len += (size_t)snprintf(text + len, cap - len, "%s\n", id);
        else
            len += (size_t)snprintf(text + len, cap - len, "%s\t%u\n", id,
                                    1600 + rng_next(seed) % (16000 * 90));
    }
    sl_err err;
    int rc = man_parse(text, len, "random.tsv", m, &err);
    CU_ASSERT_EQUAL_FATAL(rc, SL_OK);
    free(text);
}

static void test_units_property(void)
{
    unsigned seed = 7;
    const char *root = sl_test_tmpdir("units");
    for (int trial = 0; trial < 200; trial++) {
        manifest m;
        random_manifest(&seed, 1 + rng_next(&seed) % 120, root, &m);
        size_t max_items = 1 + rng_next(&seed) % 8;
        double max_s = trial % 4 == 0 ? 0 : 10.0 + (double)(rng_next(&seed) % 200);
        unit_plan p, q;
        sl_err err;
        CU_ASSERT_EQUAL_FATAL(units_plan(&m, max_items, max_s, &p, &err), SL_OK);
        CU_ASSERT_EQUAL_FATAL(units_plan(&m, max_items, max_s, &q, &err), SL_OK);
        size_t *seen = calloc(m.n, sizeof *seen), good = 0;
        for (size_t i = 0; i < m.n; i++)
            good += m.items[i].bad == NULL;
        CU_ASSERT_EQUAL(p.n_items, good);
        CU_ASSERT_EQUAL(p.start[0], 0);
        CU_ASSERT_EQUAL(p.start[p.n_units], p.n_items);
        for (size_t u = 0; u < p.n_units; u++) {
            size_t n = units_size(&p, u);
            CU_ASSERT(n >= 1 && n <= max_items);
            double secs = 0;
            for (size_t k = p.start[u]; k < p.start[u + 1]; k++) {
                const man_item *it = &m.items[p.items[k]];
                CU_ASSERT_PTR_NULL(it->bad);
                seen[p.items[k]]++;
                secs += it->n_samples >= 0 ? (double)it->n_samples / 16000.0 : 0;
            }
            CU_ASSERT(n == 1 || max_s <= 0 || secs <= max_s);
        }
        for (size_t k = 0; k + 1 < p.n_items; k++) { // dispatch order
            const man_item *a = &m.items[p.items[k]], *b = &m.items[p.items[k + 1]];
            int both = a->n_samples >= 0 && b->n_samples >= 0;
            CU_ASSERT(!both || a->n_samples > b->n_samples ||
                      (a->n_samples == b->n_samples && p.items[k] < p.items[k + 1]));
            CU_ASSERT(both || (b->n_samples < 0 && (a->n_samples >= 0 || p.items[k] < p.items[k + 1])));
        }
        for (size_t i = 0; i < m.n; i++)
            CU_ASSERT_EQUAL(seen[i], m.items[i].bad ? 0u : 1u);
        CU_ASSERT_EQUAL(p.n_units, q.n_units); // a function of the manifest and flags only
        CU_ASSERT(memcmp(p.items, q.items, p.n_items * sizeof(size_t)) == 0);
        CU_ASSERT(memcmp(p.start, q.start, (p.n_units + 1) * sizeof(size_t)) == 0);
        free(seen);
        units_free(&p);
        units_free(&q);
        man_free(&m);
    }
    sl_test_rmtree(root);
}

// --- the stub executor ---

typedef struct stub {
    int calls, stop_at; // stop_at > 0: request a stop on that call
    proto_partial_fn partial; // the one-rank run's sink (coord_params.exec_partial)
    void *sink;
    int64_t continued_at;     // the last CONTINUE start a long item was sent with
} stub;

static uint32_t fnv(const void *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 16777619u;
    return h;
}

static void stub_set_partial(void *ctx, proto_partial_fn fn, void *sink)
{
    stub *st = ctx;
    st->partial = fn;
    st->sink = sink;
}

#define STUB_SEG 480000 // a long item's segments: 30 s at 16 kHz each
#define STUB_MSGS 64

static int is_long(const proto_item *it) { return strchr(it->id, 'L') != NULL; }
static int stub_segments(const proto_item *it) { return 2 + (int)(fnv(it->id, it->id_len, 7) % 4); }

// A row of the stub: ids from (a, b, c), half of them passing the default quality filter.
static long stub_row(const char *id, size_t id_len, int32_t a, int32_t b, uint32_t c,
                     const rec_header *bounds, unsigned char *rec, size_t cap, sl_err *err)
{
    // Half the rows pass the default quality filter (20 text ids, -0.3), half do not
    // (2 text ids in 1.5 s is too slow, and -1.25 over 3 tokens scores too low).
    int good = (fnv(id, id_len, 0) & 1) != 0;
    int32_t sem[3] = {a, b, (int32_t)(c & 0x7fffffff)};
    int32_t txt[20] = {(int32_t)(c % 1000), 7};
    rec_header hd = {.n_semantic = 3, .n_text = good ? 20 : 2, .duration_s = 1.5f,
                     .score = good ? -0.3f : -1.25f};
    if (bounds) {
        hd.start = bounds->start;
        hd.end = bounds->end;
        hd.source = bounds->source;
        hd.source_len = bounds->source_len;
        hd.duration_s = (float)(bounds->end - bounds->start) / 16000.0f;
    }
    return rec_row_encode(&hd, sem, txt, rec, cap, err);
}

// The messages a worker sends for one WORK: for each long item one PARTIAL per segment
// (the segment's row, or an error for some, then the item's mark), from its CONTINUE
// cut on; then the RESULT with the other items' records, whose rows record the unit's
// composition (its size, the row's place, a hash of the ids): a row changes whenever
// the unit plan would. tags[k] = PROTO_PARTIAL or PROTO_RESULT (last).
static int stub_msgs(stub *st, const void *work, size_t work_len, proto_buf *msgs, int *tags,
                     int *n_msgs, sl_err *err)
{
    uint32_t wid, flags;
    size_t n;
    proto_item items[64];
    int rc = proto_work_parse(work, work_len, &wid, &flags, items, 64, &n, err);
    if (rc)
        return rc;
    uint32_t h = 2166136261u;
    size_t n_short = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_long(&items[i])) {
            h = fnv(items[i].id, items[i].id_len + 1, h);
            n_short++;
        }
    int m = 0;
    unsigned char rec[512];
    for (size_t i = 0; i < n; i++) {
        const proto_item *it = &items[i];
        if (!is_long(it))
            continue;
        int n_seg = stub_segments(it), j0 = 0;
        if (it->item_flags & PROTO_ITEM_CONTINUE) {
            j0 = (int)(it->start / STUB_SEG);
            if (st)
                st->continued_at = it->start;
            CU_ASSERT_EQUAL(it->start % STUB_SEG, 0); // resumed exactly at a cut
        }
        for (int j = j0; j < n_seg; j++) {
            CU_ASSERT_FATAL(m < STUB_MSGS - 1);
            char key[128];
            uint64_t a = (uint64_t)j * STUB_SEG, z = a + STUB_SEG;
            size_t kl = seg_key_format(it->id, it->id_len, a, z, key, sizeof key);
            CU_ASSERT_FATAL(kl > 0);
            long len;
            int kind = PROTO_REC_ROW;
            if ((fnv(it->id, it->id_len, 3) + (unsigned)j) % 7 == 0) {
                kind = PROTO_REC_ERROR;
                len = rec_error_encode(SL_STAGE_TEXT, SL_EFORMAT, 1, "stub: segment refused", rec,
                                       sizeof rec, err);
            } else {
                rec_header b = {.start = a, .end = z, .source = it->id,
                                .source_len = it->id_len};
                len = stub_row(key, kl, j, n_seg, fnv(it->id, it->id_len, 1), &b, rec, sizeof rec,
                               err);
            }
            if (len < 0)
                return (int)len;
            if ((rc = proto_result_begin(&msgs[m], wid, err)) ||
                (rc = proto_result_add(&msgs[m], kind, key, kl, rec, (size_t)len, err)) ||
                (rc = proto_result_add_mark(&msgs[m], it->id, it->id_len, (int64_t)z,
                                            j == n_seg - 1, err)))
                return rc;
            tags[m++] = PROTO_PARTIAL;
        }
    }
    proto_buf *result = &msgs[m];
    if ((rc = proto_result_begin(result, wid, err)))
        return rc;
    for (size_t i = 0, place = 0; i < n && rc == SL_OK; i++) {
        if (is_long(&items[i]))
            continue;
        long len;
        int kind = PROTO_REC_ROW;
        if (strchr(items[i].id, 'e')) {
            kind = PROTO_REC_ERROR;
            len = rec_error_encode(SL_STAGE_AUDIO, SL_EFORMAT, (flags & PROTO_WORK_ALONE) ? 2 : 1,
                                   "stub: refused", rec, sizeof rec, err);
        } else {
            len = stub_row(items[i].id, items[i].id_len, (int32_t)n_short, (int32_t)place, h, NULL,
                           rec, sizeof rec, err);
        }
        place++;
        if (len < 0)
            return (int)len;
        rc = proto_result_add(result, kind, items[i].id, items[i].id_len, rec, (size_t)len, err);
    }
    tags[m++] = PROTO_RESULT;
    *n_msgs = m;
    return rc;
}

static int stub_exec(void *ctx, const void *work, size_t work_len, proto_buf *result,
                     double *stats, sl_err *err)
{
    stub *st = ctx;
    if (++st->calls == st->stop_at)
        sl_stop_request(SIGUSR1);
    proto_buf msgs[STUB_MSGS] = {{0}};
    int tags[STUB_MSGS], n = 0;
    int rc = stub_msgs(st, work, work_len, msgs, tags, &n, err);
    for (int k = 0; rc == SL_OK && k < n - 1; k++)
        rc = st->partial(st->sink, msgs[k].p, msgs[k].len, err);
    if (rc == SL_OK) {
        result->len = 0;
        rc = proto_buf_reserve(result, msgs[n - 1].len, err);
        if (rc == SL_OK) {
            memcpy(result->p, msgs[n - 1].p, msgs[n - 1].len);
            result->len = msgs[n - 1].len;
        }
    }
    for (int k = 0; k < STUB_MSGS; k++)
        proto_buf_free(&msgs[k]);
    stats[PROTO_N_UTTS] += 1;
    return rc;
}

// Every rows and errors record of the dataset in dir, as one byte string.
static size_t dump_store(const char *dir, unsigned char **out)
{
    store *s;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &err), SL_OK);
    size_t len = 0, cap = 1 << 16;
    unsigned char *b = malloc(cap);
    for (int t = STORE_ROWS; t <= STORE_ERRORS; t++) {
        store_iter *it;
        CU_ASSERT_EQUAL_FATAL(store_iter_open(&it, s, (store_table)t, &err), SL_OK);
        const void *k, *v;
        size_t kn, vn;
        while (store_iter_next(it, &k, &kn, &v, &vn, &err) == 1) {
            while (len + kn + vn + 16 > cap)
                b = realloc(b, cap *= 2);
            b[len++] = (unsigned char)t;
            memcpy(b + len, &kn, sizeof kn);
            len += sizeof kn;
            memcpy(b + len, k, kn);
            len += kn;
            memcpy(b + len, v, vn);
            len += vn;
        }
        store_iter_close(it);
    }
    store_close(s);
    *out = b;
    return len;
}

// Distinct items the rows and errors of dir name (a segment key names its file).
static size_t items_named(const char *dir)
{
    store *s;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &err), SL_OK);
    size_t n = 0, cap = 256;
    char **names = malloc(cap * sizeof *names);
    for (int t = STORE_ROWS; t <= STORE_ERRORS; t++) {
        store_iter *it;
        CU_ASSERT_EQUAL_FATAL(store_iter_open(&it, s, (store_table)t, &err), SL_OK);
        const void *k, *v;
        size_t kn, vn, src;
        while (store_iter_next(it, &k, &kn, &v, &vn, &err) == 1) {
            if (seg_key_split(k, kn, &src))
                kn = src;
            int seen = 0;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strlen(names[i]) == kn && memcmp(names[i], k, kn) == 0;
            if (seen)
                continue;
            if (n == cap)
                names = realloc(names, (cap *= 2) * sizeof *names);
            names[n] = calloc(kn + 1, 1);
            memcpy(names[n++], k, kn);
        }
        store_iter_close(it);
    }
    store_close(s);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return n;
}

static coord_params params(const char *dir, const manifest *m, size_t unit, stub *st)
{
    coord_params p = coord_default_params();
    p.out = dir;
    p.m = m;
    p.unit_items = unit;
    p.unit_seconds = 60;
    p.exec = stub_exec;
    p.exec_ctx = st;
    p.exec_partial = stub_set_partial;
    p.progress_s = 1e6;
    return p;
}

// The reference: one uninterrupted one-rank run.
static size_t reference(const manifest *m, size_t unit, unsigned char **out)
{
    const char *dir = sl_test_tmpdir("ref");
    stub st = {0};
    coord_params p = params(dir, m, unit, &st);
    coord_outcome o;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(coord_run(&p, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_FINISHED);
    size_t n = dump_store(dir, out);
    sl_test_rmtree(dir);
    return n;
}

typedef struct sim_worker {
    proto_buf work[PROTO_PREFETCH];
    int n; // units held, oldest first
    proto_buf msgs[STUB_MSGS]; // the oldest unit's answer, sent one message at a time
    int tags[STUB_MSGS], n_msgs, next_msg;
} sim_worker;

static int drop_sink(void *sink, const void *msg, size_t n, sl_err *err)
{
    (void)sink, (void)msg, (void)n, (void)err;
    return SL_OK;
}

static int session_sink(void *sink, const void *msg, size_t n, sl_err *err)
{
    return coord_session_partial(sink, 1, msg, n, err);
}

// One run of a session with n_workers simulated workers taking and answering units
// in random order. kill_after / stop_after: after that many answers, drop the open
// batch and end (as kill -9 would), or request a stop. Returns 1 when finished.
static int simulate(const char *dir, const manifest *m, size_t unit, unsigned *seed,
                    int n_workers, int kill_after, int stop_after)
{
    coord_params p = params(dir, m, unit, NULL);
    p.n_ranks = n_workers + 1;
    p.commit_rows = 1 + rng_next(seed) % 6;
    p.commit_s = 1e6;
    coord_session *s;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    sim_worker *w = calloc((size_t)n_workers, sizeof *w);
    int answers = 0, rc = SL_OK;
    for (;;) {
        coord_session_check_stop(s);
        int k = (int)(rng_next(seed) % (unsigned)n_workers);
        uint32_t wid;
        if (w[k].n < PROTO_PREFETCH && rng_next(seed) % 2 && coord_session_next(s, &wid)) {
            CU_ASSERT_EQUAL_FATAL(coord_session_work(s, wid, &w[k].work[w[k].n], &err), SL_OK);
            w[k].n++;
            continue;
        }
        int busy = -1;
        for (int j = 0; j < n_workers; j++)
            if (w[(k + j) % n_workers].n) {
                busy = (k + j) % n_workers;
                break;
            }
        if (busy < 0) {
            if (coord_session_stopping(s) || coord_session_all_dispatched(s))
                break;
            continue;
        }
        sim_worker *x = &w[busy];
        if (x->n_msgs == 0) {
            CU_ASSERT_EQUAL_FATAL(stub_msgs(NULL, x->work[0].p, x->work[0].len, x->msgs, x->tags,
                                            &x->n_msgs, &err), SL_OK);
            x->next_msg = 0;
        }
        proto_buf *msg = &x->msgs[x->next_msg];
        int tag = x->tags[x->next_msg++];
        CU_ASSERT_EQUAL_FATAL(tag == PROTO_RESULT
                                  ? coord_session_result(s, busy + 1, msg->p, msg->len, &err)
                                  : coord_session_partial(s, busy + 1, msg->p, msg->len, &err),
                              SL_OK);
        if (tag == PROTO_RESULT) { // the unit is answered
            proto_buf t = x->work[0];
            x->work[0] = x->work[1];
            x->work[1] = t;
            x->n--;
            x->n_msgs = 0;
        }
        if (++answers == kill_after) {
            rc = SL_EIO; // close drops the open batch, as a killed rank 0 would lose it
            break;
        }
        if (answers == stop_after)
            sl_stop_request(SIGUSR1);
    }
    coord_outcome o;
    int crc = coord_session_close(s, rc, &o, &err);
    CU_ASSERT_EQUAL(crc, rc);
    sl_stop_reset();
    for (int j = 0; j < n_workers; j++) {
        for (int b = 0; b < PROTO_PREFETCH; b++)
            proto_buf_free(&w[j].work[b]);
        for (int b = 0; b < STUB_MSGS; b++)
            proto_buf_free(&w[j].msgs[b]);
    }
    free(w);
    return rc == SL_OK && o.status == COORD_FINISHED;
}

static void test_simulated_workers_resume_exactly(void)
{
    unsigned seed = 11;
    const char *root = sl_test_tmpdir("simroot");
    for (int trial = 0; trial < 24; trial++) {
        manifest m;
        random_manifest(&seed, 5 + rng_next(&seed) % 60, root, &m);
        size_t unit = 1 + rng_next(&seed) % 5;
        unsigned char *ref, *got;
        size_t n_ref = reference(&m, unit, &ref);
        const char *dir = sl_test_tmpdir("sim");
        int runs = 0, done = 0;
        while (!done && runs < 50) {
            int workers = 1 + (int)(rng_next(&seed) % 6);
            int cut = 1 + (int)(rng_next(&seed) % 8);
            int how = (int)(rng_next(&seed) % 3); // 0 kill, 1 stop, 2 run to the end
            done = simulate(dir, &m, unit, &seed, workers, how == 0 ? cut : -1,
                            how == 1 ? cut : -1);
            runs++;
        }
        CU_ASSERT(done);
        size_t n_got = dump_store(dir, &got);
        CU_ASSERT_EQUAL(n_got, n_ref);
        CU_ASSERT(n_got == n_ref && memcmp(got, ref, n_ref) == 0);
        free(ref);
        free(got);
        sl_test_rmtree(dir);
        man_free(&m);
    }
    sl_test_rmtree(root);
}

static void test_coord_run_stop_and_resume(void)
{
    unsigned seed = 5;
    const char *root = sl_test_tmpdir("runroot");
    manifest m;
    random_manifest(&seed, 40, root, &m);
    unsigned char *ref, *got;
    size_t n_ref = reference(&m, 3, &ref);
    const char *dir = sl_test_tmpdir("run");
    stub st = {.stop_at = 4};
    coord_params p = params(dir, &m, 3, &st);
    coord_outcome o;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(coord_run(&p, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_INTERRUPTED);
    CU_ASSERT_EQUAL(coord_exit_code(o.status), SL_EXIT_INTERRUPTED);
    CU_ASSERT_EQUAL(st.calls, 4); // the unit in hand finishes; nothing new starts
    CU_ASSERT(o.rows_added + o.errors_added > 0);
    size_t first = o.rows_added + o.errors_added, first_kept = o.rows_kept;
    sl_stop_reset();
    st.stop_at = 0;
    CU_ASSERT_EQUAL_FATAL(coord_run(&p, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_FINISHED);
    CU_ASSERT_EQUAL(coord_exit_code(o.status), SL_EXIT_OK);
    size_t n_got = dump_store(dir, &got);
    CU_ASSERT(n_got == n_ref && memcmp(got, ref, n_ref) == 0);
    store *s;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &err), SL_OK);
    size_t rows, errs;
    store_count(s, STORE_ROWS, &rows, &err);
    store_count(s, STORE_ERRORS, &errs, &err);
    store_close(s);
    // every id once: the items the records name (a segment names its file) are the manifest
    CU_ASSERT_EQUAL(items_named(dir), m.n);
    CU_ASSERT_EQUAL(first + o.rows_added + o.errors_added, rows + errs);
    // The run records: figures of each run; rows kept = the filter applied to what is stored.
    size_t kept = 0, rows_seen = 0;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &err), SL_OK);
    store_iter *it;
    CU_ASSERT_EQUAL_FATAL(store_iter_open(&it, s, STORE_ROWS, &err), SL_OK);
    const void *k, *v;
    size_t kn, vn;
    rec_filter f = rec_filter_default();
    while (store_iter_next(it, &k, &kn, &v, &vn, &err) == 1) {
        rec_header h;
        rec_quality q;
        CU_ASSERT_EQUAL_FATAL(rec_row_decode(v, vn, &h, &err), SL_OK);
        rec_quality_of(&h, f.q, &q);
        kept += rec_filter_check(&f, &q) == 0;
        rows_seen++;
    }
    store_iter_close(it);
    CU_ASSERT(kept > 0 && kept < rows_seen);
    size_t kept_runs = 0;
    for (int r = 1; r <= 2; r++) {
        char key[32], *rec = NULL;
        snprintf(key, sizeof key, "run/%06d", r);
        CU_ASSERT_EQUAL_FATAL(store_get_meta(s, key, &rec, &err), SL_OK);
        json_error_t je;
        json_t *j = json_loads(rec, 0, &je);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")),
                               r == 1 ? "interrupted" : "finished");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "cores")), 1);
        CU_ASSERT(json_real_value(json_object_get(j, "audio_seconds")) > 0);
        CU_ASSERT(json_real_value(json_object_get(j, "audio_hours_per_core_hour")) > 0);
        kept_runs += (size_t)json_integer_value(json_object_get(j, "rows_kept_default_filter"));
        json_decref(j);
        free(rec);
    }
    store_close(s);
    CU_ASSERT_EQUAL(kept_runs, kept);
    CU_ASSERT_EQUAL(o.rows_kept + first_kept, kept);
    // a third run has nothing to do
    CU_ASSERT_EQUAL_FATAL(coord_run(&p, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.rows_added + o.errors_added, 0);
    p.n_ranks = 0;
    CU_ASSERT_EQUAL(coord_run(&p, &o, &err), SL_EINVAL);
    free(ref);
    free(got);
    sl_test_rmtree(dir);
    man_free(&m);
    sl_test_rmtree(root);
}

static char *meta_of(const char *dir, const char *key)
{
    store *s;
    sl_err err;
    char *v = NULL;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &err), SL_OK);
    if (store_get_meta(s, key, &v, &err) != SL_OK)
        v = NULL;
    store_close(s);
    return v;
}

// The items of wid's WORK message; returns the count.
static size_t work_items(coord_session *s, uint32_t wid, proto_buf *b, proto_item *it, size_t cap)
{
    sl_err err;
    uint32_t w, flags;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(coord_session_work(s, wid, b, &err), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_parse(b->p, b->len, &w, &flags, it, cap, &n, &err), SL_OK);
    return n;
}

// A long item killed after two committed segments resumes at the second cut (CONTINUE);
// stopped after one more (its unit answered without the done mark: "interrupted"), at
// the third; it ends "done" with the uninterrupted run's rows and is never sent again:
// not when its unit is re-sent for an error retry of another item.
static void test_long_item_resumes_at_cut(void)
{
    const char *root = sl_test_tmpdir("longroot");
    char text[512], long_id[32] = "";
    for (int k = 0; k < 100 && !*long_id; k++) { // a long item of 5 segments
        char id[32];
        snprintf(id, sizeof id, "bookL%d.flac", k);
        proto_item it = {.id = id, .id_len = (uint32_t)strlen(id)};
        if (stub_segments(&it) == 5)
            snprintf(long_id, sizeof long_id, "%s", id);
    }
    CU_ASSERT_FATAL(*long_id);
    snprintf(text, sizeof text, "%s\n%s\t2400000\nxa1.wav\t16000\nxe2.wav\t16000\n", root,
             long_id);
    manifest m;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(man_parse(text, strlen(text), "long.tsv", &m, &err), SL_OK);
    unsigned char *ref, *got;
    size_t n_ref = reference(&m, 3, &ref);
    const char *dir = sl_test_tmpdir("long");
    coord_params p = params(dir, &m, 3, NULL);
    p.unit_seconds = 1e6; // one unit of all three (short rows do not depend on the long one)
    p.n_ranks = 2;
    p.commit_rows = 1000000;
    p.commit_s = 1e6;
    coord_session *s;
    proto_buf work = {0}, msgs[STUB_MSGS] = {{0}};
    int tags[STUB_MSGS], n_msgs;
    proto_item it[8];
    uint32_t wid;
    coord_outcome o;
    // Run 1: two segments committed, the third lost with the open batch.
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FATAL(coord_session_next(s, &wid));
    CU_ASSERT_EQUAL_FATAL(work_items(s, wid, &work, it, 8), 3);
    CU_ASSERT_EQUAL_FATAL(stub_msgs(NULL, work.p, work.len, msgs, tags, &n_msgs, &err), SL_OK);
    CU_ASSERT_EQUAL_FATAL(n_msgs, 6); // 5 PARTIALs, then the RESULT
    for (int k = 0; k < 2; k++)
        CU_ASSERT_EQUAL_FATAL(coord_session_partial(s, 1, msgs[k].p, msgs[k].len, &err), SL_OK);
    CU_ASSERT_EQUAL_FATAL(coord_session_commit(s, &err), SL_OK);
    CU_ASSERT_EQUAL_FATAL(coord_session_partial(s, 1, msgs[2].p, msgs[2].len, &err), SL_OK);
    CU_ASSERT_EQUAL(coord_session_close(s, SL_EIO, &o, &err), SL_EIO);
    char key[64], *v;
    snprintf(key, sizeof key, "seg/%s", long_id);
    v = meta_of(dir, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "960000"); // the end of the second segment
    free(v);
    // Run 2: the long item continues at 960000; the short ones are sent whole. Its worker
    // is stopped after one more segment: the unit's RESULT comes without the done mark.
    stub st = {0};
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FATAL(coord_session_next(s, &wid));
    CU_ASSERT_EQUAL_FATAL(work_items(s, wid, &work, it, 8), 3);
    for (int k = 0; k < 3; k++) {
        if (strcmp(it[k].id, long_id) == 0) {
            CU_ASSERT(it[k].item_flags == PROTO_ITEM_CONTINUE && it[k].start == 960000 &&
                      it[k].end == 0);
        } else {
            CU_ASSERT(it[k].item_flags == 0 && it[k].start == 0);
        }
    }
    CU_ASSERT_EQUAL_FATAL(stub_msgs(&st, work.p, work.len, msgs, tags, &n_msgs, &err), SL_OK);
    CU_ASSERT_EQUAL(st.continued_at, 960000);
    CU_ASSERT_EQUAL_FATAL(n_msgs, 4); // segments 3..5, then the RESULT
    CU_ASSERT_EQUAL_FATAL(coord_session_partial(s, 1, msgs[0].p, msgs[0].len, &err), SL_OK);
    CU_ASSERT_EQUAL_FATAL(coord_session_result(s, 1, msgs[3].p, msgs[3].len, &err), SL_OK);
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_INTERRUPTED); // every unit answered, one file unfinished
    CU_ASSERT_EQUAL(o.segmented_files, 0);
    v = meta_of(dir, key);
    CU_ASSERT(v && strcmp(v, "1440000") == 0);
    free(v);
    // Run 3: on from 1440000, the short items stored already.
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FATAL(coord_session_next(s, &wid));
    CU_ASSERT_EQUAL_FATAL(work_items(s, wid, &work, it, 8), 3);
    CU_ASSERT_EQUAL_FATAL(stub_msgs(&st, work.p, work.len, msgs, tags, &n_msgs, &err), SL_OK);
    CU_ASSERT_EQUAL(st.continued_at, 1440000);
    CU_ASSERT_EQUAL_FATAL(n_msgs, 3);
    for (int k = 0; k < n_msgs; k++)
        CU_ASSERT_EQUAL_FATAL(k < n_msgs - 1
                                  ? coord_session_partial(s, 1, msgs[k].p, msgs[k].len, &err)
                                  : coord_session_result(s, 1, msgs[k].p, msgs[k].len, &err),
                              SL_OK);
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_FINISHED);
    CU_ASSERT_EQUAL(o.segmented_files, 1);
    CU_ASSERT(o.segment_rows >= 1 && o.segment_rows <= 2); // segment errors are not rows
    v = meta_of(dir, key);
    CU_ASSERT(v && strcmp(v, "done") == 0);
    free(v);
    size_t n_got = dump_store(dir, &got);
    CU_ASSERT(n_got == n_ref && memcmp(got, ref, n_ref) == 0);
    free(got);
    // Run 4 (errors retried): the unit goes again for xe2.wav, without the long file.
    p.retry_errors = 1;
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FATAL(coord_session_next(s, &wid));
    size_t n = work_items(s, wid, &work, it, 8);
    CU_ASSERT_EQUAL(n, 2);
    for (size_t k = 0; k < n; k++)
        CU_ASSERT(strcmp(it[k].id, long_id) != 0);
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    // Run 5: nothing to do.
    p.retry_errors = 0;
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FALSE(coord_session_next(s, &wid));
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    for (int k = 0; k < STUB_MSGS; k++)
        proto_buf_free(&msgs[k]);
    proto_buf_free(&work);
    free(ref);
    sl_test_rmtree(dir);
    man_free(&m);
    sl_test_rmtree(root);
}

// A unit answered without one of its items (no row, no error, no mark): the run is
// interrupted, not finished, and the next run does that item.
static void test_missing_item_interrupts(void)
{
    const char *root = sl_test_tmpdir("missroot");
    char text[256];
    snprintf(text, sizeof text, "%s\nxa1.wav\t16000\nxb2.wav\t16000\n", root);
    manifest m;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(man_parse(text, strlen(text), "miss.tsv", &m, &err), SL_OK);
    const char *dir = sl_test_tmpdir("miss");
    coord_params p = params(dir, &m, 2, NULL);
    p.n_ranks = 2;
    coord_session *s;
    proto_buf work = {0}, result = {0};
    uint32_t wid;
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FATAL(coord_session_next(s, &wid));
    CU_ASSERT_EQUAL_FATAL(coord_session_work(s, wid, &work, &err), SL_OK);
    unsigned char rec[256];
    rec_header hd = {.n_semantic = 1, .n_text = 1, .duration_s = 1.0f};
    int32_t one = 1;
    long len = rec_row_encode(&hd, &one, &one, rec, sizeof rec, &err);
    CU_ASSERT_FATAL(len > 0);
    proto_result_begin(&result, wid, &err);
    proto_result_add(&result, PROTO_REC_ROW, "xa1.wav", 7, rec, (size_t)len, &err);
    CU_ASSERT_EQUAL(coord_session_result(s, 1, result.p, result.len, &err), SL_OK);
    coord_outcome o;
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_INTERRUPTED);
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT(coord_session_next(s, &wid)); // the unit goes again for xb2.wav
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    proto_buf_free(&work);
    proto_buf_free(&result);
    sl_test_rmtree(dir);
    man_free(&m);
    sl_test_rmtree(root);
}

static int has_meta_prefix(const char *dir, const char *prefix)
{
    store *s;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(store_open(&s, dir, STORE_READ, store_default_params(), &err), SL_OK);
    store_iter *it;
    store_iter_open(&it, s, STORE_META, &err);
    const void *k, *v;
    size_t kn, vn, pl = strlen(prefix);
    int found = 0;
    while (store_iter_next(it, &k, &kn, &v, &vn, &err) == 1)
        found |= kn >= pl && memcmp(k, prefix, pl) == 0;
    store_iter_close(it);
    store_close(s);
    return found;
}

static void test_out_of_range_messages_ignored(void)
{
    unsigned seed = 3;
    const char *root = sl_test_tmpdir("oorroot");
    manifest m;
    random_manifest(&seed, 12, root, &m);
    const char *dir = sl_test_tmpdir("oor");
    stub st = {.partial = drop_sink};
    coord_params p = params(dir, &m, 2, &st);
    p.n_ranks = 2;
    coord_session *s;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    uint32_t n_wids = (uint32_t)(coord_session_n_units(s) + m.n);
    proto_buf work = {0}, result = {0};
    double stats[PROTO_N_STATS] = {0};
    uint32_t w0, w1;
    CU_ASSERT_FATAL(coord_session_next(s, &w0) && coord_session_next(s, &w1));
    // A RESULT for unit w0 whose records belong to unit w1: ignored record by record.
    CU_ASSERT_EQUAL_FATAL(coord_session_work(s, w1, &work, &err), SL_OK);
    CU_ASSERT_EQUAL_FATAL(stub_exec(&st, work.p, work.len, &result, stats, &err), SL_OK);
    set_wid(&result, w0);
    CU_ASSERT_EQUAL(coord_session_result(s, 1, result.p, result.len, &err), SL_OK);
    // The same records under a wid outside the plan: the whole message is ignored.
    uint32_t bogus = n_wids + 5;
    set_wid(&result, bogus);
    CU_ASSERT_EQUAL(coord_session_result(s, 1, result.p, result.len, &err), SL_OK);
    bogus = 0xffffffffu;
    set_wid(&result, bogus);
    CU_ASSERT_EQUAL(coord_session_result(s, 1, result.p, result.len, &err), SL_OK);
    // An id that is not in the manifest at all.
    proto_result_begin(&result, w0, &err);
    proto_result_add(&result, PROTO_REC_ERROR, "no/such.wav", 11, "x", 1, &err);
    CU_ASSERT_EQUAL(coord_session_result(s, 1, result.p, result.len, &err), SL_OK);
    // Malformed bytes: an error naming the rank.
    CU_ASSERT_EQUAL(coord_session_result(s, 1, result.p, 5, &err), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "rank 1"));
    // CRASH of the wrong length, and naming a wid outside the plan: no marks recorded.
    unsigned char crash[PROTO_CRASH_BYTES];
    proto_crash_encode(crash, n_wids);
    CU_ASSERT_EQUAL(coord_session_crash(s, 1, crash, 3, &err), SL_OK);
    CU_ASSERT_EQUAL(coord_session_crash(s, 1, crash, sizeof crash, &err), SL_OK);
    CU_ASSERT_EQUAL(coord_session_abort(s), COORD_CRASHED); // the sender is dying all the same
    coord_outcome o;
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    CU_ASSERT_EQUAL(o.status, COORD_CRASHED);
    CU_ASSERT_EQUAL(o.rows_added + o.errors_added, (size_t)m.n_bad_lines); // only the bad lines
    CU_ASSERT_FALSE(has_meta_prefix(dir, "crash/"));
    // A CRASH naming a real unit marks its ids for an alone retry.
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    CU_ASSERT_FATAL(coord_session_next(s, &w0));
    proto_crash_encode(crash, w0);
    CU_ASSERT_EQUAL(coord_session_crash(s, 1, crash, sizeof crash, &err), SL_OK);
    CU_ASSERT_EQUAL(coord_session_close(s, SL_OK, &o, &err), SL_OK);
    CU_ASSERT_TRUE(has_meta_prefix(dir, "crash/"));
    proto_buf_free(&work);
    proto_buf_free(&result);
    sl_test_rmtree(dir);
    man_free(&m);
    sl_test_rmtree(root);
}

// A failed run (here: closed with an error, as when a commit fails) drops its open batch;
// its run record reports what was committed, not what was dropped.
static void test_failed_run_reports_committed(void)
{
    unsigned seed = 9;
    const char *root = sl_test_tmpdir("failroot");
    manifest m;
    random_manifest(&seed, 20, root, &m);
    const char *dir = sl_test_tmpdir("fail");
    stub sb = {.partial = session_sink};
    coord_params p = params(dir, &m, 2, &sb);
    p.commit_rows = 1000000; // nothing commits before the end
    p.commit_s = 1e6;
    coord_session *s;
    sl_err err;
    CU_ASSERT_EQUAL_FATAL(coord_session_open(&s, &p, &err), SL_OK);
    sb.sink = s;
    proto_buf work = {0}, result = {0};
    double stats[PROTO_N_STATS] = {0};
    uint32_t wid;
    for (int k = 0; k < 3 && coord_session_next(s, &wid); k++) {
        CU_ASSERT_EQUAL_FATAL(coord_session_work(s, wid, &work, &err), SL_OK);
        CU_ASSERT_EQUAL_FATAL(stub_exec(&sb, work.p, work.len, &result, stats, &err), SL_OK);
        CU_ASSERT_EQUAL_FATAL(coord_session_result(s, 1, result.p, result.len, &err), SL_OK);
    }
    coord_outcome o;
    CU_ASSERT_EQUAL(coord_session_close(s, SL_EIO, &o, &err), SL_EIO);
    CU_ASSERT(o.rows_added + o.errors_added > m.n_bad_lines); // added, then dropped
    store *st;
    CU_ASSERT_EQUAL_FATAL(store_open(&st, dir, STORE_READ, store_default_params(), &err), SL_OK);
    size_t rows, errs;
    store_count(st, STORE_ROWS, &rows, &err);
    store_count(st, STORE_ERRORS, &errs, &err);
    CU_ASSERT_EQUAL(rows, 0);
    CU_ASSERT_EQUAL(errs, m.n_bad_lines); // the bad lines were committed at the start
    char *rec = NULL;
    CU_ASSERT_EQUAL_FATAL(store_get_meta(st, "run/000001", &rec, &err), SL_OK);
    json_error_t je;
    json_t *j = json_loads(rec, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "failed");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "rows_added")), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "errors_added")), (json_int_t)errs);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "rows_kept_default_filter")), 0);
    CU_ASSERT_EQUAL(json_real_value(json_object_get(j, "audio_seconds")), 0.0);
    json_decref(j);
    free(rec);
    store_close(st);
    proto_buf_free(&work);
    proto_buf_free(&result);
    sl_test_rmtree(dir);
    man_free(&m);
    sl_test_rmtree(root);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"session: a long item resumes at its committed cut", test_long_item_resumes_at_cut},
        {"session: a unit answered without an item interrupts the run", test_missing_item_interrupts},
        {"units: random manifests", test_units_property},
        {"session: simulated workers, kills and stops resume exactly", test_simulated_workers_resume_exactly},
        {"coord_run: one rank, stop half-way, resume", test_coord_run_stop_and_resume},
        {"session: out-of-range RESULT and CRASH ignored", test_out_of_range_messages_ignored},
        {"session: a failed run's record reports what was committed", test_failed_run_reports_committed},
        {NULL, NULL}};
    return sl_test_main("coord", cases);
}
