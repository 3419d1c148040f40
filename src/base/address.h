/* Listener addresses (baton.yaml(5) ADDRESSES): parsing the address syntax (pure), resolving it at bind time, and
 * comparing it with a live socket's address. Does not log. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

enum addr_kind {
	ADDR_TCP, /* tcp:// tcp4:// tcp6:// */
	ADDR_UDP, /* udp:// udp4:// udp6:// */
	ADDR_UNIX_STREAM, /* unix:/path, unix:@name */
	ADDR_UNIX_DGRAM, /* unix-dgram:/path, unix-dgram:@name */
	ADDR_UNIX_SEQPACKET, /* unix-seqpacket:/path, unix-seqpacket:@name */
	_ADDR_KIND_MAX,
};

#define ADDR_HOST_MAX 255
#define ADDR_UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

struct address {
	enum addr_kind kind;
	/* IP kinds: AF_UNSPEC for tcp:// and udp://, AF_INET for tcp4/udp4, AF_INET6 for tcp6/udp6. */
	int family;
	/* IP kinds: the host without brackets; "" means all addresses. */
	char host[ADDR_HOST_MAX + 1];
	/* IP kinds: true when host is a numeric IPv4/IPv6 address (no resolution needed). */
	bool host_numeric;
	uint16_t port;
	/* Unix kinds: the path, or the abstract name without its '@'. */
	char path[ADDR_UNIX_PATH_MAX];
	bool abstract;
};

/* Parses text into *ret. On error returns -EINVAL and, when ret_why is not NULL, points it at a static English
 * reason ("port out of range 1-65535", "unknown scheme 'htp'", ...). Pure: touches no global state, resolves nothing.
 */
int addr_parse(const char *text, struct address *ret, const char **ret_why);

/* Writes the normalized form ("tcp://[::1]:80", "tcp://:8080", "unix:@name") into buf; returns buf. */
#define ADDR_FORMAT_MAX (16 + ADDR_HOST_MAX + 2 + 6 + ADDR_UNIX_PATH_MAX)
const char *addr_format(const struct address *a, char buf[static ADDR_FORMAT_MAX]);

/* SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET. */
int addr_socket_type(const struct address *a);
bool addr_is_unix(const struct address *a);
bool addr_is_stream(const struct address *a); /* stream or seqpacket: listen() applies */

/* True when two parsed addresses denote the same socket (same kind, family, host, port / path). */
bool addr_equal(const struct address *a, const struct address *b);

/* Finding addresses among many without comparing every pair: a reload of 1,000 listeners matched each new one
 * against each old one (a million addr_equal() calls, most of baton's own reload time; issue 23). The index holds n
 * addresses at base, base + stride, ... (the address member of an array of structs) in a hash table (a hash that
 * equal addresses share): built and searched in O(n), not sorted. */
struct addr_index {
	struct addr_index_entry *entries;
	size_t n, mask;
	const char *base;
	size_t stride;
};
int addr_index_init(struct addr_index *x, const struct address *base, size_t n, size_t stride);
/* The lowest k whose address addr_equal()s a, or -1. */
long addr_index_find(const struct addr_index *x, const struct address *a);
void addr_index_free(struct addr_index *x);

/* Resolves a into a sockaddr for bind(). IP with an empty host: [::] for AF_UNSPEC and AF_INET6 (the caller decides
 * IPV6_V6ONLY), 0.0.0.0 for AF_INET; with a name: getaddrinfo(), first result of the wanted family. Unix: the
 * sockaddr_un with the right length (abstract names exclude any trailing NUL). Returns 0 or negative errno
 * (-EADDRNOTAVAIL when a name does not resolve; *ret_why then says why). */
int addr_to_sockaddr(const struct address *a, struct sockaddr_storage *ret, socklen_t *ret_len, const char **ret_why);

/* True when the bound socket fd is a socket of a's kind whose local address is a's (wildcards 0.0.0.0 and [::] are
 * treated as the same "all addresses"; a host name is resolved). Stream kinds must also be listening
 * (SO_ACCEPTCONN). Returns 1, 0, or negative errno if fd is not a socket. */
int addr_matches_fd(const struct address *a, int fd);
