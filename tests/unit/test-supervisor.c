/* The state machine (baton(1) RELOAD, RESTARTS, SIGNALS), driven event by event with fake generations and a fake
 * clock (fake-mechanisms.c stands in for generation.c, readiness.c, upstream.c and sockets.c): the first start,
 * reload success and each way a reload fails, queued reloads, the restart backoff, stop during a reload, and the
 * restart strategy, the reload.confirm window (commit, each way it rolls back, and the rest of the machine during
 * it). Each test checks the states, which generations run, and the replies a `baton reload` client
 * gets. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake-mechanisms.h"
#include "log.h"
#include "supervisor.h"
#include "test.h"
#include "util.h"

#define MS (UINT64_C(1000))
#define SEC (UINT64_C(1000000))

static char cfg_path[4096];
static int upstream_fd = -1;
static char upstream_path[64];
static const char *upstream_take(void);

static const char base_config[] = "listeners:\n"
				  "  - {name: http, address: \"tcp://127.0.0.1:1\"}\n"
				  "stop: {timeout: 2s}\n"
				  "control: {socket: \"\"}\n";
/* More keys under program: (indented two spaces) for the next configs written. */
static const char *program_extra = "";

static void write_config(const char *extra) {
	FILE *f = fopen(cfg_path, "w");
	if (!f) {
		perror(cfg_path);
		exit(1);
	}
	fputs(base_config, f);
	fprintf(f, "program:\n  command: [/bin/true]\n%s", program_extra);
	if (!strstr(extra, "restart:"))
		fputs("restart: {delay: 100ms, max-delay: 1s}\n", f);
	if (!strstr(extra, "readiness:"))
		fputs("readiness: {timeout: 5s}\n", f);
	fputs(extra, f);
	fclose(f);
}

/* A started supervisor (generation 1 starting) at t = 1 s. */
static void start(struct supervisor *s, const char *extra) {
	write_config(extra);
	struct supervisor_options o = {.config_path = cfg_path};
	struct config *c;
	struct listener *ls;
	_cleanup_free_ char *error = NULL;
	fake = (struct fake_world){.now = 1 * SEC};
	if (upstream_fd >= 0)
		upstream_take();
	if (supervisor_load_config(&o, NULL, &c, &error) < 0 || sock_open_all(c, NULL, 0, NULL, 0, &ls, &error) < 0) {
		printf("Bail out! config: %s\n", strempty(error));
		exit(1);
	}
	supervisor_init(s, &o, c, ls, c->n_listeners, NULL, "@test/notify");
	int r = supervisor_start(s, fake.now, &error);
	CHECK(r == 0 && (s->state == SUP_STARTING || s->state == SUP_RUNNING) && s->current && s->current->id == 1,
	      "generation 1 starts (%s)", strempty(error));
}

static void at(uint64_t usec) {
	fake.now = usec;
}

static void event(struct supervisor *s, enum sup_event type, struct generation *g) {
	supervisor_dispatch(s, &(struct event){.type = type, .gen = g, .why = "test"}, fake.now);
}

static void exited(struct supervisor *s, struct generation *g, int code) {
	supervisor_generation_ended(s, g, W_EXITCODE(code, 0), false, fake.now);
}

static struct generation *gen(struct supervisor *s, unsigned id) {
	for (struct generation *g = s->generations; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

/* The one reply in the outbox: its seq and ok, and its message containing want. */
static void check_reply(struct supervisor *s, uint64_t seq, bool ok, const char *want) {
	struct reload_reply *r = supervisor_take_replies(s);
	CHECK(r && !r->next && r->seq == seq && r->ok == ok && strstr(r->message, want),
	      "one reply: reload %llu %s, '%s' (got: %s%s)", (unsigned long long)seq, ok ? "ok" : "failed", want,
	      r ? r->message : "none", r && r->next ? ", and more" : "");
	reload_replies_free(r);
}

static void test_first_start(void) {
	struct supervisor s;
	start(&s, "");
	struct generation *g1 = s.current;
	at(2 * SEC);
	event(&s, EV_READY, g1);
	CHECK(s.state == SUP_RUNNING && s.ever_ready && fake.upstream_ready == 1, "READY=1: running, upstream told");
	CHECK(supervisor_next_deadline(&s) == USEC_INFINITY, "a ready generation has no deadline");
	event(&s, EV_STOP_REQUEST, NULL);
	CHECK(s.state == SUP_STOPPING && g1->state == GEN_STOPPING, "stop request: the generation is told to stop");
	CHECK(supervisor_next_deadline(&s) == 2 * SEC + 2 * SEC, "stop.timeout is the next deadline");
	exited(&s, g1, 0);
	CHECK(s.state == SUP_DONE && s.exit_code == 0 && !s.generations && fake.freed == 1,
	      "it exits: done with status 0, generation freed");
	CHECK(!s.current, "no pointer to the freed generation stays (the current one of a stopping baton)");
	supervisor_free(&s);
}

static void test_first_start_fails(void) {
	struct supervisor s;
	start(&s, "");
	exited(&s, s.current, 3);
	CHECK(s.state == SUP_DONE && s.exit_code == 3, "the first start exits 3 before ready: baton ends with 3");
	supervisor_free(&s);

	start(&s, "");
	struct generation *g1 = s.current;
	at(1 * SEC + 5 * SEC);
	event(&s, EV_READY_TIMEOUT, g1);
	CHECK(s.state == SUP_STOPPING && g1->state == GEN_STOPPING && s.exit_code == EXIT_START,
	      "not ready within readiness.timeout: stopped, exit status 102 once it is gone");
	exited(&s, g1, 0);
	CHECK(s.state == SUP_DONE && s.exit_code == EXIT_START, "done with 102");
	supervisor_free(&s);
}

static void test_reload_ok(void) {
	struct supervisor s;
	start(&s, "");
	struct generation *g1 = s.current;
	event(&s, EV_READY, g1);
	at(10 * SEC);
	event(&s, EV_RELOAD_REQUEST, NULL);
	struct generation *g2 = gen(&s, 2);
	CHECK(s.state == SUP_RELOADING && g2 && g2->state == GEN_STARTING && s.current == g1,
	      "reload: generation 2 starts beside generation 1, which still serves");
	CHECK(!supervisor_take_replies(&s), "no reply before the outcome");
	at(10 * SEC + 300 * MS);
	event(&s, EV_READY, g2);
	CHECK(s.state == SUP_RUNNING && s.current == g2 && g1->state == GEN_STOPPING,
	      "generation 2 ready: it serves, generation 1 is told to stop");
	struct reload_reply *r = supervisor_take_replies(&s);
	CHECK(r && r->ok && r->seq == 1 && r->generation == 2 && r->pid == g2->pid && r->duration_usec == 300 * MS,
	      "the reply: reload 1 ok, generation 2, in 300 ms");
	reload_replies_free(r);
	CHECK(s.last_reload.seq == 1 && s.last_reload.ok, "last reload recorded");
	exited(&s, g1, 0);
	CHECK(s.state == SUP_RUNNING && s.current == g2 && !g2->next, "generation 1 gone; 2 serves alone");
	supervisor_free(&s);
}

static void test_reload_fails(void) {
	struct supervisor s;
	start(&s, "");
	struct generation *g1 = s.current;
	event(&s, EV_READY, g1);

	/* An invalid file: nothing starts, nothing stops. */
	write_config("bogus-key: 1\n");
	unsigned started = fake.started;
	event(&s, EV_RELOAD_REQUEST, NULL);
	check_reply(&s, 1, false, "invalid configuration");
	CHECK(s.state == SUP_RUNNING && s.current == g1 && fake.started == started && g1->state == GEN_READY,
	      "an invalid config: generation 1 keeps serving, no generation started");

	/* The new generation exits before it is ready. */
	write_config("");
	event(&s, EV_RELOAD_REQUEST, NULL);
	exited(&s, gen(&s, 2), 3);
	check_reply(&s, 2, false, "the new generation 2 exited with status 3 before it was ready; generation 1 keeps");
	CHECK(s.state == SUP_RUNNING && s.current == g1, "still generation 1");

	/* Not ready in time. */
	event(&s, EV_RELOAD_REQUEST, NULL);
	struct generation *g3 = gen(&s, 3);
	event(&s, EV_READY_TIMEOUT, g3);
	check_reply(&s, 3, false, "the new generation 3 was not ready within 5s (readiness.timeout)");
	CHECK(s.state == SUP_RUNNING && g3->state == GEN_STOPPING && s.current == g1,
	      "the late generation is stopped, generation 1 serves");

	/* The program cannot be started at all. */
	fake.fail_start = true;
	event(&s, EV_RELOAD_REQUEST, NULL);
	fake.fail_start = false;
	check_reply(&s, 4, false, "could not start the program: fork: Resource temporarily unavailable");
	CHECK(s.state == SUP_RUNNING && s.current == g1, "a failed fork: generation 1 serves");
	supervisor_free(&s);
}

static void test_queued_reloads(void) {
	struct supervisor s;
	start(&s, "");
	event(&s, EV_READY, s.current);
	event(&s, EV_RELOAD_REQUEST, NULL);
	struct generation *g2 = gen(&s, 2);
	for (int i = 0; i < 3; i++)
		event(&s, EV_RELOAD_REQUEST, NULL);
	CHECK(s.reload_queued && s.reload.seq == 1 && !gen(&s, 3), "three requests during reload 1: one queued reload");
	event(&s, EV_READY, g2);
	check_reply(&s, 1, true, "generation 2");
	struct generation *g3 = gen(&s, 3);
	CHECK(s.state == SUP_RELOADING && s.reload.seq == 2 && !s.reload_queued && g3 && s.current == g2,
	      "reload 1 done: the queued one runs at once as reload 2, generation 3 starts");
	event(&s, EV_READY, g3);
	check_reply(&s, 2, true, "generation 3");
	CHECK(s.state == SUP_RUNNING && s.current == g3 && !gen(&s, 4), "reload 2 done; no third one");
	supervisor_free(&s);
}

static void test_backoff(void) {
	struct supervisor s;
	start(&s, "");
	event(&s, EV_READY, s.current);
	at(5 * SEC);
	exited(&s, s.current, 1);
	CHECK(s.state == SUP_BACKOFF && !s.current && s.restart_usec == 5 * SEC + 100 * MS && s.failures == 1,
	      "a crash: restarting after restart.delay (100ms)");
	CHECK(supervisor_next_deadline(&s) == s.restart_usec, "the restart is the next deadline");
	at(s.restart_usec);
	event(&s, EV_RESTART_DUE, NULL);
	struct generation *g2 = s.current;
	CHECK(s.state == SUP_STARTING && g2 && g2->id == 2 && s.restarts == 1, "restart due: generation 2 starts");
	exited(&s, g2, 1);
	CHECK(s.state == SUP_BACKOFF && s.restart_usec == fake.now + 200 * MS && s.failures == 2,
	      "it fails again before ready: the delay doubles (200ms)");
	for (int i = 0; i < 5; i++) {
		at(s.restart_usec);
		event(&s, EV_RESTART_DUE, NULL);
		exited(&s, s.current, 1);
	}
	CHECK(s.restart_usec == fake.now + 1 * SEC, "the delay stops at restart.max-delay (1s)");
	/* A reload while restarting starts the new config at once. */
	event(&s, EV_RELOAD_REQUEST, NULL);
	CHECK(s.state == SUP_RELOADING && s.reload.gen, "a reload during the backoff starts a generation now");
	event(&s, EV_READY, s.reload.gen);
	check_reply(&s, 1, true, "is serving");
	CHECK(s.state == SUP_RUNNING, "and serves");
	supervisor_free(&s);

	start(&s, "restart: {policy: never}\n");
	event(&s, EV_READY, s.current);
	exited(&s, s.current, 4);
	CHECK(s.state == SUP_DONE && s.exit_code == 4, "restart.policy never: baton ends with the program's status");
	supervisor_free(&s);
}

static void test_stop_during_reload(void) {
	struct supervisor s;
	start(&s, "");
	struct generation *g1 = s.current;
	event(&s, EV_READY, g1);
	event(&s, EV_RELOAD_REQUEST, NULL);
	struct generation *g2 = gen(&s, 2);
	event(&s, EV_STOP_REQUEST, NULL);
	/* The reload in progress fails, and so does the next one, for clients that asked meanwhile. */
	struct reload_reply *r = supervisor_take_replies(&s);
	CHECK(r && r->seq == 1 && !r->ok && streq(r->message, "baton is stopping") && r->next && r->next->seq == 2 &&
		      !r->next->ok && !r->next->next,
	      "stop during reload 1: reload 1 and the next one are answered 'baton is stopping'");
	reload_replies_free(r);
	CHECK(s.state == SUP_STOPPING && g1->state == GEN_STOPPING && g2->state == GEN_STOPPING,
	      "stop during a reload: both generations are told to stop");
	event(&s, EV_RELOAD_REQUEST, NULL);
	check_reply(&s, 2, false, "baton is stopping");
	at(fake.now + 2 * SEC);
	event(&s, EV_STOP_TIMEOUT, g2);
	CHECK(g2->state == GEN_KILLED && fake.killed == 1, "one outlives stop.timeout: killed");
	exited(&s, g2, 9);
	CHECK(s.state == SUP_STOPPING, "one gone, still stopping");
	exited(&s, g1, 0);
	CHECK(s.state == SUP_DONE && s.exit_code == 0, "both gone: done with 0");
	supervisor_free(&s);
}

static void test_restart_strategy(void) {
	struct supervisor s;
	start(&s, "reload: {strategy: restart}\n");
	struct generation *g1 = s.current;
	event(&s, EV_READY, g1);
	event(&s, EV_RELOAD_REQUEST, NULL);
	CHECK(s.state == SUP_RELOADING && g1->state == GEN_STOPPING && !gen(&s, 2) && !s.current,
	      "restart strategy: the old generation stops first, nothing new yet");
	exited(&s, g1, 0);
	struct generation *g2 = gen(&s, 2);
	CHECK(g2 && g2->state == GEN_STARTING, "it exited: generation 2 starts");
	event(&s, EV_READY, g2);
	check_reply(&s, 1, true, "generation 2");
	CHECK(s.state == SUP_RUNNING && s.current == g2, "generation 2 serves");
	supervisor_free(&s);
}

static void test_readiness_none(void) {
	struct supervisor s;
	start(&s, "readiness: {type: none, timeout: 5s}\n");
	CHECK(s.state == SUP_RUNNING && fake.upstream_ready == 1,
	      "readiness.type none: ready at once, before anything else can happen to it");
	event(&s, EV_RELOAD_REQUEST, NULL);
	check_reply(&s, 1, true, "generation 2");
	CHECK(s.state == SUP_RUNNING && s.current && s.current->id == 2, "a reload commits at once too");
	supervisor_free(&s);
}

static void test_interrupted(void) {
	struct supervisor s;
	start(&s, "restart: {policy: always}\n");
	event(&s, EV_READY, s.current);
	supervisor_generation_ended(&s, s.current, SIGINT, true, fake.now);
	CHECK(s.state == SUP_DONE && s.exit_code == 128 + SIGINT && fake.started == 1,
	      "Ctrl-C at the terminal ends the program: no restart (even with policy always), exit status 130");
	supervisor_free(&s);

	start(&s, "restart: {policy: always}\n");
	event(&s, EV_READY, s.current);
	supervisor_generation_ended(&s, s.current, SIGINT, false, fake.now);
	CHECK(s.state == SUP_BACKOFF, "the same SIGINT from elsewhere is a crash: restarted");
	supervisor_free(&s);
}

/* A reason longer than any fixed buffer (a config error naming a file 2600 bytes deep) reaches the client and the
 * status whole; the log line is cut once, at LOG_LINE_MAX, and says so. */
static void test_long_reason(void) {
	char saved[sizeof(cfg_path)], dir[sizeof(cfg_path) - 64], part[201];
	memcpy(saved, cfg_path, sizeof(saved));
	memset(part, 'd', sizeof(part) - 1);
	part[sizeof(part) - 1] = '\0';
	int n = snprintf(dir, sizeof(dir), "/tmp/test-supervisor-%d-long", (int)getpid());
	size_t base = (size_t)n;
	mkdir(dir, 0700);
	for (int i = 0; i < 13; i++) {
		n += snprintf(dir + n, sizeof(dir) - (size_t)n, "/%s", part);
		mkdir(dir, 0700);
	}
	snprintf(cfg_path, sizeof(cfg_path), "%s/baton.yaml", dir);

	struct supervisor s;
	start(&s, "");
	event(&s, EV_READY, s.current);
	write_config("bogus-key: 1\n");

	/* The log line, from stderr into a file. */
	char log_path[64];
	snprintf(log_path, sizeof(log_path), "/tmp/test-supervisor-%d.log", (int)getpid());
	fflush(stderr);
	int err = dup(STDERR_FILENO), logfd = open(log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	dup2(logfd, STDERR_FILENO);
	log_max_level = LOG_ERR;
	event(&s, EV_RELOAD_REQUEST, NULL);
	log_max_level = LOG_CRIT;
	fflush(stderr);
	dup2(err, STDERR_FILENO);
	close(err);

	struct reload_reply *r = supervisor_take_replies(&s);
	const char *m = r ? r->message : "";
	size_t len = strlen(m);
	static const char tail[] = "; generation 1 keeps serving";
	CHECK(r && !r->ok && strncmp(m, "invalid configuration: ", 23) == 0 && strstr(m, cfg_path) &&
		      len > sizeof(tail) && streq(m + len - (sizeof(tail) - 1), tail),
	      "the reply holds the whole reason, %zu bytes: the file's path (%zu bytes) and the end", len,
	      strlen(cfg_path));
	CHECK(streq(s.last_reload.message, m), "the status's last reload says the same");
	reload_replies_free(r);

	char line[LOG_LINE_MAX * 2];
	ssize_t k = pread(logfd, line, sizeof(line) - 1, 0);
	line[k > 0 ? k : 0] = '\0';
	close(logfd);
	unlink(log_path);
	static const char prefix[] = "baton: error: reload 1 failed: invalid configuration: ";
	CHECK(strncmp(line, prefix, sizeof(prefix) - 1) == 0 &&
		      strlen(line) == sizeof("baton: error: ") - 1 + LOG_LINE_MAX - 1 + 1 &&
		      strstr(line, LOG_CUT_MARK "\n") == line + strlen(line) - sizeof(LOG_CUT_MARK),
	      "the log line is cut once at %d bytes, ending in " LOG_CUT_MARK " (%zu bytes)", LOG_LINE_MAX,
	      strlen(line));
	supervisor_free(&s);

	unlink(cfg_path);
	for (;;) {
		rmdir(dir);
		if (strlen(dir) <= base)
			break;
		*strrchr(dir, '/') = '\0';
	}
	memcpy(cfg_path, saved, sizeof(saved));
}

/* ---- reload.confirm (baton(1) RELOAD, "The confirm window") ---- */

/* Everything sent upstream (NOTIFY_SOCKET) since the last call, datagrams joined by '|'. */
static const char *upstream_take(void) {
	static char all[8192];
	size_t n = 0;
	all[0] = '\0';
	for (;;) {
		char buf[2048];
		ssize_t k = recv(upstream_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (k <= 0)
			break;
		buf[k] = '\0';
		n += (size_t)snprintf(all + n, sizeof(all) - n, "%s|", buf);
		if (n >= sizeof(all))
			break;
	}
	return all;
}

static void upstream_open(void) {
	snprintf(upstream_path, sizeof(upstream_path), "/tmp/test-supervisor-%d.notify", (int)getpid());
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", upstream_path);
	upstream_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(upstream_path);
	if (upstream_fd < 0 || bind(upstream_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("upstream socket");
		exit(1);
	}
	setenv("NOTIFY_SOCKET", upstream_path, 1);
}

#define CONFIRM "reload: {confirm: 10s}\n"
/* Before CONFIRM in confirm_window(): program.watchdog 1s. */
#define WATCHDOG "\001"

/* Generation 1 serves; a reload at 10 s starts generation 2, ready at 10.3 s: its window runs to 20.3 s. */
static struct generation *confirm_window(struct supervisor *s, const char *extra) {
	program_extra = extra[0] == '\001' ? "  watchdog: 1s\n" : "";
	start(s, extra[0] == '\001' ? extra + 1 : extra);
	program_extra = "";
	event(s, EV_READY, s->current);
	at(10 * SEC);
	upstream_take();
	event(s, EV_RELOAD_REQUEST, NULL);
	struct generation *g2 = gen(s, 2);
	at(10 * SEC + 300 * MS);
	event(s, EV_READY, g2);
	return g2;
}

static void test_confirm_commit(void) {
	struct supervisor s;
	struct generation *g2 = confirm_window(&s, CONFIRM);
	struct generation *g1 = gen(&s, 1);
	CHECK(s.state == SUP_CONFIRMING && s.current == g1 && g1->state == GEN_READY && g2->state == GEN_READY &&
		      g2->confirming && fake.confirm_begun == 1,
	      "generation 2 ready: confirming; generation 1 is still current and serving, not told to stop");
	CHECK(!supervisor_take_replies(&s), "no reply during the window");
	CHECK(supervisor_next_deadline(&s) == 20 * SEC + 300 * MS, "the end of the window is the next deadline");
	const char *up = upstream_take();
	CHECK(strstr(up, "RELOADING=1") && !strstr(up, "READY=1\n") && fake.upstream_ready == 1,
	      "upstream: RELOADING=1 at the start, no READY=1 when the new generation is ready");
	CHECK(strstr(up, "STATUS=reloading: generation 2 ready, confirming for 10s; generation 1 serving") != NULL,
	      "upstream status during the window");
	event(&s, EV_READY, g2);
	event(&s, EV_READY_TIMEOUT, g2);
	CHECK(s.state == SUP_CONFIRMING && g1->state == GEN_READY, "READY=1 again, a stray timeout: still confirming");

	at(20 * SEC + 300 * MS);
	event(&s, EV_CONFIRMED, NULL);
	struct reload_reply *r = supervisor_take_replies(&s);
	CHECK(r && r->ok && r->seq == 1 && r->generation == 2 && r->duration_usec == 10 * SEC + 300 * MS &&
		      r->ready_usec == 300 * MS && strstr(r->message, ", confirmed after reload.confirm 10s"),
	      "the window is over: reload 1 ok, generation 2, in 10.3 s, ready after 300 ms (%s)",
	      r ? r->message : "no reply");
	reload_replies_free(r);
	CHECK(s.state == SUP_RUNNING && s.current == g2 && g1->state == GEN_STOPPING && !g2->confirming &&
		      g2->check_usec == USEC_INFINITY,
	      "committed: generation 2 current, generation 1 told to stop, the window's checks end");
	CHECK(fake.upstream_ready == 2, "READY=1 upstream at the commit");
	supervisor_free(&s);
}

static void test_confirm_rollback_exit(void) {
	struct supervisor s;
	struct generation *g2 = confirm_window(&s, CONFIRM);
	struct generation *g1 = gen(&s, 1);
	upstream_take();
	at(11 * SEC + 700 * MS);
	exited(&s, g2, 2);
	check_reply(&s, 1, false,
		    "generation 2 exited with status 2, 1.4 s after ready, within reload.confirm 10s: rolled back, "
		    "generation 1 keeps serving");
	CHECK(s.state == SUP_RUNNING && s.current == g1 && g1->state == GEN_READY && !g1->next && fake.started == 2,
	      "rolled back: generation 1 serves on, the failed version is not restarted");
	CHECK(!s.last_reload.ok && strstr(s.last_reload.message, "rolled back"), "the last reload says so");
	const char *up = upstream_take();
	CHECK(strstr(up, "READY=1\nSTATUS=reload failed: generation 2 exited with status 2, 1.4 s after ready") != NULL,
	      "upstream: READY=1 and the reason at the rollback");
	CHECK(supervisor_next_deadline(&s) == USEC_INFINITY, "no window left");
	/* The next reload works as usual. */
	event(&s, EV_RELOAD_REQUEST, NULL);
	CHECK(s.state == SUP_RELOADING && gen(&s, 3), "the next reload starts generation 3");
	supervisor_free(&s);
}

static void test_confirm_rollback_other(void) {
	struct supervisor s;
	struct generation *g2 = confirm_window(&s, WATCHDOG CONFIRM);
	struct generation *g1 = gen(&s, 1);
	at(10 * SEC + 800 * MS);
	supervisor_dispatch(&s, &(struct event){.type = EV_WATCHDOG, .gen = g2}, fake.now);
	check_reply(&s, 1, false,
		    "generation 2 missed its watchdog (no WATCHDOG=1 within 1s), 0.5 s after ready, within "
		    "reload.confirm "
		    "10s: rolled back, generation 1 keeps serving");
	CHECK(g2->state == GEN_KILLED && fake.killed == 1 && s.state == SUP_RUNNING && s.current == g1,
	      "a missed watchdog in the window: generation 2 killed, generation 1 current");
	exited(&s, g2, 9);
	CHECK(s.state == SUP_RUNNING && s.current == g1 && fake.started == 2, "its end changes nothing");
	supervisor_free(&s);

	g2 = confirm_window(&s, CONFIRM);
	g1 = gen(&s, 1);
	at(12 * SEC);
	supervisor_dispatch(&s, &(struct event){.type = EV_UNHEALTHY, .gen = g1, .why = "sent STOPPING=1"}, fake.now);
	CHECK(s.state == SUP_CONFIRMING && g1->state == GEN_READY, "the old generation's STOPPING=1: ignored");
	supervisor_dispatch(&s, &(struct event){.type = EV_UNHEALTHY, .gen = g2, .why = "sent ERRNO=5"}, fake.now);
	check_reply(&s, 1, false,
		    "generation 2 sent ERRNO=5, 1.7 s after ready, within reload.confirm 10s: rolled back, "
		    "generation 1 "
		    "keeps serving");
	CHECK(g2->state == GEN_STOPPING && s.current == g1 && s.state == SUP_RUNNING,
	      "ERRNO= in the window: generation 2 is stopped (stop.signal, then stop.timeout), generation 1 "
	      "current");
	supervisor_dispatch(&s, &(struct event){.type = EV_UNHEALTHY, .gen = g1, .why = "sent STOPPING=1"}, fake.now);
	CHECK(s.state == SUP_RUNNING && g1->state == GEN_READY, "STOPPING=1 outside a window: nothing happens");
	supervisor_free(&s);

	g2 = confirm_window(&s, "readiness: {timeout: 5s, interval: 100ms}\n"
				"reload: {confirm: 10s, confirm-command: [/bin/false]}\n");
	CHECK(g2->confirming && g2->check_usec == 10 * SEC + 300 * MS,
	      "with reload.confirm-command the first probe is due when the window begins");
	supervisor_dispatch(&s,
			    &(struct event){.type = EV_UNHEALTHY,
					    .gen = g2,
					    .why = "failed reload.confirm-command (it exited with status 1)"},
			    fake.now);
	check_reply(&s, 1, false,
		    "generation 2 failed reload.confirm-command (it exited with status 1), 0.0 s after ready, "
		    "within "
		    "reload.confirm 10s: rolled back, generation 1 keeps serving");
	CHECK(!g2->confirming && g2->check_usec == USEC_INFINITY && g2->state == GEN_STOPPING,
	      "a failed confirm-command: the probes end, generation 2 is stopped");
	supervisor_free(&s);
}

static void test_confirm_machine(void) {
	struct supervisor s;
	/* A second reload during the window: queued, it runs after the commit. */
	struct generation *g2 = confirm_window(&s, CONFIRM);
	event(&s, EV_RELOAD_REQUEST, NULL);
	event(&s, EV_RELOAD_REQUEST, NULL);
	CHECK(s.state == SUP_CONFIRMING && s.reload_queued && !gen(&s, 3), "reloads during the window: one queued");
	at(20 * SEC + 300 * MS);
	event(&s, EV_CONFIRMED, NULL);
	check_reply(&s, 1, true, "confirmed");
	CHECK(s.state == SUP_RELOADING && s.current == g2 && gen(&s, 3) && s.reload.seq == 2,
	      "committed, then the queued reload runs as reload 2");
	supervisor_free(&s);

	/* ...and after a rollback. */
	g2 = confirm_window(&s, CONFIRM);
	event(&s, EV_RELOAD_REQUEST, NULL);
	exited(&s, g2, 1);
	check_reply(&s, 1, false, "rolled back");
	CHECK(s.state == SUP_RELOADING && s.current == gen(&s, 1) && gen(&s, 3),
	      "rolled back, then the queued reload runs from generation 1");
	supervisor_free(&s);

	/* baton stop during the window: both stop. */
	g2 = confirm_window(&s, CONFIRM);
	struct generation *g1 = gen(&s, 1);
	event(&s, EV_STOP_REQUEST, NULL);
	struct reload_reply *r = supervisor_take_replies(&s);
	CHECK(r && r->seq == 1 && !r->ok && streq(r->message, "baton is stopping"),
	      "stop during the window: reload 1 is answered 'baton is stopping'");
	reload_replies_free(r);
	CHECK(s.state == SUP_STOPPING && g1->state == GEN_STOPPING && g2->state == GEN_STOPPING && !g2->confirming,
	      "stop during the window: both generations are told to stop");
	exited(&s, g2, 0);
	exited(&s, g1, 0);
	CHECK(s.state == SUP_DONE && s.exit_code == 0, "both gone: done with 0");
	supervisor_free(&s);

	/* The old generation dies during the window: the new one takes over at once. */
	g2 = confirm_window(&s, CONFIRM);
	g1 = gen(&s, 1);
	at(13 * SEC);
	exited(&s, g1, 1);
	check_reply(&s, 1, true, "before the end of reload.confirm: generation 1 exited with status 1");
	CHECK(s.state == SUP_RUNNING && s.current == g2 && !g2->confirming && fake.started == 2 && s.failures == 0,
	      "the old generation died in the window: generation 2 current at once, no restart, no failure "
	      "counted");
	CHECK(supervisor_next_deadline(&s) == USEC_INFINITY, "no window left");
	supervisor_free(&s);

	/* The old one hangs (its watchdog) during the window: killed, and its end hands over to the new one. */
	g2 = confirm_window(&s, WATCHDOG CONFIRM);
	g1 = gen(&s, 1);
	event(&s, EV_WATCHDOG, g1);
	CHECK(g1->state == GEN_KILLED && s.state == SUP_CONFIRMING, "the old generation's watchdog: it is killed");
	supervisor_generation_ended(&s, g1, SIGKILL, false, fake.now);
	check_reply(&s, 1, true, "generation 1 was killed by SIGKILL");
	CHECK(s.current == g2 && s.state == SUP_RUNNING, "generation 2 takes over");
	supervisor_free(&s);

	/* No old generation to go back to (a reload while restarting after a crash): no window. */
	start(&s, CONFIRM);
	event(&s, EV_READY, s.current);
	exited(&s, s.current, 1);
	event(&s, EV_RELOAD_REQUEST, NULL);
	event(&s, EV_READY, s.reload.gen);
	check_reply(&s, 1, true, "is serving");
	CHECK(s.state == SUP_RUNNING && fake.confirm_begun == 0, "nothing to roll back to: it commits at once");
	supervisor_free(&s);
}

int main(void) {
	log_max_level = LOG_CRIT;
	snprintf(cfg_path, sizeof(cfg_path), "/tmp/test-supervisor-%d.yaml", (int)getpid());
	/* First, with NOTIFY_SOCKET (baton reads it once): what goes upstream during a confirm window. Then the
	 * socket goes away, so that the many messages of the other tests cannot fill its queue (10 datagrams)
	 * and block. */
	upstream_open();
	test_confirm_commit();
	test_confirm_rollback_exit();
	test_confirm_rollback_other();
	test_confirm_machine();
	close(upstream_fd);
	unlink(upstream_path);
	test_first_start();
	test_first_start_fails();
	test_reload_ok();
	test_reload_fails();
	test_queued_reloads();
	test_backoff();
	test_stop_during_reload();
	test_restart_strategy();
	test_readiness_none();
	test_interrupted();
	test_long_reason();
	unlink(cfg_path);
	return test_done();
}
