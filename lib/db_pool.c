/*
 * db_pool.c -- the connection pool of a worker: its connections, its health
 * (up, down with a backoff, probing), the classification of failures, and
 * the discipline every call of the layer runs under (db_run, db_exec).
 *
 * It owns the pool's mutex and state, the mapping of libpq's failures to
 * 503/500 (db_failure_classify: one rule for every statement of every
 * route), and the connection settings.  It never runs a statement of its
 * own but the ping, never puts the connection string, SQL text, or a
 * server message that may contain data into an error message, and never
 * logs the connection string.
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
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/db_int.h"
#include "lib/dburl.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define DB_DEFAULT_POOL_SIZE    4
#define DB_MAX_POOL_SIZE        64
#define DB_DEFAULT_CONNECT_S    5
#define DB_MIN_CONNECT_S        2      /* libpq's own minimum */
#define DB_BACKOFF_FIRST_MS     250
#define DB_BACKOFF_MAX_MS       5000
#define DB_PING_INTERVAL_MS     1000
#define DB_SETTLE_SPINS         256    /* then yield: db_waiter_settle */
#if defined(__x86_64__) || defined(__i386__)
#define DB_CPU_RELAX()          __builtin_ia32_pause()
#elif defined(__aarch64__)
#define DB_CPU_RELAX()          __asm__ __volatile__("yield")
#else
#define DB_CPU_RELAX()          ((void)0)
#endif
#define DB_APPLICATION_NAME     "ingenious"
/* TCP keepalives: probe after 30 s idle, every 10 s, give up after 3 */
#define DB_KEEPALIVES_IDLE_S    "30"
#define DB_KEEPALIVES_INTERVAL_S "10"
#define DB_KEEPALIVES_COUNT     "3"

/*
 * A thread waiting for a connection.  Waiters queue in arrival order and a
 * released connection goes to the oldest one: with thousands of turns in
 * flight and a handful of connections, a condition variable alone let new
 * arrivals barge in while some waiters starved until their timeout (and a
 * broadcast would wake them all for one connection).  Each waiter sleeps on
 * its own condition variable, on its own stack.
 */
struct db_waiter {
	pthread_cond_t cv;
	struct db_waiter *next;
	bool queued;                   /* still in the pool's queue */
	int64_t since_ms;              /* when it queued (monotonic) */
	bool woken;                    /* a connection was set aside for it */
	int signalling;                /* atomic: its waker has yet to signal cv */
};

struct db_pool {
	pthread_mutex_t mu;
	struct db_waiter *wait_head, *wait_tail;   /* FIFO, under mu */
	int reserved;                  /* free connections set aside for woken waiters */
	struct db_conn *conns;
	int n;

	/* for db_pool_wait_estimate_ms, written under mu, read without it */
	int n_waiting;                 /* threads in the queue */
	int64_t head_since_ms;         /* when the oldest of them queued; 0: none */
	int64_t hold_us;               /* moving average of a call's hold time */
	uint64_t calls_done;           /* calls that gave their connection back */
	struct db_pool_stats stats;    /* for /metrics, atomics */

	char *conninfo;                /* secret: may hold a password */
	const char *source;
	char connect_timeout[DB_INT_TEXT];
	int connect_timeout_s;
	int statement_timeout_ms;
	int acquire_timeout_ms;
	int retry_after_s;

	/* health, written under mu; down and last_ok_ms also read without it
	 * (db_ready's fast path) */
	bool down;                     /* the last connection attempt failed */
	bool probing;                  /* one thread is trying to connect */
	int backoff_ms;
	int64_t next_attempt_ms;       /* monotonic; no attempt before this */
	int64_t last_ok_ms;            /* last successful round trip */
	bool warned_superuser;
};

static const struct db_stmt_def db_stmt_ping = {
	DB_STMT_PING, "ing_ping", 0, "SELECT 1"
};


const char *
db_first_line(const char *msg, char *buf, size_t size)
{
	static const char error_tag[] = "ERROR:  ", fatal_tag[] = "FATAL:  ";
	size_t n;

	if (msg == NULL || *msg == '\0')
		return "no message";
	if (strncmp(msg, error_tag, sizeof(error_tag) - 1) == 0)
		msg += sizeof(error_tag) - 1;
	else if (strncmp(msg, fatal_tag, sizeof(fatal_tag) - 1) == 0)
		msg += sizeof(fatal_tag) - 1;
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
	if (ct < DB_MIN_CONNECT_S)
		ct = DB_MIN_CONNECT_S;
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
	int64_t now = clock_now_ms();

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
	__atomic_store_n(&p->down, true, __ATOMIC_RELAXED);
	p->next_attempt_ms = now + p->backoff_ms;
	db_close_idle_locked(p);
}

static void
db_mark_up_locked(struct db_pool *p)
{
	if (p->down)
		log_info("while connecting to the database", "database available again");
	__atomic_store_n(&p->down, false, __ATOMIC_RELAXED);
	p->backoff_ms = DB_BACKOFF_FIRST_MS;
	__atomic_store_n(&p->last_ok_ms, clock_now_ms(), __ATOMIC_RELAXED);
}

/* Open c->pg.  Returns 0, or -1 with `e` set (503) and *why filled. */
static int
db_conn_open(struct db_pool *p, struct db_conn *c, char *why, size_t whysize,
    struct err *e)
{
	/* Earlier keywords are overridden by what the URL (dbname, expanded)
	 * says; connect_timeout comes last so the configuration wins.
	 * gssencmode: see DB_GSSENCMODE. */
	const char *keys[] = {
		"application_name", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "gssencmode",
		"dbname", "connect_timeout", NULL
	};
	const char *vals[] = {
		DB_APPLICATION_NAME, "1", DB_KEEPALIVES_IDLE_S,
		DB_KEEPALIVES_INTERVAL_S, DB_KEEPALIVES_COUNT, DB_GSSENCMODE,
		p->conninfo, p->connect_timeout, NULL
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
	 * the configured statement timeout too.  No JIT: the pool's statements
	 * run for milliseconds, and compiling one took 250 ms once its plan's
	 * estimates passed jit_above_cost (bench/console.sh at 10 million
	 * usage rows: the calls per prompt version, 480 ms with JIT, 31 without). */
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d; SET jit = off",
	    p->statement_timeout_ms);
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
/* After the queue's head changed: publish when the new head queued. */
static void
db_head_changed_locked(struct db_pool *p)
{
	__atomic_store_n(&p->head_since_ms,
	    p->wait_head != NULL ? p->wait_head->since_ms : 0, __ATOMIC_RELAXED);
}

/*
 * Take the oldest waiter off the queue and set a free connection aside for
 * it; NULL if none waits.  The caller signals it with db_waiter_signal()
 * once it has unlocked mu: signalled under mu, the waiter woke only to
 * sleep again on the mutex (two more futex calls and a context switch a
 * handoff, on every turn that queued).  Until that signal is done the
 * waiter does not leave (db_waiter_settle), so its condition variable, on
 * its stack, outlives the signal.
 */
static struct db_waiter *
db_wake_next_locked(struct db_pool *p)
{
	struct db_waiter *w = p->wait_head;

	if (w == NULL)
		return NULL;
	p->wait_head = w->next;
	if (p->wait_head == NULL)
		p->wait_tail = NULL;
	w->next = NULL;
	w->queued = false;
	__atomic_store_n(&p->n_waiting, p->n_waiting - 1, __ATOMIC_RELAXED);
	db_head_changed_locked(p);
	w->woken = true;
	__atomic_store_n(&w->signalling, 1, __ATOMIC_RELAXED);
	p->reserved++;
	return w;
}

/* Signal a waiter db_wake_next_locked() took, with mu unlocked; the
 * waiter may be gone as soon as signalling reads 0. */
static void
db_waiter_signal(struct db_waiter *w)
{
	if (w == NULL)
		return;
	pthread_cond_signal(&w->cv);
	__atomic_store_n(&w->signalling, 0, __ATOMIC_RELEASE);
}

/* Called by a woken waiter, mu held, before its cv is reused or goes: wait
 * for its waker to finish signalling (a few microseconds at most: the
 * waker has unlocked mu and is inside pthread_cond_signal). */
static void
db_waiter_settle(struct db_waiter *w)
{
	int spins = 0;

	while (__atomic_load_n(&w->signalling, __ATOMIC_ACQUIRE) != 0) {
		if (++spins < DB_SETTLE_SPINS)
			DB_CPU_RELAX();
		else
			sched_yield();   /* the waker was preempted */
	}
}

/* Wake every waiter: the pool went down, they must fail fast. */
static void
db_wake_all_locked(struct db_pool *p)
{
	while (p->wait_head != NULL)
		db_waiter_signal(db_wake_next_locked(p));   /* rare: mu held */
}

static void
db_unqueue_locked(struct db_pool *p, struct db_waiter *w)
{
	struct db_waiter **pp, *prev = NULL;

	for (pp = &p->wait_head; *pp != NULL; prev = *pp, pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			if (p->wait_tail == w)
				p->wait_tail = prev;
			break;
		}
	w->queued = false;
	__atomic_store_n(&p->n_waiting, p->n_waiting - 1, __ATOMIC_RELAXED);
	db_head_changed_locked(p);
}

/* A free connection this caller may take: none while older waiters queue
 * or while free ones are set aside for woken waiters (unless `woken`). */
static struct db_conn *
db_free_conn_locked(struct db_pool *p, bool woken)
{
	struct db_conn *c = NULL;
	int i, nfree = 0;

	if (!woken && p->wait_head != NULL)
		return NULL;
	/* prefer an open idle connection, then any idle one */
	for (i = 0; i < p->n; i++)
		if (!p->conns[i].busy) {
			nfree++;
			if (c == NULL || (c->pg == NULL && p->conns[i].pg != NULL))
				c = &p->conns[i];
		}
	if (!woken && nfree <= p->reserved)
		return NULL;
	return c;
}

/*
 * Take a connection for `call`, opening it if needed.  Fails at once with
 * 503 while the database is known down (unless this call is the probe), and
 * after acquire_timeout_ms when every connection is busy.  Waiters are
 * served in arrival order (struct db_waiter).
 */
static int
db_acquire(struct db_pool *p, struct db_call *call, bool wait, struct err *e)
{
	struct db_conn *c = NULL;
	struct db_waiter me;
	pthread_condattr_t ca;
	struct timespec deadline;
	char why[DB_LINE_MAX];
	bool woken = false;
	int64_t now;
	int rc = 0;

	clock_abs_after(&deadline, p->acquire_timeout_ms);

	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->down) {
			now = clock_now_ms();
			if (now < p->next_attempt_ms || p->probing) {
				struct db_waiter *next = woken ? db_wake_next_locked(p) : NULL;

				pthread_mutex_unlock(&p->mu);   /* pass the turn on */
				db_waiter_signal(next);
				return err_set(e, 503, "database unavailable");
			}
		}
		if ((c = db_free_conn_locked(p, woken)) != NULL)
			break;
		if (woken) {
			/* woken with the others when the pool went down: queue again */
			woken = false;
		}
		if (!wait || rc == ETIMEDOUT) {
			pthread_mutex_unlock(&p->mu);
			if (rc == ETIMEDOUT)
				__atomic_add_fetch(&p->stats.timeouts, 1, __ATOMIC_RELAXED);
			if (rc == ETIMEDOUT)
				log_warn(call->action, "no free database connection after %d ms "
				    "(chat_history.pool_size %d)", p->acquire_timeout_ms, p->n);
			return err_set(e, 503, "database busy: no free connection");
		}
		memset(&me, 0, sizeof(me));
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&me.cv, &ca);
		pthread_condattr_destroy(&ca);
		me.queued = true;
		me.since_ms = clock_now_ms();
		__atomic_store_n(&p->n_waiting, p->n_waiting + 1, __ATOMIC_RELAXED);
		if (p->wait_tail != NULL)
			p->wait_tail->next = &me;
		else
			p->wait_head = &me;
		p->wait_tail = &me;
		db_head_changed_locked(p);
		while (!me.woken && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&me.cv, &p->mu, &deadline);
		if (me.queued)
			db_unqueue_locked(p, &me);
		db_waiter_settle(&me);
		pthread_cond_destroy(&me.cv);
		__atomic_add_fetch(&p->stats.waits, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&p->stats.wait_us,
		    (uint64_t)(clock_now_ms() - me.since_ms) * 1000, __ATOMIC_RELAXED);
		if (me.woken) {
			/* a connection was set aside for us, even if we also timed out */
			p->reserved--;
			woken = true;
			rc = 0;
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
			__atomic_add_fetch(&p->stats.errors, 1, __ATOMIC_RELAXED);
			pthread_mutex_lock(&p->mu);
			c->busy = false;
			if (call->probe)
				p->probing = false;
			db_mark_down_locked(p, why);
			db_wake_all_locked(p);
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
	/* the hold time of db_pool_drain_ms starts here: opening a connection
	 * (tens of ms, once) is not what each call costs */
	call->acquired_us = clock_now_us();
	return 0;
}

/* Give the connection back: roll back an open transaction, close it if it
 * broke (and the idle ones with it), wake a waiter. */
static void
db_release(struct db_pool *p, struct db_call *call)
{
	struct db_conn *c = call->c;
	struct db_waiter *next;
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
	__atomic_store_n(&p->calls_done, p->calls_done + 1, __ATOMIC_RELAXED);
	if (call->acquired_us > 0) {
		/* an eighth of each new sample: a few hundred calls of memory */
		int64_t held = clock_now_us() - call->acquired_us;

		__atomic_store_n(&p->hold_us, p->hold_us == 0 ? held :
		    p->hold_us + (held - p->hold_us) / 8, __ATOMIC_RELAXED);
	}
	if (call->broken) {
		db_conn_close(c);
		db_close_idle_locked(p);
	} else if (call->round_trips > 0) {
		db_mark_up_locked(p);   /* also ends an outage a probe ran into */
	}
	if (call->probe)
		p->probing = false;
	c->busy = false;
	next = db_wake_next_locked(p);
	pthread_mutex_unlock(&p->mu);
	db_waiter_signal(next);
	call->c = NULL;
}

/* ------------------------------------------------------------------ */
/* What a failure means                                                */
/* ------------------------------------------------------------------ */

enum db_failure
db_failure_classify(const char *sqlstate, bool connection_ok)
{
	/*
	 * No SQLSTATE means libpq made the error itself: the server closed the
	 * socket, a send failed, the reply was cut.  libpq may report a failed
	 * send while PQstatus still says CONNECTION_OK (it learns that the
	 * connection is gone only on its next read), so a missing SQLSTATE is
	 * enough, whatever the status says.
	 */
	if (!connection_ok || sqlstate == NULL || sqlstate[0] == '\0' ||
	    strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P0", 4) == 0)
		return DB_FAILURE_UNAVAILABLE;
	if (strncmp(sqlstate, "53", 2) == 0 || strcmp(sqlstate, "57014") == 0 ||
	    strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
	    strcmp(sqlstate, "55P03") == 0)
		return DB_FAILURE_BUSY;
	if (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "42703") == 0 ||
	    strcmp(sqlstate, "42883") == 0)
		return DB_FAILURE_SCHEMA;
	if (strcmp(sqlstate, "42501") == 0)
		return DB_FAILURE_PERMISSION;
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0)
		return DB_FAILURE_VALUE;
	return DB_FAILURE_OTHER;
}

int
db_failure_status(enum db_failure f)
{
	return f == DB_FAILURE_UNAVAILABLE || f == DB_FAILURE_BUSY ? 503 : 500;
}

enum db_failure
db_failure_of(const PGresult *res, const PGconn *pg)
{
	return db_failure_classify(res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL,
	    pg != NULL && PQstatus(pg) == CONNECTION_OK);
}

/* Log a failed result (res may be NULL), set `e`, and mark the connection
 * broken when the failure says it is. */
static void
db_fail(struct db_call *call, PGresult *res, const char *what, struct err *e)
{
	PGconn *pg = call->c->pg;
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *table = res != NULL ? PQresultErrorField(res, PG_DIAG_TABLE_NAME) : NULL;
	const char *cons = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	const char *primary = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	enum db_failure f = db_failure_of(res, pg);
	const char *msg;

	if (call->p != NULL)
		__atomic_add_fetch(&call->p->stats.errors, 1, __ATOMIC_RELAXED);
	char line[DB_LINE_MAX];
	struct log_field lf[3];
	size_t nf = 0;

	if (state == NULL)
		state = "";
	snprintf(call->sqlstate, sizeof(call->sqlstate), "%s", state);
	lf[nf++] = LOG_STR("sqlstate", state);
	if (table != NULL)
		lf[nf++] = LOG_STR("table", table);
	if (cons != NULL)
		lf[nf++] = LOG_STR("constraint", cons);

	switch (f) {
	case DB_FAILURE_UNAVAILABLE:
		call->broken = true;
		/* libpq's words: the connection's, else the result's */
		msg = pg != NULL ? PQerrorMessage(pg) : NULL;
		if ((msg == NULL || msg[0] == '\0') && res != NULL)
			msg = PQresultErrorMessage(res);
		log_emit(LOG_LEVEL_ERROR, call->action, lf, nf,
		    "could not %s: connection lost: %s", what,
		    db_first_line(msg, line, sizeof(line)));
		err_set(e, 503, "database unavailable");
		return;
	case DB_FAILURE_VALUE:
		/* Data exceptions and integrity violations may quote values (a
		 * prompt, an id): log their code and constraint, not their text. */
		log_emit(LOG_LEVEL_ERROR, call->action, lf, nf,
		    "could not %s: the database refused a value", what);
		break;
	default:
		log_emit(LOG_LEVEL_ERROR, call->action, lf, nf, "could not %s: %s",
		    what, db_first_line(primary, line, sizeof(line)));
		break;
	}
	switch (f) {
	case DB_FAILURE_BUSY:
		err_set(e, 503, "database busy");
		break;
	case DB_FAILURE_SCHEMA:
		err_set(e, 500, "database schema missing or out of date "
		    "(run `ingen db migrate`)");
		break;
	case DB_FAILURE_PERMISSION:
		err_set(e, 500, "database permission denied "
		    "(check the grants of the server's role)");
		break;
	default:
		err_set(e, db_failure_status(f), "database error");
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Running statements                                                  */
/* ------------------------------------------------------------------ */

PGresult *
db_exec_quiet(struct db_call *call, const struct db_stmt_def *d,
    const char *const *values, const char *quiet, bool *hit, struct err *e)
{
	PGconn *pg = call->c->pg;
	PGresult *res;
	ExecStatusType s;
	const char *state;

	if (hit != NULL)
		*hit = false;
	if (!call->c->prepared[d->slot]) {
		res = PQprepare(pg, d->name, d->sql, d->nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			db_fail(call, res, "prepare a statement", e);
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		call->c->prepared[d->slot] = true;
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

PGresult *
db_exec(struct db_call *call, const struct db_stmt_def *d,
    const char *const *values, struct err *e)
{
	return db_exec_quiet(call, d, values, NULL, NULL, e);
}

enum db_status
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
	PGresult *res = db_exec(call, &db_stmt_ping, NULL, e);

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
	int64_t now = clock_now_ms();
	int attempt;
	bool known;
	int64_t ok_ms;

	/* the common case, without the mutex every turn would take */
	ok_ms = __atomic_load_n(&p->last_ok_ms, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&p->down, __ATOMIC_RELAXED) && ok_ms != 0 &&
	    now - ok_ms < DB_PING_INTERVAL_MS)
		return true;

	pthread_mutex_lock(&p->mu);
	if (p->down && (now < p->next_attempt_ms || p->probing)) {
		pthread_mutex_unlock(&p->mu);
		return false;
	}
	known = !p->down && p->last_ok_ms != 0 && now - p->last_ok_ms < DB_PING_INTERVAL_MS;
	pthread_mutex_unlock(&p->mu);
	if (known)
		return true;

	/*
	 * Never wait in the queue of turns for a connection: a check that
	 * finds every connection busy (or set aside for a waiter) answers from
	 * what the pool knows.  A stale connection is tried once more, on a
	 * fresh one, under the same rule.
	 */
	for (attempt = 0; attempt < 2; attempt++) {
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
		if (!call.broken || call.fresh)
			break;
	}
	return false;
}

int64_t
db_pool_wait_estimate_ms(const struct db_pool *p)
{
	int waiting = __atomic_load_n(&p->n_waiting, __ATOMIC_RELAXED);
	int64_t hold_us = __atomic_load_n(&p->hold_us, __ATOMIC_RELAXED);

	if (waiting <= 0 || hold_us <= 0 || p->n <= 0)
		return 0;
	/* the queue drains n connections at a time, one hold each */
	return ((int64_t)waiting * hold_us / p->n + 999) / 1000;
}

int64_t
db_pool_oldest_wait_ms(const struct db_pool *p)
{
	int64_t since = __atomic_load_n(&p->head_since_ms, __ATOMIC_RELAXED);
	int64_t now = clock_now_ms();

	return since > 0 && now > since ? now - since : 0;
}

double
db_pool_capacity(const struct db_pool *p)
{
	int64_t hold_us = __atomic_load_n(&p->hold_us, __ATOMIC_RELAXED);

	return hold_us > 0 && p->n > 0 ? (double)p->n * 1e6 / (double)hold_us : 0.0;
}

uint64_t
db_pool_calls_done(const struct db_pool *p)
{
	return __atomic_load_n(&p->calls_done, __ATOMIC_RELAXED);
}

int
db_retry_after(struct db_pool *p)
{
	int64_t left;
	int s;

	pthread_mutex_lock(&p->mu);
	if (p->down) {
		left = p->next_attempt_ms - clock_now_ms();
		s = left > 0 ? (int)((left + 999) / 1000) : 1;
	} else {
		s = p->retry_after_s;
	}
	pthread_mutex_unlock(&p->mu);
	return s < 1 ? 1 : s;
}


/* ------------------------------------------------------------------ */
/* Copying results into the caller's arena                             */
/* ------------------------------------------------------------------ */

const char *
db_val(PGresult *res, int row, int col, struct arena *a)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return arena_strndup(a, PQgetvalue(res, row, col),
	    (size_t)PQgetlength(res, row, col));
}

int
db_bool(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return -1;
	return PQgetvalue(res, row, col)[0] == 't' ? 1 : 0;
}

void
db_pool_stats(const struct db_pool *p, struct db_pool_stats *out)
{
	out->errors = __atomic_load_n(&p->stats.errors, __ATOMIC_RELAXED);
	out->waits = __atomic_load_n(&p->stats.waits, __ATOMIC_RELAXED);
	out->wait_us = __atomic_load_n(&p->stats.wait_us, __ATOMIC_RELAXED);
	out->timeouts = __atomic_load_n(&p->stats.timeouts, __ATOMIC_RELAXED);
}
