/* Listening sockets: binding with every listener option, and taking sockets over from the supervisor's own
 * LISTEN_FDS. */
#include "sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "libsystemd.h"
#include "log.h"
#include "util.h"

/* What failed in bind_listener(): the step ("bind", "setsockopt SO_REUSEPORT") and, when errno alone does not say
 * it, a detail ("exists and is not a socket", a resolver message). Both static. */
struct bind_error {
	const char *step;
	const char *detail;
};

static int bind_fail(struct bind_error *e, int r, const char *step, const char *detail) {
	e->step = step;
	e->detail = detail;
	return r;
}

static int setsockopt_int(int fd, int level, int opt, int value) {
	if (setsockopt(fd, level, opt, &value, sizeof(value)) < 0)
		return -errno;
	return 0;
}

static int clamp_int(uint64_t v) {
	return v > INT_MAX ? INT_MAX : (int)v;
}

/* SO_RCVBUFFORCE/SO_SNDBUFFORCE may exceed net.core.[rw]mem_max but need CAP_NET_ADMIN; without it the plain
 * option still gives what the sysctl allows. */
static int set_buffer(int fd, int force_opt, int opt, uint32_t size) {
	int r = setsockopt_int(fd, SOL_SOCKET, force_opt, clamp_int(size));
	if (r == -EPERM)
		r = setsockopt_int(fd, SOL_SOCKET, opt, clamp_int(size));
	return r;
}

static int set_options(const struct listener_config *l, int fd, int domain, struct bind_error *e) {
	const struct address *a = &l->address;
	bool tcp = a->kind == ADDR_TCP, ip = domain == AF_INET || domain == AF_INET6;
	int r;

	if (tcp && l->reuse_address && (r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
		return bind_fail(e, r, "setsockopt SO_REUSEADDR", NULL);
	if (ip && l->reuse_port && (r = setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		return bind_fail(e, r, "setsockopt SO_REUSEPORT", NULL);

	if (domain == AF_INET6) {
		int v6only = l->ipv6_only;
		/* "All addresses" under tcp:// means both families: ask for it rather than trusting the
		 * net.ipv6.bindv6only sysctl. */
		if (v6only < 0 && !a->host[0] && a->family == AF_UNSPEC)
			v6only = 0;
		if (v6only >= 0 && (r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only)) < 0)
			return bind_fail(e, r, "setsockopt IPV6_V6ONLY", NULL);
	}

	if (ip && l->freebind) {
		if (domain == AF_INET6) {
			r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1);
			/* IPV6_FREEBIND exists since Linux 4.15; before, IP_FREEBIND applied to IPv6 sockets too. */
			if (r == -ENOPROTOOPT)
				r = setsockopt_int(fd, IPPROTO_IP, IP_FREEBIND, 1);
		} else
			r = setsockopt_int(fd, IPPROTO_IP, IP_FREEBIND, 1);
		if (r < 0)
			return bind_fail(e, r, "setsockopt IP_FREEBIND", NULL);
	}
	if (ip && l->transparent) {
		if (domain == AF_INET6)
			r = setsockopt_int(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, 1);
		else
			r = setsockopt_int(fd, IPPROTO_IP, IP_TRANSPARENT, 1);
		if (r < 0)
			return bind_fail(e, r, "setsockopt IP_TRANSPARENT", NULL);
	}

	if (tcp && l->keepalive && (r = setsockopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0)
		return bind_fail(e, r, "setsockopt SO_KEEPALIVE", NULL);
	if (tcp && l->nodelay && (r = setsockopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0)
		return bind_fail(e, r, "setsockopt TCP_NODELAY", NULL);
	if (tcp && l->defer_accept_usec > 0) {
		/* The option counts whole seconds; round up so that "500ms" does not turn it off. */
		uint64_t sec = l->defer_accept_usec / USEC_PER_SEC + (l->defer_accept_usec % USEC_PER_SEC != 0);
		if ((r = setsockopt_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, clamp_int(sec))) < 0)
			return bind_fail(e, r, "setsockopt TCP_DEFER_ACCEPT", NULL);
	}
	if (tcp && l->fastopen > 0 && (r = setsockopt_int(fd, IPPROTO_TCP, TCP_FASTOPEN, clamp_int(l->fastopen))) < 0)
		return bind_fail(e, r, "setsockopt TCP_FASTOPEN", NULL);

	if (l->receive_buffer > 0 && (r = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, l->receive_buffer)) < 0)
		return bind_fail(e, r, "setsockopt SO_RCVBUF", NULL);
	if (l->send_buffer > 0 && (r = set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, l->send_buffer)) < 0)
		return bind_fail(e, r, "setsockopt SO_SNDBUF", NULL);
	return 0;
}

/* A stale socket file left by a crash is removed; anything else at the path is left alone (util.h). */
static int unix_path_prepare(const struct address *a, struct bind_error *e) {
	const char *step = NULL;
	int r = unix_path_clear_stale(a->path, addr_socket_type(a), &step);
	if (r == -ENOTSOCK)
		return bind_fail(e, -EADDRINUSE, NULL, "exists and is not a socket");
	if (r == -EADDRINUSE)
		return bind_fail(e, r, NULL, "another process listens on it");
	if (r < 0)
		return bind_fail(e, r, step, NULL);
	return 0;
}

/* chown/chmod the path just bound. lchown and AT_SYMLINK_NOFOLLOW: should the directory be writable by others,
 * a symlink swapped in after bind() must not redirect the change. */
static int unix_path_set_access(const struct listener_config *l, struct bind_error *e) {
	const char *path = l->address.path;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	int r;

	if (l->owner && (r = creds_resolve_uid(l->owner, &uid)) < 0)
		return bind_fail(e, r, r == -ESRCH ? "chown" : "look up the owner",
				 r == -ESRCH ? "unknown user" : NULL);
	if (l->group && (r = creds_resolve_gid(l->group, &gid)) < 0)
		return bind_fail(e, r, r == -ESRCH ? "chown" : "look up the group",
				 r == -ESRCH ? "unknown group" : NULL);
	if ((l->owner || l->group) && lchown(path, uid, gid) < 0)
		return bind_fail(e, -errno, "chown", NULL);

	if (l->mode >= 0 && fchmodat(AT_FDCWD, path, (mode_t)l->mode, AT_SYMLINK_NOFOLLOW) < 0) {
		/* glibc implements the flag through /proc/self/fd (or fchmodat2 on Linux >= 6.6) and says
		 * EOPNOTSUPP when it can do neither; then check by hand that the path is still a socket. */
		struct stat st;
		if (errno != EOPNOTSUPP)
			return bind_fail(e, -errno, "chmod", NULL);
		if (lstat(path, &st) < 0)
			return bind_fail(e, -errno, "chmod", NULL);
		if (!S_ISSOCK(st.st_mode))
			return bind_fail(e, -EPERM, "chmod", "the path was replaced by something else than our socket");
		if (chmod(path, (mode_t)l->mode) < 0)
			return bind_fail(e, -errno, "chmod", NULL);
	}
	return 0;
}

static int bind_listener(const struct listener_config *l, int *ret_fd, struct bind_error *e) {
	const struct address *a = &l->address;
	bool unix_path = addr_is_unix(a) && !a->abstract;
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why = NULL;
	int r;

	r = addr_to_sockaddr(a, &ss, &len, &why);
	if (r < 0)
		return bind_fail(e, r, "resolve", why);

	int type = addr_socket_type(a);
	_cleanup_close_ int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0 && errno == EAFNOSUPPORT && ss.ss_family == AF_INET6 && !a->host[0] && a->family == AF_UNSPEC) {
		/* A kernel without IPv6 (ipv6.disable=1) has no dual-stack [::]: there 0.0.0.0 is "all addresses". */
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof(ss));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*sin);
		fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	}
	if (fd < 0)
		return bind_fail(e, -errno, "socket", NULL);

	r = set_options(l, fd, ss.ss_family, e);
	if (r < 0)
		return r;

	if (unix_path) {
		r = unix_path_prepare(a, e);
		if (r < 0)
			return r;
	}

	/* With a mode, the file never exists with wider permissions, not even until the chmod below. */
	if (unix_path && l->mode >= 0)
		r = bind_with_mode(fd, (const struct sockaddr *)&ss, len, (mode_t)l->mode);
	else
		r = bind(fd, (const struct sockaddr *)&ss, len) < 0 ? -errno : 0;
	if (r < 0)
		return bind_fail(e, r, "bind", NULL);

	if (unix_path)
		r = unix_path_set_access(l, e);
	if (r >= 0 && addr_is_stream(a) && listen(fd, l->backlog >= 0 ? l->backlog : SOMAXCONN) < 0)
		r = bind_fail(e, -errno, "listen", NULL);
	if (r < 0) {
		if (unix_path)
			(void)unlink(a->path);
		return r;
	}

	*ret_fd = TAKE_FD(fd);
	return 0;
}

int sock_bind(const struct listener_config *l, int *ret_fd, const char **ret_why) {
	struct bind_error e = {0};
	int r = bind_listener(l, ret_fd, &e);
	if (r < 0 && ret_why)
		*ret_why = e.detail ? e.detail : e.step;
	return r;
}

int sock_take_inherited(struct inherited_fd **ret, size_t *ret_n) {
	char **names = NULL;

	/* Checks LISTEN_PID, sets close-on-exec and unsets LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES. libsystemd 252 does
	 * not know LISTEN_PIDFDID (systemd >= 256): unset it too, or our children would inherit a stale one. */
	int n = libsystemd_listen_fds_with_names(&names);
	(void)unsetenv("LISTEN_PIDFDID");
	if (n <= 0) {
		strv_free(names);
		if (n < 0)
			return n;
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}

	struct inherited_fd *inh = calloc((size_t)n, sizeof(*inh));
	if (!inh) {
		for (int i = 0; i < n; i++)
			close(LISTEN_FDS_START + i);
		strv_free(names);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		inh[i].fd = LISTEN_FDS_START + i;
		/* "unknown" is what systemd passes for a socket without FileDescriptorName= (and what libsystemd fills
		 * in when LISTEN_FDNAMES is missing), "stored" for an fd-store entry stored without FDNAME=: neither
		 * names a listener, so those are matched by address. */
		if (names && names[i] && !streq(names[i], "unknown") && !streq(names[i], "stored"))
			inh[i].name = TAKE_PTR(names[i]);
		else if (names)
			free(names[i]);
	}
	/* Entries were taken out above: a strv_free() would stop at the first hole. */
	free(names);
	*ret = inh;
	*ret_n = (size_t)n;
	return 0;
}

void inherited_fds_free(struct inherited_fd *inh, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (inh[i].fd >= 0)
			close(inh[i].fd);
		free(inh[i].name);
	}
	free(inh);
}

/* Whether an inherited fd can serve a: the type and family of its kind. The address itself may differ. */
static bool fd_fits(const struct address *a, int fd) {
	int type = 0, domain = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != addr_socket_type(a))
		return false;
	len = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return false;
	if (addr_is_unix(a))
		return domain == AF_UNIX;
	return (domain == AF_INET || domain == AF_INET6) && (a->family == AF_UNSPEC || a->family == domain);
}

static void claim(struct listener *l, struct inherited_fd *in) {
	l->fd = in->fd;
	l->inherited = true;
	in->fd = -1;
	in->claimed = true;
}

static char *describe_inherited(const struct inherited_fd *inh, size_t n_inh) {
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	fprintf(f, "got %zu socket%s", n_inh, n_inh == 1 ? "" : "s");
	for (size_t i = 0; i < n_inh; i++)
		fprintf(f, "%s%s", i == 0 ? ": " : ", ", inh[i].name ? inh[i].name : "(unnamed)");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The held listener with l's address: the one at l's own position when the config kept its order (a reload's common
 * case), else found in the index. Held addresses are unique (validated), so the first equal one is the one. */
static long held_of(const struct listener *l, size_t i, const struct listener *held, size_t n_held,
		    const struct addr_index *x) {
	if (i < n_held && addr_equal(&held[i].address, &l->address))
		return (long)i;
	return addr_index_find(x, &l->address);
}

/* A listener whose address a held listener has gets that very socket, borrowed until the hand-over. 1 when it did. */
static int take_held(struct listener *l, size_t i, const struct listener *held, size_t n_held,
		     const struct addr_index *x) {
	long j = held_of(l, i, held, n_held, x);
	if (j < 0)
		return 0;
	l->fd = held[j].fd;
	l->borrowed = true;
	l->inherited = held[j].inherited;
	return 1;
}

/* By name first, for every listener: systemd passes several socket units in no guaranteed order, and an address
 * match must not take a socket that another listener names. */
static void claim_by_name(const struct config *c, struct listener *ls, const bool *is_held, struct inherited_fd *inh,
			  size_t n_inh) {
	char abuf[ADDR_FORMAT_MAX];
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct listener_config *lc = &c->listeners[i];
		if (lc->inherit == INHERIT_NEVER || is_held[i])
			continue;
		for (size_t j = 0; j < n_inh; j++) {
			if (inh[j].claimed || !streq(inh[j].name, lc->name))
				continue;
			if (!fd_fits(&lc->address, inh[j].fd)) {
				log_warning("listener '%s': inherited socket '%s' (fd %d) is not of the kind of %s, "
					    "ignoring its name",
					    lc->name, inh[j].name, inh[j].fd, addr_format(&lc->address, abuf));
				continue;
			}
			if (addr_matches_fd(&lc->address, inh[j].fd) <= 0)
				log_warning("listener '%s': inherited socket '%s' (fd %d) is not bound to %s, using it "
					    "anyway",
					    lc->name, inh[j].name, inh[j].fd, addr_format(&lc->address, abuf));
			claim(&ls[i], &inh[j]);
			break;
		}
	}
}

/* Then by address among the sockets nobody named; a listener with inherit: required that got none is an error. On a
 * reload (held) inherited sockets are gone: they went to the listeners at the start. */
static int claim_by_address(const struct config *c, struct listener *ls, const bool *is_held, bool reload,
			    struct inherited_fd *inh, size_t n_inh, char **ret_error) {
	char abuf[ADDR_FORMAT_MAX];
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct listener_config *lc = &c->listeners[i];
		if (lc->inherit == INHERIT_NEVER || ls[i].inherited || is_held[i])
			continue;
		for (size_t j = 0; j < n_inh; j++)
			if (!inh[j].claimed && inh[j].fd >= 0 && addr_matches_fd(&lc->address, inh[j].fd) > 0) {
				log_debug("listener '%s': using inherited fd %d bound to %s", lc->name, inh[j].fd,
					  addr_format(&lc->address, abuf));
				claim(&ls[i], &inh[j]);
				break;
			}
		if (ls[i].inherited || lc->inherit != INHERIT_REQUIRED)
			continue;
		if (reload) {
			*ret_error = strdup_printf("listener '%s' (%s): inherit is required, but inherited sockets are "
						   "only taken when baton starts",
						   lc->name, addr_format(&lc->address, abuf));
			return -ENXIO;
		}
		_cleanup_free_ char *got = describe_inherited(inh, n_inh);
		*ret_error = strdup_printf("listener '%s': inherit is required but no inherited socket matches (%s)",
					   lc->name, strempty(got));
		return -ENOENT;
	}
	return 0;
}

/* Closes the inherited sockets no listener claimed (fd -1 afterwards); warn: whether a leftover matters. */
static void close_unclaimed(struct inherited_fd *inh, size_t n_inh, bool warn) {
	for (size_t j = 0; j < n_inh; j++) {
		if (inh[j].fd < 0 || (warn && inh[j].claimed))
			continue;
		if (warn && inh[j].name)
			log_warning("inherited socket fd %d (name '%s') matches no listener, closing it", inh[j].fd,
				    inh[j].name);
		else if (warn)
			log_warning("inherited socket fd %d (no name) matches no listener, closing it", inh[j].fd);
		close(inh[j].fd);
		inh[j].fd = -1;
	}
}

static int bind_unclaimed(const struct config *c, struct listener *ls, const bool *is_held, char **ret_error) {
	char abuf[ADDR_FORMAT_MAX];
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct listener_config *lc = &c->listeners[i];
		struct bind_error e = {0};
		if (ls[i].inherited || is_held[i])
			continue;
		int r = bind_listener(lc, &ls[i].fd, &e);
		if (r < 0) {
			const char *detail = e.detail ? e.detail : strerror(-r);
			*ret_error =
				strdup_printf("listener '%s' (%s): %s%s%s", lc->name, addr_format(&lc->address, abuf),
					      strempty(e.step), e.step ? ": " : "", detail);
			return r;
		}
		ls[i].created_path = addr_is_unix(&lc->address) && !lc->address.abstract;
	}
	return 0;
}

int sock_open_all(const struct config *c, const struct listener *held, size_t n_held, struct inherited_fd *inh,
		  size_t n_inh, struct listener **ret, char **ret_error) {
	size_t n = c->n_listeners;
	_cleanup_free_ char *error = NULL;
	_cleanup_free_ bool *is_held = calloc(n > 0 ? n : 1, sizeof(bool));
	struct listener *ls = calloc(n > 0 ? n : 1, sizeof(*ls));
	struct addr_index x;
	int r = ls && is_held ? addr_index_init(&x, held ? &held[0].address : NULL, n_held, sizeof(*held)) : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < n; i++)
		ls[i].fd = -1;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		ls[i].address = c->listeners[i].address;
		if (!(ls[i].name = strdup(c->listeners[i].name)))
			r = -ENOMEM;
		else if ((r = take_held(&ls[i], i, held, n_held, &x)) >= 0)
			is_held[i] = r > 0;
	}
	if (ls && is_held)
		addr_index_free(&x);
	if (r >= 0) {
		claim_by_name(c, ls, is_held, inh, n_inh);
		r = claim_by_address(c, ls, is_held, held != NULL, inh, n_inh, &error);
	}
	if (r >= 0) {
		/* Close the leftovers before binding: one of them may hold the address a listener is about to bind. */
		close_unclaimed(inh, n_inh, true);
		r = bind_unclaimed(c, ls, is_held, &error);
	}
	if (r < 0) {
		listeners_free(ls, n);
		close_unclaimed(inh, n_inh, false);
		if (ret_error)
			*ret_error = error ? TAKE_PTR(error) : strdup(strerror(-r));
		return r;
	}
	*ret = ls;
	return 0;
}

void listeners_hand_over(struct listener *ls, size_t n, struct listener *old, size_t n_old) {
	struct addr_index x;
	/* Without memory for the index, every pair: slower, the same result. */
	bool indexed = addr_index_init(&x, old ? &old[0].address : NULL, n_old, sizeof(*old)) >= 0;
	for (size_t i = 0; i < n; i++) {
		/* Addresses are unique on each side: at most one old listener matches. */
		long j = -1;
		if (indexed)
			j = held_of(&ls[i], i, old, n_old, &x);
		else
			for (size_t k = 0; k < n_old && j < 0; k++)
				if (addr_equal(&ls[i].address, &old[k].address))
					j = (long)k;
		if (j >= 0 && ls[i].borrowed && ls[i].fd == old[j].fd) {
			old[j].fd = -1;
			ls[i].borrowed = false;
		}
		if (j >= 0 && old[j].created_path) {
			ls[i].created_path = true;
			old[j].created_path = false;
		}
	}
	if (indexed)
		addr_index_free(&x);
}

bool listeners_match_config(const struct listener *ls, size_t n, const struct config *c) {
	if (n != c->n_listeners)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!streq(ls[i].name, c->listeners[i].name) || !addr_equal(&ls[i].address, &c->listeners[i].address))
			return false;
	return true;
}

void listener_close(struct listener *l) {
	/* Never the file of an inherited socket: its owner (a systemd socket unit) keeps listening on it. */
	if (l->created_path && !l->inherited && addr_is_unix(&l->address) && !l->address.abstract &&
	    unlink(l->address.path) < 0 && errno != ENOENT)
		log_debug_errno(-errno, "Failed to remove %s, ignoring", l->address.path);
	if (l->fd >= 0 && !l->borrowed)
		close(l->fd);
	l->fd = -1;
	l->borrowed = false;
	l->created_path = false;
	free(l->name);
	l->name = NULL;
}

void listeners_free(struct listener *ls, size_t n) {
	if (!ls)
		return;
	for (size_t i = 0; i < n; i++)
		listener_close(&ls[i]);
	free(ls);
}

/* ---- baton upgrade ---- */

void listeners_serialize(const struct listener *ls, size_t n, struct ser_writer *w) {
	for (size_t i = 0; i < n; i++) {
		fprintf(w->f, "listener %d %d %d ", ser_fd(w, ls[i].fd), ls[i].inherited, ls[i].created_path);
		ser_put_escaped(w->f, ls[i].name, strlen(ls[i].name));
		fputc('\n', w->f);
	}
}

int listeners_deserialize(struct ser_reader *rd, const struct config *c, struct listener **ret, size_t *ret_n) {
	struct listener *ls = NULL;
	size_t n = 0;
	int k = 0;
	do {
		if (!streq(rd->key, "listener")) {
			ser_unread(rd);
			break;
		}
		if (!c || n >= c->n_listeners) {
			k = ser_fail(rd, "a listener the config does not have");
			break;
		}
		struct listener *more = realloc(ls, (n + 1) * sizeof(*more));
		if (!more) {
			k = -ENOMEM;
			break;
		}
		ls = more;
		struct listener *l = &ls[n];
		/* The address is the config's, by position. */
		*l = (struct listener){.fd = -1, .address = c->listeners[n].address};
		if ((k = ser_take_fd(rd, &l->fd, false)) < 0 || (k = ser_bool(rd, &l->inherited)) < 0 ||
		    (k = ser_bool(rd, &l->created_path)) < 0 || (k = ser_string(rd, &l->name, NULL)) < 0) {
			free(l->name);
			break;
		}
		n++;
	} while (ser_next(rd) > 0);
	if (k < 0) {
		listeners_forget(ls, n);
		return k;
	}
	*ret = ls;
	*ret_n = n;
	return 0;
}

void listeners_forget(struct listener *ls, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(ls[i].name);
	free(ls);
}
