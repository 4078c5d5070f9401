/*
 * tmpl.h -- prompt templates: the bounded subset of Jinja that flows need,
 * parsed once and rendered many times.
 *
 * The language: text; {{ path }} and {{ path | default("text") }} where a
 * path is a name with dotted parts (request.user_prompt, agents.summary,
 * payload.stores); {% if path %} ... {% elif path %} ... {% else %} ...
 * {% endif %} (a value is true unless it is missing, null, false, 0, "" or
 * an empty list or object; `not path` is allowed); {% for name in path %}
 * ... {% endfor %} over a list (loop.index, loop.first, loop.last inside);
 * {# comments #}; whitespace control with {%- and -%}.  Anything else (a
 * function call, a filter other than default, an include, a macro, set,
 * arithmetic) is a parse error "<name>:<line>:<col>: <what>".  A template
 * never reads a file, calls a function, or loops over anything but the list
 * it is given; rendering is bounded in output size and in loop iterations.
 *
 * Values come from one JSON object (cJSON) of variables; a missing variable
 * renders as "" in {{ }} unless `default` gives a text; strings are inserted
 * as they are (no HTML escaping: prompts are not HTML); numbers as JSON
 * prints them; objects and lists as compact JSON.
 */
#ifndef INGEN_TMPL_H
#define INGEN_TMPL_H

#include <stddef.h>

#include "lib/err.h"

struct buf;
struct cJSON;
struct tmpl;

/* Bounds of one rendering. */
#define TMPL_MAX_OUTPUT (1024 * 1024)   /* bytes */
#define TMPL_MAX_ITERATIONS 100000      /* loop bodies, all loops together */
#define TMPL_MAX_DEPTH 32               /* nested if/for */

/*
 * Parse `len` bytes of `src` (UTF-8).  `name` (a file name) prefixes the
 * messages.  Returns the template (tmpl_free), or NULL with e set to
 * "<name>:<line>:<col>: <what>" (status 400).
 */
struct tmpl *tmpl_parse(const char *src, size_t len, const char *name,
    struct err *e) ING_WUR;

void tmpl_free(struct tmpl *t);

/* The distinct first names of the paths the template uses ("request",
 * "agents", ...), outside loop variables: what a loader checks against the
 * variables it will give. */
size_t tmpl_var_count(const struct tmpl *t);
const char *tmpl_var_at(const struct tmpl *t, size_t i);

/*
 * Render t with the variables of `vars` (a JSON object; NULL = none) onto
 * out.  0, or -1 with e set (400: a for over something that is not a list,
 * the output or iteration bound reached), out then holding what was
 * rendered so far.
 */
int tmpl_render(const struct tmpl *t, const struct cJSON *vars, struct buf *out,
    struct err *e) ING_WUR;

#endif
