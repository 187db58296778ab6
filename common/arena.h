// common/arena.h — bump allocator for per-utterance scratch memory.
//
// One arena per thread. sl_arena_alloc() hands out 64-byte aligned blocks from
// chunks it owns; sl_arena_reset() makes all of them free again at once (the
// chunks are kept, so a steady state allocates nothing). Pointers live until
// the next reset or free. Not thread-safe.
#pragma once
#include <stddef.h>

typedef struct sl_arena sl_arena;

// chunk_bytes: size of each chunk (a larger request gets a chunk of its own).
sl_arena *sl_arena_new(size_t chunk_bytes);
void sl_arena_free(sl_arena *a);                 // NULL is fine
// NULL when memory is exhausted. n == 0 returns a valid unique pointer.
void *sl_arena_alloc(sl_arena *a, size_t n);
// Like sl_arena_alloc for count elements of size bytes; NULL on overflow.
void *sl_arena_calloc(sl_arena *a, size_t count, size_t size);
void sl_arena_reset(sl_arena *a);
size_t sl_arena_used(const sl_arena *a);         // bytes handed out since the last reset
size_t sl_arena_capacity(const sl_arena *a);     // bytes held in chunks
