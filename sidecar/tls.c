/*
 * tls: builds generations (credentials, priorities, trust sets) from a
 * config, and frees them when their last connection is gone.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tickets.h"
#include "tls.h"

/* Priority suffix that keeps every listener at TLS 1.2 or newer. */
#define TLS_FLOOR ":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-DTLS-ALL"


/* Checks that path can be opened for reading; reports to d otherwise. */
static int readable(const char *path, const char *file, unsigned line, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		diag_add(d, file, line, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static void add_certinfo(struct gen *g, const char *path, unsigned line, const char *kind, const char *serial,
			 const char *subject, time_t not_after)
{
	g->certs = xrealloc(g->certs, (g->ncerts + 1) * sizeof *g->certs);
	struct certinfo *ci = &g->certs[g->ncerts++];
	memset(ci, 0, sizeof *ci);
	ci->file = xstrdup(path);
	ci->line = line;
	ci->kind = xstrdup(kind);
	snprintf(ci->serial, sizeof ci->serial, "%s", serial);
	snprintf(ci->subject, sizeof ci->subject, "%s", subject);
	ci->not_after = not_after;
}

static void crt_facts(gnutls_x509_crt_t crt, char *serial, size_t slen, char *subject, size_t sublen)
{
	unsigned char sb[40];
	size_t sbl = sizeof sb;
	serial[0] = subject[0] = '\0';
	if (gnutls_x509_crt_get_serial(crt, sb, &sbl) == 0) {
		size_t o = 0;
		for (size_t i = 0; i < sbl && o + 3 < slen; i++)
			o += (size_t)snprintf(serial + o, slen - o, "%02x", sb[i]);
	}
	gnutls_datum_t dn = { NULL, 0 };
	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
		snprintf(subject, sublen, "%s", (char *)dn.data);
		gnutls_free(dn.data);
	}
}

/* Loads the certificates of a PEM file; returns the count (0 on error). */
static unsigned load_crts(const char *path, gnutls_x509_crt_t **crts, const char *file, unsigned line,
			  struct diag *d)
{
	gnutls_datum_t data = { NULL, 0 };
	unsigned n = 0;
	int r = gnutls_load_file(path, &data);
	if (r < 0) {
		diag_add(d, file, line, "cannot read %s: %s", path, gnutls_strerror(r));
		return 0;
	}
	r = gnutls_x509_crt_list_import2(crts, &n, &data, GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(data.data);
	if (r < 0 || n == 0) {
		diag_add(d, file, line, "no certificate in %s%s%s", path, r < 0 ? ": " : "",
			 r < 0 ? gnutls_strerror(r) : "");
		return 0;
	}
	return n;
}

static void free_crts(gnutls_x509_crt_t *crts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
}

/* Warns when a private key file can be read by others than its owner. */
static void key_mode_check(const char *path, const char *file, unsigned line, struct diag *w)
{
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		diag_add(w, file, line, "private key %s is readable by group or others (mode %03o): chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
}

/* Adds one own certificate + key to cred, checking it thoroughly. */
static int load_keypair(struct gen *g, gnutls_certificate_credentials_t cred, const struct cval *cert,
			const struct cval *key, const char *file, struct diag *d, struct diag *w)
{
	if (readable(cert->s, file, cert->line, d) < 0 || readable(key->s, file, key->line, d) < 0)
		return -1;
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = load_crts(cert->s, &crts, file, cert->line, d);
	if (!n)
		return -1;
	time_t now = time(NULL), exp = gnutls_x509_crt_get_expiration_time(crts[0]);
	time_t act = gnutls_x509_crt_get_activation_time(crts[0]);
	char serial[64], subject[200];
	crt_facts(crts[0], serial, sizeof serial, subject, sizeof subject);
	free_crts(crts, n);
	if (exp != (time_t)-1 && exp < now) {
		char when[32];
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", gmtime(&exp));
		diag_add(d, file, cert->line, "certificate %s expired on %s", cert->s, when);
		return -1;
	}
	if (act != (time_t)-1 && act > now) {
		diag_add(d, file, cert->line, "certificate %s is not yet valid", cert->s);
		return -1;
	}
	int r = gnutls_certificate_set_x509_key_file2(cred, cert->s, key->s, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
		diag_add(d, file, key->line, "key %s does not match certificate %s", key->s, cert->s);
		return -1;
	}
	if (r < 0) {
		diag_add(d, file, key->line, "cannot load certificate %s with key %s: %s", cert->s, key->s,
			 gnutls_strerror(r));
		return -1;
	}
	key_mode_check(key->s, file, key->line, w);
	add_certinfo(g, cert->s, cert->line, "certificate", serial, subject, exp);
	return 0;
}

/* Adds CA bundles then CRLs to tl (and the CAs to cred for the CA names
 * hint when cred is not NULL). */
static int load_trust(struct gen *g, gnutls_x509_trust_list_t tl, gnutls_certificate_credentials_t cred,
		      const struct clist *ca, const struct clist *crl, const char *file, struct diag *d)
{
	int bad = 0;
	gnutls_x509_crt_t *all = NULL; /* every CA of the section, to check CRL signatures */
	unsigned nall = 0;
	for (size_t i = 0; i < ca->n; i++) {
		const struct cval *v = &ca->v[i];
		if (readable(v->s, file, v->line, d) < 0) {
			bad = 1;
			continue;
		}
		gnutls_x509_crt_t *crts = NULL;
		unsigned n = load_crts(v->s, &crts, file, v->line, d);
		if (!n) {
			bad = 1;
			continue;
		}
		all = xrealloc(all, (nall + n) * sizeof *all);
		for (unsigned k = 0; k < n; k++) {
			char serial[64], subject[200];
			crt_facts(crts[k], serial, sizeof serial, subject, sizeof subject);
			add_certinfo(g, v->s, v->line, "CA", serial, subject,
				     gnutls_x509_crt_get_expiration_time(crts[k]));
			all[nall++] = crts[k];
		}
		gnutls_free(crts); /* the certificates themselves live on in all[] */
		int r = gnutls_x509_trust_list_add_trust_file(tl, v->s, NULL, GNUTLS_X509_FMT_PEM,
							      GNUTLS_TL_NO_DUPLICATES, 0);
		if (r <= 0) {
			diag_add(d, file, v->line, "no usable CA certificate in %s%s%s", v->s, r < 0 ? ": " : "",
				 r < 0 ? gnutls_strerror(r) : "");
			bad = 1;
			continue;
		}
		if (cred) {
			r = gnutls_certificate_set_x509_trust_file(cred, v->s, GNUTLS_X509_FMT_PEM);
			if (r < 0) {
				diag_add(d, file, v->line, "cannot load CA %s: %s", v->s, gnutls_strerror(r));
				bad = 1;
			}
		}
	}
	for (size_t i = 0; i < crl->n; i++) {
		const struct cval *v = &crl->v[i];
		if (readable(v->s, file, v->line, d) < 0) {
			bad = 1;
			continue;
		}
		gnutls_datum_t data = { NULL, 0 };
		gnutls_x509_crl_t *crls = NULL;
		unsigned n = 0;
		int r = gnutls_load_file(v->s, &data);
		if (r >= 0) {
			r = gnutls_x509_crl_list_import2(&crls, &n, &data, GNUTLS_X509_FMT_PEM, 0);
			gnutls_free(data.data);
		}
		if (r < 0 || n == 0) {
			diag_add(d, file, v->line, "no CRL in %s%s%s", v->s, r < 0 ? ": " : "",
				 r < 0 ? gnutls_strerror(r) : "");
			bad = 1;
			continue;
		}
		int signed_ok = 1;
		for (unsigned k = 0; k < n; k++) {
			char issuer[200] = "";
			size_t il = sizeof issuer;
			if (gnutls_x509_crl_get_issuer_dn(crls[k], issuer, &il) < 0)
				issuer[0] = '\0';
			time_t next = gnutls_x509_crl_get_next_update(crls[k]);
			add_certinfo(g, v->s, v->line, "CRL", "", issuer, next == (time_t)-1 ? 0 : next);
			/* The signature must come from a CA of this section. A CRL past
			 * its nextUpdate still counts (what it revokes stays revoked);
			 * the expiry report says it is stale, and reloads keep working. */
			unsigned status = 0;
			if (!nall || gnutls_x509_crl_verify(crls[k], all, nall, 0, &status) < 0 ||
			    (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA |
				       GNUTLS_CERT_SIGNATURE_FAILURE | GNUTLS_CERT_INSECURE_ALGORITHM)))
				signed_ok = 0;
			gnutls_x509_crl_deinit(crls[k]);
		}
		gnutls_free(crls);
		if (!signed_ok) {
			diag_add(d, file, v->line, "CRL %s is not signed by a CA of this section", v->s);
			bad = 1;
			continue;
		}
		r = gnutls_x509_trust_list_add_trust_file(tl, NULL, v->s, GNUTLS_X509_FMT_PEM, 0, 0);
		if (r < 0 || (unsigned)r < n) {
			diag_add(d, file, v->line, "cannot load CRL %s%s%s", v->s, r < 0 ? ": " : "",
				 r < 0 ? gnutls_strerror(r) : "");
			bad = 1;
		}
	}
	for (unsigned k = 0; k < nall; k++)
		gnutls_x509_crt_deinit(all[k]);
	free(all);
	return bad ? -1 : 0;
}

/* Initialises *prio from the configured string (or the default), always
 * with TLS 1.0/1.1 removed. */
static int load_priority(gnutls_priority_t *prio, const char *conf, unsigned line, const char *file,
			 struct diag *d)
{
	char buf[1024];
	const char *err = NULL;
	snprintf(buf, sizeof buf, "%s%s", conf ? conf : DEFAULT_TLS_PRIORITY, TLS_FLOOR);
	int r = gnutls_priority_init2(prio, buf, &err, 0);
	if (r < 0) {
		diag_add(d, file, line, "invalid tls-priority: %s%s%.40s", gnutls_strerror(r),
			 err ? " near " : "", err ? err : "");
		*prio = NULL;
		return -1;
	}
	return 0;
}

/* The first DNS name of the listener's first certificate (else its CN). */
static int cert_dns_name(gnutls_certificate_credentials_t cred, char *out, size_t outsz)
{
	gnutls_datum_t der;
	gnutls_x509_crt_t crt;
	int found = 0;
	if (gnutls_certificate_get_crt_raw(cred, 0, 0, &der) < 0 || gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) >= 0) {
		for (unsigned k = 0; k < 64 && !found; k++) {
			char name[TOPO_HOST_MAX];
			size_t n = sizeof name;
			int t = gnutls_x509_crt_get_subject_alt_name(crt, k, name, &n, NULL);
			if (t < 0)
				break;
			if (t == GNUTLS_SAN_DNSNAME && n < outsz && !strchr(name, '*')) {
				memcpy(out, name, n);
				out[n] = '\0';
				found = 1;
			}
		}
		if (!found) {
			size_t n = outsz;
			if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, out, &n) >= 0 && n)
				found = 1;
		}
	}
	gnutls_x509_crt_deinit(crt);
	return found ? 0 : -1;
}

static void host_for_uri(char *out, size_t outsz, const char *host)
{
	snprintf(out, outsz, strchr(host, ':') ? "[%s]" : "%s", host);
}

/* The addresses a listener translates between. */
static int setup_topology(struct gen *g, size_t i, struct diag *d)
{
	const struct listen_conf *lc = &g->cfg->listen[i];
	struct lgen *lg = &g->listen[i];
	struct topo_cfg *t = &lg->topo;
	lg->topo_on = lc->topology && lc->sip_framing;
	/* backend: "127.0.0.1:5060" / "[::1]:5060" */
	const char *colon = strrchr(lc->backend.text, ':');
	size_t hl = colon ? (size_t)(colon - lc->backend.text) : 0;
	if (!colon || hl >= sizeof t->back_host)
		return -1;
	memcpy(t->back_host, lc->backend.text, hl);
	t->back_host[hl] = '\0';
	t->back_port = (unsigned)strtoul(colon + 1, NULL, 10);
	const char *bcolon = strrchr(lc->bind.text, ':');
	t->adv_port = lc->advertise_port ? lc->advertise_port : (unsigned)strtoul(bcolon + 1, NULL, 10);
	if (lc->advertise_host) {
		host_for_uri(t->adv_host, sizeof t->adv_host, lc->advertise_host);
	} else if (cert_dns_name(lg->cred, t->adv_host, sizeof t->adv_host) < 0) {
		if (lg->topo_on) {
			diag_add(d, g->cfg->file, lc->line,
				 "[listen %s] needs 'advertise': its certificate names no host", lc->name);
			return -1;
		}
	}
	host_for_uri(t->flow_host, sizeof t->flow_host, g->cfg->flow_host);
	return 0;
}

void gen_set_flow_host(struct gen *g)
{
	for (size_t i = 0; i < g->cfg->nlisten; i++)
		host_for_uri(g->listen[i].topo.flow_host, sizeof g->listen[i].topo.flow_host, g->cfg->flow_host);
	for (size_t i = 0; i < g->cfg->nconnect; i++)
		host_for_uri(g->connect[i].topo.flow_host, sizeof g->connect[i].topo.flow_host, g->cfg->flow_host);
}

void gen_set_flow_key(struct gen *g, const struct topo_key *key)
{
	for (size_t i = 0; i < g->cfg->nlisten; i++)
		g->listen[i].topo.key = key;
	for (size_t i = 0; i < g->cfg->nconnect; i++)
		g->connect[i].topo.key = key;
}

static int build_listen(struct gen *g, size_t i, struct diag *d, struct diag *w)
{
	const struct listen_conf *lc = &g->cfg->listen[i];
	struct lgen *lg = &g->listen[i];
	const char *file = g->cfg->file;
	int bad = 0, r;
	lg->conf = lc;
	if ((r = gnutls_certificate_allocate_credentials(&lg->cred)) < 0) {
		diag_add(d, file, lc->line, "GnuTLS: %s", gnutls_strerror(r));
		return -1;
	}
	for (size_t k = 0; k < lc->cert.n && k < lc->key.n; k++)
		if (load_keypair(g, lg->cred, &lc->cert.v[k], &lc->key.v[k], file, d, w) < 0)
			bad = 1;
	if (load_priority(&lg->prio, lc->tls_priority, lc->tls_priority_line ? lc->tls_priority_line : lc->line,
			  file, d) < 0)
		bad = 1;
	if (!bad && setup_topology(g, i, d) < 0)
		bad = 1;
	if (lc->client_auth == CLIENT_AUTH_NONE)
		return bad ? -1 : 0;

	gnutls_certificate_set_verify_function(lg->cred, conn_tls_verify);
	lg->sets = xcalloc(1 + lc->trust.n, sizeof *lg->sets);
	if (lc->ca.n) {
		if ((r = gnutls_x509_trust_list_init(&lg->own_tl, 0)) < 0) {
			diag_add(d, file, lc->line, "GnuTLS: %s", gnutls_strerror(r));
			return -1;
		}
		if (load_trust(g, lg->own_tl, lg->cred, &lc->ca, &lc->crl, file, d) < 0)
			bad = 1;
		lg->allow = xcalloc(lc->allow_peer.n + 1, sizeof *lg->allow);
		for (size_t k = 0; k < lc->allow_peer.n; k++)
			lg->allow[k] = lc->allow_peer.v[k].s;
		struct trust_set *ts = &lg->sets[lg->nsets++];
		ts->name = "ca";
		ts->tl = lg->own_tl;
		ts->peers = lg->allow;
		ts->npeers = lc->allow_peer.n;
	}
	for (size_t k = 0; k < lc->trust.n; k++)
		for (size_t t = 0; t < g->cfg->ntrust; t++) {
			struct trust_conf *tc = &g->cfg->trust[t];
			if (strcmp(tc->name, lc->trust.v[k].s))
				continue;
			struct trust_set *ts = &lg->sets[lg->nsets++];
			ts->name = tc->name;
			ts->tl = g->trust_tl[t];
			ts->peers = xcalloc(tc->peer.n + 1, sizeof *ts->peers);
			for (size_t j = 0; j < tc->peer.n; j++)
				ts->peers[j] = tc->peer.v[j].s;
			ts->npeers = tc->peer.n;
			/* CA names in the CertificateRequest cover partners too */
			for (size_t j = 0; j < tc->ca.n; j++)
				if (gnutls_certificate_set_x509_trust_file(lg->cred, tc->ca.v[j].s,
									   GNUTLS_X509_FMT_PEM) < 0)
					bad = 1;
		}
	lg->policy.sets = lg->sets;
	lg->policy.nsets = lg->nsets;
	lg->policy.purpose = VERIFY_PURPOSE_CLIENT;
	lg->policy.mismatch_reason = "not allowed";
	return bad ? -1 : 0;
}

static int build_connect(struct gen *g, size_t i, struct diag *d, struct diag *w)
{
	const struct connect_conf *cc = &g->cfg->connect[i];
	struct cgen *cg = &g->connect[i];
	const char *file = g->cfg->file;
	int bad = 0, r;
	cg->conf = cc;
	if ((r = gnutls_certificate_allocate_credentials(&cg->cred)) < 0 ||
	    (r = gnutls_x509_trust_list_init(&cg->tl, 0)) < 0) {
		diag_add(d, file, cc->line, "GnuTLS: %s", gnutls_strerror(r));
		return -1;
	}
	if (cc->cert.n && cc->key.n &&
	    load_keypair(g, cg->cred, &cc->cert.v[0], &cc->key.v[0], file, d, w) < 0)
		bad = 1;
	if (load_trust(g, cg->tl, NULL, &cc->ca, &cc->crl, file, d) < 0)
		bad = 1;
	if (load_priority(&cg->prio, cc->tls_priority, cc->tls_priority_line ? cc->tls_priority_line : cc->line,
			  file, d) < 0)
		bad = 1;
	gnutls_certificate_set_verify_function(cg->cred, conn_tls_verify);
	cg->peer = cc->server_name;
	cg->set.name = "ca";
	cg->set.tl = cg->tl;
	cg->set.peers = &cg->peer;
	cg->set.npeers = cg->peer ? 1 : 0;
	cg->policy.sets = &cg->set;
	cg->policy.nsets = 1;
	cg->policy.purpose = VERIFY_PURPOSE_SERVER;
	cg->policy.mismatch_reason = "name mismatch";
	return bad ? -1 : 0;
}

struct gen *gen_build(struct config *cfg, struct diag *d, struct diag *w)
{
	struct gen *g = xcalloc(1, sizeof *g);
	int bad = 0, r;
	g->refs = 1;
	g->cfg = cfg;
	g->listen = xcalloc(cfg->nlisten, sizeof *g->listen);
	g->connect = xcalloc(cfg->nconnect, sizeof *g->connect);
	g->trust_tl = xcalloc(cfg->ntrust, sizeof *g->trust_tl);
	for (size_t t = 0; t < cfg->ntrust; t++) {
		if ((r = gnutls_x509_trust_list_init(&g->trust_tl[t], 0)) < 0) {
			diag_add(d, cfg->file, cfg->trust[t].line, "GnuTLS: %s", gnutls_strerror(r));
			bad = 1;
			continue;
		}
		if (load_trust(g, g->trust_tl[t], NULL, &cfg->trust[t].ca, &cfg->trust[t].crl, cfg->file, d) < 0)
			bad = 1;
	}
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (build_listen(g, i, d, w) < 0)
			bad = 1;
	for (size_t i = 0; i < cfg->nconnect; i++)
		if (build_connect(g, i, d, w) < 0)
			bad = 1;
	if (cfg->ticket_key_file &&
	    !(g->tkeys = tkeys_load(cfg->ticket_key_file, cfg->file, cfg->ticket_key_line, d, w)))
		bad = 1;
	/* [connect]: the legacy server's own address, as the first [listen]
	 * knows it, goes out as that listener's advertised one */
	for (size_t i = 0; i < cfg->nconnect && cfg->nlisten && !bad; i++) {
		g->connect[i].topo = g->listen[0].topo;
		g->connect[i].topo_on = g->listen[0].topo_on && cfg->connect[i].topology && cfg->connect[i].sip_framing;
	}
	if (bad) {
		gen_unref(g);
		return NULL;
	}
	return g;
}

void gen_ref(struct gen *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

static void gen_free(struct gen *g)
{
	struct config *cfg = g->cfg;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct lgen *lg = &g->listen[i];
		if (lg->cred)
			gnutls_certificate_free_credentials(lg->cred);
		if (lg->prio)
			gnutls_priority_deinit(lg->prio);
		if (lg->own_tl)
			gnutls_x509_trust_list_deinit(lg->own_tl, 1);
		for (size_t k = 0; k < lg->nsets; k++)
			if (lg->sets[k].peers != lg->allow)
				free(lg->sets[k].peers);
		free(lg->sets);
		free(lg->allow);
	}
	for (size_t i = 0; i < cfg->nconnect; i++) {
		struct cgen *cg = &g->connect[i];
		if (cg->cred)
			gnutls_certificate_free_credentials(cg->cred);
		if (cg->prio)
			gnutls_priority_deinit(cg->prio);
		if (cg->tl)
			gnutls_x509_trust_list_deinit(cg->tl, 1);
	}
	for (size_t t = 0; t < cfg->ntrust; t++)
		if (g->trust_tl[t])
			gnutls_x509_trust_list_deinit(g->trust_tl[t], 1);
	for (size_t i = 0; i < g->ncerts; i++) {
		free(g->certs[i].file);
		free(g->certs[i].kind);
	}
	free(g->certs);
	free(g->trust_tl);
	free(g->listen);
	free(g->connect);
	tkeys_free(g->tkeys);
	config_free(cfg);
	free(g);
}

void gen_unref(struct gen *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		gen_free(g);
}

size_t gen_expiry_check(const struct gen *g, int days, struct diag *warn, struct diag *err)
{
	time_t now = time(NULL);
	size_t n = 0;
	for (size_t i = 0; i < g->ncerts; i++) {
		const struct certinfo *ci = &g->certs[i];
		if (ci->not_after <= 0)
			continue;
		char when[32];
		strftime(when, sizeof when, "%Y-%m-%d", gmtime(&ci->not_after));
		int crl = !strcmp(ci->kind, "CRL");
		if (ci->not_after < now) {
			diag_add(err, g->cfg->file, ci->line, "%s %s (%s) %s on %s", ci->kind, ci->file, ci->subject,
				 crl ? "is past its nextUpdate" : "expired", when);
			n++;
		} else if (ci->not_after < now + (time_t)days * 86400) {
			diag_add(warn, g->cfg->file, ci->line, "%s %s (%s) %s on %s, within %d days", ci->kind,
				 ci->file, ci->subject, crl ? "reaches its nextUpdate" : "expires", when, days);
			n++;
		}
	}
	return n;
}
