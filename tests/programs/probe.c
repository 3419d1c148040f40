/* probe: the child the integration tests run. It reports exactly what it received (ids, argv, environment, open fds
 * and what they are, signal state, cwd, credentials) as "key=value" lines, then behaves as the environment says.
 *
 *   PROBE_OUT=FILE      where the report goes (written to FILE.tmp.PID, then renamed); unset: stdout
 *   PROBE_ENV=A,B       also report env.A and env.B
 *   PROBE_NOTIFY=TEXT   sd_notify TEXT ("\n" becomes a newline); default "READY=1"; "none" sends nothing
 *   PROBE_FORK_ORPHAN=1 double-fork a grandchild that exits at once; its pid is reported as "orphan=PID"
 *   PROBE_SIGNAL=N      raise signal N (default disposition) after reporting and notifying
 *   PROBE_EXIT=N        exit N after reporting and notifying
 *   PROBE_IGNORE_TERM=1 ignore SIGTERM while waiting (SIGINT still ends it)
 *   PROBE_ECHO=1        while waiting, answer each connection on every listening stream socket with "probe PID\n"
 * Otherwise it waits for SIGTERM or SIGINT and exits 0.
 *
 * Values are written as they are, except that a backslash becomes "\\" and a newline "\n", so that every item stays
 * on one line. Everything is collected before anything is opened, so the report shows only what was inherited. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#define MAX_FDS 1024

static volatile sig_atomic_t stop_requested;
static int wake_pipe[2] = {-1, -1};

static void on_stop_signal(int sig) {
	int saved = errno;
	(void)sig;
	stop_requested = 1;
	if (wake_pipe[1] >= 0)
		(void)!write(wake_pipe[1], "x", 1);
	errno = saved;
}

static void die(const char *what) {
	fprintf(stderr, "probe: %s: %s\n", what, strerror(errno));
	exit(99);
}

static void put_escaped(FILE *f, const char *s) {
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_kv(FILE *f, const char *key, const char *value) {
	fprintf(f, "%s=", key);
	put_escaped(f, value);
	fputc('\n', f);
}

static void put_env(FILE *f, const char *name) {
	const char *v = getenv(name);
	fprintf(f, "env.%s=", name);
	put_escaped(f, v ? v : "(unset)");
	fputc('\n', f);
}

/* "127.0.0.1:8080", "[::1]:8080", "/path", "@abstract", "(unnamed)". */
static void put_sockaddr(FILE *f, const struct sockaddr_storage *ss, socklen_t len) {
	char host[INET6_ADDRSTRLEN];
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		fprintf(f, "%s:%u", inet_ntop(AF_INET, &in->sin_addr, host, sizeof host), ntohs(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		fprintf(f, "[%s]:%u", inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host), ntohs(in6->sin6_port));
	} else if (ss->ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
		size_t n =
			len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
		if (n == 0) {
			fputs("(unnamed)", f);
		} else if (un->sun_path[0] == '\0') {
			/* Abstract: the name is all of the remaining bytes, NULs included (unix(7)). */
			fputc('@', f);
			for (size_t i = 1; i < n; i++) {
				unsigned char c = (unsigned char)un->sun_path[i];
				if (c >= 0x20 && c < 0x7f && c != '\\')
					fputc(c, f);
				else
					fprintf(f, "\\x%02x", c);
			}
		} else {
			put_escaped(f, un->sun_path);
		}
	} else {
		fputs("(unknown)", f);
	}
}

static const char *family_name(int family) {
	switch (family) {
	case AF_INET:
		return "inet";
	case AF_INET6:
		return "inet6";
	case AF_UNIX:
		return "unix";
	default:
		return "other";
	}
}

static const char *type_name(int type) {
	switch (type) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	default:
		return "other";
	}
}

/* Describes fd; returns true if it is a listening stream (or seqpacket) socket, one PROBE_ECHO can accept on. */
static bool put_fd(FILE *f, int fd) {
	struct stat st;
	int fdflags = fcntl(fd, F_GETFD);
	int cloexec = fdflags >= 0 && (fdflags & FD_CLOEXEC);
	bool acceptable = false;
	fprintf(f, "fd.%d=", fd);
	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof ss;
		int type = 0, listening = 0;
		socklen_t optlen = sizeof type;
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen);
		optlen = sizeof listening;
		getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			len = 0;
		fprintf(f, "socket family=%s type=%s listening=%d addr=", family_name(ss.ss_family), type_name(type),
			listening ? 1 : 0);
		put_sockaddr(f, &ss, len);
		fputc(' ', f);
		acceptable = listening && (type == SOCK_STREAM || type == SOCK_SEQPACKET);
	} else {
		fputs("other ", f);
	}
	fprintf(f, "cloexec=%d\n", cloexec);
	return acceptable;
}

/* Lists the open fds, leaving out the one opendir() uses. Returns how many went into fds[]. */
static size_t list_fds(int *fds, size_t max) {
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir /proc/self/fd");
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || fd == dirfd(d))
			continue;
		fds[n++] = (int)fd;
	}
	closedir(d);
	/* readdir order is not numeric order */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];
			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	return n;
}

static void put_proc_status(FILE *f, const char *field, const char *key) {
	FILE *st = fopen("/proc/self/status", "re");
	char line[256];
	size_t flen = strlen(field);
	if (!st)
		die("fopen /proc/self/status");
	while (fgets(line, sizeof line, st)) {
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			char *v = line + flen + 1;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			put_kv(f, key, v);
			break;
		}
	}
	fclose(st);
}

/* Forks a child that forks a grandchild and exits at once, so the grandchild's zombie (it exits at once too) is
 * reparented to the nearest subreaper. Returns the grandchild's pid. */
static pid_t fork_orphan(void) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe2");
	pid_t mid = fork();
	if (mid < 0)
		die("fork");
	if (mid == 0) {
		pid_t grandchild = fork();
		if (grandchild == 0)
			_exit(0);
		(void)!write(p[1], &grandchild, sizeof grandchild);
		_exit(0);
	}
	close(p[1]);
	pid_t grandchild = -1;
	if (read(p[0], &grandchild, sizeof grandchild) != sizeof grandchild)
		grandchild = -1;
	close(p[0]);
	waitpid(mid, NULL, 0);
	return grandchild;
}

static void write_report(const char *text, size_t len) {
	const char *out = getenv("PROBE_OUT");
	if (!out || !*out) {
		fwrite(text, 1, len, stdout);
		fflush(stdout);
		return;
	}
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		die("PROBE_OUT");
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(tmp);
	for (size_t off = 0; off < len;) {
		ssize_t r = write(fd, text + off, len - off);
		if (r < 0 && errno != EINTR)
			die("write report");
		off += r > 0 ? (size_t)r : 0;
	}
	if (close(fd) < 0 || rename(tmp, out) < 0)
		die("rename report");
}

static void notify(void) {
	const char *text = getenv("PROBE_NOTIFY");
	if (!text)
		text = "READY=1";
	if (strcmp(text, "none") == 0)
		return;
	char *msg = strdup(text), *w = msg;
	if (!msg)
		die("strdup");
	for (const char *r = text; *r; r++) {
		if (r[0] == '\\' && r[1] == 'n') {
			*w++ = '\n';
			r++;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	int ret = sd_notify(0, msg);
	if (ret < 0)
		fprintf(stderr, "probe: sd_notify: %s\n", strerror(-ret));
	free(msg);
}

static int env_number(const char *name, int dflt) {
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return dflt;
	long n = strtol(v, &end, 10);
	if (*end || n < 0 || n > INT_MAX) {
		fprintf(stderr, "probe: %s=%s is not a number\n", name, v);
		exit(99);
	}
	return (int)n;
}

/* Installed before the report is written, so a test that sends SIGTERM as soon as it sees the report gets exit 0.
 * The handlers write to a pipe, so a signal that arrives just before poll() is not lost (the signal mask is never
 * touched: tests may look at it from outside). */
static void setup_stop_signals(void) {
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		die("pipe2");
	struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: a blocked accept() must return */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	if (env_number("PROBE_IGNORE_TERM", 0) == 1)
		signal(SIGTERM, SIG_IGN);
	else
		sigaction(SIGTERM, &sa, NULL);
}

static void wait_for_stop(const int *echo_fds, size_t n_echo) {
	struct pollfd pfds[MAX_FDS + 1];
	char line[64];
	int len = snprintf(line, sizeof line, "probe %d\n", (int)getpid());
	pfds[0] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
	for (size_t i = 0; i < n_echo; i++)
		pfds[i + 1] = (struct pollfd){.fd = echo_fds[i], .events = POLLIN};
	while (!stop_requested) {
		if (poll(pfds, n_echo + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (size_t i = 1; i <= n_echo && !stop_requested; i++) {
			if (!(pfds[i].revents & POLLIN))
				continue;
			/* The socket stays blocking (its file description is shared with the supervisor and other
			 * generations); if another process took the connection, a signal still interrupts accept(). */
			int c = accept4(pfds[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			(void)!send(c, line, (size_t)len, MSG_NOSIGNAL);
			close(c);
		}
	}
}

int main(int argc, char **argv) {
	static int fds[MAX_FDS], echo_fds[MAX_FDS];
	size_t n_echo = 0;
	char *report = NULL;
	size_t report_len = 0;
	FILE *f = open_memstream(&report, &report_len); /* no fd: the listing below sees only what was inherited */
	if (!f)
		die("open_memstream");

	fprintf(f, "pid=%d\nppid=%d\npgid=%d\nsid=%d\n", (int)getpid(), (int)getppid(), (int)getpgrp(), (int)getsid(0));
	fprintf(f, "argv=%d\n", argc);
	for (int i = 0; i < argc; i++) {
		char key[32];
		snprintf(key, sizeof key, "argv%d", i);
		put_kv(f, key, argv[i]);
	}
	static const char *const fixed_env[] = {"LISTEN_FDS",   "LISTEN_PID",    "LISTEN_FDNAMES", "LISTEN_PIDFDID",
						"WATCHDOG_PID", "WATCHDOG_USEC", "NOTIFY_SOCKET",  "BATON_GENERATION"};
	for (size_t i = 0; i < sizeof fixed_env / sizeof fixed_env[0]; i++)
		put_env(f, fixed_env[i]);
	const char *extra = getenv("PROBE_ENV");
	if (extra) {
		char *copy = strdup(extra), *save = NULL;
		if (!copy)
			die("strdup");
		for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save))
			put_env(f, name);
		free(copy);
	}

	size_t n_fds = list_fds(fds, MAX_FDS);
	fputs("fds=", f);
	for (size_t i = 0; i < n_fds; i++)
		fprintf(f, "%s%d", i ? " " : "", fds[i]);
	fputc('\n', f);
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] >= 3 && put_fd(f, fds[i]))
			echo_fds[n_echo++] = fds[i];

	put_proc_status(f, "SigBlk", "sigmask");
	put_proc_status(f, "SigIgn", "sigign");
	char buf[PATH_MAX];
	ssize_t r = readlink("/proc/self/fd/0", buf, sizeof buf - 1);
	if (r >= 0)
		buf[r] = '\0';
	put_kv(f, "stdin", r >= 0 ? buf : "(closed)");
	put_kv(f, "cwd", getcwd(buf, sizeof buf) ? buf : "(unknown)");
	fprintf(f, "uid=%d\ngid=%d\ngroups=", (int)getuid(), (int)getgid());
	gid_t groups[256];
	int n_groups = getgroups(256, groups);
	for (int i = 0; i < n_groups; i++)
		fprintf(f, "%s%d", i ? " " : "", (int)groups[i]);
	fputc('\n', f);
	/* Last: sd_listen_fds() sets close-on-exec on the fds it accepts, which the lines above report as found. */
	fprintf(f, "sd_listen_fds=%d\n", sd_listen_fds(0));

	if (env_number("PROBE_FORK_ORPHAN", 0) == 1)
		fprintf(f, "orphan=%d\n", (int)fork_orphan());
	if (fclose(f) != 0)
		die("open_memstream");
	setup_stop_signals();
	write_report(report, report_len);
	free(report);

	notify();
	int sig = env_number("PROBE_SIGNAL", 0);
	if (sig > 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		signal(sig, SIG_DFL);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(sig);
	}
	int code = env_number("PROBE_EXIT", -1);
	if (code >= 0)
		return code;
	if (env_number("PROBE_ECHO", 0) != 1)
		n_echo = 0;
	wait_for_stop(echo_fds, n_echo);
	return 0;
}
