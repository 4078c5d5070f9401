/*
 * services.c -- the flow services of the server (flows/ctx.h): a flow's
 * language-model calls go to the worker's lib/llm client, each attempt's
 * cost to the worker's scoreboard slot and to an llm_usage row committed at
 * once (docs/reliability.md D2), its log lines to the server log.  It adapts types
 * and nothing else: it never decides a reply, never writes a chat message
 * and keeps no state between calls.
 */
#include "autoconfig.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "flows/ctx.h"
#include "flows/llmcall.h"
#include "flows/prompt.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/db.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "lib/scoreboard.h"
#include "lib/xmalloc.h"
#include "worker/exchange.h"
#include "worker/services.h"
#include "worker/usage.h"
#include "worker/worker.h"

#define SERVICES_MSG_NO_MODEL "no language model is configured " \
	"(set INGENIOUS_MODELS__0__MODEL, ..._BASE_URL, ..._API_KEY)"

/* One call under way, as lib/llm's usage callback sees it. */
struct services_call {
	const struct ctx_llm_call *call;
	struct http_exchange *x;
	void *wake_h;                   /* what this call gave the exchange */
};

/* lib/llm's report of one attempt, handed on to the context. */
static void
services_on_usage(void *arg, const struct llm_usage *u)
{
	const struct ctx_llm_call *call = ((struct services_call *)arg)->call;
	struct ctx_usage cu;

	llmcall_usage(call, u, &cu);
	call->on_usage(call->arg, &cu);
}

/* lib/llm's waker of this call, kept by the exchange for the loop. */
static void
services_set_waker(void *arg, void (*wake)(void *h), void *h)
{
	struct services_call *sc = arg;

	if (wake != NULL) {
		sc->wake_h = h;
		xchg_waker_set(sc->x, wake, h);
	} else if (sc->wake_h != NULL) {
		xchg_waker_clear(sc->x, sc->wake_h);
		sc->wake_h = NULL;
	}
}

/* The context's cancellation, as lib/llm polls it. */
static bool
services_cancelled(void *arg)
{
	const struct ctx_llm_call *call = ((struct services_call *)arg)->call;

	return call->cancelled != NULL && call->cancelled(call->arg);
}

static int
services_llm_chat(void *arg, const struct ctx_llm_call *call, struct arena *a,
    struct ctx_llm_result *out, struct err *e)
{
	struct http_exchange *x = arg;
	struct services_call sc = { call, x, NULL };
	struct llm_request req;
	struct llm_reply rep;
	int idx;

	if ((idx = llmcall_model(x->cfg, call->model, SERVICES_MSG_NO_MODEL, e)) < 0)
		return -1;
	if (x->w->llm == NULL)
		return err_set(e, 503, "%s", SERVICES_MSG_NO_MODEL);
	llmcall_request(call, idx, a, &req);
	req.on_usage = services_on_usage;
	req.usage_arg = &sc;
	req.cancelled = services_cancelled;
	req.cancel_arg = &sc;
	req.set_waker = services_set_waker;
	memset(&rep, 0, sizeof(rep));
	if (llm_chat(x->w->llm, &req, a, &rep, e) != 0) {
		out->retry_after_s = rep.retry_after_s;
		return -1;
	}
	llmcall_result(x->cfg, idx, &rep, out);
	return 0;
}

/* {"messages":[...],"response":...,"tool_calls":[...]}: what a templated
 * call sent and got back, for its usage row.  Malloc'd (free it): the
 * reports of parallel calls come from several threads, the arena is not
 * theirs. */
static char *
services_transcript(const struct ctx_usage *u)
{
	struct buf b = BUF_INIT;
	char *out;
	size_t i;

	buf_puts(&b, "{\"messages\":[");
	for (i = 0; i < u->n_messages; i++) {
		const struct ctx_message *m = &u->messages[i];

		buf_puts(&b, i ? ",{\"role\":" : "{\"role\":");
		buf_json_string(&b, m->role);
		buf_puts(&b, ",\"content\":");
		if (m->content != NULL)
			buf_json_string(&b, m->content);
		else
			buf_puts(&b, "null");
		if (m->name != NULL) {
			buf_puts(&b, ",\"name\":");
			buf_json_string(&b, m->name);
		}
		if (m->tool_call_id != NULL) {
			buf_puts(&b, ",\"tool_call_id\":");
			buf_json_string(&b, m->tool_call_id);
		}
		buf_putc(&b, '}');
	}
	buf_puts(&b, "],\"response\":");
	if (u->content != NULL)
		buf_json_string(&b, u->content);
	else
		buf_puts(&b, "null");
	buf_puts(&b, ",\"tool_calls\":[");
	for (i = 0; i < u->n_tool_calls; i++) {
		buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		buf_json_string(&b, u->tool_calls[i].name);
		buf_puts(&b, ",\"arguments\":");
		buf_json_string(&b, u->tool_calls[i].arguments);
		buf_putc(&b, '}');
	}
	buf_puts(&b, "]}");
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

static int
services_record_usage(void *arg, const struct ctx_turn *who, const char *agent,
    const struct ctx_usage *u, int64_t *id)
{
	struct http_exchange *x = arg;
	struct worker *w = x->w;
	struct db_usage row;
	char *transcript = NULL;
	struct err e;
	int rc;

	if (w->slot != NULL) {
		if (u->billed)
			sb_add(&w->slot->c.llm_tokens, (uint64_t)u->total_tokens);
		sb_add(&w->slot->c.llm_calls, 1);
		if (u->http_status != 200)
			sb_add(&w->slot->c.llm_errors, 1);
		sb_llm_add(&w->slot->c, who->flow, agent, u->model, 1,
		    u->billed ? (uint64_t)u->total_tokens : 0, u->http_status != 200);
	}
	if (w->db == NULL)
		return -1;
	memset(&row, 0, sizeof(row));
	row.request_id = who->request_id;
	row.user_id = who->user_id;
	row.thread_id = who->thread_id;
	row.flow = who->flow;
	row.agent_name = agent;
	row.model = u->model;
	row.deployment = u->deployment;
	row.prompt_tokens = (int)u->prompt_tokens;
	row.completion_tokens = (int)u->completion_tokens;
	row.total_tokens = (int)u->total_tokens;
	row.latency_ms = (int)u->latency_ms;
	row.http_status = u->http_status;
	row.retries = u->retries;
	if (u->prompt != NULL) {
		row.prompt_revision = u->prompt->revision;
		row.prompt_file = u->prompt->file;
		row.prompt_hash = u->prompt->hash;
		if (u->messages != NULL)
			row.transcript = transcript = services_transcript(u);
	}
	err_clear(&e);
	/* held until the turn commits, or committed at once; on failure
	 * db_record_usage logged the call for reconciliation */
	rc = x->usage != NULL ? usage_turn_hold(w, x->usage, &row, id) :
	    db_record_usage(w->db, &row, id, &e);
	free(transcript);
	return rc;
}

static int64_t
services_clock_ms(void *arg)
{
	(void)arg;
	return clock_now_ms();   /* the time base of llm_request.deadline_ms */
}

static void
services_log(void *arg, int level, const char *action, const char *msg)
{
	enum log_level l;

	(void)arg;
	switch (level) {
	case ING_LOG_DEBUG:
		l = LOG_LEVEL_DEBUG;
		break;
	case ING_LOG_INFO:
		l = LOG_LEVEL_INFO;
		break;
	case ING_LOG_WARNING:
		l = LOG_LEVEL_WARNING;
		break;
	case ING_LOG_ERROR:
	default:
		l = LOG_LEVEL_ERROR;
		break;
	}
	log_emit(l, action, NULL, 0, "%s", msg);
}

/* The client of the turn went away (the loop saw its connection close). */
static bool
services_client_gone(void *arg)
{
	return xchg_client_is_gone(arg);
}

/* Prompt templates, from the revisions of this configuration. */
static int
services_render(void *arg, const char *revision, const char *file,
    const struct cJSON *vars, struct arena *a, const char **text, char hash[65],
    struct err *e)
{
	struct http_exchange *x = arg;

	return prompt_render(x->cfg, revision, file, vars, a, text, hash, e);
}

static const struct ctx_template_service services_templates = {
	.render = services_render,
};

void
services_init(struct ctx_services *svc, struct http_exchange *x)
{
	memset(svc, 0, sizeof(*svc));
	svc->arg = x;
	svc->llm_chat = services_llm_chat;
	svc->record_usage = services_record_usage;
	svc->clock_ms = services_clock_ms;
	svc->log = services_log;
	svc->client_gone = services_client_gone;
	svc->templates = &services_templates;
	svc->kb = &services_kb;
	svc->sql = &services_sql;
}
