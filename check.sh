#!/bin/sh
# check.sh -- build everything and run every test (the README's test command).
#
# On a fresh Debian 12 machine it first installs the Debian packages the build
# and the tests need (as root, or through sudo).  Then it builds in _build/
# with -Werror, runs `make check` (unit tests, the include rules, end-to-end
# tests against the real binary, a real PostgreSQL and the Azure OpenAI
# simulator, short fuzz runs), then the unit tests and the end-to-end scripts
# of $SAN_E2E again under AddressSanitizer and UndefinedBehaviorSanitizer in
# _build-san/, and ends with one line: "N passed, N failed".
set -eu
cd "$(dirname "$0")"
top=$(pwd)

PKGS="build-essential autoconf automake pkg-config libcurl4-openssl-dev libcjson-dev
libssl-dev libpq-dev libconfig-dev libpg-query-dev postgresql-15 python3 clang libclang-rt-14-dev curl
nginx-light systemd debhelper lintian adduser chromium"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "check.sh: installing Debian packages:$missing"
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# The end-to-end scripts that also run against the sanitizer build: the HTTP
# parser, the chat turn (upstream faults, database rows, streaming, the
# database stopped under load), the LLM client, authentication (passwords,
# JWT, Basic), the process model and the SQL agent's guard and connections.  The harness (tests/e2e/lib/ingen.py) sees from _build-san's
# Makefile that the binaries are sanitized: it sets ASAN_OPTIONS, UBSAN_OPTIONS
# and LSAN_OPTIONS for every process it starts, fails a script whose server,
# simulator or command printed a sanitizer report, and stretches the scripts'
# time limits (INGEN_SANITIZER=1, slack()).  Long scripts first, for make -j.
# SAN_E2E in the environment replaces the list.
SAN_E2E=${SAN_E2E:-"tests/e2e/test_chat_llm.py tests/e2e/test_http.py tests/e2e/test_auth.py \
tests/e2e/test_chat_db.py tests/e2e/test_process.py tests/e2e/test_llm_client.py \
tests/e2e/test_chat_db_outage.py tests/e2e/test_disconnect.py tests/e2e/test_hung_flow.py \
tests/e2e/test_plugins.py tests/e2e/test_cli_flows.py tests/e2e/test_seed_guide.py \
tests/e2e/test_usage_journal.py tests/e2e/test_stream_race.py tests/e2e/test_sqlagent.py \
tests/e2e/test_kb_flow.py tests/e2e/test_sql_flow.py tests/e2e/test_db_admission.py \
tests/e2e/test_memtune.py"}

JOBS=$(nproc 2>/dev/null || echo 2)
[ -x configure ] || autoreconf -fi
mkdir -p _build _build-san
# results of an earlier run must not count in this one's summary
find _build _build-san -name '*.trs' -exec rm -f {} +
(cd _build && { [ -f Makefile ] || ../configure --enable-werror -q; } && make -s -j"$JOBS")
status=0
(cd _build && make -s -j"$JOBS" check) || status=$?

# the unit tests and $SAN_E2E again with the sanitizers (a report fails the test)
san_start=$(date +%s)
san_tests="$SAN_E2E $(cd "$top" && ls tests/unit/*.c tests/flows/*.c | sed 's/\.c$//' | tr '\n' ' ')"
(cd _build-san && { [ -f Makefile ] || ../configure --enable-werror --enable-asan --enable-ubsan -q; } &&
	make -s -j"$JOBS" && make -s -j"$JOBS" check TESTS="$san_tests") || status=$?
echo "check.sh: the sanitizer run took $(($(date +%s) - san_start)) s"

# one summary over every TAP line of both runs
pass=0; fail=0
for f in $(find _build _build-san -name '*.trs' 2>/dev/null); do
	p=$(grep -c '^:test-result: \(PASS\|XFAIL\|SKIP\)' "$f" || true)
	x=$(grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$f" || true)
	pass=$((pass + p)); fail=$((fail + x))
done
for f in $(find _build _build-san -name 'test-suite.log' 2>/dev/null); do
	if grep -q '^# FAIL: *[1-9]\|^# ERROR: *[1-9]' "$f"; then
		echo "--- failures in $f:"; grep -A40 '^FAIL:\|^ERROR:' "$f" | head -200
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$status" -eq 0 ]
