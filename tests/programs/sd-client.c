/* sd-client: an HTTP service in C against libsystemd, as a program for systemd would be, run unchanged under baton by
 * tests/bats/clients.bats: its listener taken by name (sd_listen_fds_with_names), a memfd handed to the fd store
 * (FDSTORE=1 with FDNAME=state, through sd_pid_notify_with_fds), sd_notify_barrier() to know the manager has seen
 * it, then READY=1; a stop on SIGTERM after the request in hand. It answers every request with
 * "hello from sd-client pid=P generation=G barrier=R".
 *
 *   sd-client NAME   serve on the listener named NAME (exit 2 when there is none by that name; 3 when the barrier
 *                    fails) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) {
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv) {
	char **names = NULL;
	int n = sd_listen_fds_with_names(0, &names), fd = -1;
	for (int i = 0; i < n; i++)
		if (argc > 1 && strcmp(names[i], argv[1]) == 0)
			fd = SD_LISTEN_FDS_START + i;
	if (fd < 0) {
		fprintf(stderr, "sd-client: no listener named %s (%d fds)\n", argc > 1 ? argv[1] : "?", n);
		return 2;
	}
	int state = memfd_create("state", MFD_CLOEXEC);
	int r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=state", &state, 1);
	if (r <= 0)
		fprintf(stderr, "sd-client: FDSTORE=1: %s\n", strerror(-r));
	/* Everything sent before has been processed once the barrier returns. */
	int barrier = sd_notify_barrier(0, 5 * 1000000ULL);
	if (barrier < 0) {
		fprintf(stderr, "sd-client: sd_notify_barrier: %s\n", strerror(-barrier));
		return 3;
	}
	struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: accept() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sd_notify(0, "READY=1");
	const char *gen = getenv("BATON_GENERATION");
	while (!stop) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char req[4096];
		size_t len = 0;
		ssize_t k;
		while (len < sizeof(req) - 1 && (k = read(c, req + len, sizeof(req) - 1 - len)) > 0) {
			len += (size_t)k;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		char body[128], out[512];
		int bl = snprintf(body, sizeof(body), "hello from sd-client pid=%d generation=%s barrier=%d\n",
				  (int)getpid(), gen ? gen : "?", barrier);
		int ol = snprintf(out, sizeof(out),
				  "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", bl, body);
		(void)!write(c, out, (size_t)ol);
		close(c);
	}
	return 0;
}
