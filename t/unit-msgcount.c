/*
 * unit-msgcount: TAP tests of the passthrough SIP message counter
 * (sidecar/msgcount.c). A stream of requests and responses, with and
 * without bodies (Content-Length and compact "l:"), bodies that contain
 * CRLFCRLF, and CRLF keep-alives before, between and after messages, is fed
 * whole, split in two at every byte offset, and byte by byte: every way must
 * count each message exactly once, in the feed call that delivers its last
 * byte, and never count a keep-alive.
 *
 * SPDX-License-Identifier: MIT
 */
#ifdef HAVE_CONFIG_H
#include <autoconf.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgcount.h"
#include "tap.h"

/* Pieces of the stream; msg = 1 when the piece is one whole message. */
static const struct piece {
	int msg;
	const char *text;
} pieces[] = {
	{ 0, "\r\n\r\n" }, /* keep-alives before anything */
	{ 1, "SIP/2.0 200 OK\r\n"
	     "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-0001;received=192.0.2.1\r\n"
	     "From: <sip:alice@example.com>;tag=a1\r\n"
	     "To: <sip:bob@example.net>;tag=b1\r\n"
	     "Call-ID: 1@example.com\r\n"
	     "CSeq: 1 OPTIONS\r\n"
	     "Content-Length: 0\r\n"
	     "\r\n" },
	{ 1, "SIP/2.0 180 Ringing\r\n" /* no Content-Length at all */
	     "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-0002\r\n"
	     "CSeq: 2 INVITE\r\n"
	     "\r\n" },
	{ 0, "\r\n" },
	{ 1, "SIP/2.0 200 OK\r\n" /* a body that looks like the end of headers and a message */
	     "CSeq: 2 INVITE\r\n"
	     "Content-Type: application/sdp\r\n"
	     "Content-Length: 43\r\n"
	     "\r\n"
	     "v=0\r\n\r\nINVITE sip:x@y SIP/2.0\r\nl: 999\r\n\r\n\r\n" },
	{ 1, "SIP/2.0 486 Busy Here\r\n" /* compact form */
	     "i: 3@example.com\r\n"
	     "l: 5\r\n"
	     "\r\n"
	     "abcde" },
	{ 0, "\r\n\r\n\r\n\r\n" },
	{ 1, "SIP/2.0 200 OK\r\n" /* compact, no space, capital */
	     "L:3\r\n"
	     "\r\n"
	     "xyz" },
	{ 1, "SIP/2.0 202 Accepted\r\n" /* odd spelling, a body that is only CRLFCRLF */
	     "content-LENGTH  :   4\r\n"
	     "\r\n"
	     "\r\n\r\n" },
	{ 1, "OPTIONS sip:carol@example.org SIP/2.0\r\n" /* a request; look-alike headers */
	     "X-Content-Length: 77\r\n"
	     "Content-Length-Extra: 77\r\n"
	     "Location: <sip:l:5@example.org>\r\n"
	     "Content-Length: 0\r\n"
	     "Subject: a header line that is much longer than the counter's little line buffer, "
	     "with l: 9 and Content-Length: 9 inside it\r\n"
	     "\r\n" },
	{ 1, "SIP/2.0 200 OK\r\n" /* Content-Length then an override (last one wins) */
	     "Content-Length: 2\r\n"
	     "Content-Length: 3\r\n"
	     "\r\n"
	     "END" },
	{ 1, "SIP/2.0 100 Trying\r\n" /* a 24-byte header line, exactly the line buffer */
	     "X-Twenty-Four-Bytes: abc\r\n"
	     "Content-Length: 0\r\n"
	     "\r\n" },
	{ 0, "\r\n\r\n" }, /* trailing keep-alive */
};
#define NPIECES (sizeof pieces / sizeof pieces[0])

static char stream[8192];
static size_t slen;
static size_t ends[NPIECES]; /* offset just past each message */
static unsigned nmsg;

static void build_stream(void)
{
	for (size_t i = 0; i < NPIECES; i++) {
		size_t n = strlen(pieces[i].text);
		if (slen + n > sizeof stream)
			bail("stream buffer too small");
		memcpy(stream + slen, pieces[i].text, n);
		slen += n;
		if (pieces[i].msg)
			ends[nmsg++] = slen;
	}
}

/* How many messages end at or before offset off. */
static unsigned ended_by(size_t off)
{
	unsigned n = 0;
	for (unsigned i = 0; i < nmsg; i++)
		n += ends[i] <= off;
	return n;
}

/* Feeds an exact-size heap copy, so that a read past the end shows under ASan. */
static unsigned feed(struct msgcount *m, const char *p, size_t len)
{
	char *copy = malloc(len ? len : 1);
	if (!copy)
		bail("out of memory");
	memcpy(copy, p, len);
	unsigned n = msgcount_feed(m, copy, len);
	free(copy);
	return n;
}

static void test_whole(void)
{
	struct msgcount m;
	memset(&m, 0, sizeof m);
	is_int(nmsg, feed(&m, stream, slen), "whole stream: %u messages", nmsg);
	is_int(0, feed(&m, "", 0), "an empty feed counts nothing");
	is_int(0, feed(&m, "\r\n\r\n\r\n", 6), "more keep-alives count nothing");
	is_int(nmsg, feed(&m, stream, slen), "the same stream again: %u more", nmsg);
}

static void test_splits(void)
{
	unsigned bad_total = 0, bad_first = 0;
	for (size_t cut = 0; cut <= slen; cut++) {
		struct msgcount m = { 0 };
		unsigned a = feed(&m, stream, cut);
		unsigned b = feed(&m, stream + cut, slen - cut);
		if (a + b != nmsg) {
			if (!bad_total++)
				diag("cut at %zu: %u + %u messages", cut, a, b);
		}
		if (a != ended_by(cut)) {
			if (!bad_first++)
				diag("cut at %zu: first part counted %u, %u end there", cut, a, ended_by(cut));
		}
	}
	ok(!bad_total, "split in two at each of %zu offsets: always %u messages", slen + 1, nmsg);
	ok(!bad_first, "... each counted by the feed that delivers its last byte");

	/* three parts, every pair of cut points in a stretch around two messages */
	unsigned bad3 = 0;
	size_t lo = ends[1] - 40, hi = ends[3] + 5;
	for (size_t c1 = lo; c1 <= hi; c1++)
		for (size_t c2 = c1; c2 <= hi; c2++) {
			struct msgcount m = { 0 };
			unsigned n = feed(&m, stream, c1);
			n += feed(&m, stream + c1, c2 - c1);
			n += feed(&m, stream + c2, slen - c2);
			if (n != nmsg && !bad3++)
				diag("cuts at %zu, %zu: %u messages", c1, c2, n);
		}
	ok(!bad3, "split in three at every pair of offsets in [%zu, %zu]: always %u", lo, hi, nmsg);
}

static void test_bytewise(void)
{
	struct msgcount m = { 0 };
	unsigned total = 0, misplaced = 0;
	for (size_t i = 0; i < slen; i++) {
		unsigned n = feed(&m, stream + i, 1);
		unsigned want = ended_by(i + 1) - ended_by(i);
		if (n != want && !misplaced++)
			diag("byte %zu: counted %u, expected %u", i, n, want);
		total += n;
	}
	is_int(nmsg, total, "byte by byte: %u messages", nmsg);
	ok(!misplaced, "... each counted on its last byte");
}

static void test_small_cases(void)
{
	struct msgcount m = { 0 };
	is_int(0, feed(&m, "\r\n\r\n\r\n\r\n", 8), "only keep-alives: 0 messages");
	is_int(0, feed(&m, "\n\n", 2), "bare LF keep-alives: 0 messages");
	is_int(1, feed(&m, "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", 37), "one message after keep-alives");

	memset(&m, 0, sizeof m);
	static const char body[] = "SIP/2.0 200 OK\r\nContent-Length: 8\r\n\r\n\r\n\r\n\r\n\r\n";
	is_int(1, feed(&m, body, sizeof body - 1), "a body of CRLFCRLF CRLFCRLF is one message");
	is_int(0, feed(&m, "\r\n", 2), "... and the keep-alive after it is none");

	memset(&m, 0, sizeof m);
	static const char hdr_only[] = "SIP/2.0 200 OK\r\nl: 10\r\n\r\n";
	unsigned n = feed(&m, hdr_only, sizeof hdr_only - 1);
	n += feed(&m, "012345678", 9);
	is_int(0, n, "headers and 9 of 10 body bytes: no message yet");
	is_int(2, feed(&m, "9SIP/2.0 200 OK\r\n\r\n", 19),
	       "the last body byte and a whole bodyless message in one feed: 2");

	memset(&m, 0, sizeof m);
	static const char lf[] = "SIP/2.0 200 OK\nContent-Length: 2\n\nhiSIP/2.0 200 OK\n\n";
	is_int(2, feed(&m, lf, sizeof lf - 1), "bare LF line ends: 2 messages");
}

int main(void)
{
	plan_lazy();
	build_stream();
	diag("stream: %zu bytes, %u messages", slen, nmsg);
	test_whole();
	test_splits();
	test_bytewise();
	test_small_cases();
	return tap_done();
}
