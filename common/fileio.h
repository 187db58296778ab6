// common/fileio.h — whole-file reads and atomic whole-file writes.
#pragma once
#include <stddef.h>

#include "common/err.h"

// Reads the whole regular file at path into a malloc'd buffer (*out, NUL
// terminated one byte past *n_out, so text can be used as a C string).
// Files larger than max_bytes, directories and unreadable paths are errors
// naming the path and strerror().
int sl_read_file(const char *path, size_t max_bytes, void **out, size_t *n_out, sl_err *err);

// Writes n bytes to path via a temporary file in the same directory, fsync,
// rename: readers see the old file or the new one, never a partial one.
int sl_write_file_atomic(const char *path, const void *data, size_t n, sl_err *err);
