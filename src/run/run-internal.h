/* `baton run`'s own state, shared by the files of run/, which call one way only, each the ones listed before it:
 *   run-core.c     what they all use: the blocked signals, a control client's answer, the strings a run owns
 *   run-state.c    the state `baton upgrade` hands over: its envelope (version, order, fds, the config); each
 *                  module that owns state writes and reads its own records
 *   run-upgrade.c  the upgrade: the check of the new binary and its exec (old binary); taking the state over, or
 *                  going back (new binary)
 *   run.c          the event loop, which drives the upgrade's steps and runs the loop again after a takeover */
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
enum { TAG_NOTIFY = 8, TAG_CONTROL, TAG_CLIENT, TAG_UPGRADE_CHECK };
#define TAG(kind, id) (((uint64_t)(id) << 8) | (kind))

/* run-core.c: answers a control client with json (NULL: out of memory) and closes it. */
void run_client_reply(struct run *r, struct control_client *cl, const char *json);
/* run-core.c: frees the strings r owns for `baton upgrade` (the binary's path, the options a baton that took over was
 * handed). */
void run_free_strings(struct run *r);

/* run-state.c: the handover. The state of r (between two turns of the event loop, with no generation starting and
 * no reload in progress) is written to fd, in the versioned text format that run_state_read() parses; upgrader is
 * the control client that asked for the upgrade, to be answered by whichever binary carries on. *ret_fds (may be
 * NULL; the caller frees ->fds) are the fds the state names: exactly those the exec must keep. Returns 0 or negative
 * errno. */
int run_state_write(const struct run *r, const struct control_client *upgrader, uint64_t started_usec, int fd,
		    struct ser_fds *ret_fds);
/* What a state says besides the run it describes. */
struct run_handover {
	unsigned upgrader; /* the control client to answer */
	uint64_t started_usec; /* when the upgrade began */
	struct ser_fds fds; /* the fds the state names (the caller frees ->fds) */
};
/* Reads a state written by run_state_write() into r, allocating what it needs; the fds it names are taken as they
 * are (with check_fds, each must be open), and nothing is registered or changed: a failed takeover can still give the
 * state back. On failure *ret_error says why ("state version 2, this baton reads version 1", "line 12: ..."). */
int run_state_read(int fd, bool check_fds, struct run *r, struct run_handover *ret, char **ret_error);
/* Frees what run_state_read() allocated, closing nothing. */
void run_state_discard(struct run *r);

/* run-upgrade.c: at the start: the path of this binary (from argv[0], as the shell or systemd found it) and an
 * O_PATH fd of it. Without them an upgrade needs --binary, and a failed one has no way back (it is refused). */
void run_upgrade_setup(struct run *r);
/* run-upgrade.c: the loop's turn: an upgrade a client asked for goes on once nothing is starting (it waits for a
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
/* run-upgrade.c: `baton upgrade`, in the new binary: takes the state over into r (registered in a new event loop,
 * the upgrader answered), ready for run.c's loop. Returns 0, or negative errno once it logged why (when it could, it
 * went back to the old binary instead, and does not return). */
int run_upgrade_resume(char *const *argv, struct run *r);
