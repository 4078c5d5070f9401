/*
 * cli.h -- the subcommands of `ingen` other than `serve`.  Each takes the
 * arguments after its own name (argv[0] is the subcommand name), prints its
 * own usage on -h/--help, and returns the process exit code:
 * 0 ok, 1 general failure, 2 invalid configuration or usage, 4 validation.
 * None of them may run inside the server processes.
 */
#ifndef INGEN_CLI_H
#define INGEN_CLI_H

struct config;
struct config_overrides;
struct err;
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

/* ingen workflows [NAME] [--json] (cli_workflows.c) */
int cli_workflows_main(int argc, char **argv);

/*
 * The flows of `cfg` as a worker of that configuration would load them,
 * loaded into this process (cli_workflows.c): for the commands that list
 * or run flows.  Returns a registry (free with registry_free), or NULL
 * with `e` set.
 */
struct registry *cli_flows_load(const struct config *cfg, struct err *e);

/* ingen flow test NAME --prompt TEXT [--replies FILE] [--json] (cli_flow.c) */
int cli_flow_main(int argc, char **argv);

/* ingen init: the scaffold of a project in the working directory (cli_init.c) */
int cli_init_main(int argc, char **argv);

#endif
