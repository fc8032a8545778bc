/*
 * fuzz-verify: libFuzzer target for the identity rules of sidecar/verify.c:
 * which names a peer certificate asserts (verify_cert_identities, RFC 5922
 * section 7.1), how a configured peer pattern admits one
 * (verify_identity_match), and the verdict that combines them
 * (verify_chain), on crafted certificates.
 *
 * Input: byte 0 is a mode byte.
 *  - bit 7 set: the rest is "PATTERN\0IDENTITY" (the matcher alone);
 *  - else bits 0-1 give the number of peer patterns (0 = any identity),
 *    bit 2 the purpose (client / server); then that many NUL-terminated
 *    patterns; the rest is a DER certificate. That certificate is made the
 *    one trust anchor of the one trust set, so that a well-formed input
 *    reaches the name checks without a CA signature to forge.
 * The invariants checked (abort() on failure):
 *  - every identity is non-empty, shorter than VERIFY_ID_MAX, printable
 *    ASCII without space, lower-case, and unique; at most `max` of them, and
 *    asking for fewer gives a prefix of the same list;
 *  - an identity comes from a dNSName or a sip:/sips: URI SAN, and from the
 *    subject CN only when the certificate has no dNSName or URI SAN at all
 *    (usable or not: one with a NUL byte still rules the CN out);
 *  - the matcher agrees with a reference written here from verify.h's
 *    contract (exact case-insensitive, or "*.D" for one non-empty label
 *    before ".D"; an identity holding '*' never matches), and ignores case;
 *  - verify_chain returns 0 exactly when it gives no reason; a refusal has
 *    one of the documented reason words; an admission with patterns names
 *    an asserted identity that one of them admits, and without patterns the
 *    first asserted identity without '*' (or "");
 *  - every text field of the verdict is NUL-terminated within its size.
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named on
 * its command line once (regression runs without libFuzzer).
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "verify.h"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

#define MAX_PATTERNS 3

/* The matcher's contract, independently: see the header comment. */
static int ref_match(const char *pattern, const char *id)
{
	size_t pl = strlen(pattern), il = strlen(id);

	if (il == 0 || strchr(id, '*'))
		return 0;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
		size_t sl = pl - 1; /* ".D" */
		size_t label = il > sl ? il - sl : 0;
		if (label == 0 || strcasecmp(id + label, pattern + 1) != 0)
			return 0;
		for (size_t i = 0; i < label; i++)
			if (id[i] == '.')
				return 0;
		return 1;
	}
	return strcasecmp(pattern, id) == 0;
}

static void upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

static void check_match(const char *pattern, const char *id)
{
	char *pu = strdup(pattern), *iu = strdup(id);
	int m = verify_identity_match(pattern, id);

	CHECK(pu && iu);
	CHECK(m == 0 || m == 1);
	CHECK(m == ref_match(pattern, id));
	upper(pu);
	upper(iu);
	CHECK(verify_identity_match(pu, iu) == m);
	free(pu);
	free(iu);
}

static void check_terminated(const char *s, size_t size)
{
	CHECK(memchr(s, '\0', size) != NULL);
}

static int known_reason(const char *r)
{
	static const char *const words[] = { "expired", "not yet valid", "unknown ca", "revoked",
					     "bad key usage", "name mismatch", "not allowed",
					     "no certificate", "stale crl", "chain too long", "weak key",
					     "weak signature", "malformed name" };
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(r, words[i]) == 0)
			return 1;
	return 0;
}

static void check_ids(char ids[][VERIFY_ID_MAX], size_t n, size_t max)
{
	CHECK(n <= max);
	for (size_t i = 0; i < n; i++) {
		size_t l = strnlen(ids[i], VERIFY_ID_MAX);
		CHECK(l > 0 && l < VERIFY_ID_MAX);
		for (size_t k = 0; k < l; k++) {
			unsigned char c = (unsigned char)ids[i][k];
			CHECK(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
		}
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(ids[i], ids[j]) != 0);
	}
}

/* 1 if id comes from one of the certificate's dNSName or URI SANs (the
 * domain of "sip:"/"sips:" + id), compared case-insensitively; sets
 * *has_name_san when the certificate has any dNSName or URI SAN at all. */
static int from_san(gnutls_x509_crt_t crt, const char *id, int *has_name_san)
{
	static char buf[70000];
	int found = 0;

	*has_name_san = 0;
	for (unsigned seq = 0;; seq++) {
		size_t size = sizeof buf - 1;
		unsigned type = 0;
		int ret = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, &size, &type, NULL);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (ret == GNUTLS_E_X509_UNKNOWN_SAN)
			continue;
		if (ret < 0) {
			*has_name_san = 1; /* unparsable: no CN either */
			break;
		}
		if (ret != GNUTLS_SAN_DNSNAME && ret != GNUTLS_SAN_URI)
			continue;
		*has_name_san = 1;
		buf[size] = '\0';
		if (strlen(buf) != size)
			continue;
		if (ret == GNUTLS_SAN_DNSNAME && strcasecmp(buf, id) == 0)
			found = 1;
		if (ret == GNUTLS_SAN_URI &&
		    ((strncasecmp(buf, "sip:", 4) == 0 && strcasecmp(buf + 4, id) == 0) ||
		     (strncasecmp(buf, "sips:", 5) == 0 && strcasecmp(buf + 5, id) == 0)))
			found = 1;
	}
	return found;
}

static void check_cert(const uint8_t *der, size_t len, char **patterns, size_t npat, int server)
{
	gnutls_x509_crt_t crt;
	gnutls_x509_trust_list_t tl;
	gnutls_datum_t d = { (unsigned char *)der, (unsigned)len };
	char ids[VERIFY_MAX_IDS][VERIFY_ID_MAX], few[2][VERIFY_ID_MAX];
	size_t nids, nfew;
	struct trust_set set;
	struct verify_policy pol;
	struct verdict v;
	int r;

	CHECK(gnutls_x509_crt_init(&crt) == 0);
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		/* still a verdict: refused, the certificate does not parse */
		memset(&set, 0, sizeof set);
		pol = (struct verify_policy){ &set, 1, server ? VERIFY_PURPOSE_SERVER : VERIFY_PURPOSE_CLIENT,
					      NULL };
		set.name = "fuzz";
		CHECK(verify_chain(&d, 1, &pol, &v) == -1 && v.reason && known_reason(v.reason));
		return;
	}
	nids = verify_cert_identities(crt, ids, VERIFY_MAX_IDS);
	check_ids(ids, nids, VERIFY_MAX_IDS);
	nfew = verify_cert_identities(crt, few, 2);
	check_ids(few, nfew, 2);
	CHECK(nfew == (nids < 2 ? nids : 2));
	for (size_t i = 0; i < nfew; i++)
		CHECK(strcmp(few[i], ids[i]) == 0);
	for (size_t i = 0; i < nids; i++) {
		int has_name_san;
		int in_san = from_san(crt, ids[i], &has_name_san);
		/* the subject CN counts only without any dNSName or URI SAN,
		 * usable or not (RFC 5922 section 7.1) */
		CHECK(in_san || !has_name_san);
		for (size_t j = 0; j < npat; j++)
			check_match(patterns[j], ids[i]);
	}

	CHECK(gnutls_x509_trust_list_init(&tl, 0) == 0);
	/* the trust list takes the certificate over when it accepts it */
	if (gnutls_x509_trust_list_add_cas(tl, &crt, 1, 0) != 1)
		gnutls_x509_crt_deinit(crt);
	set = (struct trust_set){ "fuzz", tl, patterns, npat };
	pol = (struct verify_policy){ &set, 1, server ? VERIFY_PURPOSE_SERVER : VERIFY_PURPOSE_CLIENT,
				      server ? "name mismatch" : "not allowed" };
	r = verify_chain(&d, 1, &pol, &v);
	CHECK(r == 0 || r == -1);
	check_terminated(v.identity, sizeof v.identity);
	check_terminated(v.subject, sizeof v.subject);
	check_terminated(v.serial, sizeof v.serial);
	check_terminated(v.detail, sizeof v.detail);
	if (r == 0) {
		CHECK(v.reason == NULL && v.set_name == set.name);
		if (npat) {
			size_t i, j;
			for (i = 0; i < nids && strcmp(ids[i], v.identity); i++)
				;
			CHECK(i < nids);
			for (j = 0; j < npat && !ref_match(patterns[j], v.identity); j++)
				;
			CHECK(j < npat);
		} else {
			size_t i;
			for (i = 0; i < nids && strchr(ids[i], '*'); i++)
				;
			CHECK(strcmp(v.identity, i < nids ? ids[i] : "") == 0);
		}
	} else {
		CHECK(v.reason && known_reason(v.reason) && v.set_name == NULL);
	}
	gnutls_x509_trust_list_deinit(tl, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *patterns[MAX_PATTERNS];
	size_t off = 1, npat;

	if (size < 1 || size > 65536)
		return 0;
	/* a NUL-terminated copy, so that strings found in it end inside it */
	buf = malloc(size + 1);
	CHECK(buf);
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (data[0] & 0x80) {
		char *pat = buf + 1, *id = pat + strlen(pat);
		id = id < buf + size ? id + 1 : id;
		check_match(pat, id);
		free(buf);
		return 0;
	}
	npat = data[0] & 3;
	for (size_t i = 0; i < npat; i++) {
		patterns[i] = buf + off;
		off += strlen(buf + off);
		if (off < size)
			off++;
	}
	check_cert(data + off, size - off, patterns, npat, (data[0] >> 2) & 1);
	free(buf);
	return 0;
}

#include "fuzz-standalone.h"
