/*
 * fuzz-config: libFuzzer target for the configuration file parser
 * (sidecar/config.c, config_load, with util.c's value parsers).
 *
 * Input: the bytes of a configuration file, given to config_load through
 * a memory file (memfd) read back by its /proc/self/fd name, as the daemon
 * reads its file. The invariants checked (abort() on failure):
 *  - config_load returns a configuration with no problem reported, or
 *    NULL with at least one;
 *  - every problem starts with the file name, then ':' and a line number
 *    between 1 and the number of lines of the input (or the file name and
 *    ": " alone, for problems of the whole file), and has a message;
 *  - a configuration it returns holds what the checks promise: at least
 *    one [listen] or [connect] section, each with a name, a bind address
 *    with its printable form and a line number inside the input; every
 *    [listen] a backend address;
 *  - loading the same bytes twice gives the same outcome and the same
 *    problems (no state kept between loads);
 *  - config_free releases everything (LeakSanitizer at exit).
 * Built with -DFUZZ_STANDALONE it gets a main() that runs the files named on
 * its command line once (regression runs without libFuzzer).
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

static int memfd = -1;
static char path[64];

/* Checks one problem line: "PATH:LINE: msg" with 1 <= LINE <= lines, or
 * "PATH: msg". */
static void check_diag(const char *m, unsigned lines)
{
	size_t pl = strlen(path);
	const char *p;
	char *end;
	unsigned long line;

	CHECK(strncmp(m, path, pl) == 0);
	p = m + pl;
	CHECK(*p == ':');
	p++;
	if (*p == ' ') {
		CHECK(p[1] != '\0');
		return;
	}
	line = strtoul(p, &end, 10);
	CHECK(end != p && *end == ':' && end[1] == ' ' && end[2] != '\0');
	CHECK(line >= 1 && line <= lines);
}

/* Loads the memory file; returns the outcome (NULL or not) and fills d. */
static struct config *load(struct diag *d)
{
	return config_load(path, d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d1 = { 0 }, d2 = { 0 };
	struct config *c1, *c2;
	unsigned lines = 1;

	if (size > 65536)
		return 0;
	if (memfd < 0) {
		memfd = memfd_create("fuzz-config", 0);
		CHECK(memfd >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	}
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' && i + 1 < size)
			lines++;

	c1 = load(&d1);
	CHECK((c1 == NULL) == (d1.n > 0));
	for (size_t i = 0; i < d1.n; i++)
		check_diag(d1.msg[i], lines);
	if (c1) {
		CHECK(c1->nlisten + c1->nconnect > 0);
		for (size_t i = 0; i < c1->nlisten; i++) {
			const struct listen_conf *l = &c1->listen[i];
			CHECK(l->name && l->name[0]);
			CHECK(l->line >= 1 && l->line <= lines);
			CHECK(l->bind.len > 0 && l->bind.text[0]);
			CHECK(l->backend.len > 0 && l->backend.text[0]);
			CHECK(l->cert.n == l->key.n);
		}
		for (size_t i = 0; i < c1->nconnect; i++) {
			const struct connect_conf *c = &c1->connect[i];
			CHECK(c->name && c->name[0]);
			CHECK(c->line >= 1 && c->line <= lines);
			CHECK(c->bind.len > 0 && c->bind.text[0]);
			CHECK(c->server_host && c->server_port);
		}
	}

	c2 = load(&d2);
	CHECK((c1 == NULL) == (c2 == NULL));
	CHECK(d1.n == d2.n);
	for (size_t i = 0; i < d1.n; i++)
		CHECK(strcmp(d1.msg[i], d2.msg[i]) == 0);
	config_free(c1);
	config_free(c2);
	diag_free(&d1);
	diag_free(&d2);
	return 0;
}

#include "fuzz-standalone.h"
