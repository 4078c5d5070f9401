#!/bin/bash
# kb.sh -- the local knowledge base (issue 11): ingest rate of `ingen kb add`
# and search latency (p50, p99) of the pool's db_kb_search at 10k and 100k
# chunks, next to a bare psql running the same query in the same run.
#
#   INGEN=_build/ingen DB_PROBE=_build/tests/probe/db_probe bash bench/kb.sh
#   (or `make bench-kb` in the build directory)
#
# It makes a private cluster (`ingen db init-local`) under a temporary
# directory, generates synthetic text (deterministic: words w0000..w4999,
# 60 words a paragraph, 100 paragraphs a file), and for each size:
#   ingest  `ingen kb add DIR` from empty: chunks/s and files/s
#   search  QUERIES two-word queries, one at a time over one pooled
#           connection: db_probe's repl (db_kb_search, the call a flow
#           makes, with its JSON printing and a pipe round trip) and psql
#           with \timing (server time as psql sees it) running
#           SELECT * FROM ingenious_kb_search('english', q, 5)
# A benchmark, not a test: it prints numbers and asserts nothing.  Every
# process it starts is stopped by pid; the cluster is stopped and removed.
set -eu

INGEN=${INGEN:-_build/ingen}
DB_PROBE=${DB_PROBE:-$(dirname "$INGEN")/tests/probe/db_probe}
SIZES=${SIZES:-"10000 100000"}
QUERIES=${QUERIES:-1000}
PSQL=${PSQL:-$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)}

for p in "$INGEN" "$DB_PROBE" "$PSQL"; do
	[ -x "$p" ] || { echo "kb.sh: $p is not built or not found" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/ingen-kbbench.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	"$INGEN" db stop-local "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

unset PGHOST PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD
export INGENIOUS_SERVER__STATE_DIR=$tmp
echo "kb.sh: making a private cluster in $tmp/pg"
"$INGEN" db init-local "$tmp/pg" >"$tmp/init.log" 2>&1 || { cat "$tmp/init.log"; exit 1; }
owner_url=$(grep '^owner_url=' "$tmp/pg/credentials" | cut -d= -f2-)
app_url=$(grep '^app_url=' "$tmp/pg/credentials" | cut -d= -f2-)

# files of 100 paragraphs of 60 words, `files` of them, into dir
gen() { # gen DIR FILES
	mkdir -p "$1"
	awk -v dir="$1" -v files="$2" 'BEGIN {
		srand(11);
		for (f = 0; f < files; f++) {
			path = sprintf("%s/doc%05d.txt", dir, f);
			for (p = 0; p < 100; p++) {
				line = "";
				for (w = 0; w < 60; w++) {
					line = line sprintf("w%04d", int(rand() * 5000));
					line = line ((w % 12 == 11) ? ". " : " ");
				}
				print line "\n" > path;
			}
			close(path);
		}
	}'
}

# QUERIES lines of two random words
awk -v n="$QUERIES" 'BEGIN { srand(7); for (i = 0; i < n; i++)
	printf("w%04d w%04d\n", int(rand() * 5000), int(rand() * 5000)) }' >"$tmp/queries"

percentiles() { # reads milliseconds, one a line; prints p50 p99 mean
	sort -n | awk '{ v[NR] = $1; s += $1 } END {
		if (NR == 0) { print "no samples"; exit }
		i50 = int(NR * 0.50); if (i50 < 1) i50 = 1;
		i99 = int(NR * 0.99); if (i99 < 1) i99 = 1;
		printf("p50 %.3f ms  p99 %.3f ms  mean %.3f ms  (%d queries)\n",
		    v[i50], v[i99], s / NR, NR) }'
}

for n in $SIZES; do
	files=$((n / 100))
	echo
	echo "== $n chunks ($files files of 100 paragraphs)"
	"$PSQL" -X -q -d "$owner_url" -c "TRUNCATE kb_sources, kb_chunks" >/dev/null
	gen "$tmp/kb$n" "$files"
	t0=$(date +%s.%N)
	"$INGEN" kb add "$tmp/kb$n" >"$tmp/add$n.log" 2>&1 || { tail "$tmp/add$n.log"; exit 1; }
	t1=$(date +%s.%N)
	stored=$("$PSQL" -X -A -t -d "$owner_url" -c "SELECT count(*) FROM kb_chunks")
	awk -v a="$t0" -v b="$t1" -v c="$stored" -v f="$files" 'BEGIN {
		printf("ingest: %d chunks in %.2f s: %.0f chunks/s, %.1f files/s\n",
		    c, b - a, c / (b - a), f / (b - a)) }'
	"$PSQL" -X -q -d "$owner_url" -c "VACUUM ANALYZE kb_chunks" >/dev/null
	t0=$(date +%s.%N)
	"$INGEN" kb add "$tmp/kb$n" >"$tmp/readd$n.log" 2>&1
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v f="$files" 'BEGIN {
		printf("re-add unchanged: %d files in %.2f s\n", f, b - a) }'

	# the pool's call, through db_probe's repl (one pool, one connection)
	printf 'db_kb_search (db_probe repl): '
	python3 - "$DB_PROBE" "$app_url" "$tmp/queries" <<'EOF' | percentiles
import json, subprocess, sys, time
probe, url, qfile = sys.argv[1:4]
p = subprocess.Popen([probe, "--url", url, "--pool", "1", "repl"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, text=True)
queries = [l.strip() for l in open(qfile) if l.strip()]
def run(q):
    p.stdin.write(json.dumps(["kb-search", "--config", "english", "--query", q, "--top", "5"]) + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())
for q in queries[:20]:          # warm the connection and the prepared statement
    run(q)
for q in queries:
    t0 = time.perf_counter()
    r = run(q)
    ms = (time.perf_counter() - t0) * 1000
    if r.get("status") != "ok":
        sys.stderr.write("kb.sh: search failed: %r\n" % r)
        break
    print("%.3f" % ms)
p.stdin.write('["quit"]\n')
p.stdin.close()
p.wait(30)
EOF
	# the same query in a bare psql, one session, \timing
	printf 'psql, same query:             '
	{
		echo '\timing on'
		echo '\o /dev/null'
		sed "s/.*/SELECT * FROM ingenious_kb_search('english', '&', 5);/" "$tmp/queries"
	} >"$tmp/psql$n.sql"
	"$PSQL" -X -q -d "$app_url" -f "$tmp/psql$n.sql" 2>&1 |
	    awk '/^Time:/ { print $2 }' | percentiles
	hits=$("$PSQL" -X -A -t -d "$app_url" -c \
	    "SELECT count(*) FROM ingenious_kb_search('english', '$(head -1 "$tmp/queries")', 5)")
	echo "(first query: $hits hits of 5 asked)"
	rm -rf "$tmp/kb$n"
done
