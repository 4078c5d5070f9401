# cli/local.mk -- the `ingen` program: the command line (cli/), the
# supervisor (master/), and through worker/local.mk and flows/local.mk the
# worker side; included by Makefile.am before them.
bin_PROGRAMS += ingen
ingen_SOURCES = \
	cli/main.c cli/cli.h cli/cli_config.c \
	cli/cli_db.c cli/cli_user.c
ingen_LDADD = $(INGEN_LIBS)
