/*
 * unit-proxyv2: TAP tests of the PROXY protocol v2 header builder
 * (sidecar/proxyv2.c, pp2_build). Each header is taken apart by a small
 * decoder written here from haproxy's proxy-protocol.txt (not from the
 * builder): signature, version/command, family, big-endian length, address
 * block in network order, then the TLVs with PP2_TYPE_SSL and its sub-TLVs.
 * Covers TCP4, TCP6, mixed families (UNSPEC), TLS with and without a client
 * certificate, the length field and buffers that are too small.
 *
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxyv2.h"
#include "tap.h"

/* ---- an independent decoder, from the spec ---- */

static const uint8_t SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

struct str {
	int present;
	size_t len;
	char s[1024];
};

struct decoded {
	const char *err;      /* NULL: well formed */
	unsigned version, command, family, transport;
	unsigned len;         /* the length field */
	size_t addr_len;      /* bytes of the address block */
	uint8_t src[16], dst[16];
	unsigned sport, dport;
	unsigned ntlv;        /* top-level TLVs */
	unsigned nssl;        /* PP2_TYPE_SSL TLVs */
	unsigned other_tlv;   /* top-level TLVs of another type */
	uint8_t client;
	uint32_t verify;
	unsigned nsub;        /* SSL sub-TLVs */
	unsigned other_sub;   /* SSL sub-TLVs of an unexpected type */
	unsigned dup_sub;     /* a sub-TLV type seen twice */
	struct str version_s, cipher_s, cn_s;
};

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void take_str(struct decoded *d, struct str *s, const uint8_t *v, size_t n)
{
	if (s->present)
		d->dup_sub++;
	s->present = 1;
	s->len = n;
	if (n >= sizeof s->s)
		n = sizeof s->s - 1;
	memcpy(s->s, v, n);
	s->s[n] = '\0';
}

static void decode_ssl(struct decoded *d, const uint8_t *v, size_t n)
{
	d->nssl++;
	if (n < 5) {
		d->err = "PP2_TYPE_SSL shorter than client + verify";
		return;
	}
	d->client = v[0];
	d->verify = be32(v + 1);
	size_t i = 5;
	while (i < n) {
		if (n - i < 3) {
			d->err = "truncated SSL sub-TLV header";
			return;
		}
		unsigned type = v[i], len = be16(v + i + 1);
		if (n - i - 3 < len) {
			d->err = "SSL sub-TLV runs past PP2_TYPE_SSL";
			return;
		}
		const uint8_t *val = v + i + 3;
		d->nsub++;
		if (type == 0x21)
			take_str(d, &d->version_s, val, len);
		else if (type == 0x23)
			take_str(d, &d->cipher_s, val, len);
		else if (type == 0x22)
			take_str(d, &d->cn_s, val, len);
		else
			d->other_sub++;
		i += 3 + len;
	}
}

static void decode(const uint8_t *b, size_t n, struct decoded *d)
{
	memset(d, 0, sizeof *d);
	if (n < 16) {
		d->err = "shorter than 16 bytes";
		return;
	}
	if (memcmp(b, SIG, 12)) {
		d->err = "bad signature";
		return;
	}
	d->version = b[12] >> 4;
	d->command = b[12] & 0x0f;
	d->family = b[13] >> 4;
	d->transport = b[13] & 0x0f;
	d->len = be16(b + 14);
	if (16 + (size_t)d->len != n) {
		d->err = "length field does not match the bytes after the header";
		return;
	}
	if (b[13] == 0x11)
		d->addr_len = 12;
	else if (b[13] == 0x21)
		d->addr_len = 36;
	else if (b[13] == 0x00)
		d->addr_len = 0;
	else {
		d->err = "unexpected family/transport byte";
		return;
	}
	if (d->len < d->addr_len) {
		d->err = "length shorter than the address block";
		return;
	}
	const uint8_t *a = b + 16;
	if (d->addr_len == 12) {
		memcpy(d->src, a, 4);
		memcpy(d->dst, a + 4, 4);
		d->sport = be16(a + 8);
		d->dport = be16(a + 10);
	} else if (d->addr_len == 36) {
		memcpy(d->src, a, 16);
		memcpy(d->dst, a + 16, 16);
		d->sport = be16(a + 32);
		d->dport = be16(a + 34);
	}
	size_t i = 16 + d->addr_len;
	while (i < n) {
		if (n - i < 3) {
			d->err = "truncated TLV header";
			return;
		}
		unsigned type = b[i], len = be16(b + i + 1);
		if (n - i - 3 < len) {
			d->err = "TLV runs past the header";
			return;
		}
		d->ntlv++;
		if (type == 0x20)
			decode_ssl(d, b + i + 3, len);
		else
			d->other_tlv++;
		if (d->err)
			return;
		i += 3 + len;
	}
}

/* ---- addresses ---- */

static struct sockaddr_in sin4(const char *ip, unsigned short port)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &s.sin_addr) != 1)
		bail("bad test address %s", ip);
	return s;
}

static struct sockaddr_in6 sin6(const char *ip, unsigned short port)
{
	struct sockaddr_in6 s;
	memset(&s, 0, sizeof s);
	s.sin6_family = AF_INET6;
	s.sin6_port = htons(port);
	if (inet_pton(AF_INET6, ip, &s.sin6_addr) != 1)
		bail("bad test address %s", ip);
	return s;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* Builds into a buffer with a canary after cap; checks the canary. */
static size_t build(uint8_t *out, size_t cap, const struct sockaddr *src, const struct sockaddr *dst,
		    const struct pp2_tls *tls, int *overrun)
{
	static uint8_t buf[PP2_MAX + 4096];
	if (cap > PP2_MAX + 2048)
		bail("test buffer too small");
	memset(buf, 0xA5, sizeof buf);
	size_t n = pp2_build(buf, cap, src, dst, tls);
	*overrun = 0;
	for (size_t i = cap; i < sizeof buf; i++)
		if (buf[i] != 0xA5)
			*overrun = 1;
	if (out)
		memcpy(out, buf, n <= cap ? n : cap);
	return n;
}

static void check_common(const uint8_t *h, size_t n, const struct decoded *d, const char *what)
{
	ok(n >= 16 && !memcmp(h, SIG, 12), "%s: 12-byte signature", what);
	ok(d->err == NULL, "%s: decodes cleanly%s%s", what, d->err ? ": " : "", d->err ? d->err : "");
	is_int(2, d->version, "%s: version 2", what);
	is_int((long long)n - 16, d->len, "%s: length field = bytes after the 16-byte header", what);
}

/* ---- tests ---- */

static void test_tcp4(void)
{
	struct sockaddr_in s = sin4("192.0.2.1", 40000), t = sin4("198.51.100.2", 5061);
	uint8_t h[PP2_MAX];
	int over;
	size_t n = build(h, sizeof h, SA(s), SA(t), NULL, &over);
	struct decoded d;
	decode(h, n, &d);
	is_int(28, (long long)n, "TCP4 without TLS: 16 + 12 bytes");
	ok(!over, "TCP4: nothing written past the buffer");
	check_common(h, n, &d, "TCP4");
	is_int(0x21, h[12], "TCP4: ver_cmd 0x21 (v2, PROXY)");
	is_int(0x11, h[13], "TCP4: family 0x11 (TCP over IPv4)");
	is_int(12, d.len, "TCP4: length 12");
	static const uint8_t want[28] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* signature */
		0x21, 0x11, 0x00, 0x0C,                                                 /* v2 PROXY, TCP4, 12 */
		192,  0,    2,    1,                                                    /* source 192.0.2.1 */
		198,  51,   100,  2,                                                    /* dest 198.51.100.2 */
		0x9C, 0x40,                                                             /* 40000 */
		0x13, 0xC5,                                                             /* 5061 */
	};
	is_mem(want, sizeof want, h, n, "TCP4: every byte as the spec lays it out");
	is_int(40000, d.sport, "TCP4: source port");
	is_int(5061, d.dport, "TCP4: destination port");
	is_int(0, d.ntlv, "TCP4: no TLV without TLS");
}

static void test_tcp6(void)
{
	struct sockaddr_in6 s = sin6("2001:db8::1", 5061), t = sin6("2001:db8:ffff::abcd", 443);
	uint8_t h[PP2_MAX];
	int over;
	size_t n = build(h, 52, SA(s), SA(t), NULL, &over);
	struct decoded d;
	decode(h, n, &d);
	is_int(52, (long long)n, "TCP6 without TLS: 16 + 36 bytes, fits a 52-byte buffer exactly");
	ok(!over, "TCP6: nothing written past the buffer");
	check_common(h, n, &d, "TCP6");
	is_int(0x21, h[12], "TCP6: ver_cmd 0x21");
	is_int(0x21, h[13], "TCP6: family 0x21 (TCP over IPv6)");
	is_int(36, d.len, "TCP6: length 36");
	static const uint8_t src[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };
	static const uint8_t dst[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd };
	is_mem(src, 16, d.src, 16, "TCP6: source address bytes");
	is_mem(dst, 16, d.dst, 16, "TCP6: destination address bytes");
	ok(h[48] == 0x13 && h[49] == 0xC5, "TCP6: source port 5061 big-endian at offset 48");
	ok(h[50] == 0x01 && h[51] == 0xBB, "TCP6: destination port 443 big-endian at offset 50");
	is_int(0, d.ntlv, "TCP6: no TLV without TLS");
}

static void test_unspec(void)
{
	struct sockaddr_in s4 = sin4("192.0.2.1", 1234);
	struct sockaddr_in6 s6 = sin6("2001:db8::2", 5061);
	struct sockaddr_un su;
	memset(&su, 0, sizeof su);
	su.sun_family = AF_UNIX;
	struct sockaddr_storage zero; /* what a failed getsockname leaves */
	memset(&zero, 0, sizeof zero);
	const struct {
		const struct sockaddr *src, *dst;
		const char *what;
	} cases[] = {
		{ SA(s4), SA(s6), "IPv4 -> IPv6" },
		{ SA(s6), SA(s4), "IPv6 -> IPv4" },
		{ SA(s4), SA(su), "IPv4 -> unix" },
		{ SA(s6), SA(zero), "IPv6 -> AF_UNSPEC" },
	};
	struct pp2_tls tls = { .present = 1, .version = "TLSv1.2" };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t h[PP2_MAX];
		int over;
		size_t n = build(h, sizeof h, cases[i].src, cases[i].dst, NULL, &over);
		struct decoded d;
		decode(h, n, &d);
		is_int(16, (long long)n, "%s: UNSPEC form is the bare 16-byte header", cases[i].what);
		check_common(h, n, &d, cases[i].what);
		ok(d.command == 0 || d.command == 1, "%s: command LOCAL or PROXY (0x%02x)", cases[i].what, h[12]);
		is_int(0x00, h[13], "%s: family byte 0x00 (UNSPEC)", cases[i].what);

		/* TLVs still follow an empty address block */
		n = build(h, sizeof h, cases[i].src, cases[i].dst, &tls, &over);
		decode(h, n, &d);
		ok(d.err == NULL && d.nssl == 1 && d.addr_len == 0, "%s with TLS: SSL TLV right after the header",
		   cases[i].what);
		is_int((long long)n - 16, d.len, "%s with TLS: length field covers the TLV", cases[i].what);
	}
}

static void test_tls_anonymous(void)
{
	struct sockaddr_in s = sin4("203.0.113.9", 55555), t = sin4("10.0.0.1", 5061);
	struct pp2_tls tls = {
		.present = 1,
		.client_cert = 0,
		.verify = 0x01020304,
		.version = "TLSv1.3",
		.cipher = "TLS_AES_256_GCM_SHA384",
		.cn = NULL,
	};
	uint8_t h[PP2_MAX];
	int over;
	size_t n = build(h, sizeof h, SA(s), SA(t), &tls, &over);
	struct decoded d;
	decode(h, n, &d);
	/* 16 + 12 + TLV(3 + 1 + 4 + (3 + 7) + (3 + 22)) */
	is_int(16 + 12 + 3 + 5 + 10 + 25, (long long)n, "TLS, no client cert: expected size");
	ok(!over, "nothing written past the buffer");
	check_common(h, n, &d, "TLS anonymous");
	is_int(0x11, h[13], "TLS anonymous: still TCP4");
	is_int(55555, d.sport, "TLS anonymous: source port");
	is_int(1, d.ntlv, "one top-level TLV");
	is_int(1, d.nssl, "... of type PP2_TYPE_SSL (0x20)");
	is_int(0x20, h[28], "PP2_TYPE_SSL right after the address block");
	is_int(PP2_CLIENT_SSL, d.client, "client = PP2_CLIENT_SSL only");
	ok(h[31] == 0x01, "client byte 0x01 directly after the TLV header");
	is_int(0x01020304, d.verify, "verify: 4 bytes big-endian");
	ok(h[32] == 0x01 && h[33] == 0x02 && h[34] == 0x03 && h[35] == 0x04, "verify bytes in network order");
	ok(d.version_s.present, "SSL_VERSION (0x21) present");
	is_str("TLSv1.3", d.version_s.s, "SSL_VERSION value");
	is_int(7, (long long)d.version_s.len, "SSL_VERSION length, no NUL");
	ok(d.cipher_s.present, "SSL_CIPHER (0x23) present");
	is_str("TLS_AES_256_GCM_SHA384", d.cipher_s.s, "SSL_CIPHER value");
	is_int(22, (long long)d.cipher_s.len, "SSL_CIPHER length, no NUL");
	ok(!d.cn_s.present, "no SSL_CN without a client certificate");
	is_int(0, d.other_sub + d.dup_sub, "no other or repeated sub-TLVs");
}

static void test_tls_client_cert(void)
{
	struct sockaddr_in6 s = sin6("2001:db8::7", 40001), t = sin6("::1", 5062);
	struct pp2_tls tls = {
		.present = 1,
		.client_cert = 1,
		.resumed = 0,
		.verify = 0,
		.version = "TLSv1.2",
		.cipher = "ECDHE-RSA-AES128-GCM-SHA256",
		.cn = "sip.partner.example.net",
	};
	uint8_t h[PP2_MAX];
	int over;
	size_t n = build(h, sizeof h, SA(s), SA(t), &tls, &over);
	struct decoded d;
	decode(h, n, &d);
	is_int(16 + 36 + 3 + 5 + (3 + 7) + (3 + 27) + (3 + 23), (long long)n, "TLS + client cert over TCP6: size");
	ok(!over, "nothing written past the buffer");
	check_common(h, n, &d, "TLS client cert");
	is_int(0x21, h[13], "TCP6");
	is_int(40001, d.sport, "source port");
	is_int(5062, d.dport, "destination port");
	is_int(1, d.nssl, "one PP2_TYPE_SSL");
	ok(d.client & PP2_CLIENT_SSL, "client has PP2_CLIENT_SSL");
	ok(d.client & PP2_CLIENT_CERT_CONN, "client has PP2_CLIENT_CERT_CONN (certificate on this connection)");
	/* the spec's PP2_CLIENT_CERT_SESS: "provided a certificate at least once
	 * over the TLS session", true on the connection that provided it */
	ok(d.client & PP2_CLIENT_CERT_SESS, "client has PP2_CLIENT_CERT_SESS");
	is_int(0, d.client & ~(PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS), "no undefined client bits");
	is_int(0, d.verify, "verify 0 = verified");
	is_str("TLSv1.2", d.version_s.s, "SSL_VERSION");
	is_str("ECDHE-RSA-AES128-GCM-SHA256", d.cipher_s.s, "SSL_CIPHER");
	ok(d.cn_s.present, "SSL_CN (0x22) present");
	is_str("sip.partner.example.net", d.cn_s.s, "SSL_CN value");
	is_int(23, (long long)d.cn_s.len, "SSL_CN length");
	is_int(3, d.nsub, "three sub-TLVs");
	is_int(0, d.other_sub + d.dup_sub, "no other or repeated sub-TLVs");

	/* a resumed session: the certificate was given over the session */
	tls.resumed = 1;
	n = build(h, sizeof h, SA(s), SA(t), &tls, &over);
	decode(h, n, &d);
	ok(d.err == NULL, "resumed: decodes cleanly");
	ok((d.client & PP2_CLIENT_SSL) && (d.client & PP2_CLIENT_CERT_SESS),
	   "resumed: PP2_CLIENT_SSL and PP2_CLIENT_CERT_SESS");
	ok(!(d.client & PP2_CLIENT_CERT_CONN), "resumed: no PP2_CLIENT_CERT_CONN (no certificate on this connection)");
	is_str("sip.partner.example.net", d.cn_s.s, "resumed: SSL_CN");

	/* resumed without a client certificate: no certificate bits at all */
	tls.client_cert = 0;
	tls.cn = NULL;
	n = build(h, sizeof h, SA(s), SA(t), &tls, &over);
	decode(h, n, &d);
	is_int(PP2_CLIENT_SSL, d.client, "resumed anonymous: PP2_CLIENT_SSL only");

	/* optional strings left out */
	struct pp2_tls bare = { .present = 1, .client_cert = 1, .verify = 7 };
	n = build(h, sizeof h, SA(s), SA(t), &bare, &over);
	decode(h, n, &d);
	is_int(16 + 36 + 3 + 5, (long long)n, "TLS without version/cipher/cn: client + verify only");
	ok(d.err == NULL && d.nsub == 0 && d.verify == 7, "no sub-TLVs, verify 7");
	is_int((long long)n - 16, d.len, "length field");

	/* present = 0: no TLV even with the rest filled in */
	tls.present = 0;
	n = build(h, sizeof h, SA(s), SA(t), &tls, &over);
	is_int(52, (long long)n, "tls.present = 0: no PP2_TYPE_SSL");
}

static void test_small_buffers(void)
{
	struct sockaddr_in s = sin4("192.0.2.1", 1), t = sin4("192.0.2.2", 2);
	struct sockaddr_in6 s6 = sin6("2001:db8::1", 1), t6 = sin6("2001:db8::2", 2);
	struct pp2_tls tls = {
		.present = 1, .client_cert = 1, .version = "TLSv1.3",
		.cipher = "TLS_CHACHA20_POLY1305_SHA256", .cn = "a-rather-long-peer-name.partner.example.net",
	};
	const struct {
		const struct sockaddr *src, *dst;
		const struct pp2_tls *tls;
		const char *what;
	} cases[] = {
		{ SA(s), SA(t), &tls, "TCP4 + TLS" },
		{ SA(s6), SA(t6), &tls, "TCP6 + TLS" },
		{ SA(s6), SA(t6), NULL, "TCP6" },
		{ SA(s), SA(t6), &tls, "UNSPEC + TLS" },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int over;
		size_t full = build(NULL, PP2_MAX, cases[c].src, cases[c].dst, cases[c].tls, &over);
		ok(full > 0 && full <= PP2_MAX && !over, "%s: %zu bytes in PP2_MAX", cases[c].what, full);
		int zero = 1, overrun = 0;
		for (size_t cap = 0; cap < full; cap++) {
			if (build(NULL, cap, cases[c].src, cases[c].dst, cases[c].tls, &over) != 0)
				zero = 0;
			overrun |= over;
		}
		ok(zero, "%s: every buffer smaller than %zu bytes gives 0", cases[c].what, full);
		ok(!overrun, "%s: ... and nothing is written past it", cases[c].what);
		is_int((long long)full, (long long)build(NULL, full, cases[c].src, cases[c].dst, cases[c].tls, &over),
		       "%s: a buffer of exactly %zu bytes is enough", cases[c].what, full);
	}

	/* the largest realistic header: 64-byte CN (X.509 upper bound), long cipher */
	char cn[65];
	memset(cn, 'x', 64);
	cn[64] = '\0';
	struct pp2_tls big = { .present = 1, .client_cert = 1, .version = "TLSv1.3",
			       .cipher = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", .cn = cn };
	uint8_t h[PP2_MAX];
	int over;
	size_t n = build(h, sizeof h, SA(s6), SA(t6), &big, &over);
	struct decoded d;
	decode(h, n, &d);
	ok(n > 0 && d.err == NULL && d.cn_s.len == 64, "64-byte CN over TCP6 fits PP2_MAX (%zu bytes)", n);

	/* a CN too long for PP2_MAX: 0, never an overrun */
	static char huge[2000];
	memset(huge, 'y', sizeof huge - 1);
	big.cn = huge;
	ok(build(NULL, PP2_MAX, SA(s6), SA(t6), &big, &over) == 0 && !over,
	   "a 1999-byte CN does not fit PP2_MAX: 0, no overrun");
}

int main(void)
{
	plan_lazy();
	test_tcp4();
	test_tcp6();
	test_unspec();
	test_tls_anonymous();
	test_tls_client_cert();
	test_small_buffers();
	return tap_done();
}
