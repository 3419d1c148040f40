/* What the control socket answers (status.h). */
#include "status.h"

#include <inttypes.h>
#include <stdio.h>

#include "json.h"
#include "notify.h"
#include "util.h"
#include "version.h"

/* SUP_CONFIRMING: how long the reload.confirm window has to run. */
static uint64_t confirm_left(const struct supervisor *s, uint64_t now) {
	return s->reload.confirm_until > now ? s->reload.confirm_until - now : 0;
}

/* The reload.confirm window in progress: the generation on trial, the window and what is left of it; or null. */
static void append_confirm(struct json_buf *b, const struct supervisor *s, uint64_t now) {
	if (s->state == SUP_CONFIRMING && s->reload.gen)
		json_append(b, "{\"generation\":%u,\"window_ms\":%" PRIu64 ",\"left_ms\":%" PRIu64 "}",
			    s->reload.gen->id, s->reload.config->reload_confirm_usec / USEC_PER_MSEC,
			    confirm_left(s, now) / USEC_PER_MSEC);
	else
		json_append(b, "null");
}

/* The same, as text for `baton status` without --json (so the client needs no JSON array reader). */
static char *status_text(const struct supervisor *s, pid_t pid, uint64_t now) {
	char abuf[ADDR_FORMAT_MAX];
	struct json_buf t = {0};
	json_append(&t, "baton pid %d: %s", (int)pid, sup_state_to_string(s->state));
	if (s->state == SUP_CONFIRMING)
		json_append(&t, ", %.1f s left", (double)confirm_left(s, now) / (double)USEC_PER_SEC);
	if (s->options.config_path)
		json_append(&t, " (%s)", s->options.config_path);
	json_append(&t, "\n");
	for (const struct generation *g = s->generations; g; g = g->next) {
		json_append(&t, "  generation %u: pid %d, %s%s, up %" PRIu64 "s", g->id, (int)g->pid,
			    gen_state_to_string(g->state),
			    g == s->current                                    ? " (current)"
			    : g == s->reload.gen && s->state == SUP_CONFIRMING ? " (new, confirming)"
									       : "",
			    (now - g->started_usec) / USEC_PER_SEC);
		if (g->processes >= 0)
			json_append(&t, ", %d process%s", g->processes, g->processes == 1 ? "" : "es");
		if (g->memory_bytes != UINT64_MAX)
			json_append(&t, ", memory %" PRIu64 " KiB", g->memory_bytes / 1024);
		if (g->cpu_usec != UINT64_MAX)
			json_append(&t, ", cpu %" PRIu64 ".%03" PRIu64 "s", g->cpu_usec / USEC_PER_SEC,
				    g->cpu_usec % USEC_PER_SEC / USEC_PER_MSEC);
		json_append(&t, "%s%s\n", g->status ? ", status: " : "", strempty(g->status));
	}
	if (!s->generations)
		json_append(&t, "  no generation running\n");
	for (size_t i = 0; i < s->n_listeners; i++)
		json_append(&t, "  listener %s: fd %zu, %s%s\n", s->listeners[i].name, 3 + i,
			    addr_format(&s->listeners[i].address, abuf),
			    s->listeners[i].inherited ? " (inherited)" : "");
	if (s->last_reload.seq)
		json_append(&t, "  last reload (#%" PRIu64 "): %s: %s\n", s->last_reload.seq,
			    s->last_reload.ok ? "ok" : "failed", strempty(s->last_reload.message));
	else
		json_append(&t, "  no reload yet\n");
	json_append(&t, "  restarts: %u\n", s->restarts);
	if (notify_upstream_held() > 0)
		json_append(&t, "  held for systemd, whose notify socket is full: %zu messages\n",
			    notify_upstream_held());
	json_append(&t, "  baton %s, upgrades: %u", baton_version, s->upgrades);
	return json_buf_take(&t);
}

char *status_render(const struct supervisor *s, pid_t pid, uint64_t now) {
	struct json_buf b = {0};
	char abuf[ADDR_FORMAT_MAX];

	json_append(&b, "{\"ok\":true,\"pid\":%d,\"state\":", (int)pid);
	json_append_string(&b, sup_state_to_string(s->state));
	json_append(&b, ",\"config\":");
	json_append_string(&b, s->options.config_path);
	json_append(&b, ",\"generations\":[");
	for (const struct generation *g = s->generations; g; g = g->next) {
		const char *role = g == s->current ? "current" : g == s->reload.gen ? "new" : "old";
		json_append(&b, "%s{\"generation\":%u,\"pid\":%d,\"state\":", g == s->generations ? "" : ",", g->id,
			    (int)g->pid);
		json_append_string(&b, gen_state_to_string(g->state));
		json_append(&b, ",\"role\":\"%s\",\"uptime_ms\":%" PRIu64 ",\"status\":", role,
			    (now - g->started_usec) / USEC_PER_MSEC);
		json_append_string(&b, g->status);
		/* Figures: null where they are not known (no cgroup, or its controller is not enabled for it). */
		json_append(&b, ",\"cgroup\":%s,\"processes\":", g->in_cgroup ? "true" : "false");
		json_append(&b, g->processes >= 0 ? "%d" : "null", g->processes);
		json_append(&b, ",\"memory_bytes\":");
		json_append(&b, g->memory_bytes != UINT64_MAX ? "%" PRIu64 : "null", g->memory_bytes);
		json_append(&b, ",\"cpu_usec\":");
		json_append(&b, g->cpu_usec != UINT64_MAX ? "%" PRIu64 : "null", g->cpu_usec);
		json_append(&b, "}");
	}
	json_append(&b, "],\"listeners\":[");
	for (size_t i = 0; i < s->n_listeners; i++) {
		json_append(&b, "%s{\"name\":", i ? "," : "");
		json_append_string(&b, s->listeners[i].name);
		json_append(&b, ",\"fd\":%zu,\"address\":", 3 + i);
		json_append_string(&b, addr_format(&s->listeners[i].address, abuf));
		json_append(&b, ",\"inherited\":%s}", s->listeners[i].inherited ? "true" : "false");
	}
	bool reloading = s->state == SUP_RELOADING || s->state == SUP_CONFIRMING;
	json_append(&b, "],\"reload_in_progress\":%s,\"reload_queued\":%s,\"confirm\":", reloading ? "true" : "false",
		    s->reload_queued ? "true" : "false");
	append_confirm(&b, s, now);
	json_append(&b, ",\"last_reload\":");
	if (s->last_reload.seq) {
		json_append(&b, "{\"reload\":%" PRIu64 ",\"ok\":%s,\"message\":", s->last_reload.seq,
			    s->last_reload.ok ? "true" : "false");
		json_append_string(&b, s->last_reload.message);
		json_append(&b, ",\"duration_ms\":%" PRIu64 "}", s->last_reload.duration_usec / USEC_PER_MSEC);
	} else
		json_append(&b, "null");
	json_append(&b, ",\"restarts\":%u,\"failures_in_a_row\":%u,\"version\":", s->restarts, s->failures);
	json_append_string(&b, baton_version);
	json_append(&b, ",\"upgrades\":%u,\"upstream_held\":%zu", s->upgrades, notify_upstream_held());

	_cleanup_free_ char *text = status_text(s, pid, now);
	json_append(&b, ",\"text\":");
	json_append_string(&b, text);
	json_append(&b, "}");
	return json_buf_take(&b);
}

char *status_reload_reply(const struct reload_reply *r) {
	struct json_buf b = {0};
	json_append(&b, "{\"ok\":%s,\"reload\":%" PRIu64 ",\"%s\":", r->ok ? "true" : "false", r->seq,
		    r->ok ? "message" : "error");
	json_append_string(&b, r->message);
	if (r->ok && r->generation)
		json_append(&b, ",\"generation\":%u,\"pid\":%d,\"duration_ms\":%.3f,\"ready_ms\":%.3f", r->generation,
			    (int)r->pid, (double)r->duration_usec / 1000.0, (double)r->ready_usec / 1000.0);
	json_append(&b, "}");
	return json_buf_take(&b);
}

char *status_upgrade_reply(const char *from, unsigned upgrades, pid_t pid, uint64_t duration_usec) {
	struct json_buf b = {0};
	json_append(&b, "{\"ok\":true,\"message\":");
	_cleanup_free_ char *message = strdup_printf("baton %s is now baton %s (pid %d, upgrade %u), in %.1f ms", from,
						     baton_version, (int)pid, upgrades, (double)duration_usec / 1000.0);
	json_append_string(&b, message);
	json_append(&b, ",\"from\":");
	json_append_string(&b, from);
	json_append(&b, ",\"version\":");
	json_append_string(&b, baton_version);
	json_append(&b, ",\"upgrades\":%u,\"pid\":%d,\"duration_ms\":%.3f}", upgrades, (int)pid,
		    (double)duration_usec / 1000.0);
	return json_buf_take(&b);
}

char *status_stop_reply(int exit_status) {
	return strdup_printf("{\"ok\":true,\"exit_status\":%d}", exit_status);
}
