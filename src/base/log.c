#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

int log_max_level = LOG_INFO;
static bool to_journal;

static const char *const level_names[] = {
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

int log_internal(int level, int error, const char *fmt, ...) {
	int saved = errno;
	int e = error < 0 ? -error : error;

	if (level <= log_max_level) {
		char msg[LOG_LINE_MAX];
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		if (e != 0 && n >= 0 && (size_t)n < sizeof(msg))
			n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(e));
		if (n >= (int)sizeof(msg))
			memcpy(msg + sizeof(msg) - sizeof(LOG_CUT_MARK), LOG_CUT_MARK, sizeof(LOG_CUT_MARK));

		if (to_journal)
			fprintf(stderr, "<%d>%s\n", level, msg);
		else
			fprintf(stderr, "baton: %s: %s\n", level_names[level], msg);
	}
	errno = saved;
	return -e;
}
