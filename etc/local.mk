# etc/local.mk -- included by Makefile.am

# the documented configuration (every key with its default) and the same keys
# as environment variables, installed into $(sysconfdir)/ingenious
ingensysconf_DATA += etc/ingenious.conf etc/env.example
EXTRA_DIST += etc/ingenious.conf etc/env.example

# systemd units, installed next to the configuration as examples to copy
# into /etc/systemd/system (paths in them assume --prefix=/usr/local)
ingensysconf_DATA += etc/ingenious.service etc/ingenious.socket
EXTRA_DIST += etc/ingenious.service etc/ingenious.socket

# monitoring: Prometheus alert rules and a Grafana dashboard (docs/monitoring.md)
ingensysconf_DATA += etc/prometheus-alerts.yml etc/grafana-dashboard.json
EXTRA_DIST += etc/prometheus-alerts.yml etc/grafana-dashboard.json docs/monitoring.md
