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
	worker/routes_usage.c \
	worker/routes_docs.c worker/static.h

# the static files served (the API document, the /docs page, the web
# console), compiled in
STATIC_FILES = openapi.json=docs/openapi.json docs.html=worker/static/docs.html \
	docs.js=worker/static/docs.js docs.css=worker/static/docs.css \
	console.html=worker/static/console/index.html \
	console.js=worker/static/console/console.js \
	console.css=worker/static/console/console.css \
	favicon.svg=worker/static/console/favicon.svg
STATIC_SRCS = docs/openapi.json worker/static/docs.html worker/static/docs.js \
	worker/static/docs.css worker/static/console/index.html \
	worker/static/console/console.js worker/static/console/console.css \
	worker/static/console/favicon.svg
EXTRA_DIST += $(STATIC_SRCS) docs/api.md docs/console.md bench/console.sh
nodist_ingen_SOURCES += worker/static_files.c
CLEANFILES += worker/static_files.c
worker/static_files.c: $(addprefix $(srcdir)/,$(STATIC_SRCS)) $(srcdir)/build-aux/embed.sh
	@$(MKDIR_P) worker
	$(AM_V_GEN)$(SHELL) $(srcdir)/build-aux/embed.sh worker/static.h \
	    static_file static $(srcdir) $(STATIC_FILES) > $@.tmp && mv $@.tmp $@
