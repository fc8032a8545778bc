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
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tap.h"
#include "verify.h"

#define NTESTS 161

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
	struct trust_set ca_any = { "ca", tl_ca, NULL, 0 };
	struct trust_set ca_nocrl = { "ca", tl_ca_nocrl, NULL, 0 };
	struct trust_set partner_only = { "partner", tl_ca2, partner_peer, 1 };
	struct trust_set bundle_any = { "bundle", tl_bundle, NULL, 0 };
	struct trust_set own_then_partner[] = { { "ca", tl_ca, peer, 1 }, partner_only };
	struct trust_set partner_then_own[] = { partner_only, { "ca", tl_ca, peer, 1 } };
	struct trust_set connect = { "connect", tl_ca, server_name, 1 };
/* the set "ca" with allow-peer = peers[] */
#define allow(peers) ((struct trust_set[]){ { "ca", tl_ca, peers, sizeof peers / sizeof peers[0] } })
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
	check_chain("16 certificates", longc, 16, &ca_any, 1, C, NULL, "peer.example.test", NULL);
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
