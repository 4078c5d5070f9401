/*
 * llm_parts.h -- the pieces of the language-model client (lib/llm.c) that
 * the other Azure REST clients reuse instead of copying: the calling
 * thread's kept curl handles, the options every handle gets from cfg->llm
 * (timeouts, TLS), the Entra ID / managed-identity token cache, the
 * Retry-After reading and the retry backoff.  Their behaviour is the one
 * docs/reliability.md U1-U3 describes for the model client.
 *
 * Only HTTP clients of lib/ include this header (it includes <curl/curl.h>;
 * tests/check-layering.sh says which files may).  Secrets (client secrets,
 * tokens) never reach a log line or an error message.
 */
#ifndef INGEN_LLM_PARTS_H
#define INGEN_LLM_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "lib/config.h"
#include "lib/err.h"

/*
 * A curl easy handle and the multi handle that drives it, kept idle between
 * calls in one list per process (lib/llm.c explains why).  llm_handles_take
 * returns the pair given back last (or a new one; NULL when curl cannot make
 * one) and takes it out of the list; llm_handles_give_back resets it
 * (options, callbacks and share detached; connections kept) and puts it at
 * the list's head (llm_handles_trim, lib/llm.h, frees the long idle ones).
 * Any thread; a pair is used by one thread at a time.  The
 * language model and the search client take from the same list, so a pair
 * may hold connections to both.
 */
struct llm_handles {
	CURL *easy;
	CURLM *multi;
	struct llm_handles *next, *prev;   /* in the idle list */
	int64_t idle_since_ms;             /* clock_now_ms at give-back */
};

struct llm_handles *llm_handles_take(void);
void llm_handles_give_back(struct llm_handles *h);

/* Run the transfer set up on h->easy on h->multi to its end; returns the
 * transfer's result (CURLE_OPERATION_TIMEDOUT, ...). */
CURLcode llm_handles_perform(struct llm_handles *h);

/* The loop under both: run `easy` on `multi` to its end, waiting up to
 * poll_ms a round; `stop` (NULL: never), asked between rounds, ends the
 * transfer with CURLE_ABORTED_BY_CALLBACK. */
CURLcode llm_multi_run(CURLM *multi, CURL *easy, int poll_ms,
    bool (*stop)(void *arg), void *arg);

/* Wipe a secret string (a key header, a bearer token) and free it; NULL
 * is allowed. */
void llm_secret_free(char *s);

/*
 * The options every request of an Azure client gets: connect timeout
 * cfg->llm.connect_timeout_ms (capped at remaining_ms), total timeout
 * remaining_ms, http/https only, no redirects, cfg->llm.verify_tls and
 * ca_file, the user agent.  `share` may be NULL.
 */
void llm_easy_setup(const struct config *cfg, CURL *easy, CURLSH *share,
    int64_t remaining_ms);

/*
 * A cache of access tokens, one per credential and scope, each refreshed 5
 * minutes before it expires; concurrent callers of one credential wait for
 * one fetch.  Create and destroy it on one thread with no call in flight;
 * llm_token_get / llm_token_invalidate / llm_token_cache_forget are
 * thread-safe.  Destroy wipes the tokens.
 */
struct llm_token_cache;

struct llm_token_cache *llm_token_cache_create(void);
void llm_token_cache_destroy(struct llm_token_cache *tc);
void llm_token_cache_forget(struct llm_token_cache *tc);

/* Who asks for a token, for what.  Strings are borrowed for the call. */
struct llm_credential {
	/* "client_id_and_secret" (Entra ID client credentials), "msi"
	 * (managed identity, user-assigned when client_id is set), anything
	 * else = default_credential (the environment's client secret,
	 * cfg->azure_identity.*, else managed identity) */
	const char *method;
	const char *client_id;
	const char *client_secret;  /* secret */
	const char *tenant_id;      /* "" = cfg->azure_identity.tenant_id */
	const char *scope;          /* client credentials: "https://.../.default" */
	const char *resource;       /* managed identity: "https://.../" */
	const char *service;        /* for messages: "azure search" */
	const char *subject;        /* for the log line: "search service kb" */
	const char *action;         /* log action: "while calling azure search" */
};

/*
 * The bearer token for `cr`: from the cache, or fetched (from
 * cfg->llm.token_endpoint / azure_identity.authority_host / the public
 * cloud, or cfg->llm.imds_endpoint / IMDS) before `deadline`
 * (clock_now_ms() time base).  Returns a heap copy the caller wipes
 * (explicit_bzero) and frees, or NULL with `e` set: 502 (refused, bad
 * reply, incomplete client_id_and_secret), 504 (deadline).  esc_handle is
 * any easy handle of the caller (only for curl_easy_escape); the fetch uses
 * its own, with `share` (may be NULL).  Thread-safe.
 */
char *llm_token_get(struct llm_token_cache *tc, const struct config *cfg,
    CURLSH *share, const struct llm_credential *cr, CURL *esc_handle,
    int64_t deadline, struct err *e);

/* Drop `token` from the cache (the service refused it), so the next call
 * fetches anew.  Thread-safe. */
void llm_token_invalidate(struct llm_token_cache *tc, const char *token);

/*
 * If the header `p` (name of name_len bytes, value `v` of vlen bytes,
 * trimmed) is retry-after-ms or Retry-After (seconds or an HTTP date),
 * store the wait in *retry_after_ms and return true (retry-after-ms wins
 * whatever the order: Retry-After only fills a value still < 0); false for
 * any other header.  A value that does not parse leaves it unchanged.
 */
bool llm_retry_after_header(const char *p, size_t name_len, const char *v,
    size_t vlen, long *retry_after_ms);

/* The wait before retry number attempt+1 without a Retry-After: full
 * jitter, uniform in [0, min(LLM_BACKOFF_CAP_MS, LLM_BACKOFF_BASE_MS *
 * 2^attempt)] ms.  Any thread. */
int64_t llm_backoff_ms(int attempt);

#endif
