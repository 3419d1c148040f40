/* baton-demo: the README's demo service. A tiny HTTP server that takes its listening sockets from LISTEN_FDS (or
 * from Server::Starter's SERVER_STARTER_PORT), reports READY=1 through sd_notify, and answers every request with its
 * PID and BATON_GENERATION, so a reload is visible from the outside. One thread, one epoll set, no timeouts while idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>

#define MAX_LISTENERS 64
#define REQUEST_MAX 8192 /* the request line and headers must fit; bodies are not read */
#define STOP_GRACE_MS 1000 /* how long in-flight responses may take after SIGTERM */

enum source_kind { SOURCE_LISTENER, SOURCE_CONN, SOURCE_SIGNAL, SOURCE_TIMER, SOURCE_WATCHDOG };

/* What an epoll event points at. Every struct that goes into the epoll set starts with one. */
struct source {
	enum source_kind kind;
	int fd;
};

struct conn {
	struct source src;
	struct conn *prev, *next;
	bool writing; /* a response is being sent; reading waits until it is out */
	bool want_out; /* registered for EPOLLOUT instead of EPOLLIN */
	bool keep_alive; /* of the request being answered */
	size_t in_len, out_len, out_off;
	char in[REQUEST_MAX + 1];
	char out[512];
};

struct options {
	long ready_delay_ms;
	bool notify;
	int exit_after_ready; /* -1: no */
	long exit_delay_ms; /* with exit_after_ready: this long after ready */
	int http_status; /* the status every request is answered with */
	bool watchdog; /* send WATCHDOG=1 as often as WATCHDOG_USEC asks */
	bool ignore_sigterm;
	int fail_start; /* -1: no */
};

struct server {
	struct options opt;
	int epfd;
	int spare_fd; /* kept open so that accept() can still shed a connection at EMFILE */
	struct source sig, timer, watchdog;
	struct source listeners[MAX_LISTENERS];
	size_t n_listeners;
	struct conn *conns;
	bool serving, stopping;
	char body[128];
};

static void usage(FILE *f) {
	fputs("Usage: baton-demo [OPTION]...\n"
	      "A demo HTTP service: takes its listening sockets from LISTEN_FDS (or SERVER_STARTER_PORT),\n"
	      "sends READY=1 via sd_notify, and answers every request with its PID and BATON_GENERATION.\n"
	      "\n"
	      "  --ready-delay MS         wait MS milliseconds before becoming ready (a slow start)\n"
	      "  --no-notify              never send READY=1 (serve anyway)\n"
	      "  --exit-after-ready CODE  exit with CODE right after becoming ready\n"
	      "  --exit-delay MS          with --exit-after-ready: exit MS milliseconds after becoming ready\n"
	      "  --http-status CODE       answer every request with HTTP status CODE (default 200)\n"
	      "  --watchdog               send WATCHDOG=1 every half of WATCHDOG_USEC (by default never)\n"
	      "  --ignore-sigterm         ignore SIGTERM (SIGINT still stops)\n"
	      "  --fail-start CODE        exit with CODE instead of becoming ready\n"
	      "  --help                   show this help\n"
	      "\n"
	      "Exit status: 0 after SIGTERM/SIGINT, 1 on a system error, 2 on a usage error or no sockets.\n",
	      f);
}

/* Decimal digits only, within [0, max]: "08", "-1", "1e3", "" and "12x" are errors. */
static bool parse_number(const char *s, long max, long *ret) {
	long v = 0;
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*ret = v;
	return true;
}

static void parse_args(int argc, char **argv, struct options *opt) {
	static const struct option longopts[] = {
		{"ready-delay", required_argument, NULL, 'd'},
		{"no-notify", no_argument, NULL, 'n'},
		{"exit-after-ready", required_argument, NULL, 'x'},
		{"ignore-sigterm", no_argument, NULL, 'i'},
		{"fail-start", required_argument, NULL, 'f'},
		{"exit-delay", required_argument, NULL, 'e'},
		{"http-status", required_argument, NULL, 's'},
		{"watchdog", no_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*opt = (struct options){.notify = true, .exit_after_ready = -1, .fail_start = -1, .http_status = 200};
	int c, idx = 0;
	long v;
	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		switch (c) {
		case 'd':
			if (!parse_number(optarg, 24L * 3600 * 1000, &v))
				goto bad_value;
			opt->ready_delay_ms = v;
			break;
		case 'x':
			if (!parse_number(optarg, 255, &v))
				goto bad_value;
			opt->exit_after_ready = (int)v;
			break;
		case 'f':
			if (!parse_number(optarg, 255, &v))
				goto bad_value;
			opt->fail_start = (int)v;
			break;
		case 'e':
			if (!parse_number(optarg, 24L * 3600 * 1000, &v))
				goto bad_value;
			opt->exit_delay_ms = v;
			break;
		case 's':
			if (!parse_number(optarg, 599, &v) || v < 100)
				goto bad_value;
			opt->http_status = (int)v;
			break;
		case 'w':
			opt->watchdog = true;
			break;
		case 'n':
			opt->notify = false;
			break;
		case 'i':
			opt->ignore_sigterm = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fputs("Try 'baton-demo --help'.\n", stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "baton-demo: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	return;
bad_value:
	fprintf(stderr, "baton-demo: invalid value '%s' for --%s\n", optarg, longopts[idx].name);
	exit(2);
}

static void die(const char *what) {
	fprintf(stderr, "baton-demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void add_listener(struct server *s, int fd, const char *name) {
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		fprintf(stderr, "baton-demo: fd %d (%s) is not a listening stream socket, ignoring it\n", fd, name);
		return;
	}
	if (s->n_listeners == MAX_LISTENERS) {
		fprintf(stderr, "baton-demo: more than %d sockets, ignoring fd %d (%s)\n", MAX_LISTENERS, fd, name);
		return;
	}
	/* Another generation may accept on the same socket: without O_NONBLOCK it could win the race for a
	 * connection and leave us blocked in accept(). */
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		die("fcntl");
	s->listeners[s->n_listeners++] = (struct source){SOURCE_LISTENER, fd};
}

/* Server::Starter passes "host:port=fd;host2:port2=fd2" (or "port=fd", or "path=fd" for unix sockets). */
static void take_server_starter_sockets(struct server *s, const char *value) {
	char *copy = strdup(value), *save = NULL;
	if (!copy)
		die("strdup");
	for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *eq = strrchr(tok, '=');
		long fd;
		if (!eq || !parse_number(eq + 1, 1 << 20, &fd)) {
			fprintf(stderr, "baton-demo: SERVER_STARTER_PORT: bad entry '%s' (want ADDRESS=FD)\n", tok);
			exit(2);
		}
		*eq = '\0';
		add_listener(s, (int)fd, tok);
	}
	free(copy);
}

static void take_sockets(struct server *s) {
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		fprintf(stderr, "baton-demo: invalid LISTEN_FDS: %s\n", strerror(-n));
		exit(2);
	}
	for (int i = 0; i < n; i++)
		add_listener(s, SD_LISTEN_FDS_START + i, names ? names[i] : "unnamed");
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	const char *ssp = getenv("SERVER_STARTER_PORT");
	if (n == 0 && ssp && *ssp)
		take_server_starter_sockets(s, ssp);
	if (s->n_listeners == 0) {
		fprintf(stderr, "baton-demo: no listening sockets: start me under baton, systemd socket activation "
				"(LISTEN_FDS) or start_server (SERVER_STARTER_PORT)\n");
		exit(2);
	}
}

static void epoll_set(struct server *s, int op, struct source *src, uint32_t events) {
	struct epoll_event ev = {.events = events, .data.ptr = src};
	if (epoll_ctl(s->epfd, op, src->fd, &ev) < 0)
		die("epoll_ctl");
}

static void arm_timer(struct server *s, long ms) {
	struct itimerspec its = {.it_value = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L}};
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm it */
	if (timerfd_settime(s->timer.fd, 0, &its, NULL) < 0)
		die("timerfd_settime");
}

static void conn_close(struct server *s, struct conn *c) {
	close(c->src.fd); /* also removes it from the epoll set */
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	if (s->stopping && !s->conns)
		exit(0);
}

/* The end of the header block ("\r\n\r\n", or a bare "\n\n"), as an offset just past it; 0 if not there yet. */
static size_t header_end(const char *buf, size_t len) {
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Parses the NUL-terminated header block: returns false if the request line is malformed. Persistence follows
 * RFC 9112 section 9.3: HTTP/1.1 keeps the connection unless "Connection: close", HTTP/1.0 closes it unless
 * "Connection: keep-alive". A request with a body is answered, then the connection closes (bodies are not read). */
static bool parse_request(char *head, bool *ret_keep_alive, bool *ret_is_head, bool *ret_http10) {
	char *line_end = strchr(head, '\n');
	*line_end = '\0';
	if (line_end > head && line_end[-1] == '\r')
		line_end[-1] = '\0';
	char *sp1 = strchr(head, ' '), *sp2 = strrchr(head, ' ');
	if (!sp1 || sp1 == sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return false;
	*ret_http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
	bool keep_alive = !*ret_http10;
	*ret_is_head = sp1 - head == 4 && strncmp(head, "HEAD", 4) == 0;

	for (char *line = line_end + 1; *line; line = line_end + 1) {
		line_end = strchr(line, '\n');
		*line_end = '\0';
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *value = colon + 1;
		if (strcasecmp(line, "Connection") == 0) {
			char *save = NULL;
			for (char *t = strtok_r(value, ", \t\r", &save); t; t = strtok_r(NULL, ", \t\r", &save)) {
				if (strcasecmp(t, "close") == 0)
					keep_alive = false;
				else if (strcasecmp(t, "keep-alive") == 0)
					keep_alive = true;
			}
		} else if (strcasecmp(line, "Transfer-Encoding") == 0 ||
			   (strcasecmp(line, "Content-Length") == 0 && strtol(value, NULL, 10) != 0)) {
			keep_alive = false;
		}
	}
	*ret_keep_alive = keep_alive;
	return true;
}

static void conn_respond(struct conn *c, const char *status, const char *body, bool is_head, bool http10) {
	const char *conn_hdr = !c->keep_alive ? "Connection: close\r\n" : http10 ? "Connection: keep-alive\r\n" : "";
	int n = snprintf(c->out, sizeof c->out,
			 "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s", status,
			 strlen(body), conn_hdr, is_head ? "" : body);
	c->out_len = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
	c->out_off = 0;
	c->writing = true;
}

/* Sends what is left of the response. Returns false when the connection must be closed. */
static bool conn_flush(struct server *s, struct conn *c) {
	while (c->out_off < c->out_len) {
		ssize_t r = send(c->src.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if (!c->want_out)
				epoll_set(s, EPOLL_CTL_MOD, &c->src, EPOLLOUT);
			c->want_out = true;
			return true;
		}
		if (r < 0)
			return false;
		c->out_off += (size_t)r;
	}
	c->writing = false;
	if (!c->keep_alive || s->stopping)
		return false;
	if (c->want_out)
		epoll_set(s, EPOLL_CTL_MOD, &c->src, EPOLLIN);
	c->want_out = false;
	return true;
}

/* Answers every complete request in the buffer (pipelining), one response at a time. */
static bool conn_run(struct server *s, struct conn *c) {
	while (!c->writing) {
		size_t end = header_end(c->in, c->in_len);
		if (end == 0 && c->in_len < REQUEST_MAX)
			return true; /* wait for the rest */
		if (end == 0) {
			c->keep_alive = false;
			conn_respond(c, "431 Request Header Fields Too Large", "request too large\n", false, false);
			c->in_len = 0;
		} else {
			char saved = c->in[end];
			c->in[end] = '\0';
			bool is_head = false, http10 = false;
			bool ok = parse_request(c->in, &c->keep_alive, &is_head, &http10);
			c->in[end] = saved;
			if (!ok || s->stopping)
				c->keep_alive = false;
			char status[32];
			snprintf(status, sizeof status, "%d %s", s->opt.http_status,
				 s->opt.http_status == 200 ? "OK" : "As Asked");
			if (ok)
				conn_respond(c, status, s->body, is_head, http10);
			else
				conn_respond(c, "400 Bad Request", "bad request\n", false, false);
			memmove(c->in, c->in + end, c->in_len - end);
			c->in_len -= end;
		}
		if (!conn_flush(s, c))
			return false;
	}
	return true;
}

static void conn_event(struct server *s, struct conn *c) {
	if (c->writing) {
		if (!conn_flush(s, c) || !conn_run(s, c))
			conn_close(s, c);
		return;
	}
	ssize_t r = recv(c->src.fd, c->in + c->in_len, REQUEST_MAX - c->in_len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) { /* the client closed, or the connection broke */
		conn_close(s, c);
		return;
	}
	c->in_len += (size_t)r;
	if (!conn_run(s, c))
		conn_close(s, c);
}

static void accept_all(struct server *s, int lfd) {
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
			/* Level-triggered epoll would report the pending connection forever: take it and drop it. */
			close(s->spare_fd);
			fd = accept(lfd, NULL, NULL);
			if (fd >= 0)
				close(fd);
			s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			fprintf(stderr, "baton-demo: out of file descriptors, dropped a connection\n");
			return;
		}
		if (fd < 0) {
			if (errno != EAGAIN)
				fprintf(stderr, "baton-demo: accept: %s\n", strerror(errno));
			return;
		}
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->src = (struct source){SOURCE_CONN, fd};
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		epoll_set(s, EPOLL_CTL_ADD, &c->src, EPOLLIN);
	}
}

static void become_ready(struct server *s) {
	if (s->opt.fail_start >= 0) {
		fprintf(stderr, "baton-demo: failing the start with exit status %d, as asked\n", s->opt.fail_start);
		exit(s->opt.fail_start);
	}
	for (size_t i = 0; i < s->n_listeners; i++)
		epoll_set(s, EPOLL_CTL_ADD, &s->listeners[i], EPOLLIN);
	s->serving = true;
	if (s->opt.notify)
		sd_notifyf(0, "READY=1\nSTATUS=serving on %zu sockets", s->n_listeners);
	if (s->opt.exit_after_ready >= 0 && s->opt.exit_delay_ms > 0) {
		arm_timer(s, s->opt.exit_delay_ms); /* the timer's next expiry is the exit */
		return;
	}
	if (s->opt.exit_after_ready >= 0) {
		fprintf(stderr, "baton-demo: exiting with status %d after ready, as asked\n", s->opt.exit_after_ready);
		exit(s->opt.exit_after_ready);
	}
}

/* Stop accepting, close idle connections, give the busy ones STOP_GRACE_MS to finish. Called between event
 * batches, so no event still pending in this batch can point at a connection freed here. */
static void begin_stop(struct server *s) {
	s->stopping = true;
	sd_notify(0, "STOPPING=1");
	for (size_t i = 0; i < s->n_listeners; i++)
		close(s->listeners[i].fd);
	s->n_listeners = 0;
	/* Connections that look idle are kept: a request may be on its way (just accepted, or the next one on a
	 * keep-alive connection), and closing under it is a failed request. Each gets its answer with "Connection:
	 * close"; whatever is still open when the grace period ends is closed then. */
	if (!s->conns)
		exit(0);
	arm_timer(s, STOP_GRACE_MS);
}

/* WATCHDOG=1 every half of WATCHDOG_USEC (sd_watchdog_enabled(3)), from the start: baton's program watchdog counts
 * from ready. */
static void start_watchdog(struct server *s) {
	uint64_t usec = 0;
	if (!s->opt.watchdog || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	uint64_t half = usec / 2;
	struct itimerspec its = {
		.it_value = {.tv_sec = (time_t)(half / 1000000), .tv_nsec = (long)(half % 1000000) * 1000},
	};
	its.it_interval = its.it_value;
	s->watchdog = (struct source){SOURCE_WATCHDOG, timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)};
	if (s->watchdog.fd < 0 || timerfd_settime(s->watchdog.fd, 0, &its, NULL) < 0)
		die("watchdog timer");
	epoll_set(s, EPOLL_CTL_ADD, &s->watchdog, EPOLLIN);
}

int main(int argc, char **argv) {
	struct server s = {.spare_fd = -1};
	parse_args(argc, argv, &s.opt);
	take_sockets(&s);

	const char *gen = getenv("BATON_GENERATION");
	snprintf(s.body, sizeof s.body, "hello from baton-demo pid=%d generation=%s\n", (int)getpid(),
		 gen && *gen ? gen : "-");

	/* A signal that is ignored is discarded before signalfd could see it, and a shell starts background jobs
	 * with SIGINT ignored: reset the dispositions of the signals read from the signalfd. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	signal(SIGINT, SIG_DFL);
	if (s.opt.ignore_sigterm) {
		signal(SIGTERM, SIG_IGN);
	} else {
		sigaddset(&mask, SIGTERM);
		signal(SIGTERM, SIG_DFL);
	}
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		die("sigprocmask");

	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	s.sig = (struct source){SOURCE_SIGNAL, signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)};
	s.timer = (struct source){SOURCE_TIMER, timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)};
	s.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s.epfd < 0 || s.sig.fd < 0 || s.timer.fd < 0)
		die("setting up the event loop");
	epoll_set(&s, EPOLL_CTL_ADD, &s.sig, EPOLLIN);
	epoll_set(&s, EPOLL_CTL_ADD, &s.timer, EPOLLIN);
	start_watchdog(&s);

	if (s.opt.ready_delay_ms > 0)
		arm_timer(&s, s.opt.ready_delay_ms);
	else
		become_ready(&s);

	for (;;) {
		struct epoll_event events[64];
		bool stop_requested = false;
		int n = epoll_wait(s.epfd, events, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct source *src = events[i].data.ptr;
			struct signalfd_siginfo si;
			uint64_t expirations;
			switch (src->kind) {
			case SOURCE_LISTENER:
				if (!s.stopping)
					accept_all(&s, src->fd);
				break;
			case SOURCE_WATCHDOG:
				if (read(s.watchdog.fd, &expirations, sizeof expirations) > 0)
					sd_notify(0, "WATCHDOG=1");
				break;
			case SOURCE_CONN:
				conn_event(&s, (struct conn *)src);
				break;
			case SOURCE_SIGNAL:
				while (read(s.sig.fd, &si, sizeof si) == sizeof si)
					stop_requested = true;
				break;
			case SOURCE_TIMER:
				if (read(s.timer.fd, &expirations, sizeof expirations) < 0)
					break;
				if (s.stopping)
					exit(0); /* the grace period is over */
				if (s.serving) {
					fprintf(stderr,
						"baton-demo: exiting with status %d %ld ms after ready, as asked\n",
						s.opt.exit_after_ready, s.opt.exit_delay_ms);
					exit(s.opt.exit_after_ready);
				}
				become_ready(&s);
				break;
			}
		}
		if (stop_requested && !s.stopping)
			begin_stop(&s);
	}
}
