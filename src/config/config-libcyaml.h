/* libcyaml and libyaml, loaded while a config file is read. Linked, the two cost about 20 kB of private memory in
 * every baton (their relocated data, their link maps), and quick use (no file) never calls them: so they are
 * dlopen()ed by the first file read, resolved once and kept while files are read (a reload reads the file again),
 * and never loaded without one. The handed-over config of `baton upgrade` is YAML too: in quick use the library is
 * unloaded again once it is read (config_libcyaml_unload()).
 *
 * config-yaml.c calls these pointers in place of the functions of the same names; they are set only after a
 * successful config_libcyaml_load(). Does not log. */
#pragma once

#include <cyaml/cyaml.h>
#include <yaml.h>

struct config_libcyaml {
	__typeof__(cyaml_load_data) *cyaml_load_data;
	__typeof__(cyaml_strerror) *cyaml_strerror;
	__typeof__(yaml_parser_initialize) *yaml_parser_initialize;
	__typeof__(yaml_parser_set_input_string) *yaml_parser_set_input_string;
	__typeof__(yaml_parser_load) *yaml_parser_load;
	__typeof__(yaml_parser_parse) *yaml_parser_parse;
	__typeof__(yaml_event_delete) *yaml_event_delete;
	__typeof__(yaml_parser_delete) *yaml_parser_delete;
	__typeof__(yaml_document_delete) *yaml_document_delete;
	__typeof__(yaml_document_get_node) *yaml_document_get_node;
	__typeof__(yaml_document_get_root_node) *yaml_document_get_root_node;
};
extern struct config_libcyaml libcyaml;

/* Loads libcyaml (and libyaml, its dependency) unless loaded, and resolves libcyaml. 0, or -ELIBACC / -ELIBBAD with
 * *ret_why pointing at dlerror()'s text (valid until the next call). */
int config_libcyaml_load(const char **ret_why);
/* Unloads it, unless it was never loaded: nothing may use libcyaml afterwards but after another load. */
void config_libcyaml_unload(void);
