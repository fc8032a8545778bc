/*
 * tickets: TLS session ticket keys shared by a farm of hosts
 * (`ticket-key-file`). The file holds one base64 key of 64 bytes per line,
 * oldest first; the last (newest) key seals every new ticket, the older ones
 * still open the tickets they sealed, so a client resumes on any host that
 * has the file, also while a rotation is under way.
 *
 * GnuTLS (3.7) takes one ticket master key per session and seals with a key
 * it derives from that master key and the time (SHA3-512 of the 18-hour
 * period number and the master key; the first 16 bytes of the derived key
 * name the key inside each ticket). It has no list of keys to try, so a hook
 * reads the ClientHello before GnuTLS does, finds the key whose derived name
 * the presented ticket carries, and gives the session that key as its master
 * key. When nothing matches (no ticket, an unknown key, another GnuTLS
 * derivation), the session keeps the newest key: the client makes a full
 * handshake and gets a ticket under it.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_TICKETS_H
#define SIDECAR_TICKETS_H

#include <gnutls/gnutls.h>
#include <stddef.h>

#include "util.h"

#define TKEY_SIZE 64  /* GnuTLS's session ticket master key */
#define TKEY_MAX 16   /* keys in one file */

struct tnames;

struct tkeys {
	size_t n;                          /* >= 1 */
	unsigned char key[TKEY_MAX][TKEY_SIZE]; /* oldest first; key[n - 1] seals */
	unsigned line[TKEY_MAX];           /* where each key is in the file */
	/* The only part that changes after loading: the keys' names in the
	 * current period (and the previous one), computed once per period by
	 * whichever loop needs them first and published atomically; earlier
	 * periods' names stay chained until tkeys_free. */
	struct tnames *names;
};

/*
 * Reads the key file PATH, named by CFILE:CLINE. Problems go to d (as
 * PATH:LINE: for the file's content, CFILE:CLINE: when it cannot be read),
 * a file readable by group or others to w. Never puts key material in a
 * message. Returns NULL on any problem.
 */
struct tkeys *tkeys_load(const char *path, const char *cfile, unsigned cline, struct diag *d, struct diag *w);
/* Wipes and frees k (NULL is fine). */
void tkeys_free(struct tkeys *k);

/*
 * Enables tickets on a new server session: with k's newest key, or with
 * fallback (the per-start random key) when k is NULL. When k has older keys
 * too, installs the ClientHello hook that switches to the key a presented
 * ticket was sealed with; the hook finds k through the session's connection
 * (gnutls_session_get_ptr, set before the handshake). Returns a GnuTLS code.
 */
int tkeys_enable(gnutls_session_t s, const struct tkeys *k, const gnutls_datum_t *fallback);

/*
 * The index in k of the key that sealed a ticket starting with TICKET
 * (LEN bytes), at time NOW (seconds since the epoch), or -1: exposed for
 * the unit test.
 */
int tkeys_match(const struct tkeys *k, const unsigned char *ticket, size_t len, long long now);
/* The 16-byte name GnuTLS 3.7 gives a ticket sealed with master key KEY in
 * period T (exposed for the unit test). */
void tkeys_name(const unsigned char key[TKEY_SIZE], unsigned long long t, unsigned char name[16]);

#endif
