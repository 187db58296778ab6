// coordinator/session.c — see session.h.
#include "coordinator/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crash.h"
#include "common/log.h"
#include "common/stop.h"
#include "coordinator/progress.h"
#include "coordinator/units.h"
#include "storage/quality.h"
#include "storage/row.h"
#include "storage/segkey.h"
#include "storage/store.h"

// ST_SEGS: a segmented item whose every segment is stored (its done mark): the only
// stored item left out of a re-sent unit's WORK (recomputing a long file is costly; the
// other stored items keep the unit whole, so a unit always computes what it computed).
enum { ST_TODO = 0, ST_ROW = 1, ST_ERR = 2, ST_SEGS = 3 };

struct coord_session {
    const coord_params *p;
    const manifest *m;
    store *s;
    jm_run run;
    int run_started;        // the run record exists and is not ended yet
    unit_plan plan;
    unsigned char *state;   // per manifest item: ST_*
    unsigned char *crash;   // per manifest item: crashes recorded so far
    int64_t *resume;        // per manifest item: the committed cut a segmented item resumes
                            //   at (meta seg/<id>), 0 = from its start
    size_t segmented_files; // items of this run finished as segments (a done mark)
    size_t segment_rows;    // rows of this run keyed by a segment
    size_t incomplete;      // long files whose unit was answered before their done mark
                            //   (a worker stopped cutting on a stop signal): the run is
                            //   interrupted and they resume at their mark
    uint32_t *queue;        // wids in dispatch order
    size_t q_len, q_head;
    size_t pending;         // records since the last commit
    double last_commit;
    size_t rows_added, errors_added;
    size_t rows_kept;       // of rows_added, kept by the default quality filter
    size_t done_rows, done_errors, done_kept; // the same as of the last successful commit
    double done_audio;      //   (what a "failed" run record reports: the rest was dropped)
    rec_filter quality;     // that filter
    double stats[PROTO_N_STATS];
    progress prog;
    int stopping;           // a stop signal was seen
    double deadline;
    coord_status abort;     // COORD_FINISHED, or why the job must end with work in flight
    double cpu0;            // rank 0's CPU seconds when dispatch started
    char crash_path[4200];
};

static int find_item(const manifest *m, const void *key, size_t key_len)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *id = m->items[mid].id;
        size_t il = strlen(id);
        int c = memcmp(key, id, key_len < il ? key_len : il);
        if (c == 0)
            c = key_len < il ? -1 : key_len > il;
        if (c == 0)
            return (int)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static int wid_valid(const coord_session *c, uint32_t wid)
{
    return (size_t)wid < c->plan.n_units + c->m->n;
}

// The manifest items of a valid work id; *one is the storage for an alone retry.
static size_t wid_items(const coord_session *c, uint32_t wid, size_t *one, const size_t **items)
{
    if (wid < c->plan.n_units) {
        *items = c->plan.items + c->plan.start[wid];
        return units_size(&c->plan, wid);
    }
    *one = wid - c->plan.n_units;
    *items = one;
    return 1;
}

static int in_wid(const coord_session *c, uint32_t wid, size_t i)
{
    const size_t *items;
    size_t one, n = wid_items(c, wid, &one, &items);
    for (size_t k = 0; k < n; k++)
        if (items[k] == i)
            return 1;
    return 0;
}

static int needed(const coord_session *c, size_t i)
{
    return c->state[i] == ST_TODO || (c->state[i] == ST_ERR && c->p->retry_errors);
}

int coord_session_commit(coord_session *c, sl_err *err)
{
    int rc = store_commit(c->s, err);
    if (rc == SL_OK) {
        c->pending = 0;
        c->last_commit = sl_now();
        c->done_rows = c->rows_added;
        c->done_errors = c->errors_added;
        c->done_kept = c->rows_kept;
        c->done_audio = c->prog.audio_s;
    }
    return rc;
}

int coord_session_commit_due(coord_session *c, sl_err *err)
{
    if (c->pending && (c->pending >= c->p->commit_rows ||
                       sl_now() - c->last_commit >= c->p->commit_s))
        return coord_session_commit(c, err);
    return SL_OK;
}

// Marks which manifest ids the dataset already holds.
static int scan_done(coord_session *c, store_table t, unsigned char mark, sl_err *err)
{
    store_iter *it;
    int rc = store_iter_open(&it, c->s, t, err);
    if (rc)
        return rc;
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        int i = find_item(c->m, k, kn);
        if (i >= 0)
            c->state[i] = mark;
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

static int put_error(coord_session *c, size_t i, sl_stage stage, int code, unsigned attempts,
                     const char *msg, sl_err *err)
{
    unsigned char buf[REC_ERR_HEADER_BYTES + 1024];
    char m2[1024];
    snprintf(m2, sizeof m2, "%s", msg);
    long n = rec_error_encode(stage, code, attempts, m2, buf, sizeof buf, err);
    if (n < 0)
        return (int)n;
    const char *id = c->m->items[i].id;
    int rc;
    if (c->state[i] == ST_ERR && (rc = store_del_error(c->s, id, strlen(id), err)))
        return rc;
    if ((rc = store_put_error(c->s, id, strlen(id), buf, (size_t)n, err)))
        return rc;
    c->state[i] = ST_ERR;
    c->errors_added++;
    c->pending++;
    return SL_OK;
}

static void crash_key(const char *id, char *key, size_t cap) { snprintf(key, cap, "crash/%s", id); }

// Records that the items crashed their process once more.
static int record_crash(coord_session *c, const size_t *items, size_t n, int alone, sl_err *err)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = items[k];
        if (!needed(c, i))
            continue;
        char key[4200], val[16];
        crash_key(c->m->items[i].id, key, sizeof key);
        if (c->crash[i] < 255)
            c->crash[i]++;
        if (alone && c->crash[i] >= 2) {
            SL_LOG(ERROR, "run", "%s crashed the worker twice: stored as an error",
                   c->m->items[i].id);
            int rc = put_error(c, i, SL_STAGE_CRASH, SL_EFORMAT, c->crash[i],
                               "crashed the worker (twice: once in its unit, once alone)", err);
            if (rc || (rc = store_del_meta(c->s, key, err)))
                return rc;
            c->crash[i] = 0;
            continue;
        }
        snprintf(val, sizeof val, "%u", c->crash[i]);
        int rc = store_put_meta(c->s, key, val, err);
        if (rc)
            return rc;
    }
    return coord_session_commit(c, err);
}

// A one-rank run leaves its crash note in DIR/crash.note: fold it into meta.
static int consume_crash_note(coord_session *c, sl_err *err)
{
    FILE *f = fopen(c->crash_path, "rb");
    if (!f)
        return SL_OK;
    char *buf = malloc(SL_CRASH_NOTE_CAP + 1);
    if (!buf) {
        fclose(f);
        return sl_fail(err, SL_ENOMEM, "run: out of memory");
    }
    size_t n = fread(buf, 1, SL_CRASH_NOTE_CAP, f);
    fclose(f);
    buf[n] = '\0';
    int rc = SL_OK;
    if (n > 1) {
        int alone = buf[0] == 'A';
        size_t *items = malloc(n * sizeof(size_t));
        size_t k = 0;
        for (size_t off = 1; items && off < n;) {
            size_t len = strnlen(buf + off, n - off);
            int i = find_item(c->m, buf + off, len);
            if (i >= 0)
                items[k++] = (size_t)i;
            off += len + 1;
        }
        SL_LOG(WARN, "run", "the previous run crashed while processing %zu utterance(s): each "
               "is retried alone", k);
        rc = items ? record_crash(c, items, k, alone, err)
                   : sl_fail(err, SL_ENOMEM, "run: out of memory");
        free(items);
    }
    free(buf);
    if (rc)
        return rc;
    return unlink(c->crash_path) == 0 || errno == ENOENT
               ? SL_OK
               : sl_fail(err, SL_EIO, "run: cannot remove %s: %s", c->crash_path, strerror(errno));
}

static int load_crash_marks(coord_session *c, sl_err *err)
{
    store_iter *it;
    int rc = store_iter_open(&it, c->s, STORE_META, err);
    if (rc)
        return rc;
    store_iter_seek(it, "crash/", 6, err);
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        if (kn < 6 || memcmp(k, "crash/", 6) != 0)
            break;
        int i = find_item(c->m, (const char *)k + 6, kn - 6);
        char num[8] = {0};
        memcpy(num, v, vn < 7 ? vn : 7);
        if (i >= 0)
            c->crash[i] = (unsigned char)atoi(num);
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

// Segmented items: meta seg/<id> = "done" (every segment stored) or the decimal cut the
// item resumes at.
static int load_seg_marks(coord_session *c, sl_err *err)
{
    store_iter *it;
    int rc = store_iter_open(&it, c->s, STORE_META, err);
    if (rc)
        return rc;
    store_iter_seek(it, "seg/", 4, err);
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        if (kn < 4 || memcmp(k, "seg/", 4) != 0)
            break;
        int i = find_item(c->m, (const char *)k + 4, kn - 4);
        char val[32] = {0};
        memcpy(val, v, vn < sizeof val - 1 ? vn : sizeof val - 1);
        if (i < 0)
            continue;
        if (strcmp(val, "done") == 0) {
            if (c->state[i] == ST_TODO)
                c->state[i] = ST_SEGS;
            continue;
        }
        char *end;
        long long next = strtoll(val, &end, 10);
        if (end == val || *end || next <= 0) {
            store_iter_close(it);
            return sl_fail(err, SL_EFORMAT, "run: %s: meta seg/%s is \"%s\" (want a sample "
                           "offset or \"done\")", c->p->out, c->m->items[i].id, val);
        }
        c->resume[i] = next;
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

static int build_queue(coord_session *c, sl_err *err)
{
    c->queue = malloc((c->plan.n_units + c->m->n + 1) * sizeof(uint32_t));
    if (!c->queue)
        return sl_fail(err, SL_ENOMEM, "run: out of memory");
    for (size_t i = 0; i < c->m->n; i++) // crash retries first, one utterance each
        if (c->crash[i] && needed(c, i) && !c->m->items[i].bad)
            c->queue[c->q_len++] = (uint32_t)(c->plan.n_units + i);
    for (size_t u = 0; u < c->plan.n_units; u++) {
        const size_t *items;
        size_t one, n = wid_items(c, (uint32_t)u, &one, &items);
        for (size_t k = 0; k < n; k++)
            if (needed(c, items[k]) && !c->crash[items[k]]) {
                c->queue[c->q_len++] = (uint32_t)u;
                break;
            }
    }
    return SL_OK;
}

// Audio seconds the queued work covers (the rest of a resumed item), or 0 when some
// item's length is unknown: the progress line's ETA then counts items.
static double audio_to_do(const coord_session *c)
{
    double total = 0;
    for (size_t i = 0; i < c->m->n; i++) {
        const man_item *it = &c->m->items[i];
        if (!needed(c, i) || it->bad)
            continue;
        if (it->n_samples < 0)
            return 0;
        int64_t from = c->resume[i] > it->start ? c->resume[i] - it->start : 0;
        total += (double)(it->n_samples > from ? it->n_samples - from : 0) / MAN_PIECE_HZ;
    }
    return total;
}

// CPU seconds of this process (all its threads, Open MPI's included).
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

// Everything of open after the store: on failure the caller closes the session.
static int session_start(coord_session *c, sl_err *err)
{
    const coord_params *p = c->p;
    int rc, was_new;
    if ((rc = jm_check_and_record(c->s, p->fps, p->n_fps, &was_new, err)))
        return rc;
    for (size_t k = 0; k < p->n_meta; k++)
        if ((rc = store_put_meta(c->s, p->meta[2 * k], p->meta[2 * k + 1], err)))
            return rc;
    if ((rc = units_plan(c->m, p->unit_items, p->unit_seconds, &c->plan, err)))
        return rc;
    c->state = calloc(c->m->n + 1, 1);
    c->crash = calloc(c->m->n + 1, 1);
    c->resume = calloc(c->m->n + 1, sizeof *c->resume);
    if (!c->state || !c->crash || !c->resume)
        return sl_fail(err, SL_ENOMEM, "run: out of memory");
    if ((rc = scan_done(c, STORE_ROWS, ST_ROW, err)) ||
        (rc = scan_done(c, STORE_ERRORS, ST_ERR, err)) || (rc = load_crash_marks(c, err)) ||
        (rc = load_seg_marks(c, err)) || (rc = consume_crash_note(c, err)))
        return rc;
    size_t already = 0;
    for (size_t i = 0; i < c->m->n; i++)
        already += c->state[i] != ST_TODO;
    if (!was_new)
        SL_LOG(INFO, "run", "resuming %s: %zu of %zu utterances already stored", p->out, already,
               c->m->n);
    if ((rc = jm_run_begin(c->s, p->n_ranks, p->argc, p->argv, &c->run, err)))
        return rc;
    c->run_started = 1;
    c->last_commit = sl_now();
    progress_init(&c->prog, c->m->n, 0, p->progress_s);
    for (size_t i = 0; i < c->m->n; i++) { // manifest lines we cannot use become error records
        const man_item *it = &c->m->items[i];
        if (it->bad && needed(c, i) &&
            (rc = put_error(c, i, it->bad_stage, SL_EFORMAT, 0, it->bad, err)))
            return rc;
    }
    if ((rc = coord_session_commit(c, err)) || (rc = build_queue(c, err)))
        return rc;
    progress_init(&c->prog, c->m->n, already, p->progress_s);
    progress_set_audio(&c->prog, audio_to_do(c));
    c->cpu0 = cpu_seconds(); // rank 0's own cost of the run, start-up excluded
    SL_LOG(INFO, "run", "%zu utterances in %zu units; %zu units to do on %d rank(s)", c->m->n,
           c->plan.n_units, c->q_len, p->n_ranks);
    return SL_OK;
}

static void session_free(coord_session *c)
{
    store_close(c->s);
    units_free(&c->plan);
    free(c->state);
    free(c->crash);
    free(c->resume);
    free(c->queue);
    free(c);
}

int coord_session_open(coord_session **out, const coord_params *p, sl_err *err)
{
    *out = NULL;
    coord_session *c = calloc(1, sizeof *c);
    if (!c)
        return sl_fail(err, SL_ENOMEM, "run: out of memory");
    c->p = p;
    c->m = p->m;
    c->quality = rec_filter_default();
    snprintf(c->crash_path, sizeof c->crash_path, "%s/crash.note", p->out);
    store_params sp = store_default_params();
    sp.batch_rows = 0; // commits are ours: a unit's rows always share one transaction
    if (p->initial_map_bytes)
        sp.initial_map_bytes = p->initial_map_bytes;
    int rc = store_open(&c->s, p->out, STORE_WRITE, sp, err);
    if (rc == SL_OK)
        rc = session_start(c, err);
    if (rc) {
        coord_outcome o;
        sl_err e2;
        coord_session_close(c, rc, &o, &e2); // records "failed" once the run record exists
        return rc;
    }
    *out = c;
    return SL_OK;
}

static void figures(const coord_session *c, jm_run_figures *f)
{
    memset(f, 0, sizeof *f);
    f->audio_s = c->prog.audio_s;
    f->wall_s = sl_now() - c->prog.t_start;
    f->cores = c->p->alloc_cores > 0 ? c->p->alloc_cores
                                     : c->p->n_ranks * (c->p->threads > 0 ? c->p->threads : 1);
    const proto_stat k[4] = {PROTO_T_AUDIO, PROTO_T_FEATURES, PROTO_T_TOKENS, PROTO_T_TEXT};
    for (int j = 0; j < 4; j++)
        f->stage_s[j] = c->stats[k[j]];
    f->rows_kept = c->rows_kept;
    if (c->stats[PROTO_N_DEC_STEPS] > 0)
        f->batch_height = c->stats[PROTO_N_DEC_ROWS] / c->stats[PROTO_N_DEC_STEPS];
}

// The last lines of a run: throughput per core-hour, where the workers' time went,
// what the default quality filter keeps, rank 0's own cost, and where to look next.
static void print_summary(const coord_session *c, const jm_run_figures *f)
{
    const double *s = c->stats;
    double core_h = f->wall_s * f->cores / 3600.0;
    int threads = c->p->threads > 0 ? c->p->threads : 1;
    SL_LOG(INFO, "run", "%.4f audio h stored in %.2f s on %d core(s) (%s%d rank(s) x %d thread(s)): "
           "%.1f audio hours per core-hour", f->audio_s / 3600.0, f->wall_s, f->cores,
           c->p->alloc_cores > 0 ? "the allocation's; " : "", c->p->n_ranks, threads,
           core_h > 0 ? f->audio_s / 3600.0 / core_h : 0);
    double busy = f->stage_s[0] + f->stage_s[1] + f->stage_s[2] + f->stage_s[3];
    if (s[PROTO_N_UTTS] > 0 && busy > 0)
        SL_LOG(INFO, "run", "worker time: audio %.2f s (%.0f %%), features %.2f s (%.0f %%), "
               "tokens %.2f s (%.0f %%), text %.2f s (%.0f %%) over %.0f utterances, %.1f audio s",
               f->stage_s[0], 100 * f->stage_s[0] / busy, f->stage_s[1], 100 * f->stage_s[1] / busy,
               f->stage_s[2], 100 * f->stage_s[2] / busy, f->stage_s[3], 100 * f->stage_s[3] / busy,
               s[PROTO_N_UTTS], s[PROTO_AUDIO_SECONDS]);
    if (c->segmented_files || c->segment_rows)
        SL_LOG(INFO, "run", "long files: %zu finished as segments this run; %zu segment row(s) "
               "stored", c->segmented_files, c->segment_rows);
    if (f->batch_height > 0)
        SL_LOG(INFO, "run", "decoding batch: %.2f rows per decoder step on average (%.0f steps, "
               "%.0f rows)", f->batch_height, s[PROTO_N_DEC_STEPS], s[PROTO_N_DEC_ROWS]);
    if (c->rows_added)
        SL_LOG(INFO, "run", "rows kept by the default quality filter (docs/QUALITY.md): %zu of %zu "
               "(%.1f %%)", c->rows_kept, c->rows_added,
               100.0 * (double)c->rows_kept / (double)c->rows_added);
    double cpu = cpu_seconds() - c->cpu0;
    size_t recs = c->rows_added + c->errors_added;
    SL_LOG(INFO, "run", "rank 0: %zu records in %.2f s wall (%.0f/s), %.2f s CPU (%.0f%% of a core)",
           recs, f->wall_s, (double)recs / f->wall_s, cpu, 100.0 * cpu / f->wall_s);
    char hint[4400];
    snprintf(hint, sizeof hint, COORD_REPORT_HINT, c->p->out);
    SL_LOG(INFO, "run", "look at the dataset: spearlabel stat %s; %s", c->p->out, hint);
}

static coord_status final_status(const coord_session *c)
{
    if (c->abort != COORD_FINISHED)
        return c->abort;
    return c->q_head < c->q_len || c->incomplete ? COORD_INTERRUPTED : COORD_FINISHED;
}

int coord_session_close(coord_session *c, int rc, coord_outcome *out, sl_err *err)
{
    static const char *const names[] = {"finished", "interrupted", "interrupted", "crashed"};
    const coord_params *p = c->p;
    coord_status st = final_status(c);
    jm_run_figures fig;
    figures(c, &fig);
    if (rc == SL_OK && (rc = coord_session_commit(c, err)) == SL_OK &&
        (rc = jm_run_end(c->s, &c->run, names[st], c->rows_added, c->errors_added, p->n_ranks,
                         p->argc, p->argv, &fig, err)) == SL_OK &&
        (rc = coord_session_commit(c, err)) == SL_OK) {
        c->run_started = 0;
        progress_final(&c->prog, st == COORD_FINISHED
                                     ? "finished"
                                     : "interrupted: run the same command again to resume");
        print_summary(c, &fig);
    }
    if (rc && c->run_started) { // record the failure if the store still takes writes
        sl_err e2;
        store_abort(c->s); // the open batch is gone: report what was committed
        fig.audio_s = c->done_audio;
        fig.rows_kept = c->done_kept;
        if (jm_run_end(c->s, &c->run, "failed", c->done_rows, c->done_errors, p->n_ranks,
                       p->argc, p->argv, &fig, &e2) == SL_OK)
            store_commit(c->s, &e2);
    }
    out->status = st;
    out->rows_added = c->rows_added;
    out->errors_added = c->errors_added;
    out->rows_kept = c->rows_kept;
    out->audio_s = c->prog.audio_s;
    out->segmented_files = c->segmented_files;
    out->segment_rows = c->segment_rows;
    session_free(c);
    return rc;
}

int coord_session_check_stop(coord_session *c)
{
    int sig = sl_stop_requested();
    if (!sig || c->stopping)
        return 0;
    c->stopping = sig;
    c->deadline = sl_now() + c->p->grace_s;
    SL_LOG(WARN, "run", "signal %d: no new work; collecting what is in flight for up to %.0f s",
           sig, c->p->grace_s);
    return 1;
}

int coord_session_stopping(const coord_session *c) { return c->stopping != 0; }

int coord_session_grace_over(const coord_session *c)
{
    return c->stopping && sl_now() > c->deadline;
}

int coord_session_next(coord_session *c, uint32_t *wid)
{
    if (c->stopping || c->q_head == c->q_len)
        return 0;
    *wid = c->queue[c->q_head++];
    return 1;
}

int coord_session_all_dispatched(const coord_session *c) { return c->q_head == c->q_len; }

int coord_session_work(coord_session *c, uint32_t wid, proto_buf *b, sl_err *err)
{
    const size_t *items;
    size_t one, n = wid_items(c, wid, &one, &items);
    uint32_t flags = (wid >= c->plan.n_units ? PROTO_WORK_ALONE : 0) |
                     (c->p->payload ? PROTO_WORK_PAYLOAD : 0);
    // Manifest pieces (a range of a file) and resumed segmented items carry ranges.
    for (size_t k = 0; !c->p->payload && k < n; k++) {
        if (man_item_is_piece(&c->m->items[items[k]]))
            flags |= PROTO_WORK_RANGES;
        if (c->resume[items[k]] > 0)
            flags |= PROTO_WORK_RANGES | PROTO_WORK_ITEM_FLAGS;
    }
    int rc = proto_work_begin(b, wid, flags, err);
    for (size_t k = 0; rc == SL_OK && k < n; k++) {
        const man_item *it = &c->m->items[items[k]];
        if (c->state[items[k]] == ST_SEGS || (c->resume[items[k]] > 0 && !needed(c, items[k])))
            continue; // a long file stored already (a unit re-sent for its other items)
        if (c->p->payload) {
            const void *bytes;
            size_t len;
            rc = c->p->payload(c->p->payload_ctx, items[k], &bytes, &len, err);
            if (rc == SL_OK)
                rc = proto_work_add_bytes(b, it->id, bytes, len, err);
        } else if (c->resume[items[k]] > 0) { // a segmented item: on from its committed cut
            rc = proto_work_add_item(b, it->id, it->path, c->resume[items[k]], it->end,
                                     PROTO_ITEM_CONTINUE, err);
        } else if (flags & PROTO_WORK_RANGES) {
            rc = proto_work_add_range(b, it->id, it->path, it->start, it->end, err);
        } else {
            rc = proto_work_add(b, it->id, it->path, err);
        }
    }
    return rc;
}

int coord_session_note(coord_session *c, uint32_t wid, proto_buf *b, sl_err *err)
{
    const size_t *items;
    size_t one, n = wid_items(c, wid, &one, &items);
    b->len = 0;
    int rc = proto_buf_reserve(b, 1, err);
    if (rc)
        return rc;
    b->p[b->len++] = wid >= c->plan.n_units ? 'A' : 'U';
    for (size_t k = 0; k < n; k++) {
        const char *id = c->m->items[items[k]].id;
        size_t l = strlen(id) + 1;
        if ((rc = proto_buf_reserve(b, l, err)))
            return rc;
        memcpy(b->p + b->len, id, l);
        b->len += l;
    }
    return SL_OK;
}

static void seg_meta_key(const char *id, char *key, size_t cap) { snprintf(key, cap, "seg/%s", id); }

// The manifest item a record names: its id, or for a segment key (storage/segkey.h)
// the item before the suffix. *segment = 1 for the latter.
static int record_item(const coord_session *c, const proto_record *rec, int *segment)
{
    *segment = 0;
    int i = find_item(c->m, rec->key, rec->key_len);
    size_t src_len;
    if (i < 0 && rec->kind != PROTO_REC_MARK &&
        seg_key_split(rec->key, rec->key_len, &src_len)) {
        i = find_item(c->m, rec->key, src_len);
        *segment = i >= 0;
    }
    return i;
}

// Item i's first record of this answer while its old error is stored (retry_errors):
// the error goes, the item is being computed again.
static int drop_old_error(coord_session *c, size_t i, sl_err *err)
{
    if (c->state[i] != ST_ERR)
        return SL_OK;
    const char *id = c->m->items[i].id;
    int rc = store_del_error(c->s, id, strlen(id), err);
    c->state[i] = ST_TODO;
    return rc;
}

// Item i is complete (a row, an error, or its done mark): forget an earlier crash.
static int completed(coord_session *c, size_t i, sl_err *err)
{
    if (!c->crash[i])
        return SL_OK;
    char key[4200];
    crash_key(c->m->items[i].id, key, sizeof key);
    c->crash[i] = 0;
    return store_del_meta(c->s, key, err);
}

// A mark: where segmented item i resumes, or that it is done; stored in meta in the same
// transaction as the segments it follows.
static int store_mark(coord_session *c, size_t i, const proto_record *rec, size_t *items_done,
                      sl_err *err)
{
    int64_t next;
    int done, rc;
    if ((rc = proto_mark_parse(rec->val, rec->val_len, &next, &done, err)))
        return rc;
    char key[4200], val[32];
    seg_meta_key(c->m->items[i].id, key, sizeof key);
    if (done)
        snprintf(val, sizeof val, "done");
    else
        snprintf(val, sizeof val, "%lld", (long long)next);
    if ((rc = drop_old_error(c, i, err)) || (rc = store_put_meta(c->s, key, val, err)))
        return rc;
    c->pending++;
    if (!done) {
        c->resume[i] = next;
        return SL_OK;
    }
    c->state[i] = ST_SEGS;
    c->resume[i] = 0;
    c->segmented_files++;
    (*items_done)++;
    return completed(c, i, err);
}

typedef struct answer { // what one RESULT or PARTIAL added
    size_t rows, errors, kept, items_done;
    double audio;
} answer;

// Stores one record of a RESULT answering wid; 1 = stored, 0 = ignored.
static int store_record(coord_session *c, int rank, uint32_t wid, const proto_record *rec,
                        answer *a, sl_err *err)
{
    int segment, i = record_item(c, rec, &segment);
    if (i < 0 || !in_wid(c, wid, (size_t)i)) {
        SL_LOG(WARN, "run", "rank %d returned \"%.*s\", %s work unit %u: ignored", rank,
               (int)(rec->key_len > 200 ? 200 : rec->key_len), (const char *)rec->key,
               i < 0 ? "an id not in the manifest, for" : "which is not an item of", wid);
        return 0;
    }
    if (!needed(c, (size_t)i))
        return 0; // already stored: a unit recomputed whole for its missing ids
    if (rec->kind == PROTO_REC_MARK) {
        int rc = store_mark(c, (size_t)i, rec, &a->items_done, err);
        return rc ? rc : 0;
    }
    int rc;
    if ((rc = drop_old_error(c, (size_t)i, err)))
        return rc;
    if (rec->kind == PROTO_REC_ROW) {
        rec_header h;
        if ((rc = rec_row_decode(rec->val, rec->val_len, &h, err)))
            return sl_err_prefix(err, "run: row \"%.*s\" from rank %d",
                                 (int)(rec->key_len > 200 ? 200 : rec->key_len),
                                 (const char *)rec->key, rank);
        rc = store_put_row(c->s, rec->key, rec->key_len, rec->val, rec->val_len, err);
        a->audio += (double)h.duration_s;
        rec_quality q;
        rec_quality_of(&h, c->quality.q, &q);
        a->kept += rec_filter_check(&c->quality, &q) == 0;
        a->rows++;
    } else {
        rc = store_put_error(c->s, rec->key, rec->key_len, rec->val, rec->val_len, err);
        a->errors++;
    }
    if (rc)
        return rc;
    c->pending++;
    if (segment) { // one segment of item i: the item ends with its done mark (or an error)
        c->segment_rows += rec->kind == PROTO_REC_ROW;
        return 1;
    }
    c->state[i] = rec->kind == PROTO_REC_ROW ? ST_ROW : ST_ERR;
    a->items_done++;
    return (rc = completed(c, (size_t)i, err)) ? rc : 1;
}

// A unit's final answer left an item unfinished (a long one without its done mark, or
// one with no record at all): the run is interrupted; the next run does the rest.
static void check_finished(coord_session *c, uint32_t wid)
{
    const size_t *items;
    size_t one, n = wid_items(c, wid, &one, &items);
    for (size_t k = 0; k < n; k++) {
        size_t i = items[k];
        if (c->state[i] != ST_TODO || c->m->items[i].bad)
            continue;
        c->incomplete++;
        if (c->resume[i] > 0)
            SL_LOG(WARN, "run", "%s stopped at %.3f s (the worker was stopped): the next run "
                   "resumes it there", c->m->items[i].id, (double)c->resume[i] / MAN_PIECE_HZ);
        else
            SL_LOG(WARN, "run", "%s: its unit was answered without it: the next run does it",
                   c->m->items[i].id);
    }
}

static int take_answer(coord_session *c, int rank, const void *msg, size_t len, int final,
                       sl_err *err)
{
    proto_result_reader r;
    int rc = proto_result_open(&r, msg, len, err);
    if (rc)
        return sl_err_prefix(err, "run: from rank %d", rank);
    if (!wid_valid(c, r.wid)) {
        SL_LOG(WARN, "run", "rank %d answered work unit %u, which is not in the plan (%zu units, "
               "%zu items): ignored", rank, r.wid, c->plan.n_units, c->m->n);
        return SL_OK;
    }
    proto_record rec;
    answer a = {0};
    while ((rc = proto_result_next(&r, &rec, err)) == 1)
        if ((rc = store_record(c, rank, r.wid, &rec, &a, err)) < 0)
            return rc;
    if (rc < 0)
        return sl_err_prefix(err, "run: from rank %d", rank);
    c->rows_added += a.rows;
    c->errors_added += a.errors;
    c->rows_kept += a.kept;
    if (final)
        check_finished(c, r.wid);
    progress_add(&c->prog, a.items_done, a.rows, a.errors, a.audio);
    return coord_session_commit_due(c, err);
}

int coord_session_result(coord_session *c, int rank, const void *msg, size_t len, sl_err *err)
{
    return take_answer(c, rank, msg, len, 1, err);
}

int coord_session_partial(coord_session *c, int rank, const void *msg, size_t len, sl_err *err)
{
    return take_answer(c, rank, msg, len, 0, err);
}

int coord_session_crash(coord_session *c, int rank, const void *msg, size_t len, sl_err *err)
{
    uint32_t wid;
    int rc = proto_crash_parse(msg, len, &wid, err);
    // The sender is dying (CRASH comes from its fatal-signal handler) and takes the job
    // down: end it ourselves once the crash is committed, in case the process hangs.
    c->abort = COORD_CRASHED;
    if (rc == SL_OK && !wid_valid(c, wid))
        rc = sl_fail(err, SL_EFORMAT, "work unit %u is not in the plan (%zu units, %zu items)",
                     wid, c->plan.n_units, c->m->n);
    if (rc) {
        SL_LOG(ERROR, "run", "rank %d crashed; its CRASH message is ignored: %s", rank, err->msg);
        return coord_session_commit(c, err);
    }
    const size_t *items;
    size_t one, n = wid_items(c, wid, &one, &items);
    SL_LOG(ERROR, "run", "rank %d crashed on work unit %u (%zu utterance(s), first \"%s\"): "
           "recorded; the next run retries each alone", rank, wid, n, c->m->items[items[0]].id);
    return record_crash(c, items, n, wid >= c->plan.n_units, err);
}

int coord_session_stats(coord_session *c, int rank, const void *msg, size_t len, sl_err *err)
{
    double v[PROTO_N_STATS];
    if (proto_stats_parse(msg, len, v, err)) {
        SL_LOG(WARN, "run", "rank %d: %s (its stage timers are left out)", rank, err->msg);
        return SL_OK;
    }
    for (int k = 0; k < PROTO_N_STATS; k++)
        c->stats[k] += v[k];
    return SL_OK;
}

void coord_session_set_abort(coord_session *c, coord_status why) { c->abort = why; }
coord_status coord_session_abort(const coord_session *c) { return c->abort; }
const char *coord_session_crash_path(const coord_session *c) { return c->crash_path; }
size_t coord_session_n_units(const coord_session *c) { return c->plan.n_units; }
double *coord_session_stats_acc(coord_session *c) { return c->stats; }
