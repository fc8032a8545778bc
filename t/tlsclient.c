/*
 * tlsclient: a GnuTLS test client for the sip-sidecar integration tests.
 * It connects, handshakes, optionally waits, sends data (a file, or SIP
 * OPTIONS requests it generates), reads the answer until the peer closes or
 * falls silent, and reports what happened through its exit status.
 *
 * The same source builds t/tcpclient (plaintext TCP, no GnuTLS): tcpclient.c
 * defines CLIENT_PLAIN_ONLY and includes this file, so both tools share
 * options, I/O loop, SIP framing and exit codes.
 *
 *   tlsclient -c HOST:PORT [options]     (HOST: name, IPv4 or [IPv6])
 *
 * TLS options (tlsclient only):
 *   --ca FILE            trust anchors (PEM); without it nothing is verified
 *   --cert FILE --key FILE   client certificate (chain) and key (PEM); sent
 *                        whenever the server asks for one, even if its
 *                        issuer is not among the CAs the server names (so
 *                        tests can present untrusted certificates)
 *   --sni NAME           server name indication (default: HOST unless it is
 *                        an IP address literal)
 *   --verify-name NAME   identity the server certificate must match (default:
 *                        --sni if given, else HOST; IP literals match IP SANs)
 *   --no-verify          do not verify even when --ca is given
 *   --priority STR       GnuTLS priority string (default NORMAL)
 *   --sessfile FILE      resume from the session in FILE if present; save the
 *                        newest resumable session (ticket) to it afterwards
 *   --handshake-timeout MS   (default 5000)
 *   --print-info         print to stderr after the handshake:
 *                          version=TLS1.3 cipher=AES-256-GCM group=X25519
 *                          resumed=yes|no cert-requested=yes|no cert-serial=HEX
 *                          cert-dn=SUBJECT-DN
 *                        and at the end: sent-bytes=N received-bytes=N
 *                        peer-closed=yes|no
 *   --show-serial FILE   print "cert-serial=HEX" for the first certificate in
 *                        a PEM file (same format as --print-info), then exit
 *   HEX is the serial in lower-case hex, leading zero bytes dropped.
 *
 * Common options:
 *   --send FILE|-        data to send after the handshake (- = stdin)
 *   --out FILE           write everything received here (default stdout;
 *                        in --sip/--pipeline mode received bytes are only
 *                        written when --out is given)
 *   --read-timeout MS    silence that ends reading (default 2000); also the
 *                        longest a send may stall or a SIP response may take
 *   --connect-timeout MS (default 5000)
 *   --max-time MS        hard limit per connection (default 60000)
 *   --hold MS            after the handshake, stay idle this long before
 *                        sending (data arriving meanwhile is still read)
 *   --half-close         after sending, shut down our write side (TLS
 *                        close_notify + TCP FIN) and keep reading
 *   --expect-close       the peer must close the connection (before the read
 *                        timeout); a reset counts as a close
 *   --repeat N           do everything N times, each on a fresh connection
 *                        (resuming via --sessfile when given)
 *   --sip N              send N OPTIONS requests one at a time on one
 *                        connection, each after the final response to the
 *                        previous one
 *   --pipeline N         send N OPTIONS requests back to back without
 *                        waiting, then read N final responses
 *                        Both print "sent=N ok=M" on stdout (summed over
 *                        --repeat); ok counts final responses with status
 *                        200 whose CSeq and Call-ID match the request.
 *   --header "NAME: VALUE"   add this header line to generated requests
 *                        (repeatable)
 *   --body-size N        give generated requests an N-byte text/plain body
 *   --ruri URI           request-URI (default sip:ping@HOST)
 *   -q, --quiet          no diagnostics on stderr except errors
 *
 * Exit status: 0 ok; 1 an expectation failed (--sip/--pipeline not all 200,
 * --expect-close but the peer stayed open, peer closed before all data was
 * sent); 2 connect failed; 3 handshake failed, or a fatal alert or TLS error
 * arrived before any application data (how TLS 1.3 reports a rejected client
 * certificate); 4 anything else (usage, I/O, files, timeouts while sending).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef CLIENT_PLAIN_ONLY
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#define PROG "tlsclient"
#define HAVE_TLS 1
#else
#define PROG "tcpclient"
#define HAVE_TLS 0
#endif

enum { EX_OK = 0, EX_FAIL = 1, EX_CONNECT = 2, EX_HANDSHAKE = 3, EX_OTHER = 4 };

#define IO_AGAIN (-1)
#define IO_ERR (-2)
#define IO_EOF 0

#define SEND_CHUNK 16384
#define MAX_SEND_FILE (256UL * 1024 * 1024)
#define MAX_RESPONSE (4UL * 1024 * 1024)

struct opts {
	char *host, *port;
	const char *ca, *cert, *key, *sni, *verify_name, *priority, *sessfile;
	const char *send_file, *out_file, *ruri;
	bool no_verify, expect_close, print_info, half_close, quiet;
	long read_timeout, connect_timeout, handshake_timeout, hold, max_time;
	unsigned long repeat, sip, pipeline, body_size;
	const char **headers;
	size_t nheaders;
};

struct buf {
	char *p;
	size_t len, cap;
};

/* One connection. */
struct conn {
	int fd;
#if HAVE_TLS
	gnutls_session_t s; /* NULL in plain mode */
	bool want_write;    /* GnuTLS last blocked on writing */
#endif
	bool app_data;      /* received application data */
	bool closed;        /* the peer closed (or reset) the connection */
	bool send_broken;   /* sending failed because the peer went away */
	unsigned long long sent, received;
	char err[512];      /* why an IO_ERR happened */
	int err_exit;       /* exit code for that error */
};

/* SIP response matching state for one connection. */
struct sipstate {
	struct buf rx;               /* received, not yet framed */
	unsigned long next_resp;     /* index (1-based) of the next final response */
	unsigned long ok;            /* matching 200s */
	unsigned long conn_no;       /* which --repeat round */
};

struct xfer {
	const char *tx;
	size_t txlen, txoff;
	long silence_ms;             /* once tx is done: stop after this much silence */
	long long stop_at;           /* if > 0: run exactly until this time (hold) */
	unsigned long want_resp;     /* if > 0: stop once this many final responses */
	bool half_close;
	bool silent;                 /* result: ended because of silence */
};

static struct opts o;
static int out_fd = -1;          /* where received bytes go, or -1 */
static struct sipstate sip;
static bool sip_mode;

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(FILE *f)
{
	fputs("usage: " PROG " -c HOST:PORT [--send FILE|-] [--out FILE] [--read-timeout MS]\n"
	      "       [--hold MS] [--half-close] [--expect-close] [--repeat N] [--sip N|--pipeline N]\n"
#if HAVE_TLS
	      "       [--ca FILE] [--cert FILE --key FILE] [--sni NAME] [--verify-name NAME]\n"
	      "       [--no-verify] [--priority STR] [--sessfile FILE] [--print-info]\n"
	      "       " PROG " --show-serial CERTFILE\n"
#endif
	      "see the comment at the top of t/tlsclient.c for every option\n", f);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	usage(stderr);
	exit(EX_OTHER);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		msg("out of memory");
		exit(EX_OTHER);
	}
	return p;
}

static long long now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		msg("clock_gettime: %s", strerror(errno));
		exit(EX_OTHER);
	}
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		msg("generated line too long");
		exit(EX_OTHER);
	}
	buf_add(b, tmp, (size_t)n);
}

/* Writes all of p to fd. Returns 0 or -1 (errno set). */
static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads a whole file (or stdin for "-") into b, at most `max` bytes.
 * Returns 0, or -1 with a message printed. */
static int read_file(const char *path, struct buf *b, size_t max)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];

	if (fd < 0) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			msg("%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (b->len + (size_t)n > max) {
			msg("%s: larger than %zu bytes", path, max);
			goto fail;
		}
		buf_add(b, chunk, (size_t)n);
	}
	if (fd != STDIN_FILENO && close(fd) != 0) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
fail:
	if (fd != STDIN_FILENO && close(fd) != 0)
		msg("%s: %s", path, strerror(errno));
	return -1;
}

#if HAVE_TLS
/* Writes data to path atomically (path.tmp + rename). Returns 0 or -1. */
static int write_file_atomic(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
		msg("%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		msg("%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, data, len) != 0) {
		msg("%s: %s", tmp, strerror(errno));
		if (close(fd) != 0)
			msg("%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
#endif

#if HAVE_TLS
static bool is_ip_literal(const char *h)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}
#endif

/* Splits "HOST:PORT" or "[V6]:PORT" into o.host/o.port. */
static void parse_hostport(const char *s)
{
	const char *colon;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || end[1] != ':' || end[2] == '\0')
			die_usage("bad address %s (want HOST:PORT or [V6]:PORT)", s);
		o.host = strndup(s + 1, (size_t)(end - s - 1));
		o.port = strdup(end + 2);
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s || colon[1] == '\0')
			die_usage("bad address %s (want HOST:PORT or [V6]:PORT)", s);
		o.host = strndup(s, (size_t)(colon - s));
		o.port = strdup(colon + 1);
	}
	if (o.host == NULL || o.port == NULL) {
		msg("out of memory");
		exit(EX_OTHER);
	}
}

static long parse_num(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		die_usage("%s: bad number %s", opt, s);
	return v;
}

/* ---------------------------------------------------------------- connect */

/* Connects to o.host:o.port within o.connect_timeout. Returns a non-blocking
 * socket, or -1 with a message printed. */
static int tcp_connect(void)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, fd = -1, saved = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(o.host, o.port, &hints, &res);
	if (rc != 0) {
		msg("connect %s:%s: %s", o.host, o.port, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t elen = sizeof saved;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			saved = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			rc = poll(&pfd, 1, (int)o.connect_timeout);
		while (rc < 0 && errno == EINTR);
		if (rc < 0) {
			saved = errno;
			goto next;
		}
		if (rc == 0) {
			saved = ETIMEDOUT;
			goto next;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &elen) != 0)
			saved = errno;
		if (saved == 0)
			break;
next:
		if (close(fd) != 0)
			msg("close: %s", strerror(errno));
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		msg("connect %s:%s: %s", o.host, o.port, strerror(saved ? saved : ECONNREFUSED));
	return fd;
}

/* --------------------------------------------------------- transport I/O */

/* Receives up to len bytes. Returns >0 bytes, IO_EOF (peer closed or reset:
 * c->closed is set), IO_AGAIN, or IO_ERR (c->err, c->err_exit set). */
static ssize_t c_recv(struct conn *c, char *p, size_t len)
{
#if HAVE_TLS
	if (c->s != NULL) {
		ssize_t n = gnutls_record_recv(c->s, p, len);
		const char *what;

		c->want_write = false;
		if (n > 0)
			return n;
		switch (n) {
		case 0:
			c->closed = true;
			return IO_EOF;
		case GNUTLS_E_AGAIN:
		case GNUTLS_E_INTERRUPTED:
			c->want_write = gnutls_record_get_direction(c->s) == 1;
			return IO_AGAIN;
		case GNUTLS_E_PREMATURE_TERMINATION:
		case GNUTLS_E_PULL_ERROR:
			/* TCP closed or reset without close_notify */
			c->closed = true;
			return IO_EOF;
		case GNUTLS_E_WARNING_ALERT_RECEIVED:
		case GNUTLS_E_REHANDSHAKE:
			return IO_AGAIN; /* ignore; keep reading */
		case GNUTLS_E_FATAL_ALERT_RECEIVED:
			what = gnutls_alert_get_name(gnutls_alert_get(c->s));
			if (what == NULL)
				what = "unknown alert";
			break;
		default:
			if (!gnutls_error_is_fatal((int)n))
				return IO_AGAIN;
			what = gnutls_strerror((int)n);
			break;
		}
		/* Before any data arrived this is how a TLS 1.3 server rejects
		 * our certificate (after our side of the handshake is done). */
		snprintf(c->err, sizeof c->err, "%s%s: %s%s",
			 c->app_data ? "" : "handshake failed: ",
			 n == GNUTLS_E_FATAL_ALERT_RECEIVED ? "received fatal alert" : "TLS receive",
			 what, c->app_data ? "" : " (before any data)");
		c->err_exit = c->app_data ? EX_OTHER : EX_HANDSHAKE;
		c->closed = true;
		return IO_ERR;
	}
#endif
	for (;;) {
		ssize_t n = recv(c->fd, p, len, 0);
		if (n > 0)
			return n;
		if (n == 0) {
			c->closed = true;
			return IO_EOF;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		if (errno == ECONNRESET) {
			c->closed = true;
			return IO_EOF;
		}
		snprintf(c->err, sizeof c->err, "recv: %s", strerror(errno));
		c->err_exit = EX_OTHER;
		return IO_ERR;
	}
}

/* Sends up to len bytes (with TLS: retry with the same arguments after
 * IO_AGAIN). Returns >0 bytes sent, IO_AGAIN, or IO_EOF when the peer has
 * gone (c->send_broken set), or IO_ERR. */
static ssize_t c_send(struct conn *c, const char *p, size_t len)
{
#if HAVE_TLS
	if (c->s != NULL) {
		ssize_t n = gnutls_record_send(c->s, p, len);
		c->want_write = false;
		if (n >= 0)
			return n;
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			c->want_write = gnutls_record_get_direction(c->s) == 1;
			return IO_AGAIN;
		}
		if (n == GNUTLS_E_PUSH_ERROR || n == GNUTLS_E_PREMATURE_TERMINATION) {
			c->send_broken = true;
			return IO_EOF;
		}
		snprintf(c->err, sizeof c->err, "TLS send: %s", gnutls_strerror((int)n));
		c->err_exit = EX_OTHER;
		return IO_ERR;
	}
#endif
	for (;;) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN;
		if (errno == EPIPE || errno == ECONNRESET) {
			c->send_broken = true;
			return IO_EOF;
		}
		snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
		c->err_exit = EX_OTHER;
		return IO_ERR;
	}
}

/* True if the TLS layer last blocked on writing (so readiness to write
 * should resume a pending receive). */
static bool c_wants_write(struct conn *c)
{
#if HAVE_TLS
	return c->s != NULL && c->want_write;
#else
	(void)c;
	return false;
#endif
}

/* Bytes already decrypted and waiting inside the TLS layer. */
static size_t c_pending(struct conn *c)
{
#if HAVE_TLS
	if (c->s != NULL)
		return gnutls_record_check_pending(c->s);
#else
	(void)c;
#endif
	return 0;
}

/* Shuts down our sending side: close_notify (TLS) then TCP FIN. Best effort
 * within a short bound; failures only matter as a message. */
static void c_shutdown_write(struct conn *c)
{
#if HAVE_TLS
	if (c->s != NULL) {
		long long until = now_ms() + 1000;
		int rc;
		while ((rc = gnutls_bye(c->s, GNUTLS_SHUT_WR)) == GNUTLS_E_AGAIN ||
		       rc == GNUTLS_E_INTERRUPTED) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
			if (now_ms() >= until || poll(&pfd, 1, 100) < 0)
				break;
		}
		if (rc != GNUTLS_E_SUCCESS && rc != GNUTLS_E_AGAIN && !o.quiet)
			msg("close_notify: %s", gnutls_strerror(rc));
	}
#endif
	if (shutdown(c->fd, SHUT_WR) != 0 && errno != ENOTCONN && !o.quiet)
		msg("shutdown: %s", strerror(errno));
}

/* ------------------------------------------------------------ SIP framing */

/* Parses up to `max` decimal digits at p into *out. Returns how many digits
 * were used (0 if none). */
static size_t parse_ulong(const char *p, size_t max, unsigned long *out)
{
	size_t i;

	*out = 0;
	for (i = 0; i < max && p[i] >= '0' && p[i] <= '9'; i++) {
		if (*out > (ULONG_MAX - 9) / 10)
			return 0;
		*out = *out * 10 + (unsigned long)(p[i] - '0');
	}
	return i;
}

/* Finds header `name` (or compact `cname`) in the header block [h, h+len).
 * Returns a pointer to its value (after the colon and spaces) and sets *vlen,
 * or returns NULL. */
static const char *sip_header(const char *h, size_t len, const char *name, const char *cname,
			      size_t *vlen)
{
	const char *end = h + len, *line = memmem(h, len, "\r\n", 2);

	while (line != NULL && line + 2 < end) {
		const char *l = line + 2, *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
		const char *colon, *ne;
		if (eol == NULL || eol == l)
			return NULL;
		colon = memchr(l, ':', (size_t)(eol - l));
		if (colon != NULL) {
			size_t nl;
			ne = colon;
			while (ne > l && (ne[-1] == ' ' || ne[-1] == '\t'))
				ne--;
			nl = (size_t)(ne - l);
			if ((nl == strlen(name) && strncasecmp(l, name, nl) == 0) ||
			    (cname != NULL && nl == strlen(cname) && strncasecmp(l, cname, nl) == 0)) {
				const char *v = colon + 1;
				while (v < eol && (*v == ' ' || *v == '\t'))
					v++;
				*vlen = (size_t)(eol - v);
				return v;
			}
		}
		line = eol;
	}
	return NULL;
}

static void call_id(char *dst, size_t n, unsigned long conn_no, unsigned long i)
{
	snprintf(dst, n, "%ld-%lu-%lu@" PROG ".test", (long)getpid(), conn_no, i);
}

/* Appends OPTIONS request number i (CSeq i) to b. */
static void sip_request(struct buf *b, unsigned long i, unsigned local_port)
{
	char cid[128];
	size_t k;

	call_id(cid, sizeof cid, sip.conn_no, i);
	buf_printf(b, "OPTIONS %s SIP/2.0\r\n", o.ruri);
	buf_printf(b, "Via: SIP/2.0/%s 127.0.0.1:%u;branch=z9hG4bK-%ld-%lu-%lu\r\n",
		   HAVE_TLS ? "TLS" : "TCP", local_port, (long)getpid(), sip.conn_no, i);
	buf_printf(b, "Max-Forwards: 70\r\n");
	buf_printf(b, "From: <sip:" PROG "@test.invalid>;tag=%ld-%lu\r\n", (long)getpid(), sip.conn_no);
	buf_printf(b, "To: <%s>\r\n", o.ruri);
	buf_printf(b, "Call-ID: %s\r\n", cid);
	buf_printf(b, "CSeq: %lu OPTIONS\r\n", i);
	for (k = 0; k < o.nheaders; k++)
		buf_printf(b, "%s\r\n", o.headers[k]);
	if (o.body_size > 0) {
		size_t j;
		buf_printf(b, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n", o.body_size);
		for (j = 0; j < o.body_size; j++)
			buf_add(b, (j % 64 == 63) ? "\n" : "x", 1);
	} else {
		buf_printf(b, "Content-Length: 0\r\n\r\n");
	}
}

/*
 * Frames responses in sip.rx and checks each final one against the request
 * with the same sequence number. Returns 0, or -1 if the stream is not SIP.
 */
static int sip_parse(void)
{
	size_t pos = 0;

	for (;;) {
		const char *p = sip.rx.p + pos, *hend, *v;
		size_t avail = sip.rx.len - pos, hlen, vlen;
		unsigned long long clen = 0;
		unsigned long status;
		char want_cid[128];

		while (avail > 0 && (*p == '\r' || *p == '\n')) {
			p++;
			pos++;
			avail--;
		}
		if (avail == 0)
			break;
		hend = memmem(p, avail, "\r\n\r\n", 4);
		if (hend == NULL) {
			if (avail > MAX_RESPONSE) {
				msg("response header block too large");
				return -1;
			}
			break;
		}
		hlen = (size_t)(hend - p) + 4;
		if (hlen < 12 || memcmp(p, "SIP/2.0 ", 8) != 0 ||
		    parse_ulong(p + 8, 3, &status) != 3) {
			msg("not a SIP response: %.*s", (int)(avail < 40 ? avail : 40), p);
			return -1;
		}
		v = sip_header(p, hlen, "Content-Length", "l", &vlen);
		if (v != NULL) {
			char num[32];
			char *end;
			if (vlen == 0 || vlen >= sizeof num) {
				msg("bad Content-Length in response");
				return -1;
			}
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			errno = 0;
			clen = strtoull(num, &end, 10);
			if (errno != 0 || (*end != '\0' && *end != ' ' && *end != '\t') ||
			    clen > MAX_RESPONSE) {
				msg("bad Content-Length in response");
				return -1;
			}
		}
		if (avail < hlen + clen)
			break; /* body incomplete */
		if (status >= 200) {
			unsigned long want = ++sip.next_resp, cseq = 0;
			bool good = status == 200;
			v = sip_header(p, hlen, "CSeq", NULL, &vlen);
			if (v == NULL || parse_ulong(v, vlen, &cseq) == 0 || cseq != want)
				good = false;
			call_id(want_cid, sizeof want_cid, sip.conn_no, want);
			v = sip_header(p, hlen, "Call-ID", "i", &vlen);
			if (v == NULL || vlen != strlen(want_cid) || memcmp(v, want_cid, vlen) != 0)
				good = false;
			if (good)
				sip.ok++;
			else if (!o.quiet)
				msg("response %lu is not a 200 matching request %lu: %.*s", want, want,
				    (int)((const char *)memchr(p, '\r', hlen) - p), p);
		}
		pos += hlen + (size_t)clen;
	}
	if (pos > 0) {
		memmove(sip.rx.p, sip.rx.p + pos, sip.rx.len - pos);
		sip.rx.len -= pos;
	}
	return 0;
}

/* ----------------------------------------------------------- the I/O loop */

/* Handles received bytes. Returns 0, or -1 on a fatal problem. */
static int on_data(struct conn *c, const char *p, size_t n)
{
	c->app_data = true;
	c->received += n;
	if (out_fd >= 0 && write_all(out_fd, p, n) != 0) {
		snprintf(c->err, sizeof c->err, "write output: %s", strerror(errno));
		return -1;
	}
	if (sip_mode) {
		buf_add(&sip.rx, p, n);
		if (sip_parse() != 0) {
			snprintf(c->err, sizeof c->err, "bad SIP stream from peer");
			return -1;
		}
	}
	return 0;
}

/*
 * Sends x->tx while reading, then reads until the goal of x is reached, the
 * peer closes, or the connection falls silent. Returns EX_OK, or an exit
 * code with a message printed.
 */
static int xfer_run(struct conn *c, struct xfer *x)
{
	long long last = now_ms(), hard = last + o.max_time;
	long silence = x->silence_ms > 0 ? x->silence_ms : o.read_timeout;
	char rbuf[65536];

	x->silent = false;
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = 0 };
		bool tx_left = x->txoff < x->txlen && !c->send_broken;
		long long now = now_ms(), timeout;
		int rc;

		if (!tx_left && x->half_close) {
			c_shutdown_write(c);
			x->half_close = false;
		}
		if (c->closed)
			return EX_OK;
		if (!tx_left && x->want_resp > 0 && sip.next_resp >= x->want_resp)
			return EX_OK;
		if (x->stop_at > 0) {
			if (now >= x->stop_at)
				return EX_OK;
			timeout = x->stop_at - now;
		} else {
			if (now - last >= silence) {
				if (tx_left) {
					msg("send stalled: %zu of %zu bytes sent, then %ld ms without progress",
					    x->txoff, x->txlen, silence);
					return EX_OTHER;
				}
				x->silent = true;
				return EX_OK;
			}
			timeout = last + silence - now;
		}
		if (now >= hard) {
			msg("gave up after --max-time %ld ms", o.max_time);
			return EX_OTHER;
		}
		if (timeout > hard - now)
			timeout = hard - now;

		pfd.events = POLLIN;
		if (tx_left)
			pfd.events |= POLLOUT;
#if HAVE_TLS
		if (c->want_write)
			pfd.events |= POLLOUT;
#endif
		if (c_pending(c) > 0) {
			rc = 1;
			pfd.revents = POLLIN;
		} else {
			rc = poll(&pfd, 1, (int)timeout);
			if (rc < 0) {
				if (errno == EINTR)
					continue;
				msg("poll: %s", strerror(errno));
				return EX_OTHER;
			}
		}
		if (rc == 0)
			continue; /* the timeout checks above decide */

		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) ||
		    (c_wants_write(c) && (pfd.revents & POLLOUT))) {
			for (;;) {
				ssize_t n = c_recv(c, rbuf, sizeof rbuf);
				if (n > 0) {
					last = now_ms();
					if (on_data(c, rbuf, (size_t)n) != 0) {
						msg("%s", c->err);
						return EX_OTHER;
					}
					continue;
				}
				if (n == IO_ERR) {
					msg("%s", c->err);
					return c->err_exit;
				}
				break; /* IO_AGAIN or IO_EOF */
			}
			if (c->closed)
				continue;
		}
		if (tx_left && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
			size_t len = x->txlen - x->txoff;
			ssize_t n;
			if (len > SEND_CHUNK)
				len = SEND_CHUNK;
			n = c_send(c, x->tx + x->txoff, len);
			if (n > 0) {
				x->txoff += (size_t)n;
				c->sent += (unsigned long long)n;
				last = now_ms();
			} else if (n == IO_ERR) {
				msg("%s", c->err);
				return c->err_exit;
			} else if (n == IO_EOF) {
				/* The peer went away; read what it said (an alert?). */
				last = now_ms();
			}
		}
	}
}

/* ------------------------------------------------------------------- TLS */

#if HAVE_TLS
#define MAX_CHAIN 16

static gnutls_certificate_credentials_t cred;
static struct buf session_data;
static gnutls_pcert_st client_chain[MAX_CHAIN];
static unsigned client_chain_len;
static gnutls_privkey_t client_key;

/* Hands GnuTLS our certificate whatever the server's acceptable-CA list
 * says (GnuTLS alone would send none when our issuer is not listed). */
static int retrieve_cert(gnutls_session_t s, const gnutls_datum_t *req_ca_rdn, int nreqs,
			 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			 gnutls_pcert_st **pcert, unsigned int *pcert_length,
			 gnutls_privkey_t *privkey)
{
	(void)s;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	*pcert = client_chain;
	*pcert_length = client_chain_len;
	*privkey = client_key;
	return 0;
}

/* Loads --cert/--key for retrieve_cert(). Exits on error. */
static void load_client_cert(void)
{
	gnutls_datum_t d = { NULL, 0 };
	int rc;

	client_chain_len = MAX_CHAIN;
	rc = gnutls_pcert_list_import_x509_file(client_chain, &client_chain_len, o.cert,
						GNUTLS_X509_FMT_PEM, NULL, NULL, 0);
	if (rc < 0) {
		msg("--cert %s: %s", o.cert, gnutls_strerror(rc));
		exit(EX_OTHER);
	}
	if ((rc = gnutls_load_file(o.key, &d)) < 0 ||
	    (rc = gnutls_privkey_init(&client_key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(client_key, &d, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		msg("--key %s: %s", o.key, gnutls_strerror(rc));
		exit(EX_OTHER);
	}
	gnutls_free(d.data);
	gnutls_certificate_set_retrieve_function2(cred, retrieve_cert);
}

static void free_client_cert(void)
{
	unsigned i;

	for (i = 0; i < client_chain_len; i++)
		gnutls_pcert_deinit(&client_chain[i]);
	if (client_key != NULL)
		gnutls_privkey_deinit(client_key);
}

/* Formats the serial of crt as lower-case hex without leading zero bytes. */
static int serial_hex(gnutls_x509_crt_t crt, char *out, size_t outlen)
{
	unsigned char ser[64];
	size_t len = sizeof ser, i = 0, k;
	int rc = gnutls_x509_crt_get_serial(crt, ser, &len);

	if (rc < 0) {
		snprintf(out, outlen, "?");
		return rc;
	}
	while (i + 1 < len && ser[i] == 0)
		i++;
	for (k = 0; i < len && k + 3 <= outlen; i++, k += 2)
		snprintf(out + k, 3, "%02x", ser[i]);
	return 0;
}

static int show_serial(const char *path)
{
	gnutls_datum_t d = { NULL, 0 };
	gnutls_x509_crt_t crt;
	char hex[160];
	int rc;

	rc = gnutls_load_file(path, &d);
	if (rc < 0) {
		msg("%s: %s", path, gnutls_strerror(rc));
		return EX_OTHER;
	}
	if ((rc = gnutls_x509_crt_init(&crt)) < 0 ||
	    (rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (rc = serial_hex(crt, hex, sizeof hex)) < 0) {
		msg("%s: %s", path, gnutls_strerror(rc));
		gnutls_free(d.data);
		return EX_OTHER;
	}
	printf("cert-serial=%s\n", hex);
	gnutls_x509_crt_deinit(crt);
	gnutls_free(d.data);
	return EX_OK;
}

static void tls_global_setup(void)
{
	int rc = gnutls_certificate_allocate_credentials(&cred);

	if (rc < 0) {
		msg("credentials: %s", gnutls_strerror(rc));
		exit(EX_OTHER);
	}
	if (o.ca != NULL) {
		rc = gnutls_certificate_set_x509_trust_file(cred, o.ca, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			msg("--ca %s: %s", o.ca, gnutls_strerror(rc));
			exit(EX_OTHER);
		}
		if (rc == 0) {
			msg("--ca %s: no certificates", o.ca);
			exit(EX_OTHER);
		}
	}
	if (o.cert != NULL)
		load_client_cert();
	if (o.sessfile != NULL && access(o.sessfile, F_OK) == 0 &&
	    read_file(o.sessfile, &session_data, 1024 * 1024) != 0)
		exit(EX_OTHER);
}

/* Creates c->s, configures it and completes the handshake.
 * Returns EX_OK or EX_HANDSHAKE/EX_OTHER with a message printed. */
static int tls_start(struct conn *c)
{
	const char *err_pos = NULL, *sni = o.sni, *vname = o.verify_name;
	long long until = now_ms() + o.handshake_timeout;
	int rc;

	if (sni == NULL && !is_ip_literal(o.host))
		sni = o.host;
	if (vname == NULL)
		vname = o.sni != NULL ? o.sni : o.host;

	if ((rc = gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) < 0) {
		msg("gnutls_init: %s", gnutls_strerror(rc));
		c->s = NULL;
		return EX_OTHER;
	}
	if ((rc = gnutls_priority_set_direct(c->s, o.priority, &err_pos)) < 0) {
		msg("--priority %s: %s at \"%s\"", o.priority, gnutls_strerror(rc),
		    err_pos ? err_pos : "");
		return EX_OTHER;
	}
	if ((rc = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, cred)) < 0) {
		msg("gnutls_credentials_set: %s", gnutls_strerror(rc));
		return EX_OTHER;
	}
	if (sni != NULL && *sni != '\0' &&
	    (rc = gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, sni, strlen(sni))) < 0) {
		msg("--sni %s: %s", sni, gnutls_strerror(rc));
		return EX_OTHER;
	}
	if (o.ca != NULL && !o.no_verify)
		gnutls_session_set_verify_cert(c->s, vname, 0);
	if (session_data.len > 0) {
		rc = gnutls_session_set_data(c->s, session_data.p, session_data.len);
		if (rc < 0 && !o.quiet)
			msg("--sessfile %s: %s (doing a full handshake)", o.sessfile, gnutls_strerror(rc));
	}
	gnutls_transport_set_int(c->s, c->fd);

	for (;;) {
		struct pollfd pfd = { .fd = c->fd };
		long long left;

		rc = gnutls_handshake(c->s);
		if (rc == GNUTLS_E_SUCCESS)
			return EX_OK;
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED) {
			if (!gnutls_error_is_fatal(rc))
				continue; /* e.g. a warning alert */
			break;
		}
		left = until - now_ms();
		if (left <= 0) {
			msg("handshake failed: timed out after %ld ms", o.handshake_timeout);
			return EX_HANDSHAKE;
		}
		pfd.events = gnutls_record_get_direction(c->s) ? POLLOUT : POLLIN;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			msg("poll: %s", strerror(errno));
			return EX_OTHER;
		}
	}

	if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED || rc == GNUTLS_E_WARNING_ALERT_RECEIVED) {
		const char *name = gnutls_alert_get_name(gnutls_alert_get(c->s));
		msg("handshake failed: received fatal alert: %s", name ? name : "unknown alert");
	}
	else
		msg("handshake failed: %s", gnutls_strerror(rc));
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t out = { NULL, 0 };
		unsigned status = gnutls_session_get_verify_cert_status(c->s);
		if (gnutls_certificate_verification_status_print(
			    status, gnutls_certificate_type_get(c->s), &out, 0) == 0) {
			msg("verification (name %s): %s", vname, out.data);
			gnutls_free(out.data);
		}
	}
	return EX_HANDSHAKE;
}

static void tls_print_info(struct conn *c)
{
	const gnutls_datum_t *certs;
	unsigned ncerts = 0;
	char serial[160] = "none", dn[1024] = "";
	gnutls_group_t grp = gnutls_group_get(c->s);
	const char *gname = grp ? gnutls_group_get_name(grp) : NULL;

	certs = gnutls_certificate_get_peers(c->s, &ncerts);
	if (certs != NULL && ncerts > 0) {
		gnutls_x509_crt_t crt;
		size_t dnlen = sizeof dn;
		int rc;
		if ((rc = gnutls_x509_crt_init(&crt)) < 0) {
			msg("gnutls_x509_crt_init: %s", gnutls_strerror(rc));
		} else {
			if ((rc = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER)) < 0 ||
			    (rc = serial_hex(crt, serial, sizeof serial)) < 0)
				msg("server certificate: %s", gnutls_strerror(rc));
			else if ((rc = gnutls_x509_crt_get_dn(crt, dn, &dnlen)) < 0)
				snprintf(dn, sizeof dn, "?");
			gnutls_x509_crt_deinit(crt);
		}
	}
	fprintf(stderr, "version=%s cipher=%s group=%s resumed=%s cert-requested=%s cert-serial=%s\n",
		gnutls_protocol_get_name(gnutls_protocol_get_version(c->s)),
		gnutls_cipher_get_name(gnutls_cipher_get(c->s)), gname ? gname : "none",
		gnutls_session_is_resumed(c->s) ? "yes" : "no",
		gnutls_certificate_client_get_request_status(c->s) ? "yes" : "no", serial);
	fprintf(stderr, "cert-dn=%s\n", dn);
}

/* Keeps the newest resumable session of c (and saves it to --sessfile). */
static void tls_keep_session(struct conn *c)
{
	gnutls_datum_t d = { NULL, 0 };
	int rc;

	if (o.sessfile == NULL)
		return;
	if (gnutls_protocol_get_version(c->s) == GNUTLS_TLS1_3 &&
	    !(gnutls_session_get_flags(c->s) & GNUTLS_SFLAGS_SESSION_TICKET))
		return; /* no ticket arrived: the old one (if any) stays */
	rc = gnutls_session_get_data2(c->s, &d);
	if (rc < 0) {
		msg("session data: %s", gnutls_strerror(rc));
		return;
	}
	session_data.len = 0;
	buf_add(&session_data, d.data, d.size);
	gnutls_free(d.data);
	if (write_file_atomic(o.sessfile, session_data.p, session_data.len) != 0)
		msg("could not save the session to %s", o.sessfile);
}
#endif /* HAVE_TLS */

/* ------------------------------------------------------------ one round */

static unsigned local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Runs one connection. Returns an exit code. */
static int run_once(const struct buf *data, unsigned long round, unsigned long *sent_reqs)
{
	struct conn c;
	struct xfer x = { 0 };
	struct buf reqs = { NULL, 0, 0 };
	int rc = EX_OK;
	bool closed_early = false;

	memset(&c, 0, sizeof c);
	c.fd = tcp_connect();
	if (c.fd < 0)
		return EX_CONNECT;
	sip.conn_no = round;
	sip.next_resp = 0;
	sip.rx.len = 0;

#if HAVE_TLS
	rc = tls_start(&c);
	if (rc != EX_OK)
		goto out;
	if (o.print_info)
		tls_print_info(&c);
#endif

	if (o.hold > 0) {
		memset(&x, 0, sizeof x);
		x.stop_at = now_ms() + o.hold;
		rc = xfer_run(&c, &x);
		if (rc != EX_OK)
			goto out;
		if (c.closed)
			closed_early = true;
	}

	if (closed_early) {
		if (data->len > 0 || o.sip > 0 || o.pipeline > 0) {
			if (o.expect_close) {
				if (!o.quiet)
					msg("peer closed during --hold; nothing sent");
			} else {
				msg("peer closed during --hold, before anything was sent");
				rc = EX_FAIL;
			}
		}
	} else if (o.sip > 0) {
		unsigned long i;
		unsigned lp = local_port(c.fd);
		for (i = 1; i <= o.sip && !c.closed; i++) {
			reqs.len = 0;
			sip_request(&reqs, i, lp);
			memset(&x, 0, sizeof x);
			x.tx = reqs.p;
			x.txlen = reqs.len;
			x.want_resp = i;
			x.silence_ms = o.read_timeout;
			rc = xfer_run(&c, &x);
			(*sent_reqs)++;
			if (rc != EX_OK)
				goto out;
			if (sip.next_resp < i) {
				msg("no response to request %lu (%s)", i,
				    c.closed ? "peer closed" : "timed out");
				break;
			}
		}
	} else if (o.pipeline > 0) {
		unsigned long i;
		unsigned lp = local_port(c.fd);
		for (i = 1; i <= o.pipeline; i++)
			sip_request(&reqs, i, lp);
		memset(&x, 0, sizeof x);
		x.tx = reqs.p;
		x.txlen = reqs.len;
		x.want_resp = o.pipeline;
		x.silence_ms = o.read_timeout;
		rc = xfer_run(&c, &x);
		*sent_reqs += o.pipeline;
		if (rc != EX_OK)
			goto out;
		if (sip.next_resp < o.pipeline)
			msg("got %lu of %lu responses (%s)", sip.next_resp, o.pipeline,
			    c.closed ? "peer closed" : "timed out");
	} else {
		memset(&x, 0, sizeof x);
		x.tx = data->p;
		x.txlen = data->len;
		x.half_close = o.half_close;
		x.silence_ms = o.read_timeout;
		rc = xfer_run(&c, &x);
		if (rc != EX_OK)
			goto out;
		if (x.txoff < x.txlen) {
			if (o.expect_close) {
				if (!o.quiet)
					msg("peer closed after %zu of %zu bytes", x.txoff, x.txlen);
			} else {
				msg("peer closed before all data was sent (%zu of %zu bytes)",
				    x.txoff, x.txlen);
				rc = EX_FAIL;
			}
		}
	}

	if (rc == EX_OK && o.expect_close && !c.closed && x.silent) {
		msg("--expect-close: peer still open after %ld ms of silence", o.read_timeout);
		rc = EX_FAIL;
	} else if (rc == EX_OK && o.expect_close && !c.closed) {
		memset(&x, 0, sizeof x);
		x.silence_ms = o.read_timeout;
		rc = xfer_run(&c, &x);
		if (rc == EX_OK && !c.closed) {
			msg("--expect-close: peer still open after %ld ms of silence", o.read_timeout);
			rc = EX_FAIL;
		}
	}

out:
#if HAVE_TLS
	if (c.s != NULL) {
		if (rc == EX_OK || rc == EX_FAIL)
			tls_keep_session(&c);
		if (!c.closed && (rc == EX_OK || rc == EX_FAIL)) {
			int brc = gnutls_bye(c.s, GNUTLS_SHUT_WR); /* one try, non-blocking */
			if (brc < 0 && brc != GNUTLS_E_AGAIN && brc != GNUTLS_E_INTERRUPTED && !o.quiet)
				msg("close_notify: %s", gnutls_strerror(brc));
		}
		if (o.print_info)
			fprintf(stderr, "sent-bytes=%llu received-bytes=%llu peer-closed=%s\n",
				c.sent, c.received, c.closed ? "yes" : "no");
		gnutls_deinit(c.s);
	}
#endif
	if (close(c.fd) != 0)
		msg("close: %s", strerror(errno));
	free(reqs.p);
	return rc;
}

int main(int argc, char **argv)
{
	enum {
		OPT_CA = 256, OPT_CERT, OPT_KEY, OPT_SNI, OPT_VNAME, OPT_NOVERIFY, OPT_SEND, OPT_EXPECT_CLOSE,
		OPT_READ_TIMEOUT, OPT_OUT, OPT_SESSFILE, OPT_PRIORITY, OPT_REPEAT, OPT_PRINT_INFO, OPT_SIP,
		OPT_PIPELINE, OPT_HOLD, OPT_HALF_CLOSE, OPT_CONNECT_TIMEOUT, OPT_HS_TIMEOUT, OPT_MAX_TIME,
		OPT_HEADER, OPT_BODY_SIZE, OPT_RURI, OPT_SHOW_SERIAL,
	};
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "ca", required_argument, NULL, OPT_CA },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "sni", required_argument, NULL, OPT_SNI },
		{ "verify-name", required_argument, NULL, OPT_VNAME },
		{ "no-verify", no_argument, NULL, OPT_NOVERIFY },
		{ "send", required_argument, NULL, OPT_SEND },
		{ "expect-close", no_argument, NULL, OPT_EXPECT_CLOSE },
		{ "read-timeout", required_argument, NULL, OPT_READ_TIMEOUT },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "sessfile", required_argument, NULL, OPT_SESSFILE },
		{ "priority", required_argument, NULL, OPT_PRIORITY },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "print-info", no_argument, NULL, OPT_PRINT_INFO },
		{ "sip", required_argument, NULL, OPT_SIP },
		{ "pipeline", required_argument, NULL, OPT_PIPELINE },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "half-close", no_argument, NULL, OPT_HALF_CLOSE },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
		{ "handshake-timeout", required_argument, NULL, OPT_HS_TIMEOUT },
		{ "max-time", required_argument, NULL, OPT_MAX_TIME },
		{ "header", required_argument, NULL, OPT_HEADER },
		{ "body-size", required_argument, NULL, OPT_BODY_SIZE },
		{ "ruri", required_argument, NULL, OPT_RURI },
		{ "show-serial", required_argument, NULL, OPT_SHOW_SERIAL },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct buf data = { NULL, 0, 0 };
	unsigned long round, sent_reqs = 0;
	char ruri[512];
	int opt, rc = EX_OK;
	bool tls_opt = false;

	o.priority = "NORMAL";
	o.read_timeout = 2000;
	o.connect_timeout = 5000;
	o.handshake_timeout = 5000;
	o.max_time = 60000;
	o.repeat = 1;

	while ((opt = getopt_long(argc, argv, "c:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': parse_hostport(optarg); break;
		case OPT_CA: o.ca = optarg; tls_opt = true; break;
		case OPT_CERT: o.cert = optarg; tls_opt = true; break;
		case OPT_KEY: o.key = optarg; tls_opt = true; break;
		case OPT_SNI: o.sni = optarg; tls_opt = true; break;
		case OPT_VNAME: o.verify_name = optarg; tls_opt = true; break;
		case OPT_NOVERIFY: o.no_verify = true; tls_opt = true; break;
		case OPT_SESSFILE: o.sessfile = optarg; tls_opt = true; break;
		case OPT_PRIORITY: o.priority = optarg; tls_opt = true; break;
		case OPT_PRINT_INFO: o.print_info = true; tls_opt = true; break;
		case OPT_HS_TIMEOUT:
			o.handshake_timeout = parse_num("--handshake-timeout", optarg, 1, 3600000);
			tls_opt = true;
			break;
		case OPT_SHOW_SERIAL:
#if HAVE_TLS
			return show_serial(optarg);
#else
			die_usage("--show-serial needs tlsclient");
#endif
		case OPT_SEND: o.send_file = optarg; break;
		case OPT_OUT: o.out_file = optarg; break;
		case OPT_EXPECT_CLOSE: o.expect_close = true; break;
		case OPT_HALF_CLOSE: o.half_close = true; break;
		case OPT_READ_TIMEOUT: o.read_timeout = parse_num("--read-timeout", optarg, 1, 3600000); break;
		case OPT_CONNECT_TIMEOUT:
			o.connect_timeout = parse_num("--connect-timeout", optarg, 1, 3600000);
			break;
		case OPT_MAX_TIME: o.max_time = parse_num("--max-time", optarg, 1, 86400000); break;
		case OPT_HOLD: o.hold = parse_num("--hold", optarg, 0, 3600000); break;
		case OPT_REPEAT: o.repeat = (unsigned long)parse_num("--repeat", optarg, 1, 1000000); break;
		case OPT_SIP: o.sip = (unsigned long)parse_num("--sip", optarg, 1, 10000000); break;
		case OPT_PIPELINE: o.pipeline = (unsigned long)parse_num("--pipeline", optarg, 1, 100000); break;
		case OPT_BODY_SIZE: o.body_size = (unsigned long)parse_num("--body-size", optarg, 0, 16 << 20); break;
		case OPT_RURI: o.ruri = optarg; break;
		case OPT_HEADER:
			o.headers = xrealloc(o.headers, (o.nheaders + 1) * sizeof *o.headers);
			o.headers[o.nheaders++] = optarg;
			break;
		case 'q': o.quiet = true; break;
		case 'h': usage(stdout); return EX_OK;
		default: die_usage("bad usage");
		}
	}
	if (optind != argc)
		die_usage("unexpected argument %s", argv[optind]);
	if (o.host == NULL)
		die_usage("-c HOST:PORT is required");
	if (!HAVE_TLS && tls_opt)
		die_usage("TLS options need tlsclient");
	if ((o.cert == NULL) != (o.key == NULL))
		die_usage("--cert and --key go together");
	if (o.sip > 0 && o.pipeline > 0)
		die_usage("--sip and --pipeline exclude each other");
	if ((o.sip > 0 || o.pipeline > 0) && o.send_file != NULL)
		die_usage("--send excludes --sip and --pipeline");
	if (o.ruri == NULL) {
		bool v6 = strchr(o.host, ':') != NULL;
		snprintf(ruri, sizeof ruri, "sip:ping@%s%s%s", v6 ? "[" : "", o.host, v6 ? "]" : "");
		o.ruri = ruri;
	}
	sip_mode = o.sip > 0 || o.pipeline > 0;

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		msg("signal: %s", strerror(errno));
		return EX_OTHER;
	}
	if (o.send_file != NULL && read_file(o.send_file, &data, MAX_SEND_FILE) != 0)
		return EX_OTHER;
	if (o.out_file != NULL) {
		out_fd = open(o.out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			msg("%s: %s", o.out_file, strerror(errno));
			return EX_OTHER;
		}
	} else if (!sip_mode) {
		out_fd = STDOUT_FILENO;
	}
#if HAVE_TLS
	tls_global_setup();
#endif

	for (round = 1; round <= o.repeat && rc == EX_OK; round++)
		rc = run_once(&data, round, &sent_reqs);

	if (sip_mode) {
		/* sip.ok accumulates across rounds */
		printf("sent=%lu ok=%lu\n", sent_reqs, sip.ok);
		if (fflush(stdout) != 0) {
			msg("stdout: %s", strerror(errno));
			rc = EX_OTHER;
		}
		if (rc == EX_OK && sip.ok != (o.sip ? o.sip : o.pipeline) * o.repeat)
			rc = EX_FAIL;
	}
	if (out_fd >= 0 && out_fd != STDOUT_FILENO && close(out_fd) != 0) {
		msg("%s: %s", o.out_file, strerror(errno));
		rc = rc ? rc : EX_OTHER;
	}
#if HAVE_TLS
	gnutls_certificate_free_credentials(cred);
	free_client_cert();
	free(session_data.p);
#endif
	free(data.p);
	free(sip.rx.p);
	free(o.headers);
	free(o.host);
	free(o.port);
	return rc;
}
