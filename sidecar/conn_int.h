/*
 * conn_int: what the files of a connection's life share among themselves
 * (conn.c: life, handshake, relay; conn_tls.c: buffers and the TLS
 * transport; conn_backend.c: the inbound backend side; conn_out.c: the
 * outbound side). Not for the rest of the daemon: that uses conn.h.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_CONN_INT_H
#define SIDECAR_CONN_INT_H

#include <sys/types.h>

#include "conn.h"
#include "tally.h"

#define HIGH_WATER (64 * 1024)  /* pending bytes per direction before we stop reading */
#define REC_MAX 16384           /* one TLS record of plaintext */
#define DRAIN_SECS 2.0          /* wait for the other side to close after one side did */
#define NOBACKEND_SECS 5.0      /* answer 503s for this long, then close */
#define HANDSHAKE_MAX (64 * 1024) /* TLS bytes a peer may send before its handshake completes */
/* Each TLS record costs GnuTLS about as much as kilobytes of data in one:
 * past RECS_FREE records, a peer's records must carry RECS_MIN_AVG bytes
 * each on average (a CRLFCRLF keep-alive is 4), else "records too small" */
#define RECS_FREE 4096
#define RECS_MIN_AVG 4

/* Counting: the loop's totals and the connection's section and peer tallies. */
static inline void count_add(struct conn *c, uint64_t *total, size_t field, uint64_t n, int peer_too)
{
	st_add(total, n);
	if (c->tsec)
		__atomic_fetch_add((uint64_t *)((char *)c->tsec + field), n, __ATOMIC_RELAXED);
	if (peer_too && c->tpeer)
		__atomic_fetch_add((uint64_t *)((char *)c->tpeer + field), n, __ATOMIC_RELAXED);
}
#define count_bytes_in(c, n) count_add((c), &(c)->sc->st.bytes_in, offsetof(struct tally, bytes_in), (n), 0)
#define count_bytes_out(c, n) count_add((c), &(c)->sc->st.bytes_out, offsetof(struct tally, bytes_out), (n), 0)
#define count_msgs_in(c, n) count_add((c), &(c)->sc->st.msgs_in, offsetof(struct tally, msgs_in), (n), 1)
#define count_msgs_out(c, n) count_add((c), &(c)->sc->st.msgs_out, offsetof(struct tally, msgs_out), (n), 1)
/* Counts a refusal of c under its reason word (totals, section, peer). */
void count_refusal(struct conn *c, const char *reason);
/* Counts an answer the sidecar wrote itself with this status code. */
void count_answer(struct conn *c, int code);

/* conn.c */
void io_want(struct conn *c, ev_io *w, int events);
void set_timer(struct conn *c, double secs);
void tune_socket(int fd);
const char *section_name(const struct conn *c);
const struct config *cfg_of(const struct conn *c);
int finish(struct conn *c, const char *why);
void start_relay(struct conn *c);
int tls_read(struct conn *c);
struct conn *conn_new(struct sidecar *sc, struct lsock *ls, enum conn_role role);
int accept_one(struct sidecar *sc, struct lsock *ls, struct addr *peer);
void pio_cb(struct ev_loop *loop, ev_io *w, int revents);

/* conn_tls.c */
void buf_append(struct buf *b, const void *data, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
void ra_spill(struct sidecar *sc);
int ra_pending(const struct conn *c);
void tls_transport(struct conn *c);

/* conn_backend.c */
void backend_connect(struct conn *c);
void backend_failed(struct conn *c, const char *why);

/* conn_out.c */
void out_connect_next(struct conn *c);

#endif
