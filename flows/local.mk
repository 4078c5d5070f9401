# flows/local.mk -- included by Makefile.am
