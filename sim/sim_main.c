/*
 * sim_main.c -- ingen-azure-sim: the server half of the Azure OpenAI
 * simulator.  It owns the listening socket, one thread per connection (a test
 * tool: simple beats scalable), HTTP framing through lib/http.h, routing,
 * the Entra ID and managed-identity token endpoints, API-key checks and the
 * counters behind GET /sim/stats.
 *
 * It never reaches the network beyond the address it listens on, never logs
 * a key or a token, and keeps no state on disk except the optional pidfile.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "lib/clock.h"
#include "sim/sim.h"
#include "lib/http.h"

#define SIM_READ_CHUNK        16384
#define SIM_MAX_BODY          (32 * 1024 * 1024)
#define SIM_IDLE_TIMEOUT_MS   120000
#define SIM_MAX_CONNECTIONS   8192  /* enough for servers holding thousands in flight */
#define SIM_THREAD_STACK      (256 * 1024)
#define SIM_ACCEPT_POLL_MS    200

static volatile sig_atomic_t sim_stop;
static pthread_mutex_t sim_conn_lock = PTHREAD_MUTEX_INITIALIZER;
static int sim_nconn;

static const char sim_401_key[] =
    "Access denied due to invalid subscription key or wrong API endpoint. "
    "Make sure to provide a valid key for an active subscription and use a "
    "correct regional API endpoint for your resource.";
static const char sim_401_token[] =
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired.";


void
sim_sleep_ms(long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
sim_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sim_respond(struct sim_conn *c, int status, const char *ctype,
    const char *body, size_t len, const struct http_header *extra,
    size_t n_extra)
{
	struct buf out = BUF_INIT;
	int rc;

	http_write_head(&out, status, ctype, (int64_t)len, false, !c->close,
	    extra, n_extra);
	buf_append(&out, body, len);
	rc = sim_write_all(c->fd, buf_rptr(&out), buf_rlen(&out));
	buf_free(&out);
	if (rc != 0)
		c->close = true;
	return rc;
}

int
sim_respond_error(struct sim_conn *c, int status, const char *code,
    const char *message)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_puts(&b, "{\"error\":{\"code\":");
	buf_json_string(&b, code);
	buf_puts(&b, ",\"message\":");
	buf_json_string(&b, message);
	buf_puts(&b, "}}");
	rc = sim_respond(c, status, "application/json", buf_rptr(&b),
	    buf_rlen(&b), NULL, 0);
	buf_free(&b);
	return rc;
}

static int
sim_respond_json(struct sim_conn *c, int status, cJSON *root)
{
	char *text = cJSON_PrintUnformatted(root);
	int rc;

	rc = sim_respond(c, status, "application/json", text, strlen(text),
	    NULL, 0);
	cJSON_free(text);
	return rc;
}

/* ---- counters ---------------------------------------------------------- */

static struct sim_counter *
counter_get(struct sim_counter **list, const char *name)
{
	struct sim_counter *k;

	for (k = *list; k != NULL; k = k->next)
		if (strcmp(k->name, name) == 0)
			return k;
	k = xcalloc(1, sizeof(*k));
	k->name = xstrdup(name);
	k->next = *list;
	*list = k;
	return k;
}

static void
counter_free(struct sim_counter *k)
{
	struct sim_counter *next;

	for (; k != NULL; k = next) {
		next = k->next;
		free(k->name);
		free(k);
	}
}

static void
sim_count_path(struct sim *s, const char *path)
{
	pthread_mutex_lock(&s->lock);
	counter_get(&s->paths, path)->n++;
	pthread_mutex_unlock(&s->lock);
}

long
sim_count_key(struct sim *s, const char *key)
{
	struct sim_counter *k;
	long n;

	pthread_mutex_lock(&s->lock);
	k = counter_get(&s->keys, key ? key : "");
	n = ++k->n;
	if (k->n_times < SIM_MAX_KEY_TIMES)
		k->times[k->n_times++] =
		    (double)(clock_now_ms() - s->start_ms) / 1000.0;
	s->chat_requests++;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void
sim_stats(struct sim_conn *c, struct sim *s)
{
	cJSON *root = cJSON_CreateObject(), *o, *k, *t;
	struct sim_counter *p;
	int i;

	pthread_mutex_lock(&s->lock);
	cJSON_AddNumberToObject(root, "uptime_ms",
	    (double)(clock_now_ms() - s->start_ms));
	o = cJSON_AddObjectToObject(root, "paths");
	for (p = s->paths; p != NULL; p = p->next)
		cJSON_AddNumberToObject(o, p->name, (double)p->n);
	o = cJSON_AddObjectToObject(root, "keys");
	for (p = s->keys; p != NULL; p = p->next) {
		k = cJSON_AddObjectToObject(o, p->name);
		cJSON_AddNumberToObject(k, "count", (double)p->n);
		t = cJSON_AddArrayToObject(k, "times");
		for (i = 0; i < p->n_times; i++)
			cJSON_AddItemToArray(t, cJSON_CreateNumber(p->times[i]));
	}
	o = cJSON_AddObjectToObject(root, "tokens_issued");
	cJSON_AddNumberToObject(o, "entra", (double)s->tokens_entra);
	cJSON_AddNumberToObject(o, "imds", (double)s->tokens_imds);
	cJSON_AddNumberToObject(o, "total",
	    (double)(s->tokens_entra + s->tokens_imds));
	cJSON_AddNumberToObject(root, "chat", (double)s->chat_requests);
	cJSON_AddNumberToObject(root, "streams", (double)s->stream_requests);
	cJSON_AddNumberToObject(root, "search", (double)s->search_requests);
	cJSON_AddNumberToObject(root, "search_count",
	    (double)s->search_count_requests);
	if (s->search_last != NULL)
		cJSON_AddItemToObject(root, "search_last",
		    cJSON_Duplicate(s->search_last, 1));
	cJSON_AddStringToObject(root, "search_fault",
	    s->search_fault != NULL ? s->search_fault : "");
	cJSON_AddNumberToObject(root, "auth_failures", (double)s->auth_failures);
	cJSON_AddNumberToObject(root, "connections", (double)s->connections);
	pthread_mutex_unlock(&s->lock);
	sim_respond_json(c, 200, root);
	cJSON_Delete(root);
}

static void
sim_reset(struct sim_conn *c, struct sim *s)
{
	pthread_mutex_lock(&s->lock);
	counter_free(s->paths);
	counter_free(s->keys);
	s->paths = s->keys = NULL;
	s->tokens_entra = s->tokens_imds = 0;
	s->chat_requests = s->stream_requests = s->search_requests = 0;
	s->search_count_requests = 0;
	cJSON_Delete(s->search_last);
	s->search_last = NULL;
	free(s->search_fault);
	s->search_fault = NULL;
	s->search_fault_hits = 0;
	s->auth_failures = 0;
	s->connections = 0;
	pthread_mutex_unlock(&s->lock);
	sim_respond(c, 200, "application/json", "{\"reset\":true}", 14, NULL, 0);
}

/* ---- tokens and keys --------------------------------------------------- */

static char *
sim_token_issue(struct sim *s, bool imds)
{
	struct sim_token *t = xcalloc(1, sizeof(*t));
	uint64_t h;

	pthread_mutex_lock(&s->lock);
	s->token_seq++;
	h = (s->token_seq * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)s->start_ms;
	t->token = xasprintf("simtok-%s-%llu-%016llx", imds ? "mi" : "aad",
	    (unsigned long long)s->token_seq, (unsigned long long)h);
	t->expires_ms = clock_now_ms() + s->token_ttl * 1000;
	t->next = s->tokens;
	s->tokens = t;
	if (imds)
		s->tokens_imds++;
	else
		s->tokens_entra++;
	pthread_mutex_unlock(&s->lock);
	return t->token;
}

static bool
sim_token_valid(struct sim *s, const char *tok)
{
	struct sim_token *t;
	bool ok = false;

	pthread_mutex_lock(&s->lock);
	for (t = s->tokens; t != NULL; t = t->next)
		if (strcmp(t->token, tok) == 0) {
			ok = clock_now_ms() < t->expires_ms;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

int
sim_check_auth(struct sim_conn *c, const struct sim_req *r, const char *key,
    bool bearer_key_ok)
{
	const char *h, *authz;
	bool bearer = false;

	if (key == NULL)
		return 0;
	h = http_header_get(r->http, "api-key");
	if (h != NULL && strcmp(h, key) == 0)
		return 0;
	authz = http_header_get(r->http, "authorization");
	if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0) {
		const char *tok = authz + 7;

		bearer = true;
		if (bearer_key_ok && strcmp(tok, key) == 0)
			return 0;
		if (sim_token_valid(c->sim, tok))
			return 0;
	}
	pthread_mutex_lock(&c->sim->lock);
	c->sim->auth_failures++;
	pthread_mutex_unlock(&c->sim->lock);
	sim_respond_error(c, 401, "401", bearer ? sim_401_token : sim_401_key);
	return -1;
}

/* Value of `name` in an application/x-www-form-urlencoded or query string. */
static char *
sim_form_get(struct arena *a, const char *form, size_t len, const char *name)
{
	size_t nlen = strlen(name), i = 0, start, eq, k;
	struct err e;

	if (form == NULL)
		return NULL;
	while (i <= len) {
		start = i;
		while (i < len && form[i] != '&')
			i++;
		for (eq = start; eq < i && form[eq] != '='; eq++)
			;
		if (eq - start == nlen && memcmp(form + start, name, nlen) == 0) {
			char *raw = arena_strndup(a, eq < i ? form + eq + 1 :
			    form + i, eq < i ? i - eq - 1 : 0);

			for (k = 0; raw[k] != '\0'; k++)
				if (raw[k] == '+')
					raw[k] = ' ';
			return http_percent_decode(a, raw, strlen(raw), &e);
		}
		i++;
	}
	return NULL;
}

static void
sim_token_entra(struct sim_conn *c, const struct sim_req *r)
{
	struct sim *s = c->sim;
	const char *grant, *client_id, *secret, *scope;
	cJSON *root;
	char *tok;

	grant = sim_form_get(r->arena, r->body, r->body_len, "grant_type");
	client_id = sim_form_get(r->arena, r->body, r->body_len, "client_id");
	secret = sim_form_get(r->arena, r->body, r->body_len, "client_secret");
	scope = sim_form_get(r->arena, r->body, r->body_len, "scope");
	root = cJSON_CreateObject();
	if (grant == NULL || strcmp(grant, "client_credentials") != 0) {
		cJSON_AddStringToObject(root, "error", "unsupported_grant_type");
		cJSON_AddStringToObject(root, "error_description",
		    "AADSTS70003: The app requested an unsupported grant type.");
		sim_respond_json(c, 400, root);
	} else if (client_id == NULL || *client_id == '\0') {
		cJSON_AddStringToObject(root, "error", "invalid_request");
		cJSON_AddStringToObject(root, "error_description",
		    "AADSTS900144: The request body must contain the following "
		    "parameter: 'client_id'.");
		sim_respond_json(c, 400, root);
	} else if (secret == NULL || (s->client_secret != NULL &&
	    strcmp(secret, s->client_secret) != 0)) {
		cJSON_AddStringToObject(root, "error", "invalid_client");
		cJSON_AddStringToObject(root, "error_description",
		    "AADSTS7000215: Invalid client secret provided.");
		sim_respond_json(c, 401, root);
	} else if (scope == NULL ||
	    (strcmp(scope, "https://cognitiveservices.azure.com/.default") != 0 &&
	    strcmp(scope, "https://search.azure.com/.default") != 0)) {
		cJSON_AddStringToObject(root, "error", "invalid_scope");
		cJSON_AddStringToObject(root, "error_description",
		    "AADSTS70011: The provided value for the input parameter "
		    "'scope' is not valid.");
		sim_respond_json(c, 400, root);
	} else {
		tok = sim_token_issue(s, false);
		cJSON_AddStringToObject(root, "token_type", "Bearer");
		cJSON_AddNumberToObject(root, "expires_in", (double)s->token_ttl);
		cJSON_AddNumberToObject(root, "ext_expires_in",
		    (double)s->token_ttl);
		cJSON_AddStringToObject(root, "access_token", tok);
		sim_respond_json(c, 200, root);
	}
	cJSON_Delete(root);
}

static void
sim_token_imds(struct sim_conn *c, const struct sim_req *r)
{
	struct sim *s = c->sim;
	const char *meta = http_header_get(r->http, "metadata");
	const char *q = r->http->query;
	const char *res, *ver, *client_id;
	char num[32];
	cJSON *root = cJSON_CreateObject();
	char *tok;
	time_t now = time(NULL);

	res = sim_form_get(r->arena, q, q ? strlen(q) : 0, "resource");
	ver = sim_form_get(r->arena, q, q ? strlen(q) : 0, "api-version");
	client_id = sim_form_get(r->arena, q, q ? strlen(q) : 0, "client_id");
	if (meta == NULL || strcasecmp(meta, "true") != 0) {
		cJSON_AddStringToObject(root, "error", "invalid_request");
		cJSON_AddStringToObject(root, "error_description",
		    "Required metadata header not specified");
		sim_respond_json(c, 400, root);
	} else if (ver == NULL || res == NULL || *res == '\0') {
		cJSON_AddStringToObject(root, "error", "invalid_request");
		cJSON_AddStringToObject(root, "error_description",
		    "Required query variable 'resource' or 'api-version' is "
		    "missing");
		sim_respond_json(c, 400, root);
	} else {
		tok = sim_token_issue(s, true);
		cJSON_AddStringToObject(root, "access_token", tok);
		cJSON_AddStringToObject(root, "client_id",
		    client_id ? client_id : "00000000-0000-0000-0000-000000000000");
		snprintf(num, sizeof(num), "%ld", s->token_ttl);
		cJSON_AddStringToObject(root, "expires_in", num);
		cJSON_AddStringToObject(root, "ext_expires_in", num);
		snprintf(num, sizeof(num), "%lld", (long long)now + s->token_ttl);
		cJSON_AddStringToObject(root, "expires_on", num);
		snprintf(num, sizeof(num), "%lld", (long long)now);
		cJSON_AddStringToObject(root, "not_before", num);
		cJSON_AddStringToObject(root, "resource", res);
		cJSON_AddStringToObject(root, "token_type", "Bearer");
		sim_respond_json(c, 200, root);
	}
	cJSON_Delete(root);
}

/* ---- routing ----------------------------------------------------------- */

/* Split "/a/b/c" into at most `max` segments (pointers into a copy). */
static size_t
sim_segments(struct arena *a, const char *path, char **seg, size_t max)
{
	char *copy = arena_strdup(a, path), *p = copy, *slash;
	size_t n = 0;

	if (*p == '/')
		p++;
	while (*p != '\0' && n < max) {
		seg[n++] = p;
		slash = strchr(p, '/');
		if (slash == NULL)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	return n;
}

static void
sim_dispatch(struct sim_conn *c, struct sim_req *r)
{
	struct sim *s = c->sim;
	struct http_request *h = r->http;
	char *seg[8];
	size_t n;

	sim_count_path(s, r->path);
	if (!s->quiet)
		log_info(NULL, "%s %s", h->method_name, r->path);
	n = sim_segments(r->arena, r->path, seg, 8);

	if (strcmp(r->path, "/sim/stats") == 0 && h->method == HTTP_METHOD_GET) {
		sim_stats(c, s);
		return;
	}
	if (strcmp(r->path, "/sim/reset") == 0 && h->method == HTTP_METHOD_POST) {
		sim_reset(c, s);
		return;
	}
	if (strcmp(r->path, "/sim/health") == 0) {
		sim_respond(c, 200, "application/json", "{\"status\":\"ok\"}", 15,
		    NULL, 0);
		return;
	}
	if (h->method == HTTP_METHOD_POST && n == 5 &&
	    strcmp(seg[0], "openai") == 0 && strcmp(seg[1], "deployments") == 0 &&
	    strcmp(seg[3], "chat") == 0 && strcmp(seg[4], "completions") == 0) {
		const char *q = h->query;

		if (sim_form_get(r->arena, q, q ? strlen(q) : 0,
		    "api-version") == NULL) {
			sim_respond_error(c, 404, "404", "Resource not found");
			return;
		}
		sim_chat(c, r, true, seg[2]);
		return;
	}
	if (h->method == HTTP_METHOD_POST &&
	    (strcmp(r->path, "/v1/chat/completions") == 0 ||
	    strcmp(r->path, "/chat/completions") == 0)) {
		sim_chat(c, r, false, NULL);
		return;
	}
	if (h->method == HTTP_METHOD_POST && n == 4 &&
	    strcmp(seg[1], "oauth2") == 0 && strcmp(seg[2], "v2.0") == 0 &&
	    strcmp(seg[3], "token") == 0) {
		sim_token_entra(c, r);
		return;
	}
	if (h->method == HTTP_METHOD_GET &&
	    strcmp(r->path, "/metadata/identity/oauth2/token") == 0) {
		sim_token_imds(c, r);
		return;
	}
	if (h->method == HTTP_METHOD_POST && n == 4 &&
	    strcmp(seg[0], "indexes") == 0 && strcmp(seg[2], "docs") == 0 &&
	    strcmp(seg[3], "search") == 0) {
		sim_search(c, r, seg[1]);
		return;
	}
	if (h->method == HTTP_METHOD_GET && n == 4 &&
	    strcmp(seg[0], "indexes") == 0 && strcmp(seg[2], "docs") == 0 &&
	    strcmp(seg[3], "$count") == 0) {
		sim_search_count(c, r, seg[1]);
		return;
	}
	if (strcmp(r->path, "/sim/search-fault") == 0 &&
	    h->method == HTTP_METHOD_POST) {
		sim_search_set_fault(c, r);
		return;
	}
	sim_respond_error(c, 404, "404", "Resource not found");
}

/* ---- connections ------------------------------------------------------- */

/* Wait until fd is readable; 0 ready, -1 timeout/error/stop. */
static int
sim_wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	int rc;

	for (;;) {
		rc = poll(&pfd, 1, timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		return rc > 0 ? 0 : -1;
	}
}

/* Read more bytes into `in`; 0 ok, -1 closed or timed out. */
static int
sim_read_more(int fd, struct buf *in)
{
	ssize_t n;

	if (sim_wait_readable(fd, SIM_IDLE_TIMEOUT_MS) != 0)
		return -1;
	buf_reserve(in, SIM_READ_CHUNK);
	for (;;) {
		n = recv(fd, in->data + in->len, SIM_READ_CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n <= 0)
		return -1;
	in->len += (size_t)n;
	return 0;
}

static int
sim_read_body(int fd, struct buf *in, const struct http_request *h,
    struct buf *body, struct err *e)
{
	struct http_chunked ch;
	enum http_parse_result pr;
	size_t used;

	if (h->chunked) {
		http_chunked_init(&ch);
		for (;;) {
			pr = http_chunked_decode(&ch, buf_rptr(in), buf_rlen(in),
			    body, SIM_MAX_BODY, NULL, &used, e);
			buf_consume(in, used);
			if (pr == HTTP_PARSE_DONE)
				return 0;
			if (pr == HTTP_PARSE_ERROR)
				return -1;
			if (sim_read_more(fd, in) != 0)
				return err_set(e, 0, "connection closed");
		}
	}
	if (h->content_length > SIM_MAX_BODY)
		return err_set(e, 413, "request body too large");
	while (h->content_length > 0 &&
	    buf_rlen(in) < (size_t)h->content_length)
		if (sim_read_more(fd, in) != 0)
			return err_set(e, 0, "connection closed");
	if (h->content_length > 0) {
		buf_append(body, buf_rptr(in), (size_t)h->content_length);
		buf_consume(in, (size_t)h->content_length);
	}
	return 0;
}

static void
sim_serve(struct sim_conn *c)
{
	struct buf in = BUF_INIT, body = BUF_INIT;
	struct http_head_state st;
	struct http_request h;
	struct sim_req r;
	struct arena *a;
	enum http_parse_result pr;
	struct err e;
	size_t used;

	while (!c->close) {
		a = arena_create(16384);
		http_head_state_init(&st);
		memset(&h, 0, sizeof(h));
		for (;;) {
			err_clear(&e);
			pr = buf_rlen(&in) > 0 ? http_parse_head(&st, buf_rptr(&in),
			    buf_rlen(&in), NULL, a, &h, &used, &e) :
			    HTTP_PARSE_INCOMPLETE;
			if (pr != HTTP_PARSE_INCOMPLETE)
				break;
			if (sim_read_more(c->fd, &in) != 0) {
				arena_destroy(a);
				goto out;
			}
		}
		if (pr == HTTP_PARSE_ERROR) {
			c->close = true;
			sim_respond_error(c, e.status ? e.status : 400, "BadRequest",
			    e.msg);
			arena_destroy(a);
			break;
		}
		buf_consume(&in, used);
		if (!h.keep_alive)
			c->close = true;
		if (h.expect_continue)
			(void)sim_write_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		buf_reset(&body);
		if (sim_read_body(c->fd, &in, &h, &body, &e) != 0) {
			c->close = true;
			if (e.status != 0)
				sim_respond_error(c, e.status, "BadRequest", e.msg);
			arena_destroy(a);
			break;
		}
		memset(&r, 0, sizeof(r));
		r.http = &h;
		r.arena = a;
		r.body = buf_cstr(&body);
		r.body_len = buf_rlen(&body);
		r.path = http_percent_decode(a, h.path, strlen(h.path), &e);
		if (r.path == NULL) {
			c->close = true;
			sim_respond_error(c, 400, "BadRequest", e.msg);
			arena_destroy(a);
			break;
		}
		/* a fault as a path prefix: /fault/<spec>/<real path> */
		if (strncmp(r.path, "/fault/", 7) == 0) {
			const char *spec = r.path + 7, *slash = strchr(spec, '/');

			if (slash != NULL) {
				r.fault_spec = arena_strndup(a, spec,
				    (size_t)(slash - spec));
				r.path = slash;
			}
		}
		if (http_header_get(&h, "x-sim-fault") != NULL)
			r.fault_spec = http_header_get(&h, "x-sim-fault");
		sim_dispatch(c, &r);
		arena_destroy(a);
	}
out:
	buf_free(&in);
	buf_free(&body);
}

static void *
sim_conn_thread(void *arg)
{
	struct sim_conn *c = arg;

	sim_serve(c);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&sim_conn_lock);
	sim_nconn--;
	pthread_mutex_unlock(&sim_conn_lock);
	return NULL;
}

/* ---- main -------------------------------------------------------------- */

static void
sim_on_signal(int sig)
{
	(void)sig;
	sim_stop = 1;
}

static int
sim_listen(const char *host, int port, int *actual_port, struct err *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[16];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0)
		return err_set(e, 0, "could not resolve \"%s\": %s", host,
		    gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 4096) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(e, 0, "could not listen on %s:%d: %s", host, port,
		    strerror(errno));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			*actual_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*actual_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

static void
sim_usage(FILE *f)
{
	fprintf(f,
	    "usage: ingen-azure-sim [--host ADDR] [--port N] [--rules FILE]\n"
	    "       [--docs FILE] [--latency-ms N] [--api-key KEY]\n"
	    "       [--search-key KEY] [--client-secret SECRET] [--token-ttl S]\n"
	    "       [--context-limit TOKENS] [--model NAME] [--pidfile FILE]\n"
	    "       [--max-seconds S] [--quiet]\n"
	    "Serves the Azure OpenAI chat-completions protocol, its token\n"
	    "endpoints and Azure AI Search on loopback (docs/simulator.md).\n");
}

static long
sim_num_arg(const char *name, const char *v, long lo, long hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
		fprintf(stderr, "ingen-azure-sim: invalid value for --%s: %s\n",
		    name, v);
		exit(2);
	}
	return n;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "rules", required_argument, NULL, 'r' },
		{ "docs", required_argument, NULL, 'd' },
		{ "latency-ms", required_argument, NULL, 'l' },
		{ "api-key", required_argument, NULL, 'k' },
		{ "search-key", required_argument, NULL, 'K' },
		{ "client-secret", required_argument, NULL, 's' },
		{ "token-ttl", required_argument, NULL, 't' },
		{ "context-limit", required_argument, NULL, 'c' },
		{ "model", required_argument, NULL, 'm' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "max-seconds", required_argument, NULL, 'M' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct sim s;
	const char *pidfile = NULL;
	long max_seconds = 0;
	struct sigaction sa;
	struct err e;
	int opt, lfd, port = 0;
	int64_t stop_at = 0;
	struct log_field f[3];

	s.host = "127.0.0.1";
	s.port = 0;
	s.token_ttl = SIM_DEFAULT_TTL;
	s.context_limit = SIM_DEFAULT_CONTEXT;
	s.model_name = SIM_DEFAULT_MODEL;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'H': s.host = optarg; break;
		case 'p': s.port = (int)sim_num_arg("port", optarg, 0, 65535); break;
		case 'r': s.rules_file = optarg; break;
		case 'd': s.docs_file = optarg; break;
		case 'l': s.latency_ms = sim_num_arg("latency-ms", optarg, 0,
		    3600000); break;
		case 'k': s.api_key = optarg; break;
		case 'K': s.search_key = optarg; break;
		case 's': s.client_secret = optarg; break;
		case 't': s.token_ttl = sim_num_arg("token-ttl", optarg, 1,
		    86400 * 30); break;
		case 'c': s.context_limit = sim_num_arg("context-limit", optarg,
		    1, 100000000); break;
		case 'm': s.model_name = optarg; break;
		case 'P': pidfile = optarg; break;
		case 'M': max_seconds = sim_num_arg("max-seconds", optarg, 0,
		    86400 * 365); break;
		case 'q': s.quiet = true; break;
		case 'h': sim_usage(stdout); return 0;
		default: sim_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		sim_usage(stderr);
		return 2;
	}
	if (s.search_key == NULL)
		s.search_key = s.api_key;
	log_set_role("azure-sim");
	pthread_mutex_init(&s.lock, NULL);
	s.start_ms = clock_now_ms();
	if (s.rules_file != NULL && sim_rules_load(&s, s.rules_file, &e) != 0) {
		fprintf(stderr, "ingen-azure-sim: %s\n", e.msg);
		return 2;
	}
	if (s.docs_file != NULL && sim_docs_load(&s, s.docs_file, &e) != 0) {
		fprintf(stderr, "ingen-azure-sim: %s\n", e.msg);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sim_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	lfd = sim_listen(s.host, s.port, &port, &e);
	if (lfd < 0) {
		fprintf(stderr, "ingen-azure-sim: %s\n", e.msg);
		return 1;
	}
	s.port = port;
	if (pidfile != NULL) {
		FILE *pf = fopen(pidfile, "w");

		if (pf == NULL) {
			fprintf(stderr, "ingen-azure-sim: could not write pidfile "
			    "\"%s\": %s\n", pidfile, strerror(errno));
			return 1;
		}
		fprintf(pf, "%ld\n", (long)getpid());
		fclose(pf);
	}
	if (max_seconds > 0)
		stop_at = clock_now_ms() + max_seconds * 1000;
	f[0] = LOG_STR("host", s.host);
	f[1] = LOG_INT("port", port);
	f[2] = LOG_INT("rules", (long long)s.n_rules);
	log_emit(LOG_LEVEL_INFO, NULL, f, 3, "ready");

	while (!sim_stop) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		struct sim_conn *c;
		pthread_attr_t attr;
		pthread_t tid;
		int cfd;

		if (stop_at != 0 && clock_now_ms() >= stop_at) {
			log_info(NULL, "stopping after --max-seconds %ld",
			    max_seconds);
			break;
		}
		if (poll(&pfd, 1, SIM_ACCEPT_POLL_MS) <= 0)
			continue;
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		pthread_mutex_lock(&sim_conn_lock);
		if (sim_nconn >= SIM_MAX_CONNECTIONS) {
			pthread_mutex_unlock(&sim_conn_lock);
			close(cfd);
			continue;
		}
		sim_nconn++;
		pthread_mutex_unlock(&sim_conn_lock);
		pthread_mutex_lock(&s.lock);
		s.connections++;
		pthread_mutex_unlock(&s.lock);
		c = xcalloc(1, sizeof(*c));
		c->fd = cfd;
		c->sim = &s;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, SIM_THREAD_STACK);
		if (pthread_create(&tid, &attr, sim_conn_thread, c) != 0) {
			close(cfd);
			free(c);
			pthread_mutex_lock(&sim_conn_lock);
			sim_nconn--;
			pthread_mutex_unlock(&sim_conn_lock);
		}
		pthread_attr_destroy(&attr);
	}
	close(lfd);
	if (pidfile != NULL)
		unlink(pidfile);
	log_info(NULL, "stopped");
	/* connection threads may be mid-reply; the process exit ends them */
	return 0;
}
