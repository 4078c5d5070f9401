/*
 * test_azsearch.c -- unit tests of the pure parts of lib/azsearch.c: the
 * settings check and its index fallbacks, the query body (semantic fields,
 * the query cut on a UTF-8 boundary, characters JSON must escape), the
 * parsing of search replies (content, title, captions, highlights, scores,
 * documents without a content field) and of $count replies.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/azsearch.h"
#include "lib/err.h"
#include "tests/unit/tap.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void
test_config_check(void)
{
	struct config_search svc;
	const char *index = NULL, *missing = NULL;
	char endpoint[] = "https://kb.search.windows.net", key[] = "k";
	char mock[] = "mock-search-key-12345", idx[] = "my-index";
	char msi[] = "msi", cs[] = "client_id_and_secret", cid[] = "app";
	char token[] = "token", empty[] = "", ftp[] = "ftp://x";

	is_int(azs_config_check(NULL, NULL, &index, &missing),
	    AZS_NOT_CONFIGURED, "no service: not configured");
	is_str(index, "test-index", "no service: the index falls back to test-index");
	memset(&svc, 0, sizeof(svc));
	is_int(azs_config_check(&svc, "", &index, &missing), AZS_NOT_CONFIGURED,
	    "no endpoint and no key: not configured");
	svc.endpoint = endpoint;
	svc.key = mock;
	is_int(azs_config_check(&svc, NULL, NULL, NULL), AZS_NOT_CONFIGURED,
	    "the reference's mock key counts as not configured");
	svc.key = empty;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_INCOMPLETE,
	    "endpoint without key: incomplete");
	is_str(missing, "key", "... the key is named");
	svc.authentication_method = token;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_INCOMPLETE,
	    "method token without key: incomplete");
	svc.key = key;
	svc.endpoint = empty;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_INCOMPLETE,
	    "key without endpoint: incomplete");
	is_str(missing, "endpoint", "... the endpoint is named");
	svc.endpoint = ftp;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_INCOMPLETE,
	    "an endpoint that is not http(s): incomplete");
	svc.endpoint = endpoint;
	is_int(azs_config_check(&svc, "dflt", &index, &missing), AZS_OK,
	    "endpoint and key: ok");
	ok(missing == NULL, "ok: nothing missing");
	is_str(index, "dflt", "no index_name: the default index");
	svc.index_name = idx;
	(void)azs_config_check(&svc, "dflt", &index, NULL);
	is_str(index, "my-index", "index_name wins over the default index");
	svc.key = empty;
	svc.authentication_method = msi;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_OK,
	    "msi needs no key");
	svc.authentication_method = cs;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_INCOMPLETE,
	    "client_id_and_secret without client_id: incomplete");
	is_str(missing, "client_id", "... client_id named");
	svc.client_id = cid;
	is_int(azs_config_check(&svc, NULL, NULL, &missing), AZS_INCOMPLETE,
	    "client_id_and_secret without secret: incomplete");
	is_str(missing, "client_secret", "... client_secret named");
}

static void
test_build_query(void)
{
	struct arena *a = arena_create(1024);
	struct config_search svc;
	char sem[] = "default";
	const char *body;
	cJSON *j;
	char *big;
	size_t n;

	memset(&svc, 0, sizeof(svc));
	body = azs_build_query(&svc, "a \"quoted\" & (tsquery) | !x:* <-> \\", 3, a);
	j = cJSON_Parse(body);
	ok(j != NULL, "the body is JSON");
	is_str(cJSON_GetObjectItem(j, "search")->valuestring,
	    "a \"quoted\" & (tsquery) | !x:* <-> \\",
	    "the query survives JSON escaping as it was");
	is_int((long)cJSON_GetObjectItem(j, "top")->valuedouble, 3, "top sent");
	ok(cJSON_GetObjectItem(j, "queryType") == NULL &&
	    cJSON_GetObjectItem(j, "semanticConfiguration") == NULL,
	    "no semantic configuration: a plain query");
	cJSON_Delete(j);
	svc.semantic_configuration = sem;
	j = cJSON_Parse(azs_build_query(&svc, "x", 0, a));
	is_str(cJSON_GetObjectItem(j, "queryType")->valuestring, "semantic",
	    "semantic: queryType");
	is_str(cJSON_GetObjectItem(j, "semanticConfiguration")->valuestring,
	    "default", "semantic: the configuration's name");
	is_str(cJSON_GetObjectItem(j, "captions")->valuestring, "extractive",
	    "semantic: captions asked for");
	is_int((long)cJSON_GetObjectItem(j, "top")->valuedouble, 1,
	    "top 0 asks for 1");
	cJSON_Delete(j);
	j = cJSON_Parse(azs_build_query(&svc, "x", 5000, a));
	is_int((long)cJSON_GetObjectItem(j, "top")->valuedouble, AZS_MAX_TOP,
	    "top is capped at AZS_MAX_TOP");
	cJSON_Delete(j);

	/* 1 MB of a 3-byte character: cut below the cap at a boundary */
	n = 1024 * 1024;
	big = malloc(n + 1);
	for (size_t i = 0; i + 3 <= n; i += 3)
		memcpy(big + i, "\xE2\x82\xAC", 3);
	big[n - n % 3] = '\0';
	j = cJSON_Parse(azs_build_query(&svc, big, 3, a));
	n = strlen(cJSON_GetObjectItem(j, "search")->valuestring);
	ok(n <= AZS_MAX_QUERY_BYTES && n > AZS_MAX_QUERY_BYTES - 3 && n % 3 == 0,
	    "a 1 MB query is cut to at most %d bytes on a character boundary (%zu)",
	    AZS_MAX_QUERY_BYTES, n);
	cJSON_Delete(j);
	free(big);
	is_int(azs_utf8_cut("abc", 10), 3, "a short text is kept");
	is_int(azs_utf8_cut("ab\xC3\xA9", 3), 2, "a 2-byte character is not split");
	arena_destroy(a);
}

static const char reply[] =
    "{\"@odata.context\":\"x\",\"value\":["
    "{\"@search.score\":2.5,\"@search.rerankerScore\":3.1,"
    "\"@search.captions\":[{\"text\":\"Wear protective equipment\",\"highlights\":\"\"}],"
    "\"id\":\"1\",\"title\":\"Safety\",\"content\":\"Wear protective equipment.\"},"
    "{\"@search.score\":1,\"@search.highlights\":{\"content\":[\"<em>cut</em> it\"]},"
    "\"id\":7,\"content\":\"Clean the cut.\"},"
    "{\"@search.score\":0.5,\"id\":\"3\",\"body\":\"no content field\",\"n\":1}]}";

static void
test_parse_hits(void)
{
	struct arena *a = arena_create(1024);
	struct azs_hit *h;
	struct err e;
	int n;

	err_clear(&e);
	n = azs_parse_hits(S(reply), 10, a, &h, &e);
	is_int(n, 3, "three hits");
	is_str(h[0].id, "1", "id");
	is_str(h[0].title, "Safety", "title");
	is_str(h[0].content, "Wear protective equipment.", "content");
	is_str(h[0].snippet, "Wear protective equipment", "a caption is the snippet");
	ok(h[0].score == 2.5 && h[0].reranker_score == 3.1, "scores");
	is_str(h[1].id, "7", "a numeric id as text");
	ok(h[1].title == NULL, "no title: NULL");
	is_str(h[1].snippet, "<em>cut</em> it", "a highlight is the snippet");
	ok(h[1].reranker_score == 0, "no reranker score: 0");
	ok(h[2].snippet == NULL, "neither caption nor highlight: NULL");
	is_str(h[2].content, "{\"id\":\"3\",\"body\":\"no content field\",\"n\":1}",
	    "no content field: the document as JSON, without @search.*");
	is_int(azs_parse_hits(S(reply), 2, a, &h, &e), 2,
	    "no more hits than top");
	is_int(azs_parse_hits(S("{\"value\":[]}"), 5, a, &h, &e), 0,
	    "an empty result");
	is_int(azs_parse_hits(S("{\"value\":[{\"@se"), 5, a, &h, &e), -1,
	    "a cut body fails");
	is_int(e.status, 502, "... with 502");
	is_int(azs_parse_hits(S("{\"error\":{}}"), 5, a, &h, &e), -1,
	    "no value list fails");
	is_int(azs_parse_hits(S("{\"value\":[1]}"), 5, a, &h, &e), -1,
	    "a result that is not a document fails");
	arena_destroy(a);
}

static void
test_parse_count(void)
{
	struct err e;
	long c = -1;

	is_int(azs_parse_count(S("42"), &c, &e), 0, "a count");
	is_int(c, 42, "... 42");
	is_int(azs_parse_count(S("\xEF\xBB\xBF" "7\r\n"), &c, &e), 0,
	    "a count after a byte order mark, with a newline");
	is_int(c, 7, "... 7");
	is_int(azs_parse_count(S(""), &c, &e), -1, "an empty body fails");
	is_int(azs_parse_count(S("-1"), &c, &e), -1, "a negative count fails");
	is_int(azs_parse_count(S("12abc"), &c, &e), -1, "trailing junk fails");
	is_int(e.status, 502, "... with 502");
	is_int(azs_parse_count(S("99999999999999999999999"), &c, &e), -1,
	    "an overflowing count fails");
}

int
main(void)
{
	test_config_check();
	test_build_query();
	test_parse_hits();
	test_parse_count();
	return tap_done();
}
