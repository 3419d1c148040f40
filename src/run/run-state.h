/* The state `baton upgrade` hands over (run-state.c): its envelope; the records are written and read beside their
 * owners. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "run-core.h"
#include "serialize.h"

/* The handover. The state of r (between two turns of the event loop, with no generation starting and
 * no reload in progress) is written to fd, in the versioned text format that run_state_read() parses; upgrader is
 * the control client that asked for the upgrade, to be answered by whichever binary carries on. *ret_fds (may be
 * NULL; the caller frees ->fds) are the fds the state names: exactly those the exec must keep. Returns 0 or negative
 * errno. */
int run_state_write(const struct run *r, const struct control_client *upgrader, uint64_t started_usec, int fd,
		    struct ser_fds *ret_fds);
/* What a state says besides the run it describes. */
struct run_handover {
	unsigned upgrader; /* the control client to answer */
	uint64_t started_usec; /* when the upgrade began */
	struct ser_fds fds; /* the fds the state names (the caller frees ->fds) */
};
/* Reads a state written by run_state_write() into r, allocating what it needs; the fds it names are taken as they
 * are (with check_fds, each must be open), and nothing is registered or changed: a failed takeover can still give the
 * state back. On failure *ret_error says why ("state version 2, this baton reads version 1", "line 12: ..."). */
int run_state_read(int fd, bool check_fds, struct run *r, struct run_handover *ret, char **ret_error);
/* Frees what run_state_read() allocated, closing nothing. */
void run_state_discard(struct run *r);
