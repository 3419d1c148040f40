/* Generations and remnants across `baton upgrade` (serialize.h; generation-serialize.c): their records, written and
 * read beside the structs. Logs nothing. */
#pragma once

#include "generation-list.h"
#include "generation-members.h"
#include "serialize.h"

/* g's records ("generation ID", then "gen.*"); reading them back goes from the current record on into a new
 * generation at the end of *list, and leaves the reader on the first record that is not g's. generation_forget()
 * frees one that was read, closing nothing. */
void generation_serialize(const struct generation *g, struct ser_writer *w);
int generation_deserialize(struct ser_reader *rd, struct generation **list);
void generation_forget(struct generation *g);
/* The same for a remnant: "remnant ...", then "remnant.adopted". */
void remnant_serialize(const struct remnant *rm, struct ser_writer *w);
int remnant_deserialize(struct ser_reader *rd, struct remnant **list);
void remnant_forget(struct remnant *rm);
