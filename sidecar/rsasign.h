/*
 * rsasign: RSA signatures for our own keys made by OpenSSL's libcrypto
 * (constant-time, about twice as fast as GnuTLS's own RSA on x86-64),
 * plugged into GnuTLS as an external private key
 * (gnutls_privkey_import_ext4). Only RSA keys take this path; ECDSA and
 * Ed25519 keys stay with GnuTLS. The key is read from its file into this
 * process's memory and nowhere else. Built in when libcrypto is found
 * (./configure --with-rsa-signer=libcrypto|gnutls).
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_RSASIGN_H
#define SIDECAR_RSASIGN_H

#include <gnutls/abstract.h>
#include <stddef.h>

/* The signer used for RSA keys: "libcrypto (OpenSSL x.y.z)" or "gnutls". */
const char *rsasign_name(void);

/*
 * For the PEM private key in path: when it is an RSA key and the libcrypto
 * signer is built in, a new GnuTLS private key whose signatures libcrypto
 * makes (returns 1, *out set; it frees its libcrypto key when deinited).
 * Returns 0 when GnuTLS should load the key itself (not RSA, or no
 * libcrypto), -1 with err filled when the file cannot be used.
 */
int rsasign_import(const char *path, gnutls_privkey_t *out, char *err, size_t errsize);

#endif
