"""test_seed_guide.py -- the custom-workflow guide of the Python product
(../shared/reference/custom-workflow-guide.md), step by step, in its C form
(docs/flows.md), against the real `ingen serve`, a private PostgreSQL and the
Azure OpenAI simulator.  The server is started once, before the flow exists,
and never restarted.

Step 1: `ingen init` in an empty directory.  Step 2: the guide's task-manager
logic written in task_manager.c (system prompt with the user's request, one
agent, the "add task" suffix, the memory summary).  Step 3: `make` (with
`pkg-config ingenious`), then SIGHUP instead of PYTHONPATH and a restart.
Step 4: the guide's test_task_manager.json with its curl.  Step 5 as written:
authentication enabled in .env (SIGHUP again), Basic with the right and the
wrong password, login, the flow with the token, verify, an invalid token --
each with the guide's expected body."""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, INGEN, BUILDDIR, clean_env, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=slack(240))

# The guide's Step 2, in C: what a user writes.
TASK_MANAGER_C = r'''/* task_manager.c -- the seed guide's task manager, in C. */
#define _GNU_SOURCE             /* strcasestr */
#include <string.h>

#include <ingenious/flow.h>

static int
task_manager_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	struct ing_message m[2] = {
		{ "system", ing_sprintf(ctx, "You are a helpful task management "
		    "assistant.\n\nYou can help users:\n1. Add new tasks\n2. List "
		    "existing tasks\n3. Complete tasks\n4. Delete tasks\n\n"
		    "User request: %s", req->user_prompt), NULL },
		{ "user", req->user_prompt, NULL },
	};
	struct ing_llm_options opt = { .agent = "task_manager_agent" };
	const char *result;

	if (ing_llm_chat(ctx, &opt, m, 2, &result) != 0)
		result = ing_sprintf(ctx, "I'm here to help you manage tasks! "
		    "Error: %s", ing_last_error(ctx, NULL));
	else if (strcasestr(req->user_prompt, "add task") != NULL)
		result = ing_sprintf(ctx, "%s\n\n\u2705 Task functionality would "
		    "be implemented here!", result);
	reply->agent_response = result;
	reply->memory_summary = ing_sprintf(ctx, "Task management interaction: "
	    "%.50s...", req->user_prompt);
	return 0;
}

static const struct ing_flow task_manager = {
	.name = "task_manager",
	.description = "Custom task manager conversation flow",
	.run = task_manager_run,
};

ING_FLOW_MODULE("task_manager", "1.0.0", &task_manager);
'''

pg = PgCluster(t)
sim = Sim(t, api_key="sim-key").start()
proj = tempfile.mkdtemp(prefix="ingen-seed-")
t.at_exit(lambda: shutil.rmtree(proj, ignore_errors=True))

# the build tree's ingenious-uninstalled.pc and <ingenious/flow.h>
env = clean_env({"PKG_CONFIG_PATH": BUILDDIR})


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=proj, env=env, capture_output=True, text=True,
                          timeout=slack(60), **kw)


# ---- Step 1: ingen init in an empty directory -----------------------------
r = run([INGEN, "init"])
t.eq(r.returncode, 0, "ingen init succeeds in an empty directory")
flowdir = os.path.join(proj, "ingenious_extensions", "flows", "task_manager")
for rel in ("ingenious_extensions/flows/task_manager/task_manager.c",
            "ingenious_extensions/flows/task_manager/Makefile",
            "test_task_manager.json", "README.md", ".env.example", ".gitignore"):
    t.ok(os.path.exists(os.path.join(proj, rel)), "ingen init created %s" % rel)
# the project's .gitignore keeps the secrets and the state out of git
# (git is how the project itself is cloned: always there)
subprocess.run(["git", "init", "-q", proj], check=False)
for rel in (".env", ".env.local", "jwt.key"):
    open(os.path.join(proj, rel), "w").write("secret\n")
os.makedirs(os.path.join(proj, ".ingenious"), exist_ok=True)
open(os.path.join(proj, ".ingenious", "jwt.key"), "w").write("k\n")
r = subprocess.run(["git", "-C", proj, "status", "--porcelain", "--untracked-files=all"],
                   capture_output=True, text=True)
listed = [l[3:] for l in r.stdout.splitlines()]
t.ok(r.returncode == 0 and not any(p.startswith((".env", ".ingenious", "jwt.key"))
                                   and p != ".env.example" for p in listed)
     and ".env.example" in listed and "ingenious.conf" in listed,
     "git ignores .env, .env.local, jwt.key and .ingenious/, not .env.example", listed)
for rel in (".env", ".env.local", "jwt.key"):
    os.unlink(os.path.join(proj, rel))
shutil.rmtree(os.path.join(proj, ".git"))
shutil.rmtree(os.path.join(proj, ".ingenious"))

# The server starts now, before the flow exists, and is never restarted.
srv = Server(t, workers=2, cwd=proj, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4.1-nano",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": "sim-key",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt-4.1-nano",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__JWT_SECRET_KEY":
        "a-seed-guide-test-secret-of-more-than-32-bytes-0123",
})
srv.start(timeout=slack(20))
body = open(os.path.join(proj, "test_task_manager.json")).read()
t.eq(json.loads(body), {"user_prompt": "Add task: Review documentation",
                        "conversation_flow": "task_manager"},
     "test_task_manager.json is the guide's")
st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                   headers={"Content-Type": "application/json"})
t.eq(st, 404, "before the flow is built: 404")
t.ok(b"classification_agent" in b and b"ingenious_extensions" not in b,
     "the 404 lists the flows there are, never a module path", b[:300])

# ---- Step 2 and 3: the guide's logic in C, make, SIGHUP --------------------
with open(os.path.join(flowdir, "task_manager.c"), "w") as f:
    f.write(TASK_MANAGER_C)
r = run(["make", "-C", flowdir])
t.ok(r.returncode == 0, "make builds the flow", r.stdout[-2000:] + r.stderr[-2000:])
t.ok(os.path.exists(os.path.join(flowdir, "task_manager.so")), "task_manager.so exists")


def reload(gen):
    old = set(srv.workers())
    srv.signal(signal.SIGHUP)
    deadline = time.time() + slack(15)
    while time.time() < deadline:
        try:
            if srv.metrics().get("ingenious_config_generation") == gen and \
                    not (old & set(srv.workers())):
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


t.ok(reload(2), "SIGHUP: generation 2 serves, no restart")
t.ok(len(srv.log_lines("level=error")) == 0, "no error logged by the reload",
     "\n".join(srv.log_lines("level=error"))[:1000])

# ---- Step 4: the guide's curl ---------------------------------------------
st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                   headers={"Content-Type": "application/json"})
t.ok(st == 200, "Step 4: the custom flow answers 200", b[:300])
resp = json.loads(b)
for k in ("thread_id", "message_id", "agent_response", "token_count", "memory_summary"):
    t.ok(k in resp, "Step 4: the response has %s" % k)
t.ok(resp["agent_response"].endswith("\n\n\u2705 Task functionality would be implemented here!"),
     "Step 4: the answer ends with the guide's suffix", resp["agent_response"][-200:])
t.eq(resp["memory_summary"], "Task management interaction: Add task: Review documentation...",
     "Step 4: the guide's memory summary")
t.ok(resp["token_count"] > 0, "Step 4: the tokens are counted (the original says 0)")

# the turn and its usage are in PostgreSQL, under the agent's name
rows = pg.sql("SELECT agent_name, total_tokens FROM llm_usage "
              "WHERE thread_id = '%s'" % resp["thread_id"])
t.eq([r[0] for r in rows], ["task_manager_agent"], "the model call is accounted to the agent")
msgs = pg.sql("SELECT role FROM messages WHERE thread_id = '%s' "
              "ORDER BY seq" % resp["thread_id"])
t.eq([m[0] for m in msgs], ["user", "assistant"], "the turn is stored")

# ---- Step 5: authentication, as written ------------------------------------
with open(os.path.join(proj, ".env"), "a") as f:
    f.write("# Enable authentication\n"
            "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE=true\n"
            "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME=admin\n"
            "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD=secure_password\n")
t.ok(reload(3), "Step 5: SIGHUP turns authentication on, no restart")


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


H = {"Content-Type": "application/json"}
st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                   headers=dict(H, Authorization=basic("admin", "secure_password")))
t.eq(st, 200, "Step 5: Basic with the right password: the flow answers")
t.ok(json.loads(b)["agent_response"].endswith("implemented here!"), "Step 5: the full response")
st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                   headers=dict(H, Authorization=basic("wrong", "wrong")))
t.eq((st, b), (401, b'{"detail":"Incorrect username or password"}'),
     "Step 5: wrong credentials: the guide's 401")
st, _, b = request(srv.port, "POST", "/api/v1/auth/login",
                   body={"username": "admin", "password": "secure_password"})
t.eq(st, 200, "Step 5: login")
token = json.loads(b)["access_token"]
st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                   headers=dict(H, Authorization="Bearer " + token))
t.eq(st, 200, "Step 5: the flow with the token")
st, _, b = request(srv.port, "GET", "/api/v1/auth/verify",
                   headers={"Authorization": "Bearer " + token})
t.eq((st, json.loads(b)), (200, {"username": "admin", "valid": True}),
     "Step 5: verify: the guide's body")
st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body,
                   headers=dict(H, Authorization="Bearer invalid-token"))
t.eq((st, b), (401, b'{"detail":"Authentication required"}'),
     "Step 5: an invalid token: the guide's 401")

srv.stop()
t.done()
