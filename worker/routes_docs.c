/*
 * routes_docs.c -- GET /openapi.json (docs/openapi.json, compiled in: the
 * one document of the API, checked against the route table by
 * tests/e2e/test_openapi.py) and GET /docs with its script and style, a
 * page of our own that renders it (worker/static/).  Behind the same
 * authentication rule as the other non-health routes; server.api_docs =
 * false answers 404 on all of them.  Flow-thread handlers.
 */
#include "autoconfig.h"

#include <string.h>

#include "lib/config.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/static.h"

/* this server only; no inline script or style */
#define DOCS_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
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

static void
docs_serve(struct http_exchange *x, const char *name, const char *type)
{
	const struct static_file *f = static_find(name);

	if (!x->cfg->server.api_docs || f == NULL) {
		xchg_detail(x, 404, "Not Found");
		return;
	}
	xchg_header(x, "Content-Security-Policy", DOCS_CSP);
	xchg_header(x, "X-Content-Type-Options", "nosniff");
	xchg_header(x, "Cache-Control", "no-cache");
	xchg_reply(x, 200, type, (const char *)f->data, f->len);
}

void
routes_openapi(struct http_exchange *x)
{
	docs_serve(x, "openapi.json", "application/json");
}

void
routes_docs(struct http_exchange *x)
{
	docs_serve(x, "docs.html", "text/html; charset=utf-8");
}

void
routes_docs_js(struct http_exchange *x)
{
	docs_serve(x, "docs.js", "text/javascript; charset=utf-8");
}

void
routes_docs_css(struct http_exchange *x)
{
	docs_serve(x, "docs.css", "text/css; charset=utf-8");
}
