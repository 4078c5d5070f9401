/*
 * turn.c -- one chat turn: prepare (find the flow, claim the
 * Idempotency-Key or replay the first request's reply, read the thread's
 * history and memory), run the flow (its language-model calls record their
 * usage rows at once), save the turn in one transaction, and only then
 * answer 2xx (docs/reliability.md D2).
 *
 * How the turn answers is a strategy chosen once (struct turn_mode): one
 * JSON ChatResponse, or the SSE stream of /chat/stream (the Python
 * product's API), whose content frames carry at most
 * web_configuration.streaming_chunk_size characters, cut on character
 * boundaries.  It runs on a flow thread and never touches a socket
 * (streaming goes through xchg_stream_*); it never parses a request body
 * (the chat routes do).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flows/ctx.h"
#include "flows/registry.h"
#include "lib/clock.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/db.h"
#include "lib/json.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/services.h"
#include "worker/turn.h"
#include "worker/usage.h"
#include "worker/worker.h"

#define TURN_STREAM_CHUNK 100      /* characters per content frame when unset (reference) */
#define TURN_MEMORY_CHARS 200      /* per message in thread_memory (reference) */
#define TURN_IDEMPOTENCY_MAX 255
#define TURN_CLAIM_POLL_MS 50      /* a retry polls its key's first request */
#define TURN_CLAIM_SLACK_MS 5000   /* a claim outlives its turn's deadlines by this */

#define TURN_MSG_IN_PROGRESS "a request with this Idempotency-Key is still in progress"
#define TURN_MSG_STORE "could not store the conversation"
#define TURN_MSG_PROMPT_TOO_LONG "This prompt is longer than the model's context " \
	"length: shorten it (a new conversation would not help)."
#define TURN_MSG_STORE_STREAM "chat history database unavailable, retry later"

struct turn;

static void turn_sse_error(struct turn *t, const char *msg);

/* How a turn answers: chosen once, by enum turn_reply. */
struct turn_mode {
	bool streams;           /* an SSE stream: errors after the head are frames */
	bool idempotent;        /* claims the Idempotency-Key and stores the reply with it */
	/* the flow's output while it runs; NULL: the client gets it at the end */
	int (*emit)(void *turn, const char *text);
	/* the flow's events while it runs; NULL: none are sent */
	int (*event)(void *turn, const char *type, const char *json);
	/* the flow's status chunks (ing_emit_progress); NULL: none are sent */
	int (*progress)(void *turn, const char *text);
	/* the flow failed (retry_after: seconds of a 503, 0 = not known) */
	void (*fail)(struct turn *t, int status, const char *msg, int retry_after);
	/* the save failed: DB_NOT_OWNER, or an error in e */
	void (*fail_store)(struct turn *t, enum db_status ds, const struct err *e);
	/* the reply, once the turn is stored (or not to be stored) */
	void (*finish)(struct turn *t);
};

/* One turn, from the parsed request to the reply. */
struct turn {
	struct http_exchange *x;
	struct worker *w;
	const struct turn_request *req;
	const struct turn_mode *mode;

	const struct ing_flow *flow;
	char flow_name[DB_FLOW_MAX + 1];    /* normalized */
	const char *owner;                  /* of the thread */
	const char *idem;                   /* Idempotency-Key, or NULL */
	char request_hash[CRYPTO_SHA256_HEX_LEN + 1];
	char claim[DB_UUID_LEN];
	bool claimed, saved;

	char new_thread_id[DB_UUID_LEN];
	const char *thread_id;              /* the request's, or new_thread_id */
	char user_msg_id[DB_UUID_LEN], reply_id[DB_UUID_LEN], output_id[DB_UUID_LEN];
	struct db_history hist;

	struct ing_chat_request flow_req;   /* what the flow sees */
	struct ctx_services svc;
	struct ing_ctx ctx;
	struct usage_turn usage;            /* the model calls' llm_usage rows */
	int64_t *usage_ids;                 /* the rows committed at once (ids > 0) */
	size_t n_usage_ids;
	struct ing_chat_reply reply;
	const char *body;                   /* the ChatResponse */

	bool started, gone;                 /* the stream: head sent, client gone */
	bool content_sent;                  /* a content frame went out (not only events) */
};

/* ---- replies shared by both modes --------------------------------------- */

/* 409: another request holds the key and is still running. */
static void
turn_reply_in_progress(struct http_exchange *x)
{
	xchg_error(x, 409, TURN_MSG_IN_PROGRESS);
	xchg_header(x, "Retry-After", "1");
}

/* The stored reply of the key's first request. */
static void
turn_reply_replayed(struct http_exchange *x, int status, const char *body)
{
	xchg_json(x, status, body);
	xchg_header(x, "Idempotent-Replayed", "true");
}

/* 404 with the flows there are (the reference's 500 named module paths);
 * a stream gets the reference's error frame. */
static void
turn_reply_unknown_flow(struct turn *t, const char *name)
{
	struct http_exchange *x = t->x;
	struct buf b = BUF_INIT;
	size_t i;

	if (t->mode->streams) {
		buf_printf(&b, "Conversation flow not found: %s", name);
		turn_sse_error(t, buf_cstr(&b));
		buf_free(&b);
		return;
	}
	buf_printf(&b, "Unknown conversation flow '%s'. Available: [", name);
	for (i = 0; i < registry_count(x->w->flows); i++)
		buf_printf(&b, "%s'%s'", i ? ", " : "", registry_at(x->w->flows, i)->name);
	buf_putc(&b, ']');
	xchg_detail(x, 404, buf_cstr(&b));
	buf_free(&b);
}

/* The reference's answer for a built-in flow the configuration turned off. */
static void
turn_reply_disabled_flow(struct http_exchange *x, const char *name)
{
	char norm[REGISTRY_NAME_MAX], msg[REGISTRY_NAME_MAX + 160];

	snprintf(msg, sizeof(msg), "Built-in workflow '%s' is disabled. Enable it "
	    "with chat_service.enable_builtin_workflows = true or use a custom "
	    "workflow.", registry_normalize(name, norm, sizeof(norm)));
	xchg_detail(x, 400, msg);
}

/* The message_id a client sees: the flow's (bike-insights: the payload's
 * identifier), else the stored answer's id. */
static const char *
turn_message_id(const struct turn *t)
{
	return t->reply.message_id != NULL ? t->reply.message_id : t->reply_id;
}

/* The token_count a client sees: the flow's, else what the turn spent. */
static long
turn_token_count(const struct turn *t)
{
	return t->reply.token_count > 0 ? t->reply.token_count : t->ctx.total_tokens;
}

/* The ChatResponse of the reference: every key, nulls included. */
static const char *
turn_response_body(struct turn *t)
{
	const struct ing_chat_reply *r = &t->reply;
	struct buf b = BUF_INIT;
	char *out;

	buf_puts(&b, "{\"thread_id\":");
	buf_json_string(&b, t->thread_id);
	buf_puts(&b, ",\"message_id\":");
	buf_json_string(&b, turn_message_id(t));
	buf_puts(&b, ",\"agent_response\":");
	buf_json_string(&b, r->agent_response);
	buf_puts(&b, ",\"followup_questions\":");
	buf_puts(&b, r->followup_questions ? r->followup_questions : "{}");
	buf_printf(&b, ",\"token_count\":%ld,\"max_token_count\":0,\"topic\":",
	    turn_token_count(t));
	buf_json_string(&b, r->topic);
	buf_puts(&b, ",\"memory_summary\":");
	buf_json_string(&b, r->memory_summary);
	buf_puts(&b, ",\"event_type\":");
	buf_json_string(&b, r->event_type);
	buf_putc(&b, '}');
	out = arena_strndup(t->x->arena, b.data, b.len);
	buf_free(&b);
	return out;
}

/* ---- the JSON reply ------------------------------------------------------ */

static void
turn_json_fail(struct turn *t, int status, const char *msg, int retry_after)
{
	if (status == 406 || status == 413 || status == 400)
		xchg_detail(t->x, status, msg);
	else if (status == 503 && retry_after > 0)
		xchg_error_retry(t->x, status, msg, retry_after);
	else
		xchg_error(t->x, status, msg);
}

static void
turn_json_fail_store(struct turn *t, enum db_status ds, const struct err *e)
{
	if (ds == DB_NOT_OWNER)
		xchg_detail(t->x, 404, "Not Found");
	else
		routes_db_error(t->x, e, TURN_MSG_STORE);
}

static void
turn_json_finish(struct turn *t)
{
	xchg_json(t->x, 200, t->body);
}

static const struct turn_mode turn_json = {
	.streams = false,
	.idempotent = true,
	.emit = NULL,
	.event = NULL,
	.progress = NULL,
	.fail = turn_json_fail,
	.fail_store = turn_json_fail_store,
	.finish = turn_json_finish,
};

/* ---- the SSE stream -------------------------------------------------------- */

/* One `data: <json>\n\n` frame; the head goes out with the first. */
static int
turn_sse_frame(struct turn *t, const char *json)
{
	struct buf b = BUF_INIT;
	int rc;

	if (t->gone)
		return -1;
	if (!t->started) {
		if (xchg_stream_begin(t->x, 200, "text/event-stream") != 0) {
			t->gone = true;
			return -1;
		}
		t->started = true;
	}
	buf_puts(&b, "data: ");
	buf_puts(&b, json);
	buf_puts(&b, "\n\n");
	rc = xchg_stream_write(t->x, b.data, b.len);
	buf_free(&b);
	if (rc != 0)
		t->gone = true;
	return rc;
}

/* {"event":"data","data":{ChatResponseChunk},"error":null}; content is
 * content_len bytes of text. */
static int
turn_sse_chunk(struct turn *t, const char *type, const char *content,
    size_t content_len, bool final)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_puts(&b, "{\"event\":\"data\",\"data\":{\"thread_id\":");
	buf_json_string(&b, t->thread_id);
	buf_puts(&b, ",\"message_id\":");
	buf_json_string(&b, turn_message_id(t));
	buf_puts(&b, ",\"chunk_type\":");
	buf_json_string(&b, type);
	buf_puts(&b, ",\"content\":");
	buf_json_string(&b, arena_strndup(t->x->arena, content, content_len));
	if (final)
		buf_printf(&b, ",\"token_count\":%ld,\"max_token_count\":0",
		    turn_token_count(t));
	else
		buf_puts(&b, ",\"token_count\":null,\"max_token_count\":null");
	buf_puts(&b, ",\"topic\":null,\"memory_summary\":");
	buf_json_string(&b, final ? t->reply.memory_summary : NULL);
	buf_printf(&b, ",\"followup_questions\":null,\"event_type\":null,\"is_final\":%s},"
	    "\"error\":null}", final ? "true" : "false");
	rc = turn_sse_frame(t, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

/* Content frames of at most streaming_chunk_size characters each, never a
 * UTF-8 sequence cut in two.  -1 once the client is gone. */
static int
turn_sse_emit(void *arg, const char *text)
{
	struct turn *t = arg;
	int chunk = t->x->cfg->web.streaming_chunk_size;
	size_t len = strlen(text), off = 0, n;

	if (chunk <= 0)
		chunk = TURN_STREAM_CHUNK;
	t->content_sent = true;
	while (off < len) {
		n = json_utf8_prefix(text + off, len - off, (size_t)chunk);
		if (turn_sse_chunk(t, "content", text + off, n, false) != 0)
			return -1;
		off += n;
	}
	return 0;
}

/* A status chunk (the reference's chunk_type "status"): not content, so a
 * flow that streams nothing else still gets its answer sent at the end. */
static int
turn_sse_progress(void *arg, const char *text)
{
	return turn_sse_chunk(arg, "status", text, strlen(text), false);
}

/* {"event":<type>,"data":<json>,"error":null}: a flow's event (an agent's
 * start and end, a tool call, a status line).  A client of the reference
 * reads only "data" frames and skips these. */
static int
turn_sse_event(void *arg, const char *type, const char *json)
{
	struct turn *t = arg;
	struct buf b = BUF_INIT;
	int rc;

	buf_puts(&b, "{\"event\":");
	buf_json_string(&b, type);
	buf_puts(&b, ",\"data\":");
	buf_puts(&b, json);
	buf_puts(&b, ",\"error\":null}");
	rc = turn_sse_frame(t, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

/* {"event":"error","data":null,"error":<msg>}: a stream's failure (HTTP 200). */
static void
turn_sse_error(struct turn *t, const char *msg)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "{\"event\":\"error\",\"data\":null,\"error\":");
	buf_json_string(&b, msg);
	buf_putc(&b, '}');
	(void)turn_sse_frame(t, buf_cstr(&b));
	buf_free(&b);
}

static void
turn_sse_fail(struct turn *t, int status, const char *msg, int retry_after)
{
	(void)status;
	(void)retry_after;
	turn_sse_error(t, msg);
}

static void
turn_sse_fail_store(struct turn *t, enum db_status ds, const struct err *e)
{
	(void)e;
	turn_sse_error(t, ds == DB_NOT_OWNER ? "Not Found" :
	    t->w->db != NULL && strcmp(db_pool_source(t->w->db), "libpq defaults") == 0 ?
	    ROUTES_MSG_NO_DB :
	    TURN_MSG_STORE_STREAM);
}

static void
turn_sse_finish(struct turn *t)
{
	/* a flow that did not stream its answer sends it now, in pieces (status
	 * and agent events may have started the stream already) */
	if (!t->content_sent)
		(void)turn_sse_emit(t, t->reply.agent_response);
	(void)turn_sse_chunk(t, "final", "", 0, true);
	(void)turn_sse_frame(t, "{\"event\":\"done\",\"data\":null,\"error\":null}");
}

static const struct turn_mode turn_stream = {
	.streams = true,
	.idempotent = false,
	.emit = turn_sse_emit,
	.event = turn_sse_event,
	.progress = turn_sse_progress,
	.fail = turn_sse_fail,
	.fail_store = turn_sse_fail_store,
	.finish = turn_sse_finish,
};

/* ---- prepare --------------------------------------------------------------- */

/*
 * Claim the Idempotency-Key for this turn, or answer with the reply of the
 * first request that used it: at once when that one has finished, after
 * waiting for it while it runs (up to the LLM deadline, then 409).  True
 * when this request holds the claim and must run the turn; false when a
 * response was set.
 */
static bool
turn_claim(struct turn *t)
{
	struct http_exchange *x = t->x;
	struct db_pool *db = t->w->db;
	struct db_idempotent prev;
	struct err e;
	int64_t deadline = clock_now_ms() + x->cfg->llm.timeout_ms;
	int stale = x->cfg->llm.timeout_ms + x->cfg->chat_history.statement_timeout_ms +
	    TURN_CLAIM_SLACK_MS;
	struct timespec nap = { 0, TURN_CLAIM_POLL_MS * 1000000L };
	enum db_status ds;

	db_new_uuid(t->claim);
	for (;;) {
		err_clear(&e);
		ds = db_idempotency_claim(db, t->owner, t->idem, t->claim, stale, &e);
		if (ds == DB_OK)
			return true;
		if (ds == DB_EXISTS)
			ds = db_idempotency_get(db, t->owner, t->idem, x->arena, &prev, &e);
		if (ds == DB_ERROR) {
			routes_db_error(x, &e, TURN_MSG_STORE);
			return false;
		}
		if (ds == DB_OK && prev.status != DB_IDEMPOTENCY_PENDING) {
			/* the same key with another body is a client bug, not a retry */
			if (prev.request_hash != NULL &&
			    strcmp(prev.request_hash, t->request_hash) != 0) {
				xchg_detail(x, 422, "Idempotency-Key was already used with a "
				    "different request body");
				return false;
			}
			turn_reply_replayed(x, prev.status, prev.body);
			return false;
		}
		if (clock_now_ms() >= deadline) {
			turn_reply_in_progress(x);
			return false;
		}
		/* pending: wait for the first request; gone: it failed, claim again */
		if (ds == DB_OK)
			nanosleep(&nap, NULL);
	}
}

/* Check the Idempotency-Key and, when the mode honours it, claim it. */
static bool
turn_key(struct turn *t)
{
	struct http_exchange *x = t->x;
	struct err e;

	t->idem = xchg_header_in(x, "Idempotency-Key");
	if (t->idem != NULL && (t->idem[0] == '\0' ||
	    strlen(t->idem) > TURN_IDEMPOTENCY_MAX)) {
		xchg_error(x, 400, "Idempotency-Key must be 1 to 255 characters");
		return false;
	}
	if (t->idem == NULL || !t->mode->idempotent)
		return true;
	/* a retry waits for the first request instead of running it again;
	 * every exit after this releases the claim unless the turn was saved */
	err_clear(&e);
	if (crypto_sha256_hex(x->body, x->body_len, t->request_hash, &e) != 0) {
		xchg_error(x, 500, "could not hash the request");
		return false;
	}
	if (!turn_claim(t))
		return false;
	t->claimed = true;
	return true;
}

/* True if a stored message says the content filter fired. */
static bool
turn_filtered(const struct db_history *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		const char *f = h->messages[i].content_filter_results;

		if (f != NULL && strstr(f, "\"filtered\":true") != NULL)
			return true;
	}
	return false;
}

/* The thread's history, or a new thread (503 now when it could not be
 * stored, before the flow spends tokens: D1). */
static bool
turn_thread(struct turn *t)
{
	struct http_exchange *x = t->x;
	const struct turn_request *cr = t->req;
	struct err e;
	enum db_status ds;

	if (cr->thread_id == NULL) {
		db_new_uuid(t->new_thread_id);   /* a new thread */
		t->thread_id = t->new_thread_id;
	} else {
		t->thread_id = cr->thread_id;
	}
	err_clear(&e);
	if (cr->thread_id != NULL) {
		ds = db_thread_history(t->w->db, cr->thread_id, x->user,
		    x->cfg->chat_history.history_limit, x->arena, &t->hist, &e);
		if (ds == DB_ERROR) {
			routes_db_error(x, &e, TURN_MSG_STORE);
			return false;
		}
		if (ds == DB_NOT_OWNER) {
			xchg_detail(x, 404, "Not Found");
			return false;
		}
		if (turn_filtered(&t->hist)) {
			xchg_detail(x, 406, LLM_MSG_CONTENT_FILTER);
			return false;
		}
	} else if (cr->memory_record && !t->claimed && !db_ready(t->w->db)) {
		/* nothing has asked the database yet */
		err_set(&e, 503, "database unavailable");
		routes_db_error(x, &e, TURN_MSG_STORE);
		return false;
	}
	return true;
}

/* "user: first 200 chars..." lines, or the reference's text for a new thread. */
static const char *
turn_thread_memory(struct turn *t)
{
	const struct db_history *h = &t->hist;
	struct buf b = BUF_INIT;
	const char *out;
	size_t i;

	if (h->n == 0)
		return "no existing context.";
	for (i = 0; i < h->n; i++) {
		const char *c = h->messages[i].content ? h->messages[i].content : "";

		if (i > 0)
			buf_putc(&b, '\n');
		buf_printf(&b, "%s: %.*s...", h->messages[i].role, TURN_MEMORY_CHARS, c);
	}
	out = arena_strndup(t->x->arena, b.data, b.len);
	buf_free(&b);
	return out;
}

/* The request as the flow sees it: completed, with history and memory. */
static void
turn_flow_request(struct turn *t)
{
	const struct turn_request *cr = t->req;
	struct ing_chat_request *fr = &t->flow_req;
	struct ing_message *hmsgs;
	size_t i;

	fr->user_prompt = cr->user_prompt;
	fr->conversation_flow = t->flow_name;
	fr->thread_id = t->thread_id;
	fr->user_id = cr->user_id;
	fr->user_name = cr->user_name;
	fr->topic = cr->topic;
	fr->event_type = cr->event_type;
	fr->thread_memory = turn_thread_memory(t);
	hmsgs = arena_zalloc(t->x->arena, (t->hist.n + 1) * sizeof(*hmsgs));
	for (i = 0; i < t->hist.n; i++) {
		hmsgs[i].role = t->hist.messages[i].role;
		hmsgs[i].content = t->hist.messages[i].content ?
		    t->hist.messages[i].content : "";
		hmsgs[i].name = t->hist.messages[i].agent_name;
	}
	fr->history = hmsgs;
	fr->n_history = t->hist.n;
}

/* The flow, the key, the thread.  False when a response was set. */
static bool
turn_prepare(struct turn *t)
{
	struct http_exchange *x = t->x;
	const struct turn_request *cr = t->req;

	t->flow = registry_find(x->w->flows, cr->conversation_flow);
	if (t->flow == NULL && registry_is_disabled_builtin(x->w->flows,
	    cr->conversation_flow)) {
		turn_reply_disabled_flow(x, cr->conversation_flow);
		return false;
	}
	if (t->flow == NULL) {
		turn_reply_unknown_flow(t, cr->conversation_flow);
		return false;
	}
	registry_normalize(cr->conversation_flow, t->flow_name, sizeof(t->flow_name));
	/* the owner of a thread: the authenticated user, else the reference's user_id */
	t->owner = x->user != NULL ? x->user : cr->user_id;
	if (!turn_key(t) || !turn_thread(t))
		return false;
	db_new_uuid(t->user_msg_id);
	db_new_uuid(t->reply_id);
	turn_flow_request(t);
	return true;
}

/* ---- run, save ------------------------------------------------------------- */

static bool
turn_flow(struct turn *t)
{
	struct http_exchange *x = t->x;
	const struct ctx_turn who = {
		.request_id = x->request_id,
		.user_id = t->req->user_id,
		.thread_id = t->thread_id,
		.flow = t->flow_name,
		.request = &t->flow_req,
		.emit = t->mode->emit,
		.event = t->req->stream_events ? t->mode->event : NULL,
		.progress = t->mode->progress,
		.emit_arg = t,
		.body = t->req->body,
	};
	int status;
	const char *msg;

	services_init(&t->svc, x);
	/* the loop's deadline and the context's count from the same start */
	xchg_deadline_restart(x);
	ctx_init(&t->ctx, x->arena, x->cfg, &t->svc, &who);
	if (t->flow->run(&t->ctx, &t->flow_req, &t->reply) == 0 &&
	    t->reply.agent_response != NULL)
		return true;
	status = t->ctx.err_status ? t->ctx.err_status : 500;
	msg = t->ctx.err_msg[0] ? t->ctx.err_msg : "the flow produced no response";
	/* the reference's advice is to start a new conversation; for the
	 * first turn of one (no history) that cannot help: the prompt itself
	 * is too long for the model */
	if (status == 413 && t->hist.n == 0 && strcmp(msg, LLM_MSG_TOKEN_LIMIT) == 0)
		msg = TURN_MSG_PROMPT_TOO_LONG;
	log_warn("running flow", "flow %s failed with %d: %s", t->flow_name, status, msg);
	t->mode->fail(t, status, msg, t->ctx.retry_after);
	return false;
}

/* Write the turn (when asked to) in one transaction.  False when a
 * response was set. */
static bool
turn_save(struct turn *t)
{
	struct http_exchange *x = t->x;
	struct db_message msgs[3];
	struct db_turn rec;
	struct db_turn_result res;
	struct err e;
	enum db_status ds;
	size_t i;

	t->body = turn_response_body(t);
	if (!t->req->memory_record)
		return true;
	memset(msgs, 0, sizeof(msgs));
	msgs[0].id = t->user_msg_id;
	msgs[0].role = "user";
	msgs[0].content = t->req->user_prompt;
	msgs[1].id = t->reply_id;
	msgs[1].role = "assistant";
	msgs[1].agent_name = t->reply.agent_name ? t->reply.agent_name : t->flow_name;
	msgs[1].content = t->reply.agent_response;
	if (t->reply.output != NULL) {
		/* the reference's extra row: later turns see it in their history */
		db_new_uuid(t->output_id);
		msgs[2].id = t->output_id;
		msgs[2].role = "output";
		msgs[2].agent_name = msgs[1].agent_name;
		msgs[2].content = t->reply.output;
	}
	memset(&rec, 0, sizeof(rec));
	rec.thread_id = t->thread_id;
	rec.owner = t->owner;
	rec.enforce_owner = x->user != NULL;
	rec.flow = t->flow_name;
	rec.user_id = t->req->user_id;
	rec.messages = msgs;
	rec.n_messages = t->reply.output != NULL ? 3 : 2;
	rec.reply_index = 1;
	rec.memory_summary = t->reply.memory_summary;
	/* rows the context could not hold were committed at once (id > 0):
	 * linked by id; the held ones go in with the turn */
	t->usage_ids = arena_alloc(x->arena, (t->ctx.n_usage_ids + 1) * sizeof(int64_t));
	for (i = 0; i < t->ctx.n_usage_ids; i++)
		if (t->ctx.usage_ids[i] > 0)
			t->usage_ids[t->n_usage_ids++] = t->ctx.usage_ids[i];
	rec.usage_ids = t->usage_ids;
	rec.n_usage_ids = t->n_usage_ids;
	rec.usage_json = usage_turn_json(&t->usage, x->arena);
	if (t->mode->idempotent && t->idem != NULL) {
		rec.idempotency_key = t->idem;
		rec.request_hash = t->request_hash;
		rec.reply_status = 200;
		rec.reply_body = t->body;
		rec.idempotency_claim = t->claimed ? t->claim : NULL;
	}
	memset(&res, 0, sizeof(res));
	err_clear(&e);
	worker_note_turn_lead(t->w, (clock_now_us() - x->start_us) / 1000);
	ds = db_save_turn(t->w->db, &rec, x->arena, &res, &e);
	if (ds == DB_OK || ds == DB_REPLAYED)
		/* in the turn's transaction, or recorded unlinked by it */
		usage_turn_committed(t->w, &t->usage);
	if (ds == DB_OK) {
		t->saved = true;
		return true;
	}
	if (ds == DB_REPLAYED && res.replay_status == DB_IDEMPOTENCY_PENDING)
		turn_reply_in_progress(x);   /* our claim expired, another holds the key */
	else if (ds == DB_REPLAYED)
		/* a concurrent retry with the same key won the race */
		turn_reply_replayed(x, res.replay_status, res.replay_body);
	else
		t->mode->fail_store(t, ds, &e);
	return false;
}

void
turn_run(struct http_exchange *x, const struct turn_request *req,
    enum turn_reply how)
{
	struct turn t;
	struct err e;

	memset(&t, 0, sizeof(t));
	t.x = x;
	t.w = x->w;
	t.req = req;
	t.mode = how == TURN_REPLY_STREAM ? &turn_stream : &turn_json;
	usage_turn_init(&t.usage);
	x->usage = &t.usage;
	if (turn_prepare(&t) && turn_flow(&t) && turn_save(&t))
		t.mode->finish(&t);
	/* the calls of a turn that did not commit are billed all the same */
	x->usage = NULL;
	usage_turn_settle(t.w, &t.usage);
	usage_turn_destroy(&t.usage);
	/* a failed or unsaved turn lets go of its key: a retry runs it again */
	err_clear(&e);
	if (t.claimed && !t.saved &&
	    db_idempotency_release(t.w->db, t.owner, t.idem, t.claim, &e) != 0)
		log_warn("releasing an idempotency key", "the key stays claimed until "
		    "it expires: %s", e.msg);
}
