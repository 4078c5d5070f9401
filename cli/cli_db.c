/*
 * cli_db.c -- `ingen db`: apply and inspect schema migrations, and manage
 * the embedded local cluster.  It prints to the terminal and exits; it
 * never runs inside the server's processes and never prints a password
 * (except `ingen db url`, whose whole purpose is to print one to stdout).
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/dburl.h"
#include "lib/localpg.h"
#include "lib/migrate.h"
#include "lib/xmalloc.h"
#include "cli/cli.h"

#define CLI_DB_EXIT_OK        0
#define CLI_DB_EXIT_FAILURE   1
#define CLI_DB_EXIT_USAGE     2
#define CLI_DB_EXIT_VALIDATE  4   /* pending or changed schema files */

static const char cli_db_usage[] =
"Usage: ingen db COMMAND [OPTIONS]\n"
"\n"
"Commands:\n"
"  migrate      apply the pending schema files, each in one transaction\n"
"  status       list applied, pending, CHANGED (edited after being applied)\n"
"               and MISSING files; exit 4 unless everything is applied\n"
"  init-local [DIR]   create (if needed) and start the private PostgreSQL cluster\n"
"               in DIR, create its roles and database, and migrate it\n"
"  start-local [DIR]  start the private cluster\n"
"  stop-local [DIR]   stop the private cluster\n"
"  url [DIR]    print the connection string of a role of the private cluster\n"
"\n"
"Options:\n"
"  -d, --database-url URL  migrate/status: the database (a libpq URI or key=value\n"
"                          string); default: chat_history.database_url, the libpq\n"
"                          environment (PGHOST ...), or the owner role of the\n"
"                          private cluster in <server.state_dir>/pg\n"
"  -s, --sql-dir DIR       schema files to use instead of the built-in ones\n"
"                          (also $INGEN_SQL_DIR)\n"
"  -r, --role ROLE         url: app (default), owner, readonly or sqlagent\n"
"      --stop              init-local: stop the cluster when done\n"
"  -c, --config FILE       configuration file (for server.state_dir and\n"
"                          chat_history.*)\n"
"  -h, --help              this help\n"
"\n"
"DIR defaults to <server.state_dir>/pg.  The private cluster listens on a unix\n"
"socket in DIR/run only; DIR/database_url holds the server's connection string\n"
"and DIR/credentials every role's (both 0600).  Running as root, PostgreSQL runs\n"
"as the postgres user.  Exit codes: 0 ok, 1 failure, 2 usage or configuration,\n"
"4 schema not up to date (status) or a changed file (migrate).\n";

struct cli_db_opts {
	const char *database_url;
	const char *sql_dir;
	const char *config_file;
	const char *role;
	const char *dir;
	bool stop;
};

/* Load the configuration only when a default is needed from it. */
/* The directory of the local cluster: the argument, else the default. */
static char *
cli_db_dir(const struct cli_db_opts *o)
{
	struct config *cfg;
	struct err e;
	char *dir = NULL;

	if (o->dir != NULL)
		return xstrdup(o->dir);
	cfg = cli_config_load_file(o->config_file);
	if (cfg == NULL)
		return NULL;
	err_clear(&e);
	if (dburl_local_dir(cfg, &dir, &e) < 0)
		fprintf(stderr, "ingen db: %s\n", e.msg);
	config_free(cfg);
	return dir;
}

/* The database to migrate or inspect, and its connect timeout. */
static char *
cli_db_target(const struct cli_db_opts *o, int *connect_timeout,
    const char **source)
{
	struct config *cfg;
	struct err e;
	char *url = NULL;

	*connect_timeout = 10;
	if (o->database_url != NULL) {
		*source = "--database-url";
		return xstrdup(o->database_url);
	}
	cfg = cli_config_load_file(o->config_file);
	if (cfg == NULL)
		return NULL;
	if (cfg->chat_history.connect_timeout > 0)
		*connect_timeout = cfg->chat_history.connect_timeout;
	err_clear(&e);
	if (dburl_resolve(cfg, DBURL_ROLE_OWNER, &url, source, &e) < 0)
		fprintf(stderr, "ingen db: %s\n", e.msg);
	config_free(cfg);
	return url;
}

static void
cli_db_wipe(char *s)
{
	if (s != NULL) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

static void
cli_db_progress(void *arg, const struct migrate_entry *en)
{
	(void)arg;
	printf("applied %s\n", en->name);
	fflush(stdout);
}

static int
cli_db_migrate(const struct cli_db_opts *o)
{
	struct migrate_plan plan;
	struct arena *a;
	struct err e;
	const char *source = "";
	char *url;
	int ct, n, rc;

	url = cli_db_target(o, &ct, &source);
	if (url == NULL)
		return CLI_DB_EXIT_USAGE;
	a = arena_create(0);
	err_clear(&e);
	memset(&plan, 0, sizeof(plan));
	n = migrate_apply(url, ct, o->sql_dir, a, &plan, cli_db_progress, NULL, &e);
	cli_db_wipe(url);
	if (n < 0) {
		fprintf(stderr, "ingen db migrate: %s\n", e.msg);
		rc = e.status == 409 ? CLI_DB_EXIT_VALIDATE : CLI_DB_EXIT_FAILURE;
	} else {
		if (n == 0)
			printf("nothing to do: schema at version %d (%zu file%s applied, "
			    "database from %s)\n", plan.db_version, plan.n_applied,
			    plan.n_applied == 1 ? "" : "s", source);
		else
			printf("%d file%s applied as %s: schema at version %d\n", n,
			    n == 1 ? "" : "s", plan.db_user,
			    plan.files_version > plan.db_version ?
			    plan.files_version : plan.db_version);
		if (plan.n_missing > 0)
			printf("warning: the database has %zu migration%s this binary "
			    "does not know\n", plan.n_missing,
			    plan.n_missing == 1 ? "" : "s");
		rc = CLI_DB_EXIT_OK;
	}
	arena_destroy(a);
	return rc;
}

static int
cli_db_status(const struct cli_db_opts *o)
{
	struct migrate_plan plan;
	const struct migrate_entry *en;
	struct arena *a;
	struct err e;
	const char *source = "";
	char *url;
	int ct, rc;
	size_t k;

	url = cli_db_target(o, &ct, &source);
	if (url == NULL)
		return CLI_DB_EXIT_USAGE;
	a = arena_create(0);
	err_clear(&e);
	rc = migrate_status(url, ct, o->sql_dir, a, &plan, &e);
	cli_db_wipe(url);
	if (rc < 0) {
		fprintf(stderr, "ingen db status: %s\n", e.msg);
		arena_destroy(a);
		return CLI_DB_EXIT_FAILURE;
	}
	printf("database: %s (connected as %s)\nschema files: %s\n", source,
	    plan.db_user, plan.source);
	for (k = 0; k < plan.n; k++) {
		en = &plan.entries[k];
		printf("  %-28s %s", en->name, migrate_state_name(en->state));
		if (en->state != MIGRATE_PENDING)
			printf("%*s", 8 - (int)strlen(migrate_state_name(en->state)), "");
		switch (en->state) {
		case MIGRATE_APPLIED:
			printf(" %s UTC", en->applied_at);
			break;
		case MIGRATE_CHANGED:
			printf(" applied %s UTC with sha256 %.12s..., file now %.12s...",
			    en->applied_at, en->db_checksum, en->file_checksum);
			break;
		case MIGRATE_MISSING:
			printf(" applied %s UTC, no such file here", en->applied_at);
			break;
		case MIGRATE_PENDING:
			break;
		}
		printf("\n");
	}
	printf("version %d of %d: %zu applied, %zu pending, %zu changed, %zu missing\n",
	    plan.db_version, plan.files_version, plan.n_applied, plan.n_pending,
	    plan.n_changed, plan.n_missing);
	if (plan.n_pending > 0)
		printf("run `ingen db migrate` to apply the pending files\n");
	if (plan.n_changed > 0)
		printf("a CHANGED file was edited after it was applied: restore it "
		    "and put the change in a new numbered file\n");
	rc = plan.n_pending > 0 || plan.n_changed > 0 ? CLI_DB_EXIT_VALIDATE :
	    CLI_DB_EXIT_OK;
	arena_destroy(a);
	return rc;
}

static int
cli_db_local(const char *cmd, const struct cli_db_opts *o)
{
	struct err e;
	char *dir, *url;
	int rc = CLI_DB_EXIT_OK;

	dir = cli_db_dir(o);
	if (dir == NULL)
		return CLI_DB_EXIT_USAGE;
	err_clear(&e);
	if (strcmp(cmd, "init-local") == 0) {
		if (localpg_init(dir, o->sql_dir, &e) < 0)
			goto fail;
		printf("local PostgreSQL cluster ready in %s\n"
		    "  socket directory: %s/run (no TCP)\n"
		    "  server connection string: %s/database_url\n"
		    "  all roles: %s/credentials\n"
		    "  `ingen serve` with server.state_dir set to its parent uses it "
		    "when no database is configured\n", dir, dir, dir, dir);
		if (o->stop) {
			if (localpg_stop(dir, &e) < 0)
				goto fail;
			printf("stopped\n");
		}
	} else if (strcmp(cmd, "start-local") == 0) {
		if (localpg_start(dir, &e) < 0)
			goto fail;
		printf("local PostgreSQL cluster running in %s\n", dir);
	} else if (strcmp(cmd, "stop-local") == 0) {
		if (localpg_stop(dir, &e) < 0)
			goto fail;
		printf("local PostgreSQL cluster in %s stopped\n", dir);
	} else {     /* url */
		enum dburl_role role = DBURL_ROLE_APP;

		if (o->role == NULL || strcmp(o->role, "app") == 0)
			role = DBURL_ROLE_APP;
		else if (strcmp(o->role, "owner") == 0)
			role = DBURL_ROLE_OWNER;
		else if (strcmp(o->role, "readonly") == 0)
			role = DBURL_ROLE_READONLY;
		else if (strcmp(o->role, "sqlagent") == 0)
			role = DBURL_ROLE_SQLAGENT;
		else {
			fprintf(stderr, "ingen db url: unknown role \"%s\" (app, owner, "
			    "readonly, sqlagent)\n", o->role);
			free(dir);
			return CLI_DB_EXIT_USAGE;
		}
		if (dburl_local(dir, role, &url, &e) < 0)
			goto fail;
		printf("%s\n", url);
		cli_db_wipe(url);
	}
	free(dir);
	return rc;
fail:
	fprintf(stderr, "ingen db %s: %s\n", cmd, e.msg);
	free(dir);
	return CLI_DB_EXIT_FAILURE;
}

int
cli_db_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "database-url", required_argument, NULL, 'd' },
		{ "sql-dir", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "role", required_argument, NULL, 'r' },
		{ "stop", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_db_opts o;
	const char *cmd;
	int c;

	memset(&o, 0, sizeof(o));
	if (argc < 2) {
		fputs(cli_db_usage, stderr);
		return CLI_DB_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(cli_db_usage, stdout);
		return CLI_DB_EXIT_OK;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "d:s:c:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.database_url = optarg;
			break;
		case 's':
			o.sql_dir = optarg;
			break;
		case 'c':
			o.config_file = optarg;
			break;
		case 'r':
			o.role = optarg;
			break;
		case 'S':
			o.stop = true;
			break;
		case 'h':
			fputs(cli_db_usage, stdout);
			return CLI_DB_EXIT_OK;
		default:
			return CLI_DB_EXIT_USAGE;
		}
	}
	if (optind < argc - 1)
		o.dir = argv[1 + optind++];
	if (optind < argc - 1) {
		fprintf(stderr, "ingen db %s: unexpected argument \"%s\"\n", cmd,
		    argv[1 + optind]);
		return CLI_DB_EXIT_USAGE;
	}

	if (strcmp(cmd, "migrate") == 0 || strcmp(cmd, "status") == 0) {
		if (o.dir != NULL) {
			fprintf(stderr, "ingen db %s: unexpected argument \"%s\"\n",
			    cmd, o.dir);
			return CLI_DB_EXIT_USAGE;
		}
		return strcmp(cmd, "migrate") == 0 ? cli_db_migrate(&o) :
		    cli_db_status(&o);
	}
	if (strcmp(cmd, "init-local") == 0 || strcmp(cmd, "start-local") == 0 ||
	    strcmp(cmd, "stop-local") == 0 || strcmp(cmd, "url") == 0)
		return cli_db_local(cmd, &o);
	fprintf(stderr, "ingen db: unknown command \"%s\"\n\n%s", cmd, cli_db_usage);
	return CLI_DB_EXIT_USAGE;
}
