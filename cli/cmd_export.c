// cli/cmd_export.c — `spearlabel export DB`: stream rows or errors, one line
// each, in key order, in constant memory (one cursor, one reused id buffer; with
// --vocab, plus the vocabulary, loaded once). Quality filters and signals come
// from storage/quality.h, computed from each row's header.
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "storage/quality.h"
#include "storage/row.h"
#include "storage/store.h"

static const char HELP[] =
    "usage: spearlabel export DB [--format jsonl|tsv] [--errors] [--out FILE]\n"
    "         [--vocab FILE [--vocab-sep SEP]] [--quality]\n"
    "         [--default-filter] [--min-score-per-token X] [--min-rate R] [--max-rate R]\n"
    "         [--no-flagged]\n\n"
    "Streams the rows of the dataset DB in key order, one line each:\n"
    "  jsonl: {\"id\": ..., \"semantic\": [...], \"text\": [...], \"duration\": s,\n"
    "          \"score\": x, \"flags\": n, \"source\": ..., \"start\": s, \"end\": s}\n"
    "  tsv:   id <TAB> semantic ids <TAB> text ids <TAB> duration <TAB> score <TAB> flags\n"
    "         [<TAB> --vocab text] [<TAB> --quality columns]\n"
    "         <TAB> source <TAB> start <TAB> end\n"
    "         (ids space-separated; ids holding a tab or newline are escaped as \\t, \\n)\n"
    "source is the id of the audio file the row came from (the row's own id for a\n"
    "whole file; a segment's id is source@SSSSS.sss-EEEEE.eee), start and end the\n"
    "row's audio in it in seconds, exact to the 16 kHz sample (7 decimals). Rows of\n"
    "format version 1 (written before segments) are whole files: start 0, end their\n"
    "duration rounded to the sample.\n"
    "With --errors, streams the error records instead:\n"
    "  jsonl: {\"id\": ..., \"stage\": ..., \"code\": ..., \"attempts\": n, \"message\": ...}\n"
    "  tsv:   id <TAB> stage <TAB> code <TAB> attempts <TAB> message\n\n"
    "Options:\n"
    "  --format F   jsonl (default) or tsv\n"
    "  --errors     export the errors table instead of the rows\n"
    "  --out FILE   write to FILE instead of standard output\n"
    "  --vocab FILE also render the text ids as text: jsonl gets \"text_str\", tsv a\n"
    "               column after flags. FILE: one token per line (id = line number\n"
    "               from 0; a trailing \\r is dropped), or, if its name ends in\n"
    "               .json, a JSON array (element i = text of id i) or {\"token\": id}\n"
    "               object. Ids the vocabulary lacks (an EOS in --seed-layout rows)\n"
    "               print as <id> and are counted on stderr.\n"
    "  --vocab-sep SEP  put SEP between tokens (default: none, for character or\n"
    "               subword pieces; \" \" for a word vocabulary)\n"
    "  -h, --help   this text\n\n"
    "Quality (docs/QUALITY.md; computed from each row's header, so old datasets too):\n"
    "  --quality    add the signals: jsonl gets \"score_per_token\", \"text_per_second\",\n"
    "               \"semantic_per_text\", \"quality_flags\"; tsv four columns in that\n"
    "               order before source, start, end. quality_flags: 1 max length,\n"
    "               2 loop, 8 text rate above --max-rate, 16 below --min-rate\n"
    "               (bounds 4 and 30 unless given)\n"
    "  --min-score-per-token X  drop rows whose score / scored tokens is below X\n"
    "               (nats; the text EOS counts as a token when it was reached)\n"
    "  --min-rate R, --max-rate R  drop rows with fewer / more text tokens per\n"
    "               second of audio (defaults of the rate flags: 4 and 30, characters)\n"
    "  --no-flagged drop rows with any quality flag (max length, loop, rate)\n"
    "  --default-filter  the recommended filter: --min-score-per-token -0.2\n"
    "               --min-rate 4 --max-rate 30 --no-flagged (options given override)\n"
    "With a filter, stderr gets how many rows were kept and dropped, and why.\n";

// JSON string body: escapes quote, backslash and control characters; other
// bytes (UTF-8) pass through.
static void put_json_body(FILE *f, const char *s, size_t n)
{
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
}

static void put_json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    put_json_body(f, s, n);
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

// --vocab: id -> token bytes. tok[i] == NULL when the vocabulary has no id i.
typedef struct vocab {
    char **tok;   // (n): malloc'd tokens, not NUL-terminated
    size_t *len;  // (n)
    size_t n;
    const char *sep;
    size_t n_missing; // text ids rendered as <id>
} vocab;

#define VOCAB_MAX_IDS 10000000u

static void vocab_free(vocab *v)
{
    for (size_t i = 0; v->tok && i < v->n; i++)
        free(v->tok[i]);
    free(v->tok);
    free(v->len);
    v->tok = NULL;
    v->len = NULL;
    v->n = 0;
}

static int vocab_alloc(vocab *v, size_t n, const char *path, sl_err *err)
{
    v->n = n;
    v->tok = calloc(n ? n : 1, sizeof *v->tok);
    v->len = calloc(n ? n : 1, sizeof *v->len);
    if (!v->tok || !v->len)
        return sl_fail(err, SL_ENOMEM, "export: %s: out of memory for %zu tokens", path, n);
    return SL_OK;
}

static int vocab_set(vocab *v, size_t id, const char *s, size_t n, const char *path, sl_err *err)
{
    if (!(v->tok[id] = malloc(n ? n : 1)))
        return sl_fail(err, SL_ENOMEM, "export: %s: out of memory", path);
    memcpy(v->tok[id], s, n);
    v->len[id] = n;
    return SL_OK;
}

static int vocab_load_json(vocab *v, const char *path, const char *buf, size_t n, sl_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(buf, n, JSON_ALLOW_NUL, &je);
    if (!root)
        return sl_fail(err, SL_EFORMAT, "export: %s: %s (line %d)", path, je.text, je.line);
    int rc = SL_OK;
    if (json_is_array(root)) {
        if ((rc = vocab_alloc(v, json_array_size(root), path, err)))
            goto done;
        for (size_t i = 0; i < v->n && !rc; i++) {
            json_t *e = json_array_get(root, i);
            if (!json_is_string(e))
                rc = sl_fail(err, SL_EFORMAT, "export: %s: element %zu is not a string", path, i);
            else
                rc = vocab_set(v, i, json_string_value(e), json_string_length(e), path, err);
        }
    } else if (json_is_object(root)) {
        const char *k;
        json_t *e;
        size_t max = 0;
        json_object_foreach(root, k, e) {
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) >= (json_int_t)VOCAB_MAX_IDS) {
                rc = sl_fail(err, SL_EFORMAT, "export: %s: token \"%.100s\": id is not an "
                             "integer in [0, %u)", path, k, VOCAB_MAX_IDS);
                goto done;
            }
            if ((size_t)json_integer_value(e) + 1 > max)
                max = (size_t)json_integer_value(e) + 1;
        }
        if ((rc = vocab_alloc(v, max, path, err)))
            goto done;
        json_object_foreach(root, k, e) {
            size_t id = (size_t)json_integer_value(e);
            if (v->tok[id]) {
                rc = sl_fail(err, SL_EFORMAT, "export: %s: id %zu given to two tokens", path, id);
                goto done;
            }
            if ((rc = vocab_set(v, id, k, strlen(k), path, err)))
                goto done;
        }
    } else {
        rc = sl_fail(err, SL_EFORMAT, "export: %s: expected a JSON array of token strings or an "
                     "object {token: id}", path);
    }
done:
    json_decref(root);
    return rc;
}

static int vocab_load(vocab *v, const char *path, sl_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_fail(err, SL_EIO, "export: vocab %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = SL_OK;
    for (;;) {
        if (n == cap) {
            char *nb = cap < (256u << 20) ? realloc(buf, cap ? 2 * cap : 1 << 16) : NULL;
            if (!nb) {
                rc = sl_fail(err, SL_ENOMEM, "export: vocab %s: too large (over 256 MiB) or out "
                             "of memory", path);
                goto done;
            }
            buf = nb;
            cap = cap ? 2 * cap : 1 << 16;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = sl_fail(err, SL_EIO, "export: vocab %s: read error", path);
        goto done;
    }
    size_t pl = strlen(path);
    if (pl >= 5 && !strcmp(path + pl - 5, ".json")) {
        rc = vocab_load_json(v, path, buf, n, err);
        goto done;
    }
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    if (n && buf[n - 1] != '\n')
        lines++; // last line without a newline
    if (lines > VOCAB_MAX_IDS) {
        rc = sl_fail(err, SL_EFORMAT, "export: vocab %s: more than %u lines", path, VOCAB_MAX_IDS);
        goto done;
    }
    if ((rc = vocab_alloc(v, lines, path, err)))
        goto done;
    size_t start = 0, id = 0;
    for (size_t i = 0; i <= n && id < lines; i++) {
        if (i < n && buf[i] != '\n')
            continue;
        size_t len = i - start;
        if (len && buf[start + len - 1] == '\r')
            len--;
        if ((rc = vocab_set(v, id++, buf + start, len, path, err)))
            goto done;
        start = i + 1;
    }
done:
    free(buf);
    fclose(f);
    if (rc)
        vocab_free(v);
    return rc;
}

// The text ids of row v rendered through the vocabulary, escaped for the format.
static void put_text(FILE *f, vocab *voc, const void *v, size_t first, size_t n, int tsv)
{
    size_t sep_n = strlen(voc->sep);
    char buf[24];
    for (size_t i = 0; i < n; i++) {
        int32_t id = rec_row_id_at(v, first + i);
        const char *s = buf;
        size_t len;
        if (i && sep_n)
            tsv ? put_tsv_str(f, voc->sep, sep_n) : put_json_body(f, voc->sep, sep_n);
        if (id >= 0 && (size_t)id < voc->n && voc->tok[id]) {
            s = voc->tok[id];
            len = voc->len[id];
        } else {
            len = (size_t)snprintf(buf, sizeof buf, "<%d>", (int)id);
            voc->n_missing++;
        }
        tsv ? put_tsv_str(f, s, len) : put_json_body(f, s, len);
    }
}

// Finite doubles exactly (17 digits read back as the same double); JSON has no NaN.
static void put_double(FILE *f, double x, int tsv)
{
    if (isfinite(x))
        fprintf(f, "%.17g", x);
    else
        fputs(tsv ? "nan" : "null", f);
}

// A 16 kHz sample offset as seconds, exactly: every multiple of 1/16000 s
// (0.0000625) has at most 7 decimals. Integer arithmetic, so no rounding at any length.
_Static_assert(10000000 % REC_HZ == 0, "7 decimals hold every sample");
static void put_seconds(FILE *f, uint64_t samples)
{
    fprintf(f, "%llu.%07llu", (unsigned long long)(samples / REC_HZ),
            (unsigned long long)(samples % REC_HZ * (10000000u / REC_HZ)));
}

// What export_rows keeps, and why it dropped the rest.
typedef struct row_filter {
    rec_filter f;
    int active;      // any filter option given
    int quality;     // --quality: print the signals
    size_t n_seen, n_dropped;
    size_t why[6];   // rows per reason bit: REC_Q_* bits 0, 1, 3, 4 and REC_DROP_SCORE (5)
} row_filter;

static int export_rows(store *s, FILE *f, int tsv, vocab *voc, row_filter *rf, sl_err *err,
                       size_t *n_out)
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
        rec_quality q;
        rec_quality_of(&h, rf->f.q, &q);
        rf->n_seen++;
        unsigned why = rec_filter_check(&rf->f, &q);
        if (why) {
            rf->n_dropped++;
            for (int b = 0; b < 6; b++)
                rf->why[b] += (why >> b) & 1u;
            continue;
        }
        const char *src;
        size_t src_n;
        rec_row_source(&h, k, kn, &src, &src_n);
        if (tsv) {
            put_tsv_str(f, k, kn);
            fputc('\t', f);
            put_ids(f, v, 0, h.n_semantic, " ");
            fputc('\t', f);
            put_ids(f, v, h.n_semantic + 1, h.n_text, " ");
            fprintf(f, "\t%.9g\t%.9g\t%u", (double)h.duration_s, (double)h.score, h.flags);
            if (voc) {
                fputc('\t', f);
                put_text(f, voc, v, h.n_semantic + 1, h.n_text, 1);
            }
            if (rf->quality) {
                fputc('\t', f);
                put_double(f, q.score_per_token, 1);
                fputc('\t', f);
                put_double(f, q.text_per_second, 1);
                fputc('\t', f);
                put_double(f, q.semantic_per_text, 1);
                fprintf(f, "\t%u", q.flags);
            }
            fputc('\t', f);
            put_tsv_str(f, src, src_n);
            fputc('\t', f);
            put_seconds(f, h.start);
            fputc('\t', f);
            put_seconds(f, h.end);
            fputc('\n', f);
        } else {
            fputs("{\"id\": ", f);
            put_json_str(f, k, kn);
            fputs(", \"semantic\": [", f);
            put_ids(f, v, 0, h.n_semantic, ", ");
            fputs("], \"text\": [", f);
            put_ids(f, v, h.n_semantic + 1, h.n_text, ", ");
            fputc(']', f);
            if (voc) {
                fputs(", \"text_str\": \"", f);
                put_text(f, voc, v, h.n_semantic + 1, h.n_text, 0);
                fputc('"', f);
            }
            fprintf(f, ", \"duration\": %.9g, \"score\": %.9g, \"flags\": %u",
                    (double)h.duration_s, (double)h.score, h.flags);
            fputs(", \"source\": ", f);
            put_json_str(f, src, src_n);
            fputs(", \"start\": ", f);
            put_seconds(f, h.start);
            fputs(", \"end\": ", f);
            put_seconds(f, h.end);
            if (rf->quality) {
                fputs(", \"score_per_token\": ", f);
                put_double(f, q.score_per_token, 0);
                fputs(", \"text_per_second\": ", f);
                put_double(f, q.text_per_second, 0);
                fputs(", \"semantic_per_text\": ", f);
                put_double(f, q.semantic_per_text, 0);
                fprintf(f, ", \"quality_flags\": %u", q.flags);
            }
            fputs("}\n", f);
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
            fprintf(f, "\t%s\t%s\t%u\t", sl_stage_name(e.stage), code, e.attempts);
            put_tsv_str(f, e.msg, e.msg_len);
            fputc('\n', f);
        } else {
            fputs("{\"id\": ", f);
            put_json_str(f, k, kn);
            fprintf(f, ", \"stage\": \"%s\", \"code\": \"%s\", \"attempts\": %u, \"message\": ",
                    sl_stage_name(e.stage), code, e.attempts);
            put_json_str(f, e.msg, e.msg_len);
            fputs("}\n", f);
        }
        (*n_out)++;
    }
    store_iter_close(it);
    return rc < 0 ? rc : SL_OK;
}

// "kept K of N rows; dropped D: <reason>: n, ..." on stderr, the reasons the filter has.
static void print_filter_summary(const row_filter *rf)
{
    const rec_filter *f = &rf->f;
    fprintf(stderr, "spearlabel export: kept %zu of %zu rows; dropped %zu",
            rf->n_seen - rf->n_dropped, rf->n_seen, rf->n_dropped);
    const char *sep = ": ";
    if (f->min_score_per_token != -HUGE_VAL) {
        fprintf(stderr, "%sscore per token < %g: %zu", sep, f->min_score_per_token, rf->why[5]);
        sep = ", ";
    }
    if (f->drop_flags & REC_Q_MAXLEN) {
        fprintf(stderr, "%smax length: %zu", sep, rf->why[0]);
        sep = ", ";
    }
    if (f->drop_flags & REC_Q_LOOP) {
        fprintf(stderr, "%sloop: %zu", sep, rf->why[1]);
        sep = ", ";
    }
    if (f->drop_flags & REC_Q_RATE_HIGH) {
        fprintf(stderr, "%stext rate > %g/s: %zu", sep, f->q.max_rate, rf->why[3]);
        sep = ", ";
    }
    if (f->drop_flags & REC_Q_RATE_LOW)
        fprintf(stderr, "%stext rate < %g/s: %zu", sep, f->q.min_rate, rf->why[4]);
    fputs(" (a row counts under each reason it has)\n", stderr);
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                         {"errors", no_argument, 0, 'e'},
                                         {"out", required_argument, 0, 'o'},
                                         {"vocab", required_argument, 0, 'v'},
                                         {"vocab-sep", required_argument, 0, 's'},
                                         {"quality", no_argument, 0, 'Q'},
                                         {"min-score-per-token", required_argument, 0, 'S'},
                                         {"min-rate", required_argument, 0, 'r'},
                                         {"max-rate", required_argument, 0, 'R'},
                                         {"no-flagged", no_argument, 0, 'N'},
                                         {"default-filter", no_argument, 0, 'D'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c, tsv = 0, errors = 0, quality = 0, no_flagged = 0, defaults = 0;
    int have_score = 0, have_min_rate = 0, have_max_rate = 0;
    double min_score = 0, min_rate = 0, max_rate = 0;
    const char *out = NULL, *vocab_path = NULL, *sep = NULL;
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
        case 'v': vocab_path = optarg; break;
        case 's': sep = optarg; break;
        case 'Q': quality = 1; break;
        case 'S':
            if (cli_parse_double(optarg, -1e9, 0.0, &min_score))
                return cli_usage_error("export", "--min-score-per-token must be a number <= 0 "
                                       "(nats per token), not '%s'", optarg);
            have_score = 1;
            break;
        case 'r':
        case 'R':
            if (cli_parse_double(optarg, 0.0, 1e9, c == 'r' ? &min_rate : &max_rate))
                return cli_usage_error("export", "--%s must be a number >= 0 (text tokens per "
                                       "second), not '%s'", c == 'r' ? "min-rate" : "max-rate",
                                       optarg);
            *(c == 'r' ? &have_min_rate : &have_max_rate) = 1;
            break;
        case 'N': no_flagged = 1; break;
        case 'D': defaults = 1; break;
        default: return cli_usage_error("export", "unknown option");
        }
    }
    // Start from no filter or the recommended one; each option given sets its part.
    row_filter rf = {.f = defaults ? rec_filter_default() : rec_filter_none(), .quality = quality};
    rf.active = defaults || have_score || have_min_rate || have_max_rate || no_flagged;
    if (have_score)
        rf.f.min_score_per_token = min_score;
    if (have_min_rate) {
        rf.f.q.min_rate = min_rate;
        rf.f.drop_flags |= REC_Q_RATE_LOW;
    }
    if (have_max_rate) {
        rf.f.q.max_rate = max_rate;
        rf.f.drop_flags |= REC_Q_RATE_HIGH;
    }
    if (no_flagged)
        rf.f.drop_flags |= REC_Q_ALL;
    if (rf.f.q.min_rate > rf.f.q.max_rate)
        return cli_usage_error("export", "--min-rate %g is above --max-rate %g (4 and 30 unless "
                               "given)", rf.f.q.min_rate, rf.f.q.max_rate);
    if (argc - optind != 1)
        return cli_usage_error("export", "expected one dataset directory");
    if (sep && !vocab_path)
        return cli_usage_error("export", "--vocab-sep needs --vocab");
    if (vocab_path && errors)
        return cli_usage_error("export", "--vocab renders rows; it does not go with --errors");
    if ((rf.active || quality) && errors)
        return cli_usage_error("export", "quality filters and --quality are about rows; they do "
                               "not go with --errors");
    const char *dir = argv[optind];
    store *s;
    sl_err err;
    vocab voc = {.sep = sep ? sep : ""};
    if (vocab_path && vocab_load(&voc, vocab_path, &err)) {
        fprintf(stderr, "spearlabel export: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    if (store_open(&s, dir, STORE_READ, store_default_params(), &err)) {
        fprintf(stderr, "spearlabel export: %s\n", err.msg);
        vocab_free(&voc);
        return SL_EXIT_FAIL;
    }
    FILE *f = stdout;
    if (out && !(f = fopen(out, "w"))) {
        perror(out);
        store_close(s);
        vocab_free(&voc);
        return SL_EXIT_FAIL;
    }
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    size_t n = 0;
    int rc = errors ? export_errors(s, f, tsv, &err, &n)
                    : export_rows(s, f, tsv, vocab_path ? &voc : NULL, &rf, &err, &n);
    store_close(s);
    vocab_free(&voc);
    if (voc.n_missing)
        fprintf(stderr, "spearlabel export: %zu text ids are not in the vocabulary %s (printed "
                "as <id>)\n", voc.n_missing, vocab_path);
    int werr = fflush(f) != 0 || ferror(f);
    if (out)
        werr |= fclose(f) != 0;
    if (rc) {
        fprintf(stderr, "spearlabel export: %s\n", err.msg);
        return SL_EXIT_FAIL;
    }
    if (rf.active)
        print_filter_summary(&rf);
    if (werr) {
        fprintf(stderr, "spearlabel export: write to %s failed\n", out ? out : "stdout");
        return SL_EXIT_FAIL;
    }
    return SL_EXIT_OK;
}
