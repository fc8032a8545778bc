/*
 * flow: how the legacy server reaches a TLS client (RFC 5626 flows). Each
 * event loop has a loopback listener (flow-bind) and a table of its inbound
 * connections by flow id. A Contact from a TLS client reaches the legacy
 * server as a URI of that listener carrying the connection's flow token
 * (siptopo.h); a request the legacy server sends there, over any TCP
 * connection it opens, goes out over the client's own TLS connection. A
 * request for a flow that is gone gets "430 Flow Failed" and a log line.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_FLOW_H
#define SIDECAR_FLOW_H

#include "config.h"
#include "ctx.h"

struct conn;

/* Sets up this loop's flow table and listener (port: 0 for any). Returns
 * 0, or -1 after logging why. Runs in the loop's own thread. */
int flow_start(struct sidecar *w, const struct config *cfg, unsigned port);
/* Closes the listener and every connection it accepted; frees the table. */
void flow_stop(struct sidecar *w);
/* Gives c a flow id and enters it in its loop's table. */
void flow_register(struct conn *c);
/* Takes c out of the table (conn_close). */
void flow_unregister(struct conn *c);
/* The connection of a flow id of this loop, or NULL. */
struct conn *flow_find(struct sidecar *w, uint64_t id);

/* Sends a complete message to flow id, in whichever loop has it (a copy is
 * made); a request for a flow that is gone is answered 430 through the
 * sidecar's own Via. */
void flow_post(struct sidecar *w, uint64_t id, const char *data, size_t len);
/* A complete answer msg[0..len) whose top Via is the sidecar's own: cuts
 * that Via and posts the rest to the flow it names. Returns 1 if it was
 * ours (handled), 0 if not, -1 if our Via did not verify (dropped). */
int flow_route_answer(struct sidecar *w, const struct topo_key *key, const char *msg, size_t len);

#endif
