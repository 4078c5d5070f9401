/*
 * json.h -- strict JSON input and small cJSON helpers for handlers.
 *
 * Request bodies are untrusted: json_parse() first validates the text
 * against RFC 8259 with extra rules (valid UTF-8 only, no NUL byte, no
 * \u0000 escape, no lone surrogate escape, bounded nesting, nothing after
 * the document) and only then lets cJSON build the tree, which belongs to
 * the caller's arena.  The accessors distinguish an absent member, a null
 * one and one of the wrong type, with the messages of the original product
 * ("Required field 'x' is missing from your request.", "Field 'x' has an
 * incorrect data type.", status 422).  Member names are compared
 * case-sensitively (cJSON_GetObjectItem is not; never use it on input).
 * Everything here is pure and safe from any thread on distinct arenas.
 */
#ifndef INGEN_JSON_H
#define INGEN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"

/* The default nesting limit (RELIABILITY H2): containers inside containers. */
#define JSON_DEFAULT_MAX_DEPTH 64
/* Above cJSON's own limit a depth is clamped to it. */
#define JSON_MAX_DEPTH_CAP CJSON_NESTING_LIMIT
/* Longest number literal cJSON can read back exactly. */
#define JSON_MAX_NUMBER_LEN 63

/*
 * What was wrong with a text that json_read() refused.  Routes map the kinds
 * to statuses in one place (routes_read_json_object): bytes that are not
 * text and nesting past the limit are the client's encoding problem, a
 * syntax error is the request model's validation error.
 */
enum json_error {
	JSON_OK = 0,
	JSON_ERROR_SYNTAX,      /* not one JSON document (grammar, end, trailing data) */
	JSON_ERROR_ENCODING,    /* invalid UTF-8, a NUL byte, \u0000, a lone surrogate */
	JSON_ERROR_DEPTH,       /* containers nested deeper than max_depth */
};

/*
 * Check that s[0..n) is one strict JSON document (see above).  `max_depth`
 * is the number of arrays and objects that may be open at once (a scalar
 * document has depth 0); values <= 0 mean JSON_DEFAULT_MAX_DEPTH, values
 * above JSON_MAX_DEPTH_CAP are clamped.  Returns 0, or -1 with e set
 * (status 400, "invalid JSON: <what> at byte <offset>").
 */
int json_validate(const char *s, size_t n, int max_depth, struct err *e)
    ING_WUR;

/*
 * Validate s[0..n) with json_validate() and build its cJSON tree.  The tree
 * is deleted when `a` is destroyed (an arena cleanup); the caller must not
 * cJSON_Delete it nor detach items from it into another tree.  Returns NULL
 * with e set (400) on invalid input.
 */
cJSON *json_parse(struct arena *a, const char *s, size_t n, int max_depth,
    struct err *e) ING_WUR;

/*
 * json_parse, saying why it failed: returns JSON_OK with *out set to the
 * tree (owned by `a` as with json_parse), or the kind of the failure with
 * *out NULL and e set (400, the message of json_validate).
 */
enum json_error json_read(struct arena *a, const char *s, size_t n,
    int max_depth, cJSON **out, struct err *e) ING_WUR;

/*
 * The length in bytes of the first `max_chars` characters (code points) of
 * s[0..len): never a cut inside a well-formed UTF-8 sequence.  A byte that
 * starts no well-formed sequence counts as one character.  Returns len when
 * the text is shorter; 0 when max_chars is 0.  Pure.
 */
size_t json_utf8_prefix(const char *s, size_t len, size_t max_chars);

/*
 * Hand a tree built with cJSON_Create* to the arena: it is deleted when `a`
 * is destroyed.  Returns `item` (NULL allowed: nothing registered).
 */
cJSON *json_adopt(struct arena *a, cJSON *item);

/* Compact text of `item` (cJSON_PrintUnformatted) copied into `a`. */
char *json_print(struct arena *a, const cJSON *item);

/* Append the compact text of `item` to `out`. */
void json_append(struct buf *out, const cJSON *item);

/* What an accessor found. */
enum json_get {
	JSON_GET_ERROR = -1,    /* wrong type, or required and absent or null: e set (422) */
	JSON_GET_FOUND = 0,     /* present with the wanted type; *out set */
	JSON_GET_ABSENT,        /* optional and absent; *out untouched */
	JSON_GET_NULL,          /* optional and null; *out untouched */
};

/*
 * Member `key` of object `obj` (if `obj` is not an object, every member is
 * absent).  A required member that is absent fails with "Required field
 * '<key>' is missing from your request."; one that is null or of the wrong
 * type fails with "Field '<key>' has an incorrect data type." (422).  An
 * optional member may be absent or null.  Strings point into the tree and
 * live as long as it does.
 */
enum json_get json_get_string(const cJSON *obj, const char *key,
    bool required, const char **out, struct err *e) ING_WUR;
enum json_get json_get_bool(const cJSON *obj, const char *key,
    bool required, bool *out, struct err *e) ING_WUR;
/* Integers: a JSON number with no fractional part, within int64 range. */
enum json_get json_get_int(const cJSON *obj, const char *key,
    bool required, int64_t *out, struct err *e) ING_WUR;
enum json_get json_get_number(const cJSON *obj, const char *key,
    bool required, double *out, struct err *e) ING_WUR;
enum json_get json_get_object(const cJSON *obj, const char *key,
    bool required, const cJSON **out, struct err *e) ING_WUR;
enum json_get json_get_array(const cJSON *obj, const char *key,
    bool required, const cJSON **out, struct err *e) ING_WUR;

#endif
