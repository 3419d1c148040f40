#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- JSON building ---- */

static void json_reserve(struct json_buf *b, size_t extra) {
	if (b->oom)
		return;
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return;
		}
		cap *= 2;
	}
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return;
	}
	b->s = s;
	b->cap = cap;
}

static void json_append_mem(struct json_buf *b, const char *p, size_t n) {
	json_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void json_append(struct json_buf *b, const char *fmt, ...) {
	va_list ap;
	char small[256];

	if (b->oom)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true; /* an encoding error; the reply would be wrong, so treat it like a failed allocation */
		return;
	}
	if ((size_t)n < sizeof(small)) {
		json_append_mem(b, small, (size_t)n);
		return;
	}
	json_reserve(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void json_append_string(struct json_buf *b, const char *s) {
	if (!s) {
		json_append_mem(b, "null", 4);
		return;
	}

	json_append_mem(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		unsigned char c = *p;
		const char *esc = NULL;

		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		default:
			break;
		}
		if (esc) {
			json_append_mem(b, esc, strlen(esc));
			p++;
		} else if (c < 0x20) {
			/* RFC 8259 section 7: control characters must be escaped. */
			char u[7];
			snprintf(u, sizeof(u), "\\u%04x", c);
			json_append_mem(b, u, 6);
			p++;
		} else {
			size_t n = utf8_char_length(p);
			if (n == 0) {
				/* A JSON text is UTF-8 (RFC 8259 section 8.1); a stray byte (a Latin-1 file name, a cut
				 * multi-byte character) would make the whole reply unparsable for strict readers. */
				json_append_mem(b, "\\ufffd", 6);
				p++;
			} else {
				json_append_mem(b, (const char *)p, n);
				p += n;
			}
		}
	}
	json_append_mem(b, "\"", 1);
}

char *json_buf_take(struct json_buf *b) {
	char *s = b->oom ? NULL : b->s ? b->s : strdup("");

	if (b->oom)
		free(b->s);
	*b = (struct json_buf){0};
	return s;
}

/* ---- JSON reading ---- */

/* p points at an opening '"'. Returns the position after the closing quote, or NULL if it is unterminated. */
static const char *json_skip_string(const char *p) {
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return NULL;
			p++;
		} else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static int hex4(const char *p, uint32_t *ret) {
	uint32_t v = 0;

	for (size_t i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -EINVAL; /* also stops at the NUL terminator */
	}
	*ret = v;
	return 0;
}

static size_t utf8_encode(uint32_t cp, char out[static 4]) {
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Unescapes the string literal at p (at its opening '"'). The result is never longer than the literal: every escape
 * is at least as long as the UTF-8 it stands for (\uXXXX = 6 bytes for at most 3; a pair = 12 for 4). */
static int json_parse_string(const char *p, char **ret) {
	const char *end = json_skip_string(p);
	if (!end)
		return -EINVAL;

	_cleanup_free_ char *s = malloc((size_t)(end - p));
	if (!s)
		return -ENOMEM;
	size_t n = 0;

	for (p++; p < end - 1; p++) {
		if (*p != '\\') {
			s[n++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			s[n++] = *p;
			break;
		case 'b':
			s[n++] = '\b';
			break;
		case 'f':
			s[n++] = '\f';
			break;
		case 'n':
			s[n++] = '\n';
			break;
		case 'r':
			s[n++] = '\r';
			break;
		case 't':
			s[n++] = '\t';
			break;
		case 'u': {
			uint32_t cp, lo;
			if (hex4(p + 1, &cp) < 0)
				return -EINVAL;
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && p[1] == '\\' && p[2] == 'u' && hex4(p + 3, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p += 6;
			} else if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0)
				/* A lone surrogate has no UTF-8 form, and U+0000 would cut the C string short. */
				cp = 0xfffd;
			n += utf8_encode(cp, s + n);
			break;
		}
		default:
			return -EINVAL;
		}
	}
	s[n] = '\0';
	*ret = TAKE_PTR(s);
	return 0;
}

static const char *skip_ws(const char *p) {
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Finds the value of the first "key": outside of any string value. Strings are skipped whole, so a value that
 * happens to contain "key": is never taken for the key. */
static int json_find_value(const char *json, const char *key, const char **ret) {
	size_t klen = strlen(key);

	for (const char *p = json; *p;) {
		if (*p != '"') {
			p++;
			continue;
		}
		const char *end = json_skip_string(p);
		if (!end)
			return -ENOENT;
		const char *after = skip_ws(end);
		/* Our keys never need escapes, so a raw comparison of the literal is enough. */
		if (*after == ':' && (size_t)(end - p) == klen + 2 && memcmp(p + 1, key, klen) == 0) {
			*ret = skip_ws(after + 1);
			return 0;
		}
		p = end;
	}
	return -ENOENT;
}

int json_get_string(const char *json, const char *key, char **ret) {
	const char *v;
	int r = json_find_value(json, key, &v);
	if (r < 0)
		return r;
	if (*v != '"')
		return -ENOENT;
	return json_parse_string(v, ret);
}

static bool json_word_at(const char *p, const char *word) {
	size_t n = strlen(word);
	/* "trueish" is not true: the literal must end at a delimiter. */
	return strncmp(p, word, n) == 0 && !((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
					     (p[n] >= '0' && p[n] <= '9') || p[n] == '_');
}

int json_get_bool(const char *json, const char *key, bool *ret) {
	const char *v;
	int r = json_find_value(json, key, &v);
	if (r < 0)
		return r;
	if (json_word_at(v, "true")) {
		*ret = true;
		return 0;
	}
	if (json_word_at(v, "false")) {
		*ret = false;
		return 0;
	}
	return -ENOENT;
}
