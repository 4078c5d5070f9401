/*
 * ujournal.c -- the usage journal (see ujournal.h): slots of a file mapped
 * MAP_SHARED, a free stack and a list of deferred slots in process memory,
 * and the replay of other processes' orphaned files.
 *
 * File layout: a UJ_HEADER_SIZE header (struct uj_header), then `nslots`
 * slots of UJ_SLOT_SIZE bytes (struct uj_slot).  The free stack hands out
 * the slot freed last first, so the pages a busy worker touches stay few.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/ujournal.h"
#include "lib/uuid.h"
#include "lib/xmalloc.h"

#define UJ_HEADER_SIZE  4096
#define UJ_VERSION      1
static const char uj_magic[8] = { 'I', 'N', 'G', 'U', 'J', 'N', 'L', '\n' };

enum uj_state {
	UJ_FREE = 0,
	UJ_HELD = 1,
	UJ_DEFERRED = 2,
};

struct uj_header {
	char magic[8];
	uint32_t version;
	uint32_t slot_size;
	uint32_t nslots;
	uint32_t pid;
};

struct uj_slot {
	_Atomic uint32_t state;
	uint32_t len;
	char data[UJ_RECORD_MAX];
};

_Static_assert(sizeof(struct uj_slot) == UJ_SLOT_SIZE, "a slot is UJ_SLOT_SIZE bytes");

struct uj {
	int fd;
	char *path;
	unsigned char *map;
	size_t map_len;
	uint32_t nslots;
	pthread_mutex_t lock;
	uint32_t *free;          /* stack of free slot numbers */
	uint32_t nfree;
	uint32_t *deferred;      /* deferred slot numbers, oldest first */
	uint32_t ndeferred;
};

static struct uj_slot *
uj_slot(unsigned char *map, uint32_t i)
{
	return (struct uj_slot *)(void *)(map + UJ_HEADER_SIZE + (size_t)i * UJ_SLOT_SIZE);
}

/* mkdir -p of at most two levels (state_dir, then its journal folder). */
static int
uj_mkdirs(const char *dir, struct err *e)
{
	char *parent;
	char *slash;

	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return err_set(e, 500, "could not create %s: %s", dir, strerror(errno));
	parent = xstrdup(dir);
	slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (mkdir(parent, 0700) != 0 && errno != EEXIST) {
			err_set(e, 500, "could not create %s: %s", parent, strerror(errno));
			free(parent);
			return -1;
		}
	}
	free(parent);
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	return err_set(e, 500, "could not create %s: %s", dir, strerror(errno));
}

struct uj *
uj_open(const char *dir, size_t slots, struct err *e)
{
	struct uj *j;
	struct uj_header *h;
	char *tmp;
	uint32_t i;
	int rc;

	if (slots < 1 || slots > UJ_MAX_SLOTS) {
		err_set(e, 500, "usage journal: %zu slots is out of range (1..%d)",
		    slots, UJ_MAX_SLOTS);
		return NULL;
	}
	if (uj_mkdirs(dir, e) != 0)
		return NULL;
	j = xcalloc(1, sizeof(*j));
	j->fd = -1;
	j->nslots = (uint32_t)slots;
	j->map_len = UJ_HEADER_SIZE + slots * UJ_SLOT_SIZE;
	j->path = xasprintf("%s/usage-%ld-%016llx.uj", dir, (long)getpid(),
	    (unsigned long long)uuid_rand64());
	/* created under a name uj_recover ignores, locked, then renamed: a
	 * recovering process never sees it unlocked */
	tmp = xasprintf("%s/.new-%ld-%016llx", dir, (long)getpid(),
	    (unsigned long long)uuid_rand64());
	j->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		err_set(e, 500, "could not create the usage journal in %s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
		err_set(e, 500, "could not lock the usage journal: %s", strerror(errno));
		goto fail_unlink;
	}
	rc = posix_fallocate(j->fd, 0, (off_t)j->map_len);
	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = ftruncate(j->fd, (off_t)j->map_len) == 0 ? 0 : errno;
	if (rc != 0) {
		err_set(e, 500, "could not reserve %zu bytes for the usage journal in %s: %s",
		    j->map_len, dir, strerror(rc));
		goto fail_unlink;
	}
	j->map = mmap(NULL, j->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (j->map == MAP_FAILED) {
		j->map = NULL;
		err_set(e, 500, "could not map the usage journal: %s", strerror(errno));
		goto fail_unlink;
	}
	h = (struct uj_header *)(void *)j->map;
	memcpy(h->magic, uj_magic, sizeof(uj_magic));
	h->version = UJ_VERSION;
	h->slot_size = UJ_SLOT_SIZE;
	h->nslots = j->nslots;
	h->pid = (uint32_t)getpid();
	if (rename(tmp, j->path) != 0) {
		err_set(e, 500, "could not name the usage journal %s: %s", j->path,
		    strerror(errno));
		goto fail_unlink;
	}
	free(tmp);
	pthread_mutex_init(&j->lock, NULL);
	j->free = xmalloc(slots * sizeof(*j->free));
	j->deferred = xmalloc(slots * sizeof(*j->deferred));
	for (i = 0; i < j->nslots; i++)
		j->free[i] = j->nslots - 1 - i;   /* slot 0 on top */
	j->nfree = j->nslots;
	return j;

fail_unlink:
	unlink(tmp);
fail:
	free(tmp);
	if (j->map != NULL)
		munmap(j->map, j->map_len);
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j);
	return NULL;
}

int
uj_put(struct uj *j, const void *rec, size_t len)
{
	struct uj_slot *s;
	uint32_t i;

	if (len == 0 || len > UJ_RECORD_MAX)
		return -1;
	pthread_mutex_lock(&j->lock);
	if (j->nfree == 0) {
		pthread_mutex_unlock(&j->lock);
		return -1;
	}
	i = j->free[--j->nfree];
	pthread_mutex_unlock(&j->lock);
	s = uj_slot(j->map, i);
	memcpy(s->data, rec, len);
	s->len = (uint32_t)len;
	/* the bytes before the state: a reader that sees HELD sees them */
	atomic_store_explicit(&s->state, UJ_HELD, memory_order_release);
	return (int)i;
}

/* Remove slot i from the deferred list; the caller holds the lock. */
static void
uj_undefer_locked(struct uj *j, uint32_t i)
{
	uint32_t k;

	for (k = 0; k < j->ndeferred; k++)
		if (j->deferred[k] == i) {
			memmove(j->deferred + k, j->deferred + k + 1,
			    (j->ndeferred - k - 1) * sizeof(*j->deferred));
			j->ndeferred--;
			return;
		}
}

void
uj_drop(struct uj *j, int slot)
{
	struct uj_slot *s;
	uint32_t old;

	if (slot < 0 || (uint32_t)slot >= j->nslots)
		return;
	s = uj_slot(j->map, (uint32_t)slot);
	old = atomic_exchange_explicit(&s->state, UJ_FREE, memory_order_acq_rel);
	if (old == UJ_FREE)
		return;   /* never free a slot twice */
	pthread_mutex_lock(&j->lock);
	if (old == UJ_DEFERRED)
		uj_undefer_locked(j, (uint32_t)slot);
	j->free[j->nfree++] = (uint32_t)slot;
	pthread_mutex_unlock(&j->lock);
}

void
uj_defer(struct uj *j, int slot)
{
	struct uj_slot *s;
	uint32_t expect = UJ_HELD;

	if (slot < 0 || (uint32_t)slot >= j->nslots)
		return;
	s = uj_slot(j->map, (uint32_t)slot);
	if (!atomic_compare_exchange_strong(&s->state, &expect, UJ_DEFERRED))
		return;
	pthread_mutex_lock(&j->lock);
	j->deferred[j->ndeferred++] = (uint32_t)slot;
	pthread_mutex_unlock(&j->lock);
}

size_t
uj_deferred(struct uj *j, size_t max,
    int (*fn)(void *arg, const char *rec, size_t len), void *arg)
{
	uint32_t *take;
	size_t n, k, freed = 0;
	struct uj_slot *s;

	pthread_mutex_lock(&j->lock);
	n = j->ndeferred < max ? j->ndeferred : max;
	take = xmalloc((n ? n : 1) * sizeof(*take));
	memcpy(take, j->deferred, n * sizeof(*take));
	pthread_mutex_unlock(&j->lock);
	for (k = 0; k < n; k++) {
		s = uj_slot(j->map, take[k]);
		if (atomic_load_explicit(&s->state, memory_order_acquire) != UJ_DEFERRED)
			continue;
		if (fn(arg, s->data, s->len) == 0) {
			uj_drop(j, (int)take[k]);
			freed++;
		}
	}
	free(take);
	return freed;
}

void
uj_counts(struct uj *j, size_t *in_use, size_t *deferred)
{
	pthread_mutex_lock(&j->lock);
	*in_use = j->nslots - j->nfree;
	*deferred = j->ndeferred;
	pthread_mutex_unlock(&j->lock);
}

void
uj_close(struct uj *j)
{
	if (j == NULL)
		return;
	uj_release(j);
	munmap(j->map, j->map_len);
	close(j->fd);   /* releases the lock */
	free(j->free);
	free(j->deferred);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
}

void
uj_release(struct uj *j)
{
	size_t used, deferred;

	if (j == NULL)
		return;
	uj_counts(j, &used, &deferred);
	if (used == 0)
		unlink(j->path);
	else
		log_warn("stopping", "%zu llm usage rows (%zu deferred) left in %s for "
		    "another worker to write", used, deferred, j->path);
}

/* ---- orphans ------------------------------------------------------------ */

/* The records of a locked orphan, in batches; 0 when all were replayed. */
static int
uj_replay_file(unsigned char *map, uint32_t nslots, size_t batch,
    int (*replay)(void *, const char *const *, const size_t *, size_t),
    void *arg, long *count)
{
	const char **recs = xmalloc(batch * sizeof(*recs));
	size_t *lens = xmalloc(batch * sizeof(*lens));
	size_t n = 0;
	uint32_t i, st;
	struct uj_slot *s;
	int rc = 0;

	for (i = 0; i < nslots && rc == 0; i++) {
		s = uj_slot(map, i);
		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if ((st != UJ_HELD && st != UJ_DEFERRED) || s->len == 0 ||
		    s->len > UJ_RECORD_MAX)
			continue;
		recs[n] = s->data;
		lens[n] = s->len;
		if (++n == batch) {
			rc = replay(arg, recs, lens, n);
			if (rc == 0)
				*count += (long)n;
			n = 0;
		}
	}
	if (rc == 0 && n > 0) {
		rc = replay(arg, recs, lens, n);
		if (rc == 0)
			*count += (long)n;
	}
	free(recs);
	free(lens);
	return rc;
}

/* Set a broken file aside so that it is neither replayed nor lost. */
static void
uj_set_aside(const char *path, const char *why)
{
	char *bad = xasprintf("%s.bad", path);

	if (rename(path, bad) == 0)
		log_error("replaying usage journals", "%s is not a usage journal (%s): "
		    "moved to %s", path, why, bad);
	free(bad);
}

/* One candidate file: replay it if nobody holds it.  Adds to *count. */
static void
uj_recover_file(const char *path, size_t batch,
    int (*replay)(void *, const char *const *, const size_t *, size_t),
    void *arg, long *count)
{
	struct uj_header h;
	struct stat st;
	unsigned char *map;
	size_t len;
	int fd;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;   /* removed meanwhile by another replayer */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
	    st.st_nlink == 0) {
		close(fd);   /* alive, or replayed and removed meanwhile */
		return;
	}
	if ((size_t)st.st_size < UJ_HEADER_SIZE ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, uj_magic, sizeof(uj_magic)) != 0 ||
	    h.version != UJ_VERSION || h.slot_size != UJ_SLOT_SIZE ||
	    h.nslots < 1 || h.nslots > UJ_MAX_SLOTS ||
	    (size_t)st.st_size != UJ_HEADER_SIZE + (size_t)h.nslots * UJ_SLOT_SIZE) {
		uj_set_aside(path, "bad header or size");
		close(fd);
		return;
	}
	len = (size_t)st.st_size;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		log_error("replaying usage journals", "could not map %s: %s", path,
		    strerror(errno));
		close(fd);
		return;
	}
	if (uj_replay_file(map, h.nslots, batch, replay, arg, count) == 0) {
		if (unlink(path) != 0)
			log_error("replaying usage journals", "could not remove %s: %s",
			    path, strerror(errno));
	}
	munmap(map, len);
	close(fd);
}

long
uj_recover(const char *dir, const struct uj *self, size_t batch,
    int (*replay)(void *arg, const char *const *recs, const size_t *lens,
        size_t n),
    void *arg, struct err *e)
{
	DIR *d;
	struct dirent *de;
	size_t nl;
	long count = 0;
	char *path;

	if (batch < 1)
		batch = 1;
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		err_set(e, 500, "could not read %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (strncmp(de->d_name, "usage-", 6) != 0 || nl < 9 ||
		    strcmp(de->d_name + nl - 3, ".uj") != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (self == NULL || strcmp(path, self->path) != 0)
			uj_recover_file(path, batch, replay, arg, &count);
		free(path);
	}
	closedir(d);
	return count;
}
