/* Starting a child the way systemd would (spawn.h has the contract; baton(1) WHAT THE PROGRAM GETS the user-visible
 * promise): clone(CLONE_VM | CLONE_VFORK) as posix_spawn(3) does, a clean signal state and process group, the fds
 * at 3.., credentials, exec, and an exec failure reported back to the parent. Does not log: failures are messages
 * for the caller. */
#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <linux/sched.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "creds.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h, Linux ≥ 5.11 */
#endif

/* ---- credentials ---- */

int spawn_resolve_credentials(const char *user, const char *group, struct spawn_params *p, gid_t **ret_groups,
			      char **ret_error) {
	struct creds c;

	if (!user && !group) {
		*ret_groups = NULL;
		return 0;
	}
	int r = creds_resolve(user, group, &c, ret_error);
	if (r < 0)
		return r;
	p->set_credentials = true;
	p->uid = c.uid;
	p->gid = c.gid;
	p->groups = c.groups;
	p->n_groups = c.n_groups;
	*ret_groups = c.groups;
	return 0;
}

/* ---- fork and exec ---- */

/* A sanity bound: the temporaries the child needs are allocated by the parent before fork. */
#define SPAWN_FDS_MAX 65536

enum spawn_step {
	STEP_SETPGID,
	STEP_SIGNALS,
	STEP_STDIN,
	STEP_STDOUT,
	STEP_FDS,
	STEP_CLOSE,
	STEP_RLIMIT,
	STEP_CHDIR,
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_PDEATHSIG,
	STEP_EXEC,
	STEP_CGROUP,
	_STEP_MAX,
};

/* What the child writes into the error pipe: well under PIPE_BUF, so the write is atomic. */
struct spawn_failure {
	int step;
	int err;
};

__attribute__((noreturn)) static void child_fail(int err_fd, int step) {
	struct spawn_failure f = {.step = step, .err = errno};
	/* Nothing to do if this fails: the parent then sees EOF and a child that exits 127. */
	if (write(err_fd, &f, sizeof(f)) < 0) {
	}
	_exit(127);
}

/* Marks every fd from `from` up close-on-exec rather than closing it, so that err_fd stays usable until exec. */
static int cloexec_from(int from) {
	if (syscall(SYS_close_range, (unsigned)from, ~0U, CLOSE_RANGE_CLOEXEC) >= 0)
		return 0;
	/* ENOSYS before Linux 5.9, EINVAL for the flag before 5.11. /proc/self/fd would need opendir(), which
	 * allocates: walk the fd numbers up to the limit instead. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	int max = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX ? 1 << 20 : (int)rl.rlim_cur;
	for (int fd = from; fd < max; fd++)
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF)
			return -1;
	return 0;
}

/* execvpe() without its fallback: on ENOEXEC glibc runs the file with /bin/sh, so a file that is no program at all
 * would have its lines run as shell commands. Here ENOEXEC is an error like any other. A name without '/' is searched
 * in envp's PATH (program.environment's, if it sets one). Async-signal-safe; returns only on failure, with errno
 * set. */
static void exec_search(char *const *argv, char *const *envp) {
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return;
	}
	/* strv_env_get() only compares and scans: safe after fork. */
	const char *path = strv_env_get(envp, "PATH");
	if (!path)
		path = "/bin:/usr/bin";
	size_t flen = strlen(file);
	bool denied = false;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		char buf[PATH_MAX];
		if (dlen + 1 + flen < sizeof(buf)) {
			/* An empty entry is the current directory, as for execvp(3). */
			memcpy(buf, dlen ? p : ".", dlen ? dlen : 1);
			size_t m = dlen ? dlen : 1;
			buf[m] = '/';
			memcpy(buf + m + 1, file, flen + 1);
			execve(buf, argv, envp);
			if (errno == EACCES)
				denied = true;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
				 errno != ETIMEDOUT)
				return; /* found, but it cannot run: say why */
		}
		if (!*end)
			break;
		p = end;
	}
	errno = denied ? EACCES : ENOENT;
}

/* The lowest fd number above every one the layout reads from or writes to: the passed fds' targets (3..) and
 * sources, the error pipe, and stdin's, stdout's and stderr's sources. */
static int child_fds_base(const struct spawn_params *p, int err_fd) {
	int n = (int)p->n_fds;
	int base = 3 + n;
	for (int i = 0; i < n; i++)
		if (p->fds[i] >= base)
			base = p->fds[i] + 1;
	if (err_fd >= base)
		base = err_fd + 1;
	if (p->stdin_fd >= base)
		base = p->stdin_fd + 1;
	if (p->stdout_fd >= base)
		base = p->stdout_fd + 1;
	if (p->stderr_fd >= base)
		base = p->stderr_fd + 1;
	return base;
}

/* The child's stdin: the fd given, or /dev/null. Async-signal-safe. */
static void child_place_stdin(const struct spawn_params *p, int err_fd) {
	if (p->stdin_fd >= 0) {
		if (p->stdin_fd == 0) {
			/* dup2(fd, fd) does nothing, not even clear FD_CLOEXEC. */
			if (fcntl(0, F_SETFD, 0) < 0)
				child_fail(err_fd, STEP_STDIN);
		} else if (dup2(p->stdin_fd, 0) < 0)
			child_fail(err_fd, STEP_STDIN);
		return;
	}
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0)
		child_fail(err_fd, STEP_STDIN);
	if (null == 0) {
		if (fcntl(0, F_SETFD, 0) < 0)
			child_fail(err_fd, STEP_STDIN);
	} else {
		if (dup2(null, 0) < 0)
			child_fail(err_fd, STEP_STDIN);
		close(null);
	}
}

/* Whether the passed fds can go to 3.. in place, each with one call and no temporary: their sources ascend and the
 * first is 3 or above. Then source i is 3 + i or above, and placing them in order writes only on numbers no later
 * source sits on (a later source is above the earlier one, and so above its target). Decided by the parent, which
 * then gives the child no temporaries. */
static bool fds_in_place(const struct spawn_params *p) {
	for (size_t i = 0; i < p->n_fds; i++)
		if (p->fds[i] < (i ? p->fds[i - 1] + 1 : 3))
			return false;
	return true;
}

/* Passed fd `from` to number `to`, inheritable. Async-signal-safe. */
static int child_place_fd(int from, int to) {
	/* dup2(fd, fd) does nothing, not even clear FD_CLOEXEC; dup2() onto another number gives a descriptor
	 * without it: what the child must inherit. */
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

/* The child's stdin, stdout and stderr. Async-signal-safe. */
static void child_place_stdio(const struct spawn_params *p, int err_fd) {
	child_place_stdin(p, err_fd);
	/* Output pipes (readiness.type log) are set up by the parent far above 2, so dup2 cannot clobber a passed
	 * fd's source or temporary. */
	if (p->stdout_fd >= 0 && dup2(p->stdout_fd, 1) < 0)
		child_fail(err_fd, STEP_STDOUT);
	if (p->stderr_fd >= 0 && dup2(p->stderr_fd, 2) < 0)
		child_fail(err_fd, STEP_STDOUT);
}

/* The child's fd layout: the passed fds at 3.., stdin, stdout and stderr, everything else close-on-exec. temps:
 * room for the passed fds' temporaries, or NULL when they go in place (fds_in_place()). Returns err_fd, moved out of
 * the way. Async-signal-safe: runs between fork and exec. */
static int child_place_fds(const struct spawn_params *p, int err_fd, int *temps) {
	int n = (int)p->n_fds;

	if (!temps) {
		/* The usual case (the listeners were opened in order, above stdio): one call per fd, not three. Only
		 * the error pipe may sit on a target or on 0..2; stdio goes first, its sources are then free. */
		if (err_fd < 3 + n) {
			int moved = fcntl(err_fd, F_DUPFD_CLOEXEC, child_fds_base(p, err_fd));
			if (moved < 0)
				child_fail(err_fd, STEP_FDS);
			err_fd = moved;
		}
		child_place_stdio(p, err_fd);
		for (int i = 0; i < n; i++)
			if (child_place_fd(p->fds[i], 3 + i) < 0)
				child_fail(err_fd, STEP_FDS);
	} else {
		/* A source can sit on another's target number, or on 0..2, and so can the error pipe: first move
		 * everything above all of them, then place each copy. */
		int base = child_fds_base(p, err_fd);
		int moved = fcntl(err_fd, F_DUPFD_CLOEXEC, base);
		if (moved < 0)
			child_fail(err_fd, STEP_FDS);
		err_fd = moved;
		for (int i = 0; i < n; i++) {
			temps[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, base);
			if (temps[i] < 0)
				child_fail(err_fd, STEP_FDS);
		}
		/* stdio after the temporaries, so that a passed fd sitting on 0..2 is already safe. */
		child_place_stdio(p, err_fd);
		for (int i = 0; i < n; i++) {
			/* The temporaries are above base, so never on their targets: dup2() and close. */
			if (dup2(temps[i], 3 + i) < 0)
				child_fail(err_fd, STEP_FDS);
			close(temps[i]);
		}
	}

	if (cloexec_from(3 + n) < 0)
		child_fail(err_fd, STEP_CLOSE);
	return err_fd;
}

/* Every signal back to its default action and unblocked, as a program expects to start. Async-signal-safe. */
static void child_reset_signals(int err_fd) {
	/* Dispositions first, while the supervisor's mask still blocks everything: an unblocked signal must never
	 * reach one of the supervisor's handlers in here. SIG_IGN survives exec, so this is not only tidiness. */
	struct sigaction sa = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* glibc keeps 32 and 33 for itself and answers EINVAL: expected, and nothing to reset there. */
		(void)sigaction(sig, &sa, NULL);
	}
	sigset_t empty;
	sigemptyset(&empty);
	if (sigprocmask(SIG_SETMASK, &empty, NULL) < 0)
		child_fail(err_fd, STEP_SIGNALS);
}

/* user= and group=: the groups, the gid, then the uid. Async-signal-safe. */
static void child_set_credentials(const struct spawn_params *p, int err_fd) {
	/* Groups first: after setuid() to a non-root user, setgroups() and setgid() are no longer allowed. */
	if (setgroups(p->n_groups, p->groups) < 0)
		child_fail(err_fd, STEP_SETGROUPS);
	if (setgid(p->gid) < 0)
		child_fail(err_fd, STEP_SETGID);
	if (setuid(p->uid) < 0)
		child_fail(err_fd, STEP_SETUID);
}

/* The forked child. Between fork and exec only async-signal-safe calls: the parent may hold locks (malloc, stdio,
 * NSS) in a state the child must never touch. */
/* temps: room for n_fds ints, allocated by the parent (no malloc after fork), or NULL (child_place_fds()). */
__attribute__((noreturn)) static void child_exec(const struct spawn_params *p, int err_read, int err_fd,
						 pid_t parent_pid, int *temps, bool in_cgroup) {
	close(err_read);

	if (setpgid(0, 0) < 0)
		child_fail(err_fd, STEP_SETPGID);
	/* Into its cgroup first, before it runs anything of the program: whatever it forks from now on is born
	 * there. "0" is the writer itself (cgroup v2). */
	if (p->cgroup_procs && !in_cgroup) {
		int fd = openat(p->cgroup_dir_fd, p->cgroup_procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) < 0)
			child_fail(err_fd, STEP_CGROUP);
		close(fd);
	}
	/* While the supervisor's mask still blocks SIGTTOU: a background group may take the foreground then
	 * (tcsetpgrp(3)), and fd 0 is still baton's terminal here. */
	if (p->take_terminal)
		(void)tcsetpgrp(0, getpid());

	child_reset_signals(err_fd);

	spawn_set_listen_pid(p->envp, getpid());

	err_fd = child_place_fds(p, err_fd, temps);

	/* After the fds are in place: the temporaries may lie above the child's own (lower) limit. */
	if (p->nofile && setrlimit(RLIMIT_NOFILE, p->nofile) < 0)
		child_fail(err_fd, STEP_RLIMIT);

	if (p->working_directory && chdir(p->working_directory) < 0)
		child_fail(err_fd, STEP_CHDIR);

	if (p->set_credentials)
		child_set_credentials(p, err_fd);

	if (p->parent_death_signal > 0) {
		/* After the credential change: a change of effective uid or gid clears the parent-death signal
		 * (prctl(2)), so setting it earlier would be silently lost for a user= child. */
		if (prctl(PR_SET_PDEATHSIG, (unsigned long)p->parent_death_signal) < 0)
			child_fail(err_fd, STEP_PDEATHSIG);
		/* The parent may have died before the prctl: then the signal will never come. */
		if (getppid() != parent_pid)
			_exit(127);
	}

	exec_search(p->argv, p->envp);
	child_fail(err_fd, STEP_EXEC);
}

/* The child's stack (clone(2) needs one; it grows down on every architecture baton runs on): child_exec() and
 * exec_search()'s PATH_MAX buffers with room to spare, or a keeper's spawn_child() with its own child's stack (it is
 * mapped apart). Touched pages only, and unmapped once the child has exec'd. */
#define CHILD_STACK_SIZE (256 * 1024)

struct child_args {
	const struct spawn_params *p;
	int err_read, err_fd;
	pid_t parent;
	int *temps;
	bool in_cgroup; /* born in its cgroup (clone3(CLONE_INTO_CGROUP)) */
};

static int child_main(void *arg) {
	const struct child_args *a = arg;
	child_exec(a->p, a->err_read, a->err_fd, a->parent, a->temps, a->in_cgroup);
}

/* AddressSanitizer's interceptors (sigaltstack, sigaction...) keep per-thread state that a child sharing baton's
 * memory on another stack corrupts: its reports are then false ones. The sanitizer build forks instead (spawn.c's
 * children, keeper.c's keepers). */
#if defined(__SANITIZE_ADDRESS__)
#define SPAWN_SHARES_MEMORY 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPAWN_SHARES_MEMORY 0
#endif
#endif
#ifndef SPAWN_SHARES_MEMORY
#define SPAWN_SHARES_MEMORY 1
#endif

#if defined(__x86_64__)
/* clone3() whose child runs fn(arg) on the stack that ca gives and exits with its result (it returns only in the
 * parent). glibc has no clone3() wrapper, and a child sharing the parent's memory cannot return from the system call
 * into C code whose frame is on the parent's stack: so the system call and the child's first steps are here, in the
 * child's registers, which it has from the parent (x86-64: rax is 0 in the child, rsp the new stack's top). */
static long clone3_run(struct clone_args *ca, int (*fn)(void *), void *arg) {
	register long r12 __asm__("r12") = (long)fn;
	register long r13 __asm__("r13") = (long)arg;
	long ret;
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t" /* the outermost frame, for a debugger */
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "mov %%eax, %%edi\n\t"
			 "mov %[exit], %%eax\n\t"
			 "syscall\n\t"
			 "hlt\n"
			 "1:\n\t"
			 : "=a"(ret)
			 : "a"((long)SYS_clone3), "D"(ca), "S"(sizeof(*ca)), "r"(r12), "r"(r13), [exit] "i"(SYS_exit)
			 : "rcx", "r11", "memory");
	return ret;
}
#define HAVE_CLONE3_RUN 1
#else
/* Elsewhere the child is forked (below); never called. */
static long clone3_run(struct clone_args *ca, int (*fn)(void *), void *arg) {
	(void)ca, (void)fn, (void)arg;
	return -ENOSYS;
}
#define HAVE_CLONE3_RUN 0
#endif

/* fn(arg) in a child that shares baton's memory until its exec, on a stack of its own (unmapped once baton runs on):
 * clone(CLONE_VM | CLONE_VFORK), or with ca the clone3() of those flags and ca's (the child's cgroup). The pid or
 * -errno. */
static pid_t clone_on_stack(int (*fn)(void *), void *arg, struct clone_args *ca) {
	void *stack =
		mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	long pid;
	if (ca) {
		ca->flags |= CLONE_VM | CLONE_VFORK;
		ca->stack = (uint64_t)(uintptr_t)stack;
		ca->stack_size = CHILD_STACK_SIZE;
		pid = clone3_run(ca, fn, arg); /* the raw system call: -errno on failure */
	} else {
		pid = clone(fn, (char *)stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
		if (pid < 0)
			pid = -errno;
	}
	munmap(stack, CHILD_STACK_SIZE);
	return (pid_t)pid;
}

pid_t spawn_clone_vm(int (*fn)(void *), void *arg) {
	if (!SPAWN_SHARES_MEMORY) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(fn(arg));
		return pid < 0 ? -errno : pid;
	}
	return clone_on_stack(fn, arg, NULL);
}

/* Starts the child into the cgroup of p->cgroup_procs at once (clone3(CLONE_INTO_CGROUP), Linux 5.7): the pid, or
 * -errno (-ENOSYS, -EINVAL, -E2BIG where the kernel lacks it: the caller moves the child instead). Where it can
 * (x86-64, no sanitizer), as spawn_clone_vm(): CLONE_VM | CLONE_VFORK, the child on a stack of its own until its exec.
 * Otherwise a fork(), which copies baton's page tables and then makes the child's exec tear the copy down: 1.2 ms from
 * the clone to the exec here against 0.4 for the shared one (issue 23, bench/README.md). In the forked child, this
 * never returns. */
static pid_t clone_into_cgroup(const struct spawn_params *p, struct child_args *a) {
	char dir[64];
	const char *slash = strrchr(p->cgroup_procs, '/');
	if (!slash || (size_t)(slash - p->cgroup_procs) >= sizeof(dir))
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p->cgroup_procs), p->cgroup_procs);
	_cleanup_close_ int fd = openat(p->cgroup_dir_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct clone_args ca = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)fd};
	a->in_cgroup = true;
	if (HAVE_CLONE3_RUN && SPAWN_SHARES_MEMORY)
		return clone_on_stack(child_main, a, &ca);
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		child_main(a);
	return pid < 0 ? -errno : (pid_t)pid;
}

static char *format_failure(const struct spawn_params *p, const struct spawn_failure *f) {
	const char *why = strerror(f->err);

	switch (f->step) {
	case STEP_SETPGID:
		return strdup_printf("setpgid: %s", why);
	case STEP_CGROUP:
		return strdup_printf("join its cgroup: %s", why);
	case STEP_SIGNALS:
		return strdup_printf("reset signal mask: %s", why);
	case STEP_STDIN:
		return p->stdin_fd >= 0 ? strdup_printf("dup2 stdin: %s", why)
					: strdup_printf("open /dev/null: %s", why);
	case STEP_STDOUT:
		return strdup_printf("dup2 stdout/stderr: %s", why);
	case STEP_FDS:
		return strdup_printf("move listener fds into 3..%zu: %s", 2 + p->n_fds, why);
	case STEP_CLOSE:
		return strdup_printf("close fds from %zu on: %s", 3 + p->n_fds, why);
	case STEP_RLIMIT:
		return strdup_printf("setrlimit RLIMIT_NOFILE: %s", why);
	case STEP_CHDIR:
		return strdup_printf("chdir %s: %s", strempty(p->working_directory), why);
	case STEP_SETGROUPS:
		return strdup_printf("setgroups: %s", why);
	case STEP_SETGID:
		return strdup_printf("setgid %u: %s", (unsigned)p->gid, why);
	case STEP_SETUID:
		return strdup_printf("setuid %u: %s", (unsigned)p->uid, why);
	case STEP_PDEATHSIG:
		return strdup_printf("prctl PR_SET_PDEATHSIG: %s", why);
	case STEP_EXEC: {
		/* ENOENT for a script that exists is its "#!" interpreter that is missing: say which. */
		char line[256];
		ssize_t n = f->err == ENOENT && strchr(p->argv[0], '/')
				    ? read_file_at(AT_FDCWD, p->argv[0], O_NONBLOCK, line, sizeof(line))
				    : -1;
		if (n > 2 && line[0] == '#' && line[1] == '!') {
			char *interp = line + 2 + strspn(line + 2, " \t");
			interp[strcspn(interp, " \t\r\n")] = '\0';
			return strdup_printf("exec %s: its interpreter %s: %s", p->argv[0], interp, why);
		}
		/* ENOEXEC: a shell would run a script without "#!" through /bin/sh; baton runs what the kernel runs,
		 * and says what is missing. */
		if (f->err == ENOEXEC)
			return strdup_printf(
				"exec %s: %s (a script needs a \"#!\" line naming its interpreter, such as "
				"#!/bin/sh)",
				p->argv[0], why);
		return strdup_printf("exec %s: %s", p->argv[0], why);
	}
	default:
		return strdup_printf("child setup step %d: %s", f->step, why);
	}
}

static void reap(pid_t pid) {
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* The parent's side of the error pipe: EOF once the child has exec'd (0), or the step that failed, in which case the
 * child is reaped and *ret_error says why. */
static int wait_exec(const struct spawn_params *p, pid_t pid, int err_read, char **ret_error) {
	struct spawn_failure f;
	ssize_t k;
	int r;

	do
		k = read(err_read, &f, sizeof(f));
	while (k < 0 && errno == EINTR);
	if (k == 0)
		return 0;
	if (k < 0) {
		r = fail_error(ret_error, -errno, "read the child's exec status: %s", strerror(errno));
		kill(pid, SIGKILL);
	} else if (k != (ssize_t)sizeof(f) || f.err <= 0)
		r = fail_error(ret_error, -EIO, "child setup failed with a garbled status");
	else {
		*ret_error = format_failure(p, &f);
		r = -f.err;
	}
	reap(pid);
	return r;
}

/* The pidfd of the child pid, which has exec'd: -1 where there is none. When it cannot be had otherwise, the child is
 * killed and reaped. */
static int open_pidfd(pid_t pid, int *ret_pidfd, char **ret_error) {
	/* The child is not reaped yet (only we reap), so the pid cannot have been reused. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* Kernels before 5.3, and valgrind, have no pidfd_open: the caller then signals by pid (safe, as the child is
	 * ours and unreaped) and learns of its exit from SIGCHLD alone. */
	if (pidfd < 0 && errno == ENOSYS)
		pidfd = -1;
	else if (pidfd < 0) {
		int r = fail_error(ret_error, -errno, "pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		reap(pid);
		return r;
	}
	*ret_pidfd = pidfd;
	return 0;
}

int spawn_child(const struct spawn_params *p, pid_t *ret_pid, int *ret_pidfd, char **ret_error) {
	int pipefd[2];
	int r;

	if (!p->argv || !p->argv[0] || !p->envp)
		return fail_error(ret_error, -EINVAL, "no command to run");
	if (p->n_fds > SPAWN_FDS_MAX)
		return fail_error(ret_error, -EINVAL, "too many fds to pass: %zu", p->n_fds);
	for (size_t i = 0; i < p->n_fds; i++)
		if (p->fds[i] < 0)
			return fail_error(ret_error, -EBADF, "fd %zu to pass is invalid", i);
	/* Temporaries only where the fds cannot go in place. A few (most programs) are on this stack, not one more
	 * allocation made and freed at each start between the ones that stay (an idle baton's heap is one page). */
	bool in_place = fds_in_place(p);
	int temps_few[16];
	bool few = in_place || p->n_fds <= ARRAY_SIZE(temps_few);
	_cleanup_free_ int *temps_many = few ? NULL : calloc(p->n_fds, sizeof(int));
	int *temps = in_place ? NULL : few ? temps_few : temps_many;
	if (!in_place && !temps)
		return -ENOMEM;

	/* Close-on-exec: a successful exec closes the write end, and the parent reads EOF. */
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return fail_error(ret_error, -errno, "pipe2: %s", strerror(errno));
	_cleanup_close_ int err_read = pipefd[0], err_write = pipefd[1];

	/* clone(CLONE_VM | CLONE_VFORK), as posix_spawn(3) does, not fork(): a fork copies baton's page tables and
	 * marks all its memory copy-on-write, and baton then pays a page fault for every page it writes after each
	 * start (a reload of 1,000 listeners spent a large part of its time in them; issue 23). The child runs on a
	 * stack of its own in baton's memory until its exec, and baton waits meanwhile: child_exec() writes nothing of
	 * baton's but that stack, temps, the envp it is given and errno, and calls nothing that takes a lock. */
	struct child_args a = {.p = p, .err_read = err_read, .err_fd = err_write, .parent = getpid(), .temps = temps};
	/* Into its cgroup at the clone: always where the clone shares baton's memory; forked, only until baton has
	 * settled (then the child moves itself, a write to cgroup.procs, rather than baton's pages being copied). */
	bool at_clone = p->cgroup_at_clone || (HAVE_CLONE3_RUN && SPAWN_SHARES_MEMORY);
	pid_t pid = p->cgroup_procs && at_clone ? clone_into_cgroup(p, &a) : -ENOSYS;
	if (pid == -ENOSYS || pid == -EINVAL || pid == -E2BIG) {
		a.in_cgroup = false;
		pid = spawn_clone_vm(child_main, &a);
	}
	if (pid < 0)
		return fail_error(ret_error, pid, "clone: %s", strerror(-pid));

	close(TAKE_FD(err_write));
	/* From this side too (the classic job-control race): a signal sent to the group right after we return must
	 * reach the child even if it has not run yet. EACCES once it has exec'd is fine: it did it itself then. */
	(void)setpgid(pid, pid);

	r = wait_exec(p, pid, err_read, ret_error);
	if (r < 0)
		return r;

	r = open_pidfd(pid, ret_pidfd, ret_error);
	if (r < 0)
		return r;
	*ret_pid = pid;
	return 0;
}
