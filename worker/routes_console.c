/*
 * routes_console.c -- the web console (GET /console/ and its script and
 * style, worker/static/console/): a page of our own with no build step
 * and no outside request, that logs in with /api/v1/auth/login, keeps the
 * token in memory and drives the API's own routes.  The files hold no data,
 * so they are served without credentials (a browser cannot send a bearer
 * token when it opens a page); every API call the page makes is behind the
 * authentication of the other routes.  server.console = false answers 404.
 * Event-loop handler (ROUTE_INLINE): it only reads compiled-in memory.
 */
#include "autoconfig.h"

#include <string.h>

#include "lib/config.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/static.h"

/* this server only; no inline script or style, no frame, no form post */
#define CONSOLE_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; " \
	"frame-ancestors 'none'"

/* the routes of this file: the request's path, the file served, its type */
static const struct {
	const char *path, *name, *type;
} console_files[] = {
	{ "/console", "console.html", "text/html; charset=utf-8" },
	{ "/console/", "console.html", "text/html; charset=utf-8" },
	{ "/console/console.js", "console.js", "text/javascript; charset=utf-8" },
	{ "/console/console.css", "console.css", "text/css; charset=utf-8" },
	{ "/console/favicon.svg", "favicon.svg", "image/svg+xml" },
};

void
routes_console(struct http_exchange *x)
{
	const struct static_file *f = NULL;
	const char *type = NULL;
	size_t i;

	for (i = 0; i < sizeof(console_files) / sizeof(console_files[0]); i++)
		if (strcmp(x->req.path, console_files[i].path) == 0) {
			f = static_find(console_files[i].name);
			type = console_files[i].type;
		}
	if (!x->cfg->server.console || f == NULL) {
		xchg_detail(x, 404, "Not Found");
		return;
	}
	xchg_header(x, "Content-Security-Policy", CONSOLE_CSP);
	xchg_header(x, "X-Content-Type-Options", "nosniff");
	xchg_header(x, "X-Frame-Options", "DENY");
	xchg_header(x, "Referrer-Policy", "no-referrer");
	xchg_header(x, "Cache-Control", "no-cache");
	xchg_reply(x, 200, type, (const char *)f->data, f->len);
}
