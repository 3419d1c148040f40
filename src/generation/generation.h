/* Generations: each started instance of the program, in its own process group (generation.c, the top of the
 * family). Starting one (its program prepared by program.c, its pidfd and output pipes registered in the event loop),
 * signalling, stopping, draining and killing it. The policy (which generation to stop, and when) is the
 * supervisor's. Logs what it does to processes at info and warning level. The family's lower files have their own
 * headers, included here: generation-list.h (struct generation, lookups) and generation-members.h (what belongs to
 * a generation: cgroups, strays, adopted orphans, remnants). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "config.h"
#include "evloop.h"
#include "generation-list.h"
#include "generation-members.h"
#include "output.h"
#include "sockets.h"

/* Closes its pidfd and pipes (passing on what they still hold) and frees it. */
void generation_free(struct generation *g);

struct generation_spec {
	const struct config *config;
	const struct listener *listeners;
	size_t n_listeners;
	unsigned id;
	const char *notify_socket;
	const struct rlimit *nofile;
	struct evloop *loop; /* where its pidfd and pipes are watched */
	bool take_terminal; /* its process group takes the foreground of baton's terminal at once */
	const struct cgroup_tree *cgroups; /* where its cgroup is created; NULL: none (program.cgroup never, or none) */
};
/* Starts generation spec->id and puts it at the head of *list, GEN_STARTING with its readiness deadline; the caller
 * schedules its readiness checks (readiness_begin). Listening sockets a program shut down listen again first. On
 * failure nothing is left running and *ret_error says why. */
int generation_start(struct generation **list, const struct generation_spec *spec, struct generation **ret,
		     char **ret_error);
/* A generation (or a remnant) handed over by `baton upgrade`, its fds open and its fields set: its pidfd,
 * cgroup.events and output pipes are watched in loop, and its outputs write to baton's stdout and stderr again.
 * Returns 0 or negative errno (what was added stays: the loop is thrown away on failure). */
int generation_watch(struct evloop *loop, struct generation *g);
int remnant_watch(struct evloop *loop, struct remnant *rm);
/* Marks g ready at now (its program watchdog starts) and returns how long it took from its fork. */
uint64_t generation_ready(struct generation *g, uint64_t now);
/* g now follows pid (a daemon named by its pid file): its main process, pidfd and, when the daemon leads a process
 * group of its own, that group. */
void generation_follow(struct evloop *loop, struct generation *g, pid_t pid);
/* g's main process is pid from now on (MAINPID=, a program that replaced itself): as generation_follow(); without a
 * cgroup, the old main process, while it lives, stays g's as an adopted process (it and what it leaves are g's). */
void generation_follow_main(struct evloop *loop, struct generation *g, pid_t pid);
/* Whether g's main process, which is not baton's child (a process MAINPID= named), has ended: its pidfd says so and
 * baton cannot reap it. Then *ret_wait_status is its wait status where /proc still has it, else WAIT_STATUS_UNKNOWN.
 * A main process that is baton's child (or became it, re-parented to baton as subreaper) is reaped instead. */
bool generation_main_ended_elsewhere(const struct generation *g, int *ret_wait_status);
/* The generation stops starting (or confirming): its probe is killed and readiness checks stop. */
void generation_end_readiness(struct generation *g);

/* Sends sig to g's main process (through its pidfd where there is one). Returns 0 or negative errno. */
int generation_signal(const struct generation *g, int sig);
/* Tells g to stop: c's stop.signal now, SIGKILL at the deadline (stop.timeout). */
void generation_stop(struct generation *list, struct generation *g, const struct config *c, uint64_t now);
/* Retires a replaced generation: with stop.drain and the preload shim's handler, it first drains (stops accepting,
 * finishes what it has) for stop.drain; otherwise, or then, generation_stop(). */
void generation_retire(struct generation *list, struct generation *g, const struct config *c, uint64_t now);
/* SIGKILL to g's process group, its main process, and what it left behind (generation_kill_strays). */
void generation_kill(struct generation *list, struct generation *g, const char *why);

/* Keeps the live generations under GENERATIONS_MAX before another one starts: the oldest draining or stopping one is
 * killed. */
void generations_make_room(struct generation *list);

/* An event on one of g's output pipes (GEN_TAG_OUTPUT): the pipe is readable, or (writable) its target takes bytes
 * again. Passes the bytes on; with re, matches the lines. Returns true when a line matched re. */
bool generation_output(struct evloop *loop, struct generation *g, unsigned stream, bool writable, const regex_t *re);
