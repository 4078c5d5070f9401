/*
 * test_config_doc.c -- etc/ingenious.conf documents every key of the
 * table with its real default, and nothing that is not a key;
 * etc/env.example names only real variables.
 *
 * The convention it checks (see the top of etc/ingenious.conf): a line
 * "#key = value;" (a '#' directly followed by text) is a key shown with its
 * default, "# text" is an explanation.  Removing those '#' gives a complete
 * libconfig file; the test walks it with config_file_walk and compares the
 * names and values with config_keys_foreach, then loads it with config_load
 * (every documented value must be valid).  Reads INGEN_SRCDIR.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/xmalloc.h"
#include "tests/unit/tap.h"

struct doc_key {
	char *name;
	char *value;
	int line;
	int seen;                     /* matched a table key */
};

struct doc {
	struct doc_key *keys;
	size_t n;
};

struct table {
	char **names, **envs, **defs;
	size_t n;
	char **aliases;
	size_t n_aliases;
};

static char *
slurp(const char *path)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t r;
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		printf("Bail out! could not open %s\n", path);
		exit(1);
	}
	while ((r = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, r);
	fclose(fp);
	return buf_cstr(&b);
}

/* The documented file with every "#key" line uncommented. */
static char *
uncomment(const char *text)
{
	struct buf out = BUF_INIT;
	const char *p = text;

	while (*p) {
		const char *eol = strchr(p, '\n');
		const char *q = p;
		size_t len = eol ? (size_t)(eol - p) + 1 : strlen(p);

		while (q < p + len && (*q == ' ' || *q == '\t'))
			q++;
		if (q < p + len && *q == '#' && q + 1 < p + len && q[1] != ' ' &&
		    q[1] != '#' && q[1] != '\n') {
			buf_append(&out, p, (size_t)(q - p));
			buf_append(&out, q + 1, len - (size_t)(q - p) - 1);
		} else {
			buf_append(&out, p, len);
		}
		p += len;
	}
	return buf_cstr(&out);
}

static void
doc_add(void *arg, const char *name, int line, const char *value)
{
	struct doc *d = arg;

	d->keys = xrealloc(d->keys, (d->n + 1) * sizeof(*d->keys));
	d->keys[d->n].name = xstrdup(name);
	d->keys[d->n].value = xstrdup(value);
	d->keys[d->n].line = line;
	d->keys[d->n].seen = 0;
	d->n++;
}

static void
table_add(void *arg, const char *name, const char *env_name,
    const char *default_text, bool secret)
{
	struct table *t = arg;

	(void)secret;
	t->names = xrealloc(t->names, (t->n + 1) * sizeof(*t->names));
	t->envs = xrealloc(t->envs, (t->n + 1) * sizeof(*t->envs));
	t->defs = xrealloc(t->defs, (t->n + 1) * sizeof(*t->defs));
	t->names[t->n] = xstrdup(name);
	t->envs[t->n] = xstrdup(env_name);
	t->defs[t->n] = xstrdup(default_text);
	t->n++;
}

static void
alias_add(void *arg, const char *env_name, const char *key)
{
	struct table *t = arg;

	(void)key;
	t->aliases = xrealloc(t->aliases,
	    (t->n_aliases + 1) * sizeof(*t->aliases));
	t->aliases[t->n_aliases++] = xstrdup(env_name);
}

/* INGENIOUS_MODELS__0__X -> INGENIOUS_MODELS__<i>__X */
static char *
env_pattern(const char *name)
{
	struct buf b = BUF_INIT;
	const char *p = name;

	while (*p) {
		if (p[0] == '_' && p[1] == '_' && isdigit((unsigned char)p[2])) {
			const char *q = p + 2;

			while (isdigit((unsigned char)*q))
				q++;
			if (q[0] == '_' && q[1] == '_') {
				buf_puts(&b, "__<i>");
				p = q;
				continue;
			}
		}
		buf_putc(&b, (char)toupper((unsigned char)*p));
		p++;
	}
	return buf_cstr(&b);
}

/* A key's variable, an alias, or a group or list given as JSON
 * (INGENIOUS_MODELS='[...]'). */
static bool
pattern_known(const struct table *t, const char *pat)
{
	size_t i, len = strlen(pat);

	if (strcmp(pat, "INGENIOUS_CONFIG") == 0)
		return true;
	for (i = 0; i < t->n; i++)
		if (strcmp(t->envs[i], pat) == 0 ||
		    (strncmp(t->envs[i], pat, len) == 0 &&
		    strncmp(t->envs[i] + len, "__", 2) == 0))
			return true;
	for (i = 0; i < t->n_aliases; i++)
		if (strcmp(t->aliases[i], pat) == 0)
			return true;
	return false;
}

static bool
env_known(const struct table *t, const char *name)
{
	char *pat = env_pattern(name);
	size_t len = strlen(pat);
	bool found = pattern_known(t, pat);

	if (!found && len > 5 && strcmp(pat + len - 5, "_FILE") == 0) {
		pat[len - 5] = '\0';
		found = pattern_known(t, pat);
	}
	free(pat);
	return found;
}

static void
check_conf(const char *srcdir, const struct table *t)
{
	char *conf_path = xasprintf("%s/etc/ingenious.conf", srcdir);
	char tmp[] = "/tmp/test_config_doc.XXXXXX";
	char *text = slurp(conf_path), *open_text;
	struct doc d = { NULL, 0 };
	struct config_problems p;
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;
	struct config *cfg;
	struct err e;
	size_t i, j;
	char *empty_env[] = { NULL };
	FILE *fp;
	int fd;

	/* as shipped */
	ov.config_file = conf_path;
	cfg = config_load(&ov, empty_env, "/nonexistent", &p);
	ok(cfg != NULL && p.n == 0, "etc/ingenious.conf loads as shipped");
	for (i = 0; i < p.n; i++)
		printf("#   %s\n", p.lines[i]);
	config_free(cfg);
	config_problems_free(&p);

	/* uncommented */
	open_text = uncomment(text);
	fd = mkstemp(tmp);
	fp = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (fp == NULL) {
		printf("Bail out! could not create %s\n", tmp);
		exit(1);
	}
	fputs(open_text, fp);
	fclose(fp);

	if (config_file_walk(tmp, doc_add, &d, &e) == -1) {
		ok(0, "the uncommented etc/ingenious.conf parses: %s", e.msg);
		goto out;
	}
	ok(d.n > 0, "the uncommented etc/ingenious.conf parses (%zu keys)", d.n);

	for (i = 0; i < t->n; i++) {
		bool list = strstr(t->names[i], ".*.") != NULL;
		struct doc_key *k = NULL;

		for (j = 0; j < d.n; j++)
			if (strcmp(d.keys[j].name, t->names[i]) == 0) {
				d.keys[j].seen = 1;
				if (k == NULL)
					k = &d.keys[j];
			}
		ok(k != NULL, "%s is documented", t->names[i]);
		/* list entries show an example (model has no default) */
		if (k != NULL && !list && strcmp(k->value, t->defs[i]) != 0) {
			ok(0, "%s: documented default \"%s\" (line %d) is the real "
			    "one \"%s\"", t->names[i], k->value, k->line,
			    t->defs[i]);
		}
	}
	for (j = 0; j < d.n; j++)
		ok(d.keys[j].seen, "documented key %s (line %d) exists",
		    d.keys[j].name, d.keys[j].line);

	ov.config_file = tmp;
	cfg = config_load(&ov, empty_env, "/nonexistent", &p);
	ok(cfg != NULL && p.n == 0, "every documented value is valid (the "
	    "uncommented file loads)");
	for (i = 0; i < p.n; i++)
		printf("#   %s\n", p.lines[i]);
	config_free(cfg);
	config_problems_free(&p);
out:
	unlink(tmp);
	for (j = 0; j < d.n; j++) {
		free(d.keys[j].name);
		free(d.keys[j].value);
	}
	free(d.keys);
	free(open_text);
	free(text);
	free(conf_path);
}

static void
check_env_example(const char *srcdir, const struct table *t)
{
	char *path = xasprintf("%s/etc/env.example", srcdir);
	char *text = slurp(path), *line, *save = NULL;
	int n = 0, lineno = 0;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *p = line;
		const char *q;
		char *name;

		lineno++;
		if (*p == '#')
			p++;
		q = p;
		while (isalnum((unsigned char)*q) || *q == '_')
			q++;
		/* only NAME=... lines; "# text" explanations are skipped */
		if (q == p || *q != '=' || isdigit((unsigned char)*p))
			continue;
		name = xstrndup(p, (size_t)(q - p));
		ok(env_known(t, name), "env.example: %s is a real variable", name);
		free(name);
		n++;
	}
	ok(n >= 20, "env.example shows the common variables (%d)", n);
	free(text);
	free(path);
}

int
main(void)
{
	const char *srcdir = getenv("INGEN_SRCDIR");
	struct table t;
	size_t i;

	memset(&t, 0, sizeof(t));
	if (srcdir == NULL)
		srcdir = ".";
	config_keys_foreach(table_add, &t);
	config_aliases_foreach(alias_add, &t);
	ok(t.n > 100, "the table has %zu keys", t.n);

	check_conf(srcdir, &t);
	check_env_example(srcdir, &t);

	for (i = 0; i < t.n; i++) {
		free(t.names[i]);
		free(t.envs[i]);
		free(t.defs[i]);
	}
	for (i = 0; i < t.n_aliases; i++)
		free(t.aliases[i]);
	free(t.names);
	free(t.envs);
	free(t.defs);
	free(t.aliases);
	return tap_done();
}
