/*
 * tickets: the ticket key file and the choice of key per session.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <errno.h>
#include <fcntl.h>
#include <nettle/base64.h>
#include <nettle/sha3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tickets.h"

/* How GnuTLS 3.7 (lib/stek.c) derives the key it seals tickets with from
 * the master key: period T = time / (expire time 21600 s * 3), key =
 * SHA3-512(T as 8 big-endian bytes || master key), name = its first 16
 * bytes; a ticket opens in its own period and the next one. */
#define STEK_PERIOD (21600 * 3)
#define NAME_SIZE 16

#define TKEY_FILE_MAX (64 * 1024)

void tkeys_name(const unsigned char key[TKEY_SIZE], unsigned long long t, unsigned char name[NAME_SIZE])
{
	struct sha3_512_ctx h;
	uint8_t tb[8], out[SHA3_512_DIGEST_SIZE];
	for (int i = 7; i >= 0; i--, t >>= 8)
		tb[i] = (uint8_t)(t & 0xff);
	sha3_512_init(&h);
	sha3_512_update(&h, sizeof tb, tb);
	sha3_512_update(&h, TKEY_SIZE, key);
	sha3_512_digest(&h, sizeof out, out);
	memcpy(name, out, NAME_SIZE);
	gnutls_memset(out, 0, sizeof out);
	gnutls_memset(&h, 0, sizeof h);
}

struct tnames {
	unsigned long long t;             /* the period */
	struct tnames *prev;
	unsigned char name[TKEY_MAX][2][NAME_SIZE]; /* [key][0]: period t, [1]: t - 1 */
};

/* The names of k's keys in period t: cached (about 2 us per SHA3-512 and
 * two per key, against a resumed handshake's few hundred). */
static const struct tnames *names_for(const struct tkeys *k, unsigned long long t)
{
	struct tkeys *mk = (struct tkeys *)k; /* the cache is the mutable part */
	struct tnames *cur = __atomic_load_n(&mk->names, __ATOMIC_ACQUIRE);
	for (struct tnames *p = cur; p; p = p->prev)
		if (p->t == t)
			return p;
	struct tnames *nn = xcalloc(1, sizeof *nn);
	nn->t = t;
	for (size_t i = 0; i < k->n; i++) {
		tkeys_name(k->key[i], t, nn->name[i][0]);
		tkeys_name(k->key[i], t - 1, nn->name[i][1]);
	}
	for (;;) {
		nn->prev = cur;
		if (__atomic_compare_exchange_n(&mk->names, &cur, nn, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return nn;
		/* another loop published first (cur is its list now) */
		for (struct tnames *p = cur; p; p = p->prev)
			if (p->t == t) {
				free(nn);
				return p;
			}
	}
}

int tkeys_match(const struct tkeys *k, const unsigned char *ticket, size_t len, long long now)
{
	if (!k || len < NAME_SIZE || now < STEK_PERIOD)
		return -1;
	const struct tnames *nm = names_for(k, (unsigned long long)now / STEK_PERIOD);
	for (size_t i = k->n; i-- > 0;)
		for (unsigned back = 0; back < 2; back++)
			if (!memcmp(nm->name[i][back], ticket, NAME_SIZE))
				return (int)i;
	return -1;
}

/* ---- the key file ---- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Decodes one line of base64 into out[TKEY_SIZE]. Returns the decoded
 * length (TKEY_SIZE when good), -1 if it is not base64, -2 if far too long. */
static long decode_key(const char *s, unsigned char out[TKEY_SIZE])
{
	size_t n = strlen(s);
	if (n > BASE64_ENCODE_LENGTH(TKEY_SIZE) + 8)
		return -2;
	uint8_t buf[BASE64_DECODE_LENGTH(BASE64_ENCODE_LENGTH(TKEY_SIZE) + 8)];
	size_t got = sizeof buf;
	struct base64_decode_ctx ctx;
	base64_decode_init(&ctx);
	long r = -1;
	if (base64_decode_update(&ctx, &got, buf, n, s) && base64_decode_final(&ctx)) {
		r = (long)got;
		if (got == TKEY_SIZE)
			memcpy(out, buf, TKEY_SIZE);
	}
	gnutls_memset(buf, 0, sizeof buf);
	return r;
}

struct tkeys *tkeys_load(const char *path, const char *cfile, unsigned cline, struct diag *d, struct diag *w)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		diag_add(d, cfile, cline, "cannot read ticket-key-file %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		diag_add(d, cfile, cline, "cannot read ticket-key-file %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TKEY_FILE_MAX) {
		diag_add(d, cfile, cline, "ticket-key-file %s is not a regular file of at most %d bytes", path,
			 TKEY_FILE_MAX);
		close(fd);
		return NULL;
	}
	if (st.st_mode & 077)
		diag_add(w, cfile, cline, "ticket-key-file %s is readable by group or others (mode %03o): chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
	FILE *fp = fdopen(fd, "r");
	if (!fp) {
		diag_add(d, cfile, cline, "cannot read ticket-key-file %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	struct tkeys *k = xcalloc(1, sizeof *k);
	size_t before = d->n;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned line = 0;
	while ((len = getline(&buf, &cap, fp)) >= 0) {
		line++;
		if (memchr(buf, '\0', (size_t)len)) {
			diag_add(d, path, line, "NUL byte in line");
			continue;
		}
		char *s = trim(buf);
		if (!*s || *s == '#')
			continue;
		if (k->n == TKEY_MAX) {
			diag_add(d, path, line, "more than %d keys: drop the oldest (the first lines)", TKEY_MAX);
			break;
		}
		long got = decode_key(s, k->key[k->n]);
		if (got != TKEY_SIZE) {
			if (got == -2)
				diag_add(d, path, line, "too long for one base64 ticket key of %d bytes (one key per line)",
					 TKEY_SIZE);
			else if (got < 0)
				diag_add(d, path, line, "not a base64 ticket key (one key of %d bytes per line)",
					 TKEY_SIZE);
			else
				diag_add(d, path, line, "a ticket key is %d bytes, this one %ld (one base64 key per line)",
					 TKEY_SIZE, got);
			continue;
		}
		for (size_t i = 0; i < k->n; i++)
			if (!memcmp(k->key[i], k->key[k->n], TKEY_SIZE)) {
				diag_add(d, path, line, "the same key as line %u", k->line[i]);
				break;
			}
		k->line[k->n++] = line;
	}
	if (ferror(fp))
		diag_add(d, path, line, "read error: %s", strerror(errno));
	if (buf) {
		gnutls_memset(buf, 0, cap);
		free(buf);
	}
	fclose(fp);
	if (d->n == before && k->n == 0)
		diag_add(d, cfile, cline, "ticket-key-file %s has no key (one base64 key of %d bytes per line)", path,
			 TKEY_SIZE);
	if (d->n > before) {
		tkeys_free(k);
		return NULL;
	}
	return k;
}

void tkeys_free(struct tkeys *k)
{
	if (!k)
		return;
	for (struct tnames *p = k->names, *prev; p; p = prev) {
		prev = p->prev;
		free(p);
	}
	gnutls_memset(k, 0, sizeof *k);
	free(k);
}

/* ---- per session ---- */

struct find {
	const struct tkeys *k;
	long long now;
	int found;          /* key index, or -1 */
};

/* One identity of a pre_shared_key extension, or a session_ticket one. */
static void try_ticket(struct find *f, const unsigned char *p, size_t n)
{
	if (f->found < 0)
		f->found = tkeys_match(f->k, p, n, f->now);
}

static int on_ext(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
	struct find *f = ctx;
	if (tls_id == 35) { /* session_ticket (TLS 1.2): the ticket itself */
		try_ticket(f, data, size);
	} else if (tls_id == 41 && size >= 2) { /* pre_shared_key (TLS 1.3) */
		size_t ids = (size_t)data[0] << 8 | data[1], off = 2;
		if (ids > size - 2)
			return 0;
		while (off + 2 <= 2 + ids) {
			size_t n = (size_t)data[off] << 8 | data[off + 1];
			if (off + 2 + n + 4 > 2 + ids)
				break;
			try_ticket(f, data + off + 2, n);
			off += 2 + n + 4; /* identity, obfuscated_ticket_age */
		}
	}
	return 0;
}

/* Before GnuTLS reads a ClientHello: the key its ticket was sealed with
 * becomes the session's master key (only possible before GnuTLS first uses
 * the key, i.e. on the first ClientHello). */
static int on_client_hello(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
			   const gnutls_datum_t *msg)
{
	const struct tkeys *k = gnutls_db_get_ptr(s);
	if (htype != GNUTLS_HANDSHAKE_CLIENT_HELLO || when != GNUTLS_HOOK_PRE || !incoming || !k || k->n < 2)
		return 0;
	struct find f = { k, (long long)time(NULL), -1 };
	if (gnutls_ext_raw_parse(&f, on_ext, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO) < 0 || f.found < 0 ||
	    (size_t)f.found == k->n - 1)
		return 0;
	gnutls_datum_t key = { (unsigned char *)k->key[f.found], TKEY_SIZE };
	int r = gnutls_session_ticket_enable_server(s, &key);
	if (r < 0)
		log_debug("ticket of an older key (line %u) not used: %s", k->line[f.found], gnutls_strerror(r));
	else
		log_debug("ticket sealed with the older key of line %u", k->line[f.found]);
	return 0;
}

int tkeys_enable(gnutls_session_t s, const struct tkeys *k, const gnutls_datum_t *fallback)
{
	if (!k)
		return gnutls_session_ticket_enable_server(s, fallback);
	gnutls_datum_t key = { (unsigned char *)k->key[k->n - 1], TKEY_SIZE };
	int r = gnutls_session_ticket_enable_server(s, &key);
	if (r >= 0 && k->n > 1) {
		/* the db pointer goes only to session cache callbacks, which
		 * server sessions here do not have: it carries k to the hook */
		gnutls_db_set_ptr(s, (void *)k);
		gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE, on_client_hello);
	}
	return r;
}
