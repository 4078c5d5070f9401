/*
 * cli_init.c -- `ingen init`: the scaffold of a project in the working
 * directory (the files of cli/scaffold/, compiled in by build-aux/embed.sh):
 * a configuration, .env.example, the task manager flow in C with its
 * Makefile and its test, the bike-insights prompt templates, sample data
 * and a README.  It never overwrites a file: each one is created or kept
 * as it is, and the command says which.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/scaffold.h"

#define CLI_INIT_EXIT_OK      0
#define CLI_INIT_EXIT_FAILURE 1
#define CLI_INIT_EXIT_USAGE   2
#define CLI_INIT_PATH_MAX     512

static const char cli_init_usage[] =
"Usage: ingen init\n"
"\n"
"Create an Ingenious project in the working directory, file by file, never\n"
"overwriting one (each is reported as created, or kept when it exists):\n"
"  ingenious.conf, .env.example      the configuration and its secrets\n"
"  .gitignore                        keeps .env, key files, .ingenious/ (the\n"
"                                    server's state) and built flows out of git\n"
"  ingenious_extensions/flows/task_manager/\n"
"                                    the custom workflow guide's task manager as\n"
"                                    a flow in C, its Makefile (make, make check,\n"
"                                    make clean) and its test\n"
"  ingenious_extensions/flows/task_manager_decl.flow\n"
"                                    the same task manager as a flow file, with\n"
"                                    no code (flow task_manager_decl)\n"
"  test_task_manager.json            a request for it (curl -d @...)\n"
"  templates/prompts/quickstart-1/   the bike-insights prompt templates\n"
"  sample_data/                      a bike-insights sample payload\n"
"  README.md                         the next steps\n"
"\n"
"Exit codes: 0 ok, 1 a file or folder could not be written, 2 usage.\n";

/* Make the folders of `path` (not its last component). */
static int
cli_init_dirs(const char *path)
{
	char dir[CLI_INIT_PATH_MAX];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	for (p = strchr(dir, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
			fprintf(stderr, "ingen: could not create folder \"%s\": %s\n",
			    dir, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* Write one file unless it exists: 1 created, 0 kept, -1 failed. */
static int
cli_init_file(const struct scaffold_file *f)
{
	size_t off = 0;
	ssize_t w;
	int fd;

	if (cli_init_dirs(f->path) != 0)
		return -1;
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0) {
		fprintf(stderr, "ingen: could not create \"%s\": %s\n", f->path,
		    strerror(errno));
		return -1;
	}
	while (off < f->len) {
		w = write(fd, f->data + off, f->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "ingen: could not write \"%s\": %s\n",
			    f->path, strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0) {
		fprintf(stderr, "ingen: could not write \"%s\": %s\n", f->path,
		    strerror(errno));
		return -1;
	}
	return 1;
}

int
cli_init_main(int argc, char **argv)
{
	size_t i, created = 0, kept = 0;
	int r;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		fputs(cli_init_usage, stdout);
		return CLI_INIT_EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "ingen init: unexpected argument \"%s\" (it works "
		    "in the current directory)\n\n%s", argv[1], cli_init_usage);
		return CLI_INIT_EXIT_USAGE;
	}
	for (i = 0; i < scaffold_n_files; i++) {
		if ((r = cli_init_file(&scaffold_files[i])) < 0)
			return CLI_INIT_EXIT_FAILURE;
		if (r > 0) {
			printf("created %s\n", scaffold_files[i].path);
			created++;
		} else {
			printf("kept    %s (exists)\n", scaffold_files[i].path);
			kept++;
		}
	}
	printf("\n%zu file%s created, %zu kept.  Next steps: README.md (the "
	    "model in .env, `ingen db init-local`, `make -C "
	    "ingenious_extensions/flows/task_manager check`, `ingen serve`, "
	    "`curl ... -d @test_task_manager.json`).\n", created,
	    created == 1 ? "" : "s", kept);
	return CLI_INIT_EXIT_OK;
}
