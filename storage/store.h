// storage/store.h — the dataset: one LMDB environment (a directory) with the
// named databases `rows`, `errors` and `meta` (see docs/ARCHITECTURE.md).
//
// Writer: one process at a time (an exclusive flock on DIR/spearlabel.lock;
// a second writer gets SL_EEXIST naming the holder's pid). Puts go into an
// open transaction and a replay log; store_commit() makes them durable. A row
// counts as stored only once its transaction commits: after a crash the
// dataset holds exactly the committed batches. When LMDB reports MDB_MAP_FULL
// (from mdb_put or from mdb_txn_commit) the writer aborts, doubles the map,
// replays the batch and goes on; the caller never sees it. A key is never
// written twice: MDB_NOOVERWRITE, a duplicate is SL_EEXIST and the batch is
// otherwise unaffected.
//
// Safety: a directory that is not a spearlabel dataset (no `meta` format
// record, or files other than LMDB's) or whose format version is newer than
// this build is refused before anything is written to it.
//
// Threads: a store handle belongs to one thread. Pointers returned by get and
// iteration functions point into LMDB's map and live until the next call on
// the same handle/iterator.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define STORE_FORMAT_NAME "spearlabel-dataset"
#define STORE_FORMAT_VERSION 1

typedef struct store store;
typedef struct store_iter store_iter;

typedef enum store_mode {
    STORE_READ = 0,   // read-only; the directory must be a dataset
    STORE_WRITE = 1,  // read-write; creates the dataset if DIR is absent or empty
} store_mode;

typedef enum store_table { STORE_ROWS = 0, STORE_ERRORS = 1, STORE_META = 2, STORE_N_TABLES = 3 }
    store_table;

typedef struct store_params {
    size_t initial_map_bytes; // map size for a new dataset (grows on demand); default 64 MiB
    size_t batch_rows;        // puts per automatic commit; 0 = only explicit commits. Default 4096
    int no_sync;              // 1: MDB_NOSYNC (survives process death, not a power cut). Default 0
    int source;               // STORE_READ of a dataset that must stay byte-for-byte unchanged
                              // (regenerate's source): MDB_NOLOCK, so not even lock.mdb is
                              // written, and a shared flock on spearlabel.lock that refuses a
                              // dataset a writer is using (and keeps writers out meanwhile)
} store_params;

store_params store_default_params(void);

int store_open(store **out, const char *dir, store_mode mode, store_params p, sl_err *err);
// Commits nothing: an open batch is aborted (call store_commit first). NULL is fine.
void store_close(store *s);
const char *store_dir(const store *s);

// --- writing (STORE_WRITE only) ---
// Adds a row / an error record to the current batch. SL_EEXIST when the key is
// already stored or already in this batch (nothing else changes). May commit
// (batch_rows reached); a failed automatic commit returns its error.
int store_put_row(store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                  sl_err *err);
int store_put_error(store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                    sl_err *err);
// Deletes an error record in the current batch (for --retry-errors); absent is fine.
int store_del_error(store *s, const void *key, size_t key_len, sl_err *err);
// Sets (overwrites) a meta value in the current batch; NUL-terminated key and value.
int store_put_meta(store *s, const char *key, const char *val, sl_err *err);
// Deletes a meta value in the current batch; absent is fine.
int store_del_meta(store *s, const char *key, sl_err *err);
// Commits the batch. On success every put since the last commit is durable.
int store_commit(store *s, sl_err *err);
// Drops the batch: nothing since the last commit is stored.
void store_abort(store *s);
size_t store_pending(const store *s);   // puts in the open batch
size_t store_map_bytes(const store *s); // current map size
unsigned store_map_growths(const store *s);

// --- reading (both modes; sees committed data plus, for a writer, its own batch) ---
// SL_ENOTFOUND when absent. *val lives until the next call on s.
int store_get(store *s, store_table t, const void *key, size_t key_len, const void **val,
              size_t *val_len, sl_err *err);
// A meta value: SL_OK with *val a malloc'd NUL-terminated copy (the caller frees
// it); SL_ENOTFOUND when the key is absent; any other negative code (SL_ESTORE,
// SL_ENOMEM) when the read failed, which says nothing about absence. *val is
// NULL on every failure; err names the key.
int store_get_meta(store *s, const char *key, char **val, sl_err *err);
int store_count(store *s, store_table t, size_t *n, sl_err *err);

// Cursor over a table in key order. A writer's iterator sees committed data.
int store_iter_open(store_iter **out, store *s, store_table t, sl_err *err);
// 1 = an entry (pointers valid until the next call), 0 = end, < 0 = error.
int store_iter_next(store_iter *it, const void **key, size_t *key_len, const void **val,
                    size_t *val_len, sl_err *err);
// Positions so that the next store_iter_next returns the first key >= key.
int store_iter_seek(store_iter *it, const void *key, size_t key_len, sl_err *err);
void store_iter_close(store_iter *it); // NULL is fine

// Maximum key length LMDB accepts (511 bytes by default).
size_t store_max_key(const store *s);

// For tests: makes the next N mdb_put calls report MDB_MAP_FULL
// (or the next commit, with on_commit = 1), so growth paths run for real.
void store_test_inject_map_full(store *s, int n_puts, int on_commit);
// For tests: makes the next n_gets store_get / store_get_meta calls fail as if
// LMDB's mdb_get had reported EIO (SL_ESTORE: "get meta \"KEY\": Input/output
// error"), so a caller's handling of a failed read, as opposed to an absent key,
// runs for real.
void store_test_inject_get_error(store *s, int n_gets);
