/*
 * jwt.c -- HS256 JSON Web Tokens: issue and verify.
 *
 * Owns the token profile (jwt.h) and every verification rule.  The order of
 * the checks is deliberate: size and shape first, then the header (which
 * may only confirm HS256 and name a kid the ring already has), then the
 * signature in constant time, and only then the payload, so an attacker
 * without the key never gets a byte of payload parsed.  It never logs,
 * never does I/O, and never copies a token or key into an error message.
 */
#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/json.h"
#include "lib/jwt.h"

#define JWT_ALG            "HS256"
#define JWT_SIG_LEN        CRYPTO_SHA256_LEN
#define JWT_JTI_BYTES      16          /* random bytes of a jti (22 characters) */
#define JWT_JSON_DEPTH     4           /* nesting allowed in header and payload */
#define JWT_MAX_MEMBERS    32          /* members of the header or payload object */
#define JWT_LIFETIME_MAX   (10L * 366 * 86400)
/* Claims beyond this are nonsense (year ~33658) and may not fit a time_t. */
#define JWT_TIME_MAX       1e12

/* Headers that point at other keys or demand extensions we do not speak. */
static const char *const jwt_forbidden_headers[] = {
	"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit",
};

int
jwt_issue(const struct keys *ring, const char *sub, const char *type,
    long lifetime_s, time_t now, char *out, size_t outlen, struct err *e)
{
	const struct keys_key *key = keys_current(ring);
	unsigned char jti_raw[JWT_JTI_BYTES], sig[JWT_SIG_LEN];
	char jti[JWT_JTI_MAX + 1];
	struct buf header = BUF_INIT, payload = BUF_INIT;
	size_t sublen, typelen, i, need, o;
	int rc = -1;

	if (key == NULL)
		return err_set(e, 500, "could not issue token: no signing key");
	sublen = sub != NULL ? strlen(sub) : 0;
	if (sublen == 0 || sublen > JWT_SUB_MAX)
		return err_set(e, 500, "could not issue token: subject must be 1 to %d bytes",
		    JWT_SUB_MAX);
	typelen = type != NULL ? strlen(type) : 0;
	if (typelen == 0 || typelen > JWT_TYPE_MAX)
		return err_set(e, 500, "could not issue token: invalid token type");
	for (i = 0; i < typelen; i++)
		if (type[i] < 'a' || type[i] > 'z')
			return err_set(e, 500, "could not issue token: invalid token type");
	if (lifetime_s <= 0 || lifetime_s > JWT_LIFETIME_MAX)
		return err_set(e, 500, "could not issue token: lifetime out of range");
	if (crypto_random(jti_raw, sizeof(jti_raw), e) < 0)
		return err_prefix(e, "could not issue token");
	b64url_encode(jti_raw, sizeof(jti_raw), jti);

	buf_printf(&header, "{\"alg\":\"" JWT_ALG "\",\"typ\":\"JWT\",\"kid\":");
	buf_json_string(&header, key->kid);
	buf_putc(&header, '}');
	buf_puts(&payload, "{\"sub\":");
	buf_json_string(&payload, sub);
	buf_printf(&payload, ",\"type\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
	    type, (long long)now, (long long)now + lifetime_s, jti);
	/* The subject must make valid JSON (valid UTF-8, no control bytes). */
	if (json_validate(payload.data, payload.len, JWT_JSON_DEPTH, NULL) < 0) {
		err_set(e, 500, "could not issue token: subject is not valid UTF-8");
		goto out;
	}

	need = b64url_encoded_len(header.len) + 1 + b64url_encoded_len(payload.len)
	    + 1 + b64url_encoded_len(JWT_SIG_LEN);
	if (need > JWT_TOKEN_MAX || need + 1 > outlen) {
		err_set(e, 500, "could not issue token: token would be too long");
		goto out;
	}
	o = b64url_encode(header.data, header.len, out);
	out[o++] = '.';
	o += b64url_encode(payload.data, payload.len, out + o);
	if (crypto_hmac_sha256(key->secret, key->secret_len, out, o, sig, e) < 0) {
		err_prefix(e, "could not issue token");
		goto out;
	}
	out[o++] = '.';
	o += b64url_encode(sig, sizeof(sig), out + o);
	rc = 0;
out:
	if (rc < 0 && outlen > 0)
		out[0] = '\0';
	buf_free(&header);
	buf_free(&payload);
	return rc;
}

/*
 * Decode one base64url segment and parse it as a JSON object without
 * duplicate members.  `what` names the segment in messages.  Returns the
 * tree (the caller deletes it) or NULL with `e` set.
 */
static cJSON *
jwt_parse_segment(const char *seg, size_t seglen, const char *what,
    char *scratch, size_t scratchlen, struct err *e)
{
	const cJSON *a, *b;
	cJSON *obj = NULL;
	size_t n, members = 0;

	if (seglen == 0) {
		err_set(e, 401, "invalid token: empty %s", what);
		goto fail;
	}
	if (b64url_decode(seg, seglen, scratch, scratchlen, &n, NULL) < 0) {
		err_set(e, 401, "invalid token: %s is not base64url", what);
		goto fail;
	}
	if (json_validate(scratch, n, JWT_JSON_DEPTH, NULL) < 0 ||
	    (obj = cJSON_ParseWithLength(scratch, n)) == NULL) {
		err_set(e, 401, "invalid token: %s is not valid JSON", what);
		goto fail;
	}
	if (!cJSON_IsObject(obj)) {
		err_set(e, 401, "invalid token: %s is not a JSON object", what);
		goto fail;
	}
	/*
	 * Two parsers disagreeing on which of two "alg" or "exp" members wins
	 * is a classic token confusion; refuse duplicates outright.
	 */
	for (a = obj->child; a != NULL; a = a->next) {
		if (++members > JWT_MAX_MEMBERS) {
			err_set(e, 401, "invalid token: too many %s members", what);
			goto fail;
		}
		for (b = obj->child; b != a; b = b->next)
			if (strcmp(a->string, b->string) == 0) {
				err_set(e, 401, "invalid token: duplicate %s member", what);
				goto fail;
			}
	}
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

/*
 * A numeric time claim.  Returns 1 if present and valid (*out set), 0 if
 * absent, -1 (e set) if of the wrong type or out of range.
 */
static int
jwt_time_claim(const cJSON *payload, const char *name, double *out, struct err *e)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(payload, name);

	if (item == NULL)
		return 0;
	if (!cJSON_IsNumber(item))
		return err_set(e, 401, "invalid token: %s is not a number", name);
	if (!isfinite(item->valuedouble) || fabs(item->valuedouble) > JWT_TIME_MAX)
		return err_set(e, 401, "invalid token: %s out of range", name);
	*out = item->valuedouble;
	return 1;
}

/* Copy an optional string claim into dst (cap bytes with NUL). */
static int
jwt_string_claim(const cJSON *obj, const char *name, char *dst, size_t cap,
    int required, struct err *e)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
	size_t n;

	dst[0] = '\0';
	if (item == NULL) {
		if (required)
			return err_set(e, 401, "invalid token: missing %s", name);
		return 0;
	}
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return err_set(e, 401, "invalid token: %s is not a string", name);
	n = strlen(item->valuestring);
	if (n >= cap)
		return err_set(e, 401, "invalid token: %s too long", name);
	if (required && n == 0)
		return err_set(e, 401, "invalid token: empty %s", name);
	memcpy(dst, item->valuestring, n + 1);
	return 0;
}

int
jwt_verify(const struct keys *ring, const char *token, size_t len,
    const char *expected_type, time_t now, struct jwt_claims *out,
    struct err *e)
{
	/* Decoded segments are shorter than the token (3 bytes per 4). */
	char scratch[JWT_TOKEN_MAX];
	unsigned char sig[JWT_SIG_LEN + 3], mac[JWT_SIG_LEN];
	const char *dot1, *dot2, *seg;
	const struct keys_key *key;
	const cJSON *item;
	cJSON *header = NULL, *payload = NULL;
	struct jwt_claims claims;
	double exp = 0, iat = 0, nbf = 0, t = (double)now;
	size_t siglen, i;
	int r, rc = -1;

	if (ring == NULL || ring->n == 0)
		return err_set(e, 401, "invalid token: no verification key");
	if (token == NULL || len == 0)
		return err_set(e, 401, "invalid token: empty");
	if (len > JWT_TOKEN_MAX)
		return err_set(e, 401, "invalid token: longer than %d bytes", JWT_TOKEN_MAX);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return err_set(e, 401, "invalid token: not three segments");
	memset(&claims, 0, sizeof(claims));

	/* Header: only HS256 and a key we hold. */
	header = jwt_parse_segment(token, (size_t)(dot1 - token), "header",
	    scratch, sizeof(scratch), e);
	if (header == NULL)
		goto out;
	item = cJSON_GetObjectItemCaseSensitive(header, "alg");
	if (item == NULL) {
		err_set(e, 401, "invalid token: missing alg");
		goto out;
	}
	if (!cJSON_IsString(item) || strcmp(item->valuestring, JWT_ALG) != 0) {
		err_set(e, 401, "invalid token: algorithm is not " JWT_ALG);
		goto out;
	}
	for (i = 0; i < sizeof(jwt_forbidden_headers) / sizeof(jwt_forbidden_headers[0]); i++)
		if (cJSON_GetObjectItemCaseSensitive(header, jwt_forbidden_headers[i]) != NULL) {
			err_set(e, 401, "invalid token: forbidden header %s",
			    jwt_forbidden_headers[i]);
			goto out;
		}
	item = cJSON_GetObjectItemCaseSensitive(header, "typ");
	if (item != NULL && (!cJSON_IsString(item) || strcmp(item->valuestring, "JWT") != 0)) {
		err_set(e, 401, "invalid token: typ is not JWT");
		goto out;
	}
	/*
	 * A token without a kid (as PyJWT and the Python product issue them
	 * with the shared secret) is checked against the current signing key
	 * only; a kid that is present must name a key of the ring.  Neither
	 * case touches the file system or the network.
	 */
	if (jwt_string_claim(header, "kid", claims.kid, sizeof(claims.kid), 0, e) < 0)
		goto out;
	if (cJSON_GetObjectItemCaseSensitive(header, "kid") == NULL)
		key = keys_current(ring);
	else if (claims.kid[0] == '\0')
		key = NULL;
	else
		key = keys_find(ring, claims.kid, strlen(claims.kid), now);
	if (key == NULL) {
		err_set(e, 401, "invalid token: unknown or retired key id");
		goto out;
	}
	/* the claims name the key that verified the token, given or not */
	snprintf(claims.kid, sizeof(claims.kid), "%s", key->kid);

	/* Signature over "<header>.<payload>", compared in constant time. */
	seg = dot2 + 1;
	if (b64url_decode(seg, len - (size_t)(seg - token), sig, sizeof(sig),
	    &siglen, NULL) < 0 || siglen != JWT_SIG_LEN) {
		err_set(e, 401, "invalid token: malformed signature");
		goto out;
	}
	if (crypto_hmac_sha256(key->secret, key->secret_len, token,
	    (size_t)(dot2 - token), mac, NULL) < 0) {
		err_set(e, 401, "could not verify token: hmac failed");
		goto out;
	}
	if (!crypto_memeq(mac, sig, JWT_SIG_LEN)) {
		err_set(e, 401, "invalid token: bad signature");
		goto out;
	}

	/* Payload: only now, with the signature known good. */
	payload = jwt_parse_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload",
	    scratch, sizeof(scratch), e);
	if (payload == NULL)
		goto out;
	if ((r = jwt_time_claim(payload, "exp", &exp, e)) <= 0) {
		if (r == 0)
			err_set(e, 401, "invalid token: missing exp");
		goto out;
	}
	if ((r = jwt_time_claim(payload, "iat", &iat, e)) <= 0) {
		if (r == 0)
			err_set(e, 401, "invalid token: missing iat");
		goto out;
	}
	if ((r = jwt_time_claim(payload, "nbf", &nbf, e)) < 0)
		goto out;
	if (exp + JWT_LEEWAY_SECONDS < t) {
		err_set(e, 401, "invalid token: expired");
		goto out;
	}
	if (iat - JWT_LEEWAY_SECONDS > t || (r == 1 && nbf - JWT_LEEWAY_SECONDS > t)) {
		err_set(e, 401, "invalid token: not yet valid");
		goto out;
	}
	if (iat > exp) {
		err_set(e, 401, "invalid token: issued after it expires");
		goto out;
	}
	if (jwt_string_claim(payload, "sub", claims.sub, sizeof(claims.sub), 1, e) < 0 ||
	    jwt_string_claim(payload, "type", claims.type, sizeof(claims.type),
	    expected_type != NULL, e) < 0 ||
	    jwt_string_claim(payload, "jti", claims.jti, sizeof(claims.jti), 0, e) < 0)
		goto out;
	if (expected_type != NULL && strcmp(claims.type, expected_type) != 0) {
		err_set(e, 401, "invalid token: wrong token type");
		goto out;
	}
	claims.iat = (long long)iat;
	claims.exp = (long long)exp;
	if (out != NULL)
		*out = claims;
	rc = 0;
out:
	cJSON_Delete(header);
	cJSON_Delete(payload);
	return rc;
}
