"""authkit.py -- helpers of the authentication end-to-end tests: credentials
headers, hand-made JSON Web Tokens (to attack the server's verifier),
`ingen user`, and keep-alive connections pinned to a known worker.

    from authkit import basic, bearer, forge, kid_of, worker_conns, send
    conns = worker_conns(srv)          # {worker pid: HTTPConnection}, >= 2 pids
    st, hdrs, body, pid = send(srv, conns[pid], "GET", "/api/v1/auth/verify",
                               headers=bearer(tok))

A connection is pinned by sending a cheap request with a unique X-Request-ID
and reading which pid logged it; later requests on the same keep-alive
connection are served by the same worker.
"""
import base64
import hashlib
import hmac
import http.client
import json
import re
import subprocess
import time
import uuid

from ingen import INGEN, clean_env


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def basic(user, password):
    raw = ("%s:%s" % (user, password)).encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def bearer(token):
    return {"Authorization": "Bearer " + token}


def kid_of(secret):
    """The kid the server derives from a secret: 8 hex digits of SHA-256."""
    if isinstance(secret, str):
        secret = secret.encode()
    return hashlib.sha256(secret).hexdigest()[:8]


def forge(header, payload, key, sig=None, raw_header=None, raw_payload=None):
    """A compact JWS: header and payload as dicts (or raw JSON text), signed
    with HMAC-SHA256 under key unless sig (text of the third segment) is given."""
    h = b64u(raw_header if raw_header is not None else
             json.dumps(header, separators=(",", ":")))
    p = b64u(raw_payload if raw_payload is not None else
             json.dumps(payload, separators=(",", ":")))
    if sig is None:
        if isinstance(key, str):
            key = key.encode()
        sig = b64u(hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest())
    return h + "." + p + "." + sig


def claims(token):
    """(header, payload) of a token, decoded without verification."""
    h, p, _ = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p))


def ingen_user(args, password=None, env=None, timeout=60):
    """`ingen user ARGS`; the password (if any) goes to stdin, one line."""
    return subprocess.run([INGEN, "user"] + list(args),
                          input=(password + "\n") if password is not None else "",
                          capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env())


def pid_of_request(srv, rid, timeout=5):
    """The pid of the worker that logged request id rid (its access line)."""
    pat = re.compile(r"\bpid=(\d+)\b.*\breq=%s\b.*request completed" % re.escape(rid))
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in srv.log().splitlines():
            m = pat.search(line)
            if m:
                return int(m.group(1))
        time.sleep(0.02)
    return None


def send(srv, conn, method, path, body=None, headers=None):
    """One request on a keep-alive connection: (status, headers, body, pid)."""
    rid = "t-" + uuid.uuid4().hex
    hdrs = dict(headers or {})
    hdrs["X-Request-ID"] = rid
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data, pid_of_request(srv, rid)


def worker_conns(srv, want=2, source=None, tries=300):
    """Keep-alive connections until `want` different workers hold one:
    {pid: HTTPConnection}.  Extra connections are closed."""
    conns = {}
    opened = []
    for _ in range(tries):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10,
                                       source_address=(source, 0) if source else None)
        opened.append(c)
        # several connections at once spread better over the workers
        batch = [c]
        for _ in range(3):
            d = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10,
                                           source_address=(source, 0) if source else None)
            d.connect()
            opened.append(d)
            batch.append(d)
        c.connect()
        for d in batch:
            st, _, _, pid = send(srv, d, "GET", "/api/v1/health")
            if st == 200 and pid is not None and pid not in conns:
                conns[pid] = d
        if len(conns) >= want:
            break
    for c in opened:
        if c not in conns.values():
            c.close()
    return conns


def ingen_user_tty(args, answers, env=None, timeout=30):
    """`ingen user ARGS` on a pseudo-terminal: each answer is typed after
    the next prompt (a line ending in ': ').  Returns (exit code, everything
    the terminal showed)."""
    import os
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([INGEN, "user"] + list(args), stdin=slave, stdout=slave,
                         stderr=slave, env=env or clean_env(), start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.time() + timeout

    def read_some(wait):
        nonlocal out
        r, _, _ = select.select([master], [], [], wait)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return False
            out += chunk
            return bool(chunk)
        return True

    for a in answers:
        seen = out.count(b": ")
        while out.count(b": ") == seen and time.time() < deadline and p.poll() is None:
            read_some(0.1)
        os.write(master, a.encode() + b"\n")
    try:
        p.wait(max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    while read_some(0.2):
        pass
    os.close(master)
    return p.returncode, out.decode(errors="replace")
