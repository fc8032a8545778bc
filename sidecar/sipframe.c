/*
 * sipframe: incremental SIP message framing on a stream transport
 * (RFC 3261 section 18.3), CRLF keep-alives (RFC 5626 section 4.4.1),
 * identity header spotting and minimal error responses.
 *
 * How a unit is scanned (each byte is examined once, no allocation):
 *  - at a unit start, "\r\n\r\n" is a ping and a lone "\r\n" a stray CRLF;
 *  - the start line runs through a small byte automaton that validates it
 *    while looking for its CRLF, so garbage is refused at its first bad byte;
 *  - header lines are found with memchr; each complete line is checked
 *    (NUL, bare CR/LF, name token, colon) and classified once;
 *  - the body is never looked at: Content-Length says where the message ends.
 * All offsets are relative to the start of the unit (buf[0] of sf_parse).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include "sipframe.h"

enum { ST_UNIT, ST_START_LINE, ST_HEADERS, ST_BODY, ST_ERROR };

/* Start-line automaton: request "METHOD SP URI SP SIP/2.0 CRLF" or status
 * "SIP/2.0 SP 3DIGIT SP reason CRLF". */
enum { SL_TOKEN, SL_SVER, SL_CODE, SL_REASON, SL_URI0, SL_URI, SL_RVER, SL_CR };

/* Kinds of header lines, remembered so a folded line extends the right span. */
enum { HK_NONE, HK_OTHER, HK_VIA, HK_FROM, HK_TO, HK_CALLID, HK_CSEQ, HK_CL };

#define C_TOKEN 1 /* RFC 3261 token character */
#define C_CTL 2   /* 0x00-0x1f, 0x7f */
#define C_WSP 4   /* SP, HTAB */

#define T C_TOKEN
#define X C_CTL
#define W C_WSP
static const unsigned char cclass[256] = {
	/* 0x0_ */ X, X, X, X, X, X, X, X, X, X|W, X, X, X, X, X, X,
	/* 0x1_ */ X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	/* 0x2_ */ W, T, 0, 0, 0, T, 0, T, 0, 0, T, T, 0, T, T, 0,
	/* 0x3_ */ T, T, T, T, T, T, T, T, T, T, 0, 0, 0, 0, 0, 0,
	/* 0x4_ */ 0, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
	/* 0x5_ */ T, T, T, T, T, T, T, T, T, T, T, 0, 0, 0, 0, T,
	/* 0x6_ */ T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
	/* 0x7_ */ T, T, T, T, T, T, T, T, T, T, T, 0, 0, 0, T, X,
	/* 0x80-0xff: 0 (allowed in text, not in tokens) */
};
#undef T
#undef X
#undef W

#define UC(c) ((unsigned char)(c))
#define LC(c) (UC(c) >= 'A' && UC(c) <= 'Z' ? UC(c) + 32 : UC(c))
#define IS_WSP(c) ((c) == ' ' || (c) == '\t')

static const char R_TOO_LARGE[] = "message too large";
static const char R_MALFORMED[] = "malformed message";

/* Sizes above this would not fit a span offset or could overflow the
 * Content-Length accumulator (v * 10 + 9) on 32-bit size_t. */
#define SF_SIZE_CAP ((size_t)UINT32_MAX < SIZE_MAX / 16 ? (size_t)UINT32_MAX : SIZE_MAX / 16)

/* Makes a span from a start offset and a length (both within max_size). */
static inline struct sf_span span(size_t off, size_t len)
{
	return (struct sf_span){ (uint32_t)off, (uint32_t)len };
}

/* True if a[0..n) equals the lower-case ASCII string lower[0..n), ignoring
 * the case of a. */
static inline int eq_nocase(const char *a, const char *lower, size_t n)
{
	size_t i = 0;
	/* eight bytes at a time: OR-ing 0x20 lower-cases letters and leaves
	 * '-' and digits alone; exact, since lower[] holds only those */
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, lower + i, 8);
		if ((x | 0x2020202020202020ULL) != y)
			return 0;
	}
	for (; i < n; i++)
		if (LC(a[i]) != UC(lower[i]))
			return 0;
	return 1;
}

/* True if a[0..n) equals b[0..n), ignoring ASCII case on both sides. */
static inline int eq_nocase2(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (LC(a[i]) != LC(b[i]))
			return 0;
	return 1;
}

/* Puts f into the sticky error state with the given code and explanation.
 * Always returns -1 so callers can "return fail(...)". */
static int fail(struct sipframe *f, int code, const char *detail)
{
	f->cur.error = code;
	f->cur.reason = code == 513 ? R_TOO_LARGE : R_MALFORMED;
	f->cur.detail = detail;
	f->cur.len = 0;
	f->state = ST_ERROR;
	return -1;
}

/* Clears the per-unit state, keeping the configuration. */
static void reset(struct sipframe *f)
{
	f->scanned = 0;
	f->line_start = 0;
	f->body_len = 0;
	f->hdr_end = 0;
	f->state = ST_UNIT;
	f->have_cl = 0;
	f->in_strip = 0;
	f->sl_state = SL_TOKEN;
	f->sl_n = 0;
	f->fold_kind = HK_NONE;
	memset(&f->cur, 0, sizeof f->cur);
}

void sf_init(struct sipframe *f, size_t max_size, const char *strip_name)
{
	memset(f, 0, sizeof *f);
	f->max_size = max_size > SF_SIZE_CAP ? SF_SIZE_CAP : max_size;
	if (strip_name && *strip_name) {
		f->strip_name = strip_name;
		f->strip_name_len = strlen(strip_name);
	}
	reset(f);
}

/*
 * Classifies a unit starting with CR: SF_PING for "\r\n\r\n", SF_SKIP for a
 * "\r\n" that cannot become a ping, SF_NEED_MORE while it still might, and
 * -1 if buf does not start with CRLF at all (the start-line check refuses it).
 * Needs len >= 1.
 */
static int keepalive(const char *buf, size_t len)
{
	static const char ping[] = "\r\n\r\n";
	size_t n = len < 4 ? len : 4;

	if (buf[0] != '\r')
		return -1;
	if (memcmp(buf, ping, n) == 0)
		return n == 4 ? SF_PING : SF_NEED_MORE;
	if (buf[1] == '\n') /* n >= 2 here: the mismatch is at index 1, 2 or 3 */
		return SF_SKIP;
	return -1;
}

/* Records the error for a byte that broke the start line. Returns -1. */
static int bad_start_byte(struct sipframe *f, unsigned char c)
{
	if (c == 0)
		return fail(f, 400, "NUL byte");
	if (c == '\n')
		return fail(f, 400, "bare LF");
	return fail(f, 400, "bad start line");
}

/*
 * Runs the start-line automaton over buf[f->scanned..lim). Returns 1 once
 * the line and its CRLF are complete (start_line, is_request set, state
 * moved to ST_HEADERS), 0 if more bytes are needed, -1 on a malformed line.
 */
static int scan_start_line(struct sipframe *f, const char *buf, size_t lim)
{
	static const char ver[] = "sip/2.0";
	int st = f->sl_state;
	unsigned n = f->sl_n;
	size_t i;

	for (i = f->scanned; i < lim; i++) {
		unsigned char c = UC(buf[i]);
		switch (st) {
		case SL_TOKEN: /* method, or "SIP" of a status line */
			if (cclass[c] & C_TOKEN)
				break;
			if (c == ' ' && i > 0) {
				st = SL_URI0;
				break;
			}
			if (c == '/' && i == 3 && eq_nocase(buf, "sip", 3)) {
				st = SL_SVER;
				n = 0;
				break;
			}
			return bad_start_byte(f, c);
		case SL_SVER: /* "2.0 " after "SIP/" */
			if (c != UC("2.0 "[n]))
				return bad_start_byte(f, c);
			if (++n == 4) {
				st = SL_CODE;
				n = 0;
			}
			break;
		case SL_CODE: /* 3DIGIT SP */
			if (n < 3) {
				if (c < '0' || c > '9')
					return bad_start_byte(f, c);
				n++;
			} else if (c == ' ') {
				st = SL_REASON;
			} else {
				return bad_start_byte(f, c);
			}
			break;
		case SL_REASON: /* any text without CTLs but HTAB */
			while (!(cclass[c] & C_CTL) && i + 1 < lim)
				c = UC(buf[++i]);
			if (c == '\r') {
				st = SL_CR;
				n = 0; /* a response */
			} else if ((cclass[c] & C_CTL) && c != '\t') {
				return bad_start_byte(f, c);
			}
			break;
		case SL_URI0: /* first byte of the Request-URI */
			if (cclass[c] & (C_CTL | C_WSP))
				return bad_start_byte(f, c);
			st = SL_URI;
			break;
		case SL_URI:
			while (!(cclass[c] & C_CTL) && c != ' ' && i + 1 < lim)
				c = UC(buf[++i]);
			if (c == ' ') {
				st = SL_RVER;
				n = 0;
			} else if (cclass[c] & C_CTL) {
				return bad_start_byte(f, c);
			}
			break;
		case SL_RVER: /* "SIP/2.0" CR */
			if (n < 7) {
				if (LC(c) != UC(ver[n]))
					return bad_start_byte(f, c);
				n++;
			} else if (c == '\r') {
				st = SL_CR;
				n = 1; /* a request */
			} else {
				return bad_start_byte(f, c);
			}
			break;
		case SL_CR:
			if (c != '\n')
				return fail(f, 400, "bare CR");
			f->cur.start_line = span(0, i - 1);
			f->cur.is_request = (int)n;
			f->scanned = f->line_start = i + 1;
			f->state = ST_HEADERS;
			return 1;
		}
	}
	f->sl_state = st;
	f->sl_n = n;
	f->scanned = lim;
	return 0;
}

/*
 * Parses the Content-Length value p[0..end-p) (text after the colon) and
 * records it. Returns 0, or -1 on a bad, conflicting or too large value.
 */
static int content_length(struct sipframe *f, const char *p, const char *end)
{
	size_t v = 0;

	while (p < end && IS_WSP(*p))
		p++;
	while (end > p && IS_WSP(end[-1]))
		end--;
	if (p == end)
		return fail(f, 400, "bad Content-Length");
	for (; p < end; p++) {
		unsigned d = UC(*p) - '0';
		if (d > 9)
			return fail(f, 400, "bad Content-Length");
		if (v <= f->max_size) /* saturates just above max_size */
			v = v * 10 + d;
	}
	if (f->have_cl && v != f->body_len)
		return fail(f, 400, "conflicting Content-Length");
	if (v > f->max_size)
		return fail(f, 513, "Content-Length too large");
	f->have_cl = 1;
	f->body_len = v;
	f->cur.body_len = v;
	return 0;
}

/* Returns the HK_* kind of the header named name[0..n) (full or compact
 * form, any case); HK_OTHER for the rest. */
static int header_kind(const char *name, size_t n)
{
	switch (n) {
	case 1:
		switch (LC(name[0])) {
		case 'v': return HK_VIA;
		case 'f': return HK_FROM;
		case 't': return HK_TO;
		case 'i': return HK_CALLID;
		case 'l': return HK_CL;
		}
		break;
	case 2:
		if (eq_nocase(name, "to", 2))
			return HK_TO;
		break;
	case 3:
		if (eq_nocase(name, "via", 3))
			return HK_VIA;
		break;
	case 4:
		if (eq_nocase(name, "from", 4))
			return HK_FROM;
		if (eq_nocase(name, "cseq", 4))
			return HK_CSEQ;
		break;
	case 7:
		if (eq_nocase(name, "call-id", 7))
			return HK_CALLID;
		break;
	case 14:
		if (eq_nocase(name, "content-length", 14))
			return HK_CL;
		break;
	}
	return HK_OTHER;
}

/* Returns the span that a header line of this kind extends (the last one
 * recorded), or NULL if such lines are not recorded. */
static struct sf_span *kind_span(struct sf_msg *m, int kind)
{
	switch (kind) {
	case HK_VIA: return m->nvia ? &m->via[m->nvia - 1] : NULL;
	case HK_FROM: return &m->from;
	case HK_TO: return &m->to;
	case HK_CALLID: return &m->call_id;
	case HK_CSEQ: return &m->cseq;
	}
	return NULL;
}

/* Handles a folded continuation line whose LF is at lf: extends the span of
 * the header it continues. Returns 0, or -1 if there is nothing to fold. */
static int fold_line(struct sipframe *f, size_t lf)
{
	struct sf_span *sp;

	if (f->fold_kind == HK_NONE)
		return fail(f, 400, "folded line without header");
	if (f->fold_kind == HK_CL)
		return fail(f, 400, "folded Content-Length");
	if (f->in_strip) {
		sp = &f->cur.strip[f->cur.nstrip - 1];
		sp->len = (uint32_t)(lf + 1 - sp->off);
	}
	sp = kind_span(&f->cur, f->fold_kind);
	if (sp)
		sp->len = (uint32_t)(lf - 1 - sp->off);
	return 0;
}

/*
 * Handles the complete header line buf[ls..lf] whose LF is at lf and CR at
 * lf - 1 (already checked: no NUL, no bare CR/LF). Returns 1 if it is the
 * empty line ending the header section, 0 for another header line, -1 on
 * an error.
 */
static int header_line(struct sipframe *f, const char *buf, size_t ls, size_t lf)
{
	size_t cend = lf - 1; /* the CR */
	const char *colon;
	size_t ne, nlen;
	int kind;

	if (cend == ls)
		return 1;
	if (IS_WSP(buf[ls])) {
		if (fold_line(f, lf) < 0)
			return -1;
	} else {
		/* one pass: the name's token characters, white space, the colon */
		ne = ls;
		while (ne < cend && (cclass[UC(buf[ne])] & C_TOKEN))
			ne++;
		nlen = ne - ls;
		size_t c = ne;
		while (c < cend && IS_WSP(buf[c]))
			c++;
		if (c == cend || buf[c] != ':') {
			if (!memchr(buf + c, ':', cend - c))
				return fail(f, 400, "header without colon");
			return fail(f, 400, "bad header name");
		}
		if (nlen == 0)
			return fail(f, 400, "empty header name");
		colon = buf + c;

		f->in_strip = 0;
		if (nlen == f->strip_name_len && eq_nocase2(buf + ls, f->strip_name, nlen)) {
			if (f->cur.nstrip == SF_MAX_STRIP)
				return fail(f, 400, "too many identity headers");
			f->cur.strip[f->cur.nstrip++] = span(ls, lf + 1 - ls);
			f->in_strip = 1;
		}

		kind = header_kind(buf + ls, nlen);
		if (kind == HK_CL) {
			if (content_length(f, colon + 1, buf + cend) < 0)
				return -1;
		} else if (kind == HK_VIA) {
			if (f->cur.nvia < 4)
				f->cur.via[f->cur.nvia++] = span(ls, cend - ls);
			else
				kind = HK_OTHER;
		} else if (kind != HK_OTHER) {
			struct sf_span *sp = kind_span(&f->cur, kind);
			if (sp->len == 0)
				*sp = span(ls, cend - ls);
			else
				kind = HK_OTHER; /* a duplicate: keep the first */
		}
		f->fold_kind = kind;
	}
	/* The shortest message this can still become: this line, the empty
	 * line and the body. */
	if (lf + 3 + f->body_len > f->max_size)
		return fail(f, 513, "message too large");
	return 0;
}

/*
 * Returns the first byte in buf[from..end) that may not appear inside a
 * line: a NUL, or a CR anywhere but at end - 1 (which is either the CR of
 * the CRLF or the last byte available). NULL if there is none.
 */
static const char *bad_byte(const char *buf, size_t from, size_t end, const char *nul)
{
	size_t crend = end > from ? end - 1 : from;
	const char *z = nul && nul < buf + end ? nul : NULL; /* nul >= buf + from */
	const char *r = memchr(buf + from, '\r', crend - from);

	if (z && r)
		return z < r ? z : r;
	return z ? z : r;
}

/*
 * Scans header lines from f->scanned up to lim = min(len, max_size).
 * Returns 1 when the header section is complete (state ST_BODY, cur.len
 * set), 0 if more bytes are needed, -1 on an error.
 */
static int scan_headers(struct sipframe *f, const char *buf, size_t lim)
{
	/* the first NUL of what is new: one search per call, not per line */
	const char *nul = memchr(buf + f->scanned, '\0', lim - f->scanned);
	for (;;) {
		size_t from = f->scanned;
		const char *nl = memchr(buf + from, '\n', lim - from);
		size_t end = nl ? (size_t)(nl - buf) : lim;
		const char *bad = bad_byte(buf, from, end, nul);
		size_t lf;
		int rc;

		if (bad)
			return fail(f, 400, *bad ? "bare CR" : "NUL byte");
		if (!nl) {
			/* Keep a trailing CR for the next call to judge. */
			f->scanned = end > from && buf[end - 1] == '\r' ? end - 1 : end;
			if (lim == f->max_size)
				return fail(f, 513, "header section too large");
			return 0;
		}
		lf = end;
		if (lf == f->line_start || buf[lf - 1] != '\r')
			return fail(f, 400, "bare LF");
		rc = header_line(f, buf, f->line_start, lf);
		if (rc < 0)
			return -1;
		f->line_start = f->scanned = lf + 1;
		if (rc > 0)
			break;
	}
	/* The empty line: its CRLF starts at line_start - 2. */
	f->hdr_end = f->line_start - 2;
	f->cur.hdr_end = f->hdr_end;
	if (!f->have_cl)
		return fail(f, 400, "Content-Length missing");
	f->cur.len = f->line_start + f->body_len;
	if (f->cur.len > f->max_size) /* already refused line by line; kept as a guard */
		return fail(f, 513, "message too large");
	f->state = ST_BODY;
	return 1;
}

enum sf_result sf_parse(struct sipframe *f, const char *buf, size_t len, struct sf_msg *m)
{
	size_t lim = len < f->max_size ? len : f->max_size;
	int rc;

	switch (f->state) {
	case ST_ERROR:
		*m = f->cur;
		return SF_ERROR;
	case ST_UNIT:
		if (len == 0)
			goto more;
		rc = keepalive(buf, len);
		if (rc == SF_NEED_MORE)
			goto more;
		if (rc >= 0) {
			memset(m, 0, sizeof *m);
			m->len = rc == SF_PING ? 4 : 2;
			return (enum sf_result)rc;
		}
		f->state = ST_START_LINE;
		/* fall through */
	case ST_START_LINE:
		rc = scan_start_line(f, buf, lim);
		if (rc < 0)
			goto error;
		if (rc == 0) {
			if (lim == f->max_size) {
				fail(f, 513, "start line too long");
				goto error;
			}
			goto more;
		}
		/* fall through */
	case ST_HEADERS:
		rc = scan_headers(f, buf, lim);
		if (rc < 0)
			goto error;
		if (rc == 0)
			goto more;
		/* fall through */
	case ST_BODY:
		if (len < f->cur.len)
			goto more;
		*m = f->cur;
		reset(f);
		return SF_MESSAGE;
	}
more:
	m->len = 0;
	return SF_NEED_MORE;
error:
	*m = f->cur;
	return SF_ERROR;
}

/* ---- error responses ---- */

/* A bounded output buffer; ok turns 0 once something did not fit. */
struct out {
	char *p;
	size_t n, cap;
	int ok;
};

/* Appends s[0..n) to o if it fits. */
static void put(struct out *o, const char *s, size_t n)
{
	if (!o->ok || o->cap - o->n < n) {
		o->ok = 0;
		return;
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

/* Appends the header line at span s of buf plus CRLF, if s is present. */
static void put_line(struct out *o, const char *buf, struct sf_span s)
{
	if (s.len == 0)
		return;
	put(o, buf + s.off, s.len);
	put(o, "\r\n", 2);
}

/* True if the To header line p[0..n) has a tag parameter (outside quotes
 * and angle brackets; whitespace allowed around "tag" and "="). */
static int to_has_tag(const char *p, size_t n)
{
	const char *end = p + n;
	const char *c = memchr(p, ':', n);
	int quote = 0, angle = 0;

	if (!c)
		return 0;
	for (p = c + 1; p < end; p++) {
		if (quote) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				quote = 0;
			continue;
		}
		if (*p == '"') {
			quote = 1;
		} else if (*p == '<') {
			angle = 1;
		} else if (*p == '>') {
			angle = 0;
		} else if (*p == ';' && !angle) {
			const char *q = p + 1;
			while (q < end && (IS_WSP(*q) || *q == '\r' || *q == '\n'))
				q++;
			if (end - q < 3 || !eq_nocase(q, "tag", 3))
				continue;
			for (q += 3; q < end && (IS_WSP(*q) || *q == '\r' || *q == '\n'); q++)
				;
			if (q < end && *q == '=')
				return 1;
		}
	}
	return 0;
}

/* FNV-1a hash of the Call-ID value (after the colon) of line p[0..n). */
static uint32_t callid_hash(const char *p, size_t n)
{
	const char *end = p + n;
	const char *c = memchr(p, ':', n);
	uint32_t h = 2166136261u;

	for (p = c ? c + 1 : end; p < end && IS_WSP(*p); p++)
		;
	for (; p < end; p++) {
		h ^= UC(*p);
		h *= 16777619u;
	}
	return h;
}

/* The standard reason phrase for the codes the sidecar sends. */
static const char *default_phrase(int code)
{
	switch (code) {
	case 400: return "Bad Request";
	case 408: return "Request Timeout";
	case 413: return "Request Entity Too Large";
	case 480: return "Temporarily Unavailable";
	case 500: return "Server Internal Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Server Time-out";
	case 513: return "Message Too Large";
	}
	return "Error";
}

size_t sf_error_response(const char *buf, const struct sf_msg *m, int code,
			 const char *reason_phrase, const char *extra_headers,
			 char *out, size_t outsz)
{
	struct out o = { out, 0, outsz, 1 };
	char tmp[32];
	int n;

	if (!m->is_request || m->start_line.len == 0 || code < 100 || code > 699)
		return 0;
	if (m->start_line.len >= 4 && memcmp(buf + m->start_line.off, "ACK ", 4) == 0)
		return 0;
	if (!reason_phrase)
		reason_phrase = default_phrase(code);

	n = snprintf(tmp, sizeof tmp, "SIP/2.0 %d ", code);
	put(&o, tmp, (size_t)n);
	put(&o, reason_phrase, strlen(reason_phrase));
	put(&o, "\r\n", 2);
	for (unsigned i = 0; i < m->nvia && i < 4; i++)
		put_line(&o, buf, m->via[i]);
	put_line(&o, buf, m->from);
	if (m->to.len) {
		put(&o, buf + m->to.off, m->to.len);
		if (!to_has_tag(buf + m->to.off, m->to.len)) {
			uint32_t h = callid_hash(buf + m->call_id.off, m->call_id.len);
			n = snprintf(tmp, sizeof tmp, ";tag=%08x", (unsigned)h);
			put(&o, tmp, (size_t)n);
		}
		put(&o, "\r\n", 2);
	}
	put_line(&o, buf, m->call_id);
	put_line(&o, buf, m->cseq);
	if (extra_headers)
		put(&o, extra_headers, strlen(extra_headers));
	put(&o, "Content-Length: 0\r\n\r\n", 21);
	return o.ok ? o.n : 0;
}

enum sf_result sf_trusted(const char *buf, size_t len, size_t max_size, struct sf_msg *m)
{
	m->len = 0;
	if (len && buf[0] == '\r') {
		/* "\r\n\r\n" is a ping, a lone "\r\n" a stray CRLF */
		if (len < 2)
			return SF_NEED_MORE;
		if (buf[1] != '\n')
			goto bad;
		if (len >= 3 && buf[2] != '\r') {
			m->len = 2;
			return SF_SKIP;
		}
		if (len < 4)
			return SF_NEED_MORE;
		if (buf[3] != '\n')
			goto bad;
		m->len = 4;
		return SF_PING;
	}
	const char *nl = memchr(buf, '\n', len);
	if (!nl)
		goto more;
	size_t sl_end = (size_t)(nl - buf);
	if (sl_end < 1 || buf[sl_end - 1] != '\r')
		goto bad;
	m->start_line = span(0, sl_end - 1);
	m->is_request = !(sl_end >= 8 && !memcmp(buf, "SIP/2.0 ", 8));
	m->nstrip = 0;
	m->nvia = 0;
	m->cseq = span(0, 0);
	m->from = m->to = m->call_id = m->cseq;
	size_t cl = 0, ls = sl_end + 1;
	for (;;) {
		const char *e = memchr(buf + ls, '\n', len - ls);
		if (!e)
			goto more;
		size_t lf = (size_t)(e - buf);
		if (lf == ls + 1 && buf[ls] == '\r') {
			m->hdr_end = ls;
			m->body_len = cl;
			m->len = lf + 1 + cl;
			if (m->len > max_size)
				goto bad;
			if (m->len > len) {
				m->len = 0;
				return SF_NEED_MORE;
			}
			return SF_MESSAGE;
		}
		switch (LC(buf[ls])) {
		case 'c':
			if (lf - ls > 15 && eq_nocase(buf + ls, "content-length", 14))
				goto length;
			if (lf - ls > 5 && eq_nocase(buf + ls, "cseq", 4) && (buf[ls + 4] == ':' || IS_WSP(buf[ls + 4])))
				m->cseq = span(ls, lf - 1 - ls);
			break;
		case 'l':
			if (lf - ls > 2 && (buf[ls + 1] == ':' || IS_WSP(buf[ls + 1])))
				goto length;
			break;
		case 'v':
			if (!m->nvia && (buf[ls + 1] == ':' || IS_WSP(buf[ls + 1]) ||
					 (lf - ls > 4 && eq_nocase(buf + ls, "via", 3) &&
					  (buf[ls + 3] == ':' || IS_WSP(buf[ls + 3])))))
				m->via[m->nvia++] = span(ls, lf - 1 - ls);
			break;
		}
		ls = lf + 1;
		continue;
length:
		{
			const char *c = memchr(buf + ls, ':', lf - ls);
			cl = 0;
			if (c)
				for (c++; c < buf + lf && (IS_WSP(*c) || (*c >= '0' && *c <= '9')); c++)
					if (*c >= '0' && *c <= '9' && cl < 100000000)
						cl = cl * 10 + (size_t)(*c - '0');
		}
		ls = lf + 1;
	}
more:
	if (len > max_size)
		goto bad;
	return SF_NEED_MORE;
bad:
	m->error = 400;
	m->reason = "malformed message";
	m->detail = "from the legacy server";
	return SF_ERROR;
}
