/*
 * router.h -- maps a method and a request path to a route of a static table.
 *
 * A route table is a const array the worker defines once:
 *
 *     static const struct router_route routes[] = {
 *         { HTTP_METHOD_POST, "/api/v1/chat", handle_chat, 0, NULL },
 *         { HTTP_METHOD_GET, "/api/v1/conversations/{thread_id}",
 *           handle_conversation, ROUTE_AUTH, NULL },
 *     };
 *
 * A pattern is '/'-separated segments; a segment "{name}" matches exactly one
 * non-empty path segment and captures it, any other segment must equal the
 * path segment (after percent-decoding it).  There is no wildcard and no
 * trailing-slash redirect: "/api/v1/health/" does not match "/api/v1/health"
 * (404).  The first matching route of the table wins, so list literal routes
 * before parameterised ones that overlap them.  HEAD requests match GET
 * routes.  The router is pure: no allocation except the decoded parameters
 * and the Allow text, both in the caller's arena; safe from any thread.
 */
#ifndef INGEN_ROUTER_H
#define INGEN_ROUTER_H

#include <stddef.h>

#include "lib/arena.h"
#include "lib/err.h"
#include "lib/http.h"

/* Parameters a pattern may have. */
#define ROUTER_MAX_PARAMS 8

struct router_route {
	enum http_method method;    /* GET also serves HEAD */
	const char *pattern;        /* "/api/v1/conversations/{thread_id}" */
	void *handler;              /* opaque to the router */
	unsigned flags;             /* opaque to the router (the worker's bits) */
	const char *name;           /* label in metrics and logs; NULL = pattern */
};

struct router_param {
	const char *name;           /* points into the pattern, not terminated */
	size_t name_len;
	char *value;                /* percent-decoded, NUL-terminated, in the arena */
};

struct router_match {
	const struct router_route *route;   /* ROUTER_FOUND: the route */
	const char *label;          /* FOUND: route->name or its pattern */
	size_t n_params;
	struct router_param params[ROUTER_MAX_PARAMS];
	const char *allow;          /* METHOD_NOT_ALLOWED: "GET, HEAD, POST" */
};

enum router_result {
	ROUTER_FOUND = 0,
	ROUTER_NOT_FOUND,           /* no pattern matches the path: 404 */
	ROUTER_METHOD_NOT_ALLOWED,  /* a pattern matches, not for this method: 405 */
	ROUTER_ERROR,               /* a parameter is malformed: e set, 400 */
};

/*
 * Check a table once at startup: every pattern starts with '/', has no empty
 * segment except a lone "/", braces form whole "{name}" segments with a
 * non-empty name, at most ROUTER_MAX_PARAMS parameters, no name twice; a
 * trailing '/' is allowed ("/console/" is a path of its own).
 * Returns 0, or -1 with e set (status 500) naming the bad pattern.
 */
int router_check(const struct router_route *table, size_t n, struct err *e)
    ING_WUR;

/*
 * Match `path` (the raw, still percent-encoded path of the request, without
 * the query) against table[0..n) for method `m`.  On ROUTER_FOUND fills
 * out->route, out->label and the parameters (decoded into `a`; a decoded
 * '/' or NUL, or a malformed escape, in a parameter gives ROUTER_ERROR with
 * e->status 400).  On ROUTER_METHOD_NOT_ALLOWED sets out->allow to the value
 * of the Allow header (methods in enum order, HEAD added where GET is
 * served).  The path "*" (the parser gives it to OPTIONS only) matches no
 * route: ROUTER_METHOD_NOT_ALLOWED with every method of the table in Allow.
 * `out` is always initialised.
 */
enum router_result router_match(const struct router_route *table, size_t n,
    enum http_method m, const char *path, struct arena *a,
    struct router_match *out, struct err *e) ING_WUR;

/* The decoded value of parameter `name` of a match, or NULL. */
const char *router_param(const struct router_match *match, const char *name);

#endif
