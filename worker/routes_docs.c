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

/* the routes of this file: the request's path, the file served, its type */
static const struct {
	const char *path, *name, *type;
} docs_files[] = {
	{ "/openapi.json", "openapi.json", "application/json" },
	{ "/docs", "docs.html", "text/html; charset=utf-8" },
	{ "/docs/docs.js", "docs.js", "text/javascript; charset=utf-8" },
	{ "/docs/docs.css", "docs.css", "text/css; charset=utf-8" },
};

void
routes_docs(struct http_exchange *x)
{
	const struct static_file *f = NULL;
	const char *type = NULL;
	size_t i;

	for (i = 0; i < sizeof(docs_files) / sizeof(docs_files[0]); i++)
		if (strcmp(x->req.path, docs_files[i].path) == 0) {
			f = static_find(docs_files[i].name);
			type = docs_files[i].type;
		}
	if (!x->cfg->server.api_docs || f == NULL) {
		xchg_detail(x, 404, "Not Found");
		return;
	}
	xchg_header(x, "Content-Security-Policy", DOCS_CSP);
	xchg_header(x, "X-Content-Type-Options", "nosniff");
	xchg_header(x, "Cache-Control", "no-cache");
	xchg_reply(x, 200, type, (const char *)f->data, f->len);
}
