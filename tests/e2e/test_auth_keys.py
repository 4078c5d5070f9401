"""test_auth_keys.py -- the JWT signing keys held by the master (issue 5,
docs/reliability.md A1, P2): the key file made on first start (0600, 32 random
bytes), two servers sharing it accepting each other's tokens, a restart
keeping it, rotation by SIGHUP with overlap (through the key file and
through jwt_secret_key_FILE), a reload with a bad key refused, startup
errors, authentication switched off, /metrics behind authentication."""
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, INGEN, clean_env, free_port  # noqa: E402
from authkit import basic, bearer, claims, kid_of  # noqa: E402

t = Tap(timeout=240)

AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
REQUIRED = b'{"detail":"Authentication required"}'
DISABLED = b'{"detail":"Authentication is disabled. JWT login not available."}'
tmp = tempfile.mkdtemp(prefix="ingen-keys-")
t.at_exit(lambda: shutil.rmtree(tmp, ignore_errors=True))
KEYFILE = os.path.join(tmp, "shared", "jwt.key")


def auth_env(password="pw", **extra):
    env = {AUTH + "ENABLE": "true", AUTH + "PASSWORD": password}
    env.update({AUTH + k.upper(): v for k, v in extra.items()})
    return env


def login(srv, password="pw"):
    st, _, b = request(srv.port, "POST", "/api/v1/auth/login",
                       {"username": "admin", "password": password})
    return json.loads(b) if st == 200 else {}


def verify(srv, token):
    st, _, b = request(srv.port, "GET", "/api/v1/auth/verify", headers=bearer(token))
    return st


def kid(token):
    return claims(token)[0].get("kid") if token else None


def reload(srv, generation):
    srv.signal(signal.SIGHUP)
    return srv.wait_log("generation %d is serving" % generation, timeout=15)


def start_fails(env, name):
    """Run `ingen serve` expecting it to refuse to start: (exit code, output)."""
    d = tempfile.mkdtemp(dir=tmp)
    e = clean_env({"INGENIOUS_WEB_CONFIGURATION__IP_ADDRESS": "127.0.0.1",
                   "INGENIOUS_WEB_CONFIGURATION__PORT": str(free_port()),
                   "INGENIOUS_SERVER__WORKERS": "1",
                   "INGENIOUS_SERVER__STATE_DIR": os.path.join(d, "state")})
    e.update(env)
    try:
        r = subprocess.run([INGEN, "serve"], cwd=d, env=e, capture_output=True, text=True,
                           timeout=20)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as exc:
        return None, "%s: still running after 20 s: %r" % (name, exc.output)


# ---- startup errors ------------------------------------------------------------------------
code, out = start_fails({AUTH + "ENABLE": "true"}, "no password")
t.eq((code, out.strip()), (2, "ingen: Web authentication is enabled but no password is set. "
                              "Set INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD."),
     "enabled with an empty password: exit 2 with the message")
code, out = start_fails(auth_env(jwt_secret_key="too-short"), "short secret")
t.ok(code == 1 and "could not load the jwt signing keys: jwt_secret_key must be at least 32 bytes" in out,
     "a secret shorter than 32 bytes: exit 1 with a clear message", out)
t.ok("too-short" not in out, "the message does not show the secret")
loose = os.path.join(tmp, "loose.key")
with open(loose, "w") as f:
    f.write(secrets.token_hex(32) + "\n")
os.chmod(loose, 0o644)
code, out = start_fails(auth_env(jwt_key_file=loose), "loose key file")
t.ok(code == 1 and loose in out and "group or others" in out,
     "a key file readable by others: exit 1 naming the file", out)
bad = os.path.join(tmp, "bad.key")
with open(bad, "w") as f:
    f.write("not a key\n")
os.chmod(bad, 0o600)
code, out = start_fails(auth_env(jwt_key_file=bad), "bad key file")
t.ok(code == 1 and bad in out, "a key file that does not parse: exit 1 naming the file", out)

# ---- the key file: made on first start, shared by two servers ------------------------------
s1 = Server(t, workers=2, env=auth_env(jwt_key_file=KEYFILE)).start(timeout=20)
st_ = os.stat(KEYFILE)
t.eq(stat.S_IMODE(st_.st_mode), 0o600, "the master created the key file with mode 0600")
lines = [l for l in open(KEYFILE).read().splitlines() if l and not l.startswith("#")]
k1, hex1 = lines[0].split(":")[:2] if lines else ("", "")
t.ok(len(lines) == 1 and len(bytes.fromhex(hex1)) == 32 and k1 == kid_of(bytes.fromhex(hex1)),
     "it holds one key of 32 random bytes with its derived kid")
t.ok(s1.wait_log("jwt signing key id %s" % k1), "the master logs the key id (never the key)")
s2 = Server(t, workers=1, env=auth_env(jwt_key_file=KEYFILE)).start(timeout=20)
p1, p2 = login(s1), login(s2)
tok1, tok2 = p1.get("access_token", ""), p2.get("access_token", "")
t.ok(kid(tok1) == kid(tok2) == k1, "both servers sign with the shared key (kid %s)" % k1)
t.eq(verify(s2, tok1), 200, "server 2 accepts a token of server 1")
t.eq(verify(s1, tok2), 200, "server 1 accepts a token of server 2")
st, _, b = request(s2.port, "POST", "/api/v1/auth/refresh", {"refresh_token": p1.get("refresh_token")})
t.eq(st, 200, "server 2 refreshes a refresh token of server 1")

s1.stop()
s1 = Server(t, workers=2, env=auth_env(jwt_key_file=KEYFILE)).start(timeout=20)
t.eq(verify(s1, tok1), 200, "after a restart the key file keeps earlier tokens valid")

# ---- rotation through the key file, by SIGHUP ----------------------------------------------
new_secret = secrets.token_bytes(32)
k2 = kid_of(new_secret)
with open(KEYFILE, "a") as f:
    f.write(new_secret.hex() + "\n")
t.ok(reload(s1, 2), "server 1 reloaded after a key was appended to the file")
p1b = login(s1)
tok1b = p1b.get("access_token", "")
t.eq(kid(tok1b), k2, "new tokens carry the new kid")
t.eq(verify(s1, tok1), 200, "tokens of the previous key still verify")
t.eq(verify(s2, tok1b), 401, "server 2 does not know the new key before its own reload")
t.ok(reload(s2, 2), "server 2 reloaded")
t.eq(verify(s2, tok1b), 200, "then it accepts tokens of the new key")
# the previous key leaves the file: the ring still carries it until its tokens expire
with open(KEYFILE, "w") as f:
    f.write("%s:%s\n" % (k2, new_secret.hex()))
os.chmod(KEYFILE, 0o600)
t.ok(reload(s1, 3), "server 1 reloaded with only the new key in the file")
t.eq(verify(s1, tok1), 200, "a token of the removed key stays valid (overlap until it expires)")
st, _, b = request(s1.port, "POST", "/api/v1/auth/refresh", {"refresh_token": p1.get("refresh_token")})
t.ok(st == 200 and kid(json.loads(b)["access_token"]) == k2,
     "an old refresh token gives tokens of the new key")
s2.stop()

# ---- rotation through jwt_secret_key_FILE; a bad reload is refused ---------------------------
secret_path = os.path.join(tmp, "secret")
secret_a = "secret-A-" + secrets.token_hex(20)
secret_b = "secret-B-" + secrets.token_hex(20)
with open(secret_path, "w") as f:
    f.write(secret_a + "\n")
s3 = Server(t, workers=2, env=auth_env(jwt_secret_key_file=secret_path)).start(timeout=20)
pa = login(s3)
ta = pa.get("access_token", "")
t.eq(kid(ta), kid_of(secret_a), "a configured secret signs, with the kid derived from it")
with open(secret_path, "w") as f:
    f.write(secret_b + "\n")
t.ok(reload(s3, 2), "reloaded with a new secret")
tb = login(s3).get("access_token", "")
t.eq(kid(tb), kid_of(secret_b), "new tokens carry the new kid")
t.eq(verify(s3, ta), 200, "the previous secret still verifies its tokens")
t.eq(verify(s3, tb), 200, "and the new one its own")
with open(secret_path, "w") as f:
    f.write("short\n")
s3.signal(signal.SIGHUP)
t.ok(s3.wait_log("could not load the jwt signing keys: jwt_secret_key must be at least 32 bytes; "
                 "keeping generation 2", timeout=10),
     "a reload with a bad secret is refused and logged")
time.sleep(0.5)
t.eq((verify(s3, ta), verify(s3, tb)), (200, 200), "the old generation keeps serving both keys")
t.eq(kid(login(s3).get("access_token", "")), kid_of(secret_b), "and keeps signing with the current key")
st, _, b = request(s3.port, "GET", "/metrics")
t.ok(b"ingenious_config_generation 2" in b, "the generation did not change")

# ---- authentication off ------------------------------------------------------------------
s4 = Server(t, workers=1).start()
for method, path, body in (("POST", "/api/v1/auth/login", {"username": "admin", "password": "x"}),
                           ("POST", "/api/v1/auth/refresh", {"refresh_token": "x"}),
                           ("GET", "/api/v1/auth/verify", None)):
    st, _, b = request(s4.port, method, path, body)
    t.eq((st, b), (400, DISABLED), "auth disabled: %s %s gives the reference's 400" % (method, path))
st, _, b = request(s4.port, "GET", "/api/v1/conversations/abc")
t.ok(st != 401, "auth disabled: no route asks for credentials (%d)" % st)
t.ok(not os.path.exists(os.path.join(s4.dir, "state", "jwt.key")),
     "auth disabled: no key file is made")

# ---- /metrics behind authentication; enable_global_middleware accepted ----------------------
s5 = Server(t, workers=1, env=auth_env(metrics_require_auth="true",
                                       enable_global_middleware="true")).start()
st, h, b = request(s5.port, "GET", "/metrics")
t.ok(st == 401 and b == REQUIRED and h.get("www-authenticate") == "Bearer",
     "metrics_require_auth: /metrics without credentials is 401")
st, _, b = request(s5.port, "GET", "/metrics", headers=basic("admin", "pw"))
t.ok(st == 200 and b"ingenious_workers" in b, "with Basic credentials it answers", b[:200])
tok5 = login(s5).get("access_token", "")
st, _, b = request(s5.port, "GET", "/metrics", headers=bearer(tok5))
t.eq(st, 200, "with a token too")
st, _, _ = request(s5.port, "GET", "/api/v1/health")
t.eq(st, 200, "health stays open (enable_global_middleware changes nothing)")
st, _, b = request(s5.port, "GET", "/api/v1/conversations/abc")
t.eq((st, b), (401, REQUIRED), "conversations need credentials as always")

# ---- no key material in any log -------------------------------------------------------------
logs = "".join(s.log() for s in (s1, s3, s4, s5))
leaks = [x for x in (hex1, new_secret.hex(), secret_a, secret_b, tok1, tok1b, ta, tb) if x and x in logs]
t.eq(leaks, [], "no secret or token in the server logs")
t.done()
