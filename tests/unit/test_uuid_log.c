/*
 * test_uuid_log.c -- unit tests of lib/uuid.c (format, version bits,
 * uniqueness, validation, reseeding after fork) and lib/log.c (logfmt and
 * JSON lines, escaping, levels, request ids, a file that is reopened).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/uuid.h"
#include "tests/unit/tap.h"

static char *
slurp(const char *path)
{
	static char data[65536];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(data, 1, sizeof(data) - 1, f);
		fclose(f);
	}
	data[n] = '\0';
	return data;
}

int
main(void)
{
	char u[UUID_STR_LEN], prev[UUID_STR_LEN], path[64], child[UUID_STR_LEN];
	int i, dup = 0, fds[2];
	struct err e;
	char *text;
	pid_t pid;

	uuid_v4(u);
	is_int((long long)strlen(u), 36, "uuid is 36 characters");
	ok(u[14] == '4' && strchr("89ab", u[19]) != NULL, "version 4, RFC 4122 variant");
	ok(uuid_valid(u), "uuid_valid accepts it");
	ok(!uuid_valid("not-a-uuid") && !uuid_valid("00000000-0000-0000-0000-00000000000g"),
	    "uuid_valid rejects garbage");
	for (i = 0; i < 10000; i++) {
		memcpy(prev, u, sizeof(u));
		uuid_v4(u);
		if (strcmp(prev, u) == 0)
			dup++;
	}
	is_int(dup, 0, "10000 uuids without a repeat");

	/* a child must not repeat the parent's sequence */
	if (pipe(fds) == 0) {
		pid = fork();
		if (pid == 0) {
			uuid_reseed_after_fork();
			uuid_v4(child);
			(void)!write(fds[1], child, sizeof(child));
			_exit(0);
		}
		(void)!read(fds[0], child, sizeof(child));
		waitpid(pid, NULL, 0);
		uuid_v4(u);
		ok(strcmp(child, u) != 0, "a forked child reseeds");
	}

	snprintf(path, sizeof(path), "/tmp/ingen-test-log-%d", (int)getpid());
	err_clear(&e);
	ok(log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, path, &e) == 0, "log to a file");
	log_set_role("worker.7");
	log_set_request_id("req-1");
	log_info("doing things", "hello \"%s\"", "quoted");
	log_debug("noise", "not shown");
	log_set_request_id(NULL);
	log_emit(LOG_LEVEL_WARNING, NULL, (struct log_field[]){ LOG_STR("k", "v w"),
	    LOG_INT("n", 5) }, 2, "fields");
	text = slurp(path);
	ok(strstr(text, "level=info role=worker.7 pid=") != NULL, "logfmt: level, role, pid");
	ok(strstr(text, "req=req-1 action=\"doing things\" msg=\"hello \\\"quoted\\\"\"") != NULL,
	    "logfmt: request id, action, escaped message");
	ok(strstr(text, "not shown") == NULL, "debug is below the level");
	ok(strstr(text, "k=\"v w\" n=5") != NULL, "extra fields, quoted when needed");
	ok(strstr(text, "msg=fields") != NULL && strstr(text, "req=") == strstr(text, "req=req-1"),
	    "no request id once cleared");

	/* rotation: rename, reopen, a new file */
	rename(path, "/tmp/ingen-test-log-rotated");
	ok(log_reopen(&e) == 0, "log_reopen");
	ok(log_configure(LOG_FORMAT_JSON, LOG_LEVEL_DEBUG, path, &e) == 0, "JSON format");
	log_error("x", "tab\there");
	text = slurp(path);
	ok(strncmp(text, "{\"ts\":\"", 7) == 0 && strstr(text, "\"level\":\"error\"") != NULL &&
	    strstr(text, "\"msg\":\"tab\\there\"}") != NULL, "JSON line with escaping");
	is_int(log_level_parse("critical"), LOG_LEVEL_ALERT, "critical parses as alert");
	is_int(log_level_parse("loud"), -1, "unknown level");
	is_int(log_format_parse("json"), LOG_FORMAT_JSON, "json format parses");
	ok(log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, "/nonexistent/dir/x.log", &e) != 0 &&
	    strstr(e.msg, "could not open log file") != NULL, "an unopenable log file is an error");

	/* prepare, then commit or discard: nothing changes before the commit */
	{
		struct log_target t = LOG_TARGET_INIT, bad = LOG_TARGET_INIT;
		char path2[64];

		snprintf(path2, sizeof(path2), "/tmp/ingen-test-log2-%d", (int)getpid());
		ok(log_configure(LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, path, &e) == 0,
		    "back to logfmt in the first file");
		ok(log_prepare(&bad, LOG_FORMAT_JSON, LOG_LEVEL_INFO, "/nonexistent/dir/x.log",
		    &e) != 0 && strstr(e.msg, "could not open log file \"/nonexistent/dir/x.log\"")
		    != NULL && bad.fd == -1, "log_prepare: an unopenable file fails, holding nothing");
		ok(log_prepare(&t, LOG_FORMAT_JSON, LOG_LEVEL_INFO, path2, &e) == 0 && t.fd >= 0,
		    "log_prepare opens the new file");
		log_info("x", "before the commit");
		log_commit(&t);
		log_info("x", "after the commit");
		text = slurp(path);
		ok(strstr(text, "msg=\"before the commit\"") != NULL &&
		    strstr(text, "after the commit") == NULL, "until the commit, the old file");
		text = slurp(path2);
		ok(strstr(text, "\"msg\":\"after the commit\"") != NULL &&
		    strstr(text, "before the commit") == NULL && t.fd == -1,
		    "after it, the new file and format");
		ok(log_prepare(&t, LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO, path, &e) == 0, "prepare again");
		log_discard(&t);
		log_info("x", "discarded");
		text = slurp(path2);
		ok(strstr(text, "discarded") != NULL && t.fd == -1,
		    "log_discard leaves the running log alone");
		unlink(path2);
	}
	unlink(path);
	unlink("/tmp/ingen-test-log-rotated");
	return tap_done();
}
