/*
 * declarative.h -- flows without code: a flow file (`<name>.flow` or
 * `<name>/<name>.flow` on the flow path, libconfig syntax, docs/flows.md
 * "Flows without code") parsed and checked into a flow the registry lists
 * with the built-in and C ones, and the run function that executes it
 * through the flow API.
 *
 * A flow file declares agents (a model, a system and a user prompt, each a
 * template file of a revision or inline template text, tools chosen from
 * the other agents), steps run once each in order (an agent, or a parallel
 * group), the reply, the memory summary, append rules and limits.  It never
 * runs code: the master parses flow files itself, no loader child is
 * needed.
 */
#ifndef INGEN_DECLARATIVE_H
#define INGEN_DECLARATIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "flows/flow.h"

struct config;
struct decl_flow;

/* The flow files of one flow path, loaded and checked. */
struct decl_set {
	struct decl_flow **flows;   /* the files that loaded, in search order */
	size_t n;
	char **problems;            /* "F:LINE: ..." one per refused file */
	size_t n_problems;
};

/* What the registry lists of a loaded flow (strings owned by the flow). */
struct decl_facts {
	const char *name;           /* normal form (checked) */
	const char *description;    /* "" when none */
	const char *category;       /* "Custom" when none */
	const char *file;           /* the path as found */
};

/*
 * Parse and check the flow file `path` against `cfg` (its models and its
 * flows.* limits).  Returns the flow (decl_flow_free), or NULL with
 * *problem set to a new string "<path>:<line>: <what>" (free it).  Reads
 * only that file; no process is started and no code is run, so the master
 * may call it.
 */
struct decl_flow *decl_load(const char *path, const struct config *cfg,
    char **problem);

void decl_flow_free(struct decl_flow *f);

/* The listing facts of a loaded flow. */
void decl_facts(const struct decl_flow *f, struct decl_facts *out);

/*
 * Find the flow files of cfg->server.flow_path (folders separated by ':',
 * files sorted by name within a folder, like the plugins: "<x>.flow" and
 * "<x>/<x>.flow") and load each into `set`, the refused ones as problems.
 * Never fails; free with decl_set_free.
 */
void decl_scan(const struct config *cfg, struct decl_set *set);

void decl_set_free(struct decl_set *set);

/*
 * Make `set` the flows decl_run executes in this process (a worker, right
 * after the fork, with its generation's registry; a command of `ingen`
 * that runs flows).  Called before any flow thread runs; the set must
 * outlive every run.  NULL unbinds.
 */
void decl_bind(const struct decl_set *set);

/* The run function of every declarative flow: it finds the flow of the
 * turn (ctx->turn.flow) in the bound set and executes it. */
int decl_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply);

/* Does the folder entry `dir`/`name` (a folder) hold `<name>.flow`?  For
 * the plugin scanner, which skips such folders quietly. */
bool decl_folder_has_flow(const char *dir_entry_path, const char *name);

#endif
