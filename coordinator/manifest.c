// coordinator/manifest.c — see manifest.h.
#define _XOPEN_SOURCE 700 // nftw
#include "coordinator/manifest.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/json.h"
#include "storage/segkey.h"

typedef struct builder {
    man_item *items;
    size_t n, cap;
} builder;

static int add_item(builder *b, const char *id, size_t id_len, const char *path,
                    int64_t n_samples, const char *bad, size_t line, sl_err *err);

// A piece [start, end) of the file at path whose whole-file id is src[0..src_len): its id
// is the segment key (storage/segkey.h), n_samples its length.
static int add_piece(builder *b, const char *src, size_t src_len, const char *path,
                     int64_t start, int64_t end, size_t line, sl_err *err)
{
    char *key = malloc(src_len + SEG_KEY_SUFFIX_BYTES + 1);
    if (!key)
        return sl_fail(err, SL_ENOMEM, "manifest: out of memory");
    size_t kl = seg_key_format(src, src_len, (uint64_t)start, (uint64_t)end, key,
                               src_len + SEG_KEY_SUFFIX_BYTES + 1);
    assert(kl > 0); // the caller checked the bounds
    int rc = add_item(b, key, kl, path, end - start, NULL, line, err);
    free(key);
    if (rc == SL_OK) {
        b->items[b->n - 1].start = start;
        b->items[b->n - 1].end = end;
    }
    return rc;
}

static int add_item(builder *b, const char *id, size_t id_len, const char *path,
                    int64_t n_samples, const char *bad, size_t line, sl_err *err)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        man_item *n = realloc(b->items, cap * sizeof *n);
        if (!n)
            return sl_fail(err, SL_ENOMEM, "manifest: out of memory");
        b->items = n;
        b->cap = cap;
    }
    man_item *it = &b->items[b->n];
    memset(it, 0, sizeof *it);
    it->id = strndup(id, id_len);
    it->path = strdup(path);
    it->bad = bad ? strdup(bad) : NULL;
    it->n_samples = n_samples;
    it->line = line;
    if (!it->id || !it->path || (bad && !it->bad)) {
        free(it->id);
        free(it->path);
        free(it->bad);
        return sl_fail(err, SL_ENOMEM, "manifest: out of memory");
    }
    b->n++;
    return SL_OK;
}

static int cmp_id(const void *a, const void *b)
{
    const man_item *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line; // stable: first occurrence wins
}

static void item_free(man_item *it)
{
    free(it->id);
    free(it->path);
    free(it->bad);
}

// Sorts and drops duplicate ids (reporting each once).
static void finish(builder *b, manifest *m, const char *src)
{
    if (b->n > 1) // an empty manifest has items == NULL: qsort(NULL, 0) is undefined (fuzz)
        qsort(b->items, b->n, sizeof *b->items, cmp_id);
    size_t w = 0;
    int reported = 0; // the current id's duplicates were already reported
    for (size_t r = 0; r < b->n; r++) {
        if (w > 0 && strcmp(b->items[w - 1].id, b->items[r].id) == 0) {
            if (!reported)
                SL_LOG(WARN, "manifest", "%s: id \"%s\" appears more than once (lines %zu and "
                       "%zu): processed once", src, b->items[r].id, b->items[w - 1].line,
                       b->items[r].line);
            reported = 1;
            m->n_duplicates++;
            item_free(&b->items[r]);
            continue;
        }
        reported = 0;
        b->items[w++] = b->items[r];
    }
    m->items = b->items;
    m->n = w;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}


// Seconds (offset, offset + duration) to 16 kHz samples, rounded to the nearest; NULL
// when the piece is usable, else why not (into why[cap]).
static const char *piece_bounds(double offset, double duration, int64_t *start, int64_t *end,
                                char *why, size_t cap)
{
    if (!isfinite(offset) || offset < 0) {
        snprintf(why, cap, "offset %g is negative", offset);
        return why;
    }
    if (!isfinite(duration) || duration <= 0) {
        snprintf(why, cap, "duration %g is not positive", duration);
        return why;
    }
    double s = floor(offset * MAN_PIECE_HZ + 0.5), e = floor((offset + duration) * MAN_PIECE_HZ + 0.5);
    char probe[SEG_KEY_SUFFIX_BYTES + 2];
    if (e <= s || e > 9e15 ||
        !seg_key_format("x", 1, (uint64_t)s, (uint64_t)e, probe, sizeof probe)) {
        snprintf(why, cap, "piece %g-%g s is empty or past 99999.999 s", offset,
                 offset + duration);
        return why;
    }
    *start = (int64_t)s;
    *end = (int64_t)e;
    return NULL;
}

// A number with nothing after it ("1.5", "12"): 1 and *out; anything else 0.
static int parse_seconds(const char *t, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(t, &e);
    if (e == t || errno || *e != '\0')
        return 0;
    *out = v;
    return 1;
}

// An error item for a manifest line that cannot be used; msg names the manifest and the
// line. Its id: the whole-file id when the line names one (src), else "<manifest file
// name>:<line>" (a line with no usable path).
static int add_bad_line(builder *b, manifest *out, const char *path, size_t line_no,
                        const char *src, const char *msg, sl_err *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char id[600];
    if (src)
        snprintf(id, sizeof id, "%.500s@line %zu", src, line_no);
    else
        snprintf(id, sizeof id, "%.500s:%zu", base, line_no);
    SL_LOG(WARN, "manifest", "%s", msg);
    out->n_bad_lines++;
    return add_item(b, id, strlen(id), "", -1, msg, line_no, err);
}

// One NeMo JSON line: {"audio_filepath": ..., "offset": s, "duration": s, ...}.
static int nemo_line(builder *b, manifest *out, const char *root, const char *path,
                     const char *line, size_t len, size_t line_no, sl_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    char why[512], msg[1024], full[8192], lead[64];
    snprintf(lead, sizeof lead, "line %zu: ", line_no);
    sl_json_src src = {"manifest", path, lead};
    const char *ap = NULL;
    double offset = 0, duration = 0;
    int has_duration = 0, bad = 1;
    sl_err je2;
    json_t *a = o && json_is_object(o) ? json_object_get(o, "audio_filepath") : NULL;
    if (!o || !json_is_object(o)) {
        snprintf(msg, sizeof msg, "manifest %s line %zu: not a JSON object: %s", path, line_no,
                 o ? "another JSON value" : je.text);
    } else if (!a || !json_is_string(a) || json_string_length(a) == 0 ||
               strlen(json_string_value(a)) != json_string_length(a)) {
        snprintf(msg, sizeof msg, "manifest %s line %zu: \"audio_filepath\" is %s", path,
                 line_no, !a ? "missing" : json_is_string(a) ? "empty or holds a NUL"
                                                             : "not a string");
    } else if (sl_json_number(&src, o, "offset", 0.0, &offset, &je2) ||
               sl_json_number(&src, o, "duration", 0.0, &duration, &je2)) {
        ap = json_string_value(a);
        snprintf(msg, sizeof msg, "%s", je2.msg);
    } else {
        ap = json_string_value(a);
        json_t *d = json_object_get(o, "duration"), *f = json_object_get(o, "offset");
        has_duration = d && !json_is_null(d);
        // A piece is a line with an "offset" (0 is fine): NeMo's manifests of whole
        // utterances give every line a "duration" and no offset, and those stay whole
        // files (their duration only sizes the units).
        int piece = f && !json_is_null(f);
        int64_t start = 0, end = 0;
        if (piece && !has_duration)
            snprintf(msg, sizeof msg, "manifest %s line %zu: \"offset\" %g without a "
                     "\"duration\"", path, line_no, offset);
        else if (piece && piece_bounds(offset, duration, &start, &end, why, sizeof why))
            snprintf(msg, sizeof msg, "manifest %s line %zu: %s", path, line_no, why);
        else
            bad = 0;
        if (!bad && !piece) // the whole file; a usable duration is its sample count
            end = has_duration && isfinite(duration) && duration > 0 && duration < 1e9
                      ? (int64_t)floor(duration * MAN_PIECE_HZ + 0.5)
                      : -1;
        has_duration = piece;
        if (!bad) {
            if (ap[0] != '/')
                snprintf(full, sizeof full, "%s/%s", root, ap);
            else
                snprintf(full, sizeof full, "%s", ap);
            int rc = has_duration ? add_piece(b, ap, strlen(ap), full, start, end, line_no, err)
                                  : add_item(b, ap, strlen(ap), full, end, NULL, line_no, err);
            json_decref(o);
            return rc;
        }
    }
    int rc = add_bad_line(b, out, path, line_no, ap, msg, err);
    json_decref(o);
    return rc;
}

int man_load(const char *path, manifest *out, sl_err *err)
{
    memset(out, 0, sizeof *out);
    char *text;
    size_t n;
    int rc = sl_read_file(path, (size_t)1 << 34, (void **)&text, &n, err);
    if (rc)
        return sl_err_prefix(err, "manifest");
    rc = man_parse(text, n, path, out, err);
    free(text);
    return rc;
}

int man_parse(const char *src, size_t n, const char *path, manifest *out, sl_err *err)
{
    memset(out, 0, sizeof *out);
    // Lines are cut in place: work on a NUL-terminated copy (the last line may
    // have no newline, so its terminator needs the extra byte).
    char *text = malloc(n + 1);
    if (!text)
        return sl_fail(err, SL_ENOMEM, "manifest: %s: out of memory for %zu bytes", path, n);
    if (n)
        memcpy(text, src, n);
    text[n] = '\0';
    int rc;
    builder b = {0};
    char *root = NULL;
    int tsv = 0, json = -1;
    size_t line_no = 0;
    char *p = text, *end = text + n;
    char full[8192];
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line_no++;
        size_t len = (size_t)(le - p);
        if (len && p[len - 1] == '\r')
            len--;
        p[len] = '\0';
        char *line = p;
        p = nl ? nl + 1 : end;
        if (line_no == 1) {
            if (len && is_dir(line)) {
                tsv = 1;
                root = strdup(line);
                continue;
            }
            root = dir_of(path);
        }
        if (len == 0)
            continue;
        if (memchr(line, '\0', len)) {
            SL_LOG(WARN, "manifest", "%s:%zu: line holds a NUL byte: skipped", path, line_no);
            out->n_bad_lines++;
            continue;
        }
        if (!tsv && json < 0) { // the first non-blank line decides: '{' = NeMo JSON lines
            size_t k = strspn(line, " \t");
            json = k < len && line[k] == '{';
        }
        if (json > 0) {
            if (strspn(line, " \t") == len)
                continue;
            if ((rc = nemo_line(&b, out, root, path, line, len, line_no, err)))
                goto fail;
            continue;
        }
        char *tab = strchr(line, '\t');
        int64_t count = -1;
        const char *bad = NULL;
        char badbuf[256];
        size_t id_len = tab ? (size_t)(tab - line) : len;
        int64_t p_start = 0, p_end = 0; // a piece: tsv `start end` columns (seconds)
        char *cols = tab ? strchr(tab + 1, '\t') : NULL;
        if (cols && tsv) {
            *cols++ = '\0';
            char *t2 = strchr(cols, '\t');
            double a, d;
            char why[200];
            if (t2)
                *t2++ = '\0';
            if (!t2 || strchr(t2, '\t') || !parse_seconds(cols, &a) || !parse_seconds(t2, &d)) {
                snprintf(badbuf, sizeof badbuf, "manifest %s line %zu: bad piece columns (want "
                         "`start end` in seconds after the sample count)", path, line_no);
                bad = badbuf;
            } else if (d <= a) {
                snprintf(badbuf, sizeof badbuf, "manifest %s line %zu: piece ends at %g s, not "
                         "after its start %g s", path, line_no, d, a);
                bad = badbuf;
            } else if (piece_bounds(a, d - a, &p_start, &p_end, why, sizeof why)) {
                snprintf(badbuf, sizeof badbuf, "manifest %s line %zu: %s", path, line_no, why);
                bad = badbuf;
            }
            if (bad) {
                line[id_len] = '\0';
                if ((rc = add_bad_line(&b, out, path, line_no, id_len ? line : NULL, bad, err)))
                    goto fail;
                continue;
            }
        }
        if (tab) {
            char *cnt = tab + 1;
            char *e2;
            errno = 0;
            long long v = strtoll(cnt, &e2, 10);
            while (*e2 == ' ' || *e2 == '\t')
                e2++;
            if (*cnt == '\0') {
                count = -1;
            } else if (errno || *e2 != '\0' || v < 0) {
                snprintf(badbuf, sizeof badbuf, "manifest %s line %zu: bad sample count \"%.60s\"",
                         path, line_no, cnt);
                bad = badbuf;
                out->n_bad_lines++;
                SL_LOG(WARN, "manifest", "%s", badbuf);
            } else {
                count = v;
            }
        }
        if (id_len == 0) {
            SL_LOG(WARN, "manifest", "%s:%zu: empty path: skipped", path, line_no);
            out->n_bad_lines++;
            continue;
        }
        line[id_len] = '\0';
        if (tsv || line[0] != '/')
            snprintf(full, sizeof full, "%s/%s", root, line);
        else
            snprintf(full, sizeof full, "%s", line);
        if (p_end > 0 && !bad)
            rc = add_piece(&b, line, id_len, full, p_start, p_end, line_no, err);
        else
            rc = add_item(&b, line, id_len, full, count, bad, line_no, err);
        if (rc)
            goto fail;
    }
    free(text);
    text = NULL;
    out->root = root ? root : strdup("");
    finish(&b, out, path);
    if (out->n_duplicates)
        SL_LOG(WARN, "manifest", "%s: %zu duplicate ids ignored", path, out->n_duplicates);
    return SL_OK;
fail:
    free(text);
    free(root);
    for (size_t i = 0; i < b.n; i++)
        item_free(&b.items[i]);
    free(b.items);
    return rc;
}

// nftw has no user pointer: the walk state lives here for the duration of one man_walk.
static struct {
    builder *b;
    const char *exts;
    size_t root_len;
    sl_err *err;
    int rc;
    size_t n_bad;
} g_walk;

static int ext_ok(const char *name, const char *exts)
{
    const char *dot = strrchr(name, '.');
    if (!dot || strchr(dot, '/'))
        return 0;
    dot++;
    size_t dl = strlen(dot);
    const char *e = exts;
    while (*e) {
        const char *c = strchr(e, ',');
        size_t el = c ? (size_t)(c - e) : strlen(e);
        if (el == dl && strncasecmp(e, dot, el) == 0)
            return 1;
        if (!c)
            break;
        e = c + 1;
    }
    return 0;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISFIFO(m) ? "a fifo"
           : S_ISSOCK(m) ? "a socket"
                         : "not a file";
}

// Why an entry named like audio cannot be opened as a file, into why[0..cap);
// 0 when it is a regular file or a link to one.
static int entry_problem(const char *fpath, const struct stat *sb, int type, char *why,
                         size_t cap)
{
    struct stat st;
    if (type == FTW_F) { // FTW_PHYS: anything but a directory or a symbolic link
        if (S_ISREG(sb->st_mode))
            return 0;
        snprintf(why, cap, "not a regular file (%s)", file_kind(sb->st_mode));
        return 1;
    }
    if (type == FTW_D || type == FTW_DNR || type == FTW_DP) {
        snprintf(why, cap, "not a regular file (a directory)");
        return 1;
    }
    if (type == FTW_NS) { // lstat failed: ask again for the reason
        int e = lstat(fpath, &st) == 0 ? 0 : errno;
        snprintf(why, cap, "cannot stat: %s", e ? strerror(e) : "unknown reason");
        return 1;
    }
    // FTW_SL (FTW_SLN cannot happen under FTW_PHYS): follow it to what it names.
    if (stat(fpath, &st) == 0) {
        if (S_ISREG(st.st_mode))
            return 0;
        snprintf(why, cap, "not a regular file (a link to %s)", file_kind(st.st_mode));
        return 1;
    }
    int e = errno;
    if (e == ELOOP) {
        snprintf(why, cap, "link loop (%s)", strerror(e));
    } else if (e == ENOENT || e == ENOTDIR) {
        char to[1024];
        ssize_t n = readlink(fpath, to, sizeof to - 1);
        to[n > 0 ? n : 0] = '\0';
        snprintf(why, cap, "dangling link (to \"%.300s\": %s)", to, strerror(e));
    } else {
        snprintf(why, cap, "cannot follow link: %s", strerror(e));
    }
    return 1;
}

// Every entry below the root whose name has an audio extension becomes an item:
// a regular file or a link to one to be decoded, anything else an input-stage
// error item naming the problem, so rows + errors balance with a listing of the
// directory. Directories are walked whatever their name; links are never walked.
static int walk_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
    if (type == FTW_DNR)
        SL_LOG(WARN, "manifest", "%s: cannot read directory: skipped", fpath);
    if (ftw->level == 0 || !ext_ok(fpath, g_walk.exts)) // the root itself is no item
        return 0;
    const char *rel = fpath + g_walk.root_len;
    while (*rel == '/')
        rel++;
    char why[400], bad[1024];
    const char *msg = NULL;
    if (entry_problem(fpath, sb, type, why, sizeof why)) {
        snprintf(bad, sizeof bad, "--audio-dir: %.600s: %s", fpath, why);
        SL_LOG(WARN, "manifest", "%s", bad);
        msg = bad;
        g_walk.n_bad++;
    }
    g_walk.rc = add_item(g_walk.b, rel, strlen(rel), fpath, -1, msg, 0, g_walk.err);
    return g_walk.rc ? 1 : 0;
}

int man_walk(const char *dir, const char *exts, manifest *out, sl_err *err)
{
    memset(out, 0, sizeof *out);
    if (!is_dir(dir))
        return sl_fail(err, SL_EIO, "manifest: --audio-dir %s: not a directory", dir);
    builder b = {0};
    g_walk.b = &b;
    g_walk.exts = exts && *exts ? exts : MAN_DEFAULT_EXTS;
    g_walk.root_len = strlen(dir);
    g_walk.err = err;
    g_walk.rc = SL_OK;
    g_walk.n_bad = 0;
    if (nftw(dir, walk_cb, 64, FTW_PHYS) != 0 || g_walk.rc) {
        int rc = g_walk.rc ? g_walk.rc
                           : sl_fail(err, SL_EIO, "manifest: walk %s: %s", dir, strerror(errno));
        for (size_t i = 0; i < b.n; i++)
            item_free(&b.items[i]);
        free(b.items);
        return rc;
    }
    out->root = strdup(dir);
    out->n_bad_lines = g_walk.n_bad;
    finish(&b, out, dir);
    return SL_OK;
}

void man_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        item_free(&m->items[i]);
    free(m->items);
    free(m->root);
    memset(m, 0, sizeof *m);
}
