/*
 * unit-observe: TAP tests of what observability builds on: the journal
 * fields taken from the stable log words (sidecar/log.c: log_fields) and
 * the per-section / per-peer tallies (sidecar/tally.c): one entry per
 * section name and kind, peers bounded by metrics-peers with the rest under
 * "other", open counts and since-when, answers by code.
 *
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h>
#endif

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "tally.h"
#include "tap.h"

/* The fields of msg joined by '|', for one comparison per case. */
static const char *fields_of(const char *msg)
{
	static char out[2048];
	char f[8][256];
	size_t n = log_fields(msg, f, 8);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, "|");
		strcat(out, f[i]);
	}
	return out;
}

static void test_fields(void)
{
	is_str("SIP_SIDECAR_SECTION=pub|SIP_SIDECAR_PEER=127.0.0.1:4242|SIP_SIDECAR_REASON=unknown ca",
	       fields_of("listen=pub peer=127.0.0.1:4242 refused: unknown ca (subject=CN=x serial=01)"),
	       "a refusal: section, peer, the reason word up to its detail");
	is_str("SIP_SIDECAR_SECTION=pub|SIP_SIDECAR_PEER=[::1]:5|SIP_SIDECAR_REASON=revoked",
	       fields_of("listen=pub peer=[::1]:5 refused on reload: revoked (subject=CN=y)"),
	       "a refusal on reload");
	is_str("SIP_SIDECAR_SECTION=out|SIP_SIDECAR_PEER=192.0.2.7:5061|SIP_SIDECAR_REASON=name mismatch",
	       fields_of("connect=out server=192.0.2.7:5061 refused: name mismatch"),
	       "an outbound refusal without detail: server address as the peer");
	is_str("SIP_SIDECAR_SECTION=mtls|SIP_SIDECAR_PEER=127.0.0.1:9|SIP_SIDECAR_IDENTITY=sip.example.com",
	       fields_of("listen=mtls peer=127.0.0.1:9 accepted TLS1.3 AES-128-GCM identity=sip.example.com"),
	       "an admitted peer: its identity");
	is_str("SIP_SIDECAR_SECTION=pub|SIP_SIDECAR_PEER=1.2.3.4:5|SIP_SIDECAR_REASON=message too large",
	       fields_of("listen=pub peer=1.2.3.4:5 refused: message too large (Content-Length 99999)"),
	       "a SIP refusal");
	is_str("", fields_of("sip-sidecar 1.0 ready (GnuTLS 3.7.9, libev 4.33), configuration x.conf"),
	       "a line without log words: no field");
	is_str("", fields_of("mypeer=x xlisten=y"), "words only at the start or after a space");
	is_str("SIP_SIDECAR_SECTION=a", fields_of("listen=a listen=b"), "the first of a word wins");
	char big[600];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "peer=", 5);
	ok(strlen(fields_of(big)) < 256, "a long value is cut to the field size");
}

static void test_tally(void)
{
	struct tallies *t = tallies_new();
	struct tally *a = tally_section(t, TALLY_LISTEN, "pub");
	struct tally *b = tally_section(t, TALLY_LISTEN, "pub");
	struct tally *c = tally_section(t, TALLY_CONNECT, "pub");
	ok(a && a == b, "one entry per section name");
	ok(c && c != a, "a [connect] of the same name is another entry");
	struct tally **v;
	is_int(2, (long long)tally_sections(t, &v), "two sections published");

	struct tally *p1 = tally_peer(t, "sip.a.example", 2);
	struct tally *p2 = tally_peer(t, "sip.b.example", 2);
	struct tally *p3 = tally_peer(t, "sip.c.example", 2);
	ok(p1 && p2 && p1 != p2 && p1 != t->other && p2 != t->other, "peers under the bound have their own entry");
	ok(p3 == t->other, "past metrics-peers: \"other\"");
	ok(tally_peer(t, "sip.a.example", 2) == p1, "a known peer keeps its entry");
	ok(tally_peer(t, "other", 100) == t->other, "an identity spelled \"other\" is the other entry");
	ok(tally_peer(t, NULL, 100) == NULL && tally_peer(t, "", 100) == NULL, "anonymous: no entry");
	is_int(2, (long long)tally_peers(t, &v), "two peers published");

	tally_open(p1, 1000);
	tally_open(p1, 2000);
	is_int(2, (long long)tally_get(&p1->open), "two open");
	is_int(1000, (long long)p1->since, "since: the first of the open ones");
	tally_close(p1);
	tally_close(p1);
	tally_open(p1, 3000);
	is_int(3000, (long long)p1->since, "since restarts after every connection closed");
	tally_add(a, refused[3], 2);
	is_int(2, (long long)tally_get(&a->refused[3]), "counters add");
	tally_add(NULL, refused[0], 1); /* no entry (table full): nothing, no crash */
	is_int(0, tally_answer_index(400), "400 counted");
	ok(tally_answer_index(430) >= 0 && tally_answer_index(503) >= 0 && tally_answer_index(513) >= 0,
	   "430, 503, 513 counted");
	is_int(-1, tally_answer_index(200), "200 is not ours");
	tallies_free(t);
}

int main(void)
{
	plan_lazy();
	test_fields();
	test_tally();
	return tap_done();
}
