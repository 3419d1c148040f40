#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util.h"

int log_max_level = LOG_INFO;
static bool to_journal;

static const char level_names[][sizeof("warning")] = {
	[LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_open(void) {
	/* JOURNAL_STREAM is "device:inode" of the journal stream; it is inherited, so it only counts when stderr is
	 * still that very stream (systemd.exec(5)). */
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		     (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool log_to_journal(void) {
	return to_journal;
}

int log_level_from_string(const char *s) {
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (streq(s, level_names[i]))
			return i;
	return -EINVAL;
}

/* The whole line formatted here and written at once: a line written in pieces can interleave with the program's
 * output, and fprintf() to the unbuffered stderr formats into an 8 kB buffer on the stack (glibc's
 * buffered_vfprintf). A long-lived process keeps every page of stack it ever touched, so the line is built in a small
 * buffer, and on the heap (up to LOG_LINE_MAX) when it does not fit. */
__attribute__((format(printf, 3, 0))) static void log_write(int level, int e, const char *fmt, va_list ap) {
	char small[512], prefix[32];
	_cleanup_free_ char *big = NULL;
	char *msg = small;
	size_t cap = sizeof(small);
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(small, sizeof(small), fmt, copy);
	va_end(copy);
	if (n < 0)
		return;
	const char *err = e ? strerror(e) : "";
	size_t elen = e ? 2 + strlen(err) : 0;
	if ((size_t)n + elen >= sizeof(small) && (big = malloc(LOG_LINE_MAX))) {
		msg = big;
		cap = LOG_LINE_MAX;
		n = vsnprintf(big, cap, fmt, ap);
		if (n < 0)
			return;
	}
	size_t len = (size_t)n;
	if (e && len < cap)
		len += (size_t)snprintf(msg + len, cap - len, ": %s", err);
	if (len >= cap) {
		/* Cut once, visibly (without memory for LOG_LINE_MAX, at the small buffer's size). */
		len = cap - 1;
		memcpy(msg + cap - sizeof(LOG_CUT_MARK), LOG_CUT_MARK, sizeof(LOG_CUT_MARK));
	}
	if (to_journal)
		snprintf(prefix, sizeof(prefix), "<%d>", level);
	else
		snprintf(prefix, sizeof(prefix), "baton: %s: ", level_names[level]);
	char nl = '\n';
	struct iovec iov[] = {{prefix, strlen(prefix)}, {msg, len}, {&nl, 1}};
	/* One writev() for the whole line. */
	while (writev(STDERR_FILENO, iov, ARRAY_SIZE(iov)) < 0 && errno == EINTR)
		;
}

int log_internal(int level, int error, const char *fmt, ...) {
	int saved = errno;
	int e = error < 0 ? -error : error;

	if (level <= log_max_level) {
		va_list ap;
		va_start(ap, fmt);
		log_write(level, e, fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return -e;
}
