/*
 * conn.h -- client connections of a worker: accept, read, parse, deadlines,
 * dispatch to handlers (through the exchange, exchange.h), write,
 * keep-alive, pipelining (in order), streaming.  Every function here runs
 * on the worker's event-loop thread only.
 */
#ifndef INGEN_CONN_H
#define INGEN_CONN_H

#include <stdbool.h>
#include <stdint.h>

struct worker;
struct conn;
struct http_exchange;

/* epoll user data tags: the data pointer of every descriptor in the
 * worker's epoll set points at one of these (the first field of a struct
 * conn, or a tag of the worker), and the loop dispatches on it. */
enum conn_tag {
	CONN_TAG_LISTEN = 1,
	CONN_TAG_EVENTFD,
	CONN_TAG_SIGNALFD,
	CONN_TAG_CLIENT,
};

/* Accept what is pending on the listening socket (up to a batch). */
void conn_accept(struct worker *w);

/* Start accepting again if accepting was paused (max_connections, or the
 * balance across workers) and the reason is gone.  Event-loop thread; called
 * when a connection closes and on every loop tick. */
void conn_accept_update(struct worker *w);

/* React to epoll events on a client connection. */
void conn_on_event(struct conn *c, uint32_t events);

/* An exchange came back from a flow thread (finished or with stream bytes;
 * never a deferred one, which the exchange keeps on its timer). */
void conn_on_exchange(struct http_exchange *x);

/* Enforce header, body, keep-alive and write deadlines. */
void conn_sweep(struct worker *w, int64_t now_ms);

/* Stop accepting and drain: responses get Connection: close; idle
 * connections are closed now (graceful = false) or after their next
 * request or their keep-alive deadline (graceful = true, for reloads). */
void conn_drain(struct worker *w, bool graceful);

/* Free the connections closed since the last call (after each batch of
 * events, when no caller can hold their pointers any more). */
void conn_reap(struct worker *w);

#endif
