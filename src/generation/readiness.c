/* Readiness for programs that do not send READY=1 (readiness.h). */
#include "readiness.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "program.h"
#include "util.h"

/* ---- exec: a probe command ---- */

/* readiness.command while g starts, reload.confirm-command in its confirm window: the same kind of probe, run the
 * same way. */
static int probe_start(struct generation *g, const struct rlimit *nofile, char **ret_error) {
	struct program_spec ps = {
		.config = g->config,
		.generation = g->id,
		.probe_of_pid = g->pid,
		.probe_command = g->confirming ? g->config->confirm_command : g->config->readiness_command,
		.nofile = nofile,
	};
	struct program p;
	int r = program_prepare(&ps, &p, ret_error);
	if (r < 0)
		return r;
	/* Its own cgroup beside the generation's: whatever it leaves behind is killed with it, and it never counts
	 * as one of the program's processes. */
	char name[32], procs[64];
	if (g->cgroups && (r = generation_cgroup_join(g->cgroups, g->id, true, &g->probe_cgroup, NULL, &p.params, name,
						      procs, ret_error)) < 0) {
		program_free(&p);
		return r;
	}
	pid_t pid;
	int pidfd;
	r = spawn_child(&p.params, &pid, &pidfd, ret_error);
	program_free(&p);
	if (r < 0)
		return r;
	/* Reaped through SIGCHLD like any other child; no pidfd is needed. */
	if (pidfd >= 0)
		close(pidfd);
	g->probe_pid = pid;
	log_debug("generation %u: %s probe started (pid %d)", g->id, g->confirming ? "confirm" : "readiness", (int)pid);
	return 0;
}

enum probe_outcome readiness_probe_reaped(struct generation *list, pid_t pid, int wait_status, uint64_t now,
					  struct generation **ret_gen) {
	struct generation *g = list;
	while (g && g->probe_pid != pid)
		g = g->next;
	if (!g)
		return PROBE_NOT_A_PROBE;
	*ret_gen = g;
	g->probe_pid = 0;
	bool ok = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
	char buf[64];
	if (g->state == GEN_READY && g->confirming) {
		/* One failure is enough: the window is short, and a retry would let a broken version serve on. */
		if (!ok)
			return PROBE_FAILED;
		log_debug("generation %u: reload.confirm-command exited 0", g->id);
		g->check_usec = now + g->config->readiness_interval_usec;
		return PROBE_NOTHING;
	}
	if (g->state != GEN_STARTING)
		return PROBE_NOTHING;
	if (ok)
		return PROBE_READY;
	log_debug("generation %u: readiness probe %s; next one in %" PRIu64 " ms", g->id,
		  wait_status_describe(wait_status, buf), g->config->readiness_interval_usec / USEC_PER_MSEC);
	g->check_usec = now + g->config->readiness_interval_usec;
	return PROBE_NOTHING;
}

/* ---- pidfile: a live process of this generation, followed from then on ---- */

/* The pid in the file: decimal digits, optionally surrounded by white space. 0 when there is none (yet). */
static pid_t read_pid_file(const char *path) {
	char buf[64];
	if (read_file_at(AT_FDCWD, path, O_NOCTTY | O_NONBLOCK, buf, sizeof(buf)) <= 0)
		return 0;
	char *p = buf + strspn(buf, " \t\n");
	size_t len = strspn(p, "0123456789");
	if (len == 0 || len > 9 || p[len + strspn(p + len, " \t\n")] != '\0')
		return 0; /* half-written, or not a pid at all: the next check reads it again */
	p[len] = '\0';
	uint64_t v;
	if (parse_uint64(p, &v) < 0 || v < 2)
		return 0;
	return (pid_t)v;
}

/* Whether pid may become g's main process: g's own, or an orphan that baton inherited as the subreaper and that no
 * other generation or probe claims. A pid file left by another generation (or another baton) names neither. Only
 * baton's own children qualify, because only those can be reaped and their exit seen. */
static bool pid_belongs(struct generation *list, struct generation *g, pid_t pid) {
	if (pid == g->pid)
		return true;
	/* With a keeper, its children: its descendants are g's, and only its children's exits reach baton. */
	if (g->keeper > 0)
		return proc_parent_of(pid) == g->keeper;
	if (proc_parent_of(pid) != getpid())
		return false;
	/* With cgroups, membership is the cgroup: whatever the daemon calls itself, and whatever it did to its
	 * environment. Without, an orphan it adopted is its own. */
	if (g->in_cgroup || generation_has(g, pid))
		return generation_has(g, pid);
	for (struct generation *o = list; o; o = o->next)
		if (o->pid == pid || o->probe_pid == pid || (o != g && generation_has(o, pid)))
			return false;
	return true;
}

static bool check_pid_file(struct evloop *loop, struct generation *list, struct generation *g, uint64_t now,
			   char how[static READINESS_HOW_MAX]) {
	const char *path = g->config->readiness_pid_file;
	pid_t pid = read_pid_file(path);
	if (pid > 0 && kill(pid, 0) == 0 && pid_belongs(list, g, pid)) {
		if (pid != g->pid) {
			log_info("generation %u: following pid %d from %s%s", g->id, (int)pid, path,
				 g->pid ? "" : " (the program daemonized)");
			generation_follow(loop, g, pid);
		}
		snprintf(how, READINESS_HOW_MAX, "%s names pid %d", path, (int)pid);
		return true;
	}
	g->check_usec = now + g->config->readiness_interval_usec;
	return false;
}

bool readiness_launcher_exited(struct generation *g, int wait_status, uint64_t now) {
	if (g->readiness != READINESS_PIDFILE || g->state != GEN_STARTING || !WIFEXITED(wait_status) ||
	    WEXITSTATUS(wait_status) != 0)
		return false;
	log_info("generation %u: pid %d exited with status 0 before %s named a live process; waiting for its daemon",
		 g->id, (int)g->pid, g->config->readiness_pid_file);
	if (g->pidfd >= 0)
		close(g->pidfd);
	g->pidfd = -1;
	g->pid = 0;
	g->launcher_status = wait_status;
	g->check_usec = now;
	return true;
}

/* ---- all types ---- */

void readiness_begin(struct generation *g) {
	/* From the fork: readiness.delay counts from the moment the program started, like its readiness timeout. */
	switch (g->readiness) {
	case READINESS_EXEC:
	case READINESS_PIDFILE:
		g->check_usec = g->started_usec;
		break;
	case READINESS_DELAY:
		g->check_usec = g->started_usec + g->config->readiness_delay_usec;
		break;
	default:
		g->check_usec = USEC_INFINITY;
		break;
	}
}

void readiness_confirm_begin(struct generation *g, uint64_t now) {
	g->confirming = true;
	g->check_usec = g->config->confirm_command ? now : USEC_INFINITY;
}

/* Starts g's probe unless one runs; one that cannot be started is tried again after readiness.interval. */
static void probe_run(struct generation *g, const struct rlimit *nofile, uint64_t now) {
	_cleanup_free_ char *error = NULL;
	if (g->probe_pid > 0)
		return;
	int r = probe_start(g, nofile, &error);
	if (r < 0) {
		log_warning("generation %u: could not run %s: %s; trying again in %" PRIu64 " ms", g->id,
			    g->confirming ? "reload.confirm-command" : "readiness.command",
			    error ? error : strerror(-r), g->config->readiness_interval_usec / USEC_PER_MSEC);
		g->check_usec = now + g->config->readiness_interval_usec;
	}
}

bool readiness_check(struct evloop *loop, struct generation *list, struct generation *g, const struct rlimit *nofile,
		     uint64_t now, char how[static READINESS_HOW_MAX]) {
	g->check_usec = USEC_INFINITY;
	if (g->state == GEN_READY && g->confirming) {
		probe_run(g, nofile, now);
		return false;
	}
	if (g->state != GEN_STARTING)
		return false;
	switch (g->readiness) {
	case READINESS_DELAY:
		snprintf(how, READINESS_HOW_MAX, "readiness.delay has passed");
		return true;
	case READINESS_PIDFILE:
		return check_pid_file(loop, list, g, now, how);
	case READINESS_EXEC:
		probe_run(g, nofile, now);
		return false;
	default:
		return false;
	}
}
