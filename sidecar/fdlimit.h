/*
 * fdlimit: the descriptor limit and what max-connections may ask of it.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_FDLIMIT_H
#define SIDECAR_FDLIMIT_H

#include "config.h"
#include "util.h"

/* Descriptors kept besides two per connection: listening sockets, each
 * worker's loop, flow listener and wake-up descriptors, logs, resolver. */
unsigned long limits_reserve(const struct config *cfg);
/*
 * Raises the soft RLIMIT_NOFILE to the hard limit (at start, before the
 * configuration is read). Logs what it did; returns the soft limit now in
 * force (0 if unknown).
 */
unsigned long limits_raise_nofile(void);
/*
 * Clamps cfg->max_connections to what the descriptor limit can hold (two
 * descriptors per connection plus limits_reserve()) and says so in w
 * ("FILE: max-connections = N needs ... clamped to M"). hard: judge against
 * the hard limit, which the daemon raises its soft limit to (-t), else
 * against the soft limit in force. Returns 1 if it clamped, else 0.
 */
int limits_clamp(struct config *cfg, int hard, struct diag *w);

#endif
