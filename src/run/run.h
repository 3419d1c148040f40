/* `baton run`: the supervisor's event loop over its signals, timer, children, notify and control sockets. Logs. */
#pragma once

#include <stddef.h>

#include "config.h"
#include "sockets.h"
#include "supervisor.h"

/* Blocks the signals the event loop reads from its signalfd. Called first thing by `run`, so a SIGTERM that arrives
 * while the config is read or the sockets are bound waits for the loop instead of killing baton halfway. */
int run_block_signals(void);

/* Takes ownership of config and listeners, starts the first generation and runs the event loop until baton should
 * exit; returns the exit code (0 after a requested stop, the child's status, 128+N, or one of EXIT_*). */
int run_supervisor(const struct supervisor_options *o, struct config *config, struct listener *listeners,
		   size_t n_listeners, char *const *argv);

/* `baton upgrade`, in the new binary: BATON_UPGRADE_STATE names the state the old one handed over. Takes it over
 * (or, when it cannot, execs the old binary again with the same state, which then answers that the upgrade failed)
 * and runs the event loop as run_supervisor() does. argv is baton's command line, as run_supervisor() was given it. */
int run_takeover(char *const *argv);
/* `baton --upgrade-check=FD`: whether this binary can take over the state in FD; prints "baton-state-ok" and returns
 * 0, or prints why not and returns EXIT_FAILED. */
int run_upgrade_check(int fd);
