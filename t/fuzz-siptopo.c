/*
 * fuzz-siptopo: libFuzzer target for the SIP topology translation
 * (sidecar/siptopo.c).
 *
 * Input: one configuration byte, then a stream framed with sf_parse (the
 * same format as fuzz-sipframe, whose seed corpus suits this target too).
 * Configuration bits 0-1 pick the addresses (loopback IPv4 backend; IPv6
 * backend; and two sets naming hosts of the seed corpus), bit 2 the identity
 * header name (strip spans applied on the way to the backend), bit 3 whether
 * an identity header is inserted there (with bit 2 only), bits 4-5 the connection (flow A, flow B,
 * no flow, flow A with an IPv6 peer; A and B keep a wrap cache, emptied
 * after every input).
 *
 * Every complete message goes through topo_rewrite in both directions and
 * topo_flow_of; what went to the backend is sent back to the TLS side by the
 * same connection and by another one (and, for a request, answered with a
 * 200 OK), and that advertised form back to the backend, also as a
 * Request-URI, so that genuine flow tokens are exercised. Each call sees an
 * exact-size heap copy. The invariants checked (abort() on failure):
 *  - topo_rewrite returns -1 (with a detail), 0 (only when neither strip
 *    spans nor an identity header were asked for) or 1;
 *  - a new message frames again as one message of the same kind, with the
 *    same start-line method/status, the same body, no identity header left
 *    when the spans were applied and exactly the one inserted;
 *  - a message translated for the backend without error translates back
 *    for the TLS side without error;
 *  - an advertised flow URI used as a Request-URI by another peer reaches
 *    the backend as a flow URI that topo_flow_of maps to the connection
 *    whose Contact it was;
 *  - a connection's wrap cache changes nothing in the output;
 *  - topo_flow_of returns -1, 0 or 1, and a non-zero flow id with 1.
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named on
 * its command line once (regression runs without libFuzzer).
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipframe.h"
#include "siptopo.h"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

#define IDH "X-TLS-Peer-Identity"
#define IDHDR IDH ": sip:peer.example.com\r\n"
#define MAX_MSGS 64

static const unsigned char KEY[TOPO_KEY_LEN] = "0123456789abcdef0123456789abcdef";

static struct topo_key tkey;
static struct topo_cfg cfgs[4];
/* the connections; A and B keep a wrap cache (fresh for every input) */
static struct topo_wrap_cache *cacheA, *cacheB;
static const struct topo_conn conns[4] = {
	{ ((uint64_t)40000 << 48) | 7, 40000, "192.0.2.7", 34567, &cacheA },
	{ ((uint64_t)40001 << 48) | 8, 40001, "192.0.2.8", 40404, &cacheB },
	{ 0, 40000, "192.0.2.9", 5555, NULL },
	{ ((uint64_t)65535 << 48) | 0xffffffffffffull, 65535, "2001:db8::7", 1, NULL },
};

static void set(struct topo_cfg *c, const char *back, unsigned bport, const char *adv, unsigned aport, const char *flow)
{
	snprintf(c->back_host, sizeof c->back_host, "%s", back);
	c->back_port = bport;
	snprintf(c->adv_host, sizeof c->adv_host, "%s", adv);
	c->adv_port = aport;
	snprintf(c->flow_host, sizeof c->flow_host, "%s", flow);
	c->key = &tkey;
}

static void setup(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	topo_key_init(&tkey, KEY);
	set(&cfgs[0], "127.0.0.1", 5060, "sip.example.test", 5061, "127.0.0.1");
	set(&cfgs[1], "[::1]", 5060, "sip.example.test", 5061, "[::1]");
	/* hosts of t/data/fuzz-sipframe */
	set(&cfgs[2], "biloxi.example.com", 5060, "ss2.biloxi.example.com", 5061, "client.atlanta.example.com");
	set(&cfgs[3], "example.com", 5060, "atlanta.example.com", 5061, "127.0.0.1");
}

/* An exact-size heap copy of p[0..n). */
static char *dup_exact(const char *p, size_t n)
{
	char *b = malloc(n ? n : 1);
	CHECK(b);
	if (n)
		memcpy(b, p, n);
	return b;
}

/* Frames buf (exact copy) as one whole message; 0 on success. */
static int frame_one(const char *buf, size_t n, const char *strip, struct sf_msg *m)
{
	struct sipframe f;
	sf_init(&f, n + 64, strip);
	enum sf_result r = sf_parse(&f, buf, n, m);
	return r == SF_MESSAGE && m->len == n ? 0 : -1;
}

static void check_flow_of(const struct topo_cfg *cfg, const char *msg, const struct sf_msg *m)
{
	uint64_t id = 0;
	int r = topo_flow_of(cfg->key, cfg->flow_host, msg, m, &id);
	CHECK(r >= -1 && r <= 1);
	if (r == 1)
		CHECK(id != 0);
}

/* Length of the start line's first token (method, or "SIP/2.0"). */
static size_t first_tok(const char *s, size_t n)
{
	const char *sp = memchr(s, ' ', n);
	return sp ? (size_t)(sp - s) : n;
}

/*
 * Translates msg (m) in direction dir by tc; checks the result. Returns the
 * rc, with *out an exact heap copy of the new message (rc 1) and *om its
 * framing, else *out NULL.
 */
static int xlate(const struct topo_cfg *cfg, const struct topo_conn *tc, enum topo_dir dir, const char *msg,
		 const struct sf_msg *m, int apply_strip, const char *idhdr, const char *strip, char **out,
		 struct sf_msg *om)
{
	struct topo_out o = { 0 };
	struct topo_info info;
	size_t il = idhdr ? strlen(idhdr) : 0;

	*out = NULL;
	int rc = topo_rewrite(cfg, tc, dir, msg, m, apply_strip, idhdr, il, &o, &info);
	CHECK(rc >= -1 && rc <= 1);
	if (rc < 0) {
		CHECK(info.detail != NULL);
		free(o.d);
		return rc;
	}
	if (dir == TOPO_TO_BACKEND)
		CHECK(info.register_ok == 0);
	CHECK(info.register_ok == 0 || info.register_ok == 1);
	if (rc == 0) {
		CHECK(!idhdr && !(apply_strip && m->nstrip));
		free(o.d);
		return 0;
	}
	CHECK(o.len > 0);
	char *b = dup_exact(o.d, o.len);
	free(o.d);
	/* the new message frames as one, with what the caller expects */
	const char *rs = apply_strip ? strip : NULL;
	CHECK(frame_one(b, o.len, rs, om) == 0);
	CHECK(om->is_request == m->is_request);
	CHECK(om->body_len == m->body_len);
	CHECK(!memcmp(b + om->hdr_end, msg + m->hdr_end, m->len - m->hdr_end));
	size_t t1 = first_tok(msg, m->start_line.len), t2 = first_tok(b, om->start_line.len);
	CHECK(t1 == t2 && !memcmp(msg, b, t1));
	if (!m->is_request) /* a status line is never changed */
		CHECK(om->start_line.len == m->start_line.len && !memcmp(msg, b, m->start_line.len));
	if (rs) {
		CHECK(om->nstrip == (idhdr ? 1u : 0u));
		if (idhdr)
			CHECK(om->strip[0].off + il == om->hdr_end && !memcmp(b + om->strip[0].off, idhdr, il));
	}
	*out = b;
	return 1;
}

/*
 * A copy of msg (framed as m) with its start line replaced by sl; frames it
 * into *nm. Returns the new message (exact heap copy) or NULL when it does
 * not frame (e.g. sl names a URI with spaces).
 */
static char *with_start_line(const char *msg, const struct sf_msg *m, const char *sl, size_t sl_len,
			     struct sf_msg *nm)
{
	size_t rest = m->len - m->start_line.len;
	char *b = malloc(sl_len + rest);
	CHECK(b);
	memcpy(b, sl, sl_len);
	memcpy(b + sl_len, msg + m->start_line.len, rest);
	if (frame_one(b, sl_len + rest, NULL, nm) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

/*
 * adv (framed as am) went to a TLS peer with the flows of tc in advertised
 * form: that peer sends a request to the first of them; it must reach the
 * legacy server as the loopback flow form, which topo_flow_of maps to tc.
 */
static void use_advertised(const struct topo_cfg *cfg, const struct topo_conn *tc, const struct topo_conn *from,
			   const char *adv, const struct sf_msg *am)
{
	const char *tok = NULL;
	for (size_t i = 0; i + 9 <= am->hdr_end; i++)
		if (!memcmp(adv + i, ";sc-flow=", 9)) {
			tok = adv + i;
			break;
		}
	if (!tok)
		return;
	const char *lt = tok, *gt = tok;
	while (lt > adv && *lt != '<' && *lt != '\n')
		lt--;
	while (gt < adv + am->hdr_end && *gt != '>' && *gt != '\r')
		gt++;
	if (*lt != '<' || *gt != '>')
		return;
	char sl[2200];
	size_t ul = (size_t)(gt - lt - 1);
	if (ul + 20 > sizeof sl)
		return;
	memcpy(sl, "OPTIONS ", 8);
	memcpy(sl + 8, lt + 1, ul);
	memcpy(sl + 8 + ul, " SIP/2.0", 8);
	struct sf_msg rm, om;
	char *req = with_start_line(adv, am, sl, 16 + ul, &rm);
	if (!req)
		return;
	char *out = NULL;
	int r = xlate(cfg, from, TOPO_TO_BACKEND, req, &rm, 0, NULL, NULL, &out, &om);
	if (out) {
		uint64_t id = 0;
		int f = topo_flow_of(cfg->key, cfg->flow_host, out, &om, &id);
		CHECK(f >= -1 && f <= 1);
		/* the Request-URI translated: it was a genuine flow of tc */
		if (om.start_line.len != rm.start_line.len || memcmp(out, req, rm.start_line.len)) {
			CHECK(f == 1 && id == tc->flow_id);
			/* and to tc itself it is the client's own URI again */
			char *own = NULL;
			struct sf_msg wm;
			CHECK(xlate(cfg, tc, TOPO_TO_TLS, out, &om, 0, NULL, NULL, &own, &wm) == 1);
			free(own);
		}
		free(out);
	}
	(void)r;
	free(req);
}

static void one_message(const struct topo_cfg *cfg, const struct topo_conn *tc, const struct topo_conn *other,
			const char *msg, const struct sf_msg *m, const char *strip, int want_id)
{
	const char *idhdr = want_id ? IDHDR : NULL;
	char *be = NULL, *tls = NULL, *back = NULL, *adv = NULL, *again = NULL;
	struct sf_msg bm, tm, xm, am, gm;

	check_flow_of(cfg, msg, m);

	/* from the TLS peer, as the daemon does it */
	int rb = xlate(cfg, tc, TOPO_TO_BACKEND, msg, m, strip != NULL, idhdr, strip, &be, &bm);
	if (tc->cache) {
		/* the wrap cache changes nothing: again with it (now warm)
		 * and without it */
		struct topo_conn nc = *tc;
		struct sf_msg cm;
		char *c1 = NULL, *c2 = NULL;
		nc.cache = NULL;
		CHECK(xlate(cfg, tc, TOPO_TO_BACKEND, msg, m, strip != NULL, idhdr, strip, &c1, &cm) == rb);
		CHECK(xlate(cfg, &nc, TOPO_TO_BACKEND, msg, m, strip != NULL, idhdr, strip, &c2, &cm) == rb);
		if (be) {
			CHECK(c1 && c2 && bm.len == cm.len);
			CHECK(!memcmp(be, c1, bm.len) && !memcmp(be, c2, bm.len));
		}
		free(c1);
		free(c2);
	}
	/* from the legacy server */
	int rt = xlate(cfg, tc, TOPO_TO_TLS, msg, m, 0, NULL, strip, &tls, &tm);
	(void)rt;
	if (tls) {
		check_flow_of(cfg, tls, &tm);
		xlate(cfg, other, TOPO_TO_BACKEND, tls, &tm, 0, NULL, NULL, &again, &gm);
		if (again)
			check_flow_of(cfg, again, &gm);
	}
	if (rb >= 0) {
		const char *bmsg = be ? be : msg;
		const struct sf_msg *bmm = be ? &bm : m;
		if (be)
			check_flow_of(cfg, be, &bm);
		/* what reached the legacy server comes back: to the same peer
		 * (its flows restored) and to another (advertised) */
		int r2 = xlate(cfg, tc, TOPO_TO_TLS, bmsg, bmm, 0, NULL, NULL, &back, &xm);
		CHECK(r2 >= 0);
		int r3 = xlate(cfg, other, TOPO_TO_TLS, bmsg, bmm, 0, NULL, NULL, &adv, &am);
		CHECK(r3 >= 0);
		if (be && m->is_request) {
			/* the legacy server answers what it got (Via sc-tls,
			 * a REGISTER's Contacts and expires) */
			static const char ok200[] = "SIP/2.0 200 OK";
			struct sf_msg rm, om;
			char *resp = with_start_line(be, &bm, ok200, sizeof ok200 - 1, &rm), *o = NULL;
			if (resp) {
				xlate(cfg, tc, TOPO_TO_TLS, resp, &rm, 0, NULL, NULL, &o, &om);
				free(o);
				free(resp);
			}
		}
		if (adv) {
			use_advertised(cfg, tc, other, adv, &am);
			/* the advertised form, from a TLS peer, to the backend */
			free(again);
			again = NULL;
			int r4 = xlate(cfg, tc, TOPO_TO_BACKEND, adv, &am, 0, NULL, NULL, &again, &gm);
			(void)r4;
			if (again)
				check_flow_of(cfg, again, &gm);
		}
	}
	free(be);
	free(tls);
	free(back);
	free(adv);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	setup();
	const struct topo_cfg *cfg = &cfgs[data[0] & 3];
	const char *strip = data[0] & 4 ? IDH : NULL;
	int want_id = strip && (data[0] & 8); /* inserted where spans are applied */
	const struct topo_conn *tc = &conns[(data[0] >> 4) & 3];
	const struct topo_conn *other = &conns[((data[0] >> 4) + 1) & 3];
	const char *in = (const char *)data + 1;
	size_t n = size - 1, done = 0;
	struct sipframe f;

	sf_init(&f, 65536, strip);
	for (int k = 0; k < MAX_MSGS && done < n; k++) {
		struct sf_msg m;
		enum sf_result r = sf_parse(&f, in + done, n - done, &m);
		if (r == SF_NEED_MORE || r == SF_ERROR)
			break;
		if (r == SF_MESSAGE) {
			char *msg = dup_exact(in + done, m.len);
			one_message(cfg, tc, other, msg, &m, strip, want_id);
			free(msg);
		}
		done += m.len;
	}
	free(cacheA);
	free(cacheB);
	cacheA = cacheB = NULL;
	return 0;
}

#include "fuzz-standalone.h"
