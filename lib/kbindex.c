/*
 * kbindex.c -- files into the local knowledge base (kbindex.h): the walk
 * of the paths given, the reading and checking of each file, and the
 * server's indexing of kb.directory in a child of the master.
 *
 * It owns which files are read and in what order, and what a refusal
 * says.  It never cuts text itself (lib/kb.c), never writes SQL
 * (lib/db_kb.c), and never runs in the master or a worker: it blocks on
 * files and on the database.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/db_kb.h"
#include "lib/db_session.h"
#include "lib/dburl.h"
#include "lib/kb.h"
#include "lib/kbindex.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define KBINDEX_ACTION "while indexing the knowledge base"
#define KBINDEX_WHY_MAX 256

struct kbindex_run {
	struct db_session *s;
	const struct kbindex_opts *o;
	struct kbindex_stats *st;
	struct err *e;
};

static void
kbindex_report(struct kbindex_run *r, enum kbindex_event ev,
    const char *source, size_t chunks, const char *why)
{
	switch (ev) {
	case KBINDEX_ADDED: r->st->added++; r->st->chunks += (long)chunks; break;
	case KBINDEX_REPLACED: r->st->replaced++; r->st->chunks += (long)chunks; break;
	case KBINDEX_UNCHANGED: r->st->unchanged++; break;
	case KBINDEX_SKIPPED: r->st->skipped++; break;
	case KBINDEX_REFUSED: r->st->refused++; break;
	}
	if (r->o->report != NULL)
		r->o->report(r->o->arg, ev, source, chunks, why);
}

/*
 * Read the whole regular file at path into *data (heap, NUL-terminated)
 * and *n.  Returns 0, or -1 with why filled.
 */
static int
kbindex_read(const char *path, char **data, size_t *n, char *why, size_t whysz)
{
	struct stat sb;
	char *buf;
	size_t got = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whysz, "could not open it: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whysz, "not a regular file");
		close(fd);
		return -1;
	}
	if (sb.st_size > KBINDEX_FILE_MAX) {
		snprintf(why, whysz, "too large: %lld bytes, the limit is %ld",
		    (long long)sb.st_size, KBINDEX_FILE_MAX);
		close(fd);
		return -1;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whysz, "could not read it: %s", strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;            /* it shrank while we read: take what is there */
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*data = buf;
	*n = got;
	return 0;
}

/* Index one file.  Returns 0 (stored, unchanged or refused) or -1 when the
 * database failed. */
static int
kbindex_file(struct kbindex_run *r, const char *path)
{
	struct arena *a = arena_create(0);
	char why[KBINDEX_WHY_MAX], sum[CRYPTO_SHA256_HEX_LEN + 1];
	const char *source = kb_source_normalize(path, a);
	const char **texts;
	struct kb_chunk *chunks;
	struct db_kb_file f;
	enum db_kb_put what;
	char *data = NULL;
	size_t n = 0, nchunks, i, off = 0;
	int rc = 0;

	if (kbindex_read(path, &data, &n, why, sizeof(why)) < 0) {
		kbindex_report(r, KBINDEX_REFUSED, source, 0, why);
		goto out;
	}
	switch (kb_text_check(data, n, &off)) {
	case KB_TEXT_BINARY:
		snprintf(why, sizeof(why), "binary: a NUL byte at byte offset %zu", off);
		kbindex_report(r, KBINDEX_REFUSED, source, 0, why);
		goto out;
	case KB_TEXT_BAD_UTF8:
		snprintf(why, sizeof(why), "not UTF-8: invalid byte sequence at "
		    "byte offset %zu", off);
		kbindex_report(r, KBINDEX_REFUSED, source, 0, why);
		goto out;
	case KB_TEXT_OK:
		break;
	}
	if (crypto_sha256_hex(data, n, sum, r->e) < 0) {
		rc = -1;
		goto out;
	}
	kb_chunk_text(data, n, r->o->chunk_max_chars, a, &chunks, &nchunks);
	texts = arena_alloc(a, (nchunks > 0 ? nchunks : 1) * sizeof(*texts));
	for (i = 0; i < nchunks; i++)
		texts[i] = chunks[i].text;
	memset(&f, 0, sizeof(f));
	f.source = source;
	f.checksum = sum;
	f.bytes = (long long)n;
	f.tsconfig = r->o->tsconfig;
	f.chunks = texts;
	f.n_chunks = nchunks;
	if (db_kb_put(r->s, &f, &what, r->e) < 0) {
		err_prefix(r->e, "%.200s", source);
		rc = -1;
		goto out;
	}
	kbindex_report(r, what == DB_KB_ADDED ? KBINDEX_ADDED :
	    what == DB_KB_REPLACED ? KBINDEX_REPLACED : KBINDEX_UNCHANGED,
	    source, nchunks, NULL);
out:
	free(data);
	arena_destroy(a);
	return rc;
}

static int
kbindex_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int kbindex_path(struct kbindex_run *r, const char *path, bool named);

/* Index a directory's entries in byte order of their names. */
static int
kbindex_dir(struct kbindex_run *r, const char *path)
{
	struct arena *a = arena_create(0);
	char why[KBINDEX_WHY_MAX];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i, plen = strlen(path);
	DIR *d;
	int rc = 0;

	if ((d = opendir(path)) == NULL) {
		snprintf(why, sizeof(why), "could not open the directory: %s",
		    strerror(errno));
		kbindex_report(r, KBINDEX_REFUSED, kb_source_normalize(path, a), 0, why);
		arena_destroy(a);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;         /* ., .., hidden files and folders */
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = arena_sprintf(a, "%s%s%s", path,
		    plen > 0 && path[plen - 1] == '/' ? "" : "/", de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), kbindex_cmp);
	for (i = 0; i < n && rc == 0; i++)
		rc = kbindex_path(r, names[i], false);
	free(names);
	arena_destroy(a);
	return rc;
}

/* Index one path: `named` on the command line, or found in a directory. */
static int
kbindex_path(struct kbindex_run *r, const char *path, bool named)
{
	struct arena *a;
	struct stat sb, lsb;
	char why[KBINDEX_WHY_MAX];
	int rc = 0;

	if (stat(path, &sb) < 0) {
		a = arena_create(0);
		snprintf(why, sizeof(why), "%s", strerror(errno));
		kbindex_report(r, KBINDEX_REFUSED, kb_source_normalize(path, a), 0, why);
		arena_destroy(a);
		return 0;
	}
	if (S_ISDIR(sb.st_mode)) {
		/* a link to a directory in a walk could loop: named ones only */
		if (!named && lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode)) {
			a = arena_create(0);
			kbindex_report(r, KBINDEX_SKIPPED, kb_source_normalize(path, a), 0,
			    "a symbolic link to a directory");
			arena_destroy(a);
			return 0;
		}
		return kbindex_dir(r, path);
	}
	if (!kb_file_accepted(path)) {
		a = arena_create(0);
		kbindex_report(r, named ? KBINDEX_REFUSED : KBINDEX_SKIPPED,
		    kb_source_normalize(path, a), 0, "not a .md or .txt file");
		arena_destroy(a);
		return 0;
	}
	if (!S_ISREG(sb.st_mode)) {
		a = arena_create(0);
		kbindex_report(r, named ? KBINDEX_REFUSED : KBINDEX_SKIPPED,
		    kb_source_normalize(path, a), 0, "not a regular file");
		arena_destroy(a);
		return 0;
	}
	rc = kbindex_file(r, path);
	return rc;
}

int
kbindex_paths(struct db_session *s, const char *const *paths, size_t n,
    const struct kbindex_opts *o, struct kbindex_stats *st, struct err *e)
{
	struct kbindex_run r = { s, o, st, e };
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < n; i++)
		if (kbindex_path(&r, paths[i], true) < 0)
			return -1;
	return 0;
}

char *
kbindex_server_dir(const struct config *cfg)
{
	const char *mp = cfg->chat_history.memory_path;
	size_t n;

	if (cfg->kb.directory != NULL && cfg->kb.directory[0] != '\0')
		return xstrdup(cfg->kb.directory);
	if (mp == NULL || mp[0] == '\0')
		mp = ".";
	n = strlen(mp);
	return xasprintf("%s%sknowledge_base", mp,
	    n > 0 && mp[n - 1] == '/' ? "" : "/");
}

/* The server's report: one line per file that changed or was refused. */
static void
kbindex_server_report(void *arg, enum kbindex_event ev, const char *source,
    size_t chunks, const char *why)
{
	(void)arg;
	switch (ev) {
	case KBINDEX_ADDED:
		log_info(KBINDEX_ACTION, "%s: added %zu chunks", source, chunks);
		break;
	case KBINDEX_REPLACED:
		log_info(KBINDEX_ACTION, "%s: replaced %zu chunks", source, chunks);
		break;
	case KBINDEX_UNCHANGED:
		log_debug(KBINDEX_ACTION, "%s: unchanged", source);
		break;
	case KBINDEX_SKIPPED:
		log_debug(KBINDEX_ACTION, "%s: skipped: %s", source, why);
		break;
	case KBINDEX_REFUSED:
		log_warn(KBINDEX_ACTION, "%s: refused: %s", source, why);
		break;
	}
}

int
kbindex_server_main(const struct config *cfg)
{
	struct kbindex_opts o;
	struct kbindex_stats st;
	struct db_session *s;
	struct stat sb;
	const char *source = NULL;
	const char *paths[1];
	char *dir = kbindex_server_dir(cfg), *url = NULL;
	struct err e;
	int rc = 1;

	err_clear(&e);
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		log_info(KBINDEX_ACTION, "no knowledge-base directory %s (kb.directory): "
		    "nothing to index", dir);
		free(dir);
		return 0;
	}
	if (dburl_resolve(cfg, DBURL_ROLE_APP, &url, &source, &e) < 0) {
		log_error(KBINDEX_ACTION, "could not index %s: %s", dir, e.msg);
		goto out;
	}
	s = db_session_open(url, cfg->chat_history.connect_timeout, &e);
	memset(url, 0, strlen(url));
	free(url);
	if (s == NULL) {
		log_error(KBINDEX_ACTION, "could not index %s: %s", dir, e.msg);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.tsconfig = cfg->kb.text_search_config;
	o.chunk_max_chars = cfg->kb.chunk_max_chars;
	o.report = kbindex_server_report;
	paths[0] = dir;
	if (kbindex_paths(s, paths, 1, &o, &st, &e) < 0) {
		log_error(KBINDEX_ACTION, "could not index %s: %s", dir, e.msg);
	} else {
		log_info(KBINDEX_ACTION, "indexed %s: %d added, %d replaced, "
		    "%d unchanged, %d refused, %d skipped, %ld chunks stored", dir,
		    st.added, st.replaced, st.unchanged, st.refused, st.skipped,
		    st.chunks);
		rc = 0;
	}
	db_session_close(s);
out:
	free(dir);
	return rc;
}
