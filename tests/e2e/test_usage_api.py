"""test_usage_api.py -- GET /api/v1/usage (sql/009_usage_rollup.sql): the
model calls summed by day, user, flow, model and agent equal what llm_usage
holds, before and after the rollup moves (the rollup plus the live tail, no
row counted twice or missed); usage_rollup_mark waits for an insert in
flight, so a row committed late is not skipped; bad parameters are 400s;
with authentication on a user sees only their own usage and the
administrator anyone's."""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, slack  # noqa: E402
from pgcluster import PSQL, PgCluster, pg_env  # noqa: E402
from sim import Sim  # noqa: E402
from authkit import basic, ingen_user  # noqa: E402
from ingen import clean_env  # noqa: E402

t = Tap(timeout=240)
pg = PgCluster(t)
sim = Sim(t, api_key="us-key").start()
AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
ENV = {
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_KEY": "us-key",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
}
srv = Server(t, workers=2, env=ENV).start(timeout=slack(20))


def chat(text, user):
    st, _, b = request(srv.port, "POST", "/api/v1/chat",
                       {"user_prompt": text, "conversation_flow": "classification-agent",
                        "user_id": user})
    return st


def usage(query, port=None, headers=None):
    st, _, b = request(port or srv.port, "GET", "/api/v1/usage" + query, None, headers)
    return st, (json.loads(b) if b.startswith(b"{") else b)


def truth(key_sql, where=""):
    rows = pg.sql("SELECT %s, count(*), sum(total_tokens), sum(prompt_tokens) FROM llm_usage %s "
                  "GROUP BY 1" % (key_sql, where))
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def got(body):
    return {r["key"]: (r["calls"], r["total_tokens"], r["prompt_tokens"])
            for r in body.get("rows", [])}


for i in range(6):
    chat("question %d from alice" % i, "alice")
for i in range(3):
    chat("question %d from bob" % i, "bob")

st, b = usage("?by=user&days=1")
t.ok(st == 200 and got(b) == truth("coalesce(user_id, '')"),
     "by user: the sums of llm_usage (first read, rolled up then)", b)
rolled = int(pg.value("SELECT rolled_to FROM usage_rollup_state"))
t.ok(rolled > 0 and rolled == int(pg.value("SELECT max(id) FROM llm_usage")),
     "the first read rolled every row up (rolled_to %d)" % rolled)
# more rows after the rollup: the live tail adds them, nothing is counted twice
for i in range(4):
    chat("late question %d" % i, "carol")
st, b = usage("?by=user&days=1")
t.ok(st == 200 and got(b) == truth("coalesce(user_id, '')"),
     "rows after the rollup are summed from the tail, none twice", b)
for by, key in (("flow", "coalesce(flow, '')"), ("model", "coalesce(model, '')"),
                ("agent", "coalesce(agent_name, '')"),
                ("day", "to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')")):
    st, b = usage("?by=%s" % by)
    t.ok(st == 200 and b.get("by") == by and got(b) == truth(key),
         "by %s: the sums of llm_usage" % by, b)
st, b = usage("?by=flow&user_id=alice")
t.ok(st == 200 and got(b) == truth("coalesce(flow, '')", "WHERE user_id = 'alice'")
     and b.get("user_id") == "alice", "?user_id= sums one user", b)

# a rollup while an insert is in flight waits for it: the row is not skipped
p = subprocess.Popen([PSQL, "-X", "-q", "-A", "-t", "-d", pg.url("owner")],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=pg_env())
p.stdin.write("BEGIN; INSERT INTO llm_usage (user_id, flow, model, total_tokens, http_status) "
              "VALUES ('dave', 'late-flow', 'gpt-4o', 1000, 200); SELECT 'inserted';\n")
p.stdin.flush()
t.eq(p.stdout.readline().strip(), "inserted", "a session holds an uncommitted llm_usage row")
for i in range(2):
    chat("after the open insert %d" % i, "erin")   # ids above the open one, committed
done = {}


def mark():
    r = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-d", pg.url("app"), "-c",
                        "SELECT usage_rollup_mark()"], capture_output=True, text=True,
                       env=pg_env(), timeout=60)
    done["mark"] = (time.time(), r.stdout.strip())


th = threading.Thread(target=mark)
th.start()
time.sleep(1.0)
t.ok("mark" not in done, "usage_rollup_mark waits while an insert is in flight")
t_commit = time.time()
p.stdin.write("COMMIT;\n\\q\n")
p.stdin.flush()
p.wait(10)
th.join(30)
t.ok("mark" in done and done["mark"][0] >= t_commit, "and goes on once it commits")
pg.sql("SELECT usage_rollup_apply()", role="app")
st, b = usage("?by=flow")
t.ok(st == 200 and got(b) == truth("coalesce(flow, '')") and "late-flow" in got(b),
     "the late row is in the rollup, and the sums still hold", b)
t.eq(int(pg.value("SELECT sum(calls) FROM usage_rollup")),
     int(pg.value("SELECT count(*) FROM llm_usage")), "usage_rollup counts every row once")

# bad parameters
for q, words in (("?by=week", "by must be"), ("?days=0", "days must be"),
                 ("?days=abc", "days must be"), ("?user_id=%zz", "user_id must be"),
                 ("?user_id=", "user_id must be")):
    st, b = usage(q)
    t.ok(st == 400 and words in (b.get("detail", "") if isinstance(b, dict) else ""),
         "GET /api/v1/usage%s: 400 (%s)" % (q, words), b)
srv.stop()

# ---- authentication on: a user sees their own usage, the administrator all ----
asrv = Server(t, workers=1, env=dict(ENV, **{AUTH + "ENABLE": "true",
                                            AUTH + "PASSWORD": "admin-pw"})).start(
    timeout=slack(20))
r = ingen_user(["add", "alice"], "alice-pw",
               env=clean_env({"INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app")}))
t.eq(r.returncode, 0, "a database user alice")
st, b = usage("?by=user", asrv.port)
t.eq(st, 401, "without credentials: 401")
st, b = usage("?by=user", asrv.port, basic("alice", "alice-pw"))
t.ok(st == 200 and b.get("user_id") == "alice" and set(got(b)) <= {"alice"},
     "alice sees her own usage only", b)
st, b = usage("?by=user&user_id=bob", asrv.port, basic("alice", "alice-pw"))
t.eq(st, 403, "alice may not read bob's usage")
st, b = usage("?by=user", asrv.port, basic("admin", "admin-pw"))
t.ok(st == 200 and "bob" in got(b) and "alice" in got(b), "the administrator sees every user", b)
asrv.stop()
t.done()
