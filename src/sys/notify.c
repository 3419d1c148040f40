#include "notify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "address.h"
#include "evloop.h"
#include "libsystemd.h"
#include "log.h"
#include "util.h"

/* LISTEN_FDNAMES rules, as systemd's fdname_is_valid(): printable ASCII without ':', at most 255 characters; the
 * empty name is allowed. */
static bool fdname_is_valid(const char *s) {
	size_t n = 0;

	for (const char *p = s; *p; p++, n++)
		if (*p < ' ' || *p >= 127 || *p == ':')
			return false;
	return n <= 255;
}

/* Flags count only as exactly "1" (sd_notify(3)): "READY=2" or "READY=true" is ignored, like any value that does
 * not parse. */
static void notify_parse_line(struct notify_msg *m, const char *key, const char *value) {
	uint64_t u;

	if (streq(key, "READY")) {
		if (streq(value, "1"))
			m->ready = true;
	} else if (streq(key, "RELOADING")) {
		if (streq(value, "1"))
			m->reloading = true;
	} else if (streq(key, "STOPPING")) {
		if (streq(value, "1"))
			m->stopping = true;
	} else if (streq(key, "BARRIER")) {
		if (streq(value, "1"))
			m->barrier = true;
	} else if (streq(key, "FDSTORE")) {
		if (streq(value, "1"))
			m->fdstore = true;
	} else if (streq(key, "FDSTOREREMOVE")) {
		if (streq(value, "1"))
			m->fdstore_remove = true;
	} else if (streq(key, "FDPOLL")) {
		if (streq(value, "0") || streq(value, "1"))
			m->fdpoll = value[0] == '1';
	} else if (streq(key, "WATCHDOG")) {
		if (streq(value, "1"))
			m->watchdog = true;
		else if (streq(value, "trigger"))
			m->watchdog_trigger = true;
	} else if (streq(key, "STATUS")) {
		m->status = value; /* UTF-8 already checked by notify_parse() */
	} else if (streq(key, "FDNAME")) {
		if (fdname_is_valid(value))
			m->fdname = value;
	} else if (streq(key, "ERRNO")) {
		if (parse_uint_max(value, INT_MAX, &u) >= 0)
			m->errno_value = (int)u;
	} else if (streq(key, "EXTEND_TIMEOUT_USEC")) {
		if (parse_uint64(value, &u) >= 0)
			m->extend_timeout_usec = u;
	} else if (streq(key, "MONOTONIC_USEC")) {
		if (parse_uint64(value, &u) >= 0)
			m->monotonic_usec = u;
	} else if (streq(key, "MAINPID")) {
		/* PID 0 means "nobody" and would make the caller watch the wrong process. */
		bool ok = parse_uint_max(value, INT_MAX, &u) >= 0 && u > 0;
		m->mainpid = ok ? (pid_t)u : 0;
		m->mainpid_invalid = !ok;
	}
	/* Unknown keys are ignored: sd_notify(3) reserves the right to add new ones. */
}

int notify_parse(char *buf, size_t len, struct notify_msg *ret) {
	struct notify_msg m = {
		.errno_value = -1,
		.fdpoll = -1,
		.extend_timeout_usec = UINT64_MAX,
		.monotonic_usec = UINT64_MAX,
	};

	/* systemd drops both too: an empty datagram carries nothing, and a NUL would silently cut a line short. */
	if (len == 0 || memchr(buf, '\0', len))
		return -EBADMSG;

	/* Lines are split on '\n' only, as systemd does; a '\r' stays part of the value ("READY=1\r" is not READY=1).
	 * A later line with the same key overrides an earlier one. */
	for (char *line = buf; line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';

		char *eq = strchr(line, '=');
		if (eq) {
			*eq = '\0';
			/* STATUS= is text we show and relay to systemd, which would reject it. Like systemd, only that
			 * line is ignored: the READY=1 beside it still counts. */
			if (streq(line, "STATUS") && !utf8_is_valid(eq + 1))
				m.status = NULL;
			else
				notify_parse_line(&m, line, eq + 1);
		}
		line = nl ? nl + 1 : NULL;
	}

	*ret = m;
	return 0;
}

/* A datagram socket with what the notify socket needs, not bound yet. */
static int notify_socket_new(void) {
	_cleanup_close_ int fd = -1;
	int one = 1, rcvbuf = 1024 * 1024;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;

	/* Without SO_PASSCRED, datagrams come without a sender PID, and baton could not tell its children's messages
	 * from anybody else's. */
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return -errno;

	/* A child that sends STATUS= in a tight loop must not make us lose its READY=1: ask for a large queue.
	 * SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped at net.core.rmem_max. Either way a hint only. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		log_debug_errno(errno, "Failed to enlarge the notify socket's receive buffer, ignoring");
	return TAKE_FD(fd);
}

static int notify_open_abstract(int *ret_fd, char **ret_path) {
	static unsigned counter;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int r;

	_cleanup_close_ int fd = notify_socket_new();
	if (fd < 0)
		return fd;

	/* Abstract names live per network namespace, not per PID namespace: two batons that are both PID 1 of
	 * containers sharing a network namespace would pick the same "<pid>/<counter>". A random part avoids that, and
	 * we retry on the rare collision. */
	for (unsigned attempt = 0;; attempt++) {
		uint64_t rnd;
		char name[sizeof(sa.sun_path)];

		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
			/* Early at boot the pool may not be ready; we need uniqueness here, not secrecy. */
			rnd = now_usec() ^ ((uint64_t)counter << 48);
		int n = snprintf(name, sizeof(name), "baton/%d/notify/%u-%016llx", (int)getpid(), counter++,
				 (unsigned long long)rnd);
		if (n < 0 || (size_t)n >= sizeof(sa.sun_path) - 1)
			return -ENAMETOOLONG;

		/* The abstract namespace: a leading NUL, and the address length covers the name without a trailing
		 * NUL (unix(7)); sd_notify() computes it the same way from "@name". */
		memcpy(sa.sun_path + 1, name, (size_t)n);
		socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
		if (bind(fd, (struct sockaddr *)&sa, salen) >= 0) {
			char *path;
			if (asprintf(&path, "@%s", name) < 0)
				return -ENOMEM;
			*ret_fd = TAKE_FD(fd);
			*ret_path = path;
			return 0;
		}
		r = -errno;
		if (r != -EADDRINUSE || attempt >= 8)
			return r;
	}
}

/* The default notify socket's file name in its directory (notify_default_path()), PID being baton's. */
#define NOTIFY_FILE "notify-%d.sock"

void notify_sweep_stale(const char *path) {
	const char *base = strrchr(path, '/');
	char own[32];
	snprintf(own, sizeof(own), NOTIFY_FILE, (int)getpid());
	if (!base || !streq(base + 1, own))
		return;
	_cleanup_free_ char *dir = strndup(path, (size_t)(base - path));
	DIR *d = dir ? opendir(dir[0] ? dir : "/") : NULL;
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));) {
		char *end;
		if (strncmp(de->d_name, "notify-", 7) != 0)
			continue;
		long pid = strtol(de->d_name + 7, &end, 10);
		if (end == de->d_name + 7 || !streq(end, ".sock") || pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		_cleanup_free_ char *stale = strdup_printf("%s/%s", dir, de->d_name);
		const char *step;
		if (stale && unix_path_clear_stale(stale, SOCK_DGRAM, &step) == 0)
			log_debug("removed %s, left by a baton that is gone", stale);
	}
	closedir(d);
}

/* The notify socket bound at the file path (its directories made, a stale file of a killed baton replaced), mode
 * 0777; its device and inode, for notify_server_remove(). */
static int notify_open_path(const char *path, int *ret_fd, char **ret_path, dev_t *ret_dev, ino_t *ret_ino,
			    char **ret_error) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	struct stat st;
	int r;

	if (n >= sizeof(sa.sun_path))
		return fail_error(ret_error, -ENAMETOOLONG,
				  "notify socket path %s is too long for a unix socket (%zu bytes, at most %zu): set "
				  "notify.socket to a shorter path, or to abstract",
				  path, n, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, n);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);

	_cleanup_free_ char *dir = NULL;
	r = mkdir_parents(path, &dir);
	if (r < 0)
		return fail_error(ret_error, r, "cannot create directory %s for the notify socket: %s",
				  dir ? dir : path, strerror(-r));
	/* A file left behind by a baton that was killed is replaced: nobody can be using it. */
	const char *step = NULL;
	r = unix_path_clear_stale(path, SOCK_DGRAM, &step);
	if (r == -ENOTSOCK)
		return fail_error(ret_error, -EEXIST, "notify socket %s: exists and is not a socket", path);
	if (r == -EADDRINUSE)
		return fail_error(ret_error, r, "notify socket %s: another process is bound to it (set notify.socket)",
				  path);
	if (r < 0)
		return fail_error(ret_error, r, "notify socket %s: cannot replace it (%s): %s", path, strempty(step),
				  strerror(-r));

	_cleanup_close_ int fd = notify_socket_new();
	if (fd < 0)
		return fail_error(ret_error, fd, "notify socket %s: cannot create socket: %s", path, strerror(-fd));
	/* Mode 0777 from the first moment, as systemd's /run/systemd/notify: the program may run as another user
	 * (program.user), and senders are told apart by their credentials (SCM_CREDENTIALS), not by the file. */
	r = bind_with_mode(fd, (const struct sockaddr *)&sa, salen, 0777);
	if (r < 0)
		return fail_error(ret_error, r, "cannot bind the notify socket %s: %s", path, strerror(-r));
	char *p = strdup(path);
	if (!p || lstat(path, &st) < 0) {
		r = p ? -errno : -ENOMEM;
		free(p);
		unlink(path);
		return fail_error(ret_error, r, "notify socket %s: %s", path, strerror(-r));
	}
	*ret_fd = TAKE_FD(fd);
	*ret_path = p;
	*ret_dev = st.st_dev;
	*ret_ino = st.st_ino;
	return 0;
}

int notify_server_open(const char *path, int *ret_fd, char **ret_path, dev_t *ret_dev, ino_t *ret_ino,
		       char **ret_error) {
	if (path)
		return notify_open_path(path, ret_fd, ret_path, ret_dev, ret_ino, ret_error);
	int r = notify_open_abstract(ret_fd, ret_path);
	if (r < 0)
		return fail_error(ret_error, r, "cannot bind an abstract notify socket: %s", strerror(-r));
	*ret_dev = 0;
	*ret_ino = 0;
	return 0;
}

int notify_default_path(char **ret) {
	const char *rt = getenv("RUNTIME_DIRECTORY"), *xdg = getenv("XDG_RUNTIME_DIR");
	int pid = (int)getpid(), r;

	/* systemd's RuntimeDirectory= (a list when several are configured: the first is baton's). */
	if (rt && rt[0] == '/')
		r = asprintf(ret, "%.*s/" NOTIFY_FILE, (int)strcspn(rt, ":"), rt, pid);
	else if (geteuid() == 0)
		r = asprintf(ret, "/run/baton/" NOTIFY_FILE, pid);
	else if (xdg && xdg[0] == '/')
		r = asprintf(ret, "%s/baton/" NOTIFY_FILE, xdg, pid);
	else
		r = asprintf(ret, "/tmp/baton-%u/" NOTIFY_FILE, (unsigned)geteuid(), pid);
	if (r < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

void notify_server_remove(const char *path, dev_t dev, ino_t ino) {
	struct stat st;
	/* Only the file we bound: another baton may have replaced it after judging ours stale. */
	if (path && path[0] == '/' && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev &&
	    st.st_ino == ino && unlink(path) < 0)
		log_debug_errno(errno, "Failed to remove the notify socket %s, ignoring", path);
}

void notify_datagram_close_fds(struct notify_datagram *d) {
	for (size_t i = 0; i < d->n_fds; i++)
		closep(&d->fds[i]);
	d->n_fds = 0;
}

/* The buffer for datagrams longer than NOTIFY_INLINE_MAX: allocated by the first one, kept for the next. */
static char *large_buffer(void) {
	static char *large;
	if (!large)
		large = malloc(NOTIFY_BUFFER_MAX + 1);
	return large;
}

/* Where the next datagram on fd is received: SIOCINQ tells its length, so that a short one (nearly all are) lands in
 * d->small; a longer one (or one of unknown length) in the large buffer, when it can be had. */
static char *receive_buffer(int fd, struct notify_datagram *d, size_t *ret_room) {
	int queued = 0;
	*ret_room = NOTIFY_INLINE_MAX;
	if (ioctl(fd, SIOCINQ, &queued) < 0 || queued > NOTIFY_INLINE_MAX) {
		char *large = large_buffer();
		if (large) {
			*ret_room = NOTIFY_BUFFER_MAX;
			return large;
		}
	}
	return d->small;
}

/* What came with a datagram besides its data: the fds it passed, into d, and the sender's credentials (pid 0 and uid
 * -1 without them). */
static void take_ancillary(struct msghdr *mh, struct notify_datagram *d, pid_t *ret_pid, uid_t *ret_uid) {
	*ret_pid = 0;
	*ret_uid = (uid_t)-1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int rfd;
				memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (d->n_fds < NOTIFY_FD_MAX)
					d->fds[d->n_fds++] = rfd;
				else /* cannot happen with one SCM_RIGHTS of at most SCM_MAX_FD, but never leak */
					closep(&rfd);
			}
		} else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			*ret_pid = uc.pid;
			*ret_uid = uc.uid;
		}
	}
}

int notify_receive(int fd, struct notify_datagram *ret) {
	/* Room for the credentials and the most fds the kernel passes in one message (SCM_MAX_FD), so a legitimate
	 * sender can never cause MSG_CTRUNC. */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NOTIFY_FD_MAX)];
	} control;
	size_t room;
	char *buf = receive_buffer(fd, ret, &room);
	struct iovec iov = {.iov_base = buf, .iov_len = room};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = &control,
		.msg_controllen = sizeof(control),
	};
	ssize_t n;

	/* pid, uid and fds are only filled in below. Whatever happens, ret never holds fds the caller would have to
	 * close unless we return 1. */
	ret->n_fds = 0;

	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;

	pid_t pid;
	uid_t uid;
	take_ancillary(&mh, ret, &pid, &uid);

	/* With MSG_TRUNC, recvmsg() returns the datagram's real length: larger than our buffer means it was cut, and
	 * systemd drops such messages too. */
	if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > room) {
		notify_datagram_close_fds(ret);
		return (size_t)n <= NOTIFY_BUFFER_MAX ? -ENOMEM : -EMSGSIZE;
	}
	/* MSG_CTRUNC: the kernel dropped (and closed) fds or credentials that did not fit. Our buffer holds the most
	 * any sender can pass, so this means something unexpected (e.g. an LSM adding a cmsg); without complete
	 * credentials we cannot attribute the message, and a BARRIER=1 fd may be among the lost ones, so the datagram
	 * is dropped like an oversized one. */
	if (mh.msg_flags & MSG_CTRUNC) {
		notify_datagram_close_fds(ret);
		return -EMSGSIZE;
	}

	buf[n] = '\0';
	ret->buf = buf;
	ret->len = (size_t)n;
	ret->pid = pid;
	ret->uid = uid;
	return 1;
}

static int upstream_enabled = -1;

bool notify_upstream_enabled(void) {
	/* Read once: sd_notify() reads the same variable on each call, and it stays in our own environment (children
	 * get an environment built separately, with NOTIFY_SOCKET pointing at baton). */
	if (upstream_enabled < 0) {
		const char *e = getenv("NOTIFY_SOCKET");
		upstream_enabled = e && *e;
	}
	return upstream_enabled;
}

/* ---- Upstream sends that never wait ----
 *
 * libsystemd's sd_notify() sends on a blocking socket: when systemd's notify socket is full (PID 1 busy or stalled,
 * or a parent that stands in for it and does not read), the send waits, and with it baton's loop: no signal, no
 * control command, no reaping, no start. So a message goes to libsystemd only when a probe finds room: a non-blocking
 * datagram socket connected to the same address, connected again before each look (systemd may have made the
 * socket anew), which polls writable exactly when the peer's queue is not full, the test the kernel makes before a
 * send waits (unix_dgram_poll(), unix_recvq_full()). When there is no room, the message waits in a queue of baton's,
 * in order, and the loop watches the probe (notify_upstream_watch()). Another sender can take the last place
 * between the look and the send: a narrow window, instead of a loop that waits for systemd as long as it likes.
 *
 * The queue is bounded: a STATUS= line waiting behind another replaces it (only the last one would be seen), a
 * WATCHDOG=1 already waiting makes a new one moot, and beyond UPSTREAM_QUEUE_MAX messages a new one is dropped
 * with a warning. A message with fds holds duplicates of them while it waits. */

#define UPSTREAM_QUEUE_MAX 256

struct upstream_msg {
	struct upstream_msg *next;
	int *fds; /* duplicates, close-on-exec; closed once sent or dropped */
	size_t n_fds;
	char text[];
};

static struct {
	int probe_fd;
	struct upstream_msg *head, *last;
	size_t n;
	size_t dropped; /* since the queue was last empty */
	struct evloop *loop; /* NULL: not watched (yet, or no longer) */
	uint64_t tag;
	bool watching;
	bool closed; /* notify_upstream_discard() ran: what cannot be sent now is dropped */
} up = {.probe_fd = -1};

/* NOTIFY_SOCKET's address, as address.c makes a unix listener's ("unix:/path", "unix:@name"), read at each look as
 * libsystemd reads it at each send. -EAFNOSUPPORT for others (vsock:...), which libsystemd may know and baton sends
 * to without looking first. */
static int upstream_address(struct sockaddr_storage *ret, socklen_t *ret_len) {
	const char *e = getenv("NOTIFY_SOCKET");
	char text[sizeof("unix:") + ADDR_UNIX_PATH_MAX];
	struct address a;
	if (!e || (e[0] != '/' && e[0] != '@') || (size_t)snprintf(text, sizeof(text), "unix:%s", e) >= sizeof(text) ||
	    addr_parse(text, &a, NULL) < 0 || addr_to_sockaddr(&a, ret, ret_len, NULL) < 0)
		return -EAFNOSUPPORT;
	return 0;
}

static int probe_open(void) {
	if (up.probe_fd < 0 && (up.probe_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -errno;
	return 0;
}

/* 1: systemd's socket has room for a datagram; 0: it is full; negative errno: no look possible (no such socket, an
 * address of another kind), and the send is left to libsystemd, which reports what is wrong. */
static int upstream_room(void) {
	struct sockaddr_storage sa;
	socklen_t len;
	int r = upstream_address(&sa, &len);
	if (r < 0 || (r = probe_open()) < 0)
		return r;
	if (connect(up.probe_fd, (struct sockaddr *)&sa, len) < 0)
		return -errno;
	struct pollfd pfd = {.fd = up.probe_fd, .events = POLLOUT};
	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	return !!(pfd.revents & POLLOUT);
}

static void upstream_watch(bool on) {
	if (!up.loop || up.watching == on || up.probe_fd < 0)
		return;
	int r = on ? evloop_add(up.loop, up.probe_fd, EPOLLOUT, up.tag) : (evloop_remove(up.loop, up.probe_fd), 0);
	if (r < 0)
		log_warning_errno(r, "Failed to watch systemd's notify socket; held messages go with the next one");
	else
		up.watching = on;
}

static int upstream_send_now(const char *text, const int *fds, size_t n_fds) {
	int r = n_fds > 0 ? libsystemd_notify_with_fds(text, fds, (unsigned)n_fds) : libsystemd_notify(text);
	/* A library that cannot be loaded is baton's error, said once by the start that then stops (run.c). */
	if (r == -ELIBACC || r == -ELIBBAD)
		return r;
	if (r < 0)
		return log_warning_errno(r, n_fds > 0 ? "Failed to pass file descriptors to systemd, ignoring"
						      : "Failed to notify systemd, ignoring");
	return 0;
}

static void upstream_msg_free(struct upstream_msg *m) {
	for (size_t i = 0; i < m->n_fds; i++)
		close(m->fds[i]);
	free(m->fds);
	free(m);
}

/* The first line of text, as "KEY=..." for a log line. */
static int first_line_len(const char *text) {
	size_t n = strcspn(text, "\n");
	return (int)(n > 80 ? 80 : n);
}

static bool status_only(const char *text) {
	return strncmp(text, "STATUS=", strlen("STATUS=")) == 0 && !strchr(text, '\n');
}

static void upstream_enqueue(const char *text, const int *fds, size_t n_fds) {
	if (n_fds == 0 && streq(text, "WATCHDOG=1"))
		for (struct upstream_msg *m = up.head; m; m = m->next)
			if (m->n_fds == 0 && streq(m->text, "WATCHDOG=1"))
				return;
	if (up.closed) {
		log_debug("exiting: not holding %.*s for systemd's full notify socket", first_line_len(text), text);
		return;
	}
	if (up.n >= UPSTREAM_QUEUE_MAX) {
		/* Said once until the socket takes messages again, not once per message. */
		bool first = up.dropped++ == 0;
		log_internal(first ? LOG_WARNING : LOG_DEBUG, 0,
			     "systemd's notify socket is still full with %zu messages held for it: dropping %.*s%s",
			     up.n, first_line_len(text), text, first ? " and any further ones until it has room" : "");
		return;
	}
	size_t len = strlen(text);
	struct upstream_msg *m = malloc(sizeof(*m) + len + 1);
	if (!m) {
		log_warning_errno(-ENOMEM, "Failed to hold a message for systemd, dropped %.*s", first_line_len(text),
				  text);
		return;
	}
	*m = (struct upstream_msg){0};
	memcpy(m->text, text, len + 1);
	if (n_fds > 0 && !(m->fds = calloc(n_fds, sizeof(int)))) {
		free(m);
		log_warning_errno(-ENOMEM, "Failed to hold a message for systemd, dropped %.*s", first_line_len(text),
				  text);
		return;
	}
	for (; m->n_fds < n_fds; m->n_fds++) {
		int fd = fcntl(fds[m->n_fds], F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			int r = -errno;
			upstream_msg_free(m);
			log_warning_errno(r, "Failed to hold file descriptors for systemd, dropped %.*s",
					  first_line_len(text), text);
			return;
		}
		m->fds[m->n_fds] = fd;
	}

	if (up.n == 0)
		log_warning("systemd's notify socket is full: holding messages for it until it takes them");
	/* Only the last of several waiting STATUS= lines would be seen. */
	if (up.last && n_fds == 0 && status_only(text) && up.last->n_fds == 0 && status_only(up.last->text)) {
		struct upstream_msg **pp = &up.head;
		while (*pp != up.last)
			pp = &(*pp)->next;
		upstream_msg_free(up.last);
		*pp = up.last = m;
		return;
	}
	*(up.last ? &up.last->next : &up.head) = m;
	up.last = m;
	up.n++;
	upstream_watch(true);
}

/* Sends what waits, in order, while there is room. */
static void upstream_flush(void) {
	size_t sent = 0;
	while (up.head) {
		if (upstream_room() == 0)
			break;
		struct upstream_msg *m = up.head;
		if (!(up.head = m->next))
			up.last = NULL;
		up.n--;
		(void)upstream_send_now(m->text, m->fds, m->n_fds);
		upstream_msg_free(m);
		sent++;
	}
	if (!up.head) {
		upstream_watch(false);
		if (sent > 0 && up.dropped > 0)
			log_warning("systemd's notify socket took the %zu held messages; %zu more were dropped", sent,
				    up.dropped);
		else if (sent > 0)
			log_info("systemd's notify socket took the %zu held messages", sent);
		up.dropped = 0;
	}
}

static int upstream_send(const char *text, const int *fds, size_t n_fds) {
	if (up.head)
		upstream_flush();
	if (!up.head && upstream_room() != 0)
		return upstream_send_now(text, fds, n_fds);
	upstream_enqueue(text, fds, n_fds);
	return 0;
}

void notify_upstream_watch(struct evloop *loop, uint64_t tag) {
	up.loop = loop;
	up.tag = tag;
	/* Opened now, not at the first message: baton holds the same fds whether it has spoken to systemd yet or not
	 * (also in a new binary after `baton upgrade`). A failure here is tried again at the first message. */
	if (notify_upstream_enabled())
		(void)probe_open();
	up.watching = false; /* a new loop (after `baton upgrade`, this is a new process): nothing is in it yet */
	upstream_watch(up.head != NULL);
}

void notify_upstream_writable(void) {
	upstream_flush();
}

size_t notify_upstream_held(void) {
	return up.n;
}

void notify_upstream_discard(void) {
	upstream_flush();
	if (up.n > 0)
		log_warning("%zu messages for systemd were not sent: its notify socket stayed full", up.n);
	up.dropped = 0;
	while (up.head) {
		struct upstream_msg *m = up.head;
		up.head = m->next;
		upstream_msg_free(m);
	}
	up.last = NULL;
	up.n = 0;
	upstream_watch(false);
	up.loop = NULL;
	up.closed = true;
	if (up.probe_fd >= 0)
		close(up.probe_fd);
	up.probe_fd = -1;
}

void notify_upstream(const char *text) {
	if (!notify_upstream_enabled())
		return;
	(void)upstream_send(text, NULL, 0);
}

void notify_upstreamf(const char *fmt, ...) {
	_cleanup_free_ char *text = NULL;
	va_list ap;
	int r;

	if (!notify_upstream_enabled())
		return;

	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r < 0) {
		text = NULL; /* vasprintf leaves it undefined on failure */
		log_warning_errno(-ENOMEM, "Failed to notify systemd, ignoring");
		return;
	}
	notify_upstream(text);
}

int notify_upstream_with_fds(const char *text, const int *fds, size_t n_fds) {
	if (!notify_upstream_enabled())
		return 0;
	return upstream_send(text, fds, n_fds);
}
