/* The supervisor's lifecycle as an explicit state machine: what baton does about each event (a generation became
 * ready, exited, missed a deadline; a reload or a stop was asked for; a restart is due) in each state is looked up in
 * transitions[state][event] (supervisor.c). A transition changes state and calls mechanisms below it (generations,
 * readiness, sockets, upstream); it never dispatches another event itself: a follow-up event is queued and runs once
 * the transition has returned. What the caller (run.c) must do afterwards (reply to control clients waiting for a
 * reload) is left in an outbox. All runtime state lives in struct supervisor, in plain fields, so that it can be
 * handed over to a re-executed baton. Logs what it decides at info, notice and error level. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "supervisor-common.h"

/* Starts the first generation at now. On failure *ret_error (may stay NULL) says why. */
int supervisor_start(struct supervisor *s, uint64_t now, char **ret_error);
/* Stops every generation as a stop request does, because baton itself cannot go on (run.c: libsystemd cannot be
 * loaded); baton exits with exit_code once they are all gone. */
void supervisor_abort(struct supervisor *s, int exit_code, uint64_t now);
/* Runs the transition for ev at now, then every follow-up event it queued. Never nested. */
void supervisor_dispatch(struct supervisor *s, const struct event *ev, uint64_t now);
/* g ended (its main process was reaped with wait_status, or it never had one; interrupted: see struct event): it
 * leaves the generation list, the state machine hears EV_EXITED, and g is freed. */
void supervisor_generation_ended(struct supervisor *s, struct generation *g, int wait_status, bool interrupted,
				 uint64_t now);
