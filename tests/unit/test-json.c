/* The JSON of the control protocol (baton(1) CONTROL SOCKET, status --json): the string writer (escapes, invalid
 * UTF-8 as U+FFFD, growth, out of memory) and the readers (round trips, unicode escapes, keys inside strings, nesting).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test.h"
#include "util.h"

static char *quote(const char *s) {
	struct json_buf b = {0};
	json_append_string(&b, s);
	return json_buf_take(&b);
}

static void test_json_escape(void) {
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"plain", "\"plain\""},
		{"", "\"\""},
		{"a\"b", "\"a\\\"b\""},
		{"back\\slash", "\"back\\\\slash\""},
		{"two\nlines\r\n", "\"two\\nlines\\r\\n\""},
		{"\t\b\f", "\"\\t\\b\\f\""},
		{"\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
		{"bad\xff", "\"bad\\ufffd\""},
		{"lone \x80 cont", "\"lone \\ufffd cont\""},
		{"cut \xe2\x82", "\"cut \\ufffd\\ufffd\""},
		{"overlong \xc0\xaf", "\"overlong \\ufffd\\ufffd\""},
		{"surrogate \xed\xa0\x80", "\"surrogate \\ufffd\\ufffd\\ufffd\""},
		{"too big \xf4\x90\x80\x80", "\"too big \\ufffd\\ufffd\\ufffd\\ufffd\""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *q = quote(cases[i].in);
		CHECK_STREQ(q, cases[i].want, "json_append_string case %zu", i);
		free(q);
	}

	char *q = quote(NULL);
	CHECK_STREQ(q, "null", "NULL is null");
	free(q);

	struct json_buf b = {0};
	json_append(&b, "{\"n\":%d,\"s\":", 42);
	json_append_string(&b, "x");
	/* Longer than json_append()'s stack buffer, so it takes the second vsnprintf() path. */
	json_append(&b, ",\"long\":\"%0300d\"}", 7);
	char *s = json_buf_take(&b);
	CHECK(s && strncmp(s, "{\"n\":42,\"s\":\"x\",\"long\":\"000", 27) == 0 && strlen(s) == 27 + 297 + 2,
	      "json_append builds and grows");
	CHECK(!b.s && b.len == 0, "json_buf_take resets the buffer");
	free(s);

	s = json_buf_take(&b);
	CHECK_STREQ(s, "", "an empty buffer takes as an empty string");
	free(s);

	b = (struct json_buf){.oom = true};
	json_append(&b, "x");
	CHECK(json_buf_take(&b) == NULL, "after oom, json_buf_take is NULL");
}

static void test_json_read(void) {
	const char *inputs[] = {
		"quote\"back\\slash/nl\ntab\tcr\rbs\bff\f",
		"\x01\x02\x1f",
		"caf\xc3\xa9 \xf0\x9f\x98\x80",
		"\"key\":\"value\"",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(inputs); i++) {
		struct json_buf b = {0};
		json_append(&b, "{\"other\":1,\"v\":");
		json_append_string(&b, inputs[i]);
		json_append(&b, "}");
		char *json = json_buf_take(&b), *out = NULL;
		CHECK(json_get_string(json, "v", &out) == 0 && streq(out, inputs[i]), "round trip %zu: %s", i, json);
		free(out);
		free(json);
	}

	char *s = NULL;
	CHECK(json_get_string("{\"v\":\"a\\u00e9\\u20ac\\ud83d\\ude00\\/\"}", "v", &s) == 0 &&
		      streq(s, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/"),
	      "\\u escapes and a surrogate pair decode to UTF-8");
	free(s);
	s = NULL;
	CHECK(json_get_string("{\"v\":\"x\\ud800y\\u0000\"}", "v", &s) == 0 && streq(s, "x\xef\xbf\xbdy\xef\xbf\xbd"),
	      "a lone surrogate and \\u0000 become U+FFFD");
	free(s);
	s = NULL;
	CHECK(json_get_string("{\"v\":\"bad \\q\"}", "v", &s) == -EINVAL && !s, "unknown escape is -EINVAL");
	CHECK(json_get_string("{\"v\":\"\\u12\"}", "v", &s) == -EINVAL && !s, "short \\u is -EINVAL");
	CHECK(json_get_string("{\"v\":\"open", "v", &s) == -EINVAL && !s, "unterminated value is -EINVAL");

	/* A key name inside a string value must not match, even when it looks exactly like a key. */
	const char *tricky =
		"{\"error\":\"bad \\\"state\\\": \\\"x\\\"\",\"msg\":\"\\\"state\\\":\",\"state\":\"ready\"}";
	CHECK(json_get_string(tricky, "state", &s) == 0 && streq(s, "ready"), "key inside a string is not matched");
	free(s);
	s = NULL;
	CHECK(json_get_string("{\"a\":\"state\",\"b\":\"x\"}", "state", &s) == -ENOENT && !s,
	      "a value equal to the key is not a key");

	const char *nested =
		"{\"ok\":true,\"generations\":[{\"n\":1,\"state\":\"ready\",\"pid\":12},"
		"{\"n\":2,\"state\":\"starting\"}],\"last_reload\":{\"ok\":false,\"error\":\"timed out\"}}";
	CHECK(json_get_string(nested, "state", &s) == 0 && streq(s, "ready"), "nested: the first occurrence wins");
	free(s);
	s = NULL;
	CHECK(json_get_string(nested, "error", &s) == 0 && streq(s, "timed out"), "nested object");
	free(s);
	s = NULL;
	CHECK(json_get_string(nested, "pid", &s) == -ENOENT && !s, "a number is not a string");
	CHECK(json_get_string(nested, "missing", &s) == -ENOENT && !s, "absent key");
	CHECK(json_get_string(nested, "ok", &s) == -ENOENT && !s, "a boolean is not a string");

	bool v = false;
	CHECK(json_get_bool(nested, "ok", &v) == 0 && v, "json_get_bool true (first occurrence)");
	CHECK(json_get_bool("{ \"x\" : false }", "x", &v) == 0 && !v, "json_get_bool false, with blanks");
	v = true;
	CHECK(json_get_bool("{\"x\":\"false\"}", "x", &v) == -ENOENT && v, "a string is not a boolean");
	CHECK(json_get_bool("{\"x\":truex}", "x", &v) == -ENOENT, "truex is not true");
	CHECK(json_get_bool("{\"x\":1}", "x", &v) == -ENOENT, "1 is not true");
	CHECK(json_get_bool("{\"y\":true}", "x", &v) == -ENOENT, "absent bool");
	CHECK(json_get_bool("{\"msg\":\"\\\"x\\\":true\",\"x\":false}", "x", &v) == 0 && !v,
	      "bool key inside a string is not matched");
}

int main(void) {
	test_json_escape();
	test_json_read();
	return test_done();
}
