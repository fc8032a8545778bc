/*
 * conn_tls: a connection's buffers, and the TLS transport under GnuTLS:
 * a read-ahead pull (one recv() per record, not GnuTLS's header-then-body
 * pair) and a vectored push.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "conn_int.h"
#include "log.h"

void buf_append(struct buf *b, const void *data, size_t n)
{
	if (b->off && b->off + b->len + n > b->cap) {
		memmove(b->d, b->d + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		uint32_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		b->d = xrealloc(b->d, cap);
		b->cap = cap;
	}
	memcpy(b->d + b->off + b->len, data, n);
	b->len += (uint32_t)n;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += (uint32_t)n;
	b->len -= (uint32_t)n;
	if (b->len == 0) {
		/* release idle memory: idle connections keep no buffers */
		free(b->d);
		b->d = NULL;
		b->off = b->cap = 0;
	}
}

void buf_free(struct buf *b)
{
	free(b->d);
	memset(b, 0, sizeof *b);
}

/* Moves read-ahead bytes still in the loop's buffer to their connection. */
void ra_spill(struct sidecar *sc)
{
	if (sc->ra_owner && sc->ra_len)
		buf_append(&sc->ra_owner->ra, sc->ra + sc->ra_off, sc->ra_len);
	sc->ra_owner = NULL;
	sc->ra_off = sc->ra_len = 0;
}

/* TLS bytes that were read from the socket but not yet handed to GnuTLS. */
int ra_pending(const struct conn *c)
{
	return c->ra.len || (c->sc->ra_owner == c && c->sc->ra_len);
}

static ssize_t pull_some(struct conn *c, void *data, size_t len)
{
	struct sidecar *sc = c->sc;
	size_t n;
	if (c->ra.len) {
		n = len < c->ra.len ? len : c->ra.len;
		memcpy(data, c->ra.d + c->ra.off, n);
		buf_consume(&c->ra, n);
		return (ssize_t)n;
	}
	if (sc->ra_owner == c && sc->ra_len) {
		n = len < sc->ra_len ? len : sc->ra_len;
		memcpy(data, sc->ra + sc->ra_off, n);
		sc->ra_off += (uint32_t)n;
		sc->ra_len -= (uint32_t)n;
		return (ssize_t)n;
	}
	ra_spill(sc);
	if (len >= RA_SIZE) {
		ssize_t r = recv(c->tfd, data, len, 0);
		if (r < 0)
			gnutls_transport_set_errno(c->tls, errno);
		return r;
	}
	ssize_t r = recv(c->tfd, sc->ra, RA_SIZE, 0);
	if (r <= 0) {
		if (r < 0)
			gnutls_transport_set_errno(c->tls, errno);
		return r;
	}
	n = (size_t)r < len ? (size_t)r : len;
	memcpy(data, sc->ra, n);
	if ((size_t)r > n) {
		sc->ra_owner = c;
		sc->ra_off = (uint32_t)n;
		sc->ra_len = (uint32_t)((size_t)r - n);
	}
	return (ssize_t)n;
}

/* GnuTLS keeps a handshake message whole until it is complete, whatever
 * size its header announces: what a peer may send before the handshake
 * completes is capped, so that a ClientHello announcing 16 MiB costs 64 KiB
 * at most, and is refused when it asks for more. */
static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct conn *c = ptr;
	if (!c->hs_done) {
		if (c->hs_in >= HANDSHAKE_MAX) {
			if (!c->reason) {
				c->reason = "handshake too large";
				snprintf(c->reason_detail, sizeof c->reason_detail,
					 "more than %u bytes before the handshake completed", (unsigned)HANDSHAKE_MAX);
			}
			gnutls_transport_set_errno(c->tls, EMSGSIZE);
			return -1;
		}
		if (len > HANDSHAKE_MAX - c->hs_in)
			len = HANDSHAKE_MAX - c->hs_in;
	}
	ssize_t r = pull_some(c, data, len);
	if (r > 0 && !c->hs_done)
		c->hs_in += (uint32_t)r;
	return r;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct conn *c = ptr;
	struct msghdr mh;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = (struct iovec *)iov;
	mh.msg_iovlen = (size_t)iovcnt;
	ssize_t r = sendmsg(c->tfd, &mh, MSG_NOSIGNAL);
	if (r < 0)
		gnutls_transport_set_errno(c->tls, errno);
	return r;
}

void tls_transport(struct conn *c)
{
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_vec_push_function(c->tls, tls_push);
}
