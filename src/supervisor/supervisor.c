/* The supervisor's lifecycle (supervisor.h). Everything that happens is an event, and what baton does about it is
 * looked up in transitions[state][event] at the end of this file: reading that table tells the whole lifecycle. The
 * event sources (run.c) only turn file descriptors into events; the mechanisms (generation.c, readiness.c,
 * sockets.c, upstream.c) do what a transition decides. */
#include "supervisor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "notify.h"
#include "proc.h"
#include "readiness.h"
#include "util.h"

typedef void (*transition_fn)(struct supervisor *s, const struct event *ev);

static const char *const sup_state_names[_SUP_STATE_MAX] = {
	[SUP_STARTING] = "starting",  [SUP_RUNNING] = "running",   [SUP_RELOADING] = "reloading",
	[SUP_BACKOFF] = "restarting", [SUP_STOPPING] = "stopping", [SUP_DONE] = "done",
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

const char *sup_event_to_string(enum sup_event ev) {
	return ev < _EV_MAX ? event_names[ev] : "?";
}

/* ---- what transitions use: the queue, the outbox, generations started and listener sets swapped ---- */

/* Queues a follow-up event: it runs once the transition in progress has returned. */
static void post(struct supervisor *s, const struct event *ev) {
	if (s->n_queued >= SUP_QUEUE_MAX) {
		/* Cannot happen: a transition queues at most one event (a queued reload). */
		log_error("event queue full, dropping event '%s'", sup_event_to_string(ev->type));
		return;
	}
	s->queue[s->n_queued++] = *ev;
}

/* Reload seq has ended (or will not run): control clients waiting for it get this reply from run.c. */
static void reply_reload(struct supervisor *s, uint64_t seq, bool ok, const char *message) {
	struct reload_reply *r = calloc(1, sizeof(*r));
	if (!r || !(r->message = strdup(message))) {
		free(r);
		log_error("out of memory: the reply to reload %" PRIu64 " is lost", seq);
		return;
	}
	r->seq = seq;
	r->ok = ok;
	if (ok && s->current) {
		r->generation = s->current->id;
		r->pid = s->current->pid;
		r->duration_usec = s->last_reload.duration_usec;
		r->ready_usec = s->last_reload.ready_usec;
	}
	struct reload_reply **p = &s->replies;
	while (*p)
		p = &(*p)->next;
	*p = r;
}

/* Starts the next generation of config c on the listeners ls, and its readiness checks. current: it is the
 * current generation from the start (the first start, a restart), so it takes the terminal's foreground at once;
 * a reload's new generation takes it when it becomes current (run.c). */
static int start_generation(struct supervisor *s, const struct config *c, const struct listener *ls, size_t n,
			    bool current, struct generation **ret, char **ret_error) {
	struct generation_spec spec = {
		.config = c,
		.listeners = ls,
		.n_listeners = n,
		.id = s->last_generation + 1,
		.notify_socket = s->notify_path,
		.nofile = &s->options.nofile,
		.loop = s->loop,
		.take_terminal = current && s->terminal,
		/* program.cgroup: never, on a reload too, means none for this generation. */
		.cgroups = c->cgroup_mode != CGROUP_NEVER ? s->cgroups : NULL,
	};
	int r = generation_start(&s->generations, &spec, ret, ret_error);
	if (r < 0)
		return r;
	s->last_generation = spec.id;
	readiness_begin(*ret);
	if (c->readiness_type == READINESS_NONE) {
		/* Ready now, before anything else can happen to it (a program that is done at once exits right away).
		 */
		log_info("generation %u (pid %d): readiness.type is none", (*ret)->id, (int)(*ret)->pid);
		post(s, &(struct event){.type = EV_READY, .gen = *ret});
	}
	return 0;
}

/* The new listener set of a reload becomes the supervisor's; the fd store follows it. */
static void listeners_commit(struct supervisor *s, struct listener *ls, size_t n) {
	upstream_fd_store_update(&s->upstream, s->listeners, s->n_listeners, ls, n);
	listeners_hand_over(ls, n, s->listeners, s->n_listeners);
	listeners_free(s->listeners, s->n_listeners);
	s->listeners = ls;
	s->n_listeners = n;
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
	reply_reload(s, s->last_reload_seq + 1, false, "baton is stopping");
	notify_upstream("STOPPING=1\nSTATUS=stopping");
	for (struct generation *g = s->generations; g; g = g->next)
		generation_stop(s->generations, g, s->config, s->now);
	if (!s->generations)
		done(s, exit_code);
}

static void on_stop_request(struct supervisor *s, const struct event *ev) {
	log_info("%s, stopping", ev->why ? ev->why : "stop requested");
	begin_stop(s, 0);
}

static void on_stop_request_again(struct supervisor *s, const struct event *ev) {
	log_info("%s while stopping; still waiting for %zu generation(s)", ev->why ? ev->why : "stop requested",
		 generations_alive(s->generations));
}

static void on_stop_timeout(struct supervisor *s, const struct event *ev) {
	if (ev->gen->state == GEN_DRAINING) {
		generation_stop(s->generations, ev->gen, s->config, s->now);
		return;
	}
	generation_kill(s->generations, ev->gen, "did not stop within stop.timeout");
}

/* A reload asked for while baton could not start one runs once the current step is done: queued, it runs after the
 * transition that got baton there. */
static void start_queued_reload(struct supervisor *s) {
	if (!s->reload_queued)
		return;
	post(s, &(struct event){.type = EV_RELOAD_REQUEST, .why = "queued reload"});
}

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
	s->restart_usec = s->now + delay;

	char buf[32];
	log_notice("%s; restarting in %s (failure %u in a row)", why, format_duration(delay, buf), s->failures);
	notify_upstreamf("STATUS=restarting in %s: %s", buf, why);
	start_queued_reload(s);
}

/* The current generation ended on its own (a crash, or a clean exit). restart.policy decides. */
static void current_ended(struct supervisor *s, struct generation *g, int wait_status, bool interrupted) {
	char buf[64], why[128];
	const char *what = wait_status_describe(wait_status, buf);
	int code = wait_status_exit_code(wait_status);
	bool clean = WIFEXITED(wait_status) && code == 0;
	enum restart_policy policy = s->config->restart_policy;

	snprintf(why, sizeof(why), "generation %u (pid %d) %s", g->id, (int)g->pid, what);
	if (interrupted) {
		/* Ctrl-C or Ctrl-\ at the terminal the program held: the user ended it, as they would without baton. */
		log_notice("%s from the terminal, exiting", why);
		notify_upstreamf("STATUS=program %s", what);
		begin_stop(s, code);
		return;
	}
	if (policy == RESTART_NEVER || (policy == RESTART_ON_FAILURE && clean)) {
		log_notice("%s; restart.policy is %s, exiting", why, restart_policy_to_string(policy));
		notify_upstreamf("STATUS=program %s", what);
		begin_stop(s, code);
		return;
	}
	/* A generation that stayed up long enough had recovered from earlier failures. */
	if (g->ready_usec && s->now - g->ready_usec >= s->config->restart_max_delay_usec)
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
	uint64_t took = generation_ready(g, s->now);
	log_info("generation %u is ready (%" PRIu64 " ms after start)", g->id, took / USEC_PER_MSEC);
	s->ever_ready = true;
	upstream_ready(s->current);
	now_running(s);
}

static void on_started_exited(struct supervisor *s, const struct event *ev) {
	char buf[64];
	struct generation *g = ev->gen;
	if (g != s->current) {
		log_info("generation %u (pid %d) %s", g->id, (int)g->pid, wait_status_describe(ev->wait_status, buf));
		return;
	}
	if (s->ever_ready && !ev->interrupted) {
		/* It had been serving before: this is a crash loop, not a failed start. */
		char why[128];
		snprintf(why, sizeof(why), "generation %u (pid %d) %s before it was ready", g->id, (int)g->pid,
			 wait_status_describe(ev->wait_status, buf));
		schedule_restart(s, why);
		return;
	}
	/* The first start failed: baton ends with the program's status, so systemd sees the start fail. A program
	 * that was done and exited 0 (or that the user interrupted) did not fail. */
	bool failed = ev->wait_status != 0 && !ev->interrupted;
	log_internal(failed ? LOG_ERR : LOG_INFO, 0, "generation %u (pid %d) %s before it was ready", g->id,
		     (int)g->pid, wait_status_describe(ev->wait_status, buf));
	notify_upstreamf("STATUS=program %s before it was ready", wait_status_describe(ev->wait_status, buf));
	s->current = NULL;
	begin_stop(s, wait_status_exit_code(ev->wait_status));
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
	generation_stop(s->generations, g, s->config, s->now);
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
	generation_kill(s->generations, g, ev->why ? ev->why : why);
}

static void on_running_ready(struct supervisor *s, const struct event *ev) {
	log_debug("generation %u sent READY=1 again, ignoring", ev->gen->id);
}

/* A generation that is not the current one ended: an old one finished draining, or a failed new one was reaped. */
static void on_other_exited(struct supervisor *s, const struct event *ev) {
	char buf[64];
	log_info("generation %u (pid %d) %s", ev->gen->id, (int)ev->gen->pid,
		 wait_status_describe(ev->wait_status, buf));
}

static void on_running_exited(struct supervisor *s, const struct event *ev) {
	if (ev->gen == s->current)
		current_ended(s, ev->gen, ev->wait_status, ev->interrupted);
	else
		on_other_exited(s, ev);
}

static void on_restart_due(struct supervisor *s, const struct event *ev) {
	_cleanup_free_ char *error = NULL;
	struct generation *g;
	s->restarts++;
	int r = start_generation(s, s->config, s->listeners, s->n_listeners, true, &g, &error);
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
		 sup_state_to_string(s->state), s->last_reload_seq + 1);
	s->reload_queued = true;
}

static void on_reload_refused(struct supervisor *s, const struct event *ev) {
	log_info("%s while stopping, ignoring", ev->why ? ev->why : "reload requested");
	reply_reload(s, s->last_reload_seq + 1, false, "baton is stopping");
}

/* Ends the reload in progress (or one that could not start) and reports it. */
static void reload_finish(struct supervisor *s, bool ok, const char *message) {
	struct reload *rl = &s->reload;
	uint64_t now = s->now;
	free(s->last_reload.message);
	s->last_reload = (struct reload_result){
		.seq = rl->seq,
		.ok = ok,
		.message = strdup(message),
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

	reply_reload(s, seq, ok, message);
}

/* The reload failed: the new generation (if any) is killed, the new config and sockets are dropped, and whatever
 * was serving keeps serving. READY=1 goes upstream either way: systemd waits for it after RELOADING=1. */
static void reload_fail(struct supervisor *s, const char *why) {
	struct reload *rl = &s->reload;
	if (rl->gen && rl->gen->state != GEN_KILLED) {
		/* Stopped, not killed: a program that does not notify may serve on the shared sockets before it
		 * counts as ready, and its requests in flight can finish. */
		log_info("generation %u (pid %d) is discarded: the reload failed", rl->gen->id, (int)rl->gen->pid);
		generation_stop(s->generations, rl->gen, s->config, s->now);
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
		uint64_t took = generation_ready(rl->gen, s->now);
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

	upstream_ready(s->current);
	if (old && old != g)
		generation_retire(s->generations, old, s->config, s->now);
	reload_finish(s, true, msg);
	now_running(s);
}

/* Starts the new generation of the reload in progress. */
static void reload_start_generation(struct supervisor *s) {
	struct reload *rl = &s->reload;
	_cleanup_free_ char *error = NULL;
	int r = start_generation(s, rl->config, rl->listeners, rl->n_listeners, false, &rl->gen, &error);
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
	uint64_t now = s->now;
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
		if (!listeners_match_config(s->listeners, s->n_listeners, c)) {
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
		s->current->deadline_usec = s->now + c->readiness_timeout_usec;
		return;
	}
	/* Nothing runs (restarting after a crash): any strategy comes down to starting the new config now. */
	if (rl->strategy == RELOAD_SIGNAL)
		rl->strategy = RELOAD_REPLACE;

	r = sock_open_all(c, s->listeners, s->n_listeners, NULL, 0, &rl->listeners, &error);
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
		generation_stop(s->generations, rl->old, s->config, s->now);
		notify_upstreamf("STATUS=reloading: waiting for generation %u to exit", rl->old->id);
		return;
	}
	reload_start_generation(s);
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
			 wait_status_describe(ev->wait_status, buf));
		reload_fail(s, why);
	} else if (g == rl->old) {
		rl->old = NULL;
		log_info("generation %u (pid %d) %s; starting its replacement", g->id, (int)g->pid,
			 wait_status_describe(ev->wait_status, buf));
		reload_start_generation(s);
	} else if (g == s->current) {
		s->current = NULL;
		snprintf(why, sizeof(why), "generation %u (pid %d) %s during the reload", g->id, (int)g->pid,
			 wait_status_describe(ev->wait_status, buf));
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

static void run_one(struct supervisor *s, const struct event *ev) {
	transition_fn fn = transitions[s->state][ev->type];
	log_debug("event '%s' (generation %u) in state '%s'%s", event_names[ev->type], ev->gen ? ev->gen->id : 0,
		  sup_state_names[s->state], fn ? "" : ": ignored");
	if (fn)
		fn(s, ev);
}

/* Runs the follow-up events in the order they were queued (one may queue another), then frees the generations
 * that ended. */
static void drain(struct supervisor *s) {
	for (size_t i = 0; i < s->n_queued && s->state != SUP_DONE; i++)
		run_one(s, &s->queue[i]);
	s->n_queued = 0;
	while (s->ended) {
		struct generation *g = s->ended;
		s->ended = g->next;
		/* No pointer to it stays behind: a transition that kept it (the current generation of a stopping
		 * baton, say) no longer needs it. */
		if (s->current == g)
			s->current = NULL;
		if (s->reload.gen == g)
			s->reload.gen = NULL;
		if (s->reload.old == g)
			s->reload.old = NULL;
		generation_free(g);
	}
}

void supervisor_dispatch(struct supervisor *s, const struct event *ev, uint64_t now) {
	s->now = now;
	run_one(s, ev);
	drain(s);
}

void supervisor_generation_ended(struct supervisor *s, struct generation *g, int wait_status, bool interrupted,
				 uint64_t now) {
	generation_unlink(&s->generations, g);
	/* Freed only after the dispatch: the transition (and what it queues) may still look at it. */
	g->next = s->ended;
	s->ended = g;
	supervisor_dispatch(
		s, &(struct event){.type = EV_EXITED, .gen = g, .wait_status = wait_status, .interrupted = interrupted},
		now);
}

struct reload_reply *supervisor_take_replies(struct supervisor *s) {
	return TAKE_PTR(s->replies);
}

void reload_replies_free(struct reload_reply *r) {
	while (r) {
		struct reload_reply *next = r->next;
		free(r->message);
		free(r);
		r = next;
	}
}

uint64_t supervisor_next_deadline(const struct supervisor *s) {
	uint64_t next = USEC_INFINITY;
	for (const struct generation *g = s->generations; g; g = g->next) {
		if (g->deadline_usec < next)
			next = g->deadline_usec;
		if (g->watchdog_deadline_usec < next)
			next = g->watchdog_deadline_usec;
		if (g->check_usec < next)
			next = g->check_usec;
	}
	if (s->upstream.watchdog_next_usec < next)
		next = s->upstream.watchdog_next_usec;
	if (s->state == SUP_BACKOFF && s->restart_usec < next)
		next = s->restart_usec;
	return next;
}

void supervisor_init(struct supervisor *s, const struct supervisor_options *o, struct config *config,
		     struct listener *listeners, size_t n_listeners, struct evloop *loop, const char *notify_path) {
	*s = (struct supervisor){
		.options = *o,
		.config = config,
		.listeners = listeners,
		.n_listeners = n_listeners,
		.state = SUP_STARTING,
		.restart_usec = USEC_INFINITY,
		.loop = loop,
		.notify_path = notify_path,
		.upstream = {.watchdog_next_usec = USEC_INFINITY},
	};
}

/* Starts the first generation. */
int supervisor_start(struct supervisor *s, uint64_t now, char **ret_error) {
	struct generation *g;
	s->now = now;
	/* Before the program runs: from now on a crash of baton (kill -9) leaves the sockets open in systemd. */
	upstream_fd_store_add(&s->upstream, s->listeners, s->n_listeners);
	int r = start_generation(s, s->config, s->listeners, s->n_listeners, true, &g, ret_error);
	if (r < 0)
		return r;
	s->current = g;
	s->state = SUP_STARTING;
	notify_upstreamf("STATUS=starting generation %u (pid %d)", g->id, (int)g->pid);
	drain(s);
	return 0;
}

void supervisor_free(struct supervisor *s) {
	while (s->generations) {
		struct generation *g = s->generations;
		s->generations = g->next;
		generation_free(g);
	}
	config_free(s->reload.config);
	listeners_free(s->reload.listeners, s->reload.n_listeners);
	s->reload = (struct reload){0};
	free(s->last_reload.message);
	s->last_reload.message = NULL;
	reload_replies_free(TAKE_PTR(s->replies));
	listeners_free(s->listeners, s->n_listeners);
	s->listeners = NULL;
	s->n_listeners = 0;
	config_free(s->config);
	s->config = NULL;
}

int supervisor_load_config(const struct supervisor_options *o, struct config **ret, char **ret_error) {
	struct config *c = NULL;
	int r;
	r = config_load_set(o->config_path, o->sets, &c, ret_error);
	if (r >= 0)
		r = config_apply_cli(c, o->listens, o->command, ret_error);
	if (r < 0) {
		config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}
