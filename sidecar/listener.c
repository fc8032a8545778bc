/*
 * listener: bind/listen, and the two-phase update of the socket set on
 * reload, so an unchanged listener never stops accepting.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "listener.h"
#include "log.h"

#define BACKLOG 4096
#define ACCEPT_PAUSE 0.5 /* seconds without accepting when out of descriptors */

/* Opens a non-blocking listening socket on a; returns the fd or -1 (errno). */
static int bind_socket(const struct addr *a, int reuseport)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail;
	/* several workers: one socket each, the kernel spreads connections */
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		goto fail;
	if (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, BACKLOG) < 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static struct lsock *find(struct sidecar *sc, enum lsock_kind kind, const struct addr *a)
{
	for (struct lsock *ls = sc->lsocks; ls; ls = ls->next)
		if (ls->kind == kind && !strcmp(ls->bind.text, a->text))
			return ls;
	return NULL;
}

static void lsock_free(struct sidecar *sc, struct lsock *ls)
{
	for (struct conn *c = sc->conns; c; c = c->next)
		if (c->ls == ls)
			c->ls = NULL; /* connections outlive their listener */
	ev_io_stop(sc->loop, &ls->io);
	ev_timer_stop(sc->loop, &ls->pause);
	if (ls->fd >= 0)
		close(ls->fd);
	free(ls->name);
	free(ls);
}

/* Adds a not-yet-started socket for (kind, a); returns -1 if bind fails. */
/* A listening TCP socket passed by systemd for address a, duplicated (each
 * worker gets its own descriptor of the same socket), or -1. */
static int inherited_socket(struct sidecar *sc, const struct addr *a)
{
	const struct sidecar *m = sc->main_ctx ? sc->main_ctx : sc;
	for (int i = 0; i < m->ninherited; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int type = 0, listening = 0;
		socklen_t tl = sizeof type, ll = sizeof listening;
		if (getsockname(m->inherited[i], (struct sockaddr *)&ss, &len) < 0 ||
		    getsockopt(m->inherited[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
		    getsockopt(m->inherited[i], SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 ||
		    type != SOCK_STREAM || !listening)
			continue;
		struct addr have = { .len = len };
		memcpy(&have.ss, &ss, sizeof ss);
		addr_format(&have);
		if (strcmp(have.text, a->text))
			continue;
		int fd = fcntl(m->inherited[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return -1;
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	return -1;
}

static void pause_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lsock *ls = w->data;
	(void)revents;
	ev_io_start(loop, &ls->io);
}

void listener_pause(struct lsock *ls, int err)
{
	struct sidecar *sc = ls->sc;
	if (ev_is_active(&ls->pause))
		return;
	ev_io_stop(sc->loop, &ls->io);
	ev_timer_set(&ls->pause, ACCEPT_PAUSE, 0.);
	ev_timer_start(sc->loop, &ls->pause);
	log_err("%s=%s accept paused for %.1fs: %s (%s)", ls->kind == LSOCK_LISTEN ? "listen" : "connect", ls->name,
		ACCEPT_PAUSE,
		err == EMFILE ? "reached process FD limit" : err == ENFILE ? "reached system FD limit" : "out of kernel memory",
		strerror(err));
}

static int add_new(struct sidecar *sc, enum lsock_kind kind, const struct addr *a, const char *name,
		   unsigned line, const char *file, struct diag *d)
{
	int fd = inherited_socket(sc, a);
	if (fd >= 0 && sc == (sc->workers_first ? sc->workers_first : sc))
		log_info("%s=%s uses the socket systemd passed for %s", kind == LSOCK_LISTEN ? "listen" : "connect",
			 name, a->text);
	if (fd < 0)
		fd = bind_socket(a, sc->reuseport);
	if (fd < 0) {
		diag_add(d, file, line, "cannot listen on %s for [%s %s]: %s", a->text,
			 kind == LSOCK_LISTEN ? "listen" : "connect", name, strerror(errno));
		return -1;
	}
	struct lsock *ls = xcalloc(1, sizeof *ls);
	ls->sc = sc;
	ls->kind = kind;
	ls->bind = *a;
	ls->fd = fd;
	ls->keep = 2; /* new */
	ls->name = xstrdup(name);
	ev_io_init(&ls->io, kind == LSOCK_LISTEN ? conn_accept_tls : conn_accept_plain, fd, EV_READ);
	ls->io.data = ls;
	ev_init(&ls->pause, pause_over);
	ls->pause.data = ls;
	ls->next = sc->lsocks;
	sc->lsocks = ls;
	return 0;
}

int listeners_prepare(struct sidecar *sc, struct gen *g, struct diag *d)
{
	const struct config *cfg = g->cfg;
	int bad = 0;
	for (struct lsock *ls = sc->lsocks; ls; ls = ls->next)
		ls->keep = 0;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct lsock *ls = find(sc, LSOCK_LISTEN, &cfg->listen[i].bind);
		if (ls)
			ls->keep = 1;
		else if (add_new(sc, LSOCK_LISTEN, &cfg->listen[i].bind, cfg->listen[i].name,
				 cfg->listen[i].bind_line, cfg->file, d) < 0)
			bad = 1;
	}
	for (size_t i = 0; i < cfg->nconnect; i++) {
		struct lsock *ls = find(sc, LSOCK_CONNECT, &cfg->connect[i].bind);
		if (ls)
			ls->keep = 1;
		else if (add_new(sc, LSOCK_CONNECT, &cfg->connect[i].bind, cfg->connect[i].name,
				 cfg->connect[i].bind_line, cfg->file, d) < 0)
			bad = 1;
	}
	if (!bad)
		return 0;
	listeners_rollback(sc);
	return -1;
}

void listeners_rollback(struct sidecar *sc)
{
	/* close only what the last prepare bound */
	struct lsock **pp = &sc->lsocks;
	while (*pp) {
		struct lsock *ls = *pp;
		if (ls->keep == 2) {
			*pp = ls->next;
			lsock_free(sc, ls);
		} else {
			pp = &ls->next;
		}
	}
}

static void append(char *what, size_t whatsz, const char *fmt, const char *kind, const char *name,
		   const char *addr)
{
	if (!what)
		return;
	size_t n = strlen(what);
	snprintf(what + n, whatsz - n, fmt, n ? "; " : "", kind, name, addr);
}

void listeners_commit(struct sidecar *sc, int verbose, char *what, size_t whatsz)
{
	const struct config *cfg = sc->gen->cfg;
	struct lsock **pp = &sc->lsocks;
	while (*pp) {
		struct lsock *ls = *pp;
		const char *kind = ls->kind == LSOCK_LISTEN ? "listen" : "connect";
		if (!ls->keep) {
			if (verbose)
				log_info("%s=%s closed listener on %s", kind, ls->name, ls->bind.text);
			append(what, whatsz, "%sremoved [%s %s] %s", kind, ls->name, ls->bind.text);
			*pp = ls->next;
			lsock_free(sc, ls);
			continue;
		}
		size_t n = ls->kind == LSOCK_LISTEN ? cfg->nlisten : cfg->nconnect;
		for (size_t i = 0; i < n; i++) {
			const struct addr *a = ls->kind == LSOCK_LISTEN ? &cfg->listen[i].bind : &cfg->connect[i].bind;
			const char *name = ls->kind == LSOCK_LISTEN ? cfg->listen[i].name : cfg->connect[i].name;
			if (strcmp(a->text, ls->bind.text))
				continue;
			ls->idx = i;
			if (strcmp(ls->name, name)) {
				free(ls->name);
				ls->name = xstrdup(name);
			}
		}
		if (ls->keep == 2) {
			ev_io_start(sc->loop, &ls->io);
			if (verbose)
				log_info("%s=%s listening on %s", kind, ls->name, ls->bind.text);
			append(what, whatsz, "%sadded [%s %s] %s", kind, ls->name, ls->bind.text);
			ls->keep = 1;
		}
		pp = &ls->next;
	}
}

void listeners_close_all(struct sidecar *sc)
{
	while (sc->lsocks) {
		struct lsock *ls = sc->lsocks;
		sc->lsocks = ls->next;
		lsock_free(sc, ls);
	}
}
