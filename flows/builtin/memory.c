/*
 * memory.c -- what the built-in flows share: the reference's memory
 * context of its knowledge-base and SQL flows, the thread's last messages
 * as "Previous conversation:\n<role>: <first 100 characters>...\n...\n\n".
 * It sees only <ingenious/flow.h>.
 */
#include "autoconfig.h"

#include <stddef.h>

#include "flows/builtin/builtin.h"
#include "flows/flow.h"

#define MEMORY_MESSAGES 10          /* the reference's last 10 messages */
#define MEMORY_CHARS 100            /* ... of 100 characters each */

/* The length in bytes of the first n characters (code points) of s. */
static size_t
memory_prefix(const char *s, size_t n)
{
	size_t i = 0;

	while (s[i] != '\0' && n > 0) {
		i++;
		while (((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		n--;
	}
	return i;
}

const char *
builtin_memory_context(struct ing_ctx *ctx, const struct ing_chat_request *req)
{
	size_t i = req->n_history > MEMORY_MESSAGES ?
	    req->n_history - MEMORY_MESSAGES : 0;
	const char *out = "Previous conversation:\n", *sep = "", *c;

	if (req->n_history == 0 || req->history == NULL)
		return "";
	for (; i < req->n_history; i++) {
		c = req->history[i].content != NULL ? req->history[i].content : "";
		out = ing_sprintf(ctx, "%s%s%s: %.*s...", out, sep,
		    req->history[i].role, (int)memory_prefix(c, MEMORY_CHARS), c);
		sep = "\n";
	}
	return ing_sprintf(ctx, "%s\n\n", out);
}
