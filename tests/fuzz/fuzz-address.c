/* Fuzzes addr_parse(): any text gives an address or -EINVAL with a reason. A parsed address must survive its
 * normalized form: addr_parse(addr_format(a)) succeeds, denotes the same socket, and formats to the same text. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text, const char *formatted, const char *why) {
	fprintf(stderr, "fuzz-address: %s\n  formatted: '%s'\n  why: %s\n", what, formatted ? formatted : "",
		why ? why : "");
	(void)text; /* the input itself is in the crash file libFuzzer writes */
	abort();
}

/* The sockaddr family an address may bind as: AF_UNIX for unix kinds, its own for tcp4/tcp6/udp4/udp6, either for
 * tcp:// and udp://. */
static bool family_fits(const struct address *a, sa_family_t f) {
	if (addr_is_unix(a))
		return f == AF_UNIX;
	if (a->family != AF_UNSPEC)
		return f == a->family;
	return f == AF_INET || f == AF_INET6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *text = malloc(size + 1);
	struct address a, b;
	const char *why = NULL;
	char buf[ADDR_FORMAT_MAX], buf2[ADDR_FORMAT_MAX];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* an embedded NUL simply ends the text early, as it would in a config value */

	int r = addr_parse(text, &a, &why);
	if (r < 0) {
		if (r != -EINVAL || !why)
			fail("addr_parse() failed without -EINVAL and a reason", text, NULL, why);
		/* The same answer without ret_why, and the out-parameter untouched on failure. */
		struct address untouched;
		memset(&untouched, 0x5a, sizeof(untouched));
		memset(&b, 0x5a, sizeof(b));
		if (addr_parse(text, &b, NULL) != -EINVAL)
			fail("addr_parse() answers differently with ret_why NULL", text, NULL, why);
		if (memcmp(&b, &untouched, sizeof(b)) != 0)
			fail("addr_parse() wrote to *ret on failure", text, NULL, why);
		free(text);
		return 0;
	}

	/* Exercise the cheap helpers too; they must agree with each other. */
	int type = addr_socket_type(&a);
	if (addr_is_stream(&a) != (type == SOCK_STREAM || type == SOCK_SEQPACKET))
		fail("addr_is_stream() disagrees with addr_socket_type()", text, NULL, NULL);
	if (!addr_equal(&a, &a))
		fail("an address is not addr_equal() to itself", text, NULL, NULL);

	/* What bind() gets, for the addresses that need no resolver (a name would mean DNS: slow and not
	 * deterministic). A parsed address must convert; only an IPv6 scope naming an absent interface may fail. */
	if (addr_is_unix(&a) || !a.host[0] || a.host_numeric) {
		struct sockaddr_storage ss;
		socklen_t sslen = 0;
		why = NULL;
		r = addr_to_sockaddr(&a, &ss, &sslen, &why);
		/* The one failure allowed: "no such network interface for the IPv6 scope". */
		bool absent_scope = r == -EADDRNOTAVAIL && strchr(a.host, '%') && why;
		if (r < 0 && !absent_scope)
			fail("addr_to_sockaddr() rejects a parsed address", text, NULL, why);
		if (r == 0 && (sslen == 0 || sslen > sizeof(ss) || !family_fits(&a, ss.ss_family)))
			fail("addr_to_sockaddr() returned a wrong length or family", text, NULL, NULL);
	}

	const char *formatted = addr_format(&a, buf);
	if (formatted != buf || strlen(buf) >= sizeof(buf))
		fail("addr_format() did not write into buf", text, NULL, NULL);
	why = NULL;
	if (addr_parse(buf, &b, &why) < 0)
		fail("the normalized form does not parse", text, buf, why);
	if (!addr_equal(&a, &b))
		fail("the normalized form denotes another address", text, buf, NULL);
	if (strcmp(addr_format(&b, buf2), buf) != 0)
		fail("addr_format() is not stable across a round trip", text, buf2, NULL);

	free(text);
	return 0;
}
