/*
 * verify: the one decision on a peer certificate chain (see verify.h).
 *
 * A chain is checked against each trust set in turn with GnuTLS's own chain
 * verification (signatures, validity of every certificate, the set's CRLs,
 * key purpose); a set that verifies it then admits the leaf only for the
 * identities it may vouch for (RFC 5922 section 7). The first set that
 * admits wins; otherwise the refusal carries the most informative reason
 * across all sets. Pure: no logging, no globals, no libev; safe to call from
 * any thread as long as the trust lists are not modified meanwhile.
 *
 * GnuTLS 3.7.9 facts this relies on (checked with t/mkcerts.sh's PKI):
 * - gnutls_x509_trust_list_verify_crt2() reports the time bits (EXPIRED,
 *   NOT_ACTIVATED) and PURPOSE_MISMATCH even when the issuer is unknown
 *   (SIGNER_NOT_FOUND), so a set that cannot chain the certificate must be
 *   read as "unknown ca" whatever else is set.
 * - REVOKED is only reported when every other check passed: a revoked and
 *   expired certificate reads as "expired".
 * - For callers building trust lists: with GNUTLS_TL_VERIFY_CRL alone a CRL
 *   that fails to verify (stale nextUpdate, wrong CA) is silently dropped,
 *   so its revoked certificates pass; add GNUTLS_TL_FAIL_ON_INVALID_CRL to
 *   get GNUTLS_E_CRL_VERIFICATION_ERROR instead (or omit both flags: the CRL
 *   is then used unverified, stale or not).
 *
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h> /* configure results (top build dir) */
#endif

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "verify.h"

/* Longer peer chains are refused as "unknown ca" without asking GnuTLS. */
#define VERIFY_MAX_CHAIN 16

/* Status bits meaning "this set cannot vouch for the chain at all". */
#define UNTRUSTED_BITS                                                                    \
	(GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA | GNUTLS_CERT_SIGNATURE_FAILURE | \
	 GNUTLS_CERT_INSECURE_ALGORITHM | GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE)

/* How informative a refusal is; the highest over all sets is reported. */
enum rank {
	RANK_NONE = 0,
	RANK_UNKNOWN_CA,  /* the set does not chain the certificate */
	RANK_MISMATCH,    /* the set verifies the chain but not for these names */
	RANK_KEY_USAGE,
	RANK_NOT_YET,
	RANK_EXPIRED,
	RANK_REVOKED,
};

/*
 * Copies src[0..len) into dst (size bytes, size > 0), truncating, always
 * NUL-terminated.
 */
static void copy_trunc(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * 1 if s[0..len) is a usable identity string: printable ASCII without
 * spaces, no embedded NUL, and short enough for VERIFY_ID_MAX. Else 0.
 */
static int printable_name(const char *s, size_t len)
{
	if (len == 0 || len >= VERIFY_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/*
 * Appends s[0..len) lower-cased to ids unless already present or ids is
 * full. *n is the number stored so far and is updated.
 */
static void add_identity(char ids[][VERIFY_ID_MAX], size_t max, size_t *n, const char *s, size_t len)
{
	char low[VERIFY_ID_MAX];

	if (*n >= max || !printable_name(s, len))
		return;
	for (size_t i = 0; i < len; i++)
		low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	low[len] = '\0';
	for (size_t i = 0; i < *n; i++)
		if (strcmp(ids[i], low) == 0)
			return;
	memcpy(ids[*n], low, len + 1);
	(*n)++;
}

/*
 * The domain of a SAN URI when it is exactly "sip:DOMAIN" or "sips:DOMAIN"
 * (scheme case-insensitive), DOMAIN made of letters, digits, '-', '.' and
 * '*' (a wildcard is kept so that it is seen, and never matches). A user
 * part, port, parameters or headers make the URI no identity (RFC 5922
 * section 7.1 accepts only the bare domain form). Returns the domain's
 * length and sets *dom into uri, or 0 when the URI is no identity.
 */
static size_t sip_uri_domain(const char *uri, size_t len, const char **dom)
{
	size_t skip;

	if (len > 4 && strncasecmp(uri, "sip:", 4) == 0)
		skip = 4;
	else if (len > 5 && strncasecmp(uri, "sips:", 5) == 0)
		skip = 5;
	else
		return 0;
	for (size_t i = skip; i < len; i++) {
		char c = uri[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '*'))
			return 0;
	}
	*dom = uri + skip;
	return len - skip;
}

/*
 * Contract in verify.h. SAN entries that are too long, not printable, or of
 * other types (IP addresses, e-mail, otherName) are skipped. The CN is used
 * only when the certificate has no URI and no dNSName SAN at all (usable or
 * not), and only when the subject holds exactly one CN.
 */
size_t verify_cert_identities(gnutls_x509_crt_t crt, char ids[][VERIFY_ID_MAX], size_t max)
{
	char buf[1024];
	size_t n = 0;
	int saw_name_san = 0;

	for (unsigned seq = 0;; seq++) {
		size_t size = sizeof buf - 1;
		unsigned type = 0;
		int ret = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, &size, &type, NULL);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break; /* no more entries */
		if (ret == GNUTLS_E_X509_UNKNOWN_SAN)
			continue; /* a type GnuTLS does not know: no identity */
		if (ret == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			/* Absurdly long entry of unknown type: no identity, and be
			 * strict: count it as a name SAN (no CN fallback). */
			saw_name_san = 1;
			continue;
		}
		if (ret < 0) {
			/* unparsable extension: no CN fallback either */
			saw_name_san = 1;
			break;
		}
		buf[size] = '\0';
		if (ret == GNUTLS_SAN_DNSNAME || ret == GNUTLS_SAN_URI)
			saw_name_san = 1; /* usable or not: no CN fallback */
		if (strlen(buf) != size)
			continue; /* embedded NUL */
		if (ret == GNUTLS_SAN_DNSNAME) {
			saw_name_san = 1;
			add_identity(ids, max, &n, buf, size);
		} else if (ret == GNUTLS_SAN_URI) {
			const char *dom;
			size_t dlen = sip_uri_domain(buf, size, &dom);
			saw_name_san = 1;
			if (dlen > 0)
				add_identity(ids, max, &n, dom, dlen);
		}
	}
	if (saw_name_san)
		return n;

	size_t size = sizeof buf - 1;
	int ret = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size);
	if (ret < 0)
		return n;
	buf[size < sizeof buf ? size : sizeof buf - 1] = '\0';
	char second[8];
	size_t size2 = sizeof second;
	ret = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, second, &size2);
	if (ret != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return n; /* several CNs (or an error): which one is meant is unclear */
	if (strlen(buf) == size)
		add_identity(ids, max, &n, buf, size);
	return n;
}

/* Contract in verify.h. "*.D" admits exactly one non-empty label before ".D";
 * a pattern "*." or with '*' elsewhere only matches literally (so never). */
int verify_identity_match(const char *pattern, const char *identity)
{
	if (pattern == NULL || identity == NULL || identity[0] == '\0' || strchr(identity, '*') != NULL)
		return 0;
	if (pattern[0] == '*' && pattern[1] == '.' && pattern[2] != '\0') {
		const char *suffix = pattern + 1; /* ".example.net" */
		size_t slen = strlen(suffix), ilen = strlen(identity);
		if (ilen <= slen || strcasecmp(identity + ilen - slen, suffix) != 0)
			return 0;
		/* the part before the suffix is one label: non-empty, no dot */
		return memchr(identity, '.', ilen - slen) == NULL;
	}
	return strcasecmp(pattern, identity) == 0;
}

/*
 * Maps one set's GnuTLS verification status (non-zero) to a rank and a
 * reason word. A set that cannot chain the certificate gives "unknown ca"
 * even if time or purpose bits are set too (GnuTLS sets them regardless).
 */
static enum rank status_rank(unsigned status, const char **reason)
{
	if (status & UNTRUSTED_BITS) {
		*reason = "unknown ca";
		return RANK_UNKNOWN_CA;
	}
	if (status & GNUTLS_CERT_REVOKED) {
		*reason = "revoked";
		return RANK_REVOKED;
	}
	if (status & GNUTLS_CERT_EXPIRED) {
		*reason = "expired";
		return RANK_EXPIRED;
	}
	if (status & GNUTLS_CERT_NOT_ACTIVATED) {
		*reason = "not yet valid";
		return RANK_NOT_YET;
	}
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH) {
		*reason = "bad key usage";
		return RANK_KEY_USAGE;
	}
	*reason = "unknown ca";
	return RANK_UNKNOWN_CA;
}

/*
 * Writes "SET: TEXT" into v->detail, TEXT being GnuTLS's description of
 * status without its "The certificate is NOT trusted." preamble.
 */
static void detail_status(struct verdict *v, const char *set, unsigned status)
{
	static const char pre[] = "The certificate is NOT trusted. ";
	gnutls_datum_t out = { NULL, 0 };
	const char *text = "verification failed";

	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0 &&
	    out.data != NULL) {
		text = (const char *)out.data;
		if (strncmp(text, pre, sizeof pre - 1) == 0)
			text += sizeof pre - 1;
	}
	int len = snprintf(v->detail, sizeof v->detail, "%s: %s", set, text);
	/* drop GnuTLS's trailing blank */
	if (len > 0 && (size_t)len < sizeof v->detail && v->detail[len - 1] == ' ')
		v->detail[len - 1] = '\0';
	gnutls_free(out.data);
}

/*
 * Writes "SET: not for ID, ID..." (or "SET: no identity") into v->detail:
 * the names the certificate asserts, for the log of a name refusal.
 */
static void detail_names(struct verdict *v, const char *set, char ids[][VERIFY_ID_MAX], size_t nids)
{
	size_t off;
	int len;

	if (nids == 0) {
		snprintf(v->detail, sizeof v->detail, "%s: no identity", set);
		return;
	}
	len = snprintf(v->detail, sizeof v->detail, "%s: not for %s", set, ids[0]);
	off = len < 0 ? 0 : (size_t)len;
	for (size_t i = 1; i < nids && off < sizeof v->detail; i++) {
		len = snprintf(v->detail + off, sizeof v->detail - off, ", %s", ids[i]);
		if (len < 0)
			break;
		off += (size_t)len;
	}
}

/*
 * Fills v->subject (RFC 4514 DN) and v->serial (lower-case hex) from the
 * leaf; each stays "" when GnuTLS cannot produce it.
 */
static void leaf_info(gnutls_x509_crt_t leaf, struct verdict *v)
{
	gnutls_datum_t dn = { NULL, 0 };
	unsigned char serial[40];
	size_t slen = sizeof serial;

	if (gnutls_x509_crt_get_dn3(leaf, &dn, 0) == 0 && dn.data != NULL)
		copy_trunc(v->subject, sizeof v->subject, (const char *)dn.data, dn.size);
	gnutls_free(dn.data);
	if (gnutls_x509_crt_get_serial(leaf, serial, &slen) == 0) {
		static const char hex[] = "0123456789abcdef";
		size_t o = 0;
		for (size_t i = 0; i < slen && o + 2 < sizeof v->serial; i++) {
			v->serial[o++] = hex[serial[i] >> 4];
			v->serial[o++] = hex[serial[i] & 15];
		}
		v->serial[o] = '\0';
	}
}

/*
 * Writes "expires YYYY-MM-DDTHH:MM:SSZ" (the leaf's notAfter) into
 * v->detail, for the log of an admission.
 */
static void detail_expiry(struct verdict *v, gnutls_x509_crt_t leaf)
{
	time_t t = gnutls_x509_crt_get_expiration_time(leaf);
	struct tm tm;
	char when[32];

	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return;
	snprintf(v->detail, sizeof v->detail, "expires %s", when);
}

/*
 * If one of the leaf identities ids[0..nids) is admitted by set s, copies it
 * to v->identity and returns 1; else 0. A set without peers admits any
 * certificate, with its first identity that holds no '*' (a wildcard names
 * no one peer), or "" when it asserts none.
 */
static int set_admits(const struct trust_set *s, char ids[][VERIFY_ID_MAX], size_t nids, struct verdict *v)
{
	if (s->npeers == 0) {
		v->identity[0] = '\0';
		for (size_t i = 0; i < nids; i++)
			if (strchr(ids[i], '*') == NULL) {
				copy_trunc(v->identity, sizeof v->identity, ids[i], strlen(ids[i]));
				break;
			}
		return 1;
	}
	for (size_t i = 0; i < nids; i++)
		for (size_t j = 0; j < s->npeers; j++)
			if (verify_identity_match(s->peers[j], ids[i])) {
				copy_trunc(v->identity, sizeof v->identity, ids[i], strlen(ids[i]));
				return 1;
			}
	return 0;
}

/*
 * Contract in verify.h. The chain may be in any order after the leaf and may
 * include the root; it is refused as "unknown ca" when longer than
 * VERIFY_MAX_CHAIN or when a certificate does not parse as DER. The first
 * set (in order) that verifies the chain and admits a leaf identity wins.
 * Otherwise the reason is the most informative one over all sets: "revoked"
 * > "expired" > "not yet valid" > "bad key usage" > p->mismatch_reason (a
 * set verified the chain but lists none of its names) > "unknown ca" (no set
 * chains it); on a tie the first set's. On refusal v->detail names the set
 * behind the reason and GnuTLS's words (or the names the leaf asserts); on
 * admission it gives the leaf's expiry. v->set_name is NULL when refused.
 */
int verify_chain(const gnutls_datum_t *chain, unsigned n, const struct verify_policy *p,
		 struct verdict *v)
{
	gnutls_x509_crt_t crts[VERIFY_MAX_CHAIN];
	char ids[VERIFY_MAX_IDS][VERIFY_ID_MAX];
	size_t nids;
	unsigned ncrts = 0;
	enum rank best = RANK_NONE;
	int ret;

	memset(v, 0, sizeof *v);
	if (chain == NULL || n == 0) {
		v->reason = "no certificate";
		return -1;
	}
	v->reason = "unknown ca";
	if (n > VERIFY_MAX_CHAIN) {
		snprintf(v->detail, sizeof v->detail, "chain of %u certificates, at most %d", n,
			 VERIFY_MAX_CHAIN);
		return -1;
	}
	for (; ncrts < n; ncrts++) {
		if ((ret = gnutls_x509_crt_init(&crts[ncrts])) < 0) {
			snprintf(v->detail, sizeof v->detail, "%s", gnutls_strerror(ret));
			goto out;
		}
		if ((ret = gnutls_x509_crt_import(crts[ncrts], &chain[ncrts], GNUTLS_X509_FMT_DER)) < 0) {
			snprintf(v->detail, sizeof v->detail, "certificate %u: %s", ncrts, gnutls_strerror(ret));
			ncrts++; /* initialised: deinit it too */
			goto out;
		}
		if (ncrts == 0)
			leaf_info(crts[0], v);
	}
	nids = verify_cert_identities(crts[0], ids, VERIFY_MAX_IDS);

	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (void *)(p->purpose == VERIFY_PURPOSE_SERVER ? GNUTLS_KP_TLS_WWW_SERVER
								      : GNUTLS_KP_TLS_WWW_CLIENT),
		.size = 0,
	};
	for (size_t i = 0; i < p->nsets; i++) {
		const struct trust_set *s = &p->sets[i];
		const char *name = s->name ? s->name : "?";
		const char *reason;
		unsigned status = 0;
		enum rank r;

		ret = s->tl ? gnutls_x509_trust_list_verify_crt2(s->tl, crts, n, &purpose, 1, 0, &status, NULL)
			    : GNUTLS_E_INVALID_REQUEST;
		if (ret < 0) {
			if (best < RANK_UNKNOWN_CA) {
				best = RANK_UNKNOWN_CA;
				v->reason = "unknown ca";
				snprintf(v->detail, sizeof v->detail, "%s: %s", name, gnutls_strerror(ret));
			}
			continue;
		}
		if (status == 0) {
			if (set_admits(s, ids, nids, v)) {
				v->reason = NULL;
				v->set_name = s->name;
				v->detail[0] = '\0';
				detail_expiry(v, crts[0]);
				break;
			}
			r = RANK_MISMATCH;
			reason = p->mismatch_reason ? p->mismatch_reason : "not allowed";
		} else {
			r = status_rank(status, &reason);
		}
		if (r > best) {
			best = r;
			v->reason = reason;
			if (r == RANK_MISMATCH)
				detail_names(v, name, ids, nids);
			else
				detail_status(v, name, status);
		}
	}
	if (best == RANK_NONE && v->reason != NULL)
		snprintf(v->detail, sizeof v->detail, "no trust set");
out:
	for (unsigned i = 0; i < ncrts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return v->reason == NULL ? 0 : -1;
}
