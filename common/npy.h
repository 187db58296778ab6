// common/npy.h — NumPy .npy files (format 1.0/2.0/3.0), the exchange format for
// features, ids and k-means centroids.
//
// Supported: dtype '<f4' (float32) and '<i8' (int64), C order, up to 4 dims.
// Anything else ('>f4', '<f8', fortran_order True, object arrays, a header
// whose shape disagrees with the data length) is an SL_EFORMAT error naming
// the file and the field. The reader copies the data into a malloc'd buffer
// that the caller frees with sl_npy_free().
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SL_NPY_MAX_DIMS 4

typedef enum sl_npy_dtype { SL_NPY_F32 = 1, SL_NPY_I64 = 2 } sl_npy_dtype;

typedef struct sl_npy {
    sl_npy_dtype dtype;
    int ndim;                       // 0 = scalar
    size_t shape[SL_NPY_MAX_DIMS];
    size_t count;                   // product of shape
    void *data;                     // float* or int64_t*, count elements
} sl_npy;

// Reads path into *out. On failure returns a negative code, fills *err and
// leaves *out zeroed.
int sl_npy_read(const char *path, sl_npy *out, sl_err *err);
// Parses an in-memory .npy image (name is only used in messages).
int sl_npy_parse(const void *bytes, size_t n_bytes, const char *name, sl_npy *out, sl_err *err);
void sl_npy_free(sl_npy *a);

// Writes count = prod(shape) elements of data as a version 1.0 file. The file
// appears atomically (written to a temporary name in the same directory, then renamed).
int sl_npy_write(const char *path, sl_npy_dtype dtype, int ndim, const size_t *shape,
                 const void *data, sl_err *err);
