# lib/local.mk -- the shared foundations (libingen.a), included by Makefile.am.
libingen_a_SOURCES += \
	lib/err.c lib/err.h \
	lib/xmalloc.c lib/xmalloc.h \
	lib/arena.c lib/arena.h \
	lib/buf.c lib/buf.h \
	lib/log.c lib/log.h
