"""test_auth.py -- authentication end to end (issue 5, docs/reliability.md A1-A3, K1):
the real `ingen serve` (two workers) with authentication enabled through a
`.env` file exactly as the custom-workflow guide's Step 5 writes it, a
private PostgreSQL (users, threads) and the Azure OpenAI simulator (chats).

Covers: every body of the reference byte for byte, protection by default,
the guide's Step 5 curl commands run as written, forged and broken tokens
(alg none in every case, wrong or empty key, tampering, expiry, missing or
string exp, 4 segments, padding, 64 KiB, two Authorization headers), a
token issued by one worker and verified by the other, `ingen user` and
users of the database (login, Basic, passwd, disable), ownership of threads
(404 on every route), unknown user and wrong password taking the same time,
and no secret in the log."""
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, raw, status_of, clean_env, INGEN  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402
from authkit import (basic, bearer, forge, kid_of, claims, ingen_user,  # noqa: E402
                     ingen_user_tty, worker_conns, send, b64u)

t = Tap(timeout=420)

REQUIRED = b'{"detail":"Authentication required"}'
INCORRECT = b'{"detail":"Incorrect username or password"}'
FORMAT = b'{"detail":"Invalid authentication format"}'
SECRET = "an-e2e-test-secret-of-more-than-32-bytes-0123456789"
KID = kid_of(SECRET)
FLOW = "classification-agent"

pg = PgCluster(t)
sim = Sim(t, api_key="sim-key").start()
workdir = tempfile.mkdtemp(prefix="ingen-auth-")
t.at_exit(lambda: shutil.rmtree(workdir, ignore_errors=True))

# the guide's Step 5 .env, as written
with open(os.path.join(workdir, ".env"), "w") as f:
    f.write("# Enable authentication\n"
            "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE=true\n"
            "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME=admin\n"
            "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD=secure_password\n")

DB_ENV = {"INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app")}
srv = Server(t, workers=2, cwd=workdir, env=dict(DB_ENV, **{
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url,
    "INGENIOUS_MODELS__0__API_KEY": "sim-key",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__JWT_SECRET_KEY": SECRET,
    # the throttle has its own test (test_auth_throttle.py); here many
    # failures are made on purpose from one address
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__LOGIN_MAX_FAILURES": "100000",
})).start(timeout=20)
port = srv.port
ADMIN = basic("admin", "secure_password")
CHAT = {"user_prompt": "Add task: Review documentation", "conversation_flow": FLOW}


def post(path, body, headers=None):
    return request(port, "POST", path, body, headers)


def get(path, headers=None):
    return request(port, "GET", path, None, headers)


def is_401(resp, body, name):
    st, h, b = resp
    t.ok(st == 401 and b == body and h.get("www-authenticate") == "Bearer",
         name, "status %s, body %r, WWW-Authenticate %r" % (st, b, h.get("www-authenticate")))


def login(user, password):
    st, _, b = post("/api/v1/auth/login", {"username": user, "password": password})
    return st, (json.loads(b) if st == 200 else b)


def user_cmd(args, password=None):
    return ingen_user(args, password, env=clean_env(DB_ENV))


# ---- users of the database: ingen user ------------------------------------------------
r = user_cmd(["add", "bob"], "bob-password-1")
t.ok(r.returncode == 0 and "added: bob" in r.stdout, "ingen user add bob (password from stdin)",
     r.stdout + r.stderr)
r = user_cmd(["add", "carol"], "carol-password")
t.eq(r.returncode, 0, "ingen user add carol")
row = pg.sql("SELECT username, password_hash, disabled FROM users WHERE username='bob'")
t.ok(len(row) == 1 and row[0][1].startswith("$scrypt$ln=15,r=8,p=1$") and row[0][2] == "f",
     "the users row holds an scrypt hash, not the password", row)
t.ok("bob-password-1" not in json.dumps(pg.sql("SELECT * FROM users")),
     "the password itself is nowhere in the table")
r = user_cmd(["add", "bob"], "again")
t.ok(r.returncode == 1 and "already exists" in r.stderr, "adding an existing user fails (exit 1)",
     r.stderr)
r = user_cmd(["add", "dave", "secret-on-argv"])
t.ok(r.returncode == 2 and "never taken from the command line" in r.stderr,
     "a password on the command line is refused (exit 2)", r.stderr)
r = user_cmd(["add", "dave"], "")
t.ok(r.returncode == 1 and "empty" in r.stderr, "an empty password is refused", r.stderr)
r = user_cmd(["add", "bad name"], "x")
t.eq(r.returncode, 2, "an invalid user name is refused (exit 2)")
r = user_cmd(["passwd", "nobody"], "x")
t.ok(r.returncode == 1 and 'no user "nobody"' in r.stderr, "passwd of an unknown user fails",
     r.stderr)
code, shown = ingen_user_tty(["add", "terminal-user"], ["typed-secret-1", "typed-secret-1"],
                             env=clean_env(DB_ENV))
t.ok(code == 0 and "New password for terminal-user: " in shown and "Repeat it: " in shown
     and "added: terminal-user" in shown, "ingen user add on a terminal asks twice", shown)
t.ok("typed-secret-1" not in shown, "and does not echo the password")
code, shown = ingen_user_tty(["passwd", "terminal-user"], ["one-thing", "another-thing"],
                             env=clean_env(DB_ENV))
t.ok(code == 1 and "do not match" in shown, "two different answers are refused", shown)
r = user_cmd(["list"])
t.ok(r.returncode == 0 and [l.split("\t")[0] for l in r.stdout.splitlines()] == ["bob", "carol",
                                                                                 "terminal-user"]
     and all(l.endswith("\tenabled") for l in r.stdout.splitlines()),
     "ingen user list shows the users, no hash", r.stdout)
t.ok("$scrypt$" not in r.stdout, "list prints no hash")
# the example of `ingen user --help`, run as a user would copy it into a shell
r = subprocess.run([INGEN, "user", "--help"], capture_output=True, text=True, timeout=10)
example = [l.strip() for l in r.stdout.splitlines() if "| ingen user add" in l]
t.ok(r.returncode == 0 and len(example) == 1 and "%%" not in example[0],
     "ingen user --help shows the stdin example, without a doubled %", r.stdout)
if example:
    cmd = example[0].replace("ingen user add alice", "'%s' user add erin" % INGEN)
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30,
                       env=dict(clean_env(DB_ENV), PASSWORD="erin-from-the-help"))
    t.ok(r.returncode == 0 and "added: erin" in r.stdout, "the example of --help adds a user",
         r.stdout + r.stderr)

# ---- protection by default and the exact bodies -----------------------------------------
thread_body = {"thread_id": "x", "message_id": "m", "positive_feedback": True}
for method, path, body in (("POST", "/api/v1/chat", CHAT), ("POST", "/api/v1/chat/stream", CHAT),
                           ("GET", "/api/v1/conversations/abc", None),
                           ("PUT", "/api/v1/messages/m/feedback", thread_body),
                           ("GET", "/api/v1/auth/verify", None)):
    is_401(request(port, method, path, body), REQUIRED,
           "%s %s without credentials: 401 Authentication required" % (method, path))
st, _, b = get("/api/v1/health")
t.eq(st, 200, "health needs no credentials")
st, _, b = get("/api/v1/ready")
t.eq(st, 200, "ready needs no credentials")
st, _, b = get("/metrics")
t.eq(st, 200, "metrics stays open to loopback by default (metrics_require_auth off)")

st, h, b = post("/api/v1/chat", CHAT, ADMIN)
reply = json.loads(b) if st == 200 else {}
t.ok(st == 200 and reply.get("agent_response"), "Basic with the right credentials: the workflow response", b)
is_401(post("/api/v1/chat", CHAT, basic("admin", "wrong")), INCORRECT,
       "Basic with a wrong password: 401 Incorrect username or password")
is_401(post("/api/v1/chat", CHAT, basic("wrong", "wrong")), INCORRECT,
       "Basic with an unknown user: the same 401")
for v in ("Basic !!!", "Basic", "Basic YWRtaW4=", "Basic YWRtaW46c2VjdXJlX3Bhc3N3b3Jk=",
          "basic " + base64.b64encode(b"admin\0:x").decode()):
    is_401(post("/api/v1/chat", CHAT, {"Authorization": v}), FORMAT,
           "malformed Basic %r: 401 Invalid authentication format" % v[:24])
for v in ("Digest abc", "Bearer", "Bearer ", "Token abc", "", "Bearer invalid-token"):
    is_401(post("/api/v1/chat", CHAT, {"Authorization": v}), REQUIRED,
           "Authorization %r: 401 Authentication required" % v)
st, _, b = post("/api/v1/chat", CHAT, {"Authorization": "BASIC " + ADMIN["Authorization"][6:]})
t.eq(st, 200, "the Basic scheme name is case-insensitive (RFC 9110)")

# ---- login, verify, refresh ---------------------------------------------------------------
st, h, b = post("/api/v1/auth/login", {"username": "admin", "password": "secure_password"})
pair = json.loads(b) if st == 200 else {}
t.ok(st == 200 and list(pair) == ["access_token", "refresh_token", "token_type"]
     and pair["token_type"] == "bearer", "login: access_token, refresh_token, token_type bearer", b)
access, refresh = pair.get("access_token", ""), pair.get("refresh_token", "")
hdr, pl = claims(access)
t.ok(hdr == {"alg": "HS256", "typ": "JWT", "kid": KID}, "the token header carries alg HS256 and the kid", hdr)
t.ok(pl["sub"] == "admin" and pl["type"] == "access" and pl["exp"] - pl["iat"] == 1440 * 60,
     "access claims: sub, type, iat, exp 24 h later", pl)
t.eq(claims(refresh)[1]["exp"] - claims(refresh)[1]["iat"], 7 * 86400, "refresh lifetime 7 days")
st, h, b = post("/api/v1/auth/login", {"username": "admin", "password": "nope"})
t.ok(st == 401 and b == INCORRECT and "www-authenticate" not in h,
     "login with a wrong password: 401 Incorrect username or password, no WWW-Authenticate", (st, b, h))
st, h, b = post("/api/v1/auth/login", {"username": "ghost", "password": "nope"})
t.ok(st == 401 and b == INCORRECT, "login with an unknown user: the same 401")
st, _, b = post("/api/v1/auth/login", {"username": "admin"})
t.ok(st == 422 and b"Required field 'password' is missing" in b, "login without a password: 422", b)
st, _, b = post("/api/v1/auth/login", "{not json")
t.eq(st, 422, "login with broken JSON: 422")
# one classifier for every JSON route: the same bytes that are not text get the
# same answer from /chat (a protected route) and from /auth/login (public)
BAD_UTF8 = b'{"username": "\xff\xfe", "password": "x", "user_prompt": "x"}'
JSON_CT = {"Content-Type": "application/json"}
answers = [post(path, BAD_UTF8, hdrs) for path, hdrs in
           (("/api/v1/auth/login", JSON_CT), ("/api/v1/chat", dict(JSON_CT, **ADMIN)))]
shapes = []
for st, _, b in answers:
    try:
        d = json.loads(b)
        shapes.append((st, sorted(d), d.get("detail")))
    except ValueError:
        shapes.append((st, b))
t.ok(shapes[0] == shapes[1] and shapes[0][0] == 400 and shapes[0][1] == ["detail", "request_id"]
     and "invalid UTF-8" in shapes[0][2],
     "invalid UTF-8: the same 400 and body on /auth/login and /chat", shapes)

st, _, b = get("/api/v1/auth/verify", bearer(access))
t.eq(b, b'{"username":"admin","valid":true}', "verify with an access token: username and valid")
t.eq(st, 200, "verify answers 200")
is_401(get("/api/v1/auth/verify", ADMIN), REQUIRED,
       "verify with Basic credentials (no token to verify): 401 Authentication required")
is_401(get("/api/v1/auth/verify", bearer(refresh)), REQUIRED,
       "verify with a refresh token: 401")
st, _, b = post("/api/v1/chat", CHAT, bearer(access))
t.ok(st == 200 and json.loads(b).get("agent_response"), "Bearer with a valid access token: the workflow response")
is_401(post("/api/v1/chat", CHAT, bearer(refresh)), REQUIRED,
       "a refresh token used as an access token: 401 Authentication required")

time.sleep(1.1)   # new iat, so the new pair differs
st, _, b = post("/api/v1/auth/refresh", {"refresh_token": refresh})
pair2 = json.loads(b) if st == 200 else {}
t.ok(st == 200 and list(pair2) == ["access_token", "refresh_token", "token_type"]
     and pair2["access_token"] != access and pair2["refresh_token"] != refresh,
     "refresh: a new access and a new refresh token", b)
st, _, b = get("/api/v1/auth/verify", bearer(pair2.get("access_token", "")))
t.eq((st, b), (200, b'{"username":"admin","valid":true}'), "the refreshed access token works")
st, h, b = post("/api/v1/auth/refresh", {"refresh_token": access})
t.ok(st == 401 and b == b'{"detail":"Invalid token type. Expected refresh"}'
     and h.get("www-authenticate") == "Bearer", "an access token cannot refresh", (st, b))
st, h, b = post("/api/v1/auth/refresh", {"refresh_token": "garbage"})
t.eq((st, b), (401, b'{"detail":"Could not validate credentials"}'), "a garbage refresh token: 401")
st, _, b = post("/api/v1/auth/refresh", {})
t.eq(st, 422, "refresh without refresh_token: 422")

# ---- the guide's Step 5 curl commands, as written ----------------------------------------
with open(os.path.join(workdir, "test_task_manager.json"), "w") as f:
    # Step 4's file, with a flow this server has (custom flows are not built in)
    f.write('{\n    "user_prompt": "Add task: Review documentation",\n'
            '    "conversation_flow": "%s"\n}\n' % FLOW)


def shell(cmd, token=None):
    script = cmd.replace("localhost:8000", "localhost:%d" % port)
    if token is not None:
        script = 'TOKEN="%s"\n' % token + script
    r = subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True, text=True,
                       timeout=60, env=clean_env())
    return r.stdout


GUIDE_BASIC_OK = """curl -X POST http://localhost:8000/api/v1/chat \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Basic $(echo -n 'admin:secure_password' | base64)" \\
  -d @test_task_manager.json"""
GUIDE_BASIC_BAD = """curl -X POST http://localhost:8000/api/v1/chat \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Basic $(echo -n 'wrong:wrong' | base64)" \\
  -d @test_task_manager.json"""
GUIDE_LOGIN = """curl -X POST http://localhost:8000/api/v1/auth/login \\
  -H "Content-Type: application/json" \\
  -d '{"username": "admin", "password": "secure_password"}'"""
GUIDE_JWT_CHAT = """curl -X POST http://localhost:8000/api/v1/chat \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer $TOKEN" \\
  -d @test_task_manager.json"""
GUIDE_VERIFY = """curl -X GET http://localhost:8000/api/v1/auth/verify \\
  -H "Authorization: Bearer $TOKEN\""""
GUIDE_INVALID = """curl -X POST http://localhost:8000/api/v1/chat \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer invalid-token" \\
  -d @test_task_manager.json"""

out = shell(GUIDE_BASIC_OK)
try:
    full = json.loads(out)
except ValueError:
    full = {}
t.ok(sorted(full) == sorted(["thread_id", "message_id", "agent_response", "followup_questions",
                             "token_count", "max_token_count", "topic", "memory_summary",
                             "event_type"]) and full["agent_response"],
     "guide: Basic with correct credentials gives the full workflow response", out)
t.eq(shell(GUIDE_BASIC_BAD), INCORRECT.decode(), "guide: wrong credentials give the exact 401 body")
out = shell(GUIDE_LOGIN)
try:
    token = json.loads(out)["access_token"]
except (ValueError, KeyError):
    token = ""
t.ok(token.count(".") == 2, "guide: login prints the tokens", out)
out = shell(GUIDE_JWT_CHAT, token)
t.ok(out.startswith('{"thread_id":') and '"agent_response"' in out,
     "guide: the workflow with the JWT token gives the full response", out)
t.eq(shell(GUIDE_VERIFY, token), '{"username":"admin","valid":true}',
     "guide: token verification prints the exact body")
t.eq(shell(GUIDE_INVALID), REQUIRED.decode(), "guide: an invalid token gives the exact 401 body")

# ---- forged and broken tokens ------------------------------------------------------------
now = int(time.time())
GOOD = {"sub": "admin", "type": "access", "iat": now, "exp": now + 600}
HDR = {"alg": "HS256", "typ": "JWT", "kid": KID}
st, _, b = get("/api/v1/auth/verify", bearer(forge(HDR, GOOD, SECRET)))
t.eq((st, b), (200, b'{"username":"admin","valid":true}'),
     "control: a token forged with the right key verifies (the forger is right)")

bad_tokens = []
for alg in ("none", "None", "NONE", "nOnE", "NoNe"):
    h = dict(HDR, alg=alg)
    bad_tokens.append(("alg %s, empty signature" % alg, forge(h, GOOD, SECRET, sig="")))
    bad_tokens.append(("alg %s, HMAC signature" % alg, forge(h, GOOD, SECRET)))
for alg in ("HS384", "HS512", "RS256", "ES256", "hs256", ""):
    bad_tokens.append(("alg %r" % alg, forge(dict(HDR, alg=alg), GOOD, SECRET)))
bad_tokens += [
    ("no alg", forge({"typ": "JWT", "kid": KID}, GOOD, SECRET)),
    ("wrong key", forge(HDR, GOOD, "another-secret-of-more-than-32-bytes-xxxxxxxx")),
    ("empty key", forge(HDR, GOOD, b"")),
    ("empty signature", forge(HDR, GOOD, SECRET, sig="")),
    ("unknown kid", forge(dict(HDR, kid="deadbeef"), GOOD, SECRET)),
    ("no kid, another secret", forge({"alg": "HS256", "typ": "JWT"}, GOOD, b"another-secret-0123456789abcdef-0123")),
    ("empty kid", forge(dict(HDR, kid=""), GOOD, SECRET)),
    ("jku header", forge(dict(HDR, jku="http://127.0.0.1:1/k"), GOOD, SECRET)),
    ("jwk header", forge(dict(HDR, jwk={"kty": "oct", "k": b64u(SECRET)}), GOOD, SECRET)),
    ("x5u header", forge(dict(HDR, x5u="http://127.0.0.1:1/c"), GOOD, SECRET)),
    ("typ other than JWT", forge(dict(HDR, typ="at+jwt+x"), GOOD, SECRET)),
    ("expired an hour ago", forge(HDR, dict(GOOD, iat=now - 7200, exp=now - 3600), SECRET)),
    ("issued in an hour (not yet valid)", forge(HDR, dict(GOOD, iat=now + 3600, exp=now + 7200), SECRET)),
    ("nbf in an hour", forge(HDR, dict(GOOD, nbf=now + 3600), SECRET)),
    ("missing exp", forge(HDR, {"sub": "admin", "type": "access", "iat": now}, SECRET)),
    ("missing iat", forge(HDR, {"sub": "admin", "type": "access", "exp": now + 600}, SECRET)),
    ("string exp", forge(HDR, dict(GOOD, exp=str(now + 600)), SECRET)),
    ("null exp", forge(HDR, dict(GOOD, exp=None), SECRET)),
    ("refresh type", forge(HDR, dict(GOOD, type="refresh"), SECRET)),
    ("no type", forge(HDR, {"sub": "admin", "iat": now, "exp": now + 600}, SECRET)),
    ("empty sub", forge(HDR, dict(GOOD, sub=""), SECRET)),
    ("unknown user", forge(HDR, dict(GOOD, sub="mallory"), SECRET)),
    ("duplicate exp member", forge(HDR, None, SECRET, raw_payload='{"sub":"admin","type":"access","iat":%d,"exp":1,"exp":%d}' % (now, now + 600))),
    ("payload not an object", forge(HDR, None, SECRET, raw_payload='["admin"]')),
    ("header not JSON", forge(None, GOOD, SECRET, raw_header="alg=HS256")),
]
# a token minted without a kid by another issuer sharing the secret (PyJWT,
# the Python product) is checked against the current key and accepted
st, _, body = request(srv.port, "GET", "/api/v1/auth/verify", headers={
    "Authorization": "Bearer " + forge({"alg": "HS256", "typ": "JWT"}, GOOD, SECRET)})
t.eq((st, body), (200, b'{"username":"admin","valid":true}'),
     "a token without kid signed with the shared secret is accepted")
good = forge(HDR, GOOD, SECRET)
h64, p64, s64 = good.split(".")
tampered_p = b64u(json.dumps(dict(GOOD, sub="bob"), separators=(",", ":")))
tampered_h = b64u(json.dumps(dict(HDR, typ="JWT "), separators=(",", ":")))
bad_tokens += [
    ("tampered payload", h64 + "." + tampered_p + "." + s64),
    ("tampered header", tampered_h + "." + p64 + "." + s64),
    ("tampered signature", h64 + "." + p64 + "." + ("A" if s64[0] != "A" else "B") + s64[1:]),
    ("truncated signature", h64 + "." + p64 + "." + s64[:-2]),
    ("4 segments", good + "." + s64),
    ("2 segments", h64 + "." + p64),
    ("base64 with padding", h64 + "=." + p64 + "." + s64 + "="),
    ("standard base64 alphabet", good.replace("-", "+").replace("_", "/") if ("-" in good or "_" in good)
     else h64 + "." + p64 + "." + s64[:-1] + "+"),
    ("whitespace inside", h64 + ". " + p64 + "." + s64),
    ("8 KiB + 1", h64 + "." + b64u("x" * 6200) + "." + s64),
]
for name, tok in bad_tokens:
    is_401(get("/api/v1/auth/verify", bearer(tok)), REQUIRED, "token %s: 401 Authentication required" % name)
is_401(post("/api/v1/chat", CHAT, bearer(forge(dict(HDR, alg="none"), GOOD, SECRET, sig=""))), REQUIRED,
       "alg none on the chat route: 401 as well")
st, _, b = get("/api/v1/auth/verify", bearer(forge(HDR, dict(GOOD, iat=now - 7200, exp=now - 30), SECRET)))
t.eq(st, 200, "a token expired 30 s ago is within the 60 s leeway")

# 64 KiB token: refused (431 by the header limit, or 401), the server lives on
resp = raw(port, b"GET /api/v1/auth/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           b"a" * 65536 + b"\r\n\r\n", timeout=10)
t.ok(status_of(resp) in (401, 431), "a 64 KiB token is refused (%s), not hung on" % status_of(resp))
st, _, b = get("/api/v1/auth/verify", bearer(access))
t.eq(st, 200, "the server still answers after the 64 KiB token")

# two Authorization headers, even two valid ones
resp = raw(port, ("GET /api/v1/auth/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % (access, access)).encode())
t.ok(status_of(resp) == 401 and resp.endswith(REQUIRED) and b"WWW-Authenticate: Bearer" in resp,
     "two Authorization headers: 401 Authentication required", resp[:300])
resp = raw(port, ("POST /api/v1/chat HTTP/1.1\r\nHost: x\r\n%s: %s\r\nauthorization: Basic eDp5\r\n"
                  "Content-Length: 2\r\nConnection: close\r\n\r\n{}" % ("Authorization", ADMIN["Authorization"])).encode())
t.ok(status_of(resp) == 401 and resp.endswith(REQUIRED), "a right and a wrong Basic header: 401", resp[:300])

# ---- a token issued by one worker verifies in the other -----------------------------------
conns = worker_conns(srv)
pids = sorted(conns)
t.ok(len(pids) == 2, "keep-alive connections to both workers (%s)" % pids)
if len(pids) == 2:
    a, b_ = pids
    st, _, body, pid = send(srv, conns[a], "POST", "/api/v1/auth/login",
                            {"username": "admin", "password": "secure_password"})
    tok_a = json.loads(body)["access_token"] if st == 200 else ""
    t.ok(st == 200 and pid == a, "worker %d issued a token" % a)
    st, _, body, pid = send(srv, conns[b_], "GET", "/api/v1/auth/verify", headers=bearer(tok_a))
    t.ok(st == 200 and pid == b_ and body == b'{"username":"admin","valid":true}',
         "worker %d verified it" % b_, (st, pid, body))
    st, _, body, pid = send(srv, conns[b_], "POST", "/api/v1/auth/refresh",
                            {"refresh_token": json.loads(send(srv, conns[a], "POST", "/api/v1/auth/login",
                             {"username": "admin", "password": "secure_password"})[2])["refresh_token"]})
    t.ok(st == 200 and pid == b_, "and refreshed a refresh token of worker %d" % a)
    for c in conns.values():
        c.close()

# ---- users of the database ---------------------------------------------------------------
st, p = login("terminal-user", "typed-secret-1")
t.eq(st, 200, "the password typed on the terminal logs in")
st, p = login("erin", "erin-from-the-help")
t.eq(st, 200, "the password of the --help example is the one given, not a literal %s")
st, p = login("bob", "bob-password-1")
t.ok(st == 200 and claims(p["access_token"])[1]["sub"] == "bob", "login with a database user")
bob_access, bob_refresh = (p["access_token"], p["refresh_token"]) if st == 200 else ("", "")
st, _, b = get("/api/v1/auth/verify", bearer(bob_access))
t.eq(b, b'{"username":"bob","valid":true}', "verify names the database user")
st, _, b = post("/api/v1/chat", CHAT, basic("bob", "bob-password-1"))
t.eq(st, 200, "Basic with a database user")
st, h, b = post("/api/v1/chat", CHAT, basic("bob", "bob-password-1"))
t.eq(st, 200, "Basic again (the success is cached for this worker or hashed by the other)")
is_401(post("/api/v1/chat", CHAT, basic("bob", "carol-password")), INCORRECT,
       "a database user with another user's password: 401")

r = user_cmd(["passwd", "bob"], "bob-password-2")
t.ok(r.returncode == 0 and "password changed" in r.stdout, "ingen user passwd bob", r.stderr)
for i in range(3):   # both workers, whatever they cached
    is_401(post("/api/v1/chat", CHAT, basic("bob", "bob-password-1")), INCORRECT,
           "after passwd the old password is refused at once (%d)" % (i + 1))
st, _, b = post("/api/v1/chat", CHAT, basic("bob", "bob-password-2"))
t.eq(st, 200, "and the new one accepted")

r = user_cmd(["disable", "bob"])
t.ok(r.returncode == 0 and pg.value("SELECT disabled FROM users WHERE username='bob'") == "t",
     "ingen user disable bob sets users.disabled", r.stderr)
for i in range(2):
    is_401(post("/api/v1/chat", CHAT, basic("bob", "bob-password-2")), INCORRECT,
           "a disabled user's right password: 401 Incorrect username or password (%d)" % (i + 1))
st, p = login("bob", "bob-password-2")
t.eq((st, p), (401, INCORRECT), "a disabled user cannot log in")
is_401(get("/api/v1/auth/verify", bearer(bob_access)), REQUIRED,
       "a disabled user's existing access token is refused")
is_401(post("/api/v1/chat", CHAT, bearer(bob_access)), REQUIRED,
       "on the chat route too")
st, _, b = post("/api/v1/auth/refresh", {"refresh_token": bob_refresh})
t.eq((st, b), (401, b'{"detail":"Invalid refresh token"}'), "and cannot refresh")
r = user_cmd(["list"])
t.ok("bob\t" in r.stdout and r.stdout.split("bob\t")[1].split("\n")[0].endswith("disabled"),
     "ingen user list shows bob disabled", r.stdout)
r = user_cmd(["enable", "bob"])
st, _, b = post("/api/v1/chat", CHAT, basic("bob", "bob-password-2"))
t.ok(r.returncode == 0 and st == 200, "ingen user enable bob: accepted again")

# ---- ownership (docs/reliability.md A3) -----------------------------------------------------------
st, _, b = post("/api/v1/chat", CHAT, ADMIN)
mine = json.loads(b) if st == 200 else {}
tid, mid = mine.get("thread_id", "none"), mine.get("message_id", "none")
t.eq(pg.value("SELECT owner FROM threads WHERE id='%s'" % tid), "admin",
     "a thread belongs to the authenticated user who created it")
n_msgs = pg.value("SELECT count(*) FROM messages WHERE thread_id='%s'" % tid)
CAROL = basic("carol", "carol-password")
st, _, b = post("/api/v1/chat", dict(CHAT, thread_id=tid), CAROL)
t.eq((st, b), (404, b'{"detail":"Not Found"}'), "another user chatting on the thread: 404")
st, _, b = post("/api/v1/chat/stream", dict(CHAT, thread_id=tid), CAROL)
t.ok(st == 404 or (st == 200 and b"Not Found" in b and b"agent_response" not in b
                   and b"Simulated reply" not in b),
     "another user streaming on the thread gets Not Found, no reply (%d)" % st, b[:300])
st, _, b = get("/api/v1/conversations/" + tid, CAROL)
t.eq((st, b), (404, b'{"detail":"Not Found"}'), "another user reading the thread: 404")
st, _, b = request(port, "PUT", "/api/v1/messages/%s/feedback" % mid,
                   {"thread_id": tid, "message_id": mid, "user_id": "unspecified_user",
                    "positive_feedback": False}, CAROL)
t.eq((st, b), (404, b'{"detail":"Not Found"}'), "another user giving feedback: 404")
st, _, b = get("/api/v1/conversations/" + tid, bearer(pair2.get("access_token", "")))
t.ok(st == 200 and len(json.loads(b)) == int(n_msgs), "the owner reads the thread (by token too)")
t.eq(pg.value("SELECT count(*) FROM messages WHERE thread_id='%s'" % tid), n_msgs,
     "the other user's attempts wrote no message")
t.eq(pg.value("SELECT count(*) FROM messages WHERE thread_id='%s' AND positive_feedback IS NOT NULL" % tid),
     "0", "and no feedback")
st, _, b = request(port, "PUT", "/api/v1/messages/%s/feedback" % mid,
                   {"thread_id": tid, "message_id": mid, "user_id": "unspecified_user",
                    "positive_feedback": True}, ADMIN)
t.eq(st, 200, "the owner gives feedback")

# ---- timing: an unknown user costs what a wrong password costs -----------------------------
def timed(user):
    """The server's own time for a failed login (X-Processing-Time, from
    the complete request head to the response): the client's scheduling
    noise on a loaded machine stays out of it."""
    st, h, _ = post("/api/v1/auth/login", {"username": user, "password": "definitely-wrong"})
    return float(h.get("x-processing-time", "0s")[:-1]), st


# Each round times the three kinds in a random order; a kind's time is taken
# relative to the mean of its round, so slow drifts of the machine's load
# cancel out, and the median over rounds drops the spikes.
users = ["ghost-user", "admin", "carol"]
rel = {u: [] for u in users}
absolute = {u: [] for u in users}
for batch in range(4):
    for _ in range(7):
        order = list(users)
        random.shuffle(order)
        got = {}
        for u in order:
            dt, st = timed(u)
            if st == 401:
                got[u] = dt
        if len(got) == len(users):
            mean = sum(got.values()) / len(got)
            for u in users:
                rel[u].append(got[u] / mean)
                absolute[u].append(got[u])
    med = {u: statistics.median(v) for u, v in rel.items()}
    ratio = max(med.values()) / min(med.values())
    if ratio <= 1.25:
        break
med_abs = {u: statistics.median(v) for u, v in absolute.items()}
t.ok(ratio <= 1.25,
     "unknown user, wrong password of the configured user and of a database user take the "
     "same time (medians %s, relative ratio %.2f over %d rounds)"
     % ({u: "%.1f ms" % (m * 1000) for u, m in med_abs.items()}, ratio, len(rel["admin"])))
t.ok(min(med_abs.values()) > 0.02,
     "and each costs a real password hash (%.1f ms)" % (min(med_abs.values()) * 1000))

# ---- the database down: database users wait, the configured user does not ----------------
pg.stop()
st, h, b = post("/api/v1/auth/login", {"username": "carol", "password": "carol-password"})
t.ok(st == 503 and h.get("retry-after", "").isdigit() and b"carol" not in b,
     "database down: a database user's login is 503 with Retry-After", (st, h, b))
st, p = login("admin", "secure_password")
t.ok(st == 200 and "access_token" in p, "the configured user still logs in")
pg.start()

# ---- the log: failed attempts at info, no secret anywhere ---------------------------------
log = srv.log()
fails = [l for l in log.splitlines() if 'msg="authentication failed"' in l]
t.ok(any("level=info" in l and "user=ghost-user" in l and "client=127.0.0.1" in l for l in fails),
     "a failed attempt is logged at info with the user name and the client address")
leaks = [s for s in ("secure_password", "bob-password", "carol-password", SECRET, access, refresh,
                     ADMIN["Authorization"][6:], "definitely-wrong", "Authorization") if s and s in log]
t.eq(leaks, [], "no password, key, token or Authorization value in the server log")

t.done()
