/*
 * exchange.h -- one request and its response, as a route handler sees it.
 *
 * The event loop (conn.c) parses a request into a struct http_exchange and
 * calls the route's handler, on the loop itself for ROUTE_INLINE routes
 * (which must never block), otherwise on a flow thread through
 * xchg_submit(), which runs the authentication gate and then the handler.
 * The handler sets the response with xchg_reply()/xchg_json()/xchg_detail()
 * or streams it with xchg_stream_*(); when the handler returns, the
 * exchange goes back to the loop (the done queue), which writes what is
 * left, logs the access line, counts metrics and destroys the arena.
 * Everything a handler allocates for the request goes into x->arena.  A
 * handler that sets no response yields a 500.
 *
 * A handler (or the gate) may instead ask to run again later with
 * xchg_defer(): the exchange goes back to the loop, waits there on a timer
 * without holding a thread, and is queued for a flow thread again; x->runs
 * tells the second run from the first.
 *
 * A run on a flow thread has a deadline: flows.turn_timeout_ms from its
 * start, plus XCHG_DEADLINE_GRACE_MS for saving the turn.  A handler still
 * running past it is abandoned by the loop (xchg_abandon): the client gets
 * its 504 (or, on a stream, an error frame) from the loop, and the thread
 * keeps the exchange until it returns, if ever; then the exchange is freed
 * and what the handler produced is dropped.
 */
#ifndef INGEN_EXCHANGE_H
#define INGEN_EXCHANGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/uuid.h"
#include "lib/http.h"

struct usage_turn;

struct worker;
struct conn;
struct http_exchange;

typedef void (*xchg_handler)(struct http_exchange *x);

/*
 * The authentication gate of protected routes (auth_request when
 * authentication is on): 0 lets the handler run; -1 skips it, with the
 * response set or the exchange deferred (xchg_defer).  Flow threads.
 */
typedef int (*xchg_gate)(struct http_exchange *x);

/* Route flags. */
#define ROUTE_INLINE   0x1u   /* cheap and non-blocking: run on the event loop */
#define ROUTE_PUBLIC   0x2u   /* no authentication even when it is enabled */
/* ROUTE_INLINE | ROUTE_PUBLIC unless authentication is on and
 * web_configuration.authentication.metrics_require_auth: then the route goes
 * through the gate on a flow thread (/metrics) */
#define ROUTE_METRICS_AUTH 0x4u
/* a chat turn: refused at admission while the database is saturated
 * (server.db_wait_limit_ms) */
#define ROUTE_TURN     0x8u

#define XCHG_MAX_PARAMS   4
#define XCHG_MAX_HEADERS  12
#define XCHG_REQUEST_ID_MAX 128       /* characters of an adopted X-Request-ID */
#define XCHG_DEFER_MAX_MS 60000       /* longest xchg_defer() delay */
#define XCHG_DEADLINE_GRACE_MS 3000   /* after flows.turn_timeout_ms: the save */

/*
 * Where exchanges go back to the event loop: the done queue (filled by flow
 * threads, under `lock`, with a wake-up on `eventfd`) and the exchanges
 * parked on a timer by xchg_defer() (loop only).  One per worker, owned by
 * exchange.c.
 */
struct xchg_queue {
	pthread_mutex_t lock;
	struct http_exchange *done;   /* newest first, under lock */
	struct http_exchange *parked; /* loop only, unsorted (few) */
	/* loop only: queued for or running on a flow thread, abandoned ones
	 * included, until they come back for good (run_prev/run_next) */
	struct http_exchange *running;
	int eventfd;
};

struct http_exchange {
	/* the request (read-only for handlers) */
	struct http_request req;
	const char *body;             /* NUL-terminated copy, body_len bytes */
	size_t body_len;
	const char *param_names[XCHG_MAX_PARAMS];
	char *param_values[XCHG_MAX_PARAMS];   /* percent-decoded */
	int n_params;
	int route;                    /* metrics index, 0 = unmatched */
	unsigned route_flags;         /* ROUTE_* of the matched route */
	const char *route_name;
	char request_id[XCHG_REQUEST_ID_MAX + 1];
	char peer[64];                /* client address, for logs and throttling */
	bool peer_loopback;
	const char *user;             /* authenticated user, NULL when auth is off */
	struct arena *arena;
	struct worker *w;
	const struct config *cfg;
	struct usage_turn *usage;     /* the turn's held llm_usage rows, or NULL */

	/* the response (set by the handler) */
	int status;
	const char *content_type;
	struct buf resp;
	struct http_header headers[XCHG_MAX_HEADERS];
	int n_headers;
	bool replied;

	/* streaming: shared between the flow thread and the loop, under lock */
	pthread_mutex_t lock;
	pthread_cond_t drained;
	struct buf stream;            /* bytes produced, not yet taken by the loop */
	bool streaming;               /* head sent as chunked */
	bool stream_notified;         /* queued for the loop already */
	bool queued;                  /* on the done queue, not yet taken by the loop */
	bool client_gone;             /* the loop lost the client */
	/* wakes the model call under way, so that it sees client_gone now
	 * (xchg_waker_set; lib/llm's curl_multi_wakeup) */
	void (*wake)(void *h);
	void *wake_h;
	size_t streamed_bytes;        /* handed to the connection (loop only) */

	/* runs on a flow thread: 1 the first time, 2 after a deferral ... */
	unsigned runs;
	/* clock_now_ms() time past which the loop gives up on the run under
	 * way; 0 when none is (atomic: written by the flow thread) */
	int64_t deadline_ms;

	/* loop-private */
	struct conn *conn;
	xchg_handler handler;
	bool on_pool;                 /* counted in the slot's in-flight gauge */
	struct http_exchange *next_done;   /* done queue, or the parked list */
	int64_t start_us;
	int64_t wake_ms;              /* parked: when to run again */
	int defer_ms;                 /* set by xchg_defer on the flow thread */
	bool deferred;                /* handler returned, asks to run again */
	bool done;                    /* handler returned */
	struct http_exchange *run_prev, *run_next;   /* xchg_queue.running */
	bool on_run_list;
	bool abandoned;               /* past its deadline, the loop let it go */
	int64_t abandoned_ms;
};

/* ---- the event loop's side ------------------------------------------- */

/* Set up an empty queue that wakes the loop through `eventfd`. */
void xchg_queue_init(struct xchg_queue *q, int eventfd);

/*
 * A new exchange for a request arriving on connection `c` of worker `w`
 * from `peer` (copied): its arena, a fresh request id, the clock started.
 * Freed by xchg_destroy.  Event loop.
 */
struct http_exchange *xchg_create(struct worker *w, struct conn *c,
    const char *peer, bool loopback);

/* Free the exchange, its arena and its buffers.  NULL is allowed.  Event
 * loop, once no flow thread holds it. */
void xchg_destroy(struct http_exchange *x);

/* Adopt the client's X-Request-ID when it is 1..XCHG_REQUEST_ID_MAX
 * characters of [A-Za-z0-9._:-]; otherwise keep the generated one. */
void xchg_adopt_request_id(struct http_exchange *x);

/*
 * Queue the exchange for a flow thread with handler `handler`: the gate
 * (x->w->gate, unless the route is ROUTE_PUBLIC), then the handler.
 * Returns 0, or -1 when the flow queue is full (counted and logged; nothing
 * queued, the caller answers 503).  Event loop.
 */
int xchg_submit(struct http_exchange *x, xchg_handler handler) ING_WUR;

/*
 * The exchanges flow threads handed back since the last call, oldest
 * first, linked by next_done: each has stream bytes waiting or has finished
 * (x->done).  Exchanges that asked to be deferred are parked on their timer
 * instead and not returned.  Event loop.
 */
struct http_exchange *xchg_take_done(struct xchg_queue *q);

/*
 * Move the stream bytes the flow thread produced into `out` (or drop them
 * when `out` is NULL: the client is gone), let a writer blocked on a full
 * stream go on, and re-arm the hand-back.  Returns whether the handler has
 * returned.  Event loop.
 */
bool xchg_take_stream(struct http_exchange *x, struct buf *out);

/* The client went away: streaming writes fail from now on, a parked
 * exchange is not run again, and xchg_client_is_gone() says so to the flow
 * thread.  Event loop. */
void xchg_client_gone(struct http_exchange *x);

/*
 * Whether the run of `x` on a flow thread is past its deadline at `now_ms`
 * (and not abandoned yet).  Event loop.
 */
bool xchg_overdue(struct http_exchange *x, int64_t now_ms);

/*
 * Give up on an exchange whose handler is past its deadline: its client is
 * gone as far as the handler can tell (xchg_client_is_gone, failing
 * stream writes), it leaves its connection (x->conn = NULL) and stays with
 * its thread, counted as stuck on xchg_queue.running, until it is handed
 * back; then conn_on_exchange frees it.  Stream bytes the handler produced
 * before are moved to `out` (dropped when `out` is NULL).  Returns a new
 * exchange for the connection that carries what the loop needs to finish
 * the response (request id, method, path, keep-alive, route, clock, the
 * stream's status), or NULL when the handler returned meanwhile (nothing
 * done: it is on its way back).  Event loop.
 */
struct http_exchange *xchg_abandon(struct http_exchange *x, struct buf *out,
    int64_t now_ms);

/*
 * The end of a stream whose handler was abandoned at its deadline, into
 * `out`: for the event stream of /api/v1/chat/stream an error frame
 * ({"event":"error","data":null,"error":<msg>}, as the turn sends its own
 * failures), then the last chunk.  Event loop.
 */
void xchg_stream_fail(const struct http_exchange *x, struct buf *out,
    const char *msg);

/* The message of a run abandoned at its deadline, in the arena of `x`. */
const char *xchg_deadline_message(struct http_exchange *x);

/*
 * Queue the parked exchanges whose time has come (at now_ms) for a flow
 * thread again; one that cannot be queued (flow queue full, or its client
 * is gone) finishes with a 503 through the done queue.  Event loop.
 */
void xchg_wake_due(struct xchg_queue *q, int64_t now_ms);

/* Milliseconds until the next parked exchange is due, at most `cap_ms`
 * (also when none is parked), at least 0.  Event loop. */
int xchg_next_wake_ms(const struct xchg_queue *q, int64_t now_ms, int cap_ms);

/*
 * The headers every response carries (X-Request-ID, X-Processing-Time) and
 * the handler's, into h (room for XCHG_MAX_HEADERS + 2); returns how many.
 * The values stay valid until the next call on this thread.
 */
size_t xchg_response_headers(struct http_exchange *x, struct http_header *h);

/* ---- the handler's side ---------------------------------------------- */

/* Value of the path parameter `name`, or NULL. */
const char *xchg_param(const struct http_exchange *x, const char *name);

/* First value of request header `name`, or NULL. */
const char *xchg_header_in(const struct http_exchange *x, const char *name);

/* Add a response header (copied into the arena).  Ignored past the limit. */
void xchg_header(struct http_exchange *x, const char *name, const char *value);

/* Set a complete response.  `body` is copied. */
void xchg_reply(struct http_exchange *x, int status, const char *content_type,
    const char *body, size_t len);

/* A JSON response; `json` is a complete document. */
void xchg_json(struct http_exchange *x, int status, const char *json);

/* {"detail":"<text>"} exactly, as the reference's FastAPI bodies. */
void xchg_detail(struct http_exchange *x, int status, const char *detail);

/* {"detail":"<text>","request_id":"<id>"}: errors the reference does not
 * word exactly carry the request id (docs/architecture.md).  503 adds Retry-After. */
void xchg_error(struct http_exchange *x, int status, const char *detail);

/* xchg_error with an explicit Retry-After (seconds, >= 1), for a 503 or
 * 429 whose wait is known (the database's reconnect backoff, upstream). */
void xchg_error_retry(struct http_exchange *x, int status, const char *detail,
    int retry_after);

/* The reference's 422 envelope: {"error":{"code":"REQUEST_VALIDATION_ERROR",
 * "message":...,"correlation_id":<request id>,"details":[],"recoverable":false,
 * "recovery_suggestion":...}} (the Python product's API). */
void xchg_validation_error(struct http_exchange *x, const char *message,
    const char *suggestion);

/*
 * Streaming, from a flow thread only.  xchg_stream_begin sends the head with
 * chunked transfer coding; xchg_stream_write queues one piece of the body and
 * blocks while more than a bounded amount waits for a slow client.  Both
 * return -1 once the client is gone (the handler should stop working).  The
 * stream ends when the handler returns.
 */
int xchg_stream_begin(struct http_exchange *x, int status,
    const char *content_type);
int xchg_stream_write(struct http_exchange *x, const void *data, size_t len);

/*
 * Whether the client of the exchange went away (or the loop gave up on the
 * exchange at its deadline): its response will never be read, so the work
 * for it should stop.  Cheap (one uncontended lock), for polling: the
 * language-model calls of a turn pass it as llm_request.cancelled.  Any
 * thread.
 */
/* The model call under way on a flow thread: wake(h) is called (under the
 * exchange's lock, from the loop) when the client goes or the run is
 * abandoned, so the call stops at once.  One waker at a time: the last set
 * wins; clear passes the h it set, and clears only that one.  Any thread. */
void xchg_waker_set(struct http_exchange *x, void (*wake)(void *h), void *h);
void xchg_waker_clear(struct http_exchange *x, void *h);

bool xchg_client_is_gone(struct http_exchange *x);

/*
 * Start the deadline of the run again from now (flows.turn_timeout_ms plus
 * XCHG_DEADLINE_GRACE_MS), for a handler whose own deadline starts later
 * than the run (a turn's flow, after the turn waited for its
 * Idempotency-Key).  The run's start sets it anyway.  Flow threads only.
 */
void xchg_deadline_restart(struct http_exchange *x);

/*
 * Ask for the handler (and the gate before it) to run again in `delay_ms`
 * milliseconds (1..XCHG_DEFER_MAX_MS) instead of finishing now; the
 * caller returns without a response.  The wait is held on the event loop
 * (a timer), not on a thread.  Ignored once a response is set or a stream
 * has begun.  Flow threads only.
 */
void xchg_defer(struct http_exchange *x, int delay_ms);

#endif
