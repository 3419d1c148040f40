/* Fuzzes config_load(): any bytes as the YAML file must give a validated config or an error text, never a crash or a
 * leak. A config that loads must survive its own normalized print: config_print() promises YAML that config_load()
 * accepts again, so the print is loaded back and compared with the original, field by field and as text. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config-internal.h"
#include "config.h"
#include "log.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two memory files, made once: config_load() takes a path, and /proc/self/fd/N opens the file afresh at offset 0. */
static int input_fd = -1, print_fd = -1;
static char input_path[64], print_path[64];

static int open_memfd(const char *name, char path[static 64]) {
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

static void set_contents(int fd, const void *data, size_t size) {
	if (ftruncate(fd, 0) < 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("memfd write");
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	log_max_level = -1; /* config_load() does not log, but nothing should slow the loop down if it ever does */
	input_fd = open_memfd("fuzz-config-input", input_path);
	print_fd = open_memfd("fuzz-config-print", print_path);
	return 0;
}

static bool strv_eq(char *const *a, char *const *b) {
	if (!a || !b)
		return a == b;
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return !*a && !*b;
}

static bool str_eq(const char *a, const char *b) {
	return a && b ? strcmp(a, b) == 0 : a == b;
}

static bool listener_eq(const struct listener_config *a, const struct listener_config *b) {
	return str_eq(a->name, b->name) && addr_equal(&a->address, &b->address) && a->backlog == b->backlog &&
	       a->reuse_port == b->reuse_port && a->reuse_address == b->reuse_address && a->ipv6_only == b->ipv6_only &&
	       a->freebind == b->freebind && a->transparent == b->transparent && a->keepalive == b->keepalive &&
	       a->nodelay == b->nodelay && a->defer_accept_usec == b->defer_accept_usec && a->fastopen == b->fastopen &&
	       a->receive_buffer == b->receive_buffer && a->send_buffer == b->send_buffer && a->mode == b->mode &&
	       str_eq(a->owner, b->owner) && str_eq(a->group, b->group) && a->inherit == b->inherit;
}

static void fail(const char *what, const char *printed, const char *error) {
	fprintf(stderr, "fuzz-config: %s\n--- the normalized print ---\n%s\n--- error ---\n%s\n", what,
		strempty(printed), strempty(error));
	abort();
}

/* The normalized print without the path-derived control socket comment: the two configs come from different files. */
static char *print(struct config *c) {
	char *text = NULL;
	size_t len = 0;
	char *path = c->path;

	FILE *f = open_memstream(&text, &len);
	if (!f)
		abort();
	c->path = NULL;
	config_print(c, f);
	c->path = path;
	if (fclose(f) != 0)
		abort();
	return text;
}

/* The quick load (libcyaml alone, config-yaml.c) gives what the full load gives, or gives way to it: loaded the full
 * way, the same input must give the same config (its print) or the same error. r, c and error: the load as done. */
static void check_quick(int r, struct config *c, const char *error) {
	struct config *full = NULL;
	char *full_error = NULL;
	config_quick_load = false;
	int rf = config_load(input_path, &full, &full_error);
	config_quick_load = true;
	if (r == -ENOMEM || rf == -ENOMEM) {
		config_free(full);
		free(full_error);
		return;
	}
	if ((r < 0) != (rf < 0))
		fail(r < 0 ? "the full load accepts what the quick one rejects"
			   : "the quick load accepts what the full one rejects",
		     NULL, r < 0 ? error : full_error);
	if (r < 0 && !str_eq(error, full_error))
		fail("the quick and the full load give different errors", error, full_error);
	if (r == 0) {
		char *a = print(c), *b = print(full);
		if (strcmp(a, b) != 0)
			fail("the quick and the full load give different configs", a, b);
		free(a);
		free(b);
	}
	config_free(full);
	free(full_error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct config *c = NULL, *again = NULL;
	char *error = NULL;

	set_contents(input_fd, data, size);
	int r = config_load(input_path, &c, &error);
	check_quick(r, c, error);
	if (r < 0) {
		/* The contract: a failure always comes with a message, unless memory ran out. */
		if (!error && r != -ENOMEM)
			fail("config_load() failed without an error message", NULL, NULL);
		/* "FILE: key 'listeners[0].address': ...": the message names the file first. */
		if (error && (strncmp(error, input_path, strlen(input_path)) != 0 ||
			      strncmp(error + strlen(input_path), ": ", 2) != 0))
			fail("config_load()'s error message does not start with the file name", NULL, error);
		free(error);
		return 0;
	}
	if (error)
		fail("config_load() succeeded but left an error message", NULL, error);

	char *printed = print(c);
	set_contents(print_fd, printed, strlen(printed));
	r = config_load(print_path, &again, &error);
	if (r < 0)
		fail("config_load() rejects config_print()'s output", printed, error);

	if (again->n_listeners != c->n_listeners)
		fail("n_listeners differs after the round trip", printed, NULL);
	for (size_t i = 0; i < c->n_listeners; i++)
		if (!listener_eq(&c->listeners[i], &again->listeners[i]))
			fail("a listener differs after the round trip", printed, NULL);
	if (!strv_eq(c->command, again->command))
		fail("program.command differs after the round trip", printed, NULL);
	if (!strv_eq(c->environment, again->environment) || !str_eq(c->working_directory, again->working_directory) ||
	    !str_eq(c->user, again->user) || !str_eq(c->group, again->group))
		fail("the program section differs after the round trip", printed, NULL);
	if (c->readiness_type != again->readiness_type || c->readiness_timeout_usec != again->readiness_timeout_usec ||
	    c->reload_strategy != again->reload_strategy || c->reload_signal != again->reload_signal ||
	    c->stop_signal != again->stop_signal || c->stop_timeout_usec != again->stop_timeout_usec ||
	    c->restart_policy != again->restart_policy || c->restart_delay_usec != again->restart_delay_usec ||
	    c->restart_max_delay_usec != again->restart_max_delay_usec ||
	    !str_eq(c->control_socket, again->control_socket))
		fail("a section differs after the round trip", printed, NULL);

	/* The print is normalized: printing the reloaded config gives the same text. */
	char *printed_again = print(again);
	if (strcmp(printed, printed_again) != 0)
		fail("config_print() is not stable across a round trip", printed, printed_again);

	/* No --listen, no command: fine when the file has listeners and a command, an error message otherwise. */
	r = config_apply_cli(c, NULL, NULL, &error);
	if (r < 0) {
		if (!error && r != -ENOMEM)
			fail("config_apply_cli() failed without an error message", printed, NULL);
		free(error);
	}

	free(printed_again);
	free(printed);
	config_free(again);
	config_free(c);
	return 0;
}
