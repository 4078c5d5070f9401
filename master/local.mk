# master/local.mk -- the `ingen` program (master, command line), included by Makefile.am.
bin_PROGRAMS += ingen
ingen_SOURCES = \
	master/main.c master/cli.h master/cli_config.c \
	master/master.c master/master.h \
	master/listen.c master/listen.h \
	master/notify.c master/notify.h
# the worker side of the same program (proc_worker_main and everything under it)
ingen_SOURCES += \
	worker/worker.c worker/worker.h \
	worker/conn.c worker/conn.h worker/exchange.h \
	worker/pool.c worker/pool.h \
	worker/routes.c worker/routes.h \
	worker/routes_ops.c \
	worker/routes_chat.c \
	worker/routes_history.c
# the flows and their context (flows/flow.h is the public API)
ingen_SOURCES += \
	flows/flow.h flows/ctx.c flows/ctx.h \
	flows/registry.c flows/registry.h flows/builtin.h \
	flows/classification_agent.c
pkginclude_HEADERS += flows/flow.h
ingen_LDADD = $(INGEN_LIBS)
# ingen db: migrations and the local cluster
ingen_SOURCES += master/cli_db.c
# authentication in the server: the gate and the auth routes (issue 5), ingen user
ingen_SOURCES += worker/auth.c worker/auth.h worker/routes_auth.c \
	master/cli_user.c
