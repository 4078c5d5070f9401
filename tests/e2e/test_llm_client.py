"""test_llm_client.py -- the Azure OpenAI client (lib/llm.c) through
tests/llm_probe against the simulator: every fault with the status the
client of the server would see, the number of upstream attempts and the gaps
between them (docs/reliability.md U1-U3), the auth methods and token caching,
streaming assembly, the tool-call round trip, and the usage callback."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap  # noqa: E402
from sim import Sim, probe, tokens  # noqa: E402

t = Tap(timeout=240)
KEY = "llm-client-key-4711"
CF_MSG = "The users prompt violates the content filter, please start a new conversation."
TL_MSG = "This chat has exceeded the token limit, please start a new conversation."
RULES = [
    {"match": "how many students", "tool": "execute_sql_tool",
     "arguments": {"query": "SELECT count(*) FROM students_performance"},
     "final": "There are {tool_result} students."},
]
s = Sim(t, api_key=KEY, rules=RULES, args=["--client-secret", "app-secret"]).start()
SLACK = 0.03       # seconds of timer slack allowed below a promised gap


def model(**kw):
    m = {"model": "gpt-4o", "deployment": "gpt4o", "api_key": KEY, "base_url": s.url + "/",
         "authentication_method": "token", "api_version": "2024-12-01-preview"}
    m.update(kw)
    return m


def ask(text="Hello from the client test", fault=None, key=None, stream=False, llm=None,
        deadline_ms=None, mdl=None, extra=None, **kw):
    req = {"messages": [{"role": "system", "content": "You are a test."},
                        {"role": "user", "content": text}], "stream": stream, "headers": []}
    if fault:
        req["headers"].append("x-sim-fault: " + fault)
    if key:
        req["headers"].append("x-sim-key: " + key)
    if deadline_ms:
        req["deadline_ms"] = deadline_ms
    req.update(extra or {})
    out, err = probe(mdl or model(), req, llm=llm, **kw)
    return out["results"][0], err, out


def gaps(res):
    a = res["attempt_ms"]
    return [(a[i + 1] - a[i]) / 1000.0 for i in range(len(a) - 1)]


uniq = [0]


def new_key(name):
    uniq[0] += 1
    return "%s-%d-%d" % (name, os.getpid(), uniq[0])


# ---- a plain call -------------------------------------------------------------------
r, err, _ = ask()
t.eq((r["ok"], r["status"], r["attempts"], r["finish_reason"]), (True, 200, 1, "stop"),
     "a plain call succeeds in one attempt")
t.ok(r["content"].startswith('Simulated reply to: "Hello from the client test"'),
     "the content is the simulator's reply", r["content"])
t.eq(r["usage"]["completion_tokens"], tokens(r["content"]), "usage captured from the reply")
t.eq((r["model"], r["deployment"]), ("gpt-4o-2024-08-06", "gpt4o"), "model as reported, deployment as configured")
t.ok(r["content_filter_results"]["violence"] == {"filtered": False, "severity": "safe"}
     and r["prompt_filter_results"][0]["prompt_index"] == 0, "filter results kept")
ev = r["usage_events"]
t.ok(len(ev) == 1 and ev[0]["billed"] and ev[0]["final"] and ev[0]["http_status"] == 200
     and ev[0]["total_tokens"] == r["usage"]["total_tokens"] and ev[0]["retries"] == 0
     and ev[0]["model"] == "gpt-4o" and ev[0]["deployment"] == "gpt4o",
     "one usage callback for the billed call, with model, deployment, tokens, status", ev)
r, _, _ = ask(extra={"json": True, "temperature": 0.2, "max_tokens": 50})
t.eq(sorted(json.loads(r["content"]).keys()), ["ref", "reply"], "JSON response format is sent")
r, _, _ = ask("Hello there, this reply will be cut short by max tokens", extra={"max_tokens": 4})
t.ok(r["ok"] and r["finish_reason"] == "length" and r["usage"]["completion_tokens"] <= 4,
     "max_tokens is sent", r)

# ---- OpenAI-compatible endpoints -------------------------------------------------------
r, _, _ = ask(mdl=model(api_type="openai", base_url=s.url, model="llama3", deployment=""))
t.ok(r["ok"] and r["model"] == "llama3" and r["deployment"] == "",
     "api_type openai: {base_url}/v1/chat/completions with a Bearer key", r)
r, _, _ = ask(mdl=model(api_type="openai", base_url=s.url + "/v1/", model="llama3"))
t.ok(r["ok"], "api_type openai with a base_url ending in /v1")

# ---- 429 and retry headers -----------------------------------------------------------
k = new_key("ra-ms")
r, _, _ = ask(fault="429;retry-after-ms=300", key=k)
g = gaps(r)
t.eq((r["status"], r["attempts"], s.key_count(k)), (503, 3, 3),
     "429 always: 503 after 2 retries, 3 upstream attempts")
t.ok(all(x >= 0.3 - SLACK for x in g) and all(x < 1.0 for x in g),
     "retry-after-ms: 300 is honoured (gaps %s)" % g)
t.ok(r["retry_after"] >= 1, "the 503 carries a Retry-After for the client")
sg = [b - a for a, b in zip(s.key_times(k), s.key_times(k)[1:])]
t.ok(all(x >= 0.3 - SLACK for x in sg), "the simulator saw the same gaps (%s)" % sg)
ev = r["usage_events"]
t.ok(len(ev) == 1 and not ev[0]["billed"] and ev[0]["final"] and ev[0]["http_status"] == 429
     and ev[0]["retries"] == 2, "a failed call reports one unbilled usage row with status and retries", ev)

k = new_key("ra-s")
r, _, _ = ask(fault="429;retry-after=1;times=1", key=k)
t.ok(r["ok"] and r["attempts"] == 2 and gaps(r)[0] >= 1.0 - SLACK,
     "Retry-After: 1 is honoured, then the call succeeds (gap %s)" % gaps(r))
ev = r["usage_events"]
t.ok(len(ev) == 1 and ev[0]["billed"] and ev[0]["retries"] == 1,
     "the usage row of a retried call says retries=1", ev)

k = new_key("ra-both")
r, _, _ = ask(fault="429;retry-after-ms=200;retry-after=5;times=1", key=k)
t.ok(r["ok"] and 0.2 - SLACK <= gaps(r)[0] < 1.0,
     "retry-after-ms wins over Retry-After (gap %s)" % gaps(r))

k = new_key("ra-long")
t0 = time.time()
r, _, _ = ask(fault="429;retry-after=30", key=k, deadline_ms=3000)
t.ok(r["status"] == 503 and r["attempts"] == 1 and time.time() - t0 < 2.0 and r["retry_after"] == 30,
     "a Retry-After longer than the deadline: 503 at once, Retry-After passed on", r)

k = new_key("backoff")
r, _, _ = ask(fault="429", key=k)
g = gaps(r)
t.ok(r["status"] == 503 and r["attempts"] == 3 and g[0] <= 0.2 + 0.15 and g[1] <= 0.4 + 0.15,
     "no retry header: exponential backoff with full jitter (base 200 ms; gaps %s)" % g)

k = new_key("budget0")
r, _, _ = ask(fault="429;retry-after-ms=10", key=k, llm={"max_retries": 0})
t.eq((r["status"], r["attempts"]), (503, 1), "max_retries 0: no retry")

# ---- 5xx ------------------------------------------------------------------------------
k = new_key("503x2")
r, _, _ = ask(fault="503;times=2", key=k)
t.eq((r["ok"], r["attempts"], r["attempt_status"], s.key_count(k)), (True, 3, [503, 503, 200], 3),
     "503 twice then 200: success on the third attempt")
k = new_key("500")
r, _, _ = ask(fault="500", key=k)
t.eq((r["status"], r["attempts"], r["retry_after"]), (502, 3, 0), "500 always: 502 after 2 retries")
k = new_key("503ra")
r, _, _ = ask(fault="503;retry-after=1;times=1", key=k)
t.ok(r["ok"] and gaps(r)[0] >= 1.0 - SLACK, "Retry-After on a 503 is honoured too")

# ---- never retry a 400; auth problems ---------------------------------------------------
k = new_key("400")
r, _, _ = ask(fault="400", key=k)
t.eq((r["status"], r["attempts"], s.key_count(k)), (502, 1, 1), "400: no retry, 502")
k = new_key("401")
r, err, out = ask(fault="401", key=k)
t.ok(r["status"] == 502 and r["attempts"] == 1 and "authenticat" in r["error"],
     "401 upstream: 502 naming an authentication problem", r["error"])
r, err, out = ask(mdl=model(api_key="not-the-right-key-123"))
t.ok(r["status"] == 502 and "authenticat" in r["error"] and "not-the-right-key-123" not in r["error"]
     and "not-the-right-key-123" not in err and KEY not in err, "a wrong key: 502, the key never echoed")
r, _, _ = ask(mdl=model(deployment="gpt4o", base_url=s.url + "/nowhere/"))
t.ok(r["status"] == 502 and r["attempts"] == 1 and "404" in r["error"], "404: 502, no retry")

# ---- content filter and context length ----------------------------------------------------
k = new_key("cfp")
r, _, _ = ask(fault="content_filter_prompt", key=k)
t.eq((r["status"], r["error"], r["attempts"]), (406, CF_MSG, 1),
     "content filter on the prompt: 406 with the reference's message")
t.ok(r["content_filter_results"]["violence"]["filtered"] is True,
     "the filter result is returned for storage")
t.ok(len(r["usage_events"]) == 1 and not r["usage_events"][0]["billed"]
     and r["usage_events"][0]["http_status"] == 400, "an unbilled usage row records the 400")
k = new_key("cfc")
r, _, _ = ask(fault="content_filter_completion", key=k)
t.eq((r["status"], r["error"], r["finish_reason"]), (406, CF_MSG, "content_filter"),
     "content filter on the completion: 406")
ev = r["usage_events"]
t.ok(len(ev) == 1 and ev[0]["billed"] and ev[0]["completion_tokens"] > 0 and ev[0]["final"]
     and ev[0]["http_status"] == 200, "the usage callback fires for the filtered but billed call", ev)
r, _, _ = ask(fault="content_filter_completion", stream=True)
t.ok(r["status"] == 406 and r["usage_events"][0]["billed"],
     "a streamed completion filtered at the end: 406, billed usage")
r, _, _ = ask(fault="context_length")
t.eq((r["status"], r["error"], r["attempts"]), (413, TL_MSG, 1),
     "context length exceeded: 413 with the reference's message")

# ---- timeouts, broken replies, connection errors -----------------------------------------
k = new_key("hang")
t0 = time.time()
r, _, _ = ask(fault="hang", key=k, deadline_ms=1500)
el = time.time() - t0
t.ok(r["status"] == 504 and r["attempts"] == 1 and 1.4 <= el < 3.5,
     "hang: 504 at the deadline (%.2fs)" % el, r)
t0 = time.time()
r, _, _ = ask(fault="hang", llm={"timeout_ms": 1000})
el = time.time() - t0
t.ok(r["status"] == 504 and 0.9 <= el < 3.0, "hang: 504 at the configured per-call timeout (%.2fs)" % el)
t0 = time.time()
r, _, _ = ask(fault="drip;bps=5", deadline_ms=1500)
el = time.time() - t0
t.ok(r["status"] == 504 and el < 3.5, "a byte-per-second drip: 504 within the deadline (%.2fs)" % el)
r, _, _ = ask(fault="drip;bps=20000")
t.ok(r["ok"], "a fast drip still assembles")
k = new_key("malformed")
r, _, _ = ask(fault="malformed", key=k)
t.eq((r["status"], r["attempts"]), (502, 1), "malformed JSON: 502")
t.eq(len(r["usage_events"]), 1, "a malformed reply still reports a (failed) usage row")
k = new_key("truncated")
r, _, _ = ask(fault="truncated", key=k)
t.eq((r["status"], r["attempts"], s.key_count(k)), (502, 3, 3),
     "a truncated body is a transport error: retried, then 502")
r, _, _ = ask(fault="oversized;bytes=2000000", llm={"max_response_bytes": 1000000})
t.eq((r["status"], r["attempts"]), (502, 1), "a reply over max_response_bytes: 502, no retry")
r, _, _ = ask(fault="oversized")
t.eq(r["status"], 502, "the default 8 MiB cap holds against a 9 MiB reply")
r, _, _ = ask(fault="oversized;bytes=100000")
t.ok(r["ok"] and len(r["content"]) == 100000, "a large reply under the cap is fine")
k = new_key("reset")
r, _, _ = ask(fault="reset", key=k)
t.eq((r["status"], r["attempts"]), (502, 3), "connection reset: retried, then 502")
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
dead = sock.getsockname()[1]
sock.close()
r, _, _ = ask(mdl=model(base_url="http://127.0.0.1:%d" % dead))
t.ok(r["status"] == 502 and r["attempts"] == 3 and r["http_status"] == 0,
     "connection refused: retried, then 502", r)
ev = r["usage_events"]
t.ok(len(ev) == 1 and not ev[0]["billed"] and ev[0]["http_status"] == 0,
     "a call that never reached the upstream still reports its failure")

msgs_plain = [{"role": "user", "content": "reuse"}]

# ---- streaming -----------------------------------------------------------------------------
plain, _, _ = ask("Please stream this answer to me")
r, _, _ = ask("Please stream this answer to me", stream=True)
t.ok(r["ok"] and len(r["deltas"]) > 2, "a streamed call delivers several deltas")
t.eq("".join(r["deltas"]), r["content"], "the deltas concatenate to the content")
t.eq(r["content"], plain["content"], "streamed and plain content agree")
t.ok(r["usage"] is not None and r["usage"]["total_tokens"] == plain["usage"]["total_tokens"],
     "usage arrives at the end of the stream")
t.ok(r["usage_events"][0]["billed"], "a streamed call is billed through the callback")
k = new_key("stream-retry")
r, _, _ = ask(stream=True, fault="429;retry-after-ms=100;times=1", key=k)
t.ok(r["ok"] and r["attempts"] == 2 and "".join(r["deltas"]) == r["content"],
     "a stream refused with 429 before any delta is retried")
r, _, _ = ask(stream=True, fault="truncated")
t.eq(r["status"], 502, "a truncated stream: 502")
r, _, _ = ask(stream=True, fault="malformed")
t.eq((r["status"], r["attempts"]), (502, 1), "a malformed stream frame: 502, not retried")
r, _, _ = ask(stream=True, fault="oversized;bytes=300000", llm={"max_response_bytes": 200000})
t.eq(r["status"], 502, "a stream over max_response_bytes: 502")

# ---- cancellation (llm_request.cancelled: the client of the turn went away) ----------------
k = new_key("cancel-hang")
t0 = time.time()
r, _, _ = ask(fault="hang", key=k, extra={"cancel_after_ms": 500}, llm={"timeout_ms": 20000})
el = time.time() - t0
t.ok(r["status"] == 499 and r["error"] == "the client went away" and r["attempts"] == 1,
     "a cancelled call against a hang: 499 \"the client went away\"", r)
t.ok(0.45 <= el < 2.0, "it returned within a poll interval of the cancellation, not at "
     "the 20 s timeout (%.2fs)" % el)
ev = r["usage_events"]
t.ok(len(ev) == 1 and not ev[0]["billed"] and ev[0]["final"] and ev[0]["http_status"] == 0
     and ev[0]["latency_ms"] < 2000, "the stopped attempt reports one unbilled usage row, "
     "http_status 0", ev)
t.eq(s.key_count(k), 1, "the upstream saw one attempt: a cancelled call is not retried")

k = new_key("cancel-backoff")
t0 = time.time()
r, _, _ = ask(fault="503;retry-after-ms=8000", key=k, extra={"cancel_after_ms": 500},
              llm={"timeout_ms": 20000})
el = time.time() - t0
t.ok(r["status"] == 499 and r["attempts"] == 1 and el < 2.0,
     "a cancellation during a retry's 8 s wait ends the wait: 499 (%.2fs)" % el, r)
t.eq(s.key_count(k), 1, "and no retry was made")
ev = r["usage_events"]
t.ok(len(ev) == 1 and not ev[0]["billed"] and ev[0]["http_status"] == 503,
     "its usage row carries the status of the attempt that was made", ev)

k = new_key("cancel-drip")
t0 = time.time()
r, _, _ = ask("Please stream this answer to me slowly, word by word, as it comes",
              fault="drip;bps=1000", key=k, stream=True, extra={"cancel_after_ms": 3000},
              llm={"timeout_ms": 30000})
el = time.time() - t0
# 9 KiB of frames, the first content at byte 921, at 1000 bytes/s: a few deltas are out
# at the cancellation, most of the stream is not
t.ok(r["status"] == 499 and r["attempts"] == 1 and len(r["deltas"]) >= 1,
     "a stream cancelled after its first deltas: 499, no retry (%d deltas)" % len(r["deltas"]), r)
t.ok(2.9 <= el < 4.5, "the dripping stream stopped at the cancellation (%.2fs)" % el)
ev = r["usage_events"]
t.ok(len(ev) == 1 and ev[0]["http_status"] == 200 and not ev[0]["billed"],
     "its usage row: status 200, no usage reported before the stop", ev)

r, _, _ = ask(extra={"cancel_after_ms": 600000})
t.ok(r["ok"] and r["cancel_polls"] >= 1,
     "a call whose hook never fires succeeds (the hook was polled %d times)" % r["cancel_polls"])
r, _, _ = ask(stream=True, extra={"cancel_after_ms": 600000})
t.ok(r["ok"] and "".join(r["deltas"]) == r["content"], "and so does a streamed one")

# ---- connection reuse (the curl share) ---------------------------------------------------------
# (the /sim/stats request itself is one connection more)
s.reset()
out, _ = probe(model(), {"messages": msgs_plain}, calls=5)
c = s.stats()["connections"] - 1
t.ok(all(x["ok"] for x in out["results"]) and c == 1,
     "five sequential calls reuse one connection (%d)" % c)
s.reset()
out, _ = probe(model(), {"messages": msgs_plain}, calls=3, threads=3, pause_ms=50)
c = s.stats()["connections"] - 1
t.ok(all(x["ok"] for x in out["results"]) and 1 <= c <= 3,
     "nine calls on three threads share at most three connections (%d)" % c)

# ---- tool-call round trip ---------------------------------------------------------------
TOOLS = [{"name": "execute_sql_tool", "description": "Run one SELECT",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                         "required": ["query"]}}]
q = "How many students are in the table?"
msgs = [{"role": "user", "content": q}]
out, _ = probe(model(), {"messages": msgs, "tools": TOOLS, "tool_choice": "auto"})
r = out["results"][0]
calls = r["tool_calls"]
t.ok(r["ok"] and r["finish_reason"] == "tool_calls" and r["content"] is None and len(calls) == 1
     and calls[0]["name"] == "execute_sql_tool", "offered a tool, the model calls it", r)
t.eq(json.loads(calls[0]["arguments"]), {"query": "SELECT count(*) FROM students_performance"},
     "the call carries the SQL statement for the SQL agent")
msgs2 = msgs + [{"role": "assistant", "content": None,
                 "tool_calls": [{"id": calls[0]["id"], "function": {"name": calls[0]["name"],
                                                                    "arguments": calls[0]["arguments"]}}]},
                {"role": "tool", "tool_call_id": calls[0]["id"], "content": "7"}]
out, _ = probe(model(), {"messages": msgs2, "tools": TOOLS})
r = out["results"][0]
t.eq((r["ok"], r["content"], r["finish_reason"]), (True, "There are 7 students.", "stop"),
     "the tool result sent back gives the final content")
out, _ = probe(model(), {"messages": msgs, "tools": TOOLS, "stream": True})
r = out["results"][0]
t.ok(r["ok"] and len(r["tool_calls"]) == 1 and r["tool_calls"][0]["id"] == calls[0]["id"]
     and r["tool_calls"][0]["arguments"] == calls[0]["arguments"] and r["deltas"] == [],
     "a streamed tool call assembles to the same call", r)

# ---- Entra ID, managed identity, token caching -----------------------------------------------
s.reset()
ENTRA = model(authentication_method="client_id_and_secret", api_key="", client_id="app-1",
              client_secret="app-secret", tenant_id="tenant-1")
LLM_EP = {"token_endpoint": s.url, "imds_endpoint": s.url}
out, err = probe(ENTRA, {"messages": msgs}, llm=LLM_EP, calls=3)
t.ok(all(x["ok"] for x in out["results"]), "client_id_and_secret: calls succeed with a Bearer token",
     out["results"][0])
t.eq(s.stats()["tokens_issued"]["entra"], 1, "three calls, one token request (cached)")
t.ok("app-secret" not in err and "simtok-" not in err, "neither secret nor token in the log")
s.reset()
out, _ = probe(ENTRA, {"messages": msgs}, llm=LLM_EP, calls=2, threads=4)
t.ok(all(x["ok"] for x in out["results"]) and len(out["results"]) == 8,
     "eight calls on four threads succeed")
t.eq(s.stats()["tokens_issued"]["entra"], 1, "the worker's threads share one cached token")
s.reset()
out, _ = probe(dict(ENTRA, client_secret="wrong-secret"), {"messages": msgs}, llm=LLM_EP)
r = out["results"][0]
t.ok(r["status"] == 502 and "access token" in r["error"] and "wrong-secret" not in r["error"],
     "a wrong client secret: 502 naming the token, not the secret", r["error"])
s.reset()
MSI = model(authentication_method="msi", api_key="")
out, _ = probe(MSI, {"messages": msgs}, llm=LLM_EP, calls=2)
t.ok(all(x["ok"] for x in out["results"]), "msi: calls succeed with an IMDS token")
t.eq(s.stats()["tokens_issued"], {"entra": 0, "imds": 1, "total": 1}, "managed identity token cached")
s.reset()
DEFAULT = model(authentication_method="default_credential", api_key="")
out, _ = probe(DEFAULT, {"messages": msgs}, llm=LLM_EP,
               env={"AZURE_CLIENT_ID": "app-1", "AZURE_CLIENT_SECRET": "app-secret",
                    "AZURE_TENANT_ID": "tenant-1"})
t.ok(out["results"][0]["ok"] and s.stats()["tokens_issued"]["entra"] == 1,
     "default_credential uses the environment's client secret first")
s.reset()
out, _ = probe(DEFAULT, {"messages": msgs}, llm=LLM_EP)
t.ok(out["results"][0]["ok"] and s.stats()["tokens_issued"]["imds"] == 1,
     "default_credential falls back to managed identity")
t.eq(s.stats()["auth_failures"], 0, "no call was refused for its credentials")

short = Sim(t, api_key=KEY, args=["--token-ttl", "2"]).start()
out, _ = probe(dict(MSI, base_url=short.url), {"messages": msgs},
               llm={"imds_endpoint": short.url}, calls=3, pause_ms=1200)
t.ok(all(x["ok"] for x in out["results"]), "calls across a token's refresh succeed")
t.eq(short.stats()["tokens_issued"]["imds"], 3,
     "a token is refreshed before it expires (ttl 2 s: kept 1 s)")
short.stop()

t.ok(KEY not in s.log(), "the simulator never logged the key")
t.done()
