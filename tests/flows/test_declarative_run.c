/*
 * test_declarative_run.c -- a flow file run alone (flows/declarative.c
 * through flows/ctx.c) against a scripted model: a parallel group, an agent
 * offered as a tool (the model's "input" as its user prompt), later agents
 * seeing earlier outputs, the reply template, the memory template with the
 * excerpt, an append rule, usage under each agent's name, the flow's
 * own limit of model calls, and the knowledge base's kb_search as a tool
 * (a scripted local knowledge base under it) and sql_query (a scripted
 * SQL database).
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "flows/ctx.h"
#include "flows/declarative.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/xmalloc.h"
#include "tests/unit/tap.h"

#define MAX_CALLS 16

static struct {
	pthread_mutex_t lock;
	int calls;
	char agent[MAX_CALLS][32];
	char system[MAX_CALLS][512];
	char user[MAX_CALLS][512];
	size_t n_tools[MAX_CALLS];
	char rows[MAX_CALLS][32];
	int n_rows;
	bool judge_asked;
	char row_prompt[MAX_CALLS][64];     /* revision/file#hash of each usage row */
	char tmpl_seen[256];                /* what the template service was asked */
} w = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct config cfg;
static struct config_model model;

static int
scripted_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	const struct ctx_message *last = &call->messages[call->n_messages - 1];
	struct ctx_usage u = { .model = "gpt-test", .deployment = "",
	    .prompt_tokens = 5, .completion_tokens = 5, .total_tokens = 10,
	    .http_status = 200, .billed = true };
	bool ask_tool = false;
	int k;

	(void)arg;
	(void)e;
	pthread_mutex_lock(&w.lock);
	k = w.calls++;
	if (k < MAX_CALLS) {
		snprintf(w.agent[k], sizeof(w.agent[k]), "%s", call->agent);
		snprintf(w.system[k], sizeof(w.system[k]), "%s",
		    call->messages[0].content);
		snprintf(w.user[k], sizeof(w.user[k]), "%s",
		    call->messages[1].content);
		w.n_tools[k] = call->n_tools;
	}
	if (strcmp(call->agent, "judge") == 0 && !w.judge_asked) {
		w.judge_asked = true;
		ask_tool = true;
	}
	if (strcmp(call->agent, "analyst") == 0 && strcmp(last->role, "tool") != 0) {
		pthread_mutex_unlock(&w.lock);
		call->on_usage(call->arg, &u);
		{
			struct ctx_tool_call *sc = arena_zalloc(a, sizeof(*sc));

			sc->id = "call_sql";
			sc->name = "sql_query";
			sc->arguments = "{\"query\":\"SELECT count(*) AS n FROM t\"}";
			out->tool_calls = sc;
			out->n_tool_calls = 1;
		}
		return 0;
	}
	if (strcmp(call->agent, "librarian") == 0 && strcmp(last->role, "tool") != 0) {
		pthread_mutex_unlock(&w.lock);
		call->on_usage(call->arg, &u);
		{
			struct ctx_tool_call *kc = arena_zalloc(a, sizeof(*kc));

			kc->id = "call_kb";
			kc->name = "kb_search";
			kc->arguments = "{\"query\":\"helmet rules\"}";
			out->tool_calls = kc;
			out->n_tool_calls = 1;
		}
		return 0;
	}
	pthread_mutex_unlock(&w.lock);
	call->on_usage(call->arg, &u);
	if (ask_tool) {
		struct ctx_tool_call *tc = arena_zalloc(a, sizeof(*tc));

		tc->id = "call_1";
		tc->name = "expert";
		tc->arguments = "{\"input\":\"is it true?\"}";
		out->tool_calls = tc;
		out->n_tool_calls = 1;
		return 0;
	}
	if (strcmp(last->role, "tool") == 0)
		out->content = arena_sprintf(a, "verdict after %s", last->content);
	else
		out->content = arena_sprintf(a, "%s-said", call->agent);
	out->model = "gpt-test";
	return 0;
}

static int
scripted_usage(void *arg, const struct ctx_turn *who, const char *agent,
    const struct ctx_usage *u, int64_t *id)
{
	(void)arg;
	(void)who;
	pthread_mutex_lock(&w.lock);
	if (w.n_rows < MAX_CALLS) {
		snprintf(w.rows[w.n_rows], sizeof(w.rows[0]), "%s", agent);
		snprintf(w.row_prompt[w.n_rows], sizeof(w.row_prompt[0]), "%s/%s#%s",
		    u->prompt ? u->prompt->revision : "-",
		    u->prompt ? u->prompt->file : "-",
		    u->prompt ? u->prompt->hash : "-");
	}
	*id = ++w.n_rows;
	pthread_mutex_unlock(&w.lock);
	return 0;
}

/* A template of revision r1: says what it was given. */
static int
scripted_render(void *arg, const char *revision, const char *file,
    const struct cJSON *vars, struct arena *a, const char **text,
    char hash[65], struct err *e)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(vars, "request");
	const cJSON *up = cJSON_GetObjectItemCaseSensitive(req, "user_prompt");
	const cJSON *ex = cJSON_GetObjectItemCaseSensitive(vars, "excerpt");

	(void)arg;
	if (strcmp(file, "missing.jinja") == 0)
		return err_set(e, 404, "no template %s/%s", revision, file);
	snprintf(w.tmpl_seen, sizeof(w.tmpl_seen), "%s/%s", revision, file);
	*text = arena_sprintf(a, "template %s/%s for [%s], excerpt [%s]", revision,
	    file, cJSON_IsString(up) ? up->valuestring : "?",
	    cJSON_IsString(ex) ? ex->valuestring : "?");
	snprintf(hash, 65, "%064d", 7);
	return 0;
}

static const struct ctx_template_service templates = {
	.render = scripted_render,
};

/* A local knowledge base of one passage; says what it was asked. */
static char kb_query[128];

static int
scripted_kb_search(void *arg, const char *query, int top_k, struct arena *a,
    struct ctx_kb_hit **hits, struct err *e)
{
	(void)arg;
	(void)e;
	snprintf(kb_query, sizeof(kb_query), "%s/%d", query, top_k);
	*hits = arena_zalloc(a, sizeof(**hits));
	(*hits)->source = "safety.md";
	(*hits)->content = "Helmets are required on site.";
	(*hits)->score = 0.5;
	return 1;
}

static int
scripted_kb_count(void *arg, long *chunks, struct err *e)
{
	(void)arg;
	(void)e;
	*chunks = 1;
	return 0;
}

static const struct ctx_kb_service kb = {
	.local_search = scripted_kb_search,
	.local_count = scripted_kb_count,
};

/* An SQL database of one row; says what it was asked. */
static char sql_seen[128];

static int
scripted_sql_query(void *arg, const char *sql, struct arena *a,
    struct ctx_sql_rows *out, struct err *e)
{
	static const char *names[] = { "n" };
	static bool numeric[] = { true };

	(void)arg;
	(void)e;
	snprintf(sql_seen, sizeof(sql_seen), "%s", sql);
	out->n_cols = 1;
	out->col_names = names;
	out->col_numeric = numeric;
	out->n_rows = 1;
	out->rows = arena_zalloc(a, sizeof(*out->rows));
	out->rows[0] = arena_zalloc(a, sizeof(**out->rows));
	out->rows[0][0] = "7";
	return 0;
}

static const struct ctx_sql_service sqlsvc = { .query = scripted_sql_query };

static const struct ctx_services services = {
	.llm_chat = scripted_chat,
	.record_usage = scripted_usage,
	.templates = &templates,
	.kb = &kb,
	.sql = &sqlsvc,
};

static const char flow_text[] =
    "name = \"review\";\n"
    "agents = (\n"
    "  { name = \"critic\"; system = \"Criticise: {{ request.user_prompt }}\"; },\n"
    "  { name = \"fan\"; system = \"Praise it.\"; },\n"
    "  { name = \"judge\";\n"
    "    system = \"Critic: {{ agents.critic }}. Fan: {{ agents.fan }}.\";\n"
    "    user = \"Decide about {{ request.user_prompt }}\"; tools = [\"expert\"]; },\n"
    "  { name = \"expert\"; system = \"You know {{ excerpt }}.\"; }\n"
    ");\n"
    "steps = ( { parallel = [\"critic\", \"fan\"]; }, \"judge\" );\n"
    "reply = \"{{ agents.judge }} (critic: {{ agents.critic }})\";\n"
    "memory = \"Reviewed: {{ excerpt }}...\";\n"
    "excerpt_chars = 12;\n"
    "append_if = ( { contains = \"URGENT\"; text = \" [urgent]\"; },\n"
    "              { contains = \"never there\"; text = \" [no]\"; } );\n";

static struct decl_flow *
load(const char *text, const char *path)
{
	FILE *fp = fopen(path, "w");
	struct decl_flow *f;
	char *problem;

	fputs(text, fp);
	fclose(fp);
	f = decl_load(path, &cfg, &problem);
	if (f == NULL) {
		printf("# %s\n", problem);
		free(problem);
	}
	unlink(path);
	return f;
}

static int
run(struct decl_flow *f, const char *name, const char *prompt,
    struct ing_chat_reply *reply, struct ing_ctx *ctx, struct arena *a)
{
	struct decl_flow *flows[1] = { f };
	struct decl_set set = { flows, 1, NULL, 0 };
	struct ing_chat_request req = { .user_prompt = prompt,
	    .conversation_flow = name, .thread_id = "t1", .user_id = "u1",
	    .thread_memory = "no existing context." };
	struct ctx_turn who = { .request_id = "r1", .user_id = "u1",
	    .thread_id = "t1", .flow = name, .request = &req };
	int rc;

	ctx_init(ctx, a, &cfg, &services, &who);
	memset(reply, 0, sizeof(*reply));
	decl_bind(&set);
	rc = decl_run(ctx, &req, reply);
	decl_bind(NULL);
	return rc;
}

int
main(void)
{
	struct arena *a = arena_create(4096);
	struct ing_chat_reply reply;
	struct ing_ctx ctx;
	struct decl_flow *f;
	int status;
	int i, judge = -1, expert = -1;

	model.model = xstrdup("gpt-test");
	cfg.models = &model;
	cfg.n_models = 1;
	cfg.flows.max_llm_calls = 25;
	cfg.flows.max_tool_iterations = 10;
	cfg.flows.turn_timeout_ms = 10000;
	cfg.flows.max_parallel = 8;

	f = load(flow_text, "/tmp/test_declarative_run.flow");
	ok(f != NULL, "the flow file loads");
	if (f == NULL)
		return tap_done();
	ok(run(f, "review", "Is this urgent thing right?", &reply, &ctx, a) == 0,
	    "the flow runs (%s)", ctx.err_msg);
	is_int(w.calls, 5, "five model calls: critic, fan, judge twice (a tool "
	    "round), expert");
	ok((strcmp(w.agent[0], "critic") == 0 && strcmp(w.agent[1], "fan") == 0) ||
	    (strcmp(w.agent[0], "fan") == 0 && strcmp(w.agent[1], "critic") == 0),
	    "the parallel group runs first (%s, %s)", w.agent[0], w.agent[1]);
	for (i = 0; i < w.calls && i < MAX_CALLS; i++) {
		if (strcmp(w.agent[i], "judge") == 0 && judge < 0)
			judge = i;
		if (strcmp(w.agent[i], "expert") == 0)
			expert = i;
	}
	ok(judge >= 2, "then the judge");
	if (judge >= 0) {
		is_str(w.system[judge], "Critic: critic-said. Fan: fan-said.",
		    "the judge's system prompt has the earlier agents' outputs");
		is_str(w.user[judge], "Decide about Is this urgent thing right?",
		    "its user prompt is its template");
		is_int(w.n_tools[judge], 1, "it is offered one tool");
	}
	for (i = 0; i < 2; i++)
		if (strcmp(w.agent[i], "critic") == 0) {
			is_str(w.system[i], "Criticise: Is this urgent thing right?",
			    "the critic's prompt has the request");
			is_str(w.user[i], "Is this urgent thing right?",
			    "an agent without user = gets the request's prompt");
		}
	ok(expert > judge, "the expert runs as the judge's tool");
	if (expert >= 0) {
		is_str(w.user[expert], "is it true?",
		    "the tool's input is the expert's user prompt");
		is_str(w.system[expert], "You know Is this urge.",
		    "the excerpt is the first excerpt_chars characters");
	}
	is_str(reply.agent_response,
	    "verdict after expert-said (critic: critic-said) [urgent]",
	    "the reply template, then the matching append rule only");
	is_str(reply.memory_summary, "Reviewed: Is this urge...",
	    "the memory template");
	is_int(w.n_rows, 5, "a usage row per model call");
	{
		int critic_rows = 0, expert_rows = 0;

		for (i = 0; i < w.n_rows && i < MAX_CALLS; i++) {
			critic_rows += strcmp(w.rows[i], "critic") == 0;
			expert_rows += strcmp(w.rows[i], "expert") == 0;
		}
		ok(critic_rows == 1 && expert_rows == 1,
		    "usage rows are under the agents' names");
	}
	ok(run(f, "review", "calm words", &reply, &ctx, a) == 0 &&
	    strstr(reply.agent_response, "[urgent]") == NULL,
	    "no append when the prompt does not contain the text");
	decl_flow_free(f);

	/* the flow's own limit: 2 calls, but the tool round needs more */
	memset(&w.calls, 0, sizeof(w.calls));
	w.judge_asked = false;
	f = load("agents = (\n { name = \"judge\"; system = \"x\"; tools = [\"expert\"]; },\n"
	    " { name = \"expert\"; system = \"y\"; }\n);\n"
	    "steps = ( \"judge\" );\nlimits = { max_llm_calls = 2; };\n",
	    "/tmp/test_declarative_limit.flow");
	ok(f != NULL, "a flow with a limit loads");
	if (f != NULL) {
		ok(run(f, "test_declarative_limit", "go", &reply, &ctx, a) != 0,
		    "the flow fails past its own limit");
		ing_last_error(&ctx, &status);
		is_int(status, 500, "with 500");
		ok(strstr(ctx.err_msg, "limit of 2 language-model calls "
		    "(limits.max_llm_calls") != NULL, "naming the limit (%s)",
		    ctx.err_msg);
	}
	decl_flow_free(f);

	/* a system prompt from a template file of the flow's revision */
	memset(&w.calls, 0, sizeof(w.calls));
	w.n_rows = 0;
	f = load("revision = \"r1\";\nexcerpt_chars = 4;\n"
	    "agents = ( { name = \"t\"; system_template = \"sys.jinja\"; } );\n"
	    "steps = ( \"t\" );\n", "/tmp/test_declarative_file.flow");
	ok(f != NULL, "a flow with a template file loads");
	if (f != NULL) {
		ok(run(f, "test_declarative_file", "hello world", &reply, &ctx, a) == 0,
		    "it runs (%s)", ctx.err_msg);
		is_str(w.tmpl_seen, "r1/sys.jinja", "the template of the revision is "
		    "rendered through ing_prompt_render");
		is_str(w.system[0], "template r1/sys.jinja for [hello world], excerpt "
		    "[hell]", "its text is the system prompt; it gets request and excerpt");
		ok(strncmp(w.row_prompt[0], "r1/sys.jinja#0000", 17) == 0,
		    "the usage row records the template's revision, file and hash (%s)",
		    w.row_prompt[0]);
		is_str(reply.agent_response, "t-said", "the reply is the last agent's");
	}
	decl_flow_free(f);
	f = load("revision = \"r1\";\n"
	    "agents = ( { name = \"t\"; system_template = \"missing.jinja\"; } );\n"
	    "steps = ( \"t\" );\n", "/tmp/test_declarative_missing.flow");
	if (f != NULL) {
		ok(run(f, "test_declarative_missing", "x", &reply, &ctx, a) != 0,
		    "a missing template file fails the turn");
		ing_last_error(&ctx, &status);
		is_int(status, 404, "with the template service's status");
	}
	decl_flow_free(f);

	/* the knowledge base as a tool */
	cfg.kb.policy = (char *)(uintptr_t)"local_only";
	cfg.kb.topk_assist = 5;
	w.calls = 0;
	f = load("agents = ( { name = \"librarian\"; system = \"Answer from the "
	    "knowledge base.\"; tools = [\"kb_search\"]; } );\n"
	    "steps = ( \"librarian\" );\n", "/tmp/test_declarative_kb.flow");
	ok(f != NULL, "a flow with the kb_search tool loads");
	if (f != NULL) {
		ok(run(f, "test_declarative_kb", "helmets?", &reply, &ctx, a) == 0,
		    "it runs (%s)", ctx.err_msg);
		is_int((long)w.n_tools[0], 1, "the agent is offered one tool");
		is_str(kb_query, "helmet rules/5", "the search gets the model's query "
		    "and kb.topk_assist passages");
		is_str(reply.agent_response, "verdict after Found relevant information "
		    "from PostgreSQL:\n\nHelmets are required on site.",
		    "the model gets the reference's search text back");
	}
	decl_flow_free(f);

	/* the SQL agent's database as a tool */
	f = load("agents = ( { name = \"analyst\"; system = \"Count with SQL.\"; "
	    "tools = [\"sql_query\"]; } );\nsteps = ( \"analyst\" );\n",
	    "/tmp/test_declarative_sql.flow");
	ok(f != NULL, "a flow with the sql_query tool loads");
	if (f != NULL) {
		ok(run(f, "test_declarative_sql", "how many?", &reply, &ctx, a) == 0,
		    "it runs (%s)", ctx.err_msg);
		is_str(sql_seen, "SELECT count(*) AS n FROM t",
		    "the statement is the model's query");
		is_str(reply.agent_response, "verdict after {'n': 7}",
		    "the model gets the reference's row text back");
	}
	decl_flow_free(f);

	/* not bound: a clear failure, not a crash */
	{
		struct ing_chat_request req = { .user_prompt = "x" };
		struct ctx_turn who = { .request_id = "r", .flow = "ghost",
		    .request = &req };

		ctx_init(&ctx, a, &cfg, &services, &who);
		ok(decl_run(&ctx, &req, &reply) != 0 &&
		    strstr(ctx.err_msg, "not loaded") != NULL,
		    "a flow that is not bound fails the turn");
	}
	arena_destroy(a);
	return tap_done();
}
