/*
 * routes_prompts.c -- the prompts API of the reference (§1.7): the
 * revisions and their template files, viewing and updating a template,
 * creating a revision; and ours: the kept versions of a template, a view
 * of one by its hash, the hash of what is served (ETag, X-Prompt-Hash),
 * and the model calls each version made (llm_usage.prompt_hash).
 *
 * Every name a client sends reaches lib/revisions.c, which refuses (400)
 * anything that could leave the templates folder before a file is opened;
 * this file never builds a path.  Where the reference records a bug (an
 * empty 200 for a missing file, failures swallowed, no path checks, a
 * misleading "discovered_from"), the intended behaviour is served.  When
 * authentication is on, only the configured user (the administrator,
 * web_configuration.authentication.username) may write.  Flow-thread
 * handlers (file I/O blocks), behind the authentication gate.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flows/registry.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/db.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/revisions.h"
#include "worker/exchange.h"
#include "worker/routes.h"
#include "worker/worker.h"
#include "worker/worker.h"

#define PROMPTS_MSG_ADMIN "Only the administrator may change prompt templates"
#define PROMPTS_NOTE_NONE "No prompt templates found for this revision. Check " \
	"if the revision exists or if templates have been uploaded."
#define PROMPTS_NOTE_WORKFLOW "No prompts found or path not accessible"
#define PROMPTS_UPDATE_HINT "Send a JSON object with a 'content' string."
#define PROMPTS_CREATE_HINT "Send a JSON object with an optional 'revision_id' " \
	"string and an optional 'source_revision_id' string."
/* the reference's file_storage.revisions.original_templates default: the
 * revision a new one copies when the body names none (when it exists) */
#define PROMPTS_ORIGINAL_TEMPLATES "quickstart-1"
#define PROMPTS_VARIANTS 3

/* A failure of lib/revisions as an answer: its message for the client's
 * mistakes, a logged 500 with the request id for the server's. */
static void
prompts_fail(struct http_exchange *x, const struct err *e, const char *action)
{
	if (e->status >= 400 && e->status < 500) {
		xchg_detail(x, e->status, e->msg);
		return;
	}
	log_error(action, "%s", e->msg);
	xchg_error(x, 500, e->msg);
}

/* Writes need the administrator when authentication is on. */
static bool
prompts_may_write(struct http_exchange *x)
{
	if (routes_is_admin(x))
		return true;
	xchg_detail(x, 403, PROMPTS_MSG_ADMIN);
	return false;
}

static void
prompts_names_json(struct buf *b, const char *const *names, size_t n)
{
	size_t i;

	buf_putc(b, '[');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_json_string(b, names[i]);
	}
	buf_putc(b, ']');
}

void
routes_prompts_revisions(struct http_exchange *x)
{
	const char **names;
	size_t n;
	struct buf b = BUF_INIT;
	struct err e;

	err_clear(&e);
	if (rev_list(x->cfg, x->arena, &names, &n, &e) < 0) {
		prompts_fail(x, &e, "listing revisions");
		return;
	}
	/* the reference says "workflows" when it found no folder (it then
	 * guessed from the flow names); the revisions are the folders */
	buf_puts(&b, "{\"revisions\":");
	prompts_names_json(&b, names, n);
	buf_printf(&b, ",\"count\":%zu,\"discovered_from\":"
	    "\"template_directories\"}", n);
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

/* `name` with every `from` made `to`, in the arena. */
static const char *
prompts_swap(struct arena *a, const char *name, char from, char to)
{
	char *s = arena_strdup(a, name), *p;

	for (p = s; *p != '\0'; p++)
		if (*p == from)
			*p = to;
	return s;
}

void
routes_prompts_workflows(struct http_exchange *x)
{
	const struct registry *reg = x->w->flows;
	size_t i, n_info = registry_info_count(reg), listed = 0, total = 0;
	struct buf b = BUF_INIT;
	struct err e;

	buf_puts(&b, "{\"workflows\":[");
	for (i = 0; i < n_info; i++) {
		const struct registry_info *info = registry_info_at(reg, i);
		const char *variants[2], **files = NULL;
		size_t nv = 1, v, nf = 0;

		if (info == NULL || info->disabled)
			continue;
		total++;
		variants[0] = info->name;
		if (strchr(info->name, '_') != NULL)
			variants[nv++] = prompts_swap(x->arena, info->name, '_', '-');
		else if (strchr(info->name, '-') != NULL)
			variants[nv++] = prompts_swap(x->arena, info->name, '-', '_');
		for (v = 0; v < nv; v++) {
			err_clear(&e);
			if (rev_files(x->cfg, variants[v], x->arena, &files, &nf,
			    &e) == 0 && nf > 0)
				break;
			nf = 0;
		}
		if (listed++ > 0)
			buf_putc(&b, ',');
		buf_puts(&b, "{\"workflow\":");
		buf_json_string(&b, info->name);
		buf_puts(&b, ",\"revision_id\":");
		buf_json_string(&b, nf > 0 ? variants[v] : info->name);
		buf_printf(&b, ",\"prompt_count\":%zu,\"prompt_files\":", nf);
		prompts_names_json(&b, files, nf);
		if (nf == 0) {
			buf_puts(&b, ",\"note\":");
			buf_json_string(&b, PROMPTS_NOTE_WORKFLOW);
		}
		buf_putc(&b, '}');
	}
	buf_printf(&b, "],\"count\":%zu,\"total_workflows_discovered\":%zu}",
	    listed, total);
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

void
routes_prompts_list(struct http_exchange *x)
{
	const char *rid = xchg_param(x, "revision_id");
	const char *tries[PROMPTS_VARIANTS], *normalized, *used = NULL;
	const char **files = NULL;
	char norm[REGISTRY_NAME_MAX];
	size_t nt = 0, nf = 0, i, k;
	struct buf b = BUF_INIT;
	struct err e;

	err_clear(&e);
	if (rev_name_check(rid, false, &e) < 0) {
		xchg_detail(x, 400, e.msg);
		return;
	}
	normalized = arena_strdup(x->arena, registry_normalize(rid, norm,
	    sizeof(norm)));
	/* the reference means: as given, normalized, hyphenated (its list
	 * repeats names and skips the hyphenated one for an underscored id) */
	{
		const char *cand[PROMPTS_VARIANTS] = { rid, normalized,
		    prompts_swap(x->arena, rid, '_', '-') };

		for (i = 0; i < PROMPTS_VARIANTS; i++) {
			for (k = 0; k < nt; k++)
				if (strcmp(tries[k], cand[i]) == 0)
					break;
			if (k == nt)
				tries[nt++] = cand[i];
		}
	}
	for (i = 0; i < nt; i++) {
		if (rev_files(x->cfg, tries[i], x->arena, &files, &nf, &e) < 0) {
			prompts_fail(x, &e, "listing prompt templates");
			return;
		}
		if (nf > 0) {
			used = tries[i];
			break;
		}
	}
	buf_puts(&b, "{\"revision_id\":");
	buf_json_string(&b, rid);
	if (used != NULL) {
		buf_puts(&b, ",\"actual_revision_used\":");
		buf_json_string(&b, used);
	}
	buf_puts(&b, ",\"normalized_revision_id\":");
	buf_json_string(&b, normalized);
	buf_puts(&b, ",\"files\":");
	prompts_names_json(&b, files, nf);
	buf_printf(&b, ",\"count\":%zu,\"attempted_revisions\":", nf);
	prompts_names_json(&b, tries, nt);
	if (used == NULL) {
		buf_puts(&b, ",\"note\":");
		buf_json_string(&b, PROMPTS_NOTE_NONE);
	}
	buf_putc(&b, '}');
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

static void
prompts_hash_headers(struct http_exchange *x, const char *hash)
{
	char etag[REV_HASH_LEN + 3];

	snprintf(etag, sizeof(etag), "\"%s\"", hash);
	xchg_header(x, "ETag", etag);
	xchg_header(x, "X-Prompt-Hash", hash);
}

void
routes_prompts_view(struct http_exchange *x)
{
	const char *rid = xchg_param(x, "revision_id");
	const char *file = xchg_param(x, "filename");
	const char *want = routes_query(x, "hash"), *text;
	char hash[REV_HASH_LEN + 1];
	size_t len;
	struct buf b = BUF_INIT;
	struct err e;
	int rc;

	err_clear(&e);
	if (want != NULL) {
		rc = rev_read_version(x->cfg, rid, file, want, x->arena, &text,
		    &len, &e);
		if (rc == 0)
			snprintf(hash, sizeof(hash), "%s", want);
	} else {
		rc = rev_read(x->cfg, rid, file, x->arena, &text, &len, hash, &e);
	}
	if (rc < 0) {
		prompts_fail(x, &e, "reading a prompt template");
		return;
	}
	/* the reference answers the content as a JSON string; a file put
	 * there by hand that is not UTF-8 text cannot be one */
	buf_putc(&b, '"');
	buf_json_escape(&b, text, len);
	buf_putc(&b, '"');
	if (json_validate(buf_rptr(&b), buf_rlen(&b), 1, &e) < 0) {
		buf_free(&b);
		err_set(&e, 500, "template \"%s\" of revision \"%s\" is not "
		    "UTF-8 text", file, rid);
		prompts_fail(x, &e, "reading a prompt template");
		return;
	}
	prompts_hash_headers(x, hash);
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

void
routes_prompts_update(struct http_exchange *x)
{
	const char *rid = xchg_param(x, "revision_id");
	const char *file = xchg_param(x, "filename");
	const char *content = NULL;
	char hash[REV_HASH_LEN + 1];
	const cJSON *root;
	struct buf b = BUF_INIT;
	struct err e;

	if (!prompts_may_write(x))
		return;
	err_clear(&e);
	/* the names before the body: a bad path is 400 whatever is sent */
	if (rev_name_check(rid, false, &e) < 0 ||
	    rev_name_check(file, true, &e) < 0) {
		xchg_detail(x, 400, e.msg);
		return;
	}
	if (!routes_read_json_object(x, NULL, PROMPTS_UPDATE_HINT,
	    PROMPTS_UPDATE_HINT, &root))
		return;
	if (json_get_string(root, "content", true, &content, &e) ==
	    JSON_GET_ERROR) {
		xchg_validation_error(x, e.msg, PROMPTS_UPDATE_HINT);
		return;
	}
	if (rev_write(x->cfg, rid, file, content, strlen(content), hash,
	    &e) < 0) {
		prompts_fail(x, &e, "updating a prompt template");
		return;
	}
	log_info("updating a prompt template", "revision %s file %s is now %s "
	    "(by %s)", rid, file, hash, x->user != NULL ? x->user :
	    "an unauthenticated client");
	buf_puts(&b, "{\"message\":\"File updated successfully\",\"hash\":");
	buf_json_string(&b, hash);
	buf_putc(&b, '}');
	prompts_hash_headers(x, hash);
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

/*
 * The reference's normalize_revision_id: lower case, '_' to '-', only
 * [a-z0-9-] kept, runs of '-' collapsed, none at either end.  0 with out
 * set, or -1 with the reference's message in e.
 */
static int
prompts_normalize_id(const char *id, char *out, size_t n, struct err *e)
{
	size_t i, k = 0;
	bool blank = true;

	for (i = 0; id[i] != '\0'; i++)
		if (id[i] != ' ' && id[i] != '\t' && id[i] != '\n' &&
		    id[i] != '\r' && id[i] != '\f' && id[i] != '\v')
			blank = false;
	if (blank)
		return err_set(e, 400, "Invalid revision_id format: Revision ID "
		    "cannot be empty");
	/* the reference would drop these characters and go on; a path in an
	 * id is refused here, as on every other route */
	if (strchr(id, '/') != NULL || strchr(id, '\\') != NULL ||
	    strstr(id, "..") != NULL)
		return err_set(e, 400, "Invalid revision_id format: a revision id "
		    "is one folder name, without '/', '\\' or '..'");
	for (i = 0; id[i] != '\0' && k + 1 < n; i++) {
		char c = id[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '_')
			c = '-';
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			continue;
		if (c == '-' && (k == 0 || out[k - 1] == '-'))
			continue;
		out[k++] = c;
	}
	if (id[i] != '\0')
		return err_set(e, 400, "Invalid revision_id format: longer than "
		    "%d characters", REV_NAME_MAX);
	while (k > 0 && out[k - 1] == '-')
		k--;
	out[k] = '\0';
	if (k == 0) {
		char shown[64];

		snprintf(shown, sizeof(shown), "%s", id);
		return err_set(e, 400, "Invalid revision_id format: Revision ID "
		    "'%s' contains no valid characters", shown);
	}
	return 0;
}

/* The reference's conflict rule: <id> when free, else <id>-<highest n + 1>
 * over the existing <id>-<n>. */
static const char *
prompts_resolve_id(struct http_exchange *x, const char *id,
    const char *const *names, size_t n)
{
	size_t i, il = strlen(id);
	bool taken = false;
	unsigned long highest = 0;

	for (i = 0; i < n; i++) {
		const char *s = names[i], *p;
		unsigned long v = 0;

		if (strcmp(s, id) == 0)
			taken = true;
		if (strncmp(s, id, il) != 0 || s[il] != '-' || s[il + 1] == '\0')
			continue;
		for (p = s + il + 1; *p >= '0' && *p <= '9' && v < 100000000; p++)
			v = v * 10 + (unsigned long)(*p - '0');
		if (*p == '\0' && v > highest)
			highest = v;
	}
	if (!taken)
		return id;
	return arena_sprintf(x->arena, "%s-%lu", id, highest + 1);
}

/* The reference's codespace-style name: <adjective>-<noun>-<8 hex>. */
static const char *
prompts_funny_id(struct http_exchange *x, struct err *e)
{
	static const char *const adjectives[] = { "animated", "bouncy",
	    "clever", "cosmic", "curvy", "dazzling", "electric", "fluffy",
	    "fuzzy", "glowing", "happy", "jazzy", "kinetic", "lovely",
	    "magical", "nimble", "quirky", "radiant", "shiny", "stellar",
	    "turbo", "vibrant", "witty", "zesty" };
	static const char *const nouns[] = { "disco", "ninja", "palm",
	    "quantum", "rainbow", "space", "unicorn", "velvet", "wizard",
	    "crystal", "golden", "silver", "emerald", "diamond", "ruby",
	    "sapphire", "amber", "pearl", "jade", "onyx", "copper", "bronze",
	    "platinum", "titanium" };
	unsigned char r[6];

	if (crypto_random(r, sizeof(r), e) < 0)
		return NULL;
	return arena_sprintf(x->arena, "%s-%s-%02x%02x%02x%02x",
	    adjectives[r[0] % (sizeof(adjectives) / sizeof(adjectives[0]))],
	    nouns[r[1] % (sizeof(nouns) / sizeof(nouns[0]))],
	    r[2], r[3], r[4], r[5]);
}

void
routes_prompts_create(struct http_exchange *x)
{
	const char *want = NULL, *source = NULL, *id, **names, **files;
	char norm[REV_NAME_MAX + 1];
	const cJSON *root;
	size_t n, nf;
	struct buf b = BUF_INIT;
	struct err e;

	if (!prompts_may_write(x))
		return;
	if (!routes_read_json_object(x, NULL, PROMPTS_CREATE_HINT,
	    PROMPTS_CREATE_HINT, &root))
		return;
	err_clear(&e);
	if (json_get_string(root, "revision_id", false, &want, &e) ==
	    JSON_GET_ERROR ||
	    json_get_string(root, "source_revision_id", false, &source, &e) ==
	    JSON_GET_ERROR) {
		xchg_validation_error(x, e.msg, PROMPTS_CREATE_HINT);
		return;
	}
	/* as the reference: an empty revision_id asks for a generated one */
	if (want != NULL && want[0] != '\0' &&
	    prompts_normalize_id(want, norm, sizeof(norm), &e) < 0) {
		xchg_detail(x, 400, e.msg);
		return;
	}
	if (source != NULL && rev_name_check(source, false, &e) < 0) {
		xchg_detail(x, 400, e.msg);
		return;
	}
	if (rev_list(x->cfg, x->arena, &names, &n, &e) < 0) {
		prompts_fail(x, &e, "creating a revision");
		return;
	}
	if (want != NULL && want[0] != '\0')
		id = prompts_resolve_id(x, norm, names, n);
	else
		id = prompts_funny_id(x, &e);
	if (id == NULL || rev_name_check(id, false, &e) < 0) {
		prompts_fail(x, &e, "creating a revision");
		return;
	}
	if (source == NULL) {
		/* the reference copies its original templates; ours only when
		 * that revision is there */
		if (rev_files(x->cfg, PROMPTS_ORIGINAL_TEMPLATES, x->arena, &files,
		    &nf, &e) == 0 && nf > 0)
			source = PROMPTS_ORIGINAL_TEMPLATES;
		err_clear(&e);
	}
	if (rev_create(x->cfg, id, source, &e) < 0) {
		prompts_fail(x, &e, "creating a revision");
		return;
	}
	if (rev_files(x->cfg, id, x->arena, &files, &nf, &e) < 0) {
		prompts_fail(x, &e, "creating a revision");
		return;
	}
	log_info("creating a revision", "revision %s created with %zu "
	    "templates%s%s", id, nf, source ? " from " : "", source ? source : "");
	buf_puts(&b, "{\"revision_id\":");
	buf_json_string(&b, id);
	buf_printf(&b, ",\"message\":\"Revision created successfully\","
	    "\"template_count\":%zu,\"copied_files\":", nf);
	prompts_names_json(&b, files, nf);
	if (source != NULL) {
		buf_puts(&b, ",\"source_revision_id\":");
		buf_json_string(&b, source);
	}
	buf_putc(&b, '}');
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

void
routes_prompts_versions(struct http_exchange *x)
{
	const char *rid = xchg_param(x, "revision_id");
	const char *file = xchg_param(x, "filename");
	struct rev_version *v;
	size_t n, i;
	struct buf b = BUF_INIT;
	struct err e;
	char when[32];
	struct tm tm;

	err_clear(&e);
	if (rev_versions(x->cfg, rid, file, x->arena, &v, &n, &e) < 0) {
		prompts_fail(x, &e, "listing the versions of a prompt template");
		return;
	}
	buf_puts(&b, "{\"revision_id\":");
	buf_json_string(&b, rid);
	buf_puts(&b, ",\"filename\":");
	buf_json_string(&b, file);
	buf_puts(&b, ",\"versions\":[");
	for (i = 0; i < n; i++) {
		gmtime_r(&v[i].mtime, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		buf_printf(&b, "%s{\"hash\":\"%s\",\"written_at\":\"%s\","
		    "\"size\":%zu}", i > 0 ? "," : "", v[i].hash, when, v[i].size);
	}
	buf_puts(&b, "]}");
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}

/* GET /api/v1/prompts/usage/{revision_id}/{filename} (ours): for each kept
 * version (the newest DB_PROMPT_USAGE_HASHES), the model calls rendered from
 * it and the threads that used it last.  Another user than the
 * administrator counts their own calls only. */
void
routes_prompts_usage(struct http_exchange *x)
{
	const char *rid = xchg_param(x, "revision_id");
	const char *file = xchg_param(x, "filename");
	const char *user = routes_is_admin(x) ? NULL : x->user;
	const char **hashes;
	struct rev_version *v;
	struct db_prompt_use *u = NULL;
	struct buf b = BUF_INIT;
	struct err e;
	size_t n, i;
	int k, nu = 0;

	err_clear(&e);
	if (rev_versions(x->cfg, rid, file, x->arena, &v, &n, &e) < 0) {
		prompts_fail(x, &e, "listing the versions of a prompt template");
		return;
	}
	if (n > DB_PROMPT_USAGE_HASHES)
		n = DB_PROMPT_USAGE_HASHES;
	hashes = arena_alloc(x->arena, (n + 1) * sizeof(*hashes));
	for (i = 0; i < n; i++)
		hashes[i] = v[i].hash;
	if (n > 0) {
		routes_usage_rollup(x);
		nu = db_prompt_usage(x->w->db, rid, file, hashes, n, user, x->arena, &u, &e);
		if (nu < 0) {
			routes_db_error(x, &e, "could not read the prompt's usage");
			return;
		}
	}
	buf_puts(&b, "{\"revision_id\":");
	buf_json_string(&b, rid);
	buf_puts(&b, ",\"filename\":");
	buf_json_string(&b, file);
	buf_puts(&b, ",\"user_id\":");
	buf_json_string(&b, user);
	buf_puts(&b, ",\"versions\":[");
	for (i = 0; i < n; i++) {
		const struct db_prompt_use *r = NULL;

		for (k = 0; k < nu; k++)
			if (u[k].hash != NULL && strcmp(u[k].hash, v[i].hash) == 0)
				r = &u[k];
		buf_printf(&b, "%s{\"hash\":\"%s\",\"calls\":%lld,\"errors\":%lld,"
		    "\"total_tokens\":%lld,\"first_used\":", i > 0 ? "," : "", v[i].hash,
		    r != NULL ? r->calls : 0, r != NULL ? r->errors : 0,
		    r != NULL ? r->total_tokens : 0);
		buf_json_string(&b, r != NULL ? r->first_used : NULL);
		buf_puts(&b, ",\"last_used\":");
		buf_json_string(&b, r != NULL ? r->last_used : NULL);
		buf_puts(&b, ",\"thread_ids\":");
		buf_puts(&b, r != NULL && r->threads_json != NULL ? r->threads_json : "[]");
		buf_putc(&b, '}');
	}
	buf_puts(&b, "]}");
	xchg_json(x, 200, buf_cstr(&b));
	buf_free(&b);
}
