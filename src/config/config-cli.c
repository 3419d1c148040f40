/* The command line merged into a config (baton(1) OPTIONS: --listen NAME=ADDRESS, the command after --), the checks
 * that need the final listener set, and the control socket a control command reads from a config file that may be
 * broken. Does not log: errors are messages for the caller. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "config.h"
#include "spawn-env.h"
#include "util.h"

static int cli_listener(const char *arg, const struct listener_config *ls, size_t n, struct listener_config *lc,
			char **ret_error) {
	const char *eq = strchr(arg, '='), *why = NULL;
	char abuf[ADDR_FORMAT_MAX];

	if (!eq)
		return fail_error(ret_error, -EINVAL, "--listen '%s': expected NAME=ADDRESS", arg);
	_cleanup_free_ char *name = strndup(arg, (size_t)(eq - arg));
	if (!name)
		return -ENOMEM;
	if (!config_name_valid(name))
		return fail_error(ret_error, -EINVAL,
				  "--listen '%s': invalid name '%s' (1-255 characters of A-Z a-z 0-9 . _ -)", arg,
				  name);
	config_listener_defaults(lc);
	if (addr_parse(eq + 1, &lc->address, &why) < 0)
		return fail_error(ret_error, -EINVAL, "--listen '%s': %s: '%s'", arg, why, eq + 1);
	for (size_t i = 0; i < n; i++) {
		if (streq(ls[i].name, name))
			return fail_error(ret_error, -EINVAL, "--listen '%s': duplicate listener name '%s'", arg, name);
		if (addr_equal(&ls[i].address, &lc->address))
			return fail_error(ret_error, -EINVAL,
					  "--listen '%s': duplicate address '%s' (also listener '%s')", arg,
					  addr_format(&lc->address, abuf), ls[i].name);
	}
	lc->name = TAKE_PTR(name);
	return 0;
}

/* Every {fd:NAME} in the command must name a listener: caught here, a typo is a config error (and never stops a
 * running generation on reload) instead of a failed start. */
static int check_placeholders(const char *path, char *const *command, const struct listener_config *ls, size_t n,
			      char **ret_error) {
	/* Where the command came from: the file's key, or the command line after --. */
	char where[PATH_MAX + 64];
	const char *name;
	size_t len;

	for (size_t i = 0; command && command[i]; i++)
		for (const char *p = command[i]; (p = spawn_placeholder_find(p, &name, &len)); p = name + len + 1) {
			if (path)
				snprintf(where, sizeof(where), "%s: key 'program.command[%zu]'", path, i);
			else
				snprintf(where, sizeof(where), "command argument %zu", i);
			if (!name)
				return fail_error(ret_error, -EINVAL, "%s: '{fd:' without a closing '}': '%s'", where,
						  command[i]);
			bool found = false;
			for (size_t j = 0; j < n && !found; j++)
				found = strlen(ls[j].name) == len && strncmp(ls[j].name, name, len) == 0;
			if (!found)
				return fail_error(ret_error, -EINVAL, "%s: {fd:%.*s} names no listener: '%s'", where,
						  (int)len, name, command[i]);
		}
	return 0;
}

/* Where key was given, for a message: a --set option, the file, or (a default) nowhere but its name. */
static const char *where_of(const struct config *c, const char *key, char *buf, size_t size) {
	const char *option = config_set_of(c->sets, key);
	if (option)
		snprintf(buf, size, "--set %s", option);
	else if (c->path)
		snprintf(buf, size, "%s: key '%s'", c->path, key);
	else
		return key;
	return buf;
}

/* The program keys that refer to the listener set, checked once the command line's listeners are merged in. */
static int check_listener_refs(const struct config *c, const struct listener_config *ls, size_t n, char **ret_error) {
	char where[PATH_MAX + 64], abuf[ADDR_FORMAT_MAX];
#define WHERE(key) where_of(c, key, where, sizeof(where))
	if (c->stdin_listener) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = streq(ls[i].name, c->stdin_listener);
		if (!found)
			return fail_error(ret_error, -EINVAL, "%s: names no listener: '%s'", WHERE("program.stdin"),
					  c->stdin_listener);
	}
	if (c->preload && n == 0)
		return fail_error(ret_error, -EINVAL, "%s: there are no listeners for the shim to hand out",
				  WHERE("program.preload"));
	for (size_t i = 0; c->compat_server_starter && i < n; i++)
		if (ls[i].address.kind != ADDR_TCP &&
		    (ls[i].address.kind != ADDR_UNIX_STREAM || ls[i].address.abstract))
			return fail_error(ret_error, -EINVAL,
					  "%s: listener '%s' (%s) cannot be written in SERVER_STARTER_PORT, which has "
					  "only TCP ports and unix stream socket paths",
					  WHERE("program.compat"), ls[i].name, addr_format(&ls[i].address, abuf));
#undef WHERE
	return 0;
}

/* A shallow copy of the config's listeners followed by the --listen ones, which it owns (their names). */
struct merged_listeners {
	struct listener_config *ls;
	size_t n_old, n;
};

static void merged_listeners_done(struct merged_listeners *m) {
	if (!m->ls)
		return;
	/* Only the new entries: the old ones are the config's, shared by the shallow copy. */
	for (size_t i = m->n_old; i < m->n; i++)
		free(m->ls[i].name);
	free(m->ls);
}

static int apply_cli(struct config *c, char *const *listens, char *const *command, bool need_command,
		     char **ret_error) {
	_cleanup_(merged_listeners_done) struct merged_listeners m = {.n_old = c->n_listeners, .n = c->n_listeners};
	_cleanup_strv_free_ char **cmd = NULL;
	size_t n_new = strv_length(listens);
	bool have_command = command && command[0];
	int r;

	if (c->path && n_new > 0 && c->n_listeners > 0)
		return fail_error(ret_error, -EINVAL, "--listen '%s': %s has listeners already: give them in one place",
				  listens[0], c->path);
	if (c->path && have_command && c->command)
		return fail_error(ret_error, -EINVAL,
				  "a command after --: %s has program.command already: give it in one place", c->path);

	/* Merged into copies first: c changes only once nothing can fail any more. */
	if (n_new > 0) {
		m.ls = calloc(m.n_old + n_new, sizeof(*m.ls));
		if (!m.ls)
			return -ENOMEM;
		if (m.n_old > 0)
			memcpy(m.ls, c->listeners, m.n_old * sizeof(*m.ls));
		for (size_t i = 0; i < n_new; i++, m.n++) {
			r = cli_listener(listens[i], m.ls, m.n, &m.ls[m.n], ret_error);
			if (r < 0)
				return r;
		}
	}
	if (have_command && !command[0][0])
		return fail_error(ret_error, -EINVAL, "empty command after --");
	if (need_command && !have_command && (!c->command || !c->command[0])) {
		if (c->path)
			return fail_error(ret_error, -EINVAL,
					  "no program: give program.command in %s or a command after --", c->path);
		return fail_error(ret_error, -EINVAL, "no program: give a command after --");
	}
	if (have_command && !(cmd = strv_copy(command)))
		return -ENOMEM;
	/* The file is named when the command is the file's; one given after -- is the command line's. */
	const struct listener_config *ls = m.ls ? m.ls : c->listeners;
	r = check_placeholders(cmd ? NULL : c->path, cmd ? cmd : c->command, ls, m.n, ret_error);
	if (r < 0)
		return r;
	r = check_listener_refs(c, ls, m.n, ret_error);
	if (r < 0)
		return r;

	if (m.ls) {
		free(c->listeners);
		c->listeners = TAKE_PTR(m.ls);
		c->n_listeners = m.n;
	}
	if (cmd) {
		strv_free(c->command);
		c->command = TAKE_PTR(cmd);
	}
	return 0;
}

int config_apply_cli(struct config *c, char *const *listens, char *const *command, char **ret_error) {
	return apply_cli(c, listens, command, true, ret_error);
}

int config_merge_cli(struct config *c, char *const *listens, char *const *command, char **ret_error) {
	return apply_cli(c, listens, command, false, ret_error);
}
