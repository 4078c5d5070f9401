/*
 * worker.h -- the state of one worker process, shared by its event loop and
 * its flow threads.  Created once after fork by proc_worker_main() (declared
 * in lib/proc.h, the only function of worker.c that others call); the
 * pieces that other modules add (database pool, LLM client, keys, flows)
 * hang here so handlers reach them as x->w->...
 */
#ifndef INGEN_WORKER_H
#define INGEN_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/scoreboard.h"
#include "worker/conn.h"
#include "worker/exchange.h"

struct pool;
struct conn;
struct db_pool;
struct db_sqlagent;
struct llm_client;
struct keys;
struct throttle;
struct registry;
struct http_exchange;
struct uj;

struct worker {
	const struct config *cfg;
	struct scoreboard *sb;
	struct sb_slot *slot;
	int slot_index;
	uint32_t generation;
	pid_t master_pid;

	int listen_fd;                /* -1 once we stopped accepting */
	enum conn_tag listen_tag;     /* CONN_TAG_LISTEN: listen_fd's epoll data */
	int epfd;
	int eventfd;                  /* flow threads -> loop wake-up */
	int signalfd;
	struct pool *pool;
	struct db_pool *db;           /* chat history, opened after fork */
	struct db_sqlagent *sqlagent; /* the SQL agent's database (lib/db_sqlagent.h),
	                               * opened after fork; NULL: not usable */
	struct llm_client *llm;       /* Azure OpenAI, created after fork */
	struct uj *usage_journal;     /* held llm_usage rows (usage.c), or NULL */
	char *usage_dir;              /* <state_dir>/usage-journal, or NULL */
	int64_t turn_lead_ms;         /* moving average: a turn's admission to its
	                               * save (worker_note_turn_lead) */
	double db_rate;               /* chat-history calls done per second:
	                               * the best of the last WORKER_DB_RATES
	                               * samples (conn_sweep) */
#define WORKER_DB_RATES 16
	double db_rates[WORKER_DB_RATES]; /* the samples, a ring */
	int db_rate_i;                /* its next slot */
	double db_rate_recent;        /* the mean of the last second's samples */
	uint64_t db_rate_calls;       /* db_pool_calls_done at the last sample */
	int64_t db_rate_ms;           /* ... and when */
	char *kb_dir;                 /* the local knowledge base's directory
	                               * (kbindex_server_dir), for the flows */
	const struct keys *keys;      /* JWT key ring (the master's, copied by fork) */
	const char *auth_password_hash;  /* of the configured user; "" when auth is off */
	struct throttle *throttle;    /* failed logins of every worker (shared memory) */
	const struct registry *flows; /* the generation's flows (the master's, copied by fork) */
	xchg_gate gate;               /* auth_request, or NULL when auth is off */

	/* exchanges handed back by flow threads, and parked ones (exchange.c) */
	struct xchg_queue xq;

	/* connections, for deadline sweeps and draining */
	struct conn *conns;
	struct conn *dead;            /* closed, freed by conn_reap() */
	int n_conns;
	bool accepting;
	bool draining;                /* stop accepting, finish, exit */
	bool graceful;                /* drain keep-alive connections politely */
	int64_t drain_deadline_ms;
	uint64_t recycle_after;       /* served requests before recycling; 0 = never */
	bool ready;                   /* can serve (ready endpoint) */
	int64_t hang_at_ms;           /* test fault worker_hang, else 0 */
	bool fatal;                   /* setup failed for good: exit PROC_EXIT_FATAL */
};

/* A turn reached its save this many ms after its request was read: the
 * moving average conn.c's admission uses (any thread). */
static inline void
worker_note_turn_lead(struct worker *w, int64_t ms)
{
	int64_t avg = __atomic_load_n(&w->turn_lead_ms, __ATOMIC_RELAXED);

	if (ms < 0)
		ms = 0;
	/* racy read-modify-write: a lost sample of an average is harmless */
	__atomic_store_n(&w->turn_lead_ms, avg == 0 ? ms : avg + (ms - avg) / 16,
	    __ATOMIC_RELAXED);
}

#endif
