// common/arena.c — see arena.h. Chunks form a list; reset rewinds to the first
// and keeps every chunk, so a loop over utterances of similar size stops
// calling malloc after the first one.
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64

typedef struct chunk {
    struct chunk *next;
    size_t cap;
    size_t used;
    unsigned char *base; // aligned start of the usable bytes
} chunk;

struct sl_arena {
    chunk *head;    // first chunk
    chunk *cur;     // chunk being filled
    size_t chunk_bytes;
    size_t used;
};

static chunk *chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(chunk) - ARENA_ALIGN)
        return NULL;
    chunk *c = malloc(sizeof(chunk) + cap + ARENA_ALIGN);
    if (!c)
        return NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    p = (p + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
    c->base = (unsigned char *)p;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

sl_arena *sl_arena_new(size_t chunk_bytes)
{
    sl_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->chunk_bytes = chunk_bytes ? chunk_bytes : (1u << 20);
    return a;
}

void sl_arena_free(sl_arena *a)
{
    if (!a)
        return;
    chunk *c = a->head;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

void *sl_arena_alloc(sl_arena *a, size_t n)
{
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    // Walk forward from the current chunk to one with room (kept chunks after a reset).
    chunk *c = a->cur;
    chunk *prev = NULL;
    while (c && c->cap - c->used < need) {
        prev = c;
        c = c->next;
        if (c)
            c->used = 0;
    }
    if (!c) {
        c = chunk_new(need > a->chunk_bytes ? need : a->chunk_bytes);
        if (!c)
            return NULL;
        if (prev) // prev is the last chunk: append
            prev->next = c;
        else      // the arena had no chunk yet
            a->head = c;
    }
    a->cur = c;
    void *p = c->base + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *sl_arena_calloc(sl_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = sl_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void sl_arena_reset(sl_arena *a)
{
    a->cur = a->head;
    if (a->head)
        a->head->used = 0;
    a->used = 0;
}

size_t sl_arena_used(const sl_arena *a) { return a->used; }

size_t sl_arena_capacity(const sl_arena *a)
{
    size_t s = 0;
    for (const chunk *c = a->head; c; c = c->next)
        s += c->cap;
    return s;
}
