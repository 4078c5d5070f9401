/*
 * prompt_pending.c -- TEMPORARY (branch bike): a weak ing_prompt_render
 * that answers 503 until flows/ctx.c defines the real one (the lead's
 * work on issue 10); the strong definition replaces it at link time.
 * Delete this file when that lands.
 */
#include "autoconfig.h"

#include "flows/flow.h"

__attribute__((weak)) int
ing_prompt_render(struct ing_ctx *ctx, const char *revision, const char *file,
    const char *vars_json, struct ing_prompt *out)
{
	(void)revision;
	(void)file;
	(void)vars_json;
	(void)out;
	return ing_error(ctx, 503, "prompt templates are not available");
}
