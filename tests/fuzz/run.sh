#!/bin/sh
# run.sh -- run each libFuzzer target briefly over its seed corpus; prints TAP.
#
# `make check` builds the targets (only when configure found clang) and runs
# this script through the TAP driver.  Each target gets FUZZ_TIME seconds
# (default 10).  The seed corpus in the source tree is never written: the
# fuzzer works on a copy in a temporary directory, removed on success and
# kept (its path printed) on failure, with the crashing input in it.
# Every tests/fuzz/fuzz_*.c of the source tree is a target (its binary is
# built by the rules in tests/local.mk), unless FUZZ_ONLY names some.
# Environment: INGEN_BUILDDIR / INGEN_SRCDIR (set by make check), FUZZ_TIME,
# FUZZ_ONLY (e.g. "fuzz_http fuzz_json").

srcdir=${INGEN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${INGEN_BUILDDIR:-$(pwd)}
fuzz_time=${FUZZ_TIME:-10}
targets=${FUZZ_ONLY:-$(for f in "$srcdir"/tests/fuzz/fuzz_*.c; do
	[ -f "$f" ] && basename "$f" .c; done)}

if ! command -v clang >/dev/null 2>&1; then
	echo "1..0 # SKIP clang not found"
	exit 0
fi

set -- $targets
if [ $# -eq 0 ]; then
	echo "1..0 # SKIP no fuzz targets in $srcdir/tests/fuzz"
	exit 0
fi
echo "1..$#"
n=0
failed=0
for t in $targets; do
	n=$((n + 1))
	bin="$builddir/tests/fuzz/$t"
	if [ ! -x "$bin" ]; then
		echo "not ok $n - $t ${fuzz_time}s no crash"
		echo "# $bin is missing: run 'make check' to build it"
		failed=1
		continue
	fi
	work=$(mktemp -d "${TMPDIR:-/tmp}/ingen-$t.XXXXXX") || exit 99
	mkdir "$work/corpus"
	if [ -d "$srcdir/tests/fuzz/corpus/$t" ]; then
		cp "$srcdir/tests/fuzz/corpus/$t/"* "$work/corpus/" 2>/dev/null
	fi
	# -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory
	"$bin" -max_total_time="$fuzz_time" -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix="$work/" -print_final_stats=1 \
	    "$work/corpus" >"$work/log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
		echo "ok $n - $t ${fuzz_time}s no crash (${runs:-?} runs)"
		rm -rf "$work"
	else
		echo "not ok $n - $t ${fuzz_time}s no crash (exit $rc)"
		tail -n 40 "$work/log" | sed 's/^/# /'
		echo "# artifacts and log kept in $work"
		failed=1
	fi
done
exit $failed
