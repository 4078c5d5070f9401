/*
 * llm_reply.c -- chat-completions JSON in and out: request bodies, replies,
 * streamed chunks and error bodies.  It owns no state beyond the stream
 * accumulator its caller holds; it never does I/O, never logs (a body may
 * hold a prompt), and never trusts a field's type without checking it.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/llm_reply.h"
#include "lib/xmalloc.h"

#define LLM_REPLY_MAX_TOOL_CALLS 128
#define LLM_REPLY_MAX_TOKENS     1e12   /* any count above is not a count */
#define LLM_REPLY_CODE_MAX       64

static const char *
json_str(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Print a JSON value into the arena (compact). */
static char *
json_print(struct arena *a, const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	char *copy;

	if (s == NULL)
		return NULL;
	copy = arena_strdup(a, s);
	cJSON_free(s);
	return copy;
}

static long
json_count(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
	    it->valuedouble < 0 || it->valuedouble > LLM_REPLY_MAX_TOKENS)
		return 0;
	return (long)it->valuedouble;
}

static void
reply_take_usage(const cJSON *root, struct llm_reply *r)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");

	if (!cJSON_IsObject(u))
		return;
	r->has_usage = true;
	r->prompt_tokens = json_count(u, "prompt_tokens");
	r->completion_tokens = json_count(u, "completion_tokens");
	r->total_tokens = json_count(u, "total_tokens");
	if (r->total_tokens == 0)
		r->total_tokens = r->prompt_tokens + r->completion_tokens;
}

/* Keep a filter-results object when it says something (Azure also sends {}). */
static void
reply_take_filters(const cJSON *v, struct arena *a, char **dst)
{
	if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child != NULL)
		*dst = json_print(a, v);
}

static void
reply_take_head(const cJSON *root, struct arena *a, struct llm_reply *r)
{
	const char *s;

	if ((s = json_str(root, "id")) != NULL && *s != '\0')
		r->id = arena_strdup(a, s);
	if ((s = json_str(root, "model")) != NULL && *s != '\0')
		r->model = arena_strdup(a, s);
	reply_take_filters(cJSON_GetObjectItemCaseSensitive(root,
	    "prompt_filter_results"), a, &r->prompt_filter_results);
	reply_take_usage(root, r);
}

/* ---- request bodies ---------------------------------------------------- */

static int
body_add_message(cJSON *arr, const struct llm_message *m, size_t idx,
    struct err *e)
{
	cJSON *o, *calls, *call, *fn;
	size_t i;

	if (m->role == NULL || *m->role == '\0')
		return err_set(e, 500, "could not build llm request: message %zu "
		    "has no role", idx);
	o = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, o);
	cJSON_AddStringToObject(o, "role", m->role);
	if (m->content != NULL)
		cJSON_AddStringToObject(o, "content", m->content);
	else
		cJSON_AddNullToObject(o, "content");
	if (m->name != NULL && *m->name != '\0')
		cJSON_AddStringToObject(o, "name", m->name);
	if (m->n_tool_calls > 0) {
		calls = cJSON_AddArrayToObject(o, "tool_calls");
		for (i = 0; i < m->n_tool_calls; i++) {
			const struct llm_tool_call *tc = &m->tool_calls[i];

			if (tc->name == NULL || tc->id == NULL)
				return err_set(e, 500, "could not build llm request: "
				    "tool call %zu of message %zu has no id or name",
				    i, idx);
			call = cJSON_CreateObject();
			cJSON_AddItemToArray(calls, call);
			cJSON_AddStringToObject(call, "id", tc->id);
			cJSON_AddStringToObject(call, "type", "function");
			fn = cJSON_AddObjectToObject(call, "function");
			cJSON_AddStringToObject(fn, "name", tc->name);
			cJSON_AddStringToObject(fn, "arguments",
			    tc->arguments ? tc->arguments : "{}");
		}
	}
	if (m->tool_call_id != NULL)
		cJSON_AddStringToObject(o, "tool_call_id", m->tool_call_id);
	return 0;
}

static int
body_add_tool(cJSON *arr, const struct llm_tool *t, size_t idx, struct err *e)
{
	cJSON *o, *fn, *params;

	if (t->name == NULL || *t->name == '\0')
		return err_set(e, 500, "could not build llm request: tool %zu has "
		    "no name", idx);
	if (t->parameters != NULL) {
		params = cJSON_Parse(t->parameters);
		if (!cJSON_IsObject(params)) {
			cJSON_Delete(params);
			return err_set(e, 500, "could not build llm request: "
			    "parameters of tool \"%.64s\" are not a JSON object",
			    t->name);
		}
	} else {
		params = cJSON_CreateObject();
		cJSON_AddStringToObject(params, "type", "object");
		cJSON_AddObjectToObject(params, "properties");
	}
	o = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, o);
	cJSON_AddStringToObject(o, "type", "function");
	fn = cJSON_AddObjectToObject(o, "function");
	cJSON_AddStringToObject(fn, "name", t->name);
	if (t->description != NULL)
		cJSON_AddStringToObject(fn, "description", t->description);
	cJSON_AddItemToObject(fn, "parameters", params);
	return 0;
}

int
llm_reply_build_body(const struct llm_request *req, const char *model_name,
    struct buf *out, struct err *e)
{
	cJSON *root, *arr, *o;
	char *text;
	size_t i;
	int rc = -1;

	if (req->n_messages == 0)
		return err_set(e, 500, "could not build llm request: no messages");
	root = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(root, "messages");
	for (i = 0; i < req->n_messages; i++)
		if (body_add_message(arr, &req->messages[i], i, e) != 0)
			goto out;
	if (model_name != NULL && *model_name != '\0')
		cJSON_AddStringToObject(root, "model", model_name);
	if (req->n_tools > 0) {
		arr = cJSON_AddArrayToObject(root, "tools");
		for (i = 0; i < req->n_tools; i++)
			if (body_add_tool(arr, &req->tools[i], i, e) != 0)
				goto out;
		if (req->tool_choice != NULL)
			cJSON_AddStringToObject(root, "tool_choice", req->tool_choice);
	}
	if (req->json_response) {
		o = cJSON_AddObjectToObject(root, "response_format");
		cJSON_AddStringToObject(o, "type", "json_object");
	}
	if (req->has_temperature)
		cJSON_AddNumberToObject(root, "temperature", req->temperature);
	if (req->max_tokens > 0)
		cJSON_AddNumberToObject(root, "max_tokens", req->max_tokens);
	if (req->stream) {
		cJSON_AddTrueToObject(root, "stream");
		o = cJSON_AddObjectToObject(root, "stream_options");
		cJSON_AddTrueToObject(o, "include_usage");
	}
	text = cJSON_PrintUnformatted(root);
	if (text == NULL) {
		err_set(e, 500, "could not build llm request: out of memory");
		goto out;
	}
	buf_puts(out, text);
	cJSON_free(text);
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* ---- complete replies -------------------------------------------------- */

static int
reply_take_tool_calls(const cJSON *calls, struct arena *a,
    struct llm_reply *r, struct err *e)
{
	const cJSON *c, *fn;
	size_t n = 0, i = 0;
	const char *id, *name, *args;

	cJSON_ArrayForEach(c, calls)
		n++;
	if (n == 0)
		return 0;
	if (n > LLM_REPLY_MAX_TOOL_CALLS)
		return err_set(e, 502, "could not parse the language model's reply (azure openai): %zu tool calls",
		    n);
	r->tool_calls = arena_zalloc(a, n * sizeof(*r->tool_calls));
	cJSON_ArrayForEach(c, calls) {
		fn = cJSON_GetObjectItemCaseSensitive(c, "function");
		id = json_str(c, "id");
		name = json_str(fn, "name");
		args = json_str(fn, "arguments");
		if (id == NULL || name == NULL)
			return err_set(e, 502, "could not parse the language model's reply (azure openai): tool "
			    "call %zu has no id or function name", i);
		r->tool_calls[i].id = arena_strdup(a, id);
		r->tool_calls[i].name = arena_strdup(a, name);
		r->tool_calls[i].arguments = arena_strdup(a, args ? args : "{}");
		i++;
	}
	r->n_tool_calls = n;
	return 0;
}

int
llm_reply_parse(const char *body, size_t len, struct arena *a,
    struct llm_reply *r, struct err *e)
{
	cJSON *root;
	const cJSON *choices, *choice, *msg, *content, *calls;
	const char *fr;
	int rc = -1;

	root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root)) {
		err_set(e, 502, "could not parse the language model's reply (azure openai): not a JSON object");
		goto out;
	}
	reply_take_head(root, a, r);
	choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	choice = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	if (!cJSON_IsObject(choice)) {
		err_set(e, 502, "could not parse the language model's reply (azure openai): no choices");
		goto out;
	}
	if ((fr = json_str(choice, "finish_reason")) != NULL)
		r->finish_reason = arena_strdup(a, fr);
	reply_take_filters(cJSON_GetObjectItemCaseSensitive(choice,
	    "content_filter_results"), a, &r->content_filter_results);
	msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
	content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
	if (cJSON_IsString(content))
		r->content = arena_strdup(a, content->valuestring);
	if (cJSON_IsArray(calls) &&
	    reply_take_tool_calls(calls, a, r, e) != 0)
		goto out;
	if (r->content == NULL && r->n_tool_calls == 0 &&
	    (fr == NULL || strcmp(fr, "content_filter") != 0)) {
		err_set(e, 502, "could not parse the language model's reply (azure openai): a choice without "
		    "content or tool calls");
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* ---- streamed replies -------------------------------------------------- */

void
llm_reply_stream_init(struct llm_reply_stream *s, size_t max_bytes)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->content);
	s->max_bytes = max_bytes ? max_bytes : LLM_DEFAULT_MAX_RESPONSE_BYTES;
}

void
llm_reply_stream_free(struct llm_reply_stream *s)
{
	size_t i;

	buf_free(&s->content);
	for (i = 0; i < s->n_calls; i++) {
		buf_free(&s->calls[i].id);
		buf_free(&s->calls[i].name);
		buf_free(&s->calls[i].arguments);
	}
	free(s->calls);
	s->calls = NULL;
	s->n_calls = s->cap_calls = 0;
}

static int
stream_grow(struct llm_reply_stream *s, size_t n, struct err *e)
{
	s->total_bytes += n;
	if (s->total_bytes > s->max_bytes)
		return err_set(e, 502, "could not read llm stream: reply larger "
		    "than %zu bytes", s->max_bytes);
	return 0;
}

static int
stream_tool_delta(struct llm_reply_stream *s, const cJSON *tc, struct err *e)
{
	const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
	struct llm_reply_stream_call *call;
	const char *id = json_str(tc, "id");
	const char *name = json_str(fn, "name");
	const char *args = json_str(fn, "arguments");
	size_t i;

	if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 ||
	    idx->valuedouble >= LLM_REPLY_MAX_TOOL_CALLS)
		return err_set(e, 502, "could not read llm stream: tool call "
		    "without a valid index");
	i = (size_t)idx->valuedouble;
	if (i > s->n_calls)
		return err_set(e, 502, "could not read llm stream: tool call "
		    "index %zu skips %zu", i, s->n_calls);
	if (i == s->n_calls) {
		if (s->n_calls == s->cap_calls) {
			s->cap_calls = s->cap_calls ? s->cap_calls * 2 : 4;
			s->calls = xrealloc(s->calls,
			    s->cap_calls * sizeof(*s->calls));
		}
		call = &s->calls[s->n_calls++];
		buf_init(&call->id);
		buf_init(&call->name);
		buf_init(&call->arguments);
	}
	call = &s->calls[i];
	/* id and name come whole in the first fragment; arguments in pieces */
	if (id != NULL && buf_rlen(&call->id) == 0) {
		if (stream_grow(s, strlen(id), e) != 0)
			return -1;
		buf_puts(&call->id, id);
	}
	if (name != NULL) {
		if (stream_grow(s, strlen(name), e) != 0)
			return -1;
		buf_puts(&call->name, name);
	}
	if (args != NULL) {
		if (stream_grow(s, strlen(args), e) != 0)
			return -1;
		buf_puts(&call->arguments, args);
	}
	return 0;
}

int
llm_reply_stream_chunk(struct llm_reply_stream *s, const char *data,
    size_t len, struct arena *a, struct llm_reply *r, llm_delta_fn on_delta,
    void *delta_arg, struct err *e)
{
	cJSON *root;
	const cJSON *choices, *choice, *delta, *content, *calls, *tc;
	const char *fr;
	size_t n;
	int rc = -1;

	if (s->done)
		return err_set(e, 502, "could not read llm stream: data after "
		    "[DONE]");
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		s->done = true;
		return 0;
	}
	root = cJSON_ParseWithLength(data, len);
	if (!cJSON_IsObject(root)) {
		err_set(e, 502, "could not read llm stream: a chunk is not a "
		    "JSON object");
		goto out;
	}
	s->saw_chunk = true;
	reply_take_head(root, a, r);
	choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	choice = NULL;
	cJSON_ArrayForEach(choice, choices) {
		const cJSON *ix = cJSON_GetObjectItemCaseSensitive(choice, "index");

		/* only choice 0 is asked for; others are not ours */
		if (!cJSON_IsNumber(ix) || ix->valuedouble == 0)
			break;
	}
	if (!cJSON_IsObject(choice)) {
		rc = 0;                 /* a head or usage-only chunk */
		goto out;
	}
	if ((fr = json_str(choice, "finish_reason")) != NULL)
		r->finish_reason = arena_strdup(a, fr);
	reply_take_filters(cJSON_GetObjectItemCaseSensitive(choice,
	    "content_filter_results"), a, &r->content_filter_results);
	delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
	content = cJSON_GetObjectItemCaseSensitive(delta, "content");
	if (cJSON_IsString(content)) {
		n = strlen(content->valuestring);
		if (stream_grow(s, n, e) != 0)
			goto out;
		buf_append(&s->content, content->valuestring, n);
		s->has_content = true;
		if (n > 0 && on_delta != NULL)
			on_delta(delta_arg, content->valuestring, n);
	}
	calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
	cJSON_ArrayForEach(tc, calls)
		if (stream_tool_delta(s, tc, e) != 0)
			goto out;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

int
llm_reply_stream_finish(struct llm_reply_stream *s, struct arena *a,
    struct llm_reply *r, struct err *e)
{
	size_t i;

	if (!s->saw_chunk)
		return err_set(e, 502, "could not read llm stream: no chunks");
	if (!s->done)
		return err_set(e, 502, "could not read llm stream: the stream "
		    "ended before [DONE]");
	if (s->has_content)
		r->content = arena_strndup(a, buf_cstr(&s->content),
		    buf_rlen(&s->content));
	if (s->n_calls > 0) {
		r->tool_calls = arena_zalloc(a, s->n_calls * sizeof(*r->tool_calls));
		for (i = 0; i < s->n_calls; i++) {
			struct llm_reply_stream_call *c = &s->calls[i];

			if (buf_rlen(&c->id) == 0 || buf_rlen(&c->name) == 0)
				return err_set(e, 502, "could not read llm stream: "
				    "tool call %zu has no id or name", i);
			r->tool_calls[i].id = arena_strndup(a, buf_cstr(&c->id),
			    buf_rlen(&c->id));
			r->tool_calls[i].name = arena_strndup(a,
			    buf_cstr(&c->name), buf_rlen(&c->name));
			r->tool_calls[i].arguments = buf_rlen(&c->arguments) ?
			    arena_strndup(a, buf_cstr(&c->arguments),
			    buf_rlen(&c->arguments)) : arena_strdup(a, "{}");
		}
		r->n_tool_calls = s->n_calls;
	}
	if (r->content == NULL && r->n_tool_calls == 0 &&
	    (r->finish_reason == NULL ||
	    strcmp(r->finish_reason, "content_filter") != 0))
		return err_set(e, 502, "could not read llm stream: neither "
		    "content nor tool calls");
	return 0;
}

/* ---- error bodies ------------------------------------------------------ */

enum llm_reply_error_kind
llm_reply_classify_error(const char *body, size_t len, struct arena *a,
    char **filter_json, char **code)
{
	enum llm_reply_error_kind kind = LLM_REPLY_ERROR_OTHER;
	cJSON *root;
	const cJSON *err, *inner, *c;
	const char *msg, *inner_code;
	char codebuf[LLM_REPLY_CODE_MAX + 1];
	size_t i, n;

	if (filter_json != NULL)
		*filter_json = NULL;
	if (code != NULL)
		*code = NULL;
	root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root))
		goto out;
	err = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (!cJSON_IsObject(err))
		err = root;
	c = cJSON_GetObjectItemCaseSensitive(err, "code");
	codebuf[0] = '\0';
	if (cJSON_IsString(c)) {
		n = strlen(c->valuestring);
		if (n > LLM_REPLY_CODE_MAX)
			n = LLM_REPLY_CODE_MAX;
		for (i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)c->valuestring[i];

			codebuf[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
		}
		codebuf[n] = '\0';
	} else if (cJSON_IsNumber(c) && isfinite(c->valuedouble) &&
	    fabs(c->valuedouble) < 1e9) {
		snprintf(codebuf, sizeof(codebuf), "%d", (int)c->valuedouble);
	}
	if (code != NULL && codebuf[0] != '\0')
		*code = arena_strdup(a, codebuf);
	msg = json_str(err, "message");
	inner = cJSON_GetObjectItemCaseSensitive(err, "innererror");
	inner_code = json_str(inner, "code");
	if (strcmp(codebuf, "content_filter") == 0 || (inner_code != NULL &&
	    strcmp(inner_code, "ResponsibleAIPolicyViolation") == 0)) {
		kind = LLM_REPLY_ERROR_CONTENT_FILTER;
		if (filter_json != NULL)
			reply_take_filters(cJSON_GetObjectItemCaseSensitive(inner,
			    "content_filter_result"), a, filter_json);
	} else if (strcmp(codebuf, "context_length_exceeded") == 0 ||
	    (msg != NULL && strstr(msg, "maximum context length") != NULL)) {
		kind = LLM_REPLY_ERROR_CONTEXT_LENGTH;
	}
out:
	cJSON_Delete(root);
	return kind;
}
