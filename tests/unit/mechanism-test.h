/* For the unit tests of the mechanisms that start children (generations, readiness): the set-up baton's own process
 * has (the child subreaper, an event loop), a config loaded from a file as baton loads one, and a polling step for
 * waits with a deadline. */
#pragma once

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "evloop.h"
#include "util.h"

/* Makes the temporary directory dir (a mkdtemp() template) the working directory, the test process the child
 * subreaper (orphans come to it, as to baton), reads RLIMIT_NOFILE and opens loop; bails out on failure. */
static inline void mechanism_test_setup(char *dir, struct evloop *loop, struct rlimit *nofile) {
	sigset_t none;
	sigemptyset(&none);
	if (!mkdtemp(dir) || chdir(dir) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ||
	    getrlimit(RLIMIT_NOFILE, nofile) < 0 || evloop_open(loop, &none) < 0) {
		printf("Bail out! set-up in %s\n", dir);
		exit(1);
	}
}

/* Writes the YAML (printf-style) to path and loads it; bails out of the test when it does not load. */
static inline __attribute__((format(printf, 2, 3))) struct config *config_from_yaml(const char *path, const char *fmt,
										    ...) {
	FILE *f = fopen(path, "w");
	va_list ap;
	va_start(ap, fmt);
	if (f)
		vfprintf(f, fmt, ap);
	va_end(ap);
	if (f)
		fclose(f);
	struct config *c = NULL;
	char *error = NULL;
	if (!f || config_load(path, &c, &error) < 0) {
		printf("Bail out! config %s: %s\n", path, strempty(error));
		exit(1);
	}
	return c;
}

/* One step of a wait that polls (at most 500 of them: 5 s). */
static inline void poll_step(void) {
	nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
}
