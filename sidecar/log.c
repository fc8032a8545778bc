/*
 * log: one event per line on stderr. When stderr is the journal
 * (JOURNAL_STREAM names stderr's device and inode) each line starts with a
 * "<N>" syslog priority; otherwise with a UTC timestamp and the level word.
 * One write(2) per line, so lines from several threads never interleave.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The logger's settings: written at start-up and reload, read everywhere. */
static struct {
	int journal;
	int level;               /* read by every loop, set by the main one: atomic */
} logger = { 0, LOG_LVL_INFO };

void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	logger.journal = 0;
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		logger.journal = 1;
}

void log_set_level(enum log_level lvl)
{
	__atomic_store_n(&logger.level, (int)lvl, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&logger.level, __ATOMIC_RELAXED);
}

int log_level_parse(const char *s)
{
	if (!strcmp(s, "error"))
		return LOG_LVL_ERR;
	if (!strcmp(s, "warn") || !strcmp(s, "warning"))
		return LOG_LVL_WARN;
	if (!strcmp(s, "info"))
		return LOG_LVL_INFO;
	if (!strcmp(s, "debug"))
		return LOG_LVL_DEBUG;
	return -1;
}

static const char *level_word(enum log_level lvl)
{
	switch (lvl) {
	case LOG_LVL_ERR:
		return "error";
	case LOG_LVL_WARN:
		return "warning";
	case LOG_LVL_INFO:
		return "info";
	default:
		return "debug";
	}
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[2048];
	size_t n;
	if ((int)lvl > __atomic_load_n(&logger.level, __ATOMIC_RELAXED))
		return;
	if (logger.journal) {
		n = (size_t)snprintf(buf, sizeof buf, "<%d>", (int)lvl);
	} else {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(buf + n, sizeof buf - n, ".%03ldZ %s: ", (long)(tv.tv_usec / 1000),
				      level_word(lvl));
	}
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
}
