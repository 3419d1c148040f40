/* preload-probe: a legacy server for tests/bats/preload.bats. It binds its own sockets, knows nothing of LISTEN_FDS,
 * and answers every connection (or datagram) with "pid=PID gen=$BATON_GENERATION\n".
 *
 *   --listen=SPEC     bind a socket to SPEC, repeatable: tcp4:HOST:PORT, tcp6:[HOST]:PORT, udp4:HOST:PORT,
 *                     unix:PATH, unix:@NAME
 *   --reuseport       SO_REUSEADDR and SO_REUSEPORT before bind()
 *   --nonblock        sockets created with SOCK_NONBLOCK
 *   --cloexec         sockets created with SOCK_CLOEXEC
 *   --unlink          unlink() a unix PATH before binding it (removing "the stale socket", as servers do)
 *   --listen-twice    listen() twice (backlog 5, then 6)
 *   --rebind          bind and listen, close, then create, bind and listen again
 *   --workers=N       fork N workers after listening; they wait and serve, the parent only waits for them
 *   --wait=MODE       poll (default), ppoll, select, pselect, epoll, accept, accept4 (first socket, blocking),
 *                     recv (first socket, blocking recvfrom())
 *   --wait-file=PATH  before waiting, wait (up to 30 s) until PATH exists
 *   --first-alone     before waiting on all sockets, poll() the first one alone once, without blocking
 *   --own-handler=N   install a handler for signal N before binding
 *
 * Markers go as datagrams to $NOTIFY_SOCKET (never READY=1: that is the shim's to send), so that the test sees them
 * in order with what the shim sends: "PROBE=listening fds=5,6" once every socket listens, "PROBE=waited-first"
 * after --first-alone's poll(), "PROBE=waiting" just before the wait, "PROBE=served" after each answer,
 * "PROBE=own-handler" from --own-handler's handler. Errors go to stderr and exit 3. SIGTERM ends it with 0; it and
 * its workers die with their parent (PR_SET_PDEATHSIG). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 8
#define MAX_WORKERS 16

struct spec {
	const char *text;
	int domain, type;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const char *unix_path; /* a path to unlink() with --unlink, or NULL */
};

enum wait_mode { WAIT_POLL, WAIT_PPOLL, WAIT_SELECT, WAIT_PSELECT, WAIT_EPOLL, WAIT_ACCEPT, WAIT_ACCEPT4, WAIT_RECV };

static volatile sig_atomic_t stop_requested;
static int marker_fd = -1;
static struct sockaddr_un marker_addr;
static socklen_t marker_addr_len;

static void fail(const char *what, const char *detail) {
	fprintf(stderr, "preload-probe: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(errno));
	exit(3);
}

static void usage(const char *why) {
	fprintf(stderr, "preload-probe: %s\n", why);
	exit(3);
}

/* One datagram to NOTIFY_SOCKET; async-signal-safe (socket opened beforehand). */
static void marker(const char *text) {
	if (marker_fd >= 0)
		(void)sendto(marker_fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&marker_addr,
			     marker_addr_len);
}

static void open_marker_socket(void) {
	const char *s = getenv("NOTIFY_SOCKET");
	if (!s || strlen(s) < 2 || strlen(s) >= sizeof marker_addr.sun_path)
		return;
	marker_addr.sun_family = AF_UNIX;
	memcpy(marker_addr.sun_path, s, strlen(s));
	if (s[0] == '@')
		marker_addr.sun_path[0] = '\0';
	marker_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(s));
	marker_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

static void on_stop(int sig) {
	(void)sig;
	stop_requested = 1;
}

static void on_own_signal(int sig) {
	(void)sig;
	marker("PROBE=own-handler");
}

static void parse_spec(const char *text, struct spec *ret) {
	*ret = (struct spec){.text = text};
	const char *colon = strchr(text, ':');
	if (!colon)
		usage("--listen: KIND:ADDRESS expected");
	size_t kind_len = (size_t)(colon - text);
	const char *rest = colon + 1;
	if (kind_len == 4 && strncmp(text, "unix", 4) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ret->addr;
		size_t n = strlen(rest);
		if (n < 2 || n >= sizeof un->sun_path)
			usage("--listen: bad unix name");
		ret->domain = AF_UNIX;
		ret->type = SOCK_STREAM;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, rest, n);
		if (rest[0] == '@') {
			un->sun_path[0] = '\0';
			ret->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		} else {
			ret->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
			ret->unix_path = rest;
		}
		return;
	}
	bool tcp4 = kind_len == 4 && strncmp(text, "tcp4", 4) == 0;
	bool udp4 = kind_len == 4 && strncmp(text, "udp4", 4) == 0;
	bool tcp6 = kind_len == 4 && strncmp(text, "tcp6", 4) == 0;
	if (!tcp4 && !udp4 && !tcp6)
		usage("--listen: unknown kind");
	const char *port_colon = strrchr(rest, ':');
	if (!port_colon)
		usage("--listen: no port");
	char host[64];
	size_t host_len = (size_t)(port_colon - rest);
	if (tcp6) {
		if (host_len < 2 || rest[0] != '[' || rest[host_len - 1] != ']')
			usage("--listen: tcp6 wants [HOST]:PORT");
		rest++;
		host_len -= 2;
	}
	if (host_len >= sizeof host)
		usage("--listen: host too long");
	memcpy(host, rest, host_len);
	host[host_len] = '\0';
	int port = atoi(port_colon + 1);
	ret->type = udp4 ? SOCK_DGRAM : SOCK_STREAM;
	if (tcp6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ret->addr;
		ret->domain = AF_INET6;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			usage("--listen: bad IPv6 address");
		ret->addr_len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ret->addr;
		ret->domain = AF_INET;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			usage("--listen: bad IPv4 address");
		ret->addr_len = sizeof *in;
	}
}

struct options {
	struct spec specs[MAX_SOCKETS];
	size_t n_specs;
	bool reuseport, nonblock, cloexec, unlink_first, listen_twice, rebind, first_alone;
	int workers, own_signal;
	enum wait_mode wait;
	const char *wait_file;
};

static int open_socket(const struct options *o, const struct spec *s) {
	int flags = (o->nonblock ? SOCK_NONBLOCK : 0) | (o->cloexec ? SOCK_CLOEXEC : 0);
	int fd = socket(s->domain, s->type | flags, 0), one = 1;
	if (fd < 0)
		fail("socket", s->text);
	if (o->reuseport && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
			     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0))
		fail("setsockopt", s->text);
	if (o->unlink_first && s->unix_path && unlink(s->unix_path) < 0 && errno != ENOENT)
		fail("unlink", s->unix_path);
	if (bind(fd, (const struct sockaddr *)&s->addr, s->addr_len) < 0)
		fail("bind", s->text);
	if (s->type == SOCK_STREAM) {
		if (listen(fd, 5) < 0)
			fail("listen", s->text);
		if (o->listen_twice && listen(fd, 6) < 0)
			fail("second listen", s->text);
	}
	return fd;
}

static void answer(int fd) {
	char line[64];
	const char *gen = getenv("BATON_GENERATION");
	int len = snprintf(line, sizeof line, "pid=%d gen=%s\n", (int)getpid(), gen ? gen : "");
	int type = 0;
	socklen_t optlen = sizeof type;
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen);
	if (type == SOCK_DGRAM) {
		char buf[512];
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof peer;
		if (recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&peer, &peer_len) < 0)
			return;
		(void)sendto(fd, line, (size_t)len, 0, (struct sockaddr *)&peer, peer_len);
	} else {
		/* Another process sharing the socket may have taken the connection (EAGAIN). */
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		(void)!write(c, line, (size_t)len);
		close(c);
	}
	marker("PROBE=served");
}

/* The blocking modes: the wait is the accept() or recvfrom() itself. */
static void serve_blocking(int fd, enum wait_mode mode) {
	char line[64];
	const char *gen = getenv("BATON_GENERATION");
	int len = snprintf(line, sizeof line, "pid=%d gen=%s\n", (int)getpid(), gen ? gen : "");
	while (!stop_requested) {
		if (mode == WAIT_RECV) {
			char buf[512];
			struct sockaddr_storage peer;
			socklen_t peer_len = sizeof peer;
			if (recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len) < 0)
				continue;
			(void)sendto(fd, line, (size_t)len, 0, (struct sockaddr *)&peer, peer_len);
		} else {
			int c = mode == WAIT_ACCEPT ? accept(fd, NULL, NULL) : accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			(void)!write(c, line, (size_t)len);
			close(c);
		}
		marker("PROBE=served");
	}
}

static void serve(const int *fds, size_t n, enum wait_mode mode) {
	if (mode == WAIT_ACCEPT || mode == WAIT_ACCEPT4 || mode == WAIT_RECV) {
		serve_blocking(fds[0], mode);
		return;
	}
	int ep = -1;
	if (mode == WAIT_EPOLL) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0)
			fail("epoll_create1", NULL);
		for (size_t i = 0; i < n; i++) {
			struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
				fail("epoll_ctl", NULL);
		}
	}
	while (!stop_requested) {
		bool ready[MAX_SOCKETS] = {false};
		int r = 0;
		if (mode == WAIT_POLL || mode == WAIT_PPOLL) {
			struct pollfd p[MAX_SOCKETS];
			for (size_t i = 0; i < n; i++)
				p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
			r = mode == WAIT_POLL ? poll(p, n, -1) : ppoll(p, n, NULL, NULL);
			for (size_t i = 0; r > 0 && i < n; i++)
				ready[i] = p[i].revents & POLLIN;
		} else if (mode == WAIT_SELECT || mode == WAIT_PSELECT) {
			fd_set set;
			int max = -1;
			FD_ZERO(&set);
			for (size_t i = 0; i < n; i++) {
				FD_SET(fds[i], &set);
				max = fds[i] > max ? fds[i] : max;
			}
			r = mode == WAIT_SELECT ? select(max + 1, &set, NULL, NULL, NULL)
						: pselect(max + 1, &set, NULL, NULL, NULL, NULL);
			for (size_t i = 0; r > 0 && i < n; i++)
				ready[i] = FD_ISSET(fds[i], &set);
		} else {
			struct epoll_event evs[MAX_SOCKETS];
			r = epoll_wait(ep, evs, MAX_SOCKETS, -1);
			for (int k = 0; k < r; k++)
				for (size_t i = 0; i < n; i++)
					if (evs[k].data.fd == fds[i])
						ready[i] = true;
		}
		if (r < 0 && errno != EINTR)
			fail("wait", NULL);
		for (size_t i = 0; i < n && !stop_requested; i++)
			if (ready[i])
				answer(fds[i]);
	}
}

static void wait_file(const char *path) {
	struct timespec step = {.tv_nsec = 10 * 1000 * 1000};
	for (int i = 0; i < 3000; i++) {
		if (access(path, F_OK) == 0)
			return;
		nanosleep(&step, NULL);
	}
	errno = ETIMEDOUT;
	fail("waiting for", path);
}

static enum wait_mode parse_wait(const char *s) {
	static const char *const names[] = {"poll", "ppoll", "select", "pselect", "epoll", "accept", "accept4", "recv"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i]) == 0)
			return (enum wait_mode)i;
	usage("--wait: unknown mode");
	return WAIT_POLL;
}

static void parse_options(int argc, char **argv, struct options *o) {
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"reuseport", no_argument, NULL, 'r'},
		{"nonblock", no_argument, NULL, 'n'},
		{"cloexec", no_argument, NULL, 'c'},
		{"unlink", no_argument, NULL, 'u'},
		{"listen-twice", no_argument, NULL, 't'},
		{"rebind", no_argument, NULL, 'b'},
		{"workers", required_argument, NULL, 'w'},
		{"wait", required_argument, NULL, 'W'},
		{"wait-file", required_argument, NULL, 'f'},
		{"first-alone", no_argument, NULL, 'a'},
		{"own-handler", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (o->n_specs == MAX_SOCKETS)
				usage("too many --listen");
			parse_spec(optarg, &o->specs[o->n_specs++]);
			break;
		case 'r':
			o->reuseport = true;
			break;
		case 'n':
			o->nonblock = true;
			break;
		case 'c':
			o->cloexec = true;
			break;
		case 'u':
			o->unlink_first = true;
			break;
		case 't':
			o->listen_twice = true;
			break;
		case 'b':
			o->rebind = true;
			break;
		case 'w':
			o->workers = atoi(optarg);
			if (o->workers < 1 || o->workers > MAX_WORKERS)
				usage("--workers: 1-16");
			break;
		case 'W':
			o->wait = parse_wait(optarg);
			break;
		case 'f':
			o->wait_file = optarg;
			break;
		case 'a':
			o->first_alone = true;
			break;
		case 'o':
			o->own_signal = atoi(optarg);
			break;
		default:
			usage("bad option");
		}
	}
	if (optind != argc || o->n_specs == 0)
		usage("usage: preload-probe --listen=SPEC... [OPTION]...");
}

int main(int argc, char **argv) {
	static struct options o;
	int fds[MAX_SOCKETS];
	parse_options(argc, argv, &o);
	open_marker_socket();
	/* Killed along with its parent (the harness, or a wrapper shell the harness started), so that nothing of a
	 * test outlives it. */
	pid_t parent = getppid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 0;

	struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: a blocked wait must return */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	if (o.own_signal > 0) {
		struct sigaction own = {.sa_handler = on_own_signal, .sa_flags = SA_RESTART};
		sigemptyset(&own.sa_mask);
		sigaction(o.own_signal, &own, NULL);
	}

	for (size_t i = 0; i < o.n_specs; i++) {
		fds[i] = open_socket(&o, &o.specs[i]);
		if (o.rebind) {
			close(fds[i]);
			fds[i] = open_socket(&o, &o.specs[i]);
		}
	}
	char text[128];
	size_t len = (size_t)snprintf(text, sizeof text, "PROBE=listening fds=");
	for (size_t i = 0; i < o.n_specs && len < sizeof text; i++)
		len += (size_t)snprintf(text + len, sizeof text - len, "%s%d", i ? "," : "", fds[i]);
	marker(text);

	if (o.workers > 0) {
		pid_t workers[MAX_WORKERS], parent_of_workers = getpid();
		for (int i = 0; i < o.workers; i++) {
			workers[i] = fork();
			if (workers[i] < 0)
				fail("fork", NULL);
			if (workers[i] == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				if (getppid() != parent_of_workers)
					_exit(0);
				marker("PROBE=waiting");
				serve(fds, o.n_specs, o.wait);
				_exit(0);
			}
		}
		/* The parent never waits on the sockets: only the workers do. */
		while (!stop_requested)
			if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
				break;
		for (int i = 0; i < o.workers; i++)
			kill(workers[i], SIGTERM);
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		return 0;
	}

	if (o.wait_file)
		wait_file(o.wait_file);
	if (o.first_alone) {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		(void)poll(&p, 1, 0);
		marker("PROBE=waited-first");
	}
	marker("PROBE=waiting");
	serve(fds, o.n_specs, o.wait);
	return 0;
}
