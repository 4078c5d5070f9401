/*
 * sim_chat.c -- the simulated model: chat completions on the Azure and the
 * OpenAI-compatible paths, the rules file, the tokenizer, streaming, and the
 * faults that tests ask for.
 *
 * Replies are pure functions of the request (and of the rules file), so a
 * test can predict them: docs/simulator.md states the reply text, the
 * tokenizer and every fault.  It never sleeps longer than a fault asks and
 * never answers a request it could not parse with anything but Azure's 400.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/xmalloc.h"
#include "lib/clock.h"
#include "sim/sim.h"

#define SIM_ECHO_BYTES        80        /* of the user message, in the default reply */
#define SIM_TOOL_ECHO_BYTES   200       /* of a tool result, in the default final reply */
#define SIM_FINAL_TOOL_BYTES  4000      /* of a tool result, in a rule's "final" */
#define SIM_OVERSIZED_DEFAULT (9L * 1024 * 1024)
#define SIM_HANG_DEFAULT_MS   300000L
#define SIM_STREAM_PIECE      65536     /* bytes of content per oversized frame */

static const char sim_cf_prompt_msg[] =
    "The response was filtered due to the prompt triggering Azure OpenAI's "
    "content management policy. Please modify your prompt and retry. To "
    "learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766";

/* ---- faults ------------------------------------------------------------ */

static const struct {
	const char *name;
	enum sim_fault_kind kind;
} sim_fault_names[] = {
	{ "none", SIM_FAULT_NONE },
	{ "hang", SIM_FAULT_HANG },
	{ "drip", SIM_FAULT_DRIP },
	{ "malformed", SIM_FAULT_MALFORMED },
	{ "truncated", SIM_FAULT_TRUNCATED },
	{ "oversized", SIM_FAULT_OVERSIZED },
	{ "content_filter_prompt", SIM_FAULT_CF_PROMPT },
	{ "content_filter_completion", SIM_FAULT_CF_COMPLETION },
	{ "context_length", SIM_FAULT_CONTEXT },
	{ "reset", SIM_FAULT_RESET },
};

static int
fault_num(const char *name, const char *v, long lo, long hi, long *out,
    struct err *e)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
		return err_set(e, 400, "invalid fault parameter %s=%s", name, v);
	*out = n;
	return 0;
}

int
sim_fault_parse(const char *spec, struct sim_fault *f, struct err *e)
{
	char *copy, *tok, *save = NULL, *eq;
	size_t i;
	int rc = -1;
	long v;

	memset(f, 0, sizeof(*f));
	f->retry_after_ms = -1;
	f->retry_after_s = -1;
	f->bps = 1;
	f->bytes = SIM_OVERSIZED_DEFAULT;
	f->hang_ms = SIM_HANG_DEFAULT_MS;
	if (spec == NULL || *spec == '\0')
		return 0;
	copy = xstrdup(spec);
	tok = strtok_r(copy, ";,", &save);
	if (tok == NULL) {
		rc = 0;
		goto out;
	}
	if (isdigit((unsigned char)tok[0])) {
		if (fault_num("status", tok, 400, 599, &v, e) != 0)
			goto out;
		f->kind = SIM_FAULT_STATUS;
		f->status = (int)v;
	} else {
		for (i = 0; i < sizeof(sim_fault_names) / sizeof(sim_fault_names[0]);
		    i++)
			if (strcasecmp(tok, sim_fault_names[i].name) == 0)
				break;
		if (i == sizeof(sim_fault_names) / sizeof(sim_fault_names[0])) {
			err_set(e, 400, "unknown fault \"%.64s\"", tok);
			goto out;
		}
		f->kind = sim_fault_names[i].kind;
	}
	while ((tok = strtok_r(NULL, ";,", &save)) != NULL) {
		while (*tok == ' ')
			tok++;
		eq = strchr(tok, '=');
		if (eq == NULL) {
			err_set(e, 400, "fault parameter without value: %.64s", tok);
			goto out;
		}
		*eq++ = '\0';
		if (strcasecmp(tok, "retry-after-ms") == 0) {
			if (fault_num(tok, eq, 0, 86400000, &f->retry_after_ms, e))
				goto out;
		} else if (strcasecmp(tok, "retry-after") == 0) {
			if (fault_num(tok, eq, 0, 86400, &f->retry_after_s, e))
				goto out;
		} else if (strcasecmp(tok, "times") == 0) {
			if (fault_num(tok, eq, 0, 1000000, &f->times, e))
				goto out;
		} else if (strcasecmp(tok, "bps") == 0) {
			if (fault_num(tok, eq, 1, 100000000, &f->bps, e))
				goto out;
		} else if (strcasecmp(tok, "bytes") == 0) {
			if (fault_num(tok, eq, 1, 512L * 1024 * 1024, &f->bytes, e))
				goto out;
		} else if (strcasecmp(tok, "latency-ms") == 0 ||
		    strcasecmp(tok, "latency") == 0) {
			if (fault_num(tok, eq, 0, 3600000, &f->latency_ms, e))
				goto out;
		} else if (strcasecmp(tok, "ms") == 0) {
			if (fault_num(tok, eq, 0, 3600000, &f->hang_ms, e))
				goto out;
		} else {
			err_set(e, 400, "unknown fault parameter \"%.64s\"", tok);
			goto out;
		}
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

/* ---- rules ------------------------------------------------------------- */

static char *
rule_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

int
sim_rules_load(struct sim *s, const char *path, struct err *e)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n, i = 0;
	cJSON *root = NULL, *it;
	int rc = -1;

	if (f == NULL)
		return err_set(e, 0, "could not open rules file \"%s\": %s", path,
		    strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	root = cJSON_ParseWithLength(buf_cstr(&b), buf_rlen(&b));
	if (!cJSON_IsArray(root)) {
		err_set(e, 0, "could not load rules file \"%s\": not a JSON list",
		    path);
		goto out;
	}
	s->n_rules = (size_t)cJSON_GetArraySize(root);
	s->rules = xcalloc(s->n_rules ? s->n_rules : 1, sizeof(*s->rules));
	cJSON_ArrayForEach(it, root) {
		struct sim_rule *r = &s->rules[i];
		const cJSON *args = cJSON_GetObjectItemCaseSensitive(it, "arguments");
		char *re;

		if (!cJSON_IsObject(it)) {
			err_set(e, 0, "rules file \"%s\": rule %zu is not an object",
			    path, i);
			goto out;
		}
		r->match = rule_str(it, "match");
		r->system = rule_str(it, "system");
		r->deployment = rule_str(it, "deployment");
		r->tool = rule_str(it, "tool");
		r->content = rule_str(it, "content");
		r->final = rule_str(it, "final");
		r->fault = rule_str(it, "fault");
		if (cJSON_IsString(args))
			r->arguments = xstrdup(args->valuestring);
		else if (args != NULL) {
			char *t = cJSON_PrintUnformatted(args);

			r->arguments = xstrdup(t);
			cJSON_free(t);
		} else if (r->tool != NULL)
			r->arguments = xstrdup("{}");
		re = rule_str(it, "regex");
		if (re != NULL) {
			int erc = regcomp(&r->regex, re,
			    REG_EXTENDED | REG_ICASE | REG_NOSUB);

			free(re);
			if (erc != 0) {
				err_set(e, 0, "rules file \"%s\": rule %zu has an "
				    "invalid regex", path, i);
				goto out;
			}
			r->has_regex = true;
		}
		if (r->tool == NULL && r->content == NULL && r->fault == NULL) {
			err_set(e, 0, "rules file \"%s\": rule %zu needs tool, "
			    "content or fault", path, i);
			goto out;
		}
		if (r->fault != NULL) {
			struct sim_fault probe;

			if (sim_fault_parse(r->fault, &probe, e) != 0) {
				err_prefix(e, "rules file \"%s\": rule %zu", path, i);
				goto out;
			}
		}
		i++;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	buf_free(&b);
	return rc;
}

/* ---- text helpers ------------------------------------------------------ */

long
sim_tokens(const char *s)
{
	long n = 0, run = 0;
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL)
		return 0;
	for (;; p++) {
		if (*p != '\0' && (isalnum(*p) || *p >= 0x80)) {
			run++;
			continue;
		}
		/* a word is one token per started 6 bytes */
		n += (run + 5) / 6;
		run = 0;
		if (*p == '\0')
			break;
		if (!isspace(*p))
			n++;                /* punctuation */
	}
	return n;
}

/* Byte length of the longest prefix of s with at most `max` tokens. */
static size_t
sim_cut_tokens(const char *s, long max)
{
	size_t i, end = 0;
	long n = 0, run = 0;
	const unsigned char *p = (const unsigned char *)s;

	for (i = 0;; i++) {
		if (p[i] != '\0' && (isalnum(p[i]) || p[i] >= 0x80)) {
			if (run % 6 == 0) {
				if (n + 1 > max)
					return end;
				n++;
			}
			run++;
			end = i + 1;
			continue;
		}
		run = 0;
		if (p[i] == '\0')
			return i;
		if (!isspace(p[i])) {
			if (n + 1 > max)
				return end;
			n++;
		}
		end = i + 1;
	}
}

static uint64_t
sim_fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* At most `max` bytes of s, not cutting a UTF-8 sequence. */
static size_t
sim_prefix_len(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static bool
sim_icontains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0)
		return true;
	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* The text of a message's content: a string, or the text parts of a list. */
static char *
msg_text(struct arena *a, const cJSON *msg)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content"), *part;
	struct buf b = BUF_INIT;
	char *out;

	if (cJSON_IsString(c))
		return c->valuestring;
	if (!cJSON_IsArray(c))
		return NULL;
	cJSON_ArrayForEach(part, c) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");

		if (cJSON_IsString(t))
			buf_puts(&b, t->valuestring);
	}
	out = arena_strdup(a, buf_cstr(&b));
	buf_free(&b);
	return out;
}

static const char *
json_s(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Replace every `{name}` in tmpl with value. */
static char *
sim_expand(struct arena *a, const char *tmpl, const char *name,
    const char *value)
{
	struct buf b = BUF_INIT;
	size_t nlen = strlen(name);
	const char *p;
	char *out;

	for (p = tmpl; *p != '\0';) {
		if (*p == '{' && strncmp(p + 1, name, nlen) == 0 &&
		    p[1 + nlen] == '}') {
			buf_puts(&b, value);
			p += nlen + 2;
			continue;
		}
		buf_putc(&b, *p++);
	}
	out = arena_strdup(a, buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* ---- the model --------------------------------------------------------- */

/* What the simulated model decided to answer. */
struct sim_answer {
	const char *content;        /* NULL with a tool call */
	const char *tool_name;
	const char *tool_args;
	char tool_id[40];
	const char *finish_reason;
	long prompt_tokens;
	long completion_tokens;
	bool filtered;              /* the completion was content-filtered */
};

static const struct sim_rule *
sim_rule_find(const struct sim *s, const char *user, const char *system,
    const char *deployment)
{
	size_t i;

	for (i = 0; i < s->n_rules; i++) {
		const struct sim_rule *r = &s->rules[i];

		if (r->deployment != NULL && (deployment == NULL ||
		    strcmp(r->deployment, deployment) != 0))
			continue;
		if (r->system != NULL && (system == NULL ||
		    !sim_icontains(system, r->system)))
			continue;
		if (r->match != NULL && (user == NULL ||
		    !sim_icontains(user, r->match)))
			continue;
		if (r->has_regex && (user == NULL ||
		    regexec(&r->regex, user, 0, NULL, 0) != 0))
			continue;
		return r;
	}
	return NULL;
}

static bool
tool_offered(const cJSON *tools, const char *name)
{
	const cJSON *t;

	cJSON_ArrayForEach(t, tools) {
		const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
		const char *n = json_s(fn, "name");

		if (n != NULL && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

static long
sim_prompt_tokens(const cJSON *messages, const cJSON *tools, struct arena *a)
{
	const cJSON *m, *tc;
	long n = 3;                 /* reply priming */
	char *t;

	cJSON_ArrayForEach(m, messages) {
		n += 3;
		n += sim_tokens(json_s(m, "role"));
		n += sim_tokens(msg_text(a, m));
		if (json_s(m, "name") != NULL)
			n += 1 + sim_tokens(json_s(m, "name"));
		cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(m,
		    "tool_calls")) {
			const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc,
			    "function");

			n += sim_tokens(json_s(fn, "name"));
			n += sim_tokens(json_s(fn, "arguments"));
		}
	}
	if (cJSON_IsArray(tools) && tools->child != NULL) {
		t = cJSON_PrintUnformatted(tools);
		n += sim_tokens(t);
		cJSON_free(t);
	}
	return n;
}

/* Name of the tool whose call `id` the assistant made earlier. */
static const char *
sim_tool_name_of(const cJSON *messages, const char *id)
{
	const cJSON *m, *tc;

	if (id == NULL)
		return NULL;
	cJSON_ArrayForEach(m, messages) {
		cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(m,
		    "tool_calls")) {
			const char *tid = json_s(tc, "id");

			if (tid != NULL && strcmp(tid, id) == 0)
				return json_s(cJSON_GetObjectItemCaseSensitive(tc,
				    "function"), "name");
		}
	}
	return NULL;
}

static void
sim_decide(const struct sim *s, const cJSON *req, const char *deployment,
    bool cf_completion, struct arena *a, struct sim_answer *ans)
{
	const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
	const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
	const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
	const cJSON *mt = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
	const cJSON *m, *last = NULL;
	const char *user = NULL, *system = NULL, *role;
	const struct sim_rule *rule;
	bool json_mode = cJSON_IsObject(rf) && json_s(rf, "type") != NULL &&
	    strcmp(json_s(rf, "type"), "json_object") == 0;
	uint64_t h;
	long max_tokens;

	memset(ans, 0, sizeof(*ans));
	if (!cJSON_IsNumber(mt))
		mt = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens");
	max_tokens = cJSON_IsNumber(mt) && mt->valuedouble >= 1 ?
	    (long)mt->valuedouble : 0;
	cJSON_ArrayForEach(m, messages) {
		role = json_s(m, "role");
		last = m;
		if (role == NULL)
			continue;
		if (strcmp(role, "user") == 0)
			user = msg_text(a, m);
		else if (strcmp(role, "system") == 0 && system == NULL)
			system = msg_text(a, m);
	}
	rule = sim_rule_find(s, user, system, deployment);
	role = json_s(last, "role");
	h = sim_fnv1a(user ? user : "", user ? strlen(user) : 0);
	ans->finish_reason = "stop";

	if (role != NULL && strcmp(role, "tool") == 0) {
		/* the tool answered: give the final reply */
		const char *result = msg_text(a, last);
		const char *tname = sim_tool_name_of(messages,
		    json_s(last, "tool_call_id"));

		if (result == NULL)
			result = "";
		if (rule != NULL && rule->final != NULL) {
			ans->content = sim_expand(a, rule->final, "tool_result",
			    arena_strndup(a, result,
			    sim_prefix_len(result, SIM_FINAL_TOOL_BYTES)));
			ans->content = sim_expand(a, ans->content, "user",
			    user ? user : "");
		} else {
			ans->content = arena_sprintf(a, "Tool %s returned: %.*s",
			    tname ? tname : "call", (int)sim_prefix_len(result,
			    SIM_TOOL_ECHO_BYTES), result);
		}
	} else if (rule != NULL && rule->tool != NULL &&
	    tool_offered(tools, rule->tool)) {
		uint64_t th = sim_fnv1a(rule->tool, strlen(rule->tool)) ^ h;

		ans->tool_name = rule->tool;
		ans->tool_args = rule->arguments;
		snprintf(ans->tool_id, sizeof(ans->tool_id), "call_sim%016llx",
		    (unsigned long long)th);
		ans->finish_reason = "tool_calls";
	} else if (rule != NULL && rule->content != NULL) {
		ans->content = sim_expand(a, rule->content, "user",
		    user ? user : "");
	} else {
		const char *u = user ? user : "";
		size_t n = sim_prefix_len(u, SIM_ECHO_BYTES);
		struct buf b = BUF_INIT;

		if (json_mode) {
			buf_puts(&b, "{\"reply\":\"Simulated reply to: ");
			buf_json_escape(&b, u, n);
			buf_printf(&b, "\",\"ref\":\"%08x\"}",
			    (unsigned)(h & 0xffffffffu));
		} else {
			buf_puts(&b, "Simulated reply to: \"");
			buf_append(&b, u, n);
			buf_printf(&b, "\" (ref %08x)", (unsigned)(h & 0xffffffffu));
		}
		ans->content = arena_strdup(a, buf_cstr(&b));
		buf_free(&b);
	}

	ans->prompt_tokens = sim_prompt_tokens(messages, tools, a);
	if (ans->content != NULL) {
		ans->completion_tokens = sim_tokens(ans->content);
		if (max_tokens > 0 && ans->completion_tokens > max_tokens) {
			ans->content = arena_strndup(a, ans->content,
			    sim_cut_tokens(ans->content, max_tokens));
			ans->completion_tokens = sim_tokens(ans->content);
			ans->finish_reason = "length";
		}
	} else {
		ans->completion_tokens = sim_tokens(ans->tool_name) +
		    sim_tokens(ans->tool_args);
	}
	if (cf_completion) {
		ans->filtered = true;
		ans->finish_reason = "content_filter";
	}
}

/* ---- reply shapes ------------------------------------------------------ */

static cJSON *
sim_filters(bool prompt, const char *flagged)
{
	static const char *const cats[] = { "hate", "self_harm", "sexual",
	    "violence" };
	cJSON *o = cJSON_CreateObject(), *c;
	size_t i;

	for (i = 0; i < sizeof(cats) / sizeof(cats[0]); i++) {
		bool hit = flagged != NULL && strcmp(flagged, cats[i]) == 0;

		c = cJSON_AddObjectToObject(o, cats[i]);
		cJSON_AddBoolToObject(c, "filtered", hit);
		cJSON_AddStringToObject(c, "severity", hit ? "high" : "safe");
	}
	if (prompt) {
		c = cJSON_AddObjectToObject(o, "jailbreak");
		cJSON_AddBoolToObject(c, "filtered", false);
		cJSON_AddBoolToObject(c, "detected", false);
	}
	return o;
}

static cJSON *
sim_prompt_filters(void)
{
	cJSON *arr = cJSON_CreateArray(), *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "prompt_index", 0);
	cJSON_AddItemToObject(o, "content_filter_results", sim_filters(true, NULL));
	cJSON_AddItemToArray(arr, o);
	return arr;
}

static cJSON *
sim_usage(const struct sim_answer *ans)
{
	cJSON *u = cJSON_CreateObject();

	cJSON_AddNumberToObject(u, "completion_tokens", (double)ans->completion_tokens);
	cJSON_AddNumberToObject(u, "prompt_tokens", (double)ans->prompt_tokens);
	cJSON_AddNumberToObject(u, "total_tokens",
	    (double)(ans->prompt_tokens + ans->completion_tokens));
	return u;
}

static void
sim_chunk_head(cJSON *o, const char *id, const char *model, time_t created,
    const char *object)
{
	cJSON_AddNumberToObject(o, "created", (double)created);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "model", model);
	cJSON_AddStringToObject(o, "object", object);
	cJSON_AddStringToObject(o, "system_fingerprint", "fp_sim0001");
}

/* A tool_calls array: the head (id, type, name) when `head`, and `args`. */
static cJSON *
sim_tool_calls_json(const struct sim_answer *ans, bool with_index,
    const char *args, bool head)
{
	cJSON *arr = cJSON_CreateArray(), *tc = cJSON_CreateObject(), *fn;

	if (with_index)
		cJSON_AddNumberToObject(tc, "index", 0);
	if (head) {
		cJSON_AddStringToObject(tc, "id", ans->tool_id);
		cJSON_AddStringToObject(tc, "type", "function");
	}
	fn = cJSON_AddObjectToObject(tc, "function");
	if (head)
		cJSON_AddStringToObject(fn, "name", ans->tool_name);
	cJSON_AddStringToObject(fn, "arguments", args);
	cJSON_AddItemToArray(arr, tc);
	return arr;
}

/* The non-streamed reply body. */
static char *
sim_body_json(const struct sim_answer *ans, bool azure,
    const char *id, const char *model, time_t created)
{
	cJSON *root = cJSON_CreateObject(), *choices, *ch, *msg;
	char *text, *out;

	choices = cJSON_AddArrayToObject(root, "choices");
	ch = cJSON_CreateObject();
	cJSON_AddItemToArray(choices, ch);
	if (azure)
		cJSON_AddItemToObject(ch, "content_filter_results",
		    ans->tool_name != NULL ? cJSON_CreateObject() :
		    sim_filters(false, ans->filtered ? "violence" : NULL));
	cJSON_AddStringToObject(ch, "finish_reason", ans->finish_reason);
	cJSON_AddNumberToObject(ch, "index", 0);
	cJSON_AddNullToObject(ch, "logprobs");
	msg = cJSON_AddObjectToObject(ch, "message");
	if (ans->content != NULL && !ans->filtered)
		cJSON_AddStringToObject(msg, "content", ans->content);
	else
		cJSON_AddNullToObject(msg, "content");
	cJSON_AddNullToObject(msg, "refusal");
	cJSON_AddStringToObject(msg, "role", "assistant");
	if (ans->tool_name != NULL)
		cJSON_AddItemToObject(msg, "tool_calls",
		    sim_tool_calls_json(ans, false, ans->tool_args, true));
	sim_chunk_head(root, id, model, created, "chat.completion");
	if (azure)
		cJSON_AddItemToObject(root, "prompt_filter_results",
		    sim_prompt_filters());
	cJSON_AddItemToObject(root, "usage", sim_usage(ans));
	text = cJSON_PrintUnformatted(root);
	out = xstrdup(text);
	cJSON_free(text);
	cJSON_Delete(root);
	return out;
}

/* Append one SSE frame "data: <json>\n\n" as its own segment. */
static void
frame_add(struct buf **segs, size_t *n, size_t *cap, cJSON *o)
{
	char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*segs = xrealloc(*segs, *cap * sizeof(**segs));
	}
	buf_init(&(*segs)[*n]);
	buf_printf(&(*segs)[*n], "data: %s\n\n", text ? text : "[DONE]");
	(*n)++;
	if (text != NULL)
		cJSON_free(text);
	cJSON_Delete(o);
}

static cJSON *
stream_chunk(bool azure, const char *id, const char *model, time_t created,
    cJSON *delta, const char *finish, cJSON *filters)
{
	cJSON *o = cJSON_CreateObject(), *choices, *ch;

	choices = cJSON_AddArrayToObject(o, "choices");
	ch = cJSON_CreateObject();
	cJSON_AddItemToArray(choices, ch);
	if (azure)
		cJSON_AddItemToObject(ch, "content_filter_results",
		    filters ? filters : cJSON_CreateObject());
	else
		cJSON_Delete(filters);
	cJSON_AddItemToObject(ch, "delta", delta);
	if (finish != NULL)
		cJSON_AddStringToObject(ch, "finish_reason", finish);
	else
		cJSON_AddNullToObject(ch, "finish_reason");
	cJSON_AddNumberToObject(ch, "index", 0);
	cJSON_AddNullToObject(ch, "logprobs");
	sim_chunk_head(o, id, model, created, "chat.completion.chunk");
	return o;
}

/*
 * The streamed reply as SSE frames (one segment each), the way Azure sends
 * it: a prompt-filter frame, a role frame, content or tool-call fragments,
 * a finish frame, a usage frame when asked, then [DONE].
 */
static struct buf *
sim_stream_frames(const struct sim_answer *ans, bool azure, const char *id,
    const char *model, time_t created, bool include_usage, long oversized,
    size_t *n_out)
{
	struct buf *segs = NULL;
	size_t n = 0, cap = 0;
	cJSON *o, *d;

	if (azure) {
		o = cJSON_CreateObject();
		cJSON_AddArrayToObject(o, "choices");
		cJSON_AddNumberToObject(o, "created", 0);
		cJSON_AddStringToObject(o, "id", "");
		cJSON_AddStringToObject(o, "model", "");
		cJSON_AddStringToObject(o, "object", "");
		cJSON_AddItemToObject(o, "prompt_filter_results",
		    sim_prompt_filters());
		frame_add(&segs, &n, &cap, o);
	}
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "role", "assistant");
	if (ans->tool_name == NULL)
		cJSON_AddStringToObject(d, "content", "");
	else
		cJSON_AddNullToObject(d, "content");
	cJSON_AddNullToObject(d, "refusal");
	frame_add(&segs, &n, &cap, stream_chunk(azure, id, model, created, d,
	    NULL, NULL));

	if (oversized > 0) {
		char *piece = xmalloc(SIM_STREAM_PIECE + 1);
		long sent;

		memset(piece, 'x', SIM_STREAM_PIECE);
		piece[SIM_STREAM_PIECE] = '\0';
		for (sent = 0; sent < oversized; sent += SIM_STREAM_PIECE) {
			d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "content", piece);
			frame_add(&segs, &n, &cap, stream_chunk(azure, id, model,
			    created, d, NULL, sim_filters(false, NULL)));
		}
		free(piece);
	} else if (ans->tool_name != NULL) {
		/* the call's head, then its arguments in two halves */
		size_t alen = strlen(ans->tool_args), half = alen / 2;
		char *first = xstrndup(ans->tool_args, half);

		d = cJSON_CreateObject();
		cJSON_AddItemToObject(d, "tool_calls",
		    sim_tool_calls_json(ans, true, "", true));
		frame_add(&segs, &n, &cap, stream_chunk(azure, id, model, created,
		    d, NULL, NULL));
		d = cJSON_CreateObject();
		cJSON_AddItemToObject(d, "tool_calls",
		    sim_tool_calls_json(ans, true, first, false));
		frame_add(&segs, &n, &cap, stream_chunk(azure, id, model, created,
		    d, NULL, NULL));
		d = cJSON_CreateObject();
		cJSON_AddItemToObject(d, "tool_calls",
		    sim_tool_calls_json(ans, true, ans->tool_args + half,
		    false));
		frame_add(&segs, &n, &cap, stream_chunk(azure, id, model, created,
		    d, NULL, NULL));
		free(first);
	} else if (ans->content != NULL) {
		/* one fragment per word with the spaces after it */
		const char *p = ans->content, *q;

		while (*p != '\0') {
			char *frag;

			q = p;
			while (*q != '\0' && *q != ' ')
				q++;
			while (*q == ' ')
				q++;
			frag = xstrndup(p, (size_t)(q - p));
			d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "content", frag);
			free(frag);
			frame_add(&segs, &n, &cap, stream_chunk(azure, id, model,
			    created, d, NULL, sim_filters(false, NULL)));
			p = q;
		}
	}
	frame_add(&segs, &n, &cap, stream_chunk(azure, id, model, created,
	    cJSON_CreateObject(), ans->finish_reason, ans->filtered ?
	    sim_filters(false, "violence") : NULL));
	if (include_usage) {
		o = cJSON_CreateObject();
		cJSON_AddArrayToObject(o, "choices");
		sim_chunk_head(o, id, model, created, "chat.completion.chunk");
		cJSON_AddItemToObject(o, "usage", sim_usage(ans));
		frame_add(&segs, &n, &cap, o);
	}
	frame_add(&segs, &n, &cap, NULL);
	*n_out = n;
	return segs;
}

/* ---- delivery ---------------------------------------------------------- */

/* Hold the connection open without answering until the peer closes. */
void
sim_hang(struct sim_conn *c, long max_ms)
{
	int64_t end = clock_now_ms() + max_ms;
	char tmp[512];

	while (clock_now_ms() < end) {
		struct pollfd pfd = { c->fd, POLLIN, 0 };
		int rc = poll(&pfd, 1, 200);

		if (rc > 0) {
			ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);

			if (n <= 0)
				break;
		}
	}
	c->close = true;
}

/* Send the bytes one at a time, `bps` per second: byte i leaves i/bps
 * seconds after the first, on the monotonic clock (a gap of 1000/bps whole
 * milliseconds would not drip at all above 1,000 bytes per second). */
static int
sim_drip(struct sim_conn *c, const char *p, size_t n, long bps)
{
	struct timespec start, now, nap;
	int64_t due_ns, el_ns;
	size_t i;

	if (bps <= 0)
		bps = 1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (i = 0; i < n; i++) {
		if (sim_write_all(c->fd, p + i, 1) != 0)
			return -1;
		due_ns = (int64_t)((double)(i + 1) * 1e9 / (double)bps);
		clock_gettime(CLOCK_MONOTONIC, &now);
		el_ns = (int64_t)(now.tv_sec - start.tv_sec) * 1000000000LL +
		    (now.tv_nsec - start.tv_nsec);
		if (el_ns < due_ns) {
			nap.tv_sec = (time_t)((due_ns - el_ns) / 1000000000LL);
			nap.tv_nsec = (long)((due_ns - el_ns) % 1000000000LL);
			while (nanosleep(&nap, &nap) == -1 && errno == EINTR)
				;
		}
	}
	return 0;
}

/*
 * Send a response: the head, then body segments (for a stream each is one
 * chunk of the chunked encoding, written on its own).  A drip sends the body
 * bytes slowly; a truncation stops at half the body and closes.
 */
static void
sim_deliver(struct sim_conn *c, int status, const char *ctype, bool stream,
    struct buf *segs, size_t n, const struct sim_fault *f,
    const struct http_header *extra, size_t n_extra)
{
	struct buf out = BUF_INIT, body = BUF_INIT;
	size_t i, total = 0;

	for (i = 0; i < n; i++) {
		if (stream)
			http_write_chunk(&body, buf_rptr(&segs[i]),
			    buf_rlen(&segs[i]));
		else
			buf_append(&body, buf_rptr(&segs[i]), buf_rlen(&segs[i]));
	}
	if (stream)
		http_write_last_chunk(&body);
	total = buf_rlen(&body);
	if (f->kind == SIM_FAULT_TRUNCATED)
		c->close = true;
	http_write_head(&out, status, ctype, stream ? -1 : (int64_t)total,
	    stream, !c->close, extra, n_extra);
	if (sim_write_all(c->fd, buf_rptr(&out), buf_rlen(&out)) != 0)
		goto gone;
	if (f->kind == SIM_FAULT_DRIP) {
		if (sim_drip(c, buf_rptr(&body), total, f->bps) != 0)
			goto gone;
	} else if (f->kind == SIM_FAULT_TRUNCATED) {
		(void)sim_write_all(c->fd, buf_rptr(&body), total / 2);
		shutdown(c->fd, SHUT_RDWR);
	} else if (stream) {
		/* frame by frame, so the client sees them in separate reads */
		const char *p = buf_rptr(&body);
		size_t off = 0;

		for (i = 0; i < n; i++) {
			struct buf one = BUF_INIT;

			http_write_chunk(&one, buf_rptr(&segs[i]), buf_rlen(&segs[i]));
			if (sim_write_all(c->fd, p + off, buf_rlen(&one)) != 0) {
				buf_free(&one);
				goto gone;
			}
			off += buf_rlen(&one);
			buf_free(&one);
		}
		if (sim_write_all(c->fd, p + off, total - off) != 0)
			goto gone;
	} else if (sim_write_all(c->fd, buf_rptr(&body), total) != 0) {
		goto gone;
	}
	goto out;
gone:
	c->close = true;
out:
	buf_free(&out);
	buf_free(&body);
}

static void
sim_send_json_error(struct sim_conn *c, int status, cJSON *err_obj,
    const struct http_header *extra, size_t n_extra)
{
	cJSON *root = cJSON_CreateObject();
	char *text;

	cJSON_AddItemToObject(root, "error", err_obj);
	text = cJSON_PrintUnformatted(root);
	sim_respond(c, status, "application/json", text, strlen(text), extra,
	    n_extra);
	cJSON_free(text);
	cJSON_Delete(root);
}

static void
sim_send_openai_error(struct sim_conn *c, int status, const char *message,
    const char *type, const char *param, const char *code)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "message", message);
	if (type)
		cJSON_AddStringToObject(e, "type", type);
	else
		cJSON_AddNullToObject(e, "type");
	if (param)
		cJSON_AddStringToObject(e, "param", param);
	else
		cJSON_AddNullToObject(e, "param");
	if (code)
		cJSON_AddStringToObject(e, "code", code);
	else
		cJSON_AddNullToObject(e, "code");
	sim_send_json_error(c, status, e, NULL, 0);
}

static void
sim_fault_status(struct sim_conn *c, const struct sim_fault *f,
    const char *api_version)
{
	struct http_header extra[4];
	size_t n = 0;
	char ms[32], s[32];
	char h_ms[] = "retry-after-ms", h_s[] = "Retry-After";
	char h_rl[] = "x-ratelimit-remaining-requests", zero[] = "0";
	cJSON *e = cJSON_CreateObject();
	long secs;

	if (f->retry_after_ms >= 0) {
		snprintf(ms, sizeof(ms), "%ld", f->retry_after_ms);
		extra[n].name = h_ms;
		extra[n++].value = ms;
	}
	if (f->retry_after_s >= 0) {
		snprintf(s, sizeof(s), "%ld", f->retry_after_s);
		extra[n].name = h_s;
		extra[n++].value = s;
	}
	switch (f->status) {
	case 429:
		secs = f->retry_after_s >= 0 ? f->retry_after_s :
		    f->retry_after_ms >= 0 ? (f->retry_after_ms + 999) / 1000 : 1;
		cJSON_AddStringToObject(e, "code", "429");
		cJSON_AddItemToObject(e, "message", cJSON_CreateString(""));
		{
			char msg[512];

			snprintf(msg, sizeof(msg), "Requests to the "
			    "ChatCompletions_Create Operation under Azure OpenAI API "
			    "version %s have exceeded token rate limit of your "
			    "current OpenAI S0 pricing tier. Please retry after %ld "
			    "second%s. Please go here: https://aka.ms/oai/quotaincrease "
			    "if you would like to further increase the default rate "
			    "limit.", api_version ? api_version : "2024-12-01-preview",
			    secs, secs == 1 ? "" : "s");
			cJSON_ReplaceItemInObject(e, "message",
			    cJSON_CreateString(msg));
		}
		extra[n].name = h_rl;
		extra[n++].value = zero;
		break;
	case 500:
		cJSON_AddStringToObject(e, "message", "The server had an error "
		    "while processing your request. Sorry about that!");
		cJSON_AddStringToObject(e, "type", "server_error");
		cJSON_AddNullToObject(e, "param");
		cJSON_AddNullToObject(e, "code");
		break;
	case 503:
		cJSON_AddStringToObject(e, "code", "ServiceUnavailable");
		cJSON_AddStringToObject(e, "message", "The service is temporarily "
		    "unable to process your request. Please try again later.");
		break;
	case 401:
		cJSON_AddStringToObject(e, "code", "401");
		cJSON_AddStringToObject(e, "message", "Access denied due to "
		    "invalid subscription key or wrong API endpoint. Make sure to "
		    "provide a valid key for an active subscription and use a "
		    "correct regional API endpoint for your resource.");
		break;
	case 404:
		cJSON_AddStringToObject(e, "code", "DeploymentNotFound");
		cJSON_AddStringToObject(e, "message", "The API deployment for "
		    "this resource does not exist. If you created the deployment "
		    "within the last 5 minutes, please wait a moment and try "
		    "again.");
		break;
	case 400:
		cJSON_AddStringToObject(e, "message", "Invalid request (simulated "
		    "fault)");
		cJSON_AddStringToObject(e, "type", "invalid_request_error");
		cJSON_AddNullToObject(e, "param");
		cJSON_AddStringToObject(e, "code", "invalid_request");
		break;
	default:
		{
			char code[16];

			snprintf(code, sizeof(code), "%d", f->status);
			cJSON_AddStringToObject(e, "code", code);
			cJSON_AddStringToObject(e, "message", "Simulated fault");
		}
	}
	sim_send_json_error(c, f->status, e, extra, n);
}

static void
sim_fault_cf_prompt(struct sim_conn *c)
{
	cJSON *e = cJSON_CreateObject(), *inner, *res;

	cJSON_AddStringToObject(e, "message", sim_cf_prompt_msg);
	cJSON_AddNullToObject(e, "type");
	cJSON_AddStringToObject(e, "param", "prompt");
	cJSON_AddStringToObject(e, "code", "content_filter");
	cJSON_AddNumberToObject(e, "status", 400);
	inner = cJSON_AddObjectToObject(e, "innererror");
	cJSON_AddStringToObject(inner, "code", "ResponsibleAIPolicyViolation");
	res = sim_filters(true, "violence");
	cJSON_AddItemToObject(inner, "content_filter_result", res);
	sim_send_json_error(c, 400, e, NULL, 0);
}

static void
sim_fault_context(struct sim_conn *c, long limit, long tokens)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "This model's maximum context length is %ld "
	    "tokens. However, your messages resulted in %ld tokens. Please "
	    "reduce the length of the messages.", limit, tokens);
	sim_send_openai_error(c, 400, msg, "invalid_request_error", "messages",
	    "context_length_exceeded");
}

/* ---- the handler ------------------------------------------------------- */

void
sim_chat(struct sim_conn *c, const struct sim_req *r, bool azure,
    const char *deployment)
{
	struct sim *s = c->sim;
	const char *key = http_header_get(r->http, "x-sim-key");
	const char *spec = r->fault_spec;
	const char *q = r->http->query, *api_version = NULL;
	const cJSON *messages, *m, *so;
	const struct sim_rule *rule = NULL;
	struct sim_answer ans;
	struct sim_fault f;
	struct buf *segs = NULL;
	size_t n_segs = 0, i;
	cJSON *req = NULL;
	struct err e;
	long count;
	bool stream, include_usage;
	char id[40];
	const char *model;
	uint64_t h;
	time_t created = time(NULL);
	char *big = NULL;

	count = sim_count_key(s, key);
	if (sim_check_auth(c, r, s->api_key, !azure) != 0)
		return;
	if (q != NULL) {
		const char *v = strstr(q, "api-version=");

		if (v != NULL)
			api_version = arena_strndup(r->arena, v + 12,
			    strcspn(v + 12, "&"));
	}
	req = cJSON_ParseWithLength(r->body, r->body_len);
	if (!cJSON_IsObject(req)) {
		sim_send_openai_error(c, 400, "We could not parse the JSON body of "
		    "your request. (HINT: This likely means you aren't using your "
		    "HTTP library correctly. The OpenAI API expects a JSON payload, "
		    "but what was sent was not valid JSON.)",
		    "invalid_request_error", NULL, NULL);
		goto out;
	}
	messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
	if (!cJSON_IsArray(messages) || messages->child == NULL) {
		sim_send_openai_error(c, 400, "'messages' is a required property",
		    "invalid_request_error", "messages", NULL);
		goto out;
	}
	cJSON_ArrayForEach(m, messages)
		if (json_s(m, "role") == NULL) {
			sim_send_openai_error(c, 400, "'role' is a required property "
			    "of every message", "invalid_request_error", "messages",
			    NULL);
			goto out;
		}
	/* the rule for a fault: the same matching as for replies */
	if (spec == NULL && s->n_rules > 0) {
		const char *user = NULL, *system = NULL, *role;

		cJSON_ArrayForEach(m, messages) {
			role = json_s(m, "role");
			if (strcmp(role, "user") == 0)
				user = msg_text(r->arena, m);
			else if (strcmp(role, "system") == 0 && system == NULL)
				system = msg_text(r->arena, m);
		}
		rule = sim_rule_find(s, user, system, deployment);
		if (rule != NULL && rule->fault != NULL)
			spec = rule->fault;
	}
	if (sim_fault_parse(spec, &f, &e) != 0) {
		sim_send_openai_error(c, 400, e.msg, "invalid_request_error",
		    "x-sim-fault", "sim_bad_fault");
		goto out;
	}
	if (f.times > 0 && count > f.times)
		f.kind = SIM_FAULT_NONE;
	sim_sleep_ms(s->latency_ms + f.latency_ms);

	stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
	so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
	include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so,
	    "include_usage"));
	if (stream) {
		pthread_mutex_lock(&s->lock);
		s->stream_requests++;
		pthread_mutex_unlock(&s->lock);
	}

	switch (f.kind) {
	case SIM_FAULT_STATUS:
		sim_fault_status(c, &f, api_version);
		goto out;
	case SIM_FAULT_HANG:
		sim_hang(c, f.hang_ms);
		goto out;
	case SIM_FAULT_RESET:
		{
			struct linger lg = { 1, 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			c->close = true;
		}
		goto out;
	case SIM_FAULT_CF_PROMPT:
		sim_fault_cf_prompt(c);
		goto out;
	default:
		break;
	}

	sim_decide(s, req, deployment, f.kind == SIM_FAULT_CF_COMPLETION,
	    r->arena, &ans);
	if (f.kind == SIM_FAULT_CONTEXT || ans.prompt_tokens > s->context_limit) {
		sim_fault_context(c, s->context_limit,
		    f.kind == SIM_FAULT_CONTEXT && ans.prompt_tokens <=
		    s->context_limit ? s->context_limit + ans.prompt_tokens :
		    ans.prompt_tokens);
		goto out;
	}
	if (f.kind == SIM_FAULT_OVERSIZED && !stream) {
		big = xmalloc((size_t)f.bytes + 1);
		memset(big, 'x', (size_t)f.bytes);
		big[f.bytes] = '\0';
		ans.content = big;
		ans.tool_name = NULL;
	}
	h = sim_fnv1a(r->body, r->body_len);
	snprintf(id, sizeof(id), "chatcmpl-sim%016llx", (unsigned long long)h);
	model = azure ? s->model_name : (json_s(req, "model") ?
	    json_s(req, "model") : s->model_name);

	if (stream) {
		segs = sim_stream_frames(&ans, azure, id, model, created,
		    include_usage, f.kind == SIM_FAULT_OVERSIZED ? f.bytes : 0,
		    &n_segs);
		if (f.kind == SIM_FAULT_MALFORMED && n_segs > 2) {
			/* a frame whose JSON breaks off */
			buf_reset(&segs[1]);
			buf_puts(&segs[1], "data: {\"choices\":[{\"delta\":"
			    "{\"content\":\"brok\n\n");
		}
		sim_deliver(c, 200, "text/event-stream", true, segs, n_segs, &f,
		    NULL, 0);
	} else {
		char *body = sim_body_json(&ans, azure, id, model, created);
		struct buf one;

		buf_init(&one);
		if (f.kind == SIM_FAULT_MALFORMED)
			buf_append(&one, body, strlen(body) * 3 / 5);
		else
			buf_puts(&one, body);
		free(body);
		segs = xmalloc(sizeof(*segs));
		segs[0] = one;
		n_segs = 1;
		sim_deliver(c, 200, "application/json", false, segs, n_segs, &f,
		    NULL, 0);
	}
out:
	for (i = 0; i < n_segs; i++)
		buf_free(&segs[i]);
	free(segs);
	free(big);
	cJSON_Delete(req);
}
