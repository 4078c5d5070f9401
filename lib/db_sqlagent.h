/*
 * db_sqlagent.h -- the SQL agent's side of the PostgreSQL layer: running the
 * statements a model wrote, on connections of their own, so that the
 * database holds even when the statement guard (lib/sqlguard.h) is off or
 * wrong (docs/sql-agent.md, docs/reliability.md S1).
 *
 * What holds without the guard, for every statement:
 *   - the connection is the agent's own (sql_agent.database_url, else the
 *     local cluster's ingenious_sqlagent role), never the application's
 *     pool; a superuser connection is refused;
 *   - the statement is sent alone with the extended protocol (no ';'
 *     chains) as the query of `DECLARE ... NO SCROLL CURSOR FOR`, which
 *     PostgreSQL accepts only for SELECT and VALUES, without
 *     data-modifying WITH;
 *   - inside `BEGIN READ ONLY` with SET LOCAL statement_timeout,
 *     lock_timeout, idle_in_transaction_session_timeout, work_mem,
 *     temp_file_limit, search_path (the agent's schema) and
 *     standard_conforming_strings (the guard's grammar), then ROLLBACK;
 *   - at most max_rows rows (one FETCH of max_rows + 1 through the cursor)
 *     and max_bytes bytes of values (rows arrive one at a time; past the
 *     cap the statement is cancelled) are returned, marked truncated;
 *   - statements over DB_SQLAGENT_MAX_SQL bytes are refused unsent.
 *
 * Threads: one handle per worker process, shared by its flow threads.  It
 * holds a small pool (sql_agent.pool_size connections, opened lazily, one
 * mutex and a condition variable); a thread takes a free connection, or
 * opens one, or waits for one up to sql_agent.connect_timeout.  A broken
 * connection is closed and reopened by the next call; while the database
 * is down calls fail at once (503) for a second between attempts.  Open
 * it after fork, never before.
 *
 * Errors: -1 with `e` set.  Messages never carry the connection string or
 * a password; SQL errors carry only the server's primary message.
 */
#ifndef INGEN_DB_SQLAGENT_H
#define INGEN_DB_SQLAGENT_H

#include <stdbool.h>

#include "lib/err.h"

struct arena;
struct config;
struct db_sqlagent;   /* opaque */

/* The longest statement sent to the database, bytes. */
#define DB_SQLAGENT_MAX_SQL 65536

/*
 * A handle for this process from cfg->sql_agent (copied; cfg may be freed
 * afterwards).  Opens no connection (the first call does), so it succeeds
 * while the database is down.  Returns NULL with `e` set (500) only for a
 * connection string that does not parse.  The connection: sql_agent.
 * database_url (or its older name local_sql_db.database_url), else the
 * local cluster <server.state_dir>/pg as ingenious_sqlagent; never
 * chat_history.database_url or the libpq environment, which are the
 * application's.
 */
struct db_sqlagent *db_sqlagent_open(const struct config *cfg, struct err *e) ING_WUR;

/* Close every connection and free the handle.  No call may be running.
 * NULL is allowed. */
void db_sqlagent_close(struct db_sqlagent *s);

/* The schema the agent reads, and whether the statement guard is on
 * (sql_agent.schema, sql_agent.guard).  Owned by the handle; any thread. */
const char *db_sqlagent_schema(const struct db_sqlagent *s);
bool db_sqlagent_guard(const struct db_sqlagent *s);

/* Where the connection comes from, for a log line: "sql_agent.database_url",
 * "local cluster (server.state_dir/pg)" or "none".  Never the URL. */
const char *db_sqlagent_source(const struct db_sqlagent *s);

struct db_sql_result {
	int n_cols;
	const char **col_names;
	bool *col_numeric;        /* int/float/numeric columns: print unquoted */
	int n_rows;
	const char ***rows;       /* rows[r][c], NULL for SQL NULL (arena memory) */
	bool rows_truncated;      /* more rows than max_rows */
	bool bytes_truncated;     /* stopped at max_bytes */
};

/*
 * Run one statement (guard or not: this layer never trusts it).  0 with *out
 * filled, or -1 with e set: 400 for an SQL error (e->msg: "SQL Error: <the
 * server's primary message>" without DETAIL/CONTEXT/internal query text) or
 * a statement over DB_SQLAGENT_MAX_SQL, 503 for an unavailable database (or
 * every connection busy for connect_timeout), 504 for statement_timeout or
 * lock_timeout (a clear message naming the key), 500 for a misconfigured
 * connection (a superuser role, no database configured).  Everything in
 * *out lives in `a`.  Any thread.
 */
int db_sqlagent_run(struct db_sqlagent *s, const char *sql, struct arena *a,
    struct db_sql_result *out, struct err *e) ING_WUR;

/*
 * The tables and columns of the schema with types and COMMENTs, as text for a
 * prompt, one table per line:
 *   students_performance(parental_education text -- Highest ..., math_score
 *   integer -- ..., ...) -- <the table's comment>
 * and the first table's name (by name; the reference's table_name).  Only
 * the agent's schema, only relations the role may SELECT; the text is cut
 * at sql_agent.max_bytes (with a line that says so).  *first_table is
 * NULL when the schema has none.  Both live in `a`.  Errors as
 * db_sqlagent_run.  Any thread.
 */
int db_sqlagent_describe(struct db_sqlagent *s, struct arena *a, const char **text,
    const char **first_table, struct err *e) ING_WUR;

#endif
