/*
 * metrics: a minimal HTTP/1.0 server answering every request on its socket
 * with the counters in Prometheus text format, then closing.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "workers.h"

const char *const metrics_reasons[METRICS_NREASONS] = {
	"expired", "not yet valid", "unknown ca", "revoked", "name mismatch", "not allowed", "no certificate",
	"bad key usage", "handshake timeout", "too many connections", "message too large", "malformed message",
	"handshake failed", "renegotiation refused", "handshake too large", "message timeout",
	"too many connections from address", "records too small", "other",
};

_Static_assert(METRICS_NREASONS <= sizeof ((struct stats *)0)->refused_by_reason / sizeof(uint64_t),
	       "refused_by_reason in ctx.h holds every reason");

struct metrics {
	int fd;
	ev_io io;
	struct addr addr;
	struct sidecar *sc;
};

struct mclient {
	ev_io io;
	ev_timer timer;
	int fd;
	struct sidecar *sc;
};

void metrics_refused(struct sidecar *sc, const char *reason)
{
	size_t i;
	st_add(&sc->st.refused, 1);
	for (i = 0; i < METRICS_NREASONS - 1; i++)
		if (reason && !strcmp(reason, metrics_reasons[i]))
			break;
	st_add(&sc->st.refused_by_reason[i], 1);
}

/* Appends printf output to a growing buffer. */
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < *cap - *len) {
			*len += (size_t)n;
			return;
		}
		*cap = (*cap + (size_t)n) * 2;
		*buf = xrealloc(*buf, *cap);
	}
}

static char *render(struct sidecar *sc, size_t *out_len)
{
	size_t len = 0, cap = 8192;
	char *b = xmalloc(cap);
	struct stats sum;
	workers_stats(sc, &sum);
	const struct stats *st = &sum;
#define C(name, help, v)                                                                                   \
	put(&b, &len, &cap, "# HELP sip_sidecar_" name " " help "\n# TYPE sip_sidecar_" name " counter\n"  \
			    "sip_sidecar_" name " %llu\n",                                                 \
	    (unsigned long long)(v))
	put(&b, &len, &cap, "# HELP sip_sidecar_connections Open connections.\n# TYPE sip_sidecar_connections gauge\n"
			    "sip_sidecar_connections %lu\n",
	    __atomic_load_n(sc->total_conns, __ATOMIC_RELAXED));
	C("accepted_total", "TCP connections accepted.", st->accepted);
	C("handshakes_total", "TLS handshakes completed and admitted.", st->handshakes);
	C("resumed_total", "Admitted handshakes that resumed a session.", st->resumed);
	C("closed_total", "Connections closed.", st->closed);
	C("bytes_in_total", "Bytes received from TLS peers.", st->bytes_in);
	C("bytes_out_total", "Bytes sent to TLS peers.", st->bytes_out);
	C("messages_in_total", "SIP messages from TLS peers.", st->msgs_in);
	C("messages_out_total", "SIP messages to TLS peers.", st->msgs_out);
	C("reloads_ok_total", "Successful reloads.", sc->st.reloads_ok);
	C("reloads_failed_total", "Failed reloads.", sc->st.reloads_failed);
	put(&b, &len, &cap,
	    "# HELP sip_sidecar_last_reload_success_timestamp_seconds When the configuration in force was loaded.\n"
	    "# TYPE sip_sidecar_last_reload_success_timestamp_seconds gauge\n"
	    "sip_sidecar_last_reload_success_timestamp_seconds %lld\n",
	    (long long)sc->loaded_at);
	put(&b, &len, &cap,
	    "# HELP sip_sidecar_build_info The daemon's version and libraries.\n"
	    "# TYPE sip_sidecar_build_info gauge\n"
	    "sip_sidecar_build_info{version=\"%s\",gnutls=\"%s\",libev=\"%d.%d\"} 1\n",
	    PACKAGE_VERSION, gnutls_check_version(NULL), ev_version_major(), ev_version_minor());
	put(&b, &len, &cap, "# HELP sip_sidecar_refused_total Connections refused, by reason.\n"
			    "# TYPE sip_sidecar_refused_total counter\n");
	for (size_t i = 0; i < METRICS_NREASONS; i++)
		put(&b, &len, &cap, "sip_sidecar_refused_total{reason=\"%s\"} %llu\n", metrics_reasons[i],
		    (unsigned long long)st->refused_by_reason[i]);
	put(&b, &len, &cap, "# HELP sip_sidecar_generation Configuration generation in force.\n"
			    "# TYPE sip_sidecar_generation gauge\nsip_sidecar_generation %lu\n", sc->gen->id);
	put(&b, &len, &cap, "# HELP sip_sidecar_cert_not_after_seconds Expiry (CRL: nextUpdate) of loaded material.\n"
			    "# TYPE sip_sidecar_cert_not_after_seconds gauge\n");
	for (size_t i = 0; i < sc->gen->ncerts; i++) {
		const struct certinfo *ci = &sc->gen->certs[i];
		if (ci->not_after <= 0 || strpbrk(ci->file, "\"\\\n"))
			continue;
		/* a file loaded by several sections is one series */
		size_t j;
		for (j = 0; j < i; j++)
			if (!strcmp(sc->gen->certs[j].kind, ci->kind) && !strcmp(sc->gen->certs[j].file, ci->file) &&
			    !strcmp(sc->gen->certs[j].serial, ci->serial))
				break;
		if (j < i)
			continue;
		put(&b, &len, &cap, "sip_sidecar_cert_not_after_seconds{kind=\"%s\",file=\"%s\",serial=\"%s\"} %lld\n",
		    ci->kind, ci->file, ci->serial, (long long)ci->not_after);
	}
#undef C
	*out_len = len;
	return b;
}

static void client_free(struct mclient *m)
{
	ev_io_stop(m->sc->loop, &m->io);
	ev_timer_stop(m->sc->loop, &m->timer);
	close(m->fd);
	free(m);
}

static void client_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mclient *m = w->data;
	char req[2048];
	(void)loop, (void)revents;
	ssize_t r = recv(m->fd, req, sizeof req, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r > 0) {
		size_t blen;
		char *body = render(m->sc, &blen);
		char head[160];
		int hl = snprintf(head, sizeof head,
				  "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
		/* small answers: the socket buffer takes them whole */
		if (send(m->fd, head, (size_t)hl, MSG_NOSIGNAL) < 0 || send(m->fd, body, blen, MSG_NOSIGNAL) < 0)
			log_debug("metrics: send: %s", strerror(errno));
		free(body);
	}
	client_free(m);
}

static void client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	client_free(w->data);
}

static void metrics_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics *mt = w->data;
	(void)revents;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(mt->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct mclient *m = xcalloc(1, sizeof *m);
		m->fd = fd;
		m->sc = mt->sc;
		ev_io_init(&m->io, client_read, fd, EV_READ);
		ev_timer_init(&m->timer, client_timeout, 2., 0.);
		m->io.data = m->timer.data = m;
		ev_io_start(loop, &m->io);
		ev_timer_start(loop, &m->timer);
	}
}

void metrics_close(struct sidecar *sc)
{
	struct metrics *mt = sc->metrics;
	if (!mt)
		return;
	ev_io_stop(sc->loop, &mt->io);
	close(mt->fd);
	free(mt);
	sc->metrics = NULL;
}

int metrics_apply(struct sidecar *sc, struct diag *d)
{
	const struct config *cfg = sc->gen->cfg;
	struct metrics *old = sc->metrics;
	if (!cfg->metrics) {
		metrics_close(sc);
		return 0;
	}
	if (old && !strcmp(old->addr.text, cfg->metrics_addr.text))
		return 0;
	int fd = socket(cfg->metrics_addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (const struct sockaddr *)&cfg->metrics_addr.ss, cfg->metrics_addr.len) < 0 || listen(fd, 64) < 0) {
		diag_add(d, cfg->file, 0, "cannot listen on %s for metrics: %s", cfg->metrics_addr.text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	metrics_close(sc);
	struct metrics *mt = xcalloc(1, sizeof *mt);
	mt->fd = fd;
	mt->sc = sc;
	mt->addr = cfg->metrics_addr;
	ev_io_init(&mt->io, metrics_accept, fd, EV_READ);
	mt->io.data = mt;
	ev_io_start(sc->loop, &mt->io);
	sc->metrics = mt;
	log_info("metrics on http://%s/metrics", mt->addr.text);
	return 0;
}
