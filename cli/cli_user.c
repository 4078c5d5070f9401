/*
 * cli_user.c -- `ingen user`: the users table (users besides the one in
 * web_configuration.authentication) from the operator's terminal.
 *
 * It connects with the configuration's database settings through the pool
 * of lib/db.h, like a worker would, and exits.  A password is read from the
 * terminal with echo off (asked twice) or from the first line of standard
 * input when it is not a terminal; never from the command line, where `ps`
 * and shell histories would see it.  It never prints a password or a hash,
 * and wipes the password from memory once hashed.  It never runs inside the
 * server's processes.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/db.h"
#include "lib/xmalloc.h"
#include "cli/cli.h"

#define CLI_USER_EXIT_OK       0
#define CLI_USER_EXIT_FAILURE  1
#define CLI_USER_EXIT_USAGE    2
#define CLI_USER_PASSWORD_MAX  1024   /* bytes; longer input is refused */

static const char cli_user_usage[] =
"Usage: ingen user COMMAND [NAME] [OPTIONS]\n"
"\n"
"Users who may log in besides the one configured in\n"
"web_configuration.authentication (its username and password).\n"
"\n"
"Commands:\n"
"  add NAME      add a user (scrypt password hash)\n"
"  passwd NAME   set a user's password\n"
"  list          list the users: name, created, state\n"
"  disable NAME  refuse the user's logins and tokens from now on\n"
"  enable NAME   accept a disabled user again\n"
"\n"
"The password is asked twice on the terminal, without echo, or read from the\n"
"first line of standard input when it is not a terminal:\n"
"  printf '%s\\n' \"$PASSWORD\" | ingen user add alice\n"
"It is never taken from the command line.  NAME is 1 to 128 characters of\n"
"A-Z a-z 0-9 . _ @ -.\n"
"\n"
"Options:\n"
"  -c, --config FILE   configuration file (for chat_history.* and server.state_dir:\n"
"                      the database is chat_history.database_url, the libpq\n"
"                      environment, or the private cluster in <state_dir>/pg)\n"
"  -h, --help          this help\n"
"\n"
"Exit codes: 0 ok, 1 failure (no such user, user exists, database error),\n"
"2 usage or configuration.\n";

/* Read one line of at most CLI_USER_PASSWORD_MAX bytes into buf (the
 * newline removed).  Returns its length, or -1 at EOF or when too long. */
static ssize_t
cli_user_read_line(FILE *f, char *buf, size_t cap)
{
	size_t n;

	if (fgets(buf, (int)cap, f) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f))
		return -1;   /* no newline within the limit: too long */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return (ssize_t)n;
}

/* Prompt on the terminal with echo off. */
static ssize_t
cli_user_prompt(const char *prompt, char *buf, size_t cap)
{
	struct termios old, quiet;
	bool restore;
	ssize_t n;

	/* echo goes off before the prompt shows, so nothing typed after the
	 * prompt can be echoed (getpass does the same) */
	restore = tcgetattr(STDIN_FILENO, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	fputs(prompt, stderr);
	fflush(stderr);
	n = cli_user_read_line(stdin, buf, cap);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return n;
}

/*
 * The new password of `name`, hashed into hash (CRYPTO_PASSWORD_HASH_MAX).
 * The clear text never leaves this function.  Returns 0 or -1 (reported).
 */
static int
cli_user_password_hash(const char *name, char *hash, size_t hashlen)
{
	char *pw = xmalloc(CLI_USER_PASSWORD_MAX + 2);
	char *again = xmalloc(CLI_USER_PASSWORD_MAX + 2);
	char prompt[200];
	struct err e;
	ssize_t n;
	int rc = -1;

	if (isatty(STDIN_FILENO)) {
		snprintf(prompt, sizeof(prompt), "New password for %s: ", name);
		n = cli_user_prompt(prompt, pw, CLI_USER_PASSWORD_MAX + 2);
		if (n > 0 && cli_user_prompt("Repeat it: ", again,
		    CLI_USER_PASSWORD_MAX + 2) != n) {
			fprintf(stderr, "ingen user: the passwords do not match\n");
			goto out;
		}
		if (n > 0 && strcmp(pw, again) != 0) {
			fprintf(stderr, "ingen user: the passwords do not match\n");
			goto out;
		}
	} else {
		n = cli_user_read_line(stdin, pw, CLI_USER_PASSWORD_MAX + 2);
	}
	if (n < 0) {
		fprintf(stderr, "ingen user: could not read a password: no line of at most %d bytes on standard input\n",
		    CLI_USER_PASSWORD_MAX);
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "ingen user: the password is empty\n");
		goto out;
	}
	err_clear(&e);
	if (crypto_password_hash(pw, hash, hashlen, &e) != 0) {
		fprintf(stderr, "ingen user: %s\n", e.msg);
		goto out;
	}
	rc = 0;
out:
	crypto_cleanse(pw, CLI_USER_PASSWORD_MAX + 2);
	crypto_cleanse(again, CLI_USER_PASSWORD_MAX + 2);
	free(pw);
	free(again);
	return rc;
}

static int
cli_user_report(const char *cmd, enum db_status st, const char *name,
    const struct err *e)
{
	switch (st) {
	case DB_OK:
		return CLI_USER_EXIT_OK;
	case DB_EXISTS:
		fprintf(stderr, "ingen user %s: user \"%s\" already exists\n", cmd, name);
		return CLI_USER_EXIT_FAILURE;
	case DB_NOT_FOUND:
		fprintf(stderr, "ingen user %s: no user \"%s\"\n", cmd, name);
		return CLI_USER_EXIT_FAILURE;
	default:
		fprintf(stderr, "ingen user %s: %s\n", cmd, e->msg);
		return CLI_USER_EXIT_FAILURE;
	}
}

static int
cli_user_list(struct db_pool *p)
{
	struct arena *a = arena_create(0);
	struct db_user *u;
	size_t n, i;
	struct err e;

	err_clear(&e);
	if (db_user_list(p, a, &u, &n, &e) != 0) {
		fprintf(stderr, "ingen user list: %s\n", e.msg);
		arena_destroy(a);
		return CLI_USER_EXIT_FAILURE;
	}
	for (i = 0; i < n; i++)
		printf("%s\t%s\t%s\n", u[i].username,
		    u[i].created_at ? u[i].created_at : "",
		    u[i].disabled ? "disabled" : "enabled");
	arena_destroy(a);
	return CLI_USER_EXIT_OK;
}

static int
cli_user_run(const char *cmd, const char *name, const struct config *cfg)
{
	char hash[CRYPTO_PASSWORD_HASH_MAX];
	struct db_pool *p;
	enum db_status st;
	struct err e;
	int rc;

	err_clear(&e);
	if ((p = db_pool_create(cfg, &e)) == NULL) {
		fprintf(stderr, "ingen user %s: %s\n", cmd, e.msg);
		return CLI_USER_EXIT_FAILURE;
	}
	if (strcmp(cmd, "list") == 0) {
		rc = cli_user_list(p);
		goto out;
	}
	if (strcmp(cmd, "add") == 0 || strcmp(cmd, "passwd") == 0) {
		if (cli_user_password_hash(name, hash, sizeof(hash)) != 0) {
			rc = CLI_USER_EXIT_FAILURE;
			goto out;
		}
		st = strcmp(cmd, "add") == 0 ? db_user_add(p, name, hash, &e) :
		    db_user_set_password(p, name, hash, &e);
		crypto_cleanse(hash, sizeof(hash));
	} else {
		st = db_user_disable(p, name, strcmp(cmd, "disable") == 0, &e);
	}
	rc = cli_user_report(cmd, st, name, &e);
	if (rc == CLI_USER_EXIT_OK) {
		printf("%s: %s\n", strcmp(cmd, "add") == 0 ? "added" :
		    strcmp(cmd, "passwd") == 0 ? "password changed" :
		    strcmp(cmd, "disable") == 0 ? "disabled" : "enabled", name);
		if (strcmp(name, cfg->web.authentication.username) == 0)
			fprintf(stderr, "ingen user: note: \"%s\" is also the configured user "
			    "(web_configuration.authentication.username), whose password wins\n",
			    name);
	}
out:
	db_pool_destroy(p);
	return rc;
}

int
cli_user_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd, *name = NULL, *config_file = NULL;
	struct config *cfg;
	bool needs_name;
	int c, rc;

	if (argc < 2) {
		fputs(cli_user_usage, stderr);
		return CLI_USER_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(cli_user_usage, stdout);
		return CLI_USER_EXIT_OK;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_file = optarg;
			break;
		case 'h':
			fputs(cli_user_usage, stdout);
			return CLI_USER_EXIT_OK;
		default:
			return CLI_USER_EXIT_USAGE;
		}
	}
	if (strcmp(cmd, "add") != 0 && strcmp(cmd, "passwd") != 0 &&
	    strcmp(cmd, "list") != 0 && strcmp(cmd, "disable") != 0 &&
	    strcmp(cmd, "enable") != 0) {
		fprintf(stderr, "ingen user: unknown command \"%s\"\n\n%s", cmd,
		    cli_user_usage);
		return CLI_USER_EXIT_USAGE;
	}
	needs_name = strcmp(cmd, "list") != 0;
	if (needs_name && optind < argc - 1)
		name = argv[1 + optind++];
	if (optind < argc - 1) {
		fprintf(stderr, "ingen user %s: unexpected argument \"%s\" (passwords are never taken from the command line)\n",
		    cmd, argv[1 + optind]);
		return CLI_USER_EXIT_USAGE;
	}
	if (needs_name && name == NULL) {
		fprintf(stderr, "ingen user %s: a user name is required\n", cmd);
		return CLI_USER_EXIT_USAGE;
	}
	if (needs_name && !db_user_name_valid(name)) {
		fprintf(stderr, "ingen user %s: invalid user name \"%.*s\" (1 to %d of A-Z a-z 0-9 . _ @ -)\n",
		    cmd, DB_USER_NAME_MAX, name, DB_USER_NAME_MAX);
		return CLI_USER_EXIT_USAGE;
	}
	if ((cfg = cli_config_load_file(config_file)) == NULL)
		return CLI_USER_EXIT_USAGE;
	rc = cli_user_run(cmd, name, cfg);
	config_free(cfg);
	return rc;
}
