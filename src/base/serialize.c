/* The records of the state `baton upgrade` hands over (serialize.h): escaping, and taking a record apart field by
 * field. */
#include "serialize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int fds_add(struct ser_fds *s, int fd) {
	int *a = realloc(s->fds, (s->n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	s->fds = a;
	s->fds[s->n++] = fd;
	return 0;
}

/* ---- writing ---- */

int ser_fd(struct ser_writer *w, int fd) {
	if (fd >= 0 && fds_add(&w->fds, fd) < 0)
		w->oom = true;
	return fd;
}

void ser_put_escaped(FILE *f, const char *s, size_t n) {
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

void ser_put_string(struct ser_writer *w, const char *key, const char *s) {
	if (!s)
		return;
	fprintf(w->f, "%s ", key);
	ser_put_escaped(w->f, s, strlen(s));
	fputc('\n', w->f);
}

void ser_put_strv(struct ser_writer *w, const char *key, char *const *v) {
	for (size_t i = 0; v && v[i]; i++)
		ser_put_string(w, key, v[i]);
}

/* ---- reading ---- */

int ser_fail(struct ser_reader *rd, const char *why) {
	if (!rd->error)
		rd->error = rd->key ? strdup_printf("line %u (%s): %s", rd->line, rd->key, why) : strdup(why);
	return -EBADMSG;
}

int ser_fail_whole(struct ser_reader *rd, const char *why) {
	if (!rd->error)
		rd->error = strdup(why);
	return -EBADMSG;
}

int ser_next(struct ser_reader *rd) {
	if (rd->again) {
		rd->again = false;
		rd->rest = rd->rest_start;
		return 1;
	}
	rd->key = NULL;
	ssize_t n = getline(&rd->buf, &rd->size, rd->f);
	if (n < 0)
		return 0;
	rd->line++;
	if (n > 0 && rd->buf[n - 1] == '\n')
		rd->buf[--n] = '\0';
	rd->key = rd->buf;
	char *sp = strchr(rd->buf, ' ');
	if (sp) {
		*sp = '\0';
		rd->rest = sp + 1;
	} else
		rd->rest = rd->buf + n;
	rd->rest_start = rd->rest;
	return 1;
}

void ser_unread(struct ser_reader *rd) {
	rd->again = true;
}

bool ser_key_has_prefix(const struct ser_reader *rd, const char *prefix) {
	return rd->key && strncmp(rd->key, prefix, strlen(prefix)) == 0;
}

int ser_number(struct ser_reader *rd, uint64_t *ret) {
	char *p = rd->rest, *end;
	if (*p == '\0')
		return ser_fail(rd, "a number is missing");
	errno = 0;
	if (*p == '-') {
		long long v = strtoll(p, &end, 10);
		*ret = (uint64_t)v;
	} else
		*ret = strtoull(p, &end, 10);
	if (errno != 0 || end == p || (*end != ' ' && *end != '\0'))
		return ser_fail(rd, "not a number");
	rd->rest = *end ? end + 1 : end;
	return 0;
}

int ser_int(struct ser_reader *rd, int *ret) {
	uint64_t v;
	int k = ser_number(rd, &v);
	if (k < 0)
		return k;
	int64_t s = (int64_t)v;
	if (s < INT32_MIN || s > INT32_MAX)
		return ser_fail(rd, "number out of range");
	*ret = (int)s;
	return 0;
}

int ser_unsigned(struct ser_reader *rd, unsigned *ret) {
	uint64_t v;
	int k = ser_number(rd, &v);
	if (k < 0)
		return k;
	if (v > UINT32_MAX)
		return ser_fail(rd, "number out of range");
	*ret = (unsigned)v;
	return 0;
}

int ser_bool(struct ser_reader *rd, bool *ret) {
	uint64_t v;
	int k = ser_number(rd, &v);
	if (k < 0)
		return k;
	if (v > 1)
		return ser_fail(rd, "expected 0 or 1");
	*ret = v == 1;
	return 0;
}

int ser_take_fd(struct ser_reader *rd, int *ret, bool optional) {
	int fd;
	int k = ser_int(rd, &fd);
	if (k < 0)
		return k;
	if (fd < 0 && optional) {
		*ret = -1;
		return 0;
	}
	if (fd < 3)
		return ser_fail(rd, "not a file descriptor baton holds");
	if (rd->check_fds && fcntl(fd, F_GETFD) < 0)
		return ser_fail(rd, "the file descriptor is not open");
	if (fds_add(&rd->fds, fd) < 0)
		return -ENOMEM;
	*ret = fd;
	return 0;
}

int ser_name(struct ser_reader *rd, const char *(*name)(int), int max, int *ret) {
	char *w = rd->rest, *sp = strchr(w, ' ');
	if (sp) {
		*sp = '\0';
		rd->rest = sp + 1;
	} else
		rd->rest = w + strlen(w);
	for (int i = 0; i < max; i++)
		if (name(i) && streq(w, name(i))) {
			*ret = i;
			return 0;
		}
	return ser_fail(rd, "unknown name");
}

/* The escape at p (after its '\\'): the byte it stands for, and how many characters it took; 0 when it is none. */
static size_t unescape(const char *p, char *ret) {
	if (*p == '\\' || *p == 'n') {
		*ret = *p == 'n' ? '\n' : '\\';
		return 1;
	}
	if (*p != 'x' || !p[1] || !p[2])
		return 0;
	char hex[3] = {p[1], p[2], 0}, *end;
	unsigned long v = strtoul(hex, &end, 16);
	if (*end || hex[0] == '+' || hex[0] == '-' || hex[0] == ' ')
		return 0;
	*ret = (char)v;
	return 3;
}

int ser_string(struct ser_reader *rd, char **ret, size_t *ret_len) {
	if (*ret)
		return ser_fail(rd, "given twice");
	const char *p = rd->rest;
	_cleanup_free_ char *out = malloc(strlen(p) + 1);
	if (!out)
		return -ENOMEM;
	char *o = out;
	while (*p) {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		size_t n = unescape(p + 1, o++);
		if (n == 0)
			return ser_fail(rd, "bad escape");
		p += 1 + n;
	}
	*o = '\0';
	if (ret_len)
		*ret_len = (size_t)(o - out);
	*ret = TAKE_PTR(out);
	rd->rest = rd->rest + strlen(rd->rest); /* consumed */
	return 0;
}

int ser_strv_add(struct ser_reader *rd, char ***v) {
	_cleanup_free_ char *s = NULL;
	int k = ser_string(rd, &s, NULL);
	if (k < 0)
		return k;
	return strv_extend(v, s);
}

int ser_block(struct ser_reader *rd, size_t len, const char *what, char **ret) {
	_cleanup_free_ char *text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	if (fread(text, 1, len, rd->f) != len || fgetc(rd->f) != '\n') {
		_cleanup_free_ char *why = strdup_printf("%s is cut short", what);
		return ser_fail(rd, why ? why : "cut short");
	}
	text[len] = '\0';
	/* The lines of the block count for the records after it. */
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n')
			rd->line++;
	rd->line++;
	*ret = TAKE_PTR(text);
	return 0;
}
