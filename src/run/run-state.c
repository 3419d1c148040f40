/* The state `baton upgrade` hands over (run-internal.h): everything baton knows that the kernel does not keep for it
 * across an exec, as text. The first line names the format's version ("baton-state 1"); then one record a line, "KEY
 * VALUE...", numbers in decimal, a string last on its line with '\\', newlines and control bytes escaped; the config
 * as loaded is a block of its own, in the YAML of `baton check`, which loads back into the same config. The fds (the
 * listeners, the notify and control sockets, control clients, pidfds, output pipes, cgroups) stay open across the
 * exec: the state names their numbers.
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

#include "log.h"
#include "output.h"
#include "run-internal.h"
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

static void put_escaped(FILE *f, const char *s, size_t n) {
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

/* "KEY VALUE": a string, escaped; nothing for NULL. */
static void put_string(FILE *f, const char *key, const char *s) {
	if (!s)
		return;
	fprintf(f, "%s ", key);
	put_escaped(f, s, strlen(s));
	fputc('\n', f);
}

static void put_strv(FILE *f, const char *key, char *const *v) {
	for (size_t i = 0; v && v[i]; i++)
		put_string(f, key, v[i]);
}

static void write_generation(FILE *f, const struct generation *g) {
	fprintf(f, "generation %u\n", g->id);
	fprintf(f, "gen.process %d %d %d %d\n", (int)g->pid, g->pidfd, (int)g->pgid, g->launcher_status);
	fprintf(f, "gen.state %s\n", gen_state_to_string(g->state));
	fprintf(f, "gen.times %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", g->started_usec, g->ready_usec, g->deadline_usec);
	fprintf(f, "gen.watchdog %" PRIu64 " %" PRIu64 "\n", g->watchdog_usec, g->watchdog_deadline_usec);
	fprintf(f, "gen.readiness %s %" PRIu64 " %d\n", readiness_type_to_string(g->readiness), g->check_usec,
		(int)g->probe_pid);
	fprintf(f, "gen.cgroup %d %d %d\n", g->in_cgroup, g->probe_cgroup, g->cgroup_events_fd);
	for (size_t i = 0; i < g->n_adopted; i++)
		fprintf(f, "gen.adopted %d\n", (int)g->adopted[i]);
	for (unsigned i = 0; i < 2; i++) {
		const struct output *o = g->outputs[i];
		if (!o)
			continue;
		/* What it read and could not pass on yet goes with it; the line being matched does not matter any more
		 * (nothing is starting). */
		fprintf(f, "gen.output %u %d %d ", i, o->fd, o->target);
		put_escaped(f, o->pending + o->pending_off, o->pending_len);
		fputc('\n', f);
	}
	put_string(f, "gen.status", g->status);
}

/* The keepers (keeper.h), a record each after every generation and remnant: "keeper KIND ID KEEPER_PID FD", KIND
 * "gen" or "remnant"; the keepers are baton's children and survive its exec as the programs do. */
static void write_keepers(FILE *f, const struct run *r) {
	for (const struct generation *g = r->sup.generations; g; g = g->next)
		if (g->keeper > 0)
			fprintf(f, "keeper gen %u %d %d\n", g->id, (int)g->keeper, g->keeper_fd);
	for (const struct remnant *rm = r->remnants; rm; rm = rm->next)
		if (rm->kept && rm->keeper > 0)
			fprintf(f, "keeper remnant %u %d %d\n", rm->id, (int)rm->keeper, rm->keeper_fd);
}

int run_state_write(const struct run *r, const struct control_client *upgrader, uint64_t started_usec, int fd) {
	const struct supervisor *s = &r->sup;
	_cleanup_free_ char *yaml = NULL;
	size_t yaml_len = 0;
	FILE *y = open_memstream(&yaml, &yaml_len);
	if (!y)
		return -ENOMEM;
	config_print(s->config, y);
	if (fclose(y) != 0)
		return -ENOMEM;

	FILE *f = fdopen_dup(fd, "w");
	if (!f)
		return -errno;

	fprintf(f, "baton-state %u\n", baton_state_version);
	put_string(f, "baton-version", baton_version);
	fprintf(f, "upgrades %u\n", s->upgrades);
	fprintf(f, "log-level %d\n", log_max_level);
	fprintf(f, "upgrade %u %" PRIu64 "\n", upgrader ? upgrader->id : 0, started_usec);
	put_string(f, "binary", r->binary);

	put_string(f, "option.config-path", s->options.config_path);
	fprintf(f, "option.nofile %" PRIu64 " %" PRIu64 "\n", (uint64_t)s->options.nofile.rlim_cur,
		(uint64_t)s->options.nofile.rlim_max);
	put_strv(f, "option.listen", s->options.listens);
	put_strv(f, "option.set", s->options.sets);
	put_strv(f, "option.command", s->options.command);
	put_string(f, "config.path", s->config->path);
	put_strv(f, "config.set", s->config->sets);
	fprintf(f, "config %zu\n", yaml_len);
	fwrite(yaml, 1, yaml_len, f);
	fputc('\n', f);

	for (size_t i = 0; i < s->n_listeners; i++) {
		const struct listener *l = &s->listeners[i];
		fprintf(f, "listener %d %d %d ", l->fd, l->inherited, l->created_path);
		put_escaped(f, l->name, strlen(l->name));
		fputc('\n', f);
	}

	fprintf(f, "state %s\n", sup_state_to_string(s->state));
	fprintf(f, "current %u\n", s->current ? s->current->id : 0);
	fprintf(f, "counters %u %u %u %d\n", s->last_generation, s->failures, s->restarts, s->ever_ready);
	fprintf(f, "reloads %" PRIu64 " %d\n", s->last_reload_seq, s->reload_queued);
	if (s->last_reload.seq) {
		fprintf(f, "last-reload %" PRIu64 " %d %" PRIu64 " %" PRIu64 "\n", s->last_reload.seq,
			s->last_reload.ok, s->last_reload.duration_usec, s->last_reload.ready_usec);
		put_string(f, "last-reload.message", s->last_reload.message);
	}
	fprintf(f, "restart-at %" PRIu64 "\n", s->restart_usec);
	fprintf(f, "upstream %d %" PRIu64 " %" PRIu64 "\n", s->upstream.fd_store, s->upstream.watchdog_interval_usec,
		s->upstream.watchdog_next_usec);
	fprintf(f, "terminal %d %d %d\n", s->terminal, (int)r->own_pgrp, (int)r->foreground);

	fprintf(f, "notify %d ", r->notify_fd);
	put_escaped(f, r->notify_path, strlen(r->notify_path));
	fputc('\n', f);

	if (r->control.fd >= 0) {
		fprintf(f, "control %d %" PRIu64 " %" PRIu64 " %u ", r->control.fd, (uint64_t)r->control.dev,
			(uint64_t)r->control.ino, r->control.last_id);
		put_escaped(f, r->control.path, strlen(r->control.path));
		fputc('\n', f);
		for (const struct control_client *cl = r->control.clients; cl; cl = cl->next) {
			fprintf(f, "client %u %d %" PRIu64 " %d %d %d %" PRIu64 " %" PRIu64 " ", cl->id, cl->fd,
				cl->deadline_usec, cl->has_request, cl->eof, (int)cl->request, cl->waiting_for,
				cl->request_usec);
			put_escaped(f, cl->buf, cl->has_request ? 0 : cl->len);
			fputc('\n', f);
			put_string(f, "client.argument", cl->argument);
		}
	}

	if (r->cgroups.fd >= 0) {
		fprintf(f, "cgroups %d %d\n", r->cgroups.fd, r->cgroups.created);
		put_string(f, "cgroups.path", r->cgroups.path);
		put_string(f, "cgroups.dir", r->cgroups.dir);
		put_string(f, "cgroups.origin", r->cgroups.origin);
		put_string(f, "cgroups.controllers", r->cgroups.controllers);
	}

	/* Newest first, as the list is. */
	for (const struct generation *g = s->generations; g; g = g->next)
		write_generation(f, g);
	for (const struct remnant *rm = r->remnants; rm; rm = rm->next) {
		fprintf(f, "remnant %u %d %d %d %" PRIu64 "\n", rm->id, (int)rm->pgid, rm->in_cgroup,
			rm->cgroup_events_fd, rm->kill_usec);
		for (size_t i = 0; i < rm->n_adopted; i++)
			fprintf(f, "remnant.adopted %d\n", (int)rm->adopted[i]);
	}
	write_keepers(f, r);
	fputs("end\n", f);

	int k = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && k == 0)
		k = -errno;
	return k;
}

/* ---- reading ---- */

struct reader {
	FILE *f;
	unsigned line;
	char *buf;
	size_t size;
	char *key, *rest; /* the current record */
	bool check_fds;
	char *error;
	struct run *r;
	struct generation *gen; /* the generation being read; records "gen.*" belong to it */
	struct generation **gen_tail;
	struct remnant *remnant;
	struct remnant **remnant_tail;
	struct control_client *client;
	unsigned current_id;
};

static int fail_at(struct reader *rd, const char *why) {
	if (!rd->error)
		rd->error = rd->key ? strdup_printf("line %u (%s): %s", rd->line, rd->key, why) : strdup(why);
	return -EBADMSG;
}

/* Reads the next record into rd->key and rd->rest. Returns 1, or 0 at the end of the file. */
static int next_record(struct reader *rd) {
	ssize_t n = getline(&rd->buf, &rd->size, rd->f);
	if (n < 0)
		return 0;
	rd->line++;
	if (n > 0 && rd->buf[n - 1] == '\n')
		rd->buf[--n] = '\0';
	rd->key = rd->buf;
	char *sp = strchr(rd->buf, ' ');
	if (sp) {
		*sp = '\0';
		rd->rest = sp + 1;
	} else
		rd->rest = rd->buf + n;
	return 1;
}

/* The next number of the record, into *ret (an int64_t read as such; callers narrow it). */
static int take_number(struct reader *rd, uint64_t *ret) {
	char *p = rd->rest, *end;
	if (*p == '\0')
		return fail_at(rd, "a number is missing");
	errno = 0;
	if (*p == '-') {
		long long v = strtoll(p, &end, 10);
		*ret = (uint64_t)v;
	} else
		*ret = strtoull(p, &end, 10);
	if (errno != 0 || end == p || (*end != ' ' && *end != '\0'))
		return fail_at(rd, "not a number");
	rd->rest = *end ? end + 1 : end;
	return 0;
}

static int take_int(struct reader *rd, int *ret) {
	uint64_t v;
	int k = take_number(rd, &v);
	if (k < 0)
		return k;
	int64_t s = (int64_t)v;
	if (s < INT32_MIN || s > INT32_MAX)
		return fail_at(rd, "number out of range");
	*ret = (int)s;
	return 0;
}

static int take_unsigned(struct reader *rd, unsigned *ret) {
	uint64_t v;
	int k = take_number(rd, &v);
	if (k < 0)
		return k;
	if (v > UINT32_MAX)
		return fail_at(rd, "number out of range");
	*ret = (unsigned)v;
	return 0;
}

static int take_bool(struct reader *rd, bool *ret) {
	uint64_t v;
	int k = take_number(rd, &v);
	if (k < 0)
		return k;
	if (v > 1)
		return fail_at(rd, "expected 0 or 1");
	*ret = v == 1;
	return 0;
}

/* An fd of the state: open in this process (when checked), above 2. */
static int take_fd(struct reader *rd, int *ret, bool optional) {
	int fd;
	int k = take_int(rd, &fd);
	if (k < 0)
		return k;
	if (fd < 0 && optional) {
		*ret = -1;
		return 0;
	}
	if (fd < 3)
		return fail_at(rd, "not a file descriptor baton holds");
	if (rd->check_fds && fcntl(fd, F_GETFD) < 0)
		return fail_at(rd, "the file descriptor is not open");
	*ret = fd;
	return 0;
}

/* The rest of the record, unescaped: a malloc'd string (*ret_len bytes, NUL-terminated). */
static int take_string(struct reader *rd, char **ret, size_t *ret_len) {
	const char *p = rd->rest;
	char *out = malloc(strlen(p) + 1), *o = out;
	if (!out)
		return -ENOMEM;
	while (*p) {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		p++;
		if (*p == '\\' || *p == 'n') {
			*o++ = *p == 'n' ? '\n' : '\\';
			p++;
		} else if (*p == 'x' && p[1] && p[2]) {
			char hex[3] = {p[1], p[2], 0}, *end;
			unsigned long v = strtoul(hex, &end, 16);
			if (*end) {
				free(out);
				return fail_at(rd, "bad escape");
			}
			*o++ = (char)v;
			p += 3;
		} else {
			free(out);
			return fail_at(rd, "bad escape");
		}
	}
	*o = '\0';
	if (ret_len)
		*ret_len = (size_t)(o - out);
	*ret = out;
	rd->rest = rd->buf + strlen(rd->buf); /* consumed */
	return 0;
}

static int take_strv(struct reader *rd, char ***v) {
	_cleanup_free_ char *s = NULL;
	int k = take_string(rd, &s, NULL);
	if (k < 0)
		return k;
	return strv_extend(v, s);
}

static int lookup(struct reader *rd, const char *word, const char *(*name)(int), int max, int *ret) {
	for (int i = 0; i < max; i++)
		if (name(i) && streq(word, name(i))) {
			*ret = i;
			return 0;
		}
	return fail_at(rd, "unknown name");
}

static const char *sup_state_name(int i) {
	return sup_state_to_string((enum sup_state)i);
}
static const char *gen_state_name(int i) {
	return gen_state_to_string((enum gen_state)i);
}
static const char *readiness_name(int i) {
	return readiness_type_to_string((enum readiness_type)i);
}

/* The word that starts the rest of the record (a name), NUL-terminated in place. */
static char *take_word(struct reader *rd) {
	char *w = rd->rest, *sp = strchr(w, ' ');
	if (sp) {
		*sp = '\0';
		rd->rest = sp + 1;
	} else
		rd->rest = w + strlen(w);
	return w;
}

static int read_config(struct reader *rd, char *path, char **sets) {
	uint64_t len;
	int k = take_number(rd, &len);
	if (k < 0)
		return k;
	if (len > 16 * 1024 * 1024)
		return fail_at(rd, "config too large");
	_cleanup_free_ char *text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	if (fread(text, 1, len, rd->f) != len || fgetc(rd->f) != '\n')
		return fail_at(rd, "the config is cut short");
	text[len] = '\0';
	_cleanup_free_ char *error = NULL;
	k = config_load_text(text, len, path, sets, &rd->r->sup.config, &error);
	if (k < 0)
		return fail_at(rd, error ? error : "the config does not load");
	/* The lines of the block count for the records after it. */
	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n')
			rd->line++;
	rd->line++;
	return 0;
}

/* A record of write_keepers(): its generation or remnant came before it. */
static int read_keeper(struct reader *rd) {
	const char *kind = take_word(rd);
	unsigned id;
	int pid, fd, k;
	if ((k = take_unsigned(rd, &id)) < 0 || (k = take_int(rd, &pid)) < 0 || (k = take_fd(rd, &fd, true)) < 0)
		return k;
	if (pid <= 1)
		return fail_at(rd, "not a keeper's pid");
	if (kind && streq(kind, "gen")) {
		for (struct generation *g = rd->r->sup.generations; g; g = g->next)
			if (g->id == id) {
				g->keeper = pid;
				g->keeper_fd = fd;
				return 0;
			}
	} else if (kind && streq(kind, "remnant")) {
		for (struct remnant *rm = rd->r->remnants; rm; rm = rm->next)
			if (rm->id == id) {
				rm->kept = true;
				rm->keeper = pid;
				rm->keeper_fd = fd;
				return 0;
			}
	} else
		return fail_at(rd, "expected gen or remnant");
	return fail_at(rd, "a keeper of no generation or remnant");
}

static int read_generation_record(struct reader *rd) {
	struct generation *g = rd->gen;
	int k = 0;
	if (streq(rd->key, "gen.process")) {
		int pid, pgid;
		if ((k = take_int(rd, &pid)) < 0 || (k = take_fd(rd, &g->pidfd, true)) < 0 ||
		    (k = take_int(rd, &pgid)) < 0 || (k = take_int(rd, &g->launcher_status)) < 0)
			return k;
		g->pid = pid;
		g->pgid = pgid;
	} else if (streq(rd->key, "gen.state")) {
		int st;
		if ((k = lookup(rd, take_word(rd), gen_state_name, _GEN_STATE_MAX, &st)) < 0)
			return k;
		g->state = (enum gen_state)st;
	} else if (streq(rd->key, "gen.times")) {
		if ((k = take_number(rd, &g->started_usec)) < 0 || (k = take_number(rd, &g->ready_usec)) < 0 ||
		    (k = take_number(rd, &g->deadline_usec)) < 0)
			return k;
	} else if (streq(rd->key, "gen.watchdog")) {
		if ((k = take_number(rd, &g->watchdog_usec)) < 0 ||
		    (k = take_number(rd, &g->watchdog_deadline_usec)) < 0)
			return k;
	} else if (streq(rd->key, "gen.readiness")) {
		int t, probe;
		if ((k = lookup(rd, take_word(rd), readiness_name, _READINESS_MAX, &t)) < 0 ||
		    (k = take_number(rd, &g->check_usec)) < 0 || (k = take_int(rd, &probe)) < 0)
			return k;
		g->readiness = (enum readiness_type)t;
		g->probe_pid = probe;
	} else if (streq(rd->key, "gen.cgroup")) {
		if ((k = take_bool(rd, &g->in_cgroup)) < 0 || (k = take_bool(rd, &g->probe_cgroup)) < 0 ||
		    (k = take_fd(rd, &g->cgroup_events_fd, true)) < 0)
			return k;
	} else if (streq(rd->key, "gen.adopted")) {
		int pid;
		if ((k = take_int(rd, &pid)) < 0)
			return k;
		pid_t *a = realloc(g->adopted, (g->n_adopted + 1) * sizeof(*a));
		if (!a)
			return -ENOMEM;
		g->adopted = a;
		g->adopted[g->n_adopted++] = pid;
	} else if (streq(rd->key, "gen.output")) {
		unsigned stream;
		int fd, target;
		if ((k = take_unsigned(rd, &stream)) < 0 || (k = take_fd(rd, &fd, false)) < 0 ||
		    (k = take_int(rd, &target)) < 0)
			return k;
		if (stream > 1 || g->outputs[stream] || (target != 1 && target != 2))
			return fail_at(rd, "not an output pipe");
		_cleanup_free_ char *pending = NULL;
		size_t n;
		if ((k = take_string(rd, &pending, &n)) < 0)
			return k;
		if (n > OUTPUT_PENDING_MAX)
			return fail_at(rd, "too much pending output");
		struct output *o = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
		*o = (struct output){.fd = fd, .target = target, .out_fd = -1, .pending_len = n};
		memcpy(o->pending, pending, n);
		g->outputs[stream] = o;
	} else if (streq(rd->key, "gen.status")) {
		free(g->status);
		g->status = NULL;
		return take_string(rd, &g->status, NULL);
	} else
		return fail_at(rd, "unknown record");
	return 0;
}

static int read_supervisor_record(struct reader *rd) {
	struct supervisor *s = &rd->r->sup;
	int k = 0;
	if (streq(rd->key, "state")) {
		int st;
		if ((k = lookup(rd, take_word(rd), sup_state_name, _SUP_STATE_MAX, &st)) < 0)
			return k;
		s->state = (enum sup_state)st;
	} else if (streq(rd->key, "current"))
		k = take_unsigned(rd, &rd->current_id);
	else if (streq(rd->key, "counters")) {
		if ((k = take_unsigned(rd, &s->last_generation)) < 0 || (k = take_unsigned(rd, &s->failures)) < 0 ||
		    (k = take_unsigned(rd, &s->restarts)) < 0 || (k = take_bool(rd, &s->ever_ready)) < 0)
			return k;
	} else if (streq(rd->key, "reloads")) {
		if ((k = take_number(rd, &s->last_reload_seq)) < 0 || (k = take_bool(rd, &s->reload_queued)) < 0)
			return k;
	} else if (streq(rd->key, "last-reload")) {
		if ((k = take_number(rd, &s->last_reload.seq)) < 0 || (k = take_bool(rd, &s->last_reload.ok)) < 0 ||
		    (k = take_number(rd, &s->last_reload.duration_usec)) < 0 ||
		    (k = take_number(rd, &s->last_reload.ready_usec)) < 0)
			return k;
	} else if (streq(rd->key, "last-reload.message")) {
		free(s->last_reload.message);
		s->last_reload.message = NULL;
		k = take_string(rd, &s->last_reload.message, NULL);
	} else if (streq(rd->key, "restart-at"))
		k = take_number(rd, &s->restart_usec);
	else if (streq(rd->key, "upstream")) {
		if ((k = take_bool(rd, &s->upstream.fd_store)) < 0 ||
		    (k = take_number(rd, &s->upstream.watchdog_interval_usec)) < 0 ||
		    (k = take_number(rd, &s->upstream.watchdog_next_usec)) < 0)
			return k;
	} else if (streq(rd->key, "terminal")) {
		int own, fg;
		if ((k = take_bool(rd, &s->terminal)) < 0 || (k = take_int(rd, &own)) < 0 ||
		    (k = take_int(rd, &fg)) < 0)
			return k;
		rd->r->own_pgrp = own;
		rd->r->foreground = fg;
	} else
		return 1; /* not one of these */
	return k;
}

static int read_run_record(struct reader *rd) {
	struct run *r = rd->r;
	int k = 0;
	if (streq(rd->key, "notify")) {
		if ((k = take_fd(rd, &r->notify_fd, false)) < 0)
			return k;
		k = take_string(rd, &r->notify_path, NULL);
	} else if (streq(rd->key, "control")) {
		uint64_t dev, ino;
		if ((k = take_fd(rd, &r->control.fd, false)) < 0 || (k = take_number(rd, &dev)) < 0 ||
		    (k = take_number(rd, &ino)) < 0 || (k = take_unsigned(rd, &r->control.last_id)) < 0)
			return k;
		r->control.dev = (dev_t)dev;
		r->control.ino = (ino_t)ino;
		k = take_string(rd, &r->control.path, NULL);
	} else if (streq(rd->key, "client")) {
		if (r->control.fd < 0 || r->control.n_clients >= CONTROL_CLIENTS_MAX)
			return fail_at(rd, "a control client without a control socket, or too many");
		struct control_client *cl = calloc(1, sizeof(*cl));
		if (!cl)
			return -ENOMEM;
		cl->fd = -1;
		cl->next = r->control.clients;
		r->control.clients = cl;
		r->control.n_clients++;
		rd->client = cl;
		int req;
		_cleanup_free_ char *buf = NULL;
		size_t n;
		if ((k = take_unsigned(rd, &cl->id)) < 0 || (k = take_fd(rd, &cl->fd, false)) < 0 ||
		    (k = take_number(rd, &cl->deadline_usec)) < 0 || (k = take_bool(rd, &cl->has_request)) < 0 ||
		    (k = take_bool(rd, &cl->eof)) < 0 || (k = take_int(rd, &req)) < 0 ||
		    (k = take_number(rd, &cl->waiting_for)) < 0 || (k = take_number(rd, &cl->request_usec)) < 0 ||
		    (k = take_string(rd, &buf, &n)) < 0)
			return k;
		if (req < 0 || req >= _CONTROL_REQUEST_MAX || n > CONTROL_LINE_MAX)
			return fail_at(rd, "not a control client");
		cl->request = (enum control_request)req;
		memcpy(cl->buf, buf, n);
		cl->len = n;
	} else if (streq(rd->key, "client.argument")) {
		if (!rd->client || rd->client->argument)
			return fail_at(rd, "an argument without its client");
		k = take_string(rd, &rd->client->argument, NULL);
	} else if (streq(rd->key, "cgroups")) {
		if ((k = take_fd(rd, &r->cgroups.fd, false)) < 0 || (k = take_bool(rd, &r->cgroups.created)) < 0)
			return k;
	} else if (streq(rd->key, "cgroups.path"))
		k = take_string(rd, &r->cgroups.path, NULL);
	else if (streq(rd->key, "cgroups.dir"))
		k = take_string(rd, &r->cgroups.dir, NULL);
	else if (streq(rd->key, "cgroups.origin"))
		k = take_string(rd, &r->cgroups.origin, NULL);
	else if (streq(rd->key, "cgroups.controllers")) {
		_cleanup_free_ char *c = NULL;
		if ((k = take_string(rd, &c, NULL)) < 0)
			return k;
		if (strlen(c) >= sizeof(r->cgroups.controllers))
			return fail_at(rd, "too long");
		strcpy(r->cgroups.controllers, c);
	} else if (streq(rd->key, "generation")) {
		struct generation *g = calloc(1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		*g = (struct generation){.pidfd = -1,
					 .cgroup_events_fd = -1,
					 .keeper_fd = -1,
					 .processes = -1,
					 .memory_bytes = UINT64_MAX,
					 .cpu_usec = UINT64_MAX};
		*rd->gen_tail = g;
		rd->gen_tail = &g->next;
		rd->gen = g;
		k = take_unsigned(rd, &g->id);
	} else if (streq(rd->key, "remnant")) {
		struct remnant *rm = calloc(1, sizeof(*rm));
		if (!rm)
			return -ENOMEM;
		rm->cgroup_events_fd = rm->keeper_fd = -1;
		*rd->remnant_tail = rm;
		rd->remnant_tail = &rm->next;
		rd->remnant = rm;
		int pgid;
		if ((k = take_unsigned(rd, &rm->id)) < 0 || (k = take_int(rd, &pgid)) < 0 ||
		    (k = take_bool(rd, &rm->in_cgroup)) < 0 || (k = take_fd(rd, &rm->cgroup_events_fd, true)) < 0 ||
		    (k = take_number(rd, &rm->kill_usec)) < 0)
			return k;
		rm->pgid = pgid;
	} else if (streq(rd->key, "remnant.adopted")) {
		struct remnant *rm = rd->remnant;
		int pid;
		if (!rm)
			return fail_at(rd, "an adopted process without its remnant");
		if ((k = take_int(rd, &pid)) < 0)
			return k;
		pid_t *a = realloc(rm->adopted, (rm->n_adopted + 1) * sizeof(*a));
		if (!a)
			return -ENOMEM;
		rm->adopted = a;
		rm->adopted[rm->n_adopted++] = pid;
	} else if (streq(rd->key, "keeper")) {
		k = read_keeper(rd);
	} else if (strncmp(rd->key, "gen.", 4) == 0) {
		if (!rd->gen)
			return fail_at(rd, "a generation's record before any generation");
		return read_generation_record(rd);
	} else {
		k = read_supervisor_record(rd);
		if (k == 1)
			return fail_at(rd, "unknown record");
	}
	return k;
}

/* What the records say must fit together: the listeners are the config's, the current generation is one of them,
 * and nothing was starting (an upgrade waits for that). */
static int check_whole(struct reader *rd) {
	struct run *r = rd->r;
	struct supervisor *s = &r->sup;
	rd->key = NULL;
	if (!s->config)
		return fail_at(rd, "no config");
	if (!r->notify_path)
		return fail_at(rd, "no notify socket");
	if (!listeners_match_config(s->listeners, s->n_listeners, s->config))
		return fail_at(rd, "the listeners are not the config's");
	if (s->state != SUP_RUNNING && s->state != SUP_BACKOFF)
		return fail_at(rd, "baton was neither running nor waiting to restart");
	for (struct generation *g = s->generations; g; g = g->next) {
		if (g->state == GEN_STARTING)
			return fail_at(rd, "a generation was starting");
		if (g->id == rd->current_id)
			s->current = g;
		if ((g->in_cgroup || g->probe_cgroup) && r->cgroups.fd < 0)
			return fail_at(rd, "a generation has a cgroup, baton none");
	}
	if (!!s->current != !!rd->current_id || (s->current && s->state != SUP_RUNNING))
		return fail_at(rd, "the current generation is not one of them");
	for (struct remnant *rm = r->remnants; rm; rm = rm->next)
		if (rm->in_cgroup && r->cgroups.fd < 0)
			return fail_at(rd, "a remnant has a cgroup, baton none");
	if (r->cgroups.fd >= 0 && (!r->cgroups.path || !r->cgroups.dir || !r->cgroups.origin))
		return fail_at(rd, "the cgroup subtree is incomplete");
	return 0;
}

int run_state_read(int fd, bool check_fds, struct run *r, unsigned *ret_upgrader, uint64_t *ret_started_usec,
		   char **ret_error) {
	FILE *f = fdopen_dup(fd, "r");
	if (!f)
		return fail_error(ret_error, -errno, "cannot read the state: %s", strerror(errno));
	(void)lseek(fileno(f), 0, SEEK_SET);

	*r = (struct run)RUN_INIT;
	struct reader rd = {
		.f = f, .check_fds = check_fds, .r = r, .gen_tail = &r->sup.generations, .remnant_tail = &r->remnants};
	_cleanup_free_ char *config_path = NULL;
	_cleanup_strv_free_ char **config_sets = NULL;
	struct listener *ls = NULL;
	size_t n_ls = 0;
	bool ended = false;
	int k = 0;

	unsigned version = 0;
	if (next_record(&rd) <= 0 || !streq(rd.key, "baton-state") || take_unsigned(&rd, &version) < 0) {
		k = -EBADMSG;
		free(rd.error);
		rd.error = strdup("not a baton state (no \"baton-state\" line)");
		goto done;
	}
	if (version != baton_state_version) {
		k = -EPROTO;
		rd.error = strdup_printf("state version %u, and this baton (%s) reads version %u", version,
					 baton_version, baton_state_version);
		goto done;
	}

	while (k >= 0 && next_record(&rd) > 0) {
		if (streq(rd.key, "end")) {
			ended = true;
			break;
		} else if (streq(rd.key, "baton-version")) {
			free(r->previous_version);
			r->previous_version = NULL;
			k = take_string(&rd, &r->previous_version, NULL);
		} else if (streq(rd.key, "upgrades"))
			k = take_unsigned(&rd, &r->sup.upgrades);
		else if (streq(rd.key, "upgrade")) {
			if ((k = take_unsigned(&rd, ret_upgrader)) >= 0)
				k = take_number(&rd, ret_started_usec);
		} else if (streq(rd.key, "binary"))
			k = take_string(&rd, &r->binary, NULL);
		else if (streq(rd.key, "log-level")) {
			int level;
			if ((k = take_int(&rd, &level)) >= 0 && (level < LOG_ERR || level > LOG_DEBUG))
				k = fail_at(&rd, "not a log level");
			else if (k >= 0 && check_fds)
				/* --log-level of `baton run`: the binary that takes over logs alike */
				log_max_level = level;
		} else if (streq(rd.key, "option.config-path"))
			k = take_string(&rd, &r->own_config_path, NULL);
		else if (streq(rd.key, "option.nofile")) {
			uint64_t cur, max;
			if ((k = take_number(&rd, &cur)) >= 0 && (k = take_number(&rd, &max)) >= 0) {
				r->sup.options.nofile.rlim_cur = (rlim_t)cur;
				r->sup.options.nofile.rlim_max = (rlim_t)max;
			}
		} else if (streq(rd.key, "option.listen"))
			k = take_strv(&rd, &r->own_listens);
		else if (streq(rd.key, "option.set"))
			k = take_strv(&rd, &r->own_sets);
		else if (streq(rd.key, "option.command"))
			k = take_strv(&rd, &r->own_command);
		else if (streq(rd.key, "config.path"))
			k = take_string(&rd, &config_path, NULL);
		else if (streq(rd.key, "config.set"))
			k = take_strv(&rd, &config_sets);
		else if (streq(rd.key, "config")) {
			if (r->sup.config)
				k = fail_at(&rd, "a second config");
			else
				k = read_config(&rd, config_path, config_sets);
		} else if (streq(rd.key, "listener")) {
			struct listener *nls = realloc(ls, (n_ls + 1) * sizeof(*nls));
			if (!nls) {
				k = -ENOMEM;
				break;
			}
			ls = nls;
			struct listener *l = &ls[n_ls];
			*l = (struct listener){.fd = -1};
			if ((k = take_fd(&rd, &l->fd, false)) < 0 || (k = take_bool(&rd, &l->inherited)) < 0 ||
			    (k = take_bool(&rd, &l->created_path)) < 0 || (k = take_string(&rd, &l->name, NULL)) < 0)
				break;
			n_ls++;
			/* The address is the config's, by position (checked below). */
			if (!r->sup.config || n_ls > r->sup.config->n_listeners) {
				k = fail_at(&rd, "a listener the config does not have");
				break;
			}
			l->address = r->sup.config->listeners[n_ls - 1].address;
		} else
			k = read_run_record(&rd);
	}
	r->sup.listeners = ls;
	r->sup.n_listeners = n_ls;
	if (k >= 0 && !ended) {
		rd.key = NULL;
		k = fail_at(&rd, ferror(f) ? "cannot read the state" : "the state is cut short (no \"end\" line)");
	}
	if (k >= 0)
		k = check_whole(&rd);
	if (k >= 0) {
		r->sup.options.config_path = r->own_config_path;
		r->sup.options.listens = r->own_listens;
		r->sup.options.sets = r->own_sets;
		r->sup.options.command = r->own_command;
	}
done:
	if (k == -ENOMEM && !rd.error)
		rd.error = strdup("out of memory");
	if (k < 0) {
		*ret_error = TAKE_PTR(rd.error);
		if (!*ret_error)
			*ret_error = strdup_printf("the state is not valid (%s)", strerror(-k));
		run_state_discard(r);
	}
	free(rd.error);
	free(rd.buf);
	fclose(f);
	return k;
}

size_t run_state_fds(const struct run *r, int *fds, size_t max) {
	size_t n = 0;
#define ADD(fd)                                                                                                        \
	do {                                                                                                           \
		if ((fd) >= 0 && n < max)                                                                              \
			fds[n++] = (fd);                                                                               \
	} while (0)
	for (size_t i = 0; i < r->sup.n_listeners; i++)
		ADD(r->sup.listeners[i].fd);
	ADD(r->notify_fd);
	ADD(r->control.fd);
	for (const struct control_client *cl = r->control.clients; cl; cl = cl->next)
		ADD(cl->fd);
	ADD(r->cgroups.fd);
	for (const struct generation *g = r->sup.generations; g; g = g->next) {
		ADD(g->pidfd);
		ADD(g->cgroup_events_fd);
		ADD(g->keeper_fd);
		for (unsigned i = 0; i < 2; i++)
			if (g->outputs[i])
				ADD(g->outputs[i]->fd);
	}
	for (const struct remnant *rm = r->remnants; rm; rm = rm->next) {
		ADD(rm->cgroup_events_fd);
		ADD(rm->keeper_fd);
	}
#undef ADD
	return n;
}

void run_state_discard(struct run *r) {
	struct supervisor *s = &r->sup;
	while (s->generations) {
		struct generation *g = s->generations;
		s->generations = g->next;
		free(g->status);
		free(g->adopted);
		free(g->outputs[0]);
		free(g->outputs[1]);
		free(g);
	}
	while (r->remnants) {
		struct remnant *rm = r->remnants;
		r->remnants = rm->next;
		free(rm->adopted);
		free(rm);
	}
	while (r->control.clients) {
		struct control_client *cl = r->control.clients;
		r->control.clients = cl->next;
		free(cl->argument);
		free(cl);
	}
	for (size_t i = 0; i < s->n_listeners; i++)
		free(s->listeners[i].name);
	free(s->listeners);
	free(s->last_reload.message);
	config_free(s->config);
	free(r->control.path);
	free(r->cgroups.path);
	free(r->cgroups.dir);
	free(r->cgroups.origin);
	free(r->notify_path);
	run_free_strings(r);
	*r = (struct run)RUN_INIT;
}
