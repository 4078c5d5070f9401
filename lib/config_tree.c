/*
 * config_tree.c -- a libconfig file read into a plain tree (config_tree.h),
 * with the line of each setting.  With config_file.c, the only file that
 * includes <libconfig.h>.  It gives meaning to no setting: its readers do.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "lib/config_tree.h"
#include "lib/xmalloc.h"

static void
config_tree_copy(const config_setting_t *s, struct config_tree *out)
{
	int line = config_setting_source_line(s);
	const char *name = config_setting_name(s);
	int i, n;

	memset(out, 0, sizeof(*out));
	out->name = name != NULL ? xstrdup(name) : NULL;
	out->line = line > 0 ? line : 1;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		out->type = CONFIG_TREE_INT;
		out->i = config_setting_get_int64(s);
		return;
	case CONFIG_TYPE_FLOAT:
		out->type = CONFIG_TREE_FLOAT;
		out->f = config_setting_get_float(s);
		return;
	case CONFIG_TYPE_STRING:
		out->type = CONFIG_TREE_STRING;
		out->s = xstrdup(config_setting_get_string(s));
		return;
	case CONFIG_TYPE_BOOL:
		out->type = CONFIG_TREE_BOOL;
		out->b = config_setting_get_bool(s) != 0;
		return;
	case CONFIG_TYPE_ARRAY:
		out->type = CONFIG_TREE_ARRAY;
		break;
	case CONFIG_TYPE_LIST:
		out->type = CONFIG_TREE_LIST;
		break;
	default:
		out->type = CONFIG_TREE_GROUP;
		break;
	}
	n = config_setting_length(s);
	out->elems = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*out->elems));
	for (i = 0; i < n; i++)
		config_tree_copy(config_setting_get_elem(s, (unsigned)i),
		    &out->elems[out->n++]);
}

struct config_tree *
config_tree_read(const char *path, struct err *e)
{
	struct config_tree *t;
	config_t lc;

	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			err_set(e, 500, "could not read \"%s\": %s", path,
			    strerror(errno));
		else
			err_set(e, 400, "%s:%d: %s", path, config_error_line(&lc),
			    config_error_text(&lc));
		config_destroy(&lc);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	config_tree_copy(config_root_setting(&lc), t);
	config_destroy(&lc);
	return t;
}

static void
config_tree_clear(struct config_tree *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		config_tree_clear(&t->elems[i]);
	free(t->elems);
	free(t->name);
	free(t->s);
}

void
config_tree_free(struct config_tree *t)
{
	if (t == NULL)
		return;
	config_tree_clear(t);
	free(t);
}

const struct config_tree *
config_tree_member(const struct config_tree *g, const char *name)
{
	size_t i;

	if (g == NULL || g->type != CONFIG_TREE_GROUP)
		return NULL;
	for (i = 0; i < g->n; i++)
		if (g->elems[i].name != NULL && strcmp(g->elems[i].name, name) == 0)
			return &g->elems[i];
	return NULL;
}
