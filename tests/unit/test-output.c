/* The line matcher of readiness.type log (output.h): lines split across reads, several lines in one read, a last
 * line without a newline, a line longer than OUTPUT_LINE_MAX (matched once, on its head), NUL bytes, ^ and $; and
 * output_pump passing the bytes through unchanged. */
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

#include "output.h"
#include "test.h"
#include "util.h"

static regex_t compile(const char *pattern) {
	regex_t re;
	/* As config.c compiles readiness.pattern. */
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0) {
		printf("# bad pattern %s\n", pattern);
		exit(EXIT_FAILURE);
	}
	return re;
}

static struct output *output_new(void) {
	struct output *o = calloc(1, sizeof(*o));
	o->fd = -1;
	o->target = -1;
	o->out_fd = -1;
	return o;
}

static bool feed(struct output *o, const char *s, const regex_t *re) {
	return output_feed(o, s, strlen(s), re);
}

/* A fresh matcher fed the pieces in turn: the index of the first piece whose feed returned true, or -1. */
static int first_match(const char *pattern, const char *const *pieces, size_t n) {
	regex_t re = compile(pattern);
	struct output *o = output_new();
	int at = -1;
	for (size_t i = 0; i < n && at < 0; i++)
		if (feed(o, pieces[i], &re))
			at = (int)i;
	regfree(&re);
	free(o);
	return at;
}

static void test_lines(void) {
	regex_t re = compile("ready");
	struct output *o = output_new();

	CHECK(!feed(o, "starting\n", &re), "a line without the pattern");
	CHECK(!feed(o, "rea", &re), "half the line: no match before its newline");
	CHECK(!feed(o, "dy", &re), "the other half, still no newline");
	CHECK(feed(o, "\n", &re), "the newline completes it: match");
	CHECK(o->len == 0, "nothing held after the line");
	CHECK(!feed(o, "more\n", &re), "the next line is on its own");
	CHECK(!feed(o, "", &re), "an empty feed");
	CHECK(!feed(o, "\n\n\n", &re), "empty lines");

	/* Several lines in one read: a match in any of them counts, also in the middle. */
	CHECK(feed(o, "a\nready\nb\n", &re), "several lines per feed, the middle one matches");
	CHECK(!feed(o, "a\nb\nc\n", &re), "several lines per feed, none matches");
	CHECK(feed(o, "x\ny\nready now", &re) == false, "the matching line's newline has not come");
	CHECK(feed(o, "\n", &re), "... and then it comes");

	/* The line is kept across feeds from where the last newline left it. */
	CHECK(!feed(o, "xxre", &re) && !feed(o, "ad", &re) && feed(o, "y\n", &re), "a match split across three feeds");
	CHECK(!feed(o, "re\nady\n", &re), "a newline between the halves: no match");
	CHECK(!feed(o, "rea", &re), "half of ... ");
	CHECK(!feed(o, "\ndy\n", &re), "... a line ended early: no match");
	regfree(&re);
	free(o);

	/* No trailing newline: output_feed does not match a line that never ended (output_pump does, at end of file).
	 */
	const char *no_newline[] = {"started", " and ready"};
	CHECK(first_match("ready", no_newline, 2) == -1, "a last line without a newline is not matched by output_feed");
	const char *byte_by_byte[] = {"r", "e", "a", "d", "y", "\n"};
	CHECK(first_match("^ready$", byte_by_byte, 6) == 5, "fed one byte at a time: matches at the newline");
	/* Without a pattern nothing matches, but the bytes still go through the line buffer. */
	o = output_new();
	CHECK(!output_feed(o, "ready\n", 6, NULL), "no pattern: never a match");
	free(o);
}

static void test_anchors(void) {
	const char *line[] = {"ready\n"};
	const char *prefixed[] = {"not ready\n"};
	const char *suffixed[] = {"ready soon\n"};
	const char *later[] = {"x\nready\n"};
	CHECK(first_match("^ready$", line, 1) == 0, "^ready$ matches the line 'ready'");
	CHECK(first_match("^ready$", prefixed, 1) == -1, "^ready$ does not match 'not ready'");
	CHECK(first_match("^ready$", suffixed, 1) == -1, "^ready$ does not match 'ready soon'");
	CHECK(first_match("^ready$", later, 1) == 0, "^ anchors at the start of a later line in the same feed");
	CHECK(first_match("ready$", prefixed, 1) == 0, "ready$ matches 'not ready'");
	CHECK(first_match("^ready", suffixed, 1) == 0, "^ready matches 'ready soon'");
	const char *split[] = {"not ", "ready\n"};
	CHECK(first_match("^ready$", split, 2) == -1, "^ is the line's start, not the feed's");
	const char *two[] = {"ready\nnot\n"};
	CHECK(first_match("^ready\nnot$", two, 1) == -1, "a pattern never spans two lines");
	const char *crlf[] = {"ready\r\n"};
	CHECK(first_match("^ready$", crlf, 1) == -1, "a CR stays part of the line");
	const char *ere[] = {"listening on port 8080\n"};
	CHECK(first_match("port [0-9]+$", ere, 1) == 0, "extended syntax: +");
	CHECK(first_match("(http|https) on", ere, 1) == -1, "extended syntax: alternation, no match");
	const char *ere2[] = {"https on 443\n"};
	CHECK(first_match("^(http|https) on [0-9]{3}$", ere2, 1) == 0, "extended syntax: alternation and {3}");
}

static void test_nul(void) {
	regex_t re = compile("READY");
	struct output *o = output_new();
	static const char a[] = "abc\0READY\n";
	CHECK(!output_feed(o, a, sizeof(a) - 1, &re), "a NUL ends what the pattern sees: READY after it is not seen");
	regfree(&re);
	re = compile("^abc$");
	static const char b[] = "abc\0xyz\n";
	CHECK(output_feed(o, b, sizeof(b) - 1, &re), "the part before the NUL is matched");
	static const char c[] = "\0\0\n";
	CHECK(!output_feed(o, c, sizeof(c) - 1, &re), "NULs only: an empty line for the pattern");
	/* The NUL does not end the line: what follows the next newline is a new line. */
	static const char d[] = "x\0y\nabc\n";
	CHECK(output_feed(o, d, sizeof(d) - 1, &re), "the line after a NUL-holding line is matched");
	regfree(&re);
	free(o);
}

static void test_long_lines(void) {
	regex_t head = compile("^HEAD"), tail = compile("TAIL"), any = compile("x");
	char *line = malloc(3 * OUTPUT_LINE_MAX);
	struct output *o;

	/* A long line whose head matches: one match, when the head is full, before any newline. */
	o = output_new();
	memset(line, 'x', 3 * OUTPUT_LINE_MAX);
	memcpy(line, "HEAD", 4);
	CHECK(!output_feed(o, line, OUTPUT_LINE_MAX - 1, &head), "one byte short of OUTPUT_LINE_MAX: not yet");
	CHECK(output_feed(o, line + OUTPUT_LINE_MAX - 1, 1, &head),
	      "the head is full: matched on it, no newline needed");
	CHECK(o->overlong, "the rest of the line is skipped");
	CHECK(!output_feed(o, line, OUTPUT_LINE_MAX, &any), "the tail of the line is not matched again");
	CHECK(!output_feed(o, "HEAD x\n", 7, &head), "not even when it looks like a line start");
	CHECK(!o->overlong && o->len == 0, "its newline ends the long line");
	CHECK(output_feed(o, "HEAD\n", 5, &head), "the line after it is matched normally");
	free(o);

	/* A pattern only in the tail (past OUTPUT_LINE_MAX) is never seen. */
	o = output_new();
	memset(line, 'y', 3 * OUTPUT_LINE_MAX);
	memcpy(line + OUTPUT_LINE_MAX + 10, "TAIL", 4);
	line[2 * OUTPUT_LINE_MAX] = '\n';
	CHECK(!output_feed(o, line, 2 * OUTPUT_LINE_MAX + 1, &tail), "a match past OUTPUT_LINE_MAX is not seen");
	CHECK(output_feed(o, "TAIL\n", 5, &tail), "the next line is");
	free(o);

	/* One long line in one feed with a newline: matched once, the feed returns true once. */
	o = output_new();
	memset(line, 'x', 3 * OUTPUT_LINE_MAX);
	line[2 * OUTPUT_LINE_MAX] = '\n';
	CHECK(output_feed(o, line, 2 * OUTPUT_LINE_MAX + 1, &any), "a long line with its newline in one feed: match");
	CHECK(!o->overlong && o->len == 0, "and the matcher is back at a line start");
	free(o);

	/* Exactly OUTPUT_LINE_MAX bytes, then the newline in the next feed: one match only. */
	o = output_new();
	memset(line, 'x', OUTPUT_LINE_MAX);
	CHECK(output_feed(o, line, OUTPUT_LINE_MAX, &any), "exactly OUTPUT_LINE_MAX bytes: matched");
	CHECK(!output_feed(o, "\n", 1, &any), "its newline does not match it a second time");
	CHECK(!output_feed(o, "\n", 1, &any), "an empty line after it");
	free(o);

	/* Exactly OUTPUT_LINE_MAX - 1 bytes plus the newline: an ordinary line. */
	o = output_new();
	CHECK(!output_feed(o, line, OUTPUT_LINE_MAX - 1, &head), "OUTPUT_LINE_MAX - 1 bytes: no match yet");
	CHECK(!o->overlong, "not overlong");
	CHECK(output_feed(o, "\n", 1, &any), "matched at its newline");
	free(o);

	free(line);
	regfree(&head);
	regfree(&tail);
	regfree(&any);
}

static void test_pump(void) {
	int in[2], out[2];
	CHECK(pipe2(in, O_CLOEXEC | O_NONBLOCK) == 0 && pipe2(out, O_CLOEXEC | O_NONBLOCK) == 0, "pipes");
	bool blocked = false;
	regex_t re = compile("^ready$");
	struct output *o = output_new();
	o->fd = in[0];
	output_open(o, out[1]);

	CHECK(output_pump(o, &re, &blocked) == 0, "an empty pipe: 0 (EAGAIN)");
	static const char bytes[] = "partial \0\x01\xff line";
	CHECK(write(in[1], bytes, sizeof(bytes) - 1) == sizeof(bytes) - 1, "write a partial line");
	CHECK(output_pump(o, &re, &blocked) == 0, "a partial line: no match");
	char buf[256];
	ssize_t n = read(out[0], buf, sizeof(buf));
	CHECK(n == sizeof(bytes) - 1 && memcmp(buf, bytes, sizeof(bytes) - 1) == 0,
	      "the partial line is passed on at once, byte for byte (%zd bytes)", n);
	CHECK(write(in[1], "\nready\n", 7) == 7, "write the rest");
	CHECK(output_pump(o, &re, &blocked) == 1, "a matching line: 1");
	n = read(out[0], buf, sizeof(buf));
	CHECK(n == 7 && memcmp(buf, "\nready\n", 7) == 0, "passed on unchanged");
	CHECK(output_pump(o, NULL, &blocked) == 0, "no pattern: 0");

	/* A target that takes nothing more: the bytes wait, reading stops, baton does not block. */
	char fill[4096];
	memset(fill, 'x', sizeof(fill));
	size_t filled = 0;
	for (ssize_t k; (k = write(out[1], fill, sizeof(fill))) > 0;)
		filled += (size_t)k;
	CHECK(write(in[1], "ready\n", 6) == 6, "write a line while the target is full");
	CHECK(output_pump(o, &re, &blocked) == 1 && blocked, "matched, and blocked instead of waiting");
	CHECK(!output_flush(o), "still full: pending");
	for (size_t got = 0; got < filled;) {
		ssize_t k = read(out[0], buf, sizeof(buf) < filled - got ? sizeof(buf) : filled - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	CHECK(output_flush(o), "the reader took the filler: the pending bytes go out");
	n = read(out[0], buf, sizeof(buf));
	CHECK(n == 6 && memcmp(buf, "ready\n", 6) == 0, "the pending bytes, unchanged");

	/* A last line without a newline counts at end of file. */
	CHECK(write(in[1], "ready", 5) == 5, "write a last line without a newline");
	close(in[1]);
	CHECK(output_pump(o, &re, &blocked) == 1, "end of file after 'ready': matched");
	CHECK(output_pump(o, &re, &blocked) == -EPIPE, "then -EPIPE");
	n = read(out[0], buf, sizeof(buf));
	CHECK(n == 5 && memcmp(buf, "ready", 5) == 0, "the last line is passed on");
	close(in[0]);
	close(out[0]);
	close(out[1]);
	output_close(o);
	regfree(&re);
	free(o);
}

int main(void) {
	test_lines();
	test_anchors();
	test_nul();
	test_long_lines();
	test_pump();
	return test_done();
}
