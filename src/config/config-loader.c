/* What one load of a config has to say about its document (config-internal.h's struct loader): the node at a key
 * path, what a node is, the errors that name the key and its line (or the --set option that gave it), and
 * program.environment, the free-form mapping read straight from the document. The bottom of the config family:
 * config.c validates with these, config-yaml.c loads with them; they know nothing of struct config. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "config-libcyaml.h"
#include "config-loader.h"
#include "util.h"

/* ---- Messages ---- */

/* A value quoted in a message: control characters escaped, long values cut. */
const char *loader_escape(const char *s, size_t len, char buf[static 128]) {
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
		r = asprintf(&l->error, "--set %s: %s", loader_escape(option, strlen(option), buf), why);
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

/* ---- The document ---- */

yaml_node_t *loader_node(struct loader *l, int index) {
	return libcyaml.yaml_document_get_node(&l->doc, index);
}

bool loader_scalar_is(const yaml_node_t *n, const char *s, size_t len) {
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
			n = loader_node(l, n->data.sequence.items.start[idx]);
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
			if (loader_scalar_is(loader_node(l, pair->key), p, len)) {
				found = loader_node(l, pair->value);
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
	return loader_fail(l, key, loader_find(l, key), "%s: '%s'", why, loader_escape(value, strlen(value), buf));
}

/* A plain ~, null or nothing: YAML's null, which libcyaml would silently read as the string "~" or "". */
bool loader_text_is_null(const char *v) {
	return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

bool loader_node_is_null(const yaml_node_t *n) {
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       loader_text_is_null((const char *)n->data.scalar.value);
}

const char *loader_node_kind(const yaml_node_t *n) {
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	return loader_node_is_null(n) ? "an empty value" : "a scalar";
}

int loader_wrong_type(struct loader *l, const char *key, const yaml_node_t *n, const char *want) {
	char buf[128];
	if (n->type == YAML_SCALAR_NODE && !loader_node_is_null(n))
		return loader_fail(l, key, n, "expected %s, got a scalar: '%s'", want,
				   loader_escape((const char *)n->data.scalar.value, n->data.scalar.length, buf));
	if (loader_node_is_null(n) && !strcmp(want, "a scalar value"))
		return loader_fail(l, key, n, "empty value (write \"\" for an empty string)");
	return loader_fail(l, key, n, "expected %s, got %s", want, loader_node_kind(n));
}

/* ---- program.environment (the rest of the config is config.c's) ---- */

/* An environment variable name: no '=' (it ends the name) and nothing the shell or env(1) could not pass on. */
static bool env_name_valid(const char *s, size_t len) {
	if (len == 0 || strlen(s) != len || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '=' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

int loader_environment(struct loader *l, char ***ret) {
	yaml_node_t *n = loader_find(l, "program.environment");
	_cleanup_strv_free_ char **env = NULL;
	char buf[128], key[PATH_BUF];
	int r;

	if (!n)
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return loader_wrong_type(l, "program.environment", n, "a mapping of NAME: value");
	for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = loader_node(l, pair->key), *v = loader_node(l, pair->value);
		if (k->type != YAML_SCALAR_NODE)
			return loader_fail(l, "program.environment", k, "a key must be a scalar, not %s",
					   loader_node_kind(k));
		const char *name = (const char *)k->data.scalar.value;
		snprintf(key, sizeof(key), "program.environment.%s", loader_escape(name, k->data.scalar.length, buf));
		if (!env_name_valid(name, k->data.scalar.length))
			return loader_fail(l, key, k,
					   "invalid variable name (no '=', spaces or control characters; not starting "
					   "with a digit): '%s'",
					   buf);
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pair; q++)
			if (loader_scalar_is(loader_node(l, q->key), name, k->data.scalar.length))
				return loader_fail(l, key, k, "duplicate key (first at line %zu)",
						   loader_node(l, q->key)->start_mark.line + 1);
		if (v->type != YAML_SCALAR_NODE || loader_node_is_null(v))
			return loader_wrong_type(l, key, v, "a scalar value");
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

int loader_set_environment(struct loader *l, char ***env) {
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
