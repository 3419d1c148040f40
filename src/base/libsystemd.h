/* libsystemd, loaded when used. Linked, the library and its dependencies (libgcrypt, liblzma, libzstd, liblz4,
 * libcap...) cost about 144 kB of private memory in every process before a function of it is called; baton needs it
 * only where systemd asks for something: NOTIFY_SOCKET (readiness, status, the fd store), LISTEN_FDS (inherited
 * sockets) or WATCHDOG_USEC. So, as systemd loads its own optional libraries, it is dlopen()ed the first time one of
 * those variables is found set, and its functions are resolved once. In a container without them it is never loaded.
 *
 * Each wrapper answers as the libsystemd function it stands for when the variable it reads is unset (0: nothing to
 * do), without loading anything. Does not log: a wrapper that needs the library and cannot load it returns -ELIBACC
 * (-ELIBBAD when a function is missing), and libsystemd_error() says why. */
#pragma once

#include <stdint.h>

/* SD_LISTEN_FDS_START: the first passed fd (sd_listen_fds(3)). */
#define LISTEN_FDS_START 3

/* The environment variable that makes baton need libsystemd ("NOTIFY_SOCKET", "LISTEN_FDS" or "WATCHDOG_USEC"),
 * or NULL when none is set to a non-empty value. */
const char *libsystemd_wanted(void);
/* The variable among LISTEN_FDS and WATCHDOG_USEC that is set to a non-empty value, or NULL: those baton reads
 * before its program starts, so libsystemd is loaded before that when one is set. NOTIFY_SOCKET alone is first used
 * once the program has been started (run.c). */
const char *libsystemd_wanted_before_start(void);
/* Loads the library and resolves its functions, once; later calls return the first call's result. */
int libsystemd_load(void);
/* Why the load failed ("libsystemd.so.0: cannot open shared object file: ..."), or "" after a success. */
const char *libsystemd_error(void);

/* sd_notify(0, text): 0 without NOTIFY_SOCKET. */
int libsystemd_notify(const char *text);
/* sd_pid_notify_with_fds(0, 0, text, fds, n_fds): 0 without NOTIFY_SOCKET. */
int libsystemd_notify_with_fds(const char *text, const int *fds, unsigned n_fds);
/* sd_listen_fds_with_names(1, ret_names): without LISTEN_PID or LISTEN_FDS, unsets the three LISTEN_ variables as
 * libsystemd does and returns 0 with *ret_names NULL. */
int libsystemd_listen_fds_with_names(char ***ret_names);
/* sd_watchdog_enabled(0, ret_usec): 0 without WATCHDOG_USEC. */
int libsystemd_watchdog_enabled(uint64_t *ret_usec);
