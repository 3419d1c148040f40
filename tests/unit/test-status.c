/* What the control socket answers (baton(1) CONTROL SOCKET): the status reply, as JSON and as the text of
 * `baton status`, rendered from a supervisor's state; a reload's reply; the stop reply. */
#include <stdio.h>
#include <string.h>

#include "fake-mechanisms.h"
#include "json.h"
#include "status.h"
#include "test.h"
#include "util.h"

static struct generation gen(unsigned id, pid_t pid, enum gen_state st, uint64_t started, const char *status) {
	return (struct generation){
		.id = id,
		.pid = pid,
		.state = st,
		.started_usec = started,
		.status = (char *)status,
		.pidfd = -1,
		.cgroup_events_fd = -1,
		.processes = -1,
		.memory_bytes = UINT64_MAX,
		.cpu_usec = UINT64_MAX,
	};
}

static void contains(const char *text, const char *want, const char *what) {
	/* The test point's name on one line: newlines of want shown as \n. */
	char name[256];
	size_t n = 0;
	for (const char *p = want; *p && n + 3 < sizeof(name); p++) {
		if (*p == '\n') {
			name[n++] = '\\';
			name[n++] = 'n';
		} else
			name[n++] = *p;
	}
	name[n] = '\0';
	CHECK(text && strstr(text, want), "%s has '%s'", what, name);
	if (!text || !strstr(text, want))
		for (const char *line = text ? text : "(null)"; line && *line;) {
			const char *nl = strchr(line, '\n');
			printf("#   got: %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
			line = nl ? nl + 1 : NULL;
		}
}

static void test_status(void) {
	struct listener ls[2] = {{.name = "http", .fd = 3}, {.name = "admin", .fd = 4, .inherited = true}};
	const char *why;
	addr_parse("tcp://127.0.0.1:8080", &ls[0].address, &why);
	addr_parse("unix:/run/app.sock", &ls[1].address, &why);
	struct generation g1 = gen(1, 101, GEN_STOPPING, 1000000, NULL);
	struct generation g2 = gen(2, 102, GEN_STARTING, 9000000, "warming \"up\"");
	g2.next = &g1;
	/* Generation 2 in a cgroup with the controllers (3 processes, 2 MiB, 1.5 s of cpu); generation 1 without a
	 * cgroup: a process count only. */
	g2.in_cgroup = true;
	g2.processes = 3;
	g2.memory_bytes = 2 * 1024 * 1024;
	g2.cpu_usec = 1500000;
	g1.processes = 1;
	struct supervisor s = {
		.options = {.config_path = "/etc/baton/app.yaml"},
		.listeners = ls,
		.n_listeners = 2,
		.state = SUP_RELOADING,
		.generations = &g2,
		.current = &g1,
		.reload = {.gen = &g2},
		.last_reload = {.seq = 3, .ok = false, .message = "invalid configuration", .duration_usec = 12000},
		.reload_queued = true,
		.restarts = 2,
		.failures = 1,
		.upgrades = 4,
	};
	_cleanup_free_ char *json = status_render(&s, 42, 11000000);
	contains(json, "{\"ok\":true,\"pid\":42,\"state\":\"reloading\",\"config\":\"/etc/baton/app.yaml\"", "JSON");
	contains(
		json,
		"{\"generation\":2,\"pid\":102,\"state\":\"starting\",\"role\":\"new\",\"uptime_ms\":2000,\"status\":"
		"\"warming \\\"up\\\"\",\"cgroup\":true,\"processes\":3,\"memory_bytes\":2097152,\"cpu_usec\":1500000}",
		"JSON");
	contains(json,
		 "{\"generation\":1,\"pid\":101,\"state\":\"stopping\",\"role\":\"current\",\"uptime_ms\":10000,"
		 "\"status\":null,\"cgroup\":false,\"processes\":1,\"memory_bytes\":null,\"cpu_usec\":null}",
		 "JSON");
	contains(json, "{\"name\":\"http\",\"fd\":3,\"address\":\"tcp://127.0.0.1:8080\",\"inherited\":false}", "JSON");
	contains(json, "{\"name\":\"admin\",\"fd\":4,\"address\":\"unix:/run/app.sock\",\"inherited\":true}", "JSON");
	contains(json, "\"reload_in_progress\":true,\"reload_queued\":true", "JSON");
	contains(json,
		 "\"last_reload\":{\"reload\":3,\"ok\":false,\"message\":\"invalid configuration\",\"duration_ms\":12}",
		 "JSON");
	contains(json, "\"restarts\":2,\"failures_in_a_row\":1,\"version\":\"" BATON_VERSION "\",\"upgrades\":4,\"upstream_held\":0",
		 "JSON");

	_cleanup_free_ char *text = NULL;
	CHECK(json_get_string(json, "text", &text) == 0, "the reply has the text form");
	contains(text, "baton pid 42: reloading (/etc/baton/app.yaml)\n", "text");
	contains(text,
		 "  generation 2: pid 102, starting, up 2s, 3 processes, memory 2048 KiB, cpu 1.500s, status: warming "
		 "\"up\"\n",
		 "text");
	contains(text, "  generation 1: pid 101, stopping (current), up 10s, 1 process\n", "text");
	contains(text, "  listener admin: fd 4, unix:/run/app.sock (inherited)\n", "text");
	contains(text, "  last reload (#3): failed: invalid configuration\n", "text");
	contains(text, "  restarts: 2\n  baton " BATON_VERSION ", upgrades: 4", "text");

	struct supervisor empty = {.state = SUP_BACKOFF};
	_cleanup_free_ char *json2 = status_render(&empty, 7, 0);
	contains(json2, "\"config\":null,\"generations\":[],\"listeners\":[]", "JSON without generations");
	contains(json2, "\"last_reload\":null", "JSON before any reload");
	_cleanup_free_ char *text2 = NULL;
	json_get_string(json2, "text", &text2);
	contains(text2, "baton pid 7: restarting\n  no generation running\n  no reload yet\n", "text without any");
	contains(json2, "\"confirm\":null", "JSON outside a confirm window");
}

/* A reload.confirm window: 7.2 s of 10 s left, generation 2 on trial beside generation 1. */
static void test_confirming(void) {
	struct generation g1 = gen(1, 101, GEN_READY, 1000000, NULL);
	struct generation g2 = gen(2, 102, GEN_READY, 9000000, NULL);
	g2.next = &g1;
	struct config c = {.reload_confirm_usec = 10000000};
	struct supervisor s = {
		.state = SUP_CONFIRMING,
		.generations = &g2,
		.current = &g1,
		.reload = {.gen = &g2, .config = &c, .confirm_until = 20000000},
	};
	_cleanup_free_ char *json = status_render(&s, 42, 12800000);
	contains(json, "\"state\":\"confirming\"", "JSON in a window");
	contains(json, "\"reload_in_progress\":true,\"reload_queued\":false,\"confirm\":{\"generation\":2,"
		       "\"window_ms\":10000,\"left_ms\":7200}",
		 "JSON in a window");
	_cleanup_free_ char *text = NULL;
	json_get_string(json, "text", &text);
	contains(text, "baton pid 42: confirming, 7.2 s left\n", "text in a window");
	contains(text, "  generation 2: pid 102, ready (new, confirming), up 3s\n", "text in a window");
	contains(text, "  generation 1: pid 101, ready (current), up 11s\n", "text in a window");
}

static void test_replies(void) {
	struct reload_reply ok = {.seq = 5,
				  .ok = true,
				  .message = "serving",
				  .generation = 3,
				  .pid = 99,
				  .duration_usec = 1500,
				  .ready_usec = 250};
	_cleanup_free_ char *a = status_reload_reply(&ok);
	CHECK_STREQ(
		a,
		"{\"ok\":true,\"reload\":5,\"message\":\"serving\",\"generation\":3,\"pid\":99,\"duration_ms\":1.500,"
		"\"ready_ms\":0.250}",
		"a successful reload's reply");
	struct reload_reply bad = {.seq = 6, .ok = false, .message = "invalid \"x\""};
	_cleanup_free_ char *b = status_reload_reply(&bad);
	CHECK_STREQ(b, "{\"ok\":false,\"reload\":6,\"error\":\"invalid \\\"x\\\"\"}", "a failed reload's reply");
	_cleanup_free_ char *c = status_stop_reply(143);
	CHECK_STREQ(c, "{\"ok\":true,\"exit_status\":143}", "the stop reply");
	_cleanup_free_ char *d = status_upgrade_reply("0.0.9", 3, 77, 12345);
	CHECK_STREQ(d,
		    "{\"ok\":true,\"message\":\"baton 0.0.9 is now baton " BATON_VERSION
		    " (pid 77, upgrade 3), in 12.3 ms\",\"from\":\"0.0.9\",\"version\":\"" BATON_VERSION
		    "\",\"upgrades\":3,\"pid\":77,\"duration_ms\":12.345}",
		    "the upgrade reply");
}

int main(void) {
	test_status();
	test_confirming();
	test_replies();
	return test_done();
}
