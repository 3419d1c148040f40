/* Generations: each started instance of the program, in its own process group, with what baton tracks about it.
 * Starting one (its program prepared by program.c, its pidfd and output pipes registered in the event loop),
 * signalling, stopping, draining, killing it and what it left behind, and looking generations up. The policy (which
 * generation to stop, and when) is the supervisor's. Logs what it does to processes at info and warning level. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "evloop.h"
#include "output.h"
#include "sockets.h"

/* At most this many generations are alive at once (the current one, a new one starting, and old ones draining).
 * Before another one starts, the oldest draining generation is sent SIGKILL. */
#define GENERATIONS_MAX 4

enum gen_state {
	GEN_STARTING, /* forked, not ready yet; deadline = readiness timeout */
	GEN_READY, /* reported ready; a deadline only while a signal-strategy reload waits for it */
	GEN_DRAINING, /* replaced, and told (through the preload shim) to stop accepting; deadline = stop.drain */
	GEN_STOPPING, /* sent the stop signal; deadline = stop timeout, then SIGKILL */
	GEN_KILLED, /* sent SIGKILL; waiting to reap */
	_GEN_STATE_MAX,
};

struct remnant;

struct generation {
	unsigned id; /* BATON_GENERATION: 1, 2, ... */
	pid_t pid; /* its main process; 0 while a daemon's launcher has exited and the daemon is not known yet */
	int pidfd;
	enum gen_state state;
	uint64_t started_usec; /* when it was forked */
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
	/* Membership. With cgroups: the cgroup "gen-N" in cgroups (its directory and cgroup.events fds, watched with
	 * EPOLLPRI), and "gen-N-probe" for the probes of readiness.type exec. Without: its process group, and the
	 * orphans baton adopted from it (generations_adopt). */
	const struct cgroup_tree *cgroups; /* NULL: no cgroups for this generation */
	bool in_cgroup, probe_cgroup; /* gen-N, gen-N-probe exist */
	int cgroup_events_fd;
	pid_t *adopted;
	size_t n_adopted;
	/* Without cgroups: its keeper (keeper.h), the parent of its program and the subreaper of all it starts, and the
	 * socket on which it reports their wait statuses (watched as GEN_TAG_KEEPER); 0 and -1 for none (with
	 * cgroups, or handed over by a baton without keepers, or the keeper died). */
	pid_t keeper;
	int keeper_fd;
	/* What `baton status` shows (generation_figures); processes -1, the others UINT64_MAX when unknown. */
	int processes;
	uint64_t memory_bytes, cpu_usec;
	struct generation *next;
};

/* Event loop tags of what generations register: kind in the low byte (distinct from the event loop's and the
 * caller's own), generation id and details above it. */
enum {
	GEN_TAG_PIDFD = 16, /* tag >> 8: the generation's id */
	GEN_TAG_OUTPUT = 17, /* tag >> 8: id << 2 | writable << 1 | stream (0 stdout, 1 stderr) */
	GEN_TAG_CGROUP = 18, /* tag >> 8: the generation's id: its cgroup.events changed (also once it is a remnant) */
	GEN_TAG_KEEPER = 19, /* tag >> 8: the generation's id: its keeper reported (also once it is a remnant) */
};

const char *gen_state_to_string(enum gen_state st);

struct generation *generation_by_pid(struct generation *list, pid_t pid);
struct generation *generation_by_id(struct generation *list, unsigned id);
/* The generations that are not GEN_KILLED. */
size_t generations_alive(const struct generation *list);
void generation_unlink(struct generation **list, struct generation *g);
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
/* The generation stops starting: its probe is killed and readiness checks stop. */
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
/* Kills the processes that baton inherited from g as orphans (parent baton, BATON_GENERATION=g's number, not another
 * generation's main process or probe), with their process groups: a daemon that never made it into its pid file,
 * workers whose parent died. */
void generation_kill_strays(struct generation *list, struct generation *g);
/* Without cgroups: baton just reaped pid (a generation's main process, launcher, probe, or an orphan it adopted).
 * Orphans that the end of pid left to baton (the child subreaper), and others nobody has claimed yet, are adopted
 * by the generation or remnant that pid belonged to (by their BATON_GENERATION where that is still readable), so
 * that they are stopped and killed with it; a reaped adopted pid leaves its list. */
void generations_adopt(struct generation *list, struct remnant *remnants, pid_t reaped);
/* Whether pid is one of g's processes: in its cgroup; with a keeper, a descendant of it; or, without either, its main
 * process or an orphan it adopted. */
bool generation_has(const struct generation *g, pid_t pid);
/* The generation whose cgroup pid is in (NULL when none, or without cgroups). */
struct generation *generation_by_cgroup(struct generation *list, pid_t pid);
/* Updates g's figures for `baton status`: the processes of its cgroup (or its keeper's descendants; without either,
 * of its process group and adopted orphans), and its cgroup's memory.current and cpu usage_usec where the controllers
 * give them. */
void generation_figures(struct generation *g);
/* g's cgroup.events changed (GEN_TAG_CGROUP): whether its cgroup is empty now (false without a cgroup). */
bool generation_cgroup_empty(struct generation *g);

/* Keeps the live generations under GENERATIONS_MAX before another one starts: the oldest draining or stopping one is
 * killed. */
void generations_make_room(struct generation *list);

/* What is left of a generation's process group once its main process has ended (workers it forked, a shell's
 * background jobs): told to stop, then killed, and waited for. baton exits only when none is left. */
struct remnant {
	unsigned id; /* the generation's number */
	pid_t pgid;
	const struct cgroup_tree
		*cgroups; /* with cgroups: its cgroup "gen-N" (fd and cgroup.events fd) is what is left */
	bool in_cgroup;
	int cgroup_events_fd;
	pid_t *adopted; /* without: the orphans it adopted */
	size_t n_adopted;
	bool kept; /* it had a keeper: it is alive until baton has reaped that keeper (keeper 0) */
	pid_t keeper;
	int keeper_fd; /* -1 once the keeper closed it */
	uint64_t kill_usec; /* SIGKILL then; USEC_INFINITY once sent */
	struct remnant *next;
};
/* g's main process ended: if its cgroup, or its process group or adopted orphans, still has processes, they get c's
 * stop.signal (and SIGCONT, for stopped ones) now and SIGKILL after stop.timeout, and the group is tracked in *list
 * until it is empty. */
void remnant_track(struct remnant **list, struct generation *g, const struct config *c, uint64_t now);
/* A remnant's cgroup.events changed (GEN_TAG_CGROUP for id): when the cgroup is empty, it is dropped and removed. */
void remnants_cgroup_event(struct remnant **list, unsigned id);
/* The socket of generation id's keeper, wherever it is now: the generation's until its main process ends, then its
 * remnant's. NULL when none is open. */
int *generation_keeper_fd(struct generation *list, struct remnant *remnants, unsigned id);
/* Children were reaped: groups that are empty now are dropped from *list. */
void remnants_reaped(struct remnant **list);
/* SIGKILL to the groups whose stop.timeout is over. */
void remnants_due(struct remnant **list, uint64_t now);
uint64_t remnants_next_deadline(const struct remnant *list);
void remnants_free(struct remnant *list);

/* An event on one of g's output pipes (GEN_TAG_OUTPUT): the pipe is readable, or (writable) its target takes bytes
 * again. Passes the bytes on; with re, matches the lines. Returns true when a line matched re. */
bool generation_output(struct evloop *loop, struct generation *g, unsigned stream, bool writable, const regex_t *re);
