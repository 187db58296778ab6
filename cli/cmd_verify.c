// cli/cmd_verify.c — `spearlabel verify DB`: decode every record, report damage.
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "storage/row.h"
#include "storage/segkey.h"
#include "storage/store.h"

static const char HELP[] =
    "usage: spearlabel verify DB\n\n"
    "Reads every row and error record of the dataset DB and checks each against\n"
    "its header (magic, version, flags, id counts and source length against the\n"
    "value length, the -1 delimiter, no negative id, start <= end, no NUL in the\n"
    "source id), each row against its id (a segment id source@SSSSS.sss-EEEEE.eee\n"
    "needs a row of format 2 whose source is that prefix and whose samples fall in\n"
    "those milliseconds, end > start; a whole-file id a row with no source of its\n"
    "own, starting at 0), and that no id is both a row and an error.\n"
    "Prints one line per damaged record, a summary, and how many rows are whole\n"
    "files, segments, and of row format 1 (bounds derived from the duration).\n\n"
    "Exit status: 0 when every record is sound, 1 on damage or when DB cannot be read.\n\n"
    "Options:\n"
    "  -h, --help   this text\n";

static void report(const char *table, const void *k, size_t kn, const char *msg)
{
    printf("damaged %s \"%.*s\": %s\n", table, (int)(kn > 300 ? 300 : kn), (const char *)k, msg);
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(HELP, stdout);
            return SL_EXIT_OK;
        }
        return cli_usage_error("verify", "unknown option");
    }
    if (argc - optind != 1)
        return cli_usage_error("verify", "expected one dataset directory");
    const char *dir = argv[optind];
    store *s;
    sl_err err;
    if (store_open(&s, dir, STORE_READ, store_default_params(), &err)) {
        fprintf(stderr, "spearlabel verify: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    size_t rows = 0, errors = 0, bad = 0, segments = 0, v1 = 0, bad_rows = 0;
    store_iter *it = NULL;
    int rc = store_iter_open(&it, s, STORE_ROWS, &err);
    const void *k, *v;
    size_t kn, vn;
    while (rc == SL_OK && (rc = store_iter_next(it, &k, &kn, &v, &vn, &err)) == 1) {
        rows++;
        rec_header h;
        sl_err e;
        if (rec_row_decode(v, vn, &h, &e) || rec_row_check_key(&h, k, kn, &e)) {
            report("row", k, kn, e.msg);
            bad++;
            bad_rows++;
        } else {
            segments += seg_key_split(k, kn, NULL) ? 1u : 0u;
            v1 += h.version == 1;
        }
        rc = SL_OK;
    }
    store_iter_close(it);
    it = NULL;
    if (rc == SL_OK)
        rc = store_iter_open(&it, s, STORE_ERRORS, &err);
    while (rc == SL_OK && (rc = store_iter_next(it, &k, &kn, &v, &vn, &err)) == 1) {
        errors++;
        rec_error e;
        sl_err e2;
        const void *rv;
        size_t rn;
        if (rec_error_decode(v, vn, &e, &e2)) {
            report("error", k, kn, e2.msg);
            bad++;
        } else if (store_get(s, STORE_ROWS, k, kn, &rv, &rn, &e2) == SL_OK) {
            report("error", k, kn, "the same id is also stored as a row");
            bad++;
        }
        rc = SL_OK;
    }
    store_iter_close(it);
    store_close(s);
    if (rc < 0) {
        fprintf(stderr, "spearlabel verify: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    printf("%s: %zu rows, %zu errors, %zu damaged\n", dir, rows, errors, bad);
    printf("sound rows: %zu whole files, %zu segments; %zu of row format 1\n",
           rows - bad_rows - segments, segments, v1);
    return bad ? SL_EXIT_FAIL : SL_EXIT_OK;
}
