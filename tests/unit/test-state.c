/* The state `baton upgrade` hands over (run-state.c and each owner's records): a state with every kind of record,
 * every field set to a value that is not its default, written, read and written again gives the same bytes; changing
 * any one field changes the bytes (so a field that were written but not read would fail the round trip); and a state
 * that is wrong is refused with a message that says what is wrong. The fds are real (/dev/null): the reader checks
 * that the fds it is handed are open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "run-core.h"
#include "run-state.h"
#include "test.h"
#include "util.h"
#include "version.h"

static int open_null(void) {
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 3) {
		perror("open /dev/null");
		exit(EXIT_FAILURE);
	}
	return fd;
}

static char *xstrdup(const char *s) {
	char *p = strdup(s);
	if (!p)
		exit(EXIT_FAILURE);
	return p;
}

static char **strv(const char *a, const char *b) {
	char **v = NULL;
	if (strv_extend(&v, a) < 0 || (b && strv_extend(&v, b) < 0))
		exit(EXIT_FAILURE);
	return v;
}

/* A config with two listeners and a command, as loaded from a file with a --set. */
static struct config *make_config(void) {
	struct config *c = NULL, *loaded = NULL;
	_cleanup_free_ char *error = NULL, *text = NULL;
	_cleanup_strv_free_ char **listens = strv("web=tcp://127.0.0.1:8080", "admin=unix:/run/app/admin.sock");
	_cleanup_strv_free_ char **command = strv("/usr/bin/app", "--serve");
	_cleanup_strv_free_ char **sets = strv("stop.timeout=7s", NULL);
	size_t len = 0;
	if (config_new_default(&c) < 0 || config_apply_cli(c, listens, command, &error) < 0) {
		fprintf(stderr, "config: %s\n", error ? error : "out of memory");
		exit(EXIT_FAILURE);
	}
	FILE *f = open_memstream(&text, &len);
	config_print(c, f);
	fclose(f);
	config_free(c);
	if (config_load_text(text, len, "/etc/baton/app.yaml", sets, &loaded, &error) < 0) {
		fprintf(stderr, "config: %s\n", error ? error : "out of memory");
		exit(EXIT_FAILURE);
	}
	return loaded;
}

static struct output *make_output(int target, const char *pending) {
	struct output *o = calloc(1, sizeof(*o));
	*o = (struct output){.fd = open_null(), .target = target, .out_fd = -1, .pending_off = 2};
	o->pending_len = strlen(pending);
	memcpy(o->pending + o->pending_off, pending, o->pending_len);
	return o;
}

static pid_t *pids(pid_t a, pid_t b) {
	pid_t *p = calloc(2, sizeof(*p));
	p[0] = a;
	p[1] = b;
	return p;
}

static struct generation *make_generation(unsigned id, enum gen_state st, struct generation *next) {
	struct generation *g = calloc(1, sizeof(*g));
	*g = (struct generation){
		.id = id,
		.pid = (pid_t)(1000 + id),
		.pidfd = open_null(),
		.state = st,
		.started_usec = 11000 + id,
		.ready_usec = 12000 + id,
		.deadline_usec = 13000 + id,
		.status = strdup_printf("serving \\ %u\nrequests\x01", id),
		.watchdog_usec = 14000 + id,
		.watchdog_deadline_usec = 15000 + id,
		.readiness = READINESS_LOG,
		.pgid = (pid_t)(2000 + id),
		.check_usec = 16000 + id,
		.probe_pid = (pid_t)(3000 + id),
		.launcher_status = 256,
		.in_cgroup = true,
		.probe_cgroup = true,
		.cgroup_events_fd = open_null(),
		.adopted = pids((pid_t)(4000 + id), (pid_t)(4100 + id)),
		.n_adopted = 2,
		.processes = -1,
		.memory_bytes = UINT64_MAX,
		.cpu_usec = UINT64_MAX,
		.next = next,
	};
	g->outputs[0] = make_output(1, "half a line\\ \x7f");
	g->outputs[1] = make_output(2, "err\n");
	return g;
}

static struct control_client *make_client(unsigned id, enum control_request req, struct control_client *next) {
	struct control_client *cl = calloc(1, sizeof(*cl));
	*cl = (struct control_client){.id = id,
				      .fd = open_null(),
				      .deadline_usec = 21000 + id,
				      .request_usec = 22000 + id,
				      .has_request = true,
				      .eof = true,
				      .request = req,
				      .next = next};
	return cl;
}

static void make_control(struct control *c) {
	/* Newest first, as accept() adds them: a client half-way through its request line, a reload waiting for its
	 * number, an upgrade waiting for a reload to end (with its binary), and the upgrade being carried out. */
	struct control_client *cl = make_client(4, CONTROL_UPGRADE, NULL);
	cl->upgrade_phase = UPGRADE_CHECKED;
	cl = make_client(3, CONTROL_UPGRADE, cl);
	cl->upgrade_phase = UPGRADE_WAITING;
	cl->argument = xstrdup("/opt/baton new/baton");
	cl = make_client(2, CONTROL_RELOAD, cl);
	cl->reload_seq = 10;
	cl = make_client(1, CONTROL_RELOAD, cl);
	cl->has_request = cl->eof = false;
	cl->request_usec = 0;
	cl->len = (size_t)snprintf(cl->buf, sizeof(cl->buf), "upgr\\\x02");
	*c = (struct control){.fd = open_null(),
			      .path = xstrdup("/run/baton/app.sock"),
			      .clients = cl,
			      .n_clients = 4,
			      .last_id = 4,
			      .dev = 2049,
			      .ino = 123456};
}

static struct remnant *make_remnant(unsigned id, struct remnant *next) {
	struct remnant *rm = calloc(1, sizeof(*rm));
	*rm = (struct remnant){.id = id,
			       .pgid = (pid_t)(5000 + id),
			       .in_cgroup = true,
			       .cgroup_events_fd = open_null(),
			       .adopted = pids((pid_t)(6000 + id), (pid_t)(6100 + id)),
			       .n_adopted = 2,
			       .kill_usec = 31000 + id,
			       .next = next};
	return rm;
}

static void make_supervisor(struct supervisor *s) {
	struct config *c = make_config();
	s->config = c;
	s->n_listeners = c->n_listeners;
	s->listeners = calloc(c->n_listeners, sizeof(*s->listeners));
	for (size_t i = 0; i < c->n_listeners; i++)
		s->listeners[i] = (struct listener){.name = xstrdup(c->listeners[i].name),
						    .address = c->listeners[i].address,
						    .fd = open_null(),
						    .inherited = i == 0,
						    .created_path = i == 1};
	s->state = SUP_RUNNING;
	s->generations =
		make_generation(7, GEN_READY, make_generation(6, GEN_DRAINING, make_generation(5, GEN_KILLED, NULL)));
	s->current = s->generations;
	s->last_generation = 7;
	s->ever_ready = true;
	s->last_reload_seq = 9;
	s->reload_queued = true;
	s->last_reload = (struct reload_result){.seq = 9,
						.ok = true,
						.message = xstrdup("reloaded\tin 3 ms"),
						.duration_usec = 3000,
						.ready_usec = 2000};
	s->failures = 2;
	s->restarts = 3;
	s->upgrades = 4;
	s->restart_usec = 41000;
	s->terminal = true;
	s->upstream = (struct upstream){.fd_store = true, .watchdog_interval_usec = 42000, .watchdog_next_usec = 43000};
}

/* A run as one that took over holds it: everything allocated, the options its own. */
static void make_run(struct run *r) {
	*r = (struct run)RUN_INIT;
	make_supervisor(&r->sup);
	r->notify_fd = open_null();
	r->notify_path = xstrdup("/run/baton/notify-1.sock");
	make_control(&r->control);
	r->remnants = make_remnant(3, make_remnant(2, NULL));
	r->cgroups = (struct cgroup_tree){.fd = open_null(),
					  .path = xstrdup("/system.slice/app.service"),
					  .dir = xstrdup("/sys/fs/cgroup/system.slice/app.service"),
					  .origin = xstrdup("/sys/fs/cgroup/system.slice/app.service/supervisor"),
					  .created = true};
	strcpy(r->cgroups.controllers, "+memory +pids");
	r->own_pgrp = 77;
	r->foreground = 2007;
	r->binary = xstrdup("/usr/local/bin/baton");
	r->own_config_path = xstrdup("/etc/baton/app.yaml");
	r->own_listens = strv("web=tcp://127.0.0.1:8080", "admin=unix:/run/app/admin.sock");
	r->own_sets = strv("stop.timeout=7s", NULL);
	r->own_command = strv("/usr/bin/app", "--serve");
	r->sup.options = (struct supervisor_options){.config_path = r->own_config_path,
						     .nofile = {.rlim_cur = 1024, .rlim_max = 4096},
						     .listens = r->own_listens,
						     .sets = r->own_sets,
						     .command = r->own_command};
}

static char *read_all(int fd) {
	off_t size = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)size + 1);
	if (!text || pread(fd, text, (size_t)size, 0) != size)
		exit(EXIT_FAILURE);
	return text;
}

/* The state of r as text; its fds in *ret_fds when not NULL. */
static char *write_state(const struct run *r, struct ser_fds *ret_fds) {
	_cleanup_close_ int fd = memfd_create("state", MFD_CLOEXEC);
	const struct control_client *upgrader = control_client_by_id((struct control *)&r->control, 4);
	int k = run_state_write(r, upgrader, 51000, fd, ret_fds);
	if (k < 0) {
		printf("# run_state_write: %s\n", strerror(-k));
		return NULL;
	}
	return read_all(fd);
}

static int read_state(const char *text, struct run *r, struct run_handover *h, char **ret_error) {
	_cleanup_close_ int fd = memfd_create("state", MFD_CLOEXEC);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		exit(EXIT_FAILURE);
	return run_state_read(fd, true, r, h, ret_error);
}

static void close_fds(const struct ser_fds *fds) {
	for (size_t i = 0; i < fds->n; i++)
		close(fds->fds[i]);
}

static bool same_fds(const struct ser_fds *a, const struct ser_fds *b) {
	return a->n == b->n && memcmp(a->fds, b->fds, a->n * sizeof(int)) == 0;
}

/* The first line where b differs from a, as TAP comments. */
static void show_difference(const char *a, const char *b) {
	size_t line = 1, i = 0;
	for (; a[i] && a[i] == b[i]; i++)
		if (a[i] == '\n')
			line++;
	while (i > 0 && a[i - 1] != '\n')
		i--;
	printf("#   line %zu written: '%.*s'\n", line, (int)strcspn(a + i, "\n"), a + i);
	printf("#   line %zu again:   '%.*s'\n", line, (int)strcspn(b + i, "\n"), b + i);
}

static void test_round_trip(const char *text, const struct ser_fds *fds) {
	struct run r;
	struct run_handover h;
	_cleanup_free_ char *error = NULL;
	int k = read_state(text, &r, &h, &error);
	CHECK(k == 0, "the state reads back (%s)", error ? error : "ok");
	if (k < 0)
		return;
	struct ser_fds fds2 = {0};
	_cleanup_free_ char *again = write_state(&r, &fds2);
	CHECK(again && streq(again, text), "write, read, write: the same bytes");
	if (again && !streq(again, text))
		show_difference(text, again);
	CHECK(h.upgrader == 4 && h.started_usec == 51000, "the upgrader and when it began");
	CHECK(same_fds(&h.fds, fds), "the fds read are the fds written (%zu)", h.fds.n);
	/* Every fd the state holds: 2 listeners, notify, control, 4 clients, cgroups, 3 generations' pidfd, events
	 * and 2 pipes, 2 remnants' events. */
	CHECK(fds->n == 23, "every fd of the state is named: %zu", fds->n);
	CHECK(same_fds(&fds2, fds), "and written again, the same fds");
	CHECK(r.sup.current && r.sup.current->id == 7, "the current generation is found again");
	CHECK(r.sup.options.listens == r.own_listens && r.sup.options.command == r.own_command,
	      "the options are the run's own");
	CHECK(r.control.clients && r.control.clients->id == 1 && r.control.n_clients == 4,
	      "the control clients, in their order");
	free(h.fds.fds);
	free(fds2.fds);
	run_state_discard(&r);
}

/* ---- each field counts ---- */

static struct generation *gen_n(struct run *r, unsigned n) {
	struct generation *g = r->sup.generations;
	while (n-- && g->next)
		g = g->next;
	return g;
}
static struct control_client *client(struct run *r, unsigned id) {
	return control_client_by_id(&r->control, id);
}
#define G (gen_n(r, 1))
#define L (&r->sup.listeners[1])
#define S (&r->sup)

/* One change of one field each: the state written after it must differ. */
#define MUTATIONS(X)                                                                                                   \
	X(upgrades, S->upgrades++)                                                                                     \
	X(log_level, log_max_level = log_max_level == LOG_DEBUG ? LOG_INFO : LOG_DEBUG)                                \
	X(binary, r->binary[1]++)                                                                                      \
	X(option_config_path, r->own_config_path[1]++)                                                                 \
	X(option_nofile_cur, S->options.nofile.rlim_cur++)                                                             \
	X(option_nofile_max, S->options.nofile.rlim_max++)                                                             \
	X(option_listen, r->own_listens[1][0]++)                                                                       \
	X(option_set, r->own_sets[0][0]++)                                                                             \
	X(option_command, r->own_command[1][2]++)                                                                      \
	X(config_path, S->config->path[1]++)                                                                           \
	X(config_set, S->config->sets[0][0]++)                                                                         \
	X(listener_fd, L->fd = S->listeners[0].fd)                                                                     \
	X(listener_inherited, L->inherited = !L->inherited)                                                            \
	X(listener_created_path, L->created_path = !L->created_path)                                                   \
	X(listener_name, L->name[0]++)                                                                                 \
	X(sup_state, S->state = SUP_BACKOFF)                                                                           \
	X(current, S->current = G)                                                                                     \
	X(last_generation, S->last_generation++)                                                                       \
	X(failures, S->failures++)                                                                                     \
	X(restarts, S->restarts++)                                                                                     \
	X(ever_ready, S->ever_ready = false)                                                                           \
	X(last_reload_seq, S->last_reload_seq++)                                                                       \
	X(reload_queued, S->reload_queued = false)                                                                     \
	X(last_reload_result_seq, S->last_reload.seq++)                                                                \
	X(last_reload_ok, S->last_reload.ok = false)                                                                   \
	X(last_reload_duration, S->last_reload.duration_usec++)                                                        \
	X(last_reload_ready, S->last_reload.ready_usec++)                                                              \
	X(last_reload_message, S->last_reload.message[0]++)                                                            \
	X(restart_at, S->restart_usec++)                                                                               \
	X(upstream_fd_store, S->upstream.fd_store = false)                                                             \
	X(upstream_watchdog_interval, S->upstream.watchdog_interval_usec++)                                            \
	X(upstream_watchdog_next, S->upstream.watchdog_next_usec++)                                                    \
	X(terminal, S->terminal = false)                                                                               \
	X(own_pgrp, r->own_pgrp++)                                                                                     \
	X(foreground, r->foreground++)                                                                                 \
	X(notify_fd, r->notify_fd = r->control.fd)                                                                     \
	X(notify_path, r->notify_path[1]++)                                                                            \
	X(control_fd, r->control.fd = r->notify_fd)                                                                    \
	X(control_dev, r->control.dev++)                                                                               \
	X(control_ino, r->control.ino++)                                                                               \
	X(control_last_id, r->control.last_id++)                                                                       \
	X(control_path, r->control.path[1]++)                                                                          \
	X(client_id, client(r, 2)->id = 9)                                                                             \
	X(client_fd, client(r, 2)->fd = r->notify_fd)                                                                  \
	X(client_deadline, client(r, 2)->deadline_usec++)                                                              \
	X(client_has_request, client(r, 2)->has_request = false)                                                       \
	X(client_eof, client(r, 2)->eof = false)                                                                       \
	X(client_request, client(r, 2)->request = CONTROL_STOP)                                                        \
	X(client_reload_seq, client(r, 2)->reload_seq++)                                                               \
	X(client_upgrade_phase, client(r, 3)->upgrade_phase = UPGRADE_ASKED)                                           \
	X(client_request_usec, client(r, 2)->request_usec++)                                                           \
	X(client_line, client(r, 1)->buf[0]++)                                                                         \
	X(client_line_length, client(r, 1)->len--)                                                                     \
	X(client_argument, client(r, 3)->argument[1]++)                                                                \
	X(cgroups_fd, r->cgroups.fd = r->notify_fd)                                                                    \
	X(cgroups_created, r->cgroups.created = false)                                                                 \
	X(cgroups_path, r->cgroups.path[1]++)                                                                          \
	X(cgroups_dir, r->cgroups.dir[1]++)                                                                            \
	X(cgroups_origin, r->cgroups.origin[1]++)                                                                      \
	X(cgroups_controllers, r->cgroups.controllers[1]++)                                                            \
	X(gen_id, G->id++)                                                                                             \
	X(gen_pid, G->pid++)                                                                                           \
	X(gen_pidfd, G->pidfd = r->notify_fd)                                                                          \
	X(gen_pgid, G->pgid++)                                                                                         \
	X(gen_launcher_status, G->launcher_status++)                                                                   \
	X(gen_state, G->state = GEN_STOPPING)                                                                          \
	X(gen_started, G->started_usec++)                                                                              \
	X(gen_ready, G->ready_usec++)                                                                                  \
	X(gen_deadline, G->deadline_usec++)                                                                            \
	X(gen_watchdog, G->watchdog_usec++)                                                                            \
	X(gen_watchdog_deadline, G->watchdog_deadline_usec++)                                                          \
	X(gen_readiness, G->readiness = READINESS_EXEC)                                                                \
	X(gen_check, G->check_usec++)                                                                                  \
	X(gen_probe_pid, G->probe_pid++)                                                                               \
	X(gen_in_cgroup, G->in_cgroup = false)                                                                         \
	X(gen_probe_cgroup, G->probe_cgroup = false)                                                                   \
	X(gen_cgroup_events_fd, G->cgroup_events_fd = r->notify_fd)                                                    \
	X(gen_adopted, G->adopted[1]++)                                                                                \
	X(gen_adopted_count, G->n_adopted--)                                                                           \
	X(gen_output_fd, G->outputs[1]->fd = r->notify_fd)                                                             \
	X(gen_output_target, G->outputs[1]->target = 1)                                                                \
	X(gen_output_pending, G->outputs[0]->pending[0]++)                                                             \
	X(gen_output_pending_length, G->outputs[0]->pending_len--)                                                     \
	X(gen_status, G->status[0]++)                                                                                  \
	X(remnant_id, r->remnants->id++)                                                                               \
	X(remnant_pgid, r->remnants->pgid++)                                                                           \
	X(remnant_in_cgroup, r->remnants->in_cgroup = false)                                                           \
	X(remnant_events_fd, r->remnants->cgroup_events_fd = r->notify_fd)                                             \
	X(remnant_kill, r->remnants->kill_usec++)                                                                      \
	X(remnant_adopted, r->remnants->next->adopted[0]++)

#define DEFINE(name, change)                                                                                           \
	static void mutate_##name(struct run *r) {                                                                     \
		change;                                                                                                \
	}
MUTATIONS(DEFINE)
#define ENTRY(name, change) {#name, mutate_##name},
static const struct mutation {
	const char *name;
	void (*change)(struct run *r);
} mutations[] = {MUTATIONS(ENTRY)};

static void test_each_field_counts(const char *text) {
	for (size_t i = 0; i < ARRAY_SIZE(mutations); i++) {
		struct run r;
		struct run_handover h;
		_cleanup_free_ char *error = NULL;
		if (read_state(text, &r, &h, &error) < 0) {
			CHECK(false, "%s: the state reads back (%s)", mutations[i].name, error);
			continue;
		}
		int level = log_max_level;
		mutations[i].change(&r);
		_cleanup_free_ char *changed = write_state(&r, NULL);
		CHECK(changed && strcmp(changed, text) != 0, "%s: a change of it changes the state written",
		      mutations[i].name);
		log_max_level = level;
		free(h.fds.fds);
		run_state_discard(&r);
	}
}

/* ---- a state that is wrong ---- */

/* text with the first line that starts with prefix replaced by line ("" drops it), or line inserted before it
 * (insert). */
static char *edit(const char *text, const char *prefix, const char *line, bool insert) {
	const char *at = text;
	while (at && strncmp(at, prefix, strlen(prefix)) != 0)
		at = (at = strchr(at, '\n')) ? at + 1 : NULL;
	if (!at)
		return NULL;
	const char *after = insert ? at : strchr(at, '\n') + 1;
	return strdup_printf("%.*s%s%s%s", (int)(at - text), text, line, *line ? "\n" : "", after);
}

static void refused(const char *text, const char *want, const char *what) {
	struct run r;
	struct run_handover h;
	_cleanup_free_ char *error = NULL;
	int k = text ? read_state(text, &r, &h, &error) : -EINVAL;
	CHECK(k < 0 && error && strstr(error, want), "%s: refused, saying '%s'", what, want);
	if (k < 0 && error && !strstr(error, want))
		printf("#   got '%s'\n", error);
	if (k >= 0) {
		free(h.fds.fds);
		run_state_discard(&r);
	}
}

static void test_refused(const char *text, int closed_fd) {
	_cleanup_free_ char *version = strdup_printf("baton-state %u", baton_state_version + 1),
			    *want_version = strdup_printf("state version %u, and this baton (%s) reads version %u",
							  baton_state_version + 1, baton_version, baton_state_version),
			    *notify = strdup_printf("notify %d /run/baton/notify-1.sock", closed_fd);
	char *t;
	refused(t = edit(text, "baton-state ", version, false), want_version, "another state version");
	free(t);
	refused(t = edit(text, "end", "frobnicate 1", true), "line ", "an unknown record");
	free(t);
	refused(t = edit(text, "end", "frobnicate 1", true), "(frobnicate): unknown record", "an unknown record");
	free(t);
	refused(t = edit(text, "gen.status", "gen.status a\\qb", false), "(gen.status): bad escape", "a bad escape");
	free(t);
	refused(t = edit(text, "gen.status", "gen.status a\\x4", false), "(gen.status): bad escape", "a cut escape");
	free(t);
	refused(t = edit(text, "notify ", notify, false), "(notify): the file descriptor is not open",
		"an fd that is not open");
	free(t);
	refused(t = edit(text, "gen.process", "gen.process 1007 2 2007 256", false),
		"(gen.process): not a file descriptor baton holds", "stdin's fd");
	free(t);
	refused(t = edit(text, "gen.readiness", "gen.readiness sometimes 1 2", false), "(gen.readiness): unknown name",
		"an unknown readiness type");
	free(t);
	refused(t = edit(text, "upgrades", "remnant.adopted 5", true), "an adopted process without its remnant",
		"a remnant's record outside its remnant");
	free(t);
	refused(t = edit(text, "upgrades", "gen.state ready", true), "a generation's record before any generation",
		"a generation's record before any");
	free(t);
	refused(t = edit(text, "generation 7", "client 9 3 0 0 0 0 0 0 ", true),
		"a control client without the control socket", "a client outside the control block");
	free(t);
	refused(t = edit(text, "upgrades", "binary /usr/bin/x", true), "(binary): given twice", "a string given twice");
	free(t);
	refused(t = edit(text, "end", "", false), "the state is cut short (no \"end\" line)", "no end");
	free(t);
	refused(t = edit(text, "current", "current 4", false), "the current generation is not one of them",
		"a current generation that is not there");
	free(t);
	refused(t = edit(text, "gen.state ready", "gen.state starting", false), "a generation was starting",
		"a generation that was starting");
	free(t);
	refused(t = edit(text, "client 2", "client 2 3 0 0 0 2 5 0 ", false),
		"a control client waits for what its request does not", "a stop client waiting for a number");
	free(t);
	refused(t = edit(text, "cgroups.dir", "", false), "the cgroup subtree is incomplete", "no cgroup directory");
	free(t);
	refused(t = edit(text, "state ", "state stopping", false), "neither running nor waiting to restart",
		"a stopping baton");
	free(t);
	refused("", "not a baton state", "an empty state");
}

int main(void) {
	struct run r;
	make_run(&r);
	struct ser_fds fds = {0};
	_cleanup_free_ char *text = write_state(&r, &fds);
	CHECK(text != NULL, "the state is written");
	if (!text)
		return test_done();
	printf("# %zu bytes of state\n", strlen(text));
	CHECK(strstr(text, "client 1 ") && strstr(text, "client 2 ") && strstr(text, "client.argument") &&
		      strstr(text, "remnant.adopted") && strstr(text, "gen.output 1") &&
		      strstr(text, "last-reload.message"),
	      "every kind of record is in it");

	test_round_trip(text, &fds);
	test_each_field_counts(text);
	/* Far above what the test opens: never open. */
	int closed_fd = 1000;
	close(closed_fd);
	test_refused(text, closed_fd);

	close_fds(&fds);
	free(fds.fds);
	run_state_discard(&r);
	return test_done();
}
