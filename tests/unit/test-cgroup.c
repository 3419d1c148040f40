/* cgroup.c against a temporary directory tree standing in for /sys/fs/cgroup: cgroup_tree_open() itself wants a real
 * cgroup2 mount and refuses anything else (checked), so the tree is built by hand on the directory; then the
 * generations' cgroups are created and removed, their files read (cgroup.procs, cgroup.events, memory.current,
 * cpu.stat, with bad contents), signals and SIGKILL (cgroup.kill, and the fallback of kernels without it) reach real
 * children that cgroup.procs lists, and cgroup_tree_close() leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "test.h"
#include "util.h"

static char root[] = "/tmp/baton-test-cgroup-XXXXXX";

/* Writes text to root/rel (a file of the fake hierarchy). */
static void put(const char *rel, const char *text) {
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
}

static bool exists(const char *rel) {
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

static void get(const char *rel, char *buf, size_t size) {
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (read_file_at(AT_FDCWD, path, 0, buf, size) < 0)
		buf[0] = '\0';
}

/* A child that waits to be signalled. */
static pid_t child(void) {
	pid_t pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* How pid ended: the signal that killed it, or -1. */
static int killed_by(pid_t pid) {
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status))
		return -1;
	return WTERMSIG(status);
}

/* The tree baton would have made: root/baton-1 (created, in the shared cgroup root) with its leaf "supervisor". */
static void tree(struct cgroup_tree *t) {
	char dir[128], leaf[256];
	snprintf(dir, sizeof(dir), "%s/baton-1", root);
	snprintf(leaf, sizeof(leaf), "%s/supervisor", dir);
	CHECK(mkdir(dir, 0755) == 0 && mkdir(leaf, 0755) == 0, "the tree's directory and its leaf");
	put("cgroup.procs", "");
	*t = (struct cgroup_tree){
		.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC),
		.path = strdup("/baton-1"),
		.dir = strdup(dir),
		.origin = strdup(root),
		.created = true,
	};
}

static void test_open_refuses(void) {
	struct cgroup_tree t = CGROUP_TREE_INIT;
	char *error = NULL;
	setenv("BATON_CGROUP_ROOT", root, 1);
	CHECK(cgroup_tree_open(&t, &error) == -ENOENT && error && strstr(error, "is not a cgroup2 mount") &&
		      strstr(error, root) && t.fd == -1,
	      "a directory that is not a cgroup2 mount is refused, naming it: %s", strempty(error));
	unsetenv("BATON_CGROUP_ROOT");
	free(error);
}

static void test_create_remove(const struct cgroup_tree *t) {
	CHECK(cgroup_create(t, "gen-1") == 0 && exists("baton-1/gen-1"), "cgroup_create makes gen-1");
	CHECK(cgroup_create(t, "gen-1") == 0, "and reuses one that is there");
	CHECK(cgroup_create(t, "no/such/gen-2") == -ENOENT, "a name below nothing: -ENOENT");
	CHECK(cgroup_remove(t, "gen-1") == 0 && !exists("baton-1/gen-1"), "cgroup_remove removes it");
	CHECK(cgroup_remove(t, "gen-1") == -ENOENT, "removing it again: -ENOENT");
}

static void test_procs(const struct cgroup_tree *t) {
	pid_t *pids = NULL;
	size_t n = 99;
	char text[64];

	cgroup_create(t, "gen-2");
	CHECK(cgroup_pids(t, "gen-2", &pids, &n) == -ENOENT && cgroup_count(t, "gen-2") == -ENOENT,
	      "no cgroup.procs: -ENOENT");
	CHECK(cgroup_signal(t, "gen-2", 0) == -ENOENT && cgroup_kill(t, "gen-2") == -ENOENT,
	      "signal and kill: -ENOENT too");
	put("baton-1/gen-2/cgroup.procs", "");
	CHECK(cgroup_pids(t, "gen-2", &pids, &n) == 0 && n == 0 && cgroup_count(t, "gen-2") == 0, "empty: no pids");
	free(pids);
	put("baton-1/gen-2/cgroup.procs", "12\n345\n");
	CHECK(cgroup_pids(t, "gen-2", &pids, &n) == 0 && n == 2 && pids[0] == 12 && pids[1] == 345,
	      "one pid a line, in order");
	free(pids);
	put("baton-1/gen-2/cgroup.procs", "12\nnot a pid\n345\n");
	CHECK(cgroup_count(t, "gen-2") == 1, "reading stops at what is not a number");

	/* Signals reach what cgroup.procs lists. */
	pid_t a = child(), b = child();
	snprintf(text, sizeof(text), "%d\n%d\n", (int)a, (int)b);
	put("baton-1/gen-2/cgroup.procs", text);
	CHECK(cgroup_signal(t, "gen-2", SIGTERM) == 2, "cgroup_signal: 2 processes");
	CHECK(killed_by(a) == SIGTERM && killed_by(b) == SIGTERM, "both got SIGTERM");

	/* Without cgroup.kill (before Linux 5.14): SIGKILL to each pid. */
	a = child();
	b = child();
	snprintf(text, sizeof(text), "%d\n%d\n", (int)a, (int)b);
	put("baton-1/gen-2/cgroup.procs", text);
	CHECK(cgroup_kill(t, "gen-2") == 0, "cgroup_kill without cgroup.kill");
	CHECK(killed_by(a) == SIGKILL && killed_by(b) == SIGKILL, "both got SIGKILL, one by one");

	/* With it, the kernel does the killing: "1" is written there. */
	put("baton-1/gen-2/cgroup.kill", "");
	put("baton-1/gen-2/cgroup.procs", "");
	CHECK(cgroup_kill(t, "gen-2") == 0, "cgroup_kill with cgroup.kill");
	get("baton-1/gen-2/cgroup.kill", text, sizeof(text));
	CHECK_STREQ(text, "1", "cgroup.kill gets 1");
}

static void test_events(const struct cgroup_tree *t) {
	cgroup_create(t, "gen-3");
	CHECK(cgroup_events_open(t, "gen-3") == -ENOENT, "no cgroup.events: -ENOENT");
	put("baton-1/gen-3/cgroup.events", "populated 1\nfrozen 0\n");
	int fd = cgroup_events_open(t, "gen-3");
	CHECK(fd >= 0 && cgroup_populated(fd) == 1, "populated 1");
	put("baton-1/gen-3/cgroup.events", "populated 0\nfrozen 0\n");
	CHECK(cgroup_populated(fd) == 0, "populated 0, read again from the start");
	put("baton-1/gen-3/cgroup.events", "frozen 0\n");
	CHECK(cgroup_populated(fd) == -EIO, "no populated line: -EIO");
	close(fd);
	CHECK(cgroup_populated(fd) == -EBADF, "a closed fd: -EBADF");
}

static void test_figures(const struct cgroup_tree *t) {
	uint64_t mem = 0, cpu = 0;
	cgroup_create(t, "gen-4");
	cgroup_figures(t, "gen-4", &mem, &cpu);
	CHECK(mem == UINT64_MAX && cpu == UINT64_MAX, "no controller files: both unknown");
	put("baton-1/gen-4/memory.current", "1048576\n");
	put("baton-1/gen-4/cpu.stat", "usage_usec 777\nuser_usec 700\nsystem_usec 77\n");
	cgroup_figures(t, "gen-4", &mem, &cpu);
	CHECK(mem == 1048576 && cpu == 777, "memory.current and cpu.stat's usage_usec");
	put("baton-1/gen-4/memory.current", "max\n");
	put("baton-1/gen-4/cpu.stat", "user_usec 700\nusage_usec 777\n");
	cgroup_figures(t, "gen-4", &mem, &cpu);
	CHECK(mem == UINT64_MAX && cpu == UINT64_MAX, "what does not parse is unknown, not a number");
}

/* Membership is /proc/PID/cgroup's "0::" line, which this hierarchy cannot change: what it says of this process. */
static void test_has_pid(const struct cgroup_tree *t) {
	char buf[4096], *own = NULL;
	if (read_file_at(AT_FDCWD, "/proc/self/cgroup", 0, buf, sizeof(buf)) > 0 && (own = strstr(buf, "0::/")))
		own[strcspn(own, "\n")] = '\0';
	CHECK(own, "this process's cgroup v2 line: %s", own ? own : "none");
	if (!own)
		return;
	own += 3;
	char *slash = strrchr(own, '/');
	CHECK(!cgroup_has_pid(t, "gen-1", getpid()), "not in the tree's gen-1");
	if (slash == own && !own[1]) {
		printf("# this process is in the root cgroup: no cgroup below a tree to be found in\n");
		return;
	}
	*slash = '\0';
	struct cgroup_tree mine = {.fd = t->fd, .path = own};
	CHECK(cgroup_has_pid(&mine, slash + 1, getpid()), "in %s, named below %s", slash + 1, own);
	mine.fd = -1;
	CHECK(!cgroup_has_pid(&mine, slash + 1, getpid()), "not with a closed tree");
}

/* What a generation left (an empty cgroup) and the leaf go; baton goes back to where it started (its
 * cgroup.procs gets "0"); the directory baton created goes too. */
static void test_close(struct cgroup_tree *t) {
	char text[16];
	put("baton-1/gen-2/cgroup.procs", "");
	char path[256];
	for (const char *const *f =
		     (const char *const[]){"gen-2/cgroup.procs", "gen-2/cgroup.kill", "gen-3/cgroup.events",
					   "gen-4/memory.current", "gen-4/cpu.stat", NULL};
	     *f; f++) {
		snprintf(path, sizeof(path), "%s/baton-1/%s", root, *f);
		unlink(path); /* a real cgroup's files go with its rmdir; these are plain files */
	}
	cgroup_tree_close(t);
	get("cgroup.procs", text, sizeof(text));
	CHECK_STREQ(text, "0", "baton is moved back to its starting cgroup");
	CHECK(!exists("baton-1/gen-2") && !exists("baton-1/gen-3") && !exists("baton-1/supervisor") &&
		      !exists("baton-1"),
	      "the generations' cgroups, the leaf and the tree's directory are gone");
	CHECK(t->fd == -1 && !t->path && !t->dir, "the tree is reset");
	cgroup_tree_close(t);
	CHECK(t->fd == -1, "closing it again does nothing");
}

int main(void) {
	if (!mkdtemp(root)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	struct cgroup_tree t;
	test_open_refuses();
	tree(&t);
	test_create_remove(&t);
	test_procs(&t);
	test_events(&t);
	test_figures(&t);
	test_has_pid(&t);
	test_close(&t);
	char path[256];
	snprintf(path, sizeof(path), "%s/cgroup.procs", root);
	unlink(path);
	rmdir(root);
	return test_done();
}
