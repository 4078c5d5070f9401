/*
 * cli_flow.c -- `ingen flow test NAME --prompt TEXT [--replies FILE]
 * [--json]`: one turn of one flow, run in this process with no server and
 * no database, against scripted model replies (a JSON list, consumed in
 * call order) or the configured model (lib/llm.c, as a worker calls it).
 * It gives the flow's context (flows/ctx.c) services of its own that
 * record every model call (agent, model, the messages sent, the answer,
 * the tokens) and every log line, then prints them with the reply.  This
 * is how a flow author tests a flow; it never opens a socket of its own
 * beyond the model's and never prints a secret.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/ctx.h"
#include "flows/llmcall.h"
#include "flows/prompt.h"
#include "flows/registry.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/llm.h"
#include "lib/xmalloc.h"
#include "cli/cli.h"

#define CLI_FLOW_EXIT_OK      0
#define CLI_FLOW_EXIT_FAILED  1     /* the flow failed, or the script did */
#define CLI_FLOW_EXIT_USAGE   2
#define CLI_FLOW_REPLIES_MAX  (16 * 1024 * 1024)   /* bytes of a replies file */
#define CLI_FLOW_THREAD_ID    "00000000-0000-4000-8000-000000000000"
#define CLI_FLOW_REQUEST_ID   "flow-test"
#define CLI_FLOW_USER_ID      "unspecified_user"
#define CLI_FLOW_NO_CONTEXT   "no existing context."
#define CLI_FLOW_MSG_NO_MODEL "no language model is configured (set " \
	"INGENIOUS_MODELS__0__MODEL, ..._BASE_URL, ..._API_KEY, or give --replies FILE)"

static const char cli_flow_usage[] =
"Usage: ingen flow test NAME --prompt TEXT [--replies FILE] [--json]\n"
"\n"
"Run one chat turn of flow NAME in this process, with no server and no\n"
"database, and print the reply, every model call (agent, model, the messages\n"
"sent, the answer, the tokens) and every log line of the flow.\n"
"\n"
"With --replies FILE the model is a script: FILE is a JSON list, one element\n"
"per model call, in call order:\n"
"  \"text\"                                 the answer\n"
"  {\"content\": \"text\", \"prompt_tokens\": 12, \"completion_tokens\": 5}\n"
"  {\"tool_calls\": [{\"name\": \"tool\", \"arguments\": {...}}]}\n"
"  {\"error\": {\"status\": 503, \"message\": \"text\"}}   the call fails so\n"
"A call past the end of the list is an error.  Without --replies the flow\n"
"calls the configured model (models.*, as the server would).\n"
"\n"
"Options:\n"
"  -p, --prompt TEXT    the user's message (required)\n"
"  -r, --replies FILE   the scripted model replies\n"
"      --json           print one JSON document instead of text\n"
"  -c, --config FILE    configuration file (flows: server.flow_path; the model)\n"
"  -h, --help           this help\n"
"\n"
"The turn is a new thread (thread_id " CLI_FLOW_THREAD_ID ",\n"
"user_id " CLI_FLOW_USER_ID ").\n"
"Exit codes: 0 the flow answered, 1 it failed (its status and message are\n"
"printed) or the script ran out, 2 usage, configuration, a bad replies file or\n"
"an unknown flow.\n";

/* One element of the replies file. */
struct cli_flow_reply {
	const char *content;
	const cJSON *tool_calls;        /* the element's array, or NULL */
	long prompt_tokens, completion_tokens;
	int error_status;               /* 0: an answer */
	const char *error_message;
	int retry_after_s;
};

/* One model call, as the flow made it. */
struct cli_flow_call {
	const char *agent;
	const char *model;              /* asked for, then the one that answered */
	struct ctx_message *messages;   /* copies */
	size_t n_messages;
	size_t n_tools;                 /* tools offered */
	const char *answer;             /* NULL when it failed */
	struct ctx_tool_call *tool_calls;       /* the model asked for these */
	size_t n_tool_calls;
	const struct cli_flow_reply *scripted;   /* NULL: the real model */
	int status;                     /* 0, or its failure's */
	const char *error;
	long prompt_tokens, completion_tokens, total_tokens;
	int attempts;
};

struct cli_flow_log {
	const char *level;              /* "debug" ... "error", or "status" */
	const char *message;
};

/* One tool call the context ran, from its tool_call / tool_result events. */
struct cli_flow_tool {
	const char *agent, *name, *arguments;
	const char *result;             /* NULL: the tool did not return */
};

/* Everything a run records; `lock` guards it (and `a`) for flows that
 * call from several threads. */
struct cli_flow_run {
	pthread_mutex_t lock;
	struct arena *a;
	const struct config *cfg;
	struct llm_client *llm;         /* NULL: scripted */
	struct cli_flow_reply *replies;
	size_t n_replies, next;
	bool ran_out;                   /* a call found no reply left */
	char ran_out_msg[256];
	struct cli_flow_call *calls;
	size_t n_calls, cap_calls;
	struct cli_flow_log *logs;
	size_t n_logs, cap_logs;
	struct cli_flow_tool *tools;
	size_t n_tools, cap_tools;
};

/* ---- the replies file ---------------------------------------------------- */

static int
cli_flow_tokens(const cJSON *obj, const char *key, long *out, const char *file,
    size_t i, struct err *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9)
		return err_set(e, 2, "%s: reply %zu: \"%s\" must be a number of "
		    "tokens (0 or more)", file, i + 1, key);
	*out = (long)v->valuedouble;
	return 0;
}

/* Check one element and fill r. */
static int
cli_flow_reply_parse(const cJSON *el, struct cli_flow_reply *r,
    const char *file, size_t i, struct err *e)
{
	const cJSON *v, *err, *tc;

	memset(r, 0, sizeof(*r));
	if (cJSON_IsString(el)) {
		r->content = el->valuestring;
		return 0;
	}
	if (!cJSON_IsObject(el))
		goto bad;
	if ((err = cJSON_GetObjectItemCaseSensitive(el, "error")) != NULL) {
		v = cJSON_GetObjectItemCaseSensitive(err, "status");
		if (!cJSON_IsNumber(v) || v->valuedouble < 400 || v->valuedouble > 599)
			return err_set(e, 2, "%s: reply %zu: \"error\" needs a "
			    "\"status\" from 400 to 599", file, i + 1);
		r->error_status = (int)v->valuedouble;
		v = cJSON_GetObjectItemCaseSensitive(err, "message");
		if (v != NULL && !cJSON_IsString(v))
			return err_set(e, 2, "%s: reply %zu: \"error\": \"message\" "
			    "must be a string", file, i + 1);
		r->error_message = v != NULL ? v->valuestring : "scripted failure";
		v = cJSON_GetObjectItemCaseSensitive(err, "retry_after");
		if (cJSON_IsNumber(v) && v->valuedouble >= 0)
			r->retry_after_s = (int)v->valuedouble;
		return 0;
	}
	if ((tc = cJSON_GetObjectItemCaseSensitive(el, "tool_calls")) != NULL) {
		const cJSON *c;

		if (!cJSON_IsArray(tc) || cJSON_GetArraySize(tc) == 0)
			return err_set(e, 2, "%s: reply %zu: \"tool_calls\" must be a "
			    "non-empty list", file, i + 1);
		cJSON_ArrayForEach(c, tc) {
			v = cJSON_GetObjectItemCaseSensitive(c, "name");
			if (!cJSON_IsObject(c) || !cJSON_IsString(v) ||
			    v->valuestring[0] == '\0')
				return err_set(e, 2, "%s: reply %zu: each tool call "
				    "needs a \"name\"", file, i + 1);
		}
		r->tool_calls = tc;
	}
	v = cJSON_GetObjectItemCaseSensitive(el, "content");
	if (v != NULL && !cJSON_IsString(v) && !cJSON_IsNull(v))
		return err_set(e, 2, "%s: reply %zu: \"content\" must be a string",
		    file, i + 1);
	if (cJSON_IsString(v))
		r->content = v->valuestring;
	if (r->content == NULL && r->tool_calls == NULL)
		goto bad;
	if (cli_flow_tokens(el, "prompt_tokens", &r->prompt_tokens, file, i, e) != 0 ||
	    cli_flow_tokens(el, "completion_tokens", &r->completion_tokens, file, i,
	    e) != 0)
		return -1;
	return 0;
bad:
	return err_set(e, 2, "%s: reply %zu: expected a string, or an object with "
	    "\"content\", \"tool_calls\" or \"error\"", file, i + 1);
}

static int
cli_flow_replies_load(struct cli_flow_run *run, const char *file,
    struct err *e)
{
	struct buf b = BUF_INIT;
	char chunk[8192];
	const cJSON *el;
	cJSON *root;
	FILE *f;
	size_t n, i = 0;
	int rc = -1;

	if ((f = fopen(file, "rb")) == NULL)
		return err_set(e, 2, "could not open replies file \"%s\": %s", file,
		    strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(&b, chunk, n);
		if (b.len > CLI_FLOW_REPLIES_MAX) {
			err_set(e, 2, "replies file \"%s\" is larger than %d bytes",
			    file, CLI_FLOW_REPLIES_MAX);
			goto out;
		}
	}
	if (ferror(f)) {
		err_set(e, 2, "could not read replies file \"%s\": %s", file,
		    strerror(errno));
		goto out;
	}
	if (json_read(run->a, b.data ? b.data : "", b.len, 0, &root, e) != JSON_OK) {
		err_prefix(e, "replies file \"%s\"", file);
		e->status = 2;
		goto out;
	}
	if (!cJSON_IsArray(root)) {
		err_set(e, 2, "replies file \"%s\": expected a JSON list of replies",
		    file);
		goto out;
	}
	run->n_replies = (size_t)cJSON_GetArraySize(root);
	run->replies = arena_zalloc(run->a, (run->n_replies ? run->n_replies : 1) *
	    sizeof(*run->replies));
	cJSON_ArrayForEach(el, root) {
		if (cli_flow_reply_parse(el, &run->replies[i], file, i, e) != 0)
			goto out;
		i++;
	}
	rc = 0;
out:
	fclose(f);
	buf_free(&b);
	return rc;
}

/* ---- the services -------------------------------------------------------- */

/* Copies of n tool calls in a (NULL for none). */
static struct ctx_tool_call *
cli_flow_tool_calls_copy(struct arena *a, const struct ctx_tool_call *tc,
    size_t n)
{
	struct ctx_tool_call *out;
	size_t i;

	if (n == 0)
		return NULL;
	out = arena_zalloc(a, n * sizeof(*out));
	for (i = 0; i < n; i++) {
		out[i].id = tc[i].id ? arena_strdup(a, tc[i].id) : NULL;
		out[i].name = tc[i].name ? arena_strdup(a, tc[i].name) : NULL;
		out[i].arguments = tc[i].arguments ?
		    arena_strdup(a, tc[i].arguments) : NULL;
	}
	return out;
}

/* A new call record (under run->lock). */
static struct cli_flow_call *
cli_flow_call_new(struct cli_flow_run *run, const struct ctx_llm_call *call)
{
	struct cli_flow_call *c;
	size_t i;

	if (run->n_calls == run->cap_calls) {
		run->cap_calls = run->cap_calls ? run->cap_calls * 2 : 8;
		run->calls = xrealloc(run->calls, run->cap_calls * sizeof(*run->calls));
	}
	c = &run->calls[run->n_calls++];
	memset(c, 0, sizeof(*c));
	c->agent = arena_strdup(run->a, call->agent ? call->agent : "");
	c->model = arena_strdup(run->a, call->model ? call->model : "chat");
	c->n_tools = call->n_tools;
	c->n_messages = call->n_messages;
	c->messages = arena_zalloc(run->a, (call->n_messages ? call->n_messages : 1) *
	    sizeof(*c->messages));
	for (i = 0; i < call->n_messages; i++) {
		const struct ctx_message *m = &call->messages[i];
		struct ctx_message *o = &c->messages[i];

		o->role = arena_strdup(run->a, m->role ? m->role : "");
		o->content = m->content ? arena_strdup(run->a, m->content) : NULL;
		o->name = m->name ? arena_strdup(run->a, m->name) : NULL;
		o->tool_call_id = m->tool_call_id ?
		    arena_strdup(run->a, m->tool_call_id) : NULL;
		o->tool_calls = cli_flow_tool_calls_copy(run->a, m->tool_calls,
		    m->n_tool_calls);
		o->n_tool_calls = m->n_tool_calls;
	}
	return c;
}

/* One attempt's cost: on the call's record, and on to the context. */
static void
cli_flow_account(struct cli_flow_run *run, size_t idx,
    const struct ctx_llm_call *call, const struct ctx_usage *u)
{
	struct cli_flow_call *c;

	pthread_mutex_lock(&run->lock);
	c = &run->calls[idx];
	c->attempts++;
	if (u->billed) {
		c->prompt_tokens += u->prompt_tokens;
		c->completion_tokens += u->completion_tokens;
		c->total_tokens += u->total_tokens;
	}
	pthread_mutex_unlock(&run->lock);
	call->on_usage(call->arg, u);
}

static int
cli_flow_scripted(struct cli_flow_run *run, size_t idx,
    const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	const struct cli_flow_reply *r;
	struct ctx_usage u;

	pthread_mutex_lock(&run->lock);
	if (run->next == run->n_replies) {
		run->ran_out = true;
		snprintf(run->ran_out_msg, sizeof(run->ran_out_msg), "the replies "
		    "file ran out at model call %zu (agent %s): it has %zu repl%s",
		    idx + 1, run->calls[idx].agent, run->n_replies,
		    run->n_replies == 1 ? "y" : "ies");
		err_set(e, 500, "%s", run->ran_out_msg);
		run->calls[idx].status = 500;
		run->calls[idx].error = arena_strdup(run->a, e->msg);
		pthread_mutex_unlock(&run->lock);
		return -1;
	}
	r = &run->replies[run->next++];
	run->calls[idx].scripted = r;
	pthread_mutex_unlock(&run->lock);

	/* no model name: the call keeps the one the flow asked for */
	memset(&u, 0, sizeof(u));
	u.model = "";
	u.deployment = "";
	if (r->error_status != 0) {
		u.http_status = r->error_status;
		cli_flow_account(run, idx, call, &u);
		out->retry_after_s = r->retry_after_s;
		err_set(e, r->error_status, "%s", r->error_message);
		goto fail;
	}
	if (r->tool_calls != NULL) {
		const cJSON *tc, *args;
		size_t k = 0, n = (size_t)cJSON_GetArraySize(r->tool_calls);
		struct ctx_tool_call *calls = arena_zalloc(a, n * sizeof(*calls));

		cJSON_ArrayForEach(tc, r->tool_calls) {
			args = cJSON_GetObjectItemCaseSensitive(tc, "arguments");
			calls[k].id = arena_sprintf(a, "call_%zu_%zu", idx + 1, k + 1);
			calls[k].name = arena_strdup(a, cJSON_GetObjectItemCaseSensitive(tc,
			    "name")->valuestring);
			/* the model writes arguments as JSON text */
			calls[k].arguments = args == NULL ? "{}" : cJSON_IsString(args) ?
			    arena_strdup(a, args->valuestring) : json_print(a, args);
			k++;
		}
		out->tool_calls = calls;
		out->n_tool_calls = n;
	}
	u.prompt_tokens = r->prompt_tokens;
	u.completion_tokens = r->completion_tokens;
	u.total_tokens = r->prompt_tokens + r->completion_tokens;
	u.http_status = 200;
	u.billed = true;
	/* a streaming flow gets its answer as one piece */
	if (call->stream && call->on_delta != NULL && r->content != NULL &&
	    r->content[0] != '\0')
		call->on_delta(call->arg, r->content, strlen(r->content));
	cli_flow_account(run, idx, call, &u);
	out->content = r->content != NULL ? arena_strdup(a, r->content) : NULL;
	pthread_mutex_lock(&run->lock);
	run->calls[idx].answer = r->content != NULL ?
	    arena_strdup(run->a, r->content) : NULL;
	run->calls[idx].tool_calls = cli_flow_tool_calls_copy(run->a,
	    out->tool_calls, out->n_tool_calls);
	run->calls[idx].n_tool_calls = out->n_tool_calls;
	pthread_mutex_unlock(&run->lock);
	return 0;
fail:
	pthread_mutex_lock(&run->lock);
	run->calls[idx].status = e->status;
	run->calls[idx].error = arena_strdup(run->a, e->msg);
	pthread_mutex_unlock(&run->lock);
	return -1;
}

/* lib/llm's report of one attempt. */
struct cli_flow_real {
	struct cli_flow_run *run;
	size_t idx;
	const struct ctx_llm_call *call;
};

static void
cli_flow_real_usage(void *arg, const struct llm_usage *u)
{
	struct cli_flow_real *r = arg;
	struct ctx_usage cu;

	llmcall_usage(r->call, u, &cu);
	cli_flow_account(r->run, r->idx, r->call, &cu);
}

static bool
cli_flow_real_cancelled(void *arg)
{
	const struct ctx_llm_call *call = ((struct cli_flow_real *)arg)->call;

	return call->cancelled != NULL && call->cancelled(call->arg);
}

static int
cli_flow_real(struct cli_flow_run *run, size_t idx,
    const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct cli_flow_real ur = { run, idx, call };
	struct llm_request req;
	struct llm_reply rep;
	int model;

	if ((model = llmcall_model(run->cfg, call->model, CLI_FLOW_MSG_NO_MODEL,
	    e)) < 0)
		goto fail;
	llmcall_request(call, model, a, &req);
	req.on_usage = cli_flow_real_usage;
	req.usage_arg = &ur;
	req.cancelled = cli_flow_real_cancelled;
	req.cancel_arg = &ur;
	memset(&rep, 0, sizeof(rep));
	if (llm_chat(run->llm, &req, a, &rep, e) != 0) {
		out->retry_after_s = rep.retry_after_s;
		goto fail;
	}
	llmcall_result(run->cfg, model, &rep, out);
	pthread_mutex_lock(&run->lock);
	run->calls[idx].answer = rep.content ? arena_strdup(run->a, rep.content) :
	    NULL;
	run->calls[idx].model = arena_strdup(run->a, out->model);
	run->calls[idx].tool_calls = cli_flow_tool_calls_copy(run->a,
	    out->tool_calls, rep.n_tool_calls);
	run->calls[idx].n_tool_calls = rep.n_tool_calls;
	pthread_mutex_unlock(&run->lock);
	return 0;
fail:
	pthread_mutex_lock(&run->lock);
	run->calls[idx].status = e->status;
	run->calls[idx].error = arena_strdup(run->a, e->msg);
	pthread_mutex_unlock(&run->lock);
	return -1;
}

static int
cli_flow_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct cli_flow_run *run = arg;
	size_t idx;

	pthread_mutex_lock(&run->lock);
	cli_flow_call_new(run, call);
	idx = run->n_calls - 1;
	pthread_mutex_unlock(&run->lock);
	if (run->llm == NULL)
		return cli_flow_scripted(run, idx, call, a, out, e);
	return cli_flow_real(run, idx, call, a, out, e);
}

/* Prompt templates: the revisions of this configuration, as the server
 * renders them (flows/prompt.h). */
static int
cli_flow_render(void *arg, const char *revision, const char *file,
    const struct cJSON *vars, struct arena *a, const char **text, char hash[65],
    struct err *e)
{
	struct cli_flow_run *run = arg;

	return prompt_render(run->cfg, revision, file, vars, a, text, hash, e);
}

static const struct ctx_template_service cli_flow_templates = {
	.render = cli_flow_render,
};

static int64_t
cli_flow_clock_ms(void *arg)
{
	(void)arg;
	return clock_now_ms();
}

static const char *
cli_flow_level(int level)
{
	switch (level) {
	case ING_LOG_DEBUG:
		return "debug";
	case ING_LOG_INFO:
		return "info";
	case ING_LOG_WARNING:
		return "warning";
	default:
		return "error";
	}
}

/* Keep a log line (under run->lock). */
static void
cli_flow_log_add(struct cli_flow_run *run, const char *level, const char *msg)
{
	if (run->n_logs == run->cap_logs) {
		run->cap_logs = run->cap_logs ? run->cap_logs * 2 : 8;
		run->logs = xrealloc(run->logs, run->cap_logs * sizeof(*run->logs));
	}
	run->logs[run->n_logs].level = level;
	run->logs[run->n_logs].message = arena_strdup(run->a, msg);
	run->n_logs++;
}

static void
cli_flow_log(void *arg, int level, const char *action, const char *msg)
{
	struct cli_flow_run *run = arg;

	(void)action;
	pthread_mutex_lock(&run->lock);
	cli_flow_log_add(run, cli_flow_level(level), msg);
	pthread_mutex_unlock(&run->lock);
}

/* A string member of an event's data, or "". */
static const char *
cli_flow_event_text(struct arena *a, const cJSON *data, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, key);

	return cJSON_IsString(v) ? arena_strdup(a, v->valuestring) : "";
}

/* The context's events: the tool calls it ran and the flow's status lines
 * (agent_start / agent_end repeat what the model calls say). */
static int
cli_flow_event(void *arg, const char *type, const char *json)
{
	struct cli_flow_run *run = arg;
	struct cli_flow_tool *tool;
	const char *agent, *name;
	cJSON *data;
	struct err e;
	size_t i;

	pthread_mutex_lock(&run->lock);
	if (json_read(run->a, json, strlen(json), 0, &data, &e) != JSON_OK)
		goto out;
	if (strcmp(type, "tool_call") == 0) {
		if (run->n_tools == run->cap_tools) {
			run->cap_tools = run->cap_tools ? run->cap_tools * 2 : 8;
			run->tools = xrealloc(run->tools, run->cap_tools *
			    sizeof(*run->tools));
		}
		tool = &run->tools[run->n_tools++];
		tool->agent = cli_flow_event_text(run->a, data, "agent");
		tool->name = cli_flow_event_text(run->a, data, "tool");
		tool->arguments = cli_flow_event_text(run->a, data, "arguments");
		tool->result = NULL;
	} else if (strcmp(type, "tool_result") == 0) {
		agent = cli_flow_event_text(run->a, data, "agent");
		name = cli_flow_event_text(run->a, data, "tool");
		/* the agent's oldest call of that tool still waiting */
		for (i = 0; i < run->n_tools; i++) {
			tool = &run->tools[i];
			if (tool->result == NULL && strcmp(tool->agent, agent) == 0 &&
			    strcmp(tool->name, name) == 0) {
				tool->result = cli_flow_event_text(run->a, data, "result");
				break;
			}
		}
	} else if (strcmp(type, "status") == 0) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, "message");

		if (!cJSON_IsString(v))
			v = cJSON_GetObjectItemCaseSensitive(data, "status");
		cli_flow_log_add(run, "status", cJSON_IsString(v) ? v->valuestring :
		    json);
	}
out:
	pthread_mutex_unlock(&run->lock);
	return 0;
}

/* ---- the report ------------------------------------------------------------ */

/* Text indented by `pad` after its first line (blank lines stay empty). */
static void
cli_flow_text(const char *label, const char *s, const char *pad)
{
	const char *p;

	printf("%s", label);
	if (s == NULL) {
		printf("(none)\n");
		return;
	}
	for (p = s; *p != '\0'; p++) {
		putchar(*p);
		if (*p == '\n' && p[1] != '\0' && p[1] != '\n')
			fputs(pad, stdout);
	}
	putchar('\n');
}

static void
cli_flow_print_tool_calls(const char *label, const struct ctx_tool_call *tc,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%s%s %s %s\n", label, tc[i].id ? tc[i].id : "-",
		    tc[i].name ? tc[i].name : "", tc[i].arguments ?
		    tc[i].arguments : "{}");
}

static void
cli_flow_print(const struct cli_flow_run *run, const char *flow,
    const struct ing_ctx *ctx, const struct ing_chat_reply *reply, bool ok)
{
	size_t i, k;

	printf("flow %s: %s\n", flow, ok ? "answered" : "failed");
	for (i = 0; i < run->n_calls; i++) {
		const struct cli_flow_call *c = &run->calls[i];

		printf("\nmodel call %zu: agent %s, model %s%s", i + 1, c->agent,
		    c->model, c->scripted != NULL ? " (scripted)" : "");
		if (c->n_tools > 0)
			printf(", %zu tool%s offered", c->n_tools,
			    c->n_tools == 1 ? "" : "s");
		putchar('\n');
		for (k = 0; k < c->n_messages; k++) {
			const struct ctx_message *m = &c->messages[k];
			char label[160];

			snprintf(label, sizeof(label), "  %s%s%.64s%s%.64s: ", m->role,
			    m->name ? " " : "", m->name ? m->name : "",
			    m->tool_call_id ? " " : "",
			    m->tool_call_id ? m->tool_call_id : "");
			if (m->content != NULL || m->n_tool_calls == 0)
				cli_flow_text(label, m->content, "    ");
			cli_flow_print_tool_calls("  assistant asks: ", m->tool_calls,
			    m->n_tool_calls);
		}
		if (c->status != 0) {
			printf("  failed: %d %s\n", c->status, c->error);
		} else {
			if (c->answer != NULL || c->n_tool_calls == 0)
				cli_flow_text("  answer: ", c->answer, "    ");
			cli_flow_print_tool_calls("  tool call: ", c->tool_calls,
			    c->n_tool_calls);
		}
		printf("  tokens: %ld prompt + %ld completion = %ld\n",
		    c->prompt_tokens, c->completion_tokens, c->total_tokens);
	}
	for (i = 0; i < run->n_tools; i++) {
		const struct cli_flow_tool *tl = &run->tools[i];

		printf("\ntool call %zu: agent %s, tool %s\n", i + 1, tl->agent,
		    tl->name);
		cli_flow_text("  arguments: ", tl->arguments, "    ");
		cli_flow_text("  result: ", tl->result, "    ");
	}
	for (i = 0; i < run->n_logs; i++)
		printf("\nlog %s: %s\n", run->logs[i].level, run->logs[i].message);
	putchar('\n');
	if (ok) {
		printf("reply\n");
		cli_flow_text("  agent_response: ", reply->agent_response, "    ");
		cli_flow_text("  agent_name: ", reply->agent_name ? reply->agent_name :
		    flow, "    ");
		cli_flow_text("  memory_summary: ", reply->memory_summary, "    ");
		cli_flow_text("  followup_questions: ", reply->followup_questions ?
		    reply->followup_questions : "{}", "    ");
		if (reply->topic != NULL)
			cli_flow_text("  topic: ", reply->topic, "    ");
		if (reply->event_type != NULL)
			cli_flow_text("  event_type: ", reply->event_type, "    ");
	} else {
		printf("error %d: %s\n", ctx->err_status ? ctx->err_status : 500,
		    ctx->err_msg[0] ? ctx->err_msg : "the flow produced no response");
	}
	printf("tokens: %ld prompt + %ld completion = %ld in %d model call%s\n",
	    ctx->prompt_tokens, ctx->completion_tokens, ctx->total_tokens,
	    ctx->llm_calls, ctx->llm_calls == 1 ? "" : "s");
	if (run->ran_out)
		printf("the script ran out: %s\n", run->ran_out_msg);
}

static void
cli_flow_json_str(struct buf *b, const char *key, const char *s, bool comma)
{
	buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
	if (s == NULL)
		buf_puts(b, "null");
	else
		buf_json_string(b, s);
}

static void
cli_flow_json_tool_calls(struct buf *b, const struct ctx_tool_call *tc,
    size_t n)
{
	size_t i;

	buf_puts(b, ",\"tool_calls\":[");
	for (i = 0; i < n; i++) {
		buf_puts(b, i ? ",{" : "{");
		cli_flow_json_str(b, "id", tc[i].id, false);
		cli_flow_json_str(b, "name", tc[i].name, true);
		cli_flow_json_str(b, "arguments", tc[i].arguments, true);
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
}

static void
cli_flow_json(const struct cli_flow_run *run, const char *flow,
    const char *prompt, const struct ing_ctx *ctx,
    const struct ing_chat_reply *reply, bool ok)
{
	struct buf b = BUF_INIT;
	size_t i, k;

	cli_flow_json_str(&b, "flow", flow, false);
	cli_flow_json_str(&b, "prompt", prompt, true);
	cli_flow_json_str(&b, "status", ok ? "answered" : "failed", true);
	if (ok) {
		buf_puts(&b, ",\"reply\":{");
		cli_flow_json_str(&b, "agent_response", reply->agent_response, false);
		cli_flow_json_str(&b, "agent_name", reply->agent_name ?
		    reply->agent_name : flow, true);
		cli_flow_json_str(&b, "memory_summary", reply->memory_summary, true);
		/* a JSON object as text: kept as JSON when it is one */
		if (reply->followup_questions != NULL &&
		    json_validate(reply->followup_questions,
		    strlen(reply->followup_questions), 0, &(struct err){ 0 }) == 0)
			buf_printf(&b, ",\"followup_questions\":%s",
			    reply->followup_questions);
		else if (reply->followup_questions != NULL)
			cli_flow_json_str(&b, "followup_questions",
			    reply->followup_questions, true);
		else
			buf_puts(&b, ",\"followup_questions\":{}");
		cli_flow_json_str(&b, "topic", reply->topic, true);
		cli_flow_json_str(&b, "event_type", reply->event_type, true);
		buf_puts(&b, "},\"error\":null");
	} else {
		buf_printf(&b, ",\"reply\":null,\"error\":{\"status\":%d",
		    ctx->err_status ? ctx->err_status : 500);
		cli_flow_json_str(&b, "message", ctx->err_msg[0] ? ctx->err_msg :
		    "the flow produced no response", true);
		buf_putc(&b, '}');
	}
	buf_puts(&b, ",\"model_calls\":[");
	for (i = 0; i < run->n_calls; i++) {
		const struct cli_flow_call *c = &run->calls[i];

		buf_puts(&b, i ? ",{" : "{");
		cli_flow_json_str(&b, "agent", c->agent, false);
		cli_flow_json_str(&b, "model", c->model, true);
		buf_printf(&b, ",\"scripted\":%s,\"tools_offered\":%zu,\"messages\":[",
		    c->scripted != NULL ? "true" : "false", c->n_tools);
		for (k = 0; k < c->n_messages; k++) {
			const struct ctx_message *m = &c->messages[k];

			buf_puts(&b, k ? ",{" : "{");
			cli_flow_json_str(&b, "role", m->role, false);
			cli_flow_json_str(&b, "content", m->content, true);
			cli_flow_json_str(&b, "name", m->name, true);
			if (m->n_tool_calls > 0)
				cli_flow_json_tool_calls(&b, m->tool_calls,
				    m->n_tool_calls);
			if (m->tool_call_id != NULL)
				cli_flow_json_str(&b, "tool_call_id", m->tool_call_id,
				    true);
			buf_putc(&b, '}');
		}
		buf_putc(&b, ']');
		cli_flow_json_str(&b, "answer", c->answer, true);
		cli_flow_json_tool_calls(&b, c->tool_calls, c->n_tool_calls);
		buf_printf(&b, ",\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
		    "\"total_tokens\":%ld", c->prompt_tokens, c->completion_tokens,
		    c->total_tokens);
		if (c->status != 0) {
			buf_printf(&b, ",\"error\":{\"status\":%d", c->status);
			cli_flow_json_str(&b, "message", c->error, true);
			buf_putc(&b, '}');
		} else {
			buf_puts(&b, ",\"error\":null");
		}
		buf_putc(&b, '}');
	}
	buf_puts(&b, "],\"tool_calls\":[");
	for (i = 0; i < run->n_tools; i++) {
		buf_puts(&b, i ? ",{" : "{");
		cli_flow_json_str(&b, "agent", run->tools[i].agent, false);
		cli_flow_json_str(&b, "name", run->tools[i].name, true);
		cli_flow_json_str(&b, "arguments", run->tools[i].arguments, true);
		cli_flow_json_str(&b, "result", run->tools[i].result, true);
		buf_putc(&b, '}');
	}
	buf_puts(&b, "],\"log\":[");
	for (i = 0; i < run->n_logs; i++) {
		buf_puts(&b, i ? ",{" : "{");
		cli_flow_json_str(&b, "level", run->logs[i].level, false);
		cli_flow_json_str(&b, "message", run->logs[i].message, true);
		buf_putc(&b, '}');
	}
	buf_printf(&b, "],\"tokens\":{\"prompt\":%ld,\"completion\":%ld,"
	    "\"total\":%ld},\"llm_calls\":%d", ctx->prompt_tokens,
	    ctx->completion_tokens, ctx->total_tokens, ctx->llm_calls);
	cli_flow_json_str(&b, "script_error", run->ran_out ? run->ran_out_msg : NULL,
	    true);
	buf_printf(&b, ",\"unused_replies\":%zu", run->n_replies - run->next);
	printf("{%s}\n", buf_cstr(&b));
	buf_free(&b);
}

/* ---- the command ------------------------------------------------------------ */

static int
cli_flow_test(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "prompt", required_argument, NULL, 'p' },
		{ "replies", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prompt = NULL, *replies = NULL, *config_file = NULL, *name;
	struct cli_flow_run run;
	struct ctx_services svc;
	struct ing_chat_request req;
	struct ing_chat_reply reply;
	struct ing_ctx ctx;
	struct registry *reg = NULL;
	struct config *cfg = NULL;
	struct arena *turn_arena = NULL;    /* the context's: it locks its own */
	const struct ing_flow *flow;
	char norm[REGISTRY_NAME_MAX];
	struct err e;
	bool json = false, ok;
	int c, rc = CLI_FLOW_EXIT_USAGE;

	memset(&run, 0, sizeof(run));
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:r:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			prompt = optarg;
			break;
		case 'r':
			replies = optarg;
			break;
		case 'c':
			config_file = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(cli_flow_usage, stdout);
			return CLI_FLOW_EXIT_OK;
		default:
			fputs(cli_flow_usage, stderr);
			return CLI_FLOW_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ingen flow test: which flow? (ingen flow test NAME "
		    "--prompt TEXT; ingen workflows lists them)\n");
		return CLI_FLOW_EXIT_USAGE;
	}
	name = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "ingen flow test: unexpected argument \"%s\"\n",
		    argv[optind]);
		return CLI_FLOW_EXIT_USAGE;
	}
	if (prompt == NULL) {
		fprintf(stderr, "ingen flow test: --prompt TEXT is required\n");
		return CLI_FLOW_EXIT_USAGE;
	}
	if ((cfg = cli_config_load_file(config_file)) == NULL)
		return CLI_FLOW_EXIT_USAGE;
	pthread_mutex_init(&run.lock, NULL);
	run.a = arena_create(0);
	run.cfg = cfg;
	err_clear(&e);
	if (replies != NULL && cli_flow_replies_load(&run, replies, &e) != 0) {
		fprintf(stderr, "ingen: %s\n", e.msg);
		goto out;
	}
	if ((reg = cli_flows_load(cfg, true)) == NULL) {
		rc = CLI_FLOW_EXIT_FAILED;
		goto out;
	}
	if (registry_is_disabled_builtin(reg, name)) {
		fprintf(stderr, "ingen: flow \"%s\" is built in and disabled "
		    "(chat_service.enable_builtin_workflows is false)\n", name);
		goto out;
	}
	if ((flow = registry_find(reg, name)) == NULL || flow->run == NULL) {
		rc = cli_flows_unknown(reg, name);
		goto out;
	}
	if (replies == NULL) {
		llm_global_init();
		if ((run.llm = llm_client_create(cfg, &e)) == NULL) {
			fprintf(stderr, "ingen: %s\n", e.msg);
			rc = CLI_FLOW_EXIT_FAILED;
			goto out;
		}
	}

	memset(&svc, 0, sizeof(svc));
	svc.arg = &run;
	svc.llm_chat = cli_flow_llm_chat;
	svc.clock_ms = cli_flow_clock_ms;
	svc.log = cli_flow_log;
	svc.templates = &cli_flow_templates;
	registry_normalize(name, norm, sizeof(norm));
	memset(&req, 0, sizeof(req));
	req.user_prompt = prompt;
	req.conversation_flow = norm;
	req.thread_id = CLI_FLOW_THREAD_ID;
	req.user_id = CLI_FLOW_USER_ID;
	req.thread_memory = CLI_FLOW_NO_CONTEXT;
	memset(&reply, 0, sizeof(reply));
	{
		const struct ctx_turn who = {
			.request_id = CLI_FLOW_REQUEST_ID,
			.user_id = CLI_FLOW_USER_ID,
			.thread_id = CLI_FLOW_THREAD_ID,
			.flow = norm,
			.request = &req,
			.event = cli_flow_event,
			.emit_arg = &run,
		};

		turn_arena = arena_create(0);
		ctx_init(&ctx, turn_arena, cfg, &svc, &who);
	}
	ok = flow->run(&ctx, &req, &reply) == 0 && reply.agent_response != NULL;
	if (json)
		cli_flow_json(&run, norm, prompt, &ctx, &reply, ok);
	else
		cli_flow_print(&run, norm, &ctx, &reply, ok);
	rc = ok && !run.ran_out ? CLI_FLOW_EXIT_OK : CLI_FLOW_EXIT_FAILED;
	if (run.next < run.n_replies)
		fprintf(stderr, "ingen: warning: %zu of the %zu replies were not "
		    "used\n", run.n_replies - run.next, run.n_replies);
out:
	if (turn_arena != NULL)
		arena_destroy(turn_arena);
	llm_client_destroy(run.llm);
	registry_free(reg);
	free(run.calls);
	free(run.logs);
	free(run.tools);
	if (run.a != NULL) {
		arena_destroy(run.a);
		pthread_mutex_destroy(&run.lock);
	}
	config_free(cfg);
	return rc;
}

int
cli_flow_main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(cli_flow_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_FLOW_EXIT_USAGE : CLI_FLOW_EXIT_OK;
	}
	if (strcmp(argv[1], "test") == 0)
		return cli_flow_test(argc - 1, argv + 1);
	fprintf(stderr, "ingen flow: unknown command \"%s\" (ingen flow test NAME "
	    "--prompt TEXT [--replies FILE] [--json])\n", argv[1]);
	return CLI_FLOW_EXIT_USAGE;
}
