/*
 * tmpl.c -- prompt templates (lib/tmpl.h): a one-pass parser from the Jinja
 * subset to a small tree of nodes, and a renderer of that tree over one
 * cJSON object of variables.
 *
 * It owns the template language and nothing else: it never reads a file,
 * never logs and never calls anything a template names.  A parsed template
 * is immutable; tmpl_render only reads it and the variables (its state lives
 * on its own stack), so any number of threads may render one template at
 * once.  Rendering allocates nothing but the output and the compact text of
 * the JSON values it prints, and stops at TMPL_MAX_OUTPUT bytes and
 * TMPL_MAX_ITERATIONS loop bodies.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/tmpl.h"
#include "lib/xmalloc.h"

#define TMPL_STATUS 400         /* every template error is the caller's */
#define TMPL_FOUND_MAX 40       /* bytes of a name quoted in a message */
#define TMPL_PATH_TEXT_MAX 200  /* bytes of a path quoted in a message */
#define TMPL_TAGS "if, elif, else, endif, for, endfor"

/* Where a path starts. */
enum tmpl_root {
	TMPL_ROOT_VAR,          /* a member of the variables */
	TMPL_ROOT_ITEM,         /* the variable of an enclosing for */
	TMPL_ROOT_LOOP,         /* loop.index, loop.first, loop.last */
};

enum tmpl_loop_attr {
	TMPL_LOOP_INDEX,
	TMPL_LOOP_FIRST,
	TMPL_LOOP_LAST,
};

/* A dotted path: parts[0] is the root name, the others keys of objects or
 * indexes of lists (all digits). */
struct tmpl_path {
	enum tmpl_root root;
	unsigned level;                 /* ITEM, LOOP: the for (0 = outermost) */
	enum tmpl_loop_attr attr;       /* LOOP */
	char **parts;                   /* owned */
	size_t n_parts;                 /* 0: no path (an else branch) */
};

enum tmpl_node_kind {
	TMPL_NODE_TEXT,                 /* text, or a {{ "literal" }} */
	TMPL_NODE_VALUE,                /* {{ path }} */
	TMPL_NODE_IF,
	TMPL_NODE_FOR,
};

/* One branch of an if: if, elif (cond set) or else (cond.n_parts == 0). */
struct tmpl_branch {
	struct tmpl_path cond;
	bool negate;                    /* an odd number of `not` */
	struct tmpl_node *body;
	struct tmpl_branch *next;
};

struct tmpl_node {
	enum tmpl_node_kind kind;
	unsigned line, col;             /* where it starts in the source */
	struct tmpl_node *next;
	/* TEXT */
	const char *text;               /* into tmpl.src, or `owned` */
	size_t len;
	char *owned;
	/* VALUE: the path and its default; FOR: the list */
	struct tmpl_path path;
	char *def;
	size_t def_len;
	bool has_def;
	/* IF */
	struct tmpl_branch *branches;
	/* FOR */
	char *var;                      /* the loop variable */
	unsigned level;                 /* how many fors enclose this one */
	struct tmpl_node *body;
};

struct tmpl {
	char *name;
	char *src;                      /* a NUL-terminated copy of the source */
	size_t len;
	struct tmpl_node *root;
	char **vars;                    /* distinct root names, first use first */
	size_t n_vars, cap_vars;
};

/* An if or a for whose end tag has not been seen yet. */
struct tmpl_open {
	struct tmpl_node *node;
	struct tmpl_branch *branch;     /* IF: the branch being filled */
	bool seen_else;
	struct tmpl_node **outer_tail;  /* where the node after the block goes */
};

struct tmpl_parser {
	struct tmpl *t;
	const char *s;                  /* t->src; s[len] is a NUL sentinel */
	size_t len;
	struct err *e;
	struct tmpl_node **tail;        /* where the next node goes */
	struct tmpl_open open[TMPL_MAX_DEPTH];
	size_t depth;
	unsigned for_depth;
	size_t tag;                     /* offset of the tag being parsed */
	char tag_kind;                  /* '{', '%' or '#' */
	/* the locator: line and column of loc_off, moved forward on demand */
	size_t loc_off;
	unsigned loc_line, loc_col;
};

/* ---- positions and messages --------------------------------------------- */

/* Line and column (1-based, in characters) of byte offset `off`. */
static void
tmpl_locate(struct tmpl_parser *ps, size_t off, unsigned *line, unsigned *col)
{
	size_t i;

	if (off < ps->loc_off) {
		ps->loc_off = 0;
		ps->loc_line = 1;
		ps->loc_col = 1;
	}
	for (i = ps->loc_off; i < off && i < ps->len; i++) {
		unsigned char c = (unsigned char)ps->s[i];

		if (c == '\n') {
			ps->loc_line++;
			ps->loc_col = 1;
		} else if ((c & 0xc0) != 0x80) {
			ps->loc_col++;
		}
	}
	ps->loc_off = i;
	*line = ps->loc_line;
	*col = ps->loc_col;
}

/* Set e to "<name>:<line>:<col>: <message>" for offset `off`; returns -1. */
static int ING_PRINTF(3, 4)
tmpl_fail(struct tmpl_parser *ps, size_t off, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	unsigned line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tmpl_locate(ps, off, &line, &col);
	return err_set(ps->e, TMPL_STATUS, "%s:%u:%u: %s", ps->t->name, line,
	    col, msg);
}

static bool
tmpl_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

static bool
tmpl_is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
tmpl_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t
tmpl_name_len(const char *s)
{
	size_t n = 0;

	while (tmpl_is_name_start(s[n]) || tmpl_is_digit(s[n]))
		n++;
	return n;
}

static size_t
tmpl_skip_ws(const struct tmpl_parser *ps, size_t p)
{
	while (p < ps->len && tmpl_is_ws(ps->s[p]))
		p++;
	return p;
}

/* Whether the `n` bytes at s are the word w. */
static bool
tmpl_word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* Bytes of the UTF-8 character whose lead byte is c (the source is valid). */
static size_t
tmpl_char_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c < 0xe0)
		return 2;
	if (c < 0xf0)
		return 3;
	return 4;
}

/* What is at offset p, for "found ..." in a message. */
static void
tmpl_describe(const struct tmpl_parser *ps, size_t p, char *out, size_t size)
{
	const char *s = ps->s + p;
	static const char *const closers[] = { "-}}", "-%}", "}}", "%}", "#}" };
	unsigned char c = (unsigned char)s[0];
	size_t i, n;

	if (p >= ps->len) {
		snprintf(out, size, "the end of the template");
		return;
	}
	if (tmpl_is_name_start(s[0]) || tmpl_is_digit(s[0])) {
		n = tmpl_name_len(s);
		if (n > TMPL_FOUND_MAX)
			snprintf(out, size, "\"%.*s...\"", TMPL_FOUND_MAX, s);
		else
			snprintf(out, size, "\"%.*s\"", (int)n, s);
		return;
	}
	if (c == '"' || c == '\'') {
		snprintf(out, size, "a string");
		return;
	}
	for (i = 0; i < sizeof(closers) / sizeof(closers[0]); i++)
		if (strncmp(s, closers[i], strlen(closers[i])) == 0) {
			snprintf(out, size, "\"%s\"", closers[i]);
			return;
		}
	if (c == ' ' || c == '\t' || c == '\n') {
		snprintf(out, size, "%s", c == ' ' ? "a space" : c == '\t' ?
		    "a tab" : "a line break");
		return;
	}
	if (c < 0x20 || c == 0x7f) {
		snprintf(out, size, "byte 0x%02x", c);
		return;
	}
	snprintf(out, size, "\"%.*s\"", (int)tmpl_char_len(c), s);
}

/* "unterminated {{" and the like, at the tag's opening. */
static int
tmpl_unterminated(struct tmpl_parser *ps)
{
	const char *closer = ps->tag_kind == '{' ? "}}" :
	    ps->tag_kind == '%' ? "%}" : "#}";

	return tmpl_fail(ps, ps->tag,
	    "unterminated {%c: no %s before the end of the template",
	    ps->tag_kind, closer);
}

/* Why what is at p cannot follow an expression (a hint after the message). */
static const char *
tmpl_hint(const struct tmpl_parser *ps, size_t p)
{
	const char *s = ps->s + p;
	size_t n;

	if (p >= ps->len || strncmp(s, "-}}", 3) == 0 ||
	    strncmp(s, "-%}", 3) == 0 || (s[1] == '}' && strchr("}%#", s[0])))
		return "";
	if (s[0] == '(')
		return ": function calls are not supported";
	if (s[0] == '[')
		return ": subscripts are not supported, write a.0 or a.key";
	if (strchr("+-*/%~", s[0]) != NULL)
		return ": operators are not supported";
	if (strchr("=<>!", s[0]) != NULL)
		return ": comparisons are not supported";
	if (tmpl_is_name_start(s[0])) {
		n = tmpl_name_len(s);
		if (tmpl_word_is(s, n, "and") || tmpl_word_is(s, n, "or"))
			return ": and/or are not supported, nest {% if %} blocks instead";
	}
	return "";
}

/* "expected <what>, found <what is at p>", or unterminated at the end. */
static int
tmpl_fail_found(struct tmpl_parser *ps, size_t p, const char *expected)
{
	char found[64];

	if (p >= ps->len)
		return tmpl_unterminated(ps);
	tmpl_describe(ps, p, found, sizeof(found));
	return tmpl_fail(ps, p, "expected %s, found %s", expected, found);
}

/* The same after a complete path or default, with why what follows cannot
 * continue it. */
static int
tmpl_fail_after(struct tmpl_parser *ps, size_t p, const char *expected)
{
	char found[64];

	if (p >= ps->len)
		return tmpl_unterminated(ps);
	tmpl_describe(ps, p, found, sizeof(found));
	return tmpl_fail(ps, p, "expected %s, found %s%s", expected, found,
	    tmpl_hint(ps, p));
}

/* ---- building the tree ---------------------------------------------------- */

/* A node of `kind` at offset off, appended where the next node goes. */
static struct tmpl_node *
tmpl_new_node(struct tmpl_parser *ps, enum tmpl_node_kind kind, size_t off)
{
	struct tmpl_node *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	tmpl_locate(ps, off, &n->line, &n->col);
	*ps->tail = n;
	ps->tail = &n->next;
	return n;
}

static void
tmpl_add_var(struct tmpl *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n_vars; i++)
		if (strcmp(t->vars[i], name) == 0)
			return;
	if (t->n_vars == t->cap_vars) {
		t->cap_vars = t->cap_vars ? 2 * t->cap_vars : 8;
		t->vars = xrealloc(t->vars, t->cap_vars * sizeof(*t->vars));
	}
	t->vars[t->n_vars++] = xstrdup(name);
}

static void
tmpl_path_push(struct tmpl_path *path, const char *s, size_t n)
{
	path->parts = xrealloc(path->parts,
	    (path->n_parts + 1) * sizeof(*path->parts));
	path->parts[path->n_parts++] = xstrndup(s, n);
}

/* What the root of a path names: the variable of an enclosing for, loop,
 * or a variable (then recorded for tmpl_var_at). */
static int
tmpl_resolve_root(struct tmpl_parser *ps, size_t start, struct tmpl_path *path)
{
	const char *root = path->parts[0];
	size_t i;

	if (strcmp(root, "loop") == 0) {
		if (ps->for_depth == 0)
			return tmpl_fail(ps, start,
			    "\"loop\" is only defined inside {%% for %%}");
		if (path->n_parts != 2)
			return tmpl_fail(ps, start,
			    "expected loop.index, loop.first or loop.last");
		if (strcmp(path->parts[1], "index") == 0)
			path->attr = TMPL_LOOP_INDEX;
		else if (strcmp(path->parts[1], "first") == 0)
			path->attr = TMPL_LOOP_FIRST;
		else if (strcmp(path->parts[1], "last") == 0)
			path->attr = TMPL_LOOP_LAST;
		else
			return tmpl_fail(ps, start,
			    "\"loop.%.*s\" is not supported: only loop.index, "
			    "loop.first and loop.last are", TMPL_FOUND_MAX,
			    path->parts[1]);
		path->root = TMPL_ROOT_LOOP;
		path->level = ps->for_depth - 1;
		return 0;
	}
	for (i = ps->depth; i-- > 0;) {
		const struct tmpl_node *n = ps->open[i].node;

		if (n->kind == TMPL_NODE_FOR && strcmp(n->var, root) == 0) {
			path->root = TMPL_ROOT_ITEM;
			path->level = n->level;
			return 0;
		}
	}
	path->root = TMPL_ROOT_VAR;
	tmpl_add_var(ps->t, root);
	return 0;
}

/* A path at *pp (which starts with a name): name(.name|.digits)*. */
static int
tmpl_parse_path(struct tmpl_parser *ps, size_t *pp, struct tmpl_path *path)
{
	size_t start = *pp, p = *pp, n;

	n = tmpl_name_len(ps->s + p);
	tmpl_path_push(path, ps->s + p, n);
	p += n;
	while (ps->s[p] == '.') {
		p++;
		if (!tmpl_is_name_start(ps->s[p]) && !tmpl_is_digit(ps->s[p]))
			return tmpl_fail_found(ps, p,
			    "a name or a number after \".\"");
		n = tmpl_name_len(ps->s + p);
		if (tmpl_is_digit(ps->s[p])) {
			size_t d = 0;

			while (tmpl_is_digit(ps->s[p + d]))
				d++;
			if (d != n)     /* "0abc" */
				return tmpl_fail(ps, p, "\"%.*s\" is neither a "
				    "name nor a number", (int)(n > TMPL_FOUND_MAX ?
				    TMPL_FOUND_MAX : n), ps->s + p);
		}
		tmpl_path_push(path, ps->s + p, n);
		p += n;
	}
	*pp = p;
	return tmpl_resolve_root(ps, start, path);
}

/* A quoted string at *pp ("..." or '...', with \\ \" \' \n \t \r) into a
 * fresh *out of *out_len bytes. */
static int
tmpl_parse_string(struct tmpl_parser *ps, size_t *pp, char **out,
    size_t *out_len)
{
	size_t start = *pp, p = *pp + 1;
	char quote = ps->s[start];
	struct buf b = BUF_INIT;

	for (;;) {
		char c = ps->s[p];

		if (p >= ps->len) {
			buf_free(&b);
			return tmpl_fail(ps, start, "unterminated string");
		}
		if (c == quote)
			break;
		if (c == '\\') {
			char x = ps->s[p + 1];

			switch (x) {
			case '\\': case '"': case '\'':
				break;
			case 'n':
				x = '\n';
				break;
			case 't':
				x = '\t';
				break;
			case 'r':
				x = '\r';
				break;
			default:
				buf_free(&b);
				if (p + 1 >= ps->len)
					return tmpl_fail(ps, start,
					    "unterminated string");
				return tmpl_fail(ps, p, "unknown escape \"\\%.*s\" "
				    "in a string: only \\\\, \\\", \\', \\n, \\t and "
				    "\\r are", (int)tmpl_char_len((unsigned char)x),
				    ps->s + p + 1);
			}
			buf_putc(&b, x);
			p += 2;
			continue;
		}
		buf_putc(&b, c);
		p++;
	}
	*out_len = b.len;
	*out = xmalloc(b.len + 1);
	if (b.len > 0)
		memcpy(*out, b.data, b.len);
	(*out)[b.len] = '\0';
	buf_free(&b);
	*pp = p + 1;
	return 0;
}

/* If the tag's closer ("}}" or "%}", optionally "-}}" / "-%}") is at *pp,
 * step over it, set *trim_after to whether it had the "-", return true. */
static bool
tmpl_close(const struct tmpl_parser *ps, size_t *pp, bool *trim_after)
{
	const char *s = ps->s + *pp;
	char c = ps->tag_kind == '{' ? '}' : ps->tag_kind;

	if (s[0] == '-' && s[1] == c && s[2] == '}') {
		*trim_after = true;
		*pp += 3;
		return true;
	}
	if (s[0] == c && s[1] == '}') {
		*trim_after = false;
		*pp += 2;
		return true;
	}
	return false;
}

/* {{ path | default("text") }} or {{ "literal" }}; p is past "{{" / "{{-". */
static int
tmpl_parse_value(struct tmpl_parser *ps, size_t p, size_t *pos, bool *trim)
{
	struct tmpl_node *n = tmpl_new_node(ps, TMPL_NODE_VALUE, ps->tag);
	size_t fn;

	p = tmpl_skip_ws(ps, p);
	if (ps->s[p] == '"' || ps->s[p] == '\'') {
		n->kind = TMPL_NODE_TEXT;
		if (tmpl_parse_string(ps, &p, &n->owned, &n->len) < 0)
			return -1;
		n->text = n->owned;
	} else if (tmpl_is_name_start(ps->s[p])) {
		if (tmpl_parse_path(ps, &p, &n->path) < 0)
			return -1;
	} else {
		return tmpl_fail_found(ps, p, "a variable name");
	}
	p = tmpl_skip_ws(ps, p);
	while (ps->s[p] == '|') {
		p = tmpl_skip_ws(ps, p + 1);
		if (!tmpl_is_name_start(ps->s[p]))
			return tmpl_fail_found(ps, p, "a filter name");
		fn = tmpl_name_len(ps->s + p);
		if (!tmpl_word_is(ps->s + p, fn, "default"))
			return tmpl_fail(ps, p, "filter \"%.*s\" is not supported: "
			    "only default(\"...\") is",
			    (int)(fn > TMPL_FOUND_MAX ? TMPL_FOUND_MAX : fn),
			    ps->s + p);
		if (n->has_def)
			return tmpl_fail(ps, p, "default is given twice");
		p = tmpl_skip_ws(ps, p + fn);
		if (ps->s[p] != '(')
			return tmpl_fail_found(ps, p, "\"(\" after default");
		p = tmpl_skip_ws(ps, p + 1);
		if (ps->s[p] != '"' && ps->s[p] != '\'')
			return tmpl_fail_found(ps, p, "a string in default(...)");
		if (tmpl_parse_string(ps, &p, &n->def, &n->def_len) < 0)
			return -1;
		n->has_def = true;
		p = tmpl_skip_ws(ps, p);
		if (ps->s[p] != ')')
			return tmpl_fail_found(ps, p,
			    "\")\" after the default text");
		p = tmpl_skip_ws(ps, p + 1);
	}
	if (!tmpl_close(ps, &p, trim))
		return tmpl_fail_after(ps, p, n->has_def ? "\"}}\"" :
		    "\"|\" or \"}}\"");
	*pos = p;
	return 0;
}

/* The condition of an if or elif: `not`* path. */
static int
tmpl_parse_cond(struct tmpl_parser *ps, size_t *pp, struct tmpl_branch *br)
{
	size_t p = *pp, n;

	for (;;) {
		if (!tmpl_is_name_start(ps->s[p]))
			return tmpl_fail_found(ps, p, "a path (or not and a path)");
		n = tmpl_name_len(ps->s + p);
		if (!tmpl_word_is(ps->s + p, n, "not"))
			break;
		br->negate = !br->negate;
		p = tmpl_skip_ws(ps, p + n);
	}
	if (tmpl_parse_path(ps, &p, &br->cond) < 0)
		return -1;
	*pp = tmpl_skip_ws(ps, p);
	return 0;
}

static const char *
tmpl_block_word(const struct tmpl_node *n)
{
	return n->kind == TMPL_NODE_IF ? "if" : "for";
}

/* An end or middle tag that does not fit the innermost open block. */
static int
tmpl_unexpected(struct tmpl_parser *ps, const char *word)
{
	const struct tmpl_node *top;

	if (ps->depth == 0)
		return tmpl_fail(ps, ps->tag, "unexpected {%% %s %%}", word);
	top = ps->open[ps->depth - 1].node;
	return tmpl_fail(ps, ps->tag, "unexpected {%% %s %%}: the {%% %s %%} "
	    "opened at %u:%u is still open", word, tmpl_block_word(top),
	    top->line, top->col);
}

static struct tmpl_branch *
tmpl_add_branch(struct tmpl_parser *ps, struct tmpl_open *o)
{
	struct tmpl_branch *br = xcalloc(1, sizeof(*br));

	if (o->branch == NULL)
		o->node->branches = br;
	else
		o->branch->next = br;
	o->branch = br;
	ps->tail = &br->body;
	return br;
}

/* Open a block: n is the if or for just made, whose body comes next. */
static struct tmpl_open *
tmpl_push(struct tmpl_parser *ps, struct tmpl_node *n)
{
	struct tmpl_open *o = &ps->open[ps->depth++];

	memset(o, 0, sizeof(*o));
	o->node = n;
	o->outer_tail = ps->tail;
	return o;
}

static void
tmpl_pop(struct tmpl_parser *ps)
{
	struct tmpl_open *o = &ps->open[--ps->depth];

	if (o->node->kind == TMPL_NODE_FOR)
		ps->for_depth--;
	ps->tail = o->outer_tail;
}

/* The end of a tag that takes nothing more: "%}" after the word. */
static int
tmpl_expect_close(struct tmpl_parser *ps, size_t p, const char *word,
    size_t *pos, bool *trim)
{
	char what[32];

	p = tmpl_skip_ws(ps, p);
	if (!tmpl_close(ps, &p, trim)) {
		snprintf(what, sizeof(what), "\"%%}\" after %s", word);
		return tmpl_fail_found(ps, p, what);
	}
	*pos = p;
	return 0;
}

/* {% for name in path %}; p is past the word "for". */
static int
tmpl_parse_for(struct tmpl_parser *ps, size_t p, size_t *pos, bool *trim)
{
	struct tmpl_node *n = tmpl_new_node(ps, TMPL_NODE_FOR, ps->tag);
	size_t vn;

	p = tmpl_skip_ws(ps, p);
	if (!tmpl_is_name_start(ps->s[p]))
		return tmpl_fail_found(ps, p, "a loop variable name");
	vn = tmpl_name_len(ps->s + p);
	if (tmpl_word_is(ps->s + p, vn, "loop"))
		return tmpl_fail(ps, p, "\"loop\" cannot be a loop variable: it "
		    "holds loop.index, loop.first and loop.last");
	n->var = xstrndup(ps->s + p, vn);
	p = tmpl_skip_ws(ps, p + vn);
	if (!tmpl_word_is(ps->s + p, tmpl_name_len(ps->s + p), "in"))
		return tmpl_fail_found(ps, p, "\"in\" after the loop variable");
	p = tmpl_skip_ws(ps, p + 2);
	if (!tmpl_is_name_start(ps->s[p]))
		return tmpl_fail_found(ps, p, "a path to a list");
	/* resolved before the loop variable exists: `for x in x` is the
	 * variable x */
	if (tmpl_parse_path(ps, &p, &n->path) < 0)
		return -1;
	p = tmpl_skip_ws(ps, p);
	if (!tmpl_close(ps, &p, trim))
		return tmpl_fail_after(ps, p, "\"%}\" after the list");
	n->level = ps->for_depth++;
	tmpl_push(ps, n);
	ps->tail = &n->body;
	*pos = p;
	return 0;
}

/* {% ... %}; p is past "{%" / "{%-". */
static int
tmpl_parse_block(struct tmpl_parser *ps, size_t p, size_t *pos, bool *trim)
{
	struct tmpl_open *o = ps->depth > 0 ? &ps->open[ps->depth - 1] : NULL;
	bool in_if = o != NULL && o->node->kind == TMPL_NODE_IF;
	struct tmpl_branch *br;
	struct tmpl_node *n;
	const char *w;
	size_t wn;

	p = tmpl_skip_ws(ps, p);
	if (!tmpl_is_name_start(ps->s[p]))
		return tmpl_fail_found(ps, p, "a tag name (" TMPL_TAGS ")");
	w = ps->s + p;
	wn = tmpl_name_len(w);
	if (tmpl_word_is(w, wn, "if") || tmpl_word_is(w, wn, "for")) {
		if (ps->depth == TMPL_MAX_DEPTH)
			return tmpl_fail(ps, ps->tag, "nesting deeper than %d "
			    "blocks of {%% if %%} and {%% for %%}",
			    TMPL_MAX_DEPTH);
		if (w[0] == 'f')
			return tmpl_parse_for(ps, p + wn, pos, trim);
		n = tmpl_new_node(ps, TMPL_NODE_IF, ps->tag);
		o = tmpl_push(ps, n);
		br = tmpl_add_branch(ps, o);
		p = tmpl_skip_ws(ps, p + wn);
		if (tmpl_parse_cond(ps, &p, br) < 0)
			return -1;
		if (!tmpl_close(ps, &p, trim))
			return tmpl_fail_after(ps, p, "\"%}\" after the condition");
		*pos = p;
		return 0;
	}
	if (tmpl_word_is(w, wn, "elif")) {
		if (!in_if)
			return tmpl_unexpected(ps, "elif");
		if (o->seen_else)
			return tmpl_fail(ps, ps->tag, "{%% elif %%} after {%% else "
			    "%%} (the {%% if %%} opened at %u:%u)",
			    o->node->line, o->node->col);
		br = tmpl_add_branch(ps, o);
		p = tmpl_skip_ws(ps, p + wn);
		if (tmpl_parse_cond(ps, &p, br) < 0)
			return -1;
		if (!tmpl_close(ps, &p, trim))
			return tmpl_fail_after(ps, p, "\"%}\" after the condition");
		*pos = p;
		return 0;
	}
	if (tmpl_word_is(w, wn, "else")) {
		if (!in_if)
			return tmpl_unexpected(ps, "else");
		if (o->seen_else)
			return tmpl_fail(ps, ps->tag, "{%% else %%} after {%% else "
			    "%%} (the {%% if %%} opened at %u:%u)",
			    o->node->line, o->node->col);
		o->seen_else = true;
		(void)tmpl_add_branch(ps, o);
		return tmpl_expect_close(ps, p + wn, "else", pos, trim);
	}
	if (tmpl_word_is(w, wn, "endif") || tmpl_word_is(w, wn, "endfor")) {
		bool want_if = w[3] == 'i';

		if (o == NULL || in_if != want_if)
			return tmpl_unexpected(ps, want_if ? "endif" : "endfor");
		if (tmpl_expect_close(ps, p + wn, want_if ? "endif" : "endfor",
		    pos, trim) < 0)
			return -1;
		tmpl_pop(ps);
		return 0;
	}
	return tmpl_fail(ps, p, "unknown tag \"%.*s\": only " TMPL_TAGS
	    " are allowed", (int)(wn > TMPL_FOUND_MAX ? TMPL_FOUND_MAX : wn), w);
}

/* {# ... #}; p is past "{#" / "{#-". */
static int
tmpl_parse_comment(struct tmpl_parser *ps, size_t p, size_t *pos, bool *trim)
{
	const char *end = NULL;
	size_t q;

	for (q = p; q + 1 < ps->len; q++)
		if (ps->s[q] == '#' && ps->s[q + 1] == '}') {
			end = ps->s + q;
			break;
		}
	if (end == NULL)
		return tmpl_unterminated(ps);
	/* "{#-#}" is one "-", the opening's */
	*trim = q > p && ps->s[q - 1] == '-';
	*pos = q + 2;
	return 0;
}

/* Offset of the next "{{", "{%" or "{#" at or after p, or len. */
static size_t
tmpl_find_tag(const struct tmpl_parser *ps, size_t p)
{
	const char *s = ps->s, *q;

	while (p < ps->len) {
		q = memchr(s + p, '{', ps->len - p);
		if (q == NULL)
			return ps->len;
		p = (size_t)(q - s);
		if (s[p + 1] == '{' || s[p + 1] == '%' || s[p + 1] == '#')
			return p;
		p++;
	}
	return ps->len;
}

/* The source must be UTF-8 without NUL bytes (a NUL would cut the text
 * where a caller reads it as a C string). */
static int
tmpl_check_utf8(struct tmpl_parser *ps)
{
	const unsigned char *s = (const unsigned char *)ps->s;
	size_t i = 0, n, k;

	while (i < ps->len) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xbf;

		if (c == 0)
			return tmpl_fail(ps, i, "NUL byte in the template");
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return tmpl_fail(ps, i, "invalid UTF-8 (byte 0x%02x)", c);
		if (c == 0xe0)
			lo = 0xa0;              /* overlong */
		else if (c == 0xed)
			hi = 0x9f;              /* surrogates */
		else if (c == 0xf0)
			lo = 0x90;              /* overlong */
		else if (c == 0xf4)
			hi = 0x8f;              /* above U+10FFFF */
		for (k = 1; k <= n; k++) {
			unsigned char x = i + k < ps->len ? s[i + k] : 0;

			if (x < (k == 1 ? lo : 0x80) || x > (k == 1 ? hi : 0xbf))
				return tmpl_fail(ps, i,
				    "invalid UTF-8 (byte 0x%02x)", c);
		}
		i += n + 1;
	}
	return 0;
}

static int
tmpl_parse_all(struct tmpl_parser *ps)
{
	size_t pos = 0, tag, a, b, p;
	bool trim_next = false;
	struct tmpl_node *n;
	int rc;

	for (;;) {
		tag = tmpl_find_tag(ps, pos);
		a = pos;
		b = tag;
		if (trim_next)
			while (a < b && tmpl_is_ws(ps->s[a]))
				a++;
		if (tag < ps->len && ps->s[tag + 2] == '-')
			while (b > a && tmpl_is_ws(ps->s[b - 1]))
				b--;
		if (b > a) {
			n = tmpl_new_node(ps, TMPL_NODE_TEXT, a);
			n->text = ps->s + a;
			n->len = b - a;
		}
		if (tag >= ps->len)
			break;
		ps->tag = tag;
		ps->tag_kind = ps->s[tag + 1];
		p = tag + 2;
		if (ps->s[p] == '-')
			p++;
		if (ps->tag_kind == '{')
			rc = tmpl_parse_value(ps, p, &pos, &trim_next);
		else if (ps->tag_kind == '%')
			rc = tmpl_parse_block(ps, p, &pos, &trim_next);
		else
			rc = tmpl_parse_comment(ps, p, &pos, &trim_next);
		if (rc < 0)
			return -1;
	}
	if (ps->depth > 0) {
		const struct tmpl_node *top = ps->open[ps->depth - 1].node;
		bool is_if = top->kind == TMPL_NODE_IF;

		return tmpl_fail(ps, ps->len, "{%% %s %%} without {%% %s %%} "
		    "(opened at %u:%u)", is_if ? "if" : "for",
		    is_if ? "endif" : "endfor", top->line, top->col);
	}
	return 0;
}

struct tmpl *
tmpl_parse(const char *src, size_t len, const char *name, struct err *e)
{
	struct tmpl_parser ps;
	struct tmpl *t = xcalloc(1, sizeof(*t));

	t->name = xstrdup(name != NULL ? name : "template");
	t->src = xmalloc(len + 1);
	if (len > 0)
		memcpy(t->src, src, len);
	t->src[len] = '\0';
	t->len = len;
	memset(&ps, 0, sizeof(ps));
	ps.t = t;
	ps.s = t->src;
	ps.len = len;
	ps.e = e;
	ps.tail = &t->root;
	ps.loc_line = 1;
	ps.loc_col = 1;
	if (tmpl_check_utf8(&ps) < 0 || tmpl_parse_all(&ps) < 0) {
		tmpl_free(t);
		return NULL;
	}
	return t;
}

/* ---- freeing ---------------------------------------------------------------- */

static void
tmpl_path_free(struct tmpl_path *path)
{
	size_t i;

	for (i = 0; i < path->n_parts; i++)
		free(path->parts[i]);
	free(path->parts);
}

/* Recursion only into bodies: as deep as the nesting, at most
 * TMPL_MAX_DEPTH. */
static void
tmpl_nodes_free(struct tmpl_node *n)
{
	struct tmpl_node *next;
	struct tmpl_branch *br, *bnext;

	for (; n != NULL; n = next) {
		next = n->next;
		free(n->owned);
		tmpl_path_free(&n->path);
		free(n->def);
		for (br = n->branches; br != NULL; br = bnext) {
			bnext = br->next;
			tmpl_path_free(&br->cond);
			tmpl_nodes_free(br->body);
			free(br);
		}
		free(n->var);
		tmpl_nodes_free(n->body);
		free(n);
	}
}

void
tmpl_free(struct tmpl *t)
{
	size_t i;

	if (t == NULL)
		return;
	tmpl_nodes_free(t->root);
	for (i = 0; i < t->n_vars; i++)
		free(t->vars[i]);
	free(t->vars);
	free(t->src);
	free(t->name);
	free(t);
}

size_t
tmpl_var_count(const struct tmpl *t)
{
	return t->n_vars;
}

const char *
tmpl_var_at(const struct tmpl *t, size_t i)
{
	return i < t->n_vars ? t->vars[i] : NULL;
}

/* ---- rendering -------------------------------------------------------------- */

/* What a path found. */
enum tmpl_value_kind {
	TMPL_VALUE_MISSING,
	TMPL_VALUE_JSON,
	TMPL_VALUE_INT,                 /* loop.index */
	TMPL_VALUE_BOOL,                /* loop.first, loop.last */
};

struct tmpl_value {
	enum tmpl_value_kind kind;
	const cJSON *json;
	long long n;
	bool b;
};

/* The state of one enclosing for. */
struct tmpl_frame {
	const cJSON *item;
	size_t index;                   /* 1-based */
	bool last;
};

/* One rendering: on the caller's stack, so renderings share nothing. */
struct tmpl_run {
	const struct tmpl *t;
	const cJSON *vars;
	struct buf *out;
	size_t start;                   /* out->len when rendering began */
	size_t iterations;
	struct err *e;
	struct tmpl_frame frames[TMPL_MAX_DEPTH];
};

static int ING_PRINTF(3, 4)
tmpl_run_fail(struct tmpl_run *run, const struct tmpl_node *n,
    const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(run->e, TMPL_STATUS, "%s:%u:%u: %s", run->t->name,
	    n->line, n->col, msg);
}

/* The member `key` of an object; with duplicate names the last one wins,
 * as everywhere else in the server (lib/json.c). */
static const cJSON *
tmpl_member(const cJSON *obj, const char *key)
{
	const cJSON *it, *found = NULL;

	for (it = obj->child; it != NULL; it = it->next)
		if (it->string != NULL && strcmp(it->string, key) == 0)
			found = it;
	return found;
}

/* One step of a path: a key of an object, or an index of a list. */
static const cJSON *
tmpl_step(const cJSON *v, const char *part)
{
	const cJSON *it;
	size_t i, index = 0;

	if (cJSON_IsObject(v))
		return tmpl_member(v, part);
	if (!cJSON_IsArray(v) || !tmpl_is_digit(part[0]))
		return NULL;
	for (i = 0; part[i] != '\0'; i++) {
		if (index > (size_t)1 << 40)    /* longer than any list */
			return NULL;
		index = index * 10 + (size_t)(part[i] - '0');
	}
	for (it = v->child; it != NULL && index > 0; it = it->next)
		index--;
	return it;
}

static void
tmpl_resolve(const struct tmpl_run *run, const struct tmpl_path *path,
    struct tmpl_value *v)
{
	const struct tmpl_frame *f;
	const cJSON *j = NULL;
	size_t i;

	memset(v, 0, sizeof(*v));
	switch (path->root) {
	case TMPL_ROOT_LOOP:
		f = &run->frames[path->level];
		if (path->attr == TMPL_LOOP_INDEX) {
			v->kind = TMPL_VALUE_INT;
			v->n = (long long)f->index;
		} else {
			v->kind = TMPL_VALUE_BOOL;
			v->b = path->attr == TMPL_LOOP_FIRST ? f->index == 1 :
			    f->last;
		}
		return;
	case TMPL_ROOT_ITEM:
		j = run->frames[path->level].item;
		break;
	case TMPL_ROOT_VAR:
		j = cJSON_IsObject(run->vars) ?
		    tmpl_member(run->vars, path->parts[0]) : NULL;
		break;
	}
	for (i = 1; i < path->n_parts && j != NULL; i++)
		j = tmpl_step(j, path->parts[i]);
	if (j != NULL) {
		v->kind = TMPL_VALUE_JSON;
		v->json = j;
	}
}

/* False: missing, null, false, 0, "", [] and {}. */
static bool
tmpl_truthy(const struct tmpl_value *v)
{
	const cJSON *j = v->json;

	switch (v->kind) {
	case TMPL_VALUE_MISSING:
		return false;
	case TMPL_VALUE_INT:
		return v->n != 0;
	case TMPL_VALUE_BOOL:
		return v->b;
	case TMPL_VALUE_JSON:
		break;
	}
	if (cJSON_IsTrue(j))
		return true;
	if (cJSON_IsNumber(j))
		return j->valuedouble != 0;
	if (cJSON_IsString(j) || cJSON_IsRaw(j))
		return j->valuestring != NULL && j->valuestring[0] != '\0';
	if (cJSON_IsArray(j) || cJSON_IsObject(j))
		return j->child != NULL;
	return false;                   /* null, false */
}

static const char *
tmpl_type_name(const struct tmpl_value *v)
{
	const cJSON *j = v->json;

	if (v->kind == TMPL_VALUE_INT || cJSON_IsNumber(j))
		return "a number";
	if (v->kind == TMPL_VALUE_BOOL || cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsObject(j))
		return "an object";
	return "neither a list nor a value a template knows";
}

/* Append n bytes of output, unless that passes TMPL_MAX_OUTPUT. */
static int
tmpl_emit(struct tmpl_run *run, const struct tmpl_node *at, const char *s,
    size_t n)
{
	if (n > TMPL_MAX_OUTPUT - (run->out->len - run->start))
		return tmpl_run_fail(run, at, "output larger than %d bytes",
		    TMPL_MAX_OUTPUT);
	buf_append(run->out, s, n);
	return 0;
}

static int
tmpl_render_value(struct tmpl_run *run, const struct tmpl_node *n)
{
	struct tmpl_value v;
	const cJSON *j;
	char num[32];
	size_t before;

	tmpl_resolve(run, &n->path, &v);
	j = v.json;
	switch (v.kind) {
	case TMPL_VALUE_INT:
		snprintf(num, sizeof(num), "%lld", v.n);
		return tmpl_emit(run, n, num, strlen(num));
	case TMPL_VALUE_BOOL:
		return tmpl_emit(run, n, v.b ? "true" : "false", v.b ? 4 : 5);
	case TMPL_VALUE_MISSING:
		return n->has_def ? tmpl_emit(run, n, n->def, n->def_len) : 0;
	case TMPL_VALUE_JSON:
		break;
	}
	if (cJSON_IsNull(j))
		return n->has_def ? tmpl_emit(run, n, n->def, n->def_len) : 0;
	if (cJSON_IsString(j))
		return tmpl_emit(run, n, j->valuestring, strlen(j->valuestring));
	if (cJSON_IsTrue(j))
		return tmpl_emit(run, n, "true", 4);
	if (cJSON_IsFalse(j))
		return tmpl_emit(run, n, "false", 5);
	/* numbers, lists and objects as cJSON prints them; what passes the
	 * bound is taken back off the (plain, public) buffer */
	before = run->out->len;
	json_append(run->out, j);
	if (run->out->len - run->start > TMPL_MAX_OUTPUT) {
		run->out->len = before;
		return tmpl_run_fail(run, n, "output larger than %d bytes",
		    TMPL_MAX_OUTPUT);
	}
	return 0;
}

static int tmpl_render_nodes(struct tmpl_run *run, const struct tmpl_node *n);

/* The path of a for, as written, for its error message. */
static void
tmpl_path_text(const struct tmpl_path *path, char *out, size_t size)
{
	size_t i, used = 0;
	int w;

	out[0] = '\0';
	for (i = 0; i < path->n_parts && used < size; i++) {
		w = snprintf(out + used, size - used, "%s%s", i ? "." : "",
		    path->parts[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static int
tmpl_render_for(struct tmpl_run *run, const struct tmpl_node *n)
{
	struct tmpl_frame *f = &run->frames[n->level];
	char text[TMPL_PATH_TEXT_MAX];
	struct tmpl_value v;
	const cJSON *it;

	tmpl_resolve(run, &n->path, &v);
	/* nothing to loop over is an empty loop, as in Jinja */
	if (v.kind == TMPL_VALUE_MISSING || (v.kind == TMPL_VALUE_JSON &&
	    cJSON_IsNull(v.json)))
		return 0;
	if (v.kind != TMPL_VALUE_JSON || !cJSON_IsArray(v.json)) {
		tmpl_path_text(&n->path, text, sizeof(text));
		return tmpl_run_fail(run, n, "{%% for %%} over \"%s\", which is "
		    "%s, not a list", text, tmpl_type_name(&v));
	}
	f->index = 0;
	for (it = v.json->child; it != NULL; it = it->next) {
		if (++run->iterations > TMPL_MAX_ITERATIONS)
			return tmpl_run_fail(run, n, "more than %d loop iterations",
			    TMPL_MAX_ITERATIONS);
		f->item = it;
		f->index++;
		f->last = it->next == NULL;
		if (tmpl_render_nodes(run, n->body) < 0)
			return -1;
	}
	return 0;
}

static int
tmpl_render_nodes(struct tmpl_run *run, const struct tmpl_node *n)
{
	const struct tmpl_branch *br;
	struct tmpl_value v;
	int rc = 0;

	for (; n != NULL && rc == 0; n = n->next) {
		switch (n->kind) {
		case TMPL_NODE_TEXT:
			rc = tmpl_emit(run, n, n->text, n->len);
			break;
		case TMPL_NODE_VALUE:
			rc = tmpl_render_value(run, n);
			break;
		case TMPL_NODE_IF:
			for (br = n->branches; br != NULL; br = br->next) {
				if (br->cond.n_parts > 0) {
					tmpl_resolve(run, &br->cond, &v);
					if (tmpl_truthy(&v) == br->negate)
						continue;
				}
				rc = tmpl_render_nodes(run, br->body);
				break;
			}
			break;
		case TMPL_NODE_FOR:
			rc = tmpl_render_for(run, n);
			break;
		}
	}
	return rc;
}

int
tmpl_render(const struct tmpl *t, const struct cJSON *vars, struct buf *out,
    struct err *e)
{
	struct tmpl_run run;

	memset(&run, 0, sizeof(run));
	run.t = t;
	run.vars = vars;
	run.out = out;
	run.start = out->len;
	run.e = e;
	return tmpl_render_nodes(&run, t->root);
}
