# worker/local.mk -- included by Makefile.am

# HTTP/1.1 parser and response writer, router
libingen_a_SOURCES += worker/http.c worker/http.h worker/router.c worker/router.h
