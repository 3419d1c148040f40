/* Starting a child (baton(1) WHAT THE PROGRAM GETS): its argv ({fd:NAME} substituted) and environment (spawn-env.c,
 * pure), its fd layout (listeners at 3.., nothing else), a clean signal state and process group, credentials (creds.h)
 * and exec failure reported back to the parent (spawn.c), and whether LD_PRELOAD can work for it (spawn-preload.c).
 * Does not log: failures are messages for the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "spawn-env.h"
#include "spawn-preload.h"

struct spawn_params {
	char *const *argv;
	char **envp; /* from spawn_build_env: its LISTEN_PID slot is filled in by the child */
	const int *fds; /* placed at 3, 4, ... in the child */
	size_t n_fds;
	const char *working_directory; /* NULL: inherit */
	/* Resolved in the parent, before fork (NSS is not for a forked child). */
	bool set_credentials;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	int stdin_fd; /* -1: /dev/null */
	int stdout_fd, stderr_fd; /* -1: inherit baton's */
	/* Non-NULL: the cgroup.procs file (relative to cgroup_dir_fd) that the child writes itself into, first thing
	 * after fork (NULL: it stays in baton's cgroup). */
	int cgroup_dir_fd;
	const char *cgroup_procs;
	/* The child is created in that cgroup (clone3(CLONE_INTO_CGROUP)) instead of moving itself there: no
	 * migration, whose first one after a pause waits for an RCU grace period (cgroup.h, cgroup_tree_settle()).
	 * Where that clone shares baton's memory (x86-64, not the sanitizer build) every child is created so; where it
	 * is a fork, only those with this set. Where the kernel lacks it (before 5.7), the child moves itself. */
	bool cgroup_at_clone;
	int parent_death_signal; /* PR_SET_PDEATHSIG in the child; 0 for none */
	/* The child's process group takes the foreground of the terminal on fd 0 (tcsetpgrp) before exec, so that a
	 * program that touches the terminal at once is not stopped by SIGTTOU/SIGTTIN. Failure is ignored: the parent
	 * hands the foreground over too. */
	bool take_terminal;
	/* RLIMIT_NOFILE for the child, or NULL to keep the parent's. baton raises its own soft limit to hold many
	 * sockets, but a program that uses select() breaks with fds above 1024: it gets the limit baton was given. */
	const struct rlimit *nofile;
};

/* Resolves user/group names (or numbers) into p's credential fields; group defaults to the user's primary group and
 * supplementary groups come from the user's membership (initgroups semantics). Only a group: uid stays getuid() and
 * the groups are that one alone; a uid without passwd entry needs a group. An unknown name is -ESRCH ("user 'x' does
 * not exist"). groups is malloc'd into *ret_groups (NULL, nothing set, when both are NULL); *ret_error on failure. */
int spawn_resolve_credentials(const char *user, const char *group, struct spawn_params *p, gid_t **ret_groups,
			      char **ret_error);

/* fn(arg) in a child that shares baton's memory, on a stack of its own (clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn(3) does), baton suspended until the child has exec'd or exited; a plain fork in the sanitizer build.
 * fn must exec or _exit, touching nothing of baton's but its own stack and what it is given. The pid, or -errno. */
pid_t spawn_clone_vm(int (*fn)(void *), void *arg);

/* Forks and execs. The child: own process group, default dispositions, empty signal mask, fds moved into 3..
 * through temporaries with close-on-exec cleared, every other fd above 2 closed (close-on-exec), stdin from stdin_fd
 * or /dev/null, then chdir, setgroups, setgid, setuid, the parent-death signal (after setuid: a uid/gid change clears
 * it), exec (a name without '/' is searched in envp's PATH). If anything before exec fails, the child writes the step
 * and errno into a close-on-exec pipe and exits 127; the parent reaps it and returns that errno with *ret_error naming
 * the step and path ("exec /usr/bin/app: No such file or directory"). On success *ret_pid and *ret_pidfd are set
 * (*ret_pidfd is -1 where the kernel, or valgrind, has no pidfd_open). At most 65536 fds. */
int spawn_child(const struct spawn_params *p, pid_t *ret_pid, int *ret_pidfd, char **ret_error);
