/*
 * routes_docs.c -- the static files the server serves, compiled in
 * (worker/static.h): GET /openapi.json (docs/openapi.json, the one document
 * of the API, checked against the route table by tests/e2e/test_openapi.py)
 * and GET /docs with its script and style, a page of our own that renders
 * it; and the web console under /console (worker/static/console/,
 * docs/console.md).  One table says which file each path serves, of what
 * type, under which switch: server.api_docs = false answers 404 on the
 * first, server.console = false on the second.  The document and /docs are
 * behind the authentication of the other non-health routes (flow-thread
 * handler); the console's files hold no data and are public and inline
 * (worker/routes.c), its API calls carrying their token.
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <string.h>

#include "lib/config.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/static.h"

/* this server only; no inline script or style, no frame, no form post */
#define STATIC_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

const struct static_file *
static_find(const char *name)
{
	size_t i;

	for (i = 0; i < static_n_files; i++)
		if (strcmp(static_files[i].name, name) == 0)
			return &static_files[i];
	return NULL;
}

enum static_switch { STATIC_API_DOCS, STATIC_CONSOLE };

/* the request's path, the file served, its type, the key that turns it off */
static const struct {
	const char *path, *name, *type;
	enum static_switch sw;
} static_routes[] = {
	{ "/openapi.json", "openapi.json", "application/json", STATIC_API_DOCS },
	{ "/docs", "docs.html", "text/html; charset=utf-8", STATIC_API_DOCS },
	{ "/docs/docs.js", "docs.js", "text/javascript; charset=utf-8", STATIC_API_DOCS },
	{ "/docs/docs.css", "docs.css", "text/css; charset=utf-8", STATIC_API_DOCS },
	{ "/console", "console.html", "text/html; charset=utf-8", STATIC_CONSOLE },
	{ "/console/", "console.html", "text/html; charset=utf-8", STATIC_CONSOLE },
	{ "/console/console.js", "console.js", "text/javascript; charset=utf-8", STATIC_CONSOLE },
	{ "/console/console.css", "console.css", "text/css; charset=utf-8", STATIC_CONSOLE },
	{ "/console/favicon.svg", "favicon.svg", "image/svg+xml", STATIC_CONSOLE },
};

void
routes_static(struct http_exchange *x)
{
	const struct static_file *f = NULL;
	const char *type = NULL;
	bool on = false;
	size_t i;

	for (i = 0; i < sizeof(static_routes) / sizeof(static_routes[0]); i++)
		if (strcmp(x->req.path, static_routes[i].path) == 0) {
			f = static_find(static_routes[i].name);
			type = static_routes[i].type;
			on = static_routes[i].sw == STATIC_CONSOLE ?
			    x->cfg->server.console : x->cfg->server.api_docs;
		}
	if (!on || f == NULL) {
		xchg_detail(x, 404, "Not Found");
		return;
	}
	xchg_header(x, "Content-Security-Policy", STATIC_CSP);
	xchg_header(x, "X-Content-Type-Options", "nosniff");
	xchg_header(x, "X-Frame-Options", "DENY");
	xchg_header(x, "Referrer-Policy", "no-referrer");
	xchg_header(x, "Cache-Control", "no-cache");
	xchg_reply(x, 200, type, (const char *)f->data, f->len);
}
