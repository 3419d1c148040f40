/* A program's stdout or stderr read through a pipe (readiness.type log): every byte is passed on to baton's own
 * stdout or stderr at once and unchanged, and the lines are matched against readiness.pattern on the side. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* Longer lines are matched on their first OUTPUT_LINE_MAX bytes. */
#define OUTPUT_LINE_MAX 4096

struct output {
	int fd; /* the pipe's read end (non-blocking); -1 once closed */
	int target; /* where the bytes go: 1 or 2 */
	size_t len; /* bytes of the current line held in line[] */
	bool overlong; /* the current line passed OUTPUT_LINE_MAX: it was matched already, the rest is skipped */
	char line[OUTPUT_LINE_MAX + 1];
};

/* Feeds n bytes to the line matcher. Returns true when a line (completed by '\n' in buf, or reaching
 * OUTPUT_LINE_MAX) matches re. A NUL byte inside a line ends what the pattern sees of it. Pure. */
bool output_feed(struct output *o, const char *buf, size_t n, const regex_t *re);

/* Reads what the pipe holds (at most a few reads, so one busy program cannot starve the event loop), writes it to
 * o->target, and with re matches it. Returns 1 when a line matched, 0 when nothing did (yet), -EPIPE at end of file,
 * other negative errno on a read error. A write error to the target (a closed stdout) is ignored: the program's
 * output is dropped rather than the program blocked. */
int output_pump(struct output *o, const regex_t *re);
