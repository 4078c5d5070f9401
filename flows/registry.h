/*
 * registry.h -- the flows of one configuration generation, found by name.
 *
 * The master builds a registry with each configuration (at start and on
 * SIGHUP: build the new one, validate, swap; on any error the old one keeps
 * serving), and each worker receives its generation's registry at fork
 * (struct proc_worker_start), loads its plugins into its copy once
 * (registry_load_plugins) before it accepts, and from then on only reads
 * it, so any thread of a worker may look a flow up.
 *
 * A registry holds the built-in flows (flows/builtin/), the flows in C of
 * the flow path (server.flow_path, flows/plugin.h) and the flow files there
 * (flows/declarative.h; the master parses those itself: they run no code).
 * A plugin or declarative flow with the name of a built-in one replaces it
 * (with a warning); a plugin and a flow file of one name are refused;
 * chat_service.enable_builtin_workflows = false keeps the built-in ones
 * listed but disabled.  The master never runs plugin code: registry_build
 * has a short-lived child load and check the plugins, and in the master's
 * registry a plugin flow's `run` is NULL until a worker binds it.
 *
 * Names are normalized as the reference does: '-' becomes '_', upper case
 * becomes lower case ("Classification-Agent" finds classification_agent).
 */
#ifndef INGEN_REGISTRY_H
#define INGEN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "flows/flow.h"
#include "lib/err.h"

/* Longest flow name, with its NUL. */
#define REGISTRY_NAME_MAX 128

struct config;
struct registry;

/* Where a flow comes from. */
enum registry_origin {
	REGISTRY_ORIGIN_BUILTIN,    /* compiled into the server */
	REGISTRY_ORIGIN_PLUGIN,     /* a shared object on the flow path */
	REGISTRY_ORIGIN_DECLARATIVE,  /* a flow file on the flow path (flows/declarative.h) */
};

/* What listings say about one flow (`ingen workflows`, /api/v1/workflows).
 * The strings belong to the registry and live as long as it does. */
struct registry_info {
	const char *name;               /* normal form */
	const char *description;        /* "" when none */
	const char *category;           /* "Core" for built-ins, "Custom" by default */
	const char *requires;           /* "a chat model" by default */
	enum registry_origin origin;
	const char *file;               /* plugin, declarative: its path as found; built-in: NULL */
	const char *module;             /* plugin: the descriptor's name; built-in: NULL */
	const char *module_version;     /* plugin: the descriptor's version ("" when none) */
	unsigned abi_major, abi_minor;  /* plugin: the ABI it was built for */
	bool replaces_builtin;          /* plugin, declarative: it took a built-in flow's name */
	bool disabled;                  /* built-in: chat_service.enable_builtin_workflows = false */
};

/* What the last build found: problems (any one refuses the generation)
 * and warnings (a built-in flow replaced), one line each, in the loader's
 * words (docs/flows.md, "Load errors and what to do"). */
struct registry_report {
	char **problems;
	size_t n_problems;
	char **warnings;
	size_t n_warnings;
};

/*
 * Build the flows of the generation of `cfg`: the built-in flows, and the
 * plugins of server.flow_path, loaded and checked in a short-lived child
 * process (their ABI, their build signature, names in normal form and
 * shorter than REGISTRY_NAME_MAX, a run function, no name twice), and the
 * flow files there, parsed and checked in the calling process (a flow file
 * runs no code).  Runs no plugin code in the calling process.  Returns a new registry (free with
 * registry_free), or NULL with `e` set (the problem, or how many there are
 * and the first); nothing is left to free then.  Either way the problems
 * and warnings are in registry_last_report().  Called by the master (or a
 * command of `ingen`), never on a request path: it reads files and forks.
 */
struct registry *registry_build(const struct config *cfg, struct err *e)
    ING_WUR;

/*
 * registry_build, with the plugins loaded into this process and their run
 * functions bound: for the commands of `ingen` that run a flow in-process
 * (`ingen flow test`).  Never in the master.  Call it once per process
 * (loaded objects stay loaded).
 */
struct registry *registry_build_loaded(const struct config *cfg,
    struct err *e) ING_WUR;

/*
 * In a worker, right after the fork and before it accepts: load the
 * plugins of its copy of the generation's registry (through the
 * descriptors the master opened when it checked them, so every worker of a
 * generation runs the files that generation validated), check them again
 * and bind their run functions; the generation's flow files become the
 * ones declarative flows run (decl_bind).  Returns 0 (also when there is nothing to
 * load, or when they are loaded already), or -1 with `e` set ("flow plugin
 * ... "): the worker cannot serve this generation (PROC_EXIT_FATAL).
 */
int registry_load_plugins(struct registry *reg, struct err *e) ING_WUR;

/* The problems and warnings of the last registry_build or
 * registry_build_loaded of this process (empty before the first).  Valid
 * until the next build.  Not thread-safe: the master and the commands of
 * `ingen` build from one thread. */
const struct registry_report *registry_last_report(void);

/* Log a report with the action "loading flows": every warning at warning
 * level, and every problem at error level when there are several (a single
 * problem is the build's error message, which the caller logs; it is logged
 * here too when it was too long for a struct err). */
void registry_log_report(const struct registry_report *r);

/* Free a registry and what it holds (NULL is fine); loaded plugins stay
 * loaded.  No worker thread may use it any more; the master frees a
 * generation's registry after the swap, the copies in old workers live in
 * their own address spaces. */
void registry_free(struct registry *reg);

/* Normalize `name` into out (at most n bytes with the NUL).  Returns out. */
char *registry_normalize(const char *name, char *out, size_t n);

/* The enabled flow of that (normalized or not) name in `reg`, or NULL.  A
 * plugin flow's run is NULL in the master's registry (never bound there). */
const struct ing_flow *registry_find(const struct registry *reg,
    const char *name);

/* Is `name` a built-in flow that chat_service.enable_builtin_workflows =
 * false turned off (and no plugin replaced)?  The turn answers 400 then. */
bool registry_is_disabled_builtin(const struct registry *reg,
    const char *name);

/* The enabled flows of `reg`, in listing order: their number and the i-th
 * one (NULL past the end).  For "Available: [...]" lists. */
size_t registry_count(const struct registry *reg);
const struct ing_flow *registry_at(const struct registry *reg, size_t i);

/* Every flow of `reg` with its listing facts, disabled built-ins included,
 * in listing order: their number, the i-th one (NULL past the end), and
 * the one of that (normalized or not) name (NULL when none). */
size_t registry_info_count(const struct registry *reg);
const struct registry_info *registry_info_at(const struct registry *reg,
    size_t i);
const struct registry_info *registry_info_find(const struct registry *reg,
    const char *name);

#endif
