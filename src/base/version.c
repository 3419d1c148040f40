/* Which baton this is (version.h). The values come from the build: meson.build for baton, tests/meson.build for the
 * test builds. */
#include "version.h"

#ifndef BATON_STATE_VERSION
#define BATON_STATE_VERSION 1
#endif
#ifndef BATON_TAKEOVER_FAILS
#define BATON_TAKEOVER_FAILS 0
#endif
#ifndef BATON_KEEPER_EXE
#define BATON_KEEPER_EXE "/proc/self/exe"
#endif

const char baton_version[] = BATON_VERSION;
const unsigned baton_state_version = BATON_STATE_VERSION;
const bool baton_takeover_fails = BATON_TAKEOVER_FAILS;
const char baton_keeper_exe[] = BATON_KEEPER_EXE;
