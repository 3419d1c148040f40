/* Readiness without READY=1 (readiness.c; baton.yaml(5) READINESS), with real children: when each type checks first;
 * readiness.delay; a pid file naming the generation's process, an orphan of its own (followed) or of another's (not),
 * and bad pid files (garbage, half a pid, a dead or foreign pid, none at all); a probe command that exits 0 or not,
 * and one reaped after its generation stopped starting; a daemon's launcher that exits 0. The test process is the
 * child subreaper, as baton is. */
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
#include "readiness.h"
#include "test.h"
#include "util.h"

#define MS (UINT64_C(1000))
#define SEC (UINT64_C(1000000))

static char dir[] = "/tmp/baton-test-readiness-XXXXXX";
static char pid_file[128];
static struct evloop loop = EVLOOP_INIT;
static struct rlimit nofile;
static char how[READINESS_HOW_MAX];

static struct config *config_for(const char *readiness) {
	char path[128];
	snprintf(path, sizeof(path), "%s/baton.yaml", dir);
	return config_from_yaml(
		path, "program:\n  command: [/bin/true]\n  cgroup: never\nreadiness: %s\ncontrol: {socket: \"\"}\n",
		readiness);
}

/* A generation as generation_start() leaves it, for c, with main process pid (0: none). */
static struct generation gen(const struct config *c, unsigned id, pid_t pid) {
	return (struct generation){.id = id,
				   .pid = pid,
				   .pgid = pid,
				   .pidfd = -1,
				   .state = GEN_STARTING,
				   .started_usec = 10 * SEC,
				   .readiness = c->readiness_type,
				   .config = c,
				   .check_usec = USEC_INFINITY,
				   .cgroup_events_fd = -1};
}

static void write_pid_file(const char *text) {
	FILE *f = fopen(pid_file, "w");
	fputs(text, f);
	fclose(f);
}

/* A child that sleeps until killed; with env, BATON_GENERATION=id in its environment; orphaned: its parent (a child
 * of ours) exits at once, so that it is our orphan, as a daemon is baton's. */
static pid_t sleeper(unsigned id, bool orphaned) {
	int p[2];
	if (pipe(p) < 0)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		char env[32];
		snprintf(env, sizeof(env), "BATON_GENERATION=%u", id);
		char *const envp[] = {id ? env : NULL, NULL};
		close(p[0]);
		if (orphaned && fork() > 0)
			_exit(0);
		pid_t self = getpid();
		(void)!write(p[1], &self, sizeof(self));
		execle("/bin/sleep", "sleep", "30", (char *)NULL, envp);
		_exit(127);
	}
	close(p[1]);
	pid_t got = 0;
	(void)!read(p[0], &got, sizeof(got));
	close(p[0]);
	if (orphaned)
		waitpid(pid, NULL, 0);
	/* Its environment is the one exec gave it once /proc says it is sleep. */
	char path[64], comm[32] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)got);
	for (int i = 0; i < 500 && !streq(comm, "sleep\n"); i++) {
		poll_step();
		if (read_file_at(AT_FDCWD, path, 0, comm, sizeof(comm)) < 0)
			break;
	}
	return got;
}

static void end(pid_t pid) {
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_begin(void) {
	static const struct {
		const char *readiness;
		uint64_t first;
	} cases[] = {
		{"{type: exec, command: [/bin/true]}", 10 * SEC}, {"{type: pidfile, pid-file: /run/x.pid}", 10 * SEC},
		{"{type: delay, delay: 2s}", 12 * SEC},           {"{type: notify}", USEC_INFINITY},
		{"{type: log, pattern: up}", USEC_INFINITY},      {"{type: none}", USEC_INFINITY},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct config *c = config_for(cases[i].readiness);
		struct generation g = gen(c, 1, 4242);
		readiness_begin(&g);
		CHECK(g.check_usec == cases[i].first, "readiness %s: the first check at %llu us", cases[i].readiness,
		      (unsigned long long)g.check_usec);
		config_free(c);
	}
}

static void test_delay(void) {
	struct config *c = config_for("{type: delay, delay: 2s}");
	struct generation g = gen(c, 1, 4242);
	readiness_begin(&g);
	CHECK(readiness_check(&loop, &g, &g, &nofile, 12 * SEC, how) && streq(how, "readiness.delay has passed"),
	      "readiness.delay: ready when its check comes");
	g.state = GEN_STOPPING;
	CHECK(!readiness_check(&loop, &g, &g, &nofile, 12 * SEC, how) && g.check_usec == USEC_INFINITY,
	      "a generation that is no longer starting: never ready, no more checks");
	config_free(c);
}

static void test_pid_file(void) {
	char text[256];
	snprintf(text, sizeof(text), "{type: pidfile, interval: 100ms, pid-file: %s}", pid_file);
	struct config *c = config_for(text);
	pid_t main_pid = sleeper(1, false);
	struct generation g = gen(c, 1, main_pid);

	unlink(pid_file);
	CHECK(!readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how) && g.check_usec == 20 * SEC + 100 * MS,
	      "no pid file yet: not ready, the next check readiness.interval later");
	static const char *const bad[] = {"", "abc\n", "12ab\n", "1\n", "0\n", " \n", "1234567890\n", "-5\n"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_pid_file(bad[i]);
		CHECK(!readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how), "pid file '%.*s': not ready",
		      (int)strcspn(bad[i], "\n"), bad[i]);
	}
	snprintf(text, sizeof(text), "%d", (int)getpid());
	write_pid_file(text);
	CHECK(!readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how),
	      "a live pid that is not baton's child: not ready");

	snprintf(text, sizeof(text), "  %d\n", (int)main_pid);
	write_pid_file(text);
	CHECK(readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how) && g.pid == main_pid && strstr(how, pid_file) &&
		      strstr(how, "names pid"),
	      "the generation's own pid (white space around it): ready: %s", how);

	/* A daemon: an orphan of ours that no generation claims is followed. Which generation's it was is never read
	 * from its BATON_GENERATION (memory the program can write): without cgroups a generation has a keeper, whose
	 * children only it may follow (members.bats); this one, like a generation handed over by a baton without
	 * keepers, takes an unclaimed orphan. */
	struct generation g2 = gen(c, 2, main_pid);
	g2.next = &g;
	pid_t other = sleeper(1, true), daemon = sleeper(2, true);
	snprintf(text, sizeof(text), "%d\n", (int)daemon);
	write_pid_file(text);
	CHECK(readiness_check(&loop, &g2, &g2, &nofile, 20 * SEC, how) && g2.pid == daemon && g2.pidfd >= 0,
	      "an unclaimed orphan: ready, and followed (its pid and a pidfd)");
	if (g2.pidfd >= 0)
		close(g2.pidfd);
	end(other);
	end(daemon);
	snprintf(text, sizeof(text), "%d\n", (int)daemon);
	write_pid_file(text);
	g2.pid = main_pid;
	CHECK(!readiness_check(&loop, &g2, &g2, &nofile, 20 * SEC, how), "a pid that is gone: not ready");
	end(main_pid);

	/* The launcher of a daemon exits 0 before the pid file names a live process. */
	struct generation g3 = gen(c, 3, 4242);
	CHECK(readiness_launcher_exited(&g3, W_EXITCODE(0, 0), 30 * SEC) && g3.pid == 0 && g3.check_usec == 30 * SEC,
	      "its launcher exited 0: the daemon is awaited, checked at once");
	struct generation g4 = gen(c, 4, 4242);
	CHECK(!readiness_launcher_exited(&g4, W_EXITCODE(1, 0), 30 * SEC) && g4.pid == 4242,
	      "its launcher exited 1: a failed start");
	CHECK(!readiness_launcher_exited(&g4, SIGKILL, 30 * SEC), "killed: a failed start");
	config_free(c);
	c = config_for("{type: notify}");
	struct generation g5 = gen(c, 5, 4242);
	CHECK(!readiness_launcher_exited(&g5, 0, 30 * SEC) && g5.pid == 4242,
	      "with another readiness type, an exit 0 is just an exit");
	config_free(c);
}

/* Runs g's next check, which starts its probe, and reaps the probe: whether it made g ready. */
static bool probe_round(struct generation *g, bool *ret_was_probe) {
	*ret_was_probe = false;
	if (readiness_check(&loop, g, g, &nofile, 20 * SEC, how) || g->probe_pid <= 0)
		return false;
	int status;
	pid_t pid = g->probe_pid;
	if (waitpid(pid, &status, 0) != pid)
		return false;
	struct generation *ready = NULL;
	enum probe_outcome o = readiness_probe_reaped(g, pid, status, 21 * SEC, &ready);
	*ret_was_probe = o != PROBE_NOT_A_PROBE;
	return o == PROBE_READY && ready == g;
}

static void test_exec(void) {
	bool was_probe = false;
	struct config *c =
		config_for("{type: exec, interval: 100ms, command: [/bin/sh, -c, 'exit $BATON_PROBE_EXIT']}");
	struct generation g = gen(c, 1, getpid());

	setenv("BATON_PROBE_EXIT", "1", 1);
	CHECK(!probe_round(&g, &was_probe) && was_probe && g.probe_pid == 0 && g.check_usec == 21 * SEC + 100 * MS,
	      "a probe that exits 1: not ready, the next one readiness.interval later");
	setenv("BATON_PROBE_EXIT", "0", 1);
	CHECK(probe_round(&g, &was_probe) && was_probe && g.probe_pid == 0, "a probe that exits 0: ready");

	CHECK(!readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how) && g.probe_pid > 0, "a probe runs");
	pid_t probe = g.probe_pid;
	CHECK(!readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how) && g.probe_pid == probe,
	      "one at a time: no second probe while it runs");
	g.state = GEN_STOPPING;
	int status;
	waitpid(probe, &status, 0);
	struct generation *ready = NULL;
	CHECK(readiness_probe_reaped(&g, probe, status, 21 * SEC, &ready) == PROBE_NOTHING && g.probe_pid == 0,
	      "a probe that ends after its generation stopped starting: its own, and nobody is ready");
	CHECK(readiness_probe_reaped(&g, getpid(), 0, 21 * SEC, &ready) == PROBE_NOT_A_PROBE,
	      "a pid that is no probe: not one");
	unsetenv("BATON_PROBE_EXIT");
	config_free(c);

	c = config_for("{type: exec, interval: 100ms, command: [/nonexistent/probe]}");
	g = gen(c, 1, getpid());
	CHECK(!readiness_check(&loop, &g, &g, &nofile, 20 * SEC, how) && g.probe_pid == 0 &&
		      g.check_usec != USEC_INFINITY,
	      "a probe that cannot be run: not ready, tried again later");
	config_free(c);
}

int main(void) {
	log_max_level = LOG_CRIT;
	mechanism_test_setup(dir, &loop, &nofile);
	snprintf(pid_file, sizeof(pid_file), "%s/app.pid", dir);
	test_begin();
	test_delay();
	test_pid_file();
	test_exec();
	evloop_close(&loop);
	char path[160];
	snprintf(path, sizeof(path), "%s/baton.yaml", dir);
	unlink(path);
	unlink(pid_file);
	rmdir(dir);
	return test_done();
}
