/* The text of the state `baton upgrade` hands over (run-state.c is its envelope): one record a line, "KEY VALUE...",
 * numbers in decimal, a string last on its line with '\\', newlines and control bytes escaped. Each module that owns
 * state writes and reads its own records with these (as systemd's units serialize themselves); the fds a state names
 * are collected as they are written and read, so that what survives the exec is exactly what the text names.
 * Knows nothing of baton's structs; logs nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The fds a state names, in the order written (or read). */
struct ser_fds {
	int *fds;
	size_t n;
};

struct ser_writer {
	FILE *f;
	struct ser_fds fds;
	bool oom; /* an fd could not be added to fds: the write fails */
};

/* Records fd (when >= 0) as one the state names, and returns it: fprintf(w->f, "x %d\n", ser_fd(w, fd)). */
int ser_fd(struct ser_writer *w, int fd);
/* n bytes of s, escaped ('\\' "\\\\", '\n' "\\n", other control bytes "\\xHH"). */
void ser_put_escaped(FILE *f, const char *s, size_t n);
/* "KEY VALUE\n": s escaped; nothing for NULL. */
void ser_put_string(struct ser_writer *w, const char *key, const char *s);
/* One "KEY VALUE" line per string of v (NULL-terminated; v may be NULL). */
void ser_put_strv(struct ser_writer *w, const char *key, char *const *v);

struct ser_reader {
	FILE *f;
	unsigned line;
	char *buf;
	size_t size;
	char *key, *rest; /* the current record: its key, and what is not taken of the rest */
	char *rest_start;
	bool again; /* ser_unread(): the next ser_next() returns the current record again */
	bool check_fds; /* each fd must be open in this process */
	struct ser_fds fds;
	char *error; /* the first failure, with its line */
};

/* Reads the next record into rd->key and rd->rest. Returns 1, or 0 at the end of the file (or on a read error:
 * ferror(rd->f)). */
int ser_next(struct ser_reader *rd);
/* The current record is not the caller's (an owner reading its records met the next owner's): ser_next() returns it
 * again. */
void ser_unread(struct ser_reader *rd);
/* Whether the current record's key starts with prefix ("gen.": a record of the generation being read). */
bool ser_key_has_prefix(const struct ser_reader *rd, const char *prefix);
/* Sets rd->error ("line 12 (gen.times): why", or why alone without a current record) unless set, and returns
 * -EBADMSG. */
int ser_fail(struct ser_reader *rd, const char *why);

/* The same for what is wrong with the records together ("the cgroup subtree is incomplete"): without a line. */
int ser_fail_whole(struct ser_reader *rd, const char *why);

/* The next number of the record (an int64_t read as such; the narrower ones check their range). Each returns 0 or
 * negative errno, with rd->error set. */
int ser_number(struct ser_reader *rd, uint64_t *ret);
int ser_int(struct ser_reader *rd, int *ret);
int ser_unsigned(struct ser_reader *rd, unsigned *ret);
int ser_bool(struct ser_reader *rd, bool *ret);
/* An fd baton holds: above 2 (or, when optional, -1 for none), open when rd->check_fds; added to rd->fds. */
int ser_take_fd(struct ser_reader *rd, int *ret, bool optional);
/* The next word of the record, NUL-terminated in place, looked up in name(0 .. max-1) (an enum's names). */
int ser_name(struct ser_reader *rd, const char *(*name)(int), int max, int *ret);
/* The rest of the record, unescaped: a malloc'd string (*ret_len bytes when not NULL; NUL-terminated). *ret must be
 * NULL: a field read twice is an error. */
int ser_string(struct ser_reader *rd, char **ret, size_t *ret_len);
/* The rest of the record, unescaped, appended to the string vector *v. */
int ser_strv_add(struct ser_reader *rd, char ***v);
/* A block of len raw bytes after the record, then '\n' (the config in YAML): malloc'd, NUL-terminated; its lines
 * count for the records after it. When it is cut short, the error says "WHAT is cut short". */
int ser_block(struct ser_reader *rd, size_t len, const char *what, char **ret);
