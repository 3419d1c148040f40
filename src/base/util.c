#include "util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

void strv_freep(char ***p) {
	strv_free(*p);
}

int parse_uint64(const char *s, uint64_t *ret) {
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	/* "010" is an error, not 8 or 10: a leading zero is only allowed alone. */
	if (s[0] == '0' && s[1] != '\0')
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int parse_uint_max(const char *s, uint64_t max, uint64_t *ret) {
	uint64_t v;
	int r = parse_uint64(s, &v);
	if (r < 0)
		return r;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_bool(const char *s, bool *ret) {
	if (streq(s, "true")) {
		*ret = true;
		return 0;
	}
	if (streq(s, "false")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static const struct {
	const char *suffix;
	uint64_t usec;
} duration_units[] = {
	/* Longest suffixes that share a prefix come first ("ms" before "m"). */
	{"us", 1}, {"ms", USEC_PER_MSEC}, {"s", USEC_PER_SEC}, {"m", 60 * USEC_PER_SEC}, {"h", 3600 * USEC_PER_SEC},
};

int parse_duration(const char *s, uint64_t *ret_usec) {
	if (!s || !*s)
		return -EINVAL;
	size_t digits = strspn(s, "0123456789");
	if (digits == 0 || digits > 20)
		return -EINVAL;
	const char *unit = s + digits;
	for (size_t i = 0; i < ARRAY_SIZE(duration_units); i++) {
		if (!streq(unit, duration_units[i].suffix))
			continue;
		char num[21];
		memcpy(num, s, digits);
		num[digits] = '\0';
		uint64_t v;
		int r = parse_uint64(num, &v);
		if (r < 0)
			return r;
		if (v > UINT64_MAX / 2 / duration_units[i].usec)
			return -ERANGE;
		*ret_usec = v * duration_units[i].usec;
		return 0;
	}
	return -EINVAL;
}

const char *format_duration(uint64_t usec, char buf[static 32]) {
	for (size_t i = ARRAY_SIZE(duration_units); i-- > 0;) {
		uint64_t u = duration_units[i].usec;
		if (usec % u == 0 && (usec > 0 || u == USEC_PER_SEC)) {
			snprintf(buf, 32, "%" PRIu64 "%s", usec / u, duration_units[i].suffix);
			return buf;
		}
	}
	snprintf(buf, 32, "%" PRIu64 "us", usec);
	return buf;
}

/* Names in arrays of their own, not pointers: a table of pointers is written by the dynamic linker at each start
 * (baton is position-independent), and those pages count in every baton's private memory (issue 23). */
static const char signal_names[][sizeof("SIGSTKFLT")] = {
	[SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
	[SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",     [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
	[SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
	[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM", [SIGSTKFLT] = "SIGSTKFLT",
	[SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",     [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",
	[SIGTTIN] = "SIGTTIN", [SIGTTOU] = "SIGTTOU",     [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU",
	[SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
	[SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",       [SIGSYS] = "SIGSYS",
};

const char *signal_name(int sig) {
	if (sig > 0 && (size_t)sig < ARRAY_SIZE(signal_names) && signal_names[sig][0])
		return signal_names[sig];
	return NULL;
}

int parse_signal(const char *s, int *ret) {
	if (!s || !*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		uint64_t v;
		int r = parse_uint_max(s, 64, &v);
		if (r < 0 || v == 0)
			return -EINVAL;
		*ret = (int)v;
		return 0;
	}
	const char *bare = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 1; i < ARRAY_SIZE(signal_names); i++)
		if (signal_names[i][0] && streq(signal_names[i] + 3, bare)) {
			*ret = (int)i;
			return 0;
		}
	return -EINVAL;
}

size_t utf8_char_length(const unsigned char *p) {
	unsigned char c = p[0];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 2, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

bool utf8_is_valid(const char *s) {
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_char_length(p);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

char *strdup_printf(const char *fmt, ...) {
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

int fail_error(char **ret_error, int r, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int k = vasprintf(ret_error, fmt, ap);
	va_end(ap);
	if (k < 0) {
		*ret_error = NULL;
		return -ENOMEM;
	}
	return r;
}

uint64_t now_usec(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

size_t strv_length(char *const *v) {
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void strv_free(char **v) {
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int strv_extend(char ***v, const char *s) {
	size_t n = strv_length(*v);
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	char **nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[n] = copy;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

char **strv_copy(char *const *v) {
	size_t n = strv_length(v);
	char **c = calloc(n + 1, sizeof(char *));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i] = strdup(v[i]);
		if (!c[i]) {
			strv_free(c);
			return NULL;
		}
	}
	return c;
}

int fd_nonblock(int fd, bool on) {
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -errno;
	int nflags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
	if (nflags != flags && fcntl(fd, F_SETFL, nflags) < 0)
		return -errno;
	return 0;
}

int fd_cloexec(int fd, bool on) {
	int flags = fcntl(fd, F_GETFD);
	if (flags < 0)
		return -errno;
	int nflags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
	if (nflags != flags && fcntl(fd, F_SETFD, nflags) < 0)
		return -errno;
	return 0;
}

/* Reads into buf until it is full, the end of the file, or a read that would block after some bytes (a FIFO whose
 * writer has written part of a pid: what is there is what the caller judges). The count, or negative errno. */
static ssize_t read_full(int fd, char *buf, size_t size) {
	size_t n = 0;
	while (n < size) {
		ssize_t k = read(fd, buf + n, size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN && n > 0)
			break;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	return (ssize_t)n;
}

ssize_t read_file_at(int dir_fd, const char *path, int flags, char *buf, size_t size) {
	_cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	ssize_t n = read_full(fd, buf, size - 1);
	if (n < 0)
		return n;
	buf[n] = '\0';
	return n;
}

int read_file_alloc(int dir_fd, const char *path, int flags, size_t max, char **ret, size_t *ret_len) {
	_cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | flags);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size = 0, next = 1024;
	struct stat st;

	if (fd < 0)
		return -errno;
	/* A regular file says its size: one read into a buffer a byte larger, which shows a file that grew meanwhile
	 * (a 50 kB file cost eight reads and seven copies, half of a control command's own time: issue 23). */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		next = (uint64_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
	/* On the heap, not the stack: a long-lived process keeps every page of stack it ever touched. Grown as it
	 * fills, so that a small file costs little (a pipe, /proc, has no size to ask for): up to one byte more than
	 * max, which says the file is too large. */
	while (len == size) {
		if (size > max)
			return -EFBIG;
		size = size == 0 ? next : size * 2;
		if (size > max + 1)
			size = max + 1;
		char *nbuf = realloc(buf, size + 1);
		if (!nbuf)
			return -ENOMEM;
		buf = nbuf;
		ssize_t n = read_full(fd, buf + len, size - len);
		if (n < 0)
			return (int)n;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* murmur3's finalizer: a bijection in which each input bit flips each output bit with probability about 1/2. */
static uint64_t mix64(uint64_t x) {
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	return x ^ (x >> 33);
}

uint64_t hash64(const void *data, size_t n, uint64_t h) {
	const unsigned char *p = data;
	h = mix64(h ^ (uint64_t)n);
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = mix64(h ^ w);
	}
	uint64_t w = 0;
	if (n > 0) /* memcpy() takes no NULL, not even for 0 bytes */
		memcpy(&w, p, n);
	return mix64(h ^ w ^ ((uint64_t)n << 56));
}

size_t hash_table_size(size_t n) {
	size_t cap = 2;
	while (cap < 2 * n)
		cap *= 2;
	return cap;
}

int unix_path_clear_stale(const char *path, int type, const char **ret_step) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return fail_why(ret_step, -ENAMETOOLONG, "stat");
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail_why(ret_step, -errno, "stat");
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;

	/* Non-blocking: a blocking connect() to a stream listener whose backlog is full would wait. */
	_cleanup_close_ int probe = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return fail_why(ret_step, -errno, "socket");
	if (connect(probe, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
		return -EADDRINUSE;
	switch (errno) {
	case ECONNREFUSED:
		break;
	case EAGAIN: /* a live listener with a full backlog */
	case EINPROGRESS:
	case EPROTOTYPE: /* a live socket of another type */
		return -EADDRINUSE;
	default:
		return fail_why(ret_step, -errno, "connect to the existing socket");
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return fail_why(ret_step, -errno, "remove the stale socket");
	return 0;
}

int bind_with_mode(int fd, const struct sockaddr *sa, socklen_t len, mode_t mode) {
	mode_t old_umask = umask(~mode & 0777);
	int r = bind(fd, sa, len) < 0 ? -errno : 0;
	umask(old_umask);
	return r;
}

const char *strv_env_get(char *const *env, const char *name) {
	size_t len = strlen(name);
	const char *found = NULL;
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
			found = env[i] + len + 1;
	return found;
}

int std_fds_ensure(void) {
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* open() takes the lowest free number: this very fd. */
		int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (null < 0)
			return -errno;
		if (null != fd) {
			close(null);
			return -EBADF;
		}
	}
	return 0;
}

/* mkdir -p of path's parent directory. On failure *ret_dir names the component that could not be made. */
int mkdir_parents(const char *path, char **ret_dir) {
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return -ENOMEM;

	char *slash = strrchr(p, '/');
	if (!slash || slash == p)
		return 0; /* relative name in the current directory, or a file in / */
	*slash = '\0';

	for (char *q = p + 1;; q++) {
		if (*q != '/' && *q != '\0')
			continue;
		char saved = *q;
		*q = '\0';
		/* EEXIST also covers a non-directory in the way; the next mkdir() or the bind() then says ENOTDIR. */
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			int r = -errno;
			*ret_dir = TAKE_PTR(p);
			return r;
		}
		if (saved == '\0')
			return 0;
		*q = saved;
	}
}
