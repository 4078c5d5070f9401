/*
 * sim_search.c -- a small Azure AI Search: the query API
 * (POST /indexes/{index}/docs/search) over documents loaded from a file,
 * with plain term-match scoring.  Enough for the knowledge-base flow's Azure
 * path to be tested end to end; it is not a search engine and never writes.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/xmalloc.h"
#include "sim/sim.h"

#define SIM_SEARCH_MAX_TERMS 32
#define SIM_SEARCH_DEFAULT_TOP 50

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
		cJSON_ArrayForEach(it, root)
			if (docs_add_list(s, it, it->string, &i, path, e) != 0)
				return -1;
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

void
sim_search(struct sim_conn *c, const struct sim_req *r, const char *index)
{
	struct sim *s = c->sim;
	const char *q = r->http->query;
	cJSON *req = NULL, *root = NULL, *value, *item, *f;
	const cJSON *v;
	const char *search = "*", *filter = NULL, *select = NULL, *qtype = NULL;
	char *terms[SIM_SEARCH_MAX_TERMS], msg[256];
	struct scored *hits;
	size_t n_terms, n_hits = 0, i, t;
	long top = SIM_SEARCH_DEFAULT_TOP, skip = 0;
	bool count = false, index_known = false;

	pthread_mutex_lock(&s->lock);
	s->search_requests++;
	pthread_mutex_unlock(&s->lock);
	if (sim_check_auth(c, r, s->search_key, false) != 0)
		return;
	if (q == NULL || strstr(q, "api-version=") == NULL) {
		sim_respond_error(c, 400, "", "Invalid or missing api-version "
		    "query string parameter.");
		return;
	}
	req = cJSON_ParseWithLength(r->body, r->body_len);
	if (!cJSON_IsObject(req)) {
		sim_respond_error(c, 400, "", "The request is invalid. Details: "
		    "parameters : The parameter is not valid JSON.");
		goto out;
	}
	for (i = 0; i < s->n_docs; i++)
		if (s->docs[i].index == NULL ||
		    strcmp(s->docs[i].index, index) == 0)
			index_known = true;
	if (!index_known && s->n_docs > 0 && s->docs[0].index != NULL) {
		snprintf(msg, sizeof(msg), "The index '%.100s' for service 'sim' "
		    "was not found.", index);
		sim_respond_error(c, 404, "", msg);
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
		if (qtype != NULL && strcmp(qtype, "semantic") == 0) {
			double rr = hits[i].score / 2.0;

			cJSON_AddNumberToObject(item, "@search.rerankerScore",
			    rr > 4.0 ? 4.0 : rr);
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
