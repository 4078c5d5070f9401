/*
 * test_router.c -- unit tests of lib/router.c: parameters, 404, 405 with
 * Allow, HEAD served by GET routes, percent-encoded paths and bad escapes,
 * and the table check.  The handlers are plain markers: the router never
 * calls them.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/err.h"
#include "tests/unit/tap.h"
#include "lib/http.h"
#include "lib/router.h"

static int h_health, h_conv, h_feedback, h_chat, h_chat_stream, h_view,
    h_update, h_list, h_root, h_wf_list, h_wf_status;

static const struct router_route routes[] = {
	{ HTTP_METHOD_GET, "/", &h_root, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/health", &h_health, 1, NULL },
	{ HTTP_METHOD_POST, "/api/v1/chat", &h_chat, 2, NULL },
	{ HTTP_METHOD_POST, "/api/v1/chat/stream", &h_chat_stream, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/conversations/{thread_id}", &h_conv, 0,
	    "/api/v1/conversations/{thread_id}" },
	{ HTTP_METHOD_PUT, "/api/v1/messages/{message_id}/feedback",
	    &h_feedback, 0, "feedback" },
	{ HTTP_METHOD_GET, "/api/v1/prompts/view/{revision_id}/{filename}",
	    &h_view, 0, NULL },
	{ HTTP_METHOD_POST, "/api/v1/prompts/update/{revision_id}/{filename}",
	    &h_update, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/prompts/list/{revision_id}", &h_list, 0,
	    NULL },
	{ HTTP_METHOD_DELETE, "/api/v1/prompts/list/{revision_id}", &h_list, 0,
	    NULL },
	{ HTTP_METHOD_GET, "/api/v1/workflows/list", &h_wf_list, 0, NULL },
	{ HTTP_METHOD_GET, "/api/v1/workflows/{name}", &h_wf_status, 0, NULL },
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static enum router_result
match(struct arena *a, enum http_method m, const char *path,
    struct router_match *out, struct err *e)
{
	err_clear(e);
	return router_match(routes, N_ROUTES, m, path, a, out, e);
}

static void
test_found(struct arena *a)
{
	struct router_match mt;
	struct err e;

	ok(match(a, HTTP_METHOD_GET, "/api/v1/health", &mt, &e) == ROUTER_FOUND &&
	    mt.route->handler == &h_health && mt.route->flags == 1,
	    "literal route found, flags kept");
	is_str(mt.label, "/api/v1/health", "label defaults to the pattern");
	is_int(mt.n_params, 0, "no parameters");
	ok(match(a, HTTP_METHOD_GET, "/", &mt, &e) == ROUTER_FOUND &&
	    mt.route->handler == &h_root, "root route");
	ok(match(a, HTTP_METHOD_POST, "/api/v1/chat/stream", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_chat_stream,
	    "longer literal route is its own route");

	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/abc-123", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_conv, "parameter route");
	is_str(router_param(&mt, "thread_id"), "abc-123", "parameter value");
	ok(router_param(&mt, "thread") == NULL, "unknown parameter is NULL");
	is_str(mt.label, "/api/v1/conversations/{thread_id}", "metrics label");

	ok(match(a, HTTP_METHOD_PUT, "/api/v1/messages/m1/feedback", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_feedback,
	    "parameter in the middle");
	is_str(router_param(&mt, "message_id"), "m1", "middle parameter");
	is_str(mt.label, "feedback", "explicit name is the label");

	ok(match(a, HTTP_METHOD_GET, "/api/v1/prompts/view/r1/a.jinja", &mt,
	    &e) == ROUTER_FOUND && mt.n_params == 2, "two parameters");
	is_str(router_param(&mt, "revision_id"), "r1", "first of two");
	is_str(router_param(&mt, "filename"), "a.jinja", "second of two");

	ok(match(a, HTTP_METHOD_GET, "/api/v1/workflows/list", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_wf_list,
	    "first match wins: literal listed before the parameter");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/workflows/bike-insights", &mt,
	    &e) == ROUTER_FOUND && mt.route->handler == &h_wf_status,
	    "parameter route after the literal");

	ok(match(a, HTTP_METHOD_HEAD, "/api/v1/health", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_health,
	    "HEAD is served by the GET route");
}

static void
test_not_found(struct arena *a)
{
	struct router_match mt;
	struct err e;

	ok(match(a, HTTP_METHOD_GET, "/api/v1/nope", &mt, &e) ==
	    ROUTER_NOT_FOUND, "unknown path is 404");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/health/", &mt, &e) ==
	    ROUTER_NOT_FOUND, "trailing slash is 404, no redirect");
	ok(match(a, HTTP_METHOD_GET, "/api/v1//health", &mt, &e) ==
	    ROUTER_NOT_FOUND, "empty segment is 404");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/", &mt, &e) ==
	    ROUTER_NOT_FOUND, "empty parameter segment is 404");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a/b", &mt, &e) ==
	    ROUTER_NOT_FOUND, "a parameter is one segment only");
	ok(match(a, HTTP_METHOD_GET, "/api/v1", &mt, &e) == ROUTER_NOT_FOUND,
	    "prefix of a route is 404");
	ok(match(a, HTTP_METHOD_GET, "/API/v1/health", &mt, &e) ==
	    ROUTER_NOT_FOUND, "paths are case-sensitive");
	ok(match(a, HTTP_METHOD_GET, "", &mt, &e) == ROUTER_NOT_FOUND,
	    "empty path is 404");
	ok(match(a, HTTP_METHOD_GET, "api/v1/health", &mt, &e) ==
	    ROUTER_NOT_FOUND, "path without leading '/' is 404");
	ok(match(a, HTTP_METHOD_GET, "//", &mt, &e) == ROUTER_NOT_FOUND,
	    "\"//\" is not the root");
}

static void
test_method_not_allowed(struct arena *a)
{
	struct router_match mt;
	struct err e;

	ok(match(a, HTTP_METHOD_POST, "/api/v1/health", &mt, &e) ==
	    ROUTER_METHOD_NOT_ALLOWED, "POST to a GET route is 405");
	is_str(mt.allow, "GET, HEAD", "Allow lists GET and HEAD");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/chat", &mt, &e) ==
	    ROUTER_METHOD_NOT_ALLOWED, "GET to a POST route is 405");
	is_str(mt.allow, "POST", "Allow lists POST");
	ok(match(a, HTTP_METHOD_HEAD, "/api/v1/chat", &mt, &e) ==
	    ROUTER_METHOD_NOT_ALLOWED, "HEAD to a POST-only route is 405");
	ok(match(a, HTTP_METHOD_PUT, "/api/v1/prompts/list/r9", &mt, &e) ==
	    ROUTER_METHOD_NOT_ALLOWED, "PUT where GET and DELETE exist");
	is_str(mt.allow, "GET, HEAD, DELETE", "Allow gathers every route");
	ok(match(a, HTTP_METHOD_OTHER, "/api/v1/health", &mt, &e) ==
	    ROUTER_METHOD_NOT_ALLOWED, "unknown method on a route is 405");
	ok(match(a, HTTP_METHOD_POST, "/api/v1/nothing", &mt, &e) ==
	    ROUTER_NOT_FOUND, "wrong method on an unknown path is 404");
	/* OPTIONS * (the parser lets only OPTIONS have the path "*") */
	ok(match(a, HTTP_METHOD_OPTIONS, "*", &mt, &e) ==
	    ROUTER_METHOD_NOT_ALLOWED && mt.route == NULL,
	    "\"*\" matches no route: 405");
	is_str(mt.allow, "GET, HEAD, POST, PUT, DELETE",
	    "Allow of \"*\" lists every method of the table");
	ok(router_match(routes, 0, HTTP_METHOD_OPTIONS, "*", a, &mt, &e) ==
	    ROUTER_NOT_FOUND, "\"*\" with an empty table is 404");
	ok(match(a, HTTP_METHOD_OPTIONS, "/*", &mt, &e) == ROUTER_NOT_FOUND,
	    "\"/*\" is an ordinary path");
}

static void
test_encoding(struct arena *a)
{
	struct router_match mt;
	struct err e;

	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a%20b%C3%A9", &mt,
	    &e) == ROUTER_FOUND, "encoded parameter");
	is_str(router_param(&mt, "thread_id"), "a b\xc3\xa9",
	    "parameter is percent-decoded");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a+b", &mt, &e) ==
	    ROUTER_FOUND, "plus sign");
	is_str(router_param(&mt, "thread_id"), "a+b", "'+' is not a space in a "
	    "path");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/%68ealth", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_health,
	    "encoded literal segment matches its decoded form");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a%2Fb", &mt, &e) ==
	    ROUTER_ERROR && e.status == 400, "encoded '/' in a parameter is 400");
	ok(strstr(e.msg, "thread_id") != NULL, "the message names the "
	    "parameter: %s", e.msg);
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a%2fb", &mt, &e) ==
	    ROUTER_ERROR && e.status == 400, "lower-case %%2f too");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a%00b", &mt, &e) ==
	    ROUTER_ERROR && e.status == 400, "encoded NUL in a parameter is 400");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a%zzb", &mt, &e) ==
	    ROUTER_ERROR && e.status == 400, "bad escape in a parameter is 400");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/conversations/a%4", &mt, &e) ==
	    ROUTER_ERROR && e.status == 400, "truncated escape is 400");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/prompts/view/r1/..%2Fetc", &mt,
	    &e) == ROUTER_ERROR, "traversal through an encoded '/' is refused");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/heal%zz", &mt, &e) ==
	    ROUTER_NOT_FOUND, "bad escape in a literal segment matches nothing");
	ok(match(a, HTTP_METHOD_GET, "/api%2Fv1/health", &mt, &e) ==
	    ROUTER_NOT_FOUND, "encoded '/' never separates segments");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/%68%65%61%6C%74%68", &mt, &e) ==
	    ROUTER_FOUND && mt.route->handler == &h_health,
	    "a literal segment entirely encoded, either case");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/health%00", &mt, &e) ==
	    ROUTER_NOT_FOUND, "an encoded NUL never matches a literal");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/health%", &mt, &e) ==
	    ROUTER_NOT_FOUND, "a lone '%%' after a literal matches nothing");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/health%2", &mt, &e) ==
	    ROUTER_NOT_FOUND, "a truncated escape after a literal matches "
	    "nothing");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/%68ealt", &mt, &e) ==
	    ROUTER_NOT_FOUND, "a decoded prefix of a literal does not match");
	ok(match(a, HTTP_METHOD_GET, "/api/v1/%68ealthy", &mt, &e) ==
	    ROUTER_NOT_FOUND, "a decoded literal with more after it does not "
	    "match");
}

static void
test_check(void)
{
	struct err e;
	static const struct router_route bad_start[] = {
		{ HTTP_METHOD_GET, "api", NULL, 0, NULL } };
	static const struct router_route bad_empty[] = {
		{ HTTP_METHOD_GET, "/a//b", NULL, 0, NULL } };
	static const struct router_route slash[] = {
		{ HTTP_METHOD_GET, "/a/", NULL, 0, NULL } };
	static const struct router_route bad_slash[] = {
		{ HTTP_METHOD_GET, "/a//", NULL, 0, NULL } };
	struct router_match mt;
	struct arena *a = arena_create(0);
	static const struct router_route bad_brace[] = {
		{ HTTP_METHOD_GET, "/a/{x", NULL, 0, NULL } };
	static const struct router_route bad_inner[] = {
		{ HTTP_METHOD_GET, "/a/x{y}", NULL, 0, NULL } };
	static const struct router_route bad_noname[] = {
		{ HTTP_METHOD_GET, "/a/{}", NULL, 0, NULL } };
	static const struct router_route bad_twice[] = {
		{ HTTP_METHOD_GET, "/a/{x}/{x}", NULL, 0, NULL } };
	static const struct router_route bad_method[] = {
		{ HTTP_METHOD_OTHER, "/a", NULL, 0, NULL } };
	static const struct router_route bad_many[] = {
		{ HTTP_METHOD_GET, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", NULL, 0,
		    NULL } };

	ok(router_check(routes, N_ROUTES, &e) == 0, "the test table is valid");
	ok(router_check(bad_start, 1, &e) < 0, "pattern without '/'");
	ok(router_check(bad_empty, 1, &e) < 0, "empty segment");
	/* a trailing slash is a path of its own (the console's "/console/") */
	ok(router_check(slash, 1, &e) == 0, "a trailing slash is allowed");
	ok(router_match(slash, 1, HTTP_METHOD_GET, "/a/", a, &mt, &e) == ROUTER_FOUND,
	    "\"/a/\" matches \"/a/\"");
	ok(router_match(slash, 1, HTTP_METHOD_GET, "/a", a, &mt, &e) == ROUTER_NOT_FOUND,
	    "\"/a\" does not match \"/a/\"");
	ok(router_check(bad_slash, 1, &e) < 0, "an empty segment before the "
	    "trailing slash");
	ok(router_check(bad_brace, 1, &e) < 0, "unclosed brace");
	ok(router_check(bad_inner, 1, &e) < 0, "brace inside a segment");
	ok(router_check(bad_noname, 1, &e) < 0, "empty parameter name");
	ok(router_check(bad_twice, 1, &e) < 0, "parameter named twice");
	ok(router_check(bad_method, 1, &e) < 0, "OTHER is not a route method");
	ok(router_check(bad_many, 1, &e) < 0 && e.status == 500,
	    "too many parameters: %s", e.msg);
	arena_destroy(a);
}

int
main(void)
{
	struct arena *a = arena_create(0);

	test_found(a);
	test_not_found(a);
	test_method_not_allowed(a);
	test_encoding(a);
	test_check();
	arena_destroy(a);
	return tap_done();
}
