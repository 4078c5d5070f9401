# master/local.mk -- the `ingen` program (master, command line), included by Makefile.am.
bin_PROGRAMS += ingen
ingen_SOURCES = \
	master/main.c
ingen_LDADD = $(INGEN_LIBS)
