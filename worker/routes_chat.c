/*
 * routes_chat.c -- POST /api/v1/chat and POST /api/v1/chat/stream.
 *
 * One turn: validate the ChatRequest, claim an Idempotency-Key (or replay
 * the first request's reply, waiting for it while it runs), read the
 * thread's history, run the flow (its language-model calls record their
 * usage rows at once), then write the turn in one transaction and only then
 * answer 2xx (RELIABILITY D2).  Runs on a flow thread; it never touches a
 * socket (streaming goes through xchg_stream_*).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flows/ctx.h"
#include "flows/registry.h"
#include "lib/crypto.h"
#include "lib/db.h"
#include "lib/json.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

#define CHAT_STREAM_CHUNK 100      /* characters per content frame (reference) */
#define CHAT_MEMORY_CHARS 200      /* per message in thread_memory (reference) */
#define CHAT_IDEMPOTENCY_MAX 255
#define CHAT_CLAIM_POLL_MS 50      /* a retry polls its key's first request */
#define CHAT_CLAIM_SLACK_MS 5000   /* a claim outlives its turn's deadlines by this */

struct chat_request {
	const char *user_prompt;
	const char *conversation_flow;
	const char *thread_id;
	const char *user_id;
	const char *user_name;
	const char *topic;
	const char *event_type;
	bool memory_record;
};

/* Parse and check the body; false when a response was set. */
static bool
chat_parse(struct http_exchange *x, struct chat_request *cr)
{
	const cJSON *root, *obj;
	struct err e;
	bool b;
	enum json_get g;
	char msg[64];

	memset(cr, 0, sizeof(*cr));
	cr->memory_record = true;
	err_clear(&e);
	root = json_parse(x->arena, x->body, x->body_len, x->cfg->server.max_json_depth, &e);
	if (root == NULL) {
		/* bad bytes are a 400 (RELIABILITY H2); bad syntax the reference's 422 */
		if (strstr(e.msg, "UTF-8") || strstr(e.msg, "NUL") ||
		    strstr(e.msg, "u0000") || strstr(e.msg, "nesting") ||
		    strstr(e.msg, "surrogate")) {
			xchg_error(x, 400, e.msg);
			return false;
		}
		xchg_validation_error(x, "JSON parsing failed. Your request contains malformed JSON.",
		    "Check your JSON syntax: quotes, commas and brackets. For a JSON payload "
		    "inside user_prompt, escape it as a string or send the body from a file "
		    "(curl -d @file.json).");
		return false;
	}
	if (!cJSON_IsObject(root)) {
		xchg_validation_error(x, "Invalid request format. Please check your input data.",
		    "Send a JSON object with 'user_prompt' and 'conversation_flow'.");
		return false;
	}
#define CHAT_FIELD(getter, key, req, out) \
	if ((g = getter(root, key, req, out, &e)) == JSON_GET_ERROR) { \
		xchg_validation_error(x, e.msg, strstr(e.msg, "missing") ? \
		    "Add the missing '" key "' field to your request body and ensure both " \
		    "'user_prompt' and 'conversation_flow' are provided." : \
		    "Check the type of '" key "' in your request body."); \
		return false; \
	}
	CHAT_FIELD(json_get_string, "user_prompt", true, &cr->user_prompt)
	CHAT_FIELD(json_get_string, "conversation_flow", true, &cr->conversation_flow)
	CHAT_FIELD(json_get_string, "thread_id", false, &cr->thread_id)
	CHAT_FIELD(json_get_string, "user_id", false, &cr->user_id)
	CHAT_FIELD(json_get_string, "user_name", false, &cr->user_name)
	CHAT_FIELD(json_get_string, "topic", false, &cr->topic)
	CHAT_FIELD(json_get_string, "event_type", false, &cr->event_type)
	CHAT_FIELD(json_get_string, "thread_memory", false, &(const char *){ NULL })
	CHAT_FIELD(json_get_bool, "stream", false, &b)
	b = true;
	CHAT_FIELD(json_get_bool, "memory_record", false, &b)
	cr->memory_record = b;
	CHAT_FIELD(json_get_object, "thread_chat_history", false, &obj)
#undef CHAT_FIELD
	if (cr->conversation_flow[0] == '\0') {
		xchg_detail(x, 400, "conversation_flow not set");
		return false;
	}
	if (cr->user_id == NULL || cr->user_id[0] == '\0')
		cr->user_id = "unspecified_user";
	if (cr->thread_id != NULL && cr->thread_id[0] == '\0')
		cr->thread_id = NULL;
	/* what the database would refuse only after the flow spent its tokens */
	if (cr->thread_id != NULL && strlen(cr->thread_id) > DB_THREAD_ID_MAX) {
		snprintf(msg, sizeof(msg), "thread_id is longer than %d characters",
		    DB_THREAD_ID_MAX);
		xchg_detail(x, 400, msg);
		return false;
	}
	if (x->user == NULL && strlen(cr->user_id) > DB_OWNER_MAX) {
		snprintf(msg, sizeof(msg), "user_id is longer than %d characters",
		    DB_OWNER_MAX);
		xchg_detail(x, 400, msg);
		return false;
	}
	return true;
}

/* The ChatResponse of the reference: every key, nulls included. */
static char *
chat_response_body(struct http_exchange *x, const char *thread_id,
    const char *message_id, const struct ing_chat_reply *r, long tokens)
{
	struct buf b = BUF_INIT;
	char *out;

	buf_puts(&b, "{\"thread_id\":");
	buf_json_string(&b, thread_id);
	buf_puts(&b, ",\"message_id\":");
	buf_json_string(&b, message_id);
	buf_puts(&b, ",\"agent_response\":");
	buf_json_string(&b, r->agent_response);
	buf_puts(&b, ",\"followup_questions\":");
	buf_puts(&b, r->followup_questions ? r->followup_questions : "{}");
	buf_printf(&b, ",\"token_count\":%ld,\"max_token_count\":0,\"topic\":", tokens);
	buf_json_string(&b, r->topic);
	buf_puts(&b, ",\"memory_summary\":");
	buf_json_string(&b, r->memory_summary);
	buf_puts(&b, ",\"event_type\":");
	buf_json_string(&b, r->event_type);
	buf_putc(&b, '}');
	out = arena_strndup(x->arena, b.data, b.len);
	buf_free(&b);
	return out;
}

/* "user: first 200 chars..." lines, or the reference's text for a new thread. */
static const char *
chat_thread_memory(struct http_exchange *x, const struct db_history *h)
{
	struct buf b = BUF_INIT;
	const char *out;
	size_t i;

	if (h->n == 0)
		return "no existing context.";
	for (i = 0; i < h->n; i++) {
		const char *c = h->messages[i].content ? h->messages[i].content : "";

		if (i > 0)
			buf_putc(&b, '\n');
		buf_printf(&b, "%s: %.*s...", h->messages[i].role, CHAT_MEMORY_CHARS, c);
	}
	out = arena_strndup(x->arena, b.data, b.len);
	buf_free(&b);
	return out;
}

/* True if a stored message says the content filter fired. */
static bool
chat_filtered(const struct db_history *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		const char *f = h->messages[i].content_filter_results;

		if (f != NULL && strstr(f, "\"filtered\":true") != NULL)
			return true;
	}
	return false;
}

/*
 * Claim the Idempotency-Key for this turn, or answer with the reply of the
 * first request that used it: at once when that one has finished, after
 * waiting for it while it runs (up to the LLM deadline, then 409).  True
 * when this request holds the claim and must run the turn; false when a
 * response was set.
 */
static bool
chat_claim(struct http_exchange *x, const char *owner, const char *idem,
    const char *request_hash, char claim[DB_UUID_LEN])
{
	struct db_pool *db = x->w->db;
	struct db_idempotent prev;
	struct err e;
	int64_t deadline = llm_clock_ms() + x->cfg->llm.timeout_ms;
	int stale = x->cfg->llm.timeout_ms + x->cfg->chat_history.statement_timeout_ms +
	    CHAT_CLAIM_SLACK_MS;
	struct timespec nap = { 0, CHAT_CLAIM_POLL_MS * 1000000L };
	enum db_status ds;

	db_new_uuid(claim);
	for (;;) {
		err_clear(&e);
		ds = db_idempotency_claim(db, owner, idem, claim, stale, &e);
		if (ds == DB_OK)
			return true;
		if (ds == DB_EXISTS)
			ds = db_idempotency_get(db, owner, idem, x->arena, &prev, &e);
		if (ds == DB_ERROR) {
			routes_db_error(x, &e, "could not store the conversation");
			return false;
		}
		if (ds == DB_OK && prev.status != DB_IDEMPOTENCY_PENDING) {
			/* the same key with another body is a client bug, not a retry */
			if (prev.request_hash != NULL && request_hash != NULL &&
			    strcmp(prev.request_hash, request_hash) != 0) {
				xchg_detail(x, 422, "Idempotency-Key was already used with a "
				    "different request body");
				return false;
			}
			xchg_json(x, prev.status, prev.body);
			xchg_header(x, "Idempotent-Replayed", "true");
			return false;
		}
		if (llm_clock_ms() >= deadline) {
			xchg_error(x, 409, "a request with this Idempotency-Key is still "
			    "in progress");
			xchg_header(x, "Retry-After", "1");
			return false;
		}
		/* pending: wait for the first request; gone: it failed, claim again */
		if (ds == DB_OK)
			nanosleep(&nap, NULL);
	}
}

/* ---- streaming ---------------------------------------------------------- */

struct chat_stream {
	struct http_exchange *x;
	const char *thread_id;
	const char *message_id;
	bool started, gone;
};

static int
chat_stream_frame(struct chat_stream *s, const char *json)
{
	struct buf b = BUF_INIT;
	int rc;

	if (s->gone)
		return -1;
	if (!s->started) {
		if (xchg_stream_begin(s->x, 200, "text/event-stream") != 0) {
			s->gone = true;
			return -1;
		}
		s->started = true;
	}
	buf_puts(&b, "data: ");
	buf_puts(&b, json);
	buf_puts(&b, "\n\n");
	rc = xchg_stream_write(s->x, b.data, b.len);
	buf_free(&b);
	if (rc != 0)
		s->gone = true;
	return rc;
}

/* {"event":"data","data":{ChatResponseChunk},"error":null} */
static int
chat_stream_chunk(struct chat_stream *s, const char *type, const char *content,
    long tokens, const char *memory, bool final)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_puts(&b, "{\"event\":\"data\",\"data\":{\"thread_id\":");
	buf_json_string(&b, s->thread_id);
	buf_puts(&b, ",\"message_id\":");
	buf_json_string(&b, s->message_id);
	buf_puts(&b, ",\"chunk_type\":");
	buf_json_string(&b, type);
	buf_puts(&b, ",\"content\":");
	buf_json_string(&b, content);
	if (final)
		buf_printf(&b, ",\"token_count\":%ld,\"max_token_count\":0", tokens);
	else
		buf_puts(&b, ",\"token_count\":null,\"max_token_count\":null");
	buf_puts(&b, ",\"topic\":null,\"memory_summary\":");
	buf_json_string(&b, memory);
	buf_printf(&b, ",\"followup_questions\":null,\"event_type\":null,\"is_final\":%s},"
	    "\"error\":null}", final ? "true" : "false");
	rc = chat_stream_frame(s, buf_cstr(&b));
	buf_free(&b);
	return rc;
}

static int
chat_emit(void *arg, const char *text)
{
	return chat_stream_chunk(arg, "content", text, 0, NULL, false);
}

static void
chat_stream_error(struct chat_stream *s, const char *msg)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "{\"event\":\"error\",\"data\":null,\"error\":");
	buf_json_string(&b, msg);
	buf_putc(&b, '}');
	chat_stream_frame(s, buf_cstr(&b));
	buf_free(&b);
}

/* ---- the turn ------------------------------------------------------------- */

static void
chat_turn(struct http_exchange *x, bool stream)
{
	struct worker *w = x->w;
	struct chat_request cr;
	const struct ing_flow *flow;
	struct ing_chat_request req;
	struct ing_chat_reply reply;
	struct ing_ctx ctx;
	struct db_history hist;
	struct db_message msgs[2];
	struct db_turn turn;
	struct db_turn_result res;
	struct chat_stream st;
	struct ing_message *hmsgs;
	struct err e;
	const char *owner, *idem, *body, *agent;
	char thread_id[DB_UUID_LEN], user_msg_id[DB_UUID_LEN], reply_id[DB_UUID_LEN];
	char claim[DB_UUID_LEN], request_hash[CRYPTO_SHA256_HEX_LEN + 1];
	bool claimed = false, saved = false;
	char flow_name[128];
	enum db_status ds;
	size_t i;

	if (!chat_parse(x, &cr))
		return;
	flow = registry_find(w->flows, cr.conversation_flow);
	if (flow == NULL) {
		struct buf b = BUF_INIT;

		buf_printf(&b, "Unknown conversation flow '%s'. Available: [", cr.conversation_flow);
		for (i = 0; i < registry_count(w->flows); i++)
			buf_printf(&b, "%s'%s'", i ? ", " : "", registry_at(w->flows, i)->name);
		buf_putc(&b, ']');
		xchg_detail(x, 400, buf_cstr(&b));
		buf_free(&b);
		return;
	}
	registry_normalize(cr.conversation_flow, flow_name, sizeof(flow_name));
	/* the owner of a thread: the authenticated user, else the reference's user_id */
	owner = x->user != NULL ? x->user : cr.user_id;

	idem = xchg_header_in(x, "Idempotency-Key");
	if (idem != NULL && (idem[0] == '\0' || strlen(idem) > CHAT_IDEMPOTENCY_MAX)) {
		xchg_error(x, 400, "Idempotency-Key must be 1 to 255 characters");
		return;
	}
	err_clear(&e);
	if (idem != NULL && !stream) {
		/* a retry waits for the first request instead of running it again;
		 * every exit below releases the claim unless the turn was saved */
		if (crypto_sha256_hex(x->body, x->body_len, request_hash, &e) != 0) {
			xchg_error(x, 500, "could not hash the request");
			return;
		}
		if (!chat_claim(x, owner, idem, request_hash, claim))
			return;
		claimed = true;
	}

	if (cr.thread_id == NULL)
		db_new_uuid(thread_id);   /* a new thread */
	memset(&hist, 0, sizeof(hist));
	if (cr.thread_id != NULL) {
		ds = db_thread_history(w->db, cr.thread_id, x->user, x->cfg->chat_history.history_limit,
		    x->arena, &hist, &e);
		if (ds == DB_ERROR) {
			routes_db_error(x, &e, "could not store the conversation");
			goto out;
		}
		if (ds == DB_NOT_OWNER) {
			xchg_detail(x, 404, "Not Found");
			goto out;
		}
		if (chat_filtered(&hist)) {
			xchg_detail(x, 406, LLM_MSG_CONTENT_FILTER);
			goto out;
		}
	} else if (cr.memory_record && !claimed && !db_ready(w->db)) {
		/* nothing has asked the database yet: a turn that cannot be
		 * stored answers 503 now, before the flow spends tokens (D1) */
		err_set(&e, 503, "database unavailable");
		routes_db_error(x, &e, "could not store the conversation");
		goto out;
	}
	db_new_uuid(user_msg_id);
	db_new_uuid(reply_id);

	memset(&req, 0, sizeof(req));
	req.user_prompt = cr.user_prompt;
	req.conversation_flow = flow_name;
	req.thread_id = cr.thread_id != NULL ? cr.thread_id : thread_id;
	req.user_id = cr.user_id;
	req.user_name = cr.user_name;
	req.topic = cr.topic;
	req.event_type = cr.event_type;
	req.thread_memory = chat_thread_memory(x, &hist);
	hmsgs = arena_zalloc(x->arena, (hist.n + 1) * sizeof(*hmsgs));
	for (i = 0; i < hist.n; i++) {
		hmsgs[i].role = hist.messages[i].role;
		hmsgs[i].content = hist.messages[i].content ? hist.messages[i].content : "";
		hmsgs[i].name = hist.messages[i].agent_name;
	}
	req.history = hmsgs;
	req.n_history = hist.n;

	ctx_init(&ctx, x->arena, x->cfg);
	ctx.llm = w->llm;
	ctx.db = w->db;
	ctx.slot = w->slot;
	ctx.request_id = x->request_id;
	ctx.user_id = cr.user_id;
	ctx.thread_id = req.thread_id;
	ctx.flow = flow_name;
	ctx.deadline_ms = llm_clock_ms() + x->cfg->llm.timeout_ms;
	memset(&st, 0, sizeof(st));
	st.x = x;
	st.thread_id = req.thread_id;
	st.message_id = reply_id;
	if (stream) {
		ctx.emit = chat_emit;
		ctx.emit_arg = &st;
	}
	memset(&reply, 0, sizeof(reply));
	if (flow->run(&ctx, &req, &reply) != 0 || reply.agent_response == NULL) {
		int status = ctx.err_status ? ctx.err_status : 500;
		const char *msg = ctx.err_msg[0] ? ctx.err_msg : "the flow produced no response";

		log_warn("running flow", "flow %s failed with %d: %s", flow_name, status, msg);
		if (stream) {
			chat_stream_error(&st, msg);
			goto out;
		}
		if (status == 406 || status == 413 || status == 400)
			xchg_detail(x, status, msg);
		else if (status == 503 && ctx.retry_after > 0)
			xchg_error_retry(x, status, msg, ctx.retry_after);
		else
			xchg_error(x, status, msg);
		goto out;
	}
	agent = reply.agent_name ? reply.agent_name : flow_name;
	body = chat_response_body(x, req.thread_id, reply_id, &reply, ctx.total_tokens);

	if (cr.memory_record) {
		memset(msgs, 0, sizeof(msgs));
		msgs[0].id = user_msg_id;
		msgs[0].role = "user";
		msgs[0].content = cr.user_prompt;
		msgs[1].id = reply_id;
		msgs[1].role = "assistant";
		msgs[1].agent_name = agent;
		msgs[1].content = reply.agent_response;
		memset(&turn, 0, sizeof(turn));
		turn.thread_id = req.thread_id;
		turn.owner = owner;
		turn.enforce_owner = x->user != NULL;
		turn.flow = flow_name;
		turn.user_id = cr.user_id;
		turn.messages = msgs;
		turn.n_messages = 2;
		turn.reply_index = 1;
		turn.memory_summary = reply.memory_summary;
		turn.usage_ids = ctx.usage_ids;
		turn.n_usage_ids = ctx.n_usage_ids;
		if (!stream && idem != NULL) {
			turn.idempotency_key = idem;
			turn.request_hash = request_hash;
			turn.reply_status = 200;
			turn.reply_body = body;
			turn.idempotency_claim = claimed ? claim : NULL;
		}
		memset(&res, 0, sizeof(res));
		ds = db_save_turn(w->db, &turn, x->arena, &res, &e);
		if (ds == DB_REPLAYED && res.replay_status == DB_IDEMPOTENCY_PENDING) {
			/* our claim expired and another request holds the key now */
			xchg_error(x, 409, "a request with this Idempotency-Key is still "
			    "in progress");
			xchg_header(x, "Retry-After", "1");
			goto out;
		}
		if (ds == DB_REPLAYED) {
			/* a concurrent retry with the same key won the race */
			xchg_json(x, res.replay_status, res.replay_body);
			xchg_header(x, "Idempotent-Replayed", "true");
			goto out;
		}
		if (ds == DB_NOT_OWNER) {
			if (stream)
				chat_stream_error(&st, "Not Found");
			else
				xchg_detail(x, 404, "Not Found");
			goto out;
		}
		if (ds != DB_OK) {
			if (stream)
				chat_stream_error(&st, "chat history database unavailable, retry later");
			else
				routes_db_error(x, &e, "could not store the conversation");
			goto out;
		}
		saved = true;
	}

	if (!stream) {
		xchg_json(x, 200, body);
		goto out;
	}
	/* flows that did not stream their answer send it in 100-character pieces */
	if (!st.started) {
		size_t len = strlen(reply.agent_response), off;

		for (off = 0; off < len && !st.gone; off += CHAT_STREAM_CHUNK)
			chat_stream_chunk(&st, "content", arena_strndup(x->arena,
			    reply.agent_response + off, CHAT_STREAM_CHUNK), 0, NULL, false);
	}
	chat_stream_chunk(&st, "final", "", ctx.total_tokens, reply.memory_summary, true);
	chat_stream_frame(&st, "{\"event\":\"done\",\"data\":null,\"error\":null}");
out:
	/* a failed or unsaved turn lets go of its key: a retry runs it again */
	if (claimed && !saved && db_idempotency_release(w->db, owner, idem, claim, &e) != 0)
		log_warn("releasing an idempotency key", "the key stays claimed until "
		    "it expires: %s", e.msg);
}

void
routes_chat(struct http_exchange *x)
{
	chat_turn(x, false);
}

void
routes_chat_stream(struct http_exchange *x)
{
	chat_turn(x, true);
}
