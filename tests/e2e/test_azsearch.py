"""test_azsearch.py -- the Azure AI Search client (lib/azsearch.c) through
tests/probe/azs_probe against the simulator: the settings check and the
index fallbacks read from the environment as the server reads them, $count,
hits and top, an empty index, 401 and 404, a service that is down (retries,
then 503), unreachable (503) or slow (504), retry-then-success, a 1 MB query,
query text with tsquery and JSON syntax characters, the semantic
configuration as the simulator saw it, Entra ID and managed-identity tokens
(cached), many threads reusing their connections, and that no key reaches a
message or a log."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, free_port  # noqa: E402
from sim import BUILDDIR, SANITIZER_MARKS, Sim  # noqa: E402

t = Tap(timeout=240)
KEY = "azs-search-key-0815"
PROBE = os.path.join(BUILDDIR, "tests", "probe", "azs_probe")
DOCS = {
    "kb": [
        {"id": "1", "title": "Workplace safety basics", "category": "workplace safety",
         "content": "Wear protective equipment, keep walkways clear and report hazards."},
        {"id": "2", "title": "First aid for minor cuts", "category": "first aid",
         "content": "Clean the cut with water and cover it with a sterile bandage."},
        {"id": "3", "title": "Fire safety", "category": "workplace safety",
         "content": "Know the exits; safety drills happen twice a year."},
    ],
    "empty": [],
}
s = Sim(t, api_key=KEY, docs=DOCS, args=["--client-secret", "app-secret", "--quiet"]).start()
workdir = tempfile.mkdtemp(prefix="ingen-azs-")


def svc_env(**kw):
    """The environment of one azure_search_services[0]."""
    env = {"INGENIOUS_AZURE_SEARCH_SERVICES__0__SERVICE": "kb-search",
           "INGENIOUS_AZURE_SEARCH_SERVICES__0__ENDPOINT": s.url,
           "INGENIOUS_AZURE_SEARCH_SERVICES__0__KEY": KEY,
           "INGENIOUS_AZURE_SEARCH_SERVICES__0__INDEX_NAME": "kb",
           "INGENIOUS_LLM__MAX_RETRIES": "2",
           "INGENIOUS_LLM__TIMEOUT_MS": "5000"}
    for k, v in kw.items():
        name = k.upper() if k.isupper() else "INGENIOUS_AZURE_SEARCH_SERVICES__0__" + k.upper()
        if v is None:
            env.pop(name, None)
        else:
            env[name] = v
    return env


def run(args, env, timeout=60):
    """(parsed output, stderr, seconds) of one azs_probe run."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AZURE_", "INGENIOUS_", "KB_"))}
    base.update(env)
    t0 = time.time()
    p = subprocess.run([PROBE] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=base, cwd=workdir, timeout=timeout)
    took = time.time() - t0
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError("azs_probe exited %d:\n%s\n%s" % (p.returncode, out, err))
    if any(m in err for m in SANITIZER_MARKS):
        raise RuntimeError("azs_probe printed a sanitizer report:\n%s" % err[-3000:])
    return json.loads(out), err, took


def search(query, top=3, env=None, args=None):
    out, err, took = run((args or []) + ["search", query, str(top)], env or svc_env())
    return out["results"][0], err, out, took


def count(env=None):
    out, err, took = run(["count"], env or svc_env())
    return out["results"][0], err, out, took


def sticky(spec):
    st, _, _ = s.request("POST", "/sim/search-fault", spec)
    assert st == 200, st


def searches():
    st = s.stats()
    return st["search"] + st["search_count"]


all_stderr = []

# ---- settings, as the server reads them --------------------------------------------
out, _, _ = run(["count"], {})
t.eq((out["state"], out["index"]), ("not_configured", "test-index"),
     "no azure_search_services: not configured, the index falls back to test-index")
t.ok(not out["results"][0]["ok"] and "not configured" in out["results"][0]["message"],
     "a call without a service fails with a clear message", out["results"][0])
out, _, _ = run(["count"], svc_env(key=None))
t.eq((out["state"], out.get("missing")), ("incomplete", "key"),
     "an endpoint without a key: incomplete, the key is named")
out, _, _ = run(["count"], svc_env(key="mock-search-key-12345"))
t.eq(out["state"], "not_configured", "the reference's mock key: not configured")
out, _, _ = run(["count"], svc_env(index_name=None, AZURE_SEARCH_DEFAULT_INDEX="empty"))
t.eq((out["state"], out["index"], out["results"][0].get("count")), ("ok", "empty", 0),
     "no index_name: AZURE_SEARCH_DEFAULT_INDEX is used (an empty index counts 0)")

# ---- $count and search --------------------------------------------------------------
r, err, out, _ = count()
all_stderr.append(err)
t.eq((out["state"], out["index"], r["ok"], r.get("count")), ("ok", "kb", True, 3),
     "count: the documents of the index ($count, text/plain with a byte order mark)")
last = s.stats()["search_last"]
t.eq((last["route"], last["index"], last["auth"], last["api_version"]),
     ("count", "kb", "api-key", "2023-11-01"), "count sent the api-key and the api-version")
r, err, _, _ = search("safety", 5)
all_stderr.append(err)
hits = r["hits"]
t.ok(r["ok"] and len(hits) == 2 and hits[0]["title"] in ("Workplace safety basics", "Fire safety")
     and hits[0]["score"] >= hits[1]["score"] > 0, "search: the matching documents, best first", r)
t.ok(all(h["content"] and h["id"] and h["snippet"] is None and h["reranker_score"] == 0
         for h in hits), "hits carry id, content; no snippet or reranker score without semantic")
last = s.stats()["search_last"]
t.eq((last["route"], last["top"], last.get("query_type")), ("search", 5, None),
     "the simulator saw top and no queryType")
r, _, _, _ = search("safety", 1)
t.eq(len(r["hits"]), 1, "top 1: one hit")
r, _, _, _ = search("zzz nothing matches", 3)
t.eq((r["ok"], r["hits"]), (True, []), "no match: zero hits, not an error")
r, _, _, _ = search("safety", 3, svc_env(index_name="empty"))
t.eq((r["ok"], r["hits"]), (True, []), "an empty index: zero hits")

# ---- the service refuses ------------------------------------------------------------
r, err, _, _ = search("safety", 3, svc_env(key="wrong-key-123"))
all_stderr.append(err)
t.eq((r["ok"], r["status"], r["message"]),
     (False, 502, "azure search: the service refused the credentials (HTTP 401)"),
     "a wrong key: 502, the service refused the credentials")
t.ok("wrong-key-123" not in r["message"] + err and KEY not in err,
     "no key in the message or the log")
n0 = searches()
r, err, _, _ = count(svc_env(index_name="nope"))
all_stderr.append(err)
t.eq((r["status"], r["message"]), (502, 'azure search: index "nope" not found (HTTP 404)'),
     "an unknown index: 502, index not found")
t.eq(searches() - n0, 1, "a 404 is not retried")

# ---- down, unreachable, slow, flaky -------------------------------------------------
sticky("503")
n0 = searches()
r, err, _, took = search("safety")
all_stderr.append(err)
t.eq((r["status"], r["message"]), (503, "azure search: the service is unavailable (HTTP 503)"),
     "the service down (503): 503 after the retries")
t.eq(searches() - n0, 3, "three attempts: max_retries 2, as the model client")
t.ok("retry 1 of 2" in err and "retry 2 of 2" in err, "the retries are logged", err[-800:])
sticky("401")
r, _, _, _ = search("safety")
t.eq((r["status"], r["message"]),
     (502, "azure search: the service refused the credentials (HTTP 401)"),
     "a 401 fault: 502, refused credentials")
sticky("500")
r, _, _, _ = count(svc_env(INGENIOUS_LLM__MAX_RETRIES="0"))
t.eq((r["status"], r["message"]), (502, "azure search: the service failed (HTTP 500)"),
     "a 500 with retries off: 502 with the status")
sticky("malformed")
r, _, _, _ = search("safety")
t.eq(r["status"], 502, "a malformed reply: 502")
t.ok("not a search result" in r["message"], "... says the reply is not a search result", r)
sticky("hang")
r, _, _, took = search("safety", 3, svc_env(INGENIOUS_LLM__TIMEOUT_MS="800"))
t.eq((r["status"], r["message"]), (504, "azure search: the service did not answer in time"),
     "a slow service: 504")
t.ok(0.7 <= took < 4, "... after about llm.timeout_ms (800 ms)", took)
sticky("503;times=1")
n0 = searches()
r, _, _, _ = search("safety")
t.ok(r["ok"] and len(r["hits"]) == 2 and searches() - n0 == 2,
     "503 once, then an answer: the retry succeeds", r)
sticky("429;retry-after=1;times=1")
r, _, _, took = search("safety")
t.ok(r["ok"] and took >= 0.95, "a 429 with Retry-After: 1 is waited out, then answered", took)
sticky("")
t.eq(s.stats()["search_fault"], "", "POST /sim/search-fault with an empty body clears the fault")
dead = free_port()
r, err, _, _ = search("safety", 3, svc_env(endpoint="http://127.0.0.1:%d" % dead))
t.eq(r["status"], 503, "an unreachable service: 503")
t.ok(r["message"].startswith("azure search: could not connect to the service"),
     "... could not connect", r["message"])
# a fault by path prefix works too (the endpoint carries it)
r, _, _, _ = count(svc_env(endpoint=s.url + "/fault/404"))
t.eq(r["status"], 502, "a fault as an endpoint path prefix (/fault/404/...) reaches the client")

# ---- what is sent -------------------------------------------------------------------
big = "safety " * (1024 * 1024 // 7 + 1)
qf = os.path.join(workdir, "big.txt")
with open(qf, "w") as f:
    f.write(big)
out, err, _ = run(["--query-file", qf, "search", "3"], svc_env())
r = out["results"][0]
last = s.stats()["search_last"]
t.ok(r["ok"] and len(r["hits"]) == 2, "a 1 MB query does not fail", r.get("message"))
t.ok(0 < last["search_bytes"] <= 8192, "... it is cut to at most 8 KiB before it is sent",
     last["search_bytes"])
odd = "safety & !(fire | x):* <-> 'quoted' \"double\" \\ {json} é"
r, _, _, _ = search(odd)
last = s.stats()["search_last"]
t.ok(r["ok"] and any(h["id"] == "1" for h in r["hits"]),
     "tsquery and JSON syntax characters: an answer", r)
t.eq(last["search_head"], odd, "... the query reached the service exactly as given")
r, _, _, _ = search("safety", 3, svc_env(semantic_configuration="default"))
last = s.stats()["search_last"]
t.eq((last["query_type"], last["semantic_configuration"], last["captions"]),
     ("semantic", "default", "extractive"),
     "semantic_configuration: queryType semantic, the configuration and captions are sent")
t.ok(r["ok"] and all(h["snippet"] and h["reranker_score"] > 0 for h in r["hits"]),
     "semantic hits carry the caption as snippet and a reranker score", r)
st, _, body = s.request("POST", "/indexes/kb/docs/search?api-version=2023-11-01",
                        {"search": "x", "queryType": "semantic"}, {"api-key": KEY})
t.eq(st, 400, "the simulator refuses a semantic query without semanticConfiguration")

# ---- tokens -------------------------------------------------------------------------
tok0 = s.stats()["tokens_issued"]["entra"]
out, err, _ = run(["--calls", "3", "search", "safety", "2"],
                  svc_env(key=None, authentication_method="client_id_and_secret",
                          client_id="app-id", client_secret="app-secret", tenant_id="tenant1",
                          INGENIOUS_LLM__TOKEN_ENDPOINT=s.url))
all_stderr.append(err)
t.ok(all(r["ok"] for r in out["results"]) and s.stats()["search_last"]["auth"] == "bearer",
     "client_id_and_secret: an Entra ID bearer token is accepted", out["results"])
t.eq(s.stats()["tokens_issued"]["entra"] - tok0, 1, "... fetched once for three calls (cached)")
t.ok("app-secret" not in err, "no client secret in the log")
out, _, _ = run(["search", "safety", "2"],
                svc_env(key=None, authentication_method="client_id_and_secret",
                        client_id="app-id", client_secret="bad-secret", tenant_id="tenant1",
                        INGENIOUS_LLM__TOKEN_ENDPOINT=s.url))
r = out["results"][0]
t.ok(r["status"] == 502 and "access token for azure search" in r["message"]
     and "bad-secret" not in r["message"], "a refused client secret: 502, no secret shown", r)
imds0 = s.stats()["tokens_issued"]["imds"]
out, _, _ = run(["count"], svc_env(key=None, authentication_method="msi",
                                   INGENIOUS_LLM__IMDS_ENDPOINT=s.url))
t.ok(out["results"][0].get("count") == 3 and s.stats()["tokens_issued"]["imds"] == imds0 + 1,
     "msi: a managed-identity token", out["results"])

# ---- threads ------------------------------------------------------------------------
s.reset()
out, err, _ = run(["--threads", "8", "--calls", "5", "search", "safety", "3"], svc_env())
res = out["results"]
t.ok(len(res) == 40 and all(r["ok"] and len(r["hits"]) == 2 for r in res),
     "8 threads x 5 calls at once: all answered")
t.ok(s.stats()["connections"] <= 16,
     "each thread reuses its connection (%d connections for 40 calls)" % s.stats()["connections"])

t.ok(all(KEY not in e for e in all_stderr) and KEY not in s.log(),
     "the key never reached a log line")
t.done()
