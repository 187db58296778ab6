// bench/segment_bench.c — what streaming and cutting cost next to HuBERT, and how much
// memory a worker-shaped reader needs against file length.
//
//   segment_bench --audio F [--hubert DIR --layer L] [--threads N] [--reps R] [--max S]
//       Times audio_stream over F (decode + mixdown + resample), seg_push/seg_next over
//       its samples, both together (best of R), then, with --hubert, hubert_forward on
//       every segment the cutter made (one warm-up call first). Prints key=value pairs:
//       audio seconds, stream_s, segment_s, stream_segment_s, hubert_s, share_pct.
//   segment_bench --rss --audio F [--max S]
//       Streams and cuts F the way a worker would: holding only the samples from the
//       last cut on (handed over and dropped segment by segment). Prints audio seconds,
//       segments and this process's peak RSS (VmHWM of /proc/self/status: getrusage's
//       ru_maxrss keeps the high-water mark of the process that exec'd us).
// bench/segment_bench.py drives both (a HuBERT-base-shaped model, espeak-ng speech).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "pipeline/audio.h"
#include "pipeline/audio_stream.h"
#include "pipeline/hubert.h"
#include "pipeline/ops.h"
#include "pipeline/segment.h"

#define BLOCK 16000

static void die(const char *what, const sl_err *e)
{
    fprintf(stderr, "segment_bench: %s: %s\n", what, e->msg);
    exit(1);
}

// Streams path; with keep, appends every sample to *all (grown). Returns the count.
static size_t stream_file(const char *path, float **all, size_t *cap)
{
    audio_stream *s;
    sl_err e;
    if (audio_stream_open(&s, path, audio_stream_default_params(), 0, &e))
        die("open", &e);
    static float buf[BLOCK];
    size_t n = 0, k;
    do {
        if (audio_stream_read(s, buf, BLOCK, &k, &e))
            die("read", &e);
        if (all) {
            if (n + k > *cap) {
                *cap = (n + k) * 2;
                *all = realloc(*all, *cap * sizeof(float));
            }
            memcpy(*all + n, buf, k * sizeof(float));
        }
        n += k;
    } while (k == BLOCK);
    audio_stream_close(s);
    return n;
}

static size_t cut(seg_params p, const float *x, size_t n, seg_span *out, size_t cap)
{
    seg_cutter *c;
    sl_err e;
    if (seg_open(&c, p, 0, &e))
        die("segment", &e);
    size_t k = 0;
    seg_span s;
    for (size_t i = 0; i < n; i += BLOCK) {
        if (seg_push(c, x + i, n - i < BLOCK ? n - i : BLOCK, &e))
            die("segment", &e);
        while (seg_next(c, &s))
            if (k < cap)
                out[k++] = s;
    }
    seg_finish(c);
    while (seg_next(c, &s))
        if (k < cap)
            out[k++] = s;
    seg_close(c);
    return k;
}

// The worker's shape: stream + cut, holding samples from the last cut on only.
static int rss_mode(const char *path, seg_params p)
{
    audio_stream *s;
    seg_cutter *c;
    sl_err e;
    if (audio_stream_open(&s, path, audio_stream_default_params(), 0, &e) ||
        seg_open(&c, p, 0, &e))
        die("open", &e);
    size_t hold_cap = (size_t)((p.max_seconds + p.min_seconds + 2.0f) * 16000.0f) + BLOCK;
    float *hold = malloc(hold_cap * sizeof(float)); // samples [held0, held0 + held_n)
    size_t held_n = 0, k, n_seg = 0, longest_hold = 0;
    int64_t held0 = 0;
    double checksum = 0;
    seg_span sp;
    do {
        if (audio_stream_read(s, hold + held_n, BLOCK, &k, &e) || seg_push(c, hold + held_n, k, &e))
            die("read", &e);
        held_n += k;
        if (k < BLOCK)
            seg_finish(c);
        while (seg_next(c, &sp)) { // "tokenise" the segment, then drop its samples
            for (int64_t i = sp.start; i < sp.end; i += 160)
                checksum += (double)hold[i - held0];
            n_seg++;
        }
        longest_hold = held_n > longest_hold ? held_n : longest_hold;
        size_t drop = (size_t)(seg_pos(c) - held0);
        memmove(hold, hold + drop, (held_n - drop) * sizeof(float));
        held_n -= drop;
        held0 = seg_pos(c);
        if (held_n + BLOCK > hold_cap)
            die("hold", &(sl_err){SL_EINVAL, "more than one window held"});
    } while (k == BLOCK);
    long hwm_kib = -1;
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            hwm_kib = atol(line + 6);
    if (f)
        fclose(f);
    printf("audio_s=%.1f segments=%zu held_max_s=%.2f maxrss_mib=%.1f checksum=%.3f\n",
           (double)audio_stream_tell(s) / 16000.0, n_seg, (double)longest_hold / 16000.0,
           (double)hwm_kib / 1024.0, checksum);
    free(hold);
    seg_close(c);
    audio_stream_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"audio", required_argument, 0, 'a'},
                                         {"hubert", required_argument, 0, 'm'},
                                         {"layer", required_argument, 0, 'l'},
                                         {"threads", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"max", required_argument, 0, 's'},
                                         {"rss", no_argument, 0, 'x'},
                                         {0, 0, 0, 0}};
    const char *audio = NULL, *dir = NULL;
    int layer = 9, threads = 1, reps = 3, rss = 0, ch;
    seg_params p = seg_default_params();
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': audio = optarg; break;
        case 'm': dir = optarg; break;
        case 'l': layer = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 's': p.max_seconds = (float)atof(optarg); break;
        case 'x': rss = 1; break;
        default: fprintf(stderr, "see the comment at the top of bench/segment_bench.c\n"); return 2;
        }
    }
    if (!audio || reps < 1) {
        fprintf(stderr, "usage: segment_bench [--rss] --audio F [--hubert DIR --layer L] "
                        "[--threads N] [--reps R] [--max S]\n");
        return 2;
    }
    if (rss)
        return rss_mode(audio, p);
    float *all = NULL;
    size_t cap = 0, n = stream_file(audio, &all, &cap);
    static seg_span segs[100000];
    size_t n_seg = 0;
    double t_stream = 1e30, t_seg = 1e30, t_both = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = sl_now();
        stream_file(audio, NULL, NULL);
        double t1 = sl_now();
        n_seg = cut(p, all, n, segs, 100000);
        double t2 = sl_now();
        // Together, as a worker does it: each block read is pushed at once.
        audio_stream *s;
        seg_cutter *c;
        sl_err e;
        if (audio_stream_open(&s, audio, audio_stream_default_params(), 0, &e) ||
            seg_open(&c, p, 0, &e))
            die("open", &e);
        static float buf[BLOCK];
        size_t k;
        seg_span sp;
        do {
            if (audio_stream_read(s, buf, BLOCK, &k, &e) || seg_push(c, buf, k, &e))
                die("read", &e);
            while (seg_next(c, &sp))
                ;
        } while (k == BLOCK);
        seg_finish(c);
        while (seg_next(c, &sp))
            ;
        seg_close(c);
        audio_stream_close(s);
        double t3 = sl_now();
        t_stream = t1 - t0 < t_stream ? t1 - t0 : t_stream;
        t_seg = t2 - t1 < t_seg ? t2 - t1 : t_seg;
        t_both = t3 - t2 < t_both ? t3 - t2 : t_both;
    }
    // The worker reads each segment once more, by its range (audio_read_range, what
    // pl_pool_add_file does): that second read is part of the cutting's cost.
    double t_reread = 1e30;
    {
        audio_reader *ar;
        sl_err e;
        audio_params ap = audio_default_params();
        ap.max_seconds = p.max_seconds + 1.0f;
        if (audio_reader_new(&ar, ap, &e))
            die("reader", &e);
        for (int r = 0; r < reps; r++) {
            double t0 = sl_now();
            for (size_t i = 0; i < n_seg; i++) {
                audio_result res;
                if (audio_read_range(ar, audio, segs[i].start, segs[i].end, &res, &e))
                    die("range", &e);
            }
            double t = sl_now() - t0;
            t_reread = t < t_reread ? t : t_reread;
        }
        audio_reader_free(ar);
    }
    double t_hub = 0;
    if (dir) {
        ops_set_threads(threads);
        hubert_model *m;
        hubert_state *hs;
        sl_err e;
        if (hubert_open(&m, dir, &e) || hubert_state_new(&hs, m, &e))
            die("hubert", &e);
        const float *f;
        size_t T, D;
        for (size_t i = 0; i <= n_seg; i++) { // i == 0: warm-up on the first segment
            const seg_span *g = &segs[i ? i - 1 : 0];
            double t0 = sl_now();
            if (hubert_forward(hs, all + g->start, (size_t)(g->end - g->start), layer, 0, &f, &T,
                               &D, &e))
                die("hubert", &e);
            if (i)
                t_hub += sl_now() - t0;
        }
        hubert_state_free(hs);
        hubert_close(m);
    }
    printf("audio_s=%.1f segments=%zu stream_s=%.4f segment_s=%.4f stream_segment_s=%.4f "
           "reread_s=%.4f hubert_s=%.3f share_pct=%.3f worker_share_pct=%.3f threads=%d "
           "core=%s\n", (double)n / 16000.0, n_seg, t_stream, t_seg, t_both, t_reread, t_hub,
           t_hub > 0 ? 100.0 * t_both / t_hub : 0.0,
           t_hub > 0 ? 100.0 * (t_both + t_reread) / t_hub : 0.0, ops_get_threads(),
           ops_blas_corename());
    free(all);
    return 0;
}
