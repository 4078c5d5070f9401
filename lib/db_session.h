/*
 * db_session.h -- the PostgreSQL layer, as the command line uses it: one
 * plain connection for migrations (lib/migrate.c) and for bootstrapping
 * the local cluster (lib/localpg.c).  Never on a request path.
 *
 * Errors: 0 / -1 (or NULL) with `e` set: 503 when the server cannot be
 * reached or the connection is lost (the classification of db.h,
 * db_failure_classify), else 500.  Unlike the pool's, these messages carry
 * the server's text: they are for the operator's terminal, not for
 * clients.  They never carry the connection string or a password.
 */
#ifndef INGEN_DB_SESSION_H
#define INGEN_DB_SESSION_H

#include <stddef.h>

#include "lib/err.h"

struct arena;
struct db_session;

/* The connect timeout of a session when the caller gives none, seconds. */
#define DB_SESSION_CONNECT_TIMEOUT 10

/*
 * Open one connection with `conninfo` (a libpq URI or key/value string; ""
 * = the libpq environment and defaults) and connect_timeout seconds (0 =
 * DB_SESSION_CONNECT_TIMEOUT).  Not for the server's request path.  Returns
 * NULL with `e` set (503 when the server cannot be reached).
 */
struct db_session *db_session_open(const char *conninfo, int connect_timeout,
    struct err *e) ING_WUR;

/* Close the session (and release its advisory lock).  NULL is allowed. */
void db_session_close(struct db_session *s);

/* The role the session is connected as (owned by the session). */
const char *db_session_user(const struct db_session *s);

/* One row of schema_migrations. */
struct db_migration {
	int version;
	const char *name;
	const char *checksum;         /* SHA-256, 64 hex digits */
	const char *applied_at;       /* "YYYY-MM-DD HH:MM:SS+00" */
};

/*
 * Prepare the session for migrating: no statement timeout, a lock timeout
 * of 5 minutes, take the advisory lock of the migrator (a second migrator
 * waits here), then create schema_migrations if it does not exist.  Returns
 * 0 or -1.
 */
int db_migrations_lock(struct db_session *s, struct err *e) ING_WUR;

/* The applied migrations, by version (none when schema_migrations does not
 * exist).  Returns 0 or -1. */
int db_migrations_applied(struct db_session *s, struct arena *a,
    struct db_migration **out, size_t *n, struct err *e) ING_WUR;

/*
 * Run one schema file (sql, NUL-terminated, any number of statements but no
 * transaction control) and record it in schema_migrations, in one
 * transaction.  On failure nothing of the file remains and `e` carries the
 * server's message and the line of the file (this is for the operator's
 * terminal, not for clients).  Returns 0 or -1.
 */
int db_migration_apply(struct db_session *s, int version, const char *name,
    const char *checksum, const char *sql, struct err *e) ING_WUR;

/* A login role to create or update, and its password. */
struct db_local_role {
	const char *name;
	const char *password;
};

/* What the local cluster's superuser sets up (lib/localpg.c). */
struct db_local_setup {
	const char *dbname;
	struct db_local_role owner;      /* owns the database and runs migrations */
	struct db_local_role app;
	struct db_local_role readonly;
	struct db_local_role sqlagent;
};

/*
 * As a superuser session: create each role with LOGIN and its password
 * (encrypted with SCRAM-SHA-256 on this side, so the password never reaches
 * the server or its log), or reset the password of an existing one; give
 * the SQL agent role its read-only defaults; create the database owned by
 * the owner role if missing.  Idempotent.  Returns 0 or -1.
 */
int db_local_bootstrap(struct db_session *s, const struct db_local_setup *setup,
    struct err *e) ING_WUR;

#endif
