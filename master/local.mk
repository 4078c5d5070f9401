# master/local.mk -- the supervisor (process table, signals, reload, the
# listening socket, sd_notify), part of `ingen`; included by Makefile.am.
ingen_SOURCES += \
	master/master.c master/master.h \
	master/listen.c master/listen.h \
	master/notify.c master/notify.h \
	master/memtune.c master/memtune.h
