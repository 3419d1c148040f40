/* The exec of a program for a config: its argv ({fd:NAME} substituted), environment (the contract's variables,
 * program.environment, compat and preload variables), fds, credentials, working directory, stdin and limits. Shared
 * by a generation's program and the readiness probes of readiness.type exec, so both run as the same user, in the same
 * directory, with the same environment. Does not log, but for the one warning of program_prepare(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "config.h"
#include "sockets.h"
#include "spawn.h"

struct program_spec {
	const struct config *config;
	unsigned generation; /* BATON_GENERATION */
	/* A generation's program: command is config->command, with these listeners at fds 3.. and this NOTIFY_SOCKET.
	 * A probe (probe_of_pid > 0): probe_command (readiness.command or reload.confirm-command), no fds,
	 * BATON_PID=probe_of_pid. */
	const struct listener *listeners;
	size_t n_listeners;
	const char *notify_socket;
	pid_t probe_of_pid;
	char *const *probe_command;
	const struct rlimit *nofile; /* what baton was given: what the program gets */
	bool take_terminal; /* the program's process group takes the terminal's foreground (spawn_params) */
};

struct program {
	struct spawn_params params; /* ready for spawn_child(), but for stdout_fd/stderr_fd (-1: baton's own) */
	char **argv;
	char **envp;
	int *fds;
	gid_t *groups;
};

/* Prepares the exec. On failure *ret_error says why (an unknown {fd:NAME}, a missing preload library, an unknown
 * user) and nothing is allocated. */
int program_prepare(const struct program_spec *spec, struct program *ret, char **ret_error);
void program_free(struct program *p);
