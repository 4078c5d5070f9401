# flows/local.mk -- the flow API, the context, the registry, the plugin
# loader and the built-in flows (one file each under flows/builtin/),
# included by Makefile.am.
ingen_SOURCES += \
	flows/flow.h flows/ctx.c flows/ctx.h \
	flows/registry.c flows/registry.h \
	flows/catalog.c flows/catalog.h \
	flows/plugin.c flows/plugin.h \
	flows/declarative.c flows/declarative.h \
	flows/prompt.c flows/prompt.h \
	flows/llmcall.c flows/llmcall.h \
	flows/builtin/builtin.h flows/builtin/classification_agent.c \
	flows/builtin/bike_insights.c flows/builtin/knowledge_base_agent.c \
	flows/builtin/sql_manipulation_agent.c flows/builtin/memory.c \
	flows/kbsearch.c flows/sqlquery.c
pkginclude_HEADERS += flows/flow.h

# `ingen` exports the functions of flow.h (and only those) to the plugins it
# dlopens, which link against nothing (flows/flow.dynlist)
ingen_LDFLAGS = $(AM_LDFLAGS) -Wl,--dynamic-list=$(srcdir)/flows/flow.dynlist
EXTRA_ingen_DEPENDENCIES = $(srcdir)/flows/flow.dynlist
EXTRA_DIST += flows/flow.dynlist flows/ingenious.pc.in docs/flows.md

# pkg-config for plugin authors: ingenious.pc installed, and in the build
# tree ingenious-uninstalled.pc with include/ingenious/flow.h, so that
# PKG_CONFIG_PATH=<builddir> pkg-config --cflags ingenious works uninstalled
FLOW_ABI = `sed -n 's/^\#define ING_FLOW_ABI_MAJOR //p' $(srcdir)/flows/flow.h`.`sed -n 's/^\#define ING_FLOW_ABI_MINOR //p' $(srcdir)/flows/flow.h`
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = ingenious.pc
noinst_DATA = ingenious-uninstalled.pc include/ingenious/flow.h
CLEANFILES += ingenious.pc ingenious-uninstalled.pc include/ingenious/flow.h

ingenious.pc: $(srcdir)/flows/ingenious.pc.in $(srcdir)/flows/flow.h Makefile
	$(AM_V_GEN)sed -e 's|@prefix[@]|$(prefix)|g' -e 's|@includedir[@]|$(includedir)|g' \
	    -e "s|@flow_abi[@]|$(FLOW_ABI)|g" -e 's|@VERSION[@]|$(VERSION)|g' \
	    $(srcdir)/flows/ingenious.pc.in >$@
ingenious-uninstalled.pc: $(srcdir)/flows/ingenious.pc.in $(srcdir)/flows/flow.h Makefile
	$(AM_V_GEN)sed -e 's|@prefix[@]|$(abs_builddir)|g' \
	    -e 's|@includedir[@]|$(abs_builddir)/include|g' \
	    -e "s|@flow_abi[@]|$(FLOW_ABI)|g" -e 's|@VERSION[@]|$(VERSION)|g' \
	    $(srcdir)/flows/ingenious.pc.in >$@
include/ingenious/flow.h: $(srcdir)/flows/flow.h
	$(AM_V_GEN)$(MKDIR_P) include/ingenious && cp $(srcdir)/flows/flow.h $@
