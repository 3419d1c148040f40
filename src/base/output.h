/* A program's stdout or stderr read through a pipe (readiness.type log): every byte is passed on to baton's own
 * stdout or stderr at once and unchanged, and the lines are matched against readiness.pattern on the side. Does not
 * log. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* Longer lines are matched on their first OUTPUT_LINE_MAX bytes. */
#define OUTPUT_LINE_MAX 4096

#define OUTPUT_PENDING_MAX 16384

struct output {
	int fd; /* the pipe's read end (non-blocking); -1 once closed */
	int target; /* where the bytes go: 1 or 2 */
	int out_fd; /* target opened for writes that do not block (output_open); -1: write to target as it is */
	bool out_socket; /* out_fd is a socket: send() with MSG_DONTWAIT */
	size_t pending_off, pending_len; /* bytes read but not written yet: the target would have blocked */
	char pending[OUTPUT_PENDING_MAX];
	size_t len; /* bytes of the current line held in line[] */
	bool overlong; /* the current line passed OUTPUT_LINE_MAX: it was matched already, the rest is skipped */
	char line[OUTPUT_LINE_MAX + 1];
};

/* Feeds n bytes to the line matcher. Returns true when a line (completed by '\n' in buf, or reaching
 * OUTPUT_LINE_MAX) matches re. A NUL byte inside a line ends what the pattern sees of it. Pure. */
bool output_feed(struct output *o, const char *buf, size_t n, const regex_t *re);

/* Opens o->target for writes that never block baton's event loop: a pipe or FIFO is opened again through
 * /proc/self/fd with O_NONBLOCK (a file description of its own, so nobody else's flags change), a socket (the journal)
 * is written with MSG_DONTWAIT, anything else (a file, a terminal) as it is. */
void output_open(struct output *o, int target);
void output_close(struct output *o);

/* Writes what is pending. Returns true when nothing is left. */
bool output_flush(struct output *o);

/* Reads what the pipe holds (at most a few reads, so one busy program cannot starve the event loop), writes it to
 * the target, and with re matches it. Returns 1 when a line matched, 0 when nothing did (yet), -EPIPE at end of file,
 * other negative errno on a read error. When the target would block, the rest is kept pending, reading stops and
 * *ret_blocked is set: the caller waits for the target to take more (output_flush) before it pumps again, so the
 * program feels its reader's pace, as it would without baton in between. A write error to the target (a closed
 * stdout) drops the output rather than blocking the program. */
int output_pump(struct output *o, const regex_t *re, bool *ret_blocked);
