/* The sd_notify protocol, both directions: baton's own datagram socket that its children notify (parse, credentials,
 * fds), and the upstream messages baton sends to systemd's NOTIFY_SOCKET. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* systemd's own limit for one notify datagram (NOTIFY_BUFFER_MAX = PIPE_BUF); larger ones are dropped. */
#define NOTIFY_BUFFER_MAX 4096
/* SCM_MAX_FD: the most fds one datagram can carry. */
#define NOTIFY_FD_MAX 253

struct notify_msg {
	bool ready; /* READY=1 */
	bool reloading; /* RELOADING=1 */
	bool stopping; /* STOPPING=1 */
	bool watchdog; /* WATCHDOG=1 */
	bool watchdog_trigger; /* WATCHDOG=trigger */
	bool barrier; /* BARRIER=1 */
	bool fdstore; /* FDSTORE=1 */
	bool fdstore_remove; /* FDSTOREREMOVE=1 */
	int fdpoll; /* FDPOLL=0 or 1; -1 if absent */
	const char *status; /* STATUS=..., points into the parsed buffer; NULL if absent */
	const char *fdname; /* FDNAME=..., NULL if absent */
	int errno_value; /* ERRNO=, -1 if absent */
	uint64_t extend_timeout_usec; /* EXTEND_TIMEOUT_USEC=, UINT64_MAX if absent */
	uint64_t monotonic_usec; /* MONOTONIC_USEC=, UINT64_MAX if absent */
	pid_t mainpid; /* MAINPID=, 0 if absent or invalid */
	bool mainpid_invalid; /* MAINPID= was given but is not a PID (0, -3, abc): the sender is told off */
};

/* Parses one datagram of newline-separated KEY=VALUE lines. buf must hold len bytes followed by a NUL (the caller
 * allocates len+1); it is modified in place (lines are NUL-split) and *ret points into it. Unknown keys are ignored,
 * as sd_notify(3) requires; a value of a known key that does not parse (READY=2, ERRNO=x) is ignored with that key
 * alone; a STATUS= that is not valid UTF-8 is ignored too (and clears an earlier one), as systemd does. Returns
 * -EBADMSG for a datagram that must be dropped whole: empty, or with an embedded NUL byte. Pure. */
int notify_parse(char *buf, size_t len, struct notify_msg *ret);

/* Opens baton's notify socket: a unix datagram socket with SO_PASSCRED, non-blocking, close-on-exec. path: the
 * socket file to bind (its directory created; a stale socket file that a killed baton left is replaced; mode 0777,
 * as systemd's own), or NULL for an abstract socket ("@baton/<pid>/notify/<n>-<random>"). *ret_path is the malloc'd
 * NOTIFY_SOCKET value for children; *ret_dev, *ret_ino the file's (0 when abstract), for notify_server_remove(). On
 * failure *ret_error says what failed, naming the path. */
int notify_server_open(const char *path, int *ret_fd, char **ret_path, dev_t *ret_dev, ino_t *ret_ino,
		       char **ret_error);
/* Where the notify socket goes by default (baton.yaml(5) notify.socket auto): notify-PID.sock in systemd's
 * $RUNTIME_DIRECTORY (its first entry), else in /run/baton as root, $XDG_RUNTIME_DIR/baton, or /tmp/baton-UID.
 * Returns 0 or -ENOMEM. */
int notify_default_path(char **ret);
/* What batons killed before they could remove their socket file (SIGKILL, the OOM killer) left beside baton's own
 * default one, path (notify_default_path()): "notify-PID.sock" in the same directory whose PID is gone, removed when
 * nobody is bound to it (a baton of another PID namespace sharing the directory still holds its own). A path the
 * config names is not baton's directory to tidy. Not at the start, which a directory full of leftovers would slow:
 * run.c calls it once the first program is started. */
void notify_sweep_stale(const char *path);
/* Removes the socket file at path (when it is one: an abstract name is left alone) if it is still the file that
 * notify_server_open() bound (dev, ino). */
void notify_server_remove(const char *path, dev_t dev, ino_t ino);

/* Most datagrams are a line or two ("READY=1", "STATUS=..."): those are received into small[], on the caller's
 * stack; a larger one into a 4 KiB buffer that notify_receive() maps the first time one comes. An idle baton whose
 * program never sends a long message (or none at all, as in a container) keeps no page for them. */
#define NOTIFY_INLINE_MAX 480

struct notify_datagram {
	char *buf; /* the text, NUL-terminated: small[] or the large buffer, valid until the next notify_receive() */
	size_t len;
	pid_t pid; /* from SCM_CREDENTIALS; 0 if the datagram had none */
	uid_t uid;
	size_t n_fds; /* received close-on-exec; the caller must close them (notify_datagram_close_fds) */
	int fds[NOTIFY_FD_MAX];
	char small[NOTIFY_INLINE_MAX + 1];
};

/* Receives one datagram. Returns 1 when one was read, 0 when the socket is drained (EAGAIN), -EMSGSIZE for an
 * oversized (truncated) datagram, whose fds are already closed, or another negative errno (-ENOMEM: a datagram
 * longer than NOTIFY_INLINE_MAX found no memory to land in; it was dropped like an oversized one). */
int notify_receive(int fd, struct notify_datagram *ret);
void notify_datagram_close_fds(struct notify_datagram *d);

/* Upstream: whether baton itself was given a NOTIFY_SOCKET (read once at start). */
bool notify_upstream_enabled(void);
/* Sends text (KEY=VALUE lines) to systemd; a no-op without NOTIFY_SOCKET. Failures are logged and ignored: losing
 * systemd's socket must not take the service down. */
void notify_upstream(const char *text);
void notify_upstreamf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with fds attached (FDSTORE=1). Returns 0, or negative errno after logging the failure. */
int notify_upstream_with_fds(const char *text, const int *fds, size_t n_fds);
/* Neither waits for systemd: when its notify socket is full, a message is held (in order, bounded, with duplicates of
 * its fds) and sent once the socket has room; notify.c says how. The loop watches for that room under tag (EPOLLOUT
 * on a socket of notify.c's), and calls notify_upstream_writable() on its event. */
struct evloop;
void notify_upstream_watch(struct evloop *loop, uint64_t tag);
void notify_upstream_writable(void);
/* How many messages wait for room (`baton upgrade` waits for none to be left). */
size_t notify_upstream_held(void);
/* At exit: sends what can be sent now, drops the rest with a warning, and from then on holds nothing. */
void notify_upstream_discard(void);
