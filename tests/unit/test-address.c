/* The address parser (every form and every bad input), its normalized form, and matching live sockets. sockets.c
 * links only into the baton executable, so it is included here to test sock_bind() and sock_open_all() on real
 * loopback and unix sockets (no root needed). */
#include "../../src/sockets.c"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/un.h>

#include "address.h"
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
		printf("ok %d - %s # SKIP localhost does not resolve here (no /etc/hosts)\n", test_count, what);      \
	} while (0)

static struct address parse(const char *text) {
	struct address a;
	const char *why = NULL;
	if (addr_parse(text, &a, &why) < 0) {
		printf("# cannot parse '%s': %s\n", text, strempty(why));
		abort();
	}
	return a;
}

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

/* A socket bound to ip:0 (the kernel picks a free port), listening for stream types. */
static int open_ip(int domain, int type, const char *ip, uint16_t port, bool v6only, uint16_t *ret_port) {
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd = socket(domain, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (domain == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &sin6->sin6_addr);
		setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only);
		len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, ip, &sin->sin_addr);
		len = sizeof(*sin);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, 8) < 0)) {
		close(fd);
		return -1;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	*ret_port =
	    ntohs(domain == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static int open_unix(int type, const char *path, bool abstract, bool do_listen) {
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (abstract) {
		memcpy(sun.sun_path + 1, path, strlen(path));
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path));
	} else {
		strcpy(sun.sun_path, path);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	}
	if (bind(fd, (struct sockaddr *)&sun, len) < 0 || (do_listen && listen(fd, 8) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
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

static bool have_ipv6(void) {
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
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
	int r = sock_open_all(&c, inh, 3, &ls, &error);
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
	r = sock_open_all(&c, NULL, 0, &ls, &error);
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
	r = sock_open_all(&c, inh, 1, &ls, &error);
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
	r = sock_open_all(&c, inh, 1, &ls, &error);
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
	r = sock_open_all(&c, NULL, 0, &ls, &error);
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
	r = sock_open_all(&c, NULL, 0, &ls, &error);
	CHECK(r == -EADDRNOTAVAIL && error && strstr(error, "listener 'x' (tcp://[fe80::1%nosuchif0]:80): resolve: "),
	      "resolve error message: %s", strempty(error));
	free(error);
}

int main(void) {
	char dir[] = "/tmp/baton-test-address-XXXXXX";

	/* Warnings about unclaimed inherited fds are expected below; keep TAP output clean. */
	log_max_level = LOG_ERR;

	test_forms();
	test_bad();
	test_helpers();
	test_sockaddr();

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	test_matches_ip();
	test_matches_unix(dir);
	test_bind(dir);
	test_open_all(dir);
	rmdir(dir);

	return test_done();
}
