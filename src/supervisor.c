/* The supervisor's lifecycle. Everything that happens is an event (a generation became ready, exited, missed a
 * deadline; a stop was requested), and what baton does about it is looked up in transitions[state][event]: reading
 * that table tells the whole lifecycle. The event loop around it only turns file descriptors into events. */
#include "supervisor.h"

#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "notify.h"
#include "spawn.h"
#include "util.h"

enum sup_event {
	EV_READY,         /* a generation reported READY=1 */
	EV_EXITED,        /* a generation's main process exited (event.wait_status) */
	EV_READY_TIMEOUT, /* a starting generation missed its readiness deadline */
	EV_STOP_TIMEOUT,  /* a stopping generation outlived stop.timeout */
	EV_STOP_REQUEST,  /* SIGTERM, SIGINT */
	_EV_MAX,
};

struct event {
	enum sup_event type;
	struct generation *gen; /* the generation it is about; NULL for EV_STOP_REQUEST */
	int wait_status;        /* EV_EXITED */
	int signal;             /* EV_STOP_REQUEST: which signal asked */
};

/* epoll tags: the low byte says what kind of fd woke us; pidfds carry their generation id above it, so an event
 * for a generation that was reaped earlier in the same batch finds nothing instead of freed memory. */
enum { TAG_SIGNAL = 1, TAG_TIMER, TAG_NOTIFY, TAG_PIDFD };
#define TAG(kind, id) (((uint64_t)(id) << 8) | (kind))

static const char *const sup_state_names[_SUP_STATE_MAX] = {
	[SUP_STARTING] = "starting",
	[SUP_RUNNING] = "running",
	[SUP_STOPPING] = "stopping",
	[SUP_DONE] = "done",
};

static const char *const gen_state_names[_GEN_STATE_MAX] = {
	[GEN_STARTING] = "starting",
	[GEN_READY] = "ready",
	[GEN_STOPPING] = "stopping",
	[GEN_KILLED] = "killed",
};

static const char *const event_names[_EV_MAX] = {
	[EV_READY] = "ready",
	[EV_EXITED] = "exited",
	[EV_READY_TIMEOUT] = "readiness timeout",
	[EV_STOP_TIMEOUT] = "stop timeout",
	[EV_STOP_REQUEST] = "stop request",
};

/* ---- small helpers ---- */

static int pidfd_signal(int pidfd, int sig) {
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* The contract's exit status for a wait status: the exit code, or 128+N for signal N (as shells report it). */
static int exit_code_of(int wait_status) {
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return EXIT_SYSTEM;
}

static const char *describe_exit(int wait_status, char buf[static 64]) {
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

static struct generation *generation_by_id(struct supervisor *s, unsigned id) {
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

static struct generation *generation_by_pid(struct supervisor *s, pid_t pid) {
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->pid == pid)
			return g;
	return NULL;
}

/* The generation currently serving (or starting to): the newest one that was not told to stop. */
static struct generation *generation_current(struct supervisor *s) {
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->state == GEN_STARTING || g->state == GEN_READY)
			return g;
	return NULL;
}

static size_t generations_alive(struct supervisor *s) {
	size_t n = 0;
	for (struct generation *g = s->generations; g; g = g->next)
		n++;
	return n;
}

/* The parent of pid from /proc/PID/stat; 0 when it cannot be read (the process is gone). The comm field may hold
 * spaces and parentheses, so the fields are counted from its last ')'. */
static pid_t parent_of(pid_t pid) {
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* Which generation a notify sender belongs to: the generation's main process itself, a process in its process group,
 * or a descendant of its main process (a shell script's systemd-notify). Anyone else is not heard. */
static struct generation *generation_of_sender(struct supervisor *s, pid_t pid) {
	if (pid <= 0)
		return NULL;
	struct generation *g = generation_by_pid(s, pid);
	if (g)
		return g;
	pid_t pgid = getpgid(pid);
	if (pgid > 0 && (g = generation_by_pid(s, pgid)))
		return g;
	pid_t self = getpid();
	for (int depth = 0; depth < 32 && pid > 1 && pid != self; depth++) {
		pid = parent_of(pid);
		if ((g = generation_by_pid(s, pid)))
			return g;
	}
	return NULL;
}

/* ---- the timer: one timerfd armed for the earliest deadline, disarmed when there is none ---- */

static void timer_update(struct supervisor *s) {
	uint64_t next = USEC_INFINITY;
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->deadline_usec < next)
			next = g->deadline_usec;
	if (next == s->timer_armed_usec)
		return;

	struct itimerspec its = {0};
	if (next != USEC_INFINITY) {
		/* A zero it_value would disarm the timer: a deadline already passed still needs one expiry. */
		uint64_t at = next ? next : 1;
		its.it_value.tv_sec = (time_t)(at / USEC_PER_SEC);
		its.it_value.tv_nsec = (long)(at % USEC_PER_SEC) * 1000;
	}
	if (timerfd_settime(s->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_error_errno(errno, "Failed to arm the timer");
		return;
	}
	s->timer_armed_usec = next;
}

/* ---- generations ---- */

static void generation_free(struct generation *g) {
	if (!g)
		return;
	if (g->pidfd >= 0)
		close(g->pidfd);
	free(g->status);
	free(g);
}

static void generation_unlink(struct supervisor *s, struct generation *g) {
	for (struct generation **p = &s->generations; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			g->next = NULL;
			return;
		}
}

/* Starts generation N+1 on the current listeners. On failure nothing is left running and *ret_error says why. */
static int generation_start(struct supervisor *s, char **ret_error) {
	const struct config *c = s->config;
	unsigned id = s->last_generation + 1;
	_cleanup_free_ char **names = NULL;
	_cleanup_free_ int *fds = NULL;
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_strv_free_ char **envp = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *bad_name = NULL;
	char *error = NULL;
	int r;

	if (s->n_listeners > 0) {
		names = calloc(s->n_listeners + 1, sizeof(char *));
		fds = calloc(s->n_listeners, sizeof(int));
		if (!names || !fds)
			return -ENOMEM;
		for (size_t i = 0; i < s->n_listeners; i++) {
			names[i] = s->listeners[i].name;
			fds[i] = s->listeners[i].fd;
		}
	}

	r = spawn_substitute_argv(c->command, names, s->n_listeners, &argv, &bad_name);
	if (r == -ENOENT) {
		if (asprintf(ret_error, "program.command: {fd:%s} names no listener", bad_name) < 0)
			*ret_error = NULL;
		return r;
	}
	if (r < 0) {
		if (asprintf(ret_error, "program.command: a {fd:NAME} placeholder is not closed") < 0)
			*ret_error = NULL;
		return r;
	}

	extern char **environ;
	struct spawn_env_params ep = {
		.base = environ,
		.overrides = c->environment,
		.names = names,
		.n_fds = s->n_listeners,
		.notify_socket = s->notify_path,
		.generation = id,
	};
	r = spawn_build_env(&ep, &envp);
	if (r < 0)
		return r;

	struct spawn_params sp = {
		.argv = argv,
		.envp = envp,
		.fds = fds,
		.n_fds = s->n_listeners,
		.working_directory = c->working_directory,
		.stdin_fd = -1,
		/* Outside systemd nothing else would stop a child whose supervisor was SIGKILLed; under systemd the
		 * cgroup is killed anyway. The stop signal lets it finish its requests. */
		.parent_death_signal = c->stop_signal,
	};
	if (c->user || c->group) {
		r = spawn_resolve_credentials(c->user, c->group, &sp, &groups, &error);
		if (r < 0) {
			*ret_error = error;
			return r;
		}
	}

	pid_t pid;
	int pidfd;
	r = spawn_child(&sp, &pid, &pidfd, &error);
	if (r < 0) {
		*ret_error = error;
		return r;
	}

	struct generation *g = calloc(1, sizeof(*g));
	if (!g) {
		/* Cannot track it: do not leave it running unsupervised. */
		pidfd_signal(pidfd, SIGKILL);
		close(pidfd);
		return -ENOMEM;
	}
	*g = (struct generation){
		.id = id,
		.pid = pid,
		.pidfd = pidfd,
		.state = GEN_STARTING,
		.started_usec = now_usec(),
		.deadline_usec = now_usec() + c->readiness_timeout_usec,
		.next = s->generations,
	};
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG(TAG_PIDFD, id)};
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) < 0)
		/* SIGCHLD still reaps it: the pidfd is only a second path. */
		log_warning_errno(errno, "Failed to watch generation %u's pidfd, ignoring", id);
	s->generations = g;
	s->last_generation = id;

	log_info("generation %u started (pid %d)", id, (int)pid);
	notify_upstreamf("STATUS=starting generation %u (pid %d)", id, (int)pid);
	return 0;
}

/* Tells g to stop: stop.signal now, SIGKILL at the deadline. */
static void generation_stop(struct supervisor *s, struct generation *g) {
	if (g->state == GEN_STOPPING || g->state == GEN_KILLED)
		return;
	int sig = s->config->stop_signal;
	log_info("stopping generation %u (pid %d) with %s", g->id, (int)g->pid, strempty(signal_name(sig)));
	int r = pidfd_signal(g->pidfd, sig);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to signal generation %u, ignoring", g->id);
	g->state = GEN_STOPPING;
	g->deadline_usec = now_usec() + s->config->stop_timeout_usec;
}

/* SIGKILL to the generation's whole process group: workers it forked must not outlive it. */
static void generation_kill(struct generation *g) {
	log_warning("generation %u (pid %d) did not stop in time, sending SIGKILL", g->id, (int)g->pid);
	if (kill(-g->pid, SIGKILL) < 0 && errno != ESRCH)
		log_warning_errno(errno, "Failed to kill process group %d, ignoring", (int)g->pid);
	int r = pidfd_signal(g->pidfd, SIGKILL);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to kill generation %u, ignoring", g->id);
	g->state = GEN_KILLED;
	g->deadline_usec = USEC_INFINITY;
}

/* ---- transitions: what each event does in each state ---- */

static void done(struct supervisor *s, int exit_code) {
	s->state = SUP_DONE;
	s->exit_code = exit_code;
}

/* Stops every generation; baton exits with exit_code once they are all gone. */
static void begin_stop(struct supervisor *s, int exit_code) {
	s->state = SUP_STOPPING;
	s->exit_code = exit_code;
	notify_upstream("STOPPING=1\nSTATUS=stopping");
	for (struct generation *g = s->generations; g; g = g->next)
		generation_stop(s, g);
	if (!s->generations)
		done(s, exit_code);
}

static void on_stop_request(struct supervisor *s, const struct event *ev) {
	log_info("received %s, stopping", strempty(signal_name(ev->signal)));
	begin_stop(s, 0);
}

static void on_stop_request_again(struct supervisor *s, const struct event *ev) {
	log_info("received %s while stopping; still waiting for %zu generation(s)", strempty(signal_name(ev->signal)),
	         generations_alive(s));
}

static void on_first_ready(struct supervisor *s, const struct event *ev) {
	struct generation *g = ev->gen;
	g->state = GEN_READY;
	g->ready_usec = now_usec();
	g->deadline_usec = USEC_INFINITY;
	s->state = SUP_RUNNING;
	log_info("generation %u is ready (%" PRIu64 " ms after start)", g->id,
	         (g->ready_usec - g->started_usec) / USEC_PER_MSEC);
	if (g->status)
		notify_upstreamf("READY=1\nSTATUS=%s", g->status);
	else
		notify_upstreamf("READY=1\nSTATUS=generation %u ready (pid %d)", g->id, (int)g->pid);
}

static void on_ready_timeout(struct supervisor *s, const struct event *ev) {
	char buf[32];
	log_error("generation %u (pid %d) was not ready within %s (readiness.timeout)", ev->gen->id,
	          (int)ev->gen->pid, format_duration(s->config->readiness_timeout_usec, buf));
	begin_stop(s, EXIT_START);
}

/* The program ended on its own: baton ends with its status (restart policies come with generations). */
static void on_current_exited(struct supervisor *s, const struct event *ev) {
	char buf[64];
	const char *what = describe_exit(ev->wait_status, buf);
	if (ev->gen->state == GEN_STARTING)
		log_error("generation %u (pid %d) %s before it was ready", ev->gen->id, (int)ev->gen->pid, what);
	else
		log_notice("generation %u (pid %d) %s", ev->gen->id, (int)ev->gen->pid, what);
	int code = exit_code_of(ev->wait_status);
	notify_upstreamf("STOPPING=1\nSTATUS=program %s", what);
	/* Other generations (none yet) would be stopped before exiting. */
	if (s->generations)
		begin_stop(s, code);
	else
		done(s, code);
}

static void on_exited_while_stopping(struct supervisor *s, const struct event *ev) {
	char buf[64];
	log_info("generation %u (pid %d) %s", ev->gen->id, (int)ev->gen->pid, describe_exit(ev->wait_status, buf));
	if (!s->generations)
		done(s, s->exit_code);
}

static void on_stop_timeout(struct supervisor *s, const struct event *ev) {
	generation_kill(ev->gen);
}

static void on_repeated_ready(struct supervisor *s, const struct event *ev) {
	log_debug("generation %u sent READY=1 again, ignoring", ev->gen->id);
}

typedef void (*transition_fn)(struct supervisor *s, const struct event *ev);

/* NULL: the event does not apply in that state and is ignored (logged at debug). */
static const transition_fn transitions[_SUP_STATE_MAX][_EV_MAX] = {
	[SUP_STARTING] =
		{
			[EV_READY] = on_first_ready,
			[EV_EXITED] = on_current_exited,
			[EV_READY_TIMEOUT] = on_ready_timeout,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request,
		},
	[SUP_RUNNING] =
		{
			[EV_READY] = on_repeated_ready,
			[EV_EXITED] = on_current_exited,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request,
		},
	[SUP_STOPPING] =
		{
			[EV_EXITED] = on_exited_while_stopping,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_stop_request_again,
		},
	[SUP_DONE] = {0},
};

static void dispatch(struct supervisor *s, const struct event *ev) {
	transition_fn fn = transitions[s->state][ev->type];
	log_debug("event '%s' (generation %u) in state '%s'%s", event_names[ev->type], ev->gen ? ev->gen->id : 0,
	          sup_state_names[s->state], fn ? "" : ": ignored");
	if (fn)
		fn(s, ev);
}

/* ---- event sources ---- */

/* Reaps every child that has exited: generations become EV_EXITED; anything else is an orphan that was reparented
 * to baton (the child subreaper) and is only reaped, so that no zombie stays behind. Several SIGCHLDs can arrive as
 * one, so this loops until nothing is left. */
static void reap_children(struct supervisor *s) {
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;

		struct generation *g = generation_by_pid(s, pid);
		if (!g) {
			char buf[64];
			log_debug("reaped process %d, which %s", (int)pid, describe_exit(status, buf));
			continue;
		}
		if (g->pidfd >= 0) {
			epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, g->pidfd, NULL);
			close(g->pidfd);
			g->pidfd = -1;
		}
		generation_unlink(s, g);
		struct event ev = {.type = EV_EXITED, .gen = g, .wait_status = status};
		dispatch(s, &ev);
		generation_free(g);
	}
}

static void forward_signal(struct supervisor *s, int sig) {
	struct generation *g = generation_current(s);
	if (!g) {
		log_debug("no generation to forward %s to", strempty(signal_name(sig)));
		return;
	}
	log_debug("forwarding %s to generation %u (pid %d)", strempty(signal_name(sig)), g->id, (int)g->pid);
	int r = pidfd_signal(g->pidfd, sig);
	if (r < 0 && r != -ESRCH)
		log_warning_errno(r, "Failed to forward %s, ignoring", strempty(signal_name(sig)));
}

static void handle_signals(struct supervisor *s) {
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(s->signal_fd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			return;

		int sig = (int)si.ssi_signo;
		switch (sig) {
		case SIGCHLD:
			reap_children(s);
			break;
		case SIGTERM:
		case SIGINT: {
			struct event ev = {.type = EV_STOP_REQUEST, .signal = sig};
			dispatch(s, &ev);
			break;
		}
		case SIGHUP:
			log_warning("received SIGHUP: reload is not supported in this version, ignoring");
			break;
		default:
			/* SIGUSR1, SIGUSR2, SIGWINCH: programs use them to reopen logs and the like. */
			forward_signal(s, sig);
			break;
		}
	}
}

static void handle_timer(struct supervisor *s) {
	uint64_t expirations;
	if (read(s->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug_errno(errno, "Failed to read the timerfd, ignoring");
	s->timer_armed_usec = USEC_INFINITY;

	uint64_t now = now_usec();
	/* A transition may free or add generations, so look the next due one up afresh each time. */
	for (bool again = true; again;) {
		again = false;
		for (struct generation *g = s->generations; g; g = g->next) {
			if (g->deadline_usec > now)
				continue;
			g->deadline_usec = USEC_INFINITY;
			struct event ev = {.gen = g};
			if (g->state == GEN_STARTING)
				ev.type = EV_READY_TIMEOUT;
			else if (g->state == GEN_STOPPING)
				ev.type = EV_STOP_TIMEOUT;
			else
				continue;
			dispatch(s, &ev);
			again = true;
			break;
		}
	}
}

static void handle_notify_message(struct supervisor *s, struct notify_datagram *d) {
	struct generation *g = generation_of_sender(s, d->pid);
	if (!g) {
		log_debug("dropped a notify message from pid %d, which is not one of baton's generations", (int)d->pid);
		return;
	}

	struct notify_msg m;
	if (notify_parse(d->buf, d->len, &m) < 0) {
		log_warning("dropped a malformed notify message from pid %d (generation %u)", (int)d->pid, g->id);
		return;
	}

	if (m.fdstore && d->n_fds > 0)
		log_warning("generation %u sent FDSTORE=1: baton does not keep a child's fds, closing them", g->id);

	bool current = g == generation_current(s);
	if (m.status) {
		char *copy = strdup(m.status);
		if (copy) {
			free(g->status);
			g->status = copy;
		}
		/* While a generation is starting, baton's own "starting" status stays up; its own words are shown once it
		 * is ready (relayed with READY=1). */
		if (current && g->state == GEN_READY)
			notify_upstreamf("STATUS=%s", m.status);
	}
	if (m.errno_value >= 0 && current)
		notify_upstreamf("ERRNO=%d", m.errno_value);
	if (m.extend_timeout_usec != UINT64_MAX && g->state == GEN_STARTING) {
		/* A slow but progressing start: systemd's start timeout and baton's readiness timeout both move. */
		uint64_t until = now_usec() + m.extend_timeout_usec;
		if (until > g->deadline_usec)
			g->deadline_usec = until;
		notify_upstreamf("EXTEND_TIMEOUT_USEC=%" PRIu64, m.extend_timeout_usec);
	}
	if (m.stopping)
		log_info("generation %u (pid %d) says it is stopping", g->id, (int)g->pid);
	if (m.ready) {
		struct event ev = {.type = EV_READY, .gen = g};
		dispatch(s, &ev);
	}
}

static void handle_notify(struct supervisor *s) {
	static struct notify_datagram d; /* 5 KiB: not on the stack, and baton is single-threaded */

	/* Bounded, so that a flood of datagrams cannot starve the signalfd and the timer. */
	for (int i = 0; i < 256; i++) {
		int r = notify_receive(s->notify_fd, &d);
		if (r == 0)
			return;
		if (r == -EMSGSIZE) {
			log_warning("dropped an oversized notify message (over %d bytes)", NOTIFY_BUFFER_MAX);
			continue;
		}
		if (r < 0) {
			log_warning_errno(r, "Failed to receive a notify message, ignoring");
			return;
		}
		handle_notify_message(s, &d);
		/* Closed only now, after the message was acted on: a BARRIER=1 pipe tells its sender that everything it
		 * sent before has been processed (systemd-notify --ready waits for that). */
		notify_datagram_close_fds(&d);
	}
}

/* ---- setup and the loop ---- */

static int epoll_add(int epoll_fd, int fd, uint64_t tag) {
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int supervisor_block_signals(void) {
	static const int handled[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};
	sigset_t mask;
	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(handled); i++)
		sigaddset(&mask, handled[i]);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	return 0;
}

static int supervisor_setup(struct supervisor *s) {
	/* main() blocked them already; this keeps supervisor_run() self-contained. */
	int r = supervisor_block_signals();
	if (r < 0)
		return log_error_errno(r, "Failed to block signals");
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);

	/* Writes to a vanished peer must fail with EPIPE, not kill baton. Children get default dispositions back. */
	signal(SIGPIPE, SIG_IGN);

	/* Orphaned descendants are reparented to baton, which reaps them: no zombies, also as PID 1. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "Failed to become a child subreaper, ignoring");

	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0)
		return log_error_errno(errno, "Failed to create epoll instance");
	s->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->signal_fd < 0)
		return log_error_errno(errno, "Failed to create signalfd");
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->timer_fd < 0)
		return log_error_errno(errno, "Failed to create timerfd");
	s->timer_armed_usec = USEC_INFINITY;

	r = notify_server_open(&s->notify_fd, &s->notify_path);
	if (r < 0)
		return log_error_errno(r, "Failed to open the notify socket");

	if ((r = epoll_add(s->epoll_fd, s->signal_fd, TAG_SIGNAL)) < 0 ||
	    (r = epoll_add(s->epoll_fd, s->timer_fd, TAG_TIMER)) < 0 ||
	    (r = epoll_add(s->epoll_fd, s->notify_fd, TAG_NOTIFY)) < 0)
		return log_error_errno(r, "Failed to set up the event loop");
	return 0;
}

static void supervisor_teardown(struct supervisor *s) {
	while (s->generations) {
		struct generation *g = s->generations;
		s->generations = g->next;
		generation_free(g);
	}
	listeners_free(s->listeners, s->n_listeners);
	config_free(s->config);
	free(s->notify_path);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	if (s->signal_fd >= 0)
		close(s->signal_fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
}

static void handle_event(struct supervisor *s, uint64_t tag) {
	switch (tag & 0xff) {
	case TAG_SIGNAL:
		handle_signals(s);
		break;
	case TAG_TIMER:
		handle_timer(s);
		break;
	case TAG_NOTIFY:
		handle_notify(s);
		break;
	case TAG_PIDFD:
		/* The pidfd says the process exited; reaping (and the event) happens in one place for every child. */
		if (generation_by_id(s, (unsigned)(tag >> 8)))
			reap_children(s);
		break;
	}
}

int supervisor_run(struct config *config, struct listener *listeners, size_t n_listeners) {
	struct supervisor s = {
		.config = config,
		.listeners = listeners,
		.n_listeners = n_listeners,
		.state = SUP_STARTING,
		.epoll_fd = -1,
		.signal_fd = -1,
		.timer_fd = -1,
		.notify_fd = -1,
	};
	int r;

	if (supervisor_setup(&s) < 0) {
		supervisor_teardown(&s);
		return EXIT_SYSTEM;
	}

	_cleanup_free_ char *error = NULL;
	r = generation_start(&s, &error);
	if (r < 0) {
		if (error)
			log_error("Failed to start the program: %s", error);
		else
			log_error_errno(r, "Failed to start the program");
		notify_upstreamf("STATUS=failed to start: %s", error ? error : strerror(-r));
		supervisor_teardown(&s);
		return EXIT_START;
	}

	/* Config parsing and socket setup left freed memory in the heap; hand it back so an idle baton stays small. */
	malloc_trim(0);

	while (s.state != SUP_DONE) {
		timer_update(&s);
		struct epoll_event events[8];
		int n = epoll_wait(s.epoll_fd, events, (int)ARRAY_SIZE(events), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot happen short of a bug; without a loop nothing can be supervised, so take everything down. */
			log_error_errno(errno, "epoll_wait failed");
			for (struct generation *g = s.generations; g; g = g->next)
				generation_kill(g);
			done(&s, EXIT_SYSTEM);
			break;
		}
		for (int i = 0; i < n && s.state != SUP_DONE; i++)
			handle_event(&s, events[i].data.u64);
	}

	log_info("exiting with status %d", s.exit_code);
	int code = s.exit_code;
	supervisor_teardown(&s);
	return code;
}

const char *gen_state_to_string(enum gen_state st) {
	return st < _GEN_STATE_MAX ? gen_state_names[st] : "?";
}
