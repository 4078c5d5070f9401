/*
 * test_keys.c -- the signing key ring: keys from the configured secret and
 * from the key file (creation, permissions, format), servers sharing a
 * secret or a file, and rotation (in memory on reload, and in the file).
 * Works in a private temporary directory that it removes at the end.
 */
#include "autoconfig.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/jwt.h"
#include "lib/keys.h"
#include "tests/unit/tap.h"

#define NOW ((time_t)1700000000)

static char tmpdir[] = "/tmp/test_keys.XXXXXX";

static const char secret32[] = "this-is-a-shared-secret-of-32+by";

static void
cfg_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->web.authentication.jwt_access_token_expire_minutes = 1440;
	cfg->web.authentication.jwt_refresh_token_expire_days = 7;
}

static char *
path_in(const char *name)
{
	static char buf[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
	return buf[i];
}

static int
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

static char *
read_file(const char *path)
{
	static char buf[16384];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A token issued by `from` verifies with `to`; `quiet` when failure is expected. */
static int
cross_verifies_q(const struct keys *from, const struct keys *to, time_t at, int quiet)
{
	char t[JWT_TOKEN_MAX + 1];
	struct jwt_claims c;
	struct err e;

	if (jwt_issue(from, "alice", JWT_TYPE_ACCESS, 3600, at, t, sizeof(t), &e) < 0) {
		printf("# issue: %s\n", e.msg);
		return 0;
	}
	if (jwt_verify(to, t, strlen(t), JWT_TYPE_ACCESS, at, &c, &e) < 0) {
		if (!quiet)
			printf("# verify: %s\n", e.msg);
		return 0;
	}
	return strcmp(c.sub, "alice") == 0;
}

static int
cross_verifies(const struct keys *from, const struct keys *to, time_t at)
{
	return cross_verifies_q(from, to, at, 0);
}

static void
test_secret(void)
{
	struct config cfg;
	struct keys a, b, c;
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	char short_secret[32];
	struct err e;

	cfg_init(&cfg);
	memset(short_secret, 'x', 31);
	short_secret[31] = '\0';
	cfg.web.authentication.jwt_secret_key = short_secret;
	ok(keys_load(&cfg, &a, &e) < 0, "a 31-byte jwt_secret_key is refused");
	is_str(e.msg, "jwt_secret_key must be at least 32 bytes", "with a clear message");
	ok(strstr(e.msg, short_secret) == NULL, "the message does not contain the secret");
	is_int(a.n, 0, "and the ring is left empty");

	cfg.web.authentication.jwt_secret_key = (char *)(uintptr_t)secret32;
	ok(keys_load(&cfg, &a, &e) == 0, "a 32-byte jwt_secret_key loads");
	is_int(a.n, 1, "one key");
	ok(crypto_sha256_hex(secret32, strlen(secret32), hex, &e) == 0, "sha256 of the secret");
	ok(strlen(keys_current(&a)->kid) == 8 && strncmp(keys_current(&a)->kid, hex, 8) == 0,
	    "kid is the first 8 hex digits of SHA-256(secret): %s", keys_current(&a)->kid);
	ok(keys_load(&cfg, &b, &e) == 0, "a second server loads the same secret");
	ok(cross_verifies(&a, &b, NOW) && cross_verifies(&b, &a, NOW),
	    "two rings from the same secret verify each other's tokens");

	cfg.web.authentication.jwt_secret_key = (char *)(uintptr_t)"another-secret-that-is-long-enough!";
	ok(keys_load(&cfg, &c, &e) == 0, "a different secret loads");
	ok(!cross_verifies_q(&c, &a, NOW, 1), "and its tokens do not verify with the first ring");
	keys_clear(&a);
	is_int(a.n, 0, "keys_clear empties the ring");

	cfg.web.authentication.jwt_algorithm = (char *)(uintptr_t)"HS512";
	ok(keys_load(&cfg, &c, &e) < 0 && strstr(e.msg, "jwt_algorithm must be HS256") != NULL,
	    "jwt_algorithm other than HS256 is refused: %s", e.msg);
	cfg.web.authentication.jwt_algorithm = (char *)(uintptr_t)"HS256";
	ok(keys_load(&cfg, &c, &e) == 0, "jwt_algorithm HS256 is accepted");

	/* Neither a secret nor anywhere to keep a key file. */
	cfg_init(&cfg);
	ok(keys_load(&cfg, &a, &e) < 0 && strstr(e.msg, "state_dir") != NULL,
	    "no secret and no state_dir is an error: %s", e.msg);
	is_int(keys_retire_delay(&cfg), 7 * 86400 + 60,
	    "retire delay is the longest token lifetime plus the leeway");
}

static void
test_key_file_created(void)
{
	struct config cfg;
	struct keys a, b;
	struct stat st;
	struct err e;
	char *path, *text, *line;
	char state[512];

	cfg_init(&cfg);
	snprintf(state, sizeof(state), "%s/state/nested", tmpdir);
	cfg.server.state_dir = state;
	path = keys_file_path(&cfg);
	is_str(path, path_in("state/nested/jwt.key"), "default key file is <state_dir>/jwt.key");
	ok(keys_load(&cfg, &a, &e) == 0, "first start creates the key file: %s", e.msg);
	ok(stat(path, &st) == 0 && S_ISREG(st.st_mode), "the key file exists");
	is_int(st.st_mode & 07777, 0600, "the key file is mode 0600");
	ok(stat(state, &st) == 0 && (st.st_mode & 07777) == 0700, "the missing state directory was created 0700");
	text = read_file(path);
	line = text != NULL ? strstr(text, keys_current(&a)->kid) : NULL;
	ok(line != NULL && line[8] == ':' && strspn(line + 9, "0123456789abcdef") >= 64,
	    "the file holds <kid>:<at least 64 hex digits>");
	ok(keys_current(&a)->secret_len >= 32, "the key is at least 32 bytes (%zu)", keys_current(&a)->secret_len);
	ok(strlen(keys_current(&a)->kid) == 8, "a derived 8-digit kid");
	{
		char listing[1024];
		FILE *p;
		size_t n;

		snprintf(listing, sizeof(listing), "ls -A %s/state/nested", tmpdir);
		p = popen(listing, "r");
		n = p != NULL ? fread(listing, 1, sizeof(listing) - 1, p) : 0;
		listing[n] = '\0';
		if (p != NULL)
			pclose(p);
		is_str(listing, "jwt.key\n", "no temporary file is left behind");
	}

	ok(keys_load(&cfg, &b, &e) == 0, "a second server (or restart) loads the same file");
	is_str(keys_current(&b)->kid, keys_current(&a)->kid, "and gets the same kid");
	ok(cross_verifies(&a, &b, NOW) && cross_verifies(&b, &a, NOW),
	    "two rings from the same key file verify each other's tokens");

	/* jwt_key_file wins over state_dir. */
	cfg.web.authentication.jwt_key_file = path_in("explicit.key");
	free(path);
	path = keys_file_path(&cfg);
	is_str(path, path_in("explicit.key"), "jwt_key_file overrides the default path");
	ok(keys_load(&cfg, &b, &e) == 0 && strcmp(keys_current(&b)->kid, keys_current(&a)->kid) != 0,
	    "a different key file gives a different key");
	free(path);

	/* A secret in the configuration wins over any file. */
	cfg.web.authentication.jwt_secret_key = (char *)(uintptr_t)secret32;
	ok(keys_load(&cfg, &b, &e) == 0 && b.n == 1 && keys_current(&b)->secret_len == strlen(secret32),
	    "jwt_secret_key takes precedence over the key file");
}

static void
test_key_file_checks(void)
{
	static const char hex64[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	struct keys a;
	struct err e;
	char text[1024];
	const char *p = path_in("checks.key");

	write_file(p, "k1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0640);
	ok(keys_load_file(p, &a, &e) < 0, "a group-readable key file is rejected");
	ok(strstr(e.msg, "group or others") != NULL && strstr(e.msg, "0640") != NULL,
	    "with a clear message: %s", e.msg);
	ok(strstr(e.msg, "00112233") == NULL, "which does not show the key");
	chmod(p, 0604);
	ok(keys_load_file(p, &a, &e) < 0, "an other-readable key file is rejected");
	chmod(p, 0400);
	ok(keys_load_file(p, &a, &e) == 0, "a 0400 key file is accepted");
	chmod(p, 0600);
	ok(keys_load_file(p, &a, &e) == 0 && a.n == 1 && strcmp(keys_current(&a)->kid, "k1") == 0,
	    "a 0600 key file with kid k1 loads");

	write_file(p, "k1:00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n", 0600);
	ok(keys_load_file(p, &a, &e) < 0 && strstr(e.msg, "shorter than 32 bytes") != NULL,
	    "a 31-byte key is rejected: %s", e.msg);
	write_file(p, "", 0600);
	ok(keys_load_file(p, &a, &e) < 0 && strstr(e.msg, "no key") != NULL,
	    "an empty key file is rejected: %s", e.msg);
	write_file(p, "# only a comment\n\n", 0600);
	ok(keys_load_file(p, &a, &e) < 0, "a key file with only comments is rejected");
	write_file(p, "k1:zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	ok(keys_load_file(p, &a, &e) < 0 && strstr(e.msg, "line 1") != NULL,
	    "a non-hex key is rejected with its line: %s", e.msg);
	snprintf(text, sizeof(text), "k/1:%s\n", hex64);
	write_file(p, text, 0600);
	ok(keys_load_file(p, &a, &e) < 0, "a kid with '/' is rejected");
	snprintf(text, sizeof(text), "k1:%s\nk1:%s\n", hex64, hex64);
	write_file(p, text, 0600);
	ok(keys_load_file(p, &a, &e) < 0 && strstr(e.msg, "duplicate") != NULL, "duplicate kids are rejected");
	snprintf(text, sizeof(text), "k1:%s\nk2:%s:1700000000\n", hex64, hex64);
	write_file(p, text, 0600);
	ok(keys_load_file(p, &a, &e) < 0, "a retire time on the last (current) key is rejected");
	snprintf(text, sizeof(text), "k1:%s:soon\nk2:%s\n", hex64, hex64);
	write_file(p, text, 0600);
	ok(keys_load_file(p, &a, &e) < 0, "a non-numeric retire time is rejected");

	/* A bare hex line (openssl rand -hex 32 > jwt.key) gets the derived kid. */
	snprintf(text, sizeof(text), "%s\n", hex64);
	write_file(p, text, 0600);
	ok(keys_load_file(p, &a, &e) == 0 && a.n == 1 && strlen(keys_current(&a)->kid) == 8 &&
	    keys_current(&a)->secret_len == 32, "a bare hex key loads with a derived kid");
	{
		char kid[16];

		ok(keys_derive_kid(keys_current(&a)->secret, 32, kid, &e) == 0 &&
		    strcmp(kid, keys_current(&a)->kid) == 0, "the derived kid is keys_derive_kid of the bytes");
	}

	/* Several lines, CRLF, comments, blanks: the last line is current. */
	snprintf(text, sizeof(text),
	    "# keys\r\n\r\nold:%s:1700003600\r\n  mid:%s  \nnew:%s\n",
	    hex64, "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", hex64);
	write_file(p, text, 0600);
	ok(keys_load_file(p, &a, &e) == 0 && a.n == 3, "a three-key file loads: %s", e.msg);
	ok(strcmp(a.key[0].kid, "new") == 0 && strcmp(a.key[1].kid, "mid") == 0 &&
	    strcmp(a.key[2].kid, "old") == 0, "newest last in the file is current in the ring");
	is_int(a.key[2].retire_after, 1700003600, "the retire time is read");
	ok(keys_find(&a, "old", 3, NOW) != NULL, "a key before its retire time verifies");
	ok(keys_find(&a, "old", 3, 1700003601) == NULL, "a key after its retire time does not");
	ok(keys_find(&a, "mid", 3, 1700003601) != NULL, "a key without retire time stays");
	ok(keys_find(&a, "nope", 4, NOW) == NULL, "an unknown kid is not found");

	/* Not a regular file. */
	ok(keys_load_file(tmpdir, &a, &e) < 0, "a directory as key file is rejected: %s", e.msg);
	/* A FIFO must not hang the load. */
	unlink(p);
	if (mkfifo(p, 0600) == 0) {
		ok(keys_load_file(p, &a, &e) < 0 && strstr(e.msg, "regular") != NULL,
		    "a FIFO as key file is rejected at once");
		unlink(p);
	}
}

static void
test_rotate_memory(void)
{
	struct config cfg;
	struct keys old, cur, again;
	char t_old[JWT_TOKEN_MAX + 1], t_new[JWT_TOKEN_MAX + 1];
	long keep;
	struct err e;

	cfg_init(&cfg);
	keep = keys_retire_delay(&cfg);
	cfg.web.authentication.jwt_secret_key = (char *)(uintptr_t)secret32;
	if (keys_load(&cfg, &old, &e) < 0)
		abort();
	ok(jwt_issue(&old, "alice", JWT_TYPE_REFRESH, 7 * 86400, NOW, t_old, sizeof(t_old), &e) == 0,
	    "a refresh token signed with the old key");

	/* SIGHUP with a new secret: build new, then carry the old key. */
	cfg.web.authentication.jwt_secret_key = (char *)(uintptr_t)"the-new-secret-after-a-reload-123456";
	if (keys_load(&cfg, &cur, &e) < 0)
		abort();
	keys_rotate(&old, &cur, NOW + 10, keep);
	is_int(cur.n, 2, "after rotation the ring has the new and the previous key");
	ok(strcmp(keys_current(&cur)->kid, keys_current(&old)->kid) != 0, "the new key is current");
	is_int(cur.key[1].retire_after, NOW + 10 + keep, "the previous key retires after the longest lifetime");
	ok(jwt_issue(&cur, "alice", JWT_TYPE_ACCESS, 3600, NOW + 10, t_new, sizeof(t_new), &e) == 0,
	    "new tokens are signed");
	ok(strstr(t_new, ".") != NULL && jwt_verify(&old, t_new, strlen(t_new), NULL, NOW + 10, NULL, &e) < 0,
	    "with the new key (the old ring does not know it)");
	ok(jwt_verify(&cur, t_old, strlen(t_old), JWT_TYPE_REFRESH, NOW + 7 * 86400, NULL, &e) == 0,
	    "the previous key still verifies its tokens until they expire");
	ok(jwt_verify(&cur, t_old, strlen(t_old), NULL, NOW + 10 + keep + 1, NULL, &e) < 0 &&
	    strstr(e.msg, "key id") != NULL, "and is dropped after its retire time: %s", e.msg);

	/* A second reload keeps the carried key's own retire time. */
	if (keys_load(&cfg, &again, &e) < 0)
		abort();
	keys_rotate(&cur, &again, NOW + 20, keep);
	is_int(again.n, 2, "reloading the same secret keeps the same two keys");
	is_int(again.key[1].retire_after, NOW + 10 + keep, "and the first retire time");
	if (keys_load(&cfg, &again, &e) < 0)
		abort();
	keys_rotate(&cur, &again, NOW + 10 + keep + 1, keep);
	is_int(again.n, 1, "a reload after the retire time drops the old key");

	/* Rotation to the same key changes nothing. */
	cfg.web.authentication.jwt_secret_key = (char *)(uintptr_t)secret32;
	if (keys_load(&cfg, &cur, &e) < 0)
		abort();
	keys_rotate(&old, &cur, NOW, keep);
	is_int(cur.n, 1, "a reload with an unchanged key keeps one key");

	/* Many rotations never overflow the ring. */
	{
		struct keys r, n2;
		char secret[64];
		int i;

		memset(&r, 0, sizeof(r));
		for (i = 0; i < 3 * KEYS_MAX; i++) {
			char kid[16];

			memset(&n2, 0, sizeof(n2));
			snprintf(kid, sizeof(kid), "r%d", i);
			snprintf(secret, sizeof(secret), "rotation-secret-number-%08d-padding", i);
			if (keys_add(&n2, kid, secret, strlen(secret), 0, &e) < 0)
				abort();
			keys_rotate(&r, &n2, NOW + i, keep);
			r = n2;
		}
		is_int(r.n, KEYS_MAX, "after %d rotations the ring holds %d keys", 3 * KEYS_MAX, KEYS_MAX);
		ok(strcmp(r.key[0].kid, "r47") == 0 && strcmp(r.key[1].kid, "r46") == 0,
		    "the newest are kept");
	}
}

static void
test_rotate_file(void)
{
	const char *p = path_in("shared/jwt.key");
	struct keys a, b, a2, b2;
	char t_old[JWT_TOKEN_MAX + 1];
	struct stat st;
	struct err e;
	long keep = 7 * 86400 + 60;
	char first_kid[KEYS_KID_MAX + 1];
	int i;

	ok(keys_load_file(p, &a, &e) == 0 && keys_load_file(p, &b, &e) == 0,
	    "two servers share a new key file");
	strcpy(first_kid, keys_current(&a)->kid);
	ok(jwt_issue(&a, "alice", JWT_TYPE_REFRESH, 7 * 86400, NOW, t_old, sizeof(t_old), &e) == 0,
	    "server A issues a token");

	ok(keys_file_rotate(p, NOW + 100, keep, &e) == 0, "one server rotates the file: %s", e.msg);
	ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600, "the rotated file is still 0600");
	ok(keys_load_file(p, &a2, &e) == 0 && keys_load_file(p, &b2, &e) == 0,
	    "both servers reload it (SIGHUP)");
	is_int(a2.n, 2, "the file now has two keys");
	ok(strcmp(keys_current(&a2)->kid, first_kid) != 0 &&
	    strcmp(keys_current(&a2)->kid, keys_current(&b2)->kid) == 0,
	    "both servers have the same new current key");
	is_int(a2.key[1].retire_after, NOW + 100 + keep, "the old key got a retire time in the file");
	ok(jwt_verify(&b2, t_old, strlen(t_old), JWT_TYPE_REFRESH, NOW + 200, NULL, &e) == 0,
	    "server B still verifies A's token signed with the old key");
	ok(cross_verifies(&a2, &b2, NOW + 200) && cross_verifies(&b2, &a2, NOW + 200),
	    "and the servers verify each other's new tokens");
	ok(jwt_verify(&b2, t_old, strlen(t_old), NULL, NOW + 100 + keep + 1, NULL, &e) < 0,
	    "the old key is refused after its retire time");

	/* Rotating again after the retire time prunes the old key. */
	ok(keys_file_rotate(p, NOW + 100 + keep + 1, keep, &e) == 0 &&
	    keys_load_file(p, &a2, &e) == 0, "a later rotation");
	ok(a2.n == 2 && keys_find(&a2, first_kid, strlen(first_kid), NOW) == NULL,
	    "drops the retired key from the file");

	/* Many rotations stay within the ring size. */
	for (i = 0; i < KEYS_MAX + 3; i++)
		if (keys_file_rotate(p, NOW + 100 + keep + 2 + i, keep, &e) < 0)
			break;
	ok(keys_load_file(p, &a2, &e) == 0 && a2.n == KEYS_MAX,
	    "after many rotations the file holds at most %d keys (%zu)", KEYS_MAX, a2.n);

	/* Rotating a missing file creates it. */
	ok(keys_file_rotate(path_in("fresh/jwt.key"), NOW, keep, &e) == 0 &&
	    keys_load_file(path_in("fresh/jwt.key"), &a2, &e) == 0 && a2.n == 1,
	    "rotating a missing key file creates it");
	/* A rotation refuses a file it would not load. */
	chmod(p, 0644);
	ok(keys_file_rotate(p, NOW, keep, &e) < 0, "rotation refuses a world-readable key file");
	chmod(p, 0600);
}

static void
test_add(void)
{
	struct keys r;
	struct err e;
	char kid[KEYS_KID_MAX + 2];

	memset(&r, 0, sizeof(r));
	ok(keys_current(&r) == NULL, "an empty ring has no current key");
	ok(keys_add(&r, "", secret32, 32, 0, &e) < 0, "empty kid refused");
	ok(keys_add(&r, "a b", secret32, 32, 0, &e) < 0, "kid with a space refused");
	memset(kid, 'k', sizeof(kid) - 1);
	kid[sizeof(kid) - 1] = '\0';
	ok(keys_add(&r, kid, secret32, 32, 0, &e) < 0, "kid of %d characters refused", KEYS_KID_MAX + 1);
	kid[KEYS_KID_MAX] = '\0';
	ok(keys_add(&r, kid, secret32, 32, 0, &e) == 0, "kid of %d characters accepted", KEYS_KID_MAX);
	ok(keys_add(&r, kid, secret32, 32, 0, &e) < 0, "duplicate kid refused");
	ok(keys_add(&r, "big", secret32, KEYS_SECRET_MAX + 1, 0, &e) < 0, "oversized secret refused");
	is_int(r.n, 1, "only the good key is in");
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_secret();
	test_key_file_created();
	test_key_file_checks();
	test_rotate_memory();
	test_rotate_file();
	test_add();
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
