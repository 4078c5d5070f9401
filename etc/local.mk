# etc/local.mk -- included by Makefile.am

# the documented configuration (every key with its default) and the same keys
# as environment variables, installed into $(sysconfdir)/ingenious
ingensysconf_DATA += etc/ingenious.conf etc/env.example
EXTRA_DIST += etc/ingenious.conf etc/env.example

# systemd units, made from etc/*.in with the configured paths and installed
# into the systemd unit directory (--with-systemdsystemunitdir; not enabled)
systemdsystemunit_DATA = etc/ingenious.service etc/ingenious.socket
EXTRA_DIST += etc/ingenious.service.in etc/ingenious.socket.in
CLEANFILES += etc/ingenious.service etc/ingenious.socket
etc/ingenious.service: $(srcdir)/etc/ingenious.service.in Makefile
	@$(MKDIR_P) etc
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    $(srcdir)/etc/ingenious.service.in >$@
etc/ingenious.socket: $(srcdir)/etc/ingenious.socket.in Makefile
	@$(MKDIR_P) etc
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    $(srcdir)/etc/ingenious.socket.in >$@

# man pages
dist_man1_MANS = docs/ingen.1 docs/ingen-azure-sim.1
dist_man5_MANS = docs/ingenious.conf.5

# monitoring: Prometheus alert rules and a Grafana dashboard (docs/monitoring.md)
ingensysconf_DATA += etc/prometheus-alerts.yml etc/grafana-dashboard.json
EXTRA_DIST += etc/prometheus-alerts.yml etc/grafana-dashboard.json docs/monitoring.md
