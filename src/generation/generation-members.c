/* What belongs to a generation (generation-members.h): the strays a kill must reach, the orphans adopted without
 * cgroups, membership and figures, and the remnants that outlive a generation's main process. */
#include "generation-members.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keeper.h"
#include "log.h"
#include "proc.h"
#include "util.h"

/* ---- cgroups: a generation's "gen-N", and "gen-N-probe" for its readiness probes ---- */

const char *generation_cgroup_name(char buf[static 32], unsigned id, bool probe) {
	snprintf(buf, 32, "gen-%u%s", id, probe ? "-probe" : "");
	return buf;
}

int generation_cgroup_join(const struct cgroup_tree *t, unsigned id, bool probe, bool *in, int *ret_events_fd,
			   struct spawn_params *params, char name[static 32], char procs[static 64], char **ret_error) {
	int r = 0;

	generation_cgroup_name(name, id, probe);
	if (!*in && (r = cgroup_create(t, name)) >= 0)
		*in = true;
	if (r >= 0 && ret_events_fd && (r = cgroup_events_open(t, name)) >= 0)
		*ret_events_fd = r;
	if (r < 0) {
		*ret_error = strdup_printf("cgroup %s/%s: %s", t->path, name, strerror(-r));
		generation_cgroup_drop(t, in, NULL, id, probe);
		return r;
	}
	snprintf(procs, 64, "%s/cgroup.procs", name);
	params->cgroup_dir_fd = t->fd;
	params->cgroup_procs = procs;
	/* Until baton has settled into its leaf (the start), the child is created in its cgroup, not moved there, even
	 * where that takes a fork (spawn.h). */
	params->cgroup_at_clone = !t->settled;
	return 0;
}

void generation_cgroup_drop(const struct cgroup_tree *t, bool *in, int *events_fd, unsigned id, bool probe) {
	if (events_fd && *events_fd >= 0)
		close(*events_fd); /* also leaves the epoll set */
	if (events_fd)
		*events_fd = -1;
	if (!*in)
		return;
	*in = false;
	char name[32];
	int r = cgroup_remove(t, generation_cgroup_name(name, id, probe));
	if (r < 0 && r != -ENOENT)
		log_debug_errno(r, "Failed to remove cgroup %s, ignoring", name);
}

/* ---- strays: what a kill must reach beyond the main process ---- */

static void closedirp(DIR **d) {
	if (*d)
		closedir(*d);
}

/* Calls fn(pid, data) for every process in /proc but baton; stops when fn returns false. */
static void for_each_process(bool (*fn)(pid_t pid, void *data), void *data) {
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	if (!d)
		return;
	pid_t self = getpid();
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t v;
		if (parse_uint64(de->d_name, &v) < 0 || v > INT32_MAX || (pid_t)v == self)
			continue;
		if (!fn((pid_t)v, data))
			return;
	}
}

static bool pids_contain(const pid_t *pids, size_t n, pid_t pid) {
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

static bool pids_remove(pid_t *pids, size_t *n, pid_t pid) {
	for (size_t i = 0; i < *n; i++)
		if (pids[i] == pid) {
			pids[i] = pids[--*n];
			return true;
		}
	return false;
}

static int pids_add(pid_t **pids, size_t *n, pid_t pid) {
	pid_t *p = realloc(*pids, (*n + 1) * sizeof(pid_t));
	if (!p)
		return -ENOMEM;
	p[(*n)++] = pid;
	*pids = p;
	return 0;
}

int generation_adopt_pid(struct generation *g, pid_t pid) {
	if (pids_contain(g->adopted, g->n_adopted, pid))
		return 0;
	return pids_add(&g->adopted, &g->n_adopted, pid);
}

/* SIGKILL (or sig) to pid and, when it leads a group of its own (a daemon that called setsid()), that group. */
static void signal_with_group(pid_t pid, int sig) {
	pid_t pgid = getpgid(pid);
	if (pgid > 1 && pgid != getpgrp())
		(void)kill(-pgid, sig);
	(void)kill(pid, sig);
}

struct strays {
	struct generation *list, *g;
	pid_t self;
};

/* Whether pid descends from g: g's main process or an orphan it adopted is among its ancestors (a worker that left
 * the process group, but whose parent still lives). */
static bool descends_from(const struct generation *g, pid_t pid, pid_t self) {
	for (int depth = 0; depth < 32 && pid > 1 && pid != self; depth++) {
		pid = proc_parent_of(pid);
		if (pid <= 1 || pid == self)
			return false;
		if (pid == g->pid || pids_contain(g->adopted, g->n_adopted, pid))
			return true;
	}
	return false;
}

static bool kill_stray(pid_t pid, void *data) {
	struct strays *st = data;
	struct generation *g = st->g;
	bool adopted = pids_contain(g->adopted, g->n_adopted, pid);
	/* A descendant of g's processes that left its process group. */
	if (!adopted && !descends_from(g, pid, st->self))
		return true;
	log_warning("generation %u: killing pid %d, which it left behind", g->id, (int)pid);
	signal_with_group(pid, SIGKILL);
	return true;
}

void generation_kill_group(pid_t pgid) {
	if (pgid <= 1 || pgid == getpgrp())
		return;
	if (kill(-pgid, SIGKILL) < 0 && errno != ESRCH)
		log_warning_errno(errno, "Failed to kill process group %d, ignoring", (int)pgid);
}

void generation_kill_strays(struct generation *list, struct generation *g) {
	if (g->keeper > 0) {
		/* Whatever it started: the keeper's subtree, walked until nothing is left in it. */
		int n = keeper_count(g->keeper);
		if (n > (g->pid > 0 ? 1 : 0))
			log_warning("generation %u: killing the %d processes under its keeper (pid %d)", g->id, n,
				    (int)g->keeper);
		keeper_kill(g->keeper);
		/* And what its readiness probes left to baton. */
		for (size_t i = 0; i < g->n_adopted; i++)
			signal_with_group(g->adopted[i], SIGKILL);
		return;
	}
	if (g->in_cgroup) {
		/* Whatever it started, whatever it calls itself now. */
		char name[32];
		generation_cgroup_name(name, g->id, false);
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		if (cgroup_pids(g->cgroups, name, &pids, &n) >= 0)
			for (size_t i = 0; i < n; i++)
				if (pids[i] != g->pid)
					log_warning("generation %u: killing pid %d, which it left behind", g->id,
						    (int)pids[i]);
		int r = cgroup_kill(g->cgroups, name);
		if (r < 0)
			log_warning_errno(r, "Failed to kill generation %u's cgroup, ignoring", g->id);
		return;
	}
	struct strays st = {.list = list, .g = g, .self = getpid()};
	for_each_process(kill_stray, &st);
}

/* ---- adoption: without cgroups, what a generation's orphans belong to ---- */

struct adoption {
	struct generation *list;
	struct remnant *remnants;
	pid_t self;
	/* The owner of the reaped process: a generation or a remnant. */
	struct generation *g;
	struct remnant *rm;
};

static bool claimed(const struct adoption *a, pid_t pid) {
	/* A keeper is baton's child too, and another generation's. */
	for (struct generation *g = a->list; g; g = g->next)
		if (g->pid == pid || g->probe_pid == pid || g->keeper == pid ||
		    pids_contain(g->adopted, g->n_adopted, pid))
			return true;
	for (struct remnant *rm = a->remnants; rm; rm = rm->next)
		if ((rm->kept && rm->keeper == pid) || pids_contain(rm->adopted, rm->n_adopted, pid))
			return true;
	return false;
}

static bool adopt_one(pid_t pid, void *data) {
	struct adoption *a = data;
	if (proc_parent_of(pid) != a->self || claimed(a, pid))
		return true;
	/* A guess from who was reaped (a generation handed over by a baton without keepers has nothing better). */
	struct generation *g = a->g;
	struct remnant *rm = a->rm;
	int r = g ? pids_add(&g->adopted, &g->n_adopted, pid) : rm ? pids_add(&rm->adopted, &rm->n_adopted, pid) : 0;
	if (r < 0)
		log_warning_errno(r, "Failed to adopt pid %d, ignoring", (int)pid);
	else if (g || rm)
		log_debug("generation %u adopts pid %d, an orphan baton inherited", g ? g->id : rm->id, (int)pid);
	return true;
}

void generations_adopt(struct generation *list, struct remnant *remnants, pid_t reaped) {
	struct adoption a = {.list = list, .remnants = remnants, .self = getpid()};
	for (struct generation *g = list; g; g = g->next) {
		/* Out of the list also when it is the main process now (a daemon followed from its pid file). */
		bool adopted = pids_remove(g->adopted, &g->n_adopted, reaped);
		if (!a.g && (adopted || g->pid == reaped || g->probe_pid == reaped))
			a.g = g;
	}
	for (struct remnant *rm = remnants; rm && !a.g && !a.rm; rm = rm->next)
		if (pids_remove(rm->adopted, &rm->n_adopted, reaped))
			a.rm = rm;
	/* With cgroups the cgroup knows, and nothing needs adopting. Without an owner (an orphan nobody adopted ended)
	 * there is nobody to adopt for, and a storm of such orphans does not cost a scan of /proc each. A generation
	 * with a keeper reaps its own processes: what baton reaps of it is a readiness probe (baton's child, outside
	 * the keeper), whose orphans are adopted as before. */
	if ((!a.g && !a.rm) || (a.g && a.g->in_cgroup) || (a.rm && a.rm->in_cgroup))
		return;
	bool any = false;
	for (struct generation *g = list; g && !any; g = g->next)
		any = !g->in_cgroup;
	for (struct remnant *rm = remnants; rm && !any; rm = rm->next)
		any = !rm->in_cgroup;
	if (any)
		for_each_process(adopt_one, &a);
}

void generations_keeper_gone(struct generation *list, struct remnant *remnants, pid_t keeper, bool killed) {
	struct adoption a = {.list = list, .remnants = remnants, .self = getpid()};
	for (a.g = list; a.g && a.g->keeper != keeper; a.g = a.g->next)
		;
	for (a.rm = a.g ? NULL : remnants; a.rm && !(a.rm->kept && a.rm->keeper == keeper); a.rm = a.rm->next)
		;
	if (a.g)
		a.g->keeper = 0;
	if (a.rm)
		a.rm->keeper = 0;
	if (killed && (a.g || a.rm))
		for_each_process(adopt_one, &a);
}

bool generation_has(const struct generation *g, pid_t pid) {
	char name[32];
	if (g->keeper > 0)
		return pid == g->pid || keeper_has(g->keeper, pid) || pids_contain(g->adopted, g->n_adopted, pid);
	if (g->in_cgroup)
		return cgroup_has_pid(g->cgroups, generation_cgroup_name(name, g->id, false), pid);
	return pid == g->pid || pids_contain(g->adopted, g->n_adopted, pid);
}

struct generation *generation_by_cgroup(struct generation *list, pid_t pid) {
	for (struct generation *g = list; g; g = g->next)
		if (g->in_cgroup && generation_has(g, pid))
			return g;
	return NULL;
}

struct count {
	const struct generation *g;
	int n;
};

static bool count_one(pid_t pid, void *data) {
	struct count *c = data;
	if (getpgid(pid) == c->g->pgid || pids_contain(c->g->adopted, c->g->n_adopted, pid))
		c->n++;
	return true;
}

void generation_figures(struct generation *g) {
	g->memory_bytes = g->cpu_usec = UINT64_MAX;
	if (g->in_cgroup) {
		char name[32];
		generation_cgroup_name(name, g->id, false);
		g->processes = cgroup_count(g->cgroups, name);
		cgroup_figures(g->cgroups, name, &g->memory_bytes, &g->cpu_usec);
		return;
	}
	if (g->keeper > 0) {
		g->processes = keeper_count(g->keeper) + (int)g->n_adopted;
		return;
	}
	struct count c = {.g = g};
	for_each_process(count_one, &c);
	g->processes = c.n;
}

bool generation_cgroup_empty(struct generation *g) {
	return g->cgroup_events_fd >= 0 && cgroup_populated(g->cgroup_events_fd) == 0;
}

/* ---- remnants: what outlives a generation's main process ---- */

/* Whether pgid still has processes (zombies count until they are reaped). */
static bool group_alive(pid_t pgid) {
	return pgid > 1 && pgid != getpgrp() && (kill(-pgid, 0) == 0 || errno == EPERM);
}

static bool remnant_alive(struct remnant *rm) {
	if (rm->cgroup_events_fd >= 0)
		return cgroup_populated(rm->cgroup_events_fd) == 1;
	/* Adopted orphans are baton's unreaped children: their pids stay theirs until baton reaps them, and one that
	 * is gone was reaped already. */
	for (size_t i = 0; i < rm->n_adopted;)
		if (kill(rm->adopted[i], 0) < 0 && errno == ESRCH)
			rm->adopted[i] = rm->adopted[--rm->n_adopted];
		else
			i++;
	if (rm->kept)
		return rm->keeper > 0 || rm->n_adopted > 0;
	return group_alive(rm->pgid) || rm->n_adopted > 0;
}

/* sig to everything that is left of rm. */
static void remnant_signal(const struct remnant *rm, int sig) {
	if (rm->kept) {
		if (rm->keeper > 0 && sig == SIGKILL)
			keeper_kill(rm->keeper);
		else if (rm->keeper > 0)
			keeper_signal(rm->keeper, sig);
		for (size_t i = 0; i < rm->n_adopted; i++)
			signal_with_group(rm->adopted[i], sig);
		return;
	}
	if (rm->in_cgroup) {
		char name[32];
		generation_cgroup_name(name, rm->id, false);
		if (sig == SIGKILL)
			(void)cgroup_kill(rm->cgroups, name);
		else
			(void)cgroup_signal(rm->cgroups, name, sig);
		return;
	}
	if (group_alive(rm->pgid))
		(void)kill(-rm->pgid, sig);
	for (size_t i = 0; i < rm->n_adopted; i++)
		signal_with_group(rm->adopted[i], sig);
}

static void remnant_free(struct remnant *rm) {
	if (rm->cgroups)
		generation_cgroup_drop(rm->cgroups, &rm->in_cgroup, &rm->cgroup_events_fd, rm->id, false);
	if (rm->keeper_fd >= 0)
		close(rm->keeper_fd);
	free(rm->adopted);
	free(rm);
}

/* A time left, for a log line: to 100ms from 1s on (30s, 2900ms), to the millisecond below. */
static uint64_t round_up(uint64_t usec) {
	uint64_t unit = usec >= USEC_PER_SEC ? 100 * USEC_PER_MSEC : USEC_PER_MSEC;
	return (usec + unit - 1) / unit * unit;
}

/* What is left of g when it cannot be tracked (out of memory) is killed: never left running unwatched. */
static void kill_untracked(struct generation *g) {
	generation_kill_group(g->pgid);
	if (g->keeper > 0)
		keeper_kill(g->keeper);
	char name[32];
	if (g->in_cgroup)
		(void)cgroup_kill(g->cgroups, generation_cgroup_name(name, g->id, false));
}

/* Where rm's processes are, for the log line: "its keeper (pid 12) still has", "its cgroup ... still has"... */
static const char *remnant_what(const struct remnant *rm, char what[static 96]) {
	char name[32];
	if (rm->kept)
		snprintf(what, 96, "its keeper (pid %d) still has", (int)rm->keeper);
	else if (rm->in_cgroup)
		snprintf(what, 96, "its cgroup %s/%s still has", rm->cgroups->path,
			 generation_cgroup_name(name, rm->id, false));
	else if (group_alive(rm->pgid))
		snprintf(what, 96, "its process group %d still has", (int)rm->pgid);
	else
		snprintf(what, 96, "the orphans it left still have");
	return what;
}

void remnant_track(struct remnant **list, struct generation *g, const struct config *c, uint64_t now) {
	struct remnant *rm = calloc(1, sizeof(*rm));
	if (!rm) {
		/* Cannot wait for it: at least do not leave it running. */
		kill_untracked(g);
		return;
	}
	/* A daemon's launcher may have left nothing; baton's own group is never a generation's. What g leaves is
	 * the remnant's from now on: its cgroup, or its group and adopted orphans. */
	*rm = (struct remnant){
		.id = g->id,
		.pgid = g->pgid,
		.cgroups = g->cgroups,
		.in_cgroup = g->in_cgroup,
		.cgroup_events_fd = TAKE_FD(g->cgroup_events_fd),
		.adopted = TAKE_PTR(g->adopted),
		.n_adopted = g->n_adopted,
		.kept = g->keeper > 0,
		.keeper = g->keeper,
		.keeper_fd = TAKE_FD(g->keeper_fd),
		.kill_usec = now + c->stop_timeout_usec,
	};
	g->keeper = 0;
	/* A generation told to stop has stop.timeout in all, from the stop signal on, not once more for what its main
	 * process leaves: `baton stop` and a container runtime's grace period count from the request. One killed
	 * already is killed whole. */
	if (g->state == GEN_STOPPING && g->deadline_usec < rm->kill_usec)
		rm->kill_usec = g->deadline_usec > now ? g->deadline_usec : now;
	else if (g->state == GEN_KILLED)
		rm->kill_usec = now;
	g->n_adopted = 0;
	g->in_cgroup = false; /* the remnant removes it */
	if (!remnant_alive(rm)) {
		remnant_free(rm);
		return;
	}
	/* A keeper with nothing left under it exits now: waited for, with nothing to say or to signal. */
	if (rm->kept && rm->n_adopted == 0 && keeper_count(rm->keeper) == 0) {
		rm->next = *list;
		*list = rm;
		return;
	}
	char buf[32], what[96];
	log_info("generation %u ended, but %s processes: sending %s, SIGKILL in %s", g->id, remnant_what(rm, what),
		 strempty(signal_name(c->stop_signal)), format_duration(round_up(rm->kill_usec - now), buf));
	remnant_signal(rm, c->stop_signal);
	/* A stopped process acts on the stop signal only once it runs again. */
	remnant_signal(rm, SIGCONT);
	rm->next = *list;
	*list = rm;
}

static void remnants_drop_empty(struct remnant **list) {
	for (struct remnant **p = list; *p;) {
		struct remnant *rm = *p;
		if (remnant_alive(rm)) {
			p = &rm->next;
			continue;
		}
		log_info("generation %u: nothing is left of it", rm->id);
		*p = rm->next;
		remnant_free(rm);
	}
}

int *generation_keeper_fd(struct generation *list, struct remnant *remnants, unsigned id) {
	struct generation *g = generation_by_id(list, id);
	if (g && g->keeper_fd >= 0)
		return &g->keeper_fd;
	for (struct remnant *rm = remnants; rm; rm = rm->next)
		if (rm->id == id && rm->keeper_fd >= 0)
			return &rm->keeper_fd;
	return NULL;
}

void remnants_reaped(struct remnant **list) {
	remnants_drop_empty(list);
}

void remnants_cgroup_event(struct remnant **list, unsigned id) {
	(void)id; /* reading each remnant's cgroup.events re-arms it, whichever changed */
	remnants_drop_empty(list);
}

void remnants_due(struct remnant **list, uint64_t now) {
	for (struct remnant *rm = *list; rm; rm = rm->next) {
		if (rm->kill_usec > now)
			continue;
		rm->kill_usec = USEC_INFINITY;
		if (rm->kept && rm->keeper > 0)
			log_warning("generation %u: the processes under its keeper (pid %d) outlived stop.timeout, "
				    "sending SIGKILL",
				    rm->id, (int)rm->keeper);
		else if (rm->in_cgroup)
			log_warning("generation %u: its cgroup outlived stop.timeout, sending SIGKILL", rm->id);
		else
			log_warning("generation %u: process group %d or its orphans outlived stop.timeout, sending "
				    "SIGKILL",
				    rm->id, (int)rm->pgid);
		remnant_signal(rm, SIGKILL);
	}
	/* Killed, but only reaped ones are gone: those whose parent is still alive outside the group are not baton's
	 * to reap. */
	remnants_drop_empty(list);
}

uint64_t remnants_next_deadline(const struct remnant *list) {
	uint64_t next = USEC_INFINITY;
	for (const struct remnant *rm = list; rm; rm = rm->next)
		if (rm->kill_usec < next)
			next = rm->kill_usec;
	return next;
}

void remnants_free(struct remnant *list) {
	while (list) {
		struct remnant *next = list->next;
		remnant_free(list);
		list = next;
	}
}
