/* The configuration's defaults, its validation (the raw strings of the schema, config-yaml.c, checked and converted
 * into struct config) and freeing it; the control socket it implies is config-socket.c's. Nothing here logs: errors
 * are messages for the caller, with the key and its line (config-internal.h's loader_fail). */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config-internal.h"
#include "util.h"

/* ---- Enum names ----
 *
 * In arrays of their own, not pointers: a table of pointers is written by the dynamic linker at each start (baton is
 * position-independent), and those pages count in every baton's private memory (issue 23). */

#define ENUM_NAME_SIZE sizeof("on-failure")

static const char inherit_names[_INHERIT_MAX][ENUM_NAME_SIZE] = {"auto", "required", "never"};
static const char readiness_names[_READINESS_MAX][ENUM_NAME_SIZE] = {"notify",  "exec",  "log",
								     "pidfile", "delay", "none"};
static const char stream_names[_STREAM_MAX][ENUM_NAME_SIZE] = {"both", "stdout", "stderr"};
static const char reload_names[_RELOAD_STRATEGY_MAX][ENUM_NAME_SIZE] = {"replace", "restart", "signal"};
static const char restart_names[_RESTART_POLICY_MAX][ENUM_NAME_SIZE] = {"on-failure", "always", "never"};
static const char fd_store_names[_FD_STORE_MAX][ENUM_NAME_SIZE] = {"auto", "true", "false"};
static const char stdin_names[_STDIN_MAX][ENUM_NAME_SIZE] = {"inherit", "/dev/null", "listener"};
static const char cgroup_names[_CGROUP_MODE_MAX][ENUM_NAME_SIZE] = {"auto", "required", "never"};

const char *inherit_mode_to_string(enum inherit_mode m) {
	return m >= 0 && m < _INHERIT_MAX ? inherit_names[m] : NULL;
}
const char *readiness_type_to_string(enum readiness_type t) {
	return t >= 0 && t < _READINESS_MAX ? readiness_names[t] : NULL;
}
const char *reload_strategy_to_string(enum reload_strategy s) {
	return s >= 0 && s < _RELOAD_STRATEGY_MAX ? reload_names[s] : NULL;
}
const char *output_stream_to_string(enum output_stream st) {
	return st >= 0 && st < _STREAM_MAX ? stream_names[st] : NULL;
}

const char *fd_store_mode_to_string(enum fd_store_mode m) {
	return m >= 0 && m < _FD_STORE_MAX ? fd_store_names[m] : NULL;
}
const char *restart_policy_to_string(enum restart_policy p) {
	return p >= 0 && p < _RESTART_POLICY_MAX ? restart_names[p] : NULL;
}
const char *stdin_mode_to_string(enum stdin_mode m) {
	return m >= 0 && m < _STDIN_MAX ? stdin_names[m] : NULL;
}

const char *cgroup_mode_to_string(enum cgroup_mode m) {
	return m >= 0 && m < _CGROUP_MODE_MAX ? cgroup_names[m] : NULL;
}

bool config_name_valid(const char *name) {
	size_t n = strlen(name);
	if (n == 0 || n > LISTENER_NAME_MAX)
		return false;
	/* ':' separates the names in LISTEN_FDNAMES (sd_listen_fds_with_names(3)). A loop, not strspn() with the
	 * 65 characters: that builds its table at each call, once per listener at each load of a file. */
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '_' || *p == '-'))
			return false;
	return true;
}

/* ---- Defaults ---- */

void config_defaults(struct config *c) {
	*c = (struct config){
		.refs = 1,
		.readiness_type = READINESS_NOTIFY,
		.readiness_timeout_usec = 60 * USEC_PER_SEC,
		.readiness_interval_usec = 250 * USEC_PER_MSEC,
		.reload_strategy = RELOAD_REPLACE,
		.reload_signal = SIGHUP,
		.stop_signal = SIGTERM,
		.stop_timeout_usec = 30 * USEC_PER_SEC,
		.restart_policy = RESTART_ON_FAILURE,
		.restart_delay_usec = 100 * USEC_PER_MSEC,
		.restart_max_delay_usec = 30 * USEC_PER_SEC,
	};
}

/* Quick use must work for any program, and most never send READY=1: without a file, "started" is ready, as with
 * systemd's default Type=simple. And the program's exit is baton's (systemd's default Restart=no, tini): as a
 * container's init, a container ends with its program and its status reaches the orchestrator, whose own restart
 * policy decides. A file keeps notify, the exact signal, and on-failure as its defaults. */
void config_quick_use_defaults(struct config *c) {
	config_defaults(c);
	c->readiness_type = READINESS_NONE;
	c->restart_policy = RESTART_NEVER;
}

int config_new_default(struct config **ret) {
	struct config *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	config_quick_use_defaults(c);
	*ret = c;
	return 0;
}

void config_listener_defaults(struct listener_config *lc) {
	*lc = (struct listener_config){
		.backlog = SOMAXCONN,
		.reuse_address = true,
		.ipv6_only = -1,
		.mode = -1,
		.inherit = INHERIT_AUTO,
	};
}

/* ---- Step 4: validation and conversion ---- */

static int get_bool(struct loader *l, const char *key, const char *s, bool *ret) {
	if (s && parse_bool(s, ret) < 0)
		return loader_fail_value(l, key, "expected true or false", s);
	return 0;
}

static int get_uint(struct loader *l, const char *key, const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
	uint64_t v;
	char why[96];

	if (!s)
		return 0;
	int r = parse_uint_max(s, max, &v);
	if (r == -EINVAL) {
		snprintf(why, sizeof(why),
			 "expected a decimal number %" PRIu64 "-%" PRIu64 " (no sign, no leading zero)", min, max);
		return loader_fail_value(l, key, why, s);
	}
	if (r < 0 || v < min) {
		snprintf(why, sizeof(why), "out of range %" PRIu64 "-%" PRIu64, min, max);
		return loader_fail_value(l, key, why, s);
	}
	*ret = v;
	return 0;
}

static int get_duration(struct loader *l, const char *key, const char *s, bool positive, uint64_t *ret) {
	uint64_t v;

	if (!s)
		return 0;
	int r = parse_duration(s, &v);
	if (r == -ERANGE)
		return loader_fail_value(l, key, "duration too long", s);
	if (r < 0)
		return loader_fail_value(l, key, "expected a duration with its unit, such as 250ms, 30s, 5m or 1h", s);
	if (positive && v == 0)
		return loader_fail_value(l, key, "must be longer than 0s", s);
	*ret = v;
	return 0;
}

static int get_signal(struct loader *l, const char *key, const char *s, int *ret) {
	if (s && parse_signal(s, ret) < 0)
		return loader_fail_value(l, key, "expected a signal such as SIGTERM, TERM or 15", s);
	return 0;
}

static int get_enum(struct loader *l, const char *key, const char *s, const char (*names)[ENUM_NAME_SIZE], size_t n,
		    int *ret) {
	if (!s)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (streq(s, names[i])) {
			*ret = (int)i;
			return 0;
		}
	char why[128] = "expected ";
	for (size_t i = 0, m = strlen(why); i < n && m < sizeof(why); i++)
		m += (size_t)snprintf(why + m, sizeof(why) - m, "%s%s",
				      i == 0       ? ""
				      : i + 1 == n ? " or "
						   : ", ",
				      names[i]);
	return loader_fail_value(l, key, why, s);
}

/* The list at key is in the file: libcyaml's list of it, or (an empty list has none) its node in the document. A
 * quick load, which has no document, reads only files without an empty list (config-yaml.c). */
static bool list_given(struct loader *l, const char *key, char *const *raw_list) {
	return raw_list || loader_find(l, key);
}

/* A command: a non-empty sequence, no empty program name or argument. */
static int get_command(struct loader *l, const char *key, char *const *args, unsigned n, char ***ret) {
	if (n == 0)
		return loader_fail(l, key, loader_find(l, key), "empty command");
	char **cmd = calloc(n + 1, sizeof(char *));
	if (!cmd)
		return -ENOMEM;
	*ret = cmd; /* freed with the config on failure */
	for (unsigned i = 0; i < n; i++) {
		char k[64];
		snprintf(k, sizeof(k), "%s[%u]", key, i);
		if (!args[i][0])
			return loader_fail_value(l, k, i == 0 ? "empty program name" : "empty argument", "");
		if (!(cmd[i] = strdup(args[i])))
			return -ENOMEM;
	}
	return 0;
}

static int get_string(struct loader *l, const char *key, const char *s, char **ret) {
	if (!s)
		return 0;
	if (!*s)
		return loader_fail_value(l, key, "must not be empty", s);
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	free(*ret);
	*ret = copy;
	return 0;
}

static bool addr_is_ipv4(const struct address *a) {
	return a->family == AF_INET || (a->host_numeric && !strchr(a->host, ':'));
}

/* An option given for a kind of socket it does not apply to is an error, not silently ignored. */
static int check_applies(struct loader *l, const char *prefix, const char *option, const char *value, bool applies,
			 const char *only_for, const struct address *a) {
	char key[64], why[ADDR_FORMAT_MAX + 128], abuf[ADDR_FORMAT_MAX];

	if (!value || applies)
		return 0;
	snprintf(key, sizeof(key), "%s.%s", prefix, option);
	snprintf(why, sizeof(why), "only for %s (this listener is %s)", only_for, addr_format(a, abuf));
	return loader_fail_value(l, key, why, value);
}

/* Every option written for the listener must apply to its kind of socket. */
static int check_options_apply(struct loader *l, const char *prefix, const struct raw_listener *r,
			       const struct address *a) {
	bool tcp = a->kind == ADDR_TCP, ip = !addr_is_unix(a), unix_path = addr_is_unix(a) && !a->abstract;
	struct {
		const char *option, *value;
		bool applies;
		const char *only_for;
	} applies[] = {
		{"backlog", r->backlog, addr_is_stream(a), "stream sockets (tcp, unix, unix-seqpacket)"},
		{"reuse-port", r->reuse_port, ip, "tcp and udp addresses"},
		/* SO_REUSEADDR on UDP lets a second socket bind the same port: not something to switch on by default.
		 */
		{"reuse-address", r->reuse_address, tcp, "tcp addresses"},
		{"ipv6-only", r->ipv6_only, ip && !addr_is_ipv4(a), "tcp and udp addresses that can be IPv6"},
		{"freebind", r->freebind, ip, "tcp and udp addresses"},
		{"transparent", r->transparent, ip, "tcp and udp addresses"},
		{"keepalive", r->keepalive, tcp, "tcp addresses"},
		{"nodelay", r->nodelay, tcp, "tcp addresses"},
		{"defer-accept", r->defer_accept, tcp, "tcp addresses"},
		{"fastopen", r->fastopen, tcp, "tcp addresses"},
		{"mode", r->mode, unix_path, "unix socket paths (not abstract names)"},
		{"owner", r->owner, unix_path, "unix socket paths (not abstract names)"},
		{"group", r->group, unix_path, "unix socket paths (not abstract names)"},
	};
	for (size_t j = 0; j < ARRAY_SIZE(applies); j++) {
		int k = check_applies(l, prefix, applies[j].option, applies[j].value, applies[j].applies,
				      applies[j].only_for, a);
		if (k < 0)
			return k;
	}
	return 0;
}

/* The listener's keys are named "listeners[I].OPTION": each function below has its prefix and a key buffer. A key is
 * formatted only for a value the file gave (a getter names its key only then, in a message): formatting every key of
 * every listener was a tenth of baton's own reload time with 1,000 listeners (issue 23). */
#define KEY(option, value) ((value) ? (snprintf(key, sizeof(key), "%s.%s", prefix, option), key) : NULL)

/* The on/off socket options; ipv6-only stays -1 unless given, so that binding can tell "not said" from false. */
static int load_listener_flags(struct loader *l, const char *prefix, const struct raw_listener *r,
			       struct listener_config *lc) {
	const struct {
		const char *option, *value;
		bool *ret;
	} flags[] = {
		{"reuse-port", r->reuse_port, &lc->reuse_port}, {"reuse-address", r->reuse_address, &lc->reuse_address},
		{"freebind", r->freebind, &lc->freebind},       {"transparent", r->transparent, &lc->transparent},
		{"keepalive", r->keepalive, &lc->keepalive},    {"nodelay", r->nodelay, &lc->nodelay},
	};
	char key[64];
	int k;

	for (size_t j = 0; j < ARRAY_SIZE(flags); j++)
		if ((k = get_bool(l, KEY(flags[j].option, flags[j].value), flags[j].value, flags[j].ret)) < 0)
			return k;
	if (r->ipv6_only) {
		bool b;
		if ((k = get_bool(l, KEY("ipv6-only", r->ipv6_only), r->ipv6_only, &b)) < 0)
			return k;
		lc->ipv6_only = b;
	}
	return 0;
}

static int load_listener_numbers(struct loader *l, const char *prefix, const struct raw_listener *r,
				 struct listener_config *lc) {
	char key[64];
	int k;

	/* TCP_DEFER_ACCEPT takes whole seconds (tcp(7)): a fraction would be rounded behind the user's back. */
	if ((k = get_duration(l, KEY("defer-accept", r->defer_accept), r->defer_accept, false,
			      &lc->defer_accept_usec)) < 0)
		return k;
	if (lc->defer_accept_usec % USEC_PER_SEC != 0 || lc->defer_accept_usec / USEC_PER_SEC > INT_MAX)
		return loader_fail_value(l, KEY("defer-accept", r->defer_accept), "must be whole seconds",
					 r->defer_accept);
	/* setsockopt() takes an int, so everything that goes there stays within INT_MAX. */
	const struct {
		const char *option, *value;
		uint32_t *ret;
	} numbers[] = {
		{"fastopen", r->fastopen, &lc->fastopen},
		{"receive-buffer", r->receive_buffer, &lc->receive_buffer},
		{"send-buffer", r->send_buffer, &lc->send_buffer},
	};
	for (size_t j = 0; j < ARRAY_SIZE(numbers); j++) {
		uint64_t v = 0;
		if ((k = get_uint(l, KEY(numbers[j].option, numbers[j].value), numbers[j].value, 0, INT_MAX, &v)) < 0)
			return k;
		*numbers[j].ret = (uint32_t)v;
	}
	return 0;
}

/* The socket file's mode, owner and group (unix socket paths only: check_options_apply). */
static int load_listener_file(struct loader *l, const char *prefix, const struct raw_listener *r,
			      struct listener_config *lc) {
	char key[64];
	int k;

	/* The mode is 3 or 4 octal digits ("660", "0660", "1777"), read as octal whether the YAML quotes it or not:
	 * a YAML 1.1 reader would take a plain 0660 as octal too, and chmod(1) users write it that way. */
	if (r->mode) {
		size_t n = strlen(r->mode);
		if (n < 3 || n > 4 || strspn(r->mode, "01234567") != n)
			return loader_fail_value(l, KEY("mode", r->mode),
						 "expected 3 or 4 octal digits such as \"0660\"", r->mode);
		lc->mode = (int)strtol(r->mode, NULL, 8);
	}
	if ((k = get_string(l, KEY("owner", r->owner), r->owner, &lc->owner)) < 0 ||
	    (k = get_string(l, KEY("group", r->group), r->group, &lc->group)) < 0)
		return k;
	return 0;
}

/* "listeners[I]", without printf: this runs for every listener of a file at each load, and snprintf() was a fifth of
 * this file's time for 1,000 listeners. */
static void listener_prefix(char prefix[static 32], size_t i) {
	char digits[24], *d = digits + sizeof(digits);
	*--d = '\0';
	do
		*--d = (char)('0' + i % 10);
	while ((i /= 10) > 0);
	size_t n = strlen("listeners[");
	memcpy(prefix, "listeners[", n);
	size_t m = strlen(d);
	memcpy(prefix + n, d, m);
	prefix[n + m] = ']';
	prefix[n + m + 1] = '\0';
}

static int load_listener(struct loader *l, size_t i, const struct raw_listener *r, struct listener_config *lc) {
	char prefix[32], key[64];
	const char *why = NULL;
	uint64_t v;
	int k;

	listener_prefix(prefix, i);
	if (!config_name_valid(r->name))
		return loader_fail_value(l, KEY("name", r->name),
					 "invalid name (1-255 characters of A-Z a-z 0-9 . _ -)", r->name);
	lc->name = strdup(r->name);
	if (!lc->name)
		return -ENOMEM;
	if (addr_parse(r->address, &lc->address, &why) < 0)
		return loader_fail_value(l, KEY("address", r->address), why, r->address);

	if ((k = check_options_apply(l, prefix, r, &lc->address)) < 0)
		return k;

	v = (uint64_t)lc->backlog;
	if ((k = get_uint(l, KEY("backlog", r->backlog), r->backlog, 1, INT_MAX, &v)) < 0)
		return k;
	lc->backlog = (int)v;
	if ((k = load_listener_flags(l, prefix, r, lc)) < 0 || (k = load_listener_numbers(l, prefix, r, lc)) < 0 ||
	    (k = load_listener_file(l, prefix, r, lc)) < 0)
		return k;
	int e = (int)lc->inherit;
	if ((k = get_enum(l, KEY("inherit", r->inherit), r->inherit, inherit_names, _INHERIT_MAX, &e)) < 0)
		return k;
	lc->inherit = (enum inherit_mode)e;
	return 0;
}
#undef KEY

/* Whether two listeners share a name or an address, found in O(n) with hash tables: comparing every pair took 500,000
 * pairs for a file of 1,000 listeners, read again at each reload (issue 23). -ENOMEM: cannot tell. */
static int any_duplicate(const struct listener_config *ls, size_t n) {
	/* The names: open addressing, slots holding i + 1 (0: empty). */
	size_t cap = hash_table_size(n);
	_cleanup_free_ size_t *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t at = (size_t)hash64(ls[i].name, strlen(ls[i].name), 0) & (cap - 1);
		for (; slots[at]; at = (at + 1) & (cap - 1))
			if (streq(ls[slots[at] - 1].name, ls[i].name))
				return 1;
		slots[at] = i + 1;
	}
	struct addr_index x;
	if (addr_index_init(&x, &ls[0].address, n, sizeof(*ls)) < 0)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0; i < n && !r; i++)
		r = addr_index_find(&x, &ls[i].address) != (long)i;
	addr_index_free(&x);
	return r;
}

/* Names and addresses are unique: a name is how the child finds its fd, and two listeners cannot bind one address. */
static int check_unique(struct loader *l, const struct listener_config *ls, size_t n) {
	char key[64], why[64], abuf[ADDR_FORMAT_MAX];

	/* Every pair only to name the first duplicate, as the message does. */
	if (n < 2 || any_duplicate(ls, n) == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			if (streq(ls[i].name, ls[j].name)) {
				snprintf(key, sizeof(key), "listeners[%zu].name", i);
				snprintf(why, sizeof(why), "duplicate listener name (also listeners[%zu])", j);
				return loader_fail_value(l, key, why, ls[i].name);
			}
			if (addr_equal(&ls[i].address, &ls[j].address)) {
				snprintf(key, sizeof(key), "listeners[%zu].address", i);
				snprintf(why, sizeof(why), "duplicate address (also listeners[%zu], '%s')", j,
					 ls[j].name);
				return loader_fail_value(l, key, why, addr_format(&ls[i].address, abuf));
			}
		}
	return 0;
}

static int load_program(struct loader *l, const struct raw_program *p, struct config *c) {
	int r;

	if (list_given(l, "program.command", p->command) &&
	    (r = get_command(l, "program.command", p->command, p->n_command, &c->command)) < 0)
		return r;
	r = loader_environment(l, &c->environment);
	if (r < 0)
		return r;
	r = loader_set_environment(l, &c->environment);
	if (r < 0)
		return r;
	if (p->working_directory && p->working_directory[0] != '/')
		return loader_fail_value(l, "program.working-directory", "must be an absolute path",
					 p->working_directory);
	if ((r = get_string(l, "program.working-directory", p->working_directory, &c->working_directory)) < 0 ||
	    (r = get_string(l, "program.user", p->user, &c->user)) < 0 ||
	    (r = get_string(l, "program.group", p->group, &c->group)) < 0 ||
	    (r = get_duration(l, "program.watchdog", p->watchdog, false, &c->program_watchdog_usec)) < 0 ||
	    (r = get_bool(l, "program.fd-store", p->fd_store, &c->program_fd_store)) < 0 ||
	    (r = get_bool(l, "program.preload", p->preload, &c->preload)) < 0)
		return r;
	int e = (int)c->cgroup_mode;
	if ((r = get_enum(l, "program.cgroup", p->cgroup, cgroup_names, _CGROUP_MODE_MAX, &e)) < 0)
		return r;
	c->cgroup_mode = (enum cgroup_mode)e;
	/* "inherit" and "/dev/null" are words of their own: "/" is no character of a listener name, and a listener
	 * named inherit cannot be the standard input (baton.yaml(5) says so). */
	if (p->stdin_ && streq(p->stdin_, "inherit"))
		c->stdin_mode = STDIN_INHERIT;
	else if (p->stdin_ && streq(p->stdin_, "/dev/null"))
		c->stdin_mode = STDIN_NULL;
	else if (p->stdin_) {
		if (!config_name_valid(p->stdin_))
			return loader_fail_value(l, "program.stdin", "expected inherit, /dev/null or a listener name",
						 p->stdin_);
		if ((r = get_string(l, "program.stdin", p->stdin_, &c->stdin_listener)) < 0)
			return r;
		c->stdin_mode = STDIN_LISTENER;
	}
	for (unsigned i = 0; i < p->n_compat; i++) {
		char key[64];
		snprintf(key, sizeof(key), "program.compat[%u]", i);
		if (streq(p->compat[i], "server-starter") && !c->compat_server_starter)
			c->compat_server_starter = true;
		else if (streq(p->compat[i], "einhorn") && !c->compat_einhorn)
			c->compat_einhorn = true;
		else if (streq(p->compat[i], "server-starter") || streq(p->compat[i], "einhorn"))
			return loader_fail_value(l, key, "duplicate entry", p->compat[i]);
		else
			return loader_fail_value(l, key, "expected server-starter or einhorn", p->compat[i]);
	}
	return 0;
}

/* The readiness keys that belong to one type; a key given for another type would be silently unused, which hides a
 * typo in readiness.type: it is an error. So is a type without the key it needs. */
static int check_readiness_keys(struct loader *l, const struct raw_readiness *rd, bool confirm_command,
				enum readiness_type t) {
	const char *type = readiness_names[t];
	const struct {
		const char *key;
		bool given, wanted;
	} keys[] = {
		{"readiness.command", list_given(l, "readiness.command", rd->command), t == READINESS_EXEC},
		/* reload.confirm-command runs every readiness.interval too, whatever the readiness type. */
		{"readiness.interval", rd->interval != NULL,
		 t == READINESS_EXEC || t == READINESS_PIDFILE || confirm_command},
		{"readiness.pattern", rd->pattern != NULL, t == READINESS_LOG},
		{"readiness.stream", rd->stream != NULL, t == READINESS_LOG},
		{"readiness.pid-file", rd->pid_file != NULL, t == READINESS_PIDFILE},
		{"readiness.delay", rd->delay != NULL, t == READINESS_DELAY},
	};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].given && !keys[i].wanted)
			return loader_fail(l, keys[i].key, loader_find(l, keys[i].key),
					   "not used with readiness.type %s", type);
	static const char *const needs[_READINESS_MAX] = {
		[READINESS_EXEC] = "readiness.command",
		[READINESS_LOG] = "readiness.pattern",
		[READINESS_PIDFILE] = "readiness.pid-file",
		[READINESS_DELAY] = "readiness.delay",
	};
	bool have[_READINESS_MAX] = {
		[READINESS_EXEC] = list_given(l, "readiness.command", rd->command),
		[READINESS_LOG] = rd->pattern != NULL,
		[READINESS_PIDFILE] = rd->pid_file != NULL,
		[READINESS_DELAY] = rd->delay != NULL,
	};
	if (needs[t] && !have[t])
		return loader_fail(l, "readiness.type", loader_find(l, "readiness.type"), "readiness.type %s needs %s",
				   type, needs[t]);
	return 0;
}

static int load_readiness_pattern(struct loader *l, const char *pattern, struct config *c) {
	if (!pattern[0])
		return loader_fail_value(l, "readiness.pattern", "must not be empty", pattern);
	/* REG_NEWLINE: a line is matched on its own, so ^ and $ mean its start and end. */
	int rc = regcomp(&c->readiness_regex, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
	if (rc != 0) {
		char why[160] = "invalid regular expression: ";
		size_t m = strlen(why);
		regerror(rc, &c->readiness_regex, why + m, sizeof(why) - m);
		return loader_fail_value(l, "readiness.pattern", why, pattern);
	}
	if (!(c->readiness_pattern = strdup(pattern))) {
		regfree(&c->readiness_regex);
		return -ENOMEM;
	}
	return 0;
}

/* confirm_command: reload.confirm-command is in the file. */
static int load_readiness(struct loader *l, const struct raw_readiness *rd, bool confirm_command, struct config *c) {
	int r, e = (int)c->readiness_type;
	if ((r = get_enum(l, "readiness.type", rd->type, readiness_names, _READINESS_MAX, &e)) < 0 ||
	    (r = get_duration(l, "readiness.timeout", rd->timeout, true, &c->readiness_timeout_usec)) < 0 ||
	    (r = get_duration(l, "readiness.interval", rd->interval, true, &c->readiness_interval_usec)) < 0 ||
	    (r = get_duration(l, "readiness.delay", rd->delay, false, &c->readiness_delay_usec)) < 0)
		return r;
	enum readiness_type t = c->readiness_type = (enum readiness_type)e;
	if ((r = check_readiness_keys(l, rd, confirm_command, t)) < 0)
		return r;

	if (t == READINESS_EXEC &&
	    (r = get_command(l, "readiness.command", rd->command, rd->n_command, &c->readiness_command)) < 0)
		return r;
	if (rd->pid_file && rd->pid_file[0] != '/')
		return loader_fail_value(l, "readiness.pid-file", "must be an absolute path", rd->pid_file);
	if ((r = get_string(l, "readiness.pid-file", rd->pid_file, &c->readiness_pid_file)) < 0)
		return r;
	e = (int)c->readiness_stream;
	if ((r = get_enum(l, "readiness.stream", rd->stream, stream_names, _STREAM_MAX, &e)) < 0)
		return r;
	c->readiness_stream = (enum output_stream)e;
	if (rd->pattern)
		return load_readiness_pattern(l, rd->pattern, c);
	return 0;
}

/* reload.confirm needs an old generation that keeps serving while the new one proves itself: with restart the old
 * one is gone before the new one starts, with signal there is only one, so there is nothing to roll back to. */
static int load_confirm(struct loader *l, const struct raw_reload *rl, struct config *c) {
	int r;
	if ((r = get_duration(l, "reload.confirm", rl->confirm, false, &c->reload_confirm_usec)) < 0)
		return r;
	if (c->reload_confirm_usec > 0 && c->reload_strategy != RELOAD_REPLACE) {
		char why[160];
		snprintf(why, sizeof(why),
			 "needs reload.strategy replace, not %s (with %s no old generation is left to roll back to)",
			 reload_names[c->reload_strategy], reload_names[c->reload_strategy]);
		return loader_fail_value(l, "reload.confirm", why, rl->confirm);
	}
	if (!list_given(l, "reload.confirm-command", rl->confirm_command))
		return 0;
	if (c->reload_confirm_usec == 0)
		return loader_fail(l, "reload.confirm-command", loader_find(l, "reload.confirm-command"),
				   "needs reload.confirm longer than 0s (it runs during that window)");
	return get_command(l, "reload.confirm-command", rl->confirm_command, rl->n_confirm_command,
			   &c->confirm_command);
}

static int load_reload(struct loader *l, const struct raw_reload *rl, struct config *c) {
	int r, e = (int)c->reload_strategy;
	if ((r = get_enum(l, "reload.strategy", rl->strategy, reload_names, _RELOAD_STRATEGY_MAX, &e)) < 0 ||
	    (r = get_signal(l, "reload.signal", rl->signal, &c->reload_signal)) < 0)
		return r;
	c->reload_strategy = (enum reload_strategy)e;
	return load_confirm(l, rl, c);
}

static int load_stop(struct loader *l, const struct raw_stop *st, struct config *c) {
	int r;
	if ((r = get_signal(l, "stop.signal", st->signal, &c->stop_signal)) < 0 ||
	    (r = get_duration(l, "stop.timeout", st->timeout, true, &c->stop_timeout_usec)) < 0 ||
	    (r = get_duration(l, "stop.drain", st->drain, false, &c->stop_drain_usec)) < 0)
		return r;
	if (c->stop_drain_usec > 0 && !c->preload)
		return loader_fail_value(l, "stop.drain",
					 "needs program.preload: true (the shim stops the old generation accepting)",
					 st->drain);
	return 0;
}

static int load_restart(struct loader *l, const struct raw_restart *rs, struct config *c) {
	int r, e = (int)c->restart_policy;
	/* A zero delay would double to zero forever: a program that dies at once would be restarted in a loop. */
	if ((r = get_enum(l, "restart.policy", rs->policy, restart_names, _RESTART_POLICY_MAX, &e)) < 0 ||
	    (r = get_duration(l, "restart.delay", rs->delay, true, &c->restart_delay_usec)) < 0 ||
	    (r = get_duration(l, "restart.max-delay", rs->max_delay, true, &c->restart_max_delay_usec)) < 0)
		return r;
	c->restart_policy = (enum restart_policy)e;
	if (c->restart_delay_usec > c->restart_max_delay_usec) {
		char why[64], buf[32];
		snprintf(why, sizeof(why), "longer than restart.max-delay (%s)",
			 format_duration(c->restart_max_delay_usec, buf));
		const char *key = rs->delay ? "restart.delay" : "restart.max-delay";
		return loader_fail_value(l, key, why, rs->delay ? rs->delay : rs->max_delay);
	}
	return 0;
}

static int load_notify_socket(struct loader *l, const char *s, struct config *c) {
	if (!streq(s, "auto") && !streq(s, "abstract") && *s != '/')
		return loader_fail_value(l, "notify.socket", "must be auto, abstract or an absolute path", s);
	if (*s == '/' && strlen(s) >= ADDR_UNIX_PATH_MAX)
		return loader_fail_value(l, "notify.socket", "too long for a unix socket path (max 107 bytes)", s);
	if (*s == '/' && s[strlen(s) - 1] == '/')
		return loader_fail_value(l, "notify.socket", "must name the socket file, not a directory", s);
	if (!streq(s, "auto") && !(c->notify_socket = strdup(s)))
		return -ENOMEM;
	return 0;
}

static int load_control_socket(struct loader *l, const char *s, struct config *c) {
	if (*s && *s != '/')
		return loader_fail_value(l, "control.socket", "must be an absolute path, or \"\" to disable the socket",
					 s);
	if (strlen(s) >= ADDR_UNIX_PATH_MAX)
		return loader_fail_value(l, "control.socket", "too long for a unix socket path (max 107 bytes)", s);
	if (!(c->control_socket = strdup(s)))
		return -ENOMEM;
	return 0;
}

/* The sections after listeners and program, in the file's order. */
static int load_sections(struct loader *l, const struct raw_config *raw, struct config *c) {
	int r;

	bool confirm_command =
		list_given(l, "reload.confirm-command", raw->reload ? raw->reload->confirm_command : NULL);
	if ((raw->readiness && (r = load_readiness(l, raw->readiness, confirm_command, c)) < 0) ||
	    (raw->reload && (r = load_reload(l, raw->reload, c)) < 0) ||
	    (raw->stop && (r = load_stop(l, raw->stop, c)) < 0) ||
	    (raw->restart && (r = load_restart(l, raw->restart, c)) < 0))
		return r;
	if (raw->systemd) {
		int e = (int)c->fd_store;
		if ((r = get_enum(l, "systemd.fd-store", raw->systemd->fd_store, fd_store_names, _FD_STORE_MAX, &e)) <
		    0)
			return r;
		c->fd_store = (enum fd_store_mode)e;
	}
	if ((raw->notify && raw->notify->socket && (r = load_notify_socket(l, raw->notify->socket, c)) < 0) ||
	    (raw->control && raw->control->socket && (r = load_control_socket(l, raw->control->socket, c)) < 0))
		return r;
	return 0;
}

int config_from_raw(struct loader *l, const struct raw_config *raw, struct config *c) {
	int r;

	if (raw->n_listeners > 0) {
		c->listeners = calloc(raw->n_listeners, sizeof(*c->listeners));
		if (!c->listeners)
			return -ENOMEM;
		c->n_listeners = raw->n_listeners;
		for (size_t i = 0; i < c->n_listeners; i++)
			config_listener_defaults(&c->listeners[i]);
		for (size_t i = 0; i < c->n_listeners; i++)
			if ((r = load_listener(l, i, &raw->listeners[i], &c->listeners[i])) < 0)
				return r;
		if ((r = check_unique(l, c->listeners, c->n_listeners)) < 0)
			return r;
	}
	if (raw->program && (r = load_program(l, raw->program, c)) < 0)
		return r;
	return load_sections(l, raw, c);
}

struct config *config_ref(struct config *c) {
	c->refs++;
	return c;
}

void config_free(struct config *c) {
	if (!c || --c->refs > 0)
		return;
	for (size_t i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].owner);
		free(c->listeners[i].group);
	}
	free(c->listeners);
	free(c->path);
	strv_free(c->sets);
	strv_free(c->command);
	strv_free(c->environment);
	free(c->working_directory);
	free(c->user);
	free(c->group);
	free(c->control_socket);
	free(c->notify_socket);
	free(c->stdin_listener);
	strv_free(c->readiness_command);
	strv_free(c->confirm_command);
	if (c->readiness_pattern)
		regfree(&c->readiness_regex);
	free(c->readiness_pattern);
	free(c->readiness_pid_file);
	free(c);
}
