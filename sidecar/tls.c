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

#include <gnutls/crypto.h>
#include <gnutls/ocsp.h>

#include "log.h"
#include "rsasign.h"
#include "tickets.h"
#include "tls.h"

_Static_assert(TKEY_SIZE == TLS_TICKET_KEY_SIZE, "one size of ticket master key");
static struct tkeys *listener_tkeys(const struct tkeys *farm, const struct listen_conf *lc);

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

/*
 * Adds the chain in cert_path with a key whose signatures are made outside
 * GnuTLS (rsasign.h), after checking that the key is the certificate's.
 * Takes pk in every case. Returns 0 or a GnuTLS error code.
 */
static int set_key_external(gnutls_certificate_credentials_t cred, const char *cert_path, gnutls_privkey_t pk)
{
	gnutls_pcert_st pcerts[16];
	unsigned n = sizeof pcerts / sizeof pcerts[0];
	static const unsigned char probe[] = "sip-sidecar: does this key belong to this certificate?";
	const gnutls_datum_t data = { (unsigned char *)probe, sizeof probe - 1 };
	gnutls_datum_t sig = { NULL, 0 };
	int r = gnutls_pcert_list_import_x509_file(pcerts, &n, cert_path, GNUTLS_X509_FMT_PEM, NULL, NULL, 0);
	if (r < 0) {
		gnutls_privkey_deinit(pk);
		return r;
	}
	/* the key cannot show its public half: a signature that the
	 * certificate's key verifies proves the pair (and the signer) */
	r = gnutls_privkey_sign_data2(pk, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, 0, &data, &sig);
	if (r >= 0 && gnutls_pubkey_verify_data2(pcerts[0].pubkey, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, 0, &data, &sig) < 0)
		r = GNUTLS_E_CERTIFICATE_KEY_MISMATCH;
	gnutls_free(sig.data);
	if (r < 0) {
		for (unsigned i = 0; i < n; i++)
			gnutls_pcert_deinit(&pcerts[i]);
		gnutls_privkey_deinit(pk);
		return r;
	}
	/* the chain and the key belong to cred from here on, also when this
	 * fails (cred is then discarded with its generation) */
	return gnutls_certificate_set_key(cred, NULL, 0, pcerts, (int)n, pk);
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
	char err[256];
	gnutls_privkey_t fast = NULL;
	int r = rsasign_import(key->s, &fast, err, sizeof err);
	if (r < 0) {
		diag_add(d, file, key->line, "%s", err);
		return -1;
	}
	if (r == 1)
		r = set_key_external(cred, cert->s, fast);
	else
		r = gnutls_certificate_set_x509_key_file2(cred, cert->s, key->s, GNUTLS_X509_FMT_PEM, NULL, 0);
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
		      const struct clist *ca, const struct clist *crl, const char *file, struct diag *d,
		      struct verify_crl **crlinfo, size_t *ncrlinfo)
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
			/* for verify: a peer of this CRL's issuer meets crl-stale once
			 * nextUpdate has passed (checked at each handshake) */
			*crlinfo = xrealloc(*crlinfo, (*ncrlinfo + 1) * sizeof **crlinfo);
			struct verify_crl *vc = &(*crlinfo)[(*ncrlinfo)++];
			vc->issuer.data = NULL;
			vc->issuer.size = 0;
			vc->next_update = next == (time_t)-1 ? 0 : next;
			if (gnutls_x509_crl_get_raw_issuer_dn(crls[k], &vc->issuer) < 0)
				signed_ok = 0;
			/* The signature must come from a CA of this section. A CRL past
			 * its nextUpdate still counts (what it revokes stays revoked);
			 * the expiry report says it is stale, and reloads keep working;
			 * whether its CA's peers are refused meanwhile is crl-stale's
			 * business (verify.c). */
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

/* "YYYY-MM-DD HH:MM:SSZ" of t into buf. */
static const char *utc(time_t t, char *buf, size_t size)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "?");
	return buf;
}

/*
 * GnuTLS asks for the status of the certificate a staple belongs to (the
 * client sent status_request): a copy of the response while it is fresh;
 * once past its nextUpdate none, and one warning (per generation).
 */
static int staple_cb(gnutls_session_t session, void *ptr, gnutls_datum_t *resp)
{
	struct staple *st = ptr;
	time_t now = time(NULL);
	(void)session;
	if (st->next_update && now >= st->next_update) {
		if (!__atomic_exchange_n(&st->stale_logged, 1, __ATOMIC_RELAXED)) {
			char when[40];
			log_warn("listen=%s OCSP response %s is stale since %s: no longer stapled (fetch a fresh one and "
				 "reload)", st->listen, st->file, utc(st->next_update, when, sizeof when));
		}
		return GNUTLS_E_NO_CERTIFICATE_STATUS;
	}
	resp->data = gnutls_malloc(st->der.size);
	if (resp->data == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	memcpy(resp->data, st->der.data, st->der.size);
	resp->size = st->der.size;
	return 0;
}

/*
 * ocsp-response k of listener lc, for certificate lc->ocsp_cert[k] (index
 * idx in cred): a DER OCSP response the operator fetched. Errors (d; the
 * configuration is refused): unreadable, not a successful OCSP response,
 * about another certificate, signed by neither the certificate's issuer (the
 * second certificate of its file, when there) nor a responder it vouches
 * for, or saying "revoked". Warnings (w; the response is then not stapled,
 * and the listener serves without it): status "unknown", not yet valid, or
 * past its nextUpdate. A stapled response is also listed for the expiry
 * report, which says when it goes stale; from then on staple_cb stops
 * stapling it and logs that once.
 */
static int load_ocsp(struct gen *g, struct lgen *lg, const struct listen_conf *lc, size_t k, const char *file,
		     struct diag *d, struct diag *w)
{
	gnutls_certificate_credentials_t cred = lg->cred;
	const struct cval *v = &lc->ocsp.v[k];
	const struct cval *cert = &lc->cert.v[lc->ocsp_cert[k]];
	unsigned idx = (unsigned)lc->ocsp_cert[k];
	gnutls_datum_t data = { NULL, 0 };
	gnutls_ocsp_resp_t resp = NULL;
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrts = 0, verify = 0, cstatus = 0;
	time_t this_update = 0, next_update = 0, now = time(NULL);
	char when[40];
	int r, ret = -1;

	if (readable(v->s, file, v->line, d) < 0)
		return -1;
	if ((r = gnutls_load_file(v->s, &data)) < 0) {
		diag_add(d, file, v->line, "cannot read %s: %s", v->s, gnutls_strerror(r));
		return -1;
	}
	if ((r = gnutls_ocsp_resp_init(&resp)) < 0 || (r = gnutls_ocsp_resp_import(resp, &data)) < 0) {
		diag_add(d, file, v->line, "%s is not an OCSP response (DER): %s", v->s, gnutls_strerror(r));
		goto out;
	}
	if ((r = gnutls_ocsp_resp_get_status(resp)) != GNUTLS_OCSP_RESP_SUCCESSFUL) {
		diag_add(d, file, v->line, "OCSP response %s: the responder did not answer (status %d)", v->s, r);
		goto out;
	}
	if ((ncrts = load_crts(cert->s, &crts, file, cert->line, d)) == 0)
		goto out;
	if ((r = gnutls_ocsp_resp_check_crt(resp, 0, crts[0])) < 0) {
		char serial[64], subject[200];
		crt_facts(crts[0], serial, sizeof serial, subject, sizeof subject);
		diag_add(d, file, v->line, "OCSP response %s is not for certificate %s (serial %s): %s", v->s, cert->s,
			 serial, gnutls_strerror(r));
		goto out;
	}
	if (ncrts > 1 && ((r = gnutls_ocsp_resp_verify_direct(resp, crts[1], &verify, 0)) < 0 || verify != 0)) {
		diag_add(d, file, v->line, "OCSP response %s: its signature does not verify with the issuer of %s%s%s",
			 v->s, cert->s, r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
		goto out;
	}
	if ((r = gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL, &cstatus, &this_update,
					     &next_update, NULL, NULL)) < 0) {
		diag_add(d, file, v->line, "OCSP response %s: %s", v->s, gnutls_strerror(r));
		goto out;
	}
	if (cstatus == GNUTLS_OCSP_CERT_REVOKED) {
		diag_add(d, file, v->line, "OCSP response %s says certificate %s is revoked", v->s, cert->s);
		goto out;
	}
	ret = 0; /* from here on: usable configuration, perhaps without a staple */
	if (cstatus != GNUTLS_OCSP_CERT_GOOD) {
		diag_add(w, file, v->line, "OCSP response %s: status unknown for %s: not stapled", v->s, cert->s);
		goto out;
	}
	if (this_update != (time_t)-1 && this_update > now + 300) {
		diag_add(w, file, v->line, "OCSP response %s is not valid before %s: not stapled", v->s,
			 utc(this_update, when, sizeof when));
		goto out;
	}
	if (next_update != (time_t)-1 && next_update < now) {
		diag_add(w, file, v->line, "OCSP response %s is stale (past its nextUpdate %s): not stapled", v->s,
			 utc(next_update, when, sizeof when));
		goto out;
	}
	struct staple *st = &lg->staples[lg->nstaples];
	st->der = data;
	st->next_update = next_update == (time_t)-1 ? 0 : next_update;
	st->file = xstrdup(v->s);
	st->listen = lc->name;
	st->stale_logged = 0;
	if ((r = gnutls_certificate_set_ocsp_status_request_function2(cred, idx, staple_cb, st)) < 0) {
		diag_add(d, file, v->line, "cannot staple OCSP response %s for %s: %s", v->s, cert->s, gnutls_strerror(r));
		free(st->file);
		ret = -1;
		goto out;
	}
	lg->nstaples++;
	data.data = NULL; /* now the staple's */
	char serial[64], subject[200];
	crt_facts(crts[0], serial, sizeof serial, subject, sizeof subject);
	add_certinfo(g, v->s, v->line, "OCSP response", serial, subject, next_update == (time_t)-1 ? 0 : next_update);
out:
	if (crts)
		free_crts(crts, ncrts);
	if (resp)
		gnutls_ocsp_resp_deinit(resp);
	gnutls_free(data.data);
	return ret;
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
	lg->staples = xcalloc(lc->ocsp.n + 1, sizeof *lg->staples);
	for (size_t k = 0; k < lc->ocsp.n && !bad; k++)
		if (load_ocsp(g, lg, lc, k, file, d, w) < 0)
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
		if (load_trust(g, lg->own_tl, lg->cred, &lc->ca, &lc->crl, file, d, &lg->own_crls, &lg->nown_crls) < 0)
			bad = 1;
		lg->allow = xcalloc(lc->allow_peer.n + 1, sizeof *lg->allow);
		for (size_t k = 0; k < lc->allow_peer.n; k++)
			lg->allow[k] = lc->allow_peer.v[k].s;
		struct trust_set *ts = &lg->sets[lg->nsets++];
		ts->name = "ca";
		ts->tl = lg->own_tl;
		ts->peers = lg->allow;
		ts->npeers = lc->allow_peer.n;
		ts->crls = lg->own_crls;
		ts->ncrls = lg->nown_crls;
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
			ts->crls = g->trust_crls[t];
			ts->ncrls = g->ntrust_crls[t];
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
	lg->policy.max_depth = lc->verify_depth;
	lg->policy.crl_stale_warn = lc->crl_stale_warn;
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
	if (load_trust(g, cg->tl, NULL, &cc->ca, &cc->crl, file, d, &cg->crls, &cg->ncrls) < 0)
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
	cg->set.crls = cg->crls;
	cg->set.ncrls = cg->ncrls;
	cg->policy.sets = &cg->set;
	cg->policy.nsets = 1;
	cg->policy.purpose = VERIFY_PURPOSE_SERVER;
	cg->policy.mismatch_reason = "name mismatch";
	cg->policy.max_depth = cc->verify_depth;
	cg->policy.crl_stale_warn = cc->crl_stale_warn;
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
	g->trust_crls = xcalloc(cfg->ntrust, sizeof *g->trust_crls);
	g->ntrust_crls = xcalloc(cfg->ntrust, sizeof *g->ntrust_crls);
	for (size_t t = 0; t < cfg->ntrust; t++) {
		if ((r = gnutls_x509_trust_list_init(&g->trust_tl[t], 0)) < 0) {
			diag_add(d, cfg->file, cfg->trust[t].line, "GnuTLS: %s", gnutls_strerror(r));
			bad = 1;
			continue;
		}
		if (load_trust(g, g->trust_tl[t], NULL, &cfg->trust[t].ca, &cfg->trust[t].crl, cfg->file, d,
			       &g->trust_crls[t], &g->ntrust_crls[t]) < 0)
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
	for (size_t i = 0; i < cfg->nlisten && g->tkeys; i++)
		if (!(g->listen[i].tkeys = listener_tkeys(g->tkeys, &cfg->listen[i]))) {
			diag_add(d, cfg->file, cfg->ticket_key_line, "cannot derive the ticket keys of [listen %s]",
				 cfg->listen[i].name);
			bad = 1;
		}
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

static void crlinfo_free(struct verify_crl *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gnutls_free(v[i].issuer.data);
	free(v);
}

/* The farm's keys as one listener uses them: each derived from the file's
 * key as the per-start key is (tls_ticket_key), so a ticket opens only on a
 * listener of the same name and client-auth, on any host with the file. */
static struct tkeys *listener_tkeys(const struct tkeys *farm, const struct listen_conf *lc)
{
	struct tkeys *k = xcalloc(1, sizeof *k);
	k->n = farm->n;
	memcpy(k->line, farm->line, sizeof k->line);
	for (size_t i = 0; i < farm->n; i++) {
		unsigned char buf[TLS_TICKET_KEY_SIZE];
		gnutls_datum_t master = { (unsigned char *)farm->key[i], TKEY_SIZE }, out;
		if (tls_ticket_key(&master, lc, buf, &out) < 0) {
			tkeys_free(k);
			return NULL;
		}
		memcpy(k->key[i], out.data, TKEY_SIZE);
		gnutls_memset(buf, 0, sizeof buf);
	}
	return k;
}

static void gen_free(struct gen *g)
{
	struct config *cfg = g->cfg;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct lgen *lg = &g->listen[i];
		tkeys_free(lg->tkeys);
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
		crlinfo_free(lg->own_crls, lg->nown_crls);
		for (size_t k = 0; k < lg->nstaples; k++) {
			gnutls_free(lg->staples[k].der.data);
			free(lg->staples[k].file);
		}
		free(lg->staples);
	}
	for (size_t i = 0; i < cfg->nconnect; i++) {
		struct cgen *cg = &g->connect[i];
		if (cg->cred)
			gnutls_certificate_free_credentials(cg->cred);
		if (cg->prio)
			gnutls_priority_deinit(cg->prio);
		if (cg->tl)
			gnutls_x509_trust_list_deinit(cg->tl, 1);
		crlinfo_free(cg->crls, cg->ncrls);
	}
	for (size_t t = 0; t < cfg->ntrust; t++) {
		if (g->trust_tl[t])
			gnutls_x509_trust_list_deinit(g->trust_tl[t], 1);
		crlinfo_free(g->trust_crls[t], g->ntrust_crls[t]);
	}
	free(g->trust_crls);
	free(g->ntrust_crls);
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
		int ocsp = !strcmp(ci->kind, "OCSP response");
		int crl = !strcmp(ci->kind, "CRL") || ocsp;
		if (ci->not_after < now) {
			diag_add(err, g->cfg->file, ci->line, "%s %s (%s) %s on %s%s", ci->kind, ci->file, ci->subject,
				 crl ? "is past its nextUpdate" : "expired", when,
				 ocsp  ? ": no longer stapled, fetch a fresh one and reload"
				 : crl ? ": its CA's peers are refused (stale crl) unless crl-stale = warn"
				       : "");
			n++;
		} else if (ocsp) {
			continue; /* responses live days, not months: no early warning */
		} else if (ci->not_after < now + (time_t)days * 86400) {
			diag_add(warn, g->cfg->file, ci->line, "%s %s (%s) %s on %s, within %d days", ci->kind,
				 ci->file, ci->subject, crl ? "reaches its nextUpdate" : "expires", when, days);
			n++;
		}
	}
	return n;
}

int tls_ticket_key(const gnutls_datum_t *master, const struct listen_conf *lc, unsigned char *buf,
		   gnutls_datum_t *key)
{
	char label[300];
	int len = snprintf(label, sizeof label, "sip-sidecar ticket key\n[listen %s]\nclient-auth %d", lc->name,
			   (int)lc->client_auth);
	if (len < 0 || (size_t)len >= sizeof label || master->size == 0)
		return GNUTLS_E_INVALID_REQUEST;
	if (gnutls_hash_get_len(GNUTLS_DIG_SHA512) != TLS_TICKET_KEY_SIZE || master->size != TLS_TICKET_KEY_SIZE)
		return GNUTLS_E_INVALID_REQUEST;
	int r = gnutls_hmac_fast(GNUTLS_MAC_SHA512, master->data, master->size, label, (size_t)len, buf);
	if (r < 0)
		return r;
	key->data = buf;
	key->size = TLS_TICKET_KEY_SIZE;
	return 0;
}
