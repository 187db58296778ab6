// worker/exec.h — what every rank that computes does with one WORK message:
// parse it, run the pipeline over its utterances, and encode each outcome as
// a storage record (row or error) into a RESULT message. MPI-free: the MPI
// worker loop (worker.h) and a one-rank run (coordinator, through coord_sched)
// share it, so both produce the same bytes.
//
// The scheduler: a worker holds up to EXEC_HELD units and decodes their
// utterances in one pool of p.pool sources (default EXEC_HELD x max_batch;
// pipeline.h pl_pool_*): when a slot frees, the next utterance of the oldest
// unit that has one gets its front half and joins; a unit's RESULT is ready
// when all its utterances are done, with the same record bytes, in item order,
// as one pl_run of the unit (decoding is batch-invariant bit for bit).
//
// Long items (p.seg, p.vad_json): an item longer than seg.max_seconds (a whole file by its
// header, as pipeline/audio.c judges "too long"; a piece by end - start), or one resumed
// with PROTO_ITEM_CONTINUE (at the cut item.start, to item.end or the end of the file),
// is cut into segments while it is tokenised: an audio_stream and a seg_cutter opened at
// the item's start (positions are absolute 16 kHz samples of the file), fed 1 s blocks on
// the file's grid; with vad_json the spans of seg_join_chunks over the .json beside the
// file (pipeline/vad_json.h), a chunk longer than max cut by a cutter fed exactly it.
// Each time the unit's next utterance is wanted, blocks are pulled until the next segment
// is decided and its samples (held from the last cut on) go through pl_pool_add_pcm (a
// --vad-json span, for which nothing was read, through pl_pool_add_file of its range): a
// segment row is `tokens` of that range, bit for bit, whatever decodes beside it. Its key is
// seg_key_format(item id, start, end), its source the item id, start/end its samples.
// Memory: the stream, the samples and the cutter's frame levels since the last cut (one
// cutting window, max + min + 1 s, and a block), the outcomes not yet
// sent (bounded by the pool): nothing grows with the file. Outcomes finish out of order;
// whenever an item's finished prefix grows, exec_advance returns a PARTIAL with those
// records in cut order and the item's mark (next = the end of the last one; done once
// the item's last segment is in it). A segment that fails in the pipeline is an error
// record under its key and cutting goes on. The file itself failing (open, read, NaN,
// seek, past 99999.999 s, a missing or malformed .json) is one error record under the
// item id naming the file, the position and the problem, after the segments before it
// and without a done mark; a fresh item whose every segment was dropped as silent is
// "no speech" the same way. A stop signal (common/stop.h: SIGUSR1 reaches every rank)
// ends a long item at its last cut (a fresh one after its first segment): its mark stays
// not done, and the unit's RESULT goes back; the next run continues it there. The unit's
// RESULT holds its plain items only (a whole file of at most max_seconds: the same key
// and bytes as ever) and goes when every item is finished.
//
// Test-only fault injection (environment, read at exec_open):
//   SL_TEST_CRASH_ID=ID   abort() when the utterance ID (an item, or a segment by its
//                         key) is started
//   SL_TEST_DELAY_MS=N    sleep N ms per utterance and per segment (makes kill tests
//                         land mid-run and mid-file)
//   SL_TEST_PER_UNIT=1    the old path: exec_unit and exec_advance run one held unit
//                         whole through pl_run / pl_run_ids (the reference the
//                         scheduler's datasets and speed are compared with; it cuts
//                         nothing: a long item is "too long" there)
#pragma once
#include <stddef.h>

#include "common/err.h"
#include "coordinator/protocol.h"
#include "pipeline/pipeline.h"

typedef struct job_exec job_exec;

#define EXEC_HELD PROTO_PREFETCH // units the scheduler holds

int exec_open(job_exec **out, const pl_params *p, sl_err *err);
void exec_close(job_exec *x); // NULL is fine

// Matches coord_exec_partial_fn: exec_unit hands PARTIAL messages to fn(sink, ...)
// (without one, a unit that yields a PARTIAL fails with SL_EINVAL).
void exec_set_partial(void *ctx, proto_partial_fn fn, void *sink);
// Matches coord_exec_fn (ctx = the job_exec). stats: PROTO_N_STATS accumulators.
// One unit start to end (the one-rank run): pushes it and advances until its
// RESULT is ready; SL_EINVAL while the scheduler holds other units.
int exec_unit(void *ctx, const void *work, size_t work_len, proto_buf *result, double *stats,
              sl_err *err);

// The worker's loop (worker.c). exec_push copies and parses one WORK message
// (SL_EFORMAT as proto_work_parse; SL_EINVAL when EXEC_HELD units are held).
int exec_push(job_exec *x, const void *work, size_t work_len, sl_err *err);
int exec_held(const job_exec *x); // units pushed whose RESULT was not yet returned
// One piece of work: the RESULT of a unit whose outcomes are all known (then
// *ready = PROTO_RESULT and result holds it; at most one per call), or a PARTIAL
// (*ready = PROTO_PARTIAL: segments of a long item, in order, with its mark), else the front half of
// one utterance when a decoding slot is free, else one decoder step. Nothing
// to do (no units, or all waiting for nothing) returns SL_OK, *ready = 0.
int exec_advance(job_exec *x, proto_buf *result, int *ready, double *stats, sl_err *err);
// The unit the next exec_advance works for (the crash note's wid): the unit
// being finished or tokenised, else, for a decoder step that serves several
// units, the oldest held one. 0 when nothing is held.
uint32_t exec_next_wid(job_exec *x);
