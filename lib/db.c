/*
 * db.c -- the PostgreSQL layer: the connection pool of a worker, the calls
 * the server makes by purpose, and the command line's sessions.
 *
 * This is the only file that includes <libpq-fe.h>.  It owns every SQL
 * statement the server runs, the pool's health state (up, down with a
 * backoff, probing), and the mapping of libpq errors to 503/500.  It never
 * puts the connection string, SQL text, or a server message that may
 * contain data into an error message, and never logs the connection string.
 *
 * Pool discipline.  A call acquires a connection under the pool mutex
 * (waiting on a condition variable, bounded), works on it without the lock,
 * and releases it.  While the database is known down, calls fail at once
 * with 503, except one thread at a time ("the probe") that tries to connect
 * when the backoff has passed.  A connection that breaks is closed together
 * with the idle ones (after a server restart they are all dead); a call whose
 * very first round trip found its connection broken is retried once on a
 * fresh connection, since nothing of it can have reached the database.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/db.h"
#include "lib/dburl.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "lib/xmalloc.h"

#define DB_DEFAULT_POOL_SIZE    4
#define DB_MAX_POOL_SIZE        64
#define DB_DEFAULT_CONNECT_S    5
#define DB_BACKOFF_FIRST_MS     250
#define DB_BACKOFF_MAX_MS       5000
#define DB_PING_INTERVAL_MS     1000
#define DB_APPLICATION_NAME     "ingenious"
/* pg_advisory_lock key of the migrator: "ingenmig" as a big-endian int64 */
#define DB_MIGRATE_LOCK_KEY     "7668124883017247079"
#define DB_TIMESTAMP_FORMAT     "'YYYY-MM-DD\"T\"HH24:MI:SS.US'"

/* ------------------------------------------------------------------ */
/* Statements                                                          */
/* ------------------------------------------------------------------ */

enum db_stmt {
	DB_STMT_PING = 0,
	DB_STMT_IDEM_INSERT,
	DB_STMT_IDEM_GET,
	DB_STMT_IDEM_CLAIM,
	DB_STMT_IDEM_RELEASE,
	DB_STMT_IDEM_EXPIRE,
	DB_STMT_SAVE_TURN,
	DB_STMT_USAGE_INSERT,
	DB_STMT_THREAD_MESSAGES,
	DB_STMT_FEEDBACK_FIND,
	DB_STMT_FEEDBACK_SET,
	DB_STMT_USER_ADD,
	DB_STMT_USER_GET,
	DB_STMT_USER_SET_PASSWORD,
	DB_STMT_USER_DISABLE,
	DB_STMT_USER_LIST,
	DB_STMT_COUNT
};

struct db_stmt_def {
	const char *name;
	int nparams;
	const char *sql;
};

static const struct db_stmt_def db_stmts[DB_STMT_COUNT] = {
	[DB_STMT_PING] = { "ing_ping", 0, "SELECT 1" },
	[DB_STMT_IDEM_GET] = { "ing_idem_get", 2,
	    "SELECT status, response, request_hash, thread_id, message_id"
	    " FROM idempotency_keys WHERE owner = $1 AND key = $2" },
	/* A claim: status 102 (DB_IDEMPOTENCY_PENDING), the token as body. */
	[DB_STMT_IDEM_CLAIM] = { "ing_idem_claim", 3,
	    "INSERT INTO idempotency_keys (owner, key, status, response)"
	    " VALUES ($1, $2, 102, $3)"
	    " ON CONFLICT (owner, key) DO NOTHING" },
	[DB_STMT_IDEM_RELEASE] = { "ing_idem_release", 3,
	    "DELETE FROM idempotency_keys"
	    " WHERE owner = $1 AND key = $2 AND status = 102 AND response = $3" },
	[DB_STMT_IDEM_EXPIRE] = { "ing_idem_expire", 3,
	    "DELETE FROM idempotency_keys"
	    " WHERE owner = $1 AND key = $2 AND status = 102"
	    " AND created_at < now() - $3::integer * interval '1 millisecond'" },
	/* The whole turn, one statement in its own implicit transaction
	 * (sql/004_save_turn.sql): its result arrives after the commit. */
	[DB_STMT_SAVE_TURN] = { "ing_save_turn", 21,
	    "SELECT outcome, first_seq, new_thread, replay_status, replay_response,"
	    " replay_request_hash, replay_thread_id, replay_message_id"
	    " FROM ingenious_save_turn($1, $2, $3::boolean, $4, $5, $6::uuid[],"
	    " $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[],"
	    " $12::jsonb[], $13::jsonb[], $14::uuid, $15, $16::bigint[], $17, $18,"
	    " $19::smallint, $20, $21)" },
	[DB_STMT_USAGE_INSERT] = { "ing_usage_insert", 13,
	    "INSERT INTO llm_usage (request_id, user_id, thread_id, flow,"
	    " agent_name, model, deployment, prompt_tokens, completion_tokens,"
	    " total_tokens, latency_ms, http_status, retries)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9::integer,"
	    " $10::integer, $11::integer, $12::smallint, $13::smallint)"
	    " RETURNING id" },
	/* One statement, one snapshot: the owner, the newest memory summary
	 * and the last $2 messages (a thread without messages gives one row
	 * of NULL message columns; an unknown thread gives none). */
	[DB_STMT_THREAD_MESSAGES] = { "ing_thread_messages", 2,
	    "SELECT t.owner,"
	    " (SELECT s.content FROM memory_summaries s"
	    "   LEFT JOIN messages sm ON sm.id = s.message_id"
	    "  WHERE s.thread_id = t.id"
	    "  ORDER BY s.created_at DESC, sm.seq DESC NULLS LAST LIMIT 1),"
	    " m.id, m.seq, m.user_id, m.role, m.agent_name, m.content,"
	    " m.tool_calls, m.tool_call_id, m.tool_call_function,"
	    " m.content_filter_results, m.positive_feedback,"
	    " to_char(m.created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT ")"
	    " FROM threads t"
	    " LEFT JOIN LATERAL (SELECT * FROM messages WHERE thread_id = t.id"
	    "   ORDER BY seq DESC LIMIT $2::integer) m ON true"
	    " WHERE t.id = $1 ORDER BY m.seq" },
	[DB_STMT_FEEDBACK_FIND] = { "ing_feedback_find", 2,
	    "SELECT coalesce(m.user_id, ''), t.owner FROM messages m"
	    " JOIN threads t ON t.id = m.thread_id"
	    " WHERE m.id = $1::uuid AND m.thread_id = $2" },
	[DB_STMT_FEEDBACK_SET] = { "ing_feedback_set", 3,
	    "UPDATE messages SET positive_feedback = $3::boolean"
	    " WHERE id = $1::uuid AND thread_id = $2" },
	[DB_STMT_USER_ADD] = { "ing_user_add", 2,
	    "INSERT INTO users (username, password_hash) VALUES ($1, $2)"
	    " ON CONFLICT (username) DO NOTHING" },
	[DB_STMT_USER_GET] = { "ing_user_get", 1,
	    "SELECT username, password_hash,"
	    " to_char(created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT "),"
	    " disabled FROM users WHERE username = $1" },
	[DB_STMT_USER_SET_PASSWORD] = { "ing_user_set_password", 2,
	    "UPDATE users SET password_hash = $2, updated_at = now()"
	    " WHERE username = $1" },
	[DB_STMT_USER_DISABLE] = { "ing_user_disable", 2,
	    "UPDATE users SET disabled = $2::boolean, updated_at = now()"
	    " WHERE username = $1" },
	[DB_STMT_USER_LIST] = { "ing_user_list", 0,
	    "SELECT username, NULL,"
	    " to_char(created_at AT TIME ZONE 'UTC', " DB_TIMESTAMP_FORMAT "),"
	    " disabled FROM users ORDER BY username" },
};

/* ------------------------------------------------------------------ */
/* The pool                                                            */
/* ------------------------------------------------------------------ */

struct db_conn {
	PGconn *pg;
	bool busy;
	bool prepared[DB_STMT_COUNT];
};

struct db_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* a connection was released */
	struct db_conn *conns;
	int n;

	char *conninfo;                /* secret: may hold a password */
	const char *source;
	char connect_timeout[16];
	int connect_timeout_s;
	int statement_timeout_ms;
	int acquire_timeout_ms;
	int retry_after_s;

	/* health, under mu */
	bool down;                     /* the last connection attempt failed */
	bool probing;                  /* one thread is trying to connect */
	int backoff_ms;
	int64_t next_attempt_ms;       /* monotonic; no attempt before this */
	int64_t last_ok_ms;            /* last successful round trip */
	bool warned_superuser;
};

/* One call's use of one connection. */
/* Connection waits a usage row may spend before it is given up (and logged). */
#define DB_USAGE_ATTEMPTS 3

struct db_call {
	struct db_pool *p;
	struct db_conn *c;
	const char *action;            /* "while saving a chat turn" */
	bool fresh;                    /* opened by this call */
	bool broken;                   /* the connection failed */
	bool probe;                    /* this call probes a down database */
	int round_trips;               /* successful so far */
	char sqlstate[6];              /* of the last failure */
};

typedef enum db_status (*db_work_fn)(struct db_call *call, void *arg, struct err *e);

static int64_t
db_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line of a libpq message, without "ERROR:  " and the newline,
 * copied into buf. */
static const char *
db_first_line(const char *msg, char *buf, size_t size)
{
	size_t n;

	if (msg == NULL || *msg == '\0')
		return "no message";
	if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	else if (strncmp(msg, "FATAL:  ", 8) == 0)
		msg += 8;
	n = strcspn(msg, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
	return buf;
}

struct db_pool *
db_pool_create(const struct config *cfg, struct err *e)
{
	struct db_pool *p;
	pthread_condattr_t ca;
	PQconninfoOption *opts;
	const char *source = NULL;
	char *url = NULL;
	char *perr = NULL;
	int size, ct;

	if (dburl_resolve(cfg, DBURL_ROLE_APP, &url, &source, e) < 0)
		return NULL;
	if (url[0] != '\0') {
		/* libpq's parse message may quote part of the string, which
		 * may be a password: say only that it is malformed. */
		opts = PQconninfoParse(url, &perr);
		if (opts == NULL) {
			if (perr != NULL)
				PQfreemem(perr);
			free(url);
			return err_set(e, 500, "could not parse the database connection "
			    "string from %s: not a valid libpq URI or key=value string",
			    source), NULL;
		}
		PQconninfoFree(opts);
	}

	p = xcalloc(1, sizeof(*p));
	size = cfg->chat_history.pool_size;
	if (size <= 0)
		size = DB_DEFAULT_POOL_SIZE;
	if (size > DB_MAX_POOL_SIZE)
		size = DB_MAX_POOL_SIZE;
	ct = cfg->chat_history.connect_timeout;
	if (ct <= 0)
		ct = DB_DEFAULT_CONNECT_S;
	if (ct < 2)
		ct = 2;     /* libpq's own minimum */
	p->n = size;
	p->conns = xcalloc((size_t)size, sizeof(*p->conns));
	p->conninfo = url;
	p->source = source;
	p->connect_timeout_s = ct;
	snprintf(p->connect_timeout, sizeof(p->connect_timeout), "%d", ct);
	p->statement_timeout_ms = cfg->chat_history.statement_timeout_ms > 0 ?
	    cfg->chat_history.statement_timeout_ms : 0;
	p->acquire_timeout_ms = ct * 1000;
	p->retry_after_s = cfg->server.retry_after > 0 ? cfg->server.retry_after : 1;
	p->backoff_ms = DB_BACKOFF_FIRST_MS;

	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

void
db_pool_destroy(struct db_pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++)
		if (p->conns[i].pg != NULL)
			PQfinish(p->conns[i].pg);
	free(p->conns);
	if (p->conninfo != NULL) {
		memset(p->conninfo, 0, strlen(p->conninfo));
		free(p->conninfo);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

const char *
db_pool_source(const struct db_pool *p)
{
	return p->source;
}

/* Forget a connection (caller holds the lock or owns the connection). */
static void
db_conn_close(struct db_conn *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
	memset(c->prepared, 0, sizeof(c->prepared));
}

/* After a broken connection: the idle ones are probably dead too. */
static void
db_close_idle_locked(struct db_pool *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (!p->conns[i].busy && p->conns[i].pg != NULL)
			db_conn_close(&p->conns[i]);
}

static void
db_mark_down_locked(struct db_pool *p, const char *why)
{
	int64_t now = db_now_ms();

	if (!p->down) {
		log_error("while connecting to the database",
		    "database unavailable: %s", why);
		p->backoff_ms = DB_BACKOFF_FIRST_MS;
	} else {
		log_debug("while connecting to the database",
		    "database still unavailable: %s", why);
		p->backoff_ms *= 2;
		if (p->backoff_ms > DB_BACKOFF_MAX_MS)
			p->backoff_ms = DB_BACKOFF_MAX_MS;
	}
	p->down = true;
	p->next_attempt_ms = now + p->backoff_ms;
	db_close_idle_locked(p);
}

static void
db_mark_up_locked(struct db_pool *p)
{
	if (p->down)
		log_info("while connecting to the database", "database available again");
	p->down = false;
	p->backoff_ms = DB_BACKOFF_FIRST_MS;
	p->last_ok_ms = db_now_ms();
}

/* Open c->pg.  Returns 0, or -1 with `e` set (503) and *why filled. */
static int
db_conn_open(struct db_pool *p, struct db_conn *c, char *why, size_t whysize,
    struct err *e)
{
	/* Earlier keywords are overridden by what the URL (dbname, expanded)
	 * says; connect_timeout comes last so the configuration wins. */
	const char *keys[] = {
		"application_name", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "dbname",
		"connect_timeout", NULL
	};
	const char *vals[] = {
		DB_APPLICATION_NAME, "1", "30", "10", "3", p->conninfo,
		p->connect_timeout, NULL
	};
	PGresult *res;
	char sql[64];
	const char *su;
	bool warn;

	c->pg = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		db_first_line(PQerrorMessage(c->pg), why, whysize);
		db_conn_close(c);
		return err_set(e, 503, "database unavailable");
	}
	memset(c->prepared, 0, sizeof(c->prepared));
	/* A SET rather than `options`, so a URL with its own options keeps
	 * the configured statement timeout too. */
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d", p->statement_timeout_ms);
	res = PQexec(c->pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		db_first_line(PQresultErrorMessage(res), why, whysize);
		PQclear(res);
		db_conn_close(c);
		return err_set(e, 503, "database unavailable");
	}
	PQclear(res);
	su = PQparameterStatus(c->pg, "is_superuser");
	if (su != NULL && strcmp(su, "on") == 0) {
		pthread_mutex_lock(&p->mu);
		warn = !p->warned_superuser;
		p->warned_superuser = true;
		pthread_mutex_unlock(&p->mu);
		if (warn)
			log_warn("while connecting to the database",
			    "connected as a superuser: the server should use the "
			    "ingenious_app role (docs/dba.md)");
	}
	return 0;
}

/*
 * Take a connection for `call`, opening it if needed.  Fails at once with
 * 503 while the database is known down (unless this call is the probe), and
 * after acquire_timeout_ms when every connection is busy.
 */
static int
db_acquire(struct db_pool *p, struct db_call *call, bool wait, struct err *e)
{
	struct db_conn *c = NULL;
	struct timespec deadline;
	char why[256];
	int64_t now;
	int i, rc;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->acquire_timeout_ms / 1000;
	deadline.tv_nsec += (long)(p->acquire_timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->down) {
			now = db_now_ms();
			if (now < p->next_attempt_ms || p->probing) {
				pthread_mutex_unlock(&p->mu);
				return err_set(e, 503, "database unavailable");
			}
		}
		/* prefer an open idle connection, then any idle one */
		for (i = 0; i < p->n; i++)
			if (!p->conns[i].busy && p->conns[i].pg != NULL) {
				c = &p->conns[i];
				break;
			}
		if (c == NULL)
			for (i = 0; i < p->n; i++)
				if (!p->conns[i].busy) {
					c = &p->conns[i];
					break;
				}
		if (c != NULL)
			break;
		if (!wait) {
			pthread_mutex_unlock(&p->mu);
			return err_set(e, 503, "database busy: no free connection");
		}
		rc = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
		if (rc == ETIMEDOUT) {
			pthread_mutex_unlock(&p->mu);
			log_warn(call->action, "no free database connection after %d ms "
			    "(chat_history.pool_size %d)", p->acquire_timeout_ms, p->n);
			return err_set(e, 503, "database busy: no free connection");
		}
	}
	c->busy = true;
	if (p->down) {
		p->probing = true;
		call->probe = true;
	}
	pthread_mutex_unlock(&p->mu);

	call->c = c;
	if (c->pg == NULL) {
		if (db_conn_open(p, c, why, sizeof(why), e) < 0) {
			pthread_mutex_lock(&p->mu);
			c->busy = false;
			if (call->probe)
				p->probing = false;
			db_mark_down_locked(p, why);
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
			call->c = NULL;
			return -1;
		}
		call->fresh = true;
		pthread_mutex_lock(&p->mu);
		if (call->probe)
			p->probing = false;
		call->probe = false;
		db_mark_up_locked(p);
		pthread_mutex_unlock(&p->mu);
	}
	return 0;
}

/* Give the connection back: roll back an open transaction, close it if it
 * broke (and the idle ones with it), wake a waiter. */
static void
db_release(struct db_pool *p, struct db_call *call)
{
	struct db_conn *c = call->c;
	PGresult *res;

	if (c == NULL)
		return;
	if (!call->broken && c->pg != NULL &&
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
		res = PQexec(c->pg, "ROLLBACK");
		if (PQresultStatus(res) != PGRES_COMMAND_OK ||
		    PQtransactionStatus(c->pg) != PQTRANS_IDLE)
			call->broken = true;
		PQclear(res);
	}
	if (!call->broken && c->pg != NULL && PQstatus(c->pg) != CONNECTION_OK)
		call->broken = true;

	pthread_mutex_lock(&p->mu);
	if (call->broken) {
		db_conn_close(c);
		db_close_idle_locked(p);
	} else if (call->round_trips > 0) {
		db_mark_up_locked(p);   /* also ends an outage a probe ran into */
	}
	if (call->probe)
		p->probing = false;
	c->busy = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	call->c = NULL;
}

/* Classify a failed result (res may be NULL), log it, set `e`. */
static void
db_fail(struct db_call *call, PGresult *res, const char *what, struct err *e)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *table = res != NULL ? PQresultErrorField(res, PG_DIAG_TABLE_NAME) : NULL;
	const char *cons = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	const char *primary = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[256];
	struct log_field f[3];
	size_t nf = 0;

	if (state == NULL)
		state = "";
	snprintf(call->sqlstate, sizeof(call->sqlstate), "%s", state);
	if (call->c->pg == NULL || PQstatus(call->c->pg) != CONNECTION_OK ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0)
		call->broken = true;

	f[nf++] = LOG_STR("sqlstate", state);
	if (table != NULL)
		f[nf++] = LOG_STR("table", table);
	if (cons != NULL)
		f[nf++] = LOG_STR("constraint", cons);

	if (call->broken) {
		db_first_line(call->c->pg != NULL ? PQerrorMessage(call->c->pg) : NULL,
		    line, sizeof(line));
		log_emit(LOG_LEVEL_ERROR, call->action, f, nf,
		    "could not %s: connection lost: %s", what, line);
		err_set(e, 503, "database unavailable");
		return;
	}
	/* Data exceptions and integrity violations may quote values (a
	 * prompt, an id): log their code and constraint, not their text. */
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		log_emit(LOG_LEVEL_ERROR, call->action, f, nf,
		    "could not %s: the database refused a value", what);
	else
		log_emit(LOG_LEVEL_ERROR, call->action, f, nf, "could not %s: %s",
		    what, db_first_line(primary, line, sizeof(line)));

	if (strncmp(state, "53", 2) == 0 || strcmp(state, "57014") == 0 ||
	    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0 || strcmp(state, "57P03") == 0)
		err_set(e, 503, "database busy");
	else if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0 ||
	    strcmp(state, "42883") == 0)
		err_set(e, 500, "database schema missing or out of date "
		    "(run `ingen db migrate`)");
	else if (strcmp(state, "42501") == 0)
		err_set(e, 500, "database permission denied "
		    "(check the grants of the server's role)");
	else
		err_set(e, 500, "database error");
}

/*
 * Run prepared statement `st`; returns its result (the caller PQclears) or
 * NULL with `e` set.  A failure with SQLSTATE `quiet` (NULL: none) is an
 * outcome the caller handles rather than an error: it is not logged, `e` is
 * left alone, and *hit is set.
 */
static PGresult *
db_exec_quiet(struct db_call *call, enum db_stmt st, const char *const *values,
    const char *quiet, bool *hit, struct err *e)
{
	const struct db_stmt_def *d = &db_stmts[st];
	PGconn *pg = call->c->pg;
	PGresult *res;
	ExecStatusType s;
	const char *state;

	if (hit != NULL)
		*hit = false;
	if (!call->c->prepared[st]) {
		res = PQprepare(pg, d->name, d->sql, d->nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			db_fail(call, res, "prepare a statement", e);
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		call->c->prepared[st] = true;
		call->round_trips++;
	}
	res = PQexecPrepared(pg, d->name, d->nparams, values, NULL, NULL, 0);
	s = PQresultStatus(res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (quiet != NULL && state != NULL && strcmp(state, quiet) == 0 &&
		    PQstatus(pg) == CONNECTION_OK) {
			snprintf(call->sqlstate, sizeof(call->sqlstate), "%s", state);
			call->round_trips++;
			if (hit != NULL)
				*hit = true;
		} else {
			db_fail(call, res, "run a statement", e);
		}
		PQclear(res);
		return NULL;
	}
	call->round_trips++;
	return res;
}

static PGresult *
db_exec(struct db_call *call, enum db_stmt st, const char *const *values,
    struct err *e)
{
	return db_exec_quiet(call, st, values, NULL, NULL, e);
}

/* Acquire, work, release; retry once when the first round trip found a
 * stale connection (e.g. after a database restart). */
static enum db_status
db_run(struct db_pool *p, const char *action, db_work_fn fn, void *arg,
    struct err *e)
{
	struct db_call call;
	enum db_status rc;
	int attempt;

	for (attempt = 0; ; attempt++) {
		memset(&call, 0, sizeof(call));
		call.p = p;
		call.action = action;
		if (db_acquire(p, &call, true, e) < 0)
			return DB_ERROR;
		rc = fn(&call, arg, e);
		db_release(p, &call);
		if (rc == DB_ERROR && call.broken && call.round_trips == 0 &&
		    !call.fresh && attempt == 0) {
			log_info(action, "retrying on a new database connection");
			err_clear(e);
			continue;
		}
		return rc;
	}
}

static enum db_status
db_ping_work(struct db_call *call, void *arg, struct err *e)
{
	PGresult *res = db_exec(call, DB_STMT_PING, NULL, e);

	(void)arg;
	if (res == NULL)
		return DB_ERROR;
	PQclear(res);
	return DB_OK;
}

bool
db_ready(struct db_pool *p)
{
	struct db_call call;
	struct err e;
	enum db_status rc;
	int64_t now = db_now_ms();
	bool known;

	pthread_mutex_lock(&p->mu);
	if (p->down && (now < p->next_attempt_ms || p->probing)) {
		pthread_mutex_unlock(&p->mu);
		return false;
	}
	known = !p->down && p->last_ok_ms != 0 && now - p->last_ok_ms < DB_PING_INTERVAL_MS;
	pthread_mutex_unlock(&p->mu);
	if (known)
		return true;

	err_clear(&e);
	memset(&call, 0, sizeof(call));
	call.p = p;
	call.action = "while checking the database";
	if (db_acquire(p, &call, false, &e) < 0) {
		/* every connection busy means it works; down means it does not */
		pthread_mutex_lock(&p->mu);
		known = !p->down;
		pthread_mutex_unlock(&p->mu);
		return known;
	}
	rc = db_ping_work(&call, NULL, &e);
	db_release(p, &call);
	if (rc == DB_OK)
		return true;
	if (call.broken && !call.fresh) {
		/* a stale connection; the next check reconnects at once */
		return db_run(p, "while checking the database", db_ping_work, NULL,
		    &e) == DB_OK;
	}
	return false;
}

int
db_retry_after(struct db_pool *p)
{
	int64_t left;
	int s;

	pthread_mutex_lock(&p->mu);
	if (p->down) {
		left = p->next_attempt_ms - db_now_ms();
		s = left > 0 ? (int)((left + 999) / 1000) : 1;
	} else {
		s = p->retry_after_s;
	}
	pthread_mutex_unlock(&p->mu);
	return s < 1 ? 1 : s;
}

void
db_new_uuid(char out[DB_UUID_LEN])
{
	uuid_v4(out);
}

/* ------------------------------------------------------------------ */
/* Copying results into the caller's arena                             */
/* ------------------------------------------------------------------ */

static const char *
db_val(PGresult *res, int row, int col, struct arena *a)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return arena_strndup(a, PQgetvalue(res, row, col),
	    (size_t)PQgetlength(res, row, col));
}

static int
db_bool(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return -1;
	return PQgetvalue(res, row, col)[0] == 't' ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Turns                                                               */
/* ------------------------------------------------------------------ */

/*
 * A turn is ONE statement, the call of ingenious_save_turn()
 * (sql/004_save_turn.sql), sent outside any explicit transaction: the
 * statement's implicit transaction is the turn's, so every row of it
 * commits together or none does, and PQexecPrepared returns only after the
 * server has committed it (the ReadyForQuery that follows the commit), so
 * the 2xx still goes out after COMMIT.  The function does what nine round
 * trips did before (BEGIN, claim and key, thread insert, thread lock and
 * seq allocation, one insert per message, summary, usage link, COMMIT), in
 * the same order and under the same row lock.  Its outcomes: saved;
 * replayed (the key was there: nothing written, the stored reply returned,
 * read with a snapshot taken after the wait for its holder); replay_missing
 * (the key row vanished: read it once more in a new transaction); SQLSTATE
 * DB_SQLSTATE_NOT_OWNER (raised, so the whole turn is rolled back).
 */
#define DB_SQLSTATE_NOT_OWNER "IG404"

struct db_turn_job {
	const struct db_turn *t;
	struct arena *a;
	struct db_turn_result *out;
	const char *thread_id;
	const char **ids;
	const char *reply_id;
	const char *values[21];        /* the parameters of DB_STMT_SAVE_TURN */
	char reply_status[16];
};

static enum db_status
db_replay_fetch(struct db_call *call, const char *owner, const char *key,
    struct arena *a, struct db_idempotent *out, struct err *e)
{
	const char *v[2] = { owner, key };
	PGresult *res = db_exec(call, DB_STMT_IDEM_GET, v, e);

	if (res == NULL)
		return DB_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return DB_NOT_FOUND;
	}
	out->status = atoi(PQgetvalue(res, 0, 0));
	out->body = db_val(res, 0, 1, a);
	out->request_hash = db_val(res, 0, 2, a);
	out->thread_id = db_val(res, 0, 3, a);
	out->message_id = db_val(res, 0, 4, a);
	PQclear(res);
	return DB_OK;
}

/*
 * A one-dimensional array literal of the n strings of v, for a text[],
 * uuid[] or jsonb[] parameter: every element double-quoted with " and \
 * escaped, so any text survives (commas, braces, blanks, quotes), and a NULL
 * pointer as NULL.  Lives in `a`.
 */
static const char *
db_array_literal(struct arena *a, const char *const *v, size_t n)
{
	const char *q;
	size_t i, len = 2;
	char *s, *w;

	for (i = 0; i < n; i++) {
		len += 1;                       /* the comma */
		if (v[i] == NULL) {
			len += 4;
			continue;
		}
		len += 2;
		for (q = v[i]; *q != '\0'; q++)
			len += (*q == '"' || *q == '\\') ? 2 : 1;
	}
	s = w = arena_alloc(a, len + 1);
	*w++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*w++ = ',';
		if (v[i] == NULL) {
			memcpy(w, "NULL", 4);
			w += 4;
			continue;
		}
		*w++ = '"';
		for (q = v[i]; *q != '\0'; q++) {
			if (*q == '"' || *q == '\\')
				*w++ = '\\';
			*w++ = *q;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return s;
}

static enum db_status
db_turn_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_turn_job *j = arg;
	const struct db_turn *t = j->t;
	struct db_idempotent idem;
	PGresult *res;
	const char *outcome;
	bool not_owner;
	enum db_status rc;

	res = db_exec_quiet(call, DB_STMT_SAVE_TURN, j->values,
	    DB_SQLSTATE_NOT_OWNER, &not_owner, e);
	if (res == NULL)
		return not_owner ? DB_NOT_OWNER : DB_ERROR;
	if (PQntuples(res) != 1 || PQnfields(res) != 8 || PQgetisnull(res, 0, 0) ||
	    PQtransactionStatus(call->c->pg) != PQTRANS_IDLE) {
		PQclear(res);
		log_error(call->action, "could not save the turn: unexpected reply "
		    "of ingenious_save_turn");
		return err_set(e, 500, "database error"), DB_ERROR;
	}
	outcome = PQgetvalue(res, 0, 0);
	if (strcmp(outcome, "saved") == 0) {
		j->out->thread_id = j->thread_id;
		j->out->message_ids = j->ids;
		j->out->n_message_ids = t->n_messages;
		j->out->reply_id = j->reply_id;
		j->out->first_seq = atoi(PQgetvalue(res, 0, 1));
		j->out->new_thread = PQgetvalue(res, 0, 2)[0] == 't';
		PQclear(res);
		return DB_OK;
	}
	memset(&idem, 0, sizeof(idem));
	if (strcmp(outcome, "replayed") == 0) {
		idem.status = atoi(PQgetvalue(res, 0, 3));
		idem.body = db_val(res, 0, 4, j->a);
		idem.request_hash = db_val(res, 0, 5, j->a);
		idem.thread_id = db_val(res, 0, 6, j->a);
		idem.message_id = db_val(res, 0, 7, j->a);
		PQclear(res);
	} else {
		/* replay_missing: purged after the conflict, or not yet
		 * visible; a look in a new transaction decides */
		PQclear(res);
		rc = db_replay_fetch(call, t->owner, t->idempotency_key, j->a,
		    &idem, e);
		if (rc == DB_ERROR)
			return DB_ERROR;
		if (rc == DB_NOT_FOUND) {
			/* purged between the two statements: a retry will do */
			return err_set(e, 503, "database busy"), DB_ERROR;
		}
	}
	j->out->replay_status = idem.status;
	j->out->replay_body = idem.body;
	j->out->replay_request_hash = idem.request_hash;
	j->out->thread_id = idem.thread_id;
	j->out->reply_id = idem.message_id;
	return DB_REPLAYED;
}

enum db_status
db_save_turn(struct db_pool *p, const struct db_turn *t, struct arena *a,
    struct db_turn_result *out, struct err *e)
{
	struct db_turn_job j;
	const struct db_message *m;
	const char *col[8][DB_TURN_MAX_MESSAGES];
	char uuid[DB_UUID_LEN];
	const char **v;
	size_t i, len, cap;
	char *s;

	memset(out, 0, sizeof(*out));
	if (t->owner == NULL || t->owner[0] == '\0' || t->flow == NULL ||
	    t->flow[0] == '\0')
		return err_set(e, 500, "could not save the turn: owner and flow "
		    "are required"), DB_ERROR;
	/* the limits of sql/001_schema.sql, as client errors */
	if (t->thread_id != NULL &&
	    (t->thread_id[0] == '\0' || strlen(t->thread_id) > DB_THREAD_ID_MAX))
		return err_set(e, 400, "thread_id must be 1 to %d characters",
		    DB_THREAD_ID_MAX), DB_ERROR;
	if (strlen(t->owner) > DB_OWNER_MAX || strlen(t->flow) > DB_FLOW_MAX)
		return err_set(e, 400, "user or flow name too long"), DB_ERROR;
	if (t->idempotency_key != NULL && (t->idempotency_key[0] == '\0' ||
	    strlen(t->idempotency_key) > DB_IDEMPOTENCY_KEY_MAX))
		return err_set(e, 400, "Idempotency-Key must be 1 to %d characters",
		    DB_IDEMPOTENCY_KEY_MAX), DB_ERROR;
	if (t->n_messages == 0 || t->n_messages > DB_TURN_MAX_MESSAGES ||
	    t->reply_index >= t->n_messages)
		return err_set(e, 500, "could not save the turn: %zu messages, "
		    "reply %zu", t->n_messages, t->reply_index), DB_ERROR;
	if (t->idempotency_key != NULL && t->reply_body == NULL)
		return err_set(e, 500, "could not save the turn: an idempotency "
		    "key needs the reply body"), DB_ERROR;
	if (t->idempotency_claim != NULL && t->idempotency_key == NULL)
		return err_set(e, 500, "could not save the turn: a claim "
		    "needs its idempotency key"), DB_ERROR;
	for (i = 0; i < t->n_messages; i++) {
		if (t->messages[i].role == NULL)
			return err_set(e, 500, "could not save the turn: message %zu "
			    "has no role", i), DB_ERROR;
		if (t->messages[i].id != NULL && !uuid_valid(t->messages[i].id))
			return err_set(e, 500, "could not save the turn: message %zu "
			    "id is not a uuid", i), DB_ERROR;
	}

	/* Every id is fixed here, before the first attempt: if db_run retries
	 * on a fresh connection after the first one broke, a turn that did
	 * commit cannot be written twice (messages.id is the primary key; with
	 * a key, the retry replays it). */
	memset(&j, 0, sizeof(j));
	j.t = t;
	j.a = a;
	j.out = out;
	if (t->thread_id != NULL) {
		j.thread_id = t->thread_id;
	} else {
		db_new_uuid(uuid);
		j.thread_id = arena_strdup(a, uuid);
	}
	j.ids = arena_alloc(a, t->n_messages * sizeof(*j.ids));
	for (i = 0; i < t->n_messages; i++) {
		m = &t->messages[i];
		if (m->id != NULL) {
			j.ids[i] = m->id;
		} else {
			db_new_uuid(uuid);
			j.ids[i] = arena_strdup(a, uuid);
		}
		/* the columns of messages, one array each, in thread order */
		col[0][i] = j.ids[i];
		col[1][i] = m->role;
		col[2][i] = m->agent_name;
		col[3][i] = m->content != NULL ? m->content : "";
		col[4][i] = m->tool_calls;
		col[5][i] = m->tool_call_id;
		col[6][i] = m->tool_call_function;
		col[7][i] = m->content_filter_results;
	}
	j.reply_id = j.ids[t->reply_index];

	v = j.values;
	v[0] = j.thread_id;
	v[1] = t->owner;
	v[2] = t->enforce_owner ? "true" : "false";
	v[3] = t->flow;
	v[4] = t->user_id;
	for (i = 0; i < 8; i++)
		v[5 + i] = db_array_literal(a, col[i], t->n_messages);
	v[13] = j.reply_id;
	v[14] = t->memory_summary != NULL && t->memory_summary[0] != '\0' ?
	    t->memory_summary : NULL;
	v[15] = NULL;
	if (t->n_usage_ids > 0) {
		/* "{1,2,3}": 21 characters per id at most */
		cap = t->n_usage_ids * 21 + 3;
		s = arena_alloc(a, cap);
		len = 0;
		s[len++] = '{';
		for (i = 0; i < t->n_usage_ids; i++)
			len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64,
			    i > 0 ? "," : "", t->usage_ids[i]);
		s[len++] = '}';
		s[len] = '\0';
		v[15] = s;
	}
	v[16] = t->idempotency_key;
	v[17] = t->idempotency_key != NULL ? t->request_hash : NULL;
	snprintf(j.reply_status, sizeof(j.reply_status), "%d", t->reply_status);
	v[18] = t->idempotency_key != NULL ? j.reply_status : NULL;
	v[19] = t->idempotency_key != NULL ? t->reply_body : NULL;
	v[20] = t->idempotency_claim;
	return db_run(p, "while saving a chat turn", db_turn_work, &j, e);
}

/* ------------------------------------------------------------------ */
/* Usage                                                               */
/* ------------------------------------------------------------------ */

struct db_usage_job {
	const struct db_usage *u;
	int64_t id;
};

static enum db_status
db_usage_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_usage_job *j = arg;
	const struct db_usage *u = j->u;
	char num[6][16];
	const char *v[13];
	PGresult *res;

	snprintf(num[0], sizeof(num[0]), "%d", u->prompt_tokens);
	snprintf(num[1], sizeof(num[1]), "%d", u->completion_tokens);
	snprintf(num[2], sizeof(num[2]), "%d", u->total_tokens);
	snprintf(num[3], sizeof(num[3]), "%d", u->latency_ms < 0 ? 0 : u->latency_ms);
	snprintf(num[4], sizeof(num[4]), "%d", u->http_status);
	snprintf(num[5], sizeof(num[5]), "%d", u->retries < 0 ? 0 : u->retries);
	v[0] = u->request_id;
	v[1] = u->user_id;
	v[2] = u->thread_id;
	v[3] = u->flow;
	v[4] = u->agent_name;
	v[5] = u->model;
	v[6] = u->deployment;
	v[7] = num[0];
	v[8] = num[1];
	v[9] = num[2];
	v[10] = num[3];
	v[11] = u->http_status > 0 ? num[4] : NULL;
	v[12] = num[5];
	res = db_exec(call, DB_STMT_USAGE_INSERT, v, e);
	if (res == NULL)
		return DB_ERROR;
	j->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return DB_OK;
}

int
db_record_usage(struct db_pool *p, const struct db_usage *u, int64_t *id_out,
    struct err *e)
{
	struct db_usage_job j = { u, 0 };
	struct log_field f[7];
	enum db_status ds;
	int attempt;

	/*
	 * A billed call deserves more patience than a read: when every
	 * connection is busy (503), try again, up to DB_USAGE_ATTEMPTS waits
	 * for a connection.  A database known to be down fails each attempt
	 * at once, so this adds no wait then.
	 */
	for (attempt = 1;; attempt++) {
		ds = db_run(p, "while recording llm usage", db_usage_work, &j, e);
		if (ds == DB_OK || attempt >= DB_USAGE_ATTEMPTS || e == NULL ||
		    e->status != 503)
			break;
	}
	if (ds != DB_OK) {
		/* The row is lost: keep what billing needs in the log. */
		f[0] = LOG_STR("user", u->user_id);
		f[1] = LOG_STR("thread", u->thread_id);
		f[2] = LOG_STR("model", u->model);
		f[3] = LOG_STR("deployment", u->deployment);
		f[4] = LOG_INT("prompt_tokens", u->prompt_tokens);
		f[5] = LOG_INT("completion_tokens", u->completion_tokens);
		f[6] = LOG_INT("total_tokens", u->total_tokens);
		log_emit(LOG_LEVEL_ERROR, "while recording llm usage", f, 7,
		    "llm usage not recorded: %s", e != NULL ? e->msg : "error");
		return -1;
	}
	if (id_out != NULL)
		*id_out = j.id;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Idempotency                                                         */
/* ------------------------------------------------------------------ */

struct db_idem_job {
	const char *owner, *key;
	struct arena *a;
	struct db_idempotent *out;
};

static enum db_status
db_idem_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_idem_job *j = arg;

	return db_replay_fetch(call, j->owner, j->key, j->a, j->out, e);
}

enum db_status
db_idempotency_get(struct db_pool *p, const char *owner, const char *key,
    struct arena *a, struct db_idempotent *out, struct err *e)
{
	struct db_idem_job j = { owner, key, a, out };

	memset(out, 0, sizeof(*out));
	return db_run(p, "while looking up an idempotency key", db_idem_work, &j, e);
}

struct db_claim_job {
	const char *owner, *key, *token;
	int stale_ms;
};

/* One autocommitted INSERT, so that every other worker sees the claim at
 * once; a stale claim is deleted and the INSERT tried once more. */
static enum db_status
db_claim_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_claim_job *j = arg;
	const char *v[3] = { j->owner, j->key, j->token };
	const char *x[3] = { j->owner, j->key, NULL };
	char ms[16];
	PGresult *res;
	bool done;
	int attempt;

	snprintf(ms, sizeof(ms), "%d", j->stale_ms < 0 ? 0 : j->stale_ms);
	x[2] = ms;
	for (attempt = 0; attempt < 2; attempt++) {
		res = db_exec(call, DB_STMT_IDEM_CLAIM, v, e);
		if (res == NULL)
			return DB_ERROR;
		done = strcmp(PQcmdTuples(res), "1") == 0;
		PQclear(res);
		if (done)
			return DB_OK;
		if (attempt > 0)
			break;
		res = db_exec(call, DB_STMT_IDEM_EXPIRE, x, e);
		if (res == NULL)
			return DB_ERROR;
		done = strcmp(PQcmdTuples(res), "1") == 0;
		PQclear(res);
		if (!done)
			break;
		log_warn(call->action, "took over an idempotency key whose turn "
		    "did not finish");
	}
	return DB_EXISTS;
}

enum db_status
db_idempotency_claim(struct db_pool *p, const char *owner, const char *key,
    const char *token, int stale_ms, struct err *e)
{
	struct db_claim_job j = { owner, key, token, stale_ms };

	if (key == NULL || key[0] == '\0' || strlen(key) > DB_IDEMPOTENCY_KEY_MAX)
		return err_set(e, 400, "Idempotency-Key must be 1 to %d characters",
		    DB_IDEMPOTENCY_KEY_MAX), DB_ERROR;
	return db_run(p, "while claiming an idempotency key", db_claim_work, &j, e);
}

static enum db_status
db_release_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_claim_job *j = arg;
	const char *v[3] = { j->owner, j->key, j->token };
	PGresult *res = db_exec(call, DB_STMT_IDEM_RELEASE, v, e);

	if (res == NULL)
		return DB_ERROR;
	PQclear(res);
	return DB_OK;
}

int
db_idempotency_release(struct db_pool *p, const char *owner, const char *key,
    const char *token, struct err *e)
{
	struct db_claim_job j = { owner, key, token, 0 };

	return db_run(p, "while releasing an idempotency key", db_release_work,
	    &j, e) == DB_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Reading threads                                                     */
/* ------------------------------------------------------------------ */

struct db_thread_job {
	const char *thread_id, *owner;
	int limit;
	struct arena *a;
	struct db_history *out;
};

static enum db_status
db_thread_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_thread_job *j = arg;
	struct db_message *m;
	char lim[16];
	const char *v[2] = { j->thread_id, lim };
	PGresult *res;
	int rows, r;

	snprintf(lim, sizeof(lim), "%d", j->limit);
	res = db_exec(call, DB_STMT_THREAD_MESSAGES, v, e);
	if (res == NULL)
		return DB_ERROR;
	rows = PQntuples(res);
	if (rows == 0) {
		PQclear(res);
		return DB_OK;
	}
	if (j->owner != NULL && strcmp(PQgetvalue(res, 0, 0), j->owner) != 0) {
		PQclear(res);
		return DB_NOT_OWNER;
	}
	j->out->exists = true;
	j->out->memory = db_val(res, 0, 1, j->a);
	j->out->messages = arena_zalloc(j->a, (size_t)rows * sizeof(*m));
	for (r = 0; r < rows; r++) {
		if (PQgetisnull(res, r, 2))
			continue;     /* the thread has no message yet */
		m = &j->out->messages[j->out->n++];
		m->id = db_val(res, r, 2, j->a);
		m->thread_id = arena_strdup(j->a, j->thread_id);
		m->seq = atoi(PQgetvalue(res, r, 3));
		m->user_id = db_val(res, r, 4, j->a);
		m->role = db_val(res, r, 5, j->a);
		m->agent_name = db_val(res, r, 6, j->a);
		m->content = db_val(res, r, 7, j->a);
		m->tool_calls = db_val(res, r, 8, j->a);
		m->tool_call_id = db_val(res, r, 9, j->a);
		m->tool_call_function = db_val(res, r, 10, j->a);
		m->content_filter_results = db_val(res, r, 11, j->a);
		m->positive_feedback = db_bool(res, r, 12);
		m->created_at = db_val(res, r, 13, j->a);
	}
	PQclear(res);
	return DB_OK;
}

enum db_status
db_thread_history(struct db_pool *p, const char *thread_id, const char *owner,
    int limit, struct arena *a, struct db_history *out, struct err *e)
{
	struct db_thread_job j = { thread_id, owner, limit, a, out };

	memset(out, 0, sizeof(*out));
	if (thread_id == NULL)
		return err_set(e, 500, "could not read the thread: no thread id"),
		    DB_ERROR;
	if (j.limit <= 0)
		j.limit = 1;
	if (j.limit > DB_HISTORY_MAX)
		j.limit = DB_HISTORY_MAX;
	return db_run(p, "while reading a thread", db_thread_work, &j, e);
}

enum db_status
db_thread_messages(struct db_pool *p, const char *thread_id, const char *owner,
    int limit, struct arena *a, struct db_message **out, size_t *n,
    struct err *e)
{
	struct db_history h;
	enum db_status rc;

	*out = NULL;
	*n = 0;
	rc = db_thread_history(p, thread_id, owner, limit, a, &h, e);
	if (rc == DB_OK) {
		*out = h.messages;
		*n = h.n;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Feedback                                                            */
/* ------------------------------------------------------------------ */

struct db_feedback_job {
	const char *message_id, *thread_id, *user_id, *owner;
	int positive;
};

static enum db_status
db_feedback_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_feedback_job *j = arg;
	const char *find[2] = { j->message_id, j->thread_id };
	const char *set[3] = { j->message_id, j->thread_id,
	    j->positive < 0 ? NULL : j->positive ? "true" : "false" };
	PGresult *res;

	res = db_exec(call, DB_STMT_FEEDBACK_FIND, find, e);
	if (res == NULL)
		return DB_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return DB_NOT_FOUND;
	}
	if (j->owner != NULL && strcmp(PQgetvalue(res, 0, 1), j->owner) != 0) {
		PQclear(res);
		return DB_NOT_OWNER;
	}
	if (strcmp(PQgetvalue(res, 0, 0), j->user_id != NULL ? j->user_id : "") != 0) {
		PQclear(res);
		return DB_USER_MISMATCH;
	}
	PQclear(res);
	res = db_exec(call, DB_STMT_FEEDBACK_SET, set, e);
	if (res == NULL)
		return DB_ERROR;
	PQclear(res);
	return DB_OK;
}

enum db_status
db_feedback(struct db_pool *p, const char *message_id, const char *thread_id,
    const char *user_id, const char *owner, int positive, struct err *e)
{
	struct db_feedback_job j = { message_id, thread_id, user_id, owner, positive };

	/* messages.id is a uuid: anything else cannot name a message */
	if (message_id == NULL || thread_id == NULL || !uuid_valid(message_id))
		return DB_NOT_FOUND;
	return db_run(p, "while storing feedback", db_feedback_work, &j, e);
}

/* ------------------------------------------------------------------ */
/* Users                                                               */
/* ------------------------------------------------------------------ */

struct db_user_job {
	enum db_stmt st;
	const char *v[2];
	struct arena *a;
	struct db_user *one;
	struct db_user **many;
	size_t *n;
};

static enum db_status
db_user_work(struct db_call *call, void *arg, struct err *e)
{
	struct db_user_job *j = arg;
	struct db_user *u;
	PGresult *res;
	int r, rows;

	res = db_exec(call, j->st, j->v, e);
	if (res == NULL) {
		if (j->st == DB_STMT_USER_ADD && strcmp(call->sqlstate, "23514") == 0)
			err_set(e, 400, "invalid username: use 1 to 128 of "
			    "A-Z a-z 0-9 . _ @ -");
		return DB_ERROR;
	}
	switch (j->st) {
	case DB_STMT_USER_ADD:
		r = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_EXISTS;
		PQclear(res);
		return r;
	case DB_STMT_USER_SET_PASSWORD:
	case DB_STMT_USER_DISABLE:
		r = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_NOT_FOUND;
		PQclear(res);
		return r;
	default:
		break;
	}
	rows = PQntuples(res);
	if (j->one != NULL && rows == 0) {
		PQclear(res);
		return DB_NOT_FOUND;
	}
	if (j->many != NULL)
		*j->many = arena_zalloc(j->a, (size_t)(rows > 0 ? rows : 1) * sizeof(*u));
	for (r = 0; r < rows; r++) {
		u = j->one != NULL ? j->one : &(*j->many)[r];
		u->username = db_val(res, r, 0, j->a);
		u->password_hash = db_val(res, r, 1, j->a);
		u->created_at = db_val(res, r, 2, j->a);
		u->disabled = db_bool(res, r, 3) == 1;
		if (j->one != NULL)
			break;
	}
	if (j->n != NULL)
		*j->n = (size_t)rows;
	PQclear(res);
	return DB_OK;
}

bool
db_user_name_valid(const char *name)
{
	size_t n;

	for (n = 0; name[n] != '\0'; n++) {
		char c = name[n];

		if (n >= DB_USER_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
		    c == '-'))
			return false;
	}
	return n > 0;
}

enum db_status
db_user_add(struct db_pool *p, const char *username, const char *password_hash,
    struct err *e)
{
	struct db_user_job j = { DB_STMT_USER_ADD, { username, password_hash },
	    NULL, NULL, NULL, NULL };

	return db_run(p, "while adding a user", db_user_work, &j, e);
}

enum db_status
db_user_get(struct db_pool *p, const char *username, struct arena *a,
    struct db_user *out, struct err *e)
{
	struct db_user_job j = { DB_STMT_USER_GET, { username, NULL }, a, out,
	    NULL, NULL };

	memset(out, 0, sizeof(*out));
	return db_run(p, "while reading a user", db_user_work, &j, e);
}

enum db_status
db_user_set_password(struct db_pool *p, const char *username,
    const char *password_hash, struct err *e)
{
	struct db_user_job j = { DB_STMT_USER_SET_PASSWORD,
	    { username, password_hash }, NULL, NULL, NULL, NULL };

	return db_run(p, "while changing a password", db_user_work, &j, e);
}

enum db_status
db_user_disable(struct db_pool *p, const char *username, bool disabled,
    struct err *e)
{
	struct db_user_job j = { DB_STMT_USER_DISABLE,
	    { username, disabled ? "true" : "false" }, NULL, NULL, NULL, NULL };

	return db_run(p, "while disabling a user", db_user_work, &j, e);
}

int
db_user_list(struct db_pool *p, struct arena *a, struct db_user **out,
    size_t *n, struct err *e)
{
	struct db_user_job j = { DB_STMT_USER_LIST, { NULL, NULL }, a, NULL,
	    out, n };

	*out = NULL;
	*n = 0;
	return db_run(p, "while listing users", db_user_work, &j, e) == DB_OK ?
	    0 : -1;
}

/* ------------------------------------------------------------------ */
/* Sessions (command line)                                             */
/* ------------------------------------------------------------------ */

struct db_session {
	PGconn *pg;
	char *user;
	char *dbname;
};

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
	const char *vals[] = { "ingen-cli", conninfo != NULL ? conninfo : "",
	    NULL, NULL };
	struct db_session *s;
	PQconninfoOption *opts;
	char ct[16], line[256];
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
	snprintf(ct, sizeof(ct), "%d", connect_timeout > 0 ? connect_timeout : 10);
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
	s->dbname = xstrdup(PQdb(pg));
	return s;
}

void
db_session_close(struct db_session *s)
{
	if (s == NULL)
		return;
	PQfinish(s->pg);
	free(s->user);
	free(s->dbname);
	free(s);
}

const char *
db_session_user(const struct db_session *s)
{
	return s->user;
}

const char *
db_session_dbname(const struct db_session *s)
{
	return s->dbname;
}

/* Run one command; on failure `e` gets "could not <what>: <server message>"
 * (the operator's terminal, not a client). */
static int
db_session_exec(struct db_session *s, const char *sql, const char *what,
    struct err *e)
{
	PGresult *res = PQexec(s->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	char line[256];

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err_set(e, PQstatus(s->pg) == CONNECTION_OK ? 500 : 503,
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
	char line[256];
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
		err_set(e, 500, "could not read schema_migrations: %s",
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
	char ver[16], line[256], where[64];
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
		err_set(e, 500, "could not apply %s%s: %s%s%s%s%s", name, where,
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
		err_set(e, 500, "could not record %s in schema_migrations: %s", name,
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
		PQclear(res);
		return err_set(e, 500, "could not read pg_roles");
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
		PQclear(res);
		return err_set(e, 500, "could not read pg_database");
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
