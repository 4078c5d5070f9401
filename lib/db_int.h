/*
 * db_int.h -- what the files of the database layer share: libpq, the
 * prepared-statement slots, one call's use of one pooled connection, and
 * the call discipline (db_run, db_exec).  Included by lib/db_*.c only,
 * never anywhere else: it is how <libpq-fe.h> stays inside the layer.
 *
 *   db_pool.c     the pool, its health and backoff, the classification of
 *                 failures (db_fail), db_run and db_exec
 *   db_chat.c     the request path: turns, history, feedback, usage rows,
 *                 idempotency keys
 *   db_users.c    the users table
 *   db_session.c  the command line's sessions: migrations, the local
 *                 cluster's bootstrap
 *   db_kb.c       the local knowledge base: the pool's search and count,
 *                 the sessions' add, list, remove and search
 *   db_usage.c    usage summed for charts: the rollup and its readers
 */
#ifndef INGEN_DB_INT_H
#define INGEN_DB_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "lib/db.h"

struct arena;

/* How the readers format a timestamptz: "YYYY-MM-DDTHH:MM:SS.ffffff". */
#define DB_TIMESTAMP_FORMAT "'YYYY-MM-DD\"T\"HH24:MI:SS.US'"

/* An int as a statement parameter: sign, ten digits, NUL, with room. */
#define DB_INT_TEXT 16

/* The first line of a libpq message as the layer logs or reports it. */
#define DB_LINE_MAX 256

/*
 * libpq's gssencmode for the server's own connections (pool, SQL agent),
 * given before the URL so that a URL's own gssencmode wins.  libpq's default,
 * prefer, initialises Kerberos on every connect to look for a ticket: 1.1 MB
 * more in each worker (libkrb5, libgssapi, measured with smaps) for an
 * encryption almost nobody runs.  Kerberos authentication itself does not
 * need it; a deployment that encrypts with GSSAPI instead of TLS puts
 * gssencmode=prefer (or require) in its URL (docs/dba.md).
 */
#define DB_GSSENCMODE "disable"

/* The prepared statements of the pool, one slot per statement on every
 * connection (prepared lazily, on first use). */
enum db_stmt {
	DB_STMT_PING = 0,
	DB_STMT_IDEM_GET,
	DB_STMT_IDEM_CLAIM,
	DB_STMT_IDEM_RELEASE,
	DB_STMT_IDEM_EXPIRE,
	DB_STMT_SAVE_TURN,
	DB_STMT_USAGE_INSERT,
	DB_STMT_USAGE_RECORD,
	DB_STMT_THREAD_MESSAGES,
	DB_STMT_FEEDBACK_FIND,
	DB_STMT_FEEDBACK_SET,
	DB_STMT_USER_ADD,
	DB_STMT_USER_GET,
	DB_STMT_USER_SET_PASSWORD,
	DB_STMT_USER_DISABLE,
	DB_STMT_USER_LIST,
	DB_STMT_KB_SEARCH,
	DB_STMT_KB_COUNT,
	DB_STMT_USAGE_MARK,
	DB_STMT_USAGE_APPLY,
	DB_STMT_USAGE_BY_DAY,
	DB_STMT_USAGE_BY_USER,
	DB_STMT_USAGE_BY_FLOW,
	DB_STMT_USAGE_BY_MODEL,
	DB_STMT_USAGE_BY_AGENT,
	DB_STMT_THREAD_LIST,
	DB_STMT_THREAD_LIST_ALL,
	DB_STMT_PROMPT_USAGE,
	DB_STMT_COUNT
};

/* A statement, defined next to the code that runs it. */
struct db_stmt_def {
	enum db_stmt slot;
	const char *name;              /* of the prepared statement */
	int nparams;
	const char *sql;
};

/* A command-line session (lib/db_session.h): one plain connection. */
struct db_session {
	PGconn *pg;
	char *user;
};

/* One connection of the pool. */
struct db_conn {
	PGconn *pg;
	bool busy;
	bool prepared[DB_STMT_COUNT];
};

/* One call's use of one connection (db_run fills it). */
struct db_call {
	struct db_pool *p;
	struct db_conn *c;
	const char *action;            /* "while saving a chat turn" */
	bool fresh;                    /* opened by this call */
	bool broken;                   /* the connection failed */
	bool probe;                    /* this call probes a down database */
	int round_trips;               /* successful so far */
	int64_t acquired_us;           /* when the connection was taken (monotonic) */
	char sqlstate[6];              /* of the last failure */
};

/* The work of one call, run by db_run on a connection it holds. */
typedef enum db_status (*db_work_fn)(struct db_call *call, void *arg, struct err *e);

/*
 * Acquire a connection, run fn on it, release it; retry once on a fresh
 * connection when the very first round trip found the connection broken
 * (nothing of the call can have reached the database).  Returns what fn
 * returned, or DB_ERROR with `e` set (503 while the database is down or
 * every connection stays busy).  Any thread.
 */
enum db_status db_run(struct db_pool *p, const char *action, db_work_fn fn,
    void *arg, struct err *e);

/*
 * Run prepared statement st (preparing it on this connection first if
 * needed) with values (st->nparams of them, NULL = SQL NULL).  Returns the
 * result (the caller PQclears it), or NULL with `e` set by db_fail.  A
 * failure with SQLSTATE `quiet` (NULL: none) on a healthy connection is an
 * outcome the caller handles: it is not logged, `e` is left alone and *hit
 * is set.
 */
PGresult *db_exec_quiet(struct db_call *call, const struct db_stmt_def *st,
    const char *const *values, const char *quiet, bool *hit, struct err *e);
PGresult *db_exec(struct db_call *call, const struct db_stmt_def *st,
    const char *const *values, struct err *e);

/*
 * Classify a failed result (NULL allowed: libpq returned none) on
 * connection pg (NULL allowed: none) with db_failure_classify.  The one
 * place where libpq's view of a failure becomes the layer's.
 */
enum db_failure db_failure_of(const PGresult *res, const PGconn *pg);

/* Copy field (row, col) into the arena; NULL for SQL NULL. */
const char *db_val(PGresult *res, int row, int col, struct arena *a);

/* A boolean field: 1, 0, or -1 for SQL NULL. */
int db_bool(PGresult *res, int row, int col);

/* The first line of a libpq message, without "ERROR:  " or "FATAL:  " and
 * the newline, copied into buf ("no message" when msg is NULL or empty). */
const char *db_first_line(const char *msg, char *buf, size_t size);

#endif
