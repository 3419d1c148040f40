/* Everything systemd gets from baton, beyond the state machine's own RELOADING=1 / STOPPING=1 / STATUS= lines: READY=1
 * with the serving generation's status, the fd store (baton's listeners, and a program's own FDSTORE=1 when
 * program.fd-store allows it), baton's own watchdog pings, and what a generation's notify message means (its status,
 * ERRNO=, EXTEND_TIMEOUT_USEC=, its program watchdog). Sends through notify.c, which is a no-op without NOTIFY_SOCKET.
 * Logs at info and warning level what it refuses or relays. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "generation.h"
#include "notify.h"
#include "serialize.h"
#include "sockets.h"

struct upstream {
	bool fd_store; /* the listening sockets are kept in systemd's fd store */
	uint64_t watchdog_interval_usec; /* baton's own WATCHDOG=1 pings (half of its WATCHDOG_USEC); 0 = none */
	uint64_t watchdog_next_usec; /* the next ping; USEC_INFINITY for none */
};

/* Reads what systemd offers baton: the fd store ($FDSTORE, or systemd.fd-store: true on 252) and the watchdog
 * (WATCHDOG_USEC for baton's own pid). */
void upstream_setup(struct upstream *u, const struct config *c, uint64_t now);

/* READY=1 with the serving generation's own status, or baton's words for it (g may be NULL). */
void upstream_ready(const struct generation *g);

/* The fd store holds these listeners (at the first start). */
void upstream_fd_store_add(const struct upstream *u, const struct listener *ls, size_t n);
/* The fd store follows the listener set of a reload: entries of listeners that are gone are removed, new ones added. */
void upstream_fd_store_update(const struct upstream *u, const struct listener *old, size_t n_old,
			      const struct listener *ls, size_t n);

/* baton's own watchdog ping is due at now: sent while healthy (not while the program is down and waiting for its
 * restart: a crash loop longer than WatchdogSec= is then systemd's to handle), and the next one scheduled. */
void upstream_watchdog_due(struct upstream *u, bool healthy, uint64_t now);

/* `baton upgrade` (serialize.h): the record "upstream FD_STORE WATCHDOG_INTERVAL WATCHDOG_NEXT", and reading it back
 * (the current record) into u. */
void upstream_serialize(const struct upstream *u, struct ser_writer *w);
int upstream_deserialize(struct ser_reader *rd, struct upstream *u);

enum upstream_action {
	UPSTREAM_NOTHING,
	UPSTREAM_READY, /* the generation said READY=1, and its readiness type listens to that */
	UPSTREAM_WATCHDOG_TRIGGER, /* WATCHDOG=trigger from a ready generation with a program watchdog */
};
/* A notify message m (datagram d) from generation g; serving: g is the current, ready generation (its words go
 * upstream). Applies what the message says to g and systemd, and returns what the state machine must hear of it.
 * The caller closes d's fds afterwards. */
enum upstream_action upstream_on_message(const struct config *c, const struct listener *ls, size_t n_listeners,
					 struct generation *g, bool serving, const struct notify_msg *m,
					 const struct notify_datagram *d, uint64_t now);
