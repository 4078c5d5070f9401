#!/usr/bin/env bash
# bench/chat.sh -- chat turns per second with their writes (POST /api/v1/chat
# on `ingen serve`, 2 workers) next to the database's own ceiling for THE SAME
# WRITES (pgbench running bench/turn.sql), in the same run, on the shared load
# rig of ../shared/bench (fake Azure OpenAI nginx, PostgreSQL cluster, load.sh).
#
#   bench/chat.sh [--duration S] [--warmup S] [--rounds N] [--conns "64 256"]
#                 [--latencies "0 50"] [--workers N] [--pool-size N] [--port P]
#                 [--no-limit] [--max-others PCT]
#
# Owns: the ingen server it starts (stopped by its pid file), the tables of
# database ingenious_c on the rig's cluster (truncated at start), and the rig
# services it had to start (stopped with the rig's own stop scripts).  Never
# stops a rig service it did not start, never kills by name, never listens
# anywhere but 127.0.0.1.  Every wrk or pgbench run lasts <= 20 s; the default
# run takes 4-5 minutes (a few runs disturbed by other work are repeated).
#
# Prints RESULT lines (load.sh's for the chat loads, kind=turn for pgbench
# running bench/turn.sql, label=db-limit for the rig's pg/limit.sh), a row
# check, and a table of medians with the ratio chat req/s / pgbench tps
# (target of issue 3: >= 0.80 where the database is the bound, i.e. at 0 ms
# upstream latency).  See bench/README.md for what each number means.
#
# Environment: INGEN (default <project>/_build/ingen; built in /tmp/b-bench if
# missing), BENCH_RIG (default <project>/../shared/bench), BENCH_RUN (the
# rig's state directory, default /tmp/ingenious-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
RIG=${BENCH_RIG:-$(cd "$top/.." && pwd)/shared/bench}
INGEN=${INGEN:-$top/_build/ingen}
DUR=8 WARM=2 ROUNDS=3 CONNS="64 256" LATS="0 50" WORKERS=2 POOL=4 PORT=${CHAT_PORT:-18711} LIMIT=1
MAX_OTHERS=15 BUDGET=200
usage() { sed -n '7,9p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DUR=$2; shift 2;;
	--warmup) WARM=$2; shift 2;;
	--rounds) ROUNDS=$2; shift 2;;
	--conns) CONNS=$2; shift 2;;
	--latencies) LATS=$2; shift 2;;
	--workers) WORKERS=$2; shift 2;;
	--pool-size) POOL=$2; shift 2;;
	--port) PORT=$2; shift 2;;
	--no-limit) LIMIT=0; shift;;
	--max-others) MAX_OTHERS=$2; shift 2;;
	*) usage;;
	esac
done
[ $((DUR + WARM)) -le 20 ] || { echo "chat.sh: warmup + duration must be <= 20 s" >&2; exit 2; }

[ -f "$RIG/lib/common.sh" ] || { echo "chat.sh: the load rig is not at $RIG (set BENCH_RIG)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$RIG/lib/common.sh"
for c in wrk pgbench psql jq curl runuser pg_ctl initdb "$NGINX_BIN" "$PY"; do
	command -v "$c" >/dev/null || { echo "chat.sh: $c not found: run $RIG/install-deps.sh once" >&2; exit 1; }
done
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] ||
	{ echo "chat.sh: nginx echo module missing: run $RIG/install-deps.sh once" >&2; exit 1; }

if [ ! -x "$INGEN" ]; then
	echo "# $INGEN not built: building in /tmp/b-bench" >&2
	mkdir -p /tmp/b-bench
	(cd /tmp/b-bench && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j"$(nproc)" ingen) >&2
	INGEN=/tmp/b-bench/ingen
fi

PG_DATA="$BENCH_RUN/pg/data"
C_DB=ingenious_c
SERVER_CONNINFO="host=127.0.0.1 port=$PG_PORT user=ingenious_app dbname=$C_DB"
PSQL_SU=(psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres)
PSQL_OWNER=(psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$C_DB")
TURN_USER=pgbench_turn_usr   # pgbench's rows: as long as the server's "unspecified_user"
run=$(mktemp -d /tmp/ingen-chat-bench-XXXXXX)
RES="$run/results"
: > "$RES"

# ---- the rig: start what is not running, remember it ---------------------------------
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
	echo "# fake-azure: already running, left as is (its delay is restored to $LAT_BEFORE ms)" >&2
else
	"$RIG/fake-azure/start.sh" >&2; STARTED+=(fake-azure)
fi
if pg_running; then echo "# pg: already running, left as is" >&2; else "$RIG/pg/start.sh" >&2; STARTED+=(pg); fi

# ---- the database: roles (as the cluster's superuser), schema (as bench), empty -------
# The migrations create the roles ingenious_app/_readonly/_sqlagent only when
# the migrating role may; `bench` may not (no CREATEROLE), so the superuser
# creates them first over the rig's local socket, as docs/dba.md tells a DBA,
# and lets ingenious_app log in (trust auth: the rig is loopback-only).
"${PSQL_SU[@]}" -d postgres >/dev/null <<'SQL'
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
ALTER ROLE ingenious_sqlagent SET default_transaction_read_only = on;
ALTER ROLE ingenious_sqlagent SET statement_timeout = '5s';
ALTER ROLE ingenious_sqlagent SET search_path = agent_data;
SQL
"$INGEN" db migrate -d "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$C_DB" 2>&1 |
	grep -v 'level=info' >&2 || true
"$INGEN" db status -d "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$C_DB" >/dev/null ||
	{ echo "chat.sh: the schema of $C_DB is not up to date" >&2; exit 1; }
"${PSQL_OWNER[@]}" -c "TRUNCATE threads, messages, memory_summaries, llm_usage, idempotency_keys RESTART IDENTITY"
MAXCONN=$("${PSQL_OWNER[@]}" -c "SHOW max_connections")

# ---- the server ------------------------------------------------------------------------
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
	echo "chat.sh: 127.0.0.1:$PORT is in use (--port)" >&2; exit 1
fi
mkdir -p "$run/state"
(cd "$run" && exec env \
	INGENIOUS_MODELS__0__BASE_URL="http://127.0.0.1:$FAKE_AZURE_PORT" \
	INGENIOUS_MODELS__0__API_KEY="$AZURE_API_KEY" \
	INGENIOUS_MODELS__0__DEPLOYMENT="$AZURE_DEPLOYMENT" \
	INGENIOUS_MODELS__0__MODEL=gpt-4o \
	INGENIOUS_MODELS__0__API_VERSION="$AZURE_API_VERSION" \
	INGENIOUS_LOGGING__ACCESS_LOG=false \
	INGENIOUS_CHAT_HISTORY__DATABASE_URL="$SERVER_CONNINFO" \
	INGENIOUS_CHAT_HISTORY__POOL_SIZE="$POOL" \
	INGENIOUS_SERVER__STATE_DIR="$run/state" \
	"$INGEN" serve --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
	--pidfile "$run/ingen.pid" > "$run/ingen.log" 2>&1) &
for ((i = 0; i < 100; i++)); do
	curl -sf "http://127.0.0.1:$PORT/api/v1/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/api/v1/ready" >/dev/null 2>&1 ||
	{ echo "chat.sh: ingen did not become ready" >&2; cat "$run/ingen.log" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"

# the values of one turn, for pgbench: the same prompt, reply, summary, names
BODY='{"user_prompt":"Summarise the benefits of event-driven servers in two sentences.","conversation_flow":"classification-agent"}'
PROMPT=$(jq -r .user_prompt <<<"$BODY")
REPLY=$(jq -r '.choices[0].message.content' "$RIG/fake-azure/response.json")
SUMMARY="Classified message: ${PROMPT:0:50}..."   # flows/classification_agent.c
first=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "$BODY" "$BASE/api/v1/chat") ||
	{ echo "chat.sh: the first chat request failed" >&2; tail -5 "$run/ingen.log" >&2; exit 1; }
[ "$(jq -r .agent_response <<<"$first")" = "$REPLY" ] ||
	{ echo "chat.sh: the reply is not the fake Azure completion" >&2; exit 1; }
[ "$(jq -r .memory_summary <<<"$first")" = "$SUMMARY" ] ||
	{ echo "chat.sh: memory_summary differs from what bench/turn.sql writes" >&2; exit 1; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
master=$(cat "$run/ingen.pid")
workers=$(cat "/proc/$master/task/$master/children")
{
	echo "# chat.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) mem=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
	     "cpu=\"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)\" kernel=$(uname -r)"
	echo "# versions: $("$INGEN" version 2>&1 | head -1); $(postgres --version);" \
	     "$(pgbench --version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $("$NGINX_BIN" -v 2>&1 | sed 's/.*: //')"
	echo "# settings: ingen $WORKERS workers, pool_size $POOL (=$((WORKERS * POOL)) db connections), access log off;" \
	     "latencies=[$LATS] conns=[$CONNS] ${WARM}s warm-up + ${DUR}s, $ROUNDS rounds; db max_connections=$MAXCONN"
	echo "# ingen idle RSS: master $(rss_kb "$master") kB; workers: $(for w in $workers; do printf '%s kB ' "$(rss_kb "$w")"; done)"
	echo "# load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$RES"

# ---- one measurement of each kind --------------------------------------------------------
# While a load runs, bench/hostmon.py samples the CPU of four process trees: the
# server (srv), the PostgreSQL cluster (db), the fake Azure nginx (upstream) and
# this script's own children (bench: wrk or pgbench, load.sh, the samplers), and
# what OTHER work on the machine took (others_pct).
mon_start() {
	"$PY" "$here/hostmon.py" --tree "srv=$run/ingen.pid" --tree "db=$PG_DATA/postmaster.pid" \
		--tree "upstream=$BENCH_RUN/fake-azure/nginx.pid" --tree "bench=pid:$$" > "$run/hostmon" &
	HOSTMON=$!
}
mon_stop() {   # mon_stop TURNS: sets MON (key=value pairs, CPU per turn) and OTHERS_PCT
	local h
	kill -TERM "$HOSTMON" 2>/dev/null || true
	wait "$HOSTMON" 2>/dev/null || true
	h=$(sed -n 's/^HOSTMON //p' "$run/hostmon")
	OTHERS_PCT=$(getv others_pct "$h")
	MON=$(awk -v h="$h" -v n="$1" 'BEGIN {
		split(h, f, " "); for (i in f) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
		printf "host_pct=%s ours_pct=%s others_pct=%s", v["host_busy_pct"], v["ours_pct"], v["others_pct"]
		split("db bench upstream", t, " ")
		for (i = 1; i <= 3; i++)
			printf " %s_cpu_ms_per_turn=%s", t[i], (n > 0 ? sprintf("%.3f", 1000 * v[t[i] "_cpu_s"] / n) : "nan")
	}')
}
# keep LINE: record a result; a run during which other work took more than
# MAX_OTHERS % of the machine is marked kept=0 and the caller repeats it (once,
# while the run is within its time budget)
RETRY=0
keep() {
	if [ "${OTHERS_PCT:-0}" -gt "$MAX_OTHERS" ] && [ "$RETRY" = 0 ] && [ "$SECONDS" -lt "$BUDGET" ]; then
		echo "$1 kept=0" | tee -a "$RES"
		echo "# other work took ${OTHERS_PCT}% of the machine during that run: repeating it" | tee -a "$RES"
		RETRY=1
	else
		echo "$1 kept=1" | tee -a "$RES"
		RETRY=0
	fi
}
measure() {   # measure FUNCTION ARGS...: run it, and once more if keep() asked for it
	"$@"
	[ "$RETRY" = 1 ] && "$@"
	RETRY=0
}
getv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

chat_load() {   # chat_load LATENCY CONNS ROUND
	local line n w
	mon_start
	line=$("$RIG/load.sh" "$BASE" --auth none --latency "$1" --conns "$2" --duration "$DUR" \
		--warmup "$WARM" --body "$BODY" --pidfile "$run/ingen.pid" --label c-chat 2>>"$run/load.err") ||
		line="RESULT label=c-chat url=$BASE latency_ms=$1 conns=$2 error=load_failed"
	# hostmon's window covers the probe, the warm-up and the measured run
	n=$(getv requests "$line"); w=$(getv warm_requests "$line")
	n=$(( ${n:-0} + ${w:-0} + 1 ))
	mon_stop "$n"
	keep "$line $MON loadavg1=$(cut -d' ' -f1 /proc/loadavg) kind=chat round=$3"
}

# db_slots: connections pgbench may open now (max_connections less the reserved
# ones and those in use, less 4), after the backends of an earlier pgbench exited
db_slots() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$("${PSQL_SU[@]}" -d postgres -tAc "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'pgbench'")" = 0 ] && break
		sleep 0.1
	done
	"${PSQL_SU[@]}" -d postgres -tAc "SELECT current_setting('max_connections')::int
		- current_setting('superuser_reserved_connections')::int - count(*) - 4
		FROM pg_stat_activity WHERE backend_type = 'client backend'"
}
turn_bench() {   # turn_bench CONNS ROUND: pgbench running bench/turn.sql
	local clients=$1 cap out tps lat n failed
	cap=$(db_slots)
	[ "$clients" -gt "$cap" ] && clients=$cap
	mon_start
	out=$(timeout $((DUR + 15)) pgbench -n -M prepared -h 127.0.0.1 -p "$PG_PORT" -U ingenious_app \
		-c "$clients" -j 2 -T "$DUR" -f "$here/turn.sql" \
		-D "prompt=$PROMPT" -D "reply=$REPLY" -D "summary=$SUMMARY" -D "user_id=$TURN_USER" \
		-D flow=classification_agent -D model=gpt-4o -D "deployment=$AZURE_DEPLOYMENT" \
		-D "latency_ms=0" "$C_DB" 2>&1) || true
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out" | head -1)
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -1)
	mon_stop "${n:-0}"
	if [ -z "$tps" ]; then
		echo "$out" | tail -5 >&2
		keep "RESULT label=db-turn conns=$1 clients=$clients error=pgbench_failed kind=turn round=$2"
		return
	fi
	keep "RESULT label=db-turn conns=$1 clients=$clients duration_s=$DUR turns=$n failed=${failed:-0}\
 tps=$tps latency_avg_ms=$lat $MON loadavg1=$(cut -d' ' -f1 /proc/loadavg) kind=turn round=$2"
}

# ---- the runs: for each round and connection count, the chat loads and pgbench, -------
# ---- in an order that rotates each round ------------------------------------------------
for ((r = 1; r <= ROUNDS; r++)); do
	for c in $CONNS; do
		items=()
		for l in $LATS; do items+=("chat $l"); done
		items+=("turn")
		n=${#items[@]}
		for ((k = 0; k < n; k++)); do
			it=${items[$(((k + r - 1) % n))]}
			case $it in
			chat*) measure chat_load "${it#chat }" "$c" "$r";;
			turn) measure turn_bench "$c" "$r";;
			esac
		done
	done
	# the pool the server really has: pgbench with as many clients as its db connections
	measure turn_bench $((WORKERS * POOL)) "$r"
done
if [ "$LIMIT" = 1 ]; then
	for c in $CONNS; do
		cl=$c; slots=$(db_slots); [ "$cl" -gt "$slots" ] && cl=$slots
		line=$("$RIG/pg/limit.sh" --conns "$cl" --duration "$DUR" 2>&1 | grep '^RESULT') ||
			line="RESULT label=db-limit conns=$cl error=limit_failed"
		echo "$line kind=limit" | tee -a "$RES"
	done
fi

# ---- rows: 2 messages, 1 usage row, 1 thread, 1 summary per 2xx -------------------------
count_rows() {
	"${PSQL_OWNER[@]}" -F' ' -c "SELECT
		(SELECT count(*) FROM messages WHERE user_id = '$1'),
		(SELECT count(*) FROM llm_usage WHERE user_id = '$1'),
		(SELECT count(*) FROM llm_usage WHERE user_id = '$1' AND message_id IS NULL),
		(SELECT count(*) FROM threads WHERE owner = '$1'),
		(SELECT count(*) FROM threads WHERE owner = '$1' AND last_seq <> 2),
		(SELECT count(*) FROM memory_summaries WHERE user_id = '$1'),
		(SELECT count(*) FROM llm_usage u WHERE user_id = '$1' AND message_id IS NULL
		    AND EXISTS (SELECT 1 FROM threads t WHERE t.id = u.thread_id))"
}
prev=""
for ((i = 0; i < 50; i++)); do   # let requests in flight when wrk stopped commit
	now=$(count_rows unspecified_user)
	[ "$now" = "$prev" ] && break
	prev=$now; sleep 0.3
done
# A turn in flight when wrk stops loses its client: its model call is stopped
# (or has returned) and the turn does not commit, so its usage row is written
# unlinked (docs/reliability.md, "Client disconnect"), with no thread.  Such
# rows are at most the turns in flight; every other turn is whole.
read -r msg use unlinked thr badseq summ orphan <<<"$now"
read -r ok slack < <(awk '/^RESULT / && / kind=chat / {
	delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	ok += v["requests"] - v["non2xx"] + v["warm_requests"] + (v["probe"] == "200");
	slack += 2 * v["conns"] } END { print ok + 1, slack + 0 }' "$RES")   # + 1: the first request
linked=$((use - unlinked))
verdict=MISMATCH
[ "$msg" = $((2 * linked)) ] && [ "$thr" = "$linked" ] && [ "$summ" = "$linked" ] && [ "$orphan" = 0 ] &&
	[ "$badseq" = 0 ] && [ "$linked" -ge "$ok" ] && [ "$linked" -le $((ok + slack)) ] &&
	[ "$((linked + unlinked))" -le $((ok + slack)) ] && verdict=OK
echo "ROWS server: messages=$msg llm_usage=$use unlinked_usage=$unlinked (of turns not committed, client gone;" \
	"with a thread: $orphan) threads=$thr threads_not_2=$badseq memory_summaries=$summ;" \
	"2xx counted by wrk (incl. warm-up, probes): $ok; in-flight bound: $slack: $verdict" | tee -a "$RES"
read -r msg use unlinked thr badseq summ orphan <<<"$(count_rows "$TURN_USER")"
pn=$(awk '/ kind=turn / { for (i = 2; i <= NF; i++) if ($i ~ /^turns=/) { split($i, kv, "="); n += kv[2] } } END { print n + 0 }' "$RES")
verdict=MISMATCH
[ "$msg" = $((2 * use)) ] && [ "$thr" = "$use" ] && [ "$summ" = "$use" ] && [ "$unlinked" = 0 ] &&
	[ "$badseq" = 0 ] && [ "$use" -ge "$pn" ] && verdict=OK
echo "ROWS pgbench: messages=$msg llm_usage=$use unlinked_usage=$unlinked threads=$thr threads_not_2=$badseq" \
	"memory_summaries=$summ; turns counted by pgbench: $pn: $verdict" | tee -a "$RES"
echo "# load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES"
grep -q 'level=error' "$run/ingen.log" && { echo "# server errors logged:"; grep 'level=error' "$run/ingen.log" | sort | uniq -c | sort -rn | head -5; }

# ---- the table ----------------------------------------------------------------------------
echo
echo "# medians over the kept runs of $ROUNDS rounds; req/s and tps: median (min-max); cpu: ms per turn"
echo "# (srv: ingen, db: the PostgreSQL cluster, client: wrk or pgbench with the bench's samplers);"
echo "# ratio = chat req/s / pgbench tps with the same connection count (pgbench clients capped at"
echo "# max_connections); bound = connections / upstream latency (Little's law) where latency > 0"
awk -v lats="$LATS" -v conns="$CONNS" -v pool=$((WORKERS * POOL)) '
function med(s,   a, n, i, j, t) {
	n = split(s, a, " "); if (n == 0) return "nan"
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return a[int((n + 1) / 2)] }
function mm(s,   a, n, i, lo, hi) {
	n = split(s, a, " "); lo = hi = a[1] + 0
	for (i = 2; i <= n; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
	return sprintf("%.0f-%.0f", lo, hi) }
function mx(s,   a, n, i, m) { n = split(s, a, " "); m = 0; for (i = 1; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
/^RESULT / {
	delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (v["error"] != "" || v["kept"] == "0") next
	if (v["kind"] == "chat") {
		k = v["latency_ms"] " " v["conns"]
		rps[k] = rps[k] " " v["rps"]; p50[k] = p50[k] " " v["p50_ms"]; p99[k] = p99[k] " " v["p99_ms"]
		rss[k] = rss[k] " " v["rss_peak_mb"]; cpu[k] = cpu[k] " " v["srv_cpu_ms_per_req"]
		dbc[k] = dbc[k] " " v["db_cpu_ms_per_turn"]; clc[k] = clc[k] " " v["bench_cpu_ms_per_turn"]
		oth[k] = oth[k] " " v["others_pct"]; bad[k] += v["non2xx"]
		split(v["sock_err"], se, "/"); serr[k] += se[1] + se[2] + se[3] + se[4]
	} else if (v["kind"] == "turn") {
		c = v["conns"]; tps[c] = tps[c] " " v["tps"]; cl[c] = v["clients"]
		tdb[c] = tdb[c] " " v["db_cpu_ms_per_turn"]; tcl[c] = tcl[c] " " v["bench_cpu_ms_per_turn"]
		toth[c] = toth[c] " " v["others_pct"]
	} else if (v["kind"] == "limit") {
		lim[v["conns"]] = v["tps"]
	}
}
END {
	printf "%-7s %-5s %-16s %-7s %-7s %-4s %-6s %-6s %-6s %-6s %-5s | %-16s %-7s %-6s %-6s %-5s | %-5s %s\n",
	    "latency", "conns", "chat_req/s", "p50_ms", "p99_ms", "err", "rss_MB", "srv", "db", "client", "oth%",
	    "pgbench_tps", "clients", "db", "client", "oth%", "ratio", "bound"
	best = 0
	for (c in tps) if (med(tps[c]) + 0 > best) { best = med(tps[c]) + 0; bestc = cl[c] }
	nl = split(lats, L, " "); nc = split(conns, C, " ")
	for (i = 1; i <= nl; i++) for (j = 1; j <= nc; j++) {
		k = L[i] " " C[j]; if (rps[k] == "") continue
		r = med(rps[k]); t = med(tps[C[j]])
		bound = L[i] > 0 ? sprintf("%.0f", C[j] * 1000 / L[i]) : "-"
		printf "%-7s %-5s %-16s %-7.1f %-7.1f %-4d %-6.1f %-6.3f %-6.3f %-6.3f %-5.0f | %-16s %-7s %-6.3f %-6.3f %-5.0f | %-5.2f %s\n",
		    L[i] "ms", C[j], sprintf("%.0f (%s)", r, mm(rps[k])), med(p50[k]), med(p99[k]), bad[k] + serr[k],
		    mx(rss[k]), med(cpu[k]), med(dbc[k]), med(clc[k]), med(oth[k]),
		    sprintf("%.0f (%s)", t, mm(tps[C[j]])), cl[C[j]], med(tdb[C[j]]), med(tcl[C[j]]), med(toth[C[j]]),
		    (t > 0 ? r / t : 0), bound
		out = out sprintf(" %s/%s: %.2f", L[i] "ms", C[j], (best > 0 ? r / best : 0))
	}
	if (tps[pool] != "")
		printf "pgbench with the server'\''s %d db connections: %.0f tps (%s), cpu ms/turn db %.3f client %.3f\n",
		    pool, med(tps[pool]), mm(tps[pool]), med(tdb[pool]), med(tcl[pool])
	for (c in lim) printf "pg/limit.sh (the rig'\''s 1-transaction, 3-row turn) at %s clients: %.0f tps\n", c, lim[c]
	printf "the database'\''s best: %.0f tps (pgbench, %s clients); chat req/s / that:%s\n", best, bestc, out
	printf "target (issue 3): ratio >= 0.80 at 0 ms latency, where the write path is the bound\n"
}' "$RES"
