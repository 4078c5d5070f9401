/*
 * cli.h -- the subcommands of `ingen` other than `serve`.  Each takes the
 * arguments after its own name (argv[0] is the subcommand name), prints its
 * own usage on -h/--help, and returns the process exit code:
 * 0 ok, 1 general failure, 2 invalid configuration or usage, 4 validation.
 * None of them may run inside the server processes.
 */
#ifndef INGEN_CLI_H
#define INGEN_CLI_H

#include <stdbool.h>

struct config;
struct config_overrides;
struct registry;

/*
 * Load the configuration from every source (main.c): every problem is
 * printed to stderr as "ingen: <problem>", warnings as "ingen: warning: ...".
 * Returns NULL when there was a problem (exit with 2).  The caller frees
 * the config with config_free.
 */
struct config *cli_config_load(const struct config_overrides *ov);

/* Same, with only a configuration file given (NULL = the usual search). */
struct config *cli_config_load_file(const char *config_file);

/* ingen db migrate|status|init-local|start-local|stop-local ... (cli_db.c) */
int cli_db_main(int argc, char **argv);

/* ingen user add|list|passwd|disable ... (cli_user.c) */
int cli_user_main(int argc, char **argv);

/* ingen kb add|list|remove|search ... (cli_kb.c) */
int cli_kb_main(int argc, char **argv);

/* ingen workflows [NAME] [--json] (cli_workflows.c) */
int cli_workflows_main(int argc, char **argv);

/*
 * The flows of `cfg` as a worker of that configuration would load them
 * (cli_workflows.c): plugins checked in a child (registry_build), or, with
 * `in_process`, loaded into this process to be run (registry_build_loaded).
 * Prints the loader's warnings, and its problems when it fails.  Returns a
 * registry (free with registry_free), or NULL (exit with 1).
 */
struct registry *cli_flows_load(const struct config *cfg, bool in_process);

/* Print that `name` is no flow of `reg`, with the flows there are; returns
 * the exit code of a usage error (2). */
int cli_flows_unknown(const struct registry *reg, const char *name);

/* ingen flow test NAME --prompt TEXT [--replies FILE] [--json] (cli_flow.c) */
int cli_flow_main(int argc, char **argv);

/*
 * The prerequisites of `ingen validate` after the configuration and the
 * flows (cli_ops.c): the database reachable with its schema current, each
 * model's endpoint reachable, the port free; one line per check.  Returns 0,
 * or 4 when a check failed.
 */
int cli_validate_checks(const struct config *cfg);

/* ingen status|reload|stop [-c FILE] [--pidfile FILE] ... (cli_ops.c):
 * argv[0] is the command's name */
int cli_ops_main(int argc, char **argv);

/* ingen init: the scaffold of a project in the working directory (cli_init.c) */
int cli_init_main(int argc, char **argv);

#endif
