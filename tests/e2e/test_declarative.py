"""test_declarative.py -- flows without code (issue 10, section 3), end to
end: the seed guide's task manager written as a flow file, served by a real
`ingen serve` started before the file exists (SIGHUP, no restart), with
PostgreSQL and the Azure OpenAI simulator.

The guide's curl of test_task_manager.json and its expected response (the
"add task" suffix, matched without regard to case; the memory summary
"Task management interaction: <first 50 characters>..."), the model call's
usage row under the agent's name; the reply streamed after the agents' events; `ingen workflows` and GET
/api/v1/workflows listing it as declarative with its file; `ingen flow test`
running it in-process; an agent whose system prompt is a template file of
the flow's revision (rendered with the request and the excerpt, the usage
row recording revision, file and hash); a broken flow file on SIGHUP (the old generation
serving on, the error with file and line in the log and from `ingen
validate`); a flow file replacing a built-in flow (a warning) and one
clashing with a C plugin of its name (refused, naming both files)."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import (BUILDDIR, INGEN, SRCDIR, Server, Tap, clean_env, request,  # noqa: E402
                   slack)
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=slack(180))
KEY = "decl-sim-key-4f1a"
work = tempfile.mkdtemp(prefix="ingen-decl-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or subprocess.run(["rm", "-rf", work]))
flows = os.path.join(work, "flows")
os.makedirs(flows)
revs = os.path.join(work, "revs")
SYS_TEMPLATE = "You review: {{ request.user_prompt }} (in short: {{ excerpt }})"
os.makedirs(os.path.join(revs, "templates", "prompts", "r1"))
with open(os.path.join(revs, "templates", "prompts", "r1", "reviewer.jinja"), "w") as f:
    f.write(SYS_TEMPLATE)
# a flow whose system prompt is a template file of revision r1
REVIEW_FLOW = '''name = "review";
revision = "r1";
excerpt_chars = 5;
agents = ( { name = "reviewer"; system_template = "reviewer.jinja"; } );
steps = ( "reviewer" );
'''

# The guide's task manager, with no code: what a user writes.
TASK_MANAGER_FLOW = r'''# task_manager.flow -- the seed guide's task manager, without code
name = "task_manager";
description = "Custom task manager conversation flow";
agents = (
  {
    name = "task_manager_agent";
    system = "You are a helpful task management assistant.\n\n"
             "You can help users:\n1. Add new tasks\n2. List existing tasks\n"
             "3. Complete tasks\n4. Delete tasks\n\n"
             "User request: {{ request.user_prompt }}";
  }
);
steps = ( "task_manager_agent" );
reply_agent = "task_manager_agent";
append_if = { contains = "add task"; text = "\n\n\u2705 Task functionality would be implemented here!"; };
memory = "Task management interaction: {{ excerpt }}...";
'''.replace("\\u2705", "\u2705")

# steps (line 3) names an agent that is not defined
BROKEN_FLOW = '''name = "broken";
agents = ( { name = "task_agent"; system = "You help."; } );
steps = (
  "writer"
);
'''


def put(path, text):
    """Install a file the way an editor or a deployment does: aside, then
    renamed over."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


pg = PgCluster(t)
sim = Sim(t, api_key=KEY, max_seconds=170, args=["--quiet"]).start()
ENV = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o",
       "INGENIOUS_MODELS__0__API_TYPE": "rest",
       "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
       "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
       "INGENIOUS_MODELS__0__API_KEY": KEY,
       "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
       "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
       "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
       "INGENIOUS_FLOW_PATH": flows,
       "INGENIOUS_FILE_STORAGE__REVISIONS__PATH": revs}


def ingen(args, flow_path=flows):
    env = clean_env(dict(ENV, INGENIOUS_FLOW_PATH=flow_path))
    return subprocess.run([INGEN] + args, env=env, cwd=work, capture_output=True,
                          text=True, timeout=slack(60))


def chat(body):
    st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                       headers={"Content-Type": "application/json"}, timeout=slack(15))
    try:
        return st, json.loads(b)
    except ValueError:
        return st, b.decode(errors="replace")


def logged(words):
    return [l for l in srv.log().replace('\\"', '"').splitlines() if words in l]


# ---- the server starts before the flow file exists --------------------------
srv = Server(t, workers=2, env=ENV).start(timeout=slack(20))
GUIDE = json.dumps({"user_prompt": "Add task: Review documentation",
                    "conversation_flow": "task_manager"})
st, body = chat(GUIDE)
t.eq(st, 404, "before the flow file exists: 404")

put(os.path.join(flows, "task_manager.flow"), TASK_MANAGER_FLOW)
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("generation 2 is serving", timeout=slack(15)),
     "SIGHUP: the flow file is loaded, generation 2 serves", srv.log()[-1500:])
t.eq(logged("level=error"), [], "no error logged by the reload")

# ---- the guide's curl and its expected response -----------------------------
st, resp = chat(GUIDE)
t.ok(st == 200, "the guide's test_task_manager.json: 200", str(resp)[:300])
resp = resp if isinstance(resp, dict) else {}
t.ok(resp.get("agent_response", "").endswith(
    "\n\n\u2705 Task functionality would be implemented here!"),
    "the answer ends with the guide's suffix", resp.get("agent_response", "")[-200:])
t.ok(len(resp.get("agent_response", "")) > 60, "after the model's answer")
t.eq(resp.get("memory_summary"),
     "Task management interaction: Add task: Review documentation...",
     "the guide's memory summary")
t.ok(resp.get("token_count", 0) > 0, "the tokens are counted")
rows = pg.sql("SELECT agent_name FROM llm_usage WHERE thread_id = '%s'" %
              resp.get("thread_id", ""))
t.eq([r[0] for r in rows], ["task_manager_agent"],
     "one usage row, under the agent's name")
msgs = pg.sql("SELECT role FROM messages WHERE thread_id = '%s' ORDER BY seq" %
              resp.get("thread_id", ""))
t.eq([m[0] for m in msgs], ["user", "assistant"], "the turn is stored")

long_prompt = "ADD TASK: write the release notes for version 2.1 of the server, " \
              "with every change since 2.0"
st, resp = chat(json.dumps({"user_prompt": long_prompt,
                            "conversation_flow": "Task-Manager"}))
t.ok(st == 200 and resp["agent_response"].endswith("implemented here!"),
     "the rule matches without regard to case (and the flow name in any spelling)")
t.eq(resp.get("memory_summary"),
     "Task management interaction: %s..." % long_prompt[:50],
     "the memory summary has the first 50 characters of the request")
st, resp = chat(json.dumps({"user_prompt": "List my tasks",
                            "conversation_flow": "task_manager"}))
t.ok(st == 200 and "implemented here" not in resp["agent_response"],
     "no suffix when the request does not say add task")

# streaming, with the agents' events: the reply arrives as content frames
st, _, b = request(srv.port, "POST", "/api/v1/chat/stream",
                   {"user_prompt": "Add task: stream it", "conversation_flow": "task_manager",
                    "stream_events": True}, timeout=slack(15))
frames = [json.loads(l[6:]) for l in b.decode().split("\n") if l.startswith("data: ")]
content = "".join(f["data"]["content"] for f in frames
                  if f.get("event") == "data" and f["data"].get("chunk_type") == "content")
events = [f.get("event") for f in frames]
final = [f["data"] for f in frames if f.get("event") == "data" and f["data"].get("is_final")]
t.ok(st == 200 and "agent_start" in events and "status" in events and
     content.endswith("\n\n\u2705 Task functionality would be implemented here!") and
     len(content) > 60 and final and final[0].get("memory_summary") ==
     "Task management interaction: Add task: stream it...",
     "streaming: events, then the whole reply as content, then the final chunk", b[-1500:])

# ---- listings ---------------------------------------------------------------
r = ingen(["workflows"])
t.ok(r.returncode == 0 and "task_manager (declarative, Custom)" in r.stdout and
     os.path.join(flows, "task_manager.flow") in r.stdout,
     "ingen workflows lists the flow file as declarative, with its file",
     r.stdout + r.stderr)
st, _, b = request(srv.port, "GET", "/api/v1/workflows")
wf = [w for w in json.loads(b).get("workflows", []) if w.get("workflow") == "task_manager"] \
    if st == 200 else []
t.ok(len(wf) == 1 and wf[0].get("origin") == "declarative" and
     wf[0].get("description") == "Custom task manager conversation flow" and
     "flows/" not in b.decode(),
     "GET /api/v1/workflows lists it as declarative (and shows no path)", b[:600])

# ---- ingen flow test runs it in-process, against scripted replies ----------
replies = os.path.join(work, "replies.json")
with open(replies, "w") as f:
    json.dump([{"content": "Noted: review documentation.", "prompt_tokens": 40,
                "completion_tokens": 6}], f)
r = ingen(["flow", "test", "task_manager", "--prompt", "Add task: Review documentation",
           "--replies", replies, "--json"])
doc = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip().startswith("{") else {}
calls = doc.get("model_calls") or [{}]
t.ok(r.returncode == 0 and (doc.get("reply") or {}).get("agent_response") ==
     "Noted: review documentation.\n\n\u2705 Task functionality would be implemented here!"
     and calls[0].get("agent") == "task_manager_agent" and
     calls[0].get("messages", [{}])[0].get("content", "").endswith(
         "User request: Add task: Review documentation"),
     "ingen flow test runs the flow file with the scripted reply", r.stdout[-1500:] + r.stderr)

# ---- a broken flow file on SIGHUP: the old generation serves on -------------
before = set(srv.workers())
put(os.path.join(flows, "broken.flow"), BROKEN_FLOW)
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("keeping generation 2", timeout=slack(15)),
     "SIGHUP with a broken flow file is refused", srv.log()[-1500:])
MSG = '%s:3: agent "writer" in steps is not defined (agents: task_agent)' % \
    os.path.join(flows, "broken.flow")
t.ok(logged(MSG), "the log names the file, the line and the problem",
     "\n".join(srv.log().splitlines()[-6:]))
t.eq(set(srv.workers()), before, "the old workers keep serving")
st, resp = chat(GUIDE)
t.ok(st == 200 and resp["agent_response"].endswith("implemented here!"),
     "the old generation still answers the task manager")
r = ingen(["validate"])
t.ok(r.returncode != 0 and MSG in r.stderr,
     "ingen validate reports the broken file with its line", r.stdout + r.stderr)
os.unlink(os.path.join(flows, "broken.flow"))
put(os.path.join(flows, "review.flow"), REVIEW_FLOW)
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("generation 3 is serving", timeout=slack(15)),
     "the file removed (and a flow with a template file added), the next SIGHUP serves again")

# ---- a system prompt from a template file of the flow's revision -------------
st, resp = chat(json.dumps({"user_prompt": "my essay on bikes", "conversation_flow": "review"}))
t.ok(st == 200 and resp.get("agent_response"), "the flow with a template file answers",
     str(resp)[:300])
rows = pg.sql("SELECT agent_name, prompt_revision, prompt_file, prompt_hash FROM llm_usage "
              "WHERE thread_id = '%s'" % (resp.get("thread_id", "") if st == 200 else ""))
t.eq([tuple(r) for r in rows],
     [("reviewer", "r1", "reviewer.jinja", hashlib.sha256(SYS_TEMPLATE.encode()).hexdigest())],
     "its usage row records the revision, the file and the template's hash")
tr = pg.sql("SELECT transcript::text FROM llm_usage WHERE thread_id = '%s'" %
            (resp.get("thread_id", "") if st == 200 else ""))
t.ok(tr and "You review: my essay on bikes (in short: my es)" in tr[0][0],
     "the template was rendered with the request and the flow's excerpt", str(tr)[:600])

# ---- the rules between flows ------------------------------------------------
other = os.path.join(work, "other")
put(os.path.join(other, "classification_agent.flow"),
    TASK_MANAGER_FLOW.replace('name = "task_manager";', 'name = "classification_agent";'))
r = ingen(["validate", "--config-only"], flow_path=other)
t.ok(r.returncode == 0 and 'warning: flow file "%s/classification_agent.flow" replaces '
     'the built-in flow "classification_agent"' % other in r.stderr,
     "a flow file with a built-in's name replaces it, with a warning", r.stdout + r.stderr)
clash = os.path.join(work, "clash")
os.makedirs(clash)
cc = subprocess.run(["sh", "-c", "cc -shared -fPIC -o %s/echo.so %s/tests/plugins/echo.c "
                     "$(PKG_CONFIG_PATH=%s pkg-config --cflags ingenious)" %
                     (clash, SRCDIR, BUILDDIR)], capture_output=True, text=True)
t.ok(cc.returncode == 0, "a C plugin echo.so is built", cc.stderr[-800:])
put(os.path.join(clash, "echo.flow"),
    TASK_MANAGER_FLOW.replace('name = "task_manager";', 'name = "echo";'))
r = ingen(["validate"], flow_path=clash)
t.ok(r.returncode != 0 and 'flow "echo" is declared by two files on the flow path, '
     '"%s/echo.so" and "%s/echo.flow"' % (clash, clash) in r.stderr,
     "a flow file with a plugin's name is refused, naming both files", r.stdout + r.stderr)
twins = os.path.join(work, "twins")
put(os.path.join(twins, "dup.flow"), TASK_MANAGER_FLOW.replace('name = "task_manager";', ''))
put(os.path.join(twins, "dup", "dup.flow"),
    TASK_MANAGER_FLOW.replace('name = "task_manager";', ''))
r = ingen(["validate"], flow_path=twins)
t.ok(r.returncode != 0 and 'flow "dup" is declared by two files on the flow path, '
     '"%s/dup/dup.flow" and "%s/dup.flow"' % (twins, twins) in r.stderr,
     "two flow files of one name (<x>.flow and <x>/<x>.flow, the name from the file) "
     "are refused, naming both", r.stdout + r.stderr)

srv.stop()
t.done()
