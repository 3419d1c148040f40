/* What baton reads about processes: /proc/PID files, and the words for a wait status. */
#include "proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "exit-status.h"
#include "util.h"

ssize_t read_small_file(const char *path, int flags, char *buf, size_t size) {
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

pid_t proc_parent_of(pid_t pid) {
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small_file(path, 0, buf, sizeof(buf)) <= 0)
		return 0;
	/* The comm field may hold spaces and parentheses: the fields are counted from its last ')'. */
	char *p = strrchr(buf, ')');
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

int proc_catches_signal(pid_t pid, int sig) {
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ssize_t n = read_small_file(path, 0, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 ? (int)n : -EIO;
	const char *p = strstr(buf, "\nSigCgt:");
	unsigned long long mask;
	if (!p || sscanf(p + 8, " %llx", &mask) != 1)
		return -EIO;
	return sig >= 1 && sig <= 64 && (mask >> (sig - 1)) & 1;
}

/* The contract's exit status for a wait status: the exit code, or 128+N for signal N (as shells report it). */
int wait_status_exit_code(int wait_status) {
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return EXIT_SYSTEM; /* neither an exit nor a signal: cannot happen for a reaped child */
}

const char *wait_status_describe(int wait_status, char buf[static 64]) {
	if (WIFEXITED(wait_status))
		snprintf(buf, 64, "exited with status %d", WEXITSTATUS(wait_status));
	else if (WIFSIGNALED(wait_status)) {
		const char *name = signal_name(WTERMSIG(wait_status));
		if (name)
			snprintf(buf, 64, "was killed by %s", name);
		else
			snprintf(buf, 64, "was killed by signal %d", WTERMSIG(wait_status));
	} else
		snprintf(buf, 64, "ended with wait status 0x%x", (unsigned)wait_status);
	return buf;
}
