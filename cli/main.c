/*
 * main.c -- the `ingen` command line.  It parses the command, loads and
 * validates the configuration, and hands over to the master (serve) or to a
 * cli_* module.  It never serves a request itself.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flows/registry.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/dburl.h"
#include "lib/log.h"
#include "lib/migrate.h"
#include "lib/proc.h"
#include "cli/cli.h"
#include "master/master.h"
#include "master/memtune.h"

static const char main_usage[] =
"Usage: ingen COMMAND [OPTIONS]\n"
"\n"
"Ingenious in C: a pre-fork server for AI agent APIs.\n"
"\n"
"Commands:\n"
"  serve       run the HTTP server (master and workers) in the foreground\n"
"  validate    load the configuration from every source and report every problem,\n"
"              then check the database (reachable, schema current), each model's\n"
"              endpoint and the port, one line each (--config-only: skip them)\n"
"  status      is a server running: pid, address, uptime, generation, workers,\n"
"              requests, tokens, database (see ingen status --help)\n"
"  reload      SIGHUP a running server and wait for the new generation\n"
"  stop        stop a running server (SIGTERM, drained; --now: SIGQUIT) and wait\n"
"  db          manage the PostgreSQL schema and the embedded local cluster\n"
"              (ingen db migrate|status|init-local|start-local|stop-local; see ingen db --help)\n"
"  user        manage the users who may log in besides the configured one\n"
"              (ingen user add|passwd|list|disable|enable NAME; see ingen user --help)\n"
"  kb          the local knowledge base: add .md/.txt files and directories, list,\n"
"              remove, search (ingen kb add|list|remove|search; see ingen kb --help)\n"
"  init        create a project in the working directory (configuration, a task\n"
"              manager flow in C with its Makefile and test, the same flow as a\n"
"              flow file, prompt templates, sample data, README); never\n"
"              overwrites a file\n"
"  workflows   list the flows with what they need and a curl that works\n"
"              (ingen workflows [NAME] [--json]; see ingen workflows --help)\n"
"  flow test   run one flow in this process against scripted model replies or\n"
"              the configured model, no server or database (ingen flow test NAME\n"
"              --prompt TEXT [--replies FILE] [--json]; see ingen flow --help)\n"
"  version     print the version\n"
"  help        print this help\n"
"\n"
"Options of serve and validate:\n"
"  -c, --config FILE   configuration file (default: $INGENIOUS_CONFIG, ./ingenious.conf,\n"
"                      /etc/ingenious/ingenious.conf)\n"
"  -H, --host ADDR     listen address (web_configuration.ip_address)\n"
"  -p, --port PORT     listen port (web_configuration.port)\n"
"  -w, --workers N     worker processes (server.workers; 0 = number of CPUs)\n"
"      --pidfile FILE  write the master's pid here (server.pidfile)\n"
"      --foreground    stay in the foreground (the default; for systemd Type=notify)\n"
"      --migrate       serve: apply pending schema files before starting\n"
"\n"
"Signals to the master: SIGHUP reload, SIGTERM/SIGINT graceful stop (twice: now),\n"
"SIGQUIT immediate stop, SIGUSR1 reopen log files.\n"
"Exit codes: 0 ok, 1 failure (or a worker's fatal exit), 2 invalid configuration or usage,\n"
"3 no server running (status, reload, stop), 4 a check failed (validate, db status).\n";

static bool main_migrate;   /* serve --migrate */

static int
main_parse_server_options(int argc, char **argv, struct config_overrides *ov)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "migrate", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	memset(ov, 0, sizeof(*ov));
	ov->port = -1;
	ov->workers = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:H:p:w:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ov->config_file = optarg;
			break;
		case 'H':
			ov->host = optarg;
			break;
		case 'p':
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 1 || v > 65535) {
				fprintf(stderr, "ingen: --port: invalid port \"%s\" (1-65535)\n", optarg);
				return -1;
			}
			ov->port = (int)v;
			break;
		case 'w':
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 0 || v > 1024) {
				fprintf(stderr, "ingen: --workers: invalid count \"%s\" (0-1024)\n", optarg);
				return -1;
			}
			ov->workers = (int)v;
			break;
		case 'P':
			ov->pidfile = optarg;
			break;
		case 'f':
			break;
		case 'M':
			main_migrate = true;
			break;
		case 'h':
			fputs(main_usage, stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ingen: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	return 0;
}

static int
main_configure_logging(const struct config *cfg)
{
	struct err e;
	int fmt = log_format_parse(cfg->logging.format);
	int lvl = log_level_parse(cfg->logging.log_level);

	err_clear(&e);
	if (log_configure(fmt < 0 ? LOG_FORMAT_LOGFMT : (enum log_format)fmt,
	    lvl < 0 ? LOG_LEVEL_INFO : (enum log_level)lvl, cfg->logging.file,
	    &e) != 0) {
		fprintf(stderr, "ingen: %s\n", e.msg);
		return -1;
	}
	return 0;
}

#define MAIN_SCHEMA_OK      0
#define MAIN_SCHEMA_FAIL    1
#define MAIN_SCHEMA_NO_DB   3

/*
 * Is the database's schema what this binary needs (or, with --migrate,
 * bring it there)?  Runs in a short-lived child so the master never holds a
 * libpq handle (DESIGN section 1).  An unreachable database is not fatal:
 * the server starts and stays not ready until the database appears.
 */
static int
main_schema_check(const struct config *cfg, bool migrate)
{
	const char *sql_dir = getenv("INGEN_SQL_DIR"), *source = NULL;
	struct arena *a;
	struct err e;
	char *url = NULL;
	pid_t pid;
	int status, n;

	pid = fork();
	if (pid < 0) {
		log_error("checking the schema", "could not fork: %s", strerror(errno));
		return MAIN_SCHEMA_FAIL;
	}
	if (pid > 0) {
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
			return MAIN_SCHEMA_FAIL;
		return WEXITSTATUS(status);
	}
	err_clear(&e);
	if (dburl_resolve(cfg, migrate ? DBURL_ROLE_OWNER : DBURL_ROLE_APP,
	    &url, &source, &e) != 0) {
		log_error("checking the schema", "%s", e.msg);
		_exit(MAIN_SCHEMA_FAIL);
	}
	if (migrate) {
		a = arena_create(0);
		n = migrate_apply(url, cfg->chat_history.connect_timeout, sql_dir, a,
		    NULL, NULL, NULL, &e);
		if (n < 0) {
			log_error("migrating", "could not migrate the database (%s): %s",
			    source, e.msg);
			_exit(e.status == 503 ? MAIN_SCHEMA_NO_DB : MAIN_SCHEMA_FAIL);
		}
		log_info("migrating", "applied %d schema file(s) to the database (%s)",
		    n, source);
	}
	if (migrate_check(url, cfg->chat_history.connect_timeout, sql_dir, &e) != 0) {
		if (e.status == 503 && strcmp(source, "libpq defaults") == 0) {
			log_error("checking the schema", "no chat-history database is "
			    "configured: none of chat_history.database_url "
			    "(INGENIOUS_CHAT_HISTORY__DATABASE_URL), the PG* environment "
			    "or a local cluster in %s/pg, and libpq's defaults do not "
			    "answer (%s); run `ingen db init-local` (./quickstart.sh "
			    "does) or set the URL; serving, chats answer 503 until a "
			    "database answers", cfg->server.state_dir, e.msg);
			_exit(MAIN_SCHEMA_NO_DB);
		}
		if (e.status == 503) {
			log_warn("checking the schema", "database unavailable at start (%s): %s; "
			    "serving, not ready until it answers", source, e.msg);
			_exit(MAIN_SCHEMA_NO_DB);
		}
		log_error("checking the schema", "%s", e.msg);
		_exit(MAIN_SCHEMA_FAIL);
	}
	_exit(MAIN_SCHEMA_OK);
}

/* the program's own argv, for memtune_apply's re-execution */
static char **main_argv;

static int
main_serve(int argc, char **argv)
{
	static struct config_overrides ov;   /* lives as long as the master */
	struct config *cfg;

	if (main_parse_server_options(argc, argv, &ov) != 0)
		return PROC_EXIT_CONFIG;
	if ((cfg = cli_config_load(&ov)) == NULL)
		return PROC_EXIT_CONFIG;
	/* before any descriptor is opened: may execute the program again */
	memtune_apply(cfg->server.malloc_thread_cache, main_argv);
	if (main_configure_logging(cfg) != 0) {
		config_free(cfg);
		return PROC_EXIT_CONFIG;
	}
	if (memtune_active())
		log_debug("starting", "glibc's per-thread malloc cache is off "
		    "(server.malloc_thread_cache)");
	if (main_schema_check(cfg, main_migrate) == MAIN_SCHEMA_FAIL) {
		config_free(cfg);
		return PROC_EXIT_MASTER_FATAL;
	}
	return master_run(cfg, &ov);
}

/* The flows the server would load: every problem and warning printed, as
 * the configuration's are.  The plugins are checked in a child process. */
static int
main_validate_flows(const struct config *cfg)
{
	const struct registry_report *r;
	struct registry *reg;
	struct err e;
	size_t i;

	err_clear(&e);
	reg = registry_build(cfg, &e);
	r = registry_last_report();
	for (i = 0; i < r->n_problems; i++)
		fprintf(stderr, "ingen: %s\n", r->problems[i]);
	for (i = 0; i < r->n_warnings; i++)
		fprintf(stderr, "ingen: warning: %s\n", r->warnings[i]);
	if (reg == NULL)
		return -1;
	printf("%-5s flows:", "ok");
	for (i = 0; i < registry_info_count(reg); i++) {
		const struct registry_info *in = registry_info_at(reg, i);

		printf("%s %s (%s%s)", i ? "," : "", in->name,
		    in->file != NULL ? in->file : "built-in",
		    in->disabled ? ", disabled" : "");
	}
	printf("\n");
	registry_free(reg);
	return 0;
}

static int
main_validate(int argc, char **argv)
{
	struct config_overrides ov;
	struct config *cfg;
	bool config_only = false;
	int i, j, rc;

	/* validate's own option, taken out before the options of serve */
	for (i = j = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config-only") == 0)
			config_only = true;
		else
			argv[j++] = argv[i];
	}
	argc = j;
	argv[argc] = NULL;
	if (main_parse_server_options(argc, argv, &ov) != 0)
		return PROC_EXIT_CONFIG;
	if ((cfg = cli_config_load(&ov)) == NULL)
		return PROC_EXIT_CONFIG;
	if (main_validate_flows(cfg) != 0) {
		config_free(cfg);
		return PROC_EXIT_CONFIG;
	}
	printf("%-5s configuration: %s\n", "ok", cfg->source_file != NULL ?
	    cfg->source_file : "no file (the defaults and the environment)");
	printf("configuration is valid\n");
	rc = config_only ? 0 : cli_validate_checks(cfg);
	config_free(cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd;

	main_argv = argv;
	log_set_role("cli");
	if (argc < 2) {
		fputs(main_usage, stderr);
		return PROC_EXIT_CONFIG;
	}
	cmd = argv[1];
	if (strcmp(cmd, "serve") == 0)
		return main_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "validate") == 0)
		return main_validate(argc - 1, argv + 1);
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "reload") == 0 ||
	    strcmp(cmd, "stop") == 0)
		return cli_ops_main(argc - 1, argv + 1);
	if (strcmp(cmd, "db") == 0)
		return cli_db_main(argc - 1, argv + 1);
	if (strcmp(cmd, "user") == 0)
		return cli_user_main(argc - 1, argv + 1);
	if (strcmp(cmd, "kb") == 0)
		return cli_kb_main(argc - 1, argv + 1);
	/* and the reference's hidden aliases */
	if (strcmp(cmd, "init") == 0 || strcmp(cmd, "initialize-new-project") == 0)
		return cli_init_main(argc - 1, argv + 1);
	if (strcmp(cmd, "workflows") == 0 || strcmp(cmd, "workflow-requirements") == 0)
		return cli_workflows_main(argc - 1, argv + 1);
	if (strcmp(cmd, "flow") == 0)
		return cli_flow_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("ingen %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		fputs(main_usage, stdout);
		return 0;
	}
	fprintf(stderr, "ingen: unknown command \"%s\"\n\n%s", cmd, main_usage);
	return PROC_EXIT_CONFIG;
}
