/* What the control socket answers, rendered from the supervisor's state: the status reply (JSON, with the same as
 * text for `baton status`), a reload's outcome, an upgrade's and the last word of `baton stop`. Pure: reads the state
 * it is given, changes nothing, does not log. */
#pragma once

#include <sys/types.h>
#include <stdint.h>

#include "supervisor.h"

/* The status reply of supervisor pid at now: one JSON object. NULL when out of memory. */
char *status_render(const struct supervisor *s, pid_t pid, uint64_t now);
/* The reply to a `baton reload` client waiting for reload r->seq. */
char *status_reload_reply(const struct reload_reply *r);
/* The reply to `baton upgrade`, from the binary that took over from baton from (its version), as pid, after
 * duration_usec; upgrades counts this one. */
char *status_upgrade_reply(const char *from, unsigned upgrades, pid_t pid, uint64_t duration_usec);
/* The reply `baton stop` reads before baton exits with exit_status. */
char *status_stop_reply(int exit_status);
