/* What baton reads about processes: /proc/PID files (a process may be gone by the time it is read: each reader
 * says what it returns then), and the words and exit codes for a wait status. Does not log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The parent of pid from /proc/PID/stat; 0 when it cannot be read (the process is gone). */
pid_t proc_parent_of(pid_t pid);
/* 1 when pid has a handler for sig (SigCgt in /proc/PID/status), 0 when not, negative errno when unreadable. */
int proc_catches_signal(pid_t pid, int sig);

/* The state letter of pid from /proc/PID/stat (R, S, D, Z, ...); 0 when it cannot be read (the process is gone). */
char proc_state(pid_t pid);
/* The wait status of pid, a zombie that baton cannot reap (another process's child), from /proc/PID/stat's exit_code
 * field; WAIT_STATUS_UNKNOWN when it cannot be read (already reaped, or no ptrace access). */
int proc_exit_status(pid_t pid);

/* A process ended, but its wait status could not be learned (it was not baton's child and was reaped elsewhere). */
#define WAIT_STATUS_UNKNOWN (-1)
/* Exit status baton reports for WAIT_STATUS_UNKNOWN (baton(1) EXIT STATUS). */
#define EXIT_STATUS_UNKNOWN 255

/* The contract's exit status for a wait status: the exit code, or 128+N for signal N (as shells report it);
 * EXIT_STATUS_UNKNOWN for WAIT_STATUS_UNKNOWN. */
int wait_status_exit_code(int wait_status);
/* "exited with status N", "was killed by SIGKILL": buf, for log lines and replies. */
const char *wait_status_describe(int wait_status, char buf[static 64]);
