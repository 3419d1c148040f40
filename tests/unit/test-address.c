/* The address parser (baton.yaml(5) ADDRESSES): every form and every bad input, its normalized form, the sockaddr it
 * gives, and matching live sockets (addr_matches_fd(), for inherited sockets: baton(1) INHERITED SOCKETS). sockets.c
 * has its own test-sockets.c. */

#include <arpa/inet.h>
#include <netdb.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/un.h>

#include "address.h"
#include "test-net.h"
#include "test.h"

static void check_form(const char *text, const char *normalized) {
	struct address a, b;
	const char *why = NULL;
	char buf[ADDR_FORMAT_MAX], buf2[ADDR_FORMAT_MAX];

	int r = addr_parse(text, &a, &why);
	CHECK(r == 0, "parse '%s'", text);
	if (r < 0) {
		printf("#   why: %s\n", strempty(why));
		return;
	}
	CHECK_STREQ(addr_format(&a, buf), normalized, "format '%s'", text);
	r = addr_parse(buf, &b, &why);
	CHECK(r == 0 && addr_equal(&a, &b) && memcmp(&a, &b, sizeof(a)) == 0, "round trip '%s'", text);
	CHECK(r == 0 && streq(addr_format(&b, buf2), buf), "format(parse(format('%s'))) is stable", text);
}

/* The input for a TAP description: control characters would break the line. */
static const char *printable(const char *text) {
	static char buf[512];
	size_t n = 0;
	if (!text)
		return "(null)";
	for (const char *p = text; *p && n < sizeof(buf) - 5; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\\x%02x", (unsigned char)*p);
		else
			buf[n++] = *p;
	buf[n] = '\0';
	return buf;
}

static void check_bad(const char *input, const char *why_part) {
	struct address a;
	const char *why = NULL;

	memset(&a, 0x5a, sizeof(a));
	int r = addr_parse(input, &a, &why);
	CHECK(r == -EINVAL, "reject '%s'", printable(input));
	CHECK(why && strstr(why, why_part), "reject '%s' because: %s", printable(input), why_part);
	if (why && !strstr(why, why_part))
		printf("#   got why '%s'\n", why);
	CHECK(((unsigned char *)&a)[0] == 0x5a && ((unsigned char *)&a)[sizeof(a) - 1] == 0x5a,
	      "'%s': ret untouched on failure", printable(input));
	CHECK(addr_parse(input, &a, NULL) == -EINVAL, "reject '%s' with ret_why NULL", printable(input));
}

/* "localhost" resolves through /etc/hosts (or nss-myhostname). A minimal root, such as a pristine debootstrap where
 * the Debian package is built, may have neither: there the checks that resolve it are skipped, saying so. */
static bool localhost_resolves(void) {
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo("localhost", NULL, &hints, &res) != 0)
		return false;
	freeaddrinfo(res);
	return true;
}

#define SKIP_LOCALHOST(what)                                                                                           \
	do {                                                                                                           \
		test_count++;                                                                                          \
		printf("ok %d - %s # SKIP localhost does not resolve here (no /etc/hosts)\n", test_count, what);       \
	} while (0)

static char *repeat(char c, size_t n, const char *prefix) {
	size_t p = strlen(prefix);
	char *s = malloc(p + n + 1);
	memcpy(s, prefix, p);
	memset(s + p, c, n);
	s[p + n] = '\0';
	return s;
}

static void test_forms(void) {
	check_form("tcp://127.0.0.1:80", "tcp://127.0.0.1:80");
	check_form("tcp4://127.0.0.1:80", "tcp4://127.0.0.1:80");
	check_form("tcp://[::1]:80", "tcp://[::1]:80");
	check_form("tcp6://[::1]:80", "tcp6://[::1]:80");
	check_form("tcp6://[0:0:0::1]:443", "tcp6://[::1]:443");
	check_form("tcp://[2001:DB8::1]:65535", "tcp://[2001:db8::1]:65535");
	check_form("tcp6://[fe80::1%lo]:8080", "tcp6://[fe80::1%lo]:8080");
	check_form("tcp://:8080", "tcp://:8080");
	check_form("tcp4://:8080", "tcp4://:8080");
	check_form("tcp6://:8080", "tcp6://:8080");
	check_form("tcp://localhost:1", "tcp://localhost:1");
	check_form("tcp://WWW.Example.COM:443", "tcp://www.example.com:443");
	check_form("tcp4://a-b.c1.example:80", "tcp4://a-b.c1.example:80");
	check_form("udp://:53", "udp://:53");
	check_form("udp4://10.0.0.1:53", "udp4://10.0.0.1:53");
	check_form("udp6://[::]:53", "udp6://[::]:53");
	check_form("udp://[::ffff:1.2.3.4]:53", "udp://[::ffff:1.2.3.4]:53");
	check_form("unix:/run/x.sock", "unix:/run/x.sock");
	check_form("unix:@name", "unix:@name");
	check_form("unix:@name with spaces:and:colons", "unix:@name with spaces:and:colons");
	check_form("unix-dgram:/run/d.sock", "unix-dgram:/run/d.sock");
	check_form("unix-dgram:@name", "unix-dgram:@name");
	check_form("unix-seqpacket:/run/s.sock", "unix-seqpacket:/run/s.sock");
	check_form("unix-seqpacket:@s", "unix-seqpacket:@s");

	struct address a = parse("tcp://127.0.0.1:80");
	CHECK(a.kind == ADDR_TCP && a.family == AF_UNSPEC && a.host_numeric && a.port == 80 &&
		      streq(a.host, "127.0.0.1"),
	      "tcp:// fields");
	a = parse("udp6://[::1]:5353");
	CHECK(a.kind == ADDR_UDP && a.family == AF_INET6 && a.host_numeric && a.port == 5353 && streq(a.host, "::1"),
	      "udp6:// fields (host without brackets)");
	a = parse("tcp4://:1");
	CHECK(a.family == AF_INET && !a.host_numeric && a.host[0] == '\0' && a.port == 1, "empty host fields");
	a = parse("tcp://example.com:80");
	CHECK(!a.host_numeric && streq(a.host, "example.com"), "host name is not numeric");
	a = parse("unix:@abc");
	CHECK(a.kind == ADDR_UNIX_STREAM && a.abstract && streq(a.path, "abc"), "abstract name without '@'");
	a = parse("unix-seqpacket:/x");
	CHECK(a.kind == ADDR_UNIX_SEQPACKET && !a.abstract && streq(a.path, "/x"), "seqpacket path");

	/* sun_path holds 108 bytes: a path of 107 plus its NUL; an abstract name of 107 after the leading NUL. */
	_cleanup_free_ char *p107 = repeat('p', 106, "unix:/"), *p108 = repeat('p', 107, "unix:/");
	_cleanup_free_ char *a107 = repeat('a', 107, "unix-dgram:@"), *a108 = repeat('a', 108, "unix-dgram:@");
	check_form(p107, p107);
	check_form(a107, a107);
	check_bad(p108, "too long");
	check_bad(a108, "too long");

	/* 63-byte labels, 253 bytes in all. */
	_cleanup_free_ char *l63 = repeat('l', 63, "tcp://"), *l64 = repeat('l', 64, "tcp://");
	l63 = realloc(l63, strlen(l63) + 4);
	strcat(l63, ":80");
	l64 = realloc(l64, strlen(l64) + 4);
	strcat(l64, ":80");
	check_form(l63, l63);
	check_bad(l64, "label too long");
	char n253[300] = "tcp://", n254[300];
	for (int i = 0; i < 63; i++)
		strcat(n253, "abc.");
	strcat(n253, "a");
	strcpy(n254, n253);
	strcat(n254, "b:80");
	strcat(n253, ":80");
	CHECK(strlen(n253) == 6 + 253 + 3, "253-byte name built");
	check_form(n253, n253);
	check_bad(n254, "host name too long");
}

static void test_bad(void) {
	check_bad(NULL, "empty");
	check_bad("", "empty");
	check_bad("tcp://1.2.3.4:0", "port out of range");
	check_bad("tcp://1.2.3.4:65536", "port out of range");
	check_bad("tcp://1.2.3.4:70000", "port out of range");
	check_bad("tcp://1.2.3.4:99999999999999999999999", "port out of range");
	check_bad("tcp://1.2.3.4:080", "invalid port");
	check_bad("tcp://1.2.3.4:+80", "invalid port");
	check_bad("tcp://1.2.3.4:-80", "invalid port");
	check_bad("tcp://1.2.3.4:8a", "invalid port");
	check_bad("tcp://1.2.3.4:80a", "invalid port");
	check_bad("tcp://1.2.3.4: 80", "invalid port");
	check_bad("tcp://1.2.3.4:80 ", "invalid port");
	check_bad("tcp://1.2.3.4:0x50", "invalid port");
	check_bad("tcp://1.2.3.4:80/", "invalid port");
	check_bad("tcp://1.2.3.4:80:90", "brackets");
	check_bad("tcp://1.2.3.4", "missing port");
	check_bad("tcp://1.2.3.4:", "missing port");
	check_bad("tcp://:", "missing port");
	check_bad("tcp://", "missing host and port");
	check_bad("tcp://localhost", "missing port");
	check_bad("tcp://[::1", "missing ']'");
	check_bad("tcp://[::1]", "missing port");
	check_bad("tcp://[::1]:", "missing port");
	check_bad("tcp://[::1]80", "expected ':PORT'");
	check_bad("tcp://[::1]x:80", "expected ':PORT'");
	check_bad("tcp://[]:80", "empty IPv6");
	check_bad("tcp://[zz]:80", "invalid IPv6");
	check_bad("tcp://[127.0.0.1]:80", "invalid IPv6");
	check_bad("tcp://[localhost]:80", "invalid IPv6");
	check_bad("tcp://[fe80::1%]:80", "scope");
	check_bad("tcp://[fe80::1%a/b]:80", "scope");
	check_bad("tcp://[fe80::1%averyveryverylongname]:80", "scope");
	check_bad("tcp://::1:80", "brackets");
	check_bad("tcp4://[::1]:80", "IPv6 address needs");
	check_bad("udp4://[::]:80", "IPv6 address needs");
	check_bad("tcp6://127.0.0.1:80", "IPv4 address needs");
	check_bad("udp6://0.0.0.0:80", "IPv4 address needs");
	check_bad("htp://1.2.3.4:80", "unknown scheme");
	check_bad("TCP://1.2.3.4:80", "unknown scheme");
	check_bad("unix-stream:/x", "unknown scheme");
	check_bad("sctp://1.2.3.4:80", "unknown scheme");
	check_bad("tcp:1.2.3.4:80", "expected '://'");
	check_bad("tcp:/1.2.3.4:80", "expected '://'");
	check_bad("/run/x.sock", "missing scheme");
	check_bad(":80", "missing scheme");
	check_bad("localhost", "missing scheme");
	check_bad("unix:relative", "must be absolute");
	check_bad("unix:run/x.sock", "must be absolute");
	check_bad("unix:", "empty unix socket path");
	check_bad("unix:@", "empty abstract socket name");
	check_bad("unix-dgram:", "empty unix socket path");
	check_bad("unix-seqpacket:@", "empty abstract socket name");
	check_bad("unix://run/x.sock", "not unix://");
	check_bad("unix:/run/", "must not end in '/'");
	check_bad("unix:/", "must not end in '/'");
	check_bad("tcp://ex ample.com:80", "invalid character");
	check_bad("tcp://ex_ample.com:80", "invalid character");
	check_bad("tcp://user@example.com:80", "invalid character");
	check_bad("tcp://exämple.com:80", "invalid character");
	check_bad("tcp://example.com/:80", "invalid character");
	check_bad("tcp://-a.com:80", "starts with '-'");
	check_bad("tcp://a-.com:80", "ends with '-'");
	check_bad("tcp://a..b:80", "empty label");
	check_bad("tcp://.a:80", "empty label");
	check_bad("tcp://a.:80", "empty label");
	check_bad("tcp://127.1:80", "invalid IPv4");
	check_bad("tcp://256.1.1.1:80", "invalid IPv4");
	check_bad("tcp://1.2.3.04:80", "invalid IPv4");
	check_bad("tcp://0x7f000001:80", "invalid IPv4");
	check_bad("tcp://1.2.3.4:80\n", "control character");
	check_bad("tcp://1.2.3.4:\r80", "control character");
	check_bad("unix:/run/x\tb", "control character");
	check_bad("unix:@a\x7f", "control character");
	check_bad("unix:/run/\x01x", "control character");
}

static void test_helpers(void) {
	struct address a = parse("tcp://:80"), b;

	CHECK(addr_socket_type(&a) == SOCK_STREAM && !addr_is_unix(&a) && addr_is_stream(&a),
	      "tcp is stream, not unix");
	a = parse("udp://:80");
	CHECK(addr_socket_type(&a) == SOCK_DGRAM && !addr_is_unix(&a) && !addr_is_stream(&a), "udp is dgram");
	a = parse("unix:/x");
	CHECK(addr_socket_type(&a) == SOCK_STREAM && addr_is_unix(&a) && addr_is_stream(&a), "unix is stream");
	a = parse("unix-dgram:/x");
	CHECK(addr_socket_type(&a) == SOCK_DGRAM && addr_is_unix(&a) && !addr_is_stream(&a), "unix-dgram is dgram");
	a = parse("unix-seqpacket:/x");
	CHECK(addr_socket_type(&a) == SOCK_SEQPACKET && addr_is_unix(&a) && addr_is_stream(&a),
	      "unix-seqpacket listens");

#define EQUAL(x, y, want)                                                                                              \
	do {                                                                                                           \
		a = parse(x);                                                                                          \
		b = parse(y);                                                                                          \
		CHECK(addr_equal(&a, &b) == (want) && addr_equal(&b, &a) == (want), "%s %s %s", x,                     \
		      (want) ? "==" : "!=", y);                                                                        \
	} while (0)
	EQUAL("tcp://127.0.0.1:80", "tcp4://127.0.0.1:80", true);
	EQUAL("tcp://[::1]:80", "tcp6://[0::1]:80", true);
	EQUAL("tcp://:80", "tcp6://:80", true);
	EQUAL("tcp://:80", "tcp4://:80", false);
	EQUAL("tcp://127.0.0.1:80", "tcp://127.0.0.1:81", false);
	EQUAL("tcp://127.0.0.1:80", "udp://127.0.0.1:80", false);
	EQUAL("tcp://127.0.0.1:80", "tcp://127.0.0.2:80", false);
	EQUAL("tcp://Localhost:80", "tcp://localhost:80", true);
	EQUAL("tcp://localhost:80", "tcp4://localhost:80", false);
	EQUAL("unix:/a", "unix:/a", true);
	EQUAL("unix:/a", "unix:@/a", false);
	EQUAL("unix:/a", "unix-dgram:/a", false);
	EQUAL("unix:@a", "unix:@a", true);
#undef EQUAL
}

static void test_sockaddr(void) {
	struct sockaddr_storage ss;
	socklen_t len = 0;
	const char *why = NULL;
	struct address a;

	a = parse("tcp://:8080");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_INET6 &&
		      len == sizeof(struct sockaddr_in6) &&
		      IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr) &&
		      ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == 8080,
	      "tcp://:8080 is [::]:8080");
	a = parse("tcp4://:8080");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_INET &&
		      len == sizeof(struct sockaddr_in) &&
		      ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY),
	      "tcp4://:8080 is 0.0.0.0:8080");
	a = parse("udp://10.1.2.3:53");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_INET &&
		      ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(0x0a010203) &&
		      ntohs(((struct sockaddr_in *)&ss)->sin_port) == 53,
	      "udp://10.1.2.3:53");
	a = parse("tcp://[fe80::1%1]:80");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_INET6 &&
		      ((struct sockaddr_in6 *)&ss)->sin6_scope_id == 1,
	      "numeric scope id");
	a = parse("tcp://[fe80::1%lo]:80");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ((struct sockaddr_in6 *)&ss)->sin6_scope_id != 0,
	      "interface scope id");
	a = parse("tcp://[fe80::1%nosuchif0]:80");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == -EADDRNOTAVAIL && why, "unknown interface scope");
	if (localhost_resolves()) {
		a = parse("tcp4://localhost:80");
		CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_INET &&
			      ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
			      ntohs(((struct sockaddr_in *)&ss)->sin_port) == 80,
		      "tcp4://localhost resolves to 127.0.0.1");
	} else
		SKIP_LOCALHOST("tcp4://localhost resolves to 127.0.0.1");

	a = parse("unix:/run/x.sock");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_UNIX &&
		      len == offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock") + 1 &&
		      streq(((struct sockaddr_un *)&ss)->sun_path, "/run/x.sock"),
	      "unix path sockaddr includes the NUL");
	a = parse("unix:@name");
	CHECK(addr_to_sockaddr(&a, &ss, &len, &why) == 0 && ss.ss_family == AF_UNIX &&
		      len == offsetof(struct sockaddr_un, sun_path) + 1 + 4 &&
		      ((struct sockaddr_un *)&ss)->sun_path[0] == '\0' &&
		      memcmp(((struct sockaddr_un *)&ss)->sun_path + 1, "name", 4) == 0,
	      "abstract sockaddr: leading NUL, no trailing NUL");
}

__attribute__((format(printf, 2, 3))) static int matches(int fd, const char *fmt, ...) {
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	struct address a = parse(text);
	return addr_matches_fd(&a, fd);
}

static void test_matches_ip(void) {
	uint16_t port, port2;

	_cleanup_close_ int fd = open_ip(AF_INET, SOCK_STREAM, "127.0.0.1", 0, false, &port);
	CHECK(fd >= 0, "listen on 127.0.0.1:%u", port);
	CHECK(matches(fd, "tcp://127.0.0.1:%u", port) == 1, "tcp://127.0.0.1 matches");
	CHECK(matches(fd, "tcp4://127.0.0.1:%u", port) == 1, "tcp4://127.0.0.1 matches");
	if (localhost_resolves())
		CHECK(matches(fd, "tcp4://localhost:%u", port) == 1, "tcp4://localhost matches (resolved)");
	else
		SKIP_LOCALHOST("tcp4://localhost matches (resolved)");
	CHECK(matches(fd, "tcp://127.0.0.1:%u", port == 65535 ? 1 : port + 1) == 0, "another port does not match");
	CHECK(matches(fd, "tcp://127.0.0.2:%u", port) == 0, "another host does not match");
	CHECK(matches(fd, "tcp://:%u", port) == 0, "the wildcard does not match a loopback socket");
	CHECK(matches(fd, "udp://127.0.0.1:%u", port) == 0, "udp does not match a tcp socket");
	CHECK(matches(fd, "tcp6://[::1]:%u", port) == 0, "tcp6 does not match an IPv4 socket");
	CHECK(matches(fd, "unix:/x%u", port) == 0, "unix does not match a tcp socket");

	/* Bound but not listening: systemd checks SO_ACCEPTCONN too (sd_is_socket_inet with listening=1). */
	_cleanup_close_ int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	CHECK(bind(idle, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		      getsockname(idle, (struct sockaddr *)&sin, &len) == 0,
	      "bind a tcp socket without listen");
	CHECK(matches(idle, "tcp://127.0.0.1:%u", ntohs(sin.sin_port)) == 0, "a non-listening socket does not match");

	_cleanup_close_ int any4 = open_ip(AF_INET, SOCK_STREAM, "0.0.0.0", 0, false, &port2);
	CHECK(any4 >= 0, "listen on 0.0.0.0:%u", port2);
	CHECK(matches(any4, "tcp://:%u", port2) == 1, "tcp://:PORT matches 0.0.0.0");
	CHECK(matches(any4, "tcp4://:%u", port2) == 1, "tcp4://:PORT matches 0.0.0.0");
	CHECK(matches(any4, "tcp6://:%u", port2) == 0, "tcp6://:PORT does not match an IPv4 socket");
	CHECK(matches(any4, "tcp://127.0.0.1:%u", port2) == 0, "a specific address does not match 0.0.0.0");

	_cleanup_close_ int udp = open_ip(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, false, &port2);
	CHECK(udp >= 0, "udp socket on 127.0.0.1:%u", port2);
	CHECK(matches(udp, "udp://127.0.0.1:%u", port2) == 1, "udp needs no listen()");
	CHECK(matches(udp, "tcp://127.0.0.1:%u", port2) == 0, "tcp does not match a udp socket");

	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	CHECK(matches(pfd[0], "tcp://127.0.0.1:%u", port) == -ENOTSOCK, "a pipe is -ENOTSOCK");
	close(pfd[0]);
	close(pfd[1]);

	if (!have_ipv6()) {
		printf("# no IPv6 in this kernel: skipping the [::] checks\n");
		return;
	}
	_cleanup_close_ int any6 = open_ip(AF_INET6, SOCK_STREAM, "::", 0, false, &port2);
	CHECK(any6 >= 0, "listen on [::]:%u", port2);
	CHECK(matches(any6, "tcp://:%u", port2) == 1, "tcp://:PORT matches [::]");
	CHECK(matches(any6, "tcp6://:%u", port2) == 1, "tcp6://:PORT matches [::]");
	CHECK(matches(any6, "tcp6://[::]:%u", port2) == 1, "tcp6://[::]:PORT matches [::]");
	CHECK(matches(any6, "tcp4://:%u", port2) == 0, "tcp4://:PORT does not match an IPv6 socket");
	_cleanup_close_ int lo6 = open_ip(AF_INET6, SOCK_STREAM, "::1", 0, true, &port2);
	CHECK(lo6 >= 0, "listen on [::1]:%u", port2);
	CHECK(matches(lo6, "tcp://[::1]:%u", port2) == 1, "tcp://[::1] matches");
	CHECK(matches(lo6, "tcp6://[::1]:%u", port2) == 1, "tcp6://[::1] matches");
	CHECK(matches(lo6, "tcp://:%u", port2) == 0, "the wildcard does not match [::1]");
}

static void test_matches_unix(const char *dir) {
	char path[PATH_MAX], path2[PATH_MAX], name[64];
	char text[PATH_MAX + 32];
	struct address a;

	snprintf(path, sizeof(path), "%s/stream.sock", dir);
	snprintf(path2, sizeof(path2), "%s/dgram.sock", dir);
	snprintf(name, sizeof(name), "baton-test-%d", (int)getpid());

	_cleanup_close_ int fd = open_unix(SOCK_STREAM, path, false, true);
	CHECK(fd >= 0, "listen on %s", path);
#define M(fmt, arg, sock, want)                                                                                        \
	do {                                                                                                           \
		snprintf(text, sizeof(text), fmt, arg);                                                                \
		a = parse(text);                                                                                       \
		CHECK(addr_matches_fd(&a, sock) == (want), "%s %s", text, (want) ? "matches" : "does not match");      \
	} while (0)
	M("unix:%s", path, fd, 1);
	M("unix:%s.other", path, fd, 0);
	M("unix-seqpacket:%s", path, fd, 0);
	M("unix-dgram:%s", path, fd, 0);
	M("unix:@%s", path, fd, 0);

	_cleanup_close_ int dfd = open_unix(SOCK_DGRAM, path2, false, false);
	CHECK(dfd >= 0, "dgram socket on %s", path2);
	M("unix-dgram:%s", path2, dfd, 1);
	M("unix:%s", path2, dfd, 0);

	_cleanup_close_ int afd = open_unix(SOCK_SEQPACKET, name, true, true);
	CHECK(afd >= 0, "listen on @%s", name);
	M("unix-seqpacket:@%s", name, afd, 1);
	M("unix-seqpacket:@%sx", name, afd, 0);
	M("unix:@%s", name, afd, 0);
	M("unix-seqpacket:/%s", name, afd, 0);
#undef M
	unlink(path);
	unlink(path2);
}

/* The index finds what addr_equal() finds: the lowest position of an equal address, whatever the spelling. */
static void test_index(void) {
	const char *texts[] = {"tcp://127.0.0.1:80", "tcp://:8080",     "unix:/run/a.sock",    "unix:@a.sock",
			       "udp://127.0.0.1:80", "tcp6://:8080",    "tcp4://127.0.0.1:80", "tcp://[::1]:80",
			       "tcp://127.0.0.1:81", "unix:/run/a.sock"};
	size_t n = ARRAY_SIZE(texts);
	struct address as[ARRAY_SIZE(texts)];
	const char *why;
	for (size_t i = 0; i < n; i++)
		CHECK(addr_parse(texts[i], &as[i], &why) == 0, "parse %s", texts[i]);
	struct addr_index x;
	CHECK(addr_index_init(&x, as, n, sizeof(as[0])) == 0, "index of %zu addresses", n);
	for (size_t i = 0; i < n; i++) {
		long want = -1;
		for (size_t k = 0; k < n && want < 0; k++)
			if (addr_equal(&as[k], &as[i]))
				want = (long)k;
		CHECK(addr_index_find(&x, &as[i]) == want, "%s is found at %ld", texts[i], want);
	}
	struct address other;
	CHECK(addr_parse("tcp://127.0.0.1:82", &other, &why) == 0 && addr_index_find(&x, &other) == -1,
	      "an address not in the index: -1");
	addr_index_free(&x);
	CHECK(addr_index_init(&x, NULL, 0, sizeof(as[0])) == 0 && addr_index_find(&x, &other) == -1, "an empty index");
	addr_index_free(&x);
}

/* Many addresses, a third of them repeated, in a struct as the callers index them (the address a member): every one
 * is found at its lowest index, as comparing every pair finds it; absent ones are not found. Enough entries that probe
 * runs meet and wrap around the table's end. */
static void test_index_many(void) {
	struct item {
		int tag;
		struct address address;
	};
	enum { N = 1500 };
	struct item *items = calloc(N, sizeof(*items));
	CHECK(items != NULL, "memory for %d items", N);
	if (!items)
		return;
	const char *why;
	char text[64];
	bool parsed = true;
	for (size_t i = 0; i < N; i++) {
		/* Ports repeat every 1,000 entries; every seventh entry is a unix path, which repeats too. */
		if (i % 7 == 0)
			snprintf(text, sizeof(text), "unix:/run/s%zu.sock", i % 350);
		else
			snprintf(text, sizeof(text), "tcp://127.0.0.1:%zu", 1024 + i % 1000);
		parsed = parsed && addr_parse(text, &items[i].address, &why) == 0;
	}
	CHECK(parsed, "%d addresses parsed", N);
	struct addr_index x;
	CHECK(addr_index_init(&x, &items[0].address, N, sizeof(items[0])) == 0, "index of %d addresses", N);
	size_t wrong = 0, repeated = 0;
	for (size_t i = 0; i < N; i++) {
		long want = -1;
		for (size_t k = 0; k < N && want < 0; k++)
			if (addr_equal(&items[k].address, &items[i].address))
				want = (long)k;
		repeated += want != (long)i;
		wrong += addr_index_find(&x, &items[i].address) != want;
	}
	CHECK(wrong == 0, "each of %d found at its lowest index (%zu wrong; %zu are repeats)", N, wrong, repeated);
	CHECK(repeated > N / 4, "the set has repeats to find past (%zu)", repeated);
	struct address other;
	size_t found = 0;
	for (unsigned port = 3000; port < 3200; port++) {
		snprintf(text, sizeof(text), "tcp://127.0.0.1:%u", port);
		found += addr_parse(text, &other, &why) == 0 && addr_index_find(&x, &other) != -1;
	}
	CHECK(found == 0, "200 absent addresses not found (%zu were)", found);
	addr_index_free(&x);
	free(items);
}

int main(void) {
	char dir[] = "/tmp/baton-test-address-XXXXXX";

	test_forms();
	test_bad();
	test_helpers();
	test_sockaddr();
	test_index();
	test_index_many();

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	test_matches_ip();
	test_matches_unix(dir);
	rmdir(dir);

	return test_done();
}
