# worker/local.mk -- included by Makefile.am
