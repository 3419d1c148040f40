/* The notify protocol baton reads from its children (baton(1) NOTIFY RELAY; sd_notify(3)): notify_parse() with every
 * key, bad values, unknown keys, CRLF, duplicates, messages to drop, UTF-8 and long STATUS=; and the socket itself
 * with real datagrams. */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "evloop.h"
#include "notify.h"
#include "util.h"

/* notify_parse() wants a NUL after len bytes and writes into the buffer: give it a private copy. */
static char parse_buf[NOTIFY_BUFFER_MAX + 1];

static int parse_n(const char *text, size_t len, struct notify_msg *m) {
	memcpy(parse_buf, text, len);
	parse_buf[len] = '\0';
	return notify_parse(parse_buf, len, m);
}

static int parse(const char *text, struct notify_msg *m) {
	return parse_n(text, strlen(text), m);
}

static bool msg_is_empty(const struct notify_msg *m) {
	return !m->ready && !m->reloading && !m->stopping && !m->watchdog && !m->watchdog_trigger && !m->barrier &&
	       !m->fdstore && !m->status && !m->fdname && m->errno_value == -1 &&
	       m->extend_timeout_usec == UINT64_MAX && m->monotonic_usec == UINT64_MAX && m->mainpid == 0 &&
	       !m->mainpid_invalid;
}

static void test_parse_keys(void) {
	struct notify_msg m;

	CHECK(parse("READY=1", &m) == 0 && m.ready, "READY=1");
	CHECK(parse("RELOADING=1\nMONOTONIC_USEC=123456789", &m) == 0 && m.reloading && m.monotonic_usec == 123456789,
	      "RELOADING=1 + MONOTONIC_USEC=");
	CHECK(parse("STOPPING=1", &m) == 0 && m.stopping && !m.ready, "STOPPING=1");
	CHECK(parse("WATCHDOG=1", &m) == 0 && m.watchdog && !m.watchdog_trigger, "WATCHDOG=1");
	CHECK(parse("WATCHDOG=trigger", &m) == 0 && m.watchdog_trigger && !m.watchdog, "WATCHDOG=trigger");
	CHECK(parse("BARRIER=1", &m) == 0 && m.barrier, "BARRIER=1");
	CHECK(parse("FDSTORE=1\nFDNAME=conn-1", &m) == 0 && m.fdstore, "FDSTORE=1");
	CHECK_STREQ(m.fdname, "conn-1", "FDNAME=");
	CHECK(parse("FDSTORE=1\nFDNAME=a\nFDPOLL=0", &m) == 0 && m.fdstore && m.fdpoll == 0, "FDPOLL=0");
	CHECK(parse("FDSTORE=1\nFDPOLL=1", &m) == 0 && m.fdpoll == 1, "FDPOLL=1");
	CHECK(parse("FDSTORE=1\nFDPOLL=2", &m) == 0 && m.fdpoll == -1, "FDPOLL=2 is ignored");
	CHECK(parse("FDSTORE=1", &m) == 0 && m.fdpoll == -1 && !m.fdstore_remove, "no FDPOLL, no FDSTOREREMOVE");
	CHECK(parse("FDSTOREREMOVE=1\nFDNAME=a", &m) == 0 && m.fdstore_remove && streq(m.fdname, "a"),
	      "FDSTOREREMOVE=1");
	CHECK(parse("FDSTOREREMOVE=yes", &m) == 0 && !m.fdstore_remove, "FDSTOREREMOVE=yes is ignored");
	CHECK(parse("ERRNO=0", &m) == 0 && m.errno_value == 0, "ERRNO=0");
	CHECK(parse("ERRNO=110", &m) == 0 && m.errno_value == 110, "ERRNO=110");
	CHECK(parse("EXTEND_TIMEOUT_USEC=5000000", &m) == 0 && m.extend_timeout_usec == 5000000,
	      "EXTEND_TIMEOUT_USEC=");
	CHECK(parse("MAINPID=4242", &m) == 0 && m.mainpid == 4242 && !m.mainpid_invalid, "MAINPID=");
	CHECK(parse("STATUS=Serving 3 clients", &m) == 0, "STATUS= parses");
	CHECK_STREQ(m.status, "Serving 3 clients", "STATUS= value");
	CHECK(parse("STATUS=", &m) == 0, "empty STATUS= parses");
	CHECK_STREQ(m.status, "", "empty STATUS= is the empty string, not absent");
	CHECK(parse("STATUS=a=b=c", &m) == 0, "STATUS= with '=' in the value");
	CHECK_STREQ(m.status, "a=b=c", "the value runs from the first '='");

	CHECK(parse("READY=1\nSTATUS=up\nERRNO=5\nMAINPID=7\nWATCHDOG=1\n", &m) == 0 && m.ready && m.watchdog &&
	          m.errno_value == 5 && m.mainpid == 7,
	      "several keys, trailing newline");
	CHECK_STREQ(m.status, "up", "STATUS= among several keys");
	CHECK(!m.reloading && !m.stopping && !m.barrier && !m.fdstore && !m.fdname && !m.watchdog_trigger &&
	          m.extend_timeout_usec == UINT64_MAX && m.monotonic_usec == UINT64_MAX,
	      "absent keys keep their defaults");

	CHECK(parse("\n\nREADY=1\n\n\nSTATUS=x\n\n", &m) == 0 && m.ready, "empty lines are fine");
	CHECK_STREQ(m.status, "x", "STATUS= between empty lines");
	CHECK(parse("\n", &m) == 0 && msg_is_empty(&m), "a lone newline is an empty message, not an error");
}

static void test_parse_bad_values(void) {
	struct notify_msg m;

	CHECK(parse("READY=2", &m) == 0 && !m.ready, "READY=2 ignored");
	CHECK(parse("READY=true", &m) == 0 && !m.ready, "READY=true ignored");
	CHECK(parse("READY=", &m) == 0 && !m.ready, "READY= ignored");
	CHECK(parse("READY=1 ", &m) == 0 && !m.ready, "READY=1 with a trailing space ignored");
	CHECK(parse(" READY=1", &m) == 0 && !m.ready, "a leading space makes an unknown key");
	CHECK(parse("ready=1", &m) == 0 && !m.ready, "keys are case-sensitive");
	CHECK(parse("READY", &m) == 0 && msg_is_empty(&m), "a line without '=' is ignored");
	CHECK(parse("READY\nSTOPPING=1", &m) == 0 && m.stopping && !m.ready,
	      "a line without '=' does not stop parsing");
	CHECK(parse("STOPPING=0\nRELOADING=yes\nBARRIER=2\nFDSTORE=0", &m) == 0 && msg_is_empty(&m),
	      "flags other than =1 ignored");
	CHECK(parse("WATCHDOG=0", &m) == 0 && !m.watchdog && !m.watchdog_trigger, "WATCHDOG=0 ignored");
	CHECK(parse("WATCHDOG=TRIGGER", &m) == 0 && !m.watchdog && !m.watchdog_trigger, "WATCHDOG=TRIGGER ignored");

	CHECK(parse("ERRNO=x", &m) == 0 && m.errno_value == -1, "ERRNO=x ignored");
	CHECK(parse("ERRNO=-1", &m) == 0 && m.errno_value == -1, "ERRNO=-1 ignored");
	CHECK(parse("ERRNO=+5", &m) == 0 && m.errno_value == -1, "ERRNO=+5 ignored");
	CHECK(parse("ERRNO=05", &m) == 0 && m.errno_value == -1, "ERRNO=05 ignored (strict decimal)");
	CHECK(parse("ERRNO=0x10", &m) == 0 && m.errno_value == -1, "ERRNO=0x10 ignored");
	CHECK(parse("ERRNO=2147483648", &m) == 0 && m.errno_value == -1, "ERRNO beyond INT_MAX ignored");
	CHECK(parse("ERRNO=2147483647", &m) == 0 && m.errno_value == 2147483647, "ERRNO=INT_MAX accepted");
	CHECK(parse("ERRNO= 5", &m) == 0 && m.errno_value == -1, "ERRNO with a space ignored");

	CHECK(parse("MAINPID=0", &m) == 0 && m.mainpid == 0 && m.mainpid_invalid, "MAINPID=0 ignored, invalid");
	CHECK(parse("MAINPID=-3", &m) == 0 && m.mainpid == 0 && m.mainpid_invalid, "MAINPID=-3 ignored, invalid");
	CHECK(parse("MAINPID=12ab", &m) == 0 && m.mainpid == 0 && m.mainpid_invalid, "MAINPID=12ab ignored, invalid");
	CHECK(parse("MAINPID=abc", &m) == 0 && m.mainpid == 0 && m.mainpid_invalid, "MAINPID=abc ignored, invalid");
	CHECK(parse("MAINPID=99999999999", &m) == 0 && m.mainpid == 0 && m.mainpid_invalid,
	      "MAINPID beyond pid_t ignored, invalid");
	CHECK(parse("MAINPID=abc\nMAINPID=12", &m) == 0 && m.mainpid == 12 && !m.mainpid_invalid,
	      "a later valid MAINPID= wins");

	CHECK(parse("EXTEND_TIMEOUT_USEC=5s", &m) == 0 && m.extend_timeout_usec == UINT64_MAX,
	      "EXTEND_TIMEOUT_USEC=5s ignored");
	CHECK(parse("EXTEND_TIMEOUT_USEC=99999999999999999999", &m) == 0 && m.extend_timeout_usec == UINT64_MAX,
	      "EXTEND_TIMEOUT_USEC overflow ignored");
	CHECK(parse("MONOTONIC_USEC=", &m) == 0 && m.monotonic_usec == UINT64_MAX, "empty MONOTONIC_USEC= ignored");

	CHECK(parse("FDNAME=a:b", &m) == 0 && !m.fdname, "FDNAME with ':' ignored");
	CHECK(parse("FDNAME=tab\there", &m) == 0 && !m.fdname, "FDNAME with a control character ignored");
	{
		char text[300] = "FDNAME=";
		memset(text + 7, 'n', 255);
		CHECK(parse(text, &m) == 0 && m.fdname && strlen(m.fdname) == 255, "FDNAME of 255 characters accepted");
		text[7 + 255] = 'n';
		CHECK(parse(text, &m) == 0 && !m.fdname, "FDNAME of 256 characters ignored");
	}

	/* A bad value is ignored with its key alone: the rest of the datagram still counts. */
	CHECK(parse("ERRNO=x\nREADY=1\nMAINPID=0\nSTATUS=ok", &m) == 0 && m.ready && m.errno_value == -1 &&
	          m.mainpid == 0,
	      "bad values do not spoil the good keys");
	CHECK_STREQ(m.status, "ok", "STATUS= next to bad values");
}

static void test_parse_unknown_and_crlf(void) {
	struct notify_msg m;

	CHECK(parse("FOO=bar\nX_BATON_WHATEVER=1\n=1\nFDSTOREREMOVE=1\nFDPOLL=0", &m) == 0 && msg_is_empty(&m),
	      "unknown keys ignored");
	CHECK(parse("FOO=bar\nREADY=1", &m) == 0 && m.ready, "unknown keys do not stop parsing");

	/* systemd splits on '\n' only; a '\r' stays in the value, so "READY=1\r" is not READY=1. */
	CHECK(parse("READY=1\r\nSTATUS=hi\r\n", &m) == 0 && !m.ready, "CRLF: READY=1\\r is not READY=1");
	CHECK_STREQ(m.status, "hi\r", "CRLF: the '\\r' stays in STATUS=");
}

static void test_parse_duplicates(void) {
	struct notify_msg m;

	CHECK(parse("STATUS=first\nSTATUS=second", &m) == 0, "duplicate STATUS=");
	CHECK_STREQ(m.status, "second", "the later STATUS= wins");
	CHECK(parse("ERRNO=1\nERRNO=2\nMAINPID=10\nMAINPID=20", &m) == 0 && m.errno_value == 2 && m.mainpid == 20,
	      "the later ERRNO= and MAINPID= win");
	CHECK(parse("ERRNO=3\nERRNO=x", &m) == 0 && m.errno_value == 3, "a later bad value does not erase a good one");
	CHECK(parse("STATUS=\xff\nSTATUS=fine", &m) == 0 && streq(m.status, "fine"), "a bad STATUS= overridden by a good one");
	CHECK(parse("STATUS=fine\nSTATUS=\xff", &m) == 0 && !m.status, "a bad later STATUS= clears the status");
}

static void test_parse_drop(void) {
	struct notify_msg m = {.ready = true};

	CHECK(parse_n("", 0, &m) == -EBADMSG, "an empty datagram is dropped");
	CHECK(m.ready, "*ret untouched on failure");
	CHECK(parse_n("READY=1\0STATUS=x", 16, &m) == -EBADMSG, "an embedded NUL drops the datagram");
	CHECK(parse_n("READY=1\0", 8, &m) == -EBADMSG, "a trailing NUL inside len drops the datagram");
	CHECK(parse_n("\0", 1, &m) == -EBADMSG, "a lone NUL drops the datagram");

	static const struct {
		const char *status, *why;
	} bad[] = {
	    {"\xc0\xaf", "overlong 2-byte '/'"},
	    {"\xc1\xbf", "overlong 2-byte (0xc1)"},
	    {"\xe0\x80\xaf", "overlong 3-byte"},
	    {"\xf0\x80\x80\xaf", "overlong 4-byte"},
	    {"a\x80z", "lone continuation byte"},
	    {"\xbf", "lone continuation byte alone"},
	    {"\xed\xa0\x80", "surrogate U+D800"},
	    {"\xed\xbf\xbf", "surrogate U+DFFF"},
	    {"\xf4\x90\x80\x80", "U+110000, above U+10FFFF"},
	    {"\xf5\x80\x80\x80", "0xf5 lead byte"},
	    {"\xff", "0xff byte"},
	    {"\xfe", "0xfe byte"},
	    {"abc\xc3", "truncated 2-byte sequence at the end"},
	    {"\xe2\x82", "truncated 3-byte sequence"},
	    {"\xf0\x9f\x98", "truncated 4-byte sequence"},
	    {"\xe2\x82z", "truncated 3-byte sequence before ASCII"},
	    {"\xc3\xc3\xa9", "lead byte followed by a lead byte"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "READY=1\nSTATUS=%s\n", bad[i].status);
		m.ready = false;
		CHECK(parse(text, &m) == 0 && m.ready && !m.status,
		      "invalid UTF-8 in STATUS= ignores that line only: %s", bad[i].why);
	}

	/* Invalid UTF-8 elsewhere is none of our business: only STATUS= is text we relay. */
	CHECK(parse("X_BINARY=\xff\xfe\nREADY=1", &m) == 0 && m.ready, "invalid UTF-8 in an unknown key is ignored");
}

static void test_parse_utf8_valid(void) {
	static const struct {
		const char *status, *why;
	} good[] = {
	    {"caf\xc3\xa9", "2-byte (é)"},
	    {"\xc2\x80", "smallest 2-byte U+0080"},
	    {"\xdf\xbf", "largest 2-byte U+07FF"},
	    {"\xe0\xa0\x80", "smallest 3-byte U+0800"},
	    {"\xe2\x82\xac 5", "3-byte (€)"},
	    {"\xed\x9f\xbf", "U+D7FF, just below the surrogates"},
	    {"\xee\x80\x80", "U+E000, just above the surrogates"},
	    {"\xef\xbf\xbf", "U+FFFF"},
	    {"\xf0\x90\x80\x80", "smallest 4-byte U+10000"},
	    {"\xf0\x9f\x98\x80 ok", "4-byte (emoji)"},
	    {"\xf4\x8f\xbf\xbf", "U+10FFFF"},
	    {"\x7f\x01\t", "ASCII control characters"},
	};
	struct notify_msg m;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "STATUS=%s", good[i].status);
		CHECK(parse(text, &m) == 0, "valid UTF-8 accepted: %s", good[i].why);
		CHECK_STREQ(m.status, good[i].status, "value kept: %s", good[i].why);
	}
}

static void test_parse_long_status(void) {
	static char text[NOTIFY_BUFFER_MAX + 1], want[NOTIFY_BUFFER_MAX];
	struct notify_msg m;
	size_t prefix = strlen("READY=1\nSTATUS=");

	/* Fill the whole buffer: a status as long as a datagram can be. Mix in multibyte characters. */
	memcpy(text, "READY=1\nSTATUS=", prefix);
	size_t i = prefix;
	while (i + 2 <= NOTIFY_BUFFER_MAX) {
		if (i % 7 == 0) {
			memcpy(text + i, "\xc3\xa9", 2);
			i += 2;
		} else {
			text[i] = (char)('a' + i % 26);
			i++;
		}
	}
	size_t len = i;
	memcpy(want, text + prefix, len - prefix);
	want[len - prefix] = '\0';

	CHECK(parse_n(text, len, &m) == 0 && m.ready, "a status filling the %d-byte buffer parses", NOTIFY_BUFFER_MAX);
	CHECK(m.status && strlen(m.status) == len - prefix, "the long status keeps its length (%zu)", len - prefix);
	CHECK_STREQ(m.status, want, "the long status keeps its bytes");
}

/* The real socket. */

static int count_fds(void) {
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* opendir's own fd */
}

static socklen_t abstract_address(const char *path, struct sockaddr_un *sa) {
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (path[0] != '@') {
		memcpy(sa->sun_path, path, n + 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	sa->sun_path[0] = '\0';
	memcpy(sa->sun_path + 1, path + 1, n - 1); /* skip the '@' */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

/* Sends text (len bytes) with n_fds copies of fd. Returns what sendmsg returned. */
static ssize_t send_datagram(const char *path, const void *text, size_t len, int fd, size_t n_fds) {
	static union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * NOTIFY_FD_MAX)];
	} control;
	struct sockaddr_un sa;
	struct iovec iov = {.iov_base = (void *)text, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t r;

	mh.msg_name = &sa;
	mh.msg_namelen = abstract_address(path, &sa);
	if (n_fds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = &control;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		for (size_t i = 0; i < n_fds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	}

	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	r = sendmsg(s, &mh, 0);
	close(s);
	return r;
}

static void test_socket(void) {
	static struct notify_datagram d; /* large: callers keep one around */
	struct notify_msg m;
	int fd = -1, pipefd[2], r;
	char *path = NULL;

	dev_t dev;
	ino_t ino;
	char *error = NULL;
	r = notify_server_open(NULL, &fd, &path, &dev, &ino, &error);
	CHECK(r == 0 && fd >= 0 && path && dev == 0 && ino == 0, "notify_server_open: %s", strerror(-r));
	free(error);
	if (r < 0)
		return;
	CHECK(strncmp(path, "@baton/", 7) == 0, "NOTIFY_SOCKET path is abstract and ours: %s", path);
	{
		char want[64];
		snprintf(want, sizeof(want), "@baton/%d/notify/", (int)getpid());
		CHECK(strncmp(path, want, strlen(want)) == 0, "path carries our PID: %s", path);
	}
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) && (fcntl(fd, F_GETFL) & O_NONBLOCK), "close-on-exec and non-blocking");
	{
		int one = 0, type = 0;
		socklen_t l = sizeof(one);
		getsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, &l);
		l = sizeof(type);
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
		CHECK(one == 1 && type == SOCK_DGRAM, "SO_PASSCRED on a datagram socket");

		struct sockaddr_un sa;
		l = sizeof(sa);
		getsockname(fd, (struct sockaddr *)&sa, &l);
		CHECK(sa.sun_path[0] == '\0' && l == offsetof(struct sockaddr_un, sun_path) + strlen(path),
		      "abstract address without a trailing NUL in its length");
	}

	/* A second socket gets a different name. */
	{
		int fd2 = -1;
		char *path2 = NULL;
		CHECK(notify_server_open(NULL, &fd2, &path2, &dev, &ino, NULL) == 0 && !streq(path, path2),
		      "a second socket: %s", path2);
		if (fd2 >= 0)
			close(fd2);
		free(path2);
	}

	CHECK(notify_receive(fd, &d) == 0 && d.n_fds == 0, "an empty socket returns 0");

	/* A plain datagram with one pipe fd. We send no credentials: SO_PASSCRED on the receiver makes the kernel
	 * attach ours. */
	/* Pipes are non-blocking: a write end that leaked makes read() fail with EAGAIN instead of hanging the test. */
	CHECK(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
	CHECK(send_datagram(path, "READY=1\nSTATUS=hi", 17, pipefd[1], 1) == 17, "sendmsg READY=1 + fd");
	r = notify_receive(fd, &d);
	CHECK(r == 1, "notify_receive got one datagram (%d)", r);
	CHECK(d.pid == getpid() && d.uid == getuid(), "credentials: pid %d uid %u", (int)d.pid, (unsigned)d.uid);
	CHECK(d.len == 17 && d.buf[17] == '\0', "length %zu, NUL-terminated", d.len);
	CHECK(d.n_fds == 1 && d.fds[0] >= 0, "one fd received");
	if (d.n_fds == 1) {
		CHECK(fcntl(d.fds[0], F_GETFD) & FD_CLOEXEC, "received fd is close-on-exec");
		/* It is our pipe's write end: closing both copies must give EOF on the read end. */
		close(pipefd[1]);
		notify_datagram_close_fds(&d);
		char c;
		CHECK(read(pipefd[0], &c, 1) == 0, "closing the received fd closes the pipe (BARRIER=1 semantics)");
	} else
		close(pipefd[1]);
	close(pipefd[0]);
	CHECK(d.n_fds == 0, "notify_datagram_close_fds resets n_fds");
	CHECK(notify_parse(d.buf, d.len, &m) == 0 && m.ready, "the received text parses");
	CHECK_STREQ(m.status, "hi", "received STATUS=");
	CHECK(notify_receive(fd, &d) == 0, "drained again");

	/* An oversized datagram is dropped with its fds closed. */
	{
		static char big[8192];
		memset(big, 'x', sizeof(big));
		memcpy(big, "STATUS=", 7);
		CHECK(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
		int before = count_fds();
		CHECK(send_datagram(path, big, sizeof(big), pipefd[1], 3) == (ssize_t)sizeof(big),
		      "sendmsg 8 KiB + 3 fds");
		r = notify_receive(fd, &d);
		CHECK(r == -EMSGSIZE, "oversized datagram gives -EMSGSIZE (%d)", r);
		CHECK(d.n_fds == 0, "no fds handed to the caller");
		CHECK(count_fds() == before, "its fds were closed (%d open, %d before)", count_fds(), before);
		close(pipefd[1]);
		char c;
		CHECK(read(pipefd[0], &c, 1) == 0, "no copy of the pipe's write end survives");
		close(pipefd[0]);
		CHECK(notify_receive(fd, &d) == 0, "drained after the oversized one");
	}

	/* Exactly the buffer size still fits. */
	{
		static char full[NOTIFY_BUFFER_MAX];
		memset(full, 'y', sizeof(full));
		memcpy(full, "STATUS=", 7);
		CHECK(send_datagram(path, full, sizeof(full), -1, 0) == (ssize_t)sizeof(full), "sendmsg 4096 bytes");
		r = notify_receive(fd, &d);
		CHECK(r == 1 && d.len == NOTIFY_BUFFER_MAX && d.buf[NOTIFY_BUFFER_MAX] == '\0',
		      "a datagram of exactly NOTIFY_BUFFER_MAX bytes is received whole (%d)", r);
		CHECK(notify_parse(d.buf, d.len, &m) == 0 && m.status && strlen(m.status) == NOTIFY_BUFFER_MAX - 7,
		      "and parses");
	}

	/* Short datagrams land in the caller's small[], longer ones in the large buffer; both whole, at either side of
	 * the line, and an empty one too. */
	{
		static char text[NOTIFY_INLINE_MAX + 2];
		memset(text, 'z', sizeof(text));
		memcpy(text, "STATUS=", 7);
		for (size_t len = NOTIFY_INLINE_MAX; len <= NOTIFY_INLINE_MAX + 1; len++) {
			CHECK(send_datagram(path, text, len, -1, 0) == (ssize_t)len, "sendmsg %zu bytes", len);
			r = notify_receive(fd, &d);
			CHECK(r == 1 && d.len == len && d.buf[len] == '\0' && memcmp(d.buf, text, len) == 0,
			      "a datagram of %zu bytes is received whole (%d, %zu)", len, r, d.len);
			CHECK((d.buf == d.small) == (len <= NOTIFY_INLINE_MAX), "%zu bytes: %s buffer", len,
			      d.buf == d.small ? "the small" : "the large");
		}
		CHECK(send_datagram(path, "", 0, -1, 0) == 0, "sendmsg 0 bytes");
		r = notify_receive(fd, &d);
		CHECK(r == 1 && d.len == 0 && d.buf[0] == '\0', "an empty datagram is received (%d, %zu)", r, d.len);
		CHECK(notify_receive(fd, &d) == 0, "drained after the empty one");
	}

	/* The most fds a datagram can carry fit in our control buffer (no MSG_CTRUNC). */
	{
		CHECK(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
		int before = count_fds();
		CHECK(send_datagram(path, "FDSTORE=1", 9, pipefd[1], NOTIFY_FD_MAX) == 9, "sendmsg with %d fds",
		      NOTIFY_FD_MAX);
		r = notify_receive(fd, &d);
		CHECK(r == 1 && d.n_fds == NOTIFY_FD_MAX, "all %d fds received (%d, %zu)", NOTIFY_FD_MAX, r, d.n_fds);
		CHECK(count_fds() == before + (int)d.n_fds, "they are open in our table");
		notify_datagram_close_fds(&d);
		CHECK(count_fds() == before, "and all closed again");
		close(pipefd[0]);
		close(pipefd[1]);
	}

	/* A datagram that is not valid text is still received; dropping it is notify_parse's job. */
	CHECK(send_datagram(path, "READY=1\0x", 9, -1, 0) == 9, "sendmsg with an embedded NUL");
	CHECK(notify_receive(fd, &d) == 1 && d.len == 9 && notify_parse(d.buf, d.len, &m) == -EBADMSG,
	      "received, then rejected by notify_parse");

	/* A real sd_notify client finds the socket through NOTIFY_SOCKET. */
	CHECK(setenv("NOTIFY_SOCKET", path, 1) == 0, "setenv NOTIFY_SOCKET=%s", path);
	CHECK(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
	r = sd_pid_notify_with_fds(0, 0, "READY=1\nSTATUS=from libsystemd", &pipefd[1], 1);
	CHECK(r > 0, "sd_pid_notify_with_fds: %d", r);
	r = notify_receive(fd, &d);
	CHECK(r == 1 && d.pid == getpid() && d.n_fds == 1, "libsystemd's datagram received with creds and its fd");
	CHECK(notify_parse(d.buf, d.len, &m) == 0 && m.ready, "libsystemd's READY=1");
	CHECK_STREQ(m.status, "from libsystemd", "libsystemd's STATUS=");
	notify_datagram_close_fds(&d);
	close(pipefd[0]);
	close(pipefd[1]);

	/* Upstream: NOTIFY_SOCKET is read at the first call, which is now, so the messages come back to us. */
	CHECK(notify_upstream_enabled(), "upstream enabled with NOTIFY_SOCKET set");
	notify_upstream("STATUS=upstream");
	r = notify_receive(fd, &d);
	CHECK(r == 1 && d.pid == getpid() && notify_parse(d.buf, d.len, &m) == 0, "notify_upstream sent a datagram");
	CHECK_STREQ(m.status, "upstream", "notify_upstream's text");
	notify_upstreamf("RELOADING=1\nMONOTONIC_USEC=%llu", 12345ULL);
	r = notify_receive(fd, &d);
	CHECK(r == 1 && notify_parse(d.buf, d.len, &m) == 0 && m.reloading && m.monotonic_usec == 12345,
	      "notify_upstreamf formats its text");
	CHECK(notify_receive(fd, &d) == 0, "nothing else was sent");

	/* The environment stays intact (children get theirs built separately), and losing the socket is not fatal. */
	CHECK(streq(getenv("NOTIFY_SOCKET"), path), "NOTIFY_SOCKET left in our environment");
	close(fd);
	notify_upstream("STATUS=nobody listens"); /* logs a warning, must not crash */
	CHECK(notify_upstream_enabled(), "still enabled after a failed send");
	unsetenv("NOTIFY_SOCKET");
	free(path);
}

/* The path form (notify.socket auto or a path): what every client library reaches, as systemd's own. */
static void test_socket_path(void) {
	char dir[] = "/tmp/test-notify-XXXXXX", path[256], longp[200];
	struct stat st;
	int fd = -1, fd2 = -1, r;
	char *got = NULL, *error = NULL;
	dev_t dev;
	ino_t ino;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/sub/notify.sock", dir);
	r = notify_server_open(path, &fd, &got, &dev, &ino, &error);
	CHECK(r == 0 && fd >= 0, "a path socket, its directory created: %s", strempty(error));
	CHECK(got && streq(got, path), "NOTIFY_SOCKET is the path itself: %s", strempty(got));
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0777 && st.st_ino == ino,
	      "a socket file of mode 0777 (%o)", (unsigned)(st.st_mode & 07777));
	CHECK(send_datagram(path, "READY=1", 7, -1, 0) == 7, "sendmsg to the path");
	static struct notify_datagram d;
	CHECK(notify_receive(fd, &d) == 1 && d.pid == getpid() && d.len == 7, "received with credentials");

	/* A live socket is never taken over; a stale one (its baton was killed) is. */
	free(error);
	error = NULL;
	r = notify_server_open(path, &fd2, &got, &dev, &ino, &error);
	CHECK(r == -EADDRINUSE && error && strstr(error, path), "a live socket is refused: %s", strempty(error));
	free(error);
	error = NULL;
	close(fd);
	free(got);
	got = NULL;
	r = notify_server_open(path, &fd, &got, &dev, &ino, &error);
	CHECK(r == 0, "a stale socket file is replaced: %s", strempty(error));
	notify_server_remove(path, dev, ino);
	CHECK(lstat(path, &st) < 0 && errno == ENOENT, "notify_server_remove removes the file");
	close(fd);
	free(got);
	got = NULL;

	/* Not a socket: left alone, an error. */
	int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(f);
	r = notify_server_open(path, &fd, &got, &dev, &ino, &error);
	CHECK(r == -EEXIST && error && strstr(error, "not a socket"), "a file in the way: %s", strempty(error));
	free(error);
	error = NULL;
	unlink(path);

	/* Longer than sun_path: a clear error naming the path and the way out. */
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	r = notify_server_open(longp, &fd, &got, &dev, &ino, &error);
	CHECK(r == -ENAMETOOLONG && error && strstr(error, longp) && strstr(error, "abstract"), "too long: %s",
	      strempty(error));
	free(error);

	/* The default: in systemd's RuntimeDirectory= when given, with baton's PID. */
	char want[300];
	setenv("RUNTIME_DIRECTORY", "/run/app:/run/other", 1);
	snprintf(want, sizeof(want), "/run/app/notify-%d.sock", (int)getpid());
	CHECK(notify_default_path(&got) == 0 && streq(got, want), "default in $RUNTIME_DIRECTORY: %s", got);
	free(got);
	unsetenv("RUNTIME_DIRECTORY");
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
}

/* A socket at path whose queue is full: datagrams sent without waiting until the kernel refuses one. Returns how
 * many went in. */
static int fill_socket(const struct sockaddr_un *sa) {
	int n = 0, s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	while (s >= 0 && sendto(s, "FILLER=1", 8, 0, (const struct sockaddr *)sa, sizeof(*sa)) == 8)
		n++;
	CHECK(s >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "the queue filled up after %d datagrams", n);
	if (s >= 0)
		close(s);
	return n;
}

/* Takes every datagram waiting at fd (non-blocking); returns how many were FILLER=1. */
static int drain_fillers(int fd) {
	char buf[64];
	int n = 0;
	ssize_t k;

	while ((k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
		n += k == 8 && memcmp(buf, "FILLER=1", 8) == 0;
	return n;
}

/* One datagram from fd (waiting up to 5 s) as text, with the number of fds it carried (closed here). */
static int receive_text(int fd, char *buf, size_t size, size_t *ret_fds) {
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control)};
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	*ret_fds = 0;
	if (poll(&pfd, 1, 5000) != 1)
		return -ETIMEDOUT;
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++, (*ret_fds)++)
				close(((int *)CMSG_DATA(c))[i]);
	return 0;
}

/* systemd's notify socket full: nothing waits for it. What cannot go now is held in order (a STATUS= line behind
 * another replaces it, one WATCHDOG=1 is enough, fds are kept as duplicates), the loop is told when there is room,
 * and then it all goes; the queue is bounded, and at exit what is left is dropped. */
static void test_upstream_full(void) {
	char dir[] = "/tmp/test-notify-XXXXXX", path[64], buf[256];
	struct evloop loop = EVLOOP_INIT;
	struct epoll_event ev[4];
	sigset_t none;
	size_t n_fds;
	int pipefd[2];

	alarm(60); /* a send that waits for the full socket would hang here: fail instead */
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/systemd.sock", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s", path);
	CHECK(setenv("NOTIFY_SOCKET", path, 1) == 0 && notify_upstream_enabled(), "NOTIFY_SOCKET=%s", path);
	sigemptyset(&none);
	CHECK(evloop_open(&loop, &none) == 0, "evloop_open");
	notify_upstream_watch(&loop, 99);

	notify_upstream("STATUS=room");
	size_t n_fds0;
	CHECK(receive_text(fd, buf, sizeof(buf), &n_fds0) == 0 && streq(buf, "STATUS=room"),
	      "with room, a message goes at once: %s", buf);
	CHECK(notify_upstream_held() == 0, "nothing held");

	int fillers = fill_socket(&sa);
	CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe");
	notify_upstream("STATUS=a");
	notify_upstream("READY=1\nSTATUS=b");
	notify_upstream("STATUS=c");
	notify_upstream("STATUS=d");
	notify_upstream("WATCHDOG=1");
	notify_upstream("WATCHDOG=1");
	CHECK(notify_upstream_with_fds("FDSTORE=1\nFDNAME=x", &pipefd[0], 1) == 0, "a message with an fd is held");
	close(pipefd[0]);
	CHECK(notify_upstream_held() == 5, "5 held (STATUS=c replaced by STATUS=d, one WATCHDOG=1): %zu",
	      notify_upstream_held());

	/* The loop has nothing to say while the socket is full... */
	CHECK(evloop_arm(&loop, now_usec()) == 0, "arm the timer for now");
	int n = evloop_wait(&loop, ev, 4);
	CHECK(n == 1 && ev[0].data.u64 == EVLOOP_TAG_TIMER, "only the timer fires while the socket is full (%d)", n);
	evloop_timer_expired(&loop);
	/* ...and says so when systemd reads. */
	CHECK(drain_fillers(fd) == fillers, "the %d fillers came first", fillers);
	CHECK(evloop_arm(&loop, now_usec() + 5 * USEC_PER_SEC) == 0, "arm the timer for 5 s");
	n = evloop_wait(&loop, ev, 4);
	CHECK(n >= 1 && ev[0].data.u64 == 99, "the loop is told there is room (%d, tag %llu)", n,
	      n > 0 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	notify_upstream_writable();
	CHECK(notify_upstream_held() == 0, "all sent");
	const char *want[] = {"STATUS=a", "READY=1\nSTATUS=b", "STATUS=d", "WATCHDOG=1", "FDSTORE=1\nFDNAME=x"};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		CHECK(receive_text(fd, buf, sizeof(buf), &n_fds) == 0 && streq(buf, want[i]), "in order: message %zu", i);
		CHECK(n_fds == (i == 4 ? 1u : 0u), "with its fds: %zu", n_fds);
	}
	CHECK(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "nothing else");
	close(pipefd[1]);

	/* Bounded: beyond 256 held messages a new one is dropped; at exit what is left goes. */
	fillers = fill_socket(&sa);
	for (int i = 0; i < 300; i++) {
		char text[32];
		snprintf(text, sizeof(text), "X_%d=1", i);
		notify_upstream(text);
	}
	CHECK(notify_upstream_held() == 256, "256 held of 300: %zu", notify_upstream_held());
	CHECK(drain_fillers(fd) == fillers, "the fillers taken");
	notify_upstream_discard(); /* sends what fits now (10 or so), drops the rest */
	size_t got = 0;
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		got++;
	CHECK(got > 0 && got < 256 && notify_upstream_held() == 0, "at exit %zu sent, the rest dropped", got);
	notify_upstream("STATUS=after the end");
	CHECK(receive_text(fd, buf, sizeof(buf), &n_fds) == 0 && streq(buf, "STATUS=after the end"),
	      "after it, a message with room still goes");
	fill_socket(&sa);
	notify_upstream("STATUS=full after the end");
	CHECK(notify_upstream_held() == 0, "but none is held any more");

	alarm(0);
	evloop_close(&loop);
	close(fd);
	unlink(path);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

int main(void) {
	test_parse_keys();
	test_parse_bad_values();
	test_parse_unknown_and_crlf();
	test_parse_duplicates();
	test_parse_drop();
	test_parse_utf8_valid();
	test_parse_long_status();
	test_socket();
	test_socket_path();
	test_upstream_full();
	return test_done();
}
