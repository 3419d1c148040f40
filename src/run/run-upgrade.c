/* `baton upgrade` (baton(1) UPGRADE): the supervisor replaces its own binary in place. The old binary writes its
 * state to a memfd (run-state.c), asks the new binary whether it can read it (`--upgrade-check`), and execs it with
 * the same command line, BATON_UPGRADE_STATE naming the memfd and BATON_UPGRADE_FALLBACK an O_PATH fd of itself. Its
 * fds stay open across the exec, its children stay its children (the PID does not change), and the signals it had
 * not read stay pending (they are blocked). The new binary takes the state over and answers the client; when it
 * cannot, it execs the old binary again with the same state and BATON_UPGRADE_FAILED saying why, and that one
 * answers the client that the upgrade failed. Logs what it does at info level, failures at warning level. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libsystemd.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "run-core.h"
#include "run-state.h"
#include "run-upgrade.h"
#include "status.h"
#include "util.h"
#include "version.h"

extern char **environ;

/* The new binary must answer `--upgrade-check` within this time. */
#define CHECK_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* At most this much of its answer is kept for the message. */
#define CHECK_OUTPUT_MAX 1024

#define ENV_STATE "BATON_UPGRADE_STATE"
#define ENV_FALLBACK "BATON_UPGRADE_FALLBACK"
#define ENV_FAILED "BATON_UPGRADE_FAILED"

/* ---- at the start ---- */

static bool is_executable_file(const char *path) {
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The path baton was started from: argv[0] as the shell or systemd found it (relative to the directory baton was
 * started in, or in $PATH), not /proc/self/exe, which names the file behind symlinks and, after a package upgrade,
 * the deleted old binary. */
static char *self_path(const char *argv0) {
	if (argv0 && strchr(argv0, '/')) {
		if (argv0[0] == '/')
			return strdup(argv0);
		/* getcwd() allocates: a PATH_MAX buffer here would be the deepest page of baton's stack, private memory
		 * for its whole life. */
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		return cwd ? strdup_printf("%s/%s", cwd, argv0) : NULL;
	}
	const char *path = getenv("PATH");
	if (argv0 && path) {
		_cleanup_free_ char *dirs = strdup(path);
		for (char *save = NULL, *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d;
		     d = strtok_r(NULL, ":", &save)) {
			_cleanup_free_ char *p = strdup_printf("%s/%s", d, argv0);
			if (p && d[0] == '/' && is_executable_file(p))
				return TAKE_PTR(p);
		}
	}
	return NULL;
}

void run_upgrade_setup(struct run *r) {
	r->binary = self_path(r->argv ? r->argv[0] : NULL);
	if (!r->binary)
		log_debug("cannot tell which path baton was started from: baton upgrade needs --binary");
	r->exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (r->exe_fd < 0)
		log_debug_errno(errno, "Failed to open /proc/self/exe: baton upgrade will be refused");
}

/* ---- the old binary ---- */

static void upgrade_failed(struct run *r, struct control_client *cl, const char *why) {
	log_warning("upgrade failed, baton %s carries on: %s", baton_version, why);
	(void)control_client_reply_error(cl, why);
	control_client_close(&r->control, cl);
}

/* The binary cl names (or baton's own path): NULL with *ret_why when it cannot be one. */
static const char *binary_of(const struct run *r, const struct control_client *cl, char **ret_why) {
	const char *binary = cl->argument ? cl->argument : r->binary;
	struct stat st;
	if (!binary)
		*ret_why = strdup("baton cannot tell which path it was started from: give --binary");
	else if (binary[0] != '/')
		*ret_why = strdup_printf("%s: the binary must be an absolute path", binary);
	else if (stat(binary, &st) < 0)
		*ret_why = strdup_printf("%s: %s", binary, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		*ret_why = strdup_printf("%s: not a regular file", binary);
	else if (access(binary, X_OK) < 0)
		*ret_why = strdup_printf("%s: not executable (%s)", binary, strerror(errno));
	else if (r->exe_fd < 0)
		*ret_why =
			strdup("baton cannot open its own binary (/proc/self/exe) to go back to if the upgrade fails");
	else
		return binary;
	if (!*ret_why)
		*ret_why = strdup("out of memory");
	return NULL;
}

/* The state as it is now, in a new memfd (close-on-exec). Returns the fd, or negative with *ret_why. */
static int state_now(const struct run *r, const struct control_client *cl, uint64_t started, struct ser_fds *ret_fds,
		     char **ret_why) {
	int memfd = memfd_create("baton-state", MFD_CLOEXEC);
	if (memfd < 0)
		return fail_error(ret_why, -errno, "memfd_create: %s", strerror(errno));
	int k = run_state_write(r, cl, started, memfd, ret_fds);
	if (k < 0) {
		close(memfd);
		return fail_error(ret_why, k, "cannot write the state: %s", strerror(-k));
	}
	return memfd;
}

/* Starts `binary --upgrade-check=3` with the state as its fd 3, its stdout and stderr into a pipe that the loop
 * watches: it must exit 0 and say "baton-state-ok" within CHECK_TIMEOUT_USEC. The loop keeps serving meanwhile. */
static int check_start(struct run *r, struct control_client *cl, const char *binary, char **ret_why) {
	struct upgrade_check *c = &r->check;
	uint64_t started = now_usec();
	_cleanup_close_ int memfd = state_now(r, cl, started, NULL, ret_why);
	if (memfd < 0)
		return memfd;
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return fail_error(ret_why, -errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int k = -errno;
		close(p[0]);
		close(p[1]);
		return fail_error(ret_why, k, "fork: %s", strerror(-k));
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		(void)fcntl(p[1], F_SETFL, 0);
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0 ||
		    (memfd == 3 ? fcntl(3, F_SETFD, 0) : dup2(memfd, 3)) < 0)
			_exit(127);
		execl(binary, binary, "--upgrade-check=3", (char *)NULL);
		dprintf(2, "cannot execute it: %s\n", strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*c = (struct upgrade_check){
		.client = cl->id,
		.binary = strdup(binary),
		.pid = pid,
		.pipe_fd = p[0],
		.deadline_usec = started + CHECK_TIMEOUT_USEC,
		.started_usec = started,
	};
	int k = evloop_add(&r->loop, c->pipe_fd, EPOLLIN, TAG_UPGRADE_CHECK);
	if (k < 0) {
		/* Read at the end instead: the answer is short, and the pipe holds it. */
		log_debug_errno(k, "Failed to watch the upgrade check's output");
	}
	return 0;
}

static void check_read(struct upgrade_check *c) {
	while (c->pipe_fd >= 0) {
		char buf[512];
		ssize_t n = read(c->pipe_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* Closing it takes it out of the epoll set. */
			close(c->pipe_fd);
			c->pipe_fd = -1;
			return;
		}
		for (ssize_t i = 0; i < n && c->len < CHECK_OUTPUT_MAX; i++)
			c->out[c->len++] = buf[i];
	}
}

static void check_clear(struct upgrade_check *c) {
	if (c->pipe_fd >= 0)
		close(c->pipe_fd);
	free(c->binary);
	*c = (struct upgrade_check){.pipe_fd = -1, .deadline_usec = USEC_INFINITY};
}

/* The check is over once its process was reaped and its answer read (or the deadline killed it): its client hears
 * of a failure now, and waits for the exec after a success. */
static void check_done(struct run *r) {
	struct upgrade_check *c = &r->check;
	if (!c->client || !c->reaped)
		return;
	check_read(c);
	if (c->pipe_fd >= 0 && !c->timed_out)
		return; /* the rest of its answer is still on its way */
	struct control_client *cl = control_client_by_id(&r->control, c->client);
	char *out = c->out;
	size_t len = c->len;
	out[len] = '\0';
	/* Printable, one line: it goes into a JSON reply and the log. */
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20)
			out[i] = out[i] == '\n' ? ';' : ' ';
	bool accepted = strncmp(out, "baton-state-ok", 14) == 0;
	int status = c->wait_status;
	bool ok = !c->timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0 && accepted;
	char how[64];
	if (c->timed_out)
		snprintf(how, sizeof(how), "gave no answer within %" PRIu64 "s", CHECK_TIMEOUT_USEC / USEC_PER_SEC);
	else
		wait_status_describe(status, how);
	_cleanup_free_ char *why = NULL;
	if (!ok && len > 0 && !accepted)
		why = strdup_printf("%s: it does not accept this state: %s (it %s)", strempty(c->binary), out, how);
	else if (!ok)
		why = strdup_printf("%s: it does not accept this state (asked with --upgrade-check, it %s%s)",
				    strempty(c->binary), how,
				    !c->timed_out && accepted ? "" : " without saying baton-state-ok");
	check_clear(c);
	if (!cl)
		return; /* it went away meanwhile */
	if (ok) {
		log_debug("upgrade: the new binary accepts the state");
		cl->upgrade_phase = UPGRADE_CHECKED;
	} else
		upgrade_failed(r, cl, why ? why : "out of memory");
}

bool run_upgrade_reaped(struct run *r, pid_t pid, int wait_status) {
	struct upgrade_check *c = &r->check;
	if (!c->client || c->reaped || pid != c->pid)
		return false;
	c->reaped = true;
	c->wait_status = wait_status;
	check_done(r);
	return true;
}

void run_upgrade_output(struct run *r) {
	check_read(&r->check);
	check_done(r);
}

uint64_t run_upgrade_deadline(const struct run *r) {
	return r->check.client && !r->check.timed_out ? r->check.deadline_usec : USEC_INFINITY;
}

void run_upgrade_timer(struct run *r, uint64_t now) {
	struct upgrade_check *c = &r->check;
	if (!c->client || c->timed_out || c->deadline_usec > now)
		return;
	/* Reaped as any child; check_done() then answers without waiting for the pipe (a grandchild may hold it). */
	c->timed_out = true;
	if (!c->reaped)
		(void)kill(c->pid, SIGKILL);
	check_done(r);
}

void run_upgrade_abort(struct run *r) {
	struct upgrade_check *c = &r->check;
	if (c->client && !c->reaped)
		(void)kill(c->pid, SIGKILL);
	check_clear(c);
}

static void set_cloexec(const int *fds, size_t n, bool on) {
	for (size_t i = 0; i < n; i++)
		(void)fd_cloexec(fds[i], on);
}

/* The exec of binary with the state in memfd; the state's fds, the state itself and the way back stay open. Returns
 * only when it failed (negative errno), with nothing changed. */
static int exec_with_state(const struct run *r, const char *binary, int memfd, const struct ser_fds *kept) {
	int own[2] = {memfd, r->exe_fd};
	char state_fd[16], exe_fd[16];
	snprintf(state_fd, sizeof(state_fd), "%d", memfd);
	snprintf(exe_fd, sizeof(exe_fd), "%d", r->exe_fd);
	set_cloexec(kept->fds, kept->n, false);
	set_cloexec(own, 2, false);
	int k;
	if (setenv(ENV_STATE, state_fd, 1) < 0 || setenv(ENV_FALLBACK, exe_fd, 1) < 0)
		k = -ENOMEM;
	else {
		fflush(stdout);
		fflush(stderr);
		execve(binary, r->argv, environ);
		k = -errno;
	}
	/* Still here: nothing changed. */
	(void)unsetenv(ENV_STATE);
	(void)unsetenv(ENV_FALLBACK);
	set_cloexec(kept->fds, kept->n, true);
	set_cloexec(own, 2, true);
	return k;
}

/* The exec of the new binary, which the check accepted. Returns only when it failed (cl has been answered). */
static void upgrade_exec(struct run *r, struct control_client *cl) {
	_cleanup_free_ char *why = NULL;
	const char *binary = binary_of(r, cl, &why);
	if (!binary) {
		upgrade_failed(r, cl, why);
		return;
	}
	/* The state as it is now: more may have happened since the check read it. */
	struct ser_fds kept = {0};
	_cleanup_close_ int memfd = state_now(r, cl, cl->request_usec ? cl->request_usec : now_usec(), &kept, &why);
	if (memfd < 0) {
		upgrade_failed(r, cl, why);
		return;
	}
	log_info("upgrade: baton %s (pid %d) hands over to %s", baton_version, (int)getpid(), binary);
	int k = exec_with_state(r, binary, memfd, &kept);
	free(kept.fds);
	why = strdup_printf("cannot execute %s: %s", binary, strerror(-k));
	upgrade_failed(r, cl, why);
}

/* Whether something is starting: an upgrade waits for it to be ready (or to fail). */
static const char *busy(const struct run *r) {
	/* A reload's confirm window too: its state (the window, its probe, the config it would commit) is waited for,
	 * not carried. */
	if (r->sup.state == SUP_RELOADING || r->sup.state == SUP_CONFIRMING)
		return "a reload";
	if (r->sup.state == SUP_STARTING)
		return "the start";
	/* What baton holds for systemd would be lost with this process: it goes first. */
	if (notify_upstream_held() > 0)
		return "systemd to take the messages baton holds for it (its notify socket is full)";
	for (const struct generation *g = r->sup.generations; g; g = g->next)
		if (g->state == GEN_STARTING)
			return "a generation's start";
	return NULL;
}

/* Whether the client hung up (both directions: `printf 'upgrade\n' | socat` shuts down only its writing side). */
static bool client_gone(const struct control_client *cl) {
	struct pollfd pfd = {.fd = cl->fd, .events = 0};
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR));
}

void run_upgrade_pending(struct run *r) {
	for (struct control_client *cl = r->control.clients, *next; cl; cl = next) {
		next = cl->next;
		if (!cl->has_request || cl->request != CONTROL_UPGRADE || !cl->upgrade_phase)
			continue;
		bool checking = cl->upgrade_phase == UPGRADE_CHECKING;
		if (client_gone(cl)) {
			log_info("upgrade: the client that asked for it went away; not upgrading");
			if (checking)
				run_upgrade_abort(r);
			control_client_close(&r->control, cl);
			continue;
		}
		if (r->sup.state == SUP_STOPPING || r->sup.state == SUP_DONE) {
			if (checking)
				run_upgrade_abort(r);
			upgrade_failed(r, cl, "baton is stopping");
			continue;
		}
		/* One upgrade at a time, in the order asked. */
		if (checking)
			return;
		const char *what = busy(r);
		bool checked = cl->upgrade_phase == UPGRADE_CHECKED || cl->upgrade_phase == UPGRADE_CHECKED_WAITING;
		if (what) {
			if (cl->upgrade_phase == UPGRADE_ASKED || cl->upgrade_phase == UPGRADE_CHECKED) {
				log_info("upgrade: waiting for %s to end", what);
				cl->upgrade_phase = checked ? UPGRADE_CHECKED_WAITING : UPGRADE_WAITING;
			}
			return;
		}
		if (checked) {
			upgrade_exec(r, cl);
			/* Failed: the next one waits for the next turn of the loop. */
			return;
		}
		_cleanup_free_ char *why = NULL;
		const char *binary = binary_of(r, cl, &why);
		if (binary && check_start(r, cl, binary, &why) == 0) {
			log_info("upgrade: asking %s whether it can take over", binary);
			cl->upgrade_phase = UPGRADE_CHECKING;
		} else
			upgrade_failed(r, cl, why ? why : "out of memory");
		return;
	}
}

/* ---- the new binary ---- */

int run_upgrade_check(int fd) {
	struct run tmp;
	struct run_handover h;
	_cleanup_free_ char *error = NULL;
	if (run_state_read(fd, false, &tmp, &h, &error) < 0) {
		fprintf(stderr, "%s\n", error ? error : "cannot read the state");
		return EXIT_FAILED;
	}
	run_state_discard(&tmp);
	free(h.fds.fds);
	/* The new binary runs in this environment: one that cannot talk to systemd must not take over. */
	const char *wanted = libsystemd_wanted();
	if (wanted && libsystemd_load() < 0) {
		fprintf(stderr, "%s is set, but libsystemd cannot be loaded: %s\n", wanted, libsystemd_error());
		return EXIT_FAILED;
	}
	printf("baton-state-ok %u %s\n", baton_state_version, baton_version);
	return fflush(stdout) == 0 ? 0 : EXIT_SYSTEM;
}

static int env_fd(const char *name) {
	const char *v = getenv(name);
	uint64_t fd;
	if (!v || parse_uint_max(v, INT_MAX, &fd) < 0)
		return -1;
	return (int)fd;
}

/* Everything the state names is baton's again: watched by a new event loop, closed at the next exec. */
static int take_over(struct run *r, bool going_back, char **ret_error) {
	struct supervisor *s = &r->sup;
	s->loop = &r->loop;
	s->notify_path = r->notify_path;
	/* The socket file is ours (the state names its fd): it is removed at exit like one this binary bound. */
	struct stat st;
	if (r->notify_path[0] == '/' && lstat(r->notify_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		r->notify_dev = st.st_dev;
		r->notify_ino = st.st_ino;
	}
	s->cgroups = r->cgroups.fd >= 0 ? &r->cgroups : NULL;
	for (struct generation *g = s->generations; g; g = g->next)
		g->cgroups = s->cgroups;
	for (struct remnant *rm = r->remnants; rm; rm = rm->next)
		rm->cgroups = s->cgroups;

	if (baton_takeover_fails && !going_back)
		return fail_error(ret_error, -EPROTO, "this test build of baton %s refuses to take over",
				  baton_version);

	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	int k = evloop_open(&r->loop, &mask);
	if (k < 0)
		return fail_error(ret_error, k, "cannot set up the event loop: %s", strerror(-k));
	notify_upstream_watch(&r->loop, TAG_UPSTREAM);
	if ((k = evloop_add(&r->loop, r->notify_fd, EPOLLIN, TAG_NOTIFY)) < 0 ||
	    (r->control.fd >= 0 && (k = evloop_add(&r->loop, r->control.fd, EPOLLIN, TAG_CONTROL)) < 0))
		return fail_error(ret_error, k, "cannot watch the notify or control socket: %s", strerror(-k));
	for (struct control_client *cl = r->control.clients; cl; cl = cl->next)
		if (!cl->has_request && (k = evloop_add(&r->loop, cl->fd, EPOLLIN, TAG(TAG_CLIENT, cl->id))) < 0)
			return fail_error(ret_error, k, "cannot watch control client %u: %s", cl->id, strerror(-k));
	for (struct generation *g = s->generations; g; g = g->next)
		if ((k = generation_watch(&r->loop, g)) < 0)
			return fail_error(ret_error, k, "cannot watch generation %u: %s", g->id, strerror(-k));
	for (struct remnant *rm = r->remnants; rm; rm = rm->next)
		if ((k = remnant_watch(&r->loop, rm)) < 0)
			return fail_error(ret_error, k, "cannot watch what is left of generation %u: %s", rm->id,
					  strerror(-k));
	return 0;
}

/* Back to the binary that handed over, with the same state and why: it answers the client. */
static int go_back(char *const *argv, int memfd, int fallback_fd, const char *why) {
	char fd[16], back[16];
	snprintf(fd, sizeof(fd), "%d", memfd);
	snprintf(back, sizeof(back), "%d", fallback_fd);
	/* The way back is named too, so that the old binary closes it; with ENV_FAILED set it never goes back again. */
	if (setenv(ENV_STATE, fd, 1) < 0 || setenv(ENV_FALLBACK, back, 1) < 0 || setenv(ENV_FAILED, why, 1) < 0)
		return -ENOMEM;
	fflush(stdout);
	fflush(stderr);
	execveat(fallback_fd, "", argv, environ, AT_EMPTY_PATH);
	return -errno;
}

/* The state in memfd, read into r and taken over. On failure r holds nothing and *ret_error says why. */
static int read_and_take_over(int memfd, char *const *argv, bool going_back, struct run *r, struct run_handover *h,
			      char **ret_error) {
	if (memfd < 0)
		return fail_error(ret_error, -EBADF, ENV_STATE " does not name the state");
	int k = run_state_read(memfd, true, r, h, ret_error);
	if (k < 0)
		return k;
	r->argv = argv;
	k = take_over(r, going_back, ret_error);
	if (k < 0) {
		/* Nothing of the state was changed but the event loop, which is thrown away. */
		evloop_close(&r->loop);
		run_state_discard(r);
		free(h->fds.fds);
	}
	return k;
}

/* Taken over: this binary is the way back from now on, and the client that asked hears how the upgrade went
 * (failed: why the new binary could not take over, and this is the old one again). */
static void taken_over(struct run *r, const struct run_handover *h, const char *failed) {
	r->exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (r->exe_fd < 0)
		log_warning_errno(errno, "Failed to open /proc/self/exe: the next upgrade will be refused");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warning_errno(errno, "Failed to become a child subreaper, ignoring");
	set_cloexec(h->fds.fds, h->fds.n, true);

	uint64_t took = now_usec() - h->started_usec;
	if (failed)
		log_warning("upgrade failed, baton %s carries on: %s", baton_version, failed);
	else {
		r->sup.upgrades++;
		log_info("upgraded: baton %s is now baton %s (upgrade %u), in %.1f ms", strempty(r->previous_version),
			 baton_version, r->sup.upgrades, (double)took / 1000.0);
	}
	/* The process name (ps, pidof, systemd's "Main PID: N (baton)") is the binary's file name, as after any exec;
	 * the way back execs an fd, for which kernels before 6.14 name the process after the fd's number. */
	const char *name = r->binary ? strrchr(r->binary, '/') : NULL;
	if (name && name[1])
		(void)prctl(PR_SET_NAME, name + 1);
	struct control_client *cl = h->upgrader ? control_client_by_id(&r->control, h->upgrader) : NULL;
	if (cl && failed) {
		_cleanup_free_ char *reply = strdup_printf("the new binary cannot take over: %s", failed);
		(void)control_client_reply_error(cl, reply ? reply : failed);
		control_client_close(&r->control, cl);
	} else if (cl) {
		_cleanup_free_ char *json =
			status_upgrade_reply(strempty(r->previous_version), r->sup.upgrades, getpid(), took);
		run_client_reply(r, cl, json);
	}
}

int run_upgrade_resume(char *const *argv, struct run *r) {
	int memfd = env_fd(ENV_STATE), fallback_fd = env_fd(ENV_FALLBACK);
	const char *failed_env = getenv(ENV_FAILED);
	_cleanup_free_ char *failed = failed_env ? strdup(failed_env) : NULL;
	(void)unsetenv(ENV_STATE);
	(void)unsetenv(ENV_FALLBACK);
	(void)unsetenv(ENV_FAILED);
	int k = run_block_signals();
	if (k < 0)
		return k;
	log_open();

	struct run_handover h;
	_cleanup_free_ char *error = NULL;
	k = read_and_take_over(memfd, argv, failed != NULL, r, &h, &error);
	if (k < 0) {
		const char *why = error ? error : strerror(-k);
		if (failed || fallback_fd < 0 || memfd < 0) {
			/* The binary that wrote the state cannot read it: there is nothing left to go back to. */
			log_error("Failed to take over baton's state: %s", why);
			if (failed)
				log_error("(after an upgrade failed: %s)", failed);
			return k;
		}
		log_warning("baton %s cannot take over: %s; going back to the binary that handed over", baton_version,
			    why);
		k = go_back(argv, memfd, fallback_fd, why);
		return log_error_errno(k, "Failed to go back to the binary that handed over");
	}
	/* The state and the way back are done with. */
	close(memfd);
	if (fallback_fd >= 0)
		close(fallback_fd);
	taken_over(r, &h, failed);
	free(h.fds.fds);
	malloc_trim(0);
	return 0;
}
