/*
 * proxyv2: the PROXY protocol version 2 header (haproxy's proxy-protocol.txt)
 * that precedes the plaintext on a backend connection, with the TLS TLVs.
 * Pure: builds bytes only.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_PROXYV2_H
#define SIDECAR_PROXYV2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_SUBTYPE_SSL_CIPHER 0x23
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

struct pp2_tls {
	int present;            /* emit PP2_TYPE_SSL */
	int client_cert;        /* the peer presented a certificate */
	int resumed;            /* ...on an earlier connection (session resumed) */
	uint32_t verify;        /* 0 = verified */
	const char *version;    /* e.g. "TLSv1.3" */
	const char *cn;         /* verified identity, or NULL */
	const char *cipher;     /* e.g. "TLS_AES_256_GCM_SHA384", or NULL */
};

/*
 * Writes the header for a TCP connection from src to dst (both AF_INET or
 * both AF_INET6; otherwise the UNSPEC/LOCAL form) into out. Returns its
 * length, or 0 if cap is too small (536 bytes always suffice).
 */
size_t pp2_build(uint8_t *out, size_t cap, const struct sockaddr *src, const struct sockaddr *dst,
		 const struct pp2_tls *tls);

#define PP2_MAX 536

#endif
