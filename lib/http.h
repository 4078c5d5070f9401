/*
 * http.h -- the HTTP/1.1 request parser and response writer (RFC 9112).
 *
 * Pure code: no sockets, no threads, no clock.  The event loop feeds it the
 * bytes it has buffered; the parser says "need more", "here is a request
 * head, n bytes consumed", or "reject with this status and close".  It is
 * strict per RELIABILITY H1/H2: every framing ambiguity is an error, never a
 * guess (no request smuggling).  Used by the worker and by the Azure simulator.
 */
#ifndef INGEN_HTTP_H
#define INGEN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"

enum http_method {
	HTTP_METHOD_GET = 0,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_PUT,
	HTTP_METHOD_DELETE,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_PATCH,
	HTTP_METHOD_OTHER,       /* a valid token we do not implement */
	HTTP_METHOD_COUNT
};

enum http_parse_result {
	HTTP_PARSE_INCOMPLETE = 0,  /* need more bytes */
	HTTP_PARSE_DONE,            /* complete; see *consumed */
	HTTP_PARSE_ERROR,           /* err->status says which (400, 413, 414, 417,
	                               431, 501, 505) */
};

struct http_limits {
	size_t max_request_line;    /* 414 above (default 8 KiB) */
	size_t max_header_size;     /* whole header section, 431 above (16 KiB) */
	size_t max_headers;         /* fields, 431 above (100) */
	size_t max_chunk_ext;       /* chunk extension bytes, 400 above (1 KiB) */
	size_t max_trailer_size;    /* trailer section of a chunked body (16 KiB) */
};

#define HTTP_DEFAULT_MAX_REQUEST_LINE  8192
#define HTTP_DEFAULT_MAX_HEADER_SIZE   16384
#define HTTP_DEFAULT_MAX_HEADERS       100
#define HTTP_DEFAULT_MAX_CHUNK_EXT     1024
#define HTTP_DEFAULT_MAX_TRAILER_SIZE  16384

/* Fill `lim` with the defaults above (RELIABILITY H2). */
void http_limits_init(struct http_limits *lim);

struct http_header {
	char *name;                 /* as received; compare case-insensitively */
	char *value;                /* leading/trailing OWS stripped */
	size_t name_len;            /* set by the parser; writers may leave 0 */
	size_t value_len;           /* set by the parser; writers may leave 0 */
};

struct http_request {
	enum http_method method;
	char *method_name;          /* as received */
	char *target;               /* raw request-target, as received */
	char *path;                 /* its path, still percent-encoded: "/..."
	                               ("/" for an absolute-form without
	                               one), or "*" (OPTIONS) */
	char *query;                /* after '?', or NULL */
	char *host;                 /* the authority asked for: the absolute-
	                               form's, else the Host field's value;
	                               NULL without either (HTTP/1.0) */
	int version_minor;          /* HTTP/1.<minor>: 0 or 1 */
	struct http_header *headers;
	size_t n_headers;
	int64_t content_length;     /* -1 when absent */
	bool chunked;               /* Transfer-Encoding: chunked */
	bool keep_alive;            /* after Connection and version rules */
	bool expect_continue;       /* Expect: 100-continue */
};

/*
 * Scanner state kept between calls so a byte-by-byte client costs O(n): each
 * byte is looked at once by the scanner, and the fields are parsed once, when
 * the CRLF CRLF terminator has arrived.  Offsets are relative to `data`.
 */
struct http_head_state {
	size_t scanned;             /* bytes already checked for the terminator */
	size_t line_start;          /* start of the line being scanned */
	size_t head_start;          /* start of the request line (after empty lines) */
	size_t fields_start;        /* start of the field section (0: not reached) */
	size_t n_fields;            /* complete field lines seen */
	unsigned n_empty;           /* empty lines skipped before the request line */
	bool in_request_line;
};

/* Reset `st` for a new request (http_parse_head also does it on DONE). */
void http_head_state_init(struct http_head_state *st);

/*
 * Parse a request head from data[0..len).  On HTTP_PARSE_DONE fills `req`
 * (all strings copied into `a`) and sets *consumed to the head's length
 * including the final CRLF CRLF.  On HTTP_PARSE_ERROR sets err->status and a
 * message safe to show a client; the connection must then be closed without
 * reading further.  Call again with the same state and a longer buffer after
 * HTTP_PARSE_INCOMPLETE (data must start at the same request).  After
 * DONE the state is reset, so the next call may pass the bytes that follow
 * the head (a pipelined request).  Up to 4 empty lines before the request
 * line are skipped (RFC 9112 2.2) and counted in *consumed.  Limits: request
 * line over max_request_line is 414 (detected before its CRLF arrives); field
 * section (after the request line, final empty line included) over
 * max_header_size, or more than max_headers fields, is 431; detected early.
 * `lim` NULL means the defaults.  Thread-safe on distinct states.
 *
 * The request-target (RFC 9112 3.2) is origin-form ("/p?q") or, for any
 * method, absolute-form ("http://h:8000/p?q", http or https in any case, no
 * userinfo, a non-empty host): its path and query are req->path and query,
 * and its authority replaces the Host field's value (RFC 9112 3.2.2; a
 * Host field is added when an HTTP/1.0 request had none).  "*" is accepted
 * for OPTIONS only; an authority-form target ("h:443") is CONNECT's, which
 * is 501, any other form 400.  Host (RFC 9112 3.2): 400 when an HTTP/1.1
 * request has none, when there are several, and when one is not uri-host
 * [ ":" port ] (a reg-name, IPv4 address or bracketed IP literal, port
 * digits; an empty value is valid).
 */
enum http_parse_result http_parse_head(struct http_head_state *st,
    const char *data, size_t len, const struct http_limits *lim,
    struct arena *a, struct http_request *req, size_t *consumed,
    struct err *e) ING_WUR;

/* State of a chunked body decoder. */
struct http_chunked {
	int state;                  /* private */
	uint64_t remaining;         /* bytes left in the current chunk */
	uint64_t decoded;           /* payload bytes produced so far */
	size_t ext_len;
	size_t trailer_len;
	size_t line_len;
};

void http_chunked_init(struct http_chunked *c);

/*
 * Decode chunked framing from in[0..len), appending payload to `out`.  Sets
 * *consumed to the bytes used.  Returns DONE after the last chunk and its
 * trailers, INCOMPLETE when it needs more, ERROR (400) on bad framing.
 * `max_body` bounds the decoded size (413 above, decided from the chunk size
 * before its data is read).  The decoder keeps no pointer into `in`: after
 * INCOMPLETE every byte was consumed, the caller drops them and calls again
 * with what arrives next.  After DONE, bytes past *consumed belong to the
 * next request.  Chunk sizes over 2^63 - 1, empty or non-hex sizes, chunk
 * extensions that are not *( BWS ";" BWS token [ BWS "=" BWS ( token /
 * quoted-string ) ] ) (RFC 9112 7.1.1: "5;" and "5;a=" are 400) or longer
 * than max_chunk_ext bytes, a missing CRLF after data, and malformed or
 * oversized (max_trailer_size) trailers are 400.  Extensions and trailers
 * are discarded.
 * `lim` NULL means the defaults.
 */
enum http_parse_result http_chunked_decode(struct http_chunked *c,
    const char *in, size_t len, struct buf *out, size_t max_body,
    const struct http_limits *lim, size_t *consumed, struct err *e) ING_WUR;

/* Case-insensitive lookup (ASCII, no allocation); the first value of
 * `name`, or NULL. */
const char *http_header_get(const struct http_request *req, const char *name);
/* Number of fields named `name` (to reject duplicates, e.g. Authorization). */
size_t http_header_count(const struct http_request *req, const char *name);

/* "OK", "Not Found", ...; "Unknown" for codes we never send. */
const char *http_status_reason(int status);
const char *http_method_name(enum http_method m);

/*
 * Append a status line and headers to `out`: Date, Server, Content-Type (if
 * not NULL), Content-Length (if >= 0) or Transfer-Encoding: chunked (if
 * content_length == -1 and `chunked`), Connection: keep-alive/close, then the
 * `extra` fields, then the blank line.  The caller appends the body.
 * A 1xx status gets the status line, the `extra` fields and the blank line
 * only; 204 and 304 never get Content-Length or Transfer-Encoding.  Control
 * characters (CR, LF, NUL ...) in `extra` values are written as spaces so a
 * value can never split the response.  The Date is cached per thread and
 * second.  Safe from any thread.
 */
void http_write_head(struct buf *out, int status, const char *content_type,
    int64_t content_length, bool chunked, bool keep_alive,
    const struct http_header *extra, size_t n_extra);

/* Append one chunk of a chunked body ("%zx\r\n<data>\r\n"); n = 0 is ignored. */
void http_write_chunk(struct buf *out, const void *data, size_t n);
/* Append the last chunk "0\r\n\r\n". */
void http_write_last_chunk(struct buf *out);

#define HTTP_DATE_LEN 29   /* strlen("Sun, 06 Nov 1994 08:49:37 GMT") */

/* Write `t` as an IMF-fixdate into out[HTTP_DATE_LEN + 1]; returns out. */
char *http_date(char *out, int64_t t);

/*
 * Percent-decode src[0..n) into a new arena string (hex_percent_octet per
 * octet).  Rejects (returns NULL and sets e, 400) malformed escapes and any
 * NUL, raw or "%00".  '+' is kept.
 * The result is NUL-terminated; its length is at most n.
 */
char *http_percent_decode(struct arena *a, const char *src, size_t n,
    struct err *e) ING_WUR;

#endif
