/* The configuration (baton.yaml(5)): the YAML schema and loading (config-yaml.c), strict validation and defaults
 * (config.c), the command-line form --listen, -- COMMAND (config-cli.c) and the normalized print of `baton check`
 * (config-print.c). Loading is pure: it reads the file and builds a struct, touching no global state, so reload can
 * load into a fresh struct and swap only on success. Does not log: errors are messages for the caller. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <regex.h>
#include <stdio.h>
#include <sys/types.h>

#include "address.h"

#define LISTENER_NAME_MAX 255

enum inherit_mode { INHERIT_AUTO, INHERIT_REQUIRED, INHERIT_NEVER, _INHERIT_MAX };
/* How baton learns that a generation is ready (baton.yaml(5) READINESS explains which to choose). */
enum readiness_type {
	READINESS_NOTIFY, /* READY=1 on NOTIFY_SOCKET (from the program, or from the preload shim) */
	READINESS_EXEC, /* readiness.command exits 0 */
	READINESS_LOG, /* readiness.pattern matches a line of the program's output */
	READINESS_PIDFILE, /* readiness.pid-file names a live process of the generation (which baton then follows) */
	READINESS_DELAY, /* readiness.delay after the start */
	READINESS_NONE, /* at once */
	_READINESS_MAX,
};
/* readiness.stream: the output that readiness.pattern is matched against. */
enum output_stream { STREAM_BOTH, STREAM_STDOUT, STREAM_STDERR, _STREAM_MAX };
enum reload_strategy { RELOAD_REPLACE, RELOAD_RESTART, RELOAD_SIGNAL, _RELOAD_STRATEGY_MAX };
enum restart_policy { RESTART_ON_FAILURE, RESTART_ALWAYS, RESTART_NEVER, _RESTART_POLICY_MAX };
/* systemd.fd-store: auto (when systemd announces a store in $FDSTORE), true, false. */
enum fd_store_mode { FD_STORE_AUTO, FD_STORE_YES, FD_STORE_NO, _FD_STORE_MAX };
/* program.stdin: baton's own standard input (the default, as under tini or dumb-init), /dev/null, or a listener. */
enum stdin_mode { STDIN_INHERIT, STDIN_NULL, STDIN_LISTENER, _STDIN_MAX };
/* program.cgroup: a cgroup per generation where baton can create them (auto), or else a start error (required), or
 * never (the process-group and descendant tracking of the fallback). */
enum cgroup_mode { CGROUP_AUTO, CGROUP_REQUIRED, CGROUP_NEVER, _CGROUP_MODE_MAX };

struct listener_config {
	char *name;
	struct address address;
	int backlog; /* default SOMAXCONN */
	bool reuse_port; /* default false */
	bool reuse_address; /* default true */
	int ipv6_only; /* -1 unset (kernel default), 0, 1 */
	bool freebind, transparent, keepalive, nodelay;
	uint64_t defer_accept_usec; /* 0 = off */
	uint32_t fastopen; /* 0 = off */
	uint32_t receive_buffer, send_buffer; /* 0 = default */
	int mode; /* unix path sockets: -1 unset, else 0-07777 */
	char *owner, *group; /* unix path sockets: NULL unset */
	enum inherit_mode inherit;
};

struct config {
	char *path; /* the file it came from; NULL for a command-line-only config */
	char **sets; /* the --set KEY=VALUE options applied over the file or the defaults, for messages; may be NULL */

	struct listener_config *listeners;
	size_t n_listeners;

	char **command; /* NULL-terminated; NULL when the file has no program.command */
	char **environment; /* NULL-terminated "KEY=value" in file order; may be NULL */
	char *working_directory;
	char *user, *group;
	uint64_t program_watchdog_usec; /* program.watchdog: WATCHDOG=1 needed at least this often; 0 = off */
	bool program_fd_store; /* program.fd-store: relay the program's FDSTORE=1 with its fds */
	enum stdin_mode stdin_mode; /* program.stdin: default inherit */
	enum cgroup_mode cgroup_mode; /* program.cgroup: default auto */
	char *stdin_listener; /* STDIN_LISTENER: the listener also placed at fd 0 (inetd "wait"); NULL otherwise */
	bool preload; /* program.preload: LD_PRELOAD libbaton-preload.so, which maps the program's bind() */
	bool compat_server_starter; /* program.compat has server-starter: SERVER_STARTER_PORT, _GENERATION */
	bool compat_einhorn; /* program.compat has einhorn: EINHORN_FD_COUNT, EINHORN_FD_<n> */

	enum readiness_type readiness_type;
	uint64_t readiness_timeout_usec; /* default 60s */
	char **readiness_command; /* exec: the probe, NULL-terminated; NULL for other types */
	uint64_t readiness_interval_usec; /* exec, pidfile: time between checks; default 250ms */
	char *readiness_pattern; /* log: the POSIX extended regular expression as written */
	regex_t readiness_regex; /* log: compiled (REG_EXTENDED | REG_NOSUB); valid when readiness_pattern is set */
	enum output_stream readiness_stream; /* log: default both */
	char *readiness_pid_file; /* pidfile: absolute path */
	uint64_t readiness_delay_usec; /* delay */

	enum reload_strategy reload_strategy;
	int reload_signal; /* default SIGHUP */
	/* reload.confirm: replace only; after the new generation is ready the old one keeps serving this long, and
	 * the reload commits at its end or rolls back if the new one fails within it; 0 = commit at once. */
	uint64_t reload_confirm_usec;
	char **confirm_command; /* reload.confirm-command: run every readiness.interval during the window; or NULL */

	int stop_signal; /* default SIGTERM */
	uint64_t stop_timeout_usec; /* default 30s */
	uint64_t stop_drain_usec; /* program.preload: the old generation stops accepting this long before stop.signal */

	enum restart_policy restart_policy; /* default on-failure; never in quick use */
	uint64_t restart_delay_usec; /* default 100ms */
	uint64_t restart_max_delay_usec; /* default 30s */

	enum fd_store_mode fd_store; /* systemd.fd-store: keep the listening sockets in systemd's fd store */

	/* notify.socket: NULL for auto (a path in baton's runtime directory), "abstract", or an absolute path. Read at
	 * start only: the socket stays what it was on reload and upgrade. */
	char *notify_socket;

	/* control.socket as written: NULL when absent (a default applies, see config_control_socket()), "" disabled. */
	char *control_socket;

	/* What it was loaded from: a hash of the file's bytes and the --set options, and the file's length
	 * (config_reload()). 0 and 0 for a config not loaded by config_load_set(). */
	uint64_t source_hash;
	size_t source_len;
	unsigned refs; /* config_free() frees it when the last reference goes: config_ref(), config_reload() */
};

/* Errors are returned as text for the caller to print: "FILE: key 'listeners[0].address': port out of range
 * 1-65535: '70000' (line 4)". */

/* Loads and validates path. On success *ret is a config with every default filled in (command may still be NULL:
 * it can come from the command line). On failure returns negative errno and *ret_error is a malloc'd message. */
int config_load(const char *path, struct config **ret, char **ret_error);

/* As config_load(), with the --set KEY=VALUE options sets (NULL-terminated, may be NULL) applied over the file, in
 * order (the last of one key wins), and validated with it exactly as if the file said so; an error about a value
 * that an option set names the option ("--set stop.timeout=5: ..."), not the file. path NULL: no file, the
 * defaults of quick use (config_new_default()) instead. The sets must have passed config_set_check(). */
int config_load_set(const char *path, char *const *sets, struct config **ret, char **ret_error);

/* As config_load_set(), for a reload of the running config current (may be NULL): when the file's bytes and the
 * sets are those current was loaded from, nothing is parsed again, *ret is current with one more reference (shared:
 * neither changes it, config_apply_cli() included), and 1 is returned (a reload of an unchanged file of 1,000 listeners
 * spent most of baton's own time parsing it: issue 23). The config is a function of those bytes and sets alone (nothing
 * in it is read from anywhere else), so the result is the same. 0 after a load, or negative errno with *ret_error. */
int config_reload(const char *path, char *const *sets, struct config *current, struct config **ret, char **ret_error);

/* One more reference to c, for config_free() to drop. */
struct config *config_ref(struct config *c);

/* Loads the text of config_print() (len bytes) back into the config it was printed from: path and sets are what
 * that config was loaded with (for messages and the control socket's default), applied already. For the state
 * `baton upgrade` hands over. */
int config_load_text(const char *text, size_t len, const char *path, char *const *sets, struct config **ret,
		     char **ret_error);

/* The form of a --set option, KEY=VALUE with a non-empty KEY (the key and the value are checked when loaded: they
 * depend on the file). Pure: returns 0, or -EINVAL with *ret_why a static reason. */
int config_set_check(const char *arg, const char **ret_why);

/* An empty config with every default of quick use (no file): as a file's, but readiness.type none, so that any
 * program works without sending READY=1 (as systemd's Type=simple), and restart.policy never, so that baton exits
 * with the program (as tini, and systemd's Restart=no); for `baton run --listen ... -- COMMAND`. */
int config_new_default(struct config **ret);

/* Merges the command-line listeners ("NAME=ADDRESS") and command into c, and checks the result is runnable
 * (a non-empty command; no duplicate listener names or addresses). With a file config, listens/command are an error
 * when the file has listeners/a command already. On failure *ret_error is a malloc'd message and c is unchanged. */
int config_apply_cli(struct config *c, char *const *listens, char *const *command, char **ret_error);
/* As config_apply_cli(), but a config that still has no command is accepted: `baton check` prints it with a note. */
int config_merge_cli(struct config *c, char *const *listens, char *const *command, char **ret_error);

void config_free(struct config *c);
static inline void config_freep(struct config **c) {
	config_free(*c);
}

/* Writes the normalized config as YAML (every key, defaults included) that config_load accepts again. */
void config_print(const struct config *c, FILE *f);

/* The control socket path for a config file at path (NULL: no file) whose control.socket is control_socket (NULL:
 * absent, "": disabled): control_socket when set; otherwise, with a file, a path derived from the file's absolute
 * path under /run/baton/ (root) or $XDG_RUNTIME_DIR/baton/ (baton.yaml(5) CONTROL); NULL when disabled or when there
 * is no file and no control.socket. Returns a malloc'd string in *ret (or NULL) and 0, or -ENOMEM. */
int config_control_socket_of(const char *path, const char *control_socket, char **ret);
/* config_control_socket_of(c->path, c->control_socket, ret). */
int config_control_socket(const struct config *c, char **ret);

/* control.socket as written in path, read leniently: the file may be an invalid config (being fixed while baton runs
 * the old one) as long as it is YAML. Returns 0 and a malloc'd string ("" when disabled), -ENOENT when the key is
 * absent or the file is not YAML, or another negative errno. For a valid config it is what config_load() gives
 * c->control_socket, without loading the rest: its cost does not grow with the listeners (config-peek.c). */
int config_peek_control_socket(const char *path, char **ret);

/* A listener name is 1-255 bytes of [A-Za-z0-9._-]. */
bool config_name_valid(const char *name);

const char *inherit_mode_to_string(enum inherit_mode m);
const char *readiness_type_to_string(enum readiness_type t);
const char *reload_strategy_to_string(enum reload_strategy s);
const char *restart_policy_to_string(enum restart_policy p);
const char *fd_store_mode_to_string(enum fd_store_mode m);
const char *output_stream_to_string(enum output_stream s);
const char *stdin_mode_to_string(enum stdin_mode m); /* "inherit", "/dev/null", "listener" */
const char *cgroup_mode_to_string(enum cgroup_mode m); /* "auto", "required", "never" */
