/*
 * test_knowledge_base.c -- the built-in knowledge-base-agent flow
 * (flows/builtin/knowledge_base_agent.c) and the policy under it
 * (flows/kbsearch.c: ing_kb_search) run alone: the context's knowledge
 * base service is a script (a local knowledge base with hits, without
 * hits, empty, failing; an Azure AI Search service up, down, empty, not
 * configured, half configured) and so is the model, so there is no
 * socket, no database and no server.  It checks every policy against
 * every state of the two stores in both modes with the reference's exact
 * texts, kb.fallback_on_empty, the number of passages from each source of
 * the setting, the memory context, the snippet cap, the status chunks of
 * a stream, and assist mode's tool loop with a usage row per model call.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "flows/builtin/builtin.h"
#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "tests/unit/tap.h"

#define TIMEOUT_MS 2500
#define Q "What are the helmet rules?"

enum local_state { L_HITS, L_NOMATCH, L_EMPTY, L_FAIL, L_DOWN };
enum azure_state { A_UP, A_EMPTY, A_DOWN, A_SEARCH_FAIL, A_NONE, A_HALF };

struct world {
	enum local_state local;
	enum azure_state azure;
	const char *dir;                /* local_directory */
	int local_calls, count_calls, az_count_calls, az_search_calls;
	int local_top_k, az_top_k;
	char query[256];
	/* the model (assist mode) */
	int llm_calls, rows;
	char rows_agent[4][64];
	char tool_result[2048];
	char user_sent[512], system_sent[4096];
	size_t tools_offered;
	char tool_description[256];
	/* the stream */
	struct buf progress, emitted;
	bool stream;
};

static struct world w;
static struct config cfg;
static char policy_buf[32], mode_buf[16];

static void
set_policy(const char *v)
{
	snprintf(policy_buf, sizeof(policy_buf), "%s", v);
	cfg.kb.policy = policy_buf;
}

static void
set_mode(const char *v)
{
	snprintf(mode_buf, sizeof(mode_buf), "%s", v);
	cfg.kb.mode = mode_buf;
}

static void
world_reset(enum local_state local, enum azure_state azure)
{
	buf_free(&w.progress);
	buf_free(&w.emitted);
	memset(&w, 0, sizeof(w));
	w.progress = (struct buf)BUF_INIT;
	w.emitted = (struct buf)BUF_INIT;
	w.local = local;
	w.azure = azure;
	w.dir = "/nonexistent/knowledge_base";
}

/* ---- the scripted knowledge bases ----------------------------------------- */

static int
s_local_search(void *arg, const char *query, int top_k, struct arena *a,
    struct ctx_kb_hit **hits, struct err *e)
{
	struct ctx_kb_hit *h;
	int i, n;

	(void)arg;
	w.local_calls++;
	w.local_top_k = top_k;
	snprintf(w.query, sizeof(w.query), "%s", query);
	if (w.local == L_FAIL)
		return err_set(e, 500, "text-search configuration \"klingon\" does not exist");
	if (w.local == L_DOWN)
		return err_set(e, 503, "database unavailable");
	if (w.local != L_HITS)
		return 0;
	n = top_k < 2 ? top_k : 2;
	h = arena_zalloc(a, (size_t)n * sizeof(*h));
	for (i = 0; i < n; i++) {
		h[i].source = "safety.md";
		h[i].chunk = i + 3;
		h[i].content = arena_sprintf(a, "Local passage %d about helmets.", i);
		h[i].snippet = "helmets";
		h[i].score = 0.5 - i * 0.1;
	}
	*hits = h;
	return n;
}

static int
s_local_count(void *arg, long *chunks, struct err *e)
{
	(void)arg;
	w.count_calls++;
	if (w.local == L_DOWN)
		return err_set(e, 503, "database unavailable");
	*chunks = w.local == L_EMPTY ? 0 : 42;
	return 0;
}

static const char *
s_local_directory(void *arg)
{
	(void)arg;
	return w.dir;
}

static enum ctx_azure_state
s_azure_state(void *arg, const char **index, const char **missing)
{
	(void)arg;
	*index = "test-index";
	if (w.azure == A_NONE)
		return CTX_AZURE_NOT_CONFIGURED;
	if (w.azure == A_HALF) {
		*missing = "key";
		return CTX_AZURE_INCOMPLETE;
	}
	return CTX_AZURE_OK;
}

static int
s_azure_count(void *arg, long *count, struct err *e)
{
	(void)arg;
	w.az_count_calls++;
	if (w.azure == A_DOWN)
		return err_set(e, 503, "azure search: could not connect to the service");
	*count = w.azure == A_EMPTY ? 0 : 12;
	return 0;
}

static int
s_azure_search(void *arg, const char *query, int top_k, struct arena *a,
    struct ctx_kb_hit **hits, struct err *e)
{
	struct ctx_kb_hit *h;

	(void)arg;
	w.az_search_calls++;
	w.az_top_k = top_k;
	snprintf(w.query, sizeof(w.query), "%s", query);
	if (w.azure == A_SEARCH_FAIL)
		return err_set(e, 502, "azure search: the service refused the credentials (HTTP 401)");
	if (w.azure == A_EMPTY)
		return 0;
	h = arena_zalloc(a, 2 * sizeof(*h));
	h[0] = (struct ctx_kb_hit){ .source = "doc-0", .chunk = -1,
	    .title = "Helmet policy", .content = "Helmets are required on site.",
	    .snippet = "Helmets are required", .score = 1.5 };
	h[1] = (struct ctx_kb_hit){ .source = "doc-1", .chunk = -1,
	    .title = NULL, .content = "Wear a helmet when cycling.",
	    .snippet = NULL, .score = 2.25 };
	*hits = h;
	return top_k < 2 ? top_k : 2;
}

static const struct ctx_kb_service kb_service = {
	.local_search = s_local_search,
	.local_count = s_local_count,
	.local_directory = s_local_directory,
	.azure_state = s_azure_state,
	.azure_count = s_azure_count,
	.azure_search = s_azure_search,
};

/* ---- the scripted model: asks for the tool once, then answers ---------------- */

static int
s_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	const struct ctx_message *last = &call->messages[call->n_messages - 1];
	struct ctx_usage u = { .model = "gpt-test", .deployment = "",
	    .prompt_tokens = 100, .completion_tokens = 20, .total_tokens = 120,
	    .latency_ms = 3, .http_status = 200, .billed = true };
	struct ctx_tool_call *tc;

	(void)arg;
	(void)e;
	w.llm_calls++;
	snprintf(w.system_sent, sizeof(w.system_sent), "%s", call->messages[0].content);
	if (call->n_messages > 1 && strcmp(call->messages[1].role, "user") == 0)
		snprintf(w.user_sent, sizeof(w.user_sent), "%s", call->messages[1].content);
	w.tools_offered = call->n_tools;
	if (call->n_tools > 0)
		snprintf(w.tool_description, sizeof(w.tool_description), "%s",
		    call->tools[0].description);
	call->on_usage(call->arg, &u);
	if (strcmp(last->role, "tool") != 0 && call->n_tools > 0) {
		tc = arena_zalloc(a, sizeof(*tc));
		tc->id = "call_1";
		tc->name = "search_tool";
		tc->arguments = "{\"search_query\":\"helmet rules\",\"topic\":\"safety\"}";
		out->tool_calls = tc;
		out->n_tool_calls = 1;
		return 0;
	}
	if (strcmp(last->role, "tool") == 0)
		snprintf(w.tool_result, sizeof(w.tool_result), "%s", last->content);
	out->content = arena_strdup(a, "Helmets are required on site [1].");
	out->model = "gpt-test";
	return 0;
}

static int
s_record_usage(void *arg, const struct ctx_turn *who, const char *agent,
    const struct ctx_usage *u, int64_t *id)
{
	(void)arg;
	(void)who;
	(void)u;
	if (w.rows < 4)
		snprintf(w.rows_agent[w.rows], sizeof(w.rows_agent[0]), "%s", agent);
	*id = 500 + w.rows++;
	return 0;
}

static int64_t
s_clock_ms(void *arg)
{
	(void)arg;
	return 1000;
}

static void
s_log(void *arg, int level, const char *action, const char *msg)
{
	(void)arg;
	(void)level;
	(void)action;
	(void)msg;
}

static int
s_emit(void *arg, const char *text)
{
	(void)arg;
	buf_puts(&w.emitted, text);
	return 0;
}

static int
s_progress(void *arg, const char *text)
{
	(void)arg;
	buf_puts(&w.progress, text);
	buf_putc(&w.progress, '|');
	return 0;
}

static const struct ctx_services services = {
	.arg = &w,
	.llm_chat = s_llm_chat,
	.record_usage = s_record_usage,
	.clock_ms = s_clock_ms,
	.log = s_log,
	.kb = &kb_service,
};

static const struct ctx_services services_no_kb = {
	.arg = &w,
	.llm_chat = s_llm_chat,
	.record_usage = s_record_usage,
	.clock_ms = s_clock_ms,
	.log = s_log,
};

static void
json_delete(void *p)
{
	cJSON_Delete(p);
}

/* Run the flow on a fresh context with `body` (JSON text or NULL). */
static int
run_flow(struct arena *a, const struct ctx_services *svc, const char *body,
    const struct ing_chat_request *req, struct ing_ctx *ctx,
    struct ing_chat_reply *reply)
{
	cJSON *root = body != NULL ? cJSON_Parse(body) : NULL;
	const struct ctx_turn who = {
		.request_id = "req-kb",
		.user_id = "alice",
		.thread_id = "t-kb",
		.flow = "knowledge_base_agent",
		.emit = w.stream ? s_emit : NULL,
		.progress = w.stream ? s_progress : NULL,
		.emit_arg = &w,
		.body = root,
	};
	int rc;

	if (root != NULL)
		arena_cleanup(a, json_delete, root);
	ctx_init(ctx, a, &cfg, svc, &who);
	memset(reply, 0, sizeof(*reply));
	rc = flow_knowledge_base_agent.run(ctx, req, reply);
	return rc;
}

static const struct ing_chat_request plain_req = {
	.user_prompt = Q, .conversation_flow = "knowledge_base_agent",
	.thread_id = "t-kb", .user_id = "alice",
	.thread_memory = "no existing context.",
};

/* ---- the texts --------------------------------------------------------------- */

#define LOCAL_TEXT "Found relevant information from PostgreSQL:\n\n" \
	"Local passage 0 about helmets.\n\nLocal passage 1 about helmets."
#define LOCAL_NONE "No relevant information found in PostgreSQL for query: " Q
#define AZURE_TEXT "Found relevant information from Azure AI Search:\n\n" \
	"[1] Helmet policy (score=1.5)\nHelmets are required\nHelmets are required on site." \
	"\n\n---\n\n[2] doc-1 (score=2.25)\nWear a helmet when cycling."
#define AZURE_NONE "No relevant information found in Azure AI Search for query: " Q
#define CTX_LOCAL "Context: Knowledge base search assistant using local PostgreSQL " \
	"for finding information.\n\n"
#define CTX_AZURE "Context: Knowledge base search assistant using Azure AI Search " \
	"for finding information.\n\n"

static const char *
direct_answer(struct arena *a, const char *ctxline, const char *text)
{
	return arena_sprintf(a, "%sUser question: %s\n\n%s", ctxline, Q, text);
}

/* ---- the policy matrix (direct mode) ------------------------------------------ */

struct expect {
	const char *policy;
	enum local_state local;
	enum azure_state azure;
	bool fallback_on_empty;
	int status;                     /* 0: answers */
	const char *ctxline, *text;     /* the answer: context line, search text */
	const char *reason;             /* the failure's reason */
};

static const struct expect matrix[] = {
	/* local_only: the local store, whatever Azure's state */
	{ "local_only", L_HITS, A_UP, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "local_only", L_HITS, A_DOWN, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "local_only", L_HITS, A_NONE, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "local_only", L_NOMATCH, A_UP, false, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	{ "local_only", L_NOMATCH, A_NONE, false, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	{ "local_only", L_NOMATCH, A_UP, true, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	/* azure_only: Azure, or the reason it cannot answer */
	{ "azure_only", L_HITS, A_UP, false, 0, CTX_AZURE, AZURE_TEXT, NULL },
	{ "azure_only", L_NOMATCH, A_UP, false, 0, CTX_AZURE, AZURE_TEXT, NULL },
	{ "azure_only", L_HITS, A_EMPTY, true, 0, CTX_AZURE, AZURE_NONE, NULL },
	{ "azure_only", L_HITS, A_DOWN, false, 503, NULL, NULL, "preflight_failed" },
	{ "azure_only", L_HITS, A_SEARCH_FAIL, false, 502, NULL, NULL, "provider_failed" },
	{ "azure_only", L_HITS, A_NONE, false, 503, NULL, NULL, "policy" },
	{ "azure_only", L_NOMATCH, A_NONE, false, 503, NULL, NULL, "policy" },
	{ "azure_only", L_HITS, A_HALF, false, 503, NULL, NULL, "incomplete_config" },
	/* prefer_azure: Azure, else local */
	{ "prefer_azure", L_HITS, A_UP, false, 0, CTX_AZURE, AZURE_TEXT, NULL },
	{ "prefer_azure", L_HITS, A_DOWN, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_azure", L_HITS, A_SEARCH_FAIL, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_azure", L_HITS, A_NONE, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_azure", L_HITS, A_HALF, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_azure", L_NOMATCH, A_DOWN, false, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	{ "prefer_azure", L_NOMATCH, A_NONE, false, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	{ "prefer_azure", L_HITS, A_EMPTY, false, 0, CTX_AZURE, AZURE_NONE, NULL },
	{ "prefer_azure", L_HITS, A_EMPTY, true, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	/* prefer_local: local, and Azure only for an empty answer with the flag */
	{ "prefer_local", L_HITS, A_UP, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_local", L_HITS, A_UP, true, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_local", L_HITS, A_DOWN, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_local", L_HITS, A_NONE, false, 0, CTX_LOCAL, LOCAL_TEXT, NULL },
	{ "prefer_local", L_NOMATCH, A_UP, false, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	{ "prefer_local", L_NOMATCH, A_UP, true, 0, CTX_AZURE, AZURE_TEXT, NULL },
	{ "prefer_local", L_NOMATCH, A_DOWN, true, 0, CTX_LOCAL, LOCAL_NONE, NULL },
	{ "prefer_local", L_NOMATCH, A_NONE, true, 0, CTX_LOCAL, LOCAL_NONE, NULL },
};

static const char *const local_names[] = { "hits", "no match", "empty", "fails", "down" };
static const char *const azure_names[] = { "up", "empty", "down", "search fails",
	"not configured", "half configured" };

static void
test_matrix(struct arena *a)
{
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	const struct expect *x;
	const char *msg;
	char name[160];
	size_t i;
	int rc, status;

	set_mode("direct");
	for (i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++) {
		x = &matrix[i];
		world_reset(x->local, x->azure);
		set_policy(x->policy);
		cfg.kb.fallback_on_empty = x->fallback_on_empty;
		snprintf(name, sizeof(name), "%s, local %s, azure %s%s", x->policy,
		    local_names[x->local], azure_names[x->azure],
		    x->fallback_on_empty ? ", fallback_on_empty" : "");
		rc = run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
		if (x->status == 0) {
			is_int(rc, 0, "%s: answers", name);
			is_str(reply.agent_response, direct_answer(a, x->ctxline, x->text),
			    "%s: the reference's text", name);
			is_str(reply.memory_summary, reply.agent_response,
			    "%s: memory_summary is the answer", name);
		} else {
			msg = ing_last_error(&ctx, &status);
			is_int(rc, -1, "%s: fails", name);
			is_int(status, x->status, "%s: with %d", name, x->status);
			ok(strstr(msg, x->reason) != NULL && strstr(msg, "azure_search") != NULL,
			    "%s: the message names the reason %s (%s)", name, x->reason, msg);
		}
		ok(w.llm_calls == 0, "%s: no model call in direct mode", name);
		if (strcmp(x->policy, "local_only") == 0)
			ok(w.az_count_calls == 0 && w.az_search_calls == 0,
			    "%s: Azure is never asked", name);
		if (x->azure == A_UP || x->azure == A_EMPTY || x->azure == A_SEARCH_FAIL)
			if (w.az_search_calls > 0)
				ok(w.az_count_calls == w.az_search_calls,
				    "%s: each Azure search is preceded by its preflight", name);
	}
	cfg.kb.fallback_on_empty = false;

	/* the policy error says what to do */
	world_reset(L_HITS, A_NONE);
	set_policy("azure_only");
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	msg = ing_last_error(&ctx, NULL);
	ok(strstr(msg, "Azure Search is required for knowledge base retrieval and "
	    "must not fall back to local stores") != NULL &&
	    strstr(msg, "KB_POLICY") != NULL, "azure_only without Azure: the "
	    "reference's detail and the setting to change (%s)", msg);
	ok(w.local_calls == 0, "azure_only never searches the local store");
}

/* ---- the local store's own answers ------------------------------------------- */

static void
test_local_states(struct arena *a)
{
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	int status;

	set_policy("local_only");
	set_mode("direct");
	world_reset(L_EMPTY, A_NONE);
	is_int(run_flow(a, &services, NULL, &plain_req, &ctx, &reply), 0,
	    "an empty knowledge base answers");
	is_str(reply.agent_response, direct_answer(a, CTX_LOCAL, "Error: Knowledge base "
	    "directory is empty. Please add documents to /nonexistent/knowledge_base/"),
	    "empty, no folder: the reference's text with the folder");
	world_reset(L_EMPTY, A_NONE);
	w.dir = "/tmp/";
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	is_str(reply.agent_response, direct_answer(a, CTX_LOCAL,
	    "Error: No documents found in knowledge base directory"),
	    "empty, the folder exists: the reference's text");
	ok(w.count_calls == 1, "the chunks are counted only when nothing matched");
	world_reset(L_HITS, A_NONE);
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	ok(w.count_calls == 0, "a search with hits counts nothing");
	world_reset(L_FAIL, A_NONE);
	is_int(run_flow(a, &services, NULL, &plain_req, &ctx, &reply), 0,
	    "a failing local search still answers");
	is_str(reply.agent_response, direct_answer(a, CTX_LOCAL, "Search error: "
	    "text-search configuration \"klingon\" does not exist"),
	    "... with the reference's \"Search error: <e>\"");
	world_reset(L_DOWN, A_NONE);
	is_int(run_flow(a, &services, NULL, &plain_req, &ctx, &reply), -1,
	    "the database down fails the turn");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 503, "... with 503");
	world_reset(L_HITS, A_NONE);
	is_int(run_flow(a, &services_no_kb, NULL, &plain_req, &ctx, &reply), -1,
	    "no knowledge base service: the turn fails");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 503, "... with 503");
}

/* ---- the number of passages ------------------------------------------------- */

static void
test_top_k(struct arena *a)
{
	static const struct { const char *body; int direct, assist; const char *what; } cases[] = {
		{ NULL, 3, 5, "no setting: 3 direct, 5 assist" },
		{ "{\"kb_top_k\": 7}", 7, 7, "kb_top_k in the body" },
		{ "{\"top_k\": \"8\"}", 8, 8, "top_k as a string of digits" },
		{ "{\"search_top_k\": 9}", 9, 9, "search_top_k" },
		{ "{\"parameters\": {\"kb_top_k\": 4}}", 4, 4, "kb_top_k in parameters" },
		{ "{\"parameters\": {\"search_top_k\": \" 6 \"}}", 6, 6, "a padded string in parameters" },
		{ "{\"top_k\": 2, \"parameters\": {\"kb_top_k\": 11}}", 2, 2,
		  "the body's member beats parameters" },
		{ "{\"kb_top_k\": -1, \"top_k\": 2.5, \"search_top_k\": \"x\"}", 3, 5,
		  "invalid values are ignored" },
		{ "{\"kb_top_k\": 0}", 3, 5, "0 is ignored" },
		{ "{\"kb_top_k\": 99999999}", 1000, 1000, "a huge value is cut to 1000" },
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	size_t i;

	set_policy("local_only");
	cfg.kb.topk_direct = 3;
	cfg.kb.topk_assist = 5;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_mode("direct");
		world_reset(L_HITS, A_NONE);
		(void)run_flow(a, &services, cases[i].body, &plain_req, &ctx, &reply);
		is_int(w.local_top_k, cases[i].direct, "direct: %s", cases[i].what);
		set_mode("assist");
		world_reset(L_HITS, A_NONE);
		(void)run_flow(a, &services, cases[i].body, &plain_req, &ctx, &reply);
		is_int(w.local_top_k, cases[i].assist, "assist: %s", cases[i].what);
	}
	set_mode("direct");
	cfg.kb.topk_direct = 4;
	world_reset(L_HITS, A_NONE);
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	is_int(w.local_top_k, 4, "kb.topk_direct (KB_TOPK_DIRECT) 4");
	set_policy("azure_only");
	world_reset(L_HITS, A_UP);
	(void)run_flow(a, &services, "{\"kb_top_k\": 1}", &plain_req, &ctx, &reply);
	is_int(w.az_top_k, 1, "Azure gets the same number");
	ok(strstr(reply.agent_response, "[2]") == NULL, "... and shows that many");
	cfg.kb.topk_direct = 3;
}

/* ---- the memory context, the snippet cap, the stream -------------------------- */

static void
test_memory_cap_stream(struct arena *a)
{
	static const struct ing_message history[] = {
		{ "user", "Do I need a helmet?", NULL },
		{ "assistant", "Yes. ééééééééééééééééééééééééééééééééééééééééééééééééééééé"
		  "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", NULL },
	};
	struct ing_chat_request req = plain_req;
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	const char *expect;
	char cut[512];
	int i;

	set_policy("local_only");
	set_mode("direct");
	req.history = history;
	req.n_history = 2;
	world_reset(L_HITS, A_NONE);
	(void)run_flow(a, &services, NULL, &req, &ctx, &reply);
	/* 100 characters of the answer: "Yes. " and 95 é */
	strcpy(cut, "Yes. ");
	for (i = 0; i < 95; i++)
		strcat(cut, "é");
	expect = arena_sprintf(a, CTX_LOCAL "Previous conversation:\nuser: Do I need "
	    "a helmet?...\nassistant: %s...\n\nUser question: " Q "\n\n" LOCAL_TEXT, cut);
	is_str(reply.agent_response, expect, "the thread's messages, 100 characters "
	    "each (never half a character), before the question");
	ok(reply.token_count > 0, "direct mode estimates the tokens (%ld)",
	    reply.token_count);
	is_str(w.query, Q, "the search gets the question as written");

	set_policy("azure_only");
	cfg.kb.azure_snippet_cap = 8;
	world_reset(L_HITS, A_UP);
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	is_str(reply.agent_response, direct_answer(a, CTX_AZURE, "Found relevant "
	    "information from Azure AI Search:\n\n[1] Helmet policy (score=1.5)\n"
	    "Helmets \n\n---\n\n[2] doc-1 (score=2.25)\nWear a h"),
	    "kb.azure_snippet_cap cuts snippet and content (the same cut shown once)");
	cfg.kb.azure_snippet_cap = 0;

	set_policy("local_only");
	world_reset(L_HITS, A_NONE);
	w.stream = true;
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	is_str(buf_cstr(&w.progress), "Searching knowledge base...|Generating response...|",
	    "a stream gets the reference's two status chunks");
	is_str(buf_cstr(&w.emitted), reply.agent_response,
	    "... then the answer as content");
}

/* ---- assist mode ---------------------------------------------------------------- */

static void
test_assist(struct arena *a)
{
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	int status;

	set_mode("assist");
	set_policy("local_only");
	world_reset(L_HITS, A_NONE);
	is_int(run_flow(a, &services, NULL, &plain_req, &ctx, &reply), 0,
	    "assist: answers");
	is_str(reply.agent_response, "Helmets are required on site [1].",
	    "assist: the model's answer");
	is_str(reply.agent_name, "search_assistant", "assist: agent search_assistant");
	is_int(w.llm_calls, 2, "assist: two model calls (tool call, then the answer)");
	is_int(w.rows, 2, "assist: a usage row per model call");
	is_str(w.rows_agent[0], "search_assistant", "... under the agent's name");
	is_str(w.rows_agent[1], "search_assistant", "... both");
	is_str(w.tool_result, LOCAL_TEXT, "assist: the tool's result is the search text");
	is_str(w.query, "helmet rules", "assist: the search gets the model's query");
	is_int(w.local_top_k, 5, "assist: kb.topk_assist passages");
	is_str(w.user_sent, CTX_LOCAL "User question: " Q,
	    "assist: the user message names the backend and the question");
	ok(strstr(w.system_sent, "Use the search_tool to look up information") != NULL,
	    "assist: the reference's system prompt");
	is_str(w.tool_description, "Search for information using local PostgreSQL. "
	    "Use relevant keywords to find relevant information.",
	    "assist: the tool's description names the backend");

	set_policy("azure_only");
	world_reset(L_HITS, A_NONE);
	is_int(run_flow(a, &services, NULL, &plain_req, &ctx, &reply), -1,
	    "assist, azure_only without Azure: the turn fails");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 503, "... with 503");
	set_policy("prefer_azure");
	world_reset(L_HITS, A_UP);
	(void)run_flow(a, &services, NULL, &plain_req, &ctx, &reply);
	is_str(w.tool_result, "Found relevant information from Azure AI Search:\n\n"
	    "[1] Helmet policy (score=1.5)\nHelmets are required\nHelmets are required "
	    "on site.\n\n---\n\n[2] doc-1 (score=2.25)\nWear a helmet when cycling.",
	    "assist, prefer_azure: the tool gets Azure's text");
	ok(strstr(w.user_sent, "using Azure AI Search") != NULL,
	    "assist, prefer_azure with Azure: the backend named is Azure");
	set_mode("direct");
}

int
main(void)
{
	struct arena *a = arena_create(0);

	memset(&cfg, 0, sizeof(cfg));
	cfg.llm.timeout_ms = TIMEOUT_MS;
	cfg.flows.turn_timeout_ms = TIMEOUT_MS * 5;
	cfg.flows.max_llm_calls = 25;
	cfg.flows.max_tool_iterations = 10;
	cfg.flows.max_parallel = 8;
	cfg.kb.topk_direct = 3;
	cfg.kb.topk_assist = 5;
	test_matrix(a);
	test_local_states(a);
	test_top_k(a);
	test_memory_cap_stream(a);
	test_assist(a);
	world_reset(L_HITS, A_NONE);
	buf_free(&w.progress);
	buf_free(&w.emitted);
	arena_destroy(a);
	return tap_done();
}
