/* What the state machine's transitions (supervisor.c) and what they stand on (supervisor-common.c) share: the
 * states, the events, the options, and struct supervisor, which holds all runtime state in plain fields so that it
 * can be handed over to a re-executed baton; and the functions of supervisor-common.c that run.c calls too (set-up,
 * the outbox, the next deadline, loading the config), then those only the transitions call (queueing a follow-up
 * event, starting a generation). supervisor.h adds the transitions. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "config.h"
#include "evloop.h"
#include "exit-status.h"
#include "generation.h"
#include "sockets.h"
#include "upstream.h"

enum sup_state {
	SUP_STARTING, /* the current generation runs but has not reported ready (at start, or after a crash) */
	SUP_RUNNING, /* the current generation is ready */
	SUP_RELOADING, /* a reload is in progress (struct reload) */
	SUP_CONFIRMING, /* a reload's new generation is ready; the old one serves on until reload.confirm_until */
	SUP_BACKOFF, /* the current generation died; the next one starts at restart_usec */
	SUP_STOPPING, /* every generation was told to stop; waiting for them to exit */
	SUP_DONE, /* nothing left to wait for: the loop ends with exit_code */
	_SUP_STATE_MAX,
};

enum sup_event {
	EV_READY, /* a generation reported READY=1, or its readiness check passed */
	EV_EXITED, /* a generation ended (event.wait_status): its main process was reaped, or it never had one */
	EV_READY_TIMEOUT, /* a starting generation missed its readiness deadline */
	EV_STOP_TIMEOUT, /* a stopping generation outlived stop.timeout (or a draining one stop.drain) */
	EV_STOP_REQUEST, /* SIGTERM, SIGINT, `baton stop` */
	EV_RELOAD_REQUEST, /* SIGHUP, `baton reload`, or a queued reload */
	EV_RESTART_DUE, /* the backoff after a crash is over */
	EV_WATCHDOG, /* a ready generation sent no WATCHDOG=1 within program.watchdog, or WATCHDOG=trigger */
	EV_CONFIRMED, /* the reload.confirm window is over (reload.confirm_until) */
	EV_UNHEALTHY, /* a ready generation sent STOPPING=1 or ERRNO=, or its reload.confirm-command failed (why) */
	_EV_MAX,
};

struct event {
	enum sup_event type;
	struct generation *gen; /* the generation it is about, if any */
	int wait_status; /* EV_EXITED */
	bool interrupted; /* EV_EXITED: killed by the terminal's SIGINT or SIGQUIT (Ctrl-C, Ctrl-\) while it held the
			   * terminal's foreground: the user's stop, never restarted */
	const char *why; /* requests: who asked ("received SIGTERM", "control: reload"); a static string or one that
			  * outlives the dispatch */
};

/* What `run` was given, kept so that a reload reads the same file and applies the same command line. */
struct supervisor_options {
	const char *config_path; /* NULL: command line only */
	struct rlimit nofile; /* RLIMIT_NOFILE as baton was given it: what children get */
	char *const *listens; /* --listen NAME=ADDRESS */
	char *const *sets; /* --set KEY=VALUE: applied over the file (or the defaults) on every load, a reload's too */
	char *const *command; /* after -- */
	bool command_optional; /* `baton check`: a config that has no command yet loads too */
};

/* The reload in progress (valid in SUP_RELOADING). */
struct reload {
	uint64_t seq; /* reloads are numbered 1, 2, ...; control clients wait for a number */
	uint64_t started_usec;
	enum reload_strategy strategy;
	struct config *config; /* the new config: swapped in on success, freed on failure */
	struct listener *listeners; /* replace/restart: the new listener set (unchanged ones are dups of the old) */
	size_t n_listeners;
	struct generation *gen; /* replace/restart: the new generation, once started */
	struct generation *old; /* restart: the generation that must exit before the new one starts */
	uint64_t confirm_until; /* SUP_CONFIRMING: the end of the reload.confirm window, when the reload commits */
};

struct reload_result {
	uint64_t seq; /* 0: no reload yet */
	bool ok;
	char *message;
	uint64_t duration_usec; /* from request to outcome */
	uint64_t ready_usec; /* the new generation's own start-to-ready time, when it got ready */
};

/* The outbox: a reload ended (or was refused), and control clients waiting for its number are owed this reply. */
struct reload_reply {
	uint64_t seq;
	bool ok;
	char *message;
	unsigned generation; /* ok: the generation serving now, its pid, and the timings */
	pid_t pid;
	uint64_t duration_usec;
	uint64_t ready_usec;
	struct reload_reply *next;
};

#define SUP_QUEUE_MAX 4

struct supervisor {
	struct supervisor_options options;
	struct config *config;
	struct listener *listeners;
	size_t n_listeners;

	enum sup_state state;
	struct generation *generations; /* every live generation, newest first */
	struct generation *current; /* the one serving (or starting to, in SUP_STARTING); NULL in SUP_BACKOFF */
	unsigned last_generation;
	bool ever_ready; /* the first READY=1 went upstream: failures from now on are crashes, not a failed start */

	struct reload reload;
	uint64_t last_reload_seq; /* the number of the last reload started */
	bool reload_queued; /* a reload was asked for while busy: it runs as reload last_reload_seq + 1 */
	struct reload_result last_reload;

	unsigned failures; /* consecutive crashes, for the backoff */
	unsigned restarts; /* crash restarts so far */
	unsigned upgrades; /* `baton upgrade`s so far: the binary was replaced in place this many times */
	uint64_t restart_usec; /* SUP_BACKOFF: when the next generation starts */

	/* Where generations are started: the event loop that watches them, and their NOTIFY_SOCKET. */
	struct evloop *loop;
	const char *notify_path;
	bool terminal; /* baton holds the foreground of the terminal on its stdin: the current generation gets it */
	struct upstream upstream;
	/* baton's cgroup subtree, where each generation gets its cgroup; NULL without (program.cgroup). */
	const struct cgroup_tree *cgroups;

	uint64_t now; /* CLOCK_MONOTONIC µs of the event being dispatched: the one clock of every transition */
	struct event queue[SUP_QUEUE_MAX]; /* follow-up events, run after the transition that queued them */
	size_t n_queued;
	struct generation *ended; /* generations whose EV_EXITED is being dispatched: freed after the queue drains */
	struct reload_reply *replies; /* the outbox, oldest first */

	int exit_code; /* valid in SUP_DONE */
};

const char *sup_state_to_string(enum sup_state st);
const char *sup_event_to_string(enum sup_event ev);

/* Sets s up with the config and listeners baton opened (owning them from now on). */
void supervisor_init(struct supervisor *s, const struct supervisor_options *o, struct config *config,
		     struct listener *listeners, size_t n_listeners, struct evloop *loop, const char *notify_path);
/* Takes the outbox (oldest first); the caller frees it with reload_replies_free(). */
struct reload_reply *supervisor_take_replies(struct supervisor *s);
void reload_replies_free(struct reload_reply *r);
/* The earliest deadline of the state machine and its generations (timeouts, watchdogs, readiness checks, the
 * restart, baton's own watchdog ping); USEC_INFINITY for none. */
uint64_t supervisor_next_deadline(const struct supervisor *s);
/* Frees everything s owns (generations are freed, not signalled). */
void supervisor_free(struct supervisor *s);

/* Loads the config the way `run` does: the file (if any), then the command line merged in (config_apply_cli(), or
 * config_merge_cli() with o->command_optional). current: the running config (may be NULL), taken again with one more
 * reference when the file and the sets are unchanged (config_reload()). On failure *ret_error is a malloc'd message. */
int supervisor_load_config(const struct supervisor_options *o, struct config *current, struct config **ret,
			   char **ret_error);

/* For the transitions (supervisor.c) alone. */
/* Queues a follow-up event: it runs once the transition in progress has returned. */
void sup_post(struct supervisor *s, const struct event *ev);
/* Reload seq has ended (or will not run): control clients waiting for it get this reply from run.c. */
void sup_reply_reload(struct supervisor *s, uint64_t seq, bool ok, const char *message);
/* Starts the next generation of config c on the listeners ls, and its readiness checks (readiness.type none queues
 * its EV_READY at once). current: it is the current generation from the start (the first start, a restart), so it
 * takes the terminal's foreground at once; a reload's new generation takes it when it becomes current (run.c). On
 * failure *ret_error (may stay NULL) says why. */
int sup_start_generation(struct supervisor *s, const struct config *c, const struct listener *ls, size_t n,
			 bool current, struct generation **ret, char **ret_error);
/* The new listener set of a reload becomes the supervisor's; the fd store follows it. */
void sup_listeners_commit(struct supervisor *s, struct listener *ls, size_t n);
