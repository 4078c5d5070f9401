/*
 * routes_ops.c -- the operator's routes: liveness (/api/v1/health),
 * readiness (/api/v1/ready), Prometheus metrics (/metrics), and the
 * administrator's reload (/api/v1/admin/reload: SIGHUP to the master, and
 * the state of the last reload, for the web console).
 *
 * Health and metrics run on the event loop (ROUTE_INLINE): they only read
 * memory (the worker state and the shared scoreboard) and must never block.
 * Readiness may probe the database and runs on a flow thread, and so does
 * /metrics when it needs credentials (ROUTE_METRICS_AUTH, routes.c).
 */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/scoreboard.h"
#include "lib/xmalloc.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

#define ROUTES_VERSION "1.0.0"

/* "2026-11-23T23:59:00.123456": UTC, no zone suffix, as the reference. */
static void
routes_timestamp(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

void
routes_health(struct http_exchange *x)
{
	char ts[64], body[512];
	double ms = (double)(clock_now_us() - x->start_us) / 1000.0;

	routes_timestamp(ts, sizeof(ts));
	snprintf(body, sizeof(body),
	    "{\"status\":\"healthy\",\"timestamp\":\"%s\",\"response_time_ms\":%.3f,"
	    "\"components\":{\"configuration\":\"ok\",\"profile\":\"ok\"},"
	    "\"version\":\"%s\",\"uptime\":\"available\"}", ts, ms, ROUTES_VERSION);
	xchg_json(x, 200, body);
}

/* Not inline: db_ready may probe the database (bounded by connect_timeout). */
void
routes_ready(struct http_exchange *x)
{
	struct worker *w = x->w;
	bool db = db_ready(w->db);
	bool ready = w->ready && !w->draining && db;
	char body[256];

	snprintf(body, sizeof(body),
	    "{\"status\":\"%s\",\"components\":{\"worker\":\"%s\",\"database\":\"%s\"}}",
	    ready ? "ready" : "not ready",
	    w->draining ? "draining" : (w->ready ? "ok" : "starting"),
	    db ? "ok" : "unavailable");
	xchg_json(x, ready ? 200 : 503, body);
	if (!ready) {
		snprintf(body, sizeof(body), "%d", db ? 1 : db_retry_after(w->db));
		xchg_header(x, "Retry-After", body);
	}
}

/* Sum of one route x status counter over retired and live slots. */
struct routes_totals {
	uint64_t requests[SB_MAX_ROUTES][SB_STATUS_N];
	uint64_t bucket[SB_MAX_ROUTES][SB_LAT_BUCKETS];
	uint64_t sum_us[SB_MAX_ROUTES];
	uint64_t queue_rejections, db_rejections, admitted, accept_pauses, accepted, llm_tokens, llm_calls;
	uint64_t llm_errors, login_throttled, db_errors, db_waits, db_wait_us, db_timeouts;
	int64_t threads, busy, queued, limit, stuck, upstream_idle, db_wait_max;   /* live slots only */
};

static void
routes_add_counters(struct routes_totals *t, const struct sb_counters *c)
{
	int r, k;

	for (r = 0; r < SB_MAX_ROUTES; r++) {
		for (k = 0; k < SB_STATUS_N; k++)
			t->requests[r][k] += sb_get(&c->requests[r][k]);
		for (k = 0; k < SB_LAT_BUCKETS; k++)
			t->bucket[r][k] += sb_get(&c->latency_bucket[r][k]);
		t->sum_us[r] += sb_get(&c->latency_sum_us[r]);
	}
	t->queue_rejections += sb_get(&c->queue_rejections);
	t->db_rejections += sb_get(&c->db_rejections);
	t->admitted += sb_get(&c->admitted);
	t->accept_pauses += sb_get(&c->accept_pauses);
	t->accepted += sb_get(&c->connections_accepted);
	t->llm_tokens += sb_get(&c->llm_tokens);
	t->llm_calls += sb_get(&c->llm_calls);
	t->llm_errors += sb_get(&c->llm_errors);
	t->login_throttled += sb_get(&c->login_throttled);
	t->db_errors += sb_get(&c->db_errors);
	t->db_waits += sb_get(&c->db_waits);
	t->db_wait_us += sb_get(&c->db_wait_us);
	t->db_timeouts += sb_get(&c->db_timeouts);
}

/* (flow, agent, model) counters summed over the retired and live tables */
#define ROUTES_LLM_MAX 256
struct routes_llm {
	const struct sb_llm *key;
	uint64_t calls, tokens, errors;
};

static size_t
routes_llm_merge(struct routes_llm *out, size_t n, size_t cap, const struct sb_counters *c)
{
	size_t i, j;

	for (i = 0; i < SB_LLM_KEYS; i++) {
		const struct sb_llm *l = &c->llm[i];

		if (__atomic_load_n(&l->used, __ATOMIC_ACQUIRE) != 2)
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(out[j].key->flow, l->flow) == 0 &&
			    strcmp(out[j].key->agent, l->agent) == 0 &&
			    strcmp(out[j].key->model, l->model) == 0)
				break;
		if (j == n) {
			if (n == cap)
				continue;
			out[n++].key = l;
		}
		out[j].calls += sb_get(&l->calls);
		out[j].tokens += sb_get(&l->tokens);
		out[j].errors += sb_get(&l->errors);
	}
	return n;
}

/* a label value: \, " and newlines escaped (the exposition format) */
static void
routes_label(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_putc(b, '\\');
		if (*s == '\n') {
			buf_puts(b, "\\n");
			continue;
		}
		buf_putc(b, *s);
	}
}

static void
routes_llm_metrics(struct buf *b, struct routes_llm *m, size_t n)
{
	static const char *const names[3] = {
		"ingenious_model_calls_total", "ingenious_model_tokens_total",
		"ingenious_model_errors_total"
	};
	static const char *const help[3] = {
		"Calls to the language model (usage reports), by flow, agent and model.",
		"Tokens billed by the language model, by flow, agent and model.",
		"Failed attempts of calls to the language model, by flow, agent and model."
	};
	size_t i;
	int k;

	for (k = 0; k < 3; k++) {
		buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", names[k], help[k], names[k]);
		for (i = 0; i < n; i++) {
			buf_printf(b, "%s{flow=\"", names[k]);
			routes_label(b, m[i].key->flow);
			buf_puts(b, "\",agent=\"");
			routes_label(b, m[i].key->agent);
			buf_puts(b, "\",model=\"");
			routes_label(b, m[i].key->model);
			buf_printf(b, "\"} %llu\n", (unsigned long long)(k == 0 ? m[i].calls :
			    k == 1 ? m[i].tokens : m[i].errors));
		}
	}
}

void
routes_metrics(struct http_exchange *x)
{
	struct scoreboard *sb = x->w->sb;
	struct routes_totals *t;
	struct routes_llm *llm;
	size_t nllm;
	struct buf b = BUF_INIT;
	int64_t inflight = 0, conns = 0;
	int i, r, k, nroutes = routes_count(), states[4] = { 0 };

	if (x->cfg->server.metrics_loopback_only && !x->peer_loopback) {
		xchg_detail(x, 403, "Forbidden");
		return;
	}
	t = arena_zalloc(x->arena, sizeof(*t));
	llm = arena_zalloc(x->arena, sizeof(*llm) * ROUTES_LLM_MAX);
	nllm = routes_llm_merge(llm, 0, ROUTES_LLM_MAX, &sb->retired);
	routes_add_counters(t, &sb->retired);
	buf_puts(&b, "# HELP ingenious_worker_info A live worker process.\n"
	    "# TYPE ingenious_worker_info gauge\n");
	for (i = 0; i < SB_MAX_SLOTS; i++) {
		struct sb_slot *s = &sb->slots[i];
		int st = sb_get_state(s);

		if (st == SB_STATE_EMPTY)
			continue;
		states[st]++;
		routes_add_counters(t, &s->c);
		nllm = routes_llm_merge(llm, nllm, ROUTES_LLM_MAX, &s->c);
		inflight += sb_get_i(&s->inflight);
		conns += sb_get_i(&s->connections);
		t->threads += sb_get_i(&s->flow_threads);
		t->busy += sb_get_i(&s->flow_threads_busy);
		t->queued += sb_get_i(&s->flow_queued);
		t->limit += sb_get_i(&s->flow_limit);
		t->stuck += sb_get_i(&s->flow_stuck);
		t->upstream_idle += sb_get_i(&s->upstream_idle);
		if (sb_get_i(&s->db_wait_ms) > t->db_wait_max)
			t->db_wait_max = sb_get_i(&s->db_wait_ms);
		buf_printf(&b, "ingenious_worker_info{slot=\"%d\",pid=\"%d\",generation=\"%u\","
		    "state=\"%s\"} 1\n", i, (int)s->pid, s->generation,
		    st == SB_STATE_READY ? "ready" :
		    st == SB_STATE_DRAINING ? "draining" : "starting");
	}
	buf_printf(&b,
	    "# HELP ingenious_workers Worker processes by state.\n"
	    "# TYPE ingenious_workers gauge\n"
	    "ingenious_workers{state=\"starting\"} %d\n"
	    "ingenious_workers{state=\"ready\"} %d\n"
	    "ingenious_workers{state=\"draining\"} %d\n",
	    states[SB_STATE_STARTING], states[SB_STATE_READY],
	    states[SB_STATE_DRAINING]);
	buf_printf(&b,
	    "# HELP ingenious_config_generation Configuration generation being served.\n"
	    "# TYPE ingenious_config_generation gauge\n"
	    "ingenious_config_generation %u\n"
	    "# HELP ingenious_worker_restarts_total Workers started to replace one that exited.\n"
	    "# TYPE ingenious_worker_restarts_total counter\n"
	    "ingenious_worker_restarts_total %llu\n"
	    "# HELP ingenious_worker_crashes_total Workers that exited unexpectedly.\n"
	    "# TYPE ingenious_worker_crashes_total counter\n"
	    "ingenious_worker_crashes_total %llu\n"
	    "# HELP ingenious_watchdog_kills_total Workers killed for a stalled heartbeat.\n"
	    "# TYPE ingenious_watchdog_kills_total counter\n"
	    "ingenious_watchdog_kills_total %llu\n"
	    "# HELP ingenious_reloads_total Successful configuration reloads.\n"
	    "# TYPE ingenious_reloads_total counter\n"
	    "ingenious_reloads_total %llu\n"
	    "# HELP ingenious_reload_failures_total Reloads refused (old generation kept).\n"
	    "# TYPE ingenious_reload_failures_total counter\n"
	    "ingenious_reload_failures_total %llu\n",
	    __atomic_load_n(&sb->generation, __ATOMIC_RELAXED),
	    (unsigned long long)sb_get(&sb->worker_restarts),
	    (unsigned long long)sb_get(&sb->worker_crashes),
	    (unsigned long long)sb_get(&sb->watchdog_kills),
	    (unsigned long long)sb_get(&sb->reloads),
	    (unsigned long long)sb_get(&sb->reload_failures));
	buf_printf(&b,
	    "# HELP ingenious_http_requests_in_flight Requests being processed.\n"
	    "# TYPE ingenious_http_requests_in_flight gauge\n"
	    "ingenious_http_requests_in_flight %lld\n"
	    "# HELP ingenious_http_connections Open client connections.\n"
	    "# TYPE ingenious_http_connections gauge\n"
	    "ingenious_http_connections %lld\n"
	    "# HELP ingenious_http_connections_accepted_total Client connections accepted.\n"
	    "# TYPE ingenious_http_connections_accepted_total counter\n"
	    "ingenious_http_connections_accepted_total %llu\n"
	    "# HELP ingenious_flow_queue_rejections_total Requests refused with 503 because the flow queue was full.\n"
	    "# TYPE ingenious_flow_queue_rejections_total counter\n"
	    "ingenious_flow_queue_rejections_total %llu\n"
	    "# HELP ingenious_turn_db_rejections_total Chat turns refused with 503 at admission because the database was saturated (server.db_wait_limit_ms).\n"
	    "# TYPE ingenious_turn_db_rejections_total counter\n"
	    "ingenious_turn_db_rejections_total %llu\n"
	    "# HELP ingenious_db_wait_estimate_seconds How long a call would wait for a chat-history connection now (the largest of the workers).\n"
	    "# TYPE ingenious_db_wait_estimate_seconds gauge\n"
	    "ingenious_db_wait_estimate_seconds %.3f\n"
	    "# HELP ingenious_flow_admitted_total Requests handed to a flow thread.\n"
	    "# TYPE ingenious_flow_admitted_total counter\n"
	    "ingenious_flow_admitted_total %llu\n"
	    "# HELP ingenious_flow_threads Flow threads alive (the pool grows on demand and shrinks when idle).\n"
	    "# TYPE ingenious_flow_threads gauge\n"
	    "ingenious_flow_threads %lld\n"
	    "# HELP ingenious_flow_threads_busy Flow threads running a request.\n"
	    "# TYPE ingenious_flow_threads_busy gauge\n"
	    "ingenious_flow_threads_busy %lld\n"
	    "# HELP ingenious_flow_queued Requests waiting for a flow thread.\n"
	    "# TYPE ingenious_flow_queued gauge\n"
	    "ingenious_flow_queued %lld\n"
	    "# HELP ingenious_flow_stuck Flow threads still running a request that was answered 504 at its deadline.\n"
	    "# TYPE ingenious_flow_stuck gauge\n"
	    "ingenious_flow_stuck %lld\n"
	    "# HELP ingenious_flow_limit Most requests in flight before 503 (flow threads at their maximum plus the queue, all workers).\n"
	    "# TYPE ingenious_flow_limit gauge\n"
	    "ingenious_flow_limit %lld\n"
	    "# HELP ingenious_upstream_handles_idle Upstream (model, search) client handles kept between calls with their connections, all workers; freed after server.flow_thread_idle_s unused.\n"
	    "# TYPE ingenious_upstream_handles_idle gauge\n"
	    "ingenious_upstream_handles_idle %lld\n"
	    "# HELP ingenious_accept_pauses_total Times a worker stopped accepting so that a less loaded worker would.\n"
	    "# TYPE ingenious_accept_pauses_total counter\n"
	    "ingenious_accept_pauses_total %llu\n"
	    "# HELP ingenious_llm_calls_total Calls made to the language model.\n"
	    "# TYPE ingenious_llm_calls_total counter\n"
	    "ingenious_llm_calls_total %llu\n"
	    "# HELP ingenious_llm_tokens_total Tokens billed by the language model.\n"
	    "# TYPE ingenious_llm_tokens_total counter\n"
	    "ingenious_llm_tokens_total %llu\n",
	    (long long)inflight, (long long)conns,
	    (unsigned long long)t->accepted,
	    (unsigned long long)t->queue_rejections,
	    (unsigned long long)t->db_rejections, (double)t->db_wait_max / 1000.0,
	    (unsigned long long)t->admitted,
	    (long long)t->threads, (long long)t->busy, (long long)t->queued,
	    (long long)t->stuck, (long long)t->limit, (long long)t->upstream_idle,
	    (unsigned long long)t->accept_pauses,
	    (unsigned long long)t->llm_calls,
	    (unsigned long long)t->llm_tokens);

	buf_printf(&b,
	    "# HELP ingenious_llm_errors_total Attempts of calls to the language model that failed (an error status or no answer; each retry counted).\n"
	    "# TYPE ingenious_llm_errors_total counter\n"
	    "ingenious_llm_errors_total %llu\n"
	    "# HELP ingenious_login_throttled_total Logins refused with 429 by the failed-login throttle.\n"
	    "# TYPE ingenious_login_throttled_total counter\n"
	    "ingenious_login_throttled_total %llu\n"
	    "# HELP ingenious_db_errors_total Chat-history statements and connections that failed.\n"
	    "# TYPE ingenious_db_errors_total counter\n"
	    "ingenious_db_errors_total %llu\n"
	    "# HELP ingenious_db_pool_waits_total Calls that queued for a chat-history connection.\n"
	    "# TYPE ingenious_db_pool_waits_total counter\n"
	    "ingenious_db_pool_waits_total %llu\n"
	    "# HELP ingenious_db_pool_wait_seconds_total Time calls spent queued for a chat-history connection.\n"
	    "# TYPE ingenious_db_pool_wait_seconds_total counter\n"
	    "ingenious_db_pool_wait_seconds_total %.6f\n"
	    "# HELP ingenious_db_pool_timeouts_total Calls that found no chat-history connection within the wait (503).\n"
	    "# TYPE ingenious_db_pool_timeouts_total counter\n"
	    "ingenious_db_pool_timeouts_total %llu\n",
	    (unsigned long long)t->llm_errors, (unsigned long long)t->login_throttled,
	    (unsigned long long)t->db_errors, (unsigned long long)t->db_waits,
	    (double)t->db_wait_us / 1e6, (unsigned long long)t->db_timeouts);

	routes_llm_metrics(&b, llm, nllm);

	buf_puts(&b, "# HELP ingenious_http_requests_total Requests answered, by route and status.\n"
	    "# TYPE ingenious_http_requests_total counter\n");
	for (r = 0; r <= nroutes; r++)
		for (k = 0; k < SB_STATUS_N; k++) {
			if (t->requests[r][k] == 0)
				continue;
			if (k == SB_STATUS_OTHER)
				buf_printf(&b, "ingenious_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
				    routes_name(r), (unsigned long long)t->requests[r][k]);
			else
				buf_printf(&b, "ingenious_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    routes_name(r), sb_status_code((enum sb_status)k),
				    (unsigned long long)t->requests[r][k]);
		}

	buf_puts(&b, "# HELP ingenious_http_request_duration_seconds Time from a complete request head to the last response byte queued.\n"
	    "# TYPE ingenious_http_request_duration_seconds histogram\n");
	for (r = 0; r <= nroutes; r++) {
		uint64_t cum = 0;

		for (k = 0; k < SB_LAT_BUCKETS; k++)
			cum += t->bucket[r][k];
		if (cum == 0)
			continue;
		cum = 0;
		for (k = 0; k < SB_LAT_BUCKETS; k++) {
			cum += t->bucket[r][k];
			if (sb_latency_bounds_ms[k] < 0)
				buf_printf(&b, "ingenious_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
				    routes_name(r), (unsigned long long)cum);
			else
				buf_printf(&b, "ingenious_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
				    routes_name(r), sb_latency_bounds_ms[k] / 1000.0,
				    (unsigned long long)cum);
		}
		buf_printf(&b, "ingenious_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		    "ingenious_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    routes_name(r), (double)t->sum_us[r] / 1e6, routes_name(r),
		    (unsigned long long)cum);
	}
	xchg_reply(x, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	buf_free(&b);
}

/* path + "/" + leaf, without a doubled or a missing slash */
static void
routes_join(struct buf *b, const char *path, const char *leaf)
{
	size_t n = path != NULL ? strlen(path) : 0;

	if (n == 0 || (n == 2 && strcmp(path, "./") == 0) || strcmp(path, ".") == 0) {
		buf_json_string(b, leaf);
		return;
	}
	{
		char *j = xasprintf("%s%s%s", path, path[n - 1] == '/' ? "" : "/", leaf);

		buf_json_string(b, j);
		free(j);
	}
}

/*
 * The reference's storage folders (ingenious-api.md 1.8), ours: the prompt
 * templates under file_storage.revisions.path, the data, output and events
 * folders under file_storage.data.path.  Behind authentication like the
 * other non-health routes.
 */
void
routes_diagnostic(struct http_exchange *x)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "{\"Prompt Directory\":");
	routes_join(&b, x->cfg->file_storage.revisions_path, "templates/prompts");
	buf_puts(&b, ",\"Data Directory\":");
	routes_join(&b, x->cfg->file_storage.data_path, "functional_test_outputs");
	buf_puts(&b, ",\"Output Directory\":");
	routes_join(&b, x->cfg->file_storage.data_path, "functional_test_outputs");
	buf_puts(&b, ",\"Events Directory\":");
	routes_join(&b, x->cfg->file_storage.data_path, "functional_test_outputs");
	buf_putc(&b, '}');
	xchg_reply(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}

void
routes_diagnostic_options(struct http_exchange *x)
{
	xchg_header(x, "Allow", "GET, OPTIONS");
	xchg_json(x, 200, "{\"Allow\":\"GET, OPTIONS\"}");
}

#define ROUTES_MSG_ADMIN_RELOAD "Only the administrator may reload the server"

/* The reload state of the shared scoreboard, as JSON. */
static void
routes_reload_json(struct http_exchange *x, struct buf *b, const char *status)
{
	const struct scoreboard *sb = x->w->sb;
	char why[SB_RELOAD_ERROR];

	sb_reload_error(sb, why, sizeof(why));
	buf_puts(b, "{\"status\":");
	buf_json_string(b, status);
	buf_printf(b, ",\"generation\":%u,\"worker_generation\":%u,"
	    "\"reloads\":%llu,\"reload_failures\":%llu,\"last_error\":",
	    __atomic_load_n(&sb->generation, __ATOMIC_RELAXED), x->w->generation,
	    (unsigned long long)sb_get(&sb->reloads),
	    (unsigned long long)sb_get(&sb->reload_failures));
	buf_json_string(b, why[0] != '\0' ? why : NULL);
	buf_putc(b, '}');
}

/* GET /api/v1/admin/reload (ours): the generation serving, how many
 * reloads were done and refused, and why the last one was refused. */
void
routes_admin_reload_status(struct http_exchange *x)
{
	struct buf b = BUF_INIT;

	if (!routes_is_admin(x)) {
		xchg_detail(x, 403, ROUTES_MSG_ADMIN_RELOAD);
		return;
	}
	routes_reload_json(x, &b, "serving");
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

/* POST /api/v1/admin/reload (ours): what `ingen reload` does, SIGHUP to the
 * master; 202 at once, the new generation serves when `generation` grows
 * (or reload_failures does, and last_error says why). */
void
routes_admin_reload(struct http_exchange *x)
{
	struct buf b = BUF_INIT;
	char msg[160];

	if (!routes_is_admin(x)) {
		xchg_detail(x, 403, ROUTES_MSG_ADMIN_RELOAD);
		return;
	}
	if (x->w->master_pid <= 1 || kill(x->w->master_pid, SIGHUP) != 0) {
		snprintf(msg, sizeof(msg), "could not signal the master (pid %d): %s",
		    (int)x->w->master_pid, strerror(errno));
		xchg_error(x, 500, msg);
		return;
	}
	log_info("reloading", "reload asked through the API by %s",
	    x->user != NULL ? x->user : "a caller (authentication is off)");
	routes_reload_json(x, &b, "reloading");
	xchg_json(x, 202, buf_cstr(&b));
	buf_free(&b);
}
