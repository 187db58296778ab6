// pipeline/kmeans.h — semantic token ids: nearest k-means centroid per frame.
//
// Third stage of the worker picture: hubert_forward -> km_assign -> s2t.
// Centroids are a float32 [K, D] matrix, from a .npy file (what
// np.save(km.cluster_centers_) writes) or from a tensor of a safetensors file.
// id_t = argmin_k ||x_t - c_k||^2, computed as argmin_k (||c_k||^2 - 2 x_t.c_k)
// with ONE GEMM per utterance ([T, D] x [D, K]); ties go to the lower index.
//
// The model is immutable after open and shareable between threads; each thread
// has a km_state whose scratch grows to the longest utterance and is reused.
// Errors: SL_EIO (file), SL_EFORMAT (dtype, rank, empty, dimension mismatch),
// SL_ENOTFOUND (tensor absent), SL_ENOMEM.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct km_model km_model;
typedef struct km_state km_state;

// path ending in ".safetensors": the tensor `tensor` (NULL: the file's only 2-D
// tensor); anything else is read as .npy (tensor must be NULL).
int km_open(km_model **out, const char *path, const char *tensor, sl_err *err);
// Centroids from memory (copied): c is [k, dim] row-major.
int km_open_memory(km_model **out, const float *c, size_t k, size_t dim, sl_err *err);
void km_close(km_model *m); // NULL is fine

size_t km_k(const km_model *m);
size_t km_dim(const km_model *m);

int km_state_new(km_state **out, const km_model *m, sl_err *err);
void km_state_free(km_state *s); // NULL is fine

// ids[t] for the n_frames rows of x [n_frames, dim]; dim must equal km_dim().
int km_assign(km_state *s, const float *x, size_t n_frames, size_t dim, int32_t *ids,
              sl_err *err);
