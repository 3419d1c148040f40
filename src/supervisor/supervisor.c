/* The supervisor's lifecycle (supervisor.h). Everything that happens is an event, and what baton does about it is
 * looked up in transitions[state][event] at the end of this file: reading that table tells the whole lifecycle. The
 * event sources (run.c) only turn file descriptors into events; the mechanisms (generation.c, readiness.c,
 * sockets.c, upstream.c) do what a transition decides. */
#include "supervisor.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "notify.h"
#include "proc.h"
#include "readiness.h"
#include "supervisor-common.h"
#include "util.h"

typedef void (*transition_fn)(struct supervisor *s, const struct event *ev);

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
	sup_reply_reload(s, s->last_reload_seq + 1, false, "baton is stopping");
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
	sup_post(s, &(struct event){.type = EV_RELOAD_REQUEST, .why = "queued reload"});
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
	int r = sup_start_generation(s, s->config, s->listeners, s->n_listeners, true, &g, &error);
	if (r < 0) {
		_cleanup_free_ char *why =
			strdup_printf("failed to start the program: %s", error ? error : strerror(-r));
		log_error("%s", why ? why : "failed to start the program");
		schedule_restart(s, why ? why : "failed to start the program");
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
	sup_reply_reload(s, s->last_reload_seq + 1, false, "baton is stopping");
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
	/* A confirm probe runs the reload's config: it ends before that config is freed (or swapped in). */
	if (rl->gen && rl->gen->confirming)
		generation_end_readiness(rl->gen);
	if (ok)
		log_info("reload %" PRIu64 " done in %" PRIu64 " ms: %s", rl->seq,
			 s->last_reload.duration_usec / USEC_PER_MSEC, message);
	else
		log_error("reload %" PRIu64 " failed: %s", rl->seq, message);

	config_free(rl->config);
	listeners_free(rl->listeners, rl->n_listeners);
	uint64_t seq = rl->seq;
	*rl = (struct reload){0};

	sup_reply_reload(s, seq, ok, message);
}

/* The reload failed: the new generation (if any) is killed, the new config and sockets are dropped, and whatever
 * was serving keeps serving. READY=1 goes upstream either way: systemd waits for it after RELOADING=1. The message is
 * why, then sep and which generation serves, built in memory of its own size, so that a long reason (a config error
 * quoting its file and key) reaches the client, the status and the log whole. */
static void reload_abandon(struct supervisor *s, const char *why, const char *sep) {
	struct reload *rl = &s->reload;
	_cleanup_free_ char *msg = NULL, *restart_why = NULL;

	if (rl->gen && rl->gen->state != GEN_KILLED) {
		/* Stopped, not killed: a program that does not notify may serve on the shared sockets before it
		 * counts as ready, and its requests in flight can finish. */
		log_info("generation %u (pid %d) is discarded: the reload failed", rl->gen->id, (int)rl->gen->pid);
		generation_stop(s->generations, rl->gen, s->config, s->now);
	}

	if (s->current)
		msg = strdup_printf("%s%sgeneration %u keeps serving", why, sep, s->current->id);
	notify_upstreamf("READY=1\nSTATUS=reload failed: %s", msg ? msg : why);
	reload_finish(s, false, msg ? msg : why);

	if (s->current) {
		if (s->current->state == GEN_READY)
			now_running(s);
		else
			s->state = SUP_STARTING;
	} else {
		/* Nothing serves (it died meanwhile, or the restart strategy stopped it): the old config starts again.
		 */
		restart_why = strdup_printf("reload failed with no generation serving (%s)", why);
		schedule_restart(s, restart_why ? restart_why : why);
	}
}

/* A reload failed for the reason fmt says (printf-style). */
static void reload_fail(struct supervisor *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reload_fail(struct supervisor *s, const char *fmt, ...) {
	_cleanup_free_ char *why = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL; /* undefined on failure */
	va_end(ap);
	/* Out of memory: the reply still says that the reload failed. */
	reload_abandon(s, why ? why : "out of memory", "; ");
}

/* The new generation is serving: it becomes current, the new config and sockets are swapped in, and the old
 * generation is told to stop. how: what the message adds (how a confirm window ended), or "". */
static void reload_commit(struct supervisor *s, const char *how) {
	struct reload *rl = &s->reload;
	struct generation *old = s->current;
	struct generation *g = rl->gen ? rl->gen : s->current;
	char msg[400];

	if (rl->gen) {
		/* Ready now, or at the start of its confirm window. */
		uint64_t took =
			g->state == GEN_STARTING ? generation_ready(g, s->now) : g->ready_usec - g->started_usec;
		s->current = rl->gen;
		sup_listeners_commit(s, rl->listeners, rl->n_listeners);
		rl->listeners = NULL;
		rl->n_listeners = 0;
		snprintf(msg, sizeof(msg), "generation %u (pid %d) is serving, ready %" PRIu64 " ms after start%s",
			 g->id, (int)g->pid, took / USEC_PER_MSEC, how);
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
	int r = sup_start_generation(s, rl->config, rl->listeners, rl->n_listeners, false, &rl->gen, &error);
	if (r < 0) {
		reload_fail(s, "could not start the program: %s", error ? error : strerror(-r));
		return;
	}
	notify_upstreamf("STATUS=reloading: starting generation %u (pid %d)", rl->gen->id, (int)rl->gen->pid);
}

/* reload.strategy signal, with the current generation ready: it is sent reload.signal and reloads itself, with the
 * sockets it has. */
static void reload_by_signal(struct supervisor *s, const struct config *c) {
	if (!listeners_match_config(s->listeners, s->n_listeners, c)) {
		reload_fail(s, "the listeners changed, and reload.strategy signal cannot give a running program "
			       "new sockets (use replace or restart)");
		return;
	}
	int sig = c->reload_signal;
	log_info("sending %s to generation %u (pid %d)", strempty(signal_name(sig)), s->current->id,
		 (int)s->current->pid);
	int r = generation_signal(s->current, sig);
	if (r < 0) {
		reload_fail(s, "could not send %s: %s", strempty(signal_name(sig)), strerror(-r));
		return;
	}
	if (c->readiness_type != READINESS_NOTIFY || s->current->readiness != READINESS_NOTIFY) {
		/* Nothing will say when a program that does not notify has reloaded: delivering the signal is all
		 * there is to wait for. */
		reload_commit(s, "");
		return;
	}
	/* It reports RELOADING=1 ... READY=1 (or just READY=1) when done; the readiness timeout bounds that. */
	s->current->deadline_usec = s->now + c->readiness_timeout_usec;
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

	int r = supervisor_load_config(&s->options, s->config, &c, &error);
	if (r < 0) {
		/* Out of fds or memory is baton's trouble, not the file's. */
		bool system = r == -EMFILE || r == -ENFILE || r == -ENOMEM;
		reload_fail(s, "%s: %s", system ? "could not read the configuration" : "invalid configuration",
			    error ? error : strerror(-r));
		return;
	}
	rl->config = c;
	rl->strategy = c->reload_strategy;

	if (rl->strategy == RELOAD_SIGNAL && s->current && s->current->state == GEN_READY) {
		reload_by_signal(s, c);
		return;
	}
	/* Nothing runs (restarting after a crash): any strategy comes down to starting the new config now. */
	if (rl->strategy == RELOAD_SIGNAL)
		rl->strategy = RELOAD_REPLACE;

	r = sock_open_all(c, s->listeners, s->n_listeners, NULL, 0, &rl->listeners, &error);
	if (r < 0) {
		reload_fail(s, "%s", error ? error : strerror(-r));
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

/* The new generation is ready, but the reload is not done yet: the old one serves on beside it for reload.confirm,
 * and the new one must stay healthy that long (baton(1) RELOAD). */
static void begin_confirm(struct supervisor *s) {
	struct reload *rl = &s->reload;
	struct generation *g = rl->gen;
	char buf[32];
	uint64_t took = generation_ready(g, s->now);
	rl->confirm_until = s->now + rl->config->reload_confirm_usec;
	readiness_confirm_begin(g, s->now);
	s->state = SUP_CONFIRMING;
	format_duration(rl->config->reload_confirm_usec, buf);
	log_info("generation %u (pid %d) is ready (%" PRIu64 " ms after start); generation %u serves on beside it "
		 "for reload.confirm %s",
		 g->id, (int)g->pid, took / USEC_PER_MSEC, s->current->id, buf);
	/* No READY=1 yet: under Type=notify-reload systemd waits for it, and gets it at the commit or the rollback. */
	notify_upstreamf("STATUS=reloading: generation %u ready, confirming for %s; generation %u serving", g->id, buf,
			 s->current->id);
}

static void on_reloading_ready(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	/* A window needs an old generation to go back to: a reload while none serves (restarting) commits at once. */
	bool confirm = rl->config->reload_confirm_usec > 0 && s->current && s->current->state == GEN_READY;
	if (ev->gen == rl->gen && confirm)
		begin_confirm(s);
	else if (ev->gen == rl->gen || (!rl->gen && rl->strategy == RELOAD_SIGNAL && ev->gen == s->current))
		reload_commit(s, "");
	else
		log_debug("generation %u sent READY=1 during a reload, ignoring", ev->gen->id);
}

static void on_reloading_exited(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	struct generation *g = ev->gen;
	char buf[64], why[160];

	if (g == rl->gen) {
		rl->gen = NULL;
		reload_fail(s, "the new generation %u %s before it was ready", g->id,
			    wait_status_describe(ev->wait_status, buf));
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
			reload_fail(s, "%s", why);
		/* replace: the new generation may still come up and take over. */
	} else
		on_other_exited(s, ev);
}

static void on_reloading_timeout(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	char buf[32];
	const char *limit = format_duration(rl->config->readiness_timeout_usec, buf);

	if (ev->gen == rl->gen)
		reload_fail(s, "the new generation %u was not ready within %s (readiness.timeout)", ev->gen->id, limit);
	else if (ev->gen == s->current && rl->strategy == RELOAD_SIGNAL)
		reload_fail(s, "generation %u did not report READY=1 within %s of %s", ev->gen->id, limit,
			    strempty(signal_name(rl->config->reload_signal)));
}

static void on_reloading_stop(struct supervisor *s, const struct event *ev) {
	log_info("%s during reload %" PRIu64 ", abandoning it", ev->why ? ev->why : "stop requested", s->reload.seq);
	reload_finish(s, false, "baton is stopping");
	on_stop_request(s, ev);
}

/* The new generation failed within its confirm window (what: "exited with status 2"): the reload rolls back. The
 * new generation goes (stopped, or gone already, with everything it started); the old one never stopped serving and
 * stays current; the failed version is not restarted. */
static void rollback(struct supervisor *s, struct generation *g, const char *what) {
	char buf[32], why[600];
	snprintf(why, sizeof(why), "generation %u %s, %.1f s after ready, within reload.confirm %s: rolled back", g->id,
		 what, (double)(s->now - g->ready_usec) / (double)USEC_PER_SEC,
		 format_duration(s->reload.config->reload_confirm_usec, buf));
	reload_abandon(s, why, ", "); /* which logs it */
}

static void on_confirming_exited(struct supervisor *s, const struct event *ev) {
	struct reload *rl = &s->reload;
	struct generation *g = ev->gen;
	char buf[64], how[160];
	if (g == rl->gen) {
		rl->gen = NULL; /* nothing left to stop */
		rollback(s, g, wait_status_describe(ev->wait_status, buf));
	} else if (g == s->current) {
		/* Nothing is left to roll back to: the new generation takes over now, window or not. */
		snprintf(how, sizeof(how), ", before the end of reload.confirm: generation %u %s", g->id,
			 wait_status_describe(ev->wait_status, buf));
		log_warning("generation %u (pid %d) %s during the reload.confirm window; generation %u takes over now",
			    g->id, (int)g->pid, buf, rl->gen->id);
		s->current = NULL;
		reload_commit(s, how);
	} else
		on_other_exited(s, ev);
}

static void on_confirming_watchdog(struct supervisor *s, const struct event *ev) {
	struct generation *g = ev->gen;
	char buf[32], what[96];
	if (g != s->reload.gen) {
		on_watchdog(s, ev); /* the old generation hung: killed, and its exit hands over to the new one */
		return;
	}
	snprintf(what, sizeof(what), "missed its watchdog (no WATCHDOG=1 within %s)",
		 format_duration(g->watchdog_usec, buf));
	generation_kill(s->generations, g, ev->why ? ev->why : what);
	rollback(s, g, ev->why ? ev->why : what);
}

static void on_confirming_unhealthy(struct supervisor *s, const struct event *ev) {
	if (ev->gen == s->reload.gen)
		rollback(s, ev->gen, ev->why ? ev->why : "is unhealthy");
	else
		log_debug("generation %u is unhealthy (%s), but not in a confirm window, ignoring", ev->gen->id,
			  strempty(ev->why));
}

static void on_confirmed(struct supervisor *s, const struct event *ev) {
	char buf[32], how[96];
	snprintf(how, sizeof(how), ", confirmed after reload.confirm %s",
		 format_duration(s->reload.config->reload_confirm_usec, buf));
	reload_commit(s, how);
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
	[SUP_CONFIRMING] =
		{
			[EV_READY] = on_running_ready,
			[EV_EXITED] = on_confirming_exited,
			[EV_STOP_TIMEOUT] = on_stop_timeout,
			[EV_STOP_REQUEST] = on_reloading_stop,
			[EV_RELOAD_REQUEST] = on_reload_queue,
			[EV_WATCHDOG] = on_confirming_watchdog,
			[EV_CONFIRMED] = on_confirmed,
			[EV_UNHEALTHY] = on_confirming_unhealthy,
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
	log_debug("event '%s' (generation %u) in state '%s'%s", sup_event_to_string(ev->type),
		  ev->gen ? ev->gen->id : 0, sup_state_to_string(s->state), fn ? "" : ": ignored");
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

void supervisor_abort(struct supervisor *s, int exit_code, uint64_t now) {
	s->now = now;
	begin_stop(s, exit_code);
	drain(s);
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

/* Starts the first generation. */
int supervisor_start(struct supervisor *s, uint64_t now, char **ret_error) {
	struct generation *g;
	s->now = now;
	/* Before the program runs: from now on a crash of baton (kill -9) leaves the sockets open in systemd. */
	upstream_fd_store_add(&s->upstream, s->listeners, s->n_listeners);
	int r = sup_start_generation(s, s->config, s->listeners, s->n_listeners, true, &g, ret_error);
	if (r < 0)
		return r;
	s->current = g;
	s->state = SUP_STARTING;
	notify_upstreamf("STATUS=starting generation %u (pid %d)", g->id, (int)g->pid);
	drain(s);
	return 0;
}
