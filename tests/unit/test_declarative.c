/*
 * test_declarative.c -- flow files (flows/declarative.c) parsed and checked:
 * a good file and its listing facts, then each load error with its file
 * and line, the way the master and `ingen validate` report it; the search
 * of the flow path (<x>.flow and <x>/<x>.flow).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flows/declarative.h"
#include "lib/config.h"
#include "lib/xmalloc.h"
#include "tests/unit/tap.h"

static char dir[64];
static struct config cfg;
static struct config_model models[2];

static char *
write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Load `text` as flow file `name`; the problem (or NULL), as a new string
 * with the folder cut off. */
static char *
load_problem(const char *name, const char *text)
{
	char *path = write_file(name, text), *problem = NULL, *out = NULL;
	struct decl_flow *f = decl_load(path, &cfg, &problem);

	decl_flow_free(f);
	if (problem != NULL) {
		size_t n = strlen(dir) + 1;

		out = xstrdup(strncmp(problem, dir, n - 1) == 0 ? problem + n :
		    problem);
		free(problem);
	}
	unlink(path);
	free(path);
	return out;
}

static void
expect_problem(const char *text, const char *want, const char *what)
{
	char *got = load_problem("t.flow", text);

	is_str(got, want, "%s", what);
	free(got);
}

#define AGENT_A "agents = ( { name = \"a\"; system = \"You are A.\"; } );\n"

static const char good[] =
    "# a flow with every kind of step\n"
    "name = \"review\";\n"
    "description = \"Reviews a text\";\n"
    "category = \"Examples\";\n"
    "agents = (\n"
    "  { name = \"critic\"; model = \"gpt-test\"; temperature = 0.2;\n"
    "    system = \"Criticise: {{ request.user_prompt }}\"; },\n"
    "  { name = \"fan\"; system = \"Praise it.\"; max_tokens = 100; },\n"
    "  { name = \"judge\"; model = \"chat\"; json_response = false;\n"
    "    system = \"{% if agents.critic %}Critic: {{ agents.critic }}{% endif %} Fan: {{ agents.fan }}\";\n"
    "    user = \"Decide about {{ request.user_prompt }}\"; tools = [\"expert\"]; },\n"
    "  { name = \"expert\"; system = \"You know everything.\"; }\n"
    ");\n"
    "steps = ( { parallel = [\"critic\", \"fan\"]; }, \"judge\" );\n"
    "reply = \"{{ agents.judge }} (critic: {{ agents.critic | default(\\\"none\\\") }})\";\n"
    "memory = \"Reviewed: {{ excerpt }}...\";\n"
    "excerpt_chars = 20;\n"
    "append_if = ( { contains = \"urgent\"; text = \" [urgent]\"; } );\n"
    "limits = { max_llm_calls = 6; };\n";

static void
test_good(void)
{
	char *path = write_file("review.flow", good), *problem = NULL;
	struct decl_flow *f = decl_load(path, &cfg, &problem);
	struct decl_facts facts;

	ok(f != NULL && problem == NULL, "a good flow file loads (%s)",
	    problem ? problem : "no problem");
	if (f != NULL) {
		decl_facts(f, &facts);
		is_str(facts.name, "review", "its name");
		is_str(facts.description, "Reviews a text", "its description");
		is_str(facts.category, "Examples", "its category");
		is_str(facts.file, path, "its file, as found");
	}
	decl_flow_free(f);
	free(problem);
	unlink(path);
	free(path);

	/* name defaults to the file's, category to Custom */
	path = write_file("plain_one.flow", AGENT_A "steps = ( \"a\" );\n");
	f = decl_load(path, &cfg, &problem);
	ok(f != NULL, "a minimal flow file loads");
	if (f != NULL) {
		decl_facts(f, &facts);
		is_str(facts.name, "plain_one", "the name defaults to the file's");
		is_str(facts.category, "Custom", "the category defaults to Custom");
		is_str(facts.description, "", "no description is \"\"");
	}
	decl_flow_free(f);
	free(problem);
	unlink(path);
	free(path);
}

static void
test_errors(void)
{
	expect_problem("name = \"t\";\n" AGENT_A "steps = ( \"a\", \"writer\" );\n",
	    "t.flow:3: agent \"writer\" in steps is not defined (agents: a)",
	    "an unknown agent in steps");
	expect_problem("name = \"t\";\n" AGENT_A "steps = ( \"a\" );\n"
	    "reply_agent = \"b\";\n",
	    "t.flow:4: agent \"b\" in reply_agent is not defined (agents: a)",
	    "an unknown reply agent");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\"; },\n"
	    " { name = \"b\"; system = \"y\"; }\n);\nsteps = ( \"a\" );\n"
	    "reply_agent = \"b\";\n",
	    "t.flow:6: agent \"b\" in reply_agent is not in steps, so it never "
	    "answers (agents: a, b)", "a reply agent that never runs");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\";\n"
	    "   tools = [\"nobody\"]; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:3: tool \"nobody\" of agent \"a\" is neither an agent of this "
	    "flow (agents: a) nor a known tool (kb_search, sql_query)",
	    "an unknown tool");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\"; tools = [\"a\"]; }\n);\n"
	    "steps = ( \"a\" );\n",
	    "t.flow:2: agent \"a\" has itself as a tool: an agent may call the "
	    "other agents only", "an agent as its own tool");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\"; tools = [\"b\"]; },\n"
	    " { name = \"b\"; system = \"y\"; tools = [\"c\"]; },\n"
	    " { name = \"c\"; system = \"z\"; tools = [\"a\"]; }\n);\n"
	    "steps = ( \"a\" );\n",
	    "t.flow:2: agents call each other as tools in a cycle (a -> b -> c -> "
	    "a): a flow file never loops", "a cycle of agent tools");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\";\n"
	    "   tools = [\"kb_search\", \"kb_search\"]; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:3: tool \"kb_search\" is listed twice for agent \"a\"",
	    "kb_search twice is refused");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\";\n"
	    "   tools = [\"sql_query\", \"sql_query\"]; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:3: tool \"sql_query\" is listed twice for agent \"a\"",
	    "sql_query twice is refused");
	expect_problem(AGENT_A "steps = ( \"a\" );\n"
	    "memory = \"{{ secrets.key }}\";\n",
	    "t.flow:3: memory uses the unknown variable \"secrets\" (variables: "
	    "request, agents, excerpt)", "an unknown template variable");
	expect_problem("agents = (\n { name = \"a\";\n"
	    "   system = \"{{ env.HOME }}\"; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:3: agent \"a\" system uses the unknown variable \"env\" "
	    "(variables: request, agents, excerpt)",
	    "an unknown variable in an agent's prompt");
	expect_problem("agents = (\n { name = \"a\"; system = \"{{ agents.b }}\"; },\n"
	    " { name = \"b\"; system = \"y\"; }\n);\nsteps = ( \"a\", \"b\" );\n",
	    "t.flow:2: agent \"a\" system uses agents.b, which has not run by "
	    "then (an agent's output is there for the steps after its own)",
	    "an agent's output used before it runs");
	expect_problem(AGENT_A "steps = ( \"a\" );\nreply = \"{{ agents.zed }}\";\n",
	    "t.flow:3: reply uses agents.zed, which is not an agent of this flow "
	    "(agents: a)", "an output of no agent");
	{
		char *got = load_problem("t.flow", AGENT_A "steps = ( \"a\" );\n"
		    "reply = \"{{ agents.a \";\n");

		ok(got != NULL && strncmp(got, "t.flow:3: reply:1:", 18) == 0,
		    "a template that does not parse: file, line, then the "
		    "template's line and column (%s)", got ? got : "loaded");
		free(got);
	}
	expect_problem("agents = (\n { name = \"a\"; model = \"gpt-5\";\n"
	    "   system = \"x\"; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:2: agent \"a\": no configured model is named or has the role "
	    "\"gpt-5\" (models: gpt-test (role chat), text-embed (role "
	    "embedding))", "a missing model");
	expect_problem("name = \"t\";\ndescripton = \"typo\";\n" AGENT_A
	    "steps = ( \"a\" );\n",
	    "t.flow:2: unknown setting \"descripton\" (known settings: name, "
	    "description, category, revision, agents, steps, reply_agent, reply, "
	    "memory, append_if, excerpt_chars, limits)", "an unknown key");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\"; run = \"rm -rf /\"; }\n);\n"
	    "steps = ( \"a\" );\n",
	    "t.flow:2: unknown setting \"run\" in an agent (known settings: name, "
	    "model, system, system_template, user, user_template, temperature, "
	    "max_tokens, json_response, tools)", "an unknown key in an agent");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\";\n"
	    "   temperature = \"hot\"; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:3: temperature of agent \"a\" must be a number, not a string",
	    "a wrong type");
	expect_problem("name = 7;\n" AGENT_A "steps = ( \"a\" );\n",
	    "t.flow:1: name must be a string, not an integer",
	    "a wrong type at the top");
	expect_problem(AGENT_A "steps = ( \"a\" );\n"
	    "limits = { max_llm_calls = 30; };\n",
	    "t.flow:3: limits.max_llm_calls = 30 is above the server's limit "
	    "flows.max_llm_calls = 25", "a limit above the server's");
	expect_problem("agents = (\n { name = \"a\"; system = \"x\"; },\n"
	    " { name = \"b\"; system = \"y\"; }\n);\n"
	    "steps = ( { parallel = [\"a\", \"b\"]; } );\n"
	    "limits = { max_llm_calls = 1; };\n",
	    "t.flow:6: limits.max_llm_calls = 1 is less than the 2 model calls "
	    "of the steps", "a limit below the steps' calls");
	expect_problem(AGENT_A "steps = ( \"a\", \"a\" );\n",
	    "t.flow:2: agent \"a\" is in steps twice: every agent runs at most "
	    "once per turn", "an agent twice in steps");
	expect_problem("agents = (\n { name = \"a\";\n"
	    "   system_template = \"sys.jinja\"; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:3: agent \"a\" uses the template file \"sys.jinja\" but the "
	    "flow names no revision: set revision = \"...\"",
	    "a template file without a revision");
	expect_problem("revision = \"r1\";\nagents = (\n { name = \"a\";\n"
	    "   system_template = \"../../etc/passwd\"; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:4: system_template of agent \"a\": \"../../etc/passwd\" is "
	    "not a template file name (a name ending in .md or .jinja, no folder)",
	    "a template file name that leaves the revision");
	expect_problem("revision = \"../x\";\n" AGENT_A "steps = ( \"a\" );\n",
	    "t.flow:1: revision \"../x\" is not a revision id (letters, digits, "
	    "'.', '_' and '-', not starting with '.')", "a revision that is a path");
	expect_problem("agents = (\n { name = \"my-agent\"; system = \"x\"; }\n);\n"
	    "steps = ( \"my-agent\" );\n",
	    "t.flow:2: agent name \"my-agent\" is not valid: 1 to 64 characters "
	    "a-z, A-Z, 0-9 and '_' (it is a tool name for the model and "
	    "agents.<name> in templates)", "an agent name that a template cannot use");
	expect_problem("agents = (\n { name = \"a\"; }\n);\nsteps = ( \"a\" );\n",
	    "t.flow:2: agent \"a\" has no system prompt: set system = \"...\" or "
	    "system_template = \"file.jinja\"", "an agent with no prompt");
	expect_problem("name = \"Task-Manager\";\n" AGENT_A "steps = ( \"a\" );\n",
	    "t.flow:1: flow name \"Task-Manager\" is not valid: a flow name has 1 "
	    "to 127 characters a-z, 0-9 and '_'", "a flow name not in normal form");
	expect_problem(AGENT_A "steps = ( \"a\" );\nappend_if = { contains = \"x\"; };\n",
	    "t.flow:3: append_if needs contains = \"...\" (not empty) and text = "
	    "\"...\"", "an append rule without its text");
	expect_problem(AGENT_A "steps = ( \"a\" );\nreply = ;\n",
	    "t.flow:3: syntax error", "a libconfig syntax error");
	expect_problem(AGENT_A, "t.flow:1: the flow has no steps: set steps = "
	    "( \"agent\", { parallel = [\"a\", \"b\"]; } )", "no steps");
}

static void
test_scan(void)
{
	struct decl_set set;
	char *sub = xasprintf("%s/nested", dir), *p1, *p2, *p3;

	mkdir(sub, 0700);
	p1 = write_file("nested/nested.flow", AGENT_A "steps = ( \"a\" );\n");
	p2 = write_file("top.flow", AGENT_A "steps = ( \"a\" );\n");
	p3 = write_file("broken.flow", AGENT_A "steps = ( \"zz\" );\n");
	cfg.server.flow_path = dir;
	decl_scan(&cfg, &set);
	is_int(set.n, 2, "the scan finds <x>.flow and <x>/<x>.flow");
	is_int(set.n_problems, 1, "and reports the broken one");
	if (set.n_problems == 1)
		ok(strstr(set.problems[0], "broken.flow:2: agent \"zz\" in steps") !=
		    NULL, "with its file and line (%s)", set.problems[0]);
	decl_set_free(&set);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	rmdir(sub);
	free(p1);
	free(p2);
	free(p3);
	free(sub);
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_declarative.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	models[0].model = xstrdup("gpt-test");
	models[1].model = xstrdup("text-embed");
	models[1].role = xstrdup("embedding");
	cfg.models = models;
	cfg.n_models = 2;
	cfg.flows.max_llm_calls = 25;
	test_good();
	test_errors();
	test_scan();
	rmdir(dir);
	return tap_done();
}
