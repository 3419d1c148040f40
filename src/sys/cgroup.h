/* cgroup v2 for generations: baton's own subtree (a leaf for baton itself, because of cgroup v2's "no internal
 * processes" rule, and one child cgroup per generation beside it), membership, emptiness (cgroup.events), killing
 * (cgroup.kill) and the figures of a cgroup. Mechanism only: what is created when is generation.c's and run.c's.
 * Does not log; failures are negative errno, and cgroup_tree_open() says why in *ret_error. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "serialize.h"

struct cgroup_tree {
	int fd; /* the directory the generations' cgroups are created in; -1 when baton has no cgroups */
	char *path; /* that directory as /proc/PID/cgroup names it ("/system.slice/app.service"; "" for "/") */
	char *dir; /* that directory in the file system */
	char *origin; /* the cgroup baton was started in (a directory), to go back to at the end */
	bool created; /* dir is a cgroup baton created ("baton-PID", in a cgroup that others share) */
	char controllers[64]; /* what baton enabled in fd's cgroup.subtree_control ("+memory +cpu +pids"), or "" */
	bool may_enable; /* baton may enable controllers there (created, or delegated) */
	/* baton moved itself into its leaf (cgroup_tree_settle()); until then its children are created in their
	 * cgroups (spawn_params.cgroup_at_clone) rather than moved there */
	bool settled;
};

#define CGROUP_TREE_INIT                                                                                               \
	{ .fd = -1 }

/* Finds the cgroup2 hierarchy (BATON_CGROUP_ROOT, for tests only; else /sys/fs/cgroup, else the hybrid layout's
 * /sys/fs/cgroup/unified) and baton's own cgroup in it (/proc/self/cgroup); when others share that cgroup, works in a
 * "baton-PID" child of it instead, with a leaf "supervisor" that baton may move into. On failure nothing is left
 * changed and *ret_error says why ("no cgroup2 hierarchy is mounted ...", "cannot create cgroups in ...: Permission
 * denied"). */
int cgroup_tree_open(struct cgroup_tree *t, char **ret_error);
/* Removes what batons killed before they could clean up (SIGKILL, the OOM killer) left beside t's directory: their
 * "baton-PID" cgroups, empty by now, whose PID is gone and whose directory no baton holds locked (a baton of another
 * PID namespace). Only where baton created its own (t->created). Not at the start, which a directory full of
 * leftovers would slow: run.c calls it once the first program is started. */
void cgroup_tree_sweep(const struct cgroup_tree *t);
/* Moves baton itself into the leaf and enables the memory, cpu and pids controllers for the generations where it may
 * (a cgroup baton created, or one systemd delegated: its trusted.delegate or user.delegate attribute). Not at the
 * start: moving a process between cgroups (a write to cgroup.procs) takes the kernel's cgroup_threadgroup_rwsem for
 * writing, which waits for an RCU grace period when no migration ran in the last one: 10-60 ms on an idle machine,
 * once per start (issue 23). The first generation is created in its cgroup instead (clone3(CLONE_INTO_CGROUP)), and
 * baton settles once it is ready. Once only; 0 or negative errno (baton then stays where it started). */
int cgroup_tree_settle(struct cgroup_tree *t);
/* Moves baton back to where it started and removes what cgroup_tree_open() created (the generations' cgroups are
 * gone by then: cgroup_remove()). */
void cgroup_tree_close(struct cgroup_tree *t);

/* `baton upgrade` (serialize.h): t's records ("cgroups FD CREATED", then "cgroups.path" ...; nothing without a
 * subtree), and reading them back from the current record on into t (CGROUP_TREE_INIT); the reader is left on the
 * first record that is not t's. Nothing is opened or checked in the file system. */
void cgroup_tree_serialize(const struct cgroup_tree *t, struct ser_writer *w);
int cgroup_tree_deserialize(struct ser_reader *rd, struct cgroup_tree *t);
/* Frees what was read into t, closing nothing, and leaves it CGROUP_TREE_INIT. */
void cgroup_tree_forget(struct cgroup_tree *t);

/* The cgroups of t are named, never held open: a generation costs baton one fd (its cgroup.events), which matters
 * under a low RLIMIT_NOFILE. */

/* Creates (or reuses) the cgroup name in t. */
int cgroup_create(const struct cgroup_tree *t, const char *name);
/* Removes the cgroup name (it must be empty); 0, or negative errno (-ENOENT when it is gone already). */
int cgroup_remove(const struct cgroup_tree *t, const char *name);
/* An fd of the cgroup's cgroup.events, for epoll with EPOLLPRI (a change of "populated" wakes it up). */
int cgroup_events_open(const struct cgroup_tree *t, const char *name);
/* Reads the "populated" line of events_fd (re-armed by the read): 1 or 0, or negative errno. */
int cgroup_populated(int events_fd);
/* SIGKILL to every process of the cgroup: cgroup.kill (Linux 5.14+), else each pid of cgroup.procs. */
int cgroup_kill(const struct cgroup_tree *t, const char *name);
/* sig to every process of the cgroup (each pid of cgroup.procs); the number of pids, or negative errno. */
int cgroup_signal(const struct cgroup_tree *t, const char *name, int sig);
/* The pids of the cgroup (cgroup.procs), malloc'd; 0 or negative errno. */
int cgroup_pids(const struct cgroup_tree *t, const char *name, pid_t **ret, size_t *ret_n);
/* The number of processes in the cgroup, or negative errno. */
int cgroup_count(const struct cgroup_tree *t, const char *name);
/* memory.current in bytes and cpu.stat's usage_usec; UINT64_MAX for what the cgroup does not have (the controller is
 * not enabled for it). */
void cgroup_figures(const struct cgroup_tree *t, const char *name, uint64_t *ret_memory, uint64_t *ret_cpu_usec);
/* Whether pid is in t's cgroup name, or below it (/proc/PID/cgroup). */
bool cgroup_has_pid(const struct cgroup_tree *t, const char *name, pid_t pid);
