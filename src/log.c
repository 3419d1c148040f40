#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

int log_max_level = LOG_INFO;
static bool log_to_journal;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg",  [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_open(void) {
	/* JOURNAL_STREAM is "device:inode" of the journal stream; it is inherited, so it only counts when stderr is
	 * still that very stream (systemd.exec(5)). */
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	log_to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	                 (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_level_from_string(const char *s) {
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (streq(s, level_names[i]))
			return i;
	return -EINVAL;
}

const char *log_level_to_string(int level) {
	if (level >= 0 && level <= LOG_DEBUG)
		return level_names[level];
	return "?";
}

int log_internal(int level, int error, const char *fmt, ...) {
	int saved = errno;
	int e = error < 0 ? -error : error;

	if (level <= log_max_level) {
		/* Expand %m ourselves with the passed error, not errno (which the caller may have clobbered). */
		char expanded[1024];
		size_t o = 0;
		for (const char *p = fmt; *p && o + 1 < sizeof(expanded); p++) {
			if (p[0] == '%' && p[1] == 'm') {
				const char *m = strerror(e);
				size_t ml = strlen(m);
				if (ml > sizeof(expanded) - 1 - o)
					ml = sizeof(expanded) - 1 - o;
				memcpy(expanded + o, m, ml);
				o += ml;
				p++;
			} else if (p[0] == '%' && p[1] == '%') {
				if (o + 2 >= sizeof(expanded))
					break;
				expanded[o++] = *p++;
				expanded[o++] = *p;
			} else
				expanded[o++] = *p;
		}
		expanded[o] = '\0';

		char msg[2048];
		va_list ap;
		va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		vsnprintf(msg, sizeof(msg), expanded, ap);
#pragma GCC diagnostic pop
		va_end(ap);

		if (log_to_journal)
			fprintf(stderr, "<%d>%s\n", level, msg);
		else
			fprintf(stderr, "baton: %s: %s\n", level_names[level], msg);
	}
	errno = saved;
	return -e;
}
