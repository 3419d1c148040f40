/* What one load of a config has to say about its document (config-loader.c), the bottom of the config family: the
 * libyaml document of the file, the node at a key path, and the errors that name the key and its line (or the --set
 * option that gave it). Knows nothing of struct config. Nothing here logs: every error is a message for the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* One load of one file: the libyaml document (kept to find the line of any key path) and the first error. */
struct loader {
	const char *path; /* NULL: no file (quick use) */
	char *const *sets; /* --set KEY=VALUE, applied over the file (may be NULL) */
	yaml_document_t doc;
	bool have_doc;
	char *error; /* the first error wins */
	/* libcyaml's log lines, allocated at its first (CYAML_LOG_MAX bytes): 4 kB on the stack of every load would
	 * stay baton's private memory for good (issue 23), and only a broken file makes libcyaml log. */
	char *cyaml_log;
	size_t cyaml_log_len;
};

/* Key paths ("listeners[1].address") fit in this many bytes. */
#define PATH_BUF 512
#define CYAML_LOG_MAX 4096

/* Sets l's error to "FILE: key 'KEY': WHY (line N)" unless it has one already; key may be NULL (a file-level error),
 * node may be NULL (no line known). A key that a --set option gave makes "--set KEY=VALUE: WHY" instead: the user
 * wrote the option, not a line of the file. Returns -EINVAL, or -ENOMEM when the message cannot be made. */
int loader_fail(struct loader *l, const char *key, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* "FILE: key 'KEY': WHY: 'VALUE' (line N)", the line being that of KEY's value in the file; "--set KEY=VALUE: WHY"
 * when an option gave it. */
int loader_fail_value(struct loader *l, const char *key, const char *why, const char *value);
/* "expected WANT, got ..." for node n at key, saying what n is (a scalar, quoted; a list; a mapping; empty). */
int loader_wrong_type(struct loader *l, const char *key, const yaml_node_t *n, const char *want);
/* A value quoted in a message: control characters escaped, long values cut; returns buf. */
const char *loader_escape(const char *s, size_t len, char buf[static 128]);
/* The node at a key path such as "listeners[1].address"; NULL when it is not in the file. */
yaml_node_t *loader_find(struct loader *l, const char *path);
/* The document's node of that index (libyaml's references between nodes). */
yaml_node_t *loader_node(struct loader *l, int index);
/* n is a scalar of exactly those len bytes. */
bool loader_scalar_is(const yaml_node_t *n, const char *s, size_t len);
/* A plain ~, null or nothing: YAML's null. */
bool loader_node_is_null(const yaml_node_t *n);
/* The text of such a null (quoted, the same text is a string). */
bool loader_text_is_null(const char *v);
/* "a mapping", "a list", "an empty value" or "a scalar", for a message. */
const char *loader_node_kind(const yaml_node_t *n);
/* The --set option (its whole KEY=VALUE) that gives key in the end (the last one of that key), or NULL. */
const char *config_set_of(char *const *sets, const char *key);

/* program.environment, read from the document (a free-form mapping that the schema cannot describe): NULL-terminated
 * "NAME=value" in file order into *ret (NULL when absent or empty). */
int loader_environment(struct loader *l, char ***ret);
/* Adds the variables of the --set program.environment.NAME=VALUE options of l to *env (replacing one of the same
 * name), validated as the file's. */
int loader_set_environment(struct loader *l, char ***env);
