/* libbaton-preload.so: lets a program that binds its own port, and knows nothing of LISTEN_FDS, serve on the sockets
 * baton holds. baton puts it in LD_PRELOAD (program.preload: true) next to LISTEN_FDS and NOTIFY_SOCKET.
 *
 * What it interposes (the only exported symbols; everything else is hidden):
 *   bind()                  an address equal to an inherited socket's (same domain, type, protocol, address, port;
 *                           unix path or abstract name byte for byte; IPv6 scope id too) turns the program's socket
 *                           into a dup of the inherited one and returns 0. Anything else: the real bind().
 *   listen()                on an inherited listening socket: returns 0, baton's backlog stays.
 *   unlink(), unlinkat(),   the path of an inherited unix socket (exact string): returns 0, the file stays (baton
 *   remove()                owns it; programs "remove the stale socket" before bind()).
 *   accept(), accept4(), poll(), ppoll(), select(), pselect() (read set), epoll_ctl() (ADD/MOD with EPOLLIN),
 *   recv(), recvfrom(), recvmsg() and glibc's fortified __poll_chk(), __ppoll_chk(), __recv_chk(),
 *   __recvfrom_chk()        readiness: see below. epoll_ctl() also records where mapped fds are registered, for drain.
 * Nothing else: a statically linked program, or one that makes system calls itself (Go), is not affected.
 *
 * Readiness: an inherited socket counts once the program listen()ed it (stream, seqpacket) or bind() mapped it
 * (datagram). The first time the program waits on one with the calls above, it is marked; when every counted socket
 * is marked, the shim sends READY=1 once to NOTIFY_SOCKET. Until then each fd waited on costs one fstat(); after,
 * one flag check. A program that never waits in one of these calls (io_uring, read() on a UDP socket) never becomes
 * ready; one that waits on its first socket before it listens on its second is ready early.
 *
 * Drain (BATON_DRAIN_SIGNAL=N): when the first socket is mapped and N still has its default disposition, a handler
 * for N is installed (SA_RESTART). It puts in the place of every fd the shim mapped, under the same fd number, a
 * listening socket nobody connects to, so the process keeps its connections but takes no new ones from the shared
 * queue. The program's event loop does not see the swap: an epoll registration belongs to the open file description
 * (which lives on in baton, and would keep reporting the shared socket), so the handler moves each registration of
 * the fd over to the new socket with the program's own events and data, and the program's later EPOLL_CTL_MOD or
 * EPOLL_CTL_DEL of its fd succeeds as it expects (Twisted's epoll reactor, for one, loses track of its readers when
 * EPOLL_CTL_DEL fails, and fails at its stop with a KeyError). A blocking accept() already running in another thread
 * still takes one connection; a poll() already running may return for the old socket, and the program's accept() then
 * meets the decoy (EAGAIN, or blocks if blocking).
 *
 * Only fds the shim mapped in bind() are drained: a program that uses fd 3 itself is not. A process that maps
 * nothing (a wrapper shell) keeps the signal's default action.
 *
 * Limits: the program's socket is replaced, so options it set before bind() are lost (baton's config sets the
 * listener's), and options or O_NONBLOCK it sets afterwards land on the socket shared with baton and every other
 * generation. Matching is exact: 127.0.0.1:8080 is not 0.0.0.0:8080, nor is [::]:8080 when baton holds 0.0.0.0:8080.
 * Fixed tables: 256 mapped fds and 1024 epoll registrations per process; beyond, drain misses the extra ones. Built
 * for 64-bit glibc: the 32-bit time64 variants (__ppoll64 and friends) are not interposed. LISTEN_PID is not
 * checked, so wrapper scripts and the program they start both get the sockets. Each process holds one extra
 * close-on-exec fd per inherited socket. errno is preserved across everything the shim does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The fortified headers define poll(), recv(), ... as inline wrappers, which would clash with the definitions here. */
#undef _FORTIFY_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

#define MAX_LISTEN_FDS 65536
#define MAX_MAPPED 256
#define MAX_EPOLL 1024

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_un un;
	struct sockaddr_storage storage;
};

struct inherited {
	int fd; /* a close-on-exec copy, so that a program that closes stray fds can still be given the socket */
	dev_t dev;
	ino_t ino;
	int domain, type, protocol;
	union sockaddr_any addr;
	socklen_t addr_len;
	atomic_bool counted; /* listen()ed, or bind() mapped for datagrams: READY waits for it */
	atomic_bool waited;
};

/* The next definitions in the lookup order (libc, or a sanitizer runtime in front of it). Plain pointer types: a
 * transparent union argument is passed exactly as its pointer member. */
static struct {
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*unlink)(const char *);
	int (*unlinkat)(int, const char *, int);
	int (*remove)(const char *);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*poll_chk)(struct pollfd *, nfds_t, int, size_t);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
} real;

/* Set once by init(), read-only after. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static struct inherited *inherited;
static size_t n_inherited;
static bool inert = true;
static int drain_signal;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;

/* True once there is nothing left to do for readiness (READY=1 sent, or nothing to send it for): the one check on
 * the hot path of accept() and poll(). Stored after init() is complete, so a thread that sees it true sees `real`. */
static atomic_bool quiet;
static atomic_bool drain_installed;

/* Program fds the shim mapped, (inherited index << 32 | fd + 1), 0 = free; and epoll registrations of them,
 * (epfd + 1) << 32 | fd + 1, with the program's events and data beside each. One atomic word per entry, so the drain
 * handler never reads half an entry; a registration being written is EPOLL_REG_BUSY until its events and data are. */
static _Atomic uint64_t mapped[MAX_MAPPED];
static atomic_int mapped_used; /* entries at or above this index have never been used */
static _Atomic uint64_t epoll_regs[MAX_EPOLL];
static _Atomic uint32_t epoll_events[MAX_EPOLL];
static _Atomic uint64_t epoll_data[MAX_EPOLL];
#define EPOLL_REG_BUSY UINT64_MAX /* its packed fd is -2: never a program's */

/* glibc's fortified entry points: declared by its headers only under _FORTIFY_SOURCE. */
EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen);
EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask,
		       size_t fdslen);
EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, __SOCKADDR_ARG addr,
			      socklen_t *addr_len);

/* ---- setup ---- */

static void resolve(void *slot, const char *name) {
	/* ISO C has no conversion from void * to a function pointer; POSIX guarantees the representation. */
	void *p = dlsym(RTLD_NEXT, name);
	memcpy(slot, &p, sizeof p);
}

static void resolve_all(void) {
	resolve(&real.bind, "bind");
	resolve(&real.listen, "listen");
	resolve(&real.unlink, "unlink");
	resolve(&real.unlinkat, "unlinkat");
	resolve(&real.remove, "remove");
	resolve(&real.accept, "accept");
	resolve(&real.accept4, "accept4");
	resolve(&real.poll, "poll");
	resolve(&real.poll_chk, "__poll_chk");
	resolve(&real.ppoll, "ppoll");
	resolve(&real.ppoll_chk, "__ppoll_chk");
	resolve(&real.select, "select");
	resolve(&real.pselect, "pselect");
	resolve(&real.epoll_ctl, "epoll_ctl");
	resolve(&real.recv, "recv");
	resolve(&real.recv_chk, "__recv_chk");
	resolve(&real.recvfrom, "recvfrom");
	resolve(&real.recvfrom_chk, "__recvfrom_chk");
	resolve(&real.recvmsg, "recvmsg");
}

/* A whole decimal number in [min, max], or -1. */
static long env_number(const char *name, long min, long max) {
	const char *s = getenv(name);
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

static int sockopt_int(int fd, int name, int *ret) {
	socklen_t len = sizeof *ret;
	return getsockopt(fd, SOL_SOCKET, name, ret, &len);
}

static void read_notify_socket(void) {
	const char *s = getenv("NOTIFY_SOCKET");
	size_t len = s ? strlen(s) : 0;
	if (len < 2 || len >= sizeof notify_addr.sun_path || (s[0] != '/' && s[0] != '@'))
		return;
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, s, len);
	/* '@' names an abstract socket: a leading NUL, and the length says where the name ends (unix(7)). */
	if (s[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

/* Records fd if it is a socket; anything else among the LISTEN_FDS is not ours to touch. */
static bool inspect_listen_fd(int fd, struct inherited *ret) {
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	ret->dev = st.st_dev;
	ret->ino = st.st_ino;
	if (sockopt_int(fd, SO_DOMAIN, &ret->domain) < 0 || sockopt_int(fd, SO_TYPE, &ret->type) < 0 ||
	    sockopt_int(fd, SO_PROTOCOL, &ret->protocol) < 0)
		return false;
	ret->addr_len = sizeof ret->addr;
	if (getsockname(fd, &ret->addr.sa, &ret->addr_len) < 0)
		return false;
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	ret->fd = copy >= 0 ? copy : fd;
	return true;
}

static void init(void) {
	int saved = errno;

	resolve_all();
	read_notify_socket();
	long sig = env_number("BATON_DRAIN_SIGNAL", 1, SIGRTMAX);
	drain_signal = sig > 0 && sig != SIGKILL && sig != SIGSTOP ? (int)sig : 0;

	long n = env_number("LISTEN_FDS", 1, MAX_LISTEN_FDS);
	if (n > 0)
		inherited = calloc((size_t)n, sizeof *inherited);
	for (long i = 0; inherited && i < n; i++)
		if (inspect_listen_fd(3 + (int)i, &inherited[n_inherited]))
			n_inherited++;
	inert = n_inherited == 0;
	atomic_store(&quiet, inert || notify_addr_len == 0);
	errno = saved;
}

static void ensure_init(void) {
	pthread_once(&init_once, init);
}

/* Before main(), while the process is still single-threaded; an interposed call made earlier (another library's
 * constructor) runs init() itself. */
__attribute__((constructor)) static void preload_constructor(void) {
	ensure_init();
}

/* ---- inherited sockets ---- */

static bool fd_is(int fd, const struct inherited *in) {
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == in->dev && st.st_ino == in->ino;
}

/* The inherited socket fd refers to (any fd, any dup: compared by identity, so close-and-rebind and reused fd
 * numbers are right), or -1. */
static long inherited_of_fd(int fd) {
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -1;
	for (size_t i = 0; i < n_inherited; i++)
		if (inherited[i].dev == st.st_dev && inherited[i].ino == st.st_ino)
			return (long)i;
	return -1;
}

static bool is_connection_type(int type) {
	return type == SOCK_STREAM || type == SOCK_SEQPACKET;
}

/* The name a unix address carries and its length: for a path, the bytes before the first NUL; for an abstract
 * name (a leading NUL), every byte the address length covers, NULs included (unix(7)). 0: unnamed. */
static size_t unix_name(const struct sockaddr_un *un, socklen_t len) {
	size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	if (n > sizeof un->sun_path)
		n = sizeof un->sun_path;
	if (n > 0 && un->sun_path[0] != '\0')
		n = strnlen(un->sun_path, n);
	return n;
}

static bool inherited_matches(const struct inherited *in, const struct sockaddr *addr, socklen_t len) {
	union sockaddr_any a = {0};
	memcpy(&a, addr, len < sizeof a ? len : sizeof a);
	if (a.sa.sa_family != in->domain)
		return false;
	switch (in->domain) {
	case AF_INET:
		return len >= sizeof a.in && a.in.sin_port == in->addr.in.sin_port &&
		       a.in.sin_addr.s_addr == in->addr.in.sin_addr.s_addr;
	case AF_INET6:
		return len >= sizeof a.in6 && a.in6.sin6_port == in->addr.in6.sin6_port &&
		       memcmp(&a.in6.sin6_addr, &in->addr.in6.sin6_addr, sizeof a.in6.sin6_addr) == 0 &&
		       a.in6.sin6_scope_id == in->addr.in6.sin6_scope_id;
	case AF_UNIX: {
		size_t n = unix_name(&a.un, len);
		return n > 0 && n == unix_name(&in->addr.un, in->addr_len) &&
		       memcmp(a.un.sun_path, in->addr.un.sun_path, n) == 0;
	}
	default:
		return false;
	}
}

static bool is_inherited_path(const char *path) {
	size_t len = strlen(path);
	for (size_t i = 0; i < n_inherited; i++) {
		const struct inherited *in = &inherited[i];
		if (in->domain != AF_UNIX || in->addr.un.sun_path[0] == '\0')
			continue;
		if (len > 0 && unix_name(&in->addr.un, in->addr_len) == len &&
		    memcmp(in->addr.un.sun_path, path, len) == 0)
			return true;
	}
	return false;
}

/* ---- readiness ---- */

static void send_ready(void) {
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	(void)sendto(s, "READY=1", strlen("READY=1"), MSG_NOSIGNAL, (const struct sockaddr *)&notify_addr,
		     notify_addr_len);
	close(s);
}

/* READY=1 once every counted socket has been waited on. Several processes (forked workers) may each send it:
 * baton takes the first and ignores repeats. */
static void maybe_ready(void) {
	bool any = false;
	for (size_t i = 0; i < n_inherited; i++) {
		if (!atomic_load(&inherited[i].counted))
			continue;
		if (!atomic_load(&inherited[i].waited))
			return;
		any = true;
	}
	if (any && !atomic_exchange(&quiet, true))
		send_ready();
}

static void count_socket(long idx) {
	if (!atomic_exchange(&inherited[idx].counted, true) && !atomic_load(&quiet))
		maybe_ready();
}

/* The program is about to wait on fd. */
static void note_wait(int fd) {
	ensure_init();
	if (atomic_load(&quiet))
		return;
	int saved = errno;
	long idx = inherited_of_fd(fd);
	if (idx >= 0 && !atomic_exchange(&inherited[idx].waited, true))
		maybe_ready();
	errno = saved;
}

static bool busy(void) {
	return !atomic_load_explicit(&quiet, memory_order_acquire);
}

/* ---- drain ---- */

static uint64_t pack(uint32_t hi, int fd) {
	return (uint64_t)hi << 32 | (uint32_t)(fd + 1);
}

static int packed_fd(uint64_t v) {
	return (int)(uint32_t)v - 1;
}

static uint32_t packed_hi(uint64_t v) {
	return (uint32_t)(v >> 32);
}

/* Whether a mapped entry still describes its fd: a closed or reused fd number no longer refers to the socket. */
static bool mapped_live(uint64_t v) {
	return v != 0 && fd_is(packed_fd(v), &inherited[packed_hi(v)]);
}

static void record_mapped(int fd, long idx) {
	uint64_t v = pack((uint32_t)idx, fd);
	int used = atomic_load(&mapped_used);
	for (int i = 0; i < used; i++) {
		uint64_t cur = atomic_load(&mapped[i]);
		if (cur != 0 && packed_fd(cur) == fd) {
			atomic_store(&mapped[i], v);
			return;
		}
	}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < MAX_MAPPED; i++) {
			uint64_t cur = atomic_load(&mapped[i]);
			/* First pass: free entries; second: entries whose fd was closed or reused since. */
			if ((pass == 0 ? cur != 0 : mapped_live(cur)) ||
			    !atomic_compare_exchange_strong(&mapped[i], &cur, v))
				continue;
			int u = atomic_load(&mapped_used);
			while (u < i + 1 && !atomic_compare_exchange_weak(&mapped_used, &u, i + 1))
				;
			return;
		}
}

static bool is_mapped_fd(int fd) {
	int used = atomic_load(&mapped_used);
	for (int i = 0; i < used; i++) {
		uint64_t v = atomic_load(&mapped[i]);
		if (v != 0 && packed_fd(v) == fd)
			return true;
	}
	return false;
}

static void record_epoll(int epfd, int fd, const struct epoll_event *ev) {
	uint64_t v = pack((uint32_t)(epfd + 1), fd), free_value = 0;
	for (int i = 0; i < MAX_EPOLL; i++) {
		uint64_t cur = v;
		/* EPOLL_CTL_MOD (or an ADD again after a DEL the shim missed): the same entry, new events. */
		if (atomic_compare_exchange_strong(&epoll_regs[i], &cur, EPOLL_REG_BUSY)) {
			atomic_store(&epoll_events[i], ev->events);
			atomic_store(&epoll_data[i], ev->data.u64);
			atomic_store(&epoll_regs[i], v);
			return;
		}
	}
	for (int i = 0; i < MAX_EPOLL; i++) {
		free_value = 0;
		if (atomic_compare_exchange_strong(&epoll_regs[i], &free_value, EPOLL_REG_BUSY)) {
			atomic_store(&epoll_events[i], ev->events);
			atomic_store(&epoll_data[i], ev->data.u64);
			atomic_store(&epoll_regs[i], v);
			return;
		}
	}
}

static void forget_epoll(int epfd, int fd) {
	uint64_t v = pack((uint32_t)(epfd + 1), fd);
	for (int i = 0; i < MAX_EPOLL; i++) {
		uint64_t cur = v;
		if (atomic_load(&epoll_regs[i]) == v)
			atomic_compare_exchange_strong(&epoll_regs[i], &cur, 0);
	}
}

/* A socket of in's family and type that nobody will connect to: stream sockets listen on loopback port 0 (or, for
 * unix, an autobound abstract name), so that accept() behaves as on a quiet listener, not as on a broken socket. */
static int decoy_socket(const struct inherited *in, int domain, int flags) {
	int s = socket(domain, in->type | SOCK_CLOEXEC | flags, domain == in->domain ? in->protocol : 0);
	if (s < 0 || !is_connection_type(in->type))
		return s;
	union sockaddr_any a = {0};
	socklen_t len = 0;
	if (domain == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof a.in;
	} else if (domain == AF_INET6) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_loopback;
		len = sizeof a.in6;
	}
	if ((len > 0 && real.bind(s, &a.sa, len) < 0) || real.listen(s, 0) < 0) {
		close(s);
		/* No IPv6 loopback on this host: an IPv4 listener does as well for a program that only accepts. */
		return domain == AF_INET6 ? decoy_socket(in, AF_INET, flags) : -1;
	}
	return s;
}

/* Puts a decoy in the place of the mapped fd, with the fd's O_NONBLOCK and FD_CLOEXEC. Returns whether it did (when
 * not, the process keeps taking connections until baton stops it). */
static bool replace_with_decoy(int fd, const struct inherited *in) {
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	if (fl < 0 || fdfl < 0)
		return false;
	int s = decoy_socket(in, in->domain, (fl & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
	if (s < 0)
		return false;
	int r = dup3(s, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	close(s);
	return r >= 0;
}

/* Calls epoll_ctl(op) for each of fd's registrations, with the program's events and data; with forget, the entries
 * are dropped after (the fd is no longer the shim's to drain). */
static void epoll_regs_apply(int fd, int op, bool forget) {
	for (int j = 0; j < MAX_EPOLL; j++) {
		uint64_t r = atomic_load(&epoll_regs[j]);
		if (r == 0 || r == EPOLL_REG_BUSY || packed_fd(r) != fd)
			continue;
		struct epoll_event ev = {.events = atomic_load(&epoll_events[j]),
					 .data.u64 = atomic_load(&epoll_data[j])};
		(void)real.epoll_ctl((int)packed_hi(r) - 1, op, fd, &ev);
		if (forget)
			atomic_store(&epoll_regs[j], 0);
	}
}

/* Async-signal-safe: atomics, fstat, fcntl, epoll_ctl, socket, bind, listen, dup3, close. */
static void on_drain_signal(int sig) {
	int saved = errno;
	int used = atomic_load(&mapped_used);
	(void)sig;
	for (int i = 0; i < used; i++) {
		uint64_t v = atomic_load(&mapped[i]);
		if (!mapped_live(v))
			continue;
		int fd = packed_fd(v);
		/* Out of the epoll sets first: the registration belongs to the open file description, which lives on in
		 * baton, so after dup3() it would keep reporting the shared socket and could no longer be deleted. Then
		 * the same registrations for the decoy under the same fd number: to the program, nothing changed. */
		epoll_regs_apply(fd, EPOLL_CTL_DEL, false);
		(void)replace_with_decoy(fd, &inherited[packed_hi(v)]);
		epoll_regs_apply(fd, EPOLL_CTL_ADD, true);
		atomic_store(&mapped[i], 0);
	}
	errno = saved;
}

static void install_drain_handler(void) {
	if (drain_signal == 0 || atomic_exchange(&drain_installed, true))
		return;
	struct sigaction old;
	/* A handler the program installed is its choice; so is ignoring the signal. */
	if (sigaction(drain_signal, NULL, &old) < 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
		return;
	struct sigaction sa = {.sa_handler = on_drain_signal, .sa_flags = SA_RESTART};
	sigfillset(&sa.sa_mask);
	(void)sigaction(drain_signal, &sa, NULL);
}

/* ---- bind, listen, unlink ---- */

/* Turns fd into the inherited socket bound at addr, if there is one. */
static bool map_bind(int fd, const struct sockaddr *addr, socklen_t len) {
	int domain, type, protocol;
	if (sockopt_int(fd, SO_DOMAIN, &domain) < 0 || sockopt_int(fd, SO_TYPE, &type) < 0 ||
	    sockopt_int(fd, SO_PROTOCOL, &protocol) < 0)
		return false;
	long idx = -1;
	for (size_t i = 0; i < n_inherited && idx < 0; i++)
		if (inherited[i].domain == domain && inherited[i].type == type && inherited[i].protocol == protocol &&
		    inherited_matches(&inherited[i], addr, len))
			idx = (long)i;
	if (idx < 0)
		return false;

	struct inherited *in = &inherited[idx];
	if (!fd_is(fd, in)) {
		/* The copy's number may have been closed and reused by the program: never dup something else. */
		if (!fd_is(in->fd, in))
			return false;
		int fdfl = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);
		if (fdfl < 0 || fl < 0 || dup3(in->fd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
			return false;
		/* O_NONBLOCK belongs to the open file description, which baton and every generation share: setting
		 * it here sets it for all of them (never cleared: that would block another generation's event loop). */
		int now = fcntl(fd, F_GETFL);
		if ((fl & O_NONBLOCK) && now >= 0 && !(now & O_NONBLOCK))
			(void)fcntl(fd, F_SETFL, now | O_NONBLOCK);
	}
	record_mapped(fd, idx);
	install_drain_handler();
	if (!is_connection_type(in->type))
		count_socket(idx);
	return true;
}

/* SO_REUSEPORT, SO_REUSEADDR or binding the same address again make no difference: every match gets a dup of the
 * one shared socket. */
EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr_arg, socklen_t len) {
	const struct sockaddr *addr = addr_arg.__sockaddr__;
	ensure_init();
	if (inert || !addr || len < sizeof(sa_family_t))
		return real.bind(fd, addr, len);
	int saved = errno;
	bool mapped_now = map_bind(fd, addr, len);
	errno = saved;
	return mapped_now ? 0 : real.bind(fd, addr, len);
}

/* Stateless (by identity): a second listen(), or listen() after close-and-rebind, is answered the same way. */
EXPORT int listen(int fd, int backlog) {
	ensure_init();
	if (inert)
		return real.listen(fd, backlog);
	int saved = errno, accepting = 0;
	long idx = inherited_of_fd(fd);
	if (idx >= 0 && is_connection_type(inherited[idx].type) && sockopt_int(fd, SO_ACCEPTCONN, &accepting) == 0 &&
	    accepting) {
		count_socket(idx);
		errno = saved;
		return 0;
	}
	errno = saved;
	return real.listen(fd, backlog);
}

EXPORT int unlink(const char *path) {
	ensure_init();
	if (!inert && is_inherited_path(path))
		return 0;
	return real.unlink(path);
}

EXPORT int unlinkat(int dirfd, const char *path, int flags) {
	ensure_init();
	if (!inert && flags == 0 && (path[0] == '/' || dirfd == AT_FDCWD) && is_inherited_path(path))
		return 0;
	return real.unlinkat(dirfd, path, flags);
}

EXPORT int remove(const char *path) {
	ensure_init();
	if (!inert && is_inherited_path(path))
		return 0;
	return real.remove(path);
}

/* ---- waiting ---- */

EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len) {
	if (busy())
		note_wait(fd);
	return real.accept(fd, addr.__sockaddr__, len);
}

EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags) {
	if (busy())
		note_wait(fd);
	return real.accept4(fd, addr.__sockaddr__, len, flags);
}

static void note_pollfds(const struct pollfd *fds, nfds_t nfds) {
	for (nfds_t i = 0; i < nfds && busy(); i++)
		if (fds[i].fd >= 0 && (fds[i].events & (POLLIN | POLLRDNORM)))
			note_wait(fds[i].fd);
}

/* glibc 2.36 declares poll()'s and ppoll()'s fds write-only (__fortified_attr_access), which they are not: gcc would
 * warn that reading them reads uninitialized memory. */
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
	if (busy())
		note_pollfds(fds, nfds);
	return real.poll(fds, nfds, timeout);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen) {
	if (busy())
		note_pollfds(fds, nfds);
	return real.poll_chk ? real.poll_chk(fds, nfds, timeout, fdslen) : real.poll(fds, nfds, timeout);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask) {
	if (busy())
		note_pollfds(fds, nfds);
	return real.ppoll(fds, nfds, timeout, sigmask);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask,
		       size_t fdslen) {
	if (busy())
		note_pollfds(fds, nfds);
	return real.ppoll_chk ? real.ppoll_chk(fds, nfds, timeout, sigmask, fdslen)
			      : real.ppoll(fds, nfds, timeout, sigmask);
}

#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static void note_fdset(int nfds, const fd_set *readfds) {
	for (int fd = 0; readfds && fd < nfds && fd < FD_SETSIZE && busy(); fd++)
		if (FD_ISSET(fd, readfds))
			note_wait(fd);
}

EXPORT int select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, struct timeval *timeout) {
	if (busy())
		note_fdset(nfds, readfds);
	return real.select(nfds, readfds, writefds, exceptfds, timeout);
}

EXPORT int pselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, const struct timespec *timeout,
		   const sigset_t *sigmask) {
	if (busy())
		note_fdset(nfds, readfds);
	return real.pselect(nfds, readfds, writefds, exceptfds, timeout, sigmask);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
	/* After READY, only drain still needs to hear about registrations (of mapped fds). */
	if (!busy() && drain_signal == 0)
		return real.epoll_ctl(epfd, op, fd, event);
	ensure_init();
	if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && event && (event->events & (EPOLLIN | EPOLLRDNORM)))
		note_wait(fd);
	int r = real.epoll_ctl(epfd, op, fd, event);
	/* Only mapped fds are recorded: any other registration costs one scan of the few mapped fds. */
	if (r == 0 && drain_signal != 0 && is_mapped_fd(fd)) {
		if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && event)
			record_epoll(epfd, fd, event);
		else if (op == EPOLL_CTL_DEL)
			forget_epoll(epfd, fd);
	}
	return r;
}

/* A datagram server's wait is its receive call. */
EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
	if (busy())
		note_wait(fd);
	return real.recv(fd, buf, n, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags) {
	if (busy())
		note_wait(fd);
	return real.recv_chk ? real.recv_chk(fd, buf, n, buflen, flags) : real.recv(fd, buf, n, flags);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, __SOCKADDR_ARG addr, socklen_t *addr_len) {
	if (busy())
		note_wait(fd);
	return real.recvfrom(fd, buf, n, flags, addr.__sockaddr__, addr_len);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, __SOCKADDR_ARG addr,
			      socklen_t *addr_len) {
	if (busy())
		note_wait(fd);
	return real.recvfrom_chk ? real.recvfrom_chk(fd, buf, n, buflen, flags, addr.__sockaddr__, addr_len)
				 : real.recvfrom(fd, buf, n, flags, addr.__sockaddr__, addr_len);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
	if (busy())
		note_wait(fd);
	return real.recvmsg(fd, msg, flags);
}
