/* Generations (generation.h). */
#include "generation.h"

#include <fcntl.h>
#include <poll.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "keeper.h"
#include "log.h"
#include "proc.h"
#include "program.h"
#include "util.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* Linux 5.4; glibc before 2.36 does not name it */
#endif

#define OUTPUT_TAG(gid, writable, stream)                                                                              \
	((((((uint64_t)(gid) << 2) | ((uint64_t)(writable) << 1) | (uint64_t)(stream))) << 8) | GEN_TAG_OUTPUT)

/* ---- output pipes (readiness.type log) ---- */

/* With readiness.type log, pipes for the streams it reads: write_fds (the child's stdout and stderr, -1 when not
 * piped) go to the spawn, read_fds to outputs_watch. */
static int outputs_pipes(const struct config *c, int write_fds[2], int read_fds[2]) {
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

/* Takes the read ends. Nothing fails here: a pipe that cannot be watched is logged and its output lost, and the
 * readiness timeout still bounds the start. */
static void outputs_watch(struct evloop *loop, struct generation *g, int read_fds[2]) {
	for (int i = 0; i < 2; i++) {
		if (read_fds[i] < 0)
			continue;
		struct output *o = calloc(1, sizeof(*o));
		if (o) {
			o->fd = read_fds[i];
			output_open(o, i + 1);
		}
		int r = o ? evloop_add(loop, o->fd, EPOLLIN, OUTPUT_TAG(g->id, 0, i)) : -ENOMEM;
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
}

static void output_drop(struct generation *g, unsigned stream) {
	struct output *o = g->outputs[stream];
	/* Closing them also takes them out of the epoll set. */
	close(o->fd);
	output_close(o);
	free(o);
	g->outputs[stream] = NULL;
}

bool generation_output(struct evloop *loop, struct generation *g, unsigned stream, bool writable, const regex_t *re) {
	struct output *o = g->outputs[stream];
	if (!o)
		return false;
	if (writable) {
		/* The target takes bytes again: what was pending goes out, and reading the program resumes. */
		if (!output_flush(o))
			return false;
		evloop_remove(loop, o->out_fd);
		(void)evloop_add(loop, o->fd, EPOLLIN, OUTPUT_TAG(g->id, 0, stream));
	}
	bool blocked;
	int r = output_pump(o, re, &blocked);
	if (r < 0) {
		if (r != -EPIPE)
			log_warning_errno(r, "Failed to read generation %u's %s", g->id, stream ? "stderr" : "stdout");
		output_drop(g, stream);
		return false;
	}
	if (blocked) {
		/* Wait for the target instead of blocking the loop on it; meanwhile the program's pipe fills up and
		 * its writes wait, as they would on the target itself. A target that cannot be watched (a file) never
		 * blocks in the first place. */
		if (o->out_fd < 0 || evloop_add(loop, o->out_fd, EPOLLOUT, OUTPUT_TAG(g->id, 1, stream)) < 0)
			o->pending_off = o->pending_len = 0;
		else
			/* Out of the set, not just without EPOLLIN: a hang-up would still be reported, in a loop. */
			evloop_remove(loop, o->fd);
	}
	return r > 0;
}

/* ---- start, ready, follow (a generation's cgroup: generation-members.c) ---- */

#define CGROUP_TAG(gid) (((uint64_t)(gid) << 8) | GEN_TAG_CGROUP)
#define KEEPER_TAG(gid) (((uint64_t)(gid) << 8) | GEN_TAG_KEEPER)

/* shutdown(2) on a listening socket (servers do it to wake their accepting threads) ends its listening for every
 * process that shares it, baton included: a new generation gets it listening again. */
/* Asked of every listener at once: a getsockopt() each was a system call per listener at every start (1,000 of them
 * at each reload of 1,000 listeners; issue 23). A socket that no longer listens is hung up (tcp_poll() gives
 * EPOLLHUP in TCP_CLOSE); only those, and any poll() cannot answer for, are asked SO_ACCEPTCONN. */
static bool *listeners_hung_up(const struct listener *ls, size_t n) {
	_cleanup_free_ struct pollfd *p = calloc(n ? n : 1, sizeof(*p));
	bool *hung = calloc(n ? n : 1, sizeof(*hung));
	if (!p || !hung) {
		free(hung);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = addr_is_stream(&ls[i].address) ? ls[i].fd : -1};
	if (poll(p, n, 0) < 0) {
		free(hung);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		hung[i] = p[i].revents & (POLLHUP | POLLERR | POLLNVAL);
	return hung;
}

static void listeners_relisten(const struct config *c, const struct listener *ls, size_t n) {
	n = n < c->n_listeners ? n : c->n_listeners;
	/* Without it (no memory, poll() failed), every listener is asked. */
	_cleanup_free_ bool *hung = listeners_hung_up(ls, n);
	for (size_t i = 0; i < n; i++) {
		int on = 0;
		socklen_t len = sizeof(on);
		if (!addr_is_stream(&ls[i].address) || (hung && !hung[i]) ||
		    getsockopt(ls[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || on)
			continue;
		if (listen(ls[i].fd, c->listeners[i].backlog) < 0)
			log_warning_errno(errno,
					  "listener '%s' no longer listens (a program shut it down), and "
					  "listen() again failed",
					  ls[i].name);
		else
			log_warning("listener '%s' no longer listened (a program shut it down): listening again",
				    ls[i].name);
	}
}

static void watch_pidfd(struct evloop *loop, struct generation *g) {
	/* SIGCHLD reaps it anyway: the pidfd is a second path, so a failure here loses nothing. With a keeper the
	 * keeper reaps it and reports its status; its pidfd, never reaped by baton, would stay readable. */
	if (g->pidfd < 0 || g->keeper > 0)
		return;
	int r = evloop_add(loop, g->pidfd, EPOLLIN, ((uint64_t)g->id << 8) | GEN_TAG_PIDFD);
	if (r < 0)
		log_warning_errno(r, "Failed to watch generation %u's pidfd, ignoring", g->id);
}

/* The started child becomes generation spec->id: tracked, its pidfd, cgroup.events and output pipes watched. */
static struct generation *generation_track(struct generation **list, const struct generation_spec *spec, pid_t pid,
					   int pidfd, uint64_t forked_usec, bool in_cgroup, int events_fd,
					   int read_fds[2], pid_t keeper, int keeper_fd) {
	const struct config *c = spec->config;
	struct generation *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	*g = (struct generation){
		.id = spec->id,
		.pid = pid,
		.pidfd = pidfd,
		.state = GEN_STARTING,
		.started_usec = forked_usec,
		.deadline_usec = forked_usec + c->readiness_timeout_usec,
		.watchdog_usec = c->program_watchdog_usec,
		.watchdog_deadline_usec = USEC_INFINITY,
		.readiness = c->readiness_type,
		.config = c,
		.pgid = pid,
		.check_usec = USEC_INFINITY,
		.cgroups = spec->cgroups,
		.in_cgroup = in_cgroup,
		.cgroup_events_fd = events_fd,
		.keeper = keeper,
		.keeper_fd = keeper_fd,
		.processes = -1,
		.memory_bytes = UINT64_MAX,
		.cpu_usec = UINT64_MAX,
		.next = *list,
	};
	int r;
	watch_pidfd(spec->loop, g);
	if (g->keeper_fd >= 0 && (r = evloop_add(spec->loop, g->keeper_fd, EPOLLIN, KEEPER_TAG(g->id))) < 0)
		log_warning_errno(r, "Failed to watch generation %u's keeper, ignoring", g->id);
	/* Its end (the cgroup empty) is an event, not something to poll for. */
	if (g->cgroup_events_fd >= 0 &&
	    (r = evloop_add(spec->loop, g->cgroup_events_fd, EPOLLPRI, CGROUP_TAG(g->id))) < 0)
		log_warning_errno(r, "Failed to watch generation %u's cgroup.events, ignoring", g->id);
	outputs_watch(spec->loop, g, read_fds);
	*list = g;
	return g;
}

int generation_watch(struct evloop *loop, struct generation *g) {
	int r;
	if (g->pidfd >= 0 && g->keeper <= 0 &&
	    (r = evloop_add(loop, g->pidfd, EPOLLIN, ((uint64_t)g->id << 8) | GEN_TAG_PIDFD)) < 0)
		return r;
	if (g->keeper_fd >= 0 && (r = evloop_add(loop, g->keeper_fd, EPOLLIN, KEEPER_TAG(g->id))) < 0)
		return r;
	if (g->cgroup_events_fd >= 0 && (r = evloop_add(loop, g->cgroup_events_fd, EPOLLPRI, CGROUP_TAG(g->id))) < 0)
		return r;
	for (unsigned i = 0; i < 2; i++) {
		struct output *o = g->outputs[i];
		if (!o)
			continue;
		output_open(o, o->target);
		/* What it could not pass on yet goes first: as generation_output() does after a blocked write. */
		if (o->pending_len > 0 && o->out_fd >= 0)
			r = evloop_add(loop, o->out_fd, EPOLLOUT, OUTPUT_TAG(g->id, 1, i));
		else
			r = evloop_add(loop, o->fd, EPOLLIN, OUTPUT_TAG(g->id, 0, i));
		if (r < 0)
			return r;
	}
	return 0;
}

int remnant_watch(struct evloop *loop, struct remnant *rm) {
	int r;
	if (rm->keeper_fd >= 0 && (r = evloop_add(loop, rm->keeper_fd, EPOLLIN, KEEPER_TAG(rm->id))) < 0)
		return r;
	if (rm->cgroup_events_fd < 0)
		return 0;
	return evloop_add(loop, rm->cgroup_events_fd, EPOLLPRI, CGROUP_TAG(rm->id));
}

/* The exec of spec's program, prepared: its fds, environment, credentials. */
static int prepare_program(const struct generation_spec *spec, struct program *ret, char **ret_error) {
	struct program_spec ps = {
		.config = spec->config,
		.generation = spec->id,
		.listeners = spec->listeners,
		.n_listeners = spec->n_listeners,
		.notify_socket = spec->notify_socket,
		.nofile = spec->nofile,
		.take_terminal = spec->take_terminal,
	};
	return program_prepare(&ps, ret, ret_error);
}

/* Forks the program: into its cgroup, or, without cgroups, under a keeper, which is the program's parent: what the
 * generation starts is then the keeper's subtree. */
static int fork_program(const struct generation_spec *spec, const struct spawn_params *params, pid_t *ret_pid,
			int *ret_pidfd, pid_t *ret_keeper, int *ret_keeper_fd, char **ret_error) {
	if (spec->cgroups)
		return spawn_child(params, ret_pid, ret_pidfd, ret_error);
	return keeper_start(params, ret_keeper, ret_keeper_fd, ret_pid, ret_pidfd, ret_error);
}

static void close_pair(const int fds[2]) {
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A started child that cannot be tracked (out of memory) does not run on unsupervised: SIGCHLD reaps it. */
static void kill_untracked_child(pid_t pid, pid_t keeper, int pidfd) {
	kill(pid, SIGKILL);
	if (keeper > 0)
		kill(keeper, SIGKILL);
	if (pidfd >= 0)
		close(pidfd);
}

/* What a start that failed had made for the generation: the read ends of its output pipes, its cgroup. */
static void undo_start(const struct generation_spec *spec, const int read_fds[2], bool *in_cgroup, const char *name) {
	close_pair(read_fds);
	if (*in_cgroup) {
		(void)cgroup_kill(spec->cgroups, name); /* empty, unless the fork succeeded */
		generation_cgroup_drop(spec->cgroups, in_cgroup, NULL, spec->id, false);
	}
}

static void log_started(const struct generation *g, const char *cgroup_name) {
	if (g->keeper > 0)
		log_info("generation %u started (pid %d, its keeper pid %d)", g->id, (int)g->pid, (int)g->keeper);
	else if (g->cgroups)
		log_info("generation %u started (pid %d) in cgroup %s/%s", g->id, (int)g->pid, g->cgroups->path,
			 cgroup_name);
	else
		log_info("generation %u started (pid %d)", g->id, (int)g->pid);
}

int generation_start(struct generation **list, const struct generation_spec *spec, struct generation **ret,
		     char **ret_error) {
	const struct config *c = spec->config;
	struct program p;

	generations_make_room(*list);
	listeners_relisten(c, spec->listeners, spec->n_listeners);
	int r = prepare_program(spec, &p, ret_error);
	if (r < 0)
		return r;

	_cleanup_close_ int events_fd = -1;
	bool in_cgroup = false;
	char name[32], procs[64];
	if (spec->cgroups)
		r = generation_cgroup_join(spec->cgroups, spec->id, false, &in_cgroup, &events_fd, &p.params, name,
					   procs, ret_error);
	if (r < 0) {
		program_free(&p);
		return r;
	}

	int write_fds[2], read_fds[2];
	r = outputs_pipes(c, write_fds, read_fds);
	if (r < 0) {
		*ret_error = strdup_printf("pipe for the program's output: %s", strerror(-r));
		program_free(&p);
		generation_cgroup_drop(spec->cgroups, &in_cgroup, NULL, spec->id, false);
		return r;
	}
	p.params.stdout_fd = write_fds[0];
	p.params.stderr_fd = write_fds[1];

	pid_t pid, keeper = 0;
	int pidfd;
	_cleanup_close_ int keeper_fd = -1;
	/* The generation's clock starts at the fork, not after the exec handshake: a program that waits N ms before
	 * it is ready is then never reported ready in less than N ms, however long baton waited for the exec. */
	uint64_t forked_usec = now_usec();
	r = fork_program(spec, &p.params, &pid, &pidfd, &keeper, &keeper_fd, ret_error);
	program_free(&p);
	close_pair(write_fds);

	struct generation *g = r < 0 ? NULL
				     : generation_track(list, spec, pid, pidfd, forked_usec, in_cgroup, events_fd,
							read_fds, keeper, keeper_fd);
	if (!g) {
		if (r >= 0) {
			kill_untracked_child(pid, keeper, pidfd);
			r = -ENOMEM;
		}
		undo_start(spec, read_fds, &in_cgroup, name);
		return r;
	}
	events_fd = keeper_fd = -1; /* the generation's now */
	log_started(g, name);
	*ret = g;
	return 0;
}

uint64_t generation_ready(struct generation *g, uint64_t now) {
	generation_end_readiness(g);
	g->state = GEN_READY;
	/* now is the clock of the event being dispatched, which may predate the fork of a generation that the same
	 * event started (readiness.type none is ready at once). */
	g->ready_usec = now > g->started_usec ? now : g->started_usec;
	g->deadline_usec = USEC_INFINITY;
	/* The program watchdog runs from the moment it serves: the first WATCHDOG=1 is due one interval later. */
	if (g->watchdog_usec > 0)
		g->watchdog_deadline_usec = g->ready_usec + g->watchdog_usec;
	return g->ready_usec - g->started_usec;
}

void generation_follow(struct evloop *loop, struct generation *g, pid_t pid) {
	if (g->pidfd >= 0)
		close(g->pidfd); /* also leaves the epoll set */
	g->pid = pid;
	/* A daemon that called setsid() leads its own process group, with its workers in it: that group is what a
	 * SIGKILL must reach now (the launcher's group may be empty). */
	pid_t pgid = getpgid(pid);
	if (pgid > 0 && pgid != getpgrp())
		g->pgid = pgid;
	/* Our unreaped child: its pid cannot be reused meanwhile. Without pidfds, SIGCHLD alone. */
	g->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (g->pidfd < 0 && errno != ENOSYS)
		log_debug_errno(errno, "pidfd_open(%d) failed, signalling by pid", (int)pid);
	watch_pidfd(loop, g);
}

void generation_follow_main(struct evloop *loop, struct generation *g, pid_t pid) {
	pid_t old = g->pid;
	/* A keeper holds the old one in its subtree (and reaps it): only without either is it adopted. */
	if (!g->in_cgroup && g->keeper <= 0 && old > 0 && generation_adopt_pid(g, old) < 0)
		log_warning("generation %u: cannot keep track of its old main process %d, ignoring", g->id, (int)old);
	generation_follow(loop, g, pid);
}

bool generation_main_ended_elsewhere(const struct generation *g, int *ret_wait_status) {
	/* With a keeper, the keeper reaps and reports its main process, whoever its parent was. */
	if (g->pid <= 0 || g->pidfd < 0 || g->keeper > 0)
		return false;
	struct pollfd pfd = {.fd = g->pidfd, .events = POLLIN};
	if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & POLLIN))
		return false;
	/* Exited. Baton's own child (also one re-parented to it) is a zombie waitpid() gets: not ended elsewhere. */
	siginfo_t si = {0};
	/* By pidfd: the pid itself may already belong to another process (its parent reaped it). */
	if (waitid(P_PIDFD, (id_t)g->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
		return false;
	/* Its parent has not reaped it yet: /proc still holds its status. Read, then checked through the pidfd that
	 * the pid was still that zombie (not reaped and reused) when read. */
	int status = proc_exit_status(g->pid);
	if (status != WAIT_STATUS_UNKNOWN && syscall(SYS_pidfd_send_signal, g->pidfd, 0, NULL, 0) < 0)
		status = WAIT_STATUS_UNKNOWN;
	*ret_wait_status = status;
	return true;
}

void generation_end_readiness(struct generation *g) {
	if (g->probe_pid > 0) {
		/* Its own process group: a shell probe's children go too. The probe is reaped (and ignored) later. */
		(void)kill(-g->probe_pid, SIGKILL);
		(void)kill(g->probe_pid, SIGKILL);
	}
	/* And its cgroup: what a probe daemonized goes too. */
	char name[32];
	if (g->probe_cgroup)
		(void)cgroup_kill(g->cgroups, generation_cgroup_name(name, g->id, true));
	g->check_usec = USEC_INFINITY;
	g->confirming = false;
}

void generation_free(struct generation *g) {
	if (!g)
		return;
	generation_end_readiness(g);
	if (g->pidfd >= 0)
		close(g->pidfd);
	if (g->keeper_fd >= 0)
		close(g->keeper_fd);
	if (g->cgroups) {
		generation_cgroup_drop(g->cgroups, &g->in_cgroup, &g->cgroup_events_fd, g->id, false);
		generation_cgroup_drop(g->cgroups, &g->probe_cgroup, NULL, g->id, true);
	}
	free(g->adopted);
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
	free(g->status);
	free(g);
}

/* ---- signal, stop, retire, kill ---- */

int generation_signal(const struct generation *g, int sig) {
	/* Without a pidfd (no pidfd_open), the pid is just as safe: only baton reaps its children, so an unreaped
	 * child's pid cannot be reused. */
	if (g->pid <= 0)
		return -ESRCH; /* a daemon's launcher exited and the daemon is not known yet: nothing to signal */
	int r = g->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, g->pidfd, sig, NULL, 0) : kill(g->pid, sig);
	return r < 0 ? -errno : 0;
}

void generation_kill(struct generation *list, struct generation *g, const char *why) {
	generation_end_readiness(g);
	g->state = GEN_KILLED;
	g->deadline_usec = USEC_INFINITY;
	g->watchdog_deadline_usec = USEC_INFINITY;
	if (g->pid <= 0) {
		/* No process (a daemon that never showed up): nothing will be reaped, so the timer ends it now. */
		log_warning("generation %u %s; it has no process left", g->id, why);
		g->deadline_usec = 0;
		/* What its launcher left in its process group (a daemon that did not call setsid()). */
		generation_kill_group(g->pgid);
		generation_kill_strays(list, g);
		return;
	}
	log_warning("generation %u (pid %d) %s, sending SIGKILL", g->id, (int)g->pid, why);
	generation_kill_group(g->pgid);
	int r = generation_signal(g, SIGKILL);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to kill generation %u, ignoring", g->id);
	generation_kill_strays(list, g);
}

void generation_stop(struct generation *list, struct generation *g, const struct config *c, uint64_t now) {
	if (g->state == GEN_STOPPING || g->state == GEN_KILLED)
		return;
	if (g->pid <= 0) {
		generation_kill(list, g, "is told to stop");
		return;
	}
	generation_end_readiness(g);
	int sig = c->stop_signal;
	log_info("stopping generation %u (pid %d) with %s", g->id, (int)g->pid, strempty(signal_name(sig)));
	int r = generation_signal(g, sig);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to signal generation %u, ignoring", g->id);
	g->state = GEN_STOPPING;
	g->deadline_usec = now + c->stop_timeout_usec;
	g->watchdog_deadline_usec = USEC_INFINITY;
}

void generation_retire(struct generation *list, struct generation *g, const struct config *c, uint64_t now) {
	uint64_t drain = c->preload ? c->stop_drain_usec : 0;
	int sig = BATON_DRAIN_SIGNAL;
	/* The signal's default action is to terminate: a program without the shim's handler (statically linked, or
	 * it never bound a mapped address) must not get it. */
	if (drain == 0 || g->state != GEN_READY || proc_catches_signal(g->pid, sig) != 1) {
		if (drain > 0)
			log_info("generation %u (pid %d) does not catch the drain signal (no shim?): stopping it now",
				 g->id, (int)g->pid);
		generation_stop(list, g, c, now);
		return;
	}
	char buf[32];
	log_info("draining generation %u (pid %d) for %s", g->id, (int)g->pid, format_duration(drain, buf));
	/* Workers it forked hold mapped sockets too; they share the process group and the handler. */
	if (kill(-g->pgid, sig) < 0 && errno != ESRCH)
		log_debug_errno(errno, "Failed to signal process group %d", (int)g->pgid);
	(void)generation_signal(g, sig);
	g->state = GEN_DRAINING;
	g->deadline_usec = now + drain;
	g->watchdog_deadline_usec = USEC_INFINITY;
}

void generations_make_room(struct generation *list) {
	while (generations_alive(list) >= GENERATIONS_MAX) {
		struct generation *oldest = NULL;
		for (struct generation *g = list; g; g = g->next)
			if (g->state == GEN_STOPPING || g->state == GEN_DRAINING)
				oldest = g;
		if (!oldest)
			return;
		generation_kill(list, oldest, "is still draining and the generation limit is reached");
	}
}
