/*
 * sipframe: incremental SIP message framing on a stream transport
 * (RFC 3261 section 18.3) plus CRLF keep-alives (RFC 5626 section 4.4.1).
 * Pure code: no libev, no sockets, no allocation.
 *
 * The caller keeps the unconsumed bytes of the stream contiguous in a
 * buffer and calls sf_parse() with a pointer to the first unconsumed byte
 * and the number of bytes available. Between calls the buffer may be moved
 * and grow at its end, but the bytes already seen must not change. The
 * framer remembers how far it scanned, so no byte is examined twice.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_SIPFRAME_H
#define SIDECAR_SIPFRAME_H

#include <stddef.h>
#include <stdint.h>

#define SF_MAX_STRIP 8 /* spoofed identity headers removed per message */

enum sf_result {
	SF_NEED_MORE = 0, /* no complete unit yet: read more and call again */
	SF_MESSAGE,       /* a complete SIP message of m->len bytes */
	SF_PING,          /* CRLFCRLF keep-alive of m->len (4) bytes: answer CRLF, forward nothing */
	SF_SKIP,          /* m->len bytes of stray CRLF between messages: drop them */
	SF_ERROR          /* m->error / m->reason say why; the connection must close */
};

struct sf_span {
	uint32_t off, len;
};

struct sf_msg {
	size_t len;          /* whole message: start line, headers, empty line, body */
	size_t hdr_end;      /* offset of the CRLF of the empty line: insert headers here */
	size_t body_len;     /* Content-Length */
	int is_request;      /* 1 request, 0 response */
	unsigned nstrip;     /* header lines named like the identity header, to drop */
	struct sf_span strip[SF_MAX_STRIP]; /* each: the whole line incl. CRLF and folded lines */
	/* On SF_ERROR: */
	int error;           /* 513 (too large) or 400 (malformed) */
	const char *reason;  /* "message too large" or "malformed message" */
	const char *detail;  /* short human explanation, e.g. "Content-Length missing" */
	/* Header lines for an error response (len 0 when absent; may cover
	 * only what was received so far): */
	struct sf_span via[4];
	unsigned nvia;
	struct sf_span from, to, call_id, cseq;
	struct sf_span start_line; /* without CRLF */
};

struct sipframe {
	/* configuration, set by sf_init */
	size_t max_size;           /* largest message accepted (headers + body) */
	const char *strip_name;    /* identity header name or NULL */
	size_t strip_name_len;
	/* private scanning state */
	size_t scanned;            /* bytes of the current unit already examined */
	size_t line_start;
	size_t body_len;
	size_t hdr_end;
	int state;
	int have_cl;
	int in_strip;              /* inside a header line being stripped (folded lines) */
	int sl_state;              /* start-line automaton state */
	unsigned sl_n;             /* characters matched in the current start-line state */
	int fold_kind;             /* kind of the previous header line, for folded lines */
	struct sf_msg cur;         /* being filled in for the current message */
};

/*
 * Prepares f. strip_name may be NULL or "" (no identity header handling);
 * it is not copied and must outlive f. max_size is capped at UINT32_MAX
 * (spans are 32-bit offsets).
 */
void sf_init(struct sipframe *f, size_t max_size, const char *strip_name);

/*
 * Examines buf[0..len) (the unconsumed stream) and returns what its head is.
 * On SF_MESSAGE, SF_PING and SF_SKIP, *m describes the unit at buf[0], the
 * caller consumes m->len bytes and calls again for the rest; the framer has
 * already reset itself for the next unit. On SF_NEED_MORE nothing is consumed
 * and only m->len (0) is written.
 * On SF_ERROR the connection is finished; m has the error and the spans
 * (m->len is 0); further calls keep returning SF_ERROR.
 * Errors are reported as soon as the bytes at hand prove them: a NUL, bare CR
 * or bare LF, an impossible start-line prefix or a header section that cannot
 * end within max_size at once; other header faults when their line is complete.
 * Never reads past buf[len - 1].
 */
enum sf_result sf_parse(struct sipframe *f, const char *buf, size_t len, struct sf_msg *m);

/*
 * Writes into out (size outsz) a complete SIP response "SIP/2.0 CODE REASON"
 * for the request described by m at buf, with its Via lines, From, To, Call-ID
 * and CSeq copied (a To tag is added if absent), extra_headers (may be NULL;
 * each line CRLF-terminated, e.g. "Retry-After: 30\r\n"), and
 * "Content-Length: 0". Returns the length, or 0 if m is not a request (or
 * is an ACK, which is never answered), code is not 100..699, or out is too
 * small. reason_phrase may be NULL: then a standard phrase for code is used.
 * The added To tag is a hash of the Call-ID, so retransmissions get the same.
 */
size_t sf_error_response(const char *buf, const struct sf_msg *m, int code,
			 const char *reason_phrase, const char *extra_headers,
			 char *out, size_t outsz);

/*
 * Frames the trusted stream of the legacy server: one pass over the header
 * lines (no validation beyond CRLF line ends), noting the start line, the
 * first Via, CSeq and Content-Length; m->len, hdr_end, is_request, nvia and
 * via[0], cseq and start_line are set. Same results as sf_parse otherwise
 * (SF_PING, SF_SKIP, SF_NEED_MORE; SF_ERROR past max_size or without CRLF),
 * but stateless: it scans from buf[0] on every call.
 */
enum sf_result sf_trusted(const char *buf, size_t len, size_t max_size, struct sf_msg *m);

#endif
