/*
 * cli.h -- the subcommands of `ingen` other than `serve`.  Each takes the
 * arguments after its own name (argv[0] is the subcommand name), prints its
 * own usage on -h/--help, and returns the process exit code:
 * 0 ok, 1 general failure, 2 invalid configuration or usage, 4 validation.
 * None of them may run inside the server processes.
 */
#ifndef INGEN_CLI_H
#define INGEN_CLI_H

/* ingen db migrate|status|init-local|start-local|stop-local ... (cli_db.c) */
int cli_db_main(int argc, char **argv);

/* ingen user add|list|passwd|disable ... (cli_user.c) */
int cli_user_main(int argc, char **argv);

#endif
