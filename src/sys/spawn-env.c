/* The child's environment and argv (baton(1) WHAT THE PROGRAM GETS): LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID,
 * NOTIFY_SOCKET, BATON_GENERATION and the watchdog variables as sd_listen_fds(3) and sd_notify(3) read them, and
 * {fd:NAME} in the command. Pure, and async-signal-safe where the forked child calls it (spawn_set_listen_pid). Does
 * not log. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spawn-env.h"
#include "util.h"

/* ---- environment ---- */

/* Variables the child must get from baton or not at all: a stale LISTEN_PIDFDID makes sd_listen_fds() see zero fds,
 * and the watchdog variables would make the child believe it is the one systemd watches (sd_watchdog_enabled(3)). */
static const char *const reserved_vars[] = {
	"LISTEN_FDS",   "LISTEN_PID",    "LISTEN_FDNAMES", "LISTEN_PIDFDID",
	"WATCHDOG_PID", "WATCHDOG_USEC", "NOTIFY_SOCKET",  "BATON_GENERATION",
};

#define LISTEN_PID_PREFIX "LISTEN_PID="
#define WATCHDOG_PID_PREFIX "WATCHDOG_PID="
/* Room after "LISTEN_PID=" for the digits and the NUL: a pid_t has at most 10 digits. */
#define LISTEN_PID_ROOM 24

/* Length of NAME in "NAME=value"; 0 when there is no '=' or the name is empty (such an entry is dropped). */
static size_t env_name_len(const char *entry) {
	const char *eq = strchr(entry, '=');
	return eq ? (size_t)(eq - entry) : 0;
}

static bool env_name_is(const char *entry, size_t len, const char *name) {
	return strlen(name) == len && memcmp(entry, name, len) == 0;
}

static bool env_name_reserved(const char *entry, size_t len) {
	for (size_t i = 0; i < ARRAY_SIZE(reserved_vars); i++)
		if (env_name_is(entry, len, reserved_vars[i]))
			return true;
	return false;
}

/* Whether one of list[from..] sets the variable NAME (of length len). */
static bool env_list_sets(char *const *list, size_t from, const char *name, size_t len) {
	for (size_t i = from; list && list[i]; i++)
		if (env_name_len(list[i]) == len && memcmp(list[i], name, len) == 0)
			return true;
	return false;
}

/* The environment is one allocation: the pointer array, then the strings it points at. One free() releases it, and
 * a start leaves no trail of small strings behind in baton's heap. */
struct env_block {
	char **env;
	size_t n;
	char *next, *end;
};

static size_t strv_bytes(char *const *l) {
	size_t len = 0;
	for (size_t i = 0; l && l[i]; i++)
		len += strlen(l[i]) + 1;
	return len;
}

static void block_add(struct env_block *b, const char *s, size_t len) {
	char *d = b->next;
	memcpy(d, s, len);
	d[len] = '\0';
	b->next += len + 1;
	b->env[b->n++] = d;
}

__attribute__((format(printf, 2, 3))) static void block_printf(struct env_block *b, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	size_t room = (size_t)(b->end - b->next);
	int len = vsnprintf(b->next, room, fmt, ap);
	va_end(ap);
	b->env[b->n++] = b->next;
	/* own_bytes() leaves room for every string; were it ever short, the entry is cut, never overrun. */
	b->next += len >= 0 && (size_t)len < room ? (size_t)len + 1 : room;
}

/* "PREFIX" followed by zeroes with room for any pid's digits. */
static void block_pid_slot(struct env_block *b, const char *prefix) {
	size_t len = strlen(prefix);
	memset(b->next, 0, len + LISTEN_PID_ROOM);
	block_add(b, prefix, len);
	b->next += LISTEN_PID_ROOM - 1;
}

static void block_names(struct env_block *b, char *const *names, size_t n) {
	char *s = b->next, *p = stpcpy(s, "LISTEN_FDNAMES=");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ':';
		p = stpcpy(p, names[i]);
	}
	b->env[b->n++] = s;
	b->next = p + 1;
}

/* Copies the entries of list that no later one replaces: none without a name or reserved for baton, none that a
 * later entry of list sets again (when last_wins), none that an entry of win1 or win2 sets. */
static void env_copy(struct env_block *b, char *const *list, bool last_wins, char *const *win1, char *const *win2) {
	for (size_t i = 0; list && list[i]; i++) {
		const char *e = list[i];
		size_t len = env_name_len(e);
		if (len == 0 || env_name_reserved(e, len) || (last_wins && env_list_sets(list, i + 1, e, len)) ||
		    env_list_sets(win1, 0, e, len) || env_list_sets(win2, 0, e, len))
			continue;
		block_add(b, e, strlen(e));
	}
}

/* baton's own variables, after the copied ones; the pid slots last (spawn_set_listen_pid takes the last match). */
static void env_add_own(struct env_block *b, const struct spawn_env_params *p) {
	if (p->n_fds > 0) {
		block_printf(b, "LISTEN_FDS=%zu", p->n_fds);
		/* Without names sd_listen_fds_with_names() reports "unknown" for each fd, which is still consistent. */
		if (p->names)
			block_names(b, p->names, p->n_fds);
	}
	if (p->notify_socket)
		block_printf(b, "NOTIFY_SOCKET=%s", p->notify_socket);
	block_printf(b, "BATON_GENERATION=%u", p->generation);
	if (p->watchdog_usec > 0) {
		/* sd_watchdog_enabled() heeds WATCHDOG_USEC only when WATCHDOG_PID is unset or its own pid: the slot
		 * is filled after fork, like LISTEN_PID's. */
		block_printf(b, "WATCHDOG_USEC=%" PRIu64, p->watchdog_usec);
		block_pid_slot(b, WATCHDOG_PID_PREFIX);
	}
	/* LISTEN_PID must be the pid of the process that reads it, known only after fork. The slot is zero-filled
	 * with room for any pid so that the child can fill it without allocating (spawn_set_listen_pid). */
	if (p->n_fds > 0)
		block_pid_slot(b, LISTEN_PID_PREFIX);
}

/* Room for env_add_own's strings: the names and the socket path, and at most 64 bytes for each other variable. */
static size_t own_bytes(const struct spawn_env_params *p) {
	size_t len = 6 * 64 + (p->notify_socket ? strlen(p->notify_socket) : 0);
	for (size_t i = 0; p->names && i < p->n_fds; i++)
		len += strlen(p->names[i]) + 1;
	return len;
}

int spawn_build_env(const struct spawn_env_params *p, char ***ret) {
	/* base + overrides + extra + LISTEN_FDS, LISTEN_FDNAMES, NOTIFY_SOCKET, BATON_GENERATION, WATCHDOG_USEC,
	 * WATCHDOG_PID, LISTEN_PID + NULL */
	size_t slots = strv_length(p->base) + strv_length(p->overrides) + strv_length(p->extra) + 8;
	size_t bytes = strv_bytes(p->base) + strv_bytes(p->overrides) + strv_bytes(p->extra) + own_bytes(p);
	char **env = calloc(1, slots * sizeof(char *) + bytes);
	if (!env)
		return -ENOMEM;
	struct env_block b = {.env = env, .next = (char *)(env + slots), .end = (char *)(env + slots) + bytes};

	/* The reserved variables are baton's to set: a second NOTIFY_SOCKET or LISTEN_FDS would leave the child to
	 * guess which one counts (getenv() takes the first). A later override of the same name wins. */
	env_copy(&b, p->base, false, p->overrides, p->extra);
	env_copy(&b, p->overrides, true, p->extra, NULL);
	env_copy(&b, p->extra, true, NULL, NULL);
	env_add_own(&b, p);
	*ret = env;
	return 0;
}

static void fill_pid_slot(char **envp, const char *prefix, size_t prefix_len, pid_t pid);

void spawn_set_listen_pid(char **envp, pid_t pid) {
	fill_pid_slot(envp, LISTEN_PID_PREFIX, sizeof(LISTEN_PID_PREFIX) - 1, pid);
	fill_pid_slot(envp, WATCHDOG_PID_PREFIX, sizeof(WATCHDOG_PID_PREFIX) - 1, pid);
}

static void fill_pid_slot(char **envp, const char *prefix, size_t prefix_len, pid_t pid) {
	char *slot = NULL;

	/* Only plain loops here: this runs in the forked child, where only async-signal-safe code belongs. The slot
	 * is the last entry, so take the last match. */
	for (char **e = envp; e && *e; e++) {
		size_t i = 0;
		while (i < prefix_len && (*e)[i] == prefix[i])
			i++;
		if (i == prefix_len)
			slot = *e;
	}
	if (!slot)
		return;

	char digits[LISTEN_PID_ROOM];
	size_t n = 0;
	unsigned long v = pid > 0 ? (unsigned long)pid : 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < sizeof(digits) - 1);

	char *out = slot + prefix_len;
	while (n > 0)
		*out++ = digits[--n];
	*out = '\0';
}

/* ---- argv ---- */

struct buf {
	char *s;
	size_t len, size;
};

static int buf_append(struct buf *b, const char *s, size_t len) {
	if (b->len + len + 1 > b->size) {
		size_t size = (b->len + len + 1) * 2;
		char *n = realloc(b->s, size);
		if (!n)
			return -ENOMEM;
		b->s = n;
		b->size = size;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
	return 0;
}

const char *spawn_placeholder_find(const char *s, const char **ret_name, size_t *ret_len) {
	static const char open[] = "{fd:";
	const char *start = strstr(s, open);
	if (!start)
		return NULL;
	const char *name = start + strlen(open), *end = strchr(name, '}');
	*ret_name = end ? name : NULL;
	*ret_len = end ? (size_t)(end - name) : 0;
	return start;
}

/* One argument with its placeholders substituted. An unknown name is -ENOENT with *ret_bad (a pointer into arg) and
 * *ret_bad_len set; an unclosed placeholder is -EINVAL. */
static void buf_done(struct buf *b) {
	free(b->s);
}

/* One argument with its placeholders substituted. An unknown name is -ENOENT with *ret_bad (a pointer into arg) and
 * *ret_bad_len set; an unclosed placeholder is -EINVAL. */
static int substitute_one(const char *arg, char *const *names, size_t n_names, char **ret, const char **ret_bad,
			  size_t *ret_bad_len) {
	_cleanup_(buf_done) struct buf b = {0};
	const char *p = arg, *start, *name;
	size_t len;
	int r;

	while ((start = spawn_placeholder_find(p, &name, &len))) {
		if (!name)
			return -EINVAL;
		size_t i = 0;
		while (i < n_names && !(strlen(names[i]) == len && memcmp(names[i], name, len) == 0))
			i++;
		if (i == n_names) {
			*ret_bad = name;
			*ret_bad_len = len;
			return -ENOENT;
		}
		char num[24];
		int k = snprintf(num, sizeof(num), "%zu", 3 + i);
		if ((r = buf_append(&b, p, (size_t)(start - p))) < 0 || (r = buf_append(&b, num, (size_t)k)) < 0)
			return r;
		p = name + len + 1;
	}
	if ((r = buf_append(&b, p, strlen(p))) < 0)
		return r;
	*ret = TAKE_PTR(b.s);
	return 0;
}

static int substitute(char *const *command, char *const *names, size_t n_names, char ***ret_argv, const char **ret_bad,
		      size_t *ret_bad_len) {
	size_t n = strv_length(command);
	_cleanup_strv_free_ char **argv = calloc(n + 1, sizeof(char *));
	int r;

	if (!argv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = substitute_one(command[i], names, n_names, &argv[i], ret_bad, ret_bad_len);
		if (r < 0)
			return r;
	}
	*ret_argv = TAKE_PTR(argv);
	return 0;
}

int spawn_expand_argv(char *const *command, char *const *names, size_t n_names, char ***ret_argv, char **ret_error) {
	const char *bad = NULL;
	size_t bad_len = 0;
	int r = substitute(command, names, n_names, ret_argv, &bad, &bad_len);
	if (r == -ENOENT)
		return fail_error(ret_error, r, "{fd:%.*s} names no listener", (int)bad_len, bad);
	if (r == -EINVAL)
		return fail_error(ret_error, r, "a {fd:NAME} placeholder is not closed");
	return r;
}
