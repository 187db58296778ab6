// cli/cmd_export.c — `spearlabel export DB`: stream rows or errors, one line
// each, in key order, in constant memory (one cursor, one reused id buffer).
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "storage/row.h"
#include "storage/store.h"

static const char HELP[] =
    "usage: spearlabel export DB [--format jsonl|tsv] [--errors] [--out FILE]\n\n"
    "Streams the rows of the dataset DB in key order, one line each:\n"
    "  jsonl: {\"id\": ..., \"semantic\": [...], \"text\": [...], \"duration\": s,\n"
    "          \"score\": x, \"flags\": n}\n"
    "  tsv:   id <TAB> semantic ids <TAB> text ids <TAB> duration <TAB> score <TAB> flags\n"
    "         (ids space-separated; ids holding a tab or newline are escaped as \\t, \\n)\n"
    "With --errors, streams the error records instead:\n"
    "  jsonl: {\"id\": ..., \"stage\": ..., \"code\": ..., \"attempts\": n, \"message\": ...}\n"
    "  tsv:   id <TAB> stage <TAB> code <TAB> attempts <TAB> message\n\n"
    "Options:\n"
    "  --format F   jsonl (default) or tsv\n"
    "  --errors     export the errors table instead of the rows\n"
    "  --out FILE   write to FILE instead of standard output\n"
    "  -h, --help   this text\n";

// JSON string body: escapes quote, backslash and control characters; other
// bytes (UTF-8) pass through.
static void put_json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

static void put_tsv_str(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\t')
            fputs("\\t", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\\')
            fputs("\\\\", f);
        else
            fputc(c, f);
    }
}

static void put_ids(FILE *f, const void *v, size_t first, size_t n, const char *sep)
{
    char buf[16];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "%d", (int)rec_row_id_at(v, first + i));
        if (i)
            fputs(sep, f);
        fwrite(buf, 1, (size_t)len, f);
    }
}

static int export_rows(store *s, FILE *f, int tsv, sl_err *err, size_t *n_out)
{
    store_iter *it;
    int rc = store_iter_open(&it, s, STORE_ROWS, err);
    if (rc)
        return rc;
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        rec_header h;
        if ((rc = rec_row_decode(v, vn, &h, err))) {
            sl_err_prefix(err, "row \"%.*s\"", (int)(kn > 200 ? 200 : kn), (const char *)k);
            break;
        }
        if (tsv) {
            put_tsv_str(f, k, kn);
            fputc('\t', f);
            put_ids(f, v, 0, h.n_semantic, " ");
            fputc('\t', f);
            put_ids(f, v, h.n_semantic + 1, h.n_text, " ");
            fprintf(f, "\t%.9g\t%.9g\t%u\n", (double)h.duration_s, (double)h.score, h.flags);
        } else {
            fputs("{\"id\": ", f);
            put_json_str(f, k, kn);
            fputs(", \"semantic\": [", f);
            put_ids(f, v, 0, h.n_semantic, ", ");
            fputs("], \"text\": [", f);
            put_ids(f, v, h.n_semantic + 1, h.n_text, ", ");
            fprintf(f, "], \"duration\": %.9g, \"score\": %.9g, \"flags\": %u}\n",
                    (double)h.duration_s, (double)h.score, h.flags);
        }
        (*n_out)++;
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

static int export_errors(store *s, FILE *f, int tsv, sl_err *err, size_t *n_out)
{
    store_iter *it;
    int rc = store_iter_open(&it, s, STORE_ERRORS, err);
    if (rc)
        return rc;
    const void *k, *v;
    size_t kn, vn;
    while ((rc = store_iter_next(it, &k, &kn, &v, &vn, err)) == 1) {
        rec_error e;
        if ((rc = rec_error_decode(v, vn, &e, err))) {
            sl_err_prefix(err, "error \"%.*s\"", (int)(kn > 200 ? 200 : kn), (const char *)k);
            break;
        }
        const char *code = sl_code_name((sl_code)e.code);
        if (tsv) {
            put_tsv_str(f, k, kn);
            fprintf(f, "\t%s\t%s\t%u\t", rec_stage_name(e.stage), code, e.attempts);
            put_tsv_str(f, e.msg, e.msg_len);
            fputc('\n', f);
        } else {
            fputs("{\"id\": ", f);
            put_json_str(f, k, kn);
            fprintf(f, ", \"stage\": \"%s\", \"code\": \"%s\", \"attempts\": %u, \"message\": ",
                    rec_stage_name(e.stage), code, e.attempts);
            put_json_str(f, e.msg, e.msg_len);
            fputs("}\n", f);
        }
        (*n_out)++;
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                         {"errors", no_argument, 0, 'e'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c, tsv = 0, errors = 0;
    const char *out = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case 'f':
            if (!strcmp(optarg, "tsv"))
                tsv = 1;
            else if (strcmp(optarg, "jsonl"))
                return cli_usage_error("export", "--format must be jsonl or tsv, not '%s'", optarg);
            break;
        case 'e': errors = 1; break;
        case 'o': out = optarg; break;
        default: return cli_usage_error("export", "unknown option");
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("export", "expected one dataset directory");
    const char *dir = argv[optind];
    store *s;
    sl_err err;
    if (store_open(&s, dir, STORE_READ, store_default_params(), &err)) {
        fprintf(stderr, "spearlabel export: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    FILE *f = stdout;
    if (out && !(f = fopen(out, "w"))) {
        perror(out);
        store_close(s);
        return SL_EXIT_FAIL;
    }
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    size_t n = 0;
    int rc = errors ? export_errors(s, f, tsv, &err, &n) : export_rows(s, f, tsv, &err, &n);
    store_close(s);
    int werr = fflush(f) != 0 || ferror(f);
    if (out)
        werr |= fclose(f) != 0;
    if (rc) {
        fprintf(stderr, "spearlabel export: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    if (werr) {
        fprintf(stderr, "spearlabel export: write to %s failed\n", out ? out : "stdout");
        return SL_EXIT_FAIL;
    }
    return SL_EXIT_OK;
}
