/*
 * catalog.c -- the facts the listings give about each flow of a registry
 * (`ingen workflows`, GET /api/v1/workflows, /api/v1/workflow-status): its
 * description, origin, what configuration it needs and which of it is
 * missing, and a sample request.  Every flow today needs one chat model;
 * the keys it needs follow the model's authentication method, as lib/llm.c
 * reads them.  It never runs a flow and never prints a secret.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flows/catalog.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/llm.h"
#include "lib/xmalloc.h"

#define CATALOG_NAMING_NOTE "Workflows support both hyphenated " \
	"(bike-insights) and underscored (bike_insights) naming formats"
#define CATALOG_PASSWORD_VAR "$INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD"

/* A prompt the sample request sends to a flow of that name. */
static const struct {
	const char *flow, *prompt;
} catalog_prompts[] = {
	{ "classification_agent", "Hello, which bikes do you have in stock?" },
	{ "task_manager", "Add task: Review documentation" },
	{ "knowledge_base_agent", "What are the workplace safety guidelines?" },
	{ "sql_manipulation_agent", "What is the average math score by lunch type?" },
	/* the reference's example payload (its CLI help), as a JSON string */
	{ "bike_insights", "{\\\"revision_id\\\":\\\"quickstart-1\\\","
	  "\\\"identifier\\\":\\\"world\\\",\\\"stores\\\":[{\\\"name\\\":"
	  "\\\"Hello Store\\\",\\\"location\\\":\\\"NSW\\\",\\\"bike_sales\\\":"
	  "[{\\\"product_code\\\":\\\"HELLO-001\\\",\\\"quantity_sold\\\":1,"
	  "\\\"sale_date\\\":\\\"2023-04-01\\\",\\\"year\\\":2023,\\\"month\\\":"
	  "\\\"April\\\",\\\"customer_review\\\":{\\\"rating\\\":5.0,"
	  "\\\"comment\\\":\\\"Great bike\\\"}}],\\\"bike_stock\\\":[{\\\"bike\\\":"
	  "{\\\"brand\\\":\\\"Hello\\\",\\\"model\\\":\\\"World\\\",\\\"year\\\":"
	  "2023,\\\"price\\\":100.0,\\\"suspension\\\":\\\"full\\\"},"
	  "\\\"quantity\\\":10}]}]}" },
};

static bool
catalog_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static void
catalog_push(char list[][CATALOG_ITEM_MAX], size_t *n, int index,
    const char *key)
{
	if (*n == CATALOG_LIST_MAX)
		return;
	snprintf(list[(*n)++], CATALOG_ITEM_MAX, "models.%d.%s", index, key);
}

/* A key the flow needs: required always, missing when empty. */
static void
catalog_need(struct catalog_entry *out, int index, const char *key,
    const char *value)
{
	catalog_push(out->required, &out->n_required, index, key);
	if (catalog_empty(value))
		catalog_push(out->missing, &out->n_missing, index, key);
}

static void
catalog_service(struct catalog_entry *out, const char *name)
{
	if (out->n_external < CATALOG_LIST_MAX)
		snprintf(out->external[out->n_external++], CATALOG_ITEM_MAX, "%s",
		    name);
}

/* The chat model and the keys its authentication method reads. */
static void
catalog_model(const struct config *cfg, struct catalog_entry *out)
{
	int idx = llm_model_find(cfg, "chat");
	const struct config_model *m;
	const char *am, *tenant;

	if (idx < 0) {
		/* no chat model at all: the first one to configure */
		catalog_need(out, 0, "model", NULL);
		catalog_need(out, 0, "base_url", NULL);
		catalog_need(out, 0, "api_key", NULL);
		catalog_service(out, "Azure OpenAI");
		return;
	}
	m = &cfg->models[idx];
	am = catalog_empty(m->authentication_method) ? "token" :
	    m->authentication_method;
	catalog_service(out, m->api_type != NULL &&
	    strcasecmp(m->api_type, "openai") == 0 ? "OpenAI" : "Azure OpenAI");
	catalog_need(out, idx, "model", m->model);
	catalog_need(out, idx, "base_url", m->base_url);
	if (m->api_type != NULL && strcasecmp(m->api_type, "openai") == 0)
		catalog_need(out, idx, "api_key", m->api_key);
	else if (strcasecmp(am, "token") == 0)
		catalog_need(out, idx, "api_key", m->api_key);
	else if (strcasecmp(am, "client_id_and_secret") == 0) {
		tenant = !catalog_empty(m->tenant_id) ? m->tenant_id :
		    cfg->azure_identity.tenant_id;
		catalog_need(out, idx, "client_id", m->client_id);
		catalog_need(out, idx, "client_secret", m->client_secret);
		catalog_need(out, idx, "tenant_id", tenant);
	}
	/* msi and default_credential find their identity at run time */
}

/* A key outside models: required always, missing when empty. */
static void
catalog_need_key(struct catalog_entry *out, const char *key, const char *value)
{
	if (out->n_required < CATALOG_LIST_MAX)
		snprintf(out->required[out->n_required++], CATALOG_ITEM_MAX, "%s", key);
	if (catalog_empty(value) && out->n_missing < CATALOG_LIST_MAX)
		snprintf(out->missing[out->n_missing++], CATALOG_ITEM_MAX, "%s", key);
}

/* The knowledge-base-agent: Azure AI Search where kb.policy needs it (the
 * endpoint, and the key for token authentication), the local knowledge
 * base otherwise (the database the server has anyway), a chat model in
 * assist mode only. */
static void
catalog_kb(const struct config *cfg, struct catalog_entry *out)
{
	const struct config_search *s = cfg->n_search > 0 ? &cfg->search[0] : NULL;
	const char *policy = catalog_empty(cfg->kb.policy) ? "azure_only" :
	    cfg->kb.policy;
	const char *am;

	if (cfg->kb.mode != NULL && strcmp(cfg->kb.mode, "assist") == 0)
		catalog_model(cfg, out);
	if (strcmp(policy, "local_only") != 0)
		catalog_service(out, "Azure AI Search");
	if (strcmp(policy, "azure_only") != 0)
		catalog_service(out, "PostgreSQL (the local knowledge base)");
	if (strcmp(policy, "azure_only") != 0)
		return;
	catalog_need_key(out, "azure_search_services.0.endpoint",
	    s != NULL ? s->endpoint : NULL);
	am = s == NULL || catalog_empty(s->authentication_method) ? "token" :
	    s->authentication_method;
	if (strcasecmp(am, "token") == 0)
		catalog_need_key(out, "azure_search_services.0.key",
		    s != NULL ? s->key : NULL);
}

/* The address a client on this host reaches the server at. */
static void
catalog_address(const struct config *cfg, char *out, size_t n)
{
	const char *ip = cfg->web.ip_address;

	if (catalog_empty(ip) || strcmp(ip, "0.0.0.0") == 0)
		snprintf(out, n, "127.0.0.1");
	else if (strcmp(ip, "::") == 0)
		snprintf(out, n, "[::1]");
	else if (strchr(ip, ':') != NULL)
		snprintf(out, n, "[%s]", ip);
	else
		snprintf(out, n, "%s", ip);
}

static void
catalog_command(const struct config *cfg, struct catalog_entry *out)
{
	const char *prompt = "Hello";
	char host[96], user[160] = "";
	size_t i;

	for (i = 0; i < sizeof(catalog_prompts) / sizeof(catalog_prompts[0]); i++)
		if (strcmp(catalog_prompts[i].flow, out->name) == 0)
			prompt = catalog_prompts[i].prompt;
	catalog_address(cfg, host, sizeof(host));
	/* a user name with a quote would break the shell line: leave it out */
	if (cfg->web.authentication.enable &&
	    strpbrk(cfg->web.authentication.username, "'\"\\$`") == NULL)
		snprintf(user, sizeof(user), " -u \"%.64s:%s\"",
		    cfg->web.authentication.username, CATALOG_PASSWORD_VAR);
	snprintf(out->test_command, sizeof(out->test_command),
	    "curl -X POST http://%s:%d/api/v1/chat%s -H 'Content-Type: "
	    "application/json' -d '{\"user_prompt\":\"%s\",\"conversation_flow\":"
	    "\"%s\"}'", host, cfg->web.port, user, prompt, out->name);
}

void
catalog_describe(const struct config *cfg, const struct registry_info *info,
    struct catalog_entry *out)
{
	size_t k;

	memset(out, 0, sizeof(*out));
	out->name = info->name;
	for (k = 0; info->name[k] != '\0' && k + 1 < sizeof(out->hyphenated); k++)
		out->hyphenated[k] = info->name[k] == '_' ? '-' : info->name[k];
	out->hyphenated[k] = '\0';
	out->description = catalog_empty(info->description) ? "Custom workflow" :
	    info->description;
	out->category = catalog_empty(info->category) ? "Custom" : info->category;
	out->requires = catalog_empty(info->requires) ? "a chat model" :
	    info->requires;
	if (info->origin == REGISTRY_ORIGIN_PLUGIN) {
		out->origin = "plugin";
		out->file = info->file != NULL ? info->file : "";
		out->module = info->module;
		out->module_version = info->module_version;
		out->abi_major = info->abi_major;
		out->abi_minor = info->abi_minor;
		out->replaces_builtin = info->replaces_builtin;
	} else if (info->origin == REGISTRY_ORIGIN_DECLARATIVE) {
		out->origin = "declarative";
		out->file = info->file != NULL ? info->file : "";
		out->module_version = "";
		out->replaces_builtin = info->replaces_builtin;
	} else {
		/* one file per built-in flow, named after it (flows/builtin/) */
		out->origin = "built-in";
		snprintf(out->file_buf, sizeof(out->file_buf),
		    "built into ingen (flows/builtin/%s.c)", info->name);
		out->file = out->file_buf;
	}
	out->enabled = !info->disabled;
	if (info->origin == REGISTRY_ORIGIN_BUILTIN &&
	    strcmp(info->name, "knowledge_base_agent") == 0)
		catalog_kb(cfg, out);
	else
		catalog_model(cfg, out);
	if (info->origin == REGISTRY_ORIGIN_BUILTIN &&
	    strcmp(info->name, "sql_manipulation_agent") == 0)
		catalog_service(out, "PostgreSQL (the SQL agent's schema, sql_agent.*)");
	out->configured = out->n_missing == 0;
	out->ready = out->configured && out->enabled;
	catalog_command(cfg, out);
}

static void
catalog_strings(struct buf *b, const char *key,
    const char list[][CATALOG_ITEM_MAX], size_t n)
{
	size_t i;

	buf_printf(b, ",\"%s\":[", key);
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_json_string(b, list[i]);
	}
	buf_putc(b, ']');
}

void
catalog_entry_json(struct buf *b, const struct catalog_entry *ent,
    unsigned flags)
{
	buf_puts(b, "{\"workflow\":");
	buf_json_string(b, ent->name);
	buf_puts(b, ",\"description\":");
	buf_json_string(b, ent->description);
	buf_puts(b, ",\"category\":");
	buf_json_string(b, ent->category);
	buf_printf(b, ",\"configured\":%s", ent->configured ? "true" : "false");
	catalog_strings(b, "missing_config", ent->missing, ent->n_missing);
	catalog_strings(b, "required_config",
	    ent->required, ent->n_required);
	catalog_strings(b, "external_services",
	    ent->external, ent->n_external);
	buf_printf(b, ",\"ready\":%s,\"test_command\":", ent->ready ? "true" : "false");
	buf_json_string(b, ent->test_command);
	buf_puts(b, ",\"documentation\":");
	buf_json_string(b, CATALOG_DOCUMENTATION);
	if (flags & CATALOG_JSON_NAMES) {
		buf_puts(b, ",\"supported_names\":[");
		buf_json_string(b, ent->name);
		if (strcmp(ent->name, ent->hyphenated) != 0) {
			buf_putc(b, ',');
			buf_json_string(b, ent->hyphenated);
		}
		buf_putc(b, ']');
	}
	buf_puts(b, ",\"origin\":");
	buf_json_string(b, ent->origin);
	buf_puts(b, ",\"requires\":");
	buf_json_string(b, ent->requires);
	buf_printf(b, ",\"enabled\":%s", ent->enabled ? "true" : "false");
	if (flags & CATALOG_JSON_SOURCE) {
		buf_puts(b, ",\"source_file\":");
		buf_json_string(b, ent->file);
		if (ent->module != NULL) {
			buf_puts(b, ",\"module\":");
			buf_json_string(b, ent->module);
			buf_puts(b, ",\"module_version\":");
			buf_json_string(b, ent->module_version ? ent->module_version : "");
			buf_printf(b, ",\"abi\":\"%u.%u\",\"replaces_builtin\":%s",
			    ent->abi_major, ent->abi_minor,
			    ent->replaces_builtin ? "true" : "false");
		} else if (ent->replaces_builtin) {
			/* a flow file in a built-in flow's place */
			buf_puts(b, ",\"replaces_builtin\":true");
		}
	}
	buf_putc(b, '}');
}

void
catalog_list_json(struct buf *b, const struct config *cfg,
    const struct registry *reg, unsigned flags)
{
	size_t n = registry_info_count(reg), i, j, configured = 0;
	struct catalog_entry *ents = n ? xcalloc(n, sizeof(*ents)) : NULL;
	bool first;

	for (i = 0; i < n; i++) {
		catalog_describe(cfg, registry_info_at(reg, i), &ents[i]);
		configured += ents[i].configured;
	}
	buf_puts(b, "{\"workflows\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		catalog_entry_json(b, &ents[i], flags | CATALOG_JSON_NAMES);
	}
	/* categories in order of first appearance */
	buf_puts(b, "],\"by_category\":{");
	first = true;
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(ents[j].category, ents[i].category) == 0)
				break;
		if (j < i)
			continue;
		if (!first)
			buf_putc(b, ',');
		first = false;
		buf_json_string(b, ents[i].category);
		buf_puts(b, ":[");
		for (j = i; j < n; j++)
			if (strcmp(ents[j].category, ents[i].category) == 0) {
				if (j > i)
					buf_putc(b, ',');
				buf_json_string(b, ents[j].name);
			}
		buf_putc(b, ']');
	}
	buf_printf(b, "},\"summary\":{\"total\":%zu,\"configured\":%zu,"
	    "\"unconfigured\":%zu},\"naming_note\":", n, configured, n - configured);
	buf_json_string(b, CATALOG_NAMING_NOTE);
	buf_putc(b, '}');
	free(ents);
}

void
catalog_unknown(struct buf *b, const struct registry *reg, const char *name)
{
	char norm[REGISTRY_NAME_MAX];
	size_t i;

	buf_printf(b, "Unknown workflow: %s (normalized: %s). Available: [", name,
	    registry_normalize(name, norm, sizeof(norm)));
	for (i = 0; i < registry_count(reg); i++)
		buf_printf(b, "%s'%s'", i ? ", " : "", registry_at(reg, i)->name);
	buf_putc(b, ']');
}
