#include "util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

static const char *const signal_names[] = {
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
	if (sig > 0 && (size_t)sig < ARRAY_SIZE(signal_names))
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
		if (signal_names[i] && streq(signal_names[i] + 3, bare)) {
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
