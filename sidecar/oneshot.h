/*
 * oneshot: a tiny server for local questions: accept, read one request
 * (up to its first line), answer with what a handler returns, close. Reads
 * and writes never block the loop: a client that sends nothing or never
 * reads is cut after a timeout, and only a few are served at once. The
 * metrics page (HTTP) and the status socket use it.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_ONESHOT_H
#define SIDECAR_ONESHOT_H

#include <ev.h>
#include <stddef.h>

struct sidecar;

/* Returns the whole answer (malloc'd, *len bytes) to the request req (NUL
 * terminated, at least its first line). */
typedef char *(*oneshot_fn)(struct sidecar *sc, const char *req, size_t *len);

struct oneshot;

/* Serves the listening socket fd (taken over) on sc's loop. */
struct oneshot *oneshot_start(struct sidecar *sc, int fd, oneshot_fn fn);
/* Stops, closes the socket and every client in progress. */
void oneshot_stop(struct oneshot *o);

#endif
