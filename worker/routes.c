/*
 * routes.c -- the route table of the server: which handler serves which
 * method and path, and whether it may run on the event loop; and the one
 * reading of a JSON request body that every handler taking JSON uses (so a
 * bad body gets the same status on every route).  Handlers live in
 * routes_*.c.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/db.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/scoreboard.h"
#include "lib/router.h"
#include "worker/routes.h"

static const struct router_route routes_table[] = {
	{ HTTP_METHOD_GET, "/api/v1/health", (void *)routes_health, ROUTE_INLINE | ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/api/v1/ready", (void *)routes_ready, ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/metrics", (void *)routes_metrics, ROUTE_INLINE | ROUTE_PUBLIC | ROUTE_METRICS_AUTH, NULL },
	{ HTTP_METHOD_POST, "/api/v1/chat", (void *)routes_chat, ROUTE_TURN, NULL },
	{ HTTP_METHOD_POST, "/api/v1/chat/stream", (void *)routes_chat_stream, ROUTE_TURN, NULL },
	{ HTTP_METHOD_GET, "/api/v1/conversations", (void *)routes_conversations, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/conversations/{thread_id}", (void *)routes_conversation, 0, NULL },
	{ HTTP_METHOD_PUT, "/api/v1/messages/{message_id}/feedback", (void *)routes_feedback, 0, NULL },
	{ HTTP_METHOD_POST, "/api/v1/auth/login", (void *)routes_auth_login, ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_POST, "/api/v1/auth/refresh", (void *)routes_auth_refresh, ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/api/v1/auth/verify", (void *)routes_auth_verify, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/workflows", (void *)routes_workflows, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/workflow-status/{name}", (void *)routes_workflow_status, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/revisions/list", (void *)routes_prompts_revisions, 0, NULL },
	{ HTTP_METHOD_POST, "/api/v1/revisions/create", (void *)routes_prompts_create, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/workflows/list", (void *)routes_prompts_workflows, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/prompts/list/{revision_id}", (void *)routes_prompts_list, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/prompts/view/{revision_id}/{filename}", (void *)routes_prompts_view, 0, NULL },
	{ HTTP_METHOD_POST, "/api/v1/prompts/update/{revision_id}/{filename}", (void *)routes_prompts_update, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/prompts/versions/{revision_id}/{filename}", (void *)routes_prompts_versions, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/prompts/usage/{revision_id}/{filename}", (void *)routes_prompts_usage, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/usage", (void *)routes_usage, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/diagnostic", (void *)routes_diagnostic, 0, NULL },
	{ HTTP_METHOD_OPTIONS, "/api/v1/diagnostic", (void *)routes_diagnostic_options, 0, NULL },
	{ HTTP_METHOD_GET, "/openapi.json", (void *)routes_static, 0, NULL },
	{ HTTP_METHOD_GET, "/docs", (void *)routes_static, 0, NULL },
	{ HTTP_METHOD_GET, "/docs/docs.js", (void *)routes_static, 0, NULL },
	{ HTTP_METHOD_GET, "/docs/docs.css", (void *)routes_static, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/admin/reload", (void *)routes_admin_reload_status, 0, NULL },
	{ HTTP_METHOD_POST, "/api/v1/admin/reload", (void *)routes_admin_reload, 0, NULL },
	{ HTTP_METHOD_GET, "/console", (void *)routes_static, ROUTE_INLINE | ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/console/", (void *)routes_static, ROUTE_INLINE | ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/console/console.js", (void *)routes_static, ROUTE_INLINE | ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/console/console.css", (void *)routes_static, ROUTE_INLINE | ROUTE_PUBLIC, NULL },
	{ HTTP_METHOD_GET, "/console/favicon.svg", (void *)routes_static, ROUTE_INLINE | ROUTE_PUBLIC, NULL },
};

#define ROUTES_N (sizeof(routes_table) / sizeof(routes_table[0]))

_Static_assert(ROUTES_N < SB_MAX_ROUTES, "scoreboard has too few route slots");

enum routes_result
routes_lookup(struct http_exchange *x, xchg_handler *handler, unsigned *flags,
    const char **allow, struct err *e)
{
	struct router_match m;
	size_t i;

	switch (router_match(routes_table, ROUTES_N, x->req.method, x->req.path,
	    x->arena, &m, e)) {
	case ROUTER_FOUND:
		break;
	case ROUTER_NOT_FOUND:
		return ROUTES_NOT_FOUND;
	case ROUTER_METHOD_NOT_ALLOWED:
		*allow = m.allow;
		return ROUTES_METHOD_NOT_ALLOWED;
	case ROUTER_ERROR:
	default:
		return ROUTES_BAD_PATH;
	}
	x->route = (int)(m.route - routes_table) + 1;
	x->route_name = m.label;
	x->n_params = 0;
	for (i = 0; i < m.n_params && i < XCHG_MAX_PARAMS; i++) {
		x->param_names[i] = arena_strndup(x->arena, m.params[i].name,
		    m.params[i].name_len);
		x->param_values[i] = m.params[i].value;
		x->n_params++;
	}
	*handler = (xchg_handler)m.route->handler;
	*flags = m.route->flags;
	/* metrics_require_auth: the route goes through the gate, on the pool */
	if ((*flags & ROUTE_METRICS_AUTH) && x->cfg->web.authentication.enable &&
	    x->cfg->web.authentication.metrics_require_auth)
		*flags &= ~(ROUTE_INLINE | ROUTE_PUBLIC);
	return ROUTES_FOUND;
}

int
routes_check(struct err *e)
{
	return router_check(routes_table, ROUTES_N, e);
}

int
routes_count(void)
{
	return (int)ROUTES_N;
}

const char *
routes_name(int i)
{
	if (i <= 0 || i > (int)ROUTES_N)
		return "unmatched";
	return routes_table[i - 1].name ? routes_table[i - 1].name :
	    routes_table[i - 1].pattern;
}

bool
routes_read_json_object(struct http_exchange *x, const char *syntax_msg,
    const char *syntax_hint, const char *hint, const cJSON **root)
{
	cJSON *j;
	struct err e;

	*root = NULL;
	err_clear(&e);
	switch (json_read(x->arena, x->body, x->body_len,
	    x->cfg->server.max_json_depth, &j, &e)) {
	case JSON_OK:
		break;
	case JSON_ERROR_ENCODING:
	case JSON_ERROR_DEPTH:
		/* bytes that are not text are a 400 (docs/reliability.md H2) */
		xchg_error(x, 400, e.msg);
		return false;
	case JSON_ERROR_SYNTAX:
	default:
		/* text that is not JSON: the reference's validation error */
		xchg_validation_error(x, syntax_msg != NULL ? syntax_msg :
		    ROUTES_MSG_INVALID_FORMAT, syntax_hint);
		return false;
	}
	if (!cJSON_IsObject(j)) {
		xchg_validation_error(x, ROUTES_MSG_INVALID_FORMAT, hint);
		return false;
	}
	*root = j;
	return true;
}

const char ROUTES_QUERY_BAD[] = "";

const char *
routes_query(struct http_exchange *x, const char *name)
{
	const char *p = x->req.query;
	size_t nl = strlen(name);
	struct err e;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len >= nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			char *v = http_percent_decode(x->arena, p + nl + 1, len - nl - 1, &e);

			return v != NULL ? v : ROUTES_QUERY_BAD;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

bool
routes_is_admin(const struct http_exchange *x)
{
	const char *admin = x->cfg->web.authentication.username;

	if (!x->cfg->web.authentication.enable)
		return true;
	return x->user != NULL && admin != NULL && strcmp(x->user, admin) == 0;
}

bool
routes_query_int(struct http_exchange *x, const char *name, long min, long max,
    long def, long *out)
{
	const char *s = routes_query(x, name);
	char msg[160], *end;
	long v;

	*out = def;
	if (s == NULL)
		return true;
	v = strtol(s, &end, 10);
	if (s == ROUTES_QUERY_BAD || *s == '\0' || *end != '\0' || v < min || v > max) {
		snprintf(msg, sizeof(msg), "%s must be an integer from %ld to %ld", name,
		    min, max);
		xchg_detail(x, 400, msg);
		return false;
	}
	*out = v;
	return true;
}

bool
routes_query_user(struct http_exchange *x, const char *forbidden, const char **user)
{
	const char *u = routes_query(x, "user_id");
	char msg[160];

	if (u != NULL && (u == ROUTES_QUERY_BAD || u[0] == '\0' ||
	    strlen(u) > DB_OWNER_MAX)) {
		snprintf(msg, sizeof(msg), "user_id must be 1 to %d characters, "
		    "percent-encoded", DB_OWNER_MAX);
		xchg_detail(x, 400, msg);
		return false;
	}
	/* another user than the administrator reads their own only */
	if (!routes_is_admin(x) && x->user != NULL) {
		if (u != NULL && strcmp(u, x->user) != 0) {
			xchg_detail(x, 403, forbidden);
			return false;
		}
		u = x->user;
	}
	*user = u;
	return true;
}
