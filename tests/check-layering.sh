#!/bin/sh
# check-layering.sh -- the include rules of the source tree, checked; prints TAP.
#
# The folders are the architecture (docs/architecture.md): lib/ is the
# foundation and sees nothing above it, the master is a supervisor that never
# sees the worker, each foreign library is reached through one family of
# lib/ files, and a flow sees only the flow API.  This script reads every
# #include of the .c and .h files under the source folders and prints one TAP
# line per rule; a broken rule fails with the offending file:line.
#
# It reads the source tree only (INGEN_SRCDIR, set by `make check`; else the
# tree this script is in) and never writes to it.  Only direct includes are
# seen, in the forms #include <x> and #include "x" (computed includes are not).
# Run by hand: sh tests/check-layering.sh

top=${INGEN_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# the folders that hold sources; build directories (_build*) are not read
SOURCE_DIRS="lib cli master worker flows sim tests bench"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingen-layering.XXXXXX") || {
	echo "Bail out! could not create a temporary directory"; exit 1; }
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

if ! cd "$top" 2>/dev/null || [ ! -f lib/err.h ]; then
	echo "Bail out! no source tree at $top (lib/err.h not found)"
	exit 1
fi

# every include as "file:line:<header>" or "file:line:\"header\""
dirs=""
for d in $SOURCE_DIRS; do [ -d "$d" ] && dirs="$dirs $d"; done
# shellcheck disable=SC2086
find $dirs -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort >"$tmp/files"
# (file names under the source folders hold no white space)
# shellcheck disable=SC2016
xargs awk '
	match($0, /^[ \t]*#[ \t]*include[ \t]*[<"][^>"]*[>"]/) {
		s = substr($0, RSTART, RLENGTH)
		sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
		print FILENAME ":" FNR ":" s
	}' <"$tmp/files" >"$tmp/includes"

# --- what a rule may allow

# The headers of the C library that a flow may include: the C11 library, less
# <threads.h> and <signal.h>, plus a few POSIX headers that compute and never
# reach the operating system.  Headers that do (<unistd.h>, <fcntl.h>,
# <pthread.h>, <sys/socket.h>, <dlfcn.h> ...) are left out on purpose: a flow
# does its I/O through its context (flows/flow.h), nowhere else.
LIBC_FOR_FLOWS="assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h
iso646.h limits.h locale.h math.h setjmp.h stdalign.h stdarg.h stdatomic.h
stdbool.h stddef.h stdint.h stdio.h stdlib.h stdnoreturn.h string.h tgmath.h
time.h uchar.h wchar.h wctype.h
strings.h regex.h fnmatch.h iconv.h sys/types.h"

# The infrastructure of flows/: the context, the registry, the catalog, the plugin loader,
# the prompt renderer, the model-call adapter and the declarative flows.  Every other .c or .h under flows/ is a flow
# (flows/builtin/*, and whatever comes later) and obeys the flow rule.
FLOW_INFRASTRUCTURE="flows/flow.h flows/ctx.c flows/ctx.h flows/registry.c
flows/registry.h flows/plugin.c flows/plugin.h flows/declarative.c flows/declarative.h
flows/catalog.c flows/catalog.h flows/prompt.c flows/prompt.h flows/llmcall.c
flows/llmcall.h flows/kbsearch.c flows/sqlquery.c"

in_list() { # in_list WORD LIST: is WORD one of the words of LIST
	for w in $2; do [ "$w" = "$1" ] && return 0; done
	return 1
}

# --- the rules: each is a function FILE HEADER that succeeds when the
# include of HEADER (with its <> or "" delimiters) by FILE breaks the rule

master_sees_no_worker() {
	case $1 in master/*) case $2 in \"worker/*) return 0 ;; esac ;; esac
	return 1
}

lib_is_the_foundation() {
	case $1 in lib/*)
		case $2 in \"worker/* | \"master/* | \"cli/* | \"flows/* | \"sim/*) return 0 ;; esac ;;
	esac
	return 1
}

worker_sees_no_cli_or_master() {
	case $1 in worker/*) case $2 in \"cli/* | \"master/*) return 0 ;; esac ;; esac
	return 1
}

# Only the database layer, lib/db*.[ch] (db_pool, db_chat, db_users,
# db_session, dburl ...), includes libpq.
only_db_includes_libpq() {
	case $2 in
	'<libpq-fe.h>' | '"libpq-fe.h"' | '<libpq-events.h>' | '<libpq/'*) ;;
	*) return 1 ;;
	esac
	case $1 in lib/db*.c | lib/db*.h) return 1 ;; esac
	return 0
}

# Only the HTTP clients (the language model, the search service) include libcurl.
only_http_clients_include_curl() {
	case $2 in '<curl/'* | '"curl/'*) ;; *) return 1 ;; esac
	case $1 in lib/llm*.c | lib/llm*.h | lib/azsearch*.c | lib/azsearch*.h) return 1 ;; esac
	return 0
}

only_config_includes_libconfig() {
	case $2 in '<libconfig.h>' | '"libconfig.h"') ;; *) return 1 ;; esac
	case $1 in lib/config*.c | lib/config*.h) return 1 ;; esac
	return 0
}

only_sqlguard_includes_pg_query() {
	case $2 in '<pg_query.h>' | '"pg_query.h"' | '<pg_query/'*) ;; *) return 1 ;; esac
	case $1 in lib/sqlguard*.c | lib/sqlguard*.h) return 1 ;; esac
	return 0
}

# A flow includes the flow API (in the tree "flows/flow.h", installed
# <ingenious/flow.h>), the declarations of the built-in flows (which see
# nothing but the flow API, this rule checks them too), the build's own
# "autoconfig.h" (feature macros, no API), and the libc headers above.
flow_sees_only_the_flow_api() {
	case $1 in flows/*) ;; *) return 1 ;; esac
	in_list "$1" "$FLOW_INFRASTRUCTURE" && return 1
	case $2 in
	'"flows/flow.h"' | '<ingenious/flow.h>' | '"flows/builtin/builtin.h"' | '"autoconfig.h"')
		return 1 ;;
	# a built-in flow links with the server, which links cJSON
	# (flows/builtin/bike_insights.c reads a JSON payload)
	'<cjson/cJSON.h>')
		case $1 in flows/builtin/*) return 1 ;; esac ;;
	'<'*'>')
		h=${2#<}; h=${h%>}
		in_list "$h" "$LIBC_FOR_FLOWS" && return 1 ;;
	esac
	return 0
}

# --- the run

failed=0
rule() { # rule FUNCTION DESCRIPTION
	n=$((n + 1))
	: >"$tmp/bad"
	while IFS= read -r rec; do
		file=${rec%%:*}
		rest=${rec#*:}
		line=${rest%%:*}
		hdr=${rest#*:}
		if "$1" "$file" "$hdr"; then
			echo "$file:$line: includes $hdr" >>"$tmp/bad"
		fi
	done <"$tmp/includes"
	if [ -s "$tmp/bad" ]; then
		failed=$((failed + 1))
		echo "not ok $n - $2"
		sed 's/^/#   /' "$tmp/bad"
	else
		echo "ok $n - $2"
	fi
}

n=1
nfiles=$(wc -l <"$tmp/files" | tr -d ' ')
nincl=$(wc -l <"$tmp/includes" | tr -d ' ')
if [ "$nfiles" -gt 0 ] && [ "$nincl" -gt 0 ]; then
	echo "ok 1 - the check reads the sources"
	echo "# $nfiles files, $nincl includes under $top"
else
	failed=1
	echo "not ok 1 - the check reads the sources"
	echo "#   $nfiles files, $nincl includes under $top"
fi

rule master_sees_no_worker "master/ never includes worker/ headers"
rule lib_is_the_foundation "lib/ never includes worker/, master/, cli/, flows/ or sim/ headers"
rule worker_sees_no_cli_or_master "worker/ never includes cli/ or master/ headers"
rule only_db_includes_libpq "only lib/db* includes <libpq-fe.h>"
rule only_http_clients_include_curl "only lib/llm* and lib/azsearch* include <curl/curl.h>"
rule only_config_includes_libconfig "only lib/config* includes <libconfig.h>"
rule only_sqlguard_includes_pg_query "only lib/sqlguard* includes <pg_query.h>"
rule flow_sees_only_the_flow_api \
	"a flow includes only flows/flow.h (<ingenious/flow.h>) and libc headers (a built-in one also cJSON)"

echo "1..$n"
[ "$failed" -eq 0 ]
