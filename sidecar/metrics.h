/*
 * metrics: Prometheus text exposition over HTTP on a loopback address
 * ([global] metrics = ADDR:PORT). Counters live in the runtime context.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_METRICS_H
#define SIDECAR_METRICS_H

#include "ctx.h"

/* The reason words counted separately (INTERFACE.md), plus "other". */
extern const char *const metrics_reasons[];
#define METRICS_NREASONS 24

/* Counts one refusal under its reason word; returns the word's index. */
size_t metrics_refused(struct sidecar *sc, const char *reason);
/* Opens, moves or closes the metrics listener to match sc->gen. Returns -1
 * (with d filled) if a new address cannot be bound. */
int metrics_apply(struct sidecar *sc, struct diag *d);
void metrics_close(struct sidecar *sc);

#endif
