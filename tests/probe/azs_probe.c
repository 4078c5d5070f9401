/*
 * azs_probe.c -- a driver for the Azure AI Search client (lib/azsearch.c),
 * for tests/e2e/test_azsearch.py.  It loads the configuration the way the
 * server does (config_load: the environment, INGENIOUS_AZURE_SEARCH_SERVICES__0__*,
 * INGENIOUS_LLM__*, AZURE_SEARCH_DEFAULT_INDEX; no file), checks
 * azure_search_services[0] with azs_config_check, runs azs_count or
 * azs_search on one or more threads, and prints one JSON document:
 *
 *   {"state": "ok"|"not_configured"|"incomplete", "missing": ..., "index": ...,
 *    "results": [{"ok": true, "status": 0, "message": "", "ms": 12,
 *                 "count": 3 | "hits": [{"id", "title", "content", "snippet",
 *                 "score", "reranker_score"}]}]}
 *
 * Usage: azs_probe [--threads N] [--calls N] [--query-file F] [--repeat N]
 *                  count | search QUERY TOP
 * (--query-file: the query is the file's text; --repeat: the query N times,
 * for very long queries).  It owns nothing but its own process and never
 * prints a key.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/azsearch.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/llm.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define PROBE_MAX_THREADS 32
#define PROBE_MAX_CALLS   64

struct probe_job {
	const struct config *cfg;
	const struct config_search *svc;
	const char *index;
	const char *query;          /* NULL = count */
	int top;
	int calls;
	cJSON *results;
};

static cJSON *
hit_json(const struct azs_hit *h)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", h->id);
	if (h->title != NULL)
		cJSON_AddStringToObject(o, "title", h->title);
	else
		cJSON_AddNullToObject(o, "title");
	cJSON_AddStringToObject(o, "content", h->content);
	if (h->snippet != NULL)
		cJSON_AddStringToObject(o, "snippet", h->snippet);
	else
		cJSON_AddNullToObject(o, "snippet");
	cJSON_AddNumberToObject(o, "score", h->score);
	cJSON_AddNumberToObject(o, "reranker_score", h->reranker_score);
	return o;
}

static void *
probe_thread(void *arg)
{
	struct probe_job *j = arg;
	int i, k, n;

	for (i = 0; i < j->calls; i++) {
		struct arena *a = arena_create(4096);
		cJSON *r = cJSON_CreateObject(), *list;
		struct azs_hit *hits = NULL;
		struct err e;
		int64_t t0 = clock_now_ms();
		long count = -1;

		err_clear(&e);
		if (j->query == NULL) {
			n = azs_count(j->cfg, j->svc, j->index, &count, &e);
			if (n == 0)
				cJSON_AddNumberToObject(r, "count", (double)count);
		} else {
			n = azs_search(j->cfg, j->svc, j->index, j->query, j->top, a,
			    &hits, &e);
			if (n >= 0) {
				list = cJSON_AddArrayToObject(r, "hits");
				for (k = 0; k < n; k++)
					cJSON_AddItemToArray(list, hit_json(&hits[k]));
			}
		}
		cJSON_AddBoolToObject(r, "ok", n >= 0);
		cJSON_AddNumberToObject(r, "status", n >= 0 ? 0 : e.status);
		cJSON_AddStringToObject(r, "message", n >= 0 ? "" : e.msg);
		cJSON_AddNumberToObject(r, "ms", (double)(clock_now_ms() - t0));
		cJSON_AddItemToArray(j->results, r);
		arena_destroy(a);
	}
	return NULL;
}

static int
usage(void)
{
	fprintf(stderr, "usage: azs_probe [--threads N] [--calls N] "
	    "[--query-file F] [--repeat N] count | search QUERY TOP\n");
	return 2;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n;
	char *out;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

int
main(int argc, char **argv)
{
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;
	struct config_problems probs;
	struct probe_job jobs[PROBE_MAX_THREADS];
	pthread_t tids[PROBE_MAX_THREADS];
	const struct config_search *svc;
	const char *index = NULL, *missing = NULL, *query_file = NULL;
	const char *state_name;
	enum azs_config_state state;
	struct config *cfg;
	char *query = NULL, *text;
	int threads = 1, calls = 1, repeat = 1, top = 0, i, argi = 1;
	bool search;
	cJSON *out, *results, *r;

	for (; argi < argc && strncmp(argv[argi], "--", 2) == 0; argi += 2) {
		if (argi + 1 >= argc)
			return usage();
		if (strcmp(argv[argi], "--threads") == 0)
			threads = atoi(argv[argi + 1]);
		else if (strcmp(argv[argi], "--calls") == 0)
			calls = atoi(argv[argi + 1]);
		else if (strcmp(argv[argi], "--repeat") == 0)
			repeat = atoi(argv[argi + 1]);
		else if (strcmp(argv[argi], "--query-file") == 0)
			query_file = argv[argi + 1];
		else
			return usage();
	}
	if (argi >= argc || threads < 1 || threads > PROBE_MAX_THREADS ||
	    calls < 1 || calls > PROBE_MAX_CALLS || repeat < 1)
		return usage();
	search = strcmp(argv[argi], "search") == 0;
	if (search) {
		if (argi + 2 >= argc && !(query_file != NULL && argi + 1 < argc))
			return usage();
		if (query_file != NULL) {
			query = read_file(query_file);
			if (query == NULL) {
				fprintf(stderr, "azs_probe: could not read %s\n",
				    query_file);
				return 1;
			}
			top = atoi(argv[argi + 1]);
		} else {
			query = xstrdup(argv[argi + 1]);
			top = atoi(argv[argi + 2]);
		}
		if (repeat > 1) {
			struct buf b = BUF_INIT;

			for (i = 0; i < repeat; i++)
				buf_puts(&b, query);
			free(query);
			query = xstrdup(buf_cstr(&b));
			buf_free(&b);
		}
	} else if (strcmp(argv[argi], "count") != 0) {
		return usage();
	}

	log_set_role("azs-probe");
	memset(&probs, 0, sizeof(probs));
	ov.config_file = "";
	cfg = config_load(&ov, NULL, NULL, &probs);
	if (cfg == NULL) {
		for (size_t k = 0; k < probs.n; k++)
			fprintf(stderr, "azs_probe: %s\n", probs.lines[k]);
		config_problems_free(&probs);
		return 1;
	}
	config_problems_free(&probs);
	svc = cfg->n_search > 0 ? &cfg->search[0] : NULL;
	state = azs_config_check(svc, cfg->kb.azure_default_index, &index,
	    &missing);
	state_name = state == AZS_OK ? "ok" : state == AZS_NOT_CONFIGURED ?
	    "not_configured" : "incomplete";

	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "state", state_name);
	if (missing != NULL)
		cJSON_AddStringToObject(out, "missing", missing);
	cJSON_AddStringToObject(out, "index", index);
	results = cJSON_AddArrayToObject(out, "results");
	llm_global_init();
	for (i = 0; i < threads; i++) {
		jobs[i].cfg = cfg;
		jobs[i].svc = svc;
		jobs[i].index = index;
		jobs[i].query = search ? query : NULL;
		jobs[i].top = top;
		jobs[i].calls = calls;
		jobs[i].results = cJSON_CreateArray();
		if (pthread_create(&tids[i], NULL, probe_thread, &jobs[i]) != 0) {
			fprintf(stderr, "azs_probe: could not start a thread\n");
			return 1;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		while ((r = cJSON_DetachItemFromArray(jobs[i].results, 0)) != NULL)
			cJSON_AddItemToArray(results, r);
		cJSON_Delete(jobs[i].results);
	}
	text = cJSON_PrintUnformatted(out);
	printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(out);
	free(query);
	config_free(cfg);
	return 0;
}
