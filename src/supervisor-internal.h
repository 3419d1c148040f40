/* What supervisor.c (the state machine) and loop.c (the event sources) share; nothing else includes this. */
#pragma once

#include "supervisor.h"

enum sup_event {
	EV_READY, /* a generation reported READY=1 */
	EV_EXITED, /* a generation's main process exited (event.wait_status) */
	EV_READY_TIMEOUT, /* a starting generation missed its readiness deadline */
	EV_STOP_TIMEOUT, /* a stopping generation outlived stop.timeout */
	EV_STOP_REQUEST, /* SIGTERM, SIGINT, `baton stop` */
	EV_RELOAD_REQUEST, /* SIGHUP, `baton reload`, or a queued reload */
	EV_RESTART_DUE, /* the backoff after a crash is over */
	EV_WATCHDOG, /* a ready generation sent no WATCHDOG=1 within program.watchdog, or WATCHDOG=trigger */
	_EV_MAX,
};

struct event {
	enum sup_event type;
	struct generation *gen; /* the generation it is about, if any */
	int wait_status; /* EV_EXITED */
	const char *why; /* requests: who asked ("received SIGTERM", "control: reload") */
};

typedef void (*transition_fn)(struct supervisor *s, const struct event *ev);

/* supervisor.c */
void dispatch(struct supervisor *s, const struct event *ev);
int supervisor_start(struct supervisor *s, char **ret_error);
struct generation *generation_by_pid(struct supervisor *s, pid_t pid);
void generation_unlink(struct supervisor *s, struct generation *g);
void generation_free(struct generation *g);
/* Sends sig to g's main process (through its pidfd where there is one). Returns 0 or negative errno. */
int generation_signal(const struct generation *g, int sig);
/* Passes l's socket to systemd's fd store under its name. */
void fd_store_add(const struct listener *l);
const char *describe_exit(int wait_status, char buf[static 64]);

/* loop.c */
/* Adds g's pidfd to the event loop. */
void loop_watch_generation(struct supervisor *s, struct generation *g);
/* Reload seq has ended: every control client waiting for it gets its reply. */
void loop_reload_finished(struct supervisor *s, uint64_t seq, bool ok, const char *message);
