/* A keeper: how a generation's processes are known without cgroups (baton(1) WHAT BELONGS TO A GENERATION). A small
 * process forked from baton (no exec), PR_SET_CHILD_SUBREAPER and the parent of the generation's program: every
 * orphan of the generation re-parents to it, never to baton or to another generation's keeper, so the generation's
 * processes are exactly the keeper's descendants, as the kernel lists them in /proc/PID/task/TID/children. It reaps
 * them all, reports each wait status (exits, and stops and continues for job control) to baton on a seqpacket
 * socket, and exits once it has no child left: the generation is empty. Nothing here reads what a program can write.
 * Does not log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "spawn.h"

/* From this many listeners on (p->n_fds), the keeper is not a fork of baton but a process of its own: made as
 * spawn.c makes a child (in baton's memory, baton suspended), it spawns the program and then execs baton's binary
 * (keeper_exec_entry()). A fork would make all of baton's memory copy-on-write at each reload; below this, baton is
 * small and the fork's shared pages are the cheaper keeper. */
#define KEEPER_EXEC_FDS 64

/* Starts a keeper, which spawns p (spawn_child) as its own child and reports the outcome. On success *ret_keeper is
 * the keeper's pid (baton's child), *ret_fd baton's end of the socket (non-blocking, close-on-exec), *ret_pid the
 * program's pid and *ret_pidfd a pidfd for it (-1 without pidfd_open). On failure nothing is left running (the
 * keeper exits; the caller reaps it as any child) and *ret_error says why, as spawn_child() would. */
int keeper_start(const struct spawn_params *p, pid_t *ret_keeper, int *ret_fd, pid_t *ret_pid, int *ret_pidfd,
		 char **ret_error);

/* The next report on fd: 1 with *ret_pid and *ret_status (a waitpid() status) set, 0 when there is none now,
 * -EPIPE once the keeper has closed its end (it exited), or negative errno. */
int keeper_read(int fd, pid_t *ret_pid, int *ret_status);

/* The number of keeper's descendants (zombies not yet reaped by their parents included); -1 when it cannot be read.
 */
int keeper_count(pid_t keeper);
/* Whether pid is keeper or descends from it (its chain of parents, from /proc/PID/stat, reaches keeper): the keeper
 * counts too, for it is the parent that systemd-notify names when an orphan of the generation runs it. */
bool keeper_has(pid_t keeper, pid_t pid);
/* sig to every descendant of keeper, each pinned by a pidfd and checked to be still its parent's child, so that a
 * pid reused meanwhile is never signalled. */
void keeper_signal(pid_t keeper, int sig);
/* SIGKILL to every descendant, walk after walk, until a walk finds none it had not killed yet: a process forked while
 * its parent was being killed is found by the next walk (a fork either completes before the SIGKILL, or fails). */
void keeper_kill(pid_t keeper);

/* First thing in main(): when this process is a keeper that has just exec'd baton's binary (argv[0] baton-keeper, its
 * variable, a child subreaper whose parent is the baton named there, holding the seqpacket socket named there), runs
 * the keeper and does not return. Otherwise returns, the variable unset: set by anyone else, it means nothing. */
void keeper_exec_entry(char **argv);
