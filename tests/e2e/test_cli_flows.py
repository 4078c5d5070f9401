"""test_cli_flows.py -- the commands and routes of custom flows (issue 9,
section 3), with the real `ingen` binary:

- `ingen init` in an empty directory writes every file of cli/scaffold/
  byte for byte, the configuration it writes is valid with no warning, and
  a second run overwrites nothing (a file changed in between stays as it
  is) and says so for each file;
- `ingen flow test` runs the built-in flow against a replies file: the
  scripted answer, the call (agent, messages, tokens), the reply fields,
  the same in --json; a failing call (status and message, exit 1), a
  script that runs out (exit 1, naming the call), a missing or malformed
  replies file and an unknown flow (exit 2, with the flows available);
- `ingen workflows`: every flow with its facts, complete or not as the
  configuration says, --json, an unknown NAME (exit 2 and the list);
- GET /api/v1/workflows and /api/v1/workflow-status/{name} through the
  server (no database needed): the reference's shape, the same facts as
  the command, hyphenated names, 404 for an unknown flow, and the
  authentication gate when authentication is on.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import (INGEN, BUILDDIR, SRCDIR, Server, Tap, clean_env, request,  # noqa: E402
                   sanitizer_reports)
from sim import Sim, prompt_tokens, tokens  # noqa: E402
from chatkit import SYSTEM, sim_reply  # noqa: E402

t = Tap(timeout=120)

STATUS_KEYS = ["workflow", "description", "category", "configured", "missing_config",
               "required_config", "external_services", "ready", "test_command",
               "documentation"]
SCAFFOLD = os.path.join(SRCDIR, "cli", "scaffold")
MODEL_ENV = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o",
             "INGENIOUS_MODELS__0__BASE_URL": "http://127.0.0.1:9/",
             "INGENIOUS_MODELS__0__API_KEY": "cli-flows-key-3b1c",
             "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o"}

work = tempfile.mkdtemp(prefix="ingen-cli-flows-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or shutil.rmtree(work, ignore_errors=True))


def ingen(args, cwd, env=None, timeout=30):
    """Run `ingen ARGS` in cwd with a clean environment: (rc, stdout, stderr)."""
    e = clean_env({"INGENIOUS_CONFIG": ""})
    e.update(env or {})
    p = subprocess.run([INGEN] + args, cwd=cwd, env=e, capture_output=True,
                       timeout=timeout)
    bad = sanitizer_reports(p.stderr.decode(errors="replace"))
    if bad:
        t.ok(False, "ingen %s: no sanitizer report" % " ".join(args), "\n".join(bad))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def scaffold_files():
    out = []
    for root, _, files in os.walk(SCAFFOLD):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), SCAFFOLD))
    return sorted(out)


# ---- ingen init ----------------------------------------------------------------
proj = os.path.join(work, "project")
os.mkdir(proj)
rc, out, err = ingen(["init"], proj)
t.eq(rc, 0, "ingen init in an empty directory succeeds")
want = scaffold_files()
t.ok(len(want) >= 14 and "ingenious.conf" in want and ".env.example" in want and
     "README.md" in want and "test_task_manager.json" in want and
     "ingenious_extensions/flows/task_manager/task_manager.c" in want and
     "ingenious_extensions/flows/task_manager/Makefile" in want and
     "ingenious_extensions/flows/task_manager/tests/replies.json" in want and
     "ingenious_extensions/flows/task_manager/tests/expected.txt" in want and
     "sample_data/bike_sales_april_2023.json" in want,
     "the scaffold holds the configuration, the flow, its Makefile and test, and the README",
     want)
templates = [f for f in want if f.startswith("templates/prompts/quickstart-1/")]
t.eq(sorted(os.path.basename(f) for f in templates),
     ["bike_lookup_agent_prompt.jinja", "customer_sentiment_agent_prompt.jinja",
      "fiscal_analysis_agent_prompt.jinja", "summary_prompt.jinja",
      "user_proxy_prompt.jinja"],
     "the five bike-insights agent prompts, as revision quickstart-1")
got = []
for root, _, files in os.walk(proj):
    for f in files:
        got.append(os.path.relpath(os.path.join(root, f), proj))
t.eq(sorted(got), want, "every scaffold file is created, and nothing else")
same = [f for f in want
        if open(os.path.join(proj, f), "rb").read() == open(os.path.join(SCAFFOLD, f), "rb").read()]
t.eq(same, want, "each file is the scaffold's, byte for byte")
t.eq(sorted(l.split()[1] for l in out.splitlines() if l.startswith("created ")), want,
     "each file is reported as created")
t.ok("README.md" in out.splitlines()[-1], "and the next steps point to the README", out)
payload = json.load(open(os.path.join(proj, "sample_data", "bike_sales_april_2023.json")))
t.ok(payload.get("revision_id") == "quickstart-1" and payload.get("identifier") and
     payload["stores"][0]["bike_sales"][0]["customer_review"]["rating"] > 0 and
     payload["stores"][0]["bike_stock"][0]["bike"]["price"] > 0,
     "the sample data is a bike-insights payload (revision_id, identifier, stores)")
body = json.load(open(os.path.join(proj, "test_task_manager.json")))
t.eq(body, {"user_prompt": "Add task: Review documentation", "conversation_flow": "task_manager"},
     "test_task_manager.json is the guide's request")
tm = open(os.path.join(proj, "ingenious_extensions/flows/task_manager/task_manager.c")).read()
t.ok("#include <ingenious/flow.h>" in tm and '"task_manager_agent"' in tm and
     "✅ Task functionality would be \"\n\t\t    \"implemented here!" in tm and
     "\"Task management \"\n\t    \"interaction: %.50s...\"" in tm and
     'ING_FLOW_MODULE("task_manager"' in tm,
     "task_manager.c is the guide's flow against <ingenious/flow.h>")
mk = open(os.path.join(proj, "ingenious_extensions/flows/task_manager/Makefile")).read()
t.ok("pkg-config" in mk.replace("$(PKG_CONFIG)", "pkg-config") and
     "--cflags --libs ingenious" in mk and "-shared -fPIC" in mk and
     "\ncheck:" in mk and "\nclean:" in mk and "flow test" in mk,
     "the Makefile builds with pkg-config and has check and clean")

# the configuration it wrote is valid, with no warning
rc, out, err = ingen(["validate", "--config-only"], proj, env={"INGENIOUS_CONFIG": "ingenious.conf"})
t.ok(rc == 0 and "configuration is valid" in out and "warning" not in err and
     "level=error" not in err,
     "ingen validate accepts the scaffold's ingenious.conf with no warning", out + err)

# a second run overwrites nothing
conf = os.path.join(proj, "ingenious.conf")
with open(conf, "a") as f:
    f.write("# mine\n")
mine = open(conf, "rb").read()
os.remove(os.path.join(proj, "README.md"))
rc, out, err = ingen(["init"], proj)
t.eq(rc, 0, "a second ingen init succeeds")
t.eq(open(conf, "rb").read(), mine, "a file changed in between is not overwritten")
kept = sorted(l.split()[1] for l in out.splitlines() if l.startswith("kept "))
t.eq(kept, sorted(f for f in want if f != "README.md"),
     "every existing file is reported as kept")
t.ok(all("(exists)" in l for l in out.splitlines() if l.startswith("kept ")),
     "saying that it exists", out)
t.eq([l.split()[1] for l in out.splitlines() if l.startswith("created ")], ["README.md"],
     "and only the missing file is created again")
rc, out, err = ingen(["init", "somewhere"], proj)
t.ok(rc == 2 and "current directory" in err, "ingen init takes no argument (exit 2)", err)

# ---- ingen flow test -----------------------------------------------------------
ft = os.path.join(work, "flowtest")
os.mkdir(ft)


def write(name, obj):
    path = os.path.join(ft, name)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


ANSWER = "Category: payload_type_2\nExplanation: a price.\nResponse: It costs 1200 euros."
PROMPT = "How much is the Trail 500?"
write("ok.json", [{"content": ANSWER, "prompt_tokens": 120, "completion_tokens": 30}])
rc, out, err = ingen(["flow", "test", "classification-agent", "--prompt", PROMPT,
                      "--replies", "ok.json"], ft)
t.eq(rc, 0, "flow test with a replies file: exit 0")
t.ok(out.startswith("flow classification_agent: answered\n"), "it says the flow answered", out)
t.ok("model call 1: agent classification_agent, model chat (scripted)\n" in out,
     "it prints the call: agent, model, scripted", out)
t.ok("  system: You are a classification agent" in out and ("  user: %s\n" % PROMPT) in out,
     "and the messages sent", out)
t.ok("  answer: Category: payload_type_2\n    Explanation: a price.\n" in out,
     "and the scripted answer", out)
t.ok("  tokens: 120 prompt + 30 completion = 150\n" in out, "and its tokens", out)
t.ok("reply\n  agent_response: Category: payload_type_2\n" in out and
     "  agent_name: classification_agent\n" in out and
     "  memory_summary: Classified message: How much is the Trail 500?...\n" in out,
     "the reply: agent_response, agent_name, memory_summary", out)
t.ok("tokens: 120 prompt + 30 completion = 150 in 1 model call\n" in out,
     "the turn's tokens and calls", out)

rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", PROMPT,
                      "--replies", "ok.json", "--json"], ft)
try:
    doc = json.loads(out)
except ValueError:
    doc = {}
t.eq(rc, 0, "--json: exit 0")
t.ok(doc.get("status") == "answered" and doc.get("flow") == "classification_agent" and
     doc.get("error") is None, "--json: one document, status answered", out)
t.ok(doc.get("reply", {}).get("agent_response") == ANSWER and
     doc["reply"].get("memory_summary") == "Classified message: %s..." % PROMPT and
     doc["reply"].get("followup_questions") == {},
     "--json: the reply's fields", out)
calls = doc.get("model_calls") or [{}]
t.ok(len(calls) == 1 and calls[0].get("agent") == "classification_agent" and
     calls[0].get("scripted") is True and calls[0].get("answer") == ANSWER and
     [m["role"] for m in calls[0].get("messages", [])] == ["system", "user"] and
     calls[0]["messages"][1]["content"] == PROMPT and
     calls[0].get("prompt_tokens") == 120 and calls[0].get("completion_tokens") == 30,
     "--json: the call with its agent, messages, answer and tokens", out)
t.ok(doc.get("tokens") == {"prompt": 120, "completion": 30, "total": 150} and
     doc.get("llm_calls") == 1 and doc.get("tool_calls") == [] and doc.get("log") == [],
     "--json: the turn's tokens, calls, tool calls and log", out)

# a plain string is the content, with no tokens
write("str.json", ["Category: undefined"])
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "str.json", "--json"], ft)
doc = json.loads(out) if rc == 0 else {}
t.ok(rc == 0 and doc["reply"]["agent_response"] == "Category: undefined" and
     doc["tokens"]["total"] == 0, "a reply given as a string is the content", out + err)

# replies left over: a warning, and their number in --json
write("two.json", ["Category: undefined", "never asked for"])
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "two.json"], ft)
t.ok(rc == 0 and "warning: 1 of the 2 replies were not used" in err,
     "replies left over: exit 0 with a warning", err)
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "two.json", "--json"], ft)
doc = json.loads(out) if rc == 0 else {}
t.ok(doc.get("unused_replies") == 1 and doc.get("script_error") is None,
     "--json: unused_replies 1, no script error", out + err)

# a failing call: the flow fails with its status and message
write("err.json", [{"error": {"status": 503, "message": "upstream is busy"}}])
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "err.json"], ft)
t.eq(rc, 1, "a scripted failure fails the flow: exit 1")
t.ok("flow classification_agent: failed\n" in out and "  failed: 503 upstream is busy\n" in out
     and "error 503: upstream is busy\n" in out,
     "the call's failure and the flow's status and message are printed", out)
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "err.json", "--json"], ft)
doc = json.loads(out) if out else {}
t.ok(rc == 1 and doc.get("status") == "failed" and doc.get("reply") is None and
     doc.get("error") == {"status": 503, "message": "upstream is busy"} and
     doc["model_calls"][0]["error"] == {"status": 503, "message": "upstream is busy"},
     "--json: the failure in the document", out)

# the script runs out
write("empty.json", [])
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "empty.json"], ft)
t.eq(rc, 1, "a script that runs out: exit 1")
t.ok("the replies file ran out at model call 1 (agent classification_agent): it has 0 replies"
     in out, "the message names the call and its agent", out)

# usage errors: exit 2 with a clear message
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "missing.json"], ft)
t.ok(rc == 2 and 'could not open replies file "missing.json": No such file or directory' in err,
     "a missing replies file: exit 2 and the reason", err)
write("syntax.json", '[{"content": "x"')
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "syntax.json"], ft)
t.ok(rc == 2 and 'replies file "syntax.json"' in err and "invalid JSON" in err,
     "a replies file that is not JSON: exit 2", err)
write("bad.json", ["ok", 42])
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "bad.json"], ft)
t.ok(rc == 2 and "bad.json: reply 2: expected a string, or an object" in err,
     "a reply of the wrong kind: exit 2, naming the reply", err)
rc, out, err = ingen(["flow", "test", "no-such-flow", "--prompt", "hi",
                      "--replies", "ok.json"], ft)
t.ok(rc == 2 and 'unknown flow "no-such-flow" (normalized: no_such_flow); available: '
     'classification_agent' in err, "an unknown flow: exit 2 and the flows available", err)
rc, out, err = ingen(["flow", "test", "classification_agent"], ft)
t.ok(rc == 2 and "--prompt TEXT is required" in err, "no --prompt: exit 2", err)
rc, out, err = ingen(["flow", "nope"], ft)
t.ok(rc == 2 and 'unknown command "nope"' in err, "ingen flow with an unknown command: exit 2",
     err)
# without --replies and with no model configured: the flow fails with 503
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi"], ft)
t.ok(rc == 1 and "error 503: no language model is configured" in out,
     "no replies and no model: the flow fails with 503 and says what to set", out + err)

# without --replies: the configured model (the simulator), as a worker calls it
SIM_KEY = "cli-flows-sim-key-91d0"
sim = Sim(t, api_key=SIM_KEY, max_seconds=100).start()
SIM_ENV = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o", "INGENIOUS_MODELS__0__BASE_URL": sim.url,
           "INGENIOUS_MODELS__0__API_KEY": SIM_KEY, "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o"}
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", PROMPT, "--json"],
                     ft, env=SIM_ENV)
doc = json.loads(out) if out.startswith("{") else {}
call = (doc.get("model_calls") or [{}])[0]
p_tok = prompt_tokens([{"role": "system", "content": SYSTEM},
                       {"role": "user", "content": PROMPT}])
c_tok = tokens(sim_reply(PROMPT))
t.ok(rc == 0 and doc.get("status") == "answered" and
     doc["reply"]["agent_response"] == sim_reply(PROMPT),
     "the configured model: the flow answers with the model's answer", out + err)
t.ok(call.get("scripted") is False and call.get("model") == "gpt-4o" and
     call.get("prompt_tokens") == p_tok and call.get("completion_tokens") == c_tok and
     doc.get("tokens", {}).get("total") == p_tok + c_tok,
     "the call names the configured model and carries the tokens it billed", out)
t.eq(sim.key_count(""), 1,
     "one request reached the model (counted under the empty x-sim-key)")

# ---- ingen workflows -------------------------------------------------------------
rc, out, err = ingen(["workflows"], ft)
t.ok(rc == 0 and out.startswith("classification_agent (built-in, Core)\n") and
     "  description  Classifies a customer message" in out and
     "  source       built into ingen (flows/builtin/classification_agent.c)" in out and
     "  requires     a chat model" in out and
     "  config       incomplete, missing models.0.model, models.0.base_url, models.0.api_key"
     in out, "ingen workflows: the built-in flow, incomplete with no model", out + err)
rc, out, err = ingen(["workflows", "Classification-Agent"], ft, env=MODEL_ENV)
t.ok(rc == 0 and "  config       complete\n" in out and
     "  config keys  models.0.model, models.0.base_url, models.0.api_key\n" in out and
     "  services     Azure OpenAI\n" in out,
     "ingen workflows NAME: complete with a model, its keys and services", out + err)
t.ok("  try          curl -X POST http://127.0.0.1:8000/api/v1/chat -H 'Content-Type: "
     "application/json' -d '{\"user_prompt\":\"Hello, which bikes do you have in stock?\","
     "\"conversation_flow\":\"classification_agent\"}'\n" in out,
     "and a sample curl for the configured address", out)
rc, out, err = ingen(["workflows", "classification_agent"], ft, env=dict(
    MODEL_ENV, INGENIOUS_MODELS__0__AUTHENTICATION_METHOD="client_id_and_secret",
    INGENIOUS_MODELS__0__CLIENT_ID="cid"))
t.ok(rc == 0 and "incomplete, missing models.0.client_secret, models.0.tenant_id" in out,
     "the keys needed follow the model's authentication method", out + err)
rc, out, err = ingen(["workflows", "nothing-here"], ft)
t.ok(rc == 2 and 'unknown flow "nothing-here" (normalized: nothing_here); available: '
     'classification_agent' in err, "an unknown NAME: exit 2 and the flows available", err)
rc, out, err = ingen(["workflows", "--json"], ft, env=MODEL_ENV)
cli_list = json.loads(out) if rc == 0 else {}
# the knowledge-base-agent under the default KB_POLICY azure_only, with no Azure AI
# Search configured: listed, not configured
t.ok(rc == 0 and cli_list["summary"] == {"total": 4, "configured": 3, "unconfigured": 1} and
     cli_list["workflows"][0]["source_file"].startswith("built into ingen"),
     "ingen workflows --json: the list with the source file", out + err)

# ---- plugins: the scaffold's flow built with its Makefile, a flow with a tool --------
# A flow with a tool and a log line and a status line: what flow test shows of them.
PRICE_C = r"""/* bike_price.c -- a flow with one tool (test_cli_flows.py). */
#include <string.h>
#include <ingenious/flow.h>

static int
price_tool(struct ing_ctx *ctx, void *arg, const char *arguments,
    const char **result)
{
	(void)arg;
	*result = strstr(arguments, "TREK") != NULL ? "1299.99" : "unknown bike";
	ing_log(ctx, ING_LOG_INFO, "priced %s", arguments);
	return 0;
}

static int
bike_price_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	static const struct ing_tool tools[] = { {
		.name = "get_bike_price", .description = "the price of a bike",
		.parameters = "{\"type\":\"object\",\"properties\":"
		    "{\"ticker\":{\"type\":\"string\"}}}",
		.call = price_tool,
	} };
	struct ing_message m[2] = {
		{ "system", "You look up bike prices.", NULL },
		{ "user", req->user_prompt, NULL },
	};
	struct ing_llm_options opt = { .agent = "bike_lookup_agent",
	    .tools = tools, .n_tools = 1 };
	const char *answer;

	ing_emit_status(ctx, "looking up prices");
	if (ing_llm_chat(ctx, &opt, m, 2, &answer) != 0)
		return -1;
	reply->agent_response = answer;
	reply->followup_questions = "{\"next\":\"Which size?\"}";
	return 0;
}

static const struct ing_flow bike_price = {
	.name = "bike_price",
	.description = "Looks up bike prices with a tool",
	.category = "Testing",
	.run = bike_price_run,
};

ING_FLOW_MODULE("bike_price", "0.1.0", &bike_price);
"""

pc_env = {"PKG_CONFIG_PATH": BUILDDIR}  # the build tree's ingenious-uninstalled.pc
flowdir = os.path.join(proj, "ingenious_extensions", "flows", "task_manager")

def make(args):
    e = clean_env(dict(pc_env, INGEN=INGEN))
    p = subprocess.run(["make", "-C", flowdir] + args, env=e, capture_output=True,
                       timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()

rc, out, err = make([])
t.ok(rc == 0 and os.path.exists(os.path.join(flowdir, "task_manager.so")),
     "make builds the scaffold's task_manager.so with pkg-config", out + err)
rc, out, err = make(["check", "INGEN=" + INGEN])
t.ok(rc == 0 and "task_manager: ok" in out,
     "make check: ingen flow test gives the expected output", out + err)
# the guide's behaviour, as flow test prints it
rc, out, err = ingen(["flow", "test", "task_manager", "--prompt",
                      "Add task: Review documentation", "--replies",
                      "tests/replies.json", "--json"], flowdir,
                     env={"INGENIOUS_SERVER__FLOW_PATH": "."})
doc = json.loads(out) if out.startswith("{") else {}
t.ok(rc == 0 and doc["reply"]["agent_response"].endswith(
    "\n\n\u2705 Task functionality would be implemented here!") and
    doc["reply"]["memory_summary"] ==
    "Task management interaction: Add task: Review documentation..." and
    doc["model_calls"][0]["agent"] == "task_manager_agent" and
    "User request: Add task: Review documentation" in
    doc["model_calls"][0]["messages"][0]["content"],
    "the plugin: the guide's suffix, memory summary, agent and system prompt", out + err)
rc, out, err = make(["clean"])
t.ok(rc == 0 and not os.path.exists(os.path.join(flowdir, "task_manager.so")),
     "make clean removes the plugin", out + err)
rc, out, err = make([])
t.eq(rc, 0, "make builds it again")

# ingen workflows in the project lists the plugin with its file
rc, out, err = ingen(["workflows"], proj, env={"INGENIOUS_CONFIG": "ingenious.conf"})
t.ok(rc == 0 and "\ntask_manager (plugin, Custom)\n" in out and
     "task_manager/task_manager.so" in out and "classification_agent (built-in" in out,
     "ingen workflows lists the built-in flow and the plugin with its file", out + err)

# a flow with a tool: the tool loop as flow test shows it
tooldir = os.path.join(work, "toolflows")
os.makedirs(os.path.join(tooldir, "bike_price"))
src = os.path.join(tooldir, "bike_price", "bike_price.c")
with open(src, "w") as f:
    f.write(PRICE_C)
cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "ingenious"],
                        env=clean_env(pc_env), capture_output=True, text=True).stdout.split()
p = subprocess.run(["cc", "-shared", "-fPIC", "-o",
                    os.path.join(tooldir, "bike_price", "bike_price.so"), src] + cflags,
                   capture_output=True, text=True)
t.eq(p.returncode, 0, "the tool flow builds")
write("tools.json", [{"tool_calls": [{"name": "get_bike_price",
                                      "arguments": {"ticker": "MB-TREK-2021-XC"}}],
                      "prompt_tokens": 40, "completion_tokens": 9},
                     {"content": "The Marlin 7 costs 1299.99.", "prompt_tokens": 60,
                      "completion_tokens": 8}])
tenv = {"INGENIOUS_SERVER__FLOW_PATH": tooldir}
rc, out, err = ingen(["flow", "test", "bike-price", "--prompt", "Price of the Trek?",
                      "--replies", "tools.json"], ft, env=tenv)
t.eq(rc, 0, "a flow with a tool: exit 0")
t.ok("model call 1: agent bike_lookup_agent, model chat (scripted), 1 tool offered\n" in out
     and '  tool call: call_1_1 get_bike_price {"ticker":"MB-TREK-2021-XC"}\n' in out,
     "the first call asks for the tool", out)
t.ok('  assistant asks: call_1_1 get_bike_price {"ticker":"MB-TREK-2021-XC"}\n' in out and
     "  tool call_1_1: 1299.99\n" in out and
     "  answer: The Marlin 7 costs 1299.99.\n" in out,
     "the second call carries the tool's result and answers", out)
t.ok("tool call 1: agent bike_lookup_agent, tool get_bike_price\n"
     '  arguments: {"ticker":"MB-TREK-2021-XC"}\n  result: 1299.99\n' in out,
     "the tool call with its arguments and result", out)
t.ok("log status: looking up prices\n" in out and
     'log info: priced {"ticker":"MB-TREK-2021-XC"}\n' in out,
     "the flow's status and log lines", out)
t.ok("tokens: 100 prompt + 17 completion = 117 in 2 model calls\n" in out,
     "both calls are counted", out)
rc, out, err = ingen(["flow", "test", "bike_price", "--prompt", "Price of the Trek?",
                      "--replies", "tools.json", "--json"], ft, env=tenv)
doc = json.loads(out) if out.startswith("{") else {}
t.ok(rc == 0 and doc.get("tool_calls") == [{
    "agent": "bike_lookup_agent", "name": "get_bike_price",
    "arguments": '{"ticker":"MB-TREK-2021-XC"}', "result": "1299.99"}] and
    doc["model_calls"][0]["tool_calls"][0]["name"] == "get_bike_price" and
    doc["model_calls"][1]["messages"][-1] == {
        "role": "tool", "content": "1299.99", "name": None, "tool_call_id": "call_1_1"} and
    doc["reply"]["followup_questions"] == {"next": "Which size?"},
    "--json: the tool call, the messages of the tool round, the follow-up questions", out)
# the script ends inside the tool loop
write("tools_short.json", [{"tool_calls": [{"name": "get_bike_price",
                                            "arguments": {"ticker": "X"}}]}])
rc, out, err = ingen(["flow", "test", "bike_price", "--prompt", "Price?",
                      "--replies", "tools_short.json"], ft, env=tenv)
t.ok(rc == 1 and "ran out at model call 2 (agent bike_lookup_agent)" in out,
     "a script that ends in the tool loop names the call after the tool", out)

# ---- the routes ------------------------------------------------------------------
srv = Server(t, workers=1, env=MODEL_ENV).start()
st, _, b = request(srv.port, "GET", "/api/v1/workflows")
doc = json.loads(b) if st == 200 else {}
t.eq(st, 200, "GET /api/v1/workflows: 200 with no database")
wf = (doc.get("workflows") or [{}])[0]
t.eq(list(wf.keys())[:len(STATUS_KEYS)], STATUS_KEYS,
     "each workflow has the reference's keys, in its order")
t.ok(wf.get("workflow") == "classification_agent" and wf.get("category") == "Core" and
     wf.get("configured") is True and wf.get("ready") is True and
     wf.get("missing_config") == [] and
     wf.get("required_config") == ["models.0.model", "models.0.base_url", "models.0.api_key"] and
     wf.get("external_services") == ["Azure OpenAI"] and
     wf.get("supported_names") == ["classification_agent", "classification-agent"] and
     wf.get("documentation") == "See docs/flows.md for detailed setup instructions",
     "the built-in flow: configured, ready, its keys, services and both names", b)
t.ok(("http://127.0.0.1:%d/api/v1/chat" % srv.port) in wf.get("test_command", ""),
     "the test command uses the server's port", wf.get("test_command"))
t.ok("source_file" not in wf, "no file path is shown to a client")
t.ok(doc.get("by_category") == {"Core": ["classification_agent", "bike_insights",
                                         "knowledge_base_agent",
                                         "sql_manipulation_agent"]} and
     doc.get("summary") == {"total": 4, "configured": 3, "unconfigured": 1} and
     doc.get("naming_note") == "Workflows support both hyphenated (bike-insights) and "
     "underscored (bike_insights) naming formats",
     "by_category, summary and naming_note", b)
# the command says the same as the route
cli_wf = dict(cli_list["workflows"][0])
cli_wf.pop("source_file")
cli_wf["test_command"] = wf.get("test_command")
t.eq(cli_wf, wf, "ingen workflows --json and the route give the same facts")

st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/Classification-Agent")
one = json.loads(b) if st == 200 else {}
t.ok(st == 200 and list(one.keys())[:len(STATUS_KEYS)] == STATUS_KEYS and
     one["workflow"] == "classification_agent" and one["ready"] is True and
     "supported_names" not in one,
     "GET /api/v1/workflow-status/{name}: the flow's status, any spelling", b)
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/bike-insights")
one = json.loads(b) if st == 200 else {}
t.ok(st == 200 and one.get("workflow") == "bike_insights" and one.get("ready") is True and
     "\\\"revision_id\\\":\\\"quickstart-1\\\"" in one.get("test_command", ""),
     "the built-in bike-insights: found by its hyphenated name, a request with a payload", b)
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/bike-insight")
t.eq((st, b), (404, b'{"detail":"Unknown workflow: bike-insight (normalized: bike_insight). '
                    b'Available: [\'classification_agent\', \'bike_insights\', '
                    b'\'knowledge_base_agent\', \'sql_manipulation_agent\']"}'),
     "an unknown flow: 404 with the flows available (not the reference's 500)")
srv.stop()

# with authentication on: the same gate as every other non-health route
srv = Server(t, workers=1, env=dict(MODEL_ENV, **{
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE": "true",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME": "admin",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD": "secure_password"})).start()
st, _, b = request(srv.port, "GET", "/api/v1/workflows")
t.eq((st, b), (401, b'{"detail":"Authentication required"}'),
     "authentication on: /workflows needs credentials")
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/classification_agent")
t.eq(st, 401, "and so does /workflow-status")
auth = {"Authorization": "Basic YWRtaW46c2VjdXJlX3Bhc3N3b3Jk"}
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/classification_agent",
                   headers=auth)
one = json.loads(b) if st == 200 else {}
t.ok(st == 200 and (' -u "admin:$INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD" '
                    in one.get("test_command", "")) and "secure_password" not in b.decode(),
     "with credentials: 200, and the test command carries -u with the user, "
     "never the password", b)
srv.stop()

# the project of ingen init, served: the plugin is listed like the built-in flow,
# and the scaffold's flow file task_manager_decl as declarative
srv = Server(t, workers=1, cwd=proj, env=MODEL_ENV).start()
st, _, b = request(srv.port, "GET", "/api/v1/workflows")
doc = json.loads(b) if st == 200 else {}
names = [w.get("workflow") for w in doc.get("workflows", [])]
tmw = ([w for w in doc.get("workflows", []) if w.get("workflow") == "task_manager"] or [{}])[0]
t.ok(st == 200 and names == ["classification_agent", "bike_insights",
                             "knowledge_base_agent", "sql_manipulation_agent",
                             "task_manager",
                             "task_manager_decl"] and
     tmw.get("category") == "Custom" and tmw.get("origin") == "plugin" and
     tmw.get("ready") is True and tmw.get("supported_names") == ["task_manager", "task-manager"]
     and "source_file" not in tmw and "ingenious_extensions" not in b.decode(),
     "GET /api/v1/workflows lists the plugin (Custom, ready), never its path", b)
t.ok(doc.get("by_category") == {"Core": ["classification_agent", "bike_insights",
                                         "knowledge_base_agent",
                                         "sql_manipulation_agent"],
                                "Custom": ["task_manager", "task_manager_decl"]}
     and doc.get("summary") == {"total": 6, "configured": 5, "unconfigured": 1},
     "by_category and summary count it", b)
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/Task-Manager")
one = json.loads(b) if st == 200 else {}
t.ok(st == 200 and one.get("workflow") == "task_manager" and one.get("description") ==
     "Adds, lists, completes and deletes tasks (one agent)" and
     '"conversation_flow":"task_manager"' in one.get("test_command", "") and
     "Add task: Review documentation" in one.get("test_command", ""),
     "GET /api/v1/workflow-status/Task-Manager: the plugin's status and a request for it", b)
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/nothing")
t.eq((st, b), (404, b'{"detail":"Unknown workflow: nothing (normalized: nothing). '
                    b'Available: [\'classification_agent\', \'bike_insights\', '
                    b'\'knowledge_base_agent\', \'sql_manipulation_agent\', \'task_manager\', '
                    b'\'task_manager_decl\']"}'),
     "unknown: 404 listing the plugin too")
decl = ([w for w in doc.get("workflows", []) if w.get("workflow") == "task_manager_decl"]
        or [{}])[0]
t.ok(decl.get("origin") == "declarative" and decl.get("ready") is True,
     "the scaffold's flow file is listed as declarative, ready", str(decl))
srv.stop()

# built-in flows switched off: listed, not ready; flow test refuses them
OFF = {"INGENIOUS_CHAT_SERVICE__ENABLE_BUILTIN_WORKFLOWS": "false"}
rc, out, err = ingen(["workflows", "classification_agent"], ft, env=dict(MODEL_ENV, **OFF))
t.ok(rc == 0 and "  state        disabled (chat_service.enable_builtin_workflows is false)\n"
     in out, "ingen workflows: a disabled built-in flow says so", out + err)
rc, out, err = ingen(["workflows", "classification_agent", "--json"], ft,
                     env=dict(MODEL_ENV, **OFF))
one = json.loads(out) if rc == 0 else {}
t.ok(one.get("enabled") is False and one.get("ready") is False and
     one.get("configured") is True, "--json: configured, not enabled, not ready", out + err)
rc, out, err = ingen(["flow", "test", "classification_agent", "--prompt", "hi",
                      "--replies", "ok.json"], ft, env=OFF)
t.ok(rc == 2 and "is built in and disabled (chat_service.enable_builtin_workflows is false)"
     in err, "ingen flow test: a disabled built-in flow is refused (exit 2)", err)

# a broken plugin on the flow path: the loader's message, exit 1
bad = os.path.join(work, "badflows")
os.mkdir(bad)
with open(os.path.join(bad, "broken.so"), "w") as f:
    f.write("not an ELF file\n")
for args in (["workflows"], ["flow", "test", "classification_agent", "--prompt", "hi",
                             "--replies", "ok.json"]):
    rc, out, err = ingen(args, ft, env={"INGENIOUS_SERVER__FLOW_PATH": bad})
    t.ok(rc == 1 and "broken.so" in err and out == "",
         "ingen %s: a broken plugin fails with the loader's message naming it (exit 1)"
         % args[0], err)

t.done()
