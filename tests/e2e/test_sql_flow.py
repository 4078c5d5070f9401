"""test_sql_flow.py -- the sql-manipulation-agent end to end: the real `ingen serve`,
a private PostgreSQL (sql/008's agent_data.students_performance, the role
ingenious_sqlagent), and the Azure OpenAI simulator scripting the model with
tool-call rules: the model writes each statement, the flow runs it through the
guard and the role, and the model answers with what the tool returned.

Useful questions: a count, averages by group (the numbers of the 7 seed rows), a
follow-up in the same thread; the reference's tool texts ("No results found.", one
row as a dict, several as a list); a usage row per model call.  Attacks, with the
guard on and again with it switched off (sql_agent.guard = false, SIGHUP): DROP,
DELETE, UPDATE, INSERT, a ;-chain, a data-modifying CTE, reads of messages, users,
pg_authid, pg_read_file, pg_sleep, set_config, SET ROLE -- each answered with an
"SQL Error: ..." tool text, and the agent's table and the chat tables unchanged."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=slack(300))

USEFUL = [
    ("how many students", "SELECT count(*) AS students FROM students_performance"),
    ("average math score by lunch",
     "SELECT lunch, round(avg(math_score), 2) AS avg_math FROM students_performance "
     "GROUP BY lunch ORDER BY lunch"),
    ("nobody scored", "SELECT * FROM students_performance WHERE math_score > 100"),
    ("the best student", "SELECT parental_education, math_score FROM students_performance "
     "ORDER BY math_score DESC LIMIT 1"),
]
ATTACKS = [
    ("attack drop", "DROP TABLE students_performance"),
    ("attack delete", "DELETE FROM students_performance"),
    ("attack update", "UPDATE students_performance SET math_score = 0"),
    ("attack insert", "INSERT INTO students_performance VALUES ('x','y','z',1,2,3)"),
    ("attack chain", "SELECT 1; DELETE FROM students_performance"),
    ("attack cte", "WITH d AS (DELETE FROM students_performance RETURNING *) SELECT * FROM d"),
    ("attack messages", "SELECT * FROM public.messages"),
    ("attack users", "SELECT username, password_hash FROM public.users"),
    ("attack authid", "SELECT rolname, rolpassword FROM pg_catalog.pg_authid"),
    ("attack file", "SELECT pg_read_file('/etc/passwd')"),
    ("attack sleep", "SELECT pg_sleep(600)"),
    ("attack setconfig", "SELECT set_config('role', 'ingenious_app', false)"),
    ("attack setrole", "SET ROLE ingenious_app"),
    ("attack truncate", "TRUNCATE students_performance"),
    ("attack into", "SELECT * INTO agent_data.copy FROM students_performance"),
    ("attack forupdate", "SELECT * FROM students_performance FOR UPDATE"),
    ("attack usage", "SELECT * FROM public.llm_usage"),
    ("attack shadow", "SELECT usename, passwd FROM pg_shadow"),
    ("attack copy", "COPY students_performance TO PROGRAM 'touch /tmp/ingen-sql-flow-pwned'"),
    ("attack reset", "RESET SESSION AUTHORIZATION"),
    ("attack lo", "SELECT lo_import('/etc/passwd')"),
    ("attack dblink", "SELECT * FROM dblink('dbname=ingenious', 'SELECT 1') AS t(x int)"),
    ("attack cartesian", "SELECT a.x FROM generate_series(1, 1000000) a(x), "
     "generate_series(1, 1000) b(y)"),
    ("attack bigstring", "SELECT repeat('x', 100000000) AS s"),
]
RULES = [{"match": m, "tool": "execute_sql_tool", "arguments": {"query": q},
          "final": "Result: {tool_result}"} for m, q in USEFUL + ATTACKS]
# a follow-up that only makes sense with the thread's history: the model (the
# simulator) writes the query only when the system prompt carries the earlier
# answer, and asks back otherwise
RULES = [{"match": "how many of them", "system": "Result: {'students': 7}",
          "tool": "execute_sql_tool",
          "arguments": {"query": "SELECT count(*) AS standard_lunch FROM students_performance "
                                 "WHERE lunch = 'standard'"},
          "final": "Result: {tool_result}"},
         {"match": "how many of them", "content": "Which students do you mean?"}] + RULES

pg = PgCluster(t)
sim = Sim(t, api_key="sim-key", rules=RULES).start()
proj = tempfile.mkdtemp(prefix="ingen-sql-flow-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or shutil.rmtree(proj, ignore_errors=True))
srv = Server(t, workers=2, cwd=proj, env={
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_SQL_AGENT__DATABASE_URL": pg.url("sqlagent"),
    "INGENIOUS_SQL_AGENT__STATEMENT_TIMEOUT_MS": "2000",
    "INGENIOUS_MODELS__0__MODEL": "gpt-4.1-nano",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": "sim-key",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt-4.1-nano",
})
generation = [1]


def reload(lines):
    with open(os.path.join(proj, ".env"), "w") as f:
        f.write("\n".join(lines) + "\n")
    generation[0] += 1
    return srv.reload(generation[0])


def ask(prompt, thread=None, path="/api/v1/chat"):
    body = {"user_prompt": prompt, "conversation_flow": "sql-manipulation-agent"}
    if thread:
        body["thread_id"] = thread
    st, _, b = request(srv.port, "POST", path, body=json.dumps(body),
                       headers={"Content-Type": "application/json"}, timeout=slack(30))
    try:
        doc = json.loads(b) if path == "/api/v1/chat" else None
    except ValueError:
        doc = None
    return st, doc, b


def fingerprint():
    return pg.value(
        "SELECT md5(coalesce((SELECT string_agg(s::text, '|' ORDER BY s::text) "
        "FROM agent_data.students_performance s), '')) || ':' || "
        "(SELECT count(*) FROM agent_data.students_performance) || ':' || "
        "(SELECT count(*) FROM users) || ':' || "
        "(SELECT count(*) FROM pg_class WHERE relnamespace = 'agent_data'::regnamespace)")


srv.start(timeout=slack(20))

# ---- useful questions -----------------------------------------------------------
thread = "sql-thread-1"
st, doc, b = ask("how many students are there?", thread=thread)
t.eq((st, (doc or {}).get("agent_response")), (200, "Result: {'students': 7}"),
     "a count: one row as the reference's dict")
t.eq(pg.value("SELECT string_agg(agent_name, ',' ORDER BY id) FROM llm_usage "
              "WHERE thread_id = '%s'" % thread), "sql_assistant,sql_assistant",
     "two model calls (the tool call, the answer), a usage row each")
st, doc, b = ask("and the average math score by lunch?", thread=thread)
t.eq((doc or {}).get("agent_response"),
     "Result: [{'lunch': 'free/reduced', 'avg_math': 49.67}, "
     "{'lunch': 'standard', 'avg_math': 76.75}]",
     "averages by group: several rows as a list of dicts, numbers bare")
t.eq(pg.value("SELECT count(*) FROM messages WHERE thread_id = '%s'" % thread), "4",
     "the follow-up is in the same thread")
st, doc, b = ask("how many of them had the standard lunch?", thread=thread)
t.eq((doc or {}).get("agent_response"), "Result: {'standard_lunch': 4}",
     "a follow-up resolved from the thread's history (the earlier answer is in the prompt)")
st, doc, b = ask("how many of them had the standard lunch?", thread="sql-thread-fresh")
t.eq((doc or {}).get("agent_response"), "Which students do you mean?",
     "the same question in a new thread has no history to resolve it from")
st, doc, b = ask("nobody scored above 100?")
t.eq((doc or {}).get("agent_response"), "Result: No results found.",
     "no row: the reference's \"No results found.\"")
st, doc, b = ask("who is the best student?")
t.eq((doc or {}).get("agent_response"),
     "Result: {'parental_education': \"master's degree\", 'math_score': 90}",
     "a string with a quote is printed as Python does")
st, _, b = request(srv.port, "GET", "/api/v1/workflow-status/sql-manipulation-agent")
t.ok(st == 200 and json.loads(b).get("ready") is True, "workflow-status: ready", b)

# ---- many at once on the agent's own small pool (sql_agent.pool_size 2 a worker)
CONCURRENT = 32
answers = [None] * CONCURRENT


def ask_into(i):
    answers[i] = ask("how many students are there? (%d)" % i)


ths = [threading.Thread(target=ask_into, args=(i,)) for i in range(CONCURRENT)]
for th in ths:
    th.start()
for th in ths:
    th.join(slack(60))
t.eq([(a[0], (a[1] or {}).get("agent_response")) if a else None for a in answers],
     [(200, "Result: {'students': 7}")] * CONCURRENT,
     "%d questions at once on two connections a worker: each one answered" % CONCURRENT)

# the stream: the reference's status chunks
st, _, b = ask("how many students are there?", path="/api/v1/chat/stream")
frames = [json.loads(line[6:]) for line in b.decode().split("\n") if line.startswith("data: ")]
status = [f["data"]["content"] for f in frames
          if f.get("event") == "data" and f["data"]["chunk_type"] == "status"]
t.eq(status, ["Preparing database and context...", "Generating SQL response...",
              "Executing SQL query..."], "stream: the reference's three status chunks")

# ---- attacks, guard on, then off ---------------------------------------------------
before = fingerprint()
for guard in ("on", "off"):
    if guard == "off":
        t.ok(reload(["INGENIOUS_SQL_AGENT__GUARD=false"]),
             "SIGHUP: the guard switched off (test-only)")
    for prompt, sql in ATTACKS:
        started = time.time()
        st, doc, b = ask(prompt + " please")
        answer = (doc or {}).get("agent_response", "")
        if prompt == "attack cartesian" and guard == "off":
            # a read, which the role allows: stopped at the row cap, at once
            t.ok(st == 200 and (answer.startswith("Result: [{'x': 1}") or
                                answer.startswith("Result: SQL Error: ")) and
                 time.time() - started < slack(15),
                 "guard off, 10^9 rows: cut at the row cap (or refused) in seconds",
                 b[:300])
            continue
        t.ok(st == 200 and answer.startswith("Result: SQL Error: "),
             "guard %s, %s: answered with an SQL Error tool text" % (guard, prompt), b[:400])
        t.ok("root:x:0" not in answer and "SCRAM-SHA-256$" not in answer and
             pg.password("app") not in answer,
             "guard %s, %s: nothing leaked" % (guard, prompt))
        if prompt == "attack sleep":
            t.ok(time.time() - started < slack(15),
                 "guard %s: pg_sleep(600) ends at the statement timeout" % guard)
        if prompt == "attack copy":
            t.ok(not os.path.exists("/tmp/ingen-sql-flow-pwned"),
                 "guard %s: COPY TO PROGRAM ran nothing" % guard)
    t.eq(fingerprint(), before, "guard %s: the agent's table, users and the schema unchanged"
         % guard)
t.ok(srv.log_lines("statement refused"), "the guard's refusals are logged")
t.ok(srv.log_lines("guard") and reload([]), "SIGHUP: the guard on again")
st, doc, b = ask("attack drop please")
t.ok("refused" in (doc or {}).get("agent_response", ""), "the guard refuses again", b[:300])

srv.stop()
t.done()
