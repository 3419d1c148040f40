/* Readiness for programs that do not send READY=1: a probe command (exec), a line of output (log), a pid file naming
 * a live process of the generation (pidfile, which also follows programs that daemonize), a fixed delay, or none.
 * Each check ends in the same EV_READY that a READY=1 gives, so the state machine does not know the difference.
 *
 * What is never offered here: a TCP connect or HTTP request to a listener as a probe. baton holds those sockets, so
 * the kernel's backlog (or the old generation) answers it whether or not the new program works. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "log.h"
#include "spawn.h"
#include "supervisor-internal.h"
#include "util.h"

static void closedirp(DIR **d) {
	if (*d)
		closedir(*d);
}

int drain_signal(void) {
	/* SIGURG: ignored by default, so a process of the generation that has no handler (a wrapper shell, a program
	 * the shim is not loaded into) is not killed by it; the kernel sends it only for TCP urgent data to a socket's
	 * F_SETOWN owner, which servers do not ask for. */
	return SIGURG;
}

static void ready(struct supervisor *s, struct generation *g, const char *how) {
	log_info("generation %u (pid %d): %s", g->id, (int)g->pid, how);
	struct event ev = {.type = EV_READY, .gen = g};
	dispatch(s, &ev);
}

/* ---- log: the program's output ---- */

int readiness_pipes(const struct config *c, int write_fds[2], int read_fds[2]) {
	write_fds[0] = write_fds[1] = read_fds[0] = read_fds[1] = -1;
	if (c->readiness_type != READINESS_LOG)
		return 0;
	for (int i = 0; i < 2; i++) {
		if ((i == 0 && c->readiness_stream == STREAM_STDERR) ||
		    (i == 1 && c->readiness_stream == STREAM_STDOUT))
			continue;
		int p[2];
		/* Both ends above 2 (pipe2 takes the lowest free numbers; baton's 0-2 are open), close-on-exec; the
		 * child gets the write end as its 1 or 2 by dup2, which clears that. */
		if (pipe2(p, O_CLOEXEC) < 0) {
			int r = -errno;
			for (int j = 0; j < i; j++) {
				if (write_fds[j] >= 0)
					close(write_fds[j]);
				if (read_fds[j] >= 0)
					close(read_fds[j]);
				write_fds[j] = read_fds[j] = -1;
			}
			return r;
		}
		(void)fd_nonblock(p[0], true);
		read_fds[i] = p[0];
		write_fds[i] = p[1];
	}
	return 0;
}

/* Output ids in the epoll tags: generation << 2 | writable << 1 | stream. */
#define OUTPUT_ID(gid, writable, stream) (((uint64_t)(gid) << 2) | ((uint64_t)(writable) << 1) | (uint64_t)(stream))

static void output_drop(struct generation *g, unsigned stream) {
	struct output *o = g->outputs[stream];
	/* Closing them also takes them out of the epoll set. */
	close(o->fd);
	output_close(o);
	free(o);
	g->outputs[stream] = NULL;
}

void readiness_output(struct supervisor *s, uint64_t id) {
	unsigned gid = (unsigned)(id >> 2), stream = (unsigned)(id & 1);
	bool writable = id & 2;
	struct generation *g = s->generations;
	while (g && g->id != gid)
		g = g->next;
	if (!g || !g->outputs[stream])
		return;
	struct output *o = g->outputs[stream];
	if (writable) {
		/* The target takes bytes again: what was pending goes out, and reading the program resumes. */
		if (!output_flush(o))
			return;
		(void)loop_output_ctl(s, EPOLL_CTL_DEL, o->out_fd, 0, 0);
		(void)loop_output_ctl(s, EPOLL_CTL_ADD, o->fd, OUTPUT_ID(gid, 0, stream), EPOLLIN);
	}
	bool starting = g->state == GEN_STARTING && g->readiness == READINESS_LOG, blocked;
	int r = output_pump(o, starting ? &g->config->readiness_regex : NULL, &blocked);
	if (r < 0) {
		if (r != -EPIPE)
			log_warning_errno(r, "Failed to read generation %u's %s", g->id, stream ? "stderr" : "stdout");
		output_drop(g, stream);
		return;
	}
	if (blocked) {
		/* Wait for the target instead of blocking the loop on it; meanwhile the program's pipe fills up and
		 * its writes wait, as they would on the target itself. A target that cannot be watched (a file) never
		 * blocks in the first place. */
		if (o->out_fd < 0 ||
		    loop_output_ctl(s, EPOLL_CTL_ADD, o->out_fd, OUTPUT_ID(gid, 1, stream), EPOLLOUT) < 0) {
			o->pending_off = o->pending_len = 0;
		} else
			/* Out of the set, not just without EPOLLIN: a hang-up would still be reported, in a loop. */
			(void)loop_output_ctl(s, EPOLL_CTL_DEL, o->fd, 0, 0);
	}
	if (r > 0 && starting)
		ready(s, g, stream ? "its stderr matched readiness.pattern" : "its stdout matched readiness.pattern");
}

void readiness_free(struct generation *g) {
	readiness_end(g);
	for (unsigned i = 0; i < 2; i++) {
		struct output *o = g->outputs[i];
		if (!o)
			continue;
		/* What it wrote before it exited still goes out, as far as the target takes it now. */
		bool blocked = false;
		while (!blocked && output_pump(o, NULL, &blocked) > 0)
			;
		output_drop(g, i);
	}
}

/* ---- exec: a probe command ---- */

static void probe_kill(struct generation *g) {
	if (g->probe_pid <= 0)
		return;
	/* Its own process group: a shell probe's children go too. The probe is reaped (and ignored) later. */
	(void)kill(-g->probe_pid, SIGKILL);
	(void)kill(g->probe_pid, SIGKILL);
}

static int probe_start(struct supervisor *s, struct generation *g, char **ret_error) {
	const struct config *c = g->config;
	_cleanup_strv_free_ char **envp = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	char pid_var[32];
	snprintf(pid_var, sizeof(pid_var), "BATON_PID=%d", (int)g->pid);
	char *extra[] = {pid_var, NULL};

	extern char **environ;
	struct spawn_env_params ep = {
		.base = environ,
		.overrides = c->environment,
		.generation = g->id,
		.extra = extra,
	};
	int r = spawn_build_env(&ep, &envp);
	if (r < 0)
		return r;
	struct spawn_params sp = {
		.argv = c->readiness_command,
		.envp = envp,
		.working_directory = c->working_directory,
		.stdin_fd = -1,
		.stdout_fd = -1,
		.stderr_fd = -1,
		.parent_death_signal = SIGKILL,
		.nofile = &s->options.nofile,
	};
	if (c->user || c->group) {
		r = spawn_resolve_credentials(c->user, c->group, &sp, &groups, ret_error);
		if (r < 0)
			return r;
	}
	pid_t pid;
	int pidfd;
	r = spawn_child(&sp, &pid, &pidfd, ret_error);
	if (r < 0)
		return r;
	/* Reaped through SIGCHLD like any other child; no pidfd is needed. */
	if (pidfd >= 0)
		close(pidfd);
	g->probe_pid = pid;
	log_debug("generation %u: readiness probe started (pid %d)", g->id, (int)pid);
	return 0;
}

bool readiness_reaped(struct supervisor *s, pid_t pid, int wait_status) {
	struct generation *g = s->generations;
	while (g && g->probe_pid != pid)
		g = g->next;
	if (!g)
		return false;
	g->probe_pid = 0;
	if (g->state != GEN_STARTING)
		return true;
	if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
		ready(s, g, "readiness.command exited 0");
		return true;
	}
	char buf[64];
	log_debug("generation %u: readiness probe %s; next one in %" PRIu64 " ms", g->id,
		  describe_exit(wait_status, buf), g->config->readiness_interval_usec / USEC_PER_MSEC);
	g->check_usec = now_usec() + g->config->readiness_interval_usec;
	return true;
}

/* ---- pidfile: a live process of this generation, followed from then on ---- */

/* The pid in the file: decimal digits, optionally surrounded by white space. 0 when there is none (yet). */
static pid_t read_pid_file(const char *path) {
	char buf[64];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = buf + strspn(buf, " \t\n");
	size_t len = strspn(p, "0123456789");
	if (len == 0 || len > 9 || p[len + strspn(p + len, " \t\n")] != '\0')
		return 0; /* half-written, or not a pid at all: the next check reads it again */
	p[len] = '\0';
	uint64_t v;
	if (parse_uint64(p, &v) < 0 || v < 2)
		return 0;
	return (pid_t)v;
}

/* Whether pid may become g's main process: g's own, or an orphan that baton inherited as the subreaper and that no
 * other generation or probe claims. A pid file left by another generation (or another baton) names neither. Only
 * baton's own children qualify, because only those can be reaped and their exit seen. */
static bool pid_belongs(struct supervisor *s, struct generation *g, pid_t pid) {
	if (pid == g->pid)
		return true;
	if (proc_parent_of(pid) != getpid())
		return false;
	for (struct generation *o = s->generations; o; o = o->next)
		if (o->pid == pid || o->probe_pid == pid)
			return false;
	/* An orphan left by another generation (one discarded while its daemon was still starting) carries that
	 * generation's number; a process that rewrote its environment shows none, and is taken. */
	unsigned gen = proc_generation_of(pid);
	return gen == 0 || gen == g->id;
}

void readiness_kill_strays(struct supervisor *s, struct generation *g) {
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	if (!d)
		return;
	pid_t self = getpid();
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t v;
		if (parse_uint64(de->d_name, &v) < 0 || v > INT32_MAX)
			continue;
		pid_t pid = (pid_t)v;
		if (proc_parent_of(pid) != self || proc_generation_of(pid) != g->id)
			continue;
		bool claimed = false;
		for (struct generation *o = s->generations; o && !claimed; o = o->next)
			claimed = (o != g && o->pid == pid) || o->probe_pid == pid;
		if (claimed)
			continue;
		log_warning("generation %u: killing pid %d, which it left behind", g->id, (int)pid);
		pid_t pgid = getpgid(pid);
		if (pgid > 0 && pgid != getpgrp())
			(void)kill(-pgid, SIGKILL);
		(void)kill(pid, SIGKILL);
	}
}

static void check_pid_file(struct supervisor *s, struct generation *g) {
	const char *path = g->config->readiness_pid_file;
	pid_t pid = read_pid_file(path);
	if (pid > 0 && kill(pid, 0) == 0 && pid_belongs(s, g, pid)) {
		if (pid != g->pid) {
			log_info("generation %u: following pid %d from %s%s", g->id, (int)pid, path,
				 g->pid ? "" : " (the program daemonized)");
			if (g->pidfd >= 0)
				close(g->pidfd); /* also leaves the epoll set */
			g->pid = pid;
			/* A daemon that called setsid() leads its own process group, with its workers in it: that
			 * group is what a SIGKILL must reach now (the launcher's group may be empty). */
			pid_t pgid = getpgid(pid);
			if (pgid > 0 && pgid != getpgrp())
				g->pgid = pgid;
			/* Our unreaped child: its pid cannot be reused meanwhile. Without pidfds, SIGCHLD alone. */
			g->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
			if (g->pidfd < 0 && errno != ENOSYS)
				log_debug_errno(errno, "pidfd_open(%d) failed, signalling by pid", (int)pid);
			loop_watch_generation(s, g);
		}
		char how[PATH_MAX + 32];
		snprintf(how, sizeof(how), "%s names pid %d", path, (int)pid);
		ready(s, g, how);
		return;
	}
	g->check_usec = now_usec() + g->config->readiness_interval_usec;
}

bool readiness_launcher_exited(struct supervisor *s, struct generation *g, int wait_status) {
	if (g->readiness != READINESS_PIDFILE || g->state != GEN_STARTING || !WIFEXITED(wait_status) ||
	    WEXITSTATUS(wait_status) != 0)
		return false;
	log_info("generation %u: pid %d exited with status 0 before %s named a live process; waiting for its daemon",
		 g->id, (int)g->pid, g->config->readiness_pid_file);
	if (g->pidfd >= 0)
		close(g->pidfd);
	g->pidfd = -1;
	g->pid = 0;
	g->launcher_status = wait_status;
	g->check_usec = now_usec();
	return true;
}

/* ---- all types ---- */

void readiness_begin(struct supervisor *s, struct generation *g, int read_fds[2]) {
	const struct config *c = g->config;
	uint64_t now = now_usec();

	for (int i = 0; i < 2; i++) {
		if (read_fds[i] < 0)
			continue;
		struct output *o = calloc(1, sizeof(*o));
		if (o) {
			o->fd = read_fds[i];
			output_open(o, i + 1);
		}
		int r = o ? loop_output_ctl(s, EPOLL_CTL_ADD, o->fd, OUTPUT_ID(g->id, 0, i), EPOLLIN) : -ENOMEM;
		if (r < 0) {
			log_warning_errno(r, "Failed to watch generation %u's %s; its output is lost", g->id,
					  i ? "stderr" : "stdout");
			close(read_fds[i]);
			if (o)
				output_close(o);
			free(o);
			continue;
		}
		g->outputs[i] = o;
	}

	switch (g->readiness) {
	case READINESS_EXEC:
	case READINESS_PIDFILE:
	case READINESS_NONE:
		g->check_usec = now;
		break;
	case READINESS_DELAY:
		g->check_usec = now + c->readiness_delay_usec;
		break;
	default:
		g->check_usec = USEC_INFINITY;
		break;
	}
}

void readiness_end(struct generation *g) {
	probe_kill(g);
	g->check_usec = USEC_INFINITY;
}

void readiness_check(struct supervisor *s, struct generation *g) {
	_cleanup_free_ char *error = NULL;
	g->check_usec = USEC_INFINITY;
	if (g->state != GEN_STARTING)
		return;
	switch (g->readiness) {
	case READINESS_NONE:
		ready(s, g, "readiness.type is none");
		break;
	case READINESS_DELAY:
		ready(s, g, "readiness.delay has passed");
		break;
	case READINESS_PIDFILE:
		check_pid_file(s, g);
		break;
	case READINESS_EXEC:
		if (g->probe_pid > 0)
			break;
		int r = probe_start(s, g, &error);
		if (r < 0) {
			log_warning("generation %u: could not run readiness.command: %s; trying again in %" PRIu64
				    " ms",
				    g->id, error ? error : strerror(-r),
				    g->config->readiness_interval_usec / USEC_PER_MSEC);
			g->check_usec = now_usec() + g->config->readiness_interval_usec;
		}
		break;
	default:
		break;
	}
}
