/* Listening sockets (baton.yaml(5) LISTENERS; baton(1) INHERITED SOCKETS): binding with every listener option, and
 * taking sockets over from the supervisor's own LISTEN_FDS (a systemd socket unit, or an outer baton). Logs only
 * what the caller cannot act on: an inherited socket that is used in spite of a mismatch or closed as unclaimed
 * (warnings), and a socket file it could not remove (debug). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "serialize.h"

struct listener {
	char *name; /* owned copy of the config's name */
	struct address address; /* copy of the config's address */
	int fd; /* close-on-exec in the supervisor */
	bool inherited; /* came from LISTEN_FDS: never unlink its socket file */
	bool created_path; /* baton bound a unix path itself (it may remove it when the listener goes away) */
	/* fd is that of the held set this one was opened from (a reload's): the held listener owns it until
	 * listeners_hand_over() passes it on, and freeing this set leaves it open. */
	bool borrowed;
};

/* Creates, configures and binds a socket for l (listen()ing for stream kinds), close-on-exec. Options that do not
 * apply to the kind (nodelay on UDP, mode on an abstract socket) are ignored silently: config validation rejects
 * them where they are meaningless. A unix path that exists is replaced only if it is a socket that nobody listens
 * on; anything else gives -EADDRINUSE. On failure *ret_why (may be NULL) says which step failed ("bind", "chown",
 * "setsockopt SO_REUSEPORT", ...). */
int sock_bind(const struct listener_config *l, int *ret_fd, const char **ret_why);

struct inherited_fd {
	int fd;
	char *name; /* LISTEN_FDNAMES entry, or NULL */
	bool claimed; /* matched to a listener */
};

/* Takes over the supervisor's own LISTEN_FDS (checking LISTEN_PID), removing LISTEN_FDS/LISTEN_PID/
 * LISTEN_FDNAMES/LISTEN_PIDFDID from the environment and setting close-on-exec on the fds. *ret is NULL and *ret_n 0
 * when there are none. */
int sock_take_inherited(struct inherited_fd **ret, size_t *ret_n);
/* Closes the fds still held (fd >= 0) and frees the names and the array. */
void inherited_fds_free(struct inherited_fd *inh, size_t n);

/* Opens every listener of c into *ret (an array of c->n_listeners, in config order). A listener whose address one of
 * held has (a reload: the set baton holds now) gets that very socket, borrowed (no dup(): 1,000 dups, and as many
 * closes at the commit, were a large part of a reload of 1,000 listeners; issue 23), so it never closes and queued
 * connections stay queued. For the others whose inherit is not "never", an inherited fd with the same name is taken
 * (if its type and family fit), else one whose family, type and address match; "required" without a match is an
 * error naming the listener (on a reload, held non-NULL, always: inherited sockets are taken at the start only);
 * otherwise the listener is bound. Inherited fds left unclaimed are closed with a warning. On failure *ret_error is a
 * malloc'd message naming the listener and what failed, and nothing stays open. Either way every inherited fd is
 * consumed: claimed by a listener or closed, and its fd set to -1. */
int sock_open_all(const struct config *c, const struct listener *held, size_t n_held, struct inherited_fd *inh,
		  size_t n_inh, struct listener **ret, char **ret_error);

/* A reload's new set ls replaces old: the fds ls borrowed from old become ls's, and the unix socket files baton
 * created move to the listener that keeps their address, so that freeing old closes and removes only what belongs
 * to listeners that are gone. */
void listeners_hand_over(struct listener *ls, size_t n, struct listener *old, size_t n_old);
/* Whether ls has c's listeners, names and addresses, in order. */
bool listeners_match_config(const struct listener *ls, size_t n, const struct config *c);

/* Closes a listener (removing its unix socket file if baton created it) and frees its fields. */
void listener_close(struct listener *l);
void listeners_free(struct listener *ls, size_t n);

/* `baton upgrade` (serialize.h): one record per listener, "listener FD INHERITED CREATED_PATH NAME", its fd named. */
void listeners_serialize(const struct listener *ls, size_t n, struct ser_writer *w);
/* Reads the "listener" records from the current one on, into a new array; each one's address is c's listener's at
 * its position (the caller checks with listeners_match_config() that they are c's). The reader is left on the first
 * record that is not a listener. On failure nothing is left allocated; no fd is closed. */
int listeners_deserialize(struct ser_reader *rd, const struct config *c, struct listener **ret, size_t *ret_n);
/* Frees listeners that were read, closing nothing. */
void listeners_forget(struct listener *ls, size_t n);
