/* Listener addresses: the contract's syntax (tcp://HOST:PORT, unix:/path, ...), normalization, resolution at bind
 * time and comparison with a live socket. */
#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const struct {
	const char *scheme;
	enum addr_kind kind;
	int family;
} ip_schemes[] = {
	{"tcp", ADDR_TCP, AF_UNSPEC}, {"tcp4", ADDR_TCP, AF_INET}, {"tcp6", ADDR_TCP, AF_INET6},
	{"udp", ADDR_UDP, AF_UNSPEC}, {"udp4", ADDR_UDP, AF_INET}, {"udp6", ADDR_UDP, AF_INET6},
};

static const struct {
	const char *scheme;
	enum addr_kind kind;
} unix_schemes[] = {
	{"unix", ADDR_UNIX_STREAM},
	{"unix-dgram", ADDR_UNIX_DGRAM},
	{"unix-seqpacket", ADDR_UNIX_SEQPACKET},
};

static bool is_alnum(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 1-63 bytes each, 253 in all. */
static const char *host_name_check(const char *s, size_t len) {
	size_t label = 0;
	bool digits = true, last_label_numeric = false;

	if (len > 253)
		return "host name too long (max 253 characters)";
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0)
				return "empty label in host name";
			if (s[i - 1] == '-')
				return "host name label ends with '-'";
			last_label_numeric = digits;
			digits = true;
			label = 0;
			continue;
		}
		if (!is_alnum(s[i]) && s[i] != '-')
			return "invalid character in host name (allowed: letters, digits, '-', '.'; IPv6 needs "
			       "[brackets])";
		if (label == 0 && s[i] == '-')
			return "host name label starts with '-'";
		if (++label > 63)
			return "host name label too long (max 63 characters)";
		if (s[i] < '0' || s[i] > '9')
			digits = false;
	}
	/* "127.1", "256.1.1.1" or "0x7f000001" are not names: getaddrinfo() would read the first and the last as
	 * inet_aton() numbers, and a top-level domain is never all digits (RFC 3696 section 2). */
	struct in_addr dummy;
	char buf[254];
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (last_label_numeric || inet_aton(buf, &dummy))
		return "invalid IPv4 address";
	return NULL;
}

/* Interface names are at most IFNAMSIZ-1 bytes; a numeric scope id is also accepted by getaddrinfo() and by us. */
static bool scope_valid(const char *s) {
	size_t n = strlen(s);
	if (n == 0 || n >= IFNAMSIZ)
		return false;
	for (const char *p = s; *p; p++)
		if (!is_alnum(*p) && !strchr("._-", *p))
			return false;
	return true;
}

static int parse_port(const char *s, uint16_t *ret, const char **ret_why) {
	uint64_t v;

	if (!*s)
		return fail_why(ret_why, -EINVAL, "missing port (write HOST:PORT)");
	int r = parse_uint_max(s, 65535, &v);
	if (r == -ERANGE)
		return fail_why(ret_why, -EINVAL, "port out of range 1-65535");
	if (r < 0)
		return fail_why(ret_why, -EINVAL, "invalid port (a decimal number 1-65535 without leading zeros)");
	if (v == 0)
		return fail_why(ret_why, -EINVAL, "port out of range 1-65535");
	*ret = (uint16_t)v;
	return 0;
}

/* "[IPv6%SCOPE]:PORT": the address in brackets, normalized into a->host, then the port. */
static int parse_ip6_bracketed(const char *s, struct address *a, const char **ret_why) {
	const char *end = strchr(s, ']');
	if (!end)
		return fail_why(ret_why, -EINVAL, "missing ']' after IPv6 address");
	const char *host = s + 1;
	size_t host_len = (size_t)(end - host);
	if (host_len == 0)
		return fail_why(ret_why, -EINVAL, "empty IPv6 address in brackets (write :PORT for all addresses)");
	if (end[1] == '\0')
		return fail_why(ret_why, -EINVAL, "missing port (write [IPv6]:PORT)");
	if (end[1] != ':')
		return fail_why(ret_why, -EINVAL, "expected ':PORT' after ']'");

	char buf[INET6_ADDRSTRLEN + 1 + IFNAMSIZ];
	if (host_len >= sizeof(buf))
		return fail_why(ret_why, -EINVAL, "invalid IPv6 address");
	memcpy(buf, host, host_len);
	buf[host_len] = '\0';
	char *scope = strchr(buf, '%');
	if (scope) {
		*scope++ = '\0';
		if (!scope_valid(scope))
			return fail_why(ret_why, -EINVAL, "invalid IPv6 scope (write [fe80::1%IFNAME])");
	}
	struct in6_addr in6;
	if (inet_pton(AF_INET6, buf, &in6) != 1)
		return fail_why(ret_why, -EINVAL, "invalid IPv6 address");
	if (a->family == AF_INET)
		return fail_why(ret_why, -EINVAL,
				"an IPv6 address needs tcp://, tcp6://, udp:// or udp6://, not tcp4:// or udp4://");
	/* Normalize ("0:0::1" → "::1") so that equal addresses compare equal as strings. */
	if (!inet_ntop(AF_INET6, &in6, a->host, sizeof(a->host)))
		return fail_why(ret_why, -EINVAL, "invalid IPv6 address");
	if (scope) {
		size_t n = strlen(a->host);
		snprintf(a->host + n, sizeof(a->host) - n, "%%%s", scope);
	}
	a->host_numeric = true;
	return parse_port(end + 2, &a->port, ret_why);
}

/* A host without brackets, non-empty: a dotted-quad IPv4 address or a host name, kept in lower case in a->host. */
static int parse_ip_host(const char *host, size_t host_len, struct address *a, const char **ret_why) {
	char buf[INET_ADDRSTRLEN];
	struct in_addr in4;
	bool numeric = false;

	if (host_len < sizeof(buf)) {
		memcpy(buf, host, host_len);
		buf[host_len] = '\0';
		/* glibc's inet_pton() takes only the dotted quad with no leading zeros: already normalized. */
		numeric = inet_pton(AF_INET, buf, &in4) == 1;
	}
	if (numeric) {
		if (a->family == AF_INET6)
			return fail_why(
				ret_why, -EINVAL,
				"an IPv4 address needs tcp://, tcp4://, udp:// or udp4://, not tcp6:// or udp6://");
		a->host_numeric = true;
	} else {
		const char *why = host_name_check(host, host_len);
		if (why)
			return fail_why(ret_why, -EINVAL, why);
	}
	memcpy(a->host, host, host_len);
	a->host[host_len] = '\0';
	/* DNS names are case-insensitive: keep one spelling so that addr_equal() and the normalized form agree. */
	for (char *p = a->host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

/* The part after "://": "HOST:PORT", "[IPv6]:PORT" or ":PORT". */
static int parse_ip(const char *s, struct address *a, const char **ret_why) {
	if (!*s)
		return fail_why(ret_why, -EINVAL,
				"missing host and port (write HOST:PORT, or :PORT for all addresses)");
	if (*s == '[')
		return parse_ip6_bracketed(s, a, ret_why);

	const char *colon = strchr(s, ':');
	if (!colon)
		return fail_why(ret_why, -EINVAL, "missing port (write HOST:PORT)");
	if (strchr(colon + 1, ':'))
		return fail_why(ret_why, -EINVAL,
				"too many ':' (an IPv6 address must be written in brackets: [::1]:PORT)");
	size_t host_len = (size_t)(colon - s);
	if (host_len > 0) {
		int r = parse_ip_host(s, host_len, a, ret_why);
		if (r < 0)
			return r;
	}
	return parse_port(colon + 1, &a->port, ret_why);
}

static int parse_unix(const char *s, struct address *a, const char **ret_why) {
	size_t n;

	if (!*s)
		return fail_why(ret_why, -EINVAL, "empty unix socket path (write unix:/path or unix:@name)");
	if (*s == '@') {
		n = strlen(s + 1);
		if (n == 0)
			return fail_why(ret_why, -EINVAL, "empty abstract socket name (write unix:@name)");
		/* sun_path holds the leading NUL and the name; the name needs no terminating NUL. */
		if (n > ADDR_UNIX_PATH_MAX - 1)
			return fail_why(ret_why, -EINVAL, "abstract socket name too long (max 107 bytes)");
		memcpy(a->path, s + 1, n + 1);
		a->abstract = true;
		return 0;
	}
	if (*s != '/')
		return fail_why(ret_why, -EINVAL, "unix socket path must be absolute (write unix:/path or unix:@name)");
	if (s[1] == '/')
		return fail_why(ret_why, -EINVAL, "write unix:/path, not unix://path");
	n = strlen(s);
	if (n > ADDR_UNIX_PATH_MAX - 1)
		return fail_why(ret_why, -EINVAL, "unix socket path too long (max 107 bytes)");
	if (s[n - 1] == '/')
		return fail_why(ret_why, -EINVAL, "unix socket path must not end in '/'");
	memcpy(a->path, s, n + 1);
	return 0;
}

int addr_parse(const char *text, struct address *ret, const char **ret_why) {
	struct address a = {.family = AF_UNSPEC};

	if (!text || !*text)
		return fail_why(ret_why, -EINVAL, "empty address");
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail_why(ret_why, -EINVAL, "control character in address");

	const char *colon = strchr(text, ':');
	if (!colon || colon == text)
		return fail_why(ret_why, -EINVAL,
				"missing scheme (write tcp://HOST:PORT, udp://HOST:PORT or unix:/path)");
	size_t scheme_len = (size_t)(colon - text);
	bool slashes = strncmp(colon, "://", 3) == 0;

	for (size_t i = 0; i < ARRAY_SIZE(ip_schemes); i++) {
		if (strlen(ip_schemes[i].scheme) != scheme_len || strncmp(text, ip_schemes[i].scheme, scheme_len) != 0)
			continue;
		if (!slashes)
			return fail_why(ret_why, -EINVAL, "expected '://' after the scheme (write tcp://HOST:PORT)");
		a.kind = ip_schemes[i].kind;
		a.family = ip_schemes[i].family;
		int r = parse_ip(colon + 3, &a, ret_why);
		if (r < 0)
			return r;
		*ret = a;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(unix_schemes); i++) {
		if (strlen(unix_schemes[i].scheme) != scheme_len ||
		    strncmp(text, unix_schemes[i].scheme, scheme_len) != 0)
			continue;
		a.kind = unix_schemes[i].kind;
		a.family = AF_UNIX;
		int r = parse_unix(colon + 1, &a, ret_why);
		if (r < 0)
			return r;
		*ret = a;
		return 0;
	}
	return fail_why(ret_why, -EINVAL,
			"unknown scheme (expected tcp://, tcp4://, tcp6://, udp://, udp4://, udp6://, unix:, "
			"unix-dgram: or unix-seqpacket:)");
}

static const char *scheme_of(const struct address *a) {
	switch (a->kind) {
	case ADDR_TCP:
	case ADDR_UDP:
		for (size_t i = 0; i < ARRAY_SIZE(ip_schemes); i++)
			if (ip_schemes[i].kind == a->kind && ip_schemes[i].family == a->family)
				return ip_schemes[i].scheme;
		return a->kind == ADDR_TCP ? "tcp" : "udp";
	case ADDR_UNIX_STREAM:
		return "unix";
	case ADDR_UNIX_DGRAM:
		return "unix-dgram";
	case ADDR_UNIX_SEQPACKET:
		return "unix-seqpacket";
	default:
		return "invalid";
	}
}

const char *addr_format(const struct address *a, char buf[static ADDR_FORMAT_MAX]) {
	if (addr_is_unix(a))
		snprintf(buf, ADDR_FORMAT_MAX, "%s:%s%s", scheme_of(a), a->abstract ? "@" : "", a->path);
	else if (strchr(a->host, ':'))
		snprintf(buf, ADDR_FORMAT_MAX, "%s://[%s]:%u", scheme_of(a), a->host, (unsigned)a->port);
	else
		snprintf(buf, ADDR_FORMAT_MAX, "%s://%s:%u", scheme_of(a), a->host, (unsigned)a->port);
	return buf;
}

int addr_socket_type(const struct address *a) {
	switch (a->kind) {
	case ADDR_UDP:
	case ADDR_UNIX_DGRAM:
		return SOCK_DGRAM;
	case ADDR_UNIX_SEQPACKET:
		return SOCK_SEQPACKET;
	default:
		return SOCK_STREAM;
	}
}

bool addr_is_unix(const struct address *a) {
	return a->kind == ADDR_UNIX_STREAM || a->kind == ADDR_UNIX_DGRAM || a->kind == ADDR_UNIX_SEQPACKET;
}

bool addr_is_stream(const struct address *a) {
	return addr_socket_type(a) != SOCK_DGRAM;
}

/* The family the socket will really have: a numeric host decides it; an empty host under tcp:// binds [::]. */
static int effective_family(const struct address *a) {
	if (addr_is_unix(a))
		return AF_UNIX;
	if (a->host_numeric)
		return strchr(a->host, ':') ? AF_INET6 : AF_INET;
	if (!a->host[0] && a->family == AF_UNSPEC)
		return AF_INET6;
	return a->family;
}

bool addr_equal(const struct address *a, const struct address *b) {
	if (a->kind != b->kind)
		return false;
	if (addr_is_unix(a))
		return a->abstract == b->abstract && strcmp(a->path, b->path) == 0;
	/* tcp://127.0.0.1:80 and tcp4://127.0.0.1:80, or tcp://:80 and tcp6://:80, bind the same socket. Hosts are
	 * normalized by addr_parse(), so a string comparison suffices. */
	/* The port first: it is what tells most listeners apart, and it is free to compare (config validation and
	 * reload compare every pair of listeners). */
	return a->port == b->port && strcmp(a->host, b->host) == 0 && effective_family(a) == effective_family(b);
}

/* FNV-1a over what addr_equal() compares, so that equal addresses hash alike. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
	for (const unsigned char *s = p; n-- > 0; s++)
		h = (h ^ *s) * UINT64_C(0x100000001b3);
	return h;
}

static uint64_t addr_hash(const struct address *a) {
	uint64_t h = hash_bytes(UINT64_C(0xcbf29ce484222325), &a->kind, sizeof(a->kind));
	if (addr_is_unix(a)) {
		h = hash_bytes(h, &a->abstract, sizeof(a->abstract));
		return hash_bytes(h, a->path, strlen(a->path));
	}
	int family = effective_family(a);
	h = hash_bytes(h, &a->port, sizeof(a->port));
	h = hash_bytes(h, &family, sizeof(family));
	return hash_bytes(h, a->host, strlen(a->host));
}

/* A slot of the index's open-addressing table: k + 1 of an address (0: empty) and its hash. */
struct addr_index_entry {
	uint64_t hash;
	size_t k1;
};

static const struct address *index_at(const struct addr_index *x, size_t k) {
	return (const struct address *)(const void *)(x->base + k * x->stride);
}

int addr_index_init(struct addr_index *x, const struct address *base, size_t n, size_t stride) {
	*x = (struct addr_index){.n = n, .base = (const char *)base, .stride = stride};
	if (n == 0)
		return 0;
	size_t cap = hash_table_size(n);
	if (!(x->entries = calloc(cap, sizeof(*x->entries))))
		return -ENOMEM;
	x->mask = cap - 1;
	/* In index order, with linear probing and nothing ever removed: of equal addresses (one hash, one home slot),
	 * the lower k sits earlier on the probe run, so a lookup meets it first. */
	for (size_t k = 0; k < n; k++) {
		uint64_t h = addr_hash(index_at(x, k));
		size_t i = (size_t)h & x->mask;
		while (x->entries[i].k1)
			i = (i + 1) & x->mask;
		x->entries[i] = (struct addr_index_entry){.hash = h, .k1 = k + 1};
	}
	return 0;
}

long addr_index_find(const struct addr_index *x, const struct address *a) {
	if (x->n == 0)
		return -1;
	uint64_t h = addr_hash(a);
	for (size_t i = (size_t)h & x->mask; x->entries[i].k1; i = (i + 1) & x->mask)
		if (x->entries[i].hash == h && addr_equal(index_at(x, x->entries[i].k1 - 1), a))
			return (long)(x->entries[i].k1 - 1);
	return -1;
}

void addr_index_free(struct addr_index *x) {
	free(x->entries);
	*x = (struct addr_index){0};
}

static const char *gai_why(int e) {
	/* gai_strerror() returns static strings in glibc, but EAI_SYSTEM's real reason is in errno. */
	return e == EAI_SYSTEM ? "host name resolution failed" : gai_strerror(e);
}

static int numeric_to_sockaddr(const struct address *a, struct sockaddr_storage *ret, socklen_t *ret_len,
			       const char **ret_why) {
	char buf[sizeof(a->host)];
	memcpy(buf, a->host, sizeof(buf));

	char *scope = strchr(buf, '%');
	if (scope)
		*scope++ = '\0';

	struct sockaddr_storage ss = {0};
	if (strchr(buf, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
			return fail_why(ret_why, -EINVAL, "invalid IPv6 address");
		if (scope) {
			uint64_t idx;
			if (parse_uint_max(scope, UINT32_MAX, &idx) == 0)
				sin6->sin6_scope_id = (uint32_t)idx;
			else if (!(sin6->sin6_scope_id = if_nametoindex(scope))) {
				if (ret_why)
					*ret_why = "no such network interface for the IPv6 scope";
				return -EADDRNOTAVAIL;
			}
		}
		*ret_len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
			return fail_why(ret_why, -EINVAL, "invalid IPv4 address");
		*ret_len = sizeof(*sin);
	}
	*ret = ss;
	return 0;
}

static int unix_to_sockaddr(const struct address *a, struct sockaddr_storage *ret, socklen_t *ret_len,
			    const char **ret_why) {
	struct sockaddr_storage ss = {0};
	struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
	size_t n = strnlen(a->path, sizeof(a->path));
	if (n == 0 || n >= sizeof(sun->sun_path))
		return fail_why(ret_why, -EINVAL, "invalid unix socket path");
	sun->sun_family = AF_UNIX;
	if (a->abstract) {
		/* Abstract names are byte strings of exactly the given length: a trailing NUL would be part of the name
		 * (unix(7)), and other programs would not find the socket. */
		memcpy(sun->sun_path + 1, a->path, n);
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	} else {
		memcpy(sun->sun_path, a->path, n);
		*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	*ret = ss;
	return 0;
}

/* An empty host: 0.0.0.0 for tcp4:// and udp4://, else [::]. */
static void wildcard_to_sockaddr(const struct address *a, struct sockaddr_storage *ret, socklen_t *ret_len) {
	struct sockaddr_storage ss = {0};
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		*ret_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		sin6->sin6_addr = in6addr_any;
		*ret_len = sizeof(*sin6);
	}
	*ret = ss;
}

static int name_to_sockaddr(const struct address *a, struct sockaddr_storage *ret, socklen_t *ret_len,
			    const char **ret_why) {
	struct addrinfo *res = NULL;
	struct addrinfo hints = {
		.ai_family = a->family, .ai_socktype = addr_socket_type(a), .ai_flags = AI_NUMERICSERV};
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)a->port);
	int e = getaddrinfo(a->host, port, &hints, &res);
	if (e == EAI_MEMORY)
		return -ENOMEM;
	if (e != 0) {
		if (ret_why)
			*ret_why = gai_why(e);
		return -EADDRNOTAVAIL;
	}
	/* A name with several addresses binds one of them: the first IPv4 address, else the first IPv6 one (Go's
	 * net.Listen does the same for "tcp"). glibc lists ::1 before 127.0.0.1 for "localhost" (RFC 6724 order), and
	 * a socket on [::1] alone refuses clients that connect to 127.0.0.1 (socat 1.7, many scripts), while clients
	 * of the name (curl, python, socat 1.8) try every address and so reach 127.0.0.1 too. */
	for (int pass = 0; pass < 2; pass++)
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(*ret))
				continue;
			if (pass == 0 && ai->ai_family != AF_INET)
				continue;
			struct sockaddr_storage ss = {0};
			memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
			*ret_len = ai->ai_addrlen;
			*ret = ss;
			freeaddrinfo(res);
			return 0;
		}
	freeaddrinfo(res);
	if (ret_why)
		*ret_why = "host name has no address of the wanted family";
	return -EADDRNOTAVAIL;
}

int addr_to_sockaddr(const struct address *a, struct sockaddr_storage *ret, socklen_t *ret_len, const char **ret_why) {
	if (addr_is_unix(a))
		return unix_to_sockaddr(a, ret, ret_len, ret_why);
	if (!a->host[0]) {
		wildcard_to_sockaddr(a, ret, ret_len);
		return 0;
	}
	if (a->host_numeric)
		return numeric_to_sockaddr(a, ret, ret_len, ret_why);
	return name_to_sockaddr(a, ret, ret_len, ret_why);
}

static int getsockopt_int(int fd, int level, int opt, int *ret) {
	int v = 0;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, level, opt, &v, &len) < 0)
		return -errno;
	*ret = v;
	return 0;
}

static bool sockaddr_is_wildcard(const struct sockaddr_storage *ss) {
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss) {
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Same IP and port; a scope id counts only when the expected address names one. */
static bool sockaddr_ip_equal(const struct sockaddr_storage *want, const struct sockaddr_storage *got) {
	if (want->ss_family != got->ss_family || sockaddr_port(want) != sockaddr_port(got))
		return false;
	if (want->ss_family == AF_INET)
		return ((const struct sockaddr_in *)want)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)got)->sin_addr.s_addr;
	const struct sockaddr_in6 *w = (const struct sockaddr_in6 *)want, *g = (const struct sockaddr_in6 *)got;
	return IN6_ARE_ADDR_EQUAL(&w->sin6_addr, &g->sin6_addr) &&
	       (w->sin6_scope_id == 0 || w->sin6_scope_id == g->sin6_scope_id);
}

static int match_ip(const struct address *a, int domain, const struct sockaddr_storage *got) {
	if (got->ss_family != domain || sockaddr_port(got) != a->port)
		return 0;
	/* A socket bound to all addresses is one whichever family it has: systemd's ListenStream=8080 gives [::]
	 * with IPV6_V6ONLY=0, another passer may give 0.0.0.0. */
	if (!a->host[0])
		return sockaddr_is_wildcard(got);

	if (a->host_numeric) {
		struct sockaddr_storage want;
		socklen_t len;
		if (numeric_to_sockaddr(a, &want, &len, NULL) < 0)
			return 0;
		return sockaddr_ip_equal(&want, got);
	}

	/* A name may resolve to several addresses; the socket may be bound to any of them. */
	struct addrinfo *res = NULL;
	struct addrinfo hints = {.ai_family = domain, .ai_socktype = addr_socket_type(a), .ai_flags = AI_NUMERICSERV};
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)a->port);
	int e = getaddrinfo(a->host, port, &hints, &res);
	if (e == EAI_MEMORY)
		return -ENOMEM;
	if (e != 0)
		return 0;
	int r = 0;
	for (struct addrinfo *ai = res; ai && !r; ai = ai->ai_next) {
		struct sockaddr_storage want = {0};
		if (ai->ai_addrlen > sizeof(want))
			continue;
		memcpy(&want, ai->ai_addr, ai->ai_addrlen);
		r = sockaddr_ip_equal(&want, got);
	}
	freeaddrinfo(res);
	return r;
}

static int match_unix(const struct address *a, const struct sockaddr_storage *got, socklen_t len) {
	const struct sockaddr_un *sun = (const struct sockaddr_un *)got;
	size_t off = offsetof(struct sockaddr_un, sun_path);

	if (got->ss_family != AF_UNIX || len <= off) /* len == off: an unnamed socket */
		return 0;
	size_t n = len - off;
	if (n > sizeof(sun->sun_path))
		n = sizeof(sun->sun_path);
	if (sun->sun_path[0] == '\0') {
		/* getsockname() returns the abstract name with its leading NUL and exactly the bound length. */
		if (!a->abstract)
			return 0;
		return n - 1 == strlen(a->path) && memcmp(sun->sun_path + 1, a->path, n - 1) == 0;
	}
	if (a->abstract)
		return 0;
	size_t plen = strnlen(sun->sun_path, n);
	return plen == strlen(a->path) && memcmp(sun->sun_path, a->path, plen) == 0;
}

int addr_matches_fd(const struct address *a, int fd) {
	int type = 0, domain = 0, r;

	r = getsockopt_int(fd, SOL_SOCKET, SO_TYPE, &type);
	if (r < 0)
		return r;
	if (type != addr_socket_type(a))
		return 0;
	r = getsockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &domain);
	if (r < 0)
		return r;
	if (addr_is_unix(a)) {
		if (domain != AF_UNIX)
			return 0;
	} else {
		if (domain != AF_INET && domain != AF_INET6)
			return 0;
		if (a->family != AF_UNSPEC && domain != a->family)
			return 0;
		if (a->host_numeric && domain != effective_family(a))
			return 0;
		/* SOCK_STREAM over IP may be SCTP, SOCK_DGRAM may be UDP-Lite or ICMP. */
		int proto = 0;
		r = getsockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &proto);
		if (r < 0)
			return r;
		if (proto != (a->kind == ADDR_TCP ? IPPROTO_TCP : IPPROTO_UDP))
			return 0;
	}
	if (addr_is_stream(a)) {
		int listening = 0;
		r = getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening);
		if (r < 0)
			return r;
		if (!listening)
			return 0;
	}

	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (addr_is_unix(a))
		return match_unix(a, &ss, len);
	return match_ip(a, domain, &ss);
}
