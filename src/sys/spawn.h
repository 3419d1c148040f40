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

struct spawn_env_params {
	char *const *base; /* the supervisor's environ */
	char *const *overrides; /* program.environment, "KEY=value"; win over base */
	char *const *names; /* listener names in fd order; NULL when n_fds is 0 */
	size_t n_fds;
	const char *notify_socket; /* baton's own NOTIFY_SOCKET for the child */
	unsigned generation; /* BATON_GENERATION */
	uint64_t watchdog_usec; /* > 0: WATCHDOG_USEC for the child, with WATCHDOG_PID its own pid */
	char *const *extra; /* "KEY=value" that baton computes (compat variables, LD_PRELOAD): win over both */
};

/* Builds the child's environment: base minus LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, LISTEN_PIDFDID, WATCHDOG_PID,
 * WATCHDOG_USEC, NOTIFY_SOCKET and BATON_GENERATION; then overrides; then extra (whose names win over base and
 * overrides); then LISTEN_FDS, LISTEN_FDNAMES and a
 * "LISTEN_PID=" placeholder (when n_fds > 0), NOTIFY_SOCKET, BATON_GENERATION, and with watchdog_usec WATCHDOG_USEC
 * and a "WATCHDOG_PID=" placeholder. The placeholders come last and have room for any pid, so the child can fill
 * them in after fork without allocating (spawn_set_listen_pid).
 * Entries without '=' are dropped, and so are overrides of the variables baton sets. Pure. Returns 0 or -ENOMEM. */
int spawn_build_env(const struct spawn_env_params *p, char ***ret);

/* Writes pid's decimal digits into the "LISTEN_PID=" and "WATCHDOG_PID=" slots of an envp from spawn_build_env (the
 * last such entries); does nothing for a slot that is not there. Async-signal-safe (no allocation, no stdio): meant
 * for the forked child. Only for those slots, which have room for any pid; an entry from elsewhere could be
 * overrun. */
void spawn_set_listen_pid(char **envp, pid_t pid);

/* The first "{fd:NAME}" placeholder in s: returns its '{', with NAME at *ret_name (*ret_len bytes, not
 * NUL-terminated), or NULL when s has none. A "{fd:" without a closing '}' is returned with *ret_name NULL. Pure. */
const char *spawn_placeholder_find(const char *s, const char **ret_name, size_t *ret_len);

/* Substitutes "{fd:NAME}" in each argument by that listener's fd number (3 + its index). An unknown name gives
 * -ENOENT with *ret_error "{fd:NAME} names no listener"; a "{fd:" with no closing brace is -EINVAL with *ret_error
 * "a {fd:NAME} placeholder is not closed" (malloc'd). Pure but for the allocation. */
int spawn_expand_argv(char *const *command, char *const *names, size_t n_names, char ***ret_argv, char **ret_error);
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
	/* The child is created in that cgroup (clone3(CLONE_INTO_CGROUP), fork semantics) instead of moving itself
	 * there: no migration, whose first one after a pause waits for an RCU grace period (cgroup.h,
	 * cgroup_tree_settle()). Where the kernel lacks it (before 5.7), the child moves itself. */
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

/* Forks and execs. The child: own process group, default dispositions, empty signal mask, fds moved into 3..
 * through temporaries with close-on-exec cleared, every other fd above 2 closed (close-on-exec), stdin from stdin_fd
 * or /dev/null, then chdir, setgroups, setgid, setuid, the parent-death signal (after setuid: a uid/gid change clears
 * it), exec (a name without '/' is searched in envp's PATH). If anything before exec fails, the child writes the step
 * and errno into a close-on-exec pipe and exits 127; the parent reaps it and returns that errno with *ret_error naming
 * the step and path ("exec /usr/bin/app: No such file or directory"). On success *ret_pid and *ret_pidfd are set
 * (*ret_pidfd is -1 where the kernel, or valgrind, has no pidfd_open). At most 65536 fds. */
int spawn_child(const struct spawn_params *p, pid_t *ret_pid, int *ret_pidfd, char **ret_error);

/* Why LD_PRELOAD cannot work for the program argv0 (searched in path_env, a PATH value, when it has no '/'): a
 * statically linked ELF executable, a set-user-ID or set-group-ID file (the dynamic linker ignores LD_PRELOAD paths
 * with slashes then), or the same for the interpreter of a "#!" script. Returns a static English reason, or NULL
 * when preloading should work or nothing can be said (the file is missing: exec reports that). */
const char *spawn_preload_problem(const char *argv0, const char *path_env);
