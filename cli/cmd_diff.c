// cli/cmd_diff.c — `spearlabel diff OLD_DB NEW_DB`: how the text of two
// datasets over the same utterances differs (typically before and after
// `regenerate` with a new model).
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "storage/row.h"
#include "storage/store.h"

static const char HELP[] =
    "usage: spearlabel diff OLD_DB NEW_DB\n\n"
    "Compares every row of NEW_DB with the row of the same id in OLD_DB: how many\n"
    "rows' text changed, how many have different semantic ids, the mean text length\n"
    "and mean score (sum of log-probabilities) in each and the change, the flags\n"
    "(max length reached, loops) in each, and the ids present in only one of them.\n"
    "Both datasets are only read.\n\n"
    "Options:\n"
    "  -h, --help   this text\n";

typedef struct side {
    double text_len, score;
    size_t maxlen, loop;
} side;

static void add(side *s, const rec_header *h)
{
    s->text_len += h->n_text;
    s->score += (double)h->score;
    s->maxlen += (h->flags & REC_FLAG_MAXLEN) != 0;
    s->loop += (h->flags & REC_FLAG_LOOP) != 0;
}

int cmd_diff(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(HELP, stdout);
            return SL_EXIT_OK;
        }
        return cli_usage_error("diff", "unknown option '%s'", argv[optind - 1]);
    }
    if (argc - optind != 2)
        return cli_usage_error("diff", "expected two dataset directories");
    const char *old_dir = argv[optind], *new_dir = argv[optind + 1];
    store *o = NULL, *n = NULL;
    store_iter *it = NULL;
    sl_err err;
    store_params sp = store_default_params();
    sp.source = 1; // read without touching either dataset
    if (store_open(&o, old_dir, STORE_READ, sp, &err) ||
        store_open(&n, new_dir, STORE_READ, sp, &err) ||
        store_iter_open(&it, n, STORE_ROWS, &err)) {
        fprintf(stderr, "spearlabel diff: %s\n", err.msg);
        store_iter_close(it);
        store_close(n);
        store_close(o);
        return SL_EXIT_FAIL;
    }
    size_t both = 0, text_changed = 0, sem_changed = 0, only_new = 0, bad = 0;
    side so = {0}, sn = {0};
    const void *k, *v, *ov;
    size_t kn, vn, ovn;
    int rc;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, &err)) == 1) {
        rec_header hn, ho;
        sl_err e;
        if (rec_row_decode(v, vn, &hn, &e)) {
            bad++;
            continue;
        }
        if (store_get(o, STORE_ROWS, k, kn, &ov, &ovn, &e)) {
            only_new++;
            continue;
        }
        if (rec_row_decode(ov, ovn, &ho, &e)) {
            bad++;
            continue;
        }
        both++;
        add(&sn, &hn);
        add(&so, &ho);
        // Body = semantic ids, -1, text ids: compare the two parts separately.
        // Either row may be of format version 1 or 2: each body starts where its version says.
        const unsigned char *bn = (const unsigned char *)v + rec_row_ids_offset(&hn);
        const unsigned char *bo = (const unsigned char *)ov + rec_row_ids_offset(&ho);
        size_t sem_n = 4 * (size_t)hn.n_semantic, sem_o = 4 * (size_t)ho.n_semantic;
        sem_changed += sem_n != sem_o || memcmp(bn, bo, sem_n) != 0;
        text_changed += hn.n_text != ho.n_text ||
                        memcmp(bn + sem_n + 4, bo + sem_o + 4, 4 * (size_t)hn.n_text) != 0;
    }
    store_iter_close(it);
    size_t n_old = 0, n_new = 0, e_old = 0, e_new = 0;
    if (rc == 0)
        rc = store_count(o, STORE_ROWS, &n_old, &err) || store_count(n, STORE_ROWS, &n_new, &err) ||
             store_count(o, STORE_ERRORS, &e_old, &err) ||
             store_count(n, STORE_ERRORS, &e_new, &err);
    store_close(n);
    store_close(o);
    if (rc) {
        fprintf(stderr, "spearlabel diff: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    double d = both ? (double)both : 1.0;
    printf("rows compared:      %zu (old %zu rows / %zu errors, new %zu rows / %zu errors)\n", both,
           n_old, e_old, n_new, e_new);
    printf("only in new:        %zu\n", only_new);
    printf("only in old:        %zu\n", n_old - both);
    printf("text changed:       %zu (%.1f%%)\n", text_changed, 100.0 * (double)text_changed / d);
    printf("semantic changed:   %zu\n", sem_changed);
    printf("mean text length:   old %.2f, new %.2f (%+.2f)\n", so.text_len / d, sn.text_len / d,
           (sn.text_len - so.text_len) / d);
    printf("mean score:         old %.4f, new %.4f (%+.4f)\n", so.score / d, sn.score / d,
           (sn.score - so.score) / d);
    printf("max-length rows:    old %zu, new %zu\n", so.maxlen, sn.maxlen);
    printf("loop rows:          old %zu, new %zu\n", so.loop, sn.loop);
    if (bad)
        printf("damaged rows:       %zu (run 'spearlabel verify')\n", bad);
    return SL_EXIT_OK;
}
