/*
 * exchange.h -- one request and its response, as a route handler sees it.
 *
 * The event loop parses a request into a struct http_exchange and calls the
 * route's handler, on the loop itself for ROUTE_INLINE routes (which must
 * never block), otherwise on a flow thread.  The handler sets the response
 * with xchg_reply()/xchg_json()/xchg_detail() or streams it with
 * xchg_stream_*(); when the handler returns, the exchange goes back to the
 * loop, which writes what is left, logs the access line, counts metrics and
 * destroys the arena.  Everything a handler allocates for the request goes
 * into x->arena.  A handler that sets no response yields a 500.
 */
#ifndef INGEN_EXCHANGE_H
#define INGEN_EXCHANGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/uuid.h"
#include "lib/http.h"

struct worker;
struct conn;
struct http_exchange;

typedef void (*xchg_handler)(struct http_exchange *x);

/* Route flags. */
#define ROUTE_INLINE   0x1u   /* cheap and non-blocking: run on the event loop */
#define ROUTE_PUBLIC   0x2u   /* no authentication even when it is enabled */

#define XCHG_MAX_PARAMS   4
#define XCHG_MAX_HEADERS  12

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
	char request_id[129];
	char peer[64];                /* client address, for logs and throttling */
	bool peer_loopback;
	const char *user;             /* authenticated user, NULL when auth is off */
	struct arena *arena;
	struct worker *w;
	const struct config *cfg;

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
	bool client_gone;             /* the loop lost the client */
	size_t streamed_bytes;        /* handed to the connection (loop only) */

	/* loop-private */
	struct conn *conn;
	xchg_handler handler;
	bool on_pool;                 /* counted in the slot's in-flight gauge */
	struct http_exchange *next_done;
	int64_t start_us;
	bool done;                    /* handler returned */
};

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
 * word exactly carry the request id (DESIGN §3).  503 adds Retry-After. */
void xchg_error(struct http_exchange *x, int status, const char *detail);

/* xchg_error with an explicit Retry-After (seconds, >= 1), for a 503 or
 * 429 whose wait is known (the database's reconnect backoff, upstream). */
void xchg_error_retry(struct http_exchange *x, int status, const char *detail,
    int retry_after);

/* The reference's 422 envelope: {"error":{"code":"REQUEST_VALIDATION_ERROR",
 * "message":...,"correlation_id":<request id>,"details":[],"recoverable":false,
 * "recovery_suggestion":...}} (ingenious-api.md section 1.1). */
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

/* Microseconds of CLOCK_MONOTONIC. */
int64_t xchg_now_us(void);

#endif
