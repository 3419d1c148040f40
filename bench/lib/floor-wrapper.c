/* bench/startup's "floor": the least a wrapper that passes sockets can do, to measure against. It binds each
 * listener (NAME=tcp://IPV4:PORT, in order, so they land on fd 3..), sets LISTEN_FDS, LISTEN_PID (its own PID: it
 * execs in place) and LISTEN_FDNAMES, and execs the command after "--". No fork, no config file, no notify relay, no
 * cgroup, no supervision: a start of baton's or of systemd-socket-activate's can only be slower. Not installed; the
 * benchmark compiles it. Usage: floor-wrapper NAME=tcp://IPV4:PORT... -- COMMAND [ARG...] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
	fprintf(stderr, "floor-wrapper: %s: %s\n", what, arg);
	exit(2);
}

int main(int argc, char **argv) {
	static char names[1 << 16];
	int i, n = 0;
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++, n++) {
		char *eq = strchr(argv[i], '='), *colon = strrchr(argv[i], ':');
		if (!eq || strncmp(eq + 1, "tcp://", 6) != 0 || !colon || colon < eq + 7)
			die("expected NAME=tcp://IPV4:PORT", argv[i]);
		*eq = *colon = '\0';
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
		if (inet_pton(AF_INET, eq + 7, &sa.sin_addr) != 1)
			die("not an IPv4 address", eq + 7);
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		if (fd != 3 + n || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0)
			die("cannot listen", argv[i]);
		if (strlen(names) + strlen(argv[i]) + 2 > sizeof(names))
			die("too many names", argv[i]);
		if (n)
			strcat(names, ":");
		strcat(names, argv[i]);
	}
	if (i + 1 >= argc)
		die("no command after --", argc > 1 ? argv[argc - 1] : "");
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", n);
	setenv("LISTEN_FDS", buf, 1);
	snprintf(buf, sizeof(buf), "%d", (int)getpid());
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	execv(argv[i + 1], argv + i + 1);
	die("cannot exec", argv[i + 1]);
}
