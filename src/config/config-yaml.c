/* The configuration file: its YAML document, the libcyaml schema, and error messages that name the key and its line
 * (config.c validates and converts, config-cli.c merges the command line in).
 *
 * Loading runs in four steps over one in-memory copy of the file (so every step sees the same bytes):
 *  1. libyaml loads the document: YAML syntax errors, an empty file, several documents. The document is kept to
 *     find the line of any key path later: libcyaml's own line numbers often point at the enclosing mapping.
 *  2. A walk of that document along the libcyaml schema: unknown keys, duplicate keys, wrong types (a list where a
 *     scalar belongs...), missing required keys and YAML nulls, each with the exact key path and line.
 *  3. libcyaml loads the document into raw structs in which every scalar is a string: libcyaml 1.3.1 reads "80abc"
 *     as 80, "010" as octal and "flase" as true, so numbers, booleans and durations are parsed by util.h's strict
 *     parsers instead. Should libcyaml still reject something step 2 let through, its own log lines make the message.
 *  4. Validation and conversion into struct config, with defaults (config.c); program.environment (a free-form
 *     mapping that libcyaml cannot describe, so the schema ignores it) is read from the libyaml document. */
#include <cyaml/cyaml.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config-internal.h"
#include "config-libcyaml.h"
#include "util.h"

#define CONFIG_FILE_MAX (1024 * 1024)

/* ---- The schema: every scalar is read as a string, see step 3 above. ---- */

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
	STR("cgroup", struct raw_program, cgroup),
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

/* ---- Error messages ---- */

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

const char *config_set_of(char *const *sets, const char *key) {
	const char *found = NULL;
	size_t len = strlen(key);
	for (size_t i = 0; sets && sets[i]; i++)
		if (strncmp(sets[i], key, len) == 0 && sets[i][len] == '=')
			found = sets[i];
	return found;
}

int loader_fail(struct loader *l, const char *key, const yaml_node_t *node, const char *fmt, ...) {
	char why[1024];
	va_list ap;

	if (l->error)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);

	const char *option = key ? config_set_of(l->sets, key) : NULL;
	char line[32] = "";
	if (node && !option)
		snprintf(line, sizeof(line), " (line %zu)", node->start_mark.line + 1);
	int r;
	char buf[128];
	if (option)
		r = asprintf(&l->error, "--set %s: %s", escape(option, strlen(option), buf), why);
	else if (!l->path)
		r = key && *key ? asprintf(&l->error, "key '%s': %s", key, why) : asprintf(&l->error, "%s", why);
	else if (key && *key)
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
	return libcyaml.yaml_document_get_node(&l->doc, index);
}

static bool scalar_is(const yaml_node_t *n, const char *s, size_t len) {
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
	       memcmp(n->data.scalar.value, s, len) == 0;
}

yaml_node_t *loader_find(struct loader *l, const char *path) {
	if (!l->have_doc)
		return NULL;
	yaml_node_t *n = libcyaml.yaml_document_get_root_node(&l->doc);
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

int loader_fail_value(struct loader *l, const char *key, const char *why, const char *value) {
	char buf[128];
	/* The option as written shows the value already. */
	if (config_set_of(l->sets, key))
		return loader_fail(l, key, NULL, "%s", why);
	return loader_fail(l, key, loader_find(l, key), "%s: '%s'", why, escape(value, strlen(value), buf));
}

/* ---- Step 1: the libyaml document ---- */

static int syntax_error(struct loader *l, const yaml_parser_t *p) {
	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->context)
		return loader_fail(l, NULL, NULL, "YAML syntax error: %s (line %zu): %s (line %zu)", p->context,
				   p->context_mark.line + 1, strempty(p->problem), p->problem_mark.line + 1);
	return loader_fail(l, NULL, NULL, "YAML syntax error: %s (line %zu)", strempty(p->problem),
			   p->problem_mark.line + 1);
}

/* A plain ~, null or nothing: YAML's null, which libcyaml would silently read as the string "~" or "". */
static bool node_is_null(const yaml_node_t *n) {
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

static void yaml_parser_deletep(yaml_parser_t **p) {
	if (*p)
		libcyaml.yaml_parser_delete(*p);
}

static int load_document(struct loader *l, const char *text, size_t len) {
	yaml_parser_t parser;
	int r = 0;

	if (!libcyaml.yaml_parser_initialize(&parser))
		return -ENOMEM;
	_cleanup_(yaml_parser_deletep) yaml_parser_t *p = &parser;
	libcyaml.yaml_parser_set_input_string(p, (const unsigned char *)text, len);
	if (!libcyaml.yaml_parser_load(p, &l->doc))
		return syntax_error(l, p);
	l->have_doc = true;

	yaml_node_t *root = libcyaml.yaml_document_get_root_node(&l->doc);
	if (!root || node_is_null(root))
		return loader_fail(l, NULL, NULL, "empty config");

	/* libcyaml reads only the first document: a second one would be ignored without a word. */
	yaml_document_t next;
	if (!libcyaml.yaml_parser_load(p, &next))
		return syntax_error(l, p);
	if (libcyaml.yaml_document_get_root_node(&next))
		r = loader_fail(l, NULL, NULL, "more than one YAML document (line %zu)", next.start_mark.line + 1);
	libcyaml.yaml_document_delete(&next);
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
		return loader_fail(l, key, n, "expected %s, got a scalar: '%s'", want,
				   escape((const char *)n->data.scalar.value, n->data.scalar.length, buf));
	if (node_is_null(n) && !strcmp(want, "a scalar value"))
		return loader_fail(l, key, n, "empty value (write \"\" for an empty string)");
	return loader_fail(l, key, n, "expected %s, got %s", want, node_kind(n));
}

/* path is a buffer of PATH_BUF bytes holding the key path of n; each level appends to it and cuts it back. */

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
			return loader_fail(l, base ? path : NULL, k, "a key must be a scalar, not %s", node_kind(k));

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
			return loader_fail(l, path, k, "unknown key (expected one of: %s)", known);
		}
		if (seen & (UINT64_C(1) << i)) {
			/* The first occurrence, for the message: the same key earlier in this mapping. */
			size_t first = 0;
			for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pair; q++)
				if (scalar_is(node_get(l, q->key), fields[i].key, strlen(fields[i].key))) {
					first = node_get(l, q->key)->start_mark.line + 1;
					break;
				}
			return loader_fail(l, path, k, "duplicate key (first at line %zu)", first);
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
			return loader_fail(l, path, n, "missing (this key is required)");
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
			return loader_fail(l, path, n, "value contains a NUL character");
		return 0;
	default:
		return 0;
	}
}

/* ---- Step 3: libcyaml (config-libcyaml.c reads its errors) ---- */

/* ---- Step 4: program.environment (the rest is config.c's) ---- */

/* An environment variable name: no '=' (it ends the name) and nothing the shell or env(1) could not pass on. */
static bool env_name_valid(const char *s, size_t len) {
	if (len == 0 || strlen(s) != len || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '=' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

int config_yaml_environment(struct loader *l, char ***ret) {
	yaml_node_t *n = loader_find(l, "program.environment");
	_cleanup_strv_free_ char **env = NULL;
	char buf[128], key[PATH_BUF];
	int r;

	if (!n)
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return wrong_type(l, "program.environment", n, "a mapping of NAME: value");
	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node_get(l, pair->key), *v = node_get(l, pair->value);
		if (k->type != YAML_SCALAR_NODE)
			return loader_fail(l, "program.environment", k, "a key must be a scalar, not %s", node_kind(k));
		const char *name = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "program.environment.%s", escape(name, k->data.scalar.length, buf));
		if (!env_name_valid(name, k->data.scalar.length))
			return loader_fail(l, key, k,
					   "invalid variable name (no '=', spaces or control characters; not starting "
					   "with a digit): '%s'",
					   buf);
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pair; q++)
			if (scalar_is(node_get(l, q->key), name, k->data.scalar.length))
				return loader_fail(l, key, k, "duplicate key (first at line %zu)",
						   node_get(l, q->key)->start_mark.line + 1);
		if (v->type != YAML_SCALAR_NODE || node_is_null(v))
			return wrong_type(l, key, v, "a scalar value");
		if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
			return loader_fail(l, key, v, "value contains a NUL character");
		_cleanup_free_ char *kv = strdup_printf("%s=%s", name, (const char *)v->data.scalar.value);
		if (!kv)
			return -ENOMEM;
		r = strv_extend(&env, kv);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(env); /* NULL for an empty mapping */
	return 0;
}

int config_yaml_set_environment(struct loader *l, char ***env) {
	static const char prefix[] = "program.environment.";

	for (size_t i = 0; l->sets && l->sets[i]; i++) {
		const char *arg = l->sets[i], *eq = strchr(arg, '=');
		if (strncmp(arg, prefix, strlen(prefix)) != 0 || !eq || eq < arg + strlen(prefix))
			continue;
		const char *name = arg + strlen(prefix);
		size_t len = (size_t)(eq - name);
		/* A later option of the same name replaces this one: only the last is applied (and checked). */
		_cleanup_free_ char *key = strndup(arg, (size_t)(eq - arg));
		if (!key)
			return -ENOMEM;
		if (config_set_of(l->sets, key) != arg)
			continue;
		if (!env_name_valid(key + strlen(prefix), len))
			return loader_fail(l, key, NULL,
					   "invalid variable name (no '=', spaces or control characters; not starting "
					   "with a digit): '%.*s'",
					   (int)len, name);
		/* Replaces the file's variable in place, or comes after the file's. */
		size_t j = 0;
		for (; *env && (*env)[j]; j++)
			if (strncmp((*env)[j], name, len + 1) == 0)
				break;
		if (*env && (*env)[j]) {
			char *kv = strdup(name);
			if (!kv)
				return -ENOMEM;
			free((*env)[j]);
			(*env)[j] = kv;
		} else if (strv_extend(env, name) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* ---- Step 3b: the --set options over the raw strings, before they are validated with the file's ---- */

static const cyaml_schema_field_t *field_find(const cyaml_schema_field_t *fields, const char *key, size_t len) {
	for (; fields->key; fields++)
		if (strlen(fields->key) == len && memcmp(fields->key, key, len) == 0)
			return fields;
	return NULL;
}

/* "a, b, c": the keys of a section, for a message. */
static const char *field_names(const cyaml_schema_field_t *fields, char buf[static 256]) {
	size_t m = 0;
	buf[0] = '\0';
	for (size_t j = 0; fields[j].key && m < 256; j++)
		m += (size_t)snprintf(buf + m, 256 - m, "%s%s", j ? ", " : "", fields[j].key);
	return buf;
}

static int set_fail(struct loader *l, const char *arg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_fail(struct loader *l, const char *arg, const char *fmt, ...) {
	char why[1024];
	va_list ap;

	if (l->error)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	char buf[128];
	if (asprintf(&l->error, "--set %s: %s", escape(arg, strlen(arg), buf), why) < 0) {
		l->error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

/* libcyaml's allocator contract (cyaml_mem_fn_t), as its own cyaml_mem(), without needing libcyaml loaded: realloc,
 * and free on size 0. Memory that cyaml_free() frees with the rest of the raw config. */
static void *raw_mem(void *ctx, void *ptr, size_t size) {
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, size);
}

static void *raw_alloc(const cyaml_config_t *cy, size_t size) {
	void *p = cy->mem_fn(cy->mem_ctx, NULL, size);
	if (p)
		memset(p, 0, size);
	return p;
}

/* Frees a raw config that only --set filled (no file, so libcyaml is not loaded): sections of strings, each made by
 * set_one(). */
static void raw_free_sets(struct raw_config *raw) {
	if (!raw)
		return;
	for (const cyaml_schema_field_t *s = config_fields; s->key; s++) {
		char *section = *(char **)((char *)raw + s->data_offset);
		if (!section || s->value.type != CYAML_MAPPING)
			continue;
		for (const cyaml_schema_field_t *f = s->value.mapping.fields; f->key; f++)
			if (f->value.type == CYAML_STRING)
				free(*(char **)(section + f->data_offset));
		free(section);
	}
	free(raw);
}

/* Puts one KEY=VALUE into raw, where the file's value of KEY would be: a section's string, the section made when the
 * file has none. The schema is the table of what can be set: every scalar of it. */
static int set_one(struct loader *l, const cyaml_config_t *cy, struct raw_config *raw, const char *arg) {
	const char *eq = strchr(arg, '='), *dot = memchr(arg, '.', (size_t)(eq - arg));
	size_t klen = (size_t)(eq - arg), slen = dot ? (size_t)(dot - arg) : klen;
	char names[256], kbuf[128];

	const cyaml_schema_field_t *section = field_find(config_fields, arg, slen);
	if (!section)
		return set_fail(l, arg, "unknown key '%s' (the sections: %s)", escape(arg, klen, kbuf),
				field_names(config_fields, names));
	if (section->value.type == CYAML_SEQUENCE)
		return set_fail(l, arg,
				"%s is a list, whose keys cannot be set: --listen NAME=ADDRESS adds a listener, the "
				"file gives its options",
				section->key);
	const cyaml_schema_field_t *fields = section->value.mapping.fields;
	if (!dot)
		return set_fail(l, arg, "%s is a section: set one of its keys (%s)", section->key,
				field_names(fields, names));
	const char *rest = dot + 1;
	size_t rlen = (size_t)(eq - rest);
	bool env = streq(section->key, "program") && strncmp(rest, "environment.", strlen("environment.")) == 0;
	const cyaml_schema_field_t *f =
		env ? field_find(fields, "environment", strlen("environment")) : field_find(fields, rest, rlen);
	if (!f)
		return set_fail(l, arg, "unknown key '%s' (the keys of %s: %s)", escape(arg, klen, kbuf), section->key,
				field_names(fields, names));
	if (f->value.type == CYAML_SEQUENCE)
		return set_fail(l, arg, "%.*s is a list: write it in the file%s", (int)klen, arg,
				streq(section->key, "program") && streq(f->key, "command") ? ", or the command after --"
											   : "");
	if (f->value.type == CYAML_IGNORE && !env)
		return set_fail(l, arg, "%.*s is a mapping: set one variable with --set %.*s.NAME=VALUE", (int)klen,
				arg, (int)klen, arg);

	void **slot = (void **)((char *)raw + section->data_offset);
	if (!*slot && !(*slot = raw_alloc(cy, section->value.data_size)))
		return -ENOMEM;
	if (env)
		return 0; /* the variable itself: config_yaml_set_environment(), once the file's are read */
	char **value = (char **)((char *)*slot + f->data_offset);
	size_t vlen = strlen(eq + 1);
	char *copy = raw_alloc(cy, vlen + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, eq + 1, vlen);
	cy->mem_fn(cy->mem_ctx, *value, 0);
	*value = copy;
	return 0;
}

/* ---- Loading ---- */

/* text NULL: no file, the raw config is empty but for the --set options, and libcyaml is not needed. */
static int load(struct loader *l, const char *text, size_t len, struct config *c) {
	cyaml_config_t cy = {
		.log_fn = config_libcyaml_log,
		.log_ctx = l,
		.mem_fn = raw_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct raw_config *raw = NULL;
	char path[PATH_BUF] = "";
	const char *why = NULL;
	int r;

	if (text) {
		if (config_libcyaml_load(&why) < 0)
			return loader_fail(l, NULL, NULL,
					   "reading a config file needs libcyaml, which cannot be loaded: %s", why);
		r = load_document(l, text, len);
		if (r < 0)
			return r;
		r = walk(l, libcyaml.yaml_document_get_root_node(&l->doc), &config_schema, path);
		if (r < 0)
			return r;
		cyaml_err_t e = libcyaml.cyaml_load_data((const uint8_t *)text, len, &cy, &config_schema,
							 (cyaml_data_t **)&raw, NULL);
		if (e != CYAML_OK)
			return config_libcyaml_error(l, e);
	} else if (!(raw = raw_alloc(&cy, sizeof(*raw))))
		return -ENOMEM;
	r = 0;
	for (size_t i = 0; l->sets && l->sets[i] && r >= 0; i++) {
		r = config_set_check(l->sets[i], &why) < 0 ? set_fail(l, l->sets[i], "%s", why)
							   : set_one(l, &cy, raw, l->sets[i]);
	}
	if (r >= 0)
		r = config_from_raw(l, raw, c);
	if (text)
		libcyaml.cyaml_free(&cy, &config_schema, raw, 0);
	else
		raw_free_sets(raw);
	return r;
}

static void loader_done(struct loader *l) {
	if (l->have_doc)
		libcyaml.yaml_document_delete(&l->doc);
	free(l->error);
	free(l->cyaml_log);
}

static int load_config(struct loader *l, struct config **ret) {
	_cleanup_free_ char *text = NULL;
	_cleanup_(config_freep) struct config *c = NULL;
	size_t len = 0;
	int r;

	if (l->path) {
		r = read_file_max(l->path, CONFIG_FILE_MAX, &text, &len);
		if (r == -EFBIG)
			return loader_fail(l, NULL, NULL, "file too large (max %d bytes)", CONFIG_FILE_MAX);
		if (r < 0)
			return r;
	}
	if (!(c = malloc(sizeof(*c))))
		return -ENOMEM;
	/* A file's defaults, or those of quick use. */
	if (l->path)
		config_defaults(c);
	else
		config_quick_use_defaults(c);
	if (l->path && !(c->path = strdup(l->path)))
		return -ENOMEM;
	if (l->sets && l->sets[0] && !(c->sets = strv_copy(l->sets)))
		return -ENOMEM;
	/* An empty file is an error of its own, but with no file at all there is nothing to parse. */
	r = load(l, l->path ? text : NULL, len, c);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

int config_set_check(const char *arg, const char **ret_why) {
	const char *eq = strchr(arg, '=');
	if (!eq)
		return fail_why(ret_why, -EINVAL, "expected KEY=VALUE");
	if (eq == arg)
		return fail_why(ret_why, -EINVAL, "empty key (expected KEY=VALUE, such as stop.timeout=5s)");
	return 0;
}

int config_load_set(const char *path, char *const *sets, struct config **ret, char **ret_error) {
	_cleanup_(loader_done) struct loader l = {.path = path, .sets = sets};
	int r = load_config(&l, ret);
	if (r < 0) {
		/* A file that cannot be read, or no memory: the errno is the message. */
		if (!l.error)
			l.error = path ? strdup_printf("%s: %s", path, strerror(-r)) : strdup(strerror(-r));
		*ret_error = TAKE_PTR(l.error);
	}
	return r;
}

int config_load(const char *path, struct config **ret, char **ret_error) {
	return config_load_set(path, NULL, ret, ret_error);
}

static int load_text(const char *text, size_t len, const char *path, char *const *sets, struct config **ret,
		     char **ret_error) {
	_cleanup_(loader_done) struct loader l = {.path = "the handed-over config"};
	_cleanup_(config_freep) struct config *c = malloc(sizeof(*c));
	if (!c)
		return fail_error(ret_error, -ENOMEM, "out of memory");
	/* Every key is in the text (config_print() writes them all): the defaults do not matter. */
	config_defaults(c);
	int r = load(&l, text, len, c);
	if (r < 0) {
		*ret_error = l.error ? TAKE_PTR(l.error) : strdup(strerror(-r));
		return r;
	}
	if ((path && !(c->path = strdup(path))) || (sets && sets[0] && !(c->sets = strv_copy(sets))))
		return fail_error(ret_error, -ENOMEM, "out of memory");
	*ret = TAKE_PTR(c);
	return 0;
}

int config_load_text(const char *text, size_t len, const char *path, char *const *sets, struct config **ret,
		     char **ret_error) {
	int r = load_text(text, len, path, sets, ret, ret_error);
	/* Without a file no reload will read YAML again: quick use stays without libcyaml after an upgrade. */
	if (!path)
		config_libcyaml_unload();
	return r;
}

int config_yaml_peek(const char *path, const char *key, char **ret) {
	_cleanup_(loader_done) struct loader l = {.path = path};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	const char *why;
	int r = read_file_max(path, CONFIG_FILE_MAX, &text, &len);
	if (r < 0)
		return r;
	r = config_libcyaml_load(&why);
	if (r < 0)
		return r;
	/* libyaml loads all or nothing, so a YAML syntax error anywhere gives -ENOENT here. */
	if (load_document(&l, text, len) < 0)
		return -ENOENT;
	yaml_node_t *n = loader_find(&l, key);
	if (!n || n->type != YAML_SCALAR_NODE)
		return -ENOENT;
	*ret = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
	return *ret ? 0 : -ENOMEM;
}
