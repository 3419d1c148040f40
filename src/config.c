/* The configuration: schema, loading, strict validation, defaults and the command-line form (config-print.c has
 * the normalized print).
 *
 * Loading runs in four steps over one in-memory copy of the file (so every step sees the same bytes):
 *  1. libyaml loads the document: YAML syntax errors, an empty file, several documents. The document is kept to
 *     find the line of any key path later: libcyaml's own line numbers often point at the enclosing mapping.
 *  2. A walk of that document along the libcyaml schema: unknown keys, duplicate keys, wrong types (a list where a
 *     scalar belongs...), missing required keys and YAML nulls, each with the exact key path and line.
 *  3. libcyaml loads the document into raw structs in which every scalar is a string: libcyaml 1.3.1 reads "80abc"
 *     as 80, "010" as octal and "flase" as true, so numbers, booleans and durations are parsed by util.h's strict
 *     parsers instead. Should libcyaml still reject something step 2 let through, its own log lines make the message.
 *  4. Validation and conversion into struct config, with defaults; program.environment (a free-form mapping that
 *     libcyaml cannot describe, so the schema ignores it) is read from the libyaml document. */
#include "config.h"

#include <cyaml/cyaml.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml.h>

#include "util.h"

#define CONFIG_FILE_MAX (1024 * 1024)

/* ---- The schema: every scalar is read as a string, see step 3 above. ---- */

struct raw_listener {
	char *name, *address, *backlog, *reuse_port, *reuse_address, *ipv6_only, *freebind, *transparent, *keepalive,
		*nodelay, *defer_accept, *fastopen, *receive_buffer, *send_buffer, *mode, *owner, *group, *inherit;
};
struct raw_program {
	char **command;
	unsigned n_command;
	char *working_directory, *user, *group, *watchdog, *fd_store, *stdin_, *preload;
	char **compat;
	unsigned n_compat;
};
struct raw_readiness {
	char *type, *timeout, *interval, *pattern, *stream, *pid_file, *delay;
	char **command;
	unsigned n_command;
};
struct raw_reload {
	char *strategy, *signal;
};
struct raw_stop {
	char *signal, *timeout, *drain;
};
struct raw_restart {
	char *policy, *delay, *max_delay;
};
struct raw_control {
	char *socket;
};
struct raw_systemd {
	char *fd_store;
};
struct raw_config {
	struct raw_listener *listeners;
	unsigned n_listeners;
	struct raw_program *program;
	struct raw_readiness *readiness;
	struct raw_reload *reload;
	struct raw_stop *stop;
	struct raw_restart *restart;
	struct raw_control *control;
	struct raw_systemd *systemd;
};

#define STR(key, s, m) CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, s, m, 0, CYAML_UNLIMITED)
#define STR_REQUIRED(key, s, m) CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_DEFAULT, s, m, 0, CYAML_UNLIMITED)
#define SECTION(key, m, fields) CYAML_FIELD_MAPPING_PTR(key, CYAML_FLAG_OPTIONAL, struct raw_config, m, fields)

static const cyaml_schema_field_t listener_fields[] = {
	STR_REQUIRED("name", struct raw_listener, name),
	STR_REQUIRED("address", struct raw_listener, address),
	STR("backlog", struct raw_listener, backlog),
	STR("reuse-port", struct raw_listener, reuse_port),
	STR("reuse-address", struct raw_listener, reuse_address),
	STR("ipv6-only", struct raw_listener, ipv6_only),
	STR("freebind", struct raw_listener, freebind),
	STR("transparent", struct raw_listener, transparent),
	STR("keepalive", struct raw_listener, keepalive),
	STR("nodelay", struct raw_listener, nodelay),
	STR("defer-accept", struct raw_listener, defer_accept),
	STR("fastopen", struct raw_listener, fastopen),
	STR("receive-buffer", struct raw_listener, receive_buffer),
	STR("send-buffer", struct raw_listener, send_buffer),
	STR("mode", struct raw_listener, mode),
	STR("owner", struct raw_listener, owner),
	STR("group", struct raw_listener, group),
	STR("inherit", struct raw_listener, inherit),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t listener_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_listener, listener_fields),
};
static const cyaml_schema_value_t string_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};
static const cyaml_schema_field_t program_fields[] = {
	CYAML_FIELD_SEQUENCE_COUNT("command", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, struct raw_program, command,
				   n_command, &string_schema, 0, CYAML_UNLIMITED),
	/* A free-form mapping: read from the libyaml document by read_environment(). */
	CYAML_FIELD_IGNORE("environment", CYAML_FLAG_OPTIONAL),
	STR("working-directory", struct raw_program, working_directory),
	STR("user", struct raw_program, user),
	STR("group", struct raw_program, group),
	STR("watchdog", struct raw_program, watchdog),
	STR("fd-store", struct raw_program, fd_store),
	STR("stdin", struct raw_program, stdin_),
	STR("preload", struct raw_program, preload),
	CYAML_FIELD_SEQUENCE_COUNT("compat", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, struct raw_program, compat,
				   n_compat, &string_schema, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t readiness_fields[] = {
	STR("type", struct raw_readiness, type),
	STR("timeout", struct raw_readiness, timeout),
	CYAML_FIELD_SEQUENCE_COUNT("command", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, struct raw_readiness, command,
				   n_command, &string_schema, 0, CYAML_UNLIMITED),
	STR("interval", struct raw_readiness, interval),
	STR("pattern", struct raw_readiness, pattern),
	STR("stream", struct raw_readiness, stream),
	STR("pid-file", struct raw_readiness, pid_file),
	STR("delay", struct raw_readiness, delay),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t reload_fields[] = {
	STR("strategy", struct raw_reload, strategy),
	STR("signal", struct raw_reload, signal),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t stop_fields[] = {
	STR("signal", struct raw_stop, signal),
	STR("timeout", struct raw_stop, timeout),
	STR("drain", struct raw_stop, drain),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t restart_fields[] = {
	STR("policy", struct raw_restart, policy),
	STR("delay", struct raw_restart, delay),
	STR("max-delay", struct raw_restart, max_delay),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t control_fields[] = {
	STR("socket", struct raw_control, socket),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t systemd_fields[] = {
	STR("fd-store", struct raw_systemd, fd_store),
	CYAML_FIELD_END,
};
static const cyaml_schema_field_t config_fields[] = {
	CYAML_FIELD_SEQUENCE_COUNT("listeners", CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, struct raw_config, listeners,
				   n_listeners, &listener_schema, 0, CYAML_UNLIMITED),
	SECTION("program", program, program_fields),
	SECTION("readiness", readiness, readiness_fields),
	SECTION("reload", reload, reload_fields),
	SECTION("stop", stop, stop_fields),
	SECTION("restart", restart, restart_fields),
	SECTION("control", control, control_fields),
	SECTION("systemd", systemd, systemd_fields),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t config_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, config_fields),
};

/* ---- Enum names ---- */

static const char *const inherit_names[_INHERIT_MAX] = {"auto", "required", "never"};
static const char *const readiness_names[_READINESS_MAX] = {"notify", "exec", "log", "pidfile", "delay", "none"};
static const char *const stream_names[_STREAM_MAX] = {"both", "stdout", "stderr"};
static const char *const reload_names[_RELOAD_STRATEGY_MAX] = {"replace", "restart", "signal"};
static const char *const restart_names[_RESTART_POLICY_MAX] = {"on-failure", "always", "never"};
static const char *const fd_store_names[_FD_STORE_MAX] = {"auto", "true", "false"};

const char *inherit_mode_to_string(enum inherit_mode m) {
	return m >= 0 && m < _INHERIT_MAX ? inherit_names[m] : NULL;
}
const char *readiness_type_to_string(enum readiness_type t) {
	return t >= 0 && t < _READINESS_MAX ? readiness_names[t] : NULL;
}
const char *reload_strategy_to_string(enum reload_strategy s) {
	return s >= 0 && s < _RELOAD_STRATEGY_MAX ? reload_names[s] : NULL;
}
const char *output_stream_to_string(enum output_stream st) {
	return st >= 0 && st < _STREAM_MAX ? stream_names[st] : NULL;
}

const char *fd_store_mode_to_string(enum fd_store_mode m) {
	return m >= 0 && m < _FD_STORE_MAX ? fd_store_names[m] : NULL;
}
const char *restart_policy_to_string(enum restart_policy p) {
	return p >= 0 && p < _RESTART_POLICY_MAX ? restart_names[p] : NULL;
}

bool config_name_valid(const char *name) {
	size_t n = strlen(name);
	if (n == 0 || n > LISTENER_NAME_MAX)
		return false;
	/* ':' separates the names in LISTEN_FDNAMES (sd_listen_fds_with_names(3)). */
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* ---- Error messages ---- */

struct loader {
	const char *path;
	yaml_document_t doc;
	bool have_doc;
	char *error; /* the first error wins */
	char cyaml_log[4096];
	size_t cyaml_log_len;
};

/* A value quoted in a message: control characters escaped, long values cut. */
static const char *escape(const char *s, size_t len, char buf[static 128]) {
	size_t j = 0;
	for (size_t i = 0; i < len && j < 100; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n')
			j += (size_t)snprintf(buf + j, 128 - j, "\\n");
		else if (ch == '\t')
			j += (size_t)snprintf(buf + j, 128 - j, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			j += (size_t)snprintf(buf + j, 128 - j, "\\x%02x", ch);
		else
			buf[j++] = (char)ch;
		if (j < 100 && i + 1 < len)
			continue;
		if (i + 1 < len)
			j += (size_t)snprintf(buf + j, 128 - j, "...");
		break;
	}
	buf[j] = '\0';
	return buf;
}

/* Sets "FILE: key 'KEY': WHY (line N)"; key may be NULL (a file-level error), node may be NULL (no line known). */
__attribute__((format(printf, 4, 5))) static int fail(struct loader *l, const char *key, const yaml_node_t *node,
						      const char *fmt, ...) {
	char why[1024];
	va_list ap;

	if (l->error)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);

	char line[32] = "";
	if (node)
		snprintf(line, sizeof(line), " (line %zu)", node->start_mark.line + 1);
	int r;
	if (key && *key)
		r = asprintf(&l->error, "%s: key '%s': %s%s", l->path, key, why, line);
	else
		r = asprintf(&l->error, "%s: %s%s", l->path, why, line);
	if (r < 0) {
		l->error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

static yaml_node_t *node_get(struct loader *l, int index) {
	return yaml_document_get_node(&l->doc, index);
}

static bool scalar_is(const yaml_node_t *n, const char *s, size_t len) {
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
	       memcmp(n->data.scalar.value, s, len) == 0;
}

/* The node at a key path such as "listeners[1].address", for its line; NULL when not in the file. */
static yaml_node_t *doc_find(struct loader *l, const char *path) {
	if (!l->have_doc)
		return NULL;
	yaml_node_t *n = yaml_document_get_root_node(&l->doc);
	const char *p = path;
	while (n && *p) {
		if (*p == '[') {
			char *end;
			unsigned long idx = strtoul(p + 1, &end, 10);
			if (*end != ']' || n->type != YAML_SEQUENCE_NODE)
				return NULL;
			if (idx >= (unsigned long)(n->data.sequence.items.top - n->data.sequence.items.start))
				return NULL;
			n = node_get(l, n->data.sequence.items.start[idx]);
			p = end + 1;
			continue;
		}
		if (*p == '.')
			p++;
		size_t len = strcspn(p, ".[");
		if (n->type != YAML_MAPPING_NODE)
			return NULL;
		yaml_node_t *found = NULL;
		for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++)
			if (scalar_is(node_get(l, pair->key), p, len)) {
				found = node_get(l, pair->value);
				break;
			}
		n = found;
		p += len;
	}
	return n;
}

/* "FILE: key 'KEY': WHY: 'VALUE' (line N)", the line being that of KEY's value in the file. */
static int fail_value(struct loader *l, const char *key, const char *why, const char *value) {
	char buf[128];
	return fail(l, key, doc_find(l, key), "%s: '%s'", why, escape(value, strlen(value), buf));
}

/* ---- Step 1: the libyaml document ---- */

static int syntax_error(struct loader *l, const yaml_parser_t *p) {
	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->context)
		return fail(l, NULL, NULL, "YAML syntax error: %s (line %zu): %s (line %zu)", p->context,
			    p->context_mark.line + 1, strempty(p->problem), p->problem_mark.line + 1);
	return fail(l, NULL, NULL, "YAML syntax error: %s (line %zu)", strempty(p->problem), p->problem_mark.line + 1);
}

/* A plain ~, null or nothing: YAML's null, which libcyaml would silently read as the string "~" or "". */
static bool node_is_null(const yaml_node_t *n) {
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

static int load_document(struct loader *l, const char *text, size_t len) {
	yaml_parser_t parser;
	int r = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &l->doc)) {
		r = syntax_error(l, &parser);
		goto out;
	}
	l->have_doc = true;

	yaml_node_t *root = yaml_document_get_root_node(&l->doc);
	if (!root || node_is_null(root)) {
		r = fail(l, NULL, NULL, "empty config");
		goto out;
	}

	/* libcyaml reads only the first document: a second one would be ignored without a word. */
	yaml_document_t next;
	if (!yaml_parser_load(&parser, &next)) {
		r = syntax_error(l, &parser);
		goto out;
	}
	if (yaml_document_get_root_node(&next))
		r = fail(l, NULL, NULL, "more than one YAML document (line %zu)", next.start_mark.line + 1);
	yaml_document_delete(&next);
out:
	yaml_parser_delete(&parser);
	return r;
}

/* ---- Step 2: the document walked along the schema ---- */

static const char *node_kind(const yaml_node_t *n) {
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return node_is_null(n) ? "an empty value" : "a scalar";
}

static int wrong_type(struct loader *l, const char *key, const yaml_node_t *n, const char *want) {
	char buf[128];
	if (n->type == YAML_SCALAR_NODE && !node_is_null(n))
		return fail(l, key, n, "expected %s, got a scalar: '%s'", want,
			    escape((const char *)n->data.scalar.value, n->data.scalar.length, buf));
	if (node_is_null(n) && !strcmp(want, "a scalar value"))
		return fail(l, key, n, "empty value (write \"\" for an empty string)");
	return fail(l, key, n, "expected %s, got %s", want, node_kind(n));
}

/* path is a buffer of PATH_BUF bytes holding the key path of n; each level appends to it and cuts it back. */
#define PATH_BUF 512

static int walk(struct loader *l, yaml_node_t *n, const cyaml_schema_value_t *schema, char *path);

static int walk_mapping(struct loader *l, yaml_node_t *n, const cyaml_schema_field_t *fields, char *path) {
	size_t base = strlen(path);
	uint64_t seen = 0;
	int r;

	if (n->type != YAML_MAPPING_NODE)
		return wrong_type(l, base ? path : "(top level)", n, "a mapping");

	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		if (k->type != YAML_SCALAR_NODE)
			return fail(l, base ? path : NULL, k, "a key must be a scalar, not %s", node_kind(k));

		char buf[128];
		snprintf(path + base, PATH_BUF - base, "%s%s", base ? "." : "",
			 escape((const char *)k->data.scalar.value, k->data.scalar.length, buf));
		size_t i;
		for (i = 0; fields[i].key; i++)
			if (scalar_is(k, fields[i].key, strlen(fields[i].key)))
				break;
		if (!fields[i].key) {
			char known[512] = "";
			for (size_t j = 0, m = 0; fields[j].key && m < sizeof(known); j++)
				m += (size_t)snprintf(known + m, sizeof(known) - m, "%s%s", j ? ", " : "",
						      fields[j].key);
			return fail(l, path, k, "unknown key (expected one of: %s)", known);
		}
		if (seen & (UINT64_C(1) << i)) {
			/* The first occurrence, for the message: the same key earlier in this mapping. */
			size_t first = 0;
			for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pair; q++)
				if (scalar_is(node_get(l, q->key), fields[i].key, strlen(fields[i].key))) {
					first = node_get(l, q->key)->start_mark.line + 1;
					break;
				}
			return fail(l, path, k, "duplicate key (first at line %zu)", first);
		}
		seen |= UINT64_C(1) << i;
		if (fields[i].value.type != CYAML_IGNORE) {
			r = walk(l, v, &fields[i].value, path);
			if (r < 0)
				return r;
		}
		path[base] = '\0';
	}

	for (size_t i = 0; fields[i].key; i++)
		if (!(fields[i].value.flags & CYAML_FLAG_OPTIONAL) && !(seen & (UINT64_C(1) << i))) {
			snprintf(path + base, PATH_BUF - base, "%s%s", base ? "." : "", fields[i].key);
			return fail(l, path, n, "missing (this key is required)");
		}
	return 0;
}

static int walk(struct loader *l, yaml_node_t *n, const cyaml_schema_value_t *schema, char *path) {
	switch (schema->type) {
	case CYAML_MAPPING:
		return walk_mapping(l, n, schema->mapping.fields, path);
	case CYAML_SEQUENCE: {
		if (n->type != YAML_SEQUENCE_NODE)
			return wrong_type(l, path, n, "a list");
		size_t base = strlen(path);
		for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			snprintf(path + base, PATH_BUF - base, "[%zu]", (size_t)(it - n->data.sequence.items.start));
			int r = walk(l, node_get(l, *it), schema->sequence.entry, path);
			if (r < 0)
				return r;
		}
		path[base] = '\0';
		return 0;
	}
	case CYAML_STRING:
		if (n->type != YAML_SCALAR_NODE || node_is_null(n))
			return wrong_type(l, path, n, "a scalar value");
		if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
			return fail(l, path, n, "value contains a NUL character");
		return 0;
	default:
		return 0;
	}
}

/* ---- Step 3: libcyaml ---- */

/* libcyaml's log lines (the reason, then "Backtrace:" and "  in mapping field 'x' ..." lines) are collected for
 * the rare error that step 2 did not catch first. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void cyaml_log_collect(cyaml_log_t level, void *ctx, const char *fmt, va_list ap) {
	struct loader *l = ctx;
	size_t room = sizeof(l->cyaml_log) - l->cyaml_log_len;
	if (room <= 1)
		return;
	int n = vsnprintf(l->cyaml_log + l->cyaml_log_len, room, fmt, ap);
	if (n > 0)
		l->cyaml_log_len += (size_t)n < room ? (size_t)n : room - 1;
}
#pragma GCC diagnostic pop

static int cyaml_error(struct loader *l, cyaml_err_t e) {
	char reason[256] = "", key[PATH_BUF] = "", *line, *save = NULL;
	char entries[16][130];
	size_t n_entries = 0;

	if (e == CYAML_ERR_OOM)
		return -ENOMEM;
	for (line = strtok_r(l->cyaml_log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *s = line;
		if (!strncmp(s, "Load: ", 6))
			s += 6;
		char name[128];
		unsigned idx;
		if (sscanf(s, " in mapping field '%127[^']'", name) == 1 && n_entries < ARRAY_SIZE(entries))
			snprintf(entries[n_entries++], sizeof(entries[0]), ".%s", name);
		/* libcyaml counts sequence entries from 1. */
		else if (sscanf(s, " in sequence entry '%u'", &idx) == 1 && idx > 0 && n_entries < ARRAY_SIZE(entries))
			snprintf(entries[n_entries++], sizeof(entries[0]), "[%u]", idx - 1);
		else if (!reason[0] && strncmp(s, "Backtrace:", 10) != 0 && strncmp(s, "  in ", 5) != 0)
			snprintf(reason, sizeof(reason), "%s", s);
	}
	/* On a missing field the innermost entry is the mapping's last field read, not the missing one. */
	char missing[128];
	bool is_missing = sscanf(reason, "Missing required mapping field: %127s", missing) == 1;
	if (is_missing && n_entries > 0 && entries[0][0] == '.')
		memmove(entries, entries + 1, --n_entries * sizeof(entries[0]));
	/* The backtrace lists the innermost first. */
	size_t m = 0;
	for (size_t i = n_entries; i-- > 0 && m < sizeof(key);)
		m += (size_t)snprintf(key + m, sizeof(key) - m, "%s", entries[i] + (m == 0 && entries[i][0] == '.'));
	/* libcyaml's own line numbers are often those of an enclosing mapping: give a line only where the key path
	 * leads to the node at fault (a wrong type), or to the mapping that lacks a key. */
	const yaml_node_t *node = NULL;
	if (is_missing || !strncmp(reason, "Expecting ", 10))
		node = doc_find(l, key);
	if (is_missing && m < sizeof(key))
		snprintf(key + m, sizeof(key) - m, "%s%s", m ? "." : "", missing);
	return fail(l, key, node, "%s", reason[0] ? reason : cyaml_strerror(e));
}

/* ---- Step 4: validation and conversion ---- */

static int get_bool(struct loader *l, const char *key, const char *s, bool *ret) {
	if (s && parse_bool(s, ret) < 0)
		return fail_value(l, key, "expected true or false", s);
	return 0;
}

static int get_uint(struct loader *l, const char *key, const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
	uint64_t v;
	char why[96];

	if (!s)
		return 0;
	int r = parse_uint_max(s, max, &v);
	if (r == -EINVAL) {
		snprintf(why, sizeof(why),
			 "expected a decimal number %" PRIu64 "-%" PRIu64 " (no sign, no leading zero)", min, max);
		return fail_value(l, key, why, s);
	}
	if (r < 0 || v < min) {
		snprintf(why, sizeof(why), "out of range %" PRIu64 "-%" PRIu64, min, max);
		return fail_value(l, key, why, s);
	}
	*ret = v;
	return 0;
}

static int get_duration(struct loader *l, const char *key, const char *s, bool positive, uint64_t *ret) {
	uint64_t v;

	if (!s)
		return 0;
	int r = parse_duration(s, &v);
	if (r == -ERANGE)
		return fail_value(l, key, "duration too long", s);
	if (r < 0)
		return fail_value(l, key, "expected a duration with its unit, such as 250ms, 30s, 5m or 1h", s);
	if (positive && v == 0)
		return fail_value(l, key, "must be longer than 0s", s);
	*ret = v;
	return 0;
}

static int get_signal(struct loader *l, const char *key, const char *s, int *ret) {
	if (s && parse_signal(s, ret) < 0)
		return fail_value(l, key, "expected a signal such as SIGTERM, TERM or 15", s);
	return 0;
}

static int get_enum(struct loader *l, const char *key, const char *s, const char *const *names, size_t n, int *ret) {
	if (!s)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (streq(s, names[i])) {
			*ret = (int)i;
			return 0;
		}
	char why[128] = "expected ";
	for (size_t i = 0, m = strlen(why); i < n && m < sizeof(why); i++)
		m += (size_t)snprintf(why + m, sizeof(why) - m, "%s%s",
				      i == 0       ? ""
				      : i + 1 == n ? " or "
						   : ", ",
				      names[i]);
	return fail_value(l, key, why, s);
}

/* A command: a non-empty sequence, no empty program name or argument. */
static int get_command(struct loader *l, const char *key, char *const *args, unsigned n, char ***ret) {
	if (n == 0)
		return fail(l, key, doc_find(l, key), "empty command");
	char **cmd = calloc(n + 1, sizeof(char *));
	if (!cmd)
		return -ENOMEM;
	*ret = cmd; /* freed with the config on failure */
	for (unsigned i = 0; i < n; i++) {
		char k[64];
		snprintf(k, sizeof(k), "%s[%u]", key, i);
		if (!args[i][0])
			return fail_value(l, k, i == 0 ? "empty program name" : "empty argument", "");
		if (!(cmd[i] = strdup(args[i])))
			return -ENOMEM;
	}
	return 0;
}

static int get_string(struct loader *l, const char *key, const char *s, char **ret) {
	if (!s)
		return 0;
	if (!*s)
		return fail_value(l, key, "must not be empty", s);
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	free(*ret);
	*ret = copy;
	return 0;
}

static void listener_defaults(struct listener_config *lc) {
	*lc = (struct listener_config){
		.backlog = SOMAXCONN,
		.reuse_address = true,
		.ipv6_only = -1,
		.mode = -1,
		.inherit = INHERIT_AUTO,
	};
}

static bool addr_is_ipv4(const struct address *a) {
	return a->family == AF_INET || (a->host_numeric && !strchr(a->host, ':'));
}

/* An option given for a kind of socket it does not apply to is an error, not silently ignored. */
static int check_applies(struct loader *l, const char *prefix, const char *option, const char *value, bool applies,
			 const char *only_for, const struct address *a) {
	char key[64], why[ADDR_FORMAT_MAX + 128], abuf[ADDR_FORMAT_MAX];

	if (!value || applies)
		return 0;
	snprintf(key, sizeof(key), "%s.%s", prefix, option);
	snprintf(why, sizeof(why), "only for %s (this listener is %s)", only_for, addr_format(a, abuf));
	return fail_value(l, key, why, value);
}

static int load_listener(struct loader *l, size_t i, const struct raw_listener *r, struct listener_config *lc) {
	char prefix[32], key[64];
	const char *why = NULL;
	uint64_t v;
	int k;

	snprintf(prefix, sizeof(prefix), "listeners[%zu]", i);
#define KEY(option) (snprintf(key, sizeof(key), "%s.%s", prefix, option), key)

	if (!config_name_valid(r->name))
		return fail_value(l, KEY("name"), "invalid name (1-255 characters of A-Z a-z 0-9 . _ -)", r->name);
	lc->name = strdup(r->name);
	if (!lc->name)
		return -ENOMEM;
	if (addr_parse(r->address, &lc->address, &why) < 0)
		return fail_value(l, KEY("address"), why, r->address);

	const struct address *a = &lc->address;
	bool tcp = a->kind == ADDR_TCP, ip = !addr_is_unix(a), unix_path = addr_is_unix(a) && !a->abstract;
	struct {
		const char *option, *value;
		bool applies;
		const char *only_for;
	} applies[] = {
		{"backlog", r->backlog, addr_is_stream(a), "stream sockets (tcp, unix, unix-seqpacket)"},
		{"reuse-port", r->reuse_port, ip, "tcp and udp addresses"},
		/* SO_REUSEADDR on UDP lets a second socket bind the same port: not something to switch on by default.
		 */
		{"reuse-address", r->reuse_address, tcp, "tcp addresses"},
		{"ipv6-only", r->ipv6_only, ip && !addr_is_ipv4(a), "tcp and udp addresses that can be IPv6"},
		{"freebind", r->freebind, ip, "tcp and udp addresses"},
		{"transparent", r->transparent, ip, "tcp and udp addresses"},
		{"keepalive", r->keepalive, tcp, "tcp addresses"},
		{"nodelay", r->nodelay, tcp, "tcp addresses"},
		{"defer-accept", r->defer_accept, tcp, "tcp addresses"},
		{"fastopen", r->fastopen, tcp, "tcp addresses"},
		{"mode", r->mode, unix_path, "unix socket paths (not abstract names)"},
		{"owner", r->owner, unix_path, "unix socket paths (not abstract names)"},
		{"group", r->group, unix_path, "unix socket paths (not abstract names)"},
	};
	for (size_t j = 0; j < ARRAY_SIZE(applies); j++) {
		k = check_applies(l, prefix, applies[j].option, applies[j].value, applies[j].applies,
				  applies[j].only_for, a);
		if (k < 0)
			return k;
	}

	v = (uint64_t)lc->backlog;
	if ((k = get_uint(l, KEY("backlog"), r->backlog, 1, INT_MAX, &v)) < 0)
		return k;
	lc->backlog = (int)v;
	if ((k = get_bool(l, KEY("reuse-port"), r->reuse_port, &lc->reuse_port)) < 0 ||
	    (k = get_bool(l, KEY("reuse-address"), r->reuse_address, &lc->reuse_address)) < 0 ||
	    (k = get_bool(l, KEY("freebind"), r->freebind, &lc->freebind)) < 0 ||
	    (k = get_bool(l, KEY("transparent"), r->transparent, &lc->transparent)) < 0 ||
	    (k = get_bool(l, KEY("keepalive"), r->keepalive, &lc->keepalive)) < 0 ||
	    (k = get_bool(l, KEY("nodelay"), r->nodelay, &lc->nodelay)) < 0)
		return k;
	if (r->ipv6_only) {
		bool b;
		if ((k = get_bool(l, KEY("ipv6-only"), r->ipv6_only, &b)) < 0)
			return k;
		lc->ipv6_only = b;
	}
	/* TCP_DEFER_ACCEPT takes whole seconds (tcp(7)): a fraction would be rounded behind the user's back. */
	if ((k = get_duration(l, KEY("defer-accept"), r->defer_accept, false, &lc->defer_accept_usec)) < 0)
		return k;
	if (lc->defer_accept_usec % USEC_PER_SEC != 0 || lc->defer_accept_usec / USEC_PER_SEC > INT_MAX)
		return fail_value(l, KEY("defer-accept"), "must be whole seconds", r->defer_accept);
	/* setsockopt() takes an int, so everything that goes there stays within INT_MAX. */
	v = 0;
	if ((k = get_uint(l, KEY("fastopen"), r->fastopen, 0, INT_MAX, &v)) < 0)
		return k;
	lc->fastopen = (uint32_t)v;
	v = 0;
	if ((k = get_uint(l, KEY("receive-buffer"), r->receive_buffer, 0, INT_MAX, &v)) < 0)
		return k;
	lc->receive_buffer = (uint32_t)v;
	v = 0;
	if ((k = get_uint(l, KEY("send-buffer"), r->send_buffer, 0, INT_MAX, &v)) < 0)
		return k;
	lc->send_buffer = (uint32_t)v;

	/* The mode is 3 or 4 octal digits ("660", "0660", "1777"), read as octal whether the YAML quotes it or not:
	 * a YAML 1.1 reader would take a plain 0660 as octal too, and chmod(1) users write it that way. */
	if (r->mode) {
		size_t n = strlen(r->mode);
		if (n < 3 || n > 4 || strspn(r->mode, "01234567") != n)
			return fail_value(l, KEY("mode"), "expected 3 or 4 octal digits such as \"0660\"", r->mode);
		lc->mode = (int)strtol(r->mode, NULL, 8);
	}
	if ((k = get_string(l, KEY("owner"), r->owner, &lc->owner)) < 0 ||
	    (k = get_string(l, KEY("group"), r->group, &lc->group)) < 0)
		return k;
	int e = (int)lc->inherit;
	if ((k = get_enum(l, KEY("inherit"), r->inherit, inherit_names, _INHERIT_MAX, &e)) < 0)
		return k;
	lc->inherit = (enum inherit_mode)e;
#undef KEY
	return 0;
}

/* Names and addresses are unique: a name is how the child finds its fd, and two listeners cannot bind one address. */
static int check_unique(struct loader *l, const struct listener_config *ls, size_t n) {
	char key[64], why[64], abuf[ADDR_FORMAT_MAX];

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			if (streq(ls[i].name, ls[j].name)) {
				snprintf(key, sizeof(key), "listeners[%zu].name", i);
				snprintf(why, sizeof(why), "duplicate listener name (also listeners[%zu])", j);
				return fail_value(l, key, why, ls[i].name);
			}
			if (addr_equal(&ls[i].address, &ls[j].address)) {
				snprintf(key, sizeof(key), "listeners[%zu].address", i);
				snprintf(why, sizeof(why), "duplicate address (also listeners[%zu], '%s')", j,
					 ls[j].name);
				return fail_value(l, key, why, addr_format(&ls[i].address, abuf));
			}
		}
	return 0;
}

/* An environment variable name: no '=' (it ends the name) and nothing the shell or env(1) could not pass on. */
static bool env_name_valid(const char *s, size_t len) {
	if (len == 0 || strlen(s) != len || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '=' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

static int read_environment(struct loader *l, char ***ret) {
	yaml_node_t *n = doc_find(l, "program.environment");
	char **env = NULL, buf[128], key[PATH_BUF];
	int r;

	if (!n)
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return wrong_type(l, "program.environment", n, "a mapping of NAME: value");
	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		if (k->type != YAML_SCALAR_NODE) {
			r = fail(l, "program.environment", k, "a key must be a scalar, not %s", node_kind(k));
			goto fail;
		}
		const char *name = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "program.environment.%s", escape(name, k->data.scalar.length, buf));
		if (!env_name_valid(name, k->data.scalar.length)) {
			r = fail(l, key, k,
				 "invalid variable name (no '=', spaces or control characters; not starting "
				 "with a digit): '%s'",
				 buf);
			goto fail;
		}
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pair; q++)
			if (scalar_is(node_get(l, q->key), name, k->data.scalar.length)) {
				r = fail(l, key, k, "duplicate key (first at line %zu)",
					 node_get(l, q->key)->start_mark.line + 1);
				goto fail;
			}
		if (v->type != YAML_SCALAR_NODE || node_is_null(v)) {
			r = wrong_type(l, key, v, "a scalar value");
			goto fail;
		}
		if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length) {
			r = fail(l, key, v, "value contains a NUL character");
			goto fail;
		}
		char *kv;
		if (asprintf(&kv, "%s=%s", name, (const char *)v->data.scalar.value) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		r = strv_extend(&env, kv);
		free(kv);
		if (r < 0)
			goto fail;
	}
	*ret = env; /* NULL for an empty mapping */
	return 0;
fail:
	strv_free(env);
	return r;
}

static int load_program(struct loader *l, const struct raw_program *p, struct config *c) {
	int r;

	if (doc_find(l, "program.command") &&
	    (r = get_command(l, "program.command", p->command, p->n_command, &c->command)) < 0)
		return r;
	r = read_environment(l, &c->environment);
	if (r < 0)
		return r;
	if (p->working_directory && p->working_directory[0] != '/')
		return fail_value(l, "program.working-directory", "must be an absolute path", p->working_directory);
	if ((r = get_string(l, "program.working-directory", p->working_directory, &c->working_directory)) < 0 ||
	    (r = get_string(l, "program.user", p->user, &c->user)) < 0 ||
	    (r = get_string(l, "program.group", p->group, &c->group)) < 0 ||
	    (r = get_duration(l, "program.watchdog", p->watchdog, false, &c->program_watchdog_usec)) < 0 ||
	    (r = get_bool(l, "program.fd-store", p->fd_store, &c->program_fd_store)) < 0 ||
	    (r = get_bool(l, "program.preload", p->preload, &c->preload)) < 0)
		return r;
	if (p->stdin_ && !config_name_valid(p->stdin_))
		return fail_value(l, "program.stdin", "expected a listener name", p->stdin_);
	if ((r = get_string(l, "program.stdin", p->stdin_, &c->stdin_listener)) < 0)
		return r;
	for (unsigned i = 0; i < p->n_compat; i++) {
		char key[64];
		snprintf(key, sizeof(key), "program.compat[%u]", i);
		if (streq(p->compat[i], "server-starter") && !c->compat_server_starter)
			c->compat_server_starter = true;
		else if (streq(p->compat[i], "einhorn") && !c->compat_einhorn)
			c->compat_einhorn = true;
		else if (streq(p->compat[i], "server-starter") || streq(p->compat[i], "einhorn"))
			return fail_value(l, key, "duplicate entry", p->compat[i]);
		else
			return fail_value(l, key, "expected server-starter or einhorn", p->compat[i]);
	}
	return 0;
}

/* The readiness keys that belong to one type; a key given for another type would be silently unused, which hides a
 * typo in readiness.type: it is an error. */
static int load_readiness(struct loader *l, const struct raw_readiness *rd, struct config *c) {
	int r, e = (int)c->readiness_type;
	if ((r = get_enum(l, "readiness.type", rd->type, readiness_names, _READINESS_MAX, &e)) < 0 ||
	    (r = get_duration(l, "readiness.timeout", rd->timeout, true, &c->readiness_timeout_usec)) < 0 ||
	    (r = get_duration(l, "readiness.interval", rd->interval, true, &c->readiness_interval_usec)) < 0 ||
	    (r = get_duration(l, "readiness.delay", rd->delay, false, &c->readiness_delay_usec)) < 0)
		return r;
	enum readiness_type t = c->readiness_type = (enum readiness_type)e;
	const char *type = readiness_names[t];
	const struct {
		const char *key;
		bool given, wanted;
	} keys[] = {
		{"readiness.command", doc_find(l, "readiness.command") != NULL, t == READINESS_EXEC},
		{"readiness.interval", rd->interval != NULL, t == READINESS_EXEC || t == READINESS_PIDFILE},
		{"readiness.pattern", rd->pattern != NULL, t == READINESS_LOG},
		{"readiness.stream", rd->stream != NULL, t == READINESS_LOG},
		{"readiness.pid-file", rd->pid_file != NULL, t == READINESS_PIDFILE},
		{"readiness.delay", rd->delay != NULL, t == READINESS_DELAY},
	};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].given && !keys[i].wanted)
			return fail(l, keys[i].key, doc_find(l, keys[i].key), "not used with readiness.type %s", type);
	static const char *const needs[_READINESS_MAX] = {
		[READINESS_EXEC] = "readiness.command",
		[READINESS_LOG] = "readiness.pattern",
		[READINESS_PIDFILE] = "readiness.pid-file",
		[READINESS_DELAY] = "readiness.delay",
	};
	bool have[_READINESS_MAX] = {
		[READINESS_EXEC] = doc_find(l, "readiness.command") != NULL,
		[READINESS_LOG] = rd->pattern != NULL,
		[READINESS_PIDFILE] = rd->pid_file != NULL,
		[READINESS_DELAY] = rd->delay != NULL,
	};
	if (needs[t] && !have[t])
		return fail(l, "readiness.type", doc_find(l, "readiness.type"), "readiness.type %s needs %s", type,
			    needs[t]);

	if (t == READINESS_EXEC &&
	    (r = get_command(l, "readiness.command", rd->command, rd->n_command, &c->readiness_command)) < 0)
		return r;
	if (rd->pid_file && rd->pid_file[0] != '/')
		return fail_value(l, "readiness.pid-file", "must be an absolute path", rd->pid_file);
	if ((r = get_string(l, "readiness.pid-file", rd->pid_file, &c->readiness_pid_file)) < 0)
		return r;
	e = (int)c->readiness_stream;
	if ((r = get_enum(l, "readiness.stream", rd->stream, stream_names, _STREAM_MAX, &e)) < 0)
		return r;
	c->readiness_stream = (enum output_stream)e;
	if (rd->pattern) {
		if (!rd->pattern[0])
			return fail_value(l, "readiness.pattern", "must not be empty", rd->pattern);
		/* REG_NEWLINE: a line is matched on its own, so ^ and $ mean its start and end. */
		int rc = regcomp(&c->readiness_regex, rd->pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
		if (rc != 0) {
			char why[160] = "invalid regular expression: ";
			size_t m = strlen(why);
			regerror(rc, &c->readiness_regex, why + m, sizeof(why) - m);
			return fail_value(l, "readiness.pattern", why, rd->pattern);
		}
		if (!(c->readiness_pattern = strdup(rd->pattern))) {
			regfree(&c->readiness_regex);
			return -ENOMEM;
		}
	}
	return 0;
}

static int load_sections(struct loader *l, const struct raw_config *raw, struct config *c) {
	int r, e;

	if (raw->readiness && (r = load_readiness(l, raw->readiness, c)) < 0)
		return r;
	if (raw->reload) {
		e = (int)c->reload_strategy;
		if ((r = get_enum(l, "reload.strategy", raw->reload->strategy, reload_names, _RELOAD_STRATEGY_MAX,
				  &e)) < 0 ||
		    (r = get_signal(l, "reload.signal", raw->reload->signal, &c->reload_signal)) < 0)
			return r;
		c->reload_strategy = (enum reload_strategy)e;
	}
	if (raw->stop) {
		if ((r = get_signal(l, "stop.signal", raw->stop->signal, &c->stop_signal)) < 0 ||
		    (r = get_duration(l, "stop.timeout", raw->stop->timeout, true, &c->stop_timeout_usec)) < 0 ||
		    (r = get_duration(l, "stop.drain", raw->stop->drain, false, &c->stop_drain_usec)) < 0)
			return r;
		if (c->stop_drain_usec > 0 && !c->preload)
			return fail_value(l, "stop.drain",
					  "needs program.preload: true (the shim stops the old generation accepting)",
					  raw->stop->drain);
	}
	if (raw->restart) {
		e = (int)c->restart_policy;
		/* A zero delay would double to zero forever: a program that dies at once would be restarted in a loop.
		 */
		if ((r = get_enum(l, "restart.policy", raw->restart->policy, restart_names, _RESTART_POLICY_MAX, &e)) <
			    0 ||
		    (r = get_duration(l, "restart.delay", raw->restart->delay, true, &c->restart_delay_usec)) < 0 ||
		    (r = get_duration(l, "restart.max-delay", raw->restart->max_delay, true,
				      &c->restart_max_delay_usec)) < 0)
			return r;
		c->restart_policy = (enum restart_policy)e;
		if (c->restart_delay_usec > c->restart_max_delay_usec) {
			char why[64], buf[32];
			snprintf(why, sizeof(why), "longer than restart.max-delay (%s)",
				 format_duration(c->restart_max_delay_usec, buf));
			const char *key = raw->restart->delay ? "restart.delay" : "restart.max-delay";
			return fail_value(l, key, why,
					  raw->restart->delay ? raw->restart->delay : raw->restart->max_delay);
		}
	}
	if (raw->systemd) {
		e = (int)c->fd_store;
		if ((r = get_enum(l, "systemd.fd-store", raw->systemd->fd_store, fd_store_names, _FD_STORE_MAX, &e)) <
		    0)
			return r;
		c->fd_store = (enum fd_store_mode)e;
	}
	if (raw->control && raw->control->socket) {
		const char *s = raw->control->socket;
		if (*s && *s != '/')
			return fail_value(l, "control.socket",
					  "must be an absolute path, or \"\" to disable the socket", s);
		if (strlen(s) >= ADDR_UNIX_PATH_MAX)
			return fail_value(l, "control.socket", "too long for a unix socket path (max 107 bytes)", s);
		if (!(c->control_socket = strdup(s)))
			return -ENOMEM;
	}
	return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_len) {
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (len == size) {
			if (size >= CONFIG_FILE_MAX)
				return -EFBIG;
			size = size ? size * 2 : 4096;
			char *nbuf = realloc(buf, size + 1);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
		}
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static void config_defaults(struct config *c) {
	*c = (struct config){
		.readiness_type = READINESS_NOTIFY,
		.readiness_timeout_usec = 60 * USEC_PER_SEC,
		.readiness_interval_usec = 250 * USEC_PER_MSEC,
		.reload_strategy = RELOAD_REPLACE,
		.reload_signal = SIGHUP,
		.stop_signal = SIGTERM,
		.stop_timeout_usec = 30 * USEC_PER_SEC,
		.restart_policy = RESTART_ON_FAILURE,
		.restart_delay_usec = 100 * USEC_PER_MSEC,
		.restart_max_delay_usec = 30 * USEC_PER_SEC,
	};
}

int config_new_default(struct config **ret) {
	struct config *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	config_defaults(c);
	*ret = c;
	return 0;
}

static int load(struct loader *l, const char *text, size_t len, struct config *c) {
	cyaml_config_t cy = {
		.log_fn = cyaml_log_collect,
		.log_ctx = l,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct raw_config *raw = NULL;
	char path[PATH_BUF] = "";
	int r;

	r = load_document(l, text, len);
	if (r < 0)
		return r;
	r = walk(l, yaml_document_get_root_node(&l->doc), &config_schema, path);
	if (r < 0)
		return r;
	cyaml_err_t e = cyaml_load_data((const uint8_t *)text, len, &cy, &config_schema, (cyaml_data_t **)&raw, NULL);
	if (e != CYAML_OK)
		return cyaml_error(l, e);

	if (raw->n_listeners > 0) {
		c->listeners = calloc(raw->n_listeners, sizeof(*c->listeners));
		if (!c->listeners) {
			r = -ENOMEM;
			goto out;
		}
		c->n_listeners = raw->n_listeners;
		for (size_t i = 0; i < c->n_listeners; i++)
			listener_defaults(&c->listeners[i]);
		for (size_t i = 0; i < c->n_listeners; i++)
			if ((r = load_listener(l, i, &raw->listeners[i], &c->listeners[i])) < 0)
				goto out;
		if ((r = check_unique(l, c->listeners, c->n_listeners)) < 0)
			goto out;
	}
	if (raw->program && (r = load_program(l, raw->program, c)) < 0)
		goto out;
	r = load_sections(l, raw, c);
out:
	cyaml_free(&cy, &config_schema, raw, 0);
	return r;
}

int config_load(const char *path, struct config **ret, char **ret_error) {
	struct loader l = {.path = path};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct config *c = NULL;
	int r;

	r = read_file(path, &text, &len);
	if (r == -EFBIG)
		r = fail(&l, NULL, NULL, "file too large (max %d bytes)", CONFIG_FILE_MAX);
	else if (r < 0) {
		if (asprintf(&l.error, "%s: %s", path, strerror(-r)) < 0)
			l.error = NULL;
	} else {
		r = config_new_default(&c);
		if (r >= 0 && !(c->path = strdup(path)))
			r = -ENOMEM;
		if (r >= 0)
			r = load(&l, text, len, c);
	}
	if (l.have_doc)
		yaml_document_delete(&l.doc);
	if (r < 0) {
		config_free(c);
		if (!l.error && r == -ENOMEM && asprintf(&l.error, "%s: %s", path, strerror(ENOMEM)) < 0)
			l.error = NULL;
		*ret_error = l.error;
		return r;
	}
	free(l.error);
	*ret = c;
	return 0;
}

void config_free(struct config *c) {
	if (!c)
		return;
	for (size_t i = 0; i < c->n_listeners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].owner);
		free(c->listeners[i].group);
	}
	free(c->listeners);
	free(c->path);
	strv_free(c->command);
	strv_free(c->environment);
	free(c->working_directory);
	free(c->user);
	free(c->group);
	free(c->control_socket);
	free(c->stdin_listener);
	strv_free(c->readiness_command);
	if (c->readiness_pattern)
		regfree(&c->readiness_regex);
	free(c->readiness_pattern);
	free(c->readiness_pid_file);
	free(c);
}

/* ---- The command line ---- */

__attribute__((format(printf, 2, 3))) static int cli_fail(char **ret_error, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(ret_error, fmt, ap);
	va_end(ap);
	if (r < 0) {
		*ret_error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

static int cli_listener(const char *arg, const struct listener_config *ls, size_t n, struct listener_config *lc,
			char **ret_error) {
	const char *eq = strchr(arg, '='), *why = NULL;
	char abuf[ADDR_FORMAT_MAX];

	if (!eq)
		return cli_fail(ret_error, "--listen '%s': expected NAME=ADDRESS", arg);
	_cleanup_free_ char *name = strndup(arg, (size_t)(eq - arg));
	if (!name)
		return -ENOMEM;
	if (!config_name_valid(name))
		return cli_fail(ret_error, "--listen '%s': invalid name '%s' (1-255 characters of A-Z a-z 0-9 . _ -)",
				arg, name);
	listener_defaults(lc);
	if (addr_parse(eq + 1, &lc->address, &why) < 0)
		return cli_fail(ret_error, "--listen '%s': %s: '%s'", arg, why, eq + 1);
	for (size_t i = 0; i < n; i++) {
		if (streq(ls[i].name, name))
			return cli_fail(ret_error, "--listen '%s': duplicate listener name '%s'", arg, name);
		if (addr_equal(&ls[i].address, &lc->address))
			return cli_fail(ret_error, "--listen '%s': duplicate address '%s' (also listener '%s')", arg,
					addr_format(&lc->address, abuf), ls[i].name);
	}
	lc->name = TAKE_PTR(name);
	return 0;
}

/* Every {fd:NAME} in the command must name a listener: caught here, a typo is a config error (and never stops a
 * running generation on reload) instead of a failed start. */
static int check_placeholders(const char *path, char *const *command, const struct listener_config *ls, size_t n,
			      char **ret_error) {
	/* Where the command came from: the file's key, or the command line after --. */
	char where[PATH_MAX + 64];
	for (size_t i = 0; command && command[i]; i++)
		for (const char *p = strstr(command[i], "{fd:"); p; p = strstr(p, "{fd:")) {
			if (path)
				snprintf(where, sizeof(where), "%s: key 'program.command[%zu]'", path, i);
			else
				snprintf(where, sizeof(where), "command argument %zu", i);
			p += 4;
			const char *end = strchr(p, '}');
			if (!end)
				return cli_fail(ret_error, "%s: '{fd:' without a closing '}': '%s'", where, command[i]);
			size_t len = (size_t)(end - p);
			bool found = false;
			for (size_t j = 0; j < n && !found; j++)
				found = strlen(ls[j].name) == len && strncmp(ls[j].name, p, len) == 0;
			if (!found)
				return cli_fail(ret_error, "%s: {fd:%.*s} names no listener: '%s'", where, (int)len, p,
						command[i]);
			p = end + 1;
		}
	return 0;
}

/* The program keys that refer to the listener set, checked once the command line's listeners are merged in. */
static int check_listener_refs(const struct config *c, const struct listener_config *ls, size_t n, char **ret_error) {
	char where[PATH_MAX + 64], abuf[ADDR_FORMAT_MAX];
#define WHERE(key) (c->path ? (snprintf(where, sizeof(where), "%s: key '%s'", c->path, key), where) : key)
	if (c->stdin_listener) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = streq(ls[i].name, c->stdin_listener);
		if (!found)
			return cli_fail(ret_error, "%s: names no listener: '%s'", WHERE("program.stdin"),
					c->stdin_listener);
	}
	if (c->preload && n == 0)
		return cli_fail(ret_error, "%s: there are no listeners for the shim to hand out",
				WHERE("program.preload"));
	for (size_t i = 0; c->compat_server_starter && i < n; i++)
		if (ls[i].address.kind != ADDR_TCP &&
		    (ls[i].address.kind != ADDR_UNIX_STREAM || ls[i].address.abstract))
			return cli_fail(ret_error,
					"%s: listener '%s' (%s) cannot be written in SERVER_STARTER_PORT, which has "
					"only TCP ports and unix stream socket paths",
					WHERE("program.compat"), ls[i].name, addr_format(&ls[i].address, abuf));
#undef WHERE
	return 0;
}

int config_apply_cli(struct config *c, char *const *listens, char *const *command, char **ret_error) {
	size_t n_new = strv_length(listens), n_old = c->n_listeners, n_parsed = 0;
	bool have_command = command && command[0];
	struct listener_config *ls = NULL;
	char **cmd = NULL;
	int r = 0;

	if (c->path && n_new > 0 && n_old > 0)
		return cli_fail(ret_error, "--listen '%s': %s has listeners already: give them in one place",
				listens[0], c->path);
	if (c->path && have_command && c->command)
		return cli_fail(ret_error, "a command after --: %s has program.command already: give it in one place",
				c->path);

	/* Merged into copies first: c changes only once nothing can fail any more. */
	if (n_new > 0) {
		ls = calloc(n_old + n_new, sizeof(*ls));
		if (!ls)
			return -ENOMEM;
		if (n_old > 0)
			memcpy(ls, c->listeners, n_old * sizeof(*ls));
		for (; n_parsed < n_new; n_parsed++) {
			r = cli_listener(listens[n_parsed], ls, n_old + n_parsed, &ls[n_old + n_parsed], ret_error);
			if (r < 0)
				goto fail;
		}
	}
	if (have_command && !command[0][0]) {
		r = cli_fail(ret_error, "empty command after --");
		goto fail;
	}
	if (!have_command && (!c->command || !c->command[0])) {
		if (c->path)
			r = cli_fail(ret_error, "no program: give program.command in %s or a command after --",
				     c->path);
		else
			r = cli_fail(ret_error, "no program: give a command after --");
		goto fail;
	}
	if (have_command && !(cmd = strv_copy(command))) {
		r = -ENOMEM;
		goto fail;
	}
	/* The file is named when the command is the file's; one given after -- is the command line's. */
	r = check_placeholders(cmd ? NULL : c->path, cmd ? cmd : c->command, ls ? ls : c->listeners,
			       ls ? n_old + n_new : n_old, ret_error);
	if (r >= 0)
		r = check_listener_refs(c, ls ? ls : c->listeners, ls ? n_old + n_new : n_old, ret_error);
	if (r < 0) {
		strv_free(cmd);
		goto fail;
	}

	if (ls) {
		free(c->listeners);
		c->listeners = ls;
		c->n_listeners = n_old + n_new;
	}
	if (cmd) {
		strv_free(c->command);
		c->command = cmd;
	}
	return 0;
fail:
	/* Only the new entries: the old ones are c's, shared by the shallow copy. */
	for (size_t i = n_old; i < n_old + n_parsed; i++)
		free(ls[i].name);
	free(ls);
	return r;
}

int config_peek_control_socket(const char *path, char **ret) {
	struct loader l = {.path = path};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_file(path, &text, &len);
	if (r < 0)
		return r;
	/* Only the YAML document is needed, not a valid config. libyaml loads all or nothing, so a YAML syntax
	 * error anywhere gives -ENOENT here. */
	r = load_document(&l, text, len);
	yaml_node_t *n = r >= 0 ? doc_find(&l, "control.socket") : NULL;
	if (n && n->type == YAML_SCALAR_NODE) {
		*ret = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
		r = *ret ? 0 : -ENOMEM;
	} else
		r = -ENOENT;
	if (l.have_doc)
		yaml_document_delete(&l.doc);
	free(l.error);
	return r;
}
