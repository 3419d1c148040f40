/* control.socket as written in a file, for the control commands (config.h): `baton status -c FILE` needs only the
 * socket, and loading the whole config for it (libcyaml, every listener validated) cost 5 ms and more for a file of
 * 1,000 listeners (issue 23), where `baton --version` takes 1.2 ms.
 *
 * The fast path reads the text and finds the top-level key "control" itself, and is taken only where that is exact:
 *  - no "control" anywhere in the text (and no backslash, which could escape one into a key): the key is absent;
 *  - otherwise, when every line at column 0 is blank, a comment or a plain top-level key ("name:"), and every line
 *    closes what it opens (quotes, brackets). Then no multi-line construct reaches column 0 (a block scalar or a
 *    multi-line plain scalar ends before a line less indented than its key), so the "control:" line at column 0 is
 *    the root mapping's key, and its value is the text up to the next key at column 0. A value "socket: /path" of
 *    plain path characters is read here; any other form of that section is parsed alone by libyaml.
 * Anything else (flow style at the top, anchors, directives, a document marker, a key twice...) goes to libyaml's
 * reading of the whole document, as before. */
#include <fcntl.h>
#include <string.h>

#include "config-internal.h"
#include "config-libcyaml.h"
#include "util.h"

#define CONFIG_FILE_MAX (1024 * 1024)

static bool is_key_char(char c) {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '.';
}

/* Whether the line [p, end) closes every quote and bracket it opens, as far as a conservative reading can tell: a
 * quote inside a plain scalar ("it's") counts as opening one, which only sends the file to the slow path. */
static bool line_closed(const char *p, const char *end) {
	/* Most lines hold none of the characters that matter here: skipped in a tight loop (the scan of a file of
	 * 1,000 listeners was most of a control command's own time: issue 23). */
	static const bool special[256] = {
		['"'] = true, ['\''] = true, ['#'] = true, ['['] = true, ['{'] = true, [']'] = true, ['}'] = true};
	const char *first = p;
	while (first < end && !special[(unsigned char)*first])
		first++;
	if (first == end)
		return true;
	char quote = 0;
	int depth = 0;
	for (const char *s = first; s < end; s++) {
		if (quote == '"') {
			if (*s == '\\' && s + 1 < end)
				s++;
			else if (*s == '"')
				quote = 0;
		} else if (quote == '\'') {
			if (*s == '\'' && s + 1 < end && s[1] == '\'')
				s++;
			else if (*s == '\'')
				quote = 0;
		} else if (*s == '"' || *s == '\'')
			quote = *s;
		else if (*s == '#' && (s == p || s[-1] == ' '))
			break;
		else if (*s == '[' || *s == '{')
			depth++;
		else if (*s == ']' || *s == '}')
			depth--;
	}
	return !quote && depth == 0;
}

/* The length of the plain top-level key at the start of the line, or 0 when the line is not "key:" or "key: ...". */
static size_t key_length(const char *p, const char *end) {
	const char *s = p;
	if (s < end && is_key_char(*s) && *s != '-' && *s != '.')
		while (s < end && is_key_char(*s))
			s++;
	if (s == p || s >= end || *s != ':')
		return 0;
	return s + 1 == end || s[1] == ' ' ? (size_t)(s - p) : 0;
}

/* "  socket: /path" lines of one indentation (comments and blank lines aside), read by hand when the value is a plain
 * path; -EAGAIN for any other form. */
static int section_by_hand(const char *p, const char *end, char **ret) {
	size_t indent = 0;
	const char *found = NULL, *found_end = NULL;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		eol = eol ? eol : end;
		size_t n = strspn(p, " ");
		if (p + n < eol && p[n] != '#') {
			if (indent == 0)
				indent = n;
			if (n == 0 || n != indent || eol - (p + n) < 8 || strncmp(p + n, "socket: ", 8) != 0 || found)
				return -EAGAIN;
			found = p + n + 8;
			found_end = eol;
		}
		p = eol + (eol < end);
	}
	if (!found)
		return -EAGAIN;
	while (found_end > found && found_end[-1] == ' ')
		found_end--;
	/* A plain absolute path reads as itself; "" and '' as the empty string; anything else is libyaml's. */
	size_t len = (size_t)(found_end - found);
	if (len == 2 && (memcmp(found, "\"\"", 2) == 0 || memcmp(found, "''", 2) == 0))
		len = 0;
	else if (len == 0 || found[0] != '/' ||
		 strspn(found, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			       "0123456789._-+@=,") != len)
		return -EAGAIN;
	*ret = strndup(found, len);
	return *ret ? 0 : -ENOMEM;
}

/* The section "control: ..." alone, parsed by libyaml: only control.socket as a plain string, no alias. */
static int section_by_libyaml(const char *p, size_t len, char **ret) {
	const char *why;
	if (config_libcyaml_load(&why) < 0)
		return -EAGAIN;
	yaml_parser_t parser;
	if (!libcyaml.yaml_parser_initialize(&parser))
		return -ENOMEM;
	libcyaml.yaml_parser_set_input_string(&parser, (const unsigned char *)p, len);
	/* Events: stream, document, mapping, "control", mapping, then key/value pairs of scalars. Anything else (an
	 * alias, a list, a nested mapping) is not the plain form: the whole document decides (-EIO). */
	int r = -EAGAIN, depth = 0;
	bool seen_control = false, want_value = false, is_socket = false;
	while (r == -EAGAIN) {
		yaml_event_t e;
		if (!libcyaml.yaml_parser_parse(&parser, &e)) {
			r = -EIO;
			break;
		}
		switch (e.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
			break;
		case YAML_MAPPING_START_EVENT:
			if (++depth > 2 || (depth == 2 && !seen_control))
				r = -EIO;
			break;
		case YAML_MAPPING_END_EVENT:
			if (--depth < 2)
				r = -ENOENT; /* control's mapping ended without socket */
			break;
		case YAML_SCALAR_EVENT:
			if (depth == 1 && !seen_control)
				seen_control = true; /* the key "control", by construction of the section */
			else if (depth == 2 && !want_value) {
				is_socket = e.data.scalar.length == 6 && memcmp(e.data.scalar.value, "socket", 6) == 0;
				want_value = true;
			} else if (depth == 2) {
				if (is_socket) {
					*ret = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
					r = *ret ? 0 : -ENOMEM;
				}
				want_value = false;
			} else
				r = -EIO;
			break;
		default:
			r = -EIO;
			break;
		}
		libcyaml.yaml_event_delete(&e);
	}
	libcyaml.yaml_parser_delete(&parser);
	return r;
}

int config_peek_text(const char *text, size_t len, char **ret) {
	if (memchr(text, '\0', len) || memchr(text, '\t', len))
		return -EAGAIN; /* UTF-16 or binary; a tab, which YAML does not take for indentation */
	if (!memmem(text, len, "control", 7) && !memchr(text, '\\', len))
		return -ENOENT;
	const char *end = text + len, *section = NULL, *section_end = NULL;
	for (const char *p = text; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		eol = eol ? eol : end;
		if (!line_closed(p, eol))
			return -EAGAIN;
		/* A block sequence may sit at column 0 under its key ("listeners:" then "- name: ..."): content, not a
		 * key; "---" (a document marker) is neither, and goes to the slow path. */
		bool entry = eol - p >= 1 && p[0] == '-' && (eol - p == 1 || p[1] == ' ');
		if (p < eol && *p != ' ' && *p != '#' && *p != '\r' && !entry) {
			size_t k = key_length(p, eol);
			if (k == 0)
				return -EAGAIN;
			if (section && !section_end)
				section_end = p;
			if (k == 7 && memcmp(p, "control", 7) == 0) {
				if (section)
					return -EAGAIN; /* twice: an invalid config, for the whole document to report */
				section = p;
			}
		}
		p = eol + (eol < end);
	}
	if (!section)
		return -ENOENT;
	if (!section_end)
		section_end = end;
	const char *value = section + 8; /* after "control:" */
	const char *eol = memchr(section, '\n', (size_t)(section_end - section));
	bool inline_value = false;
	for (const char *s = value; s < (eol ? eol : section_end) && *s != '#'; s++)
		inline_value |= *s != ' ' && *s != '\r';
	if (!inline_value && eol) {
		int r = section_by_hand(eol + 1, section_end, ret);
		if (r != -EAGAIN)
			return r;
	}
	int r = section_by_libyaml(section, (size_t)(section_end - section), ret);
	return r == -EIO ? -EAGAIN : r;
}

int config_peek_control_socket(const char *path, char **ret) {
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_file_alloc(AT_FDCWD, path, O_NOCTTY, CONFIG_FILE_MAX, &text, &len);
	if (r < 0)
		return r;
	r = config_peek_text(text, len, ret);
	if (r != -EAGAIN)
		return r;
	/* Only the YAML document is needed, not a valid config. */
	return config_yaml_peek(path, "control.socket", ret);
}
