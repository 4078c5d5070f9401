#!/bin/sh
# check.sh -- build everything and run every test (the README's test command).
#
# On a fresh Debian 12 machine it first installs the Debian packages the build
# and the tests need (as root, or through sudo).  Then it builds in _build/
# with -Werror, runs `make check` (unit tests, end-to-end tests against the real
# binary, a real PostgreSQL and the Azure OpenAI simulator, short fuzz runs),
# then the unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer
# in _build-san/, and ends with one line: "N passed, N failed".
set -eu
cd "$(dirname "$0")"
top=$(pwd)

PKGS="build-essential autoconf automake pkg-config libcurl4-openssl-dev libcjson-dev
libssl-dev libpq-dev libconfig-dev postgresql-15 python3 clang libclang-rt-14-dev curl"
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

JOBS=$(nproc 2>/dev/null || echo 2)
[ -x configure ] || autoreconf -fi
mkdir -p _build _build-san
(cd _build && { [ -f Makefile ] || ../configure --enable-werror -q; } && make -s -j"$JOBS")
status=0
(cd _build && make -s -j"$JOBS" check) || status=$?

# the unit tests again with the sanitizers (their reports fail the test)
(cd _build-san && { [ -f Makefile ] || ../configure --enable-werror --enable-asan --enable-ubsan -q; } &&
	make -s -j"$JOBS" && make -s -j"$JOBS" check TESTS="$(cd "$top" && ls tests/unit/*.c | sed 's/\.c$//' | tr '\n' ' ')") || status=$?

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
