/*
 * plugin.h -- flows in C on the flow path: finding the shared objects,
 * checking their descriptor (magic, ABI, build signature, flows) and
 * loading them, in the process that may run their code.
 *
 * Three kinds of process use it, and only the last two run plugin code:
 *   - the master scans the flow path and opens every file it finds
 *     (plugin_scan), then has a short-lived child load and check them
 *     (plugin_validate) and learns what they declare from the child's
 *     report: it never calls dlopen itself;
 *   - a worker, after the fork, loads the same files through the
 *     descriptors the master opened (plugin_bind), so that every worker of
 *     a generation runs the files the generation validated, even when the
 *     path has been replaced since;
 *   - a command of `ingen` loads the files in-process (plugin_load_all).
 * The registry (flows/registry.c) owns the cross-file rules: duplicate
 * names, built-ins replaced or disabled.
 */
#ifndef INGEN_PLUGIN_H
#define INGEN_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "flows/flow.h"
#include "lib/err.h"

/* Longest message about one file, with its NUL. */
#define PLUGIN_MSG_MAX 1024
/* How long the master waits for its loader child to check the flow path. */
#define PLUGIN_VALIDATE_TIMEOUT_MS 10000

/* One flow a plugin declares (the strings are copies, owned here). */
struct plugin_flow {
	char *name;             /* in normal form (checked) */
	char *description;      /* "" when the plugin gave none */
	char *category;         /* "Custom" when the plugin gave none */
	char *requires;         /* "a chat model" when the plugin gave none */
	int (*run)(struct ing_ctx *ctx, const struct ing_chat_request *req,
	    struct ing_chat_reply *reply);  /* NULL until loaded in this process */
};

/* One file found on the flow path, and what checking it found. */
struct plugin_file {
	char *path;             /* as found: "<folder>/<name>.so" or "<folder>/<name>/<name>.so" */
	int fd;                 /* opened by plugin_scan (O_CLOEXEC), -1 once closed */
	char *error;            /* NULL: accepted; else why it was refused, one line */
	char *module;           /* the descriptor's name (the file's when it has none) */
	char *version;          /* the descriptor's version, "" when none */
	unsigned abi_major, abi_minor;
	struct plugin_flow *flows;
	size_t n_flows;
	void *handle;           /* dlopen handle in a process that loaded it */
};

/* The files of a flow path, in search order (folders in the order of the
 * path, files sorted by name within a folder). */
struct plugin_set {
	struct plugin_file *files;
	size_t n;
};

/*
 * Find the plugins of `flow_path` (folders separated by ':'; an empty
 * element or a missing folder is skipped, logged at debug): every
 * "<name>.so" and "<name>/<name>.so" of each folder, opened read-only.
 * A folder that cannot be read, or a file that cannot be opened, becomes an
 * entry with `error` set.  Never fails; free the set with plugin_set_free.
 * Runs no plugin code (the master calls it).
 */
void plugin_scan(const char *flow_path, struct plugin_set *set);

/*
 * Load and check every file of `set` in a short-lived child process (fork,
 * no exec) and fill in each file's module, version, ABI and flows, or its
 * error, from what the child reports through a pipe.  A file whose loading
 * kills the child or outlasts PLUGIN_VALIDATE_TIMEOUT_MS is refused and the
 * check goes on with the next one in a new child.  No plugin code runs in
 * the caller.  Returns 0, or -1 with `e` set when no child could be run.
 */
int plugin_validate(struct plugin_set *set, struct err *e) ING_WUR;

/*
 * Load and check every file of `set` in this process (dlopen of the path)
 * and fill in what it declares, with the run functions bound.  For the
 * commands of `ingen` (and the loader child); never in the master.
 */
void plugin_load_all(struct plugin_set *set);

/*
 * In a worker: load file `f` through the descriptor the master opened,
 * check it again, and bind the run function of each flow of f->flows (what
 * the generation validated) by name.  Returns 0, or -1 with `e` set when
 * the file no longer loads, no longer passes the checks or lost a flow.
 */
int plugin_bind(struct plugin_file *f, struct err *e) ING_WUR;

/*
 * Check a descriptor found in `path` (already loaded) and fill f's module,
 * version, ABI and flows from it (run functions included).  Returns 0, or -1
 * with `msg` (PLUGIN_MSG_MAX bytes) set to the refusal, one line naming the
 * file, what was expected, what was found and the fix.  Pure: no I/O.
 */
int plugin_check(const char *path, const struct ing_flow_module *m,
    struct plugin_file *f, char *msg) ING_WUR;

/* Is `name` a flow name in normal form: 1 to 127 characters of a-z, 0-9
 * and '_'? */
bool plugin_name_ok(const char *name);

/* Free what the set holds and close its descriptors (loaded objects stay
 * loaded: their code may still be referenced by threads they started). */
void plugin_set_free(struct plugin_set *set);

#endif
