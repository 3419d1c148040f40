/* Fuzzes the notify socket's input: notify_parse() on the bytes as they are, and the same bytes as a real datagram
 * through notify_receive(), with fds attached (SCM_RIGHTS) when the first byte is odd and credentials always
 * (SO_PASSCRED). Checks that what arrives is what was sent, that both paths parse alike, and that no fd leaks. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "log.h"
#include "notify.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger datagrams are legal for the kernel but only test the -EMSGSIZE path again; this keeps send() from failing
 * on the socket's buffer size. */
#define SEND_MAX (64 * 1024)

static int sock[2] = {-1, -1}; /* [0] receives (baton's side), [1] sends (a child's) */
static int pipe_fds[2] = {-1, -1};
static ino_t pipe_ino; /* received fds are this pipe */
static struct notify_datagram dgram; /* 5 KiB: not on the stack */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	int one = 1;

	log_max_level = -1;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sock) < 0 ||
	    setsockopt(sock[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 || pipe2(pipe_fds, O_CLOEXEC) < 0) {
		perror("fuzz-notify setup");
		abort();
	}
	struct stat st;
	if (fstat(pipe_fds[0], &st) < 0)
		abort();
	pipe_ino = st.st_ino;
	/* Room for the largest datagram we send, whatever the system's default. */
	int sndbuf = 4 * SEND_MAX;
	(void)setsockopt(sock[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	(void)setsockopt(sock[0], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
	return 0;
}

static void fail(const char *what) {
	fprintf(stderr, "fuzz-notify: %s\n", what);
	abort();
}

static bool str_eq(const char *a, const char *b) {
	return a && b ? strcmp(a, b) == 0 : a == b;
}

/* A string notify_parse() returned must lie in the buffer, on one line. */
static void check_in_buffer(const char *s, const char *buf, size_t len) {
	if (!s)
		return;
	if (s < buf || s > buf + len || s + strlen(s) > buf + len)
		fail("a parsed value points outside the buffer");
	if (strchr(s, '\n'))
		fail("a parsed value spans two lines");
}

static bool msg_eq(const struct notify_msg *a, const struct notify_msg *b) {
	return a->ready == b->ready && a->reloading == b->reloading && a->stopping == b->stopping &&
	       a->watchdog == b->watchdog && a->watchdog_trigger == b->watchdog_trigger && a->barrier == b->barrier &&
	       a->fdstore == b->fdstore && str_eq(a->status, b->status) && str_eq(a->fdname, b->fdname) &&
	       a->errno_value == b->errno_value && a->extend_timeout_usec == b->extend_timeout_usec &&
	       a->monotonic_usec == b->monotonic_usec && a->mainpid == b->mainpid;
}

static int send_datagram(const uint8_t *data, size_t size, size_t n_fds) {
	int fds[4];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(fds))];
	} control;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n_fds > 0) {
		for (size_t i = 0; i < n_fds; i++)
			fds[i] = pipe_fds[0];
		memset(&control, 0, sizeof(control));
		mh.msg_control = &control;
		mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
	}
	return sendmsg(sock[1], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct notify_msg m, m2;

	fuzz_check_fds("fuzz-notify", pipe_ino, 10000);

	/* 1. The parser alone, on a copy with the NUL it requires. */
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	int r = notify_parse(copy, size, &m);
	bool droppable = size == 0 || memchr(data, '\0', size);
	if (droppable != (r == -EBADMSG) || (r < 0 && r != -EBADMSG))
		fail("notify_parse() returned the wrong answer for an empty datagram or one with a NUL byte");
	if (r == 0) {
		check_in_buffer(m.status, copy, size);
		check_in_buffer(m.fdname, copy, size);
		if (m.mainpid < 0 || m.errno_value < -1)
			fail("a parsed number is out of its range");
	}

	/* 2. The same bytes as one datagram through the real socket. */
	size_t len = size < SEND_MAX ? size : SEND_MAX;
	size_t n_fds = size > 0 && (data[0] & 1) ? 1 + ((data[0] >> 1) & 3) : 0;
	if (send_datagram(data, len, n_fds) < 0)
		fail("sendmsg() failed");
	int k = notify_receive(sock[0], &dgram);
	if (len > NOTIFY_BUFFER_MAX) {
		if (k != -EMSGSIZE || dgram.n_fds != 0)
			fail("an oversized datagram is not -EMSGSIZE with its fds closed");
	} else {
		if (k != 1)
			fail("notify_receive() did not return the datagram");
		if (dgram.len != len || memcmp(dgram.buf, data, len) != 0 || dgram.buf[len] != '\0')
			fail("the received datagram differs from the one sent");
		if (dgram.pid != getpid() || dgram.uid != getuid())
			fail("the datagram's credentials are not ours");
		if (dgram.n_fds != n_fds)
			fail("the datagram's fd count differs from the one sent");
		for (size_t i = 0; i < dgram.n_fds; i++)
			if (dgram.fds[i] < 0 || fcntl(dgram.fds[i], F_GETFD) != FD_CLOEXEC)
				fail("a received fd is invalid or not close-on-exec");

		int r2 = notify_parse(dgram.buf, dgram.len, &m2);
		if (r2 != r)
			fail("the received datagram parses differently from its copy");
		if (r2 == 0) {
			check_in_buffer(m2.status, dgram.buf, dgram.len);
			check_in_buffer(m2.fdname, dgram.buf, dgram.len);
			if (!msg_eq(&m, &m2))
				fail("the received datagram parses to another message than its copy");
		}
		notify_datagram_close_fds(&dgram);
		if (dgram.n_fds != 0)
			fail("notify_datagram_close_fds() left n_fds set");
	}
	if (notify_receive(sock[0], &dgram) != 0)
		fail("the socket is not drained after one datagram");

	free(copy);
	return 0;
}
