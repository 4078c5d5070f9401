#!/usr/bin/env bash
# bench/plugin.sh -- a chat turn through another flow against the same load
# through the built-in classification flow, in the same run, on the shared load
# rig of ../shared/bench (fake Azure OpenAI nginx, PostgreSQL cluster,
# load.sh); the two loads alternate, ROUNDS times each, on one server.
#   --flow plugin (default; issue 9: within 5 % req/s): a C plugin
#     (bench/plugin_flow.c) that does what the built-in flow does: the same
#     prompt, one streamed model call, the same summary;
#   --flow kb (issue 11: >= 80 % of the classification flow's req/s): the
#     knowledge-base-agent in direct mode (KB_POLICY=local_only, no model call)
#     over a local knowledge base of --kb-chunks generated chunks (ingen kb add).
#
#   bench/plugin.sh [--flow plugin|kb] [--kb-chunks N] [--kb-query TEXT]
#                   [--duration S] [--warmup S] [--rounds N] [--conns N]
#                   [--latency MS] [--port P]
#
# Owns: the ingen server it starts (stopped by its pid file), the tables of
# database ingenious_c on the rig's cluster (truncated at start), and the rig
# services it had to start (stopped with the rig's own stop scripts).  Never
# kills by name, never listens anywhere but 127.0.0.1.  Every wrk run lasts
# <= 20 s.  Prints one RESULT line per load and the medians with their ratio.
#
# Environment: INGEN (default <project>/_build/ingen), PKG_CONFIG_PATH (the
# build tree's ingenious-uninstalled.pc is found next to INGEN), BENCH_RIG
# (default <project>/../shared/bench), BENCH_RUN (default /tmp/ingenious-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
RIG=${BENCH_RIG:-$(cd "$top/.." && pwd)/shared/bench}
[ -f "$RIG/lib/common.sh" ] || RIG=/work/shared/bench
INGEN=${INGEN:-$top/_build/ingen}
DUR=8 WARM=2 ROUNDS=3 CONNS=64 LAT=0 PORT=${PLUGIN_PORT:-18731} FLOW=plugin KB_CHUNKS=10000
KB_QUERY="What does the warranty say about a helmet refund?"
usage() { sed -n '14,16p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--flow) FLOW=$2; shift 2;;
	--kb-chunks) KB_CHUNKS=$2; shift 2;;
	--kb-query) KB_QUERY=$2; shift 2;;
	--duration) DUR=$2; shift 2;;
	--warmup) WARM=$2; shift 2;;
	--rounds) ROUNDS=$2; shift 2;;
	--conns) CONNS=$2; shift 2;;
	--latency) LAT=$2; shift 2;;
	--port) PORT=$2; shift 2;;
	*) usage;;
	esac
done
[ $((DUR + WARM)) -le 20 ] || { echo "plugin.sh: warmup + duration must be <= 20 s" >&2; exit 2; }
case $FLOW in plugin | kb) ;; *) usage;; esac
[ -f "$RIG/lib/common.sh" ] || { echo "plugin.sh: the load rig is not at $RIG (set BENCH_RIG)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$RIG/lib/common.sh"
for c in wrk psql jq curl pg_ctl "$NGINX_BIN" cc pkg-config; do
	command -v "$c" >/dev/null || { echo "plugin.sh: $c not found: run $RIG/install-deps.sh once" >&2; exit 1; }
done
[ -x "$INGEN" ] || { echo "plugin.sh: $INGEN is not built" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$INGEN")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists ingenious ||
	{ echo "plugin.sh: pkg-config finds no ingenious.pc (build the tree, or set PKG_CONFIG_PATH)" >&2; exit 1; }

PG_DATA="$BENCH_RUN/pg/data"
C_DB=ingenious_c
SERVER_CONNINFO="host=127.0.0.1 port=$PG_PORT user=ingenious_app dbname=$C_DB"
PSQL_OWNER=(psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$C_DB")
run=$(mktemp -d /tmp/ingen-plugin-bench-XXXXXX)
STARTED=()
LAT_BEFORE=""
cleanup() {
	local i
	if [ -s "$run/ingen.pid" ]; then stop_pidfile "$run/ingen.pid" 20; fi
	if [ -n "$LAT_BEFORE" ] && pid_alive "$BENCH_RUN/fake-azure/nginx.pid"; then
		"$RIG/fake-azure/set-latency.sh" "$LAT_BEFORE" >/dev/null 2>&1 || true
	fi
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do "$RIG/${STARTED[i]}/stop.sh" >&2 || true; done
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pg_running() { [ -s "$PG_DATA/postmaster.pid" ] && kill -0 "$(head -1 "$PG_DATA/postmaster.pid")" 2>/dev/null; }
if pid_alive "$BENCH_RUN/fake-azure/nginx.pid"; then
	LAT_BEFORE=$(sed -n 's/.*bench_delay_ms \([0-9]*\);.*/\1/p' "$BENCH_RUN/fake-azure/latency.conf")
else
	"$RIG/fake-azure/start.sh" >&2; STARTED+=(fake-azure)
fi
if pg_running; then :; else "$RIG/pg/start.sh" >&2; STARTED+=(pg); fi
# the roles and the schema, as bench/chat.sh makes them
psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'SQL'
DO $$
DECLARE r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['ingenious_app', 'ingenious_readonly', 'ingenious_sqlagent'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END $$;
ALTER ROLE ingenious_app LOGIN;
SQL
"$INGEN" db migrate -d "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$C_DB" 2>&1 |
	grep -v 'level=info' >&2 || true
"${PSQL_OWNER[@]}" -c "TRUNCATE threads, messages, memory_summaries, llm_usage, idempotency_keys RESTART IDENTITY"

# ---- the other flow and the server -----------------------------------------------------
mkdir -p "$run/flows" "$run/state"
KB_ENV=()
if [ "$FLOW" = plugin ]; then
	OTHER=bench_classification
	cc -O2 -shared -fPIC -o "$run/flows/bench_classification.so" "$here/plugin_flow.c" \
		$(pkg-config --cflags --libs ingenious)
else
	OTHER=knowledge-base-agent
	KB_ENV=(KB_POLICY=local_only KB_MODE=direct INGENIOUS_KB__DIRECTORY="$run/no-kb-dir")
	"${PSQL_OWNER[@]}" -c "TRUNCATE kb_sources, kb_chunks"
	# KB_CHUNKS paragraphs in files of 100, made of a vocabulary of 2,000 words,
	# so a query of three words matches a few dozen chunks
	mkdir -p "$run/kb"
	python3 - "$run/kb" "$KB_CHUNKS" <<'PY'
import random, sys
out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(11)
vocab = ["w%04d" % i for i in range(2000)] + ["bicycle", "helmet", "warranty", "refund"]
for f in range((n + 99) // 100):
    with open("%s/doc%05d.md" % (out, f), "w") as fp:
        for p in range(min(100, n - f * 100)):
            fp.write(" ".join(rnd.choice(vocab) for _ in range(40)) + ".\n\n")
PY
	"$INGEN" kb add "$run/kb" -d "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$C_DB" >/dev/null
	"${PSQL_OWNER[@]}" -c "VACUUM ANALYZE kb_chunks"
	echo "# local knowledge base: $("${PSQL_OWNER[@]}" -c "SELECT count(*) FROM kb_chunks") chunks;" \
		"the query \"$KB_QUERY\" has every word in" \
		"$("${PSQL_OWNER[@]}" -c "SELECT count(*) FROM kb_chunks WHERE tsv @@ websearch_to_tsquery('english', \$q\$$KB_QUERY\$q\$)")," \
		"some in $("${PSQL_OWNER[@]}" -c "SELECT count(*) FROM kb_chunks WHERE tsv @@ replace(websearch_to_tsquery('english', \$q\$$KB_QUERY\$q\$)::text, ' & ', ' | ')::tsquery")"
fi
(cd "$run" && exec env "${KB_ENV[@]}" \
	INGENIOUS_MODELS__0__BASE_URL="http://127.0.0.1:$FAKE_AZURE_PORT" \
	INGENIOUS_MODELS__0__API_KEY="$AZURE_API_KEY" \
	INGENIOUS_MODELS__0__DEPLOYMENT="$AZURE_DEPLOYMENT" \
	INGENIOUS_MODELS__0__MODEL=gpt-4o \
	INGENIOUS_MODELS__0__API_VERSION="$AZURE_API_VERSION" \
	INGENIOUS_LOGGING__ACCESS_LOG=false \
	INGENIOUS_CHAT_HISTORY__DATABASE_URL="$SERVER_CONNINFO" \
	INGENIOUS_SERVER__STATE_DIR="$run/state" \
	INGENIOUS_FLOW_PATH="$run/flows" \
	"$INGEN" serve --host 127.0.0.1 --port "$PORT" --pidfile "$run/ingen.pid" > "$run/ingen.log" 2>&1) &
for ((i = 0; i < 100; i++)); do
	curl -sf "http://127.0.0.1:$PORT/api/v1/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
BASE="http://127.0.0.1:$PORT"
body() {
	if [ "$1" = knowledge-base-agent ]; then
		jq -cn --arg q "$KB_QUERY" --arg f "$1" '{user_prompt: $q, conversation_flow: $f}'
	else
		printf '{"user_prompt":"Summarise the benefits of event-driven servers in two sentences.","conversation_flow":"%s"}' "$1"
	fi
}
for f in classification-agent "$OTHER"; do
	r=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "$(body "$f")" "$BASE/api/v1/chat") ||
		{ echo "plugin.sh: the first $f request failed" >&2; tail -20 "$run/ingen.log" >&2; exit 1; }
	[ "$(jq -r .memory_summary <<<"$r")" != null ] || { echo "plugin.sh: $f answered $r" >&2; exit 1; }
done
echo "# plugin.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC'): $("$INGEN" version 2>&1 | head -1); latency ${LAT} ms," \
	"$CONNS connections, ${WARM}s + ${DUR}s, $ROUNDS rounds each, alternating; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the loads, alternating ---------------------------------------------------------------
getv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
declare -A RPS CPU
for ((r = 1; r <= ROUNDS; r++)); do
	# ABBA: the order alternates, so what grows over the run (tables, caches) hits both
	if ((r % 2)); then order="classification-agent $OTHER"
	else order="$OTHER classification-agent"; fi
	for f in $order; do
		line=$("$RIG/load.sh" "$BASE" --auth none --latency "$LAT" --conns "$CONNS" --duration "$DUR" \
			--warmup "$WARM" --body "$(body "$f")" --pidfile "$run/ingen.pid" --label "$f" 2>>"$run/load.err") ||
			line="RESULT label=$f error=load_failed"
		echo "$line round=$r loadavg1=$(cut -d' ' -f1 /proc/loadavg)"
		RPS[$f]="${RPS[$f]:-} $(getv rps "$line")"
		CPU[$f]="${CPU[$f]:-} $(getv srv_cpu_ms_per_req "$line")"
	done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
b=$(median "${RPS[classification-agent]}")
p=$(median "${RPS[$OTHER]}")
bc=$(median "${CPU[classification-agent]}")
pc=$(median "${CPU[$OTHER]}")
if [ "$FLOW" = plugin ]; then target="req/s within 0.95-1.05"; else target="req/s >= 0.80"; fi
awk -v b="$b" -v p="$p" -v bc="$bc" -v pc="$pc" -v o="$OTHER" -v tg="$target" 'BEGIN {
	printf "built-in classification-agent: median %.1f req/s, %.3f ms server CPU per turn\n", b, bc
	printf "%-30s median %.1f req/s, %.3f ms server CPU per turn\n", o ":", p, pc
	printf "%s/classification-agent: req/s %.3f, CPU per turn %.3f (target: %s)\n", o, (b > 0 ? p / b : 0), (bc > 0 ? pc / bc : 0), tg }'
n=$(grep -c "level=error" "$run/ingen.log" || true)
echo "# ingen.log: $n error lines"
