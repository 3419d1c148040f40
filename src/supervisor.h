/* The supervisor: one event loop (epoll over a signalfd, a timerfd, the notify socket and each child's pidfd) and
 * the lifecycle as an explicit state machine (supervisor.c: transitions[state][event]). All of baton's runtime state
 * lives in struct supervisor, in plain fields, so that it can later be handed over to a re-executed baton. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "sockets.h"

/* Exit codes of `baton run` other than the child's own status (see baton(1)). */
enum {
	EXIT_USAGE = 100,  /* bad command line */
	EXIT_CONFIG = 101, /* invalid configuration */
	EXIT_START = 102,  /* the program could not be started: exec failed, or it was not ready in time */
	EXIT_SYSTEM = 111, /* a system call failed: bind, epoll, fork... */
};

enum sup_state {
	SUP_STARTING, /* the first generation runs but has not reported ready */
	SUP_RUNNING,  /* the current generation is ready */
	SUP_STOPPING, /* every generation was told to stop; waiting for them to exit */
	SUP_DONE,     /* nothing left to wait for: the loop ends with sup->exit_code */
	_SUP_STATE_MAX,
};

enum gen_state {
	GEN_STARTING, /* forked, not ready yet; deadline = readiness timeout */
	GEN_READY,    /* reported ready; no deadline */
	GEN_STOPPING, /* sent the stop signal; deadline = stop timeout, then SIGKILL */
	GEN_KILLED,   /* sent SIGKILL; waiting to reap */
	_GEN_STATE_MAX,
};

/* One generation: a started instance of the program, with its own process group. */
struct generation {
	unsigned id; /* BATON_GENERATION: 1, 2, ... */
	pid_t pid;
	int pidfd;
	enum gen_state state;
	uint64_t started_usec;
	uint64_t ready_usec;    /* 0 until ready */
	uint64_t deadline_usec; /* USEC_INFINITY when none */
	char *status;           /* the last STATUS= it sent, or NULL */
	struct generation *next;
};

struct supervisor {
	struct config *config;
	struct listener *listeners;
	size_t n_listeners;

	enum sup_state state;
	struct generation *generations; /* newest first; the head is the current generation */
	unsigned last_generation;

	int epoll_fd;
	int signal_fd;
	int timer_fd;
	int notify_fd;
	char *notify_path; /* NOTIFY_SOCKET for children */
	uint64_t timer_armed_usec; /* what timer_fd is set to; USEC_INFINITY when disarmed */

	int exit_code; /* valid in SUP_DONE */
};

const char *gen_state_to_string(enum gen_state st);

/* Blocks the signals the event loop reads from its signalfd. Called first thing by `run`, so a SIGTERM that arrives
 * while the config is read or the sockets are bound waits for the loop instead of killing baton halfway. */
int supervisor_block_signals(void);

/* Takes ownership of config and listeners, starts the first generation and runs the event loop until baton should
 * exit; returns the exit code (0 after a requested stop, the child's status, 128+N, or one of EXIT_*). */
int supervisor_run(struct config *config, struct listener *listeners, size_t n_listeners);
