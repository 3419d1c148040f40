/* The child's environment, argv substitution, credentials, and real children: fd layout through colliding numbers,
 * LISTEN_PID, signal state, process group, exec failures reported with their path. */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "test.h"
#include "util.h"

static size_t count_name(char *const *env, const char *name) {
	size_t n = 0, len = strlen(name);
	for (; env && *env; env++)
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			n++;
	return n;
}

static const char *env_get(char *const *env, const char *name) {
	size_t len = strlen(name);
	for (; env && *env; env++)
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			return *env + len + 1;
	return NULL;
}

static void test_env(void) {
	static const char *const removed[] = {"LISTEN_FDS",   "LISTEN_PID",    "LISTEN_FDNAMES", "LISTEN_PIDFDID",
	                                      "WATCHDOG_PID", "WATCHDOG_USEC", "NOTIFY_SOCKET",  "BATON_GENERATION"};
	char *base[] = {"PATH=/bin",
	                "LISTEN_FDS=9",
	                "LISTEN_PID=1",
	                "LISTEN_FDNAMES=x",
	                "LISTEN_PIDFDID=5",
	                "WATCHDOG_PID=1",
	                "WATCHDOG_USEC=100",
	                "NOTIFY_SOCKET=/run/systemd/notify",
	                "BATON_GENERATION=7",
	                "NOEQUALS",
	                "LISTEN_FDS_EXTRA=kept",
	                "HOME=/root",
	                "LANG=C",
	                NULL};
	char *overrides[] = {"LANG=de_DE.UTF-8", "APP=1", "NOTIFY_SOCKET=/evil", NULL};
	char *names[] = {"http", "admin", NULL};
	struct spawn_env_params p = {
	    .base = base,
	    .overrides = overrides,
	    .names = names,
	    .n_fds = 2,
	    .notify_socket = "/run/baton/notify",
	    .generation = 3,
	};
	char **env = NULL;

	CHECK(spawn_build_env(&p, &env) == 0, "environment builds");
	static const char *const want[] = {"PATH=/bin",
	                                   "LISTEN_FDS_EXTRA=kept",
	                                   "HOME=/root",
	                                   "LANG=de_DE.UTF-8",
	                                   "APP=1",
	                                   "LISTEN_FDS=2",
	                                   "LISTEN_FDNAMES=http:admin",
	                                   "NOTIFY_SOCKET=/run/baton/notify",
	                                   "BATON_GENERATION=3",
	                                   "LISTEN_PID="};
	CHECK(strv_length(env) == ARRAY_SIZE(want), "%zu entries (got %zu)", ARRAY_SIZE(want), strv_length(env));
	for (size_t i = 0; i < ARRAY_SIZE(want) && i < strv_length(env); i++)
		CHECK_STREQ(env[i], want[i], "entry %zu is %s", i, want[i]);
	for (size_t i = 0; i < ARRAY_SIZE(removed); i++) {
		bool ours = !streq(removed[i], "LISTEN_PIDFDID") && !streq(removed[i], "WATCHDOG_PID") &&
		            !streq(removed[i], "WATCHDOG_USEC");
		CHECK(count_name(env, removed[i]) == (ours ? 1u : 0u), "inherited %s is %s", removed[i],
		      ours ? "replaced by baton's" : "removed");
	}
	CHECK(count_name(env, "NOEQUALS") == 0 && !env_get(env, "NOEQUALS"), "an entry without '=' is dropped");
	CHECK(count_name(env, "LANG") == 1, "an override replaces the inherited value instead of adding a second");

	/* The slot is last and takes any pid, also after a longer one was written. */
	static const struct {
		pid_t pid;
		const char *want;
	} pids[] = {{1, "LISTEN_PID=1"},
	            {4194304, "LISTEN_PID=4194304"},
	            {42, "LISTEN_PID=42"},
	            {2147483647, "LISTEN_PID=2147483647"}};
	for (size_t i = 0; i < ARRAY_SIZE(pids); i++) {
		spawn_set_listen_pid(env, pids[i].pid);
		CHECK_STREQ(env[strv_length(env) - 1], pids[i].want, "LISTEN_PID slot filled for pid %d",
		            (int)pids[i].pid);
	}
	free(env);

	/* No fds: none of the LISTEN_* variables, and nothing for the child to fill in. */
	char *overrides2[] = {"A=1", "A=2", NULL};
	p = (struct spawn_env_params){.base = base, .overrides = overrides2, .notify_socket = NULL, .generation = 12};
	env = NULL;
	CHECK(spawn_build_env(&p, &env) == 0, "environment without fds builds");
	CHECK(count_name(env, "LISTEN_FDS") == 0 && count_name(env, "LISTEN_PID") == 0 &&
	          count_name(env, "LISTEN_FDNAMES") == 0,
	      "no LISTEN_* when there are no fds");
	CHECK(count_name(env, "NOTIFY_SOCKET") == 0, "no NOTIFY_SOCKET (not even systemd's) when baton has none");
	CHECK_STREQ(env[strv_length(env) - 1], "BATON_GENERATION=12", "generation is last without fds");
	CHECK(count_name(env, "A") == 1 && streq(env_get(env, "A"), "2"), "the later of two overrides wins");
	spawn_set_listen_pid(env, 77);
	CHECK(count_name(env, "LISTEN_PID") == 0, "spawn_set_listen_pid without a slot changes nothing");
	free(env);

	/* One fd, empty base. */
	char *one[] = {"web", NULL};
	p = (struct spawn_env_params){.names = one, .n_fds = 1, .notify_socket = "@baton/1", .generation = 1};
	env = NULL;
	CHECK(spawn_build_env(&p, &env) == 0, "environment from an empty base builds");
	CHECK_STREQ(env_get(env, "LISTEN_FDNAMES"), "web", "one name, no separator");
	CHECK_STREQ(env_get(env, "LISTEN_FDS"), "1", "LISTEN_FDS=1");
	CHECK_STREQ(env_get(env, "NOTIFY_SOCKET"), "@baton/1", "abstract notify socket kept as given");
	free(env);

	/* program.watchdog: the child's own WATCHDOG_USEC, and WATCHDOG_PID filled in after fork, replacing baton's. */
	char *wbase[] = {"WATCHDOG_USEC=1", "WATCHDOG_PID=1", NULL};
	p = (struct spawn_env_params){
		.base = wbase, .names = one, .n_fds = 1, .generation = 1, .watchdog_usec = 5000000};
	env = NULL;
	CHECK(spawn_build_env(&p, &env) == 0, "environment with a watchdog builds");
	CHECK(count_name(env, "WATCHDOG_USEC") == 1 && streq(env_get(env, "WATCHDOG_USEC"), "5000000"),
	      "WATCHDOG_USEC is the program's, once");
	CHECK(count_name(env, "WATCHDOG_PID") == 1 && streq(env_get(env, "WATCHDOG_PID"), ""),
	      "WATCHDOG_PID is a slot until the fork");
	spawn_set_listen_pid(env, 4321);
	CHECK_STREQ(env_get(env, "WATCHDOG_PID"), "4321", "WATCHDOG_PID filled with the child's pid");
	CHECK_STREQ(env_get(env, "LISTEN_PID"), "4321", "LISTEN_PID filled too");
	free(env);

	/* The largest of everything in the one allocation: 1,000 names of 255 characters, a 107-byte socket path, the
	 * largest pid, generation and watchdog (ASan catches a byte written past its end). */
	static char names_text[1000][256];
	static char *many[1001];
	static char sock[108];
	for (size_t i = 0; i < 1000; i++) {
		memset(names_text[i], 'a' + (int)(i % 26), 255);
		many[i] = names_text[i];
	}
	memset(sock, 's', 107);
	sock[0] = '/';
	p = (struct spawn_env_params){.base = wbase,
				      .names = many,
				      .n_fds = 1000,
				      .notify_socket = sock,
				      .generation = UINT_MAX,
				      .watchdog_usec = UINT64_MAX};
	env = NULL;
	CHECK(spawn_build_env(&p, &env) == 0, "the largest environment builds");
	spawn_set_listen_pid(env, INT_MAX);
	const char *fdnames = env_get(env, "LISTEN_FDNAMES");
	CHECK(fdnames && strlen(fdnames) == 1000 * 256 - 1 && fdnames[255] == ':' && fdnames[256] == 'b',
	      "LISTEN_FDNAMES whole: 1,000 names (%zu bytes)", fdnames ? strlen(fdnames) : 0);
	CHECK_STREQ(env_get(env, "NOTIFY_SOCKET"), sock, "NOTIFY_SOCKET whole");
	CHECK_STREQ(env_get(env, "BATON_GENERATION"), "4294967295", "the largest generation");
	CHECK_STREQ(env_get(env, "WATCHDOG_USEC"), "18446744073709551615", "the largest WATCHDOG_USEC");
	CHECK_STREQ(env_get(env, "LISTEN_PID"), "2147483647", "the largest pid in LISTEN_PID");
	CHECK_STREQ(env_get(env, "WATCHDOG_PID"), "2147483647", "and in WATCHDOG_PID");
	free(env);
}

static void test_argv(void) {
	char *names[] = {"http", "admin", "metrics", NULL};
	char **argv = NULL, *bad = NULL;

	char *cmd1[] = {"/usr/bin/app", "--fd", "{fd:http}", "--admin={fd:admin}", NULL};
	CHECK(spawn_expand_argv(cmd1, names, 3, &argv, &bad) == 0, "single placeholders substitute");
	CHECK(strv_length(argv) == 4, "argc kept");
	CHECK_STREQ(argv[0], "/usr/bin/app", "program untouched");
	CHECK_STREQ(argv[2], "3", "{fd:http} is 3");
	CHECK_STREQ(argv[3], "--admin=4", "{fd:admin} inside an argument is 4");
	strv_free(argv);

	char *cmd2[] = {"app", "--fds={fd:metrics},{fd:http},{fd:metrics}", "{fd:admin}{fd:admin}", NULL};
	argv = NULL;
	CHECK(spawn_expand_argv(cmd2, names, 3, &argv, &bad) == 0, "several placeholders in one argument");
	CHECK_STREQ(argv[1], "--fds=5,3,5", "all occurrences replaced");
	CHECK_STREQ(argv[2], "44", "adjacent placeholders");
	strv_free(argv);

	char *cmd3[] = {"sh", "-c", "echo {} {fd} {fdx:http} {FD:http} ${x} {fd :http}", NULL};
	argv = NULL;
	CHECK(spawn_expand_argv(cmd3, names, 3, &argv, &bad) == 0, "braces that are not placeholders are fine");
	CHECK_STREQ(argv[2], "echo {} {fd} {fdx:http} {FD:http} ${x} {fd :http}", "and left untouched");
	strv_free(argv);

	char *cmd4[] = {"app", "plain", "", NULL};
	argv = NULL;
	CHECK(spawn_expand_argv(cmd4, NULL, 0, &argv, &bad) == 0, "no placeholders and no names");
	CHECK(strv_length(argv) == 3 && streq(argv[1], "plain") && streq(argv[2], ""), "copied as is");
	strv_free(argv);

	char *cmd5[] = {"app", "--fd={fd:https}", NULL};
	argv = NULL;
	bad = NULL;
	CHECK(spawn_expand_argv(cmd5, names, 3, &argv, &bad) == -ENOENT && !argv, "unknown name is -ENOENT");
	CHECK_STREQ(bad, "{fd:https} names no listener", "and names the unknown name");
	free(bad);

	char *cmd6[] = {"app", "{fd:}", NULL};
	bad = NULL;
	CHECK(spawn_expand_argv(cmd6, names, 3, &argv, &bad) == -ENOENT, "empty name is unknown");
	CHECK_STREQ(bad, "{fd:} names no listener", "and reported as empty");
	free(bad);

	char *cmd7[] = {"app", "{fd:http", NULL};
	bad = NULL;
	CHECK(spawn_expand_argv(cmd7, names, 3, &argv, &bad) == -EINVAL && !argv,
	      "unterminated placeholder is -EINVAL");
	CHECK_STREQ(bad, "a {fd:NAME} placeholder is not closed", "and says so");
	free(bad);
	bad = NULL;
	char *cmd8[] = {"app", "{fd:http}{fd:admin", NULL};
	CHECK(spawn_expand_argv(cmd8, names, 3, &argv, &bad) == -EINVAL, "unterminated after a good one too");
	free(bad);
	bad = NULL;
	char *cmd9[] = {"app", "{fd:http}", NULL};
	CHECK(spawn_expand_argv(cmd9, NULL, 0, &argv, &bad) == -ENOENT, "placeholder with no listeners");
	free(bad);
}

static void test_credentials(void) {
	struct spawn_params p = {0};
	gid_t *groups = NULL;
	char *error = NULL;

	CHECK(spawn_resolve_credentials("root", NULL, &p, &groups, &error) == 0, "root resolves");
	CHECK(p.set_credentials && p.uid == 0 && p.gid == 0, "root is 0:0");
	bool has0 = false;
	for (size_t i = 0; i < p.n_groups; i++)
		has0 = has0 || p.groups[i] == 0;
	CHECK(has0 && p.groups == groups, "root's groups include 0");
	free(groups);

	p = (struct spawn_params){0};
	CHECK(spawn_resolve_credentials("0", NULL, &p, &groups, &error) == 0 && p.uid == 0 && p.gid == 0,
	      "numeric uid 0 resolves");
	free(groups);

	struct passwd *nobody = getpwnam("nobody");
	if (nobody) {
		uid_t nuid = nobody->pw_uid;
		gid_t ngid = nobody->pw_gid;
		p = (struct spawn_params){0};
		CHECK(spawn_resolve_credentials("nobody", NULL, &p, &groups, &error) == 0, "nobody resolves");
		CHECK(p.uid == nuid && p.gid == ngid, "nobody is %u:%u", (unsigned)nuid, (unsigned)ngid);
		CHECK(p.n_groups >= 1 && p.groups[0] == ngid, "nobody's groups start with the primary group");
		free(groups);

		char num[16];
		snprintf(num, sizeof(num), "%u", (unsigned)nuid);
		p = (struct spawn_params){0};
		CHECK(spawn_resolve_credentials(num, "root", &p, &groups, &error) == 0 && p.uid == nuid && p.gid == 0,
		      "numeric uid %s with group root", num);
		free(groups);
	} else
		CHECK(true, "# SKIP no user 'nobody' on this machine");

	p = (struct spawn_params){0};
	error = NULL;
	CHECK(spawn_resolve_credentials("no-such-user-baton", NULL, &p, &groups, &error) == -ESRCH, "unknown user");
	CHECK_STREQ(error, "user 'no-such-user-baton' does not exist", "unknown user message");
	CHECK(!p.set_credentials, "nothing set on failure");
	free(error);

	error = NULL;
	CHECK(spawn_resolve_credentials("root", "no-such-group-baton", &p, &groups, &error) == -ESRCH, "unknown group");
	CHECK_STREQ(error, "group 'no-such-group-baton' does not exist", "unknown group message");
	free(error);

	error = NULL;
	CHECK(spawn_resolve_credentials("4000000000", NULL, &p, &groups, &error) == -ESRCH,
	      "a uid without passwd entry and without group is an error");
	free(error);

	p = (struct spawn_params){0};
	CHECK(spawn_resolve_credentials("4000000000", "4000000001", &p, &groups, &error) == 0 && p.uid == 4000000000u &&
	          p.gid == 4000000001u && p.n_groups == 1 && p.groups[0] == 4000000001u,
	      "numeric uid and gid without entries");
	free(groups);

	struct group *g = getgrnam("nogroup");
	if (!g)
		g = getgrnam("daemon");
	if (g) {
		gid_t gg = g->gr_gid;
		p = (struct spawn_params){0};
		CHECK(spawn_resolve_credentials(NULL, g->gr_name, &p, &groups, &error) == 0 && p.set_credentials &&
		          p.uid == getuid() && p.gid == gg && p.n_groups == 1 && p.groups[0] == gg,
		      "group only: gid set, uid kept, that group alone");
		free(groups);
	}

	p = (struct spawn_params){0};
	groups = (gid_t *)&p;
	CHECK(spawn_resolve_credentials(NULL, NULL, &p, &groups, &error) == 0 && !p.set_credentials && !groups,
	      "neither user nor group: nothing to change");
}

/* Reads a whole small file into buf; returns its length or -1. */
static ssize_t read_file(const char *path, char *buf, size_t size) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		ssize_t k = read(fd, buf + n, size - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The value after "key " on its own line of out, copied into val. */
static bool line_value(const char *out, const char *key, char *val, size_t size) {
	size_t len = strlen(key);
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, len) == 0 && l[len] == ' ') {
			const char *v = l + len + 1, *e = strchrnul(v, '\n');
			snprintf(val, size, "%.*s", (int)(e - v), v);
			return true;
		}
	}
	return false;
}

static int wait_exit(pid_t pid) {
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char layout_script[] =
    /* Everything below writes to the file; `exec >` in the shell itself opens no extra fd. The fd list comes
     * first, before any builtin redirection or command substitution could leave a shell-owned fd around. */
    "exec >\"$1\"\n"
    "echo fds-begin\n"
    "ls /proc/$$/fd\n"
    "echo fds-end\n"
    "echo ino3 $(stat -L -c %i /proc/$$/fd/3)\n"
    "echo ino4 $(stat -L -c %i /proc/$$/fd/4)\n"
    "echo listen_pid $LISTEN_PID\n"
    "echo shell_pid $$\n"
    "echo listen_fds $LISTEN_FDS $LISTEN_FDNAMES\n"
    "echo watchdog ${WATCHDOG_USEC:-unset}\n"
    "echo generation $BATON_GENERATION\n"
    "echo pgid $(cut -d' ' -f5 /proc/$$/stat)\n"
    "echo sigblk $(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/$$/status)\n"
    "echo sigign $(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)\n"
    "echo stdin $(stat -L -c %t:%T /proc/$$/fd/0)\n"
    "echo cwd $(pwd)\n";

static void noop_handler(int sig) {
}

static void test_spawn_layout(void) {
	char dir[] = "/tmp/test-spawn-XXXXXX", out_path[64], buf[4096], val[256];
	struct stat st_a, st_b;
	int pa[2], sb[2];

	CHECK(mkdtemp(dir) != NULL, "temp dir");
	snprintf(out_path, sizeof(out_path), "%s/out", dir);

	/* A pipe's read end on 3 and a socket on 4, passed as [4, 3]: each source sits on the other's target. */
	CHECK(pipe2(pa, O_CLOEXEC) == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sb) == 0, "objects");
	int tmp_a = fcntl(pa[0], F_DUPFD_CLOEXEC, 100), tmp_b = fcntl(sb[0], F_DUPFD_CLOEXEC, 100);
	CHECK(dup3(tmp_a, 3, O_CLOEXEC) == 3 && dup3(tmp_b, 4, O_CLOEXEC) == 4, "objects placed on 3 and 4");
	close(tmp_a);
	close(tmp_b);
	fstat(3, &st_a);
	fstat(4, &st_b);
	/* A stray fd without close-on-exec that the child must not see. */
	int stray = fcntl(pa[1], F_DUPFD, 50);
	CHECK(stray >= 50, "stray fd %d without FD_CLOEXEC", stray);

	/* The supervisor runs with signals blocked and handlers installed; the child must get neither. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct sigaction ign = {.sa_handler = SIG_IGN}, handler = {.sa_handler = noop_handler}, old_pipe, old_usr1;
	sigaction(SIGPIPE, &ign, &old_pipe);
	sigaction(SIGUSR1, &handler, &old_usr1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("LISTEN_PIDFDID", "12345", 1);

	extern char **environ;
	char *names[] = {"sock", "pipe", NULL};
	struct spawn_env_params ep = {
	    .base = environ, .names = names, .n_fds = 2, .notify_socket = "/x", .generation = 5};
	char **envp = NULL;
	CHECK(spawn_build_env(&ep, &envp) == 0, "env for the child");

	char *argv[] = {"sh", "-c", (char *)layout_script, "sh", out_path, NULL};
	int fds[] = {4, 3};
	struct spawn_params sp = {
	    .argv = argv,
	    .envp = envp,
	    .fds = fds,
	    .n_fds = 2,
	    .working_directory = dir,
	    .stdin_fd = -1,
	    .parent_death_signal = SIGTERM,
	};
	/* The test's own stdin may already be /dev/null: make it something else, so /dev/null in the child is news. */
	int in[2], saved_stdin = fcntl(0, F_DUPFD_CLOEXEC, 100);
	CHECK(pipe2(in, O_CLOEXEC) == 0 && dup2(in[0], 0) == 0, "test's stdin is a pipe for now");
	pid_t pid = 0;
	int pidfd = -1;
	char *error = NULL;
	int r = spawn_child(&sp, &pid, &pidfd, &error);
	dup2(saved_stdin, 0);
	close(saved_stdin);
	close(in[0]);
	close(in[1]);
	CHECK(r == 0, "spawn_child succeeds (%s)", strempty(error));
	CHECK(pidfd >= 0 && (fcntl(pidfd, F_GETFD) & FD_CLOEXEC), "a close-on-exec pidfd");
	CHECK(wait_exit(pid) == 0, "child exits 0");
	struct stat st_cwd;
	CHECK(stat(dir, &st_cwd) == 0, "cwd exists");

	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigaction(SIGUSR1, &old_usr1, NULL);
	unsetenv("WATCHDOG_USEC");
	unsetenv("LISTEN_PIDFDID");

	CHECK(read_file(out_path, buf, sizeof(buf)) > 0, "child wrote its report");
	printf("# child's report:\n");
	for (char *l = buf, *nl; *l; l = nl + 1) {
		nl = strchrnul(l, '\n');
		printf("#   %.*s\n", (int)(nl - l), l);
		if (!*nl)
			break;
	}

	/* ls lists the shell's fds one per line, with nothing of the shell's own open at that point. */
	const char *b = strstr(buf, "fds-begin\n"), *e = strstr(buf, "fds-end\n");
	CHECK(b && e && e > b && streq(strndupa(b, (size_t)(e - b)), "fds-begin\n0\n1\n2\n3\n4\n"),
	      "exactly fds 0-4 open");
	snprintf(out_path, sizeof(out_path), "%llu", (unsigned long long)st_b.st_ino);
	CHECK(line_value(buf, "ino3", val, sizeof(val)) && streq(val, out_path), "fd 3 is the socket that was on 4");
	snprintf(out_path, sizeof(out_path), "%llu", (unsigned long long)st_a.st_ino);
	CHECK(line_value(buf, "ino4", val, sizeof(val)) && streq(val, out_path), "fd 4 is the pipe that was on 3");

	char pidbuf[32];
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	CHECK(line_value(buf, "shell_pid", val, sizeof(val)) && streq(val, pidbuf), "the shell is the spawned pid");
	CHECK(line_value(buf, "listen_pid", val, sizeof(val)) && streq(val, pidbuf), "LISTEN_PID is the child's pid");
	CHECK(line_value(buf, "pgid", val, sizeof(val)) && streq(val, pidbuf), "own process group");
	CHECK(line_value(buf, "listen_fds", val, sizeof(val)) && streq(val, "2 sock:pipe"), "LISTEN_FDS and names");
	CHECK(line_value(buf, "watchdog", val, sizeof(val)) && streq(val, "unset"), "WATCHDOG_USEC removed");
	CHECK(line_value(buf, "generation", val, sizeof(val)) && streq(val, "5"), "BATON_GENERATION");
	CHECK(line_value(buf, "sigblk", val, sizeof(val)) && streq(val, "0000000000000000"), "empty signal mask");
	CHECK(line_value(buf, "sigign", val, sizeof(val)) && streq(val, "0000000000000000"), "no ignored signals");
	CHECK(line_value(buf, "stdin", val, sizeof(val)) && streq(val, "1:3"), "stdin is /dev/null (1:3)");
	CHECK(line_value(buf, "cwd", val, sizeof(val)) && streq(val, dir), "working directory");

	if (pidfd >= 0)
		close(pidfd);
	free(envp);
	free(error);
	close(3);
	close(4);
	close(stray);
	close(pa[1]);
	close(sb[1]);
	if (sb[0] > 4) /* not replaced by the placing above */
		close(sb[0]);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	unlink(out_path);
	rmdir(dir);
}

/* A child's fd layout from sources on the given numbers (each a free number here, 0 meaning the test's stdin for the
 * while): a socket is placed on each, the child lists its fds and the inode on each of 3.., which must be the
 * sources' in order. stdout_on >= 0 puts the child's stdout source there too (a file). Covers both ways the child
 * places fds: in place (sources ascending from 3 up, one call each) and through temporaries (any other order). */
static void check_fd_layout(const int *src, int n, int stdout_on, const char *what) {
	char dir[] = "/tmp/test-spawn-XXXXXX", out[64], buf[4096], want[1024];
	unsigned long long ino[8];
	int peer[8], saved_stdin = -1;
	CHECK(n <= 7 && mkdtemp(dir) != NULL, "%s: temp dir", what);
	snprintf(out, sizeof(out), "%s/out", dir);
	/* Each number must be free here: fds a test inherits (meson closes all but 0-2) would spoil the layout, and
	 * are reported. The sockets are made far above first (socketpair() takes the lowest free numbers, which may be sources). */
	bool placed = true;
	int high[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
	for (int i = 0; i < n; i++) {
		int sp[2];
		placed = placed && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0;
		high[i] = fcntl(sp[0], F_DUPFD_CLOEXEC, 200);
		peer[i] = fcntl(sp[1], F_DUPFD_CLOEXEC, 200);
		close(sp[0]);
		close(sp[1]);
	}
	for (int i = 0; i < n; i++) {
		struct stat st = {0};
		if (i && src[i] == src[i - 1]) { /* a source passed twice: placed once */
			ino[i] = ino[i - 1];
			close(high[i]);
			continue;
		}
		if (src[i] == 0)
			saved_stdin = fcntl(0, F_DUPFD_CLOEXEC, 200);
		else if (fcntl(src[i], F_GETFD) >= 0 || errno != EBADF)
			placed = false; /* not free: the layout would not be the one asked for */
		placed = placed && dup3(high[i], src[i], O_CLOEXEC) == src[i] && fstat(src[i], &st) == 0;
		close(high[i]);
		ino[i] = (unsigned long long)st.st_ino;
	}
	int out_fd = -1;
	if (stdout_on >= 0) {
		int f = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		out_fd = dup3(f, stdout_on, O_CLOEXEC);
		close(f);
		placed = placed && out_fd == stdout_on;
	}
	CHECK(placed, "%s: sources placed", what);

	char nbuf[8];
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	/* With stdout_on the child's stdout already is the file: ">>" then appends to it, as the shell's own fd 1. */
	char *argv[] = {"sh",
			"-c",
			"[ -n \"$3\" ] || exec >\"$1\"\n"
			"ls /proc/$$/fd\n"
			"i=3; while [ $i -lt $((3 + $2)) ]; do echo ino $(stat -L -c %i /proc/$$/fd/$i); i=$((i + 1)); done\n",
			"sh",
			out,
			nbuf,
			stdout_on >= 0 ? "keep" : "",
			NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct spawn_params sp = {.argv = argv, .envp = envp, .fds = (int *)src, .n_fds = (size_t)n, .stdin_fd = -1,
				  .stdout_fd = stdout_on};
	pid_t pid = 0;
	int pidfd = -1;
	char *error = NULL;
	int r = spawn_child(&sp, &pid, &pidfd, &error);
	CHECK(r == 0, "%s: spawned (%s)", what, strempty(error));
	CHECK(r == 0 && wait_exit(pid) == 0, "%s: the child exits 0", what);

	/* The shell's fds (ls sorts them as text: one digit each, as n <= 7): 0-2 and the passed ones at 3... */
	int k = snprintf(want, sizeof(want), "0\n1\n2\n");
	for (int i = 0; i < n; i++)
		k += snprintf(want + k, sizeof(want) - (size_t)k, "%d\n", 3 + i);
	for (int i = 0; i < n; i++)
		k += snprintf(want + k, sizeof(want) - (size_t)k, "ino %llu\n", ino[i]);
	CHECK(read_file(out, buf, sizeof(buf)) > 0, "%s: the child wrote its report", what);
	CHECK_STREQ(buf, want, "%s: fds 0-2 and 3.. hold the sources in order, nothing else", what);

	if (pidfd >= 0)
		close(pidfd);
	free(error);
	for (int i = 0; i < n; i++) {
		close(peer[i]);
		if (i && src[i] == src[i - 1])
			continue;
		if (src[i] == 0) {
			dup2(saved_stdin, 0);
			close(saved_stdin);
		} else
			close(src[i]);
	}
	if (out_fd >= 0)
		close(out_fd);
	unlink(out);
	rmdir(dir);
}

static void test_spawn_fd_layouts(void) {
	/* In place: on their targets already (the usual case: baton opens its listeners first, from 3 up), or
	 * ascending above them, with gaps. */
	check_fd_layout((const int[]){3, 4, 5}, 3, -1, "on their targets");
	check_fd_layout((const int[]){3, 6, 8, 9}, 4, -1, "ascending with gaps");
	check_fd_layout((const int[]){40, 41}, 2, -1, "ascending far above");
	/* The child's stdout source on a passed fd's target: stdio is placed before the passed fds. */
	check_fd_layout((const int[]){40, 41}, 2, 4, "stdout's source on a target");
	/* Through temporaries: a source below its target's predecessor, or on 0 (the child's stdin). */
	check_fd_layout((const int[]){5, 3, 4}, 3, -1, "out of order");
	check_fd_layout((const int[]){3, 30, 20}, 3, -1, "descending at the end");
	check_fd_layout((const int[]){0, 6}, 2, -1, "a source on 0");
	check_fd_layout((const int[]){8, 8}, 2, -1, "one source twice");

	/* The error pipe on a target: with 3.. free and the sources above, spawn_child()'s pipe takes 3 and 4; the
	 * child must move it before it places fd 3, or a failed exec would go unreported (the parent would read the
	 * end of a pipe whose write end had been replaced). */
	char *missing[] = {"/nonexistent/baton-test-program", NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	int sp[2], free_from = fcntl(0, F_DUPFD_CLOEXEC, 3);
	close(free_from);
	CHECK(free_from == 3, "fds from 3 up are free here (%d)", free_from);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0 && dup3(sp[0], 20, O_CLOEXEC) == 20 &&
		  dup3(sp[1], 21, O_CLOEXEC) == 21,
	      "sources on 20 and 21");
	close(sp[0]);
	close(sp[1]);
	struct spawn_params p = {.argv = missing, .envp = envp, .fds = (int[]){20, 21}, .n_fds = 2, .stdin_fd = -1,
				 .stdout_fd = -1};
	pid_t pid = 0;
	int pidfd = -1;
	char *error = NULL;
	int r = spawn_child(&p, &pid, &pidfd, &error);
	CHECK(r == -ENOENT, "the error pipe on a target: a failed exec is still reported (%d)", r);
	CHECK_STREQ(error, "exec /nonexistent/baton-test-program: No such file or directory", "with its message");
	free(error);
	close(20);
	close(21);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left");
}

/* One field of /proc/PID/status ("SigBlk"), copied into val. */
static bool proc_status(pid_t pid, const char *field, char *val, size_t size) {
	char path[64], buf[4096], key[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(key, sizeof(key), "\n%s:\t", field);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return false;
	const char *v = strstr(buf, key);
	if (!v)
		return false;
	v += strlen(key);
	snprintf(val, size, "%.*s", (int)(strchrnul(v, '\n') - v), v);
	return true;
}

/* The signal state seen by a program that does not touch it (a shell clears its own mask at startup, hiding a
 * leak): cat, waiting on a stdin pipe that the test holds, inspected from outside through /proc. */
static void test_spawn_signal_state(void) {
	int in[2];
	char val[64], path[64], buf[1024];
	struct stat st_in, st_child;

	CHECK(pipe2(in, O_CLOEXEC) == 0, "stdin pipe");
	fstat(in[0], &st_in);

	sigset_t block, old;
	sigfillset(&block);
	sigprocmask(SIG_BLOCK, &block, &old);
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe, old_hup;
	sigaction(SIGPIPE, &ign, &old_pipe);
	sigaction(SIGHUP, &ign, &old_hup);

	char *env_base[] = {"PATH=/usr/bin:/bin", NULL};
	struct spawn_env_params ep = {.base = env_base, .generation = 1};
	char **envp = NULL;
	CHECK(spawn_build_env(&ep, &envp) == 0, "env");
	char *argv[] = {"cat", NULL};
	struct spawn_params sp = {.argv = argv, .envp = envp, .stdin_fd = in[0]};
	pid_t pid = 0;
	int pidfd = -1;
	char *error = NULL;
	CHECK(spawn_child(&sp, &pid, &pidfd, &error) == 0, "spawn cat (%s)", strempty(error));

	sigprocmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigaction(SIGHUP, &old_hup, NULL);

	/* spawn_child returns after the exec: what /proc shows now is what the program got. */
	CHECK(proc_status(pid, "SigBlk", val, sizeof(val)) && streq(val, "0000000000000000"),
	      "empty signal mask although the supervisor blocked all (got %s)", val);
	CHECK(proc_status(pid, "SigIgn", val, sizeof(val)) && streq(val, "0000000000000000"),
	      "no ignored signals although the supervisor ignored SIGPIPE and SIGHUP (got %s)", val);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int pgrp = -1;
	CHECK(read_file(path, buf, sizeof(buf)) > 0 && sscanf(strrchr(buf, ')'), ") %*c %*d %d", &pgrp) == 1 &&
	          pgrp == pid,
	      "own process group (%d)", pgrp);
	snprintf(path, sizeof(path), "/proc/%d/fd/0", (int)pid);
	CHECK(stat(path, &st_child) == 0 && st_child.st_ino == st_in.st_ino, "stdin_fd is the child's stdin");

	/* EOF on stdin ends cat; the pidfd reports the exit. */
	close(in[1]);
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	CHECK(poll(&pfd, 1, 10000) == 1, "pidfd becomes readable when the child exits");
	CHECK(wait_exit(pid) == 0, "cat exits 0");
	close(pidfd);
	close(in[0]);
	free(envp);
	free(error);
}

/* Runs argv with optional cwd and credentials; returns spawn_child's result and the error message. */
static int spawn_simple(char **argv, const char *path, const char *cwd, struct spawn_params *creds, char **ret_error) {
	char *env_base[] = {(char *)path, NULL};
	struct spawn_env_params ep = {.base = env_base, .generation = 1};
	char **envp = NULL;
	if (spawn_build_env(&ep, &envp) < 0)
		return -ENOMEM;
	struct spawn_params sp = creds ? *creds : (struct spawn_params){0};
	sp.argv = argv;
	sp.envp = envp;
	sp.working_directory = cwd;
	sp.stdin_fd = -1;
	pid_t pid;
	int pidfd;
	*ret_error = NULL;
	int r = spawn_child(&sp, &pid, &pidfd, ret_error);
	if (r == 0) {
		close(pidfd);
		r = wait_exit(pid);
	}
	free(envp);
	return r;
}

static void test_spawn_failures(void) {
	char *error = NULL;
	int r;

	char *missing[] = {"/nonexistent/bin", NULL};
	r = spawn_simple(missing, "PATH=/usr/bin:/bin", NULL, NULL, &error);
	CHECK(r == -ENOENT, "missing binary is -ENOENT (%d)", r);
	CHECK_STREQ(error, "exec /nonexistent/bin: No such file or directory", "missing binary message");
	free(error);

	char *bare[] = {"no-such-program-baton", NULL};
	r = spawn_simple(bare, "PATH=/usr/bin:/bin", NULL, NULL, &error);
	CHECK(r == -ENOENT, "missing program on PATH is -ENOENT");
	CHECK_STREQ(error, "exec no-such-program-baton: No such file or directory", "names the program");
	free(error);

	char *on_path[] = {"true", NULL};
	CHECK(spawn_simple(on_path, "PATH=/usr/bin:/bin", NULL, NULL, &error) == 0,
	      "a program found on the env's PATH runs");
	free(error);
	/* The search uses the child's PATH, not the supervisor's (which has /usr/bin here). */
	r = spawn_simple(on_path, "PATH=/nonexistent", NULL, NULL, &error);
	CHECK(r == -ENOENT, "the PATH searched is the child's environment's (%d)", r);
	CHECK_STREQ(error, "exec true: No such file or directory", "names the program as given");
	free(error);

	char *sh_true[] = {"/bin/sh", "-c", "exit 3", NULL};
	CHECK(spawn_simple(sh_true, "PATH=/usr/bin:/bin", "/nonexistent/dir", NULL, &error) == -ENOENT,
	      "chdir failure is -ENOENT");
	CHECK_STREQ(error, "chdir /nonexistent/dir: No such file or directory", "chdir message");
	free(error);
	CHECK(spawn_simple(sh_true, "PATH=/usr/bin:/bin", "/", NULL, &error) == 3,
	      "a child that exits on its own is not a spawn error");
	free(error);

	char path[] = "/tmp/test-spawn-noexec-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, "#!/bin/sh\nexit 0\n", 17) == 17 && fchmod(fd, 0644) == 0, "non-executable file");
	close(fd);
	char *noexec[] = {path, NULL};
	r = spawn_simple(noexec, "PATH=/usr/bin:/bin", NULL, NULL, &error);
	CHECK(r == -EACCES, "non-executable file is -EACCES (%d)", r);
	char want[128];
	snprintf(want, sizeof(want), "exec %s: Permission denied", path);
	CHECK_STREQ(error, want, "permission message");
	free(error);

	/* A script whose "#!" interpreter is missing: ENOENT, and the message names the interpreter. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "#!  /nonexistent/interp -x\nexit 0\n", 34) == 34 && fchmod(fd, 0755) == 0,
	      "a script with a missing interpreter");
	close(fd);
	r = spawn_simple(noexec, "PATH=/usr/bin:/bin", NULL, NULL, &error);
	snprintf(want, sizeof(want), "exec %s: its interpreter /nonexistent/interp: No such file or directory", path);
	CHECK(r == -ENOENT, "a missing interpreter is -ENOENT (%d)", r);
	CHECK_STREQ(error, want, "the message names the interpreter");
	free(error);
	unlink(path);

	/* No zombie left behind by a failed spawn. */
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "failed children were reaped");
}

static void test_spawn_credentials(void) {
	struct passwd *nobody = getpwnam("nobody");
	if (getuid() != 0 || !nobody) {
		CHECK(true, "# SKIP credentials need root and a 'nobody' user");
		return;
	}
	uid_t nuid = nobody->pw_uid;
	gid_t ngid = nobody->pw_gid;

	struct spawn_params p = {0};
	gid_t *groups = NULL;
	char *error = NULL;
	CHECK(spawn_resolve_credentials("nobody", NULL, &p, &groups, &error) == 0, "resolve nobody");

	/* Give the supervisor a supplementary group the child must not keep. */
	gid_t saved[64], mine[] = {0, 4242};
	int n_saved = getgroups(ARRAY_SIZE(saved), saved);
	CHECK(n_saved >= 0 && setgroups(ARRAY_SIZE(mine), mine) == 0, "test runs with groups 0 and 4242");

	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe");
	char *env_base[] = {"PATH=/usr/bin:/bin", NULL};
	char *names[] = {"out", NULL};
	struct spawn_env_params ep = {.base = env_base, .names = names, .n_fds = 1, .generation = 1};
	char **envp = NULL;
	CHECK(spawn_build_env(&ep, &envp) == 0, "env");
	char *argv[] = {"sh", "-c", "echo $(id -u) $(id -g) $(id -G) >&3", NULL};
	p.argv = argv;
	p.envp = envp;
	p.fds = &pfd[1];
	p.n_fds = 1;
	p.stdin_fd = -1;
	p.parent_death_signal = SIGKILL;
	pid_t pid;
	int pidfd;
	CHECK(spawn_child(&p, &pid, &pidfd, &error) == 0, "spawn as nobody (%s)", strempty(error));
	setgroups((size_t)(n_saved > 0 ? n_saved : 0), saved);
	close(pfd[1]);
	CHECK(wait_exit(pid) == 0, "child as nobody exits 0");
	close(pidfd);
	char buf[256], want[256];
	ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(want, sizeof(want), "%u %u", (unsigned)nuid, (unsigned)ngid);
	CHECK(strncmp(buf, want, strlen(want)) == 0, "runs as %s (got '%s')", want, buf);
	/* id -G lists the supplementary groups: only nobody's own, not the supervisor's. */
	CHECK(!strstr(buf + strlen(want), " 0") && !strstr(buf, "4242"), "the supervisor's groups are dropped");
	close(pfd[0]);
	free(envp);
	free(groups);
}

/* The child gets the RLIMIT_NOFILE it is given, not the supervisor's raised one. */
static void test_spawn_nofile(void) {
	struct rlimit want = {.rlim_cur = 777, .rlim_max = 4096}, mine;
	CHECK(getrlimit(RLIMIT_NOFILE, &mine) == 0, "getrlimit");
	if (want.rlim_max > mine.rlim_max)
		want.rlim_max = mine.rlim_max;
	int pfd[2];
	CHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe");
	char *env_base[] = {"PATH=/usr/bin:/bin", NULL};
	char *names[] = {"out", NULL};
	struct spawn_env_params ep = {.base = env_base, .names = names, .n_fds = 1, .generation = 1};
	char **envp = NULL;
	CHECK(spawn_build_env(&ep, &envp) == 0, "env");
	char *argv[] = {"sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn) >&3", NULL};
	struct spawn_params p = {
		.argv = argv, .envp = envp, .fds = &pfd[1], .n_fds = 1, .stdin_fd = -1, .nofile = &want};
	pid_t pid;
	int pidfd;
	char *error = NULL;
	CHECK(spawn_child(&p, &pid, &pidfd, &error) == 0, "spawn with a nofile limit (%s)", strempty(error));
	close(pfd[1]);
	CHECK(wait_exit(pid) == 0, "child exits 0");
	close(pidfd);
	char buf[128], expect[128];
	ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(expect, sizeof(expect), "777 %lu", (unsigned long)want.rlim_max);
	CHECK_STREQ(buf, expect, "child's RLIMIT_NOFILE is the one given");
	close(pfd[0]);
	free(envp);
}

/* ---- spawn_preload_problem: can LD_PRELOAD work for the program? ---- */

static const char *const STATIC_MSG = "it is statically linked, so nothing loads LD_PRELOAD";
static const char *const STATIC_INTERP_MSG = "its interpreter is statically linked, so nothing loads LD_PRELOAD";
static const char *const SETID_MSG =
	"it is set-user-ID or set-group-ID, and the dynamic linker then ignores LD_PRELOAD";
static const char *const SETID_INTERP_MSG =
	"its interpreter is set-user-ID or set-group-ID, and the dynamic linker then ignores LD_PRELOAD";

/* Writes text to dir/name with mode; returns the malloc'd path. */
static char *write_file(const char *dir, const char *name, const char *text, mode_t mode) {
	char *path = strdup_printf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fchmod(fd, mode) < 0) {
		perror(path);
		exit(EXIT_FAILURE);
	}
	close(fd);
	return path;
}

/* Copies the file at from to dir/name with mode (chmod after the write: the set-ID bits survive). */
static char *copy_file(const char *from, const char *dir, const char *name, mode_t mode) {
	int in = open(from, O_RDONLY | O_CLOEXEC);
	char *path = strdup_printf("%s/%s", dir, name);
	int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	char buf[65536];
	ssize_t n;
	if (in < 0 || out < 0) {
		perror(from);
		exit(EXIT_FAILURE);
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			perror(path);
			exit(EXIT_FAILURE);
		}
	if (fchmod(out, mode) < 0) {
		perror(path);
		exit(EXIT_FAILURE);
	}
	close(in);
	close(out);
	return path;
}

static void problem_is(const char *argv0, const char *path_env, const char *want, const char *what) {
	const char *got = spawn_preload_problem(argv0, path_env);
	if (want)
		CHECK_STREQ(got, want, "preload problem: %s", what);
	else {
		CHECK(got == NULL, "no preload problem: %s", what);
		if (got)
			printf("#   got '%s'\n", got);
	}
}

static void test_preload_problem(void) {
	char dir[] = "/tmp/test-spawn-preload-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
	const char *dynamic = "/bin/true";
	char *paths[16];
	size_t n = 0;

	/* Dynamic programs, and what cannot be judged: NULL. */
	problem_is(dynamic, NULL, NULL, "a dynamic binary");
	problem_is("true", "/nonexistent:/usr/bin:/bin", NULL, "a dynamic binary found on PATH");
	problem_is("true", NULL, NULL, "a dynamic binary on the default PATH");
	problem_is("/nonexistent/app", NULL, NULL, "a missing file (exec reports it)");
	problem_is("no-such-program-baton", "/usr/bin:/bin", NULL, "a program not on PATH");
	char *script = paths[n++] = write_file(dir, "script.sh", "#!/bin/sh\nexit 0\n", 0755);
	problem_is(script, NULL, NULL, "a script whose interpreter is dynamic");
	char *text = paths[n++] = write_file(dir, "text", "hello\n", 0755);
	problem_is(text, NULL, NULL, "a file that is neither ELF nor a script");
	char *tiny = paths[n++] = write_file(dir, "tiny",
					     "\x7f"
					     "ELF",
					     0755);
	problem_is(tiny, NULL, NULL, "a truncated ELF header");
	char *empty_interp = paths[n++] = write_file(dir, "empty-interp", "#!\n", 0755);
	problem_is(empty_interp, NULL, NULL, "a \"#!\" without an interpreter");

	/* Set-user-ID and set-group-ID: the dynamic linker ignores LD_PRELOAD paths with slashes. */
	char *setuid_copy = paths[n++] = copy_file(dynamic, dir, "setuid-true", 04755);
	problem_is(setuid_copy, NULL, SETID_MSG, "a set-user-ID copy of a dynamic binary");
	char *setgid_copy = paths[n++] = copy_file(dynamic, dir, "setgid-true", 02755);
	problem_is(setgid_copy, NULL, SETID_MSG, "a set-group-ID copy");
	problem_is("setuid-true", dir, SETID_MSG, "a set-user-ID program found on PATH");
	char *line = strdup_printf("#!%s -x\n", setuid_copy);
	char *setuid_script = paths[n++] = write_file(dir, "setuid-interp.sh", line, 0755);
	free(line);
	problem_is(setuid_script, NULL, SETID_INTERP_MSG, "a script whose interpreter is set-user-ID");

	const char *static_program = getenv("STATIC_PROGRAM");
	if (!static_program || !*static_program) {
		/* Said in the output, as STYLE.md asks: tests/meson.build builds it only with a static libc. */
		test_count++;
		printf("ok %d - # SKIP statically linked cases: no STATIC_PROGRAM (no static libc: install "
		       "libc6-dev)\n",
		       test_count);
	} else {
		problem_is(static_program, NULL, STATIC_MSG, "a statically linked binary");
		char *copy = paths[n++] = copy_file(static_program, dir, "static-copy", 0755);
		problem_is("static-copy", "/nonexistent::/bin", NULL, "a static binary not on PATH is not looked at");
		char *path_env = strdup_printf("/nonexistent:%s", dir);
		problem_is("static-copy", path_env, STATIC_MSG, "a static binary found on PATH");
		free(path_env);
		line = strdup_printf("#!%s\n", copy);
		char *s1 = paths[n++] = write_file(dir, "static-interp.sh", line, 0755);
		free(line);
		problem_is(s1, NULL, STATIC_INTERP_MSG, "a script whose interpreter is static");
		line = strdup_printf("#!  \t%s --flag arg\necho\n", copy);
		char *s2 = paths[n++] = write_file(dir, "static-interp-args.sh", line, 0755);
		free(line);
		problem_is(s2, NULL, STATIC_INTERP_MSG, "\"#!  \\tSTATIC --flag arg\": blanks and arguments");
		problem_is("static-interp.sh", dir, STATIC_INTERP_MSG, "a script on PATH whose interpreter is static");
		/* Set-ID and static both: the set-ID reason comes first. */
		char *both = paths[n++] = copy_file(static_program, dir, "static-setuid", 04755);
		problem_is(both, NULL, SETID_MSG, "a set-user-ID static binary");
		/* Only one level of "#!": a script run by a script is not followed further (the kernel would not
		 * either: Linux runs no script as an interpreter). */
		line = strdup_printf("#!%s\n", s1);
		char *nested = paths[n++] = write_file(dir, "nested.sh", line, 0755);
		free(line);
		problem_is(nested, NULL, NULL, "a script whose interpreter is a script");
	}

	for (size_t i = 0; i < n; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	rmdir(dir);
}

/* Whether the clone shares the test's memory (spawn.c: x86-64, not the sanitizer build, which forks). */
#if defined(__SANITIZE_ADDRESS__)
#define CLONE_SHARES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLONE_SHARES 0
#endif
#endif
#if !defined(CLONE_SHARES) && defined(__x86_64__)
#define CLONE_SHARES 1
#endif
#ifndef CLONE_SHARES
#define CLONE_SHARES 0
#endif

static long minor_faults(void) {
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : -1;
}

/* A child spawned into a cgroup of the test's own (a reload's child: cgroup_at_clone false) is born there, and where
 * the clone can share baton's memory it does: baton's pages are not copied, so writing 64 of them after the spawn
 * faults none (a fork makes each one fault, copy-on-write). Needs a cgroup2 hierarchy the test may write. */
static void test_spawn_into_cgroup(void) {
	struct statfs sfs;
	const char *root = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */
				   ? "/sys/fs/cgroup"
				   : "/sys/fs/cgroup/unified";
	char self[512] = "", own[1024], leaf[64], procs[80];
	FILE *f = fopen("/proc/self/cgroup", "re");
	for (char line[600]; f && fgets(line, sizeof(line), f);)
		if (!strncmp(line, "0::", 3))
			snprintf(self, sizeof(self), "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
	if (f)
		fclose(f);
	snprintf(own, sizeof(own), "%s%s", root, self);
	snprintf(leaf, sizeof(leaf), "test-spawn-%d", (int)getpid());
	int dir = open(own, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || mkdirat(dir, leaf, 0755) < 0) {
		CHECK(true, "spawn into a cgroup # SKIP cannot create %s/%s: %s", own, leaf, strerror(errno));
		if (dir >= 0)
			close(dir);
		return;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", leaf);

	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 64;
	char *pages = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(pages != MAP_FAILED, "64 pages of the test's");
	(void)madvise(pages, n * page, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < n; i++)
		pages[i * page] = 1;

	char *argv[] = {"sleep", "30", NULL}, *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct spawn_params sp = {.argv = argv,
				  .envp = envp,
				  .stdin_fd = -1,
				  .stdout_fd = -1,
				  .stderr_fd = -1,
				  .cgroup_dir_fd = dir,
				  .cgroup_procs = procs};
	pid_t pid = 0;
	int pidfd = -1;
	char *error = NULL;
	long before = minor_faults();
	int r = spawn_child(&sp, &pid, &pidfd, &error);
	for (size_t i = 0; i < n; i++)
		pages[i * page]++;
	long faults = minor_faults() - before;
	CHECK(r == 0, "spawned into %s (%s)", leaf, strempty(error));

	char path[64], cg[600] = "";
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	char *v2 = r == 0 && read_file(path, cg, sizeof(cg)) > 0 ? strstr(cg, "0::") : NULL;
	if (v2)
		v2[strcspn(v2, "\n")] = '\0';
	CHECK(v2 && strstr(v2, leaf), "the child is in %s: %s", leaf, v2 ? v2 : "(no cgroup2 line)");
	if (CLONE_SHARES)
		CHECK(faults < 32, "the clone shared the test's memory: %ld faults after it", faults);
	else
		CHECK(faults >= 64, "this build forks: %ld faults after it, copy-on-write", faults);

	if (r == 0) {
		kill(pid, SIGKILL);
		wait_exit(pid);
		close(pidfd);
	}
	free(error);
	munmap(pages, n * page);
	CHECK(unlinkat(dir, leaf, AT_REMOVEDIR) == 0, "the test's cgroup removed");
	close(dir);
}

int main(void) {
	test_spawn_nofile();
	test_env();
	test_argv();
	test_credentials();
	test_spawn_layout();
	test_spawn_fd_layouts();
	test_spawn_signal_state();
	test_spawn_failures();
	test_spawn_credentials();
	test_preload_problem();
	test_spawn_into_cgroup();
	return test_done();
}
