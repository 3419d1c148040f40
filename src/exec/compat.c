#include "compat.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

char *compat_server_starter_port(const struct config *c) {
	size_t size = 1;
	for (size_t i = 0; i < c->n_listeners; i++)
		size += ADDR_HOST_MAX + ADDR_UNIX_PATH_MAX + 32;
	char *s = malloc(size), *p = s;
	if (!s)
		return NULL;
	*p = '\0';
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct address *a = &c->listeners[i].address;
		const char *sep = i ? ";" : "";
		size_t room = size - (size_t)(p - s);
		int fd = 3 + (int)i;
		if (a->kind == ADDR_TCP && !a->host[0])
			p += snprintf(p, room, "%s%u=%d", sep, a->port, fd);
		else if (a->kind == ADDR_TCP && strchr(a->host, ':'))
			p += snprintf(p, room, "%s[%s]:%u=%d", sep, a->host, a->port, fd);
		else if (a->kind == ADDR_TCP)
			p += snprintf(p, room, "%s%s:%u=%d", sep, a->host, a->port, fd);
		else
			p += snprintf(p, room, "%s%s=%d", sep, a->path, fd);
	}
	return s;
}

static int push(char ***env, char *entry) {
	if (!entry)
		return -ENOMEM;
	int r = strv_extend(env, entry);
	free(entry);
	return r;
}

int compat_env(const struct config *c, unsigned generation, const char *preload_library, int drain_signal,
	       char *const *base, char ***ret) {
	char **env = NULL;
	int r = 0;

	if (c->compat_server_starter) {
		char *port = compat_server_starter_port(c);
		r = push(&env, port ? strdup_printf("SERVER_STARTER_PORT=%s", port) : NULL);
		free(port);
		if (r >= 0)
			r = push(&env, strdup_printf("SERVER_STARTER_GENERATION=%u", generation));
	}
	if (r >= 0 && c->compat_einhorn) {
		r = push(&env, strdup_printf("EINHORN_FD_COUNT=%zu", c->n_listeners));
		for (size_t i = 0; r >= 0 && i < c->n_listeners; i++)
			r = push(&env, strdup_printf("EINHORN_FD_%zu=%zu", i, 3 + i));
	}
	if (r >= 0 && c->preload) {
		const char *old = strv_env_get(c->environment, "LD_PRELOAD");
		if (!old)
			old = strv_env_get(base, "LD_PRELOAD");
		/* ld.so(8): entries are separated by spaces or colons. */
		if (old && *old)
			r = push(&env, strdup_printf("LD_PRELOAD=%s:%s", preload_library, old));
		else
			r = push(&env, strdup_printf("LD_PRELOAD=%s", preload_library));
		if (r >= 0 && c->stop_drain_usec > 0)
			r = push(&env, strdup_printf("BATON_DRAIN_SIGNAL=%d", drain_signal));
	}
	if (r < 0) {
		strv_free(env);
		return r;
	}
	*ret = env;
	return 0;
}
