/* Small helpers shared by every module: cleanup attributes, strict number/duration parsing, string vectors. Does
 * not log.
 *
 * The error contract of every module: a function that can fail returns 0 (or a count) or a negative errno, and sets
 * its ret_* out-parameters only on success. Where the caller needs more than the errno to say what went wrong:
 *  - a pure parser (no allocation, no system call) points `const char **ret_why` at a static English reason
 *    ("port out of range 1-65535"), which the caller quotes with the input (fail_why());
 *  - everything else sets `char **ret_error` to a malloc'd message that names what failed (fail_error()), for the
 *    caller to print or pass on; the caller frees it.
 * Only the top of a call chain logs and decides; each header's first comment says whether its module logs. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_INFINITY UINT64_MAX

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) {
	free(*(void **)p);
}
static inline void closep(int *fd) {
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
void strv_freep(char ***p);

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Returns the fd and leaves -1 behind, so a _cleanup_close_ variable can hand its fd on. */
#define TAKE_FD(fd)                                                                                                    \
	__extension__({                                                                                                \
		int _fd_ = (fd);                                                                                       \
		(fd) = -1;                                                                                             \
		_fd_;                                                                                                  \
	})
#define TAKE_PTR(p)                                                                                                    \
	__extension__({                                                                                                \
		__typeof__(p) _p_ = (p);                                                                               \
		(p) = NULL;                                                                                            \
		_p_;                                                                                                   \
	})

/* Strict parsers. Each accepts exactly one canonical spelling and returns -EINVAL otherwise (-ERANGE when out of
 * range); *ret is set only on success. */

/* Decimal, no sign, no leading zeros (except "0"), no spaces, no hex/octal. */
int parse_uint64(const char *s, uint64_t *ret);
/* As parse_uint64, and at most max. */
int parse_uint_max(const char *s, uint64_t max, uint64_t *ret);
/* "true" or "false" (YAML 1.2 core schema's lower-case forms only). */
int parse_bool(const char *s, bool *ret);
/* "250ms", "30s", "5m", "1h", "0s" (also "us"); a bare number is an error: the unit must be written. */
int parse_duration(const char *s, uint64_t *ret_usec);
/* Formats a duration back into the largest exact unit ("1500ms", "30s"). buf needs 32 bytes. */
const char *format_duration(uint64_t usec, char buf[static 32]);
/* "SIGTERM", "TERM", or a number 1-64; returns -EINVAL for anything else. */
int parse_signal(const char *s, int *ret);
/* "SIGTERM" for SIGTERM; a static string, or NULL for an unknown number. */
const char *signal_name(int sig);

/* Length (1-4) of the valid UTF-8 sequence at p, or 0 if the bytes there are not one. Strict RFC 3629, as systemd's
 * utf8_is_valid(): no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF, no truncated sequence (a NUL
 * terminator is not a continuation byte, so reading stops there). */
size_t utf8_char_length(const unsigned char *p);
/* Whether the NUL-terminated s is valid UTF-8 by the same rules. */
bool utf8_is_valid(const char *s);

/* vasprintf into a new string; NULL when out of memory. */
char *strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The two halves of the error contract above: set the reason or the message and return r, so that a caller writes
 * `return fail_error(ret_error, -EINVAL, "--listen '%s': expected NAME=ADDRESS", arg);`. fail_why() accepts a NULL
 * ret_why; fail_error() returns -ENOMEM (and leaves *ret_error NULL) when the message cannot be made. */
static inline int fail_why(const char **ret_why, int r, const char *why) {
	if (ret_why)
		*ret_why = why;
	return r;
}
int fail_error(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);

/* NULL-terminated string vectors. */
size_t strv_length(char *const *v);
void strv_free(char **v);
/* Appends a copy of s; returns 0 or -ENOMEM (v unchanged on failure). */
int strv_extend(char ***v, const char *s);
char **strv_copy(char *const *v);
/* The value of NAME in a "KEY=value" vector (the last one, as later entries override earlier ones), or NULL. */
const char *strv_env_get(char *const *env, const char *name);

/* Sets or clears O_NONBLOCK; returns 0 or -errno. */
int fd_nonblock(int fd, bool on);
/* Sets or clears FD_CLOEXEC; returns 0 or -errno. */
int fd_cloexec(int fd, bool on);

/* Reads the file at path (relative to dir_fd: AT_FDCWD, or a directory's fd), opened O_RDONLY|O_CLOEXEC|flags
 * (O_NONBLOCK for what may be a FIFO, O_NOCTTY), into buf, NUL-terminated: until the end of the file, a read that
 * would block after some bytes, or size-1 bytes, whichever comes first. Returns the length, or negative errno. For
 * /proc and cgroup files, pid files. */
ssize_t read_file_at(int dir_fd, const char *path, int flags, char *buf, size_t size);
/* The same into a malloc'd buffer of the file's size (NUL-terminated; *ret_len without the NUL), for a file of at most
 * max bytes: -EFBIG for a larger one. */
int read_file_alloc(int dir_fd, const char *path, int flags, size_t max, char **ret, size_t *ret_len);

/* A 64-bit hash of n bytes (data may be NULL for none), chained from h (0 to start): to tell whether a text changed,
 * not against an adversary. */
uint64_t hash64(const void *data, size_t n, uint64_t h);
/* The slot count of an open-addressing hash table for n entries: the power of two at least twice n (probe runs stay
 * short, and a slot is the hash masked with the count minus one). */
size_t hash_table_size(size_t n);

/* A unix socket's file outlives its socket: after a crash the path still exists and bind() fails with EADDRINUSE.
 * Makes path free for bind() when it is a socket nobody holds open any more (connect() with a socket of type, e.g.
 * SOCK_STREAM, fails with ECONNREFUSED, whatever the old socket's type): removes it. Returns 0 when the path is free
 * (absent, or stale and removed); -EADDRINUSE when a process holds it open (connect() succeeds, says EAGAIN: a full
 * backlog, or EPROTOTYPE: a live socket of another type); -ENOTSOCK when something else than a socket is there;
 * another negative errno with *ret_step (may be NULL) naming what failed: "stat", "socket", "connect to the existing
 * socket", "remove the stale socket". */
int unix_path_clear_stale(const char *path, int type, const char **ret_step);
/* bind(), with umask ~mode & 0777 for its duration: bind() creates a unix socket's file with 0777 & ~umask, so the
 * file never exists with wider permissions than mode, not even until a chmod after it (which callers still run: a
 * default ACL overrides the umask). Returns 0 or negative errno. Sets the process umask briefly: call it while
 * single-threaded (baton always is). */
int bind_with_mode(int fd, const struct sockaddr *sa, socklen_t len, mode_t mode);

/* Opens /dev/null on whichever of fds 0, 1 and 2 is closed, so that no socket or file opened later takes one of
 * those numbers (and reaches a program as its stdin). Returns 0 or negative errno. */
int std_fds_ensure(void);

static inline bool streq(const char *a, const char *b) {
	return a && b && __builtin_strcmp(a, b) == 0;
}
static inline const char *strempty(const char *s) {
	return s ? s : "";
}

/* mkdir -p of path's parent directory (mode 0755 for what it creates). Returns 0 or negative errno; on failure
 * other than -ENOMEM, *ret_dir is the malloc'd component that could not be made. */
int mkdir_parents(const char *path, char **ret_dir);
