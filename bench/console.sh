#!/bin/bash
# console.sh -- the web console's reads at scale (issue 16): the server time
# of the statements behind GET /api/v1/conversations (one owner's threads,
# every owner's) and GET /api/v1/prompts/usage (the calls of a template's
# versions), at THREADS threads and USAGE usage rows, as EXPLAIN ANALYZE
# reports them (best of 5 runs, warm cache, JIT off as in the server's
# pool: lib/db_pool.c).  The charts' summary
# (GET /api/v1/usage, usage_live) was measured at 10 million rows in
# docs/dba.md.
#
#   INGEN=_build/ingen bash bench/console.sh
#   THREADS=1000000 USAGE=10000000 bash bench/console.sh   (the defaults)
#
# The statements are copies of lib/db_chat.c's ing_thread_list /
# ing_thread_list_all and lib/db_usage.c's ing_prompt_usage: keep them
# equal.  A benchmark, not a test: it prints numbers and asserts nothing.
# It makes a private cluster (`ingen db init-local`) under a temporary
# directory, stopped and removed at the end.
set -eu

INGEN=${INGEN:-_build/ingen}
THREADS=${THREADS:-1000000}
USAGE=${USAGE:-10000000}
TAIL=${TAIL:-20000}
PSQL=${PSQL:-$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)}
[ -x "$INGEN" ] || { echo "console.sh: $INGEN is not built" >&2; exit 2; }

tmp=$(mktemp -d /tmp/ingen-consolebench.XXXXXX)
chmod 755 "$tmp"
cleanup() {
	# KEEP=1 leaves the cluster running for EXPLAIN by hand
	[ "${KEEP:-0}" = 1 ] && { echo "console.sh: kept $tmp/pg ($owner_url)"; return; }
	"$INGEN" db stop-local "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
owner_url=""
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

unset PGHOST PGPORT PGDATABASE PGSERVICE PGUSER PGPASSWORD
export INGENIOUS_SERVER__STATE_DIR=$tmp
echo "console.sh: a private cluster in $tmp/pg; $THREADS threads, $USAGE usage rows"
"$INGEN" db init-local "$tmp/pg" >"$tmp/init.log" 2>&1 || { cat "$tmp/init.log"; exit 1; }
owner_url=$(grep '^owner_url=' "$tmp/pg/credentials" | cut -d= -f2-)
sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$owner_url" "$@"; }

t0=$(date +%s)
# 1,000 owners; each thread has its first message; 1 usage row in 10 is
# templated, over 20 versions of one template
sql <<SQL
INSERT INTO threads (id, owner, flow, last_seq, created_at, updated_at)
SELECT 't' || g, 'user' || (g % 1000), 'flow' || (g % 5), 2,
       now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval
  FROM generate_series(1, $THREADS) g;
INSERT INTO messages (id, thread_id, seq, role, content, user_id)
SELECT gen_random_uuid(), 't' || g, 1, 'user', 'question number ' || g, 'user' || (g % 1000)
  FROM generate_series(1, $THREADS) g;
INSERT INTO llm_usage (user_id, thread_id, flow, agent_name, model, prompt_tokens,
       completion_tokens, total_tokens, latency_ms, http_status, created_at,
       prompt_revision, prompt_file, prompt_hash)
SELECT 'user' || (g % 1000), 't' || (g % $THREADS + 1), 'flow' || (g % 5), 'agent', 'gpt-4o',
       100, 20, 120, 300, 200, now() - ((g % 2592000) || ' seconds')::interval,
       CASE WHEN g % 10 = 0 THEN 'rev1' END, CASE WHEN g % 10 = 0 THEN 'p.jinja' END,
       CASE WHEN g % 10 = 0 THEN encode(sha256(('v' || (g / 10 % 20))::bytea), 'hex') END
  FROM generate_series(1, $USAGE) g;
SQL
# the rollup as the server moves it (GET /api/v1/usage), then a tail of
# TAIL rows not rolled up yet, as between two rollups under load
t1=$(date +%s)
sql -At -c "SELECT usage_rollup_mark()" >/dev/null
while [ "$(sql -At -c "SELECT usage_rollup_apply()")" != 0 ]; do :; done
echo "console.sh: rolled up in $(( $(date +%s) - t1 )) s"
sql <<SQL
INSERT INTO llm_usage (user_id, thread_id, flow, agent_name, model, total_tokens, http_status,
       prompt_revision, prompt_file, prompt_hash)
SELECT 'user' || (g % 1000), 't' || (g % $THREADS + 1), 'flow0', 'agent', 'gpt-4o', 120, 200,
       'rev1', 'p.jinja', encode(sha256(('v' || (g % 20))::bytea), 'hex')
  FROM generate_series(1, $TAIL) g;
VACUUM ANALYZE threads, messages, llm_usage, usage_rollup, prompt_usage_rollup;
SQL
echo "console.sh: loaded in $(( $(date +%s) - t0 )) s"

hashes=$(sql -At -c "SELECT '{' || string_agg(encode(sha256(('v' || i)::bytea), 'hex'), ',') || '}' FROM generate_series(0, 19) i")
FMT="'YYYY-MM-DD\"T\"HH24:MI:SS.US'"
LIST="SELECT t.id, t.owner, t.flow, t.last_seq,
 to_char(t.created_at AT TIME ZONE 'UTC', $FMT), to_char(t.updated_at AT TIME ZONE 'UTC', $FMT),
 coalesce((SELECT left(m.content, 120) FROM messages m WHERE m.thread_id = t.id AND m.seq = 1), '')
 FROM threads t"
PROMPT="SELECT h.hash, s.calls, s.errors, s.tokens,
 to_char(s.first_used AT TIME ZONE 'UTC', $FMT), to_char(s.last_used AT TIME ZONE 'UTC', $FMT),
 coalesce((SELECT json_agg(r.thread_id ORDER BY r.last DESC)::text FROM
   (SELECT v.thread_id, max(v.id) AS last FROM
     (SELECT thread_id, id, prompt_revision, prompt_file, user_id FROM llm_usage
       WHERE prompt_hash = h.hash ORDER BY id DESC LIMIT 200) v
     WHERE v.thread_id IS NOT NULL AND
     v.prompt_revision = \$2 AND v.prompt_file = \$3 AND (\$4::text IS NULL OR v.user_id = \$4)
     GROUP BY v.thread_id ORDER BY 2 DESC LIMIT 5) r), '[]')
 FROM unnest(\$1::text[]) AS h(hash)
 CROSS JOIN LATERAL (SELECT sum(p.calls) AS calls, sum(p.errors) AS errors,
   sum(p.total_tokens) AS tokens, min(p.first_used) AS first_used,
   max(p.last_used) AS last_used FROM prompt_usage_live p
   WHERE p.prompt_hash = h.hash AND p.prompt_revision = \$2 AND
   p.prompt_file = \$3 AND (\$4::text IS NULL OR p.user_id = \$4)) s
 WHERE s.calls IS NOT NULL"

best() { # best NAME PREPARE EXECUTE: the lowest "Execution Time" of 5
	local name=$1 prep=$2 exe=$3 i ms all=""
	for i in 1 2 3 4 5; do
		ms=$(sql -At <<SQL | sed -n 's/.*Execution Time: \([0-9.]*\) ms.*/\1/p'
SET jit = off;
$prep;
EXPLAIN (ANALYZE, BUFFERS) $exe;
SQL
)
		all="$all $ms"
	done
	echo "$all" | tr ' ' '\n' | sed '/^$/d' | sort -n | head -1 |
	    awk -v n="$name" '{ printf("%-52s %8.1f ms\n", n, $1) }'
}
best "threads of one owner (limit 50)" \
    "PREPARE q(int, text) AS $LIST WHERE t.owner = \$2 ORDER BY t.updated_at DESC, t.id LIMIT \$1" \
    "EXECUTE q(50, 'user7')"
best "threads of every owner (limit 50)" \
    "PREPARE q(int) AS $LIST ORDER BY t.updated_at DESC, t.id LIMIT \$1" \
    "EXECUTE q(50)"
best "threads of every owner (limit 200)" \
    "PREPARE q(int) AS $LIST ORDER BY t.updated_at DESC, t.id LIMIT \$1" \
    "EXECUTE q(200)"
best "prompt usage, 20 versions, every user ($((USAGE / 10 + TAIL)) calls)" \
    "PREPARE q(text, text, text, text) AS $PROMPT" \
    "EXECUTE q('$hashes', 'rev1', 'p.jinja', NULL)"
best "prompt usage, 20 versions, one user" \
    "PREPARE q(text, text, text, text) AS $PROMPT" \
    "EXECUTE q('$hashes', 'rev1', 'p.jinja', 'user7')"
