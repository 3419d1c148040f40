/* `baton run`'s event sources (run.h): the signalfd, the timer, each generation's pidfd and output pipes, the notify
 * socket and the control socket are turned into events for the state machine (supervisor.c), and what it leaves in
 * its outbox goes back to the control clients (run-core.c). The signals and the children's ends are
 * run-children.c's. With no deadline pending the loop sleeps in epoll_wait and baton does not wake up at all. */
#include "run.h"

#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include "control.h"
#include "evloop.h"
#include "libsystemd.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "readiness.h"
#include "run-children.h"
#include "run-core.h"
#include "run-upgrade.h"
#include "status.h"
#include "supervisor.h"
#include "util.h"

/* ---- the timer ---- */

static uint64_t next_deadline(const struct run *r) {
	uint64_t next = supervisor_next_deadline(&r->sup);
	uint64_t remnants = remnants_next_deadline(r->remnants);
	if (remnants < next)
		next = remnants;
	for (struct control_client *cl = r->control.clients; cl; cl = cl->next)
		if (cl->deadline_usec < next)
			next = cl->deadline_usec;
	if (r->control_resume_usec < next)
		next = r->control_resume_usec;
	uint64_t check = run_upgrade_deadline(r);
	if (check < next)
		next = check;
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
			run_generation_ended(r, g, g->launcher_status, false);
		else if (g->state == GEN_STARTING || g->state == GEN_READY)
			run_dispatch(r, &(struct event){.type = EV_READY_TIMEOUT, .gen = g});
		else if (g->state == GEN_STOPPING || g->state == GEN_DRAINING)
			run_dispatch(r, &(struct event){.type = EV_STOP_TIMEOUT, .gen = g});
	}
	while (s->state != SUP_DONE && (g = due(s, offsetof(struct generation, check_usec), now))) {
		char how[READINESS_HOW_MAX];
		if (readiness_check(&r->loop, s->generations, g, &s->options.nofile, now, how))
			run_ready(r, g, how);
	}
	while (s->state != SUP_DONE && (g = due(s, offsetof(struct generation, watchdog_deadline_usec), now))) {
		g->watchdog_deadline_usec = USEC_INFINITY;
		run_dispatch(r, &(struct event){.type = EV_WATCHDOG, .gen = g});
	}
	if (s->upstream.watchdog_next_usec <= now)
		upstream_watchdog_due(&s->upstream, s->state != SUP_BACKOFF, now);
	/* After the watchdogs: a new generation that hung at the end of its window is rolled back, not committed. */
	if (s->state == SUP_CONFIRMING && s->reload.confirm_until <= now)
		run_dispatch(r, &(struct event){.type = EV_CONFIRMED});
	if (s->state == SUP_BACKOFF && s->restart_usec <= now) {
		s->restart_usec = USEC_INFINITY;
		run_dispatch(r, &(struct event){.type = EV_RESTART_DUE});
	}
	remnants_due(&r->remnants, now);
	run_upgrade_timer(r, now);
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

/* ---- the program's output (readiness.type log) ---- */

static void handle_output(struct run *r, uint64_t id) {
	unsigned gid = (unsigned)(id >> 2), stream = (unsigned)(id & 1);
	struct generation *g = generation_by_id(r->sup.generations, gid);
	if (!g)
		return;
	bool starting = g->state == GEN_STARTING && g->readiness == READINESS_LOG;
	if (generation_output(&r->loop, g, stream, id & 2, starting ? &g->config->readiness_regex : NULL))
		run_ready(r, g,
			  stream ? "its stderr matched readiness.pattern" : "its stdout matched readiness.pattern");
}

/* ---- notify ---- */

/* Which generation a notify sender belongs to: the generation's main process itself; a process of its cgroup, or its
 * keeper or a descendant of it; or, for a generation with neither (handed over by a baton without keepers), an
 * orphan it adopted (its old main process, after MAINPID=), a process in its process group, or a descendant of any
 * of these (a shell script's systemd-notify). Anyone else is not heard. */
static struct generation *generation_of_sender(struct supervisor *s, pid_t pid) {
	if (pid <= 0)
		return NULL;
	struct generation *g = generation_by_pid(s->generations, pid);
	if (g || (g = generation_by_cgroup(s->generations, pid)))
		return g;
	for (g = s->generations; g; g = g->next)
		if (!g->in_cgroup && generation_has(g, pid))
			return g;
	pid_t pgid = getpgid(pid);
	for (g = s->generations; g && pgid > 1; g = g->next)
		if (!g->in_cgroup && g->keeper <= 0 && g->pgid == pgid)
			return g;
	pid_t self = getpid();
	for (int depth = 0; depth < 32 && pid > 1 && pid != self; depth++) {
		pid = proc_parent_of(pid);
		for (g = s->generations; g && pid > 1; g = g->next)
			if (pid == g->pid || (!g->in_cgroup && generation_has(g, pid)))
				return !g->in_cgroup && g->keeper <= 0 ? g : NULL;
	}
	return NULL;
}

/* MAINPID= (sd_notify(3)): a process of g names another live process of g as its main process, as systemd follows it
 * (a program that replaced itself: gone/daemon's ReplaceProcess). Status, stop, the watchdog, the exit status and
 * restart.policy follow the new one; the old one's exit no longer ends the generation. Anything else is refused. */
static void handle_mainpid(struct run *r, struct generation *g, pid_t sender, const struct notify_msg *m) {
	pid_t pid = m->mainpid;
	if (m->mainpid_invalid) {
		log_warning("generation %u: pid %d sent a MAINPID= that is not a PID, refused", g->id, (int)sender);
		return;
	}
	if (pid == g->pid)
		return; /* many programs say MAINPID=<themselves> with READY=1 */
	const char *why = NULL;
	char state = pid > 0 ? proc_state(pid) : 0;
	if (g->state != GEN_STARTING && g->state != GEN_READY)
		why = "the generation is stopping";
	else if (state == 0 || state == 'Z' || state == 'X')
		why = "no such live process";
	else if (pid == getpid() || generation_of_sender(&r->sup, pid) != g)
		why = "not a process of this generation";
	if (why) {
		log_warning("generation %u: pid %d sent MAINPID=%d, refused: %s", g->id, (int)sender, (int)pid, why);
		return;
	}
	log_info("generation %u: its main process is now pid %d (MAINPID= from pid %d; was pid %d)", g->id, (int)pid,
		 (int)sender, (int)g->pid);
	generation_follow_main(&r->loop, g, pid);
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
	if (m.mainpid || m.mainpid_invalid)
		handle_mainpid(r, g, d->pid, &m);
	bool serving = g == s->current && g->state == GEN_READY;
	switch (upstream_on_message(s->config, s->listeners, s->n_listeners, g, serving, &m, d, now_usec())) {
	case UPSTREAM_READY:
		run_dispatch(r, &(struct event){.type = EV_READY, .gen = g});
		break;
	case UPSTREAM_WATCHDOG_TRIGGER:
		run_dispatch(r, &(struct event){.type = EV_WATCHDOG,
						.gen = g,
						.why = "asked for its watchdog (WATCHDOG=trigger)"});
		break;
	case UPSTREAM_NOTHING:
		break;
	}
	/* What a program says when it is failing: in a confirm window that rolls the reload back (elsewhere nothing
	 * listens). g may be gone by now: looked up again. */
	if ((m.stopping || m.errno_value >= 0) && (g = generation_of_sender(s, d->pid))) {
		char why[64];
		if (m.stopping)
			snprintf(why, sizeof(why), "sent STOPPING=1");
		else
			snprintf(why, sizeof(why), "sent ERRNO=%d", m.errno_value);
		run_dispatch(r, &(struct event){.type = EV_UNHEALTHY, .gen = g, .why = why});
	}
}

static void handle_notify(struct run *r) {
	struct notify_datagram d;

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
		for (struct generation *g = r->sup.generations; g; g = g->next)
			generation_figures(g);
		_cleanup_free_ char *json = status_render(&r->sup, getpid(), now_usec());
		run_client_reply(r, cl, json);
		break;
	}
	case CONTROL_RELOAD:
		/* Whatever is in progress, the reload that reads the config from now on is the next one. */
		cl->reload_seq = r->sup.last_reload_seq + 1;
		run_dispatch(r, &(struct event){.type = EV_RELOAD_REQUEST, .why = why});
		break;
	case CONTROL_STOP:
		/* Answered when baton exits (teardown). */
		run_dispatch(r, &(struct event){.type = EV_STOP_REQUEST, .why = why});
		break;
	case CONTROL_UPGRADE:
		/* Carried out between two turns of the loop (run_upgrade_pending), never in the middle of a batch of
		 * events. */
		cl->upgrade_phase = UPGRADE_ASKED;
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

/* baton's cgroup subtree (program.cgroup): auto falls back, with one line, to process groups and adoption; required
 * cannot run without. */
static int setup_cgroups(struct run *r) {
	enum cgroup_mode mode = r->sup.config->cgroup_mode;
	if (mode == CGROUP_NEVER)
		return 0;
	_cleanup_free_ char *why = NULL;
	int k = cgroup_tree_open(&r->cgroups, &why);
	if (k < 0 && mode == CGROUP_REQUIRED) {
		log_error("program.cgroup is required, but %s", why ? why : strerror(-k));
		return k;
	}
	if (k < 0) {
		log_info("no cgroup per generation (%s): tracking process groups and the orphans they leave",
			 why ? why : strerror(-k));
		return 0;
	}
	log_debug("cgroups for generations in %s%s", r->cgroups.path,
		  *r->cgroups.controllers ? ", controllers enabled" : "");
	r->sup.cgroups = &r->cgroups;
	return 0;
}

/* The socket the program's NOTIFY_SOCKET names (notify.socket): by default a file in baton's runtime directory, as
 * systemd gives one (/run/systemd/notify), because some client libraries cannot reach an abstract address. */
static int setup_notify(struct run *r, char **ret_error) {
	const char *want = r->sup.config->notify_socket;
	_cleanup_free_ char *path = NULL;
	if (!want) {
		int k = notify_default_path(&path);
		if (k < 0)
			return fail_error(ret_error, k, "out of memory");
	}
	const char *where = !want ? path : streq(want, "abstract") ? NULL : want;
	int k = notify_server_open(where, &r->notify_fd, &r->notify_path, &r->notify_dev, &r->notify_ino, ret_error);
	if (k < 0)
		return k;
	log_debug("notify socket at %s", r->notify_path);
	return 0;
}

static int setup(struct run *r, char **ret_error) {
	int k = run_block_signals();
	if (k < 0)
		return log_error_errno(k, "Failed to block signals");
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);

	/* The terminal: with baton in its foreground, the current generation gets it (run_sync_terminal). */
	r->own_pgrp = getpgrp();
	r->sup.terminal = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == r->own_pgrp;
	r->foreground = r->sup.terminal ? r->own_pgrp : 0;
	if (r->sup.terminal)
		log_debug("baton holds the terminal's foreground: each current generation gets it");

	/* Orphaned descendants are reparented to baton, which reaps them: no zombies, also as PID 1. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "Failed to become a child subreaper, ignoring");

	/* What `baton upgrade` needs: the path to exec by default, and this very binary to go back to. */
	run_upgrade_setup(r);

	k = evloop_open(&r->loop, &mask);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the event loop");
	notify_upstream_watch(&r->loop, TAG_UPSTREAM);
	k = setup_notify(r, ret_error);
	if (k < 0)
		return k;
	r->sup.notify_path = r->notify_path;
	k = evloop_add(&r->loop, r->notify_fd, EPOLLIN, TAG_NOTIFY);
	if (k < 0)
		return log_error_errno(k, "Failed to set up the event loop");

	upstream_setup(&r->sup.upstream, r->sup.config, now_usec());

	k = setup_cgroups(r);
	if (k < 0)
		return k;

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

static void run_teardown(struct run *r) {
	/* `baton stop` reads this line, then waits for the connection to close. That happens when the kernel closes
	 * the fd as baton's process ends, not here: the rest of the teardown (and an ASan leak check) still runs, and
	 * the client must not return while baton is alive. So the fd is left open on purpose. */
	_cleanup_free_ char *stop_reply = status_stop_reply(r->sup.exit_code);
	int answered[CONTROL_CLIENTS_MAX];
	size_t n_answered = 0;
	for (struct control_client *cl = r->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (cl->has_request && cl->request == CONTROL_STOP && stop_reply) {
			if (control_client_reply(cl, stop_reply) >= 0 && n_answered < ARRAY_SIZE(answered))
				answered[n_answered++] = cl->fd;
			cl->fd = -1;
		}
	}
	run_upgrade_abort(r);
	control_close(&r->control);
	if (r->sup.terminal && r->foreground != r->own_pgrp)
		(void)tcsetpgrp(STDIN_FILENO, r->own_pgrp);
	remnants_free(r->remnants);
	supervisor_free(&r->sup);
	cgroup_tree_close(&r->cgroups);
	if (r->notify_path)
		notify_server_remove(r->notify_path, r->notify_dev, r->notify_ino);
	free(r->notify_path);
	if (r->notify_fd >= 0)
		close(r->notify_fd);
	notify_upstream_discard();
	evloop_close(&r->loop);
	if (r->exe_fd >= 0)
		close(r->exe_fd);
	run_free_strings(r);
	/* As PID 1, baton's exit kills everything in its PID namespace: a `baton stop` client (podman exec C baton
	 * stop) that has its answer but has not printed it yet would die with 137. It is given a second to hang up,
	 * which it does as it exits. A plain baton need not wait: its clients outlive it. */
	if (n_answered > 0 && getpid() == 1)
		control_linger(answered, n_answered, USEC_PER_SEC);
}

static void handle_event(struct run *r, uint64_t tag) {
	switch (tag & 0xff) {
	case EVLOOP_TAG_SIGNAL:
		run_handle_signals(r);
		break;
	case EVLOOP_TAG_TIMER:
		handle_timer(r);
		break;
	case TAG_NOTIFY:
		handle_notify(r);
		break;
	case GEN_TAG_PIDFD:
		/* The pidfd says the process exited; reaping (and the event) happens in one place for every child. */
		run_reap_children(r);
		break;
	case GEN_TAG_OUTPUT:
		handle_output(r, tag >> 8);
		break;
	case GEN_TAG_CGROUP:
		run_cgroup_event(r, (unsigned)(tag >> 8));
		break;
	case GEN_TAG_KEEPER:
		run_keeper_reports(r, (unsigned)(tag >> 8), false);
		remnants_reaped(&r->remnants);
		break;
	case TAG_CONTROL:
		handle_control_accept(r);
		break;
	case TAG_CLIENT:
		handle_control_client(r, (unsigned)(tag >> 8));
		break;
	case TAG_UPGRADE_CHECK:
		run_upgrade_output(r);
		break;
	case TAG_UPSTREAM:
		notify_upstream_writable();
		break;
	}
}

static int run_loop(struct run *r) {
	/* Done once the state machine is, and nothing of any generation is left. */
	while (r->sup.state != SUP_DONE || r->remnants) {
		/* Once the first generation is ready, off the start's path: baton moves itself into its cgroup leaf
		 * (cgroup.h says why not sooner). Before an upgrade's state is written, which assumes it. */
		if (r->sup.ever_ready && r->cgroups.fd >= 0 && !r->cgroups.settled) {
			int k = cgroup_tree_settle(&r->cgroups);
			if (k < 0)
				log_warning_errno(k, "Failed to move baton into %s/supervisor, ignoring",
						  r->cgroups.dir);
		}
		/* Between two turns: an upgrade that was asked for (which, when it succeeds, does not return). */
		run_upgrade_pending(r);
		int k = evloop_arm(&r->loop, next_deadline(r));
		if (k < 0)
			log_error_errno(k, "Failed to arm the timer");
		struct epoll_event events[16];
		int n = evloop_wait(&r->loop, events, (int)ARRAY_SIZE(events));
		if (n < 0) {
			/* Cannot happen short of a bug; without a loop nothing can be supervised, so take everything
			 * down. */
			log_error_errno(n, "epoll_wait failed");
			for (struct generation *g = r->sup.generations; g; g = g->next)
				kill(-g->pid, SIGKILL);
			r->sup.exit_code = EXIT_SYSTEM;
			break;
		}
		for (int i = 0; i < n && (r->sup.state != SUP_DONE || r->remnants); i++)
			handle_event(r, events[i].data.u64);
	}

	log_info("exiting with status %d", r->sup.exit_code);
	int code = r->sup.exit_code;
	run_teardown(r);
	return code;
}

/* libsystemd for NOTIFY_SOCKET alone: loaded once the first program is started, while it starts on another CPU, not
 * before it (its dlopen() maps seven libraries: 1.5 ms of every start under systemd when it came first;
 * bench/README.md). Loaded already when the start spoke to systemd. Returns 0, or -1 having said why it cannot be
 * loaded: systemd would wait for a READY=1 that cannot come. */
static int load_libsystemd_late(void) {
	const char *wanted = libsystemd_wanted();
	if (!wanted || libsystemd_load() >= 0)
		return 0;
	log_error("%s is set, but libsystemd cannot be loaded: %s", wanted, libsystemd_error());
	return -1;
}

/* What batons killed before they could clean up left beside this one (notify socket files, cgroups): removed once
 * the first program is started, while it starts up, not before (notify.h, cgroup.h). */
static void sweep_leftovers(struct run *r) {
	if (r->notify_path)
		notify_sweep_stale(r->notify_path);
	cgroup_tree_sweep(&r->cgroups);
}

int run_supervisor(const struct supervisor_options *o, struct config *config, struct listener *listeners,
		   size_t n_listeners, char *const *argv) {
	struct run r = RUN_INIT;
	r.argv = argv;
	supervisor_init(&r.sup, o, config, listeners, n_listeners, &r.loop, NULL);
	_cleanup_free_ char *error = NULL;

	int k = setup(&r, &error);
	if (k < 0) {
		if (error)
			log_error("%s", error);
		run_teardown(&r);
		return EXIT_SYSTEM;
	}

	k = supervisor_start(&r.sup, now_usec(), &error);
	if (k < 0) {
		if (error)
			log_error("Failed to start the program: %s", error);
		else
			log_error_errno(k, "Failed to start the program");
		notify_upstreamf("STATUS=failed to start: %s", error ? error : strerror(-k));
		run_teardown(&r);
		/* Both wrong: the missing library is said too, and is the exit status. */
		return load_libsystemd_late() < 0 ? EXIT_SYSTEM : EXIT_START;
	}

	/* A library that cannot be loaded stops the program at once. */
	if (load_libsystemd_late() < 0)
		supervisor_abort(&r.sup, EXIT_SYSTEM, now_usec());
	sweep_leftovers(&r);

	/* Config parsing and socket setup left freed memory in the heap; hand it back so an idle baton stays small. */
	malloc_trim(0);

	run_sync_terminal(&r);
	return run_loop(&r);
}

/* The new binary of `baton upgrade`: run-upgrade.c takes the state over (or goes back), and the loop carries on with
 * it; run-upgrade.c never calls the loop itself. */
int run_takeover(char *const *argv) {
	struct run r;
	if (run_upgrade_resume(argv, &r) < 0)
		return EXIT_SYSTEM;
	return run_loop(&r);
}
