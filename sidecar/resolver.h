/*
 * resolver: host name resolution off the event loop. Each request runs
 * getaddrinfo() in a short-lived thread; the answer comes back to the loop
 * through an ev_async and is handed to conn_resolved().
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_RESOLVER_H
#define SIDECAR_RESOLVER_H

struct sidecar;
struct conn;
struct resolve_req;

int resolver_init(struct sidecar *sc);
void resolver_free(struct sidecar *sc);
/* Starts resolving host:port for c; conn_resolved(c, ...) follows from the
 * loop, never from inside this call. Returns the request (for cancel). */
struct resolve_req *resolver_start(struct sidecar *sc, struct conn *c, const char *host, const char *port);
/* The connection is gone: drop the answer when it comes. */
void resolver_cancel(struct sidecar *sc, struct resolve_req *r);

#endif
