# flows/local.mk -- the flow API, the context, the registry and the built-in
# flows (one file each under flows/builtin/), included by Makefile.am.
ingen_SOURCES += \
	flows/flow.h flows/ctx.c flows/ctx.h \
	flows/registry.c flows/registry.h \
	flows/catalog.c flows/catalog.h \
	flows/builtin/builtin.h flows/builtin/classification_agent.c
pkginclude_HEADERS += flows/flow.h
