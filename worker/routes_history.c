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

/* ?limit=N (1..DB_HISTORY_MAX); -1 when malformed. */
static int
history_limit(const char *query)
{
	const char *p;
	char *end;
	long v;

	if (query == NULL)
		return HISTORY_DEFAULT_LIMIT;
	for (p = query; p != NULL && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, "limit=", 6) != 0)
			continue;
		v = strtol(p + 6, &end, 10);
		if (end == p + 6 || (*end != '\0' && *end != '&') || v < 1 ||
		    v > DB_HISTORY_MAX)
			return -1;
		return (int)v;
	}
	return HISTORY_DEFAULT_LIMIT;
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
	int limit = history_limit(x->req.query);
	enum db_status ds;

	if (limit < 0) {
		xchg_detail(x, 400, "limit must be an integer from 1 to 1000");
		return;
	}
	err_clear(&e);
	ds = db_thread_messages(x->w->db, thread_id, x->user, limit, x->arena, &m, &n, &e);
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
	const char *user = routes_query(x, "user_id"), *lim_s = routes_query(x, "limit");
	struct db_thread_summary *t = NULL;
	struct buf b = BUF_INIT;
	struct err e;
	char msg[160];
	int limit = THREADS_DEFAULT_LIMIT, n, i;
	long v;
	char *end;

	if (lim_s != NULL) {
		v = strtol(lim_s, &end, 10);
		if (*lim_s == '\0' || *end != '\0' || v < 1 || v > DB_THREAD_LIST_MAX) {
			snprintf(msg, sizeof(msg), "limit must be an integer from 1 to %d",
			    DB_THREAD_LIST_MAX);
			xchg_detail(x, 400, msg);
			return;
		}
		limit = (int)v;
	}
	if (user != NULL && (user == ROUTES_QUERY_BAD || user[0] == '\0' ||
	    strlen(user) > DB_OWNER_MAX)) {
		snprintf(msg, sizeof(msg), "user_id must be 1 to %d characters, "
		    "percent-encoded", DB_OWNER_MAX);
		xchg_detail(x, 400, msg);
		return;
	}
	if (!routes_is_admin(x) && x->user != NULL) {
		if (user != NULL && strcmp(user, x->user) != 0) {
			xchg_detail(x, 403, "Only the administrator may list another user's "
			    "threads");
			return;
		}
		user = x->user;
	}
	if (x->w->db == NULL) {
		xchg_error(x, 503, ROUTES_MSG_NO_DB);
		return;
	}
	err_clear(&e);
	n = db_thread_list(x->w->db, user, limit, x->arena, &t, &e);
	if (n < 0) {
		routes_db_error(x, &e, "could not list the threads");
		return;
	}
	buf_puts(&b, "{\"user_id\":");
	if (user != NULL)
		buf_json_string(&b, user);
	else
		buf_puts(&b, "null");
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
