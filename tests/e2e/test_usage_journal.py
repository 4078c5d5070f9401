"""test_usage_journal.py -- every billed model call has its llm_usage row, with
a turn in one commit (sql/006_one_commit_turn.sql, worker/usage.c,
lib/ujournal.c; docs/reliability.md D2):
  - a committed turn writes its call's row in its own transaction, linked to
    the reply, and each worker keeps its journal file under the state dir;
  - a turn that fails after the call, and a turn with memory_record false,
    leave the row unlinked and no message;
  - a plugin that crashes the worker after the call (tests/plugins/crash.c):
    the row is in the dead worker's journal, and the new worker writes it
    (unlinked) and removes the file;
  - the database down at the end of a turn: the row is deferred in the
    journal and written once the database is back;
  - ingenious_record_usage skips a row it already has (a replay twice);
  - server.usage_journal_slots = 0 (no journal), a journal that cannot be made,
    and a full journal (1 slot, two calls): the rows are committed at once and
    linked by id, as before."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import SRCDIR, Server, Tap, request  # noqa: E402
from pgcluster import PgCluster, check_sanitizers  # noqa: E402
from sim import Sim  # noqa: E402

t = Tap(timeout=240)
KEY = "usage-journal-test-key"
FLOW = "crash_after_call"

# ---- the plugin ----------------------------------------------------------------------
work = tempfile.mkdtemp(prefix="ingen-ujournal-")
t.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))
inc = os.path.join(work, "include", "ingenious")
os.makedirs(inc)
shutil.copy(os.path.join(SRCDIR, "flows", "flow.h"), inc)
flows = os.path.join(work, "flows")
os.makedirs(flows)
cc = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-Wall", "-Werror",
                     "-I", os.path.join(work, "include"), "-o", os.path.join(flows, "crash.so"),
                     os.path.join(SRCDIR, "tests", "plugins", "crash.c")],
                    capture_output=True, text=True, timeout=60)
t.ok(cc.returncode == 0, "tests/plugins/crash.c builds as a plugin", cc.stderr)

pg = PgCluster(t)
sim = Sim(t, api_key=KEY, max_seconds=230, args=["--quiet"]).start()


def server_env(**over):
    env = {"INGENIOUS_MODELS__0__MODEL": "gpt-4o",
           "INGENIOUS_MODELS__0__API_TYPE": "rest",
           "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
           "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
           "INGENIOUS_MODELS__0__API_KEY": KEY,
           "INGENIOUS_MODELS__0__AUTHENTICATION_METHOD": "token",
           "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
           "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
           "INGENIOUS_SERVER__FLOW_PATH": flows}
    env.update(over)
    return env


seq = [0]


def chat(srv, prompt, memory_record=True, timeout=20, thread=True):
    """(status, body dict or None, request id, thread id)."""
    seq[0] += 1
    rid = "ujournal-%d-%d" % (os.getpid(), seq[0])
    tid = str(uuid.uuid4())
    body = {"user_prompt": prompt, "conversation_flow": FLOW, "user_id": "alice"}
    if thread:
        body["thread_id"] = tid    # (a thread of its own: its history is read first)
    if not memory_record:
        body["memory_record"] = False
    try:
        st, _, b = request(srv.port, "POST", "/api/v1/chat", body,
                           headers={"X-Request-ID": rid}, timeout=timeout)
    except (ConnectionError, OSError) as ex:
        return None, str(ex), rid, tid
    try:
        return st, json.loads(b), rid, tid
    except ValueError:
        return st, b, rid, tid


def usage(rid):
    """(agent_name, message_id or '', total_tokens, http_status) of each row of rid."""
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in pg.sql(
        "SELECT agent_name, coalesce(message_id::text, ''), total_tokens, "
        "coalesce(http_status, 0) FROM llm_usage WHERE request_id = '%s' ORDER BY id" % rid,
        role="readonly")]


def messages(tid):
    return int(pg.value("SELECT count(*) FROM messages WHERE thread_id = '%s'" % tid,
                        role="readonly"))


def wait_rows(rid, n, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        rows = usage(rid)
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    return usage(rid)


def wait_workers(srv, not_pid, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        w = [p for p in srv.workers() if p != not_pid]
        if w:
            return w
        time.sleep(0.05)
    return []


# ---- the journal and a committed turn -------------------------------------------------
srv = Server(t, workers=1, env=server_env(), expect_alert=True).start()
jdir = os.path.join(srv.dir, "state", "usage-journal")
pid0 = srv.workers()[0]
files = glob.glob(os.path.join(jdir, "usage-%d-*.uj" % pid0))
t.ok(len(files) == 1, "the worker has its journal file under <state_dir>/usage-journal",
     os.listdir(jdir) if os.path.isdir(jdir) else "no %s" % jdir)
if files:
    t.eq(os.path.getsize(files[0]), 4096 + 8192 * 2048,
         "the journal holds the default 8192 slots of 2 KiB and its header")
    t.eq(os.stat(files[0]).st_mode & 0o777, 0o600, "the journal file is 0600")

st, b, rid, tid = chat(srv, "hello")
t.ok(st == 200 and b["agent_response"].startswith("model said: "), "a committed turn answers",
     b)
rows = usage(rid)
t.ok(len(rows) == 1 and rows[0][0] == "crash_agent" and rows[0][2] > 0 and rows[0][3] == 200,
     "its call has one usage row, billed", rows)
t.ok(st == 200 and len(rows) == 1 and rows[0][1] == b["message_id"],
     "written with the turn, linked to the reply message", rows)
age = float(pg.value("SELECT extract(epoch FROM now() - created_at) FROM llm_usage "
                     "WHERE request_id = '%s'" % rid, role="readonly"))
t.ok(-5 < age < 60, "created_at is the time the call finished", age)
t.eq(messages(tid), 2, "and the turn's two messages are stored")

# ---- failed turn, memory_record false --------------------------------------------------
st, b, rid, tid = chat(srv, "fail after the call")
t.eq(st, 502, "a flow failing after its model call answers 502")
rows = usage(rid)
t.ok(len(rows) == 1 and rows[0][1] == "" and rows[0][2] > 0,
     "the failed turn's call is recorded, unlinked", rows)
t.eq(messages(tid), 0, "and the failed turn leaves no message")

st, b, rid, tid = chat(srv, "hello", memory_record=False)
t.eq(st, 200, "a turn with memory_record false answers")
rows = usage(rid)
t.ok(len(rows) == 1 and rows[0][1] == "" and rows[0][2] > 0,
     "its call is recorded, unlinked", rows)
t.eq(messages(tid), 0, "and it stores no message")

# ---- a plugin crashes the worker after the call ---------------------------------------
st, b, rid, tid = chat(srv, "crash after the call")
t.ok(st is None or st >= 500, "the crashing turn gets no answer (its worker died)", (st, b))
new = wait_workers(srv, pid0)
t.ok(len(new) == 1, "the master started a new worker", new)
rows = wait_rows(rid, 1, 20)
t.ok(len(rows) == 1 and rows[0][0] == "crash_agent" and rows[0][1] == "" and rows[0][2] > 0,
     "the dead worker's usage row is written by the new worker, unlinked", rows)
t.eq(messages(tid), 0, "the crashed turn stored no message")
t.ok(srv.wait_log("left by a stopped worker", 10), "the new worker says it wrote the rows")
deadline = time.time() + 5
while time.time() < deadline and glob.glob(os.path.join(jdir, "usage-%d-*.uj" % pid0)):
    time.sleep(0.1)
t.eq(glob.glob(os.path.join(jdir, "usage-%d-*.uj" % pid0)), [],
     "the dead worker's journal file is removed once written")
t.ok(len(glob.glob(os.path.join(jdir, "usage-%d-*.uj" % new[0]))) == 1 if new else False,
     "the new worker has its own journal")

# ---- the database goes away at the end of a turn --------------------------------------
pg.stop()
st, b, rid, tid = chat(srv, "hello while the database is down", memory_record=False,
                       thread=False)
t.eq(st, 200, "a turn that records no message still answers with the database down")
t.ok(srv.wait_log("llm usage rows deferred", 10), "its usage row is deferred in the journal")
pg.start()
rows = wait_rows(rid, 1, 40)
t.ok(len(rows) == 1 and rows[0][0] == "crash_agent" and rows[0][2] > 0,
     "and written once the database is back", rows)
t.ok(srv.wait_log("wrote 1 deferred llm usage rows", 10), "the sweeper says so")

# ---- a replay twice writes a row once --------------------------------------------------
row = json.dumps([{"request_id": "replay-twice", "user_id": "bob", "thread_id": "replay-thread",
                   "flow": "f", "agent_name": "a", "model": "gpt-4o", "deployment": "d",
                   "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
                   "latency_ms": 4, "http_status": 200, "retries": 0,
                   "created_at": "2026-12-02T10:00:00.123456Z"}])
first = pg.value("SELECT ingenious_record_usage('%s'::jsonb)" % row, role="app")
second = pg.value("SELECT ingenious_record_usage('%s'::jsonb)" % row, role="app")
t.eq((first, second), ("1", "0"), "ingenious_record_usage writes a row once, then skips it")
t.eq(pg.value("SELECT count(*) FROM llm_usage WHERE request_id = 'replay-twice'",
              role="readonly"), "1", "one row stored")
srv.stop()

# ---- no journal; a full journal ---------------------------------------------------------
off = Server(t, workers=1, env=server_env(INGENIOUS_SERVER__USAGE_JOURNAL_SLOTS="0")).start()
st, b, rid, tid = chat(off, "hello")
rows = usage(rid)
t.ok(st == 200 and len(rows) == 1 and rows[0][1] == b["message_id"],
     "usage_journal_slots = 0: the row is committed at once and linked by the turn", rows)
t.eq(glob.glob(os.path.join(off.dir, "state", "usage-journal", "usage-*.uj")), [],
     "and no journal file is made")
off.stop()

# a journal that cannot be made (state_dir under a regular file): a warning, rows at once
blocker = os.path.join(work, "not-a-folder")
open(blocker, "w").close()
nodir = Server(t, workers=1, env=server_env(
    INGENIOUS_SERVER__STATE_DIR=os.path.join(blocker, "state"))).start()
st, b, rid, tid = chat(nodir, "hello")
rows = usage(rid)
t.ok(st == 200 and len(rows) == 1 and rows[0][1] == b["message_id"],
     "no journal can be made: the turn still answers and its row is committed and linked", rows)
t.ok(nodir.wait_log("each llm call's row is committed at once", 5),
     "and the worker says why it runs without a journal")
nodir.stop()

one = Server(t, workers=1, env=server_env(INGENIOUS_SERVER__USAGE_JOURNAL_SLOTS="1")).start()
st, b, rid, tid = chat(one, "twice please")
rows = usage(rid)
t.ok(st == 200 and [r[0] for r in rows] == ["crash_agent_2", "crash_agent"] or
     st == 200 and sorted(r[0] for r in rows) == ["crash_agent", "crash_agent_2"],
     "a journal of one slot: both calls recorded", rows)
t.ok(st == 200 and len(rows) == 2 and all(r[1] == b["message_id"] for r in rows),
     "the held one written with the turn, the other committed at once, both linked", rows)
one.stop()

check_sanitizers(t)
t.done()
