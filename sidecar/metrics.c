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
#include "oneshot.h"
#include "status.h"
#include "tally.h"
#include "workers.h"

const char *const metrics_reasons[METRICS_NREASONS] = {
	"expired", "not yet valid", "unknown ca", "revoked", "name mismatch", "not allowed", "no certificate",
	"bad key usage", "handshake timeout", "too many connections", "message too large", "malformed message",
	"handshake failed", "renegotiation refused", "stale crl", "chain too long", "weak key", "weak signature",
	"malformed name", "handshake too large", "message timeout", "too many connections from address",
	"records too small", "other",
};

_Static_assert(METRICS_NREASONS <= TALLY_NREASONS, "tally.h: room for every reason word");
_Static_assert(METRICS_NREASONS <= sizeof ((struct stats *)0)->refused_by_reason / sizeof(uint64_t),
	       "ctx.h: room for every reason word");

struct metrics {
	struct oneshot *srv;
	struct addr addr;
};

size_t metrics_refused(struct sidecar *sc, const char *reason)
{
	size_t i;
	st_add(&sc->st.refused, 1);
	for (i = 0; i < METRICS_NREASONS - 1; i++)
		if (reason && !strcmp(reason, metrics_reasons[i]))
			break;
	st_add(&sc->st.refused_by_reason[i], 1);
	return i;
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

/* A label value as the text format wants it: backslash, quote and newline
 * escaped. Peer identities come from certificates, so anything may be in
 * them. */
static const char *esc(char *out, size_t size, const char *s)
{
	size_t o = 0;
	for (; *s && o + 3 < size; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
	return out;
}

#define FAMILY(name, type, help) \
	put(b, len, cap, "# HELP sip_sidecar_" name " " help "\n# TYPE sip_sidecar_" name " " type "\n")
#define V(f) ((unsigned long long)tally_get(&(f)))

/* The per-section families: one series per section name ever configured. */
static void render_sections(struct sidecar *sc, char **b, size_t *len, size_t *cap)
{
	struct tally **v;
	size_t n = tally_sections(sc->tallies, &v);
	char lab[600], name[520];
	/* the labels of section i, in lab */
#define LAB(i) (snprintf(lab, sizeof lab, "kind=\"%s\",section=\"%s\"", \
			 v[i]->kind == TALLY_LISTEN ? "listen" : "connect", esc(name, sizeof name, v[i]->name)), lab)
	const struct config *cfg = sc->gen->cfg;
	FAMILY("section_info", "gauge", "The sections in force: bind address and client-auth of each.");
	for (size_t i = 0; i < cfg->nlisten; i++) {
		static const char *const auth[] = { "none", "optional", "require" };
		put(b, len, cap, "sip_sidecar_section_info{kind=\"listen\",section=\"%s\",bind=\"%s\",client_auth=\"%s\"} 1\n",
		    esc(name, sizeof name, cfg->listen[i].name), cfg->listen[i].bind.text,
		    auth[cfg->listen[i].client_auth]);
	}
	for (size_t i = 0; i < cfg->nconnect; i++)
		put(b, len, cap, "sip_sidecar_section_info{kind=\"connect\",section=\"%s\",bind=\"%s\",client_auth=\"require\"} 1\n",
		    esc(name, sizeof name, cfg->connect[i].name), cfg->connect[i].bind.text);
	FAMILY("section_connections", "gauge", "Open connections, by [listen]/[connect] section.");
	for (size_t i = 0; i < n; i++)
		put(b, len, cap, "sip_sidecar_section_connections{%s} %llu\n", LAB(i), V(v[i]->open));
	FAMILY("section_accepted_total", "counter", "TCP connections accepted, by section.");
	for (size_t i = 0; i < n; i++)
		put(b, len, cap, "sip_sidecar_section_accepted_total{%s} %llu\n", LAB(i), V(v[i]->accepted));
	FAMILY("section_handshakes_total", "counter", "TLS handshakes admitted, by section and type.");
	for (size_t i = 0; i < n; i++) {
		unsigned long long all = V(v[i]->handshakes), res = V(v[i]->resumed);
		put(b, len, cap, "sip_sidecar_section_handshakes_total{%s,type=\"full\"} %llu\n", LAB(i),
		    all > res ? all - res : 0);
		put(b, len, cap, "sip_sidecar_section_handshakes_total{%s,type=\"resumed\"} %llu\n", LAB(i), res);
	}
	FAMILY("section_bytes_total", "counter", "Bytes from (in) and to (out) TLS peers, by section.");
	for (size_t i = 0; i < n; i++) {
		put(b, len, cap, "sip_sidecar_section_bytes_total{%s,direction=\"in\"} %llu\n", LAB(i), V(v[i]->bytes_in));
		put(b, len, cap, "sip_sidecar_section_bytes_total{%s,direction=\"out\"} %llu\n", LAB(i),
		    V(v[i]->bytes_out));
	}
	FAMILY("section_messages_total", "counter", "SIP messages from (in) and to (out) TLS peers, by section.");
	for (size_t i = 0; i < n; i++) {
		put(b, len, cap, "sip_sidecar_section_messages_total{%s,direction=\"in\"} %llu\n", LAB(i),
		    V(v[i]->msgs_in));
		put(b, len, cap, "sip_sidecar_section_messages_total{%s,direction=\"out\"} %llu\n", LAB(i),
		    V(v[i]->msgs_out));
	}
	FAMILY("section_backend_failures_total", "counter",
	       "Times the legacy server could not be reached for a connection, by section.");
	for (size_t i = 0; i < n; i++)
		if (v[i]->kind == TALLY_LISTEN)
			put(b, len, cap, "sip_sidecar_section_backend_failures_total{%s} %llu\n", LAB(i),
			    V(v[i]->backend_failures));
	FAMILY("section_answers_total", "counter", "SIP answers the sidecar wrote itself, by section and code.");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < TA_N; k++)
			if (tally_answer_codes[k] != 430) /* 430 goes to the legacy server */
				put(b, len, cap, "sip_sidecar_section_answers_total{%s,code=\"%d\"} %llu\n", LAB(i),
				    tally_answer_codes[k], V(v[i]->answers[k]));
	FAMILY("section_refused_total", "counter", "Connections and messages refused, by section and reason.");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < METRICS_NREASONS; k++)
			put(b, len, cap, "sip_sidecar_section_refused_total{%s,reason=\"%s\"} %llu\n", LAB(i),
			    metrics_reasons[k], V(v[i]->refused[k]));
#undef LAB
}

/* The per-peer families: verified identities up to metrics-peers, then
 * "other"; anonymous clients are not here. */
static void render_peers(struct sidecar *sc, char **b, size_t *len, size_t *cap)
{
	struct tally **pv;
	size_t n = tally_peers(sc->tallies, &pv);
	struct tally *v[TALLY_MAX_PEERS + 1];
	char name[520];
	memcpy(v, pv, n * sizeof *v);
	v[n++] = sc->tallies->other;
	FAMILY("peer_connections", "gauge", "Open connections, by verified peer identity.");
	for (size_t i = 0; i < n; i++)
		put(b, len, cap, "sip_sidecar_peer_connections{peer=\"%s\"} %llu\n", esc(name, sizeof name, v[i]->name),
		    V(v[i]->open));
	FAMILY("peer_connected_since_seconds", "gauge",
	       "When a connected peer's open connections last went from none to one (Unix time).");
	for (size_t i = 0; i < n; i++)
		if (tally_get(&v[i]->open))
			put(b, len, cap, "sip_sidecar_peer_connected_since_seconds{peer=\"%s\"} %lld\n",
			    esc(name, sizeof name, v[i]->name), (long long)__atomic_load_n(&v[i]->since, __ATOMIC_RELAXED));
	FAMILY("peer_messages_total", "counter", "SIP messages from (in) and to (out) a verified peer.");
	for (size_t i = 0; i < n; i++) {
		esc(name, sizeof name, v[i]->name);
		put(b, len, cap, "sip_sidecar_peer_messages_total{peer=\"%s\",direction=\"in\"} %llu\n", name,
		    V(v[i]->msgs_in));
		put(b, len, cap, "sip_sidecar_peer_messages_total{peer=\"%s\",direction=\"out\"} %llu\n", name,
		    V(v[i]->msgs_out));
	}
	FAMILY("peer_refused_total", "counter",
	       "Refusals of a verified peer (on reload, resumption, or for its messages), by reason.");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < METRICS_NREASONS; k++)
			if (tally_get(&v[i]->refused[k]))
				put(b, len, cap, "sip_sidecar_peer_refused_total{peer=\"%s\",reason=\"%s\"} %llu\n",
				    esc(name, sizeof name, v[i]->name), metrics_reasons[k], V(v[i]->refused[k]));
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
	put(&b, &len, &cap, "# HELP sip_sidecar_answers_total SIP answers the sidecar wrote itself, by code.\n"
			    "# TYPE sip_sidecar_answers_total counter\n");
	for (int i = 0; i < TA_N; i++)
		put(&b, &len, &cap, "sip_sidecar_answers_total{code=\"%d\"} %llu\n", tally_answer_codes[i],
		    (unsigned long long)st->answers[i]);
	render_sections(sc, &b, &len, &cap);
	render_peers(sc, &b, &len, &cap);
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

/* The HTTP answer: /status.json for `sip-sidecar status`, the metrics
 * page for anything else. */
static char *answer(struct sidecar *sc, const char *req, size_t *len)
{
	size_t blen;
	int json = !strncmp(req, "GET /status.json ", 17), text = !strncmp(req, "GET /status.text ", 17),
	    ansi = !strncmp(req, "GET /status.ansi ", 17);
	char *body = json ? status_render(sc, STATUS_JSON, &blen)
		     : text || ansi ? status_render(sc, ansi ? STATUS_COLOR : STATUS_TEXT, &blen)
				    : render(sc, &blen);
	char head[200];
	int hl = snprintf(head, sizeof head,
			  "HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			  json ? "application/json" : text || ansi ? "text/plain; charset=utf-8" : "text/plain; version=0.0.4",
			  blen);
	char *out = xmalloc((size_t)hl + blen);
	memcpy(out, head, (size_t)hl);
	memcpy(out + hl, body, blen);
	free(body);
	*len = (size_t)hl + blen;
	return out;
}

void metrics_close(struct sidecar *sc)
{
	struct metrics *mt = sc->metrics;
	if (!mt)
		return;
	oneshot_stop(mt->srv);
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
	mt->addr = cfg->metrics_addr;
	mt->srv = oneshot_start(sc, fd, answer);
	sc->metrics = mt;
	log_info("metrics on http://%s/metrics", mt->addr.text);
	return 0;
}
