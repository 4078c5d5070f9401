"""test_prompts.py -- the prompts API end to end (issue 10 section 1,
docs/prompts.md): the real `ingen serve` with file_storage.revisions.path
set to a temporary folder holding templates/prompts/quickstart-1/ (as
`ingen init` lays it out), a revision folder and a template that are
symbolic links pointing out, and a file outside the templates folder.

Covers: every route's body in the reference's shapes (revisions/list,
workflows/list, prompts/list with its attempted revisions and note,
view as a JSON string with ETag and X-Prompt-Hash, update with its hash,
revisions/create with the reference's id rules, ours: versions and a view
by ?hash=); a missing file is 404; every path escape (.., absolute paths,
%2F, %2e%2e, backslashes, %00, names that are not .md/.jinja, symbolic
links) is 400 with the file outside untouched and nothing written; with
authentication on, writes are the administrator's (403 for a user of the
database, made with `ingen user add`); with it off, anyone may write."""
import hashlib
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import Tap, Server, request, clean_env  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from authkit import basic, ingen_user  # noqa: E402

t = Tap(timeout=300)

work = tempfile.mkdtemp(prefix="ingen-prompts-")
t.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))
revs = os.path.join(work, "revs")
prompts = os.path.join(revs, "templates", "prompts")
qs = os.path.join(prompts, "quickstart-1")
os.makedirs(qs)
os.makedirs(os.path.join(prompts, "bike-insights"))
FIRST = "You are a helpful assistant.\nUser: {{ user_prompt }}\n"
files = {"user_prompt.md": FIRST, "summary_prompt.jinja": "Summarise {{ text }}",
         "notes.txt": "not a template"}
for name, text in files.items():
    with open(os.path.join(qs, name), "w") as f:
        f.write(text)
with open(os.path.join(prompts, "bike-insights", "fiscal_analysis_agent_prompt.jinja"), "w") as f:
    f.write("Fiscal")
outside = os.path.join(work, "secret.md")
with open(outside, "w") as f:
    f.write("SECRET")
os.symlink(outside, os.path.join(qs, "leak.md"))
os.symlink(work, os.path.join(prompts, "escape"))


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot():
    """Every path below work with its content (or link target)."""
    out = {}
    for root, dirs, names in os.walk(work):
        for n in dirs + names:
            p = os.path.join(root, n)
            if os.path.relpath(p, work).split(os.sep)[0] in ("srv", "srv2"):
                continue
            if os.path.islink(p):
                out[p] = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[p] = f.read()
            else:
                out[p] = "dir"
    return out


srvdir = os.path.join(work, "srv")
os.makedirs(srvdir)
ENV = {"INGENIOUS_FILE_STORAGE__REVISIONS__PATH": revs}
srv = Server(t, workers=1, cwd=srvdir, env=ENV).start()
port = srv.port


def get(path, headers=None):
    return request(port, "GET", path, None, headers)


def post(path, body, headers=None):
    return request(port, "POST", path, body, headers)


def js(b):
    try:
        return json.loads(b)
    except ValueError:
        return None


# ---- the listings ----------------------------------------------------------------
st, _, b = get("/api/v1/revisions/list")
t.eq((st, js(b)), (200, {"revisions": ["bike-insights", "quickstart-1"], "count": 2,
                        "discovered_from": "template_directories"}),
     "revisions/list: the folders, sorted (no link)")

st, _, b = get("/api/v1/prompts/list/quickstart-1")
t.eq((st, js(b)), (200, {"revision_id": "quickstart-1", "actual_revision_used": "quickstart-1",
                        "normalized_revision_id": "quickstart_1",
                        "files": ["summary_prompt.jinja", "user_prompt.md"], "count": 2,
                        "attempted_revisions": ["quickstart-1", "quickstart_1"]}),
     "prompts/list: the templates sorted, no .txt, no symbolic link")
st, _, b = get("/api/v1/prompts/list/bike_insights")
d = js(b)
t.ok(st == 200 and d["actual_revision_used"] == "bike-insights" and
     d["files"] == ["fiscal_analysis_agent_prompt.jinja"] and
     d["attempted_revisions"] == ["bike_insights", "bike-insights"],
     "prompts/list of an underscored id finds the hyphenated folder", b)
st, _, b = get("/api/v1/prompts/list/nothing")
t.eq((st, js(b)), (200, {"revision_id": "nothing", "normalized_revision_id": "nothing",
                        "files": [], "count": 0, "attempted_revisions": ["nothing"],
                        "note": "No prompt templates found for this revision. Check if the "
                                "revision exists or if templates have been uploaded."}),
     "prompts/list of an unknown revision: the reference's note")

st, _, b = get("/api/v1/workflows/list")
d = js(b) or {}
byname = {w["workflow"]: w for w in d.get("workflows", [])}
t.ok(st == 200 and d["count"] == len(d["workflows"]) == d["total_workflows_discovered"] > 0,
     "workflows/list: count and total_workflows_discovered", b)
t.eq(byname.get("classification_agent"), {
    "workflow": "classification_agent", "revision_id": "classification_agent",
    "prompt_count": 0, "prompt_files": [], "note": "No prompts found or path not accessible"},
    "workflows/list: a flow without templates, with the reference's note")
os.makedirs(os.path.join(prompts, "classification-agent"))
with open(os.path.join(prompts, "classification-agent", "classify.md"), "w") as f:
    f.write("Classify")
st, _, b = get("/api/v1/workflows/list")
byname = {w["workflow"]: w for w in (js(b) or {}).get("workflows", [])}
t.eq(byname.get("classification_agent"), {
    "workflow": "classification_agent", "revision_id": "classification-agent",
    "prompt_count": 1, "prompt_files": ["classify.md"]},
    "workflows/list: the revision of the flow's hyphenated name and its templates")

# ---- view ------------------------------------------------------------------------
st, h, b = get("/api/v1/prompts/view/quickstart-1/user_prompt.md")
t.ok(st == 200 and js(b) == FIRST and h.get("etag") == '"%s"' % sha(FIRST) and
     h.get("x-prompt-hash") == sha(FIRST) and h.get("content-type", "").startswith(
         "application/json"),
     "view: the content as a JSON string, ETag and X-Prompt-Hash its sha256", (st, h, b))
st, _, b = get("/api/v1/prompts/view/quickstart-1/missing.md")
t.ok(st == 404 and list(js(b) or {}) == ["detail"] and "missing.md" in js(b)["detail"],
     "view of a missing file: 404 {\"detail\"} (the reference's empty 200 is a bug)", b)
st, _, b = get("/api/v1/prompts/view/nothing/user_prompt.md")
t.eq(st, 404, "view in a missing revision: 404")
with open(os.path.join(prompts, "bike-insights", "latin1.md"), "wb") as f:
    f.write(b"caf\xe9")
st, _, b = get("/api/v1/prompts/view/bike-insights/latin1.md")
d = js(b) or {}
t.ok(st == 500 and "not UTF-8 text" in d.get("detail", "") and "request_id" in d,
     "view of a file that is not UTF-8: a clear 500, not broken JSON", b)
os.unlink(os.path.join(prompts, "bike-insights", "latin1.md"))

# ---- every escape: 400, nothing read or written ----------------------------------
before = snapshot()
ESCAPES = [
    ("GET", "/api/v1/prompts/view/quickstart-1/leak.md", "a template linked outside"),
    ("GET", "/api/v1/prompts/view/escape/secret.md", "a revision folder linked outside"),
    ("GET", "/api/v1/prompts/view/../secret.md", "a .. revision"),
    ("GET", "/api/v1/prompts/view/quickstart-1/..", "a .. file"),
    ("GET", "/api/v1/prompts/view/quickstart-1/%2e%2e%2fsecret.md", "%2e%2e%2f"),
    ("GET", "/api/v1/prompts/view/%2e%2e/secret.md", "%2e%2e as the revision"),
    ("GET", "/api/v1/prompts/view/quickstart-1/..%2F..%2Fsecret.md", "an encoded slash"),
    ("GET", "/api/v1/prompts/view/quickstart-1/%2Fetc%2Fpasswd", "an absolute path"),
    ("GET", "/api/v1/prompts/view/%2Ftmp/user_prompt.md", "an absolute revision"),
    ("GET", "/api/v1/prompts/view/quickstart-1/..%5Csecret.md", "an encoded backslash"),
    ("GET", "/api/v1/prompts/view/quickstart-1/..\\secret.md", "a backslash"),
    ("GET", "/api/v1/prompts/view/quickstart-1/user_prompt.md%00.txt", "%00"),
    ("GET", "/api/v1/prompts/view/quickstart-1/notes.txt", "not .md or .jinja"),
    ("GET", "/api/v1/prompts/view/quickstart-1/.versions", "a hidden name"),
    ("GET", "/api/v1/prompts/view/quickstart-1/user_prompt.md?hash=..%2F..%2Fx", "a hash that is a path"),
    ("GET", "/api/v1/prompts/list/..", "list .."),
    ("GET", "/api/v1/prompts/list/escape", "list a linked folder"),
    ("GET", "/api/v1/prompts/versions/quickstart-1/leak.md", "versions of a link"),
    ("GET", "/api/v1/prompts/versions/..%2F/x.md", "versions with an encoded slash"),
    ("POST", "/api/v1/prompts/update/quickstart-1/leak.md", "update through a link"),
    ("POST", "/api/v1/prompts/update/escape/secret.md", "update below a linked folder"),
    ("POST", "/api/v1/prompts/update/../secret.md", "update .."),
    ("POST", "/api/v1/prompts/update/quickstart-1/..%2F..%2Fsecret.md", "update %2F"),
    ("POST", "/api/v1/prompts/update/quickstart-1/%2e%2e", "update %2e%2e"),
    ("POST", "/api/v1/prompts/update/quickstart-1/x.md%00", "update %00"),
    ("POST", "/api/v1/prompts/update/quickstart-1/..%5Cx.md", "update a backslash"),
    ("POST", "/api/v1/prompts/update/quickstart-1/evil.sh", "update a .sh"),
    ("POST", "/api/v1/prompts/update/quickstart-1/%2Ftmp%2Fx.md", "update an absolute path"),
]
for method, path, what in ESCAPES:
    if method == "GET":
        st, _, b = get(path)
    else:
        st, _, b = post(path, {"content": "PWNED"})
    d = js(b)
    t.ok(st == 400 and isinstance(d, dict) and "detail" in d and b"SECRET" not in b,
         "%s %s (%s): 400" % (method, path, what), (st, b))
for body, what in [({"revision_id": "../evil"}, "a .. id"),
                   ({"revision_id": "a/b"}, "a slash"),
                   ({"revision_id": "x", "source_revision_id": "escape"}, "a linked source"),
                   ({"revision_id": "x", "source_revision_id": ".."}, "a .. source")]:
    st, _, b = post("/api/v1/revisions/create", body)
    t.ok(st == 400 and "detail" in (js(b) or {}), "revisions/create with %s: 400" % what, (st, b))
t.ok(snapshot() == before, "nothing was written anywhere by the refused requests")
with open(outside) as f:
    t.eq(f.read(), "SECRET", "the file outside is untouched")
st, _, b = get("/api/v1/prompts/view/quickstart-1/../../secret.md")
t.ok(st in (400, 404) and b"SECRET" not in b,
     "a path with more segments matches no route (%d), nothing read" % st, b)

# ---- update, versions, view by hash ------------------------------------------------
st, _, b = get("/api/v1/prompts/versions/quickstart-1/user_prompt.md")
d = js(b) or {}
t.ok(st == 200 and d.get("revision_id") == "quickstart-1" and
     d.get("filename") == "user_prompt.md" and len(d["versions"]) == 1 and
     d["versions"][0]["hash"] == sha(FIRST) and d["versions"][0]["size"] == len(FIRST) and
     d["versions"][0]["written_at"].endswith("Z") and "T" in d["versions"][0]["written_at"],
     "versions of a file from `ingen init`: its content is the first version", b)
SECOND = "You are a terse assistant.\nUser: {{ user_prompt }}\n"
st, h, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md", {"content": SECOND})
t.eq((st, js(b)), (200, {"message": "File updated successfully", "hash": sha(SECOND)}),
     "update: the reference's message and the new hash")
with open(os.path.join(qs, "user_prompt.md")) as f:
    t.eq(f.read(), SECOND, "the file holds the new content")
st, h, b = get("/api/v1/prompts/view/quickstart-1/user_prompt.md")
t.ok(st == 200 and js(b) == SECOND and h.get("x-prompt-hash") == sha(SECOND),
     "view: the new content and hash", (st, h, b))
st, _, b = get("/api/v1/prompts/versions/quickstart-1/user_prompt.md")
d = js(b) or {}
t.eq([v["hash"] for v in d.get("versions", [])], [sha(SECOND), sha(FIRST)],
     "versions: both, newest first")
st, h, b = get("/api/v1/prompts/view/quickstart-1/user_prompt.md?hash=" + sha(FIRST))
t.ok(st == 200 and js(b) == FIRST and h.get("x-prompt-hash") == sha(FIRST),
     "view ?hash=: the old version is still readable", (st, h, b))
st, _, b = get("/api/v1/prompts/view/quickstart-1/user_prompt.md?hash=" + "0" * 64)
t.eq(st, 404, "view of an unknown hash: 404")
st, _, b = post("/api/v1/prompts/update/quickstart-1/new_agent.jinja", {"content": "New {{ x }}"})
t.ok(st == 200 and js(b)["hash"] == sha("New {{ x }}"), "update makes a new template", b)
st, _, b = post("/api/v1/prompts/update/nothing/a.md", {"content": "x"})
t.ok(st == 404 and not os.path.exists(os.path.join(prompts, "nothing")),
     "update in a missing revision: 404, no folder made", b)
st, _, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md", {"text": "x"})
t.ok(st == 422 and "content" in b.decode(), "update without content: 422", b)
st, _, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md", {"content": 5})
t.eq(st, 422, "update with a content that is not a string: 422")
st, _, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md",
                {"content": "x" * (1024 * 1024 + 1)})
t.eq(st, 413, "update larger than 1 MiB: 413")
with open(os.path.join(qs, "user_prompt.md")) as f:
    t.eq(f.read(), SECOND, "the failed updates left the file as it was")
leftovers = [n for n in os.listdir(qs) if ".tmp." in n]
t.eq(leftovers, [], "no temporary file is left behind")

# ---- create ------------------------------------------------------------------------
st, _, b = post("/api/v1/revisions/create", {"revision_id": "My_Revision"})
t.eq((st, js(b)), (200, {"revision_id": "my-revision", "message": "Revision created successfully",
                        "template_count": 3,
                        "copied_files": ["new_agent.jinja", "summary_prompt.jinja",
                                         "user_prompt.md"],
                        "source_revision_id": "quickstart-1"}),
     "create: the id normalized, the templates of quickstart-1 copied (the reference's default)")
with open(os.path.join(prompts, "my-revision", "user_prompt.md")) as f:
    t.eq(f.read(), SECOND, "with their current content")
st, _, b = post("/api/v1/revisions/create", {"revision_id": "my_revision"})
t.eq(js(b)["revision_id"] if st == 200 else st, "my-revision-1", "a taken id gets -1")
st, _, b = post("/api/v1/revisions/create", {"revision_id": "my-revision"})
t.eq(js(b)["revision_id"] if st == 200 else st, "my-revision-2", "then -2")
st, _, b = post("/api/v1/revisions/create", {"revision_id": "copy", "source_revision_id": "bike-insights"})
d = js(b) or {}
t.ok(st == 200 and d["revision_id"] == "copy" and
     d["copied_files"] == ["fiscal_analysis_agent_prompt.jinja"],
     "create with a source_revision_id copies that revision", b)
st, _, b = post("/api/v1/revisions/create", {"revision_id": "copy2", "source_revision_id": "nothing"})
t.ok(st == 404 and not os.path.exists(os.path.join(prompts, "copy2")),
     "a missing source: 404, nothing made", b)
st, _, b = post("/api/v1/revisions/create", {})
d = js(b) or {}
parts = d.get("revision_id", "").split("-")
t.ok(st == 200 and len(parts) == 3 and len(parts[2]) == 8 and
     os.path.isdir(os.path.join(prompts, d["revision_id"])),
     "create without an id: a generated <adjective>-<noun>-<8 hex>", b)
st, _, b = post("/api/v1/revisions/create", {"revision_id": "   "})
t.eq((st, js(b)), (400, {"detail": "Invalid revision_id format: Revision ID cannot be empty"}),
     "a blank id: the reference's 400")
st, _, b = post("/api/v1/revisions/create", {"revision_id": "!!!"})
t.eq((st, js(b)), (400, {"detail": "Invalid revision_id format: Revision ID '!!!' contains no "
                                   "valid characters"}),
     "an id with no valid character: the reference's 400")
st, _, b = post("/api/v1/revisions/create", {"revision_id": 7})
t.eq(st, 422, "a revision_id that is not a string: 422")
st, _, b = get("/api/v1/revisions/list")
t.ok(st == 200 and "my-revision-2" in js(b)["revisions"] and "copy" in js(b)["revisions"],
     "the new revisions are listed", b)
srv.stop()

# ---- authentication on: writes are the administrator's ------------------------------
pg = PgCluster(t)
DB_ENV = {"INGENIOUS_CHAT_HISTORY__DATABASE_URL": pg.url("app")}
r = ingen_user(["add", "bob"], "bob-password-1", env=clean_env(DB_ENV))
t.ok(r.returncode == 0, "ingen user add bob", r.stdout + r.stderr)
srvdir2 = os.path.join(work, "srv2")
os.makedirs(srvdir2)
srv = Server(t, workers=1, cwd=srvdir2, env=dict(ENV, **DB_ENV, **{
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__ENABLE": "true",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__USERNAME": "admin",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__PASSWORD": "secure_password",
    "INGENIOUS_WEB_CONFIGURATION__AUTHENTICATION__JWT_SECRET_KEY":
        "a-prompts-test-secret-of-more-than-32-bytes-0123",
})).start(timeout=20)
port = srv.port
ADMIN = basic("admin", "secure_password")
BOB = basic("bob", "bob-password-1")
st, _, b = get("/api/v1/prompts/view/quickstart-1/user_prompt.md")
t.eq((st, b), (401, b'{"detail":"Authentication required"}'),
     "auth on: reading needs credentials")
st, _, b = get("/api/v1/prompts/view/quickstart-1/user_prompt.md", BOB)
t.ok(st == 200 and js(b) == SECOND, "a user of the database may read", b)
before = snapshot()
NOPE = (403, {"detail": "Only the administrator may change prompt templates"})
st, _, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md", {"content": "bob"}, BOB)
t.eq((st, js(b)), NOPE, "update by a user who is not the administrator: 403")
st, _, b = post("/api/v1/revisions/create", {"revision_id": "bobs"}, BOB)
t.eq((st, js(b)), NOPE, "create by a user who is not the administrator: 403")
st, _, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md", {"content": "anon"})
t.eq(st, 401, "update without credentials: 401")
t.ok(snapshot() == before, "the refused writes changed nothing")
THIRD = "Third {{ user_prompt }}"
st, _, b = post("/api/v1/prompts/update/quickstart-1/user_prompt.md", {"content": THIRD}, ADMIN)
t.eq((st, js(b)), (200, {"message": "File updated successfully", "hash": sha(THIRD)}),
     "the administrator may update")
st, _, b = post("/api/v1/revisions/create", {"revision_id": "admins"}, ADMIN)
t.ok(st == 200 and js(b)["revision_id"] == "admins", "the administrator may create", b)
st, _, b = get("/api/v1/prompts/versions/quickstart-1/user_prompt.md", BOB)
t.eq([v["hash"] for v in (js(b) or {}).get("versions", [])],
     [sha(THIRD), sha(SECOND), sha(FIRST)], "three versions, newest first")
t.done()
