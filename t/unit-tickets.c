/*
 * unit-tickets: TAP tests of the ticket key file (sidecar/tickets.c): every
 * format problem with its FILE:LINE, no key material in any message, the
 * mode warning; the key names per period; and, with real GnuTLS sessions in
 * memory (client and server on a socketpair), that a ticket sealed with a
 * key that is no longer the newest still resumes (TLS 1.3 and 1.2), that a
 * ticket of a key no longer in the set does not, and that without a key set
 * the per-start key is used as before.
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h>
#endif

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "tickets.h"
#include "util.h"

static char dir[] = "/tmp/unit-tickets.XXXXXX";

static const char *path_of(const char *name)
{
	static char buf[4][512];
	static unsigned i;
	char *b = buf[i++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", dir, name);
	return b;
}

/* base64 of n random bytes into out (NUL-terminated). */
static void b64key(size_t n, char *out, size_t outsz)
{
	unsigned char raw[128];
	gnutls_datum_t d = { raw, (unsigned)n }, e = { NULL, 0 };
	if (gnutls_rnd(GNUTLS_RND_RANDOM, raw, n) < 0 || gnutls_base64_encode2(&d, &e) < 0)
		bail("cannot make a key");
	snprintf(out, outsz, "%.*s", (int)e.size, (char *)e.data);
	gnutls_free(e.data);
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	const char *p = path_of(name);
	FILE *f = fopen(p, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		bail("cannot write %s: %s", p, strerror(errno));
	if (chmod(p, mode) < 0)
		bail("chmod %s: %s", p, strerror(errno));
	return p;
}

/* Loads name; checks it is refused with want as the first message. */
static void refused(const char *name, const char *want, const char *secret)
{
	struct diag d = { 0 }, w = { 0 };
	struct tkeys *k = tkeys_load(path_of(name), "sidecar.conf", 7, &d, &w);
	ok(k == NULL, "%s is refused", name);
	is_str(want, d.n ? d.msg[0] : NULL, "%s: the message", name);
	if (secret) {
		int leak = 0;
		for (size_t i = 0; i < d.n; i++)
			leak |= strstr(d.msg[i], secret) != NULL;
		ok(!leak, "%s: no message shows the line's content", name);
	}
	tkeys_free(k);
	diag_free(&d);
	diag_free(&w);
}

static void test_file(void)
{
	char k1[200], k2[200], k3[200], short_key[200], buf[8192], want[1024];
	b64key(64, k1, sizeof k1);
	b64key(64, k2, sizeof k2);
	b64key(64, k3, sizeof k3);
	b64key(48, short_key, sizeof short_key);

	/* good: comments, blank lines, CRLF, spaces around */
	snprintf(buf, sizeof buf, "# farm keys, oldest first\n\n%s\r\n  %s  \n# the newest:\n%s\n", k1, k2, k3);
	write_file("good", buf, 0600);
	struct diag d = { 0 }, w = { 0 };
	struct tkeys *k = tkeys_load(path_of("good"), "sidecar.conf", 7, &d, &w);
	ok(k != NULL, "good file loads");
	is_int(0, (long long)d.n, "no problems");
	is_int(0, (long long)w.n, "mode 600: no warning");
	if (k) {
		is_int(3, (long long)k->n, "three keys");
		is_int(3, k->line[0], "first key on line 3");
		is_int(6, k->line[2], "newest key on line 6");
		unsigned char raw[64];
		gnutls_datum_t in = { (unsigned char *)k3, (unsigned)strlen(k3) }, out = { NULL, 0 };
		if (gnutls_base64_decode2(&in, &out) == 0 && out.size == 64)
			memcpy(raw, out.data, 64);
		gnutls_free(out.data);
		is_mem(raw, 64, k->key[2], 64, "the last line is key[n - 1]");
	}
	tkeys_free(k);
	diag_free(&d);
	diag_free(&w);

	/* readable by others: loads, with a warning */
	write_file("open", buf, 0644);
	k = tkeys_load(path_of("open"), "sidecar.conf", 7, &d, &w);
	ok(k != NULL, "mode 644 still loads");
	snprintf(want, sizeof want,
		 "sidecar.conf:7: ticket-key-file %s is readable by group or others (mode 644): chmod 600 it",
		 path_of("open"));
	is_str(want, w.n ? w.msg[0] : NULL, "mode 644: the warning");
	tkeys_free(k);
	diag_free(&d);
	diag_free(&w);

	snprintf(buf, sizeof buf, "%s\n# comment\nsecret*garbage\n", k1);
	write_file("garbage", buf, 0600);
	snprintf(want, sizeof want, "%s:3: not a base64 ticket key (one key of 64 bytes per line)",
		 path_of("garbage"));
	refused("garbage", want, "secret");

	snprintf(buf, sizeof buf, "%s %s\n", k1, k2);
	write_file("two", buf, 0600);
	snprintf(want, sizeof want, "%s:1: too long for one base64 ticket key of 64 bytes (one key per line)",
		 path_of("two"));
	refused("two", want, k2);

	snprintf(buf, sizeof buf, "%s\n%s\n", k1, short_key);
	write_file("short", buf, 0600);
	snprintf(want, sizeof want, "%s:2: a ticket key is 64 bytes, this one 48 (one base64 key per line)",
		 path_of("short"));
	refused("short", want, short_key);

	snprintf(buf, sizeof buf, "%s\n%s\n\n%s\n", k1, k2, k1);
	write_file("dup", buf, 0600);
	snprintf(want, sizeof want, "%s:4: the same key as line 1", path_of("dup"));
	refused("dup", want, k1);

	write_file("empty", "# nothing yet\n\n", 0600);
	snprintf(want, sizeof want,
		 "sidecar.conf:7: ticket-key-file %s has no key (one base64 key of 64 bytes per line)",
		 path_of("empty"));
	refused("empty", want, NULL);

	snprintf(want, sizeof want, "sidecar.conf:7: cannot read ticket-key-file %s: %s", path_of("missing"),
		 strerror(ENOENT));
	refused("missing", want, NULL);

	size_t o = 0;
	for (int i = 0; i < TKEY_MAX + 1; i++) {
		char kk[200];
		b64key(64, kk, sizeof kk);
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n", kk);
	}
	write_file("many", buf, 0600);
	snprintf(want, sizeof want, "%s:%d: more than %d keys: drop the oldest (the first lines)", path_of("many"),
		 TKEY_MAX + 1, TKEY_MAX);
	refused("many", want, NULL);
}

static void test_match(void)
{
	struct tkeys *k = xcalloc(1, sizeof *k);
	k->n = 2;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, k->key, sizeof k->key) < 0)
		bail("gnutls_rnd");
	long long now = 1800000000LL; /* some time in 2027 */
	unsigned long long t = (unsigned long long)now / 64800;
	unsigned char ticket[40] = { 0 };
	tkeys_name(k->key[0], t, ticket);
	is_int(0, tkeys_match(k, ticket, sizeof ticket, now), "older key, this period");
	tkeys_name(k->key[0], t - 1, ticket);
	is_int(0, tkeys_match(k, ticket, sizeof ticket, now), "older key, the period before");
	tkeys_name(k->key[0], t - 2, ticket);
	is_int(-1, tkeys_match(k, ticket, sizeof ticket, now), "older key, two periods ago: none");
	tkeys_name(k->key[1], t, ticket);
	is_int(1, tkeys_match(k, ticket, sizeof ticket, now), "newest key");
	is_int(-1, tkeys_match(k, ticket, 15, now), "shorter than a key name: none");
	unsigned char a[16], b[16];
	tkeys_name(k->key[0], t, a);
	tkeys_name(k->key[0], t + 1, b);
	ok(memcmp(a, b, 16) != 0, "names change with the period");
	/* names are cached per period: the same answers a second time round */
	tkeys_name(k->key[0], t, ticket);
	is_int(0, tkeys_match(k, ticket, sizeof ticket, now), "older key, this period, again (cached)");
	is_int(-1, tkeys_match(k, ticket, sizeof ticket, now + 2 * 64800), "... not two periods later");
	is_int(0, tkeys_match(k, ticket, sizeof ticket, now + 64800), "... but the period after");
	is_int(0, tkeys_match(k, ticket, sizeof ticket, now), "... and in its own period once more");
	tkeys_free(k);
}

/* ---- real sessions ---- */

static gnutls_certificate_credentials_t server_cred, client_cred;

static void make_creds(void)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char serial[1] = { 1 };
	time_t now = time(NULL);
	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) <
		    0 ||
	    gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, 1) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 3600) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "t", 1) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 || gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_certificate_allocate_credentials(&server_cred) < 0 ||
	    gnutls_certificate_set_x509_key(server_cred, &crt, 1, key) < 0 ||
	    gnutls_certificate_allocate_credentials(&client_cred) < 0)
		bail("cannot make test credentials");
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

/* Drives both handshakes to the end over a non-blocking socketpair. */
static int handshake_both(gnutls_session_t c, gnutls_session_t s)
{
	int rc = GNUTLS_E_AGAIN, rs = GNUTLS_E_AGAIN;
	for (int i = 0; i < 1000 && (rc < 0 || rs < 0); i++) {
		if (rc < 0) {
			rc = gnutls_handshake(c);
			if (rc < 0 && gnutls_error_is_fatal(rc))
				return rc;
		}
		if (rs < 0) {
			rs = gnutls_handshake(s);
			if (rs < 0 && gnutls_error_is_fatal(rs))
				return rs;
		}
	}
	return rc < 0 ? rc : rs;
}

/*
 * One connection: the server enables tickets with k (or fallback), the
 * client resumes from *sess when given and leaves its newest session there.
 * Returns 1 if resumed, 0 if not, -1 on failure.
 */
static int connect_once(const struct tkeys *k, const gnutls_datum_t *fallback, const char *prio,
			gnutls_datum_t *sess)
{
	int sv[2], resumed = -1;
	gnutls_session_t c = NULL, s = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		bail("socketpair: %s", strerror(errno));
	if (gnutls_init(&c, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0 || gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_priority_set_direct(c, prio, NULL) < 0 || gnutls_priority_set_direct(s, prio, NULL) < 0 ||
	    gnutls_credentials_set(c, GNUTLS_CRD_CERTIFICATE, client_cred) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, server_cred) < 0 ||
	    tkeys_enable(s, k, fallback) < 0)
		bail("cannot set up the sessions");
	gnutls_transport_set_int(c, sv[0]);
	gnutls_transport_set_int(s, sv[1]);
	if (sess->data && gnutls_session_set_data(c, sess->data, sess->size) < 0)
		bail("gnutls_session_set_data");
	int r = handshake_both(c, s);
	if (r < 0) {
		diag("handshake: %s", gnutls_strerror(r));
		goto out;
	}
	resumed = gnutls_session_is_resumed(c) != 0;
	/* TLS 1.3 tickets come after the handshake: let the client read them */
	char x = 'x', y;
	ssize_t n = GNUTLS_E_AGAIN;
	if (gnutls_record_send(s, &x, 1) != 1)
		bail("record_send");
	for (int i = 0; i < 1000 && n == GNUTLS_E_AGAIN; i++)
		n = gnutls_record_recv(c, &y, 1);
	if (n != 1)
		bail("record_recv: %s", gnutls_strerror((int)n));
	gnutls_free(sess->data);
	sess->data = NULL;
	if (gnutls_session_get_data2(c, sess) < 0)
		bail("gnutls_session_get_data2");
out:
	gnutls_deinit(c);
	gnutls_deinit(s);
	close(sv[0]);
	close(sv[1]);
	return resumed;
}

static void copy_sess(gnutls_datum_t *dst, const gnutls_datum_t *src)
{
	gnutls_free(dst->data);
	dst->data = gnutls_malloc(src->size);
	if (!dst->data)
		bail("out of memory");
	memcpy(dst->data, src->data, src->size);
	dst->size = src->size;
}

static void test_sessions(const char *what, const char *prio)
{
	struct tkeys *p1 = xcalloc(1, sizeof *p1), *p12 = xcalloc(1, sizeof *p12), *p2 = xcalloc(1, sizeof *p2),
		     *p02 = xcalloc(1, sizeof *p02);
	p1->n = p2->n = 1;
	p12->n = p02->n = 2;
	unsigned char key1[TKEY_SIZE], key2[TKEY_SIZE], key0[TKEY_SIZE];
	if (gnutls_rnd(GNUTLS_RND_KEY, key1, sizeof key1) < 0 || gnutls_rnd(GNUTLS_RND_KEY, key2, sizeof key2) < 0 ||
	    gnutls_rnd(GNUTLS_RND_KEY, key0, sizeof key0) < 0)
		bail("gnutls_rnd");
	memcpy(p1->key[0], key1, TKEY_SIZE);
	memcpy(p12->key[0], key1, TKEY_SIZE);
	memcpy(p12->key[1], key2, TKEY_SIZE);
	memcpy(p2->key[0], key2, TKEY_SIZE);
	memcpy(p02->key[0], key0, TKEY_SIZE);
	memcpy(p02->key[1], key2, TKEY_SIZE);
	gnutls_datum_t sess = { NULL, 0 }, sess1 = { NULL, 0 }, fb = { NULL, 0 }, fb2 = { NULL, 0 };

	is_int(0, connect_once(p1, NULL, prio, &sess), "%s: first connection: full handshake", what);
	if (!sess.data)
		bail("no session");
	copy_sess(&sess1, &sess);
	is_int(1, connect_once(p1, NULL, prio, &sess), "%s: same key: resumed", what);
	/* rotation: key2 is the newest; key1's tickets still open */
	copy_sess(&sess, &sess1);
	is_int(1, connect_once(p12, NULL, prio, &sess), "%s: after a rotation, a ticket of the older key resumes",
	       what);
	copy_sess(&sess, &sess1);
	is_int(0, connect_once(p2, NULL, prio, &sess), "%s: key1 no longer in the set: full handshake", what);
	is_int(1, connect_once(p2, NULL, prio, &sess), "%s: ... whose ticket (newest key) resumes", what);
	gnutls_free(sess.data);
	sess.data = gnutls_malloc(sess1.size);
	copy_sess(&sess, &sess1);
	is_int(0, connect_once(p02, NULL, prio, &sess), "%s: another older key does not open it", what);

	/* no key file: the per-start key, as before */
	if (gnutls_session_ticket_key_generate(&fb) < 0 || gnutls_session_ticket_key_generate(&fb2) < 0)
		bail("gnutls_session_ticket_key_generate");
	gnutls_free(sess.data);
	sess.data = NULL;
	is_int(0, connect_once(NULL, &fb, prio, &sess), "%s: no key set: full handshake", what);
	is_int(1, connect_once(NULL, &fb, prio, &sess), "%s: no key set: resumed with the same per-start key", what);
	is_int(0, connect_once(NULL, &fb2, prio, &sess), "%s: another start's key: full handshake", what);
	gnutls_free(sess.data);
	gnutls_free(sess1.data);
	gnutls_free(fb.data);
	gnutls_free(fb2.data);
	tkeys_free(p1);
	tkeys_free(p12);
	tkeys_free(p2);
	tkeys_free(p02);
}

int main(void)
{
	plan_lazy();
	if (!mkdtemp(dir))
		bail("mkdtemp: %s", strerror(errno));
	if (gnutls_global_init() < 0)
		bail("gnutls_global_init");
	test_file();
	test_match();
	make_creds();
	test_sessions("TLS 1.3", "NORMAL:-VERS-ALL:+VERS-TLS1.3");
	test_sessions("TLS 1.2", "NORMAL:-VERS-ALL:+VERS-TLS1.2");
	gnutls_certificate_free_credentials(server_cred);
	gnutls_certificate_free_credentials(client_cred);
	const char *names[] = { "good", "open", "garbage", "two", "short", "dup", "empty", "many" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		unlink(path_of(names[i]));
	rmdir(dir);
	return tap_done();
}
