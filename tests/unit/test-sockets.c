/* Binding listeners with every option (baton.yaml(5) LISTENERS: backlog, reuse-port, ipv6-only, mode, owner, group, a
 * stale unix socket file replaced, a live one or another file refused) and opening a config's listener set with
 * inherited sockets taken over by name or address (baton(1) INHERITED SOCKETS), on real loopback and unix sockets (no
 * root needed). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sockets.h"
#include "test-net.h"
#include "test.h"
#include "util.h"

static struct listener_config lconf(const char *name, const char *addr) {
	return (struct listener_config){
		.name = (char *)name,
		.address = parse(addr),
		.backlog = SOMAXCONN,
		.reuse_address = true,
		.ipv6_only = -1,
		.mode = -1,
		.inherit = INHERIT_AUTO,
	};
}

static int getsockopt_value(int fd, int level, int opt) {
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, level, opt, &v, &len) < 0)
		return -errno;
	return v;
}

static uint16_t free_port(void) {
	uint16_t port = 0;
	int fd = open_ip(AF_INET, SOCK_STREAM, "127.0.0.1", 0, false, &port);
	close(fd);
	return port;
}

static void test_bind(const char *dir) {
	char addr[PATH_MAX + 32], path[PATH_MAX];
	const char *why;
	struct stat st;
	int fd = -1, r;

	/* Unix path: mode and owner, stale file replaced, live socket and other files refused. */
	snprintf(path, sizeof(path), "%s/bind.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	struct listener_config l = lconf("u", addr);
	char uid[16], gid[16];
	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	snprintf(gid, sizeof(gid), "%u", (unsigned)getgid());
	l.mode = 0604;
	l.owner = uid;
	l.group = gid;
	why = NULL;
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0, "sock_bind %s (%s)", addr, strempty(why));
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0604, "mode 0604 (got %o)",
	      (unsigned)(st.st_mode & 07777));
	CHECK(addr_matches_fd(&l.address, fd) == 1, "the bound socket matches its address");
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "close-on-exec");

	int fd2 = -1;
	why = NULL;
	r = sock_bind(&l, &fd2, &why);
	CHECK(r == -EADDRINUSE && fd2 == -1, "a live socket is not replaced");
	CHECK_STREQ(why, "another process listens on it", "why for a live socket");

	close(fd);
	CHECK(lstat(path, &st) == 0, "the socket file outlives its socket");
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0, "a stale socket file is replaced");
	close(fd);

	struct listener_config ld = lconf("d", addr);
	ld.address.kind = ADDR_UNIX_DGRAM;
	r = sock_bind(&ld, &fd, &why);
	CHECK(r == 0, "a stale stream socket file is replaced by a dgram socket");
	why = NULL;
	r = sock_bind(&ld, &fd2, &why);
	CHECK(r == -EADDRINUSE && streq(why, "another process listens on it"), "a live dgram socket is not replaced");
	l.mode = -1;
	why = NULL;
	r = sock_bind(&l, &fd2, &why);
	CHECK(r == -EADDRINUSE && streq(why, "another process listens on it"),
	      "a live socket of another type is not replaced");
	close(fd);
	unlink(path);

	int file = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(file);
	why = NULL;
	r = sock_bind(&l, &fd, &why);
	CHECK(r == -EADDRINUSE && streq(why, "exists and is not a socket"), "a regular file is not replaced");
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode), "the regular file is still there");
	unlink(path);

	l.owner = (char *)"no-such-user-baton-test";
	why = NULL;
	r = sock_bind(&l, &fd, &why);
	CHECK(r == -ESRCH && streq(why, "unknown user"), "unknown owner");
	CHECK(lstat(path, &st) < 0 && errno == ENOENT, "a failed bind leaves no socket file");
	l.owner = NULL;

	/* Abstract. */
	char abs[128];
	snprintf(abs, sizeof(abs), "unix-seqpacket:@baton-test-bind-%d", (int)getpid());
	l = lconf("a", abs);
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0 && addr_matches_fd(&l.address, fd) == 1, "bind %s", abs);
	close(fd);

	/* TCP with every option that works without privileges. */
	uint16_t port = free_port();
	snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%u", port);
	l = lconf("t", addr);
	l.keepalive = l.nodelay = true;
	l.reuse_port = true;
	l.defer_accept_usec = 1500 * USEC_PER_MSEC;
	l.fastopen = 16;
	l.receive_buffer = 65536;
	l.send_buffer = 65536;
	l.backlog = 16;
	why = NULL;
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0, "sock_bind %s (%s)", addr, strempty(why));
	CHECK(addr_matches_fd(&l.address, fd) == 1, "bound tcp socket matches");
	CHECK(getsockopt_value(fd, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR");
	CHECK(getsockopt_value(fd, SOL_SOCKET, SO_REUSEPORT) == 1, "SO_REUSEPORT");
	CHECK(getsockopt_value(fd, SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE");
	CHECK(getsockopt_value(fd, IPPROTO_TCP, TCP_NODELAY) == 1, "TCP_NODELAY");
	CHECK(getsockopt_value(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT) >= 2, "TCP_DEFER_ACCEPT rounded up to >= 2s");
	CHECK(getsockopt_value(fd, SOL_SOCKET, SO_RCVBUF) >= 65536, "SO_RCVBUF");
	CHECK(getsockopt_value(fd, SOL_SOCKET, SO_SNDBUF) >= 65536, "SO_SNDBUF");

	l.reuse_port = false;
	why = NULL;
	r = sock_bind(&l, &fd2, &why);
	CHECK(r == -EADDRINUSE && streq(why, "bind"), "a busy port fails in bind");
	close(fd);

	snprintf(addr, sizeof(addr), "udp4://127.0.0.1:%u", port);
	l = lconf("u4", addr);
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0 && addr_matches_fd(&l.address, fd) == 1, "bind %s", addr);
	close(fd);

	if (!have_ipv6()) {
		printf("# no IPv6 in this kernel: skipping the dual-stack checks\n");
		return;
	}
	port = free_port();
	snprintf(addr, sizeof(addr), "tcp://:%u", port);
	l = lconf("any", addr);
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0, "bind %s", addr);
	CHECK(getsockopt_value(fd, SOL_SOCKET, SO_DOMAIN) == AF_INET6 &&
		      getsockopt_value(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 0,
	      "tcp://:PORT is dual-stack [::]");
	_cleanup_close_ int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0, "IPv4 clients reach the dual-stack socket");
	close(fd);

	snprintf(addr, sizeof(addr), "tcp6://:%u", port);
	l = lconf("v6", addr);
	l.ipv6_only = 1;
	r = sock_bind(&l, &fd, &why);
	CHECK(r == 0 && getsockopt_value(fd, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "ipv6-only sets IPV6_V6ONLY");
	close(fd);
}

static bool fd_open(int fd) {
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_open_all(const char *dir) {
	char p_named[PATH_MAX], p_new[PATH_MAX], a_named[PATH_MAX + 8], a_new[PATH_MAX + 8], a_tcp[64], a_busy[64];
	struct stat st;
	uint16_t port, uport;

	snprintf(p_named, sizeof(p_named), "%s/named.sock", dir);
	snprintf(p_new, sizeof(p_new), "%s/new.sock", dir);
	snprintf(a_named, sizeof(a_named), "unix:%s", p_named);
	snprintf(a_new, sizeof(a_new), "unix:%s", p_new);

	/* What a socket unit would pass: a named unix socket, an unnamed tcp one, and one no listener wants. */
	int fd_unix = open_unix(SOCK_STREAM, p_named, false, true);
	int fd_tcp = open_ip(AF_INET, SOCK_STREAM, "127.0.0.1", 0, false, &port);
	int fd_extra = open_ip(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, false, &uport);
	snprintf(a_tcp, sizeof(a_tcp), "tcp://127.0.0.1:%u", port);
	CHECK(fd_unix >= 0 && fd_tcp >= 0 && fd_extra >= 0, "inherited sockets ready");

	struct inherited_fd *inh = calloc(3, sizeof(*inh));
	/* Order differs from the config on purpose: matching is by name and address, not position. */
	inh[0] = (struct inherited_fd){.fd = fd_tcp};
	inh[1] = (struct inherited_fd){.fd = fd_extra, .name = strdup("extra")};
	inh[2] = (struct inherited_fd){.fd = fd_unix, .name = strdup("web")};

	struct listener_config lc[3] = {lconf("web", a_named), lconf("api", a_tcp), lconf("new", a_new)};
	lc[0].inherit = INHERIT_REQUIRED;
	struct config c = {.listeners = lc, .n_listeners = 3};
	struct listener *ls = NULL;
	char *error = NULL;
	int r = sock_open_all(&c, NULL, 0, inh, 3, &ls, &error);
	CHECK(r == 0, "sock_open_all (%s)", strempty(error));
	if (r == 0) {
		CHECK(ls[0].fd == fd_unix && ls[0].inherited && !ls[0].created_path && streq(ls[0].name, "web"),
		      "'web' takes the socket named web");
		CHECK(ls[1].fd == fd_tcp && ls[1].inherited, "'api' takes the unnamed socket by address");
		CHECK(ls[2].fd >= 0 && !ls[2].inherited && ls[2].created_path &&
			      addr_matches_fd(&lc[2].address, ls[2].fd),
		      "'new' is bound");
		/* Closed before binding, so its number may be reused by the socket bound for 'new'. */
		CHECK(!fd_open(fd_extra) || fd_extra == ls[2].fd, "the unclaimed inherited socket is closed");
		CHECK(inh[0].fd == -1 && inh[1].fd == -1 && inh[2].fd == -1, "every inherited fd is consumed");
		listeners_free(ls, 3);
		CHECK(lstat(p_named, &st) == 0, "an inherited socket file is never removed");
		CHECK(lstat(p_new, &st) < 0 && errno == ENOENT, "a socket file baton created is removed");
		CHECK(!fd_open(fd_unix), "listeners_free closes the fds");
	}
	inherited_fds_free(inh, 3);
	free(error);
	unlink(p_named);

	/* inherit: required with nothing inherited. */
	error = NULL;
	r = sock_open_all(&c, NULL, 0, NULL, 0, &ls, &error);
	CHECK(r < 0, "required without inherited sockets fails");
	CHECK_STREQ(error, "listener 'web': inherit is required but no inherited socket matches (got 0 sockets)",
		    "required error message");
	free(error);
	CHECK(lstat(p_named, &st) < 0 && lstat(p_new, &st) < 0, "nothing was bound");

	/* A name whose socket has the wrong kind is not taken; an address match is required then. */
	fd_extra = open_ip(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, false, &uport);
	inh = calloc(1, sizeof(*inh));
	inh[0] = (struct inherited_fd){.fd = fd_extra, .name = strdup("web")};
	error = NULL;
	r = sock_open_all(&c, NULL, 0, inh, 1, &ls, &error);
	CHECK(r < 0 && error && strstr(error, "(got 1 socket: web)"), "a udp socket named web is not a unix listener");
	CHECK(!fd_open(fd_extra) && inh[0].fd == -1, "on failure the inherited fds are closed");
	inherited_fds_free(inh, 1);
	free(error);

	/* inherit: never binds even when a socket with its name was passed. */
	fd_tcp = open_ip(AF_INET, SOCK_STREAM, "127.0.0.1", 0, false, &port);
	snprintf(a_tcp, sizeof(a_tcp), "tcp://127.0.0.1:%u", free_port());
	struct listener_config never = lconf("api", a_tcp);
	never.inherit = INHERIT_NEVER;
	inh = calloc(1, sizeof(*inh));
	inh[0] = (struct inherited_fd){.fd = fd_tcp, .name = strdup("api")};
	c = (struct config){.listeners = &never, .n_listeners = 1};
	error = NULL;
	r = sock_open_all(&c, NULL, 0, inh, 1, &ls, &error);
	CHECK(r == 0 && !ls[0].inherited && addr_matches_fd(&never.address, ls[0].fd) == 1,
	      "inherit: never binds its own socket (%s)", strempty(error));
	CHECK(!fd_open(fd_tcp) || ls[0].fd == fd_tcp, "the passed socket is closed");
	if (r == 0)
		listeners_free(ls, 1);
	inherited_fds_free(inh, 1);
	free(error);

	/* A failure closes and removes what was opened before it. */
	int busy = open_ip(AF_INET, SOCK_STREAM, "127.0.0.1", 0, false, &port);
	snprintf(a_busy, sizeof(a_busy), "tcp://127.0.0.1:%u", port);
	struct listener_config two[2] = {lconf("first", a_new), lconf("http", a_busy)};
	two[1].reuse_address = false;
	c = (struct config){.listeners = two, .n_listeners = 2};
	error = NULL;
	r = sock_open_all(&c, NULL, 0, NULL, 0, &ls, &error);
	char want[128];
	snprintf(want, sizeof(want), "listener 'http' (%s): bind: Address already in use", a_busy);
	CHECK(r == -EADDRINUSE, "a busy port fails sock_open_all");
	CHECK_STREQ(error, want, "bind error message");
	CHECK(lstat(p_new, &st) < 0 && errno == ENOENT, "the unix socket bound before the failure is removed");
	free(error);
	close(busy);

	/* A name that does not resolve. */
	struct listener_config bad = lconf("x", "tcp://[fe80::1%nosuchif0]:80");
	c = (struct config){.listeners = &bad, .n_listeners = 1};
	error = NULL;
	r = sock_open_all(&c, NULL, 0, NULL, 0, &ls, &error);
	CHECK(r == -EADDRNOTAVAIL && error && strstr(error, "listener 'x' (tcp://[fe80::1%nosuchif0]:80): resolve: "),
	      "resolve error message: %s", strempty(error));
	free(error);
}
/* A reload: the new set borrows the held set's sockets (no dup), in any order; a failed reload frees the new set and
 * leaves every held socket open; a committed one hands the sockets over, so freeing the old set closes only the
 * sockets and files of listeners that are gone. */
static void test_reload_hand_over(const char *dir) {
	char a[3][PATH_MAX + 16], p_unix[PATH_MAX];
	struct stat st;
	snprintf(a[0], sizeof(a[0]), "tcp://127.0.0.1:%u", free_port());
	snprintf(a[1], sizeof(a[1]), "tcp://127.0.0.1:%u", free_port());
	snprintf(p_unix, sizeof(p_unix), "%s/hand-over.sock", dir);
	snprintf(a[2], sizeof(a[2]), "unix:%s", p_unix);
	struct listener_config first[3] = {lconf("a", a[0]), lconf("b", a[1]), lconf("u", a[2])};
	struct config c = {.listeners = first, .n_listeners = 3};
	struct listener *old = NULL, *ls = NULL;
	char *error = NULL;
	CHECK(sock_open_all(&c, NULL, 0, NULL, 0, &old, &error) == 0, "the first set (%s)", strempty(error));
	if (!old)
		return;

	/* The next config: "b" is gone, "u" and "a" kept in another order, "n" new. */
	char a_new[64];
	snprintf(a_new, sizeof(a_new), "tcp://127.0.0.1:%u", free_port());
	struct listener_config next[3] = {lconf("u", a[2]), lconf("n", a_new), lconf("a", a[0])};
	c = (struct config){.listeners = next, .n_listeners = 3};
	CHECK(sock_open_all(&c, old, 3, NULL, 0, &ls, &error) == 0, "the reload's set (%s)", strempty(error));
	CHECK(ls[0].fd == old[2].fd && ls[0].borrowed && ls[2].fd == old[0].fd && ls[2].borrowed,
	      "kept listeners borrow the held sockets, found whatever their order");
	CHECK(!ls[1].borrowed && ls[1].fd >= 0 && ls[1].fd != old[0].fd && ls[1].fd != old[1].fd,
	      "a new listener gets a socket of its own");
	int new_fd = ls[1].fd;
	listeners_free(ls, 3);
	CHECK(fd_open(old[0].fd) && fd_open(old[1].fd) && fd_open(old[2].fd) && lstat(p_unix, &st) == 0,
	      "a failed reload's set, freed, leaves every held socket and file");
	CHECK(!fd_open(new_fd) || new_fd == old[0].fd || new_fd == old[1].fd || new_fd == old[2].fd,
	      "and closes its own new socket");

	CHECK(sock_open_all(&c, old, 3, NULL, 0, &ls, &error) == 0, "the reload again (%s)", strempty(error));
	int fd_a = old[0].fd, fd_b = old[1].fd, fd_u = old[2].fd;
	listeners_hand_over(ls, 3, old, 3);
	CHECK(!ls[0].borrowed && !ls[2].borrowed && ls[0].created_path, "the committed set owns its sockets and files");
	listeners_free(old, 3);
	CHECK(fd_open(fd_a) && fd_open(fd_u) && lstat(p_unix, &st) == 0,
	      "freeing the old set leaves the sockets and files handed over");
	CHECK(!fd_open(fd_b) || fd_b == ls[1].fd, "and closes the socket of the listener that is gone");
	listeners_free(ls, 3);
	CHECK(!fd_open(fd_a) && lstat(p_unix, &st) < 0, "the new set closes and removes them at its end");
	free(error);
}

int main(void) {
	char dir[] = "/tmp/baton-test-sockets-XXXXXX";

	/* Warnings about unclaimed inherited fds are expected below; keep TAP output clean. */
	log_max_level = LOG_ERR;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	test_bind(dir);
	test_open_all(dir);
	test_reload_hand_over(dir);
	rmdir(dir);

	return test_done();
}
