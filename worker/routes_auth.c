/*
 * routes_auth.c -- POST /api/v1/auth/login, POST /api/v1/auth/refresh and
 * GET /api/v1/auth/verify (ingenious-api.md section 2.3, with the intended
 * behaviour of /verify rather than the original's bug).
 *
 * Login and refresh are public routes (they are how a client gets a
 * credential) and run on flow threads: login costs one scrypt.  Verify is
 * protected: the gate (auth.c) has checked the token before it runs.  The
 * key ring is the worker's copy of the master's.  Tokens and passwords
 * never reach a log line.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "worker/auth.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"

#define ROUTES_AUTH_INVALID_TOKEN  "Could not validate credentials"
#define ROUTES_AUTH_WRONG_TYPE     "Invalid token type. Expected refresh"
#define ROUTES_AUTH_INVALID_SUB    "Invalid refresh token"

/*
 * The string members `k1` (and `k2` when not NULL) of the JSON object body.
 * False when a 422 (or 400 for bytes that are not text) was answered.
 */
static bool
routes_auth_fields(struct http_exchange *x, const char *k1, const char **v1,
    const char *k2, const char **v2, const char *suggestion)
{
	const cJSON *root;
	struct err e;

	if (!routes_read_json_object(x, NULL, suggestion, suggestion, &root))
		return false;
	err_clear(&e);
	if (json_get_string(root, k1, true, v1, &e) == JSON_GET_ERROR ||
	    (k2 != NULL &&
	    json_get_string(root, k2, true, v2, &e) == JSON_GET_ERROR)) {
		xchg_validation_error(x, e.msg, suggestion);
		return false;
	}
	return true;
}

/* 200 {"access_token","refresh_token","token_type":"bearer"} for `sub`. */
static void
routes_auth_issue(struct http_exchange *x, const char *sub)
{
	const struct config *cfg = x->cfg;
	char *access = arena_alloc(x->arena, JWT_TOKEN_MAX + 1);
	char *refresh = arena_alloc(x->arena, JWT_TOKEN_MAX + 1);
	struct buf b = BUF_INIT;
	time_t now = time(NULL);
	struct err e;

	err_clear(&e);
	if (jwt_issue(x->w->keys, sub, JWT_TYPE_ACCESS,
	    (long)cfg->web.authentication.jwt_access_token_expire_minutes * 60L,
	    now, access, JWT_TOKEN_MAX + 1, &e) != 0 ||
	    jwt_issue(x->w->keys, sub, JWT_TYPE_REFRESH,
	    (long)cfg->web.authentication.jwt_refresh_token_expire_days * 86400L,
	    now, refresh, JWT_TOKEN_MAX + 1, &e) != 0) {
		log_error("issuing tokens", "could not issue tokens: %s", e.msg);
		xchg_error(x, 500, "could not issue tokens");
		return;
	}
	buf_puts(&b, "{\"access_token\":");
	buf_json_string(&b, access);
	buf_puts(&b, ",\"refresh_token\":");
	buf_json_string(&b, refresh);
	buf_puts(&b, ",\"token_type\":\"bearer\"}");
	xchg_reply(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}

void
routes_auth_login(struct http_exchange *x)
{
	const char *user = NULL, *password = NULL;
	struct log_field f[2];
	char name[65];
	const char *shown = name;
	long retry_after;
	struct err e;

	if (!x->cfg->web.authentication.enable) {
		xchg_detail(x, 400, AUTH_MSG_DISABLED);
		return;
	}
	if (!routes_auth_fields(x, "username", &user, "password", &password,
	    "Send a JSON object with 'username' and 'password' strings."))
		return;
	err_clear(&e);
	switch (auth_password(x, user, password, &retry_after, &e)) {
	case AUTH_OK:
		break;
	case AUTH_THROTTLED:
		auth_reply_throttled(x, retry_after);
		return;
	case AUTH_UNAVAILABLE:
		auth_reply_unavailable(x, &e);
		return;
	case AUTH_BAD:
	default:
		/* the reference's login 401 has no WWW-Authenticate */
		xchg_detail(x, 401, AUTH_MSG_INCORRECT);
		return;
	}
	snprintf(name, sizeof(name), "%.64s", user);
	f[0] = LOG_STR("user", shown);
	f[1] = LOG_STR("client", x->peer);
	log_emit(LOG_LEVEL_INFO, "logging in", f, 2, "tokens issued");
	routes_auth_issue(x, user);
}

void
routes_auth_refresh(struct http_exchange *x)
{
	const char *token = NULL;
	struct jwt_claims claims;
	struct err e;

	if (!x->cfg->web.authentication.enable) {
		xchg_detail(x, 400, AUTH_MSG_DISABLED);
		return;
	}
	if (!routes_auth_fields(x, "refresh_token", &token, NULL, NULL,
	    "Send a JSON object with a 'refresh_token' string."))
		return;
	err_clear(&e);
	if (jwt_verify(x->w->keys, token, strlen(token), NULL, time(NULL),
	    &claims, &e) != 0) {
		log_debug("refreshing tokens", "refresh token refused: %s", e.msg);
		auth_reply_unauthorized(x, ROUTES_AUTH_INVALID_TOKEN);
		return;
	}
	if (strcmp(claims.type, JWT_TYPE_REFRESH) != 0) {
		auth_reply_unauthorized(x, ROUTES_AUTH_WRONG_TYPE);
		return;
	}
	/* unlike the reference: a removed or disabled user cannot refresh */
	switch (auth_subject(x, claims.sub, &e)) {
	case AUTH_OK:
		break;
	case AUTH_UNAVAILABLE:
		auth_reply_unavailable(x, &e);
		return;
	default:
		auth_reply_unauthorized(x, ROUTES_AUTH_INVALID_SUB);
		return;
	}
	routes_auth_issue(x, claims.sub);
}

/*
 * The gate has accepted the request; /verify is about tokens, so a request
 * that got through with Basic credentials is told it has no token.
 */
void
routes_auth_verify(struct http_exchange *x)
{
	const char *value, *token;
	struct jwt_claims claims;
	struct buf b = BUF_INIT;
	size_t len;
	struct err e;

	if (!x->cfg->web.authentication.enable) {
		xchg_detail(x, 400, AUTH_MSG_DISABLED);
		return;
	}
	value = xchg_header_in(x, "Authorization");
	err_clear(&e);
	if (value == NULL || !auth_bearer_token(value, &token, &len) ||
	    jwt_verify(x->w->keys, token, len, JWT_TYPE_ACCESS, time(NULL),
	    &claims, &e) != 0) {
		auth_reply_unauthorized(x, AUTH_MSG_REQUIRED);
		return;
	}
	buf_puts(&b, "{\"username\":");
	buf_json_string(&b, claims.sub);
	buf_puts(&b, ",\"valid\":true}");
	xchg_reply(x, 200, "application/json", b.data, b.len);
	buf_free(&b);
}
