#!/bin/sh
# bench/health.sh -- GET /api/v1/health on `ingen serve` against nginx serving
# the same JSON as a static file, in the same run on the same machine.
#
#   bench/health.sh [--duration S] [--conns N] [--threads N] [--workers N] [--rounds N]
#
# Needs wrk and nginx (Debian: apt-get install wrk nginx-light).  Both servers
# listen on 127.0.0.1 only and are stopped by their pid files.  Prints, per
# target: req/s, p50 and p99 latency, and for ingen the RSS of the master and
# of each idle worker before the load and the peak during it.
# Targets (issue 2): ingen reaches at least half of nginx's req/s with 2
# workers; an idle worker stays under 10 MB RSS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
INGEN=${INGEN:-$top/_build/ingen}
DUR=10 CONNS=64 THREADS=2 WORKERS=2 ROUNDS=3
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DUR=$2; shift 2;;
	--conns) CONNS=$2; shift 2;;
	--threads) THREADS=$2; shift 2;;
	--workers) WORKERS=$2; shift 2;;
	--rounds) ROUNDS=$2; shift 2;;
	*) echo "usage: $0 [--duration S] [--conns N] [--threads N] [--workers N] [--rounds N]" >&2; exit 2;;
	esac
done
command -v wrk >/dev/null || { echo "bench: wrk not found (apt-get install wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench: nginx not found (apt-get install nginx-light)" >&2; exit 1; }
[ -x "$INGEN" ] || { echo "bench: $INGEN not built (run ./check.sh or make)" >&2; exit 1; }

run=$(mktemp -d /tmp/ingen-bench-XXXXXX)
chmod 755 "$run"   # nginx workers run as www-data
IPORT=18701 NPORT=18702
cleanup() {
	[ -f "$run/ingen.pid" ] && kill "$(cat "$run/ingen.pid")" 2>/dev/null || true
	[ -f "$run/nginx.pid" ] && kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
	sleep 0.5
	rm -rf "$run"
}
trap cleanup EXIT INT TERM

# the same body ingen sends, as a static file
mkdir -p "$run/www/api/v1"
printf '%s' '{"status":"healthy","timestamp":"2026-11-24T00:00:00.000000","response_time_ms":0.010,"components":{"configuration":"ok","profile":"ok"},"version":"1.0.0","uptime":"available"}' > "$run/www/api/v1/health"
cat > "$run/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT;
        root $run/www;
        default_type application/json;
    }
}
EOF
"$NGINX" -c "$run/nginx.conf" -p "$run" 2>/dev/null

(cd "$run" && INGENIOUS_LOGGING__ACCESS_LOG=false INGENIOUS_SERVER__STATE_DIR="$run/state" \
	"$INGEN" serve --host 127.0.0.1 --port $IPORT --workers "$WORKERS" \
	--pidfile "$run/ingen.pid" > "$run/ingen.log" 2>&1 &)
i=0
while ! curl -sf "http://127.0.0.1:$IPORT/api/v1/health" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "bench: ingen did not start" >&2; cat "$run/ingen.log" >&2; exit 1; }
	sleep 0.05
done
i=0
while ! curl -sf "http://127.0.0.1:$NPORT/api/v1/health" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "bench: nginx did not start" >&2; cat "$run/nginx-error.log" >&2; exit 1; }
	sleep 0.05
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
master=$(cat "$run/ingen.pid")
workers=$(cat "/proc/$master/task/$master/children")
echo "# machine: $(nproc) cores, $(uname -r); wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2); $("$NGINX" -v 2>&1 | sed 's/.*: //')"
echo "# settings: ${DUR}s per run, $CONNS connections, $THREADS wrk threads, $WORKERS workers each, $ROUNDS rounds"
echo "# ingen idle RSS: master $(rss_kb "$master") kB; workers: $(for w in $workers; do printf '%s kB ' "$(rss_kb "$w")"; done)"

peak=0
load() {   # load NAME PORT
	wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$2/api/v1/health" > "$run/wrk.out" 2>&1 &
	wpid=$!
	while kill -0 $wpid 2>/dev/null; do
		if [ "$1" = ingen ]; then
			for w in $workers; do r=$(rss_kb "$w"); [ "$r" -gt "$peak" ] && peak=$r; done
		fi
		sleep 0.5
	done
	wait $wpid || true
	out=$(cat "$run/wrk.out")
	rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
	p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
	printf 'RESULT target=%s round=%s rps=%s p50=%s p99=%s %s\n' "$1" "$r_i" "$rps" "$p50" "$p99" "$errs"
	echo "$1 $rps" >> "$run/rps"
}
r_i=1
while [ $r_i -le "$ROUNDS" ]; do
	if [ $((r_i % 2)) -eq 1 ]; then load ingen $IPORT; load nginx $NPORT; else load nginx $NPORT; load ingen $IPORT; fi
	r_i=$((r_i + 1))
done
echo "# ingen worker peak RSS under load: $peak kB; after: $(for w in $workers; do printf '%s kB ' "$(rss_kb "$w")"; done)"
med() { grep "^$1 " "$run/rps" | awk '{print $2}' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
mi=$(med ingen); mn=$(med nginx)
echo "# median req/s: ingen $mi, nginx $mn"
awk -v a="$mi" -v b="$mn" 'BEGIN { if (b > 0) printf "# ingen / nginx = %.2f (target >= 0.50)\n", a / b }'
