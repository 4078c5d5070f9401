/*
 * prompt.c -- one prompt template rendered (flows/prompt.h): the revision
 * store reads the file and its hash, the template engine parses and renders
 * it.  It keeps nothing between calls (a template is parsed per render:
 * prompts are small, and a file updated through the prompts API is seen by
 * the next call at once).
 */
#include "autoconfig.h"

#include <string.h>

#include "flows/prompt.h"
#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/revisions.h"
#include "lib/tmpl.h"

int
prompt_render(const struct config *cfg, const char *revision, const char *file,
    const struct cJSON *vars, struct arena *a, const char **text,
    char hash[65], struct err *e)
{
	const char *src;
	struct buf out = BUF_INIT;
	struct tmpl *t;
	size_t len;
	int rc;

	*text = NULL;
	if (rev_read(cfg, revision, file, a, &src, &len, hash, e) != 0)
		return -1;
	if ((t = tmpl_parse(src, len, file, e)) == NULL)
		return -1;
	rc = tmpl_render(t, vars, &out, e);
	tmpl_free(t);
	if (rc == 0)
		*text = arena_strndup(a, out.data != NULL ? out.data : "", out.len);
	buf_free(&out);
	return rc;
}
