/* `baton run`'s children and signals (run-children.c). */
#pragma once

#include <stdbool.h>

#include "run-core.h"

/* The signalfd is read to its end (SIGCHLD reaps, SIGTERM and SIGINT stop, SIGHUP reloads, the rest
 * goes to the program); every child that exited is reaped (a generation's pidfd fired); the wait statuses generation
 * id's keeper reported (all: until its socket is empty; otherwise a bounded batch); generation id's cgroup.events
 * changed (its cgroup may have emptied). */
void run_handle_signals(struct run *r);
void run_reap_children(struct run *r);
void run_keeper_reports(struct run *r, unsigned id, bool all);
void run_cgroup_event(struct run *r, unsigned id);
