#!/usr/bin/env bash
# bench/soak.sh -- a soak of `ingen serve` (issue 15): mixed traffic (chat with
# and without thread_id, streaming, history reads, logins, bad requests) with
# authentication on, a SIGHUP every minute, for 10 minutes by default; then
# every acknowledged turn's rows present, no error, RSS flat (under 5 % growth
# after the first minute), no descriptor leak.  See bench/soak.py for what is
# measured and bench/README.md ("Soak") for results.
#
#   bench/soak.sh [--duration S] [--threads N] [--latency-ms MS] [--sighup-every S]
#                 [--samples FILE.csv]
#
# Owns: a private PostgreSQL cluster, the simulator and the server it starts
# (the e2e harness of tests/e2e/lib, each stopped by its pid), all under /tmp,
# removed at the end (INGEN_KEEP_TMP=1 keeps the server's folder: its log, and
# a core file under `ulimit -c unlimited`).  Listens on 127.0.0.1 only.  Needs
# the build in _build (INGEN_BUILDDIR=_build-san runs it under the sanitizers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
export INGEN_SRCDIR=${INGEN_SRCDIR:-$top}
export INGEN_BUILDDIR=${INGEN_BUILDDIR:-$top/_build}
[ -x "$INGEN_BUILDDIR/ingen" ] || { echo "soak.sh: build first: $INGEN_BUILDDIR/ingen is missing" >&2; exit 1; }
export PYTHONDONTWRITEBYTECODE=1
echo "# soak.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC'): $("$INGEN_BUILDDIR/ingen" version 2>&1 | head -1); nproc=$(nproc)"
exec python3 "$here/soak.py" "$@"
