/*
 * listener: the listening sockets, kept outside generations and matched by
 * kind and bind address across reloads.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_LISTENER_H
#define SIDECAR_LISTENER_H

#include "ctx.h"

/*
 * Phase 1 of a reload (or start-up): binds every address of g that is not
 * bound yet. On failure closes what it bound, reports to d, returns -1;
 * the running sockets are untouched.
 */
int listeners_prepare(struct sidecar *sc, struct gen *g, struct diag *d);
/*
 * Phase 2, after sc->gen = g: points every socket at its section in g,
 * starts the new ones, closes those g no longer names. Appends a summary of
 * added/removed listeners to what (may be NULL); logs them when verbose.
 */
void listeners_commit(struct sidecar *sc, int verbose, char *what, size_t whatsz);
/* Undoes the last listeners_prepare() that succeeded (another worker's failed). */
void listeners_rollback(struct sidecar *sc);
/* Stops accepting on ls for a moment after accept() failed with err
 * (EMFILE, ENFILE: out of descriptors), with one log line. */
void listener_pause(struct lsock *ls, int err);
/* Stops and closes every listening socket (shutdown). */
void listeners_close_all(struct sidecar *sc);

#endif
