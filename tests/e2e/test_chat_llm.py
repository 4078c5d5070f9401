"""test_chat_llm.py -- issue 4 end to end through the real server: chat turns
on POST /api/v1/chat and /api/v1/chat/stream against every fault of the
Azure OpenAI simulator, with the status and exact body the API consumer
sees, the upstream attempts and the gaps between them (/sim/stats), and the
rows in PostgreSQL: messages, and llm_usage for every call, billed ones
included when the turn fails (docs/reliability.md U1-U3, D2).  Also Entra ID and
managed-identity tokens cached per worker, many concurrent chats on a slow
upstream, and a tiny flow queue answering 503 at once.

The chat route sends no client header upstream, so faults come from the
simulator's rules file: a marker in the prompt picks the fault.  Every case
resets the simulator's counters first; its attempts are counted under the
empty x-sim-key."""
import http.client
import json
import os
import re
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Server, Tap, request, slack  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim, prompt_tokens, tokens  # noqa: E402
from chatkit import SYSTEM, sim_reply  # noqa: E402

t = Tap(timeout=150)

KEY = "chat-llm-sim-key-5f3a9c"
SECRET = "chat-llm-client-secret-77e1"
TIMEOUT_MS = int(slack(1500))  # INGENIOUS_LLM__TIMEOUT_MS of the main server
SLACK = 0.03                # timer slack allowed below a promised gap (s)
CF_BODY = ('{"detail":"The users prompt violates the content filter, '
           'please start a new conversation."}')
PTL_BODY = ('{"detail":"This prompt is longer than the model\'s context length: '
            'shorten it (a new conversation would not help)."}')
TL_BODY = ('{"detail":"This chat has exceeded the token limit, '
           'please start a new conversation."}')
FLOW = "classification-agent"

# a reply of 2-, 3- and 4-byte characters in words longer than a stream chunk
MB_REPLY = ("Ünïcödé→€€€€€ 日本語のテキストです 🚲🚴🚲🚲🚲 "
            "ÀÉÎÕÜàéîõüçñ " + "€" * 40 + " ok")
MB_CHUNK = 3                # streaming_chunk_size of the server that streams it

# a marker in the prompt -> the fault (or the answer) the simulator gives
RULES = [
    {"match": "[429-once]", "fault": "429;retry-after-ms=300;times=1"},
    {"match": "[429-always]", "fault": "429;retry-after-ms=400"},
    {"match": "[429-long]", "fault": "429;retry-after=30"},
    {"match": "[500]", "fault": "500"},
    {"match": "[503]", "fault": "503"},
    {"match": "[hang]", "fault": "hang;ms=10000"},
    {"match": "[malformed]", "fault": "malformed"},
    {"match": "[truncated]", "fault": "truncated"},
    {"match": "[oversized]", "fault": "oversized"},
    {"match": "[cf-prompt]", "fault": "content_filter_prompt"},
    {"match": "[cf-completion]", "fault": "content_filter_completion"},
    {"match": "[400]", "fault": "400"},
    {"match": "[slow]", "fault": "none;latency-ms=400"},
    {"match": "[slower]", "fault": "none;latency-ms=800"},
    {"match": "[multibyte]", "content": MB_REPLY},
]


def expected_usage(user):
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    p, c = prompt_tokens(msgs), tokens(sim_reply(user))
    return p, c, p + c


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---- the cluster, the simulator, the main server -----------------------------------
pg = PgCluster(t)
sim = Sim(t, api_key=KEY, rules=RULES, max_seconds=200,
          args=["--client-secret", SECRET, "--context-limit", "1000", "--quiet"]).start()


def model_env(**over):
    env = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o",
           "INGENIOUS_MODELS__0__API_TYPE": "rest",
           "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
           "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
           "INGENIOUS_MODELS__0__API_KEY": KEY,
           "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
           "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
           "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
           "INGENIOUS_LLM__TIMEOUT_MS": str(TIMEOUT_MS),
           "INGENIOUS_LLM__CONNECT_TIMEOUT_MS": "1000",
           "INGENIOUS_LLM__MAX_RETRIES": "2"}
    env.update(over)
    return env


srv = Server(t, workers=2, env=model_env()).start()
seq = [0]


def new_rid(name):
    seq[0] += 1
    return "chat-llm-%s-%d-%d" % (re.sub(r"[^A-Za-z0-9]+", "_", name), os.getpid(), seq[0])


def chat(port, prompt, rid, thread_id=None, stream=False, timeout=15, user_id="alice"):
    """One chat turn: (status, headers, body bytes, seconds)."""
    body = {"user_prompt": prompt, "conversation_flow": FLOW, "user_id": user_id}
    if thread_id is not None:
        body["thread_id"] = thread_id
    t0 = time.time()
    st, h, b = request(port, "POST", "/api/v1/chat/stream" if stream else "/api/v1/chat",
                       body, headers={"X-Request-ID": rid}, timeout=timeout)
    return st, h, b, time.time() - t0


def frames(body):
    """The JSON of each `data: ...` frame of a stream body."""
    out = []
    for part in body.decode().split("\n\n"):
        if part.strip():
            assert part.startswith("data: "), part
            out.append(json.loads(part[6:]))
    return out


def rows_json(sql, order):
    """Rows of a query as dicts in `order`, read as the DBA role (jsonb keeps
    newlines escaped, so a row is one line of psql's output)."""
    v = pg.value("SELECT coalesce(jsonb_agg(to_jsonb(q) ORDER BY q.%s), '[]') FROM (%s) q"
                 % (order, sql), role="readonly")
    return json.loads(v)


def usage(rid):
    """llm_usage rows of a request, oldest first."""
    return rows_json("SELECT coalesce(message_id::text, '') AS message_id, flow, "
                     "agent_name AS agent, model, deployment, prompt_tokens AS prompt, "
                     "completion_tokens AS completion, total_tokens AS total, "
                     "coalesce(http_status, 0) AS status, retries, latency_ms AS latency, "
                     "user_id, thread_id, id FROM llm_usage WHERE request_id = '%s'" % rid, "id")


def messages(thread_id):
    """(id, seq, role, agent, content) of a thread's messages in order."""
    return [(r["id"], r["seq"], r["role"], r["agent"], r["content"]) for r in rows_json(
        "SELECT id, seq, role, coalesce(agent_name, '') AS agent, content FROM messages "
        "WHERE thread_id = '%s'" % thread_id, "seq")]


def threads(thread_id):
    return int(pg.value("SELECT count(*) FROM threads WHERE id = '%s'" % thread_id,
                        role="readonly"))


def attempts():
    """Upstream chat attempts since the last reset, and the gaps between them."""
    k = sim.stats()["keys"].get("", {"count": 0, "times": []})
    ts = k["times"]
    return k["count"], [b - a for a, b in zip(ts, ts[1:])]


def err_body(detail, rid):
    return compact({"detail": detail, "request_id": rid}).encode()


def failed_turn(name, marker, want_status, want_detail, want_attempts, want_usage_status,
                want_retries, billed=False, stream=False):
    """A turn that fails upstream: status, exact body, attempts, no messages, the usage row."""
    sim.reset()
    rid, tid = new_rid(name), str(uuid.uuid4())
    prompt = "Please help %s with my order" % marker
    st, h, b, secs = chat(srv.port, prompt, rid, tid)
    if callable(want_detail):
        t.ok(st == want_status and want_detail(b), "%s: %d with the mapped detail" % (name, st),
             b)
    else:
        want_body = want_detail if isinstance(want_detail, bytes) else err_body(want_detail, rid)
        t.eq((st, b), (want_status, want_body), "%s: %d %s" % (name, want_status, want_body))
    n, gaps = attempts()
    t.eq(n, want_attempts, "%s: %d upstream attempt(s)" % (name, want_attempts))
    t.eq((threads(tid), messages(tid)), (0, []), "%s: no thread and no message rows" % name)
    u = usage(rid)
    ok = (len(u) == 1 and u[0]["status"] == want_usage_status
          and u[0]["retries"] == want_retries and u[0]["message_id"] == ""
          and u[0]["thread_id"] == tid and u[0]["user_id"] == "alice"
          and (u[0]["total"] > 0) == billed)
    t.ok(ok, "%s: its usage row (status %s, retries %d, %s, unlinked)"
         % (name, want_usage_status or "NULL", want_retries,
            "billed" if billed else "no tokens"), u)
    return st, h, b, secs, gaps, u


# ---- success: ChatResponse, two messages, one linked usage row ---------------------
sim.reset()
rid = new_rid("ok")
prompt = "Hello, which bike suits a beginner"
st, h, b, secs = chat(srv.port, prompt, rid)
r = json.loads(b) if st == 200 else {}
p_tok, c_tok, total = expected_usage(prompt)
want = {"thread_id": r.get("thread_id"), "message_id": r.get("message_id"),
        "agent_response": sim_reply(prompt), "followup_questions": {}, "token_count": total,
        "max_token_count": 0, "topic": None,
        "memory_summary": "Classified message: %s..." % prompt[:50], "event_type": None}
t.eq((st, b), (200, compact(want).encode()), "success: 200 with the exact ChatResponse")
tid, mid = r.get("thread_id", ""), r.get("message_id", "")
t.eq(attempts()[0], 1, "success: one upstream attempt")
m = messages(tid)
t.eq([(row[1], row[2], row[3], row[4]) for row in m],
     [(1, "user", "", prompt), (2, "assistant", "classification_agent", sim_reply(prompt))],
     "success: the user and assistant messages are stored")
t.ok(len(m) == 2 and m[1][0] == mid, "success: the assistant message has the reply's message_id")
u = usage(rid)
t.ok(len(u) == 1 and (u[0]["prompt"], u[0]["completion"], u[0]["total"]) == (p_tok, c_tok, total),
     "success: one usage row with the simulator's counts (%d + %d)" % (p_tok, c_tok), u)
t.ok(len(u) == 1 and u[0]["message_id"] == mid and u[0]["thread_id"] == tid
     and (u[0]["flow"], u[0]["agent"], u[0]["model"], u[0]["deployment"], u[0]["status"],
          u[0]["retries"], u[0]["user_id"])
     == ("classification_agent", "classification_agent", "gpt-4o", "gpt4o", 200, 0, "alice"),
     "success: the row is linked to the assistant message, with flow, model, status", u)
t.eq(r.get("token_count"), u[0]["total"] if u else None,
     "success: token_count in the reply equals the usage total")

# the same thread again: the history reaches the model, the order stays gap-free
rid2 = new_rid("ok2")
st, h, b, secs = chat(srv.port, "And a helmet", rid2, tid)
r2 = json.loads(b) if st == 200 else {}
t.ok(st == 200 and r2["thread_id"] == tid
     and r2["agent_response"].startswith('Simulated reply to: "Previous conversation:\nuser: '),
     "second turn: 200 on the same thread, the history is sent upstream", b)
m = messages(tid)
t.eq([row[1] for row in m], [1, 2, 3, 4], "second turn: messages 3 and 4 follow")
u2 = usage(rid2)
t.ok(len(u2) == 1 and u2[0]["message_id"] == r2.get("message_id")
     and u2[0]["total"] == r2.get("token_count"), "second turn: its own linked usage row", u2)

# ---- 429 with retry-after-ms, then success ---------------------------------------------
sim.reset()
rid = new_rid("429-once")
st, h, b, secs = chat(srv.port, "Price of the red bike [429-once]", rid)
n, gaps = attempts()
t.ok(st == 200 and json.loads(b)["agent_response"].startswith("Simulated reply"),
     "429 once: the client sees 200", b)
t.ok(n == 2 and gaps[0] >= 0.3 - SLACK, "429 once: 2 attempts, gap %s >= retry-after-ms 300"
     % gaps)
u = usage(rid)
t.ok(len(u) == 1 and u[0]["status"] == 200 and u[0]["retries"] == 1 and u[0]["total"] > 0
     and u[0]["message_id"] == json.loads(b)["message_id"],
     "429 once: one billed usage row with retries=1, linked", u)
t.ok(len(u) == 1 and u[0]["latency"] >= 300,
     "429 once: the row's latency includes the wait (%s ms)" % (u[0]["latency"] if u else None))

# ---- 429 beyond the budget ---------------------------------------------------------------
st, h, b, secs, gaps, u = failed_turn(
    "429 always", "[429-always]", 503, 'azure openai is rate limiting model "gpt-4o" (429)',
    3, 429, 2)
t.eq(h.get("retry-after"), "1", "429 always: 503 carries Retry-After (ceil of 400 ms)")
t.ok(len(gaps) == 2 and all(g >= 0.4 - SLACK for g in gaps),
     "429 always: the retries honour retry-after-ms 400 (gaps %s)" % gaps)

st, h, b, secs, gaps, u = failed_turn(
    "Retry-After past the deadline", "[429-long]", 503,
    'azure openai is rate limiting model "gpt-4o" (429)', 1, 429, 0)
t.ok(secs < 0.5 and h.get("retry-after") == "30",
     "Retry-After 30 s > deadline: 503 at once (%.2fs) with Retry-After: 30" % secs, h)

# ---- 5xx: retried, then 502 ------------------------------------------------------------
for code in (500, 503):
    st, h, b, secs, gaps, u = failed_turn(
        "upstream %d" % code, "[%d]" % code, 502,
        'azure openai answered %d for model "gpt-4o"' % code, 3, code, 2)
    t.ok("retry-after" not in h, "upstream %d: no Retry-After on a 502" % code)

# ---- hang: 504 within the timeout --------------------------------------------------------
st, h, b, secs, gaps, u = failed_turn("hang", "[hang]", 504,
                                      "azure openai did not answer in time", 1, 0, 0)
t.ok(TIMEOUT_MS / 1000.0 - 0.05 <= secs <= TIMEOUT_MS / 1000.0 + 0.5,
     "hang: 504 after %.2fs (timeout %d ms)" % (secs, TIMEOUT_MS))

# ---- broken replies: 502 -----------------------------------------------------------------
def detail_prefix(prefix):
    def check(b):
        d = json.loads(b)
        return sorted(d) == ["detail", "request_id"] and d["detail"].startswith(prefix)
    return check


failed_turn("malformed JSON", "[malformed]", 502,
            detail_prefix("could not parse the language model's reply (azure openai): "), 1, 200, 0)
# a body cut short is a transport error: retried like a reset connection
failed_turn("truncated body", "[truncated]", 502,
            detail_prefix("could not read the reply of azure openai: "), 3, 200, 2)
failed_turn("oversized body", "[oversized]", 502,
            "azure openai sent a reply larger than 8388608 bytes", 1, 200, 0)

# ---- content filter, context length, 400 ---------------------------------------------------
failed_turn("content filter on the prompt", "[cf-prompt]", 406, CF_BODY.encode(), 1, 400, 0)
failed_turn("content filter on the completion", "[cf-completion]", 406, CF_BODY.encode(),
            1, 200, 0, billed=True)
long_prompt = " ".join("word%d" % (i % 10) for i in range(1200))
sim.reset()
rid, tid = new_rid("context"), str(uuid.uuid4())
st, h, b, secs = chat(srv.port, long_prompt, rid, tid)
t.eq((st, b), (413, PTL_BODY.encode()),
     "context length exceeded by the first prompt of a thread: 413 saying to shorten it")
u = usage(rid)
t.ok(attempts()[0] == 1 and messages(tid) == [] and len(u) == 1 and u[0]["status"] == 400
     and u[0]["total"] == 0, "context length: 1 attempt, no messages, an unbilled usage row", u)
# a thread with history: the reference's exact advice, a new conversation
rid = new_rid("context-history")
st, h, b, secs = chat(srv.port, "a first question", rid)
tid = json.loads(b).get("thread_id") if st == 200 else ""
st, h, b, secs = chat(srv.port, long_prompt, new_rid("context-history-2"), tid)
t.eq((st, b), (413, TL_BODY.encode()),
     "context length exceeded in a thread with history: 413 with the exact body")
failed_turn("upstream 400", "[400]", 502,
            detail_prefix('azure openai rejected the request for model "gpt-4o" with 400'),
            1, 400, 0)

# ---- streaming ----------------------------------------------------------------------------
sim.reset()
rid = new_rid("stream")
prompt = "Stream me an answer about gears"
st, h, b, secs = chat(srv.port, prompt, rid, stream=True)
fr = frames(b) if st == 200 else []
content = [f["data"] for f in fr if f["event"] == "data" and f["data"]["chunk_type"] == "content"]
final = [f["data"] for f in fr if f["event"] == "data" and f["data"]["chunk_type"] == "final"]
t.ok(st == 200 and h.get("content-type") == "text/event-stream" and len(content) > 1,
     "stream: 200 text/event-stream with several content frames", b[:400])
t.eq("".join(c["content"] for c in content), sim_reply(prompt),
     "stream: the content frames concatenate to the reply")
p_tok, c_tok, total = expected_usage(prompt)
t.ok(len(final) == 1 and final[0]["token_count"] == total and final[0]["is_final"]
     and fr[-1] == {"event": "done", "data": None, "error": None}
     and fr[-2]["data"] == final[0], "stream: a final chunk with token_count %d, then done" % total,
     fr[-2:])
sid, smid = (content[0]["thread_id"], content[0]["message_id"]) if content else ("", "")
m = messages(sid)
u = usage(rid)
t.ok([row[2] for row in m] == ["user", "assistant"] and m[1][4] == sim_reply(prompt)
     and m[1][0] == smid, "stream: the turn is stored with the streamed message_id", m)
t.ok(len(u) == 1 and u[0]["message_id"] == smid and u[0]["total"] == total,
     "stream: its usage row is linked and billed", u)
t.eq(sim.stats()["streams"], 1, "stream: the upstream call streamed")

sim.reset()
rid, tid = new_rid("stream-cut"), str(uuid.uuid4())
st, h, b, secs = chat(srv.port, "Stream me a cut answer [truncated]", rid, tid, stream=True)
fr = frames(b) if st == 200 else []
t.ok(st == 200 and len(fr) >= 2 and fr[0]["event"] == "data"
     and fr[-1]["event"] == "error" and fr[-1]["data"] is None
     and fr[-1]["error"].startswith("could not read the reply of azure openai")
     and not any(f["event"] == "done" for f in fr),
     "stream cut mid-way: content frames, then an error frame, no done", fr[-2:])
u = usage(rid)
t.ok(attempts()[0] == 1 and messages(tid) == [] and threads(tid) == 0 and len(u) == 1
     and u[0]["message_id"] == "", "stream cut: no retry after content went out, "
     "nothing stored, its usage row kept", u)

sim.reset()
rid, tid = new_rid("stream-cf"), str(uuid.uuid4())
st, h, b, secs = chat(srv.port, "Stream a filtered answer [cf-completion]", rid, tid, stream=True)
fr = frames(b) if st == 200 else []
t.ok(st == 200 and fr and fr[-1] == {"event": "error", "data": None,
                                     "error": json.loads(CF_BODY)["detail"]},
     "stream content filter: the error frame carries the reference's message", fr[-2:])
u = usage(rid)
t.ok(messages(tid) == [] and len(u) == 1 and u[0]["total"] > 0 and u[0]["message_id"] == "",
     "stream content filter: nothing stored, the billed usage row exists", u)

sim.reset()
rid = new_rid("stream-429")
st, h, b, secs = chat(srv.port, "Stream [429-long]", rid, stream=True)
t.eq((st, frames(b) if st == 200 else b),
     (200, [{"event": "error", "data": None,
             "error": 'azure openai is rate limiting model "gpt-4o" (429)'}]),
     "stream failing before any content: 200 with one error frame (reference §1.4)")

# ---- stream frames: at most streaming_chunk_size characters, never a character cut ------
chunky = Server(t, workers=1, env=model_env(
    INGENIOUS_WEB_CONFIGURATION__STREAMING_CHUNK_SIZE=str(MB_CHUNK))).start()
rid, tid = new_rid("stream-multibyte"), str(uuid.uuid4())
st, h, b, secs = chat(chunky.port, "Answer in many scripts [multibyte]", rid, tid, stream=True)
parts = [p for p in b.split(b"\n\n") if p.strip()] if st == 200 else []
decoded = []
for p in parts:
    try:
        decoded.append(json.loads(p.decode("utf-8", errors="strict")[len("data: "):]))
    except ValueError as exc:   # UnicodeDecodeError is a ValueError
        decoded.append({"undecodable": repr(p), "why": str(exc)})
t.ok(st == 200 and parts and len(decoded) == len(parts)
     and all("undecodable" not in d for d in decoded),
     "stream of multi-byte text: every frame is valid UTF-8 JSON on its own",
     [d for d in decoded if "undecodable" in d][:2])
mb = [d["data"]["content"] for d in decoded
      if d.get("event") == "data" and d["data"]["chunk_type"] == "content"]
t.eq("".join(mb), MB_REPLY, "stream of multi-byte text: the frames concatenate to the reply")
t.ok(mb and max(len(c) for c in mb) == MB_CHUNK and all(c for c in mb),
     "stream of multi-byte text: streaming_chunk_size %d honoured (longest frame %d characters, "
     "%d frames)" % (MB_CHUNK, max(len(c) for c in mb) if mb else 0, len(mb)), mb[:8])
t.ok(decoded and decoded[-1] == {"event": "done", "data": None, "error": None}
     and [m[4] for m in messages(tid)] == ["Answer in many scripts [multibyte]", MB_REPLY],
     "stream of multi-byte text: done, and the whole reply is stored", messages(tid))
chunky.stop()

# enable_streaming = false: the reference says nothing; the stream route names the key
quiet = Server(t, workers=1, env=model_env(
    INGENIOUS_WEB_CONFIGURATION__ENABLE_STREAMING="false")).start()
sim.reset()
rid = new_rid("stream-off")
st, h, b, secs = chat(quiet.port, "Stream while streaming is off", rid, stream=True)
d = json.loads(b) if b.startswith(b"{") else {}
t.ok(st == 400 and sorted(d) == ["detail", "request_id"]
     and "web_configuration.enable_streaming" in d["detail"] and d["request_id"] == rid
     and attempts()[0] == 0 and usage(rid) == [],
     "enable_streaming false: /chat/stream is a 400 naming the key, before any LLM call", b)
st, h, b, secs = chat(quiet.port, "Chat while streaming is off", new_rid("chat-on"))
t.eq(st, 200, "enable_streaming false: /chat still answers")
quiet.stop()

# ---- the turn fails after a billed call: the usage row stays (D2) ------------------------
pg.sql("REVOKE INSERT ON messages FROM ingenious_app", role="owner")
sim.reset()
rid = new_rid("db-refuses")
st, h, b, secs = chat(srv.port, "Hello while the database refuses turns", rid)
pg.sql("GRANT INSERT ON messages TO ingenious_app", role="owner")
t.eq((st, b), (500, err_body("could not store the conversation", rid)),
     "the database refuses the turn after the LLM call: 500, no database text")
u = usage(rid)
t.ok(attempts()[0] == 1 and len(u) == 1 and u[0]["status"] == 200 and u[0]["total"] > 0
     and u[0]["message_id"] == "" and threads(u[0]["thread_id"]) == 0,
     "the billed call's usage row is committed, unlinked; no thread, no messages", u)

# a thread id the database would refuse is refused before any token is spent
sim.reset()
rid = new_rid("long-thread")
st, h, b, secs = chat(srv.port, "Hello", rid, "t" * 129)
t.eq((st, b, attempts()[0], usage(rid)),
     (400, b'{"detail":"thread_id is longer than 128 characters"}', 0, []),
     "a 129-character thread_id: 400 before the LLM call, no usage row")
st, h, b, secs = chat(srv.port, "Hello", new_rid("max-thread"), "t" * 128)
t.ok(st == 200 and json.loads(b)["thread_id"] == "t" * 128, "128 characters are fine", b)

# an empty prompt is not sent to the model (nor billed): 422 like a missing field
for text, name in (("", "empty"), ("  \n\t ", "blank")):
    sim.reset()
    rid = new_rid("prompt-" + name)
    st, h, b, secs = chat(srv.port, text, rid)
    body = json.loads(b) if st == 422 else {}
    t.ok(st == 422 and body.get("error", {}).get("code") == "REQUEST_VALIDATION_ERROR"
         and body["error"].get("message") == "user_prompt is empty"
         and attempts()[0] == 0 and usage(rid) == [],
         "an %s user_prompt: 422 before the LLM call, no usage row" % name, b)
# a prompt over server.max_prompt_bytes: 413 naming the limit and its key
sim.reset()
rid = new_rid("prompt-huge")
st, h, b, secs = chat(srv.port, "x" * 262145, rid)
t.eq((st, b, attempts()[0], usage(rid)),
     (413, b'{"detail":"user_prompt is longer than 262144 bytes (server.max_prompt_bytes)"}',
      0, []), "a prompt of 256 KiB + 1: 413 naming server.max_prompt_bytes, no LLM call")

# ---- concurrency: a slow upstream, 200 chats at once ---------------------------------------
sim.reset()
N = 200
results = [None] * N
hold = threading.Barrier(N + 1)


def one(i):
    hold.wait()
    try:
        results[i] = chat(srv.port, "[slow] question %d" % i, "chat-llm-load-%d-%d"
                          % (os.getpid(), i), timeout=30)
    except Exception as exc:
        results[i] = (None, {}, repr(exc).encode(), 0)


ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(N)]
for th in ths:
    th.start()
t0 = time.time()
hold.wait()
time.sleep(0.2)
ht0 = time.time()
hst = request(srv.port, "GET", "/api/v1/health")[0]
health_s = time.time() - ht0
for th in ths:
    th.join(30)
wall = time.time() - t0
good = [i for i in range(N) if results[i] and results[i][0] == 200
        and json.loads(results[i][2])["agent_response"] == sim_reply("[slow] question %d" % i)]
t.eq(len(good), N, "200 concurrent chats on a 400 ms upstream: every one answered with its reply")
bad = [results[i][:3] for i in range(N) if i not in good][:3]
if bad:
    t.diag(bad)
t.ok(wall < 8, "they finish in %.1fs (2 workers, flow threads grown on demand)" % wall)
t.ok(hst == 200 and health_s < slack(0.3), "/api/v1/health stays fast under that load (%.3fs)" % health_s)
t.eq(attempts()[0], N, "one upstream call each")
cnt = pg.sql("SELECT count(*), count(message_id) FROM llm_usage WHERE request_id LIKE "
             "'chat-llm-load-%d-%%'" % os.getpid(), role="readonly")[0]
t.eq(cnt, [str(N), str(N)], "200 usage rows, each linked to its assistant message")
srv.stop()

# ---- a tiny flow queue: the excess gets 503 at once (overload_delay_ms 0), or held for
# overload_delay_ms (the default) so that clients re-sending at once cannot spin the server
for delay_ms in (0, 1000):
  small = Server(t, workers=2, env=model_env(INGENIOUS_SERVER__FLOW_THREADS="1",
                                            INGENIOUS_SERVER__FLOW_QUEUE="1",
                                            INGENIOUS_SERVER__OVERLOAD_DELAY_MS=str(delay_ms))).start()
  sim.reset()
  N = 16
  results = [None] * N
  hold = threading.Barrier(N + 1)


  def one_small(i):
      hold.wait()
      try:
          results[i] = chat(small.port, "[slower] busy %d" % i, "chat-llm-busy-%d-%d"
                            % (os.getpid(), i), timeout=30)
      except Exception as exc:
          results[i] = (None, {}, repr(exc).encode(), 0)


  ths = [threading.Thread(target=one_small, args=(i,), daemon=True) for i in range(N)]
  for th in ths:
      th.start()
  hold.wait()
  time.sleep(0.2)
  ht0 = time.time()
  hst = request(small.port, "GET", "/api/v1/health")[0]
  health_s = time.time() - ht0
  for th in ths:
      th.join(30)
  oks = [r for r in results if r and r[0] == 200]
  busy = [(i, r) for i, r in enumerate(results) if r and r[0] == 503]
  t.ok(2 <= len(oks) <= 4 and len(oks) + len(busy) == N,
       "flow_threads=1, flow_queue=1, 2 workers: %d answered, %d refused of %d"
       % (len(oks), len(busy), N), [r[:3] for r in results if r and r[0] not in (200, 503)][:3])
  lo, hi = (0, slack(0.3)) if delay_ms == 0 else (delay_ms / 1000.0, delay_ms / 1000.0 + slack(0.6))
  t.ok(all(lo <= r[3] < hi and r[1].get("retry-after") == "1"
           and r[2] == err_body("server busy, retry later", "chat-llm-busy-%d-%d" % (os.getpid(), i))
           for i, r in busy), "overload_delay_ms %d: the refused ones get 503 with Retry-After "
       "after %.1f to %.1f s" % (delay_ms, lo, hi),
       [(r[0], r[2], round(r[3], 3)) for i, r in busy][:3])
  t.ok(hst == 200 and health_s < slack(0.3), "/api/v1/health stays fast while the queue is full (%.3fs)"
       % health_s)
  m = small.metrics()
  t.eq(m.get("ingenious_flow_queue_rejections_total"), float(len(busy)),
       "ingenious_flow_queue_rejections_total counts them")
  t.eq(m.get("ingenious_flow_admitted_total"), float(len(oks)),
       "ingenious_flow_admitted_total counts the admitted ones")
  t.eq(m.get("ingenious_flow_limit"), 4.0, "ingenious_flow_limit: 2 workers x (1 thread + 1 queued)")
  t.eq(attempts()[0], len(oks), "only the admitted chats reached the upstream")
  small.stop()


# ---- authentication to the upstream --------------------------------------------------------
def served_by(server, path="/api/v1/chat"):
    """pids of the workers that completed chat requests, from the access log."""
    pids = set()
    for line in server.log_lines("request completed"):
        if "path=%s " % path in line:
            pids.add(re.search(r" pid=(\d+)", line).group(1))
    return pids


WRONG = "wrong-key-0c9d8e7f6a5b"
bad = Server(t, workers=1, env=model_env(INGENIOUS_MODELS__0__API_KEY=WRONG)).start()
sim.reset()
rid = new_rid("badkey")
st, h, b, secs = chat(bad.port, "Hello with a wrong key", rid)
d = json.loads(b) if st == 502 else {}
t.ok(st == 502 and "could not authenticate with azure openai" in d.get("detail", "")
     and "401" in d["detail"], "wrong API key: 502 naming an upstream authentication problem", b)
t.ok(WRONG.encode() not in b and WRONG not in bad.log(), "the key is neither echoed nor logged")
st_ = sim.stats()
t.ok(attempts()[0] == 1 and st_["auth_failures"] == 1, "wrong API key: 1 attempt, never retried")
u = usage(rid)
t.ok(len(u) == 1 and u[0]["status"] == 401 and u[0]["total"] == 0, "wrong key: usage row with 401",
     u)
bad.stop()

for method, extra, counter in (
        ("client_id_and_secret", {"INGENIOUS_MODELS__0__CLIENT_ID": "chat-llm-app",
                                  "INGENIOUS_MODELS__0__CLIENT_SECRET": SECRET,
                                  "INGENIOUS_MODELS__0__TENANT_ID": "chat-llm-tenant",
                                  "INGENIOUS_LLM__TOKEN_ENDPOINT": sim.url}, "entra"),
        ("msi", {"INGENIOUS_LLM__IMDS_ENDPOINT": sim.url}, "imds")):
    env = model_env(INGENIOUS_MODELS__0__AUTHENTICATION_METHOD=method,
                    INGENIOUS_MODELS__0__API_KEY="")
    env.update(extra)
    ent = Server(t, workers=2, env=env).start()
    sim.reset()
    # concurrent first chats race for the token: each worker still fetches one
    sts = [None] * 12
    ths = [threading.Thread(target=lambda i=i: sts.__setitem__(
        i, chat(ent.port, "[slow] token question %d" % i, new_rid(method))[0]))
        for i in range(12)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(20)
    sts += [chat(ent.port, "Token question %d" % i, new_rid(method))[0] for i in range(4)]
    ss = sim.stats()
    workers = served_by(ent)
    t.eq(sts, [200] * 16, "%s: 16 chats answered through a bearer token" % method)
    issued = ss["tokens_issued"]
    t.ok(issued[counter] == len(workers) and issued["total"] == len(workers)
         and ss["auth_failures"] == 0,
         "%s: one token request per worker (%d tokens, %d workers served)"
         % (method, ss["tokens_issued"][counter], len(workers)), ss)
    t.ok(SECRET not in ent.log(), "%s: the secret never reaches the log" % method)
    ent.stop()

env = model_env(INGENIOUS_MODELS__0__AUTHENTICATION_METHOD="client_id_and_secret",
                INGENIOUS_MODELS__0__API_KEY="", INGENIOUS_MODELS__0__CLIENT_ID="chat-llm-app",
                INGENIOUS_MODELS__0__CLIENT_SECRET="not-the-secret-31337",
                INGENIOUS_MODELS__0__TENANT_ID="chat-llm-tenant",
                INGENIOUS_LLM__TOKEN_ENDPOINT=sim.url)
ent = Server(t, workers=1, env=env).start()
sim.reset()
st, h, b, secs = chat(ent.port, "Hello with a wrong secret", new_rid("badsecret"))
t.ok(st == 502 and b"not-the-secret-31337" not in b and attempts()[0] == 0,
     "Entra ID with a wrong secret: 502 before any chat attempt, secret not echoed", b)
ent.stop()

check_sanitizers(t)
t.done()
