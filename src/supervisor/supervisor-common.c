/* What the state machine's transitions (supervisor.c) stand on, apart from the transitions themselves
 * (supervisor-common.h): the names of states and events, the follow-up queue, the outbox, starting a generation,
 * swapping listener sets, the next deadline, and the supervisor's setup and teardown. Calls nothing in supervisor.c. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "readiness.h"
#include "supervisor-common.h"
#include "util.h"

static const char sup_state_names[_SUP_STATE_MAX][sizeof("restarting")] = {
	[SUP_STARTING] = "starting",   [SUP_RUNNING] = "running",
	[SUP_RELOADING] = "reloading", [SUP_CONFIRMING] = "confirming",
	[SUP_BACKOFF] = "restarting",  [SUP_STOPPING] = "stopping",
	[SUP_DONE] = "done",
};

static const char event_names[_EV_MAX][sizeof("readiness timeout")] = {
	[EV_READY] = "ready",
	[EV_EXITED] = "exited",
	[EV_READY_TIMEOUT] = "readiness timeout",
	[EV_STOP_TIMEOUT] = "stop timeout",
	[EV_STOP_REQUEST] = "stop request",
	[EV_RELOAD_REQUEST] = "reload request",
	[EV_RESTART_DUE] = "restart due",
	[EV_WATCHDOG] = "watchdog",
	[EV_CONFIRMED] = "confirmed",
	[EV_UNHEALTHY] = "unhealthy",
};

const char *sup_state_to_string(enum sup_state st) {
	return st < _SUP_STATE_MAX ? sup_state_names[st] : "?";
}

const char *sup_event_to_string(enum sup_event ev) {
	return ev < _EV_MAX ? event_names[ev] : "?";
}

/* ---- what transitions use ---- */

/* Queues a follow-up event: it runs once the transition in progress has returned. */
void sup_post(struct supervisor *s, const struct event *ev) {
	if (s->n_queued >= SUP_QUEUE_MAX) {
		/* Cannot happen: a transition queues at most one event (a queued reload). */
		log_error("event queue full, dropping event '%s'", sup_event_to_string(ev->type));
		return;
	}
	s->queue[s->n_queued++] = *ev;
}

/* Reload seq has ended (or will not run): control clients waiting for it get this reply from run.c. */
void sup_reply_reload(struct supervisor *s, uint64_t seq, bool ok, const char *message) {
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
int sup_start_generation(struct supervisor *s, const struct config *c, const struct listener *ls, size_t n,
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
		sup_post(s, &(struct event){.type = EV_READY, .gen = *ret});
	}
	return 0;
}

/* The new listener set of a reload becomes the supervisor's; the fd store follows it. */
void sup_listeners_commit(struct supervisor *s, struct listener *ls, size_t n) {
	upstream_fd_store_update(&s->upstream, s->listeners, s->n_listeners, ls, n);
	listeners_hand_over(ls, n, s->listeners, s->n_listeners);
	listeners_free(s->listeners, s->n_listeners);
	s->listeners = ls;
	s->n_listeners = n;
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
	if (s->state == SUP_CONFIRMING && s->reload.confirm_until < next)
		next = s->reload.confirm_until;
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

int supervisor_load_config(const struct supervisor_options *o, struct config *current, struct config **ret,
			   char **ret_error) {
	struct config *c = NULL;
	int r;
	r = config_reload(o->config_path, o->sets, current, &c, ret_error);
	if (r > 0) {
		/* The file is unchanged: the running config, whose command line was applied already. */
		log_debug("%s is unchanged since it was loaded: its config is taken again", o->config_path);
		*ret = c;
		return 0;
	}
	if (r >= 0)
		r = (o->command_optional ? config_merge_cli : config_apply_cli)(c, o->listens, o->command, ret_error);
	if (r < 0) {
		config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}
