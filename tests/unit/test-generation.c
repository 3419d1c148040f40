/* Generations without cgroups (generation.c, generation-members.c), with real short-lived children: a start and
 * what it tracks, one that cannot start; membership (the main process, orphans adopted when it ends, another
 * generation's orphans left alone); signal, stop and kill (the process group, the main process, the orphans it
 * adopted and the strays still carrying its number, never another generation's); the limit on live generations.
 * The test process is the child subreaper, as baton is. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mechanism-test.h"
#include "config.h"
#include "evloop.h"
#include "generation.h"
#include "log.h"
#include "test.h"
#include "util.h"

static char dir[] = "/tmp/baton-test-generation-XXXXXX";
static struct evloop loop = EVLOOP_INIT;
static struct rlimit nofile;

/* A config running sh -c SCRIPT in dir (the test's working directory; program.cgroup never: membership by process group
 * and adoption). */
static struct config *config_for(const char *script) {
	char path[128];
	snprintf(path, sizeof(path), "%s/baton.yaml", dir);
	return config_from_yaml(path,
				"program:\n  command: [/bin/sh, -c, '%s']\n  cgroup: never\nstop: {timeout: 3s}\n"
				"control: {socket: \"\"}\n",
				script);
}

static struct generation *start(struct generation **list, const struct config *c, unsigned id, char **ret_error) {
	struct generation_spec spec = {
		.config = c, .id = id, .notify_socket = "@baton-test/notify", .nofile = &nofile, .loop = &loop};
	struct generation *g = NULL;
	return generation_start(list, &spec, &g, ret_error) < 0 ? NULL : g;
}

/* Waits (5 s at most) for pid, a child of ours, to end; the signal that killed it, 0 for an exit, -1 for none. */
static int reap(pid_t pid) {
	for (int i = 0; i < 500; i++) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		poll_step();
	}
	return -1;
}

/* The pid the program wrote to dir/NAME (5 s at most), once that process has called setsid() when asked to. */
static pid_t pid_in(const char *name, bool own_session) {
	char path[128], buf[32];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (int i = 0; i < 500; i++) {
		uint64_t v;
		if (read_file_at(AT_FDCWD, path, 0, buf, sizeof(buf)) > 0 && (buf[strcspn(buf, "\n")] = '\0', true) &&
		    parse_uint64(buf, &v) == 0 && (!own_session || getsid((pid_t)v) == (pid_t)v))
			return (pid_t)v;
		poll_step();
	}
	return 0;
}

static void free_all(struct generation **list) {
	for (struct generation *x; (x = *list);) {
		generation_unlink(list, x);
		generation_free(x);
	}
}

static void test_start_and_kill(void) {
	struct generation *list = NULL;
	char *error = NULL;
	struct config *c = config_for("sleep 30 & echo $! > bg; exec sleep 30");
	struct generation *g = start(&list, c, 1, &error);
	CHECK(g && list == g && g->id == 1 && g->pid > 0 && g->pgid == g->pid && g->state == GEN_STARTING,
	      "generation 1 starts in a process group of its own, starting (%s)", strempty(error));
	if (!g)
		return;
	CHECK(g->pidfd >= 0 && g->deadline_usec == g->started_usec + c->readiness_timeout_usec,
	      "with a pidfd and the readiness deadline");
	CHECK(generation_by_pid(list, g->pid) == g && generation_by_id(list, 1) == g && !generation_by_id(list, 2) &&
		      generations_alive(list) == 1,
	      "found by pid and by number");
	pid_t bg = pid_in("bg", false);
	CHECK(bg > 0 && getpgid(bg) == g->pgid, "its background job is in its process group");
	CHECK(generation_has(g, g->pid) && !generation_has(g, bg) && !generation_has(g, getpid()),
	      "membership without cgroups: the main process (the job is not an orphan yet)");

	generation_kill(list, g, "is killed by the test");
	CHECK(g->state == GEN_KILLED && g->deadline_usec == USEC_INFINITY, "killed: GEN_KILLED, no deadline");
	CHECK(reap(g->pid) == SIGKILL, "the main process got SIGKILL");
	CHECK(reap(bg) == SIGKILL, "its process group too");
	CHECK(generations_alive(list) == 0, "no live generation left");
	generation_unlink(&list, g);
	CHECK(!list, "unlinked");
	generation_free(g);
	config_free(c);
}

static void test_signal_and_stop(void) {
	struct generation *list = NULL;
	char *error = NULL;
	struct config *c = config_for("exec sleep 30");
	struct generation *g = start(&list, c, 1, &error);
	struct generation *g2 = start(&list, c, 2, &error);
	CHECK(g && g2 && list == g2 && g2->next == g, "two generations, the newest first");
	if (!g || !g2)
		return;
	CHECK(generation_signal(g, SIGUSR1) == 0 && reap(g->pid) == SIGUSR1,
	      "generation_signal reaches the main process");
	CHECK(generation_signal(g, SIGUSR1) == -ESRCH, "once it is gone: -ESRCH");

	generation_stop(list, g2, c, 100);
	CHECK(g2->state == GEN_STOPPING && g2->deadline_usec == 100 + 3 * USEC_PER_SEC,
	      "generation_stop: stopping, SIGKILL due stop.timeout later");
	CHECK(reap(g2->pid) == SIGTERM, "stop.signal (SIGTERM) sent");
	generation_stop(list, g2, c, 200);
	CHECK(g2->deadline_usec == 100 + 3 * USEC_PER_SEC, "stopping it again changes nothing");

	struct generation *nobody = &(struct generation){.id = 9, .state = GEN_STARTING, .pidfd = -1};
	CHECK(generation_signal(nobody, SIGTERM) == -ESRCH, "no process (a daemon not known yet): -ESRCH");
	generation_stop(list, nobody, c, 100);
	CHECK(nobody->state == GEN_KILLED && nobody->deadline_usec == 0,
	      "told to stop without a process: killed, due at once");

	free_all(&list);
	config_free(c);
}

/* Its main process ends, leaving a worker that called setsid(): the worker is adopted (and killed with it). Another
 * generation's orphan is neither adopted by it nor killed with it; its strays die with their own generation. */
static void test_orphans(void) {
	struct generation *list = NULL;
	char *error = NULL;
	struct config *c = config_for("setsid sleep 30 & echo $! > orphan-$BATON_GENERATION; exit 0");
	struct generation *g1 = start(&list, c, 1, &error);
	CHECK(g1, "generation 1 starts (%s)", strempty(error));
	if (!g1)
		return;
	pid_t o1 = pid_in("orphan-1", true);
	CHECK(o1 > 0 && reap(g1->pid) == 0, "its main process exited 0, leaving pid %d in a session of its own",
	      (int)o1);
	generations_adopt(list, NULL, g1->pid);
	CHECK(g1->n_adopted == 1 && g1->adopted[0] == o1 && generation_has(g1, o1),
	      "the orphan is adopted by the generation whose process was reaped");
	generations_adopt(list, NULL, g1->pid);
	CHECK(g1->n_adopted == 1, "adopted once");

	struct generation *g2 = start(&list, c, 2, &error);
	CHECK(g2, "generation 2 starts");
	if (!g2)
		return;
	pid_t o2 = pid_in("orphan-2", true);
	CHECK(o2 > 0 && reap(g2->pid) == 0, "its main process exited 0 too, leaving pid %d", (int)o2);
	/* Not adopted: found at kill time by its BATON_GENERATION. */
	CHECK(!generation_has(g1, o2) && !generation_has(g2, o2), "generation 2's orphan is nobody's member yet");

	generation_kill(list, g1, "is killed by the test");
	CHECK(reap(o1) == SIGKILL, "killing generation 1 kills the orphan it adopted");
	CHECK(kill(o2, 0) == 0, "and leaves generation 2's alone");
	generation_kill(list, g2, "is killed by the test");
	CHECK(reap(o2) == SIGKILL, "killing generation 2 kills its stray, by its BATON_GENERATION");
	generations_adopt(list, NULL, o1);
	CHECK(g1->n_adopted == 0, "a reaped adopted pid leaves the list");

	free_all(&list);
	config_free(c);
}

static void test_bad_start(void) {
	struct generation *list = NULL;
	char *error = NULL;
	struct config *c = config_for("true");
	free(c->command[0]);
	c->command[0] = strdup("/nonexistent/program");
	CHECK(!start(&list, c, 1, &error) && !list && error && strstr(error, "/nonexistent/program"),
	      "a program that does not exist: an error naming it, nothing tracked: %s", strempty(error));
	free(error);
	config_free(c);
}

/* GENERATIONS_MAX alive: before another starts, the oldest of those stopping or draining is killed. */
static void test_make_room(void) {
	struct generation g[GENERATIONS_MAX];
	struct generation *list = NULL;
	for (unsigned i = 0; i < GENERATIONS_MAX; i++) {
		g[i] = (struct generation){.id = 90 + i,
					   .state = i == 0 ? GEN_READY : GEN_STOPPING,
					   .pidfd = -1,
					   .deadline_usec = 1,
					   .next = list};
		list = &g[i];
	}
	generations_make_room(list);
	CHECK(g[1].state == GEN_KILLED && g[2].state == GEN_STOPPING && g[3].state == GEN_STOPPING &&
		      generations_alive(list) == GENERATIONS_MAX - 1,
	      "at the limit: the oldest stopping generation is killed, only it");
	generations_make_room(list);
	CHECK(generations_alive(list) == GENERATIONS_MAX - 1, "below the limit: nothing");
	for (unsigned i = 2; i < GENERATIONS_MAX; i++)
		g[i].state = GEN_READY;
	g[1].state = GEN_READY;
	generations_make_room(list);
	CHECK(generations_alive(list) == GENERATIONS_MAX, "none stopping or draining: none is killed");
}

int main(void) {
	log_max_level = LOG_CRIT;
	mechanism_test_setup(dir, &loop, &nofile);
	test_start_and_kill();
	test_signal_and_stop();
	test_orphans();
	test_bad_start();
	test_make_room();
	evloop_close(&loop);
	char path[160];
	for (const char *const *f = (const char *const[]){"baton.yaml", "bg", "orphan-1", "orphan-2", NULL}; *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *f);
		unlink(path);
	}
	rmdir(dir);
	return test_done();
}
