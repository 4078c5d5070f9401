/*
 * registry.h -- the flows of one configuration generation, found by name.
 *
 * The master builds a registry with each configuration (at start and on
 * SIGHUP: build the new one, validate, swap; on any error the old one keeps
 * serving), and each worker receives its generation's registry at fork
 * (struct proc_worker_start) and only reads it, so any thread of a worker
 * may look a flow up.  Today it holds the built-in flows; plugins and
 * declarative flows will be added by registry_build from the configuration.
 *
 * Names are normalized as the reference does: '-' becomes '_', upper case
 * becomes lower case ("Classification-Agent" finds classification_agent).
 */
#ifndef INGEN_REGISTRY_H
#define INGEN_REGISTRY_H

#include <stddef.h>

#include "flows/flow.h"
#include "lib/err.h"

/* Longest flow name, with its NUL. */
#define REGISTRY_NAME_MAX 128

struct config;
struct registry;

/*
 * Build the flows of the generation of `cfg` and check every one (its ABI,
 * a name in normal form and shorter than REGISTRY_NAME_MAX, a run function,
 * no name twice).  Returns a new registry (free with registry_free), or
 * NULL with `e` set ("could not add flow ..."); nothing is left to free
 * then.  Called by the master (or a command of `ingen`), never on a request
 * path: loading a flow may read files.
 */
struct registry *registry_build(const struct config *cfg, struct err *e)
    ING_WUR;

/* Free a registry and what it loaded (NULL is fine).  No worker thread may
 * use it any more; the master frees a generation's registry after the
 * swap, the copies in old workers live in their own address spaces. */
void registry_free(struct registry *reg);

/* Normalize `name` into out (at most n bytes with the NUL).  Returns out. */
char *registry_normalize(const char *name, char *out, size_t n);

/* The flow of that (normalized or not) name in `reg`, or NULL. */
const struct ing_flow *registry_find(const struct registry *reg,
    const char *name);

/* Every flow of `reg`, for listings, in the order they were added: their
 * number and the i-th one (NULL past the end). */
size_t registry_count(const struct registry *reg);
const struct ing_flow *registry_at(const struct registry *reg, size_t i);

#endif
