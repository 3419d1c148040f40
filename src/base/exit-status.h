/* The exit statuses of baton other than a program's own (baton(1) EXIT STATUS). */
#pragma once

enum {
	EXIT_FAILED = 1, /* reload/upgrade/status/stop: the request failed (the reason is printed) */
	EXIT_USAGE = 100, /* bad command line */
	EXIT_CONFIG = 101, /* invalid configuration */
	EXIT_START = 102, /* the program could not be started: exec failed, or it was not ready in time */
	EXIT_SYSTEM = 111, /* a system call failed: bind, epoll, fork...; or baton could not be reached */
};
