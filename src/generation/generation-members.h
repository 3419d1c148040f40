/* What belongs to a generation (generation-members.c), above the list and below generation.c: its cgroups ("gen-N",
 * "gen-N-probe"), or without cgroups its keeper's descendants (and, handed over by a baton without keepers, its
 * process group and the orphans it adopted); the strays a kill must reach; the
 * remnants that outlive its main process. Logs what it does to processes at info and warning level. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "generation-list.h"
#include "spawn.h"

/* SIGKILL to a process group; never to baton's own, nor to 0 or 1. */
void generation_kill_group(pid_t pgid);
/* Kills what g left behind: with a keeper, every descendant of it (walk after walk) and what its probes left to baton;
 * in its cgroup, the cgroup; otherwise its adopted orphans and the descendants of its processes, with their process
 * groups. */
void generation_kill_strays(struct generation *list, struct generation *g);
/* Without cgroups: baton just reaped pid (a readiness probe, an orphan it adopted; without a keeper, also a
 * generation's main process or launcher). Orphans that the end of pid left to baton (the child subreaper), and others
 * nobody has claimed yet (keepers are claimed), are adopted by the generation or remnant that pid belonged to, so
 * that they are stopped and killed with it; a reaped adopted pid leaves its list. */
void generations_adopt(struct generation *list, struct remnant *remnants, pid_t reaped);
/* The keeper pid (of a generation or a remnant) was reaped: it is nobody's keeper any more. killed: it died of a
 * signal (someone killed it) rather than exiting with nothing left under it; what it held re-parented to baton, and
 * baton's children nobody has claimed are adopted by its generation or remnant, as orphans without a keeper are. */
void generations_keeper_gone(struct generation *list, struct remnant *remnants, pid_t keeper, bool killed);
/* Adds pid to g's adopted processes (without a cgroup: its old main process after MAINPID=), unless it is there
 * already. Returns 0 or -ENOMEM. */
int generation_adopt_pid(struct generation *g, pid_t pid);
/* Whether pid is one of g's processes: in its cgroup; with a keeper, the keeper or a descendant of it; or, without
 * either, its main process or an orphan it adopted. */
bool generation_has(const struct generation *g, pid_t pid);
/* The generation whose cgroup pid is in (NULL when none, or without cgroups). */
struct generation *generation_by_cgroup(struct generation *list, pid_t pid);
/* Updates g's figures for `baton status`: the processes of its cgroup (or its keeper's descendants; without either,
 * of its process group and adopted orphans), and its cgroup's memory.current and cpu usage_usec where the controllers
 * give them. */
void generation_figures(struct generation *g);
/* g's cgroup.events changed (GEN_TAG_CGROUP): whether its cgroup is empty now (false without a cgroup). */
bool generation_cgroup_empty(struct generation *g);

/* "gen-N", or "gen-N-probe" for its readiness probes: the cgroup's name in baton's subtree; returns buf. */
const char *generation_cgroup_name(char buf[static 32], unsigned id, bool probe);
/* The cgroup that a child of generation id (probe: one of its readiness probes) joins before it execs (spawn.c):
 * created unless *in says it is there already (then *in is set), its cgroup.events opened into *ret_events_fd when
 * that is not NULL, and params pointed at its cgroup.procs. name gets the cgroup's name, procs (kept by the caller
 * until the spawn) the path params points at. Returns 0, or negative errno with *ret_error saying what failed (and
 * a cgroup created here removed again). */
int generation_cgroup_join(const struct cgroup_tree *t, unsigned id, bool probe, bool *in, int *ret_events_fd,
			   struct spawn_params *params, char name[static 32], char procs[static 64], char **ret_error);
/* Closes a cgroup's events fd (when not NULL) and removes it (when *in); one still populated (a process that would
 * not die) stays, and cgroup_tree_close() tries again at the end. */
void generation_cgroup_drop(const struct cgroup_tree *t, bool *in, int *events_fd, unsigned id, bool probe);

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
