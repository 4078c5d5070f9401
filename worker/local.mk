# worker/local.mk -- the worker side of `ingen` (proc_worker_main and
# everything under it: the event loop, connections, the exchange, flow
# threads, authentication and the routes), included by Makefile.am.
ingen_SOURCES += \
	worker/worker.c worker/worker.h \
	worker/conn.c worker/conn.h \
	worker/exchange.c worker/exchange.h \
	worker/pool.c worker/pool.h \
	worker/routes.c worker/routes.h \
	worker/routes_ops.c \
	worker/routes_chat.c \
	worker/turn.c worker/turn.h \
	worker/services.c worker/services.h worker/services_kb.c \
	worker/services_sql.c \
	worker/usage.c worker/usage.h \
	worker/routes_history.c \
	worker/auth.c worker/auth.h worker/routes_auth.c \
	worker/routes_flows.c \
	worker/routes_prompts.c \
	worker/routes_usage.c
