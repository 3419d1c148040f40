/* Generations without cgroups (generation.c, generation-members.c), with real short-lived children under their
 * keeper (keeper.h): a start and what it tracks, one that cannot start; membership (the keeper's subtree); signal,
 * stop and kill; the limit on live generations. What a generation's daemons do (setsid, double fork, env -i,
 * renaming) is members.bats's, with the real binary. */
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

/* Waits (5 s at most) until pid is gone: the generation's keeper (keeper.h), its parent, has reaped it. */
static bool gone(pid_t pid) {
	for (int i = 0; i < 500; i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		poll_step();
	}
	return false;
}

/* Waits (5 s at most) for the file dir/NAME, which a trap of the program writes. */
static bool file_in(const char *name) {
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (int i = 0; i < 500; i++) {
		if (access(path, F_OK) == 0)
			return unlink(path) == 0;
		poll_step();
	}
	return false;
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
	CHECK(g->keeper > 0, "without cgroups, a keeper (pid %d)", (int)g->keeper);
	CHECK(generation_has(g, g->pid), "its main process is a member");
	CHECK(generation_has(g, bg), "its job is a member");
	CHECK(!generation_has(g, getpid()), "the test process (its parent's parent) is not");

	generation_kill(list, g, "is killed by the test");
	CHECK(g->state == GEN_KILLED && g->deadline_usec == USEC_INFINITY, "killed: GEN_KILLED, no deadline");
	CHECK(gone(g->pid), "the main process is gone");
	CHECK(gone(bg), "its job too");
	CHECK(generations_alive(list) == 0, "no live generation left");
	generation_unlink(&list, g);
	CHECK(!list, "unlinked");
	generation_free(g);
	config_free(c);
}

static void test_signal_and_stop(void) {
	struct generation *list = NULL;
	char *error = NULL;
	struct config *c = config_for("trap \"echo > usr1-\\$BATON_GENERATION; exit 0\" USR1; "
				      "trap \"echo > term-\\$BATON_GENERATION; exit 0\" TERM; "
				      "echo > up-$BATON_GENERATION; while :; do sleep 0.05; done");
	struct generation *g = start(&list, c, 1, &error);
	struct generation *g2 = start(&list, c, 2, &error);
	CHECK(g && g2 && list == g2 && g2->next == g, "two generations, the newest first");
	if (!g || !g2)
		return;
	CHECK(file_in("up-1") && file_in("up-2"), "both run");
	CHECK(generation_signal(g, SIGUSR1) == 0 && file_in("usr1-1") && gone(g->pid),
	      "generation_signal reaches the main process");
	CHECK(generation_signal(g, SIGUSR1) == -ESRCH, "once it is gone: -ESRCH");

	generation_stop(list, g2, c, 100);
	CHECK(g2->state == GEN_STOPPING && g2->deadline_usec == 100 + 3 * USEC_PER_SEC,
	      "generation_stop: stopping, SIGKILL due stop.timeout later");
	CHECK(file_in("term-2") && gone(g2->pid), "stop.signal (SIGTERM) sent");
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
