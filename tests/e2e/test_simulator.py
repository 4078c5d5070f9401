"""test_simulator.py -- the Azure OpenAI simulator on its own (raw HTTP):
reply shape of real Azure, determinism, usage counts, the OpenAI path, keys,
tool rules, JSON mode, max_tokens, streaming framing, every fault, the token
endpoints, Azure AI Search, the counters, and a clean stop on SIGTERM."""
import http.client
import json
import os
import signal
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap  # noqa: E402
from sim import Sim, tokens, prompt_tokens  # noqa: E402

t = Tap(timeout=170)
KEY = "sim-test-key-0123"

RULES = [
    {"match": "how many students", "tool": "execute_sql_tool",
     "arguments": {"query": "SELECT count(*) FROM students_performance"},
     "final": "The query returned: {tool_result}"},
    {"regex": "^weather in [a-z]+$", "tool": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
    {"system": "You classify", "content": "Category: payload_type_1 for {user}"},
    {"match": "please fail", "fault": "503;times=1"},
    {"deployment": "special", "content": "special deployment answer"},
]
DOCS = [
    {"id": "1", "title": "Workplace safety basics", "category": "safety",
     "content": "Wear protective equipment and report hazards."},
    {"id": "2", "title": "First aid", "category": "health",
     "content": "Clean the cut, apply pressure, cover with a bandage. Safety first."},
    {"id": "3", "title": "Evacuation", "category": "safety",
     "content": "Leave by the nearest exit when the alarm sounds."},
]

s = Sim(t, api_key=KEY, rules=RULES, docs=DOCS,
        args=["--client-secret", "s3cret", "--context-limit", "2000"]).start()
t.ok(s.port > 0, "the simulator prints a ready line with its port")
st, _, body = s.request("GET", "/sim/health")
t.eq(st, 200, "/sim/health answers 200")


def user(text, system=None):
    msgs = [] if system is None else [{"role": "system", "content": system}]
    return {"messages": msgs + [{"role": "user", "content": text}]}


# ---- reply shape, determinism, usage --------------------------------------
req = user("Hello there, how are you today?", system="You are helpful.")
st, hdr, body = s.chat(req)
t.eq(st, 200, "a chat completion answers 200")
t.eq(hdr.get("content-type"), "application/json", "as JSON")
r = json.loads(body)
t.eq(sorted(r.keys()), sorted(["choices", "created", "id", "model", "object",
                               "prompt_filter_results", "system_fingerprint", "usage"]),
     "the reply has the keys of a real Azure reply")
ch = r["choices"][0]
t.eq(sorted(ch.keys()), sorted(["content_filter_results", "finish_reason", "index", "logprobs",
                                "message"]), "a choice has the keys of a real Azure choice")
t.eq((r["object"], ch["finish_reason"], ch["message"]["role"]),
     ("chat.completion", "stop", "assistant"), "object, finish_reason, role")
t.eq(sorted(ch["content_filter_results"].keys()), ["hate", "self_harm", "sexual", "violence"],
     "content_filter_results has the four categories")
t.ok(all(v == {"filtered": False, "severity": "safe"}
         for v in ch["content_filter_results"].values()), "all categories safe")
pf = r["prompt_filter_results"][0]
t.eq((pf["prompt_index"], pf["content_filter_results"]["jailbreak"]),
     (0, {"filtered": False, "detected": False}), "prompt_filter_results like Azure's")
content = ch["message"]["content"]
t.ok(content.startswith('Simulated reply to: "Hello there, how are you today?" (ref '),
     "the reply echoes the user message", content)
st2, _, body2 = s.chat(req)
r2 = json.loads(body2)
t.eq((r2["choices"][0]["message"]["content"], r2["id"]), (content, r["id"]),
     "the same request gives the same reply and id")
_, _, body3 = s.chat(user("Something else entirely"))
t.ok(json.loads(body3)["choices"][0]["message"]["content"] != content,
     "a different message gives a different reply")
u = r["usage"]
t.eq(u["prompt_tokens"], prompt_tokens(req["messages"]), "prompt tokens by the documented tokenizer")
t.eq(u["completion_tokens"], tokens(content), "completion tokens by the documented tokenizer")
t.eq(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"], "total = prompt + completion")
t.eq((tokens("hello"), tokens("internationalization"), tokens("a, b!"), tokens("")),
     (1, 4, 4, 0), "the tokenizer counts words by 6 bytes and punctuation by 1")
long_prefix = "x" * 200
_, _, body = s.chat(user(long_prefix))
t.ok(('"%s"' % ("x" * 80)) in json.loads(body)["choices"][0]["message"]["content"],
     "only the first 80 bytes of a long message are echoed")

# ---- the OpenAI-compatible path -----------------------------------------------
st, _, body = s.request("POST", "/v1/chat/completions",
                        dict(user("hi"), model="llama3"), {"Authorization": "Bearer " + KEY})
r = json.loads(body) if st == 200 else {}
t.eq(st, 200, "the OpenAI path accepts the key as a Bearer token")
t.ok(r.get("model") == "llama3" and "prompt_filter_results" not in r
     and "content_filter_results" not in r["choices"][0], "OpenAI shape: no filter results, model echoed")

# ---- keys and bad requests ------------------------------------------------------
st, _, body = s.chat(user("hi"), key=False)
err = json.loads(body).get("error", {})
t.ok(st == 401 and err.get("code") == "401" and err["message"].startswith("Access denied due to invalid subscription key"),
     "no api-key: 401 with Azure's body", body)
st, _, body = s.chat(user("hi"), headers={"api-key": "zzz-not-the-key"})
t.eq(st, 401, "a wrong api-key: 401")
t.ok(KEY.encode() not in body and b"zzz-not-the-key" not in body, "the 401 body echoes no key")
st, _, body = s.chat(user("hi"), key=False, headers={"Authorization": "Bearer " + KEY})
t.ok(st == 401 and b"Access token is missing, invalid" in body,
     "the key as a Bearer token on the Azure path: 401 (token message)")
st, _, body = s.request("POST", "/openai/deployments/gpt4o/chat/completions", user("hi"),
                        {"api-key": KEY})
t.eq(st, 404, "no api-version: 404 like Azure")
st, _, body = s.chat("{not json")
t.ok(st == 400 and b"could not parse the JSON body" in body, "invalid JSON: 400")
st, _, body = s.chat({"messages": []})
t.ok(st == 400 and b"'messages' is a required property" in body, "no messages: 400")
st, _, body = s.request("GET", "/nowhere")
t.eq(st, 404, "an unknown path: 404")
st, _, body = s.chat(user("hi"), headers={"x-sim-fault": "explode"})
t.ok(st == 400 and b"unknown fault" in body, "an unknown fault spec: 400")

# ---- tool rules --------------------------------------------------------------------
SQL_TOOL = {"type": "function", "function": {"name": "execute_sql_tool", "description": "run SQL",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}
req = dict(user("How many students are there?"), tools=[SQL_TOOL])
st, _, body = s.chat(req)
r = json.loads(body)
ch = r["choices"][0]
calls = ch["message"].get("tool_calls") or [{}]
t.eq((ch["finish_reason"], ch["message"]["content"], calls[0].get("type"),
      calls[0].get("function", {}).get("name")),
     ("tool_calls", None, "function", "execute_sql_tool"), "a matching rule with its tool offered: a tool call")
t.eq(json.loads(calls[0]["function"]["arguments"]),
     {"query": "SELECT count(*) FROM students_performance"}, "the rule's arguments as a JSON string")
t.ok(calls[0]["id"].startswith("call_sim"), "a tool call id")
t.eq(r["usage"]["prompt_tokens"], prompt_tokens(req["messages"], req["tools"]),
     "tools count in the prompt tokens")
st, _, body = s.chat(user("How many students are there?"))
t.ok(json.loads(body)["choices"][0]["message"]["content"].startswith("Simulated reply to:"),
     "the same rule without the tool offered: plain content")
follow = {"messages": req["messages"] + [
    {"role": "assistant", "content": None, "tool_calls": calls},
    {"role": "tool", "tool_call_id": calls[0]["id"], "content": "[{\"count\": 7}]"}],
    "tools": [SQL_TOOL]}
st, _, body = s.chat(follow)
r = json.loads(body)
t.eq((r["choices"][0]["message"]["content"], r["choices"][0]["finish_reason"]),
     ('The query returned: [{"count": 7}]', "stop"), "after the tool result: the rule's final content")
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
_, _, body = s.chat(dict(user("Weather in Bergen"), tools=[WEATHER]))
call = json.loads(body)["choices"][0]["message"]["tool_calls"][0]
t.eq((call["function"]["name"], call["function"]["arguments"]), ("get_weather", '{"city":"Oslo"}'),
     "a regex rule (case-insensitive) with string arguments")
_, _, body = s.chat(dict(user("Weather in Bergen?"), tools=[WEATHER]))
t.ok("tool_calls" not in json.loads(body)["choices"][0]["message"], "the regex is anchored")
follow = {"messages": [{"role": "user", "content": "Weather in Bergen"},
                       {"role": "assistant", "content": None, "tool_calls": [call]},
                       {"role": "tool", "tool_call_id": call["id"], "content": "12 degrees"}]}
_, _, body = s.chat(follow)
t.eq(json.loads(body)["choices"][0]["message"]["content"], "Tool get_weather returned: 12 degrees",
     "a rule without final: the default final reply names the tool")
_, _, body = s.chat(user("Is this a question?", system="You classify messages."))
t.eq(json.loads(body)["choices"][0]["message"]["content"],
     "Category: payload_type_1 for Is this a question?", "a system-prompt rule with {user}")
st, _, body = s.chat(user("anything"), deployment="special")
t.eq(json.loads(body)["choices"][0]["message"]["content"], "special deployment answer",
     "a deployment rule")

# ---- JSON mode, max_tokens ------------------------------------------------------------
_, _, body = s.chat(dict(user("give me json"), response_format={"type": "json_object"}))
doc = json.loads(json.loads(body)["choices"][0]["message"]["content"])
t.eq(sorted(doc.keys()), ["ref", "reply"], "json_object mode: the content is a JSON object")
_, _, body = s.chat(dict(user("Hello there, how are you today?"), max_tokens=3))
r = json.loads(body)
t.ok(r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] <= 3
     and r["usage"]["completion_tokens"] == tokens(r["choices"][0]["message"]["content"]),
     "max_tokens cuts the reply: finish_reason length", r)


# ---- streaming -------------------------------------------------------------------------
def frames_of(body):
    text = body.decode()
    t.ok(text.endswith("\n\n"), "the stream ends with a blank line")
    return [f[len("data: "):] for f in text.split("\n\n") if f]


req = user("Stream me a reply please")
_, _, plain = s.chat(req)
plain = json.loads(plain)["choices"][0]["message"]["content"]
st, hdr, body = s.chat(dict(req, stream=True, stream_options={"include_usage": True}))
t.eq((st, hdr.get("content-type"), hdr.get("transfer-encoding")),
     (200, "text/event-stream", "chunked"), "a stream is chunked text/event-stream")
fr = frames_of(body)
t.ok(all(f.startswith("{") or f == "[DONE]" for f in fr), "every frame is data: JSON or [DONE]")
t.eq(fr[-1], "[DONE]", "the last frame is [DONE]")
chunks = [json.loads(f) for f in fr[:-1]]
t.ok(chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0],
     "the first frame carries prompt_filter_results (Azure)")
t.eq(chunks[1]["choices"][0]["delta"].get("role"), "assistant", "then a role frame")
deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
t.eq("".join(deltas), plain, "the deltas concatenate to the non-streamed content")
t.ok(len([d for d in deltas if d]) > 2, "content comes in several fragments")
fin = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
t.eq([c["choices"][0]["finish_reason"] for c in fin], ["stop"], "one finish frame")
t.ok("usage" in chunks[-1] and chunks[-1]["choices"] == [] and
     chunks[-1]["usage"]["completion_tokens"] == tokens(plain), "a usage frame last with include_usage")
t.ok(all(c.get("object") == "chat.completion.chunk" for c in chunks[1:]), "chunk objects")
st, _, body = s.chat(dict(req, stream=True))
t.ok(all("usage" not in json.loads(f) for f in frames_of(body)[:-1]), "no usage frame without include_usage")
st, _, body = s.chat(dict(user("How many students are there?"), tools=[SQL_TOOL], stream=True))
chunks = [json.loads(f) for f in frames_of(body)[:-1]]
parts = [tc for c in chunks if c["choices"] for tc in (c["choices"][0]["delta"].get("tool_calls") or [])]
t.ok(parts[0]["id"].startswith("call_sim") and parts[0]["function"]["name"] == "execute_sql_tool"
     and all("id" not in p for p in parts[1:]), "a streamed tool call: head then fragments")
t.eq(json.loads("".join(p["function"]["arguments"] for p in parts)),
     {"query": "SELECT count(*) FROM students_performance"}, "streamed arguments join to the JSON")


# ---- faults -----------------------------------------------------------------------------
def fault(spec, body=None, key=None, timeout=15, path_prefix=False):
    hdrs = {} if path_prefix else {"x-sim-fault": spec}
    if key:
        hdrs["x-sim-key"] = key
    hdrs["api-key"] = KEY
    path = s.chat_path()
    if path_prefix:
        path = "/fault/" + urllib.parse.quote(spec, safe=";=") + path
    return s.request("POST", path, body or user("fault please"), hdrs, timeout)


st, hdr, body = fault("429;retry-after-ms=300")
t.ok(st == 429 and hdr.get("retry-after-ms") == "300" and "retry-after" not in hdr
     and json.loads(body)["error"]["code"] == "429", "429 with retry-after-ms only")
st, hdr, body = fault("429;retry-after=2")
t.ok(st == 429 and hdr.get("retry-after") == "2" and "retry-after-ms" not in hdr
     and b"Please retry after 2 seconds" in body, "429 with Retry-After only")
st, hdr, body = fault("429")
t.ok(st == 429 and "retry-after" not in hdr and "retry-after-ms" not in hdr, "429 without retry headers")
st, _, body = fault("500")
t.ok(st == 500 and json.loads(body)["error"]["type"] == "server_error", "500 with OpenAI's server_error body")
st, hdr, body = fault("503;retry-after=1")
t.ok(st == 503 and hdr.get("retry-after") == "1", "503 with Retry-After")
st, _, body = fault("400")
t.eq(st, 400, "a plain 400")
st, _, body = fault("401")
t.ok(st == 401 and b"Access denied" in body, "401 on demand")
st, _, body = fault("500", path_prefix=True)
t.eq(st, 500, "a fault as a path prefix /fault/500/...")
st, hdr, body = fault("429;retry-after-ms=250", path_prefix=True)
t.ok(st == 429 and hdr.get("retry-after-ms") == "250", "a path-prefix fault with parameters")

key = "times-%d" % os.getpid()
got = [fault("503;times=2", key=key)[0] for _ in range(3)]
t.eq(got, [503, 503, 200], "503;times=2 fails twice per x-sim-key, then succeeds")
t.eq(s.key_count(key), 3, "/sim/stats counts the attempts of the key")
t.eq(len(s.key_times(key)), 3, "/sim/stats keeps the attempt times of the key")
got = [s.chat(user("please fail now"), headers={"x-sim-key": key + "r"})[0] for _ in range(2)]
t.eq(got, [503, 200], "a rule's fault with times=1")

t0 = time.time()
st, _, _ = fault("none;latency-ms=300")
t.ok(st == 200 and time.time() - t0 >= 0.3, "latency-ms delays the answer")

t0 = time.time()
try:
    fault("hang", timeout=1.0)
    hung = False
except socket.timeout:
    hung = True
t.ok(hung and time.time() - t0 >= 0.9, "hang: no answer within the client's timeout")

t0 = time.time()
st, _, body = fault("drip;bps=1000")
el = time.time() - t0
t.ok(st == 200 and json.loads(body)["choices"] and el >= len(body) / 1000.0 * 0.8,
     "drip: the body arrives at the asked rate (%d bytes in %.2fs)" % (len(body), el))

st, _, body = fault("malformed")
try:
    json.loads(body)
    malformed = False
except ValueError:
    malformed = True
t.ok(st == 200 and malformed and body.startswith(b"{"), "malformed: 200 with broken JSON")

try:
    fault("truncated")
    truncated = False
except http.client.IncompleteRead:
    truncated = True
t.ok(truncated, "truncated: Content-Length promises more than is sent")

st, _, body = fault("oversized;bytes=300000")
t.ok(st == 200 and len(body) > 300000 and
     len(json.loads(body)["choices"][0]["message"]["content"]) == 300000,
     "oversized: a valid reply of the asked size")

st, _, body = fault("content_filter_prompt")
e = json.loads(body)["error"]
t.ok(st == 400 and e["code"] == "content_filter" and e["param"] == "prompt"
     and e["innererror"]["code"] == "ResponsibleAIPolicyViolation"
     and e["innererror"]["content_filter_result"]["violence"]["filtered"] is True,
     "content_filter on the prompt: Azure's 400 with innererror")
st, _, body = fault("content_filter_completion")
r = json.loads(body)
ch = r["choices"][0]
t.ok(st == 200 and ch["finish_reason"] == "content_filter" and ch["message"]["content"] is None
     and ch["content_filter_results"]["violence"]["filtered"] is True
     and r["usage"]["completion_tokens"] > 0,
     "content_filter on the completion: finish_reason content_filter, billed usage")
st, _, body = s.chat(dict(user("fault please"), stream=True, stream_options={"include_usage": True}),
                     headers={"x-sim-fault": "content_filter_completion"})
fin = [json.loads(f) for f in frames_of(body)[:-1]]
fin = [c for c in fin if c["choices"] and c["choices"][0]["finish_reason"]]
t.eq(fin[0]["choices"][0]["finish_reason"], "content_filter", "a streamed completion filtered at the end")
st, _, body = fault("context_length")
e = json.loads(body)["error"]
t.ok(st == 400 and e["code"] == "context_length_exceeded"
     and e["message"].startswith("This model's maximum context length is 2000 tokens."),
     "context_length on demand: 400 context_length_exceeded")
st, _, body = s.chat(user("word " * 2500))
t.ok(st == 400 and json.loads(body)["error"]["code"] == "context_length_exceeded",
     "a prompt over --context-limit: context_length_exceeded")
try:
    fault("reset")
    reset = False
except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
    reset = True
t.ok(reset, "reset: the connection closes without a reply")

st, _, body = s.chat(dict(user("hi"), stream=True), headers={"x-sim-fault": "malformed"})
t.ok(st == 200 and b'{"content":"brok\n\n' in body, "a malformed stream frame")
try:
    s.chat(dict(user("hi"), stream=True), headers={"x-sim-fault": "truncated"})
    truncated = False
except http.client.IncompleteRead:
    truncated = True
t.ok(truncated, "a truncated stream never sends its last chunk")

# ---- token endpoints -------------------------------------------------------------------
s.reset()
form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "app-1",
                               "client_secret": "s3cret",
                               "scope": "https://cognitiveservices.azure.com/.default"})
FORM_HDR = {"Content-Type": "application/x-www-form-urlencoded"}
st, _, body = s.request("POST", "/tenant-1/oauth2/v2.0/token", form, FORM_HDR)
tok = json.loads(body) if st == 200 else {}
t.ok(st == 200 and tok.get("token_type") == "Bearer" and tok.get("expires_in") == 3599
     and tok.get("access_token", "").startswith("simtok-"), "Entra ID client credentials issue a token")
st, _, _ = s.chat(user("hi"), key=False, headers={"Authorization": "Bearer " + tok.get("access_token", "")})
t.eq(st, 200, "an issued token works as a Bearer token on the Azure path")
st, _, body = s.request("POST", "/tenant-1/oauth2/v2.0/token", form.replace("s3cret", "nope"), FORM_HDR)
t.ok(st == 401 and json.loads(body)["error"] == "invalid_client", "a wrong client secret: 401 invalid_client")
st, _, body = s.request("POST", "/tenant-1/oauth2/v2.0/token",
                        form.replace("cognitiveservices", "management"), FORM_HDR)
t.ok(st == 400 and json.loads(body)["error"] == "invalid_scope", "a wrong scope: 400 invalid_scope")
st, _, body = s.request("POST", "/tenant-1/oauth2/v2.0/token",
                        form.replace("client_credentials", "password"), FORM_HDR)
t.eq(st, 400, "another grant type: 400")
imds = ("/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
        + urllib.parse.quote("https://cognitiveservices.azure.com/", safe=""))
st, _, body = s.request("GET", imds)
t.ok(st == 400 and b"Required metadata header" in body, "IMDS without Metadata: true: 400")
st, _, body = s.request("GET", imds + "&client_id=mi-1", headers={"Metadata": "true"})
tok = json.loads(body) if st == 200 else {}
t.ok(st == 200 and tok.get("expires_in") == "3599" and tok.get("client_id") == "mi-1"
     and tok.get("resource") == "https://cognitiveservices.azure.com/", "IMDS issues a token (strings, like IMDS)")
st, _, _ = s.chat(user("hi"), key=False, headers={"Authorization": "Bearer " + tok.get("access_token", "")})
t.eq(st, 200, "a managed-identity token works too")
st, _, _ = s.chat(user("hi"), key=False, headers={"Authorization": "Bearer simtok-forged"})
t.eq(st, 401, "a token the simulator did not issue: 401")
ts = s.stats()["tokens_issued"]
t.eq((ts["entra"], ts["imds"], ts["total"]), (1, 1, 2), "/sim/stats counts the tokens issued")

# ---- Azure AI Search --------------------------------------------------------------------
SP = "/indexes/kb/docs/search?api-version=2023-11-01"
st, _, body = s.request("POST", SP, {"search": "safety"})
t.eq(st, 401, "search without api-key: 401")
st, _, body = s.request("POST", "/indexes/kb/docs/search", {"search": "x"}, {"api-key": KEY})
t.eq(st, 400, "search without api-version: 400")
st, hdr, body = s.request("POST", SP, {"search": "safety", "count": True}, {"api-key": KEY})
r = json.loads(body)
t.eq([d["id"] for d in r["value"]], ["1", "2", "3"],
     "term-match scoring: title x2, content, category; ties in file order")
t.ok(r["@odata.count"] == 3 and r["value"][0]["@search.score"] > r["value"][1]["@search.score"]
     and r["value"][0]["title"] == "Workplace safety basics", "@odata.count, @search.score, fields")
_, _, body = s.request("POST", SP, {"search": "safety", "top": 1}, {"api-key": KEY})
r = json.loads(body)
t.ok(len(r["value"]) == 1 and "@odata.count" not in r, "top limits; no count unless asked")
_, _, body = s.request("POST", SP, {"search": "*", "select": "id,title"}, {"api-key": KEY})
r = json.loads(body)
t.ok(len(r["value"]) == 3 and all(sorted(d) == ["@search.score", "id", "title"] for d in r["value"]),
     "search * returns all; select limits fields")
_, _, body = s.request("POST", SP, {"search": "*", "filter": "category eq 'health'"}, {"api-key": KEY})
t.eq([d["id"] for d in json.loads(body)["value"]], ["2"], "a simple eq filter")
_, _, body = s.request("POST", SP, {"search": "nothing matches zzz", "count": True}, {"api-key": KEY})
t.eq(json.loads(body)["@odata.count"], 0, "no match: empty value")
t.eq(s.stats()["search"], 7, "/sim/stats counts search requests (refused ones too)")

# ---- stop --------------------------------------------------------------------------------
t.ok(os.path.exists(s.pidfile), "the pidfile exists while running")
os.kill(s.pid, signal.SIGTERM)
rc = s.proc.wait(10)
t.ok(rc == 0 and not os.path.exists(s.pidfile), "SIGTERM stops it with 0 and removes the pidfile")
t.ok("msg=stopped" in s.log(), "it logs that it stopped")
t.ok(KEY not in s.log() and "s3cret" not in s.log(), "no key or secret in the simulator log")
t.done()
