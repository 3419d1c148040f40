/* What the config family shares above config-loader.h: the raw strings a load reads (config-yaml.c's schema), and
 * config.c's validation and defaults for config-yaml.c and config-cli.c. Bottom up, the family is config-loader.c,
 * config.c, config-yaml.c and config-print.c, config-cli.c: each calls only the ones before it. Nothing here logs:
 * every error is a message for the caller (config.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config-loader.h"
#include "config.h"

/* What libcyaml loads: every scalar is a string, parsed by util.h's strict parsers in config.c (libcyaml 1.3.1 reads
 * "80abc" as 80, "010" as octal and "flase" as true). NULL: the key is not in the file. */
struct raw_listener {
	char *name, *address, *backlog, *reuse_port, *reuse_address, *ipv6_only, *freebind, *transparent, *keepalive,
		*nodelay, *defer_accept, *fastopen, *receive_buffer, *send_buffer, *mode, *owner, *group, *inherit;
};
struct raw_program {
	char **command;
	unsigned n_command;
	char *working_directory, *user, *group, *watchdog, *fd_store, *stdin_, *preload, *cgroup;
	char **compat;
	unsigned n_compat;
};
struct raw_readiness {
	char *type, *timeout, *interval, *pattern, *stream, *pid_file, *delay;
	char **command;
	unsigned n_command;
};
struct raw_reload {
	char *strategy, *signal, *confirm;
	char **confirm_command;
	unsigned n_confirm_command;
};
struct raw_stop {
	char *signal, *timeout, *drain;
};
struct raw_restart {
	char *policy, *delay, *max_delay;
};
struct raw_control {
	char *socket;
};
struct raw_systemd {
	char *fd_store;
};
struct raw_notify {
	char *socket;
};
struct raw_config {
	struct raw_listener *listeners;
	unsigned n_listeners;
	struct raw_program *program;
	struct raw_readiness *readiness;
	struct raw_reload *reload;
	struct raw_stop *stop;
	struct raw_restart *restart;
	struct raw_control *control;
	struct raw_systemd *systemd;
	struct raw_notify *notify;
};

/* ---- config.c ---- */

/* Step 4 of a load (config-yaml.c): validates the raw strings and converts them into c, which has its defaults. */
int config_from_raw(struct loader *l, const struct raw_config *raw, struct config *c);

/* The defaults of a config file; those of quick use (no file), which differ in readiness.type (none) and
 * restart.policy (never). */
void config_defaults(struct config *c);
void config_quick_use_defaults(struct config *c);
void config_listener_defaults(struct listener_config *lc);

/* ---- config-yaml.c ---- */

/* Loads a file by libcyaml alone when its bytes allow (config-yaml.c, "The quick load"); true but in the tests and the
 * fuzzer that compare it with the full load. */
extern bool config_quick_load;
/* How many loads were quick, for the same tests. */
extern unsigned config_quick_loads;

/* The scalar at key path in the YAML file at path, read leniently: the file need not be a valid config. Returns 0
 * and a malloc'd copy, -ENOENT when the key is absent or not a scalar or the file is not YAML, or negative errno. */
int config_yaml_peek(const char *path, const char *key, char **ret);

/* ---- config-peek.c ---- */

/* config_peek_control_socket()'s reading of a file's text by hand: 0 and *ret, -ENOENT when there is no
 * control.socket, or -EAGAIN when only libyaml's reading of the whole document can tell. */
int config_peek_text(const char *text, size_t len, char **ret);
