/* The exec of a program for a config (program.h). */
#include "program.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "util.h"

extern char **environ;

/* program.preload: the shim's path, checked readable; a program that cannot be preloaded is warned about (it still
 * runs: it may read LISTEN_FDS). */
static int preload_library(const struct config *c, const char **ret, char **ret_error) {
	const char *lib = getenv("BATON_PRELOAD_LIBRARY");
	if (!lib || !*lib)
		lib = BATON_PRELOAD_PATH;
	if (access(lib, R_OK) < 0) {
		int r = -errno;
		*ret_error = strdup_printf("program.preload: %s: %s", lib, strerror(errno));
		return r;
	}
	/* The PATH that exec will search: program.environment's, else baton's. */
	const char *path = strv_env_get(c->environment, "PATH");
	if (!path)
		path = getenv("PATH");
	const char *why = spawn_preload_problem(c->command[0], path);
	if (why)
		log_warning("program.preload: %s: %s; it runs unshimmed, so it binds its own sockets (and fails to "
			    "where baton holds the address) unless it reads LISTEN_FDS",
			    c->command[0], why);
	*ret = lib;
	return 0;
}

/* argv, fds and the variables of a generation's program. */
static int prepare_generation(const struct program_spec *spec, struct program *p, char **ret_error) {
	const struct config *c = spec->config;
	size_t n = spec->n_listeners;
	_cleanup_free_ char **names = calloc(n + 1, sizeof(char *));
	_cleanup_strv_free_ char **extra = NULL;
	if (!names)
		return -ENOMEM;
	if (n > 0 && !(p->fds = calloc(n, sizeof(int))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		names[i] = spec->listeners[i].name;
		p->fds[i] = spec->listeners[i].fd;
	}

	_cleanup_free_ char *why = NULL;
	int r = spawn_expand_argv(c->command, names, n, &p->argv, &why);
	if (r < 0) {
		*ret_error = why ? strdup_printf("program.command: %s", why) : NULL;
		return r;
	}

	const char *preload = NULL;
	if (c->preload && (r = preload_library(c, &preload, ret_error)) < 0)
		return r;
	r = compat_env(c, spec->generation, preload, BATON_DRAIN_SIGNAL, environ, &extra);
	if (r < 0)
		return r;
	struct spawn_env_params ep = {
		.base = environ,
		.overrides = c->environment,
		.names = n > 0 ? names : NULL,
		.n_fds = n,
		.notify_socket = spec->notify_socket,
		.generation = spec->generation,
		.watchdog_usec = c->program_watchdog_usec,
		.extra = extra,
	};
	r = spawn_build_env(&ep, &p->envp);
	if (r < 0)
		return r;

	p->params.fds = p->fds;
	p->params.n_fds = n;
	/* Outside systemd nothing else would stop a child whose supervisor was SIGKILLed (under systemd the cgroup is
	 * killed anyway); the stop signal lets it finish its requests. */
	p->params.parent_death_signal = c->stop_signal;
	/* program.stdin: baton's own (a pipe or a terminal reaches the program, as under tini or dumb-init; under
	 * systemd it is /dev/null anyway), /dev/null (-1 to spawn), or a listener (inetd "wait"). */
	p->params.stdin_fd = c->stdin_mode == STDIN_INHERIT ? STDIN_FILENO : -1;
	for (size_t i = 0; c->stdin_mode == STDIN_LISTENER && i < n; i++)
		if (streq(spec->listeners[i].name, c->stdin_listener))
			p->params.stdin_fd = spec->listeners[i].fd;
	return 0;
}

/* argv and variables of a readiness probe: BATON_PID names the program it probes. */
static int prepare_probe(const struct program_spec *spec, struct program *p) {
	const struct config *c = spec->config;
	char pid_var[32];
	snprintf(pid_var, sizeof(pid_var), "BATON_PID=%d", (int)spec->probe_of_pid);
	char *extra[] = {pid_var, NULL};
	struct spawn_env_params ep = {
		.base = environ,
		.overrides = c->environment,
		.generation = spec->generation,
		.extra = extra,
	};
	int r = spawn_build_env(&ep, &p->envp);
	if (r < 0)
		return r;
	if (!(p->argv = strv_copy(spec->probe_command)))
		return -ENOMEM;
	/* A probe outlives nothing: it dies with baton. */
	p->params.parent_death_signal = SIGKILL;
	return 0;
}

int program_prepare(const struct program_spec *spec, struct program *ret, char **ret_error) {
	const struct config *c = spec->config;
	struct program p = {
		.params =
			{
				.working_directory = c->working_directory,
				.stdin_fd = -1,
				.stdout_fd = -1,
				.stderr_fd = -1,
				.nofile = spec->nofile,
				.take_terminal = spec->take_terminal,
			},
	};
	int r = spec->probe_of_pid > 0 ? prepare_probe(spec, &p) : prepare_generation(spec, &p, ret_error);
	if (r >= 0 && (c->user || c->group))
		r = spawn_resolve_credentials(c->user, c->group, &p.params, &p.groups, ret_error);
	if (r < 0) {
		program_free(&p);
		return r;
	}
	p.params.argv = p.argv;
	p.params.envp = p.envp;
	*ret = p;
	return 0;
}

void program_free(struct program *p) {
	strv_free(p->argv);
	free(p->envp); /* one allocation (spawn_build_env) */
	free(p->fds);
	free(p->groups);
	*p = (struct program){0};
}
