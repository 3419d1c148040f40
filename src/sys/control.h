/* The control socket: a unix stream socket where `baton reload|status|stop` (or any client) sends one request line
 * and reads one JSON reply line. This module owns the socket, the connections and the wire format; what a request
 * does is its caller's business (src/run/: run.c turns requests into the state machine's events, run-upgrade.c
 * carries out upgrades). It also holds the client side used by those subcommands.
 * Logs nothing: it returns what happened, and the caller says it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "json.h"
#include "serialize.h"

/* A request line is at most this long (without its '\n'): "upgrade" and a path of up to PATH_MAX bytes. A longer
 * one is an error and the connection is closed. */
#define CONTROL_LINE_MAX 4200
/* Connections open at once; more are answered with an error and closed. */
#define CONTROL_CLIENTS_MAX 32
/* A client must send its request line within this time after connecting, or it is dropped. */
#define CONTROL_REQUEST_TIMEOUT_USEC (5 * UINT64_C(1000000))

enum control_request {
	CONTROL_RELOAD, /* "reload" */
	CONTROL_STATUS, /* "status" */
	CONTROL_STOP, /* "stop" */
	CONTROL_UPGRADE, /* "upgrade", or "upgrade PATH": the new binary (an absolute path) */
	_CONTROL_REQUEST_MAX,
};

/* Parses one request line (without '\n'; a trailing '\r' and surrounding blanks are tolerated; names are
 * case-sensitive). "upgrade" alone takes an argument after blanks (the rest of the line, without the blanks around
 * it); the others take none. Returns 0 and sets *ret, *ret_arg (into line, *ret_arg_len bytes; NULL for none), or
 * -EINVAL with *ret_why set to a static reason ("unknown request", "empty request"); the reason never contains the
 * line, so the caller adds the offending word itself. Pure. */
int control_parse_request(const char *line, enum control_request *ret, const char **ret_arg, size_t *ret_arg_len,
			  const char **ret_why);
const char *control_request_to_string(enum control_request r);

struct control_client {
	unsigned id;
	int fd;
	char buf[CONTROL_LINE_MAX + 2];
	size_t len;
	uint64_t deadline_usec; /* the request line must be complete by then; USEC_INFINITY once it is */
	uint64_t request_usec; /* when the request line was complete (CLOCK_MONOTONIC); 0 before */
	bool has_request;
	bool eof; /* the peer shut down its write side after its request (see control_client_read()) */
	enum control_request request; /* valid when has_request */
	char *argument; /* what followed the request's name (upgrade: the binary), or NULL */
	/* What the request waits for, one field per kind of request (the caller's business). */
	uint64_t reload_seq; /* CONTROL_RELOAD: the number of the reload whose end it is answered with; 0: none */
	unsigned upgrade_phase; /* CONTROL_UPGRADE: how far its upgrade is (run-upgrade.c's enum); 0: none */
	struct control_client *next;
};

struct control {
	int fd; /* listening socket, -1 when disabled */
	char *path; /* its path */
	struct control_client *clients;
	size_t n_clients;
	unsigned last_id;
	dev_t dev; /* the socket file as bound, so control_close() removes only our own file, not a successor's */
	ino_t ino;
};

/* Creates the listening socket at path: the directory is made if missing (mode 0755), an existing path is replaced
 * only if it is a socket nobody listens on, the socket file gets mode 0600. Non-blocking, close-on-exec.
 * *c is initialized either way (fd -1 on failure), so control_close() is always safe afterwards.
 * On failure *ret_error (malloc'd) names the path and the step. Sets the process umask briefly: call it while
 * single-threaded (baton always is). */
int control_open(struct control *c, const char *path, char **ret_error);
/* Closes every client and the socket, and removes the socket file if it is still the one we bound. */
void control_close(struct control *c);

/* Accepts one pending connection. Peers are checked with SO_PEERCRED: only root and baton's own uid are served;
 * anyone else gets {"ok":false,"error":"permission denied"} and is closed (returns -EPERM). Too many clients
 * (CONTROL_CLIENTS_MAX): an error reply and -EBUSY. *ret_peer (may be NULL) is the peer's credentials, also on -EPERM
 * and -EBUSY, so that the caller can say whom it refused. Returns 0 with *ret set (added to c->clients), -EAGAIN when
 * nothing was pending, or another -errno from accept4() (-ECONNABORTED: try again; -EMFILE/-ENFILE: the listening fd
 * stays readable). */
int control_accept(struct control *c, struct control_client **ret, struct ucred *ret_peer);

/* Reads what the client sent. Returns 1 once a complete request line was parsed (cl->request set; returned only by
 * the call that completed it), 0 when more is needed, or negative: -ECONNRESET (peer closed before a full line),
 * -EMSGSIZE (line too long), -EINVAL (unknown request, or a NUL byte in the line), other -errno from read(). On
 * -EMSGSIZE and -EINVAL an error reply has been sent already (an unknown request is echoed, its first 64 bytes);
 * the caller closes the client.
 * One request per connection: bytes after the request line are read and discarded. EOF after the request is not an
 * error (`printf 'reload\n' | socat - UNIX:...` shuts down its write side and still waits for the reply): it returns
 * 0 and sets cl->eof. The caller should then stop watching the fd for EPOLLIN, which would stay ready forever;
 * EPOLLHUP (always reported) still says when the peer has gone entirely. */
int control_client_read(struct control_client *cl);

/* Sends one reply line (json must not contain '\n'; a '\n' is appended). Never blocks: a client that does not read
 * its reply is dropped (-EAGAIN). MSG_NOSIGNAL, so a vanished client cannot kill baton. */
int control_client_reply(struct control_client *cl, const char *json);
/* Replies {"ok":false,"error":"<why>"}. */
int control_client_reply_error(struct control_client *cl, const char *why);

/* For a PID 1 that is about to exit, whose exit kills every process of its PID namespace, the clients that were
 * sent their reply (`baton stop`) among them: shuts down the writing side of each of the n fds (the client sees EOF:
 * baton is done) and waits, up to timeout_usec, until each client has hung up, which it does as it exits, after its
 * output. Blocks; the fds stay open. */
void control_linger(const int *fds, size_t n, uint64_t timeout_usec);

struct control_client *control_client_by_id(struct control *c, unsigned id);
/* Unlinks, closes and frees one client. */
void control_client_close(struct control *c, struct control_client *cl);

/* `baton upgrade` (serialize.h): c's records ("control FD DEV INO LAST_ID PATH", then "client ..." and
 * "client.argument ARG" for each client, in list order, with the line it has read so far; nothing without a socket),
 * and reading them back from the current record on into c ({.fd = -1}); the reader is left on the first record that
 * is not c's. control_forget() frees what was read, closing nothing (a takeover that fails gives the fds back). */
void control_serialize(const struct control *c, struct ser_writer *w);
int control_deserialize(struct ser_reader *rd, struct control *c);
void control_forget(struct control *c);

/* Client side. Connects to path, sends request + '\n', and reads one reply line within timeout_usec (USEC_INFINITY:
 * no limit). With wait_for_close, keeps reading until the server closes the connection (for "stop"), and then
 * leaves the connection open on purpose: the kernel closes it as the calling process exits, after its output, and
 * a baton that is PID 1 waits for that hangup before its exit kills the caller (control_linger()). Returns 0 with
 * the reply in *ret_reply (malloc'd, without '\n'), or negative errno with *ret_error saying what failed
 * ("cannot connect to /run/baton/x.sock: No such file or directory", "no reply from baton within 30s"): -ETIMEDOUT,
 * -EMSGSIZE (reply over 1 MiB), -ECONNRESET (closed without a reply line), or the -errno of connect(). */
int control_call(const char *path, const char *request, uint64_t timeout_usec, bool wait_for_close, char **ret_reply,
		 char **ret_error);
