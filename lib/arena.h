/*
 * arena.h -- request arenas (nginx pools, PostgreSQL memory contexts).
 *
 * Everything a request allocates lives in its arena and is released in one
 * arena_destroy() when the response is done.  Foreign resources (cJSON trees,
 * PGresults, curl lists) are registered with arena_cleanup() and released,
 * last registered first, before the memory goes.  An arena belongs to one
 * thread at a time; it is not locked.  Allocation failure aborts (xmalloc).
 */
#ifndef INGEN_ARENA_H
#define INGEN_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#include "lib/err.h"

struct arena;

/* Create an arena whose first block holds `first_block` bytes (0 = 4 KiB). */
struct arena *arena_create(size_t first_block);

/* Run the cleanups (newest first), free every block and the arena itself.
 * NULL is allowed. */
void arena_destroy(struct arena *a);

/* Memory aligned for any type, valid until arena_destroy. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_sprintf(struct arena *a, const char *fmt, ...) ING_PRINTF(2, 3);
char *arena_vsprintf(struct arena *a, const char *fmt, va_list ap) ING_PRINTF(2, 0);

/* Call fn(data) when the arena is destroyed. */
void arena_cleanup(struct arena *a, void (*fn)(void *), void *data);

/* Bytes handed out so far (for limits and metrics). */
size_t arena_used(const struct arena *a);

#endif
