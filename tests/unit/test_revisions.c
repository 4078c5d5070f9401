/*
 * test_revisions.c -- unit tests of lib/revisions.c in a temporary folder:
 * names (.., '/', '\', encoded names, NUL inside a name, absolute paths,
 * suffixes, length), listing, reading and sizes, atomic writes (the file is
 * replaced by rename, never truncated), versions and their hashes, the
 * content of `ingen init` as a first version, create and copy, and
 * symbolic links: a revision folder or a file pointing outside, and one
 * pointing inside, all refused with nothing read or written.
 */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/http.h"
#include "lib/revisions.h"
#include "lib/router.h"
#include "tests/unit/tap.h"

static char base[256];

static void
put(const char *rel, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	f = fopen(p, "w");
	if (f == NULL) {
		perror(p);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static char *
slurp(const char *rel)
{
	static char buf[4096];
	char p[512];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	f = fopen(p, "r");
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
sub(const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	if (mkdir(p, 0755) < 0) {
		perror(p);
		exit(2);
	}
}

static void
link_to(const char *target, const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", base, rel);
	if (symlink(target, p) < 0) {
		perror(p);
		exit(2);
	}
}

static void
test_names(void)
{
	struct err e;
	static const char *bad_rev[] = { "", ".", "..", "../x", "a/b", "a\\b",
	    "/etc", ".hidden", "a%2Fb", "a%2e%2e", "a b", "a;b", "é", NULL };
	static const char *bad_file[] = { "x.txt", "x", ".md", "..md", "../a.md",
	    "/etc/passwd", "a/b.md", "a\\b.md", "a%2Fb.md", "%2e%2e.md",
	    "x.md.bak", "x.MD", "x.jinja2", NULL };
	char longname[REV_NAME_MAX + 8];
	int i;

	ok(rev_name_check("quickstart-1", false, &e) == 0, "a revision id");
	ok(rev_name_check("bike_insights.v2", false, &e) == 0, "dots and _");
	ok(rev_name_check("user_prompt.md", true, &e) == 0, "a .md file");
	ok(rev_name_check("summary_prompt.jinja", true, &e) == 0, "a .jinja file");
	for (i = 0; bad_rev[i] != NULL; i++) {
		e.status = 0;
		ok(rev_name_check(bad_rev[i], false, &e) < 0 && e.status == 400,
		    "revision id \"%s\" refused (400)", bad_rev[i]);
	}
	for (i = 0; bad_file[i] != NULL; i++) {
		e.status = 0;
		ok(rev_name_check(bad_file[i], true, &e) < 0 && e.status == 400,
		    "file name \"%s\" refused (400)", bad_file[i]);
	}
	ok(rev_name_check(NULL, true, &e) < 0, "NULL refused");
	ok(rev_name_check("a\n", false, &e) < 0 && e.status == 400,
	    "a control character refused");
	rev_name_check("../a.md", true, &e);
	ok(strstr(e.msg, "'/'") != NULL, "the message says why: %s", e.msg);
	memset(longname, 'a', REV_NAME_MAX);
	longname[REV_NAME_MAX] = '\0';
	ok(rev_name_check(longname, false, &e) == 0, "%d bytes allowed",
	    REV_NAME_MAX);
	longname[REV_NAME_MAX] = 'a';
	longname[REV_NAME_MAX + 1] = '\0';
	ok(rev_name_check(longname, false, &e) < 0 && e.status == 400,
	    "%d bytes refused", REV_NAME_MAX + 1);
}

/* A NUL inside a name: the C API sees the bytes before it only ("a.md"
 * of "a.md\0.txt"), so the layer that knows the length must refuse it:
 * the router does, for a decoded %00 in a parameter. */
static void
test_nul(void)
{
	static int h;
	static const struct router_route r[] = {
		{ HTTP_METHOD_GET, "/v/{revision_id}/{filename}", &h, 0, NULL },
	};
	struct arena *a = arena_create(1024);
	struct router_match m;
	struct err e;
	const char name[] = "a.md\0.txt";

	ok(strlen(name) != sizeof(name) - 1, "a name with a NUL: strlen is "
	    "shorter than its length");
	ok(router_match(r, 1, HTTP_METHOD_GET, "/v/q/a.md%00.txt", a, &m, &e) ==
	    ROUTER_ERROR && e.status == 400, "a decoded %%00 in a parameter is "
	    "refused by the router (400)");
	ok(router_match(r, 1, HTTP_METHOD_GET, "/v/q/..%2Fx.md", a, &m, &e) ==
	    ROUTER_ERROR && e.status == 400, "a decoded %%2F is refused (400)");
	ok(router_match(r, 1, HTTP_METHOD_GET, "/v/%2e%2e/x.md", a, &m, &e) ==
	    ROUTER_FOUND && strcmp(router_param(&m, "revision_id"), "..") == 0 &&
	    rev_name_check(router_param(&m, "revision_id"), false, &e) < 0,
	    "%%2e%%2e decodes to .., which rev_name_check refuses");
	arena_destroy(a);
}

static void
test_files(struct config *cfg)
{
	struct arena *a = arena_create(4096);
	const char **names, *text;
	size_t n, len;
	char hash[REV_HASH_LEN + 1], want[REV_HASH_LEN + 1];
	struct err e;
	int rc;

	rc = rev_list(cfg, a, &names, &n, &e);
	ok(rc == 0 && n == 0, "no templates folder: no revisions, no error");
	sub("templates");
	sub("templates/prompts");
	sub("templates/prompts/quickstart-1");
	sub("templates/prompts/bike_insights");
	sub("templates/prompts/.hidden");
	put("templates/prompts/stray.md", "not a folder");
	put("templates/prompts/quickstart-1/user_prompt.md", "Hello {{ name }}");
	put("templates/prompts/quickstart-1/b.jinja", "B");
	put("templates/prompts/quickstart-1/notes.txt", "not a template");
	sub("templates/prompts/quickstart-1/dir.md");
	put("outside.md", "SECRET");
	link_to("../../outside.md", "templates/prompts/quickstart-1/out.md");
	link_to("user_prompt.md", "templates/prompts/quickstart-1/in.md");
	link_to("../../", "templates/prompts/escape");
	link_to("quickstart-1", "templates/prompts/alias");

	rc = rev_list(cfg, a, &names, &n, &e);
	ok(rc == 0 && n == 2 && strcmp(names[0], "bike_insights") == 0 &&
	    strcmp(names[1], "quickstart-1") == 0,
	    "revisions sorted; files, hidden folders and links left out");
	rc = rev_files(cfg, "quickstart-1", a, &names, &n, &e);
	ok(rc == 0 && n == 2 && strcmp(names[0], "b.jinja") == 0 &&
	    strcmp(names[1], "user_prompt.md") == 0,
	    "files sorted: .md and .jinja regular files only, no links");
	rc = rev_files(cfg, "nothing", a, &names, &n, &e);
	ok(rc == 0 && n == 0, "an unknown revision lists no files");
	ok(rev_files(cfg, "..", a, &names, &n, &e) < 0 && e.status == 400,
	    "rev_files(..): 400");
	ok(rev_files(cfg, "escape", a, &names, &n, &e) < 0 && e.status == 400 &&
	    strstr(e.msg, "symbolic link") != NULL,
	    "a revision folder linked outside: 400 (%s)", e.msg);
	ok(rev_files(cfg, "alias", a, &names, &n, &e) < 0 && e.status == 400,
	    "a revision folder linked inside: 400 too");

	rc = rev_read(cfg, "quickstart-1", "user_prompt.md", a, &text, &len,
	    hash, &e);
	ok(rc == 0 && len == 16 && strcmp(text, "Hello {{ name }}") == 0,
	    "rev_read: the content");
	ok(crypto_sha256_hex("Hello {{ name }}", 16, want, &e) == 0 &&
	    strcmp(hash, want) == 0, "rev_read: its sha256");
	ok(rev_read(cfg, "quickstart-1", "none.md", a, &text, &len, hash, &e) < 0
	    && e.status == 404, "a missing file: 404");
	ok(rev_read(cfg, "nothing", "a.md", a, &text, &len, hash, &e) < 0 &&
	    e.status == 404, "a missing revision: 404");
	ok(rev_read(cfg, "quickstart-1", "out.md", a, &text, &len, hash, &e) < 0
	    && e.status == 400 && strstr(e.msg, "symbolic link") != NULL,
	    "a file linked outside: 400 (%s)", e.msg);
	ok(rev_read(cfg, "quickstart-1", "in.md", a, &text, &len, hash, &e) < 0
	    && e.status == 400, "a file linked inside: 400 too");
	ok(rev_read(cfg, "escape", "outside.md", a, &text, &len, hash, &e) < 0
	    && e.status == 400, "a file below a linked folder: 400");
	ok(rev_read(cfg, "quickstart-1", "dir.md", a, &text, &len, hash, &e) < 0
	    && e.status == 400, "a folder named .md: 400");
	ok(rev_read(cfg, "quickstart-1", "../../outside.md", a, &text, &len,
	    hash, &e) < 0 && e.status == 400, "../../outside.md: 400");
	ok(rev_read(cfg, "quickstart-1", "notes.txt", a, &text, &len, hash,
	    &e) < 0 && e.status == 400, "notes.txt: 400");

	ok(rev_write(cfg, "quickstart-1", "out.md", "X", 1, hash, &e) < 0 &&
	    e.status == 400, "writing through a link outside: 400");
	ok(rev_write(cfg, "escape", "outside.md", "X", 1, hash, &e) < 0 &&
	    e.status == 400, "writing below a linked folder: 400");
	ok(rev_write(cfg, "quickstart-1", "/tmp/x.md", "X", 1, hash, &e) < 0 &&
	    e.status == 400, "an absolute file name: 400");
	ok(rev_write(cfg, "nothing", "a.md", "X", 1, hash, &e) < 0 &&
	    e.status == 404, "writing into a missing revision: 404");
	is_str(slurp("outside.md"), "SECRET", "the file outside is untouched");

	{
		char *big = malloc(REV_FILE_MAX + 1);

		memset(big, 'x', REV_FILE_MAX + 1);
		ok(rev_write(cfg, "quickstart-1", "big.md", big, REV_FILE_MAX + 1,
		    hash, &e) < 0 && e.status == 413, "larger than REV_FILE_MAX: 413");
		ok(rev_write(cfg, "quickstart-1", "big.md", big, REV_FILE_MAX,
		    hash, &e) == 0, "exactly REV_FILE_MAX: written");
		ok(rev_read(cfg, "quickstart-1", "big.md", a, &text, &len, hash,
		    &e) == 0 && len == REV_FILE_MAX, "and read back");
		snprintf((char *)big, 512, "%s/templates/prompts/quickstart-1/"
		    "big.md", base);
		unlink(big);
		free(big);
	}
	{
		char p[512];
		FILE *f;
		int i;

		snprintf(p, sizeof(p), "%s/templates/prompts/quickstart-1/huge.md",
		    base);
		f = fopen(p, "w");
		for (i = 0; i <= REV_FILE_MAX; i++)
			fputc('y', f);
		fclose(f);
		ok(rev_read(cfg, "quickstart-1", "huge.md", a, &text, &len, hash,
		    &e) < 0 && e.status == 413, "reading a file over the limit: 413");
		unlink(p);
	}
	arena_destroy(a);
}

static void
test_versions(struct config *cfg)
{
	struct arena *a = arena_create(4096);
	struct rev_version *v;
	const char *text;
	size_t n, len;
	char h0[REV_HASH_LEN + 1], h1[REV_HASH_LEN + 1], h2[REV_HASH_LEN + 1];
	char p[512];
	struct stat st0, st1;
	struct err e;
	int fd;

	/* the file of `ingen init`: no kept version yet */
	ok(rev_versions(cfg, "quickstart-1", "user_prompt.md", a, &v, &n, &e) == 0
	    && n == 1 && v[0].size == 16, "a file with no kept version: its "
	    "content is the first version");
	ok(rev_read(cfg, "quickstart-1", "user_prompt.md", a, &text, &len, h0,
	    &e) == 0 && n == 1 && strcmp(v[0].hash, h0) == 0,
	    "with the hash of the content");
	ok(rev_read_version(cfg, "quickstart-1", "user_prompt.md", h0, a, &text,
	    &len, &e) == 0 && strcmp(text, "Hello {{ name }}") == 0,
	    "rev_read_version of the current, unkept content");

	/* atomic: the old inode stays whole (a reader holding it sees it all) */
	snprintf(p, sizeof(p), "%s/templates/prompts/quickstart-1/user_prompt.md",
	    base);
	fd = open(p, O_RDONLY);
	fstat(fd, &st0);
	ok(rev_write(cfg, "quickstart-1", "user_prompt.md", "Version two", 11, h1,
	    &e) == 0, "rev_write: 0");
	stat(p, &st1);
	ok(st0.st_ino != st1.st_ino, "the file is replaced by rename (a new inode)");
	{
		char buf[64];
		ssize_t r = pread(fd, buf, sizeof(buf), 0);

		ok(r == 16 && memcmp(buf, "Hello {{ name }}", 16) == 0,
		    "a reader of the old file still reads all of the old content");
	}
	close(fd);
	ok((st1.st_mode & 0777) == 0644, "mode 0644");
	is_str(slurp("templates/prompts/quickstart-1/user_prompt.md"),
	    "Version two", "the new content is in place");
	ok(strcmp(h0, h1) != 0, "a new hash");
	snprintf(p, sizeof(p), "templates/prompts/quickstart-1/.versions/"
	    "user_prompt.md/%s", h0);
	is_str(slurp(p), "Hello {{ name }}", "the old content was kept first");
	{
		char full[1024];
		struct stat kept;

		snprintf(full, sizeof(full), "%s/%s", base, p);
		ok(stat(full, &kept) == 0 &&
		    kept.st_mtim.tv_sec == st0.st_mtim.tv_sec &&
		    kept.st_mtim.tv_nsec == st0.st_mtim.tv_nsec,
		    "with the time the file had, not the time it was kept");
	}
	snprintf(p, sizeof(p), "templates/prompts/quickstart-1/.versions/"
	    "user_prompt.md/%s", h1);
	is_str(slurp(p), "Version two", "the new content is kept by its hash");

	usleep(20000);
	ok(rev_write(cfg, "quickstart-1", "user_prompt.md", "Three", 5, h2, &e) ==
	    0, "a third version");
	ok(rev_versions(cfg, "quickstart-1", "user_prompt.md", a, &v, &n, &e) == 0
	    && n == 3, "three versions");
	ok(n == 3 && strcmp(v[0].hash, h2) == 0 && strcmp(v[1].hash, h1) == 0 &&
	    strcmp(v[2].hash, h0) == 0 && v[0].size == 5 && v[1].size == 11,
	    "newest first, with their sizes");
	ok(rev_read_version(cfg, "quickstart-1", "user_prompt.md", h1, a, &text,
	    &len, &e) == 0 && len == 11 && strcmp(text, "Version two") == 0,
	    "an old version by its hash");
	ok(rev_read_version(cfg, "quickstart-1", "user_prompt.md",
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    a, &text, &len, &e) < 0 && e.status == 404, "an unknown hash: 404");
	ok(rev_read_version(cfg, "quickstart-1", "user_prompt.md", "../../x", a,
	    &text, &len, &e) < 0 && e.status == 400, "a hash that is a path: 400");
	ok(rev_read_version(cfg, "quickstart-1", "user_prompt.md",
	    "AAAA000000000000000000000000000000000000000000000000000000000000",
	    a, &text, &len, &e) < 0 && e.status == 400, "upper-case hex: 400");

	/* writing an old content again: the same version, now the newest */
	usleep(20000);
	ok(rev_write(cfg, "quickstart-1", "user_prompt.md", "Version two", 11,
	    h1, &e) == 0 && rev_versions(cfg, "quickstart-1", "user_prompt.md",
	    a, &v, &n, &e) == 0 && n == 3 && strcmp(v[0].hash, h1) == 0,
	    "an old content written again: kept once, listed first");
	ok(rev_write(cfg, "quickstart-1", "new.jinja", "N", 1, h2, &e) == 0 &&
	    rev_versions(cfg, "quickstart-1", "new.jinja", a, &v, &n, &e) == 0 &&
	    n == 1, "a new file: one version");
	ok(rev_versions(cfg, "quickstart-1", "none.md", a, &v, &n, &e) < 0 &&
	    e.status == 404, "versions of a missing file: 404");
	{
		const char **names;

		ok(rev_files(cfg, "quickstart-1", a, &names, &n, &e) == 0 &&
		    n == 3, ".versions is not listed as a file");
		ok(rev_list(cfg, a, &names, &n, &e) == 0 && n == 2,
		    "nor as a revision");
	}
	arena_destroy(a);
}

static void
test_create(struct config *cfg)
{
	struct arena *a = arena_create(4096);
	const char **names, *text;
	size_t n, len;
	char hash[REV_HASH_LEN + 1];
	struct err e;

	ok(rev_create(cfg, "empty-1", NULL, &e) == 0, "create an empty revision");
	ok(rev_files(cfg, "empty-1", a, &names, &n, &e) == 0 && n == 0,
	    "it has no files");
	ok(rev_create(cfg, "empty-1", NULL, &e) < 0 && e.status == 409,
	    "creating it again: 409");
	ok(rev_create(cfg, "copy-1", "quickstart-1", &e) == 0, "create a copy");
	ok(rev_files(cfg, "copy-1", a, &names, &n, &e) == 0 && n == 3 &&
	    strcmp(names[2], "user_prompt.md") == 0, "with the files of the source");
	ok(rev_read(cfg, "copy-1", "user_prompt.md", a, &text, &len, hash,
	    &e) == 0 && strcmp(text, "Version two") == 0, "and their content");
	ok(rev_create(cfg, "copy-2", "nothing", &e) < 0 && e.status == 404 &&
	    rev_files(cfg, "copy-2", a, &names, &n, &e) == 0 && n == 0 &&
	    rev_read(cfg, "copy-2", "a.md", a, &text, &len, hash, &e) < 0 &&
	    e.status == 404, "a copy of a missing revision: 404, nothing made");
	ok(rev_create(cfg, "copy-3", "escape", &e) < 0 && e.status == 400,
	    "a copy of a linked folder: 400");
	{
		char p[512];
		struct stat st;
		FILE *f;
		int i;

		sub("templates/prompts/bigsrc");
		put("templates/prompts/bigsrc/a.md", "A");
		snprintf(p, sizeof(p), "%s/templates/prompts/bigsrc/z.md", base);
		f = fopen(p, "w");
		for (i = 0; i <= REV_FILE_MAX; i++)
			fputc('z', f);
		fclose(f);
		snprintf(p, sizeof(p), "%s/templates/prompts/bigcopy", base);
		ok(rev_create(cfg, "bigcopy", "bigsrc", &e) < 0 && e.status == 413 &&
		    stat(p, &st) < 0, "a copy that fails half way leaves no "
		    "revision behind (%s)", e.msg);
	}
	ok(rev_create(cfg, "../x", NULL, &e) < 0 && e.status == 400,
	    "create ../x: 400");
	ok(rev_create(cfg, "x", "..", &e) < 0 && e.status == 400,
	    "copy from ..: 400");
	arena_destroy(a);
}

static void
test_fresh_root(void)
{
	struct config cfg;
	char p[512];
	struct err e;
	struct arena *a = arena_create(1024);
	const char **names;
	size_t n;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(p, sizeof(p), "%s/fresh/", base);
	mkdir(p, 0755);
	cfg.file_storage.revisions_path = p;
	ok(strstr(rev_root(&cfg, a), "fresh/templates/prompts") != NULL &&
	    strstr(rev_root(&cfg, a), "//") == NULL, "rev_root: %s",
	    rev_root(&cfg, a));
	ok(rev_create(&cfg, "first", NULL, &e) == 0 &&
	    rev_list(&cfg, a, &names, &n, &e) == 0 && n == 1,
	    "create makes the templates folder when it is missing");
	arena_destroy(a);
}

int
main(void)
{
	struct config cfg;
	char cmd[300];

	snprintf(base, sizeof(base), "/tmp/test_revisions.XXXXXX");
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.file_storage.revisions_path = base;

	test_names();
	test_nul();
	test_files(&cfg);
	test_versions(&cfg);
	test_create(&cfg);
	test_fresh_root();

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", base);
	return tap_done();
}
