#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

void output_open(struct output *o, int target) {
	struct stat st;
	char path[64];
	o->target = target;
	o->out_fd = -1;
	o->out_socket = false;
	if (fstat(target, &st) < 0)
		return;
	if (S_ISFIFO(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", target);
		o->out_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	} else if (S_ISSOCK(st.st_mode)) {
		o->out_fd = fcntl(target, F_DUPFD_CLOEXEC, 3);
		o->out_socket = o->out_fd >= 0;
	}
}

void output_close(struct output *o) {
	if (o->out_fd >= 0)
		close(o->out_fd);
	o->out_fd = -1;
}

/* Writes up to n bytes without blocking (where the target allows that); returns how many went out. An error other
 * than "would block" counts as all written: that output is dropped. */
static size_t write_some(struct output *o, const char *buf, size_t n) {
	size_t done = 0;
	while (done < n) {
		ssize_t k;
		if (o->out_socket)
			k = send(o->out_fd, buf + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			k = write(o->out_fd >= 0 ? o->out_fd : o->target, buf + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return done;
		if (k <= 0)
			return n;
		done += (size_t)k;
	}
	return done;
}

bool output_flush(struct output *o) {
	size_t k = write_some(o, o->pending + o->pending_off, o->pending_len - o->pending_off);
	o->pending_off += k;
	if (o->pending_off < o->pending_len)
		return false;
	o->pending_off = o->pending_len = 0;
	return true;
}

int output_pump(struct output *o, const regex_t *re, bool *ret_blocked) {
	char buf[OUTPUT_PENDING_MAX];
	bool match = false;
	*ret_blocked = false;
	if (o->pending_len > 0 && !output_flush(o)) {
		*ret_blocked = true;
		return 0;
	}
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
		if (output_feed(o, buf, (size_t)n, re))
			match = true;
		size_t k = write_some(o, buf, (size_t)n);
		if (k < (size_t)n) {
			memcpy(o->pending, buf + k, (size_t)n - k);
			o->pending_off = 0;
			o->pending_len = (size_t)n - k;
			*ret_blocked = true;
			break;
		}
	}
	return match ? 1 : 0;
}
