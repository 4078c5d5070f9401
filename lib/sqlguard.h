/*
 * sqlguard.h -- the SQL agent's statement guard: is this text one read-only
 * SELECT over the agent's schema?  Decided on PostgreSQL's own grammar
 * (libpg_query, the PostgreSQL 15 parser as a library), never on regular
 * expressions.  Only lib/sqlguard.c includes <pg_query.h>.
 *
 * The guard is the first of four layers (docs/sql-agent.md): it refuses
 * early, with a reason the model can act on; the role, the READ ONLY
 * transaction and the caps of lib/db_sqlagent.c hold without it.
 *
 * Pure: no socket, no file, no global state of ours; libpg_query keeps its
 * memory per thread, so any thread may call it at any time.
 */
#ifndef INGEN_SQLGUARD_H
#define INGEN_SQLGUARD_H

#include <stdbool.h>

#include "lib/err.h"

/* The longest statement the guard (and lib/db_sqlagent.c) accepts, bytes. */
#define SQLGUARD_MAX_LEN 65536

/* The deepest parse tree the guard walks (nesting of expressions). */
#define SQLGUARD_MAX_DEPTH 400

/*
 * 0 when `sql` is one read-only SELECT over `schema` that the guard allows;
 * -1 with e->status 400 and e->msg the reason (for the model and the log).
 *
 * Accepted: exactly one SelectStmt (UNION / INTERSECT / EXCEPT of selects,
 * VALUES, TABLE t, subqueries, read-only CTEs, joins, GROUP BY, window
 * functions, ORDER BY, LIMIT), calling only the functions of the allow-list
 * (aggregates, window, math, string, date/time; sqlguard_function_allowed),
 * casting only to the built-in scalar types, reading only relations of
 * `schema` (qualified with it, or unqualified: an unqualified name that
 * starts with "pg_" is a system catalog and refused) or CTEs of the
 * statement.  Refused, each with a reason that names what: any other
 * statement, more than one, data-modifying CTEs, SELECT INTO, FOR UPDATE /
 * SHARE, other functions (pg_sleep, pg_read_file, lo_*, dblink*,
 * set_config, current_setting ...), schema-qualified functions outside
 * pg_catalog, relations of any other schema (pg_catalog,
 * information_schema, public ...), CURRENT_USER and its kin, parameters
 * ($1), TABLESAMPLE, XML functions, statements over SQLGUARD_MAX_LEN bytes
 * or nested over SQLGUARD_MAX_DEPTH, text that does not parse.
 * sql and schema must not be NULL.  Any thread.
 */
int sqlguard_check(const char *sql, const char *schema, struct err *e) ING_WUR;

/* What a text is, by a second and much simpler reading of its parse tree
 * than sqlguard_check's walk (for logs, and for the fuzz target's check
 * that whatever the guard accepts is one plain SELECT). */
struct sqlguard_shape {
	int n_statements;           /* -1: does not parse */
	char first_type[64];        /* node type of the first, "" if none */
	bool writes;                /* a data-modifying node anywhere (DeleteStmt,
	                             * UpdateStmt, InsertStmt, MergeStmt), INTO or
	                             * FOR UPDATE / SHARE */
};

/* Fill *out for `sql`.  Pure; any thread. */
void sqlguard_shape(const char *sql, struct sqlguard_shape *out);

/* True if `name` (lower case, unqualified) is on the function allow-list.
 * Pure; any thread. */
bool sqlguard_function_allowed(const char *name);

#endif
