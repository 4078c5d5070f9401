/*
 * test_bike_insights.c -- the built-in bike-insights flow
 * (flows/builtin/bike_insights.c) run alone: its context (flows/ctx.c) is
 * built with scripted services (a model that answers by agent, asks for
 * the price tool once and notes what each agent was sent; templates that
 * render fixed texts), so there is no socket, no database and no server.
 * It checks the three validation errors with the reference's texts, the
 * four model calls (five with the tool) and the messages each agent got,
 * the two first agents running at once, the price the tool answers, the
 * reply's JSON and fields, template failures, and the thread's earlier
 * outputs reaching the summary.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "flows/builtin/builtin.h"
#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"
#include "tests/unit/tap.h"

#define MAX_CALLS 8
#define TIMEOUT_MS 2500
#define NAP_MS 30                       /* each model call takes this long */

/* One model call, as the scripted model saw it. */
struct seen {
	char agent[64], model[64];
	char *system, *user;            /* NULL when not sent */
	char *tool_result;              /* the last message, when it is a tool's */
	size_t n_tools;
};

struct world {
	pthread_mutex_t lock;
	struct seen calls[MAX_CALLS];
	int n_calls;
	int in_flight, max_in_flight;
	const char *ticker;             /* what bike_lookup_agent asks the tool; NULL: no tool call */
	const char *missing_file;       /* the template that does not exist */
	int template_status;            /* a template failure for every file (0: none) */
	int n_rows;
	char row_agents[MAX_CALLS * 2][64];
	char row_prompts[MAX_CALLS * 2][160];  /* "<revision>/<file> <hash>", or "" */
};

static struct world world;
static struct config cfg;

static void
world_reset(void)
{
	int i;

	for (i = 0; i < world.n_calls; i++) {
		free(world.calls[i].system);
		free(world.calls[i].user);
		free(world.calls[i].tool_result);
	}
	memset(&world, 0, sizeof(world));
	world.lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	world.ticker = "MB-TREK-2021-XC";
}

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static const struct seen *
seen_of(const char *agent, int nth)
{
	int i;

	for (i = 0; i < world.n_calls; i++)
		if (strcmp(world.calls[i].agent, agent) == 0 && nth-- == 0)
			return &world.calls[i];
	return NULL;
}

static int
scripted_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct world *w = arg;
	const struct ctx_message *last = &call->messages[call->n_messages - 1];
	struct ctx_usage u = {
		.model = "gpt-4.1-nano", .deployment = "nano",
		.prompt_tokens = 100, .completion_tokens = 20, .total_tokens = 120,
		.latency_ms = NAP_MS, .http_status = 200, .billed = true,
	};
	struct seen *s;
	size_t i;

	pthread_mutex_lock(&w->lock);
	if (w->n_calls == MAX_CALLS) {
		pthread_mutex_unlock(&w->lock);
		return err_set(e, 500, "too many calls");
	}
	s = &w->calls[w->n_calls++];
	snprintf(s->agent, sizeof(s->agent), "%s", call->agent);
	snprintf(s->model, sizeof(s->model), "%s", call->model ? call->model : "(null)");
	for (i = 0; i < call->n_messages; i++) {
		const struct ctx_message *m = &call->messages[i];

		if (strcmp(m->role, "system") == 0 && s->system == NULL)
			s->system = strdup(m->content);
		else if (strcmp(m->role, "user") == 0 && s->user == NULL)
			s->user = strdup(m->content);
	}
	if (strcmp(last->role, "tool") == 0)
		s->tool_result = strdup(last->content ? last->content : "");
	s->n_tools = call->n_tools;
	w->in_flight++;
	if (w->in_flight > w->max_in_flight)
		w->max_in_flight = w->in_flight;
	pthread_mutex_unlock(&w->lock);

	nap_ms(NAP_MS);
	call->on_usage(call->arg, &u);

	pthread_mutex_lock(&w->lock);
	w->in_flight--;
	pthread_mutex_unlock(&w->lock);
	if (call->n_tools > 0 && strcmp(last->role, "tool") != 0 && w->ticker != NULL) {
		struct ctx_tool_call *tc = arena_zalloc(a, sizeof(*tc));

		tc->id = "call_1";
		tc->name = "get_bike_price";
		tc->arguments = arena_sprintf(a, "{\"ticker\":\"%s\",\"date\":"
		    "\"2023/04/30\"}", w->ticker);
		out->tool_calls = tc;
		out->n_tool_calls = 1;
		return 0;
	}
	if (strcmp(last->role, "tool") == 0)
		out->content = arena_sprintf(a, "answer of %s: the price is %s",
		    call->agent, last->content);
	else
		out->content = arena_sprintf(a, "answer of %s", call->agent);
	out->model = "gpt-4.1-nano";
	return 0;
}

static int
scripted_record_usage(void *arg, const struct ctx_turn *who, const char *agent,
    const struct ctx_usage *u, int64_t *id)
{
	struct world *w = arg;

	(void)who;
	pthread_mutex_lock(&w->lock);
	if (w->n_rows < MAX_CALLS * 2) {
		snprintf(w->row_agents[w->n_rows], sizeof(w->row_agents[0]), "%s", agent);
		if (u->prompt != NULL)
			snprintf(w->row_prompts[w->n_rows], sizeof(w->row_prompts[0]),
			    "%s/%s %s", u->prompt->revision, u->prompt->file, u->prompt->hash);
	}
	*id = 100 + w->n_rows++;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int64_t
scripted_clock_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Templates: "prompt of <revision>/<file>", the hash "h-<file>". */
static int
scripted_render(void *arg, const char *revision, const char *file,
    const struct cJSON *vars, struct arena *a, const char **text,
    char hash[65], struct err *e)
{
	struct world *w = arg;

	(void)vars;
	if (w->template_status != 0)
		return err_set(e, w->template_status, "%s: template failure", file);
	if (w->missing_file != NULL && strcmp(file, w->missing_file) == 0)
		return err_set(e, 404, "no template %s in revision %s", file, revision);
	*text = arena_sprintf(a, "prompt of %s/%s", revision, file);
	snprintf(hash, 65, "h-%.60s", file);
	return 0;
}

static const struct ctx_template_service templates = { .render = scripted_render };

static const struct ctx_services services = {
	.arg = &world,
	.llm_chat = scripted_llm_chat,
	.record_usage = scripted_record_usage,
	.clock_ms = scripted_clock_ms,
	.templates = &templates,
};

static const char payload[] =
    "{\"revision_id\": \"quickstart-1\", \"identifier\": \"april-2023\", "
    "\"stores\": [{\"name\": \"Sydney Central\", \"location\": \"NSW\", "
    "\"bike_sales\": [{\"product_code\": \"MB-TREK-2021-XC\", \"quantity_sold\": 2, "
    "\"sale_date\": \"2023-04-01\", \"year\": 2023, \"month\": \"April\", "
    "\"customer_review\": {\"rating\": 4.5, \"comment\": \"Great, really\"}}], "
    "\"bike_stock\": [{\"bike\": {\"brand\": \"Trek\", \"model\": \"Marlin 7\", "
    "\"year\": 2021, \"price\": 1299.99, \"suspension\": \"front\"}, \"quantity\": 10}]}, "
    "{\"name\": \"Melbourne, Docklands\", \"location\": \"VIC\", "
    "\"bike_sales\": [{\"product_code\": \"RB-CANNONDALE-2022-CAAD\", \"quantity_sold\": 3, "
    "\"sale_date\": \"2023-04-20\", \"year\": 2023, \"month\": \"April\", "
    "\"customer_review\": {\"rating\": 5, \"comment\": \"Fast\"}}], "
    "\"bike_stock\": [{\"bike\": {\"brand\": \"Cannondale\", \"model\": \"CAAD Optimo\", "
    "\"year\": 2022, \"price\": 1899.0, \"frame_material\": \"aluminium\"}, \"quantity\": 6}, "
    "{\"bike\": {\"brand\": \"Bosch\", \"model\": \"City E\", \"year\": 2022, "
    "\"price\": 2999.0, \"battery_capacity\": 0.5, \"motor_power\": 250}, \"quantity\": 4}]}]}";

static int
run_flow(struct arena *a, const struct ing_chat_request *req, struct ing_ctx *ctx,
    struct ing_chat_reply *reply)
{
	const struct ctx_turn who = {
		.request_id = "req-1", .user_id = "alice",
		.thread_id = req->thread_id, .flow = "bike_insights", .request = req,
	};

	ctx_init(ctx, a, &cfg, &services, &who);
	memset(reply, 0, sizeof(*reply));
	return flow_bike_insights.run(ctx, req, reply);
}

static void
expect_400(struct arena *a, const char *prompt, const char *want_prefix,
    const char *want_part, const char *name)
{
	const struct ing_chat_request req = {
		.user_prompt = prompt, .conversation_flow = "bike_insights",
		.thread_id = "t-bad", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	const char *msg;
	int status = 0;

	world_reset();
	is_int(run_flow(a, &req, &ctx, &reply), -1, "%s: the flow fails", name);
	msg = ing_last_error(&ctx, &status);
	is_int(status, 400, "%s: 400", name);
	if (!ok(strncmp(msg, want_prefix, strlen(want_prefix)) == 0 &&
	    (want_part == NULL || strstr(msg, want_part) != NULL),
	    "%s: the reference's message, with what is wrong", name))
		fprintf(stderr, "# got: %s\n", msg);
	is_int(world.n_calls, 0, "%s: no model call", name);
}

static void
test_validation(struct arena *a)
{
	static const char json_prefix[] = "bike-insights workflow requires "
	    "JSON-formatted data. Please provide a valid JSON string with fields: "
	    "revision_id, identifier, stores. Example: {\"revision_id\": \"test-v1\", "
	    "\"identifier\": \"test-001\", \"stores\": [...]}\nJSON parsing error: ";
	static const char schema_prefix[] = "bike-insights workflow data validation "
	    "failed. Please ensure your JSON data matches the expected schema for "
	    "bike sales data. Validation error: ";

	expect_400(a, "Hello, bikes?", json_prefix,
	    "Invalid JSON: line 1 column 1 (char 0)", "not JSON");
	expect_400(a, "{\"revision_id\": \"x\",\n \"identifier\": }", json_prefix,
	    "line 2 column 16 (char 36)", "broken JSON: the position");
	expect_400(a, "[1, 2]", json_prefix, "not a JSON object", "a JSON list");
	expect_400(a, "{\"identifier\": \"x\", \"extra\": 1}",
	    "bike-insights workflow requires the following fields in JSON data: "
	    "revision_id, stores. Current data contains: ['identifier', 'extra']. "
	    "Please include all required fields: revision_id, identifier, stores",
	    NULL, "missing fields");
	expect_400(a, "{\"revision_id\": \"r\", \"identifier\": \"i\", \"stores\": 3}",
	    schema_prefix, "1 validation error for RootModel\nstores\n  Input should "
	    "be a valid list", "stores not a list");
	expect_400(a, "{\"revision_id\": \"r\", \"identifier\": \"i\", \"stores\": "
	    "[{\"name\": \"S\", \"location\": \"L\", \"bike_sales\": [{\"product_code\": "
	    "\"P\", \"quantity_sold\": \"two\", \"sale_date\": \"d\", \"year\": 2023.5, "
	    "\"month\": \"April\", \"customer_review\": {\"rating\": 5}}], "
	    "\"bike_stock\": [{\"bike\": {\"brand\": \"B\", \"model\": \"M\", \"year\": 1, "
	    "\"price\": 1}, \"quantity\": 1}]}]}", schema_prefix,
	    "4 validation errors for RootModel\n"
	    "stores.0.bike_sales.0.quantity_sold\n  Input should be a valid integer\n"
	    "stores.0.bike_sales.0.year\n  Input should be a valid integer, got a "
	    "number with a fractional part\n"
	    "stores.0.bike_sales.0.customer_review.comment\n  Field required\n"
	    "stores.0.bike_stock.0.bike\n  Input should be a mountain bike",
	    "every schema error, with its location");
	expect_400(a, "{\"revision_id\": 7, \"identifier\": \"i\", \"stores\": []}",
	    schema_prefix, "revision_id\n  Input should be a valid string",
	    "a revision that is not a string");
}

/* The full run: four calls (five with the tool) and the reply. */
static void
test_run(struct arena *a)
{
	static const char csv[] = "## Sales\n``` csv\n"
	    "product_code,quantity_sold,sale_date,year,month,store_name,location\n"
	    "MB-TREK-2021-XC,2,2023-04-01,2023,April,Sydney Central,NSW\n"
	    "RB-CANNONDALE-2022-CAAD,3,2023-04-20,2023,April,\"Melbourne, Docklands\",VIC\n"
	    "\n```";
	const struct ing_chat_request req = {
		.user_prompt = payload, .conversation_flow = "bike_insights",
		.thread_id = "t-1", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	const struct seen *s, *s2;
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	cJSON *doc, *c;
	char *want;
	int i;

	world_reset();
	is_int(run_flow(a, &req, &ctx, &reply), 0, "the flow succeeds");
	is_int(world.n_calls, 5, "five model calls: four agents, one tool round");
	ok(world.n_calls >= 2 &&
	    ((strcmp(world.calls[0].agent, "customer_sentiment_agent") == 0 &&
	      strcmp(world.calls[1].agent, "fiscal_analysis_agent") == 0) ||
	     (strcmp(world.calls[1].agent, "customer_sentiment_agent") == 0 &&
	      strcmp(world.calls[0].agent, "fiscal_analysis_agent") == 0)),
	    "first the sentiment and the fiscal agents");
	is_int(world.max_in_flight, 2, "and those two run at once");
	ok(world.n_calls == 5 && strcmp(world.calls[2].agent, "summary") == 0 &&
	    strcmp(world.calls[3].agent, "bike_lookup_agent") == 0 &&
	    strcmp(world.calls[4].agent, "bike_lookup_agent") == 0,
	    "then the summary, then the bike lookup (twice: the tool's round)");
	for (i = 0; i < world.n_calls; i++)
		if (strcmp(world.calls[i].model, "gpt-4.1-nano") != 0)
			break;
	is_int(i, world.n_calls, "every agent asks for the model gpt-4.1-nano");

	s = seen_of("customer_sentiment_agent", 0);
	want = NULL;
	ok(s != NULL && s->system != NULL && strcmp(s->system,
	    "prompt of quickstart-1/customer_sentiment_agent_prompt.jinja") == 0,
	    "the sentiment agent's system prompt: its template of the payload's revision");
	if (asprintf(&want, "```json\n%s\n```", payload) < 0)
		want = NULL;
	ok(s != NULL && want != NULL && s->user != NULL && strcmp(s->user, want) == 0,
	    "the sentiment agent gets the payload as a JSON block");
	free(want);
	ok(s != NULL && s->n_tools == 0, "and no tools");
	s = seen_of("fiscal_analysis_agent", 0);
	ok(s != NULL && s->system != NULL && strcmp(s->system,
	    "prompt of quickstart-1/fiscal_analysis_agent_prompt.jinja") == 0,
	    "the fiscal agent's system prompt");
	is_str(s != NULL ? s->user : NULL, csv,
	    "the fiscal agent gets the sales as CSV (store and location added, quoted as csv does)");
	s = seen_of("summary", 0);
	is_str(s != NULL ? s->user : NULL,
	    "## customer_sentiment_agent\nanswer of customer_sentiment_agent\n\n"
	    "## fiscal_analysis_agent\nanswer of fiscal_analysis_agent\n\n"
	    "# Chat History \n\n``` json\n\n \" [\"\"]",
	    "the summary gets the relay of both, then the (empty) history of outputs");
	ok(s != NULL && s->system != NULL && strstr(s->system, "summary_prompt.jinja") != NULL,
	    "the summary's system prompt");
	s = seen_of("bike_lookup_agent", 0);
	s2 = seen_of("bike_lookup_agent", 1);
	is_str(s != NULL ? s->user : NULL, "answer of summary",
	    "the bike lookup gets the summary");
	ok(s != NULL && s->n_tools == 1, "with the price tool");
	is_str(s2 != NULL ? s2->tool_result : NULL, "1299.99",
	    "the tool answers the stock price of the bike the ticker names");

	/* the reply */
	is_str(reply.message_id, "april-2023", "message_id: the payload's identifier");
	is_str(reply.memory_summary, "", "memory_summary: empty");
	is_str(reply.output, "answer of summary", "the output row: the summary's answer");
	is_str(reply.agent_name, "bike_insights", "the agent name");
	doc = cJSON_Parse(reply.agent_response);
	ok(cJSON_IsArray(doc) && cJSON_GetArraySize(doc) == 4,
	    "agent_response: a JSON list of four agent chats");
	i = 0;
	cJSON_ArrayForEach(c, doc) {
		static const char *const order[] = { "customer_sentiment_agent",
		    "fiscal_analysis_agent", "summary", "bike_lookup_agent" };
		static const char *const keys[] = { "chat_name", "target_agent_name",
		    "source_agent_name", "user_message", "system_prompt", "identifier",
		    "chat_response", "completion_tokens", "prompt_tokens", "start_time",
		    "end_time" };
		const cJSON *cm = cJSON_GetObjectItem(cJSON_GetObjectItem(c,
		    "chat_response"), "chat_message");
		size_t k;

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (cJSON_GetObjectItem(c, keys[k]) == NULL)
				break;
		ok(k == sizeof(keys) / sizeof(keys[0]), "chat %d has the fields of "
		    "the reference's AgentChat", i);
		ok(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "chat_name")),
		    order[i]) == 0 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c,
		    "target_agent_name")), order[i]) == 0 &&
		    strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "identifier")),
		    "april-2023") == 0, "chat %d: %s, its identifier", i, order[i]);
		ok(cm != NULL && cJSON_GetStringValue(cJSON_GetObjectItem(cm, "content")) != NULL &&
		    strncmp(cJSON_GetStringValue(cJSON_GetObjectItem(cm, "content")),
		    "answer of ", 10) == 0, "chat %d: chat_response.chat_message.content "
		    "is its answer", i);
		ok(cJSON_GetObjectItem(c, "end_time")->valuedouble >=
		    cJSON_GetObjectItem(c, "start_time")->valuedouble &&
		    cJSON_GetObjectItem(c, "start_time")->valuedouble > 1.6e9,
		    "chat %d: start and end times, seconds since the epoch", i);
		if (i == 3)
			ok(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(c, "user_message")),
			    "answer of summary\n\n---\n\n# Tool Messages\n\n1299.99\n\n") != NULL,
			    "the bike lookup's user_message lists the tool's result, as the reference");
		i++;
	}
	cJSON_Delete(doc);
	is_int(world.n_rows, 5, "one usage row per call");
	ok(world.n_rows == 5 && strcmp(world.row_agents[4], "bike_lookup_agent") == 0 &&
	    strcmp(world.row_agents[2], "summary") == 0, "each accounted to its agent");
	for (i = 0; i < world.n_rows && i < 5; i++) {
		char want_prompt[160];

		snprintf(want_prompt, sizeof(want_prompt), "quickstart-1/%s_prompt.jinja "
		    "h-%s_prompt.jinja", world.row_agents[i], world.row_agents[i]);
		if (strcmp(world.row_prompts[i], want_prompt) != 0)
			break;
	}
	is_int(i, 5, "each row carries its agent's template: revision, file and hash");
	is_int(ctx.llm_calls, 5, "the context counted five calls");
	is_int(ctx.prompt_tokens, 500, "and their prompt tokens");
}

/* A second turn: the thread's earlier outputs reach the summary; a bike the
 * stock does not have; the tool not called (four calls). */
static void
test_history_and_tool(struct arena *a)
{
	const struct ing_message hist[] = {
		{ "user", "{...}", NULL },
		{ "assistant", "[...]", "bike_insights" },
		{ "output", "First report: \"Trek\" sold\nwell \xc3\xa9", NULL },
		{ "output", "Second report", NULL },
	};
	const struct ing_chat_request req = {
		.user_prompt = payload, .conversation_flow = "bike_insights",
		.thread_id = "t-2", .user_id = "alice", .thread_memory = "...",
		.history = hist, .n_history = 4,
	};
	const struct seen *s;
	struct ing_ctx ctx;
	struct ing_chat_reply reply;

	world_reset();
	world.ticker = "Giant Defy 2020";
	is_int(run_flow(a, &req, &ctx, &reply), 0, "a second turn succeeds");
	s = seen_of("summary", 0);
	ok(s != NULL && s->user != NULL && strstr(s->user, "# Chat History \n\n``` json\n\n \" "
	    "[\"\", \"First report: \\\"Trek\\\" sold\\nwell \\u00e9\", \"Second report\"]") != NULL,
	    "the summary sees the thread's output messages, as json.dumps writes them");
	s = seen_of("bike_lookup_agent", 1);
	ok(s != NULL && s->tool_result != NULL &&
	    strstr(s->tool_result, "unknown bike \"Giant Defy 2020\"") != NULL,
	    "a bike not in the stock: the tool says it does not know it");

	world_reset();
	world.ticker = "Cannondale CAAD Optimo";
	is_int(run_flow(a, &req, &ctx, &reply), 0, "a model name as ticker");
	s = seen_of("bike_lookup_agent", 1);
	is_str(s != NULL ? s->tool_result : NULL, "1899.00", "its stock price");

	world_reset();
	world.ticker = NULL;
	is_int(run_flow(a, &req, &ctx, &reply), 0, "the model does not call the tool");
	is_int(world.n_calls, 4, "four model calls");
}

static void
test_templates(struct arena *a)
{
	const struct ing_chat_request req = {
		.user_prompt = payload, .conversation_flow = "bike_insights",
		.thread_id = "t-3", .user_id = "alice",
		.thread_memory = "no existing context.",
	};
	const struct seen *s;
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	int status = 0;

	world_reset();
	world.missing_file = "summary_prompt.jinja";
	is_int(run_flow(a, &req, &ctx, &reply), 0,
	    "a missing template: the flow still runs (the reference's local storage)");
	s = seen_of("summary", 0);
	ok(s != NULL && s->system == NULL, "the agent gets no system prompt");
	ok(world.n_rows == 4 + 1 && strcmp(world.row_agents[2], "summary") == 0 &&
	    world.row_prompts[2][0] == '\0' && world.row_prompts[3][0] != '\0',
	    "and its usage row names no template (the others do)");
	ok(strstr(reply.agent_response, "\"chat_name\":\"summary\",\"target_agent_name\":"
	    "\"summary\",\"source_agent_name\":\"default\",\"user_message\":") != NULL &&
	    strstr(reply.agent_response, "\"system_prompt\":\"\"") != NULL,
	    "and its chat says so: an empty system_prompt");

	world_reset();
	world.template_status = 400;
	is_int(run_flow(a, &req, &ctx, &reply), -1, "a template error fails the turn");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 400, "with its status");
	is_int(world.n_calls, 0, "before any model call");

	world_reset();
	world.template_status = 503;
	is_int(run_flow(a, &req, &ctx, &reply), -1, "templates not available: fails");
	(void)ing_last_error(&ctx, &status);
	is_int(status, 503, "with 503");
}

/* Many sales: each is one CSV row (the table is built in linear time). */
static void
test_many_sales(struct arena *a)
{
	enum { N_SALES = 20000 };
	static const char sale[] = "{\"product_code\": \"P-%05d\", \"quantity_sold\": 1, "
	    "\"sale_date\": \"2023-04-01\", \"year\": 2023, \"month\": \"April\", "
	    "\"customer_review\": {\"rating\": 4, \"comment\": \"ok\"}}";
	size_t cap = (size_t)N_SALES * (sizeof(sale) + 8) + 512, len;
	char *big = malloc(cap);
	const struct seen *s;
	struct ing_ctx ctx;
	struct ing_chat_reply reply;
	struct ing_chat_request req = {
		.conversation_flow = "bike_insights", .thread_id = "t-4",
		.user_id = "alice", .thread_memory = "no existing context.",
	};
	const char *c;
	int i, rows = 0;

	len = (size_t)snprintf(big, cap, "{\"revision_id\": \"r\", \"identifier\": \"i\", "
	    "\"stores\": [{\"name\": \"S\", \"location\": \"L\", \"bike_stock\": [], "
	    "\"bike_sales\": [");
	for (i = 0; i < N_SALES; i++) {
		if (i > 0)
			len += (size_t)snprintf(big + len, cap - len, ", ");
		len += (size_t)snprintf(big + len, cap - len, sale, i);
	}
	snprintf(big + len, cap - len, "]}]}");
	req.user_prompt = big;
	world_reset();
	world.ticker = NULL;
	is_int(run_flow(a, &req, &ctx, &reply), 0, "%d sales: the flow succeeds", N_SALES);
	s = seen_of("fiscal_analysis_agent", 0);
	for (c = s != NULL ? s->user : ""; (c = strchr(c, '\n')) != NULL; c++)
		rows++;
	/* "## Sales", "``` csv", the header, the rows, an empty line */
	is_int(rows, N_SALES + 4, "one CSV row per sale");
	ok(s != NULL && strstr(s->user, "\nP-19999,1,2023-04-01,2023,April,S,L\n") != NULL,
	    "the last one too");
	free(big);
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
	world.lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	test_validation(a);
	test_run(a);
	test_history_and_tool(a);
	test_templates(a);
	test_many_sales(a);
	world_reset();
	arena_destroy(a);
	return tap_done();
}
