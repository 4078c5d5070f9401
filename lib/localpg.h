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
 * Never used by a worker: a process finds the cluster's connection strings
 * through lib/dburl.h, which reads the files above.
 */
#ifndef INGEN_LOCALPG_H
#define INGEN_LOCALPG_H

#include "lib/err.h"

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

#endif
