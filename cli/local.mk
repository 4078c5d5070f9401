# cli/local.mk -- the `ingen` program: the command line (cli/), the
# supervisor (master/), and through worker/local.mk and flows/local.mk the
# worker side; included by Makefile.am before them.
bin_PROGRAMS += ingen
ingen_SOURCES = \
	cli/main.c cli/cli.h cli/cli_config.c \
	cli/cli_db.c cli/cli_user.c cli/cli_kb.c \
	cli/cli_workflows.c cli/cli_flow.c \
	cli/cli_init.c cli/cli_ops.c cli/scaffold.h
ingen_LDADD = $(INGEN_LIBS)

# the files of `ingen init`, relative to cli/scaffold/, compiled into the
# binary by build-aux/embed.sh (a folder's files come after it)
SCAFFOLD_FILES = \
	ingenious.conf \
	.env.example \
	.gitignore \
	ingenious_extensions/flows/task_manager/task_manager.c \
	ingenious_extensions/flows/task_manager/Makefile \
	ingenious_extensions/flows/task_manager/tests/replies.json \
	ingenious_extensions/flows/task_manager/tests/expected.txt \
	ingenious_extensions/flows/task_manager_decl.flow \
	test_task_manager.json \
	templates/prompts/quickstart-1/customer_sentiment_agent_prompt.jinja \
	templates/prompts/quickstart-1/fiscal_analysis_agent_prompt.jinja \
	templates/prompts/quickstart-1/summary_prompt.jinja \
	templates/prompts/quickstart-1/bike_lookup_agent_prompt.jinja \
	templates/prompts/quickstart-1/user_proxy_prompt.jinja \
	sample_data/bike_sales_april_2023.json \
	README.md
SCAFFOLD_SRCS = $(addprefix cli/scaffold/,$(SCAFFOLD_FILES))
EXTRA_DIST += $(SCAFFOLD_SRCS)
nodist_ingen_SOURCES = cli/scaffold_files.c
CLEANFILES += cli/scaffold_files.c
cli/scaffold_files.c: $(addprefix $(srcdir)/,$(SCAFFOLD_SRCS)) $(srcdir)/build-aux/embed.sh
	@$(MKDIR_P) cli
	$(AM_V_GEN)$(SHELL) $(srcdir)/build-aux/embed.sh cli/scaffold.h \
	    scaffold_file scaffold $(srcdir)/cli/scaffold \
	    $(SCAFFOLD_FILES) > $@.tmp && mv $@.tmp $@
