"""test_prompt_versions.py -- which prompt produced which answer (issue 10):
a test plugin (tests/plugins/templated.c) renders its system prompt from a
template of a revision with ing_prompt_render, through the real server,
PostgreSQL and the simulator.

Checks: the rendered text (variables of the request and of the flow, a for
and an if), the usage row's prompt_revision, prompt_file and prompt_hash
(the SHA-256 of the template's content) and its transcript; an update
through the prompts API changes the next turn's prompt, the new hash is
recorded and the old version stays viewable by its hash; a template error
fails the turn with file:line:col; a missing template is 404."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import BUILDDIR, SRCDIR, Server, Tap, request, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=slack(120))
KEY = "prompts-sim-key-3310"
work = tempfile.mkdtemp(prefix="ingen-promptv-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or subprocess.run(["rm", "-rf", work]))

pc = subprocess.run(["pkg-config", "--cflags", "--libs", "ingenious"],
                    env=dict(os.environ, PKG_CONFIG_PATH=BUILDDIR), capture_output=True, text=True)
flows = os.path.join(work, "flows")
os.makedirs(flows)
cc = subprocess.run([os.environ.get("CC") or "cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o",
                     os.path.join(flows, "templated.so"),
                     os.path.join(SRCDIR, "tests", "plugins", "templated.c")] + pc.stdout.split(),
                    capture_output=True, text=True)
t.eq(cc.returncode, 0, "the test plugin builds")

V1 = ("You are the assistant of {{ shop }}. We sell {% for i in items %}{{ i }}"
      "{% if not loop.last %}, {% endif %}{% endfor %}. Question: {{ request.user_prompt }}")
V2 = "Version two for {{ shop }}: {{ request.user_prompt | default(\"nothing\") }}"
rev = os.path.join(work, "revs", "templates", "prompts", "r1")
os.makedirs(rev)
with open(os.path.join(rev, "system_prompt.jinja"), "w") as f:
    f.write(V1)
bad = os.path.join(work, "revs", "templates", "prompts", "broken")
os.makedirs(bad)
with open(os.path.join(bad, "system_prompt.jinja"), "w") as f:
    f.write("line one\n  {% include \"x\" %}\n")


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


pg = PgCluster(t)
sim = Sim(t, api_key=KEY).start()
srv = Server(t, workers=2, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4.1-nano",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt-4.1-nano",
    "INGENIOUS_FLOW_PATH": flows,
    "INGENIOUS_FILE_STORAGE__REVISIONS__PATH": os.path.join(work, "revs"),
})
srv.start(timeout=slack(20))


def chat(prompt, topic=None):
    body = {"user_prompt": prompt, "conversation_flow": "templated"}
    if topic:
        body["topic"] = topic
    st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body)
    return st, (json.loads(b) if b.startswith(b"{") else b)


def usage(thread):
    rows = pg.sql("SELECT prompt_revision, prompt_file, prompt_hash, transcript::text "
                  "FROM llm_usage WHERE thread_id = '%s' ORDER BY id" % thread)
    return rows


st, r = chat("Do you have locks?")
t.eq(st, 200, "a templated turn answers")
sent = r["agent_response"].split(" || ")[0]
t.eq(sent, "You are the assistant of Bike World. We sell helmet, lock. Question: Do you have locks?",
     "the template rendered the flow's variables, a for, an if and the request")
rows = usage(r["thread_id"])
t.eq([(x[0], x[1], x[2]) for x in rows], [("r1", "system_prompt.jinja", sha(V1))],
     "the usage row records the revision, the file and the template's hash")
tr = json.loads(rows[0][3])
t.eq(tr["messages"][0], {"role": "system", "content": sent}, "the transcript holds the sent prompt")
t.ok(tr["response"] and tr["response"] in r["agent_response"], "and the model's answer")

# ---- an update changes the next turn's prompt, both versions kept ----------
st, _, b = request(srv.port, "POST", "/api/v1/prompts/update/r1/system_prompt.jinja",
                   body={"content": V2})
t.eq(st, 200, "the prompts API updates the template")
upd = json.loads(b)
t.eq(upd.get("hash"), sha(V2), "the update answers the new version's hash")
st, r2 = chat("Any helmets?")
t.eq(r2["agent_response"].split(" || ")[0], "Version two for Bike World: Any helmets?",
     "the next turn renders the new version")
t.eq(usage(r2["thread_id"])[0][2], sha(V2), "and its usage row records the new hash")
st, _, b = request(srv.port, "GET", "/api/v1/prompts/versions/r1/system_prompt.jinja")
hashes = [v["hash"] for v in json.loads(b).get("versions", [])] if st == 200 else []
t.ok(sha(V1) in hashes and sha(V2) in hashes, "both versions are kept", b[:300])
st, _, b = request(srv.port, "GET", "/api/v1/prompts/view/r1/system_prompt.jinja?hash=" + sha(V1))
t.eq((st, json.loads(b) if st == 200 else b), (200, V1),
     "the old version is still viewable by its hash")
n = pg.value("SELECT count(DISTINCT prompt_hash) FROM llm_usage WHERE prompt_file = "
             "'system_prompt.jinja'")
t.eq(n, "2", "a DBA sees which version produced which answer")

# ---- errors ----------------------------------------------------------------------
st, r3 = chat("x", topic="broken")
t.eq(st, 400, "a template error fails the turn with 400")
t.ok(b"system_prompt.jinja:2:" in (r3 if isinstance(r3, bytes) else json.dumps(r3).encode()),
     "with file:line:col of the error", r3)
st, r4 = chat("x", topic="nosuchrev")
t.eq(st, 404, "a missing template is 404")

srv.stop()
t.done()
