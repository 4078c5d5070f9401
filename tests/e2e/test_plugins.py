"""test_plugins.py -- flows in C on the flow path (issue 9, section 2), end to
end: test plugins (tests/plugins/*.c) compiled here with `cc -shared -fPIC`
and `pkg-config --cflags ingenious` of the build tree, found by the real
server on INGENIOUS_FLOW_PATH, and answering chat turns through PostgreSQL
and the simulator.

Every refusal of the loader with its message (`ingen validate`, at start,
on SIGHUP), the old generation serving on after a refused SIGHUP, new,
changed and removed plugins loaded on SIGHUP, a plugin replacing a
built-in flow (with a warning), built-in flows disabled, a plugin that
crashes its worker on one prompt, and a plugin changed under load with
zero failed requests.  Plugins are replaced the way an install does
(written aside, then renamed over), never written into."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import (BUILDDIR, INGEN, SANITIZER, SRCDIR, Server, Tap, clean_env,  # noqa: E402
                   request, slack)
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=240)

KEY = "plugins-sim-key-81d2"
PLUGINS = os.path.join(SRCDIR, "tests", "plugins")
CC = os.environ.get("CC") or "cc"
work = tempfile.mkdtemp(prefix="ingen-plugins-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or subprocess.run(["rm", "-rf", work]))

# ---- the build tree gives plugin authors the header and pkg-config ---------
pc_env = dict(os.environ, PKG_CONFIG_PATH=BUILDDIR)
pc = subprocess.run(["pkg-config", "--cflags", "--libs", "ingenious"], env=pc_env,
                    capture_output=True, text=True)
CFLAGS = pc.stdout.split()
incs = [f[2:] for f in CFLAGS if f.startswith("-I")]
t.ok(pc.returncode == 0 and any(os.path.isfile(os.path.join(d, "ingenious", "flow.h"))
                                for d in incs),
     "PKG_CONFIG_PATH=<builddir> pkg-config --cflags ingenious finds <ingenious/flow.h>",
     pc.stdout + pc.stderr)

# the flow API is exported from `ingen`, and nothing else of it
nm = subprocess.run(["nm", "-D", "--defined-only", INGEN], capture_output=True, text=True)
exported = set(l.split()[-1] for l in nm.stdout.splitlines() if l.strip())
with open(os.path.join(SRCDIR, "flows", "flow.h")) as f:
    api = set(re.findall(r"^\s*(?:const\s+)?(?:void|int|char|const char)\s*\*?\s*(ing_\w+)\(",
                         f.read(), re.M))
missing = sorted(n for n in api if n not in exported and n in
                 subprocess.run(["nm", INGEN], capture_output=True, text=True).stdout)
t.ok(len(api) >= 8 and not missing,
     "every function of flow.h that ingen defines is exported to plugins (%d)" % len(api),
     "not exported: %r" % missing)
t.ok(not [s for s in exported if s.startswith(("llm_", "db_", "registry_", "plugin_", "xmalloc"))],
     "no internal function of ingen is exported")


def build(src, out, *defines, werror=True):
    """Compile tests/plugins/<src> into `out` the way an install replaces a
    file: written aside, then renamed over the old one."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    cmd = [CC, "-shared", "-fPIC", "-Wall"] + (["-Werror"] if werror else []) + \
        ["-o", tmp, os.path.join(PLUGINS, src)] + list(defines) + CFLAGS
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), r.stderr))
    os.rename(tmp, out)
    return out


def q(s):
    return '-D%s="%s"' % tuple(s.split("=", 1)) if "=" in s else s


# every refused plugin of the brief, with the words of its message
BROKEN = [
    ("abi_major", ["-DABI_MAJOR=1"],
     'was built for flow ABI 1.0, this server has 2.2: rebuild it against '
     '<ingenious/flow.h> ABI 2.x: make clean && make'),
    ("abi_minor", ["-DABI_MINOR=9"],
     "was built for flow ABI 2.9, newer than this server's 2.2"),
    ("no_descriptor", ["-DNO_DESCRIPTOR"],
     "has no ing_flow_module: declare the flows with ING_FLOW_MODULE(...) of "
     "<ingenious/flow.h>"),
    ("bad_magic", ["-DBAD_MAGIC"],
     "has a bad magic number in ing_flow_module (0x12345678, expected 0x464c4f57)"),
    ("bad_signature", ["-DBAD_SIGNATURE"],
     "is not binary compatible with this server: it was built with pointer 4"),
    ("no_run", ["-DNO_RUN"], 'flow "broken_ok" has no run function'),
    ("bad_name", ["-DBAD_NAME"],
     'flow name "Broken-Flow" is not in normal form: name it "broken_flow"'),
    ("undefined", ["-DUNDEFINED"], "undefined symbol: ing_no_such_function"),
]
broken = {}
for name, defs, words in BROKEN:
    broken[name] = build("broken.c", os.path.join(work, "broken", name, name + ".so"),
                         *defs, werror=False)

# ---- ingen validate: every refusal, one line naming the file ----------------
good = os.path.join(work, "good")
build("echo.c", os.path.join(good, "echo.so"))


def validate(flow_path, extra=None):
    env = clean_env({"INGENIOUS_FLOW_PATH": flow_path})
    if SANITIZER:
        # a test plugin crashes its loader on purpose: not a sanitizer finding
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":handle_segv=0"
    env.update(extra or {})
    return subprocess.run([INGEN, "validate", "--config-only"], env=env, cwd=work, capture_output=True,
                          text=True, timeout=60)


r = validate(good + ":" + os.path.join(work, "no-such-folder"))
t.ok(r.returncode == 0 and "echo (%s/echo.so)" % good in r.stdout
     and "classification_agent (built-in)" in r.stdout,
     "ingen validate lists a good plugin and the built-in flow (a missing folder is skipped)",
     r.stdout + r.stderr)
for name, defs, words in BROKEN:
    r = validate(good + ":" + os.path.dirname(broken[name]))
    t.ok(r.returncode == 2 and words in r.stderr and '"%s"' % broken[name] in r.stderr,
         "ingen validate refuses the %s plugin, naming the file" % name, r.stdout + r.stderr)

repl = build("echo.c", os.path.join(work, "repl", "classification_agent.so"),
             q("FLOW_NAME=classification_agent"))
r = validate(os.path.dirname(repl))
t.ok(r.returncode == 0 and 'ingen: warning: flow plugin "%s" replaces the built-in flow '
     '"classification_agent"' % repl in r.stderr
     and "classification_agent (%s)" % repl in r.stdout,
     "ingen validate warns that a plugin replaces a built-in flow, and lists it", r.stdout + r.stderr)

# a constructor that crashes: the loader child dies, not the caller, and
# the files after it are still checked (in a new child)
crash_dir = os.path.join(work, "crash")
crash_so = build("broken.c", os.path.join(crash_dir, "a_crash.so"), "-DCRASH_ON_LOAD",
                 werror=False)
build("echo.c", os.path.join(crash_dir, "b_echo.so"), q("FLOW_NAME=after_crash"))
build("broken.c", os.path.join(crash_dir, "c_magic.so"), "-DBAD_MAGIC", werror=False)
r = validate(crash_dir)
t.ok(r.returncode == 2 and 'flow plugin "%s" crashed the loader (signal 11' % crash_so
     in r.stderr and "c_magic.so\" has a bad magic" in r.stderr
     and r.stderr.count("ingen: ") == 2,
     "a plugin that crashes while it loads is refused, and the next files are still "
     "checked", r.stdout + r.stderr)

twins = os.path.join(work, "twins")
twin_a = build("echo.c", os.path.join(twins, "a", "twin_a.so"), q("FLOW_NAME=twin"))
twin_b = build("echo.c", os.path.join(twins, "b", "twin_b", "twin_b.so"), q("FLOW_NAME=twin"))
r = validate(os.path.dirname(twin_a) + ":" + os.path.join(twins, "b"))
t.ok(r.returncode == 2 and 'flow "twin" is declared by two flow plugins, "%s" and "%s"'
     % (twin_a, twin_b) in r.stderr,
     "ingen validate refuses a flow name declared by two files (<name>.so and "
     "<name>/<name>.so), naming both", r.stdout + r.stderr)

# ---- the cluster, the simulator ------------------------------------------------
pg = PgCluster(t)
sim = Sim(t, api_key=KEY, max_seconds=220, args=["--quiet"]).start()


def model_env(flow_path, **over):
    env = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o",
           "INGENIOUS_MODELS__0__API_TYPE": "rest",
           "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
           "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
           "INGENIOUS_MODELS__0__API_KEY": KEY,
           "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
           "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
           "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
           "INGENIOUS_FLOW_PATH": flow_path}
    if SANITIZER:
        # the crash plugin raises SIGSEGV on purpose: not a sanitizer finding
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":handle_segv=0"
    env.update(over)
    return env


def chat(port, flow, prompt, timeout=15):
    """(status, body as JSON or text)"""
    st, _, b = request(port, "POST", "/api/v1/chat",
                       {"user_prompt": prompt, "conversation_flow": flow, "user_id": "p"},
                       timeout=timeout)
    try:
        return st, json.loads(b)
    except ValueError:
        return st, b.decode(errors="replace")


def answer(port, flow, prompt):
    st, body = chat(port, flow, prompt)
    return body.get("agent_response") if st == 200 and isinstance(body, dict) else (st, body)


# ---- at start: a refused plugin stops the server before it serves -----------
bad_start = Server(t, workers=1, env=model_env(good + ":" + os.path.dirname(broken["abi_major"])))
bad_start.start(wait=False)
code = bad_start.wait_exit(slack(15))
t.ok(code not in (None, 0) and BROKEN[0][2] in bad_start.log(),
     "a server whose flow path holds a plugin of ABI 1.0 does not start, and says why",
     bad_start.log()[-2000:])

# ---- the main server: a good plugin at start ------------------------------------
flows = os.path.join(work, "flows")
flows2 = os.path.join(work, "flows2")
echo = build("echo.c", os.path.join(flows, "echo.so"))
os.makedirs(flows2)
srv = Server(t, workers=2, env=model_env(flows + ":" + flows2)).start(timeout=slack(15))
t.eq(answer(srv.port, "echo", "hello"), "echo: hello", "a plugin flow answers a chat turn")
t.eq(answer(srv.port, "Echo", "case"), "echo: case", "flow names match case-insensitively")
st, body = chat(srv.port, "echo", "fail")
t.eq((st, body.get("detail")), (422, 'echo refuses to echo "fail"'),
     "a plugin fails a turn with its own status and message (ing_error)")
t.ok(str(answer(srv.port, "classification-agent", "hi")).startswith("Simulated reply"),
     "the built-in flow answers next to the plugin")
t.ok(pg.value("SELECT count(*) FROM messages WHERE agent_name = 'echo' "
              "AND content = 'echo: hello'") == "1",
     "the plugin's answer is saved with the flow's name as its agent")
t.ok(srv.log_lines("echoed 5 bytes"), "ing_log of a plugin reaches the server log")
with open("/proc/%d/maps" % srv.pid) as f:
    t.ok("echo.so" not in f.read(), "the master process has not loaded the plugin")
with open("/proc/%d/maps" % srv.workers()[0]) as f:
    t.ok(echo in f.read(), "a worker has loaded it")

def logged(server, words):
    """The log lines holding `words`, with logfmt's \\" read as \"."""
    return [l for l in server.log().replace('\\"', '"').splitlines() if words in l]


gen = [1]
kept = [0]


def hup_ok(what):
    gen[0] += 1
    srv.signal(signal.SIGHUP)
    ok = srv.wait_log("generation %d is serving" % gen[0], timeout=slack(15))
    t.ok(ok, "SIGHUP %s: generation %d serves" % (what, gen[0]), srv.log()[-1500:])
    return ok


def hup_refused(what, words):
    kept[0] += 1
    before = set(srv.workers())
    srv.signal(signal.SIGHUP)
    ok = srv.wait_log("keeping generation %d" % gen[0], timeout=slack(15), count=kept[0])
    lines = logged(srv, words)
    t.ok(ok and lines, "SIGHUP with %s is refused with its message" % what,
         "\n".join(srv.log().splitlines()[-8:]))
    t.eq(set(srv.workers()), before, "the old workers keep serving after %s" % what)
    t.eq(answer(srv.port, "echo", "still"), "echo: still",
         "the old generation still answers with its behaviour after %s" % what)


# ---- SIGHUP: a new plugin, a refused one, a replaced built-in, a removal ----------
t.ok(answer(srv.port, "llm_echo", "x")[0] in (400, 404), "llm_echo is unknown before it exists")
build("llm.c", os.path.join(flows2, "llm_echo", "llm_echo.so"))
hup_ok("with a new plugin")
got = answer(srv.port, "llm-echo", "what is new")
t.ok(isinstance(got, str) and got.startswith("model said: Simulated reply"),
     "a plugin added on SIGHUP calls the model through ing_llm_chat", got)
t.ok(pg.value("SELECT count(*) FROM llm_usage WHERE agent_name = 'plugin_llm_agent'") == "1",
     "the plugin's model call is accounted under its agent name")

for name in ("abi_major", "abi_minor", "no_descriptor", "bad_magic"):
    dst = os.path.join(flows, name + ".so")
    os.rename(broken[name], dst)
    words = [w for n, d, w in BROKEN if n == name][0]
    hup_refused("a plugin %s" % name, words)
    os.unlink(dst)

dup = build("echo.c", os.path.join(flows2, "echo_again.so"))
hup_refused("a second file declaring \"echo\"",
            'flow "echo" is declared by two flow plugins, "%s" and "%s"' % (echo, dup))
os.unlink(dup)

cls = build("echo.c", os.path.join(flows2, "classification_agent.so"),
            q("FLOW_NAME=classification_agent"), q("ECHO_PREFIX=custom"))
hup_ok("with a plugin named classification_agent")
t.ok(logged(srv, 'replaces the built-in flow "classification_agent"'),
     "replacing a built-in flow is logged as a warning")
t.eq(answer(srv.port, "Classification-Agent", "hi"), "custom: hi",
     "the custom flow replaces the built-in one of its name")
os.unlink(cls)
hup_ok("with that plugin removed")
t.ok(str(answer(srv.port, "classification_agent", "hi")).startswith("Simulated reply"),
     "a removed plugin is gone after SIGHUP, the built-in answers again")

# a file that passes the master's check but not the workers' (as if it had
# been changed in between): the new generation's workers exit with the
# fatal code, the reload is abandoned, the old generation serves on
late = build("broken.c", os.path.join(flows2, "late.so"), "-DFAIL_IN_WORKER", werror=False)
before = set(srv.workers())
srv.signal(signal.SIGHUP)
gen[0] += 1
ok = srv.wait_log("exited with the fatal code 70, keeping generation %d" % (gen[0] - 1),
                  timeout=slack(15))
t.ok(ok and logged(srv, 'could not start worker: flow plugin "%s" was built for flow ABI 1.0'
                   % late),
     "a plugin that fails to load in the new workers abandons the reload, with the reason",
     "\n".join(srv.log().splitlines()[-8:]))
# the other new worker fails the same way a moment later (slower under the sanitizers)
deadline = time.time() + slack(10)
while set(srv.workers()) != before and time.time() < deadline:
    time.sleep(0.05)
t.eq(set(srv.workers()), before, "the old workers keep serving after the abandoned reload")
t.eq(answer(srv.port, "echo", "still"), "echo: still", "and answer as before")
os.unlink(late)

# ---- a plugin that crashes its worker ---------------------------------------------
pids = set(srv.workers())
try:
    st, _ = chat(srv.port, "echo", "crash", timeout=10)
except (http.client.HTTPException, ConnectionError, OSError):
    st = None
t.ok(st != 200, "the turn of the crashing prompt gets no answer (%r)" % st)
t.ok(srv.wait_log("was terminated by signal 11", timeout=slack(5)),
     "the crash is logged with its signal")
deadline = time.time() + slack(5)
while time.time() < deadline and (len(srv.workers()) != 2 or srv.workers() == list(pids)):
    time.sleep(0.05)
now = set(srv.workers())
t.ok(len(now) == 2 and len(now & pids) == 1, "only that worker died, and it was replaced")
t.eq([answer(srv.port, "echo", "after %d" % i) for i in range(4)],
     ["echo: after %d" % i for i in range(4)], "the next requests succeed")

# ---- a plugin changed under load: zero failed requests ---------------------------
results, lock, stop = [], threading.Lock(), threading.Event()


def client(n):
    conn = None
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
            conn.request("POST", "/api/v1/chat", body=json.dumps(
                {"user_prompt": "load %d-%d" % (n, i), "conversation_flow": "echo"}),
                headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            b = r.read()
            out = (r.status, json.loads(b).get("agent_response") if r.status == 200 else b)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as exc:
            out = (None, repr(exc))
            if conn is not None:
                conn.close()
            conn = None
        with lock:
            results.append(out)


threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
for th in threads:
    th.start()
time.sleep(0.5)
old = set(srv.workers())
build("echo.c", echo, q("ECHO_PREFIX=echo2"))
hup_ok("with a changed plugin under load")
deadline = time.time() + slack(15)
while time.time() < deadline and old & set(srv.workers()):
    time.sleep(0.05)
time.sleep(0.5)
stop.set()
for th in threads:
    th.join(20)
failed = [r for r in results if r[0] != 200]
t.eq(failed[:5], [], "zero failed requests while the plugin changed (%d turns)" % len(results))
prefixes = [r[1].split(":")[0] for r in results if r[0] == 200]
t.ok(prefixes and prefixes[0] == "echo" and prefixes[-1] == "echo2",
     "the old behaviour before, the new one after (%d echo, %d echo2)"
     % (prefixes.count("echo"), prefixes.count("echo2")))
t.eq(answer(srv.port, "echo", "new"), "echo2: new", "the changed plugin answers after SIGHUP")
srv.stop()

# ---- built-in flows disabled ------------------------------------------------------
r = validate(good, {"INGENIOUS_CHAT_SERVICE__ENABLE_BUILTIN_WORKFLOWS": "false"})
t.ok(r.returncode == 0 and "classification_agent (built-in, disabled)" in r.stdout,
     "ingen validate lists the disabled built-in flow", r.stdout + r.stderr)
srv2 = Server(t, workers=1, env=model_env(
    good, INGENIOUS_CHAT_SERVICE__ENABLE_BUILTIN_WORKFLOWS="false")).start(timeout=slack(15))
st, body = chat(srv2.port, "classification-agent", "hi")
t.eq((st, body), (400, {"detail": "Built-in workflow 'classification_agent' is disabled. "
                        "Enable it with chat_service.enable_builtin_workflows = true or use "
                        "a custom workflow."}),
     "a disabled built-in flow answers 400 with the reference's text")
t.eq(answer(srv2.port, "echo", "custom"), "echo: custom", "custom flows still answer")
srv2.stop()

check_sanitizers(t)
t.done()
