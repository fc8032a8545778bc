/*
 * msgcount: see msgcount.h.
 * SPDX-License-Identifier: MIT
 */
#include <autoconf.h>

#include <string.h>
#include <strings.h>

#include "msgcount.h"

/* Handles one complete header line (without CRLF, maybe truncated);
 * returns 1 when it was the empty line ending the header block. */
static int header_line(struct msgcount *m)
{
	const char *l = m->line;
	size_t n = m->linelen;
	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (n == 0 && !m->linefull)
		return 1;
	size_t k = 0;
	if ((l[0] | 0x20) != 'c' && (l[0] | 0x20) != 'l')
		return 0; /* the common case: neither Content-Length nor l */
	if (n >= 15 && !strncasecmp(l, "content-length", 14))
		k = 14;
	else if (n >= 2 && (l[0] == 'l' || l[0] == 'L') && (l[1] == ':' || l[1] == ' ' || l[1] == '\t'))
		k = 1;
	if (!k)
		return 0;
	while (k < n && (l[k] == ' ' || l[k] == '\t'))
		k++;
	if (k >= n || l[k] != ':')
		return 0;
	k++;
	uint32_t v = 0;
	while (k < n && (l[k] == ' ' || l[k] == '\t'))
		k++;
	while (k < n && l[k] >= '0' && l[k] <= '9' && v < 100000000)
		v = v * 10 + (uint32_t)(l[k++] - '0');
	m->cl = v;
	return 0;
}

unsigned msgcount_feed(struct msgcount *m, const char *p, size_t len)
{
	unsigned count = 0;
	const char *end = p + len;
	while (p < end) {
		if (m->body_left) {
			size_t skip = (size_t)(end - p) < m->body_left ? (size_t)(end - p) : m->body_left;
			p += skip;
			m->body_left -= (uint32_t)skip;
			if (!m->body_left)
				count++;
			continue;
		}
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		size_t take = (size_t)(stop - p);
		size_t room = sizeof m->line - m->linelen;
		if (take > room) {
			m->linefull = 1;
			take = room;
		}
		memcpy(m->line + m->linelen, p, take);
		m->linelen += (uint8_t)take;
		if (!nl)
			break;
		p = nl + 1;
		/* a complete line */
		if (!m->in_hdr) {
			size_t n = m->linelen - (m->linelen && m->line[m->linelen - 1] == '\r');
			if (n > 0 || m->linefull) {
				m->in_hdr = 1; /* a start line */
				m->cl = 0;
			}
		} else if (header_line(m)) {
			m->in_hdr = 0;
			if (m->cl)
				m->body_left = m->cl;
			else
				count++;
		}
		m->linelen = 0;
		m->linefull = 0;
	}
	return count;
}
