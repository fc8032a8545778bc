/*
 * recbackend: a stand-in for the legacy SIP server behind sip-sidecar, for the
 * integration tests. It listens on one plaintext TCP address, accepts any
 * number of connections in a single epoll loop and, per connection, records
 * every byte received (raw: PROXY headers and all) and then, depending on the
 * mode, says nothing, echoes the bytes back, or answers each SIP request with
 * a "200 OK".
 *
 *   recbackend [-l ADDR:PORT] [-d DIR] [-a | -e | -x | -S] [-C N]
 *              [-p PIDFILE] [-P PORTFILE]
 *
 *   -l ADDR:PORT  listen address: 127.0.0.1:5060, [::1]:5060 (default
 *                 127.0.0.1:0; port 0 picks a free port). The bound port is
 *                 printed on stdout once the socket listens.
 *   -d DIR        record: connection N (1, 2, ...) is appended to
 *                 DIR/conn-N.bin after every read; DIR/events.log gets one
 *                 line per event: "accept N", "close N BYTES-RECEIVED",
 *                 and "error N WHAT" when recbackend itself gives up on one.
 *   -a            answer mode: frame SIP messages (CRLFCRLF + Content-Length,
 *                 long or compact "l:") and answer every request but ACK
 *                 with "SIP/2.0 200 OK", copying its Via/From/To/Call-ID/CSeq
 *                 lines (long or compact names) and "Content-Length: 0".
 *                 Responses received are not answered; CRLF keep-alives
 *                 between messages are skipped.
 *   -e            echo mode: send every byte back verbatim.
 *   -x            silent mode (the default): read and record, never answer.
 *   -S            stall mode: accept but never read (to exercise the
 *                 sidecar's back-pressure); closes when the peer closes.
 *   -C N          answer mode: close the connection after N answers.
 *   -r            answer mode: also copy Contact and Record-Route lines (a
 *                 registrar's 200 OK lists the bindings; a proxy's answer
 *                 carries the Record-Route)
 *   -p FILE       write the PID to FILE;  -P FILE  write the bound port.
 *                 Both are written atomically (temp file + rename), the port
 *                 file only after the socket listens.
 *
 * A connection is closed when its peer closes (after pending output is
 * flushed). SIGUSR1 closes every open connection (a "backend hangs up"
 * event); SIGTERM/SIGINT close everything and exit 0.
 * Memory is bounded: per connection at most IN_MAX bytes of unparsed SIP
 * headers (bodies are skipped, not buffered) and OUT_MAX bytes of pending
 * output; reading pauses while output is blocked; at most MAX_CONNS
 * connections are open at once (further ones wait in the listen backlog).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define IN_MAX (256 * 1024)          /* largest SIP header block we frame */
#define OUT_MAX (IN_MAX + 64 * 1024) /* pending output per connection */
#define READ_CHUNK (64 * 1024)
#define MAX_CONNS 2048

enum mode { MODE_SILENT, MODE_ANSWER, MODE_ECHO, MODE_STALL };

struct buf {
	char *p;
	size_t len, cap;
};

struct conn {
	int fd;
	int rec_fd;                /* DIR/conn-N.bin, or -1 */
	unsigned long id;
	unsigned long long bytes_in;
	struct buf in;             /* answer mode: bytes not yet framed */
	struct buf out;            /* pending output */
	size_t out_off;            /* first unsent byte in out */
	unsigned long long skip;   /* answer mode: body bytes still to skip */
	unsigned long answered;
	bool peer_eof;             /* peer closed its side; flush and close */
	bool closing;              /* close once out is flushed (-C) */
	uint32_t events;           /* current epoll interest */
	struct conn *prev, *next;
};

static struct {
	enum mode mode;
	const char *dir;
	unsigned long close_after;
	bool registrar;        /* -r: answers copy Contact and Record-Route too */
	int ep, lfd, sfd, events_fd;
	bool listening;            /* lfd is in the epoll set */
	unsigned long next_id, nconns;
	struct conn *conns;
} g = { .lfd = -1, .sfd = -1, .events_fd = -1, .ep = -1 };

/* Sentinels stored in epoll data for the non-connection fds. */
static char tag_listen, tag_signal;

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("recbackend: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("recbackend: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fputs("usage: recbackend [-l ADDR:PORT] [-d DIR] [-a|-e|-x|-S] [-C N]"
	      " [-p PIDFILE] [-P PORTFILE]\n", stderr);
	exit(2);
}

/* Writes all of buf to fd, retrying on EINTR. Returns 0 or -1 (errno set). */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends one line to DIR/events.log (a single write, so lines never mix). */
static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void event(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	if (g.events_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (write_all(g.events_fd, line, (size_t)n) != 0)
		warnx_("events.log: %s", strerror(errno));
}

/* Writes "text\n" to path atomically via path.tmp + rename. Dies on error. */
static void write_file_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	int fd;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
		die("%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", tmp, strerror(errno));
	if (write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0)
		die("%s: %s", tmp, strerror(errno));
	if (close(fd) != 0)
		die("%s: %s", tmp, strerror(errno));
	if (rename(tmp, path) != 0)
		die("rename %s: %s", path, strerror(errno));
}

/*
 * Opens the listening socket for "ADDR:PORT" or "[V6ADDR]:PORT".
 * Returns the fd; dies on error.
 */
static int listen_on(const char *spec)
{
	char host[256], *colon;
	const char *port;
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (end == NULL || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
			die("bad listen address %s", spec);
		memcpy(host, spec + 1, (size_t)(end - spec - 1));
		host[end - spec - 1] = '\0';
		port = end + 2;
	} else {
		if (strlen(spec) >= sizeof host)
			die("bad listen address %s", spec);
		strcpy(host, spec);
		colon = strrchr(host, ':');
		if (colon == NULL)
			die("bad listen address %s (want ADDR:PORT)", spec);
		*colon = '\0';
		port = spec + (colon - host) + 1;
	}
	if (*port == '\0')
		die("bad listen address %s (no port)", spec);

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0)
		die("%s: %s", spec, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
			die("setsockopt SO_REUSEADDR: %s", strerror(errno));
		if (ai->ai_family == AF_INET6 &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
			die("setsockopt IPV6_V6ONLY: %s", strerror(errno));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0)
			break;
		warnx_("bind/listen %s: %s", spec, strerror(errno));
		if (close(fd) != 0)
			warnx_("close: %s", strerror(errno));
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("cannot listen on %s", spec);
	return fd;
}

/* Returns the local port of a bound socket; dies on error. */
static unsigned bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		die("getsockname: %s", strerror(errno));
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Makes room for `need` more bytes in b, growing up to max.
 * Returns 0, or -1 if that would exceed max. Dies on OOM. */
static int buf_reserve(struct buf *b, size_t need, size_t max)
{
	size_t cap;
	char *p;

	if (b->len + need <= b->cap)
		return 0;
	if (b->len + need > max)
		return -1;
	cap = b->cap ? b->cap : 16 * 1024;
	while (cap < b->len + need)
		cap *= 2;
	if (cap > max)
		cap = max;
	p = realloc(b->p, cap);
	if (p == NULL)
		die("out of memory");
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Drops the first n bytes of b. */
static void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void ep_ctl(int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = ptr;
	if (epoll_ctl(g.ep, op, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* Adds or removes the listening socket from the epoll set. */
static void set_listening(bool on)
{
	if (on == g.listening)
		return;
	if (on)
		ep_ctl(EPOLL_CTL_ADD, g.lfd, EPOLLIN, &tag_listen);
	else if (epoll_ctl(g.ep, EPOLL_CTL_DEL, g.lfd, NULL) != 0)
		die("epoll_ctl DEL: %s", strerror(errno));
	g.listening = on;
}

static void conn_close(struct conn *c)
{
	event("close %lu %llu", c->id, c->bytes_in);
	if (close(c->fd) != 0)
		warnx_("close conn %lu: %s", c->id, strerror(errno));
	if (c->rec_fd >= 0 && close(c->rec_fd) != 0)
		warnx_("close conn-%lu.bin: %s", c->id, strerror(errno));
	if (c->prev)
		c->prev->next = c->next;
	else
		g.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in.p);
	free(c->out.p);
	free(c);
	g.nconns--;
	set_listening(true);
}

static size_t out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

/* Recomputes the epoll interest of c from its state. */
static void conn_update(struct conn *c)
{
	uint32_t want = 0;

	switch (g.mode) {
	case MODE_STALL:
		want = EPOLLRDHUP;
		break;
	case MODE_SILENT:
		want = EPOLLIN;
		break;
	case MODE_ECHO:
		if (!c->peer_eof && out_pending(c) < OUT_MAX)
			want |= EPOLLIN;
		break;
	case MODE_ANSWER:
		/* Keep reading while there is room to buffer and we are not
		 * waiting for output to drain before framing more. */
		if (!c->peer_eof && !c->closing && c->in.len < IN_MAX)
			want |= EPOLLIN;
		break;
	}
	if (out_pending(c) > 0)
		want |= EPOLLOUT;
	if (want != c->events) {
		ep_ctl(EPOLL_CTL_MOD, c->fd, want, c);
		c->events = want;
	}
}

static void do_accept(void)
{
	struct conn *c;
	char path[PATH_MAX];
	int fd;

	if (g.nconns >= MAX_CONNS) {
		set_listening(false);
		return;
	}
	fd = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return;
		warnx_("accept: %s", strerror(errno));
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			set_listening(false);   /* retried when a connection closes */
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		die("out of memory");
	c->fd = fd;
	c->rec_fd = -1;
	c->id = ++g.next_id;
	if (g.dir != NULL) {
		if (snprintf(path, sizeof path, "%s/conn-%lu.bin", g.dir, c->id) >= (int)sizeof path)
			die("%s: path too long", g.dir);
		c->rec_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (c->rec_fd < 0)
			warnx_("%s: %s", path, strerror(errno));
	}
	c->next = g.conns;
	if (g.conns)
		g.conns->prev = c;
	g.conns = c;
	g.nconns++;
	event("accept %lu", c->id);
	c->events = 0;
	ep_ctl(EPOLL_CTL_ADD, fd, 0, c);
	conn_update(c);
}

/* Records data received on c. */
static void record(struct conn *c, const char *p, size_t n)
{
	c->bytes_in += n;
	if (c->rec_fd >= 0 && write_all(c->rec_fd, p, n) != 0) {
		warnx_("conn-%lu.bin: %s", c->id, strerror(errno));
		if (close(c->rec_fd) != 0)
			warnx_("close conn-%lu.bin: %s", c->id, strerror(errno));
		c->rec_fd = -1;
	}
}

/*
 * Sends what is pending on c. Returns 0, or -1 if the connection failed
 * (the caller closes it).
 */
static int conn_flush(struct conn *c)
{
	while (out_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out.p + c->out_off, out_pending(c), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (out_pending(c) == 0) {
		c->out.len = 0;
		c->out_off = 0;
	} else if (c->out_off > c->out.cap / 2) {
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	return 0;
}

/* Case-insensitive compare of a header name [p, p+n) with a long and an
 * optional compact name. */
static bool hname_is(const char *p, size_t n, const char *longname, const char *compact)
{
	if (strlen(longname) == n && strncasecmp(p, longname, n) == 0)
		return true;
	return compact != NULL && strlen(compact) == n && strncasecmp(p, compact, n) == 0;
}

/*
 * Handles one complete SIP header block hdr[0..len) (ending in CRLFCRLF):
 * sets *clen to its Content-Length and, for a request other than ACK,
 * appends a 200 OK to c->out. Returns 0, or -1 on a malformed message.
 */
static int answer_one(struct conn *c, const char *hdr, size_t len, unsigned long long *clen)
{
	static const char *const copy[][2] = {
		{ "Via", "v" }, { "From", "f" }, { "To", "t" }, { "Call-ID", "i" }, { "CSeq", NULL },
	};
	const char *end = hdr + len, *line, *eol;
	bool is_request, copying = false;
	size_t k;

	*clen = 0;
	eol = memmem(hdr, len, "\r\n", 2);
	if (eol == NULL || eol == hdr)
		return -1;
	is_request = !(eol - hdr >= 8 && memcmp(hdr, "SIP/2.0 ", 8) == 0);
	if (is_request && eol - hdr >= 4 && memcmp(hdr, "ACK ", 4) == 0)
		is_request = false; /* ACK is never answered */

	if (is_request && buf_reserve(&c->out, len + 64, OUT_MAX) != 0)
		return -1; /* cannot happen: caller checked room */
	if (is_request) {
		static const char status[] = "SIP/2.0 200 OK\r\n";
		memcpy(c->out.p + c->out.len, status, sizeof status - 1);
		c->out.len += sizeof status - 1;
	}
	for (line = eol + 2; line < end; line = eol + 2) {
		const char *colon, *name_end;
		eol = memmem(line, (size_t)(end - line), "\r\n", 2);
		if (eol == NULL || eol == line)
			break; /* the empty line: end of headers */
		if (*line == ' ' || *line == '\t') {
			/* continuation of the previous header */
			if (is_request && copying) {
				memcpy(c->out.p + c->out.len, line, (size_t)(eol - line) + 2);
				c->out.len += (size_t)(eol - line) + 2;
			}
			continue;
		}
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon == NULL)
			return -1;
		name_end = colon;
		while (name_end > line && (name_end[-1] == ' ' || name_end[-1] == '\t'))
			name_end--;
		if (hname_is(line, (size_t)(name_end - line), "Content-Length", "l")) {
			const char *v = colon + 1;
			unsigned long long n = 0;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (v == eol || *v < '0' || *v > '9')
				return -1;
			for (; v < eol && *v >= '0' && *v <= '9'; v++) {
				if (n > (ULLONG_MAX - 9) / 10)
					return -1;
				n = n * 10 + (unsigned long long)(*v - '0');
			}
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (v != eol)
				return -1;
			*clen = n;
		}
		copying = false;
		for (k = 0; k < sizeof copy / sizeof copy[0]; k++)
			if (hname_is(line, (size_t)(name_end - line), copy[k][0], copy[k][1]))
				copying = true;
		if (g.registrar && (hname_is(line, (size_t)(name_end - line), "Contact", "m") ||
				    hname_is(line, (size_t)(name_end - line), "Record-Route", NULL)))
			copying = true;
		if (is_request && copying) {
			memcpy(c->out.p + c->out.len, line, (size_t)(eol - line) + 2);
			c->out.len += (size_t)(eol - line) + 2;
		}
	}
	if (is_request) {
		static const char tail[] = "Content-Length: 0\r\n\r\n";
		memcpy(c->out.p + c->out.len, tail, sizeof tail - 1);
		c->out.len += sizeof tail - 1;
		c->answered++;
		if (g.close_after && c->answered >= g.close_after)
			c->closing = true;
	}
	return 0;
}

/*
 * Frames and answers as many messages in c->in as output room allows.
 * Returns 0, or -1 to close the connection (an "error" event is logged).
 */
static int answer_input(struct conn *c)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < c->in.len && !c->closing) {
		const char *p = c->in.p + pos, *hend;
		size_t avail = c->in.len - pos, hlen;
		unsigned long long clen;

		if (c->skip > 0) {
			size_t n = c->skip < avail ? (size_t)c->skip : avail;
			c->skip -= n;
			pos += n;
			continue;
		}
		if (*p == '\r' || *p == '\n') { /* keep-alive CRLFs between messages */
			pos++;
			continue;
		}
		hend = memmem(p, avail, "\r\n\r\n", 4);
		if (hend == NULL) {
			if (avail >= IN_MAX) {
				event("error %lu header block larger than %d bytes", c->id, IN_MAX);
				rc = -1;
			}
			break;
		}
		hlen = (size_t)(hend - p) + 4;
		if (out_pending(c) > 0 && c->out.len + hlen + 64 > OUT_MAX)
			break; /* wait for the output to drain */
		if (c->out_off > 0) {
			buf_consume(&c->out, c->out_off);
			c->out_off = 0;
		}
		if (answer_one(c, p, hlen, &clen) != 0) {
			event("error %lu malformed SIP message", c->id);
			rc = -1;
			break;
		}
		pos += hlen;
		c->skip = clen;
	}
	buf_consume(&c->in, pos);
	return rc;
}

/* Reads what is available on c and acts on it per the mode.
 * Returns 0, or -1 to close the connection. */
static int conn_read(struct conn *c)
{
	char chunk[READ_CHUNK];

	for (;;) {
		char *dst = chunk;
		size_t room = sizeof chunk;
		ssize_t n;

		if (g.mode == MODE_ECHO) {
			if (c->out_off > 0 && c->out.len + READ_CHUNK > OUT_MAX) {
				buf_consume(&c->out, c->out_off);
				c->out_off = 0;
			}
			room = OUT_MAX - c->out.len;
			if (room > READ_CHUNK)
				room = READ_CHUNK;
			if (room == 0 || buf_reserve(&c->out, room, OUT_MAX) != 0)
				return 0; /* full: conn_update() pauses reading */
			dst = c->out.p + c->out.len;
		} else if (g.mode == MODE_ANSWER) {
			room = IN_MAX - c->in.len;
			if (room > READ_CHUNK)
				room = READ_CHUNK;
			if (room == 0 || buf_reserve(&c->in, room, IN_MAX) != 0)
				return 0;
			dst = c->in.p + c->in.len;
		}
		n = recv(c->fd, dst, room, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1; /* ECONNRESET and friends: just close */
		}
		if (n == 0) {
			c->peer_eof = true;
			return 0;
		}
		record(c, dst, (size_t)n);
		if (g.mode == MODE_ECHO) {
			c->out.len += (size_t)n;
		} else if (g.mode == MODE_ANSWER) {
			c->in.len += (size_t)n;
			if (answer_input(c) != 0)
				return -1;
		}
		if (out_pending(c) > 0 && conn_flush(c) != 0)
			return -1;
		if ((size_t)n < room)
			return 0; /* drained the socket for now */
	}
}

static void conn_event(struct conn *c, uint32_t ev)
{
	if (g.mode == MODE_STALL) {
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_close(c);
		return;
	}
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->peer_eof && !c->closing) {
		if (conn_read(c) != 0) {
			conn_close(c);
			return;
		}
	}
	if (out_pending(c) > 0 && conn_flush(c) != 0) {
		conn_close(c);
		return;
	}
	/* Frame what was held back while the output was full (also after the
	 * peer's EOF: its last requests still get answers). */
	if (g.mode == MODE_ANSWER && c->in.len > 0 && !c->closing) {
		if (answer_input(c) != 0 || conn_flush(c) != 0) {
			conn_close(c);
			return;
		}
	}
	if ((c->peer_eof || c->closing) && out_pending(c) == 0) {
		conn_close(c);
		return;
	}
	if (c->peer_eof && (ev & (EPOLLHUP | EPOLLERR))) {
		conn_close(c); /* cannot deliver the rest */
		return;
	}
	conn_update(c);
}

/* Handles a pending signal. Returns true to exit. */
static bool on_signal(void)
{
	struct signalfd_siginfo si;
	ssize_t n;

	n = read(g.sfd, &si, sizeof si);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return false;
		die("signalfd read: %s", strerror(errno));
	}
	if ((size_t)n != sizeof si)
		return false;
	if (si.ssi_signo == SIGUSR1) {
		while (g.conns != NULL)
			conn_close(g.conns);
		return false;
	}
	return true;
}

static void run_loop(void)
{
	struct epoll_event evs[64];

	for (;;) {
		int i, n = epoll_wait(g.ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;
			if (ptr == &tag_signal) {
				if (on_signal())
					return;
			} else if (ptr == &tag_listen) {
				do_accept();
			} else {
				conn_event(ptr, evs[i].events);
			}
			/* SIGUSR1 may have freed connections that later entries
			 * of this batch point to; epoll is level-triggered, so
			 * dropping the rest of the batch loses nothing. */
			if (ptr == &tag_signal)
				break;
		}
	}
}

int main(int argc, char **argv)
{
	const char *listen_spec = "127.0.0.1:0", *pidfile = NULL, *portfile = NULL;
	char text[64], path[PATH_MAX];
	sigset_t mask;
	unsigned port;
	int opt;

	while ((opt = getopt(argc, argv, "l:d:aexSC:p:P:rh")) != -1) {
		switch (opt) {
		case 'l': listen_spec = optarg; break;
		case 'd': g.dir = optarg; break;
		case 'a': g.mode = MODE_ANSWER; break;
		case 'e': g.mode = MODE_ECHO; break;
		case 'x': g.mode = MODE_SILENT; break;
		case 'S': g.mode = MODE_STALL; break;
		case 'r':
			g.registrar = true;
			break;
		case 'C': {
			char *end;
			errno = 0;
			g.close_after = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || optarg[0] == '-' || optarg[0] == '\0')
				usage();
			break;
		}
		case 'p': pidfile = optarg; break;
		case 'P': portfile = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal: %s", strerror(errno));
	if (sigemptyset(&mask) != 0 || sigaddset(&mask, SIGTERM) != 0 ||
	    sigaddset(&mask, SIGINT) != 0 || sigaddset(&mask, SIGUSR1) != 0)
		die("sigset: %s", strerror(errno));
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		die("sigprocmask: %s", strerror(errno));
	g.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (g.sfd < 0)
		die("signalfd: %s", strerror(errno));

	if (g.dir != NULL) {
		if (mkdir(g.dir, 0755) != 0 && errno != EEXIST)
			die("%s: %s", g.dir, strerror(errno));
		if (snprintf(path, sizeof path, "%s/events.log", g.dir) >= (int)sizeof path)
			die("%s: path too long", g.dir);
		g.events_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (g.events_fd < 0)
			die("%s: %s", path, strerror(errno));
	}
	if (pidfile != NULL) {
		snprintf(text, sizeof text, "%ld", (long)getpid());
		write_file_atomic(pidfile, text);
	}

	g.lfd = listen_on(listen_spec);
	port = bound_port(g.lfd);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	ep_ctl(EPOLL_CTL_ADD, g.sfd, EPOLLIN, &tag_signal);
	set_listening(true);

	if (printf("%u\n", port) < 0 || fflush(stdout) != 0)
		warnx_("stdout: %s", strerror(errno));
	if (portfile != NULL) {
		snprintf(text, sizeof text, "%u", port);
		write_file_atomic(portfile, text);
	}

	run_loop();

	while (g.conns != NULL)
		conn_close(g.conns);
	if (close(g.lfd) != 0)
		warnx_("close listener: %s", strerror(errno));
	if (g.events_fd >= 0 && close(g.events_fd) != 0)
		warnx_("close events.log: %s", strerror(errno));
	return 0;
}
