/* The event loop: one epoll set over the signalfd, the timerfd, the notify socket, the control socket and its
 * clients, and each generation's pidfd. Each source is turned into events for the state machine (supervisor.c);
 * with no deadline pending the loop sleeps in epoll_wait and baton does not wake up at all. */
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"
#include "supervisor-internal.h"
#include "util.h"

/* epoll tags: the low byte says what kind of fd woke us; pidfds and control clients carry their id above it, so an
 * event for something that went away earlier in the same batch finds nothing instead of freed memory. */
enum { TAG_SIGNAL = 1, TAG_TIMER, TAG_NOTIFY, TAG_PIDFD, TAG_CONTROL, TAG_CLIENT, TAG_OUTPUT };
#define TAG(kind, id) (((uint64_t)(id) << 8) | (kind))

static const int handled_signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};

int supervisor_block_signals(void) {
	sigset_t mask;
	sigemptyset(&mask);
	for (size_t i = 0; i < ARRAY_SIZE(handled_signals); i++)
		sigaddset(&mask, handled_signals[i]);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	return 0;
}

static int epoll_add(int epoll_fd, int fd, uint64_t tag) {
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void loop_watch_generation(struct supervisor *s, struct generation *g) {
	/* SIGCHLD reaps it anyway: the pidfd is a second path, so a failure here loses nothing. */
	if (g->pidfd < 0)
		return;
	int r = epoll_add(s->epoll_fd, g->pidfd, TAG(TAG_PIDFD, g->id));
	if (r < 0)
		log_warning_errno(r, "Failed to watch generation %u's pidfd, ignoring", g->id);
}

int loop_output_ctl(struct supervisor *s, int op, int fd, uint64_t id, uint32_t events) {
	struct epoll_event ev = {.events = events, .data.u64 = TAG(TAG_OUTPUT, id)};
	return epoll_ctl(s->epoll_fd, op, fd, &ev) < 0 ? -errno : 0;
}

/* ---- the timer: one timerfd armed for the earliest deadline, disarmed when there is none ---- */

static uint64_t next_deadline(struct supervisor *s) {
	uint64_t next = USEC_INFINITY;
	for (struct generation *g = s->generations; g; g = g->next) {
		if (g->deadline_usec < next)
			next = g->deadline_usec;
		if (g->watchdog_deadline_usec < next)
			next = g->watchdog_deadline_usec;
		if (g->check_usec < next)
			next = g->check_usec;
	}
	if (s->watchdog_interval_usec > 0 && s->watchdog_next_usec < next)
		next = s->watchdog_next_usec;
	if (s->state == SUP_BACKOFF && s->restart_usec < next)
		next = s->restart_usec;
	for (struct control_client *cl = s->control.clients; cl; cl = cl->next)
		if (cl->deadline_usec < next)
			next = cl->deadline_usec;
	if (s->control_resume_usec < next)
		next = s->control_resume_usec;
	return next;
}

static void timer_update(struct supervisor *s) {
	uint64_t next = next_deadline(s);
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

static void client_close(struct supervisor *s, struct control_client *cl) {
	control_client_close(&s->control, cl);
}

static void handle_timer(struct supervisor *s) {
	uint64_t expirations;
	if (read(s->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug_errno(errno, "Failed to read the timerfd, ignoring");
	s->timer_armed_usec = USEC_INFINITY;

	uint64_t now = now_usec();
	/* A transition may free or add generations, so look the next due one up afresh each time. */
	for (bool again = true; again && s->state != SUP_DONE;) {
		again = false;
		for (struct generation *g = s->generations; g; g = g->next) {
			if (g->deadline_usec > now)
				continue;
			g->deadline_usec = USEC_INFINITY;
			struct event ev = {.gen = g};
			if (g->state == GEN_KILLED && g->pid <= 0) {
				/* A generation without a process (its daemon never appeared) ends here, as a reaped one
				 * would in reap_children. */
				generation_unlink(s, g);
				ev.type = EV_EXITED;
				ev.wait_status = g->launcher_status;
				dispatch(s, &ev);
				generation_free(g);
				again = true;
				break;
			}
			if (g->state == GEN_STARTING || g->state == GEN_READY)
				ev.type = EV_READY_TIMEOUT;
			else if (g->state == GEN_STOPPING || g->state == GEN_DRAINING)
				ev.type = EV_STOP_TIMEOUT;
			else
				continue;
			dispatch(s, &ev);
			again = true;
			break;
		}
	}
	for (bool again = true; again && s->state != SUP_DONE;) {
		again = false;
		for (struct generation *g = s->generations; g; g = g->next)
			if (g->check_usec <= now) {
				readiness_check(s, g);
				again = true;
				break;
			}
	}
	for (bool again = true; again && s->state != SUP_DONE;) {
		again = false;
		for (struct generation *g = s->generations; g; g = g->next)
			if (g->watchdog_deadline_usec <= now) {
				g->watchdog_deadline_usec = USEC_INFINITY;
				struct event ev = {.type = EV_WATCHDOG, .gen = g};
				dispatch(s, &ev);
				again = true;
				break;
			}
	}
	if (s->watchdog_interval_usec > 0 && s->watchdog_next_usec <= now) {
		/* baton's own watchdog says "the service is healthy": not while the program is down and waiting for
		 * its restart (a crash loop longer than WatchdogSec= is then systemd's to handle). */
		if (s->state != SUP_BACKOFF)
			notify_upstream("WATCHDOG=1");
		else
			log_debug("not sending WATCHDOG=1 while the program is restarting");
		s->watchdog_next_usec = now + s->watchdog_interval_usec;
	}
	if (s->state == SUP_BACKOFF && s->restart_usec <= now) {
		s->restart_usec = USEC_INFINITY;
		struct event ev = {.type = EV_RESTART_DUE};
		dispatch(s, &ev);
	}
	if (s->control_resume_usec <= now) {
		s->control_resume_usec = USEC_INFINITY;
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_CONTROL};
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->control.fd, &ev) < 0)
			log_warning_errno(errno, "Failed to resume accepting control connections");
	}
	for (struct control_client *cl = s->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (cl->deadline_usec <= now) {
			log_debug("control client %u sent no request in time, dropping it", cl->id);
			client_close(s, cl);
		}
	}
}

/* ---- children and signals ---- */

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

		if (readiness_reaped(s, pid, status))
			continue;
		struct generation *g = generation_by_pid(s, pid);
		if (g && readiness_launcher_exited(s, g, status))
			continue;
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
	struct generation *g = s->current;
	if (!g) {
		log_debug("no generation to forward %s to", strempty(signal_name(sig)));
		return;
	}
	log_debug("forwarding %s to generation %u (pid %d)", strempty(signal_name(sig)), g->id, (int)g->pid);
	int r = generation_signal(g, sig);
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
		char why[64];
		snprintf(why, sizeof(why), "received %s from pid %u", strempty(signal_name(sig)), si.ssi_pid);
		switch (sig) {
		case SIGCHLD:
			reap_children(s);
			break;
		case SIGTERM:
		case SIGINT: {
			struct event ev = {.type = EV_STOP_REQUEST, .why = why};
			dispatch(s, &ev);
			break;
		}
		case SIGHUP: {
			struct event ev = {.type = EV_RELOAD_REQUEST, .why = why};
			dispatch(s, &ev);
			break;
		}
		default:
			/* SIGUSR1, SIGUSR2, SIGWINCH: programs use them to reopen logs and the like. */
			forward_signal(s, sig);
			break;
		}
	}
}

/* ---- notify ---- */

/* Which generation a notify sender belongs to: the generation's main process itself, a process in its process
 * group, or a descendant of its main process (a shell script's systemd-notify). Anyone else is not heard. */
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
		pid = proc_parent_of(pid);
		if ((g = generation_by_pid(s, pid)))
			return g;
	}
	return NULL;
}

/* A program's FDSTORE=1 / FDSTOREREMOVE=1 goes on to systemd, fds included, when program.fd-store allows it; the
 * names of baton's own listeners are not the program's to take. The caller closes baton's copies of the fds. */
static void relay_fd_store(struct supervisor *s, struct generation *g, const struct notify_msg *m,
			   const struct notify_datagram *d) {
	if (!s->config->program_fd_store || !notify_upstream_enabled()) {
		log_warning("generation %u sent %s, refused: %s", g->id, m->fdstore ? "FDSTORE=1" : "FDSTOREREMOVE=1",
			    notify_upstream_enabled() ? "program.fd-store is false" : "baton has no NOTIFY_SOCKET");
		return;
	}
	for (size_t i = 0; m->fdname && i < s->n_listeners; i++)
		if (streq(m->fdname, s->listeners[i].name)) {
			log_warning("generation %u sent FDSTORE with FDNAME=%s, refused: that is a listener's name",
				    g->id, m->fdname);
			return;
		}
	char text[512];
	if (m->fdstore_remove) {
		if (!m->fdname) {
			log_warning("generation %u sent FDSTOREREMOVE=1 without FDNAME=, ignoring", g->id);
			return;
		}
		snprintf(text, sizeof(text), "FDSTOREREMOVE=1\nFDNAME=%s", m->fdname);
		notify_upstream(text);
		return;
	}
	if (d->n_fds == 0)
		return;
	int n = snprintf(text, sizeof(text), "FDSTORE=1");
	if (m->fdname)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "\nFDNAME=%s", m->fdname);
	if (m->fdpoll >= 0)
		snprintf(text + n, sizeof(text) - (size_t)n, "\nFDPOLL=%d", m->fdpoll);
	log_debug("relaying %zu fd(s) of generation %u to systemd's fd store", d->n_fds, g->id);
	notify_upstream_with_fds(text, d->fds, d->n_fds);
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
	if (m.fdstore || m.fdstore_remove)
		relay_fd_store(s, g, &m, d);
	if ((m.watchdog || m.watchdog_trigger) && g->state == GEN_READY && g->watchdog_usec > 0) {
		if (m.watchdog_trigger) {
			struct event ev = {
				.type = EV_WATCHDOG, .gen = g, .why = "asked for its watchdog (WATCHDOG=trigger)"};
			dispatch(s, &ev);
			return;
		}
		g->watchdog_deadline_usec = now_usec() + g->watchdog_usec;
	}

	bool serving = g == s->current && g->state == GEN_READY;
	if (m.status) {
		char *copy = strdup(m.status);
		if (copy) {
			free(g->status);
			g->status = copy;
		}
		/* While a generation starts, baton's own status stays up; the program's own words go upstream from the
		 * moment it serves (with READY=1). */
		if (serving)
			notify_upstreamf("STATUS=%s", m.status);
	}
	if (m.errno_value >= 0 && serving)
		notify_upstreamf("ERRNO=%d", m.errno_value);
	if (m.extend_timeout_usec != UINT64_MAX && g->state == GEN_STARTING) {
		/* A slow but progressing start: systemd's start timeout and baton's readiness timeout both move. */
		uint64_t until = now_usec() + m.extend_timeout_usec;
		if (until > g->deadline_usec)
			g->deadline_usec = until;
		notify_upstreamf("EXTEND_TIMEOUT_USEC=%" PRIu64, m.extend_timeout_usec);
	}
	if (m.reloading)
		log_info("generation %u (pid %d) is reloading", g->id, (int)g->pid);
	if (m.stopping)
		log_info("generation %u (pid %d) says it is stopping", g->id, (int)g->pid);
	if (m.ready && g->readiness != READINESS_NOTIFY)
		/* One source of truth: with another readiness type, the program's own word does not count. */
		log_debug("generation %u sent READY=1, ignored: readiness.type is %s", g->id,
			  readiness_type_to_string(g->readiness));
	else if (m.ready) {
		struct event ev = {.type = EV_READY, .gen = g};
		dispatch(s, &ev);
	}
}

static void handle_notify(struct supervisor *s) {
	static struct notify_datagram d; /* 5 KiB: not on the stack; baton is single-threaded */

	/* Bounded, so that a flood of datagrams cannot starve the signalfd and the timer. */
	for (int i = 0; i < 256 && s->state != SUP_DONE; i++) {
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

/* ---- control ---- */

static char *status_json(struct supervisor *s) {
	struct json_buf b = {0};
	uint64_t now = now_usec();
	char abuf[ADDR_FORMAT_MAX];

	json_append(&b, "{\"ok\":true,\"pid\":%d,\"state\":", (int)getpid());
	json_append_string(&b, sup_state_to_string(s->state));
	json_append(&b, ",\"config\":");
	json_append_string(&b, s->options.config_path);
	json_append(&b, ",\"generations\":[");
	for (struct generation *g = s->generations; g; g = g->next) {
		const char *role = g == s->current ? "current" : g == s->reload.gen ? "new" : "old";
		json_append(&b, "%s{\"generation\":%u,\"pid\":%d,\"state\":", g == s->generations ? "" : ",", g->id,
			    (int)g->pid);
		json_append_string(&b, gen_state_to_string(g->state));
		json_append(&b, ",\"role\":\"%s\",\"uptime_ms\":%" PRIu64 ",\"status\":", role,
			    (now - g->started_usec) / USEC_PER_MSEC);
		json_append_string(&b, g->status);
		json_append(&b, "}");
	}
	json_append(&b, "],\"listeners\":[");
	for (size_t i = 0; i < s->n_listeners; i++) {
		json_append(&b, "%s{\"name\":", i ? "," : "");
		json_append_string(&b, s->listeners[i].name);
		json_append(&b, ",\"fd\":%zu,\"address\":", 3 + i);
		json_append_string(&b, addr_format(&s->listeners[i].address, abuf));
		json_append(&b, ",\"inherited\":%s}", s->listeners[i].inherited ? "true" : "false");
	}
	json_append(&b, "],\"reload_in_progress\":%s,\"reload_queued\":%s,\"last_reload\":",
		    s->state == SUP_RELOADING ? "true" : "false", s->reload_queued ? "true" : "false");
	if (s->last_reload.seq) {
		json_append(&b, "{\"reload\":%" PRIu64 ",\"ok\":%s,\"message\":", s->last_reload.seq,
			    s->last_reload.ok ? "true" : "false");
		json_append_string(&b, s->last_reload.message);
		json_append(&b, ",\"duration_ms\":%" PRIu64 "}", s->last_reload.duration_usec / USEC_PER_MSEC);
	} else
		json_append(&b, "null");
	json_append(&b, ",\"restarts\":%u,\"failures_in_a_row\":%u", s->restarts, s->failures);

	/* The same, as text for `baton status` without --json (so the client needs no JSON array reader). */
	struct json_buf t = {0};
	json_append(&t, "baton pid %d: %s", (int)getpid(), sup_state_to_string(s->state));
	if (s->options.config_path)
		json_append(&t, " (%s)", s->options.config_path);
	json_append(&t, "\n");
	for (struct generation *g = s->generations; g; g = g->next)
		json_append(&t, "  generation %u: pid %d, %s%s, up %" PRIu64 "s%s%s\n", g->id, (int)g->pid,
			    gen_state_to_string(g->state), g == s->current ? " (current)" : "",
			    (now - g->started_usec) / USEC_PER_SEC, g->status ? ", status: " : "", strempty(g->status));
	if (!s->generations)
		json_append(&t, "  no generation running\n");
	for (size_t i = 0; i < s->n_listeners; i++)
		json_append(&t, "  listener %s: fd %zu, %s%s\n", s->listeners[i].name, 3 + i,
			    addr_format(&s->listeners[i].address, abuf),
			    s->listeners[i].inherited ? " (inherited)" : "");
	if (s->last_reload.seq)
		json_append(&t, "  last reload (#%" PRIu64 "): %s: %s\n", s->last_reload.seq,
			    s->last_reload.ok ? "ok" : "failed", strempty(s->last_reload.message));
	else
		json_append(&t, "  no reload yet\n");
	json_append(&t, "  restarts: %u", s->restarts);
	_cleanup_free_ char *text = json_buf_take(&t);
	json_append(&b, ",\"text\":");
	json_append_string(&b, text);
	json_append(&b, "}");
	return json_buf_take(&b);
}

static void client_reply(struct supervisor *s, struct control_client *cl, const char *json) {
	int r = json ? control_client_reply(cl, json) : control_client_reply_error(cl, "out of memory");
	if (r < 0)
		log_debug_errno(r, "Failed to reply to control client %u, ignoring", cl->id);
	client_close(s, cl);
}

void loop_reload_finished(struct supervisor *s, uint64_t seq, bool ok, const char *message) {
	for (struct control_client *cl = s->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (!cl->has_request || cl->request != CONTROL_RELOAD || cl->waiting_for != seq)
			continue;
		struct json_buf b = {0};
		json_append(&b, "{\"ok\":%s,\"reload\":%" PRIu64 ",\"%s\":", ok ? "true" : "false", seq,
			    ok ? "message" : "error");
		json_append_string(&b, message);
		if (ok && s->current)
			json_append(&b, ",\"generation\":%u,\"pid\":%d,\"duration_ms\":%.3f,\"ready_ms\":%.3f",
				    s->current->id, (int)s->current->pid, (double)s->last_reload.duration_usec / 1000.0,
				    (double)s->last_reload.ready_usec / 1000.0);
		json_append(&b, "}");
		_cleanup_free_ char *json = json_buf_take(&b);
		client_reply(s, cl, json);
	}
}

static void handle_request(struct supervisor *s, struct control_client *cl) {
	/* One request per connection: stop reading, so a client that shuts down its side while it waits for a reload
	 * does not wake the loop again. */
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, cl->fd, NULL);
	char why[64];
	snprintf(why, sizeof(why), "control: %s", control_request_to_string(cl->request));
	log_debug("control client %u: %s", cl->id, control_request_to_string(cl->request));

	switch (cl->request) {
	case CONTROL_STATUS: {
		_cleanup_free_ char *json = status_json(s);
		client_reply(s, cl, json);
		break;
	}
	case CONTROL_RELOAD: {
		/* Whatever is in progress, the reload that reads the config from now on is the next one. */
		cl->waiting_for = s->last_reload_seq + 1;
		struct event ev = {.type = EV_RELOAD_REQUEST, .why = why};
		dispatch(s, &ev);
		break;
	}
	case CONTROL_STOP: {
		/* Answered when baton exits (supervisor_teardown). */
		struct event ev = {.type = EV_STOP_REQUEST, .why = why};
		dispatch(s, &ev);
		break;
	}
	default:
		break;
	}
}

static void handle_control_accept(struct supervisor *s) {
	for (int i = 0; i < 64; i++) {
		struct control_client *cl;
		int r = control_accept(&s->control, &cl);
		if (r == -EAGAIN)
			return;
		if (r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM) {
			/* The pending connection stays queued and the socket stays readable: without a pause the loop
			 * would spin. Accepting resumes in a second, when fds may have been freed. */
			log_warning_errno(r, "Failed to accept a control connection, pausing for 1s");
			struct epoll_event ev = {.events = 0, .data.u64 = TAG_CONTROL};
			epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->control.fd, &ev);
			s->control_resume_usec = now_usec() + USEC_PER_SEC;
			return;
		}
		if (r < 0)
			continue;
		r = epoll_add(s->epoll_fd, cl->fd, TAG(TAG_CLIENT, cl->id));
		if (r < 0) {
			log_warning_errno(r, "Failed to watch control client %u, dropping it", cl->id);
			client_close(s, cl);
		}
	}
}

static void handle_control_client(struct supervisor *s, unsigned id) {
	struct control_client *cl = control_client_by_id(&s->control, id);
	if (!cl || cl->has_request)
		return;
	int r = control_client_read(cl);
	if (r < 0) {
		client_close(s, cl);
		return;
	}
	if (r > 0)
		handle_request(s, cl);
}

/* ---- setup, teardown and the loop ---- */

static int supervisor_setup(struct supervisor *s, char **ret_error) {
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

	/* systemd >= 254 announces an fd store in $FDSTORE; 252 does not, so there it takes systemd.fd-store: true
	 * (with FileDescriptorStoreMax= in the unit). */
	uint64_t fdstore_max = 0;
	const char *fdstore_env = getenv("FDSTORE");
	if (fdstore_env)
		(void)parse_uint64(fdstore_env, &fdstore_max);
	s->fd_store = notify_upstream_enabled() && (s->config->fd_store == FD_STORE_YES ||
						    (s->config->fd_store == FD_STORE_AUTO && fdstore_max > 0));

	/* WATCHDOG_USEC counts only when WATCHDOG_PID is unset or baton's own pid (sd_watchdog_enabled checks it). */
	uint64_t watchdog_usec = 0;
	if (sd_watchdog_enabled(/* unset_environment= */ 0, &watchdog_usec) > 0 && watchdog_usec > 0) {
		s->watchdog_interval_usec = watchdog_usec / 2;
		s->watchdog_next_usec = now_usec() + s->watchdog_interval_usec;
		log_debug("systemd's watchdog: pinging every %" PRIu64 " ms",
			  s->watchdog_interval_usec / USEC_PER_MSEC);
	}

	_cleanup_free_ char *path = NULL;
	r = config_control_socket(s->config, &path);
	if (r < 0)
		return log_error_errno(r, "Failed to determine the control socket");
	if (path) {
		r = control_open(&s->control, path, ret_error);
		if (r < 0)
			return r;
		r = epoll_add(s->epoll_fd, s->control.fd, TAG_CONTROL);
		if (r < 0)
			return log_error_errno(r, "Failed to watch the control socket");
		log_debug("control socket at %s", path);
	}
	return 0;
}

static void supervisor_teardown(struct supervisor *s) {
	/* `baton stop` reads this line, then waits for the connection to close. That happens when the kernel closes
	 * the fd as baton's process ends, not here: the rest of the teardown (and an ASan leak check) still runs, and
	 * the client must not return while baton is alive. So the fd is left open on purpose. */
	for (struct control_client *cl = s->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (cl->has_request && cl->request == CONTROL_STOP) {
			char json[64];
			snprintf(json, sizeof(json), "{\"ok\":true,\"exit_status\":%d}", s->exit_code);
			control_client_reply(cl, json);
			cl->fd = -1;
		}
	}
	control_close(&s->control);

	while (s->generations) {
		struct generation *g = s->generations;
		s->generations = g->next;
		generation_free(g);
	}
	config_free(s->reload.config);
	listeners_free(s->reload.listeners, s->reload.n_listeners);
	free(s->last_reload.message);
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
		reap_children(s);
		break;
	case TAG_CONTROL:
		handle_control_accept(s);
		break;
	case TAG_CLIENT:
		handle_control_client(s, (unsigned)(tag >> 8));
		break;
	case TAG_OUTPUT:
		readiness_output(s, tag >> 8);
		break;
	}
}

int supervisor_run(const struct supervisor_options *o, struct config *config, struct listener *listeners,
		   size_t n_listeners) {
	struct supervisor s = {
		.options = *o,
		.config = config,
		.listeners = listeners,
		.n_listeners = n_listeners,
		.state = SUP_STARTING,
		.epoll_fd = -1,
		.signal_fd = -1,
		.timer_fd = -1,
		.notify_fd = -1,
		.control = {.fd = -1},
		.control_resume_usec = USEC_INFINITY,
		.restart_usec = USEC_INFINITY,
	};
	_cleanup_free_ char *error = NULL;

	int r = supervisor_setup(&s, &error);
	if (r < 0) {
		if (error)
			log_error("%s", error);
		supervisor_teardown(&s);
		return EXIT_SYSTEM;
	}

	r = supervisor_start(&s, &error);
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
		struct epoll_event events[16];
		int n = epoll_wait(s.epoll_fd, events, (int)ARRAY_SIZE(events), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot happen short of a bug; without a loop nothing can be supervised, so take everything
			 * down. */
			log_error_errno(errno, "epoll_wait failed");
			for (struct generation *g = s.generations; g; g = g->next)
				kill(-g->pid, SIGKILL);
			s.exit_code = EXIT_SYSTEM;
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
