/*
 * verify: the one decision on a peer certificate chain.
 * (peer chain, trust sets, purpose) -> verdict: admitted with an identity,
 * or refused with a reason word from INTERFACE.md. Pure: no libev, no
 * sockets, no logging. Callers: the handshake verify callback, the check of
 * a resumed session, and the re-check of open connections on reload.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_VERIFY_H
#define SIDECAR_VERIFY_H

#include <stddef.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define VERIFY_ID_MAX 256
#define VERIFY_MAX_IDS 16

enum verify_purpose {
	VERIFY_PURPOSE_CLIENT, /* inbound MTLS: peer must be allowed TLS client auth */
	VERIFY_PURPOSE_SERVER  /* outbound: peer must be allowed TLS server auth */
};

/*
 * A set of trust anchors (CAs and their CRLs) and the identities they may
 * vouch for. A listener's own ca/crl/allow-peer form one set; each [trust]
 * section forms another; a [connect] has one set whose only peer is its
 * server-name. npeers == 0 means any identity (only for a listener's own set
 * without allow-peer). Patterns: exact names, or "*.example.net" which admits
 * any one-label name in that domain. Compared case-insensitively.
 */
/*
 * What a trust set knows of one of its CRLs, to tell whether it is stale:
 * the issuer's DN as DER and nextUpdate (0: none, never stale).
 */
struct verify_crl {
	gnutls_datum_t issuer;         /* owned by the caller */
	time_t next_update;
};

struct trust_set {
	const char *name;              /* for logs: "ca" or the [trust] name */
	gnutls_x509_trust_list_t tl;   /* owned by the caller */
	char **peers;
	size_t npeers;
	const struct verify_crl *crls; /* the CRLs loaded into tl (may be NULL) */
	size_t ncrls;
};

/* Default of verify-depth: intermediate CAs a peer chain may hold. */
#define VERIFY_DEFAULT_DEPTH 8
/* Weakest peer keys admitted (bits): RSA/DSA, and elliptic curves. */
#define VERIFY_MIN_RSA_BITS 2048
#define VERIFY_MIN_EC_BITS 224

struct verify_policy {
	const struct trust_set *sets;
	size_t nsets;
	enum verify_purpose purpose;
	const char *mismatch_reason;   /* "not allowed" inbound, "name mismatch" outbound */
	unsigned max_depth;            /* intermediate CAs allowed; 0: VERIFY_DEFAULT_DEPTH */
	int crl_stale_warn;            /* 1: a stale CRL only warns; 0: it refuses ("stale crl") */
};

struct verdict {
	const char *reason;            /* NULL when admitted; else a reason word */
	char identity[VERIFY_ID_MAX];  /* admitted identity (the one that matched,
	                                  or the first one when any is allowed) */
	const char *set_name;          /* which trust set admitted it */
	char subject[256];             /* leaf subject DN, for logs ("" if unknown) */
	char serial[64];               /* leaf serial, hex */
	char detail[160];              /* extra words for the log, e.g. the CA status text */
	char warning[192];             /* on admission: something to warn about (a stale
	                                  CRL under crl-stale = warn), else "" */
};

/*
 * Decides on chain[0..n) (leaf first, DER). Fills *v. Returns 0 when
 * admitted, -1 when refused (v->reason set: "expired", "not yet valid",
 * "unknown ca", "revoked", "bad key usage", "name mismatch", "not allowed",
 * "chain too long" (more intermediate CAs than p->max_depth), "weak key"
 * (RSA/DSA under VERIFY_MIN_RSA_BITS, EC under VERIFY_MIN_EC_BITS), "weak
 * signature" (MD5/SHA-1 or unknown hash, except on a self-signed root),
 * "malformed name" (a NUL byte or an unparsable subjectAltName in the
 * leaf), "stale crl" (the set that would admit holds a CRL past its
 * nextUpdate for a CA of the chain, unless p->crl_stale_warn: then admitted
 * with v->warning set), "no certificate" when n == 0).
 * Chain checks use the current time. Wildcards inside a certificate never match.
 */
int verify_chain(const gnutls_datum_t *chain, unsigned n, const struct verify_policy *p,
		 struct verdict *v);

/*
 * The identities a certificate asserts, per RFC 5922 section 7.1: the domain
 * of each subjectAltName URI "sip:DOMAIN" (URIs with a user part are skipped),
 * each dNSName; the subject CN only if there is no URI or DNS SAN. Returns the
 * number stored in ids (at most max), lower-cased.
 */
size_t verify_cert_identities(gnutls_x509_crt_t crt, char ids[][VERIFY_ID_MAX], size_t max);

/* 1 if identity (from a certificate) is admitted by pattern, else 0.
 * An identity containing '*' never matches. */
int verify_identity_match(const char *pattern, const char *identity);

#endif
