/*
 * routes_history.c -- GET /api/v1/conversations/{thread_id} and
 * PUT /api/v1/messages/{message_id}/feedback, with the reference's field
 * names and error strings (the Python product's API).  When
 * authentication is on, another user's thread is a 404, never its data.
 * Flow-thread handlers: they call the database.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/db.h"
#include "lib/json.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

#define HISTORY_DEFAULT_LIMIT 5    /* the reference's last five */
#define FEEDBACK_HINT "Send a JSON object with 'thread_id' and 'message_id' strings, " \
	"and optionally 'user_id' and a boolean 'positive_feedback'."

void
routes_db_error(struct http_exchange *x, const struct err *e, const char *what)
{
	const char *source = x->w->db != NULL ? db_pool_source(x->w->db) : NULL;

	/* nothing configured is a configuration problem, not a transient one */
	if (e->status == 503 && source != NULL && strcmp(source, "libpq defaults") == 0)
		xchg_error_retry(x, 503, ROUTES_MSG_NO_DB, db_retry_after(x->w->db));
	else if (e->status == 503)
		xchg_error_retry(x, 503, "chat history database unavailable, retry later",
		    db_retry_after(x->w->db));
	else
		xchg_error(x, 500, what);
}

/* A JSON column: the stored JSON text, or null. */
static void
history_json_or_null(struct buf *b, const char *json)
{
	buf_puts(b, json != NULL && json[0] != '\0' ? json : "null");
}

void
routes_conversation(struct http_exchange *x)
{
	const char *thread_id = xchg_param(x, "thread_id");
	struct db_message *m = NULL;
	struct buf b = BUF_INIT;
	struct err e;
	size_t n = 0, i;
	long limit;
	enum db_status ds;

	if (!routes_query_int(x, "limit", 1, DB_HISTORY_MAX, HISTORY_DEFAULT_LIMIT, &limit))
		return;
	err_clear(&e);
	ds = db_thread_messages(x->w->db, thread_id, x->user, (int)limit, x->arena, &m,
	    &n, &e);
	if (ds == DB_ERROR) {
		routes_db_error(x, &e, "could not read the conversation");
		return;
	}
	if (ds == DB_NOT_OWNER) {
		xchg_detail(x, 404, "Not Found");
		return;
	}
	buf_putc(&b, '[');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(&b, ',');
		buf_puts(&b, "{\"user_id\":");
		buf_json_string(&b, m[i].user_id);
		buf_puts(&b, ",\"thread_id\":");
		buf_json_string(&b, m[i].thread_id ? m[i].thread_id : thread_id);
		buf_puts(&b, ",\"message_id\":");
		buf_json_string(&b, m[i].id);
		buf_printf(&b, ",\"positive_feedback\":%s,\"timestamp\":",
		    m[i].positive_feedback < 0 ? "null" :
		    m[i].positive_feedback ? "true" : "false");
		buf_json_string(&b, m[i].created_at);
		buf_puts(&b, ",\"role\":");
		buf_json_string(&b, m[i].role);
		buf_puts(&b, ",\"content\":");
		buf_json_string(&b, m[i].content);
		buf_puts(&b, ",\"content_filter_results\":");
		history_json_or_null(&b, m[i].content_filter_results);
		buf_puts(&b, ",\"tool_calls\":");
		history_json_or_null(&b, m[i].tool_calls);
		buf_puts(&b, ",\"tool_call_id\":");
		buf_json_string(&b, m[i].tool_call_id);
		buf_puts(&b, ",\"tool_call_function\":");
		history_json_or_null(&b, m[i].tool_call_function);
		buf_putc(&b, '}');
	}
	buf_putc(&b, ']');
	xchg_reply(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}

void
routes_feedback(struct http_exchange *x)
{
	const char *path_id = xchg_param(x, "message_id");
	const char *thread_id = NULL, *message_id = NULL, *user_id = NULL;
	const cJSON *root;
	struct err e;
	bool positive = false;
	int pos = -1;
	enum json_get g;
	enum db_status ds;
	char msg[600];

	if (!routes_read_json_object(x, NULL, FEEDBACK_HINT, FEEDBACK_HINT, &root))
		return;
	err_clear(&e);
	if (json_get_string(root, "thread_id", true, &thread_id, &e) == JSON_GET_ERROR ||
	    json_get_string(root, "message_id", true, &message_id, &e) == JSON_GET_ERROR ||
	    json_get_string(root, "user_id", false, &user_id, &e) == JSON_GET_ERROR ||
	    (g = json_get_bool(root, "positive_feedback", false, &positive, &e)) == JSON_GET_ERROR) {
		xchg_validation_error(x, e.msg, FEEDBACK_HINT);
		return;
	}
	if (g == JSON_GET_FOUND)
		pos = positive ? 1 : 0;
	if (strcmp(path_id, message_id) != 0) {
		xchg_detail(x, 400, "Message ID does not match message feedback request.");
		return;
	}
	ds = db_feedback(x->w->db, message_id, thread_id, user_id, x->user, pos, &e);
	switch (ds) {
	case DB_OK:
		snprintf(msg, sizeof(msg), "Feedback submitted for message %s.", message_id);
		{
			struct buf b = BUF_INIT;

			buf_puts(&b, "{\"message\":");
			buf_json_string(&b, msg);
			buf_putc(&b, '}');
			xchg_reply(x, 200, "application/json", b.data, b.len);
			buf_free(&b);
		}
		return;
	case DB_NOT_FOUND:
		snprintf(msg, sizeof(msg), "Message %s not found.", message_id);
		xchg_detail(x, 400, msg);
		return;
	case DB_USER_MISMATCH:
		xchg_detail(x, 400, "User ID does not match message feedback request.");
		return;
	case DB_NOT_OWNER:
		xchg_detail(x, 404, "Not Found");
		return;
	default:
		routes_db_error(x, &e, "could not read the conversation");
		return;
	}
}

#define THREADS_DEFAULT_LIMIT 50

/* GET /api/v1/conversations (ours): the threads newest first, for the web
 * console.  The administrator (or anyone when authentication is off) sees
 * every owner's, or one with ?user_id=; another user their own only. */
void
routes_conversations(struct http_exchange *x)
{
	struct db_thread_summary *t = NULL;
	struct buf b = BUF_INIT;
	const char *user;
	struct err e;
	long limit;
	int n, i;

	if (!routes_query_int(x, "limit", 1, DB_THREAD_LIST_MAX, THREADS_DEFAULT_LIMIT,
	    &limit) ||
	    !routes_query_user(x, "Only the administrator may list another user's threads",
	    &user))
		return;
	err_clear(&e);
	n = db_thread_list(x->w->db, user, (int)limit, x->arena, &t, &e);
	if (n < 0) {
		routes_db_error(x, &e, "could not list the threads");
		return;
	}
	buf_puts(&b, "{\"user_id\":");
	buf_json_string(&b, user);
	buf_puts(&b, ",\"threads\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(&b, ',');
		buf_puts(&b, "{\"thread_id\":");
		buf_json_string(&b, t[i].id);
		buf_puts(&b, ",\"owner\":");
		buf_json_string(&b, t[i].owner);
		buf_puts(&b, ",\"flow\":");
		buf_json_string(&b, t[i].flow);
		buf_printf(&b, ",\"messages\":%d,\"created_at\":", t[i].messages);
		buf_json_string(&b, t[i].created_at);
		buf_puts(&b, ",\"updated_at\":");
		buf_json_string(&b, t[i].updated_at);
		buf_puts(&b, ",\"preview\":");
		buf_json_string(&b, t[i].preview != NULL ? t[i].preview : "");
		buf_putc(&b, '}');
	}
	buf_puts(&b, "]}");
	xchg_reply(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}
