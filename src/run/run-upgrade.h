/* `baton upgrade` (run-upgrade.c): in the old binary, the check of the new one and its exec; in the new one, taking
 * the state over, or going back. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "run-core.h"

/* At the start: the path of this binary (from argv[0], as the shell or systemd found it) and an
 * O_PATH fd of it. Without them an upgrade needs --binary, and a failed one has no way back (it is refused). */
void run_upgrade_setup(struct run *r);
/* The loop's turn: an upgrade a client asked for goes on once nothing is starting (it waits for a
 * reload to end), and is refused while baton stops: the new binary is checked (asynchronously: the loop serves on
 * meanwhile), then exec'd. Returns unless the exec succeeded; a failure has been answered to the client. */
void run_upgrade_pending(struct run *r);
/* The check's events: its output (TAG_UPGRADE_CHECK), its end (a reaped child: true when it was the check), its
 * deadline; and the end of one that runs when baton exits. */
void run_upgrade_output(struct run *r);
bool run_upgrade_reaped(struct run *r, pid_t pid, int wait_status);
uint64_t run_upgrade_deadline(const struct run *r);
void run_upgrade_timer(struct run *r, uint64_t now);
void run_upgrade_abort(struct run *r);
/* `baton upgrade`, in the new binary: takes the state over into r (registered in a new event loop,
 * the upgrader answered), ready for run.c's loop. Returns 0, or negative errno once it logged why (when it could, it
 * went back to the old binary instead, and does not return). */
int run_upgrade_resume(char *const *argv, struct run *r);
/* `baton --upgrade-check=FD`: whether this binary can take over the state in FD; prints "baton-state-ok" and returns
 * 0, or prints why not and returns EXIT_FAILED. */
int run_upgrade_check(int fd);
