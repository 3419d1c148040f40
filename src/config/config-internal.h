/* What config-yaml.c (the YAML document, the libcyaml schema, error messages with their line), config.c (defaults,
 * validation and conversion into struct config) and config-cli.c (the command line) share. Nothing here logs: every
 * error is a message for the caller (config.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

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
	char *strategy, *signal;
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
};

/* One load of one file: the libyaml document (kept to find the line of any key path) and the first error. */
struct loader {
	const char *path; /* NULL: no file (quick use) */
	char *const *sets; /* --set KEY=VALUE, applied over the file (may be NULL) */
	yaml_document_t doc;
	bool have_doc;
	char *error; /* the first error wins */
	char cyaml_log[4096];
	size_t cyaml_log_len;
};

/* Key paths ("listeners[1].address") fit in this many bytes. */
#define PATH_BUF 512

/* Sets l's error to "FILE: key 'KEY': WHY (line N)" unless it has one already; key may be NULL (a file-level error),
 * node may be NULL (no line known). A key that a --set option gave makes "--set KEY=VALUE: WHY" instead: the user
 * wrote the option, not a line of the file. Returns -EINVAL, or -ENOMEM when the message cannot be made. */
int loader_fail(struct loader *l, const char *key, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "FILE: key 'KEY': WHY: 'VALUE' (line N)", the line being that of KEY's value in the file; "--set KEY=VALUE: WHY"
 * when an option gave it. */
int loader_fail_value(struct loader *l, const char *key, const char *why, const char *value);
/* The node at a key path such as "listeners[1].address"; NULL when it is not in the file. */
yaml_node_t *loader_find(struct loader *l, const char *path);

/* program.environment, read from the document (a free-form mapping that the schema cannot describe): NULL-terminated
 * "NAME=value" in file order into *ret (NULL when absent or empty). */
int config_yaml_environment(struct loader *l, char ***ret);
/* The --set option (its whole KEY=VALUE) that gives key in the end (the last one of that key), or NULL. */
const char *config_set_of(char *const *sets, const char *key);
/* Adds the variables of the --set program.environment.NAME=VALUE options of l to *env (replacing one of the same
 * name), validated as the file's. */
int config_yaml_set_environment(struct loader *l, char ***env);

/* The scalar at key path in the YAML file at path, read leniently: the file need not be a valid config. Returns 0
 * and a malloc'd copy, -ENOENT when the key is absent or not a scalar or the file is not YAML, or negative errno. */
int config_yaml_peek(const char *path, const char *key, char **ret);

/* Step 4 of a load (config-yaml.c): validates the raw strings and converts them into c, which has its defaults. */
int config_from_raw(struct loader *l, const struct raw_config *raw, struct config *c);

/* The defaults of a config file; those of quick use (no file), which differ in readiness.type (none) and
 * restart.policy (never). */
void config_defaults(struct config *c);
void config_quick_use_defaults(struct config *c);
void config_listener_defaults(struct listener_config *lc);
