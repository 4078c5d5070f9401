# sql/local.mk -- the schema files, included by Makefile.am.  They are
# installed into $(pkgdatadir)/sql for DBAs and compiled into the binary
# (lib/migrate.h) by build-aux/embed.sh, so `ingen db migrate` needs no data
# directory.  A new schema file is added to SQL_FILES, never edited after
# it has been applied anywhere.
SQL_FILES = \
	sql/001_schema.sql \
	sql/002_roles.sql \
	sql/003_views.sql \
	sql/004_save_turn.sql \
	sql/005_prompts.sql \
	sql/006_one_commit_turn.sql \
	sql/007_knowledge_base.sql \
	sql/008_sql_agent.sql \
	sql/009_usage_rollup.sql \
	sql/010_prompt_usage_rollup.sql \
	sql/011_turn_cost.sql
dist_sql_DATA += $(SQL_FILES)
EXTRA_DIST += docs/dba.md
nodist_libingen_a_SOURCES = sql/embedded.c
CLEANFILES += sql/embedded.c
sql/embedded.c: $(SQL_FILES) $(srcdir)/build-aux/embed.sh
	@$(MKDIR_P) sql
	$(AM_V_GEN)$(SHELL) $(srcdir)/build-aux/embed.sh lib/migrate.h \
	    migrate_embedded migrate_embedded $(srcdir)/sql \
	    $(notdir $(SQL_FILES)) > $@.tmp && mv $@.tmp $@
