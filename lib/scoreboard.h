/*
 * scoreboard.h -- the shared-memory segment of the server (httpd scoreboard).
 *
 * The master creates it before forking.  Each worker writes only its own
 * slot (state, heartbeat, counters); the master writes the header and folds
 * the counters of a dead worker into `retired` before the slot is reused, so
 * Prometheus counters never go backwards.  /metrics in any worker reads every
 * slot.  All fields are updated with relaxed atomics: readers see values that
 * are each correct, not a snapshot across fields.
 */
#ifndef INGEN_SCOREBOARD_H
#define INGEN_SCOREBOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

#define SB_MAX_SLOTS     128     /* workers alive at once, old and new generations */
#define SB_MAX_ROUTES    48      /* route index 0 = unmatched */
#define SB_LAT_BUCKETS   15      /* see sb_latency_bounds_ms[] */
#define SB_RELOAD_ERROR  512     /* bytes of the last refused reload's reason */

/* The statuses we count individually; anything else lands in "other". */
#define SB_STATUS_CODES \
	X(200) X(201) X(204) X(307) X(400) X(401) X(403) X(404) X(405) X(406) \
	X(408) X(409) X(413) X(414) X(415) X(417) X(422) X(429) X(431) X(500) \
	X(501) X(502) X(503) X(504) X(505)

enum sb_status {
#define X(c) SB_STATUS_##c,
	SB_STATUS_CODES
#undef X
	SB_STATUS_OTHER,
	SB_STATUS_N
};

enum sb_state {
	SB_STATE_EMPTY = 0,
	SB_STATE_STARTING,       /* forked, initialising */
	SB_STATE_READY,          /* accepting */
	SB_STATE_DRAINING,       /* stopped accepting, finishing requests */
};

/* Model calls by flow, agent and model: a small table of each worker (the
 * keys come from the configuration, so they are few); the last entry takes
 * whatever does not fit, as flow="other". */
#define SB_LLM_KEYS  32
#define SB_LLM_NAME  48              /* bytes of a name, NUL included; longer is cut */
struct sb_llm {
	uint32_t used;                  /* 0 free, 1 being written, 2 ready */
	char flow[SB_LLM_NAME], agent[SB_LLM_NAME], model[SB_LLM_NAME];
	uint64_t calls, tokens, errors;
};

struct sb_counters {
	uint64_t requests[SB_MAX_ROUTES][SB_STATUS_N];
	uint64_t latency_bucket[SB_MAX_ROUTES][SB_LAT_BUCKETS]; /* not cumulative */
	uint64_t latency_sum_us[SB_MAX_ROUTES];
	uint64_t queue_rejections;
	uint64_t db_rejections;         /* turns refused: the database saturated */
	uint64_t admitted;              /* requests handed to a flow thread */
	uint64_t accept_pauses;         /* times a worker left accepting to the others */
	uint64_t connections_accepted;
	uint64_t llm_tokens;
	uint64_t llm_calls;
	uint64_t llm_errors;            /* model calls that failed (no answer) */
	uint64_t login_throttled;       /* logins refused 429 by the throttle */
	/* the chat-history pool's db_pool_stats, set by the worker's sweep
	 * (its pool counts from 0 as the slot does) */
	uint64_t db_errors;
	uint64_t db_waits;
	uint64_t db_wait_us;
	uint64_t db_timeouts;
	struct sb_llm llm[SB_LLM_KEYS];
};

struct sb_slot {
	pid_t pid;
	uint32_t generation;
	int state;                      /* enum sb_state */
	int64_t heartbeat_ms;           /* CLOCK_MONOTONIC ms of the last loop turn */
	int64_t started_ms;
	uint64_t served;                /* requests answered, for recycling */
	int64_t inflight;               /* requests being processed now */
	int64_t connections;            /* open connections now */
	/* the flow threads, refreshed by the worker every loop tick */
	int64_t flow_threads;           /* alive */
	int64_t flow_threads_busy;
	int64_t flow_queued;
	int64_t flow_limit;             /* most requests in flight: max threads + queue */
	int64_t flow_stuck;             /* threads still running a request abandoned at its deadline */
	int64_t upstream_idle;          /* kept curl handles between calls (llm_handles_idle) */
	int64_t accepting;              /* 1 while the worker takes new connections */
	int64_t db_wait_ms;             /* the chat-history pool's wait estimate */
	struct sb_counters c;
};

struct scoreboard {
	uint32_t magic;
	uint32_t generation;            /* current configuration generation */
	uint64_t worker_restarts;       /* workers respawned after an exit */
	uint64_t worker_crashes;        /* unexpected exits */
	uint64_t watchdog_kills;
	uint64_t reloads;
	uint64_t reload_failures;
	/* why the last reload was refused ("" before the first refusal): the
	 * master writes it between two increments of reload_error_seq (odd
	 * while it writes); read it with sb_reload_error() */
	uint32_t reload_error_seq;
	char reload_error[SB_RELOAD_ERROR];
	int64_t master_started_ms;
	struct sb_counters retired;     /* counters of workers that are gone */
	struct sb_slot slots[SB_MAX_SLOTS];
};

extern const double sb_latency_bounds_ms[SB_LAT_BUCKETS]; /* last is +Inf */

/* Map a shared anonymous segment; NULL with `e` set on failure.  Master only,
 * before the first fork. */
struct scoreboard *sb_create(struct err *e);
void sb_destroy(struct scoreboard *sb);

/* Claim a free slot for a new worker (master); -1 if all are taken. */
int sb_slot_claim(struct scoreboard *sb, pid_t pid, uint32_t generation);
/* Count model calls for (flow, agent, model) in c's table; any thread of
 * the worker that owns c (and the master folding a gone worker's). */
void sb_llm_add(struct sb_counters *c, const char *flow, const char *agent,
    const char *model, uint64_t calls, uint64_t tokens, uint64_t errors);

/* Fold a gone worker's counters into `retired` and free its slot (master). */
void sb_slot_release(struct scoreboard *sb, int slot);

/* Record why a reload was refused (master) / copy the last such reason
 * into out (any process; "" when none). */
void sb_reload_error_set(struct scoreboard *sb, const char *why);
void sb_reload_error(const struct scoreboard *sb, char *out, size_t n);

enum sb_status sb_status_index(int status);
int sb_status_code(enum sb_status s);

/* Relaxed atomic helpers used by writers and readers alike. */
static inline void sb_add(uint64_t *p, uint64_t v) { __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
static inline uint64_t sb_get(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sb_add_i(int64_t *p, int64_t v) { __atomic_add_fetch(p, v, __ATOMIC_RELAXED); }
static inline int64_t sb_get_i(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void sb_set(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void sb_set_i(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void sb_set_state(struct sb_slot *s, enum sb_state st) { __atomic_store_n(&s->state, (int)st, __ATOMIC_RELEASE); }
static inline int sb_get_state(const struct sb_slot *s) { return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE); }

/* Count one answered request (worker, event-loop thread). */
void sb_count_request(struct sb_slot *s, int route, int status, uint64_t dur_us);

#endif
