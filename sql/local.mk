# sql/local.mk -- included by Makefile.am
