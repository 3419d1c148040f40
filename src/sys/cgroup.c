/* cgroup v2 for generations (cgroup.h). */
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define SUPERVISOR_LEAF "supervisor"

/* /proc/PID/cgroup and cgroup.procs: a line per controller, a line per process. */
#define PROC_FILE_MAX (4 * 1024 * 1024)

static bool is_cgroup2(const char *path) {
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

static int write_at(int dir_fd, const char *name, const char *s) {
	_cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		return -errno;
	return 0;
}

/* The "0::/path" line of /proc/self/cgroup: the cgroup v2 path, malloc'd. */
static int own_path(char **ret) {
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int n = read_file_alloc(AT_FDCWD, "/proc/self/cgroup", O_NOCTTY, PROC_FILE_MAX, &buf, &len);
	if (n < 0)
		return n;
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "0::", 3) == 0) {
			*ret = strdup(line + 3);
			return *ret ? 0 : -ENOMEM;
		}
		line = next;
	}
	return -ENOENT;
}

/* Whether a process other than baton is in the cgroup. */
static bool shared(int cgroup_fd) {
	_cleanup_free_ char *buf = NULL;
	size_t len;
	if (read_file_alloc(cgroup_fd, "cgroup.procs", O_NOCTTY, PROC_FILE_MAX, &buf, &len) < 0)
		return true;
	pid_t self = getpid();
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid != self)
			return true;
		p = end + strspn(end, "\n");
	}
	return false;
}

static bool delegated(int cgroup_fd) {
	char v[8];
	for (const char *name = "trusted.delegate"; name;
	     name = streq(name, "user.delegate") ? NULL : "user.delegate") {
		ssize_t n = fgetxattr(cgroup_fd, name, v, sizeof(v) - 1);
		if (n > 0) {
			v[n] = '\0';
			if (v[0] == '1')
				return true;
		}
	}
	return false;
}

/* Enables for the generations what t's cgroup has of memory, cpu and pids. Failure is not an error: the figures are
 * then missing from `baton status`. */
static void enable_controllers(struct cgroup_tree *t) {
	char avail[512];
	if (read_file_at(t->fd, "cgroup.controllers", 0, avail, sizeof(avail)) < 0)
		return;
	const char *want[] = {"memory", "cpu", "pids"};
	char buf[64] = "";
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		/* Whole words of the space-separated list. */
		size_t len = strlen(want[i]);
		for (const char *p = avail; (p = strstr(p, want[i])); p += len)
			if ((p == avail || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || p[len] == '\0')) {
				snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s+%s", *buf ? " " : "",
					 want[i]);
				break;
			}
	}
	if (*buf && write_at(t->fd, "cgroup.subtree_control", buf) == 0)
		snprintf(t->controllers, sizeof(t->controllers), "%s", buf);
}

/* Whether the baton that created dir (open) is gone: it holds a lock on the directory for as long as it lives (see
 * create_own), across `baton upgrade` too. The lock, not the PID in the name, answers for a baton in another pid
 * namespace, whose PID means nothing here, and for one still starting, not yet moved into its leaf. A baton of a
 * version before the lock is asked by its PID alone. */
static bool owner_gone(long pid, int dir) {
	if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
		return false;
	return flock(dir, LOCK_EX | LOCK_NB) == 0;
}

/* Removes what a baton that was killed (SIGKILL: no clean-up) left in the shared cgroup origin: "baton-PID" whose
 * owner is gone (owner_gone). Only empty cgroups can be removed at all, and the leaf "supervisor" goes first: where a
 * baton still lives in it, its rmdir fails and nothing of that directory is touched. */
static void sweep_stale(int origin) {
	int dfd = dup(origin);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	for (struct dirent *de; (de = readdir(d));) {
		char *end;
		if (de->d_type != DT_DIR || strncmp(de->d_name, "baton-", 6) != 0)
			continue;
		long pid = strtol(de->d_name + 6, &end, 10);
		if (end == de->d_name + 6 || (*end && *end != '.'))
			continue;
		int sub = openat(origin, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			continue;
		if (!owner_gone(pid, sub))
			close(sub);
		else if (unlinkat(sub, SUPERVISOR_LEAF, AT_REMOVEDIR) == 0 || errno == ENOENT) {
			DIR *sd = fdopendir(sub);
			for (struct dirent *se; sd && (se = readdir(sd));)
				if (se->d_type == DT_DIR && se->d_name[0] != '.')
					(void)unlinkat(sub, se->d_name, AT_REMOVEDIR);
			if (sd)
				closedir(sd);
			else
				close(sub);
			(void)unlinkat(origin, de->d_name, AT_REMOVEDIR);
		} else
			close(sub);
	}
	closedir(d);
}

/* The cgroup2 mount: BATON_CGROUP_ROOT (tests only: another hierarchy, or none at all), /sys/fs/cgroup, or the
 * hybrid layout's /sys/fs/cgroup/unified. */
static int find_root(const char **ret, char **ret_error) {
	const char *root = getenv("BATON_CGROUP_ROOT");
	if (root && *root) {
		if (!is_cgroup2(root))
			return fail_error(ret_error, -ENOENT, "BATON_CGROUP_ROOT=%s is not a cgroup2 mount", root);
	} else if (is_cgroup2("/sys/fs/cgroup"))
		root = "/sys/fs/cgroup";
	else if (is_cgroup2("/sys/fs/cgroup/unified"))
		root = "/sys/fs/cgroup/unified";
	else
		return fail_error(ret_error, -ENOENT,
				  "no cgroup2 hierarchy is mounted (at /sys/fs/cgroup or /sys/fs/cgroup/unified)");
	*ret = root;
	return 0;
}

/* A child cgroup of baton's own under origin (the shared cgroup dir, at own in the hierarchy): *ret_path its path in
 * the hierarchy, *ret_fd open on it. A name of its own, never one that exists: batons that are PID 1 of pid
 * namespaces sharing a cgroup all have pid 1, and a cgroup another baton left (killed) is not this one's. */
static int create_own(int origin, const char *dir, const char *own, char **ret_path, int *ret_fd, char **ret_error) {
	char name[48];
	int k = -1;
	for (unsigned i = 1; i <= 64 && k < 0; i++) {
		snprintf(name, sizeof(name), i == 1 ? "baton-%d" : "baton-%d.%u", (int)getpid(), i);
		k = mkdirat(origin, name, 0755);
		if (k < 0 && errno != EEXIST)
			return fail_error(ret_error, -errno, "cannot create cgroups in %s: %s", dir, strerror(errno));
	}
	if (k < 0)
		return fail_error(ret_error, -EEXIST, "cannot create cgroups in %s: %s", dir, strerror(EEXIST));
	char *path = strdup_printf("%s/%s", streq(own, "/") ? "" : own, name);
	if (!path) {
		(void)unlinkat(origin, name, AT_REMOVEDIR);
		return -ENOMEM;
	}
	*ret_path = path;
	*ret_fd = openat(origin, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Held as long as this baton lives (the fd is kept across `baton upgrade`): the sign to other batons' sweep
	 * that this directory is not a leftover (owner_gone). */
	if (*ret_fd >= 0)
		(void)flock(*ret_fd, LOCK_EX | LOCK_NB);
	return 0;
}

/* The subtree baton fills: a child of its own cgroup that it creates (created), or its own. Its path under the
 * cgroup2 root and an fd of it. */
static int open_subtree(int origin, const char *dir, const char *own, bool created, char **ret_path, int *ret_fd,
			char **ret_error) {
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	if (created) {
		int r = create_own(origin, dir, own, &path, &fd, ret_error);
		if (r < 0)
			return r;
	} else {
		path = strdup(streq(own, "/") ? "" : own);
		if (!path)
			return -ENOMEM;
		fd = dup(origin);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	if (fd < 0)
		return fail_error(ret_error, -errno, "cannot open baton's cgroup in %s: %s", dir, strerror(errno));
	*ret_path = TAKE_PTR(path);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* baton's own leaf in the subtree (fd, at root+path), made (or found) and left empty: only whether baton may move
 * there is checked now, the move itself waits for cgroup_tree_settle(). Removed again when baton may not. */
static int prepare_leaf(int fd, const char *root, const char *path, char **ret_error) {
	if (mkdirat(fd, SUPERVISOR_LEAF, 0755) < 0 && errno != EEXIST)
		return fail_error(ret_error, -errno, "cannot create cgroups in %s%s: %s", root, path, strerror(errno));
	_cleanup_close_ int leaf = openat(fd, SUPERVISOR_LEAF, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (leaf < 0 || faccessat(leaf, "cgroup.procs", W_OK, AT_EACCESS) < 0) {
		int r = -errno;
		(void)unlinkat(fd, SUPERVISOR_LEAF, AT_REMOVEDIR);
		return fail_error(ret_error, r, "cannot move baton into %s%s/" SUPERVISOR_LEAF ": %s", root, path,
				  strerror(-r));
	}
	return 0;
}

int cgroup_tree_open(struct cgroup_tree *t, char **ret_error) {
	const char *root = NULL;
	int r = find_root(&root, ret_error);
	if (r < 0)
		return r;

	_cleanup_free_ char *own = NULL;
	r = own_path(&own);
	if (r < 0)
		return fail_error(ret_error, r, "cannot read baton's cgroup v2 path from /proc/self/cgroup: %s",
				  strerror(-r));
	_cleanup_free_ char *dir = strdup_printf("%s%s", root, streq(own, "/") ? "" : own);
	if (!dir)
		return -ENOMEM;
	_cleanup_close_ int origin = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (origin < 0)
		return fail_error(ret_error, -errno, "cannot open baton's cgroup %s: %s", dir, strerror(errno));

	/* A cgroup others share (a login session's, a shell's) is not baton's to fill: a child of its own is. */
	bool created = shared(origin);
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	r = open_subtree(origin, dir, own, created, &path, &fd, ret_error);
	if (r < 0)
		return r;

	struct cgroup_tree n = {.fd = fd, .path = path, .created = created};
	r = prepare_leaf(n.fd, root, n.path, ret_error);
	if (r < 0)
		goto fail;
	n.dir = strdup_printf("%s%s", root, n.path);
	n.origin = strdup(dir);
	if (!n.dir || !n.origin) {
		free(n.dir);
		free(n.origin);
		(void)write_at(origin, "cgroup.procs", "0");
		(void)unlinkat(n.fd, SUPERVISOR_LEAF, AT_REMOVEDIR);
		r = -ENOMEM;
		goto fail;
	}
	n.may_enable = created || delegated(n.fd);
	TAKE_FD(fd);
	TAKE_PTR(path);
	*t = n;
	return 0;
fail:
	if (created)
		(void)unlinkat(origin, strrchr(n.path, '/') + 1, AT_REMOVEDIR);
	return r;
}

void cgroup_tree_sweep(const struct cgroup_tree *t) {
	if (t->fd < 0 || !t->created)
		return;
	int origin = open(t->origin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (origin < 0)
		return;
	sweep_stale(origin);
	close(origin);
}

int cgroup_tree_settle(struct cgroup_tree *t) {
	if (t->fd < 0 || t->settled)
		return 0;
	t->settled = true;
	_cleanup_close_ int leaf = openat(t->fd, SUPERVISOR_LEAF, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = leaf < 0 ? -errno : write_at(leaf, "cgroup.procs", "0");
	if (r < 0)
		return r;
	/* Only once baton has left it: a cgroup with processes of its own cannot enable controllers for its children
	 * (cgroup v2's "no internal processes"). */
	if (t->may_enable)
		enable_controllers(t);
	return 0;
}

void cgroup_tree_close(struct cgroup_tree *t) {
	if (t->fd < 0)
		return;
	if (*t->controllers) {
		/* Back to what it was: the cgroup may hold processes again (baton itself, next). */
		char off[64];
		snprintf(off, sizeof(off), "%s", t->controllers);
		for (char *p = off; (p = strchr(p, '+')); p++)
			*p = '-';
		(void)write_at(t->fd, "cgroup.subtree_control", off);
	}
	/* What a generation left (a cgroup that was still populated when it was dropped) is empty by now. */
	int dfd = dup(t->fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_type == DT_DIR && de->d_name[0] != '.' && !streq(de->d_name, SUPERVISOR_LEAF))
			(void)unlinkat(t->fd, de->d_name, AT_REMOVEDIR);
	if (d)
		closedir(d);
	else if (dfd >= 0)
		close(dfd);
	_cleanup_close_ int origin = open(t->origin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (origin >= 0 && write_at(origin, "cgroup.procs", "0") == 0) {
		(void)unlinkat(t->fd, SUPERVISOR_LEAF, AT_REMOVEDIR);
		if (t->created)
			(void)rmdir(t->dir);
	}
	close(t->fd);
	free(t->path);
	free(t->dir);
	free(t->origin);
	*t = (struct cgroup_tree)CGROUP_TREE_INIT;
}

/* "name/file": a file of the cgroup name, relative to t->fd. */
static const char *file_of(char buf[static 256], const char *name, const char *file) {
	snprintf(buf, 256, "%s/%s", name, file);
	return buf;
}

int cgroup_create(const struct cgroup_tree *t, const char *name) {
	if (mkdirat(t->fd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int cgroup_remove(const struct cgroup_tree *t, const char *name) {
	return unlinkat(t->fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int cgroup_events_open(const struct cgroup_tree *t, const char *name) {
	char buf[256];
	int fd = openat(t->fd, file_of(buf, name, "cgroup.events"), O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cgroup_populated(int events_fd) {
	char buf[256];
	/* Reading from the start is also what re-arms EPOLLPRI (kernfs reports a change until the file is read). */
	ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	const char *p = strstr(buf, "populated ");
	if (!p)
		return -EIO;
	return p[10] == '1';
}

int cgroup_pids(const struct cgroup_tree *t, const char *name, pid_t **ret, size_t *ret_n) {
	char path[256];
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int n = read_file_alloc(t->fd, file_of(path, name, "cgroup.procs"), O_NOCTTY, PROC_FILE_MAX, &buf, &len);
	if (n < 0)
		return n;
	pid_t *pids = NULL;
	size_t count = 0;
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		pid_t *np = realloc(pids, (count + 1) * sizeof(pid_t));
		if (!np) {
			free(pids);
			return -ENOMEM;
		}
		pids = np;
		pids[count++] = (pid_t)pid;
		p = end + strspn(end, "\n");
	}
	*ret = pids;
	*ret_n = count;
	return 0;
}

int cgroup_signal(const struct cgroup_tree *t, const char *name, int sig) {
	_cleanup_free_ pid_t *pids = NULL;
	size_t n;
	int r = cgroup_pids(t, name, &pids, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0)
			(void)kill(pids[i], sig);
	return (int)n;
}

int cgroup_kill(const struct cgroup_tree *t, const char *name) {
	char path[256];
	int r = write_at(t->fd, file_of(path, name, "cgroup.kill"), "1");
	if (r != -ENOENT)
		return r;
	/* Before Linux 5.14: one by one. A process forked meanwhile is seen by the next pass. */
	for (int i = 0; i < 8; i++)
		if ((r = cgroup_signal(t, name, SIGKILL)) <= 0)
			return r;
	return 0;
}

int cgroup_count(const struct cgroup_tree *t, const char *name) {
	_cleanup_free_ pid_t *pids = NULL;
	size_t n;
	int r = cgroup_pids(t, name, &pids, &n);
	return r < 0 ? r : (int)n;
}

void cgroup_figures(const struct cgroup_tree *t, const char *name, uint64_t *ret_memory, uint64_t *ret_cpu_usec) {
	char path[256], buf[1024];
	*ret_memory = *ret_cpu_usec = UINT64_MAX;
	uint64_t v;
	if (read_file_at(t->fd, file_of(path, name, "memory.current"), 0, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		if (parse_uint64(buf, &v) == 0)
			*ret_memory = v;
	}
	/* cpu.stat's usage_usec is there without the cpu controller too (Linux 5.13+: it is the base stat). */
	if (read_file_at(t->fd, file_of(path, name, "cpu.stat"), 0, buf, sizeof(buf)) > 0 &&
	    strncmp(buf, "usage_usec ", 11) == 0) {
		char *p = buf + 11;
		p[strcspn(p, "\n")] = '\0';
		if (parse_uint64(p, &v) == 0)
			*ret_cpu_usec = v;
	}
}

bool cgroup_has_pid(const struct cgroup_tree *t, const char *name, pid_t pid) {
	char path[64];
	_cleanup_free_ char *buf = NULL;
	size_t flen;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (t->fd < 0 || read_file_alloc(AT_FDCWD, path, O_NOCTTY, PROC_FILE_MAX, &buf, &flen) < 0)
		return false;
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "0::", 3) == 0) {
			const char *p = line + 3;
			size_t len = strlen(t->path);
			/* Its own cgroup, or one the program created below it. */
			if (strncmp(p, t->path, len) != 0 || p[len] != '/')
				return false;
			p += len + 1;
			size_t nlen = strlen(name);
			return strncmp(p, name, nlen) == 0 && (p[nlen] == '\0' || p[nlen] == '/');
		}
		line = next;
	}
	return false;
}

/* ---- baton upgrade ---- */

void cgroup_tree_serialize(const struct cgroup_tree *t, struct ser_writer *w) {
	if (t->fd < 0)
		return;
	fprintf(w->f, "cgroups %d %d\n", ser_fd(w, t->fd), t->created);
	ser_put_string(w, "cgroups.path", t->path);
	ser_put_string(w, "cgroups.dir", t->dir);
	ser_put_string(w, "cgroups.origin", t->origin);
	ser_put_string(w, "cgroups.controllers", t->controllers);
}

static int cgroup_tree_record(struct ser_reader *rd, struct cgroup_tree *t) {
	if (streq(rd->key, "cgroups.path"))
		return ser_string(rd, &t->path, NULL);
	if (streq(rd->key, "cgroups.dir"))
		return ser_string(rd, &t->dir, NULL);
	if (streq(rd->key, "cgroups.origin"))
		return ser_string(rd, &t->origin, NULL);
	if (streq(rd->key, "cgroups.controllers")) {
		_cleanup_free_ char *c = NULL;
		int k = ser_string(rd, &c, NULL);
		if (k < 0)
			return k;
		if (strlen(c) >= sizeof(t->controllers))
			return ser_fail(rd, "too long");
		strcpy(t->controllers, c);
		return 0;
	}
	return ser_fail(rd, "unknown record");
}

int cgroup_tree_deserialize(struct ser_reader *rd, struct cgroup_tree *t) {
	int k;
	if ((k = ser_take_fd(rd, &t->fd, false)) < 0 || (k = ser_bool(rd, &t->created)) < 0)
		return k;
	/* An upgrade waits for the start, after which baton is in its leaf (cgroup_tree_settle()). */
	t->settled = true;
	/* The same open file keeps its lock across the exec; one from a version before the lock takes it now. */
	(void)flock(t->fd, LOCK_EX | LOCK_NB);
	while (ser_next(rd) > 0) {
		if (!ser_key_has_prefix(rd, "cgroups.")) {
			ser_unread(rd);
			break;
		}
		if ((k = cgroup_tree_record(rd, t)) < 0)
			return k;
	}
	if (!t->path || !t->dir || !t->origin)
		return ser_fail_whole(rd, "the cgroup subtree is incomplete");
	return 0;
}

void cgroup_tree_forget(struct cgroup_tree *t) {
	free(t->path);
	free(t->dir);
	free(t->origin);
	*t = (struct cgroup_tree)CGROUP_TREE_INIT;
}
