// worker/worker.c — see worker.h.
#include "worker/worker.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/crash.h"
#include "common/exitcode.h"
#include "common/idle.h"
#include "common/log.h"

// Called from the fatal-signal handler: one small eager send to rank 0.
static void send_crash(uint32_t wid, void *ctx)
{
    (void)ctx;
    alarm(5); // if MPI cannot send from here, SIGALRM ends the process anyway
    MPI_Send(&wid, 4, MPI_BYTE, 0, PROTO_CRASH, MPI_COMM_WORLD);
    struct timespec ts = {0, 200000000L}; // let the bytes leave before the process dies
    nanosleep(&ts, NULL);
}

typedef struct slot {
    proto_buf buf;
    size_t len;
} slot;

int worker_run(job_exec *x, sl_err *err)
{
    sl_idle_init();
    sl_crash_install();
    sl_crash_set_hook(send_crash, NULL);
    MPI_Send(NULL, 0, MPI_BYTE, 0, PROTO_HELLO, MPI_COMM_WORLD);
    slot q[PROTO_PREFETCH];
    memset(q, 0, sizeof q);
    int head = 0, n_q = 0, stop = -1, idle = 0, rc = SL_OK;
    proto_buf result = {0};
    double stats[PROTO_N_STATS] = {0};
    while (stop < 0 || n_q > 0) {
        // Take every message that is here (blocking only when there is nothing to do).
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
            if (!flag) {
                if (n_q > 0 || stop >= 0)
                    break;
                sl_idle_wait(&idle, 50000L);
                continue;
            }
            idle = 0;
            int count;
            MPI_Get_count(&st, MPI_BYTE, &count);
            if (st.MPI_TAG == PROTO_STOP) {
                uint32_t status = 0;
                MPI_Recv(&status, 4, MPI_BYTE, 0, PROTO_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                stop = (int)status;
                continue;
            }
            if (st.MPI_TAG != PROTO_WORK || n_q == PROTO_PREFETCH) {
                if (n_q == PROTO_PREFETCH)
                    break; // rank 0 never sends more than we hold; leave it queued
                char junk[16];
                MPI_Recv(junk, count < 16 ? count : 16, MPI_BYTE, 0, st.MPI_TAG, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                SL_LOG(WARN, "worker", "unexpected tag %d from rank 0", st.MPI_TAG);
                continue;
            }
            slot *s = &q[(head + n_q) % PROTO_PREFETCH];
            s->buf.len = 0;
            if ((rc = proto_buf_reserve(&s->buf, (size_t)count + 1, err)))
                goto done;
            MPI_Recv(s->buf.p, count, MPI_BYTE, 0, PROTO_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            s->len = (size_t)count;
            n_q++;
        }
        if (n_q == 0)
            continue;
        slot *s = &q[head];
        uint32_t wid = 0;
        memcpy(&wid, s->buf.p, 4);
        sl_crash_arm(wid, NULL, 0);
        rc = exec_unit(x, s->buf.p, s->len, &result, stats, err);
        sl_crash_disarm();
        if (rc)
            goto done;
        MPI_Send(result.p, (int)result.len, MPI_BYTE, 0, PROTO_RESULT, MPI_COMM_WORLD);
        head = (head + 1) % PROTO_PREFETCH;
        n_q--;
    }
    MPI_Send(stats, (int)sizeof stats, MPI_BYTE, 0, PROTO_STATS, MPI_COMM_WORLD);
done:
    for (int k = 0; k < PROTO_PREFETCH; k++)
        proto_buf_free(&q[k].buf);
    proto_buf_free(&result);
    if (rc)
        return SL_EXIT_FAIL;
    return stop;
}
