#!/bin/sh
# quickstart.sh -- build Ingenious and serve it (the README's first command).
#
#   ./quickstart.sh [ingen serve options...]      e.g. ./quickstart.sh --port 8080
#
# On a fresh Debian 12 machine it installs the Debian packages it needs (as
# root, or through sudo), builds in _build/, creates a private PostgreSQL
# cluster under .ingenious/pg (unix socket only, no TCP; started again on later
# runs), starts the bundled Azure OpenAI simulator (the model, and Azure AI
# Search for the knowledge-base-agent) on 127.0.0.1:8001 when no
# Azure credentials are configured (INGENIOUS_MODELS... in the environment or
# in ./.env), and runs `ingen serve` on 127.0.0.1:8000 in the foreground.
# Ctrl-C stops the server, the simulator and the local cluster.
set -eu
cd "$(dirname "$0")"
top=$(pwd)

PKGS="build-essential autoconf automake pkg-config libcurl4-openssl-dev libcjson-dev
libssl-dev libpq-dev libconfig-dev libpg-query-dev postgresql-15 curl"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "quickstart: installing Debian packages:$missing"
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

[ -x configure ] || autoreconf -fi
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure -q; } && make -s -j"$(nproc 2>/dev/null || echo 2)")
INGEN=$top/_build/ingen
SIM=$top/_build/ingen-azure-sim

# the server's default server.state_dir, so that `ingen kb`, `ingen user`,
# `ingen db` run from this directory find the same cluster (.local: runs of
# an earlier version, kept where it exists)
state=$top/.ingenious
[ -d "$top/.local/pg" ] && [ ! -d "$state/pg" ] && state=$top/.local
mkdir -p "$state"
chmod 755 "$state"   # the cluster runs as the postgres user when we are root
export INGENIOUS_SERVER__STATE_DIR="$state"

# the chat history: a private cluster unless a database is configured
started_pg=0
if [ -z "${INGENIOUS_CHAT_HISTORY__DATABASE_URL:-}" ] && ! grep -qi '^ *\(export \)\?INGENIOUS_CHAT_HISTORY__DATABASE_URL=' .env 2>/dev/null; then
	# idempotent: creates the cluster once, then starts it and applies new schema files
	"$INGEN" db init-local "$state/pg"
	started_pg=1
fi

# the language model: the simulator unless Azure credentials are configured
sim_pid=""
if [ -z "${INGENIOUS_MODELS:-}${INGENIOUS_MODELS__0__API_KEY:-}${INGENIOUS_MODELS__0__BASE_URL:-}" ] &&
    ! grep -qi '^ *\(export \)\?INGENIOUS_MODELS' .env 2>/dev/null; then
	"$SIM" --host 127.0.0.1 --port 8001 --api-key quickstart-sim-key \
		--rules "$top/sim/rules.json" --docs "$top/sim/docs.json" \
		--pidfile "$state/sim.pid" --quiet &
	sim_pid=$!
	i=0
	until curl -sf http://127.0.0.1:8001/sim/stats >/dev/null 2>&1; do
		if ! kill -0 "$sim_pid" 2>/dev/null || [ $i -ge 100 ]; then
			echo "quickstart: the Azure OpenAI simulator did not start (is port 8001 in use?)" >&2
			exit 1
		fi
		i=$((i + 1)); sleep 0.05
	done
	export INGENIOUS_MODELS__0__MODEL=gpt-4.1-nano
	export INGENIOUS_MODELS__0__API_TYPE=rest
	export INGENIOUS_MODELS__0__API_VERSION=2024-12-01-preview
	export INGENIOUS_MODELS__0__DEPLOYMENT=gpt-4.1-nano
	export INGENIOUS_MODELS__0__API_KEY=quickstart-sim-key
	export INGENIOUS_MODELS__0__BASE_URL=http://127.0.0.1:8001
	echo "quickstart: no Azure credentials configured, using the simulator on 127.0.0.1:8001"
	# Azure AI Search too (the knowledge-base-agent's default policy,
	# azure_only), unless one is configured: the simulator's sim/docs.json
	if [ -z "${INGENIOUS_AZURE_SEARCH_SERVICES:-}${INGENIOUS_AZURE_SEARCH_SERVICES__0__ENDPOINT:-}" ] &&
	    ! grep -qi '^ *\(export \)\?INGENIOUS_AZURE_SEARCH_SERVICES' .env 2>/dev/null; then
		export INGENIOUS_AZURE_SEARCH_SERVICES__0__ENDPOINT=http://127.0.0.1:8001
		export INGENIOUS_AZURE_SEARCH_SERVICES__0__KEY=quickstart-sim-key
	fi
fi

stop_all() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
	[ "$started_pg" = 1 ] && "$INGEN" db stop-local "$state/pg" >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

cat <<EOF
quickstart: serving on http://127.0.0.1:8000 (Ctrl-C stops)
  curl -s http://127.0.0.1:8000/api/v1/health
  curl -s -X POST http://127.0.0.1:8000/api/v1/chat -H 'Content-Type: application/json' \\
       -d '{"user_prompt": "How much is the red bike?", "conversation_flow": "classification-agent"}'
EOF
"$INGEN" serve --host 127.0.0.1 --port 8000 --pidfile "$state/ingen.pid" "$@" &
srv=$!
trap 'kill -TERM $srv 2>/dev/null; wait $srv; exit 130' INT TERM
wait $srv
