// coordinator/coord.c — see coord.h.
#include "coordinator/coord.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/crash.h"
#include "common/exitcode.h"
#include "common/idle.h"
#include "common/log.h"
#include "common/stop.h"
#include "coordinator/progress.h"
#include "coordinator/units.h"
#include "storage/row.h"
#include "storage/store.h"

enum { ST_TODO = 0, ST_ROW = 1, ST_ERR = 2 };
enum { ABORT_NONE = 0, ABORT_GRACE = 1, ABORT_CRASH = 2 };

typedef struct wstate {
    int hello, stopped, got_stats;
    int inflight;                       // units sent and not yet answered
    proto_buf buf[PROTO_PREFETCH + 1];  // send buffers (WORK x PREFETCH, STOP)
    MPI_Request req[PROTO_PREFETCH + 1];
} wstate;

typedef struct coord {
    const coord_params *p;
    const manifest *m;
    store *s;
    unit_plan plan;
    unsigned char *state;   // per manifest item: ST_*
    unsigned char *crash;   // per manifest item: crashes recorded so far
    uint32_t *queue;        // wids in dispatch order
    size_t q_len, q_head;
    size_t pending;         // records since the last commit
    double last_commit;
    size_t rows_added, errors_added;
    double stats[PROTO_N_STATS];
    progress prog;
    int stopping;           // a stop signal was seen
    double deadline;
    int abort;              // run_mpi ended with work in flight: ABORT_GRACE or ABORT_CRASH
    char crash_path[4200];
    proto_buf rbuf;         // receive buffer
} coord;

coord_params coord_default_params(void)
{
    coord_params p = {.unit_items = 4, .unit_seconds = 120, .grace_s = 60, .progress_s = 30,
                      .commit_rows = 4096, .commit_s = 1.0};
    return p;
}

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

// The manifest items of a work id; *one is the storage for an alone retry.
static size_t wid_items(const coord *c, uint32_t wid, size_t *one, const size_t **items)
{
    if (wid < c->plan.n_units) {
        *items = c->plan.items + c->plan.start[wid];
        return units_size(&c->plan, wid);
    }
    *one = wid - c->plan.n_units;
    *items = one;
    return 1;
}

static int needed(const coord *c, size_t i)
{
    return c->state[i] == ST_TODO || (c->state[i] == ST_ERR && c->p->retry_errors);
}

static int commit(coord *c, sl_err *err)
{
    int rc = store_commit(c->s, err);
    if (rc == SL_OK) {
        c->pending = 0;
        c->last_commit = progress_now();
    }
    return rc;
}

// Marks which manifest ids the dataset already holds (merge of two sorted streams).
static int scan_done(coord *c, store_table t, unsigned char mark, sl_err *err)
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

static int put_error(coord *c, size_t i, sl_stage stage, int code, unsigned attempts,
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

// Records that the items of wid crashed their process once more.
static int record_crash(coord *c, const size_t *items, size_t n, int alone, sl_err *err)
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
    return commit(c, err);
}

// A one-rank run leaves its crash note in DIR/crash.note: fold it into meta.
static int consume_crash_note(coord *c, sl_err *err)
{
    snprintf(c->crash_path, sizeof c->crash_path, "%s/crash.note", c->p->out);
    FILE *f = fopen(c->crash_path, "rb");
    if (!f)
        return SL_OK;
    static char buf[SL_CRASH_NOTE_CAP + 1];
    size_t n = fread(buf, 1, SL_CRASH_NOTE_CAP, f);
    fclose(f);
    buf[n] = '\0';
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
        int rc = items ? record_crash(c, items, k, alone, err) : SL_ENOMEM;
        free(items);
        if (rc)
            return rc;
    }
    return unlink(c->crash_path) == 0 || errno == ENOENT
               ? SL_OK
               : sl_fail(err, SL_EIO, "run: cannot remove %s: %s", c->crash_path, strerror(errno));
}

static int load_crash_marks(coord *c, sl_err *err)
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

static int build_queue(coord *c, sl_err *err)
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

static int make_work(coord *c, uint32_t wid, proto_buf *b, sl_err *err)
{
    const size_t *items;
    size_t one, n = wid_items(c, wid, &one, &items);
    uint32_t flags = (wid >= c->plan.n_units ? PROTO_WORK_ALONE : 0) |
                     (c->p->payload ? PROTO_WORK_PAYLOAD : 0);
    int rc = proto_work_begin(b, wid, flags, err);
    for (size_t k = 0; rc == SL_OK && k < n; k++) {
        const man_item *it = &c->m->items[items[k]];
        if (c->p->payload) {
            const void *bytes;
            size_t len;
            rc = c->p->payload(c->p->payload_ctx, items[k], &bytes, &len, err);
            if (rc == SL_OK)
                rc = proto_work_add_bytes(b, it->id, bytes, len, err);
        } else {
            rc = proto_work_add(b, it->id, it->path, err);
        }
    }
    return rc;
}

// Stores the records of one RESULT message.
static int store_result(coord *c, const void *msg, size_t len, sl_err *err)
{
    proto_result_reader r;
    int rc = proto_result_open(&r, msg, len, err);
    if (rc)
        return rc;
    proto_record rec;
    size_t rows = 0, errors = 0;
    double audio = 0;
    while ((rc = proto_result_next(&r, &rec, err)) == 1) {
        int i = find_item(c->m, rec.key, rec.key_len);
        if (i < 0) {
            SL_LOG(WARN, "run", "a worker returned an unknown id \"%.*s\": ignored",
                   (int)(rec.key_len > 200 ? 200 : rec.key_len), (const char *)rec.key);
            continue;
        }
        if (!needed(c, (size_t)i))
            continue; // already stored: a unit recomputed whole for its missing ids
        if (c->state[i] == ST_ERR && (rc = store_del_error(c->s, rec.key, rec.key_len, err)))
            return rc;
        if (rec.kind == PROTO_REC_ROW) {
            rec_header h;
            if ((rc = rec_row_decode(rec.val, rec.val_len, &h, err)))
                return sl_err_prefix(err, "run: row \"%s\" from a worker", c->m->items[i].id);
            rc = store_put_row(c->s, rec.key, rec.key_len, rec.val, rec.val_len, err);
            c->state[i] = ST_ROW;
            rows++;
            audio += (double)h.duration_s;
        } else {
            rc = store_put_error(c->s, rec.key, rec.key_len, rec.val, rec.val_len, err);
            c->state[i] = ST_ERR;
            errors++;
        }
        if (rc)
            return rc;
        c->pending++;
        if (c->crash[i]) { // it completed: forget the earlier crash
            char key[4200];
            crash_key(c->m->items[i].id, key, sizeof key);
            if ((rc = store_del_meta(c->s, key, err)))
                return rc;
            c->crash[i] = 0;
        }
    }
    if (rc < 0)
        return rc;
    c->rows_added += rows;
    c->errors_added += errors;
    progress_add(&c->prog, rows, errors, audio);
    if (c->pending >= c->p->commit_rows || progress_now() - c->last_commit >= c->p->commit_s)
        return commit(c, err);
    return SL_OK;
}

static void check_stop(coord *c)
{
    int sig = sl_stop_requested();
    if (sig && !c->stopping) {
        c->stopping = sig;
        c->deadline = progress_now() + c->p->grace_s;
        SL_LOG(WARN, "run", "signal %d: no new work; collecting what is in flight for up to "
               "%.0f s", sig, c->p->grace_s);
    }
}

// --- one rank: execute in process ---

static int run_local(coord *c, sl_err *err)
{
    if (!c->p->exec)
        return sl_fail(err, SL_EINVAL, "run: no executor for a one-rank run");
    int fd = open(c->crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sl_fail(err, SL_EIO, "run: %s: %s", c->crash_path, strerror(errno));
    sl_crash_install();
    sl_crash_set_fd(fd);
    proto_buf work = {0}, result = {0}, note = {0};
    int rc = SL_OK;
    while (c->q_head < c->q_len) {
        check_stop(c);
        if (c->stopping)
            break;
        uint32_t wid = c->queue[c->q_head++];
        if ((rc = make_work(c, wid, &work, err)))
            break;
        // The note: 'A' (alone) or 'U', then the ids, each NUL-terminated.
        const size_t *items;
        size_t one, n = wid_items(c, wid, &one, &items);
        note.len = 0;
        if ((rc = proto_buf_reserve(&note, 1, err)))
            break;
        note.p[note.len++] = wid >= c->plan.n_units ? 'A' : 'U';
        for (size_t k = 0; k < n && rc == SL_OK; k++) {
            const char *id = c->m->items[items[k]].id;
            size_t l = strlen(id) + 1;
            if ((rc = proto_buf_reserve(&note, l, err)) == SL_OK) {
                memcpy(note.p + note.len, id, l);
                note.len += l;
            }
        }
        if (rc)
            break;
        if (lseek(fd, 0, SEEK_SET) != 0 || ftruncate(fd, 0) != 0) {
            rc = sl_fail(err, SL_EIO, "run: %s: %s", c->crash_path, strerror(errno));
            break;
        }
        sl_crash_arm(wid, note.p, note.len);
        rc = c->p->exec(c->p->exec_ctx, work.p, work.len, &result, c->stats, err);
        sl_crash_disarm();
        if (rc || (rc = store_result(c, result.p, result.len, err)))
            break;
    }
    sl_crash_set_fd(-1);
    close(fd);
    unlink(c->crash_path);
    proto_buf_free(&work);
    proto_buf_free(&result);
    proto_buf_free(&note);
    return rc;
}

// --- MPI: rank 0 dispatches ---

static int free_slot(wstate *w, int first, int last)
{
    for (int k = first; k <= last; k++) {
        if (w->req[k] == MPI_REQUEST_NULL)
            return k;
        int done = 0;
        MPI_Test(&w->req[k], &done, MPI_STATUS_IGNORE);
        if (done)
            return k;
    }
    return -1;
}

static int dispatch(coord *c, wstate *w, int rank, sl_err *err)
{
    while (!c->stopping && w->hello && !w->stopped && w->inflight < PROTO_PREFETCH &&
           c->q_head < c->q_len) {
        int k = free_slot(w, 0, PROTO_PREFETCH - 1);
        if (k < 0)
            return SL_OK;
        uint32_t wid = c->queue[c->q_head++];
        int rc = make_work(c, wid, &w->buf[k], err);
        if (rc)
            return rc;
        MPI_Isend(w->buf[k].p, (int)w->buf[k].len, MPI_BYTE, rank, PROTO_WORK, MPI_COMM_WORLD,
                  &w->req[k]);
        w->inflight++;
    }
    if (w->hello && !w->stopped && w->inflight == 0 && (c->stopping || c->q_head == c->q_len)) {
        int k = PROTO_PREFETCH;
        uint32_t status = c->q_head < c->q_len ? SL_EXIT_INTERRUPTED : 0;
        if (proto_buf_reserve(&w->buf[k], 4, err))
            return err->code;
        memcpy(w->buf[k].p, &status, 4);
        MPI_Isend(w->buf[k].p, 4, MPI_BYTE, rank, PROTO_STOP, MPI_COMM_WORLD, &w->req[k]);
        w->stopped = 1;
    }
    return SL_OK;
}

static int run_mpi(coord *c, int size, sl_err *err)
{
    int n_workers = size - 1, finished = 0, rc = SL_OK, idle = 0;
    sl_idle_init();
    wstate *ws = calloc((size_t)size, sizeof *ws);
    if (!ws)
        return sl_fail(err, SL_ENOMEM, "run: out of memory");
    for (int r = 0; r < size; r++)
        for (int k = 0; k <= PROTO_PREFETCH; k++)
            ws[r].req[k] = MPI_REQUEST_NULL;
    while (finished < n_workers) {
        int was_stopping = c->stopping;
        check_stop(c);
        if (c->stopping && !was_stopping) {
            if ((rc = commit(c, err))) // SIGTERM under mpirun: SIGKILL follows in a second
                break;
            for (int r = 1; r < size && rc == SL_OK; r++)
                rc = dispatch(c, &ws[r], r, err); // STOP the idle workers
        }
        if (c->stopping && progress_now() > c->deadline) {
            SL_LOG(ERROR, "run", "grace period over with work in flight: aborting the job");
            rc = commit(c, err);
            c->abort = ABORT_GRACE;
            break;
        }
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            if (c->pending && progress_now() - c->last_commit >= c->p->commit_s &&
                (rc = commit(c, err)))
                break;
            sl_idle_wait(&idle, 1000000L);
            continue;
        }
        idle = 0;
        int count;
        MPI_Get_count(&st, MPI_BYTE, &count);
        int src = st.MPI_SOURCE;
        if ((rc = proto_buf_reserve(&c->rbuf, (size_t)count + 1, err)))
            break;
        MPI_Recv(c->rbuf.p, count, MPI_BYTE, src, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        wstate *w = &ws[src];
        switch (st.MPI_TAG) {
        case PROTO_HELLO:
            w->hello = 1;
            break;
        case PROTO_RESULT:
            w->inflight--;
            rc = store_result(c, c->rbuf.p, (size_t)count, err);
            break;
        case PROTO_STATS:
            if ((size_t)count == PROTO_N_STATS * sizeof(double)) {
                double v[PROTO_N_STATS];
                memcpy(v, c->rbuf.p, sizeof v);
                for (int k = 0; k < PROTO_N_STATS; k++)
                    c->stats[k] += v[k];
            }
            w->got_stats = 1;
            finished++;
            break;
        case PROTO_CRASH: {
            uint32_t wid;
            memcpy(&wid, c->rbuf.p, 4);
            const size_t *items;
            size_t one, n = wid_items(c, wid, &one, &items);
            SL_LOG(ERROR, "run", "rank %d crashed on work unit %u (%zu utterance(s), first \"%s\"): "
                   "recorded; the next run retries each alone", src, wid, n,
                   c->m->items[items[0]].id);
            rc = record_crash(c, items, n, wid >= c->plan.n_units, err);
            // The dead rank takes the job down (mpirun kills the rest); end it ourselves, now
            // that the crash is committed, in case the crashed process hangs instead of dying.
            c->abort = ABORT_CRASH;
            break;
        }
        default:
            SL_LOG(WARN, "run", "unexpected message tag %d from rank %d", st.MPI_TAG, src);
        }
        if (rc == SL_OK && !c->abort)
            rc = dispatch(c, w, src, err);
        if (rc || c->abort)
            break;
    }
    for (int r = 1; r < size; r++)
        for (int k = 0; k <= PROTO_PREFETCH; k++) {
            if (ws[r].req[k] != MPI_REQUEST_NULL && finished == n_workers)
                MPI_Wait(&ws[r].req[k], MPI_STATUS_IGNORE);
            proto_buf_free(&ws[r].buf[k]);
        }
    free(ws);
    return rc;
}

static void print_stage_totals(const coord *c)
{
    const double *s = c->stats;
    if (s[PROTO_N_UTTS] <= 0)
        return;
    SL_LOG(INFO, "run", "worker time: audio %.2f s, features %.2f s, tokens %.2f s, text %.2f s "
           "(busy %.2f s over %.0f utterances, %.1f audio s)", s[PROTO_T_AUDIO],
           s[PROTO_T_FEATURES], s[PROTO_T_TOKENS], s[PROTO_T_TEXT], s[PROTO_T_BUSY],
           s[PROTO_N_UTTS], s[PROTO_AUDIO_SECONDS]);
}

// CPU seconds of this process (all its threads, Open MPI's included).
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

int coord_run(const coord_params *p, sl_err *err)
{
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    coord c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.m = p->m;
    int rc, exit_code = SL_EXIT_FAIL;
    jm_run run = {0};
    int run_started = 0;
    store_params sp = store_default_params();
    sp.batch_rows = 0; // commits are ours: a unit's rows always share one transaction
    if (p->initial_map_bytes)
        sp.initial_map_bytes = p->initial_map_bytes;
    if ((rc = store_open(&c.s, p->out, STORE_WRITE, sp, err)))
        return SL_EXIT_FAIL;
    int was_new;
    if ((rc = jm_check_and_record(c.s, p->fps, p->n_fps, &was_new, err)))
        goto done;
    for (size_t k = 0; k < p->n_meta; k++)
        if ((rc = store_put_meta(c.s, p->meta[2 * k], p->meta[2 * k + 1], err)))
            goto done;
    if ((rc = units_plan(c.m, p->unit_items, p->unit_seconds, &c.plan, err)))
        goto done;
    c.state = calloc(c.m->n + 1, 1);
    c.crash = calloc(c.m->n + 1, 1);
    if (!c.state || !c.crash) {
        rc = sl_fail(err, SL_ENOMEM, "run: out of memory");
        goto done;
    }
    if ((rc = scan_done(&c, STORE_ROWS, ST_ROW, err)) ||
        (rc = scan_done(&c, STORE_ERRORS, ST_ERR, err)) || (rc = load_crash_marks(&c, err)) ||
        (rc = consume_crash_note(&c, err)))
        goto done;
    size_t already = 0;
    for (size_t i = 0; i < c.m->n; i++)
        already += c.state[i] != ST_TODO;
    if (!was_new)
        SL_LOG(INFO, "run", "resuming %s: %zu of %zu utterances already stored", p->out, already,
               c.m->n);
    if ((rc = jm_run_begin(c.s, size, p->argc, p->argv, &run, err)))
        goto done;
    run_started = 1;
    c.last_commit = progress_now();
    progress_init(&c.prog, c.m->n, 0, p->progress_s);
    for (size_t i = 0; i < c.m->n; i++) // manifest lines we cannot use become error records
        if (c.m->items[i].bad && needed(&c, i) &&
            (rc = put_error(&c, i, c.m->items[i].bad_stage, SL_EFORMAT, 0, c.m->items[i].bad,
                            err)))
            goto done;
    if ((rc = commit(&c, err)) || (rc = build_queue(&c, err)))
        goto done;
    progress_init(&c.prog, c.m->n, already, p->progress_s);
    double cpu0 = cpu_seconds(); // rank 0's own cost of the run, start-up excluded
    snprintf(c.crash_path, sizeof c.crash_path, "%s/crash.note", p->out);
    SL_LOG(INFO, "run", "%zu utterances in %zu units; %zu units to do on %d rank(s)", c.m->n,
           c.plan.n_units, c.q_len, size);
    rc = size == 1 ? run_local(&c, err) : run_mpi(&c, size, err);
    if (rc)
        goto done;
    int interrupted = c.q_head < c.q_len || c.abort;
    if ((rc = commit(&c, err)))
        goto done;
    rc = jm_run_end(c.s, &run,
                    c.abort == ABORT_CRASH ? "crashed" : interrupted ? "interrupted" : "finished",
                    c.rows_added, c.errors_added, size, p->argc, p->argv, err);
    if (rc == SL_OK)
        rc = commit(&c, err);
    run_started = 0;
    if (rc)
        goto done;
    progress_final(&c.prog, interrupted ? "interrupted: run the same command again to resume"
                                        : "finished");
    print_stage_totals(&c);
    double wall = progress_now() - c.prog.t_start, cpu = cpu_seconds() - cpu0;
    SL_LOG(INFO, "run", "rank 0: %zu records in %.2f s wall (%.0f/s), %.2f s CPU (%.0f%% of a core)",
           c.rows_added + c.errors_added, wall, (double)(c.rows_added + c.errors_added) / wall,
           cpu, 100.0 * cpu / wall);
    exit_code = interrupted ? SL_EXIT_INTERRUPTED : SL_EXIT_OK;
    if (c.abort) { // workers still hold units (or one crashed): end the job, resumable
        store_close(c.s);
        c.s = NULL;
        MPI_Abort(MPI_COMM_WORLD, SL_EXIT_INTERRUPTED);
    }
done:
    if (rc && c.s && run_started) { // record the failure if the store still takes writes
        sl_err e2;
        store_abort(c.s);
        if (jm_run_end(c.s, &run, "failed", c.rows_added, c.errors_added, size, p->argc, p->argv,
                       &e2) == SL_OK)
            store_commit(c.s, &e2);
    }
    store_close(c.s);
    units_free(&c.plan);
    free(c.state);
    free(c.crash);
    free(c.queue);
    proto_buf_free(&c.rbuf);
    return rc ? SL_EXIT_FAIL : exit_code;
}
