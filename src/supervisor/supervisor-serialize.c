/* The state machine's own state across `baton upgrade` (supervisor.h): its state, counters, last reload, backoff and
 * baton's upstream watchdog, written and read beside the struct. Its generations and listeners are written by their
 * own modules (generation-serialize.c, sockets.c); run-state.c puts the records in order. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "generation-serialize.h"
#include "supervisor-serialize.h"
#include "util.h"

void supervisor_serialize(const struct supervisor *s, struct ser_writer *w) {
	FILE *f = w->f;
	fprintf(f, "state %s\n", sup_state_to_string(s->state));
	fprintf(f, "current %u\n", s->current ? s->current->id : 0);
	fprintf(f, "counters %u %u %u %d\n", s->last_generation, s->failures, s->restarts, s->ever_ready);
	fprintf(f, "reloads %" PRIu64 " %d\n", s->last_reload_seq, s->reload_queued);
	if (s->last_reload.seq) {
		const struct reload_result *l = &s->last_reload;
		fprintf(f, "last-reload %" PRIu64 " %d %" PRIu64 " %" PRIu64 "\n", l->seq, l->ok, l->duration_usec,
			l->ready_usec);
		ser_put_string(w, "last-reload.message", l->message);
	}
	fprintf(f, "restart-at %" PRIu64 "\n", s->restart_usec);
	upstream_serialize(&s->upstream, w);
}

static const char *sup_state_name(int i) {
	return sup_state_to_string((enum sup_state)i);
}

/* One record of s; 1 when the record is not one of s's. */
static int supervisor_record(struct ser_reader *rd, struct supervisor *s, unsigned *current_id) {
	const char *key = rd->key;
	struct reload_result *l = &s->last_reload;
	int k = 0, st;
	if (streq(key, "state")) {
		if ((k = ser_name(rd, sup_state_name, _SUP_STATE_MAX, &st)) >= 0)
			s->state = (enum sup_state)st;
	} else if (streq(key, "current"))
		k = ser_unsigned(rd, current_id);
	else if (streq(key, "counters")) {
		if ((k = ser_unsigned(rd, &s->last_generation)) >= 0 && (k = ser_unsigned(rd, &s->failures)) >= 0 &&
		    (k = ser_unsigned(rd, &s->restarts)) >= 0)
			k = ser_bool(rd, &s->ever_ready);
	} else if (streq(key, "reloads")) {
		if ((k = ser_number(rd, &s->last_reload_seq)) >= 0)
			k = ser_bool(rd, &s->reload_queued);
	} else if (streq(key, "last-reload")) {
		if ((k = ser_number(rd, &l->seq)) >= 0 && (k = ser_bool(rd, &l->ok)) >= 0 &&
		    (k = ser_number(rd, &l->duration_usec)) >= 0)
			k = ser_number(rd, &l->ready_usec);
	} else if (streq(key, "last-reload.message"))
		k = ser_string(rd, &l->message, NULL);
	else if (streq(key, "restart-at"))
		k = ser_number(rd, &s->restart_usec);
	else if (streq(key, "upstream"))
		k = upstream_deserialize(rd, &s->upstream);
	else
		return 1;
	return k;
}

int supervisor_deserialize(struct ser_reader *rd, struct supervisor *s, unsigned *ret_current_id) {
	int k = supervisor_record(rd, s, ret_current_id);
	if (k != 0)
		return k; /* 1: the current record is not s's */
	while (ser_next(rd) > 0) {
		k = supervisor_record(rd, s, ret_current_id);
		if (k == 1) {
			ser_unread(rd);
			return 0;
		}
		if (k < 0)
			return k;
	}
	return 0;
}

int supervisor_deserialized_check(struct ser_reader *rd, struct supervisor *s, unsigned current_id) {
	if (!s->config)
		return ser_fail_whole(rd, "no config");
	if (!listeners_match_config(s->listeners, s->n_listeners, s->config))
		return ser_fail_whole(rd, "the listeners are not the config's");
	if (s->state != SUP_RUNNING && s->state != SUP_BACKOFF)
		return ser_fail_whole(rd, "baton was neither running nor waiting to restart");
	for (struct generation *g = s->generations; g; g = g->next) {
		if (g->state == GEN_STARTING)
			return ser_fail_whole(rd, "a generation was starting");
		if (g->id == current_id)
			s->current = g;
	}
	if (!!s->current != !!current_id || (s->current && s->state != SUP_RUNNING))
		return ser_fail_whole(rd, "the current generation is not one of them");
	return 0;
}

void supervisor_forget(struct supervisor *s) {
	while (s->generations) {
		struct generation *g = s->generations;
		s->generations = g->next;
		generation_forget(g);
	}
	listeners_forget(s->listeners, s->n_listeners);
	s->listeners = NULL;
	s->n_listeners = 0;
	free(s->last_reload.message);
	s->last_reload.message = NULL;
	config_free(s->config);
	s->config = NULL;
	s->current = NULL;
}
