/*
 * resolver: getaddrinfo() in a detached thread per request, answers
 * delivered on the loop. Re-resolved for every new connection, so DNS
 * changes take effect without a reload.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "ctx.h"
#include "log.h"
#include "resolver.h"

struct resolve_req {
	struct resolve_req *next;
	struct resolver *rs;
	struct conn *conn;      /* NULL once cancelled */
	char *host, *port;
	struct addrinfo *ai;
	int err;
};

struct resolver {
	pthread_mutex_t mu;
	unsigned pending;       /* requests not yet delivered */
	struct resolve_req *done;
	ev_async async;
	struct ev_loop *loop;
};

static void deliver_done(struct ev_loop *loop, ev_async *w, int revents)
{
	struct resolver *rs = w->data;
	(void)loop, (void)revents;
	pthread_mutex_lock(&rs->mu);
	struct resolve_req *list = rs->done;
	rs->done = NULL;
	pthread_mutex_unlock(&rs->mu);
	while (list) {
		struct resolve_req *r = list;
		list = r->next;
		pthread_mutex_lock(&rs->mu);
		rs->pending--;
		pthread_mutex_unlock(&rs->mu);
		if (r->conn)
			conn_resolved(r->conn, r->ai, r->err);
		else if (r->ai)
			freeaddrinfo(r->ai);
		free(r->host);
		free(r->port);
		free(r);
	}
}

static void finish_req(struct resolve_req *r)
{
	struct resolver *rs = r->rs;
	pthread_mutex_lock(&rs->mu);
	r->next = rs->done;
	rs->done = r;
	pthread_mutex_unlock(&rs->mu);
	ev_async_send(rs->loop, &rs->async);
}

static void lookup(struct resolve_req *r, int flags)
{
	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = flags | AI_ADDRCONFIG;
	r->err = getaddrinfo(r->host, r->port, &hints, &r->ai);
	if (r->err)
		r->ai = NULL;
}

static void *resolve_thread(void *arg)
{
	struct resolve_req *r = arg;
	lookup(r, 0);
	finish_req(r);
	return NULL;
}

int resolver_init(struct sidecar *sc)
{
	struct resolver *rs = xcalloc(1, sizeof *rs);
	if (pthread_mutex_init(&rs->mu, NULL) != 0) {
		free(rs);
		return -1;
	}
	rs->loop = sc->loop;
	ev_async_init(&rs->async, deliver_done);
	rs->async.data = rs;
	ev_async_start(sc->loop, &rs->async);
	ev_unref(sc->loop); /* the resolver alone does not keep the loop alive */
	sc->resolver = rs;
	return 0;
}

void resolver_free(struct sidecar *sc)
{
	struct resolver *rs = sc->resolver;
	if (!rs)
		return;
	ev_ref(sc->loop);
	ev_async_stop(sc->loop, &rs->async);
	sc->resolver = NULL;
	pthread_mutex_lock(&rs->mu);
	unsigned pending = rs->pending;
	pthread_mutex_unlock(&rs->mu);
	if (pending)
		return; /* a lookup thread still holds it; the process is ending */
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

struct resolve_req *resolver_start(struct sidecar *sc, struct conn *c, const char *host, const char *port)
{
	struct resolve_req *r = xcalloc(1, sizeof *r);
	r->rs = sc->resolver;
	r->conn = c;
	r->host = xstrdup(host);
	r->port = xstrdup(port);
	pthread_mutex_lock(&r->rs->mu);
	r->rs->pending++;
	pthread_mutex_unlock(&r->rs->mu);
	struct in6_addr probe;
	if (inet_pton(AF_INET, host, &probe) == 1 || inet_pton(AF_INET6, host, &probe) == 1) {
		lookup(r, AI_NUMERICHOST); /* no DNS involved: answer at once */
		finish_req(r);
		return r;
	}
	pthread_attr_t attr;
	pthread_t tid;
	int e = pthread_attr_init(&attr);
	if (e == 0)
		e = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (e == 0)
		e = pthread_create(&tid, &attr, resolve_thread, r);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		log_err("cannot start a resolver thread: %s", strerror(e));
		r->err = EAI_SYSTEM;
		finish_req(r);
	}
	return r;
}

void resolver_cancel(struct sidecar *sc, struct resolve_req *r)
{
	(void)sc;
	pthread_mutex_lock(&r->rs->mu);
	r->conn = NULL;
	pthread_mutex_unlock(&r->rs->mu);
}
