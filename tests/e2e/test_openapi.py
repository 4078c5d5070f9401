"""test_openapi.py -- the API document (docs/openapi.json, issue 13): every
route of the router's table (worker/routes.c) is in the document and every
documented route is routed; GET /openapi.json serves the file as is, /docs a
page (its script and style from this server, a strict
Content-Security-Policy); server.api_docs = false hides them; with
authentication on they need credentials.  The responses of a tour of the API
are checked against the document (status documented, body matching its
schema), and requests generated from the ChatRequest schema (each required
field missing, each field of the wrong type, the valid minimum) get the
statuses the document gives them, as schemathesis does."""
import json
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, SRCDIR, request, slack  # noqa: E402
from oaschema import OpenAPI  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from sim import Sim  # noqa: E402
from authkit import basic  # noqa: E402

t = Tap(timeout=180)
api = OpenAPI()
doc = api.doc

# ---- the document and the route table agree -----------------------------------
src = open(os.path.join(SRCDIR, "worker", "routes.c")).read()
routed = set((m.lower(), p) for m, p in
             re.findall(r'\{\s*HTTP_METHOD_([A-Z]+),\s*"([^"]+)"', src))
documented = set((m, p) for p, item in doc["paths"].items() for m in item)
t.ok(len(routed) >= 20, "the route table parsed (%d routes)" % len(routed))
t.eq(sorted(routed - documented), [], "every route of the table is in docs/openapi.json")
t.eq(sorted(documented - routed), [], "every route of docs/openapi.json is routed")
t.eq(doc.get("openapi"), "3.1.0", "an OpenAPI 3.1 document")
t.ok(set(doc["components"]["securitySchemes"]) == {"basic", "bearer"},
     "the security schemes: Basic and Bearer")
ops = [(m, p, o) for p, item in doc["paths"].items() for m, o in item.items()]
t.ok(all(o.get("summary") and o.get("responses") for _, _, o in ops),
     "every operation has a summary and its responses")
t.ok(all("X-Request-ID" in api.resolve(r).get("headers", {})
         for _, _, o in ops for r in o["responses"].values()),
     "every response documents X-Request-ID")

pg = PgCluster(t)
sim = Sim(t, api_key="oa-key").start()
ENV = {
    "INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app"),
    "INGENIOUS_MODELS__0__MODEL": "gpt-4o",
    "INGENIOUS_MODELS__0__API_KEY": "oa-key",
    "INGENIOUS_MODELS__0__BASE_URL": sim.url + "/",
    "INGENIOUS_MODELS__0__DEPLOYMENT": "gpt4o",
    "INGENIOUS_MODELS__0__API_VERSION": "2024-12-01-preview",
}
srv = Server(t, workers=1, env=ENV).start(timeout=slack(20))
port = srv.port

st, h, b = request(port, "GET", "/openapi.json")
t.ok(st == 200 and b == open(os.path.join(SRCDIR, "docs", "openapi.json"), "rb").read()
     and h.get("content-type", "").startswith("application/json"),
     "GET /openapi.json serves docs/openapi.json as is")
st, h, b = request(port, "GET", "/docs")
csp = h.get("content-security-policy", "")
t.ok(st == 200 and h.get("content-type", "").startswith("text/html")
     and b'<script src="/docs/docs.js">' in b and b"<script>" not in b,
     "GET /docs: a page whose script comes from this server, none inline")
t.ok("default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp,
     "with a strict Content-Security-Policy (%s)" % csp)
for f, ctype in (("/docs/docs.js", "text/javascript"), ("/docs/docs.css", "text/css")):
    st, h, b = request(port, "GET", f)
    t.ok(st == 200 and h.get("content-type", "").startswith(ctype) and len(b) > 200,
         "GET %s: %s" % (f, ctype))
st, h, b = request(port, "GET", "/docs/docs.js")
t.ok(b"http://" not in b and b"https://" not in b and b'fetch("/openapi.json"' in b,
     "the script reaches nothing but this server")

# ---- a tour of the API, every response checked against the document ----------
problems = []


def call(method, path, body=None, headers=None):
    st, h, b = request(port, method, path, body, headers)
    problems.extend(api.check(method, path, st, b, h.get("content-type")))
    return st, h, b


st, _, b = call("POST", "/api/v1/chat", {"user_prompt": "hello", "conversation_flow":
                                         "classification-agent"})
tid = json.loads(b)["thread_id"] if st == 200 else "x"
mid = json.loads(b)["message_id"] if st == 200 else "x"
t.eq(st, 200, "a chat turn")
call("POST", "/api/v1/chat", {"user_prompt": "hello"})
call("POST", "/api/v1/chat", {"user_prompt": "hello", "conversation_flow": ""})
call("POST", "/api/v1/chat", {"user_prompt": "hello", "conversation_flow": "no-such-flow"})
call("POST", "/api/v1/chat", {"user_prompt": "", "conversation_flow": "classification-agent"})
call("POST", "/api/v1/chat", {"user_prompt": "x" * 262145, "conversation_flow": "classification-agent"})
call("POST", "/api/v1/chat/stream", {"user_prompt": "hi", "conversation_flow": "classification-agent"})
call("GET", "/api/v1/conversations/%s" % tid)
call("GET", "/api/v1/conversations/%s?limit=0" % tid)
call("PUT", "/api/v1/messages/%s/feedback" % mid, {"thread_id": tid, "message_id": mid,
                                                   "positive_feedback": True})
call("PUT", "/api/v1/messages/%s/feedback" % mid, {"thread_id": tid, "message_id": "other"})
call("POST", "/api/v1/auth/login", {"username": "a", "password": "b"})
for path in ("/api/v1/health", "/api/v1/ready", "/api/v1/workflows",
             "/api/v1/workflow-status/classification-agent", "/api/v1/workflow-status/nope",
             "/api/v1/revisions/list", "/api/v1/workflows/list",
             "/api/v1/prompts/list/quickstart-1", "/api/v1/usage?by=flow", "/api/v1/usage?by=x",
             "/api/v1/diagnostic", "/metrics", "/openapi.json", "/docs"):
    call("GET", path)
call("OPTIONS", "/api/v1/diagnostic")
t.eq(problems, [], "every response of the tour has a documented status and matches its schema")

# ---- requests generated from the ChatRequest schema ---------------------------
schema = api.resolve(doc["components"]["schemas"]["ChatRequest"])
valid = {"user_prompt": "generated", "conversation_flow": "classification-agent"}
wrong = {"string": 7, "boolean": "yes", "object": [1]}
gen_problems = []
cases = [(dict(valid), 200, "the valid minimum")]
for k in schema["required"]:
    cases.append(({x: v for x, v in valid.items() if x != k}, 422, "without %s" % k))
for k, prop in schema["properties"].items():
    ty = prop["type"] if isinstance(prop["type"], str) else prop["type"][0]
    cases.append((dict(valid, **{k: wrong[ty]}), 422, "%s of the wrong type" % k))
cases.append(([valid], 422, "an array instead of the object"))
cases.append(("not json", 422, "not JSON"))
for body, want, name in cases:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    st, h, b = request(port, "POST", "/api/v1/chat", raw, {"Content-Type": "application/json"})
    got = api.check("POST", "/api/v1/chat", st, b, h.get("content-type"))
    if st != want or got:
        gen_problems.append((name, st, want, got, b[:200]))
t.eq(gen_problems, [], "%d requests generated from ChatRequest get the documented statuses"
     % len(cases))

# every other JSON body of the document: each required field missing, each
# field of the wrong type: a documented status, a 4xx, a body of its schema
gen_problems, n_cases = [], 0
fill = {"string": "x", "boolean": True, "integer": 1, "object": {}, "array": []}
for path, item in doc["paths"].items():
    for method, o in item.items():
        rb = o.get("requestBody", {}).get("content", {}).get("application/json")
        if rb is None or path.startswith("/api/v1/chat"):
            continue
        bs = api.resolve(rb["schema"])
        concrete = path.replace("{message_id}", "m-1").replace("{revision_id}", "quickstart-1") \
            .replace("{filename}", "summary_prompt.jinja")
        good = {}
        for k, prop in bs.get("properties", {}).items():
            ty = prop.get("type", "string")
            good[k] = fill[ty if isinstance(ty, str) else ty[0]]
        variants = [({x: v for x, v in good.items() if x != k}, "without " + k)
                    for k in bs.get("required", [])]
        variants += [(dict(good, **{k: 12345 if v != 12345 else "x"}), k + " of the wrong type")
                     for k, v in good.items() if not isinstance(v, int) or isinstance(v, bool)]
        for body, name in variants:
            n_cases += 1
            st, h, b = request(port, method.upper(), concrete, body, check_openapi=False)
            got = api.check(method.upper(), concrete, st, b, h.get("content-type"))
            if not 400 <= st < 500 or got:
                gen_problems.append(("%s %s %s" % (method.upper(), path, name), st, got, b[:160]))
t.ok(n_cases >= 8, "requests generated from the other bodies (%d)" % n_cases)
t.eq(gen_problems, [], "each is refused with a documented 4xx and a body of its schema")
srv.stop()

# ---- switched off; behind authentication --------------------------------------
off = Server(t, workers=1, env=dict(ENV, INGENIOUS_SERVER__API_DOCS="false")).start(
    timeout=slack(20))
t.eq([request(off.port, "GET", p)[0] for p in ("/openapi.json", "/docs", "/docs/docs.js")],
     [404, 404, 404], "server.api_docs = false: 404 on the document and the page")
off.stop()
AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
sec = Server(t, workers=1, env=dict(ENV, **{AUTH + "ENABLE": "true",
                                           AUTH + "PASSWORD": "oa-pw"})).start(timeout=slack(20))
t.eq(request(sec.port, "GET", "/openapi.json")[0], 401, "with authentication on: 401 without "
     "credentials")
t.eq(request(sec.port, "GET", "/docs", None, basic("admin", "oa-pw"))[0], 200,
     "and 200 with them")
sec.stop()
t.done()
