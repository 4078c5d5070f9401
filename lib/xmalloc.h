/*
 * xmalloc.h -- allocation that never returns NULL.
 *
 * Out of memory is not an error a request can recover from: these functions
 * log and abort the process (tmux xmalloc).  In a worker the master then
 * replaces it; only that worker's in-flight requests are lost.
 */
#ifndef INGEN_XMALLOC_H
#define INGEN_XMALLOC_H

#include <stddef.h>

#include "lib/err.h"

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; the caller frees it. */
char *xasprintf(const char *fmt, ...) ING_PRINTF(1, 2);

#endif
