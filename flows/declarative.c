/*
 * declarative.c -- flows without code: it finds the flow files of the flow
 * path, parses and checks each one (libconfig syntax; every error with its
 * file and line), and executes a checked flow through the flow API
 * (ing_llm_chat, ing_llm_parallel, ing_prompt_render, ing_emit_status).
 * A flow file never runs code: it offers no tool but the flow's other
 * agents, opens no file but its templates (through ing_prompt_render), and
 * loops nowhere (every step runs once, in order; agent tools form no
 * cycle).  It never touches the registry's rules between flows
 * (flows/registry.c).
 */
#include "autoconfig.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "flows/ctx.h"
#include "flows/declarative.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/config_tree.h"
#include "lib/err.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "lib/tmpl.h"
#include "lib/xmalloc.h"

#define DECL_NAME_MAX 128           /* REGISTRY_NAME_MAX */
#define DECL_EXCERPT_DEFAULT 50     /* the guide's user_prompt[:50] */
#define DECL_EXCERPT_MAX 10000
#define DECL_MAX_TOKENS_MAX 1000000
#define DECL_SUFFIX ".flow"

/* The tool schema of an agent offered as a tool. */
#define DECL_TOOL_SCHEMA "{\"type\":\"object\",\"properties\":{\"input\":" \
	"{\"type\":\"string\",\"description\":\"what to ask the agent\"}}," \
	"\"required\":[\"input\"]}"
#define DECL_SQL_SCHEMA "{\"type\":\"object\",\"properties\":{\"query\":" \
	"{\"type\":\"string\",\"description\":\"one SQL SELECT statement\"}}," \
	"\"required\":[\"query\"]}"
#define DECL_KB_SCHEMA "{\"type\":\"object\",\"properties\":{\"query\":" \
	"{\"type\":\"string\",\"description\":\"what to search for\"}}," \
	"\"required\":[\"query\"]}"

/* One prompt of an agent: a template file of the flow's revision, or
 * inline text parsed at load. */
struct decl_prompt {
	char *file;                 /* ing_prompt_render(revision, file), or NULL */
	struct tmpl *inline_t;      /* or this, or neither (the default) */
};

struct decl_agent {
	char *name;
	char *model;                /* NULL: role "chat" */
	struct decl_prompt system, user;
	bool has_temperature;
	double temperature;
	int max_tokens;
	bool json_response;
	size_t *tools;              /* indexes into agents */
	size_t n_tools;
	bool kb_search;             /* the knowledge base's search as a tool */
	bool sql_query;             /* the SQL agent's read-only query as a tool */
	int line;
};

struct decl_step {
	size_t *agents;
	size_t n;
	bool parallel;
};

struct decl_rule {
	char *contains;             /* case-insensitive, in the user's prompt */
	char *text;                 /* appended as it is (not a template) */
};

struct decl_flow {
	char *path;
	char *name, *description, *category, *revision;
	struct decl_agent *agents;
	size_t n_agents;
	struct decl_step *steps;
	size_t n_steps;
	long reply_agent;           /* -1: none */
	struct tmpl *reply;
	struct tmpl *memory;
	struct decl_rule *rules;
	size_t n_rules;
	int max_llm_calls;          /* 0: the server's */
	int excerpt_chars;
};

/* The set decl_run reads; written before any flow thread exists. */
static const struct decl_set *decl_bound;

/* ---- loading: messages ------------------------------------------------- */

struct decl_loader {
	const char *path;
	const struct config *cfg;
	struct decl_flow *f;
	char *problem;              /* the first one */
};

static int ING_PRINTF(3, 4)
decl_fail(struct decl_loader *L, int line, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	if (L->problem != NULL)
		return -1;
	buf_printf(&b, "%s:%d: ", L->path, line);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	L->problem = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return -1;
}

static int
decl_line(const struct config_tree *s)
{
	int line = s != NULL ? s->line : 0;

	return line > 0 ? line : 1;
}

static const char *
decl_type_name(int type)
{
	switch (type) {
	case CONFIG_TREE_GROUP: return "a group { ... }";
	case CONFIG_TREE_INT: return "an integer";
	case CONFIG_TREE_FLOAT: return "a number";
	case CONFIG_TREE_STRING: return "a string";
	case CONFIG_TREE_BOOL: return "true or false";
	case CONFIG_TREE_ARRAY: return "an array [ ... ]";
	case CONFIG_TREE_LIST: return "a list ( ... )";
	}
	return "something else";
}

/* Every setting of group g must be one of `keys` (NULL-terminated). */
static int
decl_known_keys(struct decl_loader *L, const struct config_tree *g,
    const char *where, const char *const *keys)
{
	int i, n = (int)g->n;
	size_t k;

	for (i = 0; i < n; i++) {
		const struct config_tree *s = &g->elems[i];
		const char *name = s->name;
		struct buf b = BUF_INIT;
		int rc;

		for (k = 0; keys[k] != NULL; k++)
			if (name != NULL && strcmp(name, keys[k]) == 0)
				break;
		if (keys[k] != NULL)
			continue;
		for (k = 0; keys[k] != NULL; k++)
			buf_printf(&b, "%s%s", k ? ", " : "", keys[k]);
		rc = decl_fail(L, decl_line(s), "unknown setting \"%s\"%s (%s: %s)",
		    name != NULL ? name : "?", where, "known settings",
		    buf_cstr(&b));
		buf_free(&b);
		return rc;
	}
	return 0;
}

/* The string setting `key` of g into *out (a copy; NULL when absent). */
static int
decl_string(struct decl_loader *L, const struct config_tree *g, const char *key,
    const char *where, char **out)
{
	const struct config_tree *s = config_tree_member(g, key);

	*out = NULL;
	if (s == NULL)
		return 0;
	if (s->type != CONFIG_TREE_STRING)
		return decl_fail(L, decl_line(s), "%s%s must be a string, not %s",
		    key, where, decl_type_name(s->type));
	*out = xstrdup(s->s);
	return 0;
}

static int
decl_int(struct decl_loader *L, const struct config_tree *s, const char *key,
    long long lo, long long hi, int *out)
{
	long long v;

	if (s->type != CONFIG_TREE_INT)
		return decl_fail(L, decl_line(s), "%s must be an integer, not %s",
		    key, decl_type_name(s->type));
	v = s->i;
	if (v < lo || v > hi)
		return decl_fail(L, decl_line(s), "%s = %lld is out of range "
		    "(%lld to %lld)", key, v, lo, hi);
	*out = (int)v;
	return 0;
}

/* ---- loading: templates ------------------------------------------------ */

static long
decl_agent_index(const struct decl_flow *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n_agents; i++)
		if (strcmp(f->agents[i].name, name) == 0)
			return (long)i;
	return -1;
}

static void
decl_agent_names(const struct decl_flow *f, struct buf *b)
{
	size_t i;

	for (i = 0; i < f->n_agents; i++)
		buf_printf(b, "%s%s", i ? ", " : "", f->agents[i].name);
	if (f->n_agents == 0)
		buf_puts(b, "none");
}

/*
 * Check the `agents.<x>` references inside the tags of template text
 * `src`: x must be an agent whose output exists by then (`ran[x]`).  The
 * template module reports only first names, so this reads the tags.
 */
static int
decl_check_refs(struct decl_loader *L, int line, const char *what,
    const char *src, const bool *ran)
{
	const char *p = src, *end;

	while ((p = strchr(p, '{')) != NULL) {
		const char *close, *q;

		if (p[1] != '{' && p[1] != '%') {
			p++;
			continue;
		}
		close = strstr(p + 2, p[1] == '{' ? "}}" : "%}");
		end = close != NULL ? close : p + strlen(p);
		for (q = p + 2; q + 7 <= end; q++) {
			char name[DECL_NAME_MAX];
			size_t n = 0;
			long idx;

			if (strncmp(q, "agents.", 7) != 0 || (q > p + 2 &&
			    (q[-1] == '_' || q[-1] == '.' ||
			    (q[-1] >= 'a' && q[-1] <= 'z') ||
			    (q[-1] >= 'A' && q[-1] <= 'Z') ||
			    (q[-1] >= '0' && q[-1] <= '9'))))
				continue;
			q += 7;
			while (q < end && n + 1 < sizeof(name) && (*q == '_' ||
			    (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			    (*q >= '0' && *q <= '9')))
				name[n++] = *q++;
			name[n] = '\0';
			idx = decl_agent_index(L->f, name);
			if (idx < 0) {
				struct buf b = BUF_INIT;
				int rc;

				decl_agent_names(L->f, &b);
				rc = decl_fail(L, line, "%s uses agents.%s, which is not "
				    "an agent of this flow (agents: %s)", what, name,
				    buf_cstr(&b));
				buf_free(&b);
				return rc;
			}
			if (!ran[idx])
				return decl_fail(L, line, "%s uses agents.%s, which has "
				    "not run by then (an agent's output is there for "
				    "the steps after its own)", what, name);
		}
		if (close == NULL)
			break;
		p = close + 2;
	}
	return 0;
}

/*
 * Parse template text `src` of setting s (for `what`, e.g. `agent "x"
 * system`), and check its variables: request, agents and excerpt, and
 * agents.<x> only for x marked in `ran`.
 */
/* The first names template t uses must be request, agents or excerpt. */
static int
decl_check_vars(struct decl_loader *L, int line, const char *what,
    const struct tmpl *t)
{
	static const char *const vars[] = { "request", "agents", "excerpt", NULL };
	size_t i, k;

	for (i = 0; i < tmpl_var_count(t); i++) {
		const char *v = tmpl_var_at(t, i);

		for (k = 0; vars[k] != NULL; k++)
			if (strcmp(v, vars[k]) == 0)
				break;
		if (vars[k] == NULL)
			return decl_fail(L, line, "%s uses the unknown variable \"%s\" "
			    "(variables: request, agents, excerpt)", what, v);
	}
	return 0;
}

/*
 * Parse template text of setting s (for `what`, e.g. "reply"), and check
 * its variables: request, agents and excerpt, and agents.<x> only for x
 * marked in `ran`.
 */
static int
decl_template(struct decl_loader *L, const struct config_tree *s,
    const char *what, const bool *ran, struct tmpl **out)
{
	const char *src = s->s;
	struct err e;

	err_clear(&e);
	*out = tmpl_parse(src, strlen(src), what, &e);
	if (*out == NULL)
		return decl_fail(L, decl_line(s), "%s", e.msg);
	if (decl_check_vars(L, decl_line(s), what, *out) != 0)
		return -1;
	return decl_check_refs(L, decl_line(s), what, src, ran);
}

/* A template file name: a plain name ending in .md or .jinja. */
static bool
decl_file_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || name[0] == '.' || strchr(name, '/') != NULL ||
	    strchr(name, '\\') != NULL)
		return false;
	return (n > 3 && strcmp(name + n - 3, ".md") == 0) ||
	    (n > 6 && strcmp(name + n - 6, ".jinja") == 0);
}

/* A revision id names a folder of the templates: no path in it. */
static bool
decl_revision_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9') || id[i] == '.' || id[i] == '_' ||
		    id[i] == '-'))
			return false;
	return i > 0 && id[0] != '.';
}

/* ---- loading: agents --------------------------------------------------- */

static int
decl_prompt_setting(struct decl_loader *L, const struct config_tree *g,
    struct decl_agent *a, const char *key, struct decl_prompt *p)
{
	char file_key[32], what[DECL_NAME_MAX + 32];
	const struct config_tree *text, *file;

	snprintf(file_key, sizeof(file_key), "%s_template", key);
	text = config_tree_member(g, key);
	file = config_tree_member(g, file_key);
	if (text != NULL && file != NULL)
		return decl_fail(L, decl_line(file), "agent \"%s\" has both %s and "
		    "%s: give the prompt as inline text or as a template file",
		    a->name, key, file_key);
	if (file != NULL) {
		if (file->type != CONFIG_TREE_STRING)
			return decl_fail(L, decl_line(file), "%s of agent \"%s\" must "
			    "be a string, not %s", file_key, a->name,
			    decl_type_name(file->type));
		if (!decl_file_name_ok(file->s))
			return decl_fail(L, decl_line(file), "%s of agent \"%s\": "
			    "\"%s\" is not a template file name (a name ending in .md "
			    "or .jinja, no folder)", file_key, a->name,
			    file->s);
		if (L->f->revision == NULL)
			return decl_fail(L, decl_line(file), "agent \"%s\" uses the "
			    "template file \"%s\" but the flow names no revision: set "
			    "revision = \"...\"", a->name,
			    file->s);
		p->file = xstrdup(file->s);
		return 0;
	}
	if (text == NULL)
		return 0;
	if (text->type != CONFIG_TREE_STRING)
		return decl_fail(L, decl_line(text), "%s of agent \"%s\" must be a "
		    "string, not %s", key, a->name,
		    decl_type_name(text->type));
	/* the agents.<x> references are checked later, once the steps are known */
	snprintf(what, sizeof(what), "agent \"%s\" %s", a->name, key);
	{
		struct err e;
		const char *src = text->s;

		err_clear(&e);
		if ((p->inline_t = tmpl_parse(src, strlen(src), what, &e)) == NULL)
			return decl_fail(L, decl_line(text), "%s", e.msg);
	}
	return decl_check_vars(L, decl_line(text), what, p->inline_t);
}

/* Is `name` usable as a tool name for the model and as agents.<name> in a
 * template ([a-zA-Z0-9_]{1,64})? */
static bool
decl_tool_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return i > 0 && i <= 64;
}

static bool
decl_model_exists(const struct config *cfg, const char *want)
{
	size_t i;

	for (i = 0; i < cfg->n_models; i++)
		if (cfg->models[i].model != NULL &&
		    strcmp(cfg->models[i].model, want) == 0)
			return true;
	return llm_model_find(cfg, want) >= 0;
}

static int
decl_agent_load(struct decl_loader *L, const struct config_tree *g,
    struct decl_agent *a)
{
	static const char *const keys[] = { "name", "model", "system",
	    "system_template", "user", "user_template", "temperature",
	    "max_tokens", "json_response", "tools", NULL };
	const struct config_tree *s;
	char *name;

	a->line = decl_line(g);
	if (g->type != CONFIG_TREE_GROUP)
		return decl_fail(L, a->line, "an agent must be a group { name = "
		    "\"...\"; ... }, not %s", decl_type_name(g->type));
	if (decl_string(L, g, "name", " of an agent", &name) != 0)
		return -1;
	if (name == NULL)
		return decl_fail(L, a->line, "an agent has no name: set name = "
		    "\"...\"");
	a->name = name;
	if (!decl_tool_name_ok(a->name))
		return decl_fail(L, a->line, "agent name \"%s\" is not valid: 1 to "
		    "64 characters a-z, A-Z, 0-9 and '_' (it is a tool name for the "
		    "model and agents.<name> in templates)", a->name);
	if (decl_known_keys(L, g, " in an agent", keys) != 0)
		return -1;
	if (decl_string(L, g, "model", " of an agent", &a->model) != 0)
		return -1;
	if (a->model != NULL && !decl_model_exists(L->cfg, a->model)) {
		struct buf b = BUF_INIT;
		size_t i;
		int rc;

		for (i = 0; i < L->cfg->n_models; i++)
			buf_printf(&b, "%s%s (role %s)", i ? ", " : "",
			    L->cfg->models[i].model ? L->cfg->models[i].model : "?",
			    L->cfg->models[i].role && L->cfg->models[i].role[0] ?
			    L->cfg->models[i].role : "chat");
		rc = decl_fail(L, decl_line(config_tree_member(g, "model")),
		    "agent \"%s\": no configured model is named or has the role "
		    "\"%s\" (models: %s)", a->name, a->model,
		    b.len ? buf_cstr(&b) : "none");
		buf_free(&b);
		return rc;
	}
	if (decl_prompt_setting(L, g, a, "system", &a->system) != 0 ||
	    decl_prompt_setting(L, g, a, "user", &a->user) != 0)
		return -1;
	if (a->system.file == NULL && a->system.inline_t == NULL)
		return decl_fail(L, a->line, "agent \"%s\" has no system prompt: "
		    "set system = \"...\" or system_template = \"file.jinja\"",
		    a->name);
	if ((s = config_tree_member(g, "temperature")) != NULL) {
		if (s->type == CONFIG_TREE_FLOAT)
			a->temperature = s->f;
		else if (s->type == CONFIG_TREE_INT)
			a->temperature = (double)s->i;
		else
			return decl_fail(L, decl_line(s), "temperature of agent \"%s\" "
			    "must be a number, not %s", a->name,
			    decl_type_name(s->type));
		if (a->temperature < 0 || a->temperature > 2)
			return decl_fail(L, decl_line(s), "temperature of agent \"%s\" "
			    "is %g, it must be between 0 and 2", a->name,
			    a->temperature);
		a->has_temperature = true;
	}
	if ((s = config_tree_member(g, "max_tokens")) != NULL &&
	    decl_int(L, s, "max_tokens", 1, DECL_MAX_TOKENS_MAX,
	    &a->max_tokens) != 0)
		return -1;
	if ((s = config_tree_member(g, "json_response")) != NULL) {
		if (s->type != CONFIG_TREE_BOOL)
			return decl_fail(L, decl_line(s), "json_response of agent "
			    "\"%s\" must be true or false, not %s", a->name,
			    decl_type_name(s->type));
		a->json_response = s->b;
	}
	return 0;
}

/* The tools of agent i (setting g), once every agent is known. */
static int
decl_agent_tools(struct decl_loader *L, const struct config_tree *g, size_t i)
{
	struct decl_agent *a = &L->f->agents[i];
	const struct config_tree *t = config_tree_member(g, "tools");
	int k, n;

	if (t == NULL)
		return 0;
	if (t->type != CONFIG_TREE_ARRAY &&
	    t->type != CONFIG_TREE_LIST)
		return decl_fail(L, decl_line(t), "tools of agent \"%s\" must be an "
		    "array of names [\"...\"], not %s", a->name,
		    decl_type_name(t->type));
	n = (int)t->n;
	a->tools = xcalloc(n ? (size_t)n : 1, sizeof(*a->tools));
	for (k = 0; k < n; k++) {
		const struct config_tree *e = &t->elems[k];
		const char *name;
		long idx;
		size_t j;

		if (e->type != CONFIG_TREE_STRING)
			return decl_fail(L, decl_line(t), "tools of agent \"%s\" must be "
			    "names, not %s", a->name,
			    decl_type_name(e->type));
		name = e->s;
		if (strcmp(name, "kb_search") == 0) {
			if (a->kb_search)
				return decl_fail(L, decl_line(t), "tool \"%s\" is "
				    "listed twice for agent \"%s\"", name, a->name);
			a->kb_search = true;
			continue;
		}
		if (strcmp(name, "sql_query") == 0) {
			if (a->sql_query)
				return decl_fail(L, decl_line(t), "tool \"%s\" is "
				    "listed twice for agent \"%s\"", name, a->name);
			a->sql_query = true;
			continue;
		}
		if ((idx = decl_agent_index(L->f, name)) < 0) {
			struct buf b = BUF_INIT;
			int rc;

			decl_agent_names(L->f, &b);
			rc = decl_fail(L, decl_line(t), "tool \"%s\" of agent \"%s\" is "
			    "neither an agent of this flow (agents: %s) nor a known "
			    "tool (kb_search, sql_query)", name, a->name,
			    buf_cstr(&b));
			buf_free(&b);
			return rc;
		}
		if ((size_t)idx == i)
			return decl_fail(L, decl_line(t), "agent \"%s\" has itself as a "
			    "tool: an agent may call the other agents only", a->name);
		for (j = 0; j < a->n_tools; j++)
			if (a->tools[j] == (size_t)idx)
				return decl_fail(L, decl_line(t), "tool \"%s\" is listed "
				    "twice for agent \"%s\"", name, a->name);
		a->tools[a->n_tools++] = (size_t)idx;
	}
	return 0;
}

/* Depth-first search of the agent-tool graph from i; `state` 0 new, 1 on
 * the path, 2 done.  `path` collects the cycle for the message. */
static long
decl_cycle_from(const struct decl_flow *f, size_t i, unsigned char *state,
    size_t *path, size_t depth, size_t *cycle_len)
{
	size_t k;

	state[i] = 1;
	path[depth] = i;
	for (k = 0; k < f->agents[i].n_tools; k++) {
		size_t t = f->agents[i].tools[k];
		long r;

		if (state[t] == 1) {
			size_t d;

			/* the cycle is path[d..depth] back to t */
			for (d = 0; path[d] != t; d++)
				;
			memmove(path, path + d, (depth - d + 1) * sizeof(*path));
			*cycle_len = depth - d + 1;
			return (long)t;
		}
		if (state[t] == 0 &&
		    (r = decl_cycle_from(f, t, state, path, depth + 1,
		    cycle_len)) >= 0)
			return r;
	}
	state[i] = 2;
	return -1;
}

static int
decl_check_cycles(struct decl_loader *L)
{
	struct decl_flow *f = L->f;
	unsigned char *state = xcalloc(f->n_agents + 1, 1);
	size_t *path = xcalloc(f->n_agents + 1, sizeof(*path));
	size_t i, len = 0, k;
	int rc = 0;

	for (i = 0; i < f->n_agents && rc == 0; i++) {
		if (state[i] != 0 || decl_cycle_from(f, i, state, path, 0, &len) < 0)
			continue;
		{
			struct buf b = BUF_INIT;

			for (k = 0; k < len; k++)
				buf_printf(&b, "%s -> ", f->agents[path[k]].name);
			buf_puts(&b, f->agents[path[0]].name);
			rc = decl_fail(L, f->agents[path[0]].line, "agents call each "
			    "other as tools in a cycle (%s): a flow file never loops",
			    buf_cstr(&b));
			buf_free(&b);
		}
	}
	free(path);
	free(state);
	return rc;
}

/* ---- loading: steps, reply, memory, rules, limits ---------------------- */

static int
decl_step_agent(struct decl_loader *L, const struct config_tree *e, int line,
    bool *in_steps, struct decl_step *st)
{
	const char *name;
	long idx;

	if (e->type != CONFIG_TREE_STRING)
		return decl_fail(L, line, "a step is an agent's name or a parallel "
		    "group { parallel = [\"a\", \"b\"]; }, not %s",
		    decl_type_name(e->type));
	name = e->s;
	if ((idx = decl_agent_index(L->f, name)) < 0) {
		struct buf b = BUF_INIT;
		int rc;

		decl_agent_names(L->f, &b);
		rc = decl_fail(L, line, "agent \"%s\" in steps is not defined "
		    "(agents: %s)", name, buf_cstr(&b));
		buf_free(&b);
		return rc;
	}
	if (in_steps[idx])
		return decl_fail(L, line, "agent \"%s\" is in steps twice: every "
		    "agent runs at most once per turn", name);
	in_steps[idx] = true;
	st->agents[st->n++] = (size_t)idx;
	return 0;
}

static int
decl_steps_load(struct decl_loader *L, const struct config_tree *root,
    bool *in_steps)
{
	struct decl_flow *f = L->f;
	const struct config_tree *s = config_tree_member(root, "steps");
	int i, n;

	if (s == NULL)
		return decl_fail(L, 1, "the flow has no steps: set steps = "
		    "( \"agent\", { parallel = [\"a\", \"b\"]; } )");
	if (s->type != CONFIG_TREE_ARRAY &&
	    s->type != CONFIG_TREE_LIST)
		return decl_fail(L, decl_line(s), "steps must be a list ( ... ), not "
		    "%s", decl_type_name(s->type));
	n = (int)s->n;
	if (n == 0)
		return decl_fail(L, decl_line(s), "steps is empty: name at least one "
		    "agent");
	f->steps = xcalloc((size_t)n, sizeof(*f->steps));
	for (i = 0; i < n; i++) {
		const struct config_tree *e = &s->elems[i];
		struct decl_step *st = &f->steps[f->n_steps++];
		/* a group has its own line; libconfig gives a scalar of a list
		 * the line of the token after it, so a name is reported at the
		 * line of steps */
		int line = e->type == CONFIG_TREE_GROUP ? decl_line(e) : decl_line(s);

		if (e->type == CONFIG_TREE_GROUP) {
			static const char *const keys[] = { "parallel", NULL };
			const struct config_tree *p = config_tree_member(e,
			    "parallel");
			int k, m;

			if (decl_known_keys(L, e, " in a step", keys) != 0)
				return -1;
			if (p == NULL || (p->type != CONFIG_TREE_ARRAY &&
			    p->type != CONFIG_TREE_LIST) ||
			    (int)p->n == 0)
				return decl_fail(L, line, "a group in steps must be "
				    "{ parallel = [\"a\", \"b\"]; } with at least one agent");
			m = (int)p->n;
			st->parallel = true;
			st->agents = xcalloc((size_t)m, sizeof(*st->agents));
			for (k = 0; k < m; k++)
				if (decl_step_agent(L, &p->elems[k], decl_line(p), in_steps, st) != 0)
					return -1;
		} else {
			st->agents = xcalloc(1, sizeof(*st->agents));
			if (decl_step_agent(L, e, line, in_steps, st) != 0)
				return -1;
		}
	}
	return 0;
}

/* The agents.<x> references of the agents' inline prompts: a step sees
 * the agents of the steps before it; an agent that only serves as a tool
 * sees every agent of the steps (those that have not run render ""). */
static int
decl_check_agent_refs(struct decl_loader *L, const struct config_tree *agents,
    const bool *in_steps)
{
	struct decl_flow *f = L->f;
	bool *ran = xcalloc(f->n_agents + 1, sizeof(*ran));
	size_t i, k;
	int rc = 0;

	for (i = 0; i < f->n_steps && rc == 0; i++) {
		for (k = 0; k < f->steps[i].n && rc == 0; k++) {
			size_t a = f->steps[i].agents[k];
			const struct config_tree *g = &agents->elems[a];
			const char *keys[] = { "system", "user" };
			size_t j;

			for (j = 0; j < 2 && rc == 0; j++) {
				const struct config_tree *s = config_tree_member(g,
				    keys[j]);
				char what[DECL_NAME_MAX + 32];

				if (s == NULL)
					continue;
				snprintf(what, sizeof(what), "agent \"%s\" %s",
				    f->agents[a].name, keys[j]);
				rc = decl_check_refs(L, decl_line(s), what,
				    s->s, ran);
			}
		}
		for (k = 0; k < f->steps[i].n; k++)
			ran[f->steps[i].agents[k]] = true;
	}
	for (i = 0; i < f->n_agents && rc == 0; i++) {
		const struct config_tree *g = &agents->elems[i];
		const char *keys[] = { "system", "user" };
		size_t j;

		if (in_steps[i])
			continue;
		for (j = 0; j < 2 && rc == 0; j++) {
			const struct config_tree *s = config_tree_member(g, keys[j]);
			char what[DECL_NAME_MAX + 32];

			if (s == NULL)
				continue;
			snprintf(what, sizeof(what), "agent \"%s\" %s", f->agents[i].name,
			    keys[j]);
			rc = decl_check_refs(L, decl_line(s), what,
			    s->s, in_steps);
		}
	}
	free(ran);
	return rc;
}

static int
decl_rule_load(struct decl_loader *L, const struct config_tree *g)
{
	static const char *const keys[] = { "contains", "text", NULL };
	struct decl_rule *r;
	char *contains, *text;

	if (g->type != CONFIG_TREE_GROUP)
		return decl_fail(L, decl_line(g), "append_if must be a group "
		    "{ contains = \"...\"; text = \"...\"; } or a list of them, not %s",
		    decl_type_name(g->type));
	if (decl_known_keys(L, g, " in append_if", keys) != 0 ||
	    decl_string(L, g, "contains", " in append_if", &contains) != 0)
		return -1;
	if (decl_string(L, g, "text", " in append_if", &text) != 0) {
		free(contains);
		return -1;
	}
	if (contains == NULL || text == NULL || contains[0] == '\0') {
		free(contains);
		free(text);
		return decl_fail(L, decl_line(g), "append_if needs contains = "
		    "\"...\" (not empty) and text = \"...\"");
	}
	L->f->rules = xrealloc(L->f->rules, (L->f->n_rules + 1) *
	    sizeof(*L->f->rules));
	r = &L->f->rules[L->f->n_rules++];
	r->contains = contains;
	r->text = text;
	return 0;
}

static int
decl_limits_load(struct decl_loader *L, const struct config_tree *root,
    size_t calls_needed)
{
	static const char *const keys[] = { "max_llm_calls", NULL };
	const struct config_tree *g = config_tree_member(root, "limits");
	const struct config_tree *s;
	int server = L->cfg->flows.max_llm_calls;

	if (g == NULL)
		return 0;
	if (g->type != CONFIG_TREE_GROUP)
		return decl_fail(L, decl_line(g), "limits must be a group "
		    "{ max_llm_calls = N; }, not %s",
		    decl_type_name(g->type));
	if (decl_known_keys(L, g, " in limits", keys) != 0)
		return -1;
	if ((s = config_tree_member(g, "max_llm_calls")) == NULL)
		return 0;
	if (decl_int(L, s, "limits.max_llm_calls", 1, 1000000,
	    &L->f->max_llm_calls) != 0)
		return -1;
	if (server > 0 && L->f->max_llm_calls > server)
		return decl_fail(L, decl_line(s), "limits.max_llm_calls = %d is above "
		    "the server's limit flows.max_llm_calls = %d", L->f->max_llm_calls,
		    server);
	if ((size_t)L->f->max_llm_calls < calls_needed)
		return decl_fail(L, decl_line(s), "limits.max_llm_calls = %d is less "
		    "than the %zu model calls of the steps", L->f->max_llm_calls,
		    calls_needed);
	return 0;
}

/* The rest of the file, once the agents are read. */
static int
decl_flow_tail(struct decl_loader *L, const struct config_tree *root)
{
	struct decl_flow *f = L->f;
	const struct config_tree *agents = config_tree_member(root, "agents");
	const struct config_tree *s;
	bool *in_steps = xcalloc(f->n_agents + 1, sizeof(*in_steps));
	size_t i, calls = 0;
	char *reply_agent = NULL;
	int rc = -1;

	for (i = 0; i < f->n_agents; i++)
		if (decl_agent_tools(L, &agents->elems[i],
		    i) != 0)
			goto out;
	if (decl_check_cycles(L) != 0 || decl_steps_load(L, root, in_steps) != 0 ||
	    decl_check_agent_refs(L, agents, in_steps) != 0)
		goto out;
	for (i = 0; i < f->n_steps; i++)
		calls += f->steps[i].n;
	s = config_tree_member(root, "reply_agent");
	if (decl_string(L, root, "reply_agent", "", &reply_agent) != 0)
		goto out;
	if (reply_agent != NULL && config_tree_member(root, "reply") != NULL) {
		decl_fail(L, decl_line(s), "the flow has both reply_agent and reply: "
		    "give one");
		goto out;
	}
	if (reply_agent != NULL) {
		long idx = decl_agent_index(f, reply_agent);

		if (idx < 0 || !in_steps[idx]) {
			struct buf b = BUF_INIT;

			decl_agent_names(f, &b);
			decl_fail(L, decl_line(s), idx < 0 ? "agent \"%s\" in reply_agent "
			    "is not defined (agents: %s)" : "agent \"%s\" in reply_agent "
			    "is not in steps, so it never answers (agents: %s)",
			    reply_agent, buf_cstr(&b));
			buf_free(&b);
			goto out;
		}
		f->reply_agent = idx;
	}
	if ((s = config_tree_member(root, "reply")) != NULL) {
		if (s->type != CONFIG_TREE_STRING) {
			decl_fail(L, decl_line(s), "reply must be a string (a template), "
			    "not %s", decl_type_name(s->type));
			goto out;
		}
		if (decl_template(L, s, "reply", in_steps, &f->reply) != 0)
			goto out;
	}
	if ((s = config_tree_member(root, "memory")) != NULL) {
		if (s->type != CONFIG_TREE_STRING) {
			decl_fail(L, decl_line(s), "memory must be a string (a template), "
			    "not %s", decl_type_name(s->type));
			goto out;
		}
		if (decl_template(L, s, "memory", in_steps, &f->memory) != 0)
			goto out;
	}
	if ((s = config_tree_member(root, "append_if")) != NULL) {
		if (s->type == CONFIG_TREE_LIST) {
			int k;

			for (k = 0; k < (int)s->n; k++)
				if (decl_rule_load(L, &s->elems[k]) != 0)
					goto out;
		} else if (decl_rule_load(L, s) != 0) {
			goto out;
		}
	}
	if ((s = config_tree_member(root, "excerpt_chars")) != NULL &&
	    decl_int(L, s, "excerpt_chars", 1, DECL_EXCERPT_MAX,
	    &f->excerpt_chars) != 0)
		goto out;
	if (decl_limits_load(L, root, calls) != 0)
		goto out;
	rc = 0;
out:
	free(reply_agent);
	free(in_steps);
	return rc;
}

/* A flow name in normal form: 1 to 127 of a-z, 0-9 and '_'. */
static bool
decl_flow_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return i > 0 && i < DECL_NAME_MAX;
}

/* The file's base name without ".flow", the default flow name. */
static char *
decl_stem(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base != NULL ? base + 1 : path;
	n = strlen(base);
	if (n > strlen(DECL_SUFFIX) &&
	    strcmp(base + n - strlen(DECL_SUFFIX), DECL_SUFFIX) == 0)
		n -= strlen(DECL_SUFFIX);
	return xstrndup(base, n);
}

struct decl_flow *
decl_load(const char *path, const struct config *cfg, char **problem)
{
	static const char *const keys[] = { "name", "description", "category",
	    "revision", "agents", "steps", "reply_agent", "reply", "memory",
	    "append_if", "excerpt_chars", "limits", NULL };
	struct decl_loader L = { path, cfg, NULL, NULL };
	const struct config_tree *root, *agents;
	struct config_tree *tree;
	struct err e;
	int i, n;

	*problem = NULL;
	err_clear(&e);
	if ((tree = config_tree_read(path, &e)) == NULL) {
		/* "could not read ..." or "F:LINE: syntax error" */
		*problem = xstrdup(e.msg);
		return NULL;
	}
	L.f = xcalloc(1, sizeof(*L.f));
	L.f->path = xstrdup(path);
	L.f->reply_agent = -1;
	L.f->excerpt_chars = DECL_EXCERPT_DEFAULT;
	root = tree;
	if (decl_known_keys(&L, root, "", keys) != 0 ||
	    decl_string(&L, root, "name", "", &L.f->name) != 0 ||
	    decl_string(&L, root, "description", "", &L.f->description) != 0 ||
	    decl_string(&L, root, "category", "", &L.f->category) != 0 ||
	    decl_string(&L, root, "revision", "", &L.f->revision) != 0)
		goto fail;
	if (L.f->revision != NULL && !decl_revision_ok(L.f->revision)) {
		decl_fail(&L, decl_line(config_tree_member(root, "revision")),
		    "revision \"%s\" is not a revision id (letters, digits, '.', "
		    "'_' and '-', not starting with '.')", L.f->revision);
		goto fail;
	}
	if (L.f->name == NULL)
		L.f->name = decl_stem(path);
	if (!decl_flow_name_ok(L.f->name)) {
		const struct config_tree *s = config_tree_member(root, "name");

		decl_fail(&L, s != NULL ? decl_line(s) : 1, "flow name \"%s\" is not "
		    "valid: a flow name has 1 to 127 characters a-z, 0-9 and '_'",
		    L.f->name);
		goto fail;
	}
	if (L.f->description == NULL)
		L.f->description = xstrdup("");
	if (L.f->category == NULL)
		L.f->category = xstrdup("Custom");
	agents = config_tree_member(root, "agents");
	if (agents == NULL) {
		decl_fail(&L, 1, "the flow has no agents: set agents = ( { name = "
		    "\"...\"; system = \"...\"; } )");
		goto fail;
	}
	if (agents->type != CONFIG_TREE_LIST) {
		decl_fail(&L, decl_line(agents), "agents must be a list ( { ... }, "
		    "... ), not %s", decl_type_name(agents->type));
		goto fail;
	}
	n = (int)agents->n;
	L.f->agents = xcalloc(n ? (size_t)n : 1, sizeof(*L.f->agents));
	for (i = 0; i < n; i++) {
		struct decl_agent *a = &L.f->agents[L.f->n_agents++];

		if (decl_agent_load(&L, &agents->elems[i],
		    a) != 0)
			goto fail;
		if (decl_agent_index(L.f, a->name) != (long)L.f->n_agents - 1) {
			decl_fail(&L, a->line, "agent \"%s\" is defined twice",
			    a->name);
			goto fail;
		}
	}
	if (decl_flow_tail(&L, root) != 0)
		goto fail;
	config_tree_free(tree);
	return L.f;
fail:
	config_tree_free(tree);
	decl_flow_free(L.f);
	*problem = L.problem != NULL ? L.problem :
	    xasprintf("%s:1: could not load the flow file", path);
	return NULL;
}

static void
decl_prompt_free(struct decl_prompt *p)
{
	free(p->file);
	tmpl_free(p->inline_t);
}

void
decl_flow_free(struct decl_flow *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n_agents; i++) {
		free(f->agents[i].name);
		free(f->agents[i].model);
		decl_prompt_free(&f->agents[i].system);
		decl_prompt_free(&f->agents[i].user);
		free(f->agents[i].tools);
	}
	free(f->agents);
	for (i = 0; i < f->n_steps; i++)
		free(f->steps[i].agents);
	free(f->steps);
	for (i = 0; i < f->n_rules; i++) {
		free(f->rules[i].contains);
		free(f->rules[i].text);
	}
	free(f->rules);
	tmpl_free(f->reply);
	tmpl_free(f->memory);
	free(f->path);
	free(f->name);
	free(f->description);
	free(f->category);
	free(f->revision);
	free(f);
}

void
decl_facts(const struct decl_flow *f, struct decl_facts *out)
{
	out->name = f->name;
	out->description = f->description;
	out->category = f->category;
	out->file = f->path;
}

/* ---- finding the files ------------------------------------------------- */

static bool
decl_is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool
decl_folder_has_flow(const char *dir_entry_path, const char *name)
{
	char *p = xasprintf("%s/%s%s", dir_entry_path, name, DECL_SUFFIX);
	bool yes = decl_is_file(p);

	free(p);
	return yes;
}

static int
decl_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
decl_set_problem(struct decl_set *set, char *msg)
{
	set->problems = xrealloc(set->problems, (set->n_problems + 1) *
	    sizeof(*set->problems));
	set->problems[set->n_problems++] = msg;
}

static void
decl_scan_folder(const struct config *cfg, const char *dir,
    struct decl_set *set)
{
	const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
	char **names = NULL;
	size_t n = 0, i, suf = strlen(DECL_SUFFIX);
	struct dirent *de;
	DIR *d;

	/* plugin_scan reports a folder it cannot read */
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), decl_cmp_names);
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		char *path = NULL, *problem;
		struct decl_flow *f;

		if (names[i][0] == '.') {
			/* hidden, an editor's swap file */
		} else if (len > suf && strcmp(names[i] + len - suf, DECL_SUFFIX) == 0) {
			path = xasprintf("%s%s%s", dir, sep, names[i]);
			if (!decl_is_file(path)) {
				free(path);
				path = NULL;
			}
		} else {
			char *sub = xasprintf("%s%s%s", dir, sep, names[i]);

			if (decl_folder_has_flow(sub, names[i]))
				path = xasprintf("%s/%s%s", sub, names[i], DECL_SUFFIX);
			free(sub);
		}
		free(names[i]);
		if (path == NULL)
			continue;
		if ((f = decl_load(path, cfg, &problem)) == NULL) {
			decl_set_problem(set, problem);
		} else {
			set->flows = xrealloc(set->flows, (set->n + 1) *
			    sizeof(*set->flows));
			set->flows[set->n++] = f;
		}
		free(path);
	}
	free(names);
}

void
decl_scan(const struct config *cfg, struct decl_set *set)
{
	char *copy, *rest, *dir;

	memset(set, 0, sizeof(*set));
	if (cfg->server.flow_path == NULL)
		return;
	rest = copy = xstrdup(cfg->server.flow_path);
	while ((dir = strsep(&rest, ":")) != NULL)
		if (dir[0] != '\0')
			decl_scan_folder(cfg, dir, set);
	free(copy);
}

void
decl_set_free(struct decl_set *set)
{
	size_t i;

	if (decl_bound == set)
		decl_bound = NULL;
	for (i = 0; i < set->n; i++)
		decl_flow_free(set->flows[i]);
	for (i = 0; i < set->n_problems; i++)
		free(set->problems[i]);
	free(set->flows);
	free(set->problems);
	memset(set, 0, sizeof(*set));
}

void
decl_bind(const struct decl_set *set)
{
	decl_bound = set;
}

/* ---- running ----------------------------------------------------------- */

/* One turn of a declarative flow. */
struct decl_turn {
	struct ing_ctx *ctx;
	const struct decl_flow *f;
	const struct ing_chat_request *req;
	cJSON *vars;                /* request, agents, excerpt: read-only while
	                             * calls run (tool callbacks read it from
	                             * several threads) */
	cJSON *agents;              /* inside vars */
	char *extra_json;           /* {"excerpt": ...}: vars_json of file templates */
	long stream_agent;          /* the agent whose answer streams to the
	                             * client as it comes (-1: the reply is sent
	                             * whole when the flow ends) */
};

/* An agent offered as a tool. */
struct decl_tool_arg {
	struct decl_turn *t;
	size_t agent;
};

/* The first n characters (not bytes) of s. */
static char *
decl_excerpt(struct ing_ctx *ctx, const char *s, int n)
{
	size_t i = 0;
	int chars = 0;

	while (s[i] != '\0' && chars < n) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		chars++;
	}
	{
		char *out = ing_alloc(ctx, i + 1);

		memcpy(out, s, i);
		out[i] = '\0';
		return out;
	}
}

static void
decl_add_str(cJSON *o, const char *key, const char *v)
{
	if (v != NULL)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static void
decl_turn_vars(struct decl_turn *t)
{
	const struct ing_chat_request *req = t->req;
	cJSON *r = cJSON_CreateObject(), *extra = cJSON_CreateObject();
	const char *excerpt = decl_excerpt(t->ctx, req->user_prompt,
	    t->f->excerpt_chars);
	char *txt;

	t->vars = cJSON_CreateObject();
	decl_add_str(r, "user_prompt", req->user_prompt);
	decl_add_str(r, "conversation_flow", req->conversation_flow);
	decl_add_str(r, "thread_id", req->thread_id);
	decl_add_str(r, "user_id", req->user_id);
	decl_add_str(r, "user_name", req->user_name);
	decl_add_str(r, "topic", req->topic);
	decl_add_str(r, "event_type", req->event_type);
	decl_add_str(r, "thread_memory", req->thread_memory);
	cJSON_AddItemToObject(t->vars, "request", r);
	t->agents = cJSON_AddObjectToObject(t->vars, "agents");
	cJSON_AddStringToObject(t->vars, "excerpt", excerpt);
	cJSON_AddStringToObject(extra, "excerpt", excerpt);
	txt = cJSON_PrintUnformatted(extra);
	t->extra_json = ing_strdup(t->ctx, txt);
	free(txt);
	cJSON_Delete(extra);
}

/* Render one prompt of agent a into *text (and *prompt for a file). */
static int
decl_render(struct decl_turn *t, const struct decl_agent *a,
    const struct decl_prompt *p, const char *what, const char *dflt,
    const char **text, const struct ing_prompt **prompt)
{
	struct buf b = BUF_INIT;
	struct err e;

	if (prompt != NULL)
		*prompt = NULL;
	if (p->file != NULL) {
		struct ing_prompt *out = ing_alloc(t->ctx, sizeof(*out));

		if (ing_prompt_render(t->ctx, t->f->revision, p->file,
		    t->extra_json, out) != 0)
			return -1;
		*text = out->text;
		if (prompt != NULL)
			*prompt = out;
		return 0;
	}
	if (p->inline_t == NULL) {
		*text = dflt;
		return 0;
	}
	err_clear(&e);
	if (tmpl_render(p->inline_t, t->vars, &b, &e) != 0) {
		buf_free(&b);
		return ing_error(t->ctx, 500, "flow file \"%s\": agent \"%s\" %s: %s",
		    t->f->path, a->name, what, e.msg);
	}
	*text = ing_strdup(t->ctx, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

/* Is there room for n more model calls under the flow's own limit? */
static int
decl_room(struct decl_turn *t, size_t n)
{
	int used;

	if (t->f->max_llm_calls <= 0)
		return 0;
	pthread_mutex_lock(&t->ctx->lock);
	used = t->ctx->llm_calls;
	pthread_mutex_unlock(&t->ctx->lock);
	if ((size_t)used + n > (size_t)t->f->max_llm_calls)
		return ing_error(t->ctx, 500, "the turn reached the flow's limit of "
		    "%d language-model calls (limits.max_llm_calls of \"%s\")",
		    t->f->max_llm_calls, t->f->path);
	return 0;
}

static int decl_kb_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result);
static int decl_sql_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result);
static int decl_tool_call(struct ing_ctx *ctx, void *arg,
    const char *arguments, const char **result);

/* The messages and options of one call of agent ai, user prompt `user`
 * (NULL: its own). */
static int
decl_prepare(struct decl_turn *t, size_t ai, const char *user,
    struct ing_llm_options *opt, struct ing_message **msgs)
{
	const struct decl_agent *a = &t->f->agents[ai];
	const struct ing_prompt *prompt;
	const char *sys, *usr = user;
	struct ing_message *m;
	struct ing_tool *tools = NULL;
	size_t k;

	if (decl_render(t, a, &a->system, "system", "", &sys, &prompt) != 0)
		return -1;
	if (usr == NULL && decl_render(t, a, &a->user, "user",
	    t->req->user_prompt, &usr, NULL) != 0)
		return -1;
	m = ing_alloc(t->ctx, 2 * sizeof(*m));
	m[0] = (struct ing_message){ "system", sys, NULL };
	m[1] = (struct ing_message){ "user", usr, NULL };
	if (a->n_tools > 0 || a->kb_search || a->sql_query)
		tools = ing_alloc(t->ctx, (a->n_tools + 2) * sizeof(*tools));
	for (k = 0; k < a->n_tools; k++) {
		struct decl_tool_arg *ta = ing_alloc(t->ctx, sizeof(*ta));
		const struct decl_agent *ta_agent = &t->f->agents[a->tools[k]];

		ta->t = t;
		ta->agent = a->tools[k];
		memset(&tools[k], 0, sizeof(tools[k]));
		tools[k].name = ta_agent->name;
		tools[k].description = ing_sprintf(t->ctx, "Ask the agent %s: it "
		    "answers the input you give it", ta_agent->name);
		tools[k].parameters = DECL_TOOL_SCHEMA;
		tools[k].call = decl_tool_call;
		tools[k].arg = ta;
	}
	if (a->kb_search) {
		memset(&tools[k], 0, sizeof(tools[k]));
		tools[k].name = "kb_search";
		tools[k].description = ing_sprintf(t->ctx, "Search the knowledge "
		    "base (%s) for passages about a query; use specific keywords",
		    ing_kb_backend(t->ctx));
		tools[k].parameters = DECL_KB_SCHEMA;
		tools[k].call = decl_kb_call;
		k++;
	}
	if (a->sql_query) {
		memset(&tools[k], 0, sizeof(tools[k]));
		tools[k].name = "sql_query";
		tools[k].description = "Run one read-only SQL SELECT on the SQL "
		    "agent's schema; the result comes back as rows";
		tools[k].parameters = DECL_SQL_SCHEMA;
		tools[k].call = decl_sql_call;
	}
	memset(opt, 0, sizeof(*opt));
	opt->agent = a->name;
	opt->model = a->model;
	opt->has_temperature = a->has_temperature;
	opt->temperature = a->temperature;
	opt->max_tokens = a->max_tokens;
	opt->json_response = a->json_response;
	opt->tools = tools;
	opt->n_tools = a->n_tools + (a->kb_search ? 1 : 0) + (a->sql_query ? 1 : 0);
	opt->prompt = prompt;
	*msgs = m;
	return 0;
}

/* Run agent ai once, alone, when `calls` more model calls fit. */
static int
decl_chat(struct decl_turn *t, size_t ai, const char *user, size_t calls,
    int stream, const char **out)
{
	struct ing_llm_options opt;
	struct ing_message *m;

	if (decl_room(t, calls) != 0 || decl_prepare(t, ai, user, &opt, &m) != 0)
		return -1;
	opt.stream = stream;
	return ing_llm_chat(t->ctx, &opt, m, 2, out);
}

/*
 * The agent whose answer can stream to the client token by token: the
 * reply is its answer as it is (reply_agent, or no reply template and a
 * last step of one agent), it runs alone in the last step, it has no tools
 * (a tool round's text is not the reply) and no append_if rule changes the
 * reply.  -1 otherwise: the reply is sent whole at the end.
 */
static long
decl_stream_agent(const struct decl_flow *f)
{
	const struct decl_step *last;
	long ai;

	if (f->n_steps == 0 || f->n_rules > 0)
		return -1;
	last = &f->steps[f->n_steps - 1];
	if (last->parallel || last->n != 1)
		return -1;
	ai = (long)last->agents[0];
	if (f->reply_agent >= 0 ? f->reply_agent != ai : f->reply != NULL)
		return -1;
	if (f->agents[ai].n_tools > 0 || f->agents[ai].kb_search || f->agents[ai].sql_query)
		return -1;
	return ai;
}

/* An agent called as a tool: its user prompt is the model's "input". */
static int
decl_tool_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	struct decl_tool_arg *ta = arg;
	cJSON *args = cJSON_Parse(arguments != NULL ? arguments : "");
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(args, "input");
	const char *input, *answer;

	if (!cJSON_IsString(in)) {
		cJSON_Delete(args);
		*result = "the tool needs its arguments as {\"input\": \"...\"}";
		return -1;
	}
	input = ing_strdup(ctx, in->valuestring);
	cJSON_Delete(args);
	/* room for this agent's call and for the caller's next round, which
	 * the context makes with the result (a failure has failed the turn) */
	if (decl_chat(ta->t, ta->agent, input, 2, 0, &answer) != 0)
		return ING_TOOL_ABORT;
	*result = answer;
	return 0;
}

/* The "query" string of a tool's arguments, in the turn's memory; NULL
 * when there is none. */
static const char *
decl_query_arg(struct ing_ctx *ctx, const char *arguments)
{
	cJSON *args = cJSON_Parse(arguments != NULL ? arguments : "");
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(args, "query");
	const char *query = cJSON_IsString(q) && q->valuestring[0] != '\0' ?
	    ing_strdup(ctx, q->valuestring) : NULL;

	cJSON_Delete(args);
	return query;
}

/* The knowledge base as a tool: {"query": "..."} -> what ing_kb_search
 * found (the reference's text); a search the policy forbids fails the
 * turn. */
static int
decl_kb_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	const char *query = decl_query_arg(ctx, arguments);
	struct ing_kb_result r;

	(void)arg;
	if (query == NULL) {
		*result = "the tool needs its arguments as {\"query\": \"...\"}";
		return -1;
	}
	if (ing_kb_search(ctx, query, 0, ING_KB_ASSIST, &r) != 0)
		return ING_TOOL_ABORT;
	*result = r.text;
	return 0;
}

/* The SQL agent's database as a tool: {"query": "SELECT ..."} -> the
 * reference's result text, or "SQL Error: ..." for the model to correct
 * (ing_sql_query: the guard, the read-only role). */
static int
decl_sql_call(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	const char *query = decl_query_arg(ctx, arguments);
	struct ing_sql_result r;

	(void)arg;
	if (query == NULL) {
		*result = "the tool needs its arguments as {\"query\": \"SELECT ...\"}";
		return -1;
	}
	(void)ing_sql_query(ctx, query, &r);
	*result = r.text;
	return 0;
}

static int
decl_step(struct decl_turn *t, const struct decl_step *st)
{
	struct ing_llm_call *calls;
	size_t k;

	if (st->parallel)
		ing_emit_status(t->ctx, "running %zu agents in parallel", st->n);
	else
		ing_emit_status(t->ctx, "running agent %s",
		    t->f->agents[st->agents[0]].name);
	if (!st->parallel) {
		const char *out;

		if (decl_chat(t, st->agents[0], NULL, 1,
		    st == &t->f->steps[t->f->n_steps - 1] &&
		    t->stream_agent == (long)st->agents[0], &out) != 0)
			return -1;
		cJSON_AddStringToObject(t->agents, t->f->agents[st->agents[0]].name,
		    out != NULL ? out : "");
		return 0;
	}
	if (decl_room(t, st->n) != 0)
		return -1;
	calls = ing_alloc(t->ctx, st->n * sizeof(*calls));
	for (k = 0; k < st->n; k++) {
		struct ing_message *m;

		memset(&calls[k], 0, sizeof(calls[k]));
		if (decl_prepare(t, st->agents[k], NULL, &calls[k].options, &m) != 0)
			return -1;
		calls[k].messages = m;
		calls[k].n_messages = 2;
	}
	if (ing_llm_parallel(t->ctx, calls, st->n, ING_PARALLEL_FAIL_FAST) != 0)
		return -1;
	for (k = 0; k < st->n; k++)
		cJSON_AddStringToObject(t->agents, t->f->agents[st->agents[k]].name,
		    calls[k].reply != NULL ? calls[k].reply : "");
	return 0;
}

static const struct decl_flow *
decl_find(const char *name)
{
	size_t i;

	if (decl_bound == NULL || name == NULL)
		return NULL;
	for (i = 0; i < decl_bound->n; i++)
		if (strcmp(decl_bound->flows[i]->name, name) == 0)
			return decl_bound->flows[i];
	return NULL;
}

static int
decl_render_text(struct decl_turn *t, const struct tmpl *tp, const char *what,
    const char **out)
{
	struct buf b = BUF_INIT;
	struct err e;

	err_clear(&e);
	if (tmpl_render(tp, t->vars, &b, &e) != 0) {
		buf_free(&b);
		return ing_error(t->ctx, 500, "flow file \"%s\": %s: %s", t->f->path,
		    what, e.msg);
	}
	*out = ing_strdup(t->ctx, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

int
decl_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct decl_turn t = { ctx, decl_find(ctx->turn.flow), req, NULL, NULL,
	    NULL, -1 };
	const char *answer = NULL;
	size_t i;
	int rc = -1;

	if (t.f == NULL)
		return ing_error(ctx, 500, "declarative flow \"%s\" is not loaded in "
		    "this process", ctx->turn.flow != NULL ? ctx->turn.flow : "?");
	decl_turn_vars(&t);
	t.stream_agent = decl_stream_agent(t.f);
	for (i = 0; i < t.f->n_steps; i++)
		if (decl_step(&t, &t.f->steps[i]) != 0)
			goto out;
	if (t.f->reply_agent >= 0) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(t.agents,
		    t.f->agents[t.f->reply_agent].name);

		answer = ing_strdup(ctx, cJSON_IsString(v) ? v->valuestring : "");
	} else if (t.f->reply != NULL) {
		if (decl_render_text(&t, t.f->reply, "reply", &answer) != 0)
			goto out;
	} else {
		/* the last agent of the last step */
		const struct decl_step *st = &t.f->steps[t.f->n_steps - 1];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(t.agents,
		    t.f->agents[st->agents[st->n - 1]].name);

		answer = ing_strdup(ctx, cJSON_IsString(v) ? v->valuestring : "");
	}
	for (i = 0; i < t.f->n_rules; i++)
		if (strcasestr(req->user_prompt, t.f->rules[i].contains) != NULL)
			answer = ing_sprintf(ctx, "%s%s", answer, t.f->rules[i].text);
	if (t.f->memory != NULL &&
	    decl_render_text(&t, t.f->memory, "memory", &reply->memory_summary) != 0)
		goto out;
	reply->agent_response = answer;
	/* a streaming client got the reply agent's tokens as they came, or gets
	 * the reply now that it is final (a no-op for another client) */
	if (t.stream_agent < 0)
		(void)ing_emit(ctx, answer);
	rc = 0;
out:
	cJSON_Delete(t.vars);
	return rc;
}
