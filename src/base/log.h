/* Logging to stderr, for the tops of the call chains (main.c, the event loop, the supervisor) and the few warnings
 * a module's header names (sockets.h). When stderr is the journal (JOURNAL_STREAM matches it), lines carry a <N>
 * priority prefix so journald keeps the level; otherwise they read "baton: level: message". */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <syslog.h>

extern int log_max_level; /* LOG_INFO by default */

void log_open(void);
/* Whether log_open() found stderr to be the journal (systemd.exec(5) JOURNAL_STREAM). */
bool log_to_journal(void);
/* "error", "warning", "notice", "info", "debug" → LOG_*; -EINVAL otherwise. */
int log_level_from_string(const char *s);

/* A log message is cut at this many bytes (with the strerror part), visibly: it then ends in LOG_CUT_MARK. The log is
 * for people; what a program reads whole (a control reply) is not built through it. */
#define LOG_LINE_MAX 2048
#define LOG_CUT_MARK "[...]"

/* Logs and returns -abs(error), so a caller can write `return log_error_errno(r, "Failed to bind %s", a);`.
 * With a non-zero error the line ends in ": " and strerror(abs(error)) (C11 printf has no %m). */
int log_internal(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)
