/* libcyaml and libyaml, loaded while a config file is read (config-libcyaml.h). */
#include "config-libcyaml.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config-internal.h"
#include "util.h"

/* libcyaml's soname; libyaml-0.so.2 comes with it as its own dependency, and dlsym() of its handle finds both. */
#define LIBCYAML_SONAME "libcyaml.so.1"

struct config_libcyaml libcyaml;
static void *handle;
static char error[256];

/* dlsym()'s void * to a function pointer: POSIX guarantees the representation, ISO C has no conversion (dlsym(3)). */
#define RESOLVE(name) ((*(void **)&libcyaml.name = dlsym(handle, #name)) != NULL)

int config_libcyaml_load(const char **ret_why) {
	if (handle)
		return 0;
	/* RTLD_NOW: a missing function shows here, as one clear error, not in the middle of a load. */
	handle = dlopen(LIBCYAML_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(error, sizeof(error), "%s", dlerror());
		*ret_why = error;
		return -ELIBACC;
	}
	if (!(RESOLVE(cyaml_load_data) && RESOLVE(cyaml_free) && RESOLVE(cyaml_strerror) &&
	      RESOLVE(yaml_parser_initialize) && RESOLVE(yaml_parser_set_input_string) && RESOLVE(yaml_parser_load) &&
	      RESOLVE(yaml_parser_parse) && RESOLVE(yaml_event_delete) && RESOLVE(yaml_parser_delete) &&
	      RESOLVE(yaml_document_delete) && RESOLVE(yaml_document_get_node) &&
	      RESOLVE(yaml_document_get_root_node))) {
		snprintf(error, sizeof(error), "%s", dlerror());
		*ret_why = error;
		config_libcyaml_unload();
		return -ELIBBAD;
	}
	return 0;
}

void config_libcyaml_unload(void) {
	if (!handle)
		return;
	dlclose(handle);
	handle = NULL;
	libcyaml = (struct config_libcyaml){0};
}

/* libcyaml's log lines (the reason, then "Backtrace:" and "  in mapping field 'x' ..." lines) are collected for
 * the rare error that step 2 did not catch first. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void config_libcyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list ap) {
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

int config_libcyaml_error(struct loader *l, cyaml_err_t e) {
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
