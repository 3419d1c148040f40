#include "control.h"

#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include "util.h"

/* An unknown request is echoed in its error reply up to this many bytes. */
#define CONTROL_ECHO_MAX 64

/* control_call() gives up on a reply longer than this: baton's own replies are a few KiB. */
#define CONTROL_REPLY_MAX (1024 * 1024)

static const char request_names[_CONTROL_REQUEST_MAX][sizeof("upgrade")] = {
	[CONTROL_RELOAD] = "reload",
	[CONTROL_STATUS] = "status",
	[CONTROL_STOP] = "stop",
	[CONTROL_UPGRADE] = "upgrade",
};

const char *control_request_to_string(enum control_request r) {
	if ((unsigned)r < _CONTROL_REQUEST_MAX)
		return request_names[r];
	return NULL;
}

static bool is_blank(char c) {
	return c == ' ' || c == '\t';
}

int control_parse_request(const char *line, enum control_request *ret, const char **ret_arg, size_t *ret_arg_len,
			  const char **ret_why) {
	const char *start = line, *end;

	while (is_blank(*start))
		start++;
	end = start + strlen(start);
	/* "\r" comes from clients that speak CRLF (telnet, some netcat builds); blanks may sit on either side of it. */
	while (end > start && (is_blank(end[-1]) || end[-1] == '\r'))
		end--;

	if (end == start) {
		*ret_why = "empty request";
		return -EINVAL;
	}
	for (size_t i = 0; i < _CONTROL_REQUEST_MAX; i++) {
		size_t n = strlen(request_names[i]);
		if ((size_t)(end - start) < n || memcmp(start, request_names[i], n) != 0)
			continue;
		const char *arg = start + n;
		if (arg < end && !(i == CONTROL_UPGRADE && is_blank(*arg)))
			continue;
		while (arg < end && is_blank(*arg))
			arg++;
		*ret = (enum control_request)i;
		*ret_arg = arg < end ? arg : NULL;
		*ret_arg_len = (size_t)(end - arg);
		return 0;
	}
	*ret_why = "unknown request";
	return -EINVAL;
}

/* ---- server side ---- */

static int make_sockaddr(const char *path, struct sockaddr_un *ret, socklen_t *ret_len) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);

	/* sun_path needs room for the terminating NUL as well: Linux accepts a full 108-byte path without it, but other
	 * tools (and the man page's portable advice) do not. */
	if (n == 0 || n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n);
	*ret = sa;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/* The control socket's path made ready to bind: its address, its directory, and no socket file left behind by a
 * baton that was killed (nobody can be using it). */
static int prepare_path(const char *path, struct sockaddr_un *ret_sa, socklen_t *ret_salen, char **ret_error) {
	if (!path || !*path)
		return fail_error(ret_error, -EINVAL, "control socket path is empty");
	int r = make_sockaddr(path, ret_sa, ret_salen);
	if (r < 0)
		return fail_error(ret_error, r, "control socket path %s is too long (%zu bytes, at most %zu)", path,
				  strlen(path), sizeof(ret_sa->sun_path) - 1);

	_cleanup_free_ char *dir = NULL;
	r = mkdir_parents(path, &dir);
	if (r == -ENOMEM)
		return fail_error(ret_error, r, "out of memory");
	if (r < 0)
		return fail_error(ret_error, r, "cannot create directory %s for the control socket: %s", dir,
				  strerror(-r));

	const char *step = NULL;
	r = unix_path_clear_stale(path, SOCK_STREAM, &step);
	if (r == -ENOTSOCK)
		return fail_error(ret_error, -EEXIST, "control socket %s: exists and is not a socket", path);
	if (r == -EADDRINUSE)
		return fail_error(ret_error, r, "control socket %s: another process is listening on it", path);
	if (r < 0)
		return fail_error(ret_error, r, "control socket %s: cannot %s: %s", path, step, strerror(-r));
	return 0;
}

/* fd bound to path, mode 0600, and listening; *ret_st is the socket file's, so that only ours is removed at exit.
 * The file is removed again when a step after the bind fails. */
static int bind_and_listen(int fd, const char *path, const struct sockaddr_un *sa, socklen_t salen, struct stat *ret_st,
			   char **ret_error) {
	/* 0600 from the first moment: there is no window in which another user could connect. */
	int r = bind_with_mode(fd, (const struct sockaddr *)sa, salen, 0600);
	if (r < 0)
		return fail_error(ret_error, r, "cannot bind control socket %s: %s", path, strerror(-r));

	/* fchmod() on a socket fd changes the sockfs inode, not the file, so chmod the path. Belt and braces for
	 * filesystems that ignore the umask (default ACLs). */
	if (chmod(path, 0600) < 0 || stat(path, ret_st) < 0) {
		r = -errno;
		unlink(path);
		return fail_error(ret_error, r, "control socket %s: cannot set its mode: %s", path, strerror(-r));
	}
	if (listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		unlink(path);
		return fail_error(ret_error, r, "cannot listen on control socket %s: %s", path, strerror(-r));
	}
	return 0;
}

int control_open(struct control *c, const char *path, char **ret_error) {
	struct sockaddr_un sa;
	socklen_t salen = 0;
	struct stat st;

	*c = (struct control){.fd = -1};

	int r = prepare_path(path, &sa, &salen, ret_error);
	if (r < 0)
		return r;

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_error(ret_error, -errno, "control socket %s: cannot create socket: %s", path,
				  strerror(errno));
	r = bind_and_listen(fd, path, &sa, salen, &st, ret_error);
	if (r < 0)
		return r;

	char *p = strdup(path);
	if (!p) {
		unlink(path);
		return fail_error(ret_error, -ENOMEM, "out of memory");
	}
	c->fd = TAKE_FD(fd);
	c->path = p;
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	return 0;
}

void control_close(struct control *c) {
	struct stat st;

	while (c->clients)
		control_client_close(c, c->clients);
	if (c->fd >= 0)
		close(c->fd);
	/* A second baton may have replaced our file (e.g. after it judged ours stale); never remove its socket. */
	if (c->path && lstat(c->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	*c = (struct control){.fd = -1};
}

/* Sends one line without blocking and without SIGPIPE. The line (json + '\n') goes out with one sendmsg() when the
 * socket buffer has room, which for replies of a few KiB it always has. */
static int send_line(int fd, const char *json) {
	size_t len = strlen(json);
	struct iovec iov[2] = {
		{.iov_base = (void *)json, .iov_len = len},
		{.iov_base = (void *)"\n", .iov_len = 1},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};

	if (memchr(json, '\n', len))
		return -EINVAL;

	while (mh.msg_iovlen > 0) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		size_t done = (size_t)n;
		while (mh.msg_iovlen > 0 && done >= mh.msg_iov->iov_len) {
			done -= mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + done;
			mh.msg_iov->iov_len -= done;
		}
	}
	return 0;
}

static char *error_json(const char *why) {
	struct json_buf b = {0};
	json_append(&b, "{\"ok\":false,\"error\":");
	json_append_string(&b, why);
	json_append(&b, "}");
	return json_buf_take(&b);
}

static int send_error(int fd, const char *why) {
	_cleanup_free_ char *json = error_json(why);
	/* Without memory, a fixed reply still tells the client that something failed. */
	return send_line(fd, json ? json : "{\"ok\":false,\"error\":\"out of memory\"}");
}

int control_client_reply(struct control_client *cl, const char *json) {
	return send_line(cl->fd, json);
}

int control_client_reply_error(struct control_client *cl, const char *why) {
	return send_error(cl->fd, why);
}

void control_linger(const int *fds, size_t n, uint64_t timeout_usec) {
	struct pollfd pfds[CONTROL_CLIENTS_MAX];
	size_t open = 0;
	for (size_t i = 0; i < n && open < ARRAY_SIZE(pfds); i++) {
		/* EOF after the reply: the client knows baton is done, prints its answer and exits, which hangs up. */
		if (shutdown(fds[i], SHUT_WR) < 0)
			continue;
		pfds[open++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	}
	uint64_t deadline = now_usec() + timeout_usec;
	for (size_t left = open; left > 0;) {
		uint64_t now = now_usec();
		if (now >= deadline)
			return;
		int ms = (int)((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
		int k = poll(pfds, (nfds_t)open, ms);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		for (size_t i = 0; i < open; i++) {
			if (pfds[i].fd < 0 || !pfds[i].revents)
				continue;
			char scratch[256];
			ssize_t r = recv(pfds[i].fd, scratch, sizeof(scratch), MSG_DONTWAIT);
			if (r > 0 || (r < 0 && (errno == EINTR || errno == EAGAIN)))
				continue;
			/* Hung up (or gone with an error): a negative fd is one poll() skips. */
			pfds[i].fd = -1;
			left--;
		}
	}
}

/* Reads and drops what the peer sent and baton did not read, before the fd is closed: closing a unix stream socket
 * with unread bytes makes the peer's next read fail with ECONNRESET (unix_release_sock() in the kernel), and a
 * client such as socat 1.8 then reports the reset instead of baton's reply. Bounded: a peer that keeps writing only
 * gets the reset it asked for. */
static void discard_input(int fd) {
	char scratch[4096];
	for (unsigned i = 0; i < 16; i++) {
		ssize_t n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
	}
}

int control_accept(struct control *c, struct control_client **ret, struct ucred *ret_peer) {
	struct ucred cred = {0};
	socklen_t len = sizeof(cred);

	_cleanup_close_ int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (ret_peer)
		*ret_peer = cred;
	/* The socket file is 0600 already; this also covers a path whose mode was changed by hand, or a descriptor
	 * passed to another user. */
	if (cred.uid != 0 && cred.uid != geteuid()) {
		(void)send_error(fd, "permission denied");
		discard_input(fd);
		return -EPERM;
	}
	if (c->n_clients >= CONTROL_CLIENTS_MAX) {
		(void)send_error(fd, "too many control connections");
		discard_input(fd);
		return -EBUSY;
	}

	struct control_client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	if (++c->last_id == 0) /* 0 means "no client" to callers that store ids */
		++c->last_id;
	cl->id = c->last_id;
	cl->fd = TAKE_FD(fd);
	cl->deadline_usec = now_usec() + CONTROL_REQUEST_TIMEOUT_USEC;
	cl->next = c->clients;
	c->clients = cl;
	c->n_clients++;
	*ret = cl;
	return 0;
}

/* After the request: read and discard whatever else comes, noting EOF. Bounded per call, so a client that floods
 * the socket gets one turn of the event loop like everybody else. */
static int client_drain(struct control_client *cl) {
	char scratch[4096];

	for (unsigned i = 0; i < 16 && !cl->eof; i++) {
		ssize_t n = read(cl->fd, scratch, sizeof(scratch));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? 0 : -errno;
		}
		if (n == 0)
			cl->eof = true;
	}
	return 0;
}

/* A request line that does not parse is answered with why, and the word the client sent. */
static void reply_bad_request(struct control_client *cl, const char *why) {
	const char *word = cl->buf + strspn(cl->buf, " \t");
	size_t wlen = strlen(word);
	while (wlen > 0 && (is_blank(word[wlen - 1]) || word[wlen - 1] == '\r'))
		wlen--;
	/* The word goes through json_append_string() in the reply, which makes any bytes safe; a long one is cut
	 * short, so that the reply stays a line of a few hundred bytes. */
	bool cut = wlen > CONTROL_ECHO_MAX;
	_cleanup_free_ char *msg = wlen > 0 ? strdup_printf("%s '%.*s%s'", why, (int)(cut ? CONTROL_ECHO_MAX : wlen),
							    word, cut ? "..." : "")
					    : NULL;
	(void)control_client_reply_error(cl, msg ? msg : why);
}

/* The request line is complete (its '\n' at nl): it becomes cl's request, or a bad one is answered. Then whatever
 * else the client sent is drained. Returns 1, or negative errno when cl is to be closed. */
static int take_request(struct control_client *cl, char *nl) {
	size_t linelen = (size_t)(nl - cl->buf);
	if (memchr(cl->buf, '\0', linelen)) {
		(void)control_client_reply_error(cl, "invalid request");
		return -EINVAL;
	}
	*nl = '\0';

	enum control_request req;
	const char *why, *arg;
	size_t arg_len;
	if (control_parse_request(cl->buf, &req, &arg, &arg_len, &why) < 0) {
		reply_bad_request(cl, why);
		return -EINVAL;
	}

	if (arg && !(cl->argument = strndup(arg, arg_len))) {
		(void)control_client_reply_error(cl, "out of memory");
		return -ENOMEM;
	}
	cl->has_request = true;
	cl->request = req;
	cl->deadline_usec = USEC_INFINITY;
	cl->request_usec = now_usec();
	cl->len = 0;
	int r = client_drain(cl);
	return r < 0 ? r : 1;
}

int control_client_read(struct control_client *cl) {
	if (cl->has_request)
		return client_drain(cl);

	for (;;) {
		/* buf holds CONTROL_LINE_MAX + 1 bytes and a NUL: a full line plus its '\n', or one byte too many. */
		size_t room = sizeof(cl->buf) - 1 - cl->len;
		ssize_t n = read(cl->fd, cl->buf + cl->len, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? 0 : -errno;
		}
		if (n == 0)
			return -ECONNRESET;

		char *nl = memchr(cl->buf + cl->len, '\n', (size_t)n);
		cl->len += (size_t)n;
		if (nl)
			return take_request(cl, nl);
		if (cl->len > CONTROL_LINE_MAX) {
			(void)control_client_reply_error(cl, "request too long");
			return -EMSGSIZE;
		}
	}
}

struct control_client *control_client_by_id(struct control *c, unsigned id) {
	for (struct control_client *cl = c->clients; cl; cl = cl->next)
		if (cl->id == id)
			return cl;
	return NULL;
}

void control_client_close(struct control *c, struct control_client *cl) {
	for (struct control_client **pp = &c->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			c->n_clients--;
			break;
		}
	if (cl->fd >= 0) {
		discard_input(cl->fd);
		close(cl->fd);
	}
	free(cl->argument);
	free(cl);
}

/* ---- baton upgrade ---- */

/* One number says what a client waits for: the field of its kind of request. */
static uint64_t client_waiting(const struct control_client *cl) {
	if (cl->request == CONTROL_RELOAD)
		return cl->reload_seq;
	if (cl->request == CONTROL_UPGRADE)
		return cl->upgrade_phase;
	return 0;
}

void control_serialize(const struct control *c, struct ser_writer *w) {
	if (c->fd < 0)
		return;
	fprintf(w->f, "control %d %" PRIu64 " %" PRIu64 " %u ", ser_fd(w, c->fd), (uint64_t)c->dev, (uint64_t)c->ino,
		c->last_id);
	ser_put_escaped(w->f, c->path, strlen(c->path));
	fputc('\n', w->f);
	for (const struct control_client *cl = c->clients; cl; cl = cl->next) {
		fprintf(w->f, "client %u %d %" PRIu64 " %d %d %d %" PRIu64 " %" PRIu64 " ", cl->id, ser_fd(w, cl->fd),
			cl->deadline_usec, cl->has_request, cl->eof, (int)cl->request, client_waiting(cl),
			cl->request_usec);
		/* The request line as read so far; once complete, it has been parsed into the fields. */
		ser_put_escaped(w->f, cl->buf, cl->has_request ? 0 : cl->len);
		fputc('\n', w->f);
		ser_put_string(w, "client.argument", cl->argument);
	}
}

static int client_deserialize(struct ser_reader *rd, struct control_client *cl) {
	int req, k;
	uint64_t waiting;
	_cleanup_free_ char *buf = NULL;
	size_t n;
	if ((k = ser_unsigned(rd, &cl->id)) < 0 || (k = ser_take_fd(rd, &cl->fd, false)) < 0 ||
	    (k = ser_number(rd, &cl->deadline_usec)) < 0 || (k = ser_bool(rd, &cl->has_request)) < 0 ||
	    (k = ser_bool(rd, &cl->eof)) < 0 || (k = ser_int(rd, &req)) < 0 || (k = ser_number(rd, &waiting)) < 0 ||
	    (k = ser_number(rd, &cl->request_usec)) < 0 || (k = ser_string(rd, &buf, &n)) < 0)
		return k;
	if (req < 0 || req >= _CONTROL_REQUEST_MAX || n > CONTROL_LINE_MAX)
		return ser_fail(rd, "not a control client");
	cl->request = (enum control_request)req;
	if (cl->request == CONTROL_RELOAD)
		cl->reload_seq = waiting;
	else if (cl->request == CONTROL_UPGRADE && waiting <= UINT32_MAX)
		cl->upgrade_phase = (unsigned)waiting;
	else if (waiting != 0)
		return ser_fail(rd, "a control client waits for what its request does not");
	memcpy(cl->buf, buf, n);
	cl->len = n;
	return 0;
}

int control_deserialize(struct ser_reader *rd, struct control *c) {
	uint64_t dev, ino;
	int k;
	if ((k = ser_take_fd(rd, &c->fd, false)) < 0 || (k = ser_number(rd, &dev)) < 0 ||
	    (k = ser_number(rd, &ino)) < 0 || (k = ser_unsigned(rd, &c->last_id)) < 0 ||
	    (k = ser_string(rd, &c->path, NULL)) < 0)
		return k;
	c->dev = (dev_t)dev;
	c->ino = (ino_t)ino;
	/* In the order written: the order of the list is the order the requests were made in. */
	struct control_client **tail = &c->clients, *cl = NULL;
	while (ser_next(rd) > 0) {
		if (streq(rd->key, "client.argument")) {
			if (!cl)
				return ser_fail(rd, "an argument without its client");
			if ((k = ser_string(rd, &cl->argument, NULL)) < 0)
				return k;
			continue;
		}
		if (!streq(rd->key, "client")) {
			ser_unread(rd);
			break;
		}
		if (c->n_clients >= CONTROL_CLIENTS_MAX)
			return ser_fail(rd, "too many control clients");
		cl = calloc(1, sizeof(*cl));
		if (!cl)
			return -ENOMEM;
		cl->fd = -1;
		*tail = cl;
		tail = &cl->next;
		c->n_clients++;
		if ((k = client_deserialize(rd, cl)) < 0)
			return k;
	}
	return 0;
}

void control_forget(struct control *c) {
	while (c->clients) {
		struct control_client *cl = c->clients;
		c->clients = cl->next;
		free(cl->argument);
		free(cl);
	}
	free(c->path);
	*c = (struct control){.fd = -1};
}

/* ---- client side ---- */

/* Milliseconds for poll() until deadline, rounded up so we never wake a hair early and spin; -1 = no limit. */
static int poll_timeout(uint64_t deadline) {
	if (deadline == USEC_INFINITY)
		return -1;
	uint64_t now = now_usec();
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Connects to baton's control socket at path; the timeout bounds a connect() to a full backlog too. */
static int call_connect(const char *path, uint64_t timeout_usec, int *ret_fd, char **ret_error) {
	char dur[32];
	struct sockaddr_un sa;
	socklen_t salen = 0;
	if (make_sockaddr(path, &sa, &salen) < 0)
		return fail_error(ret_error, -ENAMETOOLONG, "cannot connect to %s: path too long", path);

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail_error(ret_error, -errno, "cannot create socket: %s", strerror(errno));

	/* A unix connect() waits while the listener's backlog is full, for as long as SO_SNDTIMEO allows; so the
	 * timeout covers a wedged baton that stopped accepting too. */
	if (timeout_usec != USEC_INFINITY) {
		struct timeval tv = {.tv_sec = (time_t)(timeout_usec / USEC_PER_SEC),
				     .tv_usec = (suseconds_t)(timeout_usec % USEC_PER_SEC)};
		if (tv.tv_sec == 0 && tv.tv_usec == 0)
			tv.tv_usec = 1; /* 0 would mean "no timeout" */
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (const struct sockaddr *)&sa, salen) < 0) {
		int r = -errno;
		if (r == -EAGAIN || r == -EINPROGRESS)
			return fail_error(ret_error, -ETIMEDOUT,
					  "no reply from baton within %s (its connection queue is full)",
					  format_duration(timeout_usec, dur));
		if (r == -ECONNREFUSED)
			return fail_error(ret_error, r, "cannot connect to %s: %s (is baton running?)", path,
					  strerror(-r));
		if (r == -EACCES || r == -EPERM)
			return fail_error(ret_error, r, "cannot connect to %s: permission denied", path);
		return fail_error(ret_error, r, "cannot connect to %s: %s", path, strerror(-r));
	}
	int r = fd_nonblock(fd, true);
	if (r < 0)
		return fail_error(ret_error, r, "cannot set up the connection: %s", strerror(-r));
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Sends the request line. A peer that answered and closed already (a refused one) is not an error: its reply is
 * worth reading. */
static int call_send(int fd, const char *request, uint64_t deadline, uint64_t timeout_usec, char **ret_error) {
	char dur[32];
	_cleanup_free_ char *line = strdup_printf("%s\n", request);
	if (!line)
		return fail_error(ret_error, -ENOMEM, "out of memory");
	size_t off = 0, len = strlen(line);
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int t = poll_timeout(deadline);
			if (t == 0)
				return fail_error(ret_error, -ETIMEDOUT, "no reply from baton within %s",
						  format_duration(timeout_usec, dur));
			(void)poll(&pfd, 1, t);
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return 0;
		return fail_error(ret_error, -errno, "cannot send the request to baton: %s", strerror(errno));
	}
	return 0;
}

/* Reads into *buf until the reply line is complete (1), more is needed (0), or it failed. */
static int call_read_line(int fd, char **buf, size_t *blen, size_t *bcap, char **ret_error) {
	if (*bcap - *blen < 4096 + 1) {
		if (*bcap >= CONTROL_REPLY_MAX + 4096)
			return fail_error(ret_error, -EMSGSIZE, "reply from baton is too long (over %d bytes)",
					  CONTROL_REPLY_MAX);
		size_t ncap = *bcap ? *bcap * 2 : 4096 + 1;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			return fail_error(ret_error, -ENOMEM, "out of memory");
		*buf = nb;
		*bcap = ncap;
	}
	ssize_t k = read(fd, *buf + *blen, *bcap - *blen - 1);
	if (k < 0) {
		if (errno == EINTR || errno == EWOULDBLOCK)
			return 0;
		return fail_error(ret_error, -errno, "cannot read baton's reply: %s", strerror(errno));
	}
	if (k == 0)
		return fail_error(ret_error, -ECONNRESET, "baton closed the connection without a reply");
	char *nl = memchr(*buf + *blen, '\n', (size_t)k);
	*blen += (size_t)k;
	if (!nl) {
		if (*blen > CONTROL_REPLY_MAX)
			return fail_error(ret_error, -EMSGSIZE, "reply from baton is too long (over %d bytes)",
					  CONTROL_REPLY_MAX);
		return 0;
	}
	*nl = '\0';
	*blen = (size_t)(nl - *buf);
	if (*blen > CONTROL_REPLY_MAX)
		return fail_error(ret_error, -EMSGSIZE, "reply from baton is too long (over %d bytes)",
				  CONTROL_REPLY_MAX);
	return 1;
}

/* After the reply: whether the server closed (1), is still open (0), or reading failed. Anything more it sends is
 * not ours to interpret. */
static int call_read_close(int fd, char **ret_error) {
	char scratch[4096];
	ssize_t k = read(fd, scratch, sizeof(scratch));
	if (k < 0 && (errno == EINTR || errno == EWOULDBLOCK))
		return 0;
	if (k > 0)
		return 0;
	/* EOF, or ECONNRESET: the server went away with our bytes unread; it is gone either way. */
	if (k == 0 || errno == ECONNRESET)
		return 1;
	return fail_error(ret_error, -errno, "cannot read from baton: %s", strerror(errno));
}

int control_call(const char *path, const char *request, uint64_t timeout_usec, bool wait_for_close, char **ret_reply,
		 char **ret_error) {
	uint64_t deadline = timeout_usec == USEC_INFINITY ? USEC_INFINITY : now_usec() + timeout_usec;
	char dur[32];
	_cleanup_close_ int fd = -1;

	if (strchr(request, '\n'))
		return fail_error(ret_error, -EINVAL, "invalid request: contains a newline");
	int r = call_connect(path, timeout_usec, &fd, ret_error);
	if (r < 0)
		return r;
	r = call_send(fd, request, deadline, timeout_usec, ret_error);
	if (r < 0)
		return r;

	_cleanup_free_ char *buf = NULL;
	size_t blen = 0, bcap = 0;
	bool have_line = false;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, poll_timeout(deadline));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail_error(ret_error, -errno, "cannot wait for baton's reply: %s", strerror(errno));
		}
		if (n == 0) {
			format_duration(timeout_usec, dur);
			if (have_line)
				return fail_error(ret_error, -ETIMEDOUT, "baton replied but did not exit within %s",
						  dur);
			return fail_error(ret_error, -ETIMEDOUT, "no reply from baton within %s", dur);
		}
		r = have_line ? call_read_close(fd, ret_error) : call_read_line(fd, &buf, &blen, &bcap, ret_error);
		if (r < 0)
			return r;
		if (r > 0 && (have_line || !wait_for_close))
			break;
		if (r > 0)
			have_line = true;
	}

	/* baton is gone, or, as PID 1, waits for this hangup before its exit kills every process of its namespace,
	 * the caller too: the caller's exit closes the fd, after its output. */
	if (wait_for_close)
		(void)TAKE_FD(fd);
	*ret_reply = TAKE_PTR(buf);
	return 0;
}
