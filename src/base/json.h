/* Just enough JSON for the control protocol: building replies, and reading the few fields the clients need. Does not
 * log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A growing string for building JSON replies. On allocation failure it remembers it (oom) and further appends do
 * nothing; json_buf_take() then returns NULL. */
struct json_buf {
	char *s;
	size_t len, cap;
	bool oom;
};
void json_append(struct json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included ("\n", "\"", "\\", control bytes as \u00XX; invalid UTF-8
 * bytes as \ufffd). NULL appends null. */
void json_append_string(struct json_buf *b, const char *s);
char *json_buf_take(struct json_buf *b);

/* Minimal readers for the replies baton itself writes (flat or nested objects; the first occurrence of "key" at any
 * depth wins; a "key": inside a string value is not a key). Return 0 and a malloc'd, unescaped string / the boolean,
 * -ENOENT when the key is absent or its value has another type, -EINVAL for a malformed string, -ENOMEM. Pure. */
int json_get_string(const char *json, const char *key, char **ret);
int json_get_bool(const char *json, const char *key, bool *ret);
