/*
 * tls: generations. A generation is everything a configuration file
 * produces that may change on SIGHUP: the parsed config, GnuTLS credentials,
 * priorities, trust sets and allow-lists. Immutable once built; reference
 * counted; each connection holds the generation it was accepted under, so
 * credentials outlive every session that points into them.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_TLS_H
#define SIDECAR_TLS_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <time.h>

#include "config.h"
#include "siptopo.h"
#include "util.h"
#include "verify.h"

struct tkeys;

/* Facts about one loaded certificate, for "reload ok" and expiry warnings. */
struct certinfo {
	char *file;
	unsigned line;
	char *kind;          /* "certificate", "CA", "CRL", "OCSP response" */
	char serial[64];
	char subject[200];
	time_t not_after;    /* for a CRL or an OCSP response: nextUpdate (0 if none) */
};

/* One stapled OCSP response (ocsp-response), served by tls.c's callback. */
struct staple {
	gnutls_datum_t der;               /* the response as read */
	time_t next_update;               /* 0: none */
	char *file;
	const char *listen;               /* the [listen] name, for the log */
	int stale_logged;                 /* atomic: "stale" logged once */
};

struct lgen {                       /* one [listen] */
	const struct listen_conf *conf;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_x509_trust_list_t own_tl;  /* ca/crl of the section, or NULL */
	struct verify_crl *own_crls;      /* what own_tl's CRLs say of their staleness */
	size_t nown_crls;
	struct trust_set *sets;
	size_t nsets;
	struct tkeys *tkeys;              /* ticket-key-file's keys bound to this listener, or NULL */
	struct staple *staples;           /* one per ocsp-response that is stapled */
	size_t nstaples;
	struct verify_policy policy;
	char **allow;                     /* allow-peer values */
	int topo_on;                      /* translate addresses (topology and framing on) */
	struct topo_cfg topo;             /* key: set by gen_set_flow_key */
};

struct cgen {                       /* one [connect] */
	const struct connect_conf *conf;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_x509_trust_list_t tl;
	struct verify_crl *crls;          /* tl's CRLs (issuer, nextUpdate) */
	size_t ncrls;
	struct trust_set set;
	char *peer;                       /* server-name */
	struct verify_policy policy;
	int topo_on;                      /* the first [listen]'s translation, for the legacy's addresses */
	struct topo_cfg topo;
};

struct gen {
	int refs;                         /* atomic */
	unsigned long id;                 /* set by the owner: 1, 2, ... per reload */
	struct config *cfg;
	struct lgen *listen;
	struct cgen *connect;
	gnutls_x509_trust_list_t *trust_tl; /* one per [trust] */
	struct verify_crl **trust_crls;     /* one array per [trust] ... */
	size_t *ntrust_crls;                /* ... of this many */
	struct certinfo *certs;
	size_t ncerts;
	struct tkeys *tkeys;              /* ticket-key-file (tickets.h), or NULL */
};

/*
 * Builds a generation from cfg (which it then owns, also on failure):
 * loads every certificate, key, CA and CRL, checks that keys match, own
 * certificates are in their validity period, CA bundles are not empty, CRLs
 * are signed by a CA of their section. Problems go to d as FILE:LINE: msg;
 * warnings (e.g. key readable by others) to w. Returns NULL on any problem.
 */
struct gen *gen_build(struct config *cfg, struct diag *d, struct diag *w);
void gen_ref(struct gen *g);
/* Gives every translation of g (not yet shared) the per-start flow key. */
void gen_set_flow_key(struct gen *g, const struct topo_key *key);
/* Sets every translation's flow host from g->cfg->flow_host. */
void gen_set_flow_host(struct gen *g);
void gen_unref(struct gen *g);

/* Appends to d a warning for each certificate/CA/CRL of g expiring within
 * days days, and an error line for each already expired. Returns how many. */
size_t gen_expiry_check(const struct gen *g, int days, struct diag *warn, struct diag *err);

/*
 * The session ticket key of listener lc: HMAC-SHA-512 of the process's
 * master ticket key over the listener's name and client-auth mode, into
 * buf (TLS_TICKET_KEY_SIZE bytes) with *key pointing at it. A ticket thus
 * resumes only on the listener (and mode) that issued it: one from a
 * TLS-only listener is a stranger to an MTLS listener, which then makes a
 * full handshake and asks for a certificate. Returns 0 or a GnuTLS error.
 */
#define TLS_TICKET_KEY_SIZE 64
int tls_ticket_key(const gnutls_datum_t *master, const struct listen_conf *lc, unsigned char *buf,
		   gnutls_datum_t *key);

/* The verify function installed on every MTLS credential (defined in conn.c). */
int conn_tls_verify(gnutls_session_t s);

#endif
