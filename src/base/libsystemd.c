/* libsystemd, loaded when used (libsystemd.h). */
#include "libsystemd.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

/* The soname libsystemd-dev links against: the ABI these prototypes describe. */
#define LIBSYSTEMD_SONAME "libsystemd.so.0"

static struct {
	int state; /* 0: not tried yet, 1: loaded, or the negative errno of the failed load */
	char error[256];
	__typeof__(sd_notify) *notify;
	__typeof__(sd_pid_notify_with_fds) *pid_notify_with_fds;
	__typeof__(sd_listen_fds_with_names) *listen_fds_with_names;
	__typeof__(sd_watchdog_enabled) *watchdog_enabled;
} lib;

static const char *first_set(const char *const *vars, size_t n) {
	for (size_t i = 0; i < n; i++) {
		const char *e = getenv(vars[i]);
		if (e && *e)
			return vars[i];
	}
	return NULL;
}

const char *libsystemd_wanted(void) {
	static const char *const vars[] = {"NOTIFY_SOCKET", "LISTEN_FDS", "WATCHDOG_USEC"};
	return first_set(vars, sizeof(vars) / sizeof(vars[0]));
}

const char *libsystemd_wanted_before_start(void) {
	static const char *const vars[] = {"LISTEN_FDS", "WATCHDOG_USEC"};
	return first_set(vars, sizeof(vars) / sizeof(vars[0]));
}

/* ISO C has no conversion from dlsym()'s void * to a function pointer; POSIX guarantees the representation, and
 * writing through a void ** is the form dlsym(3) shows. */
static int resolve(void *handle, const char *name, void *ret_fn) {
	void *fn = dlsym(handle, name);
	if (!fn)
		return -1;
	*(void **)ret_fn = fn;
	return 0;
}

int libsystemd_load(void) {
	if (lib.state)
		return lib.state < 0 ? lib.state : 0;
	/* RTLD_NOW: a missing symbol shows here, once, not at the first call of it in the middle of a reload. */
	void *h = dlopen(LIBSYSTEMD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(lib.error, sizeof(lib.error), "%s", dlerror());
		return lib.state = -ELIBACC;
	}
	if (resolve(h, "sd_notify", &lib.notify) < 0 ||
	    resolve(h, "sd_pid_notify_with_fds", &lib.pid_notify_with_fds) < 0 ||
	    resolve(h, "sd_listen_fds_with_names", &lib.listen_fds_with_names) < 0 ||
	    resolve(h, "sd_watchdog_enabled", &lib.watchdog_enabled) < 0) {
		snprintf(lib.error, sizeof(lib.error), "%s", dlerror());
		dlclose(h);
		return lib.state = -ELIBBAD;
	}
	/* The handle stays open for the process's life: the pointers above point into it. */
	return lib.state = 1, 0;
}

const char *libsystemd_error(void) {
	return lib.error;
}

int libsystemd_notify(const char *text) {
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	int r = libsystemd_load();
	return r < 0 ? r : lib.notify(0, text);
}

int libsystemd_notify_with_fds(const char *text, const int *fds, unsigned n_fds) {
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	int r = libsystemd_load();
	return r < 0 ? r : lib.pid_notify_with_fds(0, 0, text, fds, n_fds);
}

int libsystemd_listen_fds_with_names(char ***ret_names) {
	if (!getenv("LISTEN_PID") || !getenv("LISTEN_FDS")) {
		/* What sd_listen_fds_with_names(1, ...) does then: nothing passed, and no stale variable left behind
		 * for the children. */
		(void)unsetenv("LISTEN_PID");
		(void)unsetenv("LISTEN_FDS");
		(void)unsetenv("LISTEN_FDNAMES");
		*ret_names = NULL;
		return 0;
	}
	int r = libsystemd_load();
	return r < 0 ? r : lib.listen_fds_with_names(1, ret_names);
}

int libsystemd_watchdog_enabled(uint64_t *ret_usec) {
	if (!getenv("WATCHDOG_USEC"))
		return 0;
	int r = libsystemd_load();
	return r < 0 ? r : lib.watchdog_enabled(0, ret_usec);
}
