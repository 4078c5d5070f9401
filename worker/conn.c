/*
 * conn.c -- the life of a client connection on the event loop.
 *
 * It owns the connection objects, their buffers and their deadlines, and the
 * response serialisation: the state machine from accept to close.  It never
 * blocks: sockets are non-blocking and any handler that may block is handed
 * to the exchange (exchange.c), which runs the authentication gate and the
 * handler on a flow thread and gives the exchange back through the done
 * queue.  It never authenticates and never formats a handler's body beyond
 * the framing errors it answers itself.  A connection whose exchange is on a
 * flow thread (or parked on a timer) is never freed before the exchange
 * comes back (the thread may still write to it); it is only marked dead.
 *
 * One request at a time per connection: bytes of a pipelined request wait in
 * the input buffer until the previous response is written, which keeps the
 * responses in order.  After a framing error nothing more is read.
 *
 * A client that goes away while its request is with a flow thread (a
 * close, a reset) is noticed at once, not when its response fails to be
 * written: the connection is watched for EPOLLRDHUP then, and the exchange
 * is told (xchg_client_gone), which stops the turn's upstream calls.  See
 * conn_on_hangup for the half-closed client.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/db.h"
#include "lib/log.h"
#include "lib/scoreboard.h"
#include "lib/xmalloc.h"
#include "worker/conn.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

#define CONN_READ_CHUNK      16384
#define CONN_READ_BUDGET     (256 * 1024)   /* per wake-up, for fairness */
#define CONN_KEEP_BUF        4096           /* an idle connection's buffers keep
                                             * at most this much room */
#define CONN_ACCEPT_BATCH    128
#define CONN_RATE_GRACE_MS   5000           /* before body_min_rate applies */
#define CONN_LINGER_MS       2000           /* lingering close, at most */
#define CONN_LINGER_BYTES    (1024 * 1024)  /* discarded while lingering, at most */

enum conn_state {
	CONN_IDLE = 0,     /* between requests */
	CONN_HEAD,         /* part of a request head received */
	CONN_BODY,         /* reading the body */
	CONN_BUSY,         /* handler on a flow thread, or its exchange deferred */
	CONN_HOLD,         /* a 503 of overload, held before it is written */
	CONN_STREAM,       /* handler streaming its response */
	CONN_WRITE,        /* writing a complete response */
	CONN_LINGER,       /* response sent and write side shut: draining input */
};

struct conn {
	enum conn_tag tag;            /* first: epoll data points here */
	int fd;
	struct worker *w;
	struct conn *prev, *next;
	struct conn *next_dead;       /* on w->dead until conn_reap() */
	enum conn_state state;
	struct buf in, out;
	struct http_head_state hs;
	struct http_exchange *x;
	int64_t since_ms;             /* start of the current state */
	int64_t io_ms;                /* last byte moved */
	uint32_t events;              /* registered epoll events */
	bool want_close;              /* close once `out` is written */
	bool dead;                    /* fd closed, exchange still out */
	bool registered;
	bool request_line_seen;
	bool half_closed;             /* the client shut its side after pipelining */
	unsigned requests;
	/* body */
	bool body_chunked;
	int64_t body_left;
	uint64_t body_bytes;
	struct http_chunked ch;
	struct buf body;
	char peer[64];
	bool loopback;
};

static const struct http_limits *
conn_limits(const struct worker *w)
{
	static _Thread_local struct http_limits lim;

	lim.max_request_line = (size_t)w->cfg->server.max_request_line;
	lim.max_header_size = (size_t)w->cfg->server.max_header_size;
	lim.max_headers = (size_t)w->cfg->server.max_headers;
	lim.max_chunk_ext = HTTP_DEFAULT_MAX_CHUNK_EXT;
	lim.max_trailer_size = (size_t)w->cfg->server.max_header_size;
	return &lim;
}

/* ---- epoll bookkeeping ------------------------------------------------ */

static void
conn_set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e;

	if (c->dead || (c->registered && ev == c->events))
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(c->w->epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    c->fd, &e) == 0) {
		c->registered = true;
		c->events = ev;
	}
}

/* Read when we are between or inside a request; write when output waits. */
static void
conn_update_events(struct conn *c)
{
	uint32_t ev = 0;

	if (c->state == CONN_IDLE || c->state == CONN_HEAD ||
	    c->state == CONN_BODY || c->state == CONN_LINGER)
		ev |= EPOLLIN;
	/* a flow thread works for the client: hear it leave (conn_on_hangup);
	 * EPOLLIN stays off, pipelined bytes wait in the kernel */
	if ((c->state == CONN_BUSY || c->state == CONN_STREAM) && !c->half_closed)
		ev |= EPOLLRDHUP;
	if (buf_rlen(&c->out) > 0)
		ev |= EPOLLOUT;
	conn_set_events(c, ev);
}

static struct http_exchange *
conn_exchange_new(struct conn *c)
{
	return xchg_create(c->w, c, c->peer, c->loopback);
}

/* ---- closing ---------------------------------------------------------- */

static void
conn_unlink(struct conn *c)
{
	struct worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	w->n_conns--;
	sb_add_i(&w->slot->connections, -1);
	/* we may have stopped accepting at max_connections or for balance */
	conn_accept_update(w);
}

/*
 * A closed connection is freed only after the current batch of events:
 * callers up the stack and later events of the same epoll_wait batch may
 * still hold its pointer (they see c->dead).
 */
static void
conn_free(struct conn *c)
{
	c->next_dead = c->w->dead;
	c->w->dead = c;
}

void
conn_reap(struct worker *w)
{
	struct conn *c;

	while ((c = w->dead) != NULL) {
		w->dead = c->next_dead;
		buf_free(&c->in);
		buf_free(&c->out);
		buf_free(&c->body);
		free(c);
	}
}

/*
 * Close the socket.  If a flow thread still holds the exchange, the
 * connection stays allocated (dead) until the exchange comes back.
 */
static void
conn_close(struct conn *c)
{
	struct http_exchange *x = c->x;

	if (!c->dead) {
		if (c->registered)
			epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->dead = true;
		conn_unlink(c);
	}
	if (x != NULL && (c->state == CONN_BUSY || c->state == CONN_STREAM)) {
		xchg_client_gone(x);
		return;   /* freed in conn_on_exchange */
	}
	if (x != NULL && x->on_pool)
		sb_add_i(&c->w->slot->inflight, -1);
	xchg_destroy(x);
	c->x = NULL;
	conn_free(c);
}

/* ---- responses -------------------------------------------------------- */

static bool
conn_keep_alive(const struct conn *c)
{
	const struct http_exchange *x = c->x;

	return !c->want_close && !c->w->draining && x != NULL &&
	    x->req.keep_alive;
}

/* Serialise the exchange's response into c->out. */
static void
conn_write_response(struct conn *c)
{
	struct http_exchange *x = c->x;
	struct http_header h[XCHG_MAX_HEADERS + 2];
	size_t n;
	bool head = x->req.method == HTTP_METHOD_HEAD;

	if (!x->replied)
		xchg_error(x, 500, "the handler produced no response");
	if (!conn_keep_alive(c))
		c->want_close = true;
	n = xchg_response_headers(x, h);
	http_write_head(&c->out, x->status, x->content_type,
	    (int64_t)x->resp.len, false, !c->want_close, h, n);
	if (!head)
		buf_append(&c->out, x->resp.data, x->resp.len);
}

static void conn_flush(struct conn *c);

/* The access log line of a request that ends with `status`. */
static void
conn_log_access(const struct conn *c, const struct http_exchange *x, int status)
{
	int64_t dur = clock_now_us() - x->start_us;
	struct log_field f[7];

	if (!c->w->cfg->logging.access_log || !log_enabled(LOG_LEVEL_INFO))
		return;
	f[0] = LOG_STR("method", x->req.method_name ? x->req.method_name : "-");
	f[1] = LOG_STR("path", x->req.path ? x->req.path : "-");
	f[2] = LOG_INT("status", status);
	f[3] = LOG_INT("dur_us", dur);
	f[4] = LOG_INT("bytes_in", x->body_len);
	f[5] = LOG_INT("bytes_out", x->streaming ? x->streamed_bytes : x->resp.len);
	f[6] = LOG_STR("client", c->peer);
	log_set_request_id(x->request_id);
	log_emit(LOG_LEVEL_INFO, "serving request", f, 7, "request completed");
	log_set_request_id(NULL);
}

/* Access log line, metrics, and reset for the next request. */
static void
conn_request_done(struct conn *c)
{
	struct http_exchange *x = c->x;
	struct worker *w = c->w;
	int64_t dur = clock_now_us() - x->start_us;

	sb_count_request(w->slot, x->route, x->status, (uint64_t)dur);
	if (x->on_pool)
		sb_add_i(&w->slot->inflight, -1);
	conn_log_access(c, x, x->status);
	xchg_destroy(x);
	c->x = NULL;
	c->requests++;
	c->state = CONN_IDLE;
	c->since_ms = clock_now_ms();
	c->request_line_seen = false;
	http_head_state_init(&c->hs);
	/* a large body or response does not stay with a keep-alive connection */
	if (buf_rlen(&c->in) == 0 && c->in.cap > CONN_KEEP_BUF)
		buf_free(&c->in);
	if (buf_rlen(&c->out) == 0 && c->out.cap > CONN_KEEP_BUF)
		buf_free(&c->out);
	if (buf_rlen(&c->body) == 0 && c->body.cap > CONN_KEEP_BUF)
		buf_free(&c->body);
	if (w->recycle_after && sb_get(&w->slot->served) >= w->recycle_after &&
	    !w->draining) {
		log_info("recycling worker", "served %llu requests, recycling",
		    (unsigned long long)sb_get(&w->slot->served));
		conn_drain(w, true);
	}
}

/* Answer a request we cannot process (framing, limits) and close after. */
static void
conn_fail(struct conn *c, int status, const char *msg)
{
	if (c->x == NULL)
		c->x = conn_exchange_new(c);
	c->want_close = true;
	c->x->req.keep_alive = false;
	if (status == 503)
		xchg_error(c->x, status, msg);
	else
		xchg_detail(c->x, status, msg);
	/* nothing after a framing error is read: drop what is buffered */
	buf_reset(&c->in);
	conn_write_response(c);
	c->state = CONN_WRITE;
	c->since_ms = c->io_ms = clock_now_ms();
	conn_flush(c);
}

/* ---- dispatch --------------------------------------------------------- */

#define CONN_DB_RATE_MS 250     /* the database's rate is sampled this often */

/*
 * Would a new chat turn wait longer than server.db_wait_limit_ms for a
 * database connection when it gets there, turn_lead_ms from now (the
 * average time from a turn's request to its save: the model's latency,
 * mostly)?  Yes when the oldest call in the pool's queue has waited longer
 * than that already (the database stalls), or when a queue has formed (its
 * oldest waiter at a tenth of the limit) and the turns already in flight,
 * one save each, would keep the pool busy longer than that (at the pace it
 * kept over the last second once the queue is old, at the best it is known
 * to do before).  No queue, no refusal: a burst that queues
 * but drains before a new turn could join it (a wave of answers from a
 * slow model) is not refused.
 */
static bool
conn_db_saturated(const struct conn *c, unsigned flags)
{
	struct worker *w = c->w;
	int limit = w->cfg->server.db_wait_limit_ms;
	int64_t inflight, lead, elapsed, oldest, now;
	double capacity = 0, wait = 0;
	static _Thread_local int64_t logged_ms;

	if (!(flags & ROUTE_TURN) || limit <= 0 || w->db == NULL)
		return false;
	inflight = sb_get_i(&w->slot->inflight);
	lead = __atomic_load_n(&w->turn_lead_ms, __ATOMIC_RELAXED);
	oldest = db_pool_oldest_wait_ms(w->db);
	now = clock_now_ms();
	/* a stalled database: its oldest waiter past the limit already */
	if (oldest - lead > limit)
		goto refuse;
	/*
	 * No queue, or a short one: admit.  A prediction from rates alone
	 * is wrong at a load's start and between waves, where the rate seen
	 * is not what the database can do (seen: 300 saves/s assumed, 800
	 * done, 30 turns refused while the oldest waiter had waited 40 ms).
	 */
	if (oldest <= limit / 10)
		return false;
	/*
	 * A queue has waited a tenth of the limit.  Once it has waited half
	 * of it, the database has had work for the last second, so its pace
	 * over that second is what it can do (the best of a few seconds was
	 * too hopeful there: turns admitted on it timed out in the queue,
	 * billed).  Before that the last second may hold the quiet before a
	 * wave (seen: 61 saves/s assumed at a wave's start, 2,031 turns
	 * refused while the oldest waiter had waited 278 ms), so the best of
	 * what is known: the pool's size over its average hold, the best
	 * second of the last four, the rate since the last sample.
	 */
	if (oldest >= limit / 2)
		capacity = w->db_rate_recent;
	if (capacity <= 0) {
		capacity = db_pool_capacity(w->db);
		if (w->db_rate > capacity)
			capacity = w->db_rate;
		elapsed = now - w->db_rate_ms;
		if (w->db_rate_ms > 0 && elapsed >= 50) {
			double r = (double)(db_pool_calls_done(w->db) -
			    w->db_rate_calls) * 1000.0 / (double)elapsed;

			if (r > capacity)
				capacity = r;
		}
	}
	wait = capacity > 0 ? (double)(inflight + 1) * 1000.0 / capacity : 0;
	if (capacity <= 0 || wait - (double)lead <= (double)limit)
		return false;
refuse:
	/* why, at most once a second: the operator's way to tell a stalled
	 * database (the oldest waiter) from one that is only too slow */
	if (now - logged_ms >= 1000) {
		logged_ms = now;
		log_warn("admitting a turn",
		    "refusing turns: the database is saturated (oldest waiter "
		    "%lld ms, %lld turns in flight over %.0f saves/s is %.0f ms, "
		    "less %lld ms before a turn saves; limit "
		    "server.db_wait_limit_ms %d)", (long long)oldest,
		    (long long)inflight, capacity, wait, (long long)lead, limit);
	}
	return true;
}

static void
conn_dispatch(struct conn *c)
{
	struct http_exchange *x = c->x;
	xchg_handler handler = NULL;
	const char *allow = NULL;
	unsigned flags = 0;
	struct err e;

	/* body as a NUL-terminated string in the arena */
	x->body_len = c->body.len - c->body.off;
	x->body = arena_strndup(x->arena, buf_rptr(&c->body), x->body_len);
	buf_reset(&c->body);
	xchg_adopt_request_id(x);

	err_clear(&e);
	switch (routes_lookup(x, &handler, &flags, &allow, &e)) {
	case ROUTES_FOUND:
		break;
	case ROUTES_NOT_FOUND:
		xchg_detail(x, 404, "Not Found");
		goto respond;
	case ROUTES_METHOD_NOT_ALLOWED:
		if (allow != NULL)
			xchg_header(x, "Allow", allow);
		xchg_detail(x, 405, "Method Not Allowed");
		goto respond;
	case ROUTES_BAD_PATH:
	default:
		xchg_detail(x, 400, e.msg[0] ? e.msg : "Bad Request");
		goto respond;
	}

	x->route_flags = flags;
	if (flags & ROUTE_INLINE) {
		log_set_request_id(x->request_id);
		handler(x);
		log_set_request_id(NULL);
		goto respond;
	}
	c->state = CONN_BUSY;
	c->since_ms = clock_now_ms();
	if (conn_db_saturated(c, flags)) {
		/*
		 * The turn would run its model call and then wait longer than
		 * db_wait_limit_ms for a database connection to save it: refuse
		 * it now, before it is billed, so that the turns admitted keep
		 * the database's pace instead of timing out in its queue.
		 */
		sb_add(&c->w->slot->c.db_rejections, 1);
		xchg_error(x, 503, "server busy: the database is saturated, retry later");
	} else if (xchg_submit(x, handler) != 0) {
		xchg_error(x, 503, "server busy, retry later");
	} else {
		conn_update_events(c);
		return;
	}
	if (c->w->cfg->server.overload_delay_ms > 0) {
		/*
		 * Overload: the 503 is cheap, so a client that re-sends at once
		 * would turn the worker into a 503 generator and take the loop
		 * from the turns already admitted.  Hold the answer (and read
		 * nothing more from this connection) for overload_delay_ms;
		 * conn_sweep writes it.
		 */
		c->state = CONN_HOLD;
		conn_update_events(c);
		return;
	}

respond:
	conn_write_response(c);
	c->state = CONN_WRITE;
	c->io_ms = clock_now_ms();
	conn_flush(c);
}

/* 413, with the limit and the key that sets it */
static void
conn_fail_body_too_large(struct conn *c)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "Request body too large: the limit is %d bytes "
	    "(server.max_body_size)", c->w->cfg->server.max_body_size);
	conn_fail(c, 413, msg);
}

/* Start reading a body after a complete head; false if we answered. */
static bool
conn_begin_body(struct conn *c)
{
	struct http_exchange *x = c->x;
	int64_t max = c->w->cfg->server.max_body_size;

	c->body_chunked = x->req.chunked;
	c->body_left = x->req.chunked ? 0 :
	    (x->req.content_length > 0 ? x->req.content_length : 0);
	c->body_bytes = 0;
	buf_reset(&c->body);
	if (c->body_chunked)
		http_chunked_init(&c->ch);
	if (!c->body_chunked && c->body_left > max) {
		/* decided from Content-Length, before reading a byte of it */
		conn_fail_body_too_large(c);
		return false;
	}
	if (x->req.expect_continue && (c->body_chunked || c->body_left > 0) &&
	    buf_rlen(&c->in) == 0)
		buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
	c->state = CONN_BODY;
	c->since_ms = c->io_ms = clock_now_ms();
	return true;
}

/* Move buffered input into the body; true when the body is complete. */
static bool
conn_read_body(struct conn *c)
{
	size_t avail = buf_rlen(&c->in), used;
	struct err e;

	if (!c->body_chunked) {
		size_t take = avail < (size_t)c->body_left ? avail :
		    (size_t)c->body_left;

		buf_append(&c->body, buf_rptr(&c->in), take);
		buf_consume(&c->in, take);
		c->body_left -= (int64_t)take;
		c->body_bytes += take;
		return c->body_left == 0;
	}
	err_clear(&e);
	switch (http_chunked_decode(&c->ch, buf_rptr(&c->in), avail, &c->body,
	    (size_t)c->w->cfg->server.max_body_size, conn_limits(c->w), &used,
	    &e)) {
	case HTTP_PARSE_DONE:
		buf_consume(&c->in, used);
		return true;
	case HTTP_PARSE_INCOMPLETE:
		buf_consume(&c->in, used);
		c->body_bytes += used;
		return false;
	case HTTP_PARSE_ERROR:
	default:
		if (e.status == 413)
			conn_fail_body_too_large(c);
		else
			conn_fail(c, e.status ? e.status : 400,
			    e.msg[0] ? e.msg : "Invalid chunked body");
		return false;
	}
}

/* Parse and dispatch whatever the input buffer holds. */
static void
conn_process(struct conn *c)
{
	struct err e;
	size_t used;

	while (!c->dead && (c->state == CONN_IDLE || c->state == CONN_HEAD ||
	    c->state == CONN_BODY)) {
		if (c->state != CONN_BODY) {
			if (buf_rlen(&c->in) == 0)
				break;
			if (c->state == CONN_IDLE) {
				c->state = CONN_HEAD;
				c->since_ms = clock_now_ms();
				http_head_state_init(&c->hs);
			}
			if (c->x == NULL)
				c->x = conn_exchange_new(c);
			err_clear(&e);
			switch (http_parse_head(&c->hs, buf_rptr(&c->in),
			    buf_rlen(&c->in), conn_limits(c->w), c->x->arena,
			    &c->x->req, &used, &e)) {
			case HTTP_PARSE_INCOMPLETE:
				goto out;
			case HTTP_PARSE_ERROR:
				conn_fail(c, e.status ? e.status : 400,
				    e.msg[0] ? e.msg : "Bad Request");
				return;
			case HTTP_PARSE_DONE:
				break;
			}
			/* the request's clock starts when its head is complete */
			c->x->start_us = clock_now_us();
			buf_consume(&c->in, used);
			if (!conn_begin_body(c))
				return;
		}
		if (!conn_read_body(c)) {
			if (c->state != CONN_BODY)
				return;   /* conn_fail answered */
			break;
		}
		conn_dispatch(c);
	}
out:
	if (!c->dead) {
		conn_update_events(c);
		if (buf_rlen(&c->out) > 0)
			conn_flush(c);
	}
}

/* ---- writing ---------------------------------------------------------- */

/*
 * Lingering close (nginx lingering_close): closing a socket that still has
 * unread input makes the kernel send an RST, which can destroy the response
 * in the client's receive buffer.  So shut the write side (the client sees
 * EOF after the response), read and discard what still arrives until the
 * client closes, CONN_LINGER_MS pass, or CONN_LINGER_BYTES were thrown away,
 * and only then close.
 */
static void
conn_linger(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	buf_reset(&c->in);
	c->state = CONN_LINGER;
	c->since_ms = clock_now_ms();
	c->body_bytes = 0;
	conn_update_events(c);
}

static void
conn_linger_read(struct conn *c)
{
	char sink[16384];
	ssize_t n;

	for (;;) {
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n > 0) {
			c->body_bytes += (uint64_t)n;
			if (c->body_bytes > CONN_LINGER_BYTES) {
				conn_close(c);
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c);   /* EOF or an error: the client is done */
		return;
	}
}

static void
conn_flush(struct conn *c)
{
	ssize_t n;

	while (!c->dead && buf_rlen(&c->out) > 0) {
		n = send(c->fd, buf_rptr(&c->out), buf_rlen(&c->out),
		    MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			c->io_ms = clock_now_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_update_events(c);
			return;
		}
		/* the client went away */
		conn_close(c);
		return;
	}
	if (c->dead)
		return;
	if (c->state == CONN_WRITE) {
		conn_request_done(c);
		if (c->want_close) {
			conn_linger(c);
			return;
		}
		if (c->w->draining && !c->w->graceful) {
			conn_close(c);
			return;
		}
	}
	conn_update_events(c);
}

/* ---- events ----------------------------------------------------------- */

static void
conn_on_readable(struct conn *c)
{
	/* read into the loop's stack and keep only what arrived: reading
	 * straight into c->in made room for a whole chunk first, 32 KiB per
	 * connection for a request of a few hundred bytes (26 MB of the heap at
	 * 800 connections) */
	char chunk[CONN_READ_CHUNK];
	size_t budget = CONN_READ_BUDGET;
	ssize_t n;

	while (budget > 0) {
		n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n > 0) {
			buf_append(&c->in, chunk, (size_t)n);
			c->io_ms = clock_now_ms();
			budget -= budget < (size_t)n ? budget : (size_t)n;
			if (c->state == CONN_HEAD || c->state == CONN_IDLE) {
				/* cap what a head may buffer before we parse it */
				if (buf_rlen(&c->in) > (size_t)c->w->cfg->server.max_header_size +
				    (size_t)c->w->cfg->server.max_request_line + CONN_READ_CHUNK)
					break;
			}
			if ((size_t)n < CONN_READ_CHUNK)
				break;
			continue;
		}
		if (n == 0) {
			/* EOF: a half request is abandoned; an idle one just ends */
			conn_process(c);
			if (!c->dead && (c->state == CONN_IDLE || c->state == CONN_HEAD ||
			    c->state == CONN_BODY))
				conn_close(c);
			else if (!c->dead)
				c->want_close = true;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_close(c);
		return;
	}
	conn_process(c);
}

/*
 * The client shut its side of the connection (EPOLLRDHUP: a FIN), or it is
 * gone for good (EPOLLHUP, EPOLLERR: a reset), while its request is with a
 * flow thread (CONN_BUSY, CONN_STREAM).  A reset is the client gone.  A FIN
 * is too, unless bytes it sent before are still unread: a client that
 * pipelines its requests and then half-closes (printf ... | nc -N) still
 * reads the responses, so those are served, in order, and the connection
 * closes after the last.  A FIN with nothing unread is a client that will
 * not read the response either, as nginx decides (a read of EOF while the
 * upstream works is "client prematurely closed connection", 499): HTTP/1.1
 * gives a half-close no meaning of its own, and the clients that send a
 * request and then shut their side only to wait (HTTP/1.0 tools) are far
 * rarer than the ones that close a connection they gave up on, whose turn
 * would go on spending tokens for nobody.
 */
static void
conn_on_hangup(struct conn *c, uint32_t events)
{
	char b;
	ssize_t n;

	if (!(events & (EPOLLHUP | EPOLLERR))) {
		if (buf_rlen(&c->in) > 0)
			n = 1;
		else
			while ((n = recv(c->fd, &b, 1, MSG_PEEK)) < 0 && errno == EINTR)
				;
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
			c->half_closed = true;   /* and stop asking: RDHUP stays set */
			conn_update_events(c);
			return;
		}
	}
	log_set_request_id(c->x != NULL ? c->x->request_id : NULL);
	log_info("serving request", "the client closed the connection before "
	    "its response, stopping the request");
	log_set_request_id(NULL);
	conn_close(c);
}

void
conn_on_event(struct conn *c, uint32_t events)
{
	if (c->dead)
		return;
	if (c->state == CONN_LINGER) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_linger_read(c);
		return;
	}
	if ((c->state == CONN_BUSY || c->state == CONN_STREAM) &&
	    (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		conn_on_hangup(c, events);
		if (c->dead)
			return;
		events &= ~(uint32_t)(EPOLLRDHUP | EPOLLHUP | EPOLLERR);
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		if (!(events & EPOLLIN)) {
			conn_close(c);
			return;
		}
	}
	if (events & EPOLLOUT) {
		conn_flush(c);
		if (c->dead)
			return;
		if (c->state == CONN_IDLE && buf_rlen(&c->in) > 0)
			conn_process(c);
	}
	if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    (c->state == CONN_IDLE || c->state == CONN_HEAD ||
	    c->state == CONN_BODY))
		conn_on_readable(c);
}

void
conn_on_exchange(struct http_exchange *x)
{
	struct conn *c = x->conn;
	bool done;

	if (x->abandoned) {
		/* its client got the 504 long ago: drop what it produced */
		if (xchg_take_stream(x, NULL)) {
			log_set_request_id(x->request_id);
			log_warn("running flow", "the flow thread abandoned at its "
			    "deadline returned %lld ms later; its result is discarded",
			    (long long)(clock_now_ms() - x->abandoned_ms));
			log_set_request_id(NULL);
			if (x->on_pool)
				sb_add_i(&x->w->slot->inflight, -1);
			xchg_destroy(x);
		}
		return;
	}
	done = xchg_take_stream(x, c->dead ? NULL : &c->out);

	if (c->dead) {
		if (done) {
			if (x->on_pool)
				sb_add_i(&c->w->slot->inflight, -1);
			/* nginx's 499: the client closed the connection first */
			conn_log_access(c, x, 499);
			xchg_destroy(x);
			c->x = NULL;
			conn_free(c);
		}
		return;
	}
	if (!done) {
		c->state = CONN_STREAM;
		conn_flush(c);
		return;
	}
	if (x->streaming) {
		http_write_last_chunk(&c->out);
		if (!conn_keep_alive(c))
			c->want_close = true;
	} else {
		conn_write_response(c);
	}
	c->state = CONN_WRITE;
	c->io_ms = clock_now_ms();
	conn_flush(c);
	if (!c->dead && c->state == CONN_IDLE && buf_rlen(&c->in) > 0)
		conn_process(c);
}

/* ---- accepting -------------------------------------------------------- */

static void
conn_peer_name(struct conn *c, const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "?";

	c->loopback = false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		c->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		c->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    s6->sin6_addr.s6_addr[12] == 127);
	} else if (ss->ss_family == AF_UNIX) {
		snprintf(host, sizeof(host), "unix");
		c->loopback = true;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", host);
}

/* ---- accepting, balanced across workers ---------------------------------- */

/*
 * Every worker waits on the one listening socket, and whichever runs first
 * takes a burst of connections; with EPOLLEXCLUSIVE that left the
 * connections split 1,051 / 725 between two workers.  So a worker leaves
 * accepting to the others while another ready worker that is accepting
 * either holds CONN_BALANCE_SLACK fewer connections, or has room for turns
 * when this one has none (every flow thread busy at the maximum and the
 * queue full).  A worker pauses only in favour of one that is accepting,
 * and a paused worker checks again on every turn of its loop, so some
 * worker always accepts; when every worker is full they all accept and
 * answer 503 (held, see CONN_HOLD).  The other slots are read from the
 * scoreboard: a few relaxed loads each.  The socket is watched without
 * EPOLLEXCLUSIVE: with it, a worker that paused could leave the other one
 * unwoken while connections waited in the backlog (seen in test_http.py's
 * 500 slow connections: a health request waited 4 s); without it, every
 * worker wakes for a new connection and the one that loses the race gets
 * EAGAIN, a cost that stays small for the few workers of a host.
 */
#define CONN_BALANCE_SLACK  8
#define CONN_BALANCE_EVERY  8      /* accepts between two checks in a batch */

static bool
conn_slot_full(const struct sb_slot *s)
{
	int64_t limit = sb_get_i(&s->flow_limit);

	return limit > 0 && sb_get_i(&s->inflight) >= limit;
}

static bool
conn_accept_fair(struct worker *w)
{
	int64_t mine = w->n_conns;
	bool me_full = conn_slot_full(w->slot);
	int i;

	for (i = 0; i < SB_MAX_SLOTS; i++) {
		const struct sb_slot *s = &w->sb->slots[i];

		if (s == w->slot || sb_get_state(s) != SB_STATE_READY ||
		    sb_get_i(&s->accepting) == 0 || conn_slot_full(s))
			continue;
		if (me_full || sb_get_i(&s->connections) + CONN_BALANCE_SLACK < mine)
			return false;
	}
	return true;
}

static void
conn_accept_pause(struct worker *w)
{
	if (!w->accepting)
		return;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_fd, NULL);
	w->accepting = false;
	sb_set_i(&w->slot->accepting, 0);
}

void
conn_accept_update(struct worker *w)
{
	struct epoll_event e = { .events = EPOLLIN };

	if (w->accepting || w->draining || w->listen_fd < 0 ||
	    w->n_conns >= w->cfg->server.max_connections || !conn_accept_fair(w))
		return;
	e.data.ptr = &w->listen_tag;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_fd, &e) == 0) {
		w->accepting = true;
		sb_set_i(&w->slot->accepting, 1);
	}
}

void
conn_accept(struct worker *w)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct conn *c;
	int i, fd, one = 1;

	for (i = 0; i < CONN_ACCEPT_BATCH && w->accepting; i++) {
		if (w->n_conns >= w->cfg->server.max_connections) {
			/* full: stop listening until a connection closes */
			conn_accept_pause(w);
			log_warn("accepting connections",
			    "max_connections (%d) reached, pausing accept",
			    w->cfg->server.max_connections);
			return;
		}
		if (i % CONN_BALANCE_EVERY == 0 && !conn_accept_fair(w)) {
			sb_add(&w->slot->c.accept_pauses, 1);
			conn_accept_pause(w);
			return;
		}
		sl = sizeof(ss);
		fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_error("accepting connections",
				    "could not accept: %s", strerror(errno));
			return;
		}
		if (ss.ss_family != AF_UNIX)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->tag = CONN_TAG_CLIENT;
		c->fd = fd;
		c->w = w;
		c->state = CONN_IDLE;
		c->since_ms = c->io_ms = clock_now_ms();
		conn_peer_name(c, &ss);
		http_head_state_init(&c->hs);
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->n_conns++;
		sb_add_i(&w->slot->connections, 1);
		sb_add(&w->slot->c.connections_accepted, 1);
		conn_update_events(c);
	}
}

/* ---- deadlines and draining ------------------------------------------- */

/*
 * A handler past the deadline of its run (a flow that never returns: a
 * plugin in an endless loop or a blocking call): answer its client here,
 * 504 or an error frame that ends its stream, and leave the exchange to its
 * thread (xchg_abandon).  Nothing the thread does later reaches the socket.
 */
static void
conn_overdue(struct http_exchange *x, int64_t now)
{
	struct conn *c = x->conn;
	struct http_exchange *y;
	const char *msg;

	y = xchg_abandon(x, c->dead ? NULL : &c->out, now);
	if (y == NULL)
		return;   /* it returned meanwhile: on its way back */
	msg = xchg_deadline_message(y);
	log_set_request_id(y->request_id);
	log_error("running flow", "%s: %s; its thread is left to finish, its "
	    "result will be discarded", msg, c->dead ? "its client is gone" :
	    y->streaming ? "ending its stream with an error frame" :
	    "answering 504");
	log_set_request_id(NULL);
	if (c->dead) {
		/* the client left before: nobody to answer, the connection is free */
		xchg_destroy(y);
		c->x = NULL;
		conn_free(c);
		return;
	}
	c->x = y;
	if (y->streaming) {
		xchg_stream_fail(y, &c->out, msg);
		if (!conn_keep_alive(c))
			c->want_close = true;
	} else {
		xchg_error(y, 504, msg);
		conn_write_response(c);
	}
	c->state = CONN_WRITE;
	c->io_ms = now;
	conn_flush(c);
	if (!c->dead && c->state == CONN_IDLE && buf_rlen(&c->in) > 0)
		conn_process(c);
}

/*
 * The runs on flow threads: abandon those past their deadline, count the
 * abandoned ones that have not returned (flow_stuck), and retire the
 * worker when one has been stuck for server.worker_timeout: its thread
 * and what it holds are lost to this process, and a thread that never
 * returns is only freed by the process's exit.  The worker retires as
 * after max_requests: it stops accepting, finishes the other requests (at
 * most server.shutdown_timeout) and exits, and the master starts another.
 */
static void
conn_sweep_flows(struct worker *w, int64_t now)
{
	struct http_exchange *x, *next;
	int64_t oldest = 0;
	int stuck = 0;

	for (x = w->xq.running; x != NULL; x = next) {
		next = x->run_next;
		if (xchg_overdue(x, now))
			conn_overdue(x, now);
		if (x->abandoned) {
			stuck++;
			if (oldest == 0 || x->abandoned_ms < oldest)
				oldest = x->abandoned_ms;
		}
	}
	sb_set_i(&w->slot->flow_stuck, stuck);
	if (w->db != NULL) {
		uint64_t done = db_pool_calls_done(w->db);

		struct db_pool_stats ps;

		sb_set_i(&w->slot->db_wait_ms, db_pool_wait_estimate_ms(w->db));
		db_pool_stats(w->db, &ps);
		sb_set(&w->slot->c.db_errors, ps.errors);
		sb_set(&w->slot->c.db_waits, ps.waits);
		sb_set(&w->slot->c.db_wait_us, ps.wait_us);
		sb_set(&w->slot->c.db_timeouts, ps.timeouts);
		if (w->db_rate_ms == 0) {
			w->db_rate_ms = now;
			w->db_rate_calls = done;
		} else if (now - w->db_rate_ms >= CONN_DB_RATE_MS) {
			double r = (double)(done - w->db_rate_calls) * 1000.0 /
			    (double)(now - w->db_rate_ms);

			double best = 0;
			int i;

			/* the best of the last four seconds: what the database
			 * did when the turns were there to ask.  An idle moment
			 * says nothing of what it can do, and turns come in
			 * waves (a model's latency apart), so a decaying
			 * average forgot the last wave's rate before the next
			 * one (seen: 232 saves/s assumed while it did 800) */
			w->db_rates[w->db_rate_i] = r;
			w->db_rate_i = (w->db_rate_i + 1) % WORKER_DB_RATES;
			for (i = 0; i < WORKER_DB_RATES; i++)
				if (w->db_rates[i] > best)
					best = w->db_rates[i];
			w->db_rate = best;
			/* and what it did in the last second: its pace while a
			 * queue waits for it (conn_db_saturated) */
			best = 0;
			for (i = 1; i <= 1000 / CONN_DB_RATE_MS; i++)
				best += w->db_rates[(w->db_rate_i - i +
				    WORKER_DB_RATES) % WORKER_DB_RATES];
			w->db_rate_recent = best / (1000 / CONN_DB_RATE_MS);
			w->db_rate_ms = now;
			w->db_rate_calls = done;
		}
	}
	if (stuck > 0 && !w->draining &&
	    now - oldest >= (int64_t)w->cfg->server.worker_timeout * 1000) {
		log_warn("retiring", "a flow thread has been stuck for %lld s past "
		    "its deadline (server.worker_timeout = %d), %d stuck in all: "
		    "retiring this worker", (long long)((now - oldest) / 1000),
		    w->cfg->server.worker_timeout, stuck);
		conn_drain(w, true);
	}
}

void
conn_sweep(struct worker *w, int64_t now)
{
	const struct config *cfg = w->cfg;
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		switch (c->state) {
		case CONN_IDLE:
			if (now - c->since_ms > (int64_t)(c->requests == 0 ?
			    cfg->server.header_timeout : cfg->server.keepalive_timeout) * 1000)
				conn_close(c);
			break;
		case CONN_HEAD:
			if (now - c->since_ms > (int64_t)cfg->server.header_timeout * 1000)
				conn_fail(c, 408, "Request header timeout");
			break;
		case CONN_BODY: {
			int64_t elapsed = now - c->since_ms;

			if (now - c->io_ms > (int64_t)cfg->server.body_timeout * 1000 ||
			    (elapsed > CONN_RATE_GRACE_MS && cfg->server.body_min_rate > 0 &&
			    (int64_t)c->body_bytes * 1000 / elapsed < cfg->server.body_min_rate))
				conn_fail(c, 408, "Request body timeout");
			break;
		}
		case CONN_WRITE:
		case CONN_STREAM:
			if (buf_rlen(&c->out) > 0 &&
			    now - c->io_ms > (int64_t)cfg->server.write_timeout * 1000)
				conn_close(c);
			break;
		case CONN_LINGER:
			if (now - c->since_ms > CONN_LINGER_MS)
				conn_close(c);
			break;
		case CONN_HOLD:
			if (now - c->since_ms >= cfg->server.overload_delay_ms) {
				conn_write_response(c);
				c->state = CONN_WRITE;
				c->io_ms = now;
				conn_flush(c);
			}
			break;
		case CONN_BUSY:
			break;
		}
	}
	conn_sweep_flows(w, now);
}

void
conn_drain(struct worker *w, bool graceful)
{
	struct conn *c, *next;

	if (!w->draining) {
		w->draining = true;
		w->graceful = graceful;
		w->drain_deadline_ms = clock_now_ms() +
		    (int64_t)w->cfg->server.shutdown_timeout * 1000;
		sb_set_state(w->slot, SB_STATE_DRAINING);
	} else if (!graceful) {
		w->graceful = false;
	}
	if (w->listen_fd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_fd, NULL);
		close(w->listen_fd);
		w->listen_fd = -1;
		w->accepting = false;
		sb_set_i(&w->slot->accepting, 0);
	}
	if (w->graceful)
		return;
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == CONN_IDLE && buf_rlen(&c->in) == 0)
			conn_close(c);
	}
}
