/*
 * conn: one relayed connection, inbound (TLS peer -> backend) or outbound
 * (legacy server -> TLS peer server). States HANDSHAKE -> CONNECTING ->
 * RELAY -> closed; conn_close() is the only way out.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_CONN_H
#define SIDECAR_CONN_H

#include <ev.h>
#include <gnutls/gnutls.h>
#include <stdint.h>

#include "ctx.h"
#include "msgcount.h"
#include "sipframe.h"

struct ipslot;

enum conn_role { ROLE_IN, ROLE_OUT };

enum conn_state {
	CS_RESOLVE,     /* out: waiting for the server's addresses */
	CS_TCP,         /* out: TCP connect to the server in progress */
	CS_HANDSHAKE,
	CS_CONNECTING,  /* in: backend connect in progress */
	CS_RELAY,
	CS_NOBACKEND,   /* in: backend unreachable; answering requests with 503 */
	CS_FLUSH        /* closing once pending output is delivered */
};

struct buf {
	char *d;
	uint32_t off, len, cap;
};

struct conn {
	struct conn *prev, *next;
	struct sidecar *sc;
	struct gen *gen;
	struct lsock *ls;            /* the socket it was accepted on */
	uint32_t idx;                /* section index in gen */
	uint8_t role, state;
	unsigned tls_eof : 1, plain_eof : 1, plain_shut : 1, tls_shut : 1;
	unsigned tls_eof_first : 1, resumed : 1, hs_done : 1, framing : 1, anonymous : 1, want_close : 1, counted : 1;
	unsigned peer_counted : 1;   /* in the shared count of verified peers */
	int tfd, pfd;                /* TLS side, plaintext side */
	gnutls_session_t tls;
	ev_io tio, pio;
	ev_timer timer;
	ev_timer again;              /* zero delay: more reading, after the loop polled (fairness) */
	double t_start, t_active;
	double t_msg;                /* when the first byte of the pending message arrived, 0 if none */
	uint32_t hs_in;              /* TLS bytes handed to GnuTLS before the handshake completed */
	struct ipslot *ipslot;       /* in the per-address count of its listener, or NULL */
	struct addr peer;            /* TLS peer (in) or server (out) */
	struct buf to_plain, to_tls, in;
	struct buf ra;               /* TLS bytes read ahead, not yet taken by GnuTLS */
	uint32_t tls_inflight;       /* size of a gnutls_record_send to repeat */
	struct sipframe *sf;         /* NULL when framing is off */
	uint64_t bytes_in, bytes_out;   /* in: from TLS peer; out: to TLS peer */
	uint64_t recs_in;            /* TLS records (reads of GnuTLS) those bytes came in */
	uint32_t msgs_in, msgs_out;
	char *identity;              /* verified peer identity, NULL if anonymous */
	char *idhdr;                 /* "Name: identity\r\n" to insert, or NULL */
	uint32_t idhdr_len;
	const char *reason;          /* why it was refused or closed */
	char reason_detail[192];
	struct addrinfo *ai, *ai_next;  /* out: addresses still to try */
	struct resolve_req *rreq;    /* out: pending resolution */
	uint32_t nb_answered;        /* CS_NOBACKEND: 503s sent */
	struct msgcount mc;          /* messages from the plaintext side */
	/* topology (siptopo.h): NULL when addresses are not translated */
	const struct topo_cfg *topo;
	uint32_t pmax;               /* with topo: largest message from the plaintext side */
	struct buf pin;              /* partial message from the plaintext side */
	uint64_t flow_id;            /* in: this connection's flow, 0 if none */
	struct conn *flow_next;      /* in the loop's flow table */
	double reg_until;            /* a registration it carried lasts until then */
	struct topo_wrap_cache *topo_cache; /* its last wrapped Contact, or NULL */
	struct tally *tsec;          /* its section's live counters (tally.h) */
	struct tally *tpeer;         /* its verified peer's, NULL while anonymous */
};

/* Accept callback for [listen] sockets (inbound TLS). */
void conn_accept_tls(struct ev_loop *loop, ev_io *w, int revents);
/* Accept callback for [connect] sockets (outbound: plaintext in, TLS out). */
void conn_accept_plain(struct ev_loop *loop, ev_io *w, int revents);
/* Size of the loop's TLS read-ahead buffer. */
#define RA_SIZE (16384 + 2048 + 5)

/* Closes and frees c: the only way a connection ends. */
void conn_close(struct conn *c, const char *why);
/* Begins a graceful stop of c: flush what is pending, then close. */
void conn_drain(struct conn *c);
/* Re-runs the verdict on an established MTLS connection against the current
 * generation (reload); closes it when refused. Returns 0 if kept. */
int conn_recheck(struct conn *c);
/* Sends one complete message from the legacy server (m from sf_parse) to
 * c's TLS peer, translated; used for messages that reach c's flow through
 * a flow listener. Returns -1 if c was closed. */
int conn_send_legacy_msg(struct conn *c, const char *msg, const struct sf_msg *m);
/* Called by the resolver when the server's addresses are known (ai may be NULL). */
void conn_resolved(struct conn *c, struct addrinfo *ai, int err);

#endif
