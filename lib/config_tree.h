/*
 * config_tree.h -- a file of libconfig syntax (the syntax of ingenious.conf)
 * read into a plain tree of settings with their line numbers, for readers
 * that have their own rules (the flow files of flows/declarative.c), so that
 * only lib/config* sees libconfig.
 */
#ifndef INGEN_CONFIG_TREE_H
#define INGEN_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

enum config_tree_type {
	CONFIG_TREE_GROUP,          /* { a = 1; b = "x"; } */
	CONFIG_TREE_INT,            /* 1, 1L */
	CONFIG_TREE_FLOAT,          /* 0.5 */
	CONFIG_TREE_STRING,         /* "x" (adjacent strings joined) */
	CONFIG_TREE_BOOL,           /* true, false */
	CONFIG_TREE_ARRAY,          /* [ scalars of one type ] */
	CONFIG_TREE_LIST,           /* ( anything ) */
};

/* One setting, or an element of an array or a list.  Owned by its tree. */
struct config_tree {
	char *name;                 /* NULL for the root and for elements */
	enum config_tree_type type;
	int line;                   /* where libconfig saw it (a scalar element of a
	                             * list: the line of the token after it); >= 1 */
	long long i;
	double f;
	bool b;
	char *s;
	struct config_tree *elems;  /* group, array, list: in file order */
	size_t n;
};

/*
 * Read the file `path`.  Returns its root group (config_tree_free), or NULL
 * with e set: "could not read \"path\": <reason>" (500) or
 * "path:line: <syntax error>" (400).
 */
struct config_tree *config_tree_read(const char *path, struct err *e) ING_WUR;

void config_tree_free(struct config_tree *t);

/* The member `name` of group g, or NULL (also when g is no group). */
const struct config_tree *config_tree_member(const struct config_tree *g,
    const char *name);

#endif
