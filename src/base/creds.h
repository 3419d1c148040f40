/* User and group names resolved into ids, for program.user/program.group (spawn.c) and a unix socket's owner/group
 * (sockets.c): one reentrant resolution (getpwnam_r/getgrnam_r, never the static buffers of getpwnam), one rule for
 * numbers. Does not log.
 *
 * The rule for numbers (baton.yaml(5) LISTENERS and PROGRAM: "a name or a number"): a canonical decimal number
 * (util.h's parse_uint64: no sign, no leading zero) from 0 to 4294967294 is an id, as systemd reads User=; anything
 * else is a name. (uid_t)-1 means "unchanged" to setuid()/chown(), so it is never an id. An id needs no entry in the
 * passwd or group database; a name does (-ESRCH otherwise). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Whether s is an id by the rule above; *ret is set only then. */
bool creds_parse_id(const char *s, uint32_t *ret);

/* A user's passwd entry: found by name, or by uid for an id. */
struct creds_user {
	uid_t uid;
	gid_t gid; /* the primary group */
	char *name; /* malloc'd */
};
/* Returns 1 and fills *ret (free ret->name) when the passwd database has user, 0 when it has no entry, or negative
 * errno when the lookup failed. */
int creds_lookup_user(const char *user, struct creds_user *ret);

/* The uid of user / the gid of group: an id as it is, a name through its entry. Returns 0, -ESRCH for a name
 * without entry, or another negative errno when the lookup failed. */
int creds_resolve_uid(const char *user, uid_t *ret);
int creds_resolve_gid(const char *group, gid_t *ret);

/* The credentials of a program run as user and/or group (baton.yaml(5) PROGRAM, program.user and program.group). */
struct creds {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups, malloc'd */
	size_t n_groups;
};
/* group defaults to the user's primary group and the supplementary groups are the user's membership (initgroups(3)
 * semantics). Only a group: uid stays getuid() and the groups are that one alone; an id without passwd entry needs a
 * group. On failure returns negative errno (-ESRCH for an unknown name) with a malloc'd *ret_error ("user 'x' does
 * not exist"). At least one of user and group is set. */
int creds_resolve(const char *user, const char *group, struct creds *ret, char **ret_error);
