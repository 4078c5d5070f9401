/*
 * http.c -- the HTTP/1.1 request-head parser, the chunked body decoder and
 * the response writer (RFC 9112, RELIABILITY H1/H2).
 *
 * It owns the byte-level grammar of a request: where a head ends, what is a
 * valid field, the forms of a request-target and of a Host, how a body is
 * framed (chunk extensions included).  It never touches a socket, a thread
 * or a route, and it never guesses: every ambiguity that could let two
 * parsers disagree about where a request ends, or which host it is for, is
 * an error (no request smuggling).  The only clock it reads is time(2), for
 * the Date header.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/http.h"

/* at most this many empty lines before a request line are ignored */
#define HTTP_MAX_EMPTY_LINES   4
/* hex digits in a chunk size, leading zeros included */
#define HTTP_MAX_CHUNK_DIGITS  32

/*
 * Character classes.  TCHAR: RFC 9110 token characters.  FVAL: allowed in a
 * field value (HTAB, SP, VCHAR, obs-text).  TGT: allowed in a request-target
 * (visible ASCII).
 */
#define HTTP_C_TCHAR  0x01
#define HTTP_C_FVAL   0x02
#define HTTP_C_TGT    0x04

static const unsigned char http_ctype[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6,
	6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

#define http_is_tchar(c)  (http_ctype[(unsigned char)(c)] & HTTP_C_TCHAR)
#define http_is_fval(c)   (http_ctype[(unsigned char)(c)] & HTTP_C_FVAL)
#define http_is_tgt(c)    (http_ctype[(unsigned char)(c)] & HTTP_C_TGT)
#define http_is_ows(c)    ((c) == ' ' || (c) == '\t')

/*
 * Word-at-a-time tests (the "hasless" bit trick): non-zero when one of the
 * 8 bytes of w is below n (n <= 128), or equal to v.  They let the scanner
 * and the value parser skip 8 ordinary bytes per step.
 */
#define HTTP_ONES  0x0101010101010101ULL
#define HTTP_HIGHS 0x8080808080808080ULL
#define http_word_hasless(w, n)  (((w) - HTTP_ONES * (n)) & ~(w) & HTTP_HIGHS)
#define http_word_hasbyte(w, v)  http_word_hasless((w) ^ (HTTP_ONES * (v)), 1)

static inline uint64_t
http_load8(const char *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static const struct http_limits http_default_limits = {
	HTTP_DEFAULT_MAX_REQUEST_LINE,
	HTTP_DEFAULT_MAX_HEADER_SIZE,
	HTTP_DEFAULT_MAX_HEADERS,
	HTTP_DEFAULT_MAX_CHUNK_EXT,
	HTTP_DEFAULT_MAX_TRAILER_SIZE,
};

static const char *const http_method_names[HTTP_METHOD_COUNT] = {
	[HTTP_METHOD_GET] = "GET",
	[HTTP_METHOD_HEAD] = "HEAD",
	[HTTP_METHOD_POST] = "POST",
	[HTTP_METHOD_PUT] = "PUT",
	[HTTP_METHOD_DELETE] = "DELETE",
	[HTTP_METHOD_OPTIONS] = "OPTIONS",
	[HTTP_METHOD_PATCH] = "PATCH",
	[HTTP_METHOD_OTHER] = "OTHER",
};

void
http_limits_init(struct http_limits *lim)
{
	*lim = http_default_limits;
}

static inline unsigned char
http_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ASCII case-insensitive comparison of n bytes; true when equal. */
static bool
http_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (http_lower((unsigned char)a[i]) != http_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* Does the field name (name, len) equal the lower-case literal `lit`? */
#define http_name_is(name, len, lit) \
	((len) == sizeof(lit) - 1 && http_caseeq((name), (lit), sizeof(lit) - 1))

/* ------------------------------------------------------------------ */
/* request head                                                        */
/* ------------------------------------------------------------------ */

void
http_head_state_init(struct http_head_state *st)
{
	memset(st, 0, sizeof(*st));
	st->in_request_line = true;
}

static enum http_method
http_method_lookup(const char *m, size_t n)
{
	switch (n) {
	case 3:
		if (memcmp(m, "GET", 3) == 0)
			return HTTP_METHOD_GET;
		if (memcmp(m, "PUT", 3) == 0)
			return HTTP_METHOD_PUT;
		break;
	case 4:
		if (memcmp(m, "POST", 4) == 0)
			return HTTP_METHOD_POST;
		if (memcmp(m, "HEAD", 4) == 0)
			return HTTP_METHOD_HEAD;
		break;
	case 5:
		if (memcmp(m, "PATCH", 5) == 0)
			return HTTP_METHOD_PATCH;
		break;
	case 6:
		if (memcmp(m, "DELETE", 6) == 0)
			return HTTP_METHOD_DELETE;
		break;
	case 7:
		if (memcmp(m, "OPTIONS", 7) == 0)
			return HTTP_METHOD_OPTIONS;
		break;
	}
	return HTTP_METHOD_OTHER;
}

/* unreserved and sub-delims of RFC 3986 2.2-2.3, the bytes of a reg-name
 * besides its pct-encoded octets */
static bool
http_is_regname(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("-._~!$&'()*+,;=",
	    c) != NULL);
}

/*
 * IP-literal without its brackets (RFC 3986 3.2.2): IPv6address (as
 * inet_pton reads it: no zone identifier) or IPvFuture ("v" 1*HEXDIG "."
 * 1*( unreserved / sub-delims / ":" )).
 */
static bool
http_ip_literal_valid(const char *s, size_t n)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr addr;
	size_t i;

	if (n > 0 && (s[0] == 'v' || s[0] == 'V')) {
		for (i = 1; i < n && hex_digit((unsigned char)s[i]) >= 0; i++)
			;
		if (i == 1 || i == n || s[i] != '.' || i + 1 == n)
			return false;
		for (i++; i < n; i++)
			if (s[i] != ':' && (s[i] == '%' ||
			    !http_is_regname((unsigned char)s[i])))
				return false;
		return true;
	}
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, &addr) == 1;
}

/*
 * Is v[0..n) uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2-3.2.3)?
 * uri-host is an IP-literal in brackets or a reg-name (unreserved,
 * pct-encoded and sub-delims: an IPv4 address is one); port is *DIGIT.
 * Sets *host_len to the length of the uri-host: a Host field may have an
 * empty one, an http(s) URI may not (RFC 9110 4.2.1).
 */
static bool
http_host_valid(const char *v, size_t n, size_t *host_len)
{
	size_t i = 0;

	if (n > 0 && v[0] == '[') {
		const char *close = memchr(v, ']', n);

		if (close == NULL ||
		    !http_ip_literal_valid(v + 1, (size_t)(close - v) - 1))
			return false;
		i = (size_t)(close - v) + 1;
	} else {
		while (i < n && v[i] != ':') {
			if (v[i] == '%') {
				if (hex_percent_octet(v, n, &i) < 0)
					return false;
			} else if (http_is_regname((unsigned char)v[i])) {
				i++;
			} else {
				return false;
			}
		}
	}
	*host_len = i;
	if (i == n)
		return true;
	if (v[i] != ':')
		return false;
	for (i++; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/*
 * The request-target t[0..n) (NUL-terminated at n; its first '?' at q, or
 * q == SIZE_MAX) in one of the forms of RFC 9112 3.2: origin-form
 * ("/path?query") and absolute-form ("http://host/path?query", the scheme
 * http or https in any case, no userinfo) for any method; asterisk-form
 * ("*") for OPTIONS only; authority-form ("host:port") for CONNECT only,
 * which is not implemented (501).  Sets req->target, path, query and, for
 * the absolute-form, host (its authority; an empty path is "/").
 */
static int
http_parse_target(char *t, size_t n, size_t q, struct arena *a,
    struct http_request *req, struct err *e)
{
	size_t hs, he, pe, hl;

	req->target = t;
	req->query = q == SIZE_MAX ? NULL : t + q + 1;
	if (t[0] == '/') {
		req->path = q == SIZE_MAX ? t : arena_strndup(a, t, q);
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (req->method != HTTP_METHOD_OPTIONS)
			return err_set(e, 400, "invalid request target: "
			    "'*' is only for OPTIONS");
		req->path = t;
		return 0;
	}
	if (strcmp(req->method_name, "CONNECT") == 0) {
		if (!http_host_valid(t, n, &hl) || hl == 0 || hl == n)
			return err_set(e, 400,
			    "invalid request target: bad authority-form");
		return err_set(e, 501, "method CONNECT is not implemented");
	}
	if (n >= sizeof("http://") - 1 && http_caseeq(t, "http://",
	    sizeof("http://") - 1))
		hs = sizeof("http://") - 1;
	else if (n >= sizeof("https://") - 1 && http_caseeq(t, "https://",
	    sizeof("https://") - 1))
		hs = sizeof("https://") - 1;
	else
		return err_set(e, 400, "invalid request target: "
		    "not origin-form or an http(s) absolute-form");
	for (he = hs; he < n && t[he] != '/' && t[he] != '?'; he++)
		;
	if (memchr(t + hs, '@', he - hs) != NULL)
		return err_set(e, 400,
		    "invalid request target: userinfo not allowed");
	if (!http_host_valid(t + hs, he - hs, &hl) || hl == 0)
		return err_set(e, 400, "invalid request target: bad host");
	req->host = arena_strndup(a, t + hs, he - hs);
	pe = q == SIZE_MAX ? n : q;
	if (pe == he)
		req->path = arena_strndup(a, "/", 1);
	else if (q == SIZE_MAX)
		req->path = t + he;
	else
		req->path = arena_strndup(a, t + he, pe - he);
	return 0;
}

/*
 * Parse "method SP request-target SP HTTP-version" in line[0..n), which the
 * caller owns (an arena copy): the method and the target are NUL-terminated
 * in place.
 */
static int
http_parse_request_line(char *line, size_t n, struct arena *a,
    struct http_request *req, struct err *e)
{
	size_t i = 0, mlen, tstart, tlen, q = SIZE_MAX;
	const char *v;

	while (i < n && http_is_tchar(line[i]))
		i++;
	mlen = i;
	if (mlen == 0 || i == n || line[i] != ' ')
		return err_set(e, 400, "invalid request line: bad method");
	line[i++] = '\0';
	req->method_name = line;
	req->method = http_method_lookup(line, mlen);

	tstart = i;
	while (i < n && http_is_tgt(line[i])) {
		if (line[i] == '?' && q == SIZE_MAX)
			q = i;
		else if (line[i] == '#')
			return err_set(e, 400,
			    "invalid request target: fragment not allowed");
		i++;
	}
	tlen = i - tstart;
	if (tlen == 0 || i == n || line[i] != ' ')
		return err_set(e, 400, "invalid request line: bad request target");
	line[i++] = '\0';

	/* exactly "HTTP/" DIGIT "." DIGIT */
	v = line + i;
	if (n - i != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return err_set(e, 400, "invalid request line: bad HTTP version");
	if (v[5] != '1' || v[7] > '1')
		return err_set(e, 505, "HTTP version %c.%c is not supported",
		    v[5], v[7]);
	req->version_minor = v[7] - '0';

	return http_parse_target(line + tstart, tlen,
	    q == SIZE_MAX ? SIZE_MAX : q - tstart, a, req, e);
}

/* Content-Length: 1*DIGIT, no list, no sign, fits in int64. */
static int
http_parse_content_length(const char *v, size_t n, int64_t *out, struct err *e)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0)
		return err_set(e, 400, "invalid Content-Length: empty");
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned char)v[i] - '0';

		if (d > 9)
			return err_set(e, 400, "invalid Content-Length: %s",
			    memchr(v, ',', n) ? "a list is not allowed" :
			    "not a number");
		if (x > ((uint64_t)INT64_MAX - d) / 10)
			return err_set(e, 400, "invalid Content-Length: too large");
		x = x * 10 + d;
	}
	*out = (int64_t)x;
	return 0;
}

/* Scan a comma-separated Connection value for close / keep-alive. */
static void
http_scan_connection(const char *v, size_t n, bool *close, bool *keep)
{
	size_t i = 0, s, t;

	while (i < n) {
		while (i < n && (http_is_ows(v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		t = i;
		while (t > s && http_is_ows(v[t - 1]))
			t--;
		if (http_name_is(v + s, t - s, "close"))
			*close = true;
		else if (http_name_is(v + s, t - s, "keep-alive"))
			*keep = true;
	}
}

/* What the field lines said about framing, gathered in one pass. */
struct http_framing {
	size_t n_host;
	struct http_header *host;   /* the first Host field */
	size_t n_cl;
	size_t n_te;
	bool te_chunked;            /* every TE field was exactly "chunked" */
	bool conn_close;
	bool conn_keep_alive;
	bool expect_other;
	bool expect_continue;
};

/*
 * Parse the field lines in p[0..n) (each ending in CRLF; the final empty
 * line not included) into req->headers, NUL-terminating names and values in
 * place.
 */
static int
http_parse_fields(char *p, size_t n, size_t n_fields, struct arena *a,
    struct http_request *req, struct http_framing *fr, struct err *e)
{
	struct http_header *h;
	size_t i = 0, k = 0, slots, hl;

	/* one slot more for the Host of an absolute-form target */
	slots = n_fields + (req->host != NULL);
	req->headers = slots ? arena_alloc(a, slots * sizeof(*h)) : NULL;
	while (i < n) {
		size_t ns = i, nl, vs, ve;
		unsigned char c;

		while (http_is_tchar(p[i]))
			i++;
		nl = i - ns;
		c = (unsigned char)p[i];
		if (c != ':' || nl == 0) {
			if (nl == 0 && http_is_ows(c))
				return err_set(e, 400,
				    "invalid header: obsolete line folding");
			if (http_is_ows(c))
				return err_set(e, 400,
				    "invalid header: whitespace before the colon");
			if (nl == 0 && c == ':')
				return err_set(e, 400, "invalid header: empty name");
			return err_set(e, 400,
			    "invalid header: bad character in name");
		}
		p[i++] = '\0';
		while (http_is_ows(p[i]))
			i++;
		vs = ve = i;
		/* the scanner guaranteed a CRLF ends every line */
		for (;;) {
			uint64_t w;

			/* 8 bytes of VCHAR or obs-text at a time */
			while (n - i >= 8 && (w = http_load8(p + i),
			    !http_word_hasless(w, 0x21) &&
			    !http_word_hasbyte(w, 0x7f))) {
				i += 8;
				ve = i;
			}
			if (p[i] == '\r')
				break;
			c = (unsigned char)p[i];
			if (!http_is_fval(c))
				return err_set(e, 400,
				    "invalid header: control character in value");
			i++;
			if (!http_is_ows(c))
				ve = i;
		}
		p[ve] = '\0';
		i += 2;

		if (k == n_fields)   /* cannot happen: the scanner counted */
			return err_set(e, 400, "invalid header section");
		h = &req->headers[k++];
		h->name = p + ns;
		h->name_len = nl;
		h->value = p + vs;
		h->value_len = ve - vs;

		switch (nl) {
		case 4:
			if (http_name_is(h->name, nl, "host")) {
				if (!http_host_valid(h->value, h->value_len, &hl))
					return err_set(e, 400,
					    "invalid header: bad Host value");
				if (fr->n_host++ == 0)
					fr->host = h;
			}
			break;
		case 6:
			if (http_name_is(h->name, nl, "expect")) {
				if (http_name_is(h->value, h->value_len,
				    "100-continue"))
					fr->expect_continue = true;
				else
					fr->expect_other = true;
			}
			break;
		case 10:
			if (http_name_is(h->name, nl, "connection"))
				http_scan_connection(h->value, h->value_len,
				    &fr->conn_close, &fr->conn_keep_alive);
			break;
		case 14:
			if (http_name_is(h->name, nl, "content-length")) {
				if (++fr->n_cl > 1)
					return err_set(e, 400,
					    "invalid header: duplicate Content-Length");
				if (http_parse_content_length(h->value,
				    h->value_len, &req->content_length, e) < 0)
					return -1;
			}
			break;
		case 17:
			if (http_name_is(h->name, nl, "transfer-encoding")) {
				fr->n_te++;
				fr->te_chunked = fr->n_te == 1 &&
				    http_name_is(h->value, h->value_len,
				    "chunked");
			}
			break;
		}
	}
	req->n_headers = k;
	return 0;
}

/* The head is data[st->head_start .. end): parse it. */
static enum http_parse_result
http_parse_complete_head(const struct http_head_state *st, const char *data,
    size_t end, struct arena *a, struct http_request *req, struct err *e)
{
	size_t hl = end - st->head_start;
	size_t rl = st->fields_start - 2 - st->head_start;
	struct http_framing fr;
	char *copy;

	memset(&fr, 0, sizeof(fr));
	memset(req, 0, sizeof(*req));
	req->content_length = -1;

	/* one copy of the whole head; every string points into it */
	copy = arena_alloc(a, hl + 1);
	memcpy(copy, data + st->head_start, hl);
	copy[hl] = '\0';

	if (http_parse_request_line(copy, rl, a, req, e) < 0)
		return HTTP_PARSE_ERROR;
	/* fields run from after the request line's CRLF to the final CRLF */
	if (http_parse_fields(copy + rl + 2, hl - rl - 4, st->n_fields, a, req,
	    &fr, e) < 0)
		return HTTP_PARSE_ERROR;

	if (fr.n_cl > 0 && fr.n_te > 0) {
		err_set(e, 400,
		    "invalid header: Content-Length with Transfer-Encoding");
		return HTTP_PARSE_ERROR;
	}
	if (fr.n_te > 0) {
		/* RFC 9112 6.1: TE in HTTP/1.0 means the framing is faulty */
		if (req->version_minor == 0) {
			err_set(e, 400,
			    "invalid header: Transfer-Encoding in HTTP/1.0");
			return HTTP_PARSE_ERROR;
		}
		if (!fr.te_chunked) {
			err_set(e, 501, "transfer coding not implemented: "
			    "only \"chunked\" is accepted");
			return HTTP_PARSE_ERROR;
		}
		req->chunked = true;
	}
	if (fr.n_host > 1) {
		err_set(e, 400, "invalid header: more than one Host");
		return HTTP_PARSE_ERROR;
	}
	if (fr.n_host == 0 && req->version_minor == 1) {
		err_set(e, 400, "invalid header: Host is required in HTTP/1.1");
		return HTTP_PARSE_ERROR;
	}
	if (req->host != NULL) {
		/* RFC 9112 3.2.2: the absolute-form's authority replaces Host */
		struct http_header *h = fr.host;

		if (h == NULL) {
			h = &req->headers[req->n_headers++];
			h->name = arena_strndup(a, "Host", sizeof("Host") - 1);
			h->name_len = sizeof("Host") - 1;
		}
		h->value = req->host;
		h->value_len = strlen(req->host);
	} else if (fr.host != NULL) {
		req->host = fr.host->value;
	}
	if (req->version_minor == 1)
		req->keep_alive = !fr.conn_close;
	else
		req->keep_alive = fr.conn_keep_alive && !fr.conn_close;
	/* RFC 9110 10.1.1: ignore 100-continue from an HTTP/1.0 client */
	if (fr.expect_other) {
		err_set(e, 417, "expectation not supported");
		return HTTP_PARSE_ERROR;
	}
	req->expect_continue = fr.expect_continue && req->version_minor == 1;
	return HTTP_PARSE_DONE;
}

static size_t
http_sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/*
 * The first offset the scanner may not look at in its current state: past
 * max_request_line bytes of request line (its CR may sit right at the
 * limit), or past max_header_size bytes of field section.
 */
static size_t
http_scan_bound(const struct http_head_state *st, const struct http_limits *lim)
{
	if (st->in_request_line)
		return http_sat_add(http_sat_add(st->line_start,
		    lim->max_request_line), 1);
	return http_sat_add(st->fields_start, lim->max_header_size);
}

enum http_parse_result
http_parse_head(struct http_head_state *st, const char *data, size_t len,
    const struct http_limits *lim, struct arena *a, struct http_request *req,
    size_t *consumed, struct err *e)
{
	enum http_parse_result r;
	size_t i, bound, end = 0;
	bool found = false;

	if (lim == NULL)
		lim = &http_default_limits;
	*consumed = 0;

	/*
	 * The scanner: each byte once.  Everything above CR is ordinary; NUL,
	 * bare LF and bare CR are rejected as soon as they are seen, and line
	 * ends drive the state.  It never scans past `bound`, the first byte
	 * the limits forbid, so the first violation in byte order decides the
	 * status however the bytes were split between calls.
	 */
	i = st->scanned;
	bound = http_scan_bound(st, lim);
	for (;;) {
		size_t stop = len < bound ? len : bound;
		bool line_end = false;

		for (; i < stop; i++) {
			unsigned char c;

			/* most of a head is above CR: skip it 8 bytes a time */
			while (stop - i >= 8 &&
			    !http_word_hasless(http_load8(data + i), '\r' + 1))
				i += 8;
			if (i == stop)
				break;
			c = (unsigned char)data[i];
			if (c > '\r')
				continue;
			if (c == '\0') {
				err_set(e, 400, "invalid request: NUL byte in head");
				return HTTP_PARSE_ERROR;
			}
			if (c == '\n') {
				err_set(e, 400, "invalid request: bare LF in head");
				return HTTP_PARSE_ERROR;
			}
			if (c == '\r') {
				line_end = true;
				break;
			}
		}
		if (!line_end) {
			if (i >= bound)
				goto over_limit;
			break;              /* everything scanned: need more */
		}
		if (i + 1 == len)
			break;              /* look at this CR again with its successor */
		if (data[i + 1] != '\n') {
			err_set(e, 400, "invalid request: bare CR in head");
			return HTTP_PARSE_ERROR;
		}
		if (st->in_request_line) {
			/* i < bound: the line fits max_request_line */
			if (i == st->line_start) {
				if (++st->n_empty > HTTP_MAX_EMPTY_LINES) {
					err_set(e, 400, "invalid request: "
					    "empty lines before the request line");
					return HTTP_PARSE_ERROR;
				}
				st->head_start = i + 2;
			} else {
				st->in_request_line = false;
				st->fields_start = i + 2;
			}
		} else {
			/* the section so far, this CRLF included, must fit */
			if (i + 2 > bound)
				goto over_limit;
			if (i == st->line_start) {
				end = i + 2;
				found = true;
				break;
			}
			if (++st->n_fields > lim->max_headers) {
				err_set(e, 431, "too many header fields (limit %zu)",
				    lim->max_headers);
				return HTTP_PARSE_ERROR;
			}
		}
		i += 2;
		st->line_start = i;
		bound = http_scan_bound(st, lim);
	}
	st->scanned = i;
	if (!found)
		return HTTP_PARSE_INCOMPLETE;

	r = http_parse_complete_head(st, data, end, a, req, e);
	if (r == HTTP_PARSE_DONE) {
		*consumed = end;
		http_head_state_init(st);
	}
	return r;

over_limit:
	if (!st->in_request_line) {
		err_set(e, 431, "header section too large (limit %zu bytes)",
		    lim->max_header_size);
		return HTTP_PARSE_ERROR;
	}
	err_set(e, 414, "request line too long (limit %zu bytes)",
	    lim->max_request_line);
	return HTTP_PARSE_ERROR;
}

const char *
http_header_get(const struct http_request *req, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		size_t hl = h->name_len ? h->name_len : strlen(h->name);

		if (hl == n && http_caseeq(h->name, name, n))
			return h->value;
	}
	return NULL;
}

size_t
http_header_count(const struct http_request *req, const char *name)
{
	size_t i, n = strlen(name), count = 0;

	for (i = 0; i < req->n_headers; i++) {
		const struct http_header *h = &req->headers[i];
		size_t hl = h->name_len ? h->name_len : strlen(h->name);

		if (hl == n && http_caseeq(h->name, name, n))
			count++;
	}
	return count;
}

/* ------------------------------------------------------------------ */
/* chunked bodies                                                      */
/* ------------------------------------------------------------------ */

enum http_chunk_state {
	HTTP_CHUNK_SIZE_START = 0,  /* first hex digit of a size */
	HTTP_CHUNK_SIZE,            /* more hex digits */
	/* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) */
	HTTP_CHUNK_EXT_BWS,         /* whitespace: ';' must follow */
	HTTP_CHUNK_EXT_NAME_START,  /* after ';': whitespace, then a token */
	HTTP_CHUNK_EXT_NAME,        /* in the name token */
	HTTP_CHUNK_EXT_NAME_BWS,    /* whitespace after a name: '=' or ';' */
	HTTP_CHUNK_EXT_VALUE_START, /* after '=': whitespace, then the value */
	HTTP_CHUNK_EXT_VALUE,       /* in a token value */
	HTTP_CHUNK_EXT_QUOTED,      /* in a quoted-string value */
	HTTP_CHUNK_EXT_QUOTED_PAIR, /* after a backslash in it */
	HTTP_CHUNK_EXT_QUOTED_END,  /* after its closing quote */
	HTTP_CHUNK_SIZE_LF,         /* CR seen at the end of the size line */
	HTTP_CHUNK_DATA,
	HTTP_CHUNK_DATA_CR,
	HTTP_CHUNK_DATA_LF,
	HTTP_CHUNK_TRAILER_START,   /* a trailer field, or the final CRLF */
	HTTP_CHUNK_TRAILER_NAME,
	HTTP_CHUNK_TRAILER_VALUE,
	HTTP_CHUNK_TRAILER_LF,
	HTTP_CHUNK_FINAL_LF,
	HTTP_CHUNK_DONE,
	HTTP_CHUNK_ERROR,
};

void
http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = HTTP_CHUNK_SIZE_START;
}

/*
 * One byte of a chunk extension (RFC 9112 7.1.1; chunk-ext-name a token,
 * chunk-ext-val a token or a quoted-string, RFC 9110 5.6.4): the next
 * state, HTTP_CHUNK_SIZE_LF for the CR that may end the line here, or
 * HTTP_CHUNK_ERROR.
 */
static int
http_chunk_ext_step(int state, unsigned char ch)
{
	bool ows = http_is_ows(ch), tchar = http_is_tchar(ch);

	switch (state) {
	case HTTP_CHUNK_EXT_BWS:
		if (ows)
			return state;
		return ch == ';' ? HTTP_CHUNK_EXT_NAME_START : HTTP_CHUNK_ERROR;
	case HTTP_CHUNK_EXT_NAME_START:
		if (ows)
			return state;
		return tchar ? HTTP_CHUNK_EXT_NAME : HTTP_CHUNK_ERROR;
	case HTTP_CHUNK_EXT_NAME:
	case HTTP_CHUNK_EXT_NAME_BWS:
		if (tchar && state == HTTP_CHUNK_EXT_NAME)
			return state;
		if (ch == '=')
			return HTTP_CHUNK_EXT_VALUE_START;
		if (ch == ';')
			return HTTP_CHUNK_EXT_NAME_START;
		if (ows)
			return HTTP_CHUNK_EXT_NAME_BWS;
		return ch == '\r' && state == HTTP_CHUNK_EXT_NAME ?
		    HTTP_CHUNK_SIZE_LF : HTTP_CHUNK_ERROR;
	case HTTP_CHUNK_EXT_VALUE_START:
		if (ows)
			return state;
		if (ch == '"')
			return HTTP_CHUNK_EXT_QUOTED;
		return tchar ? HTTP_CHUNK_EXT_VALUE : HTTP_CHUNK_ERROR;
	case HTTP_CHUNK_EXT_VALUE:
	case HTTP_CHUNK_EXT_QUOTED_END:
		if (tchar && state == HTTP_CHUNK_EXT_VALUE)
			return state;
		if (ch == ';')
			return HTTP_CHUNK_EXT_NAME_START;
		if (ows)
			return HTTP_CHUNK_EXT_BWS;
		return ch == '\r' ? HTTP_CHUNK_SIZE_LF : HTTP_CHUNK_ERROR;
	case HTTP_CHUNK_EXT_QUOTED:
		if (ch == '"')
			return HTTP_CHUNK_EXT_QUOTED_END;
		if (ch == '\\')
			return HTTP_CHUNK_EXT_QUOTED_PAIR;
		/* qdtext: HTAB, SP, VCHAR but '"' and '\\', obs-text */
		return http_is_fval(ch) ? state : HTTP_CHUNK_ERROR;
	case HTTP_CHUNK_EXT_QUOTED_PAIR:
		return http_is_fval(ch) ? HTTP_CHUNK_EXT_QUOTED :
		    HTTP_CHUNK_ERROR;
	}
	return HTTP_CHUNK_ERROR;
}

/* Why byte `ch` cannot follow in chunk extension state `state`. */
static const char *
http_chunk_ext_error(int state, unsigned char ch)
{
	if (ch == '\n')
		return "bare LF in chunk size line";
	switch (state) {
	case HTTP_CHUNK_EXT_NAME_START:
		return "missing chunk extension name";
	case HTTP_CHUNK_EXT_VALUE_START:
		return "missing chunk extension value";
	case HTTP_CHUNK_EXT_QUOTED:
	case HTTP_CHUNK_EXT_QUOTED_PAIR:
		return "invalid character in a quoted chunk extension value";
	}
	return "invalid chunk extension";
}

enum http_parse_result
http_chunked_decode(struct http_chunked *c, const char *in, size_t len,
    struct buf *out, size_t max_body, const struct http_limits *lim,
    size_t *consumed, struct err *e)
{
	size_t i = 0;
	const char *why;
	int status = 400;

	if (lim == NULL)
		lim = &http_default_limits;
	*consumed = 0;
	if (c->state == HTTP_CHUNK_DONE)
		return HTTP_PARSE_DONE;
	if (c->state == HTTP_CHUNK_ERROR) {
		why = "invalid chunked body";
		goto fail;
	}

	while (i < len) {
		unsigned char ch = (unsigned char)in[i];
		int d;

		switch (c->state) {
		case HTTP_CHUNK_SIZE_START:
		case HTTP_CHUNK_SIZE:
			d = hex_digit(ch);
			if (d >= 0) {
				if (++c->line_len > HTTP_MAX_CHUNK_DIGITS) {
					why = "chunk size too long";
					goto fail;
				}
				if (c->remaining >
				    ((uint64_t)INT64_MAX - (uint64_t)d) / 16) {
					why = "chunk size too large";
					goto fail;
				}
				c->remaining = c->remaining * 16 + (uint64_t)d;
				c->state = HTTP_CHUNK_SIZE;
				i++;
				break;
			}
			if (c->state == HTTP_CHUNK_SIZE_START) {
				why = ch == '\n' ? "bare LF in chunk size line" :
				    "missing chunk size";
				goto fail;
			}
			/* the size is complete: decide 413 before any data */
			if (c->remaining > (uint64_t)max_body - c->decoded) {
				status = 413;
				why = "request body too large";
				goto fail;
			}
			if (ch == '\r') {
				c->state = HTTP_CHUNK_SIZE_LF;
			} else if (ch == ';') {
				c->state = HTTP_CHUNK_EXT_NAME_START;
				c->ext_len = 1;
			} else if (http_is_ows(ch)) {
				c->state = HTTP_CHUNK_EXT_BWS;
				c->ext_len = 1;
			} else {
				why = ch == '\n' ? "bare LF in chunk size line" :
				    "invalid chunk size";
				goto fail;
			}
			i++;
			break;
		case HTTP_CHUNK_EXT_BWS:
		case HTTP_CHUNK_EXT_NAME_START:
		case HTTP_CHUNK_EXT_NAME:
		case HTTP_CHUNK_EXT_NAME_BWS:
		case HTTP_CHUNK_EXT_VALUE_START:
		case HTTP_CHUNK_EXT_VALUE:
		case HTTP_CHUNK_EXT_QUOTED:
		case HTTP_CHUNK_EXT_QUOTED_PAIR:
		case HTTP_CHUNK_EXT_QUOTED_END:
			d = http_chunk_ext_step(c->state, ch);
			if (d == HTTP_CHUNK_ERROR) {
				why = http_chunk_ext_error(c->state, ch);
				goto fail;
			}
			/* the CR ends the line; every other byte counts */
			if (d != HTTP_CHUNK_SIZE_LF &&
			    ++c->ext_len > lim->max_chunk_ext) {
				why = "chunk extension too long";
				goto fail;
			}
			c->state = d;
			i++;
			break;
		case HTTP_CHUNK_SIZE_LF:
			if (ch != '\n') {
				why = "bare CR in chunk size line";
				goto fail;
			}
			i++;
			c->line_len = 0;
			c->ext_len = 0;
			c->state = c->remaining ? HTTP_CHUNK_DATA :
			    HTTP_CHUNK_TRAILER_START;
			break;
		case HTTP_CHUNK_DATA: {
			size_t n = len - i;

			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			buf_append(out, in + i, n);
			i += n;
			c->remaining -= n;
			c->decoded += n;
			if (c->remaining == 0)
				c->state = HTTP_CHUNK_DATA_CR;
			break;
		}
		case HTTP_CHUNK_DATA_CR:
			if (ch != '\r') {
				why = "missing CRLF after chunk data";
				goto fail;
			}
			c->state = HTTP_CHUNK_DATA_LF;
			i++;
			break;
		case HTTP_CHUNK_DATA_LF:
			if (ch != '\n') {
				why = "missing CRLF after chunk data";
				goto fail;
			}
			c->state = HTTP_CHUNK_SIZE_START;
			i++;
			break;
		case HTTP_CHUNK_TRAILER_START:
		case HTTP_CHUNK_TRAILER_NAME:
		case HTTP_CHUNK_TRAILER_VALUE:
		case HTTP_CHUNK_TRAILER_LF:
		case HTTP_CHUNK_FINAL_LF:
			if (++c->trailer_len > lim->max_trailer_size) {
				why = "trailer section too large";
				goto fail;
			}
			i++;
			switch (c->state) {
			case HTTP_CHUNK_TRAILER_START:
				if (ch == '\r')
					c->state = HTTP_CHUNK_FINAL_LF;
				else if (http_is_tchar(ch))
					c->state = HTTP_CHUNK_TRAILER_NAME;
				else {
					why = http_is_ows(ch) ?
					    "obsolete line folding in trailer" :
					    ch == '\n' ? "bare LF in trailer" :
					    "invalid trailer field";
					goto fail;
				}
				break;
			case HTTP_CHUNK_TRAILER_NAME:
				if (ch == ':')
					c->state = HTTP_CHUNK_TRAILER_VALUE;
				else if (!http_is_tchar(ch)) {
					why = "invalid trailer field name";
					goto fail;
				}
				break;
			case HTTP_CHUNK_TRAILER_VALUE:
				if (ch == '\r')
					c->state = HTTP_CHUNK_TRAILER_LF;
				else if (!http_is_fval(ch)) {
					why = "invalid trailer field value";
					goto fail;
				}
				break;
			case HTTP_CHUNK_TRAILER_LF:
				if (ch != '\n') {
					why = "bare CR in trailer";
					goto fail;
				}
				c->state = HTTP_CHUNK_TRAILER_START;
				break;
			default:    /* HTTP_CHUNK_FINAL_LF */
				if (ch != '\n') {
					why = "bare CR at the end of the body";
					goto fail;
				}
				c->state = HTTP_CHUNK_DONE;
				*consumed = i;
				return HTTP_PARSE_DONE;
			}
			break;
		default:
			why = "invalid chunked decoder state";
			goto fail;
		}
	}
	*consumed = i;
	return HTTP_PARSE_INCOMPLETE;

fail:
	c->state = HTTP_CHUNK_ERROR;
	*consumed = i;
	if (status == 413)
		err_set(e, 413, "%s (limit %zu bytes)", why, max_body);
	else
		err_set(e, status, "invalid chunked body: %s", why);
	return HTTP_PARSE_ERROR;
}

/* ------------------------------------------------------------------ */
/* responses                                                           */
/* ------------------------------------------------------------------ */

const char *
http_status_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

const char *
http_method_name(enum http_method m)
{
	if ((unsigned)m >= HTTP_METHOD_COUNT)
		return "OTHER";
	return http_method_names[m];
}

char *
http_date(char *out, int64_t t)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	time_t tt = (time_t)t;
	struct tm tm;
	char *p = out;
	int y;

	if (gmtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	y = tm.tm_year + 1900;
	if (y < 0 || y > 9999)
		y = 9999;
	/* by hand: strftime's %a and %b follow the locale */
	memcpy(p, days[tm.tm_wday], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	*p++ = (char)('0' + tm.tm_mday / 10);
	*p++ = (char)('0' + tm.tm_mday % 10);
	*p++ = ' ';
	memcpy(p, months[tm.tm_mon], 3);
	p += 3;
	*p++ = ' ';
	*p++ = (char)('0' + y / 1000);
	*p++ = (char)('0' + y / 100 % 10);
	*p++ = (char)('0' + y / 10 % 10);
	*p++ = (char)('0' + y % 10);
	*p++ = ' ';
	*p++ = (char)('0' + tm.tm_hour / 10);
	*p++ = (char)('0' + tm.tm_hour % 10);
	*p++ = ':';
	*p++ = (char)('0' + tm.tm_min / 10);
	*p++ = (char)('0' + tm.tm_min % 10);
	*p++ = ':';
	*p++ = (char)('0' + tm.tm_sec / 10);
	*p++ = (char)('0' + tm.tm_sec % 10);
	memcpy(p, " GMT", 5);
	return out;
}

/* The Date value of this thread, recomputed at most once a second. */
static const char *
http_date_now(void)
{
	static _Thread_local time_t cached_sec = (time_t)-1;
	static _Thread_local char cached[HTTP_DATE_LEN + 1];
	time_t now = time(NULL);

	if (now != cached_sec) {
		http_date(cached, (int64_t)now);
		cached_sec = now;
	}
	return cached;
}

#define http_puts_lit(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

static void
http_put_uint(struct buf *out, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_append(out, tmp + i, sizeof(tmp) - i);
}

/* Append a field value with every control character turned into a space. */
static void
http_put_value(struct buf *out, const char *v)
{
	size_t i, n = strlen(v);
	char *p;

	buf_reserve(out, n);
	p = out->data + out->len;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		p[i] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
	}
	out->len += n;
}

void
http_write_head(struct buf *out, int status, const char *content_type,
    int64_t content_length, bool chunked, bool keep_alive,
    const struct http_header *extra, size_t n_extra)
{
	bool informational = status >= 100 && status < 200;
	bool no_body = status == 204 || status == 304;
	size_t i;

	if (status < 100 || status > 999)
		status = 500;
	buf_reserve(out, 256);
	http_puts_lit(out, "HTTP/1.1 ");
	http_put_uint(out, (uint64_t)status);
	buf_putc(out, ' ');
	buf_puts(out, http_status_reason(status));
	http_puts_lit(out, "\r\n");
	if (!informational) {
		http_puts_lit(out, "Date: ");
		buf_append(out, http_date_now(), HTTP_DATE_LEN);
		http_puts_lit(out, "\r\nServer: ingenious\r\n");
		if (content_type != NULL) {
			http_puts_lit(out, "Content-Type: ");
			http_put_value(out, content_type);
			http_puts_lit(out, "\r\n");
		}
		if (!no_body && content_length >= 0) {
			http_puts_lit(out, "Content-Length: ");
			http_put_uint(out, (uint64_t)content_length);
			http_puts_lit(out, "\r\n");
		} else if (!no_body && chunked) {
			http_puts_lit(out, "Transfer-Encoding: chunked\r\n");
		}
		if (keep_alive)
			http_puts_lit(out, "Connection: keep-alive\r\n");
		else
			http_puts_lit(out, "Connection: close\r\n");
	}
	for (i = 0; i < n_extra; i++) {
		if (extra[i].name == NULL || extra[i].value == NULL)
			continue;
		http_put_value(out, extra[i].name);
		http_puts_lit(out, ": ");
		http_put_value(out, extra[i].value);
		http_puts_lit(out, "\r\n");
	}
	http_puts_lit(out, "\r\n");
}

void
http_write_chunk(struct buf *out, const void *data, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[2 * sizeof(size_t) + 2];
	size_t i = sizeof(tmp) - 2, v = n;

	if (n == 0)
		return;
	tmp[sizeof(tmp) - 2] = '\r';
	tmp[sizeof(tmp) - 1] = '\n';
	do {
		tmp[--i] = hex[v & 0xf];
	} while ((v >>= 4) != 0 && i > 0);
	buf_reserve(out, sizeof(tmp) - i + n + 2);
	buf_append(out, tmp + i, sizeof(tmp) - i);
	buf_append(out, data, n);
	http_puts_lit(out, "\r\n");
}

void
http_write_last_chunk(struct buf *out)
{
	http_puts_lit(out, "0\r\n\r\n");
}

/* ------------------------------------------------------------------ */
/* percent-decoding                                                    */
/* ------------------------------------------------------------------ */

char *
http_percent_decode(struct arena *a, const char *src, size_t n, struct err *e)
{
	char *dst = arena_alloc(a, n + 1), *p = dst;
	size_t i = 0;

	while (i < n) {
		int c;

		if (src[i] == '\0') {
			err_set(e, 400, "invalid percent-encoding: NUL byte");
			return NULL;
		}
		c = hex_percent_octet(src, n, &i);
		if (c < 0) {
			err_set(e, 400, "invalid percent-encoding: malformed escape");
			return NULL;
		}
		if (c == 0) {
			err_set(e, 400, "invalid percent-encoding: encoded NUL");
			return NULL;
		}
		*p++ = (char)c;
	}
	*p = '\0';
	return dst;
}
