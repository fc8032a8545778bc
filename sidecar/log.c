/*
 * log: one event per line on stderr. When stderr is the journal
 * (JOURNAL_STREAM names stderr's device and inode) each event goes to the
 * journal directly (libsystemd), with the message's stable words also as
 * fields (SIP_SIDECAR_SECTION, _PEER, _IDENTITY, _REASON) so that
 * `journalctl SIP_SIDECAR_REASON=revoked` finds them; without libsystemd,
 * or when that fails, a line on stderr with a "<N>" syslog priority.
 * Otherwise each line starts with a UTC timestamp and the level word.
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

#ifdef HAVE_SYSTEMD
#include <sys/uio.h>
#define SD_JOURNAL_SUPPRESS_LOCATION 1 /* CODE_FILE= would always name log.c */
#include <systemd/sd-journal.h>
#endif

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

/*
 * The fields of a message in the stable format of the log words
 * ("listen=NAME peer=ADDR refused: REASON (detail)"): each found one is
 * written as "KEY=value" into out (size bytes per field) and counted.
 */
enum jslot { J_SECTION, J_PEER, J_IDENTITY, J_REASON, J_N };

struct jfield {
	const char *word;       /* in the message, with its '=' or ': ' */
	const char *key;
	enum jslot slot;        /* one value per slot: the first word found */
	int to_paren;           /* the value runs to " (" or the end, not to a space */
};

static const struct jfield jfields[] = {
	{ "listen=", "SIP_SIDECAR_SECTION=", J_SECTION, 0 },
	{ "connect=", "SIP_SIDECAR_SECTION=", J_SECTION, 0 },
	{ "peer=", "SIP_SIDECAR_PEER=", J_PEER, 0 },
	{ "server=", "SIP_SIDECAR_PEER=", J_PEER, 0 },
	{ "identity=", "SIP_SIDECAR_IDENTITY=", J_IDENTITY, 0 },
	{ "refused on reload: ", "SIP_SIDECAR_REASON=", J_REASON, 1 },
	{ "refused: ", "SIP_SIDECAR_REASON=", J_REASON, 1 },
};
#define NJFIELDS (sizeof jfields / sizeof jfields[0])
#define JFIELD_MAX 256

size_t log_fields(const char *msg, char out[][JFIELD_MAX], size_t max)
{
	size_t n = 0;
	int have[J_N] = { 0 };
	for (size_t i = 0; i < NJFIELDS && n < max; i++) {
		const char *w = jfields[i].word, *p = msg;
		size_t wl = strlen(w);
		/* a word at the start or after a space */
		while ((p = strstr(p, w)) && p != msg && p[-1] != ' ')
			p += wl;
		if (!p)
			continue;
		if (have[jfields[i].slot])
			continue;
		const char *v = p + wl, *e = v;
		if (jfields[i].to_paren) {
			const char *paren = strstr(v, " (");
			e = paren ? paren : v + strlen(v);
		} else {
			while (*e && *e != ' ')
				e++;
		}
		if (e == v)
			continue;
		snprintf(out[n], JFIELD_MAX, "%s%.*s", jfields[i].key, (int)(e - v), v);
		n++;
		have[jfields[i].slot] = 1;
	}
	return n;
}

#ifdef HAVE_SYSTEMD
/* Sends one event to the journal; returns 0, or -1 to fall back to stderr. */
static int journal_send(enum log_level lvl, const char *msg)
{
	char fields[NJFIELDS][JFIELD_MAX], prio[16], head[2048 + 8];
	struct iovec iov[NJFIELDS + 3];
	size_t n = log_fields(msg, fields, NJFIELDS), k = 0;
	snprintf(head, sizeof head, "MESSAGE=%s", msg);
	snprintf(prio, sizeof prio, "PRIORITY=%d", (int)lvl);
	iov[k].iov_base = head;
	iov[k++].iov_len = strlen(head);
	iov[k].iov_base = prio;
	iov[k++].iov_len = strlen(prio);
	iov[k].iov_base = (void *)"SYSLOG_IDENTIFIER=sip-sidecar";
	iov[k].iov_len = strlen(iov[k].iov_base);
	k++;
	for (size_t i = 0; i < n; i++) {
		iov[k].iov_base = fields[i];
		iov[k++].iov_len = strlen(fields[i]);
	}
	return sd_journal_sendv(iov, (int)k) < 0 ? -1 : 0;
}
#endif

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[2048];
	size_t n;
	if ((int)lvl > __atomic_load_n(&logger.level, __ATOMIC_RELAXED))
		return;
	if (logger.journal) {
#ifdef HAVE_SYSTEMD
		char msg[2048];
		va_list aq;
		va_start(aq, fmt);
		int k = vsnprintf(msg, sizeof msg, fmt, aq);
		va_end(aq);
		if (k >= 0 && journal_send(lvl, msg) == 0)
			return;
#endif
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
