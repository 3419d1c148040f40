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

static _Noreturn void keeper_main(const struct spawn_params *p, int sock, pid_t baton) {
	/* Every orphan of the generation comes here; baton's death (not its exec: `baton upgrade`) ends the keeper,
	 * and the program then gets its parent-death signal, as it would have from baton. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != baton) {
		send_hello(sock, -errno ? -errno : -ESRCH, 0, "keeper: prctl", -1);
		_exit(1);
	}
	(void)prctl(PR_SET_NAME, "baton-keeper");
	pid_t pid = 0;
	int pidfd = -1;
	char *why = NULL;
	int r = spawn_child(p, &pid, &pidfd, &why);
	send_hello(sock, r, pid, why, pidfd);
	if (r < 0)
		_exit(0);
	if (pidfd >= 0)
		close(pidfd);
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

int keeper_start(const struct spawn_params *p, pid_t *ret_keeper, int *ret_fd, pid_t *ret_pid, int *ret_pidfd,
		 char **ret_error) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail_error(ret_error, -errno, "keeper: socketpair: %s", strerror(errno));
	_cleanup_close_ int fd = sv[0];
	pid_t baton = getpid();
	pid_t keeper = fork();
	if (keeper < 0) {
		close(sv[1]);
		return fail_error(ret_error, -errno, "fork: %s", strerror(errno));
	}
	if (keeper == 0) {
		close(sv[0]);
		keeper_main(p, sv[1], baton);
	}
	close(sv[1]);

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
