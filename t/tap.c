/*
 * tap: a tiny Test Anything Protocol library for the C unit tests.
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static struct {
	unsigned long planned, run, failed;
	int lazy;
} tap;

static void tap_atexit(void)
{
	if (tap.lazy)
		printf("1..%lu\n", tap.run);
	fflush(stdout);
}

void plan(unsigned long n)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap.planned = n;
	printf("1..%lu\n", n);
}

void plan_lazy(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap.lazy = 1;
	atexit(tap_atexit);
}

static int vok(int cond, const char *fmt, va_list ap)
{
	tap.run++;
	if (!cond)
		tap.failed++;
	printf("%sok %lu - ", cond ? "" : "not ", tap.run);
	vprintf(fmt, ap);
	printf("\n");
	return cond;
}

int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vok(cond, fmt, ap);
	va_end(ap);
	return cond;
}

int is_int(long long want, long long got, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vok(want == got, fmt, ap);
	va_end(ap);
	if (want != got)
		diag("     got: %lld\n  wanted: %lld", got, want);
	return want == got;
}

int is_str(const char *want, const char *got, const char *fmt, ...)
{
	int cond = (want == NULL || got == NULL) ? want == got : strcmp(want, got) == 0;
	va_list ap;
	va_start(ap, fmt);
	vok(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		diag("     got: '%s'\n  wanted: '%s'", got ? got : "(null)", want ? want : "(null)");
	return cond;
}

int is_mem(const void *want, size_t wlen, const void *got, size_t glen, const char *fmt, ...)
{
	int cond = wlen == glen && (wlen == 0 || memcmp(want, got, wlen) == 0);
	va_list ap;
	va_start(ap, fmt);
	vok(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		diag("     got %zu bytes: '%.*s'\n  wanted %zu bytes: '%.*s'", glen, (int)(glen > 200 ? 200 : glen),
		     (const char *)got, wlen, (int)(wlen > 200 ? 200 : wlen), (const char *)want);
	return cond;
}

void diag(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fflush(stdout);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		fprintf(stdout, "# %s\n", line);
	fflush(stdout);
}

void bail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("Bail out! ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(255);
}

void skip_all(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("1..0 # SKIP ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(0);
}

int tap_done(void)
{
	if (!tap.lazy && tap.planned != tap.run) {
		diag("planned %lu tests but ran %lu", tap.planned, tap.run);
		return 1;
	}
	return tap.failed ? 1 : 0;
}

char *tap_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}
