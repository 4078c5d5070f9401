# etc/local.mk -- included by Makefile.am
