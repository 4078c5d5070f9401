/*
 * registry.c -- the flows of one configuration generation: it builds the
 * table (the built-in flows, the plugins and the flow files of the flow
 * path), applies the rules between flows (no name
 * twice, a plugin replaces a built-in of its name, built-ins disabled by
 * the configuration), keeps the report of the last build, and owns the
 * name rules.  It never runs a flow; the loading itself is flows/plugin.c.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "flows/builtin/builtin.h"
#include "flows/declarative.h"
#include "flows/plugin.h"
#include "flows/registry.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

struct registry_entry {
	struct ing_flow flow;           /* what registry_find returns */
	struct registry_info info;
	size_t file, index;             /* plugin: its file and flow in `plugins` */
};

struct registry {
	struct registry_entry *entries; /* every flow, in listing order */
	size_t n;
	const struct ing_flow **enabled;  /* the flows that answer */
	size_t n_enabled;
	struct plugin_set plugins;      /* the master's: descriptors open */
	struct decl_set decls;          /* the flow files, parsed and checked */
	bool loaded;                    /* run functions bound in this process */
};

/* The flows compiled into the server, in listing order. */
static const struct ing_flow *const registry_builtin[] = {
	&flow_classification_agent,
	&flow_bike_insights,
	&flow_knowledge_base_agent,
	&flow_sql_manipulation_agent,
};

#define REGISTRY_N_BUILTIN \
	(sizeof(registry_builtin) / sizeof(registry_builtin[0]))

static struct registry_report registry_report_last;

char *
registry_normalize(const char *name, char *out, size_t n)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < n; i++)
		out[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
	return out;
}

/* ---- the report -------------------------------------------------------- */

static void
registry_report_clear(struct registry_report *r)
{
	size_t i;

	for (i = 0; i < r->n_problems; i++)
		free(r->problems[i]);
	for (i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->problems);
	free(r->warnings);
	memset(r, 0, sizeof(*r));
}

static void
registry_report_add(char ***lines, size_t *n, char *line)
{
	*lines = xrealloc(*lines, (*n + 1) * sizeof(**lines));
	(*lines)[(*n)++] = line;
}

const struct registry_report *
registry_last_report(void)
{
	return &registry_report_last;
}

void
registry_log_report(const struct registry_report *r)
{
	size_t i;

	for (i = 0; i < r->n_warnings; i++)
		log_warn("loading flows", "%s", r->warnings[i]);
	/* a single problem is the build's error message, logged by the caller,
	 * unless it was too long to fit there whole */
	for (i = 0; i < r->n_problems; i++)
		if (r->n_problems > 1 || strlen(r->problems[i]) >= ERR_MSG_MAX - 1)
			log_error("loading flows", "%s", r->problems[i]);
}

/* ---- building ---------------------------------------------------------- */

/* The entry of that normalized name, enabled or not, or NULL. */
static struct registry_entry *
registry_entry_find(const struct registry *reg, const char *norm)
{
	size_t i;

	for (i = 0; i < reg->n; i++)
		if (strcmp(reg->entries[i].info.name, norm) == 0)
			return &reg->entries[i];
	return NULL;
}

static struct registry_entry *
registry_entry_new(struct registry *reg)
{
	struct registry_entry *en;

	reg->entries = xrealloc(reg->entries, (reg->n + 1) * sizeof(*reg->entries));
	en = &reg->entries[reg->n++];
	memset(en, 0, sizeof(*en));
	return en;
}

static void
registry_add_builtin(struct registry *reg, const struct ing_flow *f,
    bool enabled)
{
	struct registry_entry *en = registry_entry_new(reg);

	en->flow = *f;
	en->info.name = f->name;
	en->info.description = f->description != NULL ? f->description : "";
	en->info.category = f->category != NULL ? f->category : "Core";
	en->info.requires = f->requires != NULL ? f->requires : "a chat model";
	en->info.origin = REGISTRY_ORIGIN_BUILTIN;
	en->info.disabled = !enabled;
}

/* Add flow `index` of plugin file `file`, under the rules between flows. */
static void
registry_add_plugin(struct registry *reg, size_t file, size_t index)
{
	struct registry_report *r = &registry_report_last;
	const struct plugin_file *f = &reg->plugins.files[file];
	const struct plugin_flow *pf = &f->flows[index];
	struct registry_entry *en = registry_entry_find(reg, pf->name);
	bool replaces = false;

	if (en != NULL && en->info.origin == REGISTRY_ORIGIN_PLUGIN) {
		registry_report_add(&r->problems, &r->n_problems, xasprintf(
		    "flow \"%s\" is declared by two flow plugins, \"%s\" and \"%s\": "
		    "rename the flow in one of them, or remove one from the flow path",
		    pf->name, en->info.file, f->path));
		return;
	}
	if (en != NULL) {
		/* as ingenious_extensions does: the custom flow wins, in place */
		registry_report_add(&r->warnings, &r->n_warnings, xasprintf(
		    "flow plugin \"%s\" replaces the built-in flow \"%s\"", f->path,
		    pf->name));
		replaces = true;
	} else {
		en = registry_entry_new(reg);
	}
	memset(en, 0, sizeof(*en));
	en->file = file;
	en->index = index;
	en->flow.name = pf->name;
	en->flow.description = pf->description;
	en->flow.category = pf->category;
	en->flow.requires = pf->requires;
	en->flow.run = pf->run;
	en->info.name = pf->name;
	en->info.description = pf->description;
	en->info.category = pf->category;
	en->info.requires = pf->requires;
	en->info.origin = REGISTRY_ORIGIN_PLUGIN;
	en->info.file = f->path;
	en->info.module = f->module;
	en->info.module_version = f->version;
	en->info.abi_major = f->abi_major;
	en->info.abi_minor = f->abi_minor;
	en->info.replaces_builtin = replaces;
}

/* Add declarative flow `index` of the flow files, under the rules between
 * flows (the same as a plugin's; a plugin and a flow file of one name are
 * refused, naming both files). */
static void
registry_add_declarative(struct registry *reg, size_t index)
{
	struct registry_report *r = &registry_report_last;
	struct decl_facts df;
	struct registry_entry *en;
	bool replaces = false;

	decl_facts(reg->decls.flows[index], &df);
	en = registry_entry_find(reg, df.name);
	if (en != NULL && en->info.origin != REGISTRY_ORIGIN_BUILTIN) {
		registry_report_add(&r->problems, &r->n_problems, xasprintf(
		    "flow \"%s\" is declared by two files on the flow path, \"%s\" "
		    "and \"%s\": rename the flow in one of them, or remove one from "
		    "the flow path", df.name, en->info.file, df.file));
		return;
	}
	if (en != NULL) {
		registry_report_add(&r->warnings, &r->n_warnings, xasprintf(
		    "flow file \"%s\" replaces the built-in flow \"%s\"", df.file,
		    df.name));
		replaces = true;
	} else {
		en = registry_entry_new(reg);
	}
	memset(en, 0, sizeof(*en));
	en->index = index;
	en->flow.name = df.name;
	en->flow.description = df.description;
	en->flow.category = df.category;
	en->flow.requires = "a chat model";
	en->flow.run = decl_run;
	en->info.name = df.name;
	en->info.description = df.description;
	en->info.category = df.category;
	en->info.requires = "a chat model";
	en->info.origin = REGISTRY_ORIGIN_DECLARATIVE;
	en->info.file = df.file;
	en->info.module_version = "";
	en->info.replaces_builtin = replaces;
}

/* The list registry_find and registry_at read, once the entries are final
 * (their addresses do not move after this). */
static void
registry_index(struct registry *reg)
{
	size_t i;

	free(reg->enabled);
	reg->enabled = xcalloc(reg->n ? reg->n : 1, sizeof(*reg->enabled));
	reg->n_enabled = 0;
	for (i = 0; i < reg->n; i++)
		if (!reg->entries[i].info.disabled)
			reg->enabled[reg->n_enabled++] = &reg->entries[i].flow;
}

static struct registry *
registry_make(const struct config *cfg, bool in_process, struct err *e)
{
	struct registry_report *r = &registry_report_last;
	struct registry *reg = xcalloc(1, sizeof(*reg));
	size_t i, j;

	registry_report_clear(r);
	for (i = 0; i < REGISTRY_N_BUILTIN; i++)
		registry_add_builtin(reg, registry_builtin[i],
		    cfg->chat_service.enable_builtin_workflows);
	plugin_scan(cfg->server.flow_path, &reg->plugins);
	if (in_process) {
		plugin_load_all(&reg->plugins);
	} else if (plugin_validate(&reg->plugins, e) != 0) {
		registry_report_add(&r->problems, &r->n_problems, xstrdup(e->msg));
		goto fail;
	}
	for (i = 0; i < reg->plugins.n; i++) {
		const struct plugin_file *f = &reg->plugins.files[i];

		if (f->error != NULL) {
			registry_report_add(&r->problems, &r->n_problems,
			    xstrdup(f->error));
			continue;
		}
		for (j = 0; j < f->n_flows; j++)
			registry_add_plugin(reg, i, j);
	}
	/* flow files run no code: parsed and checked here, in any process */
	decl_scan(cfg, &reg->decls);
	for (i = 0; i < reg->decls.n_problems; i++)
		registry_report_add(&r->problems, &r->n_problems,
		    xstrdup(reg->decls.problems[i]));
	for (i = 0; i < reg->decls.n; i++)
		registry_add_declarative(reg, i);
	if (r->n_problems == 1) {
		err_set(e, 500, "%s", r->problems[0]);
		goto fail;
	}
	if (r->n_problems > 1) {
		err_set(e, 500, "%zu problems with the flows, the first: %s",
		    r->n_problems, r->problems[0]);
		goto fail;
	}
	registry_index(reg);
	reg->loaded = in_process;
	if (in_process)
		decl_bind(&reg->decls);
	return reg;
fail:
	registry_free(reg);
	return NULL;
}

struct registry *
registry_build(const struct config *cfg, struct err *e)
{
	return registry_make(cfg, false, e);
}

struct registry *
registry_build_loaded(const struct config *cfg, struct err *e)
{
	return registry_make(cfg, true, e);
}

int
registry_load_plugins(struct registry *reg, struct err *e)
{
	size_t i;

	if (reg->loaded)
		return 0;
	/* the flow files of the generation this process serves */
	decl_bind(&reg->decls);
	for (i = 0; i < reg->plugins.n; i++) {
		struct plugin_file *f = &reg->plugins.files[i];

		if (f->error == NULL && f->n_flows > 0 && plugin_bind(f, e) != 0)
			return -1;
	}
	for (i = 0; i < reg->n; i++) {
		struct registry_entry *en = &reg->entries[i];

		if (en->info.origin == REGISTRY_ORIGIN_PLUGIN)
			en->flow.run = reg->plugins.files[en->file].flows[en->index].run;
	}
	reg->loaded = true;
	return 0;
}

void
registry_free(struct registry *reg)
{
	if (reg == NULL)
		return;
	plugin_set_free(&reg->plugins);
	decl_set_free(&reg->decls);
	free(reg->enabled);
	free(reg->entries);
	free(reg);
}

/* ---- looking up -------------------------------------------------------- */

const struct ing_flow *
registry_find(const struct registry *reg, const char *name)
{
	char norm[REGISTRY_NAME_MAX];
	size_t i;

	if (strlen(name) >= sizeof(norm))
		return NULL;
	registry_normalize(name, norm, sizeof(norm));
	for (i = 0; i < reg->n_enabled; i++)
		if (strcmp(reg->enabled[i]->name, norm) == 0)
			return reg->enabled[i];
	return NULL;
}

bool
registry_is_disabled_builtin(const struct registry *reg, const char *name)
{
	const struct registry_info *in = registry_info_find(reg, name);

	return in != NULL && in->origin == REGISTRY_ORIGIN_BUILTIN && in->disabled;
}

size_t
registry_count(const struct registry *reg)
{
	return reg->n_enabled;
}

const struct ing_flow *
registry_at(const struct registry *reg, size_t i)
{
	return i < reg->n_enabled ? reg->enabled[i] : NULL;
}

size_t
registry_info_count(const struct registry *reg)
{
	return reg->n;
}

const struct registry_info *
registry_info_at(const struct registry *reg, size_t i)
{
	return i < reg->n ? &reg->entries[i].info : NULL;
}

const struct registry_info *
registry_info_find(const struct registry *reg, const char *name)
{
	char norm[REGISTRY_NAME_MAX];
	const struct registry_entry *en;

	if (strlen(name) >= sizeof(norm))
		return NULL;
	en = registry_entry_find(reg, registry_normalize(name, norm, sizeof(norm)));
	return en != NULL ? &en->info : NULL;
}
