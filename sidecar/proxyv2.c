/*
 * proxyv2: PROXY protocol v2 header with PP2_TYPE_SSL TLVs.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <netinet/in.h>
#include <string.h>

#include "proxyv2.h"

static const uint8_t pp2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* Appends a TLV; returns the new length or 0 on overflow. */
static size_t tlv(uint8_t *out, size_t len, size_t cap, uint8_t type, const void *val, size_t vlen)
{
	if (vlen > 0xffff || len + 3 + vlen > cap)
		return 0;
	out[len] = type;
	out[len + 1] = (uint8_t)(vlen >> 8);
	out[len + 2] = (uint8_t)vlen;
	memcpy(out + len + 3, val, vlen);
	return len + 3 + vlen;
}

size_t pp2_build(uint8_t *out, size_t cap, const struct sockaddr *src, const struct sockaddr *dst,
		 const struct pp2_tls *tls)
{
	size_t len = 16;
	if (cap < 16 + 36)
		return 0;
	memcpy(out, pp2_sig, 12);
	out[12] = 0x21; /* version 2, PROXY */
	if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
		out[13] = 0x11; /* TCP over IPv4 */
		memcpy(out + 16, &s->sin_addr, 4);
		memcpy(out + 20, &d->sin_addr, 4);
		memcpy(out + 24, &s->sin_port, 2);
		memcpy(out + 26, &d->sin_port, 2);
		len += 12;
	} else if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
		out[13] = 0x21; /* TCP over IPv6 */
		memcpy(out + 16, &s->sin6_addr, 16);
		memcpy(out + 32, &d->sin6_addr, 16);
		memcpy(out + 48, &s->sin6_port, 2);
		memcpy(out + 50, &d->sin6_port, 2);
		len += 36;
	} else {
		out[13] = 0x00; /* UNSPEC */
	}
	if (tls && tls->present) {
		uint8_t ssl[PP2_MAX];
		size_t sl = 5;
		/* CERT_SESS: a certificate was presented on this TLS session at
		 * least once; CERT_CONN: on this very connection (not resumed) */
		ssl[0] = PP2_CLIENT_SSL |
			 (tls->client_cert ? PP2_CLIENT_CERT_SESS | (tls->resumed ? 0 : PP2_CLIENT_CERT_CONN) : 0);
		ssl[1] = (uint8_t)(tls->verify >> 24);
		ssl[2] = (uint8_t)(tls->verify >> 16);
		ssl[3] = (uint8_t)(tls->verify >> 8);
		ssl[4] = (uint8_t)tls->verify;
		if (tls->version && !(sl = tlv(ssl, sl, sizeof ssl, PP2_SUBTYPE_SSL_VERSION, tls->version,
					       strlen(tls->version))))
			return 0;
		if (tls->cipher && !(sl = tlv(ssl, sl, sizeof ssl, PP2_SUBTYPE_SSL_CIPHER, tls->cipher,
					      strlen(tls->cipher))))
			return 0;
		if (tls->cn && !(sl = tlv(ssl, sl, sizeof ssl, PP2_SUBTYPE_SSL_CN, tls->cn, strlen(tls->cn))))
			return 0;
		if (!(len = tlv(out, len, cap, PP2_TYPE_SSL, ssl, sl)))
			return 0;
	}
	out[14] = (uint8_t)((len - 16) >> 8);
	out[15] = (uint8_t)(len - 16);
	return len;
}
