/*
 * exchange.c -- the exchange between a route handler and the event loop:
 * the handler API (xchg_reply, xchg_json, the product's error envelopes,
 * streaming), the run of a request on a flow thread (the authentication
 * gate, then the handler), the hand-back of finished and streaming
 * exchanges to the loop (the done queue and its eventfd), and the timer on
 * which a deferred exchange waits for its second run.
 *
 * It owns the life of a struct http_exchange and the lock that the flow
 * thread and the loop share; connections (conn.c) own sockets and buffers
 * and decide when an exchange is created and destroyed.  It never touches a
 * socket, never blocks the loop, and knows nothing of how a request is
 * authenticated: the gate is a function the worker installs (auth.c).
 *
 * The exchange itself is allocated on the heap beside its arena, not in it:
 * it is about 1 KiB, which would take an eighth of the arena's first block
 * from every handler for the one object whose lifetime the loop decides
 * (it must outlive the handler's thread, which the arena's owner is), and
 * one calloc per request is noise next to parsing it.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/scoreboard.h"
#include "lib/xmalloc.h"
#include "worker/exchange.h"
#include "worker/pool.h"
#include "worker/worker.h"

#define XCHG_ARENA_BLOCK  4096            /* a classification turn uses 3.2 KiB */
#define XCHG_STREAM_HIGH  (256 * 1024)   /* a streaming thread waits above this */


/* ---- life ------------------------------------------------------------- */

void
xchg_queue_init(struct xchg_queue *q, int eventfd)
{
	pthread_mutex_init(&q->lock, NULL);
	q->done = NULL;
	q->parked = NULL;
	q->running = NULL;
	q->eventfd = eventfd;
}

struct http_exchange *
xchg_create(struct worker *w, struct conn *c, const char *peer, bool loopback)
{
	struct http_exchange *x = xcalloc(1, sizeof(*x));

	x->arena = arena_create(XCHG_ARENA_BLOCK);
	x->w = w;
	x->cfg = w->cfg;
	x->conn = c;
	x->start_us = clock_now_us();
	buf_init(&x->resp);
	buf_init(&x->stream);
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->drained, NULL);
	snprintf(x->peer, sizeof(x->peer), "%s", peer);
	x->peer_loopback = loopback;
	uuid_v4(x->request_id);
	return x;
}

static void xchg_run_unlink(struct xchg_queue *q, struct http_exchange *x);

void
xchg_destroy(struct http_exchange *x)
{
	if (x == NULL)
		return;
	/* never leave a freed exchange on the list the loop sweeps: a new one
	 * allocated at its address would close the list into a cycle */
	if (x->w != NULL)
		xchg_run_unlink(&x->w->xq, x);
	arena_destroy(x->arena);
	buf_free(&x->resp);
	buf_free(&x->stream);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->drained);
	free(x);
}

static bool
xchg_request_id_sane(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char ch = s[n];

		if (n >= XCHG_REQUEST_ID_MAX)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == ':'))
			return false;
	}
	return n > 0;
}

void
xchg_adopt_request_id(struct http_exchange *x)
{
	const char *rid = http_header_get(&x->req, "X-Request-ID");

	if (rid != NULL && xchg_request_id_sane(rid))
		snprintf(x->request_id, sizeof(x->request_id), "%s", rid);
}

/* ---- the hand-back to the loop ----------------------------------------- */

/*
 * Queue the exchange for the loop, once until the loop has taken it
 * (stream_notified), and wake the loop.  `finish` (-1 none, 0 deferred,
 * 1 done) is set in the same critical section as the decision to queue, so
 * the loop never sees an exchange done while its hand-back is still to
 * come: once done is visible, either the exchange is on the queue (queued:
 * the loop finishes it when it takes it from there) or nothing of this
 * thread touches it again.  Flow threads, and the loop itself for an
 * exchange it finishes from a timer.
 */
static void
xchg_hand_back(struct http_exchange *x, int finish)
{
	struct xchg_queue *q = &x->w->xq;
	uint64_t one = 1;
	bool push;

	pthread_mutex_lock(&x->lock);
	if (finish == 0)
		x->deferred = true;
	else if (finish == 1)
		x->done = true;
	push = !x->stream_notified;
	x->stream_notified = true;
	if (push) {
		x->queued = true;
		pthread_mutex_lock(&q->lock);
		x->next_done = q->done;
		q->done = x;
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_unlock(&x->lock);
	if (push)
		(void)!write(q->eventfd, &one, sizeof(one));
}

/* Park a deferred exchange on its timer.  Loop. */
static void
xchg_park(struct xchg_queue *q, struct http_exchange *x)
{
	x->wake_ms = clock_now_ms() + x->defer_ms;
	x->next_done = q->parked;
	q->parked = x;
}

/* Onto the list of exchanges out on a flow thread (once).  Loop. */
static void
xchg_run_link(struct xchg_queue *q, struct http_exchange *x)
{
	if (x->on_run_list)
		return;
	x->run_prev = NULL;
	x->run_next = q->running;
	if (q->running != NULL)
		q->running->run_prev = x;
	q->running = x;
	x->on_run_list = true;
}

/* Off that list: back for good, or parked.  Loop. */
static void
xchg_run_unlink(struct xchg_queue *q, struct http_exchange *x)
{
	if (!x->on_run_list)
		return;
	if (x->run_prev != NULL)
		x->run_prev->run_next = x->run_next;
	else
		q->running = x->run_next;
	if (x->run_next != NULL)
		x->run_next->run_prev = x->run_prev;
	x->run_prev = x->run_next = NULL;
	x->on_run_list = false;
}

struct http_exchange *
xchg_take_done(struct xchg_queue *q)
{
	struct http_exchange *list, *x, *rev = NULL;
	uint64_t n;
	bool park, done;

	(void)!read(q->eventfd, &n, sizeof(n));
	pthread_mutex_lock(&q->lock);
	list = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	/* oldest first */
	while (list != NULL) {
		x = list;
		list = x->next_done;
		pthread_mutex_lock(&x->lock);
		x->queued = false;
		park = x->deferred;
		done = x->done;
		if (park) {
			/* no thread holds it now: the loop owns it until it wakes */
			x->deferred = false;
			x->stream_notified = false;
		}
		pthread_mutex_unlock(&x->lock);
		if (park || done)
			xchg_run_unlink(q, x);
		if (park) {
			xchg_park(q, x);
			continue;
		}
		x->next_done = rev;
		rev = x;
	}
	/* rev is newest first: reverse once more for the caller */
	list = NULL;
	while (rev != NULL) {
		x = rev;
		rev = x->next_done;
		x->next_done = list;
		list = x;
	}
	return list;
}

bool
xchg_take_stream(struct http_exchange *x, struct buf *out)
{
	bool done;

	pthread_mutex_lock(&x->lock);
	/* done while its last hand-back is still on the queue: the loop takes
	 * it from there (xchg_hand_back), it must not free it before */
	done = x->done && !x->queued;
	x->stream_notified = false;
	if (buf_rlen(&x->stream) > 0) {
		if (out != NULL) {
			x->streamed_bytes += buf_rlen(&x->stream);
			buf_append(out, buf_rptr(&x->stream), buf_rlen(&x->stream));
		}
		buf_reset(&x->stream);
	}
	pthread_cond_broadcast(&x->drained);
	pthread_mutex_unlock(&x->lock);
	/* finished after xchg_take_done saw it streaming (its hand-back found
	 * stream_notified still set and queued nothing): back for good now */
	if (done)
		xchg_run_unlink(&x->w->xq, x);
	return done;
}

void
xchg_client_gone(struct http_exchange *x)
{
	pthread_mutex_lock(&x->lock);
	x->client_gone = true;
	pthread_cond_broadcast(&x->drained);
	if (x->wake != NULL)
		x->wake(x->wake_h);
	pthread_mutex_unlock(&x->lock);
}

void
xchg_waker_set(struct http_exchange *x, void (*wake)(void *h), void *h)
{
	pthread_mutex_lock(&x->lock);
	x->wake = wake;
	x->wake_h = h;
	if (x->client_gone && wake != NULL)
		wake(h);
	pthread_mutex_unlock(&x->lock);
}

void
xchg_waker_clear(struct http_exchange *x, void *h)
{
	pthread_mutex_lock(&x->lock);
	if (x->wake_h == h) {
		x->wake = NULL;
		x->wake_h = NULL;
	}
	pthread_mutex_unlock(&x->lock);
}

bool
xchg_client_is_gone(struct http_exchange *x)
{
	bool gone;

	pthread_mutex_lock(&x->lock);
	gone = x->client_gone;
	pthread_mutex_unlock(&x->lock);
	return gone;
}

/* ---- the deadline of a run ---------------------------------------------- */

void
xchg_deadline_restart(struct http_exchange *x)
{
	int64_t d = clock_now_ms() + (int64_t)x->cfg->flows.turn_timeout_ms +
	    XCHG_DEADLINE_GRACE_MS;

	__atomic_store_n(&x->deadline_ms, d, __ATOMIC_RELAXED);
}

bool
xchg_overdue(struct http_exchange *x, int64_t now_ms)
{
	int64_t d = __atomic_load_n(&x->deadline_ms, __ATOMIC_RELAXED);

	return !x->abandoned && d != 0 && now_ms >= d;
}

const char *
xchg_deadline_message(struct http_exchange *x)
{
	return arena_sprintf(x->arena, "the flow did not finish within its "
	    "deadline (flows.turn_timeout_ms = %d)", x->cfg->flows.turn_timeout_ms);
}

struct http_exchange *
xchg_abandon(struct http_exchange *x, struct buf *out, int64_t now_ms)
{
	struct http_exchange *y = xchg_create(x->w, x->conn, x->peer,
	    x->peer_loopback);

	pthread_mutex_lock(&x->lock);
	/* the run clears its deadline under the lock as it ends (xchg_run) */
	if (__atomic_load_n(&x->deadline_ms, __ATOMIC_RELAXED) == 0) {
		pthread_mutex_unlock(&x->lock);
		xchg_destroy(y);
		return NULL;
	}
	/* from here the handler's writes fail and its model calls stop */
	x->client_gone = true;
	pthread_cond_broadcast(&x->drained);
	if (x->wake != NULL)
		x->wake(x->wake_h);
	if (buf_rlen(&x->stream) > 0) {
		if (out != NULL) {
			x->streamed_bytes += buf_rlen(&x->stream);
			buf_append(out, buf_rptr(&x->stream), buf_rlen(&x->stream));
		}
		buf_reset(&x->stream);
	}
	/* a stream's head is set under the lock (xchg_stream_begin); a
	 * complete response the handler may be setting now is not wanted */
	if (x->streaming) {
		y->streaming = true;
		y->replied = true;
		y->status = x->status;
		y->content_type = arena_strdup(y->arena, x->content_type);
	}
	pthread_mutex_unlock(&x->lock);

	/* what the loop reads of the request was written before the run */
	memcpy(y->request_id, x->request_id, sizeof(y->request_id));
	y->start_us = x->start_us;
	y->route = x->route;
	y->route_flags = x->route_flags;
	y->route_name = x->route_name;
	y->body_len = x->body_len;
	y->streamed_bytes = x->streamed_bytes;
	y->req.method = x->req.method;
	y->req.method_name = x->req.method_name != NULL ?
	    arena_strdup(y->arena, x->req.method_name) : NULL;
	y->req.path = x->req.path != NULL ? arena_strdup(y->arena, x->req.path) : NULL;
	y->req.version_minor = x->req.version_minor;
	y->req.keep_alive = x->req.keep_alive;
	y->req.content_length = -1;
	x->abandoned = true;
	x->abandoned_ms = now_ms;
	x->conn = NULL;
	return y;
}

void
xchg_stream_fail(const struct http_exchange *x, struct buf *out,
    const char *msg)
{
	struct buf b = BUF_INIT;

	/* the frame of worker/turn.c's turn_sse_error, on the chat stream */
	if (x->content_type != NULL &&
	    strncmp(x->content_type, "text/event-stream", 17) == 0) {
		buf_puts(&b, "data: {\"event\":\"error\",\"data\":null,\"error\":");
		buf_json_string(&b, msg);
		buf_puts(&b, "}\n\n");
		http_write_chunk(out, b.data, b.len);
		buf_free(&b);
	}
	http_write_last_chunk(out);
}

/* ---- running on a flow thread ------------------------------------------- */

/* The pool job: the gate, then the handler, then back to the loop. */
static void
xchg_run(void *arg)
{
	struct http_exchange *x = arg;
	xchg_gate gate = x->w->gate;
	bool gone;
	int finish;

	pthread_mutex_lock(&x->lock);
	gone = x->client_gone;
	x->defer_ms = 0;
	pthread_mutex_unlock(&x->lock);
	xchg_deadline_restart(x);
	x->runs++;
	log_set_request_id(x->request_id);
	/* a gate that refuses has set the 401/429/503, or deferred: no handler */
	if (!gone && (gate == NULL || (x->route_flags & ROUTE_PUBLIC) || gate(x) == 0))
		x->handler(x);
	log_set_request_id(NULL);
	pthread_mutex_lock(&x->lock);
	__atomic_store_n(&x->deadline_ms, 0, __ATOMIC_RELAXED);
	finish = x->defer_ms > 0 && !x->replied && !x->client_gone ? 0 : 1;
	pthread_mutex_unlock(&x->lock);
	/* the last touch of x by this thread: the loop may free it from here */
	xchg_hand_back(x, finish);
}

int
xchg_submit(struct http_exchange *x, xchg_handler handler)
{
	struct worker *w = x->w;
	bool first;

	x->handler = handler;
	if (!x->on_pool) {
		x->on_pool = true;
		sb_add_i(&w->slot->inflight, 1);
	}
	/* read before submitting: once queued, the flow thread owns x->runs */
	first = x->runs == 0;
	if (pool_submit(w->pool, xchg_run, x) == 0) {
		if (first)
			sb_add(&w->slot->c.admitted, 1);
		xchg_run_link(&w->xq, x);
		return 0;
	}
	sb_add(&w->slot->c.queue_rejections, 1);
	log_warn("queueing request", "flow queue full, answering 503");
	if (x->runs == 0) {
		/* never ran: the caller answers at once, not in flight */
		x->on_pool = false;
		sb_add_i(&w->slot->inflight, -1);
	}
	return -1;
}

void
xchg_wake_due(struct xchg_queue *q, int64_t now_ms)
{
	struct http_exchange **pp = &q->parked, *x;
	bool gone;

	while ((x = *pp) != NULL) {
		if (x->wake_ms > now_ms) {
			pp = &x->next_done;
			continue;
		}
		*pp = x->next_done;
		x->next_done = NULL;
		pthread_mutex_lock(&x->lock);
		gone = x->client_gone;
		pthread_mutex_unlock(&x->lock);
		if (!gone && xchg_submit(x, x->handler) == 0)
			continue;
		/* the connection frees it (gone) or answers the 503 */
		if (!gone)
			xchg_error(x, 503, "server busy, retry later");
		xchg_hand_back(x, 1);
	}
}

int
xchg_next_wake_ms(const struct xchg_queue *q, int64_t now_ms, int cap_ms)
{
	const struct http_exchange *x;
	int64_t wait = cap_ms;

	for (x = q->parked; x != NULL; x = x->next_done)
		if (x->wake_ms - now_ms < wait)
			wait = x->wake_ms - now_ms;
	return wait > 0 ? (int)wait : 0;
}

void
xchg_defer(struct http_exchange *x, int delay_ms)
{
	if (delay_ms < 1)
		delay_ms = 1;
	if (delay_ms > XCHG_DEFER_MAX_MS)
		delay_ms = XCHG_DEFER_MAX_MS;
	pthread_mutex_lock(&x->lock);
	if (!x->replied && !x->streaming)
		x->defer_ms = delay_ms;
	pthread_mutex_unlock(&x->lock);
}

/* ---- the response ------------------------------------------------------ */

size_t
xchg_response_headers(struct http_exchange *x, struct http_header *h)
{
	static _Thread_local char took[32];
	static char rid_name[] = "X-Request-ID", took_name[] = "X-Processing-Time";
	size_t n = 0;
	int i;

	h[n++] = (struct http_header){ rid_name, x->request_id };
	snprintf(took, sizeof(took), "%.3fs",
	    (double)(clock_now_us() - x->start_us) / 1e6);
	h[n++] = (struct http_header){ took_name, took };
	for (i = 0; i < x->n_headers; i++)
		h[n++] = x->headers[i];
	return n;
}

const char *
xchg_param(const struct http_exchange *x, const char *name)
{
	int i;

	for (i = 0; i < x->n_params; i++)
		if (strcmp(x->param_names[i], name) == 0)
			return x->param_values[i];
	return NULL;
}

const char *
xchg_header_in(const struct http_exchange *x, const char *name)
{
	return http_header_get(&x->req, name);
}

void
xchg_header(struct http_exchange *x, const char *name, const char *value)
{
	if (x->n_headers >= XCHG_MAX_HEADERS)
		return;
	x->headers[x->n_headers].name = arena_strdup(x->arena, name);
	x->headers[x->n_headers].value = arena_strdup(x->arena, value);
	x->n_headers++;
}

void
xchg_reply(struct http_exchange *x, int status, const char *content_type,
    const char *body, size_t len)
{
	x->status = status;
	x->content_type = content_type ? arena_strdup(x->arena, content_type) : NULL;
	buf_reset(&x->resp);
	buf_append(&x->resp, body, len);
	x->replied = true;
}

void
xchg_json(struct http_exchange *x, int status, const char *json)
{
	xchg_reply(x, status, "application/json", json, strlen(json));
}

void
xchg_detail(struct http_exchange *x, int status, const char *detail)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "{\"detail\":");
	buf_json_string(&b, detail);
	buf_putc(&b, '}');
	xchg_reply(x, status, "application/json", b.data, b.len);
	buf_free(&b);
}

void
xchg_error_retry(struct http_exchange *x, int status, const char *detail,
    int retry_after)
{
	struct buf b = BUF_INIT;
	char ra[16];

	buf_puts(&b, "{\"detail\":");
	buf_json_string(&b, detail);
	buf_puts(&b, ",\"request_id\":");
	buf_json_string(&b, x->request_id);
	buf_putc(&b, '}');
	xchg_reply(x, status, "application/json", b.data, b.len);
	buf_free(&b);
	if (retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", retry_after);
		xchg_header(x, "Retry-After", ra);
	}
}

void
xchg_error(struct http_exchange *x, int status, const char *detail)
{
	int ra = x->cfg->server.retry_after > 0 ? x->cfg->server.retry_after : 1;

	xchg_error_retry(x, status, detail, status == 503 || status == 429 ? ra : 0);
}

void
xchg_validation_error(struct http_exchange *x, const char *message,
    const char *suggestion)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "{\"error\":{\"code\":\"REQUEST_VALIDATION_ERROR\",\"message\":");
	buf_json_string(&b, message);
	buf_puts(&b, ",\"correlation_id\":");
	buf_json_string(&b, x->request_id);
	buf_puts(&b, ",\"details\":[],\"recoverable\":false,\"recovery_suggestion\":");
	buf_json_string(&b, suggestion);
	buf_puts(&b, "}}");
	xchg_reply(x, 422, "application/json", b.data, b.len);
	buf_free(&b);
}

/* ---- streaming ---------------------------------------------------------- */

int
xchg_stream_begin(struct http_exchange *x, int status, const char *content_type)
{
	struct http_header h[XCHG_MAX_HEADERS + 2];
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&x->lock);
	if (x->client_gone) {
		rc = -1;
	} else {
		x->status = status;
		x->replied = true;
		x->streaming = true;
		x->content_type = arena_strdup(x->arena, content_type);
		n = xchg_response_headers(x, h);
		http_write_head(&x->stream, status, content_type, -1, true,
		    x->req.keep_alive, h, n);
	}
	pthread_mutex_unlock(&x->lock);
	if (rc == 0)
		xchg_hand_back(x, -1);
	return rc;
}

int
xchg_stream_write(struct http_exchange *x, const void *data, size_t len)
{
	int rc = 0;

	if (len == 0)
		return 0;
	pthread_mutex_lock(&x->lock);
	while (!x->client_gone && buf_rlen(&x->stream) > XCHG_STREAM_HIGH)
		pthread_cond_wait(&x->drained, &x->lock);
	if (x->client_gone)
		rc = -1;
	else
		http_write_chunk(&x->stream, data, len);
	pthread_mutex_unlock(&x->lock);
	if (rc == 0)
		xchg_hand_back(x, -1);
	return rc;
}
