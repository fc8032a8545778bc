/*
 * unit-sipframe: TAP tests for the SIP stream framer (sidecar/sipframe.c):
 * framing, keep-alives, split reads, limits, errors, identity header
 * stripping and error responses.
 *
 * Every sf_parse() call gets a fresh heap copy of exactly the pending bytes,
 * so a read past the end or a pointer kept across calls shows up under
 * -fsanitize=address. Sample messages come from $T_SRC/data/sip (T_SRC
 * defaults to "t", i.e. running from the top of the tree).
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipframe.h"
#include "tap.h"

#define S(lit) (lit), (sizeof(lit) - 1)
#define MAX 4096
#define MAX_EV 64
#define IDH "X-TLS-Peer-Identity"

/* ---- a simulated caller ---- */

struct ev {
	enum sf_result r;
	struct sf_msg m;
};

struct run {
	struct ev ev[MAX_EV];
	unsigned n;
	size_t left; /* bytes neither consumed nor refused at the end */
	int broken;  /* the framer misbehaved (zero-length unit, too many units) */
};

/* Calls sf_parse on a fresh exact-size heap copy of p[0..n). */
static enum sf_result parse_copy(struct sipframe *f, const char *p, size_t n, struct sf_msg *m)
{
	char *b = malloc(n ? n : 1);
	enum sf_result r;

	if (!b)
		bail("out of memory");
	memcpy(b, p, n);
	r = sf_parse(f, n ? b : NULL, n, m);
	free(b);
	return r;
}

/*
 * Feeds in[0..n) to a new framer the way the connection code does: the
 * first `first` bytes (if non-zero), then `step` bytes at a time (0: all
 * the rest), calling sf_parse until it wants more after each delivery.
 * Records every unit in *out.
 */
static void feed(const char *in, size_t n, size_t first, size_t step, size_t max,
		 const char *strip, struct run *out)
{
	struct sipframe f;
	size_t have = 0, done = 0;

	memset(out, 0, sizeof *out);
	sf_init(&f, max, strip);
	while (have < n) {
		if (have < first)
			have = first;
		else
			have = step && n - have > step ? have + step : n;
		for (;;) {
			struct sf_msg m;
			enum sf_result r = parse_copy(&f, in + done, have - done, &m);
			if (r == SF_NEED_MORE)
				break;
			if (out->n == MAX_EV) {
				out->broken = 1;
				return;
			}
			out->ev[out->n].r = r;
			out->ev[out->n++].m = m;
			if (r == SF_ERROR) {
				out->left = n - done;
				return;
			}
			if (m.len == 0 || m.len > have - done) {
				out->broken = 1;
				return;
			}
			done += m.len;
		}
	}
	out->left = n - done;
}

/* True if the two span arrays are equal. */
static int spans_eq(const struct sf_span *a, const struct sf_span *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i].off != b[i].off || a[i].len != b[i].len)
			return 0;
	return 1;
}

/* True if two unit descriptions agree in every field the framer sets. */
static int msg_eq(const struct sf_msg *a, const struct sf_msg *b)
{
	return a->len == b->len && a->hdr_end == b->hdr_end && a->body_len == b->body_len &&
	       a->is_request == b->is_request && a->nstrip == b->nstrip &&
	       spans_eq(a->strip, b->strip, a->nstrip) && a->error == b->error &&
	       a->reason == b->reason && a->detail == b->detail && a->nvia == b->nvia &&
	       spans_eq(a->via, b->via, a->nvia < 4 ? a->nvia : 4) &&
	       spans_eq(&a->from, &b->from, 1) && spans_eq(&a->to, &b->to, 1) &&
	       spans_eq(&a->call_id, &b->call_id, 1) && spans_eq(&a->cseq, &b->cseq, 1) &&
	       spans_eq(&a->start_line, &b->start_line, 1);
}

/* True if two runs saw the same units; describes the first difference. */
static int run_eq(const struct run *a, const struct run *b, const char *what)
{
	if (a->broken || b->broken) {
		diag("%s: framer misbehaved", what);
		return 0;
	}
	if (a->n != b->n || a->left != b->left) {
		diag("%s: %u units, %zu left vs %u units, %zu left", what, a->n, a->left, b->n, b->left);
		return 0;
	}
	for (unsigned i = 0; i < a->n; i++) {
		if (a->ev[i].r != b->ev[i].r || !msg_eq(&a->ev[i].m, &b->ev[i].m)) {
			diag("%s: unit %u differs (result %d/%d, len %zu/%zu, detail %s/%s)", what, i,
			     a->ev[i].r, b->ev[i].r, a->ev[i].m.len, b->ev[i].m.len,
			     a->ev[i].m.detail ? a->ev[i].m.detail : "-",
			     b->ev[i].m.detail ? b->ev[i].m.detail : "-");
			return 0;
		}
	}
	return 1;
}

/* Checks that in[0..n) gives the same units when split in two at every
 * offset and when fed byte by byte as when fed at once. */
static void check_splits(const char *name, const char *in, size_t n, size_t max, const char *strip)
{
	static struct run whole, part;
	int good = 1;

	feed(in, n, 0, 0, max, strip, &whole);
	for (size_t k = 1; k < n && good; k++) {
		feed(in, n, k, 0, max, strip, &part);
		char what[64];
		snprintf(what, sizeof what, "split at %zu", k);
		good = run_eq(&whole, &part, what);
	}
	ok(good, "%s: every two-part split parses like the whole (%u units)", name, whole.n);
	feed(in, n, 0, 1, max, strip, &part);
	ok(run_eq(&whole, &part, "byte by byte"), "%s: byte by byte parses like the whole", name);
}

/* ---- helpers for single units ---- */

/* Parses in[0..n) at once with a new framer. */
static enum sf_result parse1(const char *in, size_t n, size_t max, const char *strip, struct sf_msg *m)
{
	struct sipframe f;
	sf_init(&f, max, strip);
	return parse_copy(&f, in, n, m);
}

/* Checks that span s of buf holds exactly want. */
static void is_span(const char *buf, struct sf_span s, const char *want, const char *what)
{
	is_mem(want, strlen(want), buf + s.off, s.len, "%s", what);
}

/* ---- framing ---- */

static const char REQ[] =
	"OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK1\r\n"
	"Via: SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n"
	"From: <sip:alice@atlanta.example.com>;tag=88sja8x\r\n"
	"To: <sip:bob@biloxi.example.com>\r\n"
	"Call-ID: 987asjd97y7atg\r\n"
	"CSeq: 986759 OPTIONS\r\n"
	"Content-Length: 0\r\n"
	"\r\n";

static const char RESP[] =
	"SIP/2.0 200 OK\r\n"
	"Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK1\r\n"
	"From: <sip:alice@atlanta.example.com>;tag=88sja8x\r\n"
	"To: <sip:bob@biloxi.example.com>;tag=93810874\r\n"
	"Call-ID: 987asjd97y7atg\r\n"
	"CSeq: 986759 OPTIONS\r\n"
	"Content-Length: 0\r\n"
	"\r\n";

static const char BODY_CL[] =
	"MESSAGE sip:bob@biloxi.example.com SIP/2.0\r\n"
	"Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK3\r\n"
	"Content-Length: 13\r\n"
	"\r\n"
	"Hello\r\n\r\nBob!";

static void test_simple(void)
{
	struct sf_msg m;
	size_t n = sizeof REQ - 1;

	is_int(SF_MESSAGE, parse1(REQ, n, MAX, NULL, &m), "request: one message");
	is_int((long long)n, (long long)m.len, "request: len is the whole buffer");
	is_int((long long)n - 2, (long long)m.hdr_end, "request: hdr_end is the empty line");
	is_int(0, (long long)m.body_len, "request: no body");
	is_int(1, m.is_request, "request: is_request");
	is_span(REQ, m.start_line, "OPTIONS sip:bob@biloxi.example.com SIP/2.0", "request: start line");
	is_int(2, m.nvia, "request: two Via lines");
	is_span(REQ, m.via[0], "Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK1", "request: Via 1");
	is_span(REQ, m.via[1], "Via: SIP/2.0/TCP b.example.com;branch=z9hG4bK2", "request: Via 2");
	is_span(REQ, m.from, "From: <sip:alice@atlanta.example.com>;tag=88sja8x", "request: From");
	is_span(REQ, m.to, "To: <sip:bob@biloxi.example.com>", "request: To");
	is_span(REQ, m.call_id, "Call-ID: 987asjd97y7atg", "request: Call-ID");
	is_span(REQ, m.cseq, "CSeq: 986759 OPTIONS", "request: CSeq");
	is_int(0, m.nstrip, "request: nothing to strip");
	is_int(0, m.error, "request: no error");

	n = sizeof RESP - 1;
	is_int(SF_MESSAGE, parse1(RESP, n, MAX, NULL, &m), "response: one message");
	is_int((long long)n, (long long)m.len, "response: len");
	is_int(0, m.is_request, "response: not a request");
	is_span(RESP, m.start_line, "SIP/2.0 200 OK", "response: start line");
	is_span(RESP, m.to, "To: <sip:bob@biloxi.example.com>;tag=93810874", "response: To");

	/* Every prefix of a message is "need more". */
	int good = 1;
	for (size_t k = 0; k < n && good; k++)
		good = parse1(RESP, k, MAX, NULL, &m) == SF_NEED_MORE && m.len == 0;
	ok(good, "response: every proper prefix needs more");

	/* Exactly max_size is accepted, one byte less is refused. */
	is_int(SF_MESSAGE, parse1(RESP, n, n, NULL, &m), "a message of exactly max_size is accepted");
	is_int(SF_ERROR, parse1(RESP, n, n - 1, NULL, &m), "a message of max_size + 1 is refused");
	is_int(513, m.error, "... with 513");
}

static void test_body(void)
{
	struct sf_msg m;
	size_t n = sizeof BODY_CL - 1;

	is_int(SF_MESSAGE, parse1(BODY_CL, n, MAX, NULL, &m), "Content-Length body: message");
	is_int(13, (long long)m.body_len, "Content-Length body: body_len");
	is_int((long long)n, (long long)m.len, "Content-Length body: len covers the body");
	is_mem("Hello\r\n\r\nBob!", 13, BODY_CL + m.hdr_end + 2, m.body_len, "Content-Length body: bytes");
	is_int(SF_NEED_MORE, parse1(BODY_CL, n - 1, MAX, NULL, &m), "Content-Length body: one byte short needs more");
}

static void test_body_compact(void)
{
	static const char conflict[] =
		"SIP/2.0 486 Busy Here\r\n"
		"content-length:0\r\n"
		"L \t:\t 5 \r\n"
		"\r\n";
	static const char msg[] =
		"SIP/2.0 486 Busy Here\r\n"
		"v: SIP/2.0/TLS a.example.com;branch=z9hG4bK4\r\n"
		"L \t:\t 5 \r\n"
		"content-length: 005\r\n"
		"\r\n"
		"12345";
	struct sf_msg m;

	is_int(SF_ERROR, parse1(S(conflict), MAX, NULL, &m), "different duplicate Content-Length refused");
	is_str("conflicting Content-Length", m.detail, "... as conflicting");
	is_int(SF_MESSAGE, parse1(S(msg), MAX, NULL, &m), "compact l: with spaces around colon and value");
	is_int(5, (long long)m.body_len, "compact l: body_len (identical duplicate allowed)");
	is_int((long long)sizeof msg - 1, (long long)m.len, "compact l: len");
	is_int(1, m.nvia, "compact v: counted as Via");
	is_span(msg, m.via[0], "v: SIP/2.0/TLS a.example.com;branch=z9hG4bK4", "compact v: span");
}

static void test_pipeline(void)
{
	char buf[2048];
	size_t a = sizeof REQ - 1, b = sizeof RESP - 1, c = sizeof BODY_CL - 1, n = 0;
	struct run r;

	memcpy(buf + n, REQ, a), n += a;
	memcpy(buf + n, RESP, b), n += b;
	memcpy(buf + n, BODY_CL, c), n += c;
	memcpy(buf + n, REQ, 10), n += 10; /* the start of a fourth */
	feed(buf, n, 0, 0, MAX, NULL, &r);
	is_int(3, r.n, "pipeline: three messages from one buffer");
	ok(r.n == 3 && r.ev[0].m.len == a && r.ev[1].m.len == b && r.ev[2].m.len == c,
	   "pipeline: each with its own length");
	ok(r.n == 3 && r.ev[0].m.is_request && !r.ev[1].m.is_request && r.ev[2].m.body_len == 13,
	   "pipeline: each with its own fields");
	is_int(10, (long long)r.left, "pipeline: the partial fourth stays unconsumed");
}

static void test_keepalive(void)
{
	struct sf_msg m;
	char buf[1024];
	size_t a = sizeof REQ - 1, n = 0;
	struct run r;

	is_int(SF_PING, parse1(S("\r\n\r\n"), MAX, NULL, &m), "CRLFCRLF is a ping");
	is_int(4, (long long)m.len, "ping: len 4");
	is_int(SF_NEED_MORE, parse1(S("\r\n"), MAX, NULL, &m), "a lone CRLF may become a ping: need more");
	is_int(SF_NEED_MORE, parse1(S("\r\n\r"), MAX, NULL, &m), "CRLFCR: need more");
	is_int(SF_NEED_MORE, parse1(S("\r"), MAX, NULL, &m), "CR: need more");
	is_int(SF_NEED_MORE, parse1("", 0, MAX, NULL, &m), "nothing: need more");
	is_int(SF_SKIP, parse1(S("\r\nOPTIONS"), MAX, NULL, &m), "CRLF then a start line: skip");
	is_int(2, (long long)m.len, "skip: len 2");
	is_int(SF_SKIP, parse1(S("\r\n\rX"), MAX, NULL, &m), "CRLF CR X: skip the CRLF");
	is_int(SF_PING, parse1(S("\r\n\r\n\r\n"), MAX, NULL, &m), "CRLF x3: a ping first");

	memcpy(buf + n, "\r\n\r\n", 4), n += 4;
	memcpy(buf + n, REQ, a), n += a;
	memcpy(buf + n, "\r\n", 2), n += 2;
	memcpy(buf + n, REQ, a), n += a;
	memcpy(buf + n, "\r\n\r\n\r\n", 6), n += 6;
	feed(buf, n, 0, 0, MAX, NULL, &r);
	ok(r.n == 5 && r.ev[0].r == SF_PING && r.ev[1].r == SF_MESSAGE && r.ev[2].r == SF_SKIP &&
	   r.ev[3].r == SF_MESSAGE && r.ev[4].r == SF_PING,
	   "ping, message, skip, message, ping");
	is_int(2, (long long)r.left, "the trailing lone CRLF waits for more");
}

/* ---- splits over a corpus ---- */

static const char *t_src(void)
{
	const char *s = getenv("T_SRC");
	return s && *s ? s : "t";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Each sample file: exactly one message of its whole length, and split
 * parses like whole. Returns the concatenation (with keep-alives) for the
 * stream test in *all. */
static void test_files(char **all, size_t *alln)
{
	char dir[1024], path[1200];
	char *names[64];
	unsigned nn = 0;
	DIR *d;
	struct dirent *e;
	size_t cap = 1 << 16;

	*all = malloc(cap);
	*alln = 0;
	snprintf(dir, sizeof dir, "%s/data/sip", t_src());
	d = opendir(dir);
	if (!d || !*all)
		bail("cannot open %s (set T_SRC to the t/ directory)", dir);
	while ((e = readdir(d)) && nn < 64) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".sip") == 0)
			names[nn++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof *names, cmp_str);
	ok(nn >= 5, "found %u sample messages in %s", nn, dir);
	for (unsigned i = 0; i < nn; i++) {
		size_t n;
		char *msg;
		struct sf_msg m;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		msg = tap_slurp(path, &n);
		if (!msg)
			bail("cannot read %s", path);
		enum sf_result r = parse1(msg, n, MAX, NULL, &m);
		ok(r == SF_MESSAGE && m.len == n && m.start_line.len > 0 && m.cseq.len > 0 &&
		   m.call_id.len > 0 && m.nvia > 0,
		   "%s: one whole message with its headers (result %d, len %zu of %zu)", names[i], r,
		   m.len, n);
		check_splits(names[i], msg, n, MAX, IDH);
		if (*alln + n + 6 <= cap) {
			memcpy(*all + *alln, msg, n);
			*alln += n;
			memcpy(*all + *alln, i % 2 ? "\r\n" : "\r\n\r\n", i % 2 ? 2 : 4);
			*alln += i % 2 ? 2 : 4;
		}
		free(msg);
		free(names[i]);
	}
}

/* Inline messages (valid and not) whose split parses must match too. */
static void test_split_corpus(void)
{
	static const struct {
		const char *name, *s;
		size_t n;
	} c[] = {
		{ "REQ", S(REQ) },
		{ "RESP", S(RESP) },
		{ "BODY_CL", S(BODY_CL) },
		{ "stripped headers",
		  S("INFO sip:x SIP/2.0\r\nx-tls-peer-identity : evil\r\n\tfolded\r\nl: 2\r\n"
		    "X-TLS-Peer-Identity:\r\n more\r\nVia: a\r\n\r\nok") },
		{ "NUL in header", S("INFO sip:x SIP/2.0\r\nVia: a\r\nX: \0b\r\n\r\n") },
		{ "bare CR then NUL", S("INFO sip:x SIP/2.0\r\nX: a\rb\0\r\n\r\n") },
		{ "NUL then bare LF", S("INFO sip:x SIP/2.0\r\nX: a\0b\n\r\n") },
		{ "no colon", S("INFO sip:x SIP/2.0\r\nVia: a\r\nnocolon\r\n\r\n") },
		{ "bad start", S("INFO sip:x SIP/2.1\r\n\r\n") },
		{ "garbage", S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") },
		{ "too large CL", S("INFO sip:x SIP/2.0\r\nContent-Length: 100000\r\n\r\n") },
		{ "missing CL", S("\r\n\r\nINFO sip:x SIP/2.0\r\nVia: a\r\n\r\n") },
		{ "crlf games", S("\r\n\r\n\r\n\r\r\n") },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		check_splits(c[i].name, c[i].s, c[i].n, MAX, IDH);
}

/* ---- errors ---- */

#define OPT "OPTIONS sip:x@example.com SIP/2.0\r\n"

static void test_errors(void)
{
	static const struct {
		const char *s;
		size_t n;
		size_t max;
		int code;
		const char *detail;
	} e[] = {
		{ S("HELLO\r"), MAX, 400, "bad start line" },
		{ S("\x16"), MAX, 400, "bad start line" },
		{ S("GET / H"), MAX, 400, "bad start line" },
		{ S("INVITE sip:x SIP/3"), MAX, 400, "bad start line" },
		{ S("INVITE  "), MAX, 400, "bad start line" },
		{ S("INVITE sip:x SIP/2.0 "), MAX, 400, "bad start line" },
		{ S("INVITE sip:x SIP/2.0\rX"), MAX, 400, "bare CR" },
		{ S("INVITE sip:x SIP/2.0\n"), MAX, 400, "bare LF" },
		{ S("INVITE sip:\0"), MAX, 400, "NUL byte" },
		{ S("INV\""), MAX, 400, "bad start line" },
		{ S(" "), MAX, 400, "bad start line" },
		{ S("\n"), MAX, 400, "bare LF" },
		{ S("\rX"), MAX, 400, "bad start line" },
		{ S("SIP/2.0 20 "), MAX, 400, "bad start line" },
		{ S("SIP/2.0 200O"), MAX, 400, "bad start line" },
		{ S("SIP/2.0 2x"), MAX, 400, "bad start line" },
		{ S("SIP/1"), MAX, 400, "bad start line" },
		{ S("SIP/2.0 200 OK\x01"), MAX, 400, "bad start line" },
		{ S("SIPS/"), MAX, 400, "bad start line" },
		{ S(OPT "Via: a\0"), MAX, 400, "NUL byte" },
		{ S(OPT "Via: a\rb"), MAX, 400, "bare CR" },
		{ S(OPT "Via: a\n"), MAX, 400, "bare LF" },
		{ S(OPT "\n"), MAX, 400, "bare LF" },
		{ S(OPT "Foo bar\r\n"), MAX, 400, "header without colon" },
		{ S(OPT ": x\r\n"), MAX, 400, "empty header name" },
		{ S(OPT "Foo Bar: x\r\n"), MAX, 400, "bad header name" },
		{ S(OPT "Fo@o: x\r\n"), MAX, 400, "bad header name" },
		{ S(OPT " folded\r\n"), MAX, 400, "folded line without header" },
		{ S(OPT "Content-Length: 1\r\n 2\r\n"), MAX, 400, "folded Content-Length" },
		{ S(OPT "Content-Length: -1\r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "Content-Length: abc\r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "Content-Length: 12x\r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "Content-Length: 1 2\r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "Content-Length: +1\r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "Content-Length:   \r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "l: 0x10\r\n"), MAX, 400, "bad Content-Length" },
		{ S(OPT "Content-Length: 5\r\nl: 6\r\n"), MAX, 400, "conflicting Content-Length" },
		{ S(OPT "Content-Length: 99999999999999999999999999\r\n"), MAX, 513, "Content-Length too large" },
		{ S(OPT "Content-Length: 4097\r\n"), MAX, 513, "Content-Length too large" },
		/* 4037 would make exactly 4096: OPT, this line, CRLF, body */
		{ S(OPT "Content-Length: 4038\r\n"), MAX, 513, "message too large" },
		{ S(OPT "Content-Length: 4000\r\nX: 0123456789012345678901234567890123\r\n"), MAX, 513,
		  "message too large" },
		{ S(OPT "Content-Length: 30\r\n"), 84, 513, "message too large" },
		{ S(OPT "Via: a\r\n\r\n"), MAX, 400, "Content-Length missing" },
		{ S(OPT "\r\n"), MAX, 400, "Content-Length missing" },
		{ S(OPT IDH ": 1\r\n" IDH ": 2\r\n" IDH ": 3\r\n" IDH ": 4\r\n" IDH ": 5\r\n" IDH
		    ": 6\r\n" IDH ": 7\r\n" IDH ": 8\r\n" IDH ": 9\r\n"),
		  MAX, 400, "too many identity headers" },
		{ S(OPT "X: 0123456789"), 48, 513, "header section too large" },
		{ S(OPT "X: 01\r\n"), 43, 513, "message too large" },
		{ S("OPTIONS sip:x@example.com SIP/"), 30, 513, "start line too long" },
		{ S(OPT), 35, 513, "header section too large" },
	};
	for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
		struct sipframe f;
		struct sf_msg m;
		enum sf_result r;
		char what[48];

		snprintf(what, sizeof what, "error %zu (%s)", i, e[i].detail);
		sf_init(&f, e[i].max, IDH);
		/* One byte fewer is not yet an error: refused as soon as detectable,
		 * not earlier. */
		r = parse_copy(&f, e[i].s, e[i].n - 1, &m);
		is_int(SF_NEED_MORE, r, "%s: not before its last byte", what);
		r = parse_copy(&f, e[i].s, e[i].n, &m);
		is_int(SF_ERROR, r, "%s: refused at once", what);
		is_int(e[i].code, m.error, "%s: code", what);
		is_str(e[i].code == 513 ? "message too large" : "malformed message", m.reason, "%s: reason", what);
		is_str(e[i].detail, m.detail, "%s: detail", what);
		r = parse_copy(&f, e[i].s, e[i].n, &m);
		ok(r == SF_ERROR && m.error == e[i].code, "%s: sticky", what);
	}
}

/* A header block far larger than max_size is refused once it passes
 * max_size, without waiting for its end. */
static void test_huge(void)
{
	size_t max = 65536, n = 1 << 20;
	char *big = malloc(n);
	struct sipframe f;
	struct sf_msg m;
	size_t off, step = 1000;
	enum sf_result r = SF_NEED_MORE;

	if (!big)
		bail("out of memory");
	off = (size_t)sprintf(big, OPT "Via: SIP/2.0/TLS h;branch=z9hG4bKx\r\n");
	while (off + 40 < n)
		off += (size_t)sprintf(big + off, "X-Filler: %026u\r\n", (unsigned)off);
	sf_init(&f, max, NULL);
	for (off = step; off <= n; off += step) {
		r = parse_copy(&f, big, off, &m);
		if (r != SF_NEED_MORE)
			break;
	}
	is_int(SF_ERROR, r, "huge header block: refused");
	is_int(513, m.error, "huge header block: 513");
	ok(off >= max && off < max + step, "huge header block: refused once past max_size (at %zu)", off);
	is_int(1, m.nvia, "huge header block: the Via seen so far is reported");
	free(big);
}

/* An error after some headers keeps their spans, for the error response. */
static void test_error_spans(void)
{
	static const char in[] = OPT "Via: SIP/2.0/TLS h;branch=z9hG4bK5\r\n"
				     "From: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\n"
				     "Call-ID: abc\r\nCSeq: 7 OPTIONS\r\nBroken header\r\nmore";
	struct sf_msg m;
	char out[1024];
	size_t n;

	is_int(SF_ERROR, parse1(S(in), MAX, NULL, &m), "error after headers");
	is_int(1, m.is_request, "error after headers: is_request known");
	is_span(in, m.start_line, "OPTIONS sip:x@example.com SIP/2.0", "error after headers: start line");
	is_span(in, m.cseq, "CSeq: 7 OPTIONS", "error after headers: CSeq kept");
	n = sf_error_response(in, &m, m.error, NULL, NULL, out, sizeof out);
	ok(n > 0 && strncmp(out, "SIP/2.0 400 Bad Request\r\n", 25) == 0, "error after headers: 400 built");
	ok(n > 0 && memmem(out, n, "\r\nCSeq: 7 OPTIONS\r\n", 19) && memmem(out, n, "\r\nCall-ID: abc\r\n", 16),
	   "error after headers: response carries Call-ID and CSeq");

	is_int(SF_ERROR, parse1(S("HELLO world\r\n"), MAX, NULL, &m), "error in the start line");
	is_int(0, (long long)sf_error_response("HELLO world\r\n", &m, 400, NULL, NULL, out, sizeof out),
	       "no response to a broken start line");
}

/* ---- identity header stripping ---- */

/* Rebuilds in without the strip spans and with ins inserted at hdr_end. */
static size_t rebuild(const char *in, const struct sf_msg *m, const char *ins, char *out)
{
	size_t o = 0, pos = 0;

	for (unsigned i = 0; i < m->nstrip; i++) {
		memcpy(out + o, in + pos, m->strip[i].off - pos);
		o += m->strip[i].off - pos;
		pos = m->strip[i].off + m->strip[i].len;
	}
	memcpy(out + o, in + pos, m->hdr_end - pos);
	o += m->hdr_end - pos;
	memcpy(out + o, ins, strlen(ins));
	o += strlen(ins);
	memcpy(out + o, in + m->hdr_end, m->len - m->hdr_end);
	return o + m->len - m->hdr_end;
}

static void test_strip(void)
{
	static const char in[] =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"x-tls-peer-identity: sip:evil.example.net\r\n"
		"Via: SIP/2.0/TLS h;branch=z9hG4bK6\r\n"
		"X-TLS-PEER-IDENTITY \t: sip:evil2.example.net,\r\n"
		" sip:evil3.example.net\r\n"
		"\tsip:evil4.example.net\r\n"
		"X-TLS-Peer-Identity-Extra: kept\r\n"
		"X-TLS-Peer-Identit: kept\r\n"
		"Content-Length: 2\r\n"
		"X-Tls-Peer-Identity:\r\n"
		"\r\n"
		"ok";
	static const char want[] =
		"INVITE sip:bob@example.com SIP/2.0\r\n"
		"Via: SIP/2.0/TLS h;branch=z9hG4bK6\r\n"
		"X-TLS-Peer-Identity-Extra: kept\r\n"
		"X-TLS-Peer-Identit: kept\r\n"
		"Content-Length: 2\r\n"
		"X-TLS-Peer-Identity: sip:good.example.com\r\n"
		"\r\n"
		"ok";
	struct sf_msg m;
	char out[1024];
	size_t n;

	is_int(SF_MESSAGE, parse1(S(in), MAX, IDH, &m), "strip: message");
	is_int(3, m.nstrip, "strip: three identity headers found");
	is_span(in, m.strip[0], "x-tls-peer-identity: sip:evil.example.net\r\n", "strip: lower case, CRLF included");
	is_span(in, m.strip[1],
		"X-TLS-PEER-IDENTITY \t: sip:evil2.example.net,\r\n sip:evil3.example.net\r\n"
		"\tsip:evil4.example.net\r\n",
		"strip: upper case, space before colon, folded lines");
	is_span(in, m.strip[2], "X-Tls-Peer-Identity:\r\n", "strip: empty value");
	is_span(in, m.via[0], "Via: SIP/2.0/TLS h;branch=z9hG4bK6", "strip: Via still found");
	n = rebuild(in, &m, IDH ": sip:good.example.com\r\n", out);
	is_mem(want, sizeof want - 1, out, n, "strip: removing the spans and inserting at hdr_end");

	is_int(SF_MESSAGE, parse1(S(in), MAX, NULL, &m), "no strip name: message");
	is_int(0, m.nstrip, "no strip name: nothing stripped");
	is_int(SF_MESSAGE, parse1(S(in), MAX, "", &m), "empty strip name: message");
	is_int(0, m.nstrip, "empty strip name: nothing stripped");
	is_int(SF_MESSAGE, parse1(S(in), MAX, "x-tls-peer-IDENTITY", &m), "strip name in any case");
	is_int(3, m.nstrip, "strip name in any case: three found");
}

/* ---- folded tracked headers ---- */

static void test_folded(void)
{
	static const char in[] = "SIP/2.0 180 Ringing\r\n"
				 "Via: SIP/2.0/TLS a;branch=z9hG4bK7,\r\n  SIP/2.0/TLS b;branch=z9hG4bK8\r\n"
				 "To:\r\n <sip:x@example.com>\r\n"
				 "Via: SIP/2.0/TLS c\r\nVia: d\r\nVia: e\r\nv: f\r\n"
				 "To: second\r\n\tignored\r\n"
				 "l: 0\r\n\r\n";
	struct sf_msg m;

	is_int(SF_MESSAGE, parse1(S(in), MAX, NULL, &m), "folded: message");
	is_span(in, m.via[0], "Via: SIP/2.0/TLS a;branch=z9hG4bK7,\r\n  SIP/2.0/TLS b;branch=z9hG4bK8",
		"folded: Via span covers its continuation");
	is_span(in, m.to, "To:\r\n <sip:x@example.com>", "folded: To span covers its continuation");
	is_int(4, m.nvia, "folded: at most four Via lines recorded");
	is_span(in, m.via[3], "Via: e", "folded: the fourth Via");
}

/* ---- error responses ---- */

static void test_response(void)
{
	static const char in[] = "INVITE sip:bob@example.com SIP/2.0\r\n"
				 "Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK9\r\n"
				 "v: SIP/2.0/TLS b.example.com;branch=z9hG4bK10\r\n"
				 "f: \"A;tag=no\" <sip:a@example.com>;tag=x1\r\n"
				 "t: \"B;tag=no\" <sip:b@example.com;tag=no>\r\n"
				 "i: 12345@example.com\r\n"
				 "CSeq: 1 INVITE\r\n"
				 "Content-Length: 0\r\n\r\n";
	static const char tagged[] = "BYE sip:bob@example.com SIP/2.0\r\n"
				     "Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK11\r\n"
				     "From: <sip:a@example.com>;tag=x1\r\n"
				     "To: <sip:b@example.com> ; TAG = y2\r\n"
				     "Call-ID: 12345@example.com\r\n"
				     "CSeq: 2 BYE\r\n"
				     "Content-Length: 0\r\n\r\n";
	static const char ack[] = "ACK sip:bob@example.com SIP/2.0\r\nVia: x\r\nl: 0\r\n\r\n";
	struct sf_msg m, r;
	char out[1024], out2[1024];
	size_t n, n2;
	const char *p;

	is_int(SF_MESSAGE, parse1(S(in), MAX, NULL, &m), "response: request parsed");
	n = sf_error_response(in, &m, 400, "Bad Request", NULL, out, sizeof out);
	ok(n > 0, "400 built (%zu bytes)", n);
	is_int(SF_MESSAGE, parse1(out, n, MAX, NULL, &r), "400 parses back as a message");
	is_int((long long)n, (long long)r.len, "400: the whole output is one message");
	is_int(0, r.is_request, "400: it is a response");
	is_int(0, (long long)r.body_len, "400: Content-Length 0");
	is_span(out, r.start_line, "SIP/2.0 400 Bad Request", "400: status line");
	is_int(2, r.nvia, "400: both Via lines copied");
	is_span(out, r.via[0], "Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK9", "400: Via 1");
	is_span(out, r.via[1], "v: SIP/2.0/TLS b.example.com;branch=z9hG4bK10", "400: Via 2");
	is_span(out, r.from, "f: \"A;tag=no\" <sip:a@example.com>;tag=x1", "400: From");
	is_span(out, r.call_id, "i: 12345@example.com", "400: Call-ID");
	is_span(out, r.cseq, "CSeq: 1 INVITE", "400: CSeq");
	p = out + r.to.off;
	ok(r.to.len == 45 + 8 && strncmp(p, "t: \"B;tag=no\" <sip:b@example.com;tag=no>;tag=", 45) == 0 &&
	   strspn(p + 45, "0123456789abcdef") == 8,
	   "400: To got a hex tag (%.*s)", (int)r.to.len, p);

	n2 = sf_error_response(in, &m, 400, "Bad Request", NULL, out2, sizeof out2);
	is_mem(out, n, out2, n2, "400: deterministic");

	n = sf_error_response(in, &m, 503, NULL, "Retry-After: 30\r\n", out, sizeof out);
	is_int(SF_MESSAGE, parse1(out, n, MAX, NULL, &r), "503 parses back");
	is_span(out, r.start_line, "SIP/2.0 503 Service Unavailable", "503: default phrase");
	ok(memmem(out, n, "\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n", 40) != NULL,
	   "503: extra headers before Content-Length");
	n = sf_error_response(in, &m, 513, NULL, NULL, out, sizeof out);
	is_int(SF_MESSAGE, parse1(out, n, MAX, NULL, &r), "513 parses back");
	is_span(out, r.start_line, "SIP/2.0 513 Message Too Large", "513: default phrase");

	is_int(SF_MESSAGE, parse1(S(tagged), MAX, NULL, &m), "tagged: request parsed");
	n = sf_error_response(tagged, &m, 400, NULL, NULL, out, sizeof out);
	is_int(SF_MESSAGE, parse1(out, n, MAX, NULL, &r), "tagged: parses back");
	is_span(out, r.to, "To: <sip:b@example.com> ; TAG = y2", "tagged: To left alone");

	/* Too small, not a request, an ACK. */
	n = sf_error_response(tagged, &m, 400, NULL, NULL, out, sizeof out);
	is_int(0, (long long)sf_error_response(tagged, &m, 400, NULL, NULL, out, n - 1), "too small: 0");
	is_int((long long)n, (long long)sf_error_response(tagged, &m, 400, NULL, NULL, out, n), "exact size fits");
	is_int(SF_MESSAGE, parse1(S(RESP), MAX, NULL, &m), "a response parsed");
	is_int(0, (long long)sf_error_response(RESP, &m, 400, NULL, NULL, out, sizeof out), "no response to a response");
	is_int(SF_MESSAGE, parse1(S(ack), MAX, NULL, &m), "an ACK parsed");
	is_int(0, (long long)sf_error_response(ack, &m, 400, NULL, NULL, out, sizeof out), "no response to an ACK");
}

/* sf_trusted: the legacy server's stream, framed without validation. */
static void test_trusted(void)
{
	static const char two[] = "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP a;branch=z9hG4bK1\r\nCSeq: 7 REGISTER\r\n"
				  "l: 3\r\n\r\nabc"
				  "INVITE sip:b@c SIP/2.0\r\nVia: SIP/2.0/TCP a\r\nContent-Length: 0\r\n\r\n";
	struct sf_msg m;
	size_t first = sizeof "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP a;branch=z9hG4bK1\r\nCSeq: 7 REGISTER\r\nl: 3\r\n\r\nabc" - 1;
	is_int(SF_MESSAGE, sf_trusted(S(two), MAX, &m), "trusted: a response");
	is_int((long long)first, (long long)m.len, "trusted: its length (compact Content-Length)");
	is_int(0, m.is_request, "trusted: a response is no request");
	is_int(3, (long long)m.body_len, "trusted: body length");
	is_int((long long)first - 5, (long long)m.hdr_end, "trusted: hdr_end at the empty line");
	is_mem("CSeq: 7 REGISTER", 16, two + m.cseq.off, m.cseq.len, "trusted: the CSeq span");
	is_int(1, m.nvia, "trusted: one Via noted");
	is_mem("v: SIP/2.0/TCP a;branch=z9hG4bK1", 32, two + m.via[0].off, m.via[0].len, "trusted: the Via span");
	is_int(SF_MESSAGE, sf_trusted(two + first, sizeof two - 1 - first, MAX, &m), "trusted: the next, a request");
	ok(m.is_request, "trusted: is a request");
	is_int(SF_NEED_MORE, sf_trusted(two, first - 1, MAX, &m), "trusted: a body short by one needs more");
	is_int(SF_NEED_MORE, sf_trusted(two, 20, MAX, &m), "trusted: a header block cut short needs more");
	is_int(SF_PING, sf_trusted(S("\r\n\r\nSIP"), MAX, &m), "trusted: CRLFCRLF is a ping");
	is_int(4, (long long)m.len, "trusted: of 4 bytes");
	is_int(SF_SKIP, sf_trusted(S("\r\nSIP"), MAX, &m), "trusted: a lone CRLF is skipped");
	is_int(SF_NEED_MORE, sf_trusted(S("\r\n\r"), MAX, &m), "trusted: CRLFCR needs more");
	is_int(SF_ERROR, sf_trusted(S("\rX"), MAX, &m), "trusted: a bare CR is an error");
	is_int(SF_ERROR, sf_trusted(two, first, first - 1, &m), "trusted: past max_size is an error");
	is_int(SF_ERROR, sf_trusted(S("SIP/2.0 200 OK\n\n"), MAX, &m), "trusted: bare LF line ends are an error");
}

int main(void)
{
	char *all;
	size_t alln;

	plan_lazy();
	test_simple();
	test_body();
	test_body_compact();
	test_pipeline();
	test_keepalive();
	test_files(&all, &alln);
	check_splits("all samples as one stream with keep-alives", all, alln, MAX, IDH);
	free(all);
	test_split_corpus();
	test_errors();
	test_huge();
	test_error_spans();
	test_strip();
	test_folded();
	test_response();
	test_trusted();
	return tap_done();
}
