/* Which baton this is: its version, and the version of the state it hands over to a new binary on `baton upgrade`
 * (run-state.c). Both are constants of one build; test builds of the tree (tests/meson.build) give other values, so
 * that an upgrade between two builds, and one to a binary that cannot read the state, can be tested. */
#pragma once

#include <stdbool.h>

/* "0.1.0": what --version and `baton status` print. */
extern const char baton_version[];
/* The state format this binary writes and reads. Bumped whenever the format changes incompatibly: a binary reads
 * exactly its own version, and `baton upgrade` refuses a binary that reads another before it execs it. */
extern const unsigned baton_state_version;
/* Only in a test build: this binary accepts the state when checked, and then refuses to take it over, so that the
 * way back to the old binary is tested. Always false in baton itself. */
extern const bool baton_takeover_fails;
/* The binary a keeper execs (keeper.h): "/proc/self/exe", this very one. Only a test build names one that does not
 * exist, so that a keeper whose exec fails is tested. */
extern const char baton_keeper_exe[];
