/*
 * plugin.c -- flows in C on the flow path: it finds the shared objects,
 * checks their descriptor before anything in them is called, and loads
 * them where plugin code may run (a worker, the loader child, a command of
 * `ingen`).  It owns the loader's messages (docs/flows.md, "Load errors and
 * what to do").  It never runs a flow, and the master reaches it only
 * through plugin_scan and plugin_validate, which call no plugin code in the
 * calling process.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "flows/declarative.h"
#include "flows/plugin.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define PLUGIN_MAX_FLOWS 1024       /* a descriptor past this is corrupt */
#define PLUGIN_NAME_MAX 128         /* REGISTRY_NAME_MAX: with the NUL */
#define PLUGIN_FD_PATH_MAX 64
#define PLUGIN_REBUILD "rebuild it against <ingenious/flow.h> ABI %d.x: make clean && make"

/* ---- finding the files ------------------------------------------------- */

static struct plugin_file *
plugin_set_add(struct plugin_set *set, const char *path)
{
	struct plugin_file *f;

	set->files = xrealloc(set->files, (set->n + 1) * sizeof(*set->files));
	f = &set->files[set->n++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	f->fd = -1;
	return f;
}

static int
plugin_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
plugin_is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
plugin_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The candidate of folder entry `name` of `dir` (a "<x>.so" file, or a
 * folder "<x>" holding "<x>.so"), or NULL.  Returns a new string. */
static char *
plugin_candidate(const char *dir, const char *name)
{
	const char *sep = dir[0] != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/";
	size_t len = strlen(name);
	char *p;

	if (name[0] == '.')
		return NULL;
	p = xasprintf("%s%s%s", dir, sep, name);
	if (len > 3 && strcmp(name + len - 3, ".so") == 0) {
		if (plugin_is_file(p))
			return p;
	} else if (plugin_is_dir(p)) {
		char *inner = xasprintf("%s/%s.so", p, name);

		if (plugin_is_file(inner)) {
			free(p);
			return inner;
		}
		/* most often a flow whose sources are there, not built yet;
		 * a folder holding a flow file <x>/<x>.flow is not a plugin */
		if (!decl_folder_has_flow(p, name))
			log_info("loading flows", "no flow plugin \"%s\" (not built yet? run "
			    "make in its folder), the folder is skipped", inner);
		free(p);
		p = inner;
	}
	free(p);
	return NULL;
}

static void
plugin_scan_folder(const char *dir, struct plugin_set *set)
{
	char **names = NULL;
	size_t n = 0, i;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR) {
			log_debug("loading flows", "flow path folder \"%s\" does not "
			    "exist, skipped", dir);
			return;
		}
		plugin_set_add(set, dir)->error = xasprintf("could not read flow "
		    "path folder \"%s\": %s (server.flow_path, INGENIOUS_FLOW_PATH)",
		    dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), plugin_cmp_names);
	for (i = 0; i < n; i++) {
		char *path = plugin_candidate(dir, names[i]);
		struct plugin_file *f;

		free(names[i]);
		if (path == NULL)
			continue;
		f = plugin_set_add(set, path);
		if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			f->error = xasprintf("could not open flow plugin \"%s\": %s",
			    path, strerror(errno));
		free(path);
	}
	free(names);
}

void
plugin_scan(const char *flow_path, struct plugin_set *set)
{
	char *copy, *rest, *dir;

	memset(set, 0, sizeof(*set));
	if (flow_path == NULL)
		return;
	rest = copy = xstrdup(flow_path);
	while ((dir = strsep(&rest, ":")) != NULL)
		if (dir[0] != '\0')
			plugin_scan_folder(dir, set);
	free(copy);
}

/* ---- checking a descriptor -------------------------------------------- */

/* Write a refusal into msg (PLUGIN_MSG_MAX bytes); returns -1. */
static int ING_PRINTF(2, 3)
plugin_refuse(char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, PLUGIN_MSG_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

bool
plugin_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return i > 0 && i < PLUGIN_NAME_MAX;
}

static void
plugin_flows_free(struct plugin_flow *flows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(flows[i].name);
		free(flows[i].description);
		free(flows[i].category);
		free(flows[i].requires);
	}
	free(flows);
}

/* What a file declares, forgotten (its error and path stay). */
static void
plugin_file_forget(struct plugin_file *f)
{
	plugin_flows_free(f->flows, f->n_flows);
	f->flows = NULL;
	f->n_flows = 0;
	free(f->module);
	free(f->version);
	f->module = f->version = NULL;
}

static void
plugin_describe_signature(const struct ing_build_signature *s, char *out,
    size_t n)
{
	snprintf(out, n, "pointer %u, long %u, int %u, size_t %u, double %u bytes, "
	    "%s-endian", s->pointer_size, s->long_size, s->int_size,
	    s->size_t_size, s->double_size, s->little_endian ? "little" : "big");
}

/* The module's name when the descriptor has none: the file's base name. */
static char *
plugin_default_module(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base != NULL ? base + 1 : path;
	len = strlen(base);
	if (len > 3 && strcmp(base + len - 3, ".so") == 0)
		len -= 3;
	return xstrndup(base, len);
}

/* Check flow `fl` (#i of the file, from 1) and copy it into `out`. */
static int
plugin_check_flow(const char *path, const struct ing_flow *fl, size_t i,
    const struct plugin_flow *seen, size_t n_seen, struct plugin_flow *out,
    char *msg)
{
	char norm[PLUGIN_NAME_MAX];
	size_t j, k;

	if (fl->name == NULL || fl->name[0] == '\0')
		return plugin_refuse(msg, "flow plugin \"%s\": flow #%zu "
		    "has no name: set .name in its struct ing_flow", path, i);
	if (!plugin_name_ok(fl->name)) {
		for (k = 0; fl->name[k] != '\0' && k + 1 < sizeof(norm); k++)
			norm[k] = fl->name[k] == '-' ? '_' :
			    (fl->name[k] >= 'A' && fl->name[k] <= 'Z') ?
			    (char)(fl->name[k] - 'A' + 'a') : fl->name[k];
		norm[k] = '\0';
		if (strlen(fl->name) < sizeof(norm) && plugin_name_ok(norm))
			return plugin_refuse(msg, "flow plugin \"%s\": flow "
			    "name \"%s\" is not in normal form: name it \"%s\" (lower "
			    "case, '_' for '-'; requests may still say \"%s\")", path,
			    fl->name, norm, fl->name);
		return plugin_refuse(msg, "flow plugin \"%s\": flow name "
		    "\"%.64s\" is not valid: a flow name has 1 to %d characters "
		    "a-z, 0-9 and '_'", path, fl->name, PLUGIN_NAME_MAX - 1);
	}
	if (fl->run == NULL)
		return plugin_refuse(msg, "flow plugin \"%s\": flow \"%s\" "
		    "has no run function: set .run in its struct ing_flow", path,
		    fl->name);
	for (j = 0; j < n_seen; j++)
		if (strcmp(seen[j].name, fl->name) == 0)
			return plugin_refuse(msg, "flow plugin \"%s\" "
			    "declares flow \"%s\" twice: list each flow once in "
			    "ING_FLOW_MODULE(...)", path, fl->name);
	out->name = xstrdup(fl->name);
	out->description = xstrdup(fl->description != NULL ? fl->description : "");
	out->category = xstrdup(fl->category != NULL ? fl->category : "Custom");
	out->requires = xstrdup(fl->requires != NULL ? fl->requires : "a chat model");
	out->run = fl->run;
	return 0;
}

int
plugin_check(const char *path, const struct ing_flow_module *m,
    struct plugin_file *f, char *msg)
{
	static const struct ing_build_signature ours = ING_BUILD_SIGNATURE;
	char theirs_s[160], ours_s[160];
	size_t i, n;

	plugin_file_forget(f);
	if (m->magic != ING_FLOW_MAGIC)
		return plugin_refuse(msg, "flow plugin \"%s\" has a bad "
		    "magic number in ing_flow_module (0x%08x, expected 0x%08x): it "
		    "was not written with ING_FLOW_MODULE(...) of <ingenious/flow.h>: "
		    "declare it with that macro and rebuild it", path, m->magic,
		    ING_FLOW_MAGIC);
	if (m->abi_major != ING_FLOW_ABI_MAJOR)
		return plugin_refuse(msg, "flow plugin \"%s\" was built "
		    "for flow ABI %u.%u, this server has %d.%d: " PLUGIN_REBUILD,
		    path, m->abi_major, m->abi_minor, ING_FLOW_ABI_MAJOR,
		    ING_FLOW_ABI_MINOR, ING_FLOW_ABI_MAJOR);
	if (m->abi_minor > ING_FLOW_ABI_MINOR)
		return plugin_refuse(msg, "flow plugin \"%s\" was built "
		    "for flow ABI %u.%u, newer than this server's %d.%d: upgrade the "
		    "server to flow ABI %u.%u or later, or rebuild the plugin against "
		    "this server's <ingenious/flow.h> (ABI %d.%d): make clean && make",
		    path, m->abi_major, m->abi_minor, ING_FLOW_ABI_MAJOR,
		    ING_FLOW_ABI_MINOR, m->abi_major, m->abi_minor,
		    ING_FLOW_ABI_MAJOR, ING_FLOW_ABI_MINOR);
	if (m->signature.pointer_size != ours.pointer_size ||
	    m->signature.long_size != ours.long_size ||
	    m->signature.int_size != ours.int_size ||
	    m->signature.size_t_size != ours.size_t_size ||
	    m->signature.double_size != ours.double_size ||
	    m->signature.little_endian != ours.little_endian) {
		plugin_describe_signature(&m->signature, theirs_s, sizeof(theirs_s));
		plugin_describe_signature(&ours, ours_s, sizeof(ours_s));
		return plugin_refuse(msg, "flow plugin \"%s\" is not binary "
		    "compatible with this server: it was built with %s, this server "
		    "has %s: rebuild it on this machine with the server's compiler "
		    "settings (no -m32): make clean && make", path, theirs_s,
		    ours_s);
	}
	if (m->flows == NULL || m->flows[0] == NULL)
		return plugin_refuse(msg, "flow plugin \"%s\" declares no "
		    "flows: list them in ING_FLOW_MODULE(name, version, &flow, ...)",
		    path);
	for (n = 0; m->flows[n] != NULL; n++)
		if (n == PLUGIN_MAX_FLOWS)
			return plugin_refuse(msg, "flow plugin \"%s\" declares "
			    "more than %d flows (is the list in ING_FLOW_MODULE(...) "
			    "corrupt?)", path, PLUGIN_MAX_FLOWS);
	f->flows = xcalloc(n, sizeof(*f->flows));
	for (i = 0; i < n; i++) {
		if (plugin_check_flow(path, m->flows[i], i + 1, f->flows, f->n_flows,
		    &f->flows[f->n_flows], msg) != 0) {
			plugin_file_forget(f);
			return -1;
		}
		f->n_flows++;
	}
	f->module = m->name != NULL && m->name[0] != '\0' ? xstrdup(m->name) :
	    plugin_default_module(path);
	f->version = xstrdup(m->version != NULL ? m->version : "");
	f->abi_major = m->abi_major;
	f->abi_minor = m->abi_minor;
	return 0;
}

/* ---- loading ----------------------------------------------------------- */

/* dlerror() text with the descriptor's /proc name put back as the path. */
static void
plugin_dlerror(const char *path, const char *open_name, char *msg)
{
	const char *de = dlerror(), *hit;
	char text[PLUGIN_MSG_MAX];
	size_t len = strlen(open_name);

	if (de == NULL)
		de = "unknown error";
	if (open_name != path && (hit = strstr(de, open_name)) != NULL)
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(hit - de), de, path,
		    hit + len);
	else
		snprintf(text, sizeof(text), "%s", de);
	if (strstr(text, "undefined symbol") != NULL)
		snprintf(msg, PLUGIN_MSG_MAX, "could not load flow plugin \"%s\": %.600s: "
		    "it calls a function this server does not have (flow ABI %d.%d) "
		    "or needs a library it does not link: rebuild it against "
		    "<ingenious/flow.h>, link what it needs, and check it with ldd",
		    path, text, ING_FLOW_ABI_MAJOR, ING_FLOW_ABI_MINOR);
	else
		snprintf(msg, PLUGIN_MSG_MAX, "could not load flow plugin \"%s\": %.800s",
		    path, text);
}

/* Load f from `open_name` (its path, or its /proc descriptor name), find
 * and check its descriptor.  Returns 0, or -1 with `msg` set. */
static int
plugin_load_from(struct plugin_file *f, const char *open_name, char *msg)
{
	const struct ing_flow_module *m;

	dlerror();
	if ((f->handle = dlopen(open_name, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		plugin_dlerror(f->path, open_name, msg);
		return -1;
	}
	dlerror();
	m = dlsym(f->handle, ING_FLOW_MODULE_SYMBOL);
	if (m == NULL)
		return plugin_refuse(msg, "flow plugin \"%s\" has no %s: "
		    "declare the flows with ING_FLOW_MODULE(...) of <ingenious/flow.h>",
		    f->path, ING_FLOW_MODULE_SYMBOL);
	return plugin_check(f->path, m, f, msg);
}

/* The name that dlopen finds f's open descriptor under (Linux /proc), or
 * its path when it has no descriptor. */
static const char *
plugin_open_name(const struct plugin_file *f, char *buf, size_t n)
{
	if (f->fd < 0)
		return f->path;
	snprintf(buf, n, "/proc/self/fd/%d", f->fd);
	return buf;
}

/* Load and check f in this process, through its descriptor when
 * `use_fd`; sets f->error on refusal. */
static void
plugin_load_file(struct plugin_file *f, bool use_fd)
{
	char msg[PLUGIN_MSG_MAX], fdname[PLUGIN_FD_PATH_MAX];

	if (f->error != NULL)
		return;
	if (plugin_load_from(f, use_fd ? plugin_open_name(f, fdname,
	    sizeof(fdname)) : f->path, msg) != 0)
		f->error = xstrdup(msg);
}

void
plugin_load_all(struct plugin_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		plugin_load_file(&set->files[i], false);
}

int
plugin_bind(struct plugin_file *f, struct err *e)
{
	struct plugin_file now;
	char msg[PLUGIN_MSG_MAX], fdname[PLUGIN_FD_PATH_MAX];
	size_t i, j;
	int rc = 0;

	memset(&now, 0, sizeof(now));
	now.path = f->path;
	now.fd = f->fd;
	if (plugin_load_from(&now, plugin_open_name(f, fdname, sizeof(fdname)),
	    msg) != 0) {
		if (strlen(msg) >= ERR_MSG_MAX - 1)     /* too long for e: whole here */
			log_error("loading flows", "%s", msg);
		rc = err_set(e, 500, "%s", msg);
		goto out;
	}
	for (i = 0; i < f->n_flows; i++) {
		for (j = 0; j < now.n_flows; j++)
			if (strcmp(now.flows[j].name, f->flows[i].name) == 0)
				break;
		if (j == now.n_flows) {
			rc = err_set(e, 500, "flow plugin \"%s\" changed after it was "
			    "checked: flow \"%s\" is gone (replace a plugin with mv or "
			    "install, never by writing into it; then send SIGHUP)",
			    f->path, f->flows[i].name);
			goto out;
		}
		f->flows[i].run = now.flows[j].run;
	}
	f->handle = now.handle;
	/* the mapping outlives the descriptor, which this process needs no more */
	close(f->fd);
	f->fd = -1;
out:
	plugin_file_forget(&now);
	return rc;
}

/* ---- the loader child ---------------------------------------------------- */

static void
plugin_write_all(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	ssize_t w;

	while (off < n) {
		w = write(fd, s + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(1);
		off += (size_t)w;
	}
}

static void
plugin_child_send(int fd, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	plugin_write_all(fd, s);
	plugin_write_all(fd, "\n");
	free(s);
	cJSON_Delete(o);
}

/* The child: load files from `first` on, one report line each, preceded
 * by a "begin" line so that the parent knows which one killed it. */
static void ING_NORETURN
plugin_child(struct plugin_set *set, size_t first, int out)
{
	sigset_t none;
	size_t i, j;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	for (i = first; i < set->n; i++) {
		struct plugin_file *f = &set->files[i];
		cJSON *o, *flows;

		if (f->error != NULL)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "begin", (double)i);
		plugin_child_send(out, o);
		plugin_load_file(f, true);
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "file", (double)i);
		if (f->error != NULL) {
			cJSON_AddStringToObject(o, "error", f->error);
			plugin_child_send(out, o);
			continue;
		}
		cJSON_AddStringToObject(o, "module", f->module);
		cJSON_AddStringToObject(o, "version", f->version);
		cJSON_AddNumberToObject(o, "abi_major", f->abi_major);
		cJSON_AddNumberToObject(o, "abi_minor", f->abi_minor);
		flows = cJSON_AddArrayToObject(o, "flows");
		for (j = 0; j < f->n_flows; j++) {
			cJSON *fl = cJSON_CreateObject();

			cJSON_AddStringToObject(fl, "name", f->flows[j].name);
			cJSON_AddStringToObject(fl, "description", f->flows[j].description);
			cJSON_AddStringToObject(fl, "category", f->flows[j].category);
			cJSON_AddStringToObject(fl, "requires", f->flows[j].requires);
			cJSON_AddItemToArray(flows, fl);
		}
		plugin_child_send(out, o);
	}
	_exit(0);
}

static const char *
plugin_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* One report line of the child into the set; returns the index of the
 * file it begins, or -1. */
static long
plugin_take_line(struct plugin_set *set, const char *line, bool *done)
{
	cJSON *o = cJSON_Parse(line), *v, *fl;
	struct plugin_file *f;
	long begin = -1;
	size_t i;

	if (o == NULL)
		return -1;
	v = cJSON_GetObjectItemCaseSensitive(o, "begin");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)set->n)
		begin = (long)v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(o, "file");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)set->n) {
		f = &set->files[(size_t)v->valuedouble];
		done[(size_t)v->valuedouble] = true;
		plugin_file_forget(f);
		if (cJSON_GetObjectItemCaseSensitive(o, "error") != NULL) {
			f->error = xstrdup(plugin_json_str(o, "error"));
		} else {
			f->module = xstrdup(plugin_json_str(o, "module"));
			f->version = xstrdup(plugin_json_str(o, "version"));
			f->abi_major = (unsigned)cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(o, "abi_major"));
			f->abi_minor = (unsigned)cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(o, "abi_minor"));
			fl = cJSON_GetObjectItemCaseSensitive(o, "flows");
			f->n_flows = (size_t)cJSON_GetArraySize(fl);
			f->flows = xcalloc(f->n_flows ? f->n_flows : 1, sizeof(*f->flows));
			for (i = 0; i < f->n_flows; i++) {
				const cJSON *x = cJSON_GetArrayItem(fl, (int)i);

				f->flows[i].name = xstrdup(plugin_json_str(x, "name"));
				f->flows[i].description = xstrdup(plugin_json_str(x, "description"));
				f->flows[i].category = xstrdup(plugin_json_str(x, "category"));
				f->flows[i].requires = xstrdup(plugin_json_str(x, "requires"));
			}
		}
	}
	cJSON_Delete(o);
	return begin;
}

/* Run one loader child from file `first`; returns the index of the file it
 * was loading when it died or ran out of time (its error set), or -1 when
 * it finished.  *failed: the child could not be started. */
static long
plugin_validate_from(struct plugin_set *set, size_t first, bool *done,
    struct err *e, bool *failed)
{
	char *buf = NULL, *line, *nl;
	size_t len = 0, cap = 0;
	int fds[2], status = 0;
	long begun = -1, b;
	bool timed_out = false;
	int64_t deadline = clock_now_ms() + PLUGIN_VALIDATE_TIMEOUT_MS;
	pid_t pid;

	*failed = false;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		*failed = true;
		err_set(e, 500, "could not check the flow plugins: pipe: %s",
		    strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		*failed = true;
		close(fds[0]);
		close(fds[1]);
		err_set(e, 500, "could not check the flow plugins: fork: %s",
		    strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		plugin_child(set, first, fds[1]);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int64_t left = deadline - clock_now_ms();
		ssize_t r;

		if (left <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			kill(pid, SIGKILL);
			break;
		}
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		r = read(fds[0], buf + len, cap - len - 1);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (buf != NULL) {
		buf[len] = '\0';
		for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
			*nl = '\0';
			if ((b = plugin_take_line(set, line, done)) >= 0)
				begun = b;
		}
	}
	free(buf);
	if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return -1;
	if (begun < 0 || done[begun]) {
		size_t i;

		/* it died between two files: blame the first one left */
		for (i = first; i < set->n; i++)
			if (!done[i] && set->files[i].error == NULL)
				break;
		if (i == set->n)
			return -1;
		begun = (long)i;
	}
	done[begun] = true;
	plugin_file_forget(&set->files[begun]);
	if (timed_out)
		set->files[begun].error = xasprintf("flow plugin \"%s\" did not finish "
		    "loading in %d s: a constructor in it (or in a library it needs) "
		    "blocks; a plugin must not wait for anything while it loads",
		    set->files[begun].path, PLUGIN_VALIDATE_TIMEOUT_MS / 1000);
	else if (WIFSIGNALED(status))
		set->files[begun].error = xasprintf("flow plugin \"%s\" crashed the "
		    "loader (signal %d, %s) while it was loaded: a constructor in it "
		    "(or in a library it needs) fails; debug it with "
		    "`ingen flow test`", set->files[begun].path, WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		set->files[begun].error = xasprintf("flow plugin \"%s\" ended the "
		    "loader (exit code %d) while it was loaded: a plugin must not call "
		    "exit()", set->files[begun].path,
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return begun;
}

int
plugin_validate(struct plugin_set *set, struct err *e)
{
	bool *done, failed;
	size_t first = 0;
	long stopped;

	if (set->n == 0)
		return 0;
	done = xcalloc(set->n, sizeof(*done));
	while (first < set->n) {
		stopped = plugin_validate_from(set, first, done, e, &failed);
		if (failed) {
			free(done);
			return -1;
		}
		if (stopped < 0)
			break;
		first = (size_t)stopped + 1;
	}
	free(done);
	return 0;
}

void
plugin_set_free(struct plugin_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		struct plugin_file *f = &set->files[i];

		plugin_file_forget(f);
		if (f->fd >= 0)
			close(f->fd);
		free(f->path);
		free(f->error);
	}
	free(set->files);
	memset(set, 0, sizeof(*set));
}
