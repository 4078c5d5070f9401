#!/usr/bin/env bash
# bench/slow.sh -- chat turns against SLOW upstreams (issue 17): how many turns
# `ingen serve` holds in flight with its DEFAULT configuration when the model
# takes 0.5 s, 5 s or a 30 s stream, and whether it collapses under overload,
# next to the rig's Python peer and nginx proxy in the same run, on the shared
# load rig of ../shared/bench (fake Azure nginx, PostgreSQL cluster, peer, proxy).
#
#   bench/slow.sh [--cases "A B C D"] [--duration S] [--warmup S] [--no-peer]
#                 [--no-proxy] [--port P] [--db-ceiling TPS] [--limit N]
#                 [--max-conns N]
#
#   A  fake Azure at 500 ms, 2,000 connections, POST /api/v1/chat
#   B  fake Azure at 5 s, 4,000 connections
#   C  a 30 s streamed answer, 2,000 connections: ingen POST /api/v1/chat/stream
#      against the simulator (ingen-azure-sim --latency-ms 30000); the peer and
#      the proxy, which have no stream route, POST /api/v1/chat with the fake
#      Azure at 30 s
#   D  overload at 500 ms: first the server's admitted-turn limit in
#      connections (capacity), then twice that (overload)
#
# Owns: the ingen servers and the simulator it starts (stopped by their pid
# files), the tables of database ingenious_c on the rig's cluster (truncated at
# start), and the rig services it had to start (stopped with the rig's own
# stop scripts).  Never stops a rig service it did not start, never kills by
# name, never listens anywhere but 127.0.0.1.  Every wrk run lasts <= 20 s
# (its warm-up included).  The server runs with its default configuration:
# only the upstream, the database, the port, the state directory and the
# access log (off, as in chat.sh) are set.
#
# Prints one RESULT line per load (load.sh's keys, plus ok_rps, target_rps,
# pct, s503, s503_ra, timeouts, up_conns_*), the limits it found, and a table.
# See bench/README.md ("Slow upstreams") for what each number means.
#
# Environment: INGEN (default <project>/_build/ingen; built in /tmp/b-bench if
# missing), INGEN_SIM (default: ingen-azure-sim next to INGEN), BENCH_RIG
# (default <project>/../shared/bench, or that of the main checkout for a git
# worktree), BENCH_RUN (the rig's state directory,
# default /tmp/ingenious-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
RIG=${BENCH_RIG:-$(cd "$top/.." && pwd)/shared/bench}
if [ -z "${BENCH_RIG:-}" ] && [ ! -d "$RIG" ]; then   # a git worktree: next to the main checkout
	common=$(git -C "$top" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
	[ -n "$common" ] && [ -d "$common/../../shared/bench" ] && RIG=$(cd "$common/../../shared/bench" && pwd)
fi
INGEN=${INGEN:-$top/_build/ingen}
CASES="A B C D" DUR=10 WARM=2 PEER=1 PROXY=1 PORT=${SLOW_PORT:-18721} DB_CEIL=2500 LIMIT="" MAX_CONNS=8000
MAX_RUN_S=20                 # the rig's bound for one load, warm-up included
STREAM_MS=30000              # case C: the length of the streamed answer
DRAIN_MAX_S=60               # before a load, wait at most this for ingen's last turns to end
usage() { sed -n '8,10p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--cases) CASES=$2; shift 2;;
	--duration) DUR=$2; shift 2;;
	--warmup) WARM=$2; shift 2;;
	--no-peer) PEER=0; shift;;
	--no-proxy) PROXY=0; shift;;
	--port) PORT=$2; shift 2;;
	--db-ceiling) DB_CEIL=$2; shift 2;;
	--limit) LIMIT=$2; shift 2;;
	--max-conns) MAX_CONNS=$2; shift 2;;
	*) usage;;
	esac
done
for v in DUR WARM PORT DB_CEIL MAX_CONNS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "slow.sh: ${v,,} must be a whole number" >&2; exit 2; }
done
[ -z "$LIMIT" ] || [[ $LIMIT =~ ^[1-9][0-9]*$ ]] || { echo "slow.sh: --limit must be a positive number" >&2; exit 2; }
[ "$DUR" -ge 1 ] && [ $((DUR + WARM)) -le "$MAX_RUN_S" ] ||
	{ echo "slow.sh: warmup + duration must be <= $MAX_RUN_S s, duration >= 1" >&2; exit 2; }
for c in $CASES; do
	case $c in A|B|C|D) ;; *) echo "slow.sh: unknown case $c (A B C D)" >&2; exit 2;; esac
done

[ -f "$RIG/lib/common.sh" ] || { echo "slow.sh: the load rig is not at $RIG (set BENCH_RIG)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$RIG/lib/common.sh"
for c in wrk psql jq curl pg_ctl "$NGINX_BIN" "$PY"; do
	command -v "$c" >/dev/null || { echo "slow.sh: $c not found: run $RIG/install-deps.sh once" >&2; exit 1; }
done
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] ||
	{ echo "slow.sh: nginx echo module missing: run $RIG/install-deps.sh once" >&2; exit 1; }

if [ ! -x "$INGEN" ]; then
	echo "# $INGEN not built: building in /tmp/b-bench" >&2
	mkdir -p /tmp/b-bench
	(cd /tmp/b-bench && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j"$(nproc)" ingen ingen-azure-sim) >&2
	INGEN=/tmp/b-bench/ingen
fi
SIM=${INGEN_SIM:-$(dirname "$INGEN")/ingen-azure-sim}
case " $CASES " in *" C "*) [ -x "$SIM" ] || { echo "slow.sh: $SIM not built (case C needs it)" >&2; exit 1; };; esac

# ---- open files: wrk needs one per connection, the servers two (client + upstream) ----
BIGGEST=2000
case " $CASES " in *" B "*) BIGGEST=4000;; esac
case " $CASES " in *" D "*) [ "$MAX_CONNS" -gt "$BIGGEST" ] && BIGGEST=$MAX_CONNS;; esac
NEED_FDS=$((2 * BIGGEST + 1024))
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$NEED_FDS" ]; then
	echo "# open-file hard limit $HARD < $NEED_FDS: the largest loads may fail to connect" >&2
	ulimit -n "$HARD"
else
	[ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NEED_FDS" ] && ulimit -n "$NEED_FDS"
fi

PG_DATA="$BENCH_RUN/pg/data"
C_DB=ingenious_c
SERVER_CONNINFO="host=127.0.0.1 port=$PG_PORT user=ingenious_app dbname=$C_DB"
PSQL_SU=(psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres)
PSQL_OWNER=(psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$C_DB")
run=$(mktemp -d /tmp/ingen-slow-bench-XXXXXX)
RES="$run/results"
: > "$RES"

# ---- the rig: start what is not running, remember it ---------------------------------
STARTED=()
LAT_BEFORE=""
WORKER_PIDS=()
# stop_ingen PIDFILE [now]: SIGTERM (graceful: it waits for its turns up to
# server.shutdown_timeout; with `now`, for half a second only), a second SIGTERM
# ("now") if it is still there, then SIGKILL; then any of its workers still there, by
# the pids recorded at its start (and only if their command line names PIDFILE)
stop_ingen() {
	local pf=$1 pid i w grace=350
	[ "${2:-}" = now ] && grace=5
	[ -s "$pf" ] || return 0
	pid=$(cat "$pf")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	for w in ${WORKER_PIDS[@]+"${WORKER_PIDS[@]}"}; do   # a worker left behind: still ours?
		if { tr '\0' ' ' < "/proc/$w/cmdline"; } 2>/dev/null | grep -qF -- "--pidfile $pf"; then
			kill -KILL "$w" 2>/dev/null || true
		fi
	done
	rm -f "$pf"
}
cleanup() {
	local i
	for i in ${MONPIDS:-} ${DELAY_CHECK:-}; do kill -TERM "$i" 2>/dev/null || true; done
	stop_ingen "$run/ingen-sim.pid"
	stop_ingen "$run/ingen.pid"
	[ -s "$run/sim.pid" ] && stop_pidfile "$run/sim.pid" 10
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
if [ "$PEER" = 1 ]; then
	if pid_alive "$BENCH_RUN/peer-python/gunicorn.pid"; then echo "# peer-python: already running, left as is" >&2
	else "$RIG/peer-python/start.sh" >&2; STARTED+=(peer-python); fi
fi
if [ "$PROXY" = 1 ]; then
	if pid_alive "$BENCH_RUN/nginx-proxy/nginx.pid"; then echo "# nginx-proxy: already running, left as is" >&2
	else "$RIG/nginx-proxy/start.sh" >&2; STARTED+=(nginx-proxy); fi
fi

# ---- the database: roles (as the cluster's superuser), schema (as bench), empty -------
# (as bench/chat.sh: the migrating role `bench` may not create roles)
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
	{ echo "slow.sh: the schema of $C_DB is not up to date" >&2; exit 1; }
"${PSQL_OWNER[@]}" -c "TRUNCATE threads, messages, memory_summaries, llm_usage, idempotency_keys RESTART IDENTITY"
MAXCONN=$("${PSQL_OWNER[@]}" -c "SHOW max_connections")

# ---- the servers under test ----------------------------------------------------------
# start_ingen NAME PORT BASE_URL: `ingen serve` with its defaults, pointed at BASE_URL
start_ingen() {
	local name=$1 port=$2 url=$3 i
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "slow.sh: 127.0.0.1:$port is in use (--port)" >&2; exit 1
	fi
	mkdir -p "$run/state-$name"
	(cd "$run" && exec env \
		INGENIOUS_MODELS__0__BASE_URL="$url" \
		INGENIOUS_MODELS__0__API_KEY="$AZURE_API_KEY" \
		INGENIOUS_MODELS__0__DEPLOYMENT="$AZURE_DEPLOYMENT" \
		INGENIOUS_MODELS__0__MODEL=gpt-4o \
		INGENIOUS_MODELS__0__API_VERSION="$AZURE_API_VERSION" \
		INGENIOUS_LOGGING__ACCESS_LOG=false \
		INGENIOUS_CHAT_HISTORY__DATABASE_URL="$SERVER_CONNINFO" \
		INGENIOUS_SERVER__STATE_DIR="$run/state-$name" \
		"$INGEN" serve --host 127.0.0.1 --port "$port" \
		--pidfile "$run/$name.pid" > "$run/$name.log" 2>&1) &
	for ((i = 0; i < 100; i++)); do
		curl -sf "http://127.0.0.1:$port/api/v1/ready" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -sf "http://127.0.0.1:$port/api/v1/ready" >/dev/null 2>&1 ||
		{ echo "slow.sh: ingen ($name) did not become ready" >&2; cat "$run/$name.log" >&2; exit 1; }
	for i in $(cat "/proc/$(cat "$run/$name.pid")/task/"*/children 2>/dev/null); do WORKER_PIDS+=("$i"); done
}
BODY='{"user_prompt":"Summarise the benefits of event-driven servers in two sentences.","conversation_flow":"classification-agent"}'
"$RIG/fake-azure/set-latency.sh" 0 >&2
start_ingen ingen "$PORT" "http://127.0.0.1:$FAKE_AZURE_PORT"
BASE="http://127.0.0.1:$PORT"
REPLY=$(jq -r '.choices[0].message.content' "$RIG/fake-azure/response.json")
first=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary "$BODY" "$BASE/api/v1/chat") ||
	{ echo "slow.sh: the first chat request failed" >&2; tail -5 "$run/ingen.log" >&2; exit 1; }
[ "$(jq -r .agent_response <<<"$first")" = "$REPLY" ] ||
	{ echo "slow.sh: the reply is not the fake Azure completion" >&2; exit 1; }
PEER_AUTH="Basic $(printf '%s:%s' "$BENCH_BASIC_USER" "$BENCH_BASIC_PASS" | base64 -w0)"

# ---- what the server admits: its /metrics if it says, else flow threads x workers ----
metric() {   # metric NAME-REGEX: the sum of the samples of the first metric matching it
	curl -sf "$BASE/metrics" | awk -v rx="$1" '
		/^#/ { next }
		{ n = $1; sub(/\{.*/, "", n) }
		n ~ rx && (name == "" || n == name) { name = n; s += $NF; found = 1 }
		END { if (found) printf "%s %d\n", name, s }'
}
LIMIT_SRC=option
if [ -z "$LIMIT" ]; then
	# a gauge such as ingenious_turns_limit / ingenious_flow_admit_max / _capacity
	read -r lname LIMIT < <(metric '^ingenious_[a-z_]*(admit|turn|flow|inflight|in_flight)[a-z_]*(limit|max|capacity)[a-z_]*$') || true
	LIMIT_SRC="/metrics $lname"
fi
if [ -z "$LIMIT" ]; then
	nworkers=$(curl -sf "$BASE/metrics" | awk '$1 == "ingenious_workers{state=\"ready\"}" { print $2 }')
	threads=$(sed -n 's/.*worker ready, generation [0-9]*, \([0-9]*\) flow threads.*/\1/p' "$run/ingen.log" | head -1)
	if [ -n "$threads" ] && [ -n "$nworkers" ]; then
		LIMIT=$((threads * nworkers)); LIMIT_SRC="log: $threads flow threads x $nworkers workers (no limit in /metrics)"
	else
		LIMIT=$((64 * $(nproc))); LIMIT_SRC="guess: default 64 flow threads x $(nproc) workers"
	fi
fi
D_CAP=$LIMIT D_OVER=$((2 * LIMIT))
[ "$D_OVER" -gt "$MAX_CONNS" ] && { D_OVER=$MAX_CONNS; [ "$D_CAP" -gt "$D_OVER" ] && D_CAP=$D_OVER; }

# ---- facts ------------------------------------------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nofile() { awk '/^Max open files/ {print $4 "/" $5}' "/proc/$1/limits" 2>/dev/null || echo "?"; }
first_child() { awk '{print $1; exit}' /proc/"$1"/task/*/children 2>/dev/null; }
limits_of() {   # limits_of NAME PIDFILE: "NAME master soft/hard worker soft/hard"
	local p c
	[ -s "$2" ] || { printf '%s -' "$1"; return; }
	p=$(head -1 "$2"); c=$(first_child "$p")
	printf '%s %s' "$1" "$(nofile "$p")"
	[ -n "$c" ] && printf ' (worker %s)' "$(nofile "$c")"
	return 0
}
master=$(cat "$run/ingen.pid")
{
	echo "# slow.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# machine: nproc=$(nproc) mem=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
	     "cpu=\"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)\" kernel=$(uname -r)"
	echo "# versions: $("$INGEN" version 2>&1 | head -1); $(postgres --version 2>/dev/null || echo postgres);" \
	     "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $("$NGINX_BIN" -v 2>&1 | sed 's/.*: //')"
	echo "# settings: ingen defaults (workers, flow threads, pool: unset; access log off), no auth; peer Basic;" \
	     "cases [$CASES], ${WARM}s warm-up + ${DUR}s per load (aligned on the latency, see README);" \
	     "db ceiling $DB_CEIL turns/s (--db-ceiling); db max_connections=$MAXCONN"
	echo "# admitted-turn limit: $LIMIT ($LIMIT_SRC); case D: $D_CAP then $D_OVER connections"
	echo "# open files (soft/hard): slow.sh+wrk $(ulimit -n)/$(ulimit -Hn) (needed ~$NEED_FDS);" \
	     "$(limits_of ingen "$run/ingen.pid"); $(limits_of fake-azure "$BENCH_RUN/fake-azure/nginx.pid");" \
	     "$( [ "$PEER" = 1 ] && limits_of peer "$BENCH_RUN/peer-python/gunicorn.pid");" \
	     "$( [ "$PROXY" = 1 ] && limits_of proxy "$BENCH_RUN/nginx-proxy/nginx.pid");" \
	     "postgres $(nofile "$(head -1 "$PG_DATA/postmaster.pid")"); somaxconn $(cat /proc/sys/net/core/somaxconn)"
	echo "# ingen idle RSS: master $(rss_kb "$master") kB; workers: $(for w in ${WORKER_PIDS[@]+"${WORKER_PIDS[@]}"}; do printf '%s kB ' "$(rss_kb "$w")"; done)"
	echo "# load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$RES"
# a target whose open-file limit is under what CONNS needs is still loaded, with a note
fd_note() {   # fd_note NAME PIDFILE CONNS
	local p c soft
	[ -s "$2" ] || return 0
	p=$(head -1 "$2"); c=$(first_child "$p"); [ -n "$c" ] || c=$p
	soft=$(nofile "$c"); soft=${soft%%/*}
	[ "$soft" != unlimited ] && [ "$soft" != "?" ] && [ "$soft" -lt $(($3 + 100)) ] &&
		echo "# note: $1 may open only $soft files per process, under $3 connections + its upstream ones" | tee -a "$RES"
	return 0
}

# ---- one load ------------------------------------------------------------------------
getv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
MONPIDS=""
# window LATENCY_MS CONNS: sets WS WL (the measured window, ms after wrk's start), RUN_S
# (wrk's -d, <= MAX_RUN_S) and BASIS.  A load is one wrk run: its warm-up is the part
# before the window, at least --warmup and at least one latency and a half plus
# RAMP_MS_PER_CONN per connection (the time a server takes to accept and read a burst
# of connections: the peer needs 5 s or more for 2,000), so that every connection has had its
# first answer.  All connections start together, so a closed loop answers in waves one
# latency apart: the window starts half a latency off a wave and spans whole latencies
# (at least one, however short --duration; it then holds exactly one answer per
# connection and latency, whatever each one's phase).  Where that does not fit in
# MAX_RUN_S (C: 30 s), no answer can end inside a run: the window is the last
# --duration seconds, and the load is measured by the calls held in flight
# (BASIS=inflight).
RAMP_MS_PER_CONN=3
window() {
	read -r WS WL RUN_S BASIS < <(awk -v L="$1" -v C="$2" -v W="$WARM" -v D="$DUR" -v M="$MAX_RUN_S" \
		-v R="$RAMP_MS_PER_CONN" 'BEGIN {
		w = W * 1000; ramp = C * R; M *= 1000
		if (L > 0) {
			if (w < 1.5 * L + ramp) w = 1.5 * L + ramp
			n = int(D * 1000 / L + 0.5); if (n < 1) n = 1
			while (n > 1 && w + n * L > M) n--
			if (w + n * L > M) w = M - n * L
			k = w / L - 0.5; k = (k == int(k)) ? k : int(k) + 1
			while (k >= 1 && (k + 0.5 + n) * L > M) k--
			if (k >= 1) {
				ws = (k + 0.5) * L; t = ws + n * L; r = int(t / 1000); if (r * 1000 < t) r++
				printf "%d %d %d window\n", ws, n * L, r; exit
			}
		}
		w = W * 1000; if (w < ramp) w = ramp; if (w + D * 1000 > M) w = M - D * 1000
		r = int((w + D * 1000) / 1000); if (r * 1000 < w + D * 1000) r++
		printf "%d %d %d inflight\n", w, D * 1000, r }')
}
# fake_delay MS: the fake Azure's default delay, switched as the rig's set-latency.sh
# does (latency.conf, graceful reload: idle upstream connections are closed, new ones
# see the new delay).  set-latency.sh then waits for three probes in a row within 40 ms
# of the delay, each as long as the delay: for 5 s or 30 s on a loaded machine that can
# take many minutes, so above 1 s slow.sh checks a switch with one probe in the
# background instead (DELAY_CHECK, read after the load: delay_check=ok in RESULT).
DELAY_CHECK=""
fake_delay() {
	local ms=$1 cur frun="$BENCH_RUN/fake-azure"
	DELAY_CHECK=""
	if [ "$ms" -le 1000 ]; then "$RIG/fake-azure/set-latency.sh" "$ms" >&2; return; fi
	cur=$(sed -n 's/.*bench_delay_ms \([0-9]*\);.*/\1/p' "$frun/latency.conf" 2>/dev/null || true)
	[ "$cur" = "$ms" ] && return
	local master old i w
	master=$(cat "$frun/nginx.pid"); old=" $(cat /proc/"$master"/task/*/children 2>/dev/null) "
	echo "set \$bench_delay_ms $ms;" > "$frun/latency.conf"
	"$NGINX_BIN" -p "$frun" -e "$frun/error.log" -c "$frun/nginx.conf" -s reload
	# the new configuration serves once the master has started a new worker (the old
	# ones then stop accepting): wait for one, up to 10 s
	for ((i = 0; i < 100; i++)); do
		for w in $(cat /proc/"$master"/task/*/children 2>/dev/null); do
			case $old in *" $w "*) ;; *) i=100;; esac
		done
		[ "$i" -ge 100 ] && break
		sleep 0.1
	done
	# (a connection the old worker accepted as it left fails at once: try again)
	(for _ in 1 2 3; do
		sleep 1
		t=$(curl -s -o /dev/null -m $((ms / 1000 + 30)) -w '%{time_total}' -X POST -H "api-key: $AZURE_API_KEY" \
			-d '{}' "http://127.0.0.1:$FAKE_AZURE_PORT/openai/deployments/probe/chat/completions?api-version=$AZURE_API_VERSION" \
			2>/dev/null) || true
		awk -v t="$t" 'BEGIN { exit !(t + 0 >= 0.5) }' && break
	done; echo "$t" > "$run/delay-check") &
	DELAY_CHECK=$!
}
delay_checked() {   # delay_checked MS: "ok", "-" (nothing to check) or the seconds the probe took
	[ -n "$DELAY_CHECK" ] || { echo -; return; }   # no switch, or set-latency.sh's own check
	wait "$DELAY_CHECK" 2>/dev/null || true
	DELAY_CHECK=""
	awk -v t="$(cat "$run/delay-check" 2>/dev/null)" -v ms="$1" \
		'BEGIN { if (t * 1000 >= 0.9 * ms) print "ok"; else printf "%.3fs\n", t + 0 }'
}
REJ_Q=0; REJ_D=0
# load CASE NAME URL PIDFILE AUTH_HEADER LATENCY_MS CONNS UPSTREAM UPSTREAM_PORT UPSTREAM_PIDFILE PHASE
load() {
	local cs=$1 name=$2 url=$3 pf=$4 auth=$5 lat=$6 conns=$7 up=$8 upport=$9 uppf=${10} phase=${11}
	local to probe out w s mon hm inf line okr tgt pct warm_req drain=0 i simb="" sima="" ok_win
	window "$lat" "$conns"
	to=$(((lat + 999) / 1000 + 10))
	# the turns a client abandoned keep ingen busy: let those of its last load end first
	if [ "$pf" = "$run/ingen.pid" ]; then
		local t0=$SECONDS n=""
		while [ $((SECONDS - t0)) -lt "$DRAIN_MAX_S" ]; do
			n=$(curl -sf -m 2 "${url%/api/*}/metrics" | awk '$1 == "ingenious_http_requests_in_flight" {print $2}')
			[ "${n:-1}" = 0 ] && break
			sleep 0.2
		done
		drain=$((SECONDS - t0)); [ "${n:-1}" = 0 ] || drain=">$DRAIN_MAX_S"
	fi
	if [ "$up" = fake-azure ]; then fake_delay "$lat"; fi
	fd_note "$name" "$pf" "$conns"
	probe=skipped
	if [ "$lat" -le 5000 ]; then
		local ch=(-H 'Content-Type: application/json')
		[ -n "$auth" ] && ch+=(-H "Authorization: $auth")
		probe=$(curl -s -m "$to" -o /dev/null -w '%{http_code}' -X POST "${ch[@]}" --data-binary "$BODY" "$url" || true)
	fi
	[ "$up" = sim ] && simb=$(curl -sf "http://127.0.0.1:$upport/sim/stats" | jq -r .chat)
	"$PY" "$RIG/lib/procmon.py" --pidfile "$pf" > "$run/procmon" & local mon_pid=$!
	"$PY" "$here/hostmon.py" --tree "srv=$pf" --tree "db=$PG_DATA/postmaster.pid" --tree "upstream=$uppf" \
		--tree "bench=pid:$$" > "$run/hostmon" & local hm_pid=$!
	"$PY" "$here/inflight.py" --pidfile "$pf" --port "$upport" --after "$((WS / 1000))" > "$run/inflight" &
	local inf_pid=$!
	MONPIDS="$mon_pid $hm_pid $inf_pid"
	out=$(BENCH_POST_LUA="$RIG/lib/post.lua" BENCH_BODY="$BODY" BENCH_AUTH_HEADER="$auth" BENCH_EXTRA_HEADERS="" \
		BENCH_WIN_START_MS="$WS" BENCH_WIN_END_MS="$((WS + WL))" \
		timeout $((RUN_S + 15)) wrk -t 2 -c "$conns" -d "${RUN_S}s" --timeout "${to}s" -s "$here/slow.lua" "$url" 2>&1) || true
	for i in $MONPIDS; do kill -TERM "$i" 2>/dev/null || true; done
	wait $MONPIDS 2>/dev/null || true
	MONPIDS=""
	mon=$(sed -n 's/^MON //p' "$run/procmon"); hm=$(sed -n 's/^HOSTMON //p' "$run/hostmon")
	inf=$(sed -n 's/^INFLIGHT //p' "$run/inflight")
	[ "$up" = sim ] && sima=$(curl -sf "http://127.0.0.1:$upport/sim/stats" | jq -r .chat)
	w=$(sed -n 's/^WRK //p' <<<"$out"); s=$(sed -n 's/^SLOW //p' <<<"$out")
	if [ -z "$w" ] || [ -z "$s" ]; then
		echo "$out" | tail -5 >&2
		line="RESULT label=$name case=$cs phase=$phase url=$url latency_ms=$lat conns=$conns error=wrk_failed probe=$probe"
		echo "$line" | tee -a "$RES"
		return 0
	fi
	ok_win=$(getv win_ok "$s")
	read -r okr tgt pct warm_req < <(awk -v b="$BASIS" -v ok="$ok_win" -v wl="$WL" -v lat="$lat" \
		-v c="$conns" -v db="$DB_CEIL" -v inf="$(getv mean "$inf")" -v s="$s" 'BEGIN {
		n = split(s, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
		r = (b == "window") ? ok * 1000 / wl : inf * 1000 / lat
		t = c * 1000 / lat; if (t > db) t = db
		printf "%.1f %.1f %.0f %d\n", r, t, (t > 0 ? 100 * r / t : 0),
		    v["all_ok"] + v["all_503"] + v["all_other"] - v["win_ok"] - v["win_503"] - v["win_other"] }')
	line="RESULT label=$name case=$cs phase=$phase upstream=$up url=$url latency_ms=$lat conns=$conns threads=2"
	line+=" run_s=$RUN_S window_ms=$WS-$((WS + WL)) duration_s=$(awk -v x="$WL" 'BEGIN{printf "%.2f", x/1000}')"
	line+=" requests=$((ok_win + $(getv win_503 "$s") + $(getv win_other "$s")))"
	line+=" rps=$(awk -v n="$((ok_win + $(getv win_503 "$s") + $(getv win_other "$s")))" -v x="$WL" 'BEGIN{printf "%.1f", n*1000/x}')"
	line+=" ok=$ok_win ok_rps=$okr ok_basis=$BASIS target_rps=$tgt pct=$pct"
	line+=" p50_ms=$(getv p50_ms "$w") p90_ms=$(getv p90_ms "$w") p99_ms=$(getv p99_ms "$w") max_ms=$(getv max_ms "$w")"
	line+=" non2xx=$(getv non2xx "$w") s503=$(getv all_503 "$s") s503_ra=$(getv all_503_ra "$s") other=$(getv all_other "$s")"
	line+=" sock_err=$(getv err_connect "$w")/$(getv err_read "$w")/$(getv err_write "$w")/$(getv err_timeout "$w")"
	line+=" timeouts=$(getv err_timeout "$w") bytes_per_resp=$(getv bytes_per_resp "$w") probe=$probe warm_requests=$warm_req"
	line+=" up_conns_peak=$(getv peak "$inf") up_conns_mean=$(getv mean "$inf") up_samples=$(getv samples "$inf")"
	[ -n "$simb" ] && [ -n "$sima" ] && line+=" sim_calls=$((sima - simb))"   # calls the simulator received
	if [ -n "$mon" ]; then
		local req_all cpu
		req_all=$(getv requests "$w"); cpu=$(getv srv_cpu_s "$mon")
		line+=" rss_peak_mb=$(getv rss_peak_mb "$mon") srv_cpu_s=$cpu"
		line+=" srv_cpu_ms_per_req=$(awk -v c="$cpu" -v r="$req_all" 'BEGIN{ if (r > 0) printf "%.3f", 1000*c/r; else print "nan" }')"
		line+=" nprocs=$(getv nprocs "$mon") host_busy_pct=$(getv host_busy_pct "$mon") steal_pct=$(getv steal_pct "$mon")"
	fi
	line+=" others_pct=$(getv others_pct "$hm") loadavg1=$(cut -d' ' -f1 /proc/loadavg)"
	if [ "$pf" = "$run/ingen.pid" ]; then
		# which admission refused: the database's (db_wait_limit_ms) or the flow queue's
		# (counters since start: the difference from the last load's)
		local met rq rd
		met=$(curl -sf -m 5 "${url%/api/*}/metrics" || true)
		rq=$(awk '$1 == "ingenious_flow_queue_rejections_total" {print $2}' <<<"$met")
		rd=$(awk '$1 == "ingenious_turn_db_rejections_total" {print $2}' <<<"$met")
		line+=" rej_queue=$(( ${rq:-0} - REJ_Q )) rej_db=$(( ${rd:-0} - REJ_D ))"
		REJ_Q=${rq:-0}; REJ_D=${rd:-0}
		line+=" drain_before_s=$drain"
	fi
	[ "$up" = fake-azure ] && line+=" delay_check=$(delay_checked "$lat")"
	sleep 1
	echo "$line" | tee -a "$RES"
	# a target that could not hold its connections says so (the peer at 4,000), and one
	# that answered only outside the window (its first answers later than the warm-up)
	awk -v c="$conns" -v n="$name" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		split(v["sock_err"], e, "/")
		if (e[1] + e[2] + e[3] > c / 100)
			printf "# note: %s did not hold %d connections: %d connect, %d read, %d write errors\n", n, c, e[1], e[2], e[3]
		if (v["ok_basis"] == "window" && v["ok"] == 0)
			printf "# note: %s answered no 2xx inside the window %s ms (%d answers outside it): too slow to start, or a longer --warmup\n", n, v["window_ms"], v["warm_requests"]
	}' <<<"$line" | tee -a "$RES"
}

# targets TARGET...: the rig's targets in use
peer_url="http://127.0.0.1:$PEER_PORT/api/v1/chat" peer_pf="$BENCH_RUN/peer-python/gunicorn.pid"
proxy_url="http://127.0.0.1:$PROXY_PORT/api/v1/chat" proxy_pf="$BENCH_RUN/nginx-proxy/nginx.pid"
fa_pf="$BENCH_RUN/fake-azure/nginx.pid"
others() {   # others CASE LATENCY CONNS PHASE: the peer and the proxy, same latency and connections
	[ "$PEER" = 1 ] && load "$1" peer-python "$peer_url" "$peer_pf" "$PEER_AUTH" "$2" "$3" fake-azure "$FAKE_AZURE_PORT" "$fa_pf" "$4"
	[ "$PROXY" = 1 ] && load "$1" nginx-proxy "$proxy_url" "$proxy_pf" "" "$2" "$3" fake-azure "$FAKE_AZURE_PORT" "$fa_pf" "$4"
	return 0
}
fast() {   # fast CASE LATENCY CONNS [PHASE]
	load "$1" ingen "$BASE/api/v1/chat" "$run/ingen.pid" "" "$2" "$3" fake-azure "$FAKE_AZURE_PORT" "$fa_pf" "${4:-run}"
	others "$1" "$2" "$3" "${4:-run}"
}
stream_case() {
	local sp i
	"$SIM" --host 127.0.0.1 --port 0 --api-key "$AZURE_API_KEY" --latency-ms "$STREAM_MS" \
		--pidfile "$run/sim.pid" --max-seconds 900 --quiet 2> "$run/sim.log" &
	for ((i = 0; i < 100; i++)); do
		sp=$(sed -n 's/.*msg=ready .*port=\([0-9]*\).*/\1/p' "$run/sim.log")
		[ -n "$sp" ] && break; sleep 0.1
	done
	[ -n "$sp" ] || { echo "slow.sh: the simulator did not start" >&2; cat "$run/sim.log" >&2; exit 1; }
	start_ingen ingen-sim $((PORT + 1)) "http://127.0.0.1:$sp"
	echo "# case C: ingen -> ingen-azure-sim 127.0.0.1:$sp --latency-ms $STREAM_MS (the reply streamed frame" \
	     "by frame after the wait; its drip fault writes one byte per write, ~7.6 kB per stream: 500,000" \
	     "writes/s at 2,000 streams of 30 s, more than 2 cores); peer and proxy -> fake Azure at $STREAM_MS ms," \
	     "POST /api/v1/chat (no stream route); a ${DUR}s window cannot see a 30 s answer end: 2xx/s is" \
	     "upstream calls held in flight (mean over the window) / 30 s" | tee -a "$RES"
	load C ingen "http://127.0.0.1:$((PORT + 1))/api/v1/chat/stream" "$run/ingen-sim.pid" "" "$STREAM_MS" 2000 sim "$sp" "$run/sim.pid" run
	cp "$run/ingen-sim.log" "$run/ingen-sim.log.kept"
	stop_ingen "$run/ingen-sim.pid" now   # its turns were abandoned by wrk
	stop_pidfile "$run/sim.pid" 10
	others C "$STREAM_MS" 2000 run
}

for c in $CASES; do
	case $c in
	A) fast A 500 2000;;
	B) fast B 5000 4000;;
	C) stream_case;;
	D) fast D 500 "$D_CAP" capacity; fast D 500 "$D_OVER" overload;;
	esac
done
echo "# load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES"
for lg in "$run/ingen.log" "$run/ingen-sim.log.kept"; do
	[ -f "$lg" ] || continue
	if grep -q 'level=\(warn\|error\)' "$lg"; then
		echo "# $(basename "${lg%.kept}") warnings and errors (count, message):"
		grep 'level=\(warn\|error\)' "$lg" | sed -n 's/.*\(level=[a-z]*\).*msg=\("[^"]*"\|[^ ]*\).*/\1 \2/p' |
			sort | uniq -c | sort -rn | awk 'NR <= 5'   # (head would end the pipe early: pipefail)
	fi
done | tee -a "$RES"

# ---- the table ----------------------------------------------------------------------------
echo
echo "# 2xx/s: 2xx answers per second in the measured window (C: upstream calls held / 30 s);"
echo "# target: min(connections / latency, db ceiling $DB_CEIL); non2xx: wrk's count, whole run;"
echo "# 503(RA): 503 answers, of which with Retry-After; tmo: client timeouts (latency + 10 s);"
echo "# up: peak upstream connections of the target; rss: peak RSS of its process tree; host/oth: %"
echo "# of the machine busy / taken by other work"
awk '
/^RESULT / {
	delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (n == 0) printf "%-4s %-9s %-11s %-10s %-7s %-6s %-8s %-7s %-5s %-8s %-15s %-5s %-6s %-5s %-6s %-4s %s\n",
	    "case", "phase", "target", "upstream", "latency", "conns", "2xx/s", "target", "%", "non2xx",
	    "503(RA)", "tmo", "sockerr", "up", "rss_MB", "host", "oth"
	n++
	if (v["error"] != "") { printf "%-4s %-9s %-11s %s\n", v["case"], v["phase"], v["label"], "error=" v["error"]; next }
	split(v["sock_err"], e, "/")
	printf "%-4s %-9s %-11s %-10s %-7s %-6s %-8s %-7s %-5s %-8s %-15s %-5s %-6s %-5s %-6s %-4s %s\n",
	    v["case"], v["phase"], v["label"], v["upstream"], v["latency_ms"] "ms", v["conns"],
	    v["ok_rps"] (v["ok_basis"] == "inflight" ? "*" : ""), v["target_rps"], v["pct"], v["non2xx"],
	    v["s503"] "(" v["s503_ra"] ")", v["timeouts"], e[1] + e[2] + e[3], v["up_conns_peak"],
	    v["rss_peak_mb"], v["host_busy_pct"], v["others_pct"]
	if (v["case"] == "D") good[v["label"], v["phase"]] = v["ok_rps"]
	if (!(v["label"] in seen)) { seen[v["label"]] = 1; labs[++nl] = v["label"] }
}
END {
	for (j = 1; j <= nl; j++) if (((l = labs[j]), "capacity") in good && (l, "overload") in good)
		printf "D %s: goodput at overload %.1f/s = %.0f%% of goodput at capacity %.1f/s (target >= 90%%)\n",
		    l, good[l, "overload"], (good[l, "capacity"] > 0 ? 100 * good[l, "overload"] / good[l, "capacity"] : 0),
		    good[l, "capacity"]
	printf "targets (issue 17): >= 80%% of target, no non-2xx, no timeout, ingen rss < 300 MB at the largest case\n"
}' "$RES"
