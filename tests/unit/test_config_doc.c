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
 *
 * The marks: a key's documentation is its own line and the explanation
 * block ("# text" lines) above it, which covers every key line that follows
 * until a blank line, a group or list line, or the next explanation.  It
 * says "(unused)" exactly when the table flags the key unused (accepted for
 * compatibility, not used yet) and "(restart)" exactly when a reload cannot
 * change it.
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
	bool *unused, *restart;
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
table_add(void *arg, const struct config_key_info *k)
{
	struct table *t = arg;

	t->names = xrealloc(t->names, (t->n + 1) * sizeof(*t->names));
	t->envs = xrealloc(t->envs, (t->n + 1) * sizeof(*t->envs));
	t->defs = xrealloc(t->defs, (t->n + 1) * sizeof(*t->defs));
	t->unused = xrealloc(t->unused, (t->n + 1) * sizeof(*t->unused));
	t->restart = xrealloc(t->restart, (t->n + 1) * sizeof(*t->restart));
	t->names[t->n] = xstrdup(k->name);
	t->envs[t->n] = xstrdup(k->env_name);
	t->defs[t->n] = xstrdup(k->default_text);
	t->unused[t->n] = k->unused;
	t->restart[t->n] = !k->reloadable;
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

/* "#key = value;" or "key = value;" (a setting, not a group or a list). */
static bool
is_key_line(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '#')
		s++;
	if (!isalpha((unsigned char)*s))
		return false;
	while (isalnum((unsigned char)*s) || *s == '_')
		s++;
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '=' && strchr(s, ';') != NULL;
}

/* "# text" or a lone "#": an explanation, not a key shown commented. */
static bool
is_explanation(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s[0] == '#' && (s[1] == '\0' || s[1] == ' ' || s[1] == '#');
}

/*
 * For every line of the documented file, the documentation of the key on
 * that line (NULL when there is none): the explanation block that covers
 * it plus the line itself.  Returns the array, indexed by line number.
 */
static char **
doc_blocks(const char *text, int *n_lines)
{
	struct buf expl = BUF_INIT;
	char **blocks = NULL;
	const char *p = text;
	bool in_expl = false;
	int line = 0;

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char *s = xstrndup(p, len);
		const char *q = s;

		line++;
		blocks = xrealloc(blocks, (size_t)(line + 1) * sizeof(*blocks));
		blocks[line] = NULL;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '\0') {
			buf_reset(&expl);
			in_expl = false;
		} else if (is_explanation(s)) {
			if (!in_expl)
				buf_reset(&expl);
			buf_printf(&expl, "%s\n", q);
			in_expl = true;
		} else {
			in_expl = false;
			if (is_key_line(s))
				blocks[line] = xasprintf("%s%s",
				    expl.len ? buf_cstr(&expl) : "", s);
			else
				buf_reset(&expl);   /* a group or list line */
		}
		free(s);
		p += len + (eol != NULL);
	}
	buf_free(&expl);
	*n_lines = line;
	blocks = xrealloc(blocks, (size_t)(line + 1) * sizeof(*blocks));
	blocks[0] = NULL;
	return blocks;
}

/* The marks of every documented key agree with the table. */
static void
check_marks(const char *text, const struct doc *d, const struct table *t)
{
	int n_lines, i, bad = 0, unused = 0;
	char **blocks = doc_blocks(text, &n_lines);
	size_t k, j;

	for (k = 0; k < t->n; k++) {
		const char *block = NULL;
		bool has_unused, has_restart;

		for (j = 0; j < d->n && block == NULL; j++)
			if (strcmp(d->keys[j].name, t->names[k]) == 0 &&
			    d->keys[j].line <= n_lines)
				block = blocks[d->keys[j].line];
		if (block == NULL)
			continue;         /* "is documented" says it */
		has_unused = strstr(block, "(unused)") != NULL;
		has_restart = strstr(block, "(restart)") != NULL;
		if (t->unused[k])
			unused++;
		if (has_unused != t->unused[k]) {
			ok(0, "%s is %smarked (unused) in etc/ingenious.conf, the "
			    "table says it is %s", t->names[k], has_unused ? "" :
			    "not ", t->unused[k] ? "unused" : "used");
			bad++;
		}
		if (has_restart != t->restart[k]) {
			ok(0, "%s is %smarked (restart) in etc/ingenious.conf, the "
			    "table says a reload %s change it", t->names[k],
			    has_restart ? "" : "not ", t->restart[k] ? "cannot" :
			    "can");
			bad++;
		}
	}
	ok(bad == 0, "the (unused) and (restart) marks agree with the table "
	    "(%d unused keys)", unused);
	for (i = 0; i <= n_lines; i++)
		free(blocks[i]);
	free(blocks);
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
	check_marks(text, &d, t);

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
	config_keys_describe(table_add, &t);
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
	free(t.unused);
	free(t.restart);
	free(t.aliases);
	return tap_done();
}
