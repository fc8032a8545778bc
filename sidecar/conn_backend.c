/*
 * conn_backend: the inbound connection's plaintext side: connecting the
 * legacy server (with an optional PROXY v2 header), and what happens when it
 * cannot be reached.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <netinet/in.h>
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
	tally_add(c->tsec, backend_failures, 1);
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

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/*
 * A socket to the backend with connect() started, from the next address of
 * backend-source (round robin per loop) when the listener has one. A source
 * whose ports toward the backend are all taken (EADDRNOTAVAIL) hands over to
 * the next. Returns the socket (*now set when connected at once), or -1
 * with errno set and *why naming what failed.
 */
static int backend_socket(struct conn *c, const struct listen_conf *lc, int *now, const char **why)
{
	size_t n = lc->nbsrc ? lc->nbsrc : 1;
	size_t first = lc->nbsrc ? c->sc->bsrc_next++ % lc->nbsrc : 0;
	int err = 0;
	*now = 0;
	*why = "";
	for (size_t k = 0; k < n; k++) {
		int fd = socket(lc->backend.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		tune_socket(fd);
		if (lc->nbsrc) {
			/* the port is chosen at connect(), per destination:
			 * without this, bind() would take one for good */
			int one = 1;
			struct sockaddr_in src = { .sin_family = AF_INET };
			src.sin_addr.s_addr = htonl(lc->bsrc[(first + k) % lc->nbsrc]);
			if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0 ||
			    bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
				err = errno;
				close(fd);
				*why = "backend-source: ";
				if (err == EADDRINUSE || err == EADDRNOTAVAIL)
					continue;
				errno = err;
				return -1;
			}
		}
		if (connect(fd, (struct sockaddr *)&lc->backend.ss, lc->backend.len) == 0) {
			*now = 1;
			return fd;
		}
		if (errno == EINPROGRESS)
			return fd;
		err = errno;
		close(fd);
		if (lc->nbsrc && (err == EADDRNOTAVAIL || err == EADDRINUSE)) {
			*why = "every backend-source address: ";
			continue;
		}
		errno = err;
		return -1;
	}
	*why = "every backend-source address: ";
	errno = err;
	return -1;
}

void backend_connect(struct conn *c)
{
	const struct listen_conf *lc = &cfg_of(c)->listen[c->idx];
	int now;
	const char *why;
	int fd = backend_socket(c, lc, &now, &why);
	if (fd < 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "%s%s", why, strerror(errno));
		backend_failed(c, msg);
		return;
	}
	c->pfd = fd;
	ev_io_init(&c->pio, pio_cb, fd, EV_WRITE);
	c->pio.data = c;
	if (lc->proxy_protocol == PROXY_V2)
		proxy_header(c);
	if (now) {
		start_relay(c);
		return;
	}
	c->state = CS_CONNECTING;
	io_want(c, &c->tio, 0);
	io_want(c, &c->pio, EV_WRITE);
	set_timer(c, cfg_of(c)->handshake_timeout);
}
