# tests/local.mk -- included by Makefile.am

# --- HTTP parser, router, hex and percent decoding, strict JSON (lib/http.c,
# lib/router.c, lib/hex.c, lib/json.c)
check_PROGRAMS += tests/unit/test_http tests/unit/test_router tests/unit/test_hex \
	tests/unit/test_json
tests_unit_test_http_SOURCES = tests/unit/test_http.c tests/unit/tap.h
tests_unit_test_http_LDADD = $(INGEN_LIBS)
tests_unit_test_router_SOURCES = tests/unit/test_router.c tests/unit/tap.h
tests_unit_test_router_LDADD = $(INGEN_LIBS)
tests_unit_test_hex_SOURCES = tests/unit/test_hex.c tests/unit/tap.h
tests_unit_test_hex_LDADD = $(INGEN_LIBS)
tests_unit_test_json_SOURCES = tests/unit/test_json.c tests/unit/tap.h
tests_unit_test_json_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_http tests/unit/test_router tests/unit/test_hex \
	tests/unit/test_json

# --- libFuzzer targets, built by `make check` only when clang exists.  They
# are compiled straight from the sources (libingen.a is gcc's), see
# tests/fuzz/README.md; tests/fuzz/run.sh runs each for 10 s.
FUZZ_TARGETS = tests/fuzz/fuzz_http$(EXEEXT) tests/fuzz/fuzz_chunked$(EXEEXT) \
	tests/fuzz/fuzz_json$(EXEEXT)
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CPPFLAGS = -I$(top_srcdir) -I$(top_builddir) $(CJSON_CFLAGS)
FUZZ_BASE_SRCS = $(srcdir)/lib/err.c $(srcdir)/lib/xmalloc.c \
	$(srcdir)/lib/arena.c $(srcdir)/lib/buf.c $(srcdir)/lib/hex.c
FUZZ_BASE_HDRS = $(srcdir)/lib/err.h $(srcdir)/lib/xmalloc.h \
	$(srcdir)/lib/arena.h $(srcdir)/lib/buf.h $(srcdir)/lib/hex.h
EXTRA_DIST += tests/fuzz/fuzz_http.c tests/fuzz/fuzz_chunked.c \
	tests/fuzz/fuzz_json.c tests/fuzz/run.sh tests/fuzz/README.md \
	tests/fuzz/corpus
CLEANFILES += $(FUZZ_TARGETS)
if HAVE_CLANG
check_SCRIPTS += $(FUZZ_TARGETS)
TESTS += tests/fuzz/run.sh

tests/fuzz/fuzz_http$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_http.c \
		$(srcdir)/lib/http.c $(srcdir)/lib/http.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_http.c $(srcdir)/lib/http.c \
	    $(FUZZ_BASE_SRCS)

tests/fuzz/fuzz_chunked$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_chunked.c \
		$(srcdir)/lib/http.c $(srcdir)/lib/http.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_chunked.c $(srcdir)/lib/http.c \
	    $(FUZZ_BASE_SRCS)

tests/fuzz/fuzz_json$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_json.c \
		$(srcdir)/lib/json.c $(srcdir)/lib/json.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_json.c $(srcdir)/lib/json.c \
	    $(FUZZ_BASE_SRCS) $(CJSON_LIBS)
endif

# --- authentication: base64, crypto, key ring, JWT, Basic (lib/b64.c lib/crypto.c lib/keys.c lib/jwt.c lib/basic.c)
check_PROGRAMS += tests/unit/test_b64 tests/unit/test_crypto tests/unit/test_keys \
	tests/unit/test_jwt tests/unit/test_basic
tests_unit_test_b64_SOURCES = tests/unit/test_b64.c tests/unit/tap.h
tests_unit_test_b64_LDADD = $(INGEN_LIBS)
tests_unit_test_crypto_SOURCES = tests/unit/test_crypto.c tests/unit/tap.h
tests_unit_test_crypto_LDADD = $(INGEN_LIBS)
tests_unit_test_keys_SOURCES = tests/unit/test_keys.c tests/unit/tap.h
tests_unit_test_keys_LDADD = $(INGEN_LIBS)
tests_unit_test_jwt_SOURCES = tests/unit/test_jwt.c tests/unit/tap.h
tests_unit_test_jwt_LDADD = $(INGEN_LIBS)
tests_unit_test_basic_SOURCES = tests/unit/test_basic.c tests/unit/tap.h
tests_unit_test_basic_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_b64 tests/unit/test_crypto tests/unit/test_keys \
	tests/unit/test_jwt tests/unit/test_basic

# fuzz targets for the JWT and Basic decoders (rules below, same pattern as fuzz_http)
FUZZ_TARGETS += tests/fuzz/fuzz_jwt$(EXEEXT) tests/fuzz/fuzz_basic$(EXEEXT)
FUZZ_AUTH_SRCS = $(srcdir)/lib/b64.c $(srcdir)/lib/crypto.c $(srcdir)/lib/keys.c \
	$(srcdir)/lib/jwt.c $(srcdir)/lib/json.c
FUZZ_AUTH_HDRS = $(srcdir)/lib/b64.h $(srcdir)/lib/crypto.h $(srcdir)/lib/keys.h \
	$(srcdir)/lib/jwt.h $(srcdir)/lib/json.h $(srcdir)/lib/config.h
EXTRA_DIST += tests/fuzz/fuzz_jwt.c tests/fuzz/fuzz_basic.c
if HAVE_CLANG
tests/fuzz/fuzz_jwt$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_jwt.c \
		$(FUZZ_AUTH_SRCS) $(FUZZ_AUTH_HDRS) \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) $(OPENSSL_CFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_jwt.c $(FUZZ_AUTH_SRCS) \
	    $(FUZZ_BASE_SRCS) $(CJSON_LIBS) $(OPENSSL_LIBS)

tests/fuzz/fuzz_basic$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_basic.c \
		$(srcdir)/lib/basic.c $(srcdir)/lib/basic.h \
		$(srcdir)/lib/b64.c $(srcdir)/lib/b64.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_basic.c $(srcdir)/lib/basic.c \
	    $(srcdir)/lib/b64.c $(FUZZ_BASE_SRCS)
endif

# --- end-to-end: the real `ingen` against real sockets (tests/e2e/lib/ingen.py
# is the harness: TAP, private temp dirs, processes stopped by pid)
TESTS += tests/e2e/test_http.py tests/e2e/test_process.py tests/e2e/test_memtune.py
EXTRA_DIST += tests/e2e/test_memtune.py
EXTRA_DIST += tests/e2e/lib/ingen.py tests/e2e/lib/chatkit.py tests/e2e/test_http.py tests/e2e/test_process.py

# --- the Azure OpenAI simulator (installed: the quick start uses it when no
# Azure credentials are set), the LLM client's probe and tests (issue 4)
check_PROGRAMS += tests/probe/llm_probe tests/unit/test_sse tests/unit/test_llm_reply \
	tests/unit/test_llm_handles
tests_probe_llm_probe_SOURCES = tests/probe/llm_probe.c
tests_probe_llm_probe_LDADD = $(INGEN_LIBS)
tests_unit_test_sse_SOURCES = tests/unit/test_sse.c tests/unit/tap.h
tests_unit_test_sse_LDADD = $(INGEN_LIBS)
tests_unit_test_llm_reply_SOURCES = tests/unit/test_llm_reply.c tests/unit/tap.h
tests_unit_test_llm_reply_LDADD = $(INGEN_LIBS)
tests_unit_test_llm_handles_SOURCES = tests/unit/test_llm_handles.c tests/unit/tap.h
tests_unit_test_llm_handles_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_sse tests/unit/test_llm_reply tests/unit/test_llm_handles \
	tests/e2e/test_simulator.py tests/e2e/test_llm_client.py
EXTRA_DIST += tests/e2e/lib/sim.py tests/e2e/test_simulator.py \
	tests/e2e/test_llm_client.py \
	tests/fuzz/fuzz_sse.c tests/fuzz/fuzz_llm_reply.c
FUZZ_TARGETS += tests/fuzz/fuzz_sse$(EXEEXT) tests/fuzz/fuzz_llm_reply$(EXEEXT)

# --- the Azure AI Search client (issue 11): its pure parts, and the real
# client through tests/probe/azs_probe against the simulator
check_PROGRAMS += tests/probe/azs_probe tests/unit/test_azsearch
tests_probe_azs_probe_SOURCES = tests/probe/azs_probe.c
tests_probe_azs_probe_LDADD = $(INGEN_LIBS)
tests_unit_test_azsearch_SOURCES = tests/unit/test_azsearch.c tests/unit/tap.h
tests_unit_test_azsearch_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_azsearch tests/e2e/test_azsearch.py
EXTRA_DIST += tests/e2e/test_azsearch.py
if HAVE_CLANG
tests/fuzz/fuzz_sse$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_sse.c \
		$(srcdir)/lib/sse.c $(srcdir)/lib/sse.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_sse.c $(srcdir)/lib/sse.c \
	    $(FUZZ_BASE_SRCS)

tests/fuzz/fuzz_llm_reply$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_llm_reply.c \
		$(srcdir)/lib/llm_reply.c $(srcdir)/lib/llm_reply.h \
		$(srcdir)/lib/llm.h $(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_llm_reply.c $(srcdir)/lib/llm_reply.c \
	    $(FUZZ_BASE_SRCS) $(CJSON_LIBS) -lm
endif

# --- prompt templates (lib/tmpl.c): the unit test and a fuzz target
check_PROGRAMS += tests/unit/test_tmpl
tests_unit_test_tmpl_SOURCES = tests/unit/test_tmpl.c tests/unit/tap.h
tests_unit_test_tmpl_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/unit/test_tmpl
EXTRA_DIST += tests/fuzz/fuzz_tmpl.c
FUZZ_TARGETS += tests/fuzz/fuzz_tmpl$(EXEEXT)
if HAVE_CLANG
tests/fuzz/fuzz_tmpl$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_tmpl.c \
		$(srcdir)/lib/tmpl.c $(srcdir)/lib/tmpl.h \
		$(srcdir)/lib/json.c $(srcdir)/lib/json.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_tmpl.c $(srcdir)/lib/tmpl.c \
	    $(srcdir)/lib/json.c $(FUZZ_BASE_SRCS) $(CJSON_LIBS)
endif

# --- configuration: the key table and its loader (lib/config.c), and the
# test that etc/ingenious.conf and etc/env.example document the table
check_PROGRAMS += tests/unit/test_config tests/unit/test_config_doc
tests_unit_test_config_SOURCES = tests/unit/test_config.c tests/unit/tap.h
tests_unit_test_config_LDADD = $(INGEN_LIBS)
tests_unit_test_config_doc_SOURCES = tests/unit/test_config_doc.c tests/unit/tap.h
tests_unit_test_config_doc_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_config tests/unit/test_config_doc

# --- PostgreSQL (lib/db.c, lib/migrate.c, lib/localpg.c, cli/cli_db.c):
# tests/probe/db_probe drives lib/db.c for the e2e tests, which run against a private
# cluster made by `ingen db init-local` (tests/e2e/lib/pgcluster.py)
check_PROGRAMS += tests/probe/db_probe
tests_probe_db_probe_SOURCES = tests/probe/db_probe.c cli/cli_db.c cli/cli_config.c cli/cli.h
tests_probe_db_probe_LDADD = $(INGEN_LIBS)
TESTS += tests/e2e/test_db_migrate.py tests/e2e/test_db_roles.py \
	tests/e2e/test_db_layer.py tests/e2e/test_db_outage.py \
	tests/e2e/test_db_local.py
EXTRA_DIST += tests/e2e/lib/pgcluster.py tests/e2e/test_db_migrate.py \
	tests/e2e/test_db_roles.py tests/e2e/test_db_layer.py \
	tests/e2e/test_db_outage.py tests/e2e/test_db_local.py

# --- authentication in the server (issue 5): the shared login throttle, and
# the end-to-end tests of Basic, JWT, users, keys, ownership and throttling
check_PROGRAMS += tests/unit/test_throttle
tests_unit_test_throttle_SOURCES = tests/unit/test_throttle.c tests/unit/tap.h
tests_unit_test_throttle_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_throttle
TESTS += tests/e2e/test_auth.py tests/e2e/test_auth_throttle.py tests/e2e/test_auth_keys.py \
	tests/e2e/test_auth_flood.py
EXTRA_DIST += tests/e2e/lib/authkit.py tests/e2e/test_auth.py \
	tests/e2e/test_auth_throttle.py tests/e2e/test_auth_keys.py \
	tests/e2e/test_auth_flood.py docs/auth.md

# --- the schema check of `ingen serve` (lead)
TESTS += tests/e2e/test_serve_schema.py
EXTRA_DIST += tests/e2e/test_serve_schema.py

# --- the foundations: arena, buf, uuid, log, pool, scoreboard (lead)
check_PROGRAMS += tests/unit/test_arena_buf tests/unit/test_uuid_log tests/unit/test_pool_sb
check_PROGRAMS += tests/unit/test_memtune
tests_unit_test_memtune_SOURCES = tests/unit/test_memtune.c tests/unit/tap.h master/memtune.c master/memtune.h
tests_unit_test_memtune_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_memtune
tests_unit_test_arena_buf_SOURCES = tests/unit/test_arena_buf.c tests/unit/tap.h
tests_unit_test_arena_buf_LDADD = $(INGEN_LIBS)
tests_unit_test_uuid_log_SOURCES = tests/unit/test_uuid_log.c tests/unit/tap.h
tests_unit_test_uuid_log_LDADD = $(INGEN_LIBS)
tests_unit_test_pool_sb_SOURCES = tests/unit/test_pool_sb.c tests/unit/tap.h worker/pool.c worker/pool.h
tests_unit_test_pool_sb_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_arena_buf tests/unit/test_uuid_log tests/unit/test_pool_sb

# --- issue 4 through the server: chat turns against the simulator's faults,
# the upstream attempts, and the messages and llm_usage rows in PostgreSQL
TESTS += tests/e2e/test_chat_llm.py
EXTRA_DIST += tests/e2e/test_chat_llm.py

# --- issue 9: a client that goes away stops its turn's upstream calls; a flow
# that never returns (tests/plugins/hang.c, built by the test) is answered at
# its deadline and its worker retires
TESTS += tests/e2e/test_disconnect.py tests/e2e/test_hung_flow.py
EXTRA_DIST += tests/e2e/test_disconnect.py tests/e2e/test_hung_flow.py \
	tests/plugins/hang.c

# --- many short streams at once never stall the event loop (a finished
# stream freed while still on the loop's list of running exchanges)
TESTS += tests/e2e/test_stream_race.py
EXTRA_DIST += tests/e2e/test_stream_race.py

# --- issue 3 through the server: history, feedback, durability, idempotent
# retries, concurrent turns, the DBA views, streaming (test_chat_db.py), and
# the database stopped under load or absent at start (test_chat_db_outage.py)
TESTS += tests/e2e/test_chat_db.py tests/e2e/test_chat_db_outage.py
EXTRA_DIST += tests/e2e/test_chat_db.py tests/e2e/test_chat_db_outage.py
# turns refused at admission while the database is saturated
TESTS += tests/e2e/test_db_admission.py
EXTRA_DIST += tests/e2e/test_db_admission.py

# --- issue 15: a turn in one commit with its usage rows, and the usage
# journal that keeps a row through a worker's crash or a database outage
TESTS += tests/e2e/test_usage_journal.py tests/unit/test_ujournal
check_PROGRAMS += tests/unit/test_ujournal
tests_unit_test_ujournal_SOURCES = tests/unit/test_ujournal.c tests/unit/tap.h
tests_unit_test_ujournal_LDADD = $(INGEN_LIBS)
EXTRA_DIST += tests/e2e/test_usage_journal.py tests/plugins/crash.c

# --- the custom-workflow guide of the Python product, step by step, in C
# (docs/flows.md): ingen init, make, SIGHUP, the guide's curls
TESTS += tests/e2e/test_seed_guide.py tests/e2e/test_flow_agents.py
EXTRA_DIST += tests/e2e/test_seed_guide.py tests/e2e/test_flow_agents.py \
	tests/plugins/agents.c

# --- which prompt produced which answer: a templated plugin flow, the usage
# row's revision and hash, an update through the prompts API (issue 10)
TESTS += tests/e2e/test_prompt_versions.py
EXTRA_DIST += tests/e2e/test_prompt_versions.py tests/plugins/templated.c

# --- flows run alone: a built-in flow against a scripted model, through the
# services of its context (flows/ctx.c), with no socket and no database
check_PROGRAMS += tests/flows/test_classification
tests_flows_test_classification_SOURCES = tests/flows/test_classification.c \
	tests/unit/tap.h flows/ctx.c flows/ctx.h flows/flow.h \
	flows/builtin/classification_agent.c flows/builtin/builtin.h
tests_flows_test_classification_LDADD = $(INGEN_LIBS)
TESTS += tests/flows/test_classification
check_PROGRAMS += tests/flows/test_bike_insights
tests_flows_test_bike_insights_SOURCES = tests/flows/test_bike_insights.c \
	tests/unit/tap.h flows/ctx.c flows/ctx.h flows/flow.h \
	flows/builtin/bike_insights.c flows/builtin/builtin.h
tests_flows_test_bike_insights_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/flows/test_bike_insights
check_PROGRAMS += tests/flows/test_knowledge_base
tests_flows_test_knowledge_base_SOURCES = tests/flows/test_knowledge_base.c \
	tests/unit/tap.h flows/ctx.c flows/ctx.h flows/flow.h flows/kbsearch.c \
	flows/builtin/knowledge_base_agent.c flows/builtin/memory.c \
	flows/builtin/builtin.h
tests_flows_test_knowledge_base_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/flows/test_knowledge_base
check_PROGRAMS += tests/flows/test_sql_query
tests_flows_test_sql_query_SOURCES = tests/flows/test_sql_query.c \
	tests/unit/tap.h flows/ctx.c flows/ctx.h flows/flow.h flows/sqlquery.c
tests_flows_test_sql_query_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/flows/test_sql_query
check_PROGRAMS += tests/flows/test_ctx
tests_flows_test_ctx_SOURCES = tests/flows/test_ctx.c tests/unit/tap.h \
	flows/ctx.c flows/ctx.h flows/flow.h
tests_flows_test_ctx_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/flows/test_ctx

# --- the include rules of docs/architecture.md (master/ never sees worker/,
# lib/ sees nothing above it, each foreign library behind one lib/ family, a
# flow sees only flows/flow.h), checked on the source tree
TESTS += tests/check-layering.sh
EXTRA_DIST += tests/check-layering.sh

# --- custom flows, the commands and routes (issue 9 section 3): ingen init,
# ingen flow test, ingen workflows, GET /api/v1/workflows and
# /api/v1/workflow-status/{name}
TESTS += tests/e2e/test_cli_flows.py
# --- the built-in bike-insights flow (issue 10 section 2) through the server
TESTS += tests/e2e/test_bike_insights.py
EXTRA_DIST += tests/e2e/test_bike_insights.py
# the knowledge-base-agent end to end: the local knowledge base, Azure AI
# Search (the simulator), both modes, the policies' fallbacks
TESTS += tests/e2e/test_kb_flow.py
EXTRA_DIST += tests/e2e/test_kb_flow.py
# the sql-manipulation-agent end to end: useful questions and every attack
# through the server, the guard on and off (the simulator writes the SQL)
TESTS += tests/e2e/test_sql_flow.py
EXTRA_DIST += tests/e2e/test_sql_flow.py
EXTRA_DIST += tests/e2e/test_cli_flows.py

# --- flows in C on the flow path (issue 9): test plugins compiled by the test
# with `cc -shared -fPIC` and the build tree's pkg-config, refused with their
# messages, loaded on SIGHUP, a crashing one, one changed under load
TESTS += tests/e2e/test_plugins.py
EXTRA_DIST += tests/e2e/test_plugins.py tests/plugins/echo.c tests/plugins/llm.c \
	tests/plugins/broken.c
check_PROGRAMS += tests/unit/test_plugin
tests_unit_test_plugin_SOURCES = tests/unit/test_plugin.c tests/unit/tap.h \
	flows/plugin.c flows/plugin.h flows/registry.c flows/registry.h \
	flows/declarative.c flows/declarative.h \
	flows/ctx.c flows/ctx.h flows/flow.h \
	flows/builtin/classification_agent.c flows/builtin/builtin.h \
	flows/builtin/bike_insights.c flows/builtin/knowledge_base_agent.c \
	flows/builtin/sql_manipulation_agent.c flows/builtin/memory.c \
	flows/kbsearch.c flows/sqlquery.c
tests_unit_test_plugin_LDADD = $(INGEN_LIBS)
tests_unit_test_plugin_LDFLAGS = $(AM_LDFLAGS) -Wl,--dynamic-list=$(srcdir)/flows/flow.dynlist
EXTRA_tests_unit_test_plugin_DEPENDENCIES = include/ingenious/flow.h
TESTS += tests/unit/test_plugin

# --- flows without code (flows/declarative.c): flow files parsed and checked
# (each load error with its file and line), and run against a scripted model
check_PROGRAMS += tests/unit/test_declarative tests/flows/test_declarative_run
tests_unit_test_declarative_SOURCES = tests/unit/test_declarative.c \
	tests/unit/tap.h flows/declarative.c flows/declarative.h flows/ctx.c \
	flows/ctx.h flows/flow.h flows/kbsearch.c flows/sqlquery.c
tests_unit_test_declarative_LDADD = $(INGEN_LIBS) -lpthread
tests_flows_test_declarative_run_SOURCES = tests/flows/test_declarative_run.c \
	tests/unit/tap.h flows/declarative.c flows/declarative.h flows/ctx.c \
	flows/ctx.h flows/flow.h flows/kbsearch.c flows/sqlquery.c
tests_flows_test_declarative_run_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/unit/test_declarative tests/flows/test_declarative_run
TESTS += tests/e2e/test_declarative.py
EXTRA_DIST += tests/e2e/test_declarative.py

# --- the prompt templates of the revisions (lib/revisions.c) and the prompts API
check_PROGRAMS += tests/unit/test_revisions
tests_unit_test_revisions_SOURCES = tests/unit/test_revisions.c tests/unit/tap.h
tests_unit_test_revisions_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_revisions tests/e2e/test_prompts.py
EXTRA_DIST += tests/e2e/test_prompts.py docs/prompts.md

# --- the local knowledge base (issue 11 parts 1 and 2): the chunker and the
# text checks (lib/kb.c), and `ingen kb` with the server's indexing of
# kb.directory at start and on SIGHUP, rows checked with psql
check_PROGRAMS += tests/unit/test_kb
tests_unit_test_kb_SOURCES = tests/unit/test_kb.c tests/unit/tap.h
tests_unit_test_kb_LDADD = $(INGEN_LIBS)
TESTS += tests/unit/test_kb tests/e2e/test_kb_cli.py
EXTRA_DIST += tests/e2e/test_kb_cli.py docs/knowledge-base.md

# --- the SQL agent (issue 12): the statement guard on PostgreSQL's grammar
# (lib/sqlguard.c) alone, its fuzz target, and the agent's execution
# (lib/db_sqlagent.c) through tests/probe/sql_probe against a private
# cluster, every attack with the guard on and off
check_PROGRAMS += tests/unit/test_sqlguard tests/probe/sql_probe
tests_unit_test_sqlguard_SOURCES = tests/unit/test_sqlguard.c tests/unit/tap.h
tests_unit_test_sqlguard_LDADD = $(INGEN_LIBS)
tests_probe_sql_probe_SOURCES = tests/probe/sql_probe.c
tests_probe_sql_probe_LDADD = $(INGEN_LIBS) -lpthread
TESTS += tests/unit/test_sqlguard tests/e2e/test_sqlagent.py
EXTRA_DIST += tests/e2e/test_sqlagent.py tests/fuzz/fuzz_sqlguard.c
FUZZ_TARGETS += tests/fuzz/fuzz_sqlguard$(EXEEXT)
if HAVE_CLANG
tests/fuzz/fuzz_sqlguard$(EXEEXT): $(srcdir)/tests/fuzz/fuzz_sqlguard.c \
		$(srcdir)/lib/sqlguard.c $(srcdir)/lib/sqlguard.h \
		$(FUZZ_BASE_SRCS) $(FUZZ_BASE_HDRS) autoconfig.h
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
	    $(srcdir)/tests/fuzz/fuzz_sqlguard.c $(srcdir)/lib/sqlguard.c \
	    $(FUZZ_BASE_SRCS) $(CJSON_LIBS) $(PG_QUERY_LIBS)
endif

# the commands of an operator: validate's prerequisite checks, status, reload, stop
TESTS += tests/e2e/test_ops_cli.py
EXTRA_DIST += tests/e2e/test_ops_cli.py

# several servers on one PostgreSQL behind nginx
TESTS += tests/e2e/test_cluster.py
EXTRA_DIST += tests/e2e/test_cluster.py

# PostgreSQL failover: a streaming standby promoted under load
TESTS += tests/e2e/test_failover.py
EXTRA_DIST += tests/e2e/test_failover.py

# usage for charts: the rollup and GET /api/v1/usage
TESTS += tests/e2e/test_usage_api.py
EXTRA_DIST += tests/e2e/test_usage_api.py

# the reference's diagnostic route
TESTS += tests/e2e/test_diagnostic.py
EXTRA_DIST += tests/e2e/test_diagnostic.py

# the API document: the route table, the responses, requests generated from it
TESTS += tests/e2e/test_openapi.py
EXTRA_DIST += tests/e2e/test_openapi.py tests/e2e/lib/oaschema.py
# the web console in headless Chromium over the DevTools protocol (issue 16)
TESTS += tests/e2e/test_console.py
EXTRA_DIST += tests/e2e/test_console.py tests/e2e/lib/cdp.py

# the install layout, the systemd units
TESTS += tests/e2e/test_install.py
EXTRA_DIST += tests/e2e/test_install.py

# the Debian package: build, lintian, install, run, purge (root only)
TESTS += tests/e2e/test_deb.py
EXTRA_DIST += tests/e2e/test_deb.py

# the console test's screenshots (tests/e2e/test_console.py)
clean-local: clean-local-artifacts
clean-local-artifacts:
	-rm -rf tests/e2e/artifacts
.PHONY: clean-local-artifacts
