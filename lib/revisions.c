/*
 * revisions.c -- the prompt templates of the revisions on disk
 * (lib/revisions.h): names, listing, reading, atomic writes and the kept
 * versions under <revision>/.versions/<file>/<sha256>.
 *
 * It owns the path safety of the templates folder: every name is checked
 * by rev_name_check before it reaches a system call, the root is resolved
 * once with realpath, and everything below it is reached with openat from
 * directory descriptors opened O_DIRECTORY | O_NOFOLLOW and files opened
 * O_NOFOLLOW, so no symbolic link is ever followed below the root (one
 * pointing inside is refused as well: simpler, and nothing needs it).  It
 * never builds a path from a client's text, never writes a file in place
 * (temporary file, fsync, rename, fsync of the folder) and never deletes a
 * kept version.  File I/O blocks: flow threads and the command line only.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/revisions.h"
#include "lib/xmalloc.h"

#define REV_VERSIONS_DIR ".versions"
#define REV_DIR_MODE 0755
#define REV_FILE_MODE 0644

/* ---- names ------------------------------------------------------------ */

static bool
rev_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static bool
rev_ends_with(const char *s, size_t n, const char *suffix)
{
	size_t sn = strlen(suffix);

	return n > sn && memcmp(s + n - sn, suffix, sn) == 0;
}

int
rev_name_check(const char *name, bool file, struct err *e)
{
	const char *what = file ? "template file name" : "revision id";
	size_t n, i;

	if (name == NULL || name[0] == '\0')
		return err_set(e, 400, "invalid %s: it is empty", what);
	n = strlen(name);
	if (n > REV_NAME_MAX)
		return err_set(e, 400, "invalid %s: longer than %d bytes", what,
		    REV_NAME_MAX);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c == '\\')
			return err_set(e, 400, "invalid %s: it must be one path "
			    "component, without '/' or '\\'", what);
		if (!rev_name_char(c))
			return err_set(e, 400, "invalid %s: only letters, digits, "
			    "'.', '_' and '-' are allowed", what);
	}
	if (name[0] == '.')
		return err_set(e, 400, "invalid %s \"%s\": it must not start "
		    "with '.'", what, name);
	if (file && !rev_ends_with(name, n, ".md") &&
	    !rev_ends_with(name, n, ".jinja"))
		return err_set(e, 400, "invalid %s \"%s\": a template ends in "
		    ".md or .jinja", what, name);
	return 0;
}

static bool
rev_hash_ok(const char *h)
{
	size_t i;

	for (i = 0; i < REV_HASH_LEN; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return h[REV_HASH_LEN] == '\0';
}

/* ---- folders ---------------------------------------------------------- */

const char *
rev_root(const struct config *cfg, struct arena *a)
{
	const char *p = cfg->file_storage.revisions_path;
	size_t n;

	if (p == NULL || p[0] == '\0')
		p = ".";
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	return arena_sprintf(a, "%.*s/templates/prompts", (int)n, p);
}

/*
 * Open the root (realpath-resolved).  Returns the descriptor, -1 with e
 * set (500), or -2 when the folder does not exist (e set, 404).
 */
static int
rev_open_root(const struct config *cfg, struct err *e)
{
	struct arena *a = arena_create(512);
	const char *root = rev_root(cfg, a);
	char *real;
	int fd, saved;

	real = realpath(root, NULL);
	if (real == NULL) {
		saved = errno;
		if (saved == ENOENT) {
			err_set(e, 404, "the templates folder does not exist");
			arena_destroy(a);
			return -2;
		}
		err_set(e, 500, "could not resolve the templates folder %s: %s",
		    root, strerror(saved));
		arena_destroy(a);
		return -1;
	}
	fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	saved = errno;
	if (fd < 0)
		err_set(e, 500, "could not open the templates folder %s: %s",
		    root, strerror(saved));
	free(real);
	arena_destroy(a);
	return fd;
}

/*
 * Open the folder `name` below dirfd without following a link.  Returns the
 * descriptor or -1 with e set: 404 (missing, `missing` says what), 400 (a
 * symbolic link, or not a folder), 500.
 */
static int
rev_open_dir(int dirfd, const char *name, const char *what, struct err *e)
{
	struct stat st;
	int fd, saved;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	saved = errno;
	if (saved == ENOENT)
		return err_set(e, 404, "%s \"%s\" does not exist", what, name);
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode))
			return err_set(e, 400, "%s \"%s\" is a symbolic link",
			    what, name);
		if (!S_ISDIR(st.st_mode))
			return err_set(e, 400, "%s \"%s\" is not a folder", what,
			    name);
	}
	return err_set(e, 500, "could not open %s \"%s\": %s", what, name,
	    strerror(saved));
}

/* The folder of a revision: open root, then the revision.  -1 with e. */
static int
rev_open_revision(const struct config *cfg, const char *revision,
    struct err *e)
{
	int root, fd;

	if (rev_name_check(revision, false, e) < 0)
		return -1;
	root = rev_open_root(cfg, e);
	if (root == -2)
		return err_set(e, 404, "revision \"%s\" does not exist", revision);
	if (root < 0)
		return -1;
	fd = rev_open_dir(root, revision, "revision", e);
	close(root);
	return fd;
}

/* ---- files ------------------------------------------------------------ */

/*
 * Open the regular file `name` below dirfd for reading, without following
 * a link (O_NONBLOCK: a FIFO put there must not hang the thread).  -1 with
 * e set: 404, 400 (link, not a regular file), 500.
 */
static int
rev_open_file(int dirfd, const char *name, const char *what, struct err *e)
{
	struct stat st;
	int fd, saved;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		saved = errno;
		if (saved == ENOENT)
			return err_set(e, 404, "%s \"%s\" does not exist", what,
			    name);
		if (saved == ELOOP || (fstatat(dirfd, name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)))
			return err_set(e, 400, "%s \"%s\" is a symbolic link",
			    what, name);
		return err_set(e, 500, "could not open %s \"%s\": %s", what,
		    name, strerror(saved));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, 400, "%s \"%s\" is not a regular file", what,
		    name);
	}
	return fd;
}

/*
 * Read all of fd (at most REV_FILE_MAX bytes) into a new xmalloc'd buffer
 * with a NUL after it.  0 with *out and *len, or -1 with e (413, 500).
 */
static int
rev_slurp(int fd, const char *name, char **out, size_t *len, struct err *e)
{
	char *buf = xmalloc(REV_FILE_MAX + 2);
	size_t n = 0;
	ssize_t r;

	for (;;) {
		r = read(fd, buf + n, REV_FILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set(e, 500, "could not read \"%s\": %s", name,
			    strerror(errno));
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > REV_FILE_MAX) {
			free(buf);
			return err_set(e, 413, "template \"%s\" is larger than "
			    "%d bytes", name, REV_FILE_MAX);
		}
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* The bytes and a NUL in a (a template may hold a NUL: no strndup). */
static const char *
rev_arena_copy(struct arena *a, const char *p, size_t n)
{
	char *s = arena_alloc(a, n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int
rev_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Write `name` in dirfd atomically: a temporary file in the same folder
 * (O_CREAT | O_EXCL, mode 0644), the bytes, fsync, rename over `name`,
 * fsync of the folder.  0, or -1 with e set (500); the temporary file is
 * removed on failure and `name` is untouched.
 */
static int
rev_atomic_write(int dirfd, const char *name, const char *text, size_t len,
    struct err *e)
{
	char tmp[REV_NAME_MAX + 64];
	unsigned int rnd = 0;
	int fd, saved;
	struct err ignored;

	if (crypto_random(&rnd, sizeof(rnd), &ignored) < 0)
		rnd = (unsigned int)getpid();
	snprintf(tmp, sizeof(tmp), ".%s.tmp.%ld.%08x", name, (long)getpid(), rnd);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, REV_FILE_MODE);
	if (fd < 0)
		return err_set(e, 500, "could not create a temporary file for "
		    "\"%s\": %s", name, strerror(errno));
	/* the umask must not make a template unreadable to the server's group */
	if (fchmod(fd, REV_FILE_MODE) < 0 || rev_write_all(fd, text, len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return err_set(e, 500, "could not write \"%s\": %s", name,
		    strerror(saved));
	}
	if (close(fd) < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		return err_set(e, 500, "could not write \"%s\": %s", name,
		    strerror(saved));
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		return err_set(e, 500, "could not rename the new \"%s\" into "
		    "place: %s", name, strerror(saved));
	}
	if (fsync(dirfd) < 0)
		return err_set(e, 500, "could not sync the folder of \"%s\": %s",
		    name, strerror(errno));
	return 0;
}

/* mkdirat (an existing folder is fine) then rev_open_dir. */
static int
rev_mkdir_open(int dirfd, const char *name, const char *what, struct err *e)
{
	if (mkdirat(dirfd, name, REV_DIR_MODE) < 0 && errno != EEXIST)
		return err_set(e, 500, "could not create %s \"%s\": %s", what,
		    name, strerror(errno));
	return rev_open_dir(dirfd, name, what, e);
}

/*
 * Keep `text` (whose hash is `hash`) as a version of `file` in the
 * revision folder revfd: .versions/<file>/<hash>, written atomically, with
 * the time `when` (the file's own, for a content kept late) or now (NULL).
 * When that version exists already it is kept and its time set to now, so
 * the newest-first list starts with the content written last.
 */
static int
rev_keep_version(int revfd, const char *file, const char *text, size_t len,
    const char *hash, const struct timespec *when, struct err *e)
{
	struct stat st;
	int vfd, ffd, rc = 0;

	vfd = rev_mkdir_open(revfd, REV_VERSIONS_DIR, "versions folder", e);
	if (vfd < 0)
		return -1;
	ffd = rev_mkdir_open(vfd, file, "versions folder of", e);
	close(vfd);
	if (ffd < 0)
		return -1;
	if (fstatat(ffd, hash, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISREG(st.st_mode))
			rc = err_set(e, 400, "kept version %s of \"%s\" is not a "
			    "regular file", hash, file);
		else if (utimensat(ffd, hash, NULL, AT_SYMLINK_NOFOLLOW) < 0)
			rc = err_set(e, 500, "could not touch kept version of "
			    "\"%s\": %s", file, strerror(errno));
	} else {
		rc = rev_atomic_write(ffd, hash, text, len, e);
		if (rc == 0 && when != NULL) {
			struct timespec ts[2] = { when[0], when[0] };

			/* best effort: only the order of the list depends on it */
			(void)utimensat(ffd, hash, ts, AT_SYMLINK_NOFOLLOW);
		}
	}
	close(ffd);
	return rc;
}

/* Does `file` of revfd have a kept version `hash`? */
static bool
rev_has_version(int revfd, const char *file, const char *hash)
{
	struct stat st;
	int vfd, ffd;
	bool found = false;

	vfd = openat(revfd, REV_VERSIONS_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (vfd < 0)
		return false;
	ffd = openat(vfd, file, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(vfd);
	if (ffd < 0)
		return false;
	found = fstatat(ffd, hash, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
	close(ffd);
	return found;
}

/* ---- listing ---------------------------------------------------------- */

static int
rev_cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The entries of the folder fd (consumed) that pass rev_name_check(file)
 * and are folders (file = false) or regular files (file = true), never
 * links; sorted, in a.
 */
static int
rev_scan(int fd, bool file, struct arena *a, const char ***names, size_t *n,
    struct err *e)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	const char **v = NULL;
	size_t cap = 0, k = 0;
	struct stat st;
	struct err ignored;

	if (d == NULL) {
		close(fd);
		return err_set(e, 500, "could not read a templates folder: %s",
		    strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (rev_name_check(de->d_name, file, &ignored) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (file ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
			continue;
		if (k == cap) {
			const char **nv;

			cap = cap ? cap * 2 : 16;
			nv = arena_alloc(a, cap * sizeof(*nv));
			if (k > 0)
				memcpy(nv, v, k * sizeof(*nv));
			v = nv;
		}
		v[k++] = arena_strdup(a, de->d_name);
	}
	closedir(d);
	if (k > 1)
		qsort(v, k, sizeof(*v), rev_cmp_names);
	*names = v;
	*n = k;
	return 0;
}

int
rev_list(const struct config *cfg, struct arena *a, const char ***names,
    size_t *n, struct err *e)
{
	int root;

	*names = NULL;
	*n = 0;
	root = rev_open_root(cfg, e);
	if (root == -2)
		return 0;
	if (root < 0)
		return -1;
	return rev_scan(root, false, a, names, n, e);
}

int
rev_files(const struct config *cfg, const char *revision, struct arena *a,
    const char ***names, size_t *n, struct err *e)
{
	int fd;

	*names = NULL;
	*n = 0;
	fd = rev_open_revision(cfg, revision, e);
	if (fd < 0)
		return e->status == 404 ? 0 : -1;
	return rev_scan(fd, true, a, names, n, e);
}

/* ---- reading and writing ---------------------------------------------- */

/* Read `file` of the open revision folder revfd into a malloc'd buffer. */
static int
rev_read_at(int revfd, const char *file, char **text, size_t *len,
    struct err *e)
{
	int fd = rev_open_file(revfd, file, "template", e), rc;

	if (fd < 0)
		return -1;
	rc = rev_slurp(fd, file, text, len, e);
	close(fd);
	return rc;
}

int
rev_read(const struct config *cfg, const char *revision, const char *file,
    struct arena *a, const char **text, size_t *len,
    char hash[REV_HASH_LEN + 1], struct err *e)
{
	char *buf = NULL;
	int revfd, rc;

	if (rev_name_check(revision, false, e) < 0 ||
	    rev_name_check(file, true, e) < 0)
		return -1;
	revfd = rev_open_revision(cfg, revision, e);
	if (revfd < 0)
		return -1;
	rc = rev_read_at(revfd, file, &buf, len, e);
	close(revfd);
	if (rc < 0)
		return -1;
	if (crypto_sha256_hex(buf, *len, hash, e) < 0) {
		free(buf);
		return -1;
	}
	*text = rev_arena_copy(a, buf, *len);
	free(buf);
	return 0;
}

int
rev_write(const struct config *cfg, const char *revision, const char *file,
    const char *text, size_t len, char hash[REV_HASH_LEN + 1], struct err *e)
{
	char old_hash[REV_HASH_LEN + 1];
	struct stat st;
	char *old = NULL;
	size_t old_len = 0;
	int revfd, rc = -1;

	if (rev_name_check(revision, false, e) < 0 ||
	    rev_name_check(file, true, e) < 0)
		return -1;
	if (len > REV_FILE_MAX)
		return err_set(e, 413, "template \"%s\" is larger than %d bytes",
		    file, REV_FILE_MAX);
	if (crypto_sha256_hex(text, len, hash, e) < 0)
		return -1;
	revfd = rev_open_revision(cfg, revision, e);
	if (revfd < 0)
		return -1;
	if (fstatat(revfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* the content it has now becomes a kept version first (a file
		 * of `ingen init` or copied by hand has none yet) */
		if (S_ISLNK(st.st_mode)) {
			err_set(e, 400, "template \"%s\" is a symbolic link", file);
			goto out;
		}
		if (rev_read_at(revfd, file, &old, &old_len, e) < 0 ||
		    crypto_sha256_hex(old, old_len, old_hash, e) < 0)
			goto out;
		if (!rev_has_version(revfd, file, old_hash) &&
		    rev_keep_version(revfd, file, old, old_len, old_hash,
		    &st.st_mtim, e) < 0)
			goto out;
	}
	if (rev_atomic_write(revfd, file, text, len, e) < 0 ||
	    rev_keep_version(revfd, file, text, len, hash, NULL, e) < 0)
		goto out;
	rc = 0;
out:
	free(old);
	close(revfd);
	return rc;
}

/* Copy every template of folder `from` into folder `to`. */
static int
rev_copy_files(int from, int to, struct err *e)
{
	struct arena *a = arena_create(4096);
	const char **names;
	char *buf;
	size_t n, i, len;
	int dup_fd, rc = 0;
	char hash[REV_HASH_LEN + 1];

	dup_fd = dup(from);
	if (dup_fd < 0) {
		arena_destroy(a);
		return err_set(e, 500, "could not read a revision: %s",
		    strerror(errno));
	}
	if (rev_scan(dup_fd, true, a, &names, &n, e) < 0) {
		arena_destroy(a);
		return -1;
	}
	for (i = 0; i < n && rc == 0; i++) {
		if (rev_read_at(from, names[i], &buf, &len, e) < 0) {
			rc = -1;
			break;
		}
		if (rev_atomic_write(to, names[i], buf, len, e) < 0 ||
		    crypto_sha256_hex(buf, len, hash, e) < 0 ||
		    rev_keep_version(to, names[i], buf, len, hash, NULL, e) < 0)
			rc = -1;
		free(buf);
	}
	arena_destroy(a);
	return rc;
}

/*
 * Remove the folder `name` of `parent` and what it holds, `depth` levels at
 * most (a revision: its files, .versions/<file>/<hash>), never following a
 * link (a link is removed, not its target).  Best effort: for undoing a
 * revision this process has just made.
 */
static void
rev_remove_tree(int parent, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && depth > 1)
			rev_remove_tree(dirfd(d), de->d_name, depth - 1);
	}
	closedir(d);
	(void)unlinkat(parent, name, AT_REMOVEDIR);
}

/* Create the templates folder (and its parents below the revisions path)
 * when it is missing; the path is the configuration's, not a client's. */
static int
rev_make_root(const struct config *cfg, struct err *e)
{
	struct arena *a = arena_create(512);
	char *root = arena_strdup(a, rev_root(cfg, a));
	char *p, c;
	int rc = 0;

	for (p = root + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(root, REV_DIR_MODE) < 0 && errno != EEXIST) {
			rc = err_set(e, 500, "could not create %s: %s", root,
			    strerror(errno));
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	arena_destroy(a);
	return rc;
}

int
rev_create(const struct config *cfg, const char *revision, const char *from,
    struct err *e)
{
	int root, src = -1, dst = -1, rc = -1;

	if (rev_name_check(revision, false, e) < 0 ||
	    (from != NULL && rev_name_check(from, false, e) < 0))
		return -1;
	if (rev_make_root(cfg, e) < 0)
		return -1;
	root = rev_open_root(cfg, e);
	if (root < 0)
		return -1;
	if (from != NULL) {
		src = rev_open_dir(root, from, "revision", e);
		if (src < 0)
			goto out;
	}
	if (mkdirat(root, revision, REV_DIR_MODE) < 0) {
		if (errno == EEXIST)
			err_set(e, 409, "revision \"%s\" exists already", revision);
		else
			err_set(e, 500, "could not create revision \"%s\": %s",
			    revision, strerror(errno));
		goto out;
	}
	dst = rev_open_dir(root, revision, "revision", e);
	if (dst < 0)
		goto out;
	if (fsync(root) < 0) {
		err_set(e, 500, "could not sync the templates folder: %s",
		    strerror(errno));
		goto out;
	}
	if (src >= 0 && rev_copy_files(src, dst, e) < 0) {
		/* no half-copied revision is left behind */
		rev_remove_tree(root, revision, 3);
		goto out;
	}
	rc = 0;
out:
	if (dst >= 0)
		close(dst);
	if (src >= 0)
		close(src);
	close(root);
	return rc;
}

/* ---- versions --------------------------------------------------------- */

struct rev_version_ns {
	struct rev_version v;
	long nsec;
};

static int
rev_cmp_versions(const void *pa, const void *pb)
{
	const struct rev_version_ns *a = pa, *b = pb;

	if (a->v.mtime != b->v.mtime)
		return a->v.mtime > b->v.mtime ? -1 : 1;
	if (a->nsec != b->nsec)
		return a->nsec > b->nsec ? -1 : 1;
	return strcmp(a->v.hash, b->v.hash);
}

int
rev_versions(const struct config *cfg, const char *revision,
    const char *file, struct arena *a, struct rev_version **v, size_t *n,
    struct err *e)
{
	struct rev_version_ns *list = NULL;
	size_t cap = 0, k = 0, i;
	char cur_hash[REV_HASH_LEN + 1];
	bool have_cur = false, cur_kept = false;
	struct stat cur_st, st;
	int revfd, vfd, ffd;
	DIR *d;
	struct dirent *de;

	*v = NULL;
	*n = 0;
	if (rev_name_check(revision, false, e) < 0 ||
	    rev_name_check(file, true, e) < 0)
		return -1;
	revfd = rev_open_revision(cfg, revision, e);
	if (revfd < 0)
		return -1;
	{
		int fd = rev_open_file(revfd, file, "template", e);
		char *buf;
		size_t len;

		if (fd < 0 && e->status != 404) {
			close(revfd);
			return -1;
		}
		if (fd >= 0) {
			if (fstat(fd, &cur_st) < 0 ||
			    rev_slurp(fd, file, &buf, &len, e) < 0) {
				close(fd);
				close(revfd);
				return -1;
			}
			close(fd);
			if (crypto_sha256_hex(buf, len, cur_hash, e) < 0) {
				free(buf);
				close(revfd);
				return -1;
			}
			free(buf);
			have_cur = true;
		}
	}
	vfd = openat(revfd, REV_VERSIONS_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	ffd = vfd < 0 ? -1 : openat(vfd, file, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (vfd >= 0)
		close(vfd);
	d = ffd < 0 ? NULL : fdopendir(ffd);
	if (ffd >= 0 && d == NULL)
		close(ffd);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != REV_HASH_LEN || !rev_hash_ok(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (k == cap) {
			struct rev_version_ns *nl;

			cap = cap ? cap * 2 : 16;
			nl = arena_alloc(a, (cap + 1) * sizeof(*nl));
			if (k > 0)
				memcpy(nl, list, k * sizeof(*nl));
			list = nl;
		}
		memcpy(list[k].v.hash, de->d_name, REV_HASH_LEN + 1);
		list[k].v.mtime = st.st_mtim.tv_sec;
		list[k].nsec = st.st_mtim.tv_nsec;
		list[k].v.size = (size_t)st.st_size;
		if (have_cur && strcmp(de->d_name, cur_hash) == 0)
			cur_kept = true;
		k++;
	}
	if (d != NULL)
		closedir(d);
	close(revfd);
	if (!have_cur && k == 0)
		return err_set(e, 404, "template \"%s\" does not exist", file);
	if (have_cur && !cur_kept) {
		/* no kept copy of what it holds now (ingen init, a hand edit):
		 * the current content is a version all the same */
		if (k == cap) {
			struct rev_version_ns *nl = arena_alloc(a,
			    (k + 1) * sizeof(*nl));

			if (k > 0)
				memcpy(nl, list, k * sizeof(*nl));
			list = nl;
		}
		memcpy(list[k].v.hash, cur_hash, REV_HASH_LEN + 1);
		list[k].v.mtime = cur_st.st_mtim.tv_sec;
		list[k].nsec = cur_st.st_mtim.tv_nsec;
		list[k].v.size = (size_t)cur_st.st_size;
		k++;
	}
	qsort(list, k, sizeof(*list), rev_cmp_versions);
	*v = arena_alloc(a, k * sizeof(**v));
	for (i = 0; i < k; i++)
		(*v)[i] = list[i].v;
	*n = k;
	return 0;
}

int
rev_read_version(const struct config *cfg, const char *revision,
    const char *file, const char *hash, struct arena *a, const char **text,
    size_t *len, struct err *e)
{
	char got[REV_HASH_LEN + 1];
	char *buf = NULL;
	int revfd, vfd, ffd, fd, rc;

	if (rev_name_check(revision, false, e) < 0 ||
	    rev_name_check(file, true, e) < 0)
		return -1;
	if (hash == NULL || strlen(hash) != REV_HASH_LEN || !rev_hash_ok(hash))
		return err_set(e, 400, "invalid hash: 64 lower-case hex digits "
		    "are expected");
	revfd = rev_open_revision(cfg, revision, e);
	if (revfd < 0)
		return -1;
	fd = -1;
	vfd = openat(revfd, REV_VERSIONS_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	ffd = vfd < 0 ? -1 : openat(vfd, file, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (vfd >= 0)
		close(vfd);
	if (ffd >= 0) {
		fd = rev_open_file(ffd, hash, "kept version", e);
		close(ffd);
		if (fd < 0 && e->status != 404) {
			close(revfd);
			return -1;
		}
	}
	if (fd >= 0) {
		rc = rev_slurp(fd, file, &buf, len, e);
		close(fd);
	} else {
		/* not kept: the current content, when it has that hash */
		rc = rev_read_at(revfd, file, &buf, len, e);
		if (rc < 0 && e->status == 404)
			err_set(e, 404, "template \"%s\" has no version %s", file,
			    hash);
	}
	close(revfd);
	if (rc < 0)
		return -1;
	if (crypto_sha256_hex(buf, *len, got, e) < 0) {
		free(buf);
		return -1;
	}
	if (strcmp(got, hash) != 0) {
		free(buf);
		if (fd >= 0)
			return err_set(e, 500, "kept version %s of \"%s\" does "
			    "not match its hash", hash, file);
		return err_set(e, 404, "template \"%s\" has no version %s",
		    file, hash);
	}
	*text = rev_arena_copy(a, buf, *len);
	free(buf);
	return 0;
}
