"""test_flow_agents.py -- the flow API 2.0 through the real server (issue 9):
a test plugin (tests/plugins/agents.c) asks three agents in parallel, then an
agent with a tool that the simulator calls (its rule asks for
get_bike_price; the plugin's callback answers; the simulator's final text
uses the result), against PostgreSQL and the simulator.

Checks: the reply joins the four answers, the tool's result reached the
model, every model call has its usage row under its own agent name and the
turn's token_count is their sum, a stream with "stream_events" gets
agent_start / agent_end (with tokens) / tool_call / tool_result / status
frames while a stream without it gets the reference's frames only, and a
flow that keeps calling the model is stopped by flows.max_llm_calls with the
key in the message and every call it made recorded."""
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
KEY = "agents-sim-key-5521"
work = tempfile.mkdtemp(prefix="ingen-agents-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or subprocess.run(["rm", "-rf", work]))

pc = subprocess.run(["pkg-config", "--cflags", "--libs", "ingenious"],
                    env=dict(os.environ, PKG_CONFIG_PATH=BUILDDIR), capture_output=True, text=True)
flows = os.path.join(work, "flows")
os.makedirs(flows)
cc = subprocess.run([os.environ.get("CC") or "cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o",
                     os.path.join(flows, "agents.so"),
                     os.path.join(SRCDIR, "tests", "plugins", "agents.c")] + pc.stdout.split(),
                    capture_output=True, text=True)
t.eq(cc.returncode, 0, "the test plugin builds with -Wall -Werror against <ingenious/flow.h>")

pg = PgCluster(t)
sim = Sim(t, api_key=KEY, rules=[
    {"match": "price of the red bike", "tool": "get_bike_price",
     "arguments": {"bike": "red"}, "final": "The red bike costs {tool_result}."},
]).start()
srv = Server(t, workers=2, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4.1-nano",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt-4.1-nano",
    "INGENIOUS_FLOW_PATH": flows,
    "INGENIOUS_FLOWS__MAX_LLM_CALLS": "7",
})
srv.start(timeout=slack(20))

# ---- parallel agents and a tool, as JSON -----------------------------------
st, _, b = request(srv.port, "POST", "/api/v1/chat",
                   body={"user_prompt": "How are sales?", "conversation_flow": "agents"})
t.ok(st == 200, "the flow answers", b[:400])
resp = json.loads(b)
ans = resp["agent_response"]
for name in ("customer_sentiment_agent", "fiscal_analysis_agent", "bike_lookup_agent"):
    t.ok(name in ans, "the reply holds the %s's answer (its own prompt)" % name, ans[:600])
t.ok("[The red bike costs 1299 AUD.]" in ans,
     "the tool loop: the model asked for the tool, got its result, answered with it", ans[-300:])

rows = pg.sql("SELECT agent_name, total_tokens FROM llm_usage WHERE thread_id = '%s' "
              "ORDER BY id" % resp["thread_id"])
agents = sorted(r[0] for r in rows)
t.eq(agents, ["bike_lookup_agent", "customer_sentiment_agent", "fiscal_analysis_agent",
              "price_agent", "price_agent"],
     "a usage row per model call, under its agent (two for the tool round)")
t.eq(sum(int(r[1]) for r in rows), resp["token_count"], "token_count is the sum of the rows")
linked = pg.value("SELECT count(*) FROM llm_usage u JOIN messages m ON m.id = u.message_id "
                  "WHERE u.thread_id = '%s'" % resp["thread_id"])
t.eq(linked, "5", "every usage row is linked to the stored answer")


# ---- the stream, with and without events ----------------------------------
def stream(body):
    st, _, raw = request(srv.port, "POST", "/api/v1/chat/stream", body=body,
                         timeout=slack(30))
    frames = [json.loads(l[6:]) for l in raw.decode().split("\n") if l.startswith("data: ")]
    return st, frames


st, frames = stream({"user_prompt": "How are sales?", "conversation_flow": "agents",
                     "stream_events": True})
kinds = [f["event"] for f in frames]
t.eq(st, 200, "stream with events: 200")
t.eq(kinds.count("agent_start"), 4, "stream with events: an agent_start per agent call (the "
     "tool agent's two model calls are one call)")
t.eq(kinds.count("agent_end"), 4, "stream with events: an agent_end per agent call")
t.ok(kinds.index("agent_start") < kinds.index("agent_end") < kinds.index("data"),
     "the events come before the answer's frames", kinds)
ends = [f["data"] for f in frames if f["event"] == "agent_end"]
t.ok(all(e["total_tokens"] > 0 and e["ok"] for e in ends), "agent_end carries the agent's tokens",
     json.dumps(ends)[:500])
tc = [f["data"] for f in frames if f["event"] == "tool_call"]
tr = [f["data"] for f in frames if f["event"] == "tool_result"]
t.eq([(c["agent"], c["tool"], json.loads(c["arguments"])) for c in tc],
     [("price_agent", "get_bike_price", {"bike": "red"})], "a tool_call frame with its arguments")
t.eq([r["result"] for r in tr], ["1299 AUD"], "a tool_result frame with its result")
t.ok(any(f["event"] == "status" and "three agents answered" in f["data"]["message"]
         for f in frames), "the flow's status line is a frame")
t.eq(kinds[-2:], ["data", "done"], "the stream still ends with the final chunk and done")
t.ok(frames[-2]["data"]["is_final"] and frames[-2]["data"]["token_count"] > 0,
     "the final chunk has the turn's tokens")

st, frames = stream({"user_prompt": "How are sales?", "conversation_flow": "agents"})
t.eq(sorted(set(f["event"] for f in frames)), ["data", "done"],
     "a stream without stream_events has the reference's frames only")

# ---- a limit ----------------------------------------------------------------
st, _, b = request(srv.port, "POST", "/api/v1/chat",
                   body={"user_prompt": "limit", "conversation_flow": "agents",
                         "thread_id": "agents-limit-thread"})
t.eq(st, 500, "a flow past flows.max_llm_calls fails the turn")
t.ok(b"the turn reached its limit of 7 language-model calls (flows.max_llm_calls)" in b,
     "the message names the limit and its key", b[:300])
n = pg.value("SELECT count(*) FROM llm_usage WHERE thread_id = 'agents-limit-thread' "
             "AND agent_name = 'looper'")
t.eq(n, "7", "the seven calls it made stay recorded")

srv.stop()
t.done()
