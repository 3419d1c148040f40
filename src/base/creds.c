/* User and group resolution: see creds.h. */
#include "creds.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

bool creds_parse_id(const char *s, uint32_t *ret) {
	uint64_t v;
	if (parse_uint_max(s, UINT32_MAX - 1, &v) < 0)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* getpw*_r / getgr*_r need a buffer whose size nothing tells in advance: grow it on ERANGE, up to 1 MiB. */
#define LOOKUP_BUF_MAX (1024 * 1024)

/* glibc reports "no such entry" as 0 with no result; some NSS modules say ENOENT or ESRCH. */
static bool lookup_not_found(int r) {
	return r == 0 || r == ENOENT || r == ESRCH;
}

/* Looks s up in the group database (group) or the passwd database (else): by id when s is one, by name otherwise,
 * into *pw or *gr with *buf as their strings' room. Returns 1 when found, 0 when not, or negative errno. */
static int lookup(bool group, const char *s, struct passwd *pw, struct group *gr, char **buf) {
	uint32_t id;
	bool numeric = creds_parse_id(s, &id);

	for (size_t size = 1024;; size *= 2) {
		struct passwd *pw_res = NULL;
		struct group *gr_res = NULL;
		char *n = realloc(*buf, size);
		if (!n)
			return -ENOMEM;
		*buf = n;
		int r = group ? (numeric ? getgrgid_r((gid_t)id, gr, n, size, &gr_res)
					 : getgrnam_r(s, gr, n, size, &gr_res))
			      : (numeric ? getpwuid_r((uid_t)id, pw, n, size, &pw_res)
					 : getpwnam_r(s, pw, n, size, &pw_res));
		if (r == ERANGE && size < LOOKUP_BUF_MAX)
			continue;
		if (!lookup_not_found(r))
			return -r;
		return pw_res || gr_res;
	}
}

int creds_lookup_user(const char *user, struct creds_user *ret) {
	_cleanup_free_ char *buf = NULL;
	struct passwd pw;
	int r = lookup(false, user, &pw, NULL, &buf);
	if (r <= 0)
		return r;
	char *name = strdup(pw.pw_name);
	if (!name)
		return -ENOMEM;
	*ret = (struct creds_user){.uid = pw.pw_uid, .gid = pw.pw_gid, .name = name};
	return 1;
}

int creds_resolve_uid(const char *user, uid_t *ret) {
	uint32_t id;
	if (creds_parse_id(user, &id)) {
		*ret = (uid_t)id;
		return 0;
	}
	struct creds_user u;
	int r = creds_lookup_user(user, &u);
	if (r <= 0)
		return r < 0 ? r : -ESRCH;
	free(u.name);
	*ret = u.uid;
	return 0;
}

int creds_resolve_gid(const char *group, gid_t *ret) {
	uint32_t id;
	if (creds_parse_id(group, &id)) {
		*ret = (gid_t)id;
		return 0;
	}
	_cleanup_free_ char *buf = NULL;
	struct group gr;
	int r = lookup(true, group, NULL, &gr, &buf);
	if (r <= 0)
		return r < 0 ? r : -ESRCH;
	*ret = gr.gr_gid;
	return 0;
}

/* initgroups() semantics, resolved in the parent: the user's groups from the group database plus gid. */
static int user_groups(const char *name, gid_t gid, gid_t **ret, size_t *ret_n) {
	int n = 16;

	for (int attempt = 0; attempt < 8; attempt++) {
		gid_t *groups = malloc((size_t)n * sizeof(gid_t));
		if (!groups)
			return -ENOMEM;
		int have = n;
		if (getgrouplist(name, gid, groups, &have) >= 0) {
			*ret = groups;
			*ret_n = (size_t)have;
			return 0;
		}
		free(groups);
		/* -1: too small; have tells how many there are (glibc). Grow twofold at least, should it not. */
		n = have > n ? have : n * 2;
	}
	return -ENOBUFS;
}

int creds_resolve(const char *user, const char *group, struct creds *ret, char **ret_error) {
	_cleanup_free_ char *pw_name = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	uid_t uid = getuid();
	gid_t gid = 0;
	size_t n_groups = 0;
	uint32_t id;
	int r;

	if (user) {
		struct creds_user u;
		r = creds_lookup_user(user, &u);
		if (r < 0)
			return fail_error(ret_error, r, "Failed to look up user '%s': %s", user, strerror(-r));
		if (r > 0) {
			pw_name = u.name;
			uid = u.uid;
			gid = u.gid;
		} else if (creds_parse_id(user, &id) && group)
			/* A bare uid without passwd entry (common in containers) works when the group is given. */
			uid = (uid_t)id;
		else
			return fail_error(ret_error, -ESRCH, "user '%s' does not exist", user);
	}

	if (group) {
		/* setgid() needs no group entry: an id is taken as it is. */
		r = creds_resolve_gid(group, &gid);
		if (r == -ESRCH)
			return fail_error(ret_error, r, "group '%s' does not exist", group);
		if (r < 0)
			return fail_error(ret_error, r, "Failed to look up group '%s': %s", group, strerror(-r));
	}

	if (pw_name) {
		r = user_groups(pw_name, gid, &groups, &n_groups);
		if (r < 0)
			return fail_error(ret_error, r, "Failed to get the groups of user '%s': %s", pw_name,
					  strerror(-r));
	} else {
		/* Only a group, or a uid without an entry: that group alone, and the supplementary ones dropped. */
		groups = malloc(sizeof(gid_t));
		if (!groups)
			return -ENOMEM;
		groups[0] = gid;
		n_groups = 1;
	}

	*ret = (struct creds){.uid = uid, .gid = gid, .groups = TAKE_PTR(groups), .n_groups = n_groups};
	return 0;
}
