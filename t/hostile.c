/*
 * hostile: misbehaving clients for the sip-sidecar limit tests and the
 * bench/hostile-clients.sh measurements. One mode per run:
 *
 *   hostile -c HOST:PORT MODE [options]
 *
 *   --crlf SECS       TLS: CRLFCRLF keep-alives as fast as the daemon takes
 *                     them, for SECS; never reads the pongs unless --read.
 *                     Prints "sent=BYTES".
 *   --options SECS    the same with pipelined OPTIONS requests.
 *   --responses SECS  the same with pipelined "200 OK" responses (relayed
 *                     to the backend, answered by no one).
 *   --plain           --crlf, --options, --responses over plain TCP (the
 *                     legacy server's side: flow listeners).
 *   --file FILE       --options floods FILE (repeated) instead.
 *   --big-hello BYTES TCP: a ClientHello whose handshake header announces
 *                     16 MiB, then up to BYTES more of it. Exit 0 with
 *                     "closed-after=N" when the daemon closes, 1 with
 *                     "still-open sent=N" when it took BYTES.
 *   --slow SECS       --conns TLS connections (TCP only with --idle), each
 *                     sending a header that never ends, one byte per
 *                     --interval ms each (nothing with --idle), for SECS or
 *                     until all are closed. Prints "open=N closed=M
 *                     first-close-ms=T" (T: when the daemon closed the first).
 *   --rtt N           TLS: N OPTIONS round trips one after the other; prints
 *                     "n=N ok=K p50=MS p90=MS max=MS" (ms, 0.1 precision).
 *                     Exit 1 unless every one got a 200 in --timeout ms.
 *   --records FILE    TLS: sends FILE in TLS records of --record-size bytes
 *                     (default 1), then waits --hold ms. Prints "sent=BYTES".
 *
 *   --conns N (default 1), --interval MS (default 1000), --timeout MS
 *   (default 10000), --hold MS (default 0), --ready FILE (created once the
 *   connections are set up).
 *
 * No certificate is verified: these clients attack, they trust nothing.
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

static const char *target;
static long timeout_ms = 10000, interval_ms = 1000, hold_ms;
static unsigned long nconns = 1, record_size = 1;
static int do_read, plain;
static const char *ready_file, *flood_file;
static gnutls_certificate_credentials_t cred;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("hostile: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(4);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void ready(void)
{
	if (ready_file) {
		FILE *f = fopen(ready_file, "w");
		if (f)
			fclose(f);
	}
}

/* A non-blocking TCP connection to target, or -1. */
static int tcp_connect(void)
{
	char host[256];
	const char *colon = strrchr(target, ':');
	if (!colon || (size_t)(colon - target) >= sizeof host)
		die("bad address %s", target);
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strlen(h) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST }, *ai;
	if (getaddrinfo(h, colon + 1, &hints, &ai) != 0)
		die("bad address %s", target);
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	return fd;
}

/* Waits for events on fd until deadline (ms, CLOCK_MONOTONIC); returns revents or 0. */
static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	double left = deadline - now_ms();
	if (left < 0)
		left = 0;
	if (poll(&p, 1, (int)left) <= 0)
		return 0;
	return p.revents;
}

static gnutls_session_t tls_open(int fd)
{
	gnutls_session_t s;
	if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_priority_set_direct(s, "NORMAL", NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		die("gnutls setup failed");
	gnutls_transport_set_int(s, fd);
	double deadline = now_ms() + timeout_ms;
	for (;;) {
		int r = gnutls_handshake(s);
		if (r == 0)
			return s;
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(r)) {
			gnutls_deinit(s);
			return NULL;
		}
		if (!wait_fd(fd, gnutls_record_get_direction(s) ? POLLOUT : POLLIN, deadline)) {
			gnutls_deinit(s);
			return NULL;
		}
	}
}

/* Sends all of buf (waiting while the socket is full) until deadline.
 * Returns bytes sent, or -1 on a closed connection. Reads and drops
 * what arrives meanwhile when do_read. */
static long tls_send_all(gnutls_session_t s, int fd, const char *buf, size_t len, double deadline)
{
	size_t done = 0;
	char sink[16384];
	while (done < len) {
		ssize_t r = gnutls_record_send(s, buf + done, len - done > 16384 ? 16384 : len - done);
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
			return -1;
		for (;;) {
			int ev = wait_fd(fd, POLLOUT | (do_read ? POLLIN : 0), deadline);
			if (!ev)
				return (long)done;
			if (ev & POLLIN) {
				ssize_t k = gnutls_record_recv(s, sink, sizeof sink);
				if (k == 0 || (k < 0 && k != GNUTLS_E_AGAIN && k != GNUTLS_E_INTERRUPTED))
					return -1;
			}
			if (ev & (POLLOUT | POLLERR | POLLHUP))
				break;
		}
	}
	if (do_read) {
		ssize_t k;
		while ((k = gnutls_record_recv(s, sink, sizeof sink)) > 0)
			;
	}
	return (long)done;
}

/* tls_send_all over plain TCP (never reads). */
static long tcp_send_all(int fd, const char *buf, size_t len, double deadline)
{
	size_t done = 0;
	while (done < len) {
		ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		int ev = wait_fd(fd, POLLOUT, deadline);
		if (!ev)
			return (long)done;
		if (ev & (POLLERR | POLLHUP))
			return -1;
	}
	return (long)done;
}

static size_t options(char *b, size_t cap, unsigned long i)
{
	return (size_t)snprintf(b, cap,
				"OPTIONS sip:ping@hostile.test SIP/2.0\r\n"
				"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-%ld-%lu\r\n"
				"Max-Forwards: 70\r\nFrom: <sip:hostile@test.invalid>;tag=%ld\r\n"
				"To: <sip:ping@hostile.test>\r\nCall-ID: %ld-%lu@hostile.test\r\n"
				"CSeq: %lu OPTIONS\r\nContent-Length: 0\r\n\r\n",
				(long)getpid(), i, (long)getpid(), (long)getpid(), i, i);
}

static int flood(double secs, int sip)
{
	int fd = tcp_connect();
	if (fd < 0)
		die("connect failed");
	gnutls_session_t s = plain ? NULL : tls_open(fd);
	if (!s && !plain)
		die("handshake failed");
	ready();
	static char buf[65536];
	size_t len = 0;
	unsigned long i = 1;
	if (sip == 1 && flood_file) {
		FILE *ff = fopen(flood_file, "rb");
		if (!ff)
			die("%s: %s", flood_file, strerror(errno));
		size_t n = fread(buf, 1, sizeof buf / 2, ff);
		fclose(ff);
		if (!n)
			die("%s: empty", flood_file);
		for (len = n; len + n <= sizeof buf; len += n)
			memcpy(buf + len, buf, n);
	} else if (sip == 1) {
		while (len + 512 < sizeof buf)
			len += options(buf + len, sizeof buf - len, i++);
	} else if (sip == 2) {
		for (; len + 512 < sizeof buf; i++)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
						"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-%lu\r\n"
						"From: <sip:a@hostile.test>;tag=1\r\nTo: <sip:b@hostile.test>;tag=2\r\n"
						"Call-ID: %lu@hostile.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
						i, i);
	} else {
		for (; len + 4 <= sizeof buf; len += 4)
			memcpy(buf + len, "\r\n\r\n", 4);
	}
	double deadline = now_ms() + secs * 1000;
	unsigned long long sent = 0;
	int closed = 0;
	while (now_ms() < deadline) {
		long r = plain ? tcp_send_all(fd, buf, len, deadline) : tls_send_all(s, fd, buf, len, deadline);
		if (r < 0) {
			closed = 1;
			break;
		}
		sent += (unsigned long long)r;
	}
	printf("sent=%llu%s\n", sent, closed ? " closed=yes" : "");
	if (s)
		gnutls_deinit(s);
	close(fd);
	return 0;
}

static int big_hello(unsigned long bytes)
{
	int fd = tcp_connect();
	if (fd < 0)
		die("connect failed");
	ready();
	static unsigned char rec[5 + 16384];
	memset(rec, 0, sizeof rec);
	rec[0] = 0x16, rec[1] = 3, rec[2] = 1, rec[3] = 0x40, rec[4] = 0;
	/* handshake header: ClientHello, 16 MiB - 1 */
	rec[5] = 1, rec[6] = 0xff, rec[7] = 0xff, rec[8] = 0xff;
	rec[9] = 3, rec[10] = 3;
	unsigned long sent = 0;
	double deadline = now_ms() + timeout_ms;
	while (sent < bytes) {
		size_t off = 0;
		while (off < sizeof rec) {
			ssize_t w = send(fd, rec + off, sizeof rec - off, MSG_NOSIGNAL);
			if (w > 0) {
				off += (size_t)w;
				sent += (unsigned long)w;
				continue;
			}
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				printf("closed-after=%lu\n", sent);
				return 0;
			}
			int ev = wait_fd(fd, POLLOUT | POLLIN, deadline);
			if (!ev) {
				printf("still-open sent=%lu (stalled)\n", sent);
				return 1;
			}
			if (ev & POLLIN) {
				char b[4096];
				ssize_t k = recv(fd, b, sizeof b, 0);
				if (k <= 0 && !(k < 0 && errno == EAGAIN)) {
					printf("closed-after=%lu\n", sent);
					return 0;
				}
			}
		}
		rec[1] = 3, rec[2] = 3;
		memset(rec + 5, 0, 6); /* the rest of the message: more records */
		rec[0] = 0x16, rec[3] = 0x40, rec[4] = 0;
	}
	/* the daemon took it all: does it close now? */
	int ev = wait_fd(fd, POLLIN, now_ms() + 1000);
	char b[4096];
	if (ev && recv(fd, b, sizeof b, 0) <= 0) {
		printf("closed-after=%lu\n", sent);
		return 0;
	}
	printf("still-open sent=%lu\n", sent);
	return 1;
}

struct slow {
	int fd;
	gnutls_session_t s;
	unsigned long n;
	int closed;
};

static int slow(double secs, int idle)
{
	struct slow *c = calloc(nconns, sizeof *c);
	struct pollfd *p = calloc(nconns, sizeof *p);
	if (!c || !p)
		die("out of memory");
	static const char head[] = "OPTIONS sip:slow@hostile.test SIP/2.0\r\nX-Slow: ";
	unsigned long open = 0;
	for (unsigned long i = 0; i < nconns; i++) {
		c[i].fd = tcp_connect();
		if (c[i].fd < 0) {
			c[i].closed = 1;
			continue;
		}
		if (!idle && !(c[i].s = tls_open(c[i].fd))) {
			close(c[i].fd);
			c[i].fd = -1;
			c[i].closed = 1;
			continue;
		}
		open++;
	}
	ready();
	double t0 = now_ms(), end = t0 + secs * 1000, first_close = -1;
	unsigned long closed = 0;
	while (now_ms() < end && closed < open) {
		double tick = now_ms() + interval_ms;
		/* one byte each */
		for (unsigned long i = 0; i < nconns && !idle; i++) {
			if (c[i].closed)
				continue;
			char ch = c[i].n < sizeof head - 1 ? head[c[i].n] : 'a';
			ssize_t r = gnutls_record_send(c[i].s, &ch, 1);
			if (r == 1)
				c[i].n++;
			else if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
				c[i].closed = 1;
				closed++;
				if (first_close < 0)
					first_close = now_ms() - t0;
			}
		}
		/* watch for closes until the next tick */
		while (now_ms() < tick && now_ms() < end && closed < open) {
			unsigned long k = 0;
			for (unsigned long i = 0; i < nconns; i++)
				if (!c[i].closed) {
					p[k].fd = c[i].fd;
					p[k].events = POLLIN;
					p[k].revents = 0;
					k++;
				}
			double left = (tick < end ? tick : end) - now_ms();
			if (poll(p, k, left > 0 ? (int)left : 0) <= 0)
				break;
			for (unsigned long i = 0, j = 0; i < nconns; i++) {
				if (c[i].closed)
					continue;
				if (p[j++].revents) {
					char b[4096];
					ssize_t r = recv(c[i].fd, b, sizeof b, 0);
					if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
						c[i].closed = 1;
						closed++;
						if (first_close < 0)
							first_close = now_ms() - t0;
					}
				}
			}
		}
	}
	printf("open=%lu closed=%lu first-close-ms=%.0f\n", open - closed, closed, first_close);
	for (unsigned long i = 0; i < nconns; i++) {
		if (c[i].s)
			gnutls_deinit(c[i].s);
		if (c[i].fd >= 0)
			close(c[i].fd);
	}
	free(c);
	free(p);
	return 0;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int rtt(unsigned long n)
{
	int fd = tcp_connect();
	if (fd < 0)
		die("connect failed");
	gnutls_session_t s = tls_open(fd);
	if (!s)
		die("handshake failed");
	double *t = calloc(n, sizeof *t);
	if (!t)
		die("out of memory");
	unsigned long ok = 0;
	for (unsigned long i = 0; i < n; i++) {
		char req[1024], rx[8192];
		size_t len = options(req, sizeof req, i + 1), got = 0;
		double t0 = now_ms(), deadline = t0 + timeout_ms;
		if (tls_send_all(s, fd, req, len, deadline) != (long)len)
			break;
		int done = 0;
		while (!done) {
			ssize_t r = gnutls_record_recv(s, rx + got, sizeof rx - 1 - got);
			if (r > 0) {
				got += (size_t)r;
				rx[got] = '\0';
				char *e = strstr(rx, "\r\n\r\n");
				if (e) {
					done = 1;
					if (!strncmp(rx, "SIP/2.0 200", 11))
						ok++;
				}
				continue;
			}
			if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
				break;
			if (!wait_fd(fd, POLLIN, deadline))
				break;
		}
		t[i] = now_ms() - t0;
		if (!done)
			break;
	}
	qsort(t, n, sizeof *t, cmpd);
	printf("n=%lu ok=%lu p50=%.1f p90=%.1f max=%.1f\n", n, ok, t[n / 2], t[(n * 9) / 10], t[n - 1]);
	free(t);
	gnutls_deinit(s);
	close(fd);
	return ok == n ? 0 : 1;
}

static char out_buf[1 << 20];
static size_t out_len;

static ssize_t gather(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	(void)p;
	if (out_len + n > sizeof out_buf) {
		errno = EAGAIN; /* not reached: flushed at 64 KiB */
		return -1;
	}
	memcpy(out_buf + out_len, d, n);
	out_len += n;
	return (ssize_t)n;
}

static void flush_out(int fd, double deadline)
{
	size_t done = 0;
	while (done < out_len) {
		ssize_t w = send(fd, out_buf + done, out_len - done, MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			die("send: %s", strerror(errno));
		if (!wait_fd(fd, POLLOUT, deadline))
			die("send stalled");
	}
	out_len = 0;
}

static int records(const char *file)
{
	FILE *f = fopen(file, "rb");
	if (!f)
		die("%s: %s", file, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) < 0)
		die("%s: %s", file, strerror(errno));
	char *data = malloc((size_t)st.st_size + 1);
	if (!data || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		die("%s: read failed", file);
	fclose(f);
	int fd = tcp_connect();
	if (fd < 0)
		die("connect failed");
	gnutls_session_t s = tls_open(fd);
	if (!s)
		die("handshake failed");
	ready();
	size_t off = 0, len = (size_t)st.st_size;
	double deadline = now_ms() + 600000;
	/* one record per call (GnuTLS's cork would merge them), the records
	 * gathered and written in large chunks, as a sender who wants to
	 * cost the daemon most per byte would */
	gnutls_transport_set_ptr(s, s);
	gnutls_transport_set_push_function(s, gather);
	while (off < len) {
		size_t k = len - off < record_size ? len - off : record_size;
		ssize_t r = gnutls_record_send(s, data + off, k);
		if (r < 0)
			die("send: %s", gnutls_strerror((int)r));
		off += (size_t)r;
		if (out_len >= 65536 || off == len)
			flush_out(fd, deadline);
	}
	printf("sent=%zu\n", off);
	fflush(stdout);
	if (hold_ms)
		usleep((useconds_t)hold_ms * 1000);
	gnutls_deinit(s);
	close(fd);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_CRLF = 256, O_OPTIONS, O_RESPONSES, O_BIG, O_SLOW, O_IDLE, O_RTT, O_RECORDS, O_RSIZE, O_CONNS, O_INTERVAL,
	       O_TIMEOUT, O_HOLD, O_READ, O_READY, O_PLAIN, O_FILE };
	static const struct option lo[] = {
		{ "crlf", 1, 0, O_CRLF },	  { "options", 1, 0, O_OPTIONS }, { "responses", 1, 0, O_RESPONSES }, { "big-hello", 1, 0, O_BIG },
		{ "slow", 1, 0, O_SLOW },	  { "idle", 0, 0, O_IDLE },	  { "rtt", 1, 0, O_RTT },
		{ "records", 1, 0, O_RECORDS },	  { "record-size", 1, 0, O_RSIZE }, { "conns", 1, 0, O_CONNS },
		{ "interval", 1, 0, O_INTERVAL }, { "timeout", 1, 0, O_TIMEOUT }, { "hold", 1, 0, O_HOLD },
		{ "read", 0, 0, O_READ },	  { "ready", 1, 0, O_READY },	  { "plain", 0, 0, O_PLAIN },	  { "file", 1, 0, O_FILE },
		{ 0, 0, 0, 0 },
	};
	int mode = 0, idle = 0, opt;
	const char *arg = NULL;
	while ((opt = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
		switch (opt) {
		case 'c': target = optarg; break;
		case O_CRLF: case O_OPTIONS: case O_RESPONSES: case O_BIG: case O_SLOW: case O_RTT: case O_RECORDS:
			mode = opt;
			arg = optarg;
			break;
		case O_IDLE: idle = 1; break;
		case O_RSIZE: record_size = strtoul(optarg, NULL, 10); break;
		case O_CONNS: nconns = strtoul(optarg, NULL, 10); break;
		case O_INTERVAL: interval_ms = strtol(optarg, NULL, 10); break;
		case O_TIMEOUT: timeout_ms = strtol(optarg, NULL, 10); break;
		case O_HOLD: hold_ms = strtol(optarg, NULL, 10); break;
		case O_READ: do_read = 1; break;
		case O_PLAIN: plain = 1; break;
		case O_FILE: flood_file = optarg; break;
		case O_READY: ready_file = optarg; break;
		default: die("usage: hostile -c HOST:PORT --crlf|--options|--big-hello|--slow|--rtt|--records ARG");
		}
	}
	if (!target || !mode || !nconns || !record_size)
		die("usage: hostile -c HOST:PORT --crlf|--options|--big-hello|--slow|--rtt|--records ARG");
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&cred) < 0)
		die("gnutls init failed");
	int rc;
	switch (mode) {
	case O_CRLF: rc = flood(atof(arg), 0); break;
	case O_OPTIONS: rc = flood(atof(arg), 1); break;
	case O_RESPONSES: rc = flood(atof(arg), 2); break;
	case O_BIG: rc = big_hello(strtoul(arg, NULL, 10)); break;
	case O_SLOW: rc = slow(atof(arg), idle); break;
	case O_RTT: rc = rtt(strtoul(arg, NULL, 10)); break;
	default: rc = records(arg); break;
	}
	gnutls_certificate_free_credentials(cred);
	gnutls_global_deinit();
	return rc;
}
