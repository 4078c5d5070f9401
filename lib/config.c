/*
 * config.c -- the loader that fills a struct config from the key table
 * (lib/config_keys.c): defaults, the libconfig file (lib/config_file.c),
 * `.env` and the environment (lib/config_env.c), then the command line, in
 * that order (see config.h for the precedence rules); validation and the
 * values derived from others; the introspection that `ingen config` and
 * the tests use.
 *
 * It owns every validation rule of the configuration.  It never logs
 * (problems are returned as lines), never keeps mutable global state, and
 * never writes a secret value into a problem line.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/config_int.h"
#include "lib/xmalloc.h"

extern char **environ;

#ifndef INGEN_SYSCONFDIR
#define INGEN_SYSCONFDIR "/etc"
#endif

#define QUOTED_VALUE_MAX   64               /* echoed bytes of a bad value */

/* ------------------------------------------------------------------ */
/* Keys and values                                                     */

const struct config_key *
config_key_find(const char *name)
{
	size_t i;

	for (i = 0; i < config_n_keys; i++)
		if (strcasecmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

size_t
config_key_index(const struct config_key *k)
{
	return (size_t)(k - config_keys);
}

/* Is `name` a group of the table ("web_configuration.authentication")? */
bool
config_group_exists(const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < config_n_keys; i++)
		if (strncasecmp(config_keys[i].name, name, n) == 0 &&
		    config_keys[i].name[n] == '.')
			return true;
	return false;
}

int
config_list_find(const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_N_LISTS; i++)
		if (strcasecmp(config_lists[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const char *
key_type_name(enum key_type t)
{
	switch (t) {
	case KEY_STRING:
		return "string";
	case KEY_INT:
		return "int";
	case KEY_BOOL:
		return "bool";
	case KEY_ENUM:
		return "enum";
	}
	return "?";
}

/* What a value of type t looks like, for "expected ..." messages. */
const char *
config_key_type_expect(enum key_type t)
{
	switch (t) {
	case KEY_STRING:
	case KEY_ENUM:
		return "a string";
	case KEY_INT:
		return "an integer";
	case KEY_BOOL:
		return "a boolean";
	}
	return "a value";
}

/* "INGENIOUS_" + upper-cased name, "." -> "__", "*" -> "<i>". */
static void
key_env_name(const char *name, struct buf *b)
{
	const char *p;

	buf_reset(b);
	buf_puts(b, CONFIG_ENV_PREFIX);
	for (p = name; *p; p++) {
		if (*p == '.')
			buf_puts(b, "__");
		else if (*p == '*')
			buf_puts(b, "<i>");
		else
			buf_putc(b, (char)toupper((unsigned char)*p));
	}
	buf_cstr(b);
}

union key_value {
	long long i;
	bool b;
	const char *s;
};

/* Append `s` for a message: quoted, at most QUOTED_VALUE_MAX bytes, control
 * characters escaped (a value must not forge a log line). */
static void
quote_value(struct buf *b, const char *s)
{
	size_t i;

	buf_putc(b, '"');
	for (i = 0; s[i] != '\0' && i < QUOTED_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
	if (s[i] != '\0')
		buf_puts(b, "...");
	buf_putc(b, '"');
}

static int
parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* The spellings pydantic accepts for a boolean. */
static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "t", "yes", "y", "on",
		NULL };
	static const char *const no[] = { "0", "false", "f", "no", "n", "off",
		NULL };
	char word[8];
	size_t i, n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(word))
		return -1;
	memcpy(word, s, n);
	word[n] = '\0';
	for (i = 0; yes[i]; i++)
		if (strcasecmp(word, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (i = 0; no[i]; i++)
		if (strcasecmp(word, no[i]) == 0) {
			*out = false;
			return 0;
		}
	return -1;
}

/*
 * Parse `text` as a value of k.  On failure append to `why` a message that
 * echoes the value only when k is not a secret, and return -1.
 */
static int
key_parse(const struct config_key *k, const char *text, union key_value *v,
    struct buf *why)
{
	bool secret = (k->flags & KEY_SECRET) != 0;
	size_t i;

	switch (k->type) {
	case KEY_STRING:
		v->s = text;
		return 0;
	case KEY_INT:
		if (parse_int(text, &v->i) == -1) {
			buf_puts(why, "invalid integer");
			if (!secret) {
				buf_putc(why, ' ');
				quote_value(why, text);
			}
			return -1;
		}
		if (v->i < k->min || v->i > k->max) {
			if (secret)
				buf_puts(why, "value is out of range");
			else
				buf_printf(why, "value %lld is out of range",
				    v->i);
			buf_printf(why, " (%lld..%lld)", k->min, k->max);
			return -1;
		}
		return 0;
	case KEY_BOOL:
		if (parse_bool(text, &v->b) == -1) {
			buf_puts(why, "invalid boolean");
			if (!secret) {
				buf_putc(why, ' ');
				quote_value(why, text);
			}
			buf_puts(why, " (expected true or false)");
			return -1;
		}
		return 0;
	case KEY_ENUM:
		for (i = 0; k->values[i]; i++)
			if (strcasecmp(text, k->values[i]) == 0) {
				v->s = k->values[i];      /* canonical spelling */
				return 0;
			}
		buf_puts(why, "invalid value");
		if (!secret) {
			buf_putc(why, ' ');
			quote_value(why, text);
		}
		buf_puts(why, " (expected one of:");
		for (i = 0; k->values[i]; i++)
			buf_printf(why, "%s %s", i ? "," : "", k->values[i]);
		buf_putc(why, ')');
		return -1;
	}
	return -1;
}

/* Store a parsed value at base + k->offset (nothing for unused keys). */
static void
key_store(const struct config_key *k, char *base, const union key_value *v)
{
	void *dst;

	if (base == NULL || k->scope == SCOPE_UNUSED)
		return;
	dst = base + k->offset;
	switch (k->type) {
	case KEY_STRING:
	case KEY_ENUM: {
		char **sp = dst;

		free(*sp);
		*sp = xstrdup(v->s);
		break;
	}
	case KEY_INT:
		*(int *)dst = (int)v->i;
		break;
	case KEY_BOOL:
		*(bool *)dst = v->b;
		break;
	}
}

/* The value of k at base + offset, as text (a secret masked if asked). */
static void
key_format(const struct config_key *k, const char *base, bool mask,
    struct buf *b)
{
	const void *src = base + k->offset;

	buf_reset(b);
	switch (k->type) {
	case KEY_STRING:
	case KEY_ENUM: {
		const char *s = *(char *const *)src;

		if (s == NULL)
			s = "";
		buf_puts(b, mask && (k->flags & KEY_SECRET) && *s ?
		    CONFIG_MASKED_SECRET : s);
		break;
	}
	case KEY_INT:
		buf_printf(b, "%d", *(const int *)src);
		break;
	case KEY_BOOL:
		buf_puts(b, *(const bool *)src ? "true" : "false");
		break;
	}
	buf_cstr(b);
}

/* Defaults of every key of `scope` into base (a zeroed struct). */
static void
scope_init(enum key_scope scope, char *base)
{
	struct buf why = BUF_INIT;
	union key_value v;
	size_t i;

	for (i = 0; i < config_n_keys; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope != scope)
			continue;
		/* the table's defaults are valid: test_config checks them */
		if (key_parse(k, k->def, &v, &why) == 0)
			key_store(k, base, &v);
	}
	buf_free(&why);
}

static void
scope_free(enum key_scope scope, char *base)
{
	size_t i;

	for (i = 0; i < config_n_keys; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope == scope &&
		    (k->type == KEY_STRING || k->type == KEY_ENUM))
			free(*(char **)(void *)(base + k->offset));
	}
}

/* The entries of list li and their number. */
char *
config_list_base(const struct config *cfg, size_t li, size_t *n)
{
	if (config_lists[li].scope == SCOPE_MODEL) {
		*n = cfg->n_models;
		return (char *)cfg->models;
	}
	*n = cfg->n_search;
	return (char *)cfg->search;
}

static void
list_store(struct config *cfg, size_t li, char *base, size_t n)
{
	if (config_lists[li].scope == SCOPE_MODEL) {
		cfg->models = (struct config_model *)(void *)base;
		cfg->n_models = n;
	} else {
		cfg->search = (struct config_search *)(void *)base;
		cfg->n_search = n;
	}
}

/* ------------------------------------------------------------------ */
/* The loader                                                          */

const char *
config_ld_keep(struct config_loader *ld, char *s)
{
	if (ld->n_strs == ld->cap_strs) {
		ld->cap_strs = ld->cap_strs ? ld->cap_strs * 2 : 32;
		ld->strs = xrealloc(ld->strs, ld->cap_strs * sizeof(*ld->strs));
	}
	ld->strs[ld->n_strs++] = s;
	return s;
}

static void
lines_add(char ***lines, size_t *n, char *line)
{
	*lines = xrealloc(*lines, (*n + 1) * sizeof(**lines));
	(*lines)[(*n)++] = line;
}

/* "<label>: <what>: <message>", either prefix left out when NULL. */
static char *
msg_build(const char *label, const char *what, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (label)
		buf_printf(&b, "%s: ", label);
	if (what)
		buf_printf(&b, "%s: ", what);
	buf_vprintf(&b, fmt, ap);
	return buf_cstr(&b);
}

void
config_ld_problem(struct config_loader *ld, const char *label, const char *what,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lines_add(&ld->pr->lines, &ld->pr->n, msg_build(label, what, fmt, ap));
	va_end(ap);
}

void
config_ld_warning(struct config_loader *ld, const char *label, const char *what,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lines_add(&ld->pr->warnings, &ld->pr->n_warnings,
	    msg_build(label, what, fmt, ap));
	va_end(ap);
}

/* Resize list li to n entries; new entries hold the defaults. */
void
config_list_resize(struct config_loader *ld, size_t li, size_t n)
{
	const struct config_list *d = &config_lists[li];
	size_t i, old;
	char *base = config_list_base(ld->cfg, li, &old);

	for (i = n; i < old; i++)
		scope_free(d->scope, base + i * d->elem_size);
	if (n == 0) {
		free(base);
		base = NULL;
	} else {
		base = xrealloc(base, n * d->elem_size);
		ld->lsrc[li] = xrealloc(ld->lsrc[li],
		    n * config_n_keys * sizeof(*ld->lsrc[li]));
	}
	for (i = old; i < n; i++) {
		memset(base + i * d->elem_size, 0, d->elem_size);
		scope_init(d->scope, base + i * d->elem_size);
		memset(&ld->lsrc[li][i * config_n_keys], 0,
		    config_n_keys * sizeof(*ld->lsrc[li]));
	}
	list_store(ld->cfg, li, base, n);
}

/* Entry `pos` of list li, and the slot that records who set key k in it. */
char *
config_list_entry(struct config_loader *ld, size_t li, size_t pos,
    const struct config_key *k, const char ***srcp)
{
	size_t n;
	char *base = config_list_base(ld->cfg, li, &n);

	*srcp = &ld->lsrc[li][pos * config_n_keys + config_key_index(k)];
	return base + pos * config_lists[li].elem_size;
}

/*
 * Set key k (stored under base) from `text`, given by source `label`;
 * `what` names the key when the label does not.  Records the source in
 * *srcp.  A bad value is a problem line; returns -1.
 */
int
config_ld_set(struct config_loader *ld, const struct config_key *k, char *base,
    const char **srcp, const char *text, const char *label, const char *what)
{
	struct buf why = BUF_INIT;
	union key_value v;

	if (key_parse(k, text, &v, &why) == -1) {
		config_ld_problem(ld, label, what, "%s", buf_cstr(&why));
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	key_store(k, base, &v);
	if (srcp)
		*srcp = label;
	if (k->scope == SCOPE_UNUSED)
		config_ld_warning(ld, label, what ? what : k->name,
		    "accepted for compatibility, has no effect");
	return 0;
}

/* Set a main-scope (or unused) key. */
int
config_ld_set_main(struct config_loader *ld, const struct config_key *k,
    const char *text, const char *label, const char *what)
{
	return config_ld_set(ld, k, (char *)ld->cfg,
	    &ld->src[config_key_index(k)], text, label, what);
}

/* strerror_r, or the reason a file was refused for its size. */
const char *
config_errstr(int errnum, char *tmp, size_t len)
{
	if (errnum == EFBIG)
		return "file is larger than 1 MiB";
	return strerror_r(errnum, tmp, len);
}

/* The dotted name with "*" replaced by the entry index, for messages. */
char *
config_name_with_index(const char *name, int index)
{
	const char *star = strstr(name, ".*.");

	if (star == NULL || index < 0)
		return xstrdup(name);
	return xasprintf("%.*s.%d.%s", (int)(star - name), name, index,
	    star + 3);
}

/* The file to read, or NULL; a named file that is missing is an error. */
static const char *
file_choose(struct config_loader *ld, const struct config_overrides *ov,
    const struct config_env_var *env, size_t n_env,
    const struct config_dotenv *de, const char *dir)
{
	static const char *const system_files[] = {
		INGEN_SYSCONFDIR "/ingenious/ingenious.conf",
		"/etc/ingenious/ingenious.conf",
	};
	const char *named = NULL;
	char *local;
	size_t i;

	if (ov != NULL && ov->config_file != NULL)
		named = ov->config_file;
	for (i = 0; named == NULL && i < n_env; i++)
		if (strcasecmp(env[i].name, "INGENIOUS_CONFIG") == 0)
			named = env[i].value;
	for (i = 0; named == NULL && i < de->n; i++)
		if (strcasecmp(de->vars[i].name, "INGENIOUS_CONFIG") == 0)
			named = de->vars[i].value;
	if (named != NULL)
		return named[0] ? named : NULL;

	local = xasprintf("%s/ingenious.conf", dir ? dir : ".");
	if (access(local, F_OK) == 0)
		return config_ld_keep(ld, local);
	free(local);
	for (i = 0; i < sizeof(system_files) / sizeof(system_files[0]); i++)
		if (access(system_files[i], F_OK) == 0)
			return system_files[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Command line, validation, results                                   */

static void
apply_overrides(struct config_loader *ld, const struct config_overrides *ov)
{
	char tmp[32];

	if (ov == NULL)
		return;
	if (ov->host != NULL)
		config_ld_set_main(ld,
		    config_key_find("web_configuration.ip_address"), ov->host,
		    "--host", NULL);
	if (ov->port != -1) {
		snprintf(tmp, sizeof(tmp), "%d", ov->port);
		config_ld_set_main(ld,
		    config_key_find("web_configuration.port"), tmp, "--port",
		    NULL);
	}
	if (ov->workers != -1) {
		snprintf(tmp, sizeof(tmp), "%d", ov->workers);
		config_ld_set_main(ld, config_key_find("server.workers"), tmp,
		    "--workers", NULL);
	}
	if (ov->pidfile != NULL)
		config_ld_set_main(ld, config_key_find("server.pidfile"),
		    ov->pidfile, "--pidfile", NULL);
}

static const char *
ld_src(const struct config_loader *ld, const char *name)
{
	return ld->src[config_key_index(config_key_find(name))];
}

/* Who set entry `pos` of list li: the source of `field`, else of any. */
static const char *
ld_entry_src(const struct config_loader *ld, size_t li, size_t pos,
    const char *field)
{
	const char **src = &ld->lsrc[li][pos * config_n_keys];
	const struct config_key *k = field ? config_key_find(field) : NULL;
	size_t i;

	if (k && src[config_key_index(k)])
		return src[config_key_index(k)];
	for (i = 0; i < config_n_keys; i++)
		if (src[i])
			return src[i];
	return NULL;
}

/* A memory size as PostgreSQL reads it: digits and an optional unit. */
static bool
pg_size_valid(const char *s, bool minus_one)
{
	const char *p = s;

	if (minus_one && strcmp(s, "-1") == 0)
		return true;
	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	return *p == '\0' || strcmp(p, "kB") == 0 || strcmp(p, "MB") == 0 ||
	    strcmp(p, "GB") == 0 || strcmp(p, "TB") == 0;
}

/*
 * The SQL agent's keys: values that end up in SET LOCAL statements and in
 * the guard's comparison of schema names must have a shape that needs no
 * quoting; the test-only switch and the Azure SQL keys get a warning.
 */
static void
validate_sql_agent(struct config_loader *ld)
{
	const struct config *c = ld->cfg;
	const char *p = c->sql_agent.schema;
	bool ok = *p != '\0' && strlen(p) <= 63 && !isdigit((unsigned char)*p) &&
	    strncmp(p, "pg_", 3) != 0;

	for (; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
		    *p == '_'))
			ok = false;
	if (!ok)
		config_ld_problem(ld, ld_src(ld, "sql_agent.schema"), NULL,
		    "sql_agent.schema \"%s\" must be a lower-case name of letters, "
		    "digits and _ (at most 63, not starting with pg_)",
		    c->sql_agent.schema);
	if (!pg_size_valid(c->sql_agent.work_mem, false))
		config_ld_problem(ld, ld_src(ld, "sql_agent.work_mem"), NULL,
		    "sql_agent.work_mem \"%s\" must be a size such as 4MB "
		    "(digits, then kB, MB, GB or TB)", c->sql_agent.work_mem);
	if (!pg_size_valid(c->sql_agent.temp_file_limit, true))
		config_ld_problem(ld, ld_src(ld, "sql_agent.temp_file_limit"), NULL,
		    "sql_agent.temp_file_limit \"%s\" must be a size such as "
		    "16MB, or -1", c->sql_agent.temp_file_limit);
	if (ok && strcmp(c->sql_agent.schema, "public") == 0 &&
	    c->sql_agent.database_url[0] == '\0' &&
	    c->local_sql_db.database_url[0] == '\0')
		config_ld_warning(ld, ld_src(ld, "sql_agent.schema"), NULL,
		    "sql_agent.schema \"public\" on the local cluster is the chat "
		    "history's schema: the guard lets its tables through (the "
		    "ingenious_sqlagent role still refuses them); keep the agent's "
		    "data in its own schema (docs/sql-agent.md)");
	if (!c->sql_agent.guard)
		config_ld_warning(ld, ld_src(ld, "sql_agent.guard"), NULL,
		    "sql_agent.guard is false: the SQL agent's statements reach "
		    "the database unchecked (a test-only setting; the role and "
		    "the read-only transaction still hold)");
	if (ld_src(ld, "azure_sql_services.database_connection_string") != NULL)
		config_ld_warning(ld, ld_src(ld,
		    "azure_sql_services.database_connection_string"), NULL,
		    "azure_sql_services.database_connection_string is not "
		    "supported: this server speaks PostgreSQL only; point the SQL "
		    "agent at a PostgreSQL database with sql_agent.database_url "
		    "(docs/sql-agent.md)");
}

static void
validate(struct config_loader *ld)
{
	struct config *c = ld->cfg;
	size_t i;

	if (c->web.authentication.enable &&
	    c->web.authentication.password[0] == '\0')
		config_ld_problem(ld, NULL, NULL,
		    "Web authentication is enabled but no "
		    "password is set. Set "
		    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD.");

	if ((long long)c->server.worker_timeout * 1000 <= c->llm.timeout_ms) {
		const char *src = ld_src(ld, "server.worker_timeout");

		config_ld_problem(ld, src ? src : ld_src(ld, "llm.timeout_ms"),
		    NULL, "server.worker_timeout (%d s) must be longer than "
		    "llm.timeout_ms (%d ms)", c->server.worker_timeout,
		    c->llm.timeout_ms);
	}

	/* a .env written for the Python product says sqlite: history then
	 * lives in PostgreSQL, which is worth a warning, not a refusal */
	if (strcmp(c->chat_history.database_type, "sqlite") == 0)
		config_ld_warning(ld, ld_src(ld, "chat_history.database_type"),
		    NULL, "chat_history.database_type \"sqlite\" is served by "
		    "PostgreSQL (chat_history.database_url, or the local cluster "
		    "when empty)");
	else if (strcmp(c->chat_history.database_type, "postgresql") != 0)
		config_ld_problem(ld, ld_src(ld, "chat_history.database_type"),
		    NULL, "chat_history.database_type \"%s\" is not supported: "
		    "only \"postgresql\" is implemented (set "
		    "chat_history.database_url, or leave it empty for the local "
		    "cluster)",
		    c->chat_history.database_type);

	validate_sql_agent(ld);

	for (i = 0; i < c->n_models; i++) {
		const struct config_model *m = &c->models[i];

		if (m->model[0] == '\0')
			config_ld_problem(ld, ld_entry_src(ld, 0, i, NULL),
			    NULL, "models.%zu.model: a model name is required",
			    i);
		if (strcasestr(m->api_key, "placeholder") != NULL)
			config_ld_problem(ld, ld_entry_src(ld, 0, i,
			    "models.*.api_key"), NULL,
			    "models.%zu.api_key: a placeholder is not an "
			    "API key", i);
		if (strcasestr(m->base_url, "placeholder") != NULL)
			config_ld_problem(ld, ld_entry_src(ld, 0, i,
			    "models.*.base_url"), NULL,
			    "models.%zu.base_url: a placeholder is not a "
			    "URL", i);
		else if (m->base_url[0] != '\0' &&
		    strncasecmp(m->base_url, "http://", 7) != 0 &&
		    strncasecmp(m->base_url, "https://", 8) != 0)
			config_ld_problem(ld, ld_entry_src(ld, 0, i,
			    "models.*.base_url"), NULL,
			    "models.%zu.base_url: must start with http:// "
			    "or https://", i);
	}
}

/*
 * A key that nothing reads yet (KEY_UNUSED) and that a source set to a
 * value other than its default: a warning naming it, so that an operator
 * who relies on it learns that it does nothing (yet).  Compared as text
 * against a defaults-only struct, so an explicit default is no warning.
 */
static void
warn_unused_scope(struct config_loader *ld, enum key_scope scope,
    const char *base, const char *defaults, const char **src, int index)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t i;

	for (i = 0; i < config_n_keys; i++) {
		const struct config_key *k = &config_keys[i];
		char *what;

		if (k->scope != scope || !(k->flags & KEY_UNUSED))
			continue;
		key_format(k, base, false, &a);
		key_format(k, defaults, false, &b);
		if (strcmp(a.data, b.data) == 0)
			continue;
		what = config_name_with_index(k->name, index);
		config_ld_warning(ld, src[i], what, "accepted for compatibility, "
		    "not used yet: the value has no effect");
		free(what);
	}
	buf_free(&a);
	buf_free(&b);
}

static void
warn_unused(struct config_loader *ld)
{
	struct config defaults;
	size_t li, e, n;

	memset(&defaults, 0, sizeof(defaults));
	scope_init(SCOPE_MAIN, (char *)&defaults);
	warn_unused_scope(ld, SCOPE_MAIN, (const char *)ld->cfg,
	    (const char *)&defaults, ld->src, -1);
	scope_free(SCOPE_MAIN, (char *)&defaults);
	for (li = 0; li < CONFIG_N_LISTS; li++) {
		const struct config_list *d = &config_lists[li];
		const char *base = config_list_base(ld->cfg, li, &n);
		char *entry = xcalloc(1, d->elem_size);

		scope_init(d->scope, entry);
		for (e = 0; e < n; e++)
			warn_unused_scope(ld, d->scope, base + e * d->elem_size,
			    entry, &ld->lsrc[li][e * config_n_keys], (int)e);
		scope_free(d->scope, entry);
		free(entry);
	}
}

/* Values derived from others once every source is in. */
static void
finish(struct config_loader *ld)
{
	struct config *c = ld->cfg;

	if (c->server.max_requests > 0 && c->server.max_requests_jitter == 0 &&
	    ld_src(ld, "server.max_requests_jitter") == NULL)
		c->server.max_requests_jitter = c->server.max_requests / 10;
	/* the older local_sql_db names of three sql_agent keys, when only
	 * they are set */
	if (ld_src(ld, "sql_agent.database_url") == NULL &&
	    ld_src(ld, "local_sql_db.database_url") != NULL) {
		free(c->sql_agent.database_url);
		c->sql_agent.database_url = xstrdup(c->local_sql_db.database_url);
	}
	if (ld_src(ld, "sql_agent.statement_timeout_ms") == NULL &&
	    ld_src(ld, "local_sql_db.statement_timeout_ms") != NULL)
		c->sql_agent.statement_timeout_ms = c->local_sql_db.statement_timeout_ms;
	if (ld_src(ld, "sql_agent.max_rows") == NULL &&
	    ld_src(ld, "local_sql_db.max_rows") != NULL)
		c->sql_agent.max_rows = c->local_sql_db.max_rows;
	if (c->web.authentication.jwt_key_file[0] == '\0') {
		free(c->web.authentication.jwt_key_file);
		c->web.authentication.jwt_key_file = xasprintf("%s/jwt.key",
		    c->server.state_dir);
	}
}

/*
 * On a reload: a key that cannot change without a restart (KEY_RESTART)
 * keeps the value of the running generation, with a warning that names it
 * and both values (PgBouncer CF_NO_RELOAD, PostgreSQL PGC_POSTMASTER).
 * Runs before validation and derivation, so that derived values (the key
 * file under state_dir) follow the value kept.
 */
static void
keep_restart_keys(struct config_loader *ld, const struct config *old_cfg)
{
	struct buf a = BUF_INIT, b = BUF_INIT, msg = BUF_INIT, why = BUF_INIT;
	union key_value v;
	size_t i;

	for (i = 0; i < config_n_keys; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope != SCOPE_MAIN || !(k->flags & KEY_RESTART))
			continue;
		key_format(k, (const char *)old_cfg, false, &a);
		key_format(k, (const char *)ld->cfg, false, &b);
		if (strcmp(a.data, b.data) == 0)
			continue;
		buf_reset(&msg);
		buf_puts(&msg, "cannot be changed without restarting the server");
		if (!(k->flags & KEY_SECRET)) {
			buf_puts(&msg, ": keeping ");
			quote_value(&msg, a.data);
			buf_puts(&msg, ", not ");
			quote_value(&msg, b.data);
		}
		config_ld_warning(ld, ld->src[i], k->name, "%s", buf_cstr(&msg));
		/* the old value is valid: it passed this same table */
		buf_reset(&why);
		if (key_parse(k, a.data, &v, &why) == 0)
			key_store(k, (char *)ld->cfg, &v);
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&msg);
	buf_free(&why);
}

static struct config *
load(const struct config_overrides *ov, char *const *env,
    const char *dotenv_dir, const struct config *old_cfg,
    struct config_problems *problems)
{
	struct config_loader ld;
	struct config_dotenv de = { NULL, 0, 0 };
	struct config_env_var *evars, *dvars;
	const char *path;
	size_t i, n_env, n_dot = 0;
	struct config *cfg;

	memset(problems, 0, sizeof(*problems));
	memset(&ld, 0, sizeof(ld));
	ld.pr = problems;
	ld.src = xcalloc(config_n_keys, sizeof(*ld.src));
	ld.cfg = cfg = xcalloc(1, sizeof(*cfg));
	scope_init(SCOPE_MAIN, (char *)cfg);

	evars = config_env_collect(&ld, env ? env : environ, &n_env);
	config_dotenv_load(&ld, dotenv_dir, &de);

	path = file_choose(&ld, ov, evars, n_env, &de, dotenv_dir);
	if (path != NULL)
		config_file_load(&ld, path);

	/* .env values apply only where the environment is silent */
	dvars = xcalloc(de.n ? de.n : 1, sizeof(*dvars));
	for (i = 0; i < de.n; i++)
		if (!config_env_has(evars, n_env, de.vars[i].name))
			dvars[n_dot++] = de.vars[i];
	config_env_apply(&ld, dvars, n_dot);
	config_env_apply(&ld, evars, n_env);
	apply_overrides(&ld, ov);
	if (old_cfg != NULL)
		keep_restart_keys(&ld, old_cfg);

	validate(&ld);
	warn_unused(&ld);
	finish(&ld);

	free(dvars);
	free(de.vars);
	free(evars);
	for (i = 0; i < CONFIG_N_LISTS; i++)
		free(ld.lsrc[i]);
	free(ld.src);
	for (i = 0; i < ld.n_strs; i++)
		free(ld.strs[i]);
	free(ld.strs);
	if (problems->n > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct config *
config_load(const struct config_overrides *ov, char *const *env,
    const char *dotenv_dir, struct config_problems *problems)
{
	return load(ov, env, dotenv_dir, NULL, problems);
}

struct config *
config_reload(const struct config *old_cfg,
    const struct config_overrides *ov, char *const *env,
    const char *dotenv_dir, struct config_problems *problems)
{
	return load(ov, env, dotenv_dir, old_cfg, problems);
}

void
config_free(struct config *cfg)
{
	size_t li, i, n;
	char *base;

	if (cfg == NULL)
		return;
	scope_free(SCOPE_MAIN, (char *)cfg);
	for (li = 0; li < CONFIG_N_LISTS; li++) {
		base = config_list_base(cfg, li, &n);
		for (i = 0; i < n; i++)
			scope_free(config_lists[li].scope,
			    base + i * config_lists[li].elem_size);
		free(base);
	}
	free(cfg->source_file);
	free(cfg);
}

void
config_problems_free(struct config_problems *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++)
		free(p->lines[i]);
	for (i = 0; i < p->n_warnings; i++)
		free(p->warnings[i]);
	free(p->lines);
	free(p->warnings);
	memset(p, 0, sizeof(*p));
}

void
config_keys_foreach(void (*fn)(void *arg, const char *name,
    const char *env_name, const char *default_text, bool secret), void *arg)
{
	struct buf env = BUF_INIT;
	size_t i;

	for (i = 0; i < config_n_keys; i++) {
		key_env_name(config_keys[i].name, &env);
		fn(arg, config_keys[i].name, env.data, config_keys[i].def,
		    (config_keys[i].flags & KEY_SECRET) != 0);
	}
	buf_free(&env);
}

void
config_keys_describe(void (*fn)(void *arg, const struct config_key_info *key),
    void *arg)
{
	struct buf env = BUF_INIT;
	struct config_key_info info;
	size_t i;

	for (i = 0; i < config_n_keys; i++) {
		const struct config_key *k = &config_keys[i];

		key_env_name(k->name, &env);
		memset(&info, 0, sizeof(info));
		info.name = k->name;
		info.env_name = env.data;
		info.default_text = k->def;
		info.type = key_type_name(k->type);
		info.values = k->values;
		info.min = k->min;
		info.max = k->max;
		info.secret = (k->flags & KEY_SECRET) != 0;
		info.reloadable = (k->flags & KEY_RESTART) == 0;
		info.unused = k->scope == SCOPE_UNUSED ||
		    (k->flags & KEY_UNUSED) != 0;
		fn(arg, &info);
	}
	buf_free(&env);
}

void
config_aliases_foreach(void (*fn)(void *arg, const char *env_name,
    const char *key), void *arg)
{
	size_t i;

	for (i = 0; i < config_n_aliases; i++)
		fn(arg, config_aliases[i].env, config_aliases[i].key);
}

void
config_foreach_value(const struct config *cfg, void (*fn)(void *arg,
    const char *name, const char *value, bool secret), void *arg)
{
	struct buf val = BUF_INIT;
	size_t i, li, e, n;

	for (i = 0; i < config_n_keys; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->scope != SCOPE_MAIN)
			continue;
		key_format(k, (const char *)cfg, true, &val);
		fn(arg, k->name, val.data, (k->flags & KEY_SECRET) != 0);
	}
	for (li = 0; li < CONFIG_N_LISTS; li++) {
		const char *base = config_list_base(cfg, li, &n);

		for (e = 0; e < n; e++)
			for (i = 0; i < config_n_keys; i++) {
				const struct config_key *k = &config_keys[i];
				char *name;

				if (k->scope != config_lists[li].scope)
					continue;
				key_format(k,
				    base + e * config_lists[li].elem_size, true,
				    &val);
				name = config_name_with_index(k->name, (int)e);
				fn(arg, name, val.data,
				    (k->flags & KEY_SECRET) != 0);
				free(name);
			}
	}
	buf_free(&val);
}

/*
 * What server.workers = 0 means is part of that key's definition ("0 = one
 * per CPU"), so it is answered here, next to the table, and not by each
 * caller; the value is not stored in the config so that `ingen config`
 * shows what the operator wrote.  The CPUs are those this process may run
 * on (its affinity mask, as a container or `taskset` sets it), at least 1.
 */
static int
cpus_available(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n < INT_MAX ? (int)n : 1;
}

int
config_workers(const struct config *cfg)
{
	return cfg->server.workers > 0 ? cfg->server.workers : cpus_available();
}
