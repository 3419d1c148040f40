/* The configuration file: the libcyaml schema and the steps of a load (config-loader.c holds the document and the
 * error messages that name the key and its line, config.c validates and converts, config-cli.c merges the command
 * line in).
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
 *     mapping that libcyaml cannot describe, so the schema ignores it) is read from the libyaml document
 *     (config-loader.c).
 * A file whose bytes show that steps 1 and 2 can find nothing that libcyaml would let through is loaded by steps 3
 * and 4 alone, and again the full way if anything is wrong ("The quick load" below). */
#include <cyaml/cyaml.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config-internal.h"
#include "config-libcyaml.h"
#include "util.h"

#define CONFIG_FILE_MAX (1024 * 1024)

/* ---- The schema: every scalar is read as a string, see step 3 above. ----
 *
 * Built by each load that uses it (schema_open) in memory of its own, unmapped after (schema_close), not kept in
 * static tables: baton is a position-independent executable, and the dynamic linker writes every pointer of a static
 * table at each start. The schema's 4 kB of them made baton's RELRO segment three dirty pages instead of one in every
 * baton, also in those that never read a file (quick use in a container: issue 23, bench/README.md). */

#define STR(key, s, m) CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_OPTIONAL, s, m, 0, CYAML_UNLIMITED)
#define STR_REQUIRED(key, s, m) CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_DEFAULT, s, m, 0, CYAML_UNLIMITED)
#define SECTION(key, m, fields) CYAML_FIELD_MAPPING_PTR(key, CYAML_FLAG_OPTIONAL, struct raw_config, m, fields)
#define SEQUENCE(key, s, m, n, schema)                                                                                 \
	CYAML_FIELD_SEQUENCE_COUNT(key, CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER, s, m, n, schema, 0, CYAML_UNLIMITED)
/* One table of fields, written into dst (whose size must be the table's): compiled to stores, so nothing of it is
 * relocated at start (checked: readelf -S shows no .data.rel.ro for config-yaml.c's object). */
#define FIELDS(dst, ...)                                                                                               \
	do {                                                                                                           \
		const cyaml_schema_field_t fields_[] = {__VA_ARGS__, CYAML_FIELD_END};                                 \
		_Static_assert(sizeof(fields_) == sizeof(dst), "the schema's table and its room differ: " #dst);       \
		memcpy(dst, fields_, sizeof(fields_));                                                                 \
	} while (0)

struct schema {
	cyaml_schema_value_t string, listener, config;
	cyaml_schema_field_t listener_fields[19], program_fields[12], readiness_fields[9], reload_fields[5],
		stop_fields[4], restart_fields[4], control_fields[2], systemd_fields[2], notify_fields[2],
		config_fields[10];
};

static void schema_fill_sections(struct schema *s) {
	FIELDS(s->listener_fields, STR_REQUIRED("name", struct raw_listener, name),
	       STR_REQUIRED("address", struct raw_listener, address), STR("backlog", struct raw_listener, backlog),
	       STR("reuse-port", struct raw_listener, reuse_port),
	       STR("reuse-address", struct raw_listener, reuse_address),
	       STR("ipv6-only", struct raw_listener, ipv6_only), STR("freebind", struct raw_listener, freebind),
	       STR("transparent", struct raw_listener, transparent), STR("keepalive", struct raw_listener, keepalive),
	       STR("nodelay", struct raw_listener, nodelay), STR("defer-accept", struct raw_listener, defer_accept),
	       STR("fastopen", struct raw_listener, fastopen),
	       STR("receive-buffer", struct raw_listener, receive_buffer),
	       STR("send-buffer", struct raw_listener, send_buffer), STR("mode", struct raw_listener, mode),
	       STR("owner", struct raw_listener, owner), STR("group", struct raw_listener, group),
	       STR("inherit", struct raw_listener, inherit));
	FIELDS(s->program_fields, SEQUENCE("command", struct raw_program, command, n_command, &s->string),
	       /* A free-form mapping: read from the libyaml document by read_environment(). */
	       CYAML_FIELD_IGNORE("environment", CYAML_FLAG_OPTIONAL),
	       STR("working-directory", struct raw_program, working_directory), STR("user", struct raw_program, user),
	       STR("group", struct raw_program, group), STR("watchdog", struct raw_program, watchdog),
	       STR("fd-store", struct raw_program, fd_store), STR("stdin", struct raw_program, stdin_),
	       STR("preload", struct raw_program, preload),
	       SEQUENCE("compat", struct raw_program, compat, n_compat, &s->string),
	       STR("cgroup", struct raw_program, cgroup));
	FIELDS(s->readiness_fields, STR("type", struct raw_readiness, type),
	       STR("timeout", struct raw_readiness, timeout),
	       SEQUENCE("command", struct raw_readiness, command, n_command, &s->string),
	       STR("interval", struct raw_readiness, interval), STR("pattern", struct raw_readiness, pattern),
	       STR("stream", struct raw_readiness, stream), STR("pid-file", struct raw_readiness, pid_file),
	       STR("delay", struct raw_readiness, delay));
	FIELDS(s->reload_fields, STR("strategy", struct raw_reload, strategy), STR("signal", struct raw_reload, signal),
	       STR("confirm", struct raw_reload, confirm),
	       SEQUENCE("confirm-command", struct raw_reload, confirm_command, n_confirm_command, &s->string));
	FIELDS(s->stop_fields, STR("signal", struct raw_stop, signal), STR("timeout", struct raw_stop, timeout),
	       STR("drain", struct raw_stop, drain));
	FIELDS(s->restart_fields, STR("policy", struct raw_restart, policy), STR("delay", struct raw_restart, delay),
	       STR("max-delay", struct raw_restart, max_delay));
	FIELDS(s->control_fields, STR("socket", struct raw_control, socket));
	FIELDS(s->systemd_fields, STR("fd-store", struct raw_systemd, fd_store));
	FIELDS(s->notify_fields, STR("socket", struct raw_notify, socket));
}

static const struct schema *schema_open(void) {
	struct schema *s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	s->string = (cyaml_schema_value_t){CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED)};
	s->listener = (cyaml_schema_value_t){
		CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_listener, s->listener_fields)};
	schema_fill_sections(s);
	FIELDS(s->config_fields, SEQUENCE("listeners", struct raw_config, listeners, n_listeners, &s->listener),
	       SECTION("program", program, s->program_fields), SECTION("readiness", readiness, s->readiness_fields),
	       SECTION("reload", reload, s->reload_fields), SECTION("stop", stop, s->stop_fields),
	       SECTION("restart", restart, s->restart_fields), SECTION("notify", notify, s->notify_fields),
	       SECTION("control", control, s->control_fields), SECTION("systemd", systemd, s->systemd_fields));
	s->config =
		(cyaml_schema_value_t){CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, s->config_fields)};
	/* Read-only from here, as the static tables were. */
	(void)mprotect(s, sizeof(*s), PROT_READ);
	return s;
}

static void schema_close(const struct schema *s) {
	if (s)
		munmap((void *)s, sizeof(*s));
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
	if (!root || loader_node_is_null(root))
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

/* path is a buffer of PATH_BUF bytes holding the key path of n; each level appends to it and cuts it back. */

/* Appends a then b to the key path at base, cut at PATH_BUF as snprintf() would cut it. No printf: this runs for each
 * key and list entry of the file, and a reload of 1,000 listeners spent a tenth of its time formatting paths. */
static void path_append(char *path, size_t base, const char *a, const char *b) {
	char *p = path + base, *end = path + PATH_BUF - 1;
	for (; *a && p < end; a++)
		*p++ = *a;
	for (; *b && p < end; b++)
		*p++ = *b;
	*p = '\0';
}

/* "[N]" for a list entry's path. */
static void path_append_index(char *path, size_t base, size_t index) {
	char digits[24], *d = digits + sizeof(digits);
	*--d = '\0';
	*--d = ']';
	do
		*--d = (char)('0' + index % 10);
	while ((index /= 10) > 0);
	*--d = '[';
	path_append(path, base, d, "");
}

static int walk(struct loader *l, yaml_node_t *n, const cyaml_schema_value_t *schema, char *path);

static int walk_mapping(struct loader *l, yaml_node_t *n, const cyaml_schema_field_t *fields, char *path) {
	size_t base = strlen(path);
	uint64_t seen = 0;
	int r;

	if (n->type != YAML_MAPPING_NODE)
		return loader_wrong_type(l, base ? path : "(top level)", n, "a mapping");

	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = loader_node(l, pair->key), *v = loader_node(l, pair->value);
		if (k->type != YAML_SCALAR_NODE)
			return loader_fail(l, base ? path : NULL, k, "a key must be a scalar, not %s",
					   loader_node_kind(k));

		size_t i;
		for (i = 0; fields[i].key; i++)
			if (loader_scalar_is(k, fields[i].key, strlen(fields[i].key)))
				break;
		/* A known key is the schema's own name, with nothing to escape; an unknown one is escaped for its
		 * message. */
		char buf[128];
		path_append(path, base, base ? "." : "",
			    fields[i].key
				    ? fields[i].key
				    : loader_escape((const char *)k->data.scalar.value, k->data.scalar.length, buf));
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
				if (loader_scalar_is(loader_node(l, q->key), fields[i].key, strlen(fields[i].key))) {
					first = loader_node(l, q->key)->start_mark.line + 1;
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
			return loader_wrong_type(l, path, n, "a list");
		size_t base = strlen(path);
		for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
			path_append_index(path, base, (size_t)(it - n->data.sequence.items.start));
			int r = walk(l, loader_node(l, *it), schema->sequence.entry, path);
			if (r < 0)
				return r;
		}
		path[base] = '\0';
		return 0;
	}
	case CYAML_STRING:
		if (n->type != YAML_SCALAR_NODE || loader_node_is_null(n))
			return loader_wrong_type(l, path, n, "a scalar value");
		if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
			return loader_fail(l, path, n, "value contains a NUL character");
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
	if (!l->cyaml_log && !(l->cyaml_log = calloc(1, CYAML_LOG_MAX)))
		return;
	size_t room = CYAML_LOG_MAX - l->cyaml_log_len;
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
	char none[] = "";
	for (line = strtok_r(l->cyaml_log ? l->cyaml_log : none, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
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
		node = loader_find(l, key);
	if (is_missing && m < sizeof(key))
		snprintf(key + m, sizeof(key) - m, "%s%s", m ? "." : "", missing);
	return loader_fail(l, key, node, "%s", reason[0] ? reason : libcyaml.cyaml_strerror(e));
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
	if (asprintf(&l->error, "--set %s: %s", loader_escape(arg, strlen(arg), buf), why) < 0) {
		l->error = NULL;
		return -ENOMEM;
	}
	return -EINVAL;
}

/* ---- The raw config's memory ----
 *
 * Everything a load allocates for the raw config (libcyaml's structs, sequences and strings, set_one()'s) comes from
 * an arena that the load drops at once when config_from_raw() has copied what it keeps. libcyaml's own allocator
 * (malloc per string and struct, then cyaml_free() walking the schema to free each) was a tenth of the load of a
 * 1,000-listener file. The arena keeps libcyaml's allocator contract (cyaml_mem_fn_t): realloc, and free on size 0,
 * which here frees nothing. Every block has its capacity in front of it; a block that grows (libcyaml grows a
 * sequence by one entry at a time) takes twice what it asked for when it must move, so that growing stays linear. */

#define ARENA_ALIGN 16

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	max_align_t data[];
};

struct arena {
	size_t chunk_size; /* the small blocks' chunks: 4 kB for quick use's few --set strings, 32 kB for a file */
	struct arena_chunk *chunks;
	char *at, *end; /* the free room of the newest small chunk */
	char *last; /* the newest block cut from it: the one that can grow in place */
};

static size_t arena_round(size_t n) {
	return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static size_t *arena_header(void *p) {
	return (size_t *)((char *)p - ARENA_ALIGN);
}

/* A block of at least size bytes, its capacity in front of it. */
static void *arena_alloc(struct arena *a, size_t size) {
	if (size > SIZE_MAX / 4)
		return NULL;
	size_t cap = arena_round(size ? size : 1), need = ARENA_ALIGN + cap;
	if (need > (size_t)(a->end - a->at)) {
		/* A large block gets a chunk of its own; otherwise a new chunk becomes the one cut from (the rest of
		 * the old one is left unused). */
		bool own = need > a->chunk_size / 4;
		size_t size_chunk = own ? need : a->chunk_size;
		struct arena_chunk *c = malloc(sizeof(*c) + size_chunk);
		if (!c)
			return NULL;
		c->next = a->chunks;
		c->size = size_chunk;
		a->chunks = c;
		if (own) {
			char *p = (char *)c->data + ARENA_ALIGN;
			*arena_header(p) = cap;
			return p;
		}
		a->at = (char *)c->data;
		a->end = a->at + size_chunk;
	}
	char *p = a->at + ARENA_ALIGN;
	*arena_header(p) = cap;
	a->at += need;
	a->last = p;
	return p;
}

static void *arena_realloc(struct arena *a, void *ptr, size_t size) {
	if (!ptr)
		return arena_alloc(a, size);
	size_t cap = *arena_header(ptr);
	if (size <= cap)
		return ptr;
	if (ptr == a->last && arena_round(size) - cap <= (size_t)(a->end - a->at)) {
		a->at += arena_round(size) - cap;
		*arena_header(ptr) = arena_round(size);
		return ptr;
	}
	void *moved = arena_alloc(a, size > cap * 2 ? size : cap * 2);
	if (moved)
		memcpy(moved, ptr, cap);
	return moved;
}

static void arena_drop(struct arena *a) {
	while (a->chunks) {
		struct arena_chunk *c = a->chunks;
		a->chunks = c->next;
		free(c);
	}
	*a = (struct arena){.chunk_size = a->chunk_size};
}

static void *raw_mem(void *ctx, void *ptr, size_t size) {
	return size == 0 ? NULL : arena_realloc(ctx, ptr, size);
}

static void *raw_alloc(const cyaml_config_t *cy, size_t size) {
	void *p = cy->mem_fn(cy->mem_ctx, NULL, size);
	if (p)
		memset(p, 0, size);
	return p;
}

/* Puts one KEY=VALUE into raw, where the file's value of KEY would be: a section's string, the section made when the
 * file has none. The schema is the table of what can be set: every scalar of it. */
static int set_one(struct loader *l, const struct schema *schema, const cyaml_config_t *cy, struct raw_config *raw,
		   const char *arg) {
	const char *eq = strchr(arg, '='), *dot = memchr(arg, '.', (size_t)(eq - arg));
	size_t klen = (size_t)(eq - arg), slen = dot ? (size_t)(dot - arg) : klen;
	char names[256], kbuf[128];

	const cyaml_schema_field_t *section = field_find(schema->config_fields, arg, slen);
	if (!section)
		return set_fail(l, arg, "unknown key '%s' (the sections: %s)", loader_escape(arg, klen, kbuf),
				field_names(schema->config_fields, names));
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
		return set_fail(l, arg, "unknown key '%s' (the keys of %s: %s)", loader_escape(arg, klen, kbuf),
				section->key, field_names(fields, names));
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
		return 0; /* the variable itself: loader_set_environment(), once the file's are read */
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

/* Every --set option of l over raw, in order: 0, or the first one's error. */
static int apply_sets(struct loader *l, const struct schema *schema, const cyaml_config_t *cy, struct raw_config *raw) {
	const char *why = NULL;
	int r = 0;
	for (size_t i = 0; l->sets && l->sets[i] && r >= 0; i++)
		r = config_set_check(l->sets[i], &why) < 0 ? set_fail(l, l->sets[i], "%s", why)
							   : set_one(l, schema, cy, raw, l->sets[i]);
	return r;
}

/* ---- Loading ---- */

/* The file's text into *raw: the document walked along the schema, then libcyaml's load. */
static int load_file(struct loader *l, const struct schema *schema, const cyaml_config_t *cy, const char *text,
		     size_t len, struct raw_config **raw) {
	char path[PATH_BUF] = "";
	const char *why = NULL;
	if (config_libcyaml_load(&why) < 0)
		return loader_fail(l, NULL, NULL, "reading a config file needs libcyaml, which cannot be loaded: %s",
				   why);
	int r = load_document(l, text, len);
	if (r < 0)
		return r;
	r = walk(l, libcyaml.yaml_document_get_root_node(&l->doc), &schema->config, path);
	if (r < 0)
		return r;
	cyaml_err_t e =
		libcyaml.cyaml_load_data((const uint8_t *)text, len, cy, &schema->config, (cyaml_data_t **)raw, NULL);
	return e == CYAML_OK ? 0 : cyaml_error(l, e);
}

/* ---- The quick load: libcyaml alone ----
 *
 * Steps 1 and 2 parse the file a second time beside libcyaml's own parse, and keep a document of every node: they
 * were 40 % of a load, and with 1,000 listeners a reload's largest cost (issue 23). They are there for what libcyaml
 * lets through and for the messages: a second document, a NUL in a value, a YAML null where a string belongs (libcyaml
 * reads "~" as that string), an empty list (libcyaml cannot tell it from no list), program.environment (read from
 * the document), and the key and line of any error. So a file in which none of these can occur, seen at a glance at
 * its bytes and at libcyaml's strings, is loaded by libcyaml alone; anything else, and any error at all, is loaded
 * again the full way, whose result and message are then the only ones. A quick load gives the config the full load
 * gives, or gives way to it: test-config.c and fuzz-config.c compare the two. */

bool config_quick_load = true;
unsigned config_quick_loads;

/* The line at i (a line's first byte) opens with the marker m ("---" or "..."), which stands alone or is followed
 * by a blank. */
static bool line_opens_with(const char *text, size_t len, size_t i, const char *m) {
	return len - i >= 3 && memcmp(text + i, m, 3) == 0 &&
	       (len - i == 3 || text[i + 3] == ' ' || text[i + 3] == '\t' || text[i + 3] == '\r' ||
		text[i + 3] == '\n');
}

/* A line break other than "\n" and "\r\n" (a lone "\r"; NEL, LS and PS in UTF-8), or a byte order mark after the
 * first bytes: YAML breaks lines (and ends comments) and skips blanks there too, where the scans of quick_text_ok()
 * would not see it. */
static bool odd_break_at(const unsigned char *u, size_t left, bool first) {
	return (u[0] == '\r' && (left == 1 || u[1] != '\n')) || (u[0] == 0xc2 && left > 1 && u[1] == 0x85) ||
	       (u[0] == 0xe2 && left > 2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9)) ||
	       (!first && u[0] == 0xef && left > 2 && u[1] == 0xbb && u[2] == 0xbf);
}

static bool has_odd_break(const char *text, size_t len) {
	static const unsigned char leads[] = {'\r', 0xc2, 0xe2, 0xef};
	const unsigned char *start = (const unsigned char *)text, *end = start + len;
	for (size_t k = 0; k < sizeof(leads); k++)
		for (const unsigned char *u = start; (u = memchr(u, leads[k], (size_t)(end - u))); u++)
			if (odd_break_at(u, (size_t)(end - u), u == start))
				return true;
	return false;
}

/* text has none of what libcyaml alone would read differently from steps 1 and 2: no NUL byte, no escape (a double
 * quoted "\0" is a NUL), no program.environment, no empty flow list ("[", blanks, line breaks and comments, "]"), no
 * directive, no document marker but a "---" that opens the file, no line break but "\n" and "\r\n", and at most one
 * anchor (libyaml rejects an anchor defined twice, libcyaml takes the last). Errs towards "no": that is only slower.
 * Linear: a scan past blanks and comments goes on from where it ended. */
static bool quick_text_ok(const char *text, size_t len) {
	const char *amp = memchr(text, '&', len);
	if (memchr(text, '\0', len) || memchr(text, '\\', len) ||
	    memmem(text, len, "environment", strlen("environment")) ||
	    (amp && memchr(amp + 1, '&', len - (size_t)(amp + 1 - text))) || has_odd_break(text, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '[') {
			size_t j = i + 1;
			for (;;) {
				while (j < len &&
				       (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
					j++;
				if (j >= len || text[j] != '#')
					break;
				while (j < len && text[j] != '\n')
					j++;
			}
			if (j < len && text[j] == ']')
				return false;
			/* Only blanks and comments lay between: no line there opens with a marker. */
			i = j - 1;
			continue;
		}
		if (i == 0 || text[i - 1] == '\n') {
			if (text[i] == '%' || line_opens_with(text, len, i, "...") ||
			    (i > 0 && line_opens_with(text, len, i, "---")))
				return false;
		}
	}
	return true;
}

static bool quick_raw_ok(const cyaml_schema_field_t *fields, const char *data);

static bool quick_value_ok(const cyaml_schema_value_t *v, const char *p) {
	switch (v->type) {
	case CYAML_STRING:
		/* What step 2 calls a YAML null, as libcyaml leaves it: a plain ~, null or nothing (a quoted one is the
		 * same string: then the full load tells them apart). */
		return !loader_text_is_null(p);
	case CYAML_MAPPING:
		return quick_raw_ok(v->mapping.fields, p);
	default:
		return false;
	}
}

/* No string of the raw mapping at data (its fields) may have been a YAML null. */
static bool quick_raw_ok(const cyaml_schema_field_t *fields, const char *data) {
	for (const cyaml_schema_field_t *f = fields; f->key; f++) {
		if (f->value.type == CYAML_IGNORE)
			continue;
		const char *p = *(const char *const *)(const void *)(data + f->data_offset);
		if (!p)
			continue;
		if (f->value.type != CYAML_SEQUENCE) {
			if (!quick_value_ok(&f->value, p))
				return false;
			continue;
		}
		unsigned n;
		if (f->count_size != sizeof(n))
			return false;
		memcpy(&n, data + f->count_offset, sizeof(n));
		const cyaml_schema_value_t *e = f->value.sequence.entry;
		for (unsigned i = 0; i < n; i++) {
			const char *entry = p + (size_t)i * f->value.data_size;
			/* A pointer entry (a string) holds its pointer; a mapping entry is the struct itself. */
			if (!quick_value_ok(e, e->flags & CYAML_FLAG_POINTER ? *(const char *const *)(const void *)entry
									     : entry))
				return false;
		}
	}
	return true;
}

/* 1: c is loaded from text by libcyaml alone; 0: the full load must do it (c and l as they were); -ENOMEM. */
static int load_quick(struct loader *l, const struct schema *schema, const char *text, size_t len, struct config *c) {
	const char *why = NULL;
	if (!config_quick_load || !quick_text_ok(text, len) || config_libcyaml_load(&why) < 0)
		return 0;

	struct arena arena = {.chunk_size = 32 * 1024};
	/* No log: any error is the full load's to explain. */
	cyaml_config_t cy = {
		.mem_fn = raw_mem, .mem_ctx = &arena, .log_level = CYAML_LOG_ERROR, .flags = CYAML_CFG_DEFAULT};
	struct raw_config *raw = NULL;
	int r = 0;
	cyaml_err_t e =
		libcyaml.cyaml_load_data((const uint8_t *)text, len, &cy, &schema->config, (cyaml_data_t **)&raw, NULL);
	if (e == CYAML_ERR_OOM)
		r = -ENOMEM;
	else if (e == CYAML_OK && raw && quick_raw_ok(schema->config_fields, (const char *)raw)) {
		int k = apply_sets(l, schema, &cy, raw);
		/* Into a copy of c (its defaults, not its path and sets), so that c stays as it was if this gives way.
		 */
		struct config *q = k >= 0 ? malloc(sizeof(*q)) : NULL;
		if (q) {
			*q = *c;
			q->path = NULL;
			q->sets = NULL;
			k = config_from_raw(l, raw, q);
			if (k >= 0) {
				q->path = c->path;
				q->sets = c->sets;
				*c = *q;
				free(q);
				config_quick_loads++;
				r = 1;
			} else
				config_free(q);
		} else if (k >= 0)
			k = -ENOMEM;
		if (k == -ENOMEM)
			r = -ENOMEM;
	}
	arena_drop(&arena);
	if (r == 0) {
		free(l->error);
		l->error = NULL;
	}
	return r;
}

/* text NULL: no file, the raw config is empty but for the --set options, and libcyaml is not needed. */
static int load(struct loader *l, const char *text, size_t len, struct config *c) {
	struct arena arena = {.chunk_size = text ? 32 * 1024 : 4096};
	cyaml_config_t cy = {
		.log_fn = cyaml_log_collect,
		.log_ctx = l,
		.mem_fn = raw_mem,
		.mem_ctx = &arena,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct raw_config *raw = NULL;
	int r;

	const struct schema *schema = schema_open();
	if (!schema)
		return -ENOMEM;
	if (text && (r = load_quick(l, schema, text, len, c)) != 0) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	if (text) {
		r = load_file(l, schema, &cy, text, len, &raw);
		if (r < 0)
			goto out;
	} else if (!(raw = raw_alloc(&cy, sizeof(*raw)))) {
		r = -ENOMEM;
		goto out;
	}
	r = apply_sets(l, schema, &cy, raw);
	if (r >= 0)
		r = config_from_raw(l, raw, c);
out:
	arena_drop(&arena);
	schema_close(schema);
	return r;
}

static void loader_done(struct loader *l) {
	if (l->have_doc)
		libcyaml.yaml_document_delete(&l->doc);
	free(l->error);
	free(l->cyaml_log);
}

/* What a config is a function of: the file's bytes and the --set options. */
static uint64_t source_hash(const char *text, size_t len, char *const *sets) {
	uint64_t h = hash64(text, len, 0);
	for (size_t i = 0; sets && sets[i]; i++)
		h = hash64(sets[i], strlen(sets[i]) + 1, h);
	return h;
}

/* unchanged: a config to take again (config_ref(), returning 1) when it was loaded from the same file, bytes and sets;
 * may be NULL. */
static int load_config(struct loader *l, struct config *unchanged, struct config **ret) {
	_cleanup_free_ char *text = NULL;
	_cleanup_(config_freep) struct config *c = NULL;
	size_t len = 0;
	int r;

	if (l->path) {
		r = read_file_alloc(AT_FDCWD, l->path, O_NOCTTY, CONFIG_FILE_MAX, &text, &len);
		if (r == -EFBIG)
			return loader_fail(l, NULL, NULL, "file too large (max %d bytes)", CONFIG_FILE_MAX);
		if (r < 0)
			return r;
	}
	uint64_t hash = source_hash(text, len, l->sets);
	/* A file only: without one (quick use) there is nothing to parse but the sets. */
	if (unchanged && l->path && unchanged->path && streq(unchanged->path, l->path) &&
	    unchanged->source_len == len && unchanged->source_hash == hash) {
		*ret = config_ref(unchanged);
		return 1;
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
	c->source_hash = hash;
	c->source_len = len;
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

int config_reload(const char *path, char *const *sets, struct config *current, struct config **ret, char **ret_error) {
	_cleanup_(loader_done) struct loader l = {.path = path, .sets = sets};
	int r = load_config(&l, current, ret);
	if (r < 0) {
		/* A file that cannot be read, or no memory: the errno is the message. */
		if (!l.error)
			l.error = path ? strdup_printf("%s: %s", path, strerror(-r)) : strdup(strerror(-r));
		*ret_error = TAKE_PTR(l.error);
	}
	return r;
}

int config_load_set(const char *path, char *const *sets, struct config **ret, char **ret_error) {
	return config_reload(path, sets, NULL, ret, ret_error);
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
	int r = read_file_alloc(AT_FDCWD, path, O_NOCTTY, CONFIG_FILE_MAX, &text, &len);
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
