/*
 * workers: event loops in threads of their own, and the one way the main
 * context talks to them: worker_call() runs a function inside a worker's
 * loop and waits for its result.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_WORKERS_H
#define SIDECAR_WORKERS_H

#include "ctx.h"

/* Sets up n worker contexts under main (n == 1: main is the worker) and
 * starts their threads. Returns 0 or -1. */
int workers_start(struct sidecar *main, unsigned n);
/* Runs fn(w, arg) in w's loop (directly when w is not threaded) and returns
 * its result. Only the main context calls it. */
int worker_call(struct sidecar *w, worker_fn fn, void *arg);
/* Stops every worker loop, joins the threads and frees the contexts. */
void workers_stop(struct sidecar *main);
/* Adds every worker's counters into *sum. */
void workers_stats(const struct sidecar *main, struct stats *sum);

#endif
