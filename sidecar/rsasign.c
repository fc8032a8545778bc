/*
 * rsasign: libcrypto RSA signatures behind a GnuTLS private key; see
 * rsasign.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <stdio.h>
#include <string.h>

#include "rsasign.h"

#ifndef HAVE_LIBCRYPTO_SIGNER

const char *rsasign_name(void)
{
	return "gnutls";
}

int rsasign_import(const char *path, gnutls_privkey_t *out, char *err, size_t errsize)
{
	(void)path, (void)out, (void)err, (void)errsize;
	return 0;
}

#else

#include <gnutls/crypto.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

const char *rsasign_name(void)
{
	static const char *name;
	static char buf[64];
	/* the same text every time: a benign race if two threads format it */
	if (!name) {
		snprintf(buf, sizeof buf, "libcrypto (%s)", OpenSSL_version(OPENSSL_VERSION));
		name = buf;
	}
	return name;
}

/* What a GnuTLS signature algorithm asks of an RSA key. */
struct rsa_scheme {
	gnutls_sign_algorithm_t algo;
	int pss;                      /* RSASSA-PSS (salt = digest length), else PKCS#1 v1.5 */
	const char *md;               /* NULL: the input is a DigestInfo already (RSA_RAW) */
	size_t md_len;
};

static const struct rsa_scheme schemes[] = {
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, 1, "SHA256", 32 },
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA384, 1, "SHA384", 48 },
	{ GNUTLS_SIGN_RSA_PSS_RSAE_SHA512, 1, "SHA512", 64 },
	{ GNUTLS_SIGN_RSA_SHA256, 0, "SHA256", 32 },
	{ GNUTLS_SIGN_RSA_SHA384, 0, "SHA384", 48 },
	{ GNUTLS_SIGN_RSA_SHA512, 0, "SHA512", 64 },
	{ GNUTLS_SIGN_RSA_RAW, 0, NULL, 0 },
};

static const struct rsa_scheme *scheme_of(gnutls_sign_algorithm_t algo)
{
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (schemes[i].algo == algo)
			return &schemes[i];
	return NULL;
}

/* Signs a digest (or a DigestInfo for RSA_RAW) with key. */
static int sign_digest(EVP_PKEY *key, const struct rsa_scheme *s, const unsigned char *in, size_t inlen,
		       gnutls_datum_t *sig)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	EVP_MD *md = NULL;
	size_t len = 0;
	int ok = ctx && EVP_PKEY_sign_init(ctx) > 0 &&
		 EVP_PKEY_CTX_set_rsa_padding(ctx, s->pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) > 0;
	if (ok && s->md) {
		md = EVP_MD_fetch(NULL, s->md, NULL);
		ok = md && (size_t)EVP_MD_get_size(md) == inlen && EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
		if (ok && s->pss)
			ok = EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0;
	}
	ok = ok && EVP_PKEY_sign(ctx, NULL, &len, in, inlen) > 0;
	unsigned char *out = ok ? gnutls_malloc(len) : NULL;
	ok = out && EVP_PKEY_sign(ctx, out, &len, in, inlen) > 0;
	EVP_MD_free(md);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		gnutls_free(out);
		return GNUTLS_E_PK_SIGN_FAILED;
	}
	sig->data = out;
	sig->size = (unsigned)len;
	return 0;
}

static int sign_hash(gnutls_privkey_t pk, gnutls_sign_algorithm_t algo, void *userdata, unsigned flags,
		     const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
	const struct rsa_scheme *s = scheme_of(algo);
	(void)pk, (void)flags;
	if (!s)
		return GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM;
	return sign_digest(userdata, s, hash->data, hash->size, sig);
}

static int sign_data(gnutls_privkey_t pk, gnutls_sign_algorithm_t algo, void *userdata, unsigned flags,
		     const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	const struct rsa_scheme *s = scheme_of(algo);
	unsigned char digest[64];
	(void)pk, (void)flags;
	if (!s || !s->md)
		return GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM;
	gnutls_digest_algorithm_t dig = gnutls_sign_get_hash_algorithm(algo);
	if (gnutls_hash_fast(dig, data->data, data->size, digest) < 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	return sign_digest(userdata, s, digest, s->md_len, sig);
}

static int info(gnutls_privkey_t pk, unsigned flags, void *userdata)
{
	(void)pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return GNUTLS_PK_RSA;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return EVP_PKEY_get_bits(userdata);
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return scheme_of((gnutls_sign_algorithm_t)GNUTLS_FLAGS_TO_SIGN_ALGO(flags)) != NULL;
	return -1;
}

static void deinit(gnutls_privkey_t pk, void *userdata)
{
	(void)pk;
	EVP_PKEY_free(userdata);
}

/* The file's bytes, or NULL (errno set). The buffer is wiped after use. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 16384, n = 0;
	unsigned char *b = OPENSSL_secure_malloc(cap);
	while (b) {
		size_t r = fread(b + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			unsigned char *nb = cap < 1024 * 1024 ? OPENSSL_secure_malloc(cap * 2) : NULL;
			if (nb)
				memcpy(nb, b, n);
			OPENSSL_secure_clear_free(b, cap);
			b = nb;
			cap *= 2;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad && b) {
		OPENSSL_secure_clear_free(b, cap);
		return NULL;
	}
	*len = n;
	return b;
}

int rsasign_import(const char *path, gnutls_privkey_t *out, char *err, size_t errsize)
{
	size_t len = 0;
	unsigned char *pem = slurp(path, &len);
	if (!pem) {
		snprintf(err, errsize, "cannot read key %s", path);
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_clear_free(pem, len);
	ERR_clear_error();
	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		/* not an RSA key, or a form only GnuTLS reads: its own loader
		 * decides (and reports) */
		EVP_PKEY_free(key);
		return 0;
	}
	gnutls_privkey_t pk;
	int r = gnutls_privkey_init(&pk);
	if (r < 0) {
		EVP_PKEY_free(key);
		snprintf(err, errsize, "key %s: %s", path, gnutls_strerror(r));
		return -1;
	}
	r = gnutls_privkey_import_ext4(pk, key, sign_data, sign_hash, NULL, deinit, info,
				       GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE);
	if (r < 0) {
		gnutls_privkey_deinit(pk);
		EVP_PKEY_free(key);
		snprintf(err, errsize, "key %s: %s", path, gnutls_strerror(r));
		return -1;
	}
	*out = pk;
	return 1;
}

#endif
