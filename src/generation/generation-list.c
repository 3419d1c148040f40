/* Generations as a list: names of their states and lookups (generation-list.h). Pure: no process is touched, so the
 * state machine's unit test links these with its fake mechanisms. */
#include "generation-list.h"

#include <stddef.h>

static const char gen_state_names[_GEN_STATE_MAX][sizeof("draining")] = {
	[GEN_STARTING] = "starting", [GEN_READY] = "ready",   [GEN_DRAINING] = "draining",
	[GEN_STOPPING] = "stopping", [GEN_KILLED] = "killed",
};

const char *gen_state_to_string(enum gen_state st) {
	return st < _GEN_STATE_MAX ? gen_state_names[st] : "?";
}

struct generation *generation_by_pid(struct generation *list, pid_t pid) {
	for (struct generation *g = list; g; g = g->next)
		if (g->pid == pid)
			return g;
	return NULL;
}

struct generation *generation_by_id(struct generation *list, unsigned id) {
	for (struct generation *g = list; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

size_t generations_alive(const struct generation *list) {
	size_t n = 0;
	for (const struct generation *g = list; g; g = g->next)
		if (g->state != GEN_KILLED)
			n++;
	return n;
}

void generation_unlink(struct generation **list, struct generation *g) {
	for (struct generation **p = list; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			g->next = NULL;
			return;
		}
}
