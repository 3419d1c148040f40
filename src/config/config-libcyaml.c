/* libcyaml and libyaml, loaded while a config file is read (config-libcyaml.h). */
#include "config-libcyaml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

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
	if (!(RESOLVE(cyaml_load_data) && RESOLVE(cyaml_strerror) && RESOLVE(yaml_parser_initialize) &&
	      RESOLVE(yaml_parser_set_input_string) && RESOLVE(yaml_parser_load) && RESOLVE(yaml_parser_parse) &&
	      RESOLVE(yaml_event_delete) && RESOLVE(yaml_parser_delete) && RESOLVE(yaml_document_delete) &&
	      RESOLVE(yaml_document_get_node) && RESOLVE(yaml_document_get_root_node))) {
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
