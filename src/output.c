#include "output.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static bool line_done(struct output *o, const regex_t *re) {
	o->line[o->len] = '\0';
	bool match = re && regexec(re, o->line, 0, NULL, 0) == 0;
	o->len = 0;
	return match;
}

bool output_feed(struct output *o, const char *buf, size_t n, const regex_t *re) {
	bool match = false;
	while (n > 0) {
		const char *nl = memchr(buf, '\n', n);
		size_t chunk = nl ? (size_t)(nl - buf) : n;
		if (!o->overlong) {
			size_t room = OUTPUT_LINE_MAX - o->len, take = chunk < room ? chunk : room;
			memcpy(o->line + o->len, buf, take);
			o->len += take;
			if (o->len == OUTPUT_LINE_MAX) {
				/* Matched once on its head; the tail (up to the newline) belongs to the same line. */
				match |= line_done(o, re);
				o->overlong = true;
			}
		}
		if (!nl)
			break;
		if (!o->overlong)
			match |= line_done(o, re);
		o->overlong = false;
		o->len = 0;
		buf = nl + 1;
		n -= chunk + 1;
	}
	return match;
}

static void write_all(int fd, const char *buf, size_t n) {
	while (n > 0) {
		ssize_t k = write(fd, buf, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		buf += k;
		n -= (size_t)k;
	}
}

int output_pump(struct output *o, const regex_t *re) {
	char buf[16384];
	bool match = false;
	for (int i = 0; i < 4; i++) {
		ssize_t n = read(o->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		if (n == 0) {
			/* A last line without a newline still counts. */
			if (o->len > 0 && !o->overlong && line_done(o, re))
				return 1;
			return -EPIPE;
		}
		write_all(o->target, buf, (size_t)n);
		if (output_feed(o, buf, (size_t)n, re))
			match = true;
	}
	return match ? 1 : 0;
}
