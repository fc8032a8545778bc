/*
 * workers: threads with an event loop each; see workers.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "flow.h"
#include "listener.h"
#include "log.h"
#include "resolver.h"
#include "tally.h"
#include "workers.h"

static void call_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct sidecar *w = a->data;
	(void)loop, (void)revents;
	pthread_mutex_lock(&w->call_mu);
	worker_fn fn = w->call_done ? NULL : w->call_fn;
	void *arg = w->call_arg;
	pthread_mutex_unlock(&w->call_mu);
	if (!fn)
		return;
	int rc = fn(w, arg);
	pthread_mutex_lock(&w->call_mu);
	w->call_rc = rc;
	w->call_done = 1;
	pthread_cond_signal(&w->call_cv);
	pthread_mutex_unlock(&w->call_mu);
}

int worker_call(struct sidecar *w, worker_fn fn, void *arg)
{
	if (!w->threaded)
		return fn(w, arg);
	pthread_mutex_lock(&w->call_mu);
	w->call_fn = fn;
	w->call_arg = arg;
	w->call_done = 0;
	pthread_mutex_unlock(&w->call_mu);
	ev_async_send(w->loop, &w->call_async);
	pthread_mutex_lock(&w->call_mu);
	while (!w->call_done)
		pthread_cond_wait(&w->call_cv, &w->call_mu);
	int rc = w->call_rc;
	w->call_fn = NULL;
	pthread_mutex_unlock(&w->call_mu);
	return rc;
}

static void *worker_main(void *arg)
{
	struct sidecar *w = arg;
	ev_run(w->loop, 0);
	return NULL;
}

/* Gives w what every accepting context needs: buffers, the ticket key and
 * a resolver. Returns 0 or -1. */
static int worker_init(struct sidecar *main, struct sidecar *w)
{
	w->conf_path = main->conf_path;
	w->main_ctx = main;
	w->workers_first = main->workers[0];
	w->total_conns = main->total_conns;
	w->total_peers = main->total_peers;
	w->tallies = main->tallies;
	w->reuseport = main->reuseport;
	w->scratch_size = 64 * 1024;
	w->scratch = xmalloc(w->scratch_size);
	w->ra = xmalloc(RA_SIZE);
	if (w != main) {
		/* the same key everywhere: a ticket resumes on any worker */
		w->ticket_key.data = gnutls_malloc(main->ticket_key.size);
		if (!w->ticket_key.data)
			return -1;
		memcpy(w->ticket_key.data, main->ticket_key.data, main->ticket_key.size);
		w->ticket_key.size = main->ticket_key.size;
	}
	return resolver_init(w);
}

int workers_start(struct sidecar *main, unsigned n)
{
	if (pthread_mutex_init(&main->tickets_mu, NULL) != 0)
		return -1;
	main->total_conns = &main->total_conns_store;
	main->total_peers = &main->total_peers_store;
	main->tallies = tallies_new();
	main->reuseport = n > 1;
	main->nworkers = n;
	main->workers = xcalloc(n, sizeof *main->workers);
	if (n == 1) {
		main->workers[0] = main;
		return worker_init(main, main);
	}
	for (unsigned i = 0; i < n; i++)
		main->workers[i] = xcalloc(1, sizeof *main->workers[i]);
	for (unsigned i = 0; i < n; i++) {
		struct sidecar *w = main->workers[i];
		w->loop = ev_loop_new(EVFLAG_AUTO);
		if (!w->loop || worker_init(main, w) < 0 || pthread_mutex_init(&w->call_mu, NULL) != 0 ||
		    pthread_cond_init(&w->call_cv, NULL) != 0) {
			log_err("cannot set up worker %u", i);
			return -1;
		}
		ev_async_init(&w->call_async, call_cb);
		w->call_async.data = w;
		ev_async_start(w->loop, &w->call_async);
		/* signals belong to the main loop: workers start with them blocked */
		sigset_t all, prev;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &prev);
		int e = pthread_create(&w->thread, NULL, worker_main, w);
		pthread_sigmask(SIG_SETMASK, &prev, NULL);
		if (e != 0) {
			log_err("cannot start worker %u: %s", i, strerror(e));
			return -1;
		}
		w->threaded = 1;
	}
	return 0;
}

/* In the worker: closes what is left and leaves the loop. */
static int worker_end(struct sidecar *w, void *arg)
{
	(void)arg;
	while (w->conns)
		conn_close(w->conns, "shutdown");
	flow_stop(w);
	listeners_close_all(w);
	resolver_free(w);
	gen_unref(w->gen);
	w->gen = NULL;
	ev_async_stop(w->loop, &w->call_async);
	ev_break(w->loop, EVBREAK_ALL);
	return 0;
}

void workers_stop(struct sidecar *main)
{
	if (!main->workers)
		return;
	for (unsigned i = 0; i < main->nworkers; i++) {
		struct sidecar *w = main->workers[i];
		if (!w || w == main)
			continue;
		if (w->threaded) {
			worker_call(w, worker_end, NULL);
			pthread_join(w->thread, NULL);
		}
		if (w->loop)
			ev_loop_destroy(w->loop);
		gnutls_free(w->ticket_key.data);
		free(w->scratch);
		free(w->ra);
		free(w);
	}
	free(main->workers);
	main->workers = NULL;
	for (size_t i = 0; i < main->ntickets; i++) {
		free(main->tickets[i].name);
		gnutls_free(main->tickets[i].data.data);
	}
	free(main->tickets);
	main->tickets = NULL;
	main->ntickets = 0;
	pthread_mutex_destroy(&main->tickets_mu);
}

void workers_stats(const struct sidecar *main, struct stats *sum)
{
	memset(sum, 0, sizeof *sum);
	for (unsigned i = 0; i < main->nworkers; i++) {
		const uint64_t *src = (const uint64_t *)&main->workers[i]->st;
		uint64_t *dst = (uint64_t *)sum;
		/* each counter has one writer (its worker): plain loads suffice
		 * for a monitoring snapshot, atomic ones keep them untorn */
		for (size_t k = 0; k < sizeof *sum / sizeof *dst; k++)
			dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
	}
}
