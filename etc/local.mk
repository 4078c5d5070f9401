# etc/local.mk -- included by Makefile.am

# the documented configuration (every key with its default) and the same keys
# as environment variables, installed into $(sysconfdir)/ingenious
ingensysconf_DATA += etc/ingenious.conf etc/env.example
EXTRA_DIST += etc/ingenious.conf etc/env.example
