/*
 * sim_search.c -- a small Azure AI Search: the query API
 * (POST /indexes/{index}/docs/search) and the document count
 * (GET /indexes/{index}/docs/$count) over documents loaded from a file, with
 * plain term-match scoring, semantic captions, and the faults a test asks
 * for (per request, or for every search call through POST /sim/search-fault).
 * Enough for the search client (lib/azsearch.c) and the knowledge-base
 * flow's Azure path to be tested end to end; it is not a search engine and
 * never writes its documents.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/xmalloc.h"
#include "sim/sim.h"

#define SIM_SEARCH_MAX_TERMS 32
#define SIM_SEARCH_DEFAULT_TOP 50
#define SIM_CAPTION_BYTES 200     /* of the content, in a semantic caption */
#define SIM_LAST_QUERY_BYTES 200  /* of the search text, kept in search_last */

static const char *
doc_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static int
docs_add_list(struct sim *s, cJSON *list, const char *index, size_t *i,
    const char *path, struct err *e)
{
	cJSON *d;

	cJSON_ArrayForEach(d, list) {
		struct sim_doc *doc = &s->docs[*i];

		if (!cJSON_IsObject(d) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "id")))
			return err_set(e, 0, "documents file \"%s\": document %zu "
			    "is not an object with a string id", path, *i);
		doc->json = d;
		doc->index = index;
		doc->id = doc_str(d, "id");
		doc->title = doc_str(d, "title");
		doc->content = doc_str(d, "content");
		doc->category = doc_str(d, "category");
		(*i)++;
	}
	return 0;
}

int
sim_docs_load(struct sim *s, const char *path, struct err *e)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n, total = 0, i = 0;
	cJSON *root, *it;

	if (f == NULL)
		return err_set(e, 0, "could not open documents file \"%s\": %s",
		    path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	root = cJSON_ParseWithLength(buf_cstr(&b), buf_rlen(&b));
	buf_free(&b);
	/* a list serves every index; an object maps index names to lists */
	if (cJSON_IsArray(root)) {
		total = (size_t)cJSON_GetArraySize(root);
	} else if (cJSON_IsObject(root)) {
		cJSON_ArrayForEach(it, root) {
			if (!cJSON_IsArray(it)) {
				cJSON_Delete(root);
				return err_set(e, 0, "documents file \"%s\": index "
				    "\"%s\" is not a list", path, it->string);
			}
			total += (size_t)cJSON_GetArraySize(it);
		}
	} else {
		cJSON_Delete(root);
		return err_set(e, 0, "could not load documents file \"%s\": not a "
		    "JSON list or object", path);
	}
	s->docs = xcalloc(total ? total : 1, sizeof(*s->docs));
	s->docs_root = root;
	if (cJSON_IsArray(root)) {
		if (docs_add_list(s, root, NULL, &i, path, e) != 0)
			return -1;
	} else {
		s->indexes = xcalloc((size_t)cJSON_GetArraySize(root) + 1,
		    sizeof(*s->indexes));
		cJSON_ArrayForEach(it, root) {
			s->indexes[s->n_indexes++] = it->string;
			if (docs_add_list(s, it, it->string, &i, path, e) != 0)
				return -1;
		}
	}
	s->n_docs = i;
	return 0;
}

/* Occurrences of `term` (lower case) in `text`, case-insensitively. */
static long
count_term(const char *text, const char *term)
{
	size_t n = strlen(term);
	long c = 0;
	const char *p;

	if (n == 0)
		return 0;
	for (p = text; *p != '\0'; p++)
		if (strncasecmp(p, term, n) == 0)
			c++;
	return c;
}

/* Split a query into lower-case alphanumeric terms. */
static size_t
query_terms(struct arena *a, const char *q, char **terms, size_t max)
{
	size_t n = 0, len;
	const char *p = q, *start;
	char *t;

	while (*p != '\0' && n < max) {
		while (*p != '\0' && !isalnum((unsigned char)*p) &&
		    (unsigned char)*p < 0x80)
			p++;
		start = p;
		while (*p != '\0' && (isalnum((unsigned char)*p) ||
		    (unsigned char)*p >= 0x80))
			p++;
		len = (size_t)(p - start);
		if (len == 0)
			continue;
		t = arena_strndup(a, start, len);
		for (size_t k = 0; k < len; k++)
			t[k] = (char)tolower((unsigned char)t[k]);
		terms[n++] = t;
	}
	return n;
}

/* "field eq 'value'" -- the only filter form the simulator knows. */
static bool
filter_match(const struct sim_doc *d, const char *filter, struct arena *a)
{
	char field[64], value[256];
	const char *v;

	if (filter == NULL || *filter == '\0')
		return true;
	if (sscanf(filter, " %63[A-Za-z0-9_] eq '%255[^']'", field, value) != 2)
		return true;
	(void)a;
	v = doc_str(d->json, field);
	return strcmp(v, value) == 0;
}

struct scored {
	const struct sim_doc *doc;
	double score;
	size_t order;
};

static int
scored_cmp(const void *x, const void *y)
{
	const struct scored *a = x, *b = y;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

static bool
select_has(const char *select, const char *field)
{
	size_t n = strlen(field);
	const char *p = select;

	if (select == NULL || *select == '\0' || strcmp(select, "*") == 0)
		return true;
	while ((p = strstr(p, field)) != NULL) {
		bool start = p == select || p[-1] == ',' || p[-1] == ' ';
		bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';

		if (start && end)
			return true;
		p += n;
	}
	return false;
}

static void
search_reply(struct sim_conn *c, int status, cJSON *root)
{
	char *text = cJSON_PrintUnformatted(root);

	sim_respond(c, status, "application/json; odata.metadata=minimal", text,
	    strlen(text), NULL, 0);
	cJSON_free(text);
}

/* Whether `index` exists: every name does for a list of documents, only
 * the file's names for an object. */
static bool
index_known(const struct sim *s, const char *index)
{
	size_t i;

	if (s->indexes == NULL)
		return true;
	for (i = 0; i < s->n_indexes; i++)
		if (strcmp(s->indexes[i], index) == 0)
			return true;
	return false;
}

/* "@search.captions": the first SIM_CAPTION_BYTES of the content from the
 * first place a term occurs (else from the start), cut at a character. */
static void
add_caption(cJSON *item, const struct sim_doc *d, char **terms,
    size_t n_terms)
{
	const char *text = d->content, *from = text;
	size_t n, t;
	cJSON *list, *cap;
	char *copy;

	for (t = 0; t < n_terms; t++) {
		size_t tl = strlen(terms[t]);
		const char *p;

		for (p = text; *p != '\0'; p++)
			if (strncasecmp(p, terms[t], tl) == 0)
				break;
		if (*p != '\0') {
			from = p;
			break;
		}
	}
	n = strlen(from);
	if (n > SIM_CAPTION_BYTES) {
		n = SIM_CAPTION_BYTES;
		while (n > 0 && ((unsigned char)from[n] & 0xC0) == 0x80)
			n--;
	}
	copy = xstrndup(from, n);
	list = cJSON_AddArrayToObject(item, "@search.captions");
	cap = cJSON_CreateObject();
	cJSON_AddStringToObject(cap, "text", copy);
	cJSON_AddStringToObject(cap, "highlights", "");
	cJSON_AddItemToArray(list, cap);
	free(copy);
}

/* Remember what a search call asked for (GET /sim/stats "search_last"). */
static void
remember(struct sim *s, const struct sim_req *r, const char *index,
    const char *route, const cJSON *req)
{
	cJSON *last = cJSON_CreateObject();
	const char *auth = http_header_get(r->http, "api-key") != NULL ?
	    "api-key" : http_header_get(r->http, "authorization") != NULL ?
	    "bearer" : "none";
	const char *q = r->http->query, *ver;
	const cJSON *v;

	cJSON_AddStringToObject(last, "route", route);
	cJSON_AddStringToObject(last, "index", index);
	cJSON_AddStringToObject(last, "auth", auth);
	ver = q != NULL ? strstr(q, "api-version=") : NULL;
	if (ver != NULL) {
		char *vv = arena_strndup(r->arena, ver + 12, strcspn(ver + 12, "&"));

		cJSON_AddStringToObject(last, "api_version", vv);
	}
	if (cJSON_IsObject(req)) {
		v = cJSON_GetObjectItemCaseSensitive(req, "search");
		if (cJSON_IsString(v)) {
			size_t n = strlen(v->valuestring);
			char *head = arena_strndup(r->arena, v->valuestring,
			    n > SIM_LAST_QUERY_BYTES ? SIM_LAST_QUERY_BYTES : n);

			cJSON_AddNumberToObject(last, "search_bytes", (double)n);
			/* cJSON escapes whatever bytes the head ends with */
			cJSON_AddStringToObject(last, "search_head", head);
		}
		if ((v = cJSON_GetObjectItemCaseSensitive(req, "top")) != NULL)
			cJSON_AddItemToObject(last, "top", cJSON_Duplicate(v, 1));
		if ((v = cJSON_GetObjectItemCaseSensitive(req, "queryType")) != NULL)
			cJSON_AddItemToObject(last, "query_type",
			    cJSON_Duplicate(v, 1));
		if ((v = cJSON_GetObjectItemCaseSensitive(req,
		    "semanticConfiguration")) != NULL)
			cJSON_AddItemToObject(last, "semantic_configuration",
			    cJSON_Duplicate(v, 1));
		if ((v = cJSON_GetObjectItemCaseSensitive(req, "captions")) != NULL)
			cJSON_AddItemToObject(last, "captions", cJSON_Duplicate(v, 1));
	}
	pthread_mutex_lock(&s->lock);
	cJSON_Delete(s->search_last);
	s->search_last = last;
	pthread_mutex_unlock(&s->lock);
}

/* A fault's status reply, with Azure AI Search's error body. */
static void
search_fault_status(struct sim_conn *c, const struct sim_fault *f)
{
	struct http_header extra[2];
	char h_ms[] = "retry-after-ms", h_s[] = "Retry-After";
	char ms[32], sec[32];
	size_t n = 0;
	const char *code, *msg;

	if (f->retry_after_ms >= 0) {
		snprintf(ms, sizeof(ms), "%ld", f->retry_after_ms);
		extra[n].name = h_ms;
		extra[n++].value = ms;
	}
	if (f->retry_after_s >= 0) {
		snprintf(sec, sizeof(sec), "%ld", f->retry_after_s);
		extra[n].name = h_s;
		extra[n++].value = sec;
	}
	switch (f->status) {
	case 401:
		code = "";
		msg = "Access denied due to invalid subscription key or wrong API "
		    "endpoint.";
		break;
	case 403:
		code = "Forbidden";
		msg = "Authorization failed.";
		break;
	case 404:
		code = "";
		msg = "The index for service 'sim' was not found.";
		break;
	case 429:
		code = "";
		msg = "You are sending too many requests. Please try again later.";
		break;
	case 503:
		code = "";
		msg = "Service Unavailable";
		break;
	default:
		code = "";
		msg = "Simulated fault";
		break;
	}
	{
		cJSON *root = cJSON_CreateObject(), *e;
		char *text;

		e = cJSON_AddObjectToObject(root, "error");
		cJSON_AddStringToObject(e, "code", code);
		cJSON_AddStringToObject(e, "message", msg);
		text = cJSON_PrintUnformatted(root);
		sim_respond(c, f->status, "application/json; charset=utf-8", text,
		    strlen(text), extra, n);
		cJSON_free(text);
		cJSON_Delete(root);
	}
}

/*
 * What every search call does first: count, remember, check the key and
 * the api-version, the index, and apply a fault (the request's header or
 * path prefix, else the one of POST /sim/search-fault).  0 = go on and
 * answer; -1 = answered (or the connection is to be closed).
 */
static int
search_prelude(struct sim_conn *c, const struct sim_req *r,
    const char *index, const char *route, const cJSON *req)
{
	struct sim *s = c->sim;
	const char *spec = r->fault_spec, *q = r->http->query;
	struct sim_fault f;
	struct err e;
	char msg[256];
	long count = 0;

	remember(s, r, index, route, req);
	if (sim_check_auth(c, r, s->search_key, false) != 0)
		return -1;
	if (spec != NULL) {
		count = sim_count_key(s, http_header_get(r->http, "x-sim-key"));
	} else {
		pthread_mutex_lock(&s->lock);
		if (s->search_fault != NULL) {
			spec = arena_strdup(r->arena, s->search_fault);
			count = ++s->search_fault_hits;
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (sim_fault_parse(spec, &f, &e) != 0) {
		sim_respond_error(c, 400, "sim_bad_fault", e.msg);
		return -1;
	}
	if (f.times > 0 && count > f.times)
		f.kind = SIM_FAULT_NONE;
	sim_sleep_ms(f.latency_ms);
	switch (f.kind) {
	case SIM_FAULT_STATUS:
		search_fault_status(c, &f);
		return -1;
	case SIM_FAULT_HANG:
		sim_hang(c, f.hang_ms);
		return -1;
	case SIM_FAULT_RESET:
		{
			struct linger lg = { 1, 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			c->close = true;
		}
		return -1;
	case SIM_FAULT_MALFORMED:
		sim_respond(c, 200, "application/json; odata.metadata=minimal",
		    "{\"value\":[{\"@search.score\":1,", 29, NULL, 0);
		return -1;
	case SIM_FAULT_NONE:
		break;
	default:
		sim_respond_error(c, 400, "sim_bad_fault", "this fault is not "
		    "simulated for search calls (status, hang, reset, malformed, "
		    "none)");
		return -1;
	}
	if (q == NULL || strstr(q, "api-version=") == NULL) {
		sim_respond_error(c, 400, "", "Invalid or missing api-version "
		    "query string parameter.");
		return -1;
	}
	if (!index_known(s, index)) {
		snprintf(msg, sizeof(msg), "The index '%.100s' for service 'sim' "
		    "was not found.", index);
		sim_respond_error(c, 404, "", msg);
		return -1;
	}
	return 0;
}

void
sim_search_count(struct sim_conn *c, const struct sim_req *r,
    const char *index)
{
	struct sim *s = c->sim;
	char num[32];
	size_t i;
	long n = 0;

	pthread_mutex_lock(&s->lock);
	s->search_count_requests++;
	pthread_mutex_unlock(&s->lock);
	if (search_prelude(c, r, index, "count", NULL) != 0)
		return;
	for (i = 0; i < s->n_docs; i++)
		if (s->docs[i].index == NULL || strcmp(s->docs[i].index, index) == 0)
			n++;
	/* Azure sends the number with a byte order mark */
	snprintf(num, sizeof(num), "\xEF\xBB\xBF%ld", n);
	sim_respond(c, 200, "text/plain", num, strlen(num), NULL, 0);
}

void
sim_search_set_fault(struct sim_conn *c, const struct sim_req *r)
{
	struct sim *s = c->sim;
	struct sim_fault f;
	struct err e;
	char *spec = xstrndup(r->body ? r->body : "", r->body_len);

	spec[strcspn(spec, "\r\n")] = '\0';
	if (*spec != '\0' && sim_fault_parse(spec, &f, &e) != 0) {
		free(spec);
		sim_respond_error(c, 400, "sim_bad_fault", e.msg);
		return;
	}
	pthread_mutex_lock(&s->lock);
	free(s->search_fault);
	s->search_fault = *spec != '\0' ? spec : NULL;
	s->search_fault_hits = 0;
	pthread_mutex_unlock(&s->lock);
	if (*spec == '\0')
		free(spec);
	sim_respond(c, 200, "application/json", "{\"ok\":true}", 11, NULL, 0);
}

void
sim_search(struct sim_conn *c, const struct sim_req *r, const char *index)
{
	struct sim *s = c->sim;
	cJSON *req = NULL, *root = NULL, *value, *item, *f;
	const cJSON *v;
	const char *search = "*", *filter = NULL, *select = NULL, *qtype = NULL;
	char *terms[SIM_SEARCH_MAX_TERMS], msg[256];
	struct scored *hits;
	size_t n_terms, n_hits = 0, i, t;
	long top = SIM_SEARCH_DEFAULT_TOP, skip = 0;
	bool count = false, semantic = false, captions = false;

	pthread_mutex_lock(&s->lock);
	s->search_requests++;
	pthread_mutex_unlock(&s->lock);
	req = cJSON_ParseWithLength(r->body, r->body_len);
	if (search_prelude(c, r, index, "search", req) != 0)
		goto out;
	if (!cJSON_IsObject(req)) {
		sim_respond_error(c, 400, "", "The request is invalid. Details: "
		    "parameters : The parameter is not valid JSON.");
		goto out;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "search")) != NULL &&
	    cJSON_IsString(v))
		search = v->valuestring;
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "top")) != NULL &&
	    cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1000)
		top = (long)v->valuedouble;
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "skip")) != NULL &&
	    cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 100000)
		skip = (long)v->valuedouble;
	count = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "count"));
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "filter")) != NULL &&
	    cJSON_IsString(v))
		filter = v->valuestring;
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "select")) != NULL &&
	    cJSON_IsString(v))
		select = v->valuestring;
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "queryType")) != NULL &&
	    cJSON_IsString(v))
		qtype = v->valuestring;
	semantic = qtype != NULL && strcmp(qtype, "semantic") == 0;
	if ((v = cJSON_GetObjectItemCaseSensitive(req, "captions")) != NULL &&
	    cJSON_IsString(v))
		captions = strncmp(v->valuestring, "extractive", 10) == 0;
	v = cJSON_GetObjectItemCaseSensitive(req, "semanticConfiguration");
	if (semantic && (!cJSON_IsString(v) || *v->valuestring == '\0')) {
		/* Azure: a semantic query names its configuration (or the
		 * index has a default one; the simulator's indexes have none) */
		sim_respond_error(c, 400, "InvalidRequestParameter", "Invalid "
		    "request: semanticConfiguration is required for queryType "
		    "semantic.");
		goto out;
	}

	n_terms = strcmp(search, "*") == 0 ? 0 :
	    query_terms(r->arena, search, terms, SIM_SEARCH_MAX_TERMS);
	hits = arena_alloc(r->arena, (s->n_docs ? s->n_docs : 1) * sizeof(*hits));
	for (i = 0; i < s->n_docs; i++) {
		const struct sim_doc *d = &s->docs[i];
		double score = 0;

		if (d->index != NULL && strcmp(d->index, index) != 0)
			continue;
		if (!filter_match(d, filter, r->arena))
			continue;
		if (n_terms == 0) {
			score = 1.0;
		} else {
			for (t = 0; t < n_terms; t++)
				score += 2.0 * (double)count_term(d->title, terms[t]) +
				    (double)count_term(d->content, terms[t]) +
				    (double)count_term(d->category, terms[t]);
		}
		if (score <= 0)
			continue;
		hits[n_hits].doc = d;
		hits[n_hits].score = score;
		hits[n_hits].order = i;
		n_hits++;
	}
	qsort(hits, n_hits, sizeof(*hits), scored_cmp);

	root = cJSON_CreateObject();
	snprintf(msg, sizeof(msg), "https://sim.search.windows.net/indexes('%.100s')"
	    "/$metadata#docs(*)", index);
	cJSON_AddStringToObject(root, "@odata.context", msg);
	if (count)
		cJSON_AddNumberToObject(root, "@odata.count", (double)n_hits);
	value = cJSON_AddArrayToObject(root, "value");
	for (i = (size_t)skip; i < n_hits && (long)(i - (size_t)skip) < top; i++) {
		item = cJSON_CreateObject();
		cJSON_AddNumberToObject(item, "@search.score", hits[i].score);
		if (semantic) {
			double rr = hits[i].score / 2.0;

			cJSON_AddNumberToObject(item, "@search.rerankerScore",
			    rr > 4.0 ? 4.0 : rr);
			if (captions)
				add_caption(item, hits[i].doc, terms, n_terms);
		}
		cJSON_ArrayForEach(f, hits[i].doc->json)
			if (select_has(select, f->string))
				cJSON_AddItemToObject(item, f->string,
				    cJSON_Duplicate(f, 1));
		cJSON_AddItemToArray(value, item);
	}
	search_reply(c, 200, root);
out:
	cJSON_Delete(root);
	cJSON_Delete(req);
}
