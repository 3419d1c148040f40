/* Everything systemd gets from baton (upstream.h). */
#include "upstream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libsystemd.h"
#include "log.h"
#include "util.h"

void upstream_setup(struct upstream *u, const struct config *c, uint64_t now) {
	/* systemd >= 254 announces an fd store in $FDSTORE; 252 does not, so there it takes systemd.fd-store: true
	 * (with FileDescriptorStoreMax= in the unit). */
	uint64_t fdstore_max = 0;
	const char *fdstore_env = getenv("FDSTORE");
	if (fdstore_env)
		(void)parse_uint64(fdstore_env, &fdstore_max);
	u->fd_store = notify_upstream_enabled() &&
		      (c->fd_store == FD_STORE_YES || (c->fd_store == FD_STORE_AUTO && fdstore_max > 0));

	/* WATCHDOG_USEC counts only when WATCHDOG_PID is unset or baton's own pid (sd_watchdog_enabled checks it). */
	uint64_t watchdog_usec = 0;
	u->watchdog_interval_usec = 0;
	u->watchdog_next_usec = USEC_INFINITY;
	if (libsystemd_watchdog_enabled(&watchdog_usec) > 0 && watchdog_usec > 0) {
		u->watchdog_interval_usec = watchdog_usec / 2;
		u->watchdog_next_usec = now + u->watchdog_interval_usec;
		log_debug("systemd's watchdog: pinging every %" PRIu64 " ms",
			  u->watchdog_interval_usec / USEC_PER_MSEC);
	}
}

void upstream_ready(const struct generation *g) {
	if (g && g->status)
		notify_upstreamf("READY=1\nSTATUS=%s", g->status);
	else if (g)
		notify_upstreamf("READY=1\nSTATUS=generation %u ready (pid %d)", g->id, (int)g->pid);
	else
		notify_upstream("READY=1\nSTATUS=no generation running");
}

/* ---- the fd store ---- */

static void fd_store_add_one(const struct listener *l) {
	char text[LISTENER_NAME_MAX + 64];
	/* FDPOLL=0: a listening socket is never "hung up"; systemd must not watch it and drop it. */
	snprintf(text, sizeof(text), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", l->name);
	notify_upstream_with_fds(text, &l->fd, 1);
}

void upstream_fd_store_add(const struct upstream *u, const struct listener *ls, size_t n) {
	if (!u->fd_store)
		return;
	log_info("keeping %zu listening socket(s) in systemd's fd store", n);
	for (size_t i = 0; i < n; i++)
		fd_store_add_one(&ls[i]);
}

/* Whether set has l (name and address), by set's address index (addresses are unique in a set); without the index,
 * every entry. */
static bool listener_in(const struct listener *l, size_t i, const struct listener *set, size_t n,
			const struct addr_index *x) {
	if (i < n && streq(l->name, set[i].name) && addr_equal(&l->address, &set[i].address))
		return true;
	if (x) {
		long k = addr_index_find(x, &l->address);
		return k >= 0 && streq(l->name, set[k].name);
	}
	for (size_t k = 0; k < n; k++)
		if (streq(l->name, set[k].name) && addr_equal(&l->address, &set[k].address))
			return true;
	return false;
}

/* Entries of listeners that are gone are removed first (FDSTOREREMOVE goes by name, and a renamed listener may keep
 * its socket), then the new ones are added. systemd ignores a socket it holds already, so storing an unchanged one
 * again would be harmless, but it is skipped. */
void upstream_fd_store_update(const struct upstream *u, const struct listener *old, size_t n_old,
			      const struct listener *ls, size_t n) {
	if (!u->fd_store)
		return;
	struct addr_index x_new, x_old;
	bool have_new = addr_index_init(&x_new, ls ? &ls[0].address : NULL, n, sizeof(*ls)) >= 0;
	bool have_old = addr_index_init(&x_old, old ? &old[0].address : NULL, n_old, sizeof(*old)) >= 0;
	for (size_t i = 0; i < n_old; i++)
		if (!listener_in(&old[i], i, ls, n, have_new ? &x_new : NULL))
			notify_upstreamf("FDSTOREREMOVE=1\nFDNAME=%s", old[i].name);
	for (size_t i = 0; i < n; i++)
		if (!listener_in(&ls[i], i, old, n_old, have_old ? &x_old : NULL))
			fd_store_add_one(&ls[i]);
	if (have_new)
		addr_index_free(&x_new);
	if (have_old)
		addr_index_free(&x_old);
}

/* A program's FDSTORE=1 / FDSTOREREMOVE=1 goes on to systemd, fds included, when program.fd-store allows it; the
 * names of baton's own listeners are not the program's to take. */
static void relay_fd_store(const struct config *c, const struct listener *ls, size_t n_listeners,
			   const struct generation *g, const struct notify_msg *m, const struct notify_datagram *d) {
	if (!c->program_fd_store || !notify_upstream_enabled()) {
		log_warning("generation %u sent %s, refused: %s", g->id, m->fdstore ? "FDSTORE=1" : "FDSTOREREMOVE=1",
			    notify_upstream_enabled() ? "program.fd-store is false" : "baton has no NOTIFY_SOCKET");
		return;
	}
	for (size_t i = 0; m->fdname && i < n_listeners; i++)
		if (streq(m->fdname, ls[i].name)) {
			log_warning("generation %u sent FDSTORE with FDNAME=%s, refused: that is a listener's name",
				    g->id, m->fdname);
			return;
		}
	char text[512];
	if (m->fdstore_remove) {
		if (!m->fdname) {
			log_warning("generation %u sent FDSTOREREMOVE=1 without FDNAME=, ignoring", g->id);
			return;
		}
		snprintf(text, sizeof(text), "FDSTOREREMOVE=1\nFDNAME=%s", m->fdname);
		notify_upstream(text);
		return;
	}
	if (d->n_fds == 0)
		return;
	int n = snprintf(text, sizeof(text), "FDSTORE=1");
	if (m->fdname)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "\nFDNAME=%s", m->fdname);
	if (m->fdpoll >= 0)
		snprintf(text + n, sizeof(text) - (size_t)n, "\nFDPOLL=%d", m->fdpoll);
	log_debug("relaying %zu fd(s) of generation %u to systemd's fd store", d->n_fds, g->id);
	notify_upstream_with_fds(text, d->fds, d->n_fds);
}

/* ---- watchdog and messages ---- */

void upstream_watchdog_due(struct upstream *u, bool healthy, uint64_t now) {
	if (healthy)
		notify_upstream("WATCHDOG=1");
	else
		log_debug("not sending WATCHDOG=1 while the program is restarting");
	u->watchdog_next_usec = now + u->watchdog_interval_usec;
}

enum upstream_action upstream_on_message(const struct config *c, const struct listener *ls, size_t n_listeners,
					 struct generation *g, bool serving, const struct notify_msg *m,
					 const struct notify_datagram *d, uint64_t now) {
	if (m->fdstore || m->fdstore_remove)
		relay_fd_store(c, ls, n_listeners, g, m, d);
	if ((m->watchdog || m->watchdog_trigger) && g->state == GEN_READY && g->watchdog_usec > 0) {
		if (m->watchdog_trigger)
			return UPSTREAM_WATCHDOG_TRIGGER;
		g->watchdog_deadline_usec = now + g->watchdog_usec;
	}
	if (m->status) {
		char *copy = strdup(m->status);
		if (copy) {
			free(g->status);
			g->status = copy;
		}
		/* While a generation starts, baton's own status stays up; the program's own words go upstream from the
		 * moment it serves (with READY=1). */
		if (serving)
			notify_upstreamf("STATUS=%s", m->status);
	}
	if (m->errno_value >= 0 && serving)
		notify_upstreamf("ERRNO=%d", m->errno_value);
	if (m->extend_timeout_usec != UINT64_MAX && g->state == GEN_STARTING) {
		/* A slow but progressing start: systemd's start timeout and baton's readiness timeout both move. */
		uint64_t until = now + m->extend_timeout_usec;
		if (until > g->deadline_usec)
			g->deadline_usec = until;
		notify_upstreamf("EXTEND_TIMEOUT_USEC=%" PRIu64, m->extend_timeout_usec);
	}
	if (m->reloading)
		log_info("generation %u (pid %d) is reloading", g->id, (int)g->pid);
	if (m->stopping)
		log_info("generation %u (pid %d) says it is stopping", g->id, (int)g->pid);
	if (m->ready && g->readiness != READINESS_NOTIFY) {
		/* One source of truth: with another readiness type, the program's own word does not count. */
		log_debug("generation %u sent READY=1, ignored: readiness.type is %s", g->id,
			  readiness_type_to_string(g->readiness));
		return UPSTREAM_NOTHING;
	}
	return m->ready ? UPSTREAM_READY : UPSTREAM_NOTHING;
}

void upstream_serialize(const struct upstream *u, struct ser_writer *w) {
	fprintf(w->f, "upstream %d %" PRIu64 " %" PRIu64 "\n", u->fd_store, u->watchdog_interval_usec,
		u->watchdog_next_usec);
}

int upstream_deserialize(struct ser_reader *rd, struct upstream *u) {
	int k;
	if ((k = ser_bool(rd, &u->fd_store)) < 0 || (k = ser_number(rd, &u->watchdog_interval_usec)) < 0 ||
	    (k = ser_number(rd, &u->watchdog_next_usec)) < 0)
		return k;
	return 0;
}
