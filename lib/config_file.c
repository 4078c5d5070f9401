/*
 * config_file.c -- the libconfig file of the configuration: parse it, walk
 * its settings with their dotted names, and hand each to the loader
 * (lib/config_int.h), checking names and types against the key table.
 *
 * With config_tree.c, the only file of the project that includes
 * <libconfig.h>.  It never
 * chooses which file to read (lib/config.c does) and never echoes a value
 * that it could not use.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/config_int.h"
#include "lib/xmalloc.h"

/* ------------------------------------------------------------------ */
/* The libconfig file                                                  */

typedef bool (*walk_fn)(void *arg, const char *name, int index,
    const config_setting_t *s);

/*
 * Visit every member of group g with its dotted name; descend into groups
 * and into lists of groups (as "name.*", with the element index) when fn
 * says so.
 */
static void
walk_group(const config_setting_t *g, struct buf *path, int index,
    walk_fn fn, void *arg)
{
	int i, j, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g,
		    (unsigned)i);
		size_t mark = path->len;
		bool descend;

		if (s == NULL || config_setting_name(s) == NULL)
			continue;
		if (mark)
			buf_putc(path, '.');
		buf_puts(path, config_setting_name(s));
		descend = fn(arg, buf_cstr(path), index, s);
		if (descend && config_setting_is_group(s)) {
			walk_group(s, path, index, fn, arg);
		} else if (descend && config_setting_type(s) == CONFIG_TYPE_LIST) {
			buf_puts(path, ".*");
			for (j = 0; j < config_setting_length(s); j++) {
				const config_setting_t *e =
				    config_setting_get_elem(s, (unsigned)j);

				if (e && config_setting_is_group(e))
					walk_group(e, path, j, fn, arg);
			}
		}
		path->len = mark;
		buf_cstr(path);
	}
}

/* Read and parse a libconfig file into lc; -1 with a message in `why`. */
static int
file_parse(config_t *lc, const char *path, struct buf *why)
{
	char tmp[128];
	FILE *fp;
	int rc;

	fp = fopen(path, "re");
	if (fp == NULL) {
		buf_printf(why, "could not open configuration file \"%s\": %s",
		    path, config_errstr(errno, tmp, sizeof(tmp)));
		return -1;
	}
	rc = config_read(lc, fp);
	fclose(fp);
	if (rc != CONFIG_TRUE) {
		buf_printf(why, "%s:%d: %s", config_error_file(lc) ?
		    config_error_file(lc) : path, config_error_line(lc),
		    config_error_text(lc) ? config_error_text(lc) : "error");
		return -1;
	}
	return 0;
}

static void
setting_text(const config_setting_t *s, char *tmp, size_t len,
    const char **text)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		*text = config_setting_get_string(s);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(tmp, len, "%lld", config_setting_get_int64(s));
		*text = tmp;
		break;
	case CONFIG_TYPE_BOOL:
		*text = config_setting_get_bool(s) ? "true" : "false";
		break;
	case CONFIG_TYPE_FLOAT:
		snprintf(tmp, len, "%g", config_setting_get_float(s));
		*text = tmp;
		break;
	default:
		*text = NULL;
	}
	if (*text == NULL)
		*text = "";
}

struct file_ctx {
	struct config_loader *ld;
	const char *path;
};

static bool
file_visit(void *arg, const char *name, int index, const config_setting_t *s)
{
	struct file_ctx *fc = arg;
	struct config_loader *ld = fc->ld;
	const struct config_key *k;
	const char *label, *text;
	char tmp[64], *what;
	int type = config_setting_type(s);
	int li = index < 0 ? config_list_find(name) : -1;
	bool descend = false;

	label = config_ld_keep(ld, xasprintf("%s:%u",
	    config_setting_source_file(s) ? config_setting_source_file(s) :
	    fc->path, (unsigned)config_setting_source_line(s)));
	what = config_name_with_index(name, index);

	if (li >= 0) {
		int i, n = config_setting_length(s);
		bool groups = type == CONFIG_TYPE_LIST;

		for (i = 0; groups && i < n; i++)
			groups = config_setting_is_group(
			    config_setting_get_elem(s, (unsigned)i));
		if (!groups) {
			config_ld_problem(ld, label, what,
			    "expected a list of groups, "
			    "as in %s = ( { ... }, { ... } );", what);
			goto out;
		}
		config_list_resize(ld, (size_t)li, 0);
		config_list_resize(ld, (size_t)li, (size_t)n);
		descend = true;
		goto out;
	}
	if (type == CONFIG_TYPE_GROUP) {
		if (index < 0 && config_group_exists(name))
			descend = true;
		else
			config_ld_problem(ld, label, NULL, "unknown key \"%s\"",
			    what);
		goto out;
	}
	k = config_key_find(name);
	if (k == NULL) {
		config_ld_problem(ld, label, NULL, "unknown key \"%s\"", what);
		goto out;
	}
	if (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
		config_ld_problem(ld, label, what, "expected a single value");
		goto out;
	}
	if ((type != CONFIG_TYPE_STRING && (k->type == KEY_STRING ||
	    k->type == KEY_ENUM)) ||
	    (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64 &&
	    type != CONFIG_TYPE_STRING && k->type == KEY_INT) ||
	    (type != CONFIG_TYPE_BOOL && type != CONFIG_TYPE_INT &&
	    type != CONFIG_TYPE_STRING && k->type == KEY_BOOL)) {
		config_ld_problem(ld, label, what, "expected %s%s",
		    config_key_type_expect(k->type), k->type == KEY_STRING ||
		    k->type == KEY_ENUM ? " (in double quotes)" : "");
		goto out;
	}
	setting_text(s, tmp, sizeof(tmp), &text);
	if (k->scope == SCOPE_MAIN || k->scope == SCOPE_UNUSED) {
		config_ld_set_main(ld, k, text, label, what);
	} else {
		size_t n, l;
		const char **srcp;
		char *base;

		for (l = 0; l < CONFIG_N_LISTS; l++)
			if (config_lists[l].scope == k->scope)
				break;
		config_list_base(ld->cfg, l, &n);
		if (index < 0 || (size_t)index >= n) {
			config_ld_problem(ld, label, NULL, "unknown key \"%s\"",
			    what);
			goto out;
		}
		base = config_list_entry(ld, l, (size_t)index, k, &srcp);
		config_ld_set(ld, k, base, srcp, text, label, what);
	}
out:
	free(what);
	return descend;
}

void
config_file_load(struct config_loader *ld, const char *path)
{
	struct buf why = BUF_INIT, path_buf = BUF_INIT;
	struct file_ctx fc = { ld, path };
	config_t lc;
	char *dir, *slash;

	config_init(&lc);
	/* @include is relative to the including file, not to the cwd */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		config_set_include_dir(&lc, dir[0] ? dir : "/");
	}
	if (file_parse(&lc, path, &why) == -1) {
		config_ld_problem(ld, NULL, NULL, "%s", buf_cstr(&why));
	} else {
		walk_group(config_root_setting(&lc), &path_buf, -1, file_visit,
		    &fc);
		ld->cfg->source_file = realpath(path, NULL);
		if (ld->cfg->source_file == NULL)
			ld->cfg->source_file = xstrdup(path);
	}
	config_destroy(&lc);
	free(dir);
	buf_free(&why);
	buf_free(&path_buf);
}

struct walk_ctx {
	void (*fn)(void *arg, const char *name, int line, const char *value);
	void *arg;
};

static bool
walk_visit(void *arg, const char *name, int index, const config_setting_t *s)
{
	struct walk_ctx *w = arg;
	char tmp[64];
	const char *text;
	int type = config_setting_type(s);

	(void)index;
	if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_LIST)
		return true;
	if (type == CONFIG_TYPE_ARRAY)
		return false;
	setting_text(s, tmp, sizeof(tmp), &text);
	w->fn(w->arg, name, (int)config_setting_source_line(s), text);
	return false;
}

int
config_file_walk(const char *path, void (*fn)(void *arg, const char *name,
    int line, const char *value), void *arg, struct err *e)
{
	struct buf why = BUF_INIT, name = BUF_INIT;
	struct walk_ctx w = { fn, arg };
	config_t lc;
	int rc = 0;

	config_init(&lc);
	if (file_parse(&lc, path, &why) == -1) {
		rc = err_set(e, 500, "%s", buf_cstr(&why));
		goto out;
	}
	walk_group(config_root_setting(&lc), &name, -1, walk_visit, &w);
out:
	config_destroy(&lc);
	buf_free(&why);
	buf_free(&name);
	return rc;
}
