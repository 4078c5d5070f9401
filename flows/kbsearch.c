/*
 * kbsearch.c -- ing_kb_search and ing_kb_backend: the knowledge-base
 * policy of the reference's knowledge-base-agent (reference §5.2, the
 * KB_POLICY rewrite) on top of the context's knowledge-base service
 * (flows/ctx.h: the local knowledge base in PostgreSQL and Azure AI
 * Search), and the texts the reference shows for what was found.
 *
 * Policies (kb.policy, KB_POLICY):
 *   local_only    the local knowledge base only;
 *   prefer_local  local first; Azure when the local one found nothing and
 *                 kb.fallback_on_empty is set;
 *   prefer_azure  Azure first; local when Azure is not configured or
 *                 fails, or (kb.fallback_on_empty) found nothing;
 *   azure_only    Azure only: not configured or failing fails the search
 *                 with the reason (the reference's PreflightError).
 * Azure is "configured" when azure_search_services[0] has an endpoint and
 * credentials (not the reference's mock key); every Azure search first
 * checks the index (its document count: the reference's preflight).
 *
 * Where the reference names its local store ChromaDB, this one names
 * PostgreSQL ("Found relevant information from PostgreSQL:", "local
 * PostgreSQL"); every other text is the reference's.  A search runs in a
 * scratch arena and copies its result into the turn's memory under the
 * context's lock, so the tool callbacks of parallel calls may search at
 * once.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/json.h"

#define KBS_AZURE "Azure AI Search"
#define KBS_LOCAL "local PostgreSQL"
#define KBS_LOCAL_SHORT "PostgreSQL"    /* the reference's "ChromaDB" */
#define KBS_TOPK_MAX 1000               /* a request's kb_top_k above is cut */
#define KBS_NO_INFO "No relevant information found in "

/* One search: the context, the query and what it has found so far. */
struct kbs {
	struct ing_ctx *ctx;
	const struct ctx_kb_service *kb;
	const char *query;
	int top_k;
	struct arena *scratch;
	struct ing_kb_result *out;
	/* the failure that ended the search (azure_only), for ing_error */
	int fail_status;
	char fail_msg[ERR_MSG_MAX + 128];
};

/* ---- settings ------------------------------------------------------------- */

/* A positive integer the way the reference reads one: a JSON integer > 0
 * or a string of digits (blanks around allowed); 0 otherwise. */
static int
kbs_positive(const cJSON *v)
{
	const char *s;
	char *end;
	long n;

	if (cJSON_IsNumber(v)) {
		if (v->valuedouble < 1 || v->valuedouble != (double)(long)v->valuedouble)
			return 0;
		n = (long)v->valuedouble;
	} else if (cJSON_IsString(v)) {
		s = v->valuestring;
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (*s < '0' || *s > '9')
			return 0;
		n = strtol(s, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
			end++;
		if (*end != '\0' || n < 1)
			return 0;
	} else {
		return 0;
	}
	return n > KBS_TOPK_MAX ? KBS_TOPK_MAX : (int)n;
}

/* The request's kb_top_k, top_k or search_top_k: the body's members first,
 * then those of its "parameters" (the reference's order); 0 when none. */
static int
kbs_request_top_k(struct ing_ctx *ctx)
{
	static const char *const names[] = { "kb_top_k", "top_k", "search_top_k" };
	const cJSON *body = ctx->turn.body, *params;
	size_t i;
	int n;

	if (!cJSON_IsObject(body))
		return 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((n = kbs_positive(cJSON_GetObjectItemCaseSensitive(body,
		    names[i]))) > 0)
			return n;
	params = cJSON_GetObjectItemCaseSensitive(body, "parameters");
	if (!cJSON_IsObject(params))
		return 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((n = kbs_positive(cJSON_GetObjectItemCaseSensitive(params,
		    names[i]))) > 0)
			return n;
	return 0;
}

static bool
kbs_policy_is(const struct ing_ctx *ctx, const char *policy)
{
	return ctx->cfg->kb.policy != NULL && strcmp(ctx->cfg->kb.policy, policy) == 0;
}

/* ---- results -------------------------------------------------------------- */

/* The first `cap` characters of s (cap 0: all), in the scratch arena. */
static const char *
kbs_cap(struct kbs *k, const char *s, int cap)
{
	size_t len, n;

	if (s == NULL || cap <= 0)
		return s;
	len = strlen(s);
	n = json_utf8_prefix(s, len, (size_t)cap);
	return n < len ? arena_strndup(k->scratch, s, n) : s;
}

/* A score the way Python prints a float: the shortest text that reads back
 * as the same double. */
static void
kbs_score(char *dst, size_t size, double v)
{
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(dst, size, "%.*g", prec, v);
		if (strtod(dst, NULL) == v)
			break;
	}
	if (strchr(dst, '.') == NULL && strchr(dst, 'e') == NULL &&
	    strchr(dst, 'n') == NULL && strlen(dst) + 2 < size)
		strcat(dst, ".0");
}

/* Copy the hits and the text into the turn's memory (under its lock). */
static void
kbs_publish(struct kbs *k, const char *backend, const struct ing_kb_hit *hits,
    size_t n, const char *text)
{
	struct ing_kb_hit *copy = NULL;
	size_t i;

	if (n > 0) {
		copy = ing_alloc(k->ctx, n * sizeof(*copy));
		for (i = 0; i < n; i++) {
			copy[i].source = ing_strdup(k->ctx, hits[i].source);
			copy[i].content = ing_strdup(k->ctx, hits[i].content);
			copy[i].snippet = hits[i].snippet != NULL ?
			    ing_strdup(k->ctx, hits[i].snippet) : NULL;
			copy[i].score = hits[i].score;
		}
	}
	k->out->backend = backend;
	k->out->hits = copy;
	k->out->n_hits = n;
	k->out->text = ing_strdup(k->ctx, text);
}

/* A search that found nothing: the reference's text. */
static void
kbs_publish_none(struct kbs *k, const char *backend, const char *store)
{
	char *text = arena_sprintf(k->scratch, KBS_NO_INFO "%s for query: %s",
	    store, k->query);

	kbs_publish(k, backend, NULL, 0, text);
}

/* ---- the local knowledge base ---------------------------------------------- */

/* A database that is down fails the turn (it could not be stored either);
 * any other failure is the reference's "Search error: ..." answer. */
static int
kbs_local_failed(struct kbs *k, const struct err *e)
{
	if (e->status == 503) {
		k->fail_status = 503;
		snprintf(k->fail_msg, sizeof(k->fail_msg),
		    "knowledge base search failed: %s", e->msg);
		return -1;
	}
	ing_log(k->ctx, ING_LOG_ERROR, "local knowledge base search failed: %s",
	    e->msg);
	kbs_publish(k, KBS_LOCAL, NULL, 0,
	    arena_sprintf(k->scratch, "Search error: %s", e->msg));
	return 0;
}

/* What an empty local knowledge base says: the folder the server indexes
 * does not exist, or holds nothing. */
static void
kbs_local_empty(struct kbs *k)
{
	const char *dir = k->kb->local_directory != NULL ?
	    k->kb->local_directory(k->ctx->svc->arg) : NULL;
	struct stat st;
	size_t len;

	if (dir != NULL && dir[0] != '\0' &&
	    (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		len = strlen(dir);
		kbs_publish(k, KBS_LOCAL, NULL, 0, arena_sprintf(k->scratch,
		    "Error: Knowledge base directory is empty. Please add "
		    "documents to %s%s", dir, dir[len - 1] == '/' ? "" : "/"));
		return;
	}
	kbs_publish(k, KBS_LOCAL, NULL, 0,
	    "Error: No documents found in knowledge base directory");
}

/* Search the local knowledge base: 0 with the result published, -1 when
 * the database is unavailable (k->fail_*). */
static int
kbs_local(struct kbs *k)
{
	void *arg = k->ctx->svc->arg;
	struct ctx_kb_hit *hits;
	struct ing_kb_hit *out;
	struct buf b = BUF_INIT;
	struct err e;
	long chunks;
	int n, i;

	err_clear(&e);
	n = k->kb->local_search(arg, k->query, k->top_k, k->scratch, &hits, &e);
	if (n < 0)
		return kbs_local_failed(k, &e);
	if (n == 0) {
		err_clear(&e);
		if (k->kb->local_count(arg, &chunks, &e) != 0)
			return kbs_local_failed(k, &e);
		if (chunks == 0)
			kbs_local_empty(k);
		else
			kbs_publish_none(k, KBS_LOCAL, KBS_LOCAL_SHORT);
		return 0;
	}
	out = arena_alloc(k->scratch, (size_t)n * sizeof(*out));
	buf_puts(&b, "Found relevant information from " KBS_LOCAL_SHORT ":\n\n");
	for (i = 0; i < n; i++) {
		out[i] = (struct ing_kb_hit){
			.source = hits[i].chunk >= 0 ? arena_sprintf(k->scratch,
			    "%s#%d", hits[i].source, hits[i].chunk) : hits[i].source,
			.content = hits[i].content != NULL ? hits[i].content : "",
			.snippet = hits[i].snippet,
			.score = hits[i].score,
		};
		if (i > 0)
			buf_puts(&b, "\n\n");
		buf_puts(&b, out[i].content);
	}
	kbs_publish(k, KBS_LOCAL, out, (size_t)n, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

/* ---- Azure AI Search --------------------------------------------------------- */

enum kbs_azure {
	KBS_AZURE_DONE,         /* published */
	KBS_AZURE_EMPTY,        /* found nothing (published too) */
	KBS_AZURE_FAILED,       /* k->fail_* says why; nothing published */
};

static enum kbs_azure
kbs_azure_fail(struct kbs *k, int status, const char *reason, const char *detail)
{
	k->fail_status = status;
	snprintf(k->fail_msg, sizeof(k->fail_msg),
	    "knowledge base search failed: azure_search %s: %s", reason, detail);
	return KBS_AZURE_FAILED;
}

/* The Azure hit as the reference prints it:
 * "[i] <title|id> (score=<score>)\n<snippet>\n<content>". */
static void
kbs_azure_format(struct kbs *k, struct buf *b, int i, const struct ctx_kb_hit *h,
    struct ing_kb_hit *out)
{
	int cap = k->ctx->cfg->kb.azure_snippet_cap;
	const char *title = h->title != NULL && h->title[0] != '\0' ? h->title :
	    h->source != NULL && h->source[0] != '\0' ? h->source :
	    arena_sprintf(k->scratch, "Source %d", i + 1);
	const char *snippet = kbs_cap(k, h->snippet != NULL ? h->snippet : "", cap);
	const char *content = kbs_cap(k, h->content != NULL ? h->content : "", cap);
	char score[32];

	kbs_score(score, sizeof(score), h->score);
	if (i > 0)
		buf_puts(b, "\n\n---\n\n");
	buf_printf(b, "[%d] %s (score=%s)\n", i + 1, title, score);
	if (snippet[0] != '\0')
		buf_puts(b, snippet);
	if (content[0] != '\0' && strcmp(content, snippet) != 0) {
		if (snippet[0] != '\0')
			buf_putc(b, '\n');
		buf_puts(b, content);
	}
	*out = (struct ing_kb_hit){
		.source = title,
		.content = content,
		.snippet = snippet[0] != '\0' ? snippet : NULL,
		.score = h->score,
	};
}

/* Check the index, then search it. */
static enum kbs_azure
kbs_azure(struct kbs *k)
{
	void *arg = k->ctx->svc->arg;
	const char *index = NULL, *missing = NULL;
	struct ctx_kb_hit *hits;
	struct ing_kb_hit *out;
	struct buf b = BUF_INIT;
	struct err e;
	long count;
	int n, i;

	switch (k->kb->azure_state(arg, &index, &missing)) {
	case CTX_AZURE_OK:
		break;
	case CTX_AZURE_NOT_CONFIGURED:
		return kbs_azure_fail(k, 503, "not_configured",
		    "Azure Search service missing (azure_search_services[0]).");
	case CTX_AZURE_INCOMPLETE:
		return kbs_azure_fail(k, 503, "incomplete_config",
		    arena_sprintf(k->scratch, "azure_search_services[0].%s is not set",
		    missing != NULL ? missing : "endpoint"));
	}
	err_clear(&e);
	if (k->kb->azure_count(arg, &count, &e) != 0)
		return kbs_azure_fail(k, e.status != 0 ? e.status : 502,
		    "preflight_failed", e.msg);
	err_clear(&e);
	n = k->kb->azure_search(arg, k->query, k->top_k, k->scratch, &hits, &e);
	if (n < 0)
		return kbs_azure_fail(k, e.status != 0 ? e.status : 502,
		    "provider_failed", e.msg);
	if (n == 0) {
		kbs_publish_none(k, KBS_AZURE, KBS_AZURE);
		return KBS_AZURE_EMPTY;
	}
	out = arena_alloc(k->scratch, (size_t)n * sizeof(*out));
	buf_puts(&b, "Found relevant information from " KBS_AZURE ":\n\n");
	for (i = 0; i < n; i++)
		kbs_azure_format(k, &b, i, &hits[i], &out[i]);
	kbs_publish(k, KBS_AZURE, out, (size_t)n, buf_cstr(&b));
	buf_free(&b);
	(void)index;
	return KBS_AZURE_DONE;
}

/* Azure is worth asking: configured at all (an incomplete configuration
 * is asked, and fails its preflight with the missing field named). */
static bool
kbs_azure_usable(struct ing_ctx *ctx)
{
	const struct ctx_kb_service *kb = ctx->svc->kb;
	const char *index = NULL, *missing = NULL;

	return kb != NULL && kb->azure_state != NULL &&
	    kb->azure_state(ctx->svc->arg, &index, &missing) != CTX_AZURE_NOT_CONFIGURED;
}

/* ---- the policy -------------------------------------------------------------- */

static int
kbs_run(struct kbs *k)
{
	struct ing_ctx *ctx = k->ctx;
	bool fallback_on_empty = ctx->cfg->kb.fallback_on_empty;
	bool azure_only = kbs_policy_is(ctx, "azure_only");
	bool azure, attempt;
	enum kbs_azure r;

	if (kbs_policy_is(ctx, "local_only"))
		return kbs_local(k);
	azure = kbs_azure_usable(ctx);
	if (kbs_policy_is(ctx, "prefer_local")) {
		if (kbs_local(k) != 0)
			return -1;
		if (!fallback_on_empty || k->out->text == NULL ||
		    strncmp(k->out->text, KBS_NO_INFO, strlen(KBS_NO_INFO)) != 0)
			return 0;
		attempt = azure;        /* the local one found nothing */
	} else {
		/* azure_only, prefer_azure, and anything else (the configuration
		 * accepts no other value) */
		attempt = azure;
	}
	if (attempt) {
		r = kbs_azure(k);
		if (r == KBS_AZURE_DONE)
			return 0;
		if (r == KBS_AZURE_EMPTY) {
			if (!(kbs_policy_is(ctx, "prefer_azure") && fallback_on_empty))
				return 0;
			ing_log(ctx, ING_LOG_WARNING, "Azure returned no results; "
			    "falling back to " KBS_LOCAL_SHORT " (KB_FALLBACK_ON_EMPTY=1).");
			return kbs_local(k);
		}
		if (azure_only)
			return -1;
		ing_log(ctx, ING_LOG_WARNING, "%s; falling back to " KBS_LOCAL_SHORT ".",
		    k->fail_msg);
		k->fail_status = 0;
	}
	if (!azure_only)
		return kbs_local(k);
	kbs_azure_fail(k, 503, "policy", "Azure Search is required for knowledge "
	    "base retrieval and must not fall back to local stores (KB_POLICY="
	    "azure_only): configure azure_search_services[0] (endpoint and key) "
	    "or set KB_POLICY to prefer_azure, prefer_local or local_only.");
	return -1;
}

int
ing_kb_search(struct ing_ctx *ctx, const char *query, int top_k, int mode,
    struct ing_kb_result *out)
{
	struct kbs k;
	int rc;

	memset(out, 0, sizeof(*out));
	if (ctx->svc->kb == NULL)
		return ing_error(ctx, 503, "knowledge base search failed: this "
		    "server has no knowledge base service");
	if (query == NULL)
		query = "";
	if (top_k <= 0)
		top_k = kbs_request_top_k(ctx);
	if (top_k <= 0)
		top_k = mode == ING_KB_ASSIST ? ctx->cfg->kb.topk_assist :
		    ctx->cfg->kb.topk_direct;
	if (top_k <= 0)
		top_k = mode == ING_KB_ASSIST ? 5 : 3;
	if (top_k > KBS_TOPK_MAX)
		top_k = KBS_TOPK_MAX;
	memset(&k, 0, sizeof(k));
	k.ctx = ctx;
	k.kb = ctx->svc->kb;
	k.query = query;
	k.top_k = top_k;
	k.out = out;
	k.scratch = arena_create(0);
	out->top_k = top_k;
	rc = kbs_run(&k);
	arena_destroy(k.scratch);
	if (rc != 0) {
		memset(out, 0, sizeof(*out));
		out->top_k = top_k;
		ing_log(ctx, ING_LOG_WARNING, "%s", k.fail_msg);
		return ing_error(ctx, k.fail_status != 0 ? k.fail_status : 503,
		    "%s", k.fail_msg);
	}
	return 0;
}

const char *
ing_kb_backend(struct ing_ctx *ctx)
{
	if (kbs_policy_is(ctx, "local_only") || kbs_policy_is(ctx, "prefer_local"))
		return KBS_LOCAL;
	if (kbs_policy_is(ctx, "prefer_azure") && !kbs_azure_usable(ctx))
		return KBS_LOCAL;
	return KBS_AZURE;
}

const char *
ing_kb_mode(struct ing_ctx *ctx)
{
	return ctx->cfg->kb.mode != NULL && strcmp(ctx->cfg->kb.mode, "assist") == 0 ?
	    "assist" : "direct";
}
