/*
 * localpg.h -- the embedded default database: a private PostgreSQL cluster
 * under a directory of the project, reachable only through a unix socket.
 *
 * Layout of DIR (created by localpg_init):
 *   DIR/data/          the cluster (initdb), owned by the cluster's OS user
 *   DIR/run/           the unix socket and its lock file (no TCP at all)
 *   DIR/log/           postgresql.log and initdb.log
 *   DIR/credentials    0600: generated passwords and the URL of every role
 *   DIR/database_url   0600: the application role's connection string
 *
 * PostgreSQL refuses to run as root: when the caller's euid is 0 the
 * cluster's programs run as the `postgres` OS user (or $INGEN_PG_USER) in a
 * forked child that drops privileges; DIR itself stays the caller's.  The
 * server binaries are found in $INGEN_PG_BINDIR, else `pg_config --bindir`,
 * else /usr/lib/postgresql/15/bin.  Used by `ingen db init-local|start-
 * local|stop-local`, the quick start and the test harness (one code path).
 * Never used by a worker except through localpg_resolve_url (a file read).
 */
#ifndef INGEN_LOCALPG_H
#define INGEN_LOCALPG_H

#include <stdbool.h>

#include "lib/err.h"

struct config;

/* The roles of the local cluster (sql/002_roles.sql). */
enum localpg_role {
	LOCALPG_ROLE_APP = 0,       /* ingenious_app: the server */
	LOCALPG_ROLE_OWNER,         /* ingenious_owner: owns the schema, migrates */
	LOCALPG_ROLE_READONLY,      /* ingenious_readonly: DBAs, BI */
	LOCALPG_ROLE_SQLAGENT,      /* ingenious_sqlagent: the SQL agent */
	LOCALPG_ROLE_SUPERUSER,     /* postgres: bootstrap only */
};

enum localpg_state {
	LOCALPG_ABSENT = 0,         /* DIR holds no cluster */
	LOCALPG_STOPPED,
	LOCALPG_RUNNING,
};

/* The database the local cluster serves. */
#define LOCALPG_DBNAME "ingenious"

/*
 * Create the cluster in dir if it does not exist (initdb with SCRAM
 * authentication on the unix socket only, generated passwords), start it
 * if it is stopped, create or update the roles and the database, and apply
 * pending migrations from sql_dir (NULL = the schema built into the
 * binary).  Idempotent: on an existing cluster it only starts and migrates.
 * Progress goes to the log at info level.  Returns 0 or -1 with `e` set.
 * Command line only.
 */
int localpg_init(const char *dir, const char *sql_dir, struct err *e) ING_WUR;

/* Start the cluster in dir (no-op when running); waits until it accepts
 * connections (30 s at most).  Returns 0 or -1. */
int localpg_start(const char *dir, struct err *e) ING_WUR;

/* Stop the cluster in dir (fast shutdown; no-op when stopped).  Returns 0 or -1. */
int localpg_stop(const char *dir, struct err *e) ING_WUR;

/* State of the cluster in dir.  Returns the state, or -1 with `e` set. */
int localpg_status(const char *dir, struct err *e) ING_WUR;

/*
 * The connection string of `role` for the cluster in dir, from
 * DIR/credentials, into *out (heap, the caller frees; it holds a password:
 * never log it).  Returns 0, or -1 when dir holds no initialized cluster.
 */
int localpg_url(const char *dir, enum localpg_role role, char **out,
    struct err *e) ING_WUR;

/*
 * The default directory of the local cluster, <server.state_dir>/pg, into
 * *out (heap).  Returns 0, or -1 when state_dir is not set.
 */
int localpg_default_dir(const struct config *cfg, char **out, struct err *e) ING_WUR;

/*
 * The application's URL of the local cluster in <server.state_dir>/pg into
 * *out (heap), or *out = NULL when there is no cluster there.  Returns 0, or
 * -1 when the cluster exists but its database_url cannot be read.
 */
int localpg_default_url(const struct config *cfg, char **out, struct err *e) ING_WUR;

/*
 * Where `role` (LOCALPG_ROLE_APP for the server, LOCALPG_ROLE_OWNER for
 * migrations) connects, in this order: chat_history.database_url (also
 * INGENIOUS_CHAT_HISTORY__DATABASE_URL), else the libpq environment (PGHOST,
 * PGHOSTADDR, PGPORT, PGDATABASE or PGSERVICE set: *out = ""), else the
 * local cluster <state_dir>/pg, else libpq's defaults (*out = "").  *out is
 * heap (the caller frees; may hold a password), *source a static
 * description for logs.  Returns 0 or -1.  Any process; reads one file.
 */
int localpg_resolve_url(const struct config *cfg, enum localpg_role role,
    char **out, const char **source, struct err *e) ING_WUR;

#endif
