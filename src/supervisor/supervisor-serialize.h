/* The state machine's own state across `baton upgrade` (serialize.h; supervisor-serialize.c), written and read beside
 * struct supervisor. Logs nothing. */
#pragma once

#include "serialize.h"
#include "supervisor.h"

/* The records of s itself (its state, counters, last reload, backoff,
 * baton's upstream watchdog; not its generations and listeners, which their modules write). Reading goes from the
 * current record on and leaves the reader on the first record that is not s's (1: the current one is not);
 * *ret_current_id is the current generation's number (0: none), for supervisor_deserialized_check() to find once the
 * generations are read too. That check says whether what was read fits together (a config, its listeners, nothing
 * starting, the current generation one of them). supervisor_forget() frees what was read into s, closing nothing. */
void supervisor_serialize(const struct supervisor *s, struct ser_writer *w);
int supervisor_deserialize(struct ser_reader *rd, struct supervisor *s, unsigned *ret_current_id);
int supervisor_deserialized_check(struct ser_reader *rd, struct supervisor *s, unsigned current_id);
void supervisor_forget(struct supervisor *s);
