/* The supervisor's lifecycle. Everything that happens is an event (a generation became ready, exited, missed a
 * deadline; a reload or a stop was asked for; a restart is due), and what baton does about it is looked up in
 * transitions[state][event]: reading that table tells the whole lifecycle. The event sources (loop.c) only turn
 * file descriptors into events. */
#include "supervisor-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "compat.h"
#include "log.h"
#include "notify.h"
#include "spawn.h"
#include "util.h"

static const char *const sup_state_names[_SUP_STATE_MAX] = {
	[SUP_STARTING] = "starting",  [SUP_RUNNING] = "running",   [SUP_RELOADING] = "reloading",
	[SUP_BACKOFF] = "restarting", [SUP_STOPPING] = "stopping", [SUP_DONE] = "done",
};

static const char *const gen_state_names[_GEN_STATE_MAX] = {
	[GEN_STARTING] = "starting", [GEN_READY] = "ready",   [GEN_DRAINING] = "draining",
	[GEN_STOPPING] = "stopping", [GEN_KILLED] = "killed",
};

static const char *const event_names[_EV_MAX] = {
	[EV_READY] = "ready",
	[EV_EXITED] = "exited",
	[EV_READY_TIMEOUT] = "readiness timeout",
	[EV_STOP_TIMEOUT] = "stop timeout",
	[EV_STOP_REQUEST] = "stop request",
	[EV_RELOAD_REQUEST] = "reload request",
	[EV_RESTART_DUE] = "restart due",
	[EV_WATCHDOG] = "watchdog",
};

const char *sup_state_to_string(enum sup_state st) {
	return st < _SUP_STATE_MAX ? sup_state_names[st] : "?";
}

const char *gen_state_to_string(enum gen_state st) {
	return st < _GEN_STATE_MAX ? gen_state_names[st] : "?";
}

/* ---- small helpers ---- */

int generation_signal(const struct generation *g, int sig) {
	/* Without a pidfd (no pidfd_open), the pid is just as safe: only baton reaps its children, so an unreaped
	 * child's pid cannot be reused. */
	if (g->pid <= 0)
		return -ESRCH; /* a daemon's launcher exited and the daemon is not known yet: nothing to signal */
	int r = g->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, g->pidfd, sig, NULL, 0) : kill(g->pid, sig);
	return r < 0 ? -errno : 0;
}

/* The contract's exit status for a wait status: the exit code, or 128+N for signal N (as shells report it). */
static int exit_code_of(int wait_status) {
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return EXIT_SYSTEM;
}

const char *describe_exit(int wait_status, char buf[static 64]) {
	if (WIFEXITED(wait_status))
		snprintf(buf, 64, "exited with status %d", WEXITSTATUS(wait_status));
	else if (WIFSIGNALED(wait_status)) {
		const char *name = signal_name(WTERMSIG(wait_status));
		if (name)
			snprintf(buf, 64, "was killed by %s", name);
		else
			snprintf(buf, 64, "was killed by signal %d", WTERMSIG(wait_status));
	} else
		snprintf(buf, 64, "ended with wait status 0x%x", (unsigned)wait_status);
	return buf;
}

struct generation *generation_by_pid(struct supervisor *s, pid_t pid) {
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->pid == pid)
			return g;
	return NULL;
}

static size_t generations_alive(struct supervisor *s) {
	size_t n = 0;
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->state != GEN_KILLED)
			n++;
	return n;
}

/* ---- generations ---- */

void generation_free(struct generation *g) {
	if (!g)
		return;
	if (g->pidfd >= 0)
		close(g->pidfd);
	readiness_free(g);
	free(g->status);
	free(g);
}

void generation_unlink(struct supervisor *s, struct generation *g) {
	for (struct generation **p = &s->generations; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			g->next = NULL;
			return;
		}
}

/* SIGKILL to the generation's whole process group: workers it forked must not outlive it. */
static void generation_kill(struct supervisor *s, struct generation *g, const char *why) {
	readiness_end(g);
	g->state = GEN_KILLED;
	g->deadline_usec = USEC_INFINITY;
	g->watchdog_deadline_usec = USEC_INFINITY;
	if (g->pid <= 0) {
		/* No process (a daemon that never showed up): nothing will be reaped, so the timer ends it now. */
		log_warning("generation %u %s; it has no process left", g->id, why);
		g->deadline_usec = 0;
		/* What its launcher left in its process group (a daemon that did not call setsid()). */
		if (kill(-g->pgid, SIGKILL) < 0 && errno != ESRCH)
			log_warning_errno(errno, "Failed to kill process group %d, ignoring", (int)g->pgid);
		readiness_kill_strays(s, g);
		return;
	}
	log_warning("generation %u (pid %d) %s, sending SIGKILL", g->id, (int)g->pid, why);
	if (kill(-g->pgid, SIGKILL) < 0 && errno != ESRCH)
		log_warning_errno(errno, "Failed to kill process group %d, ignoring", (int)g->pgid);
	int r = generation_signal(g, SIGKILL);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to kill generation %u, ignoring", g->id);
	readiness_kill_strays(s, g);
}

/* Tells g to stop: stop.signal now, SIGKILL at the deadline. */
static void generation_stop(struct supervisor *s, struct generation *g) {
	if (g->state == GEN_STOPPING || g->state == GEN_KILLED)
		return;
	if (g->pid <= 0) {
		generation_kill(s, g, "is told to stop");
		return;
	}
	readiness_end(g);
	int sig = s->config->stop_signal;
	log_info("stopping generation %u (pid %d) with %s", g->id, (int)g->pid, strempty(signal_name(sig)));
	int r = generation_signal(g, sig);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to signal generation %u, ignoring", g->id);
	g->state = GEN_STOPPING;
	g->deadline_usec = now_usec() + s->config->stop_timeout_usec;
	g->watchdog_deadline_usec = USEC_INFINITY;
}

/* Retires a replaced generation. With stop.drain (and the preload shim catching the drain signal) it first stops
 * accepting and finishes what it has, for stop.drain; then, or right away, generation_stop(). */
static void generation_retire(struct supervisor *s, struct generation *g) {
	uint64_t drain = s->config->preload ? s->config->stop_drain_usec : 0;
	int sig = drain_signal();
	/* The signal's default action is to terminate: a program without the shim's handler (statically linked, or
	 * it never bound a mapped address) must not get it. */
	if (drain == 0 || g->state != GEN_READY || proc_catches_signal(g->pid, sig) != 1) {
		if (drain > 0)
			log_info("generation %u (pid %d) does not catch the drain signal (no shim?): stopping it now",
				 g->id, (int)g->pid);
		generation_stop(s, g);
		return;
	}
	char buf[32];
	log_info("draining generation %u (pid %d) for %s", g->id, (int)g->pid, format_duration(drain, buf));
	/* Workers it forked hold mapped sockets too; they share the process group and the handler. */
	if (kill(-g->pgid, sig) < 0 && errno != ESRCH)
		log_debug_errno(errno, "Failed to signal process group %d", (int)g->pgid);
	(void)generation_signal(g, sig);
	g->state = GEN_DRAINING;
	g->deadline_usec = now_usec() + drain;
	g->watchdog_deadline_usec = USEC_INFINITY;
}

/* Keeps the number of live generations under GENERATIONS_MAX before another one starts: old generations that are
 * still draining are killed, oldest first. */
static void generations_make_room(struct supervisor *s) {
	while (generations_alive(s) >= GENERATIONS_MAX) {
		struct generation *oldest = NULL;
		for (struct generation *g = s->generations; g; g = g->next)
			if (g->state == GEN_STOPPING || g->state == GEN_DRAINING)
				oldest = g;
		if (!oldest)
			return;
		generation_kill(s, oldest, "is still draining and the generation limit is reached");
	}
}

/* Starts generation N+1 of config c on the listeners ls. On failure nothing is left running and *ret_error says
 * why. */
static int generation_start(struct supervisor *s, const struct config *c, const struct listener *ls, size_t n,
			    struct generation **ret, char **ret_error) {
	unsigned id = s->last_generation + 1;
	_cleanup_free_ char **names = NULL;
	_cleanup_free_ int *fds = NULL;
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_strv_free_ char **envp = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *bad_name = NULL;
	_cleanup_strv_free_ char **extra = NULL;
	int r;

	generations_make_room(s);

	if (n > 0) {
		names = calloc(n + 1, sizeof(char *));
		fds = calloc(n, sizeof(int));
		if (!names || !fds)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			names[i] = ls[i].name;
			fds[i] = ls[i].fd;
		}
	}

	/* shutdown(2) on a listening socket (servers do it to wake their accepting threads) ends its listening for
	 * every process that shares it, baton included: a new generation gets it listening again. */
	for (size_t i = 0; i < n && i < c->n_listeners; i++) {
		int on = 0;
		socklen_t len = sizeof(on);
		if (!addr_is_stream(&ls[i].address) || getsockopt(ls[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 ||
		    on)
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

	r = spawn_substitute_argv(c->command, names, n, &argv, &bad_name);
	if (r == -ENOENT) {
		*ret_error = strdup_printf("program.command: {fd:%s} names no listener", bad_name);
		return r;
	}
	if (r < 0) {
		*ret_error = strdup_printf("program.command: a {fd:NAME} placeholder is not closed");
		return r;
	}

	extern char **environ;
	const char *preload = NULL;
	if (c->preload) {
		preload = getenv("BATON_PRELOAD_LIBRARY");
		if (!preload || !*preload)
			preload = BATON_PRELOAD_PATH;
		if (access(preload, R_OK) < 0) {
			*ret_error = strdup_printf("program.preload: %s: %s", preload, strerror(errno));
			return -errno;
		}
		/* The PATH that exec will search: program.environment's, else baton's. */
		const char *path = strv_env_get(c->environment, "PATH");
		if (!path)
			path = getenv("PATH");
		const char *why = spawn_preload_problem(c->command[0], path);
		if (why)
			log_warning("program.preload: %s: %s; it runs unshimmed, so it binds its own sockets (and "
				    "fails to where baton holds the address) unless it reads LISTEN_FDS",
				    c->command[0], why);
	}
	r = compat_env(c, id, preload, drain_signal(), environ, &extra);
	if (r < 0)
		return r;

	struct spawn_env_params ep = {
		.base = environ,
		.overrides = c->environment,
		.names = names,
		.n_fds = n,
		.notify_socket = s->notify_path,
		.generation = id,
		.watchdog_usec = c->program_watchdog_usec,
		.extra = extra,
	};
	r = spawn_build_env(&ep, &envp);
	if (r < 0)
		return r;

	struct spawn_params sp = {
		.argv = argv,
		.envp = envp,
		.fds = fds,
		.n_fds = n,
		.working_directory = c->working_directory,
		.stdin_fd = -1,
		.stdout_fd = -1,
		.stderr_fd = -1,
		/* Outside systemd nothing else would stop a child whose supervisor was SIGKILLed (under systemd the
		 * cgroup is killed anyway); the stop signal lets it finish its requests. */
		.parent_death_signal = c->stop_signal,
		.nofile = &s->options.nofile,
	};
	if (c->user || c->group) {
		r = spawn_resolve_credentials(c->user, c->group, &sp, &groups, ret_error);
		if (r < 0)
			return r;
	}

	for (size_t i = 0; c->stdin_listener && i < n; i++)
		if (streq(ls[i].name, c->stdin_listener))
			sp.stdin_fd = ls[i].fd;

	int write_fds[2], read_fds[2];
	r = readiness_pipes(c, write_fds, read_fds);
	if (r < 0) {
		*ret_error = strdup_printf("pipe for the program's output: %s", strerror(-r));
		return r;
	}
	sp.stdout_fd = write_fds[0];
	sp.stderr_fd = write_fds[1];

	pid_t pid;
	int pidfd;
	/* The generation's clock starts at the fork, not after the exec handshake: a program that waits N ms before
	 * it is ready is then never reported ready in less than N ms, however long baton waited for the exec. */
	uint64_t forked_usec = now_usec();
	r = spawn_child(&sp, &pid, &pidfd, ret_error);
	for (int i = 0; i < 2; i++)
		if (write_fds[i] >= 0)
			close(write_fds[i]);
	if (r < 0) {
		for (int i = 0; i < 2; i++)
			if (read_fds[i] >= 0)
				close(read_fds[i]);
		return r;
	}

	struct generation *g = calloc(1, sizeof(*g));
	if (!g) {
		/* Cannot track it: do not leave it running unsupervised (SIGCHLD reaps it). */
		kill(pid, SIGKILL);
		if (pidfd >= 0)
			close(pidfd);
		for (int i = 0; i < 2; i++)
			if (read_fds[i] >= 0)
				close(read_fds[i]);
		return -ENOMEM;
	}
	*g = (struct generation){
		.id = id,
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
		.next = s->generations,
	};
	loop_watch_generation(s, g);
	s->generations = g;
	s->last_generation = id;
	readiness_begin(s, g, read_fds);

	log_info("generation %u started (pid %d)", id, (int)pid);
	*ret = g;
	return 0;
}

/* Marks g ready and returns how long it took. */
static uint64_t generation_ready(struct generation *g) {
	readiness_end(g);
	g->state = GEN_READY;
	g->ready_usec = now_usec();
	g->deadline_usec = USEC_INFINITY;
	/* The program watchdog runs from the moment it serves: the first WATCHDOG=1 is due one interval later. */
	if (g->watchdog_usec > 0)
		g->watchdog_deadline_usec = g->ready_usec + g->watchdog_usec;
	return g->ready_usec - g->started_usec;
}

/* READY=1 upstream with the serving generation's own status, or baton's words for it. */
static void upstream_ready(struct supervisor *s) {
	struct generation *g = s->current;
	if (g && g->status)
		notify_upstreamf("READY=1\nSTATUS=%s", g->status);
	else if (g)
		notify_upstreamf("READY=1\nSTATUS=generation %u ready (pid %d)", g->id, (int)g->pid);
	else
		notify_upstream("READY=1\nSTATUS=no generation running");
}

/* ---- listeners across reloads ---- */

/* Opens the listener set of a new config: a listener whose address baton already holds gets a duplicate of that very
 * socket (so it never closes, and queued connections stay queued); others are bound anew. */
static int listeners_for_reload(struct supervisor *s, const struct config *c, struct listener **ret, char **ret_error) {
	struct listener *ls = calloc(c->n_listeners ? c->n_listeners : 1, sizeof(struct listener));
	if (!ls)
		return -ENOMEM;
	size_t n = 0;
	int r = 0;

	for (; n < c->n_listeners; n++) {
		const struct listener_config *lc = &c->listeners[n];
		struct listener *l = &ls[n];
		char abuf[ADDR_FORMAT_MAX];
		const struct listener *old = NULL;
		for (size_t j = 0; j < s->n_listeners && !old; j++)
			if (addr_equal(&s->listeners[j].address, &lc->address))
				old = &s->listeners[j];

		l->name = strdup(lc->name);
		l->address = lc->address;
		l->fd = -1;
		if (!l->name) {
			r = -ENOMEM;
			n++;
			break;
		}
		if (old) {
			l->fd = fcntl(old->fd, F_DUPFD_CLOEXEC, 3);
			if (l->fd < 0) {
				r = -errno;
				*ret_error = strdup_printf("listener '%s' (%s): dup: %s", lc->name,
							   addr_format(&lc->address, abuf), strerror(errno));
				n++;
				break;
			}
			l->inherited = old->inherited;
			continue;
		}
		if (lc->inherit == INHERIT_REQUIRED) {
			r = -ENXIO;
			*ret_error =
				strdup_printf("listener '%s' (%s): inherit is required, but inherited sockets are only "
					      "taken when baton starts",
					      lc->name, addr_format(&lc->address, abuf));
			n++;
			break;
		}
		const char *why = NULL;
		r = sock_bind(lc, &l->fd, &why);
		if (r < 0) {
			*ret_error = strdup_printf("listener '%s' (%s): %s: %s", lc->name,
						   addr_format(&lc->address, abuf), why ? why : "bind", strerror(-r));
			n++;
			break;
		}
		l->created_path = addr_is_unix(&lc->address) && !lc->address.abstract;
	}
	if (r < 0) {
		listeners_free(ls, n);
		return r;
	}
	*ret = ls;
	return 0;
}

/* The new listener set becomes the supervisor's. Unix socket files baton created move with the listener that keeps
 * them, so freeing the old set removes only the files of listeners that are gone. */
static bool listener_in(const struct listener *l, const struct listener *set, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (streq(l->name, set[i].name) && addr_equal(&l->address, &set[i].address))
			return true;
	return false;
}

void fd_store_add(const struct listener *l) {
	char text[LISTENER_NAME_MAX + 64];
	/* FDPOLL=0: a listening socket is never "hung up"; systemd must not watch it and drop it. */
	snprintf(text, sizeof(text), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", l->name);
	notify_upstream_with_fds(text, &l->fd, 1);
}

/* The fd store follows the listener set: entries of listeners that are gone are removed first (FDSTOREREMOVE goes
 * by name, and a renamed listener may keep its socket), then the new ones are added. systemd ignores a socket it
 * holds already, so storing an unchanged one again would be harmless, but it is skipped. */
static void fd_store_update(const struct listener *old, size_t n_old, const struct listener *ls, size_t n) {
	for (size_t i = 0; i < n_old; i++)
		if (!listener_in(&old[i], ls, n))
			notify_upstreamf("FDSTOREREMOVE=1\nFDNAME=%s", old[i].name);
	for (size_t i = 0; i < n; i++)
		if (!listener_in(&ls[i], old, n_old))
			fd_store_add(&ls[i]);
}

static void listeners_commit(struct supervisor *s, struct listener *ls, size_t n) {
	if (s->fd_store)
		fd_store_update(s->listeners, s->n_listeners, ls, n);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s->n_listeners; j++)
			if (addr_equal(&ls[i].address, &s->listeners[j].address) && s->listeners[j].created_path) {
				ls[i].created_path = true;
				s->listeners[j].created_path = false;
			}
	listeners_free(s->listeners, s->n_listeners);
	s->listeners = ls;
	s->n_listeners = n;
}

static bool listeners_same(const struct supervisor *s, const struct config *c) {
	if (s->n_listeners != c->n_listeners)
		return false;
	for (size_t i = 0; i < c->n_listeners; i++)
		if (!streq(s->listeners[i].name, c->listeners[i].name) ||
		    !addr_equal(&s->listeners[i].address, &c->listeners[i].address))
			return false;
	return true;
}

/* ---- transitions ---- */

static void done(struct supervisor *s, int exit_code) {
	s->state = SUP_DONE;
	s->exit_code = exit_code;
}

/* Stops every generation; baton exits with exit_code once they are all gone. */
static void begin_stop(struct supervisor *s, int exit_code) {
	s->state = SUP_STOPPING;
	s->exit_code = exit_code;
	s->reload_queued = false;
	loop_reload_finished(s, s->last_reload_seq + 1, false, "baton is stopping");
	notify_upstream("STOPPING=1\nSTATUS=stopping");
	for (struct generation *g = s->generations; g; g = g->next)
		generation_stop(s, g);
	if (!s->generations)
		done(s, exit_code);
}

static void on_stop_request(struct supervisor *s, const struct event *ev) {
	log_info("%s, stopping", ev->why ? ev->why : "stop requested");
	begin_stop(s, 0);
}

static void on_stop_request_again(struct supervisor *s, const struct event *ev) {
	log_info("%s while stopping; still waiting for %zu generation(s)", ev->why ? ev->why : "stop requested",
		 generations_alive(s));
}

static void on_stop_timeout(struct supervisor *s, const struct event *ev) {
	if (ev->gen->state == GEN_DRAINING) {
		generation_stop(s, ev->gen);
		return;
	}
	generation_kill(s, ev->gen, "did not stop within stop.timeout");
}

static void start_queued_reload(struct supervisor *s);

/* Schedules the next generation after the current one died: restart.delay doubled for each consecutive failure, up
 * to restart.max-delay. A generation that stayed ready for restart.max-delay had recovered: the count starts over. */
static void schedule_restart(struct supervisor *s, const char *why) {
	const struct config *c = s->config;
	s->failures++;
	uint64_t delay = c->restart_delay_usec;
	for (unsigned i = 1; i < s->failures && delay < c->restart_max_delay_usec; i++)
		delay *= 2;
	if (delay > c->restart_max_delay_usec)
		delay = c->restart_max_delay_usec;
	s->current = NULL;
	s->state = SUP_BACKOFF;
	s->restart_usec = now_usec() + delay;

	char buf[32];
	log_notice("%s; restarting in %s (failure %u in a row)", why, format_duration(delay, buf), s->failures);
	notify_upstreamf("STATUS=restarting in %s: %s", buf, why);
	start_queued_reload(s);
}

/* The current generation ended on its own (a crash, or a clean exit). restart.policy decides. */
static void current_ended(struct supervisor *s, struct generation *g, int wait_status) {
	char buf[64], why[128];
	const char *what = describe_exit(wait_status, buf);
	int code = exit_code_of(wait_status);
	bool clean = WIFEXITED(wait_status) && code == 0;
	enum restart_policy policy = s->config->restart_policy;

	snprintf(why, sizeof(why), "generation %u (pid %d) %s", g->id, (int)g->pid, what);
	if (policy == RESTART_NEVER || (policy == RESTART_ON_FAILURE && clean)) {
		log_notice("%s; restart.policy is %s, exiting", why, restart_policy_to_string(policy));
		notify_upstreamf("STATUS=program %s", what);
		begin_stop(s, code);
		return;
	}
	/* A generation that stayed up long enough had recovered from earlier failures. */
	if (g->ready_usec && now_usec() - g->ready_usec >= s->config->restart_max_delay_usec)
		s->failures = 0;
	schedule_restart(s, why);
}

/* Entering SUP_RUNNING: the current generation is ready. */
static void now_running(struct supervisor *s) {
	s->state = SUP_RUNNING;
	start_queued_reload(s);
}

static void on_started_ready(struct supervisor *s, const struct event *ev) {
	struct generation *g = ev->gen;
	if (g != s->current) {
		log_debug("generation %u sent READY=1 but is not current, ignoring", g->id);
		return;
	}
	uint64_t took = generation_ready(g);
	log_info("generation %u is ready (%" PRIu64 " ms after start)", g->id, took / USEC_PER_MSEC);
	s->ever_ready = true;
	upstream_ready(s);
	now_running(s);
}

static void on_started_exited(struct supervisor *s, const struct event *ev) {
	char buf[64];
	struct generation *g = ev->gen;
	if (g != s->current) {
		log_info("generation %u (pid %d) %s", g->id, (int)g->pid, describe_exit(ev->wait_status, buf));
		return;
	}
	if (s->ever_ready) {
		/* It had been serving before: this is a crash loop, not a failed start. */
		char why[128];
		snprintf(why, sizeof(why), "generation %u (pid %d) %s before it was ready", g->id, (int)g->pid,
			 describe_exit(ev->wait_status, buf));
		schedule_restart(s, why);
		return;
	}
	/* The first start failed: baton ends with the program's status, so systemd sees the start fail. */
	log_error("generation %u (pid %d) %s before it was ready", g->id, (int)g->pid,
		  describe_exit(ev->wait_status, buf));
	notify_upstreamf("STATUS=program %s before it was ready", describe_exit(ev->wait_status, buf));
	s->current = NULL;
	begin_stop(s, exit_code_of(ev->wait_status));
}

static void on_started_timeout(struct supervisor *s, const struct event *ev) {
	char buf[32], why[128];
	struct generation *g = ev->gen;
	snprintf(why, sizeof(why), "was not ready within %s (readiness.timeout)",
		 format_duration(s->config->readiness_timeout_usec, buf));
	if (g != s->current)
		return;
	/* Stopped, not killed: it may have accepted connections already, and can finish them. */
	log_warning("generation %u (pid %d) %s", g->id, (int)g->pid, why);
	generation_stop(s, g);
	if (s->ever_ready) {
		char msg[160];
		snprintf(msg, sizeof(msg), "generation %u %s", g->id, why);
		schedule_restart(s, msg);
		return;
	}
	notify_upstreamf("STATUS=program %s", why);
	s->current = NULL;
	begin_stop(s, EXIT_START);
}

/* A ready generation stopped sending WATCHDOG=1 (or asked for this with WATCHDOG=trigger): it is hung. It is killed;
 * its exit is a crash like any other, so restart.policy decides what comes next, and the unit stays up. */
static void on_watchdog(struct supervisor *s, const struct event *ev) {
	struct generation *g = ev->gen;
	char buf[32], why[96];
	if (g->state != GEN_READY)
		return;
	snprintf(why, sizeof(why), "missed its watchdog (no WATCHDOG=1 within %s)",
		 format_duration(g->watchdog_usec, buf));
	generation_kill(s, g, ev->why ? ev->why : why);
}

static void on_running_ready(struct supervisor *s, const struct event *ev) {
	log_debug("generation %u sent READY=1 again, ignoring", ev->gen->id);
}

/* A generation that is not the current one ended: an old one finished draining, or a failed new one was reaped. */
static void on_other_exited(struct supervisor *s, const struct event *ev) {
	char buf[64];
	log_info("generation %u (pid %d) %s", ev->gen->id, (int)ev->gen->pid, describe_exit(ev->wait_status, buf));
}

static void on_running_exited(struct supervisor *s, const struct event *ev) {
	if (ev->gen == s->current)
		current_ended(s, ev->gen, ev->wait_status);
	else
		on_other_exited(s, ev);
}

static void on_restart_due(struct supervisor *s, const struct event *ev) {
	_cleanup_free_ char *error = NULL;
	struct generation *g;
	s->restarts++;
	int r = generation_start(s, s->config, s->listeners, s->n_listeners, &g, &error);
	if (r < 0) {
		char why[256];
		snprintf(why, sizeof(why), "failed to start the program: %s", error ? error : strerror(-r));
		log_error("%s", why);
		schedule_restart(s, why);
		return;
	}
	notify_upstreamf("STATUS=restarted: starting generation %u (pid %d)", g->id, (int)g->pid);
	s->current = g;
	s->state = SUP_STARTING;
}

/* A reload asked for while baton cannot start one now runs once the current step is done; any number of requests
 * in the meantime make one reload. */
static void on_reload_queue(struct supervisor *s, const struct event *ev) {
	log_info("%s while %s: it runs as reload %" PRIu64 " once this is done", ev->why ? ev->why : "reload requested",
		 sup_state_names[s->state], s->last_reload_seq + 1);
	s->reload_queued = true;
}

static void on_reload_refused(struct supervisor *s, const struct event *ev) {
	log_info("%s while stopping, ignoring", ev->why ? ev->why : "reload requested");
	loop_reload_finished(s, s->last_reload_seq + 1, false, "baton is stopping");
}

/* Ends the reload in progress (or one that could not start) and reports it. */
static void reload_finish(struct supervisor *s, bool ok, const char *message) {
	struct reload *rl = &s->reload;
	uint64_t now = now_usec();
	free(s->last_reload.message);
	s->last_reload = (struct reload_result){
		.seq = rl->seq,
		.ok = ok,
		.message = strdup(message),
		.generation = s->current ? s->current->id : 0,
		.duration_usec = now - rl->started_usec,
		.ready_usec = ok && rl->gen ? rl->gen->ready_usec - rl->gen->started_usec : 0,
	};
	if (ok)
		log_info("reload %" PRIu64 " done in %" PRIu64 " ms: %s", rl->seq,
			 s->last_reload.duration_usec / USEC_PER_MSEC, message);
	else
		log_error("reload %" PRIu64 " failed: %s", rl->seq, message);

	config_free(rl->config);
	listeners_free(rl->listeners, rl->n_listeners);
	uint64_t seq = rl->seq;
	*rl = (struct reload){0};

	loop_reload_finished(s, seq, ok, message);
}

/* The reload failed: the new generation (if any) is killed, the new config and sockets are dropped, and whatever
 * was serving keeps serving. READY=1 goes upstream either way: systemd waits for it after RELOADING=1. */
static void reload_fail(struct supervisor *s, const char *why) {
	struct reload *rl = &s->reload;
	if (rl->gen && rl->gen->state != GEN_KILLED) {
		/* Stopped, not killed: a program that does not notify may serve on the shared sockets before it
		 * counts as ready, and its requests in flight can finish. */
		log_info("generation %u (pid %d) is discarded: the reload failed", rl->gen->id, (int)rl->gen->pid);
		generation_stop(s, rl->gen);
	}

	char msg[512];
	if (s->current)
		snprintf(msg, sizeof(msg), "%s; generation %u keeps serving", why, s->current->id);
	else
		snprintf(msg, sizeof(msg), "%s", why);
	notify_upstreamf("READY=1\nSTATUS=reload failed: %s", msg);
	reload_finish(s, false, msg);

	if (s->current) {
		if (s->current->state == GEN_READY)
			now_running(s);
		else
			s->state = SUP_STARTING;
	} else {
		/* Nothing serves (it died meanwhile, or the restart strategy stopped it): the old config starts again.
		 */
		char buf[300];
		snprintf(buf, sizeof(buf), "reload failed with no generation serving (%s)", why);
		schedule_restart(s, buf);
	}
}

/* The new generation is serving: it becomes current, the new config and sockets are swapped in, and the old
 * generation is told to stop. */
static void reload_commit(struct supervisor *s) {
	struct reload *rl = &s->reload;
	struct generation *old = s->current;
	struct generation *g = rl->gen ? rl->gen : s->current;
	char msg[160];

	if (rl->gen) {
		uint64_t took = generation_ready(rl->gen);
		s->current = rl->gen;
		listeners_commit(s, rl->listeners, rl->n_listeners);
		rl->listeners = NULL;
		rl->n_listeners = 0;
		snprintf(msg, sizeof(msg), "generation %u (pid %d) is serving, ready %" PRIu64 " ms after start", g->id,
			 (int)g->pid, took / USEC_PER_MSEC);
	} else {
		g->deadline_usec = USEC_INFINITY;
		snprintf(msg, sizeof(msg), "generation %u (pid %d) reloaded itself", g->id, (int)g->pid);
	}
	if (rl->config->control_socket && !streq(rl->config->control_socket, s->config->control_socket))
		log_warning("control.socket changed: it takes effect when baton restarts");
	config_free(s->config);
	s->config = rl->config;
	rl->config = NULL;
	s->ever_ready = true;

	upstream_ready(s);
	if (old && old != g)
		generation_retire(s, old);
	reload_finish(s, true, msg);
	now_running(s);
}

/* Starts the new generation of the reload in progress. */
static void reload_start_generation(struct supervisor *s) {
	struct reload *rl = &s->reload;
	_cleanup_free_ char *error = NULL;
	int r = generation_start(s, rl->config, rl->listeners, rl->n_listeners, &rl->gen, &error);
	if (r < 0) {
		char why[512];
		snprintf(why, sizeof(why), "could not start the program: %s", error ? error : strerror(-r));
		reload_fail(s, why);
		return;
	}
	notify_upstreamf("STATUS=reloading: starting generation %u (pid %d)", rl->gen->id, (int)rl->gen->pid);
}

/* Reload: read the config afresh and bring up a generation of it, per reload.strategy of the new config. */
static void on_reload(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	uint64_t now = now_usec();
	_cleanup_free_ char *error = NULL;
	struct config *c = NULL;

	s->reload_queued = false;
	*rl = (struct reload){.seq = ++s->last_reload_seq, .started_usec = now};
	s->state = SUP_RELOADING;
	log_info("reload %" PRIu64 " (%s)", rl->seq, ev->why ? ev->why : "requested");
	/* Type=notify-reload (systemd >= 253) requires MONOTONIC_USEC with RELOADING=1; older ones ignore it. */
	notify_upstreamf("RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading", now);

	int r = supervisor_load_config(&s->options, &c, &error);
	if (r < 0) {
		char why[1024];
		/* Out of fds or memory is baton's trouble, not the file's. */
		bool system = r == -EMFILE || r == -ENFILE || r == -ENOMEM;
		snprintf(why, sizeof(why), "%s: %s",
			 system ? "could not read the configuration" : "invalid configuration",
			 error ? error : strerror(-r));
		reload_fail(s, why);
		return;
	}
	rl->config = c;
	rl->strategy = c->reload_strategy;

	if (rl->strategy == RELOAD_SIGNAL && s->current && s->current->state == GEN_READY) {
		if (!listeners_same(s, c)) {
			reload_fail(
				s,
				"the listeners changed, and reload.strategy signal cannot give a running program new "
				"sockets (use replace or restart)");
			return;
		}
		int sig = c->reload_signal;
		log_info("sending %s to generation %u (pid %d)", strempty(signal_name(sig)), s->current->id,
			 (int)s->current->pid);
		r = generation_signal(s->current, sig);
		if (r < 0) {
			char why[128];
			snprintf(why, sizeof(why), "could not send %s: %s", strempty(signal_name(sig)), strerror(-r));
			reload_fail(s, why);
			return;
		}
		if (c->readiness_type != READINESS_NOTIFY || s->current->readiness != READINESS_NOTIFY) {
			/* Nothing will say when a program that does not notify has reloaded: delivering the signal
			 * is all there is to wait for. */
			reload_commit(s);
			return;
		}
		/* It reports RELOADING=1 ... READY=1 (or just READY=1) when done; the readiness timeout bounds that. */
		s->current->deadline_usec = now_usec() + c->readiness_timeout_usec;
		return;
	}
	/* Nothing runs (restarting after a crash): any strategy comes down to starting the new config now. */
	if (rl->strategy == RELOAD_SIGNAL)
		rl->strategy = RELOAD_REPLACE;

	r = listeners_for_reload(s, c, &rl->listeners, &error);
	if (r < 0) {
		char why[1024];
		snprintf(why, sizeof(why), "%s", error ? error : strerror(-r));
		reload_fail(s, why);
		return;
	}
	rl->n_listeners = c->n_listeners;

	if (rl->strategy == RELOAD_RESTART && s->current) {
		/* For programs that cannot run twice: the old one goes first. baton keeps the sockets open meanwhile,
		 * so clients queue in the backlog instead of being refused. */
		rl->old = s->current;
		s->current = NULL;
		generation_stop(s, rl->old);
		notify_upstreamf("STATUS=reloading: waiting for generation %u to exit", rl->old->id);
		return;
	}
	reload_start_generation(s);
}

static void start_queued_reload(struct supervisor *s) {
	if (!s->reload_queued)
		return;
	struct event ev = {.type = EV_RELOAD_REQUEST, .why = "queued reload"};
	dispatch(s, &ev);
}

static void on_reloading_ready(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	if (ev->gen == rl->gen || (!rl->gen && rl->strategy == RELOAD_SIGNAL && ev->gen == s->current))
		reload_commit(s);
	else
		log_debug("generation %u sent READY=1 during a reload, ignoring", ev->gen->id);
}

static void on_reloading_exited(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	struct generation *g = ev->gen;
	char buf[64], why[160];

	if (g == rl->gen) {
		rl->gen = NULL;
		snprintf(why, sizeof(why), "the new generation %u %s before it was ready", g->id,
			 describe_exit(ev->wait_status, buf));
		reload_fail(s, why);
	} else if (g == rl->old) {
		rl->old = NULL;
		log_info("generation %u (pid %d) %s; starting its replacement", g->id, (int)g->pid,
			 describe_exit(ev->wait_status, buf));
		reload_start_generation(s);
	} else if (g == s->current) {
		s->current = NULL;
		snprintf(why, sizeof(why), "generation %u (pid %d) %s during the reload", g->id, (int)g->pid,
			 describe_exit(ev->wait_status, buf));
		log_warning("%s", why);
		if (rl->strategy == RELOAD_SIGNAL)
			reload_fail(s, why);
		/* replace: the new generation may still come up and take over. */
	} else
		on_other_exited(s, ev);
}

static void on_reloading_timeout(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	char buf[32], why[160];
	const char *limit = format_duration(rl->config->readiness_timeout_usec, buf);

	if (ev->gen == rl->gen) {
		snprintf(why, sizeof(why), "the new generation %u was not ready within %s (readiness.timeout)",
			 ev->gen->id, limit);
		reload_fail(s, why);
	} else if (ev->gen == s->current && rl->strategy == RELOAD_SIGNAL) {
		snprintf(why, sizeof(why), "generation %u did not report READY=1 within %s of %s", ev->gen->id, limit,
			 strempty(signal_name(rl->config->reload_signal)));
		reload_fail(s, why);
	}
}

static void on_reloading_stop(struct supervisor *s, const struct event *ev) {
	log_info("%s during reload %" PRIu64 ", abandoning it", ev->why ? ev->why : "stop requested", s->reload.seq);
	reload_finish(s, false, "baton is stopping");
	on_stop_request(s, ev);
}

static void on_stopping_exited(struct supervisor *s, const struct event *ev) {
	on_other_exited(s, ev);
	if (!s->generations)
		done(s, s->exit_code);
}

/* NULL: the event does not apply in that state and is ignored (logged at debug). */
static const transition_fn transitions[_SUP_STATE_MAX][_EV_MAX] = {
	[SUP_STARTING] =
		{
			[EV_READY] = on_started_ready,
			[EV_EXITED] = on_started_exited,
			[EV_READY_TIMEOUT] = on_started_timeout,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request,
			[EV_RELOAD_REQUEST] = on_reload_queue,
		},
	[SUP_RUNNING] =
		{
			[EV_READY] = on_running_ready,
			[EV_EXITED] = on_running_exited,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request,
			[EV_RELOAD_REQUEST] = on_reload,
			[EV_WATCHDOG] = on_watchdog,
		},
	[SUP_RELOADING] =
		{
			[EV_READY] = on_reloading_ready,
			[EV_EXITED] = on_reloading_exited,
			[EV_READY_TIMEOUT] = on_reloading_timeout,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_reloading_stop,
			[EV_RELOAD_REQUEST] = on_reload_queue,
			[EV_WATCHDOG] = on_watchdog,
		},
	[SUP_BACKOFF] =
		{
			[EV_EXITED] = on_other_exited,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request,
			[EV_RELOAD_REQUEST] = on_reload,
			[EV_RESTART_DUE] = on_restart_due,
		},
	[SUP_STOPPING] =
		{
			[EV_EXITED] = on_stopping_exited,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request_again,
			[EV_RELOAD_REQUEST] = on_reload_refused,
		},
	[SUP_DONE] = {0},
};

void dispatch(struct supervisor *s, const struct event *ev) {
	transition_fn fn = transitions[s->state][ev->type];
	log_debug("event '%s' (generation %u) in state '%s'%s", event_names[ev->type], ev->gen ? ev->gen->id : 0,
		  sup_state_names[s->state], fn ? "" : ": ignored");
	if (fn)
		fn(s, ev);
}

/* Starts the first generation. */
int supervisor_start(struct supervisor *s, char **ret_error) {
	struct generation *g;
	/* Before the program runs: from now on a crash of baton (kill -9) leaves the sockets open in systemd. */
	if (s->fd_store) {
		log_info("keeping %zu listening socket(s) in systemd's fd store", s->n_listeners);
		for (size_t i = 0; i < s->n_listeners; i++)
			fd_store_add(&s->listeners[i]);
	}
	int r = generation_start(s, s->config, s->listeners, s->n_listeners, &g, ret_error);
	if (r < 0)
		return r;
	s->current = g;
	s->state = SUP_STARTING;
	notify_upstreamf("STATUS=starting generation %u (pid %d)", g->id, (int)g->pid);
	return 0;
}

int supervisor_load_config(const struct supervisor_options *o, struct config **ret, char **ret_error) {
	struct config *c = NULL;
	int r;
	if (o->config_path)
		r = config_load(o->config_path, &c, ret_error);
	else
		r = config_new_default(&c);
	if (r >= 0)
		r = config_apply_cli(c, o->listens, o->command, ret_error);
	if (r < 0) {
		config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}
