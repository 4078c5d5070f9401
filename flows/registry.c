/*
 * registry.c -- the flows of one configuration generation: it builds the
 * table (the built-in flows today; plugins and declarative flows will be
 * added here, from the configuration), checks every flow before a
 * generation may use it, and owns the name rules.  It never runs a flow.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "flows/builtin/builtin.h"
#include "flows/registry.h"
#include "lib/config.h"
#include "lib/xmalloc.h"

struct registry {
	const struct ing_flow **flows;
	size_t n;
};

/* The flows compiled into the server, in listing order. */
static const struct ing_flow *const registry_builtin[] = {
	&flow_classification_agent,
};

#define REGISTRY_N_BUILTIN \
	(sizeof(registry_builtin) / sizeof(registry_builtin[0]))

char *
registry_normalize(const char *name, char *out, size_t n)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < n; i++)
		out[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
	return out;
}

/* Check flow f (from `origin`, for messages) and add it to reg. */
static int
registry_add(struct registry *reg, const struct ing_flow *f,
    const char *origin, struct err *e)
{
	char norm[REGISTRY_NAME_MAX];
	const char *name = f->name != NULL ? f->name : "";

	if (name[0] == '\0' || strlen(name) >= sizeof(norm))
		return err_set(e, 500, "could not add %s flow \"%.64s\": a flow "
		    "name has 1 to %d characters", origin, name,
		    REGISTRY_NAME_MAX - 1);
	if (strcmp(registry_normalize(name, norm, sizeof(norm)), name) != 0)
		return err_set(e, 500, "could not add %s flow \"%s\": its name is "
		    "not in normal form (lower case, '_' for '-': \"%s\")", origin,
		    name, norm);
	if (f->run == NULL)
		return err_set(e, 500, "could not add %s flow \"%s\": it has no "
		    "run function", origin, name);
	if (registry_find(reg, name) != NULL)
		return err_set(e, 500, "could not add %s flow \"%s\": a flow of "
		    "that name exists already", origin, name);
	reg->flows = xrealloc(reg->flows, (reg->n + 1) * sizeof(*reg->flows));
	reg->flows[reg->n++] = f;
	return 0;
}

struct registry *
registry_build(const struct config *cfg, struct err *e)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));
	size_t i;

	/* the configuration will name plugins and flow files (server.flow_path) */
	(void)cfg;
	for (i = 0; i < REGISTRY_N_BUILTIN; i++)
		if (registry_add(reg, registry_builtin[i], "built-in", e) != 0)
			goto fail;
	return reg;
fail:
	registry_free(reg);
	return NULL;
}

void
registry_free(struct registry *reg)
{
	if (reg == NULL)
		return;
	free(reg->flows);
	free(reg);
}

const struct ing_flow *
registry_find(const struct registry *reg, const char *name)
{
	char norm[REGISTRY_NAME_MAX];
	size_t i;

	if (strlen(name) >= sizeof(norm))
		return NULL;
	registry_normalize(name, norm, sizeof(norm));
	for (i = 0; i < reg->n; i++)
		if (strcmp(reg->flows[i]->name, norm) == 0)
			return reg->flows[i];
	return NULL;
}

size_t
registry_count(const struct registry *reg)
{
	return reg->n;
}

const struct ing_flow *
registry_at(const struct registry *reg, size_t i)
{
	return i < reg->n ? reg->flows[i] : NULL;
}
