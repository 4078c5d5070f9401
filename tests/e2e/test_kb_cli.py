"""test_kb_cli.py -- the local knowledge base (issue 11 parts 1 and 2):
`ingen kb add` of a new, an unchanged and a changed file, binary and non-UTF-8
files refused with the file and the offset named, a directory (sorted, others
skipped), `list`, `search`, `remove`, a change of kb.text_search_config; the
pool's db_kb_search and db_kb_count as a flow calls them (tests/probe/db_probe:
unknown configuration, a 1 MB query, tsquery syntax, stop words); and the
server indexing its kb.directory at start and after a SIGHUP with a new file.
Every outcome is checked on the rows of kb_sources and kb_chunks with psql."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from ingen import INGEN, Server, Tap  # noqa: E402
from pgcluster import PgCluster, check_sanitizers, note_sanitizer, pg_env  # noqa: E402

t = Tap(timeout=300)
pg = PgCluster(t)
state = os.path.dirname(pg.dir)          # <state_dir>/pg is the cluster
work = tempfile.mkdtemp(prefix="ingen-kb-")
t.at_exit(lambda: shutil.rmtree(work, ignore_errors=True))


def kb(*args, env=None):
    e = pg_env({"INGENIOUS_SERVER__STATE_DIR": state})
    e.update(env or {})
    r = subprocess.run([INGEN, "kb"] + list(args), capture_output=True, text=True,
                       timeout=120, cwd=work, env=e)
    note_sanitizer(r.stderr, "ingen kb " + " ".join(args[:1]))
    return r


def write(rel, data):
    path = os.path.join(work, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return data if isinstance(data, bytes) else data.encode()


def rows(sql):
    return pg.sql(sql)


def source_row(src):
    r = rows("SELECT checksum, bytes, chunks, ts_config::text, added_at = updated_at, "
             "extract(epoch FROM updated_at) FROM kb_sources WHERE source = '%s'" % src)
    return r[0] if r else None


def chunks_of(src):
    return [r[0] for r in rows(
        "SELECT c.position || ':' || replace(c.content, chr(10), '<LF>') FROM kb_chunks c JOIN kb_sources s "
        "ON s.id = c.source_id WHERE s.source = '%s' ORDER BY c.position" % src)]


# --- a new file ---------------------------------------------------------
a1 = write("a.md", "# Foxes\r\n\r\nThe quick brown fox jumps over the lazy dog.\r\n\r\n\r\n"
                   "Foxes live in dens\nand hunt at night.\n")
r = kb("add", "./a.md")
t.eq(r.returncode, 0, "add: exit 0")
t.ok("a.md: added 3 chunks" in r.stdout, "add: says 'a.md: added 3 chunks'", r.stdout + r.stderr)
row = source_row("a.md")
t.ok(row is not None, "add: a kb_sources row with the normalized source a.md")
t.eq(row[:4], [hashlib.sha256(a1).hexdigest(), str(len(a1)), "3", "english"],
     "add: checksum = sha256 of the bytes, size, 3 chunks, english")
t.eq(chunks_of("a.md"), ["0:# Foxes", "1:The quick brown fox jumps over the lazy dog.",
                         "2:Foxes live in dens<LF>and hunt at night."],
     "add: the chunks are the paragraphs, CRLF read as LF, in order")
t.ok(rows("SELECT count(*) FROM kb_chunks WHERE tsv @@ to_tsquery('english', 'hunt')")[0][0] == "1",
     "add: the generated tsvector finds a stemmed word")

# --- unchanged, then changed --------------------------------------------
before = source_row("a.md")
r = kb("add", "a.md")
t.ok(r.returncode == 0 and "a.md: unchanged" in r.stdout, "re-add: unchanged", r.stdout + r.stderr)
t.eq(source_row("a.md"), before, "re-add: the row is untouched (same updated_at)")
a2 = write("a.md", "The quick brown fox jumps over the lazy dog.\n\nA new ending!\n")
r = kb("add", "a.md")
t.ok(r.returncode == 0 and "a.md: replaced 2 chunks" in r.stdout, "changed: replaced 2 chunks",
     r.stdout + r.stderr)
row = source_row("a.md")
t.eq(row[:4], [hashlib.sha256(a2).hexdigest(), str(len(a2)), "2", "english"],
     "changed: new checksum, size and count")
t.eq(row[4], "f", "changed: updated_at moved past added_at")
t.eq(chunks_of("a.md"), ["0:The quick brown fox jumps over the lazy dog.", "1:A new ending!"],
     "changed: exactly the new chunks remain")

# --- refused files --------------------------------------------------------
write("bin.md", b"hello\x00world")
r = kb("add", "bin.md")
t.eq(r.returncode, 1, "binary: exit 1")
t.ok("refused bin.md" in r.stderr and "NUL byte at byte offset 5" in r.stderr,
     "binary: the message names the file and the offset", r.stderr)
write("latin1.txt", "caf\xe9 au lait".encode("latin-1"))
r = kb("add", "latin1.txt")
t.eq(r.returncode, 1, "non-UTF-8: exit 1")
t.ok("refused latin1.txt" in r.stderr and "not UTF-8" in r.stderr and "byte offset 3" in r.stderr,
     "non-UTF-8: the message names the file and the offset", r.stderr)
write("notes.json", "{}")
r = kb("add", "notes.json")
t.ok(r.returncode == 1 and "not a .md or .txt file" in r.stderr, "a named .json is refused", r.stderr)
r = kb("add", "missing.md")
t.ok(r.returncode == 1 and "refused missing.md" in r.stderr, "a missing file is refused", r.stderr)
t.eq(rows("SELECT count(*) FROM kb_sources WHERE source IN ('bin.md', 'latin1.txt', 'notes.json')"),
     [["0"]], "refused files leave no row")

# --- a directory ----------------------------------------------------------
write("docs/b.md", "Bicycles have two wheels. Tandems carry two riders.\n")
write("docs/sub/c.TXT", "Mountain bikes climb hills.\n\n\nRoad bikes are fast.\n")
write("docs/a.txt", "Alphabetically first.\n")
write("docs/skip.csv", "x,y\n")
write("docs/.hidden.md", "not indexed\n")
write("docs/empty.md", "")
write("docs/broken.md", b"ok\n\xff\xfe\n")
r = kb("add", "docs/")
t.eq(r.returncode, 1, "a directory with a refused file: exit 1")
lines = [l.split(":")[0] for l in r.stdout.splitlines() if ":" in l]
t.eq(lines, ["docs/a.txt", "docs/b.md", "docs/empty.md", "docs/skip.csv", "docs/sub/c.TXT"],
     "a directory: its files in sorted order, hidden ones left out")
t.ok("docs/skip.csv: skipped" in r.stdout, "a directory: other files skipped with a note", r.stdout)
t.ok("refused docs/broken.md" in r.stderr and "byte offset 3" in r.stderr,
     "a directory: the non-UTF-8 file is named", r.stderr)
t.ok("docs/empty.md: added 0 chunks" in r.stdout, "an empty file: added with 0 chunks", r.stdout)
t.eq(rows("SELECT source, chunks FROM kb_sources WHERE source LIKE 'docs/%' ORDER BY source"),
     [["docs/a.txt", "1"], ["docs/b.md", "1"], ["docs/empty.md", "0"], ["docs/sub/c.TXT", "2"]],
     "a directory: the rows of the accepted files")
r = kb("add", "docs")
t.ok("docs/b.md: unchanged" in r.stdout and "added" not in r.stdout.split("\n")[0],
     "a directory again: unchanged", r.stdout)

# --- list, search ---------------------------------------------------------
r = kb("list")
t.ok(r.returncode == 0 and r.stdout.startswith("SOURCE\tCHUNKS") and "\ndocs/sub/c.TXT\t2\t" in r.stdout,
     "list: a header and a row per source with its chunks", r.stdout)
r = kb("search", "bikes", "hills")
t.eq(r.returncode, 0, "search: exit 0")
t.ok(r.stdout.startswith("0.") and "\tdocs/sub/c.TXT#0\tMountain bikes climb hills" in r.stdout,
     "search: rank, source#chunk and a plain snippet", r.stdout)
r = kb("search", "bike", "--top", "1")
t.eq(len(r.stdout.splitlines()), 1, "search --top 1: one hit")
r = kb("search", "the", "and", "of")
t.ok(r.returncode == 0 and "no match in" in r.stdout, "search of stop words: no match, no error",
     r.stdout + r.stderr)
r = kb("search", "--", "&|!():*")
t.ok(r.returncode == 0 and "no match" in r.stdout, "search of tsquery syntax: no match, no error",
     r.stdout + r.stderr)

# --- the text-search configuration -----------------------------------------
r = kb("add", "docs/b.md", env={"INGENIOUS_KB__TEXT_SEARCH_CONFIG": "simple"})
t.ok(r.returncode == 0 and "docs/b.md: replaced 1 chunk" in r.stdout,
     "another configuration: an unchanged file counts as changed", r.stdout + r.stderr)
t.eq(rows("SELECT s.ts_config::text, c.ts_config::text FROM kb_sources s JOIN kb_chunks c "
          "ON c.source_id = s.id WHERE s.source = 'docs/b.md'"), [["simple", "simple"]],
     "another configuration: stored on the source and its chunks")
r = kb("search", "tandems", env={"INGENIOUS_KB__TEXT_SEARCH_CONFIG": "simple"})
t.ok("docs/b.md#0" in r.stdout, "search with simple finds the chunk indexed with simple", r.stdout)
r = kb("search", "tandems")
t.ok("docs/b.md" not in r.stdout, "search with english does not look at simple chunks", r.stdout)
r = kb("add", "docs/a.txt", env={"INGENIOUS_KB__TEXT_SEARCH_CONFIG": "klingon"})
t.ok(r.returncode == 1 and 'unknown text-search configuration "klingon"' in r.stderr,
     "an unknown configuration: a clear error", r.stderr)

# --- the pool, as a flow calls it -------------------------------------------
j, _ = pg.probe(["kb-search", "--config", "english", "--query", "fox dog", "--top", "3"])
t.ok(j["status"] == "ok" and j["n"] == 1 and j["hits"][0]["source"] == "a.md"
     and j["hits"][0]["chunk"] == 0 and j["hits"][0]["rank"] > 0
     and "<b>" not in j["hits"][0]["snippet"]
     and j["hits"][0]["content"] == "The quick brown fox jumps over the lazy dog.",
     "db_kb_search: source, chunk, rank, plain snippet, content", str(j))
j, _ = pg.probe(["kb-search", "--config", "nope", "--query", "fox"])
t.ok(j["status"] == "error" and j["http"] == 400 and "unknown text-search configuration" in j["error"],
     "db_kb_search: an unknown configuration is a 400 with a clear message", str(j))
j, _ = pg.probe(["kb-search", "--config", "english", "--query", "fox dog ", "--repeat", "131072"])
t.ok(j["status"] == "ok" and j["n"] == 1, "db_kb_search: a 1 MB query is cut, not a 500", str(j)[:300])
for q in ("&|!():*", "the of and", "'\"\\", ""):
    j, _ = pg.probe(["kb-search", "--config", "english", "--query", q])
    t.ok(j["status"] == "ok" and j["n"] == 0, "db_kb_search: %r gives 0 hits, no error" % q, str(j))
j, _ = pg.probe(["kb-count"])
total = int(rows("SELECT count(*) FROM kb_chunks")[0][0])
t.ok(j["status"] == "ok" and j["chunks"] == total, "db_kb_count: %d chunks" % total, str(j))
t.eq(pg.value("SELECT count(*) FROM ingenious_kb_search('english', 'fox', 5)", role="readonly"), "1",
     "the readonly role may search too")

# --- remove -----------------------------------------------------------------
r = kb("remove", "./a.md")
t.ok(r.returncode == 0 and "removed a.md (2 chunks)" in r.stdout, "remove: removed with its chunks",
     r.stdout + r.stderr)
t.eq(rows("SELECT count(*) FROM kb_chunks c LEFT JOIN kb_sources s ON s.id = c.source_id "
          "WHERE s.id IS NULL OR s.source = 'a.md'"), [["0"]], "remove: the chunks went with it")
r = kb("remove", "a.md")
t.ok(r.returncode == 1 and 'no source "a.md"' in r.stderr, "remove of an unknown source: clear error",
     r.stderr)

# --- the server indexes its directory at start and on SIGHUP ----------------
srv = Server(t, workers=1, env={"INGENIOUS_SERVER__STATE_DIR": state})
kbdir = os.path.join(srv.dir, "tmp", "knowledge_base")   # <memory_path ./tmp>/knowledge_base
os.makedirs(kbdir)
with open(os.path.join(kbdir, "k1.md"), "w") as f:
    f.write("Server side indexing of kangaroos.\n\nSecond paragraph.\n")
with open(os.path.join(kbdir, "k0.txt"), "wb") as f:
    f.write(b"\x00\x01")
srv.start(timeout=30)
t.ok(srv.wait_log("indexed ./tmp/knowledge_base", timeout=30), "server: indexed at start", srv.log()[-2000:])
t.eq(rows("SELECT source, chunks FROM kb_sources WHERE source LIKE 'tmp/%' ORDER BY source"),
     [["tmp/knowledge_base/k1.md", "2"]], "server: the file's row, as the app role wrote it")
t.ok(srv.log_lines("tmp/knowledge_base/k1.md: added 2 chunks"), "server: one line per added file")
t.ok([l for l in srv.log_lines("k0.txt: refused") if "level=warning" in l],
     "server: a refused file is a warning naming it")
with open(os.path.join(kbdir, "k2.md"), "w") as f:
    f.write("Wombats arrived after the reload.\n")
srv.signal(signal.SIGHUP)
t.ok(srv.wait_log("indexed ./tmp/knowledge_base", timeout=30, count=2), "server: indexed again on SIGHUP",
     srv.log()[-2000:])
t.eq(rows("SELECT source, chunks FROM kb_sources WHERE source LIKE 'tmp/%' ORDER BY source"),
     [["tmp/knowledge_base/k1.md", "2"], ["tmp/knowledge_base/k2.md", "1"]],
     "server: the new file is stored after SIGHUP")
t.ok([l for l in srv.log_lines("indexed ./tmp/knowledge_base") if "1 added, 0 replaced, 1 unchanged" in l],
     "server: the summary counts the unchanged file", "\n".join(srv.log_lines("indexed")))
j, _ = pg.probe(["kb-search", "--config", "english", "--query", "wombat"])
t.ok(j["status"] == "ok" and j["n"] == 1 and j["hits"][0]["source"] == "tmp/knowledge_base/k2.md",
     "server: the flow's search finds it", str(j))
srv.stop()

srv = Server(t, workers=1, env={"INGENIOUS_SERVER__STATE_DIR": state,
                                "INGENIOUS_KB__DIRECTORY": "/nonexistent/kb"})
srv.start(timeout=30)
t.ok(srv.wait_log("no knowledge-base directory /nonexistent/kb", timeout=30),
     "server: a missing directory is one info line", srv.log()[-2000:])
t.ok(not srv.log_lines("level=error"), "server: and no error")
srv.stop()
check_sanitizers(t)
t.done()
