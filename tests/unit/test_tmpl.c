/*
 * test_tmpl.c -- unit tests of lib/tmpl.c, the prompt templates: text and
 * values (every JSON type), dotted paths into objects and lists, missing
 * values and default("..."), the truthiness of every JSON type in if, not,
 * elif and else, for with loop.index/first/last and nested loops, comments,
 * whitespace control, every parse error with its exact message and
 * line:col (columns in characters), invalid UTF-8, the nesting, output and
 * iteration bounds, the variable listing, a realistic prompt, and one
 * template rendered by several threads at once.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/tmpl.h"
#include "lib/xmalloc.h"
#include "tests/unit/tap.h"

static char *last;      /* what the last render() returned */

/*
 * Parse src (named "t") and render it with the JSON text vars (NULL: no
 * variables).  Returns the output; "E:<message>" for a parse error;
 * "R:<message>|<output so far>" for a render error.  Valid until the next
 * call.
 */
static const char *
render_n(const char *src, size_t len, const char *vars)
{
	struct buf out = BUF_INIT;
	cJSON *v = NULL;
	struct tmpl *t;
	struct err e;

	free(last);
	err_clear(&e);
	if (vars != NULL && (v = cJSON_Parse(vars)) == NULL) {
		last = xasprintf("bad test JSON: %s", vars);
		return last;
	}
	t = tmpl_parse(src, len, "t", &e);
	if (t == NULL) {
		last = xasprintf("E:%s%s", e.msg, e.status == 400 ? "" : " (not 400)");
	} else if (tmpl_render(t, v, &out, &e) < 0) {
		last = xasprintf("R:%s%s|%s", e.msg, e.status == 400 ? "" :
		    " (not 400)", buf_cstr(&out));
	} else {
		last = xstrdup(buf_cstr(&out));
	}
	tmpl_free(t);
	cJSON_Delete(v);
	buf_free(&out);
	return last;
}

static const char *
render(const char *src, const char *vars)
{
	return render_n(src, strlen(src), vars);
}

/* Parse a NUL-terminated src named "t". */
static struct tmpl *
parse(const char *src, struct err *e)
{
	return tmpl_parse(src, strlen(src), "t", e);
}

#define R(src, vars, want, ...) is_str(render(src, vars), want, __VA_ARGS__)
#define E(src, want) is_str(render(src, NULL), "E:" want, "error: %s", want)

static void
test_text_and_values(void)
{
	const char *v = "{\"s\":\"str\",\"i\":3,\"neg\":-12,\"f\":2.5,"
	    "\"big\":1e20,\"t\":true,\"fa\":false,\"n\":null,"
	    "\"o\":{\"a\":1,\"b\":[1,\"x\"]},\"l\":[1,\"x\",null],"
	    "\"e\":\"\",\"u\":\"h\\u00e9 \\\"q\\\" <b>&amp;\"}";

	R("", NULL, "", "empty template");
	R("hello, world\n", NULL, "hello, world\n", "text only");
	R("a { b } c }} d %} e #}", NULL, "a { b } c }} d %} e #}",
	    "braces that open nothing are text");
	R("{", NULL, "{", "a lone { at the end");
	R("{{ s }}", v, "str", "string");
	R("{{s}}", v, "str", "no spaces");
	R("{{\n  s\n}}", v, "str", "newlines in the tag");
	R("{{ i }}", v, "3", "integer without .0");
	R("{{ neg }}", v, "-12", "negative integer");
	R("{{ f }}", v, "2.5", "fraction");
	R("{{ big }}", v, "1e+20", "large number as cJSON prints it");
	R("{{ t }} {{ fa }}", v, "true false", "booleans");
	R("[{{ n }}]", v, "[]", "null is empty");
	R("{{ o }}", v, "{\"a\":1,\"b\":[1,\"x\"]}", "object as compact JSON");
	R("{{ l }}", v, "[1,\"x\",null]", "list as compact JSON");
	R("[{{ e }}]", v, "[]", "empty string");
	R("{{ u }}", v, "h\xc3\xa9 \"q\" <b>&amp;", "no escaping of any kind");
	R("[{{ nope }}]", v, "[]", "missing is empty");
	R("[{{ nope }}]", NULL, "[]", "no variables at all");
	R("[{{ a }}]", "[1,2]", "[]", "variables that are not an object");
	R("{{ d }}", "{\"d\":1,\"d\":2}", "2", "duplicate names: the last wins");
	R("{{ \"{{ x }}\" }}", NULL, "{{ x }}", "a string literal writes {{");
	R("{{ '}}' }}", NULL, "}}", "single-quoted literal with }}");
	R("{{ \"a\\\"b\\\\c\\nd\\te\\'\" }}", NULL, "a\"b\\c\nd\te'",
	    "escapes in a literal");
}

static void
test_paths(void)
{
	const char *v = "{\"request\":{\"user_prompt\":\"hi\",\"thread_id\":null},"
	    "\"stores\":[{\"name\":\"A\",\"tags\":[\"x\",\"y\"]},{\"name\":\"B\"}],"
	    "\"m\":{\"0\":\"zero\",\"k_1\":{\"deep\":{\"er\":7}}},\"s\":\"str\"}";

	R("{{ request.user_prompt }}", v, "hi", "object by key");
	R("{{ stores.0.name }},{{ stores.1.name }}", v, "A,B", "list by index");
	R("{{ stores.0.tags.1 }}", v, "y", "list in a list element");
	R("[{{ stores.2.name }}]", v, "[]", "index past the end");
	R("[{{ stores.99999999999999999999.name }}]", v, "[]", "huge index");
	R("{{ stores.00 }}", v, "{\"name\":\"A\",\"tags\":[\"x\",\"y\"]}",
	    "leading zeros");
	R("{{ m.0 }}", v, "zero", "a number part is a key of an object");
	R("{{ m.k_1.deep.er }}", v, "7", "deep path");
	R("[{{ stores.name }}]", v, "[]", "a name part on a list");
	R("[{{ s.x }}]", v, "[]", "a part on a string");
	R("[{{ request.thread_id.x }}]", v, "[]", "a part on null");
	R("[{{ request.nope.x }}]", v, "[]", "a part on missing");
	R("[{{ request.thread_id }}]", v, "[]", "null member");
}

static void
test_default(void)
{
	const char *v = "{\"s\":\"x\",\"n\":null,\"e\":\"\",\"z\":0,\"f\":false,"
	    "\"o\":{\"a\":null}}";

	R("{{ nope | default(\"dflt\") }}", v, "dflt", "missing takes default");
	R("{{ n | default(\"dflt\") }}", v, "dflt", "null takes default");
	R("{{ o.a | default(\"dflt\") }}", v, "dflt", "null member takes default");
	R("{{ o.b.c | default(\"dflt\") }}", v, "dflt", "missing path takes default");
	R("{{ s | default(\"dflt\") }}", v, "x", "a value keeps its value");
	R("[{{ e | default(\"dflt\") }}]", v, "[]", "\"\" is a value");
	R("{{ z | default(\"dflt\") }}", v, "0", "0 is a value");
	R("{{ f | default(\"dflt\") }}", v, "false", "false is a value");
	R("{{ nope | default('single') }}", v, "single", "single quotes");
	R("{{nope|default(\"tight\")}}", v, "tight", "no spaces");
	R("{{ nope |\n default (\n \"spaced\" ) }}", v, "spaced", "spaces and newlines");
	R("[{{ nope | default(\"\") }}]", v, "[]", "empty default");
	R("{{ nope | default(\"{{ \\\"q\\\" }}\") }}", v, "{{ \"q\" }}",
	    "default with braces and escapes");
	R("{{ nope | default('it\\'s') }}", v, "it's", "escaped single quote");
	R("{{ nope | default(\"h\xc3\xa9\") }}", v, "h\xc3\xa9", "UTF-8 default");
}

/* Every JSON type in if and in not. */
static void
test_truthiness(void)
{
	static const struct {
		const char *json;
		int truthy;
	} cases[] = {
		{ "null", 0 }, { "false", 0 }, { "true", 1 }, { "0", 0 },
		{ "0.0", 0 }, { "-0", 0 }, { "1", 1 }, { "-1", 1 }, { "0.5", 1 },
		{ "\"\"", 0 }, { "\"0\"", 1 }, { "\"false\"", 1 }, { "\" \"", 1 },
		{ "[]", 0 }, { "[0]", 1 }, { "[null]", 1 }, { "{}", 0 },
		{ "{\"a\":null}", 1 },
	};
	char vars[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(vars, sizeof(vars), "{\"v\":%s}", cases[i].json);
		R("{% if v %}T{% else %}F{% endif %}", vars,
		    cases[i].truthy ? "T" : "F", "if %s", cases[i].json);
		R("{% if not v %}T{% else %}F{% endif %}", vars,
		    cases[i].truthy ? "F" : "T", "if not %s", cases[i].json);
	}
	R("{% if v %}T{% else %}F{% endif %}", "{}", "F", "if missing");
	R("{% if not v %}T{% endif %}", "{}", "T", "if not missing");
	R("{% if not not v %}T{% else %}F{% endif %}", "{\"v\":1}", "T", "not not");
	R("{% if v.a.b %}T{% else %}F{% endif %}", "{\"v\":{\"a\":{\"b\":[1]}}}",
	    "T", "if on a path");
	R("{% if v.1 %}T{% else %}F{% endif %}", "{\"v\":[1,0]}", "F",
	    "if on a list element");
	R("{% if note %}T{% else %}F{% endif %}", "{\"note\":1}", "T",
	    "a name that starts with not");
}

static void
test_if(void)
{
	const char *v = "{\"a\":1,\"b\":0,\"c\":\"yes\"}";

	R("x{% if a %}A{% endif %}y", v, "xAy", "if true");
	R("x{% if b %}B{% endif %}y", v, "xy", "if false");
	R("{% if b %}B{% elif a %}A{% else %}E{% endif %}", v, "A", "elif taken");
	R("{% if b %}B{% elif nope %}N{% else %}E{% endif %}", v, "E", "else taken");
	R("{% if b %}B{% elif nope %}N{% elif c %}C{% endif %}", v, "C",
	    "second elif");
	R("{% if b %}B{% elif not c %}N{% endif %}", v, "", "no branch taken");
	R("{% if a %}1{% elif c %}2{% else %}3{% endif %}", v, "1",
	    "first true branch only");
	R("{% if a %}{% if b %}AB{% else %}A!B{% endif %}{% endif %}", v, "A!B",
	    "nested if");
	R("{%if a%}tight{%endif%}", v, "tight", "no spaces in tags");
	R("{% if a %}{% endif %}", v, "", "empty body");
}

static void
test_for(void)
{
	const char *v = "{\"l\":[\"a\",\"b\",\"c\"],\"one\":[1],\"none\":[],"
	    "\"n\":null,\"s\":\"str\",\"o\":{\"k\":1},\"x\":\"outer\","
	    "\"stores\":[{\"name\":\"A\",\"items\":[1,2]},{\"name\":\"B\","
	    "\"items\":[]},{\"name\":\"C\",\"items\":[3]}],\"m\":[[1,2],[3]]}";

	R("{% for i in l %}{{ i }}{% endfor %}", v, "abc", "for over strings");
	R("{% for i in l %}{{ loop.index }}:{{ i }} {% endfor %}", v,
	    "1:a 2:b 3:c ", "loop.index is 1-based");
	R("{% for i in l %}{{ loop.first }}/{{ loop.last }} {% endfor %}", v,
	    "true/false false/false false/true ", "loop.first and loop.last");
	R("{% for i in one %}{{ loop.first }}/{{ loop.last }}{% endfor %}", v,
	    "true/true", "one element is first and last");
	R("{% for i in l %}{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}",
	    v, "a, b, c", "a comma list");
	R("{% for i in l %}{% if loop.index %}{{ loop.index }}{% endif %}{% endfor %}",
	    v, "123", "loop.index is truthy");
	R("[{% for i in none %}x{% endfor %}]", v, "[]", "empty list");
	R("[{% for i in nope %}x{% endfor %}]", v, "[]", "missing list: no loop");
	R("[{% for i in n %}x{% endfor %}]", v, "[]", "null list: no loop");
	R("{% for s in stores %}{{ s.name }}({% for i in s.items %}{{ i }}"
	    "{% endfor %}){% endfor %}", v, "A(12)B()C(3)",
	    "nested for over a loop variable's list");
	R("{% for s in stores %}{% for i in s.items %}{{ loop.index }}"
	    "{% endfor %}{{ loop.index }};{% endfor %}", v, "121;2;13;",
	    "loop is the innermost for");
	R("{% for r in m %}{% for c in r %}{{ r }}{{ c }} {% endfor %}"
	    "{% endfor %}", v, "[1,2]1 [1,2]2 [3]3 ", "the outer variable inside");
	R("{{ x }}{% for x in l %}{{ x }}{% endfor %}{{ x }}", v, "outerabcouter",
	    "a loop variable shadows only inside");
	R("{% for x in l %}{% for x in one %}{{ x }}{% endfor %}{{ x }}"
	    "{% endfor %}", v, "1a1b1c", "an inner loop variable shadows an outer one");
	R("{% for x in x %}{{ x }}{% endfor %}", "{\"x\":[\"p\",\"q\"]}", "pq",
	    "for x in x: the list is the variable");
	R("{% for i in stores.0.items %}{{ i }}{% endfor %}", v, "12",
	    "for over a path into a list");
	R("{% for s in stores %}{% if s.items %}{{ s.name }}{% endif %}"
	    "{% endfor %}", v, "AC", "if on a loop variable");
	R("{% for s in stores %}{{ s.items.0 | default(\"-\") }}{% endfor %}", v,
	    "1-3", "default on a loop variable path");
	R("{% for s in s %}x{% endfor %}", v,
	    "R:t:1:1: {% for %} over \"s\", which is a string, not a list|",
	    "for over a string");
	R("ab{% for k in o %}x{% endfor %}", v,
	    "R:t:1:3: {% for %} over \"o\", which is an object, not a list|ab",
	    "for over an object");
	R("{% for k in stores.0.name.x %}{% endfor %}{% for k in stores.0.name %}"
	    "{% endfor %}", v,
	    "R:t:1:43: {% for %} over \"stores.0.name\", which is a string, not a list|",
	    "for over a path to a string");
	R("{% for k in one.0 %}{% endfor %}", v,
	    "R:t:1:1: {% for %} over \"one.0\", which is a number, not a list|",
	    "for over a number");
	R("{% for k in l %}{% for j in loop.first %}{% endfor %}{% endfor %}", v,
	    "R:t:1:17: {% for %} over \"loop.first\", which is a boolean, not a list|",
	    "for over loop.first");
}

static void
test_comments(void)
{
	R("a{# a comment #}b", NULL, "ab", "comment");
	R("a{# {{ x }} {% if %} #}b", NULL, "ab", "tags in a comment are not parsed");
	R("a{#\nline\nline\n#}b", NULL, "ab", "multi-line comment");
	R("a{##}b", NULL, "ab", "empty comment");
	R("a {#- x -#} b", NULL, "ab", "comment with whitespace control");
	R("a {#-#} b", NULL, "a b", "{#-#} trims the left only");
	R("a{# } # #}b", NULL, "ab", "} and # in a comment");
}

static void
test_whitespace(void)
{
	const char *v = "{\"x\":\"X\",\"l\":[\"a\",\"b\"],\"t\":true}";

	R("a  {{ x }}  b", v, "a  X  b", "no control keeps whitespace");
	R("a  {{- x }}  b", v, "aX  b", "{{- strips the left");
	R("a  {{ x -}}  b", v, "a  Xb", "-}} strips the right");
	R("a \n\t {{- x -}} \r\n b", v, "aXb", "newlines, tabs and CR too");
	R("a {{-x-}} b", v, "aXb", "no spaces around the dashes");
	R("a {{- \"lit\" -}} b", v, "alitb", "on a literal");
	R("a {{- x | default(\"d\") -}} b", v, "aXb", "with a default");
	R("<{%- if t -%}  y  {%- endif -%}>", v, "<y>", "blocks both sides");
	R("<  {% if t -%}  y  {%- endif %}  >", v, "<  y  >", "inner sides only");
	R("Stores:\n{% for s in l -%}\n- {{ s }}\n{% endfor -%}\nEnd", v,
	    "Stores:\n- a\n- b\nEnd", "a line per element");
	R("{% for s in l %}\n  {{- s }}\n{%- endfor %}", v, "ab",
	    "strip both sides inside a loop");
	R("x\n\n  {%- if t %}\n{% endif %}", v, "x\n", "only whitespace is stripped");
	R("a {{ x }}{{- x }}", v, "a XX", "nothing between two tags");
	R("a   ", v, "a   ", "trailing whitespace of the template is kept");
	R("{% if t %}\nA\n{% endif %}\n", v, "\nA\n\n",
	    "newlines after tags are kept without control (as Jinja's defaults)");
}

/* Every parse error: exact message, line and column. */
static void
test_errors(void)
{
	E("ok\n\n{% include \"x\" %}",
	    "t:3:4: unknown tag \"include\": only if, elif, else, endif, for, endfor are allowed");
	E("{% set x = 1 %}",
	    "t:1:4: unknown tag \"set\": only if, elif, else, endif, for, endfor are allowed");
	E("{% macro m() %}{% endmacro %}",
	    "t:1:4: unknown tag \"macro\": only if, elif, else, endif, for, endfor are allowed");
	E("{% raw %}",
	    "t:1:4: unknown tag \"raw\": only if, elif, else, endif, for, endfor are allowed");
	E("{% %}", "t:1:4: expected a tag name (if, elif, else, endif, for, endfor), found \"%}\"");
	E("{%- -%}", "t:1:5: expected a tag name (if, elif, else, endif, for, endfor), found \"-%}\"");
	E("{% 3 %}", "t:1:4: expected a tag name (if, elif, else, endif, for, endfor), found \"3\"");
	E("{{ x | upper }}", "t:1:8: filter \"upper\" is not supported: only default(\"...\") is");
	E("{{ x | default(\"a\") | trim }}",
	    "t:1:23: filter \"trim\" is not supported: only default(\"...\") is");
	E("{{ x | default(\"a\") | default(\"b\") }}", "t:1:23: default is given twice");
	E("{{ x | }}", "t:1:8: expected a filter name, found \"}}\"");
	E("{{ x | default }}", "t:1:16: expected \"(\" after default, found \"}}\"");
	E("{{ x | default(5) }}", "t:1:16: expected a string in default(...), found \"5\"");
	E("{{ x | default(y) }}", "t:1:16: expected a string in default(...), found \"y\"");
	E("{{ x | default(\"a\", true) }}",
	    "t:1:19: expected \")\" after the default text, found \",\"");
	E("{{ x | default(\"a }}", "t:1:16: unterminated string");
	E("{{ x | default(\"a\\q\") }}",
	    "t:1:18: unknown escape \"\\q\" in a string: only \\\\, \\\", \\', \\n, \\t and \\r are");
	E("{{ x | default(\"a\\", "t:1:16: unterminated string");
	E("{{ }}", "t:1:4: expected a variable name, found \"}}\"");
	E("{{ 42 }}", "t:1:4: expected a variable name, found \"42\"");
	E("{{ f(x) }}", "t:1:5: expected \"|\" or \"}}\", found \"(\": function calls are not supported");
	E("{{ a + b }}", "t:1:6: expected \"|\" or \"}}\", found \"+\": operators are not supported");
	E("{{ a - b }}", "t:1:6: expected \"|\" or \"}}\", found \"-\": operators are not supported");
	E("{{ a[0] }}",
	    "t:1:5: expected \"|\" or \"}}\", found \"[\": subscripts are not supported, write a.0 or a.key");
	E("{{ a b }}", "t:1:6: expected \"|\" or \"}}\", found \"b\"");
	E("{{ a %}", "t:1:6: expected \"|\" or \"}}\", found \"%}\"");
	E("{{ a | default(\"x\") x }}", "t:1:21: expected \"}}\", found \"x\"");
	E("{{ a. }}", "t:1:6: expected a name or a number after \".\", found a space");
	E("{{ a.\tb }}", "t:1:6: expected a name or a number after \".\", found a tab");
	E("{{ a.\n}}", "t:1:6: expected a name or a number after \".\", found a line break");
	E("{{ a.}}", "t:1:6: expected a name or a number after \".\", found \"}}\"");
	E("{{ a.0b }}", "t:1:6: \"0b\" is neither a name nor a number");
	E("{{ a.-1 }}", "t:1:6: expected a name or a number after \".\", found \"-\"");
	E("{% if a == b %}{% endif %}",
	    "t:1:9: expected \"%}\" after the condition, found \"=\": comparisons are not supported");
	E("{% if a and b %}{% endif %}",
	    "t:1:9: expected \"%}\" after the condition, found \"and\": and/or are not supported, nest {% if %} blocks instead");
	E("{% if a or b %}{% endif %}",
	    "t:1:9: expected \"%}\" after the condition, found \"or\": and/or are not supported, nest {% if %} blocks instead");
	E("{% if %}{% endif %}", "t:1:7: expected a path (or not and a path), found \"%}\"");
	E("{% if not %}{% endif %}", "t:1:11: expected a path (or not and a path), found \"%}\"");
	E("{% if \"s\" %}{% endif %}", "t:1:7: expected a path (or not and a path), found a string");
	E("{% if a %}{% elif %}{% endif %}", "t:1:19: expected a path (or not and a path), found \"%}\"");
	E("{% if a %}{% else x %}{% endif %}", "t:1:19: expected \"%}\" after else, found \"x\"");
	E("{% if a %}{% endif x %}", "t:1:20: expected \"%}\" after endif, found \"x\"");
	E("{% for x in l %}{% endfor x %}", "t:1:27: expected \"%}\" after endfor, found \"x\"");
	E("{% endif %}", "t:1:1: unexpected {% endif %}");
	E("a\n  {% endfor %}", "t:2:3: unexpected {% endfor %}");
	E("{% else %}", "t:1:1: unexpected {% else %}");
	E("{% elif a %}", "t:1:1: unexpected {% elif %}");
	E("{% for x in l %}{% endif %}",
	    "t:1:17: unexpected {% endif %}: the {% for %} opened at 1:1 is still open");
	E("{% for x in l %}{% else %}{% endfor %}",
	    "t:1:17: unexpected {% else %}: the {% for %} opened at 1:1 is still open");
	E("{% for x in l %}{% elif a %}{% endfor %}",
	    "t:1:17: unexpected {% elif %}: the {% for %} opened at 1:1 is still open");
	E("x\n {% if a %}{% endfor %}",
	    "t:2:12: unexpected {% endfor %}: the {% if %} opened at 2:2 is still open");
	E("{% if a %}{% else %}{% else %}{% endif %}",
	    "t:1:21: {% else %} after {% else %} (the {% if %} opened at 1:1)");
	E("{% if a %}{% else %}{% elif b %}{% endif %}",
	    "t:1:21: {% elif %} after {% else %} (the {% if %} opened at 1:1)");
	E("a\n{% for x in l %}\nb", "t:3:2: {% for %} without {% endfor %} (opened at 2:1)");
	E("{% if a %}\n\n", "t:3:1: {% if %} without {% endif %} (opened at 1:1)");
	E("{% if a %}{% for x in l %}{% endfor %}",
	    "t:1:39: {% if %} without {% endif %} (opened at 1:1)");
	E("{% for x in l %}{% if a %}{% endif %}",
	    "t:1:38: {% for %} without {% endfor %} (opened at 1:1)");
	E("ab {{ x", "t:1:4: unterminated {{: no }} before the end of the template");
	E("ab {{", "t:1:4: unterminated {{: no }} before the end of the template");
	E("ab {{ x |", "t:1:4: unterminated {{: no }} before the end of the template");
	E("ab {{ x | default(", "t:1:4: unterminated {{: no }} before the end of the template");
	E("ab {{ x | default(\"a\"", "t:1:4: unterminated {{: no }} before the end of the template");
	E("ab {{ x }", "t:1:9: expected \"|\" or \"}}\", found \"}\"");
	E("\n{% if x", "t:2:1: unterminated {%: no %} before the end of the template");
	E("{% for", "t:1:1: unterminated {%: no %} before the end of the template");
	E("{% for x in", "t:1:1: unterminated {%: no %} before the end of the template");
	E("x {# never closed", "t:1:3: unterminated {#: no #} before the end of the template");
	E("x {# never closed #", "t:1:3: unterminated {#: no #} before the end of the template");
	E("{% for loop in l %}{% endfor %}",
	    "t:1:8: \"loop\" cannot be a loop variable: it holds loop.index, loop.first and loop.last");
	E("{% for x of l %}{% endfor %}", "t:1:10: expected \"in\" after the loop variable, found \"of\"");
	E("{% for x, y in l %}{% endfor %}", "t:1:9: expected \"in\" after the loop variable, found \",\"");
	E("{% for x in \"abc\" %}{% endfor %}", "t:1:13: expected a path to a list, found a string");
	E("{% for 1 in l %}{% endfor %}", "t:1:8: expected a loop variable name, found \"1\"");
	E("{% for x in l if x %}{% endfor %}", "t:1:15: expected \"%}\" after the list, found \"if\"");
	E("{% for x in l|default(\"\") %}{% endfor %}", "t:1:14: expected \"%}\" after the list, found \"|\"");
	E("{{ loop.index }}", "t:1:4: \"loop\" is only defined inside {% for %}");
	E("{% if loop.first %}{% endif %}", "t:1:7: \"loop\" is only defined inside {% for %}");
	E("{% for x in l %}{{ loop.length }}{% endfor %}",
	    "t:1:20: \"loop.length\" is not supported: only loop.index, loop.first and loop.last are");
	E("{% for x in l %}{{ loop }}{% endfor %}",
	    "t:1:20: expected loop.index, loop.first or loop.last");
	E("{% for x in l %}{{ loop.index.x }}{% endfor %}",
	    "t:1:20: expected loop.index, loop.first or loop.last");
	/* columns count characters, not bytes; tabs are one character */
	E("h\xc3\xa9llo \xe2\x82\xac {% nope %}",
	    "t:1:12: unknown tag \"nope\": only if, elif, else, endif, for, endfor are allowed");
	E("\t\xf0\x9f\x98\x80{{ x | upper }}",
	    "t:1:10: filter \"upper\" is not supported: only default(\"...\") is");
	E("a\r\nb{% x %}", "t:2:5: unknown tag \"x\": only if, elif, else, endif, for, endfor are allowed");
	E("{{ \xc3\xa9 }}", "t:1:4: expected a variable name, found \"\xc3\xa9\"");
	E("{{ a \x01 }}", "t:1:6: expected \"|\" or \"}}\", found byte 0x01");
	E("{{ a_very_long_name_that_goes_on_and_on_and_on_and_on_forever x }}",
	    "t:1:63: expected \"|\" or \"}}\", found \"x\"");
	E("{% if a %}{{ x y_a_very_long_name_that_goes_on_and_on_and_on_and_on_forever }}",
	    "t:1:16: expected \"|\" or \"}}\", found \"y_a_very_long_name_that_goes_on_and_on_a...\"");
}

static void
test_utf8(void)
{
	E("ab\n\xff" "c", "t:2:1: invalid UTF-8 (byte 0xff)");
	E("\xc3\xa9\xc3", "t:1:2: invalid UTF-8 (byte 0xc3)");
	E("x\xc0\xaf", "t:1:2: invalid UTF-8 (byte 0xc0)");
	E("x\xe0\x80\xaf", "t:1:2: invalid UTF-8 (byte 0xe0)");
	E("xy\xed\xa0\x80", "t:1:3: invalid UTF-8 (byte 0xed)");
	E("\xf4\x90\x80\x80", "t:1:1: invalid UTF-8 (byte 0xf4)");
	E("\xf0\x8f\xbf\xbf", "t:1:1: invalid UTF-8 (byte 0xf0)");
	E("\x80", "t:1:1: invalid UTF-8 (byte 0x80)");
	E("{{ x | default(\"\xe2\x82\") }}", "t:1:17: invalid UTF-8 (byte 0xe2)");
	is_str(render_n("a\0b", 3, NULL), "E:t:1:2: NUL byte in the template",
	    "NUL byte");
	R("\xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xed\x9f\xbf \xf4\x8f\xbf\xbf",
	    NULL, "\xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xed\x9f\xbf \xf4\x8f\xbf\xbf",
	    "valid UTF-8 up to U+10FFFF");
	is_str(render_n(NULL, 0, NULL), "", "NULL source of length 0");
}

/* n nested ifs (or fors), all closed */
static char *
nested(int n, int use_for)
{
	struct buf b = BUF_INIT;
	char *s;
	int i;

	for (i = 0; i < n; i++)
		buf_puts(&b, use_for ? "{% for x in l %}" : "{% if a %}");
	buf_puts(&b, "x");
	for (i = 0; i < n; i++)
		buf_puts(&b, use_for ? "{% endfor %}" : "{% endif %}");
	s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void
test_bounds(void)
{
	struct buf big = BUF_INIT, vars = BUF_INIT, out = BUF_INIT;
	struct tmpl *t;
	struct err e;
	cJSON *v;
	char *s, want[128];
	int i;

	s = nested(TMPL_MAX_DEPTH, 0);
	R(s, "{\"a\":1}", "x", "32 nested ifs");
	free(s);
	s = nested(TMPL_MAX_DEPTH, 1);
	R(s, "{\"l\":[1]}", "x", "32 nested fors");
	free(s);
	s = nested(TMPL_MAX_DEPTH + 1, 0);
	snprintf(want, sizeof(want), "E:t:1:%d: nesting deeper than 32 blocks of "
	    "{%% if %%} and {%% for %%}", TMPL_MAX_DEPTH * 10 + 1);
	R(s, "{\"a\":1}", want, "33 nested ifs");
	free(s);
	R("{% if a %}{% for x in l %}{% if a %}{% endif %}{% endfor %}{% endif %}"
	    "{% if a %}{% endif %}", "{\"a\":1,\"l\":[1]}", "", "depth comes back down");

	/* output: 1024 x 1 KiB is exactly the bound, one more byte is over */
	for (i = 0; i < 1024; i++)
		buf_putc(&big, 'y');
	buf_puts(&vars, "{\"k\":\"");
	buf_append(&vars, big.data, big.len);
	buf_puts(&vars, "\",\"l\":[");
	for (i = 0; i < 1024; i++)
		buf_puts(&vars, i ? ",0" : "0");
	buf_puts(&vars, "]}");
	v = cJSON_Parse(buf_cstr(&vars));
	ok(v != NULL, "bound variables parse");

	err_clear(&e);
	t = parse("{% for i in l %}{{ k }}{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == 0 &&
	    out.len == TMPL_MAX_OUTPUT, "exactly TMPL_MAX_OUTPUT bytes render");
	tmpl_free(t);

	buf_reset(&out);
	t = parse("!{% for i in l %}{{ k }}{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == -1 && e.status == 400,
	    "one byte more fails");
	is_str(e.msg, "t:1:18: output larger than 1048576 bytes", "output bound message");
	is_int(out.len, 1 + 1023 * 1024, "out holds what was rendered before");
	tmpl_free(t);

	/* the bound counts this rendering only, not what out held before */
	buf_reset(&out);
	buf_puts(&out, "before");
	t = parse("{% for i in l %}{{ k }}{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == 0 &&
	    out.len == TMPL_MAX_OUTPUT + 6 && memcmp(out.data, "before", 6) == 0,
	    "rendering appends to out; the bound is on what it adds");
	tmpl_free(t);

	/* a JSON value printed past the bound is taken back */
	buf_reset(&out);
	t = parse("{% for i in l %}{{ k }}{% endfor %}{{ l }}{{ l }}{{ l }}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == -1 &&
	    out.len == TMPL_MAX_OUTPUT, "a list printed past the bound is taken back");
	is_str(e.msg, "t:1:36: output larger than 1048576 bytes", "its message");
	tmpl_free(t);

	/* text alone counts too */
	buf_reset(&out);
	t = parse("{% for i in l %}{% for j in l %}"
	    "text text text text text text text text text text text text text text "
	    "text text text text text text text text text text text text text text "
	    "{% endfor %}{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == -1 &&
	    out.len <= TMPL_MAX_OUTPUT, "text past the bound");
	is_str(e.msg, "t:1:33: output larger than 1048576 bytes", "its message");
	tmpl_free(t);
	cJSON_Delete(v);

	/* iterations: 100000 bodies are fine, one more is not */
	buf_reset(&vars);
	buf_puts(&vars, "{\"l\":[");
	for (i = 0; i < TMPL_MAX_ITERATIONS; i++)
		buf_puts(&vars, i ? ",0" : "0");
	buf_puts(&vars, "],\"one\":[1]}");
	v = cJSON_Parse(buf_cstr(&vars));
	buf_reset(&out);
	t = parse("{% for i in l %}{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == 0,
	    "exactly TMPL_MAX_ITERATIONS iterations");
	tmpl_free(t);
	t = parse("{% for i in one %}{% endfor %}\n{% for i in l %}.{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == -1 && e.status == 400,
	    "one more, in another loop, fails");
	is_str(e.msg, "t:2:1: more than 100000 loop iterations", "iteration bound message");
	is_int(out.len, 1 + TMPL_MAX_ITERATIONS - 1, "the bodies before the bound rendered");
	tmpl_free(t);
	cJSON_Delete(v);

	v = cJSON_Parse("{\"l\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,"
	    "20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,"
	    "43,44,45,46,47,48,49]}");
	buf_reset(&out);
	t = parse("{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}"
	    "{% endfor %}{% endfor %}", &e);
	ok(t != NULL && tmpl_render(t, v, &out, &e) == -1,
	    "nested loops count every body");
	is_str(e.msg, "t:1:17: more than 100000 loop iterations", "its message");
	tmpl_free(t);
	cJSON_Delete(v);

	buf_free(&big);
	buf_free(&vars);
	buf_free(&out);
}

static void
test_vars(void)
{
	struct tmpl *t;
	struct err e;
	const char *src =
	    "{{ request.user_prompt }}{# {{ hidden }} #}{{ \"lit\" }}\n"
	    "{% for s in payload.stores %}{{ s.name }}{{ loop.index }}"
	    "{% for p in s.products %}{{ p }}{{ agents.x }}{% endfor %}"
	    "{% endfor %}\n"
	    "{% if not request.topic %}{% elif flags.a %}{% endif %}"
	    "{{ s | default(\"x\") }}{{ agents.y }}{{ request }}";

	err_clear(&e);
	t = tmpl_parse(src, strlen(src), "t", &e);
	ok(t != NULL, "var listing template parses");
	if (t == NULL) {
		printf("#   %s\n", e.msg);
		return;
	}
	is_int(tmpl_var_count(t), 5, "five distinct first names");
	is_str(tmpl_var_at(t, 0), "request", "first: request");
	is_str(tmpl_var_at(t, 1), "payload", "second: payload");
	is_str(tmpl_var_at(t, 2), "agents", "third: agents (inside loops)");
	is_str(tmpl_var_at(t, 3), "flags", "fourth: flags (from elif)");
	is_str(tmpl_var_at(t, 4), "s", "fifth: s, used outside its loop");
	ok(tmpl_var_at(t, 5) == NULL, "past the end is NULL");
	tmpl_free(t);

	t = parse("plain {# x #} text", &e);
	ok(t != NULL && tmpl_var_count(t) == 0 && tmpl_var_at(t, 0) == NULL,
	    "no variables");
	tmpl_free(t);

	t = parse("{% for x in l %}{{ x }}{{ loop.first }}{% endfor %}", &e);
	ok(t != NULL && tmpl_var_count(t) == 1 && strcmp(tmpl_var_at(t, 0), "l") == 0,
	    "loop variables and loop are not listed");
	tmpl_free(t);

	tmpl_free(NULL);
	ok(1, "tmpl_free(NULL) is a no-op");
}

static void
test_name(void)
{
	struct tmpl *t;
	struct err e;

	err_clear(&e);
	t = tmpl_parse("{{ x | upper }}", 15, "prompts/v1/summary.j2", &e);
	ok(t == NULL && e.status == 400, "error with a file name");
	is_str(e.msg, "prompts/v1/summary.j2:1:8: filter \"upper\" is not "
	    "supported: only default(\"...\") is", "the name prefixes the message");
	t = tmpl_parse("{% if %}", 8, NULL, &e);
	ok(t == NULL, "no name");
	is_str(e.msg, "template:1:7: expected a path (or not and a path), "
	    "found \"%}\"", "no name says template");
}

/* A prompt as a flow would write it. */
static void
test_realistic(void)
{
	const char *src =
	    "{# bike insights: the summary agent's system prompt #}\n"
	    "You are a sales analyst for {{ company | default(\"our company\") }}.\n"
	    "The user {{ request.user_name | default(\"(anonymous)\") }} asks:\n"
	    "{{ request.user_prompt }}\n"
	    "\n"
	    "{% if payload.stores -%}\n"
	    "Stores:\n"
	    "{% for store in payload.stores -%}\n"
	    "{{ loop.index }}. {{ store.name }} ({{ store.location }})\n"
	    "{%- if store.bike_sales %}: "
	    "{% for sale in store.bike_sales %}{{ sale.model }} x{{ sale.quantity }}"
	    "{% if not loop.last %}, {% endif %}{% endfor %}"
	    "{%- else %}: no sales{% endif %}\n"
	    "{% endfor -%}\n"
	    "{% else -%}\n"
	    "No store data.\n"
	    "{% endif -%}\n"
	    "{% if agents.classifier %}\n"
	    "The classifier said: {{ agents.classifier }}\n"
	    "{%- endif %}\n"
	    "Memory: {{ request.thread_memory | default(\"none\") }}";
	const char *vars =
	    "{\"request\":{\"user_prompt\":\"Which store sold the most?\","
	    "\"thread_id\":\"t-1\",\"user_id\":\"u-1\",\"user_name\":\"Ana\","
	    "\"topic\":null,\"event_type\":null,\"thread_memory\":null,"
	    "\"conversation_flow\":\"bike_insights\"},"
	    "\"agents\":{\"classifier\":\"sales question\"},"
	    "\"payload\":{\"stores\":[{\"name\":\"Hobart\",\"location\":\"TAS\","
	    "\"bike_sales\":[{\"model\":\"Road-1\",\"quantity\":2},"
	    "{\"model\":\"MTB-3\",\"quantity\":1}]},"
	    "{\"name\":\"Perth\",\"location\":\"WA\",\"bike_sales\":[]}]}}";

	R(src, vars,
	    "\n"
	    "You are a sales analyst for our company.\n"
	    "The user Ana asks:\n"
	    "Which store sold the most?\n"
	    "\n"
	    "Stores:\n"
	    "1. Hobart (TAS): Road-1 x2, MTB-3 x1\n"
	    "2. Perth (WA): no sales\n"
	    "\n"
	    "The classifier said: sales question\n"
	    "Memory: none",
	    "realistic prompt with stores");
	R(src, "{\"request\":{\"user_prompt\":\"hi\"},\"agents\":{}}",
	    "\n"
	    "You are a sales analyst for our company.\n"
	    "The user (anonymous) asks:\n"
	    "hi\n"
	    "\n"
	    "No store data.\n"
	    "\n"
	    "Memory: none",
	    "realistic prompt without data");
}

/* One template, many threads: rendering only reads it. */
struct shared {
	struct tmpl *t;
	const cJSON *vars;
	const char *want;
	int bad;
};

static void *
render_thread(void *arg)
{
	struct shared *sh = arg;
	struct buf out = BUF_INIT;
	struct err e;
	int i;

	for (i = 0; i < 300; i++) {
		buf_reset(&out);
		if (tmpl_render(sh->t, sh->vars, &out, &e) != 0 ||
		    strcmp(buf_cstr(&out), sh->want) != 0)
			__atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
	}
	buf_free(&out);
	return NULL;
}

static void
test_threads(void)
{
	const char *src = "{% for s in l %}{{ loop.index }}{{ s.n }}"
	    "{% for x in s.m %}{{ loop.first }}{{ x }}{% endfor %};{% endfor %}";
	struct shared sh;
	pthread_t th[4];
	struct err e;
	cJSON *v = cJSON_Parse("{\"l\":[{\"n\":\"a\",\"m\":[1,2]},{\"n\":\"b\","
	    "\"m\":[3]},{\"n\":\"c\",\"m\":[]}]}");
	int i;

	memset(&sh, 0, sizeof(sh));
	sh.t = tmpl_parse(src, strlen(src), "t", &e);
	sh.vars = v;
	sh.want = "1atrue1false2;2btrue3;3c;";
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, render_thread, &sh);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	is_int(sh.bad, 0, "4 threads x 300 renders of one template agree");
	tmpl_free(sh.t);
	cJSON_Delete(v);
}

int
main(void)
{
	test_text_and_values();
	test_paths();
	test_default();
	test_truthiness();
	test_if();
	test_for();
	test_comments();
	test_whitespace();
	test_errors();
	test_utf8();
	test_bounds();
	test_vars();
	test_name();
	test_realistic();
	test_threads();
	free(last);
	return tap_done();
}
