/*
 * unit-siptopo: TAP tests for the SIP topology translation at the TLS
 * boundary (sidecar/siptopo.c): topo_rewrite in both directions (Request-URI,
 * Route, Record-Route, Path, Service-Route, Contact, Via), flow URIs and
 * their tokens, the round trip of a client's Contact, errors, what a 2xx to
 * REGISTER grants, identity header stripping and insertion, folded lines,
 * the wrap cache and topo_flow_of.
 *
 * Every message is framed by sf_parse first (as the daemon does) and handed
 * to topo_rewrite as an exact-size heap copy, so a read past its end shows
 * up under -fsanitize=address. Every translated message must frame again as
 * one message with the same body.
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipframe.h"
#include "siptopo.h"
#include "tap.h"

#define IDH "X-TLS-Peer-Identity"
#define FLOW_A (((uint64_t)40000 << 48) | 7)
#define FLOW_B (((uint64_t)40000 << 48) | 8)

static const unsigned char KEY[TOPO_KEY_LEN] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
	0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};

static struct topo_key tkey;
static struct topo_cfg cfg4, cfg6;
static const struct topo_conn connA = { FLOW_A, 40000, "192.0.2.7", 34567, NULL };
static const struct topo_conn connB = { FLOW_B, 40000, "192.0.2.8", 40404, NULL };
static const struct topo_conn conn0 = { 0, 40000, "192.0.2.9", 5555, NULL }; /* does not wrap Contacts */

static void setup(void)
{
	topo_key_init(&tkey, KEY);
	memset(&cfg4, 0, sizeof cfg4);
	strcpy(cfg4.back_host, "127.0.0.1");
	cfg4.back_port = 5060;
	strcpy(cfg4.adv_host, "sip.example.test");
	cfg4.adv_port = 5061;
	strcpy(cfg4.flow_host, "127.0.0.1");
	cfg4.key = &tkey;
	cfg6 = cfg4;
	strcpy(cfg6.back_host, "[::1]");
	strcpy(cfg6.flow_host, "[::1]");
}

/* ---- strings ---- */

/* Every string made by fmt(), freed at the end. */
static char **fmts;
static size_t nfmts, capfmts;

static void fmt_free_all(void)
{
	for (size_t i = 0; i < nfmts; i++)
		free(fmts[i]);
	free(fmts);
}

/* printf into a new string that lives until the end of the run. */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	char *b = n < 0 ? NULL : malloc((size_t)n + 1);
	if (!b)
		bail("fmt: out of memory");
	va_start(ap, f);
	vsnprintf(b, (size_t)n + 1, f, ap);
	va_end(ap);
	if (nfmts == capfmts) {
		capfmts = capfmts ? 2 * capfmts : 256;
		fmts = realloc(fmts, capfmts * sizeof *fmts);
		if (!fmts)
			bail("fmt: out of memory");
	}
	fmts[nfmts++] = b;
	return b;
}

/* A message: start line, headers (each CRLF-terminated), Content-Length, body. */
static const char *msg(const char *start, const char *hdrs, const char *body)
{
	return fmt("%s\r\n%sContent-Length: %zu\r\n\r\n%s", start, hdrs, strlen(body), body);
}

static void b64url(char *out, const unsigned char *p, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = a[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}

/*
 * The flow parameters the sidecar gives the original URI orig on flow id:
 * ";sc-flow=TOKEN;sc-o=ORIG", TOKEN = base64url(id (8 bytes, big endian) |
 * HMAC-SHA256(key, id | orig) truncated to 10 bytes), ORIG = base64url(orig).
 * Computed here with GnuTLS, independently of siptopo.c's own HMAC.
 */
static const char *flowp(uint64_t id, const char *orig)
{
	unsigned char buf[8 + 2048], dig[32], raw[18];
	char tok[64], o[4096];
	size_t olen = strlen(orig);
	for (int i = 0; i < 8; i++)
		buf[i] = raw[i] = (unsigned char)(id >> (56 - 8 * i));
	memcpy(buf + 8, orig, olen);
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, KEY, sizeof KEY, buf, 8 + olen, dig) < 0)
		bail("gnutls_hmac_fast failed");
	memcpy(raw + 8, dig, 10);
	b64url(tok, raw, sizeof raw);
	b64url(o, (const unsigned char *)orig, olen);
	return fmt(";sc-flow=%s;sc-o=%s", tok, o);
}

/* ";sc-h=..." for the sealed Via parameters hid (id 0, like flowp). */
static const char *sealed(const char *hid)
{
	unsigned char buf[8 + 256], dig[32], raw[10 + 256];
	char o[1024];
	size_t hl = strlen(hid);
	memset(buf, 0, 8);
	memcpy(buf + 8, hid, hl);
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, KEY, sizeof KEY, buf, 8 + hl, dig) < 0)
		bail("gnutls_hmac_fast failed");
	memcpy(raw, dig, 10);
	memcpy(raw + 10, hid, hl);
	b64url(o, raw, 10 + hl);
	return fmt(";sc-h=%s", o);
}

/* Copy of s with the character at the first occurrence of `after` + off
 * replaced by another base64url character. */
static const char *damage(const char *s, const char *after, size_t off)
{
	const char *p = strstr(s, after);
	if (!p)
		bail("damage: '%s' not in '%s'", after, s);
	size_t at = (size_t)(p - s) + strlen(after) + off;
	char *d = (char *)fmt("%s", s);
	d[at] = d[at] == 'A' ? 'B' : 'A';
	return d;
}

/* The first header line named `name` (case-sensitive, "Name: ...") in
 * message s, without its CRLF; NULL when there is none. */
static const char *line_of(const char *s, const char *name)
{
	if (!s)
		return NULL;
	const char *p = strstr(s, fmt("\r\n%s:", name));
	if (!p)
		return NULL;
	p += 2;
	const char *e = strstr(p, "\r\n");
	return fmt("%.*s", (int)(e - p), p);
}

/* ---- running topo_rewrite ---- */

/* Frames the whole of text at once; 0 with *m and an exact heap copy. */
static int frame(const char *text, size_t n, const char *strip, struct sf_msg *m, char **copy)
{
	struct sipframe f;
	char *b = malloc(n ? n : 1);
	if (!b)
		bail("out of memory");
	memcpy(b, text, n);
	sf_init(&f, 1 << 20, strip);
	enum sf_result r = sf_parse(&f, b, n, m);
	if (r != SF_MESSAGE || m->len != n) {
		diag("does not frame as one message (result %d, len %zu of %zu, %s)", (int)r,
		     r == SF_MESSAGE ? m->len : 0, n, r == SF_ERROR && m->detail ? m->detail : "-");
		free(b);
		return -1;
	}
	*copy = b;
	return 0;
}

struct res {
	int rc;            /* topo_rewrite's, or -9 when the input did not frame */
	const char *out;   /* rc 1: the new message (NUL-terminated) */
	int reframes;      /* rc 1: it frames as one message with the same body */
	struct topo_info info;
};

static void run(const struct topo_cfg *cfg, const struct topo_conn *tc, enum topo_dir dir, const char *text,
		const char *strip, int apply_strip, const char *idhdr, struct res *r)
{
	struct sf_msg m, m2;
	char *b, *b2;
	struct topo_out out = { 0 };

	memset(r, 0, sizeof *r);
	r->rc = -9;
	if (frame(text, strlen(text), strip, &m, &b) < 0)
		return;
	r->rc = topo_rewrite(cfg, tc, dir, b, &m, apply_strip, idhdr, idhdr ? strlen(idhdr) : 0, &out, &r->info);
	if (r->rc == 1) {
		r->out = fmt("%.*s", (int)out.len, out.d);
		if (strlen(r->out) != out.len)
			diag("output has a NUL byte");
		else if (frame(out.d, out.len, strip, &m2, &b2) == 0) {
			r->reframes = m2.body_len == m.body_len && m2.is_request == m.is_request &&
				      !memcmp(b2 + m2.hdr_end, b + m.hdr_end, m.len - m.hdr_end);
			free(b2);
		}
	}
	free(out.d);
	free(b);
}

/* Expects in to be translated into want (NULL: to go unchanged, 0). */
static void xl(const struct topo_cfg *cfg, const struct topo_conn *tc, enum topo_dir dir, const char *in,
	       const char *want, const char *name)
{
	struct res r;
	run(cfg, tc, dir, in, NULL, 0, NULL, &r);
	if (!want) {
		if (!is_int(0, r.rc, "%s: unchanged (0)", name) && r.out)
			diag("got: '%s'", r.out);
		return;
	}
	if (!is_int(1, r.rc, "%s: translated (1)", name) && r.rc == -1)
		diag("detail: %s", r.info.detail ? r.info.detail : "(null)");
	is_str(want, r.out, "%s: output", name);
	ok(r.reframes, "%s: output frames as one message, body intact", name);
}

/* Expects in to be refused with detail (NULL: any detail). */
static void xerr(const struct topo_cfg *cfg, const struct topo_conn *tc, enum topo_dir dir, const char *in,
		 const char *detail, const char *name)
{
	struct res r;
	run(cfg, tc, dir, in, NULL, 0, NULL, &r);
	if (!is_int(-1, r.rc, "%s: refused (-1)", name) && r.out)
		diag("got: '%s'", r.out);
	if (detail)
		is_str(detail, r.info.detail, "%s: detail", name);
	else
		ok(r.info.detail != NULL, "%s: has a detail (%s)", name, r.info.detail ? r.info.detail : "null");
}

/* topo_flow_of on text: returns its result, *id the flow. */
static int flow_of(const struct topo_cfg *cfg, const char *text, uint64_t *id)
{
	struct sf_msg m;
	char *b;
	*id = 0;
	if (!text || frame(text, strlen(text), NULL, &m, &b) < 0)
		return -9;
	int r = topo_flow_of(cfg->key, cfg->flow_host, b, &m, id);
	free(b);
	return r;
}

/* ---- messages ---- */

/* Request and response scaffolding; the Via is a client's over TCP, which
 * nothing translates, From and To carry addresses that are never translated. */
#define VIA_C "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1\r\n"
#define FT                                                                       \
	"From: <sip:alice@sip.example.test:5061>;tag=f1\r\n"                      \
	"To: <sip:bob@127.0.0.1:5060>\r\n"                                       \
	"Call-ID: c1@client.example.com\r\n"
#define RL "OPTIONS sip:bob@example.org SIP/2.0"
#define OPT(h) FT "CSeq: 1 OPTIONS\r\n" h

/* An OPTIONS with the headers h, translated in direction dir by conn A
 * (cfg4) must have the headers w (NULL: unchanged). */
static void hdrs(enum topo_dir dir, const char *h, const char *w, const char *name)
{
	xl(&cfg4, &connA, dir, msg(RL, fmt(VIA_C OPT("%s"), h), ""), w ? msg(RL, fmt(VIA_C OPT("%s"), w), "") : NULL,
	   name);
}

static void hdrs6(enum topo_dir dir, const char *h, const char *w, const char *name)
{
	xl(&cfg6, &connA, dir, msg(RL, fmt(VIA_C OPT("%s"), h), ""), w ? msg(RL, fmt(VIA_C OPT("%s"), w), "") : NULL,
	   name);
}

/* ---- to the TLS side ---- */

static void test_to_tls_uris(void)
{
	const enum topo_dir T = TOPO_TO_TLS;

	hdrs(T, "Record-Route: <sip:127.0.0.1:5060;lr>\r\n",
	     "Record-Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n", "RR backend with port");
	hdrs(T, "Record-Route: <sip:127.0.0.1;lr>\r\n", "Record-Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n",
	     "RR backend, default port 5060");
	hdrs(T, "Route: <sip:127.0.0.1:5060;transport=tcp;lr>\r\n",
	     "Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n", "Route transport=tcp becomes tls");
	hdrs(T, "Route: <sip:127.0.0.1:5060;transport=TCP;lr>\r\n",
	     "Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n", "Route transport=TCP (upper case)");
	hdrs(T, "Path: <sip:127.0.0.1:5060;lr;ftag=a1b2;nat=yes>\r\n",
	     "Path: <sip:sip.example.test:5061;transport=tls;lr;ftag=a1b2;nat=yes>\r\n",
	     "Path: transport added, lr/ftag/nat kept");
	hdrs(T, "Service-Route: <sips:127.0.0.1:5060;lr>\r\n", "Service-Route: <sips:sip.example.test:5061;lr>\r\n",
	     "Service-Route: sips: kept, no transport added");
	hdrs(T, "Service-Route: <sips:127.0.0.1:5060;transport=tcp;lr>\r\n",
	     "Service-Route: <sips:sip.example.test:5061;transport=tls;lr>\r\n", "Service-Route: sips: with transport=tcp");
	hdrs(T, "Contact: <sip:srv@127.0.0.1:5060;transport=tcp>\r\n",
	     "Contact: <sip:srv@sip.example.test:5061;transport=tls>\r\n", "Contact with a user");
	hdrs(T, "Contact: <sip:srv@127.0.0.1:5060?Subject=hi>\r\n",
	     "Contact: <sip:srv@sip.example.test:5061;transport=tls?Subject=hi>\r\n", "Contact with URI headers");
	hdrs(T, "Record-Route: <sip:127.0.0.1:5060;lr>, <sip:proxy.example.org;lr>,<sip:127.0.0.1;lr;ftag=x>\r\n",
	     "Record-Route: <sip:sip.example.test:5061;transport=tls;lr>, <sip:proxy.example.org;lr>,"
	     "<sip:sip.example.test:5061;transport=tls;lr;ftag=x>\r\n",
	     "several values on one line");
	hdrs(T,
	     "Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
	     "Record-Route: <sip:proxy.example.org;lr>\r\n"
	     "Record-Route: <sip:127.0.0.1;lr>\r\n",
	     "Record-Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n"
	     "Record-Route: <sip:proxy.example.org;lr>\r\n"
	     "Record-Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n",
	     "several header lines");
	hdrs(T, "m: <sip:srv@127.0.0.1:5060>;expires=60\r\n",
	     "m: <sip:srv@sip.example.test:5061;transport=tls>;expires=60\r\n", "compact m:");
	hdrs(T, "contact : <sip:srv@127.0.0.1:5060>\r\n", "contact : <sip:srv@sip.example.test:5061;transport=tls>\r\n",
	     "lower-case name, space before the colon");
	hdrs(T, "Contact: \"Doe, John\" <sip:john@127.0.0.1:5060>;q=0.5, \"A \\\"q\\\", <b>\" <sip:x@127.0.0.1>\r\n",
	     "Contact: \"Doe, John\" <sip:john@sip.example.test:5061;transport=tls>;q=0.5, "
	     "\"A \\\"q\\\", <b>\" <sip:x@sip.example.test:5061;transport=tls>\r\n",
	     "display names with commas, quotes and angle brackets");
	hdrs(T, "Contact: Bob <sip:bob@127.0.0.1:5060>\r\n", "Contact: Bob <sip:bob@sip.example.test:5061;transport=tls>\r\n",
	     "token display name");
	hdrs(T, "Contact: sip:srv@127.0.0.1:5060;expires=60\r\n",
	     "Contact: <sip:srv@sip.example.test:5061;transport=tls>;expires=60\r\n",
	     "addr-spec into <...>, its params are header params");
	hdrs(T, "Route: sip:127.0.0.1:5060, <sip:127.0.0.1;lr>\r\n",
	     "Route: <sip:sip.example.test:5061;transport=tls>, <sip:sip.example.test:5061;transport=tls;lr>\r\n",
	     "addr-spec and name-addr on one line");
	hdrs(T,
	     "Contact: <sip:srv@127.0.0.1:5060>;+sip.instance=\"<urn:uuid:a,b>\";x=\"q\\\",\", <sip:x@127.0.0.1>\r\n",
	     "Contact: <sip:srv@sip.example.test:5061;transport=tls>;+sip.instance=\"<urn:uuid:a,b>\";x=\"q\\\",\", "
	     "<sip:x@sip.example.test:5061;transport=tls>\r\n",
	     "quoted header params with commas");
	hdrs(T, "Route: <sip:127.0.0.1;lr>, \r\n", "Route: <sip:sip.example.test:5061;transport=tls;lr>, \r\n",
	     "trailing comma and space kept");
	hdrs(T, "Record-Route: <SIP:127.0.0.1:5060;lr>\r\n", "Record-Route: <SIP:sip.example.test:5061;transport=tls;lr>\r\n",
	     "scheme in upper case kept");

	/* nothing to translate */
	hdrs(T,
	     "Record-Route: <sip:127.0.0.1:5070;lr>, <sip:10.0.0.1:5060;lr>\r\n"
	     "Route: <sips:127.0.0.1;lr>, <sip:127.0.0.1;transport=tls;lr>\r\n"
	     "Contact: <tel:+15551234567>, <mailto:a@example.org>, <sip:bob@127.0.0.2:5060>\r\n"
	     "Path: <sip:sip.example.test:5061;transport=tls;lr>\r\n"
	     "Reply-To: <sip:bob@127.0.0.1:5060>\r\n"
	     "Contact: *\r\n",
	     NULL, "other hosts, ports, schemes and headers");

	/* the Request-URI */
	xl(&cfg4, &connA, T, msg("INVITE sip:bob@127.0.0.1:5060 SIP/2.0", VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   msg("INVITE sip:bob@sip.example.test:5061;transport=tls SIP/2.0", VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   "Request-URI");
	xl(&cfg4, &connA, T, msg("INVITE sip:bob@127.0.0.1:5062 SIP/2.0", VIA_C FT "CSeq: 1 INVITE\r\n", ""), NULL,
	   "Request-URI of another port");
}

static void test_to_tls_via(void)
{
	const enum topo_dir T = TOPO_TO_TLS;
	static const char *const S = "BYE sip:alice@client.example.com SIP/2.0";
	xl(&cfg4, &connA, T, msg(S, "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKb1\r\n" OPT(""), ""),
	   msg(S, "Via: SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb1\r\n" OPT(""), ""),
	   "Via of the backend (request)");
	xl(&cfg4, &connA, T, msg(S, "Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKb1\r\n" OPT(""), ""),
	   msg(S, "Via: SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb1\r\n" OPT(""), ""),
	   "Via of the backend, default port");
	xl(&cfg4, &connA, T,
	   msg(S, "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKb1;x=\"a,b\", SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKb0\r\n" OPT(""), ""),
	   msg(S,
	       "Via: SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb1;x=\"a,b\", "
	       "SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb0\r\n" OPT(""),
	       ""),
	   "Via with a quoted param holding a comma");
	xl(&cfg4, &connA, T, msg(S, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb1\r\n" OPT(""), ""), NULL,
	   "Via UDP untouched");
	xl(&cfg4, &connA, T, msg(S, "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKb1\r\n" OPT(""), ""), NULL,
	   "Via of another port untouched");
	xl(&cfg4, &connA, T,
	   msg(S,
	       "Via: SIP/2.0/TCP 10.1.1.1:5060;branch=z9hG4bKp, SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKb1\r\n"
	       "v: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKb0\r\n" OPT(""),
	       ""),
	   msg(S,
	       "Via: SIP/2.0/TCP 10.1.1.1:5060;branch=z9hG4bKp, SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb1\r\n"
	       "v: SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb0\r\n" OPT(""),
	       ""),
	   "several Via values and lines, compact v:");
}

/* ---- to the backend ---- */

static void test_to_backend_uris(void)
{
	const enum topo_dir B = TOPO_TO_BACKEND;

	xl(&cfg4, &connA, B, msg("INVITE sip:bob@sip.example.test:5061;transport=tls SIP/2.0", VIA_C OPT(""), ""),
	   msg("INVITE sip:bob@127.0.0.1:5060;transport=tcp SIP/2.0", VIA_C OPT(""), ""), "Request-URI advertised");
	xl(&cfg4, &connA, B, msg("INVITE sips:bob@sip.example.test SIP/2.0", VIA_C OPT(""), ""),
	   msg("INVITE sips:bob@127.0.0.1:5060 SIP/2.0", VIA_C OPT(""), ""), "Request-URI sips:, default port 5061");
	xl(&cfg4, &connA, B, msg("INVITE sip:bob@sip.example.test;transport=tls SIP/2.0", VIA_C OPT(""), ""),
	   msg("INVITE sip:bob@127.0.0.1:5060;transport=tcp SIP/2.0", VIA_C OPT(""), ""),
	   "Request-URI transport=tls, default port 5061");
	xl(&cfg4, &connA, B, msg("INVITE sip:bob@sip.example.test SIP/2.0", VIA_C OPT(""), ""), NULL,
	   "Request-URI sip: without port is 5060: not advertised");
	hdrs(B, "Route: <sip:sip.example.test:5061;transport=tls;lr>, <sip:other.example.org;lr>\r\n",
	     "Route: <sip:127.0.0.1:5060;transport=tcp;lr>, <sip:other.example.org;lr>\r\n", "Route advertised");
	hdrs(B, "Route: <sips:sip.example.test;lr;ftag=1>\r\n", "Route: <sips:127.0.0.1:5060;lr;ftag=1>\r\n",
	     "Route sips: advertised");
	hdrs(B, "Record-Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n",
	     "Record-Route: <sip:127.0.0.1:5060;transport=tcp;lr>\r\n", "Record-Route advertised");
	hdrs6(B, "Route: <sip:sip.example.test:5061;transport=tls;lr>\r\n",
	      "Route: <sip:[::1]:5060;transport=tcp;lr>\r\n", "IPv6 backend: Route advertised");
	hdrs(B, "Route: <sip:sip.example.test:5062;transport=tls;lr>\r\nRoute: <sip:127.0.0.1:5060;lr>\r\n", NULL,
	     "another port, and the backend itself, untouched");
	/* a peer's proxy in Record-Route or Path becomes a hop through the flow */
	hdrs(B, "Record-Route: <sip:proxy.partner.example:5061;transport=tls;lr;ftag=9>\r\n",
	     fmt("Record-Route: <sip:127.0.0.1:40000;transport=tcp;lr%s>\r\n",
		 flowp(FLOW_A, "sip:proxy.partner.example:5061;transport=tls;lr;ftag=9")),
	     "a peer's Record-Route: a loose-routing hop through this flow");
	hdrs(B, "Path: <sip:edge.partner.example;transport=tls>\r\n",
	     fmt("Path: <sip:127.0.0.1:40000;transport=tcp%s>\r\n", flowp(FLOW_A, "sip:edge.partner.example;transport=tls")),
	     "a peer's Path without lr: a hop through this flow, no lr added");
}

static void test_to_backend_via(void)
{
	const enum topo_dir B = TOPO_TO_BACKEND;
	static const char *const S = RL;

	xl(&cfg4, &connA, B, msg(S, "Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1\r\n" OPT(""), ""),
	   msg(S, "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;rport;sc-tls\r\n" OPT(""), ""),
	   "top Via TLS of a request: TCP, rport, sc-tls");
	xl(&cfg4, &connA, B, msg(S, "Via: SIP/2.0/TLS client.example.com:5061;rport;branch=z9hG4bK1\r\n" OPT(""), ""),
	   msg(S, "Via: SIP/2.0/TCP client.example.com:5061;rport;branch=z9hG4bK1;sc-tls\r\n" OPT(""), ""),
	   "top Via with rport: not duplicated");
	xl(&cfg4, &connA, B,
	   msg(S,
	       "Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK1 , SIP/2.0/TLS b.example.com;branch=z9hG4bK2\r\n"
	       "Via: SIP/2.0/TLS c.example.com;branch=z9hG4bK3\r\n" OPT(""),
	       ""),
	   msg(S,
	       "Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK1;rport;sc-tls , SIP/2.0/TLS b.example.com;branch=z9hG4bK2\r\n"
	       "Via: SIP/2.0/TLS c.example.com;branch=z9hG4bK3\r\n" OPT(""),
	       ""),
	   "only the top Via value");
	xl(&cfg4, &connA, B, msg(S, "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1\r\n" OPT(""), ""), NULL,
	   "top Via TCP untouched");
	/* a response from the TLS peer to a request of the backend: the
	 * backend's own Via, translated on the way out, comes back */
	xl(&cfg4, &connA, B,
	   msg("SIP/2.0 200 OK",
	       "Via: SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb1;received=192.0.2.1\r\n" FT "CSeq: 2 BYE\r\n", ""),
	   msg("SIP/2.0 200 OK", "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKb1;received=192.0.2.1\r\n" FT "CSeq: 2 BYE\r\n",
	       ""),
	   "response: the backend's Via restored");
	xl(&cfg6, &connA, B,
	   msg("SIP/2.0 200 OK", "Via: SIP/2.0/TLS sip.example.test:5061;branch=z9hG4bKb1\r\n" FT "CSeq: 2 BYE\r\n", ""),
	   msg("SIP/2.0 200 OK", "Via: SIP/2.0/TCP [::1]:5060;branch=z9hG4bKb1\r\n" FT "CSeq: 2 BYE\r\n", ""),
	   "IPv6: the backend's Via restored");
	xl(&cfg4, &connA, B,
	   msg("SIP/2.0 200 OK", "Via: SIP/2.0/TLS client.example.com;branch=z9hG4bK1\r\n" FT "CSeq: 2 BYE\r\n", ""), NULL,
	   "response: a TLS top Via of another host untouched");
}

/* A response from the backend to the TLS peer's request. */
static void test_response_via(void)
{
	const enum topo_dir T = TOPO_TO_TLS, B = TOPO_TO_BACKEND;
	static const char *const S = "SIP/2.0 200 OK";
	xl(&cfg4, &connA, T,
	   msg(S,
	       "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;rport=40001;sc-tls;received=127.0.0.1\r\n" OPT(""),
	       ""),
	   msg(S, "Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1;rport=34567;received=192.0.2.7\r\n" OPT(""),
	       ""),
	   "sc-tls: TLS back, received and rport of the peer");
	xl(&cfg4, &connA, T,
	   msg(S,
	       "Via: SIP/2.0/TCP client.example.com:5061;received=127.0.0.1;branch=z9hG4bK1;rport=40001;sc-tls, "
	       "SIP/2.0/TCP proxy.example.org;branch=z9hG4bK0;sc-tls\r\n" OPT(""),
	       ""),
	   msg(S,
	       fmt("Via: SIP/2.0/TLS client.example.com:5061;received=192.0.2.7;branch=z9hG4bK1;rport=34567, "
		   "SIP/2.0/TLS proxy.example.org;branch=z9hG4bK0%s\r\n" OPT(""), sealed("")),
	       ""),
	   "sc-tls: the top Via value gets the peer's address, a lower one TLS back, sealed");
	xl(&cfg4, &connA, T,
	   msg(S, "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;rport=1;sc-tls;received=127.0.0.1  ,"
		  "SIP/2.0/TCP p.example.org;branch=z9hG4bK0\r\n" OPT(""), ""),
	   msg(S, "Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1;rport=34567;received=192.0.2.7  ,"
		  "SIP/2.0/TCP p.example.org;branch=z9hG4bK0\r\n" OPT(""), ""),
	   "sc-tls: spaces before the comma kept");
	xl(&cfg4, &connB, T,
	   msg(S, "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;rport;received=127.0.0.1;sc-tls\r\n" OPT(""),
	       ""),
	   msg(S, "Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1;rport=40404;received=192.0.2.8\r\n" OPT(""),
	       ""),
	   "sc-tls: rport without a value gets one (conn B)");
	xl(&cfg4, &connA, T, msg(S, "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;rport=40001\r\n" OPT(""), ""),
	   NULL, "no sc-tls: untouched");
	xl(&cfg4, &connA, T,
	   msg("OPTIONS sip:a@client.example.com SIP/2.0",
	       "Via: SIP/2.0/TCP client.example.com:5061;received=127.0.0.1;branch=z9hG4bK1;rport=40001;sc-tls\r\n"
	       OPT(""), ""),
	   msg("OPTIONS sip:a@client.example.com SIP/2.0",
	       fmt("Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1%s\r\n" OPT(""),
		   sealed(";received=127.0.0.1;rport=40001")),
	       ""),
	   "sc-tls in a request to the TLS side: TLS, loopback received/rport sealed");
	xl(&cfg4, &connA, B,
	   msg(S, fmt("Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1%s\r\n" OPT(""),
		      sealed(";received=127.0.0.1;rport=40001")),
	       ""),
	   msg(S, "Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;received=127.0.0.1;rport=40001;sc-tls\r\n"
		  OPT(""),
	       ""),
	   "a sealed Via comes back as the legacy server wrote it");
	xl(&cfg4, &connA, B,
	   msg(S, fmt("Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1%s\r\n" OPT(""),
		      damage(sealed(";received=127.0.0.1;rport=40001"), "sc-h=", 2)),
	       ""),
	   NULL, "a sealed Via that is not ours (another sidecar's, or damaged) stays as it is");
	xl(&cfg4, &connA, B,
	   msg("OPTIONS sip:a@client.example.com SIP/2.0",
	       fmt("Via: SIP/2.0/TCP proxy.example.org;branch=z9hG4bK0\r\n"
		   "Via: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bK1%s\r\n" OPT(""),
		   sealed(";received=127.0.0.1;rport=40001")),
	       ""),
	   NULL, "a sealed Via in a request (from upstream) stays as it is");
}

/* ---- flows ---- */

#define ORIG_A "sip:alice@192.0.2.7:34567;transport=tls;ob"
#define ORIG_B "sip:bob@192.0.2.8:40404;transport=tls"

static void test_flows(void)
{
	const enum topo_dir B = TOPO_TO_BACKEND, T = TOPO_TO_TLS;
	const char *fa = flowp(FLOW_A, ORIG_A);
	const char *loopA = fmt("sip:alice@127.0.0.1:40000;transport=tcp%s", fa);
	const char *advA = fmt("sip:alice@sip.example.test:5061;transport=tls%s", fa);
	struct res r;
	uint64_t id;

	/* the client's Contact is wrapped */
	const char *reg = msg("REGISTER sip:sip.example.test:5061;transport=tls SIP/2.0",
			      VIA_C FT "CSeq: 1 REGISTER\r\nContact: <" ORIG_A ">;expires=300\r\n", "");
	const char *reg_be = msg("REGISTER sip:127.0.0.1:5060;transport=tcp SIP/2.0",
				 fmt(VIA_C FT "CSeq: 1 REGISTER\r\nContact: <%s>;expires=300\r\n", loopA), "");
	xl(&cfg4, &connA, B, reg, reg_be, "REGISTER: Contact wrapped into a flow URI");
	run(&cfg4, &connA, B, reg, NULL, 0, NULL, &r);
	const char *contact = line_of(r.out, "Contact");
	ok(contact != NULL, "wrapped Contact found");

	hdrs(B, "Contact: \"Doe, John\" <sips:john@client.example.com>;+sip.instance=\"<urn:uuid:1>\", sip:j2@192.0.2.7\r\n",
	     fmt("Contact: \"Doe, John\" <sip:john@127.0.0.1:40000;transport=tcp%s>;+sip.instance=\"<urn:uuid:1>\", "
		 "<sip:j2@127.0.0.1:40000;transport=tcp%s>\r\n",
		 flowp(FLOW_A, "sips:john@client.example.com"), flowp(FLOW_A, "sip:j2@192.0.2.7")),
	     "two Contacts wrapped (sips:, addr-spec, display name)");
	hdrs(B, "m: <sip:192.0.2.7:34567>\r\n",
	     fmt("m: <sip:127.0.0.1:40000;transport=tcp%s>\r\n", flowp(FLOW_A, "sip:192.0.2.7:34567")),
	     "Contact without user wrapped (compact m:)");
	hdrs6(B, "Contact: <sip:alice@[2001:db8::7]:34567;transport=tls>\r\n",
	      fmt("Contact: <sip:alice@[::1]:40000;transport=tcp%s>\r\n",
		  flowp(FLOW_A, "sip:alice@[2001:db8::7]:34567;transport=tls")),
	      "IPv6 flow host");
	hdrs6(T, fmt("Contact: <sip:alice@[::1]:40000;transport=tcp%s>\r\n",
		     flowp(FLOW_A, "sip:alice@[2001:db8::7]:34567;transport=tls")),
	      "Contact: <sip:alice@[2001:db8::7]:34567;transport=tls>\r\n", "IPv6 flow host: restored");
	{
		/* the longest original URI a flow URI carries: 1024 bytes */
		char user[1100];
		memset(user, 'u', sizeof user - 1);
		user[sizeof user - 1] = '\0';
		const char *o1024 = fmt("sip:%.*s@192.0.2.7", 1024 - 14, user);
		const char *o1025 = fmt("sip:%.*s@192.0.2.7", 1025 - 14, user);
		const char *w1024 = fmt("<sip:%.*s@127.0.0.1:40000;transport=tcp%s>", 1024 - 14, user, flowp(FLOW_A, o1024));
		hdrs(B, fmt("Contact: <%s>\r\n", o1024), fmt("Contact: %s\r\n", w1024), "1024-byte Contact URI wrapped");
		hdrs(T, fmt("Contact: %s\r\n", w1024), fmt("Contact: <%s>\r\n", o1024), "1024-byte Contact URI restored");
		xerr(&cfg4, &connA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), o1025), ""), "Contact URI too long",
		     "1025-byte Contact URI");
	}
	hdrs(B, "Contact: *\r\nExpires: 0\r\n", NULL, "Contact: * untouched");
	hdrs(B, "Contact: <tel:+15551234567>\r\n", NULL, "tel: Contact untouched");
	xl(&cfg4, &conn0, B, msg(RL, VIA_C OPT("Contact: <" ORIG_A ">\r\n"), ""), NULL,
	   "flow id 0: Contact not wrapped");
	xl(&cfg4, &conn0, B, msg(RL, VIA_C OPT("Contact: <sip:x@sip.example.test:5061;transport=tls>\r\n"), ""),
	   msg(RL, VIA_C OPT("Contact: <sip:x@127.0.0.1:5060;transport=tcp>\r\n"), ""),
	   "flow id 0: advertised Contact to the backend");

	/* the round trip: the registrar's 200 OK carries the wrapped Contact */
	const char *ok200 = contact ? msg("SIP/2.0 200 OK", fmt(VIA_C FT "CSeq: 1 REGISTER\r\n%s\r\n", contact), "") : "";
	xl(&cfg4, &connA, T, ok200, msg("SIP/2.0 200 OK", VIA_C FT "CSeq: 1 REGISTER\r\nContact: <" ORIG_A ">;expires=300\r\n", ""),
	   "round trip: own flow restored to the original Contact");
	xl(&cfg4, &connB, T, ok200,
	   msg("SIP/2.0 200 OK", fmt(VIA_C FT "CSeq: 1 REGISTER\r\nContact: <%s>;expires=300\r\n", advA), ""),
	   "round trip: another conn sees the advertised flow form");
	xl(&cfg4, &connA, T, msg(fmt("INVITE %s SIP/2.0", loopA), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   msg("INVITE " ORIG_A " SIP/2.0", VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   "own flow as Request-URI restored");
	xl(&cfg4, &connB, T, msg(fmt("INVITE %s SIP/2.0", loopA), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   msg(fmt("INVITE %s SIP/2.0", advA), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   "another conn's flow as Request-URI: advertised");
	hdrs(T, fmt("Route: <sip:127.0.0.1:40000;transport=tcp;lr%s>\r\n", fa),
	     fmt("Route: <%s>\r\n", ORIG_A), "own flow in a Route restored");

	/* the advertised form, from another TLS peer, back to the loopback form */
	const char *inv = msg(fmt("INVITE %s SIP/2.0", advA), VIA_C FT "CSeq: 1 INVITE\r\n", "");
	const char *inv_be = msg(fmt("INVITE %s SIP/2.0", loopA), VIA_C FT "CSeq: 1 INVITE\r\n", "");
	xl(&cfg4, &connB, B, inv, inv_be, "advertised flow Request-URI to the loopback flow");
	run(&cfg4, &connB, B, inv, NULL, 0, NULL, &r);
	is_int(1, flow_of(&cfg4, r.out, &id), "topo_flow_of: Request-URI flow");
	ok(id == FLOW_A, "topo_flow_of: flow id %#llx", (unsigned long long)id);

	const char *rt = msg("INVITE sip:bob@example.org SIP/2.0",
			     fmt(VIA_C FT "CSeq: 1 INVITE\r\nRoute: <%s>\r\nRoute: <sip:x.example.org;lr>\r\n", advA), "");
	const char *rt_be = msg("INVITE sip:bob@example.org SIP/2.0",
				fmt(VIA_C FT "CSeq: 1 INVITE\r\nRoute: <%s>\r\nRoute: <sip:x.example.org;lr>\r\n", loopA), "");
	xl(&cfg4, &connB, B, rt, rt_be, "advertised flow Route to the loopback flow");
	run(&cfg4, &connB, B, rt, NULL, 0, NULL, &r);
	is_int(1, flow_of(&cfg4, r.out, &id), "topo_flow_of: top Route flow");
	ok(id == FLOW_A, "topo_flow_of: flow id %#llx", (unsigned long long)id);

	/* the advertised form with extra parameters and in another order */
	const char *advA2 = fmt("sip:alice@sip.example.test:5061;lr;transport=tls%s;x=1", fa);
	xl(&cfg4, &connB, B, msg(fmt("INVITE %s SIP/2.0", advA2), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   msg(fmt("INVITE sip:alice@127.0.0.1:40000;lr;transport=tcp;x=1%s SIP/2.0", fa), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	   "advertised flow with other params: flow params go last");

	/* forged tokens */
	xerr(&cfg4, &connB, B, msg(fmt("INVITE %s SIP/2.0", damage(advA, "sc-flow=", 3)), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	     "forged flow token", "Request-URI: sc-flow damaged in the flow id");
	xerr(&cfg4, &connB, B, msg(fmt("INVITE %s SIP/2.0", damage(advA, "sc-flow=", 20)), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	     "forged flow token", "Request-URI: sc-flow damaged in the MAC");
	xerr(&cfg4, &connB, B, msg(fmt("INVITE %s SIP/2.0", damage(advA, "sc-o=", 5)), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	     "forged flow token", "Request-URI: sc-o changed");
	xerr(&cfg4, &connB, B,
	     msg(fmt("INVITE sip:alice@sip.example.test:5061;transport=tls;sc-flow=%.*s SIP/2.0",
		     (int)(strstr(fa, ";sc-o=") - (fa + 9)), fa + 9),
		 VIA_C FT "CSeq: 1 INVITE\r\n", ""),
	     "forged flow token", "Request-URI: sc-o missing");
	xerr(&cfg4, &connB, B,
	     msg("INVITE sip:bob@example.org SIP/2.0",
		 fmt(VIA_C FT "CSeq: 1 INVITE\r\nRoute: <%s>\r\n", damage(advA, "sc-flow=", 3)), ""),
	     "forged flow token", "Route: sc-flow damaged");
	xerr(&cfg4, &connB, B,
	     msg("INVITE sip:bob@example.org SIP/2.0",
		 fmt(VIA_C FT "CSeq: 1 INVITE\r\nRoute: <%s>\r\n", damage(advA, "sc-o=", 0)), ""),
	     "forged flow token", "Route: sc-o changed");
	{
		/* a genuine token for another original URI than sc-o says */
		const char *fb = flowp(FLOW_A, "sip:mallory@198.51.100.1");
		const char *mix = fmt("sip:alice@sip.example.test:5061;transport=tls;sc-flow=%.*s;sc-o=%s",
				      (int)(strstr(fb, ";sc-o=") - (fb + 9)), fb + 9, strstr(fa, "sc-o=") + 5);
		xerr(&cfg4, &connB, B, msg(fmt("INVITE %s SIP/2.0", mix), VIA_C FT "CSeq: 1 INVITE\r\n", ""),
		     "forged flow token", "Request-URI: token of another URI");
	}

	{
		/* a Contact URI with whitespace in it (here from a fold inside
		 * <...>): either refused on the way in, or the request the
		 * legacy server sends to its flow must still be a valid
		 * message on the way out (its Request-URI restored) */
		static const char *const bad[] = { "sip:alice@192.0.2.7;x y", "sip:al ice@192.0.2.7", "sip:alice@192.0.2.7;a=\tb" };
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			run(&cfg4, &connA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), bad[i]), ""), NULL, 0, NULL, &r);
			if (r.rc == -1) {
				ok(1, "Contact <%s>: refused on the way in (%s)", bad[i], r.info.detail);
				continue;
			}
			const char *loop = fmt("sip:alice@127.0.0.1:40000;transport=tcp%s", flowp(FLOW_A, bad[i]));
			run(&cfg4, &connA, T, msg(fmt("BYE %s SIP/2.0", loop), VIA_C FT "CSeq: 2 BYE\r\n", ""), NULL, 0, NULL, &r);
			if (!ok(r.rc == 1 && r.reframes, "Contact <%s>: wrapped, so its flow's request stays a valid message",
				bad[i]) &&
			    r.out)
				diag("start line sent to the TLS peer: '%.*s'", (int)strcspn(r.out, "\r"), r.out);
		}
	}

	/* topo_flow_of */
	is_int(1, flow_of(&cfg4, msg(fmt("BYE %s SIP/2.0", loopA), VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: loopback flow Request-URI");
	ok(id == FLOW_A, "topo_flow_of: its flow id");
	is_int(-1, flow_of(&cfg4, msg(fmt("BYE %s SIP/2.0", damage(loopA, "sc-flow=", 3)), VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: forged sc-flow: -1");
	is_int(-1, flow_of(&cfg4, msg(fmt("BYE %s SIP/2.0", damage(loopA, "sc-o=", 4)), VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: changed sc-o: -1");
	is_int(0, flow_of(&cfg4, msg("BYE sip:alice@127.0.0.1:40000;transport=tcp SIP/2.0", VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: no token: 0");
	is_int(0, flow_of(&cfg4, msg("BYE sip:alice@client.example.com SIP/2.0", VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: another host: 0");
	is_int(1,
	       flow_of(&cfg4,
		       msg("BYE sip:alice@127.0.0.1:40000 SIP/2.0",
			   fmt(VIA_C "Route: <sip:127.0.0.1:40000;transport=tcp;lr%s>\r\n" FT "CSeq: 2 BYE\r\n", fa), ""),
		       &id),
	       "topo_flow_of: Request-URI without token, top Route with one");
	ok(id == FLOW_A, "topo_flow_of: the Route's flow id");
	is_int(-1,
	       flow_of(&cfg4,
		       msg("BYE sip:alice@example.org SIP/2.0",
			   fmt(VIA_C "Route: <%s>\r\n" FT "CSeq: 2 BYE\r\n", damage(loopA, "sc-flow=", 3)), ""),
		       &id),
	       "topo_flow_of: forged token in the top Route: -1");
	is_int(0,
	       flow_of(&cfg4,
		       msg("BYE sip:alice@example.org SIP/2.0",
			   fmt(VIA_C "Route: <sip:proxy.example.org;lr>\r\nRoute: <%s>\r\n" FT "CSeq: 2 BYE\r\n", loopA), ""),
		       &id),
	       "topo_flow_of: only the top Route counts");
	is_int(0, flow_of(&cfg4, msg("SIP/2.0 200 OK", fmt(VIA_C "Contact: <%s>\r\n" FT "CSeq: 2 BYE\r\n", loopA), ""), &id),
	       "topo_flow_of: a response: 0");
	is_int(1, flow_of(&cfg6, msg(fmt("BYE sip:alice@[::1]:40000;transport=tcp%s SIP/2.0", fa), VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: IPv6 flow host");
	is_int(0, flow_of(&cfg6, msg(fmt("BYE %s SIP/2.0", loopA), VIA_C FT "CSeq: 2 BYE\r\n", ""), &id),
	       "topo_flow_of: not the flow host: 0");
}

/* ---- errors ---- */

static void test_errors(void)
{
	const enum topo_dir B = TOPO_TO_BACKEND, T = TOPO_TO_TLS;
	for (int d = 0; d < 2; d++) {
		enum topo_dir dir = d ? T : B;
		const char *w = d ? "to TLS" : "to backend";
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Route: <sip:127.0.0.1:5060;lr\r\n"), ""), "unterminated <URI>",
		     fmt("%s: unterminated <", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Contact: \"Doe, John <sip:john@127.0.0.1:5060>\r\n"), ""),
		     "unterminated quoted string", fmt("%s: unterminated quoted display name", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Contact: <sip:a@host:99999>\r\n"), ""), "unparsable URI",
		     fmt("%s: port 99999", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Record-Route: <sip:host:0;lr>\r\n"), ""), "unparsable URI",
		     fmt("%s: port 0", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Contact: <sip:a@:5060>\r\n"), ""), "unparsable URI",
		     fmt("%s: empty host before a port", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Path: <sip:a@;lr>\r\n"), ""), "unparsable URI",
		     fmt("%s: empty host before params", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Route: <sip:[::1;lr>\r\n"), ""), "unparsable URI",
		     fmt("%s: unterminated IPv6 reference", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Contact: <>\r\n"), ""), NULL, fmt("%s: empty <>", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Contact: <sip:a@host/x>\r\n"), ""), "unparsable URI",
		     fmt("%s: bad host character", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C OPT("Contact: <sip:a@host:5060x>\r\n"), ""), "unparsable URI",
		     fmt("%s: junk after the port", w));
		xerr(&cfg4, &connA, dir, msg("OPTIONS sip:a@:5060 SIP/2.0", VIA_C OPT(""), ""), "unparsable URI",
		     fmt("%s: Request-URI with an empty host", w));
		xerr(&cfg4, &connA, dir, msg("OPTIONS sip:a@host:99999 SIP/2.0", VIA_C OPT(""), ""), "unparsable URI",
		     fmt("%s: Request-URI with a bad port", w));
		xerr(&cfg4, &connA, dir, msg(RL, "Via: garbage\r\n" OPT(""), ""), "unparsable Via", fmt("%s: Via garbage", w));
		xerr(&cfg4, &connA, dir, msg(RL, "Via: SIP/2.0/TCP\r\n" OPT(""), ""), "unparsable Via",
		     fmt("%s: Via without sent-by", w));
		xerr(&cfg4, &connA, dir, msg(RL, "Via: SIP/2.0/TCP [::1;branch=z9hG4bK1\r\n" OPT(""), ""), "unparsable Via",
		     fmt("%s: Via with an unterminated IPv6 reference", w));
		xerr(&cfg4, &connA, dir, msg(RL, "Via: SIP/2.0/TCP h:70000;branch=z9hG4bK1\r\n" OPT(""), ""), "unparsable Via",
		     fmt("%s: Via with a bad port", w));
		xerr(&cfg4, &connA, dir, msg(RL, VIA_C "Via: SIP/2.0/TCP h;branch=1, bad\r\n" OPT(""), ""), "unparsable Via",
		     fmt("%s: a bad second Via value", w));
	}
}

/* ---- what a 2xx to REGISTER grants ---- */

static void reg(const struct topo_conn *tc, const char *status, const char *cseq, const char *h, int want_ok,
		unsigned long want_exp, const char *name)
{
	struct res r;
	run(&cfg4, tc, TOPO_TO_TLS,
	    msg(status, fmt("Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bK1;rport=40001;received=127.0.0.1;sc-tls\r\n"
			    FT "CSeq: %s\r\n%s", cseq, h), ""),
	    NULL, 0, NULL, &r);
	is_int(1, r.rc, "%s: translated", name);
	is_int(want_ok, r.info.register_ok, "%s: register_ok", name);
	is_int((long long)want_exp, (long long)r.info.expires, "%s: expires", name);
}

static void test_register(void)
{
	const char *lA = fmt("sip:alice@127.0.0.1:40000;transport=tcp%s", flowp(FLOW_A, ORIG_A));
	const char *lB = fmt("sip:bob@127.0.0.1:40000;transport=tcp%s", flowp(FLOW_B, ORIG_B));
	struct res r;

	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Contact: <%s>;expires=300\r\n", lA), 1, 300, "own Contact");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER",
	    fmt("Contact: <%s>;expires=600, <%s>;expires=300\r\nExpires: 900\r\n", lB, lA), 1, 300,
	    "own and another conn's Contact");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER",
	    fmt("Contact: <%s>;expires=600\r\nContact: <%s>;q=0.5;expires=120\r\n", lB, lA), 1, 120,
	    "another conn's expires ignored (two lines)");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Contact: <%s>;expires=600\r\n", lB), 1, 0,
	    "only another conn's Contact");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Contact: <%s>\r\nExpires: 120\r\n", lA), 1, 120,
	    "no Contact expires: the Expires header");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Expires: 120\r\nm: <%s>;expires=3600\r\n", lA), 1, 3600,
	    "Contact expires wins over the Expires header");
	reg(&connA, "SIP/2.0 202 Accepted", "77 register", fmt("Contact: <%s>;expires=60\r\n", lA), 1, 60,
	    "any 2xx, method in lower case");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Contact: %s\r\n", lA), 1, 0,
	    "addr-spec with ';': header params, so no flow");
	reg(&connA, "SIP/2.0 200 OK", "1 INVITE", fmt("Contact: <%s>;expires=300\r\n", lA), 0, 0, "200 to INVITE");
	reg(&connA, "SIP/2.0 403 Forbidden", "1 REGISTER", fmt("Contact: <%s>;expires=300\r\n", lA), 0, 0,
	    "403 to REGISTER");
	reg(&conn0, "SIP/2.0 200 OK", "1 REGISTER",
	    "Contact: <sip:carol@10.0.0.5:5062>;expires=90, <sip:dave@10.0.0.6>;expires=45\r\n", 1, 90,
	    "no flow (id 0): every Contact counts");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Contact: <%s>;expires=0\r\nExpires: 3600\r\n", lA), 1, 0,
	    "own Contact expires=0 is not replaced by the Expires header");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER", fmt("Contact: <%s>;expires=600\r\nExpires: 3600\r\n", lB), 1, 0,
	    "only another conn's Contact: the Expires header grants this one nothing");

	run(&cfg4, &connA, TOPO_TO_TLS,
	    msg("SIP/2.0 200 OK", fmt(VIA_C FT "CSeq: 1 REGISTER\r\nContact: <%s>;expires=300\r\n", lA), ""), NULL, 0, NULL,
	    &r);
	is_str("Contact: <" ORIG_A ">;expires=300", line_of(r.out, "Contact"), "200 OK: own Contact restored");
	run(&cfg4, &connA, TOPO_TO_BACKEND,
	    msg("SIP/2.0 200 OK", fmt(VIA_C FT "CSeq: 1 REGISTER\r\nContact: <%s>;expires=300\r\n", lA), ""), NULL, 0, NULL,
	    &r);
	is_int(0, r.info.register_ok, "to the backend: never register_ok");
}

/* ---- the wrap cache of a connection ---- */

static void test_cache(void)
{
	struct topo_wrap_cache *cache = NULL;
	struct topo_conn cA = connA;
	const enum topo_dir B = TOPO_TO_BACKEND, T = TOPO_TO_TLS;
	static const char *const X = "sip:alice@192.0.2.7:34567;transport=tls;ob";
	static const char *const Y = "sip:alice@192.0.2.7:34567;transport=tls;oc"; /* same length as X */
	char longu[400];
	memset(longu, 'l', sizeof longu - 1);
	longu[sizeof longu - 1] = '\0';
	const char *L = fmt("sip:%s@192.0.2.7", longu); /* a long one */
	struct res r;

	cA.cache = &cache;
#define WRAPPED(orig) fmt("Contact: <sip:alice@127.0.0.1:40000;transport=tcp%s>\r\n", flowp(FLOW_A, orig))
	xl(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), X), ""), msg(RL, fmt(VIA_C OPT("%s"), WRAPPED(X)), ""),
	   "cache: first Contact wrapped");
	ok(cache != NULL, "cache: filled");
	xl(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), X), ""), msg(RL, fmt(VIA_C OPT("%s"), WRAPPED(X)), ""),
	   "cache: the same Contact again, the same token");
	xl(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), Y), ""), msg(RL, fmt(VIA_C OPT("%s"), WRAPPED(Y)), ""),
	   "cache: another Contact of the same length, its own token");
	xl(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>, <%s>\r\n"), X, Y), ""),
	   msg(RL, fmt(VIA_C OPT("Contact: <sip:alice@127.0.0.1:40000;transport=tcp%s>, <sip:alice@127.0.0.1:40000;transport=tcp%s>\r\n"),
		       flowp(FLOW_A, X), flowp(FLOW_A, Y)), ""),
	   "cache: two Contacts in one message");
	xl(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), L), ""),
	   msg(RL, fmt(VIA_C OPT("Contact: <sip:%s@127.0.0.1:40000;transport=tcp%s>\r\n"), longu, flowp(FLOW_A, L)), ""),
	   "cache: a long Contact");
	xl(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), Y), ""), msg(RL, fmt(VIA_C OPT("%s"), WRAPPED(Y)), ""),
	   "cache: after it, the cached one still right");
	/* the cache belongs to one flow: another conn with its own cache */
	struct topo_wrap_cache *cacheB = NULL;
	struct topo_conn cB = connB;
	cB.cache = &cacheB;
	xl(&cfg4, &cB, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), Y), ""),
	   msg(RL, fmt(VIA_C OPT("Contact: <sip:alice@127.0.0.1:40000;transport=tcp%s>\r\n"), flowp(FLOW_B, Y)), ""),
	   "cache: conn B's token for the same Contact");
	/* what was wrapped with the cache restores */
	run(&cfg4, &cA, B, msg(RL, fmt(VIA_C OPT("Contact: <%s>\r\n"), Y), ""), NULL, 0, NULL, &r);
	const char *c = line_of(r.out, "Contact");
	run(&cfg4, &cA, T, msg("SIP/2.0 200 OK", fmt(VIA_C FT "CSeq: 1 REGISTER\r\n%s\r\n", c ? c : ""), ""), NULL, 0, NULL, &r);
	is_str(fmt("Contact: <%s>", Y), line_of(r.out, "Contact"), "cache: the cached token verifies");
#undef WRAPPED
	free(cache);
	free(cacheB);
}

/* ---- identity header: strip and insert ---- */

static void test_identity(void)
{
	static const char *const S = "MESSAGE sip:bob@example.org SIP/2.0";
	const char *in = msg(S,
			     VIA_C "X-TLS-Peer-Identity: spoofed\r\n" FT "CSeq: 1 MESSAGE\r\n"
			     "x-tls-peer-identity: spoofed2,\r\n continued\r\n"
			     "Content-Type: text/plain\r\n",
			     "hello\r\n\r\nworld");
	const char *idh = IDH ": peer\r\n";
	struct res r;
	struct sf_msg m;
	char *b;

	run(&cfg4, &conn0, TOPO_TO_BACKEND, in, IDH, 1, idh, &r);
	is_int(1, r.rc, "strip and insert: translated");
	is_str("MESSAGE sip:bob@example.org SIP/2.0\r\n" VIA_C FT "CSeq: 1 MESSAGE\r\n"
	       "Content-Type: text/plain\r\n"
	       "Content-Length: 14\r\n" IDH ": peer\r\n\r\nhello\r\n\r\nworld",
	       r.out, "strip and insert: spoofed lines gone, ours at the end, body intact");
	ok(r.reframes, "strip and insert: frames");
	if (r.out && frame(r.out, strlen(r.out), IDH, &m, &b) == 0) {
		is_int(1, m.nstrip, "strip and insert: exactly one identity header left");
		is_int((long long)(m.hdr_end - strlen(idh)), m.strip[0].off, "strip and insert: just before the empty line");
		is_int(14, (long long)m.body_len, "strip and insert: Content-Length unchanged");
		free(b);
	} else {
		for (int i = 0; i < 3; i++)
			ok(0, "strip and insert: output frames with the identity header name");
	}

	run(&cfg4, &conn0, TOPO_TO_BACKEND, in, IDH, 0, idh, &r);
	is_int(1, r.rc, "no strip, insert: translated");
	is_str(fmt("%.*s%s\r\n\r\nhello\r\n\r\nworld", (int)(strstr(in, "\r\n\r\n") + 2 - in), in, IDH ": peer"), r.out,
	       "no strip, insert: spoofed lines kept, ours added");

	run(&cfg4, &conn0, TOPO_TO_BACKEND, in, IDH, 1, NULL, &r);
	is_int(1, r.rc, "strip only: translated");
	is_str("MESSAGE sip:bob@example.org SIP/2.0\r\n" VIA_C FT "CSeq: 1 MESSAGE\r\n"
	       "Content-Type: text/plain\r\n"
	       "Content-Length: 14\r\n\r\nhello\r\n\r\nworld",
	       r.out, "strip only: spoofed lines gone");

	/* the identity header last, right before the empty line */
	const char *last = fmt("%s", msg(S, VIA_C FT "CSeq: 1 MESSAGE\r\n", ""));
	const char *last_in = fmt("%.*s" IDH ": evil\r\n\r\n", (int)(strlen(last) - 2), last);
	run(&cfg4, &conn0, TOPO_TO_BACKEND, last_in, IDH, 1, idh, &r);
	is_str(fmt("%.*s" IDH ": peer\r\n\r\n", (int)(strlen(last) - 2), last), r.out,
	       "identity header as the last line replaced");

	run(&cfg4, &conn0, TOPO_TO_BACKEND, msg(S, VIA_C FT "CSeq: 1 MESSAGE\r\n", "x"), IDH, 1, NULL, &r);
	is_int(0, r.rc, "nothing to strip nor insert: unchanged");

	/* with translation too: the wrapped Contact and the stripping */
	run(&cfg4, &connA, TOPO_TO_BACKEND,
	    msg(S, "Via: SIP/2.0/TLS client.example.com;branch=z9hG4bK1\r\n" IDH ": spoofed\r\n" FT
		   "CSeq: 1 MESSAGE\r\nContact: <" ORIG_A ">\r\n", "hi"),
	    IDH, 1, idh, &r);
	is_str(msg(S,
		   fmt("Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK1;rport;sc-tls\r\n" FT
		       "CSeq: 1 MESSAGE\r\nContact: <sip:alice@127.0.0.1:40000;transport=tcp%s>\r\n",
		       flowp(FLOW_A, ORIG_A)),
		   "hi"),
	       r.out ? fmt("%.*s%s", (int)(strstr(r.out, IDH ": peer\r\n") - r.out), r.out,
			   strstr(r.out, IDH ": peer\r\n") + strlen(idh))
		     : NULL,
	       "translation, strip and insert together");
}

/* ---- folded lines ---- */

static void test_folded(void)
{
	const enum topo_dir B = TOPO_TO_BACKEND, T = TOPO_TO_TLS;
	hdrs(T, "Contact: <sip:bob@127.0.0.1:5060>;expires=60,\r\n <sip:carol@127.0.0.1:5060>\r\n",
	     "Contact: <sip:bob@sip.example.test:5061;transport=tls>;expires=60, "
	     "<sip:carol@sip.example.test:5061;transport=tls>\r\n",
	     "folded Contact: unfolded and translated");
	hdrs(T, "Contact:\r\n\t<sip:bob@127.0.0.1:5060>\r\n", "Contact:\t<sip:bob@sip.example.test:5061;transport=tls>\r\n",
	     "Contact value on a continuation line");
	hdrs(T, "Contact: <sip:bob@10.0.0.1>,\r\n <sip:carol@10.0.0.2>\r\nX-Other: a,\r\n b\r\n", NULL,
	     "folded, nothing to translate: kept folded");
	hdrs(B, "Contact:\r\n <" ORIG_A ">\r\n", fmt("Contact: <sip:alice@127.0.0.1:40000;transport=tcp%s>\r\n", flowp(FLOW_A, ORIG_A)),
	     "folded Contact wrapped");
	xl(&cfg4, &connA, B,
	   msg(RL, "Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK1,\r\n\tSIP/2.0/TLS b.example.com;branch=z9hG4bK2\r\n" OPT(""), ""),
	   msg(RL, "Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK1;rport;sc-tls,\tSIP/2.0/TLS b.example.com;branch=z9hG4bK2\r\n" OPT(""), ""),
	   "folded Via: top value translated");
	reg(&connA, "SIP/2.0 200 OK", "1 REGISTER",
	    fmt("Contact: <sip:x@10.0.0.1>;expires=10,\r\n <sip:alice@127.0.0.1:40000;transport=tcp%s>;expires=200\r\n",
		flowp(FLOW_A, ORIG_A)),
	    1, 200, "folded Contact of a REGISTER's 200 OK");
}

/* RFC 3327: a REGISTER that supports path gets the flow as its first Path. */
static void test_path(void)
{
	static const char with[] = "REGISTER sip:sip.example.test SIP/2.0\r\n"
				   "Via: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bKp;rport\r\n"
				   "Supported: outbound, path\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
	static const char without[] = "REGISTER sip:sip.example.test SIP/2.0\r\n"
				      "Via: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bKp;rport\r\n"
				      "Supported: pathological\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
	struct sipframe f;
	struct sf_msg m;
	struct topo_out o = { 0 };
	struct topo_info info;
	const char *want = fmt("REGISTER sip:sip.example.test SIP/2.0\r\nPath: <sip:127.0.0.1:40000;transport=tcp;lr;ob%s>\r\n",
			       flowp(FLOW_A, "sip:sip.example.test:5061;transport=tls;lr"));
	sf_init(&f, 65536, NULL);
	ok(sf_parse(&f, with, sizeof with - 1, &m) == SF_MESSAGE, "path: REGISTER framed");
	is_int(1, topo_rewrite(&cfg4, &connA, TOPO_TO_BACKEND, with, &m, 1, NULL, 0, &o, &info), "path: rewritten");
	ok(o.len > strlen(want) && !memcmp(o.d, want, strlen(want)), "path: the flow is the first Path (%.*s)",
	   (int)(o.len > 200 ? 200 : o.len), o.d);
	sf_init(&f, 65536, NULL);
	ok(sf_parse(&f, without, sizeof without - 1, &m) == SF_MESSAGE, "path: REGISTER without path framed");
	topo_rewrite(&cfg4, &connA, TOPO_TO_BACKEND, without, &m, 1, NULL, 0, &o, &info);
	ok(!memmem(o.d, o.len, "Path:", 5), "path: no Path without Supported: path");
	sf_init(&f, 65536, NULL);
	ok(sf_parse(&f, with, sizeof with - 1, &m) == SF_MESSAGE, "path: framed again");
	topo_rewrite(&cfg4, &conn0, TOPO_TO_BACKEND, with, &m, 1, NULL, 0, &o, &info);
	ok(!memmem(o.d, o.len, "Path:", 5), "path: no Path on a connection without a flow");
	free(o.d);
}

int main(void)
{
	if (gnutls_global_init() < 0)
		bail("gnutls_global_init failed");
	setup();
	plan_lazy();
	test_to_tls_uris();
	test_to_tls_via();
	test_to_backend_uris();
	test_to_backend_via();
	test_response_via();
	test_flows();
	test_errors();
	test_register();
	test_cache();
	test_identity();
	test_folded();
	test_path();
	gnutls_global_deinit();
	fmt_free_all();
	return tap_done();
}
