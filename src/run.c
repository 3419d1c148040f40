/* `baton run`'s event sources (run.h): the signalfd, the timer, each generation's pidfd and output pipes, the notify
 * socket and the control socket are turned into events for the state machine (supervisor.c), and what it leaves in
 * its outbox goes back to the control clients. With no deadline pending the loop sleeps in epoll_wait and baton does
 * not wake up at all. */
#include "run.h"

#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "evloop.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "readiness.h"
#include "status.h"
#include "supervisor.h"
#include "util.h"

/* Event loop tags of run's own fds (the loop's and generation.h's kinds are distinct): the kind in the low byte, a
 * control client's id above it, so an event for a client that went away earlier in the same batch finds nothing. */
enum { TAG_NOTIFY = 8, TAG_CONTROL, TAG_CLIENT };
#define TAG(kind, id) (((uint64_t)(id) << 8) | (kind))

static const int handled_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};

struct run {
	struct supervisor sup;
	struct evloop loop;
	int notify_fd;
	char *notify_path; /* NOTIFY_SOCKET for children */
	struct control control;
	uint64_t control_resume_usec; /* accepting is paused until then (out of fds); USEC_INFINITY normally */
};

int run_block_signals(void) {
	sigset_t mask;
	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(handled_signals); i++)
		sigaddset(&mask, handled_signals[i]);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	return 0;
}

/* ---- control clients ---- */

static void client_reply(struct run *r, struct control_client *cl, const char *json) {
	int k = json ? control_client_reply(cl, json) : control_client_reply_error(cl, "out of memory");
	if (k < 0)
		log_debug_errno(k, "Failed to reply to control client %u, ignoring", cl->id);
	control_client_close(&r->control, cl);
}

/* The supervisor's outbox: each ended reload is answered to the clients waiting for its number. */
static void deliver_replies(struct run *r) {
	struct reload_reply *replies = supervisor_take_replies(&r->sup);
	for (struct reload_reply *rr = replies; rr; rr = rr->next) {
		_cleanup_free_ char *json = NULL;
		for (struct control_client *cl = r->control.clients, *next; cl; cl = next) {
			next = cl->next;
			if (!cl->has_request || cl->request != CONTROL_RELOAD || cl->waiting_for != rr->seq)
				continue;
			if (!json)
				json = status_reload_reply(rr);
			client_reply(r, cl, json);
		}
	}
	reload_replies_free(replies);
}

/* Every event reaches the state machine through here: what it queued runs too, and its outbox is delivered. */
static void dispatch(struct run *r, const struct event *ev) {
	supervisor_dispatch(&r->sup, ev, now_usec());
	deliver_replies(r);
}

/* g ended: EV_EXITED, and the replies it leads to. */
static void generation_ended(struct run *r, struct generation *g, int wait_status) {
	supervisor_generation_ended(&r->sup, g, wait_status, now_usec());
	deliver_replies(r);
}

static void ready(struct run *r, struct generation *g, const char *how) {
	log_info("generation %u (pid %d): %s", g->id, (int)g->pid, how);
	dispatch(r, &(struct event){.type = EV_READY, .gen = g});
}

/* ---- the timer ---- */

static uint64_t next_deadline(const struct run *r) {
	uint64_t next = supervisor_next_deadline(&r->sup);
	for (struct control_client *cl = r->control.clients; cl; cl = cl->next)
		if (cl->deadline_usec < next)
			next = cl->deadline_usec;
	if (r->control_resume_usec < next)
		next = r->control_resume_usec;
	return next;
}

/* The first generation whose deadline (of the kind chosen by field) has come, or NULL. */
static struct generation *due(struct supervisor *s, size_t field, uint64_t now) {
	for (struct generation *g = s->generations; g; g = g->next)
		if (*(const uint64_t *)((const char *)g + field) <= now)
			return g;
	return NULL;
}

static void handle_timer(struct run *r) {
	struct supervisor *s = &r->sup;
	evloop_timer_expired(&r->loop);
	uint64_t now = now_usec();
	struct generation *g;

	/* One at a time, looked up afresh: a transition may free or add generations. */
	while (s->state != SUP_DONE && (g = due(s, offsetof(struct generation, deadline_usec), now))) {
		g->deadline_usec = USEC_INFINITY;
		if (g->state == GEN_KILLED && g->pid <= 0)
			/* A generation without a process (its daemon never appeared) ends here, as a reaped one would.
			 */
			generation_ended(r, g, g->launcher_status);
		else if (g->state == GEN_STARTING || g->state == GEN_READY)
			dispatch(r, &(struct event){.type = EV_READY_TIMEOUT, .gen = g});
		else if (g->state == GEN_STOPPING || g->state == GEN_DRAINING)
			dispatch(r, &(struct event){.type = EV_STOP_TIMEOUT, .gen = g});
	}
	while (s->state != SUP_DONE && (g = due(s, offsetof(struct generation, check_usec), now))) {
		char how[READINESS_HOW_MAX];
		if (readiness_check(&r->loop, s->generations, g, &s->options.nofile, now, how))
			ready(r, g, how);
	}
	while (s->state != SUP_DONE && (g = due(s, offsetof(struct generation, watchdog_deadline_usec), now))) {
		g->watchdog_deadline_usec = USEC_INFINITY;
		dispatch(r, &(struct event){.type = EV_WATCHDOG, .gen = g});
	}
	if (s->upstream.watchdog_next_usec <= now)
		upstream_watchdog_due(&s->upstream, s->state != SUP_BACKOFF, now);
	if (s->state == SUP_BACKOFF && s->restart_usec <= now) {
		s->restart_usec = USEC_INFINITY;
		dispatch(r, &(struct event){.type = EV_RESTART_DUE});
	}
	if (r->control_resume_usec <= now) {
		r->control_resume_usec = USEC_INFINITY;
		if (evloop_modify(&r->loop, r->control.fd, EPOLLIN, TAG_CONTROL) < 0)
			log_warning_errno(errno, "Failed to resume accepting control connections");
	}
	for (struct control_client *cl = r->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (cl->deadline_usec <= now) {
			log_debug("control client %u sent no request in time, dropping it", cl->id);
			control_client_close(&r->control, cl);
		}
	}
}

/* ---- children and signals ---- */

/* Reaps every child that has exited: generations end (EV_EXITED); a readiness probe counts for its generation;
 * anything else is an orphan that was reparented to baton (the child subreaper) and is only reaped, so that no zombie
 * stays behind. Several SIGCHLDs can arrive as one, so this loops until nothing is left. */
static void reap_children(struct run *r) {
	struct supervisor *s = &r->sup;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;

		uint64_t now = now_usec();
		struct generation *g;
		if (readiness_probe_reaped(s->generations, pid, status, now, &g)) {
			if (g)
				ready(r, g, "readiness.command exited 0");
			continue;
		}
		g = generation_by_pid(s->generations, pid);
		if (!g) {
			char buf[64];
			log_debug("reaped process %d, which %s", (int)pid, wait_status_describe(status, buf));
			continue;
		}
		if (readiness_launcher_exited(g, status, now))
			continue;
		generation_ended(r, g, status);
	}
}

static void forward_signal(struct run *r, int sig) {
	struct generation *g = r->sup.current;
	if (!g) {
		log_debug("no generation to forward %s to", strempty(signal_name(sig)));
		return;
	}
	log_debug("forwarding %s to generation %u (pid %d)", strempty(signal_name(sig)), g->id, (int)g->pid);
	int k = generation_signal(g, sig);
	if (k < 0 && k != -ESRCH)
		log_warning_errno(k, "Failed to forward %s, ignoring", strempty(signal_name(sig)));
}

static void handle_signals(struct run *r) {
	struct signalfd_siginfo si;
	while (r->sup.state != SUP_DONE && evloop_next_signal(&r->loop, &si) > 0) {
		int sig = (int)si.ssi_signo;
		char why[64];
		snprintf(why, sizeof(why), "received %s from pid %u", strempty(signal_name(sig)), si.ssi_pid);
		switch (sig) {
		case SIGCHLD:
			reap_children(r);
			break;
		case SIGTERM:
		case SIGINT:
			dispatch(r, &(struct event){.type = EV_STOP_REQUEST, .why = why});
			break;
		case SIGHUP:
			dispatch(r, &(struct event){.type = EV_RELOAD_REQUEST, .why = why});
			break;
		default:
			/* SIGUSR1, SIGUSR2, SIGWINCH: programs use them to reopen logs and the like. */
			forward_signal(r, sig);
			break;
		}
	}
}

/* ---- the program's output (readiness.type log) ---- */

static void handle_output(struct run *r, uint64_t id) {
	unsigned gid = (unsigned)(id >> 2), stream = (unsigned)(id & 1);
	struct generation *g = generation_by_id(r->sup.generations, gid);
	if (!g)
		return;
	bool starting = g->state == GEN_STARTING && g->readiness == READINESS_LOG;
	if (generation_output(&r->loop, g, stream, id & 2, starting ? &g->config->readiness_regex : NULL))
		ready(r, g, stream ? "its stderr matched readiness.pattern" : "its stdout matched readiness.pattern");
}

/* ---- notify ---- */

/* Which generation a notify sender belongs to: the generation's main process itself, a process in its process
 * group, or a descendant of its main process (a shell script's systemd-notify). Anyone else is not heard. */
static struct generation *generation_of_sender(struct supervisor *s, pid_t pid) {
	if (pid <= 0)
		return NULL;
	struct generation *g = generation_by_pid(s->generations, pid);
	if (g)
		return g;
	pid_t pgid = getpgid(pid);
	if (pgid > 0 && (g = generation_by_pid(s->generations, pgid)))
		return g;
	pid_t self = getpid();
	for (int depth = 0; depth < 32 && pid > 1 && pid != self; depth++) {
		pid = proc_parent_of(pid);
		if ((g = generation_by_pid(s->generations, pid)))
			return g;
	}
	return NULL;
}

static void handle_notify_message(struct run *r, struct notify_datagram *d) {
	struct supervisor *s = &r->sup;
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
	bool serving = g == s->current && g->state == GEN_READY;
	switch (upstream_on_message(s->config, s->listeners, s->n_listeners, g, serving, &m, d, now_usec())) {
	case UPSTREAM_READY:
		dispatch(r, &(struct event){.type = EV_READY, .gen = g});
		break;
	case UPSTREAM_WATCHDOG_TRIGGER:
		dispatch(r, &(struct event){
				    .type = EV_WATCHDOG, .gen = g, .why = "asked for its watchdog (WATCHDOG=trigger)"});
		break;
	case UPSTREAM_NOTHING:
		break;
	}
}

static void handle_notify(struct run *r) {
	static struct notify_datagram d; /* 5 KiB: not on the stack; baton is single-threaded */

	/* Bounded, so that a flood of datagrams cannot starve the signalfd and the timer. */
	for (int i = 0; i < 256 && r->sup.state != SUP_DONE; i++) {
		int k = notify_receive(r->notify_fd, &d);
		if (k == 0)
			return;
		if (k == -EMSGSIZE) {
			log_warning("dropped an oversized notify message (over %d bytes)", NOTIFY_BUFFER_MAX);
			continue;
		}
		if (k < 0) {
			log_warning_errno(k, "Failed to receive a notify message, ignoring");
			return;
		}
		handle_notify_message(r, &d);
		/* Closed only now, after the message was acted on: a BARRIER=1 pipe tells its sender that everything it
		 * sent before has been processed (systemd-notify --ready waits for that). */
		notify_datagram_close_fds(&d);
	}
}

/* ---- control ---- */

static void handle_request(struct run *r, struct control_client *cl) {
	/* One request per connection: stop reading, so a client that shuts down its side while it waits for a reload
	 * does not wake the loop again. */
	evloop_remove(&r->loop, cl->fd);
	char why[64];
	snprintf(why, sizeof(why), "control: %s", control_request_to_string(cl->request));
	log_debug("control client %u: %s", cl->id, control_request_to_string(cl->request));

	switch (cl->request) {
	case CONTROL_STATUS: {
		_cleanup_free_ char *json = status_render(&r->sup, getpid(), now_usec());
		client_reply(r, cl, json);
		break;
	}
	case CONTROL_RELOAD:
		/* Whatever is in progress, the reload that reads the config from now on is the next one. */
		cl->waiting_for = r->sup.last_reload_seq + 1;
		dispatch(r, &(struct event){.type = EV_RELOAD_REQUEST, .why = why});
		break;
	case CONTROL_STOP:
		/* Answered when baton exits (teardown). */
		dispatch(r, &(struct event){.type = EV_STOP_REQUEST, .why = why});
		break;
	default:
		break;
	}
}

static void handle_control_accept(struct run *r) {
	for (int i = 0; i < 64; i++) {
		struct control_client *cl;
		struct ucred peer;
		int k = control_accept(&r->control, &cl, &peer);
		if (k == -EAGAIN)
			return;
		if (k == -EPERM)
			log_warning(
				"Refusing control connection from pid %ld uid %lu: only root and uid %lu may use it",
				(long)peer.pid, (unsigned long)peer.uid, (unsigned long)geteuid());
		if (k == -EBUSY)
			log_warning("Refusing control connection from pid %ld: %d connections are open already",
				    (long)peer.pid, CONTROL_CLIENTS_MAX);
		if (k == -EMFILE || k == -ENFILE || k == -ENOBUFS || k == -ENOMEM) {
			/* The pending connection stays queued and the socket stays readable: without a pause the loop
			 * would spin. Accepting resumes in a second, when fds may have been freed. */
			log_warning_errno(k, "Failed to accept a control connection, pausing for 1s");
			(void)evloop_modify(&r->loop, r->control.fd, 0, TAG_CONTROL);
			r->control_resume_usec = now_usec() + USEC_PER_SEC;
			return;
		}
		if (k < 0)
			continue;
		k = evloop_add(&r->loop, cl->fd, EPOLLIN, TAG(TAG_CLIENT, cl->id));
		if (k < 0) {
			log_warning_errno(k, "Failed to watch control client %u, dropping it", cl->id);
			control_client_close(&r->control, cl);
		}
	}
}

static void handle_control_client(struct run *r, unsigned id) {
	struct control_client *cl = control_client_by_id(&r->control, id);
	if (!cl || cl->has_request)
		return;
	int k = control_client_read(cl);
	if (k < 0) {
		control_client_close(&r->control, cl);
		return;
	}
	if (k > 0)
		handle_request(r, cl);
}

/* ---- setup, teardown and the loop ---- */

static int setup(struct run *r, char **ret_error) {
	int k = run_block_signals();
	if (k < 0)
		return log_error_errno(k, "Failed to block signals");
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);

	/* Writes to a vanished peer must fail with EPIPE, not kill baton. Children get default dispositions back. */
	signal(SIGPIPE, SIG_IGN);

	/* Orphaned descendants are reparented to baton, which reaps them: no zombies, also as PID 1. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "Failed to become a child subreaper, ignoring");

	k = evloop_open(&r->loop, &mask);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the event loop");
	k = notify_server_open(&r->notify_fd, &r->notify_path);
	if (k < 0)
		return log_error_errno(k, "Failed to open the notify socket");
	r->sup.notify_path = r->notify_path;
	k = evloop_add(&r->loop, r->notify_fd, EPOLLIN, TAG_NOTIFY);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the event loop");

	upstream_setup(&r->sup.upstream, r->sup.config, now_usec());

	_cleanup_free_ char *path = NULL;
	k = config_control_socket(r->sup.config, &path);
	if (k < 0)
		return log_error_errno(k, "Failed to determine the control socket");
	if (path) {
		k = control_open(&r->control, path, ret_error);
		if (k < 0)
			return k;
		k = evloop_add(&r->loop, r->control.fd, EPOLLIN, TAG_CONTROL);
		if (k < 0)
			return log_error_errno(k, "Failed to watch the control socket");
		log_debug("control socket at %s", path);
	}
	return 0;
}

static void teardown(struct run *r) {
	/* `baton stop` reads this line, then waits for the connection to close. That happens when the kernel closes
	 * the fd as baton's process ends, not here: the rest of the teardown (and an ASan leak check) still runs, and
	 * the client must not return while baton is alive. So the fd is left open on purpose. */
	_cleanup_free_ char *stop_reply = status_stop_reply(r->sup.exit_code);
	for (struct control_client *cl = r->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (cl->has_request && cl->request == CONTROL_STOP && stop_reply) {
			control_client_reply(cl, stop_reply);
			cl->fd = -1;
		}
	}
	control_close(&r->control);
	supervisor_free(&r->sup);
	free(r->notify_path);
	if (r->notify_fd >= 0)
		close(r->notify_fd);
	evloop_close(&r->loop);
}

static void handle_event(struct run *r, uint64_t tag) {
	switch (tag & 0xff) {
	case EVLOOP_TAG_SIGNAL:
		handle_signals(r);
		break;
	case EVLOOP_TAG_TIMER:
		handle_timer(r);
		break;
	case TAG_NOTIFY:
		handle_notify(r);
		break;
	case GEN_TAG_PIDFD:
		/* The pidfd says the process exited; reaping (and the event) happens in one place for every child. */
		reap_children(r);
		break;
	case GEN_TAG_OUTPUT:
		handle_output(r, tag >> 8);
		break;
	case TAG_CONTROL:
		handle_control_accept(r);
		break;
	case TAG_CLIENT:
		handle_control_client(r, (unsigned)(tag >> 8));
		break;
	}
}

int run_supervisor(const struct supervisor_options *o, struct config *config, struct listener *listeners,
		   size_t n_listeners) {
	struct run r = {
		.loop = EVLOOP_INIT,
		.notify_fd = -1,
		.control = {.fd = -1},
		.control_resume_usec = USEC_INFINITY,
	};
	supervisor_init(&r.sup, o, config, listeners, n_listeners, &r.loop, NULL);
	_cleanup_free_ char *error = NULL;

	int k = setup(&r, &error);
	if (k < 0) {
		if (error)
			log_error("%s", error);
		teardown(&r);
		return EXIT_SYSTEM;
	}

	k = supervisor_start(&r.sup, now_usec(), &error);
	if (k < 0) {
		if (error)
			log_error("Failed to start the program: %s", error);
		else
			log_error_errno(k, "Failed to start the program");
		notify_upstreamf("STATUS=failed to start: %s", error ? error : strerror(-k));
		teardown(&r);
		return EXIT_START;
	}

	/* Config parsing and socket setup left freed memory in the heap; hand it back so an idle baton stays small. */
	malloc_trim(0);

	while (r.sup.state != SUP_DONE) {
		k = evloop_arm(&r.loop, next_deadline(&r));
		if (k < 0)
			log_error_errno(k, "Failed to arm the timer");
		struct epoll_event events[16];
		int n = evloop_wait(&r.loop, events, (int)ARRAY_SIZE(events));
		if (n < 0) {
			/* Cannot happen short of a bug; without a loop nothing can be supervised, so take everything
			 * down. */
			log_error_errno(n, "epoll_wait failed");
			for (struct generation *g = r.sup.generations; g; g = g->next)
				kill(-g->pid, SIGKILL);
			r.sup.exit_code = EXIT_SYSTEM;
			break;
		}
		for (int i = 0; i < n && r.sup.state != SUP_DONE; i++)
			handle_event(&r, events[i].data.u64);
	}

	log_info("exiting with status %d", r.sup.exit_code);
	int code = r.sup.exit_code;
	teardown(&r);
	return code;
}
