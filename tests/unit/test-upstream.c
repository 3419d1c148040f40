/* What a generation's notify message means (upstream.c; baton(1) NOTIFY RELAY): READY=1 by readiness type, STATUS=
 * kept and passed on only while serving, ERRNO=, EXTEND_TIMEOUT_USEC= moving the readiness deadline, WATCHDOG=1 and
 * WATCHDOG=trigger, RELOADING=1, STOPPING=1 and BARRIER=1 (nothing for the state machine), FDSTORE=1 and
 * FDSTOREREMOVE=1 relayed or refused, values that do not parse; and what baton itself sends: READY=1, its watchdog
 * pings, its listeners in the fd store. "systemd" is a datagram socket of the test's own, given as NOTIFY_SOCKET. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "generation.h"
#include "log.h"
#include "notify.h"
#include "test.h"
#include "upstream.h"
#include "util.h"

#define SEC (UINT64_C(1000000))

static int systemd_fd = -1;
static char systemd_path[64];

/* What "systemd" got since the last call: the datagrams joined with " | " (newlines as ','), and the fds they
 * carried (closed). "" for nothing. */
static const char *got(size_t *ret_fds) {
	static char text[8192];
	size_t fds = 0;
	text[0] = '\0';
	for (;;) {
		char buf[NOTIFY_BUFFER_MAX + 1];
		char control[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
		ssize_t n = recvmsg(systemd_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			break;
		buf[n] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ',';
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < k; i++)
					close(((int *)CMSG_DATA(c))[i]);
				fds += k;
			}
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", *text ? " | " : "", buf);
	}
	if (ret_fds)
		*ret_fds = fds;
	return text;
}

static struct config *cfg;
static struct listener http = {.name = (char *)"http", .fd = -1};

/* One message, parsed as baton parses it, from g; fds (may be -1) ride along as SCM_RIGHTS would bring them. */
static enum upstream_action message(struct generation *g, bool serving, const char *text, int fd, uint64_t now) {
	static struct notify_datagram d;
	static char buf[NOTIFY_BUFFER_MAX + 1];
	struct notify_msg m;
	d.len = strlen(text);
	d.buf = buf;
	memcpy(d.buf, text, d.len + 1);
	d.n_fds = 0;
	if (fd >= 0)
		d.fds[d.n_fds++] = fd;
	if (notify_parse(d.buf, d.len, &m) < 0)
		return (enum upstream_action) - 1;
	return upstream_on_message(cfg, &http, 1, g, serving, &m, &d, now);
}

static struct generation starting(void) {
	return (struct generation){.id = 2,
				   .pid = 4242,
				   .state = GEN_STARTING,
				   .readiness = READINESS_NOTIFY,
				   .deadline_usec = 30 * SEC,
				   .watchdog_deadline_usec = USEC_INFINITY,
				   .pidfd = -1};
}

static void test_ready(void) {
	struct generation g = starting();
	CHECK(message(&g, false, "READY=1", -1, SEC) == UPSTREAM_READY, "READY=1: ready, for a notify generation");
	CHECK(streq(got(NULL), ""), "nothing goes to systemd by itself (the state machine says READY=1)");
	CHECK(message(&g, false, "READY=2", -1, SEC) == UPSTREAM_NOTHING, "READY=2 does not parse: nothing");
	CHECK(message(&g, false, "READY=0", -1, SEC) == UPSTREAM_NOTHING, "READY=0: nothing");
	CHECK(message(&g, false, "READY=1\r\n", -1, SEC) == UPSTREAM_NOTHING,
	      "READY=1\\r (CRLF) is not READY=1, as systemd reads it");
	CHECK(message(&g, false, "\n", -1, SEC) == UPSTREAM_NOTHING, "an empty line: nothing");
	CHECK(message(&g, false, "", -1, SEC) == (enum upstream_action) - 1, "an empty datagram is dropped whole");
	CHECK(message(&g, false, "X_UNKNOWN=1\nREADY=1", -1, SEC) == UPSTREAM_READY, "unknown keys are ignored");
	g.readiness = READINESS_LOG;
	CHECK(message(&g, false, "READY=1", -1, SEC) == UPSTREAM_NOTHING,
	      "READY=1 from a generation with another readiness type: ignored");
	CHECK(streq(got(NULL), ""), "and nothing sent");
}

static void test_status(void) {
	struct generation g = starting();
	CHECK(message(&g, false, "STATUS=warming up", -1, SEC) == UPSTREAM_NOTHING && streq(g.status, "warming up"),
	      "STATUS= while starting: kept");
	CHECK(streq(got(NULL), ""), "but not passed on: baton's own status stays up until it serves");
	CHECK(message(&g, true, "STATUS=serving 3 clients", -1, SEC) == UPSTREAM_NOTHING &&
		      streq(g.status, "serving 3 clients"),
	      "STATUS= while serving: kept");
	CHECK_STREQ(got(NULL), "STATUS=serving 3 clients", "and passed on");
	message(&g, true, "STATUS=\xff\xfe", -1, SEC);
	CHECK(streq(g.status, "serving 3 clients") && streq(got(NULL), ""),
	      "a STATUS= that is not UTF-8: ignored, the last one stays");
	message(&g, true, "ERRNO=5", -1, SEC);
	CHECK_STREQ(got(NULL), "ERRNO=5", "ERRNO= while serving: passed on");
	message(&g, false, "ERRNO=5", -1, SEC);
	message(&g, true, "ERRNO=-1", -1, SEC);
	message(&g, true, "ERRNO=five", -1, SEC);
	CHECK_STREQ(got(NULL), "", "ERRNO= while starting, negative or not a number: nothing");
	free(g.status);
}

static void test_extend_timeout(void) {
	struct generation g = starting();
	message(&g, false, "EXTEND_TIMEOUT_USEC=60000000", -1, 10 * SEC);
	CHECK(g.deadline_usec == 70 * SEC, "EXTEND_TIMEOUT_USEC= while starting moves the readiness deadline");
	CHECK_STREQ(got(NULL), "EXTEND_TIMEOUT_USEC=60000000", "and systemd's start timeout");
	message(&g, false, "EXTEND_TIMEOUT_USEC=1000000", -1, 20 * SEC);
	CHECK(g.deadline_usec == 70 * SEC, "an extension that ends earlier does not shorten it");
	got(NULL);
	message(&g, false, "EXTEND_TIMEOUT_USEC=soon", -1, 20 * SEC);
	CHECK(g.deadline_usec == 70 * SEC && streq(got(NULL), ""), "one that does not parse: nothing");
	g.state = GEN_READY;
	message(&g, true, "EXTEND_TIMEOUT_USEC=60000000", -1, 80 * SEC);
	CHECK(g.deadline_usec == 70 * SEC && streq(got(NULL), ""), "once ready: nothing");
}

static void test_watchdog(void) {
	struct generation g = starting();
	g.watchdog_usec = 2 * SEC;
	CHECK(message(&g, false, "WATCHDOG=1", -1, SEC) == UPSTREAM_NOTHING &&
		      g.watchdog_deadline_usec == USEC_INFINITY,
	      "WATCHDOG=1 while starting: the watchdog has not started");
	CHECK(message(&g, false, "WATCHDOG=trigger", -1, SEC) == UPSTREAM_NOTHING, "nor WATCHDOG=trigger");
	g.state = GEN_READY;
	CHECK(message(&g, true, "WATCHDOG=1", -1, 5 * SEC) == UPSTREAM_NOTHING && g.watchdog_deadline_usec == 7 * SEC,
	      "WATCHDOG=1 once ready: the next one is due program.watchdog later");
	CHECK(message(&g, true, "WATCHDOG=trigger", -1, 6 * SEC) == UPSTREAM_WATCHDOG_TRIGGER,
	      "WATCHDOG=trigger: the state machine hears of it");
	CHECK(message(&g, true, "WATCHDOG=2", -1, 6 * SEC) == UPSTREAM_NOTHING && g.watchdog_deadline_usec == 7 * SEC,
	      "WATCHDOG=2: nothing");
	g.watchdog_usec = 0;
	CHECK(message(&g, true, "WATCHDOG=trigger", -1, 6 * SEC) == UPSTREAM_NOTHING,
	      "without program.watchdog: WATCHDOG=trigger means nothing");
	CHECK(streq(got(NULL), ""), "a program's watchdog is baton's business, not systemd's");
}

static void test_no_action(void) {
	struct generation g = starting();
	g.state = GEN_READY;
	CHECK(message(&g, true, "RELOADING=1", -1, SEC) == UPSTREAM_NOTHING, "RELOADING=1: logged, nothing else");
	CHECK(message(&g, true, "STOPPING=1", -1, SEC) == UPSTREAM_NOTHING, "STOPPING=1: logged, nothing else");
	CHECK(message(&g, true, "BARRIER=1", -1, SEC) == UPSTREAM_NOTHING,
	      "BARRIER=1: nothing (the caller closes the fd that comes with it)");
	CHECK(message(&g, true, "MAINPID=1\nMONOTONIC_USEC=5", -1, SEC) == UPSTREAM_NOTHING,
	      "MAINPID= and MONOTONIC_USEC=: nothing");
	CHECK(streq(got(NULL), "") && g.deadline_usec == 30 * SEC, "none of them goes to systemd or moves a deadline");
}

static void test_fd_store_relay(void) {
	struct generation g = starting();
	size_t fds = 0;
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0, "a pipe to store");

	cfg->program_fd_store = false;
	message(&g, true, "FDSTORE=1\nFDNAME=cache", p[0], SEC);
	CHECK(streq(got(&fds), "") && fds == 0, "FDSTORE=1 with program.fd-store false: refused");
	cfg->program_fd_store = true;
	message(&g, true, "FDSTORE=1\nFDNAME=cache", p[0], SEC);
	CHECK(streq(got(&fds), "FDSTORE=1,FDNAME=cache") && fds == 1, "with program.fd-store: relayed, fd and all");
	message(&g, true, "FDSTORE=1\nFDNAME=cache\nFDPOLL=0", p[0], SEC);
	CHECK(streq(got(&fds), "FDSTORE=1,FDNAME=cache,FDPOLL=0") && fds == 1, "FDPOLL=0 goes along");
	message(&g, true, "FDSTORE=1", p[0], SEC);
	CHECK(streq(got(&fds), "FDSTORE=1") && fds == 1, "without FDNAME=");
	message(&g, true, "FDSTORE=1\nFDNAME=cache", -1, SEC);
	CHECK(streq(got(&fds), "") && fds == 0, "FDSTORE=1 without an fd: nothing to store");
	message(&g, true, "FDSTORE=1\nFDNAME=http", p[0], SEC);
	CHECK(streq(got(&fds), "") && fds == 0, "FDNAME= of one of baton's listeners: refused");
	message(&g, true, "FDSTOREREMOVE=1\nFDNAME=cache", -1, SEC);
	CHECK_STREQ(got(NULL), "FDSTOREREMOVE=1,FDNAME=cache", "FDSTOREREMOVE=1 with FDNAME=: relayed");
	message(&g, true, "FDSTOREREMOVE=1", -1, SEC);
	CHECK_STREQ(got(NULL), "", "FDSTOREREMOVE=1 without FDNAME=: ignored");
	message(&g, true, "FDSTOREREMOVE=1\nFDNAME=http", -1, SEC);
	CHECK_STREQ(got(NULL), "", "FDSTOREREMOVE=1 of a listener's name: refused");
	close(p[0]);
	close(p[1]);
}

static void test_baton_own(void) {
	struct generation g = starting();
	upstream_ready(&g);
	CHECK_STREQ(got(NULL), "READY=1,STATUS=generation 2 ready (pid 4242)", "READY=1 with baton's words");
	g.status = (char *)"serving";
	upstream_ready(&g);
	CHECK_STREQ(got(NULL), "READY=1,STATUS=serving", "READY=1 with the program's own status");
	upstream_ready(NULL);
	CHECK_STREQ(got(NULL), "READY=1,STATUS=no generation running", "READY=1 with nothing running");

	struct upstream u = {.watchdog_interval_usec = 5 * SEC};
	upstream_watchdog_due(&u, true, 10 * SEC);
	CHECK(streq(got(NULL), "WATCHDOG=1") && u.watchdog_next_usec == 15 * SEC, "a ping, the next one scheduled");
	upstream_watchdog_due(&u, false, 15 * SEC);
	CHECK(streq(got(NULL), "") && u.watchdog_next_usec == 20 * SEC, "none while restarting, the next scheduled");
}

static void test_fd_store_listeners(void) {
	size_t fds = 0;
	int s[4];
	for (int i = 0; i < 4; i++)
		s[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct listener old[2] = {{.name = (char *)"http", .fd = s[0]}, {.name = (char *)"admin", .fd = s[1]}};
	struct listener now[2] = {{.name = (char *)"http", .fd = s[2]}, {.name = (char *)"metrics", .fd = s[3]}};
	addr_parse("tcp://127.0.0.1:80", &old[0].address, NULL);
	addr_parse("tcp://127.0.0.1:81", &old[1].address, NULL);
	now[0].address = old[0].address;
	addr_parse("tcp://127.0.0.1:82", &now[1].address, NULL);

	struct upstream off = {0}, on = {.fd_store = true};
	upstream_fd_store_add(&off, old, 2);
	CHECK(streq(got(&fds), "") && fds == 0, "no fd store: nothing");
	upstream_fd_store_add(&on, old, 2);
	CHECK(streq(got(&fds), "FDSTORE=1,FDNAME=http,FDPOLL=0 | FDSTORE=1,FDNAME=admin,FDPOLL=0") && fds == 2,
	      "each listener stored under its name, never polled");
	upstream_fd_store_update(&on, old, 2, now, 2);
	CHECK(streq(got(&fds), "FDSTOREREMOVE=1,FDNAME=admin | FDSTORE=1,FDNAME=metrics,FDPOLL=0") && fds == 1,
	      "a reload: the one that went is removed first, the new one added, the unchanged one left");
	upstream_fd_store_update(&off, old, 2, now, 2);
	CHECK(streq(got(&fds), ""), "no fd store: no update");
	for (int i = 0; i < 4; i++)
		close(s[i]);
}

static void test_setup(void) {
	struct upstream u;
	cfg->fd_store = FD_STORE_AUTO;
	unsetenv("FDSTORE");
	unsetenv("WATCHDOG_USEC");
	upstream_setup(&u, cfg, SEC);
	CHECK(!u.fd_store && u.watchdog_interval_usec == 0 && u.watchdog_next_usec == USEC_INFINITY,
	      "no FDSTORE, no WATCHDOG_USEC: neither");
	setenv("FDSTORE", "16", 1);
	setenv("WATCHDOG_USEC", "10000000", 1);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	upstream_setup(&u, cfg, SEC);
	CHECK(u.fd_store && u.watchdog_interval_usec == 5 * SEC && u.watchdog_next_usec == 6 * SEC,
	      "FDSTORE=16 with fd-store auto; pings at half of WATCHDOG_USEC");
	setenv("WATCHDOG_PID", "1", 1);
	setenv("FDSTORE", "many", 1);
	upstream_setup(&u, cfg, SEC);
	CHECK(!u.fd_store && u.watchdog_interval_usec == 0,
	      "another process's watchdog, FDSTORE not a number: neither");
	cfg->fd_store = FD_STORE_YES;
	upstream_setup(&u, cfg, SEC);
	CHECK(u.fd_store, "systemd.fd-store: true without FDSTORE (systemd 252)");
	unsetenv("FDSTORE");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int main(void) {
	log_max_level = LOG_CRIT;
	snprintf(systemd_path, sizeof(systemd_path), "/tmp/baton-test-upstream-%d.sock", (int)getpid());
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", systemd_path);
	systemd_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (systemd_fd < 0 || bind(systemd_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("Bail out! cannot bind %s\n", systemd_path);
		return 1;
	}
	setenv("NOTIFY_SOCKET", systemd_path, 1);
	if (config_new_default(&cfg) < 0) {
		printf("Bail out! config_new_default\n");
		return 1;
	}
	CHECK(notify_upstream_enabled(), "NOTIFY_SOCKET is the test's socket");
	test_ready();
	test_status();
	test_extend_timeout();
	test_watchdog();
	test_no_action();
	test_fd_store_relay();
	test_baton_own();
	test_fd_store_listeners();
	test_setup();
	config_free(cfg);
	unlink(systemd_path);
	return test_done();
}
