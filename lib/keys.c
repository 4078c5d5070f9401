/*
 * keys.c -- the JWT key ring: loading it from the configuration or the key
 * file, creating and rotating the key file, and carrying old keys across a
 * reload.
 *
 * Owns the key file format (keys.h).  It does file I/O only in keys_load*
 * and keys_file_rotate, which the master and the CLI call; lookups
 * (keys_find, keys_current) are pure so a token's kid can never make a
 * worker touch the file system.  It never logs, and no secret byte ever
 * reaches an error message; buffers that held secrets are wiped.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/keys.h"
#include "lib/xmalloc.h"

#define KEYS_NEW_SECRET_LEN 32    /* bytes of a generated key */
#define KEYS_DERIVED_KID_LEN 8    /* hex digits of SHA-256 in a derived kid */
/*
 * Room for a whole key file, reserved up front so that the buffer holding
 * secrets is never reallocated (which would leave unwiped copies behind).
 */
#define KEYS_TEXT_RESERVE (KEYS_MAX * (KEYS_KID_MAX + 2 * KEYS_SECRET_MAX + 32) + 256)

static const char keys_file_header[] =
    "# ingenious JWT signing keys: <kid>:<hex secret>[:<retire after, unix time>]\n"
    "# newest (signing) key last; keep this file mode 0600\n";

/* One parsed line of a key file, in file order (oldest first). */
struct keys_line {
	char kid[KEYS_KID_MAX + 1];
	unsigned char secret[KEYS_SECRET_MAX];
	size_t secret_len;
	time_t retire_after;
};

static int
keys_kid_valid(const char *kid, size_t len)
{
	size_t i;

	if (len == 0 || len > KEYS_KID_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = kid[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
keys_derive_kid(const void *secret, size_t len, char *out, struct err *e)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	if (crypto_sha256_hex(secret, len, hex, e) < 0)
		return -1;
	memcpy(out, hex, KEYS_DERIVED_KID_LEN);
	out[KEYS_DERIVED_KID_LEN] = '\0';
	return 0;
}

/*
 * The key with this kid, retired or not.  The comparison is not constant
 * time: kids are public, they travel in every token header.
 */
static const struct keys_key *
keys_find_any(const struct keys *ring, const char *kid, size_t kidlen)
{
	size_t i;

	for (i = 0; i < ring->n; i++) {
		const struct keys_key *k = &ring->key[i];

		if (strlen(k->kid) == kidlen && memcmp(k->kid, kid, kidlen) == 0)
			return k;
	}
	return NULL;
}

const struct keys_key *
keys_find(const struct keys *ring, const char *kid, size_t kidlen, time_t now)
{
	const struct keys_key *k = keys_find_any(ring, kid, kidlen);

	if (k == NULL || (k->retire_after != 0 && now > k->retire_after))
		return NULL;
	return k;
}

int
keys_add(struct keys *ring, const char *kid, const void *secret, size_t len,
    time_t retire_after, struct err *e)
{
	struct keys_key *k;
	size_t kidlen = strlen(kid);

	if (!keys_kid_valid(kid, kidlen))
		return err_set(e, 500, "invalid key id: must be 1 to %d characters of A-Z a-z 0-9 _ -",
		    KEYS_KID_MAX);
	if (len < KEYS_SECRET_MIN)
		return err_set(e, 500, "signing key \"%s\" is shorter than %d bytes",
		    kid, KEYS_SECRET_MIN);
	if (len > KEYS_SECRET_MAX)
		return err_set(e, 500, "signing key \"%s\" is longer than %d bytes",
		    kid, KEYS_SECRET_MAX);
	if (ring->n >= KEYS_MAX)
		return err_set(e, 500, "too many signing keys (at most %d)", KEYS_MAX);
	if (keys_find_any(ring, kid, kidlen) != NULL)
		return err_set(e, 500, "duplicate signing key id \"%s\"", kid);
	k = &ring->key[ring->n++];
	memcpy(k->kid, kid, kidlen + 1);
	memcpy(k->secret, secret, len);
	k->secret_len = len;
	k->retire_after = retire_after;
	return 0;
}

const struct keys_key *
keys_current(const struct keys *ring)
{
	return ring->n > 0 ? &ring->key[0] : NULL;
}

void
keys_clear(struct keys *ring)
{
	crypto_cleanse(ring, sizeof(*ring));
	ring->n = 0;
}

void
keys_rotate(const struct keys *old, struct keys *ring, time_t now, long keep_s)
{
	size_t i;

	/* old->key[0] is the newest, so a full ring leaves out the oldest. */
	for (i = 0; i < old->n && ring->n < KEYS_MAX; i++) {
		const struct keys_key *k = &old->key[i];
		struct keys_key *dst;

		if (keys_find_any(ring, k->kid, strlen(k->kid)) != NULL)
			continue;
		if (k->retire_after != 0 && now > k->retire_after)
			continue;
		dst = &ring->key[ring->n++];
		*dst = *k;
		if (dst->retire_after == 0)
			dst->retire_after = now + keep_s;
	}
}

long
keys_retire_delay(const struct config *cfg)
{
	long access = (long)cfg->web.authentication.jwt_access_token_expire_minutes * 60;
	long refresh = (long)cfg->web.authentication.jwt_refresh_token_expire_days * 86400;

	if (access < 0)
		access = 0;
	if (refresh < 0)
		refresh = 0;
	return (access > refresh ? access : refresh) + KEYS_CLOCK_LEEWAY;
}

char *
keys_file_path(const struct config *cfg)
{
	const char *f = cfg->web.authentication.jwt_key_file;
	const char *dir = cfg->server.state_dir;
	size_t dl;

	if (f != NULL && f[0] != '\0')
		return xstrdup(f);
	if (dir == NULL || dir[0] == '\0')
		return NULL;
	dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	return xasprintf("%.*s/%s", (int)dl, dir, KEYS_FILE_NAME);
}

/* ---- the key file ---- */

/* Parse one key line (trimmed, not empty, not a comment). */
static int
keys_parse_line(const char *path, int lineno, const char *s, size_t n,
    struct keys_line *out, struct err *e)
{
	const char *c1 = memchr(s, ':', n), *c2 = NULL, *hex = s;
	size_t hexlen = n;

	memset(out, 0, sizeof(*out));
	if (c1 != NULL) {
		if (!keys_kid_valid(s, (size_t)(c1 - s)))
			return err_set(e, 500,
			    "key file \"%s\" line %d: invalid key id (1 to %d characters of A-Z a-z 0-9 _ -)",
			    path, lineno, KEYS_KID_MAX);
		memcpy(out->kid, s, (size_t)(c1 - s));
		out->kid[c1 - s] = '\0';
		hex = c1 + 1;
		c2 = memchr(hex, ':', (size_t)(s + n - hex));
		hexlen = (size_t)((c2 != NULL ? c2 : s + n) - hex);
	}
	if (hex_decode(hex, hexlen, out->secret, sizeof(out->secret),
	    &out->secret_len) < 0) {
		crypto_cleanse(out->secret, sizeof(out->secret));
		return err_set(e, 500,
		    "key file \"%s\" line %d: the key must be an even number of hex digits, at most %d bytes",
		    path, lineno, KEYS_SECRET_MAX);
	}
	if (out->secret_len < KEYS_SECRET_MIN) {
		crypto_cleanse(out->secret, sizeof(out->secret));
		return err_set(e, 500,
		    "key file \"%s\" line %d: the key is shorter than %d bytes (%d hex digits)",
		    path, lineno, KEYS_SECRET_MIN, 2 * KEYS_SECRET_MIN);
	}
	if (c2 != NULL) {
		const char *t = c2 + 1, *end = s + n;
		long long v = 0;

		if (t == end || end - t > 18)
			goto bad_time;
		for (; t < end; t++) {
			if (*t < '0' || *t > '9')
				goto bad_time;
			v = v * 10 + (*t - '0');
		}
		if (v <= 0)
			goto bad_time;
		out->retire_after = (time_t)v;
	}
	if (out->kid[0] == '\0' &&
	    keys_derive_kid(out->secret, out->secret_len, out->kid, e) < 0)
		return -1;
	return 0;
bad_time:
	crypto_cleanse(out->secret, sizeof(out->secret));
	return err_set(e, 500,
	    "key file \"%s\" line %d: the retire time must be a positive number of seconds since 1970",
	    path, lineno);
}

/*
 * Parse a whole key file into lines[] (file order).  *nlines gets the count.
 */
static int
keys_parse_file(const char *path, const char *text, size_t len,
    struct keys_line *lines, size_t *nlines, struct err *e)
{
	const char *p = text, *end = text + len;
	size_t n = 0, i;
	int lineno = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *t = eol != NULL ? eol : end;

		lineno++;
		p = eol != NULL ? eol + 1 : end;
		while (s < t && (*s == ' ' || *s == '\t'))
			s++;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
			t--;
		if (s == t || *s == '#')
			continue;
		if (memchr(s, '\0', (size_t)(t - s)) != NULL)
			return err_set(e, 500, "key file \"%s\" line %d: contains a NUL byte",
			    path, lineno);
		if (n >= KEYS_MAX)
			return err_set(e, 500, "key file \"%s\": more than %d keys",
			    path, KEYS_MAX);
		if (keys_parse_line(path, lineno, s, (size_t)(t - s), &lines[n], e) < 0)
			return -1;
		for (i = 0; i < n; i++)
			if (strcmp(lines[i].kid, lines[n].kid) == 0)
				return err_set(e, 500,
				    "key file \"%s\" line %d: duplicate key id \"%s\"",
				    path, lineno, lines[n].kid);
		n++;
	}
	*nlines = n;
	return 0;
}

/*
 * Read the key file.  Returns 0 with the contents in *text (NUL-terminated,
 * the caller wipes and frees it), 1 if it does not exist, -1 on error.
 */
static int
keys_file_read(const char *path, char **text, size_t *len, struct err *e)
{
	struct stat st;
	char *data = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	/* O_NONBLOCK: a FIFO planted at the path must not hang the master. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return err_set(e, 500, "could not open key file \"%s\": %s",
		    path, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		err_set(e, 500, "could not stat key file \"%s\": %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, 500, "key file \"%s\" is not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & 077) != 0) {
		err_set(e, 500,
		    "key file \"%s\" is accessible by group or others (mode %04o); run chmod 600 on it",
		    path, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size > KEYS_FILE_MAX) {
		err_set(e, 500, "key file \"%s\" is larger than %d bytes", path, KEYS_FILE_MAX);
		goto fail;
	}
	data = xmalloc(KEYS_FILE_MAX + 1);
	for (;;) {
		r = read(fd, data + got, KEYS_FILE_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set(e, 500, "could not read key file \"%s\": %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > KEYS_FILE_MAX) {
			err_set(e, 500, "key file \"%s\" is larger than %d bytes", path, KEYS_FILE_MAX);
			goto fail;
		}
	}
	close(fd);
	data[got] = '\0';
	*text = data;
	*len = got;
	return 0;
fail:
	if (data != NULL) {
		crypto_cleanse(data, KEYS_FILE_MAX + 1);
		free(data);
	}
	close(fd);
	return -1;
}

static void
keys_text_free(char *text, size_t len)
{
	if (text == NULL)
		return;
	crypto_cleanse(text, len + 1);
	free(text);
}

/* Create the missing directories of path's parent, mode 0700. */
static int
keys_mkdirs(const char *path, struct err *e)
{
	char *dir = xstrdup(path), *p;
	int rc = -1;

	p = strrchr(dir, '/');
	if (p == NULL || p == dir) {
		rc = 0;
		goto out;
	}
	*p = '\0';
	/* Each prefix ending before a '/', then the whole directory. */
	for (p = strchr(dir + 1, '/'); ; p = strchr(p + 1, '/')) {
		if (p != NULL)
			*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			err_set(e, 500, "could not create directory \"%s\": %s",
			    dir, strerror(errno));
			goto out;
		}
		if (p == NULL)
			break;
		*p = '/';
	}
	rc = 0;
out:
	free(dir);
	return rc;
}

static void
keys_fsync_dir(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	/* Best effort: the file itself is already fsynced. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

/*
 * Write `text` to a fresh 0600 temporary file next to `path` and move it into
 * place: with replace, rename over any existing file; without, hard-link it
 * (which fails if the path exists, so a concurrent creator wins cleanly) and
 * return 1 if the path already existed.
 */
static int
keys_file_write(const char *path, const char *text, size_t len, int replace,
    struct err *e)
{
	char *tmp = xasprintf("%s.XXXXXX", path);
	size_t off = 0;
	int fd, rc = -1;

	fd = mkstemp(tmp);    /* O_CREAT | O_EXCL, mode 0600 */
	if (fd < 0) {
		err_set(e, 500, "could not create key file \"%s\": %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if (fchmod(fd, 0600) < 0) {
		err_set(e, 500, "could not chmod key file \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err_set(e, 500, "could not write key file \"%s\": %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		err_set(e, 500, "could not fsync key file \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_set(e, 500, "could not write key file \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (replace) {
		if (rename(tmp, path) < 0) {
			err_set(e, 500, "could not rename \"%s\" to \"%s\": %s",
			    tmp, path, strerror(errno));
			goto fail;
		}
		rc = 0;
	} else {
		if (link(tmp, path) == 0) {
			rc = 0;
		} else if (errno == EEXIST) {
			rc = 1;
		} else {
			err_set(e, 500, "could not create key file \"%s\": %s",
			    path, strerror(errno));
			goto fail;
		}
		(void)unlink(tmp);
	}
	keys_fsync_dir(path);
	free(tmp);
	return rc;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	free(tmp);
	return -1;
}

/* Append "<kid>:<hex>[:<retire>]\n" to b. */
static void
keys_format_line(struct buf *b, const char *kid, const unsigned char *secret,
    size_t len, time_t retire_after)
{
	char hex[2 * KEYS_SECRET_MAX + 1];

	hex_encode(secret, len, hex);
	buf_printf(b, "%s:%s", kid, hex);
	if (retire_after != 0)
		buf_printf(b, ":%lld", (long long)retire_after);
	buf_putc(b, '\n');
	crypto_cleanse(hex, sizeof(hex));
}

static void
keys_buf_wipe(struct buf *b)
{
	if (b->data != NULL)
		crypto_cleanse(b->data, b->cap);
	buf_free(b);
}

/* Append a fresh random key line (kid derived from it) to b. */
static int
keys_append_new(struct buf *b, struct err *e)
{
	unsigned char secret[KEYS_NEW_SECRET_LEN];
	char kid[KEYS_KID_MAX + 1];
	int rc = -1;

	if (crypto_random(secret, sizeof(secret), e) < 0)
		goto out;
	if (keys_derive_kid(secret, sizeof(secret), kid, e) < 0)
		goto out;
	keys_format_line(b, kid, secret, sizeof(secret), 0);
	rc = 0;
out:
	crypto_cleanse(secret, sizeof(secret));
	return rc;
}

/* Create a key file with one new key; 0 also when someone else won the race. */
static int
keys_file_create(const char *path, struct err *e)
{
	struct buf b = BUF_INIT;
	int rc = -1;

	if (keys_mkdirs(path, e) < 0)
		goto out;
	buf_reserve(&b, KEYS_TEXT_RESERVE);
	buf_puts(&b, keys_file_header);
	if (keys_append_new(&b, e) < 0)
		goto out;
	if (keys_file_write(path, b.data, b.len, 0, e) < 0)
		goto out;
	rc = 0;
out:
	keys_buf_wipe(&b);
	return rc;
}

int
keys_load_file(const char *path, struct keys *out, struct err *e)
{
	struct keys_line *lines = xcalloc(KEYS_MAX, sizeof(*lines));
	char *text = NULL;
	size_t len = 0, n = 0, i;
	int r, rc = -1;

	keys_clear(out);
	r = keys_file_read(path, &text, &len, e);
	if (r == 1) {
		if (keys_file_create(path, e) < 0)
			goto out;
		r = keys_file_read(path, &text, &len, e);
		if (r == 1) {
			err_set(e, 500, "key file \"%s\" vanished after it was created", path);
			goto out;
		}
	}
	if (r < 0)
		goto out;
	if (keys_parse_file(path, text, len, lines, &n, e) < 0)
		goto out;
	if (n == 0) {
		err_set(e, 500, "key file \"%s\" holds no key", path);
		goto out;
	}
	if (lines[n - 1].retire_after != 0) {
		err_set(e, 500,
		    "key file \"%s\": the last (current) key must not have a retire time",
		    path);
		goto out;
	}
	/* The file lists oldest first; the ring wants the current key first. */
	for (i = n; i-- > 0; )
		if (keys_add(out, lines[i].kid, lines[i].secret,
		    lines[i].secret_len, lines[i].retire_after, e) < 0) {
			err_prefix(e, "key file \"%s\"", path);
			goto out;
		}
	rc = 0;
out:
	if (rc < 0)
		keys_clear(out);
	keys_text_free(text, len);
	crypto_cleanse(lines, KEYS_MAX * sizeof(*lines));
	free(lines);
	return rc;
}

int
keys_load(const struct config *cfg, struct keys *out, struct err *e)
{
	const char *secret = cfg->web.authentication.jwt_secret_key;
	const char *alg = cfg->web.authentication.jwt_algorithm;
	char kid[KEYS_KID_MAX + 1];
	char *path;
	int rc;

	keys_clear(out);
	/* The reference lets this be configured; we sign and accept HS256 only. */
	if (alg != NULL && alg[0] != '\0' && strcmp(alg, "HS256") != 0)
		return err_set(e, 500, "jwt_algorithm must be HS256 (got \"%.32s\")", alg);
	if (secret != NULL && secret[0] != '\0') {
		size_t len = strlen(secret);

		if (len < KEYS_SECRET_MIN)
			return err_set(e, 500, "jwt_secret_key must be at least %d bytes",
			    KEYS_SECRET_MIN);
		if (len > KEYS_SECRET_MAX)
			return err_set(e, 500, "jwt_secret_key must be at most %d bytes",
			    KEYS_SECRET_MAX);
		if (keys_derive_kid(secret, len, kid, e) < 0 ||
		    keys_add(out, kid, secret, len, 0, e) < 0) {
			keys_clear(out);
			return -1;
		}
		return 0;
	}
	path = keys_file_path(cfg);
	if (path == NULL)
		return err_set(e, 500,
		    "no jwt signing key: set jwt_secret_key, jwt_key_file or server.state_dir");
	rc = keys_load_file(path, out, e);
	free(path);
	return rc;
}

int
keys_file_rotate(const char *path, time_t now, long keep_s, struct err *e)
{
	struct keys_line *lines = xcalloc(KEYS_MAX, sizeof(*lines));
	struct buf b = BUF_INIT;
	char *text = NULL;
	size_t len = 0, n = 0, i, first;
	int r, rc = -1;

	r = keys_file_read(path, &text, &len, e);
	if (r < 0)
		goto out;
	if (r == 1) {
		rc = keys_file_create(path, e);
		goto out;
	}
	if (keys_parse_file(path, text, len, lines, &n, e) < 0)
		goto out;
	/* Drop retired keys, then the oldest ones if the new key needs room. */
	for (i = 0; i < n; i++)
		if (lines[i].retire_after != 0 && now > lines[i].retire_after)
			lines[i].secret_len = 0;
	{
		size_t live = 0;

		for (i = 0; i < n; i++)
			live += lines[i].secret_len != 0;
		for (first = 0; live >= KEYS_MAX && first < n; first++)
			if (lines[first].secret_len != 0) {
				lines[first].secret_len = 0;
				live--;
			}
	}
	buf_reserve(&b, KEYS_TEXT_RESERVE);
	buf_puts(&b, keys_file_header);
	for (i = 0; i < n; i++) {
		if (lines[i].secret_len == 0)
			continue;
		keys_format_line(&b, lines[i].kid, lines[i].secret,
		    lines[i].secret_len,
		    lines[i].retire_after != 0 ? lines[i].retire_after : now + keep_s);
	}
	if (keys_append_new(&b, e) < 0)
		goto out;
	if (keys_file_write(path, b.data, b.len, 1, e) < 0)
		goto out;
	rc = 0;
out:
	keys_buf_wipe(&b);
	keys_text_free(text, len);
	crypto_cleanse(lines, KEYS_MAX * sizeof(*lines));
	free(lines);
	return rc;
}
