/* What baton reads about processes: /proc/PID files, and the words for a wait status. */
#include "proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "exit-status.h"
#include "util.h"

pid_t proc_parent_of(pid_t pid) {
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_at(AT_FDCWD, path, 0, buf, sizeof(buf)) <= 0)
		return 0;
	/* The comm field may hold spaces and parentheses: the fields are counted from its last ')'. */
	char *p = strrchr(buf, ')');
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* The fields of /proc/PID/stat after the comm field: state is field 3, the first after the last ')'. */
static const char *stat_fields(pid_t pid, char *buf, size_t size) {
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_at(AT_FDCWD, path, 0, buf, size) <= 0)
		return NULL;
	const char *p = strrchr(buf, ')');
	return p ? p + 1 : NULL;
}

char proc_state(pid_t pid) {
	char buf[1024], state;
	const char *p = stat_fields(pid, buf, sizeof(buf));
	return p && sscanf(p, " %c", &state) == 1 ? state : 0;
}

int proc_exit_status(pid_t pid) {
	char buf[1024];
	const char *p = stat_fields(pid, buf, sizeof(buf));
	if (!p)
		return WAIT_STATUS_UNKNOWN;
	/* exit_code is field 52 (proc(5), Linux 3.5+): 49 fields after state. */
	for (int field = 3; field < 52; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return WAIT_STATUS_UNKNOWN;
	}
	int status;
	return sscanf(p, " %d", &status) == 1 ? status : WAIT_STATUS_UNKNOWN;
}

int proc_catches_signal(pid_t pid, int sig) {
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ssize_t n = read_file_at(AT_FDCWD, path, 0, buf, sizeof(buf));
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
	if (wait_status == WAIT_STATUS_UNKNOWN)
		return EXIT_STATUS_UNKNOWN;
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return EXIT_SYSTEM; /* neither an exit nor a signal: cannot happen for a reaped child */
}

const char *wait_status_describe(int wait_status, char buf[static 64]) {
	if (wait_status == WAIT_STATUS_UNKNOWN)
		snprintf(buf, 64, "ended with an unknown status (not baton's child)");
	else if (WIFEXITED(wait_status))
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
