/*
 * siptopo: address translation at the TLS boundary (see siptopo.h).
 *
 * The message is copied into the output header line by header line; the
 * lines that carry URIs the sidecar translates are parsed and re-emitted,
 * the others are copied as they are. A folded line of interest is unfolded.
 * When nothing changed (and nothing was to be stripped or inserted), the
 * caller sends the original bytes.
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "siptopo.h"

#define MAC_LEN 10
#define TOKEN_RAW (8 + MAC_LEN)
#define ORIG_MAX 1024

/* ---- output ------------------------------------------------------------- */

static inline void out_put(struct topo_out *o, const void *p, size_t n)
{
	if (__builtin_expect(o->len + n > o->cap, 0)) {
		size_t cap = o->cap ? o->cap : 1024;
		while (cap < o->len + n)
			cap *= 2;
		char *d = realloc(o->d, cap);
		if (!d)
			abort(); /* our memory is bounded; OOM is fatal */
		o->d = d;
		o->cap = cap;
	}
	memcpy(o->d + o->len, p, n);
	o->len += n;
}

static void out_str(struct topo_out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static size_t fmt_uint(char *b, unsigned long v)
{
	char t[24];
	size_t n = 0;
	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		b[i] = t[n - 1 - i];
	return n;
}

static void out_uint(struct topo_out *o, unsigned long v)
{
	char b[24];
	out_put(o, b, fmt_uint(b, v));
}

/* ---- base64url (no padding) ------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void out_b64(struct topo_out *o, const unsigned char *p, size_t n)
{
	char q[4];
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = b64[(v >> 18) & 63];
		q[1] = b64[(v >> 12) & 63];
		q[2] = b64[(v >> 6) & 63];
		q[3] = b64[v & 63];
		out_put(o, q, n - i >= 3 ? 4 : n - i + 1);
	}
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes s[0..n) into out (size cap). Returns the length or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	size_t len = 0;
	unsigned v = 0;
	int bits = 0;
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = b64val(s[i]);
		if (d < 0)
			return -1;
		v = (v << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (len >= cap)
				return -1;
			out[len++] = (unsigned char)(v >> bits);
		}
	}
	return (long)len;
}

/* ---- small scanners ------------------------------------------------------ */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ASCII case-insensitive prefix compare of n bytes (b in lower case or
 * not: both sides are folded). */
static int ipre(const char *a, const char *b, size_t n)
{
	if (!memcmp(a, b, n))
		return 1; /* the common case: the same case */
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if ((unsigned)(x - 'A') < 26u)
			x |= 0x20;
		if ((unsigned)(y - 'A') < 26u)
			y |= 0x20;
		if (x != y)
			return 0;
	}
	return 1;
}

static int ieqn(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && ipre(a, b, alen);
}

static int ieq(const char *a, size_t alen, const char *b)
{
	return ieqn(a, alen, b, strlen(b));
}

/* The first byte at or after i (below n) that is in stops and outside a
 * quoted string (with backslash escapes), or n; *open is set when a quoted
 * string runs to the end. */
static size_t scan_unquoted(const char *v, size_t i, size_t n, const char *stops, int *open)
{
	int inq = 0;
	for (; i < n; i++) {
		char c = v[i];
		if (inq) {
			if (c == '\\')
				i++;
			else if (c == '"')
				inq = 0;
			continue;
		}
		if (c == '"')
			inq = 1;
		else if (strchr(stops, c))
			break;
	}
	*open = inq;
	return i < n ? i : n;
}

/* ---- URIs ---------------------------------------------------------------- */

struct uri {
	const char *s;
	size_t len;
	int sips;
	size_t user_len;         /* bytes before '@' after "sip:"; user = s + scheme_end */
	int has_user;
	size_t scheme_end;       /* offset just past ':' */
	size_t host_off, host_len;
	size_t port_off, port_len;
	unsigned long port;      /* 0 when absent */
	size_t params_off, params_len; /* ";..." up to '?' or the end */
	size_t hdrs_off;         /* '?' or len */
};

/* Bytes that never appear unescaped in a URI: controls, white space,
 * non-ASCII, '<', '>', '"'. */
static const unsigned char not_in_uri[256] = {
	[0 ... 32] = 1, ['"'] = 1, ['<'] = 1, ['>'] = 1, [127 ... 255] = 1,
};

/* Returns 0 (sip/sips URI parsed), 1 (another scheme: left alone) or -1. */
static int uri_parse(const char *s, size_t len, struct uri *u)
{
	memset(u, 0, sizeof *u);
	u->s = s;
	u->len = len;
	for (size_t i = 0; i < len; i++)
		if (not_in_uri[(unsigned char)s[i]])
			return -1; /* not a URI (RFC 3261 section 25.1): escaped or nothing */
	if (len >= 4 && ipre(s, "sip:", 4)) {
		u->scheme_end = 4;
	} else if (len >= 5 && ipre(s, "sips:", 5)) {
		u->scheme_end = 5;
		u->sips = 1;
	} else {
		return 1;
	}
	size_t p = u->scheme_end;
	/* userinfo ends at the last '@' before params/headers of the host part;
	 * a user may contain ';' (telephone-subscriber) but not '@' */
	size_t at = 0;
	const char *a = memchr(s + p, '@', len - p);
	if (a) {
		const char *q = memchr(s + p, '?', (size_t)(a - s) - p);
		if (!q)
			at = (size_t)(a - s) + 1;
	}
	if (at) {
		u->has_user = 1;
		u->user_len = at - 1 - p;
		p = at;
	}
	u->host_off = p;
	if (p < len && s[p] == '[') {
		while (p < len && s[p] != ']')
			p++;
		if (p == len)
			return -1;
		p++;
	} else {
		while (p < len && s[p] != ':' && s[p] != ';' && s[p] != '?') {
			char c = s[p];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			      c == '-' || c == '_'))
				return -1;
			p++;
		}
	}
	u->host_len = p - u->host_off;
	if (!u->host_len)
		return -1;
	if (p < len && s[p] == ':') {
		p++;
		u->port_off = p;
		while (p < len && s[p] >= '0' && s[p] <= '9') {
			u->port = u->port * 10 + (unsigned long)(s[p] - '0');
			if (u->port > 65535)
				return -1;
			p++;
		}
		u->port_len = p - u->port_off;
		if (!u->port_len || !u->port)
			return -1;
	}
	if (p < len && s[p] != ';' && s[p] != '?')
		return -1;
	u->params_off = p;
	while (p < len && s[p] != '?')
		p++;
	u->params_len = p - u->params_off;
	u->hdrs_off = p;
	return 0;
}

/* Finds uri-param NAME: returns 1 with the value span (vlen 0 when it has
 * none) and the whole ";name[=value]" span, else 0. */
static int param_find(const char *ps, size_t plen, const char *name, size_t *voff, size_t *vlen, size_t *off,
		      size_t *len)
{
	size_t nlen = strlen(name);
	size_t i = 0;
	while (i < plen) {
		if (ps[i] != ';') {
			i++;
			continue;
		}
		size_t st = i++;
		size_t ns = i;
		while (i < plen && ps[i] != ';' && ps[i] != '=')
			i++;
		size_t ne = i, vs = i, ve = i;
		if (i < plen && ps[i] == '=') {
			vs = ++i;
			while (i < plen && ps[i] != ';')
				i++;
			ve = i;
		}
		if (ieqn(ps + ns, ne - ns, name, nlen)) {
			*voff = vs;
			*vlen = ve - vs;
			*off = st;
			*len = i - st;
			return 1;
		}
	}
	return 0;
}

static int uri_param(const struct uri *u, const char *name, const char **v, size_t *vlen)
{
	size_t vo, vl, o, l;
	if (!param_find(u->s + u->params_off, u->params_len, name, &vo, &vl, &o, &l))
		return 0;
	*v = u->s + u->params_off + vo;
	*vlen = vl;
	return 1;
}

static unsigned long uri_port_or_default(const struct uri *u)
{
	if (u->port)
		return u->port;
	const char *t;
	size_t tl;
	if (u->sips || (uri_param(u, "transport", &t, &tl) && ieqn(t, tl, "tls", 3)))
		return 5061;
	return 5060;
}

static int uri_names(const struct uri *u, const char *host, unsigned port)
{
	return ieq(u->s + u->host_off, u->host_len, host) && uri_port_or_default(u) == port;
}

/* Emits u with host:port replaced and the transport parameter's value
 * "from" replaced by "to" (added as to when add_if_none and there is none
 * on a sip: URI). */
static void emit_moved(struct topo_out *o, const struct uri *u, const char *host, unsigned long port, const char *from,
		       const char *to, int add_if_none)
{
	const char *s = u->s;
	out_put(o, s, u->host_off);
	out_str(o, host);
	if (port) {
		out_put(o, ":", 1);
		out_uint(o, port);
	}
	const char *ps = s + u->params_off;
	size_t plen = u->params_len;
	size_t vo, vl, po, pl;
	if (param_find(ps, plen, "transport", &vo, &vl, &po, &pl)) {
		if (ieq(ps + vo, vl, from)) {
			out_put(o, ps, vo);
			out_str(o, to);
			out_put(o, ps + vo + vl, plen - vo - vl);
		} else {
			out_put(o, ps, plen);
		}
	} else {
		if (add_if_none && !u->sips) {
			out_str(o, ";transport=");
			out_str(o, to);
		}
		out_put(o, ps, plen);
	}
	out_put(o, s + u->hdrs_off, u->len - u->hdrs_off);
}

void topo_key_init(struct topo_key *k, const unsigned char raw[TOPO_KEY_LEN])
{
	hmac_sha256_set_key(&k->ctx, TOPO_KEY_LEN, raw);
}

static void flow_mac(const struct topo_key *key, uint64_t id, const char *orig, size_t olen, unsigned char *mac)
{
	struct hmac_sha256_ctx ctx = key->ctx; /* keyed states, computed once */
	unsigned char idb[8];
	for (int i = 0; i < 8; i++)
		idb[i] = (unsigned char)(id >> (56 - 8 * i));
	hmac_sha256_update(&ctx, sizeof idb, idb);
	hmac_sha256_update(&ctx, olen, (const uint8_t *)orig);
	hmac_sha256_digest(&ctx, MAC_LEN, mac);
}

/* A token: the id (8 bytes, big endian) and the MAC of id | data. */
static void token_make(const struct topo_key *key, uint64_t id, const char *data, size_t len, unsigned char *raw)
{
	for (int i = 0; i < 8; i++)
		raw[i] = (unsigned char)(id >> (56 - 8 * i));
	flow_mac(key, id, data, len, raw + 8);
}

/* The id of token raw (TOKEN_RAW bytes) when its MAC of id | data holds;
 * else 0 (never an id). */
static uint64_t token_check(const struct topo_key *key, const unsigned char *raw, const char *data, size_t len)
{
	uint64_t id = 0;
	unsigned char mac[MAC_LEN], diff = 0;
	for (int i = 0; i < 8; i++)
		id = (id << 8) | raw[i];
	flow_mac(key, id, data, len, mac);
	for (int i = 0; i < MAC_LEN; i++)
		diff |= (unsigned char)(mac[i] ^ raw[8 + i]);
	return diff ? 0 : id;
}

/*
 * Decodes and checks the flow parameters of u. Returns 1 with *id and the
 * original URI in orig (*olen), 0 when u has no sc-flow, -1 when forged.
 */
static int flow_decode(const struct topo_key *key, const struct uri *u, uint64_t *id, char *orig, size_t *olen)
{
	const char *t, *ov;
	size_t tl, ovl;
	if (!uri_param(u, "sc-flow", &t, &tl))
		return 0;
	if (!uri_param(u, "sc-o", &ov, &ovl))
		return -1;
	unsigned char raw[TOKEN_RAW + 2];
	if (b64_decode(t, tl, raw, sizeof raw) != TOKEN_RAW)
		return -1;
	long n = b64_decode(ov, ovl, (unsigned char *)orig, ORIG_MAX);
	if (n <= 0)
		return -1;
	uint64_t v = token_check(key, raw, orig, (size_t)n);
	if (!v)
		return -1;
	*id = v;
	*olen = (size_t)n;
	return 1;
}

/* Emits the flow parameters for flow id and original URI orig. */
static void emit_flow_params(struct topo_out *o, const struct topo_key *key, const struct topo_conn *tc,
			     const char *orig, size_t olen)
{
	struct topo_wrap_cache *wc = tc->cache ? *tc->cache : NULL;
	if (wc && wc->olen == olen && !memcmp(wc->d, orig, olen)) {
		out_put(o, wc->d + olen, wc->plen);
		return;
	}
	size_t at = o->len;
	unsigned char raw[TOKEN_RAW];
	token_make(key, tc->flow_id, orig, olen, raw);
	out_str(o, ";sc-flow=");
	out_b64(o, raw, sizeof raw);
	out_str(o, ";sc-o=");
	out_b64(o, (const unsigned char *)orig, olen);
	if (tc->cache) {
		size_t plen = o->len - at;
		free(wc);
		if (!(wc = *tc->cache = malloc(sizeof *wc + olen + plen)))
			abort();
		wc->olen = olen;
		wc->plen = plen;
		memcpy(wc->d, orig, olen);
		memcpy(wc->d + olen, o->d + at, plen);
	}
}

/* Emits the loopback flow URI of connection tc for the original URI orig:
 * sip:[USER@]FLOWHOST:PORT;transport=tcp[PARAMS];sc-flow=..;sc-o=..
 * (user may be NULL; params e.g. ";lr"). With cached, the connection's
 * cache of its last wrapped Contact is used and kept up to date. */
static void emit_flow_uri(struct topo_out *o, const struct topo_cfg *cfg, const struct topo_conn *tc,
			  const char *user, size_t user_len, const char *params, const char *orig, size_t olen, int cached)
{
	struct topo_conn nc = *tc;
	if (!cached)
		nc.cache = NULL; /* leave the cache to the Contact */
	out_str(o, "sip:");
	if (user) {
		out_put(o, user, user_len);
		out_put(o, "@", 1);
	}
	out_str(o, cfg->flow_host);
	out_put(o, ":", 1);
	out_uint(o, tc->flow_port);
	out_str(o, ";transport=tcp");
	out_str(o, params);
	emit_flow_params(o, cfg->key, &nc, orig, olen);
}

/* Emits u with its flow parameters (sc-flow, sc-o) left out. */
static void emit_without_flow(struct topo_out *o, const struct uri *u, const char *host, unsigned long port,
			      const char *transport)
{
	const char *s = u->s;
	out_put(o, s, u->host_off);
	out_str(o, host);
	if (port) {
		out_put(o, ":", 1);
		out_uint(o, port);
	}
	const char *ps = s + u->params_off;
	size_t plen = u->params_len, i = 0;
	while (i < plen) {
		size_t st = i++;
		while (i < plen && ps[i] != ';')
			i++;
		const char *p = ps + st + 1;
		size_t l = i - st - 1;
		if ((l >= 8 && ipre(p, "sc-flow=", 8)) || (l >= 5 && ipre(p, "sc-o=", 5)))
			continue;
		if (l >= 10 && ipre(p, "transport=", 10)) {
			out_str(o, ";transport=");
			out_str(o, transport);
			continue;
		}
		out_put(o, ps + st, i - st);
	}
	/* the flow parameters go last, so this keeps them */
	size_t vo, vl, po, pl;
	(void)vo;
	(void)vl;
	if (param_find(ps, plen, "sc-flow", &vo, &vl, &po, &pl))
		out_put(o, ps + po, pl);
	if (param_find(ps, plen, "sc-o", &vo, &vl, &po, &pl))
		out_put(o, ps + po, pl);
	out_put(o, s + u->hdrs_off, u->len - u->hdrs_off);
}

enum ukind { U_ROUTE, U_RR, U_CONTACT, U_RURI }; /* U_RR: Record-Route, Path */

struct ctx {
	const struct topo_cfg *cfg;
	const struct topo_conn *tc;
	enum topo_dir dir;
	struct topo_info *info;
	int own; /* the last URI translated was this connection's own flow, restored */
	int hdr_expires_applies; /* one of our bindings has no expires parameter */
};

/*
 * Translates one URI into o. Returns 1 (written), 0 (unchanged: nothing
 * written) or -1 (malformed).
 */
static int uri_translate(struct ctx *x, enum ukind kind, const char *s, size_t len, struct topo_out *o)
{
	const struct topo_cfg *cfg = x->cfg;
	struct uri u;
	int r = uri_parse(s, len, &u);
	if (r == 1)
		return 0;
	if (r < 0) {
		x->info->detail = "unparsable URI";
		return -1;
	}
	uint64_t id = 0;
	char orig[ORIG_MAX];
	size_t olen = 0;
	if (x->dir == TOPO_TO_BACKEND) {
		if (kind == U_CONTACT && x->tc->flow_id) {
			if (len > ORIG_MAX) {
				x->info->detail = "Contact URI too long";
				return -1;
			}
			emit_flow_uri(o, cfg, x->tc, u.has_user ? s + u.scheme_end : NULL, u.user_len, "", s, len, 1);
			return 1;
		}
		if (!uri_names(&u, cfg->adv_host, cfg->adv_port)) {
			if (kind != U_RR || !x->tc->flow_id)
				return 0;
			/* a hop of the TLS side (a peer server's proxy) that the
			 * legacy server cannot reach: it becomes a hop through this
			 * connection's flow, loose-routing kept */
			if (len > ORIG_MAX) {
				x->info->detail = "Record-Route URI too long";
				return -1;
			}
			const char *lr;
			size_t lrl;
			emit_flow_uri(o, cfg, x->tc, NULL, 0, uri_param(&u, "lr", &lr, &lrl) ? ";lr" : "", s, len, 0);
			return 1;
		}
		int f = flow_decode(cfg->key, &u, &id, orig, &olen);
		if (f < 0) {
			x->info->detail = "forged flow token";
			return -1;
		}
		if (f > 0) {
			emit_without_flow(o, &u, cfg->flow_host, (unsigned long)(id >> 48), "tcp");
			return 1;
		}
		emit_moved(o, &u, cfg->back_host, cfg->back_port, "tls", "tcp", 0);
		return 1;
	}
	/* to the TLS side */
	if (ieq(s + u.host_off, u.host_len, cfg->flow_host)) {
		const struct topo_wrap_cache *wc = x->tc->cache ? *x->tc->cache : NULL;
		const char *t, *ov;
		size_t tl, ovl;
		if (wc && uri_param(&u, "sc-flow", &t, &tl) && uri_param(&u, "sc-o", &ov, &ovl) && tl == 24 &&
		    ovl == wc->plen - 39 && !memcmp(t, wc->d + wc->olen + 9, 24) &&
		    !memcmp(ov, wc->d + wc->olen + 39, ovl)) {
			/* the flow parameters this connection's last Contact got */
			x->own = 1;
			out_put(o, wc->d, wc->olen);
			return 1;
		}
		int f = flow_decode(cfg->key, &u, &id, orig, &olen);
		if (f > 0) {
			if (id == x->tc->flow_id) {
				x->own = 1;
				out_put(o, orig, olen);
				return 1;
			}
			emit_without_flow(o, &u, cfg->adv_host, cfg->adv_port, "tls");
			return 1;
		}
	}
	if (!uri_names(&u, cfg->back_host, cfg->back_port))
		return 0;
	emit_moved(o, &u, cfg->adv_host, cfg->adv_port, "tcp", "tls", 1);
	return 1;
}

/* ---- header values ------------------------------------------------------- */

static unsigned long parse_ulong(const char *s, size_t n)
{
	unsigned long v = 0;
	size_t i = 0;
	while (i < n && is_wsp(s[i]))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		if (v < 100000000UL)
			v = v * 10 + (unsigned long)(s[i] - '0');
	return v;
}

/*
 * Translates a list of name-addr / addr-spec values (Route, Record-Route,
 * Path, Service-Route, Contact) from v[0..n) into o. Returns 1 when
 * something changed, 0 when not, -1 when malformed.
 */
static int addr_list(struct ctx *x, enum ukind kind, const char *v, size_t n, struct topo_out *o)
{
	int changed = 0;
	size_t i = 0;
	while (i < n) {
		size_t vstart = i;
		while (i < n && is_wsp(v[i]))
			i++;
		if (i == n) {
			out_put(o, v + vstart, n - vstart);
			break;
		}
		size_t us, ue, rest;
		int angle = 0;
		if (kind == U_CONTACT && v[i] == '*') {
			us = ue = i;
			rest = i;
		} else {
			int inq;
			size_t j = scan_unquoted(v, i, n, "<,;", &inq);
			if (inq) {
				x->info->detail = "unterminated quoted string";
				return -1;
			}
			size_t lt = j < n && v[j] == '<' ? j : (size_t)-1;
			if (lt != (size_t)-1) {
				angle = 1;
				us = lt + 1;
				ue = us;
				while (ue < n && v[ue] != '>')
					ue++;
				if (ue == n) {
					x->info->detail = "unterminated <URI>";
					return -1;
				}
				rest = ue; /* '>' stays with the rest */
			} else {
				us = i;
				ue = i;
				while (ue < n && v[ue] != ',' && v[ue] != ';' && !is_wsp(v[ue]))
					ue++;
				rest = ue;
			}
			if (ue == us) {
				x->info->detail = "empty URI";
				return -1;
			}
		}
		/* the header parameters: up to the next comma outside quotes */
		int inq;
		size_t pe = scan_unquoted(v, rest, n, ",", &inq);
		int own = 0;
		if (ue > us) {
			out_put(o, v + vstart, us - vstart);
			size_t mark = o->len;
			if (!angle)
				out_put(o, "<", 1);
			x->own = 0;
			int r = uri_translate(x, kind, v + us, ue - us, o);
			if (r < 0)
				return -1;
			if (r == 0) {
				o->len = mark;
				out_put(o, v + us, ue - us);
			} else {
				changed = 1;
				if (!angle)
					out_put(o, ">", 1);
				own = x->own;
			}
		} else {
			out_put(o, v + vstart, us - vstart);
		}
		if (x->dir == TOPO_TO_TLS && kind == U_CONTACT && x->info->register_ok) {
			const char *ps = v + rest;
			size_t pl = pe - rest, vo, vl, po, pln;
			/* header params start after '>' (name-addr) or the URI */
			if (pl && ps[0] == '>') {
				ps++;
				pl--;
			}
			if (own || x->tc->flow_id == 0) {
				if (param_find(ps, pl, "expires", &vo, &vl, &po, &pln)) {
					unsigned long e = parse_ulong(ps + vo, vl);
					if (e > x->info->expires)
						x->info->expires = e;
				} else {
					x->hdr_expires_applies = 1; /* the Expires header says */
				}
			}
		}
		out_put(o, v + rest, pe - rest);
		if (pe < n) {
			out_put(o, ",", 1);
			pe++;
		}
		i = pe;
	}
	return changed;
}

/* One Via value's parts. */
struct via {
	size_t proto_off, tr_off, tr_len;   /* "SIP/2.0/" and the transport */
	size_t host_off, host_len, port_off, port_len;
	unsigned long port;
	size_t params_off, end;             /* ";..." up to the comma or the end */
};

static int via_parse(const char *v, size_t i, size_t n, struct via *p)
{
	while (i < n && is_wsp(v[i]))
		i++;
	p->proto_off = i;
	/* "SIP / 2.0 / TRANSPORT" with optional LWS around the slashes */
	int slashes = 0;
	while (i < n && slashes < 2) {
		if (v[i] == '/')
			slashes++;
		i++;
	}
	if (slashes < 2)
		return -1;
	while (i < n && is_wsp(v[i]))
		i++;
	p->tr_off = i;
	while (i < n && !is_wsp(v[i]) && v[i] != ';' && v[i] != ',')
		i++;
	p->tr_len = i - p->tr_off;
	while (i < n && is_wsp(v[i]))
		i++;
	p->host_off = i;
	if (i < n && v[i] == '[') {
		while (i < n && v[i] != ']')
			i++;
		if (i == n)
			return -1;
		i++;
	} else {
		while (i < n && v[i] != ':' && v[i] != ';' && v[i] != ',' && !is_wsp(v[i]))
			i++;
	}
	p->host_len = i - p->host_off;
	p->port = 0;
	p->port_off = p->port_len = 0;
	if (i < n && v[i] == ':') {
		p->port_off = ++i;
		while (i < n && v[i] >= '0' && v[i] <= '9') {
			p->port = p->port * 10 + (unsigned long)(v[i] - '0');
			if (p->port > 65535)
				return -1;
			i++;
		}
		p->port_len = i - p->port_off;
	}
	if (!p->tr_len || !p->host_len)
		return -1;
	while (i < n && is_wsp(v[i]))
		i++;
	p->params_off = i;
	int inq;
	p->end = scan_unquoted(v, i, n, ",", &inq);
	return 0;
}

/* Emits the params of a Via value, dropping sc-tls and giving received
 * and rport the values given (when not NULL). */
static void via_params(struct topo_out *o, const char *ps, size_t plen, const char *received, const char *rport)
{
	size_t i = 0;
	/* keep trailing whitespace before a comma as it was */
	size_t end = plen;
	while (end && is_wsp(ps[end - 1]))
		end--;
	while (i < end) {
		size_t st = i++;
		while (i < end && ps[i] != ';')
			i++;
		const char *p = ps + st + 1;
		size_t l = i - st - 1;
		if (ps[st] != ';') {
			out_put(o, ps + st, i - st);
			continue;
		}
		if (ieqn(p, l, "sc-tls", 6))
			continue;
		if (received && l >= 9 && ipre(p, "received=", 9)) {
			out_str(o, ";received=");
			out_str(o, received);
			continue;
		}
		if (rport && ((l >= 6 && ipre(p, "rport=", 6)) || ieqn(p, l, "rport", 5))) {
			out_str(o, ";rport=");
			out_str(o, rport);
			continue;
		}
		out_put(o, ps + st, i - st);
	}
	out_put(o, ps + end, plen - end);
}

/* A sealed Via parameter value of ours: 1 with its decoded bytes (MAC first). */
#define SEALED_MAX (MAC_LEN + 128 + 3)
static int sealed_ok(const struct topo_cfg *cfg, const char *val, size_t vl, unsigned char *buf, long *rl)
{
	unsigned char mac[MAC_LEN], diff = 0;
	long n = b64_decode(val, vl, buf, SEALED_MAX);
	if (n < MAC_LEN)
		return 0;
	flow_mac(cfg->key, 0, (const char *)buf + MAC_LEN, (size_t)n - MAC_LEN, mac);
	for (int q = 0; q < MAC_LEN; q++)
		diff |= (unsigned char)(mac[q] ^ buf[q]);
	*rl = n;
	return !diff;
}

static int via_list(struct ctx *x, int top_line, int is_request, const char *v, size_t n, struct topo_out *o)
{
	unsigned char sraw[SEALED_MAX];
	long srl = 0;
	const struct topo_cfg *cfg = x->cfg;
	int changed = 0;
	size_t i = 0;
	int first = 1;
	while (i < n) {
		struct via p;
		if (via_parse(v, i, n, &p) < 0) {
			x->info->detail = "unparsable Via";
			return -1;
		}
		const char *tr = v + p.tr_off;
		int tls = ieqn(tr, p.tr_len, "TLS", 3);
		int tcp = ieqn(tr, p.tr_len, "TCP", 3);
		const char *ps = v + p.params_off;
		size_t plen = p.end - p.params_off;
		size_t vo, vl, po, pl;
		unsigned long port = p.port ? p.port : (tls ? 5061 : 5060);
		int is_top = top_line && first;
		if (x->dir == TOPO_TO_BACKEND && is_top && is_request && tls) {
			out_put(o, v + i, p.tr_off - i);
			out_str(o, "TCP");
			out_put(o, v + p.tr_off + p.tr_len, p.end - p.tr_off - p.tr_len);
			/* before trailing whitespace */
			size_t k = o->len;
			while (k > 0 && is_wsp(o->d[k - 1]))
				k--;
			char tail[64];
			size_t tl = o->len - k;
			if (tl > sizeof tail)
				tl = 0;
			memcpy(tail, o->d + k, tl);
			o->len -= tl;
			if (!param_find(ps, plen, "rport", &vo, &vl, &po, &pl))
				out_str(o, ";rport");
			out_str(o, ";sc-tls");
			out_put(o, tail, tl);
			changed = 1;
		} else if (x->dir == TOPO_TO_TLS && is_top && !is_request && tcp &&
			   param_find(ps, plen, "sc-tls", &vo, &vl, &po, &pl)) {
			out_put(o, v + i, p.tr_off - i);
			out_str(o, "TLS");
			out_put(o, v + p.tr_off + p.tr_len, p.params_off - p.tr_off - p.tr_len);
			char rp[16];
			rp[fmt_uint(rp, x->tc->peer_port)] = '\0';
			via_params(o, ps, plen, x->tc->peer_host, x->tc->peer_port ? rp : NULL);
			changed = 1;
		} else if (x->dir == TOPO_TO_BACKEND && tls && ieq(v + p.host_off, p.host_len, cfg->adv_host) &&
			   port == cfg->adv_port) {
			out_put(o, v + i, p.tr_off - i);
			out_str(o, "TCP ");
			out_str(o, cfg->back_host);
			out_put(o, ":", 1);
			out_uint(o, cfg->back_port);
			out_put(o, ps, plen);
			changed = 1;
		} else if (x->dir == TOPO_TO_TLS && tcp &&
			   ((ieq(v + p.host_off, p.host_len, cfg->back_host) && port == cfg->back_port) ||
			    (ieq(v + p.host_off, p.host_len, cfg->flow_host) &&
			     param_find(ps, plen, "branch", &vo, &vl, &po, &pl) && vl > 10 &&
			     !memcmp(ps + vo, "z9hG4bKsc-", 10)))) {
			/* the legacy server's Via, or the sidecar's own (edge proxy) */
			out_put(o, v + i, p.tr_off - i);
			out_str(o, "TLS ");
			out_str(o, cfg->adv_host);
			out_put(o, ":", 1);
			out_uint(o, cfg->adv_port);
			out_put(o, ps, plen);
			changed = 1;
		} else if (x->dir == TOPO_TO_TLS && tcp && param_find(ps, plen, "sc-tls", &vo, &vl, &po, &pl)) {
			/* a TLS peer's Via further down, as the legacy server saw it:
			 * TLS again, the loopback received/rport kept sealed for the
			 * way back (responses forwarded statelessly need them) */
			char hid[128];
			size_t hl = 0, k = 0;
			out_put(o, v + i, p.tr_off - i);
			out_str(o, "TLS");
			out_put(o, v + p.tr_off + p.tr_len, p.params_off - p.tr_off - p.tr_len);
			while (k < plen) {
				size_t st = k++;
				while (k < plen && ps[k] != ';')
					k++;
				const char *q = ps + st + 1;
				size_t l = k - st - 1;
				if (ps[st] == ';' && ieqn(q, l, "sc-tls", 6))
					continue;
				if (ps[st] == ';' && ((l >= 9 && ipre(q, "received=", 9)) || ieqn(q, l, "rport", 5) ||
						      (l >= 6 && ipre(q, "rport=", 6))) && hl + (k - st) <= sizeof hid) {
					memcpy(hid + hl, ps + st, k - st);
					hl += k - st;
					continue;
				}
				out_put(o, ps + st, k - st);
			}
			unsigned char raw[MAC_LEN + sizeof hid];
			flow_mac(cfg->key, 0, hid, hl, raw);
			memcpy(raw + MAC_LEN, hid, hl);
			out_str(o, ";sc-h=");
			out_b64(o, raw, MAC_LEN + hl);
			changed = 1;
		} else if (x->dir == TOPO_TO_BACKEND && !is_request && tls &&
			   param_find(ps, plen, "sc-h", &vo, &vl, &po, &pl) && sealed_ok(cfg, ps + vo, vl, sraw, &srl)) {
			/* one we sealed (another sidecar's stays as it is) */
			const unsigned char *raw = sraw;
			long rl = srl;
			out_put(o, v + i, p.tr_off - i);
			out_str(o, "TCP");
			out_put(o, v + p.tr_off + p.tr_len, p.params_off - p.tr_off - p.tr_len);
			out_put(o, ps, po);
			out_put(o, ps + po + pl, plen - po - pl);
			out_put(o, raw + MAC_LEN, (size_t)rl - MAC_LEN);
			out_str(o, ";sc-tls");
			changed = 1;
		} else {
			out_put(o, v + i, p.end - i);
		}
		first = 0;
		i = p.end;
		if (i < n) {
			out_put(o, ",", 1);
			i++;
		}
	}
	return changed;
}

/* ---- the message --------------------------------------------------------- */

enum hkind { H_OTHER, H_ROUTE, H_RR, H_CONTACT, H_VIA, H_CSEQ, H_EXPIRES };

static enum hkind classify(const char *name, size_t n)
{
	/* most header lines are none of these: decide on the first letter */
	switch (name[0] | 0x20) {
	case 'c': case 'e': case 'm': case 'p': case 'r': case 's': case 'v':
		break;
	default:
		return H_OTHER;
	}
	switch (n) {
	case 1:
		if (name[0] == 'm' || name[0] == 'M')
			return H_CONTACT;
		if (name[0] == 'v' || name[0] == 'V')
			return H_VIA;
		return H_OTHER;
	case 3:
		return ieqn(name, n, "via", 3) ? H_VIA : H_OTHER;
	case 4:
		if (ieqn(name, n, "path", 4))
			return H_RR;
		return ieqn(name, n, "cseq", 4) ? H_CSEQ : H_OTHER;
	case 5:
		return ieqn(name, n, "route", 5) ? H_ROUTE : H_OTHER;
	case 7:
		if (ieqn(name, n, "contact", 7))
			return H_CONTACT;
		return ieqn(name, n, "expires", 7) ? H_EXPIRES : H_OTHER;
	case 12:
		return ieqn(name, n, "record-route", 12) ? H_RR : H_OTHER;
	case 13:
		return ieqn(name, n, "service-route", 13) ? H_ROUTE : H_OTHER;
	default:
		return H_OTHER;
	}
}

static const char *find_crlf(const char *s, size_t from, size_t to)
{
	const char *p = memchr(s + from, '\n', to - from);
	return p; /* the framer guarantees CRLF line ends */
}

/* The first header line named name (long form, or the compact one) starting
 * at or after offset from (0: the first header line): its offset, or 0, with
 * its value in [*vs, *ve). */
static size_t find_header(const char *msg, const struct sf_msg *m, size_t from, const char *name, char compact,
			  size_t *vs, size_t *ve)
{
	size_t nl = strlen(name);
	size_t pos = from ? from : m->start_line.off + m->start_line.len + 2;
	while (pos < m->hdr_end) {
		const char *e = memchr(msg + pos, '\n', m->hdr_end + 2 - pos);
		if (!e)
			break;
		size_t le = (size_t)(e - msg) + 1;
		const char *c = memchr(msg + pos, ':', le - pos);
		if (c && msg[pos] != ' ' && msg[pos] != '\t') {
			size_t n = (size_t)(c - msg) - pos;
			while (n && is_wsp(msg[pos + n - 1]))
				n--;
			if (ieqn(msg + pos, n, name, nl) || (compact && n == 1 && (msg[pos] | 0x20) == compact)) {
				*vs = (size_t)(c - msg) + 1;
				*ve = le - 2;
				return pos;
			}
		}
		pos = le;
	}
	return 0;
}

/* The Request-URI of the start line sl[0..len): 0 with its span, or -1. */
static int ruri_span(const char *sl, size_t len, size_t *off, size_t *n)
{
	const char *sp1 = memchr(sl, ' ', len);
	size_t k = len;
	while (k > 0 && sl[k - 1] != ' ')
		k--;
	if (!sp1 || !k || (size_t)(sp1 - sl) + 1 >= k - 1)
		return -1;
	*off = (size_t)(sp1 - sl) + 1;
	*n = k - 1 - *off;
	return 0;
}

/* The request says "Supported: path" (RFC 3327). */
static int supports_path(const char *msg, const struct sf_msg *m)
{
	size_t vs, ve, pos = 0;
	while ((pos = find_header(msg, m, pos, "supported", 'k', &vs, &ve)) != 0) {
		for (size_t i = vs; i + 4 <= ve; i++)
			if (ipre(msg + i, "path", 4) && (i == vs || msg[i - 1] == ',' || is_wsp(msg[i - 1])) &&
			    (i + 4 == ve || msg[i + 4] == ',' || is_wsp(msg[i + 4])))
				return 1;
		pos = ve + 2; /* the next line */
	}
	return 0;
}

int topo_rewrite(const struct topo_cfg *cfg, const struct topo_conn *tc, enum topo_dir dir, const char *msg,
		 const struct sf_msg *m, int apply_strip, const char *idhdr, size_t idhdr_len, struct topo_out *out,
		 struct topo_info *info)
{
	struct ctx x = { cfg, tc, dir, info, 0, 0 };
	struct topo_out unf = { 0 }; /* an unfolded header value */
	memset(info, 0, sizeof *info);
	out->len = 0;
	if (out->cap < m->len + 1024) {
		/* room for the message and some growth: out_put rarely reallocates */
		size_t cap = out->cap ? out->cap : 4096;
		while (cap < m->len + 1024)
			cap *= 2;
		char *d = realloc(out->d, cap);
		if (!d)
			abort();
		out->d = d;
		out->cap = cap;
	}
	int changed = 0, rc = -1;
	size_t hdr_end = m->hdr_end;
	const char *nl = find_crlf(msg, 0, hdr_end + 2);
	if (!nl) {
		info->detail = "no start line";
		return -1;
	}
	size_t pos = (size_t)(nl - msg) + 1; /* first header line */
	size_t sl_len = pos - 2;
	if (m->is_request) {
		size_t us, un;
		if (ruri_span(msg, sl_len, &us, &un) < 0) {
			info->detail = "bad request line";
			return -1;
		}
		size_t ue = us + un;
		out_put(out, msg, us);
		int r = uri_translate(&x, U_RURI, msg + us, ue - us, out);
		if (r < 0)
			goto done;
		if (r == 0)
			out_put(out, msg + us, ue - us);
		changed |= r;
		out_put(out, msg + ue, pos - ue);
		if (dir == TOPO_TO_BACKEND && tc->flow_id && sl_len > 9 && !memcmp(msg, "REGISTER ", 9) &&
		    supports_path(msg, m)) {
			/* RFC 3327: the flow goes first in the registration's path,
			 * for a registrar that keeps it (the Contact is a flow anyway) */
			char adv[TOPO_HOST_MAX + 48];
			size_t an = (size_t)snprintf(adv, sizeof adv, "sip:%s:%u;transport=tls;lr", cfg->adv_host,
						     cfg->adv_port);
			out_str(out, "Path: <");
			emit_flow_uri(out, cfg, tc, NULL, 0, ";lr;ob", adv, an < sizeof adv ? an : sizeof adv - 1, 0);
			out_str(out, ">\r\n");
			changed = 1;
		}
	} else {
		/* "SIP/2.0 2xx": a success, perhaps to a REGISTER (see CSeq) */
		out_put(out, msg, pos);
		if (dir == TOPO_TO_TLS && sl_len >= 9 && msg[8] == '2')
			info->register_ok = -1; /* decided by CSeq below */
	}
	/* CSeq (found by the framer) says whether this answers a REGISTER */
	if (info->register_ok) {
		const char *q = msg + m->cseq.off, *end = q + m->cseq.len;
		const char *c = m->cseq.len ? memchr(q, ':', m->cseq.len) : NULL;
		info->register_ok = 0;
		if (c) {
			q = c + 1;
			while (q < end && (is_wsp(*q) || (*q >= '0' && *q <= '9')))
				q++;
			info->register_ok = end - q >= 8 && ipre(q, "REGISTER", 8);
		}
	}
	unsigned long expires_hdr = 0;
	int have_expires_hdr = 0;
	unsigned k = 0;
	int first_via = 1;
	while (pos < hdr_end) {
		/* one header: its line and any folded continuation lines */
		size_t he = pos;
		do {
			const char *e = find_crlf(msg, he, hdr_end + 2);
			he = (size_t)(e - msg) + 1;
		} while (he < hdr_end && (msg[he] == ' ' || msg[he] == '\t'));
		if (apply_strip && k < m->nstrip && m->strip[k].off == pos) {
			pos = m->strip[k].off + m->strip[k].len;
			k++;
			continue;
		}
		const char *c = memchr(msg + pos, ':', he - pos);
		enum hkind hk = H_OTHER;
		size_t nlen = 0;
		if (c) {
			nlen = (size_t)(c - msg) - pos;
			while (nlen && is_wsp(msg[pos + nlen - 1]))
				nlen--;
			hk = classify(msg + pos, nlen);
		}
		if (hk == H_OTHER || hk == H_CSEQ) {
			out_put(out, msg + pos, he - pos);
			pos = he;
			continue;
		}
		size_t vs = (size_t)(c - msg) + 1, ve = he - 2;
		if (hk == H_EXPIRES) {
			expires_hdr = parse_ulong(msg + vs, ve - vs);
			have_expires_hdr = 1;
			out_put(out, msg + pos, he - pos);
			pos = he;
			continue;
		}
		/* the value, unfolded when folded */
		const char *v = msg + vs;
		size_t vn = ve - vs;
		if (memchr(v, '\n', vn)) {
			unf.len = 0;
			for (size_t q = 0; q < vn; q++)
				if (v[q] != '\r' && v[q] != '\n')
					out_put(&unf, v + q, 1);
			v = unf.d;
			vn = unf.len;
		}
		size_t mark = out->len;
		out_put(out, msg + pos, vs - pos);
		int r;
		if (hk == H_VIA) {
			r = via_list(&x, first_via, m->is_request, v, vn, out);
			first_via = 0;
		} else {
			r = addr_list(&x, hk == H_CONTACT ? U_CONTACT : hk == H_RR ? U_RR : U_ROUTE, v, vn, out);
		}
		if (r < 0)
			goto done;
		if (r == 0) {
			out->len = mark;
			out_put(out, msg + pos, he - pos);
		} else {
			out_put(out, "\r\n", 2);
			changed = 1;
		}
		pos = he;
	}
	if (info->register_ok && x.hdr_expires_applies && have_expires_hdr && expires_hdr > info->expires)
		info->expires = expires_hdr;
	if (idhdr)
		out_put(out, idhdr, idhdr_len);
	out_put(out, msg + hdr_end, m->len - hdr_end);
	rc = (changed || idhdr || (apply_strip && m->nstrip)) ? 1 : 0;
done:
	free(unf.d);
	return rc;
}

int topo_flow_of(const struct topo_key *key, const char *flow_host, const char *msg, const struct sf_msg *m,
		 uint64_t *flow_id)
{
	if (!m->is_request)
		return 0;
	char orig[ORIG_MAX];
	size_t olen;
	struct uri u;
	const char *sl = msg + m->start_line.off;
	size_t us, un, vs, ve;
	if (ruri_span(sl, m->start_line.len, &us, &un) == 0 && uri_parse(sl + us, un, &u) == 0 &&
	    ieq(u.s + u.host_off, u.host_len, flow_host)) {
		int r = flow_decode(key, &u, flow_id, orig, &olen);
		if (r)
			return r;
	}
	/* the top Route (a Path the registrar stored) */
	if (!find_header(msg, m, 0, "route", 0, &vs, &ve))
		return 0;
	const char *lt = memchr(msg + vs, '<', ve - vs);
	const char *gt = lt ? memchr(lt, '>', (size_t)(msg + ve - lt)) : NULL;
	if (lt && gt && uri_parse(lt + 1, (size_t)(gt - lt - 1), &u) == 0 && ieq(u.s + u.host_off, u.host_len, flow_host))
		return flow_decode(key, &u, flow_id, orig, &olen);
	return 0;
}

/* ---- requests the sidecar routes itself (RFC 5626 edge proxy) ------------ */

#define SC_BRANCH "z9hG4bKsc-"
/* what the Via branch's token signs besides the id: never a wrapped URI */
#define VIA_TOKEN_DATA "\0via"
#define VIA_TOKEN_LEN 4
#define SC_BRANCH_LEN 10

int topo_direct_request(const struct topo_cfg *cfg, const char *msg, const struct sf_msg *m, uint64_t *flow_id)
{
	size_t vs, ve;
	const char *sl = msg + m->start_line.off;
	size_t sl_len = m->start_line.len;
	/* most requests name no flow: decide on the start line first */
	if (!m->is_request || !memmem(sl, sl_len, "sc-flow=", 8) || find_header(msg, m, 0, "route", 0, &vs, &ve))
		return 0;
	struct uri u;
	char orig[ORIG_MAX];
	size_t olen, us, un;
	if (ruri_span(sl, sl_len, &us, &un) < 0 || uri_parse(sl + us, un, &u) != 0 ||
	    !uri_names(&u, cfg->adv_host, cfg->adv_port))
		return 0;
	return flow_decode(cfg->key, &u, flow_id, orig, &olen);
}

int topo_add_via(const struct topo_cfg *cfg, uint64_t from_id, const char *msg, size_t len, struct topo_out *out)
{
	/* the request's own top branch, for a deterministic branch of ours */
	struct sf_msg m;
	struct sipframe f;
	sf_init(&f, len, NULL);
	if (sf_parse(&f, msg, len, &m) != SF_MESSAGE || !m.nvia)
		return -1;
	const char *v = msg + m.via[0].off;
	size_t vn = m.via[0].len;
	const char *b = NULL;
	for (size_t i = 0; i + 7 <= vn; i++)
		if (ipre(v + i, "branch=", 7)) {
			b = v + i + 7;
			break;
		}
	size_t bl = 0;
	while (b && b + bl < v + vn && bl < 40 && b[bl] != ';' && b[bl] != ',' && !is_wsp(b[bl]))
		bl++;
	unsigned char raw[TOKEN_RAW];
	token_make(cfg->key, from_id, VIA_TOKEN_DATA, VIA_TOKEN_LEN, raw);
	out->len = 0;
	size_t sl_end = m.start_line.off + m.start_line.len + 2;
	out_put(out, msg, sl_end);
	out_str(out, "Via: SIP/2.0/TCP ");
	out_str(out, cfg->flow_host);
	out_put(out, ":", 1);
	out_uint(out, (unsigned long)(from_id >> 48));
	out_str(out, ";branch=" SC_BRANCH);
	out_b64(out, raw, sizeof raw);
	out_put(out, ".", 1);
	for (size_t i = 0; i < bl; i++) {
		char c = b[i];
		out_put(out, (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? &c : "x", 1);
	}
	out_str(out, "\r\n");
	out_put(out, msg + sl_end, len - sl_end);
	return 0;
}

int topo_direct_response(const struct topo_key *key, const char *msg, const struct sf_msg *m, uint64_t *flow_id,
			 size_t *cut_off, size_t *cut_len)
{
	if (m->is_request || !m->nvia)
		return 0;
	const char *v = msg + m->via[0].off;
	size_t vn = m->via[0].len;
	if (!memmem(v, vn, SC_BRANCH, SC_BRANCH_LEN))
		return 0; /* the common case: not ours */
	const char *c = memchr(v, ':', vn);
	if (!c)
		return 0;
	size_t vs = (size_t)(c - v) + 1;
	struct via p;
	if (via_parse(v, vs, vn, &p) < 0)
		return 0;
	const char *ps = v + p.params_off;
	size_t plen = p.end - p.params_off, vo, vl, po, pl;
	if (!param_find(ps, plen, "branch", &vo, &vl, &po, &pl) || vl < SC_BRANCH_LEN + 24 ||
	    memcmp(ps + vo, SC_BRANCH, SC_BRANCH_LEN))
		return 0;
	unsigned char raw[TOKEN_RAW + 2];
	if (b64_decode(ps + vo + SC_BRANCH_LEN, 24, raw, sizeof raw) != TOKEN_RAW)
		return -1;
	uint64_t id = token_check(key, raw, VIA_TOKEN_DATA, VIA_TOKEN_LEN);
	if (!id)
		return -1;
	*flow_id = id;
	/* what to cut: the whole line when it holds only ours, else our value
	 * and its comma */
	if (p.end >= vn) {
		*cut_off = m->via[0].off;
		*cut_len = m->via[0].len + 2;
	} else {
		*cut_off = m->via[0].off + vs;
		*cut_len = p.end + 1 - vs;
	}
	return 1;
}
