/*
 * oneshot: one request, one answer, close; see oneshot.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx.h"
#include "log.h"
#include "oneshot.h"

#define MAX_CLIENTS 32      /* in progress at once; more are closed at once */
#define CLIENT_SECS 5.0     /* to send the request and read the answer */
#define REQ_MAX 2048

struct oclient {
	ev_io io;
	ev_timer timer;
	int fd;
	struct oneshot *o;
	char req[REQ_MAX];
	size_t rlen;
	char *out;               /* the whole answer */
	size_t off, len;
	struct oclient *prev, *next;
};

struct oneshot {
	struct sidecar *sc;
	int fd;
	ev_io io;
	oneshot_fn fn;
	unsigned n;
	struct oclient *clients;
};

static void client_free(struct oclient *m)
{
	struct oneshot *o = m->o;
	ev_io_stop(o->sc->loop, &m->io);
	ev_timer_stop(o->sc->loop, &m->timer);
	close(m->fd);
	free(m->out);
	o->n--;
	if (m->prev)
		m->prev->next = m->next;
	else
		o->clients = m->next;
	if (m->next)
		m->next->prev = m->prev;
	free(m);
}

/* Sends what the socket takes now, the rest when it is writable again. */
static void client_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct oclient *m = w->data;
	(void)revents;
	while (m->off < m->len) {
		ssize_t r = send(m->fd, m->out + m->off, m->len - m->off, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!(m->io.events & EV_WRITE)) {
				ev_io_stop(loop, &m->io);
				ev_io_set(&m->io, m->fd, EV_WRITE);
				ev_set_cb(&m->io, client_write);
				ev_io_start(loop, &m->io);
			}
			return;
		}
		if (r <= 0) {
			log_debug("local client: send: %s", r < 0 ? strerror(errno) : "closed");
			break;
		}
		m->off += (size_t)r;
	}
	/* the request's unread rest would make close() send a reset */
	(void)shutdown(m->fd, SHUT_WR);
	char sink[512];
	while (recv(m->fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
		;
	client_free(m);
}

static void client_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct oclient *m = w->data;
	(void)revents;
	ssize_t r = recv(m->fd, m->req + m->rlen, sizeof m->req - 1 - m->rlen, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		client_free(m);
		return;
	}
	m->rlen += (size_t)r;
	m->req[m->rlen] = '\0';
	if (!memchr(m->req, '\n', m->rlen) && m->rlen < sizeof m->req - 1)
		return; /* the first line is not complete yet */
	m->out = m->o->fn(m->o->sc, m->req, &m->len);
	client_write(loop, &m->io, EV_WRITE);
}

static void client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct oclient *m = w->data;
	(void)loop, (void)revents;
	log_debug("local client: %s after %.0fs, cut", m->out ? "answer not read" : "no request", CLIENT_SECS);
	client_free(m);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct oneshot *o = w->data;
	(void)revents;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(o->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (o->n >= MAX_CLIENTS) {
			close(fd); /* a storm of questions is not served at the loops' expense */
			continue;
		}
		struct oclient *m = xcalloc(1, sizeof *m);
		m->fd = fd;
		m->o = o;
		o->n++;
		m->next = o->clients;
		if (o->clients)
			o->clients->prev = m;
		o->clients = m;
		ev_io_init(&m->io, client_read, fd, EV_READ);
		ev_timer_init(&m->timer, client_timeout, CLIENT_SECS, 0.);
		m->io.data = m->timer.data = m;
		ev_io_start(loop, &m->io);
		ev_timer_start(loop, &m->timer);
	}
}

struct oneshot *oneshot_start(struct sidecar *sc, int fd, oneshot_fn fn)
{
	struct oneshot *o = xcalloc(1, sizeof *o);
	o->sc = sc;
	o->fd = fd;
	o->fn = fn;
	ev_io_init(&o->io, on_accept, fd, EV_READ);
	o->io.data = o;
	ev_io_start(sc->loop, &o->io);
	return o;
}

void oneshot_stop(struct oneshot *o)
{
	if (!o)
		return;
	while (o->clients)
		client_free(o->clients);
	ev_io_stop(o->sc->loop, &o->io);
	close(o->fd);
	free(o);
}
