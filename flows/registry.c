/*
 * registry.c -- the table of built-in flows.  It owns the table and the name
 * rules; it never runs a flow.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <string.h>

#include "flows/builtin/builtin.h"
#include "flows/registry.h"

static const struct ing_flow *const registry_builtin[] = {
	&flow_classification_agent,
};

#define REGISTRY_N (sizeof(registry_builtin) / sizeof(registry_builtin[0]))

char *
registry_normalize(const char *name, char *out, size_t n)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < n; i++)
		out[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
	return out;
}

const struct ing_flow *
registry_find(const char *name)
{
	char norm[128];
	size_t i;

	if (strlen(name) >= sizeof(norm))
		return NULL;
	registry_normalize(name, norm, sizeof(norm));
	for (i = 0; i < REGISTRY_N; i++)
		if (strcmp(registry_builtin[i]->name, norm) == 0)
			return registry_builtin[i];
	return NULL;
}

size_t
registry_count(void)
{
	return REGISTRY_N;
}

const struct ing_flow *
registry_at(size_t i)
{
	return i < REGISTRY_N ? registry_builtin[i] : NULL;
}
