/*
 * cli_workflows.c -- `ingen workflows [NAME] [--json]`: every flow of the
 * configuration's generation, as the server would load it, with what it
 * needs, whether the configuration gives it that and a request that works
 * against this configuration (the facts of flows/catalog.c, the same as
 * GET /api/v1/workflows).  It also owns the loading of the flows for the
 * commands of `ingen` (cli_flows_load).  It never starts a server and
 * never prints a secret.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "flows/catalog.h"
#include "flows/registry.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "cli/cli.h"

#define CLI_WF_EXIT_OK      0
#define CLI_WF_EXIT_FAILURE 1
#define CLI_WF_EXIT_USAGE   2

static const char cli_workflows_usage[] =
"Usage: ingen workflows [NAME] [OPTIONS]\n"
"\n"
"List the conversation flows this configuration serves (built-in ones and C\n"
"plugins on server.flow_path): description, where the code is, what each\n"
"needs, whether the configuration is complete, and a curl request that works\n"
"against this server.  With NAME (hyphens or underscores, any case): that\n"
"flow, with the configuration keys it needs and the ones missing.\n"
"\n"
"Options:\n"
"  -c, --config FILE   configuration file (the usual search otherwise)\n"
"      --json          print JSON: the document of GET /api/v1/workflows, or\n"
"                      of GET /api/v1/workflow-status/NAME, with source_file\n"
"  -h, --help          this help\n"
"\n"
"Exit codes: 0 ok, 1 the flows could not be loaded, 2 usage, configuration\n"
"or an unknown NAME (the available flows are listed).\n";

struct registry *
cli_flows_load(const struct config *cfg, bool in_process)
{
	const struct registry_report *rep;
	struct registry *reg;
	struct err e;
	size_t i;

	err_clear(&e);
	reg = in_process ? registry_build_loaded(cfg, &e) : registry_build(cfg, &e);
	rep = registry_last_report();
	for (i = 0; i < rep->n_warnings; i++)
		fprintf(stderr, "ingen: warning: %s\n", rep->warnings[i]);
	if (reg != NULL)
		return reg;
	if (rep->n_problems <= 1)
		fprintf(stderr, "ingen: %s\n", e.msg);
	else
		for (i = 0; i < rep->n_problems; i++)
			fprintf(stderr, "ingen: %s\n", rep->problems[i]);
	return NULL;
}

/* The items of a list, comma-separated ("none" for none), then a newline. */
static void
cli_workflows_items(const char list[][CATALOG_ITEM_MAX], size_t n)
{
	size_t i;

	if (n == 0)
		printf("none");
	for (i = 0; i < n; i++)
		printf("%s%s", i ? ", " : "", list[i]);
	putchar('\n');
}

static void
cli_workflows_list(const char *label, const char list[][CATALOG_ITEM_MAX],
    size_t n)
{
	printf("  %-13s", label);
	cli_workflows_items(list, n);
}

/* One flow for a person; `full` adds the keys it needs and its services. */
static void
cli_workflows_print(const struct catalog_entry *ent, bool full)
{
	printf("%s (%s, %s)\n", ent->name, ent->origin, ent->category);
	printf("  %-13s%s\n", "description", ent->description);
	printf("  %-13s%s\n", "source", ent->file);
	if (ent->module != NULL)
		printf("  %-13s%s %s, flow API %u.%u%s\n", "module", ent->module,
		    ent->module_version && ent->module_version[0] ?
		    ent->module_version : "(no version)", ent->abi_major,
		    ent->abi_minor, ent->replaces_builtin ?
		    ", replaces the built-in flow" : "");
	printf("  %-13s%s\n", "requires", ent->requires);
	if (full) {
		cli_workflows_list("config keys",
		    ent->required, ent->n_required);
		cli_workflows_list("services",
		    ent->external, ent->n_external);
	}
	if (!ent->enabled)
		printf("  %-13sdisabled (chat_service.enable_builtin_workflows "
		    "is false)\n", "state");
	if (ent->configured) {
		printf("  %-13scomplete\n", "config");
	} else {
		printf("  %-13sincomplete, missing ", "config");
		cli_workflows_items(ent->missing,
		    ent->n_missing);
	}
	printf("  %-13s%s\n", "try", ent->test_command);
}

int
cli_flows_unknown(const struct registry *reg, const char *name)
{
	char norm[REGISTRY_NAME_MAX];
	size_t i;

	fprintf(stderr, "ingen: unknown flow \"%s\" (normalized: %s); available:",
	    name, registry_normalize(name, norm, sizeof(norm)));
	for (i = 0; i < registry_count(reg); i++)
		fprintf(stderr, "%s %s", i ? "," : "", registry_at(reg, i)->name);
	fprintf(stderr, "%s\n", registry_count(reg) ? "" : " none");
	return CLI_WF_EXIT_USAGE;
}

int
cli_workflows_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_file = NULL, *name = NULL;
	const struct registry_info *info;
	struct catalog_entry ent;
	struct registry *reg;
	struct config *cfg;
	struct buf b = BUF_INIT;
	bool json = false;
	size_t i, n;
	int c, rc = CLI_WF_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_file = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(cli_workflows_usage, stdout);
			return CLI_WF_EXIT_OK;
		default:
			fputs(cli_workflows_usage, stderr);
			return CLI_WF_EXIT_USAGE;
		}
	}
	if (optind < argc)
		name = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "ingen workflows: unexpected argument \"%s\"\n",
		    argv[optind]);
		return CLI_WF_EXIT_USAGE;
	}
	/* "all" is the reference's default argument */
	if (name != NULL && strcmp(name, "all") == 0)
		name = NULL;
	if ((cfg = cli_config_load_file(config_file)) == NULL)
		return CLI_WF_EXIT_USAGE;
	/* checked in a child, as the server does: no plugin code runs here */
	if ((reg = cli_flows_load(cfg, false)) == NULL) {
		config_free(cfg);
		return CLI_WF_EXIT_FAILURE;
	}
	n = registry_info_count(reg);
	if (name != NULL) {
		if ((info = registry_info_find(reg, name)) == NULL) {
			rc = cli_flows_unknown(reg, name);
			goto out;
		}
		catalog_describe(cfg, info, &ent);
		if (json) {
			catalog_entry_json(&b, &ent, CATALOG_JSON_SOURCE);
			printf("%s\n", buf_cstr(&b));
		} else {
			cli_workflows_print(&ent, true);
		}
		goto out;
	}
	if (json) {
		catalog_list_json(&b, cfg, reg, CATALOG_JSON_SOURCE);
		printf("%s\n", buf_cstr(&b));
		goto out;
	}
	for (i = 0; i < n; i++) {
		catalog_describe(cfg, registry_info_at(reg, i), &ent);
		if (i > 0)
			putchar('\n');
		cli_workflows_print(&ent, false);
	}
	if (n == 0)
		printf("no flows (chat_service.enable_builtin_workflows is false "
		    "and no plugin on server.flow_path)\n");
out:
	buf_free(&b);
	registry_free(reg);
	config_free(cfg);
	return rc;
}
