/* Fake mechanisms for the state machine's unit test (test-supervisor.c): generations that are records instead of
 * processes, listener sets without sockets, and upstream calls that are only counted. They stand in for generation.c,
 * readiness.c, upstream.c and sockets.c, which the test does not link: supervisor.c sees the same functions. */
#include "fake-mechanisms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct fake_world fake;

void generation_free(struct generation *g) {
	if (!g)
		return;
	fake.freed++;
	free(g->status);
	free(g);
}

int generation_start(struct generation **list, const struct generation_spec *spec, struct generation **ret,
		     char **ret_error) {
	fake.started++;
	if (fake.fail_start) {
		*ret_error = strdup("fork: Resource temporarily unavailable");
		return -EAGAIN;
	}
	struct generation *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	*g = (struct generation){
		.id = spec->id,
		.pid = 1000 + (pid_t)spec->id,
		.pidfd = -1,
		.state = GEN_STARTING,
		.started_usec = fake.now,
		.deadline_usec = fake.now + spec->config->readiness_timeout_usec,
		.watchdog_usec = spec->config->program_watchdog_usec,
		.watchdog_deadline_usec = USEC_INFINITY,
		.readiness = spec->config->readiness_type,
		.config = spec->config,
		.pgid = 1000 + (pid_t)spec->id,
		.check_usec = USEC_INFINITY,
		.next = *list,
	};
	*list = g;
	*ret = g;
	return 0;
}

uint64_t generation_ready(struct generation *g, uint64_t now) {
	g->state = GEN_READY;
	g->ready_usec = now > g->started_usec ? now : g->started_usec;
	g->deadline_usec = USEC_INFINITY;
	return now - g->started_usec;
}

int generation_signal(const struct generation *g, int sig) {
	fake.signals++;
	fake.last_signal = sig;
	return g->pid > 0 ? 0 : -ESRCH;
}

void generation_stop(struct generation *list, struct generation *g, const struct config *c, uint64_t now) {
	if (g->state == GEN_STOPPING || g->state == GEN_KILLED)
		return;
	generation_end_readiness(g);
	fake.stopped++;
	g->state = GEN_STOPPING;
	g->deadline_usec = now + c->stop_timeout_usec;
}

void generation_retire(struct generation *list, struct generation *g, const struct config *c, uint64_t now) {
	generation_stop(list, g, c, now);
}

void generation_kill(struct generation *list, struct generation *g, const char *why) {
	generation_end_readiness(g);
	fake.killed++;
	g->state = GEN_KILLED;
	g->deadline_usec = USEC_INFINITY;
}

void readiness_begin(struct generation *g) {
	(void)g;
}

void readiness_confirm_begin(struct generation *g, uint64_t now) {
	fake.confirm_begun++;
	g->confirming = true;
	g->check_usec = g->config->confirm_command ? now : USEC_INFINITY;
}

void generation_end_readiness(struct generation *g) {
	g->check_usec = USEC_INFINITY;
	g->confirming = false;
}

void upstream_ready(const struct generation *g) {
	fake.upstream_ready++;
}

void upstream_fd_store_add(const struct upstream *u, const struct listener *ls, size_t n) {
}

void upstream_fd_store_update(const struct upstream *u, const struct listener *old, size_t n_old,
			      const struct listener *ls, size_t n) {
}

int sock_open_all(const struct config *c, const struct listener *held, size_t n_held, struct inherited_fd *inh,
		  size_t n_inh, struct listener **ret, char **ret_error) {
	struct listener *ls = calloc(c->n_listeners + 1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_listeners; i++) {
		ls[i].name = strdup(c->listeners[i].name);
		ls[i].address = c->listeners[i].address;
		ls[i].fd = -1;
	}
	*ret = ls;
	return 0;
}

void listeners_hand_over(struct listener *ls, size_t n, struct listener *old, size_t n_old) {
}

bool listeners_match_config(const struct listener *ls, size_t n, const struct config *c) {
	if (n != c->n_listeners)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!streq(ls[i].name, c->listeners[i].name))
			return false;
	return true;
}

void listeners_free(struct listener *ls, size_t n) {
	for (size_t i = 0; ls && i < n; i++)
		free(ls[i].name);
	free(ls);
}
