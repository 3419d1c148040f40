/* The variables baton computes for programs that do not read LISTEN_FDS: Server::Starter's SERVER_STARTER_PORT,
 * einhorn's EINHORN_FD_*, and the preload shim's LD_PRELOAD and BATON_DRAIN_SIGNAL. Pure; does not log. */
#pragma once

#include <signal.h>

#include "config.h"

/* The signal that tells the preload shim to stop accepting (BATON_DRAIN_SIGNAL). SIGURG: ignored by default, so a
 * process of the generation that has no handler (a wrapper shell, a program the shim is not loaded into) is not
 * killed by it; the kernel sends it only for TCP urgent data to a socket's F_SETOWN owner, which servers do not ask
 * for. */
#define BATON_DRAIN_SIGNAL SIGURG

/* "host:port=fd;path=fd" in listener order, as Server::Starter writes it ("8080=3" for all addresses,
 * "127.0.0.1:8080=3", "[::1]:8080=3", "/run/app.sock=4"). Only TCP and unix stream path listeners can be written
 * (config_apply_cli refuses the others with program.compat server-starter). Returns a malloc'd string or NULL. */
char *compat_server_starter_port(const struct config *c);

/* The "KEY=value" entries for the program of generation `generation` of config c, per program.compat and
 * program.preload (preload_library: the shim's path; drain_signal: BATON_DRAIN_SIGNAL's value when stop.drain is
 * set). LD_PRELOAD puts the shim first and keeps an LD_PRELOAD from program.environment, else from base (baton's
 * environment). *ret is NULL-terminated, or NULL when there is nothing to add. Returns 0 or -ENOMEM. */
int compat_env(const struct config *c, unsigned generation, const char *preload_library, int drain_signal,
	       char *const *base, char ***ret);
