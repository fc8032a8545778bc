/*
 * flow: flow listeners and the flow table; see flow.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "conn_int.h"
#include "flow.h"
#include "log.h"
#include "tally.h"
#include "metrics.h"

#define FLOW_TAB_SIZE 4096 /* buckets; a power of two */
#define FLOWC_MAX_IN (4 * 1024 * 1024)
/* what may wait for a TLS client that does not read before requests for
 * its flow get 430 (the legacy server's connection to the flow listener is
 * shared by every flow: it cannot wait for one client) */
#define FLOW_OUT_MAX (16 * HIGH_WATER)
#define FLOW_ACCEPT_PAUSE 0.5 /* seconds without accepting when out of descriptors */

/* A connection the legacy server opened to a flow listener. */
struct flowc {
	struct flowc *prev, *next;
	struct sidecar *w;
	int fd;
	int eof;
	ev_io io;
	struct buf in, out;
	struct sipframe sf;
	struct addr peer;
};

/* A message posted to another loop's flow. */
struct xmsg {
	struct xmsg *next;
	uint64_t id;
	size_t len;
	char data[];
};

static size_t bucket(uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 52) & (FLOW_TAB_SIZE - 1);
}

void flow_register(struct conn *c)
{
	struct sidecar *w = c->sc;
	uint64_t serial = ++w->flow_serial & 0xFFFFFFFFFFFFULL;
	if (!serial)
		serial = ++w->flow_serial & 0xFFFFFFFFFFFFULL;
	c->flow_id = ((uint64_t)w->flow_port << 48) | serial;
	size_t b = bucket(c->flow_id);
	c->flow_next = w->flow_tab[b];
	w->flow_tab[b] = c;
}

void flow_unregister(struct conn *c)
{
	struct sidecar *w = c->sc;
	if (!w->flow_tab)
		return;
	struct conn **p = &w->flow_tab[bucket(c->flow_id)];
	while (*p && *p != c)
		p = &(*p)->flow_next;
	if (*p)
		*p = c->flow_next;
	c->flow_id = 0;
}

struct conn *flow_find(struct sidecar *w, uint64_t id)
{
	if (!w->flow_tab || (id >> 48) != w->flow_port)
		return NULL;
	for (struct conn *c = w->flow_tab[bucket(id)]; c; c = c->flow_next)
		if (c->flow_id == id)
			return c;
	return NULL;
}

/* The connection of flow id when it can still take a message, or NULL. */
static struct conn *flow_live(struct sidecar *w, uint64_t id)
{
	struct conn *c = flow_find(w, id);
	return c && c->state == CS_RELAY && !c->tls_eof && !c->want_close ? c : NULL;
}

static void flowc_close(struct flowc *f)
{
	struct sidecar *w = f->w;
	ev_io_stop(w->loop, &f->io);
	close(f->fd);
	buf_free(&f->in);
	buf_free(&f->out);
	if (f->prev)
		f->prev->next = f->next;
	else
		w->flowcs = f->next;
	if (f->next)
		f->next->prev = f->prev;
	free(f);
}

/* Writes what is pending to the legacy server. Returns -1 if f was closed. */
static int flowc_flush(struct flowc *f)
{
	while (f->out.len) {
		ssize_t n = send(f->fd, f->out.d + f->out.off, f->out.len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n <= 0) {
			flowc_close(f);
			return -1;
		}
		buf_consume(&f->out, (size_t)n);
	}
	/* reading waits while the legacy server does not read our answers
	 * (pongs, 430s): what is pending for it stays bounded */
	int ev = (f->eof || f->out.len >= HIGH_WATER ? 0 : EV_READ) | (f->out.len ? EV_WRITE : 0);
	if (!ev) {
		flowc_close(f);
		return -1;
	}
	ev_io_stop(f->w->loop, &f->io);
	ev_io_set(&f->io, f->fd, ev);
	ev_io_start(f->w->loop, &f->io);
	return 0;
}

/* "430 Flow Failed" (RFC 5626 section 5.3) for a request we cannot deliver. */
static void flow_failed(struct flowc *f, const char *msg, const struct sf_msg *m, const char *why)
{
	char out[4096];
	metrics_refused(f->w, "flow failed");
	log_warn("flow legacy=%s flow failed: %s (%.*s)", f->peer.text, why,
		 (int)(m->start_line.len > 80 ? 80 : m->start_line.len), msg + m->start_line.off);
	size_t n = sf_error_response(msg, m, 430, "Flow Failed", NULL, out, sizeof out);
	if (n) {
		st_add(&f->w->st.answers[TA_430], 1);
		buf_append(&f->out, out, n);
	}
}

/* One complete message from the legacy server on a flow connection. */
static void flowc_message(struct flowc *f, const char *msg, const struct sf_msg *m)
{
	struct sidecar *w = f->w;
	if (!m->is_request) {
		log_debug("flow legacy=%s a response on a flow connection dropped: %.*s", f->peer.text,
			  (int)m->start_line.len, msg + m->start_line.off);
		return;
	}
	const struct gen *g = w->gen;
	if (!g || !g->cfg->nlisten) {
		flow_failed(f, msg, m, "no listener");
		return;
	}
	uint64_t id = 0;
	int r = topo_flow_of(g->listen[0].topo.key, g->listen[0].topo.flow_host, msg, m, &id);
	if (r < 0) {
		flow_failed(f, msg, m, "forged flow token");
		return;
	}
	if (r == 0) {
		flow_failed(f, msg, m, "no flow token");
		return;
	}
	struct conn *c = flow_live(w, id);
	if (!c) {
		flow_failed(f, msg, m, "the connection is gone");
		return;
	}
	if (c->to_tls.len >= FLOW_OUT_MAX) {
		flow_failed(f, msg, m, "the client does not read");
		return;
	}
	log_debug("flow legacy=%s request for peer=%s: %.*s", f->peer.text, c->peer.text,
		  (int)(m->start_line.len > 80 ? 80 : m->start_line.len), msg + m->start_line.off);
	c->t_active = ev_now(w->loop);
	(void)conn_send_legacy_msg(c, msg, m);
}

static void flowc_read(struct flowc *f)
{
	struct sidecar *w = f->w;
	for (int i = 0; i < 16 && f->out.len < HIGH_WATER; i++) {
		ssize_t n = recv(f->fd, w->scratch, REC_MAX, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n <= 0) {
			f->eof = 1;
			break;
		}
		buf_append(&f->in, w->scratch, (size_t)n);
		size_t pos = 0;
		while (pos < f->in.len) {
			struct sf_msg m;
			const char *base = f->in.d + f->in.off;
			enum sf_result r = sf_parse(&f->sf, base + pos, f->in.len - pos, &m);
			if (r == SF_NEED_MORE)
				break;
			if (r == SF_ERROR) {
				log_err("flow legacy=%s malformed message: %s (%s)", f->peer.text, m.reason,
					m.detail ? m.detail : "");
				flowc_close(f);
				return;
			}
			if (r == SF_PING)
				buf_append(&f->out, "\r\n", 2);
			else if (r == SF_MESSAGE)
				flowc_message(f, base + pos, &m);
			pos += m.len;
		}
		buf_consume(&f->in, pos);
		if (f->in.len > FLOWC_MAX_IN) {
			flowc_close(f);
			return;
		}
		if ((size_t)n < REC_MAX)
			break;
	}
	flowc_flush(f);
}

static void flowc_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct flowc *f = io->data;
	(void)loop;
	if (revents & EV_WRITE) {
		if (flowc_flush(f) < 0)
			return;
	}
	if (revents & EV_READ)
		flowc_read(f);
}

static void flow_pause_over(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sidecar *w = t->data;
	(void)revents;
	if (w->flow_fd >= 0)
		ev_io_start(loop, &w->flow_io);
}

static void flow_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sidecar *w = io->data;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct addr peer;
		peer.len = sizeof peer.ss;
		int fd = accept4(w->flow_fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				/* level-triggered: it would only fail again */
				ev_io_stop(loop, &w->flow_io);
				ev_timer_set(&w->flow_pause, FLOW_ACCEPT_PAUSE, 0.);
				ev_timer_start(loop, &w->flow_pause);
				log_err("flow accept paused for %.1fs: %s (%s)", FLOW_ACCEPT_PAUSE,
					e == EMFILE   ? "reached process FD limit"
					: e == ENFILE ? "reached system FD limit"
						      : "out of kernel memory",
					strerror(e));
			} else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR && e != ECONNABORTED) {
				log_err("flow accept: %s", strerror(e));
			}
			return;
		}
		addr_format(&peer);
		tune_socket(fd);
		struct flowc *f = xcalloc(1, sizeof *f);
		f->w = w;
		f->fd = fd;
		f->peer = peer;
		sf_init(&f->sf, 4 * 1024 * 1024, NULL);
		ev_io_init(&f->io, flowc_cb, fd, EV_READ);
		f->io.data = f;
		ev_io_start(loop, &f->io);
		f->next = w->flowcs;
		if (w->flowcs)
			w->flowcs->prev = f;
		w->flowcs = f;
		log_debug("flow legacy=%s connected", peer.text);
	}
}

/* Delivers a complete message posted to flow id of this loop. */
static void flow_handle(struct sidecar *w, uint64_t id, const char *data, size_t len)
{
	struct sipframe f;
	struct sf_msg m;
	sf_init(&f, len + 1, NULL);
	if (sf_parse(&f, data, len, &m) != SF_MESSAGE || m.len != len) {
		log_err("flow: a routed message does not frame");
		return;
	}
	struct conn *c = flow_live(w, id);
	if (c && c->to_tls.len < FLOW_OUT_MAX) {
		log_debug("flow to peer=%s: %.*s", c->peer.text, (int)(m.start_line.len > 80 ? 80 : m.start_line.len),
			  data + m.start_line.off);
		c->t_active = ev_now(w->loop);
		(void)conn_send_legacy_msg(c, data, &m);
		return;
	}
	metrics_refused(w, "flow failed");
	log_warn("flow failed: %s (%.*s)", c ? "the client does not read" : "the connection is gone",
		 (int)(m.start_line.len > 80 ? 80 : m.start_line.len), data + m.start_line.off);
	if (m.is_request && w->gen && w->gen->cfg->nlisten) {
		char out[4096];
		size_t n = sf_error_response(data, &m, 430, "Flow Failed", NULL, out, sizeof out);
		if (n) {
			st_add(&w->st.answers[TA_430], 1);
			(void)flow_route_answer(w, w->gen->listen[0].topo.key, out, n);
		}
	}
}

static void xq_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct sidecar *w = a->data;
	(void)loop, (void)revents;
	pthread_mutex_lock(&w->xq_mu);
	struct xmsg *x = w->xq_head;
	w->xq_head = w->xq_tail = NULL;
	pthread_mutex_unlock(&w->xq_mu);
	while (x) {
		struct xmsg *next = x->next;
		flow_handle(w, x->id, x->data, x->len);
		free(x);
		x = next;
	}
}

void flow_post(struct sidecar *w, uint64_t id, const char *data, size_t len)
{
	struct sidecar *m = w->main_ctx ? w->main_ctx : w, *t = NULL;
	unsigned port = (unsigned)(id >> 48);
	for (unsigned i = 0; i < m->nworkers && !t; i++)
		if (m->workers[i] && m->workers[i]->flow_port == port && m->workers[i]->xq_on)
			t = m->workers[i];
	if (!t) {
		metrics_refused(w, "flow failed");
		log_warn("flow failed: no event loop has flow port %u", port);
		return;
	}
	struct xmsg *x = xmalloc(sizeof *x + len);
	x->next = NULL;
	x->id = id;
	x->len = len;
	memcpy(x->data, data, len);
	if (t == w) {
		flow_handle(w, id, x->data, len);
		free(x);
		return;
	}
	pthread_mutex_lock(&t->xq_mu);
	if (!t->xq_on) { /* that loop is stopping */
		pthread_mutex_unlock(&t->xq_mu);
		free(x);
		return;
	}
	if (t->xq_tail)
		t->xq_tail->next = x;
	else
		t->xq_head = x;
	t->xq_tail = x;
	ev_async_send(t->loop, &t->xq_async);
	pthread_mutex_unlock(&t->xq_mu);
}

int flow_route_answer(struct sidecar *w, const struct topo_key *key, const char *msg, size_t len)
{
	struct sipframe f;
	struct sf_msg m;
	uint64_t id;
	size_t off, cut;
	sf_init(&f, len + 1, NULL);
	if (sf_parse(&f, msg, len, &m) != SF_MESSAGE)
		return 0;
	int r = topo_direct_response(key, msg, &m, &id, &off, &cut);
	if (r < 0) {
		log_warn("flow: an answer with a forged Via of ours dropped");
		return -1;
	}
	if (r == 0)
		return 0;
	char *d = xmalloc(len - cut);
	memcpy(d, msg, off);
	memcpy(d + off, msg + off + cut, len - off - cut);
	flow_post(w, id, d, len - cut);
	free(d);
	return 1;
}

int flow_start(struct sidecar *w, const struct config *cfg, unsigned port)
{
	char text[300];
	struct addr a;
	snprintf(text, sizeof text, strchr(cfg->flow_host, ':') ? "[%s]:%u" : "%s:%u", cfg->flow_host, port);
	w->flow_fd = -1;
	if (addr_parse(text, &a) < 0) {
		log_err("flow-bind %s: not an address", text);
		return -1;
	}
	int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a.ss, a.len) < 0 || listen(fd, 512) < 0) {
		log_err("flow-bind %s: %s", text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	a.len = sizeof a.ss;
	if (getsockname(fd, (struct sockaddr *)&a.ss, &a.len) < 0) {
		log_err("flow-bind %s: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	addr_format(&a);
	w->flow_port = a.ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a.ss)->sin_port)
						  : ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
	w->flow_fd = fd;
	w->flow_tab = xcalloc(FLOW_TAB_SIZE, sizeof *w->flow_tab);
	ev_io_init(&w->flow_io, flow_accept_cb, fd, EV_READ);
	w->flow_io.data = w;
	ev_io_start(w->loop, &w->flow_io);
	ev_init(&w->flow_pause, flow_pause_over);
	w->flow_pause.data = w;
	if (pthread_mutex_init(&w->xq_mu, NULL) != 0) {
		log_err("flow: cannot create a mutex");
		return -1;
	}
	pthread_mutex_lock(&w->xq_mu);
	ev_async_init(&w->xq_async, xq_cb);
	w->xq_async.data = w;
	ev_async_start(w->loop, &w->xq_async);
	ev_unref(w->loop); /* the queue alone does not keep the loop alive */
	w->xq_on = 1;
	pthread_mutex_unlock(&w->xq_mu);
	log_info("flows: the legacy server reaches TLS clients through %s", a.text);
	return 0;
}

void flow_stop(struct sidecar *w)
{
	if (w->xq_on) {
		ev_ref(w->loop);
		ev_async_stop(w->loop, &w->xq_async);
		pthread_mutex_lock(&w->xq_mu);
		struct xmsg *x = w->xq_head;
		w->xq_head = w->xq_tail = NULL;
		w->xq_on = 0;
		pthread_mutex_unlock(&w->xq_mu);
		while (x) {
			struct xmsg *next = x->next;
			free(x);
			x = next;
		}
		/* the mutex stays: another loop may still look at xq_on */
	}
	while (w->flowcs)
		flowc_close(w->flowcs);
	if (w->flow_fd > 0) {
		ev_io_stop(w->loop, &w->flow_io);
		ev_timer_stop(w->loop, &w->flow_pause);
		close(w->flow_fd);
		w->flow_fd = -1;
	}
	/* connections still open keep their ids; the table goes */
	for (struct conn *c = w->conns; c; c = c->next)
		c->flow_id = 0;
	free(w->flow_tab);
	w->flow_tab = NULL;
	free(w->topo_buf.d);
	free(w->topo_buf2.d);
	memset(&w->topo_buf, 0, sizeof w->topo_buf);
	memset(&w->topo_buf2, 0, sizeof w->topo_buf2);
}
