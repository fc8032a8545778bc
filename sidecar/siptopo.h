/*
 * siptopo: SIP topology at the TLS boundary. Translates, statelessly and
 * symmetrically, the addresses in one complete SIP message between what the
 * legacy server sees (its own plaintext loopback address, the sidecar's
 * loopback flow address) and what the TLS side sees (the listener's
 * advertised URI). Pure code: no libev, no sockets; the only library call
 * is nettle's HMAC-SHA-256 for flow tokens.
 *
 * URIs translated: the Request-URI, Route, Record-Route, Contact, Path and
 * Service-Route (compact "m:" too; several values per line; display names
 * with commas; IPv6 references), and the sent-by of Via.
 *
 *  to the backend (from a TLS peer):
 *   - a URI naming the advertised host:port names the backend instead,
 *     transport=tls becoming transport=tcp (the scheme is kept);
 *   - an advertised URI with a flow token names the flow address instead;
 *   - every Contact (not "*") is wrapped into a flow URI of this connection:
 *       sip:USER@FLOWHOST:FLOWPORT;transport=tcp;sc-flow=TOKEN;sc-o=ORIG
 *     TOKEN = base64url(flow id, HMAC(key, flow id | original URI)) and
 *     ORIG = base64url(original URI); requests the legacy server sends to
 *     that URI, over any connection to the flow address, reach this
 *     connection, whether or not it handles NAT;
 *   - the top Via's transport TLS becomes TCP (with ";sc-tls" and ";rport"
 *     added) so that the legacy server answers over the TCP connection the
 *     request came in on, statelessly forwarded 2xx retransmissions too.
 *  to the TLS side (from the legacy server):
 *   - the backend host:port becomes the advertised one, transport=tcp
 *     becoming transport=tls (added when a sip: URI has no transport);
 *   - a flow URI of this very connection is restored to the original (the
 *     client sees its own Contact in a REGISTER's 200 OK, its own Contact
 *     as the Request-URI of a request for it); one of another connection
 *     becomes advertised (sip:USER@ADV:PORT;transport=tls;sc-flow=...),
 *     so that other TLS peers reach it through the sidecar;
 *   - a top Via marked ";sc-tls" (a response to the TLS peer) gets TLS back,
 *     and "received"/"rport" the peer's real address.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_SIPTOPO_H
#define SIDECAR_SIPTOPO_H

#include <nettle/hmac.h>
#include <stddef.h>
#include <stdint.h>

#include "sipframe.h"

#define TOPO_KEY_LEN 32
#define TOPO_HOST_MAX 256

enum topo_dir {
	TOPO_TO_BACKEND, /* a message from the TLS peer, for the legacy server */
	TOPO_TO_TLS      /* a message from the legacy server, for the TLS peer */
};

/* The flow tokens' HMAC-SHA-256 key, with its inner and outer states
 * computed once. */
struct topo_key {
	struct hmac_sha256_ctx ctx;
};
void topo_key_init(struct topo_key *k, const unsigned char raw[TOPO_KEY_LEN]);

/* A connection's last wrapped Contact and its token (the same Contact
 * comes in every request of a client). */
struct topo_wrap_cache {
	size_t olen, plen;
	char d[];               /* the original URI, then its flow parameters */
};

/* One listener's addresses (immutable while a generation lives). */
struct topo_cfg {
	char back_host[TOPO_HOST_MAX];  /* the legacy server as it names itself: "127.0.0.1", "[::1]" */
	unsigned back_port;
	char adv_host[TOPO_HOST_MAX];   /* the advertised (public) host */
	unsigned adv_port;
	char flow_host[TOPO_HOST_MAX];  /* the sidecar's loopback flow address */
	const struct topo_key *key;     /* flow tokens' key: set by the owner */
};

/* One connection's side of the translation. */
struct topo_conn {
	uint64_t flow_id;       /* this connection's flow (0: do not wrap Contacts) */
	unsigned flow_port;     /* the flow port of this connection's event loop */
	const char *peer_host;  /* the TLS peer's address (IPv6 without brackets), for Via received */
	unsigned peer_port;
	struct topo_wrap_cache **cache; /* NULL, or where to keep one (malloc'd; caller frees) */
};

/* A growing output buffer (the caller frees d). */
struct topo_out {
	char *d;
	size_t len, cap;
};

/* What a translation learnt on the way. */
struct topo_info {
	const char *detail;     /* on error: what was wrong */
	int register_ok;        /* a 2xx response to REGISTER */
	unsigned long expires;  /* then: the longest binding it grants, seconds */
};

/*
 * Translates the complete message msg (described by m from sf_parse) in
 * direction dir. When strip spans (m->strip) or an identity header (idhdr,
 * inserted at the end of the header block) must be applied, they are applied
 * here too. Returns 1 with the whole new message in out (out->len bytes),
 * 0 when the message goes unchanged (neither strip spans nor idhdr were
 * asked for; out holds scratch), or -1 when a header that must be
 * translated does not parse (info->detail says which). A URI with white
 * space, control bytes, non-ASCII bytes or <, >, " (unescaped) does not
 * parse.
 */
int topo_rewrite(const struct topo_cfg *cfg, const struct topo_conn *tc, enum topo_dir dir,
		 const char *msg, const struct sf_msg *m, int apply_strip, const char *idhdr, size_t idhdr_len,
		 struct topo_out *out, struct topo_info *info);

/*
 * The flow a request from the legacy server is for: the flow token of its
 * Request-URI, else of its top Route, when that URI names flow_host.
 * Returns 1 with *flow_id, 0 when there is none, -1 when the token is
 * forged or damaged.
 */
int topo_flow_of(const struct topo_key *key, const char *flow_host, const char *msg, const struct sf_msg *m,
		 uint64_t *flow_id);

/*
 * In-dialog requests without a Route whose Request-URI is a flow of the
 * sidecar (a peer that follows a Contact when the legacy server did not
 * record-route) are for the sidecar itself (RFC 3261 section 16.4): it sends
 * them straight to the flow as a stateless proxy (section 16.11), with a Via
 * of its own whose branch names the sending connection, so the answers go
 * back to it.
 *
 * topo_direct_request: 1 with *flow_id when msg (from a TLS peer) is such a
 * request, 0 when not, -1 when its flow token is forged.
 * topo_add_via: writes msg[0..len) (a complete request) into out with our
 * Via on top, for the answers to reach flow from_id. Returns 0 or -1.
 * topo_direct_response: 1 with *flow_id and the bytes of our Via to cut
 * (offset, length) when msg is an answer whose top Via is ours, 0 when not,
 * -1 when our Via does not verify.
 */
int topo_direct_request(const struct topo_cfg *cfg, const char *msg, const struct sf_msg *m, uint64_t *flow_id);
int topo_add_via(const struct topo_cfg *cfg, uint64_t from_id, const char *msg, size_t len, struct topo_out *out);
int topo_direct_response(const struct topo_key *key, const char *msg, const struct sf_msg *m, uint64_t *flow_id,
			 size_t *cut_off, size_t *cut_len);

#endif
