"""ingen.py -- the end-to-end harness: TAP output, the real `ingen` binary
in a private temporary directory, and small HTTP clients.

Every process a test starts is stopped by its pid (never by name) and every
test script has a hard time limit (Tap(timeout=...)).  A server whose log
holds an alert or a sanitizer report fails the test unless the test expects
the alert.

The tests run the binaries of INGEN_BUILDDIR (set by `make check`).  When that
build has the sanitizers (configure --enable-asan/--enable-ubsan, as in
_build-san/ of check.sh), this module says so in INGEN_SANITIZER=1, gives
every process it starts the sanitizer options below, and stretches the time
limits of the tests by TIME_SCALE through slack(): the binaries are 2-3x
slower there.  What a test asserts stays the same.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SRCDIR = os.environ.get("INGEN_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILDDIR = os.environ.get("INGEN_BUILDDIR") or SRCDIR
INGEN = os.path.join(BUILDDIR, "ingen")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer")


def sanitizer_build(builddir):
    """True when BUILDDIR was configured with --enable-asan or --enable-ubsan."""
    try:
        with open(os.path.join(builddir, "Makefile")) as f:
            for line in f:
                if line.startswith("SAN_CFLAGS ="):
                    return "-fsanitize=" in line
    except OSError:
        pass
    return False


# INGEN_SANITIZER from the environment wins (1 or 0); else the build decides.
if os.environ.get("INGEN_SANITIZER") not in ("0", "1"):
    os.environ["INGEN_SANITIZER"] = "1" if sanitizer_build(BUILDDIR) else "0"
SANITIZER = os.environ["INGEN_SANITIZER"] == "1"
# How much longer a time limit of a test is: the sanitizers slow the server
# 2-3x; INGEN_TIME_SCALE overrides.
TIME_SCALE = float(os.environ.get("INGEN_TIME_SCALE") or (3.0 if SANITIZER else 1.0))

# The sanitizers' options for every process the tests start (they inherit
# os.environ).  A report goes to stderr, which the harness scans; the process
# exits with a non-zero code instead of dumping core (abort_on_error=0).
# detect_leaks=1: LeakSanitizer runs when a process exits normally (the
# master, the command line, the probes, a worker that drains and exits);
# a worker killed by a signal or leaving by _exit() is never checked, so
# its memory at death is not reported as noise.  UBSan stops at the first
# report (-fno-sanitize-recover) and prints the stack.  Options already in the
# environment come last, so they win.
SANITIZER_OPTIONS = {
    "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1:halt_on_error=1:handle_abort=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:abort_on_error=0",
    "LSAN_OPTIONS": "print_suppressions=0",
}
if SANITIZER:
    for _name, _opts in SANITIZER_OPTIONS.items():
        _mine = os.environ.get(_name)
        os.environ[_name] = _opts + (":" + _mine if _mine else "")


def sanitizer_reports(text, frames=8):
    """The sanitizer reports in a log: each marked line with the first
    `frames` lines of its stack (the "#N" lines that follow it)."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKS):
            out.append(line)
            out += [l for l in lines[i + 1:i + 1 + 3 * frames]
                    if l.lstrip().startswith("#")][:frames]
    return out


def slack(seconds):
    """A time limit of a test in this build: `seconds` times TIME_SCALE."""
    return seconds * TIME_SCALE


class Tap:
    """TAP producer with a hard deadline for the whole script."""

    def __init__(self, timeout=120):
        self.n = 0
        self.failed = 0
        self.cleanups = []
        signal.signal(signal.SIGALRM, self._timeout)
        # stopped from outside (make's Ctrl-C, a `timeout` wrapper): the
        # cleanups still stop every server and cluster the script started
        signal.signal(signal.SIGTERM, self._stopped)
        signal.signal(signal.SIGINT, self._stopped)
        signal.alarm(int(slack(timeout)))
        sys.stdout.reconfigure(line_buffering=True)
        # an uncaught exception is a failed test; the cleanups still stop
        # every process the script started
        sys.excepthook = self._exception

    def _exception(self, tp, val, tb):
        self.ok(False, "the script ran to its end",
                "".join(traceback.format_exception(tp, val, tb)))
        self.done()

    def _timeout(self, signo, frame):
        self.ok(False, "script finished within its time limit")
        self.done()

    def _stopped(self, signo, frame):
        self.ok(False, "script ran to its end (stopped by signal %d)" % signo)
        self.done()

    def ok(self, cond, name, diag=None):
        self.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name))
        if not cond:
            self.failed += 1
            if diag is not None:
                for line in str(diag).splitlines()[:40]:
                    print("#   " + line)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got  %r\nwant %r" % (got, want))

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)

    def at_exit(self, fn):
        self.cleanups.append(fn)

    def done(self):
        if OPENAPI_PROBLEMS:
            # every response of request() is checked against docs/openapi.json
            self.ok(False, "every response matches docs/openapi.json",
                    "\n".join(OPENAPI_PROBLEMS[:20]))
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:  # cleanup must not hide results
                print("# cleanup failed: %r" % (exc,))
        self.cleanups = []
        print("1..%d" % self.n)
        sys.stdout.flush()
        os._exit(1 if self.failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env(extra=None):
    """The environment for a server: nothing INGENIOUS_* leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("INGENIOUS_", "KB_", "JWT_", "NOTIFY_", "LISTEN_",
                                        "WATCHDOG_"))}
    env.update(extra or {})
    return env


class Server:
    """The real `ingen serve` in a temporary working directory."""

    def __init__(self, tap, workers=2, env=None, args=None, conf=None,
                 expect_alert=False, port=None, cwd=None):
        self.tap = tap
        self.dir = cwd or tempfile.mkdtemp(prefix="ingen-e2e-")
        self.own_dir = cwd is None
        self.port = port or free_port()
        self.log_path = os.path.join(self.dir, "server.log")
        self.pidfile = os.path.join(self.dir, "ingen.pid")
        self.expect_alert = expect_alert
        self.env = clean_env({
            "INGENIOUS_WEB_CONFIGURATION__IP_ADDRESS": "127.0.0.1",
            "INGENIOUS_WEB_CONFIGURATION__PORT": str(self.port),
            "INGENIOUS_SERVER__WORKERS": str(workers),
            "INGENIOUS_SERVER__STATE_DIR": os.path.join(self.dir, "state"),
        })
        self.env.update(env or {})
        self.conf_path = None
        if conf is not None:
            self.conf_path = os.path.join(self.dir, "ingenious.conf")
            with open(self.conf_path, "w") as f:
                f.write(conf)
        self.args = list(args or [])
        self.proc = None
        tap.at_exit(self.stop)

    def start(self, wait=True, timeout=10):
        cmd = [INGEN, "serve", "--pidfile", self.pidfile] + self.args
        if self.conf_path:
            cmd += ["--config", self.conf_path]
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=self.env,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     pass_fds=getattr(self, "pass_fds", ()))
        self.pid = self.proc.pid
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if "serving on" in self.log():
                return
            time.sleep(0.02)
        raise RuntimeError("server not ready in %ss:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self, needle):
        return [l for l in self.log().splitlines() if needle in l]

    def wait_log(self, needle, timeout=10, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.log_lines(needle)) >= count:
                return True
            time.sleep(0.02)
        return False

    def signal(self, signo):
        os.kill(self.pid, signo)

    def wait_exit(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def workers(self):
        """pids of live workers, from /proc (children of the master, but not
        the knowledge-base indexer it runs at start and on each SIGHUP).
        The indexer names itself (ingen-kbindex) right after its fork: a
        child younger than 0.2 s may not have yet, so then the children are
        read once more, 50 ms later."""
        hz = os.sysconf("SC_CLK_TCK")
        out = []
        for attempt in (0, 1):
            try:
                with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                    pids = [int(p) for p in f.read().split()]
                with open("/proc/uptime") as f:
                    now = float(f.read().split()[0]) * hz
            except (FileNotFoundError, ProcessLookupError):
                return []
            out, fresh = [], False
            for p in pids:
                try:
                    with open("/proc/%d/comm" % p) as f:
                        comm = f.read().strip()
                    with open("/proc/%d/stat" % p) as f:
                        started = float(f.read().rsplit(")", 1)[1].split()[19])
                except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                    continue
                if comm == "ingen-kbindex":
                    continue
                fresh = fresh or now - started < 0.2 * hz
                out.append(p)
            if not fresh or attempt == 1:
                break
            time.sleep(0.05)
        return out

    def reload(self, generation, timeout=20):
        """SIGHUP, then wait until configuration generation `generation` serves
        with none of the old workers left; True when it did within timeout."""
        old = set(self.workers())
        self.signal(signal.SIGHUP)
        deadline = time.time() + slack(timeout)
        while time.time() < deadline:
            try:
                if self.metrics().get("ingenious_config_generation") == generation and \
                        not (old & set(self.workers())):
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def metrics(self):
        st, _, body = request(self.port, "GET", "/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, val = line.rpartition(" ")
            out[name] = float(val)
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                    self.proc.wait(5)
                except ProcessLookupError:
                    pass
        if self.proc is not None:
            # workers die with the master; make sure no orphan survives
            time.sleep(0.1)
        self.check_log()
        if self.own_dir and os.environ.get("INGEN_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.proc = None

    def check_log(self):
        text = self.log()
        bad = sanitizer_reports(text)
        if not self.expect_alert:
            bad += [l for l in text.splitlines() if "level=alert" in l or '"level":"alert"' in l]
        if bad:
            self.tap.ok(False, "server log has no alert or sanitizer report", "\n".join(bad[:40]))


# The responses of request() that do not match docs/openapi.json (a status
# not documented for the route, a body not of its schema), reported as one
# failing line by Tap.done().  Routes and methods the document does not have
# (deliberate probes, the simulator's routes) are not checked; a test that
# sends what the document cannot describe passes check_openapi=False.
# INGEN_OPENAPI_CHECK=0 in the environment switches the check off.
OPENAPI_PROBLEMS = []
_OPENAPI = []


def _openapi_check(method, path, status, headers, data):
    if os.environ.get("INGEN_OPENAPI_CHECK", "1") != "1":
        return
    if not _OPENAPI:
        from oaschema import OpenAPI  # noqa: E402 -- imports this module
        _OPENAPI.append(OpenAPI())
    api = _OPENAPI[0]
    _, op = api.operation(method, path)
    if op is None:
        return
    OPENAPI_PROBLEMS.extend(api.check(method, path, status, data, headers.get("content-type")))


def request(port, method, path, body=None, headers=None, timeout=10, check_openapi=True):
    """One request on a fresh connection: (status, headers dict, body bytes).
    The response is checked against docs/openapi.json (OPENAPI_PROBLEMS)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = dict(headers or {})
            headers.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if check_openapi:
            _openapi_check(method, path, r.status, hdrs, data)
        return r.status, hdrs, data
    finally:
        conn.close()


def raw(port, data, timeout=5, read_until_close=True, shut=False):
    """Send raw bytes, return everything read until close or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
            if not read_until_close:
                break
        return b"".join(chunks)
    finally:
        s.close()


def status_of(resp):
    """Status code of the first response in raw bytes, or None."""
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


class Load:
    """Closed-loop load from threads: each thread sends requests over
    keep-alive connections (reconnecting when the server closes one after a
    Connection: close) and records every outcome."""

    def __init__(self, port, threads=8, path="/api/v1/health", method="GET", body=None,
                 headers=None):
        self.port, self.path, self.method = port, path, method
        self.body, self.headers = body, headers or {}
        self.ok = 0
        self.failures = []
        self.statuses = {}
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        conn = None
        while not self.stop_flag.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request(self.method, self.path, body=self.body, headers=self.headers)
                r = conn.getresponse()
                r.read()
                with self.lock:
                    self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failures.append("status %d" % r.status)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as exc:
                with self.lock:
                    self.failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(15)
        return self
