/* Whether LD_PRELOAD can work for a program (spawn-preload.c), below spawn.c. Does not log. */
#pragma once

/* Why LD_PRELOAD cannot work for the program argv0 (searched in path_env, a PATH value, when it has no '/'): a
 * statically linked ELF executable, a set-user-ID or set-group-ID file (the dynamic linker ignores LD_PRELOAD paths
 * with slashes then), or the same for the interpreter of a "#!" script. Returns a static English reason, or NULL
 * when preloading should work or nothing can be said (the file is missing: exec reports that). */
const char *spawn_preload_problem(const char *argv0, const char *path_env);
