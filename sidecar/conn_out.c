/*
 * conn_out: the outbound side ([connect]): accepting the legacy server's
 * plaintext connection, resolving and connecting the peer server, the TLS
 * client session and its resumption tickets (shared by all workers).
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resolver.h"

#include "conn_int.h"
#include "log.h"

static int save_ticket(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
		       const gnutls_datum_t *msg)
{
	struct conn *c = gnutls_session_get_ptr(s);
	struct sidecar *m = c->sc->main_ctx;
	gnutls_datum_t d = { NULL, 0 };
	(void)htype, (void)when, (void)incoming, (void)msg;
	if (gnutls_session_get_data2(s, &d) < 0)
		return 0;
	const char *name = section_name(c);
	pthread_mutex_lock(&m->tickets_mu);
	size_t i;
	for (i = 0; i < m->ntickets; i++)
		if (!strcmp(m->tickets[i].name, name))
			break;
	if (i == m->ntickets) {
		m->tickets = xrealloc(m->tickets, (m->ntickets + 1) * sizeof *m->tickets);
		m->tickets[m->ntickets].name = xstrdup(name);
		m->tickets[m->ntickets++].data.data = NULL;
	}
	gnutls_free(m->tickets[i].data.data);
	m->tickets[i].data = d;
	pthread_mutex_unlock(&m->tickets_mu);
	return 0;
}

/* Offers the newest session from this [connect]'s server for resumption. */
static int load_ticket(struct conn *c)
{
	struct sidecar *m = c->sc->main_ctx;
	const char *name = section_name(c);
	int r = 0;
	pthread_mutex_lock(&m->tickets_mu);
	for (size_t i = 0; i < m->ntickets; i++)
		if (!strcmp(m->tickets[i].name, name) && m->tickets[i].data.data)
			r = gnutls_session_set_data(c->tls, m->tickets[i].data.data, m->tickets[i].data.size);
	pthread_mutex_unlock(&m->tickets_mu);
	return r;
}

static void out_start_tls(struct conn *c)
{
	struct sidecar *sc = c->sc;
	const struct cgen *cg = &c->gen->connect[c->idx];
	if (c->tls) {
		/* the session made for the address that failed: a fresh one for
		 * this address */
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	int r = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (r >= 0)
		r = gnutls_priority_set(c->tls, cg->prio);
	if (r >= 0)
		r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cg->cred);
	if (r >= 0 && cg->conf->server_name && !strchr(cg->conf->server_name, ':'))
		r = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, cg->conf->server_name,
					   strlen(cg->conf->server_name));
	if (r >= 0)
		r = load_ticket(c);
	if (r < 0) {
		log_err("connect=%s server=%s cannot set up TLS: %s", section_name(c), c->peer.text,
			gnutls_strerror(r));
		conn_close(c, "setup failed");
		return;
	}
	gnutls_handshake_set_hook_function(c->tls, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_POST,
					   save_ticket);
	gnutls_handshake_set_timeout(c->tls, 0);
	gnutls_session_set_ptr(c->tls, c);
	tls_transport(c);
	(void)sc;
}

/* Tries the next resolved address of the server. */
void out_connect_next(struct conn *c)
{
	const struct connect_conf *cc = &cfg_of(c)->connect[c->idx];
	while (c->ai_next) {
		struct addrinfo *ai = c->ai_next;
		c->ai_next = ai->ai_next;
		memcpy(&c->peer.ss, ai->ai_addr, ai->ai_addrlen);
		c->peer.len = ai->ai_addrlen;
		addr_format(&c->peer);
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		tune_socket(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			log_warn("connect=%s server=%s connect failed: %s", cc->name, c->peer.text, strerror(errno));
			close(fd);
			continue;
		}
		c->tfd = fd;
		c->state = CS_TCP;
		ev_io_set(&c->tio, fd, EV_WRITE);
		ev_io_start(c->sc->loop, &c->tio);
		out_start_tls(c);
		return;
	}
	log_err("connect=%s server %s:%s unreachable: no address left to try", cc->name, cc->server_host,
		cc->server_port);
	conn_close(c, "server unreachable");
}

void conn_resolved(struct conn *c, struct addrinfo *ai, int err)
{
	const struct connect_conf *cc = &cfg_of(c)->connect[c->idx];
	c->rreq = NULL;
	if (!ai) {
		log_err("connect=%s cannot resolve %s: %s", cc->name, cc->server_host, gai_strerror(err));
		conn_close(c, "resolve failed");
		return;
	}
	c->ai = c->ai_next = ai;
	out_connect_next(c);
}

void conn_accept_plain(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lsock *ls = w->data;
	struct sidecar *sc = ls->sc;
	(void)loop, (void)revents;
	for (int i = 0; i < 64; i++) {
		struct addr from;
		int fd = accept_one(sc, ls, &from);
		if (fd == -2)
			continue;
		if (fd < 0)
			return;
		struct conn *c = conn_new(sc, ls, ROLE_OUT);
		const struct connect_conf *cc = &c->gen->cfg->connect[c->idx];
		c->pfd = fd;
		ev_io_set(&c->pio, fd, EV_READ);
		ev_io_start(sc->loop, &c->pio);
		c->state = CS_RESOLVE;
		set_timer(c, cc->connect_timeout);
		c->rreq = resolver_start(sc, c, cc->server_host, cc->server_port);
	}
}
