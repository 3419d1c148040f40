/* Generations: what belongs to a generation (generation-members.c): the helpers it shares with generation.c. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"

/* "gen-N", or "gen-N-probe" for its readiness probes: the cgroup's name in baton's subtree. */
const char *generation_cgroup_name(char buf[static 32], unsigned id, bool probe);
/* Closes a cgroup's events fd (when not NULL) and removes it (when *in); one still populated (a process that would
 * not die) stays, and cgroup_tree_close() tries again at the end. */
void generation_cgroup_drop(const struct cgroup_tree *t, bool *in, int *events_fd, unsigned id, bool probe);
/* SIGKILL to a process group; never to baton's own, nor to 0 or 1. */
void generation_kill_group(pid_t pgid);
/* Adds pid to g's adopted processes (without a cgroup), unless it is there already. Returns 0 or -ENOMEM. */
int generation_adopt_pid(struct generation *g, pid_t pid);
