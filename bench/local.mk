# bench/local.mk -- included by Makefile.am

# `make bench`: GET /api/v1/health against nginx serving the same JSON
EXTRA_DIST += bench/health.sh bench/README.md
bench: ingen$(EXEEXT)
	INGEN=$(abs_top_builddir)/ingen$(EXEEXT) $(SHELL) $(srcdir)/bench/health.sh
.PHONY: bench
