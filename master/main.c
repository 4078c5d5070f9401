/*
 * main.c -- the `ingen` command line: parses the command and hands over to
 * the master (serve) or to a cli_* module.  It never serves a request.
 */
#include "autoconfig.h"

#include <stdio.h>

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "ingen: not yet\n");
	return 1;
}
