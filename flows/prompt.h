/*
 * prompt.h -- one prompt template rendered: read from the revisions store
 * (lib/revisions.h) and rendered with the template engine (lib/tmpl.h).
 * The server's services (worker/services.c) and `ingen flow test`
 * (cli/cli_flow.c) render through it, so a flow sees the same text in both.
 */
#ifndef INGEN_PROMPT_H
#define INGEN_PROMPT_H

#include "lib/err.h"

struct arena;
struct config;
struct cJSON;

/*
 * Render <revisions path>/templates/prompts/<revision>/<file> with `vars`
 * (a JSON object; NULL = none): 0 with *text (in a) and hash (the SHA-256
 * hex of the template's content) set; -1 with e set: 400 a bad name or a
 * template error ("file:line:col: ..."), 404 no such template, 413 too
 * large, 500 I/O.  Any thread (nothing is shared between calls).
 */
int prompt_render(const struct config *cfg, const char *revision,
    const char *file, const struct cJSON *vars, struct arena *a,
    const char **text, char hash[65], struct err *e) ING_WUR;

#endif
