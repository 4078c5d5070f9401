/*
 * master.h -- the supervisor process of `ingen serve`.
 */
#ifndef INGEN_MASTER_H
#define INGEN_MASTER_H

#include "lib/config.h"

/*
 * Run the server: bind (or adopt the systemd socket), pre-fork the workers of
 * `cfg`, and supervise them until stopped.  Takes ownership of `cfg`.  `ov`
 * is kept to rebuild the configuration on SIGHUP.  Returns the process exit
 * code: 0 after a clean stop, PROC_EXIT_MASTER_FATAL when a worker exited
 * with the fatal code or the server could not start.
 */
int master_run(struct config *cfg, const struct config_overrides *ov);

#endif
