// storage/store.c — see store.h.
//
// The writer keeps every put of the open batch in a replay log (op, table,
// key, value). LMDB aborts the whole transaction on MDB_MAP_FULL, so growth
// is: abort, mdb_env_set_mapsize(2x), begin, replay the log, redo the put.
// The same happens when the commit itself runs out of map.
#include "storage/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"

enum { OP_PUT_NEW = 0, OP_PUT_OVERWRITE = 1, OP_DEL = 2 };

typedef struct log_entry {
    uint8_t op;
    uint8_t table;
    uint32_t key_len;
    uint32_t val_len;
} log_entry; // followed in the log by key bytes, then value bytes

struct store {
    char *dir;
    store_mode mode;
    store_params p;
    MDB_env *env;
    MDB_dbi dbi[STORE_N_TABLES];
    MDB_txn *wtxn;         // open write batch (writer)
    MDB_txn *rtxn;         // reusable read txn (reader)
    unsigned char *log;    // replay log of the open batch
    size_t log_len, log_cap;
    size_t pending;
    size_t map_bytes;
    unsigned growths;
    int lock_fd;
    int open_iters;
    int inject_put, inject_commit;
    int inject_get;
};

struct store_iter {
    store *s;
    MDB_txn *txn;
    MDB_cursor *cur;
    int positioned; // 1 after a seek: next returns the current entry first
};

static const char *TABLE_NAMES[STORE_N_TABLES] = {"rows", "errors", "meta"};

store_params store_default_params(void)
{
    store_params p = {.initial_map_bytes = 64u << 20, .batch_rows = 4096, .no_sync = 0};
    return p;
}

static int lmdb_fail(sl_err *err, const store *s, const char *what, int rc)
{
    // LMDB turns a short write (disk full) into EIO: say what the filesystem says.
    struct statvfs fs;
    if ((rc == EIO || rc == ENOSPC) && statvfs(s->dir, &fs) == 0 &&
        (unsigned long long)fs.f_bavail * fs.f_frsize < (1ull << 20))
        return sl_fail(err, SL_ESTORE, "storage: %s: %s: %s: the filesystem is full (%llu bytes "
                       "free); free space and run again", s->dir, what, mdb_strerror(rc),
                       (unsigned long long)fs.f_bavail * fs.f_frsize);
    return sl_fail(err, SL_ESTORE, "storage: %s: %s: %s", s->dir, what, mdb_strerror(rc));
}

const char *store_dir(const store *s) { return s->dir; }
size_t store_pending(const store *s) { return s->pending; }
size_t store_map_bytes(const store *s) { return s->map_bytes; }
unsigned store_map_growths(const store *s) { return s->growths; }
size_t store_max_key(const store *s) { return (size_t)mdb_env_get_maxkeysize(s->env); }

void store_test_inject_map_full(store *s, int n_puts, int on_commit)
{
    s->inject_put = n_puts;
    s->inject_commit = on_commit;
}

void store_test_inject_get_error(store *s, int n_gets) { s->inject_get = n_gets; }

// --- opening ---

// 0 = no dataset files here (absent or empty), 1 = has data.mdb, < 0 = refuse.
static int inspect_dir(const char *dir, store_mode mode, sl_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) {
            if (mode == STORE_READ)
                return sl_fail(err, SL_EIO, "storage: %s: no such dataset", dir);
            if (mkdir(dir, 0755) != 0)
                return sl_fail(err, SL_EIO, "storage: %s: cannot create: %s", dir, strerror(errno));
            return 0;
        }
        return sl_fail(err, SL_EIO, "storage: %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return sl_fail(err, SL_EFORMAT, "storage: %s: not a directory (a dataset is a directory)",
                       dir);
    DIR *d = opendir(dir);
    if (!d)
        return sl_fail(err, SL_EIO, "storage: %s: %s", dir, strerror(errno));
    int has_data = 0;
    char other[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if (!strcmp(n, "data.mdb"))
            has_data = 1;
        else if (strcmp(n, "lock.mdb") && strcmp(n, "spearlabel.lock") && !other[0])
            snprintf(other, sizeof other, "%s", n);
    }
    closedir(d);
    if (!has_data && other[0])
        return sl_fail(err, SL_EFORMAT, "storage: %s: not a spearlabel dataset (it holds \"%s\" "
                       "and no data.mdb); refusing to write into it", dir, other);
    if (!has_data && mode == STORE_READ)
        return sl_fail(err, SL_EFORMAT, "storage: %s: not a spearlabel dataset (no data.mdb)", dir);
    return has_data;
}

static int take_lock(store *s, sl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/spearlabel.lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        return sl_fail(err, SL_EIO, "storage: %s: %s", path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[32] = "?";
        ssize_t r = pread(s->lock_fd, holder, sizeof holder - 1, 0);
        if (r > 0) {
            holder[r] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
        }
        if (e == EWOULDBLOCK)
            return sl_fail(err, SL_EEXIST, "storage: %s: another spearlabel process (pid %s) is "
                           "writing this dataset", s->dir, holder);
        return sl_fail(err, SL_EIO, "storage: %s: lock: %s (the dataset must be on a filesystem "
                       "with working locks, not NFS)", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) == 0 && pwrite(s->lock_fd, pid, (size_t)n, 0) < 0) {
        // the pid is only informational
    }
    return SL_OK;
}

// A reader that must see a dataset nobody writes: shared flock, never creating the file.
static int take_shared_lock(store *s, sl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/spearlabel.lock", s->dir);
    s->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->lock_fd < 0)
        return errno == ENOENT ? SL_OK
                               : sl_fail(err, SL_EIO, "storage: %s: %s", path, strerror(errno));
    if (flock(s->lock_fd, LOCK_SH | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return sl_fail(err, SL_EEXIST, "storage: %s: a spearlabel process is writing this "
                           "dataset; wait until it ends", s->dir);
        return sl_fail(err, SL_EIO, "storage: %s: lock: %s", path, strerror(errno));
    }
    return SL_OK;
}

static int check_format(store *s, MDB_txn *txn, sl_err *err)
{
    MDB_val k = {.mv_size = 6, .mv_data = "format"}, v;
    int rc = mdb_get(txn, s->dbi[STORE_META], &k, &v);
    if (rc != 0 || v.mv_size != strlen(STORE_FORMAT_NAME) ||
        memcmp(v.mv_data, STORE_FORMAT_NAME, v.mv_size) != 0)
        return sl_fail(err, SL_EFORMAT, "storage: %s: not a spearlabel dataset (meta has no "
                       "format record)", s->dir);
    k.mv_data = "format_version";
    k.mv_size = strlen("format_version");
    rc = mdb_get(txn, s->dbi[STORE_META], &k, &v);
    char buf[16] = "";
    if (rc == 0 && v.mv_size < sizeof buf)
        memcpy(buf, v.mv_data, v.mv_size);
    int ver = atoi(buf);
    if (ver <= 0)
        return sl_fail(err, SL_ECORRUPT, "storage: %s: format_version record is damaged", s->dir);
    if (ver > STORE_FORMAT_VERSION)
        return sl_fail(err, SL_EFORMAT, "storage: %s: format version %d is newer than this "
                       "build reads (%d): use a newer spearlabel", s->dir, ver,
                       STORE_FORMAT_VERSION);
    return SL_OK;
}

static int open_tables(store *s, int create, sl_err *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc)
        return lmdb_fail(err, s, "begin", rc);
    for (int t = 0; t < STORE_N_TABLES; t++) {
        rc = mdb_dbi_open(txn, TABLE_NAMES[t], create ? MDB_CREATE : 0, &s->dbi[t]);
        if (rc) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
                return sl_fail(err, SL_EFORMAT, "storage: %s: not a spearlabel dataset (no "
                               "\"%s\" table)", s->dir, TABLE_NAMES[t]);
            return lmdb_fail(err, s, "open table", rc);
        }
    }
    if (create) {
        const char *kv[][2] = {{"format", STORE_FORMAT_NAME}, {"format_version", "1"}};
        for (int i = 0; i < 2; i++) {
            MDB_val k = {strlen(kv[i][0]), (void *)kv[i][0]};
            MDB_val v = {strlen(kv[i][1]), (void *)kv[i][1]};
            rc = mdb_put(txn, s->dbi[STORE_META], &k, &v, 0);
            if (rc) {
                mdb_txn_abort(txn);
                return lmdb_fail(err, s, "create", rc);
            }
        }
        rc = mdb_txn_commit(txn);
        return rc ? lmdb_fail(err, s, "create", rc) : SL_OK;
    }
    rc = check_format(s, txn, err);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    // Committing (even a read-only txn) is what keeps the table handles open.
    rc = mdb_txn_commit(txn);
    return rc ? lmdb_fail(err, s, "open tables", rc) : SL_OK;
}

int store_open(store **out, const char *dir, store_mode mode, store_params p, sl_err *err)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return sl_fail(err, SL_ENOMEM, "storage: out of memory");
    }
    s->mode = mode;
    s->p = p;
    s->lock_fd = -1;
    if (s->p.initial_map_bytes < (64u << 10))
        s->p.initial_map_bytes = 64u << 10;
    int rc;
    int exists = inspect_dir(dir, mode, err);
    if (exists < 0) {
        rc = exists;
        goto fail;
    }
    if (mode == STORE_WRITE && (rc = take_lock(s, err)))
        goto fail;
    if (mode == STORE_READ && s->p.source && (rc = take_shared_lock(s, err)))
        goto fail;
    if ((rc = mdb_env_create(&s->env))) {
        rc = lmdb_fail(err, s, "create env", rc);
        goto fail;
    }
    mdb_env_set_maxdbs(s->env, 8);
    mdb_env_set_mapsize(s->env, s->p.initial_map_bytes);
    unsigned flags = MDB_NOTLS;
    if (mode == STORE_READ)
        flags |= MDB_RDONLY;
    if (mode == STORE_READ && s->p.source)
        flags |= MDB_NOLOCK;
    if (s->p.no_sync)
        flags |= MDB_NOSYNC;
    rc = mdb_env_open(s->env, dir, flags, 0644);
    if (rc) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
            rc = sl_fail(err, SL_EFORMAT, "storage: %s: data.mdb is not a usable LMDB file: %s",
                         dir, mdb_strerror(rc));
        else
            rc = lmdb_fail(err, s, "open", rc);
        goto fail;
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_bytes = info.me_mapsize; // an existing dataset keeps its larger map
    if ((rc = open_tables(s, mode == STORE_WRITE && !exists, err)))
        goto fail;
    *out = s;
    return SL_OK;
fail:
    store_close(s);
    return rc;
}

void store_close(store *s)
{
    if (!s)
        return;
    store_abort(s);
    if (s->rtxn)
        mdb_txn_abort(s->rtxn);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); // releases the flock
    free(s->log);
    free(s->dir);
    free(s);
}

// --- writing ---

static int begin_write(store *s, sl_err *err)
{
    if (s->wtxn)
        return SL_OK;
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
    if (rc) {
        s->wtxn = NULL;
        return lmdb_fail(err, s, "begin", rc);
    }
    return SL_OK;
}

static int apply(store *s, uint8_t op, uint8_t table, const void *key, size_t key_len,
                 const void *val, size_t val_len)
{
    if (s->inject_put > 0) {
        s->inject_put--;
        return MDB_MAP_FULL;
    }
    MDB_val k = {key_len, (void *)key};
    if (op == OP_DEL) {
        int rc = mdb_del(s->wtxn, s->dbi[table], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    MDB_val v = {val_len, (void *)val};
    return mdb_put(s->wtxn, s->dbi[table], &k, &v, op == OP_PUT_NEW ? MDB_NOOVERWRITE : 0);
}

static int grow(store *s, sl_err *err)
{
    size_t next = s->map_bytes * 2;
    int rc = mdb_env_set_mapsize(s->env, next);
    if (rc)
        return lmdb_fail(err, s, "grow map", rc);
    SL_LOG(DEBUG, "storage", "%s: map full at %zu MiB: grown to %zu MiB", s->dir,
           s->map_bytes >> 20, next >> 20);
    s->map_bytes = next;
    s->growths++;
    return SL_OK;
}

// Aborts the open txn, grows the map and replays the log into a new txn.
static int grow_and_replay(store *s, sl_err *err)
{
    for (;;) {
        if (s->wtxn) {
            mdb_txn_abort(s->wtxn);
            s->wtxn = NULL;
        }
        int rc = grow(s, err);
        if (rc)
            return rc;
        if ((rc = begin_write(s, err)))
            return rc;
        size_t off = 0;
        int lrc = 0;
        while (off < s->log_len) {
            log_entry e;
            memcpy(&e, s->log + off, sizeof e);
            const unsigned char *key = s->log + off + sizeof e;
            lrc = apply(s, e.op, e.table, key, e.key_len, key + e.key_len, e.val_len);
            if (lrc)
                break;
            off += sizeof e + e.key_len + e.val_len;
        }
        if (lrc == 0)
            return SL_OK;
        if (lrc != MDB_MAP_FULL)
            return lmdb_fail(err, s, "replay", lrc);
    }
}

static int log_append(store *s, uint8_t op, uint8_t table, const void *key, size_t key_len,
                      const void *val, size_t val_len, sl_err *err)
{
    size_t need = sizeof(log_entry) + key_len + val_len;
    if (s->log_len + need > s->log_cap) {
        size_t cap = s->log_cap ? s->log_cap : (1u << 16);
        while (cap < s->log_len + need)
            cap *= 2;
        unsigned char *n = realloc(s->log, cap);
        if (!n)
            return sl_fail(err, SL_ENOMEM, "storage: %s: out of memory for the batch", s->dir);
        s->log = n;
        s->log_cap = cap;
    }
    log_entry e = {op, table, (uint32_t)key_len, (uint32_t)val_len};
    memcpy(s->log + s->log_len, &e, sizeof e);
    memcpy(s->log + s->log_len + sizeof e, key, key_len);
    if (val_len)
        memcpy(s->log + s->log_len + sizeof e + key_len, val, val_len);
    s->log_len += need;
    return SL_OK;
}

static int do_write(store *s, uint8_t op, store_table t, const void *key, size_t key_len,
                    const void *val, size_t val_len, sl_err *err)
{
    if (s->mode != STORE_WRITE)
        return sl_fail(err, SL_EINVAL, "storage: %s: opened read-only", s->dir);
    if (s->open_iters)
        return sl_fail(err, SL_EINVAL, "storage: %s: close iterators before writing", s->dir);
    if (key_len == 0 || key_len > store_max_key(s))
        return sl_fail(err, SL_EINVAL, "storage: %s: key of %zu bytes (must be 1..%zu)", s->dir,
                       key_len, store_max_key(s));
    if (val_len > UINT32_MAX)
        return sl_fail(err, SL_EINVAL, "storage: %s: value of %zu bytes", s->dir, val_len);
    int rc = begin_write(s, err);
    if (rc)
        return rc;
    int mrc;
    while ((mrc = apply(s, op, (uint8_t)t, key, key_len, val, val_len)) == MDB_MAP_FULL)
        if ((rc = grow_and_replay(s, err)))
            return rc;
    if (mrc == MDB_KEYEXIST)
        return sl_fail(err, SL_EEXIST, "storage: %s: %s key \"%.*s\" is already stored", s->dir,
                       TABLE_NAMES[t], (int)(key_len > 200 ? 200 : key_len), (const char *)key);
    if (mrc)
        return lmdb_fail(err, s, "put", mrc);
    if ((rc = log_append(s, op, (uint8_t)t, key, key_len, val, val_len, err)))
        return rc;
    s->pending++;
    if (s->p.batch_rows && s->pending >= s->p.batch_rows)
        return store_commit(s, err);
    return SL_OK;
}

int store_put_row(store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                  sl_err *err)
{
    return do_write(s, OP_PUT_NEW, STORE_ROWS, key, key_len, val, val_len, err);
}

int store_put_error(store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                    sl_err *err)
{
    return do_write(s, OP_PUT_NEW, STORE_ERRORS, key, key_len, val, val_len, err);
}

int store_del_error(store *s, const void *key, size_t key_len, sl_err *err)
{
    return do_write(s, OP_DEL, STORE_ERRORS, key, key_len, NULL, 0, err);
}

int store_del_meta(store *s, const char *key, sl_err *err)
{
    return do_write(s, OP_DEL, STORE_META, key, strlen(key), NULL, 0, err);
}

int store_put_meta(store *s, const char *key, const char *val, sl_err *err)
{
    return do_write(s, OP_PUT_OVERWRITE, STORE_META, key, strlen(key), val, strlen(val), err);
}

int store_commit(store *s, sl_err *err)
{
    if (s->mode != STORE_WRITE)
        return SL_OK;
    int rc;
    if (!s->wtxn) {
        if (s->log_len == 0)
            return SL_OK;
        // A previous commit failed (e.g. disk full): the log still holds the batch.
        if ((rc = begin_write(s, err)))
            return rc;
        size_t off = 0;
        while (off < s->log_len) {
            log_entry e;
            memcpy(&e, s->log + off, sizeof e);
            const unsigned char *key = s->log + off + sizeof e;
            int mrc = apply(s, e.op, e.table, key, e.key_len, key + e.key_len, e.val_len);
            if (mrc == MDB_MAP_FULL) {
                if ((rc = grow_and_replay(s, err)))
                    return rc;
                break;
            }
            if (mrc)
                return lmdb_fail(err, s, "replay", mrc);
            off += sizeof e + e.key_len + e.val_len;
        }
    }
    for (;;) {
        int mrc;
        if (s->inject_commit > 0) {
            s->inject_commit--;
            mdb_txn_abort(s->wtxn);
            mrc = MDB_MAP_FULL;
        } else {
            mrc = mdb_txn_commit(s->wtxn);
        }
        s->wtxn = NULL; // commit frees the txn whatever its outcome
        if (mrc == 0)
            break;
        if (mrc != MDB_MAP_FULL)
            return lmdb_fail(err, s, "commit", mrc); // the log is kept: a later commit retries
        if ((rc = grow_and_replay(s, err)))
            return rc;
    }
    s->log_len = 0;
    s->pending = 0;
    return SL_OK;
}

void store_abort(store *s)
{
    if (s->wtxn) {
        mdb_txn_abort(s->wtxn);
        s->wtxn = NULL;
    }
    s->log_len = 0;
    s->pending = 0;
}

// --- reading ---

// The txn reads go through: the writer's batch, or the reusable read txn.
static int read_txn(store *s, MDB_txn **txn, sl_err *err)
{
    int rc;
    if (s->mode == STORE_WRITE) {
        if ((rc = begin_write(s, err)))
            return rc;
        *txn = s->wtxn;
        return SL_OK;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->rtxn) {
            mdb_txn_reset(s->rtxn);
            rc = mdb_txn_renew(s->rtxn);
        } else {
            rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
        }
        if (rc == MDB_MAP_RESIZED) { // the writer grew the map: adopt its size
            if (s->rtxn) {
                mdb_txn_abort(s->rtxn);
                s->rtxn = NULL;
            }
            mdb_env_set_mapsize(s->env, 0);
            continue;
        }
        if (rc) {
            if (s->rtxn) {
                mdb_txn_abort(s->rtxn);
                s->rtxn = NULL;
            }
            return lmdb_fail(err, s, "begin read", rc);
        }
        *txn = s->rtxn;
        return SL_OK;
    }
    return lmdb_fail(err, s, "begin read", MDB_MAP_RESIZED);
}

int store_get(store *s, store_table t, const void *key, size_t key_len, const void **val,
              size_t *val_len, sl_err *err)
{
    *val = NULL;
    *val_len = 0;
    if (key_len == 0 || key_len > store_max_key(s))
        return sl_fail(err, SL_ENOTFOUND, "storage: key of %zu bytes cannot be stored", key_len);
    MDB_txn *txn;
    int rc = read_txn(s, &txn, err);
    if (rc)
        return rc;
    MDB_val k = {key_len, (void *)key}, v;
    int mrc;
    if (s->inject_get > 0) {
        s->inject_get--;
        mrc = EIO;
    } else {
        mrc = mdb_get(txn, s->dbi[t], &k, &v);
    }
    if (mrc == MDB_NOTFOUND)
        return sl_fail(err, SL_ENOTFOUND, "storage: %s: %s has no key \"%.*s\"", s->dir,
                       TABLE_NAMES[t], (int)(key_len > 200 ? 200 : key_len), (const char *)key);
    if (mrc) {
        char what[300];
        snprintf(what, sizeof what, "get %s \"%.*s\"", TABLE_NAMES[t],
                 (int)(key_len > 200 ? 200 : key_len), (const char *)key);
        return lmdb_fail(err, s, what, mrc);
    }
    *val = v.mv_data;
    *val_len = v.mv_size;
    return SL_OK;
}

int store_get_meta(store *s, const char *key, char **val, sl_err *err)
{
    *val = NULL;
    const void *v;
    size_t n;
    int rc = store_get(s, STORE_META, key, strlen(key), &v, &n, err);
    if (rc)
        return rc;
    char *out = malloc(n + 1);
    if (!out)
        return sl_fail(err, SL_ENOMEM, "storage: %s: out of memory for meta \"%.200s\"", s->dir,
                       key);
    memcpy(out, v, n);
    out[n] = '\0';
    *val = out;
    return SL_OK;
}

int store_count(store *s, store_table t, size_t *n, sl_err *err)
{
    *n = 0;
    MDB_txn *txn;
    int rc = read_txn(s, &txn, err);
    if (rc)
        return rc;
    MDB_stat st;
    int mrc = mdb_stat(txn, s->dbi[t], &st);
    if (mrc)
        return lmdb_fail(err, s, "stat", mrc);
    *n = st.ms_entries;
    return SL_OK;
}

int store_iter_open(store_iter **out, store *s, store_table t, sl_err *err)
{
    *out = NULL;
    store_iter *it = calloc(1, sizeof *it);
    if (!it)
        return sl_fail(err, SL_ENOMEM, "storage: out of memory");
    it->s = s;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &it->txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &it->txn);
    }
    if (rc) {
        free(it);
        return lmdb_fail(err, s, "begin read", rc);
    }
    if ((rc = mdb_cursor_open(it->txn, s->dbi[t], &it->cur))) {
        mdb_txn_abort(it->txn);
        free(it);
        return lmdb_fail(err, s, "cursor", rc);
    }
    s->open_iters++;
    *out = it;
    return SL_OK;
}

int store_iter_next(store_iter *it, const void **key, size_t *key_len, const void **val,
                    size_t *val_len, sl_err *err)
{
    MDB_val k, v;
    int rc;
    if (it->positioned == 1) {
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_GET_CURRENT);
        it->positioned = 2;
    } else if (it->positioned == 3) { // seek found nothing
        return 0;
    } else {
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return lmdb_fail(err, it->s, "cursor", rc);
    *key = k.mv_data;
    *key_len = k.mv_size;
    *val = v.mv_data;
    *val_len = v.mv_size;
    return 1;
}

int store_iter_seek(store_iter *it, const void *key, size_t key_len, sl_err *err)
{
    MDB_val k = {key_len, (void *)key}, v;
    int rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) {
        it->positioned = 3;
        return SL_OK;
    }
    if (rc)
        return lmdb_fail(err, it->s, "seek", rc);
    it->positioned = 1;
    return SL_OK;
}

void store_iter_close(store_iter *it)
{
    if (!it)
        return;
    mdb_cursor_close(it->cur);
    mdb_txn_abort(it->txn);
    it->s->open_iters--;
    free(it);
}
