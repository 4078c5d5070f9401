/*
 * test_ujournal.c -- unit tests of lib/ujournal.c in a temporary folder: the
 * file (name, size, mode, made under a state dir that does not exist yet),
 * put / drop / defer and a full journal, records too long or empty, the
 * deferred list (written rows freed, refused ones kept), recovery of an
 * orphan left by a child process that died with SIGKILL (its held and
 * deferred rows replayed, its free ones not, the file removed), a journal
 * still locked by a live process skipped, a replay that fails leaving the
 * file for the next time, a file that is not a journal set aside as .bad,
 * and a clean close removing an empty journal.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/ujournal.h"
#include "tests/unit/tap.h"

static char base[256];
static char dir[300];

/* Files in dir whose name starts with prefix. */
static int
count_files(const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

/* What a replay saw. */
struct seen {
	int calls;
	int records;
	char all[4096];
	int fail;          /* return -1 from the replay */
};

static int
replay(void *arg, const char *const *recs, const size_t *lens, size_t n)
{
	struct seen *s = arg;
	size_t i;

	s->calls++;
	if (s->fail)
		return -1;
	for (i = 0; i < n; i++) {
		s->records++;
		strncat(s->all, recs[i], lens[i] < 100 ? lens[i] : 100);
		strcat(s->all, ";");
	}
	return 0;
}

static int written_calls;

static int
write_even(void *arg, const char *rec, size_t len)
{
	(void)arg;
	(void)len;
	written_calls++;
	/* "row N": write the even ones, refuse the odd ones */
	return (rec[4] - '0') % 2 == 0 ? 0 : -1;
}

static void
test_basics(void)
{
	struct err e;
	struct uj *j;
	char big[UJ_RECORD_MAX + 2];
	size_t used, deferred;
	int s0, s1, s2, s3, s5;
	struct stat st;
	DIR *d;
	struct dirent *de;
	char path[600] = "";

	err_clear(&e);
	j = uj_open(dir, 3, &e);
	ok(j != NULL, "uj_open makes the journal and its folders: %s", e.msg);
	if (j == NULL)
		return;
	d = opendir(dir);
	while (d != NULL && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "usage-", 6) == 0)
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
	if (d != NULL)
		closedir(d);
	ok(path[0] != '\0' && stat(path, &st) == 0, "a usage-<pid>-<random>.uj file exists");
	is_int(st.st_size, 4096 + 3 * UJ_SLOT_SIZE, "its size is the header and 3 slots");
	is_int(st.st_mode & 0777, 0600, "it is 0600");
	is_int(count_files(".new-"), 0, "no temporary file is left");

	s0 = uj_put(j, "row 0", 5);
	s1 = uj_put(j, "row 1", 5);
	s2 = uj_put(j, "row 2", 5);
	s3 = uj_put(j, "row 3", 5);
	ok(s0 >= 0 && s1 >= 0 && s2 >= 0 && s0 != s1 && s1 != s2 && s0 != s2,
	    "three records take three slots");
	is_int(s3, -1, "a fourth finds the journal full");
	uj_drop(j, s1);
	s3 = uj_put(j, "row 3", 5);
	is_int(s3, s1, "a dropped slot is the next one handed out");
	uj_drop(j, s3);
	uj_drop(j, s3);   /* twice: must not free it twice */
	s5 = uj_put(j, "row 5", 5);
	ok(s5 >= 0 && uj_put(j, "row 6", 5) == -1, "dropping a slot twice frees it once");

	memset(big, 'x', sizeof(big));
	is_int(uj_put(j, big, UJ_RECORD_MAX + 1), -1, "a record above UJ_RECORD_MAX is refused");
	is_int(uj_put(j, "", 0), -1, "an empty record is refused");

	uj_counts(j, &used, &deferred);
	is_int(used, 3, "three slots in use");
	is_int(deferred, 0, "none deferred");
	uj_defer(j, s0);
	uj_defer(j, s5);
	uj_counts(j, &used, &deferred);
	is_int(deferred, 2, "two deferred");
	written_calls = 0;
	is_int(uj_deferred(j, 100, write_even, NULL), 1, "uj_deferred frees the written row");
	is_int(written_calls, 2, "and offered both deferred rows");
	uj_counts(j, &used, &deferred);
	is_int(deferred, 1, "the refused one stays deferred");
	is_int(used, 2, "and in use");
	uj_close(j);
	ok(stat(path, &st) == 0, "a journal closed with rows in it is left for recovery");
	unlink(path);

	j = uj_open(dir, 2, &e);
	ok(j != NULL, "a second journal");
	if (j == NULL)
		return;
	uj_drop(j, uj_put(j, "row 0", 5));
	uj_close(j);
	is_int(count_files("usage-"), 0, "a journal closed empty is removed");

	is_int(uj_open(dir, 0, &e) == NULL, 1, "0 slots is refused");
	ok(strstr(e.msg, "out of range") != NULL, "with a message: %s", e.msg);
}

/* A child writes rows and dies with SIGKILL, or stays alive until told. */
static pid_t
child_journal(int die, int ready_fd[2])
{
	pid_t pid = fork();
	struct err e;
	struct uj *j;
	char c = 'r';
	int s;

	if (pid != 0)
		return pid;
	close(ready_fd[0]);
	err_clear(&e);
	j = uj_open(dir, 8, &e);
	if (j == NULL)
		_exit(3);
	uj_put(j, "{\"held\":1}", 10);
	s = uj_put(j, "{\"deferred\":2}", 14);
	uj_defer(j, s);
	uj_drop(j, uj_put(j, "{\"dropped\":3}", 13));
	if (write(ready_fd[1], &c, 1) != 1)
		_exit(4);
	if (die)
		raise(SIGKILL);
	pause();
	_exit(0);
}

static void
test_recover(void)
{
	struct seen s;
	struct err e;
	int fds[2];
	pid_t live, dead;
	char c;
	int status;
	FILE *f;
	char bad[600];

	/* a live process's journal is never touched */
	if (pipe(fds) != 0)
		return;
	live = child_journal(0, fds);
	close(fds[1]);
	ok(read(fds[0], &c, 1) == 1, "a live child wrote its journal");
	close(fds[0]);
	memset(&s, 0, sizeof(s));
	err_clear(&e);
	is_int(uj_recover(dir, NULL, 10, replay, &s, &e), 0,
	    "uj_recover skips a journal whose process is alive");
	is_int(s.calls, 0, "and replays nothing of it");

	/* a dead one's is replayed */
	if (pipe(fds) != 0)
		return;
	dead = child_journal(1, fds);
	close(fds[1]);
	ok(read(fds[0], &c, 1) == 1, "a second child wrote its journal");
	close(fds[0]);
	waitpid(dead, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "and died of SIGKILL");
	is_int(count_files("usage-"), 2, "two journals are there");

	memset(&s, 0, sizeof(s));
	s.fail = 1;
	is_int(uj_recover(dir, NULL, 10, replay, &s, &e), 0,
	    "a replay that fails counts nothing");
	is_int(count_files("usage-"), 2, "and leaves the file for the next time");

	memset(&s, 0, sizeof(s));
	is_int(uj_recover(dir, NULL, 1, replay, &s, &e), 2,
	    "uj_recover replays the dead child's two rows");
	is_int(s.calls, 2, "in batches of the size asked (1)");
	ok(strstr(s.all, "{\"held\":1};") != NULL && strstr(s.all, "{\"deferred\":2};") != NULL,
	    "its held and its deferred row: %s", s.all);
	ok(strstr(s.all, "dropped") == NULL, "not the dropped one");
	is_int(count_files("usage-"), 1, "its file is removed; the live one stays");

	memset(&s, 0, sizeof(s));
	is_int(uj_recover(dir, NULL, 10, replay, &s, &e), 0, "a second pass finds nothing");

	kill(live, SIGKILL);
	waitpid(live, &status, 0);
	memset(&s, 0, sizeof(s));
	is_int(uj_recover(dir, NULL, 10, replay, &s, &e), 2,
	    "once the live child dies, its rows are replayed too");
	is_int(count_files("usage-"), 0, "and its file removed");

	/* not a journal */
	snprintf(bad, sizeof(bad), "%s/usage-1-0000000000000000.uj", dir);
	f = fopen(bad, "w");
	if (f != NULL) {
		fputs("not a journal", f);
		fclose(f);
	}
	memset(&s, 0, sizeof(s));
	is_int(uj_recover(dir, NULL, 10, replay, &s, &e), 0, "a file that is not a journal");
	is_int(count_files("usage-1-0000000000000000.uj.bad"), 1, "is set aside as .bad");
	is_int(s.calls, 0, "and nothing of it is replayed");

	memset(&s, 0, sizeof(s));
	is_int(uj_recover("/nonexistent/usage-journal", NULL, 10, replay, &s, &e), 0,
	    "a journal folder that does not exist has nothing to replay");
}

int
main(void)
{
	char cmd[600];

	snprintf(base, sizeof(base), "/tmp/test_ujournal.XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	/* the state dir does not exist yet: uj_open makes it and its folder */
	snprintf(dir, sizeof(dir), "%s/state/%s", base, UJ_DIR_NAME);

	test_basics();
	test_recover();

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", base);
	return tap_done();
}
