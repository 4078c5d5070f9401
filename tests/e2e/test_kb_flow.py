"""test_kb_flow.py -- the knowledge-base-agent end to end: the real `ingen serve`, a
private PostgreSQL (the local knowledge base, sql/007), the Azure OpenAI simulator
(the model of assist mode, and Azure AI Search), and `ingen kb add`.  One server,
reconfigured through its .env and SIGHUP (the policy keys reload without a
restart).

The seed guide's KB_POLICY=local_only: an empty knowledge base with no folder and
with an empty folder (the reference's two texts), a file dropped into kb.directory
and picked up at SIGHUP, a file added with `ingen kb add`, the answer's exact text,
the turn stored, no model call and no usage row in direct mode; kb_top_k from the
request; a query of stop words, of tsquery syntax, of 250 KB (and 600 KB: over server.max_prompt_bytes); the stream's two
status chunks; assist mode's tool loop with a usage row per model call.  Then
Azure: azure_only without Azure (503 naming the policy), with the simulator's
search (the reference's [i] title (score=...) format), an empty index, the
service down and a wrong key under azure_only and prefer_azure (the fallback),
KB_FALLBACK_ON_EMPTY, and /api/v1/workflow-status following the policy."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, INGEN, clean_env, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=slack(300))

DOCS = [
    {"id": "1", "title": "Workplace safety basics", "category": "workplace safety",
     "content": "Wear protective equipment and keep walkways clear."},
    {"id": "2", "title": "First aid", "category": "first aid",
     "content": "Clean the cut with water and cover it with a bandage."},
]
SAFETY_MD = """# Workplace safety

Workplace safety starts with a helmet: wear a helmet on every construction site.

Keep the walkways clear. Report every hazard to your supervisor at once.

Fire exits must never be blocked.
"""
EXTRA_TXT = "The canteen serves lunch from noon until two o'clock.\n"

pg = PgCluster(t)
# the model of assist mode: asked with the knowledge-base system prompt, it calls
# search_tool, then answers with what the tool gave it
RULES = [{"system": "knowledge base", "tool": "search_tool",
          "arguments": {"search_query": "workplace safety", "topic": "general"},
          "final": "From the knowledge base: {tool_result}"}]
sim = Sim(t, api_key="sim-key", rules=RULES,
          docs={"test-index": DOCS, "empty-index": []}).start()
proj = tempfile.mkdtemp(prefix="ingen-kb-flow-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or shutil.rmtree(proj, ignore_errors=True))
kbdir = os.path.join(proj, "kb")

srv = Server(t, workers=2, cwd=proj, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4.1-nano",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": "sim-key",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt-4.1-nano",
})
generation = [1]


def write_env(lines):
    with open(os.path.join(proj, ".env"), "w") as f:
        f.write("\n".join(lines + ["INGENIOUS_KB__DIRECTORY=" + kbdir,
                                   "INGENIOUS_LLM__MAX_RETRIES=0"]) + "\n")


def reload(lines):
    """Rewrite .env, SIGHUP, wait for the new generation's workers."""
    write_env(lines)
    generation[0] += 1
    return srv.reload(generation[0])


def ask(prompt, thread=None, extra=None, path="/api/v1/chat"):
    body = {"user_prompt": prompt, "conversation_flow": "knowledge-base-agent"}
    if thread:
        body["thread_id"] = thread
    body.update(extra or {})
    st, hdrs, b = request(srv.port, "POST", path, body=json.dumps(body),
                          headers={"Content-Type": "application/json"}, timeout=slack(30))
    try:
        doc = json.loads(b) if path == "/api/v1/chat" else None
    except ValueError:
        doc = None
    return st, doc, b


def context(backend):
    return ("Context: Knowledge base search assistant using %s for finding "
            "information.\n\n" % backend)


def direct(backend, prompt, text):
    return context(backend) + "User question: %s\n\n%s" % (prompt, text)


def ingen_kb(args):
    p = subprocess.run([INGEN, "kb"] + args + ["--database-url", pg.url("owner")],
                       cwd=proj, env=clean_env({"INGENIOUS_CONFIG": ""}),
                       capture_output=True, text=True, timeout=slack(60))
    return p.returncode, p.stdout, p.stderr


LOCAL = "local PostgreSQL"
AZURE = "Azure AI Search"

# ---- local_only, the seed guide's setting ------------------------------------------
write_env(["KB_POLICY=local_only"])
srv.start(timeout=slack(20))

q = "What are the helmet rules?"
st, doc, b = ask(q)
t.eq(st, 200, "local_only, nothing stored, no folder: 200")
t.eq((doc or {}).get("agent_response"),
     direct(LOCAL, q, "Error: Knowledge base directory is empty. Please add documents "
            "to %s/" % kbdir),
     "the reference's text naming the folder")

os.makedirs(kbdir)
st, doc, b = ask(q)
t.eq((doc or {}).get("agent_response"),
     direct(LOCAL, q, "Error: No documents found in knowledge base directory"),
     "an empty folder: the reference's other text")

# a file dropped into the folder is indexed at SIGHUP
with open(os.path.join(kbdir, "safety.md"), "w") as f:
    f.write(SAFETY_MD)
t.ok(reload(["KB_POLICY=local_only"]), "SIGHUP: a new generation")
deadline = time.time() + slack(15)
chunks = "0"
while time.time() < deadline:
    chunks = pg.value("SELECT count(*) FROM kb_chunks")
    if chunks not in ("0", "", None):
        break
    time.sleep(0.2)
t.ok(chunks not in ("0", "", None), "the file in kb.directory was indexed after SIGHUP "
     "(%s chunks)" % chunks)

thread = "kb-thread-1"
st, doc, b = ask(q, thread=thread)
expect = direct(LOCAL, q, "Found relevant information from PostgreSQL:\n\n"
                "Workplace safety starts with a helmet: wear a helmet on every "
                "construction site.")
t.eq(st, 200, "a question the file answers: 200")
t.eq((doc or {}).get("agent_response"), expect, "the answer: context line, question, the "
     "reference's header and the passage")
t.eq((doc or {}).get("memory_summary"), expect, "memory_summary is the answer")
t.eq(pg.value("SELECT count(*) FROM messages WHERE thread_id = '%s'" % thread), "2",
     "the turn is stored (question and answer)")
t.eq(pg.value("SELECT count(*) FROM llm_usage WHERE thread_id = '%s'" % thread), "0",
     "direct mode: no model call, no usage row")

# the thread's messages come back as the memory context
st, doc, b = ask("Anything about fire exits?", thread=thread)
t.ok("Previous conversation:\nuser: What are the helmet rules?...\nassistant: Context: "
     in (doc or {}).get("agent_response", ""),
     "a follow-up sees the thread's messages (100 characters each)",
     (doc or {}).get("agent_response", "")[:600])

# ingen kb add, then the flow sees it
extra = os.path.join(proj, "canteen.txt")
with open(extra, "w") as f:
    f.write(EXTRA_TXT)
rc, out, err = ingen_kb(["add", extra])
t.ok(rc == 0, "ingen kb add canteen.txt", out + err)
st, doc, b = ask("When is lunch served in the canteen?")
t.ok("The canteen serves lunch from noon" in (doc or {}).get("agent_response", ""),
     "a file added with ingen kb add answers", b[:500])

# the number of passages from the request
st, doc, b = ask("helmet walkways hazard exits", extra={"kb_top_k": 1})
text = (doc or {}).get("agent_response", "")
found = text.split("Found relevant information from PostgreSQL:\n\n", 1)[-1]
t.ok(st == 200 and "Found relevant information" in text and "\n\n" not in found,
     "kb_top_k 1: one passage", text)
st, doc, b = ask("helmet walkways hazard exits", extra={"parameters": {"top_k": "3"}})
found = (doc or {}).get("agent_response", "").split(
    "Found relevant information from PostgreSQL:\n\n", 1)[-1]
t.eq(len(found.split("\n\n")), 3, "parameters.top_k \"3\": three passages")

# hostile and odd queries: the reference's text or a clear answer, never a 500
st, doc, b = ask("the and of")
t.eq((st, (doc or {}).get("agent_response")),
     (200, direct(LOCAL, "the and of", "No relevant information found in PostgreSQL "
                  "for query: the and of")),
     "a query of stop words: the reference's \"No relevant information\" text")
odd = "helmet & | ! ( ) : * <-> 'x' \\ \"y\""
st, doc, b = ask(odd)
t.ok(st == 200 and "helmet" in (doc or {}).get("agent_response", ""),
     "tsquery syntax characters are words, not syntax: 200", b[:300])
big = ("helmet " * 40000)[:250000]
st, doc, b = ask(big)
t.ok(st == 200, "a 250 KB query: 200 (the search takes its first 4 KiB)", b[:200])
st, doc, b = ask(("helmet " * 90000)[:600000])
t.ok(st == 413 and b"server.max_prompt_bytes" in b,
     "a 600 KB query: 413 naming server.max_prompt_bytes, before any search", b[:200])

# the stream: the reference's two status chunks, then the answer
st, _, b = ask(q, path="/api/v1/chat/stream")
frames = [json.loads(line[6:]) for line in b.decode().split("\n")
          if line.startswith("data: ")]
data = [f["data"] for f in frames if f.get("event") == "data"]
kinds = [(d["chunk_type"], d["content"]) for d in data]
t.ok(st == 200 and kinds[:2] == [("status", "Searching knowledge base..."),
                                 ("status", "Generating response...")],
     "stream: the two status chunks first", str(kinds[:3]))
content = "".join(c for k, c in kinds if k == "content")
t.ok(content.startswith(context(LOCAL)) and "wear a helmet" in content and
     kinds[-1][0] == "final", "stream: the answer as content, then final", content[:300])

# ---- assist mode: the model calls search_tool -----------------------------------------
t.ok(reload(["KB_POLICY=local_only", "KB_MODE=assist"]), "SIGHUP: KB_MODE=assist")
thread = "kb-assist-1"
st, doc, b = ask("Tell me about workplace safety", thread=thread)
answer = (doc or {}).get("agent_response", "")
t.ok(st == 200 and answer.startswith("From the knowledge base: Found relevant information "
                                     "from PostgreSQL:\n\n") and
     "Workplace safety starts with a helmet" in answer,
     "assist: the model searched (search_tool) and answered from the result", b[:600])
rows = pg.value("SELECT string_agg(agent_name, ',' ORDER BY id) FROM llm_usage "
                "WHERE thread_id = '%s'" % thread)
t.eq(rows, "search_assistant,search_assistant",
     "assist: two model calls, a usage row each, under search_assistant")
stats = sim.stats()
t.ok(stats.get("search", 0) == 0, "local_only never asks Azure AI Search", str(stats))

# ---- Azure AI Search ---------------------------------------------------------------
t.ok(reload([]), "SIGHUP: the default policy, azure_only, no Azure configured")
st, doc, b = ask(q)
t.ok(st == 503 and b"azure_search policy" in b and b"KB_POLICY" in b,
     "azure_only without Azure: 503 naming the reason and the setting", b)
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/knowledge-base-agent")
one = json.loads(b) if st == 200 else {}
t.ok(one.get("configured") is False and one.get("missing_config") ==
     ["azure_search_services.0.endpoint", "azure_search_services.0.key"] and
     "Azure AI Search" in one.get("external_services", []),
     "workflow-status: azure_only lists the Azure keys missing", b)

AZ = ["INGENIOUS_AZURE_SEARCH_SERVICES__0__ENDPOINT=" + sim.url,
      "INGENIOUS_AZURE_SEARCH_SERVICES__0__KEY=sim-key"]
t.ok(reload(AZ), "SIGHUP: Azure AI Search configured (the simulator)")
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/knowledge-base-agent")
t.ok(st == 200 and json.loads(b).get("ready") is True, "workflow-status: ready", b)
sq = "workplace safety"
st, doc, b = ask(sq)
text = (doc or {}).get("agent_response", "")
t.ok(st == 200 and text.startswith(direct(AZURE, sq, "Found relevant information from "
                                          "Azure AI Search:\n\n[1] Workplace safety "
                                          "basics (score=")) and
     "\nWear protective equipment and keep walkways clear." in text,
     "azure_only: the reference's \"[i] title (score=...)\" text", text)
last = sim.stats().get("search_last", {})
t.ok(last.get("index") == "test-index", "the index falls back to test-index", str(last))

t.ok(reload(AZ + ["AZURE_SEARCH_DEFAULT_INDEX=empty-index"]), "SIGHUP: an empty index")
st, doc, b = ask(sq)
t.eq((doc or {}).get("agent_response"),
     direct(AZURE, sq, "No relevant information found in Azure AI Search for query: " + sq),
     "an empty index: the reference's text")
t.ok(reload(AZ + ["AZURE_SEARCH_DEFAULT_INDEX=empty-index", "KB_POLICY=prefer_azure",
                  "KB_FALLBACK_ON_EMPTY=1"]), "SIGHUP: prefer_azure, KB_FALLBACK_ON_EMPTY=1")
st, doc, b = ask(sq)
t.ok((doc or {}).get("agent_response", "").startswith(
    direct(LOCAL, sq, "Found relevant information from PostgreSQL:")),
     "prefer_azure + fallback on empty: the local knowledge base answers", b[:400])

# Azure down
t.ok(reload(AZ), "SIGHUP: azure_only again")
sim.request("POST", "/sim/search-fault", body="503")
st, doc, b = ask(sq)
t.ok(st == 503 and b"azure_search" in b, "azure_only, Azure down: 503 naming the "
     "provider", b)
t.ok(reload(AZ + ["KB_POLICY=prefer_azure"]), "SIGHUP: prefer_azure")
st, doc, b = ask(sq)
t.ok(st == 200 and (doc or {}).get("agent_response", "").startswith(
    direct(LOCAL, sq, "Found relevant information from PostgreSQL:")),
     "prefer_azure, Azure down: the local knowledge base answers", b[:400])
t.ok(srv.log_lines("falling back to PostgreSQL"), "... and the log says why")
sim.request("POST", "/sim/search-fault", body="")

# a wrong key
BAD = ["INGENIOUS_AZURE_SEARCH_SERVICES__0__ENDPOINT=" + sim.url,
       "INGENIOUS_AZURE_SEARCH_SERVICES__0__KEY=not-the-key"]
t.ok(reload(BAD), "SIGHUP: a wrong search key")
st, doc, b = ask(sq)
t.ok(st == 502 and b"azure_search" in b and b"401" in b and b"not-the-key" not in b,
     "azure_only, wrong key: 502 with the 401, never the key", b)
t.ok(reload(BAD + ["KB_POLICY=prefer_local", "KB_FALLBACK_ON_EMPTY=1"]),
     "SIGHUP: prefer_local")
st, doc, b = ask(q)
t.ok(st == 200 and "wear a helmet" in (doc or {}).get("agent_response", ""),
     "prefer_local: the local answer, Azure not asked", b[:300])
t.eq(srv.log_lines("not-the-key"), [], "the key never reaches the log")

srv.stop()
t.done()
