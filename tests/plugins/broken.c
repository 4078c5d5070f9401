/*
 * broken.c -- test plugins the loader must refuse
 * (tests/e2e/test_plugins.py), one per macro given to the compiler:
 *   -DABI_MAJOR=n -DABI_MINOR=n   a descriptor of another ABI
 *   -DBAD_MAGIC                   a descriptor with a wrong magic number
 *   -DBAD_SIGNATURE               a descriptor of another build (4-byte pointers)
 *   -DNO_DESCRIPTOR               no ing_flow_module at all
 *   -DNO_RUN                      a flow without a run function
 *   -DBAD_NAME                    a flow name not in normal form
 *   -DUNDEFINED                   calls a function the server does not have
 *   -DCRASH_ON_LOAD               a constructor that crashes whoever loads it
 *   -DFAIL_IN_WORKER              passes the loader child's check, then makes
 *                                 its descriptor say ABI 1.0 in a worker (a
 *                                 file that changed between check and load)
 * Without a macro it is a valid plugin with the flow "broken_ok".
 */
#include <stddef.h>

#include <ingenious/flow.h>

#ifdef UNDEFINED
void ing_no_such_function(void);
#endif

static int
broken_run(struct ing_ctx *ctx, const struct ing_chat_request *req,
    struct ing_chat_reply *reply)
{
#ifdef UNDEFINED
	ing_no_such_function();
#endif
	reply->agent_response = "broken but loaded";
	return 0;
}

static const struct ing_flow broken_flow = {
#ifdef BAD_NAME
	.name = "Broken-Flow",
#else
	.name = "broken_ok",
#endif
#ifndef NO_RUN
	.run = broken_run,
#endif
};

static const struct ing_flow *const broken_flows[] = { &broken_flow, NULL };

/* another major is "n.0" (the messages name it so); the same major keeps
 * the header's minor unless ABI_MINOR says otherwise */
#ifndef ABI_MINOR
#ifdef ABI_MAJOR
#define ABI_MINOR 0
#else
#define ABI_MINOR ING_FLOW_ABI_MINOR
#endif
#endif
#ifndef ABI_MAJOR
#define ABI_MAJOR ING_FLOW_ABI_MAJOR
#endif
#ifdef BAD_MAGIC
#define MAGIC 0x12345678u
#else
#define MAGIC ING_FLOW_MAGIC
#endif

#ifdef FAIL_IN_WORKER
#include <signal.h>
#define DESCRIPTOR_CONST                /* written by the constructor below */
#else
#define DESCRIPTOR_CONST const
#endif

#ifndef NO_DESCRIPTOR
ING_FLOW_EXPORT DESCRIPTOR_CONST struct ing_flow_module ing_flow_module = {
	MAGIC, ABI_MAJOR, ABI_MINOR,
#ifdef BAD_SIGNATURE
	{ 4, 4, 4, 4, 8, ING_FLOW_LITTLE_ENDIAN, { 0, 0 } },
#else
	ING_BUILD_SIGNATURE,
#endif
	"broken", "0.0", broken_flows, { 0, 0, 0, 0 }
};
#else
const char *broken_not_a_descriptor = "nothing to see";
#endif

#ifdef CRASH_ON_LOAD
static int *volatile broken_nowhere;

__attribute__((constructor)) static void
broken_crash(void)
{
	*broken_nowhere = 1;
}
#endif

#ifdef FAIL_IN_WORKER
/* The loader child runs with every signal unblocked; a worker has blocked
 * SIGTERM (it reads signals from a signalfd) before it loads its plugins. */
__attribute__((constructor)) static void
broken_in_worker(void)
{
	sigset_t cur;

	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (sigismember(&cur, SIGTERM)) {
		ing_flow_module.abi_major = 1;
		ing_flow_module.abi_minor = 0;
	}
}
#endif
