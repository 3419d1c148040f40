/* The state `baton upgrade` hands over (run-state.h): everything baton knows that the kernel does not keep for it
 * across an exec, as text. The first line names the format's version ("baton-state 1"); then one record a line, "KEY
 * VALUE..." (serialize.h); the config as loaded is a block of its own, in the YAML of `baton check`, which loads back
 * into the same config. The fds (the listeners, the notify and control sockets, control clients, pidfds, output
 * pipes, cgroups) stay open across the exec: the state names their numbers, and the fds it names are the ones kept.
 *
 * This file is the envelope: the version, the order of the records, baton's own (its binary, the options it was
 * given, the notify socket, the terminal) and the config block. Each module that owns state writes and reads its own
 * records beside its struct: the listeners (sockets.c), the state machine and baton's watchdog (supervisor-serialize.c,
 * upstream.c), the control socket and its clients (control.c), the cgroup subtree (cgroup.c), generations and
 * remnants (generation-serialize.c).
 *
 * Like systemd's serialization for daemon-reexec, and unlike a struct dumped as bytes, a record a binary does not
 * know is an error, never a guess; a newer format is a new version, and `baton upgrade` checks the version with the
 * new binary before it execs it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "generation-serialize.h"
#include "log.h"
#include "run-core.h"
#include "run-state.h"
#include "supervisor-serialize.h"
#include "util.h"
#include "version.h"

/* A stdio stream on a copy of fd (so that fclose() leaves fd open); NULL with errno set. */
static FILE *fdopen_dup(int fd, const char *mode) {
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return NULL;
	FILE *f = fdopen(dfd, mode);
	if (!f) {
		int e = errno;
		close(dfd);
		errno = e;
	}
	return f;
}

/* ---- writing ---- */

/* Who wrote the state and why, and how baton was started: what a reload reads again. */
static void write_head(const struct run *r, const struct control_client *upgrader, uint64_t started_usec,
		       struct ser_writer *w) {
	const struct supervisor_options *o = &r->sup.options;
	fprintf(w->f, "baton-state %u\n", baton_state_version);
	ser_put_string(w, "baton-version", baton_version);
	fprintf(w->f, "upgrades %u\n", r->sup.upgrades);
	fprintf(w->f, "log-level %d\n", log_max_level);
	fprintf(w->f, "upgrade %u %" PRIu64 "\n", upgrader ? upgrader->id : 0, started_usec);
	ser_put_string(w, "binary", r->binary);
	ser_put_string(w, "option.config-path", o->config_path);
	fprintf(w->f, "option.nofile %" PRIu64 " %" PRIu64 "\n", (uint64_t)o->nofile.rlim_cur,
		(uint64_t)o->nofile.rlim_max);
	ser_put_strv(w, "option.listen", o->listens);
	ser_put_strv(w, "option.set", o->sets);
	ser_put_strv(w, "option.command", o->command);
}

static void write_config(const struct config *c, const char *yaml, size_t yaml_len, struct ser_writer *w) {
	ser_put_string(w, "config.path", c->path);
	ser_put_strv(w, "config.set", c->sets);
	fprintf(w->f, "config %zu\n", yaml_len);
	fwrite(yaml, 1, yaml_len, w->f);
	fputc('\n', w->f);
}

static void write_records(const struct run *r, const struct control_client *upgrader, uint64_t started_usec,
			  const char *yaml, size_t yaml_len, struct ser_writer *w) {
	const struct supervisor *s = &r->sup;
	write_head(r, upgrader, started_usec, w);
	write_config(s->config, yaml, yaml_len, w);
	listeners_serialize(s->listeners, s->n_listeners, w);
	supervisor_serialize(s, w);
	fprintf(w->f, "terminal %d %d %d\n", s->terminal, (int)r->own_pgrp, (int)r->foreground);
	fprintf(w->f, "notify %d ", ser_fd(w, r->notify_fd));
	ser_put_escaped(w->f, r->notify_path, strlen(r->notify_path));
	fputc('\n', w->f);
	control_serialize(&r->control, w);
	cgroup_tree_serialize(&r->cgroups, w);
	/* Newest first, as the list is. */
	for (const struct generation *g = s->generations; g; g = g->next)
		generation_serialize(g, w);
	for (const struct remnant *rm = r->remnants; rm; rm = rm->next)
		remnant_serialize(rm, w);
	fputs("end\n", w->f);
}

int run_state_write(const struct run *r, const struct control_client *upgrader, uint64_t started_usec, int fd,
		    struct ser_fds *ret_fds) {
	_cleanup_free_ char *yaml = NULL;
	size_t yaml_len = 0;
	FILE *y = open_memstream(&yaml, &yaml_len);
	if (!y)
		return -ENOMEM;
	config_print(r->sup.config, y);
	if (fclose(y) != 0)
		return -ENOMEM;

	struct ser_writer w = {.f = fdopen_dup(fd, "w")};
	if (!w.f)
		return -errno;
	write_records(r, upgrader, started_usec, yaml, yaml_len, &w);
	int k = ferror(w.f) ? -EIO : w.oom ? -ENOMEM : 0;
	if (fclose(w.f) != 0 && k == 0)
		k = -errno;
	if (k >= 0 && ret_fds) {
		*ret_fds = w.fds;
		w.fds = (struct ser_fds){0};
	}
	free(w.fds.fds);
	return k;
}

/* ---- reading ---- */

struct state_reader {
	struct ser_reader rd;
	struct run *r;
	struct run_handover *h;
	char *config_path; /* what loads the config block */
	char **config_sets;
	unsigned current_id;
};

static int read_config(struct state_reader *sr) {
	struct ser_reader *rd = &sr->rd;
	uint64_t len;
	int k = ser_number(rd, &len);
	if (k < 0)
		return k;
	if (sr->r->sup.config)
		return ser_fail(rd, "a second config");
	if (len > 16 * 1024 * 1024)
		return ser_fail(rd, "config too large");
	_cleanup_free_ char *text = NULL, *error = NULL;
	unsigned line = rd->line;
	if ((k = ser_block(rd, len, "the config", &text)) < 0)
		return k;
	k = config_load_text(text, len, sr->config_path, sr->config_sets, &sr->r->sup.config, &error);
	if (k < 0) {
		/* The block's lines were counted already: the error names the record's own line. */
		rd->line = line;
		return ser_fail(rd, error ? error : "the config does not load");
	}
	return 0;
}

static int read_log_level(struct ser_reader *rd) {
	int level;
	int k = ser_int(rd, &level);
	if (k < 0)
		return k;
	if (level < LOG_ERR || level > LOG_DEBUG)
		return ser_fail(rd, "not a log level");
	if (rd->check_fds)
		/* --log-level of `baton run`: the binary that takes over logs alike */
		log_max_level = level;
	return 0;
}

/* One of the envelope's records: 1 when the record is not one. */
static int read_head_record(struct state_reader *sr) {
	struct ser_reader *rd = &sr->rd;
	struct run *r = sr->r;
	const char *key = rd->key;
	int k;
	if (streq(key, "baton-version"))
		return ser_string(rd, &r->previous_version, NULL);
	if (streq(key, "upgrades"))
		return ser_unsigned(rd, &r->sup.upgrades);
	if (streq(key, "log-level"))
		return read_log_level(rd);
	if (streq(key, "upgrade"))
		return (k = ser_unsigned(rd, &sr->h->upgrader)) < 0 ? k : ser_number(rd, &sr->h->started_usec);
	if (streq(key, "binary"))
		return ser_string(rd, &r->binary, NULL);
	if (streq(key, "option.config-path"))
		return ser_string(rd, &r->own_config_path, NULL);
	if (streq(key, "option.nofile")) {
		uint64_t cur, max;
		if ((k = ser_number(rd, &cur)) < 0 || (k = ser_number(rd, &max)) < 0)
			return k;
		r->sup.options.nofile = (struct rlimit){.rlim_cur = (rlim_t)cur, .rlim_max = (rlim_t)max};
		return 0;
	}
	if (streq(key, "option.listen"))
		return ser_strv_add(rd, &r->own_listens);
	if (streq(key, "option.set"))
		return ser_strv_add(rd, &r->own_sets);
	if (streq(key, "option.command"))
		return ser_strv_add(rd, &r->own_command);
	if (streq(key, "config.path"))
		return ser_string(rd, &sr->config_path, NULL);
	if (streq(key, "config.set"))
		return ser_strv_add(rd, &sr->config_sets);
	if (streq(key, "config"))
		return read_config(sr);
	return 1;
}

static int read_terminal(struct ser_reader *rd, struct run *r) {
	int own, fg, k;
	if ((k = ser_bool(rd, &r->sup.terminal)) < 0 || (k = ser_int(rd, &own)) < 0 || (k = ser_int(rd, &fg)) < 0)
		return k;
	r->own_pgrp = own;
	r->foreground = fg;
	return 0;
}

/* A record that belongs to an owner's block, met outside it. */
static const char *orphan(const char *key) {
	if (strncmp(key, "gen.", 4) == 0)
		return "a generation's record before any generation";
	if (streq(key, "remnant.adopted"))
		return "an adopted process without its remnant";
	if (streq(key, "client") || streq(key, "client.argument"))
		return "a control client without the control socket";
	if (strncmp(key, "cgroups.", 8) == 0)
		return "a cgroup record without the cgroup subtree";
	return "unknown record";
}

/* The first record of an owner's block: the owner reads on through its records. */
static int read_owner_record(struct state_reader *sr) {
	struct ser_reader *rd = &sr->rd;
	struct run *r = sr->r;
	struct supervisor *s = &r->sup;
	const char *key = rd->key;
	if (streq(key, "listener")) {
		if (s->listeners)
			return ser_fail(rd, "the listeners are not in one block");
		return listeners_deserialize(rd, s->config, &s->listeners, &s->n_listeners);
	}
	if (streq(key, "terminal"))
		return read_terminal(rd, r);
	if (streq(key, "notify")) {
		int k = ser_take_fd(rd, &r->notify_fd, false);
		return k < 0 ? k : ser_string(rd, &r->notify_path, NULL);
	}
	if (streq(key, "control"))
		return r->control.fd >= 0 ? ser_fail(rd, "a second control socket")
					  : control_deserialize(rd, &r->control);
	if (streq(key, "cgroups"))
		return r->cgroups.fd >= 0 ? ser_fail(rd, "a second cgroup subtree")
					  : cgroup_tree_deserialize(rd, &r->cgroups);
	if (streq(key, "generation"))
		return generation_deserialize(rd, &s->generations);
	if (streq(key, "remnant"))
		return remnant_deserialize(rd, &r->remnants);
	int k = supervisor_deserialize(rd, s, &sr->current_id);
	return k == 1 ? ser_fail(rd, orphan(key)) : k;
}

/* The records up to "end". */
static int read_records(struct state_reader *sr) {
	struct ser_reader *rd = &sr->rd;
	while (ser_next(rd) > 0) {
		if (streq(rd->key, "end"))
			return 0;
		int k = read_head_record(sr);
		if (k == 1)
			k = read_owner_record(sr);
		if (k < 0)
			return k;
	}
	return ser_fail_whole(rd, ferror(rd->f) ? "cannot read the state" : "the state is cut short (no \"end\" line)");
}

/* What the records say must fit together: the listeners are the config's, the current generation is one of them,
 * nothing was starting (an upgrade waits for that), and what has a cgroup has baton's subtree. */
static int check_whole(struct state_reader *sr) {
	struct ser_reader *rd = &sr->rd;
	struct run *r = sr->r;
	int k = supervisor_deserialized_check(rd, &r->sup, sr->current_id);
	if (k < 0)
		return k;
	if (!r->notify_path)
		return ser_fail_whole(rd, "no notify socket");
	bool cgroups = r->cgroups.fd >= 0;
	for (const struct generation *g = r->sup.generations; g; g = g->next)
		if ((g->in_cgroup || g->probe_cgroup) && !cgroups)
			return ser_fail_whole(rd, "a generation has a cgroup, baton none");
	for (const struct remnant *rm = r->remnants; rm; rm = rm->next)
		if (rm->in_cgroup && !cgroups)
			return ser_fail_whole(rd, "a remnant has a cgroup, baton none");
	return 0;
}

static int read_version(struct ser_reader *rd) {
	unsigned version = 0;
	if (ser_next(rd) <= 0 || !streq(rd->key, "baton-state") || ser_unsigned(rd, &version) < 0) {
		free(rd->error);
		rd->error = strdup("not a baton state (no \"baton-state\" line)");
		return -EBADMSG;
	}
	if (version != baton_state_version) {
		rd->error = strdup_printf("state version %u, and this baton (%s) reads version %u", version,
					  baton_version, baton_state_version);
		return -EPROTO;
	}
	return 0;
}

int run_state_read(int fd, bool check_fds, struct run *r, struct run_handover *ret, char **ret_error) {
	FILE *f = fdopen_dup(fd, "r");
	if (!f)
		return fail_error(ret_error, -errno, "cannot read the state: %s", strerror(errno));
	(void)lseek(fileno(f), 0, SEEK_SET);

	*r = (struct run)RUN_INIT;
	*ret = (struct run_handover){0};
	struct state_reader sr = {.rd = {.f = f, .check_fds = check_fds}, .r = r, .h = ret};
	int k = read_version(&sr.rd);
	if (k >= 0)
		k = read_records(&sr);
	if (k >= 0)
		k = check_whole(&sr);
	if (k >= 0) {
		struct supervisor_options *o = &r->sup.options;
		o->config_path = r->own_config_path;
		o->listens = r->own_listens;
		o->sets = r->own_sets;
		o->command = r->own_command;
		ret->fds = sr.rd.fds;
		sr.rd.fds = (struct ser_fds){0};
	} else {
		*ret_error = TAKE_PTR(sr.rd.error);
		if (!*ret_error)
			*ret_error = strdup_printf("the state is not valid (%s)", strerror(-k));
		run_state_discard(r);
	}
	free(sr.rd.fds.fds);
	free(sr.rd.error);
	free(sr.rd.buf);
	free(sr.config_path);
	strv_free(sr.config_sets);
	fclose(f);
	return k;
}

void run_state_discard(struct run *r) {
	supervisor_forget(&r->sup);
	while (r->remnants) {
		struct remnant *rm = r->remnants;
		r->remnants = rm->next;
		remnant_forget(rm);
	}
	control_forget(&r->control);
	cgroup_tree_forget(&r->cgroups);
	free(r->notify_path);
	run_free_strings(r);
	*r = (struct run)RUN_INIT;
}
