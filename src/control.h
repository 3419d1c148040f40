/* The control socket: a unix stream socket where `baton reload|status|stop` (or any client) sends one request line
 * and reads one JSON reply line. This module owns the socket, the connections and the wire format; what a request
 * does is the supervisor's business (supervisor.c). It also holds the client side used by those subcommands. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A request line is at most this long (without its '\n'); a longer one is an error and the connection is closed. */
#define CONTROL_LINE_MAX 256
/* Connections open at once; more are answered with an error and closed. */
#define CONTROL_CLIENTS_MAX 32
/* A client must send its request line within this time after connecting, or it is dropped. */
#define CONTROL_REQUEST_TIMEOUT_USEC (5 * UINT64_C(1000000))

enum control_request {
	CONTROL_RELOAD, /* "reload" */
	CONTROL_STATUS, /* "status" */
	CONTROL_STOP,   /* "stop" */
	_CONTROL_REQUEST_MAX,
};

/* Parses one request line (without '\n'; a trailing '\r' and surrounding blanks are tolerated). Returns 0 and sets
 * *ret, or -EINVAL with *ret_why set to a static reason ("unknown request 'x'", "empty request"). Pure. */
int control_parse_request(const char *line, enum control_request *ret, const char **ret_why);
const char *control_request_to_string(enum control_request r);

struct control_client {
	unsigned id;
	int fd;
	char buf[CONTROL_LINE_MAX + 2];
	size_t len;
	uint64_t deadline_usec; /* the request line must be complete by then; USEC_INFINITY once it is */
	bool has_request;
	enum control_request request; /* valid when has_request */
	uint64_t waiting_for;         /* supervisor's business: e.g. the reload number it waits for; 0 = none */
	struct control_client *next;
};

struct control {
	int fd;         /* listening socket, -1 when disabled */
	char *path;     /* its path */
	struct control_client *clients;
	size_t n_clients;
	unsigned last_id;
};

/* Creates the listening socket at path: the directory is made if missing (mode 0755), an existing path is replaced
 * only if it is a socket nobody listens on, the socket file gets mode 0600. Non-blocking, close-on-exec.
 * On failure *ret_error (malloc'd) names the path and the step. */
int control_open(struct control *c, const char *path, char **ret_error);
/* Closes every client and the socket, and removes the socket file. */
void control_close(struct control *c);

/* Accepts one pending connection. Peers are checked with SO_PEERCRED: only root and baton's own uid are served;
 * anyone else gets {"ok":false,"error":"permission denied"} and is closed (returns -EPERM). Too many clients:
 * an error reply and -EBUSY. Returns 0 with *ret set (added to c->clients), -EAGAIN when nothing was pending. */
int control_accept(struct control *c, struct control_client **ret);

/* Reads what the client sent. Returns 1 once a complete request line was parsed (cl->request set), 0 when more is
 * needed, or negative: -ECONNRESET (peer closed before a full line), -EMSGSIZE (line too long), -EINVAL (unknown
 * request). On -EMSGSIZE and -EINVAL an error reply has been sent already; the caller closes the client. */
int control_client_read(struct control_client *cl);

/* Sends one reply line (json must not contain '\n'; a '\n' is appended). Never blocks: a client that does not read
 * its reply is dropped (-EAGAIN). MSG_NOSIGNAL, so a vanished client cannot kill baton. */
int control_client_reply(struct control_client *cl, const char *json);
/* Replies {"ok":false,"error":"<why>"}. */
int control_client_reply_error(struct control_client *cl, const char *why);

struct control_client *control_client_by_id(struct control *c, unsigned id);
/* Unlinks, closes and frees one client. */
void control_client_close(struct control *c, struct control_client *cl);

/* A growing string for building JSON replies. On allocation failure it remembers it (oom) and further appends do
 * nothing; json_buf_take() then returns NULL. */
struct json_buf {
	char *s;
	size_t len, cap;
	bool oom;
};
void json_append(struct json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included ("\n", "\"", "\\", control bytes as \u00XX; invalid UTF-8
 * bytes as \ufffd). NULL appends null. */
void json_append_string(struct json_buf *b, const char *s);
char *json_buf_take(struct json_buf *b);

/* Client side. Connects to path, sends request + '\n', and reads one reply line within timeout_usec (USEC_INFINITY:
 * no limit). With wait_for_close, keeps reading until the server closes the connection (for "stop"). Returns 0 with
 * the reply in *ret_reply (malloc'd, without '\n'), or negative errno with *ret_error saying what failed
 * ("cannot connect to /run/baton/x.sock: No such file or directory", "no reply within 30s"). */
int control_call(const char *path, const char *request, uint64_t timeout_usec, bool wait_for_close, char **ret_reply,
                 char **ret_error);

/* Minimal readers for the replies baton itself writes (flat or nested objects; the first occurrence of "key" at any
 * depth wins). Return 0 and a malloc'd, unescaped string / the boolean, or -ENOENT. Pure. */
int json_get_string(const char *json, const char *key, char **ret);
int json_get_bool(const char *json, const char *key, bool *ret);
