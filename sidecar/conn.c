/*
 * conn: the life of one relayed connection: accept, TLS handshake (the
 * verify callback and the resumption check), the relay in both directions,
 * timers and closing. Bytes from the TLS side pass the SIP framer on their
 * way to the plaintext side; bytes from the plaintext side are encrypted as
 * they come. Buffers and the TLS transport are in conn_tls.c, the inbound
 * backend in conn_backend.c, the outbound side in conn_out.c.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "conn_int.h"
#include "flow.h"
#include "ipcount.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "resolver.h"
#include "tickets.h"

#define READ_BUDGET 16          /* reads per callback, for fairness */
#define MAX_IOV 64

static int tls_flush(struct conn *c);
static int plain_flush(struct conn *c);
static void conn_resume(struct conn *c);
static int plain_read(struct conn *c);
int maybe_finish(struct conn *c);

/* ---- small helpers ---------------------------------------------------- */

/* Sets the events an io watcher waits for (0 stops it). */
void io_want(struct conn *c, ev_io *w, int events)
{
	if (w->fd < 0)
		return;
	if (ev_is_active(w) && (w->events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(c->sc->loop, w);
	if (events) {
		ev_io_set(w, w->fd, events);
		ev_io_start(c->sc->loop, w);
	}
}

void set_timer(struct conn *c, double secs)
{
	ev_timer_stop(c->sc->loop, &c->timer);
	ev_timer_set(&c->timer, secs, 0.);
	ev_timer_start(c->sc->loop, &c->timer);
}

void tune_socket(int fd)
{
	int one = 1;
	/* best effort: latency matters more than segment count for SIP */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static const char *section_kind(const struct conn *c)
{
	return c->role == ROLE_IN ? "listen" : "connect";
}

const char *section_name(const struct conn *c)
{
	return c->role == ROLE_IN ? c->gen->cfg->listen[c->idx].name : c->gen->cfg->connect[c->idx].name;
}

static const char *peer_word(const struct conn *c)
{
	return c->role == ROLE_IN ? "peer" : "server";
}

const struct config *cfg_of(const struct conn *c)
{
	return c->gen->cfg;
}


/* ---- closing ------------------------------------------------------------ */

/*
 * Closes a socket whose peer may still have bytes on the way: what already
 * arrived is read and dropped first, since close() with unread data sends a
 * reset, which can destroy the last bytes we sent (our response, the
 * close_notify) before the peer reads them.
 */
static void drain_close(struct sidecar *sc, int fd, int saw_eof)
{
	for (int i = 0; !saw_eof && i < 4; i++)
		if (recv(fd, sc->scratch, sc->scratch_size, MSG_DONTWAIT) <= 0)
			break;
	close(fd);
}

void conn_close(struct conn *c, const char *why)
{
	struct sidecar *sc = c->sc;
	ev_io_stop(sc->loop, &c->tio);
	ev_io_stop(sc->loop, &c->pio);
	ev_timer_stop(sc->loop, &c->timer);
	ev_timer_stop(sc->loop, &c->again);
	if (c->hs_done)
		log_info("%s=%s %s=%s closed: %s; in=%llu bytes/%u msgs out=%llu bytes/%u msgs duration=%.3fs",
			 section_kind(c), section_name(c), peer_word(c), c->peer.text, why ? why : "done",
			 (unsigned long long)c->bytes_in, c->msgs_in, (unsigned long long)c->bytes_out, c->msgs_out,
			 ev_now(sc->loop) - c->t_start);
	if (c->rreq)
		resolver_cancel(sc, c->rreq);
	if (c->ai)
		freeaddrinfo(c->ai);
	if (c->tls)
		gnutls_deinit(c->tls);
	if (c->tfd >= 0)
		drain_close(sc, c->tfd, c->tls_eof);
	if (c->pfd >= 0)
		drain_close(sc, c->pfd, c->plain_eof);
	buf_free(&c->to_plain);
	buf_free(&c->to_tls);
	buf_free(&c->in);
	buf_free(&c->ra);
	if (sc->ra_owner == c) {
		sc->ra_owner = NULL;
		sc->ra_len = 0;
	}
	if (c->flow_id)
		flow_unregister(c);
	free(c->sf);
	free(c->topo_cache);
	buf_free(&c->pin);
	free(c->identity);
	free(c->idhdr);
	if (c->prev)
		c->prev->next = c->next;
	else
		sc->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sc->nconns--;
	__atomic_sub_fetch(sc->total_conns, 1, __ATOMIC_RELAXED);
	if (c->peer_counted)
		__atomic_sub_fetch(sc->total_peers, 1, __ATOMIC_RELAXED);
	tally_close(c->tsec);
	tally_close(c->tpeer);
	if (c->ipslot)
		ipcount_put(sc->main_ctx->ipcount, c->ipslot);
	st_add(&sc->st.closed, 1);
	gen_unref(c->gen);
	free(c);
}

/* The TLS alert that tells the peer why its certificate was refused. */
static int refusal_alert(const char *reason)
{
	static const struct {
		const char *reason;
		gnutls_alert_description_t alert;
	} map[] = {
		{ "expired", GNUTLS_A_CERTIFICATE_EXPIRED },
		{ "not yet valid", GNUTLS_A_BAD_CERTIFICATE },
		{ "unknown ca", GNUTLS_A_UNKNOWN_CA },
		{ "revoked", GNUTLS_A_CERTIFICATE_REVOKED },
		{ "bad key usage", GNUTLS_A_UNSUPPORTED_CERTIFICATE },
		{ "name mismatch", GNUTLS_A_BAD_CERTIFICATE },
		{ "not allowed", GNUTLS_A_ACCESS_DENIED },
		{ "no certificate", GNUTLS_A_CERTIFICATE_REQUIRED },
		{ "stale crl", GNUTLS_A_CERTIFICATE_UNKNOWN },
		{ "chain too long", GNUTLS_A_BAD_CERTIFICATE },
		{ "weak key", GNUTLS_A_BAD_CERTIFICATE },
		{ "weak signature", GNUTLS_A_BAD_CERTIFICATE },
		{ "malformed name", GNUTLS_A_BAD_CERTIFICATE },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(map[i].reason, reason))
			return (int)map[i].alert;
	return -1;
}

void count_refusal(struct conn *c, const char *reason)
{
	size_t i = metrics_refused(c->sc, reason);
	tally_add(c->tsec, refused[i], 1);
	tally_add(c->tpeer, refused[i], 1);
}

void count_answer(struct conn *c, int code)
{
	int i = tally_answer_index(code);
	if (i < 0)
		return;
	st_add(&c->sc->st.answers[i], 1);
	tally_add(c->tsec, answers[i], 1);
}

/* Logs a refusal with the reason word of INTERFACE.md, tells the peer by an
 * alert when there is one for it, and closes. */
static void conn_refuse(struct conn *c, const char *reason, const char *detail)
{
	int alert = c->tls ? refusal_alert(reason) : -1;
	if (alert >= 0) /* best effort: the socket may not take it */
		(void)gnutls_alert_send(c->tls, GNUTLS_AL_FATAL, (gnutls_alert_description_t)alert);
	count_refusal(c, reason);
	log_warn("%s=%s %s=%s refused: %s%s%s%s", section_kind(c), section_name(c), peer_word(c), c->peer.text,
		 reason, detail && *detail ? " (" : "", detail ? detail : "", detail && *detail ? ")" : "");
	c->hs_done = 0; /* no "closed" line for a connection never admitted */
	conn_close(c, reason);
}

void conn_drain(struct conn *c)
{
	c->want_close = 1;
	io_want(c, &c->tio, c->to_tls.len ? EV_WRITE : 0);
	io_want(c, &c->pio, c->to_plain.len ? EV_WRITE : 0);
	set_timer(c, DRAIN_SECS);
	maybe_finish(c);
}

/* Sends close_notify without waiting for the answer, then closes. */
int finish(struct conn *c, const char *why)
{
	if (c->tls && c->hs_done && !c->tls_shut) {
		c->tls_shut = 1;
		(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort: AGAIN just drops it */
	}
	conn_close(c, why);
	return -1;
}

/*
 * Closes the connection when nothing is left to do. Returns -1 if it was
 * closed (the caller must not touch c), 0 otherwise.
 */
int maybe_finish(struct conn *c)
{
	if (c->tls_eof && !c->to_plain.len && !c->plain_shut && c->pfd >= 0) {
		c->plain_shut = 1;
		if (shutdown(c->pfd, SHUT_WR) < 0 && errno != ENOTCONN)
			return finish(c, "shutdown failed");
		set_timer(c, DRAIN_SECS);
	}
	if (c->tls_eof && c->plain_eof)
		return finish(c, c->reason ? c->reason /* refused by the framer */
				 : c->tls_eof_first ? "peer closed" : c->role == ROLE_IN ? "backend closed" : "legacy server closed");
	if (c->plain_eof && !c->to_tls.len && !c->tls_eof && c->tls && c->hs_done && c->state == CS_RELAY) {
		/* The plaintext side closed: close_notify + FIN, then wait (bounded)
		 * for the TLS peer to close, still relaying what it sends (the
		 * plaintext side may have closed only its sending half). Closing
		 * now, with the peer's bytes unread, would reset the connection
		 * and could destroy our last bytes still in flight. */
		if (!c->tls_shut) {
			c->tls_shut = 1;
			(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
			if (shutdown(c->tfd, SHUT_WR) < 0 && errno != ENOTCONN)
				return finish(c, "shutdown failed");
			set_timer(c, DRAIN_SECS);
		}
		return 0;
	}
	if (c->plain_eof && !c->to_tls.len)
		return finish(c, c->role == ROLE_IN ? "backend closed" : "legacy server closed");
	if (c->tls_eof && c->pfd < 0 && !c->to_tls.len)
		return finish(c, "peer closed");
	if (c->want_close && !c->to_tls.len && !c->to_plain.len)
		return finish(c, c->reason ? c->reason : "closed");
	return 0;
}

/* ---- peer verification (the handshake and resumption callers) -------- */

/*
 * Runs the verdict on c's peer chain against generation g. Returns 0 when
 * admitted (c->identity set, or c->anonymous), -1 with c->reason otherwise.
 */
static int check_peer(struct conn *c, const struct gen *g, size_t idx)
{
	const struct verify_policy *policy;
	int require;
	if (c->role == ROLE_IN) {
		const struct lgen *lg = &g->listen[idx];
		if (lg->conf->client_auth == CLIENT_AUTH_NONE)
			return 0;
		policy = &lg->policy;
		require = lg->conf->client_auth == CLIENT_AUTH_REQUIRE;
	} else {
		policy = &g->connect[idx].policy;
		require = 1;
	}
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(c->tls, &n);
	if (!chain || n == 0) {
		if (require) {
			c->reason = "no certificate";
			return -1;
		}
		c->anonymous = 1;
		return 0;
	}
	struct verdict v;
	if (verify_chain(chain, n, policy, &v) < 0) {
		c->reason = v.reason;
		snprintf(c->reason_detail, sizeof c->reason_detail, "subject=%.60s serial=%.40s%s%.50s", v.subject,
			 v.serial, v.detail[0] ? " " : "", v.detail);
		return -1;
	}
	if (v.warning[0]) /* crl-stale = warn */
		log_warn("%s=%s %s=%s admitted with a warning: %s", section_kind(c), section_name(c), peer_word(c),
			 c->peer.text, v.warning);
	free(c->identity);
	c->identity = xstrdup(v.identity);
	c->anonymous = 0;
	return 0;
}

int conn_tls_verify(gnutls_session_t s)
{
	struct conn *c = gnutls_session_get_ptr(s);
	return check_peer(c, c->gen, c->idx) < 0 ? -1 : 0;
}

int conn_recheck(struct conn *c)
{
	struct gen *g = c->sc->gen;
	const char *name = section_name(c);
	size_t i, n = c->role == ROLE_IN ? g->cfg->nlisten : g->cfg->nconnect;
	if (!c->hs_done || !c->tls)
		return 0;
	for (i = 0; i < n; i++)
		if (!strcmp(name, c->role == ROLE_IN ? g->cfg->listen[i].name : g->cfg->connect[i].name))
			break;
	if (i == n)
		return 0; /* section removed: established connections stay untouched */
	if (c->role == ROLE_IN && g->listen[i].conf->client_auth == CLIENT_AUTH_NONE)
		return 0;
	int was_anon = c->anonymous;
	if (check_peer(c, g, i) < 0 || (c->role == ROLE_IN && !was_anon && c->anonymous)) {
		log_warn("%s=%s %s=%s refused on reload: %s%s%s%s", section_kind(c), name, peer_word(c),
			 c->peer.text, c->reason, c->reason_detail[0] ? " (" : "", c->reason_detail,
			 c->reason_detail[0] ? ")" : "");
		count_refusal(c, c->reason);
		finish(c, c->reason);
		return -1;
	}
	return 0;
}

/* ---- handshake ---------------------------------------------------------- */

static void handshake_failed(struct conn *c, int r)
{
	char detail[128];
	const char *reason = c->reason;
	detail[0] = '\0';
	if (!reason) {
		if (r == GNUTLS_E_NO_CERTIFICATE_FOUND || r == GNUTLS_E_CERTIFICATE_REQUIRED) {
			reason = "no certificate";
		} else {
			reason = "handshake failed";
			if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
				snprintf(detail, sizeof detail, "peer sent alert: %s",
					 gnutls_alert_get_name(gnutls_alert_get(c->tls)));
			else
				snprintf(detail, sizeof detail, "%s", gnutls_strerror(r));
		}
	} else {
		snprintf(detail, sizeof detail, "%.120s", c->reason_detail);
	}
	conn_refuse(c, reason, detail);
}

static void handshake_done(struct conn *c)
{
	struct sidecar *sc = c->sc;
	c->hs_done = 1;
	c->resumed = gnutls_session_is_resumed(c->tls) ? 1 : 0;
	/* Resumption (caller 2): GnuTLS does not run the verify function on a
	 * resumed session, so the original chain is judged now, with the trust
	 * in force now. */
	if (c->resumed && check_peer(c, c->gen, c->idx) < 0) {
		c->hs_done = 0;
		conn_refuse(c, c->reason, c->reason_detail);
		return;
	}
	if (c->role == ROLE_IN && !c->anonymous && !c->identity &&
	    c->gen->listen[c->idx].conf->client_auth == CLIENT_AUTH_REQUIRE) {
		c->hs_done = 0;
		conn_refuse(c, "no certificate", NULL);
		return;
	}
	if (c->role == ROLE_IN && c->gen->listen[c->idx].conf->client_auth == CLIENT_AUTH_NONE)
		c->anonymous = 1;
	st_add(&sc->st.handshakes, 1);
	tally_add(c->tsec, handshakes, 1);
	if (c->resumed) {
		st_add(&sc->st.resumed, 1);
		tally_add(c->tsec, resumed, 1);
	}
	const char *hname = c->role == ROLE_IN ? cfg_of(c)->listen[c->idx].identity_header
					       : cfg_of(c)->connect[c->idx].identity_header;
	if (hname && c->identity && *c->identity) {
		size_t n = strlen(hname) + strlen(c->identity) + 5;
		c->idhdr = xmalloc(n);
		c->idhdr_len = (uint32_t)snprintf(c->idhdr, n, "%s: %s\r\n", hname, c->identity);
	}
	log_info("%s=%s %s=%s accepted %s %s %s%s%s", section_kind(c), section_name(c), peer_word(c),
		 c->peer.text, gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)),
		 gnutls_cipher_get_name(gnutls_cipher_get(c->tls)), c->identity ? "identity=" : "anonymous",
		 c->identity ? c->identity : "", c->resumed ? " resumed" : "");
	c->t_active = ev_now(sc->loop);
	if (c->identity) {
		/* a verified peer (either role), for STATUS= */
		c->peer_counted = 1;
		__atomic_add_fetch(sc->total_peers, 1, __ATOMIC_RELAXED);
		c->tpeer = tally_peer(sc->tallies, c->identity, cfg_of(c)->metrics_peers);
		tally_open(c->tpeer, (int64_t)time(NULL));
	}
	if (c->role == ROLE_IN)
		backend_connect(c);
	else
		start_relay(c);
}

static void do_handshake(struct conn *c)
{
	int r = gnutls_handshake(c->tls);
	ra_spill(c->sc); /* records that came with the last flight stay with c */
	if (r == 0) {
		handshake_done(c);
		return;
	}
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		io_want(c, &c->tio, gnutls_record_get_direction(c->tls) ? EV_WRITE : EV_READ);
		return;
	}
	if (!gnutls_error_is_fatal(r)) {
		/* warning alerts during the handshake: keep going */
		io_want(c, &c->tio, EV_READ);
		return;
	}
	handshake_failed(c, r);
}

/* ---- relay: TLS side -> plaintext side (through the framer) ------------ */

/* Queues bytes for the TLS peer (encrypting as much as possible now). */
static int tls_send(struct conn *c, const char *data, size_t n)
{
	c->bytes_out += n;
	count_bytes_out(c, n);
	if (c->to_tls.len || c->state < CS_CONNECTING || c->sc->corked == c) {
		/* corked: answers to what one read pass brought (pongs,
		 * 400/503) leave together at its end, in as few records */
		buf_append(&c->to_tls, data, n);
		return c->state >= CS_CONNECTING && c->sc->corked != c ? tls_flush(c) : 0;
	}
	while (n) {
		size_t chunk = n > REC_MAX ? REC_MAX : n;
		ssize_t r = gnutls_record_send(c->tls, data, chunk);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			/* GnuTLS holds the encrypted record; repeat the call with
			 * the same size when writable */
			buf_append(&c->to_tls, data, n);
			c->tls_inflight = (uint32_t)chunk;
			io_want(c, &c->tio, EV_WRITE);
			return 0;
		}
		if (r < 0) {
			c->tls_eof = c->plain_eof = 1;
			conn_close(c, gnutls_strerror((int)r));
			return -1;
		}
		data += r;
		n -= (size_t)r;
	}
	return 0;
}

static int tls_flush(struct conn *c)
{
	while (c->to_tls.len) {
		size_t chunk = c->tls_inflight ? c->tls_inflight : (c->to_tls.len > REC_MAX ? REC_MAX : c->to_tls.len);
		ssize_t r = gnutls_record_send(c->tls, c->to_tls.d + c->to_tls.off, chunk);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			c->tls_inflight = (uint32_t)chunk;
			io_want(c, &c->tio, EV_WRITE);
			return 0;
		}
		if (r < 0) {
			conn_close(c, gnutls_strerror((int)r));
			return -1;
		}
		c->tls_inflight = 0;
		buf_consume(&c->to_tls, (size_t)r);
	}
	/* drained: back to reading (unless that side is finished or the
	 * backend side is backed up) */
	int rd = !(c->tls_eof || c->want_close || c->state == CS_CONNECTING || c->to_plain.len >= HIGH_WATER);
	io_want(c, &c->tio, rd ? EV_READ : 0);
	if (!c->plain_eof && !c->want_close && c->pfd >= 0 && c->state == CS_RELAY)
		io_want(c, &c->pio, EV_READ | (c->to_plain.len ? EV_WRITE : 0));
	/* records GnuTLS or the read-ahead already hold will not wake the loop */
	if (rd && c->state >= CS_RELAY && (ra_pending(c) || gnutls_record_check_pending(c->tls)))
		conn_resume(c);
	return maybe_finish(c);
}

/* Writes iov to the plaintext side, queueing what the kernel does not take. */
static int plain_writev(struct conn *c, struct iovec *iov, int n)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (!total)
		return 0;
	size_t done = 0;
	if (!c->to_plain.len && c->state == CS_RELAY) {
		ssize_t w = writev(c->pfd, iov, n);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_close(c, c->role == ROLE_IN ? "backend write failed" : "legacy write failed");
			return -1;
		}
		done = w > 0 ? (size_t)w : 0;
	}
	if (done == total)
		return 0;
	for (int i = 0; i < n; i++) {
		if (done >= iov[i].iov_len) {
			done -= iov[i].iov_len;
			continue;
		}
		buf_append(&c->to_plain, (char *)iov[i].iov_base + done, iov[i].iov_len - done);
		done = 0;
	}
	if (c->state == CS_RELAY)
		io_want(c, &c->pio, EV_WRITE | (c->plain_eof ? 0 : EV_READ));
	return 0;
}

static int starts_with_ack(const char *msg, const struct sf_msg *m)
{
	return m->start_line.len >= 4 && !memcmp(msg + m->start_line.off, "ACK ", 4);
}

/* Sends what the read pass corked now: the last answer before closing
 * must not wait for a pass whose end the connection may not see. */
static int uncork(struct conn *c)
{
	if (c->sc->corked == c)
		c->sc->corked = NULL;
	return c->to_tls.len && c->state >= CS_CONNECTING ? tls_flush(c) : 0;
}

/* Answers a request ourselves (400/513/503); nothing for ACK or responses. */
static int answer(struct conn *c, const char *msg, const struct sf_msg *m, int code, const char *phrase,
		  const char *extra)
{
	char out[4096];
	if (!m->is_request || starts_with_ack(msg, m))
		return 0;
	size_t n = sf_error_response(msg, m, code, phrase, extra, out, sizeof out);
	if (!n)
		return 0;
	count_answer(c, code);
	return tls_send(c, out, n);
}

/* Adds iovecs for one framed message, dropping spoofed identity headers
 * and inserting ours at the end of the header block. */
static int add_message_iov(struct conn *c, struct iovec *iov, int n, const char *msg, const struct sf_msg *m)
{
	if (!c->idhdr && !m->nstrip) {
		if (n && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == msg) {
			iov[n - 1].iov_len += m->len;
			return n;
		}
		iov[n].iov_base = (void *)msg;
		iov[n++].iov_len = m->len;
		return n;
	}
	size_t pos = 0;
	for (unsigned k = 0; k < m->nstrip; k++) {
		if (m->strip[k].off > pos) {
			iov[n].iov_base = (void *)(msg + pos);
			iov[n++].iov_len = m->strip[k].off - pos;
		}
		pos = m->strip[k].off + m->strip[k].len;
	}
	if (m->hdr_end > pos) {
		iov[n].iov_base = (void *)(msg + pos);
		iov[n++].iov_len = m->hdr_end - pos;
	}
	if (c->idhdr) {
		iov[n].iov_base = c->idhdr;
		iov[n++].iov_len = c->idhdr_len;
	}
	iov[n].iov_base = (void *)(msg + m->hdr_end);
	iov[n++].iov_len = m->len - m->hdr_end;
	return n;
}

/* The TLS peer's side of a translation; its address only when with_addr
 * (a response to the TLS peer, whose top Via gets it). */
static void topo_conn_of(struct conn *c, struct topo_conn *tc, char *host, size_t hostsz, int with_addr)
{
	tc->flow_id = c->flow_id;
	tc->flow_port = c->sc->flow_port;
	host[0] = '\0';
	tc->peer_port = 0;
	tc->peer_host = host;
	tc->cache = &c->topo_cache;
	if (!with_addr)
		return;
	/* "1.2.3.4:5" or "[::1]:5", formatted at accept */
	const char *colon = strrchr(c->peer.text, ':');
	size_t n = colon ? (size_t)(colon - c->peer.text) : 0;
	if (!n || n >= hostsz)
		return;
	const char *h = c->peer.text;
	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++; /* Via received takes an IPv6 address bare (RFC 3261, 5118) */
		n -= 2;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	tc->peer_port = (unsigned)strtoul(colon + 1, NULL, 10);
}

/* Refuses a message from the TLS peer whose addresses cannot be
 * translated: 400 for a request, nothing of it to the backend. */
static void refuse_untranslatable(struct conn *c, const char *msg, const struct sf_msg *m, const char *detail)
{
	const char *reason = !strcmp(detail, "forged flow token") ? "forged flow token" : "malformed message";
	if (answer(c, msg, m, 400, "Bad Request", NULL) < 0 || uncork(c) < 0)
		return;
	count_refusal(c, reason);
	log_warn("%s=%s %s=%s refused: %s (%s)", section_kind(c), section_name(c), peer_word(c), c->peer.text, reason,
		 detail);
	c->reason = reason;
	conn_drain(c);
}

/*
 * Messages the sidecar routes itself, past the legacy server: an in-dialog
 * request without Route for a flow of ours (the legacy server did not
 * record-route), and the answers to such requests (our Via on top).
 * Returns 1 when handled, 0 when the message goes to the backend, -1 when
 * c was closed or is closing.
 */
static int direct(struct conn *c, struct topo_conn *tc, struct iovec *iov, int *n, const char *msg,
		  const struct sf_msg *m)
{
	struct sidecar *sc = c->sc;
	struct topo_info info;
	uint64_t id;
	size_t off, cut;
	int d = m->is_request ? topo_direct_request(c->topo, msg, m, &id)
			      : topo_direct_response(c->topo->key, msg, m, &id, &off, &cut);
	if (d == 0)
		return 0;
	int r = d < 0 ? -1 : topo_rewrite(c->topo, tc, TOPO_TO_BACKEND, msg, m, 1, NULL, 0, &sc->topo_buf, &info);
	if (r < 0) {
		/* what came before it is delivered whole; none of it */
		if (plain_writev(c, iov, *n) < 0)
			return -1;
		*n = 0;
		refuse_untranslatable(c, msg, m, d < 0 ? "forged flow token" : info.detail ? info.detail : "unparsable address");
		return -1;
	}
	const char *t = r ? sc->topo_buf.d : msg;
	size_t tlen = r ? sc->topo_buf.len : m->len;
	log_debug("%s=%s %s=%s routed by the sidecar: %.*s", section_kind(c), section_name(c), peer_word(c),
		  c->peer.text, (int)(m->start_line.len > 80 ? 80 : m->start_line.len), msg + m->start_line.off);
	if (m->is_request) {
		if (topo_add_via(c->topo, c->flow_id, t, tlen, &sc->topo_buf2) < 0)
			return 0;
		flow_post(sc, id, sc->topo_buf2.d, sc->topo_buf2.len);
	} else {
		(void)flow_route_answer(sc, c->topo->key, t, tlen);
	}
	return 1;
}

/*
 * Translates one message from the TLS peer for the backend. Returns 1 when
 * it was sent (after the pending iovecs), 0 when it goes unchanged (the
 * caller adds it to the iovecs), -1 when c was closed or is closing.
 */
static int to_backend(struct conn *c, struct iovec *iov, int *n, const char *msg, const struct sf_msg *m)
{
	struct sidecar *sc = c->sc;
	struct topo_conn tc;
	struct topo_info info;
	char host[INET6_ADDRSTRLEN + 2];
	topo_conn_of(c, &tc, host, sizeof host, 0);
	if (c->flow_id) {
		int d = direct(c, &tc, iov, n, msg, m);
		if (d != 0)
			return d;
	}
	int r = topo_rewrite(c->topo, &tc, TOPO_TO_BACKEND, msg, m, 1, c->idhdr, c->idhdr_len, &sc->topo_buf, &info);
	if (r < 0) {
		if (plain_writev(c, iov, *n) < 0)
			return -1;
		*n = 0;
		refuse_untranslatable(c, msg, m, info.detail ? info.detail : "unparsable address");
		return -1;
	}
	if (r == 0) {
		if (*n + 2 * SF_MAX_STRIP + 4 > MAX_IOV) {
			if (plain_writev(c, iov, *n) < 0)
				return -1;
			*n = 0;
		}
		return 0;
	}
	iov[*n].iov_base = sc->topo_buf.d;
	iov[*n].iov_len = sc->topo_buf.len;
	int rc = plain_writev(c, iov, *n + 1);
	*n = 0;
	return rc < 0 ? -1 : 1;
}

int conn_send_legacy_msg(struct conn *c, const char *msg, const struct sf_msg *m)
{
	struct sidecar *sc = c->sc;
	struct topo_conn tc;
	struct topo_info info;
	char host[INET6_ADDRSTRLEN + 2];
	c->msgs_out++;
	count_msgs_out(c, 1);
	if (!c->topo)
		return tls_send(c, msg, m->len);
	topo_conn_of(c, &tc, host, sizeof host, !m->is_request);
	int r = topo_rewrite(c->topo, &tc, TOPO_TO_TLS, msg, m, 0, NULL, 0, &sc->topo_buf, &info);
	if (r < 0) {
		/* the legacy server is trusted: pass what we cannot parse */
		log_warn("%s=%s %s=%s message from the legacy server not translated: %s", section_kind(c),
			 section_name(c), peer_word(c), c->peer.text, info.detail ? info.detail : "?");
		r = 0;
	}
	if (info.register_ok && info.expires && c->role == ROLE_IN) {
		double until = ev_now(sc->loop) + (double)info.expires + cfg_of(c)->registration_margin;
		if (until > c->reg_until) {
			c->reg_until = until;
			log_debug("%s=%s %s=%s registered for %lus: kept open until then", section_kind(c),
				  section_name(c), peer_word(c), c->peer.text, info.expires);
		}
	}
	return r ? tls_send(c, sc->topo_buf.d, sc->topo_buf.len) : tls_send(c, msg, m->len);
}

/* Frames what the legacy server sent (with topology on) and sends each
 * message translated. Returns -1 if c was closed. */
static int plain_deliver(struct conn *c, const char *data, size_t len)
{
	size_t pos = 0;
	const char *base = data;
	if (c->pin.len) {
		buf_append(&c->pin, data, len);
		base = c->pin.d + c->pin.off;
		len = c->pin.len;
	}
	while (pos < len) {
		struct sf_msg m;
		enum sf_result r = sf_trusted(base + pos, len - pos, c->pmax, &m);
		if (r == SF_NEED_MORE)
			break;
		if (r == SF_MESSAGE) {
			if (conn_send_legacy_msg(c, base + pos, &m) < 0)
				return -1;
		} else if (r == SF_PING || r == SF_SKIP) {
			if (tls_send(c, base + pos, m.len) < 0)
				return -1;
		} else {
			log_err("%s=%s %s=%s the legacy server sent a malformed message: %s (%s)", section_kind(c),
				section_name(c), peer_word(c), c->peer.text, m.reason, m.detail ? m.detail : "");
			conn_close(c, "malformed message from the legacy server");
			return -1;
		}
		pos += m.len;
	}
	if (base == data) {
		if (pos < len)
			buf_append(&c->pin, data + pos, len - pos);
	} else {
		buf_consume(&c->pin, pos);
	}
	return 0;
}

/*
 * Frames data[0..len) from the TLS peer and delivers complete messages.
 * Returns the number of bytes consumed (the rest is a partial message), or
 * -1 if c was closed or is closing.
 */
static ssize_t deliver(struct conn *c, const char *data, size_t len)
{
	struct iovec iov[MAX_IOV];
	int n = 0;
	size_t pos = 0;
	if (!c->sf) {
		if (c->state == CS_NOBACKEND)
			return (ssize_t)len; /* nothing to answer without framing */
		iov[0].iov_base = (void *)data;
		iov[0].iov_len = len;
		return plain_writev(c, iov, 1) < 0 ? -1 : (ssize_t)len;
	}
	while (pos < len) {
		struct sf_msg m;
		enum sf_result r = sf_parse(c->sf, data + pos, len - pos, &m);
		if (r == SF_NEED_MORE)
			break;
		if (r == SF_PING) {
			if (plain_writev(c, iov, n) < 0 || tls_send(c, "\r\n", 2) < 0)
				return -1;
			n = 0;
		} else if (r == SF_MESSAGE) {
			c->msgs_in++;
			count_msgs_in(c, 1);
			if (c->state == CS_NOBACKEND) {
				if (answer(c, data + pos, &m, 503, "Service Unavailable", "Retry-After: 30\r\n") < 0)
					return -1;
				c->nb_answered++;
			} else if (c->topo) {
				int t = to_backend(c, iov, &n, data + pos, &m);
				if (t < 0)
					return -1;
				if (t == 0)
					n = add_message_iov(c, iov, n, data + pos, &m);
			} else {
				if (n + 2 * SF_MAX_STRIP + 4 > MAX_IOV) {
					if (plain_writev(c, iov, n) < 0)
						return -1;
					n = 0;
				}
				n = add_message_iov(c, iov, n, data + pos, &m);
			}
		} else if (r == SF_ERROR) {
			/* messages before this one are delivered whole; none of it is */
			if (plain_writev(c, iov, n) < 0)
				return -1;
			if (answer(c, data + pos, &m, m.error, m.error == 513 ? "Message Too Large" : "Bad Request",
				   NULL) < 0 || uncork(c) < 0)
				return -1;
			count_refusal(c, m.reason);
			log_warn("%s=%s %s=%s refused: %s (%s)", section_kind(c), section_name(c), peer_word(c),
				 c->peer.text, m.reason, m.detail ? m.detail : "");
			c->reason = m.reason;
			if (c->state == CS_RELAY && c->pfd >= 0 && !c->plain_eof) {
				/* read nothing more from the peer, but let the backend
				 * answer what it already has: half-close it and relay
				 * until it closes (bounded by DRAIN_SECS) */
				c->tls_eof = c->tls_eof_first = 1;
				io_want(c, &c->tio, c->to_tls.len ? EV_WRITE : 0);
				set_timer(c, DRAIN_SECS);
				maybe_finish(c);
				return -1;
			}
			conn_drain(c);
			return -1;
		}
		pos += m.len;
	}
	if (plain_writev(c, iov, n) < 0)
		return -1;
	return (ssize_t)pos;
}

/* Reads from the TLS peer until it would block, the budget is spent, or
 * the plaintext side is backed up. Returns -1 if c was closed. */
static int tls_read_some(struct conn *c);

int tls_read(struct conn *c)
{
	struct sidecar *sc = c->sc;
	struct conn *was = sc->corked;
	sc->corked = c;
	int r = tls_read_some(c);
	sc->corked = was;
	ra_spill(sc);
	/* c is gone when r < 0, or closing with its output armed */
	if (r == 0 && c->to_tls.len && c->state >= CS_CONNECTING)
		r = tls_flush(c);
	return r;
}

/* Zero-delay timer: the TLS records a spent budget or a drained queue left
 * in GnuTLS or the read-ahead, read once the loop has polled (a fed event
 * would run in the same pass, and a flooding peer would keep the loop from
 * ever polling). The plaintext side needs none: what its socket holds
 * wakes the loop again. */
static void resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	(void)loop, (void)revents;
	if ((c->state == CS_RELAY || c->state == CS_NOBACKEND) && !c->tls_eof && !c->want_close)
		(void)tls_read(c);
}

static void conn_resume(struct conn *c)
{
	if (!ev_is_active(&c->again)) {
		ev_timer_set(&c->again, 0., 0.);
		ev_timer_start(c->sc->loop, &c->again);
	}
}

/* The message-timeout clock: runs while a message from the TLS peer is
 * incomplete (c->in holds its start). fresh: what c->in holds began in
 * the last read. */
static void msg_clock(struct conn *c, int fresh)
{
	if (!c->in.len) {
		c->t_msg = 0;
		return;
	}
	if (!fresh && c->t_msg)
		return;
	char first = c->in.d[c->in.off];
	if (first == '\r' || first == '\n') {
		c->t_msg = 0; /* the start of a keep-alive, not of a message */
		return;
	}
	double mt = cfg_of(c)->message_timeout, now = ev_now(c->sc->loop);
	c->t_msg = now;
	if (mt > 0 && c->state == CS_RELAY && ev_timer_remaining(c->sc->loop, &c->timer) > mt)
		set_timer(c, mt);
}

static int tls_read_some(struct conn *c)
{
	struct sidecar *sc = c->sc;
	for (int i = 0; i < READ_BUDGET; i++) {
		if (c->to_plain.len >= HIGH_WATER || c->to_tls.len >= HIGH_WATER) {
			/* backpressure: the backend does not take what the peer
			 * sends, or the peer does not read its answers (ours
			 * included: pongs, 400/503): read nothing more until it
			 * drains */
			io_want(c, &c->tio, c->to_tls.len ? EV_WRITE : 0);
			return 0;
		}
		char *dst;
		size_t room;
		if (c->in.len) {
			/* a partial message is pending: read right behind it */
			if (c->in.off + c->in.len + REC_MAX > c->in.cap) {
				if (c->in.off) {
					memmove(c->in.d, c->in.d + c->in.off, c->in.len);
					c->in.off = 0;
				}
				if (c->in.len + REC_MAX > c->in.cap) {
					c->in.cap = c->in.len + REC_MAX;
					c->in.d = xrealloc(c->in.d, c->in.cap);
				}
			}
			dst = c->in.d + c->in.off + c->in.len;
			room = c->in.cap - c->in.off - c->in.len;
		} else {
			dst = sc->scratch;
			room = sc->scratch_size;
		}
		/* Coalesce: take every record already read from the socket
		 * before framing, so that many tiny records cost one pass of
		 * the framer, not one each. */
		size_t got = 0;
		ssize_t r = gnutls_record_recv(c->tls, dst, room);
		while (r > 0) {
			got += (size_t)r;
			c->recs_in++;
			if (got == room || (!gnutls_record_check_pending(c->tls) && !ra_pending(c)) ||
			    c->recs_in > RECS_FREE + (c->bytes_in + got) / RECS_MIN_AVG)
				break;
			r = gnutls_record_recv(c->tls, dst + got, room - got);
		}
		if (got) {
			c->bytes_in += got;
			count_bytes_in(c, (uint64_t)got);
			if (c->recs_in > RECS_FREE + c->bytes_in / RECS_MIN_AVG) {
				/* a minimum size per record bounds what a byte may cost */
				count_refusal(c, "records too small");
				log_warn("%s=%s %s=%s refused: records too small (%llu records for %llu bytes)",
					 section_kind(c), section_name(c), peer_word(c), c->peer.text,
					 (unsigned long long)c->recs_in, (unsigned long long)c->bytes_in);
				c->reason = "records too small";
				finish(c, "records too small");
				return -1;
			}
			c->t_active = ev_now(sc->loop);
			const char *base;
			size_t len;
			int had_msg = c->t_msg > 0;
			if (c->in.len || dst != sc->scratch) {
				c->in.len += (uint32_t)got;
				base = c->in.d + c->in.off;
				len = c->in.len;
			} else {
				base = dst;
				len = got;
			}
			ssize_t used = deliver(c, base, len);
			if (used < 0)
				return -1;
			if (dst == sc->scratch) {
				if ((size_t)used < len)
					buf_append(&c->in, base + used, len - (size_t)used);
			} else {
				buf_consume(&c->in, (size_t)used);
			}
			msg_clock(c, used > 0 || !had_msg);
			if (r > 0 || r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				/* Level-triggered epoll wakes us for what the socket
				 * still holds: no recv() just to learn it would block. */
				if (!gnutls_record_check_pending(c->tls) && !ra_pending(c))
					return 0;
				continue;
			}
			/* an end or an error came after the records: below */
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			/* GnuTLS also says AGAIN after a post-handshake message (a
			 * TLS 1.3 session ticket), even with records waiting in our
			 * read-ahead, which no socket event would bring back */
			if (ra_pending(c) || gnutls_record_check_pending(c->tls))
				continue;
			return 0;
		}
		if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
			c->tls_eof = 1;
			c->tls_eof_first = !c->plain_eof;
			io_want(c, &c->tio, c->to_tls.len ? EV_WRITE : 0);
			if (c->in.len)
				log_debug("%s=%s %s=%s closed with %u bytes of an incomplete message", section_kind(c),
					  section_name(c), peer_word(c), c->peer.text, c->in.len);
			return maybe_finish(c);
		}
		if (r == GNUTLS_E_REHANDSHAKE) {
			/* no renegotiation, ever */
			(void)gnutls_alert_send(c->tls, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
			count_refusal(c, "renegotiation refused");
			log_warn("%s=%s %s=%s renegotiation refused", section_kind(c), section_name(c),
				 peer_word(c), c->peer.text);
			conn_close(c, "renegotiation refused");
			return -1;
		}
		if (!gnutls_error_is_fatal((int)r))
			continue;
		if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
			char why[96];
			snprintf(why, sizeof why, "peer sent alert: %s",
				 gnutls_alert_get_name(gnutls_alert_get(c->tls)));
			/* TLS 1.3: a client's handshake ends before the server has
			 * judged its certificate; a server that rejects it answers
			 * with an alert before any data. That is a refusal. */
			if (c->role == ROLE_OUT && c->bytes_in == 0) {
				conn_refuse(c, "handshake failed", why);
				return -1;
			}
			conn_close(c, why);
			return -1;
		}
		conn_close(c, gnutls_strerror((int)r));
		return -1;
	}
	/* budget spent: the others first. What the socket holds wakes the
	 * loop again; records GnuTLS or the read-ahead hold would not, so a
	 * zero timer brings c back after the loop has polled. */
	if (ra_pending(c) || gnutls_record_check_pending(c->tls))
		conn_resume(c);
	return 0;
}

/* ---- relay: plaintext side -> TLS side ---------------------------------- */

static int plain_read(struct conn *c)
{
	struct sidecar *sc = c->sc;
	for (int i = 0; i < READ_BUDGET; i++) {
		if (c->to_tls.len >= HIGH_WATER) {
			io_want(c, &c->pio, c->to_plain.len ? EV_WRITE : 0); /* backpressure */
			return 0;
		}
		ssize_t r = recv(c->pfd, sc->scratch, REC_MAX, 0);
		if (r > 0) {
			c->t_active = ev_now(sc->loop);
			if (c->pmax) {
				if (plain_deliver(c, sc->scratch, (size_t)r) < 0)
					return -1;
			} else {
				unsigned k = msgcount_feed(&c->mc, sc->scratch, (size_t)r);
				c->msgs_out += k;
				count_msgs_out(c, k);
				if (tls_send(c, sc->scratch, (size_t)r) < 0)
					return -1;
			}
			if (r < REC_MAX)
				return 0; /* the socket is most likely drained */
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		c->plain_eof = 1;
		io_want(c, &c->pio, c->to_plain.len ? EV_WRITE : 0);
		if (r < 0)
			log_debug("%s=%s %s=%s plaintext side: %s", section_kind(c), section_name(c), peer_word(c),
				  c->peer.text, strerror(errno));
		return maybe_finish(c);
	}
	/* budget spent: level-triggered epoll brings us back after the others */
	return 0;
}

static int plain_flush(struct conn *c)
{
	while (c->to_plain.len) {
		ssize_t w = send(c->pfd, c->to_plain.d + c->to_plain.off, c->to_plain.len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (w <= 0) {
			conn_close(c, c->role == ROLE_IN ? "backend write failed" : "legacy write failed");
			return -1;
		}
		buf_consume(&c->to_plain, (size_t)w);
	}
	io_want(c, &c->pio, (c->plain_eof || c->want_close) ? 0 : EV_READ);
	if (!c->tls_eof && !c->want_close && c->state == CS_RELAY) {
		io_want(c, &c->tio, EV_READ | (c->to_tls.len ? EV_WRITE : 0));
		/* records GnuTLS already holds will not wake the loop again */
		if ((gnutls_record_check_pending(c->tls) > 0 || ra_pending(c)) && tls_read(c) < 0)
			return -1;
	}
	return maybe_finish(c);
}

/* ---- watchers ------------------------------------------------------------ */

static void tio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	(void)loop;
	if (c->state == CS_HANDSHAKE) {
		do_handshake(c);
		return;
	}
	if (c->state == CS_TCP) {
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(c->tfd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			log_warn("connect=%s server=%s connect failed: %s", section_name(c), c->peer.text,
				 strerror(err));
			close(c->tfd);
			c->tfd = -1;
			ev_io_stop(c->sc->loop, &c->tio);
			out_connect_next(c);
			return;
		}
		c->state = CS_HANDSHAKE;
		set_timer(c, cfg_of(c)->handshake_timeout);
		do_handshake(c);
		return;
	}
	if ((revents & EV_WRITE) && c->to_tls.len && tls_flush(c) < 0)
		return;
	if ((revents & EV_READ) && !c->tls_eof && !c->want_close)
		tls_read(c);
}

void pio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	(void)loop;
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(c->pfd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			backend_failed(c, strerror(err));
			return;
		}
		start_relay(c);
		return;
	}
	if ((revents & EV_WRITE) && c->to_plain.len && plain_flush(c) < 0)
		return;
	if ((revents & EV_READ) && !c->plain_eof && !c->want_close) {
		if (c->state == CS_RELAY)
			plain_read(c);
		else if (c->role == ROLE_OUT && c->state < CS_RELAY) {
			/* legacy server writes before the TLS side is up: hold it, bounded */
			if (c->to_tls.len >= HIGH_WATER) {
				io_want(c, &c->pio, 0);
				return;
			}
			ssize_t r = recv(c->pfd, c->sc->scratch, REC_MAX, 0);
			if (r > 0 && c->pmax) {
				(void)plain_deliver(c, c->sc->scratch, (size_t)r); /* held by tls_send */
			} else if (r > 0) {
				unsigned k = msgcount_feed(&c->mc, c->sc->scratch, (size_t)r);
				c->bytes_out += (size_t)r;
				c->msgs_out += k;
				count_bytes_out(c, (uint64_t)r);
				count_msgs_out(c, k);
				buf_append(&c->to_tls, c->sc->scratch, (size_t)r);
			} else if (r == 0 && c->to_tls.len) {
				/* wrote, then half-closed: deliver what is held, then close */
				c->plain_eof = 1;
				io_want(c, &c->pio, 0);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				conn_close(c, "legacy server closed before the handshake");
			}
		}
	}
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	(void)revents;
	switch (c->state) {
	case CS_RESOLVE:
	case CS_TCP:
		log_warn("connect=%s server=%s%s connect timeout", section_name(c), c->peer.text,
			 c->peer.text[0] ? "" : cfg_of(c)->connect[c->idx].server_host);
		conn_close(c, "connect timeout");
		return;
	case CS_HANDSHAKE:
		conn_refuse(c, "handshake timeout", NULL);
		return;
	case CS_CONNECTING:
		backend_failed(c, "connect timeout");
		return;
	case CS_NOBACKEND:
		finish(c, "backend unavailable");
		return;
	default:
		break;
	}
	if (c->want_close || c->tls_eof || c->plain_eof) {
		conn_close(c, c->reason ? c->reason : "drain timeout");
		return;
	}
	double idle = cfg_of(c)->idle_timeout, until = c->t_active + idle;
	if (c->reg_until > until)
		until = c->reg_until; /* a registered flow lives as long as its binding */
	double mt = cfg_of(c)->message_timeout;
	if (c->t_msg && mt > 0) {
		double mleft = c->t_msg + mt - ev_now(loop);
		if (mleft <= 0.001) {
			count_refusal(c, "message timeout");
			log_warn("%s=%s %s=%s refused: message timeout (%u bytes of a message still incomplete after %.1fs)",
				 section_kind(c), section_name(c), peer_word(c), c->peer.text, c->in.len,
				 ev_now(loop) - c->t_msg);
			c->reason = "message timeout";
			finish(c, "message timeout");
			return;
		}
		if (c->t_msg + mt < until)
			until = c->t_msg + mt;
	}
	double left = until - ev_now(loop);
	if (left > 0.001) {
		set_timer(c, left);
		return;
	}
	finish(c, "idle timeout");
}

/* ---- relay start, backend ------------------------------------------------ */

void start_relay(struct conn *c)
{
	c->state = CS_RELAY;
	if (c->topo && c->sc->flow_tab)
		flow_register(c); /* clients, peer servers and [connect]'s servers alike */
	set_timer(c, cfg_of(c)->idle_timeout);
	io_want(c, &c->pio, (c->plain_eof ? 0 : EV_READ) | (c->to_plain.len ? EV_WRITE : 0));
	io_want(c, &c->tio, EV_READ | (c->to_tls.len ? EV_WRITE : 0));
	if (c->to_plain.len && plain_flush(c) < 0)
		return;
	if (c->to_tls.len && tls_flush(c) < 0)
		return;
	/* records that arrived with the handshake may be buffered in GnuTLS */
	if (c->state == CS_RELAY)
		tls_read(c);
}

/* ---- accept ------------------------------------------------------------- */

struct conn *conn_new(struct sidecar *sc, struct lsock *ls, enum conn_role role)
{
	struct conn *c = xcalloc(1, sizeof *c);
	c->sc = sc;
	c->ls = ls;
	c->role = role;
	c->tfd = c->pfd = -1;
	c->gen = sc->gen;
	gen_ref(c->gen);
	c->idx = (uint32_t)ls->idx;
	c->t_start = c->t_active = ev_now(sc->loop);
	ev_io_init(&c->tio, tio_cb, -1, EV_READ);
	ev_io_init(&c->pio, pio_cb, -1, EV_READ);
	ev_init(&c->timer, timer_cb);
	ev_init(&c->again, resume_cb);
	c->tio.data = c->pio.data = c->timer.data = c->again.data = c;
	c->next = sc->conns;
	if (sc->conns)
		sc->conns->prev = c;
	sc->conns = c;
	sc->nconns++;
	__atomic_add_fetch(sc->total_conns, 1, __ATOMIC_RELAXED);
	c->tsec = tally_section(sc->tallies, role == ROLE_IN ? TALLY_LISTEN : TALLY_CONNECT, section_name(c));
	tally_open(c->tsec, 0);
	tally_add(c->tsec, accepted, 1);
	int framing = role == ROLE_IN ? c->gen->cfg->listen[c->idx].sip_framing
				      : c->gen->cfg->connect[c->idx].sip_framing;
	if (framing) {
		const char *hname = role == ROLE_IN ? c->gen->cfg->listen[c->idx].identity_header
						    : c->gen->cfg->connect[c->idx].identity_header;
		c->sf = xmalloc(sizeof *c->sf);
		sf_init(c->sf, c->gen->cfg->max_message_size, hname);
		int topo_on = role == ROLE_IN ? c->gen->listen[c->idx].topo_on : c->gen->connect[c->idx].topo_on;
		if (topo_on) {
			c->topo = role == ROLE_IN ? &c->gen->listen[c->idx].topo : &c->gen->connect[c->idx].topo;
			/* the legacy server is trusted: its messages are framed to be
			 * translated, with room well past what peers may send */
			size_t max = c->gen->cfg->max_message_size * 4;
			c->pmax = (uint32_t)(max < 1024 * 1024 ? 1024 * 1024 : max > UINT32_MAX ? UINT32_MAX : max);
		}
	}
	return c;
}

/* Counts and logs a refusal at accept, one line a second at most (a flood
 * of refusals must not become a flood of log lines). */
static void accept_refused(struct sidecar *sc, struct lsock *ls, const struct addr *peer, const char *reason,
			   unsigned long open)
{
	double now = ev_now(sc->loop);
	struct tally *t = tally_section(sc->tallies, ls->kind == LSOCK_LISTEN ? TALLY_LISTEN : TALLY_CONNECT, ls->name);
	size_t ri = metrics_refused(sc, reason);
	tally_add(t, refused[ri], 1);
	if (now - sc->last_refuse_log >= 1.0) {
		log_warn("%s=%s peer=%s refused: %s (%lu open%s)", ls->kind == LSOCK_LISTEN ? "listen" : "connect",
			 ls->name, peer->text, reason, open, sc->refuse_suppressed ? ", more refusals not logged" : "");
		sc->last_refuse_log = now;
		sc->refuse_suppressed = 0;
	} else {
		sc->refuse_suppressed++;
	}
}

/* Accepts one socket; refuses it when max-connections is reached. */
int accept_one(struct sidecar *sc, struct lsock *ls, struct addr *peer)
{
	peer->len = sizeof peer->ss;
	int fd = accept4(ls->fd, (struct sockaddr *)&peer->ss, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			listener_pause(ls, errno); /* level-triggered: it would only fail again */
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
			log_err("%s=%s accept: %s", ls->kind == LSOCK_LISTEN ? "listen" : "connect", ls->name,
				strerror(errno));
		return -1;
	}
	addr_format(peer);
	st_add(&sc->st.accepted, 1);
	unsigned long open = __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED);
	if (open >= sc->gen->cfg->max_connections || sc->stopping) {
		accept_refused(sc, ls, peer, "too many connections", open);
		close(fd);
		return -2;
	}
	tune_socket(fd);
	return fd;
}

void conn_accept_tls(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lsock *ls = w->data;
	struct sidecar *sc = ls->sc;
	(void)loop, (void)revents;
	for (int i = 0; i < 64; i++) {
		struct addr peer;
		int fd = accept_one(sc, ls, &peer);
		if (fd == -2)
			continue;
		if (fd < 0)
			return;
		unsigned long per_ip = sc->gen->cfg->listen[ls->idx].max_conns_per_ip, open = 0;
		struct ipslot *slot = NULL;
		if (per_ip && !(slot = ipcount_take(sc->main_ctx->ipcount, &ls->bind, &peer, per_ip, &open))) {
			accept_refused(sc, ls, &peer, "too many connections from address", open);
			close(fd);
			continue;
		}
		struct conn *c = conn_new(sc, ls, ROLE_IN);
		const struct lgen *lg = &c->gen->listen[c->idx];
		c->ipslot = slot;
		c->tfd = fd;
		c->peer = peer;
		c->state = CS_HANDSHAKE;
		int r = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
		if (r >= 0)
			r = gnutls_priority_set(c->tls, lg->prio);
		if (r >= 0)
			r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, lg->cred);
		unsigned char tkbuf[TLS_TICKET_KEY_SIZE];
		gnutls_datum_t tkey = { NULL, 0 };
		if (r >= 0) /* tickets bound to this listener (tls.h) */
			r = tls_ticket_key(&sc->ticket_key, lg->conf, tkbuf, &tkey);
		if (r >= 0)
			r = lg->tkeys ? tkeys_enable(c->tls, lg->tkeys, NULL) : gnutls_session_ticket_enable_server(c->tls, &tkey);
		if (r < 0) {
			log_err("listen=%s peer=%s cannot set up TLS: %s", ls->name, peer.text, gnutls_strerror(r));
			conn_close(c, "setup failed");
			continue;
		}
		if (lg->conf->client_auth != CLIENT_AUTH_NONE)
			gnutls_certificate_server_set_request(c->tls, lg->conf->client_auth == CLIENT_AUTH_REQUIRE
									     ? GNUTLS_CERT_REQUIRE
									     : GNUTLS_CERT_REQUEST);
		gnutls_handshake_set_timeout(c->tls, 0);
		gnutls_session_set_ptr(c->tls, c);
		tls_transport(c);
		ev_io_set(&c->tio, fd, EV_READ);
		set_timer(c, c->gen->cfg->handshake_timeout);
		do_handshake(c); /* the ClientHello is often already there */
	}
}

/* ---- outbound ------------------------------------------------------------ */
