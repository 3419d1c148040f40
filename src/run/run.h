/* `baton run`: the supervisor's event loop over its signals, timer, children, notify and control sockets. Logs. What
 * main.c uses of run/: run.c's entry points here, and through the headers below, run_block_signals() and
 * run_upgrade_check(). */
#pragma once

#include <stddef.h>

#include "config.h"
#include "run-core.h" /* run_block_signals(), called first */
#include "run-upgrade.h" /* run_upgrade_check() */
#include "sockets.h"
#include "supervisor.h"

/* Takes ownership of config and listeners, starts the first generation and runs the event loop until baton should
 * exit; returns the exit code (0 after a requested stop, the child's status, 128+N, or one of EXIT_*). */
int run_supervisor(const struct supervisor_options *o, struct config *config, struct listener *listeners,
		   size_t n_listeners, char *const *argv);

/* `baton upgrade`, in the new binary: BATON_UPGRADE_STATE names the state the old one handed over. Takes it over
 * (or, when it cannot, execs the old binary again with the same state, which then answers that the upgrade failed)
 * and runs the event loop as run_supervisor() does. argv is baton's command line, as run_supervisor() was given it. */
int run_takeover(char *const *argv);
