/*
 * azsearch.h -- the Azure AI Search client: the document count of an index
 * (the knowledge-base flow's preflight) and a query of it, over the REST API
 * (api-version AZS_API_VERSION) through libcurl, with the language-model
 * client's timeouts, retries, TLS settings and Entra ID tokens
 * (lib/llm_parts.h, docs/azure-search.md).
 *
 * Calls are synchronous and run on the calling flow thread; any number of
 * threads may call at once.  Each call borrows kept curl handles from the
 * language-model client's idle list (lib/llm.c), so connections to the
 * search service stay open between calls.  Bearer tokens live in one
 * process-wide cache that this module creates at its first use and keeps
 * until the process ends.  Only lib/azsearch.c and lib/llm* include curl; this
 * header does not.
 *
 * Messages never hold the api-key or a token.
 */
#ifndef INGEN_AZSEARCH_H
#define INGEN_AZSEARCH_H

#include <stddef.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/err.h"

/* The REST API version sent with every call (the simulator accepts any). */
#define AZS_API_VERSION      "2023-11-01"
/* A query longer than this is cut (on a UTF-8 character boundary) before it
 * is sent: Azure refuses very long search texts, a flow must not fail. */
#define AZS_MAX_QUERY_BYTES  8192
/* Azure's upper bound of `top`; a smaller `top` than 1 asks for 1. */
#define AZS_MAX_TOP          1000
/* The index when neither index_name nor the default index is set. */
#define AZS_FALLBACK_INDEX   "test-index"
/* The Entra ID scope (client credentials) and resource (managed identity). */
#define AZS_SCOPE            "https://search.azure.com/.default"
#define AZS_RESOURCE         "https://search.azure.com/"
/* A key the reference treats as "no Azure Search configured". */
#define AZS_MOCK_KEY         "mock-search-key-12345"

struct azs_hit {
	const char *id;             /* field "id" ("" when the document has none) */
	const char *title;          /* NULL when the document has none */
	const char *content;        /* field "content", else the document as JSON text */
	const char *snippet;        /* semantic caption or highlight text, NULL if none */
	double score;               /* @search.score */
	double reranker_score;      /* @search.rerankerScore, 0 when absent */
};

/*
 * What is missing for a search service to be usable: AZS_OK, or why not (for
 * the flow's preflight reasons "not_configured" / "incomplete_config").
 *   AZS_NOT_CONFIGURED  svc is NULL, or has neither endpoint nor key, or its
 *                       key is AZS_MOCK_KEY (*missing = "endpoint")
 *   AZS_INCOMPLETE      *missing names the field: "endpoint" (empty, or not
 *                       an http:// or https:// URL), "key" (method token),
 *                       "client_id" / "client_secret" (client_id_and_secret)
 * `index` is always set to the index to use: svc->index_name, else
 * default_index (AZURE_SEARCH_DEFAULT_INDEX; may be NULL or ""), else
 * AZS_FALLBACK_INDEX.  Strings point into svc / default_index / static
 * storage.  Pure; any thread.  index and missing may be NULL.
 */
enum azs_config_state { AZS_OK, AZS_NOT_CONFIGURED, AZS_INCOMPLETE };
enum azs_config_state azs_config_check(const struct config_search *svc,
    const char *default_index, const char **index, const char **missing);

/*
 * Documents in `index` (GET {endpoint}/indexes/{index}/docs/$count): the
 * preflight.  Returns 0 with *count set, or -1 with e set (statuses below).
 */
int azs_count(const struct config *cfg, const struct config_search *svc,
    const char *index, long *count, struct err *e) ING_WUR;

/*
 * Search `index` (POST {endpoint}/indexes/{index}/docs/search): the body is
 * {"search": query (cut at AZS_MAX_QUERY_BYTES), "top": top (clamped to
 * 1..AZS_MAX_TOP)}, plus "queryType": "semantic", "semanticConfiguration"
 * and "captions": "extractive" when svc->semantic_configuration is set.
 * Returns the number of hits (0..top) with *hits set to an array in `a`
 * (strings in `a` too), or -1 with e set.
 *
 * Errors of both calls (e->status, the message never holds a secret):
 *   502  401/403 ("the service refused the credentials"), 404 ("index ...
 *        not found"), another 4xx, a 5xx other than 503 after the retries,
 *        a reply that is not what Azure sends or larger than
 *        cfg->llm.max_response_bytes, a TLS failure, incomplete settings
 *   503  the service is unavailable: 503 or 429 after the retries, or it
 *        cannot be reached
 *   504  cfg->llm.timeout_ms ran out (retries included)
 * 429, 5xx and transport failures are retried cfg->llm.max_retries times
 * (Retry-After honoured, else full-jitter backoff), as lib/llm.c does.
 * Auth: "api-key" header for authentication_method token (or ""), else an
 * Entra ID / managed identity bearer token for AZS_SCOPE.
 */
int azs_search(const struct config *cfg, const struct config_search *svc,
    const char *index, const char *query, int top, struct arena *a,
    struct azs_hit **hits, struct err *e) ING_WUR;

/* ---- the pure parts, for the unit tests ---------------------------------- */

/* The search request body (JSON text in `a`) as azs_search sends it. */
char *azs_build_query(const struct config_search *svc, const char *query,
    int top, struct arena *a);

/* The length of s cut to at most max bytes without splitting a UTF-8
 * character. */
size_t azs_utf8_cut(const char *s, size_t max);

/* Parse a search reply body: as azs_search's result (at most `top` hits);
 * -1 with e set (502) when it is not Azure's shape. */
int azs_parse_hits(const char *body, size_t len, int top, struct arena *a,
    struct azs_hit **hits, struct err *e) ING_WUR;

/* Parse a $count reply (a decimal number, maybe after a UTF-8 BOM and
 * around white space); -1 with e set (502) otherwise. */
int azs_parse_count(const char *body, size_t len, long *count, struct err *e)
    ING_WUR;

#endif
