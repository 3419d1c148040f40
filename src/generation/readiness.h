/* Readiness for programs that do not send READY=1: a probe command (exec), a line of output (log, matched by
 * generation_output()), a pid file naming a live process of the generation (pidfile, which also follows programs
 * that daemonize), a fixed delay, or none. Each check says "ready, and how"; the caller turns that into the same
 * event a READY=1 gives, so the state machine does not know the difference. Logs at debug level, and a warning when
 * a probe cannot be started.
 *
 * What is never offered here: a TCP connect or HTTP request to a listener as a probe. baton holds those sockets, so
 * the kernel's backlog (or the old generation) answers it whether or not the new program works. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "evloop.h"
#include "generation.h"

/* How a generation became ready, for the log: "readiness.command exited 0". */
#define READINESS_HOW_MAX 4200

/* Right after the start: schedules the first check for g's readiness type (readiness.type none needs none: the
 * state machine takes such a generation as ready at once). */
void readiness_begin(struct generation *g);

/* g's check_usec has come. Returns true when g is ready, with how[] saying why; otherwise the next check is
 * scheduled (or a probe runs: readiness.command while starting, reload.confirm-command while confirming). list:
 * every generation (a pid file must not name another one's process). */
bool readiness_check(struct evloop *loop, struct generation *list, struct generation *g, const struct rlimit *nofile,
		     uint64_t now, char how[static READINESS_HOW_MAX]);

/* The reload.confirm window of g (ready, the old generation still serving) begins at now: with
 * reload.confirm-command, the first probe runs at once and the next one readiness.interval after each success. The
 * window ends with generation_end_readiness() (or the generation's stop or kill). */
void readiness_confirm_begin(struct generation *g, uint64_t now);

enum probe_outcome {
	PROBE_NOT_A_PROBE, /* the pid was no generation's probe */
	PROBE_NOTHING, /* a probe, dealt with: the next one is scheduled, or it no longer counts */
	PROBE_READY, /* readiness.command exited 0: the generation is ready */
	PROBE_FAILED, /* reload.confirm-command failed: the generation in its window is not healthy */
};
/* A child was reaped: what it means when it was the probe of a generation in list; *ret_gen is that generation
 * (set for PROBE_READY and PROBE_FAILED). */
enum probe_outcome readiness_probe_reaped(struct generation *list, pid_t pid, int wait_status, uint64_t now,
					  struct generation **ret_gen);

/* g's main process was reaped: true when, with readiness.type pidfile, it exited 0 before the pid file named a live
 * process: the daemon it left is awaited, and the generation lives on without a process of its own for now. */
bool readiness_launcher_exited(struct generation *g, int wait_status, uint64_t now);
