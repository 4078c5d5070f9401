/*
 * test_plugin.c -- the pure parts of the plugin loader and the registry
 * (flows/plugin.c, flows/registry.c): the checks of a descriptor and their
 * messages, the flow-name rules, the search of a flow path, and a registry
 * with the built-in flows disabled.  Descriptors are built in memory.  With
 * a C compiler at hand it also compiles tests/plugins/echo.c and builds
 * registries from it the three ways the server and `ingen` do (checked in a
 * child, bound in a "worker", loaded in-process); this program exports the
 * flow API as `ingen` does (tests/local.mk).  The server's side is
 * tests/e2e/test_plugins.py.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flows/plugin.h"
#include "flows/registry.h"
#include "lib/config.h"
#include "tests/unit/tap.h"

static int
t_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
	reply->agent_response = "ok";
	return 0;
}

static const struct ing_flow t_good = { .name = "good_flow", .run = t_run };
static const struct ing_flow t_other = { .name = "other", .description = "d",
	.category = "Cat", .requires = "r", .run = t_run };
static const struct ing_flow t_norun = { .name = "no_run" };
static const struct ing_flow t_upper = { .name = "Good-Flow", .run = t_run };
static const struct ing_flow t_space = { .name = "a b", .run = t_run };
static const struct ing_flow t_noname = { .run = t_run };

static const struct ing_flow *const t_flows_good[] = { &t_good, &t_other, NULL };
static const struct ing_flow *const t_flows_twice[] = { &t_good, &t_good, NULL };
static const struct ing_flow *const t_flows_none[] = { NULL };

/* A valid descriptor with `flows`. */
static struct ing_flow_module
t_module(const struct ing_flow *const *flows)
{
	struct ing_flow_module m = {
		ING_FLOW_MAGIC, ING_FLOW_ABI_MAJOR, ING_FLOW_ABI_MINOR,
		ING_BUILD_SIGNATURE, "t_mod", "9.9", flows, { 0, 0, 0, 0 }
	};

	return m;
}

/* Does checking `m` fail with a message holding `words`? */
static int
t_refused(const struct ing_flow_module *m, const char *words)
{
	struct plugin_file f;
	char msg[PLUGIN_MSG_MAX];
	int rc;

	memset(&f, 0, sizeof(f));
	msg[0] = '\0';
	rc = plugin_check("/x/t.so", m, &f, msg);
	if (rc == 0 || strstr(msg, words) == NULL || strstr(msg, "\"/x/t.so\"") == NULL) {
		printf("# message: %s\n", msg);
		return 0;
	}
	return f.n_flows == 0 && f.flows == NULL;
}

static void
test_check(void)
{
	struct ing_flow_module m = t_module(t_flows_good);
	struct plugin_file f;
	char msg[PLUGIN_MSG_MAX];
	static const struct ing_flow *const one_bad[] = { &t_good, &t_norun, NULL };

	memset(&f, 0, sizeof(f));
	ok(plugin_check("/x/t.so", &m, &f, msg) == 0, "a valid descriptor is accepted");
	is_int(f.n_flows, 2, "with its two flows");
	is_str(f.module, "t_mod", "its module name");
	is_str(f.version, "9.9", "its version");
	is_str(f.flows[0].category, "Custom", "a flow without a category is Custom");
	is_str(f.flows[0].requires, "a chat model", "and requires a chat model");
	is_str(f.flows[1].category, "Cat", "a flow's own category is kept");
	ok(f.flows[0].run == t_run, "the run function is bound");
	m.name = NULL;
	ok(plugin_check("/x/t.so", &m, &f, msg) == 0 && strcmp(f.module, "t") == 0,
	    "a module without a name is named after its file");
	free(f.module);
	free(f.version);
	free(f.flows[0].name); free(f.flows[0].description);
	free(f.flows[0].category); free(f.flows[0].requires);
	free(f.flows[1].name); free(f.flows[1].description);
	free(f.flows[1].category); free(f.flows[1].requires);
	free(f.flows);

	m = t_module(t_flows_good);
	m.magic = 0xdeadbeef;
	ok(t_refused(&m, "bad magic number in ing_flow_module (0xdeadbeef, expected 0x464c4f57)"),
	    "a wrong magic is refused");
	m = t_module(t_flows_good);
	m.abi_major = 1;
	m.abi_minor = 0;
	ok(t_refused(&m, "was built for flow ABI 1.0, this server has 2.2: rebuild it "
	    "against <ingenious/flow.h> ABI 2.x: make clean && make"),
	    "another ABI major is refused, with the fix");
	m = t_module(t_flows_good);
	m.abi_major = 3;
	m.abi_minor = 0;
	ok(t_refused(&m, "was built for flow ABI 3.0, this server has 2.2"),
	    "a newer ABI major is refused");
	m = t_module(t_flows_good);
	m.abi_minor = ING_FLOW_ABI_MINOR + 1;
	ok(t_refused(&m, "newer than this server's 2.2"), "a newer minor is refused");
	m = t_module(t_flows_good);
	m.signature.pointer_size = 4;
	ok(t_refused(&m, "is not binary compatible with this server: it was built with "
	    "pointer 4"), "another build signature is refused");
	m = t_module(t_flows_good);
	m.signature.little_endian = !m.signature.little_endian;
	ok(t_refused(&m, "-endian"), "another byte order is refused");
	m = t_module(NULL);
	ok(t_refused(&m, "declares no flows"), "a descriptor without flows is refused");
	m = t_module(t_flows_none);
	ok(t_refused(&m, "declares no flows"), "an empty list of flows is refused");
	m = t_module(t_flows_twice);
	ok(t_refused(&m, "declares flow \"good_flow\" twice"), "a flow twice in a file is refused");
	m = t_module(one_bad);
	ok(t_refused(&m, "flow \"no_run\" has no run function"),
	    "a flow without a run function is refused, and the file's good flows with it");
	{
		static const struct ing_flow *const l[] = { &t_upper, NULL };
		m = t_module(l);
		ok(t_refused(&m, "flow name \"Good-Flow\" is not in normal form: name it \"good_flow\""),
		    "a name not in normal form is refused with its normal form");
	}
	{
		static const struct ing_flow *const l[] = { &t_space, NULL };
		m = t_module(l);
		ok(t_refused(&m, "a flow name has 1 to 127 characters a-z, 0-9 and '_'"),
		    "a name with other characters is refused");
	}
	{
		static const struct ing_flow *const l[] = { &t_good, &t_noname, NULL };
		m = t_module(l);
		ok(t_refused(&m, "flow #2 has no name"), "a flow without a name is refused by number");
	}
}

static void
test_names(void)
{
	char n[REGISTRY_NAME_MAX], longname[200];

	ok(plugin_name_ok("task_manager") && plugin_name_ok("a1"), "normal names pass");
	ok(!plugin_name_ok("") && !plugin_name_ok("Task") && !plugin_name_ok("a-b") &&
	    !plugin_name_ok("a/b") && !plugin_name_ok("a.so"), "others do not");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ok(!plugin_name_ok(longname), "a name of 199 characters does not");
	longname[128] = '\0';
	ok(!plugin_name_ok(longname), "nor one of 128");
	longname[127] = '\0';
	ok(plugin_name_ok(longname), "one of 127 does");
	is_str(registry_normalize("Classification-Agent", n, sizeof(n)),
	    "classification_agent", "names normalize: lower case, '_' for '-'");
}

static void
t_touch(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f != NULL)
		fclose(f);
}

static void
test_scan(void)
{
	char dir[] = "/tmp/ingen-test-plugin-XXXXXX", p[512], path[1200];
	struct plugin_set set;

	if (mkdtemp(dir) == NULL) {
		ok(0, "a temporary folder");
		return;
	}
	snprintf(p, sizeof(p), "%s/b.so", dir); t_touch(p);
	snprintf(p, sizeof(p), "%s/a.so", dir); t_touch(p);
	snprintf(p, sizeof(p), "%s/.hidden.so", dir); t_touch(p);
	snprintf(p, sizeof(p), "%s/notes.txt", dir); t_touch(p);
	snprintf(p, sizeof(p), "%s/tm", dir); mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/tm/tm.so", dir); t_touch(p);
	snprintf(p, sizeof(p), "%s/empty", dir); mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/empty/other.so", dir); t_touch(p);

	snprintf(path, sizeof(path), ":%s/missing:%s/:", dir, dir);
	plugin_scan(path, &set);
	is_int(set.n, 3, "the scan finds <name>.so and <name>/<name>.so, nothing else");
	if (set.n == 3) {
		snprintf(p, sizeof(p), "%s/a.so", dir);
		is_str(set.files[0].path, p, "sorted by name");
		snprintf(p, sizeof(p), "%s/tm/tm.so", dir);
		is_str(set.files[2].path, p, "a folder's <name>/<name>.so");
		ok(set.files[0].fd >= 0 && set.files[0].error == NULL, "each file is opened");
	}
	plugin_set_free(&set);

	snprintf(p, sizeof(p), "%s/a.so", dir); unlink(p);
	snprintf(p, sizeof(p), "%s/b.so", dir); unlink(p);
	snprintf(p, sizeof(p), "%s/.hidden.so", dir); unlink(p);
	snprintf(p, sizeof(p), "%s/notes.txt", dir); unlink(p);
	snprintf(p, sizeof(p), "%s/tm/tm.so", dir); unlink(p);
	snprintf(p, sizeof(p), "%s/tm", dir); rmdir(p);
	snprintf(p, sizeof(p), "%s/empty/other.so", dir); unlink(p);
	snprintf(p, sizeof(p), "%s/empty", dir); rmdir(p);
	rmdir(dir);
}

static void
test_registry(void)
{
	struct config cfg;
	struct registry *reg;
	const struct registry_info *in;
	struct err e;
	char flow_path[] = "/nonexistent-ingen-flow-path";

	memset(&cfg, 0, sizeof(cfg));
	cfg.server.flow_path = flow_path;
	cfg.chat_service.enable_builtin_workflows = true;
	err_clear(&e);
	reg = registry_build(&cfg, &e);
	ok(reg != NULL, "a registry of the built-in flows builds");
	if (reg == NULL)
		return;
	ok(registry_find(reg, "Classification-Agent") != NULL, "the built-in flow is found");
	ok(!registry_is_disabled_builtin(reg, "classification_agent"), "and is not disabled");
	in = registry_info_find(reg, "classification_agent");
	ok(in != NULL && in->origin == REGISTRY_ORIGIN_BUILTIN && in->file == NULL &&
	    strcmp(in->category, "Core") == 0, "its listing facts say built-in, Core");
	is_int(registry_last_report()->n_problems, 0, "no problem reported");
	registry_free(reg);

	cfg.chat_service.enable_builtin_workflows = false;
	reg = registry_build(&cfg, &e);
	ok(reg != NULL, "a registry with the built-in flows disabled builds");
	if (reg == NULL)
		return;
	ok(registry_find(reg, "classification_agent") == NULL, "the disabled flow is not found");
	ok(registry_is_disabled_builtin(reg, "Classification-Agent"), "it is a disabled built-in");
	ok(!registry_is_disabled_builtin(reg, "nope"), "an unknown name is not");
	is_int(registry_count(reg), 0, "no flow answers");
	is_int(registry_info_count(reg), 4, "the disabled ones are still listed");
	ok(registry_info_at(reg, 0)->disabled && registry_info_at(reg, 1)->disabled &&
	    registry_info_at(reg, 2)->disabled && registry_info_at(reg, 3)->disabled,
	    "as disabled");
	ok(registry_info_at(reg, 4) == NULL && registry_at(reg, 0) == NULL,
	    "past the end is NULL");
	registry_free(reg);
}

/* The facts of the plugin flow "echo" of tests/plugins/echo.c. */
static int
t_echo_facts(const struct registry *reg, const char *file)
{
	const struct registry_info *in = registry_info_find(reg, "Echo");

	return in != NULL && in->origin == REGISTRY_ORIGIN_PLUGIN &&
	    strcmp(in->file, file) == 0 && strcmp(in->module, "echo_module") == 0 &&
	    strcmp(in->module_version, "1.2.3") == 0 &&
	    strcmp(in->category, "Test") == 0 && strcmp(in->requires, "nothing") == 0 &&
	    in->abi_major == ING_FLOW_ABI_MAJOR && !in->replaces_builtin &&
	    !in->disabled;
}

static void
test_real_plugin(void)
{
	const char *src = getenv("INGEN_SRCDIR"), *bld = getenv("INGEN_BUILDDIR");
	char dir[] = "/tmp/ingen-test-plugin-XXXXXX", cmd[2048], so[600];
	struct config cfg;
	struct registry *reg;
	struct err e;

	if (src == NULL || bld == NULL || mkdtemp(dir) == NULL) {
		printf("ok %d # SKIP no source tree (run through make check)\n", ++tap_n);
		return;
	}
	snprintf(so, sizeof(so), "%s/echo.so", dir);
	snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -o '%s' '%s/tests/plugins/echo.c' "
	    "-I'%s/include' 2>&1", so, src, bld);
	if (system(cmd) != 0) {
		printf("ok %d # SKIP no C compiler to build a plugin\n", ++tap_n);
		rmdir(dir);
		return;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.server.flow_path = dir;
	cfg.chat_service.enable_builtin_workflows = true;
	err_clear(&e);

	/* the master's way: checked in a child, nothing bound here */
	reg = registry_build(&cfg, &e);
	ok(reg != NULL, "a registry with a plugin builds (%s)", reg ? "" : e.msg);
	if (reg != NULL) {
		ok(t_echo_facts(reg, so), "its listing facts come from the loader child");
		ok(registry_find(reg, "echo") != NULL && registry_find(reg, "echo")->run == NULL,
		    "the building process binds no plugin code");
		is_int(registry_count(reg), 5, "the built-in flows and the plugin's answer");
		/* a worker's way: load its copy and bind */
		ok(registry_load_plugins(reg, &e) == 0, "a worker loads the plugins");
		ok(registry_find(reg, "echo")->run != NULL, "and binds their run functions");
		ok(registry_load_plugins(reg, &e) == 0, "loading twice is harmless");
		registry_free(reg);
	}
	/* a command's way: in-process */
	reg = registry_build_loaded(&cfg, &e);
	ok(reg != NULL && t_echo_facts(reg, so) && registry_find(reg, "echo")->run != NULL,
	    "registry_build_loaded loads and binds in-process");
	registry_free(reg);
	unlink(so);
	rmdir(dir);
}

int
main(void)
{
	test_check();
	test_names();
	test_scan();
	test_registry();
	test_real_plugin();
	return tap_done();
}
