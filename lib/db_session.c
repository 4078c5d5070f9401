/*
 * db_session.c -- the command line's connections: one plain session for
 * migrations and for bootstrapping the local cluster's roles and database.
 *
 * It owns the SQL of schema_migrations, the migrator's advisory lock and
 * the role bootstrap.  It never serves a request; its error messages carry
 * the server's text for the operator's terminal, but never the connection
 * string or a password (a role's password is encrypted here, before any
 * statement carries it).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/db_int.h"
#include "lib/db_session.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* pg_advisory_lock key of the migrator: "ingenmig" as a big-endian int64 */
#define DB_MIGRATE_LOCK_KEY     "7668124883017247079"
#define DB_SESSION_APPLICATION  "ingen-cli"

/* Server notices (RAISE NOTICE in a migration, REVOKE warnings) go to the
 * log rather than to stderr raw. */
static void
db_session_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	if (sev != NULL && strcmp(sev, "WARNING") == 0)
		log_warn("while migrating", "server: %s", msg != NULL ? msg : "");
	else
		log_info("while migrating", "server: %s", msg != NULL ? msg : "");
}

struct db_session *
db_session_open(const char *conninfo, int connect_timeout, struct err *e)
{
	const char *keys[] = { "application_name", "dbname", "connect_timeout", NULL };
	const char *vals[] = { DB_SESSION_APPLICATION, conninfo != NULL ? conninfo : "",
	    NULL, NULL };
	struct db_session *s;
	PQconninfoOption *opts;
	char ct[DB_INT_TEXT], line[DB_LINE_MAX];
	char *perr = NULL;
	PGconn *pg;

	if (conninfo != NULL && conninfo[0] != '\0') {
		opts = PQconninfoParse(conninfo, &perr);
		if (opts == NULL) {
			if (perr != NULL)
				PQfreemem(perr);
			return err_set(e, 500, "could not parse the database connection "
			    "string: not a valid libpq URI or key=value string"), NULL;
		}
		PQconninfoFree(opts);
	}
	snprintf(ct, sizeof(ct), "%d", connect_timeout > 0 ? connect_timeout :
	    DB_SESSION_CONNECT_TIMEOUT);
	vals[2] = ct;
	pg = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(pg) != CONNECTION_OK) {
		err_set(e, 503, "could not connect to the database: %s",
		    db_first_line(PQerrorMessage(pg), line, sizeof(line)));
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeReceiver(pg, db_session_notice, NULL);
	s = xcalloc(1, sizeof(*s));
	s->pg = pg;
	s->user = xstrdup(PQuser(pg));
	return s;
}

void
db_session_close(struct db_session *s)
{
	if (s == NULL)
		return;
	PQfinish(s->pg);
	free(s->user);
	free(s);
}

const char *
db_session_user(const struct db_session *s)
{
	return s->user;
}

/* 503 when a failed result means the database is unavailable (lost
 * connection, shutdown, no SQLSTATE: db_failure_classify), else 500.  A
 * busy database is a 500 here: a migration is not retried by a client. */
static int
db_session_status(const struct db_session *s, const PGresult *res)
{
	return db_failure_of(res, s->pg) == DB_FAILURE_UNAVAILABLE ? 503 : 500;
}

/* Run one command; on failure `e` gets "could not <what>: <server message>"
 * (the operator's terminal, not a client). */
static int
db_session_exec(struct db_session *s, const char *sql, const char *what,
    struct err *e)
{
	PGresult *res = PQexec(s->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	char line[DB_LINE_MAX];

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err_set(e, db_session_status(s, res),
		    "could not %s: %s", what,
		    db_first_line(PQresultErrorMessage(res), line, sizeof(line)));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

static const char db_migrations_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations (\n"
	"  version integer PRIMARY KEY CHECK (version > 0),\n"
	"  name text NOT NULL,\n"
	"  checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),\n"
	"  applied_at timestamptz NOT NULL DEFAULT now(),\n"
	"  applied_by text NOT NULL DEFAULT current_user\n"
	");\n"
	"COMMENT ON TABLE schema_migrations IS 'Schema files of sql/ applied "
	"by ingen db migrate, one row per file, each applied in one "
	"transaction.';\n"
	"COMMENT ON COLUMN schema_migrations.version IS 'Number of the file "
	"(NNN of NNN_name.sql).';\n"
	"COMMENT ON COLUMN schema_migrations.name IS 'File name.';\n"
	"COMMENT ON COLUMN schema_migrations.checksum IS 'SHA-256 of the file "
	"as applied; ingen db status flags a file that changed since.';\n"
	"COMMENT ON COLUMN schema_migrations.applied_at IS 'When it was "
	"committed.';\n"
	"COMMENT ON COLUMN schema_migrations.applied_by IS 'Role that applied "
	"it.';\n";

int
db_migrations_lock(struct db_session *s, struct err *e)
{
	PGresult *res;
	bool exists;

	if (db_session_exec(s, "SET statement_timeout = 0", "set the statement "
	    "timeout", e) < 0 ||
	    db_session_exec(s, "SET lock_timeout = '5min'", "set the lock "
	    "timeout", e) < 0 ||
	    db_session_exec(s, "SELECT pg_advisory_lock(" DB_MIGRATE_LOCK_KEY ")",
	    "take the migration lock", e) < 0)
		return -1;
	res = PQexec(s->pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		return err_set(e, 503, "could not read the catalog");
	}
	exists = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (exists)
		return 0;
	if (db_session_exec(s, "BEGIN", "start a transaction", e) < 0)
		return -1;
	if (db_session_exec(s, db_migrations_table, "create schema_migrations",
	    e) < 0) {
		PQclear(PQexec(s->pg, "ROLLBACK"));
		return -1;
	}
	return db_session_exec(s, "COMMIT", "create schema_migrations", e);
}

int
db_migrations_applied(struct db_session *s, struct arena *a,
    struct db_migration **out, size_t *n, struct err *e)
{
	PGresult *res;
	char line[DB_LINE_MAX];
	int r, rows;

	*out = NULL;
	*n = 0;
	res = PQexec(s->pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err_set(e, 503, "could not read the catalog: %s",
		    db_first_line(PQresultErrorMessage(res), line, sizeof(line)));
		PQclear(res);
		return -1;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = PQexec(s->pg, "SELECT version, name, checksum,"
	    " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
	    " FROM schema_migrations ORDER BY version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err_set(e, db_session_status(s, res),
		    "could not read schema_migrations: %s",
		    db_first_line(PQresultErrorMessage(res), line, sizeof(line)));
		PQclear(res);
		return -1;
	}
	rows = PQntuples(res);
	*out = arena_zalloc(a, (size_t)(rows > 0 ? rows : 1) * sizeof(**out));
	for (r = 0; r < rows; r++) {
		(*out)[r].version = atoi(PQgetvalue(res, r, 0));
		(*out)[r].name = db_val(res, r, 1, a);
		(*out)[r].checksum = db_val(res, r, 2, a);
		(*out)[r].applied_at = db_val(res, r, 3, a);
	}
	*n = (size_t)rows;
	PQclear(res);
	return 0;
}

/* 1-based line of the character `pos` (1-based, in characters) of sql. */
static int
db_line_of(const char *sql, long pos)
{
	const unsigned char *q = (const unsigned char *)sql;
	long chars = 0;
	int line = 1;

	for (; *q != '\0'; q++) {
		if ((*q & 0xC0) == 0x80)
			continue;     /* a UTF-8 continuation byte */
		if (++chars >= pos)
			break;
		if (*q == '\n')
			line++;
	}
	return line;
}

int
db_migration_apply(struct db_session *s, int version, const char *name,
    const char *checksum, const char *sql, struct err *e)
{
	PGresult *res;
	const char *v[3];
	const char *pos, *hint, *ctx;
	char ver[DB_INT_TEXT], line[DB_LINE_MAX], where[64];
	ExecStatusType st;

	if (db_session_exec(s, "BEGIN", "start a transaction", e) < 0)
		return -1;
	res = PQexec(s->pg, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
	    st != PGRES_EMPTY_QUERY) {
		pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
		hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
		where[0] = '\0';
		if (pos != NULL)
			snprintf(where, sizeof(where), " at line %d",
			    db_line_of(sql, atol(pos)));
		err_set(e, db_session_status(s, res),
		    "could not apply %s%s: %s%s%s%s%s", name, where,
		    db_first_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
		    line, sizeof(line)),
		    hint != NULL ? " (hint: " : "", hint != NULL ? hint : "",
		    hint != NULL ? ")" : "",
		    ctx != NULL && pos == NULL ? " in a DO block or function" : "");
		PQclear(res);
		PQclear(PQexec(s->pg, "ROLLBACK"));
		return -1;
	}
	PQclear(res);
	snprintf(ver, sizeof(ver), "%d", version);
	v[0] = ver;
	v[1] = name;
	v[2] = checksum;
	res = PQexecParams(s->pg, "INSERT INTO schema_migrations (version, name,"
	    " checksum) VALUES ($1::integer, $2, $3)", 3, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		err_set(e, db_session_status(s, res), "could not record %s in "
		    "schema_migrations: %s", name,
		    db_first_line(PQresultErrorMessage(res), line, sizeof(line)));
		PQclear(res);
		PQclear(PQexec(s->pg, "ROLLBACK"));
		return -1;
	}
	PQclear(res);
	return db_session_exec(s, "COMMIT", "commit the migration", e);
}

/* Create or update one login role with a password encrypted here. */
static int
db_local_role(struct db_session *s, const struct db_local_role *r,
    const char *const *extras, struct err *e)
{
	PGresult *res;
	const char *v[1] = { r->name };
	char *ident = NULL, *lit = NULL, *verifier = NULL, *sql = NULL;
	bool exists;
	int rc = -1;
	size_t i;

	res = PQexecParams(s->pg, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
	    1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err_set(e, db_session_status(s, res), "could not read pg_roles");
		PQclear(res);
		return -1;
	}
	exists = PQntuples(res) == 1;
	PQclear(res);

	verifier = PQencryptPasswordConn(s->pg, r->password, r->name, "scram-sha-256");
	if (verifier == NULL) {
		err_set(e, 500, "could not encrypt the password of role %s", r->name);
		goto out;
	}
	ident = PQescapeIdentifier(s->pg, r->name, strlen(r->name));
	lit = PQescapeLiteral(s->pg, verifier, strlen(verifier));
	if (ident == NULL || lit == NULL) {
		err_set(e, 500, "could not quote role %s", r->name);
		goto out;
	}
	sql = xasprintf("%s ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
	    "PASSWORD %s", exists ? "ALTER" : "CREATE", ident, lit);
	if (db_session_exec(s, sql, "create a role", e) < 0)
		goto out;
	memset(sql, 0, strlen(sql));
	for (i = 0; extras != NULL && extras[i] != NULL; i++) {
		free(sql);
		sql = xasprintf("ALTER ROLE %s %s", ident, extras[i]);
		if (db_session_exec(s, sql, "configure a role", e) < 0)
			goto out;
	}
	rc = 0;
out:
	if (sql != NULL) {
		memset(sql, 0, strlen(sql));
		free(sql);
	}
	if (lit != NULL)
		PQfreemem(lit);
	if (ident != NULL)
		PQfreemem(ident);
	if (verifier != NULL)
		PQfreemem(verifier);
	return rc;
}

int
db_local_bootstrap(struct db_session *s, const struct db_local_setup *setup,
    struct err *e)
{
	/* what sql/002_roles.sql would set if it could alter roles */
	static const char *const agent[] = {
		"SET default_transaction_read_only = on",
		"SET statement_timeout = '5s'",
		"SET search_path = agent_data",
		/* a superuser's setting: the role carries the SQL agent's
		 * default (sql_agent.temp_file_limit, lib/db_sqlagent.c) */
		"SET temp_file_limit = '16MB'",
		NULL
	};
	const char *v[1] = { setup->dbname };
	char *db = NULL, *owner = NULL, *sql = NULL;
	PGresult *res;
	bool exists;
	int rc = -1;

	if (db_local_role(s, &setup->owner, NULL, e) < 0 ||
	    db_local_role(s, &setup->app, NULL, e) < 0 ||
	    db_local_role(s, &setup->readonly, NULL, e) < 0 ||
	    db_local_role(s, &setup->sqlagent, agent, e) < 0)
		return -1;

	res = PQexecParams(s->pg, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
	    1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err_set(e, db_session_status(s, res), "could not read pg_database");
		PQclear(res);
		return -1;
	}
	exists = PQntuples(res) == 1;
	PQclear(res);
	if (exists)
		return 0;
	db = PQescapeIdentifier(s->pg, setup->dbname, strlen(setup->dbname));
	owner = PQescapeIdentifier(s->pg, setup->owner.name, strlen(setup->owner.name));
	if (db == NULL || owner == NULL) {
		err_set(e, 500, "could not quote the database name");
		goto out;
	}
	sql = xasprintf("CREATE DATABASE %s OWNER %s ENCODING 'UTF8' "
	    "TEMPLATE template0", db, owner);
	if (db_session_exec(s, sql, "create the database", e) < 0)
		goto out;
	rc = 0;
out:
	free(sql);
	if (db != NULL)
		PQfreemem(db);
	if (owner != NULL)
		PQfreemem(owner);
	return rc;
}
