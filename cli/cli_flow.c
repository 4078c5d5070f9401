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
	const char *model;
	struct ing_message *messages;   /* copies */
	size_t n_messages;
	const char *answer;             /* NULL when it failed */
	const struct cli_flow_reply *scripted;   /* NULL: the real model */
	int status;                     /* 0, or its failure's */
	const char *error;
	long prompt_tokens, completion_tokens, total_tokens;
	int attempts;
};

struct cli_flow_log {
	int level;
	const char *message;
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
	c->model = "chat";
	c->n_messages = call->n_messages;
	c->messages = arena_zalloc(run->a, (call->n_messages ? call->n_messages : 1) *
	    sizeof(*c->messages));
	for (i = 0; i < call->n_messages; i++) {
		const struct ing_message *m = &call->messages[i];

		c->messages[i].role = arena_strdup(run->a, m->role ? m->role : "");
		c->messages[i].content = m->content ?
		    arena_strdup(run->a, m->content) : NULL;
		c->messages[i].name = m->name ? arena_strdup(run->a, m->name) : NULL;
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
	if (u->model != NULL && u->model[0] != '\0')
		c->model = arena_strdup(run->a, u->model);
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
		/* the context of this build does not run tools: say so */
		err_set(e, 500, "model call %zu (agent %s): the replies file "
		    "answers with tool calls, and this build of the flow context "
		    "runs no tools", idx + 1, call->agent);
		goto fail;
	}
	u.prompt_tokens = r->prompt_tokens;
	u.completion_tokens = r->completion_tokens;
	u.total_tokens = r->prompt_tokens + r->completion_tokens;
	u.http_status = 200;
	u.billed = true;
	/* a streaming flow gets its answer as one piece */
	if (call->stream && call->on_delta != NULL && r->content[0] != '\0')
		call->on_delta(call->arg, r->content, strlen(r->content));
	cli_flow_account(run, idx, call, &u);
	out->content = arena_strdup(a, r->content);
	pthread_mutex_lock(&run->lock);
	run->calls[idx].answer = arena_strdup(run->a, r->content);
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

	memset(&cu, 0, sizeof(cu));
	cu.model = u->model;
	cu.deployment = u->deployment;
	cu.prompt_tokens = u->prompt_tokens;
	cu.completion_tokens = u->completion_tokens;
	cu.total_tokens = u->total_tokens;
	cu.latency_ms = u->latency_ms;
	cu.http_status = u->http_status;
	cu.retries = u->retries;
	cu.billed = u->billed;
	cli_flow_account(r->run, r->idx, r->call, &cu);
}

static int
cli_flow_real(struct cli_flow_run *run, size_t idx,
    const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct cli_flow_real ur = { run, idx, call };
	struct llm_message *msgs;
	struct llm_request req;
	struct llm_reply rep;
	size_t i, n = call->n_messages;
	int model = llm_model_find(run->cfg, "chat");

	if (model < 0) {
		err_set(e, 503, "no language model is configured (set "
		    "INGENIOUS_MODELS__0__MODEL, ..._BASE_URL, ..._API_KEY, or give "
		    "--replies FILE)");
		goto fail;
	}
	msgs = arena_zalloc(a, (n ? n : 1) * sizeof(*msgs));
	for (i = 0; i < n; i++) {
		msgs[i].role = call->messages[i].role;
		msgs[i].content = call->messages[i].content;
		msgs[i].name = call->messages[i].name;
	}
	memset(&req, 0, sizeof(req));
	req.model_index = model;
	req.messages = msgs;
	req.n_messages = n;
	req.has_temperature = call->has_temperature;
	req.temperature = call->temperature;
	req.max_tokens = call->max_tokens;
	req.json_response = call->json_response;
	req.deadline_ms = call->deadline_ms;
	req.on_usage = cli_flow_real_usage;
	req.usage_arg = &ur;
	if (call->stream) {
		req.stream = true;
		req.on_delta = call->on_delta;
		req.delta_arg = call->arg;
	}
	memset(&rep, 0, sizeof(rep));
	if (llm_chat(run->llm, &req, a, &rep, e) != 0) {
		out->retry_after_s = rep.retry_after_s;
		goto fail;
	}
	out->content = rep.content;
	pthread_mutex_lock(&run->lock);
	run->calls[idx].answer = arena_strdup(run->a, rep.content ? rep.content : "");
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

static int64_t
cli_flow_clock_ms(void *arg)
{
	(void)arg;
	return clock_now_ms();
}

static void
cli_flow_log(void *arg, int level, const char *action, const char *msg)
{
	struct cli_flow_run *run = arg;

	(void)action;
	pthread_mutex_lock(&run->lock);
	if (run->n_logs == run->cap_logs) {
		run->cap_logs = run->cap_logs ? run->cap_logs * 2 : 8;
		run->logs = xrealloc(run->logs, run->cap_logs * sizeof(*run->logs));
	}
	run->logs[run->n_logs].level = level;
	run->logs[run->n_logs].message = arena_strdup(run->a, msg);
	run->n_logs++;
	pthread_mutex_unlock(&run->lock);
}

/* ---- the report ------------------------------------------------------------ */

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
cli_flow_print(const struct cli_flow_run *run, const char *flow,
    const struct ing_ctx *ctx, const struct ing_chat_reply *reply, bool ok)
{
	size_t i, k;

	printf("flow %s: %s\n", flow, ok ? "answered" : "failed");
	for (i = 0; i < run->n_calls; i++) {
		const struct cli_flow_call *c = &run->calls[i];

		printf("\nmodel call %zu: agent %s, model %s%s\n", i + 1, c->agent,
		    c->model, c->scripted != NULL ? " (scripted)" : "");
		for (k = 0; k < c->n_messages; k++) {
			const struct ing_message *m = &c->messages[k];
			char label[96];

			snprintf(label, sizeof(label), "  %s%s%s: ", m->role,
			    m->name ? " " : "", m->name ? m->name : "");
			cli_flow_text(label, m->content, "    ");
		}
		if (c->status != 0)
			printf("  failed: %d %s\n", c->status, c->error);
		else
			cli_flow_text("  answer: ", c->answer, "    ");
		printf("  tokens: %ld prompt + %ld completion = %ld\n",
		    c->prompt_tokens, c->completion_tokens, c->total_tokens);
	}
	for (i = 0; i < run->n_logs; i++)
		printf("\nlog %s: %s\n", cli_flow_level(run->logs[i].level),
		    run->logs[i].message);
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
		buf_printf(&b, ",\"scripted\":%s,\"messages\":[",
		    c->scripted != NULL ? "true" : "false");
		for (k = 0; k < c->n_messages; k++) {
			buf_puts(&b, k ? ",{" : "{");
			cli_flow_json_str(&b, "role", c->messages[k].role, false);
			cli_flow_json_str(&b, "content", c->messages[k].content, true);
			cli_flow_json_str(&b, "name", c->messages[k].name, true);
			buf_putc(&b, '}');
		}
		buf_putc(&b, ']');
		cli_flow_json_str(&b, "answer", c->answer, true);
		buf_puts(&b, ",\"tool_calls\":[]");
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
	buf_puts(&b, "],\"tool_calls\":[],\"log\":[");
	for (i = 0; i < run->n_logs; i++) {
		buf_puts(&b, i ? ",{" : "{");
		cli_flow_json_str(&b, "level", cli_flow_level(run->logs[i].level), false);
		cli_flow_json_str(&b, "message", run->logs[i].message, true);
		buf_putc(&b, '}');
	}
	buf_printf(&b, "],\"tokens\":{\"prompt\":%ld,\"completion\":%ld,"
	    "\"total\":%ld},\"llm_calls\":%d", ctx->prompt_tokens,
	    ctx->completion_tokens, ctx->total_tokens, ctx->llm_calls);
	cli_flow_json_str(&b, "script_error", run->ran_out ? run->ran_out_msg : NULL,
	    true);
	printf("{%s}\n", buf_cstr(&b));
	buf_free(&b);
}

/* ---- the command ------------------------------------------------------------ */

static int
cli_flow_unknown(const struct registry *reg, const char *name)
{
	char norm[REGISTRY_NAME_MAX];
	size_t i;

	fprintf(stderr, "ingen: unknown flow \"%s\" (normalized: %s); available:",
	    name, registry_normalize(name, norm, sizeof(norm)));
	for (i = 0; i < registry_count(reg); i++)
		fprintf(stderr, "%s %s", i ? "," : "", registry_at(reg, i)->name);
	fprintf(stderr, "%s\n", registry_count(reg) ? "" : " none");
	return CLI_FLOW_EXIT_USAGE;
}

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
	if ((reg = cli_flows_load(cfg, &e)) == NULL) {
		fprintf(stderr, "ingen: %s\n", e.msg);
		rc = CLI_FLOW_EXIT_FAILED;
		goto out;
	}
	if ((flow = registry_find(reg, name)) == NULL) {
		rc = cli_flow_unknown(reg, name);
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
	if (!json && run.next < run.n_replies)
		fprintf(stderr, "ingen: warning: %zu of the %zu replies were not "
		    "used\n", run.n_replies - run.next, run.n_replies);
out:
	if (turn_arena != NULL)
		arena_destroy(turn_arena);
	llm_client_destroy(run.llm);
	registry_free(reg);
	free(run.calls);
	free(run.logs);
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
