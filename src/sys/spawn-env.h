/* The child's argv ({fd:NAME} substituted) and environment (spawn-env.c, pure), the bottom of the spawn family: what
 * spawn.c execs. Does not log: failures are messages for the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
 * Entries without '=' are dropped, and so are overrides of the variables baton sets. *ret is one allocation (the
 * array and its strings): release it with free(). Pure. Returns 0 or -ENOMEM. */
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
