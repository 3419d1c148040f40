/* Generations and remnants across `baton upgrade` (generation.h): their records, written and read beside the structs
 * they carry. A generation is "generation ID" followed by its "gen.*" records; a remnant "remnant ..." followed by
 * its "remnant.adopted" ones and its "remnant.keeper"; a generation's keeper is its "gen.keeper". What is not written
 * is rebuilt by the binary that takes over: the watches (generation_watch), the cgroup tree pointer, the figures of
 * `baton status`; the config a generation was started with is only needed while it starts, and nothing is starting when
 * the state is written. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "generation-serialize.h"
#include "util.h"

static void put_pids(struct ser_writer *w, const char *key, const pid_t *pids, size_t n) {
	for (size_t i = 0; i < n; i++)
		fprintf(w->f, "%s %d\n", key, (int)pids[i]);
}

static void put_output(struct ser_writer *w, unsigned stream, const struct output *o) {
	/* What it read and could not pass on yet goes with it; the line being matched does not matter any more
	 * (nothing is starting). */
	fprintf(w->f, "gen.output %u %d %d ", stream, ser_fd(w, o->fd), o->target);
	ser_put_escaped(w->f, o->pending + o->pending_off, o->pending_len);
	fputc('\n', w->f);
}

void generation_serialize(const struct generation *g, struct ser_writer *w) {
	FILE *f = w->f;
	fprintf(f, "generation %u\n", g->id);
	fprintf(f, "gen.process %d %d %d %d\n", (int)g->pid, ser_fd(w, g->pidfd), (int)g->pgid, g->launcher_status);
	fprintf(f, "gen.state %s\n", gen_state_to_string(g->state));
	fprintf(f, "gen.times %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", g->started_usec, g->ready_usec, g->deadline_usec);
	fprintf(f, "gen.watchdog %" PRIu64 " %" PRIu64 "\n", g->watchdog_usec, g->watchdog_deadline_usec);
	fprintf(f, "gen.readiness %s %" PRIu64 " %d\n", readiness_type_to_string(g->readiness), g->check_usec,
		(int)g->probe_pid);
	fprintf(f, "gen.cgroup %d %d %d\n", g->in_cgroup, g->probe_cgroup, ser_fd(w, g->cgroup_events_fd));
	put_pids(w, "gen.adopted", g->adopted, g->n_adopted);
	/* Its keeper is baton's child and survives the exec as the programs do; its socket is carried. */
	if (g->keeper > 0)
		fprintf(f, "gen.keeper %d %d\n", (int)g->keeper, ser_fd(w, g->keeper_fd));
	for (unsigned i = 0; i < 2; i++)
		if (g->outputs[i])
			put_output(w, i, g->outputs[i]);
	ser_put_string(w, "gen.status", g->status);
}

static int take_pid(struct ser_reader *rd, pid_t **pids, size_t *n) {
	int pid;
	int k = ser_int(rd, &pid);
	if (k < 0)
		return k;
	pid_t *a = realloc(*pids, (*n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*pids = a;
	a[(*n)++] = pid;
	return 0;
}

static int take_output(struct ser_reader *rd, struct generation *g) {
	unsigned stream;
	int fd, target, k;
	if ((k = ser_unsigned(rd, &stream)) < 0 || (k = ser_take_fd(rd, &fd, false)) < 0 ||
	    (k = ser_int(rd, &target)) < 0)
		return k;
	if (stream > 1 || g->outputs[stream] || (target != 1 && target != 2))
		return ser_fail(rd, "not an output pipe");
	_cleanup_free_ char *pending = NULL;
	size_t n;
	if ((k = ser_string(rd, &pending, &n)) < 0)
		return k;
	if (n > OUTPUT_PENDING_MAX)
		return ser_fail(rd, "too much pending output");
	struct output *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*o = (struct output){.fd = fd, .target = target, .out_fd = -1, .pending_len = n};
	memcpy(o->pending, pending, n);
	g->outputs[stream] = o;
	return 0;
}

static const char *gen_state_name(int i) {
	return gen_state_to_string((enum gen_state)i);
}
static const char *readiness_name(int i) {
	return readiness_type_to_string((enum readiness_type)i);
}

/* One "gen.*" record of g. */
static int generation_record(struct ser_reader *rd, struct generation *g) {
	const char *key = rd->key + strlen("gen.");
	int k, a, b;
	if (streq(key, "process")) {
		if ((k = ser_int(rd, &a)) < 0 || (k = ser_take_fd(rd, &g->pidfd, true)) < 0 ||
		    (k = ser_int(rd, &b)) < 0 || (k = ser_int(rd, &g->launcher_status)) < 0)
			return k;
		g->pid = a;
		g->pgid = b;
	} else if (streq(key, "state")) {
		if ((k = ser_name(rd, gen_state_name, _GEN_STATE_MAX, &a)) < 0)
			return k;
		g->state = (enum gen_state)a;
	} else if (streq(key, "times")) {
		if ((k = ser_number(rd, &g->started_usec)) < 0 || (k = ser_number(rd, &g->ready_usec)) < 0 ||
		    (k = ser_number(rd, &g->deadline_usec)) < 0)
			return k;
	} else if (streq(key, "watchdog")) {
		if ((k = ser_number(rd, &g->watchdog_usec)) < 0 || (k = ser_number(rd, &g->watchdog_deadline_usec)) < 0)
			return k;
	} else if (streq(key, "readiness")) {
		if ((k = ser_name(rd, readiness_name, _READINESS_MAX, &a)) < 0 ||
		    (k = ser_number(rd, &g->check_usec)) < 0 || (k = ser_int(rd, &b)) < 0)
			return k;
		g->readiness = (enum readiness_type)a;
		g->probe_pid = b;
	} else if (streq(key, "cgroup")) {
		if ((k = ser_bool(rd, &g->in_cgroup)) < 0 || (k = ser_bool(rd, &g->probe_cgroup)) < 0 ||
		    (k = ser_take_fd(rd, &g->cgroup_events_fd, true)) < 0)
			return k;
	} else if (streq(key, "keeper")) {
		if ((k = ser_int(rd, &a)) < 0 || (k = ser_take_fd(rd, &g->keeper_fd, true)) < 0)
			return k;
		if (a <= 1)
			return ser_fail(rd, "not a keeper's pid");
		g->keeper = a;
	} else if (streq(key, "adopted"))
		return take_pid(rd, &g->adopted, &g->n_adopted);
	else if (streq(key, "output"))
		return take_output(rd, g);
	else if (streq(key, "status"))
		return ser_string(rd, &g->status, NULL);
	else
		return ser_fail(rd, "unknown record");
	return 0;
}

int generation_deserialize(struct ser_reader *rd, struct generation **list) {
	struct generation *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	*g = (struct generation){.pidfd = -1,
				 .cgroup_events_fd = -1,
				 .keeper_fd = -1,
				 .processes = -1,
				 .memory_bytes = UINT64_MAX,
				 .cpu_usec = UINT64_MAX};
	/* At the end: the list is written newest first, as it is kept. */
	while (*list)
		list = &(*list)->next;
	*list = g;
	int k = ser_unsigned(rd, &g->id);
	while (k >= 0 && ser_next(rd) > 0) {
		if (!ser_key_has_prefix(rd, "gen.")) {
			ser_unread(rd);
			break;
		}
		k = generation_record(rd, g);
	}
	return k;
}

void generation_forget(struct generation *g) {
	free(g->status);
	free(g->adopted);
	free(g->outputs[0]);
	free(g->outputs[1]);
	free(g);
}

void remnant_serialize(const struct remnant *rm, struct ser_writer *w) {
	fprintf(w->f, "remnant %u %d %d %d %" PRIu64 "\n", rm->id, (int)rm->pgid, rm->in_cgroup,
		ser_fd(w, rm->cgroup_events_fd), rm->kill_usec);
	put_pids(w, "remnant.adopted", rm->adopted, rm->n_adopted);
	if (rm->kept && rm->keeper > 0)
		fprintf(w->f, "remnant.keeper %d %d\n", (int)rm->keeper, ser_fd(w, rm->keeper_fd));
}

int remnant_deserialize(struct ser_reader *rd, struct remnant **list) {
	struct remnant *rm = calloc(1, sizeof(*rm));
	if (!rm)
		return -ENOMEM;
	rm->cgroup_events_fd = rm->keeper_fd = -1;
	while (*list)
		list = &(*list)->next;
	*list = rm;
	int pgid, k;
	if ((k = ser_unsigned(rd, &rm->id)) < 0 || (k = ser_int(rd, &pgid)) < 0 ||
	    (k = ser_bool(rd, &rm->in_cgroup)) < 0 || (k = ser_take_fd(rd, &rm->cgroup_events_fd, true)) < 0 ||
	    (k = ser_number(rd, &rm->kill_usec)) < 0)
		return k;
	rm->pgid = pgid;
	while (ser_next(rd) > 0) {
		if (streq(rd->key, "remnant.keeper")) {
			int pid;
			if ((k = ser_int(rd, &pid)) < 0 || (k = ser_take_fd(rd, &rm->keeper_fd, true)) < 0)
				return k;
			if (pid <= 1)
				return ser_fail(rd, "not a keeper's pid");
			rm->kept = true;
			rm->keeper = pid;
			continue;
		}
		if (!streq(rd->key, "remnant.adopted")) {
			ser_unread(rd);
			break;
		}
		if ((k = take_pid(rd, &rm->adopted, &rm->n_adopted)) < 0)
			return k;
	}
	return 0;
}

void remnant_forget(struct remnant *rm) {
	free(rm->adopted);
	free(rm);
}
