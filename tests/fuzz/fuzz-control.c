/* Fuzzes the control socket's input: control_parse_request() on the first line, the JSON string writer and readers
 * (json_append_string() must round-trip through json_get_string()), and the same bytes sent by a real client over a
 * socketpair to control_client_read(), whose result and error reply are checked against the protocol. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "fuzz-util.h"
#include "json.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* control_client_read() looks at the first CONTROL_LINE_MAX + 1 bytes and drains the rest; more only costs time. */
#define SEND_MAX (16 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	log_max_level = -1;
	return 0;
}

static void fail(const char *what, const char *detail) {
	fprintf(stderr, "fuzz-control: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

static bool blank(char c) {
	return c == ' ' || c == '\t';
}

/* The protocol as control.h states it, written independently: blanks around the name, a '\r' among the trailing
 * ones, names case-sensitive; "upgrade" may be followed by blanks and an argument (the rest, trimmed). Returns the
 * request or -1, and the argument's bounds in *ret_arg and *ret_arg_len (NULL for none). */
static int expected_request(const char *line, const char **ret_arg, size_t *ret_arg_len) {
	const char *start = line, *end = line + strlen(line);
	*ret_arg = NULL;
	*ret_arg_len = 0;
	while (blank(*start))
		start++;
	while (end > start && (blank(end[-1]) || end[-1] == '\r'))
		end--;
	for (int i = 0; i < _CONTROL_REQUEST_MAX; i++) {
		const char *name = control_request_to_string((enum control_request)i);
		if (strlen(name) == (size_t)(end - start) && memcmp(start, name, (size_t)(end - start)) == 0)
			return i;
	}
	const char *word = "upgrade";
	size_t wn = strlen(word);
	if ((size_t)(end - start) > wn && memcmp(start, word, wn) == 0 && blank(start[wn])) {
		const char *a = start + wn;
		while (blank(*a))
			a++;
		*ret_arg = a;
		*ret_arg_len = (size_t)(end - a);
		return CONTROL_UPGRADE;
	}
	return -1;
}

/* Strict UTF-8 (RFC 3629), the rule json_append_string() applies. */
static bool utf8_valid(const unsigned char *p) {
	while (*p) {
		unsigned char c = *p;
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			p++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

static void fuzz_parse(const char *text) {
	const char *nl = strchr(text, '\n');
	size_t n = nl ? (size_t)(nl - text) : strlen(text);
	char *line = strndup(text, n);
	enum control_request req;
	const char *why = NULL;

	if (!line)
		return;
	const char *arg = NULL, *want_arg;
	size_t arg_len = 0, want_arg_len;
	int r = control_parse_request(line, &req, &arg, &arg_len, &why);
	int want = expected_request(line, &want_arg, &want_arg_len);
	if (r == 0 && (int)req != want)
		fail("control_parse_request() accepted a line the protocol rejects, or returned another request", NULL);
	if (r == 0 && (arg != want_arg || (arg && arg_len != want_arg_len)))
		fail("control_parse_request() returned another argument than the protocol says", NULL);
	if (r < 0 && (r != -EINVAL || !why || want >= 0))
		fail("control_parse_request() rejected a valid line, or without -EINVAL and a reason", why);
	free(line);
}

static void fuzz_json(const char *text) {
	struct json_buf b = {0};
	char *value = NULL;
	bool flag;

	/* The readers on arbitrary bytes: whatever a broken or hostile server might reply. */
	if (json_get_string(text, "error", &value) == 0) {
		if (!utf8_valid((const unsigned char *)value) && utf8_valid((const unsigned char *)text))
			fail("json_get_string() made invalid UTF-8 out of valid UTF-8", value);
		free(value);
	}
	(void)json_get_bool(text, "ok", &flag);

	/* The writer, then the reader: {"k":<text>}. */
	json_append(&b, "{\"k\":");
	json_append_string(&b, text);
	json_append(&b, "}");
	char *json = json_buf_take(&b);
	if (!json)
		return;
	if (strchr(json, '\n'))
		fail("json_append_string() wrote a raw newline, which would end a reply line early", json);
	if (!utf8_valid((const unsigned char *)json))
		fail("json_append_string() wrote invalid UTF-8", json);
	int r = json_get_string(json, "k", &value);
	if (r < 0)
		fail("json_get_string() cannot read what json_append_string() wrote", json);
	/* Valid UTF-8 comes back byte for byte; invalid bytes come back as U+FFFD, so only valid UTF-8 remains. */
	if (utf8_valid((const unsigned char *)text) ? strcmp(value, text) != 0
						    : !utf8_valid((const unsigned char *)value))
		fail("json_get_string() does not give back what json_append_string() wrote", json);
	if (json_get_bool(json, "k", &flag) != -ENOENT)
		fail("json_get_bool() read a string as a boolean", json);
	free(value);
	free(json);
}

/* The first line as control_client_read() sees it: returns its expected result. */
static int expected_read(const uint8_t *data, size_t size, enum control_request *ret) {
	size_t window = size < CONTROL_LINE_MAX + 1 ? size : CONTROL_LINE_MAX + 1;
	const uint8_t *nl = memchr(data, '\n', window);

	if (!nl)
		return size > CONTROL_LINE_MAX ? -EMSGSIZE : -ECONNRESET;
	size_t n = (size_t)(nl - data);
	if (memchr(data, '\0', n))
		return -EINVAL;
	char *line = strndup((const char *)data, n);
	if (!line)
		abort();
	const char *arg;
	size_t arg_len;
	int want = expected_request(line, &arg, &arg_len);
	free(line);
	if (want < 0)
		return -EINVAL;
	*ret = (enum control_request)want;
	return 1;
}

static void fuzz_client(const uint8_t *data, size_t size) {
	int s[2];
	size_t len = size < SEND_MAX ? size : SEND_MAX;
	enum control_request want_req = _CONTROL_REQUEST_MAX;
	int want = expected_read(data, len, &want_req);

	/* [0] is baton's end, non-blocking as control_accept() makes it; [1] the client, which sends everything and
	 * shuts down its write side, as `printf 'reload\n' | socat - UNIX:...` does. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0)
		fail("socketpair() failed", NULL);
	int sndbuf = 4 * SEND_MAX;
	(void)setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (fcntl(s[0], F_SETFL, O_NONBLOCK) < 0)
		fail("fcntl() failed", NULL);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(s[1], data + off, len - off);
		if (n <= 0)
			fail("write() to the socketpair failed", NULL);
		off += (size_t)n;
	}
	if (shutdown(s[1], SHUT_WR) < 0)
		fail("shutdown() failed", NULL);

	struct control_client cl = {.id = 1, .fd = s[0], .deadline_usec = 0};
	int r = 0;
	for (unsigned i = 0; r == 0; i++) {
		if (i == 100)
			fail("control_client_read() keeps returning 0 although all input and EOF are there", NULL);
		r = control_client_read(&cl);
	}
	if (r != want) {
		char detail[64];
		snprintf(detail, sizeof(detail), "returned %d, the protocol says %d", r, want);
		fail("control_client_read() returned the wrong result", detail);
	}

	if (r == 1) {
		if (!cl.has_request || cl.request != want_req)
			fail("control_client_read() returned 1 with the wrong request", NULL);
		if (cl.argument && (cl.request != CONTROL_UPGRADE || !*cl.argument))
			fail("control_client_read() kept an argument of a request that takes none", NULL);
		/* The rest is drained and EOF noted, with 0 from every call. */
		for (unsigned i = 0; !cl.eof; i++) {
			if (i == 100)
				fail("control_client_read() never notes EOF after the request", NULL);
			if (control_client_read(&cl) != 0)
				fail("control_client_read() after the request is not 0", NULL);
		}
	} else if (r == -EINVAL || r == -EMSGSIZE) {
		/* An error reply was sent: one line of JSON the client can read. */
		char reply[4096];
		ssize_t n = read(s[1], reply, sizeof(reply) - 1);
		if (n <= 0)
			fail("no error reply was sent", NULL);
		reply[n] = '\0';
		char *nl = strchr(reply, '\n');
		bool ok = true;
		char *error = NULL;
		if (!nl || nl[1] != '\0')
			fail("the error reply is not one line", reply);
		if (json_get_bool(reply, "ok", &ok) < 0 || ok || json_get_string(reply, "error", &error) < 0)
			fail("the error reply is not {\"ok\":false,\"error\":...}", reply);
		free(error);
	}
	free(cl.argument);
	close(s[0]);
	close(s[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	fuzz_check_fds("fuzz-control", 0, 10000);

	/* The text parsers take C strings: an embedded NUL ends the text. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_parse(text);
	fuzz_json(text);
	free(text);

	fuzz_client(data, size);
	return 0;
}
