/*
 * util: address, duration and size parsing; diagnostics list; allocation.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fputs("sip-sidecar: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);
	if (!p) {
		fputs("sip-sidecar: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("sip-sidecar: out of memory\n", stderr);
		abort();
	}
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int hostport_split(const char *s, char **host, char **port)
{
	const char *colon;
	size_t hl;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || end == s + 1)
			return -1;
		hl = (size_t)(end - s - 1);
		*host = xmalloc(hl + 1);
		memcpy(*host, s + 1, hl);
		(*host)[hl] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		hl = (size_t)(colon - s);
		*host = xmalloc(hl + 1);
		memcpy(*host, s, hl);
		(*host)[hl] = '\0';
	}
	unsigned long p;
	if (parse_uint(colon + 1, 65535, &p) < 0) {
		free(*host);
		*host = NULL;
		return -1;
	}
	*port = xstrdup(colon + 1);
	return 0;
}

void addr_format(struct addr *a)
{
	char ip[INET6_ADDRSTRLEN];
	if (a->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
		if (!inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip))
			strcpy(ip, "?");
		snprintf(a->text, sizeof a->text, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else if (a->ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
		if (!inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip))
			strcpy(ip, "?");
		snprintf(a->text, sizeof a->text, "%s:%u", ip, ntohs(s4->sin_port));
	} else {
		snprintf(a->text, sizeof a->text, "unix");
	}
}

int addr_parse(const char *s, struct addr *a)
{
	char *host, *port;
	int rc = -1;
	memset(a, 0, sizeof *a);
	if (hostport_split(s, &host, &port) < 0)
		return -1;
	unsigned long p = strtoul(port, NULL, 10);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		a->len = sizeof *s4;
		rc = 0;
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		a->len = sizeof *s6;
		rc = 0;
	}
	free(host);
	free(port);
	if (rc == 0)
		addr_format(a);
	return rc;
}

int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parses a decimal number with an optional fraction and returns the suffix. */
static int parse_num_suffix(const char *s, double *num, const char **suffix)
{
	char *end;
	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	*num = v;
	*suffix = end;
	return 0;
}

int parse_duration(const char *s, double *out)
{
	double v;
	const char *suf;
	if (parse_num_suffix(s, &v, &suf) < 0)
		return -1;
	if (!*suf || !strcmp(suf, "s"))
		*out = v;
	else if (!strcmp(suf, "ms"))
		*out = v / 1000.0;
	else if (!strcmp(suf, "m"))
		*out = v * 60;
	else if (!strcmp(suf, "h"))
		*out = v * 3600;
	else
		return -1;
	return 0;
}

int parse_size(const char *s, size_t *out)
{
	double v;
	const char *suf;
	if (parse_num_suffix(s, &v, &suf) < 0)
		return -1;
	if (!*suf)
		;
	else if (!strcasecmp(suf, "k"))
		v *= 1024;
	else if (!strcasecmp(suf, "m"))
		v *= 1024 * 1024;
	else
		return -1;
	if (v > (double)(1u << 30) || v != (double)(size_t)v)
		return -1;
	*out = (size_t)v;
	return 0;
}

int parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "on") || !strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcasecmp(s, "off") || !strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

void diag_add(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
{
	char buf[1024];
	int n = 0;
	if (file && line)
		n = snprintf(buf, sizeof buf, "%s:%u: ", file, line);
	else if (file)
		n = snprintf(buf, sizeof buf, "%s: ", file);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->msg = xrealloc(d->msg, d->cap * sizeof *d->msg);
	}
	d->msg[d->n++] = xstrdup(buf);
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msg[i]);
	free(d->msg);
	d->msg = NULL;
	d->n = d->cap = 0;
}
