// coordinator/coord.c — see coord.h. The one-rank driver; the MPI one is coord_mpi.c.
#include "coordinator/coord.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/crash.h"
#include "common/exitcode.h"
#include "coordinator/coord_mpi.h"
#include "coordinator/session.h"

coord_params coord_default_params(void)
{
    coord_params p = {.n_ranks = 1,
                      .threads = 1,
                      .unit_items = COORD_DEFAULT_UNIT_ITEMS,
                      .unit_seconds = COORD_DEFAULT_UNIT_SECONDS,
                      .grace_s = COORD_DEFAULT_GRACE_S,
                      .progress_s = COORD_DEFAULT_PROGRESS_S,
                      .commit_rows = 4096,
                      .commit_s = 1.0};
    return p;
}

int coord_exit_code(coord_status s)
{
    return s == COORD_FINISHED ? SL_EXIT_OK : SL_EXIT_INTERRUPTED;
}

static int local_partial(void *sink, const void *msg, size_t n, sl_err *err)
{
    return coord_session_partial(sink, 0, msg, n, err);
}

// Rewrites the crash note file with the note of wid (crash.h: the handler writes
// the armed bytes there if the process dies).
static int arm_note(coord_session *s, int fd, const char *path, uint32_t wid, proto_buf *note,
                    sl_err *err)
{
    int rc = coord_session_note(s, wid, note, err);
    if (rc)
        return rc;
    if (lseek(fd, 0, SEEK_SET) != 0 || ftruncate(fd, 0) != 0)
        return sl_fail(err, SL_EIO, "run: %s: %s", path, strerror(errno));
    sl_crash_arm(wid, note->p, note->len);
    return SL_OK;
}

// One rank, one unit at a time through p->exec.
static int local_units(coord_session *s, const coord_params *p, int fd, const char *path,
                       sl_err *err)
{
    proto_buf work = {0}, result = {0}, note = {0};
    int rc = SL_OK;
    uint32_t wid;
    while (rc == SL_OK && (coord_session_check_stop(s), coord_session_next(s, &wid))) {
        if ((rc = coord_session_work(s, wid, &work, err)) ||
            (rc = arm_note(s, fd, path, wid, &note, err)))
            break;
        rc = p->exec(p->exec_ctx, work.p, work.len, &result, coord_session_stats_acc(s), err);
        sl_crash_disarm();
        if (rc == SL_OK)
            rc = coord_session_result(s, 0, result.p, result.len, err);
    }
    proto_buf_free(&work);
    proto_buf_free(&result);
    proto_buf_free(&note);
    return rc;
}

// One rank through a scheduler that holds up to max_held units (coord_sched).
static int local_sched(coord_session *s, const coord_params *p, int fd, const char *path,
                       sl_err *err)
{
    const coord_sched *q = p->sched;
    void *x = p->exec_ctx;
    proto_buf work = {0}, result = {0}, note = {0};
    int rc = SL_OK, more = 1;
    uint32_t wid, noted = 0;
    int have_note = 0;
    while (rc == SL_OK) {
        while (more && q->held(x) < q->max_held) {
            coord_session_check_stop(s);
            if (!(more = coord_session_next(s, &wid)))
                break;
            if ((rc = coord_session_work(s, wid, &work, err)) ||
                (rc = q->push(x, work.p, work.len, err)))
                break;
        }
        if (rc || q->held(x) == 0)
            break;
        uint32_t w = q->next_wid(x);
        // The note of the unit this piece works for, rebuilt only when that unit
        // changes (wid 0 is a unit too, hence have_note).
        if (!have_note || w != noted) {
            if ((rc = arm_note(s, fd, path, w, &note, err)))
                break;
            noted = w;
            have_note = 1;
        } else {
            sl_crash_arm(w, note.p, note.len);
        }
        int ready = 0;
        rc = q->advance(x, &result, &ready, coord_session_stats_acc(s), err);
        sl_crash_disarm();
        if (rc == SL_OK && ready == PROTO_RESULT)
            rc = coord_session_result(s, 0, result.p, result.len, err);
        else if (rc == SL_OK && ready == PROTO_PARTIAL)
            rc = coord_session_partial(s, 0, result.p, result.len, err);
    }
    proto_buf_free(&work);
    proto_buf_free(&result);
    proto_buf_free(&note);
    return rc;
}

// One rank: execute the units in process, with a crash note armed around each
// piece of work.
static int run_local(coord_session *s, const coord_params *p, sl_err *err)
{
    if (!p->exec && !p->sched)
        return sl_fail(err, SL_EINVAL, "run: no executor for a one-rank run");
    const char *note_path = coord_session_crash_path(s);
    int fd = open(note_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sl_fail(err, SL_EIO, "run: %s: %s", note_path, strerror(errno));
    sl_crash_install();
    sl_crash_set_fd(fd);
    if (p->exec_partial)
        p->exec_partial(p->exec_ctx, local_partial, s);
    int rc = p->sched ? local_sched(s, p, fd, note_path, err)
                      : local_units(s, p, fd, note_path, err);
    sl_crash_set_fd(-1);
    close(fd);
    unlink(note_path);
    return rc;
}

int coord_run(const coord_params *p, coord_outcome *out, sl_err *err)
{
    memset(out, 0, sizeof *out);
    if (p->n_ranks < 1)
        return sl_fail(err, SL_EINVAL, "run: %d ranks", p->n_ranks);
    coord_session *s;
    int rc = coord_session_open(&s, p, err);
    if (rc)
        return rc;
    rc = p->n_ranks == 1 ? run_local(s, p, err) : coord_mpi_serve(s, p->n_ranks, err);
    return coord_session_close(s, rc, out, err);
}
