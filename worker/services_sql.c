/*
 * services_sql.c -- the SQL service of the server's flow contexts
 * (flows/ctx.h, struct ctx_sql_service): a statement a model wrote goes
 * through the guard on PostgreSQL's grammar (lib/sqlguard.c; unless
 * sql_agent.guard is false, a test-only switch) and then to the worker's
 * SQL agent handle (lib/db_sqlagent.c: its own connections as the
 * least-privilege role, READ ONLY, timeouts and caps), which holds even
 * when the guard is off.  A refusal is logged with its reason.
 *
 * The schema's description (for the prompt: every table with its columns
 * and comments, and the first table's columns) is remembered per worker
 * for SQL_SCHEMA_TTL_MS, so a turn does not read the catalog twice.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/db_sqlagent.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/sqlguard.h"
#include "lib/xmalloc.h"
#include "worker/exchange.h"
#include "worker/services.h"
#include "worker/worker.h"

#define SQL_SCHEMA_TTL_MS 30000

/* The last description of this worker's schema (malloc'ed strings). */
static pthread_mutex_t sql_schema_lock = PTHREAD_MUTEX_INITIALIZER;
static char *sql_schema_text, *sql_schema_table, *sql_schema_columns;
static int64_t sql_schema_ms;

static struct db_sqlagent *
sql_handle(struct http_exchange *x, struct err *e)
{
	if (x->w->sqlagent == NULL)
		err_set(e, 503, "the SQL agent's database is not set up in this "
		    "worker (sql_agent.database_url; docs/sql-agent.md)");
	return x->w->sqlagent;
}

static void
sql_copy_rows(const struct db_sql_result *r, struct ctx_sql_rows *out)
{
	out->n_cols = r->n_cols;
	out->col_names = r->col_names;
	out->col_numeric = r->col_numeric;
	out->n_rows = r->n_rows;
	out->rows = r->rows;
	out->rows_truncated = r->rows_truncated;
	out->bytes_truncated = r->bytes_truncated;
}

static int
sql_query(void *arg, const char *sql, struct arena *a, struct ctx_sql_rows *out,
    struct err *e)
{
	struct http_exchange *x = arg;
	struct db_sqlagent *s = sql_handle(x, e);
	struct db_sql_result r;

	if (s == NULL)
		return -1;
	if (db_sqlagent_guard(s) &&
	    sqlguard_check(sql, db_sqlagent_schema(s), e) != 0) {
		log_warn("sql guard", "statement refused: %s", e->msg);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	if (db_sqlagent_run(s, sql, a, &r, e) != 0)
		return -1;
	sql_copy_rows(&r, out);
	return 0;
}

/* The first table's column names, joined by ", " (a statement of zero rows
 * over it, as the agent's role). */
static int
sql_columns(struct db_sqlagent *s, const char *table, struct arena *a,
    const char **columns, struct err *e)
{
	struct db_sql_result r;
	struct buf b = BUF_INIT;
	struct buf q = BUF_INIT;
	const char *p;
	int c, rc;

	/* the table's name as a quoted identifier */
	buf_puts(&q, "SELECT * FROM \"");
	for (p = table; *p != '\0'; p++) {
		if (*p == '"')
			buf_putc(&q, '"');
		buf_putc(&q, *p);
	}
	buf_puts(&q, "\" LIMIT 0");
	memset(&r, 0, sizeof(r));
	rc = db_sqlagent_run(s, buf_cstr(&q), a, &r, e);
	buf_free(&q);
	if (rc != 0)
		return -1;
	for (c = 0; c < r.n_cols; c++) {
		if (c > 0)
			buf_puts(&b, ", ");
		buf_puts(&b, r.col_names[c]);
	}
	*columns = arena_strdup(a, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

static int
sql_describe(void *arg, struct arena *a, const char **text, const char **table,
    const char **columns, struct err *e)
{
	struct http_exchange *x = arg;
	struct db_sqlagent *s = sql_handle(x, e);
	const char *t = NULL, *tb = NULL, *cols = "";
	int64_t now = clock_now_ms();

	if (s == NULL)
		return -1;
	pthread_mutex_lock(&sql_schema_lock);
	if (sql_schema_ms != 0 && now - sql_schema_ms < SQL_SCHEMA_TTL_MS) {
		*text = arena_strdup(a, sql_schema_text);
		*table = sql_schema_table != NULL ? arena_strdup(a, sql_schema_table) : NULL;
		*columns = arena_strdup(a, sql_schema_columns);
		pthread_mutex_unlock(&sql_schema_lock);
		return 0;
	}
	pthread_mutex_unlock(&sql_schema_lock);
	if (db_sqlagent_describe(s, a, &t, &tb, e) != 0)
		return -1;
	if (tb != NULL && sql_columns(s, tb, a, &cols, e) != 0)
		return -1;
	*text = t != NULL ? t : "";
	*table = tb;
	*columns = cols;
	pthread_mutex_lock(&sql_schema_lock);
	free(sql_schema_text);
	free(sql_schema_table);
	free(sql_schema_columns);
	sql_schema_text = xstrdup(*text);
	sql_schema_table = tb != NULL ? xstrdup(tb) : NULL;
	sql_schema_columns = xstrdup(cols);
	sql_schema_ms = now;
	pthread_mutex_unlock(&sql_schema_lock);
	return 0;
}

const struct ctx_sql_service services_sql = {
	.query = sql_query,
	.describe = sql_describe,
};
