/*
 * router.c -- matching a request path against the static route table.
 *
 * It owns the pattern syntax ("/a/{param}/b") and the 404/405 decision.  It
 * never calls a handler, never looks at headers or bodies, and never
 * allocates while it compares: only a matched route's parameters and a 405's
 * Allow text go into the request arena.
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/http.h"
#include "lib/router.h"

/* A captured parameter before decoding: a span of the raw path. */
struct router_span {
	const char *name;
	size_t name_len;
	const char *raw;
	size_t raw_len;
};

static const char *
router_segment_end(const char *s)
{
	while (*s != '\0' && *s != '/')
		s++;
	return s;
}

/*
 * Does the raw path segment raw[0..rn) equal the literal lit[0..ln) once
 * percent-decoded?  Decoded octet by octet, so nothing is allocated; a
 * malformed escape never matches, nor does "%00" (a literal has no NUL).
 */
static bool
router_segment_eq(const char *lit, size_t ln, const char *raw, size_t rn)
{
	size_t i = 0, j = 0;

	if (memchr(raw, '%', rn) == NULL)
		return ln == rn && memcmp(lit, raw, ln) == 0;
	while (j < rn) {
		int c = hex_percent_octet(raw, rn, &j);

		if (c < 0 || i >= ln || (unsigned char)lit[i] != c)
			return false;
		i++;
	}
	return i == ln;
}

/* Match one pattern; on success spans[0..*n_spans) hold the captures. */
static bool
router_match_pattern(const char *pat, const char *path,
    struct router_span *spans, size_t *n_spans)
{
	const char *p = pat, *s = path, *pe, *se;
	size_t np = 0;

	if (*p != '/' || *s != '/')
		return false;
	for (;;) {
		p++;
		s++;
		pe = router_segment_end(p);
		se = router_segment_end(s);
		if (*p == '{') {
			if (se == s || np == ROUTER_MAX_PARAMS)
				return false;
			spans[np].name = p + 1;
			spans[np].name_len = (size_t)(pe - p) - 2;
			spans[np].raw = s;
			spans[np].raw_len = (size_t)(se - s);
			np++;
		} else if (!router_segment_eq(p, (size_t)(pe - p), s,
		    (size_t)(se - s))) {
			return false;
		}
		p = pe;
		s = se;
		if (*p == '\0' || *s == '\0')
			break;
	}
	if (*p != '\0' || *s != '\0')
		return false;
	*n_spans = np;
	return true;
}

/* The bit of route method m in an Allow mask (GET brings HEAD). */
static unsigned
router_allow_bits(enum http_method m)
{
	unsigned bits = 0;

	if ((unsigned)m < HTTP_METHOD_OTHER)
		bits |= 1u << m;
	if (m == HTTP_METHOD_GET)
		bits |= 1u << HTTP_METHOD_HEAD;
	return bits;
}

static bool
router_method_ok(enum http_method route_m, enum http_method m)
{
	if (m == HTTP_METHOD_OTHER)
		return false;
	return route_m == m || (m == HTTP_METHOD_HEAD &&
	    route_m == HTTP_METHOD_GET);
}

int
router_check(const struct router_route *table, size_t n, struct err *e)
{
	size_t r;

	for (r = 0; r < n; r++) {
		const char *pat = table[r].pattern, *p, *pe;
		struct router_span names[ROUTER_MAX_PARAMS];
		size_t np = 0, k;

		if (pat == NULL || pat[0] != '/')
			return err_set(e, 500, "invalid route %zu: pattern must "
			    "start with '/'", r);
		if ((unsigned)table[r].method >= HTTP_METHOD_OTHER)
			return err_set(e, 500, "invalid route \"%s\": bad method",
			    pat);
		if (strcmp(pat, "/") == 0)
			continue;
		for (p = pat + 1;; p = pe + 1) {
			pe = router_segment_end(p);
			/* only a trailing '/' ("/console/") ends in an empty one */
			if (pe == p && *pe == '\0')
				break;
			if (pe == p)
				return err_set(e, 500, "invalid route \"%s\": "
				    "empty segment", pat);
			if (*p == '{') {
				if (pe - p < 3 || pe[-1] != '}' ||
				    memchr(p + 1, '{', (size_t)(pe - p) - 1) ||
				    memchr(p + 1, '}', (size_t)(pe - p) - 2))
					return err_set(e, 500, "invalid route "
					    "\"%s\": bad parameter segment", pat);
				if (np == ROUTER_MAX_PARAMS)
					return err_set(e, 500, "invalid route "
					    "\"%s\": more than %d parameters", pat,
					    ROUTER_MAX_PARAMS);
				names[np].name = p + 1;
				names[np].name_len = (size_t)(pe - p) - 2;
				for (k = 0; k < np; k++)
					if (names[k].name_len == names[np].name_len &&
					    memcmp(names[k].name, names[np].name,
					    names[np].name_len) == 0)
						return err_set(e, 500, "invalid "
						    "route \"%s\": parameter named "
						    "twice", pat);
				np++;
			} else if (memchr(p, '{', (size_t)(pe - p)) ||
			    memchr(p, '}', (size_t)(pe - p))) {
				return err_set(e, 500, "invalid route \"%s\": "
				    "braces inside a segment", pat);
			}
			if (*pe == '\0')
				break;
		}
	}
	return 0;
}

/* "GET, HEAD, POST" for the methods in `mask`. */
static const char *
router_allow_text(struct arena *a, unsigned mask)
{
	char tmp[96];
	size_t len = 0;
	int m;

	tmp[0] = '\0';
	for (m = 0; m < HTTP_METHOD_OTHER; m++) {
		const char *name;
		size_t nl;

		if (!(mask & (1u << m)))
			continue;
		name = http_method_name((enum http_method)m);
		nl = strlen(name);
		if (len + nl + 3 > sizeof(tmp))
			break;
		if (len > 0) {
			memcpy(tmp + len, ", ", 2);
			len += 2;
		}
		memcpy(tmp + len, name, nl);
		len += nl;
	}
	return arena_strndup(a, tmp, len);
}

enum router_result
router_match(const struct router_route *table, size_t n, enum http_method m,
    const char *path, struct arena *a, struct router_match *out,
    struct err *e)
{
	struct router_span spans[ROUTER_MAX_PARAMS];
	size_t r, np, k;
	unsigned allow = 0;

	memset(out, 0, sizeof(*out));
	if (strcmp(path, "*") == 0) {
		/* OPTIONS * (RFC 9112 3.2.4) asks about the server as a whole */
		for (r = 0; r < n; r++)
			allow |= router_allow_bits(table[r].method);
		if (allow == 0)
			return ROUTER_NOT_FOUND;
		out->allow = router_allow_text(a, allow);
		return ROUTER_METHOD_NOT_ALLOWED;
	}
	for (r = 0; r < n; r++) {
		const struct router_route *rt = &table[r];

		if (!router_match_pattern(rt->pattern, path, spans, &np))
			continue;
		if (!router_method_ok(rt->method, m)) {
			allow |= router_allow_bits(rt->method);
			continue;
		}
		out->route = rt;
		out->label = rt->name ? rt->name : rt->pattern;
		for (k = 0; k < np; k++) {
			struct router_param *prm = &out->params[k];

			prm->name = spans[k].name;
			prm->name_len = spans[k].name_len;
			prm->value = http_percent_decode(a, spans[k].raw,
			    spans[k].raw_len, e);
			if (prm->value == NULL) {
				err_prefix(e, "invalid path parameter \"%.*s\"",
				    (int)prm->name_len, prm->name);
				return ROUTER_ERROR;
			}
			if (strchr(prm->value, '/') != NULL) {
				err_set(e, 400, "invalid path parameter \"%.*s\": "
				    "encoded '/' not allowed", (int)prm->name_len,
				    prm->name);
				return ROUTER_ERROR;
			}
		}
		out->n_params = np;
		return ROUTER_FOUND;
	}
	if (allow != 0) {
		out->allow = router_allow_text(a, allow);
		return ROUTER_METHOD_NOT_ALLOWED;
	}
	return ROUTER_NOT_FOUND;
}

const char *
router_param(const struct router_match *match, const char *name)
{
	size_t k, nl = strlen(name);

	for (k = 0; k < match->n_params; k++)
		if (match->params[k].name_len == nl &&
		    memcmp(match->params[k].name, name, nl) == 0)
			return match->params[k].value;
	return NULL;
}
