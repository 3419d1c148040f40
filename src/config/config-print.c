/* The normalized print of `baton check` (baton(1) COMMANDS): every key of a loaded struct config, defaults included,
 * as YAML that config_load() accepts again. Does not log. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

/* ---- The normalized print ---- */

/* A YAML double-quoted scalar: always safe, whatever the string looks like (yes, 0660, "", :, #...). */
static void print_quoted(FILE *f, const char *s) {
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void print_signal(FILE *f, const char *key, int sig) {
	const char *name = signal_name(sig);
	if (name)
		fprintf(f, "  %s: %s\n", key, name);
	else
		fprintf(f, "  %s: %d\n", key, sig);
}

static const char *yes_no(bool b) {
	return b ? "true" : "false";
}

static void print_listener(FILE *f, const struct listener_config *lc) {
	const struct address *a = &lc->address;
	bool tcp = a->kind == ADDR_TCP, ip = !addr_is_unix(a), unix_path = addr_is_unix(a) && !a->abstract;
	char abuf[ADDR_FORMAT_MAX], dbuf[32];

	/* Only the options that apply to this kind of socket: the others are errors when loaded back. */
	fputs("  - name: ", f);
	print_quoted(f, lc->name);
	fputs("\n    address: ", f);
	print_quoted(f, addr_format(a, abuf));
	fputc('\n', f);
	if (addr_is_stream(a))
		fprintf(f, "    backlog: %d\n", lc->backlog);
	if (ip) {
		fprintf(f, "    reuse-port: %s\n", yes_no(lc->reuse_port));
		if (tcp)
			fprintf(f, "    reuse-address: %s\n", yes_no(lc->reuse_address));
		if (lc->ipv6_only >= 0)
			fprintf(f, "    ipv6-only: %s\n", yes_no(lc->ipv6_only));
		fprintf(f, "    freebind: %s\n", yes_no(lc->freebind));
		fprintf(f, "    transparent: %s\n", yes_no(lc->transparent));
	}
	if (tcp) {
		fprintf(f, "    keepalive: %s\n", yes_no(lc->keepalive));
		fprintf(f, "    nodelay: %s\n", yes_no(lc->nodelay));
		fprintf(f, "    defer-accept: %s\n", format_duration(lc->defer_accept_usec, dbuf));
		fprintf(f, "    fastopen: %" PRIu32 "\n", lc->fastopen);
	}
	fprintf(f, "    receive-buffer: %" PRIu32 "\n", lc->receive_buffer);
	fprintf(f, "    send-buffer: %" PRIu32 "\n", lc->send_buffer);
	if (unix_path && lc->mode >= 0)
		fprintf(f, "    mode: \"%04o\"\n", (unsigned)lc->mode);
	if (unix_path && lc->owner) {
		fputs("    owner: ", f);
		print_quoted(f, lc->owner);
		fputc('\n', f);
	}
	if (unix_path && lc->group) {
		fputs("    group: ", f);
		print_quoted(f, lc->group);
		fputc('\n', f);
	}
	fprintf(f, "    inherit: %s\n", inherit_mode_to_string(lc->inherit));
}

static void print_command(FILE *f, const char *key, char *const *command) {
	fprintf(f, "  %s: [", key);
	for (size_t i = 0; command[i]; i++) {
		if (i > 0)
			fputs(", ", f);
		print_quoted(f, command[i]);
	}
	fputs("]\n", f);
}

static void print_key_string(FILE *f, const char *key, const char *value) {
	if (!value)
		return;
	fprintf(f, "  %s: ", key);
	print_quoted(f, value);
	fputc('\n', f);
}

static void print_listeners(FILE *f, const struct config *c) {
	if (c->n_listeners == 0)
		fputs("listeners: []\n", f);
	else
		fputs("listeners:\n", f);
	for (size_t i = 0; i < c->n_listeners; i++)
		print_listener(f, &c->listeners[i]);
}

static void print_environment(FILE *f, char *const *environment) {
	if (!environment || !environment[0]) {
		fputs("  environment: {}\n", f);
		return;
	}
	fputs("  environment:\n", f);
	for (size_t i = 0; environment[i]; i++) {
		const char *eq = strchr(environment[i], '=');
		_cleanup_free_ char *name = strndup(environment[i], eq ? (size_t)(eq - environment[i]) : 0);
		fputs("    ", f);
		print_quoted(f, strempty(name));
		fputs(": ", f);
		print_quoted(f, eq ? eq + 1 : "");
		fputc('\n', f);
	}
}

static void print_program(FILE *f, const struct config *c) {
	char buf[32];

	fputs("program:\n", f);
	if (c->command && c->command[0])
		print_command(f, "command", c->command);
	print_environment(f, c->environment);
	print_key_string(f, "working-directory", c->working_directory);
	print_key_string(f, "user", c->user);
	print_key_string(f, "group", c->group);
	fprintf(f, "  watchdog: %s\n", format_duration(c->program_watchdog_usec, buf));
	fprintf(f, "  fd-store: %s\n", c->program_fd_store ? "true" : "false");
	if (c->stdin_mode == STDIN_LISTENER)
		print_key_string(f, "stdin", c->stdin_listener);
	else
		fprintf(f, "  stdin: %s\n", c->stdin_mode == STDIN_NULL ? "\"/dev/null\"" : "inherit");
	fprintf(f, "  preload: %s\n", c->preload ? "true" : "false");
	fprintf(f, "  compat: [%s%s%s]\n", c->compat_server_starter ? "server-starter" : "",
		c->compat_server_starter && c->compat_einhorn ? ", " : "", c->compat_einhorn ? "einhorn" : "");
	fprintf(f, "  cgroup: %s\n", cgroup_mode_to_string(c->cgroup_mode));
}

static void print_readiness(FILE *f, const struct config *c) {
	enum readiness_type t = c->readiness_type;
	char buf[32];

	fprintf(f, "readiness:\n  type: %s\n", readiness_type_to_string(t));
	fprintf(f, "  timeout: %s\n", format_duration(c->readiness_timeout_usec, buf));
	if (t == READINESS_EXEC && c->readiness_command)
		print_command(f, "command", c->readiness_command);
	if (t == READINESS_EXEC || t == READINESS_PIDFILE || c->confirm_command)
		fprintf(f, "  interval: %s\n", format_duration(c->readiness_interval_usec, buf));
	if (t == READINESS_LOG) {
		print_key_string(f, "pattern", c->readiness_pattern);
		fprintf(f, "  stream: %s\n", output_stream_to_string(c->readiness_stream));
	}
	print_key_string(f, "pid-file", c->readiness_pid_file);
	if (t == READINESS_DELAY)
		fprintf(f, "  delay: %s\n", format_duration(c->readiness_delay_usec, buf));
}

/* reload:, stop:, restart:, systemd: and notify:, each a few scalar keys. */
static void print_lifecycle(FILE *f, const struct config *c) {
	char buf[32];

	fprintf(f, "reload:\n  strategy: %s\n", reload_strategy_to_string(c->reload_strategy));
	print_signal(f, "signal", c->reload_signal);
	fprintf(f, "  confirm: %s\n", format_duration(c->reload_confirm_usec, buf));
	if (c->confirm_command)
		print_command(f, "confirm-command", c->confirm_command);
	fputs("stop:\n", f);
	print_signal(f, "signal", c->stop_signal);
	fprintf(f, "  timeout: %s\n", format_duration(c->stop_timeout_usec, buf));
	if (c->preload)
		fprintf(f, "  drain: %s\n", format_duration(c->stop_drain_usec, buf));
	fprintf(f, "restart:\n  policy: %s\n", restart_policy_to_string(c->restart_policy));
	fprintf(f, "  delay: %s\n", format_duration(c->restart_delay_usec, buf));
	fprintf(f, "  max-delay: %s\n", format_duration(c->restart_max_delay_usec, buf));
	fprintf(f, "systemd:\n  fd-store: %s\n", fd_store_mode_to_string(c->fd_store));
	fputs("notify:\n", f);
	print_key_string(f, "socket", c->notify_socket ? c->notify_socket : "auto");
}

static void print_control(FILE *f, const struct config *c) {
	if (c->control_socket) {
		fputs("control:\n", f);
		print_key_string(f, "socket", c->control_socket);
		return;
	}
	/* The derived default is shown but not written as the key, so that loading this output back gives the same
	 * config (and the same default, should the file move). */
	_cleanup_free_ char *derived = NULL;
	(void)config_control_socket(c, &derived);
	if (derived)
		fprintf(f, "# control.socket: %s (the default, derived from the config file's path)\n", derived);
	else
		fputs("# control.socket: none (no config file)\n", f);
	fputs("control: {}\n", f);
}

void config_print(const struct config *c, FILE *f) {
	print_listeners(f, c);
	print_program(f, c);
	print_readiness(f, c);
	print_lifecycle(f, c);
	print_control(f, c);
}
