/* Between the state machine's transitions (supervisor.c) and what they stand on (supervisor-common.c): the calls go
 * one way, from supervisor.c down. */
#pragma once

#include "supervisor.h"

/* Queues a follow-up event: it runs once the transition in progress has returned. */
void sup_post(struct supervisor *s, const struct event *ev);
/* Reload seq has ended (or will not run): control clients waiting for it get this reply from run.c. */
void sup_reply_reload(struct supervisor *s, uint64_t seq, bool ok, const char *message);
/* Starts the next generation of config c on the listeners ls, and its readiness checks (readiness.type none queues
 * its EV_READY at once). current: it is the current generation from the start (the first start, a restart), so it
 * takes the terminal's foreground at once; a reload's new generation takes it when it becomes current (run.c). On
 * failure *ret_error (may stay NULL) says why. */
int sup_start_generation(struct supervisor *s, const struct config *c, const struct listener *ls, size_t n,
			 bool current, struct generation **ret, char **ret_error);
/* The new listener set of a reload becomes the supervisor's; the fd store follows it. */
void sup_listeners_commit(struct supervisor *s, struct listener *ls, size_t n);
