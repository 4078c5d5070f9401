"""test_diagnostic.py -- GET and OPTIONS /api/v1/diagnostic (the reference's
section 1.8, with our paths): the storage folders under
file_storage.revisions.path and file_storage.data.path; OPTIONS names the
methods; another method is a 405 with Allow; with authentication on, the
route needs credentials like the other non-health routes."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, slack  # noqa: E402
from authkit import basic  # noqa: E402

t = Tap(timeout=60)
srv = Server(t, workers=1).start(timeout=slack(20))
st, h, b = request(srv.port, "GET", "/api/v1/diagnostic")
t.eq((st, json.loads(b)), (200, {"Prompt Directory": "templates/prompts",
                                 "Data Directory": "functional_test_outputs",
                                 "Output Directory": "functional_test_outputs",
                                 "Events Directory": "functional_test_outputs"}),
     "GET /api/v1/diagnostic: the reference's four folders, relative to ./")
st, h, b = request(srv.port, "OPTIONS", "/api/v1/diagnostic")
t.ok(st == 200 and json.loads(b) == {"Allow": "GET, OPTIONS"} and h.get("allow") == "GET, OPTIONS",
     "OPTIONS /api/v1/diagnostic: {\"Allow\":\"GET, OPTIONS\"} and the Allow header", (st, h, b))
st, h, b = request(srv.port, "POST", "/api/v1/diagnostic", {})
t.ok(st == 405 and "GET" in h.get("allow", "") and "OPTIONS" in h.get("allow", ""),
     "POST: 405 with Allow", (st, h.get("allow"), b))
srv.stop()

AUTH = "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__"
srv = Server(t, workers=1, env={
    AUTH + "ENABLE": "true", AUTH + "PASSWORD": "diag-pw",
    "INGENIOUS_FILE_STORAGE__REVISIONS__PATH": "/srv/ingenious/",
    "INGENIOUS_FILE_STORAGE__DATA__PATH": "/var/lib/ingenious/data"}).start(timeout=slack(20))
st, h, b = request(srv.port, "GET", "/api/v1/diagnostic")
t.eq(st, 401, "with authentication on: 401 without credentials")
st, h, b = request(srv.port, "GET", "/api/v1/diagnostic", None, basic("admin", "diag-pw"))
t.eq((st, json.loads(b) if st == 200 else b),
     (200, {"Prompt Directory": "/srv/ingenious/templates/prompts",
            "Data Directory": "/var/lib/ingenious/data/functional_test_outputs",
            "Output Directory": "/var/lib/ingenious/data/functional_test_outputs",
            "Events Directory": "/var/lib/ingenious/data/functional_test_outputs"}),
     "with credentials: the folders under the configured paths")
srv.stop()
t.done()
