/* Generations as a list (generation-list.c), the bottom of the generation family: what baton tracks about each
 * started instance of the program (struct generation), the names of its states, and lookups. Logs nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "output.h"

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
	/* The config it was started with: only valid while it is GEN_STARTING, or confirming (the config of the reload
	 * that started it lives until the reload commits or rolls back). */
	const struct config *config;
	bool confirming; /* ready, in its reload.confirm window: check_usec runs reload.confirm-command */
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
