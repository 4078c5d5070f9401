"""test_db_layer.py -- the database layer (lib/db_*.c) against a real
PostgreSQL, through tests/db_probe (the calls the server makes): turns in
one transaction with gap-free sequence numbers (50 concurrent turns on one
thread), ownership, a failed turn leaves nothing, idempotency keys, usage
rows that survive a failed turn and are linked by a committed one, the
reference's feedback cases, history and memory, users, and the DBA views'
sums for a known set of calls. The rows are checked with SQL as the
read-only role."""
import hashlib
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import Tap  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402

tap = Tap(timeout=300)
pg = PgCluster(tap)
db = pg.repl("app", opts=["--pool", "4"])
tap.at_exit(db.close)


def ro(sql):
    return pg.sql(sql, role="readonly")


def q(s):
    return "'" + s.replace("'", "''") + "'"


# --- a first turn creates the thread
r = db.cmd(["save-turn", "--owner", "bob", "--user", "bob", "--prompt", "What is 2+2?",
            "--reply", "4", "--summary", "asked about sums"])
tap.eq(r["status"], "ok", "save-turn on a new thread")
tap.ok(r.get("new_thread") is True and r.get("first_seq") == 1, "new thread, first seq 1", r)
T = r["thread_id"]
tap.ok(uuid.UUID(T) and uuid.UUID(r["reply_id"]), "thread and message ids are uuids")
tap.eq(ro("SELECT seq, role, content, user_id FROM messages WHERE thread_id = %s ORDER BY seq"
          % q(T)), [["1", "user", "What is 2+2?", "bob"], ["2", "assistant", "4", "bob"]],
       "both messages stored in order")
tap.eq(ro("SELECT id FROM messages WHERE thread_id = %s AND role = 'assistant'" % q(T)),
       [[r["reply_id"]]], "the reply id is the stored assistant message id")
tap.eq(ro("SELECT owner, flow, last_seq FROM threads WHERE id = %s" % q(T)),
       [["bob", "classification_agent", "2"]], "the thread row has owner, flow and last_seq")

# --- 50 concurrent turns on one thread: no gap, no duplicate, pairs contiguous
c, err = pg.probe(["concurrent-turns", "--thread", T, "--n", "50", "--owner", "bob"],
                  opts=["--pool", "8"])
tap.eq((c["saved"], c["failed"]), (50, 0), "50 concurrent turns saved (%.0f ms)" % c["ms"])
seqs = [int(x[0]) for x in ro("SELECT seq FROM messages WHERE thread_id = %s ORDER BY seq" % q(T))]
tap.eq(seqs, list(range(1, 103)), "seqs are exactly 1..102: no gap, no duplicate")
pairs = ro("SELECT u.content, a.content FROM messages u JOIN messages a "
           "ON a.thread_id = u.thread_id AND a.seq = u.seq + 1 "
           "WHERE u.thread_id = %s AND u.role = 'user' AND u.seq > 2" % q(T))
tap.ok(len(pairs) == 50 and all(u.split()[1] == a.split()[1] for u, a in pairs),
       "each turn's question and answer are adjacent", pairs[:5])
tap.eq(ro("SELECT last_seq FROM threads WHERE id = %s" % q(T)), [["102"]],
       "threads.last_seq follows")

# --- history: last 5 by default, oldest first; up to 1000
h = db.cmd(["messages", "--thread", T])
tap.eq([m["seq"] for m in h["messages"]], [98, 99, 100, 101, 102],
       "the last 5 messages, oldest first")
m0 = h["messages"][0]
tap.ok(all(k in m0 for k in ("id", "user_id", "role", "content", "positive_feedback",
                             "created_at", "tool_calls", "content_filter_results")),
       "messages carry the reference's fields", m0)
tap.ok(len(m0["created_at"]) == 26 and m0["created_at"][10] == "T",
       "timestamps look like YYYY-MM-DDTHH:MM:SS.ffffff", m0["created_at"])
h = db.cmd(["messages", "--thread", T, "--limit", "1000"])
tap.eq(len(h["messages"]), 102, "limit 1000 returns the whole thread")
h = db.cmd(["messages", "--thread", "no-such-thread"])
tap.eq((h["status"], h["messages"]), ("ok", []), "an unknown thread gives an empty list")
h = db.cmd(["history", "--thread", T, "--limit", "2"])
tap.eq(h["memory"], "asked about sums", "history carries the thread's memory summary")

# --- ownership
h = db.cmd(["messages", "--thread", T, "--owner", "eve"])
tap.eq(h["status"], "not_owner", "another owner gets not_owner, no data")
tap.ok("messages" not in h, "and no messages")
h = db.cmd(["messages", "--thread", T, "--owner", "bob"])
tap.eq(h["status"], "ok", "the owner reads the thread")
r = db.cmd(["save-turn", "--thread", T, "--owner", "eve", "--enforce"])
tap.eq(r["status"], "not_owner", "another owner cannot add a turn to the thread")
tap.eq(ro("SELECT count(*) FROM messages WHERE thread_id = %s" % q(T)), [["102"]],
       "and nothing was written")
r = db.cmd(["save-turn", "--thread", T, "--owner", "eve", "--enforce", "--idem", "eve-key"])
tap.eq(r["status"], "not_owner", "not_owner also for a turn with an idempotency key")
tap.eq(ro("SELECT (SELECT count(*) FROM idempotency_keys WHERE owner = 'eve'), "
          "(SELECT last_seq FROM threads WHERE id = %s)" % q(T)), [["0", "102"]],
       "and neither its key nor a seq advance was kept")

# --- any text survives the turn's array parameters (sql/004_save_turn.sql)
ODD = ('quotes " and \\ backslash \\", {braces}, a, b, NULL, \'single\', tab\t, '
       'newline\n, unicode \u00e9 \u6f22\u5b57 \U0001f680, trailing blank ')
TOOLS = json.dumps([{"id": "c\"1", "type": "function",
                     "function": {"name": "f", "arguments": "{\"a\": \"b,c}\\\\\"}"}}])
r = db.cmd(["save-turn", "--owner", "bob", "--prompt", ODD, "--reply", "NULL",
            "--summary", ODD, "--tool-calls", TOOLS])
tap.ok(r["status"] == "ok", "a turn with quotes, backslashes, braces and NULL as text", r)
tap.eq(ro("SELECT role, md5(content), content IS NULL, tool_calls = %s::jsonb, agent_name "
          "FROM messages WHERE thread_id = %s ORDER BY seq" % (q(TOOLS), q(r["thread_id"]))),
       [["user", hashlib.md5(ODD.encode()).hexdigest(), "f", "", ""],
        ["assistant", hashlib.md5(b"NULL").hexdigest(), "f", "t", "classification_agent"]],
       "is stored byte for byte (the reply \"NULL\" is text, the tool calls are the JSON sent)")
tap.eq(ro("SELECT md5(content) FROM memory_summaries WHERE thread_id = %s" % q(r["thread_id"])),
       [[hashlib.md5(ODD.encode()).hexdigest()]], "and so is its memory summary")

# --- a failed turn leaves no half-written rows
F = "failed-" + uuid.uuid4().hex
r = db.cmd(["save-turn", "--thread", F, "--owner", "bob", "--tool-calls", "[not json"])
tap.ok(r["status"] == "error" and r["http"] == 500, "a turn with a bad row fails", r)
tap.eq(r.get("error"), "database error", "the error says nothing about the data")
tap.eq(ro("SELECT (SELECT count(*) FROM threads WHERE id = %s), "
          "(SELECT count(*) FROM messages WHERE thread_id = %s)" % (q(F), q(F))),
       [["0", "0"]], "neither the thread nor its first message were kept")
r = db.cmd(["save-turn", "--thread", T, "--owner", "bob", "--tool-calls", "{\"not\":\"array\"}"])
tap.eq(r["status"], "error", "a failed turn on an existing thread")
tap.eq(ro("SELECT last_seq, (SELECT count(*) FROM messages WHERE thread_id = %s) FROM threads "
          "WHERE id = %s" % (q(T), q(T))), [["102", "102"]],
       "left last_seq and the messages untouched (no gap later)")
r = db.cmd(["save-turn", "--thread", T, "--owner", "bob"])
tap.eq(r.get("first_seq"), 103, "the next turn continues at 103")

# --- idempotency keys
r1 = db.cmd(["save-turn", "--owner", "bob", "--idem", "key-1", "--reply", "first answer"])
tap.eq(r1["status"], "ok", "a turn with an idempotency key")
r2 = db.cmd(["save-turn", "--owner", "bob", "--idem", "key-1", "--reply", "second answer"])
tap.eq(r2["status"], "replayed", "the same key again is replayed")
tap.eq(r2.get("replay_body"), r1["sent_body"], "the replay is the first turn's reply, byte for byte")
tap.eq((r2.get("thread_id"), r2.get("reply_id")), (r1["thread_id"], r1["reply_id"]),
       "and names the first turn's thread and message")
tap.eq(ro("SELECT count(*) FROM messages WHERE content = 'second answer'"), [["0"]],
       "the replayed turn wrote nothing")
g = db.cmd(["idem-get", "--owner", "bob", "--key", "key-1"])
tap.ok(g["status"] == "ok" and g["body"] == r1["sent_body"] and g["http_status"] == 200,
       "idempotency_get finds the stored reply", g)
g = db.cmd(["idem-get", "--owner", "eve", "--key", "key-1"])
tap.eq(g["status"], "not_found", "keys are per owner")
r3 = db.cmd(["save-turn", "--owner", "eve", "--idem", "key-1"])
tap.eq(r3["status"], "ok", "another owner may use the same key")

# --- usage rows: committed on their own, linked by the turn that commits
U = "usage-" + uuid.uuid4().hex
u1 = db.cmd(["usage", "--user", "bob", "--thread", U, "--flow", "classification_agent",
             "--model", "gpt-4o", "--deployment", "dep", "--prompt", "10", "--completion", "5",
             "--latency", "100"])
u2 = db.cmd(["usage", "--user", "bob", "--thread", U, "--flow", "classification_agent",
             "--model", "gpt-4o", "--deployment", "dep", "--prompt", "20", "--completion", "7",
             "--latency", "200"])
tap.ok(u1["status"] == "ok" and u2["id"] > u1["id"], "usage rows recorded with ids", (u1, u2))
tap.eq(ro("SELECT count(*) FROM llm_usage WHERE thread_id = %s AND message_id IS NULL" % q(U)),
       [["2"]], "usage rows are visible before the turn commits")
failed = db.cmd(["save-turn", "--thread", U, "--owner", "bob", "--tool-calls", "[x",
                 "--usage", "%d,%d" % (u1["id"], u2["id"])])
tap.eq(failed["status"], "error", "the turn then fails")
tap.eq(ro("SELECT count(*), sum(total_tokens) FROM llm_usage WHERE thread_id = %s "
          "AND message_id IS NULL" % q(U)), [["2", "42"]],
       "its billed calls keep their usage rows")
ok = db.cmd(["save-turn", "--thread", U, "--owner", "bob",
             "--usage", "%d,%d" % (u1["id"], u2["id"])])
tap.eq(ok["status"], "ok", "a retried turn commits")
tap.eq(ro("SELECT count(*) FROM llm_usage WHERE thread_id = %s AND message_id = %s"
          % (q(U), q(ok["reply_id"]))), [["2"]], "and links the usage rows to its reply")

# --- feedback: the reference's cases
fb = db.cmd(["save-turn", "--owner", "bob", "--user", "bob"])
M, FT = fb["reply_id"], fb["thread_id"]
r = db.cmd(["feedback", "--message", M, "--thread", FT, "--user", "bob", "--positive", "true"])
tap.eq(r["status"], "ok", "feedback from the message's user")
tap.eq(ro("SELECT positive_feedback FROM messages WHERE id = %s" % q(M)), [["t"]],
       "positive_feedback stored")
r = db.cmd(["feedback", "--message", M, "--thread", FT, "--user", "bob", "--positive", "false"])
tap.eq(ro("SELECT positive_feedback FROM messages WHERE id = %s" % q(M)), [["f"]],
       "feedback can be changed to false")
r = db.cmd(["feedback", "--message", M, "--thread", FT, "--user", "bob", "--positive", "null"])
tap.eq(ro("SELECT positive_feedback IS NULL FROM messages WHERE id = %s" % q(M)), [["t"]],
       "and cleared")
r = db.cmd(["feedback", "--message", M, "--thread", FT, "--user", "mallory", "--positive", "true"])
tap.eq(r["status"], "user_mismatch", "another user_id: user_mismatch")
r = db.cmd(["feedback", "--message", str(uuid.uuid4()), "--thread", FT, "--user", "bob",
            "--positive", "true"])
tap.eq(r["status"], "not_found", "an unknown message: not_found")
r = db.cmd(["feedback", "--message", M, "--thread", T, "--user", "bob", "--positive", "true"])
tap.eq(r["status"], "not_found", "a message of another thread: not_found")
r = db.cmd(["feedback", "--message", "not-a-uuid", "--thread", FT, "--user", "bob",
            "--positive", "true"])
tap.eq(r["status"], "not_found", "an id that is not a uuid: not_found")
r = db.cmd(["feedback", "--message", M, "--thread", FT, "--user", "bob", "--owner", "eve",
            "--positive", "true"])
tap.eq(r["status"], "not_owner", "a message of another owner's thread: not_owner")
nu = db.cmd(["save-turn", "--owner", "anon", "--user", "-"])
r = db.cmd(["feedback", "--message", nu["reply_id"], "--thread", nu["thread_id"], "--user", "",
            "--positive", "true"])
tap.eq(r["status"], "ok", "a NULL user_id and \"\" compare equal (reference)")

# --- memory: the newest summary wins
mt = db.cmd(["save-turn", "--owner", "bob", "--summary", "first memory"])
db.cmd(["save-turn", "--thread", mt["thread_id"], "--owner", "bob", "--summary", "second memory"])
db.cmd(["save-turn", "--thread", mt["thread_id"], "--owner", "bob"])
h = db.cmd(["history", "--thread", mt["thread_id"], "--limit", "10"])
tap.ok(h["memory"] == "second memory" and len(h["messages"]) == 6,
       "history: the newest memory summary and every message", h.get("memory"))
tap.eq(ro("SELECT count(*) FROM memory_summaries WHERE thread_id = %s" % q(mt["thread_id"])),
       [["2"]], "one summary row per turn that had one")

# --- users
tap.eq(db.cmd(["user-add", "--name", "dora", "--hash", "$scrypt$ln=15,r=8,p=1$a$b"])["status"],
       "ok", "user_add")
tap.eq(db.cmd(["user-add", "--name", "dora", "--hash", "$scrypt$x"])["status"], "exists",
       "user_add of a taken name: exists")
u = db.cmd(["user-get", "--name", "dora"])
tap.ok(u["status"] == "ok" and u["password_hash"] == "$scrypt$ln=15,r=8,p=1$a$b" and
       not u["disabled"], "user_get returns the hash", u)
tap.eq(db.cmd(["user-get", "--name", "nobody"])["status"], "not_found", "user_get of nobody")
tap.eq(db.cmd(["user-passwd", "--name", "dora", "--hash", "$scrypt$new"])["status"], "ok",
       "user_set_password")
tap.eq(db.cmd(["user-get", "--name", "dora"])["password_hash"], "$scrypt$new", "new hash stored")
tap.eq(db.cmd(["user-disable", "--name", "dora", "--disabled", "1"])["status"], "ok",
       "user_disable")
tap.eq(db.cmd(["user-get", "--name", "dora"])["disabled"], True, "the user is disabled")
tap.eq(db.cmd(["user-passwd", "--name", "nobody", "--hash", "$x"])["status"], "not_found",
       "set_password of nobody: not_found")
lst = db.cmd(["user-list"])
tap.ok(lst["status"] == "ok" and [x["username"] for x in lst["users"]] == ["dora"] and
       not lst["users"][0]["has_hash"], "user_list lists names without hashes", lst)
bad = db.cmd(["user-add", "--name", "bad name!", "--hash", "$x"])
tap.ok(bad["status"] == "error" and bad["http"] == 400, "an invalid username is a 400", bad)

# --- the DBA views give the right sums for a known set of calls
calls = [  # user, flow, model, deployment, prompt, completion, latency, status, retries
    ("vu1", "vflow-a", "vmodel-1", "vdep-1", 100, 50, 100, 200, 0),
    ("vu1", "vflow-a", "vmodel-1", "vdep-1", 200, 20, 300, 200, 1),
    ("vu1", "vflow-b", "vmodel-2", "vdep-2", 10, 0, 500, 500, 2),
    ("vu2", "vflow-b", "vmodel-2", "vdep-2", 0, 0, 700, 0, 0),
    ("vu2", "vflow-a", "vmodel-1", "vdep-1", 40, 60, 900, 200, 0),
]
VT = "views-" + uuid.uuid4().hex
ids = []
for user, flow, model, dep, p, c_, lat, st, rt in calls:
    r = db.cmd(["usage", "--user", user, "--thread", VT, "--flow", flow, "--model", model,
                "--deployment", dep, "--prompt", str(p), "--completion", str(c_),
                "--latency", str(lat), "--http-status", str(st), "--retries", str(rt)])
    ids.append(r["id"])
vt = db.cmd(["save-turn", "--thread", VT, "--owner", "vu1", "--flow", "vflow-a",
             "--usage", ",".join(str(i) for i in ids[:3])])
tap.eq(vt["status"], "ok", "a turn links three of the five calls")


def pct(values, p):
    """PostgreSQL's percentile_cont (linear interpolation), rounded to 0.1."""
    v = sorted(values)
    pos = p * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return "%.1f" % round(v[lo] + (v[hi] - v[lo]) * (pos - lo), 1)


def expect(rows):
    lat = [x[6] for x in rows]
    return [str(len(rows)), str(sum(x[4] for x in rows)), str(sum(x[5] for x in rows)),
            str(sum(x[4] + x[5] for x in rows)),
            str(sum(1 for x in rows if not 200 <= x[7] <= 299)), pct(lat, 0.5), pct(lat, 0.95)]


M7 = "calls, prompt_tokens, completion_tokens, total_tokens, errors, p50_latency_ms, p95_latency_ms"
for user in ("vu1", "vu2"):
    got = ro("SELECT %s FROM usage_by_user WHERE user_id = %s" % (M7, q(user)))
    tap.eq(got, [expect([x for x in calls if x[0] == user])], "usage_by_user sums for %s" % user)
for flow in ("vflow-a", "vflow-b"):
    got = ro("SELECT %s, threads FROM usage_by_flow WHERE flow = %s" % (M7, q(flow)))
    tap.eq(got, [expect([x for x in calls if x[1] == flow]) + ["1"]],
           "usage_by_flow sums for %s" % flow)
for model, dep in (("vmodel-1", "vdep-1"), ("vmodel-2", "vdep-2")):
    got = ro("SELECT %s, retries FROM usage_by_model WHERE model = %s AND deployment = %s"
             % (M7, q(model), q(dep)))
    sel = [x for x in calls if x[2] == model]
    tap.eq(got, [expect(sel) + [str(sum(x[8] for x in sel))]], "usage_by_model sums for %s" % model)
got = ro("SELECT owner, flow, messages, %s, unlinked_calls FROM usage_by_thread "
         "WHERE thread_id = %s" % (M7, q(VT)))
tap.eq(got, [["vu1", "vflow-a", "2"] + expect(calls) + ["2"]],
       "usage_by_thread: owner, flow, messages, sums, unlinked calls")
# usage_by_day covers every call of this (private) cluster
day = ro("SELECT sum(calls), sum(total_tokens), sum(errors) FROM usage_by_day")
tot = ro("SELECT count(*), sum(total_tokens), count(*) FILTER (WHERE http_status IS NULL OR "
         "http_status NOT BETWEEN 200 AND 299) FROM llm_usage")
tap.eq(day, tot, "usage_by_day adds up to llm_usage")
tap.eq(ro("SELECT day = (now() AT TIME ZONE 'UTC')::date FROM usage_by_day"), [["t"]],
       "usage_by_day has today's UTC row")

# --- no password in anything db_probe logged
db.close()
logs = db.stderr() + err
tap.ok(pg.password("app") not in logs, "the database password never reached a log line")
tap.ok("level=error" in logs and "sqlstate=22P02" in logs,
       "failed statements were logged with their SQLSTATE", logs[-2000:])
tap.ok("not json" not in logs and "[x" not in logs, "rejected values are not logged")

check_sanitizers(tap)
tap.done()
