/*
 * cli_kb.c -- `ingen kb`: the local knowledge base from the operator's
 * terminal: add files and directories, list, remove, search.
 *
 * It connects as the schema's owner, like `ingen db migrate` (the
 * database of --database-url, else chat_history.database_url, the libpq
 * environment or the owner role of the private cluster), runs one command
 * and exits.  Adding goes through lib/kbindex.c, the code the server runs
 * on kb.directory, so both store the same chunks.  It never runs inside
 * the server's processes and never prints the connection string.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/db_kb.h"
#include "lib/db_session.h"
#include "lib/dburl.h"
#include "lib/kb.h"
#include "lib/kbindex.h"
#include "lib/xmalloc.h"
#include "cli/cli.h"

#define CLI_KB_EXIT_OK       0
#define CLI_KB_EXIT_FAILURE  1
#define CLI_KB_EXIT_USAGE    2

static const char cli_kb_usage[] =
"Usage: ingen kb COMMAND [ARGS] [OPTIONS]\n"
"\n"
"The local knowledge base (PostgreSQL full-text search) that the\n"
"knowledge-base-agent searches; docs/knowledge-base.md.\n"
"\n"
"Commands:\n"
"  add FILE|DIR...   store .md and .txt files, one transaction per file: a\n"
"                    directory's files recursively, in order of their paths\n"
"                    (other files skipped); a new file is added, a changed one\n"
"                    has its chunks replaced, an unchanged one is left alone;\n"
"                    binary and non-UTF-8 files are refused\n"
"  list              the sources: chunks, bytes, configuration, when added\n"
"                    and last updated (UTC)\n"
"  remove SOURCE     remove a source (as `list` shows it) and its chunks\n"
"  search QUERY...   what a flow's search sees: rank, source#chunk, snippet\n"
"\n"
"Options:\n"
"  -k, --top K             search: at most K hits (default kb.topk_direct)\n"
"  -d, --database-url URL  the database (default: chat_history.database_url,\n"
"                          the libpq environment, or the owner role of the\n"
"                          private cluster in <server.state_dir>/pg)\n"
"  -c, --config FILE       configuration file (kb.text_search_config,\n"
"                          kb.chunk_max_chars, chat_history.*, server.state_dir)\n"
"  -h, --help              this help\n"
"\n"
"Chunks are paragraphs (text between blank lines), longer ones cut at sentence\n"
"ends to at most kb.chunk_max_chars characters, indexed with\n"
"kb.text_search_config; a file indexed with another configuration counts as\n"
"changed.  Exit codes: 0 ok, 1 failure (a file refused, no such source, a\n"
"database error), 2 usage or configuration.\n";

struct cli_kb_opts {
	const char *config_file;
	const char *database_url;
	int top;                       /* -1 = kb.topk_direct */
};

static void
cli_kb_wipe(char *s)
{
	if (s != NULL) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/* Open the session of the command.  Returns NULL (reported). */
static struct db_session *
cli_kb_connect(const struct cli_kb_opts *o, const struct config *cfg,
    const char *cmd)
{
	struct db_session *s;
	const char *source = NULL;
	char *url = NULL;
	struct err e;

	err_clear(&e);
	if (o->database_url != NULL)
		url = xstrdup(o->database_url);
	else if (dburl_resolve(cfg, DBURL_ROLE_OWNER, &url, &source, &e) < 0) {
		fprintf(stderr, "ingen kb %s: %s\n", cmd, e.msg);
		return NULL;
	}
	s = db_session_open(url, cfg->chat_history.connect_timeout, &e);
	cli_kb_wipe(url);
	if (s == NULL)
		fprintf(stderr, "ingen kb %s: %s\n", cmd, e.msg);
	return s;
}

static void
cli_kb_add_report(void *arg, enum kbindex_event ev, const char *source,
    size_t chunks, const char *why)
{
	(void)arg;
	switch (ev) {
	case KBINDEX_ADDED:
		printf("%s: added %zu chunk%s\n", source, chunks, chunks == 1 ? "" : "s");
		break;
	case KBINDEX_REPLACED:
		printf("%s: replaced %zu chunk%s\n", source, chunks, chunks == 1 ? "" : "s");
		break;
	case KBINDEX_UNCHANGED:
		printf("%s: unchanged\n", source);
		break;
	case KBINDEX_SKIPPED:
		printf("%s: skipped (%s)\n", source, why);
		break;
	case KBINDEX_REFUSED:
		fflush(stdout);
		fprintf(stderr, "ingen kb add: refused %s: %s\n", source, why);
		break;
	}
	fflush(stdout);
}

static int
cli_kb_add(struct db_session *s, const struct config *cfg,
    const char *const *paths, size_t n)
{
	struct kbindex_opts ko;
	struct kbindex_stats st;
	struct err e;
	int rc;

	memset(&ko, 0, sizeof(ko));
	ko.tsconfig = cfg->kb.text_search_config;
	ko.chunk_max_chars = cfg->kb.chunk_max_chars;
	ko.report = cli_kb_add_report;
	err_clear(&e);
	rc = kbindex_paths(s, paths, n, &ko, &st, &e);
	printf("%d added, %d replaced, %d unchanged, %d refused, %d skipped; "
	    "%ld chunks stored\n", st.added, st.replaced, st.unchanged,
	    st.refused, st.skipped, st.chunks);
	if (rc < 0) {
		fprintf(stderr, "ingen kb add: %s\n", e.msg);
		return CLI_KB_EXIT_FAILURE;
	}
	return st.refused > 0 ? CLI_KB_EXIT_FAILURE : CLI_KB_EXIT_OK;
}

static int
cli_kb_list(struct db_session *s)
{
	struct arena *a = arena_create(0);
	struct db_kb_source *v;
	size_t n, i;
	struct err e;

	err_clear(&e);
	if (db_kb_sources(s, a, &v, &n, &e) < 0) {
		fprintf(stderr, "ingen kb list: %s\n", e.msg);
		arena_destroy(a);
		return CLI_KB_EXIT_FAILURE;
	}
	if (n == 0) {
		printf("the knowledge base is empty (add files with ingen kb add FILE|DIR)\n");
	} else {
		printf("SOURCE\tCHUNKS\tBYTES\tCONFIG\tADDED\tUPDATED\n");
		for (i = 0; i < n; i++)
			printf("%s\t%d\t%lld\t%s\t%s\t%s\n", v[i].source, v[i].chunks,
			    v[i].bytes, v[i].tsconfig, v[i].added_at, v[i].updated_at);
	}
	arena_destroy(a);
	return CLI_KB_EXIT_OK;
}

static int
cli_kb_remove(struct db_session *s, const char *arg)
{
	struct arena *a = arena_create(0);
	const char *source = kb_source_normalize(arg, a);
	enum db_status st;
	struct err e;
	int chunks, rc = CLI_KB_EXIT_OK;

	err_clear(&e);
	st = db_kb_remove(s, source, &chunks, &e);
	if (st == DB_OK) {
		printf("removed %s (%d chunk%s)\n", source, chunks, chunks == 1 ? "" : "s");
	} else if (st == DB_NOT_FOUND) {
		fprintf(stderr, "ingen kb remove: no source \"%s\" in the knowledge base "
		    "(see ingen kb list)\n", source);
		rc = CLI_KB_EXIT_FAILURE;
	} else {
		fprintf(stderr, "ingen kb remove: %s\n", e.msg);
		rc = CLI_KB_EXIT_FAILURE;
	}
	arena_destroy(a);
	return rc;
}

static int
cli_kb_search(struct db_session *s, const struct config *cfg,
    const char *query, int top)
{
	struct arena *a = arena_create(0);
	struct db_kb_hit *h;
	struct db_kb_source *v;
	size_t n, i;
	long total = 0;
	struct err e;
	int k, rc = CLI_KB_EXIT_OK;

	err_clear(&e);
	k = db_kb_session_search(s, cfg->kb.text_search_config, query,
	    top, a, &h, &e);
	if (k < 0) {
		fprintf(stderr, "ingen kb search: %s\n", e.msg);
		rc = CLI_KB_EXIT_FAILURE;
		goto out;
	}
	if (k == 0) {
		if (db_kb_sources(s, a, &v, &n, &e) < 0) {
			fprintf(stderr, "ingen kb search: %s\n", e.msg);
			rc = CLI_KB_EXIT_FAILURE;
			goto out;
		}
		for (i = 0; i < n; i++)
			total += v[i].chunks;
		if (total == 0)
			printf("no match: the knowledge base is empty (add files with "
			    "ingen kb add FILE|DIR)\n");
		else
			printf("no match in %ld chunks (text-search configuration %s)\n",
			    total, cfg->kb.text_search_config);
		goto out;
	}
	for (i = 0; i < (size_t)k; i++)
		printf("%.4f\t%s#%d\t%s\n", h[i].rank, h[i].source, h[i].chunk,
		    h[i].snippet != NULL ? h[i].snippet : "");
out:
	arena_destroy(a);
	return rc;
}

/* The words of argv[from..argc) joined with spaces (heap). */
static char *
cli_kb_join(int argc, char **argv, int from)
{
	struct buf b;
	char *q;
	int i;

	buf_init(&b);
	for (i = from; i < argc; i++) {
		if (i > from)
			buf_putc(&b, ' ');
		buf_puts(&b, argv[i]);
	}
	q = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return q;
}

int
cli_kb_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "database-url", required_argument, NULL, 'd' },
		{ "top", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_kb_opts o = { NULL, NULL, -1 };
	struct db_session *s;
	struct config *cfg;
	const char *cmd;
	char *end, *query = NULL;
	int c, rc, nargs, sub_argc = argc - 1;
	char **sub_argv = argv + 1;

	if (argc < 2) {
		fputs(cli_kb_usage, stderr);
		return CLI_KB_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(cli_kb_usage, stdout);
		return CLI_KB_EXIT_OK;
	}
	if (strcmp(cmd, "add") != 0 && strcmp(cmd, "list") != 0 &&
	    strcmp(cmd, "remove") != 0 && strcmp(cmd, "search") != 0) {
		fprintf(stderr, "ingen kb: unknown command \"%s\"\n\n%s", cmd,
		    cli_kb_usage);
		return CLI_KB_EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(sub_argc, sub_argv, "c:d:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.config_file = optarg;
			break;
		case 'd':
			o.database_url = optarg;
			break;
		case 'k':
			o.top = (int)strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || o.top < 1 ||
			    o.top > DB_KB_TOP_K_MAX) {
				fprintf(stderr, "ingen kb: --top wants a number from 1 to %d, "
				    "not \"%s\"\n", DB_KB_TOP_K_MAX, optarg);
				return CLI_KB_EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(cli_kb_usage, stdout);
			return CLI_KB_EXIT_OK;
		default:
			return CLI_KB_EXIT_USAGE;
		}
	}
	/* sub_argv[optind..] are the command's arguments (getopt moved the
	 * options before them; the command itself is the first) */
	nargs = sub_argc - optind;
	if (strcmp(cmd, "list") == 0 && nargs != 0) {
		fprintf(stderr, "ingen kb list: unexpected argument \"%s\"\n",
		    sub_argv[optind]);
		return CLI_KB_EXIT_USAGE;
	}
	if (strcmp(cmd, "remove") == 0 && nargs != 1) {
		fprintf(stderr, "ingen kb remove: exactly one SOURCE is required\n");
		return CLI_KB_EXIT_USAGE;
	}
	if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "search") == 0) && nargs < 1) {
		fprintf(stderr, "ingen kb %s: %s\n", cmd, strcmp(cmd, "add") == 0 ?
		    "at least one FILE or DIR is required" : "a QUERY is required");
		return CLI_KB_EXIT_USAGE;
	}
	if (strcmp(cmd, "search") == 0) {
		query = cli_kb_join(sub_argc, sub_argv, optind);
		if (query[0] == '\0') {
			fprintf(stderr, "ingen kb search: the QUERY is empty\n");
			free(query);
			return CLI_KB_EXIT_USAGE;
		}
	}
	if ((cfg = cli_config_load_file(o.config_file)) == NULL) {
		free(query);
		return CLI_KB_EXIT_USAGE;
	}
	if ((s = cli_kb_connect(&o, cfg, cmd)) == NULL) {
		rc = CLI_KB_EXIT_FAILURE;
		goto out;
	}
	if (strcmp(cmd, "add") == 0)
		rc = cli_kb_add(s, cfg, (const char *const *)(sub_argv + optind),
		    (size_t)nargs);
	else if (strcmp(cmd, "list") == 0)
		rc = cli_kb_list(s);
	else if (strcmp(cmd, "remove") == 0)
		rc = cli_kb_remove(s, sub_argv[optind]);
	else
		rc = cli_kb_search(s, cfg, query, o.top > 0 ? o.top :
		    cfg->kb.topk_direct);
	db_session_close(s);
out:
	free(query);
	config_free(cfg);
	return rc;
}
