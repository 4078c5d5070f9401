/*
 * cli_config.c -- loading the configuration for a command of `ingen`:
 * every source, every problem printed, one line each.  Shared by serve,
 * validate, db and user; never used inside the server processes (the
 * master reloads through config_load itself and logs).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "lib/config.h"
#include "cli/cli.h"

struct config *
cli_config_load(const struct config_overrides *ov)
{
	struct config_problems probs;
	struct config *cfg;
	size_t i;

	memset(&probs, 0, sizeof(probs));
	cfg = config_load(ov, NULL, NULL, &probs);
	for (i = 0; i < probs.n; i++)
		fprintf(stderr, "ingen: %s\n", probs.lines[i]);
	for (i = 0; i < probs.n_warnings; i++)
		fprintf(stderr, "ingen: warning: %s\n", probs.warnings[i]);
	config_problems_free(&probs);
	return cfg;
}

struct config *
cli_config_load_file(const char *config_file)
{
	struct config_overrides ov = CONFIG_OVERRIDES_INIT;

	ov.config_file = config_file;
	return cli_config_load(&ov);
}
