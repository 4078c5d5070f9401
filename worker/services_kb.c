/*
 * services_kb.c -- the knowledge-base service of the server's flow
 * contexts (flows/ctx.h, struct ctx_kb_service): the local knowledge base
 * through the worker's database pool (lib/db_kb.c), Azure AI Search through
 * lib/azsearch.c with azure_search_services[0].  It adapts types; the
 * policy and the texts are flows/kbsearch.c's.
 *
 * Azure's preflight (the index's document count, which the reference asks
 * before every search) is remembered per worker for KB_PREFLIGHT_TTL_MS
 * once it succeeded, so a busy knowledge base does not pay two round trips
 * a search; a failure is never remembered.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "flows/ctx.h"
#include "lib/arena.h"
#include "lib/azsearch.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/db.h"
#include "lib/err.h"
#include "worker/exchange.h"
#include "worker/services.h"
#include "worker/worker.h"

#define KB_PREFLIGHT_TTL_MS 30000
#define KB_MOCK_KEY "mock-search-key-12345"   /* the reference's placeholder */

/* The last successful preflight of this worker: which index, when. */
static pthread_mutex_t kb_preflight_lock = PTHREAD_MUTEX_INITIALIZER;
static char kb_preflight_index[256];
static int64_t kb_preflight_ms;
static long kb_preflight_count;

static const struct config_search *
kb_azure(const struct http_exchange *x)
{
	return x->cfg->n_search > 0 ? &x->cfg->search[0] : NULL;
}

static int
kb_local_search(void *arg, const char *query, int top_k, struct arena *a,
    struct ctx_kb_hit **hits, struct err *e)
{
	struct http_exchange *x = arg;
	struct db_kb_hit *rows;
	struct ctx_kb_hit *out;
	int n, i;

	if (x->w->db == NULL)
		return err_set(e, 503, "the local knowledge base needs the database "
		    "(chat_history.database_url)");
	n = db_kb_search(x->w->db, x->cfg->kb.text_search_config, query, top_k, a,
	    &rows, e);
	if (n <= 0)
		return n;
	out = arena_zalloc(a, (size_t)n * sizeof(*out));
	for (i = 0; i < n; i++) {
		out[i].source = rows[i].source;
		out[i].chunk = rows[i].chunk;
		out[i].content = rows[i].content;
		out[i].snippet = rows[i].snippet;
		out[i].score = rows[i].rank;
	}
	*hits = out;
	return n;
}

static int
kb_local_count(void *arg, long *chunks, struct err *e)
{
	struct http_exchange *x = arg;

	if (x->w->db == NULL)
		return err_set(e, 503, "the local knowledge base needs the database "
		    "(chat_history.database_url)");
	return db_kb_count(x->w->db, chunks, e);
}

static const char *
kb_local_directory(void *arg)
{
	struct http_exchange *x = arg;

	/* made once by the worker: the same directory the master indexes */
	return x->w->kb_dir;
}

static enum ctx_azure_state
kb_azure_state(void *arg, const char **index, const char **missing)
{
	struct http_exchange *x = arg;
	const struct config_search *s = kb_azure(x);

	*index = NULL;
	*missing = NULL;
	if (s == NULL)
		return CTX_AZURE_NOT_CONFIGURED;
	/* the reference's placeholder key means "not configured" */
	if (s->key != NULL && strcmp(s->key, KB_MOCK_KEY) == 0)
		return CTX_AZURE_NOT_CONFIGURED;
	switch (azs_config_check(s, x->cfg->kb.azure_default_index, index, missing)) {
	case AZS_OK:
		return CTX_AZURE_OK;
	case AZS_INCOMPLETE:
		return CTX_AZURE_INCOMPLETE;
	case AZS_NOT_CONFIGURED:
	default:
		return CTX_AZURE_NOT_CONFIGURED;
	}
}

static const char *
kb_azure_index(struct http_exchange *x)
{
	const char *index = NULL, *missing = NULL;

	(void)azs_config_check(kb_azure(x), x->cfg->kb.azure_default_index, &index,
	    &missing);
	return index != NULL ? index : "test-index";
}

static int
kb_azure_count(void *arg, long *count, struct err *e)
{
	struct http_exchange *x = arg;
	const char *index = kb_azure_index(x);
	int64_t now = clock_now_ms();
	int rc;

	pthread_mutex_lock(&kb_preflight_lock);
	if (kb_preflight_ms != 0 && now - kb_preflight_ms < KB_PREFLIGHT_TTL_MS &&
	    strcmp(kb_preflight_index, index) == 0) {
		*count = kb_preflight_count;
		pthread_mutex_unlock(&kb_preflight_lock);
		return 0;
	}
	pthread_mutex_unlock(&kb_preflight_lock);
	rc = azs_count(x->cfg, kb_azure(x), index, count, e);
	pthread_mutex_lock(&kb_preflight_lock);
	if (rc == 0) {
		snprintf(kb_preflight_index, sizeof(kb_preflight_index), "%s", index);
		kb_preflight_ms = now;
		kb_preflight_count = *count;
	} else {
		kb_preflight_ms = 0;
	}
	pthread_mutex_unlock(&kb_preflight_lock);
	return rc;
}

static int
kb_azure_search(void *arg, const char *query, int top_k, struct arena *a,
    struct ctx_kb_hit **hits, struct err *e)
{
	struct http_exchange *x = arg;
	struct azs_hit *rows;
	struct ctx_kb_hit *out;
	int n, i;

	n = azs_search(x->cfg, kb_azure(x), kb_azure_index(x), query, top_k, a,
	    &rows, e);
	if (n <= 0) {
		if (n < 0) {
			/* a failing index is checked again before the next search */
			pthread_mutex_lock(&kb_preflight_lock);
			kb_preflight_ms = 0;
			pthread_mutex_unlock(&kb_preflight_lock);
		}
		return n;
	}
	out = arena_zalloc(a, (size_t)n * sizeof(*out));
	for (i = 0; i < n; i++) {
		out[i].source = rows[i].id;
		out[i].chunk = -1;
		out[i].title = rows[i].title;
		out[i].content = rows[i].content;
		out[i].snippet = rows[i].snippet;
		out[i].score = rows[i].reranker_score > 0 ? rows[i].reranker_score :
		    rows[i].score;
	}
	*hits = out;
	return n;
}

const struct ctx_kb_service services_kb = {
	.local_search = kb_local_search,
	.local_count = kb_local_count,
	.local_directory = kb_local_directory,
	.azure_state = kb_azure_state,
	.azure_count = kb_azure_count,
	.azure_search = kb_azure_search,
};
