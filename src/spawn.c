/* Starting a child the way systemd would: see spawn.h for the contract, CONTRACT.md ("What the child gets") for the
 * user-visible promise and SYSTEMD-NOTES.md ("Passing sockets") for the protocol rules this follows. */
#include "spawn.h"

#include <elf.h>

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2) /* linux/close_range.h, Linux ≥ 5.11 */
#endif

/* ---- environment ---- */

/* Variables the child must get from baton or not at all: a stale LISTEN_PIDFDID makes sd_listen_fds() see zero fds,
 * and the watchdog variables would make the child believe it is the one systemd watches (SYSTEMD-NOTES.md). */
static const char *const reserved_vars[] = {
	"LISTEN_FDS",   "LISTEN_PID",    "LISTEN_FDNAMES", "LISTEN_PIDFDID",
	"WATCHDOG_PID", "WATCHDOG_USEC", "NOTIFY_SOCKET",  "BATON_GENERATION",
};

#define LISTEN_PID_PREFIX "LISTEN_PID="
#define WATCHDOG_PID_PREFIX "WATCHDOG_PID="
/* Room after "LISTEN_PID=" for the digits and the NUL: a pid_t has at most 10 digits. */
#define LISTEN_PID_ROOM 24

/* Length of NAME in "NAME=value"; 0 when there is no '=' or the name is empty (such an entry is dropped). */
static size_t env_name_len(const char *entry) {
	const char *eq = strchr(entry, '=');
	return eq ? (size_t)(eq - entry) : 0;
}

static bool env_name_is(const char *entry, size_t len, const char *name) {
	return strlen(name) == len && memcmp(entry, name, len) == 0;
}

static bool env_name_reserved(const char *entry, size_t len) {
	for (size_t i = 0; i < ARRAY_SIZE(reserved_vars); i++)
		if (env_name_is(entry, len, reserved_vars[i]))
			return true;
	return false;
}

/* Whether one of list[from..] sets the variable NAME (of length len). */
static bool env_list_sets(char *const *list, size_t from, const char *name, size_t len) {
	for (size_t i = from; list && list[i]; i++)
		if (env_name_len(list[i]) == len && memcmp(list[i], name, len) == 0)
			return true;
	return false;
}

static int env_push(char **env, size_t *n, char *entry) {
	if (!entry)
		return -ENOMEM;
	env[(*n)++] = entry;
	return 0;
}

static char *join_names(char *const *names, size_t n) {
	size_t len = strlen("LISTEN_FDNAMES=") + 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(names[i]) + 1;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	p = stpcpy(p, "LISTEN_FDNAMES=");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ':';
		p = stpcpy(p, names[i]);
	}
	return s;
}

/* "PREFIX" followed by zeroes with room for any pid's digits. */
static char *pid_slot(const char *prefix) {
	size_t len = strlen(prefix);
	char *slot = calloc(1, len + LISTEN_PID_ROOM);
	if (slot)
		memcpy(slot, prefix, len);
	return slot;
}

int spawn_build_env(const struct spawn_env_params *p, char ***ret) {
	size_t n_base = strv_length(p->base), n_over = strv_length(p->overrides), n_extra = strv_length(p->extra),
	       n = 0;
	/* base + overrides + LISTEN_FDS, LISTEN_FDNAMES, NOTIFY_SOCKET, BATON_GENERATION, WATCHDOG_USEC, WATCHDOG_PID,
	 * LISTEN_PID + NULL */
	_cleanup_strv_free_ char **env = calloc(n_base + n_over + n_extra + 8, sizeof(char *));
	int r;

	if (!env)
		return -ENOMEM;

	for (size_t i = 0; i < n_base; i++) {
		const char *e = p->base[i];
		size_t len = env_name_len(e);
		if (len == 0 || env_name_reserved(e, len) || env_list_sets(p->overrides, 0, e, len) ||
		    env_list_sets(p->extra, 0, e, len))
			continue;
		r = env_push(env, &n, strdup(e));
		if (r < 0)
			return r;
	}

	for (size_t i = 0; i < n_over; i++) {
		const char *e = p->overrides[i];
		size_t len = env_name_len(e);
		/* The reserved variables are baton's to set: a second NOTIFY_SOCKET or LISTEN_FDS would leave the child
		 * to guess which one counts (getenv() takes the first). A later override of the same name wins. */
		if (len == 0 || env_name_reserved(e, len) || env_list_sets(p->overrides, i + 1, e, len) ||
		    env_list_sets(p->extra, 0, e, len))
			continue;
		r = env_push(env, &n, strdup(e));
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n_extra; i++) {
		const char *e = p->extra[i];
		size_t len = env_name_len(e);
		if (len == 0 || env_name_reserved(e, len) || env_list_sets(p->extra, i + 1, e, len))
			continue;
		r = env_push(env, &n, strdup(e));
		if (r < 0)
			return r;
	}

	if (p->n_fds > 0) {
		r = env_push(env, &n, strdup_printf("LISTEN_FDS=%zu", p->n_fds));
		if (r < 0)
			return r;
		/* Without names sd_listen_fds_with_names() reports "unknown" for each fd, which is still consistent. */
		if (p->names) {
			r = env_push(env, &n, join_names(p->names, p->n_fds));
			if (r < 0)
				return r;
		}
	}
	if (p->notify_socket) {
		r = env_push(env, &n, strdup_printf("NOTIFY_SOCKET=%s", p->notify_socket));
		if (r < 0)
			return r;
	}
	r = env_push(env, &n, strdup_printf("BATON_GENERATION=%u", p->generation));
	if (r < 0)
		return r;

	if (p->watchdog_usec > 0) {
		/* sd_watchdog_enabled() heeds WATCHDOG_USEC only when WATCHDOG_PID is unset or its own pid: the slot
		 * is filled after fork, like LISTEN_PID's. */
		r = env_push(env, &n, strdup_printf("WATCHDOG_USEC=%" PRIu64, p->watchdog_usec));
		if (r < 0)
			return r;
		r = env_push(env, &n, pid_slot(WATCHDOG_PID_PREFIX));
		if (r < 0)
			return r;
	}

	if (p->n_fds > 0) {
		/* LISTEN_PID must be the pid of the process that reads it, known only after fork. The slot is
		 * zero-filled with room for any pid so that the child can fill it without allocating
		 * (spawn_set_listen_pid). */
		r = env_push(env, &n, pid_slot(LISTEN_PID_PREFIX));
		if (r < 0)
			return r;
	}

	*ret = TAKE_PTR(env);
	return 0;
}

static void fill_pid_slot(char **envp, const char *prefix, size_t prefix_len, pid_t pid);

void spawn_set_listen_pid(char **envp, pid_t pid) {
	fill_pid_slot(envp, LISTEN_PID_PREFIX, sizeof(LISTEN_PID_PREFIX) - 1, pid);
	fill_pid_slot(envp, WATCHDOG_PID_PREFIX, sizeof(WATCHDOG_PID_PREFIX) - 1, pid);
}

static void fill_pid_slot(char **envp, const char *prefix, size_t prefix_len, pid_t pid) {
	char *slot = NULL;

	/* Only plain loops here: this runs in the forked child, where only async-signal-safe code belongs. The slot
	 * is the last entry, so take the last match. */
	for (char **e = envp; e && *e; e++) {
		size_t i = 0;
		while (i < prefix_len && (*e)[i] == prefix[i])
			i++;
		if (i == prefix_len)
			slot = *e;
	}
	if (!slot)
		return;

	char digits[LISTEN_PID_ROOM];
	size_t n = 0;
	unsigned long v = pid > 0 ? (unsigned long)pid : 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < sizeof(digits) - 1);

	char *out = slot + prefix_len;
	while (n > 0)
		*out++ = digits[--n];
	*out = '\0';
}

/* ---- argv ---- */

struct buf {
	char *s;
	size_t len, size;
};

static int buf_append(struct buf *b, const char *s, size_t len) {
	if (b->len + len + 1 > b->size) {
		size_t size = (b->len + len + 1) * 2;
		char *n = realloc(b->s, size);
		if (!n)
			return -ENOMEM;
		b->s = n;
		b->size = size;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
	return 0;
}

static int substitute_one(const char *arg, char *const *names, size_t n_names, char **ret, char **ret_bad_name) {
	static const char open[] = "{fd:";
	struct buf b = {0};
	const char *p = arg;
	int r;

	for (;;) {
		const char *start = strstr(p, open);
		if (!start) {
			r = buf_append(&b, p, strlen(p));
			break;
		}
		const char *name = start + strlen(open), *end = strchr(name, '}');
		if (!end) {
			r = -EINVAL;
			break;
		}
		size_t len = (size_t)(end - name), i;
		for (i = 0; i < n_names; i++)
			if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
				break;
		if (i == n_names) {
			char *bad = strndup(name, len);
			if (!bad) {
				r = -ENOMEM;
				break;
			}
			*ret_bad_name = bad;
			r = -ENOENT;
			break;
		}
		char num[24];
		int k = snprintf(num, sizeof(num), "%zu", 3 + i);
		r = buf_append(&b, p, (size_t)(start - p));
		if (r >= 0)
			r = buf_append(&b, num, (size_t)k);
		if (r < 0)
			break;
		p = end + 1;
	}

	if (r < 0) {
		free(b.s);
		return r;
	}
	*ret = b.s;
	return 0;
}

int spawn_substitute_argv(char *const *command, char *const *names, size_t n_names, char ***ret_argv,
			  char **ret_bad_name) {
	size_t n = strv_length(command);
	_cleanup_strv_free_ char **argv = calloc(n + 1, sizeof(char *));
	int r;

	if (!argv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = substitute_one(command[i], names, n_names, &argv[i], ret_bad_name);
		if (r < 0)
			return r;
	}
	*ret_argv = TAKE_PTR(argv);
	return 0;
}

/* ---- credentials ---- */

/* A name, or a decimal number (a name made only of digits is taken as the number, as systemd does). */
static bool parse_id(const char *s, uint32_t *ret) {
	uint64_t v;
	/* (uid_t) -1 means "unchanged" to setuid()/chown(): never a real id. */
	if (parse_uint_max(s, UINT32_MAX - 1, &v) < 0)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* Runs getpw*_r / getgr*_r with a growing buffer. Returns 1 when found, 0 when not, or -errno. */
static int lookup_user(const char *user, struct passwd *pw, char **buf) {
	size_t size = 1024;
	uint32_t id;
	bool numeric = parse_id(user, &id);

	for (;;) {
		struct passwd *res = NULL;
		char *n = realloc(*buf, size);
		if (!n)
			return -ENOMEM;
		*buf = n;
		int r = numeric ? getpwuid_r((uid_t)id, pw, *buf, size, &res) : getpwnam_r(user, pw, *buf, size, &res);
		if (r == ERANGE && size < 1024 * 1024) {
			size *= 2;
			continue;
		}
		/* glibc reports "no such entry" as 0 with no result; some NSS modules say ENOENT or ESRCH. */
		if (r == 0 || r == ENOENT || r == ESRCH)
			return res ? 1 : 0;
		return -r;
	}
}

static int lookup_group(const char *group, struct group *gr, char **buf) {
	size_t size = 1024;
	uint32_t id;
	bool numeric = parse_id(group, &id);

	for (;;) {
		struct group *res = NULL;
		char *n = realloc(*buf, size);
		if (!n)
			return -ENOMEM;
		*buf = n;
		int r = numeric ? getgrgid_r((gid_t)id, gr, *buf, size, &res) : getgrnam_r(group, gr, *buf, size, &res);
		if (r == ERANGE && size < 1024 * 1024) {
			size *= 2;
			continue;
		}
		if (r == 0 || r == ENOENT || r == ESRCH)
			return res ? 1 : 0;
		return -r;
	}
}

/* initgroups() semantics, resolved in the parent: the user's groups from the group database plus gid. */
static int user_groups(const char *name, gid_t gid, gid_t **ret, size_t *ret_n) {
	int n = 16;

	for (int attempt = 0; attempt < 8; attempt++) {
		gid_t *groups = malloc((size_t)n * sizeof(gid_t));
		if (!groups)
			return -ENOMEM;
		int have = n;
		if (getgrouplist(name, gid, groups, &have) >= 0) {
			*ret = groups;
			*ret_n = (size_t)have;
			return 0;
		}
		free(groups);
		/* -1: too small; have tells how many there are (glibc). Grow twofold at least, should it not. */
		n = have > n ? have : n * 2;
	}
	return -ENOBUFS;
}

int spawn_resolve_credentials(const char *user, const char *group, struct spawn_params *p, gid_t **ret_groups,
			      char **ret_error) {
	_cleanup_free_ char *pwbuf = NULL, *grbuf = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	struct passwd pw;
	struct group gr;
	uid_t uid = getuid();
	gid_t gid = 0;
	size_t n_groups = 0;
	bool have_pw = false;
	uint32_t id;
	int r;

	if (!user && !group) {
		*ret_groups = NULL;
		return 0;
	}

	if (user) {
		r = lookup_user(user, &pw, &pwbuf);
		if (r < 0) {
			*ret_error = strdup_printf("Failed to look up user '%s': %s", user, strerror(-r));
			return r;
		}
		if (r > 0) {
			have_pw = true;
			uid = pw.pw_uid;
			gid = pw.pw_gid;
		} else if (parse_id(user, &id) && group) {
			/* A bare uid without passwd entry (common in containers) works when the group is given. */
			uid = (uid_t)id;
		} else {
			*ret_error = strdup_printf("user '%s' does not exist", user);
			return -ESRCH;
		}
	}

	if (group) {
		r = lookup_group(group, &gr, &grbuf);
		if (r < 0) {
			*ret_error = strdup_printf("Failed to look up group '%s': %s", group, strerror(-r));
			return r;
		}
		if (r > 0)
			gid = gr.gr_gid;
		else if (parse_id(group, &id))
			gid = (gid_t)id; /* setgid() needs no group entry */
		else {
			*ret_error = strdup_printf("group '%s' does not exist", group);
			return -ESRCH;
		}
	}

	if (have_pw) {
		r = user_groups(pw.pw_name, gid, &groups, &n_groups);
		if (r < 0) {
			*ret_error =
				strdup_printf("Failed to get the groups of user '%s': %s", pw.pw_name, strerror(-r));
			return r;
		}
	} else {
		/* Only a group, or a uid without an entry: that group alone, and the supplementary ones dropped. */
		groups = malloc(sizeof(gid_t));
		if (!groups)
			return -ENOMEM;
		groups[0] = gid;
		n_groups = 1;
	}

	p->set_credentials = true;
	p->uid = uid;
	p->gid = gid;
	p->groups = groups;
	p->n_groups = n_groups;
	*ret_groups = TAKE_PTR(groups);
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

/* The forked child. Between fork and exec only async-signal-safe calls: the parent may hold locks (malloc, stdio,
 * NSS) in a state the child must never touch. */
/* temps: room for n_fds ints, allocated by the parent (no malloc after fork). */
__attribute__((noreturn)) static void child_exec(const struct spawn_params *p, int err_read, int err_fd,
						 pid_t parent_pid, int *temps) {
	int n = (int)p->n_fds;

	close(err_read);

	if (setpgid(0, 0) < 0)
		child_fail(err_fd, STEP_SETPGID);

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

	spawn_set_listen_pid(p->envp, getpid());

	/* fds go to 3.., but a source can sit on another's target number, and so can the error pipe: first move
	 * everything above all of them, then place each copy. */
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

	int moved = fcntl(err_fd, F_DUPFD_CLOEXEC, base);
	if (moved < 0)
		child_fail(err_fd, STEP_FDS);
	err_fd = moved;

	for (int i = 0; i < n; i++) {
		temps[i] = fcntl(p->fds[i], F_DUPFD_CLOEXEC, base);
		if (temps[i] < 0)
			child_fail(err_fd, STEP_FDS);
	}

	/* stdin after the temporaries, so that a passed fd sitting on 0 is already safe. */
	if (p->stdin_fd >= 0) {
		if (p->stdin_fd == 0) {
			/* dup2(fd, fd) does nothing, not even clear FD_CLOEXEC. */
			if (fcntl(0, F_SETFD, 0) < 0)
				child_fail(err_fd, STEP_STDIN);
		} else if (dup2(p->stdin_fd, 0) < 0)
			child_fail(err_fd, STEP_STDIN);
	} else {
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

	/* Output pipes (readiness.type log) are set up by the parent far above 2, so dup2 cannot clobber a passed
	 * fd's temporary (those are above base, and so are these). */
	if (p->stdout_fd >= 0 && dup2(p->stdout_fd, 1) < 0)
		child_fail(err_fd, STEP_STDOUT);
	if (p->stderr_fd >= 0 && dup2(p->stderr_fd, 2) < 0)
		child_fail(err_fd, STEP_STDOUT);

	for (int i = 0; i < n; i++) {
		if (temps[i] == 3 + i) {
			/* Cannot happen (temporaries are above base), but dup2(fd, fd) would keep FD_CLOEXEC. */
			if (fcntl(temps[i], F_SETFD, 0) < 0)
				child_fail(err_fd, STEP_FDS);
			continue;
		}
		/* dup2() onto another number gives a descriptor without FD_CLOEXEC: what the child must inherit. */
		if (dup2(temps[i], 3 + i) < 0)
			child_fail(err_fd, STEP_FDS);
		close(temps[i]);
	}

	if (cloexec_from(3 + n) < 0)
		child_fail(err_fd, STEP_CLOSE);

	/* After the fds are in place: the temporaries may lie above the child's own (lower) limit. */
	if (p->nofile && setrlimit(RLIMIT_NOFILE, p->nofile) < 0)
		child_fail(err_fd, STEP_RLIMIT);

	if (p->working_directory && chdir(p->working_directory) < 0)
		child_fail(err_fd, STEP_CHDIR);

	if (p->set_credentials) {
		/* Groups first: after setuid() to a non-root user, setgroups() and setgid() are no longer allowed. */
		if (setgroups(p->n_groups, p->groups) < 0)
			child_fail(err_fd, STEP_SETGROUPS);
		if (setgid(p->gid) < 0)
			child_fail(err_fd, STEP_SETGID);
		if (setuid(p->uid) < 0)
			child_fail(err_fd, STEP_SETUID);
	}

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

static char *format_failure(const struct spawn_params *p, const struct spawn_failure *f) {
	const char *why = strerror(f->err);

	switch (f->step) {
	case STEP_SETPGID:
		return strdup_printf("setpgid: %s", why);
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
		_cleanup_close_ int fd = f->err == ENOENT && strchr(p->argv[0], '/')
						 ? open(p->argv[0], O_RDONLY | O_CLOEXEC | O_NONBLOCK)
						 : -1;
		ssize_t n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
		if (n > 2 && line[0] == '#' && line[1] == '!') {
			line[n] = '\0';
			char *interp = line + 2 + strspn(line + 2, " \t");
			interp[strcspn(interp, " \t\r\n")] = '\0';
			return strdup_printf("exec %s: its interpreter %s: %s", p->argv[0], interp, why);
		}
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

int spawn_child(const struct spawn_params *p, pid_t *ret_pid, int *ret_pidfd, char **ret_error) {
	int pipefd[2];
	int r;

	if (!p->argv || !p->argv[0] || !p->envp) {
		*ret_error = strdup_printf("no command to run");
		return -EINVAL;
	}
	if (p->n_fds > SPAWN_FDS_MAX) {
		*ret_error = strdup_printf("too many fds to pass: %zu", p->n_fds);
		return -EINVAL;
	}
	_cleanup_free_ int *temps = calloc(p->n_fds ? p->n_fds : 1, sizeof(int));
	if (!temps)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_fds; i++)
		if (p->fds[i] < 0) {
			*ret_error = strdup_printf("fd %zu to pass is invalid", i);
			return -EBADF;
		}

	/* Close-on-exec: a successful exec closes the write end, and the parent reads EOF. */
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		*ret_error = strdup_printf("pipe2: %s", strerror(-r));
		return r;
	}

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		*ret_error = strdup_printf("fork: %s", strerror(-r));
		return r;
	}
	if (pid == 0)
		child_exec(p, pipefd[0], pipefd[1], parent, temps);

	close(pipefd[1]);
	/* From this side too (the classic job-control race): a signal sent to the group right after we return must
	 * reach the child even if it has not run yet. EACCES once it has exec'd is fine: it did it itself then. */
	(void)setpgid(pid, pid);

	struct spawn_failure f;
	ssize_t k;
	do
		k = read(pipefd[0], &f, sizeof(f));
	while (k < 0 && errno == EINTR);
	r = k < 0 ? -errno : 0;
	close(pipefd[0]);

	if (k != 0) {
		if (k < 0)
			*ret_error = strdup_printf("read the child's exec status: %s", strerror(-r));
		else if (k != (ssize_t)sizeof(f) || f.err <= 0) {
			*ret_error = strdup_printf("child setup failed with a garbled status");
			r = -EIO;
		} else {
			*ret_error = format_failure(p, &f);
			r = -f.err;
		}
		if (k < 0)
			kill(pid, SIGKILL);
		reap(pid);
		return r;
	}

	/* The child is not reaped yet (only we reap), so the pid cannot have been reused. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* Kernels before 5.3, and valgrind, have no pidfd_open: the caller then signals by pid (safe, as the child is
	 * ours and unreaped) and learns of its exit from SIGCHLD alone. */
	if (pidfd < 0 && errno == ENOSYS)
		pidfd = -1;
	else if (pidfd < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		reap(pid);
		*ret_error = strdup_printf("pidfd_open: %s", strerror(-r));
		return r;
	}

	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return 0;
}

/* ---- can LD_PRELOAD work for the program? ---- */

/* Finds argv0 like execvpe() would: as given when it has a '/', else the first regular executable file in path_env
 * (glibc's default PATH when that is NULL). Returns 0 with the path in buf, or -ENOENT. */
static int find_program(const char *argv0, const char *path_env, char buf[static PATH_MAX]) {
	if (strchr(argv0, '/')) {
		if (strlen(argv0) >= PATH_MAX)
			return -ENAMETOOLONG;
		strcpy(buf, argv0);
		return 0;
	}
	const char *p = path_env ? path_env : "/bin:/usr/bin";
	for (;;) {
		size_t len = strcspn(p, ":");
		/* An empty entry means the current directory. */
		int m = snprintf(buf, PATH_MAX, "%.*s%s%s", (int)len, p, len ? "/" : "", argv0);
		struct stat st;
		if (m > 0 && m < PATH_MAX && stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return 0;
		if (!p[len])
			return -ENOENT;
		p += len + 1;
	}
}

/* 1 when the file at path is an ELF executable without a PT_INTERP program header (no dynamic linker runs, so
 * nothing reads LD_PRELOAD), 0 when it is a dynamic ELF or no ELF; *ret_interp gets a "#!" script's interpreter. */
static int elf_is_static(int fd, char interp[static PATH_MAX]) {
	unsigned char head[sizeof(Elf64_Ehdr)];
	interp[0] = '\0';
	ssize_t n = pread(fd, head, sizeof(head), 0);
	if (n >= 2 && head[0] == '#' && head[1] == '!') {
		char line[PATH_MAX + 2];
		ssize_t k = pread(fd, line, sizeof(line) - 1, 2);
		if (k <= 0)
			return 0;
		line[k] = '\0';
		const char *start = line + strspn(line, " \t");
		size_t len = strcspn(start, " \t\n");
		if (len > 0 && len < PATH_MAX) {
			memcpy(interp, start, len);
			interp[len] = '\0';
		}
		return 0;
	}
	if (n < (ssize_t)sizeof(Elf32_Ehdr) || memcmp(head, ELFMAG, SELFMAG) != 0)
		return 0;
	bool is64 = head[EI_CLASS] == ELFCLASS64;
	uint64_t phoff;
	unsigned phnum, phentsize;
	if (is64) {
		if (n < (ssize_t)sizeof(Elf64_Ehdr))
			return 0;
		Elf64_Ehdr eh;
		memcpy(&eh, head, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, head, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
	}
	if (phentsize < (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) || phnum > 4096)
		return 0;
	for (unsigned i = 0; i < phnum; i++) {
		uint32_t type;
		/* p_type is the first 32-bit field of both program header layouts. */
		if (pread(fd, &type, sizeof(type), (off_t)(phoff + (uint64_t)i * phentsize)) != sizeof(type))
			return 0;
		if (type == PT_INTERP)
			return 0;
	}
	return 1;
}

const char *spawn_preload_problem(const char *argv0, const char *path_env) {
	char path[PATH_MAX], interp[PATH_MAX];
	/* One level of "#!": the kernel runs the interpreter, and that is what the dynamic linker loads. */
	for (int depth = 0; depth < 2; depth++) {
		if (find_program(depth ? interp : argv0, path_env, path) < 0)
			return NULL;
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return NULL;
		if (st.st_mode & (S_ISUID | S_ISGID))
			return depth ? "its interpreter is set-user-ID or set-group-ID, and the dynamic linker then "
				       "ignores LD_PRELOAD"
				     : "it is set-user-ID or set-group-ID, and the dynamic linker then ignores "
				       "LD_PRELOAD";
		if (elf_is_static(fd, interp) > 0)
			return depth ? "its interpreter is statically linked, so nothing loads LD_PRELOAD"
				     : "it is statically linked, so nothing loads LD_PRELOAD";
		if (!interp[0])
			return NULL;
	}
	return NULL;
}
