/*
 * util: small pure helpers shared by the config parser and the daemon:
 * address, duration and size parsing; growing strings; a diagnostics list.
 * SPDX-License-Identifier: MIT
 */
#ifndef SIDECAR_UTIL_H
#define SIDECAR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 64

/* A socket address with its printable form ("1.2.3.4:5", "[::1]:5"). */
struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[ADDR_TEXT_MAX];
};

/* Parses "IPv4:PORT" or "[IPv6]:PORT" (numeric only). Returns 0 or -1. */
int addr_parse(const char *s, struct addr *a);
/* Fills a->text from a->ss. */
void addr_format(struct addr *a);
/* Splits "HOST:PORT" / "[V6]:PORT" into host and port strings (malloc'd).
 * Returns 0, or -1 if malformed. */
int hostport_split(const char *s, char **host, char **port);

/* "10s", "250ms", "5m", "1h", plain number = seconds. Returns 0 or -1. */
int parse_duration(const char *s, double *out);
/* "64k", "1m", plain number = bytes. Returns 0 or -1. */
int parse_size(const char *s, size_t *out);
/* Strict unsigned parse (no sign, no trailing garbage). Returns 0 or -1. */
int parse_uint(const char *s, unsigned long max, unsigned long *out);
/* "on|yes|true|1" / "off|no|false|0". Returns 0 or -1. */
int parse_bool(const char *s, int *out);

/*
 * diag: a list of "FILE:LINE: message" problems, so that -t can print every
 * one and a reload can log the first.
 */
struct diag {
	char **msg;
	size_t n, cap;
};
void diag_add(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void diag_free(struct diag *d);

/* Allocation that aborts on failure (our memory is bounded; OOM is fatal). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Seconds since an arbitrary epoch, monotonic. */
double mono_now(void);

#endif
