/*
 * fuzz-sipframe: libFuzzer target for the SIP stream framer.
 *
 * Input: one configuration byte, then the stream. Configuration bits 0-1
 * pick max_size (64, 256, 4096, 65536), bits 2-3 the identity header name
 * (none, X-TLS-Peer-Identity, Via, x). The stream is fed whole, in chunks
 * whose sizes come from a generator seeded with a hash of the input, and
 * (for short inputs) byte by byte; every sf_parse() call sees a fresh heap
 * copy of exactly the pending bytes, so AddressSanitizer catches any read
 * past the end. The invariants checked (abort() on failure):
 *  - m->len is never 0 nor more than the pending bytes for a unit;
 *  - a message's header end, body length and length agree, and every span
 *    lies inside the header section (or inside the bytes seen, on error);
 *  - all three feeding patterns produce identical units;
 *  - an error response built for a request parses back through the framer
 *    as one response with Content-Length 0;
 *  - removing the strip spans and inserting one identity header at hdr_end
 *    gives a message the framer accepts, with exactly that one to strip.
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named on
 * its command line once (regression runs without libFuzzer).
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipframe.h"

#define MAX_EV 256
#define CHECK(c)                                                                  \
	do {                                                                      \
		if (!(c)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                  \
		}                                                                 \
	} while (0)

struct ev {
	enum sf_result r;
	struct sf_msg m;
};

struct run {
	struct ev ev[MAX_EV];
	unsigned n;
	size_t left;
};

static const char *const strip_names[4] = { NULL, "X-TLS-Peer-Identity", "Via", "x" };

/* Calls sf_parse on an exact-size heap copy of p[0..n). */
static enum sf_result parse_copy(struct sipframe *f, const char *p, size_t n, struct sf_msg *m)
{
	char *b = malloc(n ? n : 1);
	enum sf_result r;

	CHECK(b);
	if (n)
		memcpy(b, p, n);
	r = sf_parse(f, n ? b : NULL, n, m);
	free(b);
	return r;
}

/* Checks that span s lies within [0, end). */
static void span_in(struct sf_span s, size_t end)
{
	CHECK((size_t)s.off + s.len <= end);
}

/* Checks the invariants of one unit of `pending` available bytes. */
static void check_unit(enum sf_result r, const struct sf_msg *m, size_t pending)
{
	size_t end;

	if (r == SF_ERROR) {
		CHECK(m->error == 400 || m->error == 513);
		CHECK(m->reason && m->detail);
		end = pending;
	} else {
		CHECK(m->len > 0 && m->len <= pending);
		if (r == SF_PING)
			CHECK(m->len == 4);
		if (r == SF_SKIP)
			CHECK(m->len == 2);
		if (r != SF_MESSAGE)
			return;
		CHECK(m->hdr_end + 2 + m->body_len == m->len);
		CHECK(m->error == 0);
		end = m->hdr_end;
	}
	CHECK(m->nstrip <= SF_MAX_STRIP && m->nvia <= 4);
	span_in(m->start_line, end);
	for (unsigned i = 0; i < m->nvia; i++)
		span_in(m->via[i], end);
	for (unsigned i = 0; i < m->nstrip; i++) {
		span_in(m->strip[i], end + (r == SF_MESSAGE ? 2 : 0));
		if (i)
			CHECK(m->strip[i].off >= m->strip[i - 1].off + m->strip[i - 1].len);
	}
	span_in(m->from, end);
	span_in(m->to, end);
	span_in(m->call_id, end);
	span_in(m->cseq, end);
	CHECK(!m->is_request || m->start_line.len > 0);
}

/* Builds an error response for the unit at buf and parses it back. */
static void check_response(const char *buf, const struct sf_msg *m)
{
	static char out[65536];
	struct sipframe f;
	struct sf_msg r;
	size_t n = sf_error_response(buf, m, m->error ? m->error : 503, NULL,
				     "Retry-After: 5\r\n", out, sizeof out);

	if (!m->is_request) {
		CHECK(n == 0);
		return;
	}
	if (n == 0)
		return; /* an ACK */
	sf_init(&f, sizeof out, NULL);
	CHECK(parse_copy(&f, out, n, &r) == SF_MESSAGE);
	CHECK(r.len == n && r.is_request == 0 && r.body_len == 0);
	CHECK(r.nvia == (m->nvia < 4 ? m->nvia : 4));
}

/* Removes the strip spans of message buf, inserts one identity header at
 * hdr_end and checks that the result frames with exactly that one. */
static void check_strip(const char *buf, const struct sf_msg *m, size_t max, const char *name)
{
	static char out[65536 + 64];
	char ins[64];
	size_t o = 0, pos = 0, il;
	struct sipframe f;
	struct sf_msg r;

	if (!name)
		return;
	il = (size_t)snprintf(ins, sizeof ins, "%s: sip:peer.example.com\r\n", name);
	for (unsigned i = 0; i < m->nstrip; i++) {
		memcpy(out + o, buf + pos, m->strip[i].off - pos);
		o += m->strip[i].off - pos;
		pos = m->strip[i].off + m->strip[i].len;
	}
	CHECK(pos <= m->hdr_end);
	memcpy(out + o, buf + pos, m->hdr_end - pos);
	o += m->hdr_end - pos;
	memcpy(out + o, ins, il);
	o += il;
	memcpy(out + o, buf + m->hdr_end, m->len - m->hdr_end);
	o += m->len - m->hdr_end;
	sf_init(&f, max + il, name);
	CHECK(parse_copy(&f, out, o, &r) == SF_MESSAGE);
	CHECK(r.len == o && r.nstrip == 1 && r.strip[0].len == il);
	CHECK(r.strip[0].off + il == r.hdr_end);
}

/* Feeds in[0..n) in chunks: sizes from *seed if non-zero (0 = all at
 * once, 1 = byte by byte, else random), checking every unit. */
static void feed(const char *in, size_t n, size_t max, const char *strip, uint64_t seed,
		 int full_checks, struct run *out)
{
	struct sipframe f;
	size_t have = 0, done = 0;

	out->n = 0;
	sf_init(&f, max, strip);
	while (have < n) {
		size_t step = n - have;
		if (seed == 1) {
			step = 1;
		} else if (seed) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			step = seed % 8 == 0 ? 1 + seed % 3 : 1 + (seed >> 8) % 97;
			if (step > n - have)
				step = n - have;
		}
		have += step;
		for (;;) {
			struct sf_msg m;
			enum sf_result r = parse_copy(&f, in + done, have - done, &m);
			if (r == SF_NEED_MORE) {
				CHECK(m.len == 0);
				break;
			}
			check_unit(r, &m, have - done);
			if (full_checks) {
				if (r == SF_MESSAGE || r == SF_ERROR)
					check_response(in + done, &m);
				if (r == SF_MESSAGE)
					check_strip(in + done, &m, max, strip);
			}
			CHECK(out->n < MAX_EV);
			out->ev[out->n].r = r;
			out->ev[out->n++].m = m;
			if (r == SF_ERROR) {
				struct sf_msg again;
				CHECK(parse_copy(&f, in + done, have - done, &again) == SF_ERROR);
				CHECK(again.error == m.error && again.detail == m.detail);
				out->left = n - done;
				return;
			}
			done += m.len;
			if (out->n == MAX_EV) {
				out->left = n - done;
				return; /* enough: compare this far */
			}
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

/* Checks that two runs produced the same units. */
static void same(const struct run *a, const struct run *b)
{
	CHECK(a->n == b->n);
	if (a->n < MAX_EV)
		CHECK(a->left == b->left);
	for (unsigned i = 0; i < a->n; i++) {
		const struct sf_msg *x = &a->ev[i].m, *y = &b->ev[i].m;
		CHECK(a->ev[i].r == b->ev[i].r);
		CHECK(x->len == y->len && x->hdr_end == y->hdr_end && x->body_len == y->body_len);
		CHECK(x->is_request == y->is_request && x->error == y->error);
		CHECK(x->reason == y->reason && x->detail == y->detail);
		CHECK(x->nstrip == y->nstrip && spans_eq(x->strip, y->strip, x->nstrip));
		CHECK(x->nvia == y->nvia && spans_eq(x->via, y->via, x->nvia));
		CHECK(spans_eq(&x->from, &y->from, 1) && spans_eq(&x->to, &y->to, 1));
		CHECK(spans_eq(&x->call_id, &y->call_id, 1) && spans_eq(&x->cseq, &y->cseq, 1));
		CHECK(spans_eq(&x->start_line, &y->start_line, 1));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[4] = { 64, 256, 4096, 65536 };
	static struct run whole, part;
	const char *in = (const char *)data + 1;
	size_t n, max;
	const char *strip;
	uint64_t seed = 1469598103934665603ull;

	if (size < 1 || size > 65536)
		return 0;
	max = maxes[data[0] & 3];
	strip = strip_names[(data[0] >> 2) & 3];
	n = size - 1;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 1099511628211ull;
	seed |= 2; /* neither 0 (whole) nor 1 (byte by byte) */

	feed(in, n, max, strip, 0, 1, &whole);
	feed(in, n, max, strip, seed, 0, &part);
	same(&whole, &part);
	feed(in, n, max, strip, (seed * 31 + 7) | 2, 0, &part);
	same(&whole, &part);
	if (n <= 4096) {
		feed(in, n, max, strip, 1, 0, &part);
		same(&whole, &part);
	}
	return 0;
}

#include "fuzz-standalone.h"
