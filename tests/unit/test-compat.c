/* The variables for programs that do not read LISTEN_FDS (compat.h): SERVER_STARTER_PORT for each address kind,
 * EINHORN_FD_*, and LD_PRELOAD / BATON_DRAIN_SIGNAL for the preload shim, merged with program.environment and
 * baton's own environment the way spawn_build_env then hands them to the program. */
#include <signal.h>
#include <stdbool.h>

#include "compat.h"
#include "spawn.h"
#include "test.h"
#include "util.h"

#define SHIM "/usr/lib/baton/libbaton-preload.so"

/* A command-line config with the listeners given as NAME=ADDRESS. */
static struct config *config_with(char **listens) {
	struct config *c = NULL;
	char *error = NULL, *cmd[] = {"/bin/app", NULL};
	if (config_new_default(&c) < 0 || config_apply_cli(c, listens, cmd, &error) < 0) {
		printf("# cannot build the config: %s\n", strempty(error));
		exit(EXIT_FAILURE);
	}
	return c;
}

/* The value of name in env (the last one), or NULL. */
static const char *env_get(char *const *env, const char *name) {
	size_t len = strlen(name);
	const char *found = NULL;
	for (; env && *env; env++)
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			found = *env + len + 1;
	return found;
}

static size_t env_count(char *const *env, const char *name) {
	size_t n = 0, len = strlen(name);
	for (; env && *env; env++)
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			n++;
	return n;
}

static void port_is(char **listens, const char *want, const char *what) {
	struct config *c = config_with(listens);
	char *port = compat_server_starter_port(c);
	CHECK_STREQ(port, want, "SERVER_STARTER_PORT: %s", what);
	free(port);
	config_free(c);
}

static void test_server_starter_port(void) {
	char *any[] = {"http=tcp://:8080", NULL};
	port_is(any, "8080=3", "tcp://:8080 (all addresses) is the bare port");
	char *any4[] = {"http=tcp4://:8080", NULL};
	port_is(any4, "8080=3", "tcp4://:8080 is the bare port too");
	char *v4[] = {"http=tcp://127.0.0.1:8080", NULL};
	port_is(v4, "127.0.0.1:8080=3", "IPv4 host:port");
	char *v6[] = {"http=tcp6://[::1]:8080", NULL};
	port_is(v6, "[::1]:8080=3", "IPv6 in brackets");
	char *v6any[] = {"http=tcp://[::]:80", NULL};
	port_is(v6any, "[::]:80=3", "IPv6 any address in brackets");
	char *name[] = {"http=tcp://localhost:8080", NULL};
	port_is(name, "localhost:8080=3", "host name");
	char *unix_path[] = {"sock=unix:/run/app/app.sock", NULL};
	port_is(unix_path, "/run/app/app.sock=3", "unix path");
	char *several[] = {"http=tcp://:8080", "local=tcp://127.0.0.1:8081", "v6=tcp6://[::1]:8082",
			   "sock=unix:/path.sock", NULL};
	port_is(several, "8080=3;127.0.0.1:8081=4;[::1]:8082=5;/path.sock=6", "several, in listener order, ';'-joined");
	char *none[] = {NULL};
	port_is(none, "", "no listeners: empty");

	/* Many listeners: the fd numbers go past one digit and the string grows with them. */
	char *many[13];
	for (int i = 0; i < 12; i++)
		many[i] = strdup_printf("l%d=tcp6://[fe80::1:2:3:%d]:%d", i, i, 60000 + i);
	many[12] = NULL;
	struct config *c = config_with(many);
	char *port = compat_server_starter_port(c);
	CHECK(port && strstr(port, "[fe80::1:2:3:0]:60000=3;") == port && strstr(port, ";[fe80::1:2:3:11]:60011=14") &&
		      port[strlen(port) - 1] == '4',
	      "12 IPv6 listeners: %s", strempty(port));
	free(port);
	config_free(c);
	for (int i = 0; i < 12; i++)
		free(many[i]);
}

static void test_compat_vars(void) {
	char *listens[] = {"http=tcp://127.0.0.1:8080", "sock=unix:/run/a.sock", NULL};
	struct config *c = config_with(listens);
	char **env = (char **)1;

	CHECK(compat_env(c, 1, NULL, 0, NULL, &env) == 0 && env == NULL, "nothing asked: no variables (NULL)");

	c->compat_server_starter = true;
	CHECK(compat_env(c, 7, NULL, 0, NULL, &env) == 0, "server-starter");
	CHECK(strv_length(env) == 2, "server-starter: 2 variables (%zu)", strv_length(env));
	CHECK_STREQ(env_get(env, "SERVER_STARTER_PORT"), "127.0.0.1:8080=3;/run/a.sock=4", "SERVER_STARTER_PORT");
	CHECK_STREQ(env_get(env, "SERVER_STARTER_GENERATION"), "7", "SERVER_STARTER_GENERATION is the generation");
	CHECK(!env_get(env, "EINHORN_FD_COUNT") && !env_get(env, "LD_PRELOAD"), "server-starter: nothing else");
	strv_free(env);

	c->compat_server_starter = false;
	c->compat_einhorn = true;
	CHECK(compat_env(c, 2, NULL, 0, NULL, &env) == 0, "einhorn");
	if (strv_length(env) == 3) {
		CHECK_STREQ(env[0], "EINHORN_FD_COUNT=2", "EINHORN_FD_COUNT");
		CHECK_STREQ(env[1], "EINHORN_FD_0=3", "EINHORN_FD_0");
		CHECK_STREQ(env[2], "EINHORN_FD_1=4", "EINHORN_FD_1");
	} else
		CHECK(false, "einhorn: 3 variables (%zu)", strv_length(env));
	CHECK(!env_get(env, "SERVER_STARTER_PORT"), "einhorn: no SERVER_STARTER_PORT");
	strv_free(env);

	c->compat_server_starter = true;
	CHECK(compat_env(c, 3, NULL, 0, NULL, &env) == 0 && strv_length(env) == 5, "both: 5 variables");
	CHECK(env_get(env, "SERVER_STARTER_PORT") && streq(env_get(env, "EINHORN_FD_1"), "4"), "both: both sets");
	strv_free(env);
	config_free(c);

	char *none[] = {NULL};
	c = config_with(none);
	c->compat_einhorn = true;
	CHECK(compat_env(c, 1, NULL, 0, NULL, &env) == 0 && strv_length(env) == 1 &&
		      streq(env_get(env, "EINHORN_FD_COUNT"), "0"),
	      "einhorn without listeners: EINHORN_FD_COUNT=0 only");
	strv_free(env);
	config_free(c);
}

/* compat_env's LD_PRELOAD for program.environment env and baton's environment base. */
static char *preload_of(char **environment, char **base) {
	char *listens[] = {"http=tcp://:8080", NULL};
	struct config *c = config_with(listens);
	c->preload = true;
	c->environment = strv_copy(environment);
	char **env = NULL;
	char *value = NULL;
	if (compat_env(c, 1, SHIM, SIGRTMIN + 5, base, &env) == 0) {
		CHECK(env_count(env, "LD_PRELOAD") == 1, "one LD_PRELOAD");
		const char *v = env_get(env, "LD_PRELOAD");
		value = v ? strdup(v) : NULL;
	}
	strv_free(env);
	config_free(c);
	return value;
}

static void test_preload(void) {
	char *empty[] = {NULL};
	char *base[] = {"PATH=/bin", "LD_PRELOAD=/base/a.so /base/b.so", NULL};
	char *base_empty[] = {"LD_PRELOAD=", NULL};
	char *program[] = {"A=1", "LD_PRELOAD=/env.so", NULL};
	char *program_empty[] = {"LD_PRELOAD=", NULL};
	char *v;

	v = preload_of(empty, empty);
	CHECK_STREQ(v, SHIM, "LD_PRELOAD: the shim alone");
	free(v);
	v = preload_of(NULL, NULL);
	CHECK_STREQ(v, SHIM, "LD_PRELOAD: the shim alone (no environments at all)");
	free(v);
	v = preload_of(empty, base);
	CHECK_STREQ(v, SHIM ":/base/a.so /base/b.so", "LD_PRELOAD: shim first, baton's own kept after it");
	free(v);
	v = preload_of(program, empty);
	CHECK_STREQ(v, SHIM ":/env.so", "LD_PRELOAD: program.environment's kept after the shim");
	free(v);
	v = preload_of(program, base);
	CHECK_STREQ(v, SHIM ":/env.so", "LD_PRELOAD: program.environment's wins over baton's");
	free(v);
	v = preload_of(empty, base_empty);
	CHECK_STREQ(v, SHIM, "LD_PRELOAD: an empty one adds no ':'");
	free(v);
	v = preload_of(program_empty, base);
	CHECK_STREQ(v, SHIM, "LD_PRELOAD: program.environment's empty one replaces baton's");
	free(v);

	/* What the program finally sees: spawn_build_env puts compat_env's entries over both environments. */
	char *listens[] = {"http=tcp://:8080", NULL};
	struct config *c = config_with(listens);
	c->preload = true;
	c->environment = strv_copy(program);
	char **extra = NULL, **envp = NULL;
	CHECK(compat_env(c, 4, SHIM, SIGRTMIN + 5, base, &extra) == 0, "compat_env with preload");
	char *names[] = {"http", NULL};
	struct spawn_env_params ep = {
		.base = base, .overrides = c->environment, .names = names, .n_fds = 1, .generation = 4, .extra = extra};
	CHECK(spawn_build_env(&ep, &envp) == 0, "spawn_build_env with the compat entries");
	CHECK(env_count(envp, "LD_PRELOAD") == 1, "the program gets one LD_PRELOAD (%zu)",
	      env_count(envp, "LD_PRELOAD"));
	CHECK_STREQ(env_get(envp, "LD_PRELOAD"), SHIM ":/env.so", "the program's LD_PRELOAD");
	CHECK_STREQ(env_get(envp, "A"), "1", "program.environment's other variables stay");
	CHECK_STREQ(env_get(envp, "PATH"), "/bin", "baton's other variables stay");
	CHECK(!env_get(envp, "BATON_DRAIN_SIGNAL"), "no BATON_DRAIN_SIGNAL without stop.drain");
	strv_free(extra);
	free(envp);
	extra = NULL;

	/* BATON_DRAIN_SIGNAL: only with stop.drain, with the signal given. */
	c->stop_drain_usec = 5 * USEC_PER_SEC;
	CHECK(compat_env(c, 4, SHIM, SIGRTMIN + 5, NULL, &extra) == 0, "compat_env with drain");
	char want[16];
	snprintf(want, sizeof(want), "%d", SIGRTMIN + 5);
	CHECK_STREQ(env_get(extra, "BATON_DRAIN_SIGNAL"), want, "BATON_DRAIN_SIGNAL is the drain signal's number");
	CHECK(strv_length(extra) == 2, "drain: LD_PRELOAD and BATON_DRAIN_SIGNAL (%zu)", strv_length(extra));
	strv_free(extra);
	extra = NULL;
	c->preload = false;
	CHECK(compat_env(c, 4, SHIM, SIGRTMIN + 5, base, &extra) == 0 && extra == NULL,
	      "no preload: neither LD_PRELOAD nor BATON_DRAIN_SIGNAL, whatever stop.drain says");
	strv_free(extra);
	extra = NULL;

	/* Everything at once: the order is server-starter, einhorn, LD_PRELOAD, BATON_DRAIN_SIGNAL. */
	c->preload = c->compat_einhorn = c->compat_server_starter = true;
	CHECK(compat_env(c, 9, SHIM, 40, NULL, &extra) == 0 && strv_length(extra) == 6, "everything: 6 variables");
	if (strv_length(extra) == 6) {
		CHECK_STREQ(extra[0], "SERVER_STARTER_PORT=8080=3", "everything: 1st");
		CHECK_STREQ(extra[1], "SERVER_STARTER_GENERATION=9", "everything: 2nd");
		CHECK_STREQ(extra[2], "EINHORN_FD_COUNT=1", "everything: 3rd");
		CHECK_STREQ(extra[3], "EINHORN_FD_0=3", "everything: 4th");
		CHECK_STREQ(extra[4], "LD_PRELOAD=" SHIM ":/env.so", "everything: 5th");
		CHECK_STREQ(extra[5], "BATON_DRAIN_SIGNAL=40", "everything: 6th");
	}
	strv_free(extra);
	config_free(c);
}

int main(void) {
	test_server_starter_port();
	test_compat_vars();
	test_preload();
	return test_done();
}
