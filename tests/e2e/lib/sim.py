"""sim.py -- the Azure OpenAI simulator (ingen-azure-sim) for end-to-end
tests: start it on a free loopback port, wait until it is ready, talk to it,
and stop it by its pid.  Also runs tests/llm_probe, the driver of the real
LLM client.

    from sim import Sim, probe
    s = Sim(tap, api_key="k", rules=[...]).start()
    s.chat_url("gpt4o")             # base URL for a config_model: s.url
    s.stats()["keys"]["my-key"]["count"]
    s.stop()                        # also registered with tap.at_exit

Every simulator gets --max-seconds so that none outlives its test script.
"""
import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

# the build directory, the sanitizer marks, and the sanitizer options in
# os.environ (which the simulator and the probe inherit) come from the harness
from ingen import BUILDDIR, SANITIZER_MARKS, SRCDIR, sanitizer_reports  # noqa: F401

SIM = os.path.join(BUILDDIR, "ingen-azure-sim")
PROBE = os.path.join(BUILDDIR, "tests", "probe", "llm_probe")
API_VERSION = "2024-12-01-preview"


class Sim:
    """One ingen-azure-sim process in a private temporary directory."""

    def __init__(self, tap=None, api_key=None, rules=None, docs=None, args=None,
                 max_seconds=600, latency_ms=None):
        self.dir = tempfile.mkdtemp(prefix="ingen-sim-")
        self.log_path = os.path.join(self.dir, "sim.log")
        self.pidfile = os.path.join(self.dir, "sim.pid")
        self.api_key = api_key
        self.cmd = [SIM, "--host", "127.0.0.1", "--port", "0", "--pidfile", self.pidfile,
                    "--max-seconds", str(max_seconds)]
        if api_key is not None:
            self.cmd += ["--api-key", api_key]
        if latency_ms is not None:
            self.cmd += ["--latency-ms", str(latency_ms)]
        if rules is not None:
            path = os.path.join(self.dir, "rules.json")
            with open(path, "w") as f:
                json.dump(rules, f)
            self.cmd += ["--rules", path]
        if docs is not None:
            path = os.path.join(self.dir, "docs.json")
            with open(path, "w") as f:
                json.dump(docs, f)
            self.cmd += ["--docs", path]
        self.cmd += list(args or [])
        self.proc = None
        self.pid = None
        self.port = None
        self.tap = tap
        if tap is not None:
            tap.at_exit(self.stop)
        # also when a test dies of an exception before tap.done()
        atexit.register(self.stop)

    def start(self, timeout=10):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("simulator exited with %s:\n%s"
                                   % (self.proc.returncode, self.log()))
            for line in self.log().splitlines():
                if "msg=ready" in line:
                    for field in line.split():
                        if field.startswith("port="):
                            self.port = int(field[5:])
                            return self
            time.sleep(0.02)
        raise RuntimeError("simulator not ready in %ss:\n%s" % (timeout, self.log()))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def chat_path(self, deployment="gpt4o", api_version=API_VERSION):
        return "/openai/deployments/%s/chat/completions?api-version=%s" % (deployment,
                                                                          api_version)

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=15):
        """(status, headers with lower-case names, body bytes) on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def chat(self, body, deployment="gpt4o", headers=None, key=True, timeout=15):
        """POST a chat completion on the Azure path; the API key is sent unless key=False."""
        hdrs = dict(headers or {})
        if key and self.api_key is not None:
            hdrs.setdefault("api-key", self.api_key)
        return self.request("POST", self.chat_path(deployment), body, hdrs, timeout)

    def stats(self):
        st, _, body = self.request("GET", "/sim/stats")
        assert st == 200, st
        return json.loads(body)

    def reset(self):
        self.request("POST", "/sim/reset")

    def key_count(self, key):
        return self.stats()["keys"].get(key, {}).get("count", 0)

    def key_times(self, key):
        return self.stats()["keys"].get(key, {}).get("times", [])

    def stop(self, timeout=10):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                    self.proc.wait(5)
                except ProcessLookupError:
                    pass
        if self.proc is not None:
            self.logf.close()
            bad = sanitizer_reports(self.log())
            if bad and self.tap is not None:
                self.tap.ok(False, "simulator log has no sanitizer report", "\n".join(bad[:40]))
            if os.environ.get("INGEN_KEEP_TMP") is None:
                shutil.rmtree(self.dir, ignore_errors=True)
        self.proc = None


def probe(model, request, llm=None, calls=1, threads=1, pause_ms=0, env=None, timeout=60):
    """Run tests/llm_probe once; returns (parsed JSON output, stderr text).

    `model` holds config_model fields (model, deployment, api_key, base_url,
    authentication_method, ...), `llm` cfg->llm fields, `request` the
    messages, tools, stream, deadline_ms, headers ..."""
    arg = {"model": model, "request": request, "llm": llm or {}, "calls": calls,
           "threads": threads, "pause_ms": pause_ms}
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    run_env.update(env or {})
    p = subprocess.run([PROBE, json.dumps(arg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=run_env, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError("llm_probe exited %d:\n%s\n%s" % (p.returncode, out, err))
    if any(m in err for m in SANITIZER_MARKS):
        raise RuntimeError("llm_probe printed a sanitizer report:\n%s" % err[-3000:])
    return json.loads(out), err


def tokens(text):
    """The simulator's tokenizer (docs/simulator.md): a run of letters and
    digits (and bytes >= 0x80) is one token per started 6 bytes; every other
    non-space character is one token."""
    if text is None:
        return 0
    n = run = 0
    for b in text.encode("utf-8") + b"\0":
        if b != 0 and (chr(b).isalnum() and b < 0x80 or b >= 0x80):
            run += 1
            continue
        n += (run + 5) // 6
        run = 0
        if b == 0:
            break
        if b not in b" \t\n\v\f\r":
            n += 1
    return n


def prompt_tokens(messages, tools=None):
    """Prompt tokens the simulator reports for these messages (and tools)."""
    n = 3
    for m in messages:
        n += 3 + tokens(m.get("role"))
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content)
        n += tokens(content)
        if m.get("name") is not None:
            n += 1 + tokens(m["name"])
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function", {})
            n += tokens(fn.get("name")) + tokens(fn.get("arguments"))
    if tools:
        n += tokens(json.dumps(tools, separators=(",", ":"), ensure_ascii=False))
    return n
