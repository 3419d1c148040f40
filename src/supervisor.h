/* The supervisor: one event loop (epoll over a signalfd, a timerfd, the notify socket, the control socket and each
 * child's pidfd) and the lifecycle as an explicit state machine (supervisor.c: transitions[state][event]). All of
 * baton's runtime state lives in struct supervisor, in plain fields, so that it can later be handed over to a
 * re-executed baton. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "config.h"
#include "control.h"
#include "output.h"
#include "sockets.h"

/* Exit codes of baton other than the child's own status (see baton(1)). */
enum {
	EXIT_FAILED = 1, /* reload/status/stop: the request failed (the reason is printed) */
	EXIT_USAGE = 100, /* bad command line */
	EXIT_CONFIG = 101, /* invalid configuration */
	EXIT_START = 102, /* the program could not be started: exec failed, or it was not ready in time */
	EXIT_SYSTEM = 111, /* a system call failed: bind, epoll, fork...; or baton could not be reached */
};

/* At most this many generations are alive at once (the current one, a new one starting, and old ones draining).
 * Before another one starts, the oldest draining generation is sent SIGKILL. */
#define GENERATIONS_MAX 4

enum sup_state {
	SUP_STARTING, /* the current generation runs but has not reported ready (at start, or after a crash) */
	SUP_RUNNING, /* the current generation is ready */
	SUP_RELOADING, /* a reload is in progress (struct reload) */
	SUP_BACKOFF, /* the current generation died; the next one starts at restart_usec */
	SUP_STOPPING, /* every generation was told to stop; waiting for them to exit */
	SUP_DONE, /* nothing left to wait for: the loop ends with exit_code */
	_SUP_STATE_MAX,
};

enum gen_state {
	GEN_STARTING, /* forked, not ready yet; deadline = readiness timeout */
	GEN_READY, /* reported ready; a deadline only while a signal-strategy reload waits for it */
	GEN_DRAINING, /* replaced, and told (through the preload shim) to stop accepting; deadline = stop.drain */
	GEN_STOPPING, /* sent the stop signal; deadline = stop timeout, then SIGKILL */
	GEN_KILLED, /* sent SIGKILL; waiting to reap */
	_GEN_STATE_MAX,
};

/* One generation: a started instance of the program, in its own process group. */
struct generation {
	unsigned id; /* BATON_GENERATION: 1, 2, ... */
	pid_t pid;
	int pidfd;
	enum gen_state state;
	uint64_t started_usec;
	uint64_t ready_usec; /* 0 until ready */
	uint64_t deadline_usec; /* USEC_INFINITY when none */
	char *status; /* the last STATUS= it sent, or NULL */
	uint64_t watchdog_usec; /* program.watchdog it was started with; 0 = none */
	uint64_t watchdog_deadline_usec; /* ready: the next WATCHDOG=1 is due by then; USEC_INFINITY otherwise */
	/* Readiness (readiness.c). */
	enum readiness_type readiness;
	const struct config *config; /* the config it was started with: only valid while it is GEN_STARTING */
	pid_t pgid; /* its process group: the pid it was started as, also after following a daemon */
	uint64_t check_usec; /* the next readiness check (probe, pid file, delay's end); USEC_INFINITY for none */
	pid_t probe_pid; /* exec: the probe running now; 0 for none */
	int launcher_status; /* pidfile: the wait status of its first process, which exited to leave a daemon */
	struct output *outputs[2]; /* log: the program's stdout and stderr pipes (NULL when not piped) */
	struct generation *next;
};

/* What `run` was given, kept so that a reload reads the same file and applies the same command line. */
struct supervisor_options {
	const char *config_path; /* NULL: command line only */
	struct rlimit nofile; /* RLIMIT_NOFILE as baton was given it: what children get */
	char *const *listens; /* --listen NAME=ADDRESS */
	char *const *command; /* after -- */
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
};

struct reload_result {
	uint64_t seq; /* 0: no reload yet */
	bool ok;
	char *message;
	unsigned generation; /* the generation serving afterwards */
	uint64_t duration_usec; /* from request to outcome */
	uint64_t ready_usec; /* the new generation's own start-to-ready time, when it got ready */
};

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
	uint64_t restart_usec; /* SUP_BACKOFF: when the next generation starts */

	int epoll_fd;
	int signal_fd;
	int timer_fd;
	int notify_fd;
	char *notify_path; /* NOTIFY_SOCKET for children */
	struct control control;
	uint64_t control_resume_usec; /* accepting is paused until then (out of fds); USEC_INFINITY normally */
	bool fd_store; /* the listening sockets are kept in systemd's fd store */
	uint64_t watchdog_interval_usec; /* baton's own WATCHDOG=1 pings (half of its WATCHDOG_USEC); 0 = none */
	uint64_t watchdog_next_usec; /* the next ping */
	uint64_t timer_armed_usec; /* what timer_fd is set to; USEC_INFINITY when disarmed */

	int exit_code; /* valid in SUP_DONE */
};

const char *sup_state_to_string(enum sup_state st);
const char *gen_state_to_string(enum gen_state st);

/* Blocks the signals the event loop reads from its signalfd. Called first thing by `run`, so a SIGTERM that arrives
 * while the config is read or the sockets are bound waits for the loop instead of killing baton halfway. */
int supervisor_block_signals(void);

/* Loads the config the way `run` does: the file (if any), then the command line merged in. On failure *ret_error is
 * a malloc'd message. */
int supervisor_load_config(const struct supervisor_options *o, struct config **ret, char **ret_error);

/* Takes ownership of config and listeners, starts the first generation and runs the event loop until baton should
 * exit; returns the exit code (0 after a requested stop, the child's status, 128+N, or one of EXIT_*). */
int supervisor_run(const struct supervisor_options *o, struct config *config, struct listener *listeners,
		   size_t n_listeners);
