"""test_console.py -- the web console (issue 16, worker/static/console/,
docs/console.md) in a real browser: headless Chromium (Debian's chromium)
driven over the DevTools protocol (lib/cdp.py), against the real server
with authentication on, PostgreSQL and the simulator.

A flow file (console_chat) renders its system prompt from a template of
revision console-1; the simulator answers slowly (drip) so the stream is
seen arriving, and answers as a pirate once the system prompt says so.

Checks: the page loads with its Content-Security-Policy and violates none
of it; every input has a label; logging in with the keyboard; a streamed
reply appears chunk by chunk with its agent step and tokens; the thread in
the conversations view, with feedback stored; a prompt edited and saved
in the prompts view is what the next turn's model call gets (the reply
the simulator gives to that prompt), its versions show which turn used
which, and the diff shows the change; the usage view's totals and chart
equal llm_usage's rows; the flows view lists the flow file and reloads the
server; the page never requests anything outside this server and keeps
no token in storage; every API route the console calls refuses a request
without a token (401), and a user who is not the administrator cannot
reload (403).  Screenshots are saved under tests/e2e/artifacts/ of the
build directory."""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from ingen import BUILDDIR, Server, Tap, request, slack  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402
from authkit import bearer, ingen_user  # noqa: E402
from cdp import Browser  # noqa: E402

t = Tap(timeout=slack(300))
KEY = "console-sim-key-5521"
SECRET = "console-test-jwt-secret-0123456789abcdef"
ADMIN_PW = "console_admin_pw"
FIRST_REPLY = "The red bike costs 450 dollars and ships in two days from the Sydney store."
PIRATE_REPLY = "Arr, the red bike be 450 doubloons, matey."
ART = os.path.join(BUILDDIR, "tests", "e2e", "artifacts")
os.makedirs(ART, exist_ok=True)

work = tempfile.mkdtemp(prefix="ingen-console-")
t.at_exit(lambda: os.environ.get("INGEN_KEEP_TMP") or shutil.rmtree(work, ignore_errors=True))
rev = os.path.join(work, "revs", "templates", "prompts", "console-1")
os.makedirs(rev)
FIRST_PROMPT = "You are a helpful bike shop assistant.\nAnswer: {{ request.user_prompt }}\n"
with open(os.path.join(rev, "assistant.jinja"), "w") as f:
    f.write(FIRST_PROMPT)
flows = os.path.join(work, "flows")
os.makedirs(flows)
with open(os.path.join(flows, "console_chat.flow"), "w") as f:
    f.write('name = "console_chat";\n'
            'description = "The console test\'s flow: one agent, its prompt a template";\n'
            'revision = "console-1";\n'
            'agents = ( { name = "shop_assistant"; system_template = "assistant.jinja"; } );\n'
            'steps = ( "shop_assistant" );\n'
            'reply_agent = "shop_assistant";\n')

pg = PgCluster(t)
sim = Sim(t, api_key=KEY, rules=[
    {"system": "pirate", "content": PIRATE_REPLY},
    # slow enough (~1.5 kB/s of stream) that the reply is seen arriving
    {"match": "red bike", "content": FIRST_REPLY, "fault": "drip;bps=1500"},
]).start()
srvdir = os.path.join(work, "srv")
os.makedirs(srvdir)
ENV = {
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": KEY,
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_FLOW_PATH": flows,
    "INGENIOUS_FILE_STORAGE__REVISIONS__PATH": os.path.join(work, "revs"),
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE": "true",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME": "admin",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD": ADMIN_PW,
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__JWT_SECRET_KEY": SECRET,
}
srv = Server(t, workers=1, cwd=srvdir, env=ENV).start(timeout=slack(20))
port = srv.port
BASE = "http://127.0.0.1:%d" % port

# ---- the files, their headers, the switch -----------------------------------
st, h, body = request(port, "GET", "/console/")
hl = {k.lower(): v for k, v in h.items()}
csp = hl.get("content-security-policy", "")
t.ok(st == 200 and b"console.js" in body, "GET /console/ serves the page without credentials")
t.ok("default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
     and "frame-ancestors 'none'" in csp, "a strict Content-Security-Policy: %s" % csp)
t.ok(b"<script>" not in body and b" style=" not in body and b"onclick=" not in body,
     "the page has no inline script, style or handler")
for path, kind in (("/console", "text/html"), ("/console/console.js", "text/javascript"),
                   ("/console/console.css", "text/css")):
    st, h, _ = request(port, "GET", path)
    ct = {k.lower(): v for k, v in h.items()}.get("content-type", "")
    t.ok(st == 200 and ct.startswith(kind), "GET %s: %s %s" % (path, st, ct))
st, _, _ = request(port, "GET", "/console/other.js")
t.eq(st, 404, "a file the console does not have: 404")

# ---- every console API route refuses a request without a token --------------
CALLS = [("GET", "/api/v1/workflows", None), ("GET", "/api/v1/auth/verify", None),
         ("GET", "/api/v1/conversations", None), ("GET", "/api/v1/conversations/x", None),
         ("PUT", "/api/v1/messages/m/feedback", {"thread_id": "x", "message_id": "m"}),
         ("POST", "/api/v1/chat/stream", {"user_prompt": "hi", "conversation_flow": "console_chat"}),
         ("GET", "/api/v1/revisions/list", None), ("GET", "/api/v1/prompts/list/console-1", None),
         ("GET", "/api/v1/prompts/view/console-1/assistant.jinja", None),
         ("POST", "/api/v1/prompts/update/console-1/assistant.jinja", {"content": "x"}),
         ("GET", "/api/v1/prompts/versions/console-1/assistant.jinja", None),
         ("GET", "/api/v1/prompts/usage/console-1/assistant.jinja", None),
         ("GET", "/api/v1/usage?by=day", None), ("GET", "/api/v1/admin/reload", None),
         ("POST", "/api/v1/admin/reload", {})]
refused = [(m, p, request(port, m, p, b)[0]) for m, p, b in CALLS]
t.eq([r for r in refused if r[2] != 401], [], "every console API call without a token: 401")
with open(os.path.join(rev, "assistant.jinja")) as f:
    t.eq(f.read(), FIRST_PROMPT, "the refused update wrote nothing")

# ---- the browser ------------------------------------------------------------
browser = Browser(t).start(timeout=slack(30))
t.ok(True, "chromium %s runs headless" % browser.version().get("Browser", "?"))
page = browser.page()
page.call("Network.enable")
page.call("Page.enable")
page.call("Runtime.enable")
page.call("Log.enable")
# recorded in the page before its own script runs (CDP is not subject to the CSP)
page.call("Page.addScriptToEvaluateOnNewDocument", source=(
    "window.__csp = []; document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"))
page.call("Page.navigate", url=BASE + "/console/")
t.ok(page.wait("document.readyState === 'complete' && !document.getElementById('view-login').hidden",
               slack(15)), "the console asks to log in (authentication is on)")
unlabelled = page.eval(
    "[...document.querySelectorAll('input, select, textarea')]"
    ".filter((e) => !e.labels.length && !e.getAttribute('aria-label')).map((e) => e.id)")
t.eq(unlabelled, [], "every input, select and textarea has a label")
nameless = page.eval("[...document.querySelectorAll('button')]"
                     ".filter((b) => !(b.textContent.trim() || b.getAttribute('aria-label'))).length")
t.eq(nameless, 0, "every button has a name")
page.screenshot(os.path.join(ART, "console-login.png"))

# a wrong password first: the API's error is shown, nothing else opens
page.eval("document.getElementById('login-user').focus()")
page.type("admin")
page.press("Tab")
t.eq(page.eval("document.activeElement.id"), "login-pass", "Tab goes from the user name to the password")
page.type("wrong-password")
page.press("Enter")
err = page.wait("document.getElementById('login-error').textContent", slack(10))
t.ok(err and "401" in err and "Incorrect username or password" in err,
     "a wrong password shows the API's error: %r" % err)
t.ok(page.eval("document.getElementById('nav').hidden"), "and the sections stay closed")
page.eval("document.getElementById('login-pass').value = ''; document.getElementById('login-pass').focus()")
page.type(ADMIN_PW)
page.press("Enter")
who = page.wait("!document.getElementById('nav').hidden && document.getElementById('who-name').textContent",
                slack(10))
t.ok(who and "admin" in who and "administrator" in who, "logged in with the keyboard: %r" % who)
t.ok(page.wait("document.querySelector('#chat-flow option[value=\"console_chat\"]') !== null", slack(10)),
     "the chat lists the flow file's flow")
stored = page.eval("[localStorage.length, sessionStorage.length, document.cookie]")
t.eq(stored, [0, 0, ""], "no token in localStorage, sessionStorage or a cookie")

# ---- chat: a streamed reply ---------------------------------------------------
page.eval("""(() => {
  const s = document.getElementById('chat-flow'); s.value = 'console_chat';
  s.dispatchEvent(new Event('change'));
  window.__seen = [];
  new MutationObserver(() => {
    const li = document.querySelector('#chat-log li.assistant[aria-busy]');
    if (li) window.__seen.push(li.textContent.length);
  }).observe(document.getElementById('chat-log'), {subtree: true, childList: true, characterData: true});
  document.getElementById('chat-flow').focus();
})()""")
page.press("Tab")
page.press("Tab")
t.eq(page.eval("document.activeElement.id"), "chat-prompt",
     "Tab goes from the flow to the thread, then to the message box")
page.type("How much is the red bike?")
page.press("Enter")
t.ok(page.wait("document.querySelector('#chat-log li.assistant[aria-busy]') !== null", slack(5)),
     "Enter sends: the reply is pending")
done = page.wait("document.querySelector('#chat-log li.assistant') && "
                 "!document.querySelector('#chat-log li[aria-busy]') && "
                 "document.getElementById('chat-thread-id').textContent.startsWith('thread ')", slack(40))
reply = page.eval("document.querySelector('#chat-log li.assistant:last-child').textContent")
t.ok(done and reply.endswith(FIRST_REPLY), "the streamed reply is shown whole: %r" % reply)
seen = page.eval("window.__seen")
partial = sorted(set(n for n in seen if 0 < n))
t.ok(len(partial) >= 3, "the reply appeared in pieces as it streamed (%d distinct lengths)" % len(partial))
steps = page.eval("[...document.querySelectorAll('#chat-steps li')].map((l) => l.textContent)")
t.ok(len(steps) == 1 and steps[0].startswith("shop_assistant: answered") and "tokens" in steps[0],
     "the agent step with its tokens: %r" % steps)
t.ok("Tokens this turn:" in page.eval("document.getElementById('chat-tokens').textContent"),
     "the turn's tokens")
thread = page.eval("document.getElementById('chat-thread-id').textContent.slice(7)")
t.ok(pg.value("SELECT count(*) FROM messages WHERE thread_id = '%s'" % thread) == "2",
     "the turn is stored: thread %s has its two messages" % thread)
page.screenshot(os.path.join(ART, "console-chat.png"))

# ---- conversations: the thread, its messages, feedback ---------------------
page.eval("document.querySelector('#nav button[data-view=\"conversations\"]').click()")
t.ok(page.wait("document.querySelector('#conv-threads tr[data-thread=\"%s\"]') !== null" % thread,
               slack(10)), "the thread is listed in the conversations view")
page.eval("document.querySelector('#conv-threads tr[data-thread=\"%s\"] button').click()" % thread)
msgs = page.wait("document.querySelectorAll('#conv-messages li').length === 2 && "
                 "[...document.querySelectorAll('#conv-messages li')].map((l) => l.textContent)", slack(10))
t.ok(msgs and "How much is the red bike?" in msgs[0] and FIRST_REPLY in msgs[1],
     "its messages, oldest first")
page.eval("[...document.querySelectorAll('#conv-messages li.assistant button')]"
          ".find((b) => b.textContent === 'Helpful').click()")
t.ok(page.wait("document.getElementById('status').textContent === 'Feedback saved.'", slack(10)),
     "feedback is saved")
t.eq(pg.value("SELECT positive_feedback FROM messages WHERE thread_id = '%s' AND role = 'assistant'" % thread),
     "t", "and stored in messages.positive_feedback")
page.screenshot(os.path.join(ART, "console-conversations.png"))

# ---- prompts: edit, save, the next turn uses it ----------------------------
page.eval("document.querySelector('#nav button[data-view=\"prompts\"]').click()")
t.ok(page.wait("document.getElementById('prompt-text').value === %s" % json.dumps(FIRST_PROMPT), slack(10)),
     "the prompts view opens the revision's template")
t.ok(page.wait("document.querySelectorAll('#prompt-versions tr').length === 1 && "
               "document.querySelector('#prompt-versions tr td:nth-child(3)').textContent === '1'", slack(10)),
     "one version, used by one model call")
NEW_PROMPT = "You are a pirate at a bike shop.\nAnswer: {{ request.user_prompt }}\n"
page.eval("document.getElementById('prompt-text').value = %s" % json.dumps(NEW_PROMPT))
page.eval("document.getElementById('prompt-save').click()")
t.ok(page.wait("document.getElementById('prompt-msg').textContent.startsWith('Saved')", slack(10)),
     "Save stores the edit")
with open(os.path.join(rev, "assistant.jinja")) as f:
    t.eq(f.read(), NEW_PROMPT, "the template file holds the edit")
t.ok(page.wait("document.querySelectorAll('#prompt-versions tr').length === 2", slack(10)),
     "two versions listed")

page.eval("document.querySelector('#nav button[data-view=\"chat\"]').click()")
page.eval("document.getElementById('chat-prompt').focus()")
page.type("And the red bike in blue?")
page.press("Enter")
t.ok(page.wait("document.querySelectorAll('#chat-log li.assistant').length === 2 && "
               "!document.querySelector('#chat-log li[aria-busy]')", slack(30)), "the follow-up is answered")
reply2 = page.eval("document.querySelector('#chat-log li.assistant:last-child').textContent")
t.ok(reply2.endswith(PIRATE_REPLY), "the next turn used the edited prompt: %r" % reply2)
t.eq(pg.value("SELECT count(*) FROM messages WHERE thread_id = '%s'" % thread), "4",
     "the follow-up went to the same thread")

page.eval("document.querySelector('#nav button[data-view=\"prompts\"]').click()")
page.eval("document.getElementById('prompt-file').dispatchEvent(new Event('change'))")
rows = page.wait("document.querySelectorAll('#prompt-versions tr').length === 2 && "
                 "[...document.querySelectorAll('#prompt-versions tr')].every((r) => "
                 "r.children[2].textContent === '1') && "
                 "[...document.querySelectorAll('#prompt-versions tr')].map((r) => "
                 "[r.dataset.hash, r.children[2].textContent, r.children[4].textContent])", slack(10))
hashes = pg.sql("SELECT prompt_hash FROM llm_usage ORDER BY id")
t.ok(rows and [r[1] for r in rows] == ["1", "1"] and all(r[2].strip() == thread[:8] for r in rows),
     "each version: one call, in the thread: %r" % rows)
t.eq([r[0] for r in rows or []], [h[0] for h in reversed(hashes)],
     "the versions' hashes are llm_usage's prompt_hash, newest first")
page.eval("document.getElementById('diff-go').click()")
diff = page.wait("document.getElementById('prompt-diff').textContent", slack(10))
t.ok(diff and "- You are a helpful bike shop assistant." in diff and "+ You are a pirate at a bike shop." in diff
     and "  Answer: {{ request.user_prompt }}" in diff, "the diff between the versions: %r" % diff)
page.screenshot(os.path.join(ART, "console-prompts.png"))

# ---- usage: totals and chart equal llm_usage --------------------------------
calls, tokens = pg.sql("SELECT count(*), sum(total_tokens) FROM llm_usage")[0]
page.eval("document.querySelector('#nav button[data-view=\"usage\"]').click()")
got = page.wait("document.getElementById('usage-totals').dataset.calls && "
                "[document.getElementById('usage-totals').dataset.calls,"
                " document.getElementById('usage-totals').dataset.tokens]", slack(10))
t.eq(got, [calls, tokens], "the usage totals are llm_usage's: %s calls, %s tokens" % (calls, tokens))
bars = page.eval("[...document.querySelectorAll('#usage-chart rect.bar')].map((r) => +r.dataset.value)")
t.ok(bars and sum(bars) == int(calls), "the chart's bars add up to the calls: %r" % bars)
page.eval("(() => { const s = document.getElementById('usage-by'); s.value = 'flow';"
          " document.getElementById('usage-form').requestSubmit(); })()")
keys = page.wait("document.getElementById('usage-key-h').textContent === 'flow' && "
                 "[...document.querySelectorAll('#usage-chart rect.bar')].map((r) => r.dataset.key)", slack(10))
t.eq(keys, ["console_chat"], "grouped by flow: one bar, the flow's")
page.screenshot(os.path.join(ART, "console-usage.png"))

# ---- flows: the list and the reload ----------------------------------------
page.eval("document.querySelector('#nav button[data-view=\"flows\"]').click()")
row = page.wait("[...document.querySelectorAll('#flows-rows tr')].map((r) => r.textContent)"
                ".find((x) => x.includes('console_chat'))", slack(10))
t.ok(row and "declarative" in row and "ready" in row, "the flow file is listed, declarative and ready")
t.ok(page.wait("!document.getElementById('reload-box').hidden", slack(5)),
     "the administrator sees the reload button")
page.eval("document.getElementById('reload-go').click()")
msg = page.wait("document.getElementById('reload-msg').textContent.startsWith('Reloaded') && "
                "document.getElementById('reload-msg').textContent", slack(40))
t.ok(msg and "generation 2" in msg, "the reload button reloads the server: %r" % msg)
page.screenshot(os.path.join(ART, "console-flows.png"))

# ---- the page's own requests and its CSP -----------------------------------
urls = [p["request"]["url"] for m, p in page.events if m == "Network.requestWillBeSent"]
outside = [u for u in urls if not u.startswith(BASE + "/")]
t.ok(len(urls) > 10 and not outside, "%d requests, none outside the server %r" % (len(urls), outside[:5]))
t.eq(page.eval("window.__csp"), [], "no Content-Security-Policy violation")
errors = [p.get("entry", {}).get("text") for m, p in page.events
          if m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error"
          and "401" not in p.get("entry", {}).get("text", "")]
t.eq(errors, [], "no error in the browser's log (the refused login's 401 aside)")

# after logging out, the page holds no token: its own calls are refused
page.eval("document.getElementById('logout').click()")
t.ok(page.wait("!document.getElementById('view-login').hidden", slack(5)), "log out goes back to the login")
t.eq(page.eval("fetch('/api/v1/conversations', {credentials: 'omit'}).then((r) => r.status)"), 401,
     "after logging out a call without the token is refused")
page.close()
browser.stop()

# ---- a user who is not the administrator -----------------------------------
uenv = dict(srv.env)
r = ingen_user(["add", "alice"], password="alice-password-1", env=uenv)
t.ok(r.returncode == 0, "ingen user add alice", r.stderr)
st, _, b = request(port, "POST", "/api/v1/auth/login", {"username": "alice", "password": "alice-password-1"})
tok = json.loads(b)["access_token"] if st == 200 else ""
AL = bearer(tok)
t.eq(request(port, "GET", "/api/v1/admin/reload", None, AL)[0], 403, "alice may not read the reload state")
t.eq(request(port, "POST", "/api/v1/admin/reload", {}, AL)[0], 403, "alice may not reload")
st, _, b = request(port, "GET", "/api/v1/conversations", None, AL)
t.ok(st == 200 and json.loads(b)["threads"] == [] and json.loads(b)["user_id"] == "alice",
     "alice's thread list holds only hers (none)")
t.eq(request(port, "GET", "/api/v1/conversations?user_id=admin", None, AL)[0], 403,
     "alice may not list the administrator's threads")
st, _, b = request(port, "GET", "/api/v1/prompts/usage/console-1/assistant.jinja", None, AL)
t.ok(st == 200 and all(v["calls"] == 0 for v in json.loads(b)["versions"]),
     "alice's prompt usage counts her calls only (none)")

# ---- the new routes' bad inputs: a 400 naming the parameter, nothing read
ADMIN = {"Authorization": "Bearer " + json.loads(request(port, "POST", "/api/v1/auth/login",
         {"username": "admin", "password": ADMIN_PW})[2])["access_token"]}
for path, want in (("/api/v1/conversations?limit=0", "limit must be an integer from 1 to 200"),
                   ("/api/v1/conversations?limit=201", "limit must be an integer from 1 to 200"),
                   ("/api/v1/conversations?limit=abc", "limit must be an integer from 1 to 200"),
                   ("/api/v1/conversations?user_id=", "user_id must be 1 to 256 characters"),
                   ("/api/v1/conversations?user_id=%ZZ", "user_id must be 1 to 256 characters"),
                   ("/api/v1/conversations/%s?limit=1001" % thread, "limit must be an integer from 1 to 1000")):
    st, _, b = request(port, "GET", path, None, ADMIN)
    t.ok(st == 400 and want in json.loads(b).get("detail", ""), "GET %s: 400 %r" % (path, b[:90]))
st, _, b = request(port, "GET", "/api/v1/prompts/usage/nope-9/assistant.jinja", None, ADMIN)
t.ok(st == 404 and "does not exist" in json.loads(b)["detail"], "prompt usage of an unknown revision: 404 %r" % b)
st, _, b = request(port, "GET", "/api/v1/prompts/usage/console-1/..%2Fx.md", None, ADMIN)
t.ok(st in (400, 404), "prompt usage of a path escape: %d" % st)
st, _, b = request(port, "GET", "/api/v1/conversations?user_id=admin&limit=1", None, ADMIN)
t.ok(st == 200 and [x["thread_id"] for x in json.loads(b)["threads"]] == [thread],
     "the administrator lists one user's threads with ?user_id= and ?limit=")

# ---- server.console = false ---------------------------------------------------
off = Server(t, workers=1, env={"INGENIOUS_SERVER__CONSOLE": "false"}).start(timeout=slack(20))
t.eq([request(off.port, "GET", p)[0] for p in ("/console", "/console/", "/console/console.js")],
     [404, 404, 404], "server.console = false: 404 under /console")
off.stop()
srv.stop()
t.done()
