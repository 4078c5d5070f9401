# lib/local.mk -- the shared foundations (libingen.a), included by Makefile.am.
libingen_a_SOURCES += \
	lib/err.c lib/err.h \
	lib/clock.c lib/clock.h \
	lib/xmalloc.c lib/xmalloc.h \
	lib/arena.c lib/arena.h \
	lib/buf.c lib/buf.h \
	lib/log.c lib/log.h \
	lib/uuid.c lib/uuid.h \
	lib/scoreboard.c lib/scoreboard.h \
	lib/proc.h

# HTTP/1.1 wire format (request parser, response writer) and the router,
# used by the worker and by the simulator
libingen_a_SOURCES += lib/http.c lib/http.h lib/router.c lib/router.h

# hex digits and strings, the percent-escape (the one decoder of each)
libingen_a_SOURCES += lib/hex.c lib/hex.h

# strict JSON input and cJSON helpers
libingen_a_SOURCES += lib/json.c lib/json.h

# the Azure REST clients, the only users of libcurl: the language model
# (lib/llm.c, the parts it shares in lib/llm_parts.h, its pure parsers) and
# Azure AI Search (lib/azsearch.c)
libingen_a_SOURCES += \
	lib/llm.c lib/llm.h lib/llm_parts.h \
	lib/azsearch.c lib/azsearch.h \
	lib/llm_reply.c lib/llm_reply.h \
	lib/sse.c lib/sse.h

# authentication: strict base64, OpenSSL primitives and password hashes, the JWT key ring, JWT, Basic
libingen_a_SOURCES += \
	lib/b64.c lib/b64.h \
	lib/crypto.c lib/crypto.h \
	lib/keys.c lib/keys.h \
	lib/jwt.c lib/jwt.h \
	lib/basic.c lib/basic.h

# the configuration: the one key table (config_keys.c), the loader
# (config.c), the environment and .env (config_env.c), the libconfig file
# (config_file.c), and files of its syntax read into a tree for the flow
# files (config_tree.c); the only users of libconfig
libingen_a_SOURCES += \
	lib/config.h lib/config_int.h \
	lib/config_keys.c lib/config.c lib/config_env.c lib/config_file.c \
	lib/config_tree.c lib/config_tree.h

# PostgreSQL: the database layer (lib/db_*.c, the only users of libpq: the pool
# and its health, the request-path statements, users, the command line's
# sessions, sharing lib/db_int.h), where a role's connection string comes from
# (lib/dburl.c), schema migrations (the files of sql/ are compiled in by
# sql/local.mk), the local cluster
libingen_a_SOURCES += \
	lib/db.h lib/db_int.h \
	lib/db_pool.c lib/db_chat.c lib/db_users.c \
	lib/db_session.c lib/db_session.h \
	lib/db_sqlagent.c lib/db_sqlagent.h \
	lib/db_usage.c \
	lib/dburl.c lib/dburl.h \
	lib/migrate.c lib/migrate.h \
	lib/localpg.c lib/localpg.h

# the running master's record in its state directory (ingen status/reload/stop)
libingen_a_SOURCES += lib/runfile.c lib/runfile.h

# the cross-worker table of failed logins (shared memory made by the master)
libingen_a_SOURCES += lib/throttle.c lib/throttle.h

# the prompt templates of the revisions on disk, every version kept
libingen_a_SOURCES += lib/revisions.c lib/revisions.h

# the usage journal: llm_usage rows waiting for their turn, in a file that
# outlives the worker
libingen_a_SOURCES += lib/ujournal.c lib/ujournal.h
# prompt templates: the Jinja subset of flows (parsed once, rendered many
# times), the language documented for users in docs/templates.md
libingen_a_SOURCES += lib/tmpl.c lib/tmpl.h
EXTRA_DIST += docs/templates.md

# the local knowledge base: the chunker and text checks (lib/kb.c, pure),
# its tables (lib/db_kb.c, with the rest of the database layer), and the
# walk that fills it from files (lib/kbindex.c: `ingen kb add` and the
# server's indexing of kb.directory); docs/knowledge-base.md
libingen_a_SOURCES += \
	lib/kb.c lib/kb.h \
	lib/db_kb.c lib/db_kb.h \
	lib/kbindex.c lib/kbindex.h
# the SQL agent's statement guard on PostgreSQL's grammar: the only user of
# libpg_query (docs/sql-agent.md)
libingen_a_SOURCES += lib/sqlguard.c lib/sqlguard.h
EXTRA_DIST += docs/sql-agent.md
