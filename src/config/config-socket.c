/* The control socket a config implies (baton(1) CONTROL SOCKET): control.socket as written, or a path derived from
 * the config file's real path, the same for every baton version and every way of naming the file. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

/* FNV-1a, 32 bits: a stable, dependency-free hash, so that every baton version derives the same path. */
static uint32_t fnv1a(const char *s) {
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

/* Where this user's control sockets live; NULL when out of memory. */
static char *control_socket_dir(void) {
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *dir;
	int r;

	if (geteuid() == 0)
		r = asprintf(&dir, "/run/baton");
	else if (xdg && xdg[0] == '/')
		r = asprintf(&dir, "%s/baton", xdg);
	else
		r = asprintf(&dir, "/tmp/baton-%u", (unsigned)geteuid());
	return r < 0 ? NULL : dir;
}

int config_control_socket_of(const char *path, const char *control_socket, char **ret) {
	char *p = NULL;

	if (control_socket) {
		if (control_socket[0] && !(p = strdup(control_socket)))
			return -ENOMEM;
		*ret = p;
		return 0;
	}
	if (!path) {
		*ret = NULL;
		return 0;
	}

	/* The real path, so that "baton reload -c ./app.yaml" from another directory or through a symlink finds the
	 * socket that "baton run -c /etc/app.yaml" created. A file that vanished falls back to its absolute name. */
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real) {
		if (errno == ENOMEM)
			return -ENOMEM;
		_cleanup_free_ char *cwd = path[0] == '/' ? NULL : getcwd(NULL, 0);
		if (asprintf(&real, "%s%s%s", strempty(cwd), cwd ? "/" : "", path) < 0) {
			real = NULL;
			return -ENOMEM;
		}
	}

	const char *base = strrchr(real, '/');
	base = base ? base + 1 : real;
	size_t base_len = strlen(base);
	for (const char *const *ext = (const char *const[]){".yaml", ".yml", NULL}; *ext; ext++) {
		size_t n = strlen(*ext);
		if (base_len > n && !strcmp(base + base_len - n, *ext)) {
			base_len -= n;
			break;
		}
	}

	_cleanup_free_ char *dir = control_socket_dir();
	if (!dir)
		return -ENOMEM;

	/* A long file name is cut to fit sun_path: the hash alone keeps the path unique. */
	size_t fixed = strlen(dir) + 1 + 1 + 8 + strlen(".sock");
	if (fixed + base_len > ADDR_UNIX_PATH_MAX - 1)
		base_len = fixed < ADDR_UNIX_PATH_MAX - 1 ? ADDR_UNIX_PATH_MAX - 1 - fixed : 0;
	if (asprintf(&p, "%s/%.*s-%08x.sock", dir, (int)base_len, base, fnv1a(real)) < 0)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int config_control_socket(const struct config *c, char **ret) {
	return config_control_socket_of(c->path, c->control_socket, ret);
}
