/*
 * fuzz_tmpl.c -- libFuzzer target for the prompt templates (lib/tmpl.c).
 *
 * Arbitrary bytes are parsed (from a copy of exactly their size, so ASan
 * catches any read past the end); a refusal must be a 400 whose message
 * starts with "<name>:<line>:<col>: ".  What parses is rendered twice with a
 * fixed small object of variables: both renderings must agree, stay within
 * TMPL_MAX_OUTPUT, and a failure must be a 400 with a position.  The
 * variable listing must be distinct names.  Built only by `make check` when
 * clang is found.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vars_text[] =
    "{\"request\":{\"user_prompt\":\"hi\",\"thread_id\":null,\"topic\":\"\","
    "\"n\":3,\"f\":0.5},\"agents\":{\"a\":\"x\",\"b\":{\"c\":[1,2]}},"
    "\"l\":[1,\"two\",{\"k\":[true,false]},[],null,{\"l\":[0,[1,[2]]]}],"
    "\"s\":\"str\",\"o\":{\"0\":\"z\",\"x\":{}},\"e\":\"\",\"t\":true,"
    "\"big\":[[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8]]}";

/* "<name>:<line>:<col>: " with line and col positive numbers */
static int
has_position(const char *msg)
{
	unsigned line = 0, col = 0;
	int n = 0;

	if (strncmp(msg, "f:", 2) != 0)
		return 0;
	if (sscanf(msg + 2, "%u:%u: %n", &line, &col, &n) != 2 || n == 0)
		return 0;
	return line > 0 && col > 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cJSON *vars;
	struct buf a = BUF_INIT, b = BUF_INIT;
	char *copy = malloc(size ? size : 1);
	struct tmpl *t;
	struct err e;
	size_t i, j;
	int ra, rb;

	if (vars == NULL && (vars = cJSON_Parse(vars_text)) == NULL)
		abort();
	memcpy(copy, data, size);
	err_clear(&e);
	t = tmpl_parse(copy, size, "f", &e);
	if (t == NULL) {
		if (e.status != 400 || !has_position(e.msg))
			abort();
		free(copy);
		return 0;
	}
	for (i = 0; i < tmpl_var_count(t); i++) {
		if (tmpl_var_at(t, i) == NULL || tmpl_var_at(t, i)[0] == '\0')
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(tmpl_var_at(t, i), tmpl_var_at(t, j)) == 0)
				abort();
	}
	if (tmpl_var_at(t, tmpl_var_count(t)) != NULL)
		abort();
	/* the template owns its copy of the source */
	memset(copy, 'x', size);
	free(copy);
	ra = tmpl_render(t, vars, &a, &e);
	if (ra < 0 && (e.status != 400 || !has_position(e.msg)))
		abort();
	rb = tmpl_render(t, vars, &b, &e);
	if (ra != rb || a.len != b.len || (a.len > 0 &&
	    memcmp(a.data, b.data, a.len) != 0))
		abort();
	if (a.len > TMPL_MAX_OUTPUT)
		abort();
	buf_free(&a);
	buf_free(&b);
	tmpl_free(t);
	return 0;
}
