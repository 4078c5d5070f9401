/*
 * db_probe.c -- a driver of the database layer (lib/db.h, lib/migrate.h)
 * for the end-to-end tests (tests/e2e/test_db_*.py): it makes the same
 * calls the server makes, against a real PostgreSQL, and prints one JSON
 * object per command.
 *
 *   db_probe --url URL [--pool N] [--connect-timeout S] [--statement-timeout MS]
 *            COMMAND [--option value ...]
 *   db_probe --url URL ... repl      commands as JSON arrays, one per line on
 *                                    stdin; one pool for the whole session
 *   db_probe cli ARGS...             `ingen db ARGS...` (cli_db_main)
 *   db_probe classify [SQLSTATE|-] [bad]
 *                                    db_failure_classify, no database needed
 *
 * It is a test tool: it never fakes a result, it reports what the layer did.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/db.h"
#include "lib/log.h"
#include "lib/migrate.h"
#include "lib/xmalloc.h"
#include "cli/cli.h"

#define PROBE_MAX_ARGS 64

static struct db_pool *probe_pool;
static char *probe_url;

static double
probe_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *
probe_opt(int argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int
probe_int(int argc, char **argv, const char *name, int dflt)
{
	const char *v = probe_opt(argc, argv, name);

	return v != NULL ? atoi(v) : dflt;
}

static bool
probe_flag(int argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

/* "-" stands for NULL on the command line */
static const char *
probe_nullable(const char *s)
{
	return s != NULL && strcmp(s, "-") == 0 ? NULL : s;
}

static const char *
probe_status_name(enum db_status s)
{
	switch (s) {
	case DB_ERROR: return "error";
	case DB_OK: return "ok";
	case DB_NOT_FOUND: return "not_found";
	case DB_NOT_OWNER: return "not_owner";
	case DB_USER_MISMATCH: return "user_mismatch";
	case DB_REPLAYED: return "replayed";
	case DB_EXISTS: return "exists";
	}
	return "?";
}

static const char *
probe_failure_name(enum db_failure f)
{
	switch (f) {
	case DB_FAILURE_UNAVAILABLE: return "unavailable";
	case DB_FAILURE_BUSY: return "busy";
	case DB_FAILURE_SCHEMA: return "schema";
	case DB_FAILURE_PERMISSION: return "permission";
	case DB_FAILURE_VALUE: return "value";
	case DB_FAILURE_OTHER: return "other";
	}
	return "?";
}

static void
probe_kv_str(struct buf *b, const char *k, const char *v)
{
	buf_printf(b, ",\"%s\":", k);
	buf_json_string(b, v);
}

/* {"status":..., "http":..., "error":..., "retry_after":...} opening */
static void
probe_head(struct buf *b, enum db_status st, const struct err *e)
{
	buf_printf(b, "{\"status\":\"%s\"", probe_status_name(st));
	if (st == DB_ERROR) {
		buf_printf(b, ",\"http\":%d", e->status);
		probe_kv_str(b, "error", e->msg);
		buf_printf(b, ",\"retry_after\":%d", db_retry_after(probe_pool));
	}
}

static void
probe_message(struct buf *b, const struct db_message *m)
{
	buf_puts(b, "{\"id\":");
	buf_json_string(b, m->id);
	buf_printf(b, ",\"seq\":%d", m->seq);
	probe_kv_str(b, "thread_id", m->thread_id);
	probe_kv_str(b, "user_id", m->user_id);
	probe_kv_str(b, "role", m->role);
	probe_kv_str(b, "agent_name", m->agent_name);
	probe_kv_str(b, "content", m->content);
	probe_kv_str(b, "tool_calls", m->tool_calls);
	probe_kv_str(b, "content_filter_results", m->content_filter_results);
	buf_printf(b, ",\"positive_feedback\":%s", m->positive_feedback < 0 ? "null" :
	    m->positive_feedback ? "true" : "false");
	probe_kv_str(b, "created_at", m->created_at);
	buf_putc(b, '}');
}

/* save-turn [--thread T] [--owner O] [--flow F] [--user U] [--prompt P]
 *   [--reply R] [--summary S] [--idem KEY] [--enforce] [--usage 1,2]
 *   [--tool-calls JSON] (on the reply: invalid JSON makes the turn fail
 *   after its first rows were sent) */
static void
probe_save_turn(int argc, char **argv, struct arena *a, struct buf *b)
{
	struct db_message msgs[2];
	struct db_turn t;
	struct db_turn_result r;
	struct timespec t0;
	struct err e;
	struct buf body = BUF_INIT;
	char thread[DB_UUID_LEN], ids[2][DB_UUID_LEN];
	int64_t usage[32];
	const char *u;
	char *end;
	size_t i, nu = 0;
	enum db_status st;

	memset(&t, 0, sizeof(t));
	memset(msgs, 0, sizeof(msgs));
	err_clear(&e);
	t.thread_id = probe_opt(argc, argv, "--thread");
	t.owner = probe_opt(argc, argv, "--owner");
	if (t.owner == NULL)
		t.owner = "alice";
	t.flow = probe_opt(argc, argv, "--flow");
	if (t.flow == NULL)
		t.flow = "classification_agent";
	t.user_id = probe_nullable(probe_opt(argc, argv, "--user"));
	t.enforce_owner = probe_flag(argc, argv, "--enforce");
	t.memory_summary = probe_opt(argc, argv, "--summary");
	msgs[0].role = "user";
	msgs[0].content = probe_opt(argc, argv, "--prompt");
	if (msgs[0].content == NULL)
		msgs[0].content = "hello";
	msgs[1].role = "assistant";
	msgs[1].agent_name = "classification_agent";
	msgs[1].content = probe_opt(argc, argv, "--reply");
	if (msgs[1].content == NULL)
		msgs[1].content = "hi there";
	msgs[1].tool_calls = probe_opt(argc, argv, "--tool-calls");
	t.messages = msgs;
	t.n_messages = 2;
	t.reply_index = 1;
	u = probe_opt(argc, argv, "--usage");
	while (u != NULL && *u != '\0' && nu < 32) {
		usage[nu++] = strtoll(u, &end, 10);
		u = *end == ',' ? end + 1 : NULL;
	}
	t.usage_ids = usage;
	t.n_usage_ids = nu;
	t.idempotency_key = probe_opt(argc, argv, "--idem");
	if (t.idempotency_key != NULL) {
		/* as the route does: ids first, so the stored body names them */
		if (t.thread_id == NULL) {
			db_new_uuid(thread);
			t.thread_id = thread;
		}
		for (i = 0; i < 2; i++) {
			db_new_uuid(ids[i]);
			msgs[i].id = ids[i];
		}
		buf_puts(&body, "{\"thread_id\":");
		buf_json_string(&body, t.thread_id);
		buf_puts(&body, ",\"message_id\":");
		buf_json_string(&body, ids[1]);
		buf_puts(&body, ",\"agent_response\":");
		buf_json_string(&body, msgs[1].content);
		buf_putc(&body, '}');
		t.reply_body = buf_cstr(&body);
		t.reply_status = 200;
		t.request_hash = probe_opt(argc, argv, "--request-hash");
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = db_save_turn(probe_pool, &t, a, &r, &e);
	probe_head(b, st, &e);
	buf_printf(b, ",\"ms\":%.1f", probe_ms(&t0));
	if (st == DB_OK) {
		probe_kv_str(b, "thread_id", r.thread_id);
		probe_kv_str(b, "reply_id", r.reply_id);
		buf_puts(b, ",\"message_ids\":[");
		for (i = 0; i < r.n_message_ids; i++) {
			if (i > 0)
				buf_putc(b, ',');
			buf_json_string(b, r.message_ids[i]);
		}
		buf_printf(b, "],\"first_seq\":%d,\"new_thread\":%s", r.first_seq,
		    r.new_thread ? "true" : "false");
	} else if (st == DB_REPLAYED) {
		buf_printf(b, ",\"replay_status\":%d", r.replay_status);
		probe_kv_str(b, "replay_body", r.replay_body);
		probe_kv_str(b, "thread_id", r.thread_id);
		probe_kv_str(b, "reply_id", r.reply_id);
	}
	if (t.reply_body != NULL)
		probe_kv_str(b, "sent_body", t.reply_body);
	buf_putc(b, '}');
	buf_free(&body);
}

struct probe_worker {
	pthread_t tid;
	const char *thread_id;
	const char *owner;
	int index;
	enum db_status st;
	int http;
};

static void *
probe_turn_thread(void *arg)
{
	struct probe_worker *w = arg;
	struct db_message msgs[2];
	struct db_turn t;
	struct db_turn_result r;
	struct arena *a = arena_create(0);
	struct err e;

	memset(&t, 0, sizeof(t));
	memset(msgs, 0, sizeof(msgs));
	err_clear(&e);
	msgs[0].role = "user";
	msgs[0].content = arena_sprintf(a, "question %d", w->index);
	msgs[1].role = "assistant";
	msgs[1].content = arena_sprintf(a, "answer %d", w->index);
	t.thread_id = w->thread_id;
	t.owner = w->owner;
	t.enforce_owner = true;
	t.flow = "classification_agent";
	t.user_id = w->owner;
	t.messages = msgs;
	t.n_messages = 2;
	t.reply_index = 1;
	w->st = db_save_turn(probe_pool, &t, a, &r, &e);
	w->http = e.status;
	arena_destroy(a);
	return NULL;
}

/* concurrent-turns --thread T --n N [--owner O] */
static void
probe_concurrent(int argc, char **argv, struct buf *b)
{
	struct probe_worker *w;
	struct timespec t0;
	int n = probe_int(argc, argv, "--n", 50), i, ok = 0, failed = 0;

	w = xcalloc((size_t)n, sizeof(*w));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		w[i].thread_id = probe_opt(argc, argv, "--thread");
		w[i].owner = probe_opt(argc, argv, "--owner");
		if (w[i].owner == NULL)
			w[i].owner = "alice";
		w[i].index = i;
		pthread_create(&w[i].tid, NULL, probe_turn_thread, &w[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].st == DB_OK)
			ok++;
		else
			failed++;
	}
	buf_printf(b, "{\"status\":\"%s\",\"saved\":%d,\"failed\":%d,\"ms\":%.1f}",
	    failed == 0 ? "ok" : "error", ok, failed, probe_ms(&t0));
	free(w);
}

/* usage --user U --thread T --flow F --model M --deployment D --agent A
 *   --request R --prompt N --completion N --total N --latency MS
 *   --http-status N --retries N */
static void
probe_usage(int argc, char **argv, struct buf *b)
{
	struct db_usage u;
	struct err e;
	int64_t id = 0;
	int rc;

	memset(&u, 0, sizeof(u));
	err_clear(&e);
	u.user_id = probe_opt(argc, argv, "--user");
	u.thread_id = probe_opt(argc, argv, "--thread");
	u.flow = probe_opt(argc, argv, "--flow");
	u.model = probe_opt(argc, argv, "--model");
	u.deployment = probe_opt(argc, argv, "--deployment");
	u.agent_name = probe_opt(argc, argv, "--agent");
	u.request_id = probe_opt(argc, argv, "--request");
	u.prompt_tokens = probe_int(argc, argv, "--prompt", 0);
	u.completion_tokens = probe_int(argc, argv, "--completion", 0);
	u.total_tokens = probe_int(argc, argv, "--total",
	    u.prompt_tokens + u.completion_tokens);
	u.latency_ms = probe_int(argc, argv, "--latency", 0);
	u.http_status = probe_int(argc, argv, "--http-status", 200);
	u.retries = probe_int(argc, argv, "--retries", 0);
	rc = db_record_usage(probe_pool, &u, &id, &e);
	probe_head(b, rc == 0 ? DB_OK : DB_ERROR, &e);
	buf_printf(b, ",\"id\":%lld}", (long long)id);
}

/* messages|history --thread T [--owner O] [--limit N] */
static void
probe_history(int argc, char **argv, struct arena *a, struct buf *b)
{
	struct db_history h;
	struct err e;
	enum db_status st;
	size_t i;

	err_clear(&e);
	st = db_thread_history(probe_pool, probe_opt(argc, argv, "--thread"),
	    probe_opt(argc, argv, "--owner"), probe_int(argc, argv, "--limit", 5),
	    a, &h, &e);
	probe_head(b, st, &e);
	if (st == DB_OK) {
		buf_printf(b, ",\"exists\":%s", h.exists ? "true" : "false");
		probe_kv_str(b, "memory", h.memory);
		buf_puts(b, ",\"messages\":[");
		for (i = 0; i < h.n; i++) {
			if (i > 0)
				buf_putc(b, ',');
			probe_message(b, &h.messages[i]);
		}
		buf_putc(b, ']');
	}
	buf_putc(b, '}');
}

/* messages --thread T [--owner O] [--limit N]: db_thread_messages */
static void
probe_messages(int argc, char **argv, struct arena *a, struct buf *b)
{
	struct db_message *m;
	struct err e;
	enum db_status st;
	size_t i, n;

	err_clear(&e);
	st = db_thread_messages(probe_pool, probe_opt(argc, argv, "--thread"),
	    probe_opt(argc, argv, "--owner"), probe_int(argc, argv, "--limit", 5),
	    a, &m, &n, &e);
	probe_head(b, st, &e);
	if (st == DB_OK) {
		buf_puts(b, ",\"messages\":[");
		for (i = 0; i < n; i++) {
			if (i > 0)
				buf_putc(b, ',');
			probe_message(b, &m[i]);
		}
		buf_putc(b, ']');
	}
	buf_putc(b, '}');
}

/* feedback --message M --thread T [--user U|-] [--owner O] --positive true|false|null */
static void
probe_feedback(int argc, char **argv, struct buf *b)
{
	const char *pos = probe_opt(argc, argv, "--positive");
	struct err e;
	enum db_status st;

	err_clear(&e);
	st = db_feedback(probe_pool, probe_opt(argc, argv, "--message"),
	    probe_opt(argc, argv, "--thread"),
	    probe_nullable(probe_opt(argc, argv, "--user")),
	    probe_opt(argc, argv, "--owner"),
	    pos == NULL || strcmp(pos, "null") == 0 ? -1 :
	    strcmp(pos, "true") == 0 ? 1 : 0, &e);
	probe_head(b, st, &e);
	buf_putc(b, '}');
}

static void
probe_idem_get(int argc, char **argv, struct arena *a, struct buf *b)
{
	struct db_idempotent d;
	struct err e;
	enum db_status st;

	err_clear(&e);
	st = db_idempotency_get(probe_pool, probe_opt(argc, argv, "--owner"),
	    probe_opt(argc, argv, "--key"), a, &d, &e);
	probe_head(b, st, &e);
	if (st == DB_OK) {
		buf_printf(b, ",\"http_status\":%d", d.status);
		probe_kv_str(b, "body", d.body);
		probe_kv_str(b, "request_hash", d.request_hash);
		probe_kv_str(b, "thread_id", d.thread_id);
		probe_kv_str(b, "message_id", d.message_id);
	}
	buf_putc(b, '}');
}

static void
probe_user(const char *cmd, int argc, char **argv, struct arena *a, struct buf *b)
{
	const char *name = probe_opt(argc, argv, "--name");
	const char *hash = probe_opt(argc, argv, "--hash");
	struct db_user u, *list;
	struct err e;
	enum db_status st;
	size_t i, n;

	err_clear(&e);
	if (strcmp(cmd, "user-add") == 0) {
		st = db_user_add(probe_pool, name, hash, &e);
	} else if (strcmp(cmd, "user-passwd") == 0) {
		st = db_user_set_password(probe_pool, name, hash, &e);
	} else if (strcmp(cmd, "user-disable") == 0) {
		st = db_user_disable(probe_pool, name,
		    probe_int(argc, argv, "--disabled", 1) != 0, &e);
	} else if (strcmp(cmd, "user-get") == 0) {
		st = db_user_get(probe_pool, name, a, &u, &e);
		probe_head(b, st, &e);
		if (st == DB_OK) {
			probe_kv_str(b, "username", u.username);
			probe_kv_str(b, "password_hash", u.password_hash);
			probe_kv_str(b, "created_at", u.created_at);
			buf_printf(b, ",\"disabled\":%s", u.disabled ? "true" : "false");
		}
		buf_putc(b, '}');
		return;
	} else {
		st = db_user_list(probe_pool, a, &list, &n, &e) == 0 ? DB_OK : DB_ERROR;
		probe_head(b, st, &e);
		if (st == DB_OK) {
			buf_puts(b, ",\"users\":[");
			for (i = 0; i < n; i++) {
				buf_printf(b, "%s{\"username\":", i > 0 ? "," : "");
				buf_json_string(b, list[i].username);
				buf_printf(b, ",\"disabled\":%s,\"has_hash\":%s}",
				    list[i].disabled ? "true" : "false",
				    list[i].password_hash != NULL ? "true" : "false");
			}
			buf_putc(b, ']');
		}
		buf_putc(b, '}');
		return;
	}
	probe_head(b, st, &e);
	buf_putc(b, '}');
}

/*
 * kb-search --config C --query Q [--repeat N] [--top K]: db_kb_search as a
 * flow calls it (the query is Q repeated N times, for queries longer than
 * a command-line argument may be); kb-count: db_kb_count.
 */
static void
probe_kb(const char *cmd, int argc, char **argv, struct arena *a, struct buf *b)
{
	const char *q = probe_opt(argc, argv, "--query");
	int repeat = probe_int(argc, argv, "--repeat", 1), i, n;
	struct db_kb_hit *h;
	struct buf qb = BUF_INIT;
	struct err e;
	long chunks;

	err_clear(&e);
	if (strcmp(cmd, "kb-count") == 0) {
		n = db_kb_count(probe_pool, &chunks, &e);
		probe_head(b, n < 0 ? DB_ERROR : DB_OK, &e);
		if (n == 0)
			buf_printf(b, ",\"chunks\":%ld", chunks);
		buf_putc(b, '}');
		return;
	}
	for (i = 0; i < repeat; i++)
		buf_puts(&qb, q != NULL ? q : "");
	n = db_kb_search(probe_pool, probe_opt(argc, argv, "--config"),
	    buf_cstr(&qb), probe_int(argc, argv, "--top", 5), a, &h, &e);
	buf_free(&qb);
	probe_head(b, n < 0 ? DB_ERROR : DB_OK, &e);
	if (n >= 0) {
		buf_printf(b, ",\"n\":%d,\"hits\":[", n);
		for (i = 0; i < n; i++) {
			buf_printf(b, "%s{\"chunk\":%d,\"rank\":%.6f", i ? "," : "",
			    h[i].chunk, h[i].rank);
			probe_kv_str(b, "source", h[i].source);
			probe_kv_str(b, "snippet", h[i].snippet);
			probe_kv_str(b, "content", h[i].content);
			buf_putc(b, '}');
		}
		buf_putc(b, ']');
	}
	buf_putc(b, '}');
}

/* check [--sql-dir D]: migrate_check as the server runs it at start */
static void
probe_check(int argc, char **argv, struct buf *b)
{
	struct err e;
	int rc;

	err_clear(&e);
	rc = migrate_check(probe_url, 5, probe_opt(argc, argv, "--sql-dir"), &e);
	buf_printf(b, "{\"status\":\"%s\"", rc == 0 ? "ok" : "error");
	if (rc < 0) {
		buf_printf(b, ",\"http\":%d", e.status);
		probe_kv_str(b, "error", e.msg);
	}
	buf_putc(b, '}');
}

static int
probe_command(int argc, char **argv)
{
	struct arena *a = arena_create(0);
	struct buf b = BUF_INIT;
	struct timespec t0;
	const char *cmd = argv[0];
	bool r;

	if (strcmp(cmd, "save-turn") == 0) {
		probe_save_turn(argc, argv, a, &b);
	} else if (strcmp(cmd, "concurrent-turns") == 0) {
		probe_concurrent(argc, argv, &b);
	} else if (strcmp(cmd, "usage") == 0) {
		probe_usage(argc, argv, &b);
	} else if (strcmp(cmd, "history") == 0) {
		probe_history(argc, argv, a, &b);
	} else if (strcmp(cmd, "messages") == 0) {
		probe_messages(argc, argv, a, &b);
	} else if (strcmp(cmd, "feedback") == 0) {
		probe_feedback(argc, argv, &b);
	} else if (strcmp(cmd, "idem-get") == 0) {
		probe_idem_get(argc, argv, a, &b);
	} else if (strncmp(cmd, "user-", 5) == 0) {
		probe_user(cmd, argc, argv, a, &b);
	} else if (strcmp(cmd, "ready") == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = db_ready(probe_pool);
		buf_printf(&b, "{\"status\":\"ok\",\"ready\":%s,\"ms\":%.1f}",
		    r ? "true" : "false", probe_ms(&t0));
	} else if (strcmp(cmd, "retry-after") == 0) {
		buf_printf(&b, "{\"status\":\"ok\",\"retry_after\":%d}",
		    db_retry_after(probe_pool));
	} else if (strncmp(cmd, "kb-", 3) == 0) {
		probe_kb(cmd, argc, argv, a, &b);
	} else if (strcmp(cmd, "check") == 0) {
		probe_check(argc, argv, &b);
	} else if (strcmp(cmd, "source") == 0) {
		buf_puts(&b, "{\"status\":\"ok\",\"source\":");
		buf_json_string(&b, db_pool_source(probe_pool));
		buf_putc(&b, '}');
	} else {
		buf_puts(&b, "{\"status\":\"usage\",\"error\":\"unknown command\"}");
	}
	printf("%s\n", buf_cstr(&b));
	fflush(stdout);
	buf_free(&b);
	arena_destroy(a);
	return 0;
}

/* Commands as JSON arrays of strings, one per line, until EOF or "quit". */
static int
probe_repl(void)
{
	char line[65536];
	char *args[PROBE_MAX_ARGS];
	cJSON *arr, *it;
	int n;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		arr = cJSON_Parse(line);
		if (arr == NULL || !cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
			printf("{\"status\":\"usage\",\"error\":\"not a JSON array\"}\n");
			fflush(stdout);
			cJSON_Delete(arr);
			continue;
		}
		n = 0;
		cJSON_ArrayForEach(it, arr) {
			if (n < PROBE_MAX_ARGS && cJSON_IsString(it))
				args[n++] = it->valuestring;
		}
		if (n > 0 && strcmp(args[0], "quit") == 0) {
			cJSON_Delete(arr);
			break;
		}
		probe_command(n, args);
		cJSON_Delete(arr);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct err e;
	int i, rc;

	log_set_role("db_probe");
	if (argc >= 2 && strcmp(argv[1], "cli") == 0)
		return cli_db_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "classify") == 0) {
		/* classify [SQLSTATE|-] [bad]: "-" or nothing = no SQLSTATE */
		enum db_failure f = db_failure_classify(
		    argc >= 3 ? probe_nullable(argv[2]) : NULL,
		    !(argc >= 4 && strcmp(argv[3], "bad") == 0));

		printf("{\"status\":\"ok\",\"failure\":\"%s\",\"http\":%d}\n",
		    probe_failure_name(f), db_failure_status(f));
		return 0;
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.chat_history.pool_size = 4;
	cfg.chat_history.connect_timeout = 5;
	cfg.chat_history.statement_timeout_ms = 10000;
	cfg.server.retry_after = 1;
	for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--url") == 0)
			probe_url = argv[i + 1];
		else if (strcmp(argv[i], "--pool") == 0)
			cfg.chat_history.pool_size = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--connect-timeout") == 0)
			cfg.chat_history.connect_timeout = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--statement-timeout") == 0)
			cfg.chat_history.statement_timeout_ms = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--state-dir") == 0)
			cfg.server.state_dir = argv[i + 1];
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: db_probe [--url URL] [--pool N] "
		    "[--connect-timeout S] [--statement-timeout MS] [--state-dir D] "
		    "COMMAND [OPTIONS] | repl | cli ARGS...\n");
		return 2;
	}
	cfg.chat_history.database_url = probe_url;
	err_clear(&e);
	probe_pool = db_pool_create(&cfg, &e);
	if (probe_pool == NULL) {
		struct buf b = BUF_INIT;

		buf_printf(&b, "{\"status\":\"error\",\"http\":%d", e.status);
		probe_kv_str(&b, "error", e.msg);
		printf("%s}\n", buf_cstr(&b));
		buf_free(&b);
		return 1;
	}
	if (strcmp(argv[i], "repl") == 0)
		rc = probe_repl();
	else
		rc = probe_command(argc - i, argv + i);
	db_pool_destroy(probe_pool);
	return rc;
}
