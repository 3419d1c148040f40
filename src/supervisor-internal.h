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

/* epoll_ctl() for readiness output fds: an event on fd calls readiness_output(s, id). Returns 0 or -errno. */
int loop_output_ctl(struct supervisor *s, int op, int fd, uint64_t id, uint32_t events);

/* readiness.c: how a starting generation becomes ready, for each readiness.type. */
/* Before the spawn: with readiness.type log, pipes for the streams it reads. write_fds (the child's stdout and
 * stderr, -1 when not piped) are the caller's to close after the spawn; read_fds go to readiness_begin. */
int readiness_pipes(const struct config *c, int write_fds[2], int read_fds[2]);
/* Right after the spawn: takes the read ends and schedules the first check. Nothing fails here: a pipe that cannot be
 * watched is logged and its output lost, and the readiness timeout still bounds the start. */
void readiness_begin(struct supervisor *s, struct generation *g, int read_fds[2]);
/* The generation stops starting (ready, stopping or killed): its probe is killed and checks stop. Output pipes stay:
 * the program's output passes through for its whole life. */
void readiness_end(struct generation *g);
/* check_usec has come. */
void readiness_check(struct supervisor *s, struct generation *g);
/* A child was reaped: true when it was a probe (and is dealt with). */
bool readiness_reaped(struct supervisor *s, pid_t pid, int wait_status);
/* g's main process was reaped: true when, with readiness.type pidfile, it exited 0 before the pid file named a live
 * process: the daemon it left is awaited, and the generation lives on without a process of its own for now. */
bool readiness_launcher_exited(struct supervisor *s, struct generation *g, int wait_status);
/* An output of generation (id >> 2) has an event: its pipe is readable, or (id & 2) its target takes bytes again;
 * stream id & 1 (0 stdout, 1 stderr). */
void readiness_output(struct supervisor *s, uint64_t id);
/* g is being killed: its processes that baton inherited as orphans (ppid baton, BATON_GENERATION=g's number, not
 * another generation's main process) are killed too, with their process groups: a daemon that never made it into
 * its pid file, workers whose parent died. */
void readiness_kill_strays(struct supervisor *s, struct generation *g);
/* generation_free: passes on what the pipes still hold and closes them. */
void readiness_free(struct generation *g);
/* The signal that tells the preload shim to stop accepting (BATON_DRAIN_SIGNAL). */
int drain_signal(void);
