/*
 * test_http.c -- unit tests of lib/http.c: the request-head parser
 * (RELIABILITY H1/H2 cases, fed whole and byte by byte), the chunked
 * decoder, the response writer and percent-decoding.  Links the module
 * itself; no sockets.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "tests/unit/tap.h"
#include "lib/http.h"

static struct http_limits lim;

/* Parse s[0..n) in one call. */
static enum http_parse_result
parse_once(struct arena *a, const char *s, size_t n, struct http_request *req,
    size_t *consumed, struct err *e)
{
	struct http_head_state st;

	http_head_state_init(&st);
	return http_parse_head(&st, s, n, &lim, a, req, consumed, e);
}

/*
 * Parse s[0..n) offering one more byte per call; *linear is cleared when a
 * call did not scan everything it was given (the O(n) promise: no byte is
 * looked at twice by the scanner, except a CR waiting for its successor).
 */
static enum http_parse_result
parse_bytewise(struct arena *a, const char *s, size_t n,
    struct http_request *req, size_t *consumed, struct err *e, bool *linear)
{
	struct http_head_state st;
	enum http_parse_result r = HTTP_PARSE_INCOMPLETE;
	size_t len;

	http_head_state_init(&st);
	*linear = true;
	for (len = 1; len <= n; len++) {
		r = http_parse_head(&st, s, len, &lim, a, req, consumed, e);
		if (r != HTTP_PARSE_INCOMPLETE)
			return r;
		if (st.scanned != len && !(st.scanned == len - 1 &&
		    s[len - 1] == '\r'))
			*linear = false;
	}
	return r;
}

/* The head must be rejected with `status`, whole and byte by byte. */
static void
expect_reject(const char *name, const char *s, size_t n, int status)
{
	struct arena *a = arena_create(0);
	struct http_request req;
	struct err e;
	size_t consumed = 0;
	enum http_parse_result r;
	bool linear;

	err_clear(&e);
	r = parse_once(a, s, n, &req, &consumed, &e);
	ok(r == HTTP_PARSE_ERROR && e.status == status,
	    "%s: rejected with %d (%s)", name, status, e.msg);
	if (r != HTTP_PARSE_ERROR || e.status != status)
		printf("#   got result %d status %d (%s)\n", (int)r, e.status,
		    e.msg);
	err_clear(&e);
	r = parse_bytewise(a, s, n, &req, &consumed, &e, &linear);
	ok(r == HTTP_PARSE_ERROR && e.status == status,
	    "%s: rejected with %d byte by byte", name, status);
	if (r != HTTP_PARSE_ERROR || e.status != status)
		printf("#   got result %d status %d (%s)\n", (int)r, e.status,
		    e.msg);
	arena_destroy(a);
}

#define REJECT(name, lit, status) expect_reject(name, lit, sizeof(lit) - 1, status)

/* Parse a complete head that must be accepted; returns the arena. */
static struct arena *
accept_head(const char *s, struct http_request *req, const char *name)
{
	struct arena *a = arena_create(0);
	struct err e;
	size_t consumed = 0;
	enum http_parse_result r;

	err_clear(&e);
	r = parse_once(a, s, strlen(s), req, &consumed, &e);
	ok(r == HTTP_PARSE_DONE && consumed == strlen(s), "%s: accepted", name);
	if (r != HTTP_PARSE_DONE)
		printf("#   got result %d status %d (%s)\n", (int)r, e.status,
		    e.msg);
	return a;
}

static void
test_simple_get(void)
{
	struct http_request req;
	struct arena *a = accept_head("GET /api/v1/x%20y?a=1&b=2 HTTP/1.1\r\n"
	    "Host: example\r\nX-Thing:   spaced value \t\r\n"
	    "ACCEPT: */*\r\nEmpty:\r\n\r\n", &req, "simple GET");

	is_int(req.method, HTTP_METHOD_GET, "method GET");
	is_str(req.method_name, "GET", "method name");
	is_str(req.target, "/api/v1/x%20y?a=1&b=2", "target kept raw");
	is_str(req.path, "/api/v1/x%20y", "path up to '?'");
	is_str(req.query, "a=1&b=2", "query after '?'");
	is_int(req.version_minor, 1, "HTTP/1.1");
	is_int(req.n_headers, 4, "four fields");
	is_str(http_header_get(&req, "host"), "example", "Host value");
	is_str(http_header_get(&req, "x-thing"), "spaced value",
	    "value has OWS stripped both sides");
	is_str(http_header_get(&req, "Accept"), "*/*",
	    "names compare case-insensitively");
	is_str(http_header_get(&req, "empty"), "", "empty value");
	ok(http_header_get(&req, "missing") == NULL, "absent field is NULL");
	is_int(http_header_count(&req, "HOST"), 1, "header count");
	is_int(req.content_length, -1, "no Content-Length");
	ok(!req.chunked, "not chunked");
	ok(req.keep_alive, "HTTP/1.1 keeps alive by default");
	ok(!req.expect_continue, "no Expect");
	arena_destroy(a);

	a = accept_head("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req, "no query");
	ok(req.query == NULL, "no '?' gives a NULL query");
	is_str(req.path, "/", "root path");
	arena_destroy(a);

	a = accept_head("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "empty query");
	is_str(req.query, "", "a bare '?' gives an empty query");
	arena_destroy(a);
}

static void
test_methods_and_versions(void)
{
	struct http_request req;
	struct arena *a;

	a = accept_head("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "unknown method token");
	is_int(req.method, HTTP_METHOD_OTHER, "unknown token is OTHER");
	is_str(req.method_name, "BREW", "its name is kept");
	arena_destroy(a);
	a = accept_head("get / HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "lower-case method");
	is_int(req.method, HTTP_METHOD_OTHER, "methods are case-sensitive");
	arena_destroy(a);
	a = accept_head("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", &req, "DELETE");
	is_int(req.method, HTTP_METHOD_DELETE, "DELETE");
	arena_destroy(a);

	a = accept_head("POST /x HTTP/1.0\r\nContent-Length: 12\r\n\r\n", &req,
	    "HTTP/1.0 without Host");
	is_int(req.version_minor, 0, "HTTP/1.0");
	is_int(req.content_length, 12, "Content-Length 12");
	ok(!req.keep_alive, "HTTP/1.0 closes by default");
	arena_destroy(a);
	a = accept_head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req,
	    "HTTP/1.0 keep-alive");
	ok(req.keep_alive, "HTTP/1.0 with Connection: keep-alive");
	arena_destroy(a);
	a = accept_head("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n",
	    &req, "HTTP/1.1 close");
	ok(!req.keep_alive, "HTTP/1.1 with Connection: close in a list");
	arena_destroy(a);
	a = accept_head("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n",
	    &req, "Expect");
	ok(req.expect_continue, "Expect: 100-continue is seen");
	arena_destroy(a);
	a = accept_head("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n",
	    &req, "chunked");
	ok(req.chunked, "Transfer-Encoding: chunked (any case)");
	is_int(req.content_length, -1, "chunked has no Content-Length");
	arena_destroy(a);
	a = accept_head("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "leading empty lines");
	is_str(req.path, "/", "leading empty lines are skipped");
	arena_destroy(a);

	REJECT("HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
	REJECT("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
	REJECT("HTTP/0.9", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
	REJECT("lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("long version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400);
	REJECT("no version", "GET /\r\nHost: h\r\n\r\n", 400);
	REJECT("invalid method char", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
	REJECT("fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
}

/* The request-target forms of RFC 9112 3.2. */
static void
test_targets(void)
{
	struct http_request req;
	struct arena *a;

	/* absolute-form (3.2.2): routed on its path, its authority is Host */
	a = accept_head("GET http://host/api/v1/health HTTP/1.1\r\n"
	    "Host: other\r\n\r\n", &req, "absolute-form");
	is_str(req.target, "http://host/api/v1/health", "target kept raw");
	is_str(req.path, "/api/v1/health", "absolute-form: the path");
	ok(req.query == NULL, "absolute-form: no query");
	is_str(req.host, "host", "absolute-form: req->host is the authority");
	is_str(http_header_get(&req, "host"), "host",
	    "absolute-form: its authority replaces the Host value");
	is_int(req.n_headers, 1, "and no field is added");
	arena_destroy(a);
	a = accept_head("PUT HTTPS://Example.COM:8443/a/b%20c?x=1&y HTTP/1.1\r\n"
	    "Host: example.com\r\nContent-Length: 0\r\n\r\n", &req,
	    "absolute-form, https in upper case, port, query");
	is_str(req.path, "/a/b%20c", "its path, still encoded");
	is_str(req.query, "x=1&y", "its query");
	is_str(http_header_get(&req, "Host"), "Example.COM:8443",
	    "its authority with the port");
	is_int(req.content_length, 0, "the other fields are kept");
	arena_destroy(a);
	a = accept_head("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "absolute-form without a path");
	is_str(req.path, "/", "an empty path is /");
	arena_destroy(a);
	a = accept_head("GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "absolute-form, query without a path");
	ok(strcmp(req.path, "/") == 0 && req.query != NULL &&
	    strcmp(req.query, "q=1") == 0, "path / and the query");
	arena_destroy(a);
	a = accept_head("GET http://[::1]:8000/x HTTP/1.0\r\nX: y\r\n\r\n",
	    &req, "absolute-form in HTTP/1.0 without Host");
	is_int(req.n_headers, 2, "a Host field is added");
	is_str(http_header_get(&req, "host"), "[::1]:8000",
	    "with the IP literal of the target");
	is_int(http_header_count(&req, "host"), 1, "once");
	arena_destroy(a);
	a = accept_head("GET /x HTTP/1.1\r\nHost: Example:80\r\n\r\n", &req,
	    "origin-form");
	is_str(req.host, "Example:80", "origin-form: req->host is the Host value");
	arena_destroy(a);
	a = accept_head("GET /x HTTP/1.0\r\n\r\n", &req, "HTTP/1.0, no Host");
	ok(req.host == NULL, "no Host: req->host is NULL");
	arena_destroy(a);

	REJECT("absolute-form, empty host", "GET http:///x HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, empty host with port", "GET http://:80/x HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, userinfo", "GET http://u:p@h/x HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, other scheme", "GET ftp://h/x HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, one slash", "GET http:/x HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, scheme only", "GET http:// HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, bad port", "GET http://h:8x/ HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, bad escape in host", "GET http://a%zz/ HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form, bad IP literal", "GET http://[::g]/ HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("absolute-form still needs Host in HTTP/1.1",
	    "GET http://h/ HTTP/1.1\r\n\r\n", 400);
	REJECT("absolute-form with an invalid Host field",
	    "GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
	REJECT("absolute-form with two Host fields",
	    "GET http://h/ HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", 400);
	REJECT("relative target", "GET api/v1 HTTP/1.1\r\nHost: h\r\n\r\n",
	    400);

	/* asterisk-form (3.2.4): OPTIONS only */
	a = accept_head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &req,
	    "OPTIONS *");
	is_str(req.path, "*", "asterisk-form: the path is *");
	arena_destroy(a);
	REJECT("GET *", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("OPTIONS *x", "OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 400);

	/* authority-form (3.2.3): CONNECT only, not implemented */
	REJECT("CONNECT h:443", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
	    501);
	REJECT("CONNECT [::1]:443", "CONNECT [::1]:443 HTTP/1.1\r\n"
	    "Host: [::1]:443\r\n\r\n", 501);
	REJECT("CONNECT without a port", "CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n",
	    400);
	REJECT("CONNECT with a bad host", "CONNECT a@b:1 HTTP/1.1\r\n"
	    "Host: h\r\n\r\n", 400);
	REJECT("authority-form for GET", "GET h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
	    400);
}

/* Host (RFC 9112 3.2): uri-host [ ":" port ] of RFC 3986. */
static void
test_host(void)
{
	static const char *const valid[] = {
		"h", "", "example.org", "example.org:8000", "h:", "127.0.0.1",
		"127.0.0.1:80", "[::1]", "[::1]:8000", "[2001:db8::a:1]:1",
		"[::ffff:192.0.2.1]", "[v1.fe:x]", "xn--bcher-kva.example",
		"a%20b", "A-B_c~!$&'()*+,;=", "999.1.1.1",
	};
	static const char *const invalid[] = {
		"a b", "a/b", "a?b", "a#b", "h:8x", "h:80:80", "h: 80", "[::1",
		"[::g]", "[::1]x", "[::1]:x", "[]", "[v1]", "[v.x]", "[vg.x]",
		"a@b", "h\"", "[fe80::1%25eth0]", "a%2", "a%zz", "\xc3\xa9",
		"a\\b", "[::1]]", "a[b]",
	};
	char head[256];
	struct http_request req;
	struct arena *a;
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		char name[64];

		snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n",
		    valid[i]);
		snprintf(name, sizeof(name), "Host \"%s\"", valid[i]);
		a = accept_head(head, &req, name);
		is_str(http_header_get(&req, "host"), valid[i], "%s: its value",
		    name);
		arena_destroy(a);
	}
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		char name[64];
		int n;

		n = snprintf(head, sizeof(head),
		    "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", invalid[i]);
		snprintf(name, sizeof(name), "invalid Host \"%s\"", invalid[i]);
		expect_reject(name, head, (size_t)n, 400);
	}
	REJECT("invalid Host in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a b\r\n\r\n",
	    400);
	REJECT("two Host fields, the second invalid", "GET / HTTP/1.1\r\n"
	    "Host: a\r\nHost: a b\r\n\r\n", 400);
	REJECT("two equal Host fields", "GET / HTTP/1.1\r\n"
	    "Host: a\r\nHost: a\r\n\r\n", 400);
	REJECT("two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\n"
	    "Host: a\r\nHost: b\r\n\r\n", 400);
	REJECT("missing Host, other fields", "GET / HTTP/1.1\r\nHostx: a\r\n\r\n",
	    400);
	REJECT("missing Host, no fields", "GET / HTTP/1.1\r\n\r\n", 400);
}

static void
test_framing_rejects(void)
{
	REJECT("CL with TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400);
	REJECT("TE with CL", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400);
	REJECT("duplicate CL (equal)", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400);
	REJECT("CL list", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5, 5\r\n\r\n", 400);
	REJECT("CL not digits", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: abc\r\n\r\n", 400);
	REJECT("CL with sign", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: +5\r\n\r\n", 400);
	REJECT("CL negative", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: -1\r\n\r\n", 400);
	REJECT("CL empty", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: \r\n\r\n", 400);
	REJECT("CL overflow", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 9223372036854775808\r\n\r\n", 400);
	REJECT("CL huge", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 99999999999999999999999\r\n\r\n", 400);
	REJECT("TE gzip", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", 501);
	REJECT("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n", 501);
	REJECT("TE chunked twice", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
	REJECT("TE chunked;x", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked;q=1\r\n\r\n", 501);
	REJECT("TE in HTTP/1.0", "POST / HTTP/1.0\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400);
	REJECT("obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n"
	    "  two\r\n\r\n", 400);
	REJECT("obs-fold with tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n"
	    "\ttwo\r\n\r\n", 400);
	REJECT("whitespace before first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
	    400);
	REJECT("bare LF ends request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
	REJECT("bare LF ends field", "GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
	REJECT("bare LF ends head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
	REJECT("bare LF in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",
	    400);
	REJECT("bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
	    400);
	REJECT("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n",
	    400);
	REJECT("space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
	REJECT("tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400);
	REJECT("invalid name char", "GET / HTTP/1.1\r\nHost: h\r\nX(Y): z\r\n\r\n",
	    400);
	REJECT("non-ASCII name", "GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: z\r\n\r\n",
	    400);
	REJECT("empty name", "GET / HTTP/1.1\r\nHost: h\r\n: z\r\n\r\n", 400);
	REJECT("no colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400);
	REJECT("control char in value", "GET / HTTP/1.1\r\nHost: h\r\n"
	    "X: a\x01z\r\n\r\n", 400);
	REJECT("DEL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n",
	    400);
	REJECT("NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\0z\r\n\r\n",
	    400);
	REJECT("NUL in request line", "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	REJECT("missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400);
	REJECT("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
	    400);
	REJECT("Expect other", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
	    417);
}

/* A request line of `target_len` bytes of target, not terminated. */
static char *
long_line(size_t target_len, bool complete)
{
	size_t n = 4 + target_len + 9 + 64;
	char *s = malloc(n), *p = s;

	memcpy(p, "GET /", 5);
	p += 5;
	memset(p, 'a', target_len - 1);
	p += target_len - 1;
	if (complete) {
		strcpy(p, " HTTP/1.1\r\nHost: h\r\n\r\n");
		p += strlen(p);
	}
	*p = '\0';
	return s;
}

static void
test_limits(void)
{
	struct arena *a = arena_create(0);
	struct http_request req;
	struct http_head_state st;
	struct err e;
	size_t consumed, i, n;
	char *s;
	struct buf b = BUF_INIT;
	enum http_parse_result r;

	/* 414 before the request line ends */
	s = long_line(9000, false);
	expect_reject("414 without CRLF", s, strlen(s), 414);
	free(s);
	s = long_line(9000, true);
	expect_reject("414 complete", s, strlen(s), 414);
	free(s);
	/* the first violation in byte order wins, however the bytes arrive */
	s = long_line(9000, false);
	strcat(s, "\rX");
	expect_reject("414 before a later bare CR", s, strlen(s), 414);
	free(s);
	/* exactly at the limit is fine: "GET " + target + " HTTP/1.1" */
	s = long_line(8192 - 13, true);
	http_head_state_init(&st);
	r = http_parse_head(&st, s, strlen(s), &lim, a, &req, &consumed, &e);
	ok(r == HTTP_PARSE_DONE, "request line of exactly 8192 bytes accepted");
	free(s);

	/* 431 by size: one huge field, detected before the head ends */
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
	for (i = 0; i < 17000; i++)
		buf_putc(&b, 'v');
	expect_reject("431 by size, incomplete", buf_rptr(&b), buf_rlen(&b), 431);
	buf_puts(&b, "\r\n\r\n");
	expect_reject("431 by size, complete", buf_rptr(&b), buf_rlen(&b), 431);
	buf_reset(&b);

	/* 431 by size: many small fields */
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 90; i++)
		buf_printf(&b, "X-F%zu: %0200d\r\n", i, 0);
	buf_puts(&b, "\r\n");
	expect_reject("431 by size, 90 fields of 200 bytes", buf_rptr(&b),
	    buf_rlen(&b), 431);
	buf_reset(&b);

	/* 431 by count */
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 100; i++)
		buf_printf(&b, "X-F%zu: v\r\n", i);
	buf_puts(&b, "\r\n");
	expect_reject("431 by count (101 fields)", buf_rptr(&b), buf_rlen(&b),
	    431);
	buf_reset(&b);
	buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 99; i++)
		buf_printf(&b, "X-F%zu: v\r\n", i);
	buf_puts(&b, "\r\n");
	http_head_state_init(&st);
	r = http_parse_head(&st, buf_rptr(&b), buf_rlen(&b), &lim, a, &req,
	    &consumed, &e);
	ok(r == HTTP_PARSE_DONE && req.n_headers == 100,
	    "exactly 100 fields accepted");
	is_str(http_header_get(&req, "x-f98"), "v", "last of 100 fields");
	buf_reset(&b);

	/* a 16 KiB head fed one byte at a time: every byte scanned once */
	buf_puts(&b, "POST /api/v1/chat HTTP/1.1\r\nHost: h\r\n");
	i = 0;
	while (buf_rlen(&b) < 16 * 1024 - 200) {
		buf_printf(&b, "X-Pad-%zu: %0200zu\r\n", i, i);
		i++;
	}
	buf_puts(&b, "Content-Length: 7\r\n\r\n");
	n = buf_rlen(&b);
	{
		bool linear;
		size_t calls = 0, len;

		http_head_state_init(&st);
		for (len = 1; len <= n; len++) {
			calls++;
			r = http_parse_head(&st, buf_rptr(&b), len, &lim, a, &req,
			    &consumed, &e);
			if (r != HTTP_PARSE_INCOMPLETE)
				break;
		}
		ok(r == HTTP_PARSE_DONE && consumed == n && calls == n,
		    "16 KiB head byte by byte: done after %zu calls", calls);
		is_int(req.content_length, 7, "its Content-Length");
		r = parse_bytewise(a, buf_rptr(&b), n, &req, &consumed, &e, &linear);
		ok(r == HTTP_PARSE_DONE && linear,
		    "the scanner never rescans bytes (O(n) total)");
	}
	buf_free(&b);
	arena_destroy(a);
}

static void
test_pipelining(void)
{
	static const char two[] =
	    "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
	    "GET /b?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	size_t first_head = strlen("POST /a HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 3\r\n\r\n");
	struct arena *a = arena_create(0);
	struct http_head_state st;
	struct http_request req;
	struct err e;
	size_t consumed = 0, off;
	enum http_parse_result r;

	http_head_state_init(&st);
	r = http_parse_head(&st, two, sizeof(two) - 1, &lim, a, &req, &consumed,
	    &e);
	ok(r == HTTP_PARSE_DONE, "pipelined: first request parsed");
	is_int(consumed, first_head, "consumed is the first head's length");
	is_str(req.path, "/a", "first path");
	is_int(req.content_length, 3, "first body length");
	off = consumed + 3;   /* the caller reads the body */
	r = http_parse_head(&st, two + off, sizeof(two) - 1 - off, &lim, a, &req,
	    &consumed, &e);
	ok(r == HTTP_PARSE_DONE, "pipelined: second parsed from the remainder");
	is_int(consumed, sizeof(two) - 1 - off, "second consumed the rest");
	is_str(req.path, "/b", "second path");
	is_str(req.query, "q", "second query");
	ok(!req.keep_alive, "second asks to close");
	arena_destroy(a);
}

/* Whole and byte by byte give the same request. */
static void
test_bytewise_same(void)
{
	static const char head[] =
	    "PATCH /x/y?z=1 HTTP/1.1\r\nHost: example.org:8000\r\n"
	    "User-Agent: test/1.0\r\nAuthorization: Bearer abc.def\r\n"
	    "Content-Length: 42\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n";
	struct arena *a = arena_create(0);
	struct http_request r1, r2;
	struct err e;
	size_t c1 = 0, c2 = 0, i;
	bool same, linear;

	ok(parse_once(a, head, sizeof(head) - 1, &r1, &c1, &e) == HTTP_PARSE_DONE &&
	    parse_bytewise(a, head, sizeof(head) - 1, &r2, &c2, &e, &linear) ==
	    HTTP_PARSE_DONE, "same head parsed both ways");
	same = c1 == c2 && r1.method == r2.method &&
	    strcmp(r1.target, r2.target) == 0 && strcmp(r1.path, r2.path) == 0 &&
	    strcmp(r1.query, r2.query) == 0 && r1.n_headers == r2.n_headers &&
	    r1.content_length == r2.content_length &&
	    r1.keep_alive == r2.keep_alive && r1.chunked == r2.chunked;
	for (i = 0; same && i < r1.n_headers; i++)
		same = strcmp(r1.headers[i].name, r2.headers[i].name) == 0 &&
		    strcmp(r1.headers[i].value, r2.headers[i].value) == 0;
	ok(same, "byte by byte gives the same request as all at once");
	ok(linear, "and scans linearly");
	is_int(r1.method, HTTP_METHOD_PATCH, "PATCH");
	is_str(http_header_get(&r1, "x-tab"), "v", "tab OWS stripped");
	arena_destroy(a);
}

/* Decode `in` whole; returns the result, body in *out. */
static enum http_parse_result
chunked_once(const char *in, size_t n, size_t max_body, struct buf *out,
    size_t *consumed, struct err *e)
{
	struct http_chunked c;

	http_chunked_init(&c);
	return http_chunked_decode(&c, in, n, out, max_body, &lim, consumed, e);
}

/* Decode `in` one byte per call, as the event loop would. */
static enum http_parse_result
chunked_bytewise(const char *in, size_t n, size_t max_body, struct buf *out,
    size_t *total, struct err *e)
{
	struct http_chunked c;
	enum http_parse_result r = HTTP_PARSE_INCOMPLETE;
	size_t i, used;

	http_chunked_init(&c);
	*total = 0;
	for (i = 0; i < n; i++) {
		r = http_chunked_decode(&c, in + i, 1, out, max_body, &lim, &used,
		    e);
		*total += used;
		if (r != HTTP_PARSE_INCOMPLETE)
			return r;
	}
	return r;
}

static void
chunk_reject(const char *name, const char *in, size_t n, size_t max_body,
    int status)
{
	struct buf out = BUF_INIT;
	struct err e;
	size_t consumed;
	enum http_parse_result r;

	err_clear(&e);
	r = chunked_once(in, n, max_body, &out, &consumed, &e);
	ok(r == HTTP_PARSE_ERROR && e.status == status, "chunked %s: %d (%s)",
	    name, status, e.msg);
	if (r != HTTP_PARSE_ERROR || e.status != status)
		printf("#   got result %d status %d (%s)\n", (int)r, e.status,
		    e.msg);
	buf_reset(&out);
	err_clear(&e);
	r = chunked_bytewise(in, n, max_body, &out, &consumed, &e);
	ok(r == HTTP_PARSE_ERROR && e.status == status,
	    "chunked %s: %d byte by byte", name, status);
	buf_free(&out);
}

#define CHUNK_REJECT(name, lit, status) \
	chunk_reject(name, lit, sizeof(lit) - 1, 1 << 20, status)

/* The chunk size line `line` (up to its CRLF) before "hello": accepted,
 * whole and byte by byte, with the payload "hello". */
static void
chunk_ext_accept(const char *line)
{
	struct buf in = BUF_INIT, out = BUF_INIT;
	struct err e;
	size_t consumed;
	enum http_parse_result r;

	buf_printf(&in, "%s\r\nhello\r\n0\r\n\r\n", line);
	err_clear(&e);
	r = chunked_once(buf_rptr(&in), buf_rlen(&in), 1 << 20, &out, &consumed,
	    &e);
	ok(r == HTTP_PARSE_DONE && consumed == buf_rlen(&in) &&
	    buf_rlen(&out) == 5 && memcmp(buf_rptr(&out), "hello", 5) == 0,
	    "chunk size line \"%s\" accepted", line);
	if (r != HTTP_PARSE_DONE)
		printf("#   got result %d status %d (%s)\n", (int)r, e.status,
		    e.msg);
	buf_reset(&out);
	r = chunked_bytewise(buf_rptr(&in), buf_rlen(&in), 1 << 20, &out,
	    &consumed, &e);
	ok(r == HTTP_PARSE_DONE && buf_rlen(&out) == 5,
	    "chunk size line \"%s\" accepted byte by byte", line);
	buf_free(&in);
	buf_free(&out);
}

/* The chunk size line `line` before "hello": 400, whole and byte by byte. */
static void
chunk_ext_reject(const char *line)
{
	struct buf in = BUF_INIT;
	char name[96];

	buf_printf(&in, "%s\r\nhello\r\n0\r\n\r\n", line);
	snprintf(name, sizeof(name), "size line \"%s\"", line);
	chunk_reject(name, buf_rptr(&in), buf_rlen(&in), 1 << 20, 400);
	buf_free(&in);
}

/* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) */
static void
test_chunk_ext(void)
{
	static const char *const valid[] = {
		"5;a", "5;a=b", "5;a=\"x\"", "5;a=b;c", "5;a=\"\"", "5 ;a",
		"5\t;a", "5; a", "5;a =b", "5;a= b", "5;a = \"v w\"",
		"5;a;b;c=d", "5;a=\"x\\\"y\"", "5;a=\"\\\\\"", "5;a=\"x\";b",
		"5;a=\"\t\x80\xff\"", "5;a=\"x\\\xe9\"", "5;name=tok!#$%&'*+-.^_`|~",
		"5 ; a = b ; c", "5;a=\"x\" ;b",
	};
	static const char *const invalid[] = {
		"5;", "5; ", "5;=x", "5;a=", "5;a= ", "5;;a", "5;a;", "5 ",
		"5 x", "5;a b", "5;a=b c", "5;a=b ", "5;a ", "5;a=\"x\" ",
		"5;a=\"x", "5;a=\"x\"y", "5;a==b", "5;a=b=c", "5;a=\"x\x01\"",
		"5;a=\"x\\\x01\"", "5;a=\"x\x7f\"", "5;(a)", "5;a=(b)",
		"5;a=b,c", "5;a\x80", "5;a=\"x\",", "5;\"a\"", "5;a=\"\"\"",
	};
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		chunk_ext_accept(valid[i]);
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		chunk_ext_reject(invalid[i]);
	/* a quoted CR or LF cannot hide the end of the line */
	CHUNK_REJECT("CR inside a quoted value",
	    "5;a=\"x\r\nhello\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("bare LF after a name", "5;a\nhello\r\n0\r\n\r\n", 400);
}

static void
test_chunked(void)
{
	static const char body[] = "5\r\nhello\r\n7;name=\"v\"\r\n, world\r\n"
	    "0\r\nX-Trailer: t\r\nY: \r\n\r\nNEXT";
	struct buf out = BUF_INIT;
	struct err e;
	size_t consumed, total;
	enum http_parse_result r;
	struct http_chunked c;
	char *big;
	size_t i;

	r = chunked_once(body, sizeof(body) - 1, 1 << 20, &out, &consumed, &e);
	ok(r == HTTP_PARSE_DONE, "chunked body decoded");
	ok(buf_rlen(&out) == 12 && memcmp(buf_rptr(&out), "hello, world", 12) == 0,
	    "payload is the concatenated chunks");
	is_int(consumed, sizeof(body) - 1 - 4, "consumed stops before the next "
	    "request");
	buf_reset(&out);
	r = chunked_bytewise(body, sizeof(body) - 5, 1 << 20, &out, &total, &e);
	ok(r == HTTP_PARSE_DONE && total == sizeof(body) - 5 &&
	    buf_rlen(&out) == 12 && memcmp(buf_rptr(&out), "hello, world", 12) == 0,
	    "byte by byte gives the same payload");
	buf_reset(&out);

	r = chunked_once("A\r\n0123456789\r\n0\r\n\r\n", 22, 1 << 20, &out,
	    &consumed, &e);
	ok(r == HTTP_PARSE_DONE && buf_rlen(&out) == 10,
	    "upper-case hex size");
	buf_reset(&out);
	r = chunked_once("0000000000000003\r\nabc\r\n0\r\n\r\n", 29, 1 << 20,
	    &out, &consumed, &e);
	ok(r == HTTP_PARSE_DONE && buf_rlen(&out) == 3, "leading zeros");
	buf_reset(&out);
	r = chunked_once("3 ; ext\r\nabc\r\n0\r\n\r\n", 20, 1 << 20, &out,
	    &consumed, &e);
	ok(r == HTTP_PARSE_DONE && buf_rlen(&out) == 3,
	    "whitespace before ';' (BWS)");
	buf_reset(&out);

	http_chunked_init(&c);
	r = http_chunked_decode(&c, "5\r\nhel", 6, &out, 1 << 20, &lim,
	    &consumed, &e);
	ok(r == HTTP_PARSE_INCOMPLETE && consumed == 6 && buf_rlen(&out) == 3,
	    "partial chunk: all consumed, data so far delivered");
	r = http_chunked_decode(&c, "lo\r\n0\r\n\r\n", 9, &out, 1 << 20, &lim,
	    &consumed, &e);
	ok(r == HTTP_PARSE_DONE && consumed == 9 && buf_rlen(&out) == 5,
	    "rest of the body completes it");
	buf_free(&out);

	CHUNK_REJECT("empty size", "\r\nabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("non-hex size", "g\r\nabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("size with sign", "+3\r\nabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("size 0x prefix", "0x3\r\nabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("size 2^63", "8000000000000000\r\n", 400);
	CHUNK_REJECT("size 2^64+3 overflow", "10000000000000003\r\nabc\r\n", 400);
	CHUNK_REJECT("size 2^63-1 over max_body", "7fffffffffffffff\r\n", 413);
	chunk_reject("over max_body across chunks",
	    "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n", 26, 6, 413);
	CHUNK_REJECT("bare LF after size", "3\nabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("bare CR after size", "3\rabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("missing CRLF after data", "3\r\nabcd\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("LF only after data", "3\r\nabc\n0\r\n\r\n", 400);
	CHUNK_REJECT("space then junk after size", "3 x\r\nabc\r\n0\r\n\r\n", 400);
	CHUNK_REJECT("control char in extension", "3;a\x01\r\nabc\r\n0\r\n\r\n",
	    400);
	CHUNK_REJECT("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", 400);
	CHUNK_REJECT("trailer without colon", "0\r\nXa\r\n\r\n", 400);
	CHUNK_REJECT("trailer space before colon", "0\r\nX : a\r\n\r\n", 400);
	CHUNK_REJECT("trailer bare LF", "0\r\nX: a\n\r\n", 400);
	CHUNK_REJECT("bare LF at end", "0\r\n\n", 400);

	/* chunk extension: 1 KiB is fine, more is not */
	big = malloc(2200);
	strcpy(big, "3;");
	for (i = 2; i < 1024; i++)
		big[i] = 'x';
	strcpy(big + 1024, "\r\nabc\r\n0\r\n\r\n");
	buf_init(&out);
	r = chunked_once(big, strlen(big), 1 << 20, &out, &consumed, &e);
	ok(r == HTTP_PARSE_DONE, "chunk extension of 1023 bytes accepted");
	buf_free(&out);
	for (i = 2; i < 1100; i++)
		big[i] = 'x';
	strcpy(big + 1100, "\r\nabc\r\n0\r\n\r\n");
	chunk_reject("extension over 1 KiB", big, strlen(big), 1 << 20, 400);
	/* an extension that never ends is cut off at the limit */
	chunk_reject("endless extension", big, 1100, 1 << 20, 400);
	free(big);

	/* trailer section over its limit */
	big = malloc(24000);
	strcpy(big, "0\r\n");
	for (i = 0; i < 400; i++)
		sprintf(big + strlen(big), "X-T%03zu: %040d\r\n", i, 0);
	strcat(big, "\r\n");
	chunk_reject("trailers over 16 KiB", big, strlen(big), 1 << 20, 400);
	free(big);
}

static void
test_writer(void)
{
	static char rid[] = "X-Request-ID", rid_v[] = "abc", evil[] = "X-Evil",
	    evil_v[] = "a\r\nSet-Cookie: x=1";
	struct buf b = BUF_INIT;
	struct http_header extra[] = {
		{ rid, rid_v, 0, 0 },
		{ evil, evil_v, 0, 0 },
	};
	char date[HTTP_DATE_LEN + 1];
	const char *s, *d;
	static const int codes[] = { 100, 200, 201, 204, 304, 307, 400, 401,
	    403, 404, 405, 406, 408, 409, 413, 414, 415, 417, 422, 429, 431,
	    500, 501, 502, 503, 504, 505 };
	size_t i;
	bool all = true;

	is_str(http_date(date, 784111777), "Sun, 06 Nov 1994 08:49:37 GMT",
	    "IMF-fixdate of the RFC example");
	is_str(http_date(date, 0), "Thu, 01 Jan 1970 00:00:00 GMT", "epoch");

	http_write_head(&b, 200, "application/json", 17, false, true, extra, 2);
	s = buf_cstr(&b);
	ok(strncmp(s, "HTTP/1.1 200 OK\r\nDate: ", 23) == 0, "status line, Date");
	d = s + 23;
	ok(strlen(d) > HTTP_DATE_LEN && d[3] == ',' && d[4] == ' ' &&
	    d[7] == ' ' && d[11] == ' ' && d[16] == ' ' && d[19] == ':' &&
	    d[22] == ':' && strncmp(d + 25, " GMT\r\n", 6) == 0,
	    "Date is an IMF-fixdate");
	ok(strstr(s, "\r\nServer: ingenious\r\n") != NULL, "Server header");
	ok(strstr(s, "\r\nContent-Type: application/json\r\n") != NULL,
	    "Content-Type");
	ok(strstr(s, "\r\nContent-Length: 17\r\n") != NULL, "Content-Length");
	ok(strstr(s, "\r\nConnection: keep-alive\r\n") != NULL, "keep-alive");
	ok(strstr(s, "\r\nX-Request-ID: abc\r\n") != NULL, "extra field");
	ok(strstr(s, "\r\nX-Evil: a  Set-Cookie: x=1\r\n") != NULL &&
	    strstr(s, "\r\nSet-Cookie") == NULL,
	    "CR LF in an extra value cannot split the response");
	ok(strlen(s) > 4 && strcmp(s + strlen(s) - 4, "\r\n\r\n") == 0 &&
	    strstr(s, "\r\n\r\n") == s + strlen(s) - 4, "ends with one blank line");
	buf_reset(&b);

	http_write_head(&b, 200, "text/event-stream", -1, true, false, NULL, 0);
	s = buf_cstr(&b);
	ok(strstr(s, "\r\nTransfer-Encoding: chunked\r\n") != NULL &&
	    strstr(s, "Content-Length") == NULL, "chunked response head");
	ok(strstr(s, "\r\nConnection: close\r\n") != NULL, "Connection: close");
	buf_reset(&b);

	http_write_head(&b, 100, NULL, -1, false, true, NULL, 0);
	is_str(buf_cstr(&b), "HTTP/1.1 100 Continue\r\n\r\n", "100 Continue");
	buf_reset(&b);
	http_write_head(&b, 204, NULL, 0, false, true, NULL, 0);
	s = buf_cstr(&b);
	ok(strncmp(s, "HTTP/1.1 204 No Content\r\n", 25) == 0 &&
	    strstr(s, "Content-Length") == NULL, "204 has no Content-Length");
	buf_reset(&b);

	http_write_chunk(&b, "hello", 5);
	http_write_chunk(&b, "", 0);
	http_write_chunk(&b, "0123456789abcdefghijklmnopqrstuvwxyz", 26);
	http_write_last_chunk(&b);
	is_str(buf_cstr(&b), "5\r\nhello\r\n1a\r\n0123456789abcdefghijklmnop\r\n"
	    "0\r\n\r\n", "chunk writer");
	buf_free(&b);

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(http_status_reason(codes[i]), "Unknown") == 0) {
			printf("#   no reason for %d\n", codes[i]);
			all = false;
		}
	ok(all, "every status we send has a reason phrase");
	is_str(http_status_reason(404), "Not Found", "404 reason");
	is_str(http_status_reason(599), "Unknown", "unknown code");
	is_str(http_method_name(HTTP_METHOD_OPTIONS), "OPTIONS", "method name");
}

static void
test_percent_decode(void)
{
	struct arena *a = arena_create(0);
	struct err e;
	char *s;

	is_str(http_percent_decode(a, "a%20b+c%2fd%C3%A9", 17, &e),
	    "a b+c/d\xc3\xa9", "escapes decoded, '+' kept");
	is_str(http_percent_decode(a, "", 0, &e), "", "empty");
	is_str(http_percent_decode(a, "abc%41", 3, &e), "abc",
	    "only n bytes are read");
	s = http_percent_decode(a, "%zz", 3, &e);
	ok(s == NULL && e.status == 400, "bad hex escape rejected");
	s = http_percent_decode(a, "ab%4", 4, &e);
	ok(s == NULL && e.status == 400, "truncated escape rejected");
	s = http_percent_decode(a, "ab%", 3, &e);
	ok(s == NULL && e.status == 400, "lone '%%' rejected");
	s = http_percent_decode(a, "a%00b", 5, &e);
	ok(s == NULL && e.status == 400, "encoded NUL rejected");
	s = http_percent_decode(a, "a\0b", 3, &e);
	ok(s == NULL && e.status == 400, "raw NUL rejected");
	arena_destroy(a);
}

int
main(void)
{
	http_limits_init(&lim);
	test_simple_get();
	test_methods_and_versions();
	test_targets();
	test_host();
	test_framing_rejects();
	test_limits();
	test_pipelining();
	test_bytewise_same();
	test_chunked();
	test_chunk_ext();
	test_writer();
	test_percent_decode();
	return tap_done();
}
