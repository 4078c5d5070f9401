/*
 * catalog.h -- what the listings say about the flows of a registry: each
 * flow's description, category, origin and file, what it needs, whether
 * the configuration gives it that (a chat model with its URL and its
 * credentials), and a sample request that works against this server.  One
 * module answers for `ingen workflows` and for GET /api/v1/workflows and
 * /api/v1/workflow-status/{name}, so the command and the API never
 * disagree.  It reads a configuration and a registry and never runs a flow.
 */
#ifndef INGEN_CATALOG_H
#define INGEN_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "flows/registry.h"

struct buf;
struct config;

#define CATALOG_LIST_MAX 8          /* entries of missing/required/external */
#define CATALOG_ITEM_MAX 64         /* one of them, with its NUL */
#define CATALOG_COMMAND_MAX 1024    /* the sample curl */

/* The facts of one flow.  Strings point into the flow, the registry or
 * the configuration (which must outlive the entry) or into the entry. */
struct catalog_entry {
	const char *name;               /* "task_manager" */
	char hyphenated[REGISTRY_NAME_MAX];     /* "task-manager" */
	const char *description;
	const char *category;           /* the flow's, or "Custom" */
	const char *requires;           /* the flow's, or "a chat model" */
	const char *origin;             /* "built-in", "plugin" or "declarative" */
	const char *file;               /* where its code is */
	const char *module;             /* plugin: its module's name, else NULL */
	const char *module_version;     /* plugin: its module's version, else NULL */
	unsigned abi_major, abi_minor;  /* plugin: the ABI it was built for */
	bool replaces_builtin;          /* plugin: it took a built-in flow's name */
	bool enabled;                   /* false: a built-in flow switched off */
	bool configured;                /* no configuration missing */
	bool ready;                     /* configured and enabled */
	size_t n_missing, n_required, n_external;
	char missing[CATALOG_LIST_MAX][CATALOG_ITEM_MAX];   /* configuration keys */
	char required[CATALOG_LIST_MAX][CATALOG_ITEM_MAX];  /* configuration keys */
	char external[CATALOG_LIST_MAX][CATALOG_ITEM_MAX];  /* "Azure OpenAI" */
	char test_command[CATALOG_COMMAND_MAX];
	char file_buf[REGISTRY_NAME_MAX + 64];
};

/* The documentation every entry points to. */
#define CATALOG_DOCUMENTATION "See docs/flows.md for detailed setup instructions"

/*
 * Describe the flow `info` (registry_info_at or registry_info_find) under
 * `cfg`; a built-in flow that chat_service.enable_builtin_workflows turned
 * off is described, not ready.
 * The sample request uses the configured address and port (a wildcard
 * address becomes the loopback one) and, when authentication is on, the
 * configured user with the password read from the shell's
 * $INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD (never the
 * password itself).  Pure: any thread.
 */
void catalog_describe(const struct config *cfg,
    const struct registry_info *info, struct catalog_entry *out);

/* Fields of the JSON of an entry beyond the reference's. */
#define CATALOG_JSON_NAMES  0x1     /* "supported_names" (the /workflows list) */
#define CATALOG_JSON_SOURCE 0x2     /* "source_file": for the command line,
                                     * never for a client of the API */

/*
 * Append an entry as the reference's workflow status object: workflow,
 * description, category, configured, missing_config, required_config,
 * external_services, ready, test_command, documentation, then origin and
 * requires, and the fields of `flags`.
 */
void catalog_entry_json(struct buf *b, const struct catalog_entry *ent,
    unsigned flags);

/*
 * Append the reference's GET /api/v1/workflows document for every flow of
 * `reg` (registry_info_at, disabled built-ins included): workflows (each with supported_names), by_category (category ->
 * names), summary (total, configured, unconfigured) and naming_note.
 */
void catalog_list_json(struct buf *b, const struct config *cfg,
    const struct registry *reg, unsigned flags);

/*
 * Append the message for a name that is no flow of `reg`:
 * "Unknown workflow: <name> (normalized: <n>). Available: ['a', 'b']"
 * (the flows that answer: registry_at).
 */
void catalog_unknown(struct buf *b, const struct registry *reg,
    const char *name);

#endif
