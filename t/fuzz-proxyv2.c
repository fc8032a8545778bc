/*
 * fuzz-proxyv2: libFuzzer target for the PROXY protocol v2 header builder
 * (sidecar/proxyv2.c, pp2_build).
 *
 * Input: byte 0 picks the address families (bits 0-1 source: IPv4, IPv6,
 * AF_UNIX, AF_UNSPEC; bits 2-3 destination, the same), bit 4 whether the
 * TLS block is present, bit 5 client_cert, bit 6 resumed; bytes 1-2 the
 * output capacity (big-endian, at most PP2_MAX + 64); bytes 3-6 the verify
 * result; then 36 bytes of addresses and ports (source address, destination
 * address, source port, destination port); the rest is split at '\0' into
 * the version, cipher and CN strings (each absent when its part is
 * missing; a part of exactly one byte 0xff is also "absent"). These are
 * the builder's inputs as the daemon has them from the peer and the TLS
 * session: the CN comes from a peer certificate.
 *
 * The output buffer is an exact-size heap block (AddressSanitizer catches
 * a write past cap). The invariants checked (abort() on failure):
 *  - the result is 0 or the exact header length, never above cap;
 *  - a header starts with the signature, version 2 / PROXY, the family byte
 *    for the pair (TCP4 only for two IPv4 addresses, TCP6 only for two
 *    IPv6, else UNSPEC), and its length field is the rest of the header;
 *  - the addresses and ports are the inputs, in network order;
 *  - the TLVs tile the rest exactly: one PP2_TYPE_SSL when present, whose
 *    client byte, verify field and sub-TLVs carry the inputs byte for byte;
 *  - it refuses (0) exactly when cap is under 52, the header is longer
 *    than cap, or the SSL TLV's value is longer than PP2_MAX; with a
 *    buffer of PP2_MAX + 64 bytes it gives the same bytes as with cap.
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named on
 * its command line once (regression runs without libFuzzer).
 * SPDX-License-Identifier: MIT
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxyv2.h"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Fills ss with family f (0 IPv4, 1 IPv6, 2 AF_UNIX, 3 AF_UNSPEC) from
 * addr (16 bytes) and port (2 bytes, network order). */
static void make_addr(struct sockaddr_storage *ss, unsigned f, const uint8_t *addr, const uint8_t *port)
{
	memset(ss, 0, sizeof *ss);
	if (f == 0) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, addr, 4);
		memcpy(&s->sin_port, port, 2);
	} else if (f == 1) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, addr, 16);
		memcpy(&s->sin6_port, port, 2);
	} else if (f == 2) {
		struct sockaddr_un *s = (struct sockaddr_un *)ss;
		s->sun_family = AF_UNIX;
		memcpy(s->sun_path, addr, 16);
	} else {
		ss->ss_family = AF_UNSPEC;
	}
}

/* Checks one sub-TLV value against the input string (NULL: must be absent). */
static void check_str(const char *want, const uint8_t *got, size_t glen, int seen)
{
	if (!want) {
		CHECK(!seen);
		return;
	}
	CHECK(seen);
	CHECK(glen == strlen(want) && memcmp(got, want, glen) == 0);
}

/* Takes the header apart and checks it against the inputs. */
static void check_header(const uint8_t *h, size_t n, unsigned fs, unsigned fd, const uint8_t *addrs,
			 const struct pp2_tls *tls)
{
	size_t off, alen;
	unsigned nssl = 0;

	CHECK(n >= 16);
	CHECK(memcmp(h, sig, 12) == 0);
	CHECK(h[12] == 0x21);
	CHECK(be16(h + 14) == n - 16);
	if (fs == 0 && fd == 0) {
		CHECK(h[13] == 0x11);
		alen = 12;
		CHECK(memcmp(h + 16, addrs, 4) == 0 && memcmp(h + 20, addrs + 16, 4) == 0);
		CHECK(memcmp(h + 24, addrs + 32, 2) == 0 && memcmp(h + 26, addrs + 34, 2) == 0);
	} else if (fs == 1 && fd == 1) {
		CHECK(h[13] == 0x21);
		alen = 36;
		CHECK(memcmp(h + 16, addrs, 16) == 0 && memcmp(h + 32, addrs + 16, 16) == 0);
		CHECK(memcmp(h + 48, addrs + 32, 2) == 0 && memcmp(h + 50, addrs + 34, 2) == 0);
	} else {
		CHECK(h[13] == 0x00);
		alen = 0;
	}
	CHECK(16 + alen <= n);
	off = 16 + alen;
	while (off < n) {
		size_t vlen, soff, send;
		int seen_v = 0, seen_c = 0, seen_n = 0;
		const uint8_t *vv = NULL, *vc = NULL, *vn = NULL;
		size_t lv = 0, lc = 0, ln = 0;

		CHECK(off + 3 <= n);
		vlen = be16(h + off + 1);
		CHECK(off + 3 + vlen <= n);
		CHECK(h[off] == PP2_TYPE_SSL);
		nssl++;
		CHECK(vlen >= 5);
		soff = off + 3;
		send = soff + vlen;
		CHECK(h[soff] == (PP2_CLIENT_SSL | (tls->client_cert ? PP2_CLIENT_CERT_SESS |
								       (tls->resumed ? 0 : PP2_CLIENT_CERT_CONN)
								 : 0)));
		CHECK(((uint32_t)h[soff + 1] << 24 | (uint32_t)h[soff + 2] << 16 | (uint32_t)h[soff + 3] << 8 |
		       h[soff + 4]) == tls->verify);
		soff += 5;
		while (soff < send) {
			size_t l;
			CHECK(soff + 3 <= send);
			l = be16(h + soff + 1);
			CHECK(soff + 3 + l <= send);
			switch (h[soff]) {
			case PP2_SUBTYPE_SSL_VERSION:
				CHECK(!seen_v);
				seen_v = 1, vv = h + soff + 3, lv = l;
				break;
			case PP2_SUBTYPE_SSL_CIPHER:
				CHECK(!seen_c);
				seen_c = 1, vc = h + soff + 3, lc = l;
				break;
			case PP2_SUBTYPE_SSL_CN:
				CHECK(!seen_n);
				seen_n = 1, vn = h + soff + 3, ln = l;
				break;
			default:
				CHECK(!"unexpected SSL sub-TLV");
			}
			soff += 3 + l;
		}
		CHECK(soff == send);
		check_str(tls->version, vv, lv, seen_v);
		check_str(tls->cipher, vc, lc, seen_c);
		check_str(tls->cn, vn, ln, seen_n);
		off = send;
	}
	CHECK(off == n);
	CHECK(nssl == (tls->present ? 1u : 0u));
}

/* Splits s[0..n) at the first NUL: the part becomes a heap string (NULL if
 * absent or exactly "\xff"); advances *rest and *rn past it. */
static char *take(const uint8_t **rest, size_t *rn)
{
	const uint8_t *p = *rest, *z;
	size_t l;
	char *s;

	if (*rest == NULL)
		return NULL;
	z = memchr(p, 0, *rn);
	l = z ? (size_t)(z - p) : *rn;
	if (z) {
		*rest = z + 1;
		*rn -= l + 1;
	} else {
		*rest = NULL;
		*rn = 0;
	}
	if (l == 1 && p[0] == 0xff)
		return NULL;
	s = malloc(l + 1);
	CHECK(s);
	memcpy(s, p, l);
	s[l] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst;
	struct pp2_tls tls;
	unsigned fs, fd;
	size_t cap, n, n2, rn, need, inner;
	int fits;
	const uint8_t *rest;
	uint8_t *out, big[PP2_MAX + 64];
	char *version, *cipher, *cn;

	if (size < 7 + 36 || size > 4096)
		return 0;
	fs = data[0] & 3;
	fd = (data[0] >> 2) & 3;
	cap = be16(data + 1) % (PP2_MAX + 65);
	memset(&tls, 0, sizeof tls);
	tls.present = (data[0] >> 4) & 1;
	tls.client_cert = (data[0] >> 5) & 1;
	tls.resumed = (data[0] >> 6) & 1;
	tls.verify = (uint32_t)data[3] << 24 | (uint32_t)data[4] << 16 | (uint32_t)data[5] << 8 | data[6];
	make_addr(&src, fs, data + 7, data + 7 + 32);
	make_addr(&dst, fd, data + 7 + 16, data + 7 + 34);
	rest = data + 7 + 36;
	rn = size - 7 - 36;
	version = take(&rest, &rn);
	cipher = take(&rest, &rn);
	cn = take(&rest, &rn);
	tls.version = version;
	tls.cipher = cipher;
	tls.cn = cn;

	/* what the header needs: 16, the address block, the SSL TLV (its
	 * value, inner, is built in a PP2_MAX buffer) */
	inner = 5 + (version ? 3 + strlen(version) : 0) + (cipher ? 3 + strlen(cipher) : 0) +
		(cn ? 3 + strlen(cn) : 0);
	need = 16 + (fs == 0 && fd == 0 ? 12 : fs == 1 && fd == 1 ? 36 : 0) + (tls.present ? 3 + inner : 0);
	fits = !(tls.present && inner > PP2_MAX);

	out = malloc(cap ? cap : 1);
	CHECK(out);
	n = pp2_build(out, cap, (struct sockaddr *)&src, (struct sockaddr *)&dst, &tls);
	CHECK(n <= cap);
	/* refused exactly when it cannot fit */
	CHECK((n == 0) == (cap < 52 || need > cap || !fits));
	if (n) {
		CHECK(n == need);
		check_header(out, n, fs, fd, data + 7, &tls);
	}
	/* a roomy buffer: the same bytes */
	n2 = pp2_build(big, sizeof big, (struct sockaddr *)&src, (struct sockaddr *)&dst, &tls);
	CHECK((n2 == 0) == !fits);
	if (n2) {
		CHECK(n2 == need);
		check_header(big, n2, fs, fd, data + 7, &tls);
		if (n)
			CHECK(memcmp(big, out, n) == 0);
	}
	free(out);
	free(version);
	free(cipher);
	free(cn);
	return 0;
}

#include "fuzz-standalone.h"
