/*
 * tap: a tiny Test Anything Protocol library for the C unit tests.
 * SPDX-License-Identifier: MIT
 */
#ifndef T_TAP_H
#define T_TAP_H

#include <stddef.h>

void plan(unsigned long n);           /* "1..n"; call first, or plan_lazy() */
void plan_lazy(void);                 /* print "1..N" at exit */
int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int is_int(long long want, long long got, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int is_str(const char *want, const char *got, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int is_mem(const void *want, size_t wlen, const void *got, size_t glen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void skip_all(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Exit status: 0 if every test passed and the plan matched, else 1. */
int tap_done(void);
/* Reads a whole file into a NUL-terminated malloc'd buffer; NULL on error. */
char *tap_slurp(const char *path, size_t *len);

#endif
