/*
 * unit-verify: TAP tests of sidecar/verify.c (peer chain -> verdict).
 *
 * Makes a fresh PKI with t/mkcerts.sh in a temporary directory (removed at
 * the end unless T_KEEP is set), builds GnuTLS trust lists from it the way
 * the daemon does (CA file + CRL file, CRLs verified), and checks every
 * reason word, the RFC 5922 identity rules, allow-peer patterns and the
 * per-partner trust sets. The script is found in $T_SRC (set by make check),
 * else next to the program (DIR/../t, DIR), else in ./t. Skips when certtool
 * is missing.
 *
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h> /* configure results (top build dir) */
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/x509-ext.h>

#include "tap.h"
#include "verify.h"

#define NTESTS 196

static char tmpdir[PATH_MAX];
static char certdir[PATH_MAX + 8];

/* Returns "CERTDIR/NAME" in one of a few rotating static buffers. */
static const char *cpath(const char *name)
{
	static char buf[4][2 * PATH_MAX];
	static unsigned i;
	char *b = buf[i++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", certdir, name);
	return b;
}

/* Sets *dir to the directory holding mkcerts.sh; bails when not found. */
static void find_src(const char *argv0, char *dir, size_t size)
{
	const char *env = getenv("T_SRC");
	char self[PATH_MAX], probe[PATH_MAX + 16];
	const char *cands[3];
	size_t nc = 0;

	if (env && *env) {
		snprintf(dir, size, "%s", env);
		return;
	}
	snprintf(self, sizeof self, "%s", argv0);
	char *slash = strrchr(self, '/');
	if (slash) {
		*slash = '\0';
		static char up[PATH_MAX + 8];
		snprintf(up, sizeof up, "%s/../t", self);
		cands[nc++] = up;
		cands[nc++] = self;
	}
	cands[nc++] = "t";
	for (size_t i = 0; i < nc; i++) {
		snprintf(probe, sizeof probe, "%s/mkcerts.sh", cands[i]);
		if (access(probe, R_OK) == 0) {
			snprintf(dir, size, "%s", cands[i]);
			return;
		}
	}
	bail("cannot find mkcerts.sh: set T_SRC to the t/ source directory");
}

/* Runs "sh SRC/mkcerts.sh CERTDIR"; skips the whole test on exit 77. */
static void make_certs(const char *src)
{
	char script[PATH_MAX + 16];
	int status;
	pid_t pid;

	snprintf(script, sizeof script, "%s/mkcerts.sh", src);
	pid = fork();
	if (pid < 0)
		bail("fork: %m");
	if (pid == 0) {
		execlp("sh", "sh", script, certdir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		bail("waitpid: %m");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		skip_all("certtool not installed");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bail("%s %s failed (status %d)", script, certdir, status);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the temporary directory unless T_KEEP is set. */
static void cleanup(void)
{
	if (tmpdir[0] == '\0')
		return;
	if (getenv("T_KEEP")) {
		diag("kept %s", tmpdir);
		return;
	}
	if (nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		diag("could not remove %s", tmpdir);
}

/* Reads the first certificate of CERTDIR/NAME.crt as DER (gnutls_free it). */
static gnutls_datum_t load_der(const char *name)
{
	char file[256];
	gnutls_datum_t pem = { NULL, 0 }, der = { NULL, 0 };
	int ret;

	snprintf(file, sizeof file, "%s.crt", name);
	if ((ret = gnutls_load_file(cpath(file), &pem)) < 0)
		bail("load %s: %s", file, gnutls_strerror(ret));
	if ((ret = gnutls_pem_base64_decode2("CERTIFICATE", &pem, &der)) < 0)
		bail("decode %s: %s", file, gnutls_strerror(ret));
	gnutls_free(pem.data);
	return der;
}

/* Parses CERTDIR/NAME.crt (gnutls_x509_crt_deinit it). */
static gnutls_x509_crt_t load_crt(const char *name)
{
	gnutls_datum_t der = load_der(name);
	gnutls_x509_crt_t crt;
	int ret;

	if ((ret = gnutls_x509_crt_init(&crt)) < 0)
		bail("crt_init: %s", gnutls_strerror(ret));
	if ((ret = gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER)) < 0)
		bail("import %s: %s", name, gnutls_strerror(ret));
	gnutls_free(der.data);
	return crt;
}

/*
 * A trust list from CERTDIR/CA (PEM, may hold several) and, if crl is not
 * NULL, CERTDIR/CRL: as the daemon should, with the CRLs verified against
 * the CAs and a CRL that fails to verify (stale, wrong CA) an error.
 */
static gnutls_x509_trust_list_t mk_tl(const char *ca, const char *crl)
{
	gnutls_x509_trust_list_t tl;
	int ret;

	if ((ret = gnutls_x509_trust_list_init(&tl, 0)) < 0)
		bail("trust_list_init: %s", gnutls_strerror(ret));
	ret = gnutls_x509_trust_list_add_trust_file(tl, cpath(ca), crl ? cpath(crl) : NULL, GNUTLS_X509_FMT_PEM,
						    GNUTLS_TL_VERIFY_CRL | GNUTLS_TL_FAIL_ON_INVALID_CRL, 0);
	if (ret <= 0)
		bail("add_trust_file %s %s: %s", ca, crl ? crl : "", ret < 0 ? gnutls_strerror(ret) : "nothing added");
	return tl;
}

/*
 * verify_chain on chain[0..n) with sets[0..nsets), then two tests: the
 * reason (NULL = admitted) and, when admitted, the identity, else the -1
 * return. The verdict goes to *out when not NULL.
 */
static void check_chain(const char *what, const gnutls_datum_t *chain, unsigned n, const struct trust_set *sets,
			size_t nsets, enum verify_purpose purpose, const char *want_reason, const char *want_id,
			struct verdict *out)
{
	struct verify_policy p = {
		.sets = sets,
		.nsets = nsets,
		.purpose = purpose,
		.mismatch_reason = purpose == VERIFY_PURPOSE_CLIENT ? "not allowed" : "name mismatch",
	};
	struct verdict v;
	int ret = verify_chain(chain, n, &p, &v);

	is_str(want_reason, v.reason, "%s: %s", what, want_reason ? want_reason : "admitted");
	if (want_reason)
		is_int(-1, ret, "%s: refused", what);
	else
		is_str(want_id, v.identity, "%s: identity %s", what, want_id);
	if (ret != (v.reason ? -1 : 0))
		diag("return %d does not agree with reason %s", ret, v.reason ? v.reason : "(null)");
	diag("  subject='%s' serial=%s set=%s detail='%s'", v.subject, v.serial, v.set_name ? v.set_name : "-",
	     v.detail);
	if (out)
		*out = v;
}

/*
 * check_chain on the one-certificate chain CERTDIR/NAME.crt; setsdesc
 * describes the trust sets in the test names.
 */
static void check_one(const char *name, const char *setsdesc, const struct trust_set *sets, size_t nsets,
		      enum verify_purpose purpose, const char *want_reason, const char *want_id, struct verdict *out)
{
	gnutls_datum_t der = load_der(name);
	char what[256];

	if (*setsdesc == '&')
		setsdesc++;
	snprintf(what, sizeof what, "%s as %s, %s", name, purpose == VERIFY_PURPOSE_CLIENT ? "client" : "server",
		 setsdesc);
	check_chain(what, &der, 1, sets, nsets, purpose, want_reason, want_id, out);
	gnutls_free(der.data);
}
#define check(name, sets, ...) check_one(name, #sets, sets, __VA_ARGS__)

/* One test: verify_cert_identities on CERTDIR/NAME.crt gives want ("a,b"). */
static void check_ids_crt(const char *what, gnutls_x509_crt_t crt, const char *want)
{
	char ids[VERIFY_MAX_IDS][VERIFY_ID_MAX];
	char got[VERIFY_MAX_IDS * VERIFY_ID_MAX] = "";
	size_t n = verify_cert_identities(crt, ids, VERIFY_MAX_IDS);

	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(got, ",");
		strcat(got, ids[i]);
	}
	is_str(want, got, "identities of %s: '%s'", what, want);
}

static void check_ids(const char *name, const char *want)
{
	gnutls_x509_crt_t crt = load_crt(name);
	check_ids_crt(name, crt, want);
	gnutls_x509_crt_deinit(crt);
}

/*
 * A self-signed certificate made in memory with the given CNs and SAN URIs
 * and dNSNames (NULL-terminated lists; any may be NULL), for identity rules
 * that need odd certificates. It is exported and imported again: GnuTLS
 * 3.7 does not read back the SANs of a certificate built in memory.
 */
static gnutls_x509_crt_t mk_crt(const char *const *cns, const char *const *uris, const char *const *dns)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[1] = { 0x7f };
	int ret;

	if ((ret = gnutls_x509_privkey_init(&key)) < 0 ||
	    (ret = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
						0)) < 0 ||
	    (ret = gnutls_x509_crt_init(&crt)) < 0 || (ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
	    (ret = gnutls_x509_crt_set_activation_time(crt, time(NULL) - 3600)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 3600)) < 0 ||
	    (ret = gnutls_x509_crt_set_key(crt, key)) < 0)
		bail("mk_crt: %s", gnutls_strerror(ret));
	for (; cns && *cns; cns++)
		if ((ret = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, *cns, strlen(*cns))) < 0)
			bail("mk_crt cn: %s", gnutls_strerror(ret));
	for (; uris && *uris; uris++)
		if ((ret = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_URI, *uris, strlen(*uris),
								GNUTLS_FSAN_APPEND)) < 0)
			bail("mk_crt uri %s: %s", *uris, gnutls_strerror(ret));
	for (; dns && *dns; dns++)
		if ((ret = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, *dns, strlen(*dns),
								GNUTLS_FSAN_APPEND)) < 0)
			bail("mk_crt dns %s: %s", *dns, gnutls_strerror(ret));
	if ((ret = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0)
		bail("mk_crt sign: %s", gnutls_strerror(ret));
	gnutls_x509_privkey_deinit(key);
	gnutls_datum_t der = { NULL, 0 };
	if ((ret = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der)) < 0)
		bail("mk_crt export: %s", gnutls_strerror(ret));
	gnutls_x509_crt_deinit(crt);
	if ((ret = gnutls_x509_crt_init(&crt)) < 0 || (ret = gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER)) < 0)
		bail("mk_crt import: %s", gnutls_strerror(ret));
	gnutls_free(der.data);
	return crt;
}

/* 20 tests of verify_identity_match. */
static void test_identity_match(void)
{
	static const struct {
		const char *pattern, *identity;
		int want;
	} cases[] = {
		{ "peer.example.test", "peer.example.test", 1 },
		{ "PEER.Example.TEST", "peer.example.test", 1 },
		{ "peer.example.test", "Peer.EXAMPLE.test", 1 },
		{ "peer.example.test", "peer.example.tes", 0 },
		{ "peer.example.test", "xpeer.example.test", 0 },
		{ "peer.example.test", "peer.example.test.", 0 },
		{ "*.example.test", "a.example.test", 1 },
		{ "*.example.test", "Peer.Example.Test", 1 },
		{ "*.Example.TEST", "peer.example.test", 1 },
		{ "*.example.test", "a.b.example.test", 0 },
		{ "*.example.test", "example.test", 0 },
		{ "*.example.test", ".example.test", 0 },
		{ "*.example.test", "aexample.test", 0 },
		{ "*.example.test", "*.example.test", 0 },
		{ "peer.example.test", "*.example.test", 0 },
		{ "*", "a", 0 },
		{ "*.", "a.", 0 },
		{ "p*.example.test", "p*.example.test", 0 },
		{ "", "", 0 },
		{ "peer.example.test", "", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		is_int(cases[i].want, verify_identity_match(cases[i].pattern, cases[i].identity),
		       "match('%s', '%s') = %d", cases[i].pattern, cases[i].identity, cases[i].want);
}

/* 18 tests of verify_cert_identities. */
static void test_cert_identities(void)
{
	check_ids("client", "peer.example.test");
	check_ids("client-dns", "other.example.test");
	check_ids("client-cn", "cn.example.test");
	check_ids("client-uri-user", "");
	check_ids("client-wild", "*.example.test");
	check_ids("client-upper", "peer.example.test");
	check_ids("server", "sip.example.test");
	check_ids("server-wrongname", "wrong.example.test");
	check_ids("partner", "sip.partner.example.test");

	static const char *const cn_a[] = { "a.example.test", NULL };
	static const char *const cn_two[] = { "a.example.test", "b.example.test", NULL };
	static const char *const uris[] = { "SIP:Upper.Example.Test", "sips:secure.example.test",
					    "sip:port.example.test:5061", "sip:params.example.test;transport=tls",
					    "sip:bob@user.example.test", "tel:+15551234", "http://web.example.test/",
					    "sip:", NULL };
	static const char *const dns[] = { "d.example.test", "D.EXAMPLE.TEST", NULL };
	static const char *const uri_user[] = { "sip:bob@user.example.test", NULL };
	static const char *const uri_tel[] = { "tel:+15551234", NULL };
	struct {
		const char *what;
		gnutls_x509_crt_t crt;
		const char *want;
	} mem[] = {
		{ "URI forms (only bare sip:/sips: DOMAIN)", mk_crt(cn_a, uris, NULL),
		  "upper.example.test,secure.example.test" },
		{ "dNSName duplicates", mk_crt(cn_a, NULL, dns), "d.example.test" },
		{ "CN fallback", mk_crt(cn_a, NULL, NULL), "a.example.test" },
		{ "two CNs", mk_crt(cn_two, NULL, NULL), "" },
		{ "CN with user-part URI SAN", mk_crt(cn_a, uri_user, NULL), "" },
		{ "CN with tel: URI SAN", mk_crt(cn_a, uri_tel, NULL), "" },
	};
	for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
		check_ids_crt(mem[i].what, mem[i].crt, mem[i].want);
		gnutls_x509_crt_deinit(mem[i].crt);
	}

	gnutls_x509_crt_t crt = load_crt("client-dns");
	char ids[2][VERIFY_ID_MAX];
	is_int(0, (long long)verify_cert_identities(crt, ids, 0), "max 0 stores nothing");
	gnutls_x509_crt_deinit(crt);
	crt = mk_crt(cn_a, uris, NULL);
	is_int(1, (long long)verify_cert_identities(crt, ids, 1), "max 1 stores one");
	is_str("upper.example.test", ids[0], "max 1: the first");
	gnutls_x509_crt_deinit(crt);
}

/* ---- certificate edge cases, made in memory --------------------------- */

/* What mk_der builds. Unset fields: an ECDSA P-256 leaf for TLS client and
 * server, signed with SHA-256 by the issuer. */
struct mk {
	const char *cn;
	const char *const *dns;        /* NULL-terminated dNSNames */
	const char *const *uris;       /* NULL-terminated URIs */
	const char *raw_dns;           /* one more dNSName of raw_len bytes (may hold NUL) */
	size_t raw_len;
	unsigned bulk;                 /* this many more dNSNames hN.bulk.example.test */
	int ca;                        /* a CA certificate */
	unsigned rsa_bits;             /* RSA key of this size instead of ECDSA */
	gnutls_digest_algorithm_t dig; /* 0: SHA-256 */
	gnutls_x509_crt_t issuer;      /* NULL: self-signed */
	gnutls_x509_privkey_t issuer_key;
};

static unsigned mk_serial = 0x1000;

/* Appends a GeneralName dNSName ([2] IA5String, len < 128 bytes, may hold
 * NUL) at der[off]; returns the new length. */
static size_t der_dns(unsigned char *der, size_t size, size_t off, const char *val, size_t len)
{
	if (len >= 128 || off + 2 + len > size)
		bail("der_dns: too long");
	der[off] = 0x82;
	der[off + 1] = (unsigned char)len;
	memcpy(der + off + 2, val, len);
	return off + 2 + len;
}

/* Adds one SAN of len bytes (which may hold NUL) to sans. */
static int san_add(gnutls_subject_alt_names_t sans, unsigned type, const char *val, size_t len)
{
	gnutls_datum_t d = { (unsigned char *)val, (unsigned)len };
	return gnutls_subject_alt_names_set(sans, type, &d, NULL);
}

/*
 * Builds the certificate m describes and returns it as DER (gnutls_free it);
 * its parsed form and key go to *crt_out / *key_out when not NULL (else they
 * are freed).
 */
static gnutls_datum_t mk_der(const struct mk *m, gnutls_x509_crt_t *crt_out, gnutls_x509_privkey_t *key_out)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[3] = { (unsigned char)(mk_serial >> 16), (unsigned char)(mk_serial >> 8),
				    (unsigned char)mk_serial };
	int ret;

	mk_serial++;
	if ((ret = gnutls_x509_privkey_init(&key)) < 0)
		bail("mk_der: %s", gnutls_strerror(ret));
	if (m->rsa_bits)
		ret = gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, m->rsa_bits, 0);
	else
		ret = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
						   GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (ret < 0 || (ret = gnutls_x509_crt_init(&crt)) < 0 || (ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
	    (ret = gnutls_x509_crt_set_activation_time(crt, time(NULL) - 3600)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 86400)) < 0 ||
	    (ret = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (ret = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, m->cn, strlen(m->cn))) < 0 ||
	    (ret = gnutls_x509_crt_set_basic_constraints(crt, m->ca ? 1 : 0, -1)) < 0)
		bail("mk_der %s: %s", m->cn, gnutls_strerror(ret));
	if (m->ca)
		ret = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	else if ((ret = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
								    GNUTLS_KEY_KEY_ENCIPHERMENT)) >= 0 &&
		 (ret = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) >= 0)
		ret = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (ret < 0)
		bail("mk_der %s usage: %s", m->cn, gnutls_strerror(ret));
	/* all SANs in one extension, encoded once (appending one at a time
	 * re-encodes the extension each time: quadratic) */
	gnutls_subject_alt_names_t sans;
	if ((ret = gnutls_subject_alt_names_init(&sans)) < 0)
		bail("mk_der sans: %s", gnutls_strerror(ret));
	unsigned nsans = 0;
	for (const char *const *d = m->dns; d && *d; d++, nsans++)
		if ((ret = san_add(sans, GNUTLS_SAN_DNSNAME, *d, strlen(*d))) < 0)
			bail("mk_der dns %s: %s", *d, gnutls_strerror(ret));
	for (const char *const *u = m->uris; u && *u; u++, nsans++)
		if ((ret = san_add(sans, GNUTLS_SAN_URI, *u, strlen(*u))) < 0)
			bail("mk_der uri %s: %s", *u, gnutls_strerror(ret));
	for (unsigned i = 0; i < m->bulk; i++, nsans++) {
		char name[64];
		int len = snprintf(name, sizeof name, "h%u.bulk.example.test", i);
		if ((ret = san_add(sans, GNUTLS_SAN_DNSNAME, name, (size_t)len)) < 0)
			bail("mk_der bulk: %s", gnutls_strerror(ret));
	}
	if (m->raw_dns) {
		/* GnuTLS copies SAN values as C strings: write the DER by hand */
		unsigned char der[1024];
		size_t len = 0;
		for (const char *const *d = m->dns; d && *d; d++)
			len = der_dns(der, sizeof der, len, *d, strlen(*d));
		len = der_dns(der, sizeof der, len, m->raw_dns, m->raw_len);
		if (len >= 128 || len + 2 > sizeof der)
			bail("mk_der: raw SANs too long");
		memmove(der + 2, der, len);
		der[0] = 0x30; /* GeneralNames: SEQUENCE */
		der[1] = (unsigned char)len;
		if ((ret = gnutls_x509_crt_set_extension_by_oid(crt, "2.5.29.17", der, len + 2, 0)) < 0)
			bail("mk_der raw san extension: %s", gnutls_strerror(ret));
	} else if (nsans) {
		gnutls_datum_t ext = { NULL, 0 };
		if ((ret = gnutls_x509_ext_export_subject_alt_names(sans, &ext)) < 0 ||
		    (ret = gnutls_x509_crt_set_extension_by_oid(crt, "2.5.29.17", ext.data, ext.size, 0)) < 0)
			bail("mk_der san extension: %s", gnutls_strerror(ret));
		gnutls_free(ext.data);
	}
	gnutls_subject_alt_names_deinit(sans);
	ret = gnutls_x509_crt_sign2(crt, m->issuer ? m->issuer : crt, m->issuer ? m->issuer_key : key,
				    m->dig ? m->dig : GNUTLS_DIG_SHA256, 0);
	if (ret < 0)
		bail("mk_der %s sign: %s", m->cn, gnutls_strerror(ret));
	gnutls_datum_t der = { NULL, 0 };
	if ((ret = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der)) < 0)
		bail("mk_der export: %s", gnutls_strerror(ret));
	gnutls_x509_crt_deinit(crt);
	if (crt_out) {
		if ((ret = gnutls_x509_crt_init(crt_out)) < 0 ||
		    (ret = gnutls_x509_crt_import(*crt_out, &der, GNUTLS_X509_FMT_DER)) < 0)
			bail("mk_der import: %s", gnutls_strerror(ret));
	}
	if (key_out)
		*key_out = key;
	else
		gnutls_x509_privkey_deinit(key);
	return der;
}

/* Reads CERTDIR/NAME.key (PEM). */
static gnutls_x509_privkey_t load_key(const char *name)
{
	char file[256];
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_privkey_t key;
	int ret;

	snprintf(file, sizeof file, "%s.key", name);
	if ((ret = gnutls_load_file(cpath(file), &pem)) < 0 || (ret = gnutls_x509_privkey_init(&key)) < 0 ||
	    (ret = gnutls_x509_privkey_import(key, &pem, GNUTLS_X509_FMT_PEM)) < 0)
		bail("load key %s: %s", file, gnutls_strerror(ret));
	gnutls_free(pem.data);
	return key;
}

/*
 * Writes CERTDIR/NAME: a CRL by CA (revoking nothing) whose thisUpdate and
 * nextUpdate are this_ago and next_ago seconds in the past (next_ago may be
 * negative: in the future). Fills *info with its issuer and nextUpdate.
 */
static void mk_crl(const char *name, const char *ca, time_t this_ago, time_t next_ago, struct verify_crl *info)
{
	gnutls_x509_crl_t crl;
	gnutls_x509_crt_t cacrt = load_crt(ca);
	gnutls_x509_privkey_t cakey = load_key(ca);
	gnutls_datum_t out = { NULL, 0 };
	time_t now = time(NULL);
	FILE *f;
	int ret;

	if ((ret = gnutls_x509_crl_init(&crl)) < 0 || (ret = gnutls_x509_crl_set_version(crl, 2)) < 0 ||
	    (ret = gnutls_x509_crl_set_this_update(crl, now - this_ago)) < 0 ||
	    (ret = gnutls_x509_crl_set_next_update(crl, now - next_ago)) < 0 ||
	    (ret = gnutls_x509_crl_sign2(crl, cacrt, cakey, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (ret = gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &out)) < 0 ||
	    (ret = gnutls_x509_crl_get_raw_issuer_dn(crl, &info->issuer)) < 0)
		bail("mk_crl %s: %s", name, gnutls_strerror(ret));
	info->next_update = gnutls_x509_crl_get_next_update(crl);
	if ((f = fopen(cpath(name), "w")) == NULL || fwrite(out.data, 1, out.size, f) != out.size || fclose(f) != 0)
		bail("write %s: %m", name);
	gnutls_free(out.data);
	gnutls_x509_crl_deinit(crl);
	gnutls_x509_crt_deinit(cacrt);
	gnutls_x509_privkey_deinit(cakey);
}

/* A trust list as the daemon builds it: CA file, then CRL file unverified
 * (tls.c checks the CRL's signature itself, and keeps a stale one). */
static gnutls_x509_trust_list_t mk_tl_daemon(const char *ca, const char *crl)
{
	gnutls_x509_trust_list_t tl;
	int ret;

	if ((ret = gnutls_x509_trust_list_init(&tl, 0)) < 0 ||
	    (ret = gnutls_x509_trust_list_add_trust_file(tl, cpath(ca), NULL, GNUTLS_X509_FMT_PEM, 0, 0)) <= 0 ||
	    (crl && (ret = gnutls_x509_trust_list_add_trust_file(tl, NULL, cpath(crl), GNUTLS_X509_FMT_PEM, 0, 0)) < 0))
		bail("mk_tl_daemon %s %s: %s", ca, crl ? crl : "", ret < 0 ? gnutls_strerror(ret) : "nothing added");
	return tl;
}

/* verify_chain with a depth and a stale-CRL mode (check_chain has neither). */
static int verify_with(const gnutls_datum_t *chain, unsigned n, const struct trust_set *set, unsigned depth,
		       int stale_warn, struct verdict *v)
{
	struct verify_policy p = { .sets = set, .nsets = 1, .purpose = VERIFY_PURPOSE_CLIENT,
				   .mismatch_reason = "not allowed", .max_depth = depth,
				   .crl_stale_warn = stale_warn };
	int ret = verify_chain(chain, n, &p, v);
	diag("  -> %s detail='%s' warning='%s'", v->reason ? v->reason : "admitted", v->detail, v->warning);
	return ret;
}

/* 33 tests: verify-depth, weak keys and hashes, NUL bytes in names, sips:,
 * 5,000 SANs, stale CRLs. */
static void test_edges(void)
{
	gnutls_x509_crt_t ca = load_crt("ca");
	gnutls_x509_privkey_t cakey = load_key("ca");
	gnutls_x509_trust_list_t tl = mk_tl_daemon("ca.crt", "ca.crl");
	struct trust_set any = { "ca", tl, NULL, 0, NULL, 0 };
	char *peer[] = { "peer.example.test" };
	struct trust_set only_peer = { "ca", tl, peer, 1, NULL, 0 };
	static const char *const peer_dns[] = { "peer.example.test", NULL };
	struct verdict v;

	/* verify-depth: leaf + 10 intermediates under ca */
	gnutls_datum_t chain[12];
	gnutls_x509_crt_t icrt[11];
	gnutls_x509_privkey_t ikey[11];
	icrt[0] = ca;
	ikey[0] = cakey;
	for (unsigned i = 1; i <= 10; i++) {
		char cn[32];
		snprintf(cn, sizeof cn, "intermediate %u", i);
		struct mk m = { .cn = cn, .ca = 1, .issuer = icrt[i - 1], .issuer_key = ikey[i - 1] };
		chain[11 - i] = mk_der(&m, &icrt[i], &ikey[i]);
	}
	struct mk leaf = { .cn = "peer.example.test", .dns = peer_dns, .issuer = icrt[10], .issuer_key = ikey[10] };
	chain[0] = mk_der(&leaf, NULL, NULL);
	verify_with(chain, 11, &any, 0, 0, &v);
	is_str("chain too long", v.reason, "10 intermediate CAs, default verify-depth 8: chain too long");
	ok(strstr(v.detail, "10 intermediate") != NULL, "... the detail counts them: %s", v.detail);
	is_int(0, verify_with(chain, 11, &any, 10, 0, &v), "10 intermediate CAs, verify-depth 10: admitted");
	is_str("chain too long", (verify_with(chain, 11, &any, 9, 0, &v), v.reason), "... verify-depth 9: refused");
	chain[11] = load_der("ca");
	is_int(0, verify_with(chain, 12, &any, 10, 0, &v), "... plus the root, verify-depth 10: the root is not counted");
	gnutls_free(chain[11].data);
	/* 8 intermediates: chain[0] is the leaf under intermediate 10; take a
	 * leaf under intermediate 8 instead */
	leaf.issuer = icrt[8];
	leaf.issuer_key = ikey[8];
	gnutls_datum_t chain8[9];
	chain8[0] = mk_der(&leaf, NULL, NULL);
	for (unsigned i = 1; i <= 8; i++)
		chain8[i] = chain[i + 2];
	is_int(0, verify_with(chain8, 9, &any, 0, 0, &v), "8 intermediate CAs, default verify-depth: admitted");
	gnutls_free(chain8[0].data);
	for (unsigned i = 0; i < 11; i++)
		gnutls_free(chain[i].data);
	for (unsigned i = 1; i <= 10; i++) {
		gnutls_x509_crt_deinit(icrt[i]);
		gnutls_x509_privkey_deinit(ikey[i]);
	}

	/* weak keys and signatures */
	struct mk good = { .cn = "peer.example.test", .dns = peer_dns, .issuer = ca, .issuer_key = cakey };
	gnutls_datum_t d = mk_der(&good, NULL, NULL);
	is_int(0, verify_with(&d, 1, &only_peer, 0, 0, &v), "a normal ECDSA/SHA-256 leaf passes");
	gnutls_free(d.data);
	struct mk rsa2048 = good;
	rsa2048.rsa_bits = 2048;
	d = mk_der(&rsa2048, NULL, NULL);
	is_int(0, verify_with(&d, 1, &only_peer, 0, 0, &v), "an RSA-2048 leaf passes");
	gnutls_free(d.data);
	struct mk rsa1024 = good;
	rsa1024.rsa_bits = 1024;
	d = mk_der(&rsa1024, NULL, NULL);
	verify_with(&d, 1, &only_peer, 0, 0, &v);
	is_str("weak key", v.reason, "an RSA-1024 leaf: weak key");
	ok(strstr(v.detail, "1024") != NULL, "... the detail gives the size: %s", v.detail);
	gnutls_free(d.data);
	struct mk sha1 = good;
	sha1.dig = GNUTLS_DIG_SHA1;
	d = mk_der(&sha1, NULL, NULL);
	verify_with(&d, 1, &only_peer, 0, 0, &v);
	is_str("weak signature", v.reason, "a leaf signed with SHA-1: weak signature");
	ok(strstr(v.detail, "SHA1") != NULL, "... the detail names the algorithm: %s", v.detail);
	gnutls_free(d.data);
	/* a SHA-1 intermediate under ca, and a good leaf under it */
	gnutls_x509_crt_t sha1ca;
	gnutls_x509_privkey_t sha1cakey;
	struct mk weakint = { .cn = "sha1 intermediate", .ca = 1, .dig = GNUTLS_DIG_SHA1, .issuer = ca,
			      .issuer_key = cakey };
	gnutls_datum_t wchain[2];
	wchain[1] = mk_der(&weakint, &sha1ca, &sha1cakey);
	struct mk under = good;
	under.issuer = sha1ca;
	under.issuer_key = sha1cakey;
	wchain[0] = mk_der(&under, NULL, NULL);
	verify_with(wchain, 2, &only_peer, 0, 0, &v);
	is_str("weak signature", v.reason, "a SHA-256 leaf under a SHA-1 intermediate: weak signature");
	gnutls_free(wchain[0].data);
	gnutls_free(wchain[1].data);
	gnutls_x509_crt_deinit(sha1ca);
	gnutls_x509_privkey_deinit(sha1cakey);
	/* a self-signed SHA-1 root sent along is not judged by its hash */
	gnutls_x509_crt_t oldroot;
	gnutls_x509_privkey_t oldrootkey;
	struct mk oldr = { .cn = "old root", .ca = 1, .dig = GNUTLS_DIG_SHA1 };
	gnutls_datum_t rchain[2];
	rchain[1] = mk_der(&oldr, &oldroot, &oldrootkey);
	struct mk underold = good;
	underold.issuer = oldroot;
	underold.issuer_key = oldrootkey;
	rchain[0] = mk_der(&underold, NULL, NULL);
	verify_with(rchain, 2, &only_peer, 0, 0, &v);
	is_str("unknown ca", v.reason, "a leaf under an untrusted SHA-1 root it sends: unknown ca, not weak signature");
	gnutls_free(rchain[0].data);
	gnutls_free(rchain[1].data);
	gnutls_x509_crt_deinit(oldroot);
	gnutls_x509_privkey_deinit(oldrootkey);

	/* a NUL byte inside a SAN */
	static const char nul_name[] = "peer.example.test\0.evil.test";
	struct mk nul = { .cn = "peer.example.test", .raw_dns = nul_name, .raw_len = sizeof nul_name - 1,
			  .issuer = ca, .issuer_key = cakey };
	gnutls_x509_crt_t nulcrt;
	d = mk_der(&nul, &nulcrt, NULL);
	check_ids_crt("a dNSName with a NUL byte (and the same CN)", nulcrt, "");
	gnutls_x509_crt_deinit(nulcrt);
	verify_with(&d, 1, &only_peer, 0, 0, &v);
	is_str("malformed name", v.reason, "a dNSName with a NUL byte: malformed name");
	verify_with(&d, 1, &any, 0, 0, &v);
	is_str("malformed name", v.reason, "... also where any identity is allowed");
	gnutls_free(d.data);
	struct mk nul2 = nul;
	nul2.dns = peer_dns; /* a good name beside the forged one */
	d = mk_der(&nul2, NULL, NULL);
	verify_with(&d, 1, &only_peer, 0, 0, &v);
	is_str("malformed name", v.reason, "a good dNSName beside one with a NUL byte: malformed name");
	gnutls_free(d.data);

	/* sips: is the same domain as sip: */
	static const char *const sips_only[] = { "sips:peer.example.test", NULL };
	static const char *const both[] = { "sip:peer.example.test", "SIPS:Peer.Example.Test", NULL };
	struct mk sips = { .cn = "other.example.test", .uris = sips_only, .issuer = ca, .issuer_key = cakey };
	gnutls_x509_crt_t sipscrt;
	d = mk_der(&sips, &sipscrt, NULL);
	check_ids_crt("URI sips:peer.example.test only", sipscrt, "peer.example.test");
	gnutls_x509_crt_deinit(sipscrt);
	is_int(0, verify_with(&d, 1, &only_peer, 0, 0, &v), "sips:peer.example.test admitted by allow-peer peer.example.test");
	is_str("peer.example.test", v.identity, "... as peer.example.test");
	gnutls_free(d.data);
	sips.uris = both;
	d = mk_der(&sips, &sipscrt, NULL);
	check_ids_crt("sip: and SIPS: of one domain", sipscrt, "peer.example.test");
	gnutls_x509_crt_deinit(sipscrt);
	gnutls_free(d.data);

	/* 5,000 SANs: verified in bounded time */
	static const char *const first[] = { "peer.example.test", NULL };
	struct mk many = { .cn = "many.example.test", .dns = first, .bulk = 4999, .issuer = ca, .issuer_key = cakey };
	d = mk_der(&many, NULL, NULL);
	diag("a certificate with 5,000 SANs: %u bytes of DER", d.size);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r1 = verify_with(&d, 1, &only_peer, 0, 0, &v);
	int r2 = verify_with(&d, 1, &any, 0, 0, &v);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	is_int(0, r1 | r2, "5,000 SANs: admitted (allow-peer matching the first, and any)");
	/* T_TIME_FACTOR scales the bound for slow runs (valgrind: about 50) */
	const char *tf = getenv("T_TIME_FACTOR");
	double bound = 10000 * (tf && atof(tf) >= 1 ? atof(tf) : 1);
	ok(ms < bound, "5,000 SANs: two verifications took %.1f ms (bound %.0f ms)", ms, bound);
	gnutls_free(d.data);

	/* stale CRLs */
	struct verify_crl stale, fresh, stale2;
	mk_crl("stale.crl", "ca", 2 * 86400, 86400, &stale);
	mk_crl("fresh.crl", "ca", 3600, -86400, &fresh);
	mk_crl("stale2.crl", "ca2", 2 * 86400, 86400, &stale2);
	gnutls_x509_trust_list_t tl_stale = mk_tl_daemon("ca.crt", "stale.crl");
	gnutls_x509_trust_list_t tl_fresh = mk_tl_daemon("ca.crt", "fresh.crl");
	gnutls_x509_trust_list_t tl_bundle = mk_tl_daemon("bundle.crt", "stale2.crl");
	struct trust_set s_stale = { "ca", tl_stale, NULL, 0, &stale, 1 };
	struct trust_set s_fresh = { "ca", tl_fresh, NULL, 0, &fresh, 1 };
	struct trust_set s_bundle = { "bundle", tl_bundle, NULL, 0, &stale2, 1 };
	d = load_der("client");
	verify_with(&d, 1, &s_stale, 0, 0, &v);
	is_str("stale crl", v.reason, "a CRL past its nextUpdate, crl-stale = refuse: stale crl");
	ok(strstr(v.detail, "CRL stale since") != NULL, "... the detail says so: %s", v.detail);
	is_str("", v.identity, "... and no identity is handed out");
	is_int(0, verify_with(&d, 1, &s_stale, 0, 1, &v), "crl-stale = warn: admitted");
	ok(strncmp(v.warning, "stale crl", 9) == 0, "... with a warning: %s", v.warning);
	is_int(0, verify_with(&d, 1, &s_fresh, 0, 0, &v), "a fresh CRL: admitted");
	is_str("", v.warning, "... without a warning");
	is_int(0, verify_with(&d, 1, &s_bundle, 0, 0, &v), "a stale CRL of another CA (ca2) does not refuse ca's peers");
	gnutls_free(d.data);
	d = load_der("partner");
	verify_with(&d, 1, &s_bundle, 0, 0, &v);
	is_str("stale crl", v.reason, "... but refuses ca2's");
	gnutls_free(d.data);
	gnutls_free(stale.issuer.data);
	gnutls_free(fresh.issuer.data);
	gnutls_free(stale2.issuer.data);
	gnutls_x509_trust_list_deinit(tl_stale, 1);
	gnutls_x509_trust_list_deinit(tl_fresh, 1);
	gnutls_x509_trust_list_deinit(tl_bundle, 1);
	gnutls_x509_trust_list_deinit(tl, 1);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_privkey_deinit(cakey);
}

int main(int argc, char **argv)
{
	char src[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	struct verdict v;

	(void)argc;
	find_src(argv[0], src, sizeof src);
	snprintf(tmpdir, sizeof tmpdir, "%s/unit-verify-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("mkdtemp %s: %m", tmpdir);
	atexit(cleanup);
	snprintf(certdir, sizeof certdir, "%s/pki", tmpdir);
	make_certs(src);

	plan(NTESTS);
	test_identity_match();
	test_cert_identities();
	test_edges();

	/* Trust sets. */
	char *peer[] = { "peer.example.test" };
	char *peer_case[] = { "PEER.EXAMPLE.test" };
	char *wild[] = { "*.example.test" };
	char *wild2[] = { "*.test" };
	char *cn[] = { "cn.example.test" };
	char *user[] = { "user.example.test" };
	char *other_and_peer[] = { "nobody.example.test", "peer.example.test" };
	char *partner_peer[] = { "sip.partner.example.test" };
	char *server_name[] = { "sip.example.test" };
	gnutls_x509_trust_list_t tl_ca = mk_tl("ca.crt", "ca.crl");
	gnutls_x509_trust_list_t tl_ca_nocrl = mk_tl("ca.crt", NULL);
	gnutls_x509_trust_list_t tl_ca2 = mk_tl("ca2.crt", "ca2.crl");
	gnutls_x509_trust_list_t tl_bundle = mk_tl("bundle.crt", NULL);
	struct trust_set ca_any = { "ca", tl_ca, NULL, 0, NULL, 0 };
	struct trust_set ca_nocrl = { "ca", tl_ca_nocrl, NULL, 0, NULL, 0 };
	struct trust_set partner_only = { "partner", tl_ca2, partner_peer, 1, NULL, 0 };
	struct trust_set bundle_any = { "bundle", tl_bundle, NULL, 0, NULL, 0 };
	struct trust_set own_then_partner[] = { { "ca", tl_ca, peer, 1, NULL, 0 }, partner_only };
	struct trust_set partner_then_own[] = { partner_only, { "ca", tl_ca, peer, 1, NULL, 0 } };
	struct trust_set connect = { "connect", tl_ca, server_name, 1, NULL, 0 };
/* the set "ca" with allow-peer = peers[] */
#define allow(peers) ((struct trust_set[]){ { "ca", tl_ca, peers, sizeof peers / sizeof peers[0], NULL, 0 } })
	const enum verify_purpose C = VERIFY_PURPOSE_CLIENT, S = VERIFY_PURPOSE_SERVER;

	/* Chain checks, inbound (client purpose), no allow-peer. */
	check("client", &ca_any, 1, C, NULL, "peer.example.test", &v);
	is_str("ca", v.set_name, "admitting set is named");
	ok(strstr(v.subject, "CN=peer.example.test") != NULL, "subject is the leaf DN: %s", v.subject);
	is_str("20", v.serial, "serial in hex");
	ok(strncmp(v.detail, "expires 20", 10) == 0, "detail gives the expiry: %s", v.detail);
	check("client-expired", &ca_any, 1, C, "expired", NULL, NULL);
	check("client-notyet", &ca_any, 1, C, "not yet valid", NULL, &v);
	is_str(NULL, v.set_name, "no set named on refusal");
	check("client-revoked", &ca_any, 1, C, "revoked", NULL, NULL);
	check("client-revoked", &ca_nocrl, 1, C, NULL, "peer.example.test", NULL);
	check("client-rogue", &ca_any, 1, C, "unknown ca", NULL, NULL);
	check("client-selfsigned", &ca_any, 1, C, "unknown ca", NULL, NULL);
	check("client-serveronly", &ca_any, 1, C, "bad key usage", NULL, NULL);
	check("client", &ca_any, 1, S, "bad key usage", NULL, NULL);
	check("client-wild", &ca_any, 1, C, NULL, "", NULL);
	check("client-uri-user", &ca_any, 1, C, NULL, "", NULL);
	check("partner", &bundle_any, 1, C, NULL, "sip.partner.example.test", NULL);
	check("client", &bundle_any, 1, C, NULL, "peer.example.test", NULL);
	/* GnuTLS flags EXPIRED/PURPOSE_MISMATCH even with an unknown issuer. */
	check("client-expired", &partner_only, 1, C, "unknown ca", NULL, NULL);
	check("client-serveronly", &partner_only, 1, C, "unknown ca", NULL, NULL);
	check("client-expired", partner_then_own, 2, C, "expired", NULL, NULL);
	check("client-revoked", partner_then_own, 2, C, "revoked", NULL, NULL);

	/* Chain shapes. */
	gnutls_datum_t chain[VERIFY_MAX_IDS + 2];
	chain[0] = load_der("client");
	chain[1] = load_der("ca");
	check_chain("client + root", chain, 2, &ca_any, 1, C, NULL, "peer.example.test", NULL);
	chain[2] = chain[1];
	chain[1] = load_der("ca2");
	check_chain("client + unrelated ca2 + root", chain, 3, &ca_any, 1, C, NULL, "peer.example.test", NULL);
	gnutls_free(chain[1].data);
	chain[1] = chain[2];
	gnutls_datum_t rogue_chain[2] = { load_der("client-rogue"), load_der("rogue-ca") };
	check_chain("client-rogue + its root", rogue_chain, 2, &ca_any, 1, C, "unknown ca", NULL, NULL);
	gnutls_free(rogue_chain[0].data);
	gnutls_free(rogue_chain[1].data);
	gnutls_datum_t longc[17];
	for (unsigned i = 0; i < 17; i++)
		longc[i] = chain[0];
	check_chain("17 certificates", longc, 17, &ca_any, 1, C, "unknown ca", NULL, NULL);
	check_chain("16 certificates (the default verify-depth)", longc, 16, &ca_any, 1, C, "chain too long", NULL,
		    NULL);
	check_chain("9 certificates (8 intermediates, the default verify-depth)", longc, 9, &ca_any, 1, C, NULL,
		    "peer.example.test", NULL);
	gnutls_datum_t junk = { (unsigned char *)"\x30\x03junk", 7 };
	check_chain("junk DER", &junk, 1, &ca_any, 1, C, "unknown ca", NULL, NULL);
	gnutls_datum_t leaf_junk[2] = { chain[0], junk };
	check_chain("junk after the leaf", leaf_junk, 2, &ca_any, 1, C, "unknown ca", NULL, NULL);
	check_chain("no certificate", NULL, 0, &ca_any, 1, C, "no certificate", NULL, NULL);
	check_chain("empty chain", chain, 0, &ca_any, 1, C, "no certificate", NULL, NULL);
	check_chain("no trust set", chain, 1, NULL, 0, C, "unknown ca", NULL, NULL);
	gnutls_free(chain[0].data);
	gnutls_free(chain[1].data);

	/* allow-peer matching. */
	check("client", allow(peer), 1, C, NULL, "peer.example.test", NULL);
	check("client", allow(peer_case), 1, C, NULL, "peer.example.test", NULL);
	check("client-upper", allow(peer), 1, C, NULL, "peer.example.test", NULL);
	check("client", allow(other_and_peer), 1, C, NULL, "peer.example.test", NULL);
	check("client-dns", allow(peer), 1, C, "not allowed", NULL, &v);
	ok(strstr(v.detail, "other.example.test") != NULL, "refusal names what the cert asserts: %s", v.detail);
	check("client", allow(wild), 1, C, NULL, "peer.example.test", NULL);
	check("client-dns", allow(wild), 1, C, NULL, "other.example.test", NULL);
	check("client", allow(wild2), 1, C, "not allowed", NULL, NULL);
	check("client-wild", allow(wild), 1, C, "not allowed", NULL, NULL);
	check("client-wild", allow(peer), 1, C, "not allowed", NULL, NULL);
	check("client-cn", allow(cn), 1, C, NULL, "cn.example.test", NULL);
	check("client-uri-user", allow(user), 1, C, "not allowed", NULL, NULL);
	check("client-expired", allow(peer), 1, C, "expired", NULL, NULL);

	/* Trust sets: a partner CA vouches only for its own names. */
	check("partner", own_then_partner, 2, C, NULL, "sip.partner.example.test", &v);
	is_str("partner", v.set_name, "partner admitted by the partner set");
	check("client", own_then_partner, 2, C, NULL, "peer.example.test", &v);
	is_str("ca", v.set_name, "client admitted by the own set");
	check("client", partner_then_own, 2, C, NULL, "peer.example.test", NULL);
	check("partner-evil", own_then_partner, 2, C, "not allowed", NULL, NULL);
	check("partner-evil", partner_then_own, 2, C, "not allowed", NULL, NULL);
	check("partner-evil", &ca_any, 1, C, "unknown ca", NULL, NULL);
	check("partner", own_then_partner, 1, C, "unknown ca", NULL, NULL);
	check("client-rogue", own_then_partner, 2, C, "unknown ca", NULL, NULL);

	/* Outbound: the server must prove server-name. */
	check("server", &connect, 1, S, NULL, "sip.example.test", NULL);
	check("server-rsa", &connect, 1, S, NULL, "sip.example.test", NULL);
	check("server2", &connect, 1, S, NULL, "sip.example.test", &v);
	is_str("12", v.serial, "server2 has its own serial");
	check("server-wrongname", &connect, 1, S, "name mismatch", NULL, NULL);
	check("server-expired", &connect, 1, S, "expired", NULL, NULL);
	check("server-revoked", &connect, 1, S, "revoked", NULL, NULL);
	check("server-clientonly", &connect, 1, S, "bad key usage", NULL, NULL);
	check("server", &connect, 1, C, "bad key usage", NULL, NULL);
	check("partner", &connect, 1, S, "unknown ca", NULL, NULL);

	gnutls_x509_trust_list_deinit(tl_ca, 1);
	gnutls_x509_trust_list_deinit(tl_ca_nocrl, 1);
	gnutls_x509_trust_list_deinit(tl_ca2, 1);
	gnutls_x509_trust_list_deinit(tl_bundle, 1);
	return tap_done();
}
