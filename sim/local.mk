# sim/local.mk -- ingen-azure-sim, the Azure OpenAI and AI Search protocol
# simulator (installed: the quick start uses it when no Azure credentials are
# set; the tests use it as the upstream), with its rules and documents.
bin_PROGRAMS += ingen-azure-sim
ingen_azure_sim_SOURCES = sim/sim.h sim/sim_main.c \
	sim/sim_chat.c sim/sim_search.c
ingen_azure_sim_LDADD = $(INGEN_LIBS)
simulatordir = $(pkgdatadir)/simulator
dist_simulator_DATA = sim/rules.json sim/docs.json
EXTRA_DIST += docs/simulator.md docs/azure-search.md
