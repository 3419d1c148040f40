/* Fake mechanisms for the state machine's unit test: what they did, counted, and how to make them fail. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "generation.h"
#include "readiness.h"
#include "sockets.h"
#include "upstream.h"

struct fake_world {
	uint64_t now; /* the fake clock: generations start at it */
	bool fail_start; /* generation_start fails (as a fork that fails) */
	unsigned started, stopped, killed, freed, signals, upstream_ready, confirm_begun;
	int last_signal;
};
extern struct fake_world fake;
