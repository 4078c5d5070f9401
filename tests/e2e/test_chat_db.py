"""test_chat_db.py -- issue 3 end to end through the real server: the chat,
history and feedback routes against a private PostgreSQL (tests/e2e/lib/
pgcluster.py) and the Azure OpenAI simulator, with assertions on the HTTP
responses AND on the rows (docs/reliability.md D2, D3; reference §1.3, §1.5, §1.6).

  * the DBA usage views return the sums of a known set of turns, whose token
    counts follow from the simulator's tokenizer, read as the read-only role
  * GET /conversations/{id}: the reference's field names, oldest first, the
    last 5 by default, ?limit= 1..1000, unknown thread -> []; the message_id
    of /chat is the stored assistant message
  * PUT /messages/{id}/feedback: the success body, the row, the reference's
    three error strings byte for byte, 422 for bad bodies
  * a 200 means committed; a failed turn leaves no message row but its usage
  * Idempotency-Key: one turn, one LLM call, the same body, also when the
    retries arrive at the same time
  * 50 concurrent turns on one thread: seq 1..100, no gap, no duplicate, each
    turn's two messages adjacent
  * /chat/stream saves its turn before the done frame
  * the server connects with gssencmode=disable unless its URL says otherwise:
    a URL's own gssencmode=require wins (503, and the log says why)
"""
import http.client
import json
import os
import re
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Server, Tap, request  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim, prompt_tokens, tokens  # noqa: E402
from chatkit import SYSTEM, sim_reply  # noqa: E402

t = Tap(timeout=110)

KEY = "chat-db-sim-key-83d1"
FLOW = "classification-agent"
FLOW_STORED = "classification_agent"
LLM_TIMEOUT_MS = 2500       # also how long a retry waits for its key's first request
FIELDS = ["user_id", "thread_id", "message_id", "positive_feedback", "timestamp", "role",
          "content", "content_filter_results", "tool_calls", "tool_call_id",
          "tool_call_function"]
RULES = [
    {"match": "[cf-completion]", "fault": "content_filter_completion"},
    {"match": "[400]", "fault": "400"},
    {"match": "[slow]", "fault": "none;latency-ms=400"},
]


def flow_input(prompt, history):
    """The user message the flow sends: the prompt, after the thread's memory
    ("role: first 200 chars..." per stored message) when the thread has one."""
    if not history:
        return prompt
    memory = "\n".join("%s: %s..." % (role, content[:200]) for role, content in history)
    return "Previous conversation:\n%s\n\n%s" % (memory, prompt)


def expected_usage(prompt, history=()):
    """(prompt, completion, total) tokens and the reply of one successful turn."""
    user = flow_input(prompt, history)
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    reply = sim_reply(user)
    p, c = prompt_tokens(msgs), tokens(reply)
    return p, c, p + c, reply


# ---- the cluster, the simulator, the server ---------------------------------------
pg = PgCluster(t)
sim = Sim(t, api_key=KEY, rules=RULES, max_seconds=200, args=["--quiet"]).start()
srv = Server(t, workers=2, env={
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_TYPE": "rest",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_LLM__MAX_RETRIES": "0",
    "INGENIOUS_LLM__TIMEOUT_MS": str(LLM_TIMEOUT_MS),
}).start()
rid_seq = [0]


def new_rid(name):
    rid_seq[0] += 1
    return "chat-db-%s-%d-%d" % (name, os.getpid(), rid_seq[0])


def chat(prompt, thread_id=None, user_id=None, rid=None, headers=None, stream=False,
         timeout=30):
    """One turn: (status, headers, body bytes); rid becomes the X-Request-ID."""
    body = {"user_prompt": prompt, "conversation_flow": FLOW}
    if thread_id is not None:
        body["thread_id"] = thread_id
    if user_id is not None:
        body["user_id"] = user_id
    hdrs = dict(headers or {})
    if rid is not None:
        hdrs["X-Request-ID"] = rid
    return request(srv.port, "POST", "/api/v1/chat/stream" if stream else "/api/v1/chat",
                   body, headers=hdrs, timeout=timeout)


def jbody(b):
    try:
        return json.loads(b)
    except ValueError:
        return None


def q(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def rows_json(sql, order="1", role="readonly"):
    """Rows of a query as dicts (jsonb keeps newlines escaped: one line per result)."""
    v = pg.value("SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.%s), '[]') FROM (%s) r"
                 % (order, sql), role=role)
    return json.loads(v)


def messages(thread_id):
    return rows_json("SELECT id::text, seq, role, user_id, coalesce(agent_name, '') AS agent, "
                     "content, positive_feedback FROM messages WHERE thread_id = %s"
                     % q(thread_id), "seq")


def usage(rid):
    return rows_json("SELECT id, coalesce(message_id::text, '') AS message_id, user_id, "
                     "thread_id, flow, prompt_tokens, completion_tokens, total_tokens, "
                     "coalesce(http_status, 0) AS http_status FROM llm_usage "
                     "WHERE request_id = %s" % q(rid), "id")


def count(sql):
    return int(pg.value(sql, role="readonly"))


def llm_calls():
    return sim.stats()["chat"]


# ======================================================================================
# 1. DBA views: a known set of turns on an empty database, summed by the views
# ======================================================================================
known = []      # (user, thread, prompt tokens, completion tokens, http status)
threads_seen = {}


def known_turn(prompt, user, thread_id=None, history=()):
    p, c, tot, reply = expected_usage(prompt, history)
    st, _, b = chat(prompt, thread_id, user)
    r = jbody(b) or {}
    t.ok(st == 200 and r.get("agent_response") == reply and r.get("token_count") == tot,
         "views: turn of %s answered with the simulator's reply and %d tokens" % (user, tot),
         (st, b, reply, tot))
    known.append((user or "unspecified_user", r.get("thread_id"), p, c, 200))
    return r


a1 = known_turn("Does the Trek Domane have disc brakes?", "alice")
a2 = known_turn("And what does it weigh?", "alice", a1.get("thread_id"),
                [("user", "Does the Trek Domane have disc brakes?"),
                 ("assistant", a1.get("agent_response") or "")])
b1 = known_turn("My chain keeps slipping, help", "bob")
u1 = known_turn("Which helmets do you sell?", None)
# a call that the upstream refuses: one usage row, no tokens, an error
rid = new_rid("views-400")
st, _, b = chat("Price list please [400]", user_id="bob", rid=rid)
t.eq(st, 502, "views: a refused upstream call fails the turn (502)")
u = usage(rid)
t.ok(len(u) == 1 and u[0]["http_status"] == 400 and u[0]["total_tokens"] == 0,
     "views: and leaves one usage row with status 400 and no tokens", u)
known.append(("bob", u[0]["thread_id"] if u else None, 0, 0, 400))


def sums(rows):
    return {"calls": len(rows), "prompt_tokens": sum(r[2] for r in rows),
            "completion_tokens": sum(r[3] for r in rows),
            "total_tokens": sum(r[2] + r[3] for r in rows),
            "errors": sum(1 for r in rows if not 200 <= r[4] <= 299)}


MEASURES = "calls, prompt_tokens, completion_tokens, total_tokens, errors"


def view(sql, key):
    out = {}
    for r in rows_json(sql, key):
        out[r.pop(key)] = r
    return out


try:
    days = view("SELECT day::text, %s FROM usage_by_day" % MEASURES, "day")
    total = {m: sum(d[m] for d in days.values()) for m in sums([]).keys()}
    t.eq(total, sums(known), "usage_by_day sums every call of the known turns")
    now_day = pg.value("SELECT (now() AT TIME ZONE 'UTC')::date::text", role="readonly")
    t.eq(sorted(days), [now_day], "usage_by_day puts them on today's UTC date")
    got = view("SELECT user_id, %s FROM usage_by_user" % MEASURES, "user_id")
    want = {usr: sums([k for k in known if k[0] == usr]) for usr in {k[0] for k in known}}
    t.eq(got, want, "usage_by_user: calls, tokens and errors per user")
    got = view("SELECT flow, %s, threads FROM usage_by_flow" % MEASURES, "flow")
    want = {FLOW_STORED: dict(sums(known), threads=len({k[1] for k in known}))}
    t.eq(got, want, "usage_by_flow: one flow, its sums and distinct threads")
    got = view("SELECT model || '/' || deployment AS md, %s, retries FROM usage_by_model"
               % MEASURES, "md")
    t.eq(got, {"gpt-4o/gpt4o": dict(sums(known), retries=0)},
         "usage_by_model: per model and deployment")
    got = view("SELECT thread_id, coalesce(owner, '') AS owner, coalesce(flow, '') AS flow, "
               "messages, unlinked_calls, %s FROM usage_by_thread" % MEASURES, "thread_id")
    want = {}
    for tid in {k[1] for k in known}:
        ks = [k for k in known if k[1] == tid]
        ok_turns = [k for k in ks if k[4] == 200]
        want[tid] = dict(sums(ks), owner=ks[0][0] if ok_turns else "",
                         flow=FLOW_STORED if ok_turns else "", messages=2 * len(ok_turns),
                         unlinked_calls=len(ks) - len(ok_turns))
    t.eq(got, want, "usage_by_thread: per thread, with messages and unlinked calls")
    lat = rows_json("SELECT p50_latency_ms::float AS p50, p95_latency_ms::float AS p95, "
                    "(SELECT max(latency_ms) FROM llm_usage)::float AS mx FROM usage_by_model", "p50")
    t.ok(len(lat) == 1 and 0 <= lat[0]["p50"] <= lat[0]["p95"] <= lat[0]["mx"],
         "usage_by_model: p50 <= p95 <= the slowest call", lat)
except Exception as exc:   # a failing query is a failed test, not the end of the script
    t.ok(False, "the usage views answer the read-only role", repr(exc))
r = pg.psql("SELECT count(*) FROM usage_by_day", role="app")
t.ok(r.returncode != 0, "the application role cannot read the DBA views", r.stdout)

# ======================================================================================
# 2. history: GET /api/v1/conversations/{thread_id}
# ======================================================================================
T = str(uuid.uuid4())
prompts = ["history turn %d: what about gears?" % i for i in range(1, 5)]
replies = []
for p in prompts:
    st, _, b = chat(p, T, "carol")
    replies.append(jbody(b) or {})
    if st != 200:
        break
t.ok(all(r.get("thread_id") == T for r in replies) and len(replies) == 4,
     "history: four turns on a client-chosen thread id", replies)
rows = messages(T)
t.eq([(r["seq"], r["role"]) for r in rows],
     [(i, "user" if i % 2 else "assistant") for i in range(1, 9)],
     "history: the database holds seq 1..8, user then assistant")
t.eq([r["id"] for r in rows if r["role"] == "assistant"], [r.get("message_id") for r in replies],
     "history: each /chat message_id is its stored assistant message")
t.eq([r["content"] for r in rows if r["role"] == "assistant"],
     [r.get("agent_response") for r in replies],
     "history: and the stored content is the agent_response")

st, h, b = request(srv.port, "GET", "/api/v1/conversations/" + T)
pairs = json.loads(b, object_pairs_hook=lambda kv: kv) if st == 200 else []
t.ok(st == 200 and h.get("content-type", "").startswith("application/json"),
     "history: GET answers 200 with JSON", (st, h, b[:300]))
t.ok(len(pairs) == 5 and all([k for k, _ in m] == FIELDS for m in pairs),
     "history: the last 5 messages with exactly the reference's fields, in its order",
     [[k for k, _ in m] for m in pairs])
got = json.loads(b) if st == 200 else []
t.eq([m["message_id"] for m in got], [r["id"] for r in rows[3:]],
     "history: oldest first, the last five")
t.ok(all(m["thread_id"] == T and m["user_id"] == "carol" and m["positive_feedback"] is None
         and m["content_filter_results"] is None and m["tool_calls"] is None
         and m["tool_call_id"] is None and m["tool_call_function"] is None for m in got),
     "history: thread, user and null columns as stored", got[:2])
t.ok(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", m["timestamp"]) for m in got),
     "history: timestamps as YYYY-MM-DDTHH:MM:SS.ffffff", [m["timestamp"] for m in got])
t.eq([(m["role"], m["content"]) for m in got], [(r["role"], r["content"]) for r in rows[3:]],
     "history: roles and contents as stored")
for lim, n in (("1", 1), ("7", 7), ("1000", 8)):
    st, _, b = request(srv.port, "GET", "/api/v1/conversations/%s?limit=%s" % (T, lim))
    got = jbody(b) or []
    t.ok(st == 200 and [m["message_id"] for m in got] == [r["id"] for r in rows[-n:]],
         "history: ?limit=%s gives the last %d, oldest first" % (lim, n), (st, b[:200]))
for lim in ("0", "1001", "abc", "-1", "", "5x"):
    st, _, b = request(srv.port, "GET", "/api/v1/conversations/%s?limit=%s" % (T, lim))
    t.ok(st == 400 and "detail" in (jbody(b) or {}), "history: ?limit=%s is a 400" % lim,
         (st, b))
for tid in (str(uuid.uuid4()), "no-such-thread"):
    st, _, b = request(srv.port, "GET", "/api/v1/conversations/" + tid)
    t.ok(st == 200 and b == b"[]", "history: unknown thread %s gives []" % tid[:14], (st, b))

# ======================================================================================
# 3. feedback: PUT /api/v1/messages/{message_id}/feedback
# ======================================================================================
st, _, b = chat("Is the shop open on Sunday?")          # no user_id: unspecified_user
F = jbody(b) or {}
FT, FM = F.get("thread_id", ""), F.get("message_id", "")
t.ok(st == 200 and FM, "feedback: a chat without user_id", b)
t.eq(sorted({m["user_id"] for m in messages(FT)}), ["unspecified_user"],
     "feedback: its messages are stored with user_id unspecified_user")


def feedback(path_id, body, raw=False):
    data = body if raw else json.dumps(body)
    st, _, b = request(srv.port, "PUT", "/api/v1/messages/%s/feedback" % path_id, data,
                       headers={"Content-Type": "application/json"})
    return st, b


def stored_feedback(mid):
    return pg.value("SELECT coalesce(positive_feedback::text, 'null') FROM messages "
                    "WHERE id = %s" % q(mid), role="readonly")


st, b = feedback(FM, {"thread_id": FT, "message_id": FM, "user_id": "unspecified_user",
                      "positive_feedback": True})
t.ok(st == 200 and b == ('{"message":"Feedback submitted for message %s."}' % FM).encode(),
     "feedback: 200 with the reference's body", (st, b))
t.eq(stored_feedback(FM), "true", "feedback: the row holds positive_feedback = true")
st, b = feedback(FM, {"thread_id": FT, "message_id": FM, "user_id": "unspecified_user",
                      "positive_feedback": False})
t.ok(st == 200 and stored_feedback(FM) == "false", "feedback: changed to false", (st, b))
st, _, b = request(srv.port, "GET", "/api/v1/conversations/" + FT)
got = {m["message_id"]: m["positive_feedback"] for m in jbody(b) or []}
t.ok(got.get(FM) is False and list(got.values()).count(None) == 1,
     "feedback: the history shows it on that message only", got)
st, b = feedback(FM, {"thread_id": FT, "message_id": FM, "user_id": "unspecified_user"})
t.ok(st == 200 and stored_feedback(FM) == "null", "feedback: no positive_feedback clears it",
     (st, b))
st, b = feedback(FM, {"thread_id": FT, "message_id": FM, "user_id": "unspecified_user",
                      "positive_feedback": True})
t.ok(st == 200 and stored_feedback(FM) == "true", "feedback: set again", (st, b))

other = str(uuid.uuid4())
NOT_FOUND = '{"detail":"Message %s not found."}'
cases = [
    ("path id differs from body id", other,
     {"thread_id": FT, "message_id": FM, "user_id": "unspecified_user",
      "positive_feedback": False},
     b'{"detail":"Message ID does not match message feedback request."}'),
    ("unknown message", other,
     {"thread_id": FT, "message_id": other, "user_id": "unspecified_user",
      "positive_feedback": False}, (NOT_FOUND % other).encode()),
    ("message of another thread", FM,
     {"thread_id": T, "message_id": FM, "user_id": "unspecified_user",
      "positive_feedback": False}, (NOT_FOUND % FM).encode()),
    ("user mismatch", FM,
     {"thread_id": FT, "message_id": FM, "user_id": "mallory", "positive_feedback": False},
     b'{"detail":"User ID does not match message feedback request."}'),
    ("no user_id against unspecified_user", FM,
     {"thread_id": FT, "message_id": FM, "positive_feedback": False},
     b'{"detail":"User ID does not match message feedback request."}'),
    ("non-uuid message id", "not-a-uuid",
     {"thread_id": FT, "message_id": "not-a-uuid", "user_id": "unspecified_user",
      "positive_feedback": False}, (NOT_FOUND % "not-a-uuid").encode()),
    ("uuid-looking id with a bad digit", FM[:-1] + "g",
     {"thread_id": FT, "message_id": FM[:-1] + "g", "user_id": "unspecified_user",
      "positive_feedback": False}, (NOT_FOUND % (FM[:-1] + "g")).encode()),
]
for name, path_id, body, want in cases:
    st, b = feedback(path_id, body)
    t.ok(st == 400 and b == want, "feedback: %s -> 400 %s" % (name, want.decode()), (st, b))
for name, data in (("malformed JSON", '{"thread_id": "x", '),
                   ("missing message_id", json.dumps({"thread_id": FT})),
                   ("missing thread_id", json.dumps({"message_id": FM})),
                   ("a JSON array", "[]"),
                   ("positive_feedback not a bool",
                    json.dumps({"thread_id": FT, "message_id": FM, "positive_feedback": "yes"}))):
    st, b = feedback(FM, data, raw=True)
    t.ok(st == 422 and jbody(b) is not None, "feedback: %s -> 422" % name, (st, b))
st, _, b = request(srv.port, "PUT", "/api/v1/messages/%s/feedback" % FM,
                   b'{"thread_id": "\xff\xfe", "message_id": "x"}',
                   headers={"Content-Type": "application/json"})
t.ok(st == 400 and jbody(b) is not None, "feedback: invalid UTF-8 -> 400 (not 422)", (st, b))
t.eq(stored_feedback(FM), "true", "feedback: no failed request changed the row")
t.eq(count("SELECT count(*) FROM messages WHERE positive_feedback IS NOT NULL"), 1,
     "feedback: and no other row has feedback")

# ======================================================================================
# 4. durability: 200 means committed; a failed turn leaves usage, not messages
# ======================================================================================
rid = new_rid("commit")
st, _, b = chat("Do you repair e-bikes?", user_id="dave", rid=rid)
r = jbody(b) or {}
got = messages(r.get("thread_id", ""))                   # queried right after the 200
t.ok(st == 200 and [(m["role"], m["id"]) for m in got][1:] == [("assistant", r.get("message_id"))]
     and len(got) == 2, "durability: right after the 200 both messages are committed",
     (st, got))
u = usage(rid)
t.ok(len(u) == 1 and u[0]["message_id"] == r.get("message_id") and
     u[0]["total_tokens"] == r.get("token_count"),
     "durability: its usage row is linked to the reply, with the reported tokens", u)
D = r.get("thread_id", "")
before = messages(D)
last_seq = pg.value("SELECT last_seq FROM threads WHERE id = %s" % q(D), role="readonly")

rid = new_rid("cf")
st, _, b = chat("Tell me something awful [cf-completion]", D, "dave", rid)
t.ok(st == 406 and b == (b'{"detail":"The users prompt violates the content filter, '
                         b'please start a new conversation."}'),
     "durability: a content-filtered completion fails the turn with the reference's 406", b)
t.eq(messages(D), before, "durability: the failed turn added no message to the thread")
t.eq(pg.value("SELECT last_seq FROM threads WHERE id = %s" % q(D), role="readonly"), last_seq,
     "durability: and did not advance the thread's sequence")
u = usage(rid)
t.ok(len(u) == 1 and u[0]["message_id"] == "" and u[0]["total_tokens"] > 0 and
     u[0]["http_status"] == 200 and u[0]["thread_id"] == D and u[0]["user_id"] == "dave",
     "durability: but its billed call has its usage row (no message)", u)

rid, N = new_rid("cf-new"), str(uuid.uuid4())
st, _, b = chat("Something awful again [cf-completion]", N, "dave", rid)
t.ok(st == 406 and count("SELECT count(*) FROM threads WHERE id = %s" % q(N)) == 0 and
     count("SELECT count(*) FROM messages WHERE thread_id = %s" % q(N)) == 0,
     "durability: a failed first turn creates no thread and no message", (st, b))
t.eq(len(usage(rid)), 1, "durability: and keeps its usage row")
rid = new_rid("flow-error")
st, _, b = chat("Refused upstream [400]", D, "dave", rid)
t.ok(st == 502 and messages(D) == before, "durability: a flow error (502) leaves no message",
     (st, b))
u = usage(rid)
t.ok(len(u) == 1 and u[0]["http_status"] == 400 and u[0]["message_id"] == "",
     "durability: and keeps its usage row with the upstream status", u)
st, _, b = chat("Do you also repair cargo bikes?", D, "dave")
got = messages(D)
t.ok(st == 200 and [m["seq"] for m in got] == [1, 2, 3, 4],
     "durability: the next turn continues the sequence without a gap", got)

# ======================================================================================
# 5. Idempotency-Key: one turn, one LLM call, the same body
# ======================================================================================
K = "idem-" + uuid.uuid4().hex
sim.reset()
st1, h1, b1 = chat("Reserve a Domane for Saturday", user_id="erin", headers={"Idempotency-Key": K})
st2, h2, b2 = chat("Reserve a Domane for Saturday", user_id="erin", headers={"Idempotency-Key": K})
r1 = jbody(b1) or {}
t.ok(st1 == 200 and st2 == 200 and b1 == b2, "idempotency: a retry gets the same body",
     (st1, st2, b1, b2))
t.ok("idempotent-replayed" not in h1 and h2.get("idempotent-replayed") == "true",
     "idempotency: the retry says it was replayed", (h1, h2))
t.eq(llm_calls(), 1, "idempotency: one LLM call for both")
t.eq([(m["role"], m["id"]) for m in messages(r1.get("thread_id", ""))][1:],
     [("assistant", r1.get("message_id"))], "idempotency: one set of rows")
t.eq(count("SELECT count(*) FROM idempotency_keys WHERE key = %s" % q(K)), 1,
     "idempotency: the key is stored once")
st3, _, b3 = chat("Reserve a Domane for Saturday", user_id="frank",
                  headers={"Idempotency-Key": K})
t.ok(st3 == 200 and (jbody(b3) or {}).get("thread_id") != r1.get("thread_id"),
     "idempotency: the same key of another user is another turn", b3)
st, _, b = chat("Reserve a Trek instead", user_id="erin", headers={"Idempotency-Key": K})
t.eq((st, b), (422, b'{"detail":"Idempotency-Key was already used with a different request body"}'),
     "idempotency: the same key with another body is refused, not replayed")
st, _, b = chat("key too long", headers={"Idempotency-Key": "k" * 256})
t.eq(st, 400, "idempotency: a key over 255 characters is a 400")

# concurrent retries with one key, on a slow upstream so that they overlap
K2 = "idem-" + uuid.uuid4().hex
sim.reset()
n0 = count("SELECT count(*) FROM messages")
results = []
lock = threading.Lock()
go = threading.Event()


def retry_worker():
    go.wait(5)
    res = chat("Book a service slot [slow]", user_id="erin", headers={"Idempotency-Key": K2})
    with lock:
        results.append(res)


ths = [threading.Thread(target=retry_worker) for _ in range(6)]
for th in ths:
    th.start()
go.set()
for th in ths:
    th.join(30)
bodies = {b for s, _, b in results if s == 200}
t.ok(len(results) == 6 and all(s == 200 for s, _, _ in results) and len(bodies) == 1,
     "idempotency: 6 concurrent retries all get 200 and the same body",
     [(s, b[:120]) for s, _, b in results])
t.eq(count("SELECT count(*) FROM messages") - n0, 2,
     "idempotency: concurrent retries store one set of rows")
t.eq(llm_calls(), 1, "idempotency: concurrent retries make one LLM call")
t.eq(sum(1 for _, h, _ in results if h.get("idempotent-replayed") == "true"), 5,
     "idempotency: five of them are replays of the first")

# a failed turn lets go of its key: the retry runs again (and fails again)
K3 = "idem-" + uuid.uuid4().hex
sim.reset()
st1, _, b1 = chat("Say something awful [cf-completion]", user_id="erin",
                  headers={"Idempotency-Key": K3})
st2, _, b2 = chat("Say something awful [cf-completion]", user_id="erin",
                  headers={"Idempotency-Key": K3})
t.ok(st1 == 406 and st2 == 406 and llm_calls() == 2,
     "idempotency: a failed turn is not replayed; its retry runs again", (st1, st2, b2))
t.eq(count("SELECT count(*) FROM idempotency_keys WHERE key = %s" % q(K3)), 0,
     "idempotency: and the failed turn leaves no key behind")

# a claim whose holder died (older than its deadlines) is taken over
K4 = "idem-" + uuid.uuid4().hex
pg.sql("INSERT INTO idempotency_keys (owner, key, status, response, created_at) "
       "VALUES ('erin', %s, 102, 'dead-claim', now() - interval '1 hour')" % q(K4))
st, _, b = chat("Book a fitting", user_id="erin", headers={"Idempotency-Key": K4})
t.ok(st == 200 and pg.value("SELECT status || ' ' || (message_id::text = %s) FROM "
                            "idempotency_keys WHERE key = %s"
                            % (q((jbody(b) or {}).get("message_id", "")), q(K4))) == "200 true",
     "idempotency: a stale claim is taken over and the turn stored under the key", (st, b))

# a live claim of another request: the retry waits up to the LLM deadline, then 409
K5 = "idem-" + uuid.uuid4().hex
pg.sql("INSERT INTO idempotency_keys (owner, key, status, response) "
       "VALUES ('erin', %s, 102, 'live-claim')" % q(K5))
sim.reset()
t0 = time.time()
st, h, b = chat("Book a fitting too", user_id="erin", headers={"Idempotency-Key": K5})
secs = time.time() - t0
t.ok(st == 409 and h.get("retry-after") == "1" and "in progress" in (jbody(b) or {}).get(
    "detail", ""), "idempotency: a key still in progress elsewhere -> 409 with Retry-After",
     (st, h, b))
t.ok(LLM_TIMEOUT_MS / 1000 - 0.1 <= secs < LLM_TIMEOUT_MS / 1000 + 2,
     "idempotency: after waiting for it up to the LLM deadline (%.2f s)" % secs)
t.eq(llm_calls(), 0, "idempotency: without an LLM call")
t.eq(count("SELECT count(*) FROM idempotency_keys WHERE status = 102"), 1,
     "idempotency: no claim is left behind but the foreign one")

# ======================================================================================
# 6. 50 concurrent turns on one (new, client-chosen) thread
# ======================================================================================
C = str(uuid.uuid4())
results = []
go = threading.Event()


def turn_worker(i):
    go.wait(5)
    prompt = "concurrent turn %02d about saddles" % i
    try:
        res = chat(prompt, C, "gina", timeout=40)
    except Exception as exc:   # noqa: BLE001 -- recorded as a failure
        res = (0, {}, repr(exc).encode())
    with lock:
        results.append((prompt,) + res)


ths = [threading.Thread(target=turn_worker, args=(i,)) for i in range(50)]
for th in ths:
    th.start()
go.set()
for th in ths:
    th.join(45)
t.ok(len(results) == 50 and all(s == 200 for _, s, _, _ in results),
     "concurrent: 50 turns on one thread all answer 200",
     sorted({(s, b[:100]) for _, s, _, b in results if s != 200}))
rows = messages(C)
t.eq([m["seq"] for m in rows], list(range(1, 101)),
     "concurrent: seq is 1..100, no gap, no duplicate")
by_id = {m["id"]: m for m in rows}
by_seq = {m["seq"]: m for m in rows}
adjacent = 0
for prompt, s, _, b in results:
    m = by_id.get((jbody(b) or {}).get("message_id"))
    if m and m["role"] == "assistant" and m["seq"] % 2 == 0:
        u = by_seq.get(m["seq"] - 1)
        if u and u["role"] == "user" and u["content"] == prompt:
            adjacent += 1
t.eq(adjacent, 50, "concurrent: each turn's user message is right before its reply")
t.eq(count("SELECT count(*) FROM threads WHERE id = %s" % q(C)), 1,
     "concurrent: one thread row, last_seq %s" %
     pg.value("SELECT last_seq FROM threads WHERE id = %s" % q(C), role="readonly"))

# ======================================================================================
# 7. streaming saves the turn
# ======================================================================================
rid = new_rid("stream")
st, h, b = chat("Stream me an answer about tyres", user_id="hana", rid=rid, stream=True)
frames = []
for part in b.decode(errors="replace").split("\n\n"):
    if part.startswith("data: "):
        frames.append(jbody(part[6:]))
t.ok(st == 200 and frames and frames[-1] == {"event": "done", "data": None, "error": None},
     "stream: 200 and a final done frame", b[-300:])
data = [f["data"] for f in frames if f and f.get("event") == "data"]
S, SM = (data[0]["thread_id"], data[0]["message_id"]) if data else ("", "")
text = "".join(d["content"] for d in data if d["chunk_type"] == "content")
got = messages(S)
t.ok([(m["role"], m["id"]) for m in got][1:] == [("assistant", SM)] and len(got) == 2 and
     got[1]["content"] == text and got[0]["content"] == "Stream me an answer about tyres",
     "stream: after the done frame the turn is stored, message_id is the reply row", got)
u = usage(rid)
t.ok(len(u) == 1 and u[0]["message_id"] == SM, "stream: its usage row is linked", u)
st, _, b = request(srv.port, "GET", "/api/v1/conversations/" + S)
t.eq([m["message_id"] for m in jbody(b) or []][1:], [SM],
     "stream: and the history route returns it")

# ======================================================================================
# 8. the server's default gssencmode=disable yields to the URL's own gssencmode
# ======================================================================================
# The main server above connected with the default.  A URL that asks for GSSAPI
# encryption must get it asked for (and refused here: no Kerberos), not be
# overridden by the server's default.
gss_env = {k: v for k, v in srv.env.items() if k.startswith(("INGENIOUS_MODELS__", "INGENIOUS_LLM__"))}
gss_env["INGENIOUS_CHAT_HISTORY__DATABASE_URL"] = pg.url("app") + " gssencmode=require"
gss = Server(t, workers=1, env=gss_env).start()
st, _, b = request(gss.port, "POST", "/api/v1/chat",
                   json.dumps({"user_prompt": "hello", "conversation_flow": FLOW}).encode(),
                   {"Content-Type": "application/json"})
t.ok(st == 503 and b"database unavailable" in b,
     "gssencmode=require in the URL: the chat answers 503 (the URL's setting was used)", (st, b))
t.ok(gss.wait_log("GSSAPI encryption required", timeout=10),
     "and the log says GSSAPI encryption was required", gss.log()[-600:])
gss.stop()

srv.stop()
check_sanitizers(t)
t.done()
