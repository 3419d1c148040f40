/* A generation's keeper (keeper.h). */
#include "keeper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"
#include "version.h"

/* What the keeper sends first: the spawn's outcome (the program's pidfd rides along as SCM_RIGHTS). */
struct keeper_hello {
	int32_t result; /* 0 or negative errno */
	int32_t pid;
	char why[256]; /* spawn_child()'s message on failure */
};

/* Then one of these for each wait status of one of its children. */
struct keeper_report {
	int32_t pid;
	int32_t status;
};

/* Deeper than this, or more processes than this, a walk stops (a fork bomb is not baton's to enumerate whole). */
#define KEEPER_DEPTH_MAX 4096
#define KEEPER_PROCS_MAX 65536

/* ---- the keeper process ---- */

static void send_hello(int sock, int result, pid_t pid, const char *why, int pidfd) {
	struct keeper_hello h = {.result = result, .pid = pid};
	if (why)
		snprintf(h.why, sizeof(h.why), "%s", why);
	struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (pidfd >= 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pidfd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* Everything of baton's but the socket is closed (listeners, control clients, the notify socket: a keeper lives as
 * long as its generation and must hold none of them open), and 0-2 point at /dev/null. */
static void keep_only(int sock) {
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3; fd++)
		if (null >= 0 && fd != null)
			(void)dup2(null, fd);
	if (sock > 3)
		(void)syscall(SYS_close_range, 3U, (unsigned)sock - 1, 0U);
	(void)syscall(SYS_close_range, (unsigned)sock + 1, ~0U, 0U);
}

/* The keeper's work once its program runs: reap every child, report each wait status, exit when none is left. */
static _Noreturn void keeper_loop(int sock) {
	keep_only(sock);
	/* Signals stay blocked, as baton's (SIGKILL aside): the keeper only waits, and exits when no child is left. */
	for (;;) {
		int status;
		pid_t c = waitpid(-1, &status, WUNTRACED | WCONTINUED | __WALL);
		if (c < 0 && errno == EINTR)
			continue;
		if (c < 0)
			break;
		struct keeper_report rep = {.pid = c, .status = status};
		while (send(sock, &rep, sizeof(rep), MSG_NOSIGNAL) < 0 && errno == EINTR)
			;
	}
	_exit(0);
}

/* The keeper's image after the exec (keeper_exec_entry()): argv[0] and one variable, "SOCK PID PIDFD BATON". */
#define KEEPER_ARGV0 "baton-keeper"
#define KEEPER_ENV "BATON_KEEPER"

/* In a keeper that shares baton's memory (keeper_start()), once its program runs: the keeper becomes a process of its
 * own, baton's binary again, which says hello from there (keeper_exec_entry()). Returns only on failure, -errno. */
static int keeper_exec(int sock, pid_t pid, int pidfd, pid_t baton) {
	char env[96];
	snprintf(env, sizeof(env), KEEPER_ENV "=%d %d %d %d", sock, (int)pid, pidfd, (int)baton);
	char *argv[] = {(char *)KEEPER_ARGV0, NULL}, *envp[] = {env, NULL};
	/* This process's own copies of the fds (no CLONE_FILES): baton's stay close-on-exec. */
	if (fcntl(sock, F_SETFD, 0) < 0 || (pidfd >= 0 && fcntl(pidfd, F_SETFD, 0) < 0))
		return -errno;
	execve(baton_keeper_exe, argv, envp);
	return -errno;
}

static _Noreturn void keeper_main(const struct spawn_params *p, int sock, pid_t baton, bool exec) {
	/* Every orphan of the generation comes here; baton's death (not its exec: `baton upgrade`) ends the keeper,
	 * and the program then gets its parent-death signal, as it would have from baton. Both survive the keeper's
	 * own exec. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != baton) {
		send_hello(sock, -errno ? -errno : -ESRCH, 0, "keeper: prctl", -1);
		_exit(1);
	}
	(void)prctl(PR_SET_NAME, KEEPER_ARGV0);
	pid_t pid = 0;
	int pidfd = -1;
	char *why = NULL;
	int r = spawn_child(p, &pid, &pidfd, &why);
	if (r >= 0 && exec) {
		r = keeper_exec(sock, pid, pidfd, baton);
		/* Nothing to keep the program with: it goes, and baton hears why as a failed start. */
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
			;
		if (pidfd >= 0)
			close(pidfd);
		char buf[128];
		snprintf(buf, sizeof(buf), "keeper: exec %s: %s", baton_keeper_exe, strerror(-r));
		send_hello(sock, r, 0, buf, -1);
		_exit(1);
	}
	send_hello(sock, r, pid, why, pidfd);
	/* In baton's memory (exec), what spawn_child() allocated is baton's to give back. */
	free(why);
	if (r < 0)
		_exit(0);
	if (pidfd >= 0)
		close(pidfd);
	keeper_loop(sock);
}

/* Whether this process is a keeper just exec'd by keeper_exec(): its argv[0], its variable, and what the variable
 * names must all be so. */
static bool keeper_image(char **argv, int *ret_sock, pid_t *ret_pid, int *ret_pidfd) {
	const char *e = getenv(KEEPER_ENV);
	int sock, pid, pidfd, baton, end = 0, type = 0, subreaper = 0;
	socklen_t len = sizeof(type);
	if (!e || !argv[0] || !streq(argv[0], KEEPER_ARGV0) ||
	    sscanf(e, "%d %d %d %d%n", &sock, &pid, &pidfd, &baton, &end) != 4 || e[end] || sock < 3 || pid <= 0 ||
	    getppid() != baton || prctl(PR_GET_CHILD_SUBREAPER, &subreaper) < 0 || !subreaper ||
	    getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
		return false;
	*ret_sock = sock;
	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return true;
}

void keeper_exec_entry(char **argv) {
	int sock, pidfd;
	pid_t pid;
	bool keeper = keeper_image(argv, &sock, &pid, &pidfd);
	(void)unsetenv(KEEPER_ENV);
	if (!keeper)
		return;
	(void)prctl(PR_SET_NAME, KEEPER_ARGV0);
	send_hello(sock, 0, pid, NULL, pidfd);
	if (pidfd >= 0)
		close(pidfd);
	keeper_loop(sock);
}

/* ---- baton's side ---- */

static int read_hello(int fd, struct keeper_hello *h, int *ret_pidfd) {
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = h, .iov_len = sizeof(*h)};
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
	ssize_t n;
	while ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	*ret_pidfd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(ret_pidfd, CMSG_DATA(cm), sizeof(int));
	if ((size_t)n != sizeof(*h)) {
		if (*ret_pidfd >= 0)
			close(*ret_pidfd);
		return -EPIPE;
	}
	h->why[sizeof(h->why) - 1] = '\0';
	return 0;
}

struct keeper_args {
	const struct spawn_params *p;
	int sock;
	pid_t baton;
};

/* The keeper made by spawn_clone_vm(): in baton's memory until keeper_main() execs. */
static int keeper_clone_main(void *arg) {
	const struct keeper_args *a = arg;
	keeper_main(a->p, a->sock, a->baton, true);
}

int keeper_start(const struct spawn_params *p, pid_t *ret_keeper, int *ret_fd, pid_t *ret_pid, int *ret_pidfd,
		 char **ret_error) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail_error(ret_error, -errno, "keeper: socketpair: %s", strerror(errno));
	_cleanup_close_ int fd = sv[0];
	pid_t baton = getpid();
	/* A fork shares baton's pages: the small case's keeper costs almost nothing of its own. But it makes every
	 * page of baton's copy-on-write, and baton then pays a page fault for each page it writes after the fork; with
	 * many listeners (a large config, a large heap) that is most of a reload, and the keeper keeps the old copies
	 * for its generation's life (bench/README.md, issue 23). There the keeper is made as spawn.c makes a child and
	 * becomes a fresh process of baton's binary. */
	pid_t keeper;
	bool exec = p->n_fds >= KEEPER_EXEC_FDS;
	if (exec) {
		struct keeper_args a = {.p = p, .sock = sv[1], .baton = baton};
		keeper = spawn_clone_vm(keeper_clone_main, &a);
	} else if ((keeper = fork()) == 0) {
		close(sv[0]);
		keeper_main(p, sv[1], baton, false);
	} else if (keeper < 0)
		keeper = -errno;
	close(sv[1]);
	if (keeper < 0)
		return fail_error(ret_error, keeper, "%s: %s", exec ? "clone" : "fork", strerror(-keeper));

	/* The keeper's spawn is synchronous (spawn_child() waits for the exec): so is this. */
	struct keeper_hello h;
	int pidfd = -1;
	int r = read_hello(fd, &h, &pidfd);
	if (r < 0) {
		(void)kill(keeper, SIGKILL);
		return fail_error(ret_error, r, "keeper (pid %d) did not report its spawn: %s", (int)keeper,
				  strerror(-r));
	}
	if (h.result < 0) {
		*ret_error = strdup(h.why[0] ? h.why : strerror(-h.result));
		return h.result;
	}
	r = fd_nonblock(fd, true);
	if (r < 0) {
		(void)kill(keeper, SIGKILL);
		if (pidfd >= 0)
			close(pidfd);
		return fail_error(ret_error, r, "keeper: %s", strerror(-r));
	}
	*ret_keeper = keeper;
	*ret_fd = TAKE_FD(fd);
	*ret_pid = h.pid;
	*ret_pidfd = pidfd;
	return 0;
}

int keeper_read(int fd, pid_t *ret_pid, int *ret_status) {
	struct keeper_report rep;
	ssize_t n = recv(fd, &rep, sizeof(rep), MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n != sizeof(rep))
		return -EBADMSG;
	*ret_pid = rep.pid;
	*ret_status = rep.status;
	return 1;
}

/* ---- the keeper's subtree ---- */

struct node {
	pid_t pid, parent;
};

struct tree {
	struct node *v;
	size_t n, cap;
};

static int tree_add(struct tree *t, pid_t pid, pid_t parent) {
	if (t->n >= KEEPER_PROCS_MAX)
		return -E2BIG;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct node *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = (struct node){pid, parent};
	return 0;
}

/* Appends the children of every thread of pid (/proc/PID/task/TID/children, written by the kernel). */
static int add_children(struct tree *t, pid_t pid) {
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0; /* gone: its children were re-parented, and a later walk finds them */
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char file[320];
		snprintf(file, sizeof(file), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		int fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Space-separated pids; read in chunks, a number cut at a chunk's end carried over. */
		char buf[4096];
		uint64_t v = 0;
		bool in_number = false;
		ssize_t n;
		while (r >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n && r >= 0; i++) {
				if (buf[i] >= '0' && buf[i] <= '9') {
					v = v * 10 + (uint64_t)(buf[i] - '0');
					in_number = v <= INT32_MAX;
				} else {
					if (in_number)
						r = tree_add(t, (pid_t)v, pid);
					v = 0;
					in_number = false;
				}
			}
		if (in_number && r >= 0)
			r = tree_add(t, (pid_t)v, pid);
		close(fd);
	}
	closedir(d);
	return r;
}

/* Every descendant of keeper, parents before their children. */
static void walk(pid_t keeper, struct tree *t) {
	t->n = 0;
	if (keeper <= 0 || add_children(t, keeper) < 0)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (add_children(t, t->v[i].pid) < 0)
			return;
}

int keeper_count(pid_t keeper) {
	struct tree t = {0};
	walk(keeper, &t);
	free(t.v);
	return (int)t.n;
}

bool keeper_has(pid_t keeper, pid_t pid) {
	pid_t self = getpid();
	if (pid == keeper)
		return keeper > 0;
	for (int depth = 0; depth < KEEPER_DEPTH_MAX && pid > 1 && pid != self; depth++) {
		pid = proc_parent_of(pid);
		if (pid == keeper)
			return keeper > 0;
	}
	return false;
}

/* sig to pid, if it is still parent's child: the pidfd pins the process that was checked. */
static bool signal_checked(pid_t pid, pid_t parent, int sig) {
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno != ENOSYS)
		return false;
	bool ok = proc_parent_of(pid) == parent;
	if (ok)
		ok = (pidfd >= 0 ? syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) : kill(pid, sig)) == 0;
	if (pidfd >= 0)
		close(pidfd);
	return ok;
}

void keeper_signal(pid_t keeper, int sig) {
	struct tree t = {0};
	walk(keeper, &t);
	for (size_t i = 0; i < t.n; i++)
		(void)signal_checked(t.v[i].pid, t.v[i].parent, sig);
	free(t.v);
}

static bool contains(const pid_t *v, size_t n, pid_t pid) {
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return true;
	return false;
}

void keeper_kill(pid_t keeper) {
	struct tree t = {0};
	pid_t *killed = NULL;
	size_t n_killed = 0;
	for (int round = 0; round < 64; round++) {
		walk(keeper, &t);
		size_t fresh = 0;
		/* Children before their parents: a parent killed first would re-parent them between walk and kill. */
		for (size_t i = t.n; i-- > 0;) {
			if (contains(killed, n_killed, t.v[i].pid) ||
			    !signal_checked(t.v[i].pid, t.v[i].parent, SIGKILL))
				continue;
			pid_t *k = realloc(killed, (n_killed + 1) * sizeof(*k));
			if (!k)
				break;
			killed = k;
			killed[n_killed++] = t.v[i].pid;
			fresh++;
		}
		if (fresh == 0)
			break;
	}
	free(killed);
	free(t.v);
}
