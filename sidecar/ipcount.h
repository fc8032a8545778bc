/*
 * ipcount: open connections per (listener, peer address), shared by the
 * workers (SO_REUSEPORT spreads one address's connections over all of
 * them), for max-connections-per-ip.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_IPCOUNT_H
#define SIDECAR_IPCOUNT_H

#include <sys/socket.h>

#include "util.h"

struct ipcount;
struct ipslot;

struct ipcount *ipcount_new(void);
void ipcount_free(struct ipcount *t);
/*
 * Counts one more connection from peer on the listener bound to bind. When
 * max (> 0) are open already, counts nothing and returns NULL with *open
 * set to how many are; else returns the slot to give back with
 * ipcount_put().
 */
struct ipslot *ipcount_take(struct ipcount *t, const struct addr *bind, const struct addr *peer, unsigned long max,
			    unsigned long *open);
void ipcount_put(struct ipcount *t, struct ipslot *s);

#endif
