# bench/local.mk -- included by Makefile.am

# `make bench`: GET /api/v1/health against nginx serving the same JSON
EXTRA_DIST += bench/health.sh bench/README.md
bench: ingen$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) $(SHELL) $(srcdir)/bench/health.sh
.PHONY: bench

# `make bench-chat`: POST /api/v1/chat with its writes against pgbench running
# the same writes (bench/turn.sql), on the load rig of ../shared/bench
EXTRA_DIST += bench/chat.sh bench/turn.sql bench/turn-cte.sql bench/hostmon.py
bench-chat: ingen$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) bash $(srcdir)/bench/chat.sh
.PHONY: bench-chat

# `make bench-login-flood`: a login flood against one worker, its peak RSS,
# and health, token checks and chats answering meanwhile (issue 8, defect f)
EXTRA_DIST += bench/login_flood.sh
bench-login-flood: ingen$(EXEEXT) ingen-azure-sim$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) $(SHELL) $(srcdir)/bench/login_flood.sh
.PHONY: bench-login-flood

# `make bench-slow`: POST /api/v1/chat (and /chat/stream) against slow upstreams
# (0.5 s, 5 s, a 30 s stream, overload) with the default configuration, next to the
# rig's Python peer and nginx proxy (issue 17)
EXTRA_DIST += bench/slow.sh bench/slow.lua bench/inflight.py
bench-slow: ingen$(EXEEXT) ingen-azure-sim$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) bash $(srcdir)/bench/slow.sh
.PHONY: bench-slow

# `make bench-plugin`: a chat turn through a C plugin flow against the same turn
# through the built-in classification flow, alternating on one server (issue 9)
EXTRA_DIST += bench/plugin.sh bench/plugin_flow.c
bench-plugin: ingen$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) bash $(srcdir)/bench/plugin.sh
.PHONY: bench-plugin

# `make bench-kb`: the local knowledge base (issue 11): `ingen kb add` ingest
# rate and db_kb_search p50/p99 at 10k and 100k chunks, next to a bare psql
# running the same query
EXTRA_DIST += bench/kb.sh
bench-kb: ingen$(EXEEXT) tests/probe/db_probe$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) \
	    DB_PROBE=$(abs_top_builddir)/tests/probe/db_probe$(EXEEXT) bash $(srcdir)/bench/kb.sh
.PHONY: bench-kb
