/* Config loading: every class of bad input gives an error naming the file, the key, the value and the right line;
 * defaults; a config with every key; the print → load round trip; the command-line merge. */
#include "test.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config-internal.h"
#include "config.h"
#include "util.h"

static char *tmp_paths[1024];
static size_t n_tmp_paths;

/* Writes text to a fresh temporary .yaml file; the path lives until the end of the test. */
static const char *write_tmp(const char *text) {
	char *path = strdup("/tmp/test-config-XXXXXX.yaml");
	int fd = mkstemps(path, 5);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("temporary file");
		exit(EXIT_FAILURE);
	}
	close(fd);
	if (n_tmp_paths < ARRAY_SIZE(tmp_paths))
		tmp_paths[n_tmp_paths++] = path;
	return path;
}

static struct config *load_ok(const char *text, const char *what) {
	const char *path = write_tmp(text);
	struct config *c = NULL;
	char *error = NULL;
	int r = config_load(path, &c, &error);
	CHECK(r == 0 && c, "loads: %s", what);
	if (r < 0)
		printf("#   error: %s\n", error);
	free(error);
	return r == 0 ? c : NULL;
}

/* Checks that text fails to load with exactly "PATH: " + want. */
static void load_fails(const char *text, const char *want, const char *what) {
	const char *path = write_tmp(text);
	struct config *c = NULL;
	char *error = NULL, *full = NULL;
	int r = config_load(path, &c, &error);
	CHECK(r < 0 && !c, "rejected: %s", what);
	if (asprintf(&full, "%s: %s", path, want) < 0)
		exit(EXIT_FAILURE);
	CHECK_STREQ(error, full, "message: %s", what);
	if (r == 0)
		config_free(c);
	free(error);
	free(full);
}

/* A minimal valid listener, to put one bad option under. */
#define TCP_LISTENER "listeners:\n  - name: web\n    address: tcp://:8080\n"
#define UNIX_LISTENER "listeners:\n  - name: sock\n    address: unix:/run/app.sock\n"
#define UDP_LISTENER "listeners:\n  - name: dns\n    address: udp://:5353\n"

static void test_file_errors(void) {
	struct config *c = NULL;
	char *error = NULL;

	CHECK(config_load("/nonexistent/app.yaml", &c, &error) == -ENOENT, "missing file: -ENOENT");
	CHECK_STREQ(error, "/nonexistent/app.yaml: No such file or directory", "missing file: message");
	free(error);

	load_fails("", "empty config", "empty file");
	load_fails("# only a comment\n\n", "empty config", "only comments");
	load_fails("---\n", "empty config", "an empty document");
	load_fails(
		"listeners:\n  - name: a\n    address: \"tcp://:80\n",
		"YAML syntax error: while scanning a quoted scalar (line 3): found unexpected end of stream (line 4)",
		"unterminated quote");
	load_fails("program:\n  user: a\n user: b\n",
		   "YAML syntax error: while parsing a block mapping (line 1): did not find expected key (line 3)",
		   "bad indentation");
	load_fails("listeners: [\n",
		   "YAML syntax error: while parsing a flow node (line 2): did not find expected "
		   "node content (line 2)",
		   "unclosed flow sequence");
	load_fails("program: {}\n---\nprogram: {}\n", "more than one YAML document (line 2)", "two documents");
	load_fails("5\n", "key '(top level)': expected a mapping, got a scalar: '5' (line 1)", "scalar top level");
	load_fails("- a\n- b\n", "key '(top level)': expected a mapping, got a list (line 1)", "list top level");
}

/* The size limit: a file of exactly 1 MiB loads (a comment pads it), one byte more is refused, saying the limit. */
static void test_file_size(void) {
	static const char head[] = "program:\n  command: [/bin/true]\n#";
	size_t max = 1024 * 1024;
	char *text = malloc(max + 2);
	memcpy(text, head, sizeof(head) - 1);
	memset(text + sizeof(head) - 1, 'x', max - sizeof(head));
	text[max - 1] = '\n';
	text[max] = '\0';
	struct config *c = load_ok(text, "a file of exactly 1 MiB");
	if (c)
		config_free(c);
	text[max] = '\n';
	text[max + 1] = '\0';
	load_fails(text, "file too large (max 1048576 bytes)", "a file of 1 MiB and one byte");
	free(text);
}

static void test_schema_errors(void) {
	load_fails("program: {}\nlisteners: []\nfoo: 1\n",
		   "key 'foo': unknown key (expected one of: listeners, program, readiness, reload, stop, restart, "
		   "notify, "
		   "control, systemd) (line 3)",
		   "unknown top-level key");
	load_fails(TCP_LISTENER "    nodelay: true\n    backlogg: 5\n",
		   "key 'listeners[0].backlogg': unknown key (expected one of: name, address, backlog, reuse-port, "
		   "reuse-address, ipv6-only, freebind, transparent, keepalive, nodelay, defer-accept, fastopen, "
		   "receive-buffer, send-buffer, mode, owner, group, inherit) (line 5)",
		   "unknown listener key");
	load_fails("program:\n  commands: [a]\n",
		   "key 'program.commands': unknown key (expected one of: command, environment, working-directory, "
		   "user, group, watchdog, fd-store, stdin, preload, compat, cgroup) (line 2)",
		   "unknown program key");
	load_fails("listeners: tcp://:80\n", "key 'listeners': expected a list, got a scalar: 'tcp://:80' (line 1)",
		   "listeners is a scalar");
	load_fails("listeners:\n", "key 'listeners': expected a list, got an empty value (line 1)",
		   "listeners is null");
	load_fails("listeners:\n  - tcp://:80\n",
		   "key 'listeners[0]': expected a mapping, got a scalar: 'tcp://:80' (line 2)",
		   "listener is a scalar");
	{
		/* The path of the 124th entry: an index of three digits, then the key. */
		char text[8192] = "listeners:\n";
		for (int i = 0; i < 123; i++)
			snprintf(text + strlen(text), sizeof(text) - strlen(text),
				 "  - {name: l%d, address: 'tcp://:%d'}\n", i, 1000 + i);
		strcat(text, "  - {name: x, adress: 'tcp://:80'}\n");
		load_fails(
			text,
			"key 'listeners[123].adress': unknown key (expected one of: name, address, backlog, "
			"reuse-port, "
			"reuse-address, ipv6-only, freebind, transparent, keepalive, nodelay, defer-accept, fastopen, "
			"receive-buffer, send-buffer, mode, owner, group, inherit) (line 125)",
			"a key path with a three-digit index");
	}
	load_fails("listeners:\n  - name: [a, b]\n    address: tcp://:80\n",
		   "key 'listeners[0].name': expected a scalar value, got a list (line 2)", "name is a list");
	load_fails("program:\n  command: /bin/app\n",
		   "key 'program.command': expected a list, got a scalar: '/bin/app' (line 2)", "command is a scalar");
	load_fails("program:\n  command: [a, {b: c}]\n",
		   "key 'program.command[1]': expected a scalar value, got a mapping (line 2)", "command item mapping");
	load_fails("stop: 5s\n", "key 'stop': expected a mapping, got a scalar: '5s' (line 1)", "section is a scalar");
	load_fails("program:\n  user:\n", "key 'program.user': empty value (write \"\" for an empty string) (line 2)",
		   "null value");
	load_fails(TCP_LISTENER "    backlog: ~\n",
		   "key 'listeners[0].backlog': empty value (write \"\" for an empty string) (line 4)", "~ value");
	load_fails("stop:\n  signal: SIGTERM\n  timeout: 5s\n  signal: SIGINT\n",
		   "key 'stop.signal': duplicate key (first at line 2) (line 4)", "duplicate key");
	load_fails("program: {}\nprogram: {}\n", "key 'program': duplicate key (first at line 1) (line 2)",
		   "duplicate top-level key");
	load_fails(TCP_LISTENER "    name: other\n",
		   "key 'listeners[0].name': duplicate key (first at line 2) (line 4)", "duplicate listener key");
	load_fails("listeners:\n  - name: a\n  - name: b\n    address: unix:@b\n",
		   "key 'listeners[0].address': missing (this key is required) (line 2)", "missing address");
	load_fails("listeners:\n  - address: unix:@b\n",
		   "key 'listeners[0].name': missing (this key is required) (line 2)", "missing name");
	load_fails("program:\n  ? [a]\n  : b\n", "key 'program': a key must be a scalar, not a list (line 2)",
		   "complex key");
}

static void test_listener_errors(void) {
	char yaml[1024];

	load_fails("listeners:\n  - name: u\n    address: udp://:53\n    reuse-address: true\n",
		   "key 'listeners[0].reuse-address': only for tcp addresses (this listener is udp://:53): 'true' "
		   "(line 4)",
		   "reuse-address on udp");

	load_fails("listeners:\n  - name: a:b\n    address: tcp://:80\n",
		   "key 'listeners[0].name': invalid name (1-255 characters of A-Z a-z 0-9 . _ -): 'a:b' (line 2)",
		   "name with ':'");
	load_fails("listeners:\n  - name: \"\"\n    address: tcp://:80\n",
		   "key 'listeners[0].name': invalid name (1-255 characters of A-Z a-z 0-9 . _ -): '' (line 2)",
		   "empty name");
	load_fails("listeners:\n  - name: a b\n    address: tcp://:80\n",
		   "key 'listeners[0].name': invalid name (1-255 characters of A-Z a-z 0-9 . _ -): 'a b' (line 2)",
		   "name with a space");
	char long_name[257];
	memset(long_name, 'x', 256);
	long_name[256] = '\0';
	snprintf(yaml, sizeof(yaml), "listeners:\n  - name: %s\n    address: tcp://:80\n", long_name);
	load_fails(yaml,
		   "key 'listeners[0].name': invalid name (1-255 characters of A-Z a-z 0-9 . _ -): "
		   "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		   "xx...' "
		   "(line 2)",
		   "256-character name");
	long_name[255] = '\0';
	snprintf(yaml, sizeof(yaml), "listeners:\n  - name: %s\n    address: tcp://:80\n", long_name);
	struct config *c = load_ok(yaml, "255-character name");
	config_free(c);

	load_fails("listeners:\n  - name: a\n    address: tcp://:80\n  - name: a\n    address: tcp://:81\n",
		   "key 'listeners[1].name': duplicate listener name (also listeners[0]): 'a' (line 4)",
		   "duplicate name");
	load_fails("listeners:\n  - name: a\n    address: tcp://:80\n  - name: b\n    address: tcp6://:80\n",
		   "key 'listeners[1].address': duplicate address (also listeners[0], 'a'): 'tcp6://:80' (line 5)",
		   "duplicate address (tcp:// and tcp6:// on all addresses)");
	load_fails(
		"listeners:\n  - name: a\n    address: unix:/run/a.sock\n  - name: b\n    address: unix:/run/a.sock\n",
		"key 'listeners[1].address': duplicate address (also listeners[0], 'a'): 'unix:/run/a.sock' (line 5)",
		"duplicate unix path");
	c = load_ok("listeners:\n  - name: a\n    address: tcp://:80\n  - name: b\n    address: udp://:80\n",
		    "tcp and udp on one port");
	config_free(c);

	load_fails("listeners:\n  - name: a\n    address: tcp://:0\n",
		   "key 'listeners[0].address': port out of range 1-65535: 'tcp://:0' (line 3)", "port 0");
	load_fails("listeners:\n  - name: a\n    address: tcp://:70000\n",
		   "key 'listeners[0].address': port out of range 1-65535: 'tcp://:70000' (line 3)", "port 70000");
	load_fails("listeners:\n  - name: a\n    address: htp://:80\n",
		   "key 'listeners[0].address': unknown scheme (expected tcp://, tcp4://, tcp6://, udp://, udp4://, "
		   "udp6://, unix:, unix-dgram: or unix-seqpacket:): 'htp://:80' (line 3)",
		   "bad scheme");
	load_fails("listeners:\n  - name: a\n    address: tcp://:80abc\n",
		   "key 'listeners[0].address': invalid port (a decimal number 1-65535 without leading zeros): "
		   "'tcp://:80abc' (line 3)",
		   "port 80abc");

	/* Strict numbers: libcyaml would read these as 80, 8 and 80. */
	load_fails(TCP_LISTENER "    backlog: 80abc\n",
		   "key 'listeners[0].backlog': expected a decimal number 1-2147483647 (no sign, no leading zero): "
		   "'80abc' (line 4)",
		   "backlog 80abc");
	load_fails(TCP_LISTENER "    backlog: 010\n",
		   "key 'listeners[0].backlog': expected a decimal number 1-2147483647 (no sign, no leading zero): "
		   "'010' (line 4)",
		   "backlog 010");
	load_fails(TCP_LISTENER "    fastopen: 0x50\n",
		   "key 'listeners[0].fastopen': expected a decimal number 0-2147483647 (no sign, no leading zero): "
		   "'0x50' (line 4)",
		   "fastopen 0x50");
	load_fails(TCP_LISTENER "    backlog: 0\n",
		   "key 'listeners[0].backlog': out of range 1-2147483647: '0' (line 4)", "backlog 0");
	load_fails(TCP_LISTENER "    backlog: 2147483648\n",
		   "key 'listeners[0].backlog': out of range 1-2147483647: '2147483648' (line 4)", "backlog > INT_MAX");
	load_fails(TCP_LISTENER "    backlog: -1\n",
		   "key 'listeners[0].backlog': expected a decimal number 1-2147483647 (no sign, no leading zero): "
		   "'-1' (line 4)",
		   "backlog -1");
	load_fails(TCP_LISTENER "    receive-buffer: 4294967296\n",
		   "key 'listeners[0].receive-buffer': out of range 0-2147483647: '4294967296' (line 4)",
		   "receive-buffer beyond uint32");
	load_fails(TCP_LISTENER "    send-buffer: 1.5\n",
		   "key 'listeners[0].send-buffer': expected a decimal number 0-2147483647 (no sign, no leading zero): "
		   "'1.5' (line 4)",
		   "send-buffer 1.5");

	/* Strict booleans. */
	load_fails(TCP_LISTENER "    nodelay: flase\n",
		   "key 'listeners[0].nodelay': expected true or false: 'flase' (line 4)", "flase");
	load_fails(TCP_LISTENER "    reuse-port: True\n",
		   "key 'listeners[0].reuse-port': expected true or false: 'True' (line 4)", "True");
	load_fails(TCP_LISTENER "    keepalive: yes\n",
		   "key 'listeners[0].keepalive': expected true or false: 'yes' (line 4)", "yes");
	load_fails(TCP_LISTENER "    freebind: 1\n",
		   "key 'listeners[0].freebind': expected true or false: '1' (line 4)", "1 as a boolean");

	/* Durations need their unit. */
	load_fails(TCP_LISTENER "    defer-accept: 30\n",
		   "key 'listeners[0].defer-accept': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: "
		   "'30' (line 4)",
		   "bare-number defer-accept");
	load_fails(TCP_LISTENER "    defer-accept: 1500ms\n",
		   "key 'listeners[0].defer-accept': must be whole seconds: '1500ms' (line 4)", "defer-accept 1500ms");

	/* Options for another kind of socket. */
	load_fails(TCP_LISTENER "    mode: \"0660\"\n",
		   "key 'listeners[0].mode': only for unix socket paths (not abstract names) (this listener is "
		   "tcp://:8080): '0660' (line 4)",
		   "mode on tcp");
	load_fails(TCP_LISTENER "    owner: www-data\n",
		   "key 'listeners[0].owner': only for unix socket paths (not abstract names) (this listener is "
		   "tcp://:8080): 'www-data' (line 4)",
		   "owner on tcp");
	load_fails("listeners:\n  - name: a\n    address: unix:@abstract\n    group: www-data\n",
		   "key 'listeners[0].group': only for unix socket paths (not abstract names) (this listener is "
		   "unix:@abstract): 'www-data' (line 4)",
		   "group on an abstract socket");
	load_fails(UNIX_LISTENER "    nodelay: true\n",
		   "key 'listeners[0].nodelay': only for tcp addresses (this listener is unix:/run/app.sock): 'true' "
		   "(line 4)",
		   "nodelay on unix");
	load_fails(UDP_LISTENER "    keepalive: false\n",
		   "key 'listeners[0].keepalive': only for tcp addresses (this listener is udp://:5353): 'false' "
		   "(line 4)",
		   "keepalive on udp");
	load_fails(
		UDP_LISTENER "    defer-accept: 5s\n",
		"key 'listeners[0].defer-accept': only for tcp addresses (this listener is udp://:5353): '5s' (line 4)",
		"defer-accept on udp");
	load_fails(UDP_LISTENER "    fastopen: 5\n",
		   "key 'listeners[0].fastopen': only for tcp addresses (this listener is udp://:5353): '5' (line 4)",
		   "fastopen on udp");
	load_fails(UDP_LISTENER "    backlog: 5\n",
		   "key 'listeners[0].backlog': only for stream sockets (tcp, unix, unix-seqpacket) (this listener is "
		   "udp://:5353): '5' (line 4)",
		   "backlog on udp");
	load_fails(
		UNIX_LISTENER "    reuse-port: true\n",
		"key 'listeners[0].reuse-port': only for tcp and udp addresses (this listener is unix:/run/app.sock): "
		"'true' (line 4)",
		"reuse-port on unix");
	load_fails(UNIX_LISTENER "    ipv6-only: true\n",
		   "key 'listeners[0].ipv6-only': only for tcp and udp addresses that can be IPv6 (this listener is "
		   "unix:/run/app.sock): 'true' (line 4)",
		   "ipv6-only on unix");
	load_fails("listeners:\n  - name: a\n    address: tcp://127.0.0.1:80\n    ipv6-only: true\n",
		   "key 'listeners[0].ipv6-only': only for tcp and udp addresses that can be IPv6 (this listener is "
		   "tcp://127.0.0.1:80): 'true' (line 4)",
		   "ipv6-only on an IPv4 address");

	load_fails(UNIX_LISTENER "    mode: \"660x\"\n",
		   "key 'listeners[0].mode': expected 3 or 4 octal digits such as \"0660\": '660x' (line 4)",
		   "mode 660x");
	load_fails(UNIX_LISTENER "    mode: \"0680\"\n",
		   "key 'listeners[0].mode': expected 3 or 4 octal digits such as \"0660\": '0680' (line 4)",
		   "mode 0680");
	load_fails(UNIX_LISTENER "    mode: \"66\"\n",
		   "key 'listeners[0].mode': expected 3 or 4 octal digits such as \"0660\": '66' (line 4)", "mode 66");
	load_fails(UNIX_LISTENER "    owner: \"\"\n", "key 'listeners[0].owner': must not be empty: '' (line 4)",
		   "empty owner");
	load_fails(UNIX_LISTENER "    inherit: sometimes\n",
		   "key 'listeners[0].inherit': expected auto, required or never: 'sometimes' (line 4)", "bad inherit");

	/* The line is the one of the bad listener, not of the first. */
	load_fails("listeners:\n  - name: a\n    address: tcp://:80\n\n  - name: b\n    address: tcp://:81\n"
		   "    backlog: 5\n    nodelay: maybe\n",
		   "key 'listeners[1].nodelay': expected true or false: 'maybe' (line 8)", "second listener's line");
}

/* 1,000 listeners, the duplicate checks' hash tables: n with no duplicate loads; a name, then an address, repeated far
 * apart is found and named as the pairwise search names it (the later one, and the first it repeats). */
static void many_listeners(char *buf, size_t size, size_t dup_name, size_t dup_addr) {
	size_t m = (size_t)snprintf(buf, size, "listeners:\n");
	for (size_t i = 0; i < 1000 && m < size; i++)
		m += (size_t)snprintf(buf + m, size - m, "  - name: l%zu\n    address: tcp://127.0.0.1:%zu\n",
				      i == dup_name ? (size_t)7 : i, 20000 + (i == dup_addr ? (size_t)3 : i));
}

static void test_many_listeners_unique(void) {
	size_t size = 64 * 1024;
	char *yaml = malloc(size);
	CHECK(yaml != NULL, "memory for the text");
	if (!yaml)
		return;
	many_listeners(yaml, size, SIZE_MAX, SIZE_MAX);
	struct config *c = load_ok(yaml, "1,000 listeners, each name and address once");
	CHECK(c && c->n_listeners == 1000, "1,000 listeners loaded");
	config_free(c);
	many_listeners(yaml, size, 993, SIZE_MAX);
	load_fails(yaml, "key 'listeners[993].name': duplicate listener name (also listeners[7]): 'l7' (line 1988)",
		   "a name repeated 986 listeners later");
	many_listeners(yaml, size, SIZE_MAX, 995);
	load_fails(yaml,
		   "key 'listeners[995].address': duplicate address (also listeners[3], 'l3'): 'tcp://127.0.0.1:20003' "
		   "(line 1993)",
		   "an address repeated 992 listeners later");
	free(yaml);
}

/* The raw config's arena (config-yaml.c): every string and struct of a large file comes through whole, however the
 * blocks were cut: 1,000 listeners (their list grows past one chunk, and moves as it grows) with names of 200
 * characters and an owner each, and a command argument of 10,000 bytes (a block of its own). */
static void test_many_listeners_content(void) {
	size_t size = 512 * 1024;
	char *yaml = malloc(size), *arg = malloc(10001), name[256];
	CHECK(yaml && arg, "memory for the text");
	if (!yaml || !arg) {
		free(yaml);
		free(arg);
		return;
	}
	memset(arg, 'a', 10000);
	arg[10000] = '\0';
	size_t m = (size_t)snprintf(yaml, size, "program:\n  command: [/bin/true, '%s']\nlisteners:\n", arg);
	for (size_t i = 0; i < 1000 && m < size; i++) {
		snprintf(name, sizeof(name), "n%04zu-%0195d", i, 0);
		m += (size_t)snprintf(yaml + m, size - m,
				      "  - name: %s\n    address: unix:/run/t/%zu.sock\n    owner: user%zu\n", name, i,
				      i);
	}
	CHECK(m < size, "the text fits");
	struct config *c = load_ok(yaml, "1,000 listeners with long names, a long argument");
	CHECK(c && c->n_listeners == 1000, "1,000 listeners loaded");
	size_t bad = 0;
	for (size_t i = 0; c && i < c->n_listeners; i++) {
		char want_path[64], want_owner[32];
		snprintf(name, sizeof(name), "n%04zu-%0195d", i, 0);
		snprintf(want_path, sizeof(want_path), "/run/t/%zu.sock", i);
		snprintf(want_owner, sizeof(want_owner), "user%zu", i);
		const struct listener_config *lc = &c->listeners[i];
		if (!streq(lc->name, name) || lc->address.family != AF_UNIX || !streq(lc->address.path, want_path) ||
		    !lc->owner || !streq(lc->owner, want_owner))
			bad++;
	}
	CHECK(c && bad == 0, "every name, address and owner as written (%zu differ)", bad);
	CHECK(c && c->command && streq(c->command[0], "/bin/true") && c->command[1] && streq(c->command[1], arg) &&
		      !c->command[2],
	      "the 10,000-byte argument as written");
	config_free(c);
	free(yaml);
	free(arg);
}

/* The quick load (config-yaml.c: libcyaml alone) against the full one, for the same file: the same config (its
 * normalized print) or the same error; and the quick one taken exactly where the file allows it. */
static char *print_of(struct config *c) {
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	config_print(c, f);
	fclose(f);
	return text;
}

static void quick_vs_full(const char *text, bool quick, const char *what) {
	const char *path = write_tmp(text);
	struct config *a = NULL, *b = NULL;
	char *ea = NULL, *eb = NULL;
	unsigned before = config_quick_loads;
	int ra = config_load(path, &a, &ea);
	bool was_quick = config_quick_loads != before;
	config_quick_load = false;
	int rb = config_load(path, &b, &eb);
	config_quick_load = true;
	CHECK(was_quick == quick, "%s: loaded %s", what, quick ? "by libcyaml alone" : "the full way");
	CHECK(config_quick_loads == before + was_quick, "%s: the full way when told to", what);
	if (ra == 0 && rb == 0) {
		char *pa = print_of(a), *pb = print_of(b);
		CHECK(pa && pb && streq(pa, pb), "%s: the same config both ways", what);
		if (pa && pb && !streq(pa, pb))
			printf("# quick:\n%s\n# full:\n%s\n", pa, pb);
		free(pa);
		free(pb);
	} else {
		CHECK(ra < 0 && rb < 0 && ea && eb && streq(ea, eb), "%s: the same error both ways (%s | %s)", what,
		      strempty(ea), strempty(eb));
	}
	config_free(a);
	config_free(b);
	free(ea);
	free(eb);
}

static void test_quick_load(void) {
	const char *ok = "listeners:\n  - name: http\n    address: unix:/run/t/http.sock\n    owner: www\n";
	quick_vs_full(ok, true, "a plain file");
	quick_vs_full("---\nlisteners:\n  - {name: http, address: 'tcp://[::1]:8080'}\nprogram:\n  command: [a, b]\n"
		      "readiness:\n  type: exec\n  command: [check]\nreload:\n  confirm: 2s\n"
		      "  confirm-command: [probe, -q]\n",
		      true, "a file that opens with ---, flow lists and every command");
	quick_vs_full("listeners:\n  - &l {name: a, address: 'tcp://:81'}\nprogram: {command: [x, !!str y]}\n", true,
		      "an anchor and a tag");
	/* What libcyaml alone reads differently: each makes the full load decide, and both agree. */
	quick_vs_full("listeners:\n  - name: http\n    address: unix:/run/t/a.sock\n    owner: ~\n", false,
		      "a null owner");
	quick_vs_full("listeners:\n  - name: http\n    address: unix:/run/t/a.sock\n    owner:\n", false,
		      "an empty owner");
	quick_vs_full("listeners:\n  - name: http\n    address: unix:/run/t/a.sock\n    owner: '~'\n", false,
		      "a quoted ~ owner (the full load accepts it)");
	quick_vs_full("listeners:\n  - name: http\n    address: tcp://:80\nprogram:\n  command: [a, NULL]\n", false,
		      "a null command argument");
	quick_vs_full("program:\n  command: []\n", false, "an empty command");
	quick_vs_full("program:\n  command: [ # none\n  ]\n", false, "an empty command with a comment");
	quick_vs_full("readiness:\n  type: exec\n  command: []\n", false, "an empty readiness.command");
	quick_vs_full("readiness:\n  interval: 1s\nreload:\n  confirm: 2s\n  confirm-command: []\n", false,
		      "an empty reload.confirm-command");
	quick_vs_full("listeners:\n  - name: http\n    address: \"tcp://:80\\0x\"\n", false, "an escaped NUL");
	quick_vs_full("listeners:\n  - name: http\n    address: tcp://:80\n---\nlisteners: []\n", false,
		      "a second document");
	quick_vs_full("listeners:\n  - name: http\n    address: tcp://:80\n...\n", false, "a document end");
	quick_vs_full("%YAML 1.1\n---\nlisteners:\n  - name: http\n    address: tcp://:80\n", false, "a directive");
	quick_vs_full("program:\n  command: [a]\n  environment:\n    A: b\n", false, "program.environment");
	quick_vs_full("program: {command: [x], user: &u alice, group: &u staff}\n", false, "an anchor defined twice");
	quick_vs_full("program: {command: [x]}\rreload: {strategy: replace}\r---\rstop: {timeout: 1s}\r", false,
		      "a second document after lone carriage returns");
	quick_vs_full("program:\n  command: [x]\nreload:\n  confirm: 2s\n  confirm-command: [\xc2\x85]\n", false,
		      "an empty list across a NEL");
	quick_vs_full("program:\n  command: [\n\xef\xbb\xbf]\n", false, "an empty list across a byte order mark");
	quick_vs_full("program:\n  command: [ #c\r]\n", false, "an empty list after a comment that a lone CR ends");
	quick_vs_full("program:\n  command: [x, \"a && b\"]\n", false, "two ampersands (perhaps two anchors)");
	{
		/* Blanks and comments after "[" are scanned once: 1 MiB of "[#" is looked at in linear time (this
		 * test's deadline is the unit test's timeout), then refused by both loads. */
		size_t size = 1024 * 1024 - 64;
		char *text = malloc(size + 1);
		CHECK(text != NULL, "memory for 1 MiB");
		if (text) {
			for (size_t i = 0; i < size; i++)
				text[i] = i % 2 ? '#' : '[';
			text[size] = '\0';
			quick_vs_full(text, false, "1 MiB of [#");
			free(text);
		}
	}
	/* Errors: libcyaml's and config.c's alike are the full load's. */
	quick_vs_full("listeners:\n  - name: http\n    adress: tcp://:80\n", false, "an unknown key");
	quick_vs_full("listeners:\n  - name: http\n    address: tcp://:80\n    name: b\n", false, "a duplicate key");
	quick_vs_full("listeners:\n  - name: http\n    address: tcp://:99999\n", false, "a bad port");
	quick_vs_full("listeners:\n  - name: a\n    address: tcp://:80\n  - name: a\n    address: tcp://:81\n", false,
		      "a duplicate name");
	quick_vs_full("", false, "an empty file");
	quick_vs_full("~\n", false, "a null document");
}

static void test_program_errors(void) {
	load_fails("program:\n  watchdog: 30\n",
		   "key 'program.watchdog': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '30' "
		   "(line 2)",
		   "watchdog without a unit");
	load_fails("program:\n  fd-store: yes\n", "key 'program.fd-store': expected true or false: 'yes' (line 2)",
		   "fd-store not a boolean");
	load_fails("systemd:\n  fd-store: maybe\n",
		   "key 'systemd.fd-store': expected auto, true or false: 'maybe' (line 2)",
		   "systemd.fd-store not auto/true/false");
	load_fails("program:\n  command: []\n", "key 'program.command': empty command (line 2)", "empty command");
	load_fails("program:\n  command:\n    - /bin/app\n    - \"\"\n",
		   "key 'program.command[1]': empty argument: '' (line 4)", "empty argument");
	load_fails("program:\n  command: [\"\", a]\n", "key 'program.command[0]': empty program name: '' (line 2)",
		   "empty program name");
	load_fails("program:\n  working-directory: srv/app\n",
		   "key 'program.working-directory': must be an absolute path: 'srv/app' (line 2)",
		   "relative working-directory");
	load_fails("program:\n  user: \"\"\n", "key 'program.user': must not be empty: '' (line 2)", "empty user");
	load_fails("program:\n  environment:\n    A: b\n    \"C=D\": e\n",
		   "key 'program.environment.C=D': invalid variable name (no '=', spaces or control characters; not "
		   "starting with a digit): 'C=D' (line 4)",
		   "env name with '='");
	load_fails("program:\n  environment:\n    \"\": e\n",
		   "key 'program.environment.': invalid variable name (no '=', spaces or control characters; not "
		   "starting with a digit): '' (line 3)",
		   "empty env name");
	load_fails("program:\n  environment:\n    A: b\n    A: c\n",
		   "key 'program.environment.A': duplicate key (first at line 3) (line 4)", "duplicate env name");
	load_fails("program:\n  environment:\n    A: [b]\n",
		   "key 'program.environment.A': expected a scalar value, got a list (line 3)", "env value is a list");
	load_fails("program:\n  environment:\n    A:\n",
		   "key 'program.environment.A': empty value (write \"\" for an empty string) (line 3)",
		   "env value null");
	load_fails("program:\n  environment: [A=b]\n",
		   "key 'program.environment': expected a mapping of NAME: value, got a list (line 2)",
		   "env as a list");
}

static void test_section_errors(void) {
	load_fails("readiness:\n  type: exe\n",
		   "key 'readiness.type': expected notify, exec, log, pidfile, delay or none: 'exe' (line 2)",
		   "bad readiness type");
	load_fails("readiness:\n  timeout: 0s\n", "key 'readiness.timeout': must be longer than 0s: '0s' (line 2)",
		   "zero readiness timeout");
	load_fails("readiness:\n  timeout: 60\n",
		   "key 'readiness.timeout': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '60' "
		   "(line 2)",
		   "bare-number timeout");
	load_fails("reload:\n  strategy: swap\n",
		   "key 'reload.strategy': expected replace, restart or signal: 'swap' (line 2)", "bad strategy");
	load_fails("reload:\n  signal: SIGFOO\n",
		   "key 'reload.signal': expected a signal such as SIGTERM, TERM or 15: 'SIGFOO' (line 2)",
		   "bad signal");
	load_fails("stop:\n  signal: 65\n",
		   "key 'stop.signal': expected a signal such as SIGTERM, TERM or 15: '65' (line 2)", "signal 65");
	load_fails(
		"stop:\n  timeout: 5 s\n",
		"key 'stop.timeout': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '5 s' (line 2)",
		"duration with a space");
	load_fails("restart:\n  policy: sometimes\n",
		   "key 'restart.policy': expected on-failure, always or never: 'sometimes' (line 2)", "bad policy");
	load_fails("restart:\n  delay: 1m\n  max-delay: 30s\n",
		   "key 'restart.delay': longer than restart.max-delay (30s): '1m' (line 2)", "delay > max-delay");
	load_fails("restart:\n  max-delay: 50ms\n",
		   "key 'restart.max-delay': longer than restart.max-delay (50ms): '50ms' (line 2)",
		   "max-delay below the default delay");
	load_fails("restart:\n  delay: 0s\n", "key 'restart.delay': must be longer than 0s: '0s' (line 2)",
		   "zero delay");
	load_fails("control:\n  socket: run/baton.sock\n",
		   "key 'control.socket': must be an absolute path, or \"\" to disable the socket: 'run/baton.sock' "
		   "(line 2)",
		   "relative control socket");
	load_fails("notify:\n  socket: run/notify.sock\n",
		   "key 'notify.socket': must be auto, abstract or an absolute path: 'run/notify.sock' (line 2)",
		   "relative notify socket");
	load_fails("notify:\n  socket: Abstract\n",
		   "key 'notify.socket': must be auto, abstract or an absolute path: 'Abstract' (line 2)",
		   "notify.socket is case-sensitive");
	load_fails("notify:\n  socket: \"\"\n",
		   "key 'notify.socket': must be auto, abstract or an absolute path: '' (line 2)",
		   "empty notify.socket");
	load_fails("notify:\n  socket: /run/app/\n",
		   "key 'notify.socket': must name the socket file, not a directory: '/run/app/' (line 2)",
		   "notify.socket directory");
	{
		char text[200], name[108];
		memset(name, 'n', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		snprintf(text, sizeof(text), "notify:\n  socket: /%s\n", name);
		struct config *c = NULL;
		char *error = NULL;
		CHECK(config_load(write_tmp(text), &c, &error) == -EINVAL && error &&
			      strstr(error, "key 'notify.socket': too long for a unix socket path (max 107 bytes)"),
		      "notify.socket too long: %s", strempty(error));
		free(error);
		config_free(c);
	}
}

/* The defaults of a file (quick false); quick use (no file) differs in readiness.type (none) and restart.policy
 * (never). */
static void check_defaults(const struct config *c, bool quick) {
	enum readiness_type type = quick ? READINESS_NONE : READINESS_NOTIFY;
	enum restart_policy policy = quick ? RESTART_NEVER : RESTART_ON_FAILURE;
	CHECK(c->readiness_type == type, "default readiness.type %s", readiness_type_to_string(type));
	CHECK(c->stdin_mode == STDIN_INHERIT && !c->stdin_listener, "default program.stdin inherit");
	CHECK(c->readiness_timeout_usec == 60 * USEC_PER_SEC, "default readiness.timeout 60s");
	CHECK(c->reload_strategy == RELOAD_REPLACE, "default reload.strategy replace");
	CHECK(c->reload_signal == SIGHUP, "default reload.signal SIGHUP");
	CHECK(c->reload_confirm_usec == 0 && !c->confirm_command, "default reload.confirm 0s, no confirm-command");
	CHECK(c->stop_signal == SIGTERM, "default stop.signal SIGTERM");
	CHECK(c->stop_timeout_usec == 30 * USEC_PER_SEC, "default stop.timeout 30s");
	CHECK(c->restart_policy == policy, "default restart.policy %s", restart_policy_to_string(policy));
	CHECK(c->restart_delay_usec == 100 * USEC_PER_MSEC, "default restart.delay 100ms");
	CHECK(c->restart_max_delay_usec == 30 * USEC_PER_SEC, "default restart.max-delay 30s");
	CHECK(c->control_socket == NULL, "default control.socket unset");
	CHECK(c->notify_socket == NULL, "default notify.socket auto");
	CHECK(c->program_watchdog_usec == 0 && !c->program_fd_store, "default program.watchdog 0s, fd-store false");
	CHECK(c->fd_store == FD_STORE_AUTO, "default systemd.fd-store auto");
	CHECK(!c->environment && !c->working_directory && !c->user && !c->group, "default program settings unset");
	CHECK(c->readiness_interval_usec == 250 * USEC_PER_MSEC, "default readiness.interval 250ms");
	CHECK(c->readiness_stream == STREAM_BOTH, "default readiness.stream both");
	CHECK(!c->readiness_command && !c->readiness_pattern && !c->readiness_pid_file && c->readiness_delay_usec == 0,
	      "default readiness keys of the other types unset");
	CHECK(!c->stdin_listener && !c->preload && !c->compat_server_starter && !c->compat_einhorn &&
		      c->stop_drain_usec == 0,
	      "default program.stdin unset, preload false, compat empty, stop.drain 0");
}

static void test_defaults(void) {
	struct config *c = load_ok(TCP_LISTENER, "one listener");
	if (!c)
		return;
	check_defaults(c, false);
	CHECK(c->command == NULL, "no command");
	CHECK(c->n_listeners == 1, "one listener");
	const struct listener_config *lc = &c->listeners[0];
	CHECK_STREQ(lc->name, "web", "listener name");
	CHECK(lc->address.kind == ADDR_TCP && lc->address.port == 8080, "listener address");
	CHECK(lc->backlog == SOMAXCONN, "default backlog SOMAXCONN");
	CHECK(!lc->reuse_port && lc->reuse_address, "default reuse-port false, reuse-address true");
	CHECK(lc->ipv6_only == -1, "default ipv6-only unset");
	CHECK(!lc->freebind && !lc->transparent && !lc->keepalive && !lc->nodelay, "default flags false");
	CHECK(lc->defer_accept_usec == 0 && lc->fastopen == 0, "default defer-accept and fastopen off");
	CHECK(lc->receive_buffer == 0 && lc->send_buffer == 0, "default buffers");
	CHECK(lc->mode == -1 && !lc->owner && !lc->group, "default mode/owner/group unset");
	CHECK(lc->inherit == INHERIT_AUTO, "default inherit auto");
	config_free(c);

	c = load_ok("program:\n  command: [/bin/true]\n", "no listeners");
	if (c) {
		CHECK(c->n_listeners == 0 && c->listeners == NULL, "no listeners");
		config_free(c);
	}
	c = load_ok("notify:\n  socket: abstract\n", "notify socket abstract");
	if (c) {
		CHECK_STREQ(c->notify_socket, "abstract", "notify.socket abstract kept");
		config_free(c);
	}
	c = load_ok("notify:\n  socket: auto\n", "notify socket auto");
	if (c) {
		CHECK(c->notify_socket == NULL, "notify.socket auto is the default");
		config_free(c);
	}
	c = load_ok("control:\n  socket: \"\"\n", "control socket disabled");
	if (c) {
		CHECK_STREQ(c->control_socket, "", "control.socket \"\" kept as written");
		config_free(c);
	}

	CHECK(config_new_default(&c) == 0, "config_new_default");
	check_defaults(c, true);
	CHECK(c->path == NULL && c->n_listeners == 0 && c->command == NULL, "config_new_default: empty");
	config_free(c);
}

static const char full_config[] = "# every key of the contract\n"
				  "listeners:\n"
				  "  - name: http\n"
				  "    address: tcp://0.0.0.0:8080\n"
				  "    backlog: 4096\n"
				  "    reuse-port: true\n"
				  "    reuse-address: false\n"
				  "    freebind: true\n"
				  "    transparent: true\n"
				  "    keepalive: true\n"
				  "    nodelay: true\n"
				  "    defer-accept: 5s\n"
				  "    fastopen: 16\n"
				  "    receive-buffer: 65536\n"
				  "    send-buffer: 131072\n"
				  "    inherit: required\n"
				  "  - name: v6\n"
				  "    address: tcp6://[::1]:8443\n"
				  "    ipv6-only: true\n"
				  "  - name: dns\n"
				  "    address: udp://:5353\n"
				  "    ipv6-only: false\n"
				  "  - name: control.sock\n"
				  "    address: unix:/run/app/app.sock\n"
				  "    backlog: 16\n"
				  "    mode: \"0660\"\n"
				  "    owner: www-data\n"
				  "    group: www-data\n"
				  "    inherit: never\n"
				  "  - name: abstract_1\n"
				  "    address: unix-seqpacket:@app\n"
				  "  - name: dgram\n"
				  "    address: unix-dgram:/run/app/dgram.sock\n"
				  "    mode: 600\n"
				  "program:\n"
				  "  command: [/usr/bin/app, --fd, \"{fd:http}\", 'it''s \"quoted\"', \"tab\\there\"]\n"
				  "  environment: { B: 2, A: \"x=y\", EMPTY: \"\", LANG: C.UTF-8 }\n"
				  "  working-directory: /srv/app\n"
				  "  user: app\n"
				  "  group: app\n"
				  "  watchdog: 20s\n"
				  "  fd-store: true\n"
				  "readiness:\n"
				  "  type: notify\n"
				  "  timeout: 90s\n"
				  "reload:\n"
				  "  strategy: signal\n"
				  "  signal: USR1\n"
				  "stop:\n"
				  "  signal: 3\n"
				  "  timeout: 1m\n"
				  "restart:\n"
				  "  policy: always\n"
				  "  delay: 250ms\n"
				  "  max-delay: 1h\n"
				  "notify:\n"
				  "  socket: /run/app/notify.sock\n"
				  "control:\n"
				  "  socket: /run/app/baton.sock\n"
				  "systemd:\n"
				  "  fd-store: \"true\"\n";

static void test_full(const struct config *c) {
	CHECK(c->n_listeners == 6, "full: 6 listeners");
	if (c->n_listeners != 6)
		return;
	const struct listener_config *l = c->listeners;
	CHECK_STREQ(l[0].name, "http", "full: name");
	CHECK(l[0].address.kind == ADDR_TCP && l[0].address.port == 8080 && !strcmp(l[0].address.host, "0.0.0.0"),
	      "full: address");
	CHECK(l[0].backlog == 4096, "full: backlog");
	CHECK(l[0].reuse_port && !l[0].reuse_address && l[0].freebind && l[0].transparent && l[0].keepalive &&
		      l[0].nodelay,
	      "full: booleans");
	CHECK(l[0].ipv6_only == -1, "full: ipv6-only unset");
	CHECK(l[0].defer_accept_usec == 5 * USEC_PER_SEC && l[0].fastopen == 16, "full: defer-accept, fastopen");
	CHECK(l[0].receive_buffer == 65536 && l[0].send_buffer == 131072, "full: buffers");
	CHECK(l[0].inherit == INHERIT_REQUIRED, "full: inherit required");
	CHECK(l[1].ipv6_only == 1 && l[2].ipv6_only == 0, "full: ipv6-only true and false");
	CHECK(l[2].address.kind == ADDR_UDP, "full: udp");
	CHECK(l[3].mode == 0660 && streq(l[3].owner, "www-data") && streq(l[3].group, "www-data"),
	      "full: mode, owner, group");
	CHECK(l[3].backlog == 16 && l[3].inherit == INHERIT_NEVER, "full: unix backlog, inherit never");
	CHECK(l[4].address.kind == ADDR_UNIX_SEQPACKET && l[4].address.abstract, "full: abstract seqpacket");
	CHECK(l[5].address.kind == ADDR_UNIX_DGRAM && l[5].mode == 0600, "full: dgram, mode 600 without quotes");

	CHECK(strv_length(c->command) == 5, "full: command length");
	if (strv_length(c->command) == 5) {
		CHECK_STREQ(c->command[2], "{fd:http}", "full: command placeholder");
		CHECK_STREQ(c->command[3], "it's \"quoted\"", "full: command quoting");
		CHECK_STREQ(c->command[4], "tab\there", "full: command escape");
	}
	CHECK(strv_length(c->environment) == 4, "full: environment size");
	if (strv_length(c->environment) == 4) {
		CHECK_STREQ(c->environment[0], "B=2", "full: environment in file order");
		CHECK_STREQ(c->environment[1], "A=x=y", "full: environment value with '='");
		CHECK_STREQ(c->environment[2], "EMPTY=", "full: environment empty value");
		CHECK_STREQ(c->environment[3], "LANG=C.UTF-8", "full: environment");
	}
	CHECK_STREQ(c->working_directory, "/srv/app", "full: working-directory");
	CHECK(streq(c->user, "app") && streq(c->group, "app"), "full: user, group");
	CHECK(c->readiness_type == READINESS_NOTIFY && c->readiness_timeout_usec == 90 * USEC_PER_SEC,
	      "full: readiness");
	CHECK(c->reload_strategy == RELOAD_SIGNAL && c->reload_signal == SIGUSR1, "full: reload");
	CHECK(c->stop_signal == SIGQUIT && c->stop_timeout_usec == 60 * USEC_PER_SEC, "full: stop");
	CHECK(c->restart_policy == RESTART_ALWAYS && c->restart_delay_usec == 250 * USEC_PER_MSEC &&
		      c->restart_max_delay_usec == 3600 * USEC_PER_SEC,
	      "full: restart");
	CHECK_STREQ(c->control_socket, "/run/app/baton.sock", "full: control.socket");
	CHECK_STREQ(c->notify_socket, "/run/app/notify.sock", "full: notify.socket");
	CHECK(c->program_watchdog_usec == 20 * USEC_PER_SEC && c->program_fd_store, "full: program watchdog, fd-store");
	CHECK(c->fd_store == FD_STORE_YES, "full: systemd.fd-store");
}

static bool strv_equal(char **a, char **b) {
	if (strv_length(a) != strv_length(b) || !a != !b)
		return false;
	for (size_t i = 0; a && a[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool str_equal(const char *a, const char *b) {
	return (!a && !b) || streq(a, b);
}

static bool config_equal(const struct config *a, const struct config *b) {
	if (a->n_listeners != b->n_listeners)
		return false;
	for (size_t i = 0; i < a->n_listeners; i++) {
		const struct listener_config *x = &a->listeners[i], *y = &b->listeners[i];
		if (!streq(x->name, y->name) || !addr_equal(&x->address, &y->address) || x->backlog != y->backlog ||
		    x->reuse_port != y->reuse_port || x->reuse_address != y->reuse_address ||
		    x->ipv6_only != y->ipv6_only || x->freebind != y->freebind || x->transparent != y->transparent ||
		    x->keepalive != y->keepalive || x->nodelay != y->nodelay ||
		    x->defer_accept_usec != y->defer_accept_usec || x->fastopen != y->fastopen ||
		    x->receive_buffer != y->receive_buffer || x->send_buffer != y->send_buffer || x->mode != y->mode ||
		    !str_equal(x->owner, y->owner) || !str_equal(x->group, y->group) || x->inherit != y->inherit)
			return false;
	}
	return strv_equal(a->command, b->command) && strv_equal(a->environment, b->environment) &&
	       str_equal(a->working_directory, b->working_directory) && str_equal(a->user, b->user) &&
	       str_equal(a->group, b->group) && a->readiness_type == b->readiness_type &&
	       a->readiness_timeout_usec == b->readiness_timeout_usec && a->reload_strategy == b->reload_strategy &&
	       a->reload_signal == b->reload_signal && a->reload_confirm_usec == b->reload_confirm_usec &&
	       strv_equal(a->confirm_command, b->confirm_command) && a->stop_signal == b->stop_signal &&
	       a->stop_timeout_usec == b->stop_timeout_usec && a->restart_policy == b->restart_policy &&
	       a->restart_delay_usec == b->restart_delay_usec &&
	       a->restart_max_delay_usec == b->restart_max_delay_usec &&
	       str_equal(a->control_socket, b->control_socket) && str_equal(a->notify_socket, b->notify_socket) &&
	       a->program_watchdog_usec == b->program_watchdog_usec && a->program_fd_store == b->program_fd_store &&
	       a->fd_store == b->fd_store && str_equal(a->stdin_listener, b->stdin_listener) &&
	       a->stdin_mode == b->stdin_mode && a->preload == b->preload &&
	       a->compat_server_starter == b->compat_server_starter && a->compat_einhorn == b->compat_einhorn &&
	       strv_equal(a->readiness_command, b->readiness_command) &&
	       a->readiness_interval_usec == b->readiness_interval_usec &&
	       str_equal(a->readiness_pattern, b->readiness_pattern) && a->readiness_stream == b->readiness_stream &&
	       str_equal(a->readiness_pid_file, b->readiness_pid_file) &&
	       a->readiness_delay_usec == b->readiness_delay_usec && a->stop_drain_usec == b->stop_drain_usec;
}

/* Prints c, loads the print back and checks both are equal; returns the printed text. */
static char *round_trip(const struct config *c, const char *what) {
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_print(c, f);
	fclose(f);

	struct config *back = load_ok(text, what);
	CHECK(back && config_equal(c, back), "round trip equal: %s", what);
	if (!back || !config_equal(c, back))
		printf("# printed:\n%s", text);
	config_free(back);
	return text;
}

static void test_full_and_round_trip(void) {
	struct config *c = load_ok(full_config, "every key");
	if (!c)
		return;
	test_full(c);
	char *text = round_trip(c, "every key");
	CHECK(strstr(text, "    mode: \"0660\"\n") != NULL, "print: mode quoted in octal");
	CHECK(strstr(text, "    defer-accept: 5s\n") != NULL, "print: duration");
	CHECK(strstr(text, "  signal: SIGQUIT\n") != NULL, "print: signal by name");
	CHECK(strstr(text, "    address: \"tcp6://[::1]:8443\"\n") != NULL, "print: normalized address");
	CHECK(strstr(text, "\"it's \\\"quoted\\\"\", \"tab\\there\"") != NULL, "print: quoting");
	CHECK(strstr(text, "    ipv6-only: true\n") != NULL, "print: ipv6-only when set");
	config_free(c);
	free(text);

	c = load_ok(TCP_LISTENER, "defaults");
	if (!c)
		return;
	text = round_trip(c, "defaults");
	CHECK(strstr(text, "ipv6-only") == NULL, "print: ipv6-only omitted when unset");
	CHECK(strstr(text, "    backlog: ") && strstr(text, "  timeout: 1m\n") && strstr(text, "  delay: 100ms\n") &&
		      strstr(text, "  signal: SIGHUP\n"),
	      "print: defaults written out");
	CHECK(strstr(text, "# control.socket: /") != NULL, "print: derived control socket as a comment");
	free(text);
	config_free(c);

	/* A command-line config prints and loads back too. */
	CHECK(config_new_default(&c) == 0, "new default");
	char *listens[] = {"a=unix:@x", "b=udp6://[fe80::1%lo]:53", NULL}, *cmd[] = {"/bin/echo", "a\nb", NULL};
	char *error = NULL;
	CHECK(config_apply_cli(c, listens, cmd, &error) == 0, "apply cli");
	free(error);
	text = round_trip(c, "command-line config");
	free(text);
	config_free(c);
}

static void test_cli(void) {
	struct config *c;
	char *error = NULL;

	config_new_default(&c);
	char *listens[] = {"http=tcp://:8080", "sock=unix:/run/a.sock", NULL}, *cmd[] = {"/bin/app", "-v", NULL};
	CHECK(config_apply_cli(c, listens, cmd, &error) == 0, "cli: listeners and command");
	CHECK(c->n_listeners == 2 && streq(c->listeners[1].name, "sock") &&
		      c->listeners[1].address.kind == ADDR_UNIX_STREAM && c->listeners[0].backlog == SOMAXCONN &&
		      c->listeners[0].reuse_address,
	      "cli: listeners with defaults");
	CHECK(strv_length(c->command) == 2 && streq(c->command[1], "-v"), "cli: command copied");
	config_free(c);

	struct {
		char *listen;
		const char *want;
	} bad[] = {
		{"http", "--listen 'http': expected NAME=ADDRESS"},
		{"a:b=tcp://:80",
		 "--listen 'a:b=tcp://:80': invalid name 'a:b' (1-255 characters of A-Z a-z 0-9 . _ -)"},
		{"=tcp://:80", "--listen '=tcp://:80': invalid name '' (1-255 characters of A-Z a-z 0-9 . _ -)"},
		{"a=tcp://:0", "--listen 'a=tcp://:0': port out of range 1-65535: 'tcp://:0'"},
		{"a=", "--listen 'a=': empty address: ''"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		config_new_default(&c);
		char *l[] = {"ok=tcp://:1", bad[i].listen, NULL};
		CHECK(config_apply_cli(c, l, cmd, &error) == -EINVAL, "cli: rejects %s", bad[i].listen);
		CHECK_STREQ(error, bad[i].want, "cli: message for %s", bad[i].listen);
		CHECK(c->n_listeners == 0 && c->command == NULL, "cli: config unchanged after %s", bad[i].listen);
		free(error);
		error = NULL;
		config_free(c);
	}

	config_new_default(&c);
	char *dup_name[] = {"a=tcp://:80", "a=tcp://:81", NULL}, *dup_addr[] = {"a=tcp://:80", "b=tcp://:80", NULL};
	CHECK(config_apply_cli(c, dup_name, cmd, &error) == -EINVAL, "cli: duplicate name");
	CHECK_STREQ(error, "--listen 'a=tcp://:81': duplicate listener name 'a'", "cli: duplicate name message");
	free(error);
	CHECK(config_apply_cli(c, dup_addr, cmd, &error) == -EINVAL, "cli: duplicate address");
	CHECK_STREQ(error, "--listen 'b=tcp://:80': duplicate address 'tcp://:80' (also listener 'a')",
		    "cli: duplicate address message");
	free(error);
	char *bad_only[] = {"bad", NULL};
	CHECK(config_apply_cli(c, bad_only, NULL, &error) == -EINVAL, "cli: bad --listen and no command");
	CHECK_STREQ(error, "--listen 'bad': expected NAME=ADDRESS", "cli: the --listen error comes first");
	free(error);
	CHECK(config_apply_cli(c, NULL, NULL, &error) == -EINVAL, "cli: no command");
	CHECK_STREQ(error, "no program: give a command after --", "cli: no command message");
	free(error);
	char *empty[] = {"", NULL};
	CHECK(config_apply_cli(c, NULL, empty, &error) == -EINVAL, "cli: empty command");
	CHECK_STREQ(error, "empty command after --", "cli: empty command message");
	free(error);
	CHECK(c->n_listeners == 0 && c->command == NULL, "cli: config unchanged after errors");
	config_free(c);

	/* With a file: the file's listeners and command exclude the command line's. */
	c = load_ok(TCP_LISTENER, "file with listeners, no command");
	if (!c)
		return;
	char *more[] = {"x=tcp://:9", NULL};
	CHECK(config_apply_cli(c, more, cmd, &error) == -EINVAL, "cli: --listen with file listeners");
	char *want = NULL;
	if (asprintf(&want, "--listen 'x=tcp://:9': %s has listeners already: give them in one place", c->path) < 0)
		exit(EXIT_FAILURE);
	CHECK_STREQ(error, want, "cli: --listen with file listeners message");
	free(want);
	free(error);
	CHECK(config_apply_cli(c, NULL, NULL, &error) == -EINVAL, "cli: file without command, none given");
	if (asprintf(&want, "no program: give program.command in %s or a command after --", c->path) < 0)
		exit(EXIT_FAILURE);
	CHECK_STREQ(error, want, "cli: no program message names the file");
	free(want);
	free(error);
	CHECK(config_apply_cli(c, NULL, cmd, &error) == 0, "cli: command for a file without one");
	CHECK(strv_length(c->command) == 2, "cli: command taken");
	CHECK(config_apply_cli(c, NULL, cmd, &error) == -EINVAL, "cli: command when the file has one");
	if (asprintf(&want, "a command after --: %s has program.command already: give it in one place", c->path) < 0)
		exit(EXIT_FAILURE);
	CHECK_STREQ(error, want, "cli: command twice message");
	free(want);
	free(error);
	CHECK(config_apply_cli(c, NULL, NULL, &error) == 0, "cli: nothing more needed");
	config_free(c);

	c = load_ok("program:\n  command: [/bin/app]\n", "file with a command, no listeners");
	if (!c)
		return;
	CHECK(config_apply_cli(c, more, NULL, &error) == 0, "cli: --listen for a file without listeners");
	CHECK(c->n_listeners == 1 && streq(c->listeners[0].name, "x"), "cli: listener added");
	config_free(c);

	/* {fd:NAME} must name a listener of the merged config: a typo is a config error, not a failed start. */
	error = NULL;
	c = load_ok("listeners:\n  - name: web\n    address: tcp://:80\n"
		    "program:\n  command: [/bin/app, --fd, \"{fd:web}\", \"--x={fd:web},{fd:web}\"]\n",
		    "placeholders naming listeners");
	if (!c)
		return;
	CHECK(config_apply_cli(c, NULL, NULL, &error) == 0, "cli: placeholders that name listeners are accepted");
	config_free(c);
	c = load_ok(
		"listeners:\n  - name: web\n    address: tcp://:80\nprogram:\n  command: [/bin/app, \"{fd:wbe}\"]\n",
		"placeholder with a typo");
	if (!c)
		return;
	free(error);
	error = NULL;
	CHECK(config_apply_cli(c, NULL, NULL, &error) == -EINVAL && error &&
		      strstr(error, ": key 'program.command[1]': {fd:wbe} names no listener: '{fd:wbe}'"),
	      "cli: placeholder naming no listener: %s", strempty(error));
	config_free(c);
	c = load_ok("listeners:\n  - name: web\n    address: tcp://:80\nprogram:\n  command: [/bin/app, \"{fd:web\"]\n",
		    "unterminated placeholder");
	if (!c)
		return;
	free(error);
	error = NULL;
	CHECK(config_apply_cli(c, NULL, NULL, &error) == -EINVAL && error && strstr(error, "without a closing '}'"),
	      "cli: unterminated placeholder: %s", strempty(error));
	config_free(c);
	/* A listener added with --listen counts. */
	c = load_ok("program:\n  command: [/bin/app, \"{fd:x}\"]\n", "placeholder for a --listen listener");
	if (!c)
		return;
	CHECK(config_apply_cli(c, more, NULL, &error) == 0, "cli: placeholder names a --listen listener");
	config_free(c);
	free(error);
}

static void test_peek_control_socket(void) {
	char *p = NULL;
	/* Invalid as a config (bad timeout), but YAML: the socket is still found, so `baton reload -c` reaches baton
	 * and gets the validation error from it. */
	const char *f = write_tmp("readiness:\n  timeout: 0\ncontrol:\n  socket: /run/x/ctl.sock\n");
	CHECK(config_peek_control_socket(f, &p) == 0 && streq(p, "/run/x/ctl.sock"),
	      "peek: found in an invalid config");
	free(p);
	p = NULL;
	f = write_tmp("control:\n  socket: \"\"\n");
	CHECK(config_peek_control_socket(f, &p) == 0 && streq(p, ""), "peek: disabled");
	free(p);
	f = write_tmp("listeners: []\n");
	CHECK(config_peek_control_socket(f, &p) == -ENOENT, "peek: absent");
	f = write_tmp("control: [\n");
	CHECK(config_peek_control_socket(f, &p) == -ENOENT, "peek: not YAML");
	CHECK(config_peek_control_socket("/nonexistent/baton.yaml", &p) == -ENOENT, "peek: no file");
}

static void test_control_socket(void) {
	struct config *c;
	char *p = NULL, *q = NULL;

	config_new_default(&c);
	CHECK(config_control_socket(c, &p) == 0 && p == NULL, "control: none without file or setting");
	free(c->control_socket);
	c->control_socket = strdup("");
	CHECK(config_control_socket(c, &p) == 0 && p == NULL, "control: \"\" disables");
	free(c->control_socket);
	c->control_socket = strdup("/run/x.sock");
	CHECK(config_control_socket(c, &p) == 0 && streq(p, "/run/x.sock"), "control: as written");
	free(p);
	config_free(c);

	c = load_ok(TCP_LISTENER, "for the derived control socket");
	if (!c)
		return;
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	CHECK(config_control_socket(c, &p) == 0 && p, "control: derived");
	CHECK(config_control_socket(c, &q) == 0 && streq(p, q), "control: deterministic");
	const char *base = strrchr(c->path, '/') + 1;
	char *stem = strndup(base, strlen(base) - strlen(".yaml")), *prefix = NULL;
	if (asprintf(&prefix, "%s/%s-", geteuid() == 0 ? "/run/baton" : "/run/user/1000/baton", stem) < 0)
		exit(EXIT_FAILURE);
	CHECK(p && !strncmp(p, prefix, strlen(prefix)) && strlen(p) == strlen(prefix) + 8 + strlen(".sock") &&
		      !strcmp(p + strlen(p) - 5, ".sock"),
	      "control: DIR/NAME-HASH.sock");
	if (p)
		printf("#   %s\n", p);
	free(q);
	q = NULL;

	/* Another spelling of the same file gives the same path. */
	char *other = NULL;
	if (asprintf(&other, "/tmp/../tmp/%s", base) < 0)
		exit(EXIT_FAILURE);
	free(c->path);
	c->path = other;
	CHECK(config_control_socket(c, &q) == 0 && streq(p, q), "control: same file, other spelling");
	free(p);
	free(q);
	free(stem);
	free(prefix);
	config_free(c);
}

/* ---- readiness types, program.stdin/preload/compat, stop.drain ---- */

/* Loads text, checks the print holds every line of want (one string of whole lines) and loads back equal. */
static struct config *load_print(const char *text, const char *want, const char *what) {
	struct config *c = load_ok(text, what);
	if (!c)
		return NULL;
	char *printed = round_trip(c, what);
	CHECK(printed && strstr(printed, want) != NULL, "print: %s", what);
	if (printed && !strstr(printed, want))
		printf("#   want:\n%s#   printed:\n%s", want, printed);
	free(printed);
	return c;
}

static void test_readiness_types(void) {
	struct config *c;

	c = load_print(
		"readiness:\n  type: exec\n  command: [/bin/sh, -c, \"test -e '/run/a b'\"]\n",
		"readiness:\n  type: exec\n  timeout: 1m\n  command: [\"/bin/sh\", \"-c\", \"test -e '/run/a b'\"]\n"
		"  interval: 250ms\nreload:\n",
		"exec with the default interval");
	if (c) {
		CHECK(c->readiness_type == READINESS_EXEC && strv_length(c->readiness_command) == 3 &&
			      streq(c->readiness_command[2], "test -e '/run/a b'"),
		      "exec: command");
		CHECK(c->readiness_interval_usec == 250 * USEC_PER_MSEC, "exec: default interval 250ms");
		config_free(c);
	}
	c = load_print("readiness:\n  type: exec\n  timeout: 5s\n  command:\n    - /usr/bin/probe\n  interval: 2s\n",
		       "  type: exec\n  timeout: 5s\n  command: [\"/usr/bin/probe\"]\n  interval: 2s\n",
		       "exec with an interval, block list");
	if (c) {
		CHECK(c->readiness_interval_usec == 2 * USEC_PER_SEC && c->readiness_timeout_usec == 5 * USEC_PER_SEC,
		      "exec: interval and timeout");
		config_free(c);
	}

	c = load_print("readiness:\n  type: log\n  pattern: \"^listening on [0-9]+ \\\"x\\\"$\"\n",
		       "  type: log\n  timeout: 1m\n  pattern: \"^listening on [0-9]+ \\\"x\\\"$\"\n  stream: both\n",
		       "log, default stream, quotes in the pattern");
	if (c) {
		CHECK(c->readiness_type == READINESS_LOG &&
			      streq(c->readiness_pattern, "^listening on [0-9]+ \"x\"$") &&
			      c->readiness_stream == STREAM_BOTH,
		      "log: pattern as written, stream both");
		CHECK(regexec(&c->readiness_regex, "listening on 8080 \"x\"", 0, NULL, 0) == 0 &&
			      regexec(&c->readiness_regex, "now listening on 8080 \"x\"", 0, NULL, 0) != 0,
		      "log: the compiled pattern is extended and anchored");
		config_free(c);
	}
	c = load_print("readiness:\n  type: log\n  pattern: '^a\\.b\\s+\"c\"\\t$'\n",
		       "  pattern: \"^a\\\\.b\\\\s+\\\"c\\\"\\\\t$\"\n", "log, backslashes in the pattern");
	if (c) {
		CHECK_STREQ(c->readiness_pattern, "^a\\.b\\s+\"c\"\\t$", "log: backslashes kept as written");
		config_free(c);
	}
	static const char *const streams[] = {"both", "stdout", "stderr"};
	for (size_t i = 0; i < ARRAY_SIZE(streams); i++) {
		char yaml[128], want[64];
		snprintf(yaml, sizeof(yaml), "readiness:\n  type: log\n  pattern: ready\n  stream: %s\n", streams[i]);
		snprintf(want, sizeof(want), "  pattern: \"ready\"\n  stream: %s\n", streams[i]);
		c = load_print(yaml, want, streams[i]);
		if (c) {
			CHECK(c->readiness_stream == (enum output_stream)i, "log: stream %s", streams[i]);
			CHECK_STREQ(output_stream_to_string(c->readiness_stream), streams[i], "stream name %s",
				    streams[i]);
			config_free(c);
		}
	}
	CHECK(output_stream_to_string(_STREAM_MAX) == NULL, "no name past the last stream");

	c = load_print("readiness:\n  type: pidfile\n  pid-file: /run/app/app.pid\n",
		       "  type: pidfile\n  timeout: 1m\n  interval: 250ms\n  pid-file: \"/run/app/app.pid\"\nreload:\n",
		       "pidfile");
	if (c) {
		CHECK(c->readiness_type == READINESS_PIDFILE && streq(c->readiness_pid_file, "/run/app/app.pid"),
		      "pidfile: path");
		config_free(c);
	}
	c = load_print("readiness:\n  pid-file: /run/a.pid\n  interval: 100ms\n  type: pidfile\n",
		       "  interval: 100ms\n  pid-file: \"/run/a.pid\"\n", "pidfile with an interval, type last");
	if (c) {
		CHECK(c->readiness_interval_usec == 100 * USEC_PER_MSEC, "pidfile: interval");
		config_free(c);
	}

	c = load_print("readiness:\n  type: delay\n  delay: 1500ms\n",
		       "  type: delay\n  timeout: 1m\n  delay: 1500ms\nreload:\n", "delay");
	if (c) {
		CHECK(c->readiness_type == READINESS_DELAY && c->readiness_delay_usec == 1500 * USEC_PER_MSEC,
		      "delay: 1500ms");
		config_free(c);
	}
	c = load_print("readiness:\n  type: delay\n  delay: 0s\n", "  type: delay\n  timeout: 1m\n  delay: 0s\n",
		       "delay 0s");
	config_free(c);

	c = load_print("readiness:\n  type: none\n  timeout: 3s\n",
		       "readiness:\n  type: none\n  timeout: 3s\nreload:\n", "none");
	if (c) {
		CHECK(c->readiness_type == READINESS_NONE, "none");
		config_free(c);
	}
	/* notify prints none of the other types' keys. */
	c = load_print("readiness:\n  type: notify\n", "readiness:\n  type: notify\n  timeout: 1m\nreload:\n",
		       "notify");
	config_free(c);

	static const char *const names[] = {"notify", "exec", "log", "pidfile", "delay", "none"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		CHECK_STREQ(readiness_type_to_string((enum readiness_type)i), names[i], "readiness type name %zu", i);
	CHECK(readiness_type_to_string(_READINESS_MAX) == NULL, "no name past the last readiness type");
}

static void test_readiness_errors(void) {
	/* A key of another type. */
	static const struct {
		const char *yaml, *want;
	} other[] = {
		{"readiness:\n  command: [a]\n",
		 "key 'readiness.command': not used with readiness.type notify (line 2)"},
		{"readiness:\n  type: notify\n  delay: 1s\n",
		 "key 'readiness.delay': not used with readiness.type notify (line 3)"},
		{"readiness:\n  pid-file: x\n",
		 "key 'readiness.pid-file': not used with readiness.type notify (line 2)"},
		{"readiness:\n  type: exec\n  command: [a]\n  pattern: x\n",
		 "key 'readiness.pattern': not used with readiness.type exec (line 4)"},
		{"readiness:\n  type: exec\n  command: [a]\n  pid-file: /x\n",
		 "key 'readiness.pid-file': not used with readiness.type exec (line 4)"},
		{"readiness:\n  type: exec\n  command: [a]\n  stream: stdout\n",
		 "key 'readiness.stream': not used with readiness.type exec (line 4)"},
		{"readiness:\n  type: log\n  pattern: x\n  interval: 1s\n",
		 "key 'readiness.interval': not used with readiness.type log (line 4)"},
		{"readiness:\n  type: log\n  pattern: x\n  command: [a]\n",
		 "key 'readiness.command': not used with readiness.type log (line 4)"},
		{"readiness:\n  type: pidfile\n  pid-file: /x\n  delay: 1s\n",
		 "key 'readiness.delay': not used with readiness.type pidfile (line 4)"},
		{"readiness:\n  type: pidfile\n  pid-file: /x\n  pattern: x\n",
		 "key 'readiness.pattern': not used with readiness.type pidfile (line 4)"},
		{"readiness:\n  type: delay\n  delay: 1s\n  stream: both\n",
		 "key 'readiness.stream': not used with readiness.type delay (line 4)"},
		{"readiness:\n  type: delay\n  delay: 1s\n  interval: 1s\n",
		 "key 'readiness.interval': not used with readiness.type delay (line 4)"},
		{"readiness:\n  type: none\n  delay: 1s\n",
		 "key 'readiness.delay': not used with readiness.type none (line 3)"},
		{"readiness:\n  type: none\n  interval: 1s\n",
		 "key 'readiness.interval': not used with readiness.type none (line 3)"},
		/* A required key missing. */
		{"readiness:\n  type: exec\n",
		 "key 'readiness.type': readiness.type exec needs readiness.command (line 2)"},
		{"readiness:\n  type: exec\n  interval: 1s\n",
		 "key 'readiness.type': readiness.type exec needs readiness.command (line 2)"},
		{"readiness:\n  type: log\n  stream: stdout\n",
		 "key 'readiness.type': readiness.type log needs readiness.pattern (line 2)"},
		{"readiness:\n  type: pidfile\n",
		 "key 'readiness.type': readiness.type pidfile needs readiness.pid-file (line 2)"},
		{"readiness:\n  type: delay\n",
		 "key 'readiness.type': readiness.type delay needs readiness.delay (line 2)"},
		/* Bad values. */
		{"readiness:\n  type: log\n  pattern: \"a(\"\n",
		 "key 'readiness.pattern': invalid regular expression: Unmatched ( or \\(: 'a(' (line 3)"},
		{"readiness:\n  type: log\n  pattern: \"[z-a]\"\n",
		 "key 'readiness.pattern': invalid regular expression: Invalid range end: '[z-a]' (line 3)"},
		{"readiness:\n  type: log\n  pattern: \"\"\n",
		 "key 'readiness.pattern': must not be empty: '' (line 3)"},
		{"readiness:\n  type: log\n  pattern: x\n  stream: stdrr\n",
		 "key 'readiness.stream': expected both, stdout or stderr: 'stdrr' (line 4)"},
		{"readiness:\n  type: pidfile\n  pid-file: run/app.pid\n",
		 "key 'readiness.pid-file': must be an absolute path: 'run/app.pid' (line 3)"},
		{"readiness:\n  type: pidfile\n  pid-file: \"\"\n",
		 "key 'readiness.pid-file': must be an absolute path: '' (line 3)"},
		{"readiness:\n  type: exec\n  command: []\n", "key 'readiness.command': empty command (line 3)"},
		{"readiness:\n  type: exec\n  command: /bin/probe\n",
		 "key 'readiness.command': expected a list, got a scalar: '/bin/probe' (line 3)"},
		{"readiness:\n  type: exec\n  command: [\"\", a]\n",
		 "key 'readiness.command[0]': empty program name: '' (line 3)"},
		{"readiness:\n  type: exec\n  command:\n    - a\n    - \"\"\n",
		 "key 'readiness.command[1]': empty argument: '' (line 5)"},
		{"readiness:\n  type: exec\n  command: [a]\n  interval: 0s\n",
		 "key 'readiness.interval': must be longer than 0s: '0s' (line 4)"},
		{"readiness:\n  type: exec\n  command: [a]\n  interval: 250\n",
		 "key 'readiness.interval': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '250' "
		 "(line 4)"},
		{"readiness:\n  type: delay\n  delay: 5\n", "key 'readiness.delay': expected a duration with its unit, "
							    "such as 250ms, 30s, 5m or 1h: '5' (line 3)"},
		{"readiness:\n  type: Exec\n  command: [a]\n",
		 "key 'readiness.type': expected notify, exec, log, pidfile, delay or none: 'Exec' (line 2)"},
		{"readiness:\n  type: exec\n  comand: [a]\n", "key 'readiness.comand': unknown key (expected one of: "
							      "type, timeout, command, interval, pattern, stream, "
							      "pid-file, delay) (line 3)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(other); i++)
		load_fails(other[i].yaml, other[i].want, other[i].want);
}

static void test_program_new_keys(void) {
	struct config *c = load_print(TCP_LISTENER "  - name: sock\n    address: unix:/run/app.sock\n"
						   "program:\n  command: [/bin/app]\n  stdin: web\n  preload: true\n"
						   "  compat: [einhorn, server-starter]\nstop:\n  drain: 5s\n",
				      "  stdin: \"web\"\n  preload: true\n  compat: [server-starter, einhorn]\n",
				      "every new program key");
	if (c) {
		CHECK_STREQ(c->stdin_listener, "web", "program.stdin");
		CHECK(c->stdin_mode == STDIN_LISTENER, "program.stdin: a listener");
		CHECK(c->preload && c->compat_server_starter && c->compat_einhorn, "preload, both compat entries");
		CHECK(c->stop_drain_usec == 5 * USEC_PER_SEC, "stop.drain 5s");
		char *error = NULL;
		CHECK(config_apply_cli(c, NULL, NULL, &error) == 0, "cli check passes: %s", strempty(error));
		free(error);
		char *text = round_trip(c, "drain printed");
		CHECK(text && strstr(text, "  timeout: 30s\n  drain: 5s\nrestart:\n"),
		      "print: stop.drain after stop.timeout");
		free(text);
		config_free(c);
	}
	c = load_print("program:\n  compat: [server-starter]\n",
		       "  preload: false\n  compat: [server-starter]\n  cgroup: auto\nreadiness:\n",
		       "compat server-starter alone");
	if (c) {
		CHECK(c->compat_server_starter && !c->compat_einhorn, "server-starter only");
		config_free(c);
	}
	c = load_print("program:\n  compat: [einhorn]\n", "  compat: [einhorn]\n", "compat einhorn alone");
	if (c) {
		CHECK(!c->compat_server_starter && c->compat_einhorn, "einhorn only");
		config_free(c);
	}
	c = load_print("program:\n  compat: []\n  preload: false\n", "  preload: false\n  compat: []\n",
		       "empty compat");
	if (c) {
		CHECK(!c->compat_server_starter && !c->compat_einhorn && !c->preload, "empty compat, preload false");
		char *text = round_trip(c, "no drain without preload");
		CHECK(text && !strstr(text, "drain"), "print: no stop.drain without preload");
		CHECK(text && strstr(text, "\n  stdin: inherit\n"), "print: program.stdin inherit when unset");
		free(text);
		config_free(c);
	}
	/* program.stdin: inherit and /dev/null are words of their own, and print back as themselves. */
	c = load_print("program:\n  stdin: inherit\n", "  stdin: inherit\n", "stdin inherit");
	if (c) {
		CHECK(c->stdin_mode == STDIN_INHERIT && !c->stdin_listener, "stdin inherit");
		free(round_trip(c, "stdin inherit"));
		config_free(c);
	}
	c = load_print("program:\n  stdin: /dev/null\n", "  stdin: \"/dev/null\"\n", "stdin /dev/null");
	if (c) {
		CHECK(c->stdin_mode == STDIN_NULL && !c->stdin_listener, "stdin /dev/null");
		free(round_trip(c, "stdin /dev/null"));
		config_free(c);
	}
	/* A listener named inherit cannot be the standard input: the word means inherit. */
	c = load_ok("listeners:\n  - {name: inherit, address: \"tcp://:8080\"}\nprogram:\n  stdin: \"inherit\"\n",
		    "stdin inherit beside a listener named inherit");
	if (c) {
		CHECK(c->stdin_mode == STDIN_INHERIT && !c->stdin_listener, "stdin \"inherit\" is inherit");
		config_free(c);
	}
	CHECK(streq(stdin_mode_to_string(STDIN_NULL), "/dev/null") && !stdin_mode_to_string(_STDIN_MAX),
	      "stdin_mode_to_string");
	/* stop: before program: in the file; drain 0s needs no preload. */
	c = load_ok("stop:\n  drain: 1s\nprogram:\n  preload: true\n", "drain before preload in the file");
	config_free(c);
	c = load_ok("stop:\n  drain: 0s\n", "drain 0s without preload");
	if (c) {
		CHECK(c->stop_drain_usec == 0 && !c->preload, "drain 0s");
		config_free(c);
	}

	/* program.cgroup: an enum like the others. */
	for (int i = 0; i < 3; i++) {
		const char *names[] = {"auto", "required", "never"};
		char in[64], out[64];
		snprintf(in, sizeof(in), "program:\n  cgroup: %s\n", names[i]);
		snprintf(out, sizeof(out), "  cgroup: %s\n", names[i]);
		c = load_print(in, out, "program.cgroup");
		if (c) {
			CHECK(c->cgroup_mode == (enum cgroup_mode)i, "program.cgroup %s", names[i]);
			config_free(c);
		}
	}
	load_fails("program:\n  cgroup: always\n",
		   "key 'program.cgroup': expected auto, required or never: 'always' (line 2)", "unknown cgroup mode");
	load_fails("program:\n  compat: [einhorn, einhorn]\n",
		   "key 'program.compat[1]': duplicate entry: 'einhorn' (line 2)", "duplicate einhorn");
	load_fails("program:\n  compat:\n    - server-starter\n    - einhorn\n    - server-starter\n",
		   "key 'program.compat[2]': duplicate entry: 'server-starter' (line 5)", "duplicate server-starter");
	load_fails("program:\n  compat: [einhorn, starter]\n",
		   "key 'program.compat[1]': expected server-starter or einhorn: 'starter' (line 2)", "unknown compat");
	load_fails("program:\n  compat: [\"\"]\n",
		   "key 'program.compat[0]': expected server-starter or einhorn: '' (line 2)", "empty compat entry");
	load_fails("program:\n  compat: einhorn\n",
		   "key 'program.compat': expected a list, got a scalar: 'einhorn' (line 2)", "compat not a list");
	load_fails("program:\n  stdin: \"a b\"\n",
		   "key 'program.stdin': expected inherit, /dev/null or a listener name: 'a b' (line 2)",
		   "stdin not a name");
	load_fails("program:\n  stdin: \"\"\n",
		   "key 'program.stdin': expected inherit, /dev/null or a listener name: '' (line 2)", "empty stdin");
	load_fails("program:\n  stdin: /dev/zero\n",
		   "key 'program.stdin': expected inherit, /dev/null or a listener name: '/dev/zero' (line 2)",
		   "stdin another file");
	load_fails("program:\n  preload: yes\n", "key 'program.preload': expected true or false: 'yes' (line 2)",
		   "preload not a boolean");
	load_fails("stop:\n  drain: 5s\n",
		   "key 'stop.drain': needs program.preload: true (the shim stops the old generation accepting): '5s' "
		   "(line 2)",
		   "drain without preload");
	load_fails("program:\n  preload: false\nstop:\n  drain: 5s\n",
		   "key 'stop.drain': needs program.preload: true (the shim stops the old generation accepting): '5s' "
		   "(line 4)",
		   "drain with preload false");
	load_fails("program:\n  preload: true\nstop:\n  drain: 5\n",
		   "key 'stop.drain': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '5' (line 4)",
		   "drain without a unit");
	load_fails("stop:\n  drian: 5s\n",
		   "key 'stop.drian': unknown key (expected one of: signal, timeout, drain) (line 2)",
		   "unknown stop key");
}

/* Applies the command line (listens, command) to the config in text and checks the error is PATH + ": " + want. */
static void cli_fails(const char *text, char **listens, char **command, const char *want, const char *what) {
	struct config *c = load_ok(text, what);
	if (!c)
		return;
	char *error = NULL, *full = NULL;
	CHECK(config_apply_cli(c, listens, command, &error) == -EINVAL, "cli rejects: %s", what);
	if (asprintf(&full, "%s: %s", c->path, want) < 0)
		exit(EXIT_FAILURE);
	CHECK_STREQ(error, full, "cli message: %s", what);
	free(full);
	free(error);
	config_free(c);
}

static void cli_ok(const char *text, char **listens, char **command, const char *what) {
	struct config *c = load_ok(text, what);
	if (!c)
		return;
	char *error = NULL;
	CHECK(config_apply_cli(c, listens, command, &error) == 0, "cli accepts: %s (%s)", what, strempty(error));
	free(error);
	config_free(c);
}

static void test_listener_refs(void) {
	char *cmd[] = {"/bin/app", NULL};
	char *web[] = {"web=tcp://127.0.0.1:8080", NULL}, *udp[] = {"dns=udp://:53", NULL};
	char *abstract[] = {"a=unix:@app", NULL}, *seqpacket[] = {"s=unix-seqpacket:/run/s.sock", NULL};

	cli_fails(TCP_LISTENER "program:\n  command: [/bin/app]\n  stdin: wbe\n", NULL, NULL,
		  "key 'program.stdin': names no listener: 'wbe'", "stdin naming no listener");
	cli_fails("program:\n  stdin: web\n", NULL, cmd, "key 'program.stdin': names no listener: 'web'",
		  "stdin without listeners");
	cli_fails("program:\n  stdin: web\n", udp, cmd, "key 'program.stdin': names no listener: 'web'",
		  "stdin naming no --listen listener");
	cli_ok("program:\n  stdin: web\n", web, cmd, "stdin naming a --listen listener");
	cli_ok(TCP_LISTENER "program:\n  stdin: web\n", NULL, cmd, "stdin naming a file listener");

	cli_fails("program:\n  command: [/bin/app]\n  preload: true\n", NULL, NULL,
		  "key 'program.preload': there are no listeners for the shim to hand out",
		  "preload without listeners");
	cli_ok("program:\n  preload: true\n", web, cmd, "preload with a --listen listener");
	cli_ok(UDP_LISTENER "program:\n  preload: true\n", NULL, cmd, "preload with a udp listener");

	cli_fails(UDP_LISTENER "program:\n  compat: [server-starter]\n", NULL, cmd,
		  "key 'program.compat': listener 'dns' (udp://:5353) cannot be written in SERVER_STARTER_PORT, which "
		  "has "
		  "only TCP ports and unix stream socket paths",
		  "server-starter with a udp listener");
	cli_fails(
		"program:\n  compat: [einhorn, server-starter]\n", udp, cmd,
		"key 'program.compat': listener 'dns' (udp://:53) cannot be written in SERVER_STARTER_PORT, which has "
		"only TCP ports and unix stream socket paths",
		"server-starter with a --listen udp listener");
	cli_fails("program:\n  compat: [server-starter]\n", abstract, cmd,
		  "key 'program.compat': listener 'a' (unix:@app) cannot be written in SERVER_STARTER_PORT, which has "
		  "only TCP ports and unix stream socket paths",
		  "server-starter with an abstract unix socket");
	cli_fails("program:\n  compat: [server-starter]\n", seqpacket, cmd,
		  "key 'program.compat': listener 's' (unix-seqpacket:/run/s.sock) cannot be written in "
		  "SERVER_STARTER_PORT, which has only TCP ports and unix stream socket paths",
		  "server-starter with a seqpacket socket");
	cli_ok(TCP_LISTENER "  - name: sock\n    address: unix:/run/app.sock\n"
			    "program:\n  compat: [server-starter]\n",
	       NULL, cmd, "server-starter with tcp and unix path listeners");
	cli_ok(UDP_LISTENER "program:\n  compat: [einhorn]\n", NULL, cmd, "einhorn with a udp listener");
	cli_ok("program:\n  compat: [server-starter, einhorn]\n", NULL, cmd, "compat without listeners");

	/* A command-line-only config: the key is named without a file. */
	struct config *c;
	char *error = NULL;
	config_new_default(&c);
	c->stdin_listener = strdup("x");
	CHECK(config_apply_cli(c, web, cmd, &error) == -EINVAL, "cli: stdin with no file");
	CHECK_STREQ(error, "program.stdin: names no listener: 'x'", "cli: stdin message without a file");
	free(error);
	config_free(c);
}

#define SETS(...) ((char *const[]){__VA_ARGS__, NULL})

/* ---- config_reload(): an unchanged file is not parsed again ---- */

/* Rewrites path with text (the same inode, as an editor that writes in place). */
static void rewrite(const char *path, const char *text) {
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(EXIT_FAILURE);
	}
}

static void test_reload_unchanged(void) {
	static const char text[] = "listeners:\n  - name: web\n    address: tcp://127.0.0.1:8080\n"
				   "program:\n  command: [/bin/app]\nstop:\n  timeout: 5s\n";
	const char *path = write_tmp(text);
	char *const *sets = SETS("restart.policy=always");
	struct config *c = NULL, *again = NULL;
	char *error = NULL;

	CHECK(config_reload(path, sets, NULL, &c, &error) == 0 && c, "reload without a current config: a load");
	if (!c)
		return;
	CHECK(config_reload(path, sets, c, &again, &error) == 1 && again == c && c->refs == 2,
	      "reload of the same bytes and sets: the current config, one more reference");
	config_free(again);
	CHECK(c->refs == 1 && c->n_listeners == 1 && streq(c->listeners[0].name, "web"),
	      "reload: freeing the reference leaves the current config whole");

	/* One byte changed, the length the same: parsed again, and the change is seen. */
	char changed[sizeof(text)];
	memcpy(changed, text, sizeof(text));
	*strstr(changed, "5s") = '7';
	rewrite(path, changed);
	again = NULL;
	CHECK(config_reload(path, sets, c, &again, &error) == 0 && again && again != c &&
		      again->stop_timeout_usec == 7 * USEC_PER_SEC && c->stop_timeout_usec == 5 * USEC_PER_SEC,
	      "reload of a changed byte: parsed again");
	config_free(again);

	/* The same bytes as c's, other sets: parsed again. */
	rewrite(path, text);
	again = NULL;
	CHECK(config_reload(path, SETS("restart.policy=never"), c, &again, &error) == 0 && again && again != c &&
		      again->restart_policy == RESTART_NEVER,
	      "reload with other --set options: parsed again");
	config_free(again);
	again = NULL;
	CHECK(config_reload(path, NULL, c, &again, &error) == 0 && again && again != c &&
		      again->restart_policy == RESTART_ON_FAILURE,
	      "reload without the --set options: parsed again");
	config_free(again);

	/* A file that became invalid: the error, and the current config untouched. */
	rewrite(path, "listeners: 3\n");
	again = NULL;
	CHECK(config_reload(path, sets, c, &again, &error) == -EINVAL && !again && error && c->refs == 1,
	      "reload of a file made invalid: an error, the current config kept");
	free(error);
	error = NULL;

	/* A config that was not loaded from a file (quick use) is never taken again: nothing was parsed. */
	struct config *q = NULL, *q2 = NULL;
	CHECK(config_reload(NULL, sets, NULL, &q, &error) == 0 && q, "quick use loads");
	CHECK(q && config_reload(NULL, sets, q, &q2, &error) == 0 && q2 && q2 != q,
	      "quick use: a new config each time");
	config_free(q);
	config_free(q2);
	config_free(c);
}

/* ---- --set KEY=VALUE (baton(1) OPTIONS) ---- */

/* config_load_set() of text (NULL: no file, quick use) with sets: succeeds. */
static struct config *set_ok(const char *text, char *const *sets, const char *what) {
	const char *path = text ? write_tmp(text) : NULL;
	struct config *c = NULL;
	char *error = NULL;
	int r = config_load_set(path, sets, &c, &error);
	CHECK(r == 0 && c, "--set loads: %s", what);
	if (r < 0)
		printf("#   error: %s\n", error);
	free(error);
	return r == 0 ? c : NULL;
}

/* Fails with exactly want ("PATH: " before it when it is about the file, not an option). */
static void set_fails(const char *text, char *const *sets, const char *want, const char *what) {
	const char *path = text ? write_tmp(text) : NULL;
	struct config *c = NULL;
	char *error = NULL, *full = NULL;
	int r = config_load_set(path, sets, &c, &error);
	CHECK(r == -EINVAL && !c, "--set rejected: %s", what);
	if (asprintf(&full, "%s%s%s", path && strncmp(want, "--set ", 6) ? path : "",
		     path && strncmp(want, "--set ", 6) ? ": " : "", want) < 0)
		exit(EXIT_FAILURE);
	CHECK_STREQ(error, full, "--set message: %s", what);
	if (r == 0)
		config_free(c);
	free(error);
	free(full);
}

static void test_set_check(void) {
	const char *why = NULL;
	CHECK(config_set_check("stop.timeout=5s", &why) == 0, "set_check: KEY=VALUE");
	CHECK(config_set_check("control.socket=", &why) == 0, "set_check: an empty value");
	CHECK(config_set_check("program.environment.A=b=c", &why) == 0, "set_check: '=' in the value");
	CHECK(config_set_check("x=y", NULL) == 0, "set_check: NULL ret_why");
	why = NULL;
	CHECK(config_set_check("stop.timeout", &why) == -EINVAL && why && streq(why, "expected KEY=VALUE"),
	      "set_check: no '='");
	why = NULL;
	CHECK(config_set_check("", &why) == -EINVAL && why && streq(why, "expected KEY=VALUE"), "set_check: empty");
	why = NULL;
	CHECK(config_set_check("=5s", &why) == -EINVAL && why && strstr(why, "empty key"), "set_check: empty key");
	why = NULL;
	CHECK(config_set_check("=", &why) == -EINVAL && why && strstr(why, "empty key"), "set_check: '=' alone");
}

static void test_set_types(void) {
	/* Without a file: the defaults of quick use, then the options. */
	struct config *c = set_ok(NULL, NULL, "no file, no option");
	if (c) {
		check_defaults(c, true);
		CHECK(!c->path && !c->sets && !c->command && c->n_listeners == 0, "no file: empty");
		config_free(c);
	}
	c = set_ok(NULL,
		   SETS("stop.timeout=5s", "readiness.timeout=250ms", "restart.policy=on-failure",
			"reload.strategy=signal", "systemd.fd-store=false", "program.fd-store=true", "stop.signal=KILL",
			"reload.signal=10", "program.user=nobody", "program.group=0", "program.working-directory=/srv",
			"program.watchdog=1m", "control.socket=", "program.environment.GREETING=hello world",
			"program.environment.X.Y=a=b", "program.stdin=/dev/null", "readiness.type=notify",
			"restart.delay=1s", "restart.max-delay=1h", "notify.socket=/run/n.sock"),
		   "every kind of scalar");
	if (c) {
		CHECK(c->stop_timeout_usec == 5 * USEC_PER_SEC, "duration: stop.timeout 5s");
		CHECK(c->readiness_timeout_usec == 250 * USEC_PER_MSEC, "duration: readiness.timeout 250ms");
		CHECK(c->program_watchdog_usec == 60 * USEC_PER_SEC, "duration: program.watchdog 1m");
		CHECK(c->restart_delay_usec == USEC_PER_SEC && c->restart_max_delay_usec == 3600 * USEC_PER_SEC,
		      "durations: restart.delay, restart.max-delay");
		CHECK(c->restart_policy == RESTART_ON_FAILURE,
		      "enum: restart.policy on-failure over quick use's never");
		CHECK(c->reload_strategy == RELOAD_SIGNAL, "enum: reload.strategy signal");
		CHECK(c->fd_store == FD_STORE_NO, "enum: systemd.fd-store false");
		CHECK(c->readiness_type == READINESS_NOTIFY, "enum: readiness.type notify over quick use's none");
		CHECK(c->program_fd_store, "boolean: program.fd-store true");
		CHECK(c->stop_signal == SIGKILL && c->reload_signal == SIGUSR1, "signals: KILL, 10");
		CHECK_STREQ(c->user, "nobody", "string: program.user");
		CHECK_STREQ(c->group, "0", "string: program.group");
		CHECK_STREQ(c->working_directory, "/srv", "string: program.working-directory");
		CHECK_STREQ(c->notify_socket, "/run/n.sock", "string: notify.socket");
		CHECK_STREQ(c->control_socket, "", "string: control.socket \"\" (disabled)");
		CHECK(c->environment && streq(c->environment[0], "GREETING=hello world") &&
			      streq(c->environment[1], "X.Y=a=b") && !c->environment[2],
		      "environment: two variables, a '.' in a name and a '=' in a value");
		CHECK(c->stdin_mode == STDIN_NULL && !c->stdin_listener, "program.stdin /dev/null");
		CHECK(c->sets && streq(c->sets[0], "stop.timeout=5s") && strv_length(c->sets) == 20,
		      "the options are kept for messages");
		config_free(c);
	}
	c = set_ok(NULL, SETS("readiness.type=log", "readiness.pattern=^up$", "readiness.stream=stderr"),
		   "a readiness type with its keys");
	if (c) {
		CHECK(c->readiness_type == READINESS_LOG && c->readiness_stream == STREAM_STDERR &&
			      streq(c->readiness_pattern, "^up$"),
		      "readiness log, pattern, stream");
		config_free(c);
	}
	/* The last of one key wins, an invalid earlier one included. */
	c = set_ok(NULL,
		   SETS("stop.timeout=5", "stop.timeout=7s", "program.environment.A=1", "program.environment.A=2"),
		   "the last one wins");
	if (c) {
		CHECK(c->stop_timeout_usec == 7 * USEC_PER_SEC, "last wins: stop.timeout 7s");
		CHECK(c->environment && streq(c->environment[0], "A=2") && !c->environment[1], "last wins: one A=2");
		config_free(c);
	}
}

static void test_set_over_file(void) {
	const char *file = "program:\n  command: [/bin/app]\n  environment: {A: \"1\", B: \"2\"}\n  stdin: web\n"
			   "listeners:\n  - {name: web, address: \"tcp://:8080\"}\n"
			   "stop: {timeout: 5}\nrestart: {policy: always}\n";
	/* The file's invalid stop.timeout is replaced before it is validated. */
	struct config *c = set_ok(file,
				  SETS("stop.timeout=5s", "program.environment.A=one", "program.environment.C=3",
				       "program.stdin=inherit"),
				  "over a file");
	if (c) {
		CHECK(c->path && c->stop_timeout_usec == 5 * USEC_PER_SEC, "over a file: stop.timeout replaced");
		CHECK(c->restart_policy == RESTART_ALWAYS, "over a file: the rest is the file's");
		CHECK(c->readiness_type == READINESS_NOTIFY, "over a file: a file's default readiness.type notify");
		CHECK(c->environment && streq(c->environment[0], "A=one") && streq(c->environment[1], "B=2") &&
			      streq(c->environment[2], "C=3") && !c->environment[3],
		      "over a file: a variable replaced in place, a new one after the file's");
		CHECK(c->stdin_mode == STDIN_INHERIT && !c->stdin_listener, "over a file: program.stdin inherit");
		config_free(c);
	}
	/* Without the option, the file's error, with its line. */
	set_fails(file, NULL,
		  "key 'stop.timeout': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '5' (line 7)",
		  "the file's own error");
	set_fails(file, SETS("restart.policy=never"),
		  "key 'stop.timeout': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '5' (line 7)",
		  "an unrelated option leaves the file's error");
	set_fails("readiness: {type: exec, command: [/bin/true]}\n", SETS("readiness.interval=0s"),
		  "--set readiness.interval=0s: must be longer than 0s", "a value the file's rules refuse");
	set_fails("readiness: {type: log, pattern: x}\n", SETS("readiness.type=none"),
		  "key 'readiness.pattern': not used with readiness.type none (line 1)",
		  "the file's key that the option's type does not use");

	/* program.stdin set to a listener that the command line then must give. */
	char *error = NULL;
	c = set_ok(NULL, SETS("program.stdin=x"), "stdin names a listener to come");
	if (c) {
		CHECK(config_apply_cli(c, SETS("web=tcp://:8080"), SETS("/bin/true"), &error) == -EINVAL,
		      "cli: stdin names no listener");
		CHECK_STREQ(error, "--set program.stdin=x: names no listener: 'x'", "cli: the option is named");
		free(error);
		error = NULL;
		CHECK(config_apply_cli(c, SETS("x=tcp://:8080"), SETS("/bin/true"), &error) == 0 &&
			      c->stdin_mode == STDIN_LISTENER && streq(c->stdin_listener, "x"),
		      "cli: stdin names a --listen listener");
		free(error);
		config_free(c);
	}
	/* config_merge_cli() (baton check): no command is fine, --listen is merged. */
	c = set_ok(NULL, NULL, "merge");
	if (c) {
		error = NULL;
		CHECK(config_merge_cli(c, SETS("web=tcp://:8080"), NULL, &error) == 0 && c->n_listeners == 1 &&
			      !c->command,
		      "merge: a listener, no command");
		free(error);
		error = NULL;
		CHECK(config_apply_cli(c, NULL, NULL, &error) == -EINVAL, "apply: still no command");
		free(error);
		config_free(c);
	}
}

static void test_set_errors(void) {
	set_fails(NULL, SETS("readiness.tpye=none"),
		  "--set readiness.tpye=none: unknown key 'readiness.tpye' (the keys of readiness: type, timeout, "
		  "command, interval, pattern, stream, pid-file, delay)",
		  "unknown key");
	set_fails(NULL, SETS("stpo.timeout=5s"),
		  "--set stpo.timeout=5s: unknown key 'stpo.timeout' (the sections: listeners, program, readiness, "
		  "reload, stop, restart, notify, control, systemd)",
		  "unknown section");
	set_fails(NULL, SETS("stop.timeout.x=5s"),
		  "--set stop.timeout.x=5s: unknown key 'stop.timeout.x' (the keys of stop: signal, timeout, drain)",
		  "a key below a scalar");
	set_fails(NULL, SETS("stop=5s"),
		  "--set stop=5s: stop is a section: set one of its keys (signal, timeout, drain)", "a section");
	set_fails(NULL, SETS("listeners.0.backlog=1"),
		  "--set listeners.0.backlog=1: listeners is a list, whose keys cannot be set: --listen NAME=ADDRESS "
		  "adds a listener, the file gives its options",
		  "a listener key");
	set_fails(NULL, SETS("program.command=/bin/app"),
		  "--set program.command=/bin/app: program.command is a list: write it in the file, or the command "
		  "after --",
		  "program.command");
	set_fails(NULL, SETS("readiness.command=true"),
		  "--set readiness.command=true: readiness.command is a list: write it in the file",
		  "readiness.command");
	set_fails(NULL, SETS("program.compat=einhorn"),
		  "--set program.compat=einhorn: program.compat is a list: write it in the file", "program.compat");
	set_fails(NULL, SETS("program.environment=A"),
		  "--set program.environment=A: program.environment is a mapping: set one variable with --set "
		  "program.environment.NAME=VALUE",
		  "program.environment itself");
	set_fails(NULL, SETS("stop.timeout"), "--set stop.timeout: expected KEY=VALUE", "no '=' (unchecked caller)");
	set_fails(NULL, SETS("notify.socket=@x"), "--set notify.socket=@x: must be auto, abstract or an absolute path",
		  "notify.socket");

	/* A bad value of each type: the file's reason, the option instead of a line. */
	set_fails(NULL, SETS("stop.timeout=5"),
		  "--set stop.timeout=5: expected a duration with its unit, such as 250ms, 30s, 5m or 1h", "duration");
	set_fails(NULL, SETS("stop.timeout="),
		  "--set stop.timeout=: expected a duration with its unit, such as 250ms, 30s, 5m or 1h",
		  "empty duration");
	set_fails(NULL, SETS("stop.timeout=0s"), "--set stop.timeout=0s: must be longer than 0s", "zero duration");
	set_fails(NULL, SETS("program.fd-store=yes"), "--set program.fd-store=yes: expected true or false", "boolean");
	set_fails(NULL, SETS("restart.policy=sometimes"),
		  "--set restart.policy=sometimes: expected on-failure, always or never", "enum");
	set_fails(NULL, SETS("readiness.type=ready"),
		  "--set readiness.type=ready: expected notify, exec, log, pidfile, delay or none", "readiness.type");
	set_fails(NULL, SETS("stop.signal=SIGFOO"),
		  "--set stop.signal=SIGFOO: expected a signal such as SIGTERM, TERM or 15", "signal");
	set_fails(NULL, SETS("program.user="), "--set program.user=: must not be empty", "empty string");
	set_fails(NULL, SETS("program.working-directory=srv"),
		  "--set program.working-directory=srv: must be an absolute path", "relative path");
	set_fails(NULL, SETS("control.socket=run/x.sock"),
		  "--set control.socket=run/x.sock: must be an absolute path, or \"\" to disable the socket",
		  "relative control socket");
	set_fails(NULL, SETS("program.stdin=a b"),
		  "--set program.stdin=a b: expected inherit, /dev/null or a listener name", "stdin");
	set_fails(NULL, SETS("program.environment.1X=a"),
		  "--set program.environment.1X=a: invalid variable name (no '=', spaces or control characters; not "
		  "starting with a digit): '1X'",
		  "environment name");
	set_fails(NULL, SETS("program.environment.=a"),
		  "--set program.environment.=a: invalid variable name (no '=', spaces or control characters; not "
		  "starting with a digit): ''",
		  "empty environment name");
	set_fails(NULL, SETS("stop.timeout=5s", "stop.timeout=5"),
		  "--set stop.timeout=5: expected a duration with its unit, such as 250ms, 30s, 5m or 1h",
		  "the last one is the one checked");
	/* Rules across keys name the option that broke them. */
	set_fails(NULL, SETS("readiness.type=exec"),
		  "--set readiness.type=exec: readiness.type exec needs readiness.command", "a type without its key");
	set_fails(NULL, SETS("readiness.pattern=x"), "--set readiness.pattern=x: not used with readiness.type none",
		  "a key of another type");
	set_fails(NULL, SETS("restart.delay=1m"), "--set restart.delay=1m: longer than restart.max-delay (30s)",
		  "delay over max-delay");
	set_fails(NULL, SETS("stop.drain=1s"),
		  "--set stop.drain=1s: needs program.preload: true (the shim stops the old generation accepting)",
		  "drain without preload");
}

/* reload.confirm and reload.confirm-command (baton.yaml(5) RELOAD): a duration, a probe that runs every
 * readiness.interval, and the rules across keys that keep a window with nothing to roll back to from being written. */
static void test_reload_confirm(void) {
	struct config *c = load_ok(TCP_LISTENER "readiness:\n  interval: 100ms\n"
						"reload:\n  confirm: 10s\n  confirm-command: [/bin/check, --url, x]\n",
				   "confirm with a command");
	if (c) {
		CHECK(c->reload_confirm_usec == 10 * USEC_PER_SEC, "reload.confirm 10s");
		CHECK(c->confirm_command && streq(c->confirm_command[0], "/bin/check") &&
			      streq(c->confirm_command[2], "x") && !c->confirm_command[3],
		      "reload.confirm-command as written");
		CHECK(c->readiness_interval_usec == 100 * USEC_PER_MSEC && c->readiness_type == READINESS_NOTIFY,
		      "readiness.interval is taken with readiness.type notify: confirm-command uses it");
		char *text = round_trip(c, "confirm");
		CHECK(strstr(text, "  confirm: 10s\n  confirm-command: [\"/bin/check\", \"--url\", \"x\"]\n") &&
			      strstr(text, "  interval: 100ms\n"),
		      "print: confirm, confirm-command and the interval it uses");
		free(text);
		config_free(c);
	}
	c = set_ok(NULL, SETS("reload.confirm=1500ms"), "--set reload.confirm=1500ms");
	if (c) {
		CHECK(c->reload_confirm_usec == 1500 * USEC_PER_MSEC, "--set reload.confirm: 1.5 s");
		config_free(c);
	}
	load_fails(
		"reload:\n  confirm: 10\n",
		"key 'reload.confirm': expected a duration with its unit, such as 250ms, 30s, 5m or 1h: '10' (line 2)",
		"a bare integer");
	set_fails(NULL, SETS("reload.confirm=10"),
		  "--set reload.confirm=10: expected a duration with its unit, such as 250ms, 30s, 5m or 1h",
		  "--set with a bare integer");
	load_fails(
		"reload:\n  strategy: restart\n  confirm: 5s\n",
		"key 'reload.confirm': needs reload.strategy replace, not restart (with restart no old generation is "
		"left to roll back to): '5s' (line 3)",
		"confirm with strategy restart");
	set_fails("reload:\n  confirm: 5s\n", SETS("reload.strategy=signal"),
		  "key 'reload.confirm': needs reload.strategy replace, not signal (with signal no old generation is "
		  "left to roll back to): '5s' (line 2)",
		  "confirm in the file, strategy signal by --set");
	set_fails("reload:\n  strategy: signal\n", SETS("reload.confirm=5s"),
		  "--set reload.confirm=5s: needs reload.strategy replace, not signal (with signal no old generation "
		  "is left to roll back to)",
		  "strategy signal in the file, confirm by --set");
	c = load_ok("reload:\n  strategy: restart\n  confirm: 0s\n", "confirm 0s with strategy restart");
	config_free(c);
	load_fails("reload:\n  confirm-command: [/bin/true]\n",
		   "key 'reload.confirm-command': needs reload.confirm longer than 0s (it runs during that window) "
		   "(line 2)",
		   "confirm-command without confirm");
	load_fails("reload:\n  confirm: 1s\n  confirm-command: []\n",
		   "key 'reload.confirm-command': empty command (line 3)", "empty confirm-command");
	load_fails("reload:\n  confirm: 1s\n  confirm-command: [\"\"]\n",
		   "key 'reload.confirm-command[0]': empty program name: '' (line 3)", "empty program name");
	set_fails(NULL, SETS("reload.confirm-command=/bin/true"),
		  "--set reload.confirm-command=/bin/true: reload.confirm-command is a list: write it in the file",
		  "confirm-command by --set");
	load_fails("readiness:\n  interval: 1s\n",
		   "key 'readiness.interval': not used with readiness.type notify (line 2)",
		   "readiness.interval without exec, pidfile or confirm-command");
}

int main(void) {
	CHECK(config_name_valid("http") && config_name_valid("a.b-c_D9") && !config_name_valid("") &&
		      !config_name_valid("a:b") && !config_name_valid("a/b"),
	      "config_name_valid");
	CHECK(streq(inherit_mode_to_string(INHERIT_NEVER), "never") &&
		      streq(restart_policy_to_string(RESTART_ALWAYS), "always") &&
		      streq(reload_strategy_to_string(RELOAD_SIGNAL), "signal") &&
		      streq(readiness_type_to_string(READINESS_NOTIFY), "notify"),
	      "enum names");

	test_file_errors();
	test_file_size();
	test_schema_errors();
	test_listener_errors();
	test_many_listeners_unique();
	test_many_listeners_content();
	test_quick_load();
	test_program_errors();
	test_section_errors();
	test_defaults();
	test_full_and_round_trip();
	test_cli();
	test_control_socket();
	test_peek_control_socket();
	test_readiness_types();
	test_readiness_errors();
	test_program_new_keys();
	test_listener_refs();
	test_set_check();
	test_set_types();
	test_set_over_file();
	test_set_errors();
	test_reload_confirm();
	test_reload_unchanged();

	for (size_t i = 0; i < n_tmp_paths; i++) {
		unlink(tmp_paths[i]);
		free(tmp_paths[i]);
	}
	return test_done();
}
