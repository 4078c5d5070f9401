/*
 * db_sqlagent.c -- the SQL agent's connections and the execution of the
 * statements a model wrote (lib/db_sqlagent.h): its own small pool, the
 * READ ONLY transaction with its SET LOCAL limits, the cursor, the row and
 * byte caps, and the catalog description of the agent's schema.
 *
 * It owns those connections and nothing else: it never touches the
 * application's pool (lib/db_pool.c), never checks a statement's meaning
 * (that is lib/sqlguard.c, and this file behaves as if the guard did not
 * exist), and never puts the connection string, a password, a DETAIL or a
 * CONTEXT of the server into a message.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/db_int.h"
#include "lib/db_sqlagent.h"
#include "lib/dburl.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define SA_APPLICATION_NAME  "ingenious-sqlagent"
#define SA_MAX_POOL          64
#define SA_RETRY_MS          1000     /* no new connect attempt before this */
#define SA_IDLE_TX_EXTRA_MS  5000     /* idle_in_transaction beyond the timeout */
#define SA_CURSOR            "ingenious_sqlagent_c"

/* Type OIDs printed unquoted (pg_type.h: int8, int2, int4, oid, float4,
 * float8, numeric). */
#define SA_OID_INT8     20
#define SA_OID_INT2     21
#define SA_OID_INT4     23
#define SA_OID_OID      26
#define SA_OID_FLOAT4   700
#define SA_OID_FLOAT8   701
#define SA_OID_NUMERIC  1700

struct sa_conn {
	PGconn *pg;
	bool busy;
};

struct db_sqlagent {
	pthread_mutex_t mu;
	pthread_cond_t cv;               /* a connection was released */
	struct sa_conn *conns;
	int n;
	int64_t retry_at_ms;             /* database down: fail fast until then */
	bool warned_role;                /* logged the superuser refusal once */

	char *conninfo;                  /* secret; NULL = resolve at connect */
	char *state_dir;                 /* for the local cluster */
	const char *source;
	char connect_timeout[DB_INT_TEXT];
	int connect_timeout_ms;
	char *schema;
	char *settings;                  /* BEGIN READ ONLY; SET LOCAL ...; */
	char *temp_file_limit;
	bool warned_temp;                /* logged that it could not be set */
	bool warned_writer;              /* logged that the role can write */
	int statement_timeout_ms;
	int lock_timeout_ms;
	int max_rows;
	int max_bytes;
	bool guard;
};

/* Wipe and free a string that may hold a password. */
static void
sa_wipe(char *s)
{
	if (s != NULL) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/*
 * The connection string: sql_agent.database_url (the loader already put
 * local_sql_db.database_url there when only the older name was set), else
 * the local cluster's ingenious_sqlagent.  *url NULL when there is none
 * yet (the local cluster may be made later: each connect looks again).
 */
static int
sa_resolve(const struct db_sqlagent *s, char **url, const char **source,
    struct err *e)
{
	char *dir, *creds;
	FILE *fp;
	int rc;

	*url = NULL;
	if (s->conninfo != NULL) {
		*url = xstrdup(s->conninfo);
		*source = "sql_agent.database_url";
		return 0;
	}
	*source = "none";
	if (s->state_dir == NULL || s->state_dir[0] == '\0')
		return 0;
	creds = xasprintf("%s/pg/credentials", s->state_dir);
	fp = fopen(creds, "r");
	free(creds);
	if (fp == NULL)
		return 0;
	fclose(fp);
	dir = xasprintf("%s/pg", s->state_dir);
	rc = dburl_local(dir, DBURL_ROLE_SQLAGENT, url, e);
	free(dir);
	if (rc < 0)
		return -1;
	*source = "local cluster (server.state_dir/pg)";
	return 0;
}

struct db_sqlagent *
db_sqlagent_open(const struct config *cfg, struct err *e)
{
	struct db_sqlagent *s;
	PQconninfoOption *opts;
	pthread_condattr_t ca;
	char *perr = NULL;
	const char *url = cfg->sql_agent.database_url;
	struct buf b = BUF_INIT;
	int ct;

	if (url != NULL && url[0] != '\0') {
		/* libpq's parse message may quote part of the string */
		opts = PQconninfoParse(url, &perr);
		if (opts == NULL) {
			if (perr != NULL)
				PQfreemem(perr);
			return err_set(e, 500, "could not parse sql_agent.database_url: "
			    "not a valid libpq URI or key=value string"), NULL;
		}
		PQconninfoFree(opts);
	}
	s = xcalloc(1, sizeof(*s));
	s->conninfo = url != NULL && url[0] != '\0' ? xstrdup(url) : NULL;
	s->state_dir = xstrdup(cfg->server.state_dir ? cfg->server.state_dir : "");
	s->source = s->conninfo != NULL ? "sql_agent.database_url" :
	    "local cluster (server.state_dir/pg)";
	ct = cfg->sql_agent.connect_timeout > 0 ? cfg->sql_agent.connect_timeout : 5;
	snprintf(s->connect_timeout, sizeof(s->connect_timeout), "%d", ct);
	s->connect_timeout_ms = ct * 1000;
	s->n = cfg->sql_agent.pool_size > 0 ? cfg->sql_agent.pool_size : 1;
	if (s->n > SA_MAX_POOL)
		s->n = SA_MAX_POOL;
	s->conns = xcalloc((size_t)s->n, sizeof(*s->conns));
	s->schema = xstrdup(cfg->sql_agent.schema);
	s->statement_timeout_ms = cfg->sql_agent.statement_timeout_ms;
	s->lock_timeout_ms = cfg->sql_agent.lock_timeout_ms;
	s->max_rows = cfg->sql_agent.max_rows;
	s->max_bytes = cfg->sql_agent.max_bytes;
	s->guard = cfg->sql_agent.guard;

	/*
	 * The settings of every transaction.  The loader checked that schema,
	 * work_mem and temp_file_limit need no quoting (lib/config.c,
	 * validate_sql_agent); they are quoted anyway, as literals and an
	 * identifier whose characters cannot close them.
	 * temp_file_limit may be changed by superusers only, so it is not
	 * here: the role carries it (ALTER ROLE ... SET, docs/sql-agent.md),
	 * and sa_connect tries to set it only when the role's differs.
	 */
	buf_printf(&b, "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ; "
	    "SET LOCAL statement_timeout = %d; SET LOCAL lock_timeout = %d; "
	    "SET LOCAL idle_in_transaction_session_timeout = %d; "
	    "SET LOCAL work_mem = '%s'; SET LOCAL search_path = \"%s\"; "
	    "SET LOCAL standard_conforming_strings = on; "
	    "SET LOCAL transaction_read_only = on",
	    s->statement_timeout_ms, s->lock_timeout_ms,
	    s->statement_timeout_ms + SA_IDLE_TX_EXTRA_MS,
	    cfg->sql_agent.work_mem, s->schema);
	s->settings = buf_cstr(&b);
	s->temp_file_limit = xstrdup(cfg->sql_agent.temp_file_limit);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!s->guard)
		log_warn("while opening the SQL agent's database", "sql_agent.guard "
		    "is false: statements reach the database unchecked (test-only)");
	return s;
}

void
db_sqlagent_close(struct db_sqlagent *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		if (s->conns[i].pg != NULL)
			PQfinish(s->conns[i].pg);
	free(s->conns);
	sa_wipe(s->conninfo);
	free(s->state_dir);
	free(s->schema);
	free(s->settings);
	free(s->temp_file_limit);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

const char *
db_sqlagent_schema(const struct db_sqlagent *s)
{
	return s->schema;
}

bool
db_sqlagent_guard(const struct db_sqlagent *s)
{
	return s->guard;
}

const char *
db_sqlagent_source(const struct db_sqlagent *s)
{
	return s->source;
}

/*
 * temp_file_limit is a superuser's setting: the role should carry it
 * (`ingen db init-local` sets 16MB).  When the role's value differs from
 * sql_agent.temp_file_limit, try a session SET (it works where a superuser
 * ran GRANT SET ON PARAMETER temp_file_limit); else say once what to do.
 */
static void
sa_temp_file_limit(struct db_sqlagent *s, PGconn *pg)
{
	const char *v[1] = { s->temp_file_limit };
	PGresult *res;
	bool same, warn;

	res = PQexecParams(pg, "SELECT pg_catalog.current_setting('temp_file_limit') = "
	    "$1 OR pg_catalog.pg_size_bytes(pg_catalog.current_setting("
	    "'temp_file_limit')) = pg_catalog.pg_size_bytes($1)",
	    1, NULL, v, NULL, NULL, 0);
	same = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (same)
		return;
	res = PQexecParams(pg, "SELECT pg_catalog.set_config('temp_file_limit', $1, false)",
	    1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pthread_mutex_lock(&s->mu);
		warn = !s->warned_temp;
		s->warned_temp = true;
		pthread_mutex_unlock(&s->mu);
		if (warn)
			log_warn("while connecting to the SQL agent's database",
			    "could not set temp_file_limit to %s (a superuser's "
			    "setting): run ALTER ROLE <the agent's role> SET "
			    "temp_file_limit = '%s' as a superuser, or `ingen db "
			    "init-local` again for the local cluster (docs/sql-agent.md)",
			    s->temp_file_limit, s->temp_file_limit);
	}
	PQclear(res);
}

/*
 * A role that may write is a layer less: say so once (the READ ONLY
 * transaction and the cursor still refuse every write).  Which tables it
 * could write, by name, is the DBA's to find; the count and one name are
 * enough to act on.
 */
static void
sa_check_writer(struct db_sqlagent *s, PGconn *pg)
{
	PGresult *res;
	bool warn;

	res = PQexec(pg, "SELECT count(*), min(n.nspname || '.' || c.relname) "
	    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
	    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	    "AND pg_catalog.has_table_privilege(c.oid, "
	    "'INSERT, UPDATE, DELETE, TRUNCATE')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
		pthread_mutex_lock(&s->mu);
		warn = !s->warned_writer;
		s->warned_writer = true;
		pthread_mutex_unlock(&s->mu);
		if (warn)
			log_warn("while connecting to the SQL agent's database",
			    "the SQL agent's role may write %s tables (%s, ...): grant "
			    "it SELECT on schema %s only (docs/sql-agent.md); its "
			    "statements still run READ ONLY", PQgetvalue(res, 0, 0),
			    PQgetvalue(res, 0, 1), s->schema);
	}
	PQclear(res);
}

/* Open c->pg as the agent's role.  Returns 0 or -1 with `e` set. */
static int
sa_connect(struct db_sqlagent *s, struct sa_conn *c, struct err *e)
{
	const char *keys[] = {
		"application_name", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "gssencmode",
		"dbname", "connect_timeout", NULL
	};
	const char *vals[9];
	const char *source, *su;
	char why[DB_LINE_MAX];
	char *url = NULL;
	bool warn;

	if (sa_resolve(s, &url, &source, e) < 0)
		return -1;
	if (url == NULL)
		return err_set(e, 500, "the SQL agent has no database: set "
		    "sql_agent.database_url, or run `ingen db init-local` for the "
		    "local cluster (docs/sql-agent.md)");
	vals[0] = SA_APPLICATION_NAME;
	vals[1] = "1";
	vals[2] = "30";
	vals[3] = "10";
	vals[4] = "3";
	vals[5] = DB_GSSENCMODE;
	vals[6] = url;
	vals[7] = s->connect_timeout;
	vals[8] = NULL;
	c->pg = PQconnectdbParams(keys, vals, 1);
	sa_wipe(url);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		log_error("while connecting to the SQL agent's database", "%s (from %s)",
		    db_first_line(PQerrorMessage(c->pg), why, sizeof(why)), source);
		PQfinish(c->pg);
		c->pg = NULL;
		return err_set(e, 503, "the SQL agent's database is unavailable");
	}
	/* The role must not be able to do everything: a superuser ignores
	 * every grant this design rests on. */
	su = PQparameterStatus(c->pg, "is_superuser");
	if (su == NULL || strcmp(su, "off") != 0) {
		PQfinish(c->pg);
		c->pg = NULL;
		pthread_mutex_lock(&s->mu);
		warn = !s->warned_role;
		s->warned_role = true;
		pthread_mutex_unlock(&s->mu);
		if (warn)
			log_error("while connecting to the SQL agent's database",
			    "the connection from %s is a superuser's: refused, use a "
			    "role that may only read schema %s (docs/sql-agent.md)",
			    source, s->schema);
		return err_set(e, 500, "the SQL agent's database role is a "
		    "superuser: refused (docs/sql-agent.md)");
	}
	sa_temp_file_limit(s, c->pg);
	sa_check_writer(s, c->pg);
	return 0;
}

/* Take a connection (opening it if needed), or -1 with `e` set. */
static struct sa_conn *
sa_acquire(struct db_sqlagent *s, struct err *e)
{
	struct timespec deadline;
	struct sa_conn *c = NULL;
	int i, rc = 0;

	clock_abs_after(&deadline, s->connect_timeout_ms);
	pthread_mutex_lock(&s->mu);
	for (;;) {
		/* an open idle connection first, else a free slot */
		for (i = 0; i < s->n && c == NULL; i++)
			if (!s->conns[i].busy && s->conns[i].pg != NULL)
				c = &s->conns[i];
		for (i = 0; i < s->n && c == NULL; i++)
			if (!s->conns[i].busy)
				c = &s->conns[i];
		if (c != NULL || rc != 0)
			break;
		rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
	}
	if (c == NULL) {
		pthread_mutex_unlock(&s->mu);
		err_set(e, 503, "the SQL agent's database is busy: every "
		    "connection (sql_agent.pool_size) is in use");
		return NULL;
	}
	c->busy = true;
	if (c->pg == NULL && clock_now_ms() < s->retry_at_ms) {
		c->busy = false;
		pthread_mutex_unlock(&s->mu);
		err_set(e, 503, "the SQL agent's database is unavailable");
		return NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (c->pg == NULL && sa_connect(s, c, e) < 0) {
		pthread_mutex_lock(&s->mu);
		if (e->status == 503)
			s->retry_at_ms = clock_now_ms() + SA_RETRY_MS;
		c->busy = false;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	return c;
}

/* Give a connection back; a broken one is closed (reopened on next use). */
static void
sa_release(struct db_sqlagent *s, struct sa_conn *c, bool broken)
{
	if (broken && c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	pthread_mutex_lock(&s->mu);
	c->busy = false;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/*
 * `e` for a failed result of the model's statement.  Returns true when the
 * connection is unusable afterwards.
 */
static bool
sa_fail(struct db_sqlagent *s, PGconn *pg, const PGresult *res, bool cancelled,
    struct err *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char why[DB_LINE_MAX];

	switch (db_failure_of(res, pg)) {
	case DB_FAILURE_UNAVAILABLE:
		log_error("while running the SQL agent's statement", "%s",
		    db_first_line(res ? PQresultErrorMessage(res) : PQerrorMessage(pg),
		    why, sizeof(why)));
		err_set(e, 503, "the SQL agent's database is unavailable");
		return true;
	default:
		break;
	}
	if (state != NULL && strcmp(state, "57014") == 0 && !cancelled) {
		err_set(e, 504, "SQL Error: the statement ran longer than "
		    "sql_agent.statement_timeout_ms (%d ms) and was cancelled",
		    s->statement_timeout_ms);
		return false;
	}
	if (state != NULL && strcmp(state, "55P03") == 0) {
		err_set(e, 504, "SQL Error: the statement waited longer than "
		    "sql_agent.lock_timeout_ms (%d ms) for a lock and was cancelled",
		    s->lock_timeout_ms);
		return false;
	}
	err_set(e, 400, "SQL Error: %.400s", primary ? primary : "the statement failed");
	return false;
}

/* Run one of our own statements (no result wanted); -1 with `e`. */
static int
sa_exec(struct db_sqlagent *s, PGconn *pg, const char *sql, bool *broken,
    struct err *e)
{
	PGresult *res = PQexec(pg, sql);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*broken = sa_fail(s, pg, res, false, e);
		if (e->status == 400) {
			/* one of ours failed: the configuration is wrong (a
			 * work_mem PostgreSQL refuses, a schema that is not
			 * there ...) */
			const char *primary = PQresultErrorField(res,
			    PG_DIAG_MESSAGE_PRIMARY);

			err_set(e, 500, "could not apply the SQL agent's settings "
			    "(sql_agent.*): %.300s", primary ? primary : "?");
		}
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static bool
sa_numeric(Oid t)
{
	return t == SA_OID_INT2 || t == SA_OID_INT4 || t == SA_OID_INT8 ||
	    t == SA_OID_OID || t == SA_OID_FLOAT4 || t == SA_OID_FLOAT8 ||
	    t == SA_OID_NUMERIC;
}

/* The columns of a result, into out (arena). */
static void
sa_columns(const PGresult *res, struct arena *a, struct db_sql_result *out)
{
	int c;

	out->n_cols = PQnfields(res);
	out->col_names = arena_zalloc(a, sizeof(char *) * (size_t)(out->n_cols + 1));
	out->col_numeric = arena_zalloc(a, sizeof(bool) * (size_t)(out->n_cols + 1));
	for (c = 0; c < out->n_cols; c++) {
		out->col_names[c] = arena_strdup(a, PQfname(res, c));
		out->col_numeric[c] = sa_numeric(PQftype(res, c));
	}
}

/* Cancel the running statement of pg (the byte cap was reached). */
static void
sa_cancel(PGconn *pg)
{
	PGcancel *cn = PQgetCancel(pg);
	char buf[DB_LINE_MAX];

	if (cn != NULL) {
		(void)PQcancel(cn, buf, (int)sizeof(buf));
		PQfreeCancel(cn);
	}
}

/*
 * FETCH max_rows + 1 rows, one at a time (single-row mode), keeping at most
 * max_rows rows and max_bytes bytes of values.  At the byte cap the
 * statement is cancelled and the rest drained.
 */
static int
sa_fetch(struct db_sqlagent *s, PGconn *pg, struct arena *a,
    struct db_sql_result *out, bool *broken, struct err *e)
{
	char sql[96];
	PGresult *res;
	size_t bytes = 0, cap_rows = (size_t)s->max_rows;
	bool cancelled = false, failed = false;
	int c, r;

	out->rows = arena_zalloc(a, sizeof(char **) * (cap_rows + 1));
	snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM " SA_CURSOR, s->max_rows + 1);
	if (!PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(pg)) {
		*broken = sa_fail(s, pg, NULL, false, e);
		return -1;
	}
	while ((res = PQgetResult(pg)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			if (out->col_names == NULL)
				sa_columns(res, a, out);
			if (cancelled || failed)
				break;
			if (out->n_rows >= s->max_rows) {
				out->rows_truncated = true;
				break;
			}
			for (c = 0; c < out->n_cols; c++)
				bytes += (size_t)PQgetlength(res, 0, c);
			if (bytes > (size_t)s->max_bytes) {
				out->bytes_truncated = true;
				cancelled = true;
				sa_cancel(pg);
				break;
			}
			r = out->n_rows++;
			out->rows[r] = arena_zalloc(a, sizeof(char *) * (size_t)(out->n_cols + 1));
			for (c = 0; c < out->n_cols; c++)
				out->rows[r][c] = PQgetisnull(res, 0, c) ? NULL :
				    arena_strndup(a, PQgetvalue(res, 0, c),
				    (size_t)PQgetlength(res, 0, c));
			break;
		case PGRES_TUPLES_OK:
			if (out->col_names == NULL)
				sa_columns(res, a, out);
			break;
		default:
			/* our own cancel ends the statement with 57014 */
			if (!failed && !(cancelled && res != NULL &&
			    PQresultErrorField(res, PG_DIAG_SQLSTATE) != NULL &&
			    strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "57014") == 0)) {
				*broken = sa_fail(s, pg, res, cancelled, e);
				failed = true;
			}
			break;
		}
		PQclear(res);
	}
	if (!failed && PQstatus(pg) != CONNECTION_OK) {
		*broken = sa_fail(s, pg, NULL, false, e);
		failed = true;
	}
	return failed ? -1 : 0;
}

int
db_sqlagent_run(struct db_sqlagent *s, const char *sql, struct arena *a,
    struct db_sql_result *out, struct err *e)
{
	struct sa_conn *c;
	struct buf q = BUF_INIT;
	PGresult *res;
	bool broken = false, in_tx = false;
	size_t len = strlen(sql);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len > DB_SQLAGENT_MAX_SQL)
		return err_set(e, 400, "SQL Error: the statement is %zu bytes, over "
		    "the limit of %d", len, DB_SQLAGENT_MAX_SQL);
	if ((c = sa_acquire(s, e)) == NULL)
		return -1;
	/* from here a ROLLBACK ends whatever BEGIN started, even when one of
	 * the SETs failed and left the transaction aborted */
	in_tx = true;
	if (sa_exec(s, c->pg, s->settings, &broken, e) < 0)
		goto out;
	/*
	 * The model's text is the whole tail of DECLARE: nothing follows it,
	 * so a comment cannot swallow anything of ours; the extended protocol
	 * refuses a second statement; DECLARE takes only SELECT and VALUES.
	 * The newline ends a "--" comment the text may not end with.
	 */
	buf_puts(&q, "DECLARE " SA_CURSOR " NO SCROLL CURSOR FOR\n");
	buf_puts(&q, sql);
	buf_puts(&q, "\n");
	res = PQexecParams(c->pg, buf_cstr(&q), 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		broken = sa_fail(s, c->pg, res, false, e);
		PQclear(res);
		goto out;
	}
	PQclear(res);
	if (sa_fetch(s, c->pg, a, out, &broken, e) < 0)
		goto out;
	if (out->col_names == NULL) {
		out->col_names = arena_zalloc(a, sizeof(char *));
		out->col_numeric = arena_zalloc(a, sizeof(bool));
	}
	rc = 0;
out:
	buf_free(&q);
	if (in_tx && !broken) {
		struct err e2 = { 0 };

		res = PQexec(c->pg, "ROLLBACK");
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			broken = true;
			(void)sa_fail(s, c->pg, res, false, &e2);
		}
		PQclear(res);
	}
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	sa_release(s, c, broken || PQstatus(c->pg) != CONNECTION_OK);
	return rc;
}

int
db_sqlagent_describe(struct db_sqlagent *s, struct arena *a, const char **text,
    const char **first_table, struct err *e)
{
	static const char q[] =
	    "SELECT c.relname, a.attname, "
	    "       pg_catalog.format_type(a.atttypid, a.atttypmod), "
	    "       pg_catalog.col_description(c.oid, a.attnum), "
	    "       pg_catalog.obj_description(c.oid, 'pg_class') "
	    "  FROM pg_catalog.pg_class c "
	    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
	    "       AND a.attnum > 0 AND NOT a.attisdropped "
	    " WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f') "
	    "   AND pg_catalog.has_table_privilege(c.oid, 'SELECT') "
	    " ORDER BY c.relname, a.attnum";
	const char *v[1] = { s->schema };
	struct sa_conn *c;
	struct buf b = BUF_INIT;
	PGresult *res = NULL;
	const char *prev = NULL, *table_comment = NULL;
	bool broken = false, in_tx = false;
	int r, rc = -1;

	*text = NULL;
	*first_table = NULL;
	if ((c = sa_acquire(s, e)) == NULL)
		return -1;
	in_tx = true;
	if (sa_exec(s, c->pg, s->settings, &broken, e) < 0)
		goto out;
	res = PQexecParams(c->pg, q, 1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		broken = sa_fail(s, c->pg, res, false, e);
		if (e->status == 400)
			e->status = 500;
		goto out;
	}
	for (r = 0; r < PQntuples(res); r++) {
		const char *t = PQgetvalue(res, r, 0);
		bool new_table = prev == NULL || strcmp(prev, t) != 0;

		if (new_table) {
			if (prev != NULL) {
				buf_putc(&b, ')');
				if (table_comment != NULL)
					buf_printf(&b, " -- %s", table_comment);
				buf_putc(&b, '\n');
			}
			if (*first_table == NULL)
				*first_table = arena_strdup(a, t);
			buf_printf(&b, "%s(", t);
			prev = t;
			table_comment = PQgetisnull(res, r, 4) ? NULL : PQgetvalue(res, r, 4);
		} else {
			buf_puts(&b, ", ");
		}
		buf_printf(&b, "%s %s", PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
		if (!PQgetisnull(res, r, 3))
			buf_printf(&b, " -- %s", PQgetvalue(res, r, 3));
	}
	if (prev != NULL) {
		buf_putc(&b, ')');
		if (table_comment != NULL)
			buf_printf(&b, " -- %s", table_comment);
		buf_putc(&b, '\n');
	}
	/* a prompt is no place for a catalog of thousands of columns */
	if (b.len > (size_t)s->max_bytes) {
		*text = arena_sprintf(a, "%.*s\n... (cut at sql_agent.max_bytes, %d bytes)\n",
		    s->max_bytes, buf_cstr(&b), s->max_bytes);
	} else {
		*text = arena_strdup(a, b.len ? buf_cstr(&b) : "");
	}
	rc = 0;
out:
	PQclear(res);
	buf_free(&b);
	if (in_tx && !broken) {
		res = PQexec(c->pg, "ROLLBACK");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			broken = true;
		PQclear(res);
	}
	sa_release(s, c, broken || PQstatus(c->pg) != CONNECTION_OK);
	return rc;
}
