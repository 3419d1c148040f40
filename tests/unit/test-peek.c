/* config_peek_control_socket() (config-peek.c): the control commands' reading of control.socket without loading the
 * config. Each form of file gives what libyaml's reading of the whole document gives (config_yaml_peek(), the
 * reference); the common forms are read by hand, the others fall back to the reference. */
#include "test.h"

#include <stdbool.h>
#include <unistd.h>

#include "config-internal.h"
#include "config.h"
#include "util.h"

static const char *write_tmp(const char *text) {
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/test-peek-XXXXXX.yaml");
	int fd = mkstemps(path, 5);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("temporary file");
		exit(EXIT_FAILURE);
	}
	close(fd);
	return path;
}

/* want: the value, or NULL for -ENOENT. fast: whether the hand reading must answer (not -EAGAIN). */
static void check_form(const char *what, const char *text, const char *want, bool fast) {
	const char *path = write_tmp(text);
	char *got = NULL, *ref = NULL, *hand = NULL;
	int r = config_peek_control_socket(path, &got);
	int rr = config_yaml_peek(path, "control.socket", &ref);
	int rh = config_peek_text(text, strlen(text), &hand);
	if (want) {
		CHECK(r == 0, "%s: found (%d)", what, r);
		CHECK_STREQ(got, want, "%s: the value", what);
	} else
		CHECK(r == -ENOENT, "%s: absent (%d)", what, r);
	CHECK(r == rr && (r < 0 || streq(got, ref)), "%s: as libyaml's reading of the whole document (%d, %s)", what,
	      rr, strempty(ref));
	if (fast)
		CHECK(rh != -EAGAIN && rh == r && (rh < 0 || streq(hand, got)), "%s: read by hand (%d)", what, rh);
	else
		CHECK(rh == -EAGAIN, "%s: left to libyaml (%d)", what, rh);
	unlink(path);
	free(got);
	free(ref);
	free(hand);
}

#define LISTENERS "listeners:\n  - name: a\n    address: tcp://127.0.0.1:1\n  - name: b\n    address: tcp://:2\n"
#define PROGRAM "program:\n  command: [\"/bin/app\", --fd, \"{fd:a}\"]\n"

int main(void) {
	check_form("no control key", LISTENERS PROGRAM, NULL, true);
	check_form("control.socket last", LISTENERS PROGRAM "control:\n  socket: /run/a.sock\n", "/run/a.sock", true);
	check_form("control.socket first", "control:\n  socket: /run/b.sock\n" LISTENERS PROGRAM, "/run/b.sock", true);
	check_form("disabled", LISTENERS PROGRAM "control:\n  socket: \"\"\n", "", true);
	check_form("quoted, with a space", PROGRAM "control:\n  socket: \"/run/a b.sock\"\n", "/run/a b.sock", true);
	check_form("single-quoted", PROGRAM "control:\n  socket: '/run/it''s.sock'\n", "/run/it's.sock", true);
	check_form("flow mapping", PROGRAM "control: {socket: /run/f.sock}\n", "/run/f.sock", true);
	check_form("comments", PROGRAM "control: # where\n# between\n  socket: /run/d.sock # here\n", "/run/d.sock",
		   true);
	check_form("a list at column 0 under its key",
		   "listeners:\n- name: a\n  address: tcp://:1\ncontrol:\n  socket: /run/c.sock\n" PROGRAM,
		   "/run/c.sock", true);
	check_form("\"control\" only inside values",
		   PROGRAM "  environment: {A: control}\nreadiness:\n  type: notify\n", NULL, true);
	check_form("\"control:\" inside a block scalar",
		   "program:\n  command: [a]\n  environment:\n    A: |\n      control:\n        socket: /evil\n", NULL,
		   true);
	check_form("control without socket", PROGRAM "control: {}\n", NULL, true);
	check_form("socket with no value", PROGRAM "control:\n  socket:\n", "", true);
	check_form("an unknown key beside socket", "control:\n  socket: /run/s.sock\n  other: x\n", "/run/s.sock",
		   true);

	/* What the hand reading leaves to libyaml, and libyaml gets right. */
	check_form("a flow collection over two lines", "program: {command: [a,\n  b]}\ncontrol:\n  socket: /x\n", "/x",
		   false);
	check_form("a document marker", "---\ncontrol:\n  socket: /y\n", "/y", false);
	check_form("an alias", "x: &s /run/e.sock\ncontrol:\n  socket: *s\n", "/run/e.sock", false);
	check_form("a quoted key", "\"control\":\n  socket: /q\n", "/q", false);
	check_form("an escaped key", "\"contr\\u006Fl\": {socket: /u}\n", "/u", false);
	check_form("CRLF line ends", "control:\r\n  socket: /r\r\n", "/r", false);
	check_form("a multi-line string that hides a key at column 0", "a: \"x\ncontrol: y\"\n", NULL, false);
	check_form("a plain scalar with a quote", "a: it's\ncontrol:\n  socket: /z\n", "/z", false);
	check_form("control twice (an invalid config)", "control:\n  socket: /1\ncontrol:\n  socket: /2\n", "/1",
		   false);
	check_form("a tab after a key, on a line past control",
		   PROGRAM "control:\n  socket: /t\nstop:\n  signal:\tINT\n", "/t", false);
	check_form("a tab in a comment before control", "# a\tb\ncontrol:\n  socket: /c\n", "/c", false);
	check_form("not YAML, no control", "a: [\n", NULL, true);
	check_form("not YAML", "a: [\ncontrol:\n  socket: /n\n", NULL, false);

	char *p = NULL;
	CHECK(config_peek_control_socket("/nonexistent/baton.yaml", &p) == -ENOENT, "no file: -ENOENT");
	return test_done();
}
