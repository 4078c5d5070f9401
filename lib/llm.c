/*
 * llm.c -- the chat-completions client over libcurl: URLs, authentication
 * (API key, Entra ID client credentials, managed identity), the token cache,
 * retries with deadlines, and the mapping of upstream failures to client
 * statuses (docs/reliability.md U1-U3).
 *
 * It owns a worker's curl share and token cache, and the easy handle each
 * calling thread keeps between its calls.  It never logs a secret, a
 * prompt or a reply (those stay at debug level and even then only sizes),
 * never retries a 400, and never waits past the caller's deadline.  JSON in
 * and out is the business of llm_reply.c.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "lib/clock.h"
#include "lib/buf.h"
#include "lib/llm.h"
#include "lib/llm_parts.h"
#include "lib/llm_reply.h"
#include "lib/log.h"
#include "lib/sse.h"
#include "lib/xmalloc.h"

#define LLM_DEFAULT_API_VERSION    "2024-12-01-preview"
#define LLM_DEFAULT_AUTHORITY      "https://login.microsoftonline.com"
#define LLM_DEFAULT_IMDS           "http://169.254.169.254"
#define LLM_SCOPE                  "https://cognitiveservices.azure.com/.default"
#define LLM_RESOURCE               "https://cognitiveservices.azure.com/"
#define LLM_TOKEN_REFRESH_MARGIN_S 300     /* refresh 5 min before expiry */
#define LLM_TOKEN_MAX_BYTES        (64 * 1024)
#define LLM_DEADLINE_SLACK_MS      5       /* a timeout this close to the deadline spent it */
#define LLM_ACTION                 "while calling azure openai"
#define LLM_RECV_BUFFER            8192    /* CURLOPT_BUFFERSIZE */
#define LLM_CANCEL_POLL_MS         1000    /* a quiet transfer looks at llm_request.cancelled
                                            * this often, unless woken (llm_request.set_waker) */

enum llm_auth {
	LLM_AUTH_NONE = 0,          /* no key: a local OpenAI-compatible server */
	LLM_AUTH_KEY,               /* api-key header (Azure) or Bearer (openai) */
	LLM_AUTH_CLIENT_SECRET,     /* Entra ID client credentials */
	LLM_AUTH_MSI,               /* managed identity (IMDS) */
	LLM_AUTH_DEFAULT,           /* environment client secret, then MSI */
};

/* One cached access token; `lock` is held while it is being fetched, so
 * concurrent threads wait for one fetch instead of each making their own. */
struct llm_token {
	struct llm_token *next;
	char *key;                  /* kind|endpoint|tenant|client id|scope (no secret) */
	pthread_mutex_t lock;
	char *token;                /* secret */
	int64_t refresh_at_ms;      /* clock_now_ms() time to fetch a new one */
};

/* The tokens of one client (or of another Azure client, lib/llm_parts.h). */
struct llm_token_cache {
	pthread_mutex_t lock;       /* guards the list, not the entries */
	struct llm_token *tokens;
};

struct llm_client {
	const struct config *cfg;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	struct llm_token_cache *tokens;
};

/* What one attempt saw. */
struct llm_attempt {
	const struct llm_request *req;
	struct arena *arena;
	struct llm_reply *reply;
	size_t max_bytes;
	size_t received;
	struct buf body;            /* a non-streamed body */
	bool oversized;
	bool sse_mode;              /* decided at the first body byte */
	bool mode_decided;
	bool delivered;             /* a delta reached the caller: no retry */
	bool stream_failed;         /* the stream parser set stream_err */
	bool cancelled;             /* llm_request.cancelled said so: stop, no retry */
	struct err stream_err;
	struct sse_parser sse;
	struct llm_reply_stream acc;
	/* response headers of the final response */
	long retry_after_ms;        /* -1 = absent */
	char content_type[128];
	CURL *easy;
	CURLM *multi;               /* drives `easy` (attempt_perform) */
};

static pthread_once_t llm_once = PTHREAD_ONCE_INIT;
static _Thread_local uint64_t llm_rng;

/* The process's idle handle pairs, the one given back last first (see
 * llm_handles_take). */
static pthread_mutex_t llm_idle_mu = PTHREAD_MUTEX_INITIALIZER;
static struct llm_handles *llm_idle_head, *llm_idle_tail;
static size_t llm_idle_n;


static int64_t
llm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
llm_global_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
llm_global_init(void)
{
	pthread_once(&llm_once, llm_global_init_once);
}

/*
 * Curl easy handles, each with the multi handle that drives its transfers
 * (attempt_perform), kept between calls in one list per process and taken
 * by whichever thread calls next.  Creating a handle for every call cost a
 * wake-up socketpair, its fcntl()s and close()s, and the handle's internal
 * multi handle each time (~5 % of a worker's CPU at 0 ms upstream latency);
 * a kept pair keeps those, and its connections to the upstream (curl keeps
 * them in the multi handle's cache, up to four).  Between calls a pair is
 * idle: reset (no option, callback pointer or header list of the last call
 * survives), detached from the client's share and from the multi handle, so
 * it never outlives a share it is attached to (llm_client_destroy stays free
 * to clean the share up) and the next call, of whichever client, attaches its
 * own share again (easy_common).  DNS and TLS sessions live in the share.
 * The connection cache is never shared between pairs: libcurl does not
 * support a connection cache used by concurrent threads (CURLSHOPT_SHARE(3),
 * CURL_LOCK_DATA_CONNECT), and sharing it corrupted the heap under load
 * (2,000 connections, a worker killed by "malloc(): unaligned fastbin chunk
 * detected" within seconds).  A pair is used by one thread at a time; it
 * may move between threads, which libcurl allows.
 *
 * Until 2026-12-04 the pair was kept per flow thread, so a worker held one
 * per thread: the elastic pool runs more threads than turns in flight (a
 * finished thread is not idle yet when the next turn is queued, so a new one
 * is started), and each held ~20 KiB and an open upstream connection while
 * idle: 3,405 upstream connections for 2,000 turns in flight (bench/slow.sh
 * case A).  Now the pairs are as many as the calls in flight at the peak,
 * taken newest first so the warm connections are reused, and a pair idle
 * for longer than the worker's flow_thread_idle_s is freed by
 * llm_handles_trim, as an idle flow thread retires.  No process that forks
 * calls llm_chat before it (the master never touches libcurl; workers make
 * their handles after the fork).  A call takes the pair out of the list
 * while it runs, so a nested call (from a callback) simply uses another.
 */
static void
llm_handles_free(struct llm_handles *h)
{
	if (h == NULL)
		return;
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	if (h->easy != NULL)
		curl_easy_cleanup(h->easy);
	free(h);
}

/* Take h out of the idle list; llm_idle_mu held. */
static void
llm_idle_unlink_locked(struct llm_handles *h)
{
	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		llm_idle_head = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	else
		llm_idle_tail = h->prev;
	h->next = h->prev = NULL;
	llm_idle_n--;
}

/* The handles for one call: the idle pair given back last, else a new one
 * (NULL when curl cannot make one). */
struct llm_handles *
llm_handles_take(void)
{
	struct llm_handles *h;

	pthread_mutex_lock(&llm_idle_mu);
	if ((h = llm_idle_head) != NULL)
		llm_idle_unlink_locked(h);
	pthread_mutex_unlock(&llm_idle_mu);
	if (h != NULL)
		return h;
	h = xcalloc(1, sizeof(*h));
	h->easy = curl_easy_init();
	h->multi = curl_multi_init();
	if (h->easy == NULL || h->multi == NULL) {
		llm_handles_free(h);
		return NULL;
	}
	return h;
}

/* Back into the list, idle, at its head. */
void
llm_handles_give_back(struct llm_handles *h)
{
	curl_easy_reset(h->easy);
	curl_easy_setopt(h->easy, CURLOPT_SHARE, NULL);
	h->idle_since_ms = clock_now_ms();
	h->prev = NULL;
	pthread_mutex_lock(&llm_idle_mu);
	h->next = llm_idle_head;
	if (llm_idle_head != NULL)
		llm_idle_head->prev = h;
	else
		llm_idle_tail = h;
	llm_idle_head = h;
	llm_idle_n++;
	pthread_mutex_unlock(&llm_idle_mu);
}

size_t
llm_handles_trim(int64_t idle_ms, size_t max)
{
	struct llm_handles *gone = NULL, *h;
	int64_t before = clock_now_ms() - idle_ms;
	size_t n = 0;

	pthread_mutex_lock(&llm_idle_mu);
	/* the tail is the pair idle longest */
	while (n < max && (h = llm_idle_tail) != NULL && h->idle_since_ms <= before) {
		llm_idle_unlink_locked(h);
		h->next = gone;
		gone = h;
		n++;
	}
	pthread_mutex_unlock(&llm_idle_mu);
	/* closing their connections is no business of the lock */
	while ((h = gone) != NULL) {
		gone = h->next;
		llm_handles_free(h);
	}
	return n;
}

size_t
llm_handles_idle(void)
{
	size_t n;

	pthread_mutex_lock(&llm_idle_mu);
	n = llm_idle_n;
	pthread_mutex_unlock(&llm_idle_mu);
	return n;
}

/* xorshift64*, seeded per thread: jitter only, not a secret. */
static uint64_t
llm_random(void)
{
	if (llm_rng == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		llm_rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&ts;
		if (llm_rng == 0)
			llm_rng = 0x9e3779b97f4a7c15ULL;
	}
	llm_rng ^= llm_rng >> 12;
	llm_rng ^= llm_rng << 25;
	llm_rng ^= llm_rng >> 27;
	return llm_rng * 0x2545f4914f6cdd1dULL;
}

int64_t
llm_backoff_ms(int attempt)
{
	/* full jitter: uniform in [0, min(cap, base * 2^n)] */
	int64_t ceiling = LLM_BACKOFF_CAP_MS;

	if (attempt >= 0 && attempt < 16)
		ceiling = (int64_t)LLM_BACKOFF_BASE_MS << attempt;
	if (ceiling > LLM_BACKOFF_CAP_MS)
		ceiling = LLM_BACKOFF_CAP_MS;
	return (int64_t)(llm_random() % (uint64_t)(ceiling + 1));
}

CURLcode
llm_multi_run(CURLM *multi, CURL *easy, int poll_ms, bool (*stop)(void *arg),
    void *arg)
{
	CURLcode rc = CURLE_OK;
	CURLMcode mc;
	CURLMsg *msg;
	int running = 1, left;

	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		return CURLE_FAILED_INIT;
	for (;;) {
		mc = curl_multi_perform(multi, &running);
		if (mc != CURLM_OK) {
			rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY :
			    CURLE_FAILED_INIT;
			break;
		}
		if (running == 0)
			break;
		if (stop != NULL && stop(arg)) {
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_poll(multi, NULL, 0, poll_ms, NULL) != CURLM_OK) {
			rc = CURLE_FAILED_INIT;
			break;
		}
	}
	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
			rc = msg->data.result;
	curl_multi_remove_handle(multi, easy);
	return rc;
}

CURLcode
llm_handles_perform(struct llm_handles *h)
{
	return llm_multi_run(h->multi, h->easy, 1000, NULL, NULL);
}

void
llm_secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* Whether the caller asked the call to stop (llm_request.cancelled). */
static bool
llm_cancelled(const struct llm_request *req)
{
	return req->cancelled != NULL && req->cancelled(req->cancel_arg);
}

/*
 * Sleep `ms` (a retry's wait) on the thread's multi handle, so that the
 * request's waker cuts it short, in slices of LLM_CANCEL_POLL_MS, looking at
 * the request's cancellation between them.  True when it was cancelled
 * (the sleep is cut short).
 */
static bool
llm_sleep_ms(const struct llm_request *req, CURLM *multi, int64_t ms)
{
	int64_t end = clock_now_ms() + ms, left;

	for (;;) {
		if (llm_cancelled(req))
			return true;
		left = end - clock_now_ms();
		if (left <= 0)
			return false;
		if (req->cancelled != NULL && left > LLM_CANCEL_POLL_MS)
			left = LLM_CANCEL_POLL_MS;
		if (curl_multi_poll(multi, NULL, 0, (int)left, NULL) != CURLM_OK) {
			struct timespec ts = { left / 1000, (left % 1000) * 1000000 };

			while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
				;
		}
	}
}

/* The waker a call hands to llm_request.set_waker: its thread's multi
 * handle stops waiting (curl_multi_wakeup is safe from any thread). */
static void
llm_wake(void *multi)
{
	(void)curl_multi_wakeup(multi);
}

static bool
str_empty(const char *s)
{
	return s == NULL || *s == '\0';
}

/* ---- the client -------------------------------------------------------- */

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct llm_client *c = arg;

	(void)h;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct llm_client *c = arg;

	(void)h;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

struct llm_client *
llm_client_create(const struct config *cfg, struct err *e)
{
	struct llm_client *c;
	int i;

	llm_global_init();
	c = xcalloc(1, sizeof(*c));
	c->cfg = cfg;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	c->tokens = llm_token_cache_create();
	c->share = curl_share_init();
	if (c->share == NULL) {
		err_set(e, 500, "could not create curl share: out of memory");
		goto fail;
	}
	if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_SSL_SESSION)) {
		err_set(e, 500, "could not set up curl share");
		goto fail;
	}
	if (!cfg->llm.verify_tls)
		log_warn(LLM_ACTION, "TLS certificate verification is off for "
		    "every model (llm.verify_tls = false)");
	return c;
fail:
	llm_client_destroy(c);
	return NULL;
}

static void
token_free_secret(struct llm_token *t)
{
	if (t->token != NULL) {
		explicit_bzero(t->token, strlen(t->token));
		free(t->token);
		t->token = NULL;
	}
	t->refresh_at_ms = 0;
}

struct llm_token_cache *
llm_token_cache_create(void)
{
	struct llm_token_cache *tc = xcalloc(1, sizeof(*tc));

	pthread_mutex_init(&tc->lock, NULL);
	return tc;
}

void
llm_token_cache_destroy(struct llm_token_cache *tc)
{
	struct llm_token *t, *next;

	if (tc == NULL)
		return;
	for (t = tc->tokens; t != NULL; t = next) {
		next = t->next;
		token_free_secret(t);
		pthread_mutex_destroy(&t->lock);
		free(t->key);
		free(t);
	}
	pthread_mutex_destroy(&tc->lock);
	free(tc);
}

void
llm_token_cache_forget(struct llm_token_cache *tc)
{
	struct llm_token *t;

	pthread_mutex_lock(&tc->lock);
	for (t = tc->tokens; t != NULL; t = t->next) {
		pthread_mutex_lock(&t->lock);
		token_free_secret(t);
		pthread_mutex_unlock(&t->lock);
	}
	pthread_mutex_unlock(&tc->lock);
}

void
llm_client_destroy(struct llm_client *c)
{
	int i;

	if (c == NULL)
		return;
	if (c->share != NULL)
		curl_share_cleanup(c->share);
	llm_token_cache_destroy(c->tokens);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	free(c);
}

void
llm_client_forget_tokens(struct llm_client *c)
{
	llm_token_cache_forget(c->tokens);
}

int
llm_model_find(const struct config *cfg, const char *role)
{
	size_t i;

	for (i = 0; i < cfg->n_models; i++) {
		const char *r = cfg->models[i].role;

		if (str_empty(role))
			return (int)i;
		if (str_empty(r) ? strcasecmp(role, "chat") == 0 :
		    strcasecmp(r, role) == 0)
			return (int)i;
	}
	return -1;
}

/* ---- settings ---------------------------------------------------------- */

static bool
model_is_openai(const struct config_model *m)
{
	return m->api_type != NULL && strcasecmp(m->api_type, "openai") == 0;
}

static enum llm_auth
model_auth(const struct config_model *m)
{
	const char *am = m->authentication_method;

	if (model_is_openai(m))
		return str_empty(m->api_key) ? LLM_AUTH_NONE : LLM_AUTH_KEY;
	if (str_empty(am))
		return str_empty(m->api_key) ? LLM_AUTH_NONE : LLM_AUTH_KEY;
	if (strcasecmp(am, "token") == 0)
		return str_empty(m->api_key) ? LLM_AUTH_NONE : LLM_AUTH_KEY;
	if (strcasecmp(am, "client_id_and_secret") == 0)
		return LLM_AUTH_CLIENT_SECRET;
	if (strcasecmp(am, "msi") == 0)
		return LLM_AUTH_MSI;
	return LLM_AUTH_DEFAULT;
}

static void
trim_slashes(struct buf *b)
{
	while (buf_rlen(b) > 0 && b->data[b->len - 1] == '/')
		b->len--;
}

/* The chat-completions URL of `m` into `out`. */
static int
build_url(CURL *easy, const struct config_model *m, struct buf *out,
    struct err *e)
{
	const char *dep;
	char *esc;

	if (str_empty(m->base_url))
		return err_set(e, 502, "could not call model \"%s\": no base_url "
		    "configured", m->model ? m->model : "");
	buf_puts(out, m->base_url);
	trim_slashes(out);
	if (model_is_openai(m)) {
		/* accept both "http://host:port" and "http://host:port/v1" */
		if (buf_rlen(out) >= 3 &&
		    memcmp(out->data + out->len - 3, "/v1", 3) == 0)
			buf_puts(out, "/chat/completions");
		else
			buf_puts(out, "/v1/chat/completions");
		return 0;
	}
	dep = !str_empty(m->deployment) ? m->deployment : m->model;
	if (str_empty(dep))
		return err_set(e, 502, "could not call azure openai: no deployment "
		    "or model configured");
	esc = curl_easy_escape(easy, dep, 0);
	buf_printf(out, "/openai/deployments/%s/chat/completions?api-version=",
	    esc);
	curl_free(esc);
	esc = curl_easy_escape(easy, str_empty(m->api_version) ?
	    LLM_DEFAULT_API_VERSION : m->api_version, 0);
	buf_puts(out, esc);
	curl_free(esc);
	return 0;
}

void
llm_easy_setup(const struct config *cfg, CURL *easy, CURLSH *share,
    int64_t remaining_ms)
{
	long connect_ms = cfg->llm.connect_timeout_ms > 0 ?
	    cfg->llm.connect_timeout_ms : LLM_DEFAULT_CONNECT_TIMEOUT_MS;

	if (remaining_ms < 1)
		remaining_ms = 1;
	if (connect_ms > remaining_ms)
		connect_ms = (long)remaining_ms;
	curl_easy_setopt(easy, CURLOPT_SHARE, share);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)remaining_ms);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, cfg->llm.verify_tls ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, cfg->llm.verify_tls ? 2L : 0L);
	if (!str_empty(cfg->llm.ca_file))
		curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->llm.ca_file);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "ingenious/" PACKAGE_VERSION);
	/* the receive buffer of each flow thread's handle: 8 KiB instead of 16
	 * (thousands of threads keep one each; a completion is ~1-4 KB) */
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, LLM_RECV_BUFFER);
}

/* Options every handle of this client gets. */
static void
easy_common(struct llm_client *c, CURL *easy, int64_t remaining_ms)
{
	llm_easy_setup(c->cfg, easy, c->share, remaining_ms);
}

/* ---- tokens ------------------------------------------------------------ */

struct token_body {
	struct buf b;
	bool oversized;
};

static size_t
token_write(char *p, size_t size, size_t n, void *arg)
{
	struct token_body *tb = arg;

	if (buf_rlen(&tb->b) + size * n > LLM_TOKEN_MAX_BYTES) {
		tb->oversized = true;
		return 0;
	}
	buf_append(&tb->b, p, size * n);
	return size * n;
}

/* Parse {"access_token":..., "expires_in": N or "N"} into t. */
static int
token_take(struct llm_token *t, const char *body, size_t len,
    const char *service, struct err *e)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *tok, *exp;
	double expires_in = 0;
	int64_t margin;
	int rc = -1;

	tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
	exp = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
	if (!cJSON_IsString(tok) || str_empty(tok->valuestring)) {
		err_set(e, 502, "could not get an access token for %s: "
		    "the token endpoint gave no access_token", service);
		goto out;
	}
	if (cJSON_IsNumber(exp))
		expires_in = exp->valuedouble;
	else if (cJSON_IsString(exp))
		expires_in = strtod(exp->valuestring, NULL);
	if (!(expires_in > 0) || expires_in > 365.0 * 86400)
		expires_in = 300;          /* unknown lifetime: keep it briefly */
	/* refresh 5 minutes early; a short-lived token is kept half its life */
	margin = LLM_TOKEN_REFRESH_MARGIN_S;
	if (margin > (int64_t)expires_in / 2)
		margin = (int64_t)expires_in / 2;
	token_free_secret(t);
	t->token = xstrdup(tok->valuestring);
	t->refresh_at_ms = clock_now_ms() +
	    ((int64_t)expires_in - margin) * 1000;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/*
 * Fetch a token into t: a POST of `form` to `url` (client credentials), or a
 * GET of `url` with "Metadata: true" (form == NULL, managed identity).
 */
static int
token_fetch(const struct config *cfg, CURLSH *share, struct llm_token *t,
    const char *url, const char *form, const char *service, int64_t deadline,
    struct err *e)
{
	struct token_body tb = { BUF_INIT, false };
	struct curl_slist *hdrs = NULL;
	CURL *easy;
	CURLcode rc;
	long status = 0;
	int ret = -1;
	int64_t remaining = deadline - clock_now_ms();

	if (remaining <= 0)
		return err_set(e, 504, "could not get an access token for %s: "
		    "deadline reached", service);
	easy = curl_easy_init();
	if (easy == NULL)
		return err_set(e, 502, "could not create curl handle");
	llm_easy_setup(cfg, easy, share, remaining);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, token_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &tb);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (form != NULL) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, form);
		hdrs = curl_slist_append(hdrs,
		    "Content-Type: application/x-www-form-urlencoded");
	} else {
		hdrs = curl_slist_append(hdrs, "Metadata: true");
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		err_set(e, 504, "could not get an access token for %s: timeout",
		    service);
		goto out;
	}
	if (rc != CURLE_OK) {
		err_set(e, 502, "could not get an access token for %s: %s",
		    service, tb.oversized ? "reply too large" :
		    curl_easy_strerror(rc));
		goto out;
	}
	if (status != 200) {
		err_set(e, 502, "could not get an access token for %s: "
		    "the token endpoint answered %ld (authentication problem, "
		    "check the credentials)", service, status);
		goto out;
	}
	ret = token_take(t, buf_cstr(&tb.b), buf_rlen(&tb.b), service, e);
out:
	if (tb.b.data != NULL)
		explicit_bzero(tb.b.data, tb.b.cap);
	buf_free(&tb.b);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(easy);
	return ret;
}

static struct llm_token *
token_slot(struct llm_token_cache *tc, const char *key)
{
	struct llm_token *t;

	pthread_mutex_lock(&tc->lock);
	for (t = tc->tokens; t != NULL; t = t->next)
		if (strcmp(t->key, key) == 0)
			break;
	if (t == NULL) {
		t = xcalloc(1, sizeof(*t));
		t->key = xstrdup(key);
		pthread_mutex_init(&t->lock, NULL);
		t->next = tc->tokens;
		tc->tokens = t;
	}
	pthread_mutex_unlock(&tc->lock);
	return t;
}

static void
form_add(CURL *easy, struct buf *form, const char *name, const char *value)
{
	char *esc = curl_easy_escape(easy, value, 0);

	if (buf_rlen(form) > 0)
		buf_putc(form, '&');
	buf_printf(form, "%s=%s", name, esc);
	curl_free(esc);
}

char *
llm_token_get(struct llm_token_cache *tc, const struct config *cfg,
    CURLSH *share, const struct llm_credential *cr, CURL *esc_handle,
    int64_t deadline, struct err *e)
{
	const char *am = cr->method;
	const char *tenant = NULL, *client_id = NULL, *secret = NULL;
	const char *authority, *imds;
	const char *env_id = cfg->azure_identity.client_id;
	const char *env_secret = cfg->azure_identity.client_secret;
	const char *env_tenant = cfg->azure_identity.tenant_id;
	bool is_secret = am != NULL &&
	    strcasecmp(am, "client_id_and_secret") == 0;
	bool is_msi = am != NULL && strcasecmp(am, "msi") == 0;
	struct buf key = BUF_INIT, url = BUF_INIT, form = BUF_INIT;
	struct llm_token *t;
	char *copy = NULL;
	bool use_secret = false;

	if (is_secret) {
		tenant = !str_empty(cr->tenant_id) ? cr->tenant_id : env_tenant;
		client_id = cr->client_id;
		secret = cr->client_secret;
		if (str_empty(tenant) || str_empty(client_id) || str_empty(secret)) {
			err_set(e, 502, "could not authenticate with %s: "
			    "client_id_and_secret needs client_id, client_secret "
			    "and tenant_id", cr->service);
			goto out;
		}
		use_secret = true;
	} else if (!is_msi && !str_empty(env_id) && !str_empty(env_secret) &&
	    !str_empty(env_tenant)) {
		/* default_credential: the environment's client secret first */
		tenant = env_tenant;
		client_id = env_id;
		secret = env_secret;
		use_secret = true;
	} else {
		/* managed identity; a user-assigned one is named by client_id */
		client_id = !str_empty(cr->client_id) ? cr->client_id :
		    (!is_msi && !str_empty(env_id) ? env_id : NULL);
	}
	authority = !str_empty(cfg->llm.token_endpoint) ?
	    cfg->llm.token_endpoint :
	    !str_empty(cfg->azure_identity.authority_host) ?
	    cfg->azure_identity.authority_host : LLM_DEFAULT_AUTHORITY;
	imds = !str_empty(cfg->llm.imds_endpoint) ?
	    cfg->llm.imds_endpoint : LLM_DEFAULT_IMDS;
	if (use_secret) {
		buf_puts(&url, authority);
		trim_slashes(&url);
		buf_printf(&url, "/%s/oauth2/v2.0/token", tenant);
		form_add(esc_handle, &form, "grant_type", "client_credentials");
		form_add(esc_handle, &form, "client_id", client_id);
		form_add(esc_handle, &form, "client_secret", secret);
		form_add(esc_handle, &form, "scope", cr->scope);
		buf_printf(&key, "secret|%s|%s|%s|%s", authority, tenant,
		    client_id, cr->scope);
	} else {
		char *res = curl_easy_escape(esc_handle, cr->resource, 0);

		buf_puts(&url, imds);
		trim_slashes(&url);
		buf_printf(&url, "/metadata/identity/oauth2/token?"
		    "api-version=2018-02-01&resource=%s", res);
		curl_free(res);
		if (!str_empty(client_id)) {
			res = curl_easy_escape(esc_handle, client_id, 0);
			buf_printf(&url, "&client_id=%s", res);
			curl_free(res);
		}
		buf_printf(&key, "msi|%s|%s|%s", imds,
		    client_id ? client_id : "", cr->resource);
	}
	t = token_slot(tc, buf_cstr(&key));
	pthread_mutex_lock(&t->lock);
	if (t->token == NULL || clock_now_ms() >= t->refresh_at_ms) {
		if (token_fetch(cfg, share, t, buf_cstr(&url),
		    use_secret ? buf_cstr(&form) : NULL, cr->service, deadline,
		    e) != 0) {
			pthread_mutex_unlock(&t->lock);
			log_warn(cr->action, "%s", e->msg);
			goto out;
		}
		log_info(cr->action, "got a new %s access token for %s",
		    use_secret ? "entra id" : "managed identity", cr->subject);
	}
	copy = xstrdup(t->token);
	pthread_mutex_unlock(&t->lock);
out:
	if (form.data != NULL)
		explicit_bzero(form.data, form.cap);
	buf_free(&form);
	buf_free(&url);
	buf_free(&key);
	return copy;
}

/* The token of model `m` (see llm_token_get). */
static char *
token_get(struct llm_client *c, const struct config_model *m,
    CURL *esc_handle, int64_t deadline, struct err *e)
{
	struct llm_credential cr;
	struct buf subject = BUF_INIT;
	char *tok;

	buf_printf(&subject, "model %s", m->model ? m->model : "");
	memset(&cr, 0, sizeof(cr));
	cr.method = model_auth(m) == LLM_AUTH_CLIENT_SECRET ?
	    "client_id_and_secret" : model_auth(m) == LLM_AUTH_MSI ? "msi" :
	    "default_credential";
	cr.client_id = m->client_id;
	cr.client_secret = m->client_secret;
	cr.tenant_id = m->tenant_id;
	cr.scope = LLM_SCOPE;
	cr.resource = LLM_RESOURCE;
	cr.service = "azure openai";
	cr.subject = buf_cstr(&subject);
	cr.action = LLM_ACTION;
	tok = llm_token_get(c->tokens, c->cfg, c->share, &cr, esc_handle,
	    deadline, e);
	buf_free(&subject);
	return tok;
}

void
llm_token_invalidate(struct llm_token_cache *tc, const char *token)
{
	struct llm_token *t;

	pthread_mutex_lock(&tc->lock);
	for (t = tc->tokens; t != NULL; t = t->next) {
		pthread_mutex_lock(&t->lock);
		if (t->token != NULL && strcmp(t->token, token) == 0)
			token_free_secret(t);
		pthread_mutex_unlock(&t->lock);
	}
	pthread_mutex_unlock(&tc->lock);
}

/* ---- one attempt ------------------------------------------------------- */

bool
llm_retry_after_header(const char *p, size_t name_len, const char *v,
    size_t vlen, long *retry_after_ms)
{
#define HDR_IS(name) (name_len == sizeof(name) - 1 && \
	strncasecmp(p, name, sizeof(name) - 1) == 0)
	if (HDR_IS("retry-after-ms")) {
		char tmp[32];

		if (vlen > 0 && vlen < sizeof(tmp)) {
			char *end;
			double ms;

			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			ms = strtod(tmp, &end);
			if (end != tmp && *end == '\0' && ms >= 0 && ms < 86400e3)
				*retry_after_ms = (long)ms;
		}
	} else if (HDR_IS("retry-after")) {
		char tmp[64];

		/* retry-after-ms, when present, wins whatever the order */
		if (vlen > 0 && vlen < sizeof(tmp) && *retry_after_ms < 0) {
			char *end;
			long s;

			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			s = strtol(tmp, &end, 10);
			if (end != tmp && *end == '\0' && s >= 0 && s < 86400) {
				*retry_after_ms = s * 1000;
			} else {
				time_t when = curl_getdate(tmp, NULL);
				time_t now = time(NULL);

				if (when != -1)
					*retry_after_ms = when > now ?
					    (long)(when - now) * 1000 : 0;
			}
		}
	} else {
		return false;
	}
#undef HDR_IS
	return true;
}

static size_t
attempt_header(char *p, size_t size, size_t n, void *arg)
{
	struct llm_attempt *at = arg;
	size_t len = size * n, vlen, name_len;
	const char *v;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget the last one */
		at->retry_after_ms = -1;
		at->content_type[0] = '\0';
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
#define HDR_IS(name) (name_len == sizeof(name) - 1 && \
	strncasecmp(p, name, sizeof(name) - 1) == 0)
	if (llm_retry_after_header(p, name_len, v, vlen, &at->retry_after_ms)) {
		/* taken */
	} else if (HDR_IS("content-type")) {
		if (vlen >= sizeof(at->content_type))
			vlen = sizeof(at->content_type) - 1;
		memcpy(at->content_type, v, vlen);
		at->content_type[vlen] = '\0';
	}
#undef HDR_IS
	return len;
}

static void
attempt_delta(void *arg, const char *text, size_t len)
{
	struct llm_attempt *at = arg;

	at->delivered = true;
	if (at->req->on_delta != NULL)
		at->req->on_delta(at->req->delta_arg, text, len);
}

static int
attempt_event(void *arg, const struct sse_event *ev)
{
	struct llm_attempt *at = arg;

	if (llm_reply_stream_chunk(&at->acc, ev->data, ev->data_len, at->arena,
	    at->reply, attempt_delta, at, &at->stream_err) != 0) {
		at->stream_failed = true;
		return -1;
	}
	return 0;
}

static size_t
attempt_write(char *p, size_t size, size_t n, void *arg)
{
	struct llm_attempt *at = arg;
	size_t len = size * n;

	/* a stream keeps its transfer busy: look here too, not only between
	 * polls (attempt_progress) */
	if (at->cancelled || (at->sse_mode && llm_cancelled(at->req))) {
		at->cancelled = true;
		return 0;
	}
	at->received += len;
	if (at->received > at->max_bytes) {
		at->oversized = true;
		return 0;
	}
	if (!at->mode_decided) {
		long status = 0;

		curl_easy_getinfo(at->easy, CURLINFO_RESPONSE_CODE, &status);
		at->sse_mode = at->req->stream && status == 200 &&
		    strncasecmp(at->content_type, "text/event-stream", 17) == 0;
		at->mode_decided = true;
	}
	if (at->sse_mode) {
		if (sse_feed(&at->sse, p, len, attempt_event, at,
		    &at->stream_err) != 0) {
			at->stream_failed = true;
			return 0;
		}
		return len;
	}
	buf_append(&at->body, p, len);
	return len;
}

/* libcurl's progress callback: non-zero stops the transfer. */
static int
attempt_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct llm_attempt *at = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (!at->cancelled && llm_cancelled(at->req))
		at->cancelled = true;
	return at->cancelled ? 1 : 0;
}

/*
 * curl_easy_perform, driven here so that a call can be stopped promptly:
 * libcurl's own loop waits up to a second on a quiet transfer before it
 * calls the progress callback again (a hung upstream is quiet), this one
 * wakes at least every LLM_CANCEL_POLL_MS, and at once when the request's
 * waker is called (llm_request.set_waker: curl_multi_wakeup), and runs the
 * transfer, which calls attempt_progress.  Without a cancellation hook it waits as long
 * as libcurl would.  Returns the transfer's result.
 */
static bool
attempt_stop(void *arg)
{
	return attempt_progress(arg, 0, 0, 0, 0) != 0;
}

static CURLcode
attempt_perform(struct llm_attempt *at)
{
	return llm_multi_run(at->multi, at->easy, at->req->cancelled != NULL ?
	    LLM_CANCEL_POLL_MS : 1000, attempt_stop, at);
}

/* The outcome of one attempt, before the retry decision. */
enum llm_outcome {
	LLM_OUTCOME_OK = 0,
	LLM_OUTCOME_FAIL,           /* final: e is set */
	LLM_OUTCOME_RETRY,          /* retryable: e is set to the status if it is the last */
	LLM_OUTCOME_TIMEOUT,        /* the call's budget is spent: 504 */
	LLM_OUTCOME_CANCELLED,      /* llm_request.cancelled: 499, no retry */
};

static void
report_usage(const struct llm_request *req, const struct config_model *m,
    const struct llm_reply *r, long latency_ms, int status, int retries,
    bool billed, bool final)
{
	struct llm_usage u;

	if (req->on_usage == NULL)
		return;
	memset(&u, 0, sizeof(u));
	u.model = m->model ? m->model : "";
	u.deployment = model_is_openai(m) ? "" :
	    (!str_empty(m->deployment) ? m->deployment : u.model);
	if (billed) {
		u.prompt_tokens = r->prompt_tokens;
		u.completion_tokens = r->completion_tokens;
		u.total_tokens = r->total_tokens;
	}
	u.latency_ms = latency_ms;
	u.http_status = status;
	u.retries = retries;
	u.billed = billed;
	u.final = final;
	if (billed && final) {
		u.content = r->content;
		u.tool_calls = r->tool_calls;
		u.n_tool_calls = r->n_tool_calls;
	}
	u.time_ms = llm_wall_ms();
	req->on_usage(req->usage_arg, &u);
}

/* Map a non-2xx upstream status with its body to the client's view. */
static enum llm_outcome
classify_status(struct llm_client *c, const struct config_model *m,
    struct llm_attempt *at, long status, const char *bearer, struct err *e)
{
	const char *name = m->model ? m->model : "";
	char *filter = NULL, *code = NULL;
	enum llm_reply_error_kind kind;

	if (status == 429) {
		err_set(e, 503, "azure openai is rate limiting model \"%s\" (429)",
		    name);
		return LLM_OUTCOME_RETRY;
	}
	if (status >= 500) {
		err_set(e, 502, "azure openai answered %ld for model \"%s\"",
		    status, name);
		return LLM_OUTCOME_RETRY;
	}
	kind = llm_reply_classify_error(buf_cstr(&at->body),
	    buf_rlen(&at->body), at->arena, &filter, &code);
	if (kind == LLM_REPLY_ERROR_CONTENT_FILTER) {
		if (filter != NULL)
			at->reply->content_filter_results = filter;
		at->reply->finish_reason = arena_strdup(at->arena,
		    "content_filter");
		err_set(e, 406, "%s", LLM_MSG_CONTENT_FILTER);
		return LLM_OUTCOME_FAIL;
	}
	if (kind == LLM_REPLY_ERROR_CONTEXT_LENGTH) {
		err_set(e, 413, "%s", LLM_MSG_TOKEN_LIMIT);
		return LLM_OUTCOME_FAIL;
	}
	if (status == 401 || status == 403) {
		if (bearer != NULL)
			llm_token_invalidate(c->tokens, bearer);
		err_set(e, 502, "could not authenticate with azure openai for "
		    "model \"%s\": the upstream answered %ld (check the api key "
		    "or the credentials)", name, status);
		return LLM_OUTCOME_FAIL;
	}
	if (status == 404) {
		err_set(e, 502, "azure openai answered 404 for model \"%s\": "
		    "check base_url, deployment and api_version", name);
		return LLM_OUTCOME_FAIL;
	}
	err_set(e, 502, "azure openai rejected the request for model \"%s\" "
	    "with %ld%s%s", name, status, code ? ": " : "", code ? code : "");
	return LLM_OUTCOME_FAIL;
}

/* After a 200: parse or finish the stream. */
static enum llm_outcome
finish_ok(struct llm_attempt *at, struct err *e)
{
	struct llm_reply *r = at->reply;

	if (at->sse_mode) {
		if (llm_reply_stream_finish(&at->acc, at->arena, r, e) != 0)
			return LLM_OUTCOME_FAIL;
	} else {
		if (llm_reply_parse(buf_cstr(&at->body), buf_rlen(&at->body),
		    at->arena, r, e) != 0)
			return LLM_OUTCOME_FAIL;
		/* a server that ignored "stream": hand over the whole text */
		if (at->req->stream && r->content != NULL && *r->content != '\0')
			attempt_delta(at, r->content, strlen(r->content));
	}
	if (r->finish_reason != NULL &&
	    strcmp(r->finish_reason, "content_filter") == 0) {
		err_set(e, 406, "%s", LLM_MSG_CONTENT_FILTER);
		return LLM_OUTCOME_FAIL;
	}
	return LLM_OUTCOME_OK;
}

static enum llm_outcome
attempt_run(struct llm_client *c, const struct config_model *m,
    const struct llm_request *req, const char *url, const char *body,
    int64_t call_deadline, struct llm_attempt *at, long *status_out,
    struct err *e)
{
	struct curl_slist *hdrs = NULL;
	char *bearer = NULL, *line = NULL;
	enum llm_outcome out = LLM_OUTCOME_FAIL;
	enum llm_auth auth = model_auth(m);
	int64_t remaining = call_deadline - clock_now_ms();
	CURLcode rc;
	long status = 0;
	size_t i;

	*status_out = 0;
	if (llm_cancelled(req)) {
		err_set(e, LLM_STATUS_CANCELLED, "%s", LLM_MSG_CANCELLED);
		return LLM_OUTCOME_CANCELLED;
	}
	if (remaining <= 0) {
		err_set(e, 504, "azure openai did not answer in time");
		return LLM_OUTCOME_TIMEOUT;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, req->stream ?
	    "Accept: text/event-stream" : "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (auth == LLM_AUTH_KEY) {
		line = model_is_openai(m) ?
		    xasprintf("Authorization: Bearer %s", m->api_key) :
		    xasprintf("api-key: %s", m->api_key);
	} else if (auth != LLM_AUTH_NONE) {
		bearer = token_get(c, m, at->easy, call_deadline, e);
		if (bearer == NULL) {
			out = e->status == 504 ? LLM_OUTCOME_TIMEOUT :
			    LLM_OUTCOME_FAIL;
			goto out;
		}
		line = xasprintf("Authorization: Bearer %s", bearer);
	}
	if (line != NULL)
		hdrs = curl_slist_append(hdrs, line);
	for (i = 0; i < req->n_extra_headers; i++)
		hdrs = curl_slist_append(hdrs, req->extra_headers[i]);

	remaining = call_deadline - clock_now_ms();
	if (remaining <= 0) {
		err_set(e, 504, "azure openai did not answer in time");
		out = LLM_OUTCOME_TIMEOUT;
		goto out;
	}
	easy_common(c, at->easy, remaining);
	curl_easy_setopt(at->easy, CURLOPT_URL, url);
	curl_easy_setopt(at->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(at->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(at->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(at->easy, CURLOPT_HEADERFUNCTION, attempt_header);
	curl_easy_setopt(at->easy, CURLOPT_HEADERDATA, at);
	curl_easy_setopt(at->easy, CURLOPT_WRITEFUNCTION, attempt_write);
	curl_easy_setopt(at->easy, CURLOPT_WRITEDATA, at);
	if (req->cancelled != NULL) {
		curl_easy_setopt(at->easy, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(at->easy, CURLOPT_XFERINFOFUNCTION,
		    attempt_progress);
		curl_easy_setopt(at->easy, CURLOPT_XFERINFODATA, at);
	}

	rc = attempt_perform(at);
	curl_easy_getinfo(at->easy, CURLINFO_RESPONSE_CODE, &status);
	*status_out = status;
	if (at->cancelled) {
		/* whatever the transfer saw last: the caller stopped it */
		err_set(e, LLM_STATUS_CANCELLED, "%s", LLM_MSG_CANCELLED);
		out = LLM_OUTCOME_CANCELLED;
		goto out;
	}
	if (at->stream_failed) {
		*e = at->stream_err;
		out = LLM_OUTCOME_FAIL;
		goto out;
	}
	if (at->oversized) {
		err_set(e, 502, "azure openai sent a reply larger than %zu bytes",
		    at->max_bytes);
		out = LLM_OUTCOME_FAIL;
		goto out;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		if (clock_now_ms() >= call_deadline - LLM_DEADLINE_SLACK_MS) {
			err_set(e, 504, "azure openai did not answer in time");
			out = LLM_OUTCOME_TIMEOUT;
		} else {
			/* the connect timeout fired with time to spare */
			err_set(e, 502, "could not connect to azure openai: %s",
			    curl_easy_strerror(rc));
			out = LLM_OUTCOME_RETRY;
		}
		goto out;
	}
	if (rc != CURLE_OK) {
		/* refused, reset, truncated body, TLS failure: a transport error */
		bool tls = rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CACERT_BADFILE;

		err_set(e, 502, "could not %s azure openai: %s",
		    status ? "read the reply of" : "reach",
		    curl_easy_strerror(rc));
		out = tls ? LLM_OUTCOME_FAIL : LLM_OUTCOME_RETRY;
		goto out;
	}
	if (status == 200) {
		out = finish_ok(at, e);
		goto out;
	}
	if (status >= 200 && status < 300) {
		err_set(e, 502, "azure openai answered %ld, not 200", status);
		out = LLM_OUTCOME_FAIL;
		goto out;
	}
	out = classify_status(c, m, at, status, bearer, e);
out:
	curl_slist_free_all(hdrs);
	llm_secret_free(line);
	llm_secret_free(bearer);
	return out;
}

static void
attempt_init(struct llm_attempt *at, struct llm_client *c,
    const struct llm_request *req, struct arena *a, struct llm_reply *r,
    const struct llm_handles *h)
{
	const struct config *cfg = c->cfg;

	memset(at, 0, sizeof(*at));
	at->req = req;
	at->arena = a;
	at->reply = r;
	at->easy = h->easy;
	at->multi = h->multi;
	at->max_bytes = cfg->llm.max_response_bytes > 0 ?
	    (size_t)cfg->llm.max_response_bytes : LLM_DEFAULT_MAX_RESPONSE_BYTES;
	at->retry_after_ms = -1;
	buf_init(&at->body);
	sse_init(&at->sse, at->max_bytes);
	llm_reply_stream_init(&at->acc, at->max_bytes);
}

static void
attempt_free(struct llm_attempt *at)
{
	buf_free(&at->body);
	sse_free(&at->sse);
	llm_reply_stream_free(&at->acc);
}

/* Reset what one attempt may have written into the reply. */
static void
reply_reset_for_retry(struct llm_reply *r)
{
	r->id = NULL;
	r->content = NULL;
	r->tool_calls = NULL;
	r->n_tool_calls = 0;
	r->finish_reason = NULL;
	r->content_filter_results = NULL;
	r->prompt_filter_results = NULL;
	r->has_usage = false;
	r->prompt_tokens = r->completion_tokens = r->total_tokens = 0;
	r->model = NULL;
}

int
llm_chat(struct llm_client *c, const struct llm_request *req,
    struct arena *a, struct llm_reply *reply, struct err *e)
{
	const struct config *cfg = c->cfg;
	const struct config_model *m = req->model;
	struct buf url = BUF_INIT, body = BUF_INIT;
	struct llm_attempt at;
	enum llm_outcome out = LLM_OUTCOME_FAIL;
	int64_t start, call_deadline, att_start, now, wait;
	int max_retries, attempt;
	long status = 0, timeout_ms;
	bool billed_final = false;
	struct llm_handles *h = NULL;
	int rc = -1;

	memset(reply, 0, sizeof(*reply));
	start = clock_now_ms();
	if (m == NULL) {
		if (req->model_index < 0 ||
		    (size_t)req->model_index >= cfg->n_models)
			return err_set(e, 500, "could not call a model: no model "
			    "%d configured", req->model_index);
		m = &cfg->models[req->model_index];
	}
	reply->deployment = model_is_openai(m) ? "" :
	    (!str_empty(m->deployment) ? m->deployment : m->model);
	timeout_ms = cfg->llm.timeout_ms > 0 ? cfg->llm.timeout_ms :
	    LLM_DEFAULT_TIMEOUT_MS;
	call_deadline = start + timeout_ms;
	if (req->deadline_ms > 0 && req->deadline_ms < call_deadline)
		call_deadline = req->deadline_ms;
	max_retries = cfg->llm.max_retries;
	if (max_retries < 0)
		max_retries = LLM_DEFAULT_MAX_RETRIES;
	if (max_retries > LLM_MAX_ATTEMPTS - 1)
		max_retries = LLM_MAX_ATTEMPTS - 1;

	if (llm_reply_build_body(req, model_is_openai(m) ? m->model : NULL,
	    &body, e) != 0)
		goto out;
	if (llm_cancelled(req)) {
		/* nothing was sent: no attempt, no usage row */
		err_set(e, LLM_STATUS_CANCELLED, "%s", LLM_MSG_CANCELLED);
		goto out;
	}
	h = llm_handles_take();
	if (h == NULL) {
		err_set(e, 502, "could not create curl handle");
		goto out;
	}
	if (req->set_waker != NULL)
		req->set_waker(req->cancel_arg, llm_wake, h->multi);
	if (build_url(h->easy, m, &url, e) != 0)
		goto out;

	for (attempt = 0;; attempt++) {
		if (attempt > 0) {
			reply_reset_for_retry(reply);
			curl_easy_reset(h->easy);
		}
		attempt_init(&at, c, req, a, reply, h);
		att_start = clock_now_ms();
		reply->attempt_start_ms[attempt] = att_start;
		reply->attempts = attempt + 1;
		out = attempt_run(c, m, req, buf_cstr(&url), buf_cstr(&body),
		    call_deadline, &at, &status, e);
		now = clock_now_ms();
		reply->http_status = (int)status;
		reply->attempt_status[attempt] = (int)status;
		if (reply->has_usage) {
			/* billed: whatever happens next, the tokens were spent */
			billed_final = out != LLM_OUTCOME_RETRY ||
			    attempt >= max_retries || at.delivered;
			/* the call's wall time, waits included (llm_usage.latency_ms) */
			report_usage(req, m, reply, (long)(now - start),
			    (int)status, attempt, true, billed_final);
		}
		wait = at.retry_after_ms;
		attempt_free(&at);
		if (out == LLM_OUTCOME_OK) {
			rc = 0;
			break;
		}
		if (out != LLM_OUTCOME_RETRY)
			break;
		if (at.delivered) {
			/* the caller has part of a reply: a retry would repeat it */
			break;
		}
		if (status == 429 || wait >= 0)
			reply->retry_after_s = wait > 0 ? (int)((wait + 999) / 1000) : 1;
		if (attempt >= max_retries)
			break;
		if (wait < 0)
			wait = llm_backoff_ms(attempt);
		if (now + wait >= call_deadline) {
			/* the wait does not fit: fail now with the mapped status */
			log_warn(LLM_ACTION, "upstream answered %ld for model %s; a "
			    "retry in %lld ms would pass the deadline", status,
			    m->model ? m->model : "", (long long)wait);
			break;
		}
		log_warn(LLM_ACTION, "upstream answered %ld for model %s, retry "
		    "%d of %d in %lld ms", status, m->model ? m->model : "",
		    attempt + 1, max_retries, (long long)wait);
		if (llm_sleep_ms(req, h->multi, wait)) {
			err_set(e, LLM_STATUS_CANCELLED, "%s", LLM_MSG_CANCELLED);
			break;
		}
	}
	/* Retry-After is passed on with a 503 only */
	if (rc != 0 && e->status != 503)
		reply->retry_after_s = 0;
	else if (rc != 0 && reply->retry_after_s <= 0)
		reply->retry_after_s = 1;
out:
	reply->latency_ms = (long)(clock_now_ms() - start);
	if (rc != 0 && reply->attempts > 0 && !billed_final)
		report_usage(req, m, reply, reply->latency_ms, (int)status,
		    reply->attempts - 1, false, true);
	if (rc != 0 && e->status == LLM_STATUS_CANCELLED)
		/* not the upstream's failure: the turn it served is over */
		log_info(LLM_ACTION, "call to model %s stopped after %ld ms and %d "
		    "attempt%s: %s", m->model ? m->model : "", reply->latency_ms,
		    reply->attempts, reply->attempts == 1 ? "" : "s", e->msg);
	else if (rc != 0 && reply->attempts > 0)
		log_error(LLM_ACTION, "call to model %s failed after %d attempt%s "
		    "(%d): %s", m->model ? m->model : "", reply->attempts,
		    reply->attempts == 1 ? "" : "s", e->status, e->msg);
	if (h != NULL) {
		/* nobody may wake this multi handle once it is idle again */
		if (req->set_waker != NULL)
			req->set_waker(req->cancel_arg, NULL, NULL);
		llm_handles_give_back(h);
	}
	buf_free(&url);
	buf_free(&body);
	return rc;
}

/* ---- reachability (ingen validate) -------------------------------------- */

static size_t
llm_probe_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int
llm_probe(const struct config *cfg, const struct config_model *m,
    int timeout_s, struct err *e)
{
	const char *u = m->base_url != NULL && m->base_url[0] != '\0' ?
	    m->base_url : m->endpoint;
	const char *host, *end;
	char origin[512];
	CURL *easy;
	CURLcode rc;
	long status = 0;

	if (u == NULL || u[0] == '\0')
		return err_set(e, 0, "no base_url configured");
	host = strstr(u, "://");
	if (host == NULL || (strncmp(u, "http://", 7) != 0 &&
	    strncmp(u, "https://", 8) != 0))
		return err_set(e, 0, "base_url is not an http(s) URL");
	host += 3;
	end = host + strcspn(host, "/?#");
	if (end == host || (size_t)(end - u) + 2 > sizeof(origin))
		return err_set(e, 0, "base_url has no host");
	snprintf(origin, sizeof(origin), "%.*s/", (int)(end - u), u);
	llm_global_init();
	if ((easy = curl_easy_init()) == NULL)
		return err_set(e, 0, "could not create a curl handle");
	curl_easy_setopt(easy, CURLOPT_URL, origin);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT, (long)timeout_s);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, cfg->llm.verify_tls ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, cfg->llm.verify_tls ? 2L : 0L);
	if (cfg->llm.ca_file != NULL && cfg->llm.ca_file[0] != '\0')
		curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->llm.ca_file);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, llm_probe_discard);
	rc = curl_easy_perform(easy);
	if (rc == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);
	if (rc != CURLE_OK)
		return err_set(e, 0, "%s: %s", origin, curl_easy_strerror(rc));
	return (int)status;
}
