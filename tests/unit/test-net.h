/* Helpers for the unit tests that need live sockets (test-address.c, test-sockets.c): an address that must parse, and
 * sockets bound by hand, the way another program (or systemd) would have bound them. */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "address.h"
#include "util.h"

/* The address text must parse: the tests that use it are about something else. */
static inline struct address parse(const char *text) {
	struct address a;
	const char *why = NULL;
	if (addr_parse(text, &a, &why) < 0) {
		printf("# cannot parse '%s': %s\n", text, strempty(why));
		abort();
	}
	return a;
}

/* A socket bound to ip:0 (the kernel picks a free port), listening for stream types. */
static inline int open_ip(int domain, int type, const char *ip, uint16_t port, bool v6only, uint16_t *ret_port) {
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
		int on = v6only;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
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
	*ret_port = ntohs(domain == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					     : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static inline int open_unix(int type, const char *path, bool abstract, bool do_listen) {
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

static inline bool have_ipv6(void) {
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}
