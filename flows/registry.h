/*
 * registry.h -- the flows a worker can run, found by name.  Built-in flows
 * are compiled in; the table is read-only after start, so any thread may
 * look up a flow.  Names are normalized as the reference does: '-' becomes
 * '_', upper case becomes lower case ("Classification-Agent" finds
 * classification_agent).
 */
#ifndef INGEN_REGISTRY_H
#define INGEN_REGISTRY_H

#include <stddef.h>

#include "flows/flow.h"

/* Normalize `name` into out (at most n bytes with the NUL).  Returns out. */
char *registry_normalize(const char *name, char *out, size_t n);

/* The flow of that (normalized or not) name, or NULL. */
const struct ing_flow *registry_find(const char *name);

/* Every known flow, for listings: count and the i-th one. */
size_t registry_count(void);
const struct ing_flow *registry_at(size_t i);

#endif
