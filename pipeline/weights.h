// pipeline/weights.h — read-only access to a safetensors file.
//
// wts_open() maps the file read-only (MAP_SHARED), so every rank on a node
// shares one copy of the weights in the page cache, and validates the whole
// header before anything is used: the 8-byte length against the file size,
// the JSON, every tensor's dtype, shape (product overflow), data_offsets
// (inside the data area, length = product x element size, no two tensors
// overlapping). F32 tensors are used in place when 4-byte aligned; F16 and
// BF16 tensors (and misaligned F32 ones) are converted to float32 copies
// owned by the handle at open, so every lookup returns `const float *`.
// Other dtypes are listed but refused at lookup.
//
// Thread-safety: after open, all functions are read-only and may be called
// from any thread. Pointers returned live until wts_close().
// Errors: SL_EIO (open/stat/mmap), SL_EFORMAT/SL_ECORRUPT (header), SL_ENOTFOUND
// (tensor absent), SL_EFORMAT (shape or dtype differ from what the caller expects).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define WTS_MAX_DIMS 8

typedef struct wts_file wts_file;

typedef enum wts_dtype {
    WTS_F32, WTS_F16, WTS_BF16, WTS_F64, WTS_I64, WTS_I32, WTS_I16, WTS_I8, WTS_U8, WTS_BOOL,
    WTS_OTHER
} wts_dtype;

typedef struct wts_info {
    const char *name;
    wts_dtype dtype;      // dtype in the file (F16/BF16 are served converted to F32)
    int ndim;
    size_t shape[WTS_MAX_DIMS];
    size_t count;         // product of shape
} wts_info;

int wts_open(wts_file **out, const char *path, sl_err *err);
// Same validation on an in-memory image (not copied: it must outlive the handle).
int wts_open_memory(wts_file **out, const void *bytes, size_t n_bytes, const char *name,
                    sl_err *err);
void wts_close(wts_file *w); // NULL is fine

const char *wts_path(const wts_file *w);
size_t wts_count(const wts_file *w);
// i-th tensor in file order of data offsets; NULL past the end.
const wts_info *wts_at(const wts_file *w, size_t i);
// NULL when absent.
const wts_info *wts_find(const wts_file *w, const char *name);
// A value of the header's "__metadata__" object (a string); NULL when absent.
const char *wts_metadata(const wts_file *w, const char *key);

// Looks up a float tensor of exactly the given shape. On a missing tensor,
// wrong rank, wrong dimension or non-float dtype: error naming the file, the
// tensor and both shapes.
int wts_get(const wts_file *w, const char *name, int ndim, const size_t *shape,
            const float **out, sl_err *err);
// Convenience forms for 1-, 2- and 3-dimensional tensors.
int wts_get1(const wts_file *w, const char *name, size_t d0, const float **out, sl_err *err);
int wts_get2(const wts_file *w, const char *name, size_t d0, size_t d1, const float **out,
             sl_err *err);
int wts_get3(const wts_file *w, const char *name, size_t d0, size_t d1, size_t d2,
             const float **out, sl_err *err);

const char *wts_dtype_name(wts_dtype d);
