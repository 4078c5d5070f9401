"""test_bike_insights.py -- the built-in bike-insights flow (issue 10 section 2)
through the real server, against PostgreSQL and the simulator, with the
scaffold's templates (cli/scaffold/templates, revision quickstart-1) as the
revisions path and the scaffold's sample data as the payload.

Checks: the three validation errors with the reference's texts (400, no
model call); a turn makes five model calls (four agents, the price tool's
round: the simulator's rule makes bike_lookup_agent call get_bike_price),
each with its usage row under its agent and the template's revision and
hash; the first two agents run at once (with --latency-ms their calls
overlap and take about one call's time, and the turn less than the sum of
its calls);
message_id is the payload's identifier; agent_response is the list of
agent chats; each call's transcript is stored with its usage row; the
summary is stored as an `output` message; a second turn of the thread gives
the summary the first turn's output; a streaming client gets the flow's
status lines; the README's curl of the scaffold works as written."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import SRCDIR, Server, Tap, request, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=slack(180))
KEY = "bike-sim-key-4410"
LATENCY_MS = 400
work = tempfile.mkdtemp(prefix="ingen-bike-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or subprocess.run(["rm", "-rf", work]))

# the scaffold's templates, as the revisions path
shutil.copytree(os.path.join(SRCDIR, "cli", "scaffold", "templates"),
                os.path.join(work, "templates"))
with open(os.path.join(SRCDIR, "cli", "scaffold", "sample_data",
                       "bike_sales_april_2023.json")) as f:
    SAMPLE = f.read()
payload = json.loads(SAMPLE)

SUMMARY_SYS = "You write the monthly report of a chain of bike shops"
LOOKUP_SYS = "You look up bikes for a chain of bike shops"
pg = PgCluster(t)
sim = Sim(t, api_key=KEY, latency_ms=LATENCY_MS, rules=[
    # the summary: a second turn that sees the first one's output says so
    {"system": SUMMARY_SYS, "match": "REPORT-ONE", "content": "REPORT-TWO: saw the earlier report"},
    {"system": SUMMARY_SYS, "content": "REPORT-ONE: Trek Marlin 7 sold best"},
    {"system": LOOKUP_SYS, "tool": "get_bike_price",
     "arguments": {"ticker": "MB-TREK-2021-XC", "date": "2023/04/30"},
     "final": "The Trek Marlin 7 costs {tool_result}."},
]).start()
srv = Server(t, workers=2, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4.1-nano",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt-4.1-nano",
    "INGENIOUS_FILE_STORAGE__REVISIONS__PATH": work,
})
srv.start(timeout=slack(20))


def chat(prompt, thread=None, timeout=60):
    body = {"user_prompt": prompt, "conversation_flow": "bike-insights"}
    if thread:
        body["thread_id"] = thread
    t0 = time.monotonic()
    st, _, b = request(srv.port, "POST", "/api/v1/chat", body=body, timeout=slack(timeout))
    return st, b, (time.monotonic() - t0) * 1000


# ---- the three validation errors ------------------------------------------
before = sim.stats()["chat"]
st, b, _ = chat("How did April go?")
t.ok(st == 400 and json.loads(b)["detail"].startswith(
    "bike-insights workflow requires JSON-formatted data. Please provide a valid JSON string "
    "with fields: revision_id, identifier, stores. Example: {\"revision_id\": \"test-v1\", "
    "\"identifier\": \"test-001\", \"stores\": [...]}\nJSON parsing error: "),
     "not JSON: 400 with the reference's message", b[:400])
st, b, _ = chat(json.dumps({"identifier": "x", "stores": []}))
t.eq((st, json.loads(b)), (400, {"detail": "bike-insights workflow requires the following fields "
                                 "in JSON data: revision_id. Current data contains: ['identifier', "
                                 "'stores']. Please include all required fields: revision_id, "
                                 "identifier, stores"}),
     "a missing field: 400 with the reference's message")
bad = json.loads(SAMPLE)
bad["stores"][0]["bike_sales"][0]["quantity_sold"] = "two"
st, b, _ = chat(json.dumps(bad))
d = json.loads(b).get("detail", "")
t.ok(st == 400 and d.startswith("bike-insights workflow data validation failed. Please ensure "
                                "your JSON data matches the expected schema for bike sales data. "
                                "Validation error: 1 validation error for RootModel\n"
                                "stores.0.bike_sales.0.quantity_sold\n  Input should be a valid integer"),
     "a payload off the schema: 400 with the reference's message and the field", b[:400])
escape = json.loads(SAMPLE)
escape["revision_id"] = "../../etc"
st, b, _ = chat(json.dumps(escape))
t.ok(st == 400, "a revision_id that leaves the templates folder: 400", b[:300])
t.eq(sim.stats()["chat"], before, "no validation error reached the model")

# a revision without templates: empty system prompts, as the reference's local storage
norev = json.loads(SAMPLE)
norev["revision_id"] = "no-such-revision"
st, b, _ = chat(json.dumps(norev), thread="bike-thread-norev")
nchats = json.loads(json.loads(b).get("agent_response") or "[]") if st == 200 else []
t.ok(st == 200 and len(nchats) == 4 and all(c["system_prompt"] == "" for c in nchats),
     "a revision without templates: the agents run with empty system prompts", b[:300])
t.eq(pg.sql("SELECT count(*), count(prompt_hash) FROM llm_usage "
            "WHERE thread_id = 'bike-thread-norev'"), [["4", "0"]],
     "four calls (no tool without the lookup's prompt), no template on their rows")

# ---- a turn -----------------------------------------------------------------
st, b, elapsed = chat(SAMPLE, thread="bike-thread-1")
t.ok(st == 200, "the sample payload: 200", b[:500])
resp = json.loads(b) if st == 200 else {}
t.eq(resp.get("message_id"), payload["identifier"], "message_id is the payload's identifier")
t.eq(resp.get("memory_summary"), "", "memory_summary is empty, as the reference")
chats = json.loads(resp.get("agent_response") or "[]")
t.eq([c.get("chat_name") for c in chats],
     ["customer_sentiment_agent", "fiscal_analysis_agent", "summary", "bike_lookup_agent"],
     "agent_response: the agent chats, in the order they ran")
fields = ["chat_name", "target_agent_name", "source_agent_name", "user_message", "system_prompt",
          "identifier", "chat_response", "completion_tokens", "prompt_tokens", "start_time",
          "end_time"]
t.ok(chats and all(all(k in c for k in fields) and c["identifier"] == payload["identifier"]
                   for c in chats), "each chat has the reference's AgentChat fields", chats[:1])
by = {c.get("chat_name"): c for c in chats}
sent = by.get("customer_sentiment_agent", {})
t.ok(sent.get("user_message") == "```json\n" + SAMPLE + "\n```" and
     sent.get("system_prompt", "").startswith("You are a customer sentiment analyst"),
     "the sentiment agent got the payload as a JSON block, and its template", sent)
fis = by.get("fiscal_analysis_agent", {}).get("user_message", "")
t.ok(fis.startswith("## Sales\n``` csv\nproduct_code,quantity_sold,sale_date,year,month,"
                    "store_name,location\nMB-TREK-2021-XC,2,2023-04-01,2023,April,"
                    "Sydney Central,NSW\n") and fis.endswith("\n```"),
     "the fiscal agent got the sales as CSV", fis[:300])
summ = by.get("summary", {})
t.ok(summ.get("user_message", "").startswith("## customer_sentiment_agent\nSimulated reply to:")
     and "\n\n## fiscal_analysis_agent\nSimulated reply to:" in summ.get("user_message", "")
     and summ.get("user_message", "").endswith("# Chat History \n\n``` json\n\n \" [\"\"]"),
     "the summary got the relay of both answers and the (empty) history", summ.get("user_message"))
look = by.get("bike_lookup_agent", {})
t.ok(look.get("chat_response", {}).get("chat_message", {}).get("content") ==
     "The Trek Marlin 7 costs 1299.99." and
     "# Tool Messages\n\n1299.99" in look.get("user_message", ""),
     "the lookup called get_bike_price and answered with the stock's price", look)

rows = pg.sql("SELECT agent_name, model, total_tokens, prompt_tokens, latency_ms, "
              "extract(epoch FROM created_at) * 1000 FROM llm_usage "
              "WHERE thread_id = 'bike-thread-1' ORDER BY id")
t.eq(sorted(r[0] for r in rows), ["bike_lookup_agent", "bike_lookup_agent",
                                   "customer_sentiment_agent", "fiscal_analysis_agent", "summary"],
     "five usage rows, each under its agent (two for the tool's round)")
t.ok(rows and all(r[1] == "gpt-4.1-nano" for r in rows), "every call used the model gpt-4.1-nano", rows)
t.eq(resp.get("token_count"), sum(int(r[3]) for r in rows),
     "token_count: the prompt tokens of every call, as the reference counts them")
roles = [r[0] for r in pg.sql("SELECT role FROM messages WHERE thread_id = 'bike-thread-1' "
                              "ORDER BY seq")]
out = pg.sql("SELECT content FROM messages WHERE thread_id = 'bike-thread-1' AND role = 'output'")
t.ok(roles == ["user", "assistant", "output"] and out == [["REPORT-ONE: Trek Marlin 7 sold best"]],
     "the turn is stored with the summary as an `output` message", (roles, out))

cols = [r[0] for r in pg.sql("SELECT column_name FROM information_schema.columns "
                             "WHERE table_name = 'llm_usage'")]
prow = pg.sql("SELECT agent_name, prompt_revision, prompt_file, prompt_hash FROM llm_usage "
              "WHERE thread_id = 'bike-thread-1' ORDER BY id") if "prompt_hash" in cols else []
t.ok(prow and all(r[1] == "quickstart-1" and r[2] == r[0] + "_prompt.jinja" and
                  re.fullmatch(r"[0-9a-f]{64}", r[3] or "") for r in prow),
     "each usage row records the revision, file and hash of its agent's template", prow or cols)

tr = pg.sql("SELECT transcript->'messages'->1->>'content' = %s, transcript->>'response' "
            "FROM llm_usage WHERE thread_id = 'bike-thread-1' AND agent_name = "
            "'customer_sentiment_agent'" % ("'" + ("```json\n" + SAMPLE + "\n```").replace("'", "''") + "'"))
t.ok(tr and tr[0][0] == "t" and tr[0][1].startswith("Simulated reply to:"),
     "the sentiment agent's transcript is stored with its usage row: what it got and answered", tr)
tn = pg.value("SELECT count(*) FROM llm_usage WHERE thread_id = 'bike-thread-1' "
              "AND transcript IS NOT NULL")
t.eq(tn, "5", "every call of the turn has its transcript")

# parallelism: the first two calls overlap; the turn takes less than its calls
span = {}
for r in rows:
    end = float(r[5])
    span.setdefault(r[0], (end - int(r[4]), end))
s, f = span.get("customer_sentiment_agent"), span.get("fiscal_analysis_agent")
t.ok(s and f and s[0] < f[1] and f[0] < s[1],
     "the sentiment and fiscal calls ran at the same time", span)
if s and f:
    both = max(s[1], f[1]) - min(s[0], f[0])
    t.ok(both < (s[1] - s[0]) + (f[1] - f[0]) - LATENCY_MS / 2,
         "the two took %.0f ms together, about one call (%.0f and %.0f ms), not two"
         % (both, s[1] - s[0], f[1] - f[0]))
# done one after the other, the calls would take at least the sum of their times
total = sum(int(r[4]) for r in rows)
t.ok(total >= 5 * LATENCY_MS and elapsed < total,
     "the turn took %.0f ms, less than its calls' %d ms" % (elapsed, total))

# ---- a second turn: the summary sees the first one's output ----------------
st, b, _ = chat(SAMPLE, thread="bike-thread-1")
resp2 = json.loads(b) if st == 200 else {}
chats2 = {c.get("chat_name"): c for c in json.loads(resp2.get("agent_response") or "[]")}
s2 = chats2.get("summary", {})
t.ok(st == 200 and '\n\n# Chat History \n\n``` json\n\n " ["", "REPORT-ONE: Trek Marlin 7 sold '
     'best"]' in s2.get("user_message", "") and
     s2.get("chat_response", {}).get("chat_message", {}).get("content") ==
     "REPORT-TWO: saw the earlier report",
     "a second turn: the summary gets the thread's earlier output", s2 or b[:400])
out = pg.sql("SELECT content FROM messages WHERE thread_id = 'bike-thread-1' "
             "AND role = 'output' ORDER BY seq")
t.eq([r[0] for r in out], ["REPORT-ONE: Trek Marlin 7 sold best",
                           "REPORT-TWO: saw the earlier report"],
     "each turn stored its own output message")

# ---- a streaming client: the flow's status lines, then the answer ---------
st, _, raw = request(srv.port, "POST", "/api/v1/chat/stream",
                     body={"user_prompt": SAMPLE, "conversation_flow": "bike_insights",
                           "stream_events": True}, timeout=slack(60))
frames = [json.loads(line[6:]) for line in raw.decode().split("\n") if line.startswith("data: ")]
status = [f["data"]["message"] for f in frames if f.get("event") == "status"]
t.eq(status, ["Analysing customer sentiment and sales figures...", "Summarising the analyses...",
              "Looking up bike prices..."], "a streaming client gets the flow's status lines")
starts = [f["data"].get("agent") for f in frames if f.get("event") == "agent_start"]
t.ok(sorted(starts[:2]) == ["customer_sentiment_agent", "fiscal_analysis_agent"] and
     starts[2:] == ["summary", "bike_lookup_agent"] and frames[-1].get("event") == "done",
     "and each agent's start, in the flow's order, then done", [f.get("event") for f in frames])

# ---- the scaffold's README: its bike-insights curl, as written -------------
with open(os.path.join(SRCDIR, "cli", "scaffold", "README.md")) as f:
    readme = f.read()
m = re.search(r"```sh\n([^`]*?bike-insights[^`]*?)```", readme)
t.ok(m is not None, "the scaffold's README has a bike-insights curl")
if m and shutil.which("jq") is None:
    t.ok(True, "the README's curl works as written # SKIP jq is not installed")
elif m:
    proj = os.path.join(work, "proj")
    os.makedirs(os.path.join(proj, "sample_data"))
    shutil.copy(os.path.join(SRCDIR, "cli", "scaffold", "sample_data",
                             "bike_sales_april_2023.json"), os.path.join(proj, "sample_data"))
    cmd = m.group(1).replace("\\\n", " ").replace("http://127.0.0.1:8000",
                                                  "http://127.0.0.1:%d" % srv.port)
    r = subprocess.run(["sh", "-c", cmd], cwd=proj, capture_output=True, text=True,
                       timeout=slack(60))
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = {}
    t.ok(r.returncode == 0 and doc.get("message_id") == payload["identifier"] and
         len(json.loads(doc.get("agent_response") or "[]")) == 4,
         "the README's curl works as written",
         "exit %d, stdout %s\nstderr %s" % (r.returncode, r.stdout[:300], r.stderr[-300:]))

srv.stop()

# ---- no model named gpt-4.1-nano: the reference's failure, with the models ---
srv = Server(t, workers=1, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_FILE_STORAGE__REVISIONS__PATH": work,
})
srv.start(timeout=slack(20))
before = sim.stats()["chat"]
st, b, _ = chat(SAMPLE, thread="bike-thread-nomodel")
t.ok(st == 500 and 'no configured model is named or has the role \\"gpt-4.1-nano\\" '
     '(models: gpt-4o)' in b.decode(), "no model named gpt-4.1-nano: 500 naming the models", b)
t.eq(sim.stats()["chat"], before, "and no call reached the model")
srv.stop()
t.done()
