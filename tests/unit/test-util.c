/* Strict parsing of numbers, booleans, durations and signals: the config's scalars all go through these. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "proc.h"
#include "util.h"

static void test_uint(void) {
	uint64_t v = 7;
	CHECK(parse_uint64("0", &v) == 0 && v == 0, "0 parses");
	CHECK(parse_uint64("80", &v) == 0 && v == 80, "80 parses");
	CHECK(parse_uint64("18446744073709551615", &v) == 0 && v == UINT64_MAX, "UINT64_MAX parses");
	CHECK(parse_uint64("18446744073709551616", &v) == -ERANGE, "UINT64_MAX+1 is out of range");
	static const char *const bad[] = {"", "80abc", "010", "00", "0x50", "+80", "-1", " 80", "80 ", "8 0", "1e3"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 7;
		CHECK(parse_uint64(bad[i], &v) == -EINVAL && v == 7, "'%s' is rejected and leaves the result alone",
		      bad[i]);
	}
	CHECK(parse_uint64(NULL, &v) == -EINVAL, "NULL is rejected");
	CHECK(parse_uint_max("65535", 65535, &v) == 0 && v == 65535, "max itself is accepted");
	CHECK(parse_uint_max("65536", 65535, &v) == -ERANGE, "max+1 is out of range");
}

static void test_bool(void) {
	bool b = false;
	CHECK(parse_bool("true", &b) == 0 && b, "true");
	CHECK(parse_bool("false", &b) == 0 && !b, "false");
	static const char *const bad[] = {"flase", "True", "TRUE", "yes", "1", "on", "", "true "};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(parse_bool(bad[i], &b) == -EINVAL, "'%s' is not a boolean", bad[i]);
}

static void test_duration(void) {
	uint64_t u = 0;
	CHECK(parse_duration("250ms", &u) == 0 && u == 250 * USEC_PER_MSEC, "250ms");
	CHECK(parse_duration("30s", &u) == 0 && u == 30 * USEC_PER_SEC, "30s");
	CHECK(parse_duration("5m", &u) == 0 && u == 300 * USEC_PER_SEC, "5m");
	CHECK(parse_duration("1h", &u) == 0 && u == 3600 * USEC_PER_SEC, "1h");
	CHECK(parse_duration("0s", &u) == 0 && u == 0, "0s");
	CHECK(parse_duration("15us", &u) == 0 && u == 15, "15us");
	static const char *const bad[] = {
		"30", "", "s", "30 s", "30sec", "1.5s", "-1s", "030s", "30S", "0x10s", "99999999999999999999h"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(parse_duration(bad[i], &u) < 0, "'%s' is not a duration", bad[i]);

	char buf[32];
	CHECK_STREQ(format_duration(30 * USEC_PER_SEC, buf), "30s", "30s formats back");
	CHECK_STREQ(format_duration(1500 * USEC_PER_MSEC, buf), "1500ms", "1.5s formats as ms");
	CHECK_STREQ(format_duration(3600 * USEC_PER_SEC, buf), "1h", "an hour formats as 1h");
	CHECK_STREQ(format_duration(0, buf), "0s", "zero formats as 0s");
	CHECK_STREQ(format_duration(7, buf), "7us", "microseconds stay microseconds");
}

static void test_signal(void) {
	int sig = 0;
	CHECK(parse_signal("SIGTERM", &sig) == 0 && sig == SIGTERM, "SIGTERM");
	CHECK(parse_signal("HUP", &sig) == 0 && sig == SIGHUP, "HUP");
	CHECK(parse_signal("10", &sig) == 0 && sig == 10, "a number");
	static const char *const bad[] = {"", "SIGFOO", "sigterm", "0", "65", "SIG", "-1", "010"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(parse_signal(bad[i], &sig) == -EINVAL, "'%s' is not a signal", bad[i]);
	CHECK_STREQ(signal_name(SIGKILL), "SIGKILL", "SIGKILL's name");
	CHECK(signal_name(0) == NULL && signal_name(200) == NULL, "no name for 0 and 200");
}

static void test_strv(void) {
	char **v = NULL;
	CHECK(strv_extend(&v, "a") == 0 && strv_extend(&v, "b") == 0 && strv_length(v) == 2, "extend twice");
	char **c = strv_copy(v);
	CHECK(c && strv_length(c) == 2 && strcmp(c[1], "b") == 0 && c[1] != v[1], "copy is deep");
	strv_free(c);
	strv_free(v);
	CHECK(strv_length(NULL) == 0, "NULL has length 0");
}

static void test_utf8(void) {
	CHECK(utf8_is_valid("") && utf8_is_valid("plain") && utf8_is_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
	      "ASCII and 2-, 3-, 4-byte sequences are valid");
	static const char *const bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
					  "\x80",     "\xc3",         "\xe2\x82",     "\xff"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(!utf8_is_valid(bad[i]), "invalid UTF-8 #%zu rejected", i);
	CHECK(utf8_char_length((const unsigned char *)"\xe2\x82\xac") == 3, "a 3-byte sequence has length 3");
	CHECK(utf8_char_length((const unsigned char *)"\xe2\x82") == 0, "a truncated sequence has length 0");
}

/* fd_nonblock() and fd_cloexec() set and clear their flag, and say EBADF for a closed fd. */
static void test_fd_flags(void) {
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(fd_cloexec(p[0], true) == 0 && (fcntl(p[0], F_GETFD) & FD_CLOEXEC), "fd_cloexec on");
	CHECK(fd_cloexec(p[0], false) == 0 && !(fcntl(p[0], F_GETFD) & FD_CLOEXEC), "fd_cloexec off");
	CHECK(fd_nonblock(p[0], true) == 0 && (fcntl(p[0], F_GETFL) & O_NONBLOCK), "fd_nonblock on");
	CHECK(fd_nonblock(p[0], false) == 0 && !(fcntl(p[0], F_GETFL) & O_NONBLOCK), "fd_nonblock off");
	close(p[0]);
	close(p[1]);
	CHECK(fd_cloexec(p[0], true) == -EBADF && fd_nonblock(p[0], true) == -EBADF, "a closed fd is -EBADF");
}

static void write_text(const char *path, const char *text) {
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* read_file_at(): the whole file, NUL-terminated; cut at size-1; relative to a directory; a FIFO with nothing in it;
 * the errno of what cannot be opened. */
static void test_read_file_at(void) {
	char dir[] = "/tmp/baton-test-util-XXXXXX", path[128], buf[16];
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/f", dir);
	write_text(path, "12345\n");
	CHECK(read_file_at(AT_FDCWD, path, 0, buf, sizeof(buf)) == 6 && streq(buf, "12345\n"), "a small file, whole");
	CHECK(read_file_at(AT_FDCWD, path, 0, buf, 4) == 3 && streq(buf, "123"), "cut at size-1, NUL-terminated");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(read_file_at(dfd, "f", 0, buf, sizeof(buf)) == 6 && streq(buf, "12345\n"), "relative to a directory fd");
	CHECK(read_file_at(dfd, "missing", 0, buf, sizeof(buf)) == -ENOENT, "a missing file: -ENOENT");
	CHECK(read_file_at(AT_FDCWD, dir, 0, buf, sizeof(buf)) == -EISDIR, "a directory: -EISDIR");
	write_text(path, "");
	CHECK(read_file_at(dfd, "f", 0, buf, sizeof(buf)) == 0 && buf[0] == '\0', "an empty file: 0, \"\"");
	unlink(path);
	CHECK(mkfifo(path, 0600) == 0, "mkfifo");
	CHECK(read_file_at(dfd, "f", O_NONBLOCK, buf, sizeof(buf)) == 0, "a FIFO without a writer: 0, not a hang");
	int w = open(path, O_RDWR | O_CLOEXEC); /* a writer that stays: reads would block */
	CHECK(read_file_at(dfd, "f", O_NONBLOCK, buf, sizeof(buf)) == -EAGAIN, "an empty FIFO with a writer: -EAGAIN");
	CHECK(write(w, "42", 2) == 2, "write to the FIFO");
	CHECK(read_file_at(dfd, "f", O_NONBLOCK, buf, sizeof(buf)) == 2 && streq(buf, "42"),
	      "a FIFO with a writer still there: what was written");
	close(w);
	close(dfd);
	unlink(path);
	rmdir(dir);
}

/* read_file_alloc(): a buffer of the file's size, for files of up to max bytes; a larger one is -EFBIG. */
static void test_read_file_alloc(void) {
	char dir[] = "/tmp/baton-test-util-XXXXXX", path[128];
	char *text = NULL;
	size_t len = 0;
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/f", dir);
	write_text(path, "a: 1\n");
	CHECK(read_file_alloc(AT_FDCWD, path, 0, 100, &text, &len) == 0 && len == 5 && streq(text, "a: 1\n"),
	      "a small file, whole and NUL-terminated");
	free(text);
	static char big[10001];
	memset(big, 'x', 10000);
	write_text(path, big);
	CHECK(read_file_alloc(AT_FDCWD, path, 0, 10000, &text, &len) == 0 && len == 10000 && strlen(text) == 10000,
	      "a file of exactly max bytes (past two doublings of the buffer)");
	free(text);
	text = NULL;
	CHECK(read_file_alloc(AT_FDCWD, path, 0, 9999, &text, &len) == -EFBIG && !text,
	      "one byte more than max: -EFBIG");
	CHECK(read_file_alloc(AT_FDCWD, path, 0, 4095, &text, &len) == -EFBIG && !text, "well over max: -EFBIG");
	write_text(path, "");
	CHECK(read_file_alloc(AT_FDCWD, path, 0, 100, &text, &len) == 0 && len == 0 && streq(text, ""),
	      "an empty file");
	free(text);
	text = NULL;
	unlink(path);
	CHECK(read_file_alloc(AT_FDCWD, path, 0, 100, &text, &len) == -ENOENT && !text, "a missing file: -ENOENT");
	int p[2];
	CHECK(pipe(p) == 0 && write(p[1], "from a pipe", 11) == 11 && close(p[1]) == 0, "a pipe");
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p[0]);
	CHECK(read_file_alloc(AT_FDCWD, fdpath, 0, 100, &text, &len) == 0 && streq(text, "from a pipe"),
	      "a pipe, which has no size to ask for");
	free(text);
	close(p[0]);
	rmdir(dir);
}

static int bind_unix(int type, const char *path) {
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (bind_with_mode(fd, (struct sockaddr *)&sa, sizeof(sa), 0640) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* unix_path_clear_stale(): only a socket nobody holds is removed; bind_with_mode(): the file's mode from bind() on,
 * and the umask as it was afterwards. */
static void test_unix_path(void) {
	char dir[] = "/tmp/baton-test-util-XXXXXX", path[128];
	const char *step = NULL;
	struct stat st;
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(path, sizeof(path), "%s/s", dir);

	CHECK(unix_path_clear_stale(path, SOCK_STREAM, &step) == 0, "no file: free");
	mode_t before = umask(0022);
	int fd = bind_unix(SOCK_STREAM, path);
	CHECK(fd >= 0 && lstat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "bound with mode 0640 (got %o)",
	      (unsigned)(st.st_mode & 0777));
	CHECK(umask(before) == 0022, "the umask is as it was");
	CHECK(unix_path_clear_stale(path, SOCK_STREAM, &step) == -EADDRINUSE, "a live listener: -EADDRINUSE");
	CHECK(unix_path_clear_stale(path, SOCK_DGRAM, &step) == -EADDRINUSE, "a live socket of another type too");
	CHECK(lstat(path, &st) == 0, "a live socket's file stays");
	close(fd);
	CHECK(unix_path_clear_stale(path, SOCK_DGRAM, &step) == 0 && lstat(path, &st) < 0 && errno == ENOENT,
	      "a stale socket (of any type) is removed");

	fd = bind_unix(SOCK_DGRAM, path);
	CHECK(unix_path_clear_stale(path, SOCK_DGRAM, &step) == -EADDRINUSE, "a live dgram socket: -EADDRINUSE");
	close(fd);
	unlink(path);

	write_text(path, "not a socket");
	CHECK(unix_path_clear_stale(path, SOCK_STREAM, &step) == -ENOTSOCK, "a regular file: -ENOTSOCK");
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode), "the regular file stays");
	unlink(path);

	snprintf(path, sizeof(path), "%s/f/s", dir);
	char file[128];
	snprintf(file, sizeof(file), "%s/f", dir);
	write_text(file, "");
	step = NULL;
	CHECK(unix_path_clear_stale(path, SOCK_STREAM, &step) == -ENOTDIR && streq(step, "stat"),
	      "a path through a file: -ENOTDIR at \"stat\"");
	unlink(file);
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK(unix_path_clear_stale(longpath, SOCK_STREAM, &step) == -ENAMETOOLONG, "a path too long: -ENAMETOOLONG");
	rmdir(dir);
}

/* What baton reads of a process it cannot reap (MAINPID= named another process's child): its state and, while it is
 * a zombie, its wait status from /proc/PID/stat. */
static void test_proc(void) {
	CHECK(proc_state(getpid()) == 'R', "our own state is R (%c)", proc_state(getpid()));
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			if (i == 1)
				raise(SIGKILL);
			_exit(7);
		}
		siginfo_t si;
		CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0, "the child ended (not reaped)");
		CHECK(proc_state(pid) == 'Z', "a zombie's state is Z (%c)", proc_state(pid));
		int status = proc_exit_status(pid), want = i == 0 ? 7 << 8 : SIGKILL;
		CHECK(status == want, "its wait status from /proc: 0x%x (want 0x%x)", (unsigned)status, (unsigned)want);
		char buf[64];
		CHECK_STREQ(wait_status_describe(status, buf), i == 0 ? "exited with status 7" : "was killed by SIGKILL",
			    "described");
		waitpid(pid, NULL, 0);
		CHECK(proc_state(pid) == 0 && proc_exit_status(pid) == WAIT_STATUS_UNKNOWN, "once reaped: unknown");
	}
	char buf[64];
	CHECK_STREQ(wait_status_describe(WAIT_STATUS_UNKNOWN, buf), "ended with an unknown status (not baton's child)",
		    "an unknown status described");
	CHECK(wait_status_exit_code(WAIT_STATUS_UNKNOWN) == 255, "an unknown status is exit status 255");
	CHECK(wait_status_exit_code(3 << 8) == 3 && wait_status_exit_code(SIGTERM) == 128 + SIGTERM,
	      "exit codes: N, 128+N");
}

static void test_hash_table_size(void) {
	static const size_t n[] = {0, 1, 2, 3, 4, 5, 1000, 1024, 1025}, want[] = {2, 2, 4, 8, 8, 16, 2048, 2048, 4096};
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		CHECK(hash_table_size(n[i]) == want[i], "hash_table_size(%zu) = %zu", n[i], want[i]);
}

int main(void) {
	test_utf8();
	test_uint();
	test_bool();
	test_duration();
	test_signal();
	test_strv();
	test_fd_flags();
	test_read_file_at();
	test_read_file_alloc();
	test_unix_path();
	test_proc();
	test_hash_table_size();
	return test_done();
}
