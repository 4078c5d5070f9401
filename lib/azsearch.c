/*
 * azsearch.c -- the Azure AI Search REST client: a service's settings
 * checked, the $count of an index, a query with its hits parsed, and the
 * mapping of the service's failures to client statuses (docs/azure-search.md).
 *
 * It owns the process-wide token cache of the search scope and nothing else:
 * curl handles are borrowed from the language-model client's idle list
 * (lib/llm_parts.h), memory of results
 * is the caller's arena.  It never logs or returns the api-key, a token or a
 * query text, and never waits past cfg->llm.timeout_ms.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "lib/azsearch.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/llm.h"
#include "lib/llm_parts.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define AZS_ACTION            "while calling azure search"
#define AZS_DEADLINE_SLACK_MS 5     /* a timeout this close to the deadline spent it */
#define AZS_MAX_NAME          128   /* bytes of an index name in a message */

/* The bearer tokens of every search service of the process. */
static pthread_once_t azs_tokens_once = PTHREAD_ONCE_INIT;
static struct llm_token_cache *azs_tokens;

static void
azs_tokens_init(void)
{
	azs_tokens = llm_token_cache_create();
}

/* cJSON and curl_escape return NULL when out of memory: abort like
 * lib/xmalloc.c does (the master replaces the worker). */
static void
azs_oom(void)
{
	log_error(AZS_ACTION, "out of memory");
	abort();
}

static bool
str_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* ---- settings ------------------------------------------------------------ */

static bool
uses_key(const struct config_search *svc)
{
	return str_empty(svc->authentication_method) ||
	    strcasecmp(svc->authentication_method, "token") == 0;
}

enum azs_config_state
azs_config_check(const struct config_search *svc, const char *default_index,
    const char **index, const char **missing)
{
	const char *am, *dummy;

	if (missing == NULL)
		missing = &dummy;
	if (index != NULL)
		*index = svc != NULL && !str_empty(svc->index_name) ?
		    svc->index_name : !str_empty(default_index) ? default_index :
		    AZS_FALLBACK_INDEX;
	*missing = NULL;
	if (svc == NULL || (str_empty(svc->endpoint) && str_empty(svc->key)) ||
	    (svc->key != NULL && strcmp(svc->key, AZS_MOCK_KEY) == 0)) {
		*missing = "endpoint";
		return AZS_NOT_CONFIGURED;
	}
	if (str_empty(svc->endpoint) ||
	    (strncasecmp(svc->endpoint, "http://", 7) != 0 &&
	    strncasecmp(svc->endpoint, "https://", 8) != 0)) {
		*missing = "endpoint";
		return AZS_INCOMPLETE;
	}
	am = svc->authentication_method;
	if (uses_key(svc)) {
		if (str_empty(svc->key)) {
			*missing = "key";
			return AZS_INCOMPLETE;
		}
	} else if (strcasecmp(am, "client_id_and_secret") == 0) {
		/* tenant_id may come from azure_identity.tenant_id */
		if (str_empty(svc->client_id)) {
			*missing = "client_id";
			return AZS_INCOMPLETE;
		}
		if (str_empty(svc->client_secret)) {
			*missing = "client_secret";
			return AZS_INCOMPLETE;
		}
	}
	return AZS_OK;
}

/* ---- the pure parts --------------------------------------------------------- */

size_t
azs_utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	/* back off continuation bytes (10xxxxxx) to a character's start */
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static int
clamp_top(int top)
{
	return top < 1 ? 1 : top > AZS_MAX_TOP ? AZS_MAX_TOP : top;
}

char *
azs_build_query(const struct config_search *svc, const char *query, int top,
    struct arena *a)
{
	cJSON *root = cJSON_CreateObject();
	const char *q = query != NULL ? query : "";
	char *cut, *text, *out;

	cut = arena_strndup(a, q, azs_utf8_cut(q, AZS_MAX_QUERY_BYTES));
	cJSON_AddStringToObject(root, "search", cut);
	cJSON_AddNumberToObject(root, "top", clamp_top(top));
	if (svc != NULL && !str_empty(svc->semantic_configuration)) {
		cJSON_AddStringToObject(root, "queryType", "semantic");
		cJSON_AddStringToObject(root, "semanticConfiguration",
		    svc->semantic_configuration);
		cJSON_AddStringToObject(root, "captions", "extractive");
	}
	text = cJSON_PrintUnformatted(root);
	if (text == NULL)
		azs_oom();
	out = arena_strdup(a, text);
	cJSON_free(text);
	cJSON_Delete(root);
	return out;
}

static const char *
field_str(const cJSON *doc, const char *name, struct arena *a)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);

	if (cJSON_IsString(v))
		return arena_strdup(a, v->valuestring);
	if (cJSON_IsNumber(v))
		return arena_sprintf(a, "%.17g", v->valuedouble);
	return NULL;
}

static double
field_num(const cJSON *doc, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The document's own fields (no @search.* annotations) as JSON text. */
static const char *
doc_text(const cJSON *doc, struct arena *a)
{
	cJSON *copy = cJSON_CreateObject();
	const cJSON *f;
	char *text;
	const char *out;

	cJSON_ArrayForEach(f, doc)
		if (f->string != NULL && strncmp(f->string, "@search.", 8) != 0)
			cJSON_AddItemToObject(copy, f->string,
			    cJSON_Duplicate(f, 1));
	text = cJSON_PrintUnformatted(copy);
	if (text == NULL)
		azs_oom();
	out = arena_strdup(a, text);
	cJSON_free(text);
	cJSON_Delete(copy);
	return out;
}

/* A semantic caption's text, else the first highlight, else NULL. */
static const char *
doc_snippet(const cJSON *doc, struct arena *a)
{
	const cJSON *caps, *c, *hl, *f, *s;

	caps = cJSON_GetObjectItemCaseSensitive(doc, "@search.captions");
	cJSON_ArrayForEach(c, caps) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "text");

		if (cJSON_IsString(t) && *t->valuestring != '\0')
			return arena_strdup(a, t->valuestring);
	}
	hl = cJSON_GetObjectItemCaseSensitive(doc, "@search.highlights");
	cJSON_ArrayForEach(f, hl)
		cJSON_ArrayForEach(s, f)
			if (cJSON_IsString(s) && *s->valuestring != '\0')
				return arena_strdup(a, s->valuestring);
	return NULL;
}

int
azs_parse_hits(const char *body, size_t len, int top, struct arena *a,
    struct azs_hit **hits, struct err *e)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *value, *doc;
	struct azs_hit *h;
	int n = 0, cap;

	*hits = NULL;
	value = cJSON_GetObjectItemCaseSensitive(root, "value");
	if (!cJSON_IsArray(value)) {
		cJSON_Delete(root);
		return err_set(e, 502, "azure search: the reply is not a search "
		    "result (no \"value\" list)");
	}
	cap = cJSON_GetArraySize(value);
	if (cap > clamp_top(top))
		cap = clamp_top(top);
	h = arena_zalloc(a, (size_t)(cap > 0 ? cap : 1) * sizeof(*h));
	cJSON_ArrayForEach(doc, value) {
		const char *content;

		if (n >= cap)
			break;
		if (!cJSON_IsObject(doc)) {
			cJSON_Delete(root);
			return err_set(e, 502, "azure search: result %d of the reply "
			    "is not a document", n);
		}
		h[n].id = field_str(doc, "id", a);
		if (h[n].id == NULL)
			h[n].id = "";
		h[n].title = field_str(doc, "title", a);
		content = field_str(doc, "content", a);
		h[n].content = content != NULL ? content : doc_text(doc, a);
		h[n].snippet = doc_snippet(doc, a);
		h[n].score = field_num(doc, "@search.score");
		h[n].reranker_score = field_num(doc, "@search.rerankerScore");
		n++;
	}
	cJSON_Delete(root);
	*hits = h;
	return n;
}

int
azs_parse_count(const char *body, size_t len, long *count, struct err *e)
{
	char tmp[32], *end;
	size_t i = 0, j;
	long v;

	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && strchr(" \t\r\n", body[i]) != NULL && body[i] != '\0')
		i++;
	j = len;
	while (j > i && strchr(" \t\r\n", body[j - 1]) != NULL &&
	    body[j - 1] != '\0')
		j--;
	if (j == i || j - i >= sizeof(tmp) || body[i] < '0' || body[i] > '9')
		return err_set(e, 502, "azure search: the document count is not a "
		    "number");
	memcpy(tmp, body + i, j - i);
	tmp[j - i] = '\0';
	errno = 0;
	v = strtol(tmp, &end, 10);
	if (*end != '\0' || errno != 0 || v < 0)
		return err_set(e, 502, "azure search: the document count is not a "
		    "number");
	*count = v;
	return 0;
}

/* ---- one call with retries ------------------------------------------------ */

/* What one attempt saw. */
struct azs_attempt {
	struct buf body;
	size_t max_bytes;
	bool oversized;
	long retry_after_ms;        /* -1 = absent */
};

enum azs_outcome {
	AZS_OUTCOME_OK = 0,
	AZS_OUTCOME_FAIL,           /* final: e is set */
	AZS_OUTCOME_RETRY,          /* retryable: e is set to the status if it is the last */
	AZS_OUTCOME_TIMEOUT,        /* the call's budget is spent: 504 */
};

static size_t
attempt_header(char *p, size_t size, size_t n, void *arg)
{
	struct azs_attempt *at = arg;
	size_t len = size * n, vlen, name_len;
	const char *v;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		at->retry_after_ms = -1;    /* a new response (after 100 Continue) */
		return len;
	}
	v = memchr(p, ':', len);
	if (v == NULL)
		return len;
	name_len = (size_t)(v - p);
	vlen = len - name_len - 1;
	v++;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	    v[vlen - 1] == ' '))
		vlen--;
	(void)llm_retry_after_header(p, name_len, v, vlen, &at->retry_after_ms);
	return len;
}

static size_t
attempt_write(char *p, size_t size, size_t n, void *arg)
{
	struct azs_attempt *at = arg;
	size_t len = size * n;

	if (buf_rlen(&at->body) + len > at->max_bytes) {
		at->oversized = true;
		return 0;
	}
	buf_append(&at->body, p, len);
	return len;
}

/* The request of one call, as azs_count and azs_search describe it. */
struct azs_call {
	const struct config *cfg;
	const struct config_search *svc;
	const char *index;
	const char *url;
	const char *body;           /* NULL = GET */
	const char *accept;
};

static const char *
svc_name(const struct config_search *svc)
{
	return !str_empty(svc->service) ? svc->service : "(unnamed)";
}

/* Map a non-2xx status to the caller's view. */
static enum azs_outcome
classify_status(const struct azs_call *call, long status, const char *bearer,
    struct err *e)
{
	if (status == 401 || status == 403) {
		if (bearer != NULL)
			llm_token_invalidate(azs_tokens, bearer);
		err_set(e, 502, "azure search: the service refused the "
		    "credentials (HTTP %ld)", status);
		return AZS_OUTCOME_FAIL;
	}
	if (status == 404) {
		err_set(e, 502, "azure search: index \"%.*s\" not found (HTTP 404)",
		    AZS_MAX_NAME, call->index);
		return AZS_OUTCOME_FAIL;
	}
	if (status == 429) {
		err_set(e, 503, "azure search: the service is rate limiting "
		    "(HTTP 429)");
		return AZS_OUTCOME_RETRY;
	}
	if (status == 503) {
		err_set(e, 503, "azure search: the service is unavailable "
		    "(HTTP 503)");
		return AZS_OUTCOME_RETRY;
	}
	if (status >= 500) {
		err_set(e, 502, "azure search: the service failed (HTTP %ld)",
		    status);
		return AZS_OUTCOME_RETRY;
	}
	err_set(e, 502, "azure search: the service rejected the request "
	    "(HTTP %ld)", status);
	return AZS_OUTCOME_FAIL;
}

static enum azs_outcome
attempt_run(const struct azs_call *call, struct llm_handles *h,
    int64_t deadline, struct azs_attempt *at, long *status_out, struct err *e)
{
	const struct config_search *svc = call->svc;
	struct curl_slist *hdrs = NULL;
	char *bearer = NULL, *line = NULL;
	enum azs_outcome out = AZS_OUTCOME_FAIL;
	int64_t remaining = deadline - clock_now_ms();
	CURLcode rc;
	long status = 0;

	*status_out = 0;
	if (remaining <= 0) {
		err_set(e, 504, "azure search: the service did not answer in time");
		return AZS_OUTCOME_TIMEOUT;
	}
	if (call->body != NULL)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, call->accept);
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (uses_key(svc)) {
		line = xasprintf("api-key: %s", svc->key ? svc->key : "");
	} else {
		struct llm_credential cr;
		char subject[AZS_MAX_NAME + 32];

		pthread_once(&azs_tokens_once, azs_tokens_init);
		snprintf(subject, sizeof(subject), "search service %.*s",
		    AZS_MAX_NAME, svc_name(svc));
		memset(&cr, 0, sizeof(cr));
		cr.method = svc->authentication_method;
		cr.client_id = svc->client_id;
		cr.client_secret = svc->client_secret;
		cr.tenant_id = svc->tenant_id;
		cr.scope = AZS_SCOPE;
		cr.resource = AZS_RESOURCE;
		cr.service = "azure search";
		cr.subject = subject;
		cr.action = AZS_ACTION;
		bearer = llm_token_get(azs_tokens, call->cfg, NULL, &cr, h->easy,
		    deadline, e);
		if (bearer == NULL) {
			out = e->status == 504 ? AZS_OUTCOME_TIMEOUT :
			    AZS_OUTCOME_FAIL;
			goto out;
		}
		line = xasprintf("Authorization: Bearer %s", bearer);
	}
	hdrs = curl_slist_append(hdrs, line);

	remaining = deadline - clock_now_ms();
	if (remaining <= 0) {
		err_set(e, 504, "azure search: the service did not answer in time");
		out = AZS_OUTCOME_TIMEOUT;
		goto out;
	}
	llm_easy_setup(call->cfg, h->easy, NULL, remaining);
	curl_easy_setopt(h->easy, CURLOPT_URL, call->url);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, hdrs);
	if (call->body != NULL)
		curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, call->body);
	else
		curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, attempt_header);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, at);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, attempt_write);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, at);

	rc = llm_handles_perform(h);
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	*status_out = status;
	if (at->oversized) {
		err_set(e, 502, "azure search: the reply is larger than %zu bytes",
		    at->max_bytes);
		goto out;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		if (clock_now_ms() >= deadline - AZS_DEADLINE_SLACK_MS) {
			err_set(e, 504, "azure search: the service did not answer "
			    "in time");
			out = AZS_OUTCOME_TIMEOUT;
		} else {
			/* the connect timeout fired with time to spare */
			err_set(e, 503, "azure search: could not connect to the "
			    "service: %s", curl_easy_strerror(rc));
			out = AZS_OUTCOME_RETRY;
		}
		goto out;
	}
	if (rc != CURLE_OK) {
		bool tls = rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CACERT_BADFILE;
		bool connect = rc == CURLE_COULDNT_CONNECT ||
		    rc == CURLE_COULDNT_RESOLVE_HOST ||
		    rc == CURLE_COULDNT_RESOLVE_PROXY;

		if (connect)
			err_set(e, 503, "azure search: could not connect to the "
			    "service: %s", curl_easy_strerror(rc));
		else
			err_set(e, 502, "azure search: could not %s the service: %s",
			    status ? "read the reply of" : "reach",
			    curl_easy_strerror(rc));
		out = tls ? AZS_OUTCOME_FAIL : AZS_OUTCOME_RETRY;
		goto out;
	}
	if (status == 200) {
		out = AZS_OUTCOME_OK;
		goto out;
	}
	out = classify_status(call, status, bearer, e);
out:
	curl_slist_free_all(hdrs);
	llm_secret_free(line);
	llm_secret_free(bearer);
	return out;
}

/*
 * Run `call` with retries; on success the 200 body is copied into `a`
 * (*body, *len).  Returns 0 or -1 with e set.
 */
static int
azs_call_run(const struct azs_call *call, struct arena *a, char **body,
    size_t *len, struct err *e)
{
	const struct config *cfg = call->cfg;
	struct llm_handles *h;
	struct azs_attempt at;
	enum azs_outcome out = AZS_OUTCOME_FAIL;
	int64_t start = clock_now_ms(), deadline, now, wait;
	long timeout_ms, status = 0;
	int max_retries, attempt, rc = -1;

	timeout_ms = cfg->llm.timeout_ms > 0 ? cfg->llm.timeout_ms :
	    LLM_DEFAULT_TIMEOUT_MS;
	deadline = start + timeout_ms;
	max_retries = cfg->llm.max_retries;
	if (max_retries < 0)
		max_retries = LLM_DEFAULT_MAX_RETRIES;
	if (max_retries > LLM_MAX_ATTEMPTS - 1)
		max_retries = LLM_MAX_ATTEMPTS - 1;
	h = llm_handles_take();
	if (h == NULL)
		return err_set(e, 502, "azure search: could not create curl handle");

	for (attempt = 0;; attempt++) {
		if (attempt > 0)
			curl_easy_reset(h->easy);
		memset(&at, 0, sizeof(at));
		buf_init(&at.body);
		at.max_bytes = cfg->llm.max_response_bytes > 0 ?
		    (size_t)cfg->llm.max_response_bytes :
		    LLM_DEFAULT_MAX_RESPONSE_BYTES;
		at.retry_after_ms = -1;
		out = attempt_run(call, h, deadline, &at, &status, e);
		now = clock_now_ms();
		wait = at.retry_after_ms;
		if (out == AZS_OUTCOME_OK) {
			*len = buf_rlen(&at.body);
			*body = arena_strndup(a, buf_rptr(&at.body), *len);
			buf_free(&at.body);
			rc = 0;
			break;
		}
		buf_free(&at.body);
		if (out != AZS_OUTCOME_RETRY || attempt >= max_retries)
			break;
		if (wait < 0)
			wait = llm_backoff_ms(attempt);
		if (now + wait >= deadline) {
			log_warn(AZS_ACTION, "search service %s answered %ld; a retry "
			    "in %lld ms would pass the deadline", svc_name(call->svc),
			    status, (long long)wait);
			break;
		}
		log_warn(AZS_ACTION, "search service %s answered %ld, retry %d of "
		    "%d in %lld ms", svc_name(call->svc), status, attempt + 1,
		    max_retries, (long long)wait);
		{
			struct timespec ts = { wait / 1000, (wait % 1000) * 1000000 };

			while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
				;
		}
	}
	if (rc != 0)
		log_error(AZS_ACTION, "call to search service %s failed after %d "
		    "attempt%s in %lld ms (%d): %s", svc_name(call->svc),
		    attempt + 1, attempt == 0 ? "" : "s",
		    (long long)(clock_now_ms() - start), e->status, e->msg);
	llm_handles_give_back(h);
	return rc;
}

/* {endpoint}/indexes/{index}/docs/{what}?api-version=..., in `a`. */
static char *
build_url(const struct config_search *svc, const char *index,
    const char *what, struct arena *a)
{
	struct buf url = BUF_INIT;
	char *esc, *out;

	buf_puts(&url, svc->endpoint);
	while (buf_rlen(&url) > 0 && url.data[url.len - 1] == '/')
		url.len--;
	esc = curl_escape(index, 0);
	if (esc == NULL)
		azs_oom();
	buf_printf(&url, "/indexes/%s/docs/%s?api-version=%s", esc, what,
	    AZS_API_VERSION);
	curl_free(esc);
	out = arena_strdup(a, buf_cstr(&url));
	buf_free(&url);
	return out;
}

/* Settings usable, an index named: 0, or -1 with e set (502). */
static int
check_call(const struct config_search *svc, const char *index, struct err *e)
{
	const char *missing = NULL;

	if (azs_config_check(svc, NULL, NULL, &missing) != AZS_OK)
		return err_set(e, 502, "azure search: the service is not "
		    "configured (%s is missing)", missing ? missing : "endpoint");
	if (str_empty(index))
		return err_set(e, 502, "azure search: no index named");
	llm_global_init();
	return 0;
}

int
azs_count(const struct config *cfg, const struct config_search *svc,
    const char *index, long *count, struct err *e)
{
	struct arena *a;
	struct azs_call call;
	char *body = NULL;
	size_t len = 0;
	int rc;

	if (check_call(svc, index, e) != 0)
		return -1;
	a = arena_create(1024);
	memset(&call, 0, sizeof(call));
	call.cfg = cfg;
	call.svc = svc;
	call.index = index;
	call.url = build_url(svc, index, "$count", a);
	call.accept = "Accept: text/plain";
	rc = azs_call_run(&call, a, &body, &len, e);
	if (rc == 0)
		rc = azs_parse_count(body, len, count, e);
	arena_destroy(a);
	return rc;
}

int
azs_search(const struct config *cfg, const struct config_search *svc,
    const char *index, const char *query, int top, struct arena *a,
    struct azs_hit **hits, struct err *e)
{
	struct azs_call call;
	char *body = NULL;
	size_t len = 0;

	*hits = NULL;
	if (check_call(svc, index, e) != 0)
		return -1;
	memset(&call, 0, sizeof(call));
	call.cfg = cfg;
	call.svc = svc;
	call.index = index;
	call.url = build_url(svc, index, "search", a);
	call.body = azs_build_query(svc, query, top, a);
	call.accept = "Accept: application/json";
	if (azs_call_run(&call, a, &body, &len, e) != 0)
		return -1;
	return azs_parse_hits(body, len, top, a, hits, e);
}
