/* What the harnesses share: a count of the open fds, to catch leaks that ASan cannot see. */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The fds a harness could leak: sockets, and the pipe whose inode is `pipe_ino` (0: none) that it passes around.
 * Counting every fd would not do: libFuzzer starts llvm-symbolizer the first time it prints a new function, and
 * keeps pipes to it open. */
static inline int fuzz_count_fds(ino_t pipe_ino, bool print) {
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d) {
		perror("opendir /proc/self/fd");
		abort();
	}
	for (struct dirent *de; (de = readdir(d));) {
		struct stat st;
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) < 0)
			continue;
		if (S_ISSOCK(st.st_mode) || (pipe_ino != 0 && S_ISFIFO(st.st_mode) && st.st_ino == pipe_ino)) {
			n++;
			if (print)
				fprintf(stderr, "  fd %d: %s\n", fd,
					S_ISSOCK(st.st_mode) ? "socket" : "the harness's pipe");
		}
	}
	closedir(d);
	return n;
}

/* Called once per input: remembers the count on the first run and compares it every `every` runs. */
static inline void fuzz_check_fds(const char *harness, ino_t pipe_ino, unsigned every) {
	static unsigned long runs;
	static int baseline = -1;

	if (baseline < 0)
		baseline = fuzz_count_fds(pipe_ino, false);
	else if (++runs % every == 0) {
		int now = fuzz_count_fds(pipe_ino, false);
		if (now != baseline) {
			fprintf(stderr, "%s: %d sockets and pipes open after %lu runs, %d at the start: a leak\n",
				harness, now, runs, baseline);
			(void)fuzz_count_fds(pipe_ino, true);
			abort();
		}
	}
}
