/* The control protocol (baton(1) CONTROL SOCKET): request parsing with its bad lines, the socket's creation, mode and
 * directory, the server side against raw and misbehaving clients, and control_call() against a served socket. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "util.h"

static void test_parse(void) {
	static const struct {
		const char *line;
		int want; /* -1: error */
	} cases[] = {
	    {"reload", CONTROL_RELOAD},
	    {"status", CONTROL_STATUS},
	    {"stop", CONTROL_STOP},
	    {"reload\r", CONTROL_RELOAD},
	    {"  status\t", CONTROL_STATUS},
	    {"\tstop \r", CONTROL_STOP},
	    {"stop\r ", CONTROL_STOP},
	    {"RELOAD", -1},
	    {"Status", -1},
	    {"reloa", -1},
	    {"reloadx", -1},
	    {"re load", -1},
	    {"reload now", -1},
	    {"\rreload", -1},
	    {"upgrade", CONTROL_UPGRADE},
	    {" upgrade \r", CONTROL_UPGRADE},
	    {"upgradex", -1},
	    {"Upgrade", -1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum control_request req = _CONTROL_REQUEST_MAX;
		const char *why = NULL, *arg = "unset";
		size_t arg_len = 99;
		int r = control_parse_request(cases[i].line, &req, &arg, &arg_len, &why);
		if (cases[i].want < 0) {
			CHECK(r == -EINVAL && streq(why, "unknown request") && req == _CONTROL_REQUEST_MAX,
			      "parse '%s' is an unknown request", cases[i].line);
		} else
			CHECK(r == 0 && (int)req == cases[i].want && !why && !arg, "parse '%s' = %s", cases[i].line,
			      control_request_to_string((enum control_request)cases[i].want));
	}

	const char *empties[] = {"", " ", "\t \r", "\r"};
	for (size_t i = 0; i < ARRAY_SIZE(empties); i++) {
		enum control_request req;
		const char *why = NULL, *arg;
		size_t arg_len;
		CHECK(control_parse_request(empties[i], &req, &arg, &arg_len, &why) == -EINVAL &&
			      streq(why, "empty request"),
		      "blank line %zu is an empty request", i);
	}
	/* upgrade's argument: the rest of the line, without the blanks around it (a path may hold blanks). */
	{
		enum control_request req;
		const char *why = NULL, *arg = NULL;
		size_t arg_len = 0;
		CHECK(control_parse_request("  upgrade \t/opt/my baton/bin \r", &req, &arg, &arg_len, &why) == 0 &&
			      req == CONTROL_UPGRADE && arg && arg_len == 17 && strncmp(arg, "/opt/my baton/bin", 17) == 0,
		      "upgrade PATH: the argument is the trimmed rest");
		CHECK(control_parse_request("reload now", &req, &arg, &arg_len, &why) == -EINVAL &&
			      streq(why, "unknown request"),
		      "reload takes no argument");
		CHECK(control_parse_request("upgrade\t", &req, &arg, &arg_len, &why) == 0 && req == CONTROL_UPGRADE &&
			      !arg,
		      "upgrade with only blanks after it has no argument");
	}
	CHECK_STREQ(control_request_to_string(CONTROL_STOP), "stop", "request names");
	CHECK(control_request_to_string(_CONTROL_REQUEST_MAX) == NULL, "no name past the end");
}

/* ---- real sockets ---- */

static char tmpdir[64];

static char *tmp_path(const char *name) {
	char *p = NULL;
	if (asprintf(&p, "%s/%s", tmpdir, name) < 0)
		abort();
	return p;
}

/* A client socket connected to path; non-blocking, so the test never hangs on it. */
static int raw_connect(const char *path) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	return fd;
}

/* Reads what is there (the peer has written it already: unix sockets deliver at once). */
static char *raw_read(int fd) {
	static char buf[4096];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n = poll(&pfd, 1, 2000) == 1 ? read(fd, buf, sizeof(buf) - 1) : -1;
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_open(void) {
	struct control c, c2;
	struct stat st;
	char *err = NULL;
	char *dir = tmp_path("a/b");
	char *path = tmp_path("a/b/baton.sock");

	CHECK(control_open(&c, path, &err) == 0 && c.fd >= 0 && streq(c.path, path), "control_open: %s", strempty(err));
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "the missing parent directories were made");
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600,
	      "the socket file has mode 0600 (got %o)", (unsigned)(st.st_mode & 07777));
	int fl = fcntl(c.fd, F_GETFL), fdfl = fcntl(c.fd, F_GETFD);
	CHECK((fl & O_NONBLOCK) && (fdfl & FD_CLOEXEC), "listening socket is non-blocking and close-on-exec");

	free(err);
	err = NULL;
	CHECK(control_open(&c2, path, &err) == -EADDRINUSE && err && strstr(err, "another process is listening") &&
	          strstr(err, path) && c2.fd == -1,
	      "a second control_open on a live socket fails: %s", strempty(err));
	control_close(&c2); /* safe on a failed open */
	CHECK(stat(path, &st) == 0, "the failed open left the live socket alone");

	control_close(&c);
	CHECK(stat(path, &st) < 0 && errno == ENOENT, "control_close removes the socket file");
	CHECK(c.fd == -1 && !c.path, "control_close resets the struct");

	/* A stale socket: bound, then closed without unlink, as after a SIGKILL. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0, "made a socket");
	close(fd);
	free(err);
	err = NULL;
	CHECK(control_open(&c, path, &err) == 0, "a stale socket file is replaced: %s", strempty(err));

	/* Replaced behind our back (another instance judged ours stale): control_close must not remove theirs. */
	CHECK(unlink(path) == 0, "unlinked our socket");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "another socket at the path");
	control_close(&c);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "control_close leaves a socket that is not ours");
	close(fd);
	unlink(path);

	/* A live socket of another type (connect() says EPROTOTYPE) is someone's too. */
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "a live dgram socket at the path");
	free(err);
	err = NULL;
	CHECK(control_open(&c, path, &err) == -EADDRINUSE && err && strstr(err, "another process is listening"),
	      "a live dgram socket is not replaced: %s", strempty(err));
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "and left in place");
	close(fd);
	unlink(path);

	char *file = tmp_path("regular");
	int ffd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	close(ffd);
	free(err);
	err = NULL;
	CHECK(control_open(&c, file, &err) == -EEXIST && err && strstr(err, "exists and is not a socket"),
	      "a regular file is refused: %s", strempty(err));
	CHECK(stat(file, &st) == 0 && S_ISREG(st.st_mode), "and left in place");

	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	free(err);
	err = NULL;
	CHECK(control_open(&c, longpath, &err) == -ENAMETOOLONG && err && strstr(err, "too long"),
	      "a path longer than sun_path is refused: %s", strempty(err));

	char *under_file = tmp_path("regular/sub/x.sock");
	free(err);
	err = NULL;
	CHECK(control_open(&c, under_file, &err) < 0 && err && strstr(err, "cannot create directory"),
	      "a file in the way of the directory: %s", strempty(err));

	free(err);
	free(under_file);
	free(file);
	free(dir);
	free(path);
}

static void test_server_side(void) {
	struct control c;
	struct control_client *cl = NULL;
	char *err = NULL;
	char *path = tmp_path("server.sock");
	struct json_buf b = {0};

	CHECK(control_open(&c, path, &err) == 0, "open: %s", strempty(err));
	CHECK(control_accept(&c, &cl, NULL) == -EAGAIN, "accept with nothing pending is -EAGAIN");

	/* A request split over two writes, then half-closed: it still gets its reply. */
	int fd = raw_connect(path);
	uint64_t before = now_usec();
	CHECK(control_accept(&c, &cl, NULL) == 0 && cl && c.n_clients == 1 && cl->id == 1, "accepted the first client");
	CHECK(cl->deadline_usec >= before + CONTROL_REQUEST_TIMEOUT_USEC &&
	          cl->deadline_usec <= now_usec() + CONTROL_REQUEST_TIMEOUT_USEC,
	      "a silent client has its request deadline set");
	CHECK(fcntl(cl->fd, F_GETFL) & O_NONBLOCK, "client fd is non-blocking");
	CHECK(control_client_read(cl) == 0, "nothing sent yet: 0");
	CHECK(write(fd, " rel", 4) == 4, "wrote part");
	CHECK(control_client_read(cl) == 0 && !cl->has_request, "partial line: 0");
	CHECK(write(fd, "oad\r\nstatus\n", 12) == 12, "wrote the rest and a second request");
	shutdown(fd, SHUT_WR);
	CHECK(control_client_read(cl) == 1 && cl->has_request && cl->request == CONTROL_RELOAD,
	      "complete request parsed");
	CHECK(cl->deadline_usec == USEC_INFINITY, "deadline cleared once the request is in");
	CHECK(cl->eof, "EOF after the request is noted");
	CHECK(control_client_read(cl) == 0 && cl->request == CONTROL_RELOAD,
	      "the second request is ignored; EOF is no error");
	CHECK(control_client_by_id(&c, 1) == cl && control_client_by_id(&c, 99) == NULL, "control_client_by_id");
	json_append(&b, "{\"ok\":true,\"msg\":");
	json_append_string(&b, "done");
	json_append(&b, "}");
	char *reply = json_buf_take(&b);
	CHECK(control_client_reply(cl, reply) == 0, "reply sent");
	CHECK_STREQ(raw_read(fd), "{\"ok\":true,\"msg\":\"done\"}\n", "the half-closed client got its reply");
	CHECK(control_client_reply(cl, "{\"a\":\n1}") == -EINVAL, "a reply with a newline is refused");
	free(reply);
	control_client_close(&c, cl);
	CHECK(c.n_clients == 0 && !c.clients, "client closed");
	close(fd);

	/* Peer closes before a full line. */
	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0 && cl->id == 2, "second client gets id 2");
	CHECK(write(fd, "sta", 3) == 3, "wrote part");
	close(fd);
	CHECK(control_client_read(cl) == -ECONNRESET, "EOF before a full line is -ECONNRESET");
	control_client_close(&c, cl);

	/* Too long: no newline within CONTROL_LINE_MAX bytes. */
	char big[CONTROL_LINE_MAX + 10];
	memset(big, 'a', sizeof(big));
	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0, "accepted");
	CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big), "wrote a long line");
	CHECK(control_client_read(cl) == -EMSGSIZE, "a too long line is -EMSGSIZE");
	CHECK_STREQ(raw_read(fd), "{\"ok\":false,\"error\":\"request too long\"}\n", "error reply for a long line");
	control_client_close(&c, cl);
	close(fd);

	/* A long unknown word is echoed cut short: the reply stays one short line. */
	memset(big, 'b', 100);
	big[100] = '\n';
	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0, "accepted");
	CHECK(write(fd, big, 101) == 101, "wrote a long unknown word");
	CHECK(control_client_read(cl) == -EINVAL, "a long unknown word is -EINVAL");
	CHECK_STREQ(raw_read(fd),
		    "{\"ok\":false,\"error\":\"unknown request "
		    "'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...'\"}\n",
		    "the word is cut at 64 bytes");
	control_client_close(&c, cl);
	close(fd);

	/* Exactly CONTROL_LINE_MAX bytes (blanks around the word) is still fine. */
	memset(big, ' ', CONTROL_LINE_MAX);
	memcpy(big, "stop", 4);
	big[CONTROL_LINE_MAX] = '\n';
	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0, "accepted");
	CHECK(write(fd, big, CONTROL_LINE_MAX + 1) == CONTROL_LINE_MAX + 1, "wrote a maximal line");
	CHECK(control_client_read(cl) == 1 && cl->request == CONTROL_STOP, "a line of exactly CONTROL_LINE_MAX is ok");
	control_client_close(&c, cl);
	close(fd);

	/* A NUL byte. */
	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0, "accepted");
	CHECK(write(fd, "stop\0x\n", 7) == 7, "wrote a line with a NUL");
	CHECK(control_client_read(cl) == -EINVAL, "a NUL byte is -EINVAL");
	CHECK_STREQ(raw_read(fd), "{\"ok\":false,\"error\":\"invalid request\"}\n", "error reply for a NUL");
	control_client_close(&c, cl);
	close(fd);

	/* Unknown request, with bytes that need escaping. */
	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0, "accepted");
	CHECK(write(fd, " RELOAD\"\xff\r\n", 11) == 11, "wrote an unknown request");
	CHECK(control_client_read(cl) == -EINVAL, "unknown request is -EINVAL");
	char *line = raw_read(fd), *why = NULL;
	CHECK_STREQ(line, "{\"ok\":false,\"error\":\"unknown request 'RELOAD\\\"\\ufffd'\"}\n",
	            "error reply names the word, escaped");
	CHECK(json_get_string(line, "error", &why) == 0 && streq(why, "unknown request 'RELOAD\"\xef\xbf\xbd'"),
	      "and it parses back");
	free(why);
	control_client_close(&c, cl);
	close(fd);

	fd = raw_connect(path);
	CHECK(control_accept(&c, &cl, NULL) == 0, "accepted");
	CHECK(write(fd, "\n", 1) == 1, "wrote an empty line");
	CHECK(control_client_read(cl) == -EINVAL, "empty request is -EINVAL");
	CHECK_STREQ(raw_read(fd), "{\"ok\":false,\"error\":\"empty request\"}\n", "error reply for an empty line");
	control_client_close(&c, cl);
	close(fd);

	/* Too many connections. */
	int fds[CONTROL_CLIENTS_MAX + 1];
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		fds[i] = raw_connect(path);
	int accepted = 0;
	for (size_t i = 0; i < CONTROL_CLIENTS_MAX; i++)
		accepted += control_accept(&c, &cl, NULL) == 0;
	CHECK(accepted == CONTROL_CLIENTS_MAX && c.n_clients == CONTROL_CLIENTS_MAX, "accepted %d clients", accepted);
	struct ucred peer = {0};
	CHECK(control_accept(&c, &cl, &peer) == -EBUSY, "one more is -EBUSY");
	CHECK(peer.pid == getpid() && peer.uid == getuid(), "-EBUSY says who was refused");
	CHECK_STREQ(raw_read(fds[CONTROL_CLIENTS_MAX]), "{\"ok\":false,\"error\":\"too many control connections\"}\n",
	            "and gets told why");
	CHECK(c.n_clients == CONTROL_CLIENTS_MAX, "the refused one is not counted");
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);

	/* A client that does not read its replies is dropped rather than blocking us. */
	cl = c.clients;
	int r = 0;
	for (int i = 0; i < 100000 && r == 0; i++)
		r = control_client_reply(
		    cl, "{\"filler\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
	CHECK(r == -EAGAIN || r == -EPIPE || r == -ECONNRESET,
	      "a reply that cannot go out fails instead of blocking (%d)", r);

	control_close(&c);
	CHECK(c.n_clients == 0 && !c.clients, "control_close closes every client");
	free(path);
}

/* ---- control_call against a server in this process, the client in a child ---- */

struct call_result {
	int r;
	char text[8192];
};

/* Forks a child that runs control_call() (as uid, unless it is 0) and writes its result to a pipe. */
static pid_t spawn_client(const char *path, const char *request, uint64_t timeout, bool wait_close, uid_t uid,
                          int *ret_pipe) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		abort();
	pid_t pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(p[0]);
		if (uid != 0 && (setgid(uid) < 0 || setuid(uid) < 0))
			_exit(2);
		char *reply = NULL, *err = NULL;
		int r = control_call(path, request, timeout, wait_close, &reply, &err);
		dprintf(p[1], "%d %s", r, r >= 0 ? reply : err);
		_exit(0);
	}
	close(p[1]);
	*ret_pipe = p[0];
	return pid;
}

enum server_mode {
	SERVE_REPLY, /* reply to every request, then close the client */
	SERVE_KEEP_OPEN, /* reply, but keep the connection open (wait_for_close must time out) */
	SERVE_SILENT, /* never reply */
};

/* Runs the server side with the module's functions until the client child reports; returns its result. */
static void serve(struct control *c, int pipefd, enum server_mode mode, int *ret_accept, struct call_result *res) {
	uint64_t deadline = now_usec() + 10 * USEC_PER_SEC;
	char buf[sizeof(res->text) + 16];
	size_t len = 0;

	*ret_accept = 1;
	for (;;) {
		struct pollfd pfd[2 + CONTROL_CLIENTS_MAX];
		struct control_client *cls[CONTROL_CLIENTS_MAX];
		size_t n = 0;
		pfd[n++] = (struct pollfd){.fd = pipefd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
		for (struct control_client *cl = c->clients; cl; cl = cl->next) {
			cls[n - 2] = cl;
			pfd[n++] = (struct pollfd){.fd = cl->fd, .events = cl->eof ? 0 : POLLIN};
		}
		if (now_usec() > deadline || poll(pfd, n, 1000) < 0)
			break;

		if (pfd[0].revents) {
			ssize_t k = read(pipefd, buf + len, sizeof(buf) - 1 - len);
			if (k <= 0)
				break;
			len += (size_t)k;
		}
		if (pfd[1].revents & POLLIN) {
			struct control_client *cl;
			*ret_accept = control_accept(c, &cl, NULL);
		}
		for (size_t i = 2; i < n; i++) {
			struct control_client *cl = cls[i - 2];
			if (!pfd[i].revents)
				continue;
			int r = pfd[i].revents & POLLIN ? control_client_read(cl) : -ECONNRESET;
			if (r < 0) {
				control_client_close(c, cl);
				continue;
			}
			if (r == 1 && mode != SERVE_SILENT) {
				struct json_buf b = {0};
				json_append(&b, "{\"ok\":true,\"request\":");
				json_append_string(&b, control_request_to_string(cl->request));
				json_append(&b, "}");
				char *json = json_buf_take(&b);
				control_client_reply(cl, json);
				free(json);
				if (mode == SERVE_REPLY)
					control_client_close(c, cl);
			}
		}
	}
	buf[len] = '\0';
	res->r = -9999;
	int off = 0;
	if (sscanf(buf, "%d %n", &res->r, &off) >= 1)
		snprintf(res->text, sizeof(res->text), "%s", buf + off);
	else
		res->text[0] = '\0';
	while (c->clients)
		control_client_close(c, c->clients);
}

static void call(struct control *c, const char *request, uint64_t timeout, bool wait_close, uid_t uid,
                 enum server_mode mode, int *ret_accept, struct call_result *res) {
	int pipefd, status;
	pid_t pid = spawn_client(c->path, request, timeout, wait_close, uid, &pipefd);
	serve(c, pipefd, mode, ret_accept, res);
	close(pipefd);
	waitpid(pid, &status, 0);
}

static void test_call(void) {
	struct control c;
	struct call_result res;
	char *err = NULL, *path = tmp_path("call/baton.sock"), *s = NULL;
	int acc;
	bool ok;

	CHECK(control_open(&c, path, &err) == 0, "open: %s", strempty(err));

	call(&c, "status", 5 * USEC_PER_SEC, false, 0, SERVE_REPLY, &acc, &res);
	CHECK(res.r == 0 && acc == 0, "control_call status: %d %s", res.r, res.text);
	CHECK_STREQ(res.text, "{\"ok\":true,\"request\":\"status\"}", "the reply line, without its newline");
	CHECK(json_get_bool(res.text, "ok", &ok) == 0 && ok, "ok:true");

	call(&c, "stop", USEC_INFINITY, true, 0, SERVE_REPLY, &acc, &res);
	CHECK(res.r == 0, "control_call stop with wait_for_close returns after the close: %d %s", res.r, res.text);
	CHECK(json_get_string(res.text, "request", &s) == 0 && streq(s, "stop"), "stop reply");
	free(s);
	s = NULL;

	call(&c, "stop", 300 * USEC_PER_MSEC, true, 0, SERVE_KEEP_OPEN, &acc, &res);
	CHECK(res.r == -ETIMEDOUT && strstr(res.text, "did not exit within 300ms"),
	      "wait_for_close times out when the server stays: %d %s", res.r, res.text);

	call(&c, "reload", 200 * USEC_PER_MSEC, false, 0, SERVE_SILENT, &acc, &res);
	CHECK(res.r == -ETIMEDOUT, "a silent server times out: %d", res.r);
	CHECK_STREQ(res.text, "no reply from baton within 200ms", "timeout message");

	call(&c, "bogus", 5 * USEC_PER_SEC, false, 0, SERVE_REPLY, &acc, &res);
	CHECK(res.r == 0 && json_get_bool(res.text, "ok", &ok) == 0 && !ok &&
	          json_get_string(res.text, "error", &s) == 0 && streq(s, "unknown request 'bogus'"),
	      "an unknown request gets an error reply: %s", res.text);
	free(s);
	s = NULL;

	/* Peer credentials: open the file and directory up, so only SO_PEERCRED stands in the way. */
	if (geteuid() != 0) {
		printf("# skipping the peer-credential tests: they need root to setuid(65534)\n");
		goto done;
	}
	char *dir = tmp_path("call");
	chmod(tmpdir, 0755);
	chmod(dir, 0755);
	chmod(path, 0666);
	call(&c, "status", 5 * USEC_PER_SEC, false, 65534, SERVE_REPLY, &acc, &res);
	CHECK(acc == -EPERM, "control_accept refuses uid 65534 (%d)", acc);
	CHECK(res.r == 0 && json_get_bool(res.text, "ok", &ok) == 0 && !ok &&
	          json_get_string(res.text, "error", &s) == 0 && streq(s, "permission denied"),
	      "the other uid reads 'permission denied': %d %s", res.r, res.text);
	free(s);
	s = NULL;

	/* With the file at its real mode, the kernel refuses the connect() itself. */
	chmod(path, 0600);
	call(&c, "status", 5 * USEC_PER_SEC, false, 65534, SERVE_REPLY, &acc, &res);
	CHECK(res.r == -EACCES && strstr(res.text, "permission denied") && acc == 1,
	      "mode 0600 keeps uid 65534 out: %d %s", res.r, res.text);
	chmod(dir, 0700);
	chmod(tmpdir, 0700);
	free(dir);
done:
	control_close(&c);

	char *reply = NULL;
	free(err);
	err = NULL;
	int r = control_call(path, "status", USEC_PER_SEC, false, &reply, &err);
	CHECK(r == -ENOENT && err && strstr(err, "cannot connect to ") && strstr(err, "No such file") && !reply,
	      "no socket: %s", strempty(err));

	/* A stale socket: nobody listens. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bound a socket without listening");
	free(err);
	err = NULL;
	r = control_call(path, "status", USEC_PER_SEC, false, &reply, &err);
	CHECK(r == -ECONNREFUSED && err && strstr(err, "(is baton running?)"), "refused: %s", strempty(err));
	close(fd);
	unlink(path);

	free(err);
	err = NULL;
	CHECK(control_call(path, "a\nb", USEC_PER_SEC, false, &reply, &err) == -EINVAL && !reply,
	      "a request with a newline is refused");

	free(err);
	free(path);
}

/* A server that answers with an endless line: the client gives up past 1 MiB. */
static void test_call_huge_reply(void) {
	char *path = tmp_path("huge.sock"), *err = NULL, *reply = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0, "raw server listening");

	pid_t pid = fork();
	if (pid == 0) {
		static char chunk[65536];
		memset(chunk, 'x', sizeof(chunk));
		int fd = accept(lfd, NULL, NULL);
		for (int i = 0; i < 64; i++)
			if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
				break;
		_exit(0);
	}
	int r = control_call(path, "status", 5 * USEC_PER_SEC, false, &reply, &err);
	CHECK(r == -EMSGSIZE && err && strstr(err, "too long") && !reply, "a reply over 1 MiB: %s", strempty(err));
	close(lfd);
	waitpid(pid, NULL, 0);
	unlink(path);
	free(err);
	free(path);
}

/* control_linger(): EOF reaches the client at once; it returns as soon as every client hung up, and at the timeout
 * for one that never does. */
static void test_linger(void) {
	int a[2], b[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0 &&
		      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0,
	      "socketpairs");
	pid_t pid = fork();
	if (pid == 0) {
		/* The clients: each reads to EOF, then hangs up (b after a, a little later). */
		char buf[16];
		close(a[0]);
		close(b[0]);
		while (read(a[1], buf, sizeof(buf)) > 0)
			;
		close(a[1]);
		while (read(b[1], buf, sizeof(buf)) > 0)
			;
		usleep(50000);
		_exit(0);
	}
	close(a[1]);
	close(b[1]);
	int fds[] = {a[0], b[0]};
	uint64_t t0 = now_usec();
	control_linger(fds, 2, 5 * USEC_PER_SEC);
	uint64_t took = now_usec() - t0;
	CHECK(took >= 40 * USEC_PER_MSEC && took < 2 * USEC_PER_SEC, "linger returns once both hung up (%llu us)",
	      (unsigned long long)took);
	waitpid(pid, NULL, 0);
	close(a[0]);
	close(b[0]);

	/* A client that never hangs up: the timeout bounds the wait. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0, "socketpair");
	t0 = now_usec();
	control_linger(a, 1, 200 * USEC_PER_MSEC);
	took = now_usec() - t0;
	char c;
	CHECK(read(a[1], &c, 1) == 0, "the client sees EOF");
	CHECK(took >= 190 * USEC_PER_MSEC && took < 2 * USEC_PER_SEC, "linger gives up at its timeout (%llu us)",
	      (unsigned long long)took);
	close(a[0]);
	close(a[1]);
}

int main(void) {
	test_parse();
	test_linger();

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-control-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	test_open();
	test_server_side();
	test_call();
	test_call_huge_reply();

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return test_done();
}
