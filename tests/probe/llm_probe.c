/*
 * llm_probe.c -- a driver for the Azure OpenAI client, for the end-to-end
 * tests (tests/e2e/test_llm_client.py).  It takes one JSON argument (model,
 * client settings, request, how many calls on how many threads), runs the
 * real lib/llm.c against whatever URL it is given (the simulator), and
 * prints one JSON document with what the client returned: status, content,
 * tool calls, usage, attempts and their times, deltas, usage callbacks.
 *
 * It owns nothing but its own process; it never prints a key.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lib/clock.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define PROBE_MAX_THREADS 32
#define PROBE_MAX_CALLS   64

struct probe_call {
	struct llm_client *client;
	const struct llm_request *tmpl;
	int64_t deadline_rel_ms;
	int64_t cancel_rel_ms;      /* llm_request.cancelled turns true then; 0 = never */
	int calls;
	long pause_ms;              /* between this thread's calls */
	cJSON *results;             /* this thread's result objects */
};

/* Everything the request and the configuration point to; freed at exit. */
static struct arena *probe_arena;

static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *
jdup(const cJSON *o, const char *key)
{
	const char *s = jstr(o, key);

	return s ? arena_strdup(probe_arena, s) : NULL;
}

static long
jnum(const cJSON *o, const char *key, long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : def;
}

static bool
jbool(const cJSON *o, const char *key, bool def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* JSON text of a value that may be a string (kept) or any JSON (printed). */
static char *
jtext(const cJSON *v)
{
	char *t, *copy;

	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	if (cJSON_IsString(v))
		return arena_strdup(probe_arena, v->valuestring);
	t = cJSON_PrintUnformatted(v);
	copy = arena_strdup(probe_arena, t);
	cJSON_free(t);
	return copy;
}

static void
probe_delta(void *arg, const char *text, size_t len)
{
	cJSON *deltas = arg;
	char *s = xstrndup(text, len);

	cJSON_AddItemToArray(deltas, cJSON_CreateString(s));
	free(s);
}

static void
probe_usage(void *arg, const struct llm_usage *u)
{
	cJSON *events = arg, *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "billed", u->billed);
	cJSON_AddBoolToObject(o, "final", u->final);
	cJSON_AddNumberToObject(o, "http_status", u->http_status);
	cJSON_AddNumberToObject(o, "retries", u->retries);
	cJSON_AddNumberToObject(o, "prompt_tokens", (double)u->prompt_tokens);
	cJSON_AddNumberToObject(o, "completion_tokens",
	    (double)u->completion_tokens);
	cJSON_AddNumberToObject(o, "total_tokens", (double)u->total_tokens);
	cJSON_AddNumberToObject(o, "latency_ms", (double)u->latency_ms);
	cJSON_AddNumberToObject(o, "time_ms", (double)u->time_ms);
	cJSON_AddStringToObject(o, "model", u->model);
	cJSON_AddStringToObject(o, "deployment", u->deployment);
	cJSON_AddItemToArray(events, o);
}

static void
add_json_text(cJSON *o, const char *key, const char *text)
{
	cJSON *v = text ? cJSON_Parse(text) : NULL;

	if (v != NULL)
		cJSON_AddItemToObject(o, key, v);
	else if (text != NULL)
		cJSON_AddStringToObject(o, key, text);
	else
		cJSON_AddNullToObject(o, key);
}

/* llm_request.cancelled of a call with "cancel_after_ms": true from that
 * time on (the client of a server going away); counts its polls.  A timer
 * thread calls the call's waker at that time, as a server's loop does when
 * the client goes (llm_request.set_waker). */
struct probe_cancel {
	int64_t at_ms;
	long polls;
	pthread_mutex_t lock;
	void (*wake)(void *h);
	void *h;
	bool done;
};

static void
probe_set_waker(void *arg, void (*wake)(void *h), void *h)
{
	struct probe_cancel *pc = arg;

	pthread_mutex_lock(&pc->lock);
	pc->wake = wake;
	pc->h = h;
	pthread_mutex_unlock(&pc->lock);
}

static void *
probe_cancel_timer(void *arg)
{
	struct probe_cancel *pc = arg;
	struct timespec slice = { 0, 10 * 1000000L };
	bool done;

	/* in 10 ms slices, so a call that ends first ends the timer too */
	for (;;) {
		pthread_mutex_lock(&pc->lock);
		done = pc->done;
		if (!done && clock_now_ms() >= pc->at_ms) {
			if (pc->wake != NULL)
				pc->wake(pc->h);
			done = true;
		}
		pthread_mutex_unlock(&pc->lock);
		if (done)
			return NULL;
		nanosleep(&slice, NULL);
	}
}

static bool
probe_cancelled(void *arg)
{
	struct probe_cancel *pc = arg;

	pc->polls++;
	return clock_now_ms() >= pc->at_ms;
}

static cJSON *
probe_one(struct llm_client *client, const struct llm_request *tmpl,
    int64_t deadline_rel_ms, int64_t cancel_rel_ms)
{
	struct llm_request req = *tmpl;
	struct llm_reply reply;
	struct arena *a = arena_create(0);
	cJSON *o = cJSON_CreateObject(), *deltas = cJSON_CreateArray();
	cJSON *events = cJSON_CreateArray(), *arr, *tc;
	struct err e;
	int64_t start = clock_now_ms();
	struct probe_cancel cancel = { start + cancel_rel_ms, 0,
	    PTHREAD_MUTEX_INITIALIZER, NULL, NULL, false };
	pthread_t timer;
	bool timed = false;
	size_t i;
	int rc;

	err_clear(&e);
	if (cancel_rel_ms > 0) {
		req.cancelled = probe_cancelled;
		req.cancel_arg = &cancel;
		req.set_waker = probe_set_waker;
		timed = pthread_create(&timer, NULL, probe_cancel_timer, &cancel) == 0;
	}
	req.on_delta = probe_delta;
	req.delta_arg = deltas;
	req.on_usage = probe_usage;
	req.usage_arg = events;
	if (deadline_rel_ms > 0)
		req.deadline_ms = start + deadline_rel_ms;
	rc = llm_chat(client, &req, a, &reply, &e);
	if (timed) {
		pthread_mutex_lock(&cancel.lock);
		cancel.done = true;
		pthread_mutex_unlock(&cancel.lock);
		pthread_join(timer, NULL);
	}
	cJSON_AddBoolToObject(o, "ok", rc == 0);
	cJSON_AddNumberToObject(o, "status", rc == 0 ? 200 : e.status);
	if (rc == 0)
		cJSON_AddNullToObject(o, "error");
	else
		cJSON_AddStringToObject(o, "error", e.msg);
	if (reply.content != NULL)
		cJSON_AddStringToObject(o, "content", reply.content);
	else
		cJSON_AddNullToObject(o, "content");
	arr = cJSON_AddArrayToObject(o, "tool_calls");
	for (i = 0; i < reply.n_tool_calls; i++) {
		tc = cJSON_CreateObject();
		cJSON_AddStringToObject(tc, "id", reply.tool_calls[i].id);
		cJSON_AddStringToObject(tc, "name", reply.tool_calls[i].name);
		cJSON_AddStringToObject(tc, "arguments",
		    reply.tool_calls[i].arguments);
		cJSON_AddItemToArray(arr, tc);
	}
	if (reply.finish_reason != NULL)
		cJSON_AddStringToObject(o, "finish_reason", reply.finish_reason);
	else
		cJSON_AddNullToObject(o, "finish_reason");
	add_json_text(o, "content_filter_results", reply.content_filter_results);
	add_json_text(o, "prompt_filter_results", reply.prompt_filter_results);
	if (reply.has_usage) {
		cJSON *u = cJSON_AddObjectToObject(o, "usage");

		cJSON_AddNumberToObject(u, "prompt_tokens",
		    (double)reply.prompt_tokens);
		cJSON_AddNumberToObject(u, "completion_tokens",
		    (double)reply.completion_tokens);
		cJSON_AddNumberToObject(u, "total_tokens",
		    (double)reply.total_tokens);
	} else {
		cJSON_AddNullToObject(o, "usage");
	}
	cJSON_AddNumberToObject(o, "http_status", reply.http_status);
	cJSON_AddNumberToObject(o, "attempts", reply.attempts);
	cJSON_AddNumberToObject(o, "retries",
	    reply.attempts > 0 ? reply.attempts - 1 : 0);
	arr = cJSON_AddArrayToObject(o, "attempt_ms");
	for (i = 0; i < (size_t)reply.attempts && i < LLM_MAX_ATTEMPTS; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber(
		    (double)(reply.attempt_start_ms[i] - start)));
	arr = cJSON_AddArrayToObject(o, "attempt_status");
	for (i = 0; i < (size_t)reply.attempts && i < LLM_MAX_ATTEMPTS; i++)
		cJSON_AddItemToArray(arr,
		    cJSON_CreateNumber(reply.attempt_status[i]));
	cJSON_AddNumberToObject(o, "latency_ms", (double)reply.latency_ms);
	cJSON_AddNumberToObject(o, "elapsed_ms", (double)(clock_now_ms() - start));
	cJSON_AddNumberToObject(o, "retry_after", reply.retry_after_s);
	cJSON_AddNumberToObject(o, "cancel_polls", (double)cancel.polls);
	if (reply.model != NULL)
		cJSON_AddStringToObject(o, "model", reply.model);
	else
		cJSON_AddNullToObject(o, "model");
	if (reply.deployment != NULL)
		cJSON_AddStringToObject(o, "deployment", reply.deployment);
	else
		cJSON_AddNullToObject(o, "deployment");
	cJSON_AddItemToObject(o, "deltas", deltas);
	cJSON_AddItemToObject(o, "usage_events", events);
	arena_destroy(a);
	return o;
}

static void *
probe_thread(void *arg)
{
	struct probe_call *pc = arg;
	int i;

	for (i = 0; i < pc->calls; i++) {
		if (i > 0 && pc->pause_ms > 0) {
			struct timespec ts = { pc->pause_ms / 1000,
			    (pc->pause_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		cJSON_AddItemToArray(pc->results,
		    probe_one(pc->client, pc->tmpl, pc->deadline_rel_ms,
		    pc->cancel_rel_ms));
	}
	return NULL;
}

/* Build llm_messages from the OpenAI-format list; memory lives until exit. */
static int
probe_messages(const cJSON *list, struct llm_request *req)
{
	const cJSON *m, *tc;
	struct llm_message *msgs;
	size_t n = 0, i = 0, k;

	cJSON_ArrayForEach(m, list)
		n++;
	msgs = arena_zalloc(probe_arena, (n ? n : 1) * sizeof(*msgs));
	cJSON_ArrayForEach(m, list) {
		const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
		struct llm_tool_call *tcs;

		msgs[i].role = jdup(m, "role");
		msgs[i].content = jdup(m, "content");
		msgs[i].name = jdup(m, "name");
		msgs[i].tool_call_id = jdup(m, "tool_call_id");
		k = 0;
		cJSON_ArrayForEach(tc, calls)
			k++;
		if (k > 0) {
			tcs = arena_zalloc(probe_arena, k * sizeof(*tcs));
			k = 0;
			cJSON_ArrayForEach(tc, calls) {
				const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc,
				    "function");
				const cJSON *src = fn ? fn : tc;

				tcs[k].id = jdup(tc, "id");
				tcs[k].name = jdup(src, "name");
				tcs[k].arguments = jtext(
				    cJSON_GetObjectItemCaseSensitive(src, "arguments"));
				k++;
			}
			msgs[i].tool_calls = tcs;
			msgs[i].n_tool_calls = k;
		}
		i++;
	}
	req->messages = msgs;
	req->n_messages = n;
	return 0;
}

static void
probe_tools(const cJSON *list, struct llm_request *req)
{
	const cJSON *t;
	struct llm_tool *tools;
	size_t n = 0, i = 0;

	cJSON_ArrayForEach(t, list)
		n++;
	if (n == 0)
		return;
	tools = arena_zalloc(probe_arena, n * sizeof(*tools));
	cJSON_ArrayForEach(t, list) {
		const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
		const cJSON *src = fn ? fn : t;

		tools[i].name = jdup(src, "name");
		tools[i].description = jdup(src, "description");
		tools[i].parameters = jtext(cJSON_GetObjectItemCaseSensitive(src,
		    "parameters"));
		i++;
	}
	req->tools = tools;
	req->n_tools = n;
}

static int
usage(void)
{
	fprintf(stderr, "usage: llm_probe JSON\n"
	    "  JSON: {\"model\":{...config_model fields...}, \"llm\":{...cfg->llm "
	    "fields...},\n"
	    "         \"request\":{\"messages\":[...], \"tools\":[...], "
	    "\"stream\":bool, \"json\":bool,\n"
	    "           \"temperature\":x, \"max_tokens\":n, \"deadline_ms\":n,\n"
	    "           \"cancel_after_ms\":n, "
	    "\"headers\":[\"Name: value\"]},\n"
	    "         \"calls\":n, \"threads\":n, \"pause_ms\":n}\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static struct config cfg;
	static struct config_model model;
	struct llm_request req;
	struct probe_call pcs[PROBE_MAX_THREADS];
	pthread_t tids[PROBE_MAX_THREADS];
	cJSON *in, *jm, *jl, *jr, *out, *results, *it;
	struct llm_client *client;
	struct err e;
	const cJSON *hdrs, *h;
	const char **extra = NULL;
	size_t n_extra = 0;
	char *text;
	int threads, calls, i;
	int64_t start;
	long deadline_rel;

	if (argc != 2)
		return usage();
	in = cJSON_Parse(argv[1]);
	if (!cJSON_IsObject(in)) {
		fprintf(stderr, "llm_probe: the argument is not a JSON object\n");
		return 2;
	}
	if (log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, NULL, &e) != 0)
		return 1;
	probe_arena = arena_create(0);
	log_set_role("probe");
	jm = cJSON_GetObjectItemCaseSensitive(in, "model");
	jl = cJSON_GetObjectItemCaseSensitive(in, "llm");
	jr = cJSON_GetObjectItemCaseSensitive(in, "request");
	model.model = jdup(jm, "model");
	model.api_type = jdup(jm, "api_type");
	model.api_version = jdup(jm, "api_version");
	model.deployment = jdup(jm, "deployment");
	model.api_key = jdup(jm, "api_key");
	model.base_url = jdup(jm, "base_url");
	model.authentication_method = jdup(jm, "authentication_method");
	model.client_id = jdup(jm, "client_id");
	model.client_secret = jdup(jm, "client_secret");
	model.tenant_id = jdup(jm, "tenant_id");
	model.role = jdup(jm, "role");
	cfg.models = &model;
	cfg.n_models = 1;
	cfg.llm.connect_timeout_ms = (int)jnum(jl, "connect_timeout_ms", 5000);
	cfg.llm.timeout_ms = (int)jnum(jl, "timeout_ms", 60000);
	cfg.llm.max_retries = (int)jnum(jl, "max_retries", 2);
	cfg.llm.max_response_bytes = (int)jnum(jl, "max_response_bytes",
	    8 * 1024 * 1024);
	cfg.llm.verify_tls = jbool(jl, "verify_tls", true);
	cfg.llm.ca_file = jdup(jl, "ca_file");
	cfg.llm.token_endpoint = jdup(jl, "token_endpoint");
	cfg.llm.imds_endpoint = jdup(jl, "imds_endpoint");
	/* what the configuration loader's AZURE_* aliases give the server */
	cfg.azure_identity.client_id = getenv("AZURE_CLIENT_ID");
	cfg.azure_identity.client_secret = getenv("AZURE_CLIENT_SECRET");
	cfg.azure_identity.tenant_id = getenv("AZURE_TENANT_ID");
	cfg.azure_identity.authority_host = getenv("AZURE_AUTHORITY_HOST");

	memset(&req, 0, sizeof(req));
	req.model_index = 0;
	probe_messages(cJSON_GetObjectItemCaseSensitive(jr, "messages"), &req);
	probe_tools(cJSON_GetObjectItemCaseSensitive(jr, "tools"), &req);
	req.tool_choice = jdup(jr, "tool_choice");
	req.json_response = jbool(jr, "json", false);
	it = cJSON_GetObjectItemCaseSensitive(jr, "temperature");
	if (cJSON_IsNumber(it)) {
		req.has_temperature = true;
		req.temperature = it->valuedouble;
	}
	req.max_tokens = (int)jnum(jr, "max_tokens", 0);
	req.stream = jbool(jr, "stream", false);
	hdrs = cJSON_GetObjectItemCaseSensitive(jr, "headers");
	if (cJSON_IsArray(hdrs)) {
		extra = arena_zalloc(probe_arena,
		    ((size_t)cJSON_GetArraySize(hdrs) + 1) * sizeof(*extra));
		cJSON_ArrayForEach(h, hdrs)
			if (cJSON_IsString(h))
				extra[n_extra++] = arena_strdup(probe_arena,
				    h->valuestring);
		req.extra_headers = extra;
		req.n_extra_headers = n_extra;
	}
	deadline_rel = jnum(jr, "deadline_ms", 0);
	threads = (int)jnum(in, "threads", 1);
	calls = (int)jnum(in, "calls", 1);
	if (threads < 1 || threads > PROBE_MAX_THREADS || calls < 1 ||
	    calls > PROBE_MAX_CALLS)
		return usage();

	llm_global_init();
	client = llm_client_create(&cfg, &e);
	if (client == NULL) {
		fprintf(stderr, "llm_probe: %s\n", e.msg);
		return 1;
	}
	start = clock_now_ms();
	for (i = 0; i < threads; i++) {
		pcs[i].client = client;
		pcs[i].tmpl = &req;
		pcs[i].deadline_rel_ms = deadline_rel;
		pcs[i].cancel_rel_ms = jnum(jr, "cancel_after_ms", 0);
		pcs[i].calls = calls;
		pcs[i].pause_ms = jnum(in, "pause_ms", 0);
		pcs[i].results = cJSON_CreateArray();
		if (pthread_create(&tids[i], NULL, probe_thread, &pcs[i]) != 0) {
			fprintf(stderr, "llm_probe: could not start a thread\n");
			return 1;
		}
	}
	out = cJSON_CreateObject();
	results = cJSON_AddArrayToObject(out, "results");
	for (i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		while (pcs[i].results->child != NULL)
			cJSON_AddItemToArray(results, cJSON_DetachItemViaPointer(
			    pcs[i].results, pcs[i].results->child));
		cJSON_Delete(pcs[i].results);
	}
	cJSON_AddNumberToObject(out, "elapsed_ms",
	    (double)(clock_now_ms() - start));
	llm_client_destroy(client);
	text = cJSON_PrintUnformatted(out);
	printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(out);
	cJSON_Delete(in);
	arena_destroy(probe_arena);
	return 0;
}
