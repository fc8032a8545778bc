/*
 * conn_backend: the inbound connection's plaintext side: connecting the
 * legacy server (with an optional PROXY v2 header), and what happens when it
 * cannot be reached.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxyv2.h"

#include "conn_int.h"
#include "log.h"

void backend_failed(struct conn *c, const char *why)
{
	const struct listen_conf *lc = &cfg_of(c)->listen[c->idx];
	log_err("listen=%s peer=%s backend %s unavailable: %s", lc->name, c->peer.text, lc->backend.text, why);
	tally_add(c->tsec, &c->tsec->backend_failures, 1);
	ev_io_stop(c->sc->loop, &c->pio);
	if (c->pfd >= 0)
		close(c->pfd);
	c->pfd = -1;
	c->pio.fd = -1;
	buf_free(&c->to_plain);
	if (!c->sf) {
		finish(c, "backend unavailable");
		return;
	}
	c->state = CS_NOBACKEND;
	set_timer(c, NOBACKEND_SECS);
	io_want(c, &c->tio, EV_READ);
	tls_read(c);
}

static void proxy_header(struct conn *c)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof local;
	uint8_t hdr[PP2_MAX];
	if (getsockname(c->tfd, (struct sockaddr *)&local, &ll) < 0)
		memset(&local, 0, sizeof local);
	struct pp2_tls t = { .present = 1, .client_cert = !c->anonymous, .resumed = c->resumed,
			     .verify = c->anonymous ? 1 : 0, .cn = c->identity };
	char vers[16];
	const char *pv = gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls));
	/* haproxy spells versions "TLSv1.3" */
	snprintf(vers, sizeof vers, "TLSv%s", pv && !strncmp(pv, "TLS1", 4) ? pv + 3 : "?");
	t.version = vers;
	t.cipher = gnutls_cipher_get_name(gnutls_cipher_get(c->tls));
	size_t n = pp2_build(hdr, sizeof hdr, (struct sockaddr *)&c->peer.ss, (struct sockaddr *)&local, &t);
	if (n)
		buf_append(&c->to_plain, hdr, n);
}

void backend_connect(struct conn *c)
{
	const struct listen_conf *lc = &cfg_of(c)->listen[c->idx];
	int fd = socket(lc->backend.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		backend_failed(c, strerror(errno));
		return;
	}
	tune_socket(fd);
	c->pfd = fd;
	ev_io_init(&c->pio, pio_cb, fd, EV_WRITE);
	c->pio.data = c;
	if (lc->proxy_protocol == PROXY_V2)
		proxy_header(c);
	if (connect(fd, (struct sockaddr *)&lc->backend.ss, lc->backend.len) == 0) {
		start_relay(c);
		return;
	}
	if (errno != EINPROGRESS) {
		backend_failed(c, strerror(errno));
		return;
	}
	c->state = CS_CONNECTING;
	io_want(c, &c->tio, 0);
	io_want(c, &c->pio, EV_WRITE);
	set_timer(c, cfg_of(c)->handshake_timeout);
}
