/* `baton run`'s own state, shared by the files of run/, which call one way only, each the ones listed before it
 * (each with its header):
 *   run-core.c     what they all use: struct run (here), the blocked signals, a control client's answer, the strings
 *                  a run owns, a turn of the state machine
 *   run-state.c    the state `baton upgrade` hands over: its envelope (version, order, fds, the config); each
 *                  module that owns state writes and reads its own records
 *   run-upgrade.c  the upgrade: the check of the new binary and its exec (old binary); taking the state over, or
 *                  going back (new binary)
 *   run-children.c the signals and the children's ends: reaping (by baton or a keeper), job control, forwarding
 *   run.c          the event loop, which drives the upgrade's steps and runs the loop again after a takeover (run.h,
 *                  main.c's header for all of run/) */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "control.h"
#include "evloop.h"
#include "generation.h"
#include "serialize.h"
#include "supervisor.h"

/* How far an upgrade request is (control_client.upgrade_phase). */
enum upgrade_phase {
	UPGRADE_NONE,
	UPGRADE_ASKED, /* asked for, nothing done yet */
	UPGRADE_WAITING, /* waiting for a reload (or the start) to end; said so in the log */
	UPGRADE_CHECKING, /* the new binary is being asked whether it can read the state (r->check) */
	UPGRADE_CHECKED, /* it can: the exec follows once nothing is starting */
	UPGRADE_CHECKED_WAITING, /* it can, and the exec waits for a reload to end; said so in the log */
};

/* The new binary being asked whether it can read the state (run-upgrade.c). */
struct upgrade_check {
	unsigned client; /* the control client whose upgrade it is; 0: none running */
	char *binary;
	pid_t pid;
	bool reaped, timed_out;
	int wait_status;
	int pipe_fd; /* its stdout and stderr; -1 once at EOF */
	uint64_t deadline_usec, started_usec;
	size_t len;
	char out[1025]; /* what it said (the first 1024 bytes) */
};

struct run {
	struct supervisor sup;
	struct evloop loop;
	int notify_fd;
	char *notify_path; /* NOTIFY_SOCKET for children: a socket file (removed at exit), or "@name" */
	dev_t notify_dev; /* the socket file's, so that only ours is removed (0 when abstract) */
	ino_t notify_ino;
	struct control control;
	uint64_t control_resume_usec; /* accepting is paused until then (out of fds); USEC_INFINITY normally */
	struct remnant
		*remnants; /* what outlived a generation's main process: its cgroup, or process group and orphans */
	struct cgroup_tree cgroups; /* baton's cgroup subtree; fd -1 without */
	pid_t own_pgrp; /* baton's process group */
	pid_t foreground; /* with sup.terminal: the process group baton last gave the terminal's foreground */

	/* baton upgrade (run-upgrade.c). */
	char *const *argv; /* the command line baton was started with: an upgrade execs the new binary with it */
	char *binary; /* the path baton was started from (argv[0], found as the shell or systemd found it): upgrade's
		       * default --binary, kept across upgrades */
	int exe_fd; /* O_PATH of the binary running now (/proc/self/exe), to go back to when a new one cannot take over
		     */
	struct upgrade_check check;
	char *previous_version; /* after an upgrade: the version of the binary that handed over */
	/* A baton that took over owns the options it was handed (in a started one they point into its argv). */
	char *own_config_path;
	char **own_listens, **own_sets, **own_command;
};

/* A struct run that holds nothing yet. */
#define RUN_INIT                                                                                                       \
	{                                                                                                              \
		.loop = EVLOOP_INIT, .notify_fd = -1, .control = {.fd = -1}, .control_resume_usec = USEC_INFINITY,     \
		.cgroups = CGROUP_TREE_INIT, .exe_fd = -1, .check = {.pipe_fd = -1, .deadline_usec = USEC_INFINITY},   \
		.sup = {.restart_usec = USEC_INFINITY, .upstream = {.watchdog_next_usec = USEC_INFINITY}},             \
	}

/* Event loop tags of run's own fds (the loop's and generation.h's kinds are distinct): the kind in the low byte, a
 * control client's id above it, so an event for a client that went away earlier in the same batch finds nothing. */
/* TAG_UPSTREAM: systemd's notify socket has room for what baton holds for it (notify_upstream_watch()). */
enum { TAG_NOTIFY = 8, TAG_CONTROL, TAG_CLIENT, TAG_UPGRADE_CHECK, TAG_UPSTREAM };
#define TAG(kind, id) (((uint64_t)(id) << 8) | (kind))

/* Blocks the signals the event loop reads from its signalfd. Called first thing by `run`, so a SIGTERM that arrives
 * while the config is read or the sockets are bound waits for the loop instead of killing baton halfway. */
int run_block_signals(void);

/* Answers a control client with json (NULL: out of memory) and closes it. */
void run_client_reply(struct run *r, struct control_client *cl, const char *json);
/* Frees the strings r owns for `baton upgrade` (the binary's path, the options a baton that took over was
 * handed). */
void run_free_strings(struct run *r);
/* A turn of the state machine. ev is dispatched (and what it queued), then the outbox is answered to the
 * control clients waiting for it and the terminal follows the current generation. */
void run_dispatch(struct run *r, const struct event *ev);
/* g's main process ended with wait_status (interrupted: by Ctrl-C or Ctrl-\ at the terminal it held):
 * what is left of it is tracked as a remnant, and the state machine hears EV_EXITED. */
void run_generation_ended(struct run *r, struct generation *g, int wait_status, bool interrupted);
/* g is ready (how says why, for the log): EV_READY. */
void run_ready(struct run *r, struct generation *g, const char *how);
/* The terminal's foreground goes to the current generation's process group, or back to baton's. */
void run_sync_terminal(struct run *r);
